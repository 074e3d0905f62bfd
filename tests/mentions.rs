//! Whatever users type, the bot's messages ping only whom the feature meant and keep Discord's limits: property tests over the posts as serenity would send them, then the real binary against the Discord fake.

mod support;

use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{json, Value};
use sitrep::app::App;
use sitrep::chat::discord::{build_http, global_limiter, outgoing, DiscordChat};
use sitrep::commands::options::manifest;
use sitrep::commands::{self, CommandInput, InputOption, InputValue, Invocation};
use sitrep::config::{Config, EscalationTarget, Secrets};
use sitrep::domain::{Actor, Event, EventKind, Severity, UserRef};
use sitrep::escalation::{page_post, Ladder};
use sitrep::message::Post;
use sitrep::platform::place_name;
use sitrep::status::{incident_post, reminder_post, status_text, view};
use sitrep::testkit::TestApp;
use std::sync::Arc;
use std::time::Duration;
use support::bot::{world, Bot, Mode};
use support::discord::{FakeDiscord, GENERAL_CHANNEL_ID, OWNER_ID};

/// What users type that could ping, break Markdown or look like template source. `ROLE` and
/// `USER` become ids of a real role and member.
const PIECES: &[&str] = &[
    "@everyone",
    "@here",
    "@everyone@here",
    "<@&ROLE>",
    "<@USER>",
    "<@!USER>",
    "<#GENERAL>",
    "<@&",
    "<@",
    "@",
    ">",
    "**bold**",
    "__",
    "`code`",
    "```",
    "||spoiler||",
    "> quote\n",
    "# heading\n",
    "[link](https://example.com)",
    "<t:1795255200:R>",
    "{{ 7 * 7 }}",
    "{{ incident.title }}",
    "{% if true %}x{% endif %}",
    "{%",
    "%}",
    "{#",
    "{{",
    "}}",
    "\n",
    " ",
    "\u{200B}",
    "\u{200D}",
    "\u{2060}",
    "\u{FEFF}",
    "\u{202E}",
    "\u{200F}",
    "\u{061C}",
    "é",
    "İ",
    "ß",
    "👩‍🚒",
    "𝕏",
    "\"",
    "'",
];

fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(PIECES).prop_map(str::to_string),
        3 => "[a-z0-9 ]{1,12}",
        2 => any::<String>().prop_map(|s| s.chars().take(16).collect::<String>()),
        1 => (1usize..=6000, prop::sample::select(&["x", "é", "@everyone ", "<@&ROLE> ", "\u{200B}"][..]))
            .prop_map(|(n, p)| p.repeat(n).chars().take(n).collect::<String>()),
    ]
}

/// Hostile text: a handful of pieces, from empty to 6,000 characters and more.
fn hostile() -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 0..6).prop_map(|v| v.concat())
}

fn resolve(text: &str, role: u64, user: u64) -> String {
    text.replace("ROLE", &role.to_string())
        .replace("USER", &user.to_string())
        .replace("GENERAL", &GENERAL_CHANNEL_ID.to_string())
}

// ----- what Discord accepts, and who a message can ping -----

fn chars(v: &Value) -> usize {
    v.as_str().map_or(0, |s| s.chars().count())
}

fn ids(v: &Value) -> Vec<u64> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().and_then(|s| s.parse().ok()))
        .collect()
}

