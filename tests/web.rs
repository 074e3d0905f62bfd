//! The status page and the incident browser on a real HTTP edge: every route, the admin token
//! (form, cookie, bearer, expiry), nothing internal on the public page, hostile text kept inert,
//! and a real headless Chromium (Debian's `chromium` and `chromium-driver`) over WebDriver.

use chrono::{DateTime, Duration, TimeZone, Utc};
use fantoccini::{ClientBuilder, Locator};
use serde_json::{json, Value};
use sitrep::app::App;
use sitrep::chat::console::{parse_line, ConsoleChat};
use sitrep::commands::options::console_user_id;
use sitrep::commands::{self, Invocation};
use sitrep::config::{Config, Secrets};
use sitrep::domain::{Actor, EventKind, IncidentId, UserRef};
use sitrep::render::TimeStyle;
use sitrep::store::{CapturedMessage, Deploy, DeploySource, MessageAttachment, Store};
use sitrep::testkit::TestApp;
use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use tokio::sync::oneshot;

const TOKEN: &str = "test-admin-token-0123456789abcdef";
/// Typed into a note and a channel message: it must never reach the public page.
const FAKE_SECRET: &str = "AKIA-FAKE-SECRET-93f1c0de";
const INTERNAL_TITLE: &str = "db-7 primary OOM-killed, see grafana.internal";
const PUBLIC_TITLE: &str = "Payments are failing for some customers";
const XSS_TITLE: &str = "<script>window.__xss=1</script>\"><img src=x onerror=\"window.__xss=2\">";
const XSS_UPDATE: &str =
    "Rolled back </p><script>window.__xss=3</script> see [docs](javascript:window.__xss=4)";

fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, h, m, 0).unwrap()
}

fn user(name: &str) -> UserRef {
    UserRef::new(console_user_id(name), name)
}

fn secrets(token: Option<&str>) -> Secrets {
    let mut env = BTreeMap::new();
    if let Some(t) = token {
        env.insert("SITREP_HTTP_ADMIN_TOKEN".to_string(), t.to_string());
    }
    Secrets::from_env(&env)
}

fn public_config() -> Config {
    let mut c = Config::default();
    c.status_page.enabled = true;
    c.status_page.title = "Acme status".into();
    c
}

/// A bot with a store, a console chat, a settable clock and its HTTP edge on a free port.
struct Harness {
    app: App,
    kit: TestApp<ConsoleChat>,
    base: String,
    stop: Option<oneshot::Sender<()>>,
}

impl Harness {
    async fn start(config: Config, token: Option<&str>) -> Harness {
        let kit = TestApp::builder()
            .config(config)
            .clock_at(at(10, 0))
            .time_style(TimeStyle::Plain)
            .build_console();
        let app = kit.app.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(sitrep::http::serve(
            app.clone(),
            listener,
            secrets(token),
            async move {
                let _ = stopped.await;
            },
        ));
        Harness {
            app,
            kit,
            base: format!("http://{addr}"),
            stop: Some(stop),
        }
    }

    fn set(&self, t: DateTime<Utc>) {
        self.kit.set(t);
    }

    fn store(&self) -> &Store {
        &self.app.store
    }

    /// Runs a console line as `who`, in the newest incident's channel.
    async fn run(&self, who: &str, line: &str) -> String {
        let channel = self
            .store()
            .latest_incident()
            .unwrap()
            .and_then(|i| i.channel);
        let inv = Invocation {
            user: user(who),
            member_roles: Vec::new(),
            channel,
            input: parse_line(line).unwrap(),
        };
        match commands::run(&self.app, &inv).await {
            Ok(o) => o.reply.post.content,
            Err(e) => panic!("{line}: {}", e.to_chat(&inv.input.path())),
        }
    }

    fn append(&self, id: IncidentId, t: DateTime<Utc>, actor: Actor, kind: EventKind) -> u32 {
        self.set(t);
        let (inc, _) = self
            .app
            .record(id, &actor, t, move |_| Ok(vec![kind.clone()]))
            .unwrap();
        inc.events - 1
    }

    fn say(&self, id: IncidentId, msg: u64, who: &str, t: DateTime<Utc>, text: &str) {
        let inc = self.store().incident(id).unwrap().unwrap();
        let mut m = CapturedMessage::new(msg, inc.channel.unwrap(), user(who), t, text);
        if msg % 2 == 1 {
            m.attachments.push(MessageAttachment {
                name: "errors.png".into(),
                url: "https://cdn.example.com/errors.png".into(),
                content_type: Some("image/png".into()),
            });
        }
        self.store().capture_message(id, &m).unwrap();
    }

    fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        Self::client()
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    async fn get_with(&self, path: &str, header: (&str, &str)) -> reqwest::Response {
        Self::client()
            .get(format!("{}{path}", self.base))
            .header(header.0, header.1)
            .send()
            .await
            .unwrap()
    }

    async fn admin(&self, path: &str) -> reqwest::Response {
        self.get_with(path, ("authorization", &format!("Bearer {TOKEN}")))
            .await
    }

