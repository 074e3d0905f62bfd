//! Timed jobs in the `jobs` tree, keyed by when they run so that the earliest is the first key.
//!
//! An incident has at most one job of each kind (its slot); `meta` indexes slot → key, because a
//! transaction cannot scan, and a job must be replaced in the same transaction as its cause.
//!
//! The outbox is the exception: posts a command queued ([`JobKind::Post`]) are keyed by their
//! number after every timed job, so that they keep the order they were queued in through
//! retries and the timed jobs' scans never meet them.

use super::{
    abort, decode, encode, event_key, flatten, tx_incident, AppendError, Store, StoreError,
    TxResult,
};
use crate::domain::{Actor, Event, EventKind, Incident, IncidentId, RuleError};
use crate::message::Post;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sled::transaction::{TransactionError, TransactionalTree, UnabortableTransactionError};
use sled::Transactional;

const INDEX_PREFIX: &[u8] = b"job:";
/// The first byte of outbox keys. Time keys start with 0x80 for every time chrono can hold, so
/// outbox keys sort after all of them.
const OUTBOX_PREFIX: u8 = 0xff;
/// The last number given to an outbox post.
const OUTBOX_SEQ: &[u8] = b"outbox_seq";

/// What a job does when it comes due. Later kinds add their own variants; stored, so a variant
/// is never renamed or removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "snake_case")]
pub enum JobKind {
    /// The scheduled status update (and, when the team has been quiet, the reminder).
    StatusUpdate,
    /// Nobody acknowledged `level` of an escalation in time: page the next level of `policy`'s
    /// ladder, or tell the commander that the ladder ran out. Each escalation has its own slot;
    /// `level` and `policy` ride along without naming it.
    EscalationTimeout {
        escalation: u32,
        level: u32,
        policy: Option<String>,
    },
    /// A SEV1/SEV2 still investigating after `[escalation] stuck_after`: suggest escalating.
    StuckNudge,
    /// A resolved incident's channel is archived after `[discord] archive_after`.
    Archive,
    /// The incident's place shows its severity and state (a forum post's tags).
    Labels,
    /// A post a command made, waiting in the outbox until the chat takes it. `seq` numbers the
    /// outbox across the database, in the order posts were queued; queue one with
    /// [`JobChange::Send`], which gives the number.
    Post {
        seq: u64,
        channel: u64,
        post: Box<Post>,
        /// May go out together with its neighbours in the channel as one digest message (see
        /// [`JobChange::SendInDigest`]).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        digest: bool,
    },
    /// A job of a kind that needs no variant of its own: `tag` names it (its
    /// [`crate::jobs::Kind::tag`]), `key` tells apart its slots within an incident (empty for
    /// one slot), and `data` is the kind's own, as JSON. Every kind added after the ones above
    /// is stored this way, so that a new kind changes nothing here.
    Keyed {
        tag: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        key: String,
        #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
        data: serde_json::Value,
    },
}

impl JobKind {
    /// A job of the kind tagged `tag`, in slot `key`, carrying `data`.
    pub fn keyed(tag: &str, key: impl Into<String>, data: serde_json::Value) -> JobKind {
        JobKind::Keyed {
            tag: tag.into(),
            key: key.into(),
            data,
        }
    }

    /// Names the kind in keys and nonces; stored, so never change or reuse one.
    pub fn tag(&self) -> &str {
        match self {
            JobKind::StatusUpdate => "status",
            JobKind::EscalationTimeout { .. } => "escalation",
            JobKind::StuckNudge => "stuck",
            JobKind::Archive => "archive",
            JobKind::Labels => "labels",
            JobKind::Post { .. } => "post",
            JobKind::Keyed { tag, .. } => tag,
        }
    }