/// Discord's message limits, checked on the body serenity sends.
fn assert_within_limits(body: &Value) {
    assert!(chars(&body["content"]) <= 2000, "content: {body}");
    let embeds = body["embeds"].as_array().cloned().unwrap_or_default();
    assert!(embeds.len() <= 10, "{} embeds", embeds.len());
    let mut total = 0;
    for e in &embeds {
        let (title, description, footer) = (
            chars(&e["title"]),
            chars(&e["description"]),
            chars(&e["footer"]["text"]),
        );
        assert!(title <= 256, "embed title is {title}");
        assert!(description <= 4096, "embed description is {description}");
        assert!(footer <= 2048, "embed footer is {footer}");
        let fields = e["fields"].as_array().cloned().unwrap_or_default();
        assert!(fields.len() <= 25, "{} fields", fields.len());
        total += title + description + footer + chars(&e["author"]["name"]);
        for f in &fields {
            assert!(chars(&f["name"]) <= 256, "field name {f}");
            assert!(chars(&f["value"]) <= 1024, "field value {f}");
            total += chars(&f["name"]) + chars(&f["value"]);
        }
    }
    assert!(total <= 6000, "embeds total {total}");
    for row in body["components"].as_array().into_iter().flatten() {
        for b in row["components"].as_array().into_iter().flatten() {
            assert!(chars(&b["label"]) <= 80, "button label {b}");
            assert!(chars(&b["custom_id"]) <= 100, "custom_id {b}");
        }
    }
    if let Some(n) = body.get("nonce") {
        assert!(chars(n) <= 25, "nonce {n}");
    }
}

/// `allowed_mentions` is explicit, parses nothing out of the text, and lists only whom the
/// feature meant to ping.
fn assert_pings_only(body: &Value, users: &[u64], roles: &[u64]) {
    let am = &body["allowed_mentions"];
    assert!(am.is_object(), "no allowed_mentions in {body}");
    assert_eq!(am["parse"], json!([]), "{am}");
    assert_ne!(am["replied_user"], true, "{am}");
    for u in ids(&am["users"]) {
        assert!(users.contains(&u), "may ping user {u}: {am}");
    }
    for r in ids(&am["roles"]) {
        assert!(roles.contains(&r), "may ping role {r}: {am}");
    }
}

fn body<T: serde::Serialize>(builder: T) -> Value {
    serde_json::to_value(builder).expect("serenity builders serialize")
}

/// A post as each of serenity's builders would send it: a channel message, an interaction
/// reply, the edit of a deferred reply, and the edit of a message (which pings nobody).
fn assert_post_ok(post: &Post, users: &[u64], roles: &[u64]) {
    for b in [
        body(outgoing::message(post.clone())),
        body(outgoing::reply(post.clone(), false)),
        body(outgoing::edit(post.clone())),
    ] {
        assert_within_limits(&b);
        assert_pings_only(&b, users, roles);
    }
    let b = body(outgoing::edit_message(post.clone()));
    assert_within_limits(&b);
    assert_pings_only(&b, &[], &[]);
}

/// The whole text of a post, attachments included, for "the text went out" checks.
fn full_text(post: &Post) -> String {
    let mut s = post.content.clone();
    if let Some(e) = &post.embed {
        s.push_str(&e.title);
        s.push_str(&e.description);
    }
    for f in &post.files {
        s.push_str(&String::from_utf8_lossy(&f.bytes));
    }
    s
}

// ----- every post the bot builds, fed hostile text -----

const COMMANDER: u64 = 1_300_000_000_000_000_004;
const HELPER: u64 = 1_300_000_000_000_000_020;
const OWNER: u64 = 1_300_000_000_000_000_021;
const DBA_ROLE: u64 = 1_300_000_000_000_000_777;
const STAKEHOLDERS: u64 = 1_300_000_000_000_000_101;

struct Harness {
    rt: tokio::runtime::Runtime,
    app: App,
}

fn harness() -> Harness {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut config = Config::default();
    config.discord.stakeholder_channel_id = Some(STAKEHOLDERS);
    config.escalation.targets.insert(
        "dba".into(),
        EscalationTarget {
            roles: vec![DBA_ROLE],
            pagerduty_routing_key_env: None,
            description: None,
            schedule: None,
        },
    );
    let config = Arc::new(config);
    let secrets = Secrets {
        discord_token: Some("unused".into()),
        ..Secrets::default()
    };
    // The real Discord adapter: its mentions are `<@id>` and `<#id>`. Nothing here sends.
    let http = build_http(&config, &secrets).unwrap();
    let chat = DiscordChat::new(Arc::new(http), config.clone(), Arc::new(global_limiter()));
    // The clock reads tokio's time, so it starts inside the runtime.
    let app = rt.block_on(async {
        TestApp::builder()
            .config((*config).clone())
            .paused_clock_at(Utc.with_ymd_and_hms(2026, 11, 21, 10, 0, 0).unwrap())
            .build_with(Arc::new(chat))
            .app
    });
    Harness { rt, app }
}