    async fn admin_text(&self, path: &str) -> String {
        let res = self.admin(path).await;
        let status = res.status();
        let body = res.text().await.unwrap();
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    async fn login(&self, token: &str, next: &str) -> reqwest::Response {
        Self::client()
            .post(format!("{}/login", self.base))
            .form(&[("token", token), ("next", next)])
            .send()
            .await
            .unwrap()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A small real PNG, as a metric snapshot's chart.
fn chart_png() -> Vec<u8> {
    let (w, h) = (240u32, 80u32);
    let mut pixels = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            let line = (h - 1 - y) == (x * (h - 1) / w) % h;
            pixels.extend_from_slice(if line {
                &[208, 2, 27]
            } else {
                &[250, 250, 250]
            });
        }
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().unwrap();
        writer.write_image_data(&pixels).unwrap();
    }
    out
}

/// What the scripted incidents leave, for the checks.
struct Scripted {
    main: IncidentId,
    resolved: IncidentId,
    hidden: IncidentId,
    drill: IncidentId,
    chart_seq: u32,
}

/// INC-1: open, with a note holding a secret, channel messages, a key moment, a public title,
/// an update, a metric snapshot with its chart, an escalation and a role. INC-2: resolved with a
/// public summary. INC-3: kept off the public page. INC-4: a drill.
async fn script(h: &Harness) -> Scripted {
    h.store()
        .put_deploy(&Deploy {
            source: DeploySource::Webhook,
            id: "ci-981".into(),
            service: "payment-gateway".into(),
            version: "v3.1".into(),
            commit: Some("9f2c1e7".into()),
            author: Some("erin".into()),
            environment: Some("production".into()),
            status: Some("success".into()),
            url: Some("https://ci.example.com/981".into()),
            time: at(9, 40),
        })
        .unwrap();
    h.set(at(10, 0));
    h.run(
        "alice",
        &format!(
            r#"/incident open title:"{INTERNAL_TITLE}" severity:SEV2 service:checkout summary:"EU customers cannot pay" started:"2026-11-21 09:50""#
        ),
    )
    .await;
    let main = IncidentId(1);
    h.set(at(10, 2));
    h.run(
        "alice",
        &format!(r#"/incident note text:"AWS key {FAKE_SECRET} leaked in https://grafana.internal/d/db7""#),
    )
    .await;
    h.say(
        main,
        1001,
        "bob",
        at(10, 3),
        "Seeing 500s from the payment gateway",
    );
    h.say(
        main,
        1002,
        "dave",
        at(10, 4),
        &format!("creds are {FAKE_SECRET}, rotate please"),
    );
    h.store()
        .highlight_message(main, 1001, &Actor::User(user("carol")), at(10, 4))
        .unwrap();
    h.set(at(10, 5));
    h.run(
        "alice",
        &format!(r#"/incident public visible:true title:"{PUBLIC_TITLE}" summary:"Some customers in Europe cannot complete checkout.""#),
    )
    .await;
    h.set(at(10, 6));
    h.run(
        "alice",
        r#"/incident update state:identified message:"We found the cause and are rolling back the payment service.""#,
    )
    .await;
    let chart_seq = h.append(
        main,
        at(10, 7),
        Actor::User(user("alice")),
        EventKind::MetricSnapshot {
            query: "error_rate{service=checkout}".into(),
            summary: "0.42 req/s, 12× the day before".into(),
            chart: Some("chart.png".into()),
        },
    );
    h.store().put_chart(main, chart_seq, &chart_png()).unwrap();
    h.append(
        main,
        at(10, 8),
        Actor::User(user("alice")),
        EventKind::Escalated {
            escalation: 1,
            target: "payments-oncall".into(),
            level: 1,
            roles: vec![42],
            reason: "card processor errors".into(),
            users: Vec::new(),
        },
    );
    h.append(
        main,
        at(10, 9),
        Actor::User(user("frank")),
        EventKind::EscalationAcknowledged { escalation: 1 },
    );
    h.set(at(10, 10));
    h.run("alice", "/incident role role:communications user:@carol")
        .await;

    h.set(at(10, 20));
    h.run(
        "gina",
        r#"/incident open title:"Search index lagging on es-3" severity:SEV3 summary:"Search results are a few minutes old""#,
    )
    .await;
    let resolved = IncidentId(2);
    h.set(at(10, 25));
    h.run(
        "gina",
        r#"/incident resolve summary:"Search is up to date again.""#,
    )
    .await;

    h.set(at(10, 30));
    h.run(
        "hank",
        r#"/incident open title:"Vault unsealed by mistake on prod-secrets" severity:SEV4"#,
    )
    .await;
    let hidden = IncidentId(3);
    h.run("hank", "/incident public visible:false").await;

    h.set(at(10, 35));
    h.run(
        "ivan",
        r#"/incident open title:"Game day: failover drill" severity:SEV1 drill:true"#,
    )
    .await;
    let drill = IncidentId(4);
    h.set(at(10, 40));
    Scripted {
        main,
        resolved,
        hidden,
        drill,
        chart_seq,
    }
}

/// Everything internal to the scripted incidents that the public page must never show.
fn internal_strings() -> Vec<&'static str> {
    vec![
        FAKE_SECRET,
        INTERNAL_TITLE,
        "db-7",
        "grafana.internal",
        "alice",
        "bob",
        "carol",
        "dave",
        "frank",
        "gina",
        "hank",
        "ivan",
        "erin",
        "Seeing 500s",
        "rotate please",
        "EU customers cannot pay",
        "Vault unsealed",
        "prod-secrets",
        "Game day",
        "payments-oncall",
        "error_rate",
        "inc-1-",
        "payment-gateway",
        "ci.example.com",
        "Roles",
        "commander",
    ]
}

#[tokio::test]
async fn the_status_page_shows_only_what_stakeholders_were_told() {
    let h = Harness::start(public_config(), Some(TOKEN)).await;
    let s = script(&h).await;

    let res = h.get("/status").await;
    assert_eq!(res.status(), 200);
    let csp = res.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(res.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("public"));
    let page = res.text().await.unwrap();
    for needle in [
        "<html lang=\"en\">",
        "name=\"viewport\"",
        "http-equiv=\"refresh\" content=\"60\"",
        "Acme status",
        "1 active incident<",
        PUBLIC_TITLE,
        "Some customers in Europe cannot complete checkout.",
        "SEV2 · Major",
        "Identified",
        "2026-11-21 09:50 UTC",
        "We found the cause and are rolling back the payment service.",
        "2026-11-21 10:06 UTC",
        "Next update",
        "2026-11-21 10:30 UTC",
        "Search results are a few minutes old",
        "Search index lagging",
        "Search is up to date again.",
        "href=\"/status/feed.atom\"",
    ] {
        assert!(page.contains(needle), "missing {needle:?} in:\n{page}");
    }
    for secret in internal_strings() {
        assert!(
            !page.contains(secret),
            "{secret:?} is on the public page:\n{page}"
        );
    }
    let quiet = h.get("/status?refresh=off").await.text().await.unwrap();
    assert!(!quiet.contains("http-equiv=\"refresh\""));

    let res = h.get("/status.json").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    let text = res.text().await.unwrap();
    for secret in internal_strings() {
        assert!(
            !text.contains(secret),
            "{secret:?} is in status.json:\n{text}"
        );
    }
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["status"], "incident");
    assert_eq!(v["worst_severity"], "SEV2");
    let open = v["open_incidents"].as_array().unwrap();
    assert_eq!(
        open.len(),
        1,
        "hidden and drill incidents are left out: {v:#}"
    );
    assert_eq!(open[0]["id"], s.main.to_string());
    assert_eq!(open[0]["title"], PUBLIC_TITLE);
    assert_eq!(open[0]["state"], "identified");
    assert_eq!(open[0]["started"], "2026-11-21T09:50:00Z");
    assert_eq!(
        open[0]["latest_update"]["text"],
        "We found the cause and are rolling back the payment service."
    );
    assert_eq!(open[0]["next_update"], "2026-11-21T10:30:00Z");
    let resolved = v["recently_resolved"].as_array().unwrap();
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0]["id"], s.resolved.to_string());
    assert_eq!(resolved[0]["latest_update"]["kind"], "resolved");
    for id in [s.hidden, s.drill] {
        assert!(!text.contains(&format!("\"{id}\"")), "{id} is public");
    }

    let res = h.get("/status/feed.atom").await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"],
        "application/atom+xml; charset=utf-8"
    );
    let feed = res.text().await.unwrap();
    assert!(
        feed.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">"),
        "{feed}"
    );
    for needle in [
        "<title>Acme status</title>",
        "<updated>2026-11-21T10:25:00Z</updated>",
        &format!("<title>{PUBLIC_TITLE}: Update (identified)</title>"),
        &format!("<title>{PUBLIC_TITLE}: SEV2 declared</title>"),
        "<content type=\"text\">Search is up to date again.</content>",
        "<id>urn:sitrep:INC-1:update:",
    ] {
        assert!(feed.contains(needle), "missing {needle:?} in:\n{feed}");
    }
    assert_eq!(feed.matches("<entry>").count(), 4, "{feed}");
    for secret in internal_strings() {
        assert!(!feed.contains(secret), "{secret:?} is in the feed:\n{feed}");
    }

    // Hiding the incident takes it off every public view at once.
    h.set(at(10, 45));
    let reply = h
        .run("alice", "/incident public visible:false incident:INC-1")
        .await;
    assert_eq!(reply, "INC-1 is kept off the public status page.");
    let page = h.get("/status").await.text().await.unwrap();
    assert!(page.contains("All systems operational"), "{page}");
    assert!(!page.contains(PUBLIC_TITLE));
    assert!(!h
        .get("/status/feed.atom")
        .await
        .text()
        .await
        .unwrap()
        .contains(PUBLIC_TITLE));
    // `/` leads to the status page.
    let res = h.get("/").await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/status");
}

