//! `sitrep demo`: a whole incident played into the console, with a stand-in Prometheus on this
//! machine so that its metric snapshot has numbers and a chart without anything installed.

use crate::chat::console::Console;
use crate::store::{Deploy, DeploySource};
use axum::extract::Query;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Form, Json, Router};
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use std::collections::HashMap;

/// The demo's incident, typed as a responder would: a bad deploy found (the "what changed" post
/// lists it), roles handed out, the built-in checklist worked through (buttons 3 to 9 tick its
/// items), a page acknowledged (button 10 is the page's Acknowledge), an action item, the error
/// rate after the rollback (kept in the timeline with its chart), the resolve and the
/// post-mortem draft.
pub const SCRIPT: &[&str] = &[
    r#"/incident open title:"Checkout returns 500" severity:SEV2 service:checkout started:"25m ago" summary:"EU customers cannot pay; about 30% of checkouts fail""#,
    "/incident role role:communications user:@bob",
    r#"/incident note text:"Errors began at the same minute checkout v2.3 went out""#,
    "/deploys service:checkout since:1h",
    "/incident checklist action:tick item:3",
    r#"/incident update state:identified message:"Bad deploy of checkout v2.3: the new payment client times out. Rolling back.""#,
    r#"/escalate target:payments_oncall reason:"Card payments time out too; need the payments on-call""#,
    "press 10",
    r#"/incident action text:"Add a canary stage to checkout deploys" owner:@carol due:7d"#,
    r#"/incident update state:monitoring message:"Rollback done; error rate back to baseline, watching for 15 minutes""#,
    "press 3",
    "/metrics name:error_rate service:checkout range:1h",
    "/incident checklist action:tick item:4",
    r#"/incident resolve summary:"Rolled back checkout v2.3; payments client timeout fixed in v2.3.1""#,
    "/postmortem draft",
];

/// How long before the demo starts checkout v2.3 went out, and the errors with it.
const DEPLOYED_AGO: i64 = 27;
/// How long before the demo starts the rollback took effect.
const ROLLED_BACK_AGO: i64 = 4;

/// The PromQL of the demo's named query; the stand-in answers for any query naming checkout.
const ERROR_RATE: &str = r#"100 * sum(rate(http_requests_total{service="{{service}}",code=~"5.."}[5m])) / sum(rate(http_requests_total{service="{{service}}"}[5m]))"#;

/// Prometheus refuses ranges of more points than this; so does the stand-in.
const MAX_POINTS: f64 = 11_000.0;

/// A demo about to be played: when it starts, and where its stand-in Prometheus listens.
pub struct Demo {
    start: DateTime<Utc>,
    prometheus: String,
}

