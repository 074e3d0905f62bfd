//! Stretches of time the bot ran without message text, kept in the `meta` tree for drafts to own up to.
//!
//! Discord delivers messages without their words unless the bot has the message-content intent.
//! A message captured then is stored with empty text, and nothing in the message says why; this
//! record does, so that a draft covering that time can say what it lacks. It also remembers which
//! incidents were already told, so that each hears of one stretch once however often the bot
//! restarts during it.

use super::{decode, encode, Store, StoreError};
use crate::domain::IncidentId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

const KEY: &[u8] = b"content_gaps";

/// Why message text was not available.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GapReason {
    /// `[discord] message_content = false`: the operator chose to run without it.
    Configured,
    /// Discord refused the intent (gateway close 4014): the developer-portal toggle is off.
    Refused,
}

/// One stretch without message text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentGap {
    pub from: DateTime<Utc>,
    /// When text came back; `None` while the bot still runs without it.
    pub to: Option<DateTime<Utc>>,
    pub reason: GapReason,
    /// Incidents already told about this stretch.
    #[serde(default)]
    pub told: Vec<u64>,
    /// Incidents whose channel was read again, with text, once it came back.
    #[serde(default)]
    pub recovered: Vec<u64>,
}

impl ContentGap {
    /// Whether this stretch overlaps `[from, to]` (`to` open: up to now).
    pub fn overlaps(&self, from: DateTime<Utc>, to: Option<DateTime<Utc>>) -> bool {
        let starts_before_end = to.map_or(true, |to| self.from <= to);
        let ends_after_start = self.to.map_or(true, |end| end >= from);
        starts_before_end && ends_after_start
    }
}

impl Store {
    /// Every stretch without message text, oldest first.
    pub fn content_gaps(&self) -> Result<Vec<ContentGap>, StoreError> {
        match self.meta.get(KEY)? {
            Some(v) => decode("meta", &v),
            None => Ok(Vec::new()),
        }
    }

    /// The stretch the bot is in now, if it runs without message text.
    pub fn open_content_gap(&self) -> Result<Option<ContentGap>, StoreError> {
        Ok(self.content_gaps()?.into_iter().find(|g| g.to.is_none()))
    }

    fn update_gaps(&self, f: impl Fn(&mut Vec<ContentGap>)) -> Result<Vec<ContentGap>, StoreError> {
        let mut failed = None;
        let new = self.meta.update_and_fetch(KEY, |old| {
            let mut gaps: Vec<ContentGap> = match old.map(|v| decode("meta", v)) {
                None => Vec::new(),
                Some(Ok(g)) => g,
                Some(Err(e)) => {
                    failed = Some(e);
                    return old.map(<[u8]>::to_vec);
                }
            };
            f(&mut gaps);
            Some(encode(&gaps))
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        new.map_or(Ok(Vec::new()), |v| decode("meta", &v))
    }

    /// Notes that from `at` the bot runs without message text, for `reason`. A stretch already
    /// open for the same reason goes on (a restart does not start a new one).
    pub fn begin_content_gap(
        &self,
        at: DateTime<Utc>,
        reason: GapReason,
    ) -> Result<(), StoreError> {
        self.update_gaps(|gaps| {
            match gaps.iter_mut().find(|g| g.to.is_none()) {
                Some(g) if g.reason == reason => return,
                Some(g) => g.to = Some(at),
                None => {}
            }
            gaps.push(ContentGap {
                from: at,
                to: None,
                reason,
                told: Vec::new(),
                recovered: Vec::new(),
            });
        })?;
        Ok(())
    }

    /// Notes that from `at` message text arrives again.
    pub fn end_content_gap(&self, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.update_gaps(|gaps| {
            for g in gaps.iter_mut().filter(|g| g.to.is_none()) {
                g.to = Some(at.max(g.from));
            }
        })?;
        Ok(())
    }

    /// Notes that `incident`'s channel was read again with text, for every ended stretch.
    pub fn recover_content_gaps(&self, incident: IncidentId) -> Result<(), StoreError> {
        self.update_gaps(|gaps| {
            for g in gaps.iter_mut().filter(|g| g.to.is_some()) {
                if !g.recovered.contains(&incident.0) {
                    g.recovered.push(incident.0);
                }
            }
        })?;
        Ok(())
    }

    /// Marks `incident` as told about the open stretch; `true` only for the one caller that
    /// marked it, `false` when it already was told or no stretch is open.
    pub fn tell_content_gap(&self, incident: IncidentId) -> Result<bool, StoreError> {
        let marked = std::cell::Cell::new(false);
        self.update_gaps(|gaps| {
            // sled may run this more than once; only the last run counts.
            marked.set(false);
            if let Some(g) = gaps.iter_mut().find(|g| g.to.is_none()) {
                if !g.told.contains(&incident.0) {
                    g.told.push(incident.0);
                    marked.set(true);
                }
            }
        })?;
        Ok(marked.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 21, h, 0, 0).unwrap()
    }

    #[test]
    fn a_stretch_goes_on_across_restarts_and_ends_when_text_returns() {
        let store = Store::temporary().unwrap();
        assert_eq!(store.open_content_gap().unwrap(), None);
        store.begin_content_gap(t(1), GapReason::Refused).unwrap();
        store.begin_content_gap(t(2), GapReason::Refused).unwrap();
        assert!(store.tell_content_gap(IncidentId(7)).unwrap());
        assert!(!store.tell_content_gap(IncidentId(7)).unwrap(), "told once");
        store.end_content_gap(t(3)).unwrap();
        assert!(!store.tell_content_gap(IncidentId(8)).unwrap(), "none open");
        let gaps = store.content_gaps().unwrap();
        assert_eq!(gaps.len(), 1);
        assert_eq!((gaps[0].from, gaps[0].to), (t(1), Some(t(3))));
        assert_eq!(gaps[0].told, vec![7]);
        store.recover_content_gaps(IncidentId(7)).unwrap();
        assert_eq!(store.content_gaps().unwrap()[0].recovered, vec![7]);
        // Another reason is another stretch.
        store
            .begin_content_gap(t(4), GapReason::Configured)
            .unwrap();
        store.begin_content_gap(t(5), GapReason::Refused).unwrap();
        let gaps = store.content_gaps().unwrap();
        assert_eq!(gaps.len(), 3);
        assert_eq!(gaps[1].to, Some(t(5)));
        assert_eq!(gaps[2].reason, GapReason::Refused);
    }

    #[test]
    fn overlap_counts_open_ends() {
        let g = ContentGap {
            from: t(2),
            to: Some(t(4)),
            reason: GapReason::Refused,
            told: vec![],
            recovered: vec![],
        };
        assert!(g.overlaps(t(1), Some(t(3))));
        assert!(g.overlaps(t(3), None));
        assert!(!g.overlaps(t(5), None));
        assert!(!g.overlaps(t(0), Some(t(1))));
        let open = ContentGap { to: None, ..g };
        assert!(open.overlaps(t(9), None));
        assert!(!open.overlaps(t(0), Some(t(1))));
    }
}