#[tokio::test]
async fn the_status_page_is_private_until_enabled() {
    let h = Harness::start(Config::default(), Some(TOKEN)).await;
    script(&h).await;
    for path in ["/status", "/status.json", "/status/feed.atom"] {
        let res = h.get(path).await;
        assert_eq!(res.status(), 401, "{path}");
        let body = res.text().await.unwrap();
        assert!(body.contains("name=\"token\""), "{path}: {body}");
        let res = h.admin(path).await;
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(res.headers()["cache-control"], "private, no-store");
    }
    let preview = h.admin_text("/status").await;
    assert!(
        preview.contains("Preview: this page is not public"),
        "{preview}"
    );

    let h = Harness::start(Config::default(), None).await;
    assert_eq!(h.get("/status").await.status(), 404);
}

#[tokio::test]
async fn every_admin_route_needs_the_token() {
    let h = Harness::start(public_config(), Some(TOKEN)).await;
    let s = script(&h).await;
    let routes = [
        "/incidents".to_string(),
        "/incidents?state=open".to_string(),
        format!("/incidents/{}", s.main),
        format!("/incidents/{}/postmortem", s.main),
        format!("/incidents/{}/postmortem.md", s.main),
        format!("/postmortems/{}.md", s.main),
        format!("/incidents/{}/charts/{}.png", s.main, s.chart_seq),
    ];
    for path in &routes {
        // No token: a person gets the sign-in form, still a 401.
        let res = h.get(path).await;
        assert_eq!(res.status(), 401, "{path}");
        assert!(res.headers().contains_key("www-authenticate"));
        let body = res.text().await.unwrap();
        assert!(
            body.contains("<form method=\"post\" action=\"/login\""),
            "{body}"
        );
        assert!(
            body.contains(&format!(
                "name=\"next\" value=\"{}\"",
                path.replace('&', "&amp;").replace('/', "&#x2f;")
            )),
            "{body}"
        );
        assert!(!body.contains(FAKE_SECRET));
        // A wrong bearer token: a plain answer for the script.
        let res = h
            .get_with(path, ("authorization", "Bearer not-the-token"))
            .await;
        assert_eq!(res.status(), 401, "{path}");
        assert!(res.text().await.unwrap().contains("not the admin token"));
        // Another scheme is no better.
        let res = h
            .get_with(path, ("authorization", &format!("Basic {TOKEN}")))
            .await;
        assert_eq!(res.status(), 401, "{path}");
        // The right one.
        let res = h.admin(path).await;
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(
            res.headers()["cache-control"],
            "private, no-store",
            "{path}"
        );
    }

    // Signing in with the form: a wrong token is refused, the right one sets the cookie.
    let res = h.login("guess", "/incidents/INC-1").await;
    assert_eq!(res.status(), 401);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("That is not the admin token."));
    let res = h.login(TOKEN, "/incidents/INC-1").await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/incidents/INC-1");
    let set = res.headers()["set-cookie"].to_str().unwrap().to_string();
    for part in [
        "sitrep_session=",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/",
        "Max-Age=43200",
    ] {
        assert!(set.contains(part), "{set}");
    }
    assert!(!set.contains(TOKEN), "the cookie is not the token: {set}");
    let cookie = set.split(';').next().unwrap().to_string();
    let res = h.get_with("/incidents/INC-1", ("cookie", &cookie)).await;
    assert_eq!(res.status(), 200);
    // Sign-in sends people only to this site.
    let res = h.login(TOKEN, "https://evil.example/").await;
    assert_eq!(res.headers()["location"], "/incidents");

    // A tampered cookie (a later expiry) and an expired one are refused and cleared.
    let (name_expiry, sig) = cookie.split_once('.').unwrap();
    let (name, expiry) = name_expiry.split_once('=').unwrap();
    let forged = format!("{name}={}.{sig}", expiry.parse::<i64>().unwrap() + 86_400);
    let res = h.get_with("/incidents", ("cookie", &forged)).await;
    assert_eq!(res.status(), 401);
    h.set(at(10, 40) + Duration::hours(12) + Duration::seconds(1));
    let res = h.get_with("/incidents/INC-1", ("cookie", &cookie)).await;
    assert_eq!(res.status(), 401);
    let cleared = res.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cleared.contains("sitrep_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    let body = res.text().await.unwrap();
    assert!(body.contains("Your session has expired"), "{body}");

    // Signing out clears the cookie.
    let res = Harness::client()
        .post(format!("{}/logout", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert!(res.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));

    // Without a configured token the browser is off, and says how to turn it on.
    let off = Harness::start(public_config(), None).await;
    for path in ["/incidents", "/login"] {
        let res = off
            .get_with(path, ("authorization", "Bearer anything"))
            .await;
        assert_eq!(res.status(), 503, "{path}");
        assert!(res
            .text()
            .await
            .unwrap()
            .contains("SITREP_HTTP_ADMIN_TOKEN"));
    }
    assert_eq!(off.login("anything", "/").await.status(), 503);
    // The status page stays public.
    assert_eq!(off.get("/status").await.status(), 200);
}

#[tokio::test]
async fn wrong_tokens_are_throttled() {
    let h = Harness::start(public_config(), Some(TOKEN)).await;
    for _ in 0..20 {
        assert_eq!(h.login("guess", "/").await.status(), 401);
    }
    let res = h.admin("/incidents").await;
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers()["retry-after"], "60");
}

