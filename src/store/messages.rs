//! Messages of incident channels and threads in the `messages` tree, keyed incident ++ message id.
//!
//! Discord ids are snowflakes, whose high bits are a timestamp, so big-endian key order is time
//! order and the last key of an incident is where a backfill resumes. The messages themselves are
//! not timeline events (a busy channel would drown the timeline); a message becomes a timeline
//! event only when someone highlights it, and from then on its edits and deletion are events too.

use super::{decode, encode, flatten, tx_incident, AppendError, Store, StoreError};
use crate::domain::{Actor, Event, EventKind, IncidentId, UserRef};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sled::transaction::TransactionalTree;
use sled::Transactional;

const TREE: &str = "messages";

/// A file attached to a message, as the chat platform lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageAttachment {
    pub name: String,
    pub url: String,
    /// The MIME type, when the platform knows it.
    pub content_type: Option<String>,
}

/// A text a message had before an edit replaced it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRevision {
    /// When this text was written: the message's time, or the edit that produced it.
    pub at: DateTime<Utc>,
    pub content: String,
}

/// Who made a message a key moment of the timeline, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Highlight {
    pub at: DateTime<Utc>,
    pub by: Actor,
}

/// One message as captured from an incident's channel or thread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapturedMessage {
    pub id: u64,
    pub channel: u64,
    pub author: UserRef,
    pub at: DateTime<Utc>,
    /// The newest text; earlier ones are in `history`.
    pub content: String,
    #[serde(default)]
    pub attachments: Vec<MessageAttachment>,
    /// The message this one answers.
    #[serde(default)]
    pub reply_to: Option<u64>,
    /// Texts replaced by edits, oldest first.
    #[serde(default)]
    pub history: Vec<MessageRevision>,
    #[serde(default)]
    pub edited_at: Option<DateTime<Utc>>,
    /// Deleted messages stay, marked, so that a highlight never points at nothing.
    #[serde(default)]
    pub deleted_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub highlighted: Option<Highlight>,
}

impl CapturedMessage {
    pub fn new(
        id: u64,
        channel: u64,
        author: UserRef,
        at: DateTime<Utc>,
        content: impl Into<String>,
    ) -> Self {
        CapturedMessage {
            id,
            channel,
            author,
            at,
            content: content.into(),
            attachments: Vec::new(),
            reply_to: None,
            history: Vec::new(),
            edited_at: None,
            deleted_at: None,
            highlighted: None,
        }
    }

    pub fn is_deleted(&self) -> bool {
        self.deleted_at.is_some()
    }
}

/// What [`Store::highlight_message`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Highlighted {
    /// The message is now on the timeline; this is the event that put it there.
    Added(Event),
    /// It was already on the timeline; a message is highlighted once.
    Already(Highlight),
    /// No such message was captured in this incident.
    UnknownMessage,
}

fn message_key(incident: IncidentId, message: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&incident.0.to_be_bytes());
    k[8..].copy_from_slice(&message.to_be_bytes());
    k
}

fn tx_message(
    messages: &TransactionalTree,
    key: &[u8],
) -> super::TxResult<Option<CapturedMessage>> {
    match messages.get(key)? {
        Some(bytes) => match decode(TREE, &bytes) {
            Ok(m) => Ok(Some(m)),
            Err(e) => super::abort(e),
        },
        None => Ok(None),
    }
}

/// Appends one event to an incident inside a transaction, folding it into the cached state.
fn tx_append(
    incidents: &TransactionalTree,
    events: &TransactionalTree,
    id: IncidentId,
    event: &Event,
) -> super::TxResult<()> {
    let mut incident = tx_incident(incidents, id)?;
    super::tx_push(events, &mut incident, event)?;
    incidents.insert(&id.0.to_be_bytes(), encode(&incident))?;
    Ok(())
}

/// Transactions here check no rules, so only the database can fail them.
fn store_only(e: sled::transaction::TransactionError<AppendError>) -> StoreError {
    match flatten(e) {
        AppendError::Store(s) => s,
        AppendError::Rule(r) => StoreError::Corrupt {
            tree: TREE,
            reason: r.to_string(),
        },
    }
}

