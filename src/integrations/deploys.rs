//! Deploy notices from CI pipelines: their JSON, its checks, the signature and the replay guard.
//!
//! A notice is signed in the style of Stripe's and GitHub's webhooks:
//! `X-Sitrep-Timestamp: <unix seconds>` and
//! `X-Sitrep-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>">`, keyed with
//! `SITREP_DEPLOY_WEBHOOK_SECRET`. Signing the timestamp bounds how long a captured notice can be
//! replayed; the guard here refuses a second delivery of the same signature inside that bound.

use chrono::{DateTime, Datelike, TimeZone, Utc};
use hmac::{Hmac, Mac};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

pub use crate::store::{Deploy, DeploySource};

pub const SECRET_ENV: &str = "SITREP_DEPLOY_WEBHOOK_SECRET";
pub const TIMESTAMP_HEADER: &str = "x-sitrep-timestamp";
pub const SIGNATURE_HEADER: &str = "x-sitrep-signature";
/// How far a notice's timestamp may be from our clock, either way.
pub const WINDOW_SECS: i64 = 5 * 60;
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Signatures remembered at once. Only correctly signed notices take a place, so reaching this
/// means a sender gone wild; refusing is safer than forgetting, which would let replays in.
pub const MAX_REMEMBERED: usize = 10_000;

const MAX_FIELD: usize = 100;
const MAX_URL: usize = 1000;

type HmacSha256 = Hmac<Sha256>;

/// Why a notice was refused before its content was looked at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("missing {0} header; sign deploy notices as the README describes")]
    MissingHeader(&'static str),
    #[error("X-Sitrep-Timestamp must be unix seconds, like 1795255200")]
    BadTimestamp,
    #[error(
        "stale timestamp: X-Sitrep-Timestamp is {0} s from the server's clock and notices are \
         accepted within {WINDOW_SECS} s; sign each notice when it is sent and check the sender's clock"
    )]
    Stale(i64),
    #[error("X-Sitrep-Signature must look like sha256=<64 hex digits>")]
    MalformedSignature,
    #[error(
        "X-Sitrep-Signature does not match: sign \"<timestamp>.<body>\" with HMAC-SHA256 and the \
         shared secret, and send the body byte for byte as signed"
    )]
    BadSignature,
    #[error(
        "this notice was accepted already (same timestamp and signature); to send it again, sign \
         it again with the current time"
    )]
    Replayed,
    #[error("too many notices in the last {WINDOW_SECS} s; try again in a minute")]
    Busy,
}

/// `sha256=<hex>`: what a sender puts in `X-Sitrep-Signature` for `timestamp` and `body`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The signature headers, checked for shape and freshness; the body is not needed yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signed {
    pub timestamp: i64,
    mac: [u8; 32],
}

impl Signed {
    /// Reads the headers as sent. Freshness is checked here so that a stale notice is refused
    /// before its body is read.
    pub fn from_headers(
        timestamp: Option<&str>,
        signature: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Signed, Rejection> {
        let timestamp = timestamp.ok_or(Rejection::MissingHeader("X-Sitrep-Timestamp"))?;
        let signature = signature.ok_or(Rejection::MissingHeader("X-Sitrep-Signature"))?;
        let timestamp: i64 = timestamp
            .trim()
            .parse()
            .map_err(|_| Rejection::BadTimestamp)?;
        let skew = now.timestamp().saturating_sub(timestamp);
        if skew.unsigned_abs() > WINDOW_SECS as u64 {
            return Err(Rejection::Stale(skew));
        }
        let hex_mac = signature
            .trim()
            .strip_prefix("sha256=")
            .ok_or(Rejection::MalformedSignature)?;
        let mut mac = [0u8; 32];
        hex::decode_to_slice(hex_mac, &mut mac).map_err(|_| Rejection::MalformedSignature)?;
        Ok(Signed { timestamp, mac })
    }

    /// The signed timestamp as a time.
    pub fn signed_at(&self) -> DateTime<Utc> {
        Utc.timestamp_opt(self.timestamp, 0)
            .single()
            .unwrap_or(DateTime::UNIX_EPOCH)
    }
}

/// Checks signatures with the shared secret and remembers the ones accepted inside the window.
#[derive(Clone)]
pub struct Verifier {
    key: HmacSha256,
    seen: Arc<Mutex<HashMap<[u8; 32], i64>>>,
    capacity: usize,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier").finish_non_exhaustive()
    }
}

