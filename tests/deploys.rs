//! Deploys end to end: the signed webhook on a real HTTP edge, GitHub through a strict local
//! stand-in that answers in GitHub's documented shapes, and `/deploys` through the command layer.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Value};
use sitrep::app::App;
use sitrep::chat::console::ConsoleChat;
use sitrep::commands::{self, CommandInput, InputOption, InputValue, Invocation};
use sitrep::config::{Config, Secrets};
use sitrep::domain::UserRef;
use sitrep::integrations::deploys::sign;
use sitrep::integrations::github::{self, GitHubPoller, PollReport};
use sitrep::render::TimeStyle;
use sitrep::store::{Deploy, DeploySource, Store};
use sitrep::testkit::TestApp;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

const SECRET: &str = "whsec-test-0123456789";
const TOKEN: &str = "ghp_test_token_abcdef";

fn noon() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).unwrap()
}

/// The test kit's app on the console chat, its clock standing at noon: the webhook's replay
/// window and `/deploys since:` read it.
fn kit(config: Config) -> TestApp<ConsoleChat> {
    TestApp::builder()
        .config(config)
        .clock_at(noon())
        .time_style(TimeStyle::Plain)
        .build_console()
}

fn app(config: Config) -> App {
    kit(config).app
}

fn webhook_config(on: bool) -> Config {
    let mut c = Config::default();
    c.deploys.webhook = on;
    c
}

fn secrets(webhook: Option<&str>) -> Secrets {
    let mut env = BTreeMap::new();
    if let Some(s) = webhook {
        env.insert("SITREP_DEPLOY_WEBHOOK_SECRET".to_string(), s.to_string());
    }
    Secrets::from_env(&env)
}

/// A running HTTP edge; dropping `stop` (or sending on it) shuts it down.
struct Edge {
    addr: SocketAddr,
    base: String,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Edge {
    async fn start(app: App, secrets: Secrets) -> Edge {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(sitrep::http::serve(app, listener, secrets, async move {
            let _ = stopped.await;
        }));
        Edge {
            addr,
            base: format!("http://{addr}"),
            stop: Some(stop),
            task,
        }
    }

    async fn shut_down(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let done = tokio::time::timeout(std::time::Duration::from_secs(5), self.task)
            .await
            .expect("the edge stops when told to");
        done.unwrap().unwrap();
    }
}

/// Sends `body` to the webhook with the given headers; returns the status and the body text.
async fn post(
    edge: &Edge,
    timestamp: Option<String>,
    signature: Option<String>,
    body: Vec<u8>,
) -> (StatusCode, String) {
    let mut req = reqwest::Client::new()
        .post(format!("{}/hooks/deploy", edge.base))
        .header("content-type", "application/json")
        .body(body);
    if let Some(t) = timestamp {
        req = req.header("X-Sitrep-Timestamp", t);
    }
    if let Some(s) = signature {
        req = req.header("X-Sitrep-Signature", s);
    }
    let resp = req.send().await.unwrap();
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
    (status, resp.text().await.unwrap())
}

/// Timestamp and signature headers as a CI pipeline computes them.
fn signed(at: DateTime<Utc>, body: &[u8]) -> (Option<String>, Option<String>) {
    (
        Some(at.timestamp().to_string()),
        Some(sign(SECRET.as_bytes(), at.timestamp(), body)),
    )
}

fn notice() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "service": "checkout",
        "version": "2.3.1",
        "commit": "9f2c1e7a0b",
        "author": "alice",
        "environment": "production",
        "status": "success",
        "url": "https://ci.example.com/pipelines/812",
        "time": "2026-11-21T11:58:00Z"
    }))
    .unwrap()
}

