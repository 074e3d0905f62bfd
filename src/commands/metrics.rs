//! `/metrics`: a named query or raw PromQL, now against its baselines, with a chart on request.

use super::{Invocation, Outcome, Reply};
use crate::app::App;
use crate::domain::Actor;
use crate::error::{CommandError, UserError};
use crate::message::{Attachment, Post};
use crate::metrics::{
    self, compare_options, named_request, MetricRequest, MetricsError, CHART_FILE,
};
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

fn user(e: MetricsError) -> CommandError {
    UserError::Metrics(e.to_string()).into()
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
            named_request(&app.config, name.trim(), &params, app.now()).map_err(user)?
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
    let reply = metrics::fetch(&client, &compare_options(&app.config), &req)
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
        let kind = reply.snapshot();
        let (after, written) = app.record(id, &Actor::User(inv.user.clone()), app.now(), |_| {
            Ok(vec![kind.clone()])
        })?;
        let charts: Vec<(usize, Vec<u8>)> =
            reply.chart_png.iter().map(|png| (0, png.clone())).collect();
        metrics::keep_charts(&app.store, id, &after, written.len(), &charts)?;
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