impl Verifier {
    pub fn new(secret: &str) -> Verifier {
        Self::with_capacity(secret, MAX_REMEMBERED)
    }

    pub fn with_capacity(secret: &str, capacity: usize) -> Verifier {
        Verifier {
            key: HmacSha256::new_from_slice(secret.as_bytes())
                .expect("HMAC takes keys of any length"),
            seen: Arc::new(Mutex::new(HashMap::new())),
            capacity,
        }
    }

    /// Checks the signature over `body` in constant time, then claims it so that a second
    /// delivery is refused. The claim is given back if the guard is dropped without
    /// [`Claim::keep`], so a notice refused for its content can be corrected and resent.
    pub fn verify(
        &self,
        signed: &Signed,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Claim, Rejection> {
        let mut mac = self.key.clone();
        mac.update(signed.timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.verify_slice(&signed.mac)
            .map_err(|_| Rejection::BadSignature)?;

        let mut seen = self.seen.lock().expect("replay guard");
        if seen.contains_key(&signed.mac) {
            return Err(Rejection::Replayed);
        }
        if seen.len() >= self.capacity {
            // Anything outside the window is refused as stale anyway, so it need not be kept.
            let oldest = now.timestamp() - WINDOW_SECS;
            seen.retain(|_, ts| *ts >= oldest);
            if seen.len() >= self.capacity {
                return Err(Rejection::Busy);
            }
        }
        seen.insert(signed.mac, signed.timestamp);
        Ok(Claim {
            seen: self.seen.clone(),
            mac: signed.mac,
            kept: false,
        })
    }
}

/// A signature taken as delivered; see [`Verifier::verify`].
pub struct Claim {
    seen: Arc<Mutex<HashMap<[u8; 32], i64>>>,
    mac: [u8; 32],
    kept: bool,
}

impl Claim {
    pub fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if !self.kept {
            if let Ok(mut seen) = self.seen.lock() {
                seen.remove(&self.mac);
            }
        }
    }
}

/// The JSON a CI pipeline sends. Unknown fields are refused so that a typo is not silently lost.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Notice {
    service: String,
    version: String,
    #[serde(default)]
    commit: Option<String>,
    #[serde(default)]
    author: Option<String>,
    #[serde(default)]
    environment: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default, deserialize_with = "moment")]
    time: Option<DateTime<Utc>>,
}

/// RFC 3339 text or unix seconds, so that `$(date +%s)` works in a pipeline.
fn moment<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    struct Moment;
    impl Visitor<'_> for Moment {
        type Value = Option<DateTime<Utc>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an RFC 3339 time like \"2026-11-21T10:42:00Z\" or unix seconds")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Utc.timestamp_opt(v, 0)
                .single()
                // Years RFC 3339 can write, so that a stored deploy reads back as it was sent.
                .filter(|t| (0..=9999).contains(&t.year()))
                .map(Some)
                .ok_or_else(|| E::custom(format!("{v} is not a time in unix seconds")))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            let v = i64::try_from(v)
                .map_err(|_| E::custom(format!("{v} is not a time in unix seconds")))?;
            self.visit_i64(v)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            DateTime::parse_from_rfc3339(v.trim())
                .map(|t| Some(t.with_timezone(&Utc)))
                .map_err(|e| {
                    E::custom(format!(
                        "`{v}` is not an RFC 3339 time like \"2026-11-21T10:42:00Z\" ({e})"
                    ))
                })
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(Moment)
}

