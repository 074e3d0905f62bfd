//! Alertmanager's webhook body (version 4) and Grafana's, which sends the same shape with more
//! fields.
//!
//! Alertmanager's shape is `notify/webhook.Message` (template `Data` plus `version`, `groupKey`,
//! `truncatedAlerts`); Grafana's contact point adds `orgId`, `title`, `state`, `message` and,
//! per alert, `silenceURL`, `dashboardURL`, `panelURL`, `values`, `valueString`, `imageURL`.
//! Unknown fields are kept out rather than refused, so that a newer sender still gets through.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Label and annotation sets.
pub type Labels = BTreeMap<String, String>;

/// The largest body the hook reads: Alertmanager sends every alert of a group in one body,
/// and 1 MiB holds thousands of them.
pub const MAX_BODY_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Firing,
    Resolved,
}

/// One delivery: a group of alerts as the sender grouped them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// Alertmanager sends `"4"`; Grafana `"1"`. Absent is taken as Alertmanager's.
    #[serde(default)]
    pub version: Option<String>,
    /// Names the group; deliveries of the same group carry the same key.
    #[serde(default)]
    pub group_key: Option<String>,
    #[serde(default)]
    pub truncated_alerts: u64,
    pub status: Status,
    #[serde(default)]
    pub receiver: String,
    #[serde(default)]
    pub group_labels: Labels,
    #[serde(default)]
    pub common_labels: Labels,
    #[serde(default)]
    pub common_annotations: Labels,
    /// Alertmanager's (or Grafana's) own address, for the silence link.
    #[serde(default, rename = "externalURL")]
    pub external_url: Option<String>,
    pub alerts: Vec<Alert>,
    /// Grafana only.
    #[serde(default)]
    pub org_id: Option<u64>,
    /// Grafana only: the rendered notification title.
    #[serde(default)]
    pub title: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub status: Status,
    #[serde(default)]
    pub labels: Labels,
    #[serde(default)]
    pub annotations: Labels,
    pub starts_at: DateTime<Utc>,
    /// `0001-01-01T00:00:00Z` while firing with no end known.
    #[serde(default)]
    pub ends_at: Option<DateTime<Utc>>,
    #[serde(default, rename = "generatorURL")]
    pub generator_url: Option<String>,
    /// A hash of the labels; absent from old senders, then computed from the labels.
    #[serde(default)]
    pub fingerprint: Option<String>,
    /// Grafana only.
    #[serde(default, rename = "silenceURL")]
    pub silence_url: Option<String>,
    /// Grafana only.
    #[serde(default, rename = "dashboardURL")]
    pub dashboard_url: Option<String>,
    /// Grafana only: `[ var='B' labels={} value=44.2 ]`.
    #[serde(default)]
    pub value_string: Option<String>,
}

/// Why a body is not a delivery, worded for whoever reads the sender's log.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PayloadError {
    #[error("the body is not an Alertmanager or Grafana webhook payload: {0}")]
    Shape(String),
    #[error("the payload has no alerts")]
    Empty,
    #[error("the payload has {0} alerts; at most {MAX_ALERTS} are read from one delivery (set max_alerts in Alertmanager's webhook_config)")]
    TooMany(usize),
    #[error(
        "webhook payload version {0} is not one sitrep reads (Alertmanager sends 4, Grafana 1)"
    )]
    Version(String),
    #[error("alert {0} has no labels; Alertmanager and Grafana always send alertname")]
    NoLabels(usize),
}

/// More alerts than this in one delivery is a misconfigured sender, not an incident.
pub const MAX_ALERTS: usize = 1000;

impl Delivery {
    /// Reads and checks a body. Every alert comes out with a fingerprint and a real end (or none).
    pub fn parse(body: &[u8]) -> Result<Delivery, PayloadError> {
        let mut d: Delivery = serde_json::from_slice(body).map_err(|e| {
            let e = e.to_string();
            PayloadError::Shape(e)
        })?;
        if let Some(v) = d.version.as_deref() {
            if !matches!(v, "4" | "1") {
                return Err(PayloadError::Version(v.chars().take(20).collect()));
            }
        }
        if d.alerts.is_empty() {
            return Err(PayloadError::Empty);
        }
        if d.alerts.len() > MAX_ALERTS {
            return Err(PayloadError::TooMany(d.alerts.len()));
        }
        for (i, a) in d.alerts.iter_mut().enumerate() {
            if a.labels.is_empty() {
                return Err(PayloadError::NoLabels(i + 1));
            }
            // Go's zero time means "not ended".
            if a.ends_at.is_some_and(|t| t.timestamp() <= 0) {
                a.ends_at = None;
            }
            if a.fingerprint
                .as_deref()
                .map_or(true, |f| f.trim().is_empty())
            {
                a.fingerprint = Some(fingerprint(&a.labels));
            }
            for url in [
                &mut a.generator_url,
                &mut a.silence_url,
                &mut a.dashboard_url,
            ] {
                if url.as_deref().is_some_and(|u| u.trim().is_empty()) {
                    *url = None;
                }
            }
        }
        if d.group_key.as_deref().map_or(true, |k| k.trim().is_empty()) {
            d.group_key = Some(format!(
                "{}:{}",
                d.receiver,
                serde_json::to_string(&d.group_labels).expect("plain map")
            ));
        }
        if d.external_url
            .as_deref()
            .is_some_and(|u| u.trim().is_empty())
        {
            d.external_url = None;
        }
        Ok(d)
    }

    pub fn group_key(&self) -> &str {
        self.group_key.as_deref().unwrap_or_default()
    }

