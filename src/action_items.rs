//! Action items beyond the chat: filed as issues in a tracker, their state read back onto the
//! timeline, and overdue ones brought up until they are done.

use crate::app::App;
use crate::config::Config;
use crate::config::TrackerKind;
use crate::domain::Event;
use crate::domain::{ActionItem, Actor, Cadence, Incident, IncidentId};
use crate::error::{CommandError, UserError};
use crate::integrations::trackers::{NewIssue, ReadReport};
use crate::jobs::{JobError, Kind};
use crate::message::{Mentions, Post};
use crate::store::{Job, JobChange, JobKind};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use std::collections::BTreeMap;

/// The link back to incident `id` in the incident browser, when its address is configured.
pub fn browser_link(app: &App, id: IncidentId) -> Option<String> {
    let base = app.config.trackers.browser_url.as_ref().or(app
        .config
        .status_page
        .public_url
        .as_ref())?;
    Some(format!("{}/incidents/{id}", base.trim_end_matches('/')))
}

/// The issue that files item `item` of `inc`.
fn new_issue(app: &App, inc: &Incident, item: &ActionItem) -> NewIssue {
    NewIssue {
        incident: inc.id.to_string(),
        incident_title: inc.title.clone(),
        severity: inc.severity.to_string(),
        text: item.text.clone(),
        owner: item.owner.as_ref().map(|o| (o.id, o.name.clone())),
        due: item.due,
        link: browser_link(app, inc.id),
        context: inc.resolution.clone().or_else(|| inc.summary.clone()),
    }
}

/// An item filed: its number (from 1) and where it went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiledItem {
    pub number: usize,
    pub key: String,
    pub url: String,
}

/// Files item `item` (from 0) of incident `id` in the configured tracker and records the link
/// on the timeline. A success is on disk.
pub async fn file(
    app: &App,
    actor: &Actor,
    id: IncidentId,
    item: usize,
) -> Result<FiledItem, CommandError> {
    let trackers = app.trackers.as_ref().ok_or_else(|| {
        UserError::Line(
            "No tracker is set up; an operator adds GitHub Issues or Jira under [trackers] in the configuration."
                .into(),
        )
    })?;
    let inc = app
        .store
        .incident(id)?
        .ok_or(UserError::NoSuchIncident(id))?;
    // The same checks as the transaction makes, before anything is sent.
    inc.decide_filed(item, "", "", "")?;
    let issue = new_issue(app, &inc, &inc.action_items[item]);
    let filed = trackers.file(&issue).await.map_err(|e| {
        tracing::warn!(incident = %id, item = item + 1, error = %e, "filing an action item failed");
        UserError::Line(format!(
            "Filing action item #{} of {id} failed: {e}. Nothing was recorded; try again once that is fixed.",
            item + 1
        ))
    })?;
    let tracker = filed.tracker.name();
    app.record(id, actor, app.now(), |i| {
        i.decide_filed(item, tracker, &filed.key, &filed.url)
    })?;
    app.store.flush().await?;
    Ok(FiledItem {
        number: item + 1,
        key: filed.key,
        url: filed.url,
    })
}

/// Files every item of incident `id` that has no issue yet, one after the other; a failure
/// stops there, keeping those already filed.
pub async fn file_all(
    app: &App,
    actor: &Actor,
    id: IncidentId,
) -> (Vec<FiledItem>, Option<CommandError>) {
    let inc = match app.store.incident(id) {
        Ok(Some(i)) => i,
        Ok(None) => return (Vec::new(), Some(UserError::NoSuchIncident(id).into())),
        Err(e) => return (Vec::new(), Some(e.into())),
    };
    let mut filed = Vec::new();
    for (n, a) in inc.action_items.iter().enumerate() {
        if a.issue.is_some() {
            continue;
        }
        match file(app, actor, id, n).await {
            Ok(f) => filed.push(f),
            Err(e) => return (filed, Some(e)),
        }
    }
    (filed, None)
}

