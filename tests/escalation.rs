//! Escalation end to end: the real binary against the Discord fake and a PagerDuty stand-in.
//!
//! The stand-in checks Events API v2 bodies as PagerDuty documents them and answers 202, 400, 429
//! and 500 as it does.

mod support;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};
use sitrep::config::{Dur, PagerDutyConfig};
use sitrep::domain::{Actor, Backoff, EventKind, IncidentId, UserRef};
use sitrep::integrations::pagerduty::{Alert, Link, PagerDuty, PagerDutyError};
use sitrep::store::{JobKind, Store};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::bot::{world, Bot, Mode};
use support::discord::{FakeDiscord, Fault, GENERAL_CHANNEL_ID, GUILD_ID, OWNER_ID};

// ----- a PagerDuty Events API v2 stand-in -----

/// One event as the stand-in received it, and what it answered.
#[derive(Clone, Debug)]
struct Received {
    body: Value,
    status: u16,
}

#[derive(Default)]
struct FakePagerDuty {
    /// Statuses to answer per dedup key, in order; 202 once a key's list is empty.
    script: Mutex<HashMap<String, VecDeque<u16>>>,
    received: Mutex<Vec<Received>>,
    /// Everything about a request that the Events API v2 documentation does not allow.
    problems: Mutex<Vec<String>>,
}

impl FakePagerDuty {
    fn answer(&self, dedup_key: &str, statuses: &[u16]) {
        self.script
            .lock()
            .unwrap()
            .insert(dedup_key.into(), statuses.iter().copied().collect());
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    fn for_key(&self, dedup_key: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.body["dedup_key"] == dedup_key)
            .collect()
    }

    fn assert_well_formed(&self) {
        let p = self.problems.lock().unwrap();
        assert!(p.is_empty(), "requests PagerDuty would refuse: {p:#?}");
    }

    async fn wait_for(&self, what: &str, pred: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        for _ in 0..300 {
            let got = self.received();
            if pred(&got) {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("PagerDuty never saw {what}; it saw {:#?}", self.received());
    }
}

/// What the Events API v2 documents for `POST /v2/enqueue`.
fn check_event(headers: &HeaderMap, body: &[u8]) -> Result<Value, Vec<String>> {
    let mut errors = Vec::new();
    let json_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json_type {
        errors.push("Content-Type must be application/json".to_string());
    }
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return Err(vec!["body is not JSON".into()]);
    };
    let Some(obj) = v.as_object() else {
        return Err(vec!["body is not an object".into()]);
    };
    for key in obj.keys() {
        if ![
            "routing_key",
            "event_action",
            "dedup_key",
            "payload",
            "images",
            "links",
            "client",
            "client_url",
        ]
        .contains(&key.as_str())
        {
            errors.push(format!("unknown field {key}"));
        }
    }
    if v["routing_key"].as_str().map(str::len) != Some(32) {
        errors.push("routing_key must be the 32-character integration key".into());
    }
    let action = v["event_action"].as_str().unwrap_or_default();
    if !["trigger", "acknowledge", "resolve"].contains(&action) {
        errors.push(format!(
            "event_action {action:?} is not trigger, acknowledge or resolve"
        ));
    }
    match v["dedup_key"].as_str() {
        Some(k) if !k.is_empty() && k.len() <= 255 => {}
        _ => errors.push("dedup_key must be 1 to 255 characters".into()),
    }
    if action == "trigger" {
        let p = &v["payload"];
        match p["summary"].as_str() {
            Some(s) if !s.is_empty() && s.chars().count() <= 1024 => {}
            _ => errors.push("payload.summary is required, up to 1024 characters".into()),
        }
        if p["source"].as_str().map_or(true, str::is_empty) {
            errors.push("payload.source is required".into());
        }
        let sev = p["severity"].as_str().unwrap_or_default();
        if !["critical", "error", "warning", "info"].contains(&sev) {
            errors.push(format!("payload.severity {sev:?} is not one of the four"));
        }
        if let Some(t) = p["timestamp"].as_str() {
            if chrono::DateTime::parse_from_rfc3339(t).is_err() {
                errors.push(format!("payload.timestamp {t:?} is not ISO 8601"));
            }
        }
        for l in v["links"].as_array().into_iter().flatten() {
            if l["href"].as_str().is_none() {
                errors.push("links[].href is required".into());
            }
        }
    } else if !v["payload"].is_null() {
        errors.push(format!("{action} takes no payload"));
    }
    if errors.is_empty() {
        Ok(v)
    } else {
        Err(errors)
    }
}

fn invalid(errors: Vec<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"status": "invalid event", "message": "Event object is invalid", "errors": errors})),
    )
        .into_response()
}

