//! Thread and forum modes, the real binary over the Discord fake: archive periods, archived threads, Join, forum tags, the active-thread cap.

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::bot::{world, Bot, Mode, World};
use support::discord::{
    ChannelKind, FakeDiscord, Fault, Request, BOT_ROLE_PERMISSIONS, GENERAL_CHANNEL_ID, OWNER_ID,
};

/// Manage Threads, which the bot's invite asks for.
const MANAGE_THREADS: u64 = 1 << 34;

/// A fake, a parent channel (or forum) and the bot in `mode` ("thread" or "forum") under it.
async fn started(mode: &str, env: &[(&str, &str)]) -> (FakeDiscord, World, u64, Bot) {
    let fake = FakeDiscord::start().await;
    let w = world(&fake);
    let (kind, key) = match mode {
        "forum" => (
            ChannelKind::Forum,
            "SITREP_DISCORD__INCIDENT_FORUM_CHANNEL_ID",
        ),
        _ => (
            ChannelKind::Text,
            "SITREP_DISCORD__INCIDENT_PARENT_CHANNEL_ID",
        ),
    };
    let parent = fake.add_channel("incidents", kind, None);
    let parent_id = parent.to_string();
    let mut all = vec![("SITREP_DISCORD__INCIDENT_MODE", mode), (key, &parent_id)];
    all.extend_from_slice(env);
    let bot = Bot::start_with_env(&fake, w, Mode::Proxy, "", &all);
    fake.wait_ready().await;
    (fake, w, parent, bot)
}

/// Runs `/incident <options>` from #general and returns what the responder read last.
async fn run(fake: &FakeDiscord, options: Value) -> String {
    let i = fake.slash(OWNER_ID, GENERAL_CHANNEL_ID, "incident", options);
    let first = fake.wait_response(&i).await;
    if first.kind != 5 {
        return first.content().to_string();
    }
    fake.wait_until(Duration::from_secs(10), |f| {
        f.original(&i)
            .and_then(|m| m["content"].as_str().map(str::to_string))
            .filter(|c| !c.is_empty())
    })
    .await
    .expect("the deferral is filled in")
}

fn id_of(v: &Value) -> Option<u64> {
    v.as_str()?.parse().ok()
}

fn in_channel(m: &Value, channel: u64) -> bool {
    m["channel_id"].as_str().and_then(|s| s.parse().ok()) == Some(channel)
}

fn archived(fake: &FakeDiscord, thread: u64) -> bool {
    fake.channel(thread).unwrap()["thread_metadata"]["archived"] == true
}

fn to(req: &Request, channel: u64) -> bool {
    req.path.starts_with(&format!("/channels/{channel}"))
}

