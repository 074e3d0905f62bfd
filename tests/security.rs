//! Security checks on the real binary: no secret in any log, error or message, and no way in without the credential or role.

mod support;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use sitrep::store::Store;
use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::bot::{world, Bot, Mode};
use support::discord::{
    FakeDiscord, Interaction, InteractionResponse, GENERAL_CHANNEL_ID, OWNER_ID, TOKEN,
};

// ---------------------------------------------------------------------------------------------
// Secrets, the forms they could leak in, and the search for them.

/// Each secret carries characters that change under base64 and url-encoding, so that every form
/// differs from the raw value.
const DEPLOY_SECRET: &str = "whsec_Kx7dplyHook+SECRET/deploy=42";
const GITHUB_TOKEN: &str = "ghp_Qm4ghTokenSECRET0123456789abcdefABCD";
const ADMIN_TOKEN: &str = "adm_Zt9adminToken/SECRET+browser=0123456789";
const PROM_USER: &str = "sitrep-reader";
const PROM_PASSWORD: &str = "prm_Wb2promPass/SECRET+basic=77";
const PROM_BEARER: &str = "prb_Hy5promBearerSECRET+0123456789";
/// PagerDuty's integration keys are 32 characters.
const ROUTING_KEY: &str = "R0Vq8pdRoutingKeySECRET012345678";
const ROUTING_KEY_ENV: &str = "SITREP_PD_DBA";
const WRONG_DISCORD_TOKEN: &str = "MTMwWRONGdiscord.Gs3x9Q.U0VDUkVULXdyb25nLWRpc2NvcmQ+dG9rZW4/";

struct Secret {
    name: &'static str,
    value: String,
}

fn secret(name: &'static str, value: &str) -> Secret {
    Secret {
        name,
        value: value.to_string(),
    }
}

/// Every secret any test here hands the bot.
fn all_secrets() -> Vec<Secret> {
    vec![
        secret("SITREP_DISCORD_TOKEN", TOKEN),
        secret("a refused SITREP_DISCORD_TOKEN", WRONG_DISCORD_TOKEN),
        secret("SITREP_DEPLOY_WEBHOOK_SECRET", DEPLOY_SECRET),
        secret("SITREP_GITHUB_TOKEN", GITHUB_TOKEN),
        secret("SITREP_HTTP_ADMIN_TOKEN", ADMIN_TOKEN),
        secret("the SITREP_PROMETHEUS_TOKEN password", PROM_PASSWORD),
        secret(
            "SITREP_PROMETHEUS_TOKEN (basic)",
            &format!("{PROM_USER}:{PROM_PASSWORD}"),
        ),
        secret("SITREP_PROMETHEUS_TOKEN (bearer)", PROM_BEARER),
        secret(ROUTING_KEY_ENV, ROUTING_KEY),
    ]
}