fn text(field: &str, value: &str, max: usize) -> Result<String, String> {
    let v = value.trim();
    if v.chars().any(char::is_control) {
        return Err(format!("`{field}` must not contain control characters"));
    }
    let len = v.chars().count();
    if len > max {
        return Err(format!("`{field}` is {len} characters; the limit is {max}"));
    }
    Ok(v.to_string())
}

/// Characters that take no room on screen: a name made only of them reads as empty in chat.
fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

fn required(field: &str, value: &str) -> Result<String, String> {
    let v = text(field, value, MAX_FIELD)?;
    if v.chars().all(|c| c.is_whitespace() || invisible(c)) {
        return Err(format!("`{field}` must not be empty"));
    }
    Ok(v)
}

fn optional(field: &str, value: Option<String>, max: usize) -> Result<Option<String>, String> {
    match value {
        Some(v) => text(field, &v, max).map(|v| Some(v).filter(|v| !v.is_empty())),
        None => Ok(None),
    }
}

/// A link safe to show in chat: http(s) only, so that nothing else hides behind a masked link.
pub fn check_url(field: &str, value: Option<String>) -> Result<Option<String>, String> {
    let Some(raw) = optional(field, value, MAX_URL)? else {
        return Ok(None);
    };
    let url =
        reqwest::Url::parse(&raw).map_err(|e| format!("`{field}` is not a URL ({e}): {raw}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("`{field}` must be an http or https URL"));
    }
    // Parsing percent-encodes spaces and non-ASCII text, so the link shown can be several
    // times longer than the one sent: the limit holds for what is kept.
    let url = url.to_string();
    let len = url.chars().count();
    if len > MAX_URL {
        return Err(format!(
            "`{field}` is {len} characters once encoded; the limit is {MAX_URL}"
        ));
    }
    Ok(Some(url))
}

/// Reads a notice into a [`Deploy`]; the error says what is wrong with it, for the sender.
/// A notice without `time` is taken as happening when it was signed, so that a replay of it can
/// only ever name the same deploy.
pub fn parse_notice(
    body: &[u8],
    signed_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Deploy, String> {
    let notice: Notice = serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => format!("invalid deploy notice: {e}"),
        _ => format!("the body is not valid JSON: {e}"),
    })?;
    let time = notice.time.unwrap_or(signed_at);
    if time > now + chrono::Duration::seconds(WINDOW_SECS) {
        return Err(format!(
            "`time` {} is in the future",
            time.format("%Y-%m-%dT%H:%M:%SZ")
        ));
    }
    let service = required("service", &notice.service)?;
    let version = required("version", &notice.version)?;
    let environment = optional("environment", notice.environment, MAX_FIELD)?;
    // Lower-cased before the length check: lower case can be longer ("İ" is two characters).
    let status = optional("status", notice.status.map(|s| s.to_lowercase()), 40)?;
    let mut deploy = Deploy {
        source: DeploySource::Webhook,
        id: String::new(),
        commit: optional("commit", notice.commit, MAX_FIELD)?,
        author: optional("author", notice.author, MAX_FIELD)?,
        url: check_url("url", notice.url)?,
        service,
        version,
        environment,
        status,
        time,
    };
    deploy.id = webhook_id(&deploy);
    Ok(deploy)
}

