//! Fault suite: kill -9 mid-incident, gateway drops and fatal closes, REST 429 storms and 5xx bursts, integrations down.
//!
//! Random choices (kill points and delays, gateway faults) come from one seed, printed at the
//! start; `SITREP_FAULT_SEED=<n>` replays a run. The kill -9 scenario tries
//! `SITREP_FAULT_POINTS` points (20 by default, about 15 s) with kills up to
//! `SITREP_FAULT_MAX_DELAY_MS` (40) after a command is sent. A longer soak, about five minutes:
//!
//! ```text
//! SITREP_FAULT_POINTS=200 cargo test --locked --test faults kill_9 -- --nocapture
//! ```
//!
//! Each scenario prints what it measured (`--nocapture` shows it).

mod support;

use serde_json::{json, Value};
use sitrep::domain::{EventKind, IncidentId};
use sitrep::store::Store;
use std::time::{Duration, Instant};
use support::bot::{world, Bot, Mode, World};
use support::discord::{
    channel_link, ChannelKind, Direction, FakeDiscord, FakeOptions, Fault, GatewayFault,
    Interaction, GENERAL_CHANNEL_ID, OWNER_ID,
};

/// Discord's deadline for an interaction's first response.
const ACK_DEADLINE: Duration = Duration::from_secs(3);

/// The seed of every random choice in this file: `SITREP_FAULT_SEED`, else the clock. Printed,
/// so that a failure can be replayed.
fn seed() -> u64 {
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *SEED.get_or_init(|| {
        let seed = std::env::var("SITREP_FAULT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("fault seed: {seed} (replay with SITREP_FAULT_SEED={seed})");
        seed
    })
}

// ----- helpers shared by the scenarios -----

fn note(text: &str) -> Value {
    json!({ "note": { "text": text } })
}

/// Opens an incident as the owner and returns its channel.
async fn open(fake: &FakeDiscord, title: &str, severity: &str) -> u64 {
    let i = fake.slash(
        OWNER_ID,
        GENERAL_CHANNEL_ID,
        "incident",
        json!({ "open": { "title": title, "severity": severity } }),
    );
    let first = fake.wait_response(&i).await;
    assert!(first.latency < ACK_DEADLINE, "{:?}", first.latency);
    let original = fake
        .wait_until(Duration::from_secs(15), |f| {
            f.original(&i)
                .filter(|m| m["content"].as_str().is_some_and(|c| c.contains("Opened")))
        })
        .await
        .expect("the incident opens");
    channel_link(original["content"].as_str().unwrap()).expect("a channel link")
}

/// Callbacks the bot made for one interaction, whatever the fake answered.
fn callbacks(fake: &FakeDiscord, i: &Interaction) -> Vec<u16> {
    let needle = format!("/interactions/{}/", i.id);
    fake.requests_to("POST /interactions/{interaction}/{token}/callback")
        .into_iter()
        .filter(|r| r.path.starts_with(&needle))
        .map(|r| r.status)
        .collect()
}

fn notes(store: &Store, id: IncidentId) -> Vec<String> {
    store
        .events(id)
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::NoteAdded { text } => Some(text),
            _ => None,
        })
        .collect()
}

// ----- the gateway -----

const DROPS: u32 = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_sockets_resume_and_every_interaction_is_handled_once() {
    let fake = FakeDiscord::start().await;
    let w = world(&fake);
    let mut bot = Bot::start(&fake, w, Mode::Proxy, "");
    fake.wait_ready().await;
    let channel = open(&fake, "Gateway flaps", "SEV3").await;
    let mut rng = fastrand::Rng::with_seed(seed());
    let mut sent: Vec<(Interaction, String)> = Vec::new();
    let mut resumed_in = Vec::new();
    for n in 0..DROPS {
        // One note on the wire just before the drop, one dispatched while the socket is down:
        // the first may or may not have reached the bot, the second comes with the RESUME replay.
        let text = format!("before drop {n}");
        sent.push((fake.slash(OWNER_ID, channel, "incident", note(&text)), text));
        tokio::time::sleep(Duration::from_millis(rng.u64(0..30))).await;
        let dropped = Instant::now();
        // Mostly bare drops, now and then a close 4000 or an op 7, which serenity also resumes after.
        let fault = match rng.u8(0..4) {
            0 => GatewayFault::Close(4000),
            1 => GatewayFault::Reconnect,
            _ => GatewayFault::DropSocket,
        };
        assert_eq!(fake.gateway_fault(fault), 1);
        let text = format!("while down {n}");
        sent.push((fake.slash(OWNER_ID, channel, "incident", note(&text)), text));
        fake.wait_until(Duration::from_secs(15), |f| {
            (f.gateway_stats().resumes > n).then_some(())
        })
        .await
        .unwrap_or_else(|| panic!("no RESUME after drop {n}; log:\n{}", bot.log()));
        resumed_in.push(dropped.elapsed());
    }
    for (i, text) in &sent {
        let r = fake.wait_response(i).await;
        assert!(r.latency < ACK_DEADLINE, "{text}: {:?}", r.latency);
        assert!(
            r.content().contains(text.as_str()),
            "{text}: {}",
            r.content()
        );
    }
    // Late duplicates would show up in this window.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (i, text) in &sent {
        assert_eq!(callbacks(&fake, i), [204], "{text}: answered exactly once");
    }
    let stats = fake.gateway_stats();
    assert_eq!(
        stats.identifies, 1,
        "resumed every time, never re-identified"
    );
    assert_eq!(stats.resumes, DROPS);
    assert!(bot.stop().success());
    let store = Store::open(bot.db_path()).unwrap();
    let stored = notes(&store, IncidentId(1));
    for (_, text) in &sent {
        let n = stored.iter().filter(|t| *t == text).count();
        assert_eq!(n, 1, "{text:?} is in the timeline once: {stored:?}");
    }
    let replays = bot
        .log()
        .matches("already handled; ignoring the replay")
        .count();
    let slowest = resumed_in.iter().max().unwrap();
    let latencies: Vec<Duration> = sent
        .iter()
        .map(|(i, _)| fake.response(i).unwrap().latency)
        .collect();
    eprintln!(
        "gateway: {DROPS} drops, {} resumes, {} identify, {} interactions answered once each; \
         {replays} replayed dispatches ignored; slowest resume {slowest:?}, slowest first response {:?}",
        stats.resumes,
        stats.identifies,
        sent.len(),
        latencies.iter().max().unwrap()
    );
}

fn identify_attempts(fake: &FakeDiscord) -> usize {
    fake.frames()
        .iter()
        .filter(|f| f.direction == Direction::FromBot && f.op() == Some(2))
        .count()
}

