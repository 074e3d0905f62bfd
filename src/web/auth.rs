//! Who may read the incident browser: holders of `SITREP_HTTP_ADMIN_TOKEN`.
//!
//! People sign in once with a form and get a session cookie (HttpOnly, so no script can read
//! it; SameSite=Strict, so no other site can send it). The cookie holds its expiry and an
//! HMAC of that expiry keyed with the token: nothing is stored on the server, it cannot be
//! extended by editing it, and changing the token signs everyone out. Scripts send the token
//! itself as `Authorization: Bearer <token>`. Tokens are compared in constant time, and
//! wrong guesses are throttled for everybody.

use super::views::Cache;
use super::Web;
use crate::config::Config;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use minijinja::context;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The session cookie's name.
pub const COOKIE: &str = "sitrep_session";
/// How long a sign-in lasts.
pub const SESSION: Duration = Duration::hours(12);
/// Wrong tokens accepted per minute, from everyone together, before all token checks pause.
const MAX_FAILURES_PER_MINUTE: u32 = 20;
const SESSION_CONTEXT: &str = "sitrep-session-v1";

type HmacSha256 = Hmac<Sha256>;

/// The answer to "may this request read the incident browser?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Granted,
    /// No admin token is configured, so nobody may.
    Off,
    /// Neither a cookie nor a bearer token came with the request.
    Missing,
    Wrong,
    Expired,
    /// Too many wrong tokens lately.
    Throttled,
}

struct Failures {
    since: Instant,
    count: u32,
}

pub struct Auth {
    token: Option<String>,
    /// Marks the cookie Secure when the public reaches the edge over https.
    secure: bool,
    failures: Mutex<Failures>,
}

/// Equal in time that does not depend on where the inputs differ or how long they are.
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    let (a, b) = (Sha256::digest(a), Sha256::digest(b));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// The value of cookie `name` among the request's `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

impl Auth {
    pub fn new(token: Option<&str>, config: &Config) -> Auth {
        Auth {
            token: token
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty()),
            secure: config
                .status_page
                .public_url
                .as_deref()
                .is_some_and(|u| u.starts_with("https://")),
            failures: Mutex::new(Failures {
                since: Instant::now(),
                count: 0,
            }),
        }
    }

    pub fn is_on(&self) -> bool {
        self.token.is_some()
    }

    fn throttled(&self) -> bool {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if f.since.elapsed() >= std::time::Duration::from_secs(60) {
            f.since = Instant::now();
            f.count = 0;
        }
        f.count >= MAX_FAILURES_PER_MINUTE
    }

    fn failed(&self) {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        f.count = f.count.saturating_add(1);
    }

    /// Checks a presented token, counting a wrong one against the throttle.
    fn try_token(&self, presented: &str) -> Access {
        let Some(token) = &self.token else {
            return Access::Off;
        };
        if self.throttled() {
            return Access::Throttled;
        }
        if same(presented.trim().as_bytes(), token.as_bytes()) {
            Access::Granted
        } else {
            self.failed();
            Access::Wrong
        }
    }

    fn mac(&self, expires: i64) -> Option<HmacSha256> {
        let token = self.token.as_ref()?;
        let mut mac =
            HmacSha256::new_from_slice(token.as_bytes()).expect("HMAC takes keys of any length");
        mac.update(format!("{SESSION_CONTEXT}.{expires}").as_bytes());
        Some(mac)
    }

    /// A session value that is good until `now + SESSION`.
    pub fn session_value(&self, now: DateTime<Utc>) -> Option<String> {
        let expires = (now + SESSION).timestamp();
        let mac = self.mac(expires)?;
        Some(format!(
            "{expires}.{}",
            hex::encode(mac.finalize().into_bytes())
        ))
    }

    fn check_session(&self, value: &str, now: DateTime<Utc>) -> Access {
        let Some((expires, sig)) = value.split_once('.') else {
            return Access::Wrong;
        };
        let (Ok(expires), Ok(sig)) = (expires.parse::<i64>(), hex::decode(sig)) else {
            return Access::Wrong;
        };
        let Some(mac) = self.mac(expires) else {
            return Access::Off;
        };
        if mac.verify_slice(&sig).is_err() {
            return Access::Wrong;
        }
        if expires <= now.timestamp() {
            return Access::Expired;
        }
        Access::Granted
    }

    /// Bearer token first (scripts), then the session cookie (browsers).
    pub fn check(&self, headers: &HeaderMap, now: DateTime<Utc>) -> Access {
        if self.token.is_none() {
            return Access::Off;
        }
        if let Some(auth) = headers.get(header::AUTHORIZATION) {
            let value = auth.to_str().unwrap_or("");
            return match value.split_once(' ') {
                Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
                    self.try_token(token)
                }
                _ => Access::Wrong,
            };
        }
        match cookie(headers, COOKIE) {
            Some(v) => self.check_session(v, now),
            None => Access::Missing,
        }
    }

    fn set_cookie(&self, value: &str, max_age: i64) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        let s = format!(
            "{COOKIE}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
        );
        // The value is digits, a dot and hex: always a valid header.
        HeaderValue::from_str(&s).expect("cookie is header-safe")
    }

    fn clear_cookie(&self) -> HeaderValue {
        self.set_cookie("", 0)
    }
}