    /// Tells apart the slots of one kind within an incident.
    fn instance(&self) -> Option<Vec<u8>> {
        match self {
            JobKind::EscalationTimeout { escalation, .. } => {
                Some(escalation.to_be_bytes().to_vec())
            }
            // The zero byte ends the tag, so that no tag and key run into another's.
            JobKind::Keyed { key, .. } => Some([&[0u8][..], key.as_bytes()].concat()),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub incident: IncidentId,
    pub kind: JobKind,
    /// The moment the job stands for. It stays the same across retries, so that everything the
    /// job posts keeps its nonce.
    pub due: DateTime<Utc>,
    /// Failed attempts so far.
    #[serde(default)]
    pub attempts: u32,
    /// When the next attempt runs, after a failure.
    #[serde(default)]
    pub retry_at: Option<DateTime<Utc>>,
    /// When it was first sent (or about to be), written before the send: after a long outage
    /// the platform no longer knows the nonce, and the post is looked for before it goes again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_attempt: Option<DateTime<Utc>>,
}

impl Job {
    pub fn new(incident: IncidentId, kind: JobKind, due: DateTime<Utc>) -> Job {
        Job {
            incident,
            kind,
            due,
            attempts: 0,
            retry_at: None,
            first_attempt: None,
        }
    }

    pub fn runs_at(&self) -> DateTime<Utc> {
        self.retry_at.unwrap_or(self.due)
    }
}

/// A change to an incident's jobs, written with the events that caused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobChange {
    /// Sets the job of its slot, replacing the one there.
    Put(Job),
    Cancel {
        incident: IncidentId,
        kind: JobKind,
    },
    /// Queues `post` for `channel` in the outbox, due at `due`, numbered after every post queued
    /// before it.
    Send {
        incident: IncidentId,
        channel: u64,
        post: Box<Post>,
        due: DateTime<Utc>,
    },
    /// As [`JobChange::Send`], for a post of one embed and nothing else that may share a digest
    /// message with the posts queued beside it for the same channel.
    SendInDigest {
        incident: IncidentId,
        channel: u64,
        post: Box<Post>,
        due: DateTime<Utc>,
    },
}

fn slot(incident: IncidentId, kind: &JobKind) -> Vec<u8> {
    let mut s = incident.0.to_be_bytes().to_vec();
    s.extend_from_slice(kind.tag().as_bytes());
    if let Some(n) = kind.instance() {
        s.extend_from_slice(&n);
    }
    s
}

fn index_key(incident: IncidentId, kind: &JobKind) -> Vec<u8> {
    let mut k = INDEX_PREFIX.to_vec();
    k.extend_from_slice(&slot(incident, kind));
    k
}

/// Milliseconds with the sign bit flipped, so that big-endian bytes sort like the times.
fn time_key(at: DateTime<Utc>) -> [u8; 8] {
    ((at.timestamp_millis() as u64) ^ (1 << 63)).to_be_bytes()
}

fn outbox_key(seq: u64) -> Vec<u8> {
    let mut k = vec![OUTBOX_PREFIX];
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

fn job_key(job: &Job) -> Vec<u8> {
    if let JobKind::Post { seq, .. } = job.kind {
        return outbox_key(seq);
    }
    let mut k = time_key(job.runs_at()).to_vec();
    k.extend_from_slice(&slot(job.incident, &job.kind));
    k
}

fn tx_apply(
    jobs: &TransactionalTree,
    meta: &TransactionalTree,
    change: &JobChange,
) -> Result<(), UnabortableTransactionError> {
    match change {
        JobChange::Send {
            incident,
            channel,
            post,
            due,
        }
        | JobChange::SendInDigest {
            incident,
            channel,
            post,
            due,
        } => {
            let last = meta
                .get(OUTBOX_SEQ)?
                .and_then(|b| b.as_ref().try_into().ok())
                .map(u64::from_be_bytes)
                .unwrap_or(0);
            let seq = last + 1;
            meta.insert(OUTBOX_SEQ, &seq.to_be_bytes())?;
            let kind = JobKind::Post {
                seq,
                channel: *channel,
                post: post.clone(),
                digest: matches!(change, JobChange::SendInDigest { .. }),
            };
            jobs.insert(outbox_key(seq), encode(&Job::new(*incident, kind, *due)))?;
        }
        // An outbox post's key is its number, so it needs no index.
        JobChange::Put(
            job @ Job {
                kind: JobKind::Post { seq, .. },
                ..
            },
        ) => {
            jobs.insert(outbox_key(*seq), encode(job))?;
        }
        JobChange::Cancel {
            kind: JobKind::Post { seq, .. },
            ..
        } => {
            jobs.remove(outbox_key(*seq))?;
        }
        JobChange::Put(job) => {
            let index = index_key(job.incident, &job.kind);
            if let Some(old) = meta.get(&index)? {
                jobs.remove(old)?;
            }
            let key = job_key(job);
            jobs.insert(key.as_slice(), encode(job))?;
            meta.insert(index, key)?;
        }
        JobChange::Cancel { incident, kind } => {
            if let Some(old) = meta.remove(index_key(*incident, kind))? {
                jobs.remove(old)?;
            }
        }
    }
    Ok(())
}

/// Whether `job` is still stored as it was read: nothing replaced, moved or cancelled it since.
fn tx_is_current(
    jobs: &TransactionalTree,
    meta: &TransactionalTree,
    job: &Job,
) -> Result<bool, UnabortableTransactionError> {
    Ok(match job.kind {
        JobKind::Post { seq, .. } => {
            jobs.get(outbox_key(seq))?.as_deref() == Some(encode(job).as_slice())
        }
        _ => {
            meta.get(index_key(job.incident, &job.kind))?.as_deref()
                == Some(job_key(job).as_slice())
        }
    })
}

/// Transactions on jobs alone decide nothing, so only the database can fail them.
fn jobs_only(e: TransactionError<AppendError>) -> StoreError {
    match flatten(e) {
        AppendError::Store(s) => s,
        AppendError::Rule(r) => StoreError::Corrupt {
            tree: "jobs",
            reason: r.to_string(),
        },
    }
}

impl Store {
    /// As [`Store::append`], and writes the job changes `plan` makes of the new state and events
    /// in the same transaction, so that a crash never leaves a job without its cause or the
    /// reverse.
    pub fn append_with_jobs<F, P>(
        &self,
        id: IncidentId,
        actor: &Actor,
        at: DateTime<Utc>,
        decide: F,
        plan: P,
    ) -> Result<(Incident, Vec<Event>), AppendError>
    where
        F: Fn(&Incident) -> Result<Vec<EventKind>, RuleError>,
        P: Fn(&Incident, &[Event]) -> Vec<JobChange>,
    {
        let (incident, written, changed) = (&self.incidents, &self.events, &self.jobs, &self.meta)
            .transaction(|(incidents, events, jobs, meta)| {
                let mut incident = tx_incident(incidents, id)?;
                let kinds = match decide(&incident) {
                    Ok(k) => k,
                    Err(e) => return abort(e),
                };
                let mut written = Vec::with_capacity(kinds.len());
                for kind in kinds {
                    let event = Event {
                        at,
                        actor: actor.clone(),
                        kind,
                    };
                    super::tx_push(events, &mut incident, &event)?;
                    written.push(event);
                }
                incidents.insert(&id.0.to_be_bytes(), encode(&incident))?;
                let changes = plan(&incident, &written);
                for change in &changes {
                    tx_apply(jobs, meta, change)?;
                }
                Ok((incident, written, !changes.is_empty()))
            })
            .map_err(flatten)?;
        if changed {
            self.job_signal.notify_one();
        }
        Ok((incident, written))
    }

    /// As [`Store::create_incident`], with the jobs `plan` makes for the new incident.
    pub fn create_incident_with_jobs<P>(
        &self,
        id: IncidentId,
        event: Event,
        plan: P,
    ) -> Result<Incident, AppendError>
    where
        P: Fn(&Incident, &[Event]) -> Vec<JobChange>,
    {
        let incident = Incident::from_opened(id, &event).ok_or_else(|| StoreError::Corrupt {
            tree: "events",
            reason: "an incident must start with an Opened event".into(),
        })?;
        let changes = plan(&incident, std::slice::from_ref(&event));
        let inc_bytes = encode(&incident);
        let ev_bytes = encode(&event);
        (&self.incidents, &self.events, &self.jobs, &self.meta)
            .transaction(|(incidents, events, jobs, meta)| {
                if incidents.get(id.0.to_be_bytes())?.is_some() {
                    return abort(StoreError::Corrupt {
                        tree: "incidents",
                        reason: format!("{id} exists already"),
                    });
                }
                incidents.insert(&id.0.to_be_bytes(), inc_bytes.as_slice())?;
                events.insert(&event_key(id, 0), ev_bytes.as_slice())?;
                if let Some(ch) = incident.channel {
                    meta.insert(super::channel_key(ch), &id.0.to_be_bytes())?;
                }
                for change in &changes {
                    tx_apply(jobs, meta, change)?;
                }
                Ok(())
            })
            .map_err(flatten)?;
        if !changes.is_empty() {
            self.job_signal.notify_one();
        }
        Ok(incident)
    }

    /// Changes jobs on their own, e.g. dropping one whose incident no longer wants it.
    pub fn apply_jobs(&self, changes: &[JobChange]) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        (&self.jobs, &self.meta)
            .transaction(|(jobs, meta)| -> TxResult<()> {
                for change in changes {
                    tx_apply(jobs, meta, change)?;
                }
                Ok(())
            })
            .map_err(jobs_only)?;
        self.job_signal.notify_one();
        Ok(())
    }

    /// Moves `job` to run again at `at`, counting the failed attempt, unless something replaced
    /// or cancelled it meanwhile (then that decision stands). Returns whether it moved.
    pub fn retry_job(&self, job: &Job, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let moved = (&self.jobs, &self.meta)
            .transaction(|(jobs, meta)| -> TxResult<bool> {
                if !tx_is_current(jobs, meta, job)? {
                    return Ok(false);
                }
                // The first attempt may have been written since `job` was read.
                let stored: Option<Job> = match jobs.get(job_key(job))? {
                    Some(v) => decode("jobs", &v).ok(),
                    None => None,
                };
                let next = Job {
                    attempts: job.attempts + 1,
                    retry_at: Some(at),
                    first_attempt: job.first_attempt.or(stored.and_then(|s| s.first_attempt)),
                    ..job.clone()
                };
                tx_apply(jobs, meta, &JobChange::Put(next))?;
                Ok(true)
            })
            .map_err(jobs_only)?;
        if moved {
            self.job_signal.notify_one();
        }
        Ok(moved)
    }

    /// Removes `job` once done, unless something replaced it while it ran (then the newer job
    /// stands and runs in its turn). Returns whether it was removed.
    pub fn finish_job(&self, job: &Job) -> Result<bool, StoreError> {
        let cancel = JobChange::Cancel {
            incident: job.incident,
            kind: job.kind.clone(),
        };
        let removed = (&self.jobs, &self.meta)
            .transaction(|(jobs, meta)| -> TxResult<bool> {
                if !tx_is_current(jobs, meta, job)? {
                    return Ok(false);
                }
                tx_apply(jobs, meta, &cancel)?;
                Ok(true)
            })
            .map_err(jobs_only)?;
        if removed {
            self.job_signal.notify_one();
        }
        Ok(removed)
    }

    /// Writes `at` as the first attempt of each of `jobs` not attempted before and still stored as
    /// read, and flushes, so that the mark is on disk before the sends it announces. Returns the
    /// jobs as they now are, leaving out those replaced or cancelled meanwhile.
    pub async fn mark_attempted(
        &self,
        jobs: &[Job],
        at: DateTime<Utc>,
    ) -> Result<Vec<Job>, StoreError> {
        let fresh = jobs.iter().any(|j| j.first_attempt.is_none());
        let marked = (&self.jobs, &self.meta)
            .transaction(|(tjobs, meta)| -> TxResult<Vec<Job>> {
                let mut out = Vec::with_capacity(jobs.len());
                for job in jobs {
                    if !tx_is_current(tjobs, meta, job)? {
                        continue;
                    }
                    if job.first_attempt.is_some() {
                        out.push(job.clone());
                        continue;
                    }
                    let next = Job {
                        first_attempt: Some(at),
                        ..job.clone()
                    };
                    tx_apply(tjobs, meta, &JobChange::Put(next.clone()))?;
                    out.push(next);
                }
                Ok(out)
            })
            .map_err(jobs_only)?;
        if fresh {
            self.flush().await?;
        }
        Ok(marked)
    }

    /// The job in an incident's slot of `kind`, if any.
    pub fn job(&self, incident: IncidentId, kind: &JobKind) -> Result<Option<Job>, StoreError> {
        let key = match kind {
            JobKind::Post { seq, .. } => outbox_key(*seq).into(),
            _ => match self.meta.get(index_key(incident, kind))? {
                Some(key) => key,
                None => return Ok(None),
            },
        };
        let job: Option<Job> = self
            .jobs
            .get(key)?
            .map(|v| decode("jobs", &v))
            .transpose()?;
        Ok(job.filter(|j| j.incident == incident))
    }

    /// Every job: the timed ones, the one to run first first, then the outbox in order.
    pub fn jobs(&self) -> Result<Vec<Job>, StoreError> {
        self.jobs
            .iter()
            .values()
            .map(|v| decode("jobs", &v?))
            .collect()
    }

    /// The timed job to run first, if any (the outbox is not timed: see [`Store::outbox`]).
    pub fn next_job(&self) -> Result<Option<Job>, StoreError> {
        self.jobs
            .range(..[OUTBOX_PREFIX])
            .next()
            .transpose()?
            .map(|(_, v)| decode("jobs", &v))
            .transpose()
    }

    /// The posts waiting in the outbox, in the order they were queued.
    pub fn outbox(&self) -> Result<Vec<Job>, StoreError> {
        self.jobs
            .range([OUTBOX_PREFIX]..)
            .values()
            .map(|v| decode("jobs", &v?))
            .collect()
    }

    /// How many posts wait in the outbox, and when the oldest was queued; reads one post only.
    pub fn outbox_summary(&self) -> Result<(usize, Option<DateTime<Utc>>), StoreError> {
        let range = self.jobs.range([OUTBOX_PREFIX]..);
        let oldest = match self.jobs.range([OUTBOX_PREFIX]..).values().next() {
            Some(v) => Some(decode::<Job>("jobs", &v?)?.due),
            None => None,
        };
        let mut depth = 0;
        for key in range.keys() {
            key?;
            depth += 1;
        }
        Ok((depth, oldest))
    }

    /// Jobs whose time has come by `now`, in the order they came due.
    pub fn jobs_due(&self, now: DateTime<Utc>) -> Result<Vec<Job>, StoreError> {
        // Keys run on past the time with the slot, so `..=time_key(now)` would leave out a job
        // due in `now`'s very millisecond, and the scheduler would wake for it again and again.
        self.jobs
            .range(..time_key(now + chrono::Duration::milliseconds(1)))
            .values()
            .map(|v| decode("jobs", &v?))
            .collect()
    }

    /// Waits for the sole right to deliver the outbox. The scheduler takes it for each pass; the
    /// console holds it while a command runs, so that the command's posts print after its reply.
    pub async fn outbox_turn(&self) -> tokio::sync::OwnedMutexGuard<()> {
        self.outbox_turn.clone().lock_owned().await
    }

    /// Completes when jobs changed since the last call returned (or since the store opened), so
    /// that the scheduler looks again instead of sleeping through a new, earlier job.
    pub async fn jobs_changed(&self) {
        self.job_signal.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Severity, State, UserRef};
    use chrono::TimeZone;

    fn t(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 21, 10, 0, 0).unwrap() + chrono::Duration::minutes(min)
    }