/// Every close code Discord uses to end a session for good, with what the operator must read.
/// A 4014 is tried once more without message text, which the bot can do without.
const FATAL_CLOSES: [(u16, &[&str]); 6] = [
    (4004, &["gateway close 4004", "SITREP_DISCORD_TOKEN"]),
    (4010, &["gateway close 4010", "one shard"]),
    (4011, &["gateway close 4011", "remove the bot from servers"]),
    (4012, &["close 4012", "Upgrade sitrep"]),
    (4013, &["close 4013/4014", "not privileged"]),
    (
        4014,
        &[
            "Discord refused the Message Content intent",
            "close 4013/4014",
            "even without the Message Content intent",
        ],
    ),
];

/// Starts a bot whose every IDENTIFY is answered with `code`; returns how long it took to exit.
async fn fatal_close(code: u16, needles: &[&str]) -> Duration {
    let fake = FakeDiscord::start().await;
    let w = world(&fake);
    fake.close_identify_with(Some(code));
    let started = Instant::now();
    let mut bot = Bot::start(&fake, w, Mode::Proxy, "");
    let status = bot
        .wait_exit(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("close {code}: still running; log:\n{}", bot.log()));
    let took = started.elapsed();
    let log = bot.log();
    assert!(!status.success(), "close {code}: exited 0");
    for needle in needles {
        assert!(
            log.contains(needle),
            "close {code}: no {needle:?} in\n{log}"
        );
    }
    // A moment more, so that a reconnect that was coming would have been seen.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let tries = if code == 4014 { 2 } else { 1 };
    assert_eq!(
        identify_attempts(&fake),
        tries,
        "close {code}: IDENTIFY sent again"
    );
    assert_eq!(
        fake.gateway_stats().connections,
        tries as u32,
        "close {code}: reconnected"
    );
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fatal_close_codes_exit_with_what_to_fix_and_never_loop() {
    let runs = FATAL_CLOSES.map(|(code, needles)| fatal_close(code, needles));
    let took = futures::future::join_all(runs).await;
    for ((code, _), t) in FATAL_CLOSES.iter().zip(&took) {
        eprintln!("fatal close {code}: exited after {t:?}");
        assert!(*t < Duration::from_secs(5), "close {code}: {t:?} to exit");
    }
}

// ----- REST: 429 storms and 5xx bursts -----

const POSTS: &str = "POST /channels/{channel}/messages";

fn text_of(m: &Value) -> String {
    let mut s = m["content"].as_str().unwrap_or_default().to_string();
    for e in m["embeds"].as_array().into_iter().flatten() {
        for part in ["title", "description"] {
            s.push('\n');
            s.push_str(e[part].as_str().unwrap_or_default());
        }
    }
    s
}

/// The bot's own posts in `channel` (not its interaction replies) whose text contains `needle`.
fn posted(fake: &FakeDiscord, channel: u64, needle: &str) -> usize {
    fake.messages(channel)
        .iter()
        .filter(|m| m["author"]["bot"] == true && m["type"] == 0 && text_of(m).contains(needle))
        .count()
}

/// Runs `/incident update` and waits until the update is in both channels.
async fn update_lands(fake: &FakeDiscord, w: World, channel: u64, text: &str) {
    let i = fake.slash(
        OWNER_ID,
        channel,
        "incident",
        json!({ "update": { "message": text } }),
    );
    let r = fake.wait_response(&i).await;
    assert!(r.latency < ACK_DEADLINE, "{text}: {:?}", r.latency);
    assert!(r.content().contains(text), "{text}: {}", r.content());
    fake.wait_until(Duration::from_secs(20), |f| {
        (posted(f, channel, text) > 0 && posted(f, w.stakeholders, text) > 0).then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("{text} never reached both channels"));
}

/// What a REST run measured.
struct RestReport {
    rate_limited: u64,
    /// Of those, with `X-RateLimit-Global`.
    global: usize,
    invalid: u64,
    server_errors: usize,
    /// The shortest wait after a 429 before the same request went again, and what it was asked.
    tightest_wait: Option<(Duration, Duration)>,
    took: Duration,
}

/// One incident through a route-level 429 storm, a global 429 storm and a 500/502/503 burst.
async fn rest_storms(mode: Mode) -> RestReport {
    let fake = FakeDiscord::start().await;
    let w = world(&fake);
    let _bot = Bot::start(&fake, w, mode, "");
    fake.wait_ready().await;
    let started = Instant::now();

    // Every post in the channels answers 429 for 1.5 s; the opening posts run into it.
    fake.fail_for(
        POSTS,
        Fault::RateLimit { retry_after: 0.0 },
        Duration::from_millis(1500),
    );
    let channel = open(&fake, "Rate limited", "SEV3").await;
    update_lands(&fake, w, channel, "route storm update").await;

    // Then the whole API but interactions answers global 429s.
    fake.fail_for(
        "*",
        Fault::GlobalRateLimit { retry_after: 0.0 },
        Duration::from_millis(1500),
    );
    update_lands(&fake, w, channel, "global storm update").await;

    // Then one post meets three server errors in a row.
    for status in [500, 502, 503] {
        fake.fail_next(POSTS, Fault::ServerError(status));
    }
    update_lands(&fake, w, channel, "5xx burst update").await;
    let took = started.elapsed();

    // Late retries would land in this window.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for ch in [channel, w.stakeholders] {
        // The opening post and the announcement are titled with the incident alone.
        let opened = fake
            .messages(ch)
            .iter()
            .filter(|m| m["embeds"][0]["title"].as_str() == Some("INC-1 · Rate limited"))
            .count();
        assert_eq!(
            opened, 1,
            "the opening post in channel {ch}: delivered once"
        );
    }
    for (ch, needle) in [
        (channel, "route storm update"),
        (w.stakeholders, "route storm update"),
        (channel, "global storm update"),
        (w.stakeholders, "global storm update"),
        (channel, "5xx burst update"),
        (w.stakeholders, "5xx burst update"),
    ] {
        let n = posted(&fake, ch, needle);
        assert_eq!(n, 1, "{needle:?} in channel {ch}: delivered once");
    }

    let requests = fake.requests();
    let mut tightest: Option<(Duration, Duration)> = None;
    for (n, r) in requests.iter().enumerate().filter(|(_, r)| r.status == 429) {
        let asked = Duration::from_secs_f64(r.response["retry_after"].as_f64().unwrap());
        let again = requests[n + 1..]
            .iter()
            .find(|x| x.method == r.method && x.path == r.path && x.body == r.body)
            .unwrap_or_else(|| panic!("{} {} was never retried after its 429", r.method, r.path));
        let waited = again.at - r.at;
        let slack = |(w, a): (Duration, Duration)| w.as_secs_f64() - a.as_secs_f64();
        if tightest.map_or(true, |t| slack((waited, asked)) < slack(t)) {
            tightest = Some((waited, asked));
        }
    }
    let global = requests
        .iter()
        .filter(|r| r.status == 429 && r.response["global"] == true)
        .count();
    assert!(global > 0, "the global storm was met");
    assert!(
        requests
            .iter()
            .any(|r| r.status == 429 && r.response["global"] == false),
        "the route storm was met"
    );
    RestReport {
        global,
        rate_limited: fake.rate_limited_count(),
        invalid: fake.invalid_request_count(),
        server_errors: requests.iter().filter(|r| r.status >= 500).count(),
        tightest_wait: tightest,
        took,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_mode_waits_out_429_storms_and_5xx_bursts_and_loses_nothing() {
    let r = rest_storms(Mode::Direct).await;
    let (waited, asked) = r.tightest_wait.expect("the storms produced 429s");
    eprintln!(
        "REST direct: {} 429s ({} global), {} invalid requests, {} 5xx, tightest retry {waited:?} after asking {asked:?}, {:?} in all",
        r.rate_limited, r.global, r.invalid, r.server_errors, r.took
    );
    // serenity's limiter honours retry_after to the millisecond; the fake rounds up.
    assert!(
        waited + Duration::from_millis(5) >= asked,
        "retried after {waited:?}, asked to wait {asked:?}"
    );
    assert_eq!(r.server_errors, 3);
    // Discord bans at 10,000 invalid requests in 10 minutes; a storm costs about one per request in flight.
    assert!(r.invalid <= 20, "{} invalid requests", r.invalid);
}

/// Through a proxy serenity's limiter is off and its errors drop the `retry-after` header (and
/// Discord's 429 body has no `code`, so serenity cannot decode it either): the bot can only back
/// off on its own (0.5 s, doubling). Nothing may be lost all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_mode_backs_off_through_429_storms_and_5xx_bursts_and_loses_nothing() {
    let r = rest_storms(Mode::Proxy).await;
    let (waited, asked) = r.tightest_wait.expect("the storms produced 429s");
    eprintln!(
        "REST proxy: {} 429s ({} global), {} invalid requests, {} 5xx, tightest retry {waited:?} after asking {asked:?}, {:?} in all",
        r.rate_limited, r.global, r.invalid, r.server_errors, r.took
    );
    assert_eq!(r.server_errors, 3);
    assert!(r.invalid <= 20, "{} invalid requests", r.invalid);
}

// ----- the outbox: posts that commands make -----

/// Where `needle` first appears among the bot's posts in `channel`, in the order they were made.
/// Where `needle` was said in `channel`: which of the bot's messages, and where in it (a
/// stakeholder digest carries several incidents' posts in one message, in order).
fn position(fake: &FakeDiscord, channel: u64, needle: &str) -> Option<(usize, usize)> {
    fake.messages(channel)
        .iter()
        .filter(|m| m["author"]["bot"] == true && m["type"] == 0)
        .enumerate()
        .find_map(|(k, m)| text_of(m).find(needle).map(|at| (k, at)))
}

/// Message posts whose text contains `needle`, as sent (failed ones too).
fn sends_of(fake: &FakeDiscord, needle: &str) -> Vec<support::discord::Request> {
    fake.requests_to(POSTS)
        .into_iter()
        .filter(|r| text_of(&r.body).contains(needle))
        .collect()
}

/// How long the storm on the message route lasts: longer than the chat adapter's own retries
/// (0.5 s doubling, five attempts, 7.5 s), which used to drop a command's posts.
const LONG_STORM: Duration = Duration::from_secs(10);

/// What one long storm measured.
struct StormReport {
    /// From a command's reply to its post, before the storm.
    prompt: Duration,
    /// From the storm's end until the last post had landed.
    landed_after_storm: Duration,
    failed_sends: usize,
}

/// Updates, notes and a severity change run while every message post fails with `fault` for
/// [`LONG_STORM`]; afterwards each of their posts is in its channel once, in order.
async fn long_storm(mode: Mode, fault: Fault) -> StormReport {
    let fake = FakeDiscord::start_with(FakeOptions {
        wait_timeout: Duration::from_secs(30),
        ..FakeOptions::default()
    })
    .await;
    let w = world(&fake);
    let mut bot = Bot::start(&fake, w, mode, "");
    fake.wait_ready().await;
    let title = "INC-1 · Long storm";
    let channel = open(&fake, "Long storm", "SEV3").await;
    fake.wait_until(Duration::from_secs(10), |f| {
        (posted(f, channel, title) == 1 && posted(f, w.stakeholders, title) == 1).then_some(())
    })
    .await
    .expect("the opening posts");

    // Before the storm: how soon a command's post follows its reply.
    update_lands(&fake, w, channel, "calm update").await;
    let callback = fake
        .requests_to("POST /interactions/{interaction}/{token}/callback")
        .into_iter()
        .rfind(|r| text_of(&r.body["data"]).contains("calm update"))
        .expect("the update's reply");
    let post = sends_of(&fake, "calm update")
        .into_iter()
        .find(|r| r.status < 300)
        .expect("the update's post");
    let prompt = post.at.saturating_sub(callback.at);

    fake.fail_for(POSTS, fault, LONG_STORM);
    let storm = Instant::now();
    let mut needles = Vec::new();
    for n in 0..3 {
        let text = format!("storm update {n}");
        let i = fake.slash(
            OWNER_ID,
            channel,
            "incident",
            json!({ "update": { "message": text } }),
        );
        let r = fake.wait_response(&i).await;
        assert!(r.latency < ACK_DEADLINE, "{text}: {:?}", r.latency);
        assert!(r.content().contains(&text), "{}", r.content());
        needles.push(text);
        let i = fake.slash(
            OWNER_ID,
            channel,
            "incident",
            note(&format!("storm note {n}")),
        );
        assert!(fake.wait_response(&i).await.content().contains("Noted"));
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    let i = fake.slash(
        OWNER_ID,
        channel,
        "incident",
        json!({ "severity": { "level": "SEV2", "reason": "the storm" } }),
    );
    let r = fake.wait_response(&i).await;
    assert!(r.content().contains("is now SEV2"), "{}", r.content());
    needles.push("Severity changed from **SEV3** to **SEV2**".to_string());
    assert!(
        storm.elapsed() < LONG_STORM,
        "the commands ran inside the storm"
    );
    assert_eq!(
        posted(&fake, channel, "storm update 0"),
        0,
        "nothing got through the storm"
    );

    let all_in = |f: &FakeDiscord| {
        needles
            .iter()
            .all(|n| posted(f, channel, n) > 0 && posted(f, w.stakeholders, n) > 0)
    };
    fake.wait_until(Duration::from_secs(40), |f| all_in(f).then_some(()))
        .await
        .unwrap_or_else(|| panic!("{mode:?}: posts still missing; log:\n{}", bot.log()));
    let landed_after_storm = storm.elapsed().saturating_sub(LONG_STORM);
    // Late duplicates would arrive in this window.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for ch in [channel, w.stakeholders] {
        let mut last = None;
        for n in &needles {
            assert_eq!(posted(&fake, ch, n), 1, "{mode:?}: {n:?} in {ch}: once");
            let at = position(&fake, ch, n);
            assert!(at > last, "{mode:?}: {n:?} out of order in {ch}");
            last = at;
        }
    }
    let sends: Vec<_> = needles.iter().flat_map(|n| sends_of(&fake, n)).collect();
    for r in &sends {
        assert!(
            r.body["nonce"].as_str().is_some_and(|n| !n.is_empty())
                && r.body["enforce_nonce"] == true,
            "{mode:?}: a command's post without an enforced nonce: {}",
            r.body
        );
    }
    let failed_sends = sends.iter().filter(|r| r.status >= 300).count();
    assert!(failed_sends > 0, "{mode:?}: the storm was met");
    assert!(bot.stop().success(), "{}", bot.log());
    let store = Store::open(bot.db_path()).unwrap();
    assert_eq!(store.outbox().unwrap(), [], "{mode:?}: the outbox is empty");
    StormReport {
        prompt,
        landed_after_storm,
        failed_sends,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_posts_outlast_a_ten_second_storm_and_arrive_once_in_order() {
    let (proxy, direct) = tokio::join!(
        long_storm(Mode::Proxy, Fault::RateLimit { retry_after: 0.0 }),
        long_storm(Mode::Direct, Fault::ServerError(503)),
    );
    for (name, r) in [("proxy, 429s", proxy), ("direct, 503s", direct)] {
        eprintln!(
            "outbox through a {LONG_STORM:?} storm ({name}): a post {:?} after its reply before \
             the storm; {} failed sends, all posts in {:?} after the storm ended",
            r.prompt, r.failed_sends, r.landed_after_storm
        );
        // Tens of milliseconds when idle; the bound is loose for a loaded CI machine.
        assert!(
            r.prompt < Duration::from_millis(500),
            "{name}: {:?}",
            r.prompt
        );
        assert!(
            r.landed_after_storm < Duration::from_secs(10),
            "{name}: {:?}",
            r.landed_after_storm
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_after_an_open_is_answered_but_before_its_posts_go_out_loses_neither() {
    let fake = FakeDiscord::start().await;
    let w = world(&fake);
    let mut bot = Bot::start(&fake, w, Mode::Proxy, "");
    fake.wait_ready().await;
    // Discord takes interactions but no message posts.
    fake.fail_for(POSTS, Fault::ServerError(503), Duration::from_secs(120));
    let title = "INC-1 · Crash after open";
    let channel = open(&fake, "Crash after open", "SEV2").await;
    fake.wait_until(Duration::from_secs(10), |f| {
        sends_of(f, title)
            .iter()
            .any(|r| r.status == 503)
            .then_some(())
    })
    .await
    .expect("the bot tries to post the opening");
    bot.kill();
    let nonces: Vec<String> = sends_of(&fake, title)
        .iter()
        .filter_map(|r| r.body["nonce"].as_str().map(String::from))
        .collect();
    assert!(!nonces.is_empty(), "the attempts carry a nonce");
    assert_eq!(posted(&fake, channel, title), 0);
    assert_eq!(posted(&fake, w.stakeholders, title), 0);
    let store = Store::open(bot.db_path()).unwrap();
    let queued: Vec<u64> = store
        .outbox()
        .unwrap()
        .iter()
        .filter_map(|j| match &j.kind {
            sitrep::store::JobKind::Post { channel, .. } => Some(*channel),
            _ => None,
        })
        .collect();
    assert!(
        queued.starts_with(&[channel, w.stakeholders]),
        "the opening post and the announcement are on disk: {queued:?}"
    );
    drop(store);

    fake.clear_faults();
    let restarted = Instant::now();
    let mut bot = bot.restart(&fake, w, Mode::Proxy, "");
    fake.wait_until(Duration::from_secs(15), |f| {
        (posted(f, channel, title) > 0 && posted(f, w.stakeholders, title) > 0).then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("the posts did not follow the restart; log:\n{}", bot.log()));
    let took = restarted.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(posted(&fake, channel, title), 1, "the opening post, once");
    assert_eq!(
        posted(&fake, w.stakeholders, title),
        1,
        "the announcement, once"
    );
    let opening = fake
        .messages(channel)
        .into_iter()
        .find(|m| text_of(m).contains(title))
        .unwrap();
    assert_eq!(
        opening["components"][0]["components"][0]["label"], "Join",
        "with its buttons"
    );
    assert!(
        posted(&fake, channel, "What changed") <= 1,
        "the what-changed post, at most once"
    );
    // The restart sent the opening post with the nonce of its attempts before the kill.
    let path = format!("/channels/{channel}/messages");
    let after: Vec<String> = sends_of(&fake, title)
        .iter()
        .filter(|r| r.status < 300 && r.path == path)
        .filter_map(|r| r.body["nonce"].as_str().map(String::from))
        .collect();
    assert_eq!(after.len(), 1);
    assert!(nonces.contains(&after[0]), "{after:?} {nonces:?}");
    assert!(bot.stop().success(), "{}", bot.log());
    assert_eq!(Store::open(bot.db_path()).unwrap().outbox().unwrap(), []);
    eprintln!("kill -9 before the opening posts: both out {took:?} after the restart, once each");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_whose_answer_was_lost_is_sent_again_and_kept_once() {
    let fake = FakeDiscord::start().await;
    let w = world(&fake);
    // The bot gives up on a request after 1 s.
    let bot = Bot::start_with_env(
        &fake,
        w,
        Mode::Proxy,
        "",
        &[("SITREP_DISCORD__REQUEST_TIMEOUT", "1s")],
    );
    fake.wait_ready().await;
    let channel = open(&fake, "Lost answers", "SEV3").await;
    fake.wait_until(Duration::from_secs(10), |f| {
        (posted(f, w.stakeholders, "INC-1 · Lost answers") > 0
            && posted(f, channel, "What changed") > 0)
            .then_some(())
    })
    .await
    .expect("the posts that follow an open");
    // Discord makes the next message, but its answer comes after the bot stopped waiting.
    fake.fail_next(POSTS, Fault::LateAnswer(Duration::from_secs(3)));
    update_lands(&fake, w, channel, "answer lost").await;
    // The late answer, and anything sent after it, would land in this window.
    tokio::time::sleep(Duration::from_secs(3)).await;
    // The update goes to the incident's channel and the stakeholders' side by side; whichever
    // met the lost answer was sent again with its nonce.
    let sends: Vec<_> = [channel, w.stakeholders]
        .into_iter()
        .map(|ch| {
            sends_of(&fake, "answer lost")
                .into_iter()
                .filter(|r| r.path == format!("/channels/{ch}/messages"))
                .collect::<Vec<_>>()
        })
        .max_by_key(Vec::len)
        .unwrap();
    assert!(
        sends.len() >= 2,
        "sent again after the timeout: {}",
        sends.len()
    );
    let nonce = &sends[0].body["nonce"];
    assert!(nonce.is_string());
    assert!(sends.iter().all(|r| r.body["nonce"] == *nonce), "one nonce");
    assert_eq!(
        posted(&fake, channel, "answer lost"),
        1,
        "Discord kept one message; log:\n{}",
        bot.log()
    );
    assert_eq!(posted(&fake, w.stakeholders, "answer lost"), 1);
}

/// A first response that meets 5xx answers, then one that meets a 429, through `mode`.
async fn first_response_retries(mode: Mode) -> Vec<Duration> {
    const CALLBACK: &str = "POST /interactions/{interaction}/{token}/callback";
    let fake = FakeDiscord::start().await;
    let w = world(&fake);
    let bot = Bot::start(&fake, w, mode, "");
    fake.wait_ready().await;
    let channel = open(&fake, "Callbacks", "SEV3").await;

    fake.fail_next_n(CALLBACK, Fault::ServerError(503), 2);
    let i = fake.slash(OWNER_ID, channel, "incident", note("after two 503s"));
    let r = fake.wait_response(&i).await;
    assert!(r.content().contains("after two 503s"), "{}", r.content());
    assert!(r.latency < ACK_DEADLINE, "{mode:?}: {:?}", r.latency);
    assert_eq!(callbacks(&fake, &i), [503, 503, 204], "{mode:?}");

    let retry_after = 0.2;
    fake.fail_next(CALLBACK, Fault::RateLimit { retry_after });
    let i = fake.slash(OWNER_ID, channel, "incident", note("after a 429"));
    let r = fake.wait_response(&i).await;
    assert!(r.latency < ACK_DEADLINE, "{mode:?}: {:?}", r.latency);
    assert_eq!(callbacks(&fake, &i), [429, 204], "{mode:?}");
    let needle = format!("/interactions/{}/", i.id);
    let at: Vec<Duration> = fake
        .requests_to(CALLBACK)
        .iter()
        .filter(|r| r.path.starts_with(&needle))
        .map(|r| r.at)
        .collect();
    let waited = at[1] - at[0];
    if mode == Mode::Direct {
        // Only here does retry_after reach the bot (serenity waits it out itself).
        assert!(
            waited.as_secs_f64() + 0.005 >= retry_after,
            "{mode:?}: retried after {waited:?}"
        );
    }

    // A deferral that meets a 502 is sent again, and the command goes on.
    fake.fail_next(CALLBACK, Fault::ServerError(502));
    let i = fake.slash(
        OWNER_ID,
        GENERAL_CHANNEL_ID,
        "incident",
        json!({ "open": { "title": "Second", "severity": "SEV4" } }),
    );
    assert_eq!(fake.wait_response(&i).await.kind, 5, "{mode:?}: deferred");
    fake.wait_until(Duration::from_secs(10), |f| {
        f.original(&i).filter(|m| {
            m["content"]
                .as_str()
                .is_some_and(|c| c.contains("Opened INC-2"))
        })
    })
    .await
    .unwrap_or_else(|| panic!("{mode:?}: the open went on; log:\n{}", bot.log()));
    assert_eq!(callbacks(&fake, &i), [502, 204], "{mode:?}");

    // The answer that replaces a deferral meets two 503s and still arrives.
    const EDIT: &str = "PATCH /webhooks/{application}/{token}/messages/{message}";
    fake.fail_next_n(EDIT, Fault::ServerError(503), 2);
    let i = fake.slash(
        OWNER_ID,
        GENERAL_CHANNEL_ID,
        "incident",
        json!({ "open": { "title": "Third", "severity": "SEV4" } }),
    );
    assert_eq!(fake.wait_response(&i).await.kind, 5, "{mode:?}: deferred");
    fake.wait_until(Duration::from_secs(10), |f| {
        f.original(&i).filter(|m| {
            m["content"]
                .as_str()
                .is_some_and(|c| c.contains("Opened INC-3"))
        })
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "{mode:?}: the answer arrived after 503s; log:\n{}",
            bot.log()
        )
    });
    let edits: Vec<u16> = fake
        .requests_to(EDIT)
        .iter()
        .filter(|r| r.path.contains(&i.token))
        .map(|r| r.status)
        .collect();
    assert_eq!(edits, [503, 503, 200], "{mode:?}");
    vec![waited]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_responses_are_retried_through_5xx_and_429_within_the_window() {
    let (proxy, direct) = tokio::join!(
        first_response_retries(Mode::Proxy),
        first_response_retries(Mode::Direct)
    );
    eprintln!(
        "first responses: retried after a 429 (retry_after 0.2 s) in {:?} through a proxy, {:?} direct",
        proxy[0], direct[0]
    );
}

// ----- kill -9 at random points of a scripted incident -----

/// Points tried when `SITREP_FAULT_POINTS` is not set: what fits in CI's budget.
const DEFAULT_POINTS: usize = 20;
/// Kills land this long at most after a command is sent (`SITREP_FAULT_MAX_DELAY_MS`); the
/// commands take tens of milliseconds, so many land mid-handling.
const DEFAULT_MAX_DELAY_MS: u64 = 40;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One command of the scripted incident.
struct Step {
    command: &'static str,
    options: Value,
    /// Answered with a deferral, then an edit of the original response.
    deferred: bool,
    /// In the success reply.
    reply: &'static str,
    /// The timeline line (`EventKind::describe`) a success promises.
    event: String,
}

/// Open, update, escalate, note, raise the severity, note, resolve: incident `p`'s script.
fn script(p: usize) -> Vec<Step> {
    let step = |command, options, deferred, reply, event: String| Step {
        command,
        options,
        deferred,
        reply,
        event,
    };
    vec![
        step(
            "incident",
            json!({"open": {"title": format!("crash p{p}"), "severity": "SEV2"}}),
            true,
            "Opened INC-",
            format!("Opened as SEV2: crash p{p}"),
        ),
        step(
            "incident",
            json!({"update": {"message": format!("p{p} first update")}}),
            false,
            "posted an update to",
            format!("Update: p{p} first update"),
        ),
        step(
            "escalate",
            json!({"target": "dba", "reason": format!("p{p} replica lag")}),
            true,
            "escalated INC-",
            format!("Escalated to dba (level 1): p{p} replica lag"),
        ),
        step(
            "incident",
            note(&format!("p{p} note one")),
            false,
            "Noted in",
            format!("Note: p{p} note one"),
        ),
        step(
            "incident",
            json!({"severity": {"level": "SEV1", "reason": format!("p{p} spreading")}}),
            false,
            "is now SEV1",
            format!("Severity SEV2 → SEV1: p{p} spreading"),
        ),
        step(
            "incident",
            note(&format!("p{p} note two")),
            false,
            "Noted in",
            format!("Note: p{p} note two"),
        ),
        step(
            "incident",
            json!({"resolve": {"summary": format!("p{p} rolled back")}}),
            false,
            "is resolved",
            format!("Resolved: p{p} rolled back"),
        ),
    ]
}

/// The final text of a command that succeeded, as Discord shows it; `None` while there is none.
fn success(fake: &FakeDiscord, i: &Interaction, step: &Step) -> Option<String> {
    let r = fake.response(i)?;
    let text = if step.deferred {
        if r.kind != 5 {
            return None;
        }
        fake.original(i)?["content"].as_str()?.to_string()
    } else {
        if r.kind != 4 || r.ephemeral() {
            return None;
        }
        r.content().to_string()
    };
    text.contains(step.reply).then_some(text)
}

/// A command sent during the run: which point and which step of its script.
struct Sent {
    point: usize,
    step: usize,
    interaction: Interaction,
}

fn escalation_toml(r: &Roles) -> String {
    format!(
        "[escalation]\nstuck_after = \"2s\"\n\
         [escalation.targets.dba]\nroles = [{}]\n\
         [escalation.targets.sre-lead]\nroles = [{}]\n\
         [escalation.targets.eng-director]\nroles = [{}]\n\
         [escalation.policies.default]\nlevels = [\"dba\", \"sre-lead\", \"eng-director\"]\nack_timeout = \"2s\"\n",
        r.dba, r.lead, r.director
    )
}

#[derive(Clone, Copy)]
struct Roles {
    dba: u64,
    lead: u64,
    director: u64,
}

/// The incident opened by point `p`'s script, if the store has it.
fn incident_of(store: &Store, p: usize) -> Option<sitrep::domain::Incident> {
    let title = format!("crash p{p}");
    store
        .incidents()
        .unwrap()
        .into_iter()
        .find(|i| i.title == title)
}

fn timeline(store: &Store, id: IncidentId) -> Vec<String> {
    store
        .events(id)
        .unwrap()
        .iter()
        .map(|e| e.kind.describe())
        .collect()
}

/// Every command Discord showed as done is in the store, once; returns how many were checked.
fn check_durable(store: &Store, fake: &FakeDiscord, sent: &[Sent]) -> usize {
    let mut checked = 0;
    for s in sent {
        let step = &script(s.point)[s.step];
        let lines = incident_of(store, s.point)
            .map(|i| timeline(store, i.id))
            .unwrap_or_default();
        let n = lines.iter().filter(|l| **l == step.event).count();
        if success(fake, &s.interaction, step).is_some() {
            assert_eq!(
                n, 1,
                "point {} step {}: answered as done, so {:?} must be in the store once; it has {lines:#?}",
                s.point, s.step, step.event
            );
            checked += 1;
        } else {
            assert!(n <= 1, "{:?} recorded {n} times", step.event);
        }
    }
    checked
}

/// Brings each still-scheduled status update of `id` forward to now, as if the bot had been down
/// past it; one already due (maybe cut off while posting) is left alone, as its nonce is what
/// the restart is to be checked on.
fn status_update_due_now(store: &Store, id: IncidentId) -> bool {
    use sitrep::store::{Job, JobChange, JobKind};
    let now = chrono::Utc::now();
    match store.job(id, &JobKind::StatusUpdate).unwrap() {
        Some(job) if job.runs_at() > now => {
            store
                .apply_jobs(&[JobChange::Put(Job::new(id, JobKind::StatusUpdate, now))])
                .unwrap();
            futures::executor::block_on(store.flush()).unwrap();
            true
        }
        _ => false,
    }
}

/// Bot messages in `channel` (its own posts, not interaction replies) whose content contains `needle`.
fn bot_posts(fake: &FakeDiscord, channel: u64, needle: &str) -> Vec<Value> {
    fake.messages(channel)
        .into_iter()
        .filter(|m| m["author"]["bot"] == true && m["type"] == 0 && text_of(m).contains(needle))
        .collect()
}

async fn wait_identified(fake: &FakeDiscord, bot: &Bot, n: u32) {
    fake.wait_until(Duration::from_secs(20), |f| {
        (f.gateway_stats().identifies >= n).then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("the bot did not identify; log:\n{}", bot.log()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_points_loses_no_acknowledged_command_and_resumes_every_job() {
    let points: usize = env_or("SITREP_FAULT_POINTS", DEFAULT_POINTS);
    let max_delay: u64 = env_or("SITREP_FAULT_MAX_DELAY_MS", DEFAULT_MAX_DELAY_MS);
    let mut rng = fastrand::Rng::with_seed(seed());
    let fake = FakeDiscord::start_with(FakeOptions {
        wait_timeout: Duration::from_secs(20),
        // Durability, not pace: twenty incidents opened, updated and resolved within seconds
        // post far more to the one stakeholder channel than Discord's 5 per 5 s would let
        // through in the time this test waits.
        enforce_route_limits: false,
        ..FakeOptions::default()
    })
    .await;
    let roles = Roles {
        dba: fake.add_role("dba"),
        lead: fake.add_role("sre-lead"),
        director: fake.add_role("eng-director"),
    };
    let mut w = world(&fake);
    let extra = escalation_toml(&roles);
    let started = Instant::now();
    let mut bot = Bot::start(&fake, w, Mode::Proxy, &extra);
    let mut identifies = 1;
    wait_identified(&fake, &bot, identifies).await;

    let mut sent: Vec<Sent> = Vec::new();
    let (mut mid_command, mut durable_unanswered, mut pulled_forward) = (0, 0, 0);
    let mut kill_steps = vec![0usize; script(0).len()];
    for p in 0..points {
        let steps = script(p);
        let k = rng.usize(0..steps.len());
        let delay = Duration::from_millis(rng.u64(0..=max_delay));
        kill_steps[k] += 1;
        let mut channel = GENERAL_CHANNEL_ID;
        for (n, step) in steps.iter().enumerate().take(k + 1) {
            let i = fake.slash(OWNER_ID, channel, step.command, step.options.clone());
            sent.push(Sent {
                point: p,
                step: n,
                interaction: i.clone(),
            });
            if n == k {
                tokio::time::sleep(delay).await;
                bot.kill();
                break;
            }
            let text = fake
                .wait_until(Duration::from_secs(20), |f| success(f, &i, step))
                .await
                .unwrap_or_else(|| {
                    panic!(
                        "point {p} step {n} ({}) did not succeed; response {:?}; log:\n{}",
                        step.options,
                        fake.response(&i),
                        bot.log()
                    )
                });
            if n == 0 {
                channel = channel_link(&text).expect("the open reply links the channel");
            }
        }
        let last = sent.last().unwrap();
        let answered = success(&fake, &last.interaction, &steps[k]).is_some();
        if !answered {
            mid_command += 1;
        }

        // The bot is down: what it promised must be on disk.
        let store = Store::open(&bot.db).unwrap();
        check_durable(&store, &fake, &sent);
        if let Some(inc) = incident_of(&store, p) {
            let recorded = timeline(&store, inc.id).contains(&steps[k].event);
            if recorded && !answered {
                durable_unanswered += 1;
            }
            if status_update_due_now(&store, inc.id) {
                pulled_forward += 1;
            }
        }
        drop(store);
        if (p + 1) % 40 == 0 {
            // Discord allows 50 channels in a category; long runs move on to a new one.
            w.category = fake.add_channel("Incidents", ChannelKind::Category, None);
        }
        bot = bot.restart(&fake, w, Mode::Proxy, &extra);
        identifies += 1;
        wait_identified(&fake, &bot, identifies).await;
    }

    // Everything left pending has to happen now: ladders climb to the end (2 s a level), every
    // open incident gets its stuck nudge, the status updates brought forward go out.
    let expect = {
        bot.kill();
        let store = Store::open(&bot.db).unwrap();
        check_durable(&store, &fake, &sent);
        let incidents = store.incidents().unwrap();
        drop(store);
        bot = bot.restart(&fake, w, Mode::Proxy, &extra);
        identifies += 1;
        incidents
    };
    wait_identified(&fake, &bot, identifies).await;
    let settled = |f: &FakeDiscord| {
        expect.iter().filter(|i| i.is_open()).all(|i| {
            let ch = i.channel.unwrap();
            let ladder_done = i.escalations.iter().all(|e| {
                !bot_posts(
                    f,
                    ch,
                    &format!("nobody acknowledged escalation #{}", e.number),
                )
                .is_empty()
            });
            ladder_done && !bot_posts(f, ch, "has been investigating for").is_empty()
        })
    };
    fake.wait_until(Duration::from_secs(30), |f| settled(f).then_some(()))
        .await
        .unwrap_or_else(|| panic!("pending work did not resume; log:\n{}", bot.log()));
    // Anything sent twice would arrive in this window.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(bot.stop().success(), "{}", bot.log());

    let store = Store::open(&bot.db).unwrap();
    let checked = check_durable(&store, &fake, &sent);
    let now = chrono::Utc::now();
    for job in store.jobs().unwrap() {
        assert_eq!(job.attempts, 0, "no job failed: {job:?}");
        assert!(
            job.runs_at() > now - chrono::Duration::seconds(5),
            "left overdue: {job:?}"
        );
    }
    let mut scheduled_posts = 0;
    for inc in store.incidents().unwrap() {
        let ch = inc.channel.expect("incidents here have channels");
        let events = store.events(inc.id).unwrap();
        // Each recorded page is in the channel exactly once.
        for e in &events {
            if let EventKind::Escalated { level, roles, .. } = &e.kind {
                let page = format!("<@&{}> you are needed on **{}**", roles[0], inc.id);
                let n = bot_posts(&fake, ch, &page).len();
                assert_eq!(n, 1, "{} level {level}: paged {n} times", inc.id);
                scheduled_posts += usize::from(*level > 1);
            }
        }
        // Whatever the records say, no level was paged twice.
        for role in [roles.dba, roles.lead, roles.director] {
            let page = format!("<@&{role}> you are needed on **{}**", inc.id);
            assert!(
                bot_posts(&fake, ch, &page).len() <= 1,
                "{}: {role} paged twice",
                inc.id
            );
        }
        let exhausted = bot_posts(&fake, ch, "nobody acknowledged escalation #").len();
        let timed_out_last = events
            .iter()
            .any(|e| matches!(e.kind, EventKind::EscalationTimedOut { level: 3, .. }));
        assert!(
            exhausted <= 1,
            "{}: commander told {exhausted} times",
            inc.id
        );
        if timed_out_last {
            assert_eq!(exhausted, 1, "{}: the commander was told", inc.id);
        }
        let nudges = bot_posts(&fake, ch, "has been investigating for").len();
        assert!(nudges <= 1, "{}: {nudges} nudges", inc.id);
        if inc.is_open() {
            assert_eq!(nudges, 1, "{}: the nudge came after the restarts", inc.id);
        }
        let automated = events
            .iter()
            .filter(|e| {
                matches!(
                    e.kind,
                    EventKind::StatusPosted {
                        automated: true,
                        ..
                    }
                )
            })
            .count();
        let title = format!("Status update · {} ·", inc.id);
        for channel in [ch, w.stakeholders] {
            let n = bot_posts(&fake, channel, &title).len();
            assert_eq!(n, automated, "{}: one scheduled update per record", inc.id);
        }
        scheduled_posts += exhausted + nudges + 2 * automated;
    }
    // Discord kept one message per nonce; count how often the bot had to send one again.
    let mut by_nonce: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for r in fake.requests_to(POSTS) {
        if let (Some(n), true) = (r.body["nonce"].as_str(), r.status < 300) {
            by_nonce
                .entry(n.to_string())
                .or_default()
                .push(r.response["id"].as_str().unwrap_or_default().to_string());
        }
    }
    for (nonce, ids) in &by_nonce {
        assert!(
            ids.windows(2).all(|w| w[0] == w[1]),
            "nonce {nonce} made several messages: {ids:?}"
        );
    }
    let resent = by_nonce.values().filter(|ids| ids.len() > 1).count();
    eprintln!(
        "kill -9: {points} points (kills by step {kill_steps:?}, {mid_command} before the reply, \
         {durable_unanswered} of those already on disk), {checked} acknowledged commands found \
         in the store, {pulled_forward} status updates brought due, {scheduled_posts} scheduled \
         posts checked, {resent} re-sent with their nonce and kept once, {:?} in all",
        started.elapsed()
    );
}

// ----- integrations down or hanging -----

/// An API that is down: every request gets `status`.
async fn down_server(status: u16) -> String {
    let app = axum::Router::new().fallback(move || async move {
        (
            axum::http::StatusCode::from_u16(status).unwrap(),
            "service unavailable",
        )
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// Where each integration points and what its failure must say.
struct Outage {
    name: &'static str,
    prometheus: String,
    pagerduty: String,
    github: String,
    prometheus_says: &'static str,
    pagerduty_says: &'static str,
}

const ROUTING_KEY: &str = "RDBA0000000000000000000000000000";
/// `[prometheus] timeout` and `[pagerduty] timeout` in these scenarios.
const INTEGRATION_TIMEOUT: Duration = Duration::from_secs(1);

fn outage_toml(o: &Outage, dba: u64) -> String {
    let q = support::prometheus::ERROR_RATE;
    format!(
        "[prometheus]\nurl = \"{}\"\ntimeout = \"1s\"\n\n\
         [queries.error_rate]\npromql = '{q}'\nunit = \"req/s\"\n\n\
         [whats_changed]\nqueries = [\"error_rate\"]\n\n\
         [github]\napi_base = \"{}\"\nrepositories = [\"acme/checkout\"]\npoll_every = \"10s\"\n\n\
         [pagerduty]\nevents_url = \"{}/v2/enqueue\"\ntimeout = \"1s\"\n\n\
         [escalation]\nstuck_after = \"0s\"\n\
         [escalation.targets.dba]\nroles = [{dba}]\npagerduty_routing_key_env = \"SITREP_PD_DBA\"\n",
        o.prometheus, o.github, o.pagerduty
    )
}

/// Runs an incident with every integration failing as `o` says; returns the slowest first
/// response and how long PagerDuty's failure took to be shown.
async fn outage(o: Outage) -> (Duration, Duration) {
    let fake = FakeDiscord::start_with(FakeOptions {
        wait_timeout: Duration::from_secs(30),
        ..FakeOptions::default()
    })
    .await;
    let dba = fake.add_role("dba");
    let w = world(&fake);
    let started = Instant::now();
    let bot = Bot::start_with_env(
        &fake,
        w,
        Mode::Proxy,
        &outage_toml(&o, dba),
        &[
            ("SITREP_PD_DBA", ROUTING_KEY),
            (
                "SITREP_GITHUB_TOKEN",
                "ghp_faultsuite000000000000000000000000",
            ),
        ],
    );
    fake.wait_ready().await;
    let name = o.name;
    let mut acks = Vec::new();

    let i = fake.slash(
        OWNER_ID,
        GENERAL_CHANNEL_ID,
        "incident",
        json!({"open": {"title": "Checkout errors", "severity": "SEV1", "service": "checkout"}}),
    );
    acks.push(fake.wait_response(&i).await.latency);
    let opened = fake
        .wait_until(Duration::from_secs(5), |f| {
            f.original(&i).filter(|m| {
                m["content"]
                    .as_str()
                    .is_some_and(|c| c.contains("Opened INC-1"))
            })
        })
        .await
        .unwrap_or_else(|| panic!("{name}: open did not complete; log:\n{}", bot.log()));
    let channel = channel_link(opened["content"].as_str().unwrap()).unwrap();
    // The post at open says Prometheus failed, once its timeout has passed at most.
    let sent = Instant::now();
    let changed = fake
        .wait_message(|m| {
            text_of(m).contains("What changed") && text_of(m).contains(o.prometheus_says)
        })
        .await;
    assert!(
        sent.elapsed() < INTEGRATION_TIMEOUT + Duration::from_secs(2),
        "{name}: what changed took {:?}",
        sent.elapsed()
    );
    assert!(
        text_of(&changed).contains("No deploys recorded"),
        "{changed}"
    );

    let sent = Instant::now();
    let m = fake.slash(
        OWNER_ID,
        channel,
        "metrics",
        json!({"name": "error_rate", "service": "checkout"}),
    );
    acks.push(fake.wait_response(&m).await.latency);
    // A failure found after the deferral is told to the typist alone.
    let answer = fake
        .wait_until(Duration::from_secs(5), |f| {
            f.followups(&m).into_iter().next()
        })
        .await
        .expect("/metrics is answered");
    assert_eq!(answer["flags"].as_u64().unwrap_or(0) & 64, 64, "{answer}");
    assert!(fake.original_deleted(&m), "{name}: the placeholder stayed");
    let answer = answer["content"].as_str().unwrap_or("").to_string();
    assert!(answer.contains(o.prometheus_says), "{name}: {answer}");
    let metrics_took = sent.elapsed();
    assert!(
        metrics_took < INTEGRATION_TIMEOUT + Duration::from_secs(2),
        "{name}: /metrics took {metrics_took:?}"
    );

    let d = fake.slash(OWNER_ID, channel, "deploys", json!({}));
    let r = fake.wait_response(&d).await;
    acks.push(r.latency);
    assert!(
        r.content().contains("No deploys"),
        "{name}: {}",
        r.content()
    );

    let sent = Instant::now();
    let e = fake.slash(
        OWNER_ID,
        channel,
        "escalate",
        json!({"target": "dba", "reason": "errors climbing"}),
    );
    acks.push(fake.wait_response(&e).await.latency);
    let page = fake
        .wait_message(|m| {
            m["content"]
                .as_str()
                .is_some_and(|c| c.contains("you are needed on **INC-1**"))
        })
        .await;
    assert!(
        sent.elapsed() < Duration::from_secs(3),
        "{name}: the Discord page waited on PagerDuty: {:?}",
        sent.elapsed()
    );
    let page_id: u64 = page["id"].as_str().unwrap().parse().unwrap();
    let ack = fake.click(OWNER_ID, page_id, "escalation:ack:1:1");
    acks.push(fake.wait_response(&ack).await.latency);
    let note = fake.slash(OWNER_ID, channel, "incident", note("still failing over"));
    acks.push(fake.wait_response(&note).await.latency);

    // PagerDuty's failure is said in the channel once its retries are spent.
    let shown = fake
        .wait_message(|m| {
            m["content"]
                .as_str()
                .is_some_and(|c| c.contains("PagerDuty did not take the page"))
        })
        .await;
    let pd_took = sent.elapsed();
    let text = shown["content"].as_str().unwrap();
    assert!(text.contains(o.pagerduty_says), "{name}: {text}");
    assert!(
        !text.contains(ROUTING_KEY),
        "{name}: the routing key leaked"
    );
    // GitHub's first poll ran at start; its failure is in the log, naming the API.
    let log = bot.log();
    assert!(
        log.contains("GitHub deployments poll failed") && log.contains(&o.github),
        "{name}: {log}"
    );
    let slowest = acks.iter().copied().max().unwrap();
    assert!(slowest < ACK_DEADLINE, "{name}: {acks:?}");
    eprintln!(
        "integrations {name}: {text}\n first responses {acks:?}, /metrics answered in {metrics_took:?}, \
         PagerDuty failure shown after {pd_took:?}, {:?} in all",
        started.elapsed()
    );
    (slowest, pd_took)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integrations_down_or_hanging_fail_clearly_and_never_delay_an_acknowledgement() {
    let prometheus_hangs = support::prometheus::HangingServer::start();
    let pagerduty_hangs = support::prometheus::HangingServer::start();
    let hanging = Outage {
        name: "hanging",
        prometheus: prometheus_hangs.url(),
        pagerduty: pagerduty_hangs.url(),
        github: support::prometheus::refused_url(),
        prometheus_says: "did not answer within 1 s",
        pagerduty_says: "after 5 attempts; last: no answer within 1 s ([pagerduty] timeout)",
    };
    let refusing = Outage {
        name: "refusing",
        prometheus: support::prometheus::refused_url(),
        pagerduty: down_server(500).await,
        github: down_server(503).await,
        prometheus_says: "cannot be reached",
        pagerduty_says: "after 5 attempts; last: 500 Internal Server Error",
    };
    let ((a, pa), (b, pb)) = tokio::join!(outage(hanging), outage(refusing));
    // Five attempts of at most the timeout each, the backoff between them (at most 15 s), slack.
    let budget = INTEGRATION_TIMEOUT * 5 + Duration::from_secs(18);
    assert!(pa < budget && pb < budget, "{pa:?} {pb:?}");
    assert!(a.max(b) < ACK_DEADLINE);
}
