//! Channel mode never runs out of places: overflow categories, archival by default, a full
//! server, a declaration with no place left, and a create whose answer is lost.

mod support;

use serde_json::{json, Value};
use sitrep::domain::{EventKind, IncidentId};
use sitrep::store::Store;
use std::time::{Duration, Instant};
use support::bot::{world, Bot, Mode, World};
use support::discord::{
    ChannelKind, FakeDiscord, FakeOptions, Fault, BOT_ROLE_ID, EVERYONE_ROLE_ID,
    GENERAL_CHANNEL_ID, INTENT_MESSAGE_CONTENT, OWNER_ID,
};

const VIEW_CHANNEL: u64 = 1 << 10;

/// Declares an incident through Discord; returns the reply's text once the deferral is filled
/// in, or what went wrong.
async fn try_declare(fake: &FakeDiscord, title: &str) -> Result<String, String> {
    let i = fake.slash(
        OWNER_ID,
        GENERAL_CHANNEL_ID,
        "incident",
        json!({"open": {"title": title, "severity": "SEV3"}}),
    );
    let first = fake
        .wait_until(Duration::from_secs(20), |f| f.response(&i))
        .await
        .ok_or_else(|| format!("no first answer to the declaration of {title}"))?;
    assert_eq!(first.kind, 5, "open defers before it waits on Discord");
    let original = fake
        .wait_until(Duration::from_secs(20), |f| {
            f.original(&i)
                .filter(|m| m["content"].as_str().is_some_and(|c| c.contains("Opened")))
        })
        .await
        .ok_or_else(|| format!("no answer to the declaration of {title}"))?;
    Ok(original["content"].as_str().unwrap().to_string())
}

