//! Alerts end to end: a real Prometheus rule fires, a real Alertmanager groups it and posts to
//! the bot's `POST /hooks/alertmanager`, the triage post appears in the Discord fake, Declare
//! opens the incident with its impact from the alert's start, and the resolution suggests
//! monitoring. Also Grafana's payload, strangers, bad bodies, retries and a storm of groups.

mod support;

use axum::routing::get;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::alertmanager::AlertmanagerFixture;
use support::bot::{world, Bot, Mode};
use support::discord::{channel_link, ChannelKind, FakeDiscord, OWNER_ID};
use support::prometheus::{free_port, PrometheusFixture};

const TOKEN: &str = "alerts-token-0123456789abcdef";
const GRAFANA: &str = include_str!("fixtures/grafana-webhook.json");

const RULES: &str = r#"groups:
  - name: checkout
    interval: 1s
    rules:
      - alert: CheckoutQueueBacklog
        expr: queue_depth{service="checkout"} > 100
        labels:
          severity: critical
          service: checkout
        annotations:
          summary: Checkout queue is backing up
          description: "queue_depth is {{ $value }} jobs"
"#;

fn config(triage: u64) -> String {
    format!("[alerts]\nenabled = true\ntriage_channel = {triage}\nflood_posts = 5\nflood_window = \"1m\"\n")
}