/// Where to go after signing in: a path on this site, never another site.
fn local_path(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && n.len() <= 2000
                && !n.chars().any(|c| c.is_control() || c == '\\') =>
        {
            n.to_string()
        }
        _ => "/incidents".into(),
    }
}

fn login_page(web: &Web, status: StatusCode, next: &str, message: Option<&str>) -> Response {
    let mut res = web.views.page(
        status,
        "login.html",
        context! { next, message },
        Cache::Private,
    );
    if status == StatusCode::UNAUTHORIZED {
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"sitrep\""),
        );
    }
    res
}

fn off_page(web: &Web) -> Response {
    web.views.error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "The incident browser is off",
        "No admin token is configured. The operator turns the incident browser on by setting SITREP_HTTP_ADMIN_TOKEN in the bot's environment.",
    )
}

fn throttled_page(web: &Web) -> Response {
    let mut res = web.views.error_page(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many wrong tokens",
        "Too many wrong admin tokens were tried in the last minute. Wait a minute, then try again.",
    );
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
    res
}

/// The refusal for `access`, worded for a script when it sent a token and for a person otherwise.
pub(crate) fn refuse(web: &Web, headers: &HeaderMap, access: Access, next: &str) -> Response {
    match access {
        Access::Granted => unreachable!("refuse is called only for refusals"),
        Access::Off => off_page(web),
        Access::Throttled => throttled_page(web),
        _ if headers.contains_key(header::AUTHORIZATION) => {
            let mut res = (
                StatusCode::UNAUTHORIZED,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "the bearer token is not the admin token (SITREP_HTTP_ADMIN_TOKEN)\n",
            )
                .into_response();
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"sitrep\", error=\"invalid_token\""),
            );
            res
        }
        Access::Expired => {
            let mut res = login_page(
                web,
                StatusCode::UNAUTHORIZED,
                next,
                Some("Your session has expired. Sign in again."),
            );
            res.headers_mut()
                .insert(header::SET_COOKIE, web.auth.clear_cookie());
            res
        }
        Access::Wrong => {
            let mut res = login_page(
                web,
                StatusCode::UNAUTHORIZED,
                next,
                Some("Your session is no longer valid. Sign in again."),
            );
            res.headers_mut()
                .insert(header::SET_COOKIE, web.auth.clear_cookie());
            res
        }
        Access::Missing => login_page(web, StatusCode::UNAUTHORIZED, next, None),
    }
}

/// A request from someone holding the admin token; extracting it refuses everyone else.
pub struct Admin;