#[tokio::test]
async fn the_incident_list_filters() {
    let h = Harness::start(public_config(), Some(TOKEN)).await;
    script(&h).await;
    let ids = |page: &str| -> Vec<String> {
        (1..=4)
            .map(|n| format!("INC-{n}"))
            .filter(|id| page.contains(&format!("href=\"/incidents/{id}\"")))
            .collect()
    };
    let all = h.admin_text("/incidents").await;
    assert_eq!(ids(&all), ["INC-1", "INC-2", "INC-3", "INC-4"]);
    assert!(all.contains("4 of 4 incidents"), "{all}");
    assert!(
        all.contains(INTERNAL_TITLE),
        "internal pages show internal titles"
    );
    assert!(all.contains("kept off"));
    for (query, want) in [
        ("state=open", vec!["INC-1", "INC-3", "INC-4"]),
        ("state=resolved", vec!["INC-2"]),
        ("state=identified", vec!["INC-1"]),
        ("severity=SEV2", vec!["INC-1"]),
        ("service=CHECKOUT", vec!["INC-1"]),
        (
            "from=2026-11-21&to=2026-11-21",
            vec!["INC-1", "INC-2", "INC-3", "INC-4"],
        ),
        ("from=2026-11-22", vec![]),
        ("to=2026-11-20", vec![]),
        (
            "state=&severity=&service=&from=&to=",
            vec!["INC-1", "INC-2", "INC-3", "INC-4"],
        ),
    ] {
        let page = h.admin_text(&format!("/incidents?{query}")).await;
        assert_eq!(ids(&page), want, "{query}");
    }
    let res = h.admin("/incidents?from=yesterday&severity=SEV9x").await;
    assert_eq!(res.status(), 400);
    let page = res.text().await.unwrap();
    assert!(
        page.contains("from `yesterday` is not a day like 2026-11-21"),
        "{page}"
    );
    assert!(page.contains("not a severity"), "{page}");
}

