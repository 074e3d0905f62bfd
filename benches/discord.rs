//! Sitrep beside the floor (a bare serenity bot) on the Discord fake: start-up, footprint,
//! acknowledgement and answer latency under a burst; restart on a big database with a cold page
//! cache; and a post-mortem draft of 20k captured messages end to end.
//!
//! `cargo bench --bench discord` (the `bench` profile, i.e. release). Prints the figures
//! BENCHMARKS.md keeps. `SITREP_BENCH_BURSTS` sets the burst sizes (default `100,500`),
//! `SITREP_BENCH_EVENTS` the stored events for the restart (default 1,000,000),
//! `SITREP_BENCH_PARTS` which parts run (default `burst,restart,postmortem`).

#[path = "../tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

use chrono::{Duration as ChronoDuration, Utc};
use serde_json::json;
use sitrep::domain::{Actor, Event, EventKind, IncidentId, Severity, UserRef};
use sitrep::store::{CapturedMessage, Store};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::bot::{world, Bot, Mode, World};
use support::discord::{
    ChannelKind, FakeDiscord, FakeOptions, Interaction, APPLICATION_ID, GENERAL_CHANNEL_ID,
    GUILD_ID, INTENT_MESSAGE_CONTENT, OWNER_ID, TOKEN,
};
use support::prometheus::HangingServer;

/// The log level a deployment runs with, not the tests' debug level.
const DEPLOYMENT_LOG: (&str, &str) = ("SITREP_LOG", "warn,sitrep=info");
/// Discord's deadline for the first callback, counted from the user's action.
const DEADLINE: Duration = Duration::from_secs(3);

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
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
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// p50 / p99 / max of `v`, in milliseconds.
fn spread(v: &mut [Duration]) -> [f64; 3] {
    v.sort();
    [
        ms(percentile(v, 0.5)),
        ms(percentile(v, 0.99)),
        ms(v.last().copied().unwrap_or_default()),
    ]
}

fn show(s: [f64; 3]) -> String {
    format!("{:.1} / {:.1} / {:.1}", s[0], s[1], s[2])
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

fn binary_mib(path: &str) -> f64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) as f64 / 1_048_576.0
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Floor,
    Sitrep,
}

impl Which {
    fn name(self) -> &'static str {
        match self {
            Which::Floor => "floor",
            Which::Sitrep => "sitrep",
        }
    }
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Direct => "direct (TLS)",
        Mode::Proxy => "proxy (HTTP)",
    }
}

