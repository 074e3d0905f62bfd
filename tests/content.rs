//! Message text in the default setup: kept when the developer portal grants the intent, and when
//! it does not, the bot runs on without it, says so once, and the post-mortem owns up to the gap.

mod support;

use serde_json::{json, Value};
use sitrep::domain::{EventKind, IncidentId};
use sitrep::store::{GapReason, Store};
use std::time::Duration;
use support::bot::{world, Bot, Mode};
use support::discord::{FakeDiscord, GENERAL_CHANNEL_ID, INTENT_MESSAGE_CONTENT, OWNER_ID};

/// The first words of the log line that says the intent was refused.
const REFUSED: &str = "Discord refused the Message Content intent";

async fn open(fake: &FakeDiscord, title: &str) -> (u64, String) {
    let i = fake.slash(
        OWNER_ID,
        GENERAL_CHANNEL_ID,
        "incident",
        json!({"open": {"title": title, "severity": "SEV2"}}),
    );
    fake.wait_response(&i).await;
    let answer = fake
        .wait_until(Duration::from_secs(10), |f| {
            f.original(&i)
                .and_then(|m| m["content"].as_str().map(str::to_string))
                .filter(|c| c.contains("Opened"))
        })
        .await
        .expect("the incident is opened");
    let slug: String = title
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join("-");
    let n = answer
        .split("Opened INC-")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap()
        .to_string();
    let channel: u64 = fake
        .channel_named(&format!("inc-{n}-{slug}"))
        .expect("the incident channel")["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    (channel, answer)
}

fn is_notice(m: &Value) -> bool {
    m["content"]
        .as_str()
        .is_some_and(|c| c.contains("cannot read message text here"))
}

/// Waits for `what` to be stored by the bot: the store is the bot's while it runs, so this
/// gives its gateway handlers a moment.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(600)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_config_keeps_what_was_said_when_the_portal_allows_it() {
    let fake = FakeDiscord::start().await;
    fake.set_privileged_intents(INTENT_MESSAGE_CONTENT);
    let w = world(&fake);
    let mut bot = Bot::start(&fake, w, Mode::Proxy, "");
    fake.wait_ready().await;
    let stats = fake.gateway_stats();
    assert_eq!(stats.connections, 1, "no refusal, no second connection");
    assert_ne!(
        stats.intents.unwrap() & INTENT_MESSAGE_CONTENT,
        0,
        "asked for by default"
    );
    let (channel, answer) = open(&fake, "Orders stuck").await;
    assert!(!answer.contains("cannot read message text"), "{answer}");
    let ana = fake.add_member("ana", &[]);
    let said = fake.say(ana, channel, "queue depth is 40k");
    settle().await;
    assert!(bot.stop().success(), "{}", bot.log());
    assert!(!bot.log().contains(REFUSED), "{}", bot.log());
    let store = Store::open(bot.db_path()).unwrap();
    let kept = store
        .message(IncidentId(1), said)
        .unwrap()
        .expect("captured");
    assert_eq!(kept.content, "queue depth is 40k");
    assert!(store.content_gaps().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_portal_toggle_the_bot_runs_on_and_says_what_is_missing() {
    let fake = FakeDiscord::start().await;
    let w = world(&fake);
    // Set up right at first: an incident whose channel has had text kept.
    fake.set_privileged_intents(INTENT_MESSAGE_CONTENT);
    let mut bot = Bot::start(&fake, w, Mode::Proxy, "");
    fake.wait_ready().await;
    let (first, _) = open(&fake, "Orders stuck").await;
    let ana = fake.add_member("ana", &[]);
    fake.say(ana, first, "queue depth is 40k");
    settle().await;
    assert!(bot.stop().success(), "{}", bot.log());

    // Then the toggle goes off, as on a new application: Discord closes IDENTIFY with 4014.
    fake.set_privileged_intents(0);
    let mut bot = bot.restart(&fake, w, Mode::Proxy, "");
    fake.wait_ready().await;
    let stats = fake.gateway_stats();
    assert_eq!(
        stats.intents.unwrap() & INTENT_MESSAGE_CONTENT,
        0,
        "reconnected without it"
    );
    // The open incident's channel hears it once, its commander named.
    let notice = fake.wait_message(is_notice).await;
    assert_eq!(notice["channel_id"], first.to_string());
    assert!(
        notice["content"]
            .as_str()
            .unwrap()
            .contains("Privileged Gateway Intents"),
        "{notice}"
    );
    let notice_id: u64 = notice["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(fake.pings(notice_id).users, vec![OWNER_ID], "the commander");

    // Commands are answered; a new incident's commander is told in the answer.
    let (second, answer) = open(&fake, "Payments lag").await;
    assert!(answer.contains("cannot read message text"), "{answer}");
    let blank = fake.say(ana, first, "restarting the consumer on node 3");
    let marked = fake.say(ana, first, "consumer back, draining");
    let ctx = fake.message_command(OWNER_ID, marked, "Add to timeline");
    let r = fake.wait_response(&ctx).await;
    assert!(
        r.ephemeral() && r.content().contains("Added to INC-1's timeline"),
        "{}",
        r.content()
    );
    let d = fake.slash(OWNER_ID, first, "postmortem", json!({"draft": {}}));
    fake.wait_until(Duration::from_secs(10), |f| {
        f.original(&d)
            .filter(|m| m["content"].as_str().is_some_and(|c| !c.is_empty()))
    })
    .await
    .expect("the draft is compiled");
    assert!(bot.stop().success(), "{}", bot.log());
    let log = bot.log();
    assert_eq!(log.matches(REFUSED).count(), 1, "said once:\n{log}");
    assert!(log.contains("Bot → Privileged Gateway Intents"), "{log}");

    // A restart still without it tells no channel again.
    let mut bot = bot.restart(&fake, w, Mode::Proxy, "");
    fake.wait_ready().await;
    settle().await;
    assert!(bot.stop().success(), "{}", bot.log());
    let notices: Vec<Value> = [first, second]
        .iter()
        .flat_map(|c| fake.messages(*c))
        .filter(is_notice)
        .collect();
    assert_eq!(notices.len(), 1, "{notices:?}");

    let store = Store::open(bot.db_path()).unwrap();
    let gap = store
        .open_content_gap()
        .unwrap()
        .expect("the stretch is open");
    assert_eq!(gap.reason, GapReason::Refused);
    assert_eq!(
        store
            .message(IncidentId(1), blank)
            .unwrap()
            .unwrap()
            .content,
        "",
        "Discord sent it without its text"
    );
    // Add to timeline took the text from the interaction, which always carries it.
    assert_eq!(
        store
            .message(IncidentId(1), marked)
            .unwrap()
            .unwrap()
            .content,
        "consumer back, draining"
    );
    let key_moment = store
        .events(IncidentId(1))
        .unwrap()
        .into_iter()
        .find_map(|e| match e.kind {
            EventKind::MessageCaptured {
                message_id,
                content,
                change,
                ..
            } if message_id == marked && change == "highlighted" => Some(content),
            _ => None,
        });
    assert_eq!(key_moment.as_deref(), Some("consumer back, draining"));
    drop(store);

    let exported = std::process::Command::new(env!("CARGO_BIN_EXE_sitrep"))
        .args(["export", "INC-1", "--db"])
        .arg(bot.db_path())
        .output()
        .unwrap();
    assert!(exported.status.success(), "{exported:?}");
    let md = String::from_utf8(exported.stdout).unwrap();
    let top: String = md.lines().take(6).collect::<Vec<_>>().join("\n");
    assert!(
        top.contains("Message text was not captured")
            && top.contains("since 2")
            && top.contains("Privileged Gateway Intents"),
        "the draft says so at its top:\n{md}"
    );
    assert!(
        md.lines()
            .any(|l| l.contains("Key moment") && l.contains("consumer back, draining")),
        "{md}"
    );

    // With the toggle on again, text is back, the stretch ends, and what was kept without
    // text is read again: the next draft has the words and no longer warns.
    fake.set_privileged_intents(INTENT_MESSAGE_CONTENT);
    let mut bot = bot.restart(&fake, w, Mode::Proxy, "");
    fake.wait_ready().await;
    assert_ne!(
        fake.gateway_stats().intents.unwrap() & INTENT_MESSAGE_CONTENT,
        0
    );
    settle().await;
    let d = fake.slash(OWNER_ID, first, "postmortem", json!({"draft": {}}));
    fake.wait_until(Duration::from_secs(10), |f| {
        f.original(&d).filter(|m| {
            m["content"]
                .as_str()
                .is_some_and(|c| c.contains("version 2"))
        })
    })
    .await
    .expect("a second draft is compiled");
    assert!(bot.stop().success(), "{}", bot.log());
    let store = Store::open(bot.db_path()).unwrap();
    assert_eq!(store.open_content_gap().unwrap(), None);
    let gaps = store.content_gaps().unwrap();
    assert!(gaps[0].to.is_some());
    assert_eq!(
        gaps[0].recovered,
        vec![1, 2],
        "both incidents were read again"
    );
    let m = store.message(IncidentId(1), blank).unwrap().unwrap();
    assert_eq!(m.content, "restarting the consumer on node 3");
    assert!(m.history.is_empty(), "the words it had, not an edit");
    drop(store);
    let exported = std::process::Command::new(env!("CARGO_BIN_EXE_sitrep"))
        .args(["export", "INC-1", "--db"])
        .arg(bot.db_path())
        .output()
        .unwrap();
    let md = String::from_utf8(exported.stdout).unwrap();
    assert!(md.contains("version 2"), "{md}");
    assert!(!md.contains("Message text was not captured"), "{md}");
    assert!(md.contains("restarting the consumer on node 3"), "{md}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_of_what_the_bot_cannot_do_without_still_stops_it() {
    let fake = FakeDiscord::start().await;
    let w = world(&fake);
    // Every IDENTIFY refused, with or without message text.
    fake.close_identify_with(Some(4014));
    let mut bot = Bot::start(&fake, w, Mode::Proxy, "");
    let status = bot
        .wait_exit(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("still running; log:\n{}", bot.log()));
    assert!(!status.success());
    let log = bot.log();
    assert!(
        log.contains("even without the Message Content intent"),
        "{log}"
    );
    assert_eq!(
        fake.gateway_stats().connections,
        2,
        "one try without message text, then no loop"
    );
}