    fn opened(store: &Store) -> IncidentId {
        let id = store.reserve_incident_id().unwrap();
        let event = Event {
            at: t(0),
            actor: Actor::User(UserRef::new(1, "alice")),
            kind: EventKind::Opened {
                title: "x".into(),
                severity: Severity(1),
                summary: None,
                service: None,
                started: t(0),
                channel: Some(500 + id.0),
                channel_name: None,
                drill: false,
                playbook: None,
            },
        };
        store
            .create_incident_with_jobs(id, event, |inc, _| {
                vec![JobChange::Put(Job::new(
                    inc.id,
                    JobKind::StatusUpdate,
                    t(15),
                ))]
            })
            .unwrap();
        id
    }

    #[test]
    fn keys_sort_by_time_even_before_1970() {
        let old = Utc.with_ymd_and_hms(1960, 1, 1, 0, 0, 0).unwrap();
        assert!(time_key(old) < time_key(t(0)));
        assert!(time_key(t(0)) < time_key(t(1)));
    }

    #[test]
    fn one_job_per_slot_replaced_in_the_same_transaction_as_its_cause() {
        let store = Store::temporary().unwrap();
        let a = opened(&store);
        let b = opened(&store);
        store
            .apply_jobs(&[JobChange::Put(Job::new(b, JobKind::StatusUpdate, t(5)))])
            .unwrap();
        let order: Vec<_> = store
            .jobs()
            .unwrap()
            .into_iter()
            .map(|j| j.incident)
            .collect();
        assert_eq!(order, [b, a], "earliest first");
        assert_eq!(store.jobs_due(t(5)).unwrap().len(), 1);
        assert_eq!(store.next_job().unwrap().unwrap().due, t(5));

        let actor = Actor::User(UserRef::new(1, "alice"));
        store
            .append_with_jobs(
                a,
                &actor,
                t(2),
                |i| i.decide_update(Some(State::Identified), "found it"),
                |inc, events| {
                    assert_eq!(events.len(), 2);
                    vec![JobChange::Put(Job::new(
                        inc.id,
                        JobKind::StatusUpdate,
                        t(30),
                    ))]
                },
            )
            .unwrap();
        assert_eq!(store.jobs().unwrap().len(), 2, "replaced, not added");
        assert_eq!(
            store.job(a, &JobKind::StatusUpdate).unwrap().unwrap().due,
            t(30)
        );

        // A rejected change writes neither events nor jobs.
        let before = store.dump().unwrap();
        let err = store.append_with_jobs(
            a,
            &actor,
            t(3),
            |i| i.decide_reopen("not resolved"),
            |inc, _| {
                vec![JobChange::Cancel {
                    incident: inc.id,
                    kind: JobKind::StatusUpdate,
                }]
            },
        );
        assert!(err.is_err());
        assert_eq!(store.dump().unwrap(), before);

        store
            .apply_jobs(&[JobChange::Cancel {
                incident: a,
                kind: JobKind::StatusUpdate,
            }])
            .unwrap();
        assert_eq!(store.job(a, &JobKind::StatusUpdate).unwrap(), None);
        assert_eq!(store.jobs().unwrap().len(), 1);
    }

