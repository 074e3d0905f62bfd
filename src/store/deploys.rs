//! Deploys in the `deploys` tree, keyed by time (a range is a time window) and by service.
//!
//! Three kinds of key share the tree, told apart by their first byte:
//! - `T` time identity → the deploy;
//! - `S` service-length service time identity → nothing (the service index);
//! - `I` identity → time (so that a deploy seen again replaces itself instead of adding a copy).
//!
//! Times are milliseconds with the sign bit flipped, big-endian, so that byte order is time order.

use super::{decode, encode, Store, StoreError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use std::fmt;

const TREE: &str = "deploys";
const BY_TIME: u8 = b'T';
const BY_SERVICE: u8 = b'S';
const BY_IDENTITY: u8 = b'I';

/// Where a deploy was learnt of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploySource {
    /// `POST /hooks/deploy`, from a CI pipeline.
    Webhook,
    /// GitHub's deployments API.
    GitHub,
}

impl fmt::Display for DeploySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeploySource::Webhook => "webhook",
            DeploySource::GitHub => "github",
        })
    }
}

/// One deploy of one service, from any source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deploy {
    pub source: DeploySource,
    /// Names the deploy within its source; the same deploy seen twice has the same id.
    pub id: String,
    pub service: String,
    pub version: String,
    pub commit: Option<String>,
    pub author: Option<String>,
    pub environment: Option<String>,
    /// As the source words it: `success`, `failure`, `in_progress`, ….
    pub status: Option<String>,
    pub url: Option<String>,
    pub time: DateTime<Utc>,
}

impl Deploy {
    /// The dedup key: a deploy is new only when no deploy with the same identity was stored.
    pub fn identity(&self) -> String {
        format!("{}:{}", self.source, self.id)
    }
}

fn time_bytes(t: DateTime<Utc>) -> [u8; 8] {
    ((t.timestamp_millis() as u64) ^ (1 << 63)).to_be_bytes()
}

fn service_prefix(service: &str) -> Vec<u8> {
    let s = service.to_lowercase();
    // The length prefix keeps `api` from matching `api-gateway` in a prefix scan.
    let len = u16::try_from(s.len()).unwrap_or(u16::MAX);
    let mut k = vec![BY_SERVICE];
    k.extend_from_slice(&len.to_be_bytes());
    k.extend_from_slice(&s.as_bytes()[..usize::from(len)]);
    k
}

fn time_key(time: [u8; 8], identity: &str) -> Vec<u8> {
    let mut k = vec![BY_TIME];
    k.extend_from_slice(&time);
    k.extend_from_slice(identity.as_bytes());
    k
}

fn service_key(service: &str, time: [u8; 8], identity: &str) -> Vec<u8> {
    let mut k = service_prefix(service);
    k.extend_from_slice(&time);
    k.extend_from_slice(identity.as_bytes());
    k
}

fn identity_key(identity: &str) -> Vec<u8> {
    let mut k = vec![BY_IDENTITY];
    k.extend_from_slice(identity.as_bytes());
    k
}

impl Store {
    /// Stores a deploy, replacing an earlier record of the same deploy (a newer status, say).
    /// Returns whether it was new. Unchanged records are not rewritten.
    pub fn put_deploy(&self, deploy: &Deploy) -> Result<bool, StoreError> {
        let identity = deploy.identity();
        let id_key = identity_key(&identity);
        let time = time_bytes(deploy.time);
        let value = encode(deploy);
        self.deploys
            .transaction(|tx| {
                let mut new = true;
                if let Some(old_time) = tx.get(&id_key)? {
                    new = false;
                    let old_time: [u8; 8] = old_time.as_ref().try_into().map_err(|_| {
                        ConflictableTransactionError::Abort(StoreError::Corrupt {
                            tree: TREE,
                            reason: format!("index entry of {identity}"),
                        })
                    })?;
                    let old_key = time_key(old_time, &identity);
                    if let Some(bytes) = tx.get(&old_key)? {
                        let old: Deploy =
                            decode(TREE, &bytes).map_err(ConflictableTransactionError::Abort)?;
                        if &old == deploy {
                            return Ok(false);
                        }
                        tx.remove(service_key(&old.service, old_time, &identity))?;
                    }
                    tx.remove(old_key)?;
                }
                tx.insert(time_key(time, &identity), value.as_slice())?;
                tx.insert(service_key(&deploy.service, time, &identity), &[][..])?;
                tx.insert(id_key.as_slice(), &time[..])?;
                Ok(new)
            })
            .map_err(|e| match e {
                TransactionError::Abort(e) => e,
                TransactionError::Storage(e) => e.into(),
            })
    }

    /// The deploy stored under `identity` (see [`Deploy::identity`]), if any.
    pub fn deploy(&self, identity: &str) -> Result<Option<Deploy>, StoreError> {
        let Some(time) = self.deploys.get(identity_key(identity))? else {
            return Ok(None);
        };
        let time: [u8; 8] = time.as_ref().try_into().map_err(|_| StoreError::Corrupt {
            tree: TREE,
            reason: format!("index entry of {identity}"),
        })?;
        self.deploys
            .get(time_key(time, identity))?
            .map(|b| decode(TREE, &b))
            .transpose()
    }