/// The bot with the alert hook on, listening on a free port; returns it, the hook's URL and
/// its channels.
async fn bot(fake: &FakeDiscord, triage: u64) -> (Bot, String, support::bot::World) {
    let w = world(fake);
    let listen = format!("127.0.0.1:{}", free_port());
    let bot = Bot::start_with_env(
        fake,
        w,
        Mode::Proxy,
        &config(triage),
        &[
            ("SITREP_HTTP__LISTEN", listen.as_str()),
            ("SITREP_ALERTS_TOKEN", TOKEN),
        ],
    );
    fake.wait_ready().await;
    let hook = format!("http://{listen}/hooks/alertmanager");
    // The edge listens shortly after the gateway is ready.
    let client = reqwest::Client::new();
    for _ in 0..100 {
        if client
            .get(format!("http://{listen}/healthz"))
            .send()
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (bot, hook, w)
}

/// A `/metrics` page with one gauge whose value the test sets.
struct Gauge {
    value: Arc<AtomicU64>,
    addr: String,
}

impl Gauge {
    async fn start(value: u64) -> Gauge {
        let v = Arc::new(AtomicU64::new(value));
        let read = v.clone();
        let app = axum::Router::new().route(
            "/metrics",
            get(move || {
                let read = read.clone();
                async move {
                    format!(
                        "# TYPE queue_depth gauge\nqueue_depth{{service=\"checkout\"}} {}\n",
                        read.load(Ordering::SeqCst)
                    )
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Gauge { value: v, addr }
    }

    fn set(&self, v: u64) {
        self.value.store(v, Ordering::SeqCst);
    }
}

fn text_of(m: &Value) -> String {
    let mut t = m["content"].as_str().unwrap_or("").to_string();
    for e in m["embeds"].as_array().into_iter().flatten() {
        t.push('\n');
        t.push_str(e["title"].as_str().unwrap_or(""));
        t.push('\n');
        t.push_str(e["description"].as_str().unwrap_or(""));
    }
    t
}

fn buttons(m: &Value) -> Vec<String> {
    m["components"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
        .filter_map(|b| b["custom_id"].as_str().map(String::from))
        .collect()
}

/// The first message of `channel` whose text has `needle`, once there is one.
async fn message_with(fake: &FakeDiscord, channel: u64, needle: &str, secs: u64) -> Value {
    fake.wait_until(Duration::from_secs(secs), |f| {
        f.messages(channel)
            .into_iter()
            .find(|m| text_of(m).contains(needle))
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "no message with {needle:?} in {channel}: {:#?}",
            fake.messages(channel)
                .iter()
                .map(text_of)
                .collect::<Vec<_>>()
        )
    })
}

async fn send(hook: &str, auth: Option<&str>, body: impl Into<reqwest::Body>) -> (u16, String) {
    let mut req = reqwest::Client::new()
        .post(hook)
        .header("content-type", "application/json")
        .body(body);
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

/// Declares a body of `len` bytes and waits for the answer before sending any of it, as a
/// client that sends `Expect: 100-continue` does: the hook refuses by the declared length, and
/// a client still writing when the refusal closes the connection would see a broken pipe
/// instead of the answer.
async fn send_oversized(hook: &str, len: usize) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let url = reqwest::Url::parse(hook).unwrap();
    let addr = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: sitrep\r\nContent-Type: application/json\r\n\
         Authorization: {}\r\nContent-Length: {len}\r\nExpect: 100-continue\r\n\
         Connection: close\r\n\r\n",
        url.path(),
        bearer()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer}"));
    (status, answer)
}

fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prometheus_alert_through_alertmanager_becomes_a_declared_incident_and_resolves() {
    let fake = FakeDiscord::start().await;
    let triage = fake.add_channel("alerts", ChannelKind::Text, None);
    let (bot, hook, _) = bot(&fake, triage).await;
    let gauge = Gauge::start(120).await;
    let am = AlertmanagerFixture::start(&hook, TOKEN);
    let _prom = PrometheusFixture::alerting(&gauge.addr, RULES, &am.addr());

    // Prometheus fires within a second or two, Alertmanager waits group_wait (1s), then posts.
    let post = message_with(&fake, triage, "Checkout queue is backing up", 45).await;
    let text = text_of(&post);
    assert!(text.contains("Alert #1"), "{text}");
    assert!(
        text.contains("CheckoutQueueBacklog — firing since"),
        "{text}"
    );
    assert!(text.contains("would open as SEV1"), "{text}");
    assert!(text.contains("`service=checkout`"), "{text}");
    assert!(text.contains("[Silence it](<http://"), "{text}");
    assert_eq!(
        buttons(&post),
        ["alert:declare:1", "alert:attach:1", "alert:dismiss:1"]
    );

    // When the alert started, as Alertmanager has it.
    let alerts: Value = reqwest::get(format!("{}/api/v2/alerts", am.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let starts_at = alerts[0]["startsAt"]
        .as_str()
        .expect("one alert")
        .to_string();
    let started = chrono::DateTime::parse_from_rfc3339(&starts_at)
        .unwrap()
        .timestamp();

    let press = fake.click(
        OWNER_ID,
        post["id"].as_str().unwrap().parse().unwrap(),
        "alert:declare:1",
    );
    let opened = fake
        .wait_until(Duration::from_secs(15), |f| {
            f.original(&press)
                .and_then(|m| m["content"].as_str().map(String::from))
                .filter(|c| c.contains("Opened"))
        })
        .await
        .unwrap_or_else(|| panic!("Declare did not open: {:?}", fake.original(&press)));
    assert!(opened.contains("Opened INC-1 (SEV1)"), "{opened}");
    assert!(opened.contains("You are the commander"), "{opened}");
    let channel = channel_link(&opened).expect("a channel link");

    // The opening post: the alert's text as title and summary, impact from startsAt.
    let opening = message_with(&fake, channel, "Impact started", 10).await;
    let opening = text_of(&opening);
    assert!(
        opening.contains("Checkout queue is backing up"),
        "{opening}"
    );
    assert!(opening.contains("queue_depth is 120 jobs"), "{opening}");
    let impact: i64 = opening
        .split("**Impact started:** <t:")
        .nth(1)
        .and_then(|r| r.split(':').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no impact time in {opening}"));
    assert_eq!(impact, started, "impact began when the alert started");
    assert!(opening.contains("**TTD:**"), "{opening}");

    // The triage post now says where the alert went, without buttons.
    let edited = message_with(&fake, triage, "Tracked as INC-1", 10).await;
    assert!(buttons(&edited).is_empty(), "{edited}");

    // Back to normal: Prometheus resolves, Alertmanager says so, the commander is asked.
    gauge.set(7);
    let news = message_with(&fake, channel, "Every alert of INC-1 has resolved", 45).await;
    let news_text = text_of(&news);
    assert!(
        news_text.contains("Alert CheckoutQueueBacklog resolved"),
        "{news_text}"
    );
    assert!(news_text.contains(&format!("<@{OWNER_ID}>")), "{news_text}");
    assert_eq!(buttons(&news), ["alert:monitor:1", "alert:resolve:1"]);
    let monitor = fake.click(
        OWNER_ID,
        news["id"].as_str().unwrap().parse().unwrap(),
        "alert:monitor:1",
    );
    let answer = fake.wait_response(&monitor).await;
    assert!(!answer.ephemeral(), "{:?}", answer.content());
    let status = message_with(&fake, channel, "Every alert has resolved; monitoring.", 10).await;
    assert!(!text_of(&status).is_empty());
    drop(bot);
    drop(am);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hook_refuses_strangers_and_bad_bodies_and_takes_grafana_once() {
    let fake = FakeDiscord::start().await;
    let triage = fake.add_channel("alerts", ChannelKind::Text, None);
    let (bot, hook, w) = bot(&fake, triage).await;

    for auth in [
        None,
        Some("Bearer wrong-token-0123456789"),
        Some("Basic dXNlcjpwYXNz"),
        Some(TOKEN),
    ] {
        let (status, body) = send(&hook, auth, GRAFANA).await;
        assert_eq!(status, 401, "{auth:?}: {body}");
        assert!(body.contains("Authorization: Bearer"), "{body}");
    }
    let (status, body) = send(
        &hook,
        Some(&bearer()),
        "{\"status\": \"firing\", \"alerts\": [",
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("not an Alertmanager or Grafana webhook payload"),
        "{body}"
    );
    let (status, body) = send(&hook, Some(&bearer()), r#"{"status":"firing","alerts":[]}"#).await;
    assert_eq!((status, body.trim()), (400, "the payload has no alerts"));
    let (status, body) = send_oversized(&hook, 2 << 20).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("larger than"), "{body}");
    assert!(
        fake.messages(triage).is_empty(),
        "nothing refused was posted"
    );

    // Grafana's webhook contact point, as its documentation records a delivery.
    let (status, body) = send(&hook, Some(&bearer()), GRAFANA).await;
    assert_eq!((status, body.trim()), (200, "ok: triaged"));
    let post = message_with(&fake, triage, "This alert was triggered for zone us-1", 10).await;
    let text = text_of(&post);
    assert!(text.contains("Firing: 2 of 2"), "{text}");
    assert!(
        text.contains("High CPU usage — firing since 2021-10-12 07:56:03 UTC"),
        "{text}"
    );
    assert!(
        text.contains("[Silence it](<https://play.grafana.org/alerting/silence/new"),
        "{text}"
    );
    // A retry changes nothing: no second post, no edit.
    let (status, body) = send(&hook, Some(&bearer()), GRAFANA).await;
    assert_eq!((status, body.trim()), (200, "ok: unchanged"));
    // After a restart too: the groups are on disk.
    let mut bot = bot;
    bot.stop();
    let listen = hook
        .trim_start_matches("http://")
        .trim_end_matches("/hooks/alertmanager")
        .to_string();
    let _again = bot.restart_with_env(
        &fake,
        w,
        &config(triage),
        &[
            ("SITREP_HTTP__LISTEN", listen.as_str()),
            ("SITREP_ALERTS_TOKEN", TOKEN),
        ],
    );
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if client
            .get(format!("http://{listen}/healthz"))
            .send()
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, body) = send(&hook, Some(&bearer()), GRAFANA).await;
    assert_eq!((status, body.trim()), (200, "ok: unchanged"));
    assert_eq!(fake.messages(triage).len(), 1);

    // The group resolves: the same post is edited, never a second one.
    let resolved = GRAFANA
        .replace("\"status\": \"firing\"", "\"status\": \"resolved\"")
        .replace(
            "\"endsAt\": \"0001-01-01T00:00:00Z\"",
            "\"endsAt\": \"2021-10-12T10:10:00Z\"",
        );
    let (status, body) = send(&hook, Some(&bearer()), resolved).await;
    assert_eq!((status, body.trim()), (200, "ok: triaged"));
    let post = message_with(&fake, triage, "Resolved: all 2 alerts", 10).await;
    assert_eq!(fake.messages(triage).len(), 1);
    assert!(text_of(&post).contains("High CPU usage — resolved at 2021-10-12 10:10:00 UTC"));
}

/// One delivery of its own group, as Alertmanager would send for alert `n`.
fn alertmanager_group(n: usize) -> String {
    json!({
        "version": "4",
        "groupKey": format!("{{}}:{{alertname=\"Storm{n}\"}}"),
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "sitrep",
        "groupLabels": {"alertname": format!("Storm{n}")},
        "commonLabels": {"alertname": format!("Storm{n}"), "severity": "warning"},
        "commonAnnotations": {"summary": format!("Storm alert {n}")},
        "externalURL": "http://alertmanager.example:9093",
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": format!("Storm{n}"), "severity": "warning"},
            "annotations": {"summary": format!("Storm alert {n}")},
            "startsAt": "2026-12-07T10:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.example:9090/graph",
            "fingerprint": format!("{n:016x}")
        }]
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_500_groups_gets_five_posts_and_a_summary() {
    let fake = FakeDiscord::start().await;
    let triage = fake.add_channel("alerts", ChannelKind::Text, None);
    let (_bot, hook, _) = bot(&fake, triage).await;
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for chunk in (0..500).collect::<Vec<_>>().chunks(63) {
        let (hook, chunk) = (hook.clone(), chunk.to_vec());
        tasks.push(tokio::spawn(async move {
            for n in chunk {
                let (status, body) = send(&hook, Some(&bearer()), alertmanager_group(n)).await;
                assert_eq!(status, 200, "{n}: {body}");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let took = started.elapsed();
    let summary = message_with(&fake, triage, "Alert flood", 30).await;
    let messages = fake.messages(triage);
    let own = messages
        .iter()
        .filter(|m| text_of(m).contains("**Alert #"))
        .count();
    assert_eq!(own, 5, "five groups get a post of their own");
    let summarized: usize = messages
        .iter()
        .filter_map(|m| {
            let t = text_of(m);
            t.split("**Alert flood:** ")
                .nth(1)?
                .split(' ')
                .next()?
                .parse::<usize>()
                .ok()
        })
        .sum();
    assert_eq!(summarized, 495, "{}", text_of(&summary));
    // One summary per gathering (5 s) at most, however long the storm took.
    let summaries = messages.len() - own;
    assert!(
        summaries as u64 <= 1 + took.as_secs() / 5,
        "{summaries} summaries in {took:?}"
    );
    eprintln!("500 deliveries took {took:?}");
}

/// The console, for people without Alertmanager: a payload from a file, then the buttons.
#[test]
fn the_console_replays_a_payload_from_a_file_and_declares_it() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let payload = dir.path().join("grafana.json");
    std::fs::write(&payload, GRAFANA).unwrap();
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{\"alerts\": 3}").unwrap();
    let script = format!(
        "replay {p}\npress 1\nreplay {p}\nreplay {b}\nreplay {missing}\n/incident status\n",
        p = payload.display(),
        b = broken.display(),
        missing = dir.path().join("nope.json").display()
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_sitrep"))
        .args(["console", "--no-http", "--db"])
        .arg(dir.path().join("db"))
        .env("USER", "alice")
        .env("TZ", "UTC")
        .env_remove("SITREP_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the sitrep binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    support::assert_in_order(
        &text,
        &[
            "Alert #1: This alert was triggered for zone us-1",
            "[1] Declare",
            "alert replayed: triaged",
            "Tracked as INC-1",
            "Opened INC-1 (SEV4)",
            "You are the commander",
            "Impact started:",
            "2021-10-12 07:51 UTC",
            "alert replayed: nothing new in it",
            "not an Alertmanager or Grafana webhook payload",
            "cannot read",
            "High memory usage firing since 2021-10-12 07:51 UTC · High CPU usage firing since 2021-10-12 07:56 UTC",
        ],
    );
}

/// The example's `[alerts]` section is the defaults but for the default route's severity, and
/// its commented-out routes are valid once used.
#[test]
fn the_example_config_documents_alerts() {
    use sitrep::config::{Config, RouteAction, Secrets};
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let none = std::collections::BTreeMap::new();
    let c = Config::from_parts(Some(("config.example.toml", &text)), &none).unwrap();
    let mut defaults = Config::default().alerts;
    defaults.default_route.severity = Some("SEV3".into());
    assert_eq!(c.alerts, defaults);
    assert!(text.contains("SITREP_ALERTS_TOKEN"));
    // From the section to the blank line after its last commented route.
    let from = text.find("[alerts]").unwrap();
    let last_route = text.rfind("# [[alerts.routes]]").unwrap();
    let to = last_route + text[last_route..].find("\n\n").unwrap();
    let used: String = text[from..to]
        .lines()
        .map(|l| {
            l.strip_prefix("# ")
                .filter(|r| {
                    r.starts_with("[[alerts.")
                        || r.split_once(" = ").is_some_and(|(k, _)| {
                            k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                        })
                })
                .unwrap_or(l)
        })
        .collect::<Vec<_>>()
        .join("\n");
    let own = format!(
        "{}{used}\n[escalation.targets.sre-oncall]\nroles = [1]\n",
        &text[..from]
    );
    let c = Config::from_parts(Some(("config.example.toml", &own)), &none).unwrap();
    assert_eq!(c.alerts.routes.len(), 2);
    assert_eq!(c.alerts.routes[1].action, RouteAction::Declare);
    assert_eq!(c.alerts.triage_channel, Some(123456789012345678));
    let secrets =
        Secrets::from_env(&[("SITREP_ALERTS_TOKEN".to_string(), TOKEN.to_string())].into());
    let problems = sitrep::preflight::problems(&c, &secrets, false);
    assert!(problems.is_empty(), "{problems:?}");
}
