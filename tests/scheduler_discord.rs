//! The scheduler through the real binary and the Discord fake: many updates due at once go out
//! steadily under Discord's global limit and the stakeholder channel's own, once each, as
//! digests where they share a channel, and survive a restart or a long outage.

mod support;

use chrono::{Duration as ChronoDuration, Utc};
use sitrep::domain::{EventKind, IncidentId};
use sitrep::store::Store;
use std::time::Duration;
use support::bot::{world, Bot, Mode};
use support::discord::{FakeDiscord, FakeOptions, Fault, INTENT_MESSAGE_CONTENT};
use support::load::{
    accepted_posts, incidents_with_updates_due, status_updates_by_title, status_updates_in,
    timelines_with_automated_update,
};

const INCIDENTS: u64 = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_updates_due_at_once_all_go_out_with_no_429() {
    let fake = FakeDiscord::start_with(FakeOptions {
        global_limit: Some(50),
        wait_timeout: Duration::from_secs(60),
        ..FakeOptions::default()
    })
    .await;
    // Set up as the README says (the portal's Message Content toggle on); without it the bot
    // would also tell every open incident's channel that it cannot read their text.
    fake.set_privileged_intents(INTENT_MESSAGE_CONTENT);
    let w = world(&fake);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    // Every update came due a second ago.
    let due = Utc::now() - ChronoDuration::seconds(1);
    let channels = incidents_with_updates_due(&fake, w.category, &db, INCIDENTS, |_| due);

    let started = std::time::Instant::now();
    let mut bot = Bot::start_on_db(&fake, w, &db);
    fake.wait_ready().await;
    let posted = accepted_posts;
    // Each incident posts to its channel and reminds its commander (nobody posted an update
    // since it opened); the stakeholders get every update in digests.
    let all_out = |f: &FakeDiscord| {
        let (seen, _) = status_updates_by_title(f, w.stakeholders);
        seen.len() == channels.len() && posted(f) >= channels.len() * 2
    };
    fake.wait_until(Duration::from_secs(60), |f| all_out(f).then_some(()))
        .await
        .unwrap_or_else(|| panic!("only {} posts; log:\n{}", posted(&fake), bot.log()));
    let took = started.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(fake.rate_limited_count(), 0, "no 429 from Discord");
    for ch in &channels {
        assert_eq!(
            status_updates_in(&fake, *ch),
            1,
            "channel {ch}: one status update"
        );
    }
    let (seen, widest) = status_updates_by_title(&fake, w.stakeholders);
    assert!(seen.values().all(|n| *n == 1), "once each: {seen:?}");
    assert!(widest <= 10);
    let rate = posted(&fake) as f64 / took.as_secs_f64();
    assert!(
        rate <= 50.0,
        "{rate:.1} posts/s is over Discord's global limit"
    );
    assert!(bot.stop().success());

    // A restart finds nothing overdue: no update is posted twice.
    let before = posted(&fake);
    let mut again = Bot::start_on_db(&fake, w, &db);
    fake.wait_until(Duration::from_secs(10), |f| {
        (f.gateway_stats().identifies >= 2).then_some(())
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(posted(&fake), before, "nothing re-sent after a restart");
    assert!(again.stop().success());

    let store = Store::open(&db).unwrap();
    let recorded = timelines_with_automated_update(&store, INCIDENTS);
    assert_eq!(recorded as u64, INCIDENTS, "every post is in its timeline");
}

/// A crash after Discord accepted a scheduled post but before the bot recorded it: the post is
/// already in the channel with the job's nonce when the bot starts again and fires the job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_sent_before_a_crash_is_not_sent_twice() {
    let fake = FakeDiscord::start().await;
    // Set up as the README says (the portal's Message Content toggle on); without it the bot
    // would also tell every open incident's channel that it cannot read their text.
    fake.set_privileged_intents(INTENT_MESSAGE_CONTENT);
    let w = world(&fake);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let due = Utc::now() - ChronoDuration::seconds(1);
    let channel = incidents_with_updates_due(&fake, w.category, &db, 1, |_| due)[0];
    let job = {
        let store = Store::open(&db).unwrap();
        store.jobs().unwrap().remove(0)
    };
    let nonce = sitrep::jobs::job_nonce(&job, 's', channel);
    let http = fake.proxy_http();
    serenity::all::ChannelId::new(channel)
        .send_message(
            &http,
            serenity::all::CreateMessage::new()
                .content("Status update (sent just before the crash)")
                .nonce(serenity::all::Nonce::String(nonce.clone()))
                .enforce_nonce(true),
        )
        .await
        .unwrap();

    let mut bot = Bot::start_on_db(&fake, w, &db);
    fake.wait_ready().await;
    fake.wait_until(Duration::from_secs(10), |f| {
        f.messages(w.stakeholders)
            .iter()
            .any(|m| m["author"]["bot"] == true)
            .then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("the job fired; log:\n{}", bot.log()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let in_channel = fake.messages(channel);
    let updates: Vec<_> = in_channel
        .iter()
        .filter(|m| {
            m["content"]
                .as_str()
                .is_some_and(|c| c.starts_with("Status update"))
                || m["embeds"][0]["title"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("Status update"))
        })
        .collect();
    assert_eq!(
        updates.len(),
        1,
        "the update is in the channel once: {in_channel:#?}"
    );
    let sent_with_nonce = fake
        .requests_to("POST /channels/{channel}/messages")
        .into_iter()
        .filter(|r| r.body["nonce"] == nonce.as_str())
        .count();
    assert_eq!(
        sent_with_nonce, 2,
        "sent again with the same nonce, and Discord kept one"
    );
    assert!(bot.stop().success());
    let store = Store::open(&db).unwrap();
    let recorded = store
        .events(IncidentId(1))
        .unwrap()
        .into_iter()
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
    assert_eq!(recorded, 1);
}

/// Thirty incidents on the same cadence come due together. Discord takes about five messages
/// per five seconds in one channel, so one post per incident would keep the stakeholders
/// waiting half a minute and queue behind 429s; digests carry them all at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_updates_due_together_reach_the_stakeholders_as_digests_without_a_429() {
    let fake = FakeDiscord::start_with(FakeOptions {
        global_limit: Some(50),
        ..FakeOptions::default()
    })
    .await;
    // Text on, as the README sets it up: a bot without it would add a notice to every channel.
    fake.set_privileged_intents(INTENT_MESSAGE_CONTENT);
    let w = world(&fake);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let due = Utc::now() - ChronoDuration::seconds(1);
    let channels = incidents_with_updates_due(&fake, w.category, &db, 30, |_| due);

    // Direct mode: serenity's own limiter, and the fake answering 429 as Discord would.
    let mut bot = Bot::start_on_db_in(&fake, w, &db, Mode::Direct, &[]);
    fake.wait_ready().await;
    let ready = std::time::Instant::now();
    fake.wait_until(Duration::from_secs(30), |f| {
        let (seen, _) = status_updates_by_title(f, w.stakeholders);
        let channels_done = channels.iter().all(|ch| status_updates_in(f, *ch) == 1);
        (seen.len() == 30 && channels_done).then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("not every update arrived; log:\n{}", bot.log()));
    let took = ready.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let (seen, widest) = status_updates_by_title(&fake, w.stakeholders);
    assert!(
        seen.values().all(|n| *n == 1),
        "each incident once: {seen:?}"
    );
    assert!(
        widest <= 10,
        "at most ten embeds in a message, saw {widest}"
    );
    let digests = fake
        .messages(w.stakeholders)
        .iter()
        .filter(|m| m["author"]["bot"] == true)
        .count();
    assert!(
        (3..=5).contains(&digests),
        "30 updates in {digests} messages: within one window of the channel's 5 per 5 s"
    );
    assert!(
        took < Duration::from_secs(10),
        "every update out {took:?} after READY"
    );
    assert_eq!(fake.rate_limited_count(), 0, "no 429 reached the bot");
    assert!(fake
        .requests_to("POST /channels/{channel}/messages")
        .iter()
        .all(|r| r.status < 300 && r.tls));
    for ch in &channels {
        assert_eq!(
            status_updates_in(&fake, *ch),
            1,
            "channel {ch}: its own update"
        );
    }
    assert!(bot.stop().success());
    let store = Store::open(&db).unwrap();
    assert_eq!(timelines_with_automated_update(&store, 30), 30);
    assert!(store.outbox().unwrap().is_empty(), "nothing left to send");
}

/// How long the fake remembers a nonce in the long-outage tests, and how long the bot trusts it.
const NONCE_WINDOW: Duration = Duration::from_secs(2);
const BOT_NONCE_WINDOW: &str = "1s";

/// One incident whose update is due, a fake that forgets nonces after [`NONCE_WINDOW`], and
/// the bot started on it.
async fn one_update_due() -> (FakeDiscord, support::bot::World, tempfile::TempDir, u64) {
    let fake = FakeDiscord::start_with(FakeOptions {
        nonce_window: NONCE_WINDOW,
        ..FakeOptions::default()
    })
    .await;
    fake.set_privileged_intents(INTENT_MESSAGE_CONTENT);
    let w = world(&fake);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let due = Utc::now() - ChronoDuration::seconds(1);
    let channel = incidents_with_updates_due(&fake, w.category, &db, 1, |_| due)[0];
    (fake, w, dir, channel)
}

fn start(fake: &FakeDiscord, w: support::bot::World, dir: &tempfile::TempDir) -> Bot {
    Bot::start_on_db_in(
        fake,
        w,
        &dir.path().join("db"),
        Mode::Proxy,
        &[("SITREP_DISCORD__NONCE_WINDOW", BOT_NONCE_WINDOW)],
    )
}

fn reads_of(fake: &FakeDiscord, channel: u64) -> usize {
    fake.requests_to("GET /channels/{channel}/messages")
        .iter()
        .filter(|r| r.path == format!("/channels/{channel}/messages"))
        .count()
}

/// Discord took the post, but its answer never reached the bot, which was killed and came back
/// only after Discord had forgotten the nonce: the post is found in the channel, not sent again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_taken_before_a_long_outage_is_found_in_the_channel_not_sent_twice() {
    let (fake, w, dir, channel) = one_update_due().await;
    fake.fail_next(
        "POST /channels/{channel}/messages",
        Fault::LateAnswer(Duration::from_secs(30)),
    );
    let mut bot = start(&fake, w, &dir);
    fake.wait_until(Duration::from_secs(10), |f| {
        (status_updates_in(f, channel) == 1).then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("the update went out; log:\n{}", bot.log()));
    bot.kill();
    tokio::time::sleep(NONCE_WINDOW + Duration::from_millis(500)).await;

    let mut again = start(&fake, w, &dir);
    fake.wait_until(Duration::from_secs(10), |f| {
        (status_updates_in(f, w.stakeholders) == 1).then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("the rest went out; log:\n{}", again.log()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(status_updates_in(&fake, channel), 1, "not posted twice");
    assert!(reads_of(&fake, channel) >= 1, "the channel was read first");
    let sends = fake
        .requests_to("POST /channels/{channel}/messages")
        .into_iter()
        .filter(|r| r.path == format!("/channels/{channel}/messages"))
        .filter(|r| {
            r.body["embeds"][0]["title"]
                .as_str()
                .is_some_and(|t| t.starts_with("Status update"))
        })
        .count();
    assert_eq!(sends, 1, "the update was not sent again");
    // The reminder, queued behind it and never sent, goes out once.
    let reminders = fake
        .messages(channel)
        .iter()
        .filter(|m| {
            m["components"].as_array().is_some_and(|c| !c.is_empty())
                && m["embeds"].as_array().is_some_and(Vec::is_empty)
        })
        .count();
    assert_eq!(reminders, 1);
    assert!(again.stop().success());
    let store = Store::open(&dir.path().join("db")).unwrap();
    assert!(store.outbox().unwrap().is_empty(), "recorded as sent");
    assert_eq!(timelines_with_automated_update(&store, 1), 1);
}

/// The first attempt never reached Discord (it was down), the bot was killed, and it came back
/// after the nonce window: the channel does not have the post, so it is sent, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_not_delivered_before_a_long_outage_is_delivered_once() {
    let (fake, w, dir, channel) = one_update_due().await;
    fake.fail_for(
        "POST /channels/{channel}/messages",
        Fault::ServerError(503),
        Duration::from_secs(3),
    );
    let mut bot = start(&fake, w, &dir);
    fake.wait_until(Duration::from_secs(10), |f| {
        f.requests_to("POST /channels/{channel}/messages")
            .iter()
            .any(|r| r.status == 503)
            .then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("the update was tried; log:\n{}", bot.log()));
    bot.kill();
    tokio::time::sleep(Duration::from_secs(3).max(NONCE_WINDOW) + Duration::from_millis(500)).await;

    let mut again = start(&fake, w, &dir);
    fake.wait_until(Duration::from_secs(10), |f| {
        (status_updates_in(f, channel) == 1 && status_updates_in(f, w.stakeholders) == 1)
            .then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("delivered after the outage; log:\n{}", again.log()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(status_updates_in(&fake, channel), 1);
    assert_eq!(status_updates_in(&fake, w.stakeholders), 1);
    assert!(reads_of(&fake, channel) >= 1, "looked for before sending");
    assert!(again.stop().success());
    let store = Store::open(&dir.path().join("db")).unwrap();
    assert!(store.outbox().unwrap().is_empty());
}
