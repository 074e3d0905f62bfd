//! Alert groups in the `alerts` tree, keyed by the sender's group key, so that a delivery seen
//! before (a retry, a repeat) changes nothing, across restarts.
//!
//! Two kinds of key share the tree: `G` group key → the group; `N` number → group key (buttons
//! carry the short number, never the key, which can be longer than a custom id).

use super::{decode, encode, Store, StoreError};
use crate::domain::{IncidentId, Severity, UserRef};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const TREE: &str = "alerts";
const BY_KEY: u8 = b'G';
const BY_NUMBER: u8 = b'N';
const NEXT_GROUP: &[u8] = b"next_alert_group";

/// One alert of a group, as last heard of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertRecord {
    pub name: String,
    pub firing: bool,
    pub starts_at: DateTime<Utc>,
    pub ends_at: Option<DateTime<Utc>>,
    pub summary: Option<String>,
    pub generator_url: Option<String>,
    pub labels: BTreeMap<String, String>,
}

/// Where a group was offered to people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Triage {
    /// Not offered: declared at once, ignored, or waiting for its post.
    None,
    /// Its own triage post.
    Posted { channel: u64, message: u64 },
    /// Named in a flood's summary post, without buttons of its own.
    Summarized,
}

/// A group of alerts as the sender grouped them, and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertGroup {
    /// Short, for buttons; given when first stored.
    pub number: u64,
    pub group_key: String,
    /// `alertmanager` or `grafana`.
    pub source: String,
    /// The route that took it, as logs name it.
    pub route: String,
    pub severity: Severity,
    pub service: Option<String>,
    /// The escalation target a declaration pages.
    pub escalate: Option<String>,
    pub headline: String,
    pub description: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub silence_url: Option<String>,
    /// By fingerprint.
    pub alerts: BTreeMap<String, AlertRecord>,
    pub triage: Triage,
    pub incident: Option<IncidentId>,
    pub dismissed_by: Option<UserRef>,
    #[serde(default)]
    pub ignored: bool,
    pub first_seen: DateTime<Utc>,
}

impl AlertGroup {
    pub fn firing(&self) -> impl Iterator<Item = &AlertRecord> {
        self.alerts.values().filter(|a| a.firing)
    }

    /// When the first of its alerts began.
    pub fn earliest_start(&self) -> Option<DateTime<Utc>> {
        self.alerts.values().map(|a| a.starts_at).min()
    }
}

/// How many triage posts went out in the current window, and the groups of a flood waiting
/// for their summary post. Held in memory only: after a restart a new window begins.
#[derive(Debug, Default)]
pub struct FloodWindow {
    pub started: Option<DateTime<Utc>>,
    pub posts: u32,
    /// One line per group, for the summary.
    pub waiting: Vec<String>,
    /// Whether a summary post is already on its way.
    pub summary_due: bool,
}

impl FloodWindow {
    /// Whether one more triage post of its own fits in the window (and counts it if so).
    pub fn admit(&mut self, now: DateTime<Utc>, window: chrono::Duration, posts: u32) -> bool {
        if self.started.map_or(true, |s| now - s >= window) {
            self.started = Some(now);
            self.posts = 0;
        }
        if self.posts < posts {
            self.posts += 1;
            true
        } else {
            false
        }
    }
}

fn key(kind: u8, rest: &[u8]) -> Vec<u8> {
    let mut k = vec![kind];
    k.extend_from_slice(rest);
    k
}

impl Store {
    pub fn alert_group(&self, group_key: &str) -> Result<Option<AlertGroup>, StoreError> {
        self.alerts
            .get(key(BY_KEY, group_key.as_bytes()))?
            .map(|b| decode(TREE, &b))
            .transpose()
    }

    pub fn alert_group_by_number(&self, number: u64) -> Result<Option<AlertGroup>, StoreError> {
        let Some(group_key) = self.alerts.get(key(BY_NUMBER, &number.to_be_bytes()))? else {
            return Ok(None);
        };
        self.alert_group(&String::from_utf8_lossy(&group_key))
    }

    /// Stores `group`, giving it a number first if it has none. Not flushed: the caller flushes
    /// before it answers.
    pub fn put_alert_group(&self, group: &mut AlertGroup) -> Result<(), StoreError> {
        if group.number == 0 {
            group.number = self.reserve_alert_number()?;
        }
        let mut batch = sled::Batch::default();
        batch.insert(key(BY_KEY, group.group_key.as_bytes()), encode(group));
        batch.insert(
            key(BY_NUMBER, &group.number.to_be_bytes()),
            group.group_key.as_bytes(),
        );
        self.alerts.apply_batch(batch)?;
        Ok(())
    }

    /// Takes the next alert group number, before anything is posted that carries it. Numbers are
    /// never reused.
    pub fn reserve_alert_number(&self) -> Result<u64, StoreError> {
        self.next_number(NEXT_GROUP, "alert group counter")
    }

    /// Waits for the sole right to change alert groups, so that a delivery and a button press
    /// on the same group never interleave; with it comes this process's flood window.
    pub async fn alerts_turn(&self) -> tokio::sync::OwnedMutexGuard<FloodWindow> {
        self.alerts_turn.clone().lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(key: &str) -> AlertGroup {
        AlertGroup {
            number: 0,
            group_key: key.into(),
            source: "alertmanager".into(),
            route: "default route".into(),
            severity: Severity(3),
            service: None,
            escalate: None,
            headline: "High error rate".into(),
            description: None,
            labels: BTreeMap::new(),
            silence_url: None,
            alerts: BTreeMap::new(),
            triage: Triage::None,
            incident: None,
            dismissed_by: None,
            ignored: false,
            first_seen: Utc::now(),
        }
    }

    #[test]
    fn a_flood_window_admits_its_posts_then_starts_again() {
        let mut w = FloodWindow::default();
        let t0 = Utc::now();
        let minute = chrono::Duration::seconds(60);
        assert!(w.admit(t0, minute, 2));
        assert!(w.admit(t0, minute, 2));
        assert!(!w.admit(t0 + chrono::Duration::seconds(59), minute, 2));
        assert!(w.admit(t0 + minute, minute, 2));
    }

    #[test]
    fn groups_survive_a_restart_under_key_and_number() {
        let dir = tempfile::tempdir().unwrap();
        let (mut a, mut b) = (group("{}:{alertname=\"A\"}"), group("{}:{alertname=\"B\"}"));
        {
            let store = Store::open(dir.path()).unwrap();
            store.put_alert_group(&mut a).unwrap();
            store.put_alert_group(&mut b).unwrap();
            assert_eq!((a.number, b.number), (1, 2));
            a.incident = Some(IncidentId(4));
            store.put_alert_group(&mut a).unwrap();
            assert_eq!(a.number, 1, "a stored group keeps its number");
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.alert_group(&a.group_key).unwrap(), Some(a));
        assert_eq!(store.alert_group_by_number(2).unwrap(), Some(b));
        assert_eq!(store.alert_group_by_number(3).unwrap(), None);
    }
}