async fn declare(fake: &FakeDiscord, title: &str) -> String {
    try_declare(fake, title)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The newest lines of the bot's log, for a failure's message.
fn log_tail(bot: &Bot) -> String {
    let log = bot.log();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

fn channel_in(reply: &str) -> Option<u64> {
    reply
        .split("<#")
        .nth(1)
        .and_then(|r| r.split('>').next())
        .and_then(|id| id.parse().ok())
}

/// Declares an incident and returns its channel, which the reply must name.
async fn open(fake: &FakeDiscord, title: &str) -> u64 {
    let content = declare(fake, title).await;
    channel_in(&content).unwrap_or_else(|| panic!("no channel in the reply to {title}: {content}"))
}

async fn resolve(fake: &FakeDiscord, channel: u64) {
    let i = fake.slash(
        OWNER_ID,
        channel,
        "incident",
        json!({"resolve": {"summary": "fixed"}}),
    );
    fake.wait_response(&i).await;
    fake.wait_until(Duration::from_secs(20), |f| {
        f.original(&i)
            .filter(|m| m["content"].as_str().is_some_and(|c| !c.is_empty()))
    })
    .await
    .expect("the resolve is answered");
}

/// Waits until every one of `channels` is in an archive category or gone.
async fn wait_archived(fake: &FakeDiscord, channels: &[u64]) {
    let done = fake
        .wait_until(Duration::from_secs(60), |f| {
            channels
                .iter()
                .all(|ch| match parent_of(f, *ch) {
                    None => f.channel(*ch).is_none(),
                    Some(p) => name_of(f, p).starts_with("Incidents archive"),
                })
                .then_some(())
        })
        .await;
    assert!(
        done.is_some(),
        "resolved channels are archived after the delay"
    );
}

fn parent_of(fake: &FakeDiscord, channel: u64) -> Option<u64> {
    fake.channel(channel)
        .and_then(|c| c["parent_id"].as_str().and_then(|p| p.parse().ok()))
}

fn name_of(fake: &FakeDiscord, channel: u64) -> String {
    fake.channel(channel).unwrap()["name"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The channels and categories of the server: what Discord's 500 counts (threads are not).
fn guild_channels(fake: &FakeDiscord) -> Vec<Value> {
    fake.channels()
        .into_iter()
        .filter(|c| c.get("thread_metadata").is_none())
        .collect()
}

fn categories_named(fake: &FakeDiscord, name: &str) -> usize {
    guild_channels(fake)
        .iter()
        .filter(|c| c["type"] == 4 && c["name"] == name)
        .count()
}

fn private(fake: &FakeDiscord, category: u64) -> Value {
    let overwrites = json!([
        {"id": EVERYONE_ROLE_ID.to_string(), "type": 0, "allow": "0", "deny": VIEW_CHANNEL.to_string()},
        {"id": BOT_ROLE_ID.to_string(), "type": 0, "allow": VIEW_CHANNEL.to_string(), "deny": "0"},
    ]);
    fake.set_permission_overwrites(category, overwrites);
    fake.channel(category).unwrap()["permission_overwrites"].clone()
}

/// The 51st incident needs a second category and the 600th a server that has filled up long
/// before: resolved channels are archived on their own, the archive overflows, and the oldest
/// archived channels are removed once their history is in the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_51st_and_the_600th_incident_get_a_place_with_the_default_config() {
    // Every incident announces itself in the one stakeholder channel; that channel's own
    // 5-per-5 s bucket is not what this test is about, so the fake does not enforce it here.
    let fake = FakeDiscord::start_with(FakeOptions {
        enforce_route_limits: false,
        wait_timeout: Duration::from_secs(20),
        ..FakeOptions::default()
    })
    .await;
    fake.set_privileged_intents(INTENT_MESSAGE_CONTENT);
    let w: World = world(&fake);
    let overwrites = private(&fake, w.category);
    // A server that already has other channels: 423 of its 500 are taken.
    for i in 0..420 {
        fake.add_channel(&format!("team-{i}"), ChannelKind::Text, None);
    }
    assert_eq!(guild_channels(&fake).len(), 423);
    let mut bot = Bot::start_with_env(
        &fake,
        w,
        Mode::Proxy,
        "",
        &[
            ("SITREP_DISCORD__ARCHIVE_AFTER", "1s"),
            ("SITREP_DISCORD__MESSAGE_CONTENT", "true"),
        ],
    );
    fake.wait_ready().await;
    let started = Instant::now();

    // 51 open at once: the 51st goes to an overflow category, private like the first.
    let mut channels = Vec::new();
    for n in 1..=51 {
        channels.push(open(&fake, &format!("outage {n}")).await);
    }
    for ch in &channels[..50] {
        assert_eq!(parent_of(&fake, *ch), Some(w.category));
    }
    let overflow = parent_of(&fake, channels[50]).expect("the 51st has a category");
    assert_eq!(name_of(&fake, overflow), "Incidents 2");
    assert_eq!(
        fake.channel(overflow).unwrap()["permission_overwrites"],
        overwrites
    );
    let first_51 = started.elapsed();

    // Said in the first incident's channel while nobody listened: only a full read before
    // the channel goes can keep it.
    fake.seed_messages(OWNER_ID, channels[0], 3);

    for ch in &channels {
        resolve(&fake, *ch).await;
    }
    // As a season goes: incidents are resolved and the archive delay passes before the next
    // ones pile up. A batch of 25 at a time keeps the test quick.
    wait_archived(&fake, &channels).await;
    for n in 52..=600 {
        let reply = match try_declare(&fake, &format!("outage {n}")).await {
            Ok(r) => r,
            Err(e) => panic!("{e}; the bot's log ends:\n{}", log_tail(&bot)),
        };
        let Some(ch) = channel_in(&reply) else {
            panic!(
                "incident {n} got no place: {reply}\nthe bot's log ends:\n{}",
                log_tail(&bot)
            );
        };
        resolve(&fake, ch).await;
        channels.push(ch);
        if n % 25 == 0 {
            wait_archived(&fake, &channels[channels.len() - 25..]).await;
        }
    }
    let all_600 = started.elapsed();
    eprintln!(
        "51 declarations took {first_51:?}; 600 declared and resolved in {all_600:?}; \
         {} requests in all, {} channel lists, {} channels removed",
        fake.requests().len(),
        fake.requests_to("GET /guilds/{guild}/channels").len(),
        fake.requests_to("DELETE /channels/{channel}").len(),
    );

    let archive = fake
        .channel_named("Incidents archive")
        .expect("the bot made its archive");
    assert_eq!(archive["permission_overwrites"], overwrites);
    assert!(guild_channels(&fake).len() <= 500);
    for name in ["Incidents 2", "Incidents archive", "Incidents archive 2"] {
        assert_eq!(
            categories_named(&fake, name),
            1,
            "{name} is made once when needed, and reused"
        );
    }
    assert_eq!(categories_named(&fake, "Incidents 3"), 0);
    let second_archive = fake.channel_named("Incidents archive 2").unwrap();
    assert_eq!(second_archive["permission_overwrites"], overwrites);
    for route in ["POST /guilds/{guild}/channels", "PATCH /channels/{channel}"] {
        let refused: Vec<String> = fake
            .requests_to(route)
            .iter()
            .filter(|r| r.status >= 400)
            .map(|r| format!("{} {}", r.status, r.response))
            .collect();
        assert!(refused.is_empty(), "{route} refused: {refused:?}");
    }
    assert_eq!(fake.invalid_request_count(), 0);
    assert!(
        fake.channel(channels[0]).is_none(),
        "the oldest archived channel made room"
    );
    assert!(fake.channel(channels[599]).is_some());

    bot.stop();
    let store = Store::open(bot.db_path()).unwrap();
    let first = IncidentId(1);
    let kept: Vec<String> = store
        .messages(first)
        .unwrap()
        .iter()
        .map(|m| m.content.clone())
        .collect();
    assert_eq!(kept, ["message 1 of 3", "message 2 of 3", "message 3 of 3"]);
    let removed = store
        .events(first)
        .unwrap()
        .into_iter()
        .filter(|e| matches!(e.kind, EventKind::ChannelRemoved { .. }))
        .count();
    assert_eq!(removed, 1, "the timeline says the channel was removed");
    let last = store.incident(IncidentId(600)).unwrap().unwrap();
    assert_eq!(last.channel, Some(channels[599]));
}

/// A full category in a full server with nothing the bot may remove: the incident is declared
/// all the same, stakeholders hear of it, and the reply says what to fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_place_left_the_incident_is_declared_and_the_reply_says_what_to_fix() {
    let fake = FakeDiscord::start().await;
    let w = world(&fake);
    for i in 0..50 {
        fake.add_channel(&format!("kept-{i}"), ChannelKind::Text, Some(w.category));
    }
    while guild_channels(&fake).len() < 500 {
        let n = guild_channels(&fake).len();
        fake.add_channel(&format!("team-{n}"), ChannelKind::Text, None);
    }
    let _bot = Bot::start(&fake, w, Mode::Proxy, "");
    fake.wait_ready().await;

    let reply = declare(&fake, "checkout down").await;
    assert!(
        reply.starts_with("Opened INC-1 (SEV3) without a channel"),
        "{reply}"
    );
    assert!(reply.contains("500 channels"), "{reply}");
    assert!(reply.contains("incident_mode = \"thread\""), "{reply}");
    assert!(reply.contains("incident:INC-1"), "{reply}");
    assert!(reply.contains("You are the commander"), "{reply}");
    assert_eq!(guild_channels(&fake).len(), 500);

    let announced = fake
        .wait_until(Duration::from_secs(10), |f| {
            f.messages(w.stakeholders)
                .into_iter()
                .find(|m| m.to_string().contains("checkout down"))
        })
        .await;
    assert!(announced.is_some(), "stakeholders hear of it");
    let i = fake.slash(
        OWNER_ID,
        GENERAL_CHANNEL_ID,
        "incident",
        json!({"status": {"incident": "INC-1"}}),
    );
    fake.wait_response(&i).await;
    let status = fake
        .wait_until(Duration::from_secs(10), |f| {
            let r = f.response(&i)?;
            let text = match f.original(&i) {
                Some(m) if r.kind == 5 => m.to_string(),
                _ => r.data.to_string(),
            };
            text.contains("checkout down").then_some(text)
        })
        .await;
    assert!(
        status.is_some(),
        "the incident exists and answers to its id"
    );
    assert_eq!(
        fake.requests_to("POST /guilds/{guild}/channels")
            .iter()
            .filter(|r| r.status >= 400)
            .count(),
        0,
        "the bot knew the server was full without asking Discord to refuse"
    );
}

/// Discord makes the channel but its answer is lost: the bot looks before it asks again, so
/// there is exactly one channel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_whose_answer_is_lost_makes_exactly_one_channel() {
    let fake = FakeDiscord::start().await;
    let w = world(&fake);
    let _bot = Bot::start_with_env(
        &fake,
        w,
        Mode::Proxy,
        "",
        &[("SITREP_DISCORD__REQUEST_TIMEOUT", "1s")],
    );
    fake.wait_ready().await;
    fake.fail_next(
        "POST /guilds/{guild}/channels",
        Fault::LateAnswer(Duration::from_secs(3)),
    );
    let channel = open(&fake, "payments slow").await;
    let made: Vec<Value> = guild_channels(&fake)
        .into_iter()
        .filter(|c| c["name"].as_str().is_some_and(|n| n.starts_with("inc-1-")))
        .collect();
    assert_eq!(made.len(), 1, "{made:?}");
    assert_eq!(made[0]["id"], channel.to_string());
    let creates = fake.requests_to("POST /guilds/{guild}/channels");
    assert_eq!(creates.len(), 1, "no second create");
    assert!(
        fake.requests_to("GET /guilds/{guild}/channels")
            .iter()
            .any(|r| r.at > creates[0].at),
        "the bot looked for the channel after the create went unanswered"
    );
}

/// The fake refuses a move into a full category as Discord does, and keeps the overwrites a
/// category is made with.
#[tokio::test]
async fn the_fake_refuses_a_move_into_a_full_category_and_keeps_overwrites() {
    use serenity::all::{ChannelId, ChannelType, CreateChannel, EditChannel, GuildId};
    let fake = FakeDiscord::start().await;
    let full = fake.add_channel("full", ChannelKind::Category, None);
    for i in 0..50 {
        fake.add_channel(&format!("c-{i}"), ChannelKind::Text, Some(full));
    }
    let http = fake.proxy_http();
    let e = ChannelId::new(GENERAL_CHANNEL_ID)
        .edit(&http, EditChannel::new().category(ChannelId::new(full)))
        .await
        .expect_err("a 51st channel does not fit");
    let text = format!("{e:?}");
    assert!(
        text.contains("50035") || text.contains("CHANNEL_PARENT_MAX_CHANNELS"),
        "{text}"
    );
    assert_eq!(parent_of(&fake, GENERAL_CHANNEL_ID), None);

    let overwrites = private(&fake, full);
    let like = http
        .get_channel(ChannelId::new(full))
        .await
        .unwrap()
        .guild()
        .unwrap();
    let made = GuildId::new(support::discord::GUILD_ID)
        .create_channel(
            &http,
            CreateChannel::new("full 2")
                .kind(ChannelType::Category)
                .permissions(like.permission_overwrites.clone()),
        )
        .await
        .unwrap();
    assert_eq!(
        fake.channel(made.id.get()).unwrap()["permission_overwrites"],
        overwrites
    );
}

/// Overflow categories are found by name, so one made in an earlier run (or by a person) is
/// reused rather than made again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overflow_category_from_an_earlier_run_is_reused() {
    let fake = FakeDiscord::start().await;
    let w = world(&fake);
    for i in 0..50 {
        fake.add_channel(&format!("inc-old-{i}"), ChannelKind::Text, Some(w.category));
    }
    let second = fake.add_channel("Incidents 2", ChannelKind::Category, None);
    let _bot = Bot::start(&fake, w, Mode::Proxy, "");
    fake.wait_ready().await;
    let a = open(&fake, "first after the restart").await;
    let b = open(&fake, "second after the restart").await;
    assert_eq!(parent_of(&fake, a), Some(second));
    assert_eq!(parent_of(&fake, b), Some(second));
    assert_eq!(categories_named(&fake, "Incidents 2"), 1);
    assert!(fake
        .requests_to("POST /guilds/{guild}/channels")
        .iter()
        .all(|r| r.body["type"] != 4));
}