fn captured_event(msg: &CapturedMessage, change: &str) -> EventKind {
    EventKind::MessageCaptured {
        message_id: msg.id,
        author: msg.author.clone(),
        content: if change == "deleted" {
            String::new()
        } else {
            msg.content.clone()
        },
        change: change.into(),
        said_at: Some(msg.at),
    }
}

impl Store {
    /// Stores a message of an incident's channel. Capturing a message again keeps one copy; a
    /// copy whose text differs from the stored one (an edit missed while offline, found by a
    /// backfill) is recorded as that edit, and attachments it brings replace the stored ones.
    /// Returns whether the message was new.
    pub fn capture_message(
        &self,
        incident: IncidentId,
        msg: &CapturedMessage,
    ) -> Result<bool, StoreError> {
        let key = message_key(incident, msg.id);
        let mut fresh = msg.clone();
        fresh.history.clear();
        fresh.highlighted = None;
        fresh.deleted_at = None;
        let bytes = encode(&fresh);
        loop {
            match self.messages.get(key)? {
                None => {
                    // Insert only if still absent: a concurrent capture or highlight wins.
                    if self
                        .messages
                        .compare_and_swap(key, None as Option<&[u8]>, Some(bytes.as_slice()))?
                        .is_ok()
                    {
                        return Ok(true);
                    }
                }
                Some(bytes) => {
                    let current = bytes.clone();
                    let stored: CapturedMessage = decode(TREE, &bytes)?;
                    if stored.is_deleted() {
                        return Ok(false);
                    }
                    // A copy from before the stored edit (gateway events are handled
                    // concurrently, so an edit can overtake its message): its text is an
                    // earlier revision, not a new one.
                    if msg.edited_at < stored.edited_at {
                        let known = stored.content == msg.content
                            || stored.history.iter().any(|r| r.content == msg.content);
                        if !known {
                            let mut merged = stored.clone();
                            let at = msg.edited_at.unwrap_or(msg.at);
                            let i = merged.history.partition_point(|r| r.at <= at);
                            merged.history.insert(
                                i,
                                MessageRevision {
                                    at,
                                    content: msg.content.clone(),
                                },
                            );
                            let swapped = self.messages.compare_and_swap(
                                key,
                                Some(bytes),
                                Some(encode(&merged).as_slice()),
                            )?;
                            if swapped.is_err() {
                                continue;
                            }
                        }
                        return Ok(false);
                    }
                    // A first capture without content (no message-content intent) lacks them.
                    if !msg.attachments.is_empty() && stored.attachments != msg.attachments {
                        let mut merged = stored.clone();
                        merged.attachments = msg.attachments.clone();
                        let swapped = self.messages.compare_and_swap(
                            key,
                            Some(bytes),
                            Some(encode(&merged).as_slice()),
                        )?;
                        if swapped.is_err() {
                            continue;
                        }
                    }
                    // Stored without its text (read without the message-content intent,
                    // which blanks attachments too), now read with it: the text it had, not
                    // an edit.
                    let unread = stored.content.is_empty()
                        && stored.attachments.is_empty()
                        && stored.history.is_empty();
                    if unread && !msg.content.is_empty() {
                        let mut filled = stored.clone();
                        filled.content = msg.content.clone();
                        filled.edited_at = msg.edited_at;
                        filled.attachments = msg.attachments.clone();
                        // After a swap of attachments above this copy is stale: the swap
                        // fails and the next round reads the new one.
                        let swapped = self.messages.compare_and_swap(
                            key,
                            Some(current),
                            Some(encode(&filled).as_slice()),
                        )?;
                        if swapped.is_err() {
                            continue;
                        }
                        return Ok(false);
                    }
                    // A copy read without the message-content intent says nothing of the
                    // text: it never blanks words kept from a copy that had them.
                    let textless = msg.content.is_empty() && msg.attachments.is_empty();
                    if stored.content != msg.content && !textless {
                        self.edit_message(
                            incident,
                            msg.id,
                            &msg.content,
                            msg.edited_at.unwrap_or(msg.at),
                        )?;
                    }
                    return Ok(false);
                }
            }
        }
    }

