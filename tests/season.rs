//! A season compressed into minutes: the real binary over the strict fake, hundreds of incidents
//! opened, updated, escalated and resolved in channel, thread and forum mode, with a restart, a
//! kill -9 and an outage longer than Discord's nonce window in between.
//!
//! What a year of incidents does to a server: every declaration gets a place and an answer,
//! nothing is posted twice, there is no 50013/30013/429 storm, and the invalid requests stay far
//! below Discord's 10,000 per 10 minutes. The fake keeps every limit it has (route buckets, the
//! stakeholder channel's 5 messages per 5 s, caps, permissions); the only things shortened are
//! the archive delay and the nonce window, so that weeks pass in seconds.

mod support;

use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};
use support::bot::{world, Bot, Mode, World};
use support::discord::{
    channel_link, ChannelKind, FakeDiscord, FakeOptions, GENERAL_CHANNEL_ID,
    INTENT_MESSAGE_CONTENT, OWNER_ID,
};

/// Incidents worked at the same time, as in a bad week.
const AT_ONCE: usize = 6;

/// Where incidents live in one run of the season.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Places {
    Channels,
    Threads,
    Forum,
}
/// The deferred answer to an interaction, once it is filled in.
async fn answer(fake: &FakeDiscord, i: &support::discord::Interaction, what: &str) -> String {
    let first = fake.wait_response(i).await;
    assert!(
        first.latency < Duration::from_secs(3),
        "{what}: first answer after {:?}",
        first.latency
    );
    if first.kind == 4 {
        return first.content().to_string();
    }
    fake.wait_until(Duration::from_secs(60), |f| {
        f.original(i)
            .and_then(|m| m["content"].as_str().map(String::from))
            .filter(|c| !c.is_empty() && !c.contains("is thinking"))
            .or_else(|| {
                f.followups(i)
                    .first()
                    .and_then(|m| m["content"].as_str().map(String::from))
            })
    })
    .await
    .unwrap_or_else(|| panic!("no answer to {what}"))
}

/// One incident's life: declared by one of the on-call people, worked, sometimes escalated,
/// resolved. Returns its place.
async fn life(fake: FakeDiscord, n: usize, people: Vec<u64>) -> u64 {
    let who = people[n % people.len()];
    let severity = ["SEV1", "SEV2", "SEV3", "SEV4"][n % 4];
    let title = format!("Week {} outage {n}", n / 15 + 1);
    let i = fake.slash(
        who,
        GENERAL_CHANNEL_ID,
        "incident",
        json!({ "open": { "title": title, "severity": severity } }),
    );
    let said = answer(&fake, &i, &format!("the declaration of {title}")).await;
    assert!(said.starts_with("Opened"), "{title}: {said}");
    let place = channel_link(&said).unwrap_or_else(|| panic!("{title} got no place: {said}"));

    let i = fake.slash(
        who,
        place,
        "incident",
        json!({"update": {"state": "identified", "message": format!("cause of {n} found")}}),
    );
    let said = answer(&fake, &i, &format!("the update of {n}")).await;
    assert!(!said.contains("Sorry"), "update of {n}: {said}");
    if n % 4 == 0 {
        let i = fake.slash(
            who,
            place,
            "escalate",
            json!({"target": "dba", "reason": "the on-call dba knows this database"}),
        );
        let said = answer(&fake, &i, &format!("the escalation of {n}")).await;
        assert!(!said.contains("Sorry"), "escalation of {n}: {said}");
    }
    let i = fake.slash(
        who,
        place,
        "incident",
        json!({"resolve": {"summary": format!("fixed {n}")}}),
    );
    let said = answer(&fake, &i, &format!("the resolution of {n}")).await;
    assert!(!said.contains("Sorry"), "resolution of {n}: {said}");
    place
}