async fn enqueue(
    State(pd): State<Arc<FakePagerDuty>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let v = match check_event(&headers, &body) {
        Ok(v) => v,
        Err(errors) => {
            pd.problems.lock().unwrap().extend(errors.clone());
            let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
            pd.received
                .lock()
                .unwrap()
                .push(Received { body, status: 400 });
            return invalid(errors);
        }
    };
    let key = v["dedup_key"].as_str().unwrap_or_default().to_string();
    let status = pd
        .script
        .lock()
        .unwrap()
        .get_mut(&key)
        .and_then(VecDeque::pop_front)
        .unwrap_or(202);
    pd.received
        .lock()
        .unwrap()
        .push(Received { body: v, status });
    match status {
        202 => (
            StatusCode::ACCEPTED,
            axum::Json(json!({"status": "success", "message": "Event processed", "dedup_key": key})),
        )
            .into_response(),
        400 => invalid(vec!["Length of 'routing_key' is incorrect (should be 32 characters)".into()]),
        429 => (
            StatusCode::TOO_MANY_REQUESTS,
            axum::Json(json!({"status": "throttle event", "message": "Requests for this service are arriving too quickly.  Please retry later."})),
        )
            .into_response(),
        s => (StatusCode::from_u16(s).unwrap(), "Internal Server Error").into_response(),
    }
}