/// Every filed item not yet done, by tracker: (incident, item, key).
fn following(incidents: &[Incident]) -> BTreeMap<&'static str, Vec<(IncidentId, usize, String)>> {
    let mut out: BTreeMap<&'static str, Vec<_>> = BTreeMap::new();
    for inc in incidents {
        for (n, a) in inc.action_items.iter().enumerate() {
            let Some(issue) = a.issue.as_ref().filter(|_| !a.done) else {
                continue;
            };
            if let Some(kind) = TrackerKind::parse(&issue.tracker) {
                out.entry(kind.name())
                    .or_default()
                    .push((inc.id, n, issue.key.clone()));
            }
        }
    }
    out
}

/// What one read-back changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReadBack {
    pub report: ReadReport,
    /// Items whose state changed, and of those, the ones now done.
    pub changed: usize,
    pub done: usize,
}

/// Reads the state of every filed item that is not done yet and records what changed: a
/// closed issue marks its item done.
pub async fn read_back(app: &App) -> Result<ReadBack, CommandError> {
    let mut out = ReadBack::default();
    let Some(trackers) = app.trackers.as_ref() else {
        return Ok(out);
    };
    let incidents = app.store.incidents()?;
    for (tracker, items) in following(&incidents) {
        let kind = TrackerKind::parse(tracker).expect("named by TrackerKind::name");
        let mut keys: Vec<String> = items.iter().map(|(_, _, k)| k.clone()).collect();
        keys.sort();
        keys.dedup();
        let (states, report) = trackers.states(kind, &keys).await;
        out.report.requests += report.requests;
        out.report.not_modified += report.not_modified;
        out.report.errors.extend(report.errors);
        for (id, item, key) in items {
            let Some(s) = states.get(&key) else { continue };
            let (_, events) = app.record(id, &Actor::Scheduler, app.now(), |i| {
                i.decide_tracked(item, &s.state, s.done)
            })?;
            if !events.is_empty() {
                out.changed += 1;
                if s.done {
                    out.done += 1;
                }
            }
        }
    }
    if out.changed > 0 {
        app.store.flush().await?;
    }
    Ok(out)
}

/// Overdue items across every incident, oldest due first: (incident, item number from 1, item).
pub fn overdue(incidents: &[Incident], now: DateTime<Utc>) -> Vec<(&Incident, usize, &ActionItem)> {
    let mut out: Vec<_> = incidents
        .iter()
        .filter(|i| !i.drill)
        .flat_map(|inc| {
            inc.action_items
                .iter()
                .enumerate()
                .filter(move |(_, a)| a.overdue(now))
                .map(move |(n, a)| (inc, n + 1, a))
        })
        .collect();
    out.sort_by_key(|(inc, n, a)| (a.due, inc.id, *n));
    out
}

/// One line for an item: its text, owner, due date and issue.
pub fn item_line(n: usize, a: &ActionItem) -> String {
    let mut s = format!("#{n} {}", a.text);
    if let Some(o) = &a.owner {
        s.push_str(&format!(" · owner {}", o.name));
    }
    if let Some(d) = a.due {
        s.push_str(&format!(" · due {}", d.format("%Y-%m-%d")));
    }
    match (&a.issue, a.done) {
        (Some(i), true) => s.push_str(&format!(" · done ({} {})", i.key, i.state)),
        (Some(i), false) => s.push_str(&format!(" · {} {} <{}>", i.key, i.state, i.url)),
        (None, _) => {}
    }
    s
}

/// Reminds the owner of each item that needs it (see [`ActionItem::needs_reminder`]) in the
/// digest channel. Each reminder is queued in the outbox with the event that records it, so a
/// restart neither repeats nor loses one. Returns how many were queued.
pub async fn remind(app: &App, now: DateTime<Utc>) -> Result<usize, CommandError> {
    let Some(channel) = app
        .config
        .trackers
        .digest_channel
        .filter(|_| app.config.trackers.remind_owners)
    else {
        return Ok(0);
    };
    let mut sent = 0;
    for inc in app.store.incidents()? {
        for (n, a) in inc.action_items.iter().enumerate() {
            if inc.drill || !a.needs_reminder(now) {
                continue;
            }
            let (_, events) = app.record_with(
                inc.id,
                &Actor::Scheduler,
                now,
                |i| i.decide_reminded(n, now),
                |i, events, _| {
                    let Some(a) = i.action_items.get(n).filter(|_| !events.is_empty()) else {
                        return Vec::new();
                    };
                    vec![JobChange::Send {
                        incident: i.id,
                        channel,
                        post: Box::new(reminder(app, i, n, a, now)),
                        due: now,
                    }]
                },
            )?;
            if !events.is_empty() {
                sent += 1;
            }
        }
    }
    if sent > 0 {
        app.store.flush().await?;
    }
    Ok(sent)
}