    /// Records an edit: the old text moves to the history. Returns false when the message is
    /// unknown, deleted, or its text did not change (Discord sends updates for embeds too).
    pub fn edit_message(
        &self,
        incident: IncidentId,
        message: u64,
        content: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let key = message_key(incident, message);
        (&self.messages, &self.incidents, &self.events)
            .transaction(|(messages, incidents, events)| {
                let Some(mut msg) = tx_message(messages, &key)? else {
                    return Ok(false);
                };
                if msg.is_deleted() || msg.content == content {
                    return Ok(false);
                }
                let old = std::mem::replace(&mut msg.content, content.to_string());
                msg.history.push(MessageRevision {
                    at: msg.edited_at.unwrap_or(msg.at),
                    content: old,
                });
                msg.edited_at = Some(at);
                messages.insert(&key, encode(&msg))?;
                if msg.highlighted.is_some() {
                    let event = Event {
                        at,
                        actor: Actor::User(msg.author.clone()),
                        kind: captured_event(&msg, "edited"),
                    };
                    tx_append(incidents, events, incident, &event)?;
                }
                Ok(true)
            })
            .map_err(store_only)
    }

    /// Marks a message deleted; its texts stay for the record. Returns false when it is unknown
    /// or already marked.
    pub fn delete_message(
        &self,
        incident: IncidentId,
        message: u64,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let key = message_key(incident, message);
        (&self.messages, &self.incidents, &self.events)
            .transaction(|(messages, incidents, events)| {
                let Some(mut msg) = tx_message(messages, &key)? else {
                    return Ok(false);
                };
                if msg.is_deleted() {
                    return Ok(false);
                }
                msg.deleted_at = Some(at);
                messages.insert(&key, encode(&msg))?;
                if msg.highlighted.is_some() {
                    // Discord does not say who deleted a message.
                    let event = Event {
                        at,
                        actor: Actor::System,
                        kind: captured_event(&msg, "deleted"),
                    };
                    tx_append(incidents, events, incident, &event)?;
                }
                Ok(true)
            })
            .map_err(store_only)
    }

    /// Makes a captured message a key moment: marks it and appends `MessageCaptured` with change
    /// `highlighted`, in one transaction, once per message however often it is asked.
    pub fn highlight_message(
        &self,
        incident: IncidentId,
        message: u64,
        by: &Actor,
        at: DateTime<Utc>,
    ) -> Result<Highlighted, StoreError> {
        let key = message_key(incident, message);
        (&self.messages, &self.incidents, &self.events)
            .transaction(|(messages, incidents, events)| {
                let Some(mut msg) = tx_message(messages, &key)? else {
                    return Ok(Highlighted::UnknownMessage);
                };
                if let Some(h) = &msg.highlighted {
                    return Ok(Highlighted::Already(h.clone()));
                }
                msg.highlighted = Some(Highlight { at, by: by.clone() });
                messages.insert(&key, encode(&msg))?;
                let event = Event {
                    at,
                    actor: by.clone(),
                    kind: captured_event(&msg, "highlighted"),
                };
                tx_append(incidents, events, incident, &event)?;
                Ok(Highlighted::Added(event))
            })
            .map_err(store_only)
    }

    pub fn message(
        &self,
        incident: IncidentId,
        message: u64,
    ) -> Result<Option<CapturedMessage>, StoreError> {
        self.messages
            .get(message_key(incident, message))?
            .map(|b| decode(TREE, &b))
            .transpose()
    }

    /// Every captured message of an incident, deleted ones included, oldest first.
    pub fn messages(&self, incident: IncidentId) -> Result<Vec<CapturedMessage>, StoreError> {
        self.messages
            .scan_prefix(incident.0.to_be_bytes())
            .values()
            .map(|v| decode(TREE, &v?))
            .collect()
    }