    /// Deploys at or after `since`, newest first; `service` and `environment` ignore case.
    pub fn deploys(
        &self,
        since: DateTime<Utc>,
        service: Option<&str>,
        environment: Option<&str>,
    ) -> Result<Vec<Deploy>, StoreError> {
        let from = time_bytes(since);
        let mut out = Vec::new();
        match service {
            Some(service) => {
                let prefix = service_prefix(service);
                let mut start = prefix.clone();
                start.extend_from_slice(&from);
                for kv in self.deploys.range(start..) {
                    let (key, _) = kv?;
                    let Some(rest) = key.strip_prefix(prefix.as_slice()) else {
                        break;
                    };
                    let (time, identity) = rest.split_at(8.min(rest.len()));
                    let mut primary = vec![BY_TIME];
                    primary.extend_from_slice(time);
                    primary.extend_from_slice(identity);
                    if let Some(bytes) = self.deploys.get(primary)? {
                        out.push(decode::<Deploy>(TREE, &bytes)?);
                    }
                }
            }
            None => {
                for kv in self.deploys.range(time_key(from, "")..) {
                    let (key, value) = kv?;
                    if key.first() != Some(&BY_TIME) {
                        break;
                    }
                    out.push(decode(TREE, &value)?);
                }
            }
        }
        if let Some(env) = environment {
            out.retain(|d: &Deploy| {
                d.environment
                    .as_deref()
                    .is_some_and(|e| e.eq_ignore_ascii_case(env))
            });
        }
        out.reverse();
        Ok(out)
    }

    /// Reads from the database, for health checks: answers only when the store does.
    pub fn ping(&self) -> Result<(), StoreError> {
        self.deploys.first()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn deploy(id: &str, service: &str, env: &str, minute: u32) -> Deploy {
        Deploy {
            source: DeploySource::Webhook,
            id: id.into(),
            service: service.into(),
            version: format!("v{minute}"),
            commit: None,
            author: None,
            environment: Some(env.into()),
            status: Some("success".into()),
            url: None,
            time: Utc.with_ymd_and_hms(2026, 11, 21, 10, minute, 0).unwrap(),
        }
    }

    #[test]
    fn time_keys_sort_across_the_epoch() {
        let before = Utc.with_ymd_and_hms(1969, 12, 31, 23, 59, 59).unwrap();
        let after = Utc.with_ymd_and_hms(1970, 1, 1, 0, 0, 1).unwrap();
        assert!(time_bytes(before) < time_bytes(after));
        assert!(time_key(time_bytes(after), "a") < time_key(time_bytes(after), "b"));
    }

    #[test]
    fn service_prefixes_do_not_overlap() {
        let store = Store::temporary().unwrap();
        store.put_deploy(&deploy("1", "api", "prod", 1)).unwrap();
        store
            .put_deploy(&deploy("2", "api-gateway", "prod", 2))
            .unwrap();
        let since = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let api = store.deploys(since, Some("API"), None).unwrap();
        assert_eq!(api.len(), 1);
        assert_eq!(api[0].service, "api");
    }

    #[test]
    fn a_deploy_seen_again_replaces_itself() {
        let store = Store::temporary().unwrap();
        let mut d = deploy("1", "checkout", "production", 5);
        d.status = Some("in_progress".into());
        assert!(store.put_deploy(&d).unwrap());
        let before = store.dump().unwrap();
        assert!(!store.put_deploy(&d).unwrap());
        assert_eq!(
            store.dump().unwrap(),
            before,
            "an unchanged deploy is not rewritten"
        );

        d.status = Some("success".into());
        d.time += chrono::Duration::minutes(3);
        assert!(!store.put_deploy(&d).unwrap());
        let since = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(store.deploys(since, None, None).unwrap(), vec![d.clone()]);
        assert_eq!(
            store.deploys(since, Some("checkout"), None).unwrap(),
            vec![d.clone()]
        );
        assert_eq!(store.deploy(&d.identity()).unwrap(), Some(d));
    }

    #[test]
    fn newest_first_within_the_window() {
        let store = Store::temporary().unwrap();
        for (i, (svc, env, minute)) in [
            ("checkout", "production", 10),
            ("search", "production", 20),
            ("checkout", "staging", 30),
            ("checkout", "production", 40),
        ]
        .into_iter()
        .enumerate()
        {
            store
                .put_deploy(&deploy(&i.to_string(), svc, env, minute))
                .unwrap();
        }
        let at = |m| Utc.with_ymd_and_hms(2026, 11, 21, 10, m, 0).unwrap();
        let versions = |v: Vec<Deploy>| v.into_iter().map(|d| d.version).collect::<Vec<_>>();
        assert_eq!(
            versions(store.deploys(at(0), None, None).unwrap()),
            ["v40", "v30", "v20", "v10"]
        );
        assert_eq!(
            versions(store.deploys(at(20), None, None).unwrap()),
            ["v40", "v30", "v20"]
        );
        assert_eq!(
            versions(
                store
                    .deploys(at(0), Some("checkout"), Some("Production"))
                    .unwrap()
            ),
            ["v40", "v10"]
        );
        assert!(store.deploys(at(41), None, None).unwrap().is_empty());
    }
}