/// The reminder to item `n`'s owner: it pings them and nobody else.
fn reminder(app: &App, inc: &Incident, n: usize, a: &ActionItem, now: DateTime<Utc>) -> Post {
    let owner = a.owner.as_ref().expect("only owned items are reminded");
    let when = match a.due {
        Some(d) if d.date_naive() == now.date_naive() => "is due today".to_string(),
        Some(d) => format!("was due {}", d.format("%Y-%m-%d")),
        None => "is due".to_string(),
    };
    let mut post = Post::text(format!(
        "{} action item #{} of {} {when}: {}{}",
        app.chat.user_mention(owner),
        n + 1,
        inc.id,
        a.text,
        a.issue
            .as_ref()
            .map(|i| format!(" · {} <{}>", i.key, i.url))
            .unwrap_or_default()
    ));
    post.mentions = Mentions::users(&[owner.id]);
    post.fit_limits()
}

/// The weekly digest of overdue items, or `None` when nothing is overdue.
pub fn digest(incidents: &[Incident], now: DateTime<Utc>) -> Option<Post> {
    let items = overdue(incidents, now);
    if items.is_empty() {
        return None;
    }
    let mut text = format!("**Overdue action items** ({}), oldest first:", items.len());
    for (inc, n, a) in items {
        text.push_str(&format!("\n- {} {}", inc.id, item_line(n, a)));
    }
    // A digest tells; it pings nobody.
    Some(Post::text(text).fit_limits())
}