    #[test]
    fn retries_move_a_job_but_never_resurrect_a_replaced_one() {
        let store = Store::temporary().unwrap();
        let a = opened(&store);
        let job = store.job(a, &JobKind::StatusUpdate).unwrap().unwrap();
        assert!(store.retry_job(&job, t(16)).unwrap());
        let moved = store.job(a, &JobKind::StatusUpdate).unwrap().unwrap();
        assert_eq!(
            (moved.due, moved.runs_at(), moved.attempts),
            (t(15), t(16), 1)
        );
        assert_eq!(store.jobs().unwrap().len(), 1);
        // `job` is stale now: retrying it again must not bring it back.
        assert!(!store.retry_job(&job, t(17)).unwrap());
        assert_eq!(store.job(a, &JobKind::StatusUpdate).unwrap(), Some(moved));
    }

    #[test]
    fn finishing_a_job_leaves_the_one_that_replaced_it_while_it_ran() {
        let store = Store::temporary().unwrap();
        let a = opened(&store);
        let ran = Job::new(a, JobKind::Labels, t(1));
        store.apply_jobs(&[JobChange::Put(ran.clone())]).unwrap();
        let newer = Job::new(a, JobKind::Labels, t(2));
        store.apply_jobs(&[JobChange::Put(newer.clone())]).unwrap();
        assert!(!store.finish_job(&ran).unwrap());
        assert_eq!(store.job(a, &JobKind::Labels).unwrap(), Some(newer.clone()));
        assert!(store.finish_job(&newer).unwrap());
        assert_eq!(store.job(a, &JobKind::Labels).unwrap(), None);
    }