#[tokio::test]
async fn the_incident_page_shows_the_whole_timeline() {
    let h = Harness::start(public_config(), Some(TOKEN)).await;
    let s = script(&h).await;
    let page = h.admin_text("/incidents/INC-1").await;
    for needle in [
        INTERNAL_TITLE,
        "SEV2 · Major",
        // Absolute UTC times, to the second.
        "2026-11-21 09:50:00 UTC",
        "2026-11-21 10:00:00 UTC",
        // Events: note, update, key moment, metric with chart, escalation, role.
        FAKE_SECRET,
        "We found the cause and are rolling back the payment service.",
        "Key moment",
        "Seeing 500s from the payment gateway",
        "error_rate{service=checkout}: 0.42 req&#x2f;s",
        &format!(
            "src=\"&#x2f;incidents&#x2f;INC-1&#x2f;charts&#x2f;{}.png\"",
            s.chart_seq
        ),
        "Escalated to payments-oncall (level 1): card processor errors",
        "Escalation #1 acknowledged",
        "carol is communications",
        &format!("Shown on the public status page as “{PUBLIC_TITLE}”"),
        // Captured messages, with their attachments.
        "creds are",
        "href=\"https:&#x2f;&#x2f;cdn.example.com&#x2f;errors.png\"",
        // Deploys around the start.
        "payment-gateway",
        "before impact",
        "href=\"https:&#x2f;&#x2f;ci.example.com&#x2f;981\"",
        // The status page's view of it.
        &format!("listed as “{PUBLIC_TITLE}”"),
        "Next status update",
    ] {
        assert!(page.contains(needle), "missing {needle:?} in:\n{page}");
    }
    assert!(page.contains("class=\"ev ev-escalation\""));
    assert!(page.contains("class=\"ev ev-metric\""));
    // The key moment sits at the time it was said (10:03), not when it was marked (10:04).
    let timeline = &page[page.find("<ol class=\"timeline\">").unwrap()..];
    let moment = timeline
        .find("<span class=\"label\">Key moment</span>")
        .unwrap();
    let stamp = timeline[..moment].rfind("<time").unwrap();
    assert!(
        timeline[stamp..moment].contains("2026-11-21 10:03:00 UTC"),
        "{}",
        &timeline[stamp..moment]
    );

    let res = h
        .admin(&format!("/incidents/INC-1/charts/{}.png", s.chart_seq))
        .await;
    assert_eq!(res.headers()["content-type"], "image/png");
    assert_eq!(res.bytes().await.unwrap().as_ref(), chart_png().as_slice());
    assert_eq!(h.admin("/incidents/INC-1/charts/1.png").await.status(), 404);
    assert_eq!(h.admin("/incidents/INC-1/charts/x.gif").await.status(), 404);
    assert_eq!(h.admin("/incidents/INC-99").await.status(), 404);
    assert_eq!(h.admin("/incidents/nope").await.status(), 404);
    // The bare number works too, as in chat.
    assert_eq!(h.admin("/incidents/2").await.status(), 200);
}

/// Each action item shows its issue, linked, and its state; a closed one reads done.
#[tokio::test]
async fn the_incident_page_shows_each_items_issue_and_state() {
    let h = Harness::start(Config::default(), Some(TOKEN)).await;
    h.run(
        "alice",
        "/incident open title:\"Queue backlog\" severity:SEV2",
    )
    .await;
    h.run(
        "alice",
        "/incident action text:\"Alert on queue age\" owner:@bob",
    )
    .await;
    h.run("alice", "/incident action text:\"Autoscale consumers\"")
        .await;
    let id = IncidentId(1);
    let t = at(10, 5);
    h.append(
        id,
        t,
        Actor::User(user("alice")),
        EventKind::ActionItemFiled {
            item: 0,
            tracker: "jira".into(),
            key: "OPS-7".into(),
            url: "https://acme.atlassian.net/browse/OPS-7".into(),
        },
    );
    h.append(
        id,
        t,
        Actor::User(user("alice")),
        EventKind::ActionItemFiled {
            item: 1,
            tracker: "github".into(),
            key: "acme/app#3".into(),
            url: "javascript:alert(1)".into(),
        },
    );
    h.append(
        id,
        at(10, 6),
        Actor::Scheduler,
        EventKind::ActionItemTracked {
            item: 0,
            state: "Done".into(),
            done: true,
        },
    );
    let page = h.admin_text("/incidents/INC-1").await;
    for needle in [
        "<s>Alert on queue age</s> <strong>done</strong>",
        "href=\"https:&#x2f;&#x2f;acme.atlassian.net&#x2f;browse&#x2f;OPS-7\"",
        "<span class=\"issue-state\">Done</span>",
        "Autoscale consumers · acme&#x2f;app#3 <span class=\"issue-state\">open</span>",
        "Action item #1 done (Done in the tracker)",
        "Action item filed",
    ] {
        assert!(page.contains(needle), "missing {needle:?} in:\n{page}");
    }
    // Only http(s) addresses become links.
    assert!(!page.contains("href=\"javascript"), "{page}");
}

