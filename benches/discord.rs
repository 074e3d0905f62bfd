//! Footprint, startup and acknowledgement latency of the real binary against the Discord fake.
//!
//! `cargo bench --bench discord` (release build). Prints the figures BENCHMARKS.md keeps.
//! `SITREP_BENCH_BURST` sets the burst size (default 500), `SITREP_BENCH_EVENTS` the number of
//! stored events for the restart measurement (default 1,000,000).

#[path = "../tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

use chrono::Utc;
use serde_json::json;
use sitrep::domain::{Actor, Event, EventKind, Severity, UserRef};
use sitrep::store::Store;
use std::time::{Duration, Instant};
use support::bot::{world, Bot, Mode};
use support::discord::{
    FakeDiscord, FakeOptions, GENERAL_CHANNEL_ID, INTENT_MESSAGE_CONTENT, OWNER_ID,
};
use support::prometheus::HangingServer;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

async fn footprint_and_burst(burst: usize) {
    let fake = FakeDiscord::start_with(FakeOptions {
        wait_timeout: Duration::from_secs(120),
        interaction_deadline: Duration::from_secs(3),
        ..FakeOptions::default()
    })
    .await;
    // Set up as the README says (the portal's Message Content toggle on); without it the bot
    // would also tell every open incident's channel that it cannot read their text.
    fake.set_privileged_intents(INTENT_MESSAGE_CONTENT);
    let w = world(&fake);
    let hang = HangingServer::start();
    let extra = format!("[prometheus]\nurl = \"{}\"\ntimeout = \"5s\"\n", hang.url());
    let started = Instant::now();
    // The log level a deployment runs with, not the tests' debug level.
    let bot = Bot::start_with_env(
        &fake,
        w,
        Mode::Proxy,
        &extra,
        &[("SITREP_LOG", "warn,sitrep=info")],
    );
    fake.wait_ready().await;
    let to_ready = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss = rss_kib(bot.pid()).unwrap_or(0);
    let size = std::fs::metadata(env!("CARGO_BIN_EXE_sitrep"))
        .map(|m| m.len())
        .unwrap_or(0);
    println!("footprint: process start to READY {}", ms(to_ready));
    println!(
        "footprint: idle RSS after READY {:.1} MB",
        rss as f64 / 1024.0
    );
    println!("footprint: binary {:.1} MB", size as f64 / 1_048_576.0);

    // A few incidents to work in, opened before the burst.
    let mut channels = Vec::new();
    for n in 0..5 {
        let i = fake.slash(
            OWNER_ID,
            GENERAL_CHANNEL_ID,
            "incident",
            json!({"open": {"title": format!("bench {n}"), "severity": "SEV3"}}),
        );
        fake.wait_response(&i).await;
        let name = format!("inc-{}-bench-{n}", n + 1);
        let ch = fake
            .wait_until(Duration::from_secs(30), |f| f.channel_named(&name))
            .await
            .expect("incident channel");
        channels.push(ch["id"].as_str().unwrap().parse::<u64>().unwrap());
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    // One at a time first: what a single command costs when nothing queues in front of it.
    let mut alone: [Vec<Duration>; 2] = Default::default();
    for k in 0..50 {
        let ch = channels[k % channels.len()];
        let (slot, i) = if k % 2 == 0 {
            (
                0,
                fake.slash(OWNER_ID, ch, "incident", json!({"status": {}})),
            )
        } else {
            let note = json!({"note": {"text": format!("alone {k}")}});
            (1, fake.slash(OWNER_ID, ch, "incident", note))
        };
        alone[slot].push(fake.wait_response(&i).await.latency);
    }
    for (v, name) in alone
        .iter_mut()
        .zip(["status (reads)", "note (writes, flushed)"])
    {
        v.sort();
        println!(
            "ack latency, one at a time, {name}: p50 {} · p99 {} · max {}",
            ms(percentile(v, 0.5)),
            ms(percentile(v, 0.99)),
            ms(*v.last().unwrap())
        );
    }

    // The burst: notes, updates, status, metrics while Prometheus hangs, and opens.
    let mut sent = Vec::with_capacity(burst);
    for k in 0..burst {
        let ch = channels[k % channels.len()];
        let i = match k % 5 {
            0 => fake.slash(
                OWNER_ID,
                ch,
                "incident",
                json!({"note": {"text": format!("note {k}")}}),
            ),
            1 => fake.slash(
                OWNER_ID,
                ch,
                "incident",
                json!({"update": {"message": format!("update {k}")}}),
            ),
            2 => fake.slash(OWNER_ID, ch, "incident", json!({"status": {}})),
            3 => fake.slash(OWNER_ID, ch, "metrics", json!({"query": "up"})),
            _ => fake.slash(
                OWNER_ID,
                GENERAL_CHANNEL_ID,
                "incident",
                json!({"open": {"title": format!("burst {k}"), "severity": "SEV4"}}),
            ),
        };
        sent.push((k % 5, i));
    }
    let mut all = Vec::new();
    let mut by_kind: [Vec<Duration>; 5] = Default::default();
    let mut late = 0;
    for (kind, i) in &sent {
        let r = fake.wait_response(i).await;
        if r.latency > Duration::from_secs(3) {
            late += 1;
        }
        all.push(r.latency);
        by_kind[*kind].push(r.latency);
    }
    all.sort();
    println!(
        "ack latency ({burst} mixed interactions): p50 {} · p99 {} · max {} · over 3 s: {late}",
        ms(percentile(&all, 0.5)),
        ms(percentile(&all, 0.99)),
        ms(*all.last().unwrap())
    );
    for (kind, name) in [
        "note",
        "update",
        "status",
        "metrics (Prometheus hanging)",
        "open",
    ]
    .iter()
    .enumerate()
    {
        let v = &mut by_kind[kind];
        v.sort();
        println!(
            "  {name}: p50 {} · p99 {} · max {}",
            ms(percentile(v, 0.5)),
            ms(percentile(v, 0.99)),
            ms(*v.last().unwrap())
        );
    }
    // The bot's own share: from the handler's start to its first response sent, as it logs it.
    let mut handler: Vec<Duration> = bot
        .log()
        .lines()
        .filter_map(|l| l.split("ack_us=").nth(1))
        .filter_map(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(Duration::from_micros)
        .collect();
    handler.sort();
    if !handler.is_empty() {
        println!(
            "  inside the bot's handler: p50 {} · p99 {} · max {} over {}",
            ms(percentile(&handler, 0.5)),
            ms(percentile(&handler, 0.99)),
            ms(*handler.last().unwrap()),
            handler.len()
        );
    }
    drop(bot);
}

/// A database holding `n` events over resolved incidents, then the time from process start to
/// the first answered interaction.
async fn restart_with_events(n: usize) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let per = 100;
    let build = Instant::now();
    {
        let store = Store::open(&db).unwrap();
        let actor = Actor::User(UserRef::new(1, "bench"));
        for k in 0..(n / per).max(1) {
            let id = store.reserve_incident_id().unwrap();
            let now = Utc::now();
            store
                .create_incident(
                    id,
                    Event {
                        at: now,
                        actor: actor.clone(),
                        kind: EventKind::Opened {
                            title: format!("stored {k}"),
                            severity: Severity(3),
                            summary: None,
                            service: None,
                            started: now,
                            channel: Some(10_000_000 + id.0),
                            channel_name: Some(format!("inc-{}", id.0)),
                            drill: false,
                            playbook: None,
                        },
                    },
                )
                .unwrap();
            for e in 0..per - 2 {
                store
                    .append(id, &actor, now, |i| i.decide_note(&format!("note {e}")))
                    .unwrap();
            }
            store
                .append(id, &actor, now, |i| i.decide_resolve("done"))
                .unwrap();
        }
        store.flush().await.unwrap();
    }
    println!(
        "restart: built a database of {n} events in {:.1} s",
        build.elapsed().as_secs_f64()
    );
    let fake = FakeDiscord::start().await;
    // Set up as the README says (the portal's Message Content toggle on); without it the bot
    // would also tell every open incident's channel that it cannot read their text.
    fake.set_privileged_intents(INTENT_MESSAGE_CONTENT);
    let w = world(&fake);
    let started = Instant::now();
    let _bot = Bot::start_on_db(&fake, w, &db);
    fake.wait_ready().await;
    let to_ready = started.elapsed();
    let i = fake.slash(
        OWNER_ID,
        GENERAL_CHANNEL_ID,
        "incident",
        json!({"status": {"incident": format!("INC-{}", (n / per).max(1))}}),
    );
    let r = fake.wait_response(&i).await;
    assert!(r.data.to_string().contains("stored"), "{}", r.data);
    println!(
        "restart: {n} stored events, process start to READY {}, to the first answer {}",
        ms(to_ready),
        ms(started.elapsed())
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let burst = env_or("SITREP_BENCH_BURST", 500);
    let events = env_or("SITREP_BENCH_EVENTS", 1_000_000);
    rt.block_on(async {
        footprint_and_burst(burst).await;
        restart_with_events(events).await;
    });
}
