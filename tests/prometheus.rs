//! Metrics against a real Prometheus over generated history: exact values, baselines, ratios, charts and errors.

#[path = "support/prometheus.rs"]
mod prometheus_fixture;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::TimeDelta;
use prometheus_fixture::{HangingServer, PrometheusFixture, ERROR_RATE};
use sitrep::integrations::prometheus::{PromError, PrometheusClient, Series};
use sitrep::metrics::{
    self, CompareOptions, Flag, MetricAnswer, MetricRequest, MetricsError, CHART_SIZE,
};

/// Label, value, ratio and flag of one baseline column.
type BaselineRow<'a> = (&'a str, Option<f64>, Option<f64>, Option<Flag>);

const FIVE_XX_BY_SERVICE: &str = r#"sum by (service) (rate(http_requests_total{code=~"5.."}[5m]))"#;

fn client(url: &str, timeout: Duration) -> PrometheusClient {
    PrometheusClient::new(url, timeout, None).unwrap()
}

fn params(service: &str) -> BTreeMap<String, String> {
    [("service".to_string(), service.to_string())].into()
}

/// `service` label → value, for asserting whole results at once.
fn by_service(series: &[Series]) -> BTreeMap<String, f64> {
    series
        .iter()
        .map(|s| (s.labels["service"].clone(), s.value().unwrap()))
        .collect()
}

fn error_rate(fx: &PrometheusFixture, service: &str) -> MetricRequest {
    MetricRequest::named("error_rate", ERROR_RATE, &params(service), fx.now())
        .unwrap()
        .with_unit(Some("req/s"))
        .with_description(Some("5xx responses per second"))
}

async fn answer(
    fx: &PrometheusFixture,
    req: &MetricRequest,
    opts: &CompareOptions,
) -> MetricAnswer {
    let c = client(fx.url(), Duration::from_secs(5));
    metrics::fetch(&c, opts, req).await.unwrap().answer
}

#[tokio::test]
async fn instant_queries_return_exact_values() {
    let fx = PrometheusFixture::start();
    let c = client(fx.url(), Duration::from_secs(5));
    let now = fx.now();

    let rates = c.query(FIVE_XX_BY_SERVICE, Some(now)).await.unwrap();
    assert_eq!(
        by_service(&rates),
        [("checkout".into(), 4.5), ("search".into(), 0.2)].into()
    );
    for s in &rates {
        assert_eq!(s.samples[0].at, now);
    }
    let day_before = c
        .query(FIVE_XX_BY_SERVICE, Some(now - TimeDelta::days(1)))
        .await
        .unwrap();
    assert_eq!(
        by_service(&day_before),
        [("checkout".into(), 1.5), ("search".into(), 0.2)].into()
    );

    let depth = c.query("queue_depth", Some(now)).await.unwrap();
    assert_eq!(
        by_service(&depth),
        [("checkout".into(), 120.0), ("search".into(), 7.0)].into()
    );
    assert_eq!(depth[0].labels["__name__"], "queue_depth");

    let scalar = c
        .query("scalar(queue_depth{service=\"search\"}) * 3", Some(now))
        .await
        .unwrap();
    assert_eq!(scalar.len(), 1);
    assert!(scalar[0].labels.is_empty());
    assert_eq!(scalar[0].value(), Some(21.0));
}

#[tokio::test]
async fn long_queries_go_as_post_and_still_answer() {
    let fx = PrometheusFixture::start();
    let c = client(fx.url(), Duration::from_secs(5));
    // A PromQL comment pads the query past the POST threshold without changing its value.
    let long = format!(
        "queue_depth{{service=\"checkout\"}} # {}\n",
        "padding ".repeat(400)
    );
    assert!(long.len() > sitrep::integrations::prometheus::POST_THRESHOLD_BYTES);
    let series = c.query(&long, Some(fx.now())).await.unwrap();
    assert_eq!(series[0].value(), Some(120.0));
}