#[tokio::test]
async fn a_signed_notice_is_stored_once() {
    let app = app(webhook_config(true));
    let store = app.store.clone();
    let edge = Edge::start(app.clone(), secrets(Some(SECRET))).await;

    let body = notice();
    let (ts, sig) = signed(noon(), &body);
    let (status, text) = post(&edge, ts.clone(), sig.clone(), body.clone()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{text}");
    assert!(text.contains("checkout 2.3.1 to production"), "{text}");
    let stored = store
        .deploys(noon() - Duration::hours(1), None, None)
        .unwrap();
    assert_eq!(stored.len(), 1);
    let d = &stored[0];
    assert_eq!(d.source, DeploySource::Webhook);
    assert_eq!(
        (
            d.service.as_str(),
            d.version.as_str(),
            d.environment.as_deref()
        ),
        ("checkout", "2.3.1", Some("production"))
    );
    assert_eq!(d.commit.as_deref(), Some("9f2c1e7a0b"));
    assert_eq!(d.author.as_deref(), Some("alice"));
    assert_eq!(d.status.as_deref(), Some("success"));
    assert_eq!(
        d.url.as_deref(),
        Some("https://ci.example.com/pipelines/812")
    );
    assert_eq!(
        d.time,
        Utc.with_ymd_and_hms(2026, 11, 21, 11, 58, 0).unwrap()
    );
    let listed = deploys_command(&app, &[]).await.unwrap();
    assert!(
        listed.contains("**checkout** 2.3.1 → production · ✅ success · by alice"),
        "{listed}"
    );

    // The same delivery again, byte for byte, is a replay.
    let before = store.dump().unwrap();
    let (status, text) = post(&edge, ts, sig, body.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{text}");
    assert!(text.contains("accepted already"), "{text}");
    assert_eq!(store.dump().unwrap(), before);

    // Signed afresh, the same deploy is recognised and not duplicated.
    let (ts, sig) = signed(noon() + Duration::seconds(1), &body);
    let (status, text) = post(&edge, ts, sig, body).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains("already recorded"), "{text}");
    assert_eq!(store.dump().unwrap(), before);
    edge.shut_down().await;
}

#[tokio::test]
async fn a_replay_after_a_restart_adds_nothing() {
    let app = app(webhook_config(true));
    let store = app.store.clone();
    // No `time`: the deploy is dated by its signed timestamp, so a replay names the same deploy.
    let body = br#"{"service": "search", "version": "v7"}"#.to_vec();
    let (ts, sig) = signed(noon() - Duration::seconds(10), &body);

    let edge = Edge::start(app.clone(), secrets(Some(SECRET))).await;
    let (status, text) = post(&edge, ts.clone(), sig.clone(), body.clone()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{text}");
    edge.shut_down().await;
    let before = store.dump().unwrap();
    let d = &store
        .deploys(noon() - Duration::hours(1), None, None)
        .unwrap()[0];
    assert_eq!(d.time, noon() - Duration::seconds(10));

    // A new process has forgotten the signatures it saw; the store has not.
    let edge = Edge::start(app, secrets(Some(SECRET))).await;
    let (status, text) = post(&edge, ts, sig, body).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(store.dump().unwrap(), before);
    edge.shut_down().await;
}

/// A notice to refuse, and what the answer must say.
struct Case {
    name: &'static str,
    timestamp: Option<String>,
    signature: Option<String>,
    body: Vec<u8>,
    status: StatusCode,
    says: &'static str,
}

/// A correctly signed case; a test then breaks the part it is about.
fn case(
    name: &'static str,
    at: DateTime<Utc>,
    body: &[u8],
    status: StatusCode,
    says: &'static str,
) -> Case {
    let (timestamp, signature) = signed(at, body);
    Case {
        name,
        timestamp,
        signature,
        body: body.to_vec(),
        status,
        says,
    }
}

#[tokio::test]
async fn refused_notices_leave_the_store_as_it_was() {
    let app = app(webhook_config(true));
    let store = app.store.clone();
    let edge = Edge::start(app, secrets(Some(SECRET))).await;
    let body = notice();
    let before = store.dump().unwrap();

    let stale = noon() - Duration::seconds(301);
    let oversized = {
        let mut v = notice();
        v.pop();
        v.extend_from_slice(br#","padding":""#);
        v.resize(64 * 1024 + 1 - 2, b'x');
        v.extend_from_slice(br#""}"#);
        assert_eq!(v.len(), 64 * 1024 + 1);
        v
    };
    let forged = sign(b"not the secret", noon().timestamp(), &body);
    let mut tampered = body.clone();
    tampered[20] ^= 1;
    let unauthorized = StatusCode::UNAUTHORIZED;
    let bad = StatusCode::BAD_REQUEST;
    let cases = vec![
        Case {
            signature: Some(forged),
            ..case(
                "bad signature",
                noon(),
                &body,
                unauthorized,
                "X-Sitrep-Signature does not match",
            )
        },
        Case {
            body: tampered,
            ..case(
                "tampered body",
                noon(),
                &body,
                unauthorized,
                "does not match",
            )
        },
        case(
            "stale timestamp",
            stale,
            &body,
            unauthorized,
            "stale timestamp",
        ),
        case(
            "timestamp from the future",
            noon() + Duration::seconds(400),
            &body,
            unauthorized,
            "stale timestamp",
        ),
        Case {
            timestamp: None,
            ..case(
                "missing timestamp",
                noon(),
                &body,
                unauthorized,
                "missing X-Sitrep-Timestamp",
            )
        },
        Case {
            signature: None,
            ..case(
                "missing signature",
                noon(),
                &body,
                unauthorized,
                "missing X-Sitrep-Signature",
            )
        },
        Case {
            timestamp: None,
            signature: None,
            ..case("no headers", noon(), &body, unauthorized, "missing")
        },
        Case {
            signature: Some("sha1=abc".into()),
            ..case(
                "malformed signature",
                noon(),
                &body,
                unauthorized,
                "sha256=<64 hex digits>",
            )
        },
        case(
            "oversized",
            noon(),
            &oversized,
            StatusCode::PAYLOAD_TOO_LARGE,
            "larger than 65536 bytes",
        ),
        case(
            "malformed JSON",
            noon(),
            br#"{"service": "checkout", "version": "#,
            bad,
            "not valid JSON",
        ),
        case(
            "missing field",
            noon(),
            br#"{"service": "checkout"}"#,
            bad,
            "missing field `version`",
        ),
        case(
            "misspelt field",
            noon(),
            br#"{"service": "checkout", "version": "1", "enviroment": "prod"}"#,
            bad,
            "unknown field `enviroment`",
        ),
        case(
            "unsafe link",
            noon(),
            br#"{"service": "checkout", "version": "1", "url": "javascript:alert(1)"}"#,
            bad,
            "http or https",
        ),
    ];
    for c in cases {
        let (status, text) = post(&edge, c.timestamp, c.signature, c.body).await;
        let name = c.name;
        assert_eq!(status, c.status, "{name}: {text}");
        assert!(
            text.contains(c.says),
            "{name}: {:?} not in {text:?}",
            c.says
        );
        assert!(!text.contains(SECRET), "{name}: the secret leaked: {text}");
        assert_eq!(store.dump().unwrap(), before, "{name} changed the store");
    }

    // A notice refused for its content was not used up: corrected, it goes through.
    let (ts, sig) = signed(noon(), &body);
    let (status, text) = post(&edge, ts, sig, body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{text}");
    edge.shut_down().await;
}

#[tokio::test]
async fn an_oversized_body_without_a_length_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = app(webhook_config(true));
    let store = app.store.clone();
    let edge = Edge::start(app, secrets(Some(SECRET))).await;
    let before = store.dump().unwrap();
    let mut s = tokio::net::TcpStream::connect(edge.addr).await.unwrap();
    let (ts, sig) = signed(noon(), b"{}");
    let head = format!(
        "POST /hooks/deploy HTTP/1.1\r\nHost: sitrep\r\nTransfer-Encoding: chunked\r\n\
         X-Sitrep-Timestamp: {}\r\nX-Sitrep-Signature: {}\r\nConnection: close\r\n\r\n",
        ts.unwrap(),
        sig.unwrap()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    // Exactly the limit in one chunk, then one byte more: only the stream's length tells.
    let mut chunk = b"10000\r\n".to_vec();
    chunk.resize(chunk.len() + 64 * 1024, b' ');
    chunk.extend_from_slice(b"\r\n1\r\n \r\n0\r\n\r\n");
    // The server may answer and close before reading everything; that is its right.
    let _ = s.write_all(&chunk).await;
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("larger than 65536 bytes"), "{answer}");
    assert_eq!(store.dump().unwrap(), before);
    edge.shut_down().await;
}

#[tokio::test]
async fn health_and_a_webhook_that_is_off_or_unkeyed() {
    let off = Edge::start(app(webhook_config(false)), secrets(Some(SECRET))).await;
    let http = reqwest::Client::new();
    let health = http
        .get(format!("{}/healthz", off.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    assert_eq!(health.text().await.unwrap().trim(), "ok");
    let body = notice();
    let (ts, sig) = signed(noon(), &body);
    let (status, _) = post(&off, ts.clone(), sig.clone(), body.clone()).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the webhook is off by default"
    );
    off.shut_down().await;

    let app = app(webhook_config(true));
    let store = app.store.clone();
    let unkeyed = Edge::start(app, secrets(None)).await;
    let (status, text) = post(&unkeyed, ts, sig, body).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{text}");
    assert!(text.contains("SITREP_DEPLOY_WEBHOOK_SECRET"), "{text}");
    assert!(store
        .deploys(noon() - Duration::days(1), None, None)
        .unwrap()
        .is_empty());
    unkeyed.shut_down().await;
}

// ---------------------------------------------------------------------------------------------
// GitHub

/// One request the stand-in expects, and its answer.
struct Expect {
    path: String,
    if_none_match: Option<&'static str>,
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Value,
}

fn expect(
    path: &str,
    if_none_match: Option<&'static str>,
    status: u16,
    etag: Option<&str>,
    body: Value,
) -> Expect {
    Expect {
        path: path.to_string(),
        if_none_match,
        status,
        headers: etag
            .map(|e| vec![("etag", e.to_string())])
            .unwrap_or_default(),
        body,
    }
}

#[derive(Default)]
struct FakeGitHub {
    expected: Mutex<Vec<Expect>>,
    /// Every request that was not expected, or lacked GitHub's required headers.
    problems: Mutex<Vec<String>>,
}

impl FakeGitHub {
    fn expect(&self, e: Vec<Expect>) {
        let mut expected = self.expected.lock().unwrap();
        assert!(expected.is_empty(), "earlier expectations were not met");
        *expected = e;
    }

    /// Fails the test on any unexpected request and on any expected one that did not come.
    fn verify(&self) {
        let problems = self.problems.lock().unwrap();
        assert!(
            problems.is_empty(),
            "unexpected requests to GitHub:\n{}",
            problems.join("\n")
        );
        let left: Vec<String> = self
            .expected
            .lock()
            .unwrap()
            .iter()
            .map(|e| format!("{} (If-None-Match {:?})", e.path, e.if_none_match))
            .collect();
        assert!(
            left.is_empty(),
            "expected requests that never came:\n{}",
            left.join("\n")
        );
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

async fn github_answer(State(fake): State<Arc<FakeGitHub>>, req: Request) -> Response {
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let h = req.headers();
    let mut wrong = Vec::new();
    if req.method() != axum::http::Method::GET {
        wrong.push(format!("method {}", req.method()));
    }
    let bearer = format!("Bearer {TOKEN}");
    for (name, want) in [
        ("authorization", bearer.as_str()),
        ("accept", "application/vnd.github+json"),
        ("x-github-api-version", "2022-11-28"),
    ] {
        if header(h, name) != Some(want) {
            wrong.push(format!("{name}: {:?}", header(h, name)));
        }
    }
    if !header(h, "user-agent").is_some_and(|ua| ua.starts_with("sitrep/")) {
        wrong.push("no User-Agent (GitHub refuses requests without one)".into());
    }
    let inm = header(h, "if-none-match");
    let mut expected = fake.expected.lock().unwrap();
    let found = expected
        .iter()
        .position(|e| e.path == path && e.if_none_match == inm);
    let Some(i) = found.filter(|_| wrong.is_empty()) else {
        fake.problems.lock().unwrap().push(format!(
            "GET {path} (If-None-Match {inm:?}) {}",
            wrong.join(", ")
        ));
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})),
        )
            .into_response();
    };
    let e = expected.remove(i);
    let mut resp = if e.status == 304 {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (StatusCode::from_u16(e.status).unwrap(), axum::Json(e.body)).into_response()
    };
    for (name, value) in e.headers {
        resp.headers_mut().insert(name, value.parse().unwrap());
    }
    resp
}

async fn start_github() -> (Arc<FakeGitHub>, SocketAddr) {
    let fake = Arc::new(FakeGitHub::default());
    let router = Router::new()
        .fallback(github_answer)
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (fake, addr)
}

fn user(login: &str) -> Value {
    json!({
        "login": login, "id": 1, "node_id": "MDQ6VXNlcjE=", "type": "User", "site_admin": false,
        "avatar_url": "https://github.com/images/error/octocat_happy.gif",
        "url": format!("https://api.github.com/users/{login}"),
        "html_url": format!("https://github.com/{login}")
    })
}

/// A deployment as "List deployments" documents it.
fn deployment(id: u64, sha: &str, git_ref: &str, environment: &str, created_at: &str) -> Value {
    json!({
        "url": format!("https://api.github.com/repos/acme/checkout/deployments/{id}"),
        "id": id,
        "node_id": "MDEwOkRlcGxveW1lbnQx",
        "sha": sha,
        "ref": git_ref,
        "task": "deploy",
        "payload": {},
        "original_environment": environment,
        "environment": environment,
        "description": "Deploy request from CI",
        "creator": user("octocat"),
        "created_at": created_at,
        "updated_at": created_at,
        "statuses_url": format!("https://api.github.com/repos/acme/checkout/deployments/{id}/statuses"),
        "repository_url": "https://api.github.com/repos/acme/checkout",
        "transient_environment": false,
        "production_environment": environment == "production"
    })
}

/// A status as "List deployment statuses" documents it.
fn status(id: u64, deployment: u64, state: &str, created_at: &str, log_url: &str) -> Value {
    json!({
        "url": format!("https://api.github.com/repos/acme/checkout/deployments/{deployment}/statuses/{id}"),
        "id": id,
        "node_id": "MDE2OkRlcGxveW1lbnRTdGF0dXMx",
        "state": state,
        "creator": user("octocat"),
        "description": "Deployment finished successfully.",
        "environment": "production",
        "target_url": "",
        "created_at": created_at,
        "updated_at": created_at,
        "deployment_url": format!("https://api.github.com/repos/acme/checkout/deployments/{deployment}"),
        "repository_url": "https://api.github.com/repos/acme/checkout",
        "environment_url": "https://checkout.example.com",
        "log_url": log_url
    })
}

const SHA_A: &str = "a84d88e7554fc1fa21bcbc4efae3c782a70d2b9d";
const SHA_B: &str = "7638417db6d59f3c431d3e1f261cc637155684cd";
const LIST: &str = "/api/v3/repos/acme/checkout/deployments?per_page=30";

fn statuses_path(id: u64) -> String {
    format!("/api/v3/repos/acme/checkout/deployments/{id}/statuses?per_page=100")
}

fn github_config(addr: SocketAddr, repositories: &[&str]) -> Config {
    let mut c = Config::default();
    // The GitHub Enterprise Server shape, so that the base's own path is kept.
    c.github.api_base = format!("http://{addr}/api/v3/");
    c.github.repositories = repositories.iter().map(|r| r.to_string()).collect();
    c.github.environments = vec!["production".into(), "Staging".into()];
    c
}

#[tokio::test]
async fn github_deployments_are_polled_conditionally_and_merged() {
    let (fake, addr) = start_github().await;
    let config = github_config(addr, &["acme/checkout"]);
    let store = Store::temporary().unwrap();
    let mut poller = GitHubPoller::new(&config.github, TOKEN).unwrap();

    // First poll: the list, then the statuses of each deployment in a configured environment.
    // The preview deployment (id 2) is filtered out, so asking for its statuses would be a fault.
    fake.expect(vec![
        expect(
            LIST,
            None,
            200,
            Some("W/\"list-1\""),
            json!([
                deployment(3, SHA_A, "v2.3.1", "production", "2026-11-21T10:20:00Z"),
                deployment(2, SHA_A, "v2.3.1", "preview", "2026-11-21T10:10:00Z"),
                deployment(1, SHA_B, SHA_B, "staging", "2026-11-21T10:00:00Z"),
            ]),
        ),
        expect(
            &statuses_path(3),
            None,
            200,
            Some("\"st3-1\""),
            json!([status(
                31,
                3,
                "in_progress",
                "2026-11-21T10:20:05Z",
                "https://ci.example.com/runs/3"
            )]),
        ),
        expect(
            &statuses_path(1),
            None,
            200,
            Some("\"st1-1\""),
            // Oldest first on purpose: the latest is found by time, not by position.
            json!([
                status(11, 1, "pending", "2026-11-21T10:00:05Z", ""),
                status(
                    12,
                    1,
                    "success",
                    "2026-11-21T10:03:00Z",
                    "https://ci.example.com/runs/1"
                ),
            ]),
        ),
    ]);
    let report = poller.poll_once(&store, noon()).await;
    fake.verify();
    assert_eq!(
        report,
        PollReport {
            requests: 3,
            new: 2,
            ..PollReport::default()
        }
    );
    let all = store
        .deploys(noon() - Duration::days(1), None, None)
        .unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].id, "acme/checkout#3");
    assert_eq!(all[0].status.as_deref(), Some("in_progress"));
    assert_eq!(all[0].version, "v2.3.1");
    assert_eq!(all[0].author.as_deref(), Some("octocat"));
    assert_eq!(all[0].url.as_deref(), Some("https://ci.example.com/runs/3"));
    assert_eq!(all[1].id, "acme/checkout#1");
    assert_eq!(all[1].version, "7638417");
    assert_eq!(all[1].status.as_deref(), Some("success"));
    assert_eq!(all[1].environment.as_deref(), Some("staging"));

    // Second poll: the list is unchanged (304); only the deployment still in flight is asked
    // about again, conditionally, and its record is replaced, not duplicated.
    fake.expect(vec![
        expect(
            LIST,
            Some("W/\"list-1\""),
            304,
            Some("W/\"list-1\""),
            Value::Null,
        ),
        expect(
            &statuses_path(3),
            Some("\"st3-1\""),
            200,
            Some("\"st3-2\""),
            json!([
                status(
                    32,
                    3,
                    "success",
                    "2026-11-21T10:24:00Z",
                    "https://ci.example.com/runs/3"
                ),
                status(
                    31,
                    3,
                    "in_progress",
                    "2026-11-21T10:20:05Z",
                    "https://ci.example.com/runs/3"
                ),
            ]),
        ),
    ]);
    let report = poller.poll_once(&store, noon()).await;
    fake.verify();
    assert_eq!(
        report,
        PollReport {
            requests: 2,
            not_modified: 1,
            updated: 1,
            ..PollReport::default()
        }
    );
    let all = store
        .deploys(noon() - Duration::days(1), None, None)
        .unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].status.as_deref(), Some("success"));

    // Third poll: everything has settled; one conditional request and nothing else.
    fake.expect(vec![expect(
        LIST,
        Some("W/\"list-1\""),
        304,
        None,
        Value::Null,
    )]);
    let report = poller.poll_once(&store, noon()).await;
    fake.verify();
    assert_eq!((report.requests, report.not_modified), (1, 1));

    // A webhook notice for the same service lands in the same tree, beside them.
    let hook = Deploy {
        source: DeploySource::Webhook,
        id: "ci-1".into(),
        service: "checkout".into(),
        version: "v2.3.2".into(),
        commit: None,
        author: None,
        environment: Some("production".into()),
        status: Some("success".into()),
        url: None,
        time: noon() - Duration::minutes(5),
    };
    assert!(store.put_deploy(&hook).unwrap());
    let of_checkout = store
        .deploys(noon() - Duration::days(1), Some("checkout"), None)
        .unwrap();
    let ids: Vec<&str> = of_checkout.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["ci-1", "acme/checkout#3", "acme/checkout#1"]);

    // After a restart nothing is known in memory: the list is read again, settled deployments
    // are recognised from the store and not asked about, and nothing is duplicated.
    let mut restarted = GitHubPoller::new(&config.github, TOKEN).unwrap();
    fake.expect(vec![expect(
        LIST,
        None,
        200,
        Some("W/\"list-1\""),
        json!([
            deployment(3, SHA_A, "v2.3.1", "production", "2026-11-21T10:20:00Z"),
            deployment(1, SHA_B, SHA_B, "staging", "2026-11-21T10:00:00Z"),
        ]),
    )]);
    let report = restarted.poll_once(&store, noon()).await;
    fake.verify();
    assert_eq!((report.requests, report.new, report.updated), (1, 0, 0));
    assert_eq!(
        store
            .deploys(noon() - Duration::days(1), None, None)
            .unwrap()
            .len(),
        3
    );
}

