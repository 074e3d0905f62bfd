//! `/postmortem`: draft, show, export, lint, file (the action items, as issues); and the "Add to
//! timeline" message command.

use super::target;
use super::{Invocation, Outcome, Reply, Target};
use crate::app::App;
use crate::domain::{Actor, IncidentId};
use crate::error::{CommandError, UserError};
use crate::message::{truncate, Attachment, Post, MAX_CONTENT};
use crate::postmortem::lint::{Finding, Linter};
use crate::postmortem::{self, Meta};
use crate::store::Highlighted;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(tag = "subcommand", rename_all = "snake_case")]
pub enum PostmortemArgs {
    Draft(DraftArgs),
    Show(VersionArgs),
    Export(VersionArgs),
    Lint(LintArgs),
    File(DraftArgs),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DraftArgs {
    pub incident: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionArgs {
    pub version: Option<i64>,
    pub incident: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LintArgs {
    pub incident: Option<String>,
    pub text: Option<String>,
}

/// The name of the message command in `commands/timeline.json`.
pub const ADD_TO_TIMELINE: &str = "Add to timeline";

/// "Add to timeline" takes no options: only the message it was run on.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimelineArgs {
    pub target: Option<Target>,
}

/// Room left in a preview for the line that says how to get the rest.
const PREVIEW: usize = MAX_CONTENT - 200;

pub async fn run(
    app: &App,
    inv: &Invocation,
    args: PostmortemArgs,
) -> Result<Outcome, CommandError> {
    match args {
        PostmortemArgs::Draft(a) => draft(app, inv, a).await,
        PostmortemArgs::Show(a) => show(app, inv, a),
        PostmortemArgs::Export(a) => export(app, inv, a),
        PostmortemArgs::Lint(a) => lint(app, inv, a),
        PostmortemArgs::File(a) => file(app, inv, a).await,
    }
}

/// What can be refused before the edge defers (draft and export wait on Discord): an incident
/// that is not there, a version that was never compiled. Refused at once, the answer stays
/// private; after a deferral it would replace a public placeholder.
pub fn precheck(app: &App, inv: &Invocation, args: &PostmortemArgs) -> Result<(), CommandError> {
    match args {
        PostmortemArgs::Draft(a) => target(app, inv, a.incident.as_deref()).map(drop),
        PostmortemArgs::File(a) => {
            let inc = target(app, inv, a.incident.as_deref())?;
            if app.trackers.is_none() {
                return Err(super::incident::no_tracker().into());
            }
            if inc.action_items.iter().all(|i| i.issue.is_some()) {
                return Err(UserError::Postmortem(format!(
                    "{} has no action items left to file{}.",
                    inc.id,
                    if inc.action_items.is_empty() {
                        "; add them with `/incident action`"
                    } else {
                        "; every one has its issue"
                    }
                ))
                .into());
            }
            Ok(())
        }
        PostmortemArgs::Show(a) | PostmortemArgs::Export(a) => {
            let inc = target(app, inv, a.incident.as_deref())?;
            let Some(v) = version(a.version)? else {
                return Ok(());
            };
            let versions = app.store.postmortem_versions(inc.id)?;
            if versions.contains(&v) {
                return Ok(());
            }
            Err(postmortem::ExportError::NoSuchVersion {
                id: inc.id,
                version: v,
                latest: versions.last().copied(),
            }
            .into())
        }
        PostmortemArgs::Lint(_) => Ok(()),
    }
}

fn outcome(reply: Reply, incident: Option<IncidentId>) -> Outcome {
    Outcome {
        reply,
        posts: Vec::new(),
        incident,
    }
}

fn version(v: Option<i64>) -> Result<Option<u32>, CommandError> {
    v.map(|n| {
        u32::try_from(n).ok().filter(|n| *n > 0).ok_or_else(|| {
            UserError::Postmortem(format!("`version:{n}` is not a version; they count from 1"))
                .into()
        })
    })
    .transpose()
}

/// Files every action item of the incident that has no issue yet, and lists where each went.
async fn file(app: &App, inv: &Invocation, a: DraftArgs) -> Result<Outcome, CommandError> {
    let inc = target(app, inv, a.incident.as_deref())?;
    let actor = Actor::User(inv.user.clone());
    let (filed, failed) = crate::action_items::file_all(app, &actor, inc.id).await;
    if filed.is_empty() {
        if let Some(e) = failed {
            return Err(e);
        }
    }
    let mut text = format!(
        "Filed {} action item{} of {}:",
        filed.len(),
        if filed.len() == 1 { "" } else { "s" },
        inc.id
    );
    for f in &filed {
        text.push_str(&format!("\n#{} → {} <{}>", f.number, f.key, f.url));
    }
    if let Some(e) = failed {
        text.push_str(&format!(
            "\nThe rest were not filed: {} Run `/postmortem file` again once that is fixed.",
            e.to_chat("postmortem file")
        ));
    }
    Ok(outcome(
        Reply::public(truncate(&text, MAX_CONTENT)),
        Some(inc.id),
    ))
}

async fn draft(app: &App, inv: &Invocation, a: DraftArgs) -> Result<Outcome, CommandError> {
    let inc = target(app, inv, a.incident.as_deref())?;
    let (record, d) = postmortem::draft(app, inc.id, &inv.user).await?;
    let mut text = format!(
        "Post-mortem draft **version {}** of {} compiled: {} timeline entries, {} key moment{}, {} action item{}.",
        record.version,
        inc.id,
        d.timeline.len(),
        d.highlights,
        if d.highlights == 1 { "" } else { "s" },
        d.action_items.len(),
        if d.action_items.len() == 1 { "" } else { "s" },
    );
    if record.incident_open {
        text.push_str(&format!(
            "\n⚠️ {} is still open ({}); the draft is marked as such. Compile again after resolving.",
            inc.id, inc.state
        ));
    }
    match record.reviewer_notes {
        0 => text.push_str("\nBlameless review: nothing to reword."),
        n => text.push_str(&format!(
            "\nBlameless review: {n} phrase{} to reword, listed under Reviewer notes (`/postmortem lint`).",
            if n == 1 { "" } else { "s" }
        )),
    }
    text.push_str("\nPreview it with `/postmortem show`; download it with `/postmortem export`.");
    Ok(outcome(Reply::public(text), Some(inc.id)))
}

/// The incident a `show` or `export` is about, and the draft version it asks for.
fn exported(
    app: &App,
    inv: &Invocation,
    a: &VersionArgs,
) -> Result<(crate::domain::Incident, postmortem::Exported), CommandError> {
    let inc = target(app, inv, a.incident.as_deref())?;
    let found = postmortem::export_draft(
        &app.store,
        &app.renderer,
        &app.config,
        inc.id,
        version(a.version)?,
    )?;
    Ok((inc, found))
}

fn show(app: &App, inv: &Invocation, a: VersionArgs) -> Result<Outcome, CommandError> {
    let (inc, found) = exported(app, inv, &a)?;
    let which = match (found.version, found.latest) {
        (Some(v), Some(l)) => format!("version {v} of {l}"),
        _ => "not stored yet; `/postmortem draft` stores one".into(),
    };
    let md = &found.markdown;
    let text = if md.chars().count() <= PREVIEW {
        format!("{md}\n_({which})_")
    } else {
        // Cut at a line end, so that the preview shows whole lines.
        let head = truncate(md, PREVIEW);
        let head = head.rfind('\n').map_or(head, |i| &head[..i]);
        format!(
            "{head}\n…\n_({which}; {} more characters: `/postmortem export` for the file)_",
            md.chars().count() - head.chars().count()
        )
    };
    Ok(outcome(Reply::private(text), Some(inc.id)))
}

/// The file name of an exported post-mortem: `INC-7-postmortem-v2.md`.
pub fn file_name(id: IncidentId, version: Option<u32>) -> String {
    match version {
        Some(v) => format!("{id}-postmortem-v{v}.md"),
        None => format!("{id}-postmortem.md"),
    }
}

fn export(app: &App, inv: &Invocation, a: VersionArgs) -> Result<Outcome, CommandError> {
    let (inc, found) = exported(app, inv, &a)?;
    let content = match (found.version, found.latest) {
        (Some(v), Some(l)) => format!("Post-mortem of {}, version {v} of {l}.", inc.id),
        _ => format!(
            "Post-mortem of {}, compiled from the timeline as it stands (no draft stored yet; `/postmortem draft` stores one).",
            inc.id
        ),
    };
    let post = Post {
        content,
        files: vec![Attachment {
            filename: file_name(inc.id, found.version),
            bytes: found.markdown.into_bytes(),
        }],
        ..Post::default()
    };
    Ok(outcome(
        Reply {
            post,
            ephemeral: false,
        },
        Some(inc.id),
    ))
}

/// Lists findings for chat: what was found, where, and what to write instead.
pub fn findings_text(findings: &[Finding]) -> String {
    findings
        .iter()
        .enumerate()
        .map(|(i, f)| {
            format!(
                "{}. **\"{}\"** ({}): \"{}\"\n   → {}",
                i + 1,
                f.found,
                f.place,
                f.excerpt,
                f.suggestion
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn lint(app: &App, inv: &Invocation, a: LintArgs) -> Result<Outcome, CommandError> {
    if let Some(text) = &a.text {
        if text.trim().is_empty() {
            return Err(UserError::Postmortem("there is no text to check".into()).into());
        }
        let findings = Linter::new(&app.config.postmortem).lint("your text", text);
        let reply = if findings.is_empty() {
            "No wording that assigns blame found in your text.".to_string()
        } else {
            format!(
                "{} phrase{} to reword:\n{}",
                findings.len(),
                if findings.len() == 1 { "" } else { "s" },
                findings_text(&findings)
            )
        };
        return Ok(outcome(
            Reply {
                post: Post::text(reply).fit_limits(),
                ephemeral: true,
            },
            None,
        ));
    }
    let inc = target(app, inv, a.incident.as_deref())?;
    let src = postmortem::load(&app.store, &app.config, inc.id)?
        .ok_or(UserError::NoSuchIncident(inc.id))?;
    let meta = Meta {
        version: None,
        compiled_at: app.now(),
        compiled_by: None,
    };
    // Linted as a draft compiled now would be, so that fixes show before the next draft.
    let d = postmortem::compile(&src, &app.config, &meta);
    let checked = d.timeline.len() + d.transcript.as_ref().map_or(0, Vec::len) + 1;
    let reply = if d.reviewer_notes.is_empty() {
        format!(
            "No wording that assigns blame found in {}'s draft ({checked} passage{} checked).",
            inc.id,
            if checked == 1 { "" } else { "s" }
        )
    } else {
        format!(
            "{}'s draft has {} phrase{} to reword:\n{}",
            inc.id,
            d.reviewer_notes.len(),
            if d.reviewer_notes.len() == 1 { "" } else { "s" },
            findings_text(&d.reviewer_notes)
        )
    };
    Ok(outcome(
        Reply {
            post: Post::text(reply).fit_limits(),
            ephemeral: true,
        },
        Some(inc.id),
    ))
}

/// The "Add to timeline" message command, run on the message its target names. Edges pass the
/// message too when they have it, so that one the capture missed can still be marked.
pub async fn add_to_timeline(
    app: &App,
    inv: &Invocation,
    args: TimelineArgs,
) -> Result<Outcome, CommandError> {
    let Some(Target::Message {
        id: message_id,
        message,
    }) = args.target
    else {
        return Err(UserError::Line("That command works on a message.".into()).into());
    };
    let inc = target(app, inv, None)?;
    let by = Actor::User(inv.user.clone());
    let h = match message.filter(|m| m.id == message_id) {
        Some(m) => postmortem::highlight_captured(app, inc.id, &m, &by).await?,
        None => postmortem::highlight(app, inc.id, message_id, &by).await?,
    };
    let text = match h {
        Highlighted::Added(_) => format!("📌 Added to {}'s timeline as a key moment.", inc.id),
        Highlighted::Already(h) => format!(
            "That message is already on {}'s timeline (added by {} at {}).",
            inc.id,
            h.by.label(),
            h.at.format("%Y-%m-%d %H:%M UTC")
        ),
        Highlighted::UnknownMessage => {
            return Err(UserError::Postmortem(format!(
                "sitrep has not captured that message, so it cannot go on {}'s timeline; only messages posted in the incident's channel can",
                inc.id
            ))
            .into())
        }
    };
    Ok(outcome(Reply::private(text), Some(inc.id)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::options::{manifest, to_json};
    use crate::commands::CommandInput;

    #[test]
    fn args_structs_refuse_options_the_manifest_lacks() {
        let json = serde_json::json!({"subcommand": "export", "version": 1, "colour": "red"});
        assert!(serde_json::from_value::<PostmortemArgs>(json).is_err());
    }

    #[test]
    fn postmortem_message_command_manifest_is_a_message_command() {
        let m = manifest(ADD_TO_TIMELINE).unwrap();
        assert_eq!(m["type"], 3);
        assert!(m.get("description").is_none());
        assert_eq!(
            to_json(&CommandInput {
                name: ADD_TO_TIMELINE.into(),
                options: vec![],
            })
            .unwrap(),
            serde_json::json!({})
        );
    }

    #[test]
    fn postmortem_versions_count_from_one() {
        assert_eq!(version(None).unwrap(), None);
        assert_eq!(version(Some(2)).unwrap(), Some(2));
        assert!(version(Some(0)).is_err());
        assert!(version(Some(-3)).is_err());
        assert_eq!(file_name(IncidentId(7), Some(2)), "INC-7-postmortem-v2.md");
    }
}