#[derive(Debug, Clone)]
struct Typed {
    title: String,
    summary: String,
    service: String,
    commander: String,
    helper: String,
    owner: String,
    update: String,
    note: String,
    action: String,
    reason: String,
    resolution: String,
    lint: String,
}

fn typed() -> impl Strategy<Value = Typed> {
    (
        (
            hostile(),
            hostile(),
            hostile(),
            hostile(),
            hostile(),
            hostile(),
        ),
        (
            hostile(),
            hostile(),
            hostile(),
            hostile(),
            hostile(),
            hostile(),
        ),
    )
        .prop_map(
            |(
                (title, summary, service, commander, helper, owner),
                (update, note, action, reason, resolution, lint),
            )| Typed {
                title,
                summary,
                service,
                commander,
                helper,
                owner,
                update,
                note,
                action,
                reason,
                resolution,
                lint,
            },
        )
}

fn string(s: &str) -> InputValue {
    InputValue::String(s.to_string())
}

fn input(command: &str, sub: Option<&str>, opts: Vec<(&str, InputValue)>) -> CommandInput {
    let mut options: Vec<InputOption> = opts
        .into_iter()
        .map(|(name, value)| InputOption {
            name: name.into(),
            value,
        })
        .collect();
    if let Some(sub) = sub {
        options = vec![InputOption {
            name: sub.into(),
            value: InputValue::Sub(options),
        }];
    }
    CommandInput {
        name: command.into(),
        options,
    }
}

/// Runs one command as the commander in the incident's channel and checks every message it
/// produces; returns the posts it queued, or `None` when it was refused.
fn run(
    h: &Harness,
    commander: &UserRef,
    channel: u64,
    input: CommandInput,
    users: &[u64],
) -> Option<Vec<Post>> {
    let inv = Invocation {
        user: commander.clone(),
        member_roles: Vec::new(),
        channel: Some(channel),
        input,
    };
    match h.rt.block_on(commands::run(&h.app, &inv)) {
        Ok(outcome) => {
            assert_post_ok(&outcome.reply.post, &[], &[]);
            let mut sent = Vec::new();
            for d in outcome.posts {
                assert_post_ok(&d.post, users, &[]);
                sent.push(d.post);
            }
            Some(sent)
        }
        Err(e) => {
            let text = e.to_chat(&inv.input.path());
            assert!(
                !text.contains("something went wrong"),
                "/{} failed inside: {e}",
                inv.input.path()
            );
            assert_post_ok(&Post::text(text), &[], &[]);
            None
        }
    }
}

