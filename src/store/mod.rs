//! The sled database: trees, big-endian keys, versioned values, one transaction per change.
//!
//! Every sled call in the crate lives here, so that the engine can be swapped.

mod alerts;
mod charts;
mod content_gaps;
mod deploys;
mod jobs;
mod messages;
mod postmortems;

pub use alerts::{AlertGroup, AlertRecord, FloodWindow, Triage};
pub use charts::written_seq;
pub use content_gaps::{ContentGap, GapReason};
pub use deploys::{Deploy, DeploySource};
pub use jobs::{Job, JobChange, JobKind};
pub use messages::{CapturedMessage, Highlight, Highlighted, MessageAttachment, MessageRevision};
pub use postmortems::PostmortemRecord;

use crate::domain::{Actor, Event, EventKind, Incident, IncidentId, RuleError};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use std::path::Path;
use std::sync::Arc;
use tokio::sync::Notify;

/// Bumped when a stored shape changes incompatibly; readers refuse what they do not know.
pub const SCHEMA_VERSION: u8 = 1;

const NEXT_INCIDENT: &[u8] = b"next_incident";
const CHANNEL_PREFIX: &[u8] = b"channel:";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sled(#[from] sled::Error),
    #[error("stored value in `{tree}` is unreadable: {reason}")]
    Corrupt { tree: &'static str, reason: String },
    #[error("stored value in `{tree}` has schema version {found}; this build reads up to {SCHEMA_VERSION}")]
    UnknownSchema { tree: &'static str, found: u8 },
    #[error("incident {0} is not in the database")]
    Missing(IncidentId),
    #[error("flushing the database did not finish: {0}")]
    Flush(String),
}

/// Why an append did not happen: the rules said no, or the database failed.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error(transparent)]
    Rule(#[from] RuleError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    incidents: sled::Tree,
    events: sled::Tree,
    messages: sled::Tree,
    deploys: sled::Tree,
    postmortems: sled::Tree,
    jobs: sled::Tree,
    meta: sled::Tree,
    alerts: sled::Tree,
    /// Rung when jobs change, so that the scheduler never sleeps past a new, earlier job.
    job_signal: Arc<Notify>,
    /// Held by whoever delivers the outbox, so that no post goes out twice from one process.
    outbox_turn: Arc<tokio::sync::Mutex<()>>,
    /// Held while an alert group changes (a delivery, a button press).
    alerts_turn: Arc<tokio::sync::Mutex<FloodWindow>>,
    flushes: Arc<FlushGate>,
}

/// Group commit: callers who arrive while a flush runs share the next one instead of each
/// queueing a flush (and a blocking thread) of their own.
#[derive(Default)]
struct FlushGate {
    /// Held while a flush runs; tokio's mutex queues waiters fairly.
    running: tokio::sync::Mutex<()>,
    /// How many flushes have begun.
    begun: std::sync::atomic::AtomicU64,
    /// The number (1-based, in order of beginning) of the last flush that succeeded.
    done: std::sync::atomic::AtomicU64,
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![SCHEMA_VERSION];
    // Serializing our own plain data types to JSON cannot fail.
    serde_json::to_writer(&mut out, value).expect("serializable value");
    out
}

pub(crate) fn decode<T: DeserializeOwned>(
    tree: &'static str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    let (&version, body) = bytes.split_first().ok_or(StoreError::Corrupt {
        tree,
        reason: "empty value".into(),
    })?;
    if version == 0 || version > SCHEMA_VERSION {
        return Err(StoreError::UnknownSchema {
            tree,
            found: version,
        });
    }
    serde_json::from_slice(body).map_err(|e| StoreError::Corrupt {
        tree,
        reason: e.to_string(),
    })
}

fn event_key(id: IncidentId, seq: u32) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..8].copy_from_slice(&id.0.to_be_bytes());
    k[8..].copy_from_slice(&seq.to_be_bytes());
    k
}

fn channel_key(channel: u64) -> Vec<u8> {
    let mut k = CHANNEL_PREFIX.to_vec();
    k.extend_from_slice(&channel.to_be_bytes());
    k
}

/// One stored pair: tree name, key, value.
pub type DumpRow = (String, Vec<u8>, Vec<u8>);

type TxResult<T> = Result<T, ConflictableTransactionError<AppendError>>;

fn abort<T>(e: impl Into<AppendError>) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(e.into()))
}

fn tx_incident(tx: &TransactionalTree, id: IncidentId) -> TxResult<Incident> {
    match tx.get(id.0.to_be_bytes())? {
        Some(bytes) => match decode("incidents", &bytes) {
            Ok(inc) => Ok(inc),
            Err(e) => abort(e),
        },
        None => abort(StoreError::Missing(id)),
    }
}

/// Appends `event` to `incident`'s timeline inside a transaction: written at the next sequence
/// number and folded in. The caller writes the incident back.
pub(crate) fn tx_push(
    events: &TransactionalTree,
    incident: &mut Incident,
    event: &Event,
) -> TxResult<()> {
    events.insert(&event_key(incident.id, incident.events), encode(event))?;
    incident.apply(event);
    Ok(())
}

