//! PagerDuty's Events API v2: a trigger when a target is paged, acknowledge and resolve after.
//!
//! As PagerDuty documents: 202 is accepted; 400 is a bad event and is never retried; 429 and 5xx
//! (and network failures) are retried with exponential backoff and jitter. Routing keys come from
//! the environment and appear in no log line, error or `Debug` output.

use crate::config::{Config, PagerDutyConfig, Secrets};
use crate::domain::{Backoff, IncidentId, Severity};
use chrono::{DateTime, Utc};
use reqwest::header::RETRY_AFTER;
use reqwest::StatusCode;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// PagerDuty caps a summary at 1024 characters.
pub const MAX_SUMMARY: usize = 1024;
/// And a dedup key at 255.
pub const MAX_DEDUP_KEY: usize = 255;
/// Failed sends are retried after 1 s, doubling up to 30 s, each with jitter; five tries in all.
const BACKOFF: Backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
const ATTEMPTS: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum PagerDutyError {
    #[error("PagerDuty refused the event ({status}): {message}")]
    Refused { status: u16, message: String },
    #[error("PagerDuty did not take the event after {attempts} attempts; last: {last}")]
    GaveUp { attempts: u32, last: String },
    #[error("escalation target `{0}` has no PagerDuty routing key")]
    NoKey(String),
    #[error("PagerDuty client: {0}")]
    Client(String),
}

/// What `event_action` asks of PagerDuty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Trigger,
    Acknowledge,
    Resolve,
}

/// A trigger's `payload`: what the responder's phone shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    pub summary: String,
    pub source: String,
    /// `critical`, `error`, `warning` or `info`; see [`severity`].
    pub severity: String,
    pub timestamp: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    pub custom_details: Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Link {
    pub href: String,
    pub text: String,
}

/// An event PagerDuty accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub dedup_key: Option<String>,
    pub attempts: u32,
}

/// `SEV1` → critical, `SEV2` → error, `SEV3` → warning, the rest → info.
pub fn severity(sev: Severity) -> &'static str {
    match sev.0 {
        0 | 1 => "critical",
        2 => "error",
        3 => "warning",
        _ => "info",
    }
}

/// One alert per incident and target: a second page of the same target adds to it, and the
/// acknowledge and resolve find it.
pub fn dedup_key(incident: IncidentId, target: &str) -> String {
    let key = format!("sitrep/{incident}/{target}");
    crate::message::truncate(&key, MAX_DEDUP_KEY).to_string()
}

pub struct PagerDuty {
    http: reqwest::Client,
    url: String,
    /// Routing keys by escalation target.
    keys: BTreeMap<String, String>,
    /// Failed sends wait `backoff.jittered`, up to `attempts` tries in all.
    backoff: Backoff,
    attempts: u32,
    /// `[pagerduty] timeout`, to name it when PagerDuty does not answer.
    timeout: Duration,
}

