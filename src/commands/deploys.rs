//! `/deploys [service] [since] [environment]`: recent deploys from every source, newest first.

use super::{when, Invocation, Outcome, Reply};
use crate::app::App;
use crate::error::{CommandError, UserError};
use crate::message::{Post, MAX_CONTENT};
use crate::store::Deploy;
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;

/// How far back `/deploys` looks when `since:` is not given.
pub const DEFAULT_SINCE: Duration = Duration::hours(2);
/// Room left in a message for the "and N more" line.
const BUDGET: usize = MAX_CONTENT - 150;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploysArgs {
    pub service: Option<String>,
    pub since: Option<String>,
    pub environment: Option<String>,
}

pub async fn run(app: &App, _inv: &Invocation, args: DeploysArgs) -> Result<Outcome, CommandError> {
    let now = app.now();
    let since = parse_since(args.since.as_deref(), now)?;
    let service = args
        .service
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let environment = args
        .environment
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let deploys = app.store.deploys(since, service, environment)?;

    let mut scope = String::new();
    if let Some(s) = service {
        scope.push_str(&format!(" of {}", escape(s)));
    }
    if let Some(e) = environment {
        scope.push_str(&format!(" to {}", escape(e)));
    }
    let since_text = format!("<t:{}:R>", since.timestamp());
    if deploys.is_empty() {
        return Ok(reply(format!("No deploys{scope} since {since_text}.")));
    }

    let mut text = format!("**Deploys{scope} since {since_text}**, newest first:");
    let mut shown = 0;
    for d in &deploys {
        let line = line(d);
        if text.chars().count() + line.chars().count() + 1 > BUDGET {
            break;
        }
        text.push('\n');
        text.push_str(&line);
        shown += 1;
    }
    if shown < deploys.len() {
        text.push_str(&format!(
            "\n… and {} more; narrow with `service:`, `environment:` or `since:`.",
            deploys.len() - shown
        ));
    }
    Ok(reply(text))
}

fn reply(text: String) -> Outcome {
    Outcome {
        reply: Reply {
            post: Post::text(text).fit_limits(),
            ephemeral: true,
        },
        posts: Vec::new(),
        incident: None,
    }
}

/// `2h`, `30m`, `3d` back from now, or a past moment as `/incident open started:` takes it.
pub fn parse_since(raw: Option<&str>, now: DateTime<Utc>) -> Result<DateTime<Utc>, UserError> {
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(now - DEFAULT_SINCE);
    };
    let bad = || {
        UserError::BadTime(format!(
            "`since:{raw}` is not a time in the past; try 30m, 2h, 3d, or 2026-11-21T10:42Z (UTC)"
        ))
    };
    if let Ok(d) = humantime::parse_duration(raw) {
        return Duration::from_std(d)
            .ok()
            .and_then(|d| now.checked_sub_signed(d))
            .ok_or_else(bad);
    }
    when::parse_past(raw, now).map_err(|_| bad())
}

/// Text from a deploy source shown as itself: no markdown, no mention or timestamp markup.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(
            c,
            '\\' | '*' | '_' | '~' | '`' | '|' | '[' | ']' | '<' | '>' | '#'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn status_mark(status: &str) -> &'static str {
    match status {
        "success" | "succeeded" | "deployed" => "✅",
        "failure" | "failed" | "error" => "❌",
        "in_progress" | "pending" | "queued" | "started" | "running" => "⏳",
        "inactive" | "rolled_back" | "cancelled" | "canceled" => "⏹️",
        _ => "•",
    }
}

fn line(d: &Deploy) -> String {
    let mut what = format!("**{}** {}", escape(&d.service), escape(&d.version));
    if let Some(e) = &d.environment {
        what.push_str(&format!(" → {}", escape(e)));
    }
    let mut parts = vec![format!("<t:{}:R>", d.time.timestamp()), what];
    if let Some(s) = &d.status {
        parts.push(format!("{} {}", status_mark(s), escape(s)));
    }
    if let Some(a) = &d.author {
        parts.push(format!("by {}", escape(a)));
    }
    if let Some(c) = &d.commit {
        parts.push(format!(
            "`{}`",
            c.chars()
                .take(7)
                .filter(char::is_ascii_alphanumeric)
                .collect::<String>()
        ));
    }
    if let Some(u) = &d.url {
        // Angle brackets keep Discord from unfurling a preview of every link in the list.
        parts.push(format!(
            "[link](<{}>)",
            u.replace(')', "%29").replace('>', "%3E")
        ));
    }
    parts.join(" · ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::options::{manifest, to_json};
    use crate::commands::{CommandInput, InputOption, InputValue};
    use chrono::TimeZone;

    #[test]
    fn every_manifest_option_deserializes_into_the_args() {
        let m = manifest("deploys").unwrap();
        let options = m["options"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| InputOption {
                name: o["name"].as_str().unwrap().into(),
                value: InputValue::String("2h".into()),
            })
            .collect();
        for options in [vec![], options] {
            let input = CommandInput {
                name: "deploys".into(),
                options,
            };
            let json = to_json(&input).unwrap();
            serde_json::from_value::<DeploysArgs>(json.clone())
                .unwrap_or_else(|e| panic!("{json}: {e}"));
        }
        let extra = serde_json::json!({"service": "x", "colour": "red"});
        assert!(serde_json::from_value::<DeploysArgs>(extra).is_err());
    }

    #[test]
    fn since_takes_durations_and_times() {
        let now = Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).unwrap();
        assert_eq!(parse_since(None, now).unwrap(), now - Duration::hours(2));
        assert_eq!(
            parse_since(Some("30m"), now).unwrap(),
            now - Duration::minutes(30)
        );
        assert_eq!(
            parse_since(Some("3d"), now).unwrap(),
            now - Duration::days(3)
        );
        assert_eq!(
            parse_since(Some("90m ago"), now).unwrap(),
            now - Duration::minutes(90)
        );
        assert_eq!(
            parse_since(Some("2026-11-21T10:42:00Z"), now).unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 21, 10, 42, 0).unwrap()
        );
        for bad in ["banana", "2099-01-01", "in 2h"] {
            let err = parse_since(Some(bad), now).unwrap_err().to_string();
            assert!(
                err.contains(&format!("`since:{bad}` is not a time")),
                "{err}"
            );
        }
    }

    #[test]
    fn source_text_cannot_format_or_mention() {
        assert_eq!(escape("<@&123> **x**"), "\\<@&123\\> \\*\\*x\\*\\*");
        let d = Deploy {
            source: crate::store::DeploySource::Webhook,
            id: "1".into(),
            service: "check_out".into(),
            version: "1.0".into(),
            commit: Some("0123456789abcdef".into()),
            author: None,
            environment: None,
            status: Some("success".into()),
            url: Some("https://ci.example.com/a)b".into()),
            time: Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).unwrap(),
        };
        assert_eq!(
            line(&d),
            "<t:1795262400:R> · **check\\_out** 1.0 · ✅ success · `0123456` · [link](<https://ci.example.com/a%29b>)"
        );
    }
}
