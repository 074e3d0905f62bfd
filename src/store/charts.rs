//! Chart images of metric snapshots in the `meta` tree, keyed by the event they illustrate.
//!
//! The event itself keeps only the chart's file name; the PNG is posted to chat and kept here,
//! so that the incident browser can show it long after the chat's copy has expired.

use super::{Store, StoreError, SCHEMA_VERSION};
use crate::domain::{Incident, IncidentId};

const PREFIX: &[u8] = b"chart:";

fn key(incident: IncidentId, seq: u32) -> Vec<u8> {
    let mut k = PREFIX.to_vec();
    k.extend_from_slice(&incident.0.to_be_bytes());
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The sequence number of the `index`-th of the `written` events an append just returned,
/// given the incident as that append left it.
pub fn written_seq(after: &Incident, written: usize, index: usize) -> u32 {
    after.events - written as u32 + index as u32
}

impl Store {
    /// Keeps the chart of event `seq` of `incident`; the image bytes follow a version byte.
    pub fn put_chart(&self, incident: IncidentId, seq: u32, png: &[u8]) -> Result<(), StoreError> {
        let mut value = Vec::with_capacity(png.len() + 1);
        value.push(SCHEMA_VERSION);
        value.extend_from_slice(png);
        self.meta.insert(key(incident, seq), value)?;
        Ok(())
    }

    pub fn chart(&self, incident: IncidentId, seq: u32) -> Result<Option<Vec<u8>>, StoreError> {
        match self.meta.get(key(incident, seq))? {
            None => Ok(None),
            Some(v) => match v.split_first() {
                Some((&version, png)) if version >= 1 && version <= SCHEMA_VERSION => {
                    Ok(Some(png.to_vec()))
                }
                Some((&found, _)) => Err(StoreError::UnknownSchema {
                    tree: "meta",
                    found,
                }),
                None => Err(StoreError::Corrupt {
                    tree: "meta",
                    reason: "empty chart".into(),
                }),
            },
        }
    }

    /// The events of `incident` that have a chart stored.
    pub fn chart_seqs(&self, incident: IncidentId) -> Result<Vec<u32>, StoreError> {
        let mut prefix = PREFIX.to_vec();
        prefix.extend_from_slice(&incident.0.to_be_bytes());
        self.meta
            .scan_prefix(&prefix)
            .keys()
            .map(|k| {
                let k = k?;
                k.get(prefix.len()..)
                    .and_then(|b| b.try_into().ok())
                    .map(u32::from_be_bytes)
                    .ok_or(StoreError::Corrupt {
                        tree: "meta",
                        reason: "chart key is not incident ++ sequence".into(),
                    })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_kept_per_event() {
        let store = Store::temporary().unwrap();
        store.put_chart(IncidentId(2), 5, b"\x89PNG one").unwrap();
        store.put_chart(IncidentId(2), 300, b"\x89PNG two").unwrap();
        store.put_chart(IncidentId(3), 1, b"\x89PNG other").unwrap();
        assert_eq!(
            store.chart(IncidentId(2), 300).unwrap().unwrap(),
            b"\x89PNG two"
        );
        assert_eq!(store.chart(IncidentId(2), 6).unwrap(), None);
        assert_eq!(store.chart_seqs(IncidentId(2)).unwrap(), vec![5, 300]);
    }

    #[test]
    fn written_seq_names_the_event_an_append_wrote() {
        use crate::domain::{Actor, Event, EventKind, Severity};
        let store = Store::temporary().unwrap();
        let id = store.reserve_incident_id().unwrap();
        let at = chrono::Utc::now();
        let opened = EventKind::Opened {
            title: "x".into(),
            severity: Severity(2),
            summary: None,
            service: None,
            started: at,
            channel: None,
            channel_name: None,
            drill: false,
            playbook: None,
        };
        store
            .create_incident(
                id,
                Event {
                    at,
                    actor: Actor::System,
                    kind: opened,
                },
            )
            .unwrap();
        let note = |t: &str| EventKind::NoteAdded { text: t.into() };
        let snapshot = EventKind::MetricSnapshot {
            query: "q".into(),
            summary: "s".into(),
            chart: Some("chart.png".into()),
        };
        let (after, written) = store
            .append(id, &Actor::System, at, |_| {
                Ok(vec![note("a"), snapshot.clone(), note("b")])
            })
            .unwrap();
        let seq = written_seq(&after, written.len(), 1);
        let events = store.events(id).unwrap();
        assert_eq!(events[seq as usize].kind, snapshot);
    }
}