/// The floor bot as a child process, set up against the fake the way [`Bot`] sets up sitrep.
struct Floor {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Floor {
    fn start(fake: &FakeDiscord, mode: Mode) -> Floor {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_floor"));
        cmd.arg(APPLICATION_ID.to_string())
            .arg(GUILD_ID.to_string())
            .env("SITREP_DISCORD_TOKEN", TOKEN)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        match mode {
            Mode::Proxy => {
                cmd.arg("--api-base").arg(fake.api_base());
            }
            Mode::Direct => {
                let ca = dir.path().join("ca.pem");
                std::fs::write(&ca, fake.ca_pem()).unwrap();
                cmd.arg("--ca-file")
                    .arg(&ca)
                    .arg("--connect-to")
                    .arg(format!(
                        "discord.com:443:127.0.0.1:{}",
                        fake.tls_addr().port()
                    ));
            }
        }
        Floor {
            child: cmd.spawn().expect("the floor binary starts"),
            _dir: dir,
        }
    }
}

impl Drop for Floor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

enum Running {
    Floor(Floor),
    Sitrep(Bot),
}

impl Running {
    fn pid(&self) -> u32 {
        match self {
            Running::Floor(f) => f.child.id(),
            Running::Sitrep(b) => b.pid(),
        }
    }
}

async fn fresh_fake() -> (FakeDiscord, World) {
    let fake = FakeDiscord::start_with(FakeOptions {
        wait_timeout: Duration::from_secs(120),
        interaction_deadline: DEADLINE,
        ..FakeOptions::default()
    })
    .await;
    // Set up as the README says (the portal's Message Content toggle on).
    fake.set_privileged_intents(INTENT_MESSAGE_CONTENT);
    let w = world(&fake);
    (fake, w)
}

const KINDS: [&str; 5] = [
    "note",
    "update",
    "status",
    "metrics (Prometheus hanging)",
    "open",
];

/// What one bot did under one burst.
struct Burst {
    /// From the frame on the socket to the first callback.
    ack: Vec<Duration>,
    /// From the burst being created to the first callback.
    ack_queued: Vec<Duration>,
    /// From the burst being created to the answer the user sees.
    answered_queued: Vec<Duration>,
    by_kind_queued: [Vec<Duration>; 5],
    answered_by_kind: [Vec<Duration>; 5],
    no_ack: usize,
    no_answer: usize,
    late: usize,
}

struct RunFigures {
    to_ready: Duration,
    rss_kib: u64,
    alone: Vec<Duration>,
    burst: Burst,
    handler: Vec<Duration>,
}

/// One bot, one fake, one burst: start, idle, one command at a time, then the burst.
async fn one_run(which: Which, mode: Mode, burst: usize) -> RunFigures {
    let (fake, w) = fresh_fake().await;
    let hang = HangingServer::start();
    let started = Instant::now();
    let running = match which {
        Which::Floor => Running::Floor(Floor::start(&fake, mode)),
        Which::Sitrep => {
            let extra = format!("[prometheus]\nurl = \"{}\"\ntimeout = \"5s\"\n", hang.url());
            Running::Sitrep(Bot::start_with_env(
                &fake,
                w,
                mode,
                &extra,
                &[DEPLOYMENT_LOG],
            ))
        }
    };
    fake.wait_ready().await;
    let to_ready = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss = rss_kib(running.pid()).unwrap_or(0);

    // Five places to work in: incidents for sitrep; the floor answers anywhere, so plain
    // channels in the same category.
    let mut channels = Vec::new();
    for n in 0..5 {
        match which {
            Which::Sitrep => {
                let title = format!("bench {n}");
                channels.push(fake.open_incident(&title, "SEV3").await);
            }
            Which::Floor => {
                let name = format!("inc-{}-bench-{n}", n + 1);
                channels.push(fake.add_channel(&name, ChannelKind::Text, Some(w.category)));
            }
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    // One at a time: what a command costs when nothing queues in front of it.
    let mut alone = Vec::new();
    for k in 0..50 {
        let ch = channels[k % channels.len()];
        let i = fake.slash(OWNER_ID, ch, "incident", json!({"status": {}}));
        alone.push(fake.wait_response(&i).await.latency);
    }

    // The burst: notes, updates, status, metrics while Prometheus hangs, and opens.
    let mut sent: Vec<(usize, Interaction)> = Vec::with_capacity(burst);
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
    // Every interaction answered (not only acknowledged), or a minute gone.
    let all_answered = |f: &FakeDiscord| {
        sent.iter()
            .all(|(_, i)| {
                f.timing(i)
                    .is_some_and(|t| t.answered_since_created.is_some())
            })
            .then_some(())
    };
    let _ = fake.wait_until(Duration::from_secs(60), all_answered).await;
    let mut b = Burst {
        ack: vec![],
        ack_queued: vec![],
        answered_queued: vec![],
        by_kind_queued: Default::default(),
        answered_by_kind: Default::default(),
        no_ack: 0,
        no_answer: 0,
        late: 0,
    };
    for (kind, i) in &sent {
        let Some(t) = fake.timing(i) else {
            b.no_ack += 1;
            b.no_answer += 1;
            continue;
        };
        if t.ack_since_created > DEADLINE {
            b.late += 1;
        }
        b.ack.push(t.ack);
        b.ack_queued.push(t.ack_since_created);
        b.by_kind_queued[*kind].push(t.ack_since_created);
        match t.answered_since_created {
            Some(a) => {
                b.answered_queued.push(a);
                b.answered_by_kind[*kind].push(a);
            }
            None => b.no_answer += 1,
        }
    }
    // Sitrep's own share: from the handler's start to its first response sent, as it logs it.
    let handler = match &running {
        Running::Sitrep(bot) => bot
            .log()
            .lines()
            .filter_map(|l| l.split("ack_us=").nth(1))
            .filter_map(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map(Duration::from_micros)
            .collect(),
        Running::Floor(_) => vec![],
    };
    drop(running);
    RunFigures {
        to_ready,
        rss_kib: rss,
        alone,
        burst: b,
        handler,
    }
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}×", a / b)
    } else {
        "—".into()
    }
}

async fn side_by_side(bursts: &[usize]) {
    let sitrep_bin = env!("CARGO_BIN_EXE_sitrep");
    let floor_bin = env!("CARGO_BIN_EXE_floor");
    let (s, f) = (binary_mib(sitrep_bin), binary_mib(floor_bin));
    println!(
        "binary: sitrep {s:.1} MiB · floor {f:.1} MiB · ratio {}",
        ratio(s, f)
    );
    for mode in [Mode::Direct, Mode::Proxy] {
        for &burst in bursts {
            println!(
                "\n== {} · burst of {burst} · load average {} at the start",
                mode_name(mode),
                load_average()
            );
            let mut figures = Vec::new();
            for which in [Which::Floor, Which::Sitrep] {
                let mut r = one_run(which, mode, burst).await;
                let b = &mut r.burst;
                println!(
                    "{:>6}: start→READY {:.0} ms · idle RSS {:.1} MiB · one at a time (status) {} \
                     · burst ack from socket {} · from queued {} · answered from queued {} \
                     · no ack {} · no answer {} · ack > 3 s after queued {}",
                    which.name(),
                    ms(r.to_ready),
                    r.rss_kib as f64 / 1024.0,
                    show(spread(&mut r.alone)),
                    show(spread(&mut b.ack)),
                    show(spread(&mut b.ack_queued)),
                    show(spread(&mut b.answered_queued)),
                    b.no_ack,
                    b.no_answer,
                    b.late,
                );
                if which == Which::Sitrep {
                    for (k, name) in KINDS.iter().enumerate() {
                        println!(
                            "          {name}: ack from queued {} · answered from queued {}",
                            show(spread(&mut b.by_kind_queued[k])),
                            show(spread(&mut b.answered_by_kind[k])),
                        );
                    }
                    if !r.handler.is_empty() {
                        println!(
                            "          inside sitrep's handler: {} over {}",
                            show(spread(&mut r.handler)),
                            r.handler.len()
                        );
                    }
                }
                figures.push(r);
            }
            let (first, second) = figures.split_at_mut(1);
            let (fl, si) = (&mut first[0], &mut second[0]);
            let (fa, sa) = (spread(&mut fl.burst.ack), spread(&mut si.burst.ack));
            let (fq, sq) = (
                spread(&mut fl.burst.ack_queued),
                spread(&mut si.burst.ack_queued),
            );
            println!(
                " ratio: ack from socket p50 {} p99 {} max {} · from queued p50 {} p99 {} max {} \
                 · idle RSS {}",
                ratio(sa[0], fa[0]),
                ratio(sa[1], fa[1]),
                ratio(sa[2], fa[2]),
                ratio(sq[0], fq[0]),
                ratio(sq[1], fq[1]),
                ratio(sq[2], fq[2]),
                ratio(si.rss_kib as f64, fl.rss_kib as f64),
            );
        }
    }
}

/// Empties the kernel's page cache so that the restart reads the database (and the binary)
/// from disk. Needs root and a writable /proc/sys; says why not otherwise.
fn drop_caches() -> String {
    let _ = Command::new("sync").status();
    match std::fs::write("/proc/sys/vm/drop_caches", "3\n") {
        Ok(()) => "page cache dropped".into(),
        Err(e) => format!("page cache NOT dropped ({e})"),
    }
}

/// A database holding `n` events over resolved incidents, then the time from process start to
/// the first answered interaction, in direct mode at the deployment log level.
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
    let size: u64 = walk_size(&db);
    println!(
        "\nrestart: built a database of {n} events ({:.0} MiB on disk) in {:.1} s",
        size as f64 / 1_048_576.0,
        build.elapsed().as_secs_f64()
    );
    let (fake, w) = fresh_fake().await;
    let cache = drop_caches();
    let started = Instant::now();
    let bot = Bot::start_on_db_in(&fake, w, &db, Mode::Direct, &[DEPLOYMENT_LOG]);
    fake.wait_ready().await;
    let to_ready = started.elapsed();
    let i = fake.slash(
        OWNER_ID,
        GENERAL_CHANNEL_ID,
        "incident",
        json!({"status": {"incident": format!("INC-{}", (n / per).max(1))}}),
    );
    let r = fake.wait_response(&i).await;
    let answered = r.data.to_string().contains("stored");
    println!(
        "restart: {n} stored events, direct mode (TLS), log {}, {cache}, load average {}: \
         process start to READY {:.0} ms, to the first answer {:.0} ms{}",
        DEPLOYMENT_LOG.1,
        load_average(),
        ms(to_ready),
        ms(started.elapsed()),
        if answered {
            ""
        } else {
            " (WRONG ANSWER: not the stored incident)"
        }
    );
    drop(bot);
}

fn walk_size(path: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    };
    entries
        .filter_map(Result::ok)
        .map(|e| walk_size(&e.path()))
        .sum()
}

