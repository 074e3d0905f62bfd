//! Prometheus HTTP API client: instant and range queries, with errors worded for responders in chat.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderValue, CONTENT_TYPE};
use reqwest::{StatusCode, Url};
use serde::{Deserialize, Serialize};

/// The environment variable holding the credentials, so that they never sit in the config file.
pub const TOKEN_ENV: &str = "SITREP_PROMETHEUS_TOKEN";

/// Queries whose url-encoded form is longer than this go as a POST form: proxies and Prometheus
/// itself cap the request line (Go's default header limit is 1 MiB, common proxies 4–8 KiB), and
/// GET keeps short queries visible in access logs.
pub const POST_THRESHOLD_BYTES: usize = 1500;

/// A reply larger than this is refused rather than buffered: a runaway query must not take the
/// bot's memory with it.
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// Credentials sent with every request.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    Bearer(String),
    Basic { user: String, password: String },
}

impl Auth {
    /// Reads credentials from a secret: `user:password` is basic auth, anything else a bearer
    /// token. Blank means none.
    pub fn parse(secret: &str) -> Option<Auth> {
        let secret = secret.trim();
        if secret.is_empty() {
            return None;
        }
        match secret.split_once(':') {
            Some((user, password)) => Some(Auth::Basic {
                user: user.to_string(),
                password: password.to_string(),
            }),
            None => Some(Auth::Bearer(secret.to_string())),
        }
    }

    /// Credentials from `SITREP_PROMETHEUS_TOKEN`, if set.
    pub fn from_env() -> Option<Auth> {
        std::env::var(TOKEN_ENV).ok().and_then(|s| Auth::parse(&s))
    }

    fn apply(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Auth::Bearer(token) => req.bearer_auth(token),
            Auth::Basic { user, password } => req.basic_auth(user, Some(password)),
        }
    }
}

// Secrets end up in logs through Debug of a config or client; keep them out.
impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            Auth::Basic { user, .. } => {
                write!(f, "Basic {{ user: {user:?}, password: <redacted> }}")
            }
        }
    }
}

/// One point of a series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub at: DateTime<Utc>,
    pub value: f64,
}

/// A labelled series: one sample for instant queries, many for range queries.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Series {
    pub labels: BTreeMap<String, String>,
    pub samples: Vec<Sample>,
}

impl Series {
    /// The latest value, which for an instant query is the only one.
    pub fn value(&self) -> Option<f64> {
        self.samples.last().map(|s| s.value)
    }
}

/// What went wrong talking to Prometheus, in words a responder can act on.
#[derive(Debug, thiserror::Error)]
pub enum PromError {
    #[error("Prometheus at {url} did not answer within {}", seconds(*after))]
    Timeout { url: String, after: Duration },
    #[error("Prometheus at {url} cannot be reached: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("Prometheus at {url} refused sitrep's credentials (HTTP {status}): check {TOKEN_ENV}")]
    Unauthorized { url: String, status: u16 },
    #[error("{}", api_text(error_type, message))]
    Api { error_type: String, message: String },
    #[error("Prometheus at {url} sent an answer sitrep cannot read: {detail}")]
    BadResponse { url: String, detail: String },
    #[error("sitrep can show numbers only, and this query returns {what}")]
    Unsupported { what: String },
    #[error("the Prometheus URL `{url}` is not usable: {reason}")]
    InvalidUrl { url: String, reason: String },
}

impl PromError {
    /// True when the query itself is at fault (and rephrasing it helps), false when Prometheus or
    /// the path to it is.
    pub fn is_query_error(&self) -> bool {
        match self {
            PromError::Api { error_type, .. } => error_type == "bad_data",
            PromError::Unsupported { .. } => true,
            _ => false,
        }
    }
}

fn api_text(error_type: &str, message: &str) -> String {
    let lead = match error_type {
        "bad_data" => "Prometheus rejected the query",
        "canceled" => "Prometheus cancelled the query",
        "execution" => "Prometheus could not run the query",
        "unavailable" => "Prometheus is not ready",
        _ => "Prometheus answered with an error",
    };
    format!("{lead}: {message}")
}

/// "5 s", "1.5 s", "250 ms": short enough for a chat line.
pub fn seconds(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        let s = format!("{:.3}", d.as_secs_f64());
        format!("{} s", s.trim_end_matches('0').trim_end_matches('.'))
    }
}

