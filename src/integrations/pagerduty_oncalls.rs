//! PagerDuty's REST API v2, `GET /oncalls`: who a schedule or an escalation policy puts on call.
//!
//! As PagerDuty documents it: `Authorization: Token token=<token>`, `Accept:
//! application/vnd.pagerduty+json;version=2`, filters as `schedule_ids[]` or
//! `escalation_policy_ids[]`, a window of `since`/`until` (ISO 8601), `include[]=users` for the
//! users' emails, and classic pagination (`limit`, `offset`, `more`). The token appears in no
//! log line, error or `Debug` output.

use crate::domain::oncall::{Interval, Person};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use std::fmt;
use std::time::Duration;

/// The REST API tokens schedules read PagerDuty with, by the variable that holds each (the
/// variables `[oncall.*] pagerduty` schedules name).
#[derive(Clone, Default)]
pub struct OnCallTokens {
    tokens: std::collections::BTreeMap<String, String>,
}

impl fmt::Debug for OnCallTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnCallTokens")
            .field("variables", &self.tokens.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl OnCallTokens {
    pub fn from_secrets(secrets: &crate::config::Secrets) -> OnCallTokens {
        OnCallTokens {
            tokens: secrets.pagerduty_tokens.clone(),
        }
    }

    /// The token in variable `env`, if it was set.
    pub fn get(&self, env: &str) -> Option<&String> {
        self.tokens.get(env)
    }
}

/// Pages read per look-up at most; a schedule's month of on-calls fits in one or two.
const MAX_PAGES: usize = 10;
const PAGE: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum OnCallsError {
    #[error("PagerDuty refused ({status}): {message}")]
    Refused { status: u16, message: String },
    #[error("PagerDuty did not answer: {0}")]
    Unavailable(String),
    #[error("PagerDuty's answer does not read: {0}")]
    Unreadable(String),
}

/// Whose on-calls to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    Schedule(String),
    /// The first level of the policy.
    EscalationPolicy(String),
}

pub struct OnCalls {
    http: reqwest::Client,
    base: String,
    timeout: Duration,
}

impl fmt::Debug for OnCalls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnCalls").field("base", &self.base).finish()
    }
}

#[derive(Deserialize)]
struct Page {
    oncalls: Vec<Entry>,
    #[serde(default)]
    more: bool,
}

#[derive(Deserialize)]
struct Entry {
    user: User,
    #[serde(default)]
    escalation_level: Option<u32>,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
struct User {
    /// A reference carries `summary`; with `include[]=users` the full user has `name`, `email`.
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl OnCalls {
    /// A client for the REST API at `base` (`https://api.pagerduty.com`).
    pub fn new(base: &str, timeout: Duration) -> Result<OnCalls, OnCallsError> {
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(timeout)
            .timeout(timeout)
            .build()
            .map_err(|e| OnCallsError::Unavailable(e.to_string()))?;
        Ok(OnCalls {
            http,
            base: base.trim_end_matches('/').to_string(),
            timeout,
        })
    }

    /// Every on-call of `filter` touching `[since, until)`.
    pub async fn list(
        &self,
        token: &str,
        filter: &Filter,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<Interval>, OnCallsError> {
        let scrub = |s: String| s.replace(token, "<token>");
        let (key, id) = match filter {
            Filter::Schedule(id) => ("schedule_ids[]", id),
            Filter::EscalationPolicy(id) => ("escalation_policy_ids[]", id),
        };
        let mut out = Vec::new();
        let mut offset = 0;
        for _ in 0..MAX_PAGES {
            let query = [
                (key, id.clone()),
                ("since", iso(since)),
                ("until", iso(until)),
                ("include[]", "users".to_string()),
                ("limit", PAGE.to_string()),
                ("offset", offset.to_string()),
            ];
            let resp = self
                .http
                .get(format!("{}/oncalls", self.base))
                .query(&query)
                .header("Authorization", format!("Token token={token}"))
                .header("Accept", "application/vnd.pagerduty+json;version=2")
                .send()
                .await
                .map_err(|e| {
                    OnCallsError::Unavailable(if e.is_timeout() {
                        format!("no answer within {}s", self.timeout.as_secs())
                    } else if e.is_connect() {
                        format!("cannot connect to {}", self.base)
                    } else {
                        scrub(e.to_string())
                    })
                })?;
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            if !status.is_success() {
                let message = serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .and_then(|v| v["error"]["message"].as_str().map(String::from))
                    .unwrap_or_else(|| crate::message::truncate(text.trim(), 200).to_string());
                let err = OnCallsError::Refused {
                    status: status.as_u16(),
                    message: scrub(message),
                };
                // Throttling and PagerDuty's own failures are an outage, not a mistake of ours.
                return Err(if status.as_u16() == 429 || status.is_server_error() {
                    OnCallsError::Unavailable(err.to_string())
                } else {
                    err
                });
            }
            let page: Page =
                serde_json::from_str(&text).map_err(|e| OnCallsError::Unreadable(e.to_string()))?;
            let n = page.oncalls.len();
            let first_level = matches!(filter, Filter::EscalationPolicy(_));
            for e in page.oncalls {
                if first_level && e.escalation_level.unwrap_or(1) != 1 {
                    continue;
                }
                let name = e
                    .user
                    .name
                    .or(e.user.summary)
                    .unwrap_or_else(|| "someone".into());
                out.push(Interval {
                    who: Person {
                        name,
                        email: e.user.email,
                    },
                    start: e.start,
                    end: e.end,
                    layer: 0,
                });
            }
            if !page.more || n == 0 {
                break;
            }
            offset += n;
        }
        Ok(out)
    }
}