fn base64(bytes: &[u8], url_safe: bool) -> String {
    let table: &[u8; 64] = if url_safe {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(table[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
        if !url_safe {
            out.push_str(&"=".repeat(3 - chunk.len()));
        }
    }
    out
}

fn percent_encoded(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What `value` looks like inside any base64 text, whatever comes before and after it (as in a
/// basic-auth header, where a user name precedes the password): its encoding after 0, 1 or 2
/// bytes, less the characters those bytes and the following ones share with it.
fn base64_cores(value: &str, url_safe: bool) -> Vec<String> {
    (0..3)
        .map(|shift| {
            let mut bytes = vec![0u8; shift];
            bytes.extend_from_slice(value.as_bytes());
            let encoded = base64(&bytes, url_safe);
            let encoded = encoded.trim_end_matches('=');
            let skip = [0, 2, 3][shift];
            encoded[skip..encoded.len() - 4].to_string()
        })
        .collect()
}

/// The raw value, its base64 and url-safe base64 at every alignment, its url-encoding, and its
/// first 16 characters (a truncated echo still gives most of a secret away).
fn forms(value: &str) -> Vec<(&'static str, String)> {
    let mut out = vec![
        ("raw", value.to_string()),
        ("url-encoded", percent_encoded(value)),
        ("its first 16 characters", value.chars().take(16).collect()),
    ];
    out.extend(
        base64_cores(value, false)
            .into_iter()
            .map(|c| ("base64", c)),
    );
    out.extend(
        base64_cores(value, true)
            .into_iter()
            .map(|c| ("url-safe base64", c)),
    );
    out
}

/// Every secret form found in `text`, with where it was.
fn leaks(text: &str, secrets: &[Secret]) -> Vec<String> {
    let mut found = Vec::new();
    for s in secrets {
        for (form, v) in forms(&s.value) {
            if let Some(at) = text.find(&v) {
                let mut from = at.saturating_sub(120);
                while !text.is_char_boundary(from) {
                    from -= 1;
                }
                let mut to = (at + v.len() + 120).min(text.len());
                while !text.is_char_boundary(to) {
                    to += 1;
                }
                found.push(format!("{} ({form}) in …{}…", s.name, &text[from..to]));
                break;
            }
        }
    }
    found
}

#[track_caller]
fn assert_no_leak(what: &str, text: &str, secrets: &[Secret]) {
    let found = leaks(text, secrets);
    assert!(found.is_empty(), "{what} leaks:\n{}", found.join("\n\n"));
}

#[test]
fn the_search_finds_every_form() {
    assert_eq!(base64(b"Man", false), "TWFu");
    assert_eq!(base64(b"Ma", false), "TWE=");
    assert_eq!(base64(b"M", false), "TQ==");
    assert_eq!(base64(b"\xfb\xff", true), "-_8");
    assert_eq!(percent_encoded("a+b/c=d"), "a%2Bb%2Fc%3Dd");
    let secrets = vec![secret("S", PROM_PASSWORD)];
    for (form, v) in forms(PROM_PASSWORD) {
        let text = format!("log line: {v} end");
        assert_eq!(leaks(&text, &secrets).len(), 1, "{form}: {text}");
    }
    // Inside a longer base64 text, whatever precedes it.
    let only_password = vec![secret("S", PROM_PASSWORD)];
    for before in ["", "a:", "ab:", "abc:", "sitrep-reader:"] {
        for url_safe in [false, true] {
            let text = format!(
                "authorization: Basic {}",
                base64(format!("{before}{PROM_PASSWORD}!").as_bytes(), url_safe)
            );
            assert_eq!(leaks(&text, &only_password).len(), 1, "{before:?}: {text}");
        }
    }
    assert!(leaks("SITREP_DEPLOY_WEBHOOK_SECRET is not set", &all_secrets()).is_empty());
}

// ---------------------------------------------------------------------------------------------
// Prometheus, GitHub and PagerDuty stand-ins that refuse everything, and record what they got.

#[derive(Clone, Debug)]
struct Seen {
    path: String,
    query: String,
    authorization: Option<String>,
    body: String,
}

#[derive(Default)]
struct Outside {
    seen: Mutex<Vec<Seen>>,
    pagerduty_calls: AtomicU32,
}

impl Outside {
    async fn start() -> (Arc<Outside>, String) {
        let outside = Arc::new(Outside::default());
        let router = axum::Router::new()
            .fallback(outside_answer)
            .with_state(outside.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        (outside, format!("http://{addr}"))
    }

    fn seen(&self, prefix: &str) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.path.starts_with(prefix))
            .cloned()
            .collect()
    }

    async fn wait_for(&self, prefix: &str, n: usize) -> Vec<Seen> {
        for _ in 0..400 {
            let seen = self.seen(prefix);
            if seen.len() >= n {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "fewer than {n} requests to {prefix}: {:#?}",
            self.seen.lock().unwrap()
        );
    }
}

/// Prometheus behind basic auth and GitHub answer 401 as they document it; PagerDuty refuses the
/// first event with 400, echoing the key it was sent (as a proxy in front of it might), and
/// fails every later one with 500.
async fn outside_answer(State(o): State<Arc<Outside>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .unwrap_or_else(|_| Bytes::new());
    let body = String::from_utf8_lossy(&body).into_owned();
    o.seen.lock().unwrap().push(Seen {
        path: path.clone(),
        query,
        authorization,
        body: body.clone(),
    });
    if path.starts_with("/prom/") {
        (
            StatusCode::UNAUTHORIZED,
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::WWW_AUTHENTICATE, "Basic realm=\"prometheus\""),
            ],
            "Unauthorized\n",
        )
            .into_response()
    } else if path.starts_with("/github/") {
        (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})),
        )
            .into_response()
    } else if path == "/pd/v2/enqueue" {
        if o.pagerduty_calls.fetch_add(1, Ordering::SeqCst) == 0 {
            let key = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v["routing_key"].as_str().map(str::to_string))
                .unwrap_or_default();
            (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({
                    "status": "invalid event",
                    "message": "Event object is invalid",
                    "errors": [format!("routing_key {key} is not a known integration key")],
                })),
            )
                .into_response()
        } else {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::RETRY_AFTER, "0")],
                axum::Json(json!({"status": "error", "message": "internal error"})),
            )
                .into_response()
        }
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers shared by the tests below.

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn wait_healthy(base: &str) {
    for _ in 0..200 {
        if let Ok(r) = client().get(format!("{base}/healthz")).send().await {
            if r.status() == 200 {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the HTTP edge at {base} never answered /healthz");
}

/// An answer as text: status, headers and body, for assertions and for the leak search.
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    async fn of(res: reqwest::Response) -> Answer {
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body = res.text().await.unwrap_or_default();
        Answer {
            status,
            headers,
            body,
        }
    }

    fn text(&self) -> String {
        format!("{} {:?}\n{}", self.status, self.headers, self.body)
    }

    /// A session cookie that is set, as opposed to one being cleared.
    fn sets_session(&self) -> bool {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|c| c.starts_with("sitrep_session=") && !c.starts_with("sitrep_session=;"))
    }
}

/// Everything the bot sent Discord and Discord sent the bot, as text: every REST request (the
/// fake leaves `Authorization` out) with its body, files and answer, and every gateway frame but
/// the token field of IDENTIFY and RESUME, which is where the token belongs.
fn discord_traffic(fake: &FakeDiscord) -> String {
    let mut out = String::new();
    for r in fake.requests() {
        out.push_str(&format!(
            "{} {} {:?} {:?}\n{}\n-> {} {}\n",
            r.method, r.path, r.query, r.headers, r.body, r.status, r.response
        ));
        for f in &r.files {
            out.push_str(&String::from_utf8_lossy(&f.bytes));
            out.push('\n');
        }
    }
    for f in fake.frames() {
        let mut p = f.payload.clone();
        if matches!(f.op(), Some(2) | Some(6)) {
            if let Some(d) = p.get_mut("d").and_then(Value::as_object_mut) {
                d.remove("token");
            }
        }
        out.push_str(&p.to_string());
        out.push('\n');
    }
    out
}

/// The token the bot identified with on the gateway, as sent.
fn identify_tokens(fake: &FakeDiscord) -> Vec<String> {
    fake.frames()
        .iter()
        .filter(|f| f.op() == Some(2))
        .filter_map(|f| f.payload["d"]["token"].as_str().map(str::to_string))
        .collect()
}

/// The first answer to an interaction and its text: the reply, or what a deferral became (the
/// placeholder filled in, or, for a failure, the ephemeral follow-up that replaced it).
async fn answer(fake: &FakeDiscord, i: &Interaction) -> (InteractionResponse, String) {
    let first = fake.wait_response(i).await;
    if first.kind != 5 {
        let text = first.content().to_string();
        return (first, text);
    }
    let text = fake
        .wait_until(Duration::from_secs(15), |f| {
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
        .unwrap_or_else(|| panic!("the deferral of {} was never filled in", i.payload["data"]));
    (first, text)
}

/// Every key and value in the database, as text.
fn database(path: &std::path::Path) -> String {
    Store::open(path)
        .unwrap()
        .dump()
        .unwrap()
        .iter()
        .map(|(tree, k, v)| {
            format!(
                "{tree} {} {}\n",
                String::from_utf8_lossy(k),
                String::from_utf8_lossy(v)
            )
        })
        .collect()
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

fn id_of(m: &Value) -> u64 {
    m["id"].as_str().unwrap().parse().unwrap()
}

/// Opens an incident as `user` and returns its channel.
async fn open(fake: &FakeDiscord, user: u64, title: &str, severity: &str) -> u64 {
    let i = fake.slash(
        user,
        GENERAL_CHANNEL_ID,
        "incident",
        json!({"open": {"title": title, "severity": severity}}),
    );
    let (_, text) = answer(fake, &i).await;
    text.split("<#")
        .nth(1)
        .and_then(|r| r.split('>').next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no channel link in {text}"))
}

/// The first message in `channel` whose text contains `needle`.
async fn wait_post(fake: &FakeDiscord, channel: u64, needle: &str) -> Value {
    fake.wait_until(Duration::from_secs(15), |f| {
        f.messages(channel)
            .into_iter()
            .find(|m| text_of(m).contains(needle))
    })
    .await
    .unwrap_or_else(|| {
        let texts: Vec<String> = fake.messages(channel).iter().map(text_of).collect();
        panic!("no message with {needle:?} in {channel}: {texts:#?}")
    })
}

async fn wait_log(bot: &Bot, needle: &str) {
    for _ in 0..300 {
        if bot.log().contains(needle) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{needle:?} never appeared in the log:\n{}", bot.log());
}

/// Integrations pointed at the stand-ins, the webhook on, and a target paged through PagerDuty.
fn integrations(outside: &str, dba: u64) -> String {
    format!(
        r#"
[deploys]
webhook = true

[github]
api_base = "{outside}/github"
repositories = ["acme/checkout"]

[prometheus]
url = "{outside}/prom"
timeout = "3s"

[queries.error_rate]
promql = "sum(rate(http_requests_total{{code=~\"5..\"}}[5m]))"
unit = "req/s"

[whats_changed]
queries = ["error_rate"]

[escalation.targets.dba]
roles = [{dba}]
pagerduty_routing_key_env = "{ROUTING_KEY_ENV}"

[pagerduty]
events_url = "{outside}/pd/v2/enqueue"
timeout = "3s"
"#
    )
}

// ---------------------------------------------------------------------------------------------
// Secrets in run mode.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_stay_out_of_a_running_bots_log_answers_and_messages() {
    let (outside, outside_base) = Outside::start().await;
    let fake = FakeDiscord::start().await;
    let w = world(&fake);
    let dba = fake.add_role("dba");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let basic = format!("{PROM_USER}:{PROM_PASSWORD}");
    let mut bot = Bot::start_with_env(
        &fake,
        w,
        Mode::Proxy,
        &integrations(&outside_base, dba),
        &[
            ("SITREP_HTTP__LISTEN", listen.as_str()),
            ("SITREP_DEPLOY_WEBHOOK_SECRET", DEPLOY_SECRET),
            ("SITREP_GITHUB_TOKEN", GITHUB_TOKEN),
            ("SITREP_HTTP_ADMIN_TOKEN", ADMIN_TOKEN),
            ("SITREP_PROMETHEUS_TOKEN", basic.as_str()),
            (ROUTING_KEY_ENV, ROUTING_KEY),
            // Everything every crate says, not only what an operator usually sees.
            ("SITREP_LOG", "trace"),
        ],
    );
    fake.wait_ready().await;
    let base = format!("http://{listen}");
    wait_healthy(&base).await;
    let mut answers = String::new();

    // GitHub refuses the token at the first poll, which runs at once.
    let github = outside.wait_for("/github/", 1).await;
    assert_eq!(
        github[0].authorization.as_deref(),
        Some(format!("Bearer {GITHUB_TOKEN}").as_str())
    );
    wait_log(&bot, "SITREP_GITHUB_TOKEN was refused (401)").await;

    // Prometheus refuses the credentials at the open ("what changed") and for /metrics.
    let channel = open(&fake, OWNER_ID, "Checkout is down", "SEV2").await;
    let prom = outside.wait_for("/prom/", 1).await;
    assert_eq!(
        prom[0].authorization.as_deref(),
        Some(format!("Basic {}", base64(basic.as_bytes(), false)).as_str()),
        "basic auth from SITREP_PROMETHEUS_TOKEN"
    );
    let i = fake.slash(
        OWNER_ID,
        channel,
        "metrics",
        json!({"name": "error_rate", "service": "checkout"}),
    );
    let (_, text) = answer(&fake, &i).await;
    assert!(
        text.contains("refused sitrep's credentials") && text.contains("SITREP_PROMETHEUS_TOKEN"),
        "{text}"
    );

    // PagerDuty refuses the page (400, echoing the key) and fails the acknowledgement (500s).
    let i = fake.slash(
        OWNER_ID,
        channel,
        "escalate",
        json!({"target": "dba", "reason": "the primary is down"}),
    );
    answer(&fake, &i).await;
    let refused = wait_post(&fake, channel, "PagerDuty did not take the page").await;
    assert!(
        text_of(&refused).contains("<routing key>"),
        "the echoed key is replaced: {}",
        text_of(&refused)
    );
    let page = wait_post(&fake, channel, "you are needed on").await;
    let i = fake.click(OWNER_ID, id_of(&page), "escalation:ack:1:1");
    answer(&fake, &i).await;
    wait_post(&fake, channel, "PagerDuty did not acknowledge").await;
    let pd = outside.seen("/pd/");
    assert!(pd.len() >= 2, "{pd:#?}");
    for s in &pd {
        let mut body: Value = serde_json::from_str(&s.body).unwrap();
        assert_eq!(body["routing_key"], ROUTING_KEY);
        body.as_object_mut().unwrap().remove("routing_key");
        answers.push_str(&format!("PagerDuty event {body}\n"));
    }
    for s in outside
        .seen("/prom/")
        .iter()
        .chain(&outside.seen("/github/"))
    {
        answers.push_str(&format!("{} {} {}\n", s.path, s.query, s.body));
    }

    // The HTTP edge, refusing and serving.
    let http = client();
    let badly_signed = http
        .post(format!("{base}/hooks/deploy"))
        .header(
            "x-sitrep-timestamp",
            chrono::Utc::now().timestamp().to_string(),
        )
        .header(
            "x-sitrep-signature",
            sitrep::integrations::deploys::sign(
                b"not the secret",
                chrono::Utc::now().timestamp(),
                b"{}",
            ),
        )
        .body("{}")
        .send()
        .await
        .unwrap();
    let a = Answer::of(badly_signed).await;
    assert_eq!(a.status, 401, "{}", a.text());
    answers.push_str(&a.text());
    let a = Answer::of(
        http.get(format!("{base}/incidents"))
            .bearer_auth("not-the-admin-token")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, 401, "{}", a.text());
    answers.push_str(&a.text());
    for path in ["/incidents/INC-1", "/postmortems/INC-1.md", "/status.json"] {
        let a = Answer::of(
            http.get(format!("{base}{path}"))
                .bearer_auth(ADMIN_TOKEN)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(a.status, 200, "{path}: {}", a.text());
        answers.push_str(&a.text());
    }

    assert!(bot.stop().success());
    let log = bot.log();
    for needle in [
        "PagerDuty refused the event",
        "PagerDuty did not take the event",
        "deploy notice refused",
    ] {
        assert!(log.contains(needle), "{needle:?} not in the log:\n{log}");
    }
    let secrets = all_secrets();
    assert_no_leak("the bot's log", &log, &secrets);
    assert_no_leak(
        "what the bot sent Discord",
        &discord_traffic(&fake),
        &secrets,
    );
    assert_no_leak("the HTTP edge's answers", &answers, &secrets);
    assert_no_leak("the database", &database(bot.db_path()), &secrets);
    // Twice: the fake's portal refuses message text at first, and the bot identifies again
    // without it.
    assert_eq!(
        identify_tokens(&fake),
        [format!("Bot {TOKEN}"), format!("Bot {TOKEN}")],
        "the token went where it belongs"
    );
}

/// Both ways Discord refuses a token: the command registration (401) and the gateway (4004).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_discord_token_is_named_but_never_shown() {
    let fake = FakeDiscord::start().await;
    let w = world(&fake);
    for register in ["true", "false"] {
        let mut bot = Bot::start_with_env(
            &fake,
            w,
            Mode::Proxy,
            "",
            &[
                ("SITREP_DISCORD_TOKEN", WRONG_DISCORD_TOKEN),
                ("SITREP_DISCORD__REGISTER_COMMANDS", register),
                ("SITREP_LOG", "trace"),
            ],
        );
        let status = bot
            .wait_exit(Duration::from_secs(20))
            .unwrap_or_else(|| panic!("the bot kept running with a refused token:\n{}", bot.log()));
        assert!(!status.success());
        let log = bot.log();
        assert_no_leak(
            &format!("the log (register_commands = {register})"),
            &log,
            &all_secrets(),
        );
        // The error main returns; with RUST_BACKTRACE set, a backtrace follows it.
        let last = log
            .lines()
            .rev()
            .find(|l| l.starts_with("Error:"))
            .unwrap_or("");
        assert!(
            last.contains("SITREP_DISCORD_TOKEN"),
            "register_commands = {register}: the last words do not say which setting is wrong: {last}"
        );
    }
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.route.starts_with("PUT /applications") && r.status == 401),
        "the registration was refused"
    );
    assert_eq!(
        identify_tokens(&fake),
        [format!("Bot {WRONG_DISCORD_TOKEN}")],
        "the gateway was tried once, with the refused token"
    );
    assert!(fake
        .frames()
        .iter()
        .any(|f| f.payload["close"].as_u64() == Some(4004)));
    assert_no_leak(
        "what the bot sent Discord",
        &discord_traffic(&fake),
        &all_secrets(),
    );
}

// ---------------------------------------------------------------------------------------------
// Secrets in console mode, check-config and export.

/// The secrets as the environment of a process.
fn secret_env(prometheus: &str) -> Vec<(&'static str, String)> {
    vec![
        ("SITREP_DISCORD_TOKEN", TOKEN.to_string()),
        ("SITREP_DEPLOY_WEBHOOK_SECRET", DEPLOY_SECRET.to_string()),
        ("SITREP_GITHUB_TOKEN", GITHUB_TOKEN.to_string()),
        ("SITREP_HTTP_ADMIN_TOKEN", ADMIN_TOKEN.to_string()),
        ("SITREP_PROMETHEUS_TOKEN", prometheus.to_string()),
        (ROUTING_KEY_ENV, ROUTING_KEY.to_string()),
        ("SITREP_LOG", "trace".to_string()),
    ]
}

/// `sitrep ARGS` with `env`; returns stdout, stderr and whether it succeeded.
fn sitrep(args: &[&str], env: &[(&str, String)]) -> (String, String, bool) {
    let out = Command::new(env!("CARGO_BIN_EXE_sitrep"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .output()
        .expect("the sitrep binary runs");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.success(),
    )
}

/// Text a child process writes, collected as it comes; the thread ends with the stream.
fn collect(
    stream: impl std::io::Read + Send + 'static,
) -> (Arc<Mutex<String>>, std::thread::JoinHandle<()>) {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = text.clone();
    let reader = std::thread::spawn(move || {
        let mut stream = stream;
        let mut buf = [0u8; 4096];
        while let Ok(n) = stream.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    (text, reader)
}

async fn wait_text(text: &Arc<Mutex<String>>, needle: &str) {
    for _ in 0..300 {
        if text.lock().unwrap().contains(needle) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{needle:?} never appeared in:\n{}", text.lock().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_stay_out_of_the_console_check_config_and_export() {
    let (outside, outside_base) = Outside::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let config = dir.path().join("sitrep.toml");
    std::fs::write(
        &config,
        format!(
            "[discord]\napplication_id = 11\nguild_id = 22\nstakeholder_channel_id = 33\n\n\
             [storage]\npath = \"{}\"\n{}",
            db.display(),
            integrations(&outside_base, 44)
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let env = secret_env(PROM_BEARER);
    let secrets = all_secrets();

    // The console, with Prometheus refusing the bearer token and PagerDuty refusing the page.
    let mut child = Command::new(env!("CARGO_BIN_EXE_sitrep"))
        .args(["console", "--config", config])
        .env("USER", "alice")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the sitrep binary runs");
    let (stdout, out_reader) = collect(child.stdout.take().unwrap());
    let (stderr, err_reader) = collect(child.stderr.take().unwrap());
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(
            b"/incident open title:\"Checkout is down\" severity:SEV2 service:checkout\n\
              /metrics name:error_rate\n\
              /escalate target:dba reason:\"the primary is down\"\n",
        )
        .unwrap();
    // The page goes to PagerDuty in the background: keep the console open until it is refused.
    wait_text(&stdout, "PagerDuty did not take the page").await;
    stdin.write_all(b"/incident status\n").unwrap();
    drop(stdin);
    let status = tokio::task::spawn_blocking(move || {
        let status = child.wait().unwrap();
        out_reader.join().unwrap();
        err_reader.join().unwrap();
        status
    })
    .await
    .unwrap();
    let (out, err) = (
        stdout.lock().unwrap().clone(),
        stderr.lock().unwrap().clone(),
    );
    assert!(status.success(), "{out}\n{err}");
    assert!(
        out.contains("refused sitrep's credentials") && out.contains("SITREP_PROMETHEUS_TOKEN"),
        "{out}"
    );
    let prom = outside.seen("/prom/");
    assert!(!prom.is_empty());
    assert!(prom
        .iter()
        .all(|s| s.authorization.as_deref() == Some(format!("Bearer {PROM_BEARER}").as_str())));
    assert_eq!(outside.seen("/pd/").len(), 1);
    assert_no_leak("the console's output", &out, &secrets);
    assert_no_leak("the console's log", &err, &secrets);
    assert_no_leak("the console's database", &database(&db), &secrets);

    // check-config: a good configuration, then one with problems, each with every secret set.
    let (out, err, ok) = sitrep(&["check-config", "--config", config], &env);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("ok: no problems found"), "{out}");
    assert_no_leak("check-config's summary", &format!("{out}\n{err}"), &secrets);
    const SHORT_ADMIN_TOKEN: &str = "adm_Sh0rt!";
    let mut bad = env.clone();
    bad.push(("SITREP_HTTP_ADMIN_TOKEN", SHORT_ADMIN_TOKEN.into()));
    bad.push(("SITREP_SEVERITIES__SEV1__COLOUR", "red".into()));
    let (out, err, ok) = sitrep(&["check-config", "--config", config], &bad);
    assert!(!ok);
    for needle in [
        "SITREP_HTTP_ADMIN_TOKEN is shorter than 16 characters",
        "is not a #rrggbb colour",
    ] {
        assert!(err.contains(needle), "{needle:?} not in {err}");
    }
    let mut with_short = all_secrets();
    with_short.push(secret("a short SITREP_HTTP_ADMIN_TOKEN", SHORT_ADMIN_TOKEN));
    assert_no_leak(
        "check-config's problems",
        &format!("{out}\n{err}"),
        &with_short,
    );

    // A secret pasted into the file by mistake is named as misplaced, not shown.
    for (section, value) in [("discord", TOKEN), ("github", GITHUB_TOKEN)] {
        let pasted = dir.path().join(format!("pasted-{section}.toml"));
        std::fs::write(&pasted, format!("[{section}]\ntoken = \"{value}\"\n")).unwrap();
        let (out, err, ok) = sitrep(
            &["check-config", "--config", pasted.to_str().unwrap()],
            &env,
        );
        assert!(!ok);
        assert!(
            err.contains("token") && err.contains("environment"),
            "the problem is not explained: {err}"
        );
        assert_no_leak(
            &format!("check-config on a token pasted under [{section}]"),
            &format!("{out}\n{err}"),
            &secrets,
        );
    }

    // export: the draft, an incident that does not exist, a database that does not exist.
    let db_arg = db.to_str().unwrap();
    let (out, err, ok) = sitrep(
        &["export", "INC-1", "--config", config, "--db", db_arg],
        &env,
    );
    assert!(ok, "{err}");
    assert!(out.contains("Checkout is down"), "{out}");
    assert_no_leak("the export", &format!("{out}\n{err}"), &secrets);
    let (out, err, ok) = sitrep(
        &["export", "INC-9", "--config", config, "--db", db_arg],
        &env,
    );
    assert!(!ok);
    assert!(err.contains("INC-9"), "{err}");
    assert_no_leak("a failed export", &format!("{out}\n{err}"), &secrets);
    let missing = dir.path().join("nowhere");
    let (out, err, ok) = sitrep(
        &[
            "export",
            "INC-1",
            "--config",
            config,
            "--db",
            missing.to_str().unwrap(),
        ],
        &env,
    );
    assert!(!ok);
    assert!(err.contains("no database"), "{err}");
    assert_no_leak(
        "an export without a database",
        &format!("{out}\n{err}"),
        &secrets,
    );
}

#[test]
fn debug_output_of_every_type_holding_a_secret_hides_it() {
    use sitrep::config::{Config, Secrets};
    use sitrep::integrations::{deploys, pagerduty, prometheus};
    let env: std::collections::BTreeMap<String, String> = secret_env(PROM_PASSWORD)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    let mut config = Config::default();
    config.escalation.targets.insert(
        "dba".into(),
        sitrep::config::EscalationTarget {
            roles: vec![1],
            pagerduty_routing_key_env: Some(ROUTING_KEY_ENV.into()),
            description: None,
            schedule: None,
        },
    );
    let secrets = Secrets::from_env(&env).with_routing_keys(&config, &env);
    assert_eq!(secrets.pagerduty_routing_keys[ROUTING_KEY_ENV], ROUTING_KEY);
    let basic = prometheus::Auth::parse(&format!("{PROM_USER}:{PROM_PASSWORD}")).unwrap();
    let bearer = prometheus::Auth::parse(PROM_BEARER).unwrap();
    let client = prometheus::PrometheusClient::new(
        "http://127.0.0.1:9/prom",
        Duration::from_secs(1),
        Some(basic.clone()),
    )
    .unwrap();
    let pd = pagerduty::PagerDuty::from_config(&config, &secrets)
        .unwrap()
        .expect("a target with a key");
    let shown = [
        format!("{secrets:?}"),
        format!("{secrets:#?}"),
        format!("{basic:?} {bearer:?}"),
        format!("{client:?}"),
        format!("{pd:?}"),
        format!("{:?}", deploys::Verifier::new(DEPLOY_SECRET)),
        format!("{config:?}"),
    ];
    for s in &shown {
        assert_no_leak("Debug output", s, &all_secrets());
    }
    assert!(shown[0].contains("<set>"), "{}", shown[0]);
}

// ---------------------------------------------------------------------------------------------
// The HTTP edge: every route, by who may come in.

/// Who a route lets in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Door {
    /// Anyone: health, the stylesheet, the way to the status page, signing in and out.
    Open,
    /// Holders of the admin token: as a bearer token, or the session cookie signing in gives.
    Admin,
    /// As [`Door::Admin`] until `[status_page] enabled = true` makes it public.
    StatusPage,
    /// Deploy notices signed with the webhook secret, fresh and not seen before.
    Signed,
}

/// Every route of the HTTP edge: the router's pattern, the method it serves, a path to ask for
/// and its door. `every_route_of_the_http_edge_is_guarded` compares the patterns with the
/// router's own, so that a route added without a line here (and so without a check) fails.
const ROUTES: &[(&str, &str, &str, Door)] = &[
    ("/", "GET", "/", Door::Open),
    ("/healthz", "GET", "/healthz", Door::Open),
    ("/web.css", "GET", "/web.css", Door::Open),
    ("/login", "GET", "/login", Door::Open),
    ("/logout", "POST", "/logout", Door::Open),
    ("/status", "GET", "/status", Door::StatusPage),
    ("/status.json", "GET", "/status.json", Door::StatusPage),
    (
        "/status/feed.atom",
        "GET",
        "/status/feed.atom",
        Door::StatusPage,
    ),
    ("/incidents", "GET", "/incidents", Door::Admin),
    ("/incidents/:id", "GET", "/incidents/INC-1", Door::Admin),
    (
        "/incidents/:id/postmortem",
        "GET",
        "/incidents/INC-1/postmortem",
        Door::Admin,
    ),
    (
        "/incidents/:id/postmortem.md",
        "GET",
        "/incidents/INC-1/postmortem.md",
        Door::Admin,
    ),
    (
        "/postmortems/:file",
        "GET",
        "/postmortems/INC-7.md",
        Door::Admin,
    ),
    (
        "/incidents/:id/charts/:file",
        "GET",
        "/incidents/INC-1/charts/1.png",
        Door::Admin,
    ),
    ("/metrics", "GET", "/metrics", Door::Admin),
    ("/hooks/deploy", "POST", "/hooks/deploy", Door::Signed),
];

/// The path patterns of a router, read from its `Debug` output (axum lists them there and has
/// no other way to enumerate them).
fn router_paths(router: &axum::Router) -> BTreeSet<String> {
    let shown = format!("{router:?}");
    let mut out = BTreeSet::new();
    for part in shown.split("paths: {").skip(1) {
        let inner = part.split('}').next().unwrap_or("");
        for entry in inner.split(", ") {
            if let Some((_, path)) = entry.split_once(": ") {
                let path = path.trim_matches('"');
                if !path.contains("__private__") && !path.is_empty() {
                    out.insert(path.to_string());
                }
            }
        }
    }
    out
}

/// The edge's router as the bot builds it, with every optional route switched on.
fn edge_router() -> axum::Router {
    use sitrep::clock::SystemClock;
    use sitrep::config::Secrets;
    use sitrep::render::TimeStyle;
    use sitrep::testkit::TestApp;
    let app = TestApp::builder()
        .configure(|c| {
            c.deploys.webhook = true;
            c.status_page.enabled = true;
        })
        .clock(Arc::new(SystemClock))
        .time_style(TimeStyle::Plain)
        .build_console()
        .app;
    let env = secret_env(PROM_BEARER)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    sitrep::http::router(app, &Secrets::from_env(&env))
}

/// A session cookie value for `expires`, keyed with `key`, as the edge makes them.
fn session_signed_with(key: &str, expires: i64) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(format!("sitrep-session-v1.{expires}").as_bytes());
    format!("{expires}.{}", hex::encode(mac.finalize().into_bytes()))
}

/// Request headers, as name and value.
type Headers = Vec<(&'static str, String)>;

async fn send(method: &str, url: &str, headers: &[(&str, String)], body: Option<String>) -> Answer {
    let mut req = client().request(method.parse().unwrap(), url);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    if let Some(b) = body {
        req = req.body(b);
    }
    Answer::of(req.send().await.unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_of_the_http_edge_is_guarded() {
    let listed: BTreeSet<String> = ROUTES.iter().map(|r| r.0.to_string()).collect();
    let served = router_paths(&edge_router());
    assert!(
        served.len() >= 10,
        "the router's paths could not be read from its Debug output: {served:?}"
    );
    assert_eq!(
        served, listed,
        "the HTTP edge's routes changed: give each new route a line in ROUTES, with its door"
    );

    let fake = FakeDiscord::start().await;
    let w = world(&fake);
    let listen = format!("127.0.0.1:{}", free_port());
    let mut bot = Bot::start_with_env(
        &fake,
        w,
        Mode::Proxy,
        "[deploys]\nwebhook = true\n",
        &[
            ("SITREP_HTTP__LISTEN", listen.as_str()),
            ("SITREP_DEPLOY_WEBHOOK_SECRET", DEPLOY_SECRET),
            ("SITREP_HTTP_ADMIN_TOKEN", ADMIN_TOKEN),
            ("SITREP_LOG", "trace"),
        ],
    );
    fake.wait_ready().await;
    let base = format!("http://{listen}");
    wait_healthy(&base).await;
    open(&fake, OWNER_ID, "Search is slow", "SEV3").await;
    let mut answers = String::new();
    let mut record = |what: String, a: &Answer| {
        answers.push_str(&format!("{what}: {}\n", a.text()));
    };

    // Signing in gives the cookie that, like the bearer token, opens the admin doors.
    let a = send(
        "POST",
        &format!("{base}/login"),
        &[(
            "content-type",
            "application/x-www-form-urlencoded".to_string(),
        )],
        Some(format!(
            "token={}&next=%2Fincidents",
            percent_encoded(ADMIN_TOKEN)
        )),
    )
    .await;
    assert_eq!(a.status, 303, "{}", a.text());
    assert!(a.sets_session());
    record("sign-in".into(), &a);
    let cookie = a.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();

    let now = chrono::Utc::now().timestamp();
    let wrong_bearers = [
        "not-the-admin-token".to_string(),
        DEPLOY_SECRET.to_string(),
        format!("{ADMIN_TOKEN}x"),
        ADMIN_TOKEN[..ADMIN_TOKEN.len() - 1].to_string(),
        ADMIN_TOKEN.to_ascii_uppercase(),
    ];
    for (n, &(pattern, method, path, door)) in ROUTES.iter().enumerate() {
        let url = format!("{base}{path}");
        // Without credentials, no method gets through a closed door.
        for m in ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"] {
            let a = send(m, &url, &[], None).await;
            record(format!("{m} {path}"), &a);
            if door != Door::Open {
                let expect: &[u16] = if m == method || (m == "HEAD" && method == "GET") {
                    &[401]
                } else {
                    &[401, 405]
                };
                assert!(
                    expect.contains(&a.status),
                    "{m} {path} ({pattern}) without credentials: {}",
                    a.text()
                );
                assert!(!a.sets_session(), "{m} {path}: {}", a.text());
            }
        }
        match door {
            Door::Admin | Door::StatusPage => {
                // One wrong bearer token per route, so that the throttle (20 a minute) stays
                // out of the way; the other wrong credentials do not count against it.
                let wrong_credentials = [
                    (
                        "authorization",
                        format!("Bearer {}", wrong_bearers[n % wrong_bearers.len()]),
                    ),
                    ("authorization", format!("Basic {ADMIN_TOKEN}")),
                    (
                        "authorization",
                        format!(
                            "Basic {}",
                            base64(format!("admin:{ADMIN_TOKEN}").as_bytes(), false)
                        ),
                    ),
                    ("authorization", format!("Token {ADMIN_TOKEN}")),
                    ("authorization", ADMIN_TOKEN.to_string()),
                    ("cookie", format!("sitrep_session={ADMIN_TOKEN}")),
                    ("cookie", "sitrep_session=4102444800.00".to_string()),
                    (
                        "cookie",
                        format!(
                            "sitrep_session={}",
                            session_signed_with(DEPLOY_SECRET, now + 3600)
                        ),
                    ),
                    (
                        "cookie",
                        format!(
                            "sitrep_session={}",
                            session_signed_with(ADMIN_TOKEN, now - 60)
                        ),
                    ),
                    ("x-sitrep-admin-token", ADMIN_TOKEN.to_string()),
                ];
                // The labels name the credential by number: the answers are searched for secrets.
                for (i, (name, value)) in wrong_credentials.into_iter().enumerate() {
                    let a = send(method, &url, &[(name, value.clone())], None).await;
                    assert_eq!(a.status, 401, "{path} with {name}: {value}: {}", a.text());
                    assert!(!a.sets_session(), "{path}: {}", a.text());
                    record(format!("{path} with wrong credential #{i}"), &a);
                }
                // Not searched for secrets: the sign-in form keeps the address asked for, so
                // it shows the caller's own query string back to the caller.
                for query in ["token", "access_token"] {
                    let u = format!("{url}?{query}={}", percent_encoded(ADMIN_TOKEN));
                    let a = send(method, &u, &[], None).await;
                    assert_eq!(a.status, 401, "{path}?{query}=: {}", a.text());
                    assert!(!a.sets_session(), "{path}: {}", a.text());
                }
                // The admin token opens it, as a bearer token and as the signed-in cookie.
                for (name, value) in [
                    ("authorization", format!("Bearer {ADMIN_TOKEN}")),
                    ("cookie", cookie.clone()),
                ] {
                    let a = send(method, &url, &[(name, value)], None).await;
                    let expect = if path.contains("INC-7") || path.contains("/charts/") {
                        404
                    } else {
                        200
                    };
                    assert_eq!(
                        a.status,
                        expect,
                        "{path} with the admin {name}: {}",
                        a.text()
                    );
                    record(format!("{path} as admin"), &a);
                }
            }
            Door::Signed => {
                let body =
                    r#"{"service": "checkout", "version": "v2.3.1", "environment": "production"}"#;
                let signed = |key: &str, at: i64, body: &str| {
                    vec![
                        ("x-sitrep-timestamp", at.to_string()),
                        (
                            "x-sitrep-signature",
                            sitrep::integrations::deploys::sign(
                                key.as_bytes(),
                                at,
                                body.as_bytes(),
                            ),
                        ),
                    ]
                };
                let json_type = ("content-type", "application/json".to_string());
                let mut bearer_only = vec![("authorization", format!("Bearer {ADMIN_TOKEN}"))];
                bearer_only.push(json_type.clone());
                let cases: Vec<(&str, Headers, u16)> = vec![
                    ("unsigned", vec![json_type.clone()], 401),
                    ("the admin token instead of a signature", bearer_only, 401),
                    (
                        "signed with another key",
                        signed("not the secret", now, body),
                        401,
                    ),
                    (
                        "signed with the admin token",
                        signed(ADMIN_TOKEN, now, body),
                        401,
                    ),
                    (
                        "signed over another body",
                        signed(DEPLOY_SECRET, now, r#"{"service": "x", "version": "1"}"#),
                        401,
                    ),
                    ("stale", signed(DEPLOY_SECRET, now - 400, body), 401),
                    (
                        "from the future",
                        signed(DEPLOY_SECRET, now + 400, body),
                        401,
                    ),
                    ("signed", signed(DEPLOY_SECRET, now, body), 202),
                    ("replayed", signed(DEPLOY_SECRET, now, body), 409),
                ];
                for (name, headers, status) in cases {
                    let a = send(method, &url, &headers, Some(body.to_string())).await;
                    assert_eq!(a.status, status, "{path} {name}: {}", a.text());
                    record(format!("{path} {name}"), &a);
                }
            }
            Door::Open => {}
        }
    }

    // The open doors open for anyone, and give nothing away.
    let a = send("GET", &format!("{base}/healthz"), &[], None).await;
    assert_eq!((a.status, a.body.trim()), (200, "ok"));
    let a = send("GET", &format!("{base}/"), &[], None).await;
    assert!(a.status / 100 == 3, "{}", a.text());
    assert_eq!(a.headers[header::LOCATION], "/status");
    let a = send("GET", &format!("{base}/login"), &[], None).await;
    assert_eq!(a.status, 200);
    assert!(a.body.contains("name=\"token\""), "{}", a.body);
    let a = send(
        "POST",
        &format!("{base}/login"),
        &[(
            "content-type",
            "application/x-www-form-urlencoded".to_string(),
        )],
        Some("token=guess&next=%2Fincidents".into()),
    )
    .await;
    assert_eq!(a.status, 401);
    assert!(!a.sets_session());
    record("a wrong sign-in".into(), &a);
    let a = send("POST", &format!("{base}/logout"), &[], None).await;
    assert_eq!(a.status, 303);
    assert!(!a.sets_session());
    // Nothing else is served.
    for path in ["/admin", "/hooks/github", "/incidents/INC-1/edit", "/.env"] {
        let a = send("GET", &format!("{base}{path}"), &[], None).await;
        assert_eq!(a.status, 404, "{path}: {}", a.text());
    }

    assert!(bot.stop().success());
    let secrets = all_secrets();
    assert_no_leak("the HTTP edge's answers", &answers, &secrets);
    assert_no_leak("the bot's log", &bot.log(), &secrets);
}

// ---------------------------------------------------------------------------------------------
// Per-command permissions, for every command of every manifest.

/// A value Discord's client would accept for an option. The last choice, because the first of
/// the incident role choices is `commander`, which would hand the incident over.
fn sample(spec: &Value, user: u64) -> Value {
    if let Some(last) = spec["choices"].as_array().and_then(|c| c.last()) {
        return last["value"].clone();
    }
    match spec["type"].as_u64() {
        Some(3) => {
            let max = spec["max_length"].as_u64().unwrap_or(100) as usize;
            let text = match spec["name"].as_str() {
                Some("target") => "dba",
                _ => "written by the permission check",
            };
            json!(text.chars().take(max).collect::<String>())
        }
        Some(4) => json!(spec["min_value"].as_i64().unwrap_or(1).max(1)),
        Some(5) => json!(true),
        Some(6) => json!(user.to_string()),
        Some(10) => json!(spec["min_value"].as_f64().unwrap_or(1.0).max(1.0)),
        other => panic!("no sample for option type {other:?}: {spec}"),
    }
}

/// One slash command per runnable leaf: its path (`incident open`), and its required options
/// nested under its subcommands, as [`FakeDiscord::slash`] takes them.
fn slash_commands(user: u64) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for m in sitrep::commands::options::manifests() {
        if m["type"].as_u64().unwrap_or(1) != 1 {
            continue;
        }
        let name = m["name"].as_str().unwrap().to_string();
        for (path, specs) in sitrep::commands::options::leaves(m) {
            let mut options = serde_json::Map::new();
            for s in specs.iter().filter(|s| s["required"] == true) {
                options.insert(s["name"].as_str().unwrap().into(), sample(s, user));
            }
            let mut value = Value::Object(options);
            for sub in path.iter().rev() {
                value = json!({ sub.as_str(): value });
            }
            let full = std::iter::once(name.clone())
                .chain(path)
                .collect::<Vec<_>>()
                .join(" ");
            out.push((full, name.clone(), value));
        }
    }
    out
}

/// Requests that change something on Discord, as opposed to reading it or answering an
/// interaction.
fn discord_writes(fake: &FakeDiscord) -> Vec<String> {
    fake.requests()
        .into_iter()
        .filter(|r| {
            r.method != "GET"
                && !r.route.contains("/interactions/")
                && !r.route.contains("/webhooks/")
                && !r.route.starts_with("PUT /applications")
        })
        .map(|r| r.route)
        .collect()
}

async fn restarted(
    bot: &mut Bot,
    fake: &FakeDiscord,
    w: support::bot::World,
    extra: &str,
    n: u32,
) -> Bot {
    let next = bot.restart(fake, w, Mode::Proxy, extra);
    fake.wait_until(Duration::from_secs(15), |f| {
        (f.gateway_stats().identifies >= n).then_some(())
    })
    .await
    .expect("the restarted bot identifies");
    next
}

#[track_caller]
fn assert_refused(what: &str, first: &InteractionResponse, text: &str) {
    assert!(
        first.ephemeral(),
        "{what}: the refusal is not private: {text}"
    );
    assert!(
        text.starts_with("you are not allowed to") || text.contains("\nyou are not allowed to"),
        "{what}: not refused: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_refuses_members_without_its_role() {
    let fake = FakeDiscord::start().await;
    let w = world(&fake);
    let leads = fake.add_role("incident-leads");
    let dba = fake.add_role("dba");
    fake.set_member_roles(OWNER_ID, &[leads]);
    let mallory = fake.add_member("mallory", &[]);
    let lead = fake.add_member("lead", &[leads]);
    let pager = fake.add_member("pager", &[dba]);
    let commander_only = sitrep::commands::commander_only();
    // Every command needs the leads role, except those that need the incident's commander.
    let mut extra = String::from("[permissions]\n");
    let paths = sitrep::commands::options::command_paths();
    for p in &paths {
        if !commander_only.contains(&p.as_str()) {
            extra.push_str(&format!("{p:?} = [{leads}]\n"));
        }
    }
    extra.push_str(&format!("\n[escalation.targets.dba]\nroles = [{dba}]\n"));
    let commands = slash_commands(lead);
    let context_menus: Vec<(u64, String)> = sitrep::commands::options::manifests()
        .iter()
        .filter(|m| matches!(m["type"].as_u64(), Some(2 | 3)))
        .map(|m| {
            (
                m["type"].as_u64().unwrap(),
                m["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        commands.len() + context_menus.len(),
        paths.len(),
        "every command path is exercised"
    );
    assert!(!context_menus.is_empty());

    // An incident with its opening post (and its buttons) and a page waiting for acknowledgement.
    let mut bot = Bot::start(&fake, w, Mode::Proxy, &extra);
    fake.wait_ready().await;
    let channel = open(&fake, OWNER_ID, "Cache is cold", "SEV3").await;
    let opening = wait_post(&fake, channel, "Cache is cold").await;
    let i = fake.slash(
        OWNER_ID,
        channel,
        "escalate",
        json!({"target": "dba", "reason": "the cache needs a warm-up"}),
    );
    answer(&fake, &i).await;
    let page = wait_post(&fake, channel, "you are needed on").await;
    assert!(bot.stop().success());
    let before = Store::open(bot.db_path()).unwrap().dump().unwrap();

    // Refused: every command for a member without the role, and the commander's commands for a
    // role holder who is not the commander.
    let mut bot = restarted(&mut bot, &fake, w, &extra, 2).await;
    let writes = discord_writes(&fake);
    for (path, name, options) in &commands {
        let mut who = vec![("a member without the role", mallory)];
        if commander_only.contains(&path.as_str()) {
            who.push(("a role holder who is not the commander", lead));
        }
        for (label, user) in who {
            let i = fake.slash(user, channel, name, options.clone());
            let (first, text) = answer(&fake, &i).await;
            assert_refused(&format!("/{path} by {label}"), &first, &text);
            if commander_only.contains(&path.as_str()) {
                assert!(text.contains("INC-1's commander"), "/{path}: {text}");
            } else {
                assert!(text.contains(&format!("<@&{leads}>")), "/{path}: {text}");
            }
        }
    }
    for (kind, name) in &context_menus {
        let i = if *kind == 3 {
            fake.message_command(mallory, id_of(&opening), name)
        } else {
            fake.user_command(mallory, lead, name)
        };
        let (first, text) = answer(&fake, &i).await;
        assert_refused(
            &format!("{name} by a member without the role"),
            &first,
            &text,
        );
    }
    // The update form opens for anyone, but what it sends is `/incident update`.
    let click = fake.click(mallory, id_of(&opening), "incident:update:1");
    assert_eq!(fake.wait_response(&click).await.kind, 9, "a form");
    let submit = fake.submit_modal(&click, &[("understanding", "written by mallory")]);
    let (first, text) = answer(&fake, &submit).await;
    assert_refused("the update form", &first, &text);
    // Acknowledging a page takes one of its roles, or the commander.
    for user in [mallory, lead] {
        let i = fake.click(user, id_of(&page), "escalation:ack:1:1");
        let (first, text) = answer(&fake, &i).await;
        assert_refused("acknowledging the page", &first, &text);
    }
    assert_eq!(
        discord_writes(&fake),
        writes,
        "a refusal posted or changed something"
    );
    assert!(bot.stop().success());
    let after = Store::open(bot.db_path()).unwrap().dump().unwrap();
    assert!(after == before, "a refused command changed the store");

    // Allowed: the same commands for a role holder, the commander's for the commander.
    let mut bot = restarted(&mut bot, &fake, w, &extra, 3).await;
    for (path, name, options) in &commands {
        let user = if commander_only.contains(&path.as_str()) {
            OWNER_ID
        } else {
            lead
        };
        let i = fake.slash(user, channel, name, options.clone());
        let (_, text) = answer(&fake, &i).await;
        assert!(!text.contains("not allowed"), "/{path}: {text}");
    }
    for (kind, name) in &context_menus {
        let i = if *kind == 3 {
            fake.message_command(lead, id_of(&opening), name)
        } else {
            fake.user_command(lead, mallory, name)
        };
        let (_, text) = answer(&fake, &i).await;
        assert!(!text.contains("not allowed"), "{name}: {text}");
    }
    // Escalation #1 stopped when /incident resolve ran above, and its page lost its buttons;
    // the one /escalate started after the reopen is running.
    let second = fake
        .wait_until(Duration::from_secs(15), |f| {
            f.messages(channel)
                .into_iter()
                .find(|m| m.to_string().contains("escalation:ack:1:2"))
        })
        .await
        .expect("the second escalation's page");
    let i = fake.click(pager, id_of(&second), "escalation:ack:1:2");
    let (_, text) = answer(&fake, &i).await;
    assert!(
        text.starts_with("You acknowledged escalation #2 of INC-1"),
        "{text}"
    );
    assert!(bot.stop().success());
    assert!(Store::open(bot.db_path()).unwrap().dump().unwrap() != before);
}