fn check_everything(h: &Harness, t: &Typed) {
    let app = &h.app;
    let commander = UserRef::new(COMMANDER, resolve(&t.commander, DBA_ROLE, HELPER));
    let helper = UserRef::new(HELPER, resolve(&t.helper, DBA_ROLE, COMMANDER));
    let text = |s: &str| resolve(s, DBA_ROLE, HELPER);
    let id = app.store.reserve_incident_id().unwrap();
    let channel = 10_000 + id.0;

    // The channel (or thread) the incident gets, named from its title.
    let name = place_name(id.0, &text(&t.title));
    assert!(name.chars().count() <= 100, "{name}");
    assert!(
        name.chars().all(|c| c == '-' || c.is_alphanumeric()),
        "{name}"
    );

    // Opened through the store, as `/incident open` needs a channel from Discord; this also lets
    // titles and summaries past the command's limits in, to test the posts' own limits.
    let opt = |s: &str| Some(text(s)).filter(|s| !s.is_empty());
    let inc = app
        .store
        .create_incident(
            id,
            Event {
                at: app.now(),
                actor: Actor::User(commander.clone()),
                kind: EventKind::Opened {
                    title: text(&t.title),
                    severity: Severity(1),
                    summary: opt(&t.summary),
                    service: opt(&t.service),
                    started: app.now(),
                    channel: Some(channel),
                    channel_name: Some(name),
                    drill: false,
                    playbook: None,
                },
            },
        )
        .unwrap();
    for audience in ["responders", "stakeholders"] {
        let body = app
            .renderer
            .render(
                "incident_opened.md.j2",
                minijinja::context! { incident => view(app, &inc), audience },
            )
            .unwrap();
        assert_post_ok(&incident_post(app, &inc, "", body), &[], &[]);
    }

    let cmd = |input, users: &[u64]| run(h, &commander, channel, input, users);
    let owner = InputValue::User(UserRef::new(OWNER, text(&t.owner)));
    cmd(
        input(
            "incident",
            Some("role"),
            vec![
                ("role", string("communications")),
                ("user", InputValue::User(helper.clone())),
            ],
        ),
        &[HELPER],
    );
    let sent = cmd(
        input(
            "incident",
            Some("update"),
            vec![
                ("message", string(&text(&t.update))),
                ("state", string("identified")),
            ],
        ),
        &[],
    );
    if let Some(sent) = sent {
        let wanted = text(&t.update);
        assert!(
            sent.iter().any(|p| full_text(p).contains(wanted.trim())),
            "the update went out whole"
        );
    }
    cmd(
        input(
            "incident",
            Some("note"),
            vec![("text", string(&text(&t.note)))],
        ),
        &[],
    );
    cmd(
        input(
            "incident",
            Some("action"),
            vec![("text", string(&text(&t.action))), ("owner", owner)],
        ),
        &[],
    );
    cmd(
        input(
            "incident",
            Some("severity"),
            vec![
                ("level", string("SEV2")),
                ("reason", string(&text(&t.reason))),
            ],
        ),
        &[],
    );
    cmd(input("incident", Some("status"), vec![]), &[]);
    cmd(input("incident", Some("list"), vec![]), &[]);
    cmd(
        input(
            "postmortem",
            Some("lint"),
            vec![("text", string(&text(&t.lint)))],
        ),
        &[],
    );

    // Scheduled posts and escalation pages, built as the scheduler and escalation build them.
    let inc = app.store.incident(id).unwrap().unwrap();
    let now = app.now();
    let status = status_text(app, &inc, true, Some(now)).unwrap();
    assert_post_ok(&incident_post(app, &inc, "Update", status), &[], &[]);
    let reminder = reminder_post(app, &inc, now, Some(now)).unwrap();
    assert_post_ok(&reminder, &[COMMANDER], &[]);
    let inc = app
        .record(id, &Actor::User(commander.clone()), now, |_| {
            Ok(vec![EventKind::Escalated {
                escalation: 1,
                target: "dba".into(),
                level: 1,
                roles: vec![DBA_ROLE],
                reason: text(&t.reason),
                users: Vec::new(),
            }])
        })
        .unwrap()
        .0;
    let esc = inc.escalations.get(1).unwrap();
    let ladder = Ladder {
        policy: None,
        levels: vec!["dba".into()],
        ack_timeout: Duration::from_secs(600),
    };
    for l in [Some(&ladder), None] {
        let page = page_post(app, &inc, esc, esc.current().unwrap(), l).unwrap();
        assert_post_ok(&page, &[], &[DBA_ROLE]);
    }

    cmd(
        input(
            "incident",
            Some("resolve"),
            vec![("summary", string(&text(&t.resolution)))],
        ),
        &[],
    );
    cmd(input("postmortem", Some("draft"), vec![]), &[]);
    cmd(input("postmortem", Some("export"), vec![]), &[]);
    cmd(
        input(
            "incident",
            Some("reopen"),
            vec![("reason", string(&text(&t.note)))],
        ),
        &[],
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn no_post_pings_anyone_unintended_or_breaks_a_limit(t in typed()) {
        thread_local! {
            static H: Harness = harness();
        }
        H.with(|h| check_everything(h, &t));
    }
}

/// The checks above catch what they look for, so that a pass means something.
#[test]
fn the_checks_refuse_what_discord_would() {
    let fails = |f: &dyn Fn()| std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err();
    let ok = json!({"allowed_mentions": {"parse": [], "users": [], "roles": ["7"]}});
    assert!(!fails(&|| assert_pings_only(&ok, &[], &[7])));
    assert!(fails(&|| assert_pings_only(&ok, &[], &[])));
    assert!(fails(&|| assert_pings_only(
        &json!({"allowed_mentions": {"parse": ["everyone"]}}),
        &[],
        &[]
    )));
    assert!(fails(&|| assert_pings_only(
        &json!({"content": "hi"}),
        &[],
        &[]
    )));
    assert!(fails(&|| assert_within_limits(
        &json!({"content": "x".repeat(2001)})
    )));
    assert!(fails(&|| assert_within_limits(
        &json!({"embeds": [{"title": "t", "description": "d".repeat(4000), "footer": {"text": "f".repeat(2001)}}]})
    )));
    assert!(fails(&|| assert_within_limits(
        &json!({"components": [{"components": [{"label": "l".repeat(81), "custom_id": "c"}]}]})
    )));
    assert!(!fails(&|| assert_within_limits(
        &json!({"content": "é".repeat(2000)})
    )));
}

/// The fit to Discord happens in the builders, so the biggest posts are checked directly too.
#[test]
fn the_largest_posts_fit() {
    let h = harness();
    let huge = "@everyone <@&777> {{ x }} ".repeat(400);
    let t = Typed {
        title: huge.clone(),
        summary: huge.clone(),
        service: huge.clone(),
        commander: huge.clone(),
        helper: huge.clone(),
        owner: huge.clone(),
        update: huge.chars().take(2000).collect(),
        note: huge.chars().take(2000).collect(),
        action: huge.chars().take(1000).collect(),
        reason: huge.chars().take(1000).collect(),
        resolution: huge.chars().take(2000).collect(),
        lint: huge.chars().take(4000).collect(),
    };
    check_everything(&h, &t);
    let mut p = Post::text("é".repeat(5000));
    p.embed = Post::embed("t".repeat(300), "d".repeat(5000), None).embed;
    let b = body(outgoing::message(p));
    assert_within_limits(&b);
    assert!(
        b["attachments"].as_array().is_some_and(|a| a.len() == 2),
        "{}",
        b["attachments"]
    );
}

// ----- the real binary against the Discord fake -----

/// The longest value Discord's client lets through for `option` of `/incident <sub>`, or "x"
/// when there is nothing left.
fn fit(sub: &str, option: &str, text: &str) -> String {
    let m = manifest("incident").unwrap();
    let spec = m["options"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == sub)
        .and_then(|s| {
            s["options"]
                .as_array()
                .unwrap()
                .iter()
                .find(|o| o["name"] == option)
                .cloned()
        })
        .unwrap_or_else(|| panic!("/incident {sub} {option}"));
    fit_to(text, spec["max_length"].as_u64().unwrap_or(6000) as usize)
}

fn fit_to(text: &str, max: usize) -> String {
    let t: String = text.chars().take(max).collect();
    if t.is_empty() {
        "x".into()
    } else {
        t
    }
}

fn bot_messages(fake: &FakeDiscord, channel: u64) -> Vec<Value> {
    fake.messages(channel)
        .into_iter()
        .filter(|m| m["author"]["bot"] == true)
        .collect()
}

fn id_of(m: &Value) -> u64 {
    m["id"].as_str().unwrap().parse().unwrap()
}

/// What a deferral became: the placeholder filled in, or, for a failure, the ephemeral
/// follow-up that replaced it.
async fn deferred_text(fake: &FakeDiscord, i: &support::discord::Interaction) -> Option<String> {
    fake.wait_until(Duration::from_secs(15), |f| {
        let private = f
            .followups(i)
            .into_iter()
            .find(|m| m["flags"].as_u64().unwrap_or(0) & 64 != 0)
            .filter(|_| f.original_deleted(i));
        private
            .or_else(|| f.original(i))
            .and_then(|m| m["content"].as_str().map(String::from))
            .filter(|c| !c.is_empty())
    })
    .await
}

/// What one generated incident went through.
struct Ran {
    channel: u64,
    escalated: bool,
}

/// Opens an incident and runs it to resolution with hostile text in every field, through slash
/// commands and the update form; `None` when the open itself was refused.
async fn incident_with(fake: &FakeDiscord, texts: &[String], escalate: bool) -> Option<Ran> {
    let i = fake.slash(
        OWNER_ID,
        GENERAL_CHANNEL_ID,
        "incident",
        json!({"open": {
            "title": fit("open", "title", &texts[0]),
            "severity": "SEV2",
            "summary": fit("open", "summary", &texts[1]),
            "service": fit("open", "service", &texts[2]),
        }}),
    );
    let first = fake.wait_response(&i).await;
    assert!(
        first.latency < Duration::from_secs(3),
        "{:?}",
        first.latency
    );
    if first.kind == 4 {
        // Refused at once (say, a title of only spaces): an ephemeral explanation.
        assert!(first.ephemeral(), "{}", first.content());
        return None;
    }
    let content = deferred_text(fake, &i)
        .await
        .expect("the deferred open is answered");
    let content = content.as_str();
    let channel: u64 = content
        .split("<#")
        .nth(1)
        .and_then(|r| r.split('>').next())
        .and_then(|id| id.parse().ok())?;
    let slash = |options: Value| async move {
        let r = fake
            .wait_response(&fake.slash(OWNER_ID, channel, "incident", options))
            .await;
        assert!(r.latency < Duration::from_secs(3), "{:?}", r.latency);
    };
    slash(json!({"update": {"message": fit("update", "message", &texts[3])}})).await;
    slash(json!({"note": {"text": fit("note", "text", &texts[4])}})).await;
    slash(json!({"action": {"text": fit("action", "text", &texts[5])}})).await;

    // The update form: its title and labels are within Discord's 45 characters, and what is
    // typed into it goes out like a slash command's text.
    let update_button = format!("incident:update:{}", id_of_incident(content));
    let opening = fake
        .wait_message(|m| {
            m["channel_id"].as_str() == Some(channel.to_string().as_str())
                && m["components"].to_string().contains(&update_button)
        })
        .await;
    let click = fake.click(OWNER_ID, id_of(&opening), &update_button);
    let modal = fake.wait_response(&click).await;
    assert_eq!(modal.kind, 9, "the button opens the update form");
    assert!(chars(&modal.data["title"]) <= 45, "{}", modal.data);
    for row in modal.data["components"].as_array().unwrap() {
        for input in row["components"].as_array().unwrap() {
            assert!(chars(&input["label"]) <= 45, "{input}");
        }
    }
    let submitted = fake.submit_modal(
        &click,
        &[
            ("impact", &fit_to(&texts[1], 500)),
            ("understanding", &fit_to(&texts[3], 800)),
            ("next", &fit_to(&texts[5], 500)),
        ],
    );
    let r = fake.wait_response(&submitted).await;
    assert!(r.latency < Duration::from_secs(3), "{:?}", r.latency);

    let mut escalated = false;
    if escalate {
        let i = fake.slash(
            OWNER_ID,
            channel,
            "escalate",
            json!({"target": "dba", "reason": fit_to(&texts[6], 1000)}),
        );
        assert_eq!(fake.wait_response(&i).await.kind, 5, "escalating defers");
        let answer = deferred_text(fake, &i)
            .await
            .expect("the deferred escalation is answered");
        escalated = answer.contains("escalated");
    }
    slash(json!({"resolve": {"summary": fit("resolve", "summary", &texts[7])}})).await;
    Some(Ran { channel, escalated })
}

/// `INC-7` in "Opened INC-7 (SEV2) in <#…>" → 7.
fn id_of_incident(opened: &str) -> u64 {
    opened
        .split("INC-")
        .nth(1)
        .map(|r| {
            r.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| panic!("no incident id in {opened}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_text_through_the_real_bot_pings_only_paged_roles() {
    let fake = FakeDiscord::start().await;
    let w = world(&fake);
    let dba = fake.add_role("dba");
    fake.set_role(dba, true, 0);
    let victim = fake.add_member("victim", &[dba]);
    let extra =
        format!("[escalation]\nstuck_after = \"0s\"\n[escalation.targets.dba]\nroles = [{dba}]\n");
    let _bot = Bot::start(&fake, w, Mode::Proxy, &extra);
    fake.wait_ready().await;

    // A fixed seed: the same few hundred inputs on every run, so that a failure reproduces.
    let mut runner = TestRunner::deterministic();
    let strategy = prop::collection::vec(hostile(), 8);
    let (incidents, at_once) = (40, 4);
    let mut inputs = 0;
    let mut ran = Vec::new();
    for batch in 0..incidents / at_once {
        let mut runs = Vec::new();
        for k in 0..at_once {
            let texts: Vec<String> = strategy
                .new_tree(&mut runner)
                .unwrap()
                .current()
                .iter()
                .map(|s| resolve(s, dba, victim))
                .collect();
            inputs += texts.len() + 3;
            runs.push((texts, (batch * at_once + k) % 3 == 0));
        }
        let done =
            futures::future::join_all(runs.iter().map(|(t, esc)| incident_with(&fake, t, *esc)))
                .await;
        ran.extend(done.into_iter().flatten());
    }
    assert!(ran.len() >= incidents / 2, "only {} opened", ran.len());
    let escalations = ran.iter().filter(|r| r.escalated).count();
    assert!(escalations >= 3, "only {escalations} escalations");

    // Let the posts that follow the replies land (stakeholders, what changed).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut checked = 0;
    let mut pages = 0;
    let channels = ran.iter().map(|r| r.channel);
    for ch in channels.chain([w.stakeholders, GENERAL_CHANNEL_ID]) {
        for m in bot_messages(&fake, ch) {
            let pinged = fake.pings(id_of(&m));
            let is_page = m["content"]
                .as_str()
                .is_some_and(|c| c.starts_with(&format!("<@&{dba}> you are needed")));
            if is_page {
                assert_eq!(pinged.roles, vec![dba], "{m}");
                assert!(
                    !pinged.everyone && pinged.users.is_empty(),
                    "{m}: {pinged:?}"
                );
                pages += 1;
            } else {
                assert!(pinged.nobody(), "{m} pinged {pinged:?}");
            }
            checked += 1;
        }
    }
    assert_eq!(
        pages, escalations,
        "one page, pinging its role, per escalation"
    );
    assert!(checked >= ran.len() * 6, "only {checked} messages checked");
    let refused: Vec<String> = fake
        .requests()
        .iter()
        .filter(|r| r.status == 400)
        .map(|r| format!("{} {}: {}", r.route, r.body, r.response))
        .collect();
    assert!(refused.is_empty(), "Discord refused: {refused:#?}");
    assert_eq!(fake.invalid_request_count(), 0);
    for req in fake.requests_to("POST /channels/{channel}/messages") {
        assert!(req.body.get("allowed_mentions").is_some(), "{}", req.body);
    }
    assert!(inputs >= 300, "{inputs} inputs");
}