fn flatten(e: TransactionError<AppendError>) -> AppendError {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => AppendError::Store(e.into()),
    }
}

impl Store {
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Self::from_db(sled::Config::new().path(path).open()?)
    }

    /// An in-memory database, gone when dropped; for tests and benchmarks.
    pub fn temporary() -> Result<Store, StoreError> {
        Self::from_db(sled::Config::new().temporary(true).open()?)
    }

    fn from_db(db: sled::Db) -> Result<Store, StoreError> {
        Ok(Store {
            incidents: db.open_tree("incidents")?,
            events: db.open_tree("events")?,
            messages: db.open_tree("messages")?,
            deploys: db.open_tree("deploys")?,
            postmortems: db.open_tree("postmortems")?,
            jobs: db.open_tree("jobs")?,
            meta: db.open_tree("meta")?,
            alerts: db.open_tree("alerts")?,
            job_signal: Arc::new(Notify::new()),
            outbox_turn: Arc::default(),
            alerts_turn: Arc::default(),
            flushes: Arc::default(),
            db,
        })
    }

    /// Makes everything written so far durable. A success reply waits for this.
    ///
    /// Runs on tokio's blocking pool rather than through sled's `flush_async`: tokio's paused test
    /// clock waits for blocking tasks but would jump ahead while sled's own threads work.
    ///
    /// A burst of callers costs one or two disk syncs, not one each: a flush that began after a
    /// caller arrived covers everything that caller wrote, so the caller can skip its own.
    pub async fn flush(&self) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering::SeqCst;
        let gate = &self.flushes;
        let arrived = gate.begun.load(SeqCst);
        let _running = gate.running.lock().await;
        if gate.done.load(SeqCst) > arrived {
            return Ok(());
        }
        let number = gate.begun.fetch_add(1, SeqCst) + 1;
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(|e| StoreError::Flush(e.to_string()))??;
        gate.done.store(number, SeqCst);
        Ok(())
    }

    /// Takes the next incident number. Numbers are never reused, even when the open then fails.
    pub fn reserve_incident_id(&self) -> Result<IncidentId, StoreError> {
        self.next_number(NEXT_INCIDENT, "incident counter")
            .map(IncidentId)
    }

    /// Adds one to the counter at meta key `key` and returns the new value; `what` names the
    /// counter should its stored value be unreadable.
    pub(crate) fn next_number(&self, key: &[u8], what: &str) -> Result<u64, StoreError> {
        let next = self.meta.update_and_fetch(key, |old| {
            let n = old
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes)
                .unwrap_or(0);
            Some((n + 1).to_be_bytes().to_vec())
        })?;
        let bytes: [u8; 8] =
            next.as_deref()
                .and_then(|b| b.try_into().ok())
                .ok_or(StoreError::Corrupt {
                    tree: "meta",
                    reason: what.into(),
                })?;
        Ok(u64::from_be_bytes(bytes))
    }

    /// Writes the `Opened` event and the incident it makes, and indexes its channel.
    pub fn create_incident(&self, id: IncidentId, event: Event) -> Result<Incident, AppendError> {
        self.create_incident_with_jobs(id, event, |_, _| Vec::new())
    }

    /// Asks `decide` for the events to add given the incident as stored, then writes them and the
    /// new fold in one transaction, so that a rule is never checked against a stale state.
    pub fn append<F>(
        &self,
        id: IncidentId,
        actor: &Actor,
        at: DateTime<Utc>,
        decide: F,
    ) -> Result<(Incident, Vec<Event>), AppendError>
    where
        F: Fn(&Incident) -> Result<Vec<EventKind>, RuleError>,
    {
        self.append_with_jobs(id, actor, at, decide, |_, _| Vec::new())
    }

    pub fn incident(&self, id: IncidentId) -> Result<Option<Incident>, StoreError> {
        self.incidents
            .get(id.0.to_be_bytes())?
            .map(|b| decode("incidents", &b))
            .transpose()
    }

    /// Every incident, oldest first.
    pub fn incidents(&self) -> Result<Vec<Incident>, StoreError> {
        self.incidents
            .iter()
            .values()
            .map(|v| decode("incidents", &v?))
            .collect()
    }

    /// The newest incident, the console's default when none was named.
    pub fn latest_incident(&self) -> Result<Option<Incident>, StoreError> {
        self.incidents
            .last()?
            .map(|(_, v)| decode("incidents", &v))
            .transpose()
    }

    /// The timeline of one incident, in order.
    pub fn events(&self, id: IncidentId) -> Result<Vec<Event>, StoreError> {
        self.events
            .scan_prefix(id.0.to_be_bytes())
            .values()
            .map(|v| decode("events", &v?))
            .collect()
    }

    pub fn incident_by_channel(&self, channel: u64) -> Result<Option<IncidentId>, StoreError> {
        Ok(self
            .meta
            .get(channel_key(channel))?
            .and_then(|b| b.as_ref().try_into().ok())
            .map(|b: [u8; 8]| IncidentId(u64::from_be_bytes(b))))
    }

    /// Reads a small piece of bookkeeping (e.g. the console's current incident).
    pub fn meta_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .meta
            .get(format!("kv:{key}"))?
            .map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    pub fn meta_set(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.meta.insert(format!("kv:{key}"), value.as_bytes())?;
        Ok(())
    }

    /// Every key and value of every tree; lets tests prove that a rejected command wrote nothing.
    pub fn dump(&self) -> Result<Vec<DumpRow>, StoreError> {
        let mut out = Vec::new();
        for (name, tree) in [
            ("incidents", &self.incidents),
            ("events", &self.events),
            ("messages", &self.messages),
            ("deploys", &self.deploys),
            ("postmortems", &self.postmortems),
            ("jobs", &self.jobs),
            ("meta", &self.meta),
            ("alerts", &self.alerts),
        ] {
            for kv in tree.iter() {
                let (k, v) = kv?;
                out.push((name.to_string(), k.to_vec(), v.to_vec()));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Severity, State, UserRef};

    fn open(store: &Store, title: &str) -> Incident {
        let id = store.reserve_incident_id().unwrap();
        let ev = Event {
            at: Utc::now(),
            actor: Actor::User(UserRef::new(1, "alice")),
            kind: EventKind::Opened {
                title: title.into(),
                severity: Severity(2),
                summary: None,
                service: None,
                started: Utc::now(),
                channel: Some(100 + id.0),
                channel_name: None,
                drill: false,
                playbook: None,
            },
        };
        store.create_incident(id, ev).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_burst_of_flushes_shares_a_few_disk_syncs_and_each_sees_its_own_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let inc = open(&store, "burst");
        let mut tasks = Vec::new();
        for n in 0..64 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .append(inc.id, &Actor::System, Utc::now(), |i| {
                        i.decide_note(&format!("note {n}"))
                    })
                    .unwrap();
                store.flush().await.unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let begun = store
            .flushes
            .begun
            .load(std::sync::atomic::Ordering::SeqCst);
        assert!(
            (1..32).contains(&begun),
            "64 callers made {begun} disk syncs"
        );
        // A flush that returns early must still have covered its caller's write.
        store.flush().await.unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.events(inc.id).unwrap().len(), 65);
    }

    #[test]
    fn ids_are_monotonic_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            assert_eq!(open(&store, "a").id, IncidentId(1));
            assert_eq!(store.reserve_incident_id().unwrap(), IncidentId(2));
            assert_eq!(open(&store, "b").id, IncidentId(3));
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(open(&store, "c").id, IncidentId(4));
        assert_eq!(store.incident_by_channel(103).unwrap(), Some(IncidentId(3)));
    }

    #[test]
    fn reopened_database_restores_incidents_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let before;
        {
            let store = Store::open(dir.path()).unwrap();
            let inc = open(&store, "Checkout returns 500");
            let actor = Actor::User(UserRef::new(2, "bob"));
            store
                .append(inc.id, &actor, Utc::now(), |i| {
                    i.decide_update(Some(State::Monitoring), "rolled back")
                })
                .unwrap();
            before = store.incident(inc.id).unwrap().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let after = store.incident(IncidentId(1)).unwrap().unwrap();
        assert_eq!(before, after);
        let events = store.events(IncidentId(1)).unwrap();
        assert_eq!(events.len(), 3);
        // The cached fold is exactly the fold of the stored events.
        let mut folded = Incident::from_opened(IncidentId(1), &events[0]).unwrap();
        events[1..].iter().for_each(|e| folded.apply(e));
        assert_eq!(folded, after);
    }

    #[test]
    fn rejected_append_writes_nothing() {
        let store = Store::temporary().unwrap();
        let inc = open(&store, "x");
        let before = store.dump().unwrap();
        let actor = Actor::User(UserRef::new(2, "bob"));
        let err = store
            .append(inc.id, &actor, Utc::now(), |i| i.decide_reopen("why"))
            .unwrap_err();
        assert!(matches!(err, AppendError::Rule(RuleError::NotResolved(_))));
        assert_eq!(store.dump().unwrap(), before);
        let err = store
            .append(IncidentId(99), &actor, Utc::now(), |i| i.decide_note("x"))
            .unwrap_err();
        assert!(matches!(err, AppendError::Store(StoreError::Missing(_))));
    }

    #[test]
    fn unknown_schema_versions_are_refused() {
        let mut bytes = encode(&42u32);
        assert_eq!(decode::<u32>("meta", &bytes).unwrap(), 42);
        bytes[0] = SCHEMA_VERSION + 1;
        assert!(matches!(
            decode::<u32>("meta", &bytes),
            Err(StoreError::UnknownSchema { .. })
        ));
    }

    #[test]
    fn event_keys_sort_by_incident_then_sequence() {
        assert!(event_key(IncidentId(1), 300) < event_key(IncidentId(2), 0));
        assert!(event_key(IncidentId(1), 2) < event_key(IncidentId(1), 256));
    }
}
