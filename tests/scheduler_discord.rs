//! The scheduler through the real binary and the Discord fake: many updates due at once go out
//! steadily under Discord's global limit, once each, and survive a restart.

mod support;

use chrono::{Duration as ChronoDuration, Utc};
use sitrep::domain::{EventKind, IncidentId};
use sitrep::store::Store;
use std::time::Duration;
use support::bot::{world, Bot};
use support::discord::{FakeDiscord, FakeOptions, INTENT_MESSAGE_CONTENT};
use support::load::{
    accepted_posts, incidents_with_updates_due, status_updates_in, timelines_with_automated_update,
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
    // Each incident posts to its channel and to the stakeholders, and reminds its commander
    // (nobody posted an update since it opened).
    let expected = channels.len() * 3;
    fake.wait_until(Duration::from_secs(60), |f| {
        (posted(f) >= expected).then_some(())
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "only {} of {expected} posts; log:\n{}",
            posted(&fake),
            bot.log()
        )
    });
    let took = started.elapsed();
    assert_eq!(fake.rate_limited_count(), 0, "no 429 from Discord");
    for ch in &channels {
        assert_eq!(
            status_updates_in(&fake, *ch),
            1,
            "channel {ch}: one status update"
        );
    }
    let rate = expected as f64 / took.as_secs_f64();
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
    let nonce = sitrep::scheduler::nonce(&job, 's', channel);
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