/// A client for one Prometheus server.
#[derive(Debug, Clone)]
pub struct PrometheusClient {
    http: reqwest::Client,
    base: Url,
    /// The base URL without credentials, for messages.
    shown: String,
    timeout: Duration,
    auth: Option<Auth>,
}

impl PrometheusClient {
    /// A client with its own connection pool; `timeout` bounds every request from connecting to
    /// the last byte of the reply.
    pub fn new(
        base_url: &str,
        timeout: Duration,
        auth: Option<Auth>,
    ) -> Result<PrometheusClient, PromError> {
        let http = reqwest::Client::builder()
            .connect_timeout(timeout)
            .timeout(timeout)
            .user_agent(concat!("sitrep/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| PromError::InvalidUrl {
                url: base_url.to_string(),
                reason: format!("cannot build an HTTP client: {e}"),
            })?;
        PrometheusClient::with_http_client(http, base_url, timeout, auth)
    }

    /// A client sharing an existing connection pool; `timeout` is applied per request, so the
    /// shared client's own settings do not matter.
    pub fn with_http_client(
        http: reqwest::Client,
        base_url: &str,
        timeout: Duration,
        auth: Option<Auth>,
    ) -> Result<PrometheusClient, PromError> {
        let invalid = |reason: &str| PromError::InvalidUrl {
            url: base_url.to_string(),
            reason: reason.to_string(),
        };
        let mut base = Url::parse(base_url.trim()).map_err(|e| invalid(&e.to_string()))?;
        if base.scheme() != "http" && base.scheme() != "https" {
            return Err(invalid("it must start with http:// or https://"));
        }
        if base.cannot_be_a_base() || base.host().is_none() {
            return Err(invalid("it has no host"));
        }
        if timeout.is_zero() {
            return Err(invalid("the timeout must be longer than zero"));
        }
        // Prometheus may live under a path prefix (`--web.route-prefix`); keep it, and make
        // joining `api/v1/...` append to it rather than replace its last segment.
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        base.set_query(None);
        base.set_fragment(None);
        let mut shown = base.clone();
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        let shown = shown.as_str().trim_end_matches('/').to_string();
        Ok(PrometheusClient {
            http,
            base,
            shown,
            timeout,
            auth,
        })
    }