/// Posts the digest of overdue items to `[trackers] digest_channel`; `false` when there is no
/// channel or nothing is overdue.
pub async fn send_digest(app: &App, now: DateTime<Utc>) -> Result<bool, CommandError> {
    let Some(channel) = app.config.trackers.digest_channel else {
        return Ok(false);
    };
    match digest(&app.store.incidents()?, now) {
        Some(post) => {
            app.chat.post(channel, post).await?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// When the digest after `after` is due, from `[trackers] digest_cron`.
fn next_digest(app: &App, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let Ok(Cadence::Cron { expr }) = Cadence::cron(&app.config.trackers.digest_cron) else {
        return None;
    };
    let schedule = expr.parse::<cron::Schedule>().ok()?;
    let next = schedule.after(&after).next();
    next
}

/// One round: read back, remind. Each part's failure is reported and the other still runs.
async fn round(app: &App) -> Vec<String> {
    let mut errors = Vec::new();
    match read_back(app).await {
        Ok(r) => {
            if r.changed > 0 {
                tracing::info!(
                    changed = r.changed,
                    done = r.done,
                    "action items read back from trackers"
                );
            }
            errors.extend(r.report.errors);
        }
        Err(e) => errors.push(e.to_string()),
    }
    if let Err(e) = remind(app, app.now()).await {
        errors.push(e.to_string());
    }
    errors
}

/// The house jobs of action items: a round of read-back and reminders every
/// `[trackers] poll_every`, and the digest on `[trackers] digest_cron`.
pub struct ActionItems;

pub const TAG: &str = "action_items";
const ROUND: &str = "round";
const DIGEST: &str = "digest";

fn job(key: &str, due: DateTime<Utc>) -> JobChange {
    JobChange::Put(Job::new(
        IncidentId::HOUSE,
        JobKind::keyed(TAG, key, serde_json::Value::Null),
        due,
    ))
}

impl Kind for ActionItems {
    fn tag(&self) -> &'static str {
        TAG
    }

    fn plan(&self, _config: &Config, _inc: &Incident, _events: &[Event]) -> Vec<JobChange> {
        Vec::new()
    }

    /// The round starts now; a digest already planned stands (one due while the bot was down
    /// goes out once), else the next is planned.
    fn start(&self, app: &App) -> Vec<JobChange> {
        let mut out = Vec::new();
        if app.trackers.is_some() || app.config.trackers.digest_channel.is_some() {
            out.push(job(ROUND, app.now()));
        }
        let digest = JobKind::keyed(TAG, DIGEST, serde_json::Value::Null);
        let planned = matches!(app.store.job(IncidentId::HOUSE, &digest), Ok(Some(_)));
        if app.config.trackers.digest_channel.is_some() && !planned {
            if let Some(at) = next_digest(app, app.now()) {
                out.push(job(DIGEST, at));
            }
        }
        out
    }

    fn run<'a>(&'a self, app: &'a App, job_: &'a Job) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            let JobKind::Keyed { key, .. } = &job_.kind else {
                app.store.finish_job(job_)?;
                return Ok(());
            };
            let now = app.now();
            let next = match key.as_str() {
                ROUND => {
                    for e in round(app).await {
                        tracing::warn!(error = %e, "action items: reading back or reminding failed");
                    }
                    let every = chrono::Duration::from_std(app.config.trackers.poll_every.0)
                        .unwrap_or(chrono::Duration::minutes(5));
                    Some(now + every)
                }
                DIGEST => {
                    if let Err(e) = send_digest(app, now).await {
                        tracing::warn!(error = %e, "the digest of overdue action items failed");
                    }
                    next_digest(app, now)
                }
                _ => None,
            };
            // The next run replaces this one in its slot; without one, the slot empties.
            match next {
                Some(at) => app.store.apply_jobs(&[job(key, at)])?,
                None => {
                    app.store.finish_job(job_)?;
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::console::parse_line;
    use crate::commands::{self, Invocation};
    use crate::domain::{EventKind, UserRef};
    use crate::scheduler::Scheduler;
    use crate::testkit::{t0, TestApp};
    use chrono::Duration;

    const DIGEST_CHANNEL: u64 = 900;

    async fn run(kit: &TestApp, line: &str) {
        let inv = Invocation {
            user: UserRef::new(1, "alice"),
            member_roles: Vec::new(),
            channel: None,
            input: parse_line(line).unwrap(),
        };
        commands::run(&kit.app, &inv).await.unwrap();
    }

    async fn kit_with_item() -> TestApp {
        let kit = TestApp::builder()
            .configure(|c| c.trackers.digest_channel = Some(DIGEST_CHANNEL))
            .stakeholders(None)
            .build();
        run(&kit, "/incident open title:\"Queue backlog\" severity:SEV2").await;
        run(
            &kit,
            "/incident action text:\"Alert on queue age\" owner:@bob due:1d incident:INC-1",
        )
        .await;
        run(
            &kit,
            "/incident action text:\"Unowned\" due:1d incident:INC-1",
        )
        .await;
        kit
    }

    /// Reminders queued at `at`, delivered; the posts to the digest channel.
    async fn remind_at(kit: &TestApp, at: DateTime<Utc>) -> (usize, Vec<Post>) {
        kit.set(at);
        let before = kit.sent().len();
        let n = remind(&kit.app, at).await.unwrap();
        Scheduler::new(kit.app.clone())
            .deliver_outbox()
            .await
            .unwrap();
        let posts = kit.sent()[before..]
            .iter()
            .filter(|s| s.channel == DIGEST_CHANNEL)
            .map(|s| s.post.clone())
            .collect();
        (n, posts)
    }

    #[tokio::test]
    async fn owners_are_reminded_daily_from_the_due_date_until_done() {
        let kit = kit_with_item().await;
        assert_eq!(remind_at(&kit, t0() + Duration::hours(2)).await.0, 0);

        let (n, posts) = remind_at(&kit, t0() + Duration::hours(25)).await;
        assert_eq!(n, 1, "only the owned item");
        let bob = kit
            .store()
            .incident(IncidentId(1))
            .unwrap()
            .unwrap()
            .action_items[0]
            .owner
            .clone()
            .unwrap();
        assert_eq!(posts.len(), 1);
        assert!(
            posts[0]
                .content
                .contains("action item #1 of INC-1 is due today: Alert on queue age"),
            "{}",
            posts[0].content
        );
        assert_eq!(posts[0].mentions, Mentions::users(&[bob.id]));
        // Once a day.
        assert_eq!(remind_at(&kit, t0() + Duration::hours(30)).await.0, 0);
        let (n, posts) = remind_at(&kit, t0() + Duration::hours(49)).await;
        assert_eq!(n, 1);
        assert!(
            posts[0].content.contains("was due 2026-11-22"),
            "{}",
            posts[0].content
        );
        // Until done.
        kit.app
            .record(IncidentId(1), &Actor::Scheduler, kit.app.now(), |i| {
                i.decide_tracked(0, "closed", true)
            })
            .unwrap();
        assert_eq!(remind_at(&kit, t0() + Duration::hours(73)).await.0, 0);
        let events = kit.store().events(IncidentId(1)).unwrap();
        let reminded = events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::ActionItemReminded { item: 0 }))
            .count();
        assert_eq!(reminded, 2);
    }

    #[tokio::test]
    async fn the_digest_lists_overdue_items_weekly_and_pings_nobody() {
        let kit = kit_with_item().await;
        // Saturday 10:00: the next digest is Monday 09:00, planned at start and kept across
        // restarts, so that one due while the bot was down still goes out.
        let monday = t0() + Duration::hours(47);
        assert_eq!(next_digest(&kit.app, t0()), Some(monday));
        let planned = ActionItems.start(&kit.app);
        kit.store().apply_jobs(&planned).unwrap();
        let digest = JobKind::keyed(TAG, DIGEST, serde_json::Value::Null);
        let job_ = kit
            .store()
            .job(IncidentId::HOUSE, &digest)
            .unwrap()
            .unwrap();
        assert_eq!(job_.due, monday);
        assert!(ActionItems
            .start(&kit.app)
            .iter()
            .all(|c| !matches!(c, JobChange::Put(j) if j.kind == digest)));

        assert!(
            !send_digest(&kit.app, t0()).await.unwrap(),
            "nothing overdue yet"
        );
        kit.set(monday);
        ActionItems.run(&kit.app, &job_).await.unwrap();
        let sent: Vec<_> = kit
            .sent()
            .into_iter()
            .filter(|s| s.channel == DIGEST_CHANNEL)
            .collect();
        assert_eq!(sent.len(), 1);
        let text = &sent[0].post.content;
        assert!(text.starts_with("**Overdue action items** (2)"), "{text}");
        assert!(
            text.contains("- INC-1 #1 Alert on queue age · owner bob · due 2026-11-22"),
            "{text}"
        );
        assert_eq!(sent[0].post.mentions, Mentions::none());
        // The next one is a week later.
        let next = kit
            .store()
            .job(IncidentId::HOUSE, &digest)
            .unwrap()
            .unwrap();
        assert_eq!(next.due, monday + Duration::days(7));
    }

    #[test]
    fn a_filed_and_closed_item_reads_as_done() {
        let mut a = ActionItem {
            text: "Alert".into(),
            owner: None,
            due: Some(t0()),
            added: t0(),
            issue: None,
            done: false,
            reminded: None,
        };
        assert!(a.overdue(t0()));
        assert_eq!(item_line(1, &a), "#1 Alert · due 2026-11-21");
        a.issue = Some(crate::domain::FiledIssue {
            tracker: "jira".into(),
            key: "OPS-7".into(),
            url: "https://acme.atlassian.net/browse/OPS-7".into(),
            state: "Done".into(),
        });
        a.done = true;
        assert!(!a.overdue(t0()));
        assert_eq!(
            item_line(1, &a),
            "#1 Alert · due 2026-11-21 · done (OPS-7 Done)"
        );
    }
}