/// A notice names no id of its own: the same service, version, environment and time is the same
/// deploy, so a pipeline that reports "started" and then "success" updates one record.
fn webhook_id(d: &Deploy) -> String {
    let mut h = Sha256::new();
    for part in [
        d.service.to_lowercase().as_str(),
        d.environment
            .as_deref()
            .unwrap_or("")
            .to_lowercase()
            .as_str(),
        d.version.as_str(),
        d.time.to_rfc3339().as_str(),
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).unwrap()
    }

    #[test]
    fn signature_matches_the_documented_recipe() {
        // printf '1795255200.{}' | openssl dgst -sha256 -hmac secret
        assert_eq!(
            sign(b"secret", 1795255200, b"{}"),
            "sha256=c8c98afec5098ce8d139a89e27b4c261a84973924ace8ef65c5fa852d9eece6a"
        );
    }

    #[test]
    fn headers_are_checked_before_the_body() {
        let n = now();
        let ts = n.timestamp().to_string();
        let sig = sign(b"k", n.timestamp(), b"x");
        assert_eq!(
            Signed::from_headers(None, Some(&sig), n),
            Err(Rejection::MissingHeader("X-Sitrep-Timestamp"))
        );
        assert_eq!(
            Signed::from_headers(Some(&ts), None, n),
            Err(Rejection::MissingHeader("X-Sitrep-Signature"))
        );
        assert_eq!(
            Signed::from_headers(Some("soon"), Some(&sig), n),
            Err(Rejection::BadTimestamp)
        );
        let old = (n.timestamp() - 301).to_string();
        assert_eq!(
            Signed::from_headers(Some(&old), Some(&sig), n),
            Err(Rejection::Stale(301))
        );
        let ahead = (n.timestamp() + 400).to_string();
        assert_eq!(
            Signed::from_headers(Some(&ahead), Some(&sig), n),
            Err(Rejection::Stale(-400))
        );
        for bad in ["md5=abc", "sha256=zz", "sha256=abcd"] {
            assert_eq!(
                Signed::from_headers(Some(&ts), Some(bad), n),
                Err(Rejection::MalformedSignature)
            );
        }
        assert!(Signed::from_headers(Some(&ts), Some(&sig), n).is_ok());
    }

    #[test]
    fn a_signature_is_accepted_once() {
        let n = now();
        let v = Verifier::new("k");
        let body = br#"{"service":"a","version":"1"}"#;
        let signed = |body: &[u8]| {
            Signed::from_headers(
                Some(&n.timestamp().to_string()),
                Some(&sign(b"k", n.timestamp(), body)),
                n,
            )
            .unwrap()
        };
        let s = signed(body);
        assert_eq!(
            v.verify(&s, b"tampered", n).err(),
            Some(Rejection::BadSignature)
        );
        // A claim that is not kept (the notice was then refused) can be delivered again.
        drop(v.verify(&s, body, n).unwrap());
        v.verify(&s, body, n).unwrap().keep();
        assert_eq!(v.verify(&s, body, n).err(), Some(Rejection::Replayed));
        let other = Verifier::new("other key");
        assert_eq!(
            other.verify(&s, body, n).err(),
            Some(Rejection::BadSignature)
        );
    }

    #[test]
    fn the_replay_memory_is_bounded() {
        let v = Verifier::with_capacity("k", 2);
        let n = now();
        let accept = |at: DateTime<Utc>, body: &[u8]| {
            let s = Signed::from_headers(
                Some(&at.timestamp().to_string()),
                Some(&sign(b"k", at.timestamp(), body)),
                at,
            )
            .unwrap();
            v.verify(&s, body, at).map(Claim::keep)
        };
        accept(n, b"1").unwrap();
        accept(n, b"2").unwrap();
        assert_eq!(accept(n, b"3"), Err(Rejection::Busy));
        // Once the first two are outside the window they are forgotten and room is made.
        let later = n + chrono::Duration::seconds(WINDOW_SECS + 1);
        accept(later, b"3").unwrap();
    }

    #[test]
    fn notices_are_read_and_checked() {
        let n = now();
        let d = parse_notice(
            br#"{"service":" checkout ","version":"2.3.1","commit":"abc1234","author":"alice",
                "environment":"production","status":"Success","url":"https://ci.example.com/run/7",
                "time":"2026-11-21T11:58:00+01:00"}"#,
            n,
            n,
        )
        .unwrap();
        assert_eq!(d.service, "checkout");
        assert_eq!(d.status.as_deref(), Some("success"));
        assert_eq!(
            d.time,
            Utc.with_ymd_and_hms(2026, 11, 21, 10, 58, 0).unwrap()
        );
        assert_eq!(d.source, DeploySource::Webhook);
        assert_eq!(d.id.len(), 32);

        let unix =
            parse_notice(br#"{"service":"a","version":"1","time":1795255200}"#, n, n).unwrap();
        assert_eq!(unix.time.timestamp(), 1795255200);
        let signed_at = n - chrono::Duration::seconds(3);
        let untimed = parse_notice(
            br#"{"service":"a","version":"1","commit":null}"#,
            signed_at,
            n,
        )
        .unwrap();
        assert_eq!(untimed.time, signed_at);
        assert_ne!(unix.id, untimed.id);

        for (body, needle) in [
            (&br#"{"service":"a""#[..], "not valid JSON"),
            (br#"not json"#, "not valid JSON"),
            (br#"{"service":"a"}"#, "missing field `version`"),
            (
                br#"{"service":"a","version":"1","enviroment":"prod"}"#,
                "unknown field `enviroment`",
            ),
            (br#"{"service":"a","version":7}"#, "invalid type"),
            (
                br#"{"service":"","version":"1"}"#,
                "`service` must not be empty",
            ),
            (
                br#"{"service":"a","version":"1","url":"javascript:alert(1)"}"#,
                "http or https",
            ),
            (
                br#"{"service":"a","version":"1","time":"yesterday"}"#,
                "not an RFC 3339 time",
            ),
            (
                br#"{"service":"a","version":"1","time":"2099-01-01T00:00:00Z"}"#,
                "in the future",
            ),
            (br#"{"service":"a\nb","version":"1"}"#, "control characters"),
        ] {
            let err = parse_notice(body, n, n).unwrap_err();
            assert!(err.contains(needle), "{needle:?} not in {err:?}");
        }
        let long = format!(r#"{{"service":"{}","version":"1"}}"#, "s".repeat(101));
        assert!(parse_notice(long.as_bytes(), n, n)
            .unwrap_err()
            .contains("the limit is 100"));
    }

    /// Found by fuzzing: what is kept keeps the limits, and reads back as it was sent.
    #[test]
    fn kept_values_keep_the_limits() {
        let n = now();
        let spaced = format!(
            r#"{{"service":"a","version":"1","url":"https://ci.example.com/{}"}}"#,
            "a b".repeat(300)
        );
        let err = parse_notice(spaced.as_bytes(), n, n).unwrap_err();
        assert!(
            err.contains("1523 characters once encoded; the limit is 1000"),
            "{err}"
        );
        let dotted = format!(
            r#"{{"service":"a","version":"1","status":"{}"}}"#,
            "İ".repeat(30)
        );
        let err = parse_notice(dotted.as_bytes(), n, n).unwrap_err();
        assert!(
            err.contains("`status` is 60 characters; the limit is 40"),
            "{err}"
        );
        let fits = format!(
            r#"{{"service":"a","version":"1","status":"{}"}}"#,
            "İ".repeat(20)
        );
        let d = parse_notice(fits.as_bytes(), n, n).unwrap();
        assert_eq!(d.status.unwrap().chars().count(), 40);
        // Found by fuzzing: a name of invisible characters only reads as empty.
        let blank = "{\"service\":\"\u{FEFF}\u{200B}\",\"version\":\"1\"}";
        let err = parse_notice(blank.as_bytes(), n, n).unwrap_err();
        assert!(err.contains("`service` must not be empty"), "{err}");
        let ancient = br#"{"service":"a","version":"1","time":-146000000000}"#;
        let err = parse_notice(ancient, n, n).unwrap_err();
        assert!(err.contains("is not a time in unix seconds"), "{err}");
        let first = parse_notice(br#"{"service":"a","version":"1","time":0}"#, n, n).unwrap();
        assert_eq!(first.time, DateTime::UNIX_EPOCH);
    }
}