#[tokio::test]
async fn github_failures_are_named_without_the_token() {
    let (fake, addr) = start_github().await;
    let config = github_config(addr, &["acme/gone", "acme/checkout"]);
    let store = Store::temporary().unwrap();
    let mut poller = GitHubPoller::new(&config.github, TOKEN).unwrap();
    let reset = noon() + Duration::minutes(2);
    fake.expect(vec![
        expect(
            "/api/v3/repos/acme/gone/deployments?per_page=30",
            None,
            404,
            None,
            json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest/deployments/deployments#list-deployments"}),
        ),
        Expect {
            path: LIST.into(),
            if_none_match: None,
            status: 403,
            headers: vec![
                ("x-ratelimit-limit", "5000".into()),
                ("x-ratelimit-remaining", "0".into()),
                ("x-ratelimit-reset", reset.timestamp().to_string()),
            ],
            body: json!({"message": "API rate limit exceeded for user ID 1.", "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}),
        },
    ]);
    let report = poller.poll_once(&store, noon()).await;
    fake.verify();
    assert_eq!(report.errors.len(), 2, "{:?}", report.errors);
    assert!(
        report.errors[0].contains("acme/gone") && report.errors[0].contains("404"),
        "{}",
        report.errors[0]
    );
    assert!(
        report.errors[1].contains("rate limited"),
        "{}",
        report.errors[1]
    );
    for e in &report.errors {
        assert!(!e.contains(TOKEN), "the token leaked: {e}");
    }

    // Until the reset, polls ask GitHub nothing at all (any request would be unexpected).
    let report = poller
        .poll_once(&store, noon() + Duration::minutes(1))
        .await;
    fake.verify();
    assert!(report.paused);
    assert_eq!(report.requests, 0);

    // A refused token is reported as such.
    fake.expect(vec![
        expect(
            "/api/v3/repos/acme/gone/deployments?per_page=30",
            None,
            401,
            None,
            json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}),
        ),
        expect(LIST, None, 200, Some("\"e\""), json!([])),
    ]);
    let report = poller.poll_once(&store, reset + Duration::seconds(1)).await;
    fake.verify();
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    assert!(
        report.errors[0].contains("SITREP_GITHUB_TOKEN was refused"),
        "{}",
        report.errors[0]
    );
    assert!(!report.errors[0].contains(TOKEN));
}