impl fmt::Debug for PagerDuty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PagerDuty")
            .field("url", &self.url)
            .field("targets", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl PagerDuty {
    /// A client for `keys` (routing keys by target name).
    pub fn new(
        config: &PagerDutyConfig,
        keys: BTreeMap<String, String>,
    ) -> Result<PagerDuty, PagerDutyError> {
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(config.timeout.0)
            .timeout(config.timeout.0)
            .build()
            .map_err(|e| PagerDutyError::Client(e.to_string()))?;
        Ok(PagerDuty {
            http,
            url: config.events_url.clone(),
            keys,
            backoff: BACKOFF,
            attempts: ATTEMPTS,
            timeout: config.timeout.0,
        })
    }

    /// The client for every escalation target whose routing key is in `secrets`; `None` when no
    /// target has one.
    pub fn from_config(
        config: &Config,
        secrets: &Secrets,
    ) -> Result<Option<PagerDuty>, PagerDutyError> {
        let keys: BTreeMap<String, String> = config
            .escalation
            .targets
            .iter()
            .filter_map(|(name, t)| {
                let var = t.pagerduty_routing_key_env.as_ref()?;
                let key = secrets.pagerduty_routing_keys.get(var)?;
                Some((name.clone(), key.clone()))
            })
            .collect();
        if keys.is_empty() {
            return Ok(None);
        }
        Self::new(&config.pagerduty, keys).map(Some)
    }

    pub fn with_backoff(mut self, backoff: Backoff, attempts: u32) -> PagerDuty {
        self.backoff = backoff;
        self.attempts = attempts;
        self
    }

    /// Whether pages of `target` go to PagerDuty too.
    pub fn routes(&self, target: &str) -> bool {
        self.keys.contains_key(target)
    }

    /// Opens (or adds to) the alert `dedup_key` on `target`'s service.
    pub async fn trigger(
        &self,
        target: &str,
        dedup_key: &str,
        alert: &Alert,
        links: &[Link],
        client_url: Option<&str>,
    ) -> Result<Accepted, PagerDutyError> {
        let mut alert = alert.clone();
        alert.summary = crate::message::truncate(&alert.summary, MAX_SUMMARY).to_string();
        let mut extra = json!({ "payload": alert, "links": links, "client": "sitrep" });
        if let Some(url) = client_url {
            extra["client_url"] = Value::String(url.into());
        }
        self.send(target, Action::Trigger, dedup_key, extra).await
    }

    pub async fn acknowledge(
        &self,
        target: &str,
        dedup_key: &str,
    ) -> Result<Accepted, PagerDutyError> {
        self.send(target, Action::Acknowledge, dedup_key, json!({}))
            .await
    }

    pub async fn resolve(&self, target: &str, dedup_key: &str) -> Result<Accepted, PagerDutyError> {
        self.send(target, Action::Resolve, dedup_key, json!({}))
            .await
    }

    async fn send(
        &self,
        target: &str,
        action: Action,
        dedup_key: &str,
        extra: Value,
    ) -> Result<Accepted, PagerDutyError> {
        let key = self
            .keys
            .get(target)
            .ok_or_else(|| PagerDutyError::NoKey(target.into()))?;
        let mut body = json!({
            "routing_key": key,
            "event_action": action,
            "dedup_key": dedup_key,
        });
        if let (Some(b), Value::Object(more)) = (body.as_object_mut(), extra) {
            b.extend(more);
        }
        // Whatever PagerDuty or the network says back is shown in chat; it must not carry the key.
        let scrub = |s: String| s.replace(key.as_str(), "<routing key>");
        let attempts = self.attempts.max(1);
        let mut last = String::new();
        for attempt in 1..=attempts {
            let mut wait = None;
            match self.http.post(&self.url).json(&body).send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = resp
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let text = resp.text().await.unwrap_or_default();
                    if status.is_success() {
                        let dedup = serde_json::from_str::<Value>(&text)
                            .ok()
                            .and_then(|v| v["dedup_key"].as_str().map(String::from));
                        tracing::info!(
                            escalation_target = target,
                            ?action,
                            attempt,
                            "PagerDuty accepted the event"
                        );
                        return Ok(Accepted {
                            dedup_key: dedup,
                            attempts: attempt,
                        });
                    }
                    if status != StatusCode::TOO_MANY_REQUESTS && !status.is_server_error() {
                        tracing::warn!(
                            escalation_target = target,
                            ?action,
                            status = status.as_u16(),
                            "PagerDuty refused the event"
                        );
                        return Err(PagerDutyError::Refused {
                            status: status.as_u16(),
                            message: scrub(describe(&text)),
                        });
                    }
                    last = format!("{status}");
                    wait = retry_after;
                }
                // reqwest's own wording names the URL but not what went wrong.
                Err(e) if e.is_timeout() => {
                    last = format!(
                        "no answer within {} ([pagerduty] timeout)",
                        crate::integrations::prometheus::seconds(self.timeout)
                    )
                }
                Err(e) if e.is_connect() => last = format!("cannot connect to {}", self.url),
                Err(e) => last = scrub(e.to_string()),
            }
            if attempt < attempts {
                let delay = wait
                    .map(|w| w.min(self.backoff.max))
                    .unwrap_or_else(|| self.backoff.jittered(attempt - 1));
                tracing::info!(escalation_target = target, ?action, attempt, error = %last, retry_in = ?delay, "PagerDuty asked us to retry");
                tokio::time::sleep(delay).await;
            }
        }
        tracing::warn!(escalation_target = target, ?action, attempts, error = %last, "PagerDuty did not take the event");
        Err(PagerDutyError::GaveUp { attempts, last })
    }
}

/// `{"status": "invalid event", "message": "Event object is invalid", "errors": [...]}` in a line.
fn describe(body: &str) -> String {
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return crate::message::truncate(body.trim(), 300).to_string();
    };
    let mut out = v["message"]
        .as_str()
        .or(v["status"].as_str())
        .unwrap_or("no reason given")
        .to_string();
    let errors: Vec<&str> = v["errors"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !errors.is_empty() {
        out.push_str(": ");
        out.push_str(&errors.join("; "));
    }
    crate::message::truncate(&out, 300).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_map_onto_pagerdutys_four() {
        let got: Vec<&str> = (1..=5).map(|n| severity(Severity(n))).collect();
        assert_eq!(got, ["critical", "error", "warning", "info", "info"]);
    }

    #[test]
    fn dedup_keys_name_the_incident_and_target() {
        assert_eq!(dedup_key(IncidentId(7), "dba"), "sitrep/INC-7/dba");
        assert!(dedup_key(IncidentId(7), &"x".repeat(400)).len() <= MAX_DEDUP_KEY);
    }

    #[test]
    fn backoff_doubles_with_jitter_under_a_cap() {
        let b = BACKOFF;
        for n in 1..=10 {
            let d = b.jittered(n - 1);
            let full = Duration::from_secs(1 << (n - 1).min(5)).min(b.max);
            assert!(d >= full / 2 && d <= full, "{n}: {d:?}");
        }
    }

    #[test]
    fn errors_read_as_one_line() {
        let body = r#"{"status":"invalid event","message":"Event object is invalid","errors":["Length of 'routing_key' is incorrect (should be 32 characters)"]}"#;
        assert_eq!(
            describe(body),
            "Event object is invalid: Length of 'routing_key' is incorrect (should be 32 characters)"
        );
        assert_eq!(describe("  oops "), "oops");
    }

    #[test]
    fn keys_stay_out_of_debug_output() {
        let pd = PagerDuty::new(
            &PagerDutyConfig::default(),
            BTreeMap::from([("dba".to_string(), "R0SECRETKEY".to_string())]),
        )
        .unwrap();
        let shown = format!("{pd:?}");
        assert!(
            shown.contains("dba") && !shown.contains("R0SECRETKEY"),
            "{shown}"
        );
        assert!(pd.routes("dba") && !pd.routes("net"));
    }
}
