//! A Discord role kept in step with a schedule (`role_id`): whoever is on call holds it and
//! nobody else, so that mentioning the role always reaches the right person.

use super::{current_user, find, lookup, OnCallError};
use crate::app::App;
use crate::config::SourceKind;
use crate::platform::ChatError;
use chrono::{DateTime, Duration, Utc};

/// Sources that can change at any time (a PagerDuty override, an edited calendar) are read
/// again at least this often; a rotation in config changes only at its hand-offs.
const RECHECK: i64 = 15;
/// After a failed read, the next try.
const RETRY: i64 = 5;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("[oncall.{0}] has no role_id")]
    NoRole(String),
    #[error(transparent)]
    OnCall(#[from] OnCallError),
    #[error("cannot change the on-call role: {0}")]
    Chat(#[from] ChatError),
}

/// What a sync did, and when the schedule should be looked at again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synced {
    /// Who holds the role now.
    pub holder: Option<u64>,
    /// Whom it was taken from, if it moved.
    pub taken_from: Option<u64>,
    pub next_check: DateTime<Utc>,
}

fn holder_key(name: &str) -> String {
    format!("oncall-role:{name}")
}

/// Gives schedule `name`'s role to whoever is on call now and takes it from whoever held it.
/// The new holder gets it before the old one loses it, so the role never reaches nobody; a
/// source that names nobody leaves it where it is.
pub async fn sync(app: &App, name: &str) -> Result<Synced, SyncError> {
    let (name, schedule) = find(&app.config, name)?;
    let role = schedule
        .role_id
        .ok_or_else(|| SyncError::NoRole(name.into()))?;
    let now = app.now();
    let answer = lookup(app, name).await?;
    let had: Option<u64> = app
        .store
        .meta_get(&holder_key(name))
        .map_err(OnCallError::from)?
        .and_then(|s| s.parse().ok());
    let want = current_user(&app.config, &answer, now).map(|u| u.id);
    let mut taken_from = None;
    let holder = match want {
        Some(w) if Some(w) != had => {
            let reason = format!("on call for {name}");
            app.chat.add_member_role(w, role, &reason).await?;
            let off = format!("no longer on call for {name}");
            match had {
                Some(h) => {
                    app.chat.remove_member_role(h, role, &off).await?;
                    taken_from = Some(h);
                }
                // The first time, who holds the role is unknown (reading every member needs a
                // privileged intent): everyone in [people] but the person on call loses it.
                // Removing a role someone lacks changes nothing; someone who left the server
                // is no reason to stop.
                None => {
                    let mut others: Vec<u64> = app.config.people.values().copied().collect();
                    others.sort_unstable();
                    others.dedup();
                    for other in others.into_iter().filter(|o| *o != w) {
                        if let Err(e) = app.chat.remove_member_role(other, role, &off).await {
                            tracing::warn!(schedule = name, user = other, error = %e, "cannot take the on-call role");
                        }
                    }
                }
            }
            app.store
                .meta_set(&holder_key(name), &w.to_string())
                .map_err(OnCallError::from)?;
            tracing::info!(schedule = name, user = w, previous = ?had, "the on-call role moved");
            Some(w)
        }
        _ => had,
    };
    let recheck = match (schedule.source(), &answer.unreachable) {
        (_, Some(_)) => now + Duration::minutes(RETRY),
        (Some(SourceKind::Rotation), None) => now + Duration::days(1),
        _ => now + Duration::minutes(RECHECK),
    };
    let handoff = answer
        .shifts
        .now
        .as_ref()
        .and_then(|s| s.end)
        .or_else(|| answer.shifts.next.as_ref().and_then(|s| s.start))
        .filter(|t| *t > now);
    Ok(Synced {
        holder,
        taken_from,
        next_check: handoff.map_or(recheck, |h| h.min(recheck)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::testkit::TestApp;
    use std::collections::BTreeMap;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[tokio::test]
    async fn the_role_moves_at_each_handoff_and_never_to_nobody() {
        let toml = r#"
            [people]
            alice = 111
            bob = 222
            [oncall.web]
            role_id = 900
            [oncall.web.rotation]
            members = ["alice", "bob"]
            time_zone = "UTC"
            start = "2026-11-02"
            length = "1d"
        "#;
        let config = Config::from_parts(Some(("a.toml", toml)), &BTreeMap::new()).unwrap();
        let kit = TestApp::builder()
            .config(config)
            .clock_at(at("2026-11-02T10:00:00Z"))
            .build();
        let s = sync(&kit.app, "web").await.unwrap();
        assert_eq!(s.holder, Some(111));
        assert_eq!(s.taken_from, None);
        // The next look is at the hand-off, 09:00 the next day.
        assert_eq!(s.next_check, at("2026-11-03T09:00:00Z"));
        // Nothing to change until then.
        kit.set(at("2026-11-02T20:00:00Z"));
        assert_eq!(sync(&kit.app, "web").await.unwrap().holder, Some(111));
        kit.set(s.next_check);
        let s = sync(&kit.app, "web").await.unwrap();
        assert_eq!((s.holder, s.taken_from), (Some(222), Some(111)));
        assert_eq!(
            *kit.chat.role_changes.lock().unwrap(),
            // The first time, everyone else in [people] loses it.
            [
                (true, 111, 900),
                (false, 222, 900),
                (true, 222, 900),
                (false, 111, 900)
            ]
        );
        let err = sync(&kit.app, "nope").await.unwrap_err().to_string();
        assert!(err.contains("`nope` is not an on-call schedule"), "{err}");
    }

    #[tokio::test]
    async fn nobody_named_leaves_the_role_where_it_is() {
        let toml = r#"
            [people]
            alice = 111
            [oncall.web]
            role_id = 900
            [oncall.web.rotation]
            members = ["alice", "someone-unmapped"]
            time_zone = "UTC"
            start = "2026-11-02"
            length = "1d"
        "#;
        let config = Config::from_parts(Some(("a.toml", toml)), &BTreeMap::new()).unwrap();
        let kit = TestApp::builder()
            .config(config)
            .clock_at(at("2026-11-02T10:00:00Z"))
            .build();
        assert_eq!(sync(&kit.app, "web").await.unwrap().holder, Some(111));
        kit.set(at("2026-11-03T10:00:00Z"));
        assert_eq!(sync(&kit.app, "web").await.unwrap().holder, Some(111));
        assert_eq!(kit.chat.role_changes.lock().unwrap().len(), 1);
    }
}