#[tokio::test]
async fn the_postmortem_page_renders_the_draft_and_its_versions() {
    let h = Harness::start(public_config(), Some(TOKEN)).await;
    script(&h).await;
    // Before any draft is stored, one is compiled on the fly.
    let page = h.admin_text("/incidents/INC-1/postmortem").await;
    assert!(page.contains("No draft was stored yet"), "{page}");
    assert!(page.contains("<h1>Post-mortem:"), "{page}");

    h.set(at(11, 0));
    h.run("alice", "/postmortem draft incident:INC-1").await;
    h.set(at(11, 5));
    h.run("alice", "/postmortem draft incident:INC-1").await;
    let page = h.admin_text("/incidents/INC-1/postmortem").await;
    for needle in [
        "Version 2, the latest",
        "All versions (2)",
        "postmortem?version=1",
        "href=\"&#x2f;incidents&#x2f;INC-1&#x2f;postmortem.md?version=2\"",
        "<table>",
        "<h2>",
    ] {
        assert!(page.contains(needle), "missing {needle:?} in:\n{page}");
    }
    let old = h.admin_text("/incidents/INC-1/postmortem?version=1").await;
    assert!(old.contains("Version 1 of 2"), "{old}");

    // The scripts' address serves the same file.
    let via_scripts = h.admin_text("/postmortems/INC-1.md?version=1").await;
    let res = h.admin("/incidents/INC-1/postmortem.md?version=1").await;
    assert_eq!(
        res.headers()["content-type"],
        "text/markdown; charset=utf-8"
    );
    assert_eq!(
        res.headers()["content-disposition"],
        "attachment; filename=\"INC-1-postmortem-v1.md\""
    );
    let md = res.text().await.unwrap();
    assert_eq!(md, via_scripts);
    let stored = h
        .store()
        .postmortem(IncidentId(1), Some(1))
        .unwrap()
        .unwrap();
    assert_eq!(md, stored.markdown);
    assert_eq!(
        h.admin("/incidents/INC-1/postmortem?version=9")
            .await
            .status(),
        404
    );
    assert_eq!(
        h.admin("/incidents/INC-1/postmortem?version=x")
            .await
            .status(),
        400
    );
    assert_eq!(h.admin("/incidents/INC-9/postmortem").await.status(), 404);
}

/// Tags (not text: escaped text may say anything) that could run script: `<script>`, an
/// event handler attribute, or a `javascript:` URL.
fn dangerous_tags(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        let end = rest[start..]
            .find('>')
            .map_or(rest.len(), |e| start + e + 1);
        let tag = rest[start..end].to_ascii_lowercase();
        let handler = tag
            .split(|c: char| c.is_whitespace() || c == '/' || c == '"' || c == '\'')
            .any(|word| word.starts_with("on") && word.contains('='));
        if tag.starts_with("<script") || handler || tag.contains("javascript:") {
            out.push(tag);
        }
        rest = &rest[end..];
    }
    out
}

