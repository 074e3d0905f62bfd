//! `/metrics` through the command path against a real Prometheus with known history.

mod support;

use chrono::{DateTime, Utc};
use sitrep::app::App;
use sitrep::commands::{
    self, options::console_user_id, CommandInput, InputOption, InputValue, Invocation,
};
use sitrep::config::{Config, QueryConfig};
use sitrep::domain::{EventKind, UserRef};
use sitrep::integrations::prometheus::PrometheusClient;
use sitrep::render::TimeStyle;
use sitrep::testkit::TestApp;
use std::time::Duration;
use support::prometheus::{HangingServer, PrometheusFixture, ERROR_RATE};

fn app(prom_url: Option<&str>, now: DateTime<Utc>, timeout: Duration) -> App {
    let mut config = Config::default();
    config.queries.insert(
        "error_rate".into(),
        QueryConfig {
            promql: ERROR_RATE.into(),
            unit: Some("req/s".into()),
            description: Some("5xx responses per second".into()),
        },
    );
    let client = prom_url.map(|u| PrometheusClient::new(u, timeout, None).unwrap());
    TestApp::builder()
        .config(config)
        .clock_at(now)
        .time_style(TimeStyle::Plain)
        .build_console()
        .app
        .with_prometheus(client)
}

fn inv(name: &str, opts: &[(&str, &str)], channel: Option<u64>) -> Invocation {
    Invocation {
        user: UserRef::new(console_user_id("alice"), "alice"),
        member_roles: vec![],
        channel,
        input: CommandInput {
            name: name.into(),
            options: opts
                .iter()
                .map(|(k, v)| InputOption {
                    name: (*k).into(),
                    value: InputValue::Raw((*v).into()),
                })
                .collect(),
        },
    }
}

fn incident_open(title: &str) -> Invocation {
    let mut i = inv("incident", &[("title", title), ("severity", "SEV2")], None);
    i.input.options = vec![InputOption {
        name: "open".into(),
        value: InputValue::Sub(i.input.options),
    }];
    i
}

#[tokio::test]
async fn named_query_against_its_baselines_is_recorded_in_the_incident() {
    let prom = PrometheusFixture::start();
    let app = app(Some(prom.url()), prom.now(), Duration::from_secs(5));
    let opened = commands::run(&app, &incident_open("Checkout errors"))
        .await
        .unwrap();
    let id = opened.incident.unwrap();
    let channel = app.store.incident(id).unwrap().unwrap().channel;

    let out = commands::run(
        &app,
        &inv(
            "metrics",
            &[("name", "error_rate"), ("service", "checkout")],
            channel,
        ),
    )
    .await
    .unwrap();
    let text = &out.reply.post.content;
    assert!(text.contains("4.5"), "{text}");
    assert!(text.contains("1.5"), "{text}");
    assert!(text.contains("3.0×"), "{text}");
    assert!(text.contains('▲'), "{text}");
    assert!(out.reply.post.files.is_empty(), "no chart without a range");

    let events = app.store.events(id).unwrap();
    let snap = events.iter().find_map(|e| match &e.kind {
        EventKind::MetricSnapshot { query, summary, .. } => Some((query.clone(), summary.clone())),
        _ => None,
    });
    let (query, summary) = snap.expect("a MetricSnapshot in the timeline");
    assert!(query.contains("error_rate"), "{query}");
    assert!(summary.contains("4.5"), "{summary}");
}

#[tokio::test]
async fn range_attaches_a_png_chart_and_outside_incidents_nothing_is_recorded() {
    let prom = PrometheusFixture::start();
    let app = app(Some(prom.url()), prom.now(), Duration::from_secs(5));
    let before = app.store.dump().unwrap();
    let out = commands::run(
        &app,
        &inv(
            "metrics",
            &[
                ("name", "error_rate"),
                ("service", "checkout"),
                ("range", "1h"),
            ],
            None,
        ),
    )
    .await
    .unwrap();
    let files = &out.reply.post.files;
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].filename, "chart.png");
    let decoder = png::Decoder::new(std::io::Cursor::new(&files[0].bytes));
    let reader = decoder.read_info().expect("a valid PNG");
    assert_eq!((reader.info().width, reader.info().height), (960, 540));
    assert_eq!(app.store.dump().unwrap(), before);
}

