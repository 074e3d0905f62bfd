//! On call: who each `[oncall.NAME]` schedule puts on call now and next, read from its source
//! (PagerDuty, an iCalendar feed, a rotation in config), mapped to Discord users through
//! `[people]`. Each answer read is kept, so that a source that fails is answered with the last
//! known answer, marked as such, and never with nobody.

pub mod job;
pub mod roles;

use crate::app::App;
use crate::config::{person, schedule, Config, OnCallSchedule, SourceKind};
use crate::domain::oncall::{as_at, now_and_next, NowAndNext, Person, Rotation};
use crate::domain::UserRef;
use crate::integrations::ical;
use crate::integrations::pagerduty_oncalls::{Filter, OnCalls};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// How far ahead calendars and PagerDuty are read for the next hand-off.
const AHEAD: i64 = 45;

/// Who a schedule puts on call, as read at `as_of`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub schedule: String,
    pub shifts: NowAndNext,
    pub as_of: DateTime<Utc>,
    /// Why the source could not be read, when this is the last answer it gave.
    #[serde(default)]
    pub unreachable: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum OnCallError {
    #[error("`{0}` is not an on-call schedule; configured: {1}")]
    Unknown(String, String),
    #[error("[oncall.{0}] has no usable source")]
    NoSource(String),
    #[error("no PagerDuty token for [oncall.{0}]: set {1}")]
    NoToken(String, String),
    #[error("the source of {0} cannot be read ({1}) and has never answered before")]
    NeverAnswered(String, String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

fn cache_key(name: &str) -> String {
    format!("oncall:{name}")
}

/// The schedule `name` as configured, by its configured name.
pub fn find<'a>(
    config: &'a Config,
    name: &str,
) -> Result<(&'a str, &'a OnCallSchedule), OnCallError> {
    schedule(&config.oncall, name).ok_or_else(|| {
        let known: Vec<&str> = config.oncall.keys().map(String::as_str).collect();
        OnCallError::Unknown(
            name.trim().to_string(),
            if known.is_empty() {
                "none (add [oncall.NAME] to the config)".into()
            } else {
                known.join(", ")
            },
        )
    })
}

/// The rotation of `s` as the domain counts it.
fn rotation(s: &crate::config::RotationSource) -> Rotation {
    Rotation {
        members: s.members.clone(),
        tz: s.time_zone,
        first: s.first(),
        length: Duration::from_std(s.length.0).unwrap_or(Duration::days(7)),
        overrides: s
            .overrides
            .iter()
            .map(|o| (o.who.clone(), o.from, o.until))
            .collect(),
    }
}

/// Reads the source of schedule `name` at `now`, without the fallback.
async fn read(
    app: &App,
    name: &str,
    s: &OnCallSchedule,
    now: DateTime<Utc>,
) -> Result<NowAndNext, String> {
    let (from, until) = (now - Duration::days(AHEAD), now + Duration::days(AHEAD));
    match s.source() {
        Some(SourceKind::Rotation) => {
            let r = s.rotation.as_ref().ok_or("no rotation")?;
            Ok(rotation(r).now_and_next(now))
        }
        Some(SourceKind::Ical) => {
            let feed = s.ical.as_ref().ok_or("no feed")?;
            let text = match (&feed.url, &feed.file) {
                (Some(url), _) => ical::fetch(url, feed.timeout.0).await,
                (None, Some(file)) => ical::read(file).await,
                (None, None) => return Err("no url or file".into()),
            }
            .map_err(|e| e.to_string())?;
            let tz = feed.time_zone.unwrap_or(chrono_tz::UTC);
            let list = ical::intervals(&text, tz, from, until).map_err(|e| e.to_string())?;
            Ok(now_and_next(&list, now))
        }
        Some(SourceKind::PagerDuty) => {
            let pd = s.pagerduty.as_ref().ok_or("no PagerDuty source")?;
            let token = app.oncall.get(&pd.token_env).ok_or_else(|| {
                OnCallError::NoToken(name.into(), pd.token_env.clone()).to_string()
            })?;
            let filter = match (&pd.schedule_id, &pd.escalation_policy_id) {
                (Some(id), _) => Filter::Schedule(id.clone()),
                (None, Some(id)) => Filter::EscalationPolicy(id.clone()),
                (None, None) => return Err("no schedule_id or escalation_policy_id".into()),
            };
            let client = OnCalls::new(
                &app.config.pagerduty.api_url,
                app.config.pagerduty.timeout.0,
            )
            .map_err(|e| e.to_string())?;
            // PagerDuty reads at most 90 days at once.
            let list = client
                .list(token, &filter, now, until)
                .await
                .map_err(|e| e.to_string())?;
            Ok(now_and_next(&list, now))
        }
        None => Err(OnCallError::NoSource(name.into()).to_string()),
    }
}

/// Who schedule `name` puts on call now and next. A source that fails gives the last answer it
/// gave, marked with why; only a source that never answered is an error.
pub async fn lookup(app: &App, name: &str) -> Result<Answer, OnCallError> {
    let (name, s) = find(&app.config, name)?;
    let now = app.now();
    match read(app, name, s, now).await {
        Ok(shifts) => {
            let answer = Answer {
                schedule: name.to_string(),
                shifts,
                as_of: now,
                unreachable: None,
            };
            let stored = serde_json::to_string(&answer).unwrap_or_default();
            app.store.meta_set(&cache_key(name), &stored)?;
            Ok(answer)
        }
        Err(why) => {
            tracing::warn!(schedule = name, error = %why, "the on-call source cannot be read; answering with the last known answer");
            let last = app
                .store
                .meta_get(&cache_key(name))?
                .and_then(|s| serde_json::from_str::<Answer>(&s).ok());
            match last {
                Some(mut a) => {
                    a.shifts = as_at(&a.shifts, now);
                    a.unreachable = Some(why);
                    Ok(a)
                }
                None => Err(OnCallError::NeverAnswered(name.into(), why)),
            }
        }
    }
}

/// The Discord user a person from a source stands for: by email, then by name, in `[people]`.
pub fn discord_user(config: &Config, who: &Person) -> Option<u64> {
    who.email
        .as_deref()
        .and_then(|e| person(&config.people, e))
        .or_else(|| person(&config.people, &who.name))
}

/// Who is on call at `now` by `answer`, as a chat user, if the source names one mapped to a
/// user. An answer read earlier whose shift has ended points at whoever it said was next.
pub fn current_user(config: &Config, answer: &Answer, now: DateTime<Utc>) -> Option<UserRef> {
    let shift = as_at(&answer.shifts, now).now?;
    discord_user(config, &shift.who).map(|id| UserRef::new(id, shift.who.name))
}

fn stamp(t: DateTime<Utc>, style: char) -> String {
    format!("<t:{}:{style}>", t.timestamp())
}

/// How a person reads in a post: a mention where they map to a user (it pings only if the
/// post allows it), else their name in bold.
fn who(app: &App, p: &Person) -> String {
    match discord_user(&app.config, p) {
        Some(id) => format!(
            "{} ({})",
            app.chat.user_mention(&UserRef::new(id, p.name.clone())),
            crate::message::truncate(&p.name, 80)
        ),
        None => format!(
            "**{}** (not in [people])",
            crate::message::truncate(&p.name, 80)
        ),
    }
}

/// The answer as a few lines of chat: who now, until when, who next and from when.
pub fn describe(app: &App, answer: &Answer) -> String {
    let mut out = format!("**{}**", answer.schedule);
    let description = app
        .config
        .oncall
        .get(&answer.schedule)
        .and_then(|s| s.description.as_ref());
    if let Some(d) = description {
        out.push_str(&format!(" ({})", crate::message::truncate(d, 100)));
    }
    out.push('\n');
    match &answer.shifts.now {
        Some(now) => {
            out.push_str(&format!("On call now: {}", who(app, &now.who)));
            if let Some(start) = now.start {
                out.push_str(&format!(" since {}", stamp(start, 'f')));
            }
            match now.end {
                Some(end) => out.push_str(&format!(
                    ", hands off {} ({})",
                    stamp(end, 'f'),
                    stamp(end, 'R')
                )),
                None => out.push_str(", with no end"),
            }
            out.push('\n');
        }
        None => out.push_str("Nobody is on call now.\n"),
    }
    if let Some(next) = &answer.shifts.next {
        out.push_str(&format!("Next: {}", who(app, &next.who)));
        if let Some(start) = next.start {
            out.push_str(&format!(
                " from {} ({})",
                stamp(start, 'f'),
                stamp(start, 'R')
            ));
        }
        out.push('\n');
    }
    if let Some(why) = &answer.unreachable {
        out.push_str(&format!(
            "⚠ As of {}, source unreachable ({}).\n",
            stamp(answer.as_of, 't'),
            crate::message::truncate(why, 200)
        ));
    }
    out
}

#[cfg(test)]
mod tests;