    /// The newest captured message id of an incident: where a history backfill resumes.
    pub fn last_message_id(&self, incident: IncidentId) -> Result<Option<u64>, StoreError> {
        let Some(kv) = self
            .messages
            .scan_prefix(incident.0.to_be_bytes())
            .next_back()
        else {
            return Ok(None);
        };
        let (key, _) = kv?;
        let id: [u8; 8] =
            key.get(8..16)
                .and_then(|b| b.try_into().ok())
                .ok_or(StoreError::Corrupt {
                    tree: TREE,
                    reason: "message key is not incident ++ message id".into(),
                })?;
        Ok(Some(u64::from_be_bytes(id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Severity;
    use chrono::{Duration, TimeZone};

    fn t(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 21, 10, 0, 0).unwrap() + Duration::minutes(min)
    }

    fn setup() -> (Store, IncidentId) {
        let store = Store::temporary().unwrap();
        let id = store.reserve_incident_id().unwrap();
        let ev = Event {
            at: t(0),
            actor: Actor::User(UserRef::new(1, "alice")),
            kind: EventKind::Opened {
                title: "Checkout returns 500".into(),
                severity: Severity(2),
                summary: None,
                service: None,
                started: t(0),
                channel: Some(500),
                channel_name: None,
                drill: false,
                playbook: None,
            },
        };
        store.create_incident(id, ev).unwrap();
        (store, id)
    }

    fn msg(id: u64, min: i64, text: &str) -> CapturedMessage {
        CapturedMessage::new(id, 500, UserRef::new(2, "bob"), t(min), text)
    }

    #[test]
    fn text_read_later_fills_a_message_stored_without_it() {
        let (store, id) = setup();
        assert!(store.capture_message(id, &msg(100, 1, "")).unwrap());
        assert!(!store
            .capture_message(id, &msg(100, 1, "db is down"))
            .unwrap());
        let m = store.message(id, 100).unwrap().unwrap();
        assert_eq!(m.content, "db is down");
        assert!(m.history.is_empty(), "not an edit: {:?}", m.history);
        assert_eq!(m.edited_at, None);
        // Text that changes after that is an edit again.
        assert!(!store.capture_message(id, &msg(100, 1, "db is up")).unwrap());
        assert_eq!(store.message(id, 100).unwrap().unwrap().history.len(), 1);
    }

    #[test]
    fn messages_come_back_in_snowflake_order_once_each() {
        let (store, id) = setup();
        assert_eq!(store.last_message_id(id).unwrap(), None);
        assert!(store.capture_message(id, &msg(300, 3, "c")).unwrap());
        assert!(store.capture_message(id, &msg(100, 1, "a")).unwrap());
        assert!(store.capture_message(id, &msg(256, 2, "b")).unwrap());
        assert!(!store.capture_message(id, &msg(100, 1, "a")).unwrap());
        let mut with_file = msg(100, 1, "a");
        with_file.attachments.push(MessageAttachment {
            name: "graph.png".into(),
            url: "https://cdn.example.com/graph.png".into(),
            content_type: Some("image/png".into()),
        });
        assert!(!store.capture_message(id, &with_file).unwrap());
        assert_eq!(store.message(id, 100).unwrap().unwrap(), with_file);
        let texts: Vec<String> = store
            .messages(id)
            .unwrap()
            .into_iter()
            .map(|m| m.content)
            .collect();
        assert_eq!(texts, ["a", "b", "c"]);
        assert_eq!(store.last_message_id(id).unwrap(), Some(300));
        assert!(store.messages(IncidentId(id.0 + 1)).unwrap().is_empty());
    }

    #[test]
    fn edits_keep_history_and_deletes_are_marked() {
        let (store, id) = setup();
        store.capture_message(id, &msg(1, 1, "first")).unwrap();
        assert!(store.edit_message(id, 1, "second", t(2)).unwrap());
        assert!(!store.edit_message(id, 1, "second", t(3)).unwrap());
        assert!(!store.edit_message(id, 9, "x", t(3)).unwrap());
        // A backfill that finds newer text records it as an edit, not as a second message.
        let mut later = msg(1, 1, "third");
        later.edited_at = Some(t(4));
        assert!(!store.capture_message(id, &later).unwrap());
        let m = store.message(id, 1).unwrap().unwrap();
        assert_eq!(m.content, "third");
        assert_eq!(
            m.history,
            [
                MessageRevision {
                    at: t(1),
                    content: "first".into()
                },
                MessageRevision {
                    at: t(2),
                    content: "second".into()
                }
            ]
        );
        assert!(store.delete_message(id, 1, t(5)).unwrap());
        assert!(!store.delete_message(id, 1, t(6)).unwrap());
        let m = store.message(id, 1).unwrap().unwrap();
        assert_eq!(m.deleted_at, Some(t(5)));
        assert_eq!(m.content, "third", "deleted text stays for the record");
        assert!(!store.edit_message(id, 1, "ghost", t(7)).unwrap());
        // Plain messages never touch the timeline.
        assert_eq!(store.events(id).unwrap().len(), 1);
    }

    #[test]
    fn an_edit_that_overtakes_its_message_is_not_undone() {
        let (store, id) = setup();
        let mut edited = msg(1, 1, "restarting the consumer on node 3");
        edited.edited_at = Some(t(2));
        assert!(store.capture_message(id, &edited).unwrap());
        // The original arrives late: it becomes the earlier revision, once.
        for _ in 0..2 {
            assert!(!store
                .capture_message(id, &msg(1, 1, "restarting the consumer"))
                .unwrap());
        }
        let m = store.message(id, 1).unwrap().unwrap();
        assert_eq!(m.content, "restarting the consumer on node 3");
        assert_eq!(m.edited_at, Some(t(2)));
        assert_eq!(
            m.history,
            [MessageRevision {
                at: t(1),
                content: "restarting the consumer".into()
            }]
        );
    }

    #[test]
    fn a_message_is_highlighted_once_and_then_its_changes_are_events() {
        let (store, id) = setup();
        let carol = Actor::User(UserRef::new(3, "carol"));
        store
            .capture_message(id, &msg(7, 1, "rolled back"))
            .unwrap();
        assert_eq!(
            store.highlight_message(id, 8, &carol, t(2)).unwrap(),
            Highlighted::UnknownMessage
        );
        let Highlighted::Added(ev) = store.highlight_message(id, 7, &carol, t(2)).unwrap() else {
            panic!("not added")
        };
        assert_eq!(ev.actor, carol);
        assert!(matches!(
            store.highlight_message(id, 7, &Actor::System, t(3)).unwrap(),
            Highlighted::Already(Highlight { by, .. }) if by == carol
        ));
        // Capturing it again (a backfill) keeps the highlight.
        store
            .capture_message(id, &msg(7, 1, "rolled back"))
            .unwrap();
        assert!(store.message(id, 7).unwrap().unwrap().highlighted.is_some());
        store.edit_message(id, 7, "rolled back v2", t(4)).unwrap();
        store.delete_message(id, 7, t(5)).unwrap();
        let changes: Vec<String> = store
            .events(id)
            .unwrap()
            .into_iter()
            .filter_map(|e| match e.kind {
                EventKind::MessageCaptured { change, .. } => Some(change),
                _ => None,
            })
            .collect();
        assert_eq!(changes, ["highlighted", "edited", "deleted"]);
        let inc = store.incident(id).unwrap().unwrap();
        assert_eq!(inc.events, 4, "the cached fold counted every event");
    }

    #[test]
    fn message_keys_sort_by_incident_then_snowflake() {
        assert!(message_key(IncidentId(1), u64::MAX) < message_key(IncidentId(2), 0));
        assert!(message_key(IncidentId(1), 255) < message_key(IncidentId(1), 256));
    }
}