    fn send(incident: IncidentId, channel: u64, text: &str, due: DateTime<Utc>) -> JobChange {
        JobChange::Send {
            incident,
            channel,
            post: Box::new(Post::text(text)),
            due,
        }
    }

    fn seq_of(job: &Job) -> u64 {
        match job.kind {
            JobKind::Post { seq, .. } => seq,
            _ => panic!("not an outbox post: {job:?}"),
        }
    }

    #[test]
    fn an_older_database_reads_the_same_and_the_outbox_stays_out_of_the_timed_scans() {
        let store = Store::temporary().unwrap();
        // A status update as an older build wrote it: under its time key, indexed by its slot.
        let id = IncidentId(3);
        let mut key = time_key(t(15)).to_vec();
        key.extend_from_slice(&3u64.to_be_bytes());
        key.extend_from_slice(b"status");
        let mut value = vec![crate::store::SCHEMA_VERSION];
        value.extend_from_slice(br#"{"incident":3,"kind":{"job":"status_update"},"due":"2026-11-21T10:15:00Z","attempts":0,"retry_at":null}"#);
        store.jobs.insert(&key, value).unwrap();
        let mut index = b"job:".to_vec();
        index.extend_from_slice(&3u64.to_be_bytes());
        index.extend_from_slice(b"status");
        store.meta.insert(index, key).unwrap();
        let old = Job::new(id, JobKind::StatusUpdate, t(15));
        assert_eq!(
            store.job(id, &JobKind::StatusUpdate).unwrap(),
            Some(old.clone())
        );

        // Posts queued earlier than the timed job still sort after it, in the order queued.
        store
            .apply_jobs(&[send(id, 9, "first", t(1)), send(id, 9, "second", t(1))])
            .unwrap();
        store.apply_jobs(&[send(id, 8, "third", t(0))]).unwrap();
        assert_eq!(store.next_job().unwrap(), Some(old.clone()));
        assert_eq!(store.jobs_due(t(20)).unwrap(), std::slice::from_ref(&old));
        let outbox = store.outbox().unwrap();
        assert_eq!(outbox.iter().map(seq_of).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(store.jobs().unwrap().len(), 4);
        assert!(
            time_key(DateTime::<Utc>::MAX_UTC)[0] < OUTBOX_PREFIX,
            "no time chrono can hold sorts among the outbox"
        );

        // An outbox post retries in place and is found by its number.
        let first = outbox[0].clone();
        assert!(store.retry_job(&first, t(2)).unwrap());
        assert!(
            !store.retry_job(&first, t(3)).unwrap(),
            "stale: already moved"
        );
        let moved = store.job(id, &first.kind).unwrap().unwrap();
        assert_eq!((moved.attempts, moved.runs_at()), (1, t(2)));
        assert_eq!(store.outbox().unwrap()[0], moved, "still first");
        assert_eq!(store.job(IncidentId(4), &first.kind).unwrap(), None);
        store
            .apply_jobs(&[JobChange::Cancel {
                incident: id,
                kind: first.kind.clone(),
            }])
            .unwrap();
        assert_eq!(store.job(id, &first.kind).unwrap(), None);
        assert_eq!(store.outbox().unwrap().len(), 2);
        assert_eq!(store.next_job().unwrap(), Some(old));
    }

    #[test]
    fn outbox_numbers_go_on_after_a_restart_and_a_rejected_change_queues_nothing() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let a = opened(&store);
            store.apply_jobs(&[send(a, 9, "one", t(1))]).unwrap();
            let actor = Actor::User(UserRef::new(1, "alice"));
            let before = store.dump().unwrap();
            let refused = store.append_with_jobs(
                a,
                &actor,
                t(2),
                |i| i.decide_reopen("not resolved"),
                |inc, _| vec![send(inc.id, 9, "never", t(2))],
            );
            assert!(refused.is_err());
            assert_eq!(store.dump().unwrap(), before);
            store
                .append_with_jobs(
                    a,
                    &actor,
                    t(2),
                    |i| i.decide_note("two"),
                    |inc, _| vec![send(inc.id, 9, "two", t(2))],
                )
                .unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let a = opened(&store);
        store.apply_jobs(&[send(a, 9, "three", t(3))]).unwrap();
        let seqs: Vec<u64> = store.outbox().unwrap().iter().map(seq_of).collect();
        assert_eq!(seqs, [1, 2, 3]);
    }

    #[tokio::test]
    async fn writers_wake_the_scheduler() {
        let store = Store::temporary().unwrap();
        opened(&store);
        tokio::time::timeout(std::time::Duration::from_secs(5), store.jobs_changed())
            .await
            .expect("a job change is signalled even when nobody was waiting yet");
    }

    #[test]
    fn keyed_kinds_get_a_slot_per_key_and_leave_the_old_slots_as_they_were() {
        // The slots written before keyed kinds existed must be found again as they were.
        let esc = JobKind::EscalationTimeout {
            escalation: 2,
            level: 1,
            policy: None,
        };
        let mut old = 7u64.to_be_bytes().to_vec();
        old.extend_from_slice(b"escalation");
        old.extend_from_slice(&2u32.to_be_bytes());
        assert_eq!(slot(IncidentId(7), &esc), old);
        let mut status = 7u64.to_be_bytes().to_vec();
        status.extend_from_slice(b"status");
        assert_eq!(slot(IncidentId(7), &JobKind::StatusUpdate), status);

        let store = Store::temporary().unwrap();
        let a = JobKind::keyed("handoff", "dba", serde_json::json!({"role": 5}));
        let b = JobKind::keyed("handoff", "sre", serde_json::Value::Null);
        store
            .apply_jobs(&[
                JobChange::Put(Job::new(IncidentId::HOUSE, a.clone(), t(5))),
                JobChange::Put(Job::new(IncidentId::HOUSE, b.clone(), t(3))),
                // Same slot as `a`: replaces it, whatever its data.
                JobChange::Put(Job::new(
                    IncidentId::HOUSE,
                    JobKind::keyed("handoff", "dba", serde_json::json!({"role": 6})),
                    t(9),
                )),
            ])
            .unwrap();
        let jobs = store.jobs().unwrap();
        let kinds: Vec<(&str, DateTime<Utc>)> =
            jobs.iter().map(|j| (j.kind.tag(), j.due)).collect();
        assert_eq!(kinds, [("handoff", t(3)), ("handoff", t(9))]);
        assert_eq!(
            store.job(IncidentId::HOUSE, &a).unwrap().unwrap().kind,
            JobKind::keyed("handoff", "dba", serde_json::json!({"role": 6}))
        );
        // A tag that is another's tag and key run together is still its own slot.
        assert_ne!(
            slot(
                IncidentId::HOUSE,
                &JobKind::keyed("ab", "", serde_json::Value::Null)
            ),
            slot(
                IncidentId::HOUSE,
                &JobKind::keyed("a", "b", serde_json::Value::Null)
            )
        );
        let json = serde_json::to_string(&b).unwrap();
        assert_eq!(json, r#"{"job":"keyed","tag":"handoff","key":"sre"}"#);
        assert_eq!(serde_json::from_str::<JobKind>(&json).unwrap(), b);
    }
}