/// Channels of incidents resolved while archiving was off stay where they are, but once
/// archiving is on and the server is full, the oldest of them makes room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_server_makes_room_from_incidents_resolved_before_archiving_was_on() {
    let fake = FakeDiscord::start().await;
    fake.set_privileged_intents(INTENT_MESSAGE_CONTENT);
    let w = world(&fake);
    let content = ("SITREP_DISCORD__MESSAGE_CONTENT", "true");
    let mut bot = Bot::start_with_env(
        &fake,
        w,
        Mode::Proxy,
        "",
        &[("SITREP_DISCORD__ARCHIVE_AFTER", "off"), content],
    );
    fake.wait_ready().await;
    let old = open(&fake, "before archiving").await;
    resolve(&fake, old).await;
    // A channel with posts still queued for it is never removed: let the resolution post
    // reach it before the bot stops, however busy the machine.
    fake.wait_until(Duration::from_secs(20), |f| {
        f.messages(old)
            .iter()
            .any(|m| m.to_string().contains("Resolved:"))
            .then_some(())
    })
    .await
    .expect("the resolution is posted in the incident's channel");
    let open_one = open(&fake, "still going").await;
    bot.stop();
    while guild_channels(&fake).len() < 500 {
        let n = guild_channels(&fake).len();
        fake.add_channel(&format!("team-{n}"), ChannelKind::Text, None);
    }

    let mut bot = bot.restart_with_env(
        &fake,
        w,
        "",
        &[("SITREP_DISCORD__ARCHIVE_AFTER", "1s"), content],
    );
    fake.wait_ready().await;
    // The old channel may go once its archival is due: `archive_after` (1s) past its
    // resolution, which a fast machine has not yet reached at this point.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let new = open(&fake, "after the upgrade").await;
    assert!(
        fake.channel(old).is_none(),
        "the old resolved channel made room"
    );
    assert!(
        fake.channel(open_one).is_some(),
        "an open incident keeps its channel"
    );
    assert_eq!(parent_of(&fake, new), Some(w.category));
    bot.stop();
    let store = Store::open(bot.db_path()).unwrap();
    assert!(store
        .events(IncidentId(1))
        .unwrap()
        .iter()
        .any(|e| matches!(e.kind, EventKind::ChannelRemoved { .. })));
}
