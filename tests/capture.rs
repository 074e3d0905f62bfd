//! What is said in an incident channel is kept: live messages, edits, deletes, highlights by
//! reaction, pin and context menu, and backfill of what was said while the bot was away.

mod support;

use serde_json::json;
use sitrep::domain::{Actor, EventKind, IncidentId};
use sitrep::store::Store;
use std::time::Duration;
use support::bot::{world, Bot, Mode};
use support::discord::{FakeDiscord, GENERAL_CHANNEL_ID, INTENT_MESSAGE_CONTENT, OWNER_ID};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_edits_deletes_highlights_and_backfill_are_kept() {
    let fake = FakeDiscord::start().await;
    // Message text reaches the bot only with the developer portal's toggle on.
    fake.set_privileged_intents(INTENT_MESSAGE_CONTENT);
    let w = world(&fake);
    let mut bot = Bot::start(&fake, w, Mode::Proxy, "");
    fake.wait_ready().await;
    let i = fake.slash(
        OWNER_ID,
        GENERAL_CHANNEL_ID,
        "incident",
        json!({"open": {"title": "Orders stuck", "severity": "SEV2"}}),
    );
    fake.wait_response(&i).await;
    // The edit of the deferred answer comes once the incident is on disk.
    fake.wait_until(Duration::from_secs(5), |f| {
        f.original(&i)
            .filter(|m| m["content"].as_str().is_some_and(|c| c.contains("Opened")))
    })
    .await
    .expect("opened");
    let channel: u64 = fake
        .channel_named("inc-1-orders-stuck")
        .expect("the incident channel")["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();

    let ana = fake.add_member("ana", &[]);
    let first = fake.say(ana, channel, "queue depth is 40k");
    let second = fake.say(ana, channel, "restarting the consumer");
    let third = fake.say(OWNER_ID, channel, "consumer back, draining");
    fake.edit(second, "restarting the consumer on node 3");
    fake.delete(first);
    fake.react(OWNER_ID, third, "📌");
    let ctx = fake.message_command(OWNER_ID, second, "Add to timeline");
    let r = fake.wait_response(&ctx).await;
    assert!(
        r.ephemeral() && r.content().contains("Added to INC-1's timeline"),
        "{}",
        r.content()
    );
    let fourth = fake.say(ana, channel, "lag back under 1s");
    fake.pin(OWNER_ID, fourth);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(bot.stop().success(), "{}", bot.log());

    // Said, and pinned, while the bot was down: backfilled at the next start.
    let away = fake.say(ana, channel, "said while the bot was away");
    fake.pin(OWNER_ID, away);
    let mut bot = bot.restart(&fake, w, Mode::Proxy, "");
    let backfilled = fake
        .wait_for_request(|r| {
            r.route == "GET /channels/{channel}/messages" && r.path.contains(&channel.to_string())
        })
        .await;
    assert!(
        backfilled.query("after").is_some(),
        "pages forward from the last stored message"
    );
    tokio::time::sleep(Duration::from_millis(800)).await;

    // The draft holds what was said, in order; its export is the same file offline.
    let d = fake.slash(OWNER_ID, channel, "postmortem", json!({"draft": {}}));
    let deferred = fake.wait_response(&d).await;
    assert_eq!(deferred.kind, 5, "{:?}", deferred.data);
    let drafted = fake
        .wait_until(Duration::from_secs(10), |f| {
            f.original(&d)
                .filter(|m| m["content"].as_str().is_some_and(|c| !c.is_empty()))
        })
        .await
        .expect("the draft is compiled");
    let e = fake.slash(OWNER_ID, channel, "postmortem", json!({"export": {}}));
    fake.wait_response(&e).await;
    let upload = fake
        .wait_for_request(|r| !r.files.is_empty() && r.files[0].filename.ends_with(".md"))
        .await;
    let attached = String::from_utf8(upload.files[0].bytes.clone()).unwrap();
    // Key moments sit where they were said; the edit may land on either side of its highlight
    // (gateway events are handled concurrently), so match its first words.
    for needle in [
        "consumer back, draining",
        "restarting the consumer",
        "lag back under 1s",
        "said while the bot was away",
    ] {
        let line = attached
            .lines()
            .find(|l| l.contains("Key moment") && l.contains(needle))
            .unwrap_or_else(|| panic!("{needle:?} missing from the draft:\n{attached}\n{drafted}"));
        assert!(line.starts_with("- **2"), "an absolute UTC time: {line}");
    }
    let times: Vec<&str> = attached
        .lines()
        .filter(|l| l.starts_with("- **2"))
        .map(|l| &l[4..27])
        .collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "the timeline is in time order");
    assert!(bot.stop().success(), "{}", bot.log());
    let offline = std::process::Command::new(env!("CARGO_BIN_EXE_sitrep"))
        .args(["export", "INC-1", "--db"])
        .arg(bot.db_path())
        .output()
        .unwrap();
    assert!(
        offline.status.success(),
        "{}",
        String::from_utf8_lossy(&offline.stderr)
    );
    assert_eq!(
        String::from_utf8(offline.stdout).unwrap(),
        attached,
        "sitrep export = the attachment"
    );

    let store = Store::open(bot.db_path()).unwrap();
    let msgs = store.messages(IncidentId(1)).unwrap();
    let ids: Vec<u64> = msgs.iter().map(|m| m.id).collect();
    assert_eq!(
        ids,
        vec![first, second, third, fourth, away],
        "all of it, in order"
    );
    let by_id = |id| msgs.iter().find(|m| m.id == id).unwrap();
    assert!(by_id(first).is_deleted());
    assert_eq!(
        by_id(first).content,
        "queue depth is 40k",
        "a delete keeps what was said"
    );
    assert_eq!(by_id(second).content, "restarting the consumer on node 3");
    assert_eq!(by_id(second).history[0].content, "restarting the consumer");
    assert_eq!(by_id(third).author.name, "owner");

    // Gateway events are handled concurrently, so the edit may land before or after the
    // highlight: what must hold is which messages are key moments, each once.
    let marks: Vec<(u64, Actor, Option<chrono::DateTime<chrono::Utc>>)> = store
        .events(IncidentId(1))
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::MessageCaptured {
                change,
                message_id,
                said_at,
                ..
            } if change == "highlighted" => Some((message_id, e.actor, said_at)),
            _ => None,
        })
        .collect();
    let mut highlighted: Vec<u64> = marks.iter().map(|m| m.0).collect();
    highlighted.sort();
    assert_eq!(
        highlighted,
        vec![second, third, fourth, away],
        "each message once"
    );
    for (id, _, said_at) in &marks {
        assert_eq!(*said_at, Some(by_id(*id).at), "when {id} was said");
    }
    // The owner pinned ana's messages, live and while the bot was away: the pin notices say
    // so (the pins event says nobody), and the pins are not put down to ana.
    for pinned in [fourth, away] {
        let (_, by, _) = marks.iter().find(|m| m.0 == pinned).unwrap();
        assert_eq!(by.user().map(|u| u.id), Some(OWNER_ID), "{by:?}");
    }
}
