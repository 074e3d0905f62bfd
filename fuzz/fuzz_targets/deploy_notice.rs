//! The signed deploy webhook: headers → `Signed`, body → `Verifier` → `parse_notice`.
//!
//! Checks: headers are accepted only fresh and well formed; a correct signature verifies once
//! and any other body does not; an accepted notice yields a deploy whose every field keeps the
//! documented limits, and sending that deploy back as a notice reads to the same deploy.
#![no_main]

use arbitrary::{Result, Unstructured};
use chrono::{DateTime, TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};
use sitrep::integrations::deploys::{
    parse_notice, sign, Deploy, Rejection, Signed, Verifier, WINDOW_SECS,
};
use sitrep_fuzz::hostile;

const SECRET: &str = "fuzz-secret";
const FIELDS: &[&str] = &[
    "service",
    "version",
    "commit",
    "author",
    "environment",
    "status",
    "url",
    "time",
];

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).unwrap()
}

/// A body: mostly a JSON object with the notice's fields (and hostile values), sometimes raw
/// bytes.
fn body(u: &mut Unstructured) -> Result<Vec<u8>> {
    if u.ratio(1, 8)? {
        return u.arbitrary::<Vec<u8>>();
    }
    let mut obj = Map::new();
    for f in FIELDS {
        if !u.ratio(2, 3)? {
            continue;
        }
        let v = match (u.int_in_range(0..=9)?, *f) {
            (0, _) => Value::Null,
            (1, _) => json!(u.arbitrary::<i64>()?),
            (2..=4, "time") => json!(now().timestamp() + u.int_in_range(-86_400..=600)?),
            (5..=6, "time") => {
                json!((now() - chrono::Duration::minutes(u.int_in_range(0..=600)?)).to_rfc3339())
            }
            (2..=5, "url") => {
                let scheme = u.choose(&["https://", "http://", "javascript:", "ftp://", ""])?;
                json!(format!("{scheme}{}", hostile(u)?))
            }
            _ => json!(hostile(u)?),
        };
        obj.insert(f.to_string(), v);
    }
    if u.ratio(1, 20)? {
        obj.insert(hostile(u)?, json!("x"));
    }
    Ok(serde_json::to_vec(&Value::Object(obj)).expect("a JSON object"))
}

fn check_deploy(d: &Deploy, signed_at: DateTime<Utc>) {
    let plain = |field: &str, v: &str, max: usize| {
        assert_eq!(v, v.trim(), "{field} not trimmed: {d:?}");
        assert!(
            !v.chars().any(char::is_control),
            "{field} has control characters: {d:?}"
        );
        let n = v.chars().count();
        assert!(n <= max, "{field} is {n} characters, over {max}: {d:?}");
    };
    plain("service", &d.service, 100);
    plain("version", &d.version, 100);
    assert!(!d.service.is_empty() && !d.version.is_empty(), "{d:?}");
    for (field, v, max) in [
        ("commit", &d.commit, 100),
        ("author", &d.author, 100),
        ("environment", &d.environment, 100),
        ("status", &d.status, 40),
        ("url", &d.url, 1000),
    ] {
        if let Some(v) = v {
            assert!(!v.is_empty(), "{field} empty rather than absent: {d:?}");
            plain(field, v, max);
        }
    }
    if let Some(s) = &d.status {
        assert_eq!(s, &s.to_lowercase(), "{d:?}");
    }
    if let Some(url) = &d.url {
        assert!(
            url.starts_with("http://") || url.starts_with("https://"),
            "{d:?}"
        );
    }
    assert!(
        d.time <= now() + chrono::Duration::seconds(WINDOW_SECS),
        "{d:?}"
    );
    assert_eq!(d.id.len(), 32, "{d:?}");
    assert!(d.id.bytes().all(|b| b.is_ascii_hexdigit()), "{d:?}");

    // What was stored, sent again, is read as the same deploy.
    let mut again = json!({
        "service": d.service,
        "version": d.version,
        "time": d.time.to_rfc3339(),
    });
    for (k, v) in [
        ("commit", &d.commit),
        ("author", &d.author),
        ("environment", &d.environment),
        ("status", &d.status),
        ("url", &d.url),
    ] {
        if let Some(v) = v {
            again[k] = json!(v);
        }
    }
    let reread = parse_notice(again.to_string().as_bytes(), signed_at, now())
        .unwrap_or_else(|e| panic!("{d:?} sent again is refused: {e}"));
    assert_eq!(&reread, d, "a deploy sent again reads differently");
}

fn run(u: &mut Unstructured) -> Result<()> {
    let verifier = Verifier::new(SECRET);
    let skew = u.int_in_range(-2 * WINDOW_SECS..=2 * WINDOW_SECS)?;
    let ts = now().timestamp() + skew;
    let body = body(u)?;
    let good = sign(SECRET.as_bytes(), ts, &body);
    let (ts_header, sig_header) = match u.int_in_range(0..=9)? {
        0 => (Some(u.arbitrary::<String>()?), Some(good.clone())),
        1 => (Some(ts.to_string()), Some(u.arbitrary::<String>()?)),
        2 => (None, Some(good.clone())),
        3 => (Some(ts.to_string()), None),
        4 => (
            Some(format!(" {ts} ")),
            Some(format!(
                " {} ",
                good.to_uppercase().replace("SHA256=", "sha256=")
            )),
        ),
        _ => (Some(ts.to_string()), Some(good.clone())),
    };
    let signed = Signed::from_headers(ts_header.as_deref(), sig_header.as_deref(), now());
    let Ok(signed) = signed else {
        return Ok(());
    };
    let parsed_ts: i64 = ts_header
        .as_deref()
        .unwrap_or_default()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(signed.timestamp, parsed_ts);
    assert!((now().timestamp() - parsed_ts).abs() <= WINDOW_SECS);
    let sig = sig_header.unwrap_or_default();
    let hex = sig
        .trim()
        .strip_prefix("sha256=")
        .expect("accepted a signature without sha256=");
    assert_eq!(hex.len(), 64, "{sig:?}");

    let expected = sign(SECRET.as_bytes(), parsed_ts, &body);
    let genuine = hex.eq_ignore_ascii_case(expected.trim_start_matches("sha256="));
    let claim = verifier.verify(&signed, &body, now());
    if !genuine {
        assert_eq!(claim.err(), Some(Rejection::BadSignature), "forged {sig:?}");
        return Ok(());
    }
    let claim = claim.expect("the genuine signature verifies");
    let mut tampered = body.clone();
    tampered.push(b' ');
    assert_eq!(
        verifier.verify(&signed, &tampered, now()).err(),
        Some(Rejection::BadSignature)
    );
    assert_eq!(
        verifier.verify(&signed, &body, now()).err(),
        Some(Rejection::Replayed)
    );
    match parse_notice(&body, signed.signed_at(), now()) {
        Ok(d) => {
            check_deploy(&d, signed.signed_at());
            let again = parse_notice(&body, signed.signed_at(), now()).expect("deterministic");
            assert_eq!(again, d);
            claim.keep();
            assert_eq!(
                verifier.verify(&signed, &body, now()).err(),
                Some(Rejection::Replayed)
            );
        }
        Err(message) => {
            assert!(!message.is_empty());
            // A refused notice gives its claim back, so the sender can fix and resend it.
            drop(claim);
            verifier
                .verify(&signed, &body, now())
                .expect("a refused notice can be delivered again")
                .keep();
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