/// `/postmortem draft` end to end: an incident opened through the fake, 20k messages captured
/// into its store while the bot was down, resolved, then the draft asked for; from the
/// interaction's creation to the draft filling the deferred answer.
async fn postmortem_draft(messages: usize) {
    let (fake, w) = fresh_fake().await;
    let mut bot = Bot::start_with_env(&fake, w, Mode::Direct, "", &[DEPLOYMENT_LOG]);
    fake.wait_ready().await;
    let channel = fake.open_incident("Checkout returns 500", "SEV2").await;
    let resolve = fake.slash(
        OWNER_ID,
        channel,
        "incident",
        json!({"resolve": {"summary": "rolled back"}}),
    );
    fake.wait_response(&resolve).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(bot.stop().success(), "{}", bot.log());
    let first_id = fake
        .messages(channel)
        .iter()
        .filter_map(|m| m["id"].as_str()?.parse::<u64>().ok())
        .max()
        .unwrap_or(1)
        + 1;
    {
        let store = Store::open(bot.db_path()).unwrap();
        let opened = Utc::now() - ChronoDuration::hours(6);
        for k in 0..messages {
            let who = 1_000 + (k as u64 % 40);
            let text = match k % 4 {
                0 => format!(
                    "checking pod checkout-{} logs, error rate {}%",
                    k % 50,
                    k % 13
                ),
                1 => "rolling back the last config change on the payment gateway".into(),
                2 => format!("p99 latency is {}ms, baseline 180ms", 200 + k % 900),
                _ => format!("ack, on it ({k})"),
            };
            let m = CapturedMessage::new(
                first_id + k as u64,
                channel,
                UserRef::new(who, format!("responder{}", who % 40)),
                opened + ChronoDuration::milliseconds(k as i64 * 900),
                text,
            );
            store.capture_message(IncidentId(1), &m).unwrap();
        }
        store.flush().await.unwrap();
    }
    let bot = bot.restart_in(&fake, w, Mode::Direct, "", &[DEPLOYMENT_LOG]);
    fake.wait_ready().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let d = fake.slash(OWNER_ID, channel, "postmortem", json!({"draft": {}}));
    let drafted = fake
        .wait_until(Duration::from_secs(120), |f| {
            let t = f.timing(&d)?;
            let content = f.original(&d)?["content"].as_str()?.to_string();
            content
                .contains("Post-mortem draft")
                .then_some((t, content))
        })
        .await;
    match drafted {
        Some((t, _)) => println!(
            "\npostmortem: /postmortem draft of {messages} captured messages, direct mode (TLS), \
             log {}, load average {}: acknowledged {:.0} ms, draft delivered {:.0} ms after the \
             command",
            DEPLOYMENT_LOG.1,
            load_average(),
            ms(t.ack_since_created),
            ms(t.answered_since_created.unwrap_or_default()),
        ),
        None => println!(
            "\npostmortem: MISSED, no draft within 120 s: {:?}",
            fake.original(&d)
        ),
    }
    drop(bot);
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let bursts: Vec<usize> = env_or("SITREP_BENCH_BURSTS", "100,500")
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let events: usize = env_or("SITREP_BENCH_EVENTS", "1000000")
        .parse()
        .unwrap_or(1_000_000);
    let parts = env_or("SITREP_BENCH_PARTS", "burst,restart,postmortem");
    rt.block_on(async {
        if parts.contains("burst") {
            side_by_side(&bursts).await;
        }
        if parts.contains("restart") {
            restart_with_events(events).await;
        }
        if parts.contains("postmortem") {
            postmortem_draft(20_000).await;
        }
    });
}