    /// The base URL as shown in messages (without credentials).
    pub fn base_url(&self) -> &str {
        &self.shown
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Evaluates `promql` at one instant (`at`, or Prometheus' now).
    pub async fn query(
        &self,
        promql: &str,
        at: Option<DateTime<Utc>>,
    ) -> Result<Vec<Series>, PromError> {
        let mut params = vec![("query", promql.to_string())];
        if let Some(at) = at {
            params.push(("time", unix_seconds(at)));
        }
        self.call("api/v1/query", params).await
    }

    /// Evaluates `promql` at every `step` from `start` to `end`.
    pub async fn query_range(
        &self,
        promql: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        step: Duration,
    ) -> Result<Vec<Series>, PromError> {
        let params = vec![
            ("query", promql.to_string()),
            ("start", unix_seconds(start)),
            ("end", unix_seconds(end)),
            ("step", format!("{}ms", step.as_millis().max(1))),
        ];
        self.call("api/v1/query_range", params).await
    }

    async fn call(
        &self,
        endpoint: &str,
        mut params: Vec<(&'static str, String)>,
    ) -> Result<Vec<Series>, PromError> {
        // Prometheus stops evaluating when this passes, rather than working on for nobody.
        params.push(("timeout", format!("{}ms", self.timeout.as_millis())));
        let url = self
            .base
            .join(endpoint)
            .map_err(|e| PromError::InvalidUrl {
                url: self.shown.clone(),
                reason: e.to_string(),
            })?;
        let method = if use_post(&params) {
            reqwest::Method::POST
        } else {
            reqwest::Method::GET
        };
        let mut req = self.http.request(method.clone(), url).timeout(self.timeout);
        req = if method == reqwest::Method::POST {
            req.form(&params)
        } else {
            req.query(&params)
        };
        if let Some(auth) = &self.auth {
            req = auth.apply(req);
        }
        // reqwest's own timeout covers connect, send and body; this one also covers DNS and
        // anything else on the way, so the promise "within N s" holds whatever happens.
        let exchange = async {
            let resp = req.send().await.map_err(|e| self.transport_error(e))?;
            let status = resp.status();
            let content_type = resp.headers().get(CONTENT_TYPE).cloned();
            let body = self.read_body(resp).await?;
            Ok::<_, PromError>((status, content_type, body))
        };
        let (status, content_type, body) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| self.timeout_error())??;
        self.decode(status, content_type.as_ref(), &body)
    }

    async fn read_body(&self, mut resp: reqwest::Response) -> Result<Vec<u8>, PromError> {
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.transport_error(e))? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(PromError::BadResponse {
                    url: self.shown.clone(),
                    detail: format!(
                        "the reply is larger than {} MiB; narrow the query",
                        MAX_BODY_BYTES / (1024 * 1024)
                    ),
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn decode(
        &self,
        status: StatusCode,
        content_type: Option<&HeaderValue>,
        body: &[u8],
    ) -> Result<Vec<Series>, PromError> {
        // Prometheus sends its JSON envelope with 400, 422 and 503 too: read it first, so that
        // its own message wins over the status line.
        if let Ok(envelope) = serde_json::from_slice::<Envelope>(body) {
            return match envelope.status.as_str() {
                "success" => {
                    for warning in &envelope.warnings {
                        tracing::warn!(prometheus = %self.shown, "Prometheus warning: {warning}");
                    }
                    let data = envelope
                        .data
                        .ok_or_else(|| self.bad("no `data` in a success"))?;
                    parse_data(data).map_err(|detail| match detail {
                        DataError::Unsupported(what) => PromError::Unsupported { what },
                        DataError::Malformed(detail) => self.bad(&detail),
                    })
                }
                // Prometheus gives up at the `timeout` sent with the query, just as the client
                // does: the responder sees one message for "too slow" whichever side noticed.
                "error" if envelope.error_type.as_deref() == Some("timeout") => {
                    Err(self.timeout_error())
                }
                "error" => Err(PromError::Api {
                    error_type: envelope.error_type.unwrap_or_else(|| "unknown".to_string()),
                    message: envelope
                        .error
                        .unwrap_or_else(|| format!("HTTP {status} without a message")),
                }),
                other => Err(self.bad(&format!("unknown status `{other}`"))),
            };
        }
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(PromError::Unauthorized {
                url: self.shown.clone(),
                status: status.as_u16(),
            });
        }
        // A proxy in front of a Prometheus that is down answers like this.
        if matches!(status.as_u16(), 502..=504) {
            return Err(PromError::Unreachable {
                url: self.shown.clone(),
                reason: format!("HTTP {status} from the server in front of it"),
            });
        }
        let kind = content_type
            .and_then(|v| v.to_str().ok())
            .unwrap_or("no content type");
        Err(self.bad(&format!(
            "HTTP {status} ({kind}): {}",
            snippet(&String::from_utf8_lossy(body))
        )))
    }

    fn bad(&self, detail: &str) -> PromError {
        PromError::BadResponse {
            url: self.shown.clone(),
            detail: detail.to_string(),
        }
    }

    fn timeout_error(&self) -> PromError {
        PromError::Timeout {
            url: self.shown.clone(),
            after: self.timeout,
        }
    }

    fn transport_error(&self, e: reqwest::Error) -> PromError {
        if e.is_timeout() {
            return self.timeout_error();
        }
        PromError::Unreachable {
            url: self.shown.clone(),
            reason: root_cause(&e),
        }
    }
}

fn use_post(params: &[(&str, String)]) -> bool {
    let query_len: usize = params
        .iter()
        .filter(|(k, _)| *k == "query")
        .map(|(_, v)| encoded_len(v))
        .sum();
    query_len > POST_THRESHOLD_BYTES
}

/// Length after form url-encoding: unreserved bytes stay, spaces become one byte, others three.
fn encoded_len(s: &str) -> usize {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' | b' ' => 1,
            _ => 3,
        })
        .sum()
}

/// Unix seconds with millisecond precision, the form Prometheus documents for `time`.
fn unix_seconds(t: DateTime<Utc>) -> String {
    let ms = t.timestamp_millis();
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

/// The innermost error says what happened ("Connection refused"); the outer ones say where.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause: &(dyn std::error::Error + 'static) = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let text = cause.to_string();
    // "Connection refused (os error 111)" reads better without the errno.
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

fn snippet(body: &str) -> String {
    let flat: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.is_empty() {
        return "empty body".to_string();
    }
    match flat.char_indices().nth(160) {
        Some((i, _)) => format!("{}…", &flat[..i]),
        None => flat,
    }
}

#[derive(Deserialize)]
struct Envelope {
    status: String,
    data: Option<serde_json::Value>,
    #[serde(rename = "errorType")]
    error_type: Option<String>,
    error: Option<String>,
    #[serde(default)]
    warnings: Vec<String>,
}

/// `[<unix seconds>, "<value>"]`: values are strings so that NaN and ±Inf survive JSON.
type RawSample = (f64, String);

#[derive(Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum Data {
    Vector(Vec<RawVectorItem>),
    Matrix(Vec<RawMatrixItem>),
    Scalar(RawSample),
    String(serde::de::IgnoredAny),
}

#[derive(Deserialize)]
struct RawVectorItem {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    value: Option<RawSample>,
}

#[derive(Deserialize)]
struct RawMatrixItem {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    #[serde(default)]
    values: Vec<RawSample>,
}

enum DataError {
    Unsupported(String),
    Malformed(String),
}

fn parse_data(data: serde_json::Value) -> Result<Vec<Series>, DataError> {
    let data: Data = serde_json::from_value(data)
        .map_err(|e| DataError::Malformed(format!("unexpected `data`: {e}")))?;
    match data {
        Data::Scalar(raw) => Ok(vec![Series {
            labels: BTreeMap::new(),
            samples: vec![sample(raw)?],
        }]),
        // Series with native histograms only carry no `value`; there is nothing to show for them.
        Data::Vector(items) => items
            .into_iter()
            .filter_map(|item| item.value.map(|raw| (item.metric, raw)))
            .map(|(labels, raw)| {
                Ok(Series {
                    labels,
                    samples: vec![sample(raw)?],
                })
            })
            .collect(),
        Data::Matrix(items) => items
            .into_iter()
            .filter(|item| !item.values.is_empty())
            .map(|item| {
                Ok(Series {
                    labels: item.metric,
                    samples: item
                        .values
                        .into_iter()
                        .map(sample)
                        .collect::<Result<_, _>>()?,
                })
            })
            .collect(),
        Data::String(_) => Err(DataError::Unsupported("a string".to_string())),
    }
}

fn sample((ts, value): RawSample) -> Result<Sample, DataError> {
    let millis = (ts * 1000.0).round();
    let at = if millis.is_finite() {
        DateTime::from_timestamp_millis(millis as i64)
    } else {
        None
    }
    .ok_or_else(|| DataError::Malformed(format!("timestamp {ts} is out of range")))?;
    // Rust's parser takes "NaN", "+Inf" and "-Inf", the spellings Prometheus uses.
    let value = value
        .parse::<f64>()
        .map_err(|_| DataError::Malformed(format!("`{value}` is not a number")))?;
    Ok(Sample { at, value })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// The request as a server saw it: head (lower-cased header names) and body.
    struct Seen {
        head: String,
        body: String,
    }

    /// Answers one request with `status` and `body`, and hands back what it received.
    async fn one_shot(
        status: &'static str,
        content_type: &'static str,
        body: &'static str,
    ) -> (String, tokio::task::JoinHandle<Seen>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let (head_end, content_length) = loop {
                let n = sock.read(&mut chunk).await.unwrap();
                assert!(n > 0, "client closed before sending a request");
                buf.extend_from_slice(&chunk[..n]);
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..i]).to_lowercase();
                    let len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map(|v| v.trim().parse::<usize>().unwrap())
                        .unwrap_or(0);
                    break (i + 4, len);
                }
            };
            while buf.len() < head_end + content_length {
                let n = sock.read(&mut chunk).await.unwrap();
                buf.extend_from_slice(&chunk[..n]);
            }
            let reply = format!(
                "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            sock.write_all(reply.as_bytes()).await.unwrap();
            Seen {
                head: String::from_utf8_lossy(&buf[..head_end]).to_string(),
                body: String::from_utf8_lossy(&buf[head_end..]).to_string(),
            }
        });
        (url, task)
    }

    const VECTOR: &str = r#"{"status":"success","data":{"resultType":"vector","result":[
        {"metric":{"service":"checkout"},"value":[1700000000.5,"4.5"]},
        {"metric":{"service":"search"},"value":[1700000000.5,"NaN"]}]}}"#;

    fn client(url: &str, auth: Option<Auth>) -> PrometheusClient {
        PrometheusClient::new(url, Duration::from_secs(2), auth).unwrap()
    }

    #[tokio::test]
    async fn short_query_is_a_get_with_bearer_token_and_time() {
        let (url, seen) = one_shot("200 OK", "application/json", VECTOR).await;
        let c = client(&url, Auth::parse("s3cret"));
        let at = DateTime::from_timestamp(1_700_000_000, 500_000_000).unwrap();
        let series = c.query("up", Some(at)).await.unwrap();
        let seen = seen.await.unwrap();
        assert!(seen
            .head
            .starts_with("GET /api/v1/query?query=up&time=1700000000.500&timeout=2000ms "));
        assert!(seen
            .head
            .to_lowercase()
            .contains("authorization: bearer s3cret"));
        assert_eq!(series.len(), 2);
        assert_eq!(series[0].labels["service"], "checkout");
        assert_eq!(series[0].value(), Some(4.5));
        assert_eq!(series[0].samples[0].at, at);
        assert!(series[1].value().unwrap().is_nan());
    }

    #[tokio::test]
    async fn long_query_is_a_post_form_with_basic_auth() {
        let (url, seen) = one_shot("200 OK", "application/json", VECTOR).await;
        let c = client(&url, Auth::parse("alice:open sesame"));
        let long = format!("up{{job=\"{}\"}}", "x".repeat(POST_THRESHOLD_BYTES));
        c.query(&long, None).await.unwrap();
        let seen = seen.await.unwrap();
        assert!(
            seen.head.starts_with("POST /api/v1/query "),
            "{}",
            seen.head
        );
        assert!(seen
            .head
            .contains("content-type: application/x-www-form-urlencoded"));
        // base64("alice:open sesame")
        assert!(seen
            .head
            .contains("authorization: Basic YWxpY2U6b3BlbiBzZXNhbWU="));
        assert!(seen.body.starts_with("query=up%7Bjob%3D%22xxx"));
        assert!(seen.body.ends_with("&timeout=2000ms"));
    }

    #[tokio::test]
    async fn range_query_sends_start_end_step_and_reads_a_matrix() {
        let body = r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"code":"500"},"values":[[1700000000,"1"],[1700000060,"+Inf"]]}]}}"#;
        let (url, seen) = one_shot("200 OK", "application/json", body).await;
        let c = client(&format!("{url}/prom"), None);
        let start = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let end = DateTime::from_timestamp(1_700_000_060, 0).unwrap();
        let series = c
            .query_range("rate(x[5m])", start, end, Duration::from_secs(60))
            .await
            .unwrap();
        let seen = seen.await.unwrap();
        assert!(seen.head.starts_with(
            "GET /prom/api/v1/query_range?query=rate%28x%5B5m%5D%29&start=1700000000.000&end=1700000060.000&step=60000ms&timeout=2000ms "
        ), "{}", seen.head);
        assert!(!seen.head.contains("authorization"));
        assert_eq!(series[0].samples.len(), 2);
        assert_eq!(series[0].samples[1].value, f64::INFINITY);
    }

    #[tokio::test]
    async fn scalar_is_one_unlabelled_series() {
        let body =
            r#"{"status":"success","data":{"resultType":"scalar","result":[1700000000,"2"]}}"#;
        let (url, _seen) = one_shot("200 OK", "application/json", body).await;
        let series = client(&url, None).query("1+1", None).await.unwrap();
        assert_eq!(series.len(), 1);
        assert!(series[0].labels.is_empty());
        assert_eq!(series[0].value(), Some(2.0));
    }

    #[tokio::test]
    async fn string_result_is_unsupported() {
        let body =
            r#"{"status":"success","data":{"resultType":"string","result":[1700000000,"hi"]}}"#;
        let (url, _seen) = one_shot("200 OK", "application/json", body).await;
        let err = client(&url, None).query("\"hi\"", None).await.unwrap_err();
        assert!(matches!(err, PromError::Unsupported { .. }), "{err:?}");
        assert!(err.is_query_error());
    }

    #[tokio::test]
    async fn error_envelope_carries_prometheus_message() {
        let body = r#"{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected end of input"}"#;
        let (url, _seen) = one_shot("400 Bad Request", "application/json", body).await;
        let err = client(&url, None).query("sum(", None).await.unwrap_err();
        match &err {
            PromError::Api {
                error_type,
                message,
            } => {
                assert_eq!(error_type, "bad_data");
                assert_eq!(message, "1:5: parse error: unexpected end of input");
            }
            other => panic!("expected an API error, got {other:?}"),
        }
        assert_eq!(
            err.to_string(),
            "Prometheus rejected the query: 1:5: parse error: unexpected end of input"
        );
        assert!(err.is_query_error());
    }

    #[tokio::test]
    async fn prometheus_own_timeout_reads_like_ours() {
        let body = r#"{"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"}"#;
        let (url, _seen) = one_shot("503 Service Unavailable", "application/json", body).await;
        let err = client(&url, None).query("up", None).await.unwrap_err();
        assert!(matches!(err, PromError::Timeout { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!("Prometheus at {url} did not answer within 2 s")
        );
    }

    #[tokio::test]
    async fn unauthorized_names_the_variable() {
        let (url, _seen) = one_shot("401 Unauthorized", "text/plain", "Unauthorized").await;
        let err = client(&url, None).query("up", None).await.unwrap_err();
        assert!(matches!(err, PromError::Unauthorized { status: 401, .. }));
        assert!(err.to_string().contains(TOKEN_ENV));
    }

    #[tokio::test]
    async fn proxy_gateway_error_means_unreachable() {
        let (url, _seen) =
            one_shot("502 Bad Gateway", "text/html", "<html>bad gateway</html>").await;
        let err = client(&url, None).query("up", None).await.unwrap_err();
        assert!(matches!(err, PromError::Unreachable { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn html_page_is_a_bad_response_with_a_snippet() {
        let (url, _seen) =
            one_shot("200 OK", "text/html", "<html><body>Sign in</body></html>").await;
        let err = client(&url, None).query("up", None).await.unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, PromError::BadResponse { .. }));
        assert!(
            text.contains("text/html") && text.contains("Sign in"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn silent_server_times_out_on_time() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let _hold = tokio::spawn(async move {
            let mut open = Vec::new();
            loop {
                let (sock, _) = listener.accept().await.unwrap();
                open.push(sock);
            }
        });
        let c = PrometheusClient::new(&url, Duration::from_millis(300), None).unwrap();
        let started = Instant::now();
        let err = c.query("up", None).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(matches!(err, PromError::Timeout { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!("Prometheus at {url} did not answer within 300 ms")
        );
    }

    #[test]
    fn urls_keep_prefixes_and_hide_credentials() {
        let c = client("http://bob:pw@prom.example:9090/prometheus", None);
        assert_eq!(c.base_url(), "http://prom.example:9090/prometheus");
        assert_eq!(
            c.base.join("api/v1/query").unwrap().path(),
            "/prometheus/api/v1/query"
        );
        assert!(matches!(
            PrometheusClient::new("ftp://x", Duration::from_secs(1), None),
            Err(PromError::InvalidUrl { .. })
        ));
        assert!(matches!(
            PrometheusClient::new("not a url", Duration::from_secs(1), None),
            Err(PromError::InvalidUrl { .. })
        ));
    }

    #[test]
    fn auth_parsing_and_redaction() {
        assert_eq!(Auth::parse("  "), None);
        assert_eq!(Auth::parse("tok"), Some(Auth::Bearer("tok".into())));
        assert_eq!(
            Auth::parse("u:p:q"),
            Some(Auth::Basic {
                user: "u".into(),
                password: "p:q".into()
            })
        );
        let shown = format!("{:?}", Auth::parse("u:hunter2").unwrap());
        assert!(!shown.contains("hunter2"));
        assert!(!format!("{:?}", Auth::Bearer("hunter2".into())).contains("hunter2"));
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(seconds(Duration::from_secs(5)), "5 s");
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5 s");
        assert_eq!(seconds(Duration::from_millis(250)), "250 ms");
    }

    #[test]
    fn post_threshold_counts_encoded_bytes() {
        let q = |s: &str| vec![("query", s.to_string())];
        assert!(!use_post(&q(&"a".repeat(POST_THRESHOLD_BYTES))));
        assert!(use_post(&q(&"a".repeat(POST_THRESHOLD_BYTES + 1))));
        // Each brace costs three bytes once encoded.
        assert!(use_post(&q(&"{".repeat(POST_THRESHOLD_BYTES / 3 + 1))));
    }

    #[test]
    fn timestamps_keep_milliseconds() {
        let t = DateTime::from_timestamp_millis(1_700_000_000_007).unwrap();
        assert_eq!(unix_seconds(t), "1700000000.007");
    }
}