/// Incidents `range`, [`AT_ONCE`] at a time.
async fn weeks(fake: &FakeDiscord, range: std::ops::Range<usize>, people: &[u64]) -> Vec<u64> {
    let mut places = Vec::new();
    let ns: Vec<usize> = range.collect();
    for batch in ns.chunks(AT_ONCE) {
        let lives: Vec<_> = batch
            .iter()
            .map(|&n| tokio::spawn(life(fake.clone(), n, people.to_vec())))
            .collect();
        for l in lives {
            places.push(l.await.expect("an incident's life went wrong"));
        }
    }
    places
}

/// Messages the bot had accepted, by (channel, nonce): more than one is a double post.
fn posted_twice(fake: &FakeDiscord) -> Vec<((String, String), usize)> {
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    for r in fake.requests_to("POST /channels/{channel}/messages") {
        if r.status >= 300 {
            continue;
        }
        let Some(nonce) = r.body["nonce"].as_str().map(String::from) else {
            continue;
        };
        let channel = r.path.split("/channels/").nth(1).unwrap_or_default();
        let channel = channel.split('/').next().unwrap_or_default().to_string();
        *seen.entry((channel, nonce)).or_default() += 1;
    }
    seen.into_iter().filter(|(_, n)| *n > 1).collect()
}

/// How many opening posts (the one with the Join button) each place got.
fn opening_posts(fake: &FakeDiscord) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for r in fake.requests() {
        if r.status >= 300 || !r.route.ends_with("/messages") || r.method != "POST" {
            continue;
        }
        let body = r.body.to_string();
        if !body.contains("incident:join:") {
            continue;
        }
        let id = body
            .split("incident:join:")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or_default()
            .to_string();
        *out.entry(id).or_default() += 1;
    }
    out
}

fn with_code(fake: &FakeDiscord, code: u64) -> usize {
    fake.requests()
        .iter()
        .filter(|r| r.response.get("code").and_then(Value::as_u64) == Some(code))
        .count()
}

fn statuses(fake: &FakeDiscord) -> BTreeMap<u16, usize> {
    let mut out = BTreeMap::new();
    for r in fake.requests() {
        *out.entry(r.status).or_default() += 1;
    }
    out
}