/// Waits until the forum post carries exactly these tags, in this order.
async fn wait_tags(fake: &FakeDiscord, post: u64, want: [&str; 2]) {
    let want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    fake.wait_until(Duration::from_secs(10), |f| {
        (f.applied_tag_names(post) == want).then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("tags {:?}, wanted {want:?}", fake.applied_tag_names(post)))
}

/// The Join button on the incident's opening post.
async fn join_button(fake: &FakeDiscord, thread: u64) -> u64 {
    let opening = fake
        .wait_message(|m| {
            in_channel(m, thread) && m["components"].to_string().contains("incident:join:")
        })
        .await;
    opening["id"].as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threads_get_the_configured_auto_archive_period_and_other_periods_are_refused() {
    let (fake, w, parent, _bot) =
        started("thread", &[("SITREP_DISCORD__THREAD_AUTO_ARCHIVE", "1d")]).await;
    let thread = fake.open_incident("Payments lag", "SEV2").await;
    let create = fake.requests_to("POST /channels/{channel}/threads");
    assert_eq!(create.len(), 1);
    assert_eq!(create[0].body["auto_archive_duration"], 1440);
    let ch = fake.channel(thread).unwrap();
    assert_eq!(ch["parent_id"], parent.to_string());
    assert_eq!(ch["type"], 11, "a public thread");
    assert_eq!(ch["thread_metadata"]["auto_archive_duration"], 1440);

    // Discord knows only four periods: anything else stops the bot at startup, saying which.
    let mut bad = Bot::start_with_env(
        &fake,
        w,
        Mode::Proxy,
        "",
        &[("SITREP_DISCORD__THREAD_AUTO_ARCHIVE", "2h")],
    );
    let status = bad
        .wait_exit(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("still running; log:\n{}", bad.log()));
    assert!(!status.success());
    let log = bad.log();
    assert!(
        log.contains("thread_auto_archive") && log.contains("1h, 1d, 3d or 1w"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thread_a_moderator_locked_and_archived_is_unarchived_before_the_bot_posts() {
    let (fake, _w, _parent, _bot) = started("thread", &[]).await;
    let thread = fake.open_incident("Queue backlog", "SEV2").await;
    fake.archive_thread(thread, true);
    assert!(archived(&fake, thread));

    let said = run(
        &fake,
        json!({"update": {"message": "Consumers scaled out", "incident": "INC-1"}}),
    )
    .await;
    assert!(said.contains("INC-1"), "{said}");
    assert!(!said.contains("Sorry"), "{said}");
    let update = fake
        .wait_message(|m| {
            in_channel(m, thread) && m["embeds"].to_string().contains("Consumers scaled out")
        })
        .await;
    assert_eq!(update["author"]["bot"], true);
    assert!(!archived(&fake, thread), "the bot unarchived it to post");
    let requests = fake.requests();
    let refused = requests
        .iter()
        .position(|r| to(r, thread) && r.response["code"] == 50083)
        .expect("Discord first refused the post in the locked thread");
    let unarchive = requests
        .iter()
        .position(|r| {
            r.route == "PATCH /channels/{channel}" && to(r, thread) && r.body["archived"] == false
        })
        .expect("the bot unarchived the thread");
    assert!(refused < unarchive);
    assert_eq!(
        requests
            .iter()
            .filter(|r| to(r, thread) && r.response["code"] == 50083)
            .count(),
        1,
        "one refusal, then the bot acted on it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_adds_the_responder_to_a_thread_that_went_quiet() {
    let (fake, _w, _parent, _bot) = started("thread", &[]).await;
    let thread = fake.open_incident("Search slow", "SEV3").await;
    let button = join_button(&fake, thread).await;
    let bob = fake.add_member("bob", &[]);
    // Discord's inactivity timer archives it; adding a member to it is refused until unarchived.
    fake.archive_thread(thread, false);
    let click = fake.click(bob, button, "incident:join:1");
    let said = fake
        .wait_until(Duration::from_secs(10), |f| {
            f.original(&click)
                .and_then(|m| m["content"].as_str().map(str::to_string))
                .filter(|c| !c.is_empty())
        })
        .await
        .expect("an answer");
    assert!(said.contains("You joined INC-1"), "{said}");
    assert!(fake.response(&click).unwrap().ephemeral());
    assert!(fake.thread_members(thread).contains(&bob));
    assert!(!archived(&fake, thread));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_says_so_when_discord_does_not_add_the_responder() {
    let (fake, _w, _parent, _bot) = started("thread", &[]).await;
    let thread = fake.open_incident("Cache misses", "SEV3").await;
    let button = join_button(&fake, thread).await;
    let bob = fake.add_member("bob", &[]);
    // A moderator locked the thread, and the bot was invited without Manage Threads: Discord
    // refuses to unarchive it for the bot.
    fake.set_bot_permissions(BOT_ROLE_PERMISSIONS & !MANAGE_THREADS);
    fake.archive_thread(thread, true);
    let click = fake.click(bob, button, "incident:join:1");
    let said = fake
        .wait_until(Duration::from_secs(10), |f| {
            f.original(&click)
                .and_then(|m| m["content"].as_str().map(str::to_string))
                .filter(|c| !c.is_empty())
        })
        .await
        .unwrap_or_else(|| {
            for r in fake.requests().iter().rev().take(8) {
                eprintln!("{} {} {} {}", r.route, r.path, r.status, r.response);
            }
            panic!("no answer: {:?}\n{}", fake.response(&click), _bot.log())
        });
    assert!(!said.contains("You joined"), "{said}");
    assert!(
        said.contains("did not add you") && said.contains(&format!("<#{thread}>")),
        "{said}"
    );
    assert!(fake.response(&click).unwrap().ephemeral());
    assert!(!fake.thread_members(thread).contains(&bob));
    let notes = fake
        .messages(thread)
        .into_iter()
        .filter(|m| m.to_string().contains("bob joined"))
        .count();
    assert_eq!(notes, 0);
    let status = run(&fake, json!({"status": {"incident": "INC-1"}})).await;
    assert!(!status.contains("bob joined"), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forum_posts_carry_severity_and_state_tags_and_are_archived_after_resolving() {
    let (fake, _w, forum, _bot) = started(
        "forum",
        &[
            ("SITREP_DISCORD__ARCHIVE_AFTER", "2s"),
            ("SITREP_DISCORD__THREAD_AUTO_ARCHIVE", "3d"),
        ],
    )
    .await;
    // A moderator's tags: one of them already names a severity, in its own case.
    let question = fake.add_forum_tags(forum, &["question", "sev4"])[0];
    fake.require_forum_tag(forum);
    let post = fake.open_incident("Checkout returns 500", "SEV2").await;
    let ch = fake.channel(post).unwrap();
    assert_eq!(ch["parent_id"], forum.to_string());
    assert_eq!(ch["thread_metadata"]["auto_archive_duration"], 4320);
    let starter = fake
        .messages(post)
        .into_iter()
        .find(|m| id_of(&m["id"]) == Some(post))
        .expect("the post's starter message shares its id");
    assert!(
        starter["content"].as_str().unwrap().contains("INC-1"),
        "{starter}"
    );

    wait_tags(&fake, post, ["SEV2", "investigating"]).await;
    let names = fake.forum_tag_names(forum);
    assert_eq!(names[0], "question", "a moderator's tag is kept: {names:?}");
    assert!(
        !names.iter().any(|t| t == "SEV4"),
        "the moderator's sev4 serves: {names:?}"
    );
    assert_eq!(names.len(), 2 + 3 + 4, "{names:?}");
    for n in [
        "SEV1",
        "SEV3",
        "investigating",
        "identified",
        "monitoring",
        "resolved",
    ] {
        assert!(names.iter().any(|t| t == n), "{n} missing from {names:?}");
    }
    assert!(names.len() <= 20);
    let kept = fake.channel(forum).unwrap()["available_tags"][0]["id"].clone();
    assert_eq!(
        kept,
        question.to_string(),
        "the moderator's tag keeps its id"
    );

    run(
        &fake,
        json!({"severity": {"level": "SEV1", "incident": "INC-1"}}),
    )
    .await;
    wait_tags(&fake, post, ["SEV1", "investigating"]).await;
    run(
        &fake,
        json!({"update": {"message": "Rolling back", "state": "identified", "incident": "INC-1"}}),
    )
    .await;
    wait_tags(&fake, post, ["SEV1", "identified"]).await;
    run(
        &fake,
        json!({"resolve": {"summary": "Rolled back", "incident": "INC-1"}}),
    )
    .await;
    wait_tags(&fake, post, ["SEV1", "resolved"]).await;
    assert!(
        !archived(&fake, post),
        "kept in sight until the delay passes"
    );
    let done = fake
        .wait_until(Duration::from_secs(10), |f| archived(f, post).then_some(()))
        .await;
    assert!(done.is_some(), "the post is archived after archive_after");
    assert_eq!(
        fake.requests_to("PATCH /channels/{channel}")
            .iter()
            .filter(|r| r.status >= 400)
            .count(),
        0,
        "no tag change was refused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_active_thread_cap_the_oldest_resolved_incidents_make_room() {
    let (fake, _w, _parent, bot) = started("thread", &[]).await;
    let first = fake.open_incident("One", "SEV3").await;
    let second = fake.open_incident("Two", "SEV3").await;
    let third = fake.open_incident("Three", "SEV3").await;
    for (inc, thread) in [("INC-2", second), ("INC-1", first)] {
        let said = run(
            &fake,
            json!({"resolve": {"summary": "Fixed it", "incident": inc}}),
        )
        .await;
        assert!(said.contains("resolved"), "{said}");
        fake.wait_message(|m| in_channel(m, thread) && m.to_string().contains("Fixed it"))
            .await;
    }
    // Members' own threads fill the server to Discord's cap.
    let room = 1000 - fake.active_threads();
    fake.fill_active_threads(GENERAL_CHANNEL_ID, room);
    assert_eq!(fake.active_threads(), 1000);

    let fourth = fake.open_incident("Four", "SEV3").await;
    assert!(archived(&fake, first) && archived(&fake, second));
    assert!(!archived(&fake, third), "an open incident keeps its thread");
    assert!(!archived(&fake, fourth));
    let archives: Vec<u64> = fake
        .requests_to("PATCH /channels/{channel}")
        .iter()
        .filter(|r| r.body["archived"] == true)
        .filter_map(|r| r.path.split('/').nth(2)?.parse().ok())
        .collect();
    assert_eq!(
        archives,
        vec![second, first],
        "the earliest resolved goes first"
    );
    let refusals = |f: &FakeDiscord| {
        f.requests()
            .iter()
            .filter(|r| r.response["code"] == 160006)
            .count()
    };
    assert_eq!(refusals(&fake), 1);

    // Full again, with no resolved incident left to archive: the bot says what to fix once,
    // without asking Discord again and again.
    let room = 1000 - fake.active_threads();
    fake.fill_active_threads(GENERAL_CHANNEL_ID, room);
    let i = fake.slash(
        OWNER_ID,
        GENERAL_CHANNEL_ID,
        "incident",
        json!({ "open": { "title": "Five", "severity": "SEV3" } }),
    );
    let answer = fake
        .wait_until(Duration::from_secs(10), |f| {
            f.original(&i)
                .filter(|m| m["content"].as_str().is_some_and(|c| !c.is_empty()))
        })
        .await
        .expect("an answer");
    assert_eq!(refusals(&fake), 2, "one more refusal, no storm");
    assert_eq!(fake.active_threads(), 1000);
    // What to fix reaches the responder, or at least the operator's log.
    let told = format!("{}\n{}", answer["content"], bot.log());
    assert!(told.contains("1,000 active threads"), "{told}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thread_made_while_discord_did_not_answer_is_found_not_made_twice() {
    let (fake, _w, parent, _bot) =
        started("thread", &[("SITREP_DISCORD__REQUEST_TIMEOUT", "2s")]).await;
    // Discord makes the thread, but its answer is lost past the bot's request timeout.
    fake.fail_next(
        "POST /channels/{channel}/threads",
        Fault::LateAnswer(Duration::from_secs(5)),
    );
    let thread = fake.open_incident("Disk full", "SEV2").await;
    assert_eq!(
        fake.requests_to("POST /channels/{channel}/threads").len(),
        1
    );
    assert!(!fake
        .requests_to("GET /guilds/{guild}/threads/active")
        .is_empty());
    let under_parent: Vec<Value> = fake
        .dispatches()
        .into_iter()
        .filter(|(t, d)| t == "THREAD_CREATE" && id_of(&d["parent_id"]) == Some(parent))
        .map(|(_, d)| d)
        .collect();
    assert_eq!(under_parent.len(), 1, "{under_parent:?}");
    assert_eq!(under_parent[0]["id"], thread.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forum_mode_pointed_at_a_text_channel_makes_no_thread_and_says_what_to_fix() {
    let fake = FakeDiscord::start().await;
    let w = world(&fake);
    let general = GENERAL_CHANNEL_ID.to_string();
    let bot = Bot::start_with_env(
        &fake,
        w,
        Mode::Proxy,
        "",
        &[
            ("SITREP_DISCORD__INCIDENT_MODE", "forum"),
            ("SITREP_DISCORD__INCIDENT_FORUM_CHANNEL_ID", &general),
        ],
    );
    fake.wait_ready().await;
    let i = fake.slash(
        OWNER_ID,
        GENERAL_CHANNEL_ID,
        "incident",
        json!({ "open": { "title": "DNS down", "severity": "SEV1" } }),
    );
    let answer = fake
        .wait_until(Duration::from_secs(10), |f| {
            f.original(&i)
                .filter(|m| m["content"].as_str().is_some_and(|c| !c.is_empty()))
        })
        .await
        .expect("an answer");
    assert!(
        fake.requests_to("POST /channels/{channel}/threads")
            .is_empty(),
        "no thread in a text channel"
    );
    let told = format!("{}\n{}", answer["content"], bot.log());
    assert!(told.contains("is not a forum channel"), "{told}");
}
