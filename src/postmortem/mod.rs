//! Post-mortems: key moments marked during the incident, drafts compiled from the timeline and
//! the channel, stored as numbered versions, exported as Markdown, and checked for blame.
//!
//! - [`highlight`] puts a captured message on the timeline (a 📌 reaction, a pin, or the
//!   "Add to timeline" message command).
//! - [`draft`] compiles, renders and stores the next version; [`export`] reads one back, or
//!   compiles one on the fly when none is stored, for `/postmortem export`, `sitrep export` and
//!   the HTTP edge alike.
//! - [`lint`] finds wording that assigns blame; [`stats`] sums incidents up over a period.

pub mod draft;
pub mod lint;
pub mod stats;
pub mod text_gaps;

pub use draft::{compile, Draft, Meta, Sources};
pub use stats::{stats, Stats};

use crate::app::App;
use crate::config::Config;
use crate::domain::{Actor, IncidentId, UserRef};
use crate::error::{CommandError, UserError};
use crate::render::{Renderer, TemplateError};
use crate::store::{CapturedMessage, Highlighted, PostmortemRecord, Store, StoreError};

/// The template drafts are rendered with; operators can replace it like the others.
pub const TEMPLATE: &str = "postmortem.md.j2";

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{0} does not exist")]
    NoSuchIncident(IncidentId),
    #[error("{id} has no post-mortem version {version}; {}", match latest {
        Some(l) => format!("the versions are 1 to {l}"),
        None => "no draft was compiled yet (`/postmortem draft`)".into(),
    })]
    NoSuchVersion {
        id: IncidentId,
        version: u32,
        latest: Option<u32>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Template(#[from] TemplateError),
}

impl ExportError {
    /// Whether the request named something that is not there (a 404 on the HTTP edge).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            ExportError::NoSuchIncident(_) | ExportError::NoSuchVersion { .. }
        )
    }
}

impl From<ExportError> for CommandError {
    fn from(e: ExportError) -> Self {
        match e {
            ExportError::NoSuchIncident(id) => UserError::NoSuchIncident(id).into(),
            e @ ExportError::NoSuchVersion { .. } => UserError::Postmortem(e.to_string()).into(),
            ExportError::Store(e) => e.into(),
            ExportError::Template(e) => e.into(),
        }
    }
}

/// Reads what a draft of `id` is compiled from; `None` when there is no such incident.
pub fn load(store: &Store, config: &Config, id: IncidentId) -> Result<Option<Sources>, StoreError> {
    let Some(incident) = store.incident(id)? else {
        return Ok(None);
    };
    let events = store.events(id)?;
    let messages = store.messages(id)?;
    let deploys = match incident.times.started.or(incident.times.declared) {
        Some(start) => {
            let lookback = chrono::Duration::from_std(config.whats_changed.lookback.0)
                .unwrap_or_else(|_| chrono::Duration::hours(2));
            store.deploys(start - lookback, None, None)?
        }
        None => Vec::new(),
    };
    Ok(Some(Sources {
        incident,
        events,
        messages,
        deploys,
        text_gaps: store.content_gaps()?,
    }))
}

/// Renders a compiled draft as the Markdown file people receive.
pub fn render(renderer: &Renderer, draft: &Draft) -> Result<String, TemplateError> {
    let mut md = renderer.render(TEMPLATE, draft)?;
    md.push('\n');
    Ok(md)
}

/// A stored or freshly compiled post-mortem, and which version it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    pub markdown: String,
    /// `None` when no draft was stored and this one was compiled on the fly.
    pub version: Option<u32>,
    pub latest: Option<u32>,
}

/// [`export`], saying which version it found.
pub fn export_draft(
    store: &Store,
    renderer: &Renderer,
    config: &Config,
    id: IncidentId,
    version: Option<u32>,
) -> Result<Exported, ExportError> {
    let latest = store.latest_postmortem_version(id)?;
    if let Some(v) = version {
        let record = store
            .postmortem(id, Some(v))?
            .ok_or(ExportError::NoSuchVersion {
                id,
                version: v,
                latest,
            })?;
        return Ok(Exported {
            markdown: record.markdown,
            version: Some(v),
            latest,
        });
    }
    if let Some(record) = store.postmortem(id, None)? {
        return Ok(Exported {
            markdown: record.markdown,
            version: Some(record.version),
            latest,
        });
    }
    let src = load(store, config, id)?.ok_or(ExportError::NoSuchIncident(id))?;
    // Compiled "as of" the last thing that happened, so that the same database always exports
    // the same text, whenever and wherever it is asked.
    let meta = Meta {
        version: None,
        compiled_at: src.last_activity(),
        compiled_by: None,
    };
    Ok(Exported {
        markdown: render(renderer, &compile(&src, config, &meta))?,
        version: None,
        latest: None,
    })
}

