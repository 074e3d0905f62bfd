//! `/metrics`: a named query or raw PromQL, now against its baselines, with a chart on request.

use super::{Invocation, Outcome, Reply};
use crate::app::App;
use crate::domain::{Actor, EventKind};
use crate::error::{CommandError, UserError};
use crate::message::{Attachment, Post};
use crate::metrics::{self, CompareOptions, MetricRequest, MetricsError};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsArgs {
    pub name: Option<String>,
    pub service: Option<String>,
    pub query: Option<String>,
    pub range: Option<String>,
    pub step: Option<String>,
}

pub const CHART_FILE: &str = "chart.png";

fn user(e: MetricsError) -> CommandError {
    UserError::Metrics(e.to_string()).into()
}

/// The comparison settings from `[prometheus]`.
pub fn compare_options(app: &App) -> CompareOptions {
    let p = &app.config.prometheus;
    CompareOptions {
        offsets: p.baselines.iter().map(|d| d.0).collect(),
        threshold: p.threshold,
        top_n: p.top_n,
    }
}

/// Builds the request for a configured query with its parameters.
pub fn named_request(
    app: &App,
    name: &str,
    params: &BTreeMap<String, String>,
) -> Result<MetricRequest, MetricsError> {
    let q = metrics::lookup(&app.config.queries, name)?;
    Ok(MetricRequest::named(name, &q.promql, params, app.now())?
        .with_unit(q.unit.as_deref())
        .with_description(q.description.as_deref()))
}

/// What `/metrics` can refuse before asking Prometheus anything.
pub fn precheck(app: &App, a: &MetricsArgs) -> Result<(), CommandError> {
    request(app, a).map(|_| ())
}

fn request(app: &App, a: &MetricsArgs) -> Result<MetricRequest, CommandError> {
    if app.prometheus.is_none() {
        return Err(
            UserError::Metrics("metrics are not configured: set [prometheus] url".into()).into(),
        );
    }
    let nonempty = |s: &Option<String>| s.clone().filter(|v| !v.trim().is_empty());
    let mut req = match (nonempty(&a.name), nonempty(&a.query)) {
        (Some(name), None) => {
            let mut params = BTreeMap::new();
            if let Some(s) = nonempty(&a.service) {
                params.insert("service".to_string(), s.trim().to_string());
            }
            named_request(app, name.trim(), &params).map_err(user)?
        }
        (None, Some(q)) => MetricRequest::raw(&q, app.now()).map_err(user)?,
        (Some(_), Some(_)) => {
            return Err(UserError::Metrics("give either `name` or `query`, not both".into()).into())
        }
        (None, None) => {
            let known: Vec<&str> = app.config.queries.keys().map(String::as_str).collect();
            return Err(UserError::Metrics(format!(
                "give `name` (one of: {}) or `query` (PromQL)",
                if known.is_empty() {
                    "none configured".to_string()
                } else {
                    known.join(", ")
                }
            ))
            .into());
        }
    };
    let step = nonempty(&a.step)
        .map(|s| metrics::parse_duration(s.trim()))
        .transpose()
        .map_err(user)?;
    match nonempty(&a.range) {
        Some(r) => req = req.with_range(metrics::parse_duration(r.trim()).map_err(user)?, step),
        None if step.is_some() => {
            return Err(UserError::Metrics("`step` goes with `range`".into()).into())
        }
        None => {}
    }
    Ok(req)
}

pub async fn run(app: &App, inv: &Invocation, a: MetricsArgs) -> Result<Outcome, CommandError> {
    let req = request(app, &a)?;
    let client = app.prometheus.clone().expect("checked by request()");
    let reply = metrics::fetch(&client, &compare_options(app), &req)
        .await
        .map_err(user)?;
    let mut post = Post::text(reply.answer.to_markdown());
    if let Some(png) = &reply.chart_png {
        post.files.push(Attachment {
            filename: CHART_FILE.into(),
            bytes: png.clone(),
        });
    }

    // Inside an incident's channel the answer is evidence: keep it in the timeline.
    let mut incident = None;
    let here = match inv.channel {
        Some(c) => app.store.incident_by_channel(c)?,
        None => None,
    };
    if let Some(id) = here {
        let kind = EventKind::MetricSnapshot {
            query: reply.answer.query_label(),
            summary: reply.answer.summary(),
            chart: reply.chart_png.as_ref().map(|_| CHART_FILE.to_string()),
        };
        let (after, written) =
            app.store
                .append(id, &Actor::User(inv.user.clone()), app.now(), move |_| {
                    Ok(vec![kind.clone()])
                })?;
        // Kept for the incident browser; chat's copy of the image does not last.
        if let Some(png) = &reply.chart_png {
            let seq = crate::store::written_seq(&after, written.len(), 0);
            app.store.put_chart(id, seq, png)?;
        }
        app.store.flush().await?;
        incident = Some(id);
    }
    Ok(Outcome {
        reply: Reply {
            post,
            ephemeral: false,
        },
        posts: Vec::new(),
        incident,
    })
}

/// Suggestions while typing: configured query names, and services seen in incidents.
pub fn autocomplete(app: &App, option: &str, partial: &str) -> Vec<String> {
    let partial = partial.to_lowercase();
    let mut out: Vec<String> = match option {
        "name" => app.config.queries.keys().cloned().collect(),
        "service" => {
            let mut s: Vec<String> = app
                .store
                .incidents()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|i| i.service)
                .collect();
            s.sort();
            s.dedup();
            s
        }
        _ => Vec::new(),
    };
    out.retain(|c| c.to_lowercase().contains(&partial));
    out.truncate(25);
    out
}
