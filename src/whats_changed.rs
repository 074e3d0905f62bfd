//! "What changed?": deploys before an incident began and the at-a-glance metrics, posted at open.

use crate::app::App;
use crate::domain::{Actor, EventKind, IncidentId};
use crate::message::{Attachment, Post};
use crate::metrics::{self, compare_options, named_request};
use crate::store::JobChange;
use std::collections::BTreeMap;

/// Gathers what changed around `id`'s start, queues the post for the incident's channel and
/// records it in the timeline. Runs after the open was acknowledged, so a slow Prometheus
/// delays only this.
pub async fn post(app: &App, id: IncidentId) {
    if let Err(e) = try_post(app, id).await {
        tracing::warn!(incident = %id, error = %e, "the what-changed post failed");
    }
}

async fn try_post(app: &App, id: IncidentId) -> Result<(), crate::error::CommandError> {
    let Some(inc) = app.store.incident(id)? else {
        return Ok(());
    };
    let Some(channel) = inc.channel else {
        return Ok(());
    };
    let cfg = &app.config.whats_changed;
    let lookback = chrono::Duration::from_std(cfg.lookback.0).unwrap_or_default();
    let started = inc.times.started.unwrap_or_else(|| app.now());
    let since = started - lookback;
    let deploys = app.store.deploys(since, None, None)?;

    let mut lines = vec![format!(
        "**What changed** since {} ({} before impact began):",
        since.format("%Y-%m-%d %H:%M UTC"),
        crate::domain::human_duration(lookback)
    )];
    let mut kinds = Vec::new();
    if deploys.is_empty() {
        lines.push("- No deploys recorded in that window.".into());
    }
    for d in deploys.iter().take(15) {
        let mut line = format!(
            "- {} **{}** {}{}",
            d.time.format("%H:%M UTC"),
            d.service,
            d.version,
            d.environment
                .as_deref()
                .map(|e| format!(" to {e}"))
                .unwrap_or_default()
        );
        if let Some(a) = &d.author {
            line.push_str(&format!(" by {a}"));
        }
        if let Some(u) = &d.url {
            line.push_str(&format!(" <{u}>"));
        }
        if d.time > started {
            line.push_str(" (after impact began)");
        }
        lines.push(line);
        kinds.push(EventKind::DeployObserved {
            service: d.service.clone(),
            version: d.version.clone(),
            environment: d.environment.clone(),
            url: d.url.clone(),
            deployed_at: d.time,
        });
    }
    if deploys.len() > 15 {
        lines.push(format!(
            "- …and {} more (`/deploys since:{}`)",
            deploys.len() - 15,
            humantime::format_duration(cfg.lookback.0)
        ));
    }

    let mut files = Vec::new();
    // (index in `kinds`, image): kept with the events for the incident browser.
    let mut charts = Vec::new();
    if let Some(client) = app.prometheus.clone() {
        let mut params = BTreeMap::new();
        if let Some(s) = &inc.service {
            params.insert("service".to_string(), s.clone());
        }
        for name in &cfg.queries {
            let req = match named_request(&app.config, name, &params, app.now()) {
                Ok(r) => r,
                Err(e) => {
                    lines.push(format!("\n`{name}`: {e}"));
                    continue;
                }
            };
            match metrics::fetch(&client, &compare_options(&app.config), &req).await {
                Ok(reply) => {
                    lines.push(String::new());
                    lines.push(reply.answer.to_markdown_within(700));
                    kinds.push(reply.snapshot());
                    if let Some(png) = reply.chart_png {
                        charts.push((kinds.len() - 1, png.clone()));
                        files.push(Attachment {
                            filename: format!("{name}.png"),
                            bytes: png,
                        });
                    }
                }
                Err(e) => lines.push(format!("\n`{name}`: {e}")),
            }
        }
    }
    let mut post = Post::text(lines.join("\n"));
    post.files = files;
    // Queued with the events it tells of, and delivered by the scheduler, so that an outage of
    // the chat delays the post rather than losing it.
    let send = JobChange::Send {
        incident: id,
        channel,
        post: Box::new(post.fit_limits()),
        due: app.now(),
    };
    if kinds.is_empty() {
        app.store.apply_jobs(&[send])?;
    } else {
        let (after, written) = app.record_with(
            id,
            &Actor::System,
            app.now(),
            move |_| Ok(kinds.clone()),
            |_, _, _| vec![send.clone()],
        )?;
        metrics::keep_charts(&app.store, id, &after, written.len(), &charts)?;
    }
    app.store.flush().await?;
    Ok(())
}
