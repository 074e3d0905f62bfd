//! `/metrics` through the command path against a real Prometheus with known history.

mod support;

use chrono::{DateTime, Utc};
use sitrep::app::{App, Clock};
use sitrep::chat::console::{ConsoleChat, Sink};
use sitrep::commands::{
    self, options::console_user_id, CommandInput, InputOption, InputValue, Invocation,
};
use sitrep::config::{Config, QueryConfig};
use sitrep::domain::{EventKind, UserRef};
use sitrep::integrations::prometheus::PrometheusClient;
use sitrep::render::{Renderer, TimeStyle};
use sitrep::store::Store;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::prometheus::{HangingServer, PrometheusFixture, ERROR_RATE};

struct Fixed(DateTime<Utc>);

impl Clock for Fixed {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

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
    let out: Sink = Arc::new(Mutex::new(Vec::<u8>::new()));
    let chat = Arc::new(ConsoleChat::new(out, []));
    let renderer = Renderer::from_config(&config, TimeStyle::Plain).unwrap();
    let client = prom_url.map(|u| PrometheusClient::new(u, timeout, None).unwrap());
    App::new(
        Arc::new(config),
        Store::temporary().unwrap(),
        Arc::new(renderer),
        chat,
        Arc::new(Fixed(now)),
    )
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