/// The whole season in one mode; `incidents` is how many, `filled` how close to its cap the
/// server starts (other teams' channels, or other threads).
async fn season(places: Places, mode: Mode, incidents: usize, filled: usize) {
    let fake = FakeDiscord::start_with(FakeOptions {
        nonce_window: Duration::from_secs(2),
        wait_timeout: Duration::from_secs(60),
        ..FakeOptions::default()
    })
    .await;
    fake.set_privileged_intents(INTENT_MESSAGE_CONTENT);
    let w: World = world(&fake);
    let dba = fake.add_role("dba");
    let people: Vec<u64> = (0..5)
        .map(|k| fake.add_member(&format!("oncall-{k}"), &[]))
        .chain([OWNER_ID])
        .collect();
    let mut env: Vec<(&str, String)> = vec![("SITREP_DISCORD__ARCHIVE_AFTER", "1s".into())];
    match places {
        Places::Channels => {
            for k in 0..filled {
                fake.add_channel(&format!("team-{k}"), ChannelKind::Text, None);
            }
        }
        Places::Threads | Places::Forum => {
            let (kind, key, name) = if places == Places::Forum {
                (
                    ChannelKind::Forum,
                    "SITREP_DISCORD__INCIDENT_FORUM_CHANNEL_ID",
                    "forum",
                )
            } else {
                (
                    ChannelKind::Text,
                    "SITREP_DISCORD__INCIDENT_PARENT_CHANNEL_ID",
                    "thread",
                )
            };
            let parent = fake.add_channel("incidents", kind, None);
            env.push(("SITREP_DISCORD__INCIDENT_MODE", name.into()));
            env.push((key, parent.to_string()));
            fake.fill_active_threads(GENERAL_CHANNEL_ID, filled);
        }
    }
    // Every commander is in the "people" list; the dba role is paged by /escalate.
    let extra = format!(
        "[escalation.targets.dba]\nroles = [{dba}]\n\
         [escalation.policies.default]\nlevels = [\"dba\"]\nack_timeout = \"1h\"\n"
    );
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let started = Instant::now();
    let bot = Bot::start_with_env(&fake, w, mode, &extra, &env_refs);
    fake.wait_ready().await;

    // The first weeks, then a clean restart (an upgrade).
    let third = incidents / 3;
    let mut all = weeks(&fake, 0..third, &people).await;
    let mut bot = {
        let mut bot = bot;
        bot.stop();
        bot.restart_in(&fake, w, mode, &extra, &env_refs)
    };
    fake.wait_ready().await;
    all.extend(weeks(&fake, third..2 * third, &people).await);

    // A crash with posts still queued, and an outage longer than Discord remembers a nonce.
    let n = 2 * third;
    let i = fake.slash(
        OWNER_ID,
        GENERAL_CHANNEL_ID,
        "incident",
        json!({ "open": { "title": format!("Crash week outage {n}"), "severity": "SEV2" } }),
    );
    let said = answer(&fake, &i, "the declaration before the crash").await;
    let crash_place = channel_link(&said).expect("a place before the crash");
    bot.kill();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let bot = bot.restart_in(&fake, w, mode, &extra, &env_refs);
    fake.wait_ready().await;
    let i = fake.slash(
        OWNER_ID,
        crash_place,
        "incident",
        json!({"resolve": {"summary": "back after the crash"}}),
    );
    let said = answer(&fake, &i, "the resolution after the crash").await;
    assert!(!said.contains("Sorry"), "{said}");
    all.extend(weeks(&fake, 2 * third + 1..incidents, &people).await);

    // The outbox drains: every incident's opening post arrived, once.
    let declared = incidents;
    let opened = fake
        .wait_until(Duration::from_secs(120), |f| {
            let o = opening_posts(f);
            (o.len() >= declared).then_some(o)
        })
        .await
        .unwrap_or_else(|| {
            panic!(
                "only {} of {declared} opening posts arrived; log:\n{}",
                opening_posts(&fake).len(),
                bot.log()
            )
        });
    let twice: Vec<_> = opened.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "opening posts sent twice: {twice:?}");
    let twice = posted_twice(&fake);
    assert!(twice.is_empty(), "posted twice: {twice:?}");

    let statuses = statuses(&fake);
    let invalid = fake.invalid_request_count();
    eprintln!(
        "{places:?} ({mode:?}): {declared} incidents in {:?}; {} requests; statuses {statuses:?}; \
         {invalid} invalid requests",
        started.elapsed(),
        fake.requests().len(),
    );
    assert_eq!(with_code(&fake, 50013), 0, "no missing permission");
    assert_eq!(with_code(&fake, 50001), 0, "no missing access");
    assert_eq!(with_code(&fake, 30013), 0, "the server never ran out");
    let throttled = statuses.get(&429).copied().unwrap_or(0);
    assert!(throttled <= 10, "{throttled} answers of 429: a storm");
    assert!(invalid <= 20, "{invalid} invalid requests");
    match places {
        Places::Channels => {
            let in_server = fake
                .channels()
                .iter()
                .filter(|c| c["type"].as_u64() != Some(11))
                .count();
            assert!(in_server <= 500, "{in_server} channels");
            let removed = fake
                .requests_to("DELETE /channels/{channel}")
                .iter()
                .filter(|r| r.status < 300)
                .count();
            assert!(
                removed > 0,
                "the server filled up and archived channels made room"
            );
        }
        Places::Threads | Places::Forum => assert!(fake.active_threads() <= 1000),
    }
    drop(all);
    drop(bot);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_season_of_incidents_in_channels() {
    // 400 other channels: the server fills up after about 90 incidents, and from then on each
    // new incident needs an archived one removed.
    season(Places::Channels, Mode::Direct, 150, 400).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_season_of_incidents_in_threads() {
    // 960 other active threads: the cap is met after about 40 incidents.
    season(Places::Threads, Mode::Proxy, 90, 960).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_season_of_incidents_in_a_forum() {
    season(Places::Forum, Mode::Proxy, 90, 960).await;
}