#[tokio::test]
async fn old_deployments_are_kept_without_asking_about_them() {
    let (fake, addr) = start_github().await;
    let config = github_config(addr, &["acme/checkout"]);
    let store = Store::temporary().unwrap();
    let mut poller = GitHubPoller::new(&config.github, TOKEN).unwrap();
    // Two days old: history, not something in flight, so its statuses are not requested.
    fake.expect(vec![expect(
        LIST,
        None,
        200,
        Some("\"l\""),
        json!([deployment(
            5,
            SHA_A,
            "v1.0.0",
            "production",
            "2026-11-19T09:00:00Z"
        )]),
    )]);
    let report = poller.poll_once(&store, noon()).await;
    fake.verify();
    assert_eq!((report.requests, report.new), (1, 1));
    let d = store.deploy("github:acme/checkout#5").unwrap().unwrap();
    assert_eq!((d.version.as_str(), d.status.as_deref()), ("v1.0.0", None));

    fake.expect(vec![expect(LIST, Some("\"l\""), 304, None, Value::Null)]);
    let report = poller.poll_once(&store, noon()).await;
    fake.verify();
    assert_eq!((report.requests, report.new, report.updated), (1, 0, 0));
}

#[tokio::test]
async fn the_poller_runs_until_shutdown() {
    let (fake, addr) = start_github().await;
    let mut config = github_config(addr, &["acme/checkout"]);
    config.github.poll_every = "1h".parse().unwrap();
    let app = app(config);
    assert!(
        github::spawn(
            &app.config.github,
            app.store.clone(),
            app.clock.clone(),
            &Secrets::default(),
            async {},
        )
        .unwrap()
        .is_none(),
        "no token, no poller"
    );

    fake.expect(vec![
        expect(
            LIST,
            None,
            200,
            Some("\"l\""),
            json!([deployment(
                9,
                SHA_A,
                "v3.0.0",
                "production",
                "2026-11-21T11:00:00Z"
            )]),
        ),
        expect(&statuses_path(9), None, 200, Some("\"s\""), json!([])),
    ]);
    let mut env = BTreeMap::new();
    env.insert("SITREP_GITHUB_TOKEN".to_string(), TOKEN.to_string());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = github::spawn(
        &app.config.github,
        app.store.clone(),
        app.clock.clone(),
        &Secrets::from_env(&env),
        async move {
            let _ = stopped.await;
        },
    )
    .unwrap()
    .expect("configured and keyed, the poller runs");
    // The first poll runs at once; the next would be an hour away.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while app
        .store
        .deploys(noon() - Duration::days(1), None, None)
        .unwrap()
        .is_empty()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the first poll never stored anything"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    stop.send(()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), task)
        .await
        .expect("the poller stops when told to")
        .unwrap();
    fake.verify();
    let d = &app
        .store
        .deploys(noon() - Duration::days(1), None, None)
        .unwrap()[0];
    assert_eq!((d.version.as_str(), d.status.as_deref()), ("v3.0.0", None));
}

