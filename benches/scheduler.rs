//! Scheduler throughput: thousands of status updates due in the same minute, against the Discord
//! fake enforcing Discord's global limit of 50 requests per second and its per-route buckets
//! (5 messages per 5 s per channel), with the bot in direct mode (TLS, serenity's limiter on).
//!
//! `cargo bench --bench scheduler` (release build). `SITREP_BENCH_INCIDENTS` sets the number of
//! open incidents (default 2,000). Prints the figures BENCHMARKS.md keeps.

#[path = "../tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

use chrono::{Duration as ChronoDuration, Utc};
use sitrep::store::Store;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use support::bot::{world, Bot, Mode};
use support::discord::{FakeDiscord, FakeOptions, INTENT_MESSAGE_CONTENT};
use support::load::{
    accepted_posts, incidents_with_updates_due, status_updates_by_title, status_updates_in,
    timelines_with_automated_update,
};

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

async fn run(incidents: u64) {
    let fake = FakeDiscord::start_with(FakeOptions {
        global_limit: Some(GLOBAL_LIMIT),
        wait_timeout: Duration::from_secs(3600),
        ..FakeOptions::default()
    })
    .await;
    // Set up as the README says (the portal's Message Content toggle on); without it the bot
    // would also tell every open incident's channel that it cannot read their text.
    fake.set_privileged_intents(INTENT_MESSAGE_CONTENT);
    let w = world(&fake);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let built = Instant::now();
    // Due times spread over the minute before the bot starts.
    let minute = Utc::now() - ChronoDuration::seconds(61);
    let channels = incidents_with_updates_due(&fake, w.category, &db, incidents, |n| {
        minute + ChronoDuration::milliseconds((n * 60_000 / incidents) as i64)
    });
    println!(
        "scheduler: {incidents} open incidents, updates due within one minute (built in {:.1} s)",
        built.elapsed().as_secs_f64()
    );

    let mut bot = Bot::start_on_db_in(&fake, w, &db, Mode::Direct, &[]);
    fake.wait_ready().await;
    let ready_at = fake.requests().last().map(|r| r.at).unwrap_or_default();
    let posted = accepted_posts;
    // Each incident posts its update to its channel and reminds its commander (nobody wrote an
    // update since it opened); the stakeholders get every update, in digests.
    let expected = channels.len() * 2;
    let stakeholders_told = |f: &FakeDiscord| status_updates_by_title(f, w.stakeholders).0.len();
    let timeout = Duration::from_secs(60 + expected as u64 / 20);
    let done = fake
        .wait_until(timeout, |f| {
            (posted(f) >= expected && stakeholders_told(f) >= channels.len()).then_some(())
        })
        .await;
    if done.is_none() {
        println!(
            "scheduler: MISSED, only {} posts and {} of {} stakeholder updates within {timeout:?}",
            posted(&fake),
            stakeholders_told(&fake),
            channels.len()
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
    let once = channels
        .iter()
        .filter(|ch| status_updates_in(&fake, **ch) == 1)
        .count();
    let (told, widest) = status_updates_by_title(&fake, w.stakeholders);
    let told_once = told.values().filter(|n| **n == 1).count();
    let stakeholder_posts: Vec<_> = requests
        .iter()
        .filter(|r| {
            r.method == "POST"
                && r.path == format!("/channels/{}/messages", w.stakeholders)
                && r.status < 300
        })
        .collect();
    let stakeholder_span = match (stakeholder_posts.first(), stakeholder_posts.last()) {
        (Some(a), Some(b)) => (b.at - a.at).as_secs_f64(),
        _ => 0.0,
    };
    let store = Store::open(&db).unwrap();
    let recorded = timelines_with_automated_update(&store, incidents);
    println!(
        "scheduler: {} posts delivered; {} REST requests in {span:.1} s \
         = {rate:.1} req/s ({:.0}% of Discord's {GLOBAL_LIMIT}/s); busiest second {busiest}; \
         429 answers {} (route buckets {})",
        posted(&fake),
        requests.len(),
        rate * 100.0 / f64::from(GLOBAL_LIMIT),
        fake.rate_limited_count(),
        fake.route_limited_count()
    );
    println!(
        "scheduler: stakeholders told of {told_once} of {} incidents exactly once, in {} digest \
         messages (at most {widest} embeds each) over {stakeholder_span:.1} s",
        channels.len(),
        stakeholder_posts.len()
    );
    println!(
        "scheduler: channels with exactly one update {once} of {}; timelines recording it {recorded}",
        channels.len()
    );
}