async fn start_pagerduty() -> (Arc<FakePagerDuty>, String) {
    let pd = Arc::new(FakePagerDuty::default());
    let router = Router::new()
        .route("/v2/enqueue", axum::routing::post(enqueue))
        .with_state(pd.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (pd, format!("http://{addr}/v2/enqueue"))
}

/// A 32-character routing key that names what it is for.
fn routing_key(name: &str) -> String {
    format!("{name:0<32}")
}

// ----- the PagerDuty client against the stand-in -----

fn client(url: &str) -> PagerDuty {
    let config = PagerDutyConfig {
        events_url: url.into(),
        timeout: Dur(Duration::from_secs(5)),
        ..PagerDutyConfig::default()
    };
    let keys = BTreeMap::from([
        ("dba".to_string(), routing_key("RDBA")),
        ("net".to_string(), routing_key("RNET")),
    ]);
    PagerDuty::new(&config, keys).unwrap().with_backoff(
        Backoff::new(Duration::from_millis(20), Duration::from_millis(100)),
        4,
    )
}

fn alert() -> Alert {
    Alert {
        summary: "[INC-3 SEV1] Checkout down: dba paged, replica lag".into(),
        source: "checkout".into(),
        severity: "critical".into(),
        timestamp: chrono::Utc::now(),
        component: Some("checkout".into()),
        group: None,
        class: Some("incident escalation".into()),
        custom_details: json!({"incident": "INC-3"}),
    }
}

#[tokio::test]
async fn pagerduty_events_have_the_documented_shape() {
    let (pd, url) = start_pagerduty().await;
    let c = client(&url);
    let links = [Link {
        href: "https://discord.com/channels/1/2".into(),
        text: "INC-3 incident channel".into(),
    }];
    let ok = c
        .trigger(
            "dba",
            "sitrep/INC-3/dba",
            &alert(),
            &links,
            Some("https://discord.com/channels/1/2"),
        )
        .await
        .unwrap();
    assert_eq!(ok.dedup_key.as_deref(), Some("sitrep/INC-3/dba"));
    assert_eq!(ok.attempts, 1);
    c.acknowledge("dba", "sitrep/INC-3/dba").await.unwrap();
    c.resolve("dba", "sitrep/INC-3/dba").await.unwrap();
    pd.assert_well_formed();
    let got = pd.received();
    let actions: Vec<&str> = got
        .iter()
        .map(|r| r.body["event_action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["trigger", "acknowledge", "resolve"]);
    let t = &got[0].body;
    assert_eq!(t["routing_key"], routing_key("RDBA"));
    assert_eq!(t["payload"]["severity"], "critical");
    assert_eq!(t["payload"]["source"], "checkout");
    assert_eq!(t["links"][0]["href"], "https://discord.com/channels/1/2");
    assert_eq!(t["client"], "sitrep");
    let long = Alert {
        summary: "x".repeat(3000),
        ..alert()
    };
    c.trigger("net", "sitrep/INC-3/net", &long, &[], None)
        .await
        .unwrap();
    pd.assert_well_formed();
    assert!(matches!(
        c.acknowledge("nobody", "k").await,
        Err(PagerDutyError::NoKey(_))
    ));
}

#[tokio::test]
async fn pagerduty_429_and_5xx_are_retried_and_400_never() {
    let (pd, url) = start_pagerduty().await;
    let c = client(&url);
    pd.answer("retry", &[429, 500, 503]);
    let ok = c
        .trigger("dba", "retry", &alert(), &[], None)
        .await
        .unwrap();
    assert_eq!(ok.attempts, 4, "three failures, then accepted");
    assert_eq!(pd.for_key("retry").len(), 4);

    pd.answer("bad", &[400, 202]);
    let err = c
        .trigger("dba", "bad", &alert(), &[], None)
        .await
        .unwrap_err();
    assert_eq!(pd.for_key("bad").len(), 1, "a 400 is not retried");
    let text = err.to_string();
    assert!(
        text.starts_with(
            "PagerDuty refused the event (400): Event object is invalid: Length of 'routing_key'"
        ),
        "{text}"
    );

    pd.answer("down", &[500, 500, 500, 500, 500]);
    let err = c.acknowledge("dba", "down").await.unwrap_err();
    assert!(
        matches!(err, PagerDutyError::GaveUp { attempts: 4, .. }),
        "{err}"
    );
    assert_eq!(pd.for_key("down").len(), 4);
    assert!(!err.to_string().contains(&routing_key("RDBA")));

    // Nobody listening: a network failure is retried too, and named without the key.
    let gone = client("http://127.0.0.1:9/v2/enqueue");
    let err = gone.resolve("dba", "k").await.unwrap_err().to_string();
    assert!(
        err.contains("after 4 attempts") && !err.contains("RDBA"),
        "{err}"
    );
    pd.assert_well_formed();
}

// ----- the bot end to end -----

struct Roles {
    dba: u64,
    lead: u64,
    director: u64,
    other: u64,
}

fn roles(fake: &FakeDiscord) -> Roles {
    Roles {
        dba: fake.add_role("dba"),
        lead: fake.add_role("sre-lead"),
        director: fake.add_role("eng-director"),
        other: fake.add_role("marketing"),
    }
}

/// Targets dba → sre-lead → eng-director, `ack` per level; dba and sre-lead have routing keys
/// when `pagerduty` is given.
fn escalation_toml(r: &Roles, ack: &str, pagerduty: Option<&str>) -> String {
    let mut s = format!(
        "[escalation]\nstuck_after = \"0s\"\n\
         [escalation.targets.dba]\nroles = [{}]\n{}\
         [escalation.targets.sre-lead]\nroles = [{}]\n{}\
         [escalation.targets.eng-director]\nroles = [{}]\n\
         [escalation.targets.empty]\nroles = []\n\
         [escalation.policies.default]\nlevels = [\"dba\", \"sre-lead\", \"eng-director\"]\nack_timeout = \"{ack}\"\n",
        r.dba,
        if pagerduty.is_some() { "pagerduty_routing_key_env = \"SITREP_PD_DBA\"\n" } else { "" },
        r.lead,
        if pagerduty.is_some() { "pagerduty_routing_key_env = \"SITREP_PD_LEAD\"\n" } else { "" },
        r.director,
    );
    if let Some(url) = pagerduty {
        s.push_str(&format!("[pagerduty]\nevents_url = \"{url}\"\n"));
    }
    s
}

fn pd_env() -> Vec<(&'static str, String)> {
    vec![
        ("SITREP_PD_DBA", routing_key("RDBA")),
        ("SITREP_PD_LEAD", routing_key("RLEAD")),
    ]
}

/// Runs `/escalate` and returns the text it answered with (after the deferral, when deferred).
async fn escalate(
    fake: &FakeDiscord,
    user: u64,
    channel: u64,
    options: Value,
) -> (u8, bool, String) {
    let i = fake.slash(user, channel, "escalate", options);
    let first = fake.wait_response(&i).await;
    assert!(
        first.latency < Duration::from_secs(3),
        "{:?}",
        first.latency
    );
    if first.kind == 4 {
        return (4, first.ephemeral(), first.content().to_string());
    }
    assert_eq!(first.kind, 5, "paging waits on the network, so it defers");
    let text = fake
        .wait_until(Duration::from_secs(10), |f| {
            f.original(&i)
                .and_then(|m| m["content"].as_str().map(String::from))
                .filter(|c| !c.is_empty())
        })
        .await
        .expect("the deferral is filled in");
    (5, first.ephemeral(), text)
}

/// Presses a button and returns the private answer.
async fn press(fake: &FakeDiscord, user: u64, message: u64, custom_id: &str) -> String {
    let i = fake.click(user, message, custom_id);
    let first = fake.wait_response(&i).await;
    assert!(
        first.latency < Duration::from_secs(3),
        "{:?}",
        first.latency
    );
    assert_eq!(first.kind, 5);
    assert!(first.ephemeral(), "button answers are private");
    fake.wait_until(Duration::from_secs(10), |f| {
        f.original(&i)
            .and_then(|m| m["content"].as_str().map(String::from))
            .filter(|c| !c.is_empty())
    })
    .await
    .expect("the deferral is filled in")
}

fn id_of(m: &Value) -> u64 {
    m["id"].as_str().unwrap().parse().unwrap()
}

fn in_channel(m: &Value, channel: u64) -> bool {
    m["channel_id"].as_str().and_then(|s| s.parse().ok()) == Some(channel)
}

/// The escalation pages in a channel, oldest first.
fn pages(fake: &FakeDiscord, channel: u64) -> Vec<Value> {
    fake.messages(channel)
        .into_iter()
        .filter(|m| m["author"]["bot"] == true)
        .filter(|m| {
            m["content"]
                .as_str()
                .is_some_and(|c| c.contains("you are needed on"))
        })
        .collect()
}

async fn wait_pages(fake: &FakeDiscord, channel: u64, n: usize, within: Duration) -> Vec<Value> {
    fake.wait_until(within, |f| {
        let p = pages(f, channel);
        (p.len() >= n).then_some(p)
    })
    .await
    .unwrap_or_else(|| panic!("{n} pages did not arrive; got {:#?}", pages(fake, channel)))
}

fn embed_text(m: &Value) -> String {
    m["embeds"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["description"].as_str().unwrap_or_default().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether every ladder has stopped (status updates and a resolved channel's archival have
/// their own jobs).
fn no_escalation_jobs(store: &Store) -> bool {
    store
        .jobs()
        .unwrap()
        .iter()
        .all(|j| matches!(j.kind, JobKind::StatusUpdate | JobKind::Archive))
}

fn escalation_steps(store: &Store) -> Vec<String> {
    store
        .events(IncidentId(1))
        .unwrap()
        .iter()
        .filter(|e| e.kind.name().starts_with("escalat"))
        .map(|e| e.kind.describe())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_pings_exactly_its_roles_and_a_role_holder_acknowledges() {
    let (pd, url) = start_pagerduty().await;
    let fake = FakeDiscord::start().await;
    let r = roles(&fake);
    let w = world(&fake);
    let env = pd_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut bot = Bot::start_with_env(
        &fake,
        w,
        Mode::Proxy,
        &escalation_toml(&r, "6s", Some(&url)),
        &env,
    );
    fake.wait_ready().await;
    let dana = fake.add_member("dana", &[r.dba]);
    let bob = fake.add_member("bob", &[r.other]);
    let channel = fake.open_incident("Checkout @everyone down", "SEV1").await;

    let reason = format!("@everyone @here <@&{}> <@{bob}> replica lag 40s", r.other);
    let (kind, private, reply) = escalate(
        &fake,
        OWNER_ID,
        channel,
        json!({"target": "dba", "reason": reason}),
    )
    .await;
    assert_eq!(kind, 5);
    assert!(!private);
    assert!(
        reply.contains("escalated INC-1 to **dba** (policy default). If nobody acknowledges within 6s, **sre-lead** is paged next."),
        "{reply}"
    );
    let page = wait_pages(&fake, channel, 1, Duration::from_secs(10))
        .await
        .remove(0);
    let id = id_of(&page);
    // What the bot asked Discord for, and what Discord did with it.
    let sent = fake
        .requests_to("POST /channels/{channel}/messages")
        .into_iter()
        .find(|q| q.status == 200 && q.response["id"] == page["id"])
        .expect("the page's request");
    assert_eq!(
        sent.body["allowed_mentions"],
        json!({"parse": [], "users": [], "roles": [r.dba.to_string()], "replied_user": false})
    );
    let pinged = fake.pings(id);
    assert_eq!(pinged.roles, vec![r.dba]);
    assert!(pinged.users.is_empty() && !pinged.everyone, "{pinged:?}");
    assert_eq!(
        page["content"],
        format!("<@&{}> you are needed on **INC-1** (SEV1).", r.dba)
    );
    let body = embed_text(&page);
    for part in [
        "**Incident:** INC-1 · Checkout @everyone down".to_string(),
        "**Severity:** SEV1 (Critical)".into(),
        format!("**Commander:** <@{OWNER_ID}>"),
        format!("**Reason:** {reason}"),
    ] {
        assert!(body.contains(&part), "{part:?} in {body}");
    }
    let button = &page["components"][0]["components"][0];
    assert_eq!(button["label"], "Acknowledge");
    assert_eq!(button["custom_id"], "escalation:ack:1:1");

    // PagerDuty gets the page too, shaped as documented.
    let got = pd.wait_for("the trigger", |r| !r.is_empty()).await;
    let t = &got[0].body;
    assert_eq!(t["event_action"], "trigger");
    assert_eq!(t["routing_key"], routing_key("RDBA"));
    assert_eq!(t["dedup_key"], "sitrep/INC-1/dba");
    assert_eq!(t["payload"]["severity"], "critical");
    assert_eq!(t["payload"]["source"], "sitrep");
    let summary = t["payload"]["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("[INC-1 SEV1] Checkout @everyone down: dba paged"),
        "{summary}"
    );
    assert_eq!(
        t["links"][0]["href"],
        format!("https://discord.com/channels/{GUILD_ID}/{channel}")
    );

    // Someone without the role is refused, privately, and nothing changes.
    let refused = press(&fake, bob, id, "escalation:ack:1:1").await;
    assert!(
        refused.contains(&format!(
            "you are not allowed to acknowledge escalation #1 of INC-1; only members of <@&{}> or INC-1's commander may",
            r.dba
        )),
        "{refused}"
    );
    assert!(fake.message(id).unwrap()["components"]
        .as_array()
        .is_some_and(|c| !c.is_empty()));

    let ok = press(&fake, dana, id, "escalation:ack:1:1").await;
    assert!(
        ok.starts_with("You acknowledged escalation #1 of INC-1 after"),
        "{ok}"
    );
    let edited = fake
        .wait_until(Duration::from_secs(10), |f| {
            f.message(id)
                .filter(|m| embed_text(m).contains("**Acknowledged**"))
        })
        .await
        .expect("the page is edited");
    assert_eq!(edited["components"], json!([]), "no button left to press");
    assert!(
        embed_text(&edited).contains(&format!("**Acknowledged** by <@{dana}> at <t:")),
        "{}",
        embed_text(&edited)
    );
    let edit = fake
        .requests_to("PATCH /channels/{channel}/messages/{message}")
        .into_iter()
        .find(|q| q.path.ends_with(&id.to_string()))
        .unwrap();
    assert_eq!(edit.body["allowed_mentions"]["roles"], json!([]));
    pd.wait_for("the acknowledge", |r| {
        r.iter().any(|x| {
            x.body["event_action"] == "acknowledge" && x.body["dedup_key"] == "sitrep/INC-1/dba"
        })
    })
    .await;

    // The ladder stopped: past the 6s, nobody else is paged.
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(pages(&fake, channel).len(), 1);
    pd.assert_well_formed();
    bot.stop();
    let store = Store::open(&bot.db).unwrap();
    let ev = store.events(IncidentId(1)).unwrap();
    let acked = ev
        .iter()
        .find(|e| matches!(e.kind, EventKind::EscalationAcknowledged { escalation: 1 }))
        .expect("recorded");
    assert_eq!(acked.actor, Actor::User(UserRef::new(dana, "dana")));
    assert!(!ev
        .iter()
        .any(|e| matches!(e.kind, EventKind::EscalationTimedOut { .. })));
    assert!(no_escalation_jobs(&store));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_page_climbs_and_a_restart_continues_at_the_right_level() {
    let fake = FakeDiscord::start().await;
    let r = roles(&fake);
    let w = world(&fake);
    let extra = escalation_toml(&r, "3s", None);
    let mut bot = Bot::start(&fake, w, Mode::Proxy, &extra);
    fake.wait_ready().await;
    let channel = fake.open_incident("Search slow", "SEV2").await;
    escalate(
        &fake,
        OWNER_ID,
        channel,
        json!({"target": "dba", "reason": "p99 at 4s"}),
    )
    .await;
    let two = wait_pages(&fake, channel, 2, Duration::from_secs(10)).await;
    assert_eq!(fake.pings(id_of(&two[1])).roles, vec![r.lead]);
    assert!(two[1]["content"]
        .as_str()
        .unwrap()
        .contains("nobody from **dba** acknowledged in time"));
    // Down across level 2's timeout.
    bot.stop();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(pages(&fake, channel).len(), 2);
    let mut bot = bot.restart(&fake, w, Mode::Proxy, &extra);
    let three = wait_pages(&fake, channel, 3, Duration::from_secs(15)).await;
    assert_eq!(fake.pings(id_of(&three[2])).roles, vec![r.director]);
    let told = fake
        .wait_message(|m| {
            in_channel(m, channel)
                && m["content"]
                    .as_str()
                    .is_some_and(|c| c.contains("nobody acknowledged escalation #1"))
        })
        .await;
    assert_eq!(
        fake.pings(id_of(&told)).users,
        vec![OWNER_ID],
        "the commander is told"
    );
    assert!(told["content"]
        .as_str()
        .unwrap()
        .contains("dba → sre-lead → eng-director paged, 3s each"));
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        pages(&fake, channel).len(),
        3,
        "each level paged once, restart or not"
    );
    bot.stop();
    assert_eq!(
        escalation_steps(&Store::open(&bot.db).unwrap()),
        [
            "Escalated to dba (level 1): p99 at 4s",
            "Escalation #1 not acknowledged at level 1",
            "Escalated to sre-lead (level 2): p99 at 4s",
            "Escalation #1 not acknowledged at level 2",
            "Escalated to eng-director (level 3): p99 at 4s",
            "Escalation #1 not acknowledged at level 3",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolving_stops_the_ladder_and_resolves_pagerduty() {
    let (pd, url) = start_pagerduty().await;
    let fake = FakeDiscord::start().await;
    let r = roles(&fake);
    let w = world(&fake);
    let env = pd_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut bot = Bot::start_with_env(
        &fake,
        w,
        Mode::Proxy,
        &escalation_toml(&r, "6s", Some(&url)),
        &env,
    );
    fake.wait_ready().await;
    let channel = fake.open_incident("Payments failing", "SEV2").await;
    escalate(
        &fake,
        OWNER_ID,
        channel,
        json!({"target": "sre-lead", "reason": "need a call"}),
    )
    .await;
    let page = wait_pages(&fake, channel, 1, Duration::from_secs(10))
        .await
        .remove(0);
    pd.wait_for("the trigger", |r| !r.is_empty()).await;
    assert_eq!(
        pd.received()[0].body["payload"]["severity"],
        "error",
        "SEV2"
    );
    let i = fake.slash(
        OWNER_ID,
        channel,
        "incident",
        json!({"resolve": {"summary": "rolled back"}}),
    );
    assert!(fake
        .wait_response(&i)
        .await
        .content()
        .contains("INC-1 is resolved"));
    let got = pd
        .wait_for("the resolve", |r| {
            r.iter().any(|x| x.body["event_action"] == "resolve")
        })
        .await;
    let resolve = got
        .iter()
        .find(|x| x.body["event_action"] == "resolve")
        .unwrap();
    assert_eq!(resolve.body["dedup_key"], "sitrep/INC-1/sre-lead");
    assert_eq!(resolve.body["routing_key"], routing_key("RLEAD"));
    fake.wait_until(Duration::from_secs(10), |f| {
        f.message(id_of(&page))
            .filter(|m| embed_text(m).contains("**Stopped:** INC-1 was resolved"))
    })
    .await
    .expect("the page says the ladder stopped");
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(
        pages(&fake, channel).len(),
        1,
        "nobody is paged after the resolve"
    );
    pd.assert_well_formed();
    bot.stop();
    let store = Store::open(&bot.db).unwrap();
    assert!(no_escalation_jobs(&store));
    assert_eq!(
        escalation_steps(&store),
        ["Escalated to sre-lead (level 1): need a call"],
        "no timeout after the resolve"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagerduty_failures_are_retried_or_shown_in_the_channel() {
    let (pd, url) = start_pagerduty().await;
    pd.answer("sitrep/INC-1/dba", &[429, 500]);
    pd.answer("sitrep/INC-1/sre-lead", &[400]);
    let fake = FakeDiscord::start().await;
    let r = roles(&fake);
    let w = world(&fake);
    let env = pd_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let _bot = Bot::start_with_env(
        &fake,
        w,
        Mode::Proxy,
        &escalation_toml(&r, "1m", Some(&url)),
        &env,
    );
    fake.wait_ready().await;
    let channel = fake.open_incident("Queue backlog", "SEV3").await;
    escalate(
        &fake,
        OWNER_ID,
        channel,
        json!({"target": "dba", "reason": "lag"}),
    )
    .await;
    let got = pd
        .wait_for("the accepted trigger", |r| {
            r.iter().any(|x| x.status == 202)
        })
        .await;
    let statuses: Vec<u16> = got.iter().map(|x| x.status).collect();
    assert_eq!(statuses, [429, 500, 202], "429 and 500 are retried");
    assert_eq!(got[2].body["payload"]["severity"], "warning", "SEV3");

    escalate(
        &fake,
        OWNER_ID,
        channel,
        json!({"target": "sre-lead", "reason": "call"}),
    )
    .await;
    let shown = fake
        .wait_message(|m| {
            in_channel(m, channel)
                && m["content"]
                    .as_str()
                    .is_some_and(|c| c.contains("PagerDuty did not take the page"))
        })
        .await;
    let text = shown["content"].as_str().unwrap();
    assert!(
        text.contains("**sre-lead** (escalation #2, level 1): PagerDuty refused the event (400): Event object is invalid"),
        "{text}"
    );
    assert!(!text.contains("RLEAD"), "the routing key stays secret");
    assert!(fake.pings(id_of(&shown)).nobody());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        pd.for_key("sitrep/INC-1/sre-lead").len(),
        1,
        "a 400 is never retried"
    );
    assert_eq!(pages(&fake, channel).len(), 2, "the Discord pages stand");
    pd.assert_well_formed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_escalations_are_refused_privately_and_page_nobody() {
    let fake = FakeDiscord::start().await;
    let r = roles(&fake);
    let w = world(&fake);
    let _bot = Bot::start(&fake, w, Mode::Proxy, &escalation_toml(&r, "1m", None));
    fake.wait_ready().await;
    let channel = fake.open_incident("DB down", "SEV1").await;
    // The opening posts go out first, so that the refusal injected below meets the page.
    for ch in [channel, w.stakeholders] {
        fake.wait_message(|m| in_channel(m, ch) && m["author"]["bot"] == true)
            .await;
    }
    for (place, options, needle) in [
        (
            channel,
            json!({"target": "dbb", "reason": "x"}),
            "`dbb` is not an escalation target; configured: dba, empty, eng-director, sre-lead",
        ),
        (
            channel,
            json!({"target": "dba", "reason": "x", "policy": "weekend"}),
            "`weekend` is not an escalation policy; configured: default",
        ),
        (
            GENERAL_CHANNEL_ID,
            json!({"target": "dba", "reason": "x"}),
            "/escalate works in an incident's own channel",
        ),
        (
            channel,
            json!({"target": "empty", "reason": "x"}),
            "escalation target `empty` has no roles configured",
        ),
    ] {
        let (kind, private, text) = escalate(&fake, OWNER_ID, place, options.clone()).await;
        assert_eq!(
            (kind, private),
            (4, true),
            "{options}: refused at once, privately"
        );
        assert!(text.contains(needle), "{options}: {text}");
    }
    let paged = fake
        .requests_to("POST /channels/{channel}/messages")
        .iter()
        .any(|q| {
            q.body["content"]
                .as_str()
                .is_some_and(|c| c.contains("you are needed"))
        });
    assert!(!paged, "nothing was paged");

    // Discord refuses the page itself, after the deferral: the public placeholder goes and the
    // escalator alone is told.
    // Two refusals: a post the outbox sends at the same moment may meet the first.
    fake.fail_next_n(
        "POST /channels/{channel}/messages",
        Fault::ServerError(403),
        2,
    );
    let i = fake.slash(
        OWNER_ID,
        channel,
        "escalate",
        json!({"target": "dba", "reason": "replica lag"}),
    );
    let first = fake.wait_response(&i).await;
    assert!(first.kind == 5 && !first.ephemeral(), "{:?}", first.data);
    let told = fake
        .wait_until(Duration::from_secs(10), |f| {
            f.followups(&i).into_iter().next()
        })
        .await
        .unwrap_or_else(|| {
            panic!(
                "the escalator is not told; original {:?}; requests {:#?}",
                fake.original(&i),
                fake.requests()
                    .iter()
                    .rev()
                    .take(8)
                    .map(|r| format!("{} {} {} {}", r.method, r.route, r.status, r.body))
                    .collect::<Vec<_>>()
            )
        });
    assert_eq!(told["flags"].as_u64().unwrap_or(0) & 64, 64, "{told}");
    assert!(
        told["content"]
            .as_str()
            .is_some_and(|c| c.starts_with("Sorry, something went wrong on our side")),
        "{told}"
    );
    assert!(fake.original_deleted(&i) && fake.original(&i).is_none());
    assert!(!fake.messages(channel).iter().any(|m| m["content"]
        .as_str()
        .is_some_and(|c| c.contains("went wrong"))));

    // Typing a target suggests the configured ones.
    let i = fake.autocomplete(
        OWNER_ID,
        channel,
        "escalate",
        json!({"target": "DB"}),
        "target",
    );
    let a = fake.wait_response(&i).await;
    assert_eq!(a.kind, 8);
    let names: Vec<&str> = a.data["choices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["value"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["dba"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_incident_gets_a_nudge_whose_buttons_escalate() {
    let fake = FakeDiscord::start().await;
    let r = roles(&fake);
    let extra =
        escalation_toml(&r, "1m", None).replace("stuck_after = \"0s\"", "stuck_after = \"2s\"");
    let w = world(&fake);
    let _bot = Bot::start(&fake, w, Mode::Proxy, &extra);
    fake.wait_ready().await;
    let carol = fake.add_member("carol", &[]);
    let channel = fake.open_incident("Logins failing", "SEV1").await;
    let nudge = fake
        .wait_message(|m| {
            in_channel(m, channel)
                && m["content"]
                    .as_str()
                    .is_some_and(|c| c.contains("has been investigating for"))
        })
        .await;
    assert_eq!(fake.pings(id_of(&nudge)).users, vec![OWNER_ID]);
    let labels: Vec<&str> = nudge["components"][0]["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["label"].as_str().unwrap())
        .collect();
    assert_eq!(
        labels,
        [
            "Escalate to dba",
            "Escalate to eng-director",
            "Escalate to sre-lead"
        ],
        "targets that can page someone"
    );
    let answer = press(&fake, carol, id_of(&nudge), "escalation:nudge:1:dba").await;
    assert!(
        answer.starts_with("carol escalated INC-1 to **dba**"),
        "{answer}"
    );
    let page = wait_pages(&fake, channel, 1, Duration::from_secs(10))
        .await
        .remove(0);
    assert_eq!(fake.pings(id_of(&page)).roles, vec![r.dba]);
    assert!(embed_text(&page).contains("escalated from sitrep's suggestion"));
}

#[test]
fn check_config_names_a_routing_key_that_is_not_set() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sitrep.toml");
    let r = Roles {
        dba: 11,
        lead: 12,
        director: 13,
        other: 14,
    };
    std::fs::write(
        &config,
        escalation_toml(&r, "10m", Some("http://127.0.0.1:9/v2/enqueue")),
    )
    .unwrap();
    let run = |env: &[(&str, &str)]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_sitrep"))
            .args(["check-config", "--console", "--config"])
            .arg(&config)
            .env_remove("SITREP_PD_DBA")
            .env_remove("SITREP_PD_LEAD")
            .envs(env.iter().copied())
            .output()
            .unwrap()
    };
    // The console check passes; the full check (what `run` does at startup) names the variables.
    assert!(run(&[]).status.success());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sitrep"))
        .args(["check-config", "--config"])
        .arg(&config)
        .env("SITREP_DISCORD_TOKEN", "x")
        .env("SITREP_PD_DBA", routing_key("RDBA"))
        .env_remove("SITREP_PD_LEAD")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("problem: SITREP_PD_LEAD is not set, but [escalation.targets.sre-lead] pagerduty_routing_key_env names it"),
        "{stderr}"
    );
    assert!(!stderr.contains("SITREP_PD_DBA is not set"), "{stderr}");
    assert!(!stderr.contains("RDBA"), "{stderr}");
}

#[test]
fn the_example_config_documents_escalation() {
    use sitrep::config::{Config, Secrets};
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let none = BTreeMap::new();
    let c = Config::from_parts(Some(("config.example.toml", &text)), &none).unwrap();
    let defaults = Config::default();
    assert_eq!(c.escalation, defaults.escalation);
    assert_eq!(c.pagerduty, defaults.pagerduty);
    assert!(text.contains("SITREP_PD_DBA"));
    // The commented-out targets and policy are valid once uncommented.
    let at = text.find("[escalation]").unwrap();
    let own: String = text[..at].to_string()
        + &text[at..]
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest) if rest.starts_with("[escalation.") || is_setting(rest) => rest,
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n");
    let c = Config::from_parts(Some(("config.example.toml", &own)), &none).unwrap();
    assert_eq!(c.escalation.targets.len(), 4);
    assert_eq!(c.escalation.default_policy.as_deref(), Some("default"));
    assert_eq!(
        c.escalation.policies["default"].levels,
        ["sre-oncall", "sre-lead", "eng-director"]
    );
    assert!(sitrep::preflight::problems(&c, &Secrets::default(), false).is_empty());
    let running = sitrep::preflight::problems(&c, &Secrets::default(), true).join("\n");
    assert!(running.contains("SITREP_PD_SRE is not set"), "{running}");
}

/// `name = value`, as a config line has it.
fn is_setting(line: &str) -> bool {
    line.split_once(" = ").is_some_and(|(k, _)| {
        !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
    })
}