#[tokio::test]
async fn named_query_compares_with_a_day_and_a_week_before() {
    let fx = PrometheusFixture::start();
    let a = answer(
        &fx,
        &error_rate(&fx, "checkout"),
        &CompareOptions::default(),
    )
    .await;

    assert_eq!(
        a.promql,
        r#"sum(rate(http_requests_total{service="checkout",code=~"5.."}[5m]))"#
    );
    assert!(!a.no_data);
    assert_eq!((a.rows.len(), a.rest), (1, 0));
    let row = &a.rows[0];
    assert!(row.labels.is_empty());
    assert_eq!(row.current, Some(4.5));
    let got: Vec<BaselineRow> = row
        .baselines
        .iter()
        .map(|b| (b.label.as_str(), b.value, b.ratio, b.flag))
        .collect();
    assert_eq!(
        got,
        [
            ("1d", Some(1.5), Some(3.0), Some(Flag::Up)),
            ("1w", Some(1.5), Some(3.0), Some(Flag::Up)),
        ]
    );
    assert!(row.flagged && a.flagged);

    let md = a.to_markdown();
    assert!(
        md.starts_with("**error_rate** · service=checkout — 5xx responses per second"),
        "{md}"
    );
    assert!(
        md.contains("error_rate  4.5  1.5 3.0× ▲  1.5 3.0× ▲"),
        "{md}"
    );
    assert_eq!(
        a.summary(),
        "4.5 req/s now, 1.5 req/s 1d ago (3.0×▲), 1.5 req/s 1w ago (3.0×▲)"
    );

    // A steady service is compared too, and not flagged.
    let steady = answer(&fx, &error_rate(&fx, "search"), &CompareOptions::default()).await;
    assert_eq!(steady.rows[0].current, Some(0.2));
    assert_eq!(steady.rows[0].baselines[0].ratio, Some(1.0));
    assert!(!steady.flagged);
}

#[tokio::test]
async fn baselines_follow_configured_offsets_and_threshold() {
    let fx = PrometheusFixture::start();
    let req = MetricRequest::raw("queue_depth", fx.now()).unwrap();
    let opts = CompareOptions {
        offsets: vec![Duration::from_secs(86_400), Duration::from_secs(7 * 86_400)],
        threshold: 3.5,
        top_n: 5,
    };
    let a = answer(&fx, &req, &opts).await;
    let checkout = &a.rows[0];
    assert_eq!(checkout.labels["service"], "checkout");
    assert_eq!(checkout.current, Some(120.0));
    assert_eq!(checkout.baselines[0].value, Some(40.0));
    assert_eq!(checkout.baselines[0].ratio, Some(3.0));
    assert_eq!(checkout.baselines[0].flag, None);
    assert_eq!(checkout.baselines[1].value, Some(30.0));
    assert_eq!(checkout.baselines[1].ratio, Some(4.0));
    assert_eq!(checkout.baselines[1].flag, Some(Flag::Up));
    assert_eq!(a.rows[1].current, Some(7.0));
    assert!(!a.rows[1].flagged);

    let two_hours = CompareOptions {
        offsets: vec![Duration::from_secs(2 * 3600)],
        ..CompareOptions::default()
    };
    let a = answer(&fx, &req, &two_hours).await;
    assert_eq!(a.rows[0].baselines[0].label, "2h");
    assert_eq!(a.rows[0].baselines[0].value, Some(40.0));
}

