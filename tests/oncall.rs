//! On call end to end: the PagerDuty REST client against a stand-in that checks `GET /oncalls`
//! as PagerDuty documents it, and the real binary against the Discord fake: `/oncall`, a page
//! that mentions exactly the person on call, and the last known answer when PagerDuty is down.

mod support;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Duration as Days, Utc};
use serde_json::{json, Value};
use sitrep::integrations::pagerduty_oncalls::{Filter, OnCalls, OnCallsError};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::bot::{world, Bot, Mode};
use support::discord::{FakeDiscord, OWNER_ID};

const TOKEN: &str = "y_NbAkKc66ryYTWUXYEu";

// ----- a PagerDuty REST API v2 `GET /oncalls` stand-in -----

/// One on-call as the stand-in holds it.
#[derive(Clone)]
struct Shift {
    schedule: &'static str,
    policy: &'static str,
    level: u32,
    user: (&'static str, &'static str, &'static str),
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

struct FakePagerDuty {
    shifts: Vec<Shift>,
    /// Answers this status instead when set (an outage).
    fail_with: AtomicU16,
    /// Every query string received.
    queries: Mutex<Vec<String>>,
    /// Everything about a request that the REST API documentation does not allow.
    problems: Mutex<Vec<String>>,
}

impl FakePagerDuty {
    fn assert_well_formed(&self) {
        let p = self.problems.lock().unwrap();
        assert!(p.is_empty(), "requests PagerDuty would refuse: {p:#?}");
    }
}

const QUERY_KEYS: &[&str] = &[
    "time_zone",
    "limit",
    "offset",
    "total",
    "include[]",
    "user_ids[]",
    "escalation_policy_ids[]",
    "schedule_ids[]",
    "since",
    "until",
    "earliest",
];

/// `application/x-www-form-urlencoded` text as written.
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn reference(kind: &str, id: &str, summary: &str) -> Value {
    json!({
        "id": id,
        "type": format!("{kind}_reference"),
        "summary": summary,
        "self": format!("https://api.pagerduty.com/{kind}s/{id}"),
        "html_url": format!("https://example.pagerduty.com/{kind}s/{id}"),
    })
}

fn error(status: StatusCode, code: u32, message: &str, errors: Vec<String>) -> Response {
    (
        status,
        Json(json!({"error": {"message": message, "code": code, "errors": errors}})),
    )
        .into_response()
}

/// `GET /oncalls` as PagerDuty documents it: the token and version headers, known query keys,
/// ISO 8601 `since`/`until` at most 90 days apart, and `{oncalls, limit, offset, more, total}`.
async fn oncalls(
    State(pd): State<Arc<FakePagerDuty>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    pd.queries.lock().unwrap().push(query.clone());
    let mut problems = Vec::new();
    if headers.get("accept").and_then(|v| v.to_str().ok())
        != Some("application/vnd.pagerduty+json;version=2")
    {
        problems.push("Accept must be application/vnd.pagerduty+json;version=2".to_string());
    }
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Token token={TOKEN}"))
    {
        return error(
            StatusCode::UNAUTHORIZED,
            2006,
            "Invalid Credentials",
            vec![],
        );
    }
    let status = pd.fail_with.load(Ordering::SeqCst);
    if status != 0 {
        return error(
            StatusCode::from_u16(status).unwrap(),
            2001,
            "Internal Error",
            vec![],
        );
    }
    let pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect();
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let all = |k: &str| -> Vec<String> {
        pairs
            .iter()
            .filter(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .collect()
    };
    for (k, _) in &pairs {
        if !QUERY_KEYS.contains(&k.as_str()) {
            problems.push(format!("unknown query parameter {k}"));
        }
    }
    for inc in all("include[]") {
        if !["escalation_policies", "users", "schedules"].contains(&inc.as_str()) {
            problems.push(format!("include[]={inc} is not documented"));
        }
    }
    let time = |k: &str| {
        get(k).and_then(|v| {
            DateTime::parse_from_rfc3339(&v)
                .ok()
                .map(|t| t.with_timezone(&Utc))
        })
    };
    let (since, until) = (time("since"), time("until"));
    match (since, until) {
        (Some(s), Some(u)) if u >= s && u - s <= Days::days(90) => {}
        _ => problems.push(format!(
            "since/until must be ISO 8601, until after since, at most 90 days apart: {query}"
        )),
    }
    let limit: usize = get("limit").and_then(|l| l.parse().ok()).unwrap_or(25);
    let offset: usize = get("offset").and_then(|l| l.parse().ok()).unwrap_or(0);
    if !(1..=100).contains(&limit) {
        problems.push(format!("limit {limit} is outside 1..=100"));
    }
    if !problems.is_empty() {
        pd.problems.lock().unwrap().extend(problems.clone());
        return error(
            StatusCode::BAD_REQUEST,
            2001,
            "Invalid Input Provided",
            problems,
        );
    }
    let (since, until) = (since.unwrap(), until.unwrap());
    let schedules = all("schedule_ids[]");
    let policies = all("escalation_policy_ids[]");
    let users = all("include[]").contains(&"users".to_string());
    let matching: Vec<Value> = pd
        .shifts
        .iter()
        .filter(|s| s.start < until && s.end > since)
        .filter(|s| schedules.is_empty() || schedules.iter().any(|x| x == s.schedule))
        .filter(|s| policies.is_empty() || policies.iter().any(|x| x == s.policy))
        .map(|s| {
            let (id, name, email) = s.user;
            let user = if users {
                json!({"id": id, "type": "user", "name": name, "email": email,
                       "summary": name, "time_zone": "Europe/Berlin"})
            } else {
                reference("user", id, name)
            };
            json!({
                "user": user,
                "schedule": reference("schedule", s.schedule, "DBA"),
                "escalation_policy": reference("escalation_policy", s.policy, "DBA policy"),
                "escalation_level": s.level,
                "start": s.start.to_rfc3339(),
                "end": s.end.to_rfc3339(),
            })
        })
        .collect();
    let page: Vec<Value> = matching.iter().skip(offset).take(limit).cloned().collect();
    Json(json!({
        "oncalls": page,
        "limit": limit,
        "offset": offset,
        "more": offset + limit < matching.len(),
        "total": null,
    }))
    .into_response()
}

fn shifts(now: DateTime<Utc>) -> Vec<Shift> {
    let dana = ("PDANA01", "Dana Scully", "dana@example.com");
    let erin = ("PERIN01", "Erin Reagan", "erin@example.com");
    let lead = ("PLEAD01", "Lee Adams", "lee@example.com");
    let mut out = vec![
        Shift {
            schedule: "PSCHED1",
            policy: "PPOL1",
            level: 1,
            user: dana,
            start: now - Days::days(1),
            end: now + Days::hours(2),
        },
        Shift {
            schedule: "PSCHED1",
            policy: "PPOL1",
            level: 1,
            user: erin,
            start: now + Days::hours(2),
            end: now + Days::days(7),
        },
        Shift {
            schedule: "PSCHED2",
            policy: "PPOL1",
            level: 2,
            user: lead,
            start: now - Days::days(1),
            end: now + Days::days(30),
        },
    ];
    // Enough older shifts of the schedule to need a second page.
    for d in 2..120 {
        out.push(Shift {
            schedule: "PSCHED1",
            policy: "PPOL1",
            level: 1,
            user: if d % 2 == 0 { erin } else { dana },
            start: now + Days::days(7) + Days::hours(d),
            end: now + Days::days(7) + Days::hours(d + 1),
        });
    }
    out
}

async fn start_pagerduty(now: DateTime<Utc>) -> (Arc<FakePagerDuty>, String) {
    let pd = Arc::new(FakePagerDuty {
        shifts: shifts(now),
        fail_with: AtomicU16::new(0),
        queries: Mutex::new(Vec::new()),
        problems: Mutex::new(Vec::new()),
    });
    let app = Router::new()
        .route("/oncalls", get(oncalls))
        .with_state(pd.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (pd, format!("http://{addr}"))
}

// ----- the client against the stand-in -----

#[tokio::test]
async fn the_oncalls_client_sends_the_documented_request_and_reads_every_page() {
    let now = Utc::now();
    let (pd, url) = start_pagerduty(now).await;
    let client = OnCalls::new(&url, Duration::from_secs(5)).unwrap();
    let list = client
        .list(
            TOKEN,
            &Filter::Schedule("PSCHED1".into()),
            now,
            now + Days::days(45),
        )
        .await
        .unwrap();
    // 2 current shifts and 118 later ones, over two pages of 100.
    assert_eq!(list.len(), 120);
    assert_eq!(pd.queries.lock().unwrap().len(), 2);
    assert_eq!(list[0].who.name, "Dana Scully");
    assert_eq!(list[0].who.email.as_deref(), Some("dana@example.com"));
    let q = pd.queries.lock().unwrap()[0].clone();
    assert!(
        q.contains("schedule_ids%5B%5D=PSCHED1") && q.contains("include%5B%5D=users"),
        "{q}"
    );

    // A policy's on-calls are its first level's.
    let list = client
        .list(
            TOKEN,
            &Filter::EscalationPolicy("PPOL1".into()),
            now,
            now + Days::days(1),
        )
        .await
        .unwrap();
    assert!(list.iter().all(|i| i.who.name != "Lee Adams"), "{list:?}");
    assert_eq!(list.len(), 2);

    // A wrong token is refused and the token is named nowhere.
    let err = client
        .list(
            "wrong-token",
            &Filter::Schedule("PSCHED1".into()),
            now,
            now + Days::days(1),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, OnCallsError::Refused { status: 401, .. }),
        "{err}"
    );
    assert!(!err.to_string().contains("wrong-token"));
    // An outage is an outage, not a refusal.
    pd.fail_with.store(503, Ordering::SeqCst);
    let err = client
        .list(
            TOKEN,
            &Filter::Schedule("PSCHED1".into()),
            now,
            now + Days::days(1),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, OnCallsError::Unavailable(_)), "{err}");
    pd.assert_well_formed();
}

// ----- the bot end to end -----

/// Runs `/oncall` and returns the filled-in deferral and the request that filled it.
async fn oncall(fake: &FakeDiscord, channel: u64, options: Value) -> String {
    let i = fake.slash(OWNER_ID, channel, "oncall", options);
    let first = fake.wait_response(&i).await;
    assert!(
        first.latency < Duration::from_secs(3),
        "{:?}",
        first.latency
    );
    if first.kind == 4 {
        return first.content().to_string();
    }
    assert_eq!(
        first.kind, 5,
        "reading a source waits on the network, so it defers"
    );
    fake.wait_until(Duration::from_secs(10), |f| {
        f.original(&i)
            .and_then(|m| m["content"].as_str().map(String::from))
            .filter(|c| !c.is_empty())
    })
    .await
    .expect("the deferral is filled in")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oncall_answers_now_and_next_and_a_page_mentions_exactly_the_person_on_call() {
    let now = Utc::now();
    let (pd, url) = start_pagerduty(now).await;
    let fake = FakeDiscord::start().await;
    let dba_role = fake.add_role("dba");
    let w = world(&fake);
    let dana = fake.add_member("dana", &[]);
    let erin = fake.add_member("erin", &[]);
    let extra = format!(
        r#"
[pagerduty]
api_url = "{url}"
[people]
"dana@example.com" = {dana}
"Erin Reagan" = {erin}
[oncall.dba]
description = "Database on call"
pagerduty = {{ schedule_id = "PSCHED1" }}
[oncall.web]
[oncall.web.rotation]
members = ["dana@example.com", "Erin Reagan"]
time_zone = "Europe/Berlin"
start = "2026-01-05"
length = "7d"
[escalation]
stuck_after = "0s"
[escalation.targets.dba]
roles = [{dba_role}]
schedule = "dba"
"#
    );
    let mut bot = Bot::start_with_env(
        &fake,
        w,
        Mode::Proxy,
        &extra,
        &[("SITREP_PAGERDUTY_TOKEN", TOKEN)],
    );
    fake.wait_ready().await;

    let text = oncall(&fake, w.stakeholders, json!({"schedule": "DBA"})).await;
    let handoff = (now + Days::hours(2)).timestamp();
    assert!(text.starts_with("**dba** (Database on call)\n"), "{text}");
    assert!(
        text.contains(&format!("On call now: <@{dana}> (Dana Scully) since <t:")),
        "{text}"
    );
    assert!(
        text.contains(&format!("hands off <t:{handoff}:f> (<t:{handoff}:R>)")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "Next: <@{erin}> (Erin Reagan) from <t:{handoff}:f>"
        )),
        "{text}"
    );
    // The answer names people without pinging them.
    let reply = fake
        .requests_to("PATCH /webhooks/{application}/{token}/messages/{message}")
        .into_iter()
        .last()
        .unwrap();
    assert_eq!(reply.body["allowed_mentions"]["users"], json!([]));

    // Without a schedule: every schedule, the rotation included.
    let all = oncall(&fake, w.stakeholders, json!({})).await;
    assert!(all.contains("**dba**") && all.contains("**web**"), "{all}");

    // An unknown schedule is refused privately, at once.
    let i = fake.slash(
        OWNER_ID,
        w.stakeholders,
        "oncall",
        json!({"schedule": "nope"}),
    );
    let r = fake.wait_response(&i).await;
    assert_eq!(r.kind, 4);
    assert!(r.ephemeral());
    assert_eq!(
        r.content(),
        "`nope` is not an on-call schedule; configured: dba, web"
    );

    // Typing a schedule suggests the configured ones.
    let i = fake.autocomplete(
        OWNER_ID,
        w.stakeholders,
        "oncall",
        json!({"schedule": "W"}),
        "schedule",
    );
    let a = fake.wait_response(&i).await;
    assert_eq!(a.kind, 8);
    assert_eq!(a.data["choices"][0]["value"], "web");

    // A page of the target mentions exactly the person on call and the target's roles.
    let channel = fake.open_incident("Replica lag", "SEV1").await;
    let i = fake.slash(
        OWNER_ID,
        channel,
        "escalate",
        json!({"target": "dba", "reason": "replica lag 40s"}),
    );
    fake.wait_response(&i).await;
    let page = fake
        .wait_message(|m| {
            m["content"]
                .as_str()
                .is_some_and(|c| c.contains("you are needed on"))
        })
        .await;
    assert_eq!(
        page["content"],
        format!("<@{dana}> <@&{dba_role}> you are needed on **INC-1** (SEV1).")
    );
    let sent = fake
        .requests_to("POST /channels/{channel}/messages")
        .into_iter()
        .find(|q| q.response["id"] == page["id"])
        .unwrap();
    assert_eq!(
        sent.body["allowed_mentions"],
        json!({"parse": [], "users": [dana.to_string()], "roles": [dba_role.to_string()], "replied_user": false})
    );
    // Dana holds no role, but she was paged by name: she may acknowledge.
    let id: u64 = page["id"].as_str().unwrap().parse().unwrap();
    let i = fake.click(dana, id, "escalation:ack:1:1");
    fake.wait_response(&i).await;
    let ack = fake
        .wait_until(Duration::from_secs(10), |f| {
            f.original(&i)
                .and_then(|m| m["content"].as_str().map(String::from))
                .filter(|c| !c.is_empty())
        })
        .await
        .unwrap();
    assert!(
        ack.starts_with("You acknowledged escalation #1 of INC-1"),
        "{ack}"
    );

    // PagerDuty down: the last known answer, marked as such, never nobody.
    pd.fail_with.store(500, Ordering::SeqCst);
    let text = oncall(&fake, w.stakeholders, json!({"schedule": "dba"})).await;
    assert!(
        text.contains(&format!("On call now: <@{dana}> (Dana Scully)")),
        "{text}"
    );
    assert!(
        text.contains("source unreachable (PagerDuty did not answer"),
        "{text}"
    );
    pd.assert_well_formed();
    bot.stop();
}

#[test]
fn oncall_works_in_the_console_too() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sitrep.toml");
    std::fs::write(
        &config,
        r#"
[people]
alice = 111
bob = 222
[oncall.web]
[oncall.web.rotation]
members = ["alice", "bob"]
time_zone = "UTC"
start = "2020-01-06"
length = "1d"
"#,
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sitrep"))
        .args(["console", "--no-http", "--db"])
        .arg(dir.path().join("db"))
        .arg("--config")
        .arg(&config)
        .env("USER", "alice")
        .env("TZ", "UTC")
        .env_remove("SITREP_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"/oncall schedule:web\n/oncall schedule:nope\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Daily turns alternate: whoever is on now, the other is next, at 09:00 UTC.
    assert!(text.contains("**web**") || text.contains("web"), "{text}");
    assert!(
        text.contains("On call now: @alice (alice)") || text.contains("On call now: @bob (bob)"),
        "{text}"
    );
    assert!(text.contains("Next: @"), "{text}");
    assert!(text.contains("09:00"), "the hand-off in local time: {text}");
    assert!(
        text.contains("`nope` is not an on-call schedule; configured: web"),
        "{text}"
    );
}

#[test]
fn the_example_config_shows_each_source() {
    use sitrep::config::{Config, SourceKind};
    use std::collections::BTreeMap;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let none = BTreeMap::new();
    let c = Config::from_parts(Some(("config.example.toml", &text)), &none).unwrap();
    assert!(c.oncall.is_empty() && c.people.is_empty());
    // The commented-out schedules and people are valid once uncommented.
    let from = text.find("# On call: `/oncall").unwrap();
    let to = text.find("[escalation]").unwrap();
    let own: String = text[..from].to_string()
        + &text[from..to]
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest)
                    if rest.starts_with("[oncall.")
                        || rest.starts_with("[[oncall.")
                        || rest.split_once(" = ").is_some_and(|(k, _)| {
                            !k.contains(' ') && !k.is_empty() && !k.ends_with(':')
                        }) =>
                {
                    rest
                }
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n")
        + "\n"
        + &text[to..];
    let c = Config::from_parts(Some(("config.example.toml", &own)), &none).unwrap();
    let kinds: Vec<Option<SourceKind>> = c.oncall.values().map(|s| s.source()).collect();
    assert_eq!(
        kinds,
        [
            Some(SourceKind::PagerDuty),
            Some(SourceKind::Ical),
            Some(SourceKind::Rotation)
        ]
    );
    assert_eq!(c.people.len(), 3);
    assert!(
        sitrep::preflight::problems(&c, &sitrep::config::Secrets::default(), false).is_empty(),
        "{:?}",
        sitrep::preflight::problems(&c, &sitrep::config::Secrets::default(), false)
    );
    assert!(text.contains("SITREP_PAGERDUTY_TOKEN"));
}

/// An iCalendar event in UTC.
fn vevent(uid: &str, who: &str, email: &str, start: DateTime<Utc>, end: DateTime<Utc>) -> String {
    let f = |t: DateTime<Utc>| t.format("%Y%m%dT%H%M%SZ").to_string();
    format!(
        "BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:{}\r\nSUMMARY:{who}\r\nATTENDEE;CN={who}:mailto:{email}\r\nDTSTART:{}\r\nDTEND:{}\r\nEND:VEVENT\r\n",
        f(start),
        f(start),
        f(end)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oncall_role_moves_at_the_handoff() {
    use support::discord::{BOT_ROLE_ID, BOT_ROLE_PERMISSIONS};
    let fake = FakeDiscord::start().await;
    let role = fake.add_role("oncall-dba");
    // The bot manages roles below its own, with Manage Roles.
    fake.set_role_position(BOT_ROLE_ID, 50);
    fake.set_role(BOT_ROLE_ID, false, BOT_ROLE_PERMISSIONS | (1 << 28));
    let w = world(&fake);
    let dana = fake.add_member("dana", &[]);
    let erin = fake.add_member("erin", &[role]);
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("dba.ics");
    // Whole seconds, as the feed writes times.
    let now = DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap();
    let handoff = now + Days::seconds(5);
    std::fs::write(
        &feed,
        format!(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n{}{}END:VCALENDAR\r\n",
            vevent(
                "a",
                "Dana",
                "dana@example.com",
                now - Days::hours(1),
                handoff
            ),
            vevent(
                "b",
                "Erin",
                "erin@example.com",
                handoff,
                now + Days::hours(8)
            ),
        ),
    )
    .unwrap();
    let extra = format!(
        "[people]\n\"dana@example.com\" = {dana}\n\"erin@example.com\" = {erin}\n\
         [oncall.dba]\nrole_id = {role}\nical = {{ file = {:?} }}\n",
        feed.display().to_string()
    );
    let mut bot = Bot::start(&fake, w, Mode::Proxy, &extra);
    fake.wait_ready().await;
    // At start, the person on call gets the role and Erin, who held it from before, loses it.
    fake.wait_until(Duration::from_secs(10), |f| {
        (f.member_roles(dana).contains(&role) && !f.member_roles(erin).contains(&role))
            .then_some(())
    })
    .await
    .expect("dana alone holds the role at start");
    assert!(
        Utc::now() < handoff,
        "the test machine was too slow to see the start"
    );
    // At the hand-off it moves to Erin.
    fake.wait_until(Duration::from_secs(20), |f| {
        (!f.member_roles(dana).contains(&role) && f.member_roles(erin).contains(&role))
            .then_some(())
    })
    .await
    .expect("the role moves at the hand-off");
    assert!(Utc::now() >= handoff, "the role moved before the hand-off");
    let calls: Vec<(String, u16)> = fake
        .requests_to("PUT /guilds/{guild}/members/{user}/roles/{role}")
        .into_iter()
        .chain(fake.requests_to("DELETE /guilds/{guild}/members/{user}/roles/{role}"))
        .map(|q| (format!("{} {}", q.method, q.path), q.status))
        .collect();
    let guild = support::discord::GUILD_ID;
    for (method, user) in [
        ("PUT", dana),
        ("DELETE", erin),
        ("PUT", erin),
        ("DELETE", dana),
    ] {
        let call = (
            format!("{method} /guilds/{guild}/members/{user}/roles/{role}"),
            204,
        );
        assert!(calls.contains(&call), "{call:?} in {calls:#?}");
    }
    assert_eq!(calls.len(), 4, "{calls:#?}");
    bot.stop();
}