/// Opens an incident whose every piece of user text is hostile, and gives it a draft.
async fn hostile(h: &Harness) -> IncidentId {
    h.set(at(12, 0));
    let title = XSS_TITLE.replace('"', "\\\"");
    h.run(
        "mallory",
        &format!(r#"/incident open title:"{title}" severity:SEV1 summary:"<b onmouseover=alert(1)>bold</b>""#),
    )
    .await;
    let id = h.store().latest_incident().unwrap().unwrap().id;
    h.set(at(12, 1));
    h.run(
        "mallory",
        &format!(r#"/incident update message:"{XSS_UPDATE}""#),
    )
    .await;
    h.say(
        id,
        2001,
        "mallory",
        at(12, 2),
        "<img src=x onerror=window.__xss=5> [c](javascript:window.__xss=6) <a href=\"javascript:window.__xss=7\">x</a>",
    );
    h.store()
        .highlight_message(id, 2001, &Actor::User(user("mallory")), at(12, 2))
        .unwrap();
    h.append(
        id,
        at(12, 3),
        Actor::User(user("mallory")),
        EventKind::DeployObserved {
            service: "web".into(),
            version: "1".into(),
            environment: None,
            url: Some("javascript:window.__xss=8".into()),
            deployed_at: at(12, 3),
        },
    );
    h.set(at(12, 4));
    h.run("mallory", &format!("/postmortem draft incident:{id}"))
        .await;
    id
}

#[tokio::test]
async fn hostile_text_is_escaped_everywhere() {
    let h = Harness::start(public_config(), Some(TOKEN)).await;
    let id = hostile(&h).await;
    let pages = [
        h.get("/status").await.text().await.unwrap(),
        h.get("/status/feed.atom").await.text().await.unwrap(),
        h.admin_text("/incidents").await,
        h.admin_text(&format!("/incidents/{id}")).await,
        h.admin_text(&format!("/incidents/{id}/postmortem")).await,
    ];
    for (page, html) in pages.iter().enumerate() {
        let bad = dangerous_tags(html);
        assert!(bad.is_empty(), "page {page} has {bad:?}:\n{html}");
        for raw in ["<script>window", "<img src=x", "<b onmouseover"] {
            assert!(
                !html.contains(raw),
                "page {page}: {raw:?} survived:\n{html}"
            );
        }
    }
    assert!(pages[0].contains("&lt;script&gt;window.__xss=1&lt;&#x2f;script&gt;"));
    // JSON carries the text as data; a consumer must escape it, as JSON does for quotes.
    let v: Value = h.get("/status.json").await.json().await.unwrap();
    assert_eq!(v["open_incidents"][0]["title"], XSS_TITLE);
}

// ---------------------------------------------------------------------------------------------
// The browser: Debian's chromium, driven by chromedriver over WebDriver.

fn find_program(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

/// chromedriver on a free loopback port, in a process group of its own; dropping it (also when
/// a check fails halfway) kills the group, so that no browser outlives the test.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The group's id is chromedriver's pid; chromium and its helpers are in the group too.
        let group = self.child.id() as libc::pid_t;
        // SAFETY: killpg only sends a signal; the group is the one this test made.
        unsafe {
            libc::killpg(group, libc::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    async fn start(log: &Path) -> Driver {
        let missing = |what: &str| -> ! {
            panic!(
                "{what} is not installed, so the browser test cannot run. Install Debian's \
                 chromium and chromium-driver with `.ci/install-chromium.sh` (as root, or with sudo)."
            )
        };
        let driver = find_program("chromedriver").unwrap_or_else(|| missing("chromedriver"));
        if find_program("chromium").is_none() {
            missing("chromium");
        }
        let port = StdListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(driver)
            .process_group(0)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let d = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            if let Ok(res) = reqwest::get(format!("{}/status", d.url)).await {
                if res.status().is_success() {
                    break;
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "chromedriver did not answer on port {port} within 20 s; its log is {}",
                log.display()
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        d
    }
}

fn capabilities(profile: &Path) -> serde_json::Map<String, Value> {
    let binary = find_program("chromium").expect("checked by Driver::start");
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": binary,
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--window-size=1280,1000",
                format!("--user-data-dir={}", profile.display()),
            ],
        },
    });
    caps.as_object().unwrap().clone()
}

/// Screenshots go where cargo keeps integration tests' files, so that they outlive the run.
fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("web-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shoot(client: &fantoccini::Client, dir: &Path, file: &str) {
    std::fs::write(dir.join(file), client.screenshot().await.unwrap()).unwrap();
}

/// No script ran, no handler or javascript: link exists, and the hostile text shows as text.
const INERT: &str = r#"
    return {
        flag: typeof window.__xss,
        scripts: document.scripts.length,
        handlers: document.querySelectorAll('[onerror],[onload],[onmouseover],[onclick]').length,
        js_links: Array.from(document.querySelectorAll('a[href]'))
            .filter(a => a.href.trim().toLowerCase().startsWith('javascript:')).length,
        images_without_alt: document.querySelectorAll('img:not([alt])').length,
        unlabelled: Array.from(document.querySelectorAll('input:not([type=hidden]),select'))
            .filter(i => !(i.labels && i.labels.length)).length,
        lang: document.documentElement.lang,
        overflow: document.documentElement.scrollWidth > window.innerWidth + 1,
    };
"#;

async fn inert(client: &fantoccini::Client, what: &str) -> Value {
    let v = client.execute(INERT, vec![]).await.unwrap();
    assert_eq!(v["flag"], "undefined", "{what}: a script ran: {v}");
    assert_eq!(v["scripts"], 0, "{what}: {v}");
    assert_eq!(v["handlers"], 0, "{what}: {v}");
    assert_eq!(v["js_links"], 0, "{what}: {v}");
    assert_eq!(v["images_without_alt"], 0, "{what}: {v}");
    assert_eq!(v["unlabelled"], 0, "{what}: {v}");
    assert_eq!(v["lang"], "en", "{what}: {v}");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_browser_reads_both_pages_and_hostile_text_stays_inert() {
    let shots = screenshot_dir();
    let profile = tempfile::tempdir().unwrap();
    let driver = Driver::start(&shots.join("chromedriver.log")).await;
    let h = Harness::start(public_config(), Some(TOKEN)).await;
    let s = script(&h).await;
    let evil = hostile(&h).await;

    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities(profile.path()))
        .connect(&driver.url)
        .await
        .expect("a chromium session through chromedriver");

    // The public status page.
    client.goto(&format!("{}/status", h.base)).await.unwrap();
    assert_eq!(client.title().await.unwrap(), "Acme status");
    let main = client
        .find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        "2 active incidents",
        PUBLIC_TITLE,
        "SEV2 · Major",
        "Identified",
        "We found the cause and are rolling back the payment service.",
        "Resolved in the last 7 days",
        "Search is up to date again.",
        XSS_TITLE,
    ] {
        assert!(
            main.contains(needle),
            "the page does not show {needle:?}:\n{main}"
        );
    }
    for secret in internal_strings() {
        assert!(
            !main.contains(secret),
            "{secret:?} is visible on the status page"
        );
    }
    inert(&client, "status page").await;
    shoot(&client, &shots, "status.png").await;

    // On a phone-sized window nothing needs sideways scrolling.
    client.set_window_size(390, 844).await.unwrap();
    client.refresh().await.unwrap();
    let v = inert(&client, "status page on a phone").await;
    assert_eq!(
        v["overflow"], false,
        "the status page overflows a phone screen"
    );
    shoot(&client, &shots, "status-phone.png").await;
    client.set_window_size(1280, 1000).await.unwrap();

    // The feed is well-formed XML, as a feed reader's parser sees it.
    let feed = h.get("/status/feed.atom").await.text().await.unwrap();
    let parsed = client
        .execute(
            "const d = new DOMParser().parseFromString(arguments[0], 'application/xml');
             return { error: d.getElementsByTagName('parsererror').length,
                      root: d.documentElement.namespaceURI,
                      entries: d.getElementsByTagName('entry').length };",
            vec![json!(feed)],
        )
        .await
        .unwrap();
    assert_eq!(parsed["error"], 0, "{feed}");
    assert_eq!(parsed["root"], "http://www.w3.org/2005/Atom");
    assert!(parsed["entries"].as_u64().unwrap() >= 5, "{parsed}");

    // The incident page: first the sign-in form, then the timeline.
    client
        .goto(&format!("{}/incidents/{}", h.base, s.main))
        .await
        .unwrap();
    let heading = client.find(Locator::Css("h1")).await.unwrap();
    assert_eq!(
        heading.text().await.unwrap(),
        "Sign in to the incident browser"
    );
    inert(&client, "sign-in page").await;
    let token = client.find(Locator::Id("token")).await.unwrap();
    token.send_keys(TOKEN).await.unwrap();
    client
        .find(Locator::Css("form.login button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let heading = client
        .wait()
        .for_element(Locator::Css("h1 .id"))
        .await
        .unwrap();
    assert_eq!(heading.text().await.unwrap(), "INC-1");
    assert!(client
        .current_url()
        .await
        .unwrap()
        .as_str()
        .ends_with("/incidents/INC-1"));
    let cookies = client.get_all_cookies().await.unwrap();
    let session = cookies
        .iter()
        .find(|c| c.name() == "sitrep_session")
        .expect("the session cookie is set");
    assert_eq!(session.http_only(), Some(true));
    assert_eq!(
        client
            .execute("return document.cookie.includes('sitrep_session')", vec![])
            .await
            .unwrap(),
        json!(false),
        "HttpOnly keeps the session from scripts"
    );
    let main = client
        .find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        INTERNAL_TITLE,
        "2026-11-21 10:06:00 UTC",
        "We found the cause and are rolling back the payment service.",
        "Key moment",
        "Seeing 500s from the payment gateway",
        "Escalated to payments-oncall (level 1): card processor errors",
        "error_rate{service=checkout}: 0.42 req/s",
        FAKE_SECRET,
        "payment-gateway",
    ] {
        assert!(
            main.contains(needle),
            "the incident page does not show {needle:?}:\n{main}"
        );
    }
    // The chart is an image the browser could load and decode.
    let chart = client
        .execute(
            "const i = document.querySelector('figure img'); return [i.complete, i.naturalWidth];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(chart, json!([true, 240]), "the chart did not load");
    inert(&client, "incident page").await;
    shoot(&client, &shots, "incident.png").await;
    client
        .execute("document.querySelector('figure').scrollIntoView()", vec![])
        .await
        .unwrap();
    shoot(&client, &shots, "incident-timeline.png").await;

    // The hostile incident: its text shows as text and nothing runs, on every page.
    for (path, what, file) in [
        (
            format!("/incidents/{evil}"),
            "hostile incident page",
            "hostile-incident.png",
        ),
        (
            format!("/incidents/{evil}/postmortem"),
            "hostile post-mortem",
            "hostile-postmortem.png",
        ),
        ("/incidents".to_string(), "incident list", "incidents.png"),
    ] {
        client.goto(&format!("{}{path}", h.base)).await.unwrap();
        let text = client
            .find(Locator::Css("main"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            text.contains("<script>window.__xss=1</script>"),
            "{what}: the title is not shown as text:\n{text}"
        );
        inert(&client, what).await;
        shoot(&client, &shots, file).await;
    }
    // The draft's Markdown links: the javascript: ones lost their target.
    client
        .goto(&format!("{}/incidents/{evil}/postmortem", h.base))
        .await
        .unwrap();
    let links = client
        .execute(
            "return Array.from(document.querySelectorAll('.markdown a[href]')).map(a => a.href);",
            vec![],
        )
        .await
        .unwrap();
    for href in links.as_array().unwrap() {
        let href = href.as_str().unwrap_or("");
        assert!(
            href.starts_with("https://")
                || href.starts_with("http://")
                || href.starts_with("mailto:"),
            "an unsafe link survived in the post-mortem: {href}"
        );
    }
    let typed = client
        .find(Locator::Css(".markdown"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        typed.contains("<img src=x onerror=window.__xss=5>"),
        "HTML typed in chat shows as text in the draft:\n{typed}"
    );

    // Signing out works from the page.
    client
        .find(Locator::Css("nav form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .wait()
        .for_element(Locator::Id("token"))
        .await
        .unwrap();
    client.goto(&format!("{}/incidents", h.base)).await.unwrap();
    let heading = client.find(Locator::Css("h1")).await.unwrap();
    assert_eq!(
        heading.text().await.unwrap(),
        "Sign in to the incident browser"
    );

    client.close().await.unwrap();
    drop(driver);
    eprintln!("screenshots in {}", shots.display());
}