impl Demo {
    /// Starts the stand-in Prometheus on a free local port; it serves until the process ends.
    pub async fn start() -> std::io::Result<Demo> {
        let start = Utc::now();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let prometheus = format!("http://{}", listener.local_addr()?);
        let app = Router::new()
            .route(
                "/api/v1/query",
                get(move |Query(p): Query<Params>| async move { instant(start, &p) })
                    .post(move |Form(p): Form<Params>| async move { instant(start, &p) }),
            )
            .route(
                "/api/v1/query_range",
                get(move |Query(p): Query<Params>| async move { range(start, &p) })
                    .post(move |Form(p): Form<Params>| async move { range(start, &p) }),
            );
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "the demo's metrics stopped");
            }
        });
        Ok(Demo { start, prometheus })
    }

    /// The settings the demo plays with, as environment overrides over the configuration: the
    /// stand-in as `[prometheus] url`, the `error_rate` query its script asks for, and an
    /// escalation target of its own to page.
    pub fn settings(&self) -> Vec<(String, String)> {
        [
            ("SITREP_PROMETHEUS__URL", format!("\"{}\"", self.prometheus)),
            (
                "SITREP_QUERIES__ERROR_RATE__PROMQL",
                format!("'{ERROR_RATE}'"),
            ),
            ("SITREP_QUERIES__ERROR_RATE__UNIT", "\"%\"".into()),
            (
                "SITREP_QUERIES__ERROR_RATE__DESCRIPTION",
                "\"share of requests answered with a server error\"".into(),
            ),
            (
                "SITREP_ESCALATION__TARGETS__PAYMENTS_ONCALL__ROLES",
                "[4242]".into(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Plays [`SCRIPT`] line by line, as if typed, and says where to look next.
    pub async fn play(&self, console: &Console, web: Option<&str>) {
        // What CI would have told the deploy webhook: the release the incident turns out to be.
        let deployed = Deploy {
            source: DeploySource::Webhook,
            id: "demo-checkout-v2.3".into(),
            service: "checkout".into(),
            version: "v2.3".into(),
            commit: Some("4f2a9c1".into()),
            author: Some("dave".into()),
            environment: Some("production".into()),
            status: Some("success".into()),
            url: None,
            time: self.start - Duration::minutes(DEPLOYED_AGO),
        };
        if let Err(e) = console.app.store.put_deploy(&deployed) {
            console.chat.print("error", &e.to_string());
        }
        for line in SCRIPT {
            console.chat.print("demo", &format!("sitrep> {line}"));
            console.line(line).await;
            tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        }
        let mut next = String::from("That was INC-1, start to finish, in a throwaway database.");
        if let Some(url) = web {
            next.push_str(&format!(
                "\nIts post-mortem draft: {url}/incidents/INC-1/postmortem · timeline: {url}/incidents/INC-1 · status page: {url}/status"
            ));
        }
        next.push_str("\nGo on typing commands (`help` for examples), or `exit` to leave; the database goes with it.");
        console.chat.print("demo", &next);
    }
}

type Params = HashMap<String, String>;

/// Checkout's error rate in percent at `t`: a fraction of a percent with some noise, about 30%
/// from a minute after the deploy until the rollback, then back down within two minutes of the rollback.
fn error_rate(start: DateTime<Utc>, t: DateTime<Utc>) -> f64 {
    let secs = t.timestamp() as f64;
    let baseline = 0.4 + 0.08 * (secs / 300.0).sin() + 0.04 * (secs / 47.0).sin();
    let deployed = start - Duration::minutes(DEPLOYED_AGO);
    let rolled_back = start - Duration::minutes(ROLLED_BACK_AGO);
    let minutes = |d: Duration| d.num_milliseconds() as f64 / 60_000.0;
    let excess = if t < deployed {
        0.0
    } else if t < rolled_back {
        // New pods take traffic over about a minute.
        30.0 * (minutes(t - deployed)).min(1.0) + 2.0 * (secs / 90.0).sin()
    } else {
        30.0 * (-2.0 * minutes(t - rolled_back)).exp()
    };
    baseline + excess
}

/// Whether the stand-in has data for `query`: only for checkout, the service of the demo.
fn answers(p: &Params) -> Result<bool, (StatusCode, Json<Value>)> {
    match p.get("query") {
        Some(q) if !q.trim().is_empty() => Ok(q.contains("checkout")),
        _ => Err(bad_data("parameter \"query\" is missing")),
    }
}

fn instant(start: DateTime<Utc>, p: &Params) -> (StatusCode, Json<Value>) {
    let at = match p.get("time").map(|t| time(t, "time")).transpose() {
        Ok(at) => at.unwrap_or_else(Utc::now),
        Err(e) => return e,
    };
    let result = match answers(p) {
        Ok(true) => vec![json!({ "metric": {}, "value": sample(start, at) })],
        Ok(false) => Vec::new(),
        Err(e) => return e,
    };
    success(json!({ "resultType": "vector", "result": result }))
}

fn range(start: DateTime<Utc>, p: &Params) -> (StatusCode, Json<Value>) {
    let param = |name: &str| {
        p.get(name)
            .ok_or_else(|| bad_data(&format!("parameter \"{name}\" is missing")))
    };
    let window = (|| {
        let from = time(param("start")?, "start")?;
        let to = time(param("end")?, "end")?;
        let step = step(param("step")?)?;
        if to < from {
            return Err(bad_data("end timestamp must not be before start time"));
        }
        let points = (to - from).num_milliseconds() as f64 / step.num_milliseconds() as f64;
        if points > MAX_POINTS {
            return Err(bad_data(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
            ));
        }
        Ok((from, to, step))
    })();
    let (from, to, step) = match window {
        Ok(w) => w,
        Err(e) => return e,
    };
    let result = match answers(p) {
        Ok(true) => {
            let mut values = Vec::new();
            let mut t = from;
            while t <= to {
                values.push(sample(start, t));
                t += step;
            }
            vec![json!({ "metric": {}, "values": values })]
        }
        Ok(false) => Vec::new(),
        Err(e) => return e,
    };
    success(json!({ "resultType": "matrix", "result": result }))
}

/// `[<unix seconds>, "<value>"]`, as Prometheus writes a sample.
fn sample(start: DateTime<Utc>, t: DateTime<Utc>) -> Value {
    let seconds = t.timestamp_millis() as f64 / 1000.0;
    json!([seconds, format!("{:.3}", error_rate(start, t))])
}

/// A time as Prometheus takes one: Unix seconds, or RFC 3339.
fn time(raw: &str, name: &str) -> Result<DateTime<Utc>, (StatusCode, Json<Value>)> {
    let parsed = match raw.parse::<f64>() {
        Ok(s) if s.is_finite() => DateTime::from_timestamp_millis((s * 1000.0).round() as i64),
        Ok(_) => None,
        Err(_) => DateTime::parse_from_rfc3339(raw)
            .ok()
            .map(|t| t.with_timezone(&Utc)),
    };
    parsed.ok_or_else(|| {
        bad_data(&format!(
            "invalid parameter \"{name}\": cannot parse {raw:?}"
        ))
    })
}

/// A step as Prometheus takes one: seconds, or a duration like `15s` or `60000ms`.
fn step(raw: &str) -> Result<Duration, (StatusCode, Json<Value>)> {
    let parsed = match raw.parse::<f64>() {
        Ok(s) if s.is_finite() => Some(Duration::milliseconds((s * 1000.0).round() as i64)),
        Ok(_) => None,
        Err(_) => humantime::parse_duration(raw)
            .ok()
            .and_then(|d| Duration::from_std(d).ok()),
    };
    match parsed {
        Some(d) if d > Duration::zero() => Ok(d),
        _ => Err(bad_data(
            "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer",
        )),
    }
}

fn success(data: Value) -> (StatusCode, Json<Value>) {
    (
        StatusCode::OK,
        Json(json!({ "status": "success", "data": data })),
    )
}

fn bad_data(message: &str) -> (StatusCode, Json<Value>) {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "status": "error", "errorType": "bad_data", "error": message })),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Secrets};
    use crate::integrations::prometheus::PrometheusClient;

    fn client(demo: &Demo) -> PrometheusClient {
        PrometheusClient::new(&demo.prometheus, std::time::Duration::from_secs(5), None).unwrap()
    }

    fn value(series: &[crate::integrations::prometheus::Series]) -> f64 {
        assert_eq!(series.len(), 1, "{series:?}");
        series[0].value().unwrap()
    }

    #[tokio::test]
    async fn the_stand_in_answers_as_prometheus_does() {
        let demo = Demo::start().await.unwrap();
        let c = client(&demo);
        let promql = ERROR_RATE.replace("{{service}}", "checkout");
        let at = |min: i64| Some(demo.start - Duration::minutes(min));
        // Low before the deploy and a day earlier, high during the incident, low after the fix.
        assert!(value(&c.query(&promql, at(40)).await.unwrap()) < 1.0);
        assert!(value(&c.query(&promql, at(24 * 60)).await.unwrap()) < 1.0);
        assert!(value(&c.query(&promql, at(15)).await.unwrap()) > 20.0);
        assert!(value(&c.query(&promql, None).await.unwrap()) < 1.0);
        // Other services have no data.
        assert!(c.query("up", None).await.unwrap().is_empty());

        let series = c
            .query_range(
                &promql,
                demo.start - Duration::hours(1),
                demo.start,
                std::time::Duration::from_secs(15),
            )
            .await
            .unwrap();
        assert_eq!(series.len(), 1);
        let samples = &series[0].samples;
        assert_eq!(samples.len(), 241);
        let peak = samples.iter().map(|s| s.value).fold(0.0, f64::max);
        assert!(peak > 25.0, "{samples:?}");
        assert!(samples.first().unwrap().value < 1.0);
        assert!(samples.last().unwrap().value < 1.0);

        // Too many points is refused, in Prometheus' words.
        let err = c
            .query_range(
                &promql,
                demo.start - Duration::days(7),
                demo.start,
                std::time::Duration::from_secs(1),
            )
            .await
            .unwrap_err();
        assert!(err.is_query_error(), "{err}");
        assert!(err.to_string().contains("11,000 points"), "{err}");
    }

    #[tokio::test]
    async fn the_demo_settings_make_a_valid_config_with_its_query() {
        let demo = Demo::start().await.unwrap();
        let env = demo.settings().into_iter().collect();
        let config = Config::load(None, &env).unwrap();
        assert_eq!(
            config.prometheus.url.as_deref(),
            Some(demo.prometheus.as_str())
        );
        assert_eq!(config.queries["error_rate"].promql, ERROR_RATE);
        assert_eq!(config.queries["error_rate"].unit.as_deref(), Some("%"));
        assert_eq!(
            config.escalation.targets["payments_oncall"].roles,
            vec![4242]
        );
        let problems = crate::preflight::problems(&config, &Secrets::default(), false);
        assert!(problems.is_empty(), "{problems:?}");
    }
}
