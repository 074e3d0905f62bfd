//! `[prometheus]`, the named `[queries.NAME]`, and `[whats_changed]` (the post at open).

use super::{url_like, Dur};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrometheusConfig {
    /// Prometheus' base URL; metrics are off while it is unset. Auth from SITREP_PROMETHEUS_TOKEN.
    pub url: Option<String>,
    pub timeout: Dur,
    /// What "normal" means: the same query this long ago.
    pub baselines: Vec<Dur>,
    /// A ratio to a baseline at or past this is flagged.
    pub threshold: f64,
    /// Series shown per answer; the rest are counted.
    pub top_n: usize,
}

impl Default for PrometheusConfig {
    fn default() -> Self {
        PrometheusConfig {
            url: None,
            timeout: Dur(std::time::Duration::from_secs(5)),
            baselines: vec![
                Dur(std::time::Duration::from_secs(86_400)),
                Dur(std::time::Duration::from_secs(7 * 86_400)),
            ],
            threshold: 3.0,
            top_n: 5,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryConfig {
    /// PromQL; `{{service}}` and other `{{name}}` placeholders are filled from the command.
    pub promql: String,
    #[serde(default)]
    pub unit: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WhatsChangedConfig {
    /// How far before an incident's start deploys are listed.
    pub lookback: Dur,
    /// Named queries shown "at a glance" when an incident opens.
    pub queries: Vec<String>,
}

impl Default for WhatsChangedConfig {
    fn default() -> Self {
        WhatsChangedConfig {
            lookback: Dur(std::time::Duration::from_secs(2 * 3600)),
            queries: Vec::new(),
        }
    }
}

/// The three sections are checked together: the post at open names queries, which need a server.
pub(super) fn problems(
    prometheus: &PrometheusConfig,
    queries: &BTreeMap<String, QueryConfig>,
    whats_changed: &WhatsChangedConfig,
) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(url) = &prometheus.url {
        if let Err(e) = url_like(url) {
            out.push(format!("[prometheus] url: {e}"));
        }
    }
    if prometheus.threshold.is_nan() || prometheus.threshold <= 1.0 {
        out.push(format!(
            "[prometheus] threshold = {} must be above 1",
            prometheus.threshold
        ));
    }
    for (name, q) in queries {
        if q.promql.trim().is_empty() {
            out.push(format!("[queries.{name}] promql is empty"));
        }
    }
    for name in &whats_changed.queries {
        if !queries.contains_key(name) {
            out.push(format!(
                "[whats_changed] queries names `{name}`, which is not under [queries]"
            ));
        }
    }
    if !whats_changed.queries.is_empty() && prometheus.url.is_none() {
        out.push("[whats_changed] queries are set but [prometheus] url is not".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::config::tests::env;
    use crate::config::{Config, Dur, Secrets};

    #[test]
    fn metrics_sections() {
        let toml = r##"
            [prometheus]
            url = "http://127.0.0.1:9090"
            timeout = "2s"
            baselines = ["1d", "1w"]

            [queries.error_rate]
            promql = "sum(rate(http_requests_total{service=\"{{service}}\",code=~\"5..\"}[5m]))"
            unit = "req/s"

            [whats_changed]
            lookback = "3h"
            queries = ["error_rate", "latency"]
        "##;
        let c = Config::from_parts(Some(("a.toml", toml)), &env(&[])).unwrap();
        assert_eq!(c.prometheus.timeout, Dur(std::time::Duration::from_secs(2)));
        assert_eq!(
            c.prometheus.baselines[1],
            Dur(std::time::Duration::from_secs(604_800))
        );
        assert!(c.queries["error_rate"].promql.contains("{{service}}"));
        let problems = c.problems(&Secrets::default(), false).join("\n");
        assert!(problems.contains("`latency`"), "{problems}");
        let err = Config::from_parts(
            Some(("a.toml", "[queries.x]\npromql = \"up\"\nunits = \"s\"\n")),
            &env(&[]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("units"), "{err}");
    }
}
