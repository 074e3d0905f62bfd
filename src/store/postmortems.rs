//! Post-mortem drafts in the `postmortems` tree, keyed incident ++ version, never overwritten.
//!
//! A draft is stored as the Markdown it was rendered to, so that a version reads the same
//! whatever later happens to the timeline, the configuration or the template.

use super::{decode, encode, Store, StoreError};
use crate::domain::IncidentId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

const TREE: &str = "postmortems";

/// One compiled version of an incident's post-mortem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostmortemRecord {
    pub incident: IncidentId,
    /// 1 for the first draft, then one more per recompile.
    pub version: u32,
    pub compiled_at: DateTime<Utc>,
    pub compiled_by: String,
    /// The incident was not resolved yet when this version was compiled.
    pub incident_open: bool,
    /// Blameless-lint findings listed as reviewer notes.
    pub reviewer_notes: u32,
    pub markdown: String,
}

fn key(incident: IncidentId, version: u32) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..8].copy_from_slice(&incident.0.to_be_bytes());
    k[8..].copy_from_slice(&version.to_be_bytes());
    k
}

fn version_of(key: &[u8]) -> Result<u32, StoreError> {
    key.get(8..12)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_be_bytes)
        .ok_or(StoreError::Corrupt {
            tree: TREE,
            reason: "key is not incident ++ version".into(),
        })
}

impl Store {
    /// The version the next draft of `incident` would get.
    pub fn next_postmortem_version(&self, incident: IncidentId) -> Result<u32, StoreError> {
        Ok(self
            .latest_postmortem_version(incident)?
            .map_or(1, |v| v + 1))
    }

    pub fn latest_postmortem_version(
        &self,
        incident: IncidentId,
    ) -> Result<Option<u32>, StoreError> {
        match self
            .postmortems
            .scan_prefix(incident.0.to_be_bytes())
            .keys()
            .next_back()
        {
            Some(k) => Ok(Some(version_of(&k?)?)),
            None => Ok(None),
        }
    }

    /// Stores a version unless that version exists; returns false then, so that two drafts
    /// compiled at once get two versions instead of one overwriting the other.
    pub fn put_postmortem(&self, record: &PostmortemRecord) -> Result<bool, StoreError> {
        let k = key(record.incident, record.version);
        let res = self.postmortems.compare_and_swap(
            k,
            None as Option<&[u8]>,
            Some(encode(record).as_slice()),
        )?;
        Ok(res.is_ok())
    }

    /// A stored version, or the latest when `version` is `None`.
    pub fn postmortem(
        &self,
        incident: IncidentId,
        version: Option<u32>,
    ) -> Result<Option<PostmortemRecord>, StoreError> {
        let version = match version {
            Some(v) => v,
            None => match self.latest_postmortem_version(incident)? {
                Some(v) => v,
                None => return Ok(None),
            },
        };
        self.postmortems
            .get(key(incident, version))?
            .map(|b| decode(TREE, &b))
            .transpose()
    }

    /// The stored versions of an incident's post-mortem, oldest first.
    pub fn postmortem_versions(&self, incident: IncidentId) -> Result<Vec<u32>, StoreError> {
        self.postmortems
            .scan_prefix(incident.0.to_be_bytes())
            .keys()
            .map(|k| version_of(&k?))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(incident: u64, version: u32, text: &str) -> PostmortemRecord {
        PostmortemRecord {
            incident: IncidentId(incident),
            version,
            compiled_at: Utc::now(),
            compiled_by: "alice".into(),
            incident_open: false,
            reviewer_notes: 0,
            markdown: text.into(),
        }
    }

    #[test]
    fn postmortem_versions_accumulate_and_never_overwrite() {
        let store = Store::temporary().unwrap();
        let id = IncidentId(3);
        assert_eq!(store.next_postmortem_version(id).unwrap(), 1);
        assert_eq!(store.postmortem(id, None).unwrap(), None);
        assert!(store.put_postmortem(&record(3, 1, "one")).unwrap());
        assert!(!store.put_postmortem(&record(3, 1, "clobber")).unwrap());
        assert!(store.put_postmortem(&record(3, 2, "two")).unwrap());
        assert!(store.put_postmortem(&record(4, 1, "other")).unwrap());
        assert_eq!(store.next_postmortem_version(id).unwrap(), 3);
        assert_eq!(store.postmortem_versions(id).unwrap(), [1, 2]);
        assert_eq!(
            store.postmortem(id, Some(1)).unwrap().unwrap().markdown,
            "one"
        );
        assert_eq!(store.postmortem(id, None).unwrap().unwrap().markdown, "two");
        assert_eq!(store.postmortem(id, Some(9)).unwrap(), None);
        assert_eq!(
            store.postmortem(IncidentId(2), None).unwrap(),
            None,
            "a neighbour's versions are not ours"
        );
    }
}