#[tokio::test]
async fn many_series_show_the_top_n_and_count_the_rest() {
    let fx = PrometheusFixture::start();
    let req = MetricRequest::raw(
        "sum by (service, code) (rate(http_requests_total[5m]))",
        fx.now(),
    )
    .unwrap();
    let opts = CompareOptions {
        top_n: 3,
        ..CompareOptions::default()
    };
    let a = answer(&fx, &req, &opts).await;
    let shown: Vec<(&str, &str, Option<f64>)> = a
        .rows
        .iter()
        .map(|r| {
            (
                r.labels["service"].as_str(),
                r.labels["code"].as_str(),
                r.current,
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            ("checkout", "200", Some(10.0)),
            ("search", "200", Some(5.0)),
            ("checkout", "500", Some(3.0)),
        ]
    );
    assert_eq!(a.rest, 2);
    // checkout/503 (1.5 against 0.5) is flagged but not shown.
    assert_eq!(a.rest_flagged, 1);
    assert_eq!(a.rows[2].baselines[0].ratio, Some(3.0));
    assert!(a.rows[2].flagged && !a.rows[0].flagged);
    let md = a.to_markdown();
    assert!(md.contains("…and 2 more series (1 flagged)."), "{md}");
    assert!(md.contains("{code=\"500\", service=\"checkout\"}"), "{md}");
}

#[tokio::test]
async fn range_answers_carry_a_chart_of_series_and_baselines() {
    let fx = PrometheusFixture::start();
    let c = client(fx.url(), Duration::from_secs(5));
    let now = fx.now();
    let promql = ERROR_RATE.replace("{{service}}", "checkout");

    let range = c
        .query_range(
            &promql,
            now - TimeDelta::hours(1),
            now,
            Duration::from_secs(15),
        )
        .await
        .unwrap();
    assert_eq!(range.len(), 1);
    let points = &range[0].samples;
    assert_eq!(points.len(), 241);
    assert_eq!(points[0].at, now - TimeDelta::hours(1));
    assert_eq!(points[0].value, 1.5);
    assert_eq!(points[240].at, now);
    assert_eq!(points[240].value, 4.5);

    let req = error_rate(&fx, "checkout").with_range(metrics::parse_duration("1h").unwrap(), None);
    let reply = metrics::fetch(&c, &CompareOptions::default(), &req)
        .await
        .unwrap();
    let r = reply.answer.range.unwrap();
    assert_eq!(
        (r.start, r.end, r.step_secs),
        (now - TimeDelta::hours(1), now, 15)
    );
    assert_eq!(reply.answer.rows[0].current, Some(4.5));

    let png_bytes = reply.chart_png.expect("a chart");
    assert_eq!(&png_bytes[..8], b"\x89PNG\r\n\x1a\n");
    let mut reader = png::Decoder::new(png_bytes.as_slice()).read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).unwrap();
    assert_eq!((info.width, info.height), CHART_SIZE);
    pixels.truncate(info.buffer_size());
    let px = pixels.chunks(info.color_type.samples());
    let coloured = px
        .filter(|p| {
            let (lo, hi) = (p.iter().min().unwrap(), p.iter().max().unwrap());
            hi - lo > 60
        })
        .count();
    assert!(
        coloured > 1000,
        "the chart has no coloured lines ({coloured} pixels)"
    );
}

#[tokio::test]
async fn invalid_promql_shows_prometheus_own_message() {
    let fx = PrometheusFixture::start();
    let c = client(fx.url(), Duration::from_secs(5));
    let err = c
        .query("sum(rate(http_requests_total[5m])", None)
        .await
        .unwrap_err();
    let PromError::Api {
        error_type,
        message,
    } = &err
    else {
        panic!("expected an API error, got {err:?}");
    };
    assert_eq!(error_type, "bad_data");
    assert!(message.contains("parse error"), "{message}");
    assert!(message.contains("unclosed left parenthesis"), "{message}");
    assert_eq!(
        err.to_string(),
        format!("Prometheus rejected the query: {message}")
    );

    let req = MetricRequest::raw("rate(http_requests_total)", fx.now()).unwrap();
    let err = metrics::fetch(&c, &CompareOptions::default(), &req)
        .await
        .unwrap_err();
    assert!(err.is_user_error());
    assert!(
        err.to_string()
            .starts_with("Prometheus rejected the query: "),
        "{err}"
    );
    assert!(err.to_string().contains("range vector"), "{err}");
}

