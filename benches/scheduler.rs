//! Scheduler throughput: thousands of status updates due in the same minute, against the Discord
//! fake enforcing Discord's global limit of 50 requests per second.
//!
//! `cargo bench --bench scheduler` (release build). `SITREP_BENCH_INCIDENTS` sets the number of
//! open incidents (default 2,000). Prints the figures BENCHMARKS.md keeps.

#[path = "../tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

use chrono::{Duration as ChronoDuration, Utc};
use sitrep::domain::{Actor, Event, EventKind, IncidentId, Severity, UserRef};
use sitrep::store::{Job, JobChange, JobKind, Store};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use support::bot::{world, Bot};
use support::discord::{ChannelKind, FakeDiscord, FakeOptions};

/// Discord's global budget for a bot: 50 requests per second.
const GLOBAL_LIMIT: u32 = 50;

fn main() {
    let incidents: u64 = std::env::var("SITREP_BENCH_INCIDENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(incidents));
}

/// Open incidents whose updates all fall due within the same minute, spread over it.
fn prepare(fake: &FakeDiscord, category: u64, db: &std::path::Path, count: u64) -> Vec<u64> {
    let store = Store::open(db).unwrap();
    let minute = Utc::now() - ChronoDuration::seconds(61);
    let mut channels = Vec::new();
    for n in 0..count {
        let id = store.reserve_incident_id().unwrap();
        let name = format!("inc-{}-load-{n}", id.0);
        let channel = fake.add_channel(&name, ChannelKind::Text, Some(category));
        channels.push(channel);
        let due = minute + ChronoDuration::milliseconds((n * 60_000 / count) as i64);
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

async fn run(incidents: u64) {
    let fake = FakeDiscord::start_with(FakeOptions {
        global_limit: Some(GLOBAL_LIMIT),
        wait_timeout: Duration::from_secs(3600),
        ..FakeOptions::default()
    })
    .await;
    let w = world(&fake);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let built = Instant::now();
    let channels = prepare(&fake, w.category, &db, incidents);
    println!(
        "scheduler: {incidents} open incidents, updates due within one minute (built in {:.1} s)",
        built.elapsed().as_secs_f64()
    );

    let mut bot = Bot::start_on_db(&fake, w, &db);
    fake.wait_ready().await;
    let ready_at = fake.requests().last().map(|r| r.at).unwrap_or_default();
    let posted = |f: &FakeDiscord| {
        f.requests_to("POST /channels/{channel}/messages")
            .into_iter()
            .filter(|r| r.status < 300)
            .count()
    };
    // Each incident posts its update to its channel and to the stakeholders, and reminds its
    // commander (nobody wrote an update since it opened).
    let expected = channels.len() * 3;
    let timeout = Duration::from_secs(60 + expected as u64 / 30);
    let done = fake
        .wait_until(timeout, |f| (posted(f) >= expected).then_some(()))
        .await;
    if done.is_none() {
        println!(
            "scheduler: MISSED, only {} of {expected} posts within {timeout:?}",
            posted(&fake)
        );
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(bot.stop().success());

    let requests: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.at >= ready_at && !r.path.starts_with("/interactions"))
        .collect();
    let first = requests.first().map(|r| r.at).unwrap_or_default();
    let last = requests.last().map(|r| r.at).unwrap_or_default();
    let span = (last - first).as_secs_f64().max(f64::EPSILON);
    // Throughput over the whole-seconds windows in which the bot was busy, and its best second.
    let mut per_second: HashMap<u64, u32> = HashMap::new();
    for r in &requests {
        *per_second.entry(r.at.as_secs()).or_default() += 1;
    }
    let busiest = per_second.values().copied().max().unwrap_or(0);
    let rate = requests.len() as f64 / span;
    let mut updates_per_channel: HashMap<u64, usize> = HashMap::new();
    for ch in &channels {
        let n = fake
            .messages(*ch)
            .iter()
            .filter(|m| {
                m["embeds"][0]["title"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("Status update"))
            })
            .count();
        updates_per_channel.insert(*ch, n);
    }
    let once = updates_per_channel.values().filter(|n| **n == 1).count();
    let store = Store::open(&db).unwrap();
    let recorded = (1..=incidents)
        .filter(|n| {
            store.events(IncidentId(*n)).unwrap().iter().any(|e| {
                matches!(
                    e.kind,
                    EventKind::StatusPosted {
                        automated: true,
                        ..
                    }
                )
            })
        })
        .count();
    println!(
        "scheduler: {} posts delivered of {expected}; {} REST requests in {span:.1} s \
         = {rate:.1} req/s ({:.0}% of Discord's {GLOBAL_LIMIT}/s); busiest second {busiest}; \
         429 answers {}",
        posted(&fake),
        requests.len(),
        rate * 100.0 / f64::from(GLOBAL_LIMIT),
        fake.rate_limited_count()
    );
    println!(
        "scheduler: channels with exactly one update {once} of {}; timelines recording it {recorded}",
        channels.len()
    );
}