// ---------------------------------------------------------------------------------------------
// /deploys

async fn deploys_command(app: &App, options: &[(&str, &str)]) -> Result<String, String> {
    let inv = Invocation {
        user: UserRef::new(7, "alice"),
        member_roles: Vec::new(),
        channel: None,
        input: CommandInput {
            name: "deploys".into(),
            options: options
                .iter()
                .map(|(n, v)| InputOption {
                    name: n.to_string(),
                    value: InputValue::Raw(v.to_string()),
                })
                .collect(),
        },
    };
    commands::run(app, &inv)
        .await
        .map(|o| {
            assert!(o.reply.ephemeral, "lists are for the one who asked");
            assert!(o.posts.is_empty());
            o.reply.post.content
        })
        .map_err(|e| e.to_string())
}

fn put(store: &Store, id: &str, service: &str, version: &str, env: &str, minutes_ago: i64) {
    store
        .put_deploy(&Deploy {
            source: DeploySource::Webhook,
            id: id.into(),
            service: service.into(),
            version: version.into(),
            commit: Some("9f2c1e7a0b55".into()),
            author: Some("alice".into()),
            environment: Some(env.into()),
            status: Some("success".into()),
            url: Some(format!("https://ci.example.com/runs/{id}")),
            time: noon() - Duration::minutes(minutes_ago),
        })
        .unwrap();
}