#[tokio::test]
async fn no_data_is_said_and_an_unknown_service_is_an_error() {
    let fx = PrometheusFixture::start();
    let c = client(fx.url(), Duration::from_secs(5));

    let raw = MetricRequest::raw(r#"http_requests_total{service="nosuch"}"#, fx.now()).unwrap();
    let a = metrics::fetch(&c, &CompareOptions::default(), &raw)
        .await
        .unwrap()
        .answer;
    assert!(a.no_data && a.rows.is_empty() && !a.flagged);
    assert!(a.to_markdown().contains("**No data** for this query now."));

    let err = metrics::fetch(&c, &CompareOptions::default(), &error_rate(&fx, "nosuch"))
        .await
        .unwrap_err();
    assert!(matches!(err, MetricsError::NoData { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "No data for `error_rate` with service=nosuch, now or 1d or 1w ago. Check the service value."
    );

    let queries: BTreeMap<String, &str> = [("error_rate".to_string(), ERROR_RATE)].into();
    let err = metrics::lookup(&queries, "latency").unwrap_err();
    assert_eq!(
        err.to_string(),
        "There is no query named `latency`. Configured: error_rate."
    );
}

#[tokio::test]
async fn too_long_a_range_is_refused_before_and_by_prometheus() {
    let fx = PrometheusFixture::start();
    let c = client(fx.url(), Duration::from_secs(5));
    let req = error_rate(&fx, "checkout").with_range(
        metrics::parse_duration("2d").unwrap(),
        Some(Duration::from_secs(15)),
    );
    let err = metrics::fetch(&c, &CompareOptions::default(), &req)
        .await
        .unwrap_err();
    assert!(
        matches!(err, MetricsError::RangeTooLong { points: 11_521, .. }),
        "{err:?}"
    );

    // Prometheus draws the same line: its own refusal comes back as its message.
    let now = fx.now();
    let err = c
        .query_range(
            "queue_depth",
            now - TimeDelta::seconds(11_001),
            now,
            Duration::from_secs(1),
        )
        .await
        .unwrap_err();
    let PromError::Api { message, .. } = &err else {
        panic!("expected an API error, got {err:?}");
    };
    assert!(message.contains("11,000 points"), "{message}");
    let ok = c
        .query_range(
            "queue_depth",
            now - TimeDelta::seconds(11_000),
            now,
            Duration::from_secs(1),
        )
        .await
        .unwrap();
    assert_eq!(ok[0].samples.len(), 11_001);
}

#[tokio::test]
async fn a_silent_prometheus_times_out_within_the_configured_time() {
    let hanging = HangingServer::start();
    let c = client(&hanging.url(), Duration::from_secs(1));
    let started = Instant::now();
    let err = c.query("up", None).await.unwrap_err();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert!(
        took >= Duration::from_millis(900),
        "gave up early: {took:?}"
    );
    assert!(matches!(err, PromError::Timeout { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("Prometheus at {} did not answer within 1 s", hanging.url())
    );

    // The whole answer, with its baseline and chart queries, keeps the same bound.
    let req = MetricRequest::raw("up", chrono::Utc::now())
        .unwrap()
        .with_range(Duration::from_secs(3600), None);
    let started = Instant::now();
    let err = metrics::fetch(&c, &CompareOptions::default(), &req)
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(
        matches!(err, MetricsError::Prometheus(PromError::Timeout { .. })),
        "{err:?}"
    );
    assert!(!err.is_user_error());
}

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    let url = prometheus_fixture::refused_url();
    let c = client(&url, Duration::from_secs(5));
    let started = Instant::now();
    let err = c.query("up", None).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    let PromError::Unreachable { url: shown, reason } = &err else {
        panic!("expected Unreachable, got {err:?}");
    };
    assert_eq!(shown, &url);
    assert!(reason.to_lowercase().contains("refused"), "{reason}");
    assert!(err
        .to_string()
        .starts_with(&format!("Prometheus at {url} cannot be reached")));
}