#[axum::async_trait]
impl FromRequestParts<Arc<Web>> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, web: &Arc<Web>) -> Result<Self, Response> {
        match web.auth.check(&parts.headers, web.app.now()) {
            Access::Granted => Ok(Admin),
            access => {
                let next = parts
                    .uri
                    .path_and_query()
                    .map_or("/incidents", |p| p.as_str());
                Err(refuse(web, &parts.headers, access, next))
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

pub async fn login_form(State(web): State<Arc<Web>>, Query(q): Query<NextQuery>) -> Response {
    if !web.auth.is_on() {
        return off_page(&web);
    }
    login_page(&web, StatusCode::OK, &local_path(q.next.as_deref()), None)
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    token: String,
    next: Option<String>,
}

pub async fn login(State(web): State<Arc<Web>>, Form(f): Form<LoginForm>) -> Response {
    let next = local_path(f.next.as_deref());
    match web.auth.try_token(&f.token) {
        Access::Granted => {
            let value = web
                .auth
                .session_value(web.app.now())
                .expect("the token is set");
            tracing::info!("incident browser: signed in");
            let mut res = (StatusCode::SEE_OTHER, [(header::LOCATION, next)]).into_response();
            res.headers_mut().insert(
                header::SET_COOKIE,
                web.auth.set_cookie(&value, SESSION.num_seconds()),
            );
            res.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, no-store"),
            );
            res
        }
        Access::Off => off_page(&web),
        Access::Throttled => throttled_page(&web),
        _ => {
            tracing::info!("incident browser: a wrong token was entered");
            login_page(
                &web,
                StatusCode::UNAUTHORIZED,
                &next,
                Some("That is not the admin token."),
            )
        }
    }
}

pub async fn logout(State(web): State<Arc<Web>>) -> Response {
    let mut res = (StatusCode::SEE_OTHER, [(header::LOCATION, "/login")]).into_response();
    res.headers_mut()
        .insert(header::SET_COOKIE, web.auth.clear_cookie());
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn noon() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).unwrap()
    }

    fn with_cookie(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("theme=dark; {COOKIE}={v}")).unwrap(),
        );
        h
    }

    #[test]
    fn sessions_expire_and_die_with_the_token() {
        let auth = Auth::new(Some("a-long-admin-token-0123"), &Config::default());
        let v = auth.session_value(noon()).unwrap();
        assert_eq!(auth.check(&with_cookie(&v), noon()), Access::Granted);
        assert_eq!(
            auth.check(&with_cookie(&v), noon() + SESSION),
            Access::Expired
        );
        let (expires, sig) = v.split_once('.').unwrap();
        let later = format!("{}.{sig}", expires.parse::<i64>().unwrap() + 3600);
        assert_eq!(auth.check(&with_cookie(&later), noon()), Access::Wrong);
        let rotated = Auth::new(Some("another-admin-token-456"), &Config::default());
        assert_eq!(rotated.check(&with_cookie(&v), noon()), Access::Wrong);
        assert_eq!(auth.check(&HeaderMap::new(), noon()), Access::Missing);
        let off = Auth::new(None, &Config::default());
        assert_eq!(off.check(&with_cookie(&v), noon()), Access::Off);
    }

    #[test]
    fn bearer_tokens_and_throttling() {
        let auth = Auth::new(Some("a-long-admin-token-0123"), &Config::default());
        let bearer = |t: &str| {
            let mut h = HeaderMap::new();
            h.insert(
                header::AUTHORIZATION,
                HeaderValue::from_str(&format!("Bearer {t}")).unwrap(),
            );
            h
        };
        assert_eq!(
            auth.check(&bearer("a-long-admin-token-0123"), noon()),
            Access::Granted
        );
        for _ in 0..MAX_FAILURES_PER_MINUTE {
            assert_eq!(auth.check(&bearer("guess"), noon()), Access::Wrong);
        }
        assert_eq!(
            auth.check(&bearer("a-long-admin-token-0123"), noon()),
            Access::Throttled
        );
    }

    #[test]
    fn sign_in_only_sends_people_to_this_site() {
        assert_eq!(local_path(Some("/incidents/INC-7")), "/incidents/INC-7");
        for bad in ["//evil.example", "https://evil.example", "/\\evil", "x", ""] {
            assert_eq!(local_path(Some(bad)), "/incidents", "{bad}");
        }
        assert_eq!(local_path(None), "/incidents");
    }
}