/// The versions a listing shows, in the order shown.
fn versions(text: &str) -> Vec<String> {
    text.lines()
        .skip(1)
        .filter_map(|l| l.split(" · ").nth(1))
        .filter_map(|s| s.split(' ').nth(1))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn deploys_are_listed_newest_first_and_filtered() {
    let app = app(Config::default());
    put(&app.store, "1", "checkout", "v1", "production", 150);
    put(&app.store, "2", "search", "v2", "production", 90);
    put(&app.store, "3", "checkout", "v3", "staging", 60);
    put(&app.store, "4", "checkout", "v4", "production", 20);

    let all = deploys_command(&app, &[]).await.unwrap();
    assert_eq!(versions(&all), ["v4", "v3", "v2"], "{all}");
    let since = (noon() - Duration::hours(2)).timestamp();
    assert!(
        all.starts_with(&format!("**Deploys since <t:{since}:R>**")),
        "{all}"
    );
    let first = all.lines().nth(1).unwrap();
    let at = (noon() - Duration::minutes(20)).timestamp();
    assert_eq!(
        first,
        format!("<t:{at}:R> · **checkout** v4 → production · ✅ success · by alice · `9f2c1e7` · [link](<https://ci.example.com/runs/4>)"),
    );

    let three_hours = deploys_command(&app, &[("since", "3h")]).await.unwrap();
    assert_eq!(versions(&three_hours), ["v4", "v3", "v2", "v1"]);
    let checkout = deploys_command(&app, &[("service", "Checkout"), ("since", "1d")])
        .await
        .unwrap();
    assert_eq!(versions(&checkout), ["v4", "v3", "v1"]);
    let prod = deploys_command(
        &app,
        &[
            ("service", "checkout"),
            ("since", "1d"),
            ("environment", "production"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(versions(&prod), ["v4", "v1"]);
    assert!(
        prod.starts_with("**Deploys of checkout to production since"),
        "{prod}"
    );
    let recent = deploys_command(&app, &[("since", "30m")]).await.unwrap();
    assert_eq!(versions(&recent), ["v4"]);
    let at_time = deploys_command(&app, &[("since", "2026-11-21T10:45:00Z")])
        .await
        .unwrap();
    assert_eq!(versions(&at_time), ["v4", "v3"]);

    let none = deploys_command(&app, &[("service", "billing")])
        .await
        .unwrap();
    assert!(none.starts_with("No deploys of billing since"), "{none}");

    let err = deploys_command(&app, &[("since", "banana")])
        .await
        .unwrap_err();
    assert!(err.contains("`since:banana` is not a time"), "{err}");
    let err = deploys_command(&app, &[("since", "2099-01-01")])
        .await
        .unwrap_err();
    assert!(err.contains("not a time in the past"), "{err}");
    let err = deploys_command(&app, &[("colour", "red")])
        .await
        .unwrap_err();
    assert!(err.contains("unknown option `colour`"), "{err}");
}

#[tokio::test]
async fn long_listings_stay_within_one_message() {
    let app = app(Config::default());
    for i in 0..60 {
        put(
            &app.store,
            &i.to_string(),
            "checkout",
            &format!("v{i}"),
            "production",
            i,
        );
    }
    let text = deploys_command(&app, &[]).await.unwrap();
    assert!(
        text.chars().count() <= 2000,
        "{} characters",
        text.chars().count()
    );
    assert!(text.contains("more; narrow with"), "{text}");
    assert_eq!(versions(&text).first().map(String::as_str), Some("v0"));
}

#[test]
fn the_example_config_documents_the_deploy_sections() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let c = Config::from_parts(Some(("config.example.toml", &text)), &BTreeMap::new()).unwrap();
    let defaults = Config::default();
    assert_eq!(c.deploys, defaults.deploys);
    assert_eq!(c.github, defaults.github);
    for secret in ["SITREP_DEPLOY_WEBHOOK_SECRET", "SITREP_GITHUB_TOKEN"] {
        assert!(text.contains(secret), "{secret} is not documented");
    }
    // The commented-out examples are valid once used.
    let own = text
        .replace("repositories = []\n# repositories = ", "repositories = ")
        .replace("environments = []\n# environments = ", "environments = ")
        .replace("webhook = false", "webhook = true");
    let c = Config::from_parts(Some(("config.example.toml", &own)), &BTreeMap::new()).unwrap();
    assert_eq!(c.github.repositories, ["acme/checkout", "acme/search"]);
    assert_eq!(c.github.environments, ["production", "staging"]);
    let problems = sitrep::preflight::problems(&c, &Secrets::default(), false);
    assert!(problems.is_empty(), "{problems:?}");
    let problems = sitrep::preflight::problems(&c, &Secrets::default(), true).join("\n");
    assert!(
        problems.contains("SITREP_GITHUB_TOKEN is not set"),
        "{problems}"
    );
    assert!(
        problems.contains("SITREP_DEPLOY_WEBHOOK_SECRET is not set"),
        "{problems}"
    );
}

#[tokio::test]
async fn what_changed_at_open_lists_deploys_before_impact_and_records_them() {
    let kit = kit(Config::default());
    let (app, out) = (kit.app.clone(), kit.out.clone());
    let deploy = |id: &str, version: &str, at: DateTime<Utc>| Deploy {
        source: DeploySource::Webhook,
        id: id.into(),
        service: "checkout".into(),
        version: version.into(),
        commit: None,
        author: Some("dana".into()),
        environment: Some("production".into()),
        status: Some("success".into()),
        url: None,
        time: at,
    };
    // Impact began at 11:50; the default lookback is 2h, so 09:50 onwards counts.
    for d in [
        deploy("a", "v2.1", noon() - Duration::hours(3)),
        deploy("b", "v2.3", noon() - Duration::minutes(40)),
        deploy("c", "v2.4", noon() - Duration::minutes(5)),
    ] {
        app.store.put_deploy(&d).unwrap();
    }
    let inv = Invocation {
        user: UserRef::new(1, "alice"),
        member_roles: vec![],
        channel: None,
        input: CommandInput {
            name: "incident".into(),
            options: vec![InputOption {
                name: "open".into(),
                value: InputValue::Sub(vec![
                    InputOption {
                        name: "title".into(),
                        value: InputValue::Raw("Checkout 500s".into()),
                    },
                    InputOption {
                        name: "severity".into(),
                        value: InputValue::Raw("SEV2".into()),
                    },
                    InputOption {
                        name: "started".into(),
                        value: InputValue::Raw("10m ago".into()),
                    },
                ]),
            }],
        },
    };
    let outcome = commands::run(&app, &inv).await.unwrap();
    commands::after(&app, &inv, &outcome).await;
    // The post waits in the outbox until the scheduler sends it; no scheduler runs here.
    sitrep::scheduler::Scheduler::new(app.clone())
        .deliver_outbox()
        .await
        .unwrap();
    let printed = String::from_utf8(out.lock().unwrap().clone()).unwrap();
    let post = printed
        .split("\n[")
        .find(|p| p.contains("What changed"))
        .unwrap_or_else(|| panic!("no what-changed post in:\n{printed}"));
    assert!(post.contains("v2.3") && post.contains("v2.4"), "{post}");
    assert!(!post.contains("v2.1"), "outside the lookback: {post}");
    assert!(
        post.contains("(after impact began)"),
        "v2.4 came after 11:50: {post}"
    );
    let id = outcome.incident.unwrap();
    let observed: Vec<String> = app
        .store
        .events(id)
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.kind {
            sitrep::domain::EventKind::DeployObserved { version, .. } => Some(version),
            _ => None,
        })
        .collect();
    assert_eq!(
        observed,
        ["v2.4", "v2.3"],
        "newest first, both in the timeline"
    );
}