/// The Markdown of version `version` of `id`'s post-mortem, or of the latest. With no stored
/// draft and no version asked for, a draft is compiled from the timeline as it stands (and not
/// stored). Reads only the database: `/postmortem export`, `sitrep export` and the HTTP edge
/// give the same bytes.
pub fn export(
    store: &Store,
    renderer: &Renderer,
    config: &Config,
    id: IncidentId,
    version: Option<u32>,
) -> Result<String, ExportError> {
    export_draft(store, renderer, config, id, version).map(|e| e.markdown)
}

/// Compiles, renders and stores the next version of `id`'s post-mortem, and flushes it.
/// An open incident gets a draft too, marked as such.
pub async fn draft(
    app: &App,
    id: IncidentId,
    by: &UserRef,
) -> Result<(PostmortemRecord, Draft), CommandError> {
    let src = load(&app.store, &app.config, id)?.ok_or(UserError::NoSuchIncident(id))?;
    let compiled_at = app.now();
    loop {
        let version = app.store.next_postmortem_version(id)?;
        let meta = Meta {
            version: Some(version),
            compiled_at,
            compiled_by: Some(by.clone()),
        };
        let d = compile(&src, &app.config, &meta);
        let record = PostmortemRecord {
            incident: id,
            version,
            compiled_at,
            compiled_by: by.name.clone(),
            incident_open: d.open,
            reviewer_notes: u32::try_from(d.reviewer_notes.len()).unwrap_or(u32::MAX),
            markdown: render(&app.renderer, &d)?,
        };
        // Another draft took this version meanwhile; number this one after it.
        if app.store.put_postmortem(&record)? {
            app.store.flush().await?;
            return Ok((record, d));
        }
    }
}

/// Puts a captured message on `incident`'s timeline as a key moment, once however often it is
/// asked; flushed before it returns [`Highlighted::Added`]. `by` is who asked (a reaction, the
/// "Add to timeline" command) or [`Actor::System`] for a pin whose author is unknown.
pub async fn highlight(
    app: &App,
    incident: IncidentId,
    message_id: u64,
    by: &Actor,
) -> Result<Highlighted, CommandError> {
    if app.store.incident(incident)?.is_none() {
        return Err(UserError::NoSuchIncident(incident).into());
    }
    let h = app
        .store
        .highlight_message(incident, message_id, by, app.now())?;
    if matches!(h, Highlighted::Added(_)) {
        app.store.flush().await?;
    }
    Ok(h)
}

/// As [`highlight`], capturing the message first: for edges that have the message at hand
/// (the message command carries it), so that a message the capture missed can still be marked.
pub async fn highlight_captured(
    app: &App,
    incident: IncidentId,
    message: &CapturedMessage,
    by: &Actor,
) -> Result<Highlighted, CommandError> {
    if app.store.incident(incident)?.is_none() {
        return Err(UserError::NoSuchIncident(incident).into());
    }
    // The channel's own capture keeps edits in order; the interaction's copy only fills in a
    // message the bot never stored, or stored without its text or its attachments.
    let known = app.store.message(incident, message.id)?;
    let fills_in = match &known {
        None => true,
        Some(m) => {
            (m.content.is_empty() && m.attachments.is_empty())
                || (!message.attachments.is_empty() && m.attachments != message.attachments)
        }
    };
    if fills_in {
        app.store.capture_message(incident, message)?;
    }
    highlight(app, incident, message.id, by).await
}

/// Whether a reaction is the configured highlight emoji. Unicode emoji compare without their
/// variation selector (Discord sends both forms); custom emoji compare by name.
pub fn is_highlight_reaction(config: &Config, emoji: &str) -> bool {
    let norm = |s: &str| -> String {
        let s = s.trim();
        let s = s
            .strip_prefix("<:")
            .or_else(|| s.strip_prefix("<a:"))
            .and_then(|r| r.split(':').next())
            .unwrap_or(s);
        s.trim_matches(':').replace('\u{FE0F}', "")
    };
    let want = norm(&config.postmortem.highlight_reaction);
    !want.is_empty() && norm(emoji) == want
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postmortem_highlight_reactions_compare_loosely() {
        let mut c = Config::default();
        assert!(is_highlight_reaction(&c, "📌"));
        assert!(is_highlight_reaction(&c, "📌\u{FE0F}"));
        assert!(!is_highlight_reaction(&c, "👍"));
        c.postmortem.highlight_reaction = "<:timeline:123>".into();
        assert!(is_highlight_reaction(&c, "timeline"));
        assert!(is_highlight_reaction(&c, "<:timeline:123>"));
        assert!(!is_highlight_reaction(&c, "📌"));
    }

    #[test]
    fn postmortem_export_errors_say_what_exists() {
        let e = ExportError::NoSuchVersion {
            id: IncidentId(7),
            version: 4,
            latest: Some(2),
        };
        assert_eq!(
            e.to_string(),
            "INC-7 has no post-mortem version 4; the versions are 1 to 2"
        );
        assert!(e.is_not_found());
        let e = ExportError::NoSuchVersion {
            id: IncidentId(7),
            version: 1,
            latest: None,
        };
        assert!(e.to_string().contains("no draft was compiled yet"), "{e}");
    }
}