#[tokio::test]
async fn bad_input_gets_clear_errors() {
    let prom = PrometheusFixture::start();
    let app = app(Some(prom.url()), prom.now(), Duration::from_secs(5));
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![("query", "sum(rate(x[5m])")],
            "unclosed left parenthesis",
        ),
        (vec![("name", "nope")], "error_rate"),
        (
            vec![("name", "error_rate"), ("service", "nosuch")],
            "no data",
        ),
        (vec![("name", "error_rate"), ("service", "a\"b")], "service"),
        (
            vec![("query", "up"), ("range", "2d"), ("step", "15s")],
            "11",
        ),
        (vec![("query", "up"), ("name", "error_rate")], "not both"),
        (vec![], "give `name`"),
        (vec![("query", "up"), ("range", "soon")], "soon"),
    ];
    for (opts, needle) in cases {
        let before = app.store.dump().unwrap();
        let err = commands::run(&app, &inv("metrics", &opts, None))
            .await
            .unwrap_err();
        let text = err.to_chat("metrics");
        assert!(
            text.to_lowercase().contains(&needle.to_lowercase()),
            "{opts:?}: {needle:?} not in {text:?}"
        );
        assert!(
            !text.contains("error id"),
            "{opts:?} should be a user error: {text}"
        );
        assert_eq!(app.store.dump().unwrap(), before);
    }
}