    /// The labels that say what this group is: the common ones, else the first alert's.
    pub fn labels(&self) -> &Labels {
        if self.common_labels.is_empty() {
            &self.alerts[0].labels
        } else {
            &self.common_labels
        }
    }

    /// What fired, in a line: the common summary, Grafana's title, or the alert name.
    pub fn headline(&self) -> String {
        let first = &self.alerts[0];
        self.common_annotations
            .get("summary")
            .or_else(|| first.annotations.get("summary"))
            .cloned()
            .or_else(|| self.labels().get("alertname").cloned())
            .or_else(|| self.title.clone())
            .unwrap_or_else(|| "Alert".into())
    }

    /// The longer text: the common description, else the first alert's.
    pub fn description(&self) -> Option<String> {
        self.common_annotations
            .get("description")
            .or_else(|| self.alerts[0].annotations.get("description"))
            .cloned()
    }

    /// Alertmanager's page to silence this group, built from its address and the group labels.
    pub fn silence_url(&self) -> Option<String> {
        if let Some(u) = self.alerts.iter().find_map(|a| a.silence_url.clone()) {
            return Some(u);
        }
        let base = self.external_url.as_deref()?.trim_end_matches('/');
        let filter = self
            .group_labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect::<Vec<_>>()
            .join(",");
        Some(format!(
            "{base}/#/silences/new?filter=%7B{}%7D",
            percent_encode(&filter)
        ))
    }
}

impl Alert {
    pub fn fingerprint(&self) -> &str {
        self.fingerprint.as_deref().unwrap_or_default()
    }

    pub fn name(&self) -> &str {
        self.labels
            .get("alertname")
            .map(String::as_str)
            .unwrap_or("alert")
    }
}

/// A stable stand-in for a missing fingerprint: the same labels give the same one.
fn fingerprint(labels: &Labels) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(serde_json::to_vec(labels).expect("plain map"));
    hex::encode(&digest[..8])
}

fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As Alertmanager 0.27 sends it (notify/webhook): version 4 with `truncatedAlerts`.
    pub(crate) const ALERTMANAGER: &str = r#"{
      "receiver": "sitrep", "status": "firing",
      "alerts": [{
        "status": "firing",
        "labels": {"alertname": "HighErrorRate", "service": "checkout", "severity": "critical"},
        "annotations": {"summary": "Checkout errors above 5%", "description": "5xx ratio 0.12"},
        "startsAt": "2026-12-07T10:00:00.123Z", "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph?g0.expr=x", "fingerprint": "a1b2c3d4e5f60718"
      }],
      "groupLabels": {"alertname": "HighErrorRate"},
      "commonLabels": {"alertname": "HighErrorRate", "service": "checkout", "severity": "critical"},
      "commonAnnotations": {"summary": "Checkout errors above 5%", "description": "5xx ratio 0.12"},
      "externalURL": "http://alertmanager:9093", "version": "4",
      "groupKey": "{}:{alertname=\"HighErrorRate\"}", "truncatedAlerts": 0
    }"#;

    #[test]
    fn alertmanager_v4_reads_whole() {
        let d = Delivery::parse(ALERTMANAGER.as_bytes()).unwrap();
        assert_eq!(d.group_key(), "{}:{alertname=\"HighErrorRate\"}");
        assert_eq!(d.status, Status::Firing);
        let a = &d.alerts[0];
        assert_eq!(a.fingerprint(), "a1b2c3d4e5f60718");
        assert_eq!(a.ends_at, None, "Go's zero time is no end");
        assert_eq!(a.starts_at.timestamp_millis(), 1_796_637_600_123);
        assert_eq!(d.headline(), "Checkout errors above 5%");
        assert_eq!(
            d.silence_url().unwrap(),
            "http://alertmanager:9093/#/silences/new?filter=%7Balertname%3D%22HighErrorRate%22%7D"
        );
    }

    #[test]
    fn bad_bodies_are_refused_with_a_reason() {
        assert!(matches!(
            Delivery::parse(b"{\"status\":"),
            Err(PayloadError::Shape(_))
        ));
        assert!(matches!(
            Delivery::parse(br#"{"status":"firing","alerts":[]}"#),
            Err(PayloadError::Empty)
        ));
        assert!(matches!(
            Delivery::parse(br#"{"status":"burning","alerts":[]}"#),
            Err(PayloadError::Shape(_))
        ));
        assert!(matches!(
            Delivery::parse(ALERTMANAGER.replace("\"4\"", "\"5\"").as_bytes()),
            Err(PayloadError::Version(_))
        ));
        let no_labels = r#"{"status":"firing","alerts":[{"status":"firing","labels":{},"startsAt":"2026-12-07T10:00:00Z"}]}"#;
        assert_eq!(
            Delivery::parse(no_labels.as_bytes()),
            Err(PayloadError::NoLabels(1))
        );
    }

    #[test]
    fn a_missing_fingerprint_and_group_key_are_made_stably() {
        let body = r#"{"status":"firing","receiver":"r","alerts":[{"status":"firing","labels":{"alertname":"X"},"startsAt":"2026-12-07T10:00:00Z"}]}"#;
        let a = Delivery::parse(body.as_bytes()).unwrap();
        let b = Delivery::parse(body.as_bytes()).unwrap();
        assert_eq!(a.alerts[0].fingerprint(), b.alerts[0].fingerprint());
        assert_eq!(a.alerts[0].fingerprint().len(), 16);
        assert_eq!(a.group_key(), "r:{}");
    }
}
