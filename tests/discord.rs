//! The real binary and real serenity against the Discord fake: startup, a whole incident, mentions,
//! limits, restarts, resumes, rate limits, fatal closes and permissions.

mod support;

use serde_json::{json, Value};
use sitrep::store::Store;
use std::time::Duration;
use support::bot::{world, Bot, Mode, World};
use support::discord::{FakeDiscord, Fault, GatewayFault, OWNER_ID};

async fn started(mode: Mode, extra: &str) -> (FakeDiscord, World, Bot) {
    let fake = FakeDiscord::start().await;
    let w = world(&fake);
    let bot = Bot::start(&fake, w, mode, extra);
    fake.wait_ready().await;
    (fake, w, bot)
}

/// Opens an incident through Discord and returns (its channel id, the interaction).
async fn open(fake: &FakeDiscord, user: u64, options: Value) -> (u64, Value) {
    let i = fake.slash(
        user,
        support::discord::GENERAL_CHANNEL_ID,
        "incident",
        json!({ "open": options }),
    );
    let first = fake.wait_response(&i).await;
    assert_eq!(
        first.kind, 5,
        "open waits on the network, so it defers first"
    );
    assert!(
        first.latency < Duration::from_secs(3),
        "{:?}",
        first.latency
    );
    let original = fake
        .wait_until(Duration::from_secs(10), |f| {
            f.original(&i)
                .filter(|m| m["content"].as_str().is_some_and(|c| c.contains("Opened")))
        })
        .await
        .expect("the deferred response is edited with the result");
    let content = original["content"].as_str().unwrap().to_string();
    let channel: u64 = content
        .split("<#")
        .nth(1)
        .and_then(|r| r.split('>').next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no channel link in {content}"));
    (channel, original)
}

async fn run_in(
    fake: &FakeDiscord,
    user: u64,
    channel: u64,
    options: Value,
) -> support::discord::InteractionResponse {
    let i = fake.slash(user, channel, "incident", options);
    let r = fake.wait_response(&i).await;
    assert!(r.latency < Duration::from_secs(3), "{:?}", r.latency);
    r
}

fn bot_messages(fake: &FakeDiscord, channel: u64) -> Vec<Value> {
    fake.messages(channel)
        .into_iter()
        .filter(|m| m["author"]["bot"] == true)
        .collect()
}

fn in_channel(m: &Value, channel: u64) -> bool {
    m["channel_id"].as_str().and_then(|s| s.parse().ok()) == Some(channel)
}

fn text_of(m: &Value) -> String {
    let mut s = m["content"].as_str().unwrap_or_default().to_string();
    for e in m["embeds"].as_array().into_iter().flatten() {
        s.push('\n');
        s.push_str(e["title"].as_str().unwrap_or_default());
        s.push('\n');
        s.push_str(e["description"].as_str().unwrap_or_default());
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_every_manifest_and_runs_a_whole_incident() {
    let (fake, w, mut bot) = started(Mode::Proxy, "").await;
    let names: Vec<String> = fake
        .commands()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    for m in sitrep::commands::options::manifests() {
        assert!(
            names.contains(&m["name"].as_str().unwrap().to_string()),
            "{names:?}"
        );
    }
    let puts = fake.requests_to("PUT /applications/{application}/guilds/{guild}/commands");
    assert_eq!(puts.len(), 1, "one bulk overwrite");
    assert_eq!(puts[0].status, 200, "{}", puts[0].response);

    let (channel, _) = open(
        &fake,
        OWNER_ID,
        json!({"title": "Checkout returns 500", "severity": "SEV2", "service": "checkout"}),
    )
    .await;
    let ch = fake.channel(channel).unwrap();
    assert_eq!(ch["name"], "inc-1-checkout-returns-500");
    assert_eq!(ch["parent_id"], w.category.to_string());
    let opening = fake
        .wait_message(|m| in_channel(m, channel) && m["author"]["bot"] == true)
        .await;
    assert!(text_of(&opening).contains("Checkout returns 500"));
    assert_eq!(opening["embeds"][0]["color"], 0xf5a623, "SEV2's colour");
    let buttons: Vec<&str> = opening["components"][0]["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["label"].as_str().unwrap())
        .collect();
    assert_eq!(buttons, ["Join", "Post update"]);
    let announce = fake.wait_message(|m| in_channel(m, w.stakeholders)).await;
    assert!(
        text_of(&announce).contains(&format!("<#{channel}>")),
        "{announce}"
    );

    let bob = fake.add_member("bob", &[]);
    let steps = [
        (
            json!({"update": {"message": "Bad deploy of v2.3", "state": "identified"}}),
            "posted an update to INC-1",
        ),
        (
            json!({"severity": {"level": "SEV1", "reason": "all regions"}}),
            "INC-1 is now SEV1",
        ),
        (
            json!({"role": {"role": "communications", "user": bob.to_string()}}),
            "is now communications lead for INC-1",
        ),
        (
            json!({"note": {"text": "rollback started"}}),
            "Noted in INC-1's timeline",
        ),
        (
            json!({"resolve": {"summary": "Rolled back v2.3"}}),
            "INC-1 is resolved",
        ),
    ];
    for (opts, expect) in steps {
        let r = run_in(&fake, OWNER_ID, channel, opts.clone()).await;
        assert_eq!(r.kind, 4, "{opts}: answered directly");
        assert!(r.content().contains(expect), "{opts}: {}", r.content());
        assert!(!r.ephemeral());
    }
    let status = run_in(&fake, OWNER_ID, channel, json!({"status": {}})).await;
    let embed = text_of(&status.data);
    assert!(embed.contains("Resolved"), "{embed}");
    assert!(embed.contains("TTR"), "{embed}");

    let stakeholder_texts: Vec<String> = fake
        .wait_until(Duration::from_secs(5), |f| {
            let msgs = bot_messages(f, w.stakeholders);
            // Posts that waited together for the channel share a digest, one embed each.
            let posts: usize = msgs
                .iter()
                .map(|m| m["embeds"].as_array().map_or(0, Vec::len).max(1))
                .sum();
            (posts >= 4).then_some(msgs)
        })
        .await
        .expect("announcement, update, severity and resolution reach stakeholders")
        .iter()
        .map(text_of)
        .collect();
    assert!(
        stakeholder_texts
            .iter()
            .any(|t| t.contains("**Resolved:**")),
        "{stakeholder_texts:?}"
    );

    // Every message the bot sent says whom it may ping, and only the role handover pings anyone.
    for req in fake.requests_to("POST /channels/{channel}/messages") {
        assert!(req.body.get("allowed_mentions").is_some(), "{}", req.body);
    }
    let role_post = fake
        .wait_message(|m| {
            in_channel(m, channel)
                && m["type"] == 0
                && m["content"]
                    .as_str()
                    .is_some_and(|c| c.contains("communications"))
        })
        .await;
    let pinged = fake.pings(role_post["id"].as_str().unwrap().parse().unwrap());
    assert_eq!(pinged.users, vec![bob]);
    assert!(!pinged.everyone && pinged.roles.is_empty());

    assert!(bot.stop().success(), "{}", bot.log());
    let store = Store::open(bot.db_path()).unwrap();
    let inc = store
        .incident(sitrep::domain::IncidentId(1))
        .unwrap()
        .unwrap();
    assert_eq!(inc.state, sitrep::domain::State::Resolved);
    assert_eq!(inc.channel, Some(channel));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_typed_by_users_pings_nobody() {
    let (fake, w, _bot) = started(Mode::Proxy, "").await;
    let role = fake.add_role("oncall");
    fake.set_role(role, true, 0);
    let victim = fake.add_member("victim", &[role]);
    let hostile = format!("@everyone @here <@&{role}> <@{victim}> <@!{victim}>");
    let (channel, original) = open(
        &fake,
        OWNER_ID,
        json!({"title": hostile.clone(), "severity": "SEV1", "summary": hostile.clone()}),
    )
    .await;
    run_in(
        &fake,
        OWNER_ID,
        channel,
        json!({"update": {"message": hostile.clone()}}),
    )
    .await;
    run_in(
        &fake,
        OWNER_ID,
        channel,
        json!({"note": {"text": hostile.clone()}}),
    )
    .await;
    fake.wait_until(Duration::from_secs(5), |f| {
        (bot_messages(f, w.stakeholders).len() >= 2).then_some(())
    })
    .await
    .expect("stakeholder posts");
    let mut checked = 0;
    for ch in [
        channel,
        w.stakeholders,
        support::discord::GENERAL_CHANNEL_ID,
    ] {
        for m in bot_messages(&fake, ch) {
            let id: u64 = m["id"].as_str().unwrap().parse().unwrap();
            assert!(fake.pings(id).nobody(), "{m} pinged {:?}", fake.pings(id));
            checked += 1;
        }
    }
    assert!(checked >= 5, "only {checked} messages checked");
    let id: u64 = original["id"].as_str().unwrap().parse().unwrap();
    assert!(fake.pings(id).nobody());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_title_past_the_client_limit_is_refused_and_changes_nothing() {
    let (fake, _w, _bot) = started(Mode::Proxy, "").await;
    let long = "x".repeat(300);
    let i = fake.slash_unchecked(
        OWNER_ID,
        support::discord::GENERAL_CHANNEL_ID,
        "incident",
        json!([{"name": "open", "type": 1, "options": [
            {"name": "title", "type": 3, "value": long},
            {"name": "severity", "type": 3, "value": "SEV2"}
        ]}]),
    );
    let r = fake.wait_response(&i).await;
    // Refused before any deferral: at once, and to the typist alone.
    assert_eq!(r.kind, 4);
    assert!(r.ephemeral());
    assert!(
        r.content()
            .contains("300 characters is too long; the limit is 150"),
        "{}",
        r.content()
    );
    assert!(fake.requests_to("POST /guilds/{guild}/channels").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_makes_no_duplicate_channel_or_post_and_still_knows_the_incident() {
    let (fake, w, mut bot) = started(Mode::Proxy, "").await;
    let (channel, _) = open(
        &fake,
        OWNER_ID,
        json!({"title": "DB down", "severity": "SEV1"}),
    )
    .await;
    fake.wait_until(Duration::from_secs(5), |f| {
        (!bot_messages(f, w.stakeholders).is_empty()).then_some(())
    })
    .await
    .unwrap();
    assert!(bot.stop().success());
    let channels_before = fake.requests_to("POST /guilds/{guild}/channels").len();
    let posts_before = fake.requests_to("POST /channels/{channel}/messages").len();

    let _bot2 = bot.restart(&fake, w, Mode::Proxy, "");
    fake.wait_until(Duration::from_secs(10), |f| {
        (f.gateway_stats().identifies >= 2).then_some(())
    })
    .await
    .expect("the second process identifies");
    let r = run_in(&fake, OWNER_ID, channel, json!({"status": {}})).await;
    assert!(text_of(&r.data).contains("DB down"), "{}", r.data);
    assert_eq!(
        fake.requests_to("POST /guilds/{guild}/channels").len(),
        channels_before
    );
    assert_eq!(
        fake.requests_to("POST /channels/{channel}/messages").len(),
        posts_before
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_socket_resumes_and_the_next_interaction_is_answered_once() {
    let (fake, _w, _bot) = started(Mode::Proxy, "").await;
    let (channel, _) = open(
        &fake,
        OWNER_ID,
        json!({"title": "Search slow", "severity": "SEV3"}),
    )
    .await;
    fake.gateway_fault(GatewayFault::DropSocket);
    fake.wait_until(Duration::from_secs(15), |f| {
        (f.gateway_stats().resumes >= 1).then_some(())
    })
    .await
    .expect("serenity resumes the session");
    assert_eq!(
        fake.gateway_stats().identifies,
        1,
        "resumed, not re-identified"
    );
    let i = fake.slash(
        OWNER_ID,
        channel,
        "incident",
        json!({"note": {"text": "after the drop"}}),
    );
    let r = fake.wait_response(&i).await;
    assert!(r.content().contains("after the drop"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let callbacks = fake
        .requests_to("POST /interactions/{interaction}/{token}/callback")
        .into_iter()
        .filter(|req| req.path.contains(&i.id.to_string()))
        .count();
    assert_eq!(callbacks, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_mode_honours_429_retry_after_with_serenitys_limiter() {
    let (fake, w, _bot) = started(Mode::Direct, "").await;
    fake.fail_next(
        "POST /channels/{channel}/messages",
        Fault::RateLimit { retry_after: 0.6 },
    );
    let (channel, _) = open(
        &fake,
        OWNER_ID,
        json!({"title": "Queue stuck", "severity": "SEV2"}),
    )
    .await;
    let posts = fake
        .wait_until(Duration::from_secs(10), |f| {
            let reqs = f.requests_to("POST /channels/{channel}/messages");
            (reqs.iter().filter(|r| r.status < 300).count() >= 2).then_some(reqs)
        })
        .await
        .expect("both posts go out after the 429");
    assert!(
        posts.iter().all(|r| r.tls),
        "direct mode talks TLS to discord.com"
    );
    let limited = posts
        .iter()
        .find(|r| r.status == 429)
        .expect("the injected 429");
    let retried = posts
        .iter()
        .find(|r| r.status < 300 && r.path == limited.path && r.at > limited.at)
        .expect("the same post retried");
    assert!(
        retried.at - limited.at >= Duration::from_millis(550),
        "{:?}",
        retried.at - limited.at
    );
    assert!(!bot_messages(&fake, channel).is_empty());
    assert!(!bot_messages(&fake, w.stakeholders).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_4004_exits_with_a_clear_message_and_no_reconnect_loop() {
    let fake = FakeDiscord::start().await;
    let w = world(&fake);
    fake.close_identify_with(Some(4004));
    let mut bot = Bot::start(&fake, w, Mode::Proxy, "");
    let status = bot
        .wait_exit(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("still running; log:\n{}", bot.log()));
    assert!(!status.success());
    let log = bot.log();
    assert!(log.contains("Discord rejected the bot token"), "{log}");
    assert!(log.contains("SITREP_DISCORD_TOKEN"), "{log}");
    assert_eq!(fake.gateway_stats().connections, 1, "no second attempt");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_command_changes_nothing() {
    let fake = FakeDiscord::start().await;
    let w = world(&fake);
    let leads = fake.add_role("incident-leads");
    let extra = format!("[permissions]\n\"incident resolve\" = [{leads}]\n");
    let mut bot = Bot::start(&fake, w, Mode::Proxy, &extra);
    fake.wait_ready().await;
    let (channel, _) = open(
        &fake,
        OWNER_ID,
        json!({"title": "Cache cold", "severity": "SEV3"}),
    )
    .await;
    let mallory = fake.add_member("mallory", &[]);
    let lead = fake.add_member("lead", &[leads]);
    assert!(bot.stop().success());
    let before = Store::open(bot.db_path()).unwrap().dump().unwrap();

    let mut bot = bot.restart(&fake, w, Mode::Proxy, &extra);
    fake.wait_until(Duration::from_secs(10), |f| {
        (f.gateway_stats().identifies >= 2).then_some(())
    })
    .await
    .unwrap();
    let posts_before = fake.requests_to("POST /channels/{channel}/messages").len();
    let r = run_in(
        &fake,
        mallory,
        channel,
        json!({"resolve": {"summary": "done"}}),
    )
    .await;
    assert!(r.ephemeral());
    assert!(r.content().contains("not allowed"), "{}", r.content());
    assert!(
        r.content().contains(&format!("<@&{leads}>")),
        "{}",
        r.content()
    );
    assert_eq!(
        fake.requests_to("POST /channels/{channel}/messages").len(),
        posts_before
    );
    assert!(bot.stop().success());
    assert_eq!(Store::open(bot.db_path()).unwrap().dump().unwrap(), before);

    // A member of the configured role may.
    let _bot = bot.restart(&fake, w, Mode::Proxy, &extra);
    fake.wait_until(Duration::from_secs(10), |f| {
        (f.gateway_stats().identifies >= 3).then_some(())
    })
    .await
    .unwrap();
    let r = run_in(
        &fake,
        lead,
        channel,
        json!({"resolve": {"summary": "warmed"}}),
    )
    .await;
    assert!(r.content().contains("resolved"), "{}", r.content());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_update_button_opens_a_form_that_posts_an_update() {
    let (fake, w, _bot) = started(Mode::Proxy, "").await;
    let (channel, _) = open(
        &fake,
        OWNER_ID,
        json!({"title": "Login fails", "severity": "SEV2"}),
    )
    .await;
    let opening = fake
        .wait_message(|m| in_channel(m, channel) && m["author"]["bot"] == true)
        .await;
    let msg: u64 = opening["id"].as_str().unwrap().parse().unwrap();
    let click = fake.click(OWNER_ID, msg, "incident:update:1");
    let modal = fake.wait_response(&click).await;
    assert_eq!(modal.kind, 9, "a modal");
    let submit = fake.submit_modal(
        &click,
        &[
            ("state", "monitoring"),
            ("impact", "EU logins"),
            ("understanding", "Cert rotated"),
            ("next", ""),
        ],
    );
    let r = fake.wait_response(&submit).await;
    assert!(
        r.content().contains("(investigating → monitoring)"),
        "{}",
        r.content()
    );
    let update = fake
        .wait_message(|m| in_channel(m, w.stakeholders) && text_of(m).contains("Cert rotated"))
        .await;
    assert!(text_of(&update).contains("Monitoring"), "{update}");

    let join = fake.click(OWNER_ID, msg, "incident:join:1");
    let r = fake.wait_response(&join).await;
    assert!(
        r.ephemeral() && r.content().contains("You joined INC-1"),
        "{}",
        r.content()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thread_mode_opens_a_thread_under_the_parent_channel() {
    let fake = FakeDiscord::start().await;
    let w = world(&fake);
    let parent = fake.add_channel("incidents", support::discord::ChannelKind::Text, None);
    let _bot = Bot::start_with_env(
        &fake,
        w,
        Mode::Proxy,
        "",
        &[
            ("SITREP_DISCORD__INCIDENT_MODE", "thread"),
            (
                "SITREP_DISCORD__INCIDENT_PARENT_CHANNEL_ID",
                &parent.to_string(),
            ),
        ],
    );
    fake.wait_ready().await;
    let (thread, _) = open(
        &fake,
        OWNER_ID,
        json!({"title": "Payments lag", "severity": "SEV2"}),
    )
    .await;
    let ch = fake.channel(thread).unwrap();
    assert_eq!(ch["parent_id"], parent.to_string());
    assert_eq!(ch["type"], 11, "a public thread");
    assert!(fake.requests_to("POST /guilds/{guild}/channels").is_empty());
    let r = run_in(
        &fake,
        OWNER_ID,
        thread,
        json!({"note": {"text": "in the thread"}}),
    )
    .await;
    assert!(r.content().contains("INC-1"), "{}", r.content());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renders_past_discords_limits_go_out_as_files() {
    let (fake, _w, _bot) = started(Mode::Proxy, "").await;
    let (channel, _) = open(
        &fake,
        OWNER_ID,
        json!({"title": "Big one", "severity": "SEV2", "summary": "s".repeat(1000)}),
    )
    .await;
    for n in 0..4 {
        run_in(
            &fake,
            OWNER_ID,
            channel,
            json!({"action": {"text": format!("{n}{}", "a".repeat(999))}}),
        )
        .await;
    }
    let r = run_in(
        &fake,
        OWNER_ID,
        channel,
        json!({"update": {"message": "u".repeat(2000)}}),
    )
    .await;
    assert_eq!(r.kind, 4);
    let post = fake
        .wait_for_request(|req| {
            req.route == "POST /channels/{channel}/messages"
                && req.path.contains(&channel.to_string())
                && !req.files.is_empty()
        })
        .await;
    assert!(post.status < 300, "{}", post.response);
    assert_eq!(post.files[0].filename, "details.md");
    let full = String::from_utf8(post.files[0].bytes.clone()).unwrap();
    assert!(
        full.contains(&"u".repeat(2000)),
        "the whole update is in the file"
    );
    assert_eq!(fake.invalid_request_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolved_channels_are_archived_after_the_delay_and_reopen_cancels_it() {
    let fake = FakeDiscord::start().await;
    let w = world(&fake);
    let archive = fake.add_channel("archive", support::discord::ChannelKind::Category, None);
    let _bot = Bot::start_with_env(
        &fake,
        w,
        Mode::Proxy,
        "",
        &[
            ("SITREP_DISCORD__ARCHIVE_AFTER", "2s"),
            ("SITREP_DISCORD__ARCHIVE_CATEGORY_ID", &archive.to_string()),
        ],
    );
    fake.wait_ready().await;
    let (kept, _) = open(
        &fake,
        OWNER_ID,
        json!({"title": "Comes back", "severity": "SEV3"}),
    )
    .await;
    let (gone, _) = open(
        &fake,
        OWNER_ID,
        json!({"title": "Done for good", "severity": "SEV3"}),
    )
    .await;
    for ch in [kept, gone] {
        run_in(
            &fake,
            OWNER_ID,
            ch,
            json!({"resolve": {"summary": "fixed"}}),
        )
        .await;
    }
    run_in(
        &fake,
        OWNER_ID,
        kept,
        json!({"reopen": {"reason": "it came back"}}),
    )
    .await;
    let moved = fake
        .wait_until(Duration::from_secs(10), |f| {
            f.channel(gone)
                .filter(|c| c["parent_id"].as_str() == Some(archive.to_string().as_str()))
        })
        .await;
    assert!(
        moved.is_some(),
        "the resolved channel moves to the archive category"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        fake.channel(kept).unwrap()["parent_id"],
        w.category.to_string(),
        "the reopened incident stays where it is"
    );
}
