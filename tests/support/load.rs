//! Databases of many open incidents with status updates due, for load tests and benchmarks.

use super::discord::{ChannelKind, FakeDiscord};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use sitrep::domain::{Actor, Event, EventKind, Severity, UserRef};
use sitrep::store::{Job, JobChange, JobKind, Store};

/// `count` open SEV2 incidents, each in a channel the fake knows under `category`, whose next
/// status update falls due at `due(n)`. Returns the channels in incident order.
pub fn incidents_with_updates_due(
    fake: &FakeDiscord,
    category: u64,
    db: &std::path::Path,
    count: u64,
    due: impl Fn(u64) -> DateTime<Utc>,
) -> Vec<u64> {
    let store = Store::open(db).unwrap();
    let mut channels = Vec::new();
    for n in 0..count {
        let id = store.reserve_incident_id().unwrap();
        let name = format!("inc-{}-load-{n}", id.0);
        let channel = fake.add_channel(&name, ChannelKind::Text, Some(category));
        channels.push(channel);
        let due = due(n);
        let opened = due - ChronoDuration::minutes(20);
        let event = Event {
            at: opened,
            actor: Actor::User(UserRef::new(1, "alice")),
            kind: EventKind::Opened {
                title: format!("load {n}"),
                severity: Severity(2),
                summary: None,
                service: None,
                started: opened,
                channel: Some(channel),
                channel_name: Some(name),
                drill: false,
                playbook: None,
            },
        };
        store
            .create_incident_with_jobs(id, event, |_, _| {
                vec![JobChange::Put(Job::new(id, JobKind::StatusUpdate, due))]
            })
            .unwrap();
    }
    futures::executor::block_on(store.flush()).unwrap();
    channels
}

/// How many posts the bot made that Discord accepted.
pub fn accepted_posts(fake: &FakeDiscord) -> usize {
    fake.requests_to("POST /channels/{channel}/messages")
        .into_iter()
        .filter(|r| r.status < 300)
        .count()
}

/// Status updates (the embed the scheduler posts) in `channel`.
pub fn status_updates_in(fake: &FakeDiscord, channel: u64) -> usize {
    fake.messages(channel)
        .iter()
        .filter(|m| {
            m["embeds"][0]["title"]
                .as_str()
                .is_some_and(|t| t.starts_with("Status update"))
        })
        .count()
}

/// Status updates carried in `channel` by incident title ("load 7"), counting every embed of a
/// digest message, and the largest number of embeds one message carried.
pub fn status_updates_by_title(
    fake: &FakeDiscord,
    channel: u64,
) -> (std::collections::HashMap<String, usize>, usize) {
    let mut seen = std::collections::HashMap::new();
    let mut widest = 0;
    for m in fake.messages(channel) {
        let embeds = m["embeds"].as_array().cloned().unwrap_or_default();
        widest = widest.max(embeds.len());
        for e in embeds {
            let Some(title) = e["title"].as_str() else {
                continue;
            };
            if let Some(rest) = title.strip_prefix("Status update · ") {
                let name = rest.split(" · ").nth(1).unwrap_or(rest).to_string();
                *seen.entry(name).or_default() += 1;
            }
        }
    }
    (seen, widest)
}

/// Incidents numbered 1 to `count` whose timeline records an automated status post.
pub fn timelines_with_automated_update(store: &Store, count: u64) -> usize {
    (1..=count)
        .filter(|n| {
            store
                .events(sitrep::domain::IncidentId(*n))
                .unwrap()
                .iter()
                .any(|e| {
                    matches!(
                        e.kind,
                        EventKind::StatusPosted {
                            automated: true,
                            ..
                        }
                    )
                })
        })
        .count()
}