#[tokio::test]
async fn not_configured_or_hanging_prometheus_is_said_plainly() {
    let now = Utc::now();
    let app_off = app(None, now, Duration::from_secs(1));
    let err = commands::run(&app_off, &inv("metrics", &[("query", "up")], None))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_chat("metrics"),
        "metrics are not configured: set [prometheus] url"
    );

    let hang = HangingServer::start();
    let app_hang = app(Some(&hang.url()), now, Duration::from_secs(1));
    let started = std::time::Instant::now();
    let err = commands::run(&app_hang, &inv("metrics", &[("query", "up")], None))
        .await
        .unwrap_err();
    let text = err.to_chat("metrics");
    assert!(text.contains("did not answer within 1 s"), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

fn prometheus_toml(url: &str, timeout: &str) -> String {
    format!(
        "[prometheus]\nurl = \"{url}\"\ntimeout = \"{timeout}\"\n\n\
         [queries.error_rate]\npromql = '{ERROR_RATE}'\nunit = \"req/s\"\n\n\
         [whats_changed]\nqueries = [\"error_rate\"]\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_answers_in_time_while_prometheus_hangs() {
    use support::bot::{world, Bot, Mode};
    use support::discord::{FakeDiscord, GENERAL_CHANNEL_ID, OWNER_ID};
    let hang = HangingServer::start();
    let fake = FakeDiscord::start().await;
    let w = world(&fake);
    let _bot = Bot::start(&fake, w, Mode::Proxy, &prometheus_toml(&hang.url(), "1s"));
    fake.wait_ready().await;

    let i = fake.slash(
        OWNER_ID,
        GENERAL_CHANNEL_ID,
        "incident",
        serde_json::json!({"open": {"title": "Checkout errors", "severity": "SEV1", "service": "checkout"}}),
    );
    let first = fake.wait_response(&i).await;
    assert_eq!(first.kind, 5);
    assert!(
        first.latency < Duration::from_millis(1500),
        "{:?}",
        first.latency
    );
    let original = fake
        .wait_until(Duration::from_secs(5), |f| {
            f.original(&i).filter(|m| {
                m["content"]
                    .as_str()
                    .is_some_and(|c| c.contains("Opened INC-1"))
            })
        })
        .await
        .expect("open completes without waiting on Prometheus");
    assert!(original["content"].as_str().unwrap().contains("<#"));

    // The what-changed post follows, saying plainly that Prometheus did not answer.
    let post = fake
        .wait_message(|m| {
            m["content"].as_str().is_some_and(|c| {
                c.contains("What changed") && c.contains("did not answer within 1 s")
            })
        })
        .await;
    assert!(
        post["content"]
            .as_str()
            .unwrap()
            .contains("No deploys recorded"),
        "{post}"
    );

    // /metrics itself answers at once (deferred) and then says the same within the timeout.
    let m = fake.slash(
        OWNER_ID,
        GENERAL_CHANNEL_ID,
        "metrics",
        serde_json::json!({"query": "up"}),
    );
    assert_eq!(fake.wait_response(&m).await.kind, 5);
    let told = private_answer(&fake, &m, Duration::from_secs(4))
        .await
        .expect("the typist is told within the timeout");
    assert!(told.contains("did not answer within 1 s"), "{told}");
}

/// The answer a deferred command gave its typist alone: the public placeholder deleted, the
/// text in an ephemeral follow-up, and nothing of it left in the channel.
async fn private_answer(
    fake: &support::discord::FakeDiscord,
    i: &support::discord::Interaction,
    within: Duration,
) -> Option<String> {
    let followup = fake
        .wait_until(within, |f| f.followups(i).into_iter().next())
        .await?;
    assert_eq!(
        followup["flags"].as_u64().unwrap_or(0) & 64,
        64,
        "ephemeral: {followup}"
    );
    assert!(fake.original_deleted(i), "the placeholder is gone");
    assert!(fake.original(i).is_none());
    assert_eq!(fake.followups(i).len(), 1, "one answer");
    let text = followup["content"].as_str().unwrap_or("").to_string();
    assert!(
        !fake
            .messages(i.channel_id)
            .iter()
            .any(|m| m["content"].as_str() == Some(text.as_str())
                || m["interaction_metadata"]["id"].as_str() == Some(i.id.to_string().as_str())),
        "nothing of it in the channel"
    );
    Some(text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_through_discord_against_real_prometheus() {
    use support::bot::{world, Bot, Mode};
    use support::discord::{FakeDiscord, GENERAL_CHANNEL_ID, OWNER_ID};
    let prom = PrometheusFixture::start();
    let fake = FakeDiscord::start().await;
    let w = world(&fake);
    let _bot = Bot::start(&fake, w, Mode::Proxy, &prometheus_toml(prom.url(), "5s"));
    fake.wait_ready().await;

    let ac = fake.autocomplete(
        OWNER_ID,
        GENERAL_CHANNEL_ID,
        "metrics",
        serde_json::json!({"name": "err"}),
        "name",
    );
    let r = fake.wait_response(&ac).await;
    assert_eq!(r.kind, 8);
    assert_eq!(r.data["choices"][0]["value"], "error_rate");

    let m = fake.slash(
        OWNER_ID,
        GENERAL_CHANNEL_ID,
        "metrics",
        serde_json::json!({"name": "error_rate", "service": "checkout", "range": "1h"}),
    );
    assert_eq!(fake.wait_response(&m).await.kind, 5);
    let edited = fake
        .wait_until(Duration::from_secs(10), |f| {
            f.original(&m)
                .filter(|o| o["content"].as_str().is_some_and(|c| !c.is_empty()))
        })
        .await
        .expect("an answer");
    let text = edited["content"].as_str().unwrap();
    assert!(text.contains("error_rate") && text.contains('▲'), "{text}");
    assert!(text.contains("4.5") && text.contains("1.5 3.0×"), "{text}");
    let edit = fake
        .requests_to("PATCH /webhooks/{application}/{token}/messages/{message}")
        .into_iter()
        .find(|r| !r.files.is_empty())
        .expect("the chart is uploaded with the edit");
    assert_eq!(edit.files[0].filename, "chart.png");
    assert!(edit.files[0].bytes.starts_with(b"\x89PNG\r\n\x1a\n"));

    // PromQL that parses here but that Prometheus rejects: a mistake, told only to its typist.
    let bad = fake.slash(
        OWNER_ID,
        GENERAL_CHANNEL_ID,
        "metrics",
        serde_json::json!({"query": "rate(http_requests_total)"}),
    );
    let r = fake.wait_response(&bad).await;
    assert_eq!(r.kind, 5, "deferred: Prometheus is asked first");
    assert!(!r.ephemeral());
    let told = private_answer(&fake, &bad, Duration::from_secs(10))
        .await
        .expect("an ephemeral answer");
    assert!(
        told.starts_with("Prometheus rejected the query: ") && told.contains("range vector"),
        "{told}"
    );
    let deletes = fake.requests_to("DELETE /webhooks/{application}/{token}/messages/{message}");
    assert!(
        deletes.iter().any(|d| d.status == 204
            && d.path.contains(&bad.token)
            && d.path.ends_with("/@original")),
        "{deletes:?}"
    );
}

/// Past the interaction's token (15 minutes on Discord, one second here) there is no private
/// way left: the failure is said in the channel, to whoever asked, and not lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_after_the_token_ran_out_is_said_in_the_channel() {
    use support::bot::{world, Bot, Mode};
    use support::discord::{FakeDiscord, FakeOptions, GENERAL_CHANNEL_ID, OWNER_ID};
    let hang = HangingServer::start();
    let fake = FakeDiscord::start_with(FakeOptions {
        interaction_token_lifetime: Duration::from_secs(1),
        ..FakeOptions::default()
    })
    .await;
    let w = world(&fake);
    let bot = Bot::start(&fake, w, Mode::Proxy, &prometheus_toml(&hang.url(), "2s"));
    fake.wait_ready().await;

    let m = fake.slash(
        OWNER_ID,
        GENERAL_CHANNEL_ID,
        "metrics",
        serde_json::json!({"query": "up"}),
    );
    assert_eq!(fake.wait_response(&m).await.kind, 5);
    let said = fake
        .wait_message(|p| {
            p["content"]
                .as_str()
                .is_some_and(|c| c.contains("did not answer within 2 s"))
        })
        .await;
    let text = said["content"].as_str().unwrap();
    assert!(
        text.starts_with(&format!("<@{OWNER_ID}> `/metrics` did not finish")),
        "{text}"
    );
    let id: u64 = said["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(fake.pings(id).users, vec![OWNER_ID]);
    assert!(fake.followups(&m).is_empty());
    assert!(
        !bot.log().contains("Invalid Webhook Token"),
        "the refused token is not logged as a failure"
    );
}
