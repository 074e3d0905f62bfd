//! Scheduler behaviour on tokio's paused clock, with a chat that records what was posted when.

use super::*;
use crate::chat::console::parse_line;
use crate::commands::{self, Invocation, Outcome};
use crate::config::Config;
use crate::domain::{Actor, Cadence, EventKind, IncidentId, UserRef};
use crate::error::CommandError;
use crate::jobs::job_nonce as nonce;
use crate::message::{Embed, Post};
use crate::store::Store;
use crate::testkit::{t0, Sent, TestApp};
use chrono::TimeZone;
use std::sync::atomic::Ordering;

const STAKEHOLDERS: u64 = 1;

fn m(minutes: i64) -> i64 {
    minutes * 60
}

/// The test kit's app on the recording chat, with the scheduler running on tokio's paused clock.
type Harness = TestApp;

/// What these tests do with the kit's app.
trait SchedulerHarness {
    fn new(config: Config) -> Self;

    fn on(config: Config, store: Store) -> Self;

    /// Runs a command as alice, typed in the incident's channel when there is one.
    async fn run(&self, line: &str) -> Result<Outcome, CommandError>;

    async fn ok(&self, line: &str) -> Outcome;

    /// When scheduled status updates reached `channel`.
    fn updates(&self, channel: u64) -> Vec<i64>;

    /// Reminders to the commander (the opening post has the same button, in an embed).
    fn reminders(&self) -> Vec<Sent>;

    /// The timed jobs, without the posts waiting in the outbox.
    fn timed_jobs(&self) -> Vec<Job>;

    fn channel_of(&self, id: u64) -> u64;
}

impl SchedulerHarness for TestApp {
    fn new(config: Config) -> Self {
        Self::on(config, Store::temporary().unwrap())
    }

    fn on(config: Config, store: Store) -> Self {
        TestApp::builder()
            .config(config)
            .store(store)
            .paused_clock_at(t0())
            .stakeholders(Some(STAKEHOLDERS))
            .scheduler()
            .build()
    }

    async fn run(&self, line: &str) -> Result<Outcome, CommandError> {
        let channel = self
            .app
            .store
            .latest_incident()
            .unwrap()
            .and_then(|i| i.channel);
        let inv = Invocation {
            user: UserRef::new(7, "alice"),
            member_roles: Vec::new(),
            channel,
            input: parse_line(line).unwrap(),
        };
        commands::run(&self.app, &inv).await
    }

    async fn ok(&self, line: &str) -> Outcome {
        match self.run(line).await {
            Ok(o) => o,
            Err(e) => panic!("{line}: {e}"),
        }
    }

    fn updates(&self, channel: u64) -> Vec<i64> {
        self.sent()
            .into_iter()
            .filter(|s| s.channel == channel && is_status_update(&s.post))
            .map(|s| s.at)
            .collect()
    }

    fn reminders(&self) -> Vec<Sent> {
        self.sent()
            .into_iter()
            .filter(|s| {
                s.post.embed.is_none() && s.post.buttons.iter().any(|b| b.label == "Post update")
            })
            .collect()
    }

    fn timed_jobs(&self) -> Vec<Job> {
        let all = self.app.store.jobs().unwrap();
        all.into_iter()
            .filter(|j| !matches!(j.kind, JobKind::Post { .. }))
            .collect()
    }

    fn channel_of(&self, id: u64) -> u64 {
        self.app
            .store
            .incident(IncidentId(id))
            .unwrap()
            .unwrap()
            .channel
            .unwrap()
    }
}

fn is_status_update(post: &Post) -> bool {
    post.embed
        .as_ref()
        .is_some_and(|e| e.title.starts_with("Status update · "))
}

#[tokio::test(start_paused = true)]
async fn each_severity_has_its_cadence_and_both_channels_get_it() {
    let h = Harness::new(untyped());
    h.ok("/incident open title:\"Checkout down\" severity:SEV1")
        .await;
    h.ok("/incident open title:\"Search slow\" severity:SEV2")
        .await;
    h.ok("/incident open title:\"Typo\" severity:SEV4").await;
    h.at(m(61)).await;
    let (one, two, four) = (h.channel_of(1), h.channel_of(2), h.channel_of(3));
    assert_eq!(h.updates(one), [m(15), m(30), m(45), m(60)]);
    assert_eq!(h.updates(two), [m(30), m(60)]);
    assert_eq!(
        h.updates(four),
        [] as [i64; 0],
        "SEV4 has no cadence by default"
    );
    // At 30m and 60m both incidents are due together: one digest message carries both.
    assert_eq!(h.updates(STAKEHOLDERS), [m(15), m(30), m(45), m(60)]);
    let carried: Vec<Vec<String>> = h
        .sent()
        .into_iter()
        .filter(|s| s.channel == STAKEHOLDERS && is_status_update(&s.post))
        .map(|s| s.post.embeds().map(|e| e.title.clone()).collect())
        .collect();
    assert_eq!(
        carried[1],
        [
            "Status update · INC-1 · Checkout down",
            "Status update · INC-2 · Search slow"
        ]
    );
    assert_eq!(carried.iter().map(Vec::len).sum::<usize>(), 6);
    let stakeholder = h
        .sent()
        .into_iter()
        .find(|s| s.channel == STAKEHOLDERS && is_status_update(&s.post))
        .unwrap();
    let embed = stakeholder.post.embed.unwrap();
    assert_eq!(embed.colour, Some(0xd0021b), "coloured by severity");
    for part in [
        "**Status:** Investigating for 15m · SEV1",
        "**Impact:**",
        "**Current understanding:** No update from the team yet.",
        "**Actions:** none recorded yet.",
        "The team has not posted an update yet.",
        "**Next update:** <t:1795257000:f>",
    ] {
        assert!(
            embed.description.contains(part),
            "{part:?} in:\n{}",
            embed.description
        );
    }
    // The timeline says what went out.
    let events = h.app.store.events(IncidentId(1)).unwrap();
    let automated = events
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                EventKind::StatusPosted {
                    automated: true,
                    ..
                }
            ) && e.actor == Actor::Scheduler
        })
        .count();
    assert_eq!(automated, 4);
}

#[tokio::test(start_paused = true)]
async fn a_cron_cadence_fires_on_its_schedule() {
    let mut config = Config::default();
    let sev3 = config.severities.get_mut("SEV3").unwrap();
    sev3.update_every = None;
    sev3.update_cron = Some("0 7,27,47 * * * *".into());
    let h = Harness::new(config);
    h.ok("/incident open title:x severity:SEV3").await;
    h.at(m(50)).await;
    assert_eq!(h.updates(h.channel_of(1)), [m(7), m(27), m(47)]);
}

#[tokio::test(start_paused = true)]
async fn an_incident_can_override_its_cadence_and_go_back() {
    let h = Harness::new(untyped());
    h.ok("/incident open title:x severity:SEV2").await;
    h.at(m(5)).await;
    let out = h.ok("/incident cadence every:10m").await;
    let reply = &out.reply.post.content;
    assert!(reply.contains("every 10m; the next in 10m"), "{reply}");
    h.at(m(36)).await;
    let ch = h.channel_of(1);
    assert_eq!(h.updates(ch), [m(15), m(25), m(35)]);

    h.ok("/incident cadence off:true").await;
    h.at(m(120)).await;
    assert_eq!(h.updates(ch).len(), 3, "off means off");
    assert_eq!(h.app.store.jobs().unwrap(), []);

    h.ok("/incident cadence default:true").await;
    h.at(m(151)).await;
    assert_eq!(
        h.updates(ch),
        [m(15), m(25), m(35), m(150)],
        "SEV2's 30m, from now"
    );
}

#[tokio::test(start_paused = true)]
async fn changing_severity_changes_the_cadence_and_drops_the_override() {
    let h = Harness::new(untyped());
    h.ok("/incident open title:x severity:SEV3").await;
    h.ok("/incident cadence every:45m").await;
    h.at(m(10)).await;
    let out = h.ok("/incident severity level:SEV1").await;
    let reply = &out.reply.post.content;
    assert!(reply.contains("every 15m; the next in 15m"), "{reply}");
    h.at(m(41)).await;
    assert_eq!(h.updates(h.channel_of(1)), [m(25), m(40)]);
    let inc = h.app.store.incident(IncidentId(1)).unwrap().unwrap();
    assert_eq!(inc.cadence, None);
}

#[tokio::test(start_paused = true)]
async fn the_commander_is_reminded_only_when_the_team_was_quiet() {
    let h = Harness::new(untyped());
    h.ok("/incident open title:x severity:SEV1").await;
    let ch = h.channel_of(1);
    h.at(m(16)).await;
    let first = h.reminders();
    assert_eq!(first.len(), 1, "nothing said since the declaration");
    let r = &first[0];
    assert_eq!((r.at, r.channel), (m(15), ch));
    assert!(r
        .post
        .content
        .starts_with("<@7>, stakeholders have had no update on INC-1"));
    assert_eq!(
        r.post.mentions.user_ids(),
        [7],
        "pings the commander and nobody else"
    );
    assert!(r.post.mentions.role_ids().is_empty());
    assert_eq!(r.post.buttons[0].custom_id, "incident:update:1");

    h.at(m(20)).await;
    h.ok("/incident update message:\"Rolling back v2.3\"").await;
    h.at(m(31)).await;
    assert_eq!(
        h.reminders().len(),
        1,
        "an update since the last tick: no reminder"
    );
    let latest = h
        .sent()
        .into_iter()
        .rfind(|s| s.channel == STAKEHOLDERS)
        .unwrap();
    let text = latest.post.embed.unwrap().description;
    assert!(text.contains("Rolling back v2.3"), "{text}");
    assert!(
        text.contains("Last update from the team: <t:1795256400"),
        "{text}"
    );

    h.at(m(46)).await;
    let reminders = h.reminders();
    assert_eq!(reminders.len(), 2, "quiet again since the 30m tick");
    assert!(reminders[1].post.content.contains("repeats the last one"));
    assert_eq!(
        h.updates(STAKEHOLDERS),
        [m(15), m(30), m(45)],
        "stakeholders still hear"
    );
    let reminded = h
        .app
        .store
        .events(IncidentId(1))
        .unwrap()
        .into_iter()
        .filter(|e| matches!(e.kind, EventKind::UpdateReminderSent { .. }))
        .count();
    assert_eq!(reminded, 2);
}

#[tokio::test(start_paused = true)]
async fn resolving_cancels_and_reopening_restarts() {
    let h = Harness::new(untyped());
    h.ok("/incident open title:x severity:SEV1").await;
    h.at(m(20)).await;
    h.ok("/incident resolve summary:\"Rolled back\"").await;
    let left: Vec<JobKind> = h.timed_jobs().into_iter().map(|j| j.kind).collect();
    assert_eq!(
        left,
        [JobKind::Archive],
        "only the channel's archival a day later"
    );
    h.at(m(120)).await;
    let ch = h.channel_of(1);
    assert_eq!(h.updates(ch), [m(15)]);
    let out = h.ok("/incident reopen reason:\"Errors are back\"").await;
    assert!(out.reply.post.content.contains("the next in 15m"));
    h.at(m(136)).await;
    assert_eq!(h.updates(ch), [m(15), m(135)]);
}

#[tokio::test(start_paused = true)]
async fn an_overdue_job_fires_once_after_a_restart() {
    let mut h = Harness::new(untyped());
    h.ok("/incident open title:x severity:SEV1").await;
    h.at(m(1)).await;
    h.stop_scheduler().await;
    let before = h.sent().len();
    // Down across the 15m, 30m and 45m ticks.
    h.at(m(50)).await;
    assert_eq!(h.sent().len(), before);
    h.start_scheduler();
    h.at(m(64)).await;
    let ch = h.channel_of(1);
    assert_eq!(h.updates(ch), [m(50)], "once, not once per missed tick");
    h.at(m(66)).await;
    assert_eq!(
        h.updates(ch),
        [m(50), m(65)],
        "the next counts from the late one"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_post_is_retried_with_backoff_and_the_same_nonces() {
    let h = Harness::new(untyped());
    h.ok("/incident open title:x severity:SEV1").await;
    let ch = h.channel_of(1);
    let job = h.app.store.next_job().unwrap().unwrap();
    // The opening posts go out first.
    h.at(1).await;
    let opening = h.sent().len();
    assert_eq!(opening, 2);
    // The update to the channel and the stakeholders' copy both fail at 15m; the reminder waits
    // behind the channel's update.
    h.chat.failures.store(2, Ordering::SeqCst);
    h.at(m(15) + 1).await;
    assert_eq!(h.sent().len(), opening);
    let waiting: Vec<Job> = h
        .app
        .store
        .outbox()
        .unwrap()
        .into_iter()
        .filter(|j| j.attempts == 1)
        .collect();
    assert_eq!(waiting.len(), 2, "kept, not dropped: {waiting:?}");
    assert!(waiting.iter().all(|j| j.first_attempt == Some(job.due)
        && j.runs_at() == job.due + chrono::Duration::seconds(2)));
    h.at(m(15) + 3).await;
    assert_eq!(h.updates(ch), [m(15) + 2]);
    let nonces: Vec<String> = h.sent()[opening..]
        .iter()
        .map(|s| s.post.nonce.clone().unwrap())
        .collect();
    // The stakeholders' copy is queued in the outbox with the update to the channel.
    let expected = [
        nonce(&job, 's', ch),
        nonce(&job, 'r', ch),
        nonce(&job, 's', STAKEHOLDERS),
    ];
    assert_eq!(nonces, expected, "the nonces of the original tick");
    let recorded = h
        .app
        .store
        .events(IncidentId(1))
        .unwrap()
        .into_iter()
        .filter(|e| {
            matches!(
                e.kind,
                EventKind::StatusPosted {
                    automated: true,
                    ..
                }
            )
        })
        .count();
    assert_eq!(recorded, 1);
    let next = h.app.store.next_job().unwrap().unwrap();
    assert_eq!((next.attempts, next.retry_at), (0, None));
    assert_eq!(
        next.due,
        job.due + chrono::Duration::seconds(m(15)),
        "15m after the tick the update was recorded at"
    );
}

#[tokio::test(start_paused = true)]
async fn a_job_moved_while_others_fire_is_not_fired_stale() {
    let h = Harness::new(untyped());
    h.ok("/incident open title:one severity:SEV1").await;
    h.ok("/incident open title:two severity:SEV1").await;
    // Both are due at 15m; while INC-1's update is being posted, INC-2 gets a 30m cadence.
    let app = h.app.clone();
    *h.chat.meanwhile.lock().unwrap() = Some(Box::new(move || {
        let at = app
            .store
            .job(IncidentId(2), &JobKind::StatusUpdate)
            .unwrap()
            .unwrap()
            .due;
        let cadence = Some(Cadence::Every { seconds: 1800 });
        app.record(
            IncidentId(2),
            &Actor::User(UserRef::new(7, "alice")),
            at,
            |i| i.decide_cadence(cadence.clone(), true),
        )
        .unwrap();
    }));
    h.at(m(16)).await;
    assert_eq!(h.updates(h.channel_of(1)), [m(15)]);
    assert_eq!(h.updates(h.channel_of(2)), [] as [i64; 0]);
    h.at(m(46)).await;
    assert_eq!(h.updates(h.channel_of(2)), [m(45)]);
}

#[test]
fn nonces_are_deterministic_short_and_distinct() {
    let t = Utc.with_ymd_and_hms(2026, 11, 21, 10, 15, 0).unwrap();
    let job = Job::new(IncidentId(12345), JobKind::StatusUpdate, t);
    let channel = 1_234_567_890_123_456_789;
    let a = nonce(&job, 's', channel);
    assert_eq!(a, nonce(&job.clone(), 's', channel));
    assert!(a.len() <= 25, "{a}");
    let retried = Job {
        attempts: 3,
        retry_at: Some(t + chrono::Duration::minutes(2)),
        ..job.clone()
    };
    assert_eq!(a, nonce(&retried, 's', channel), "retries keep the nonce");
    let later = Job::new(
        IncidentId(12345),
        JobKind::StatusUpdate,
        t + chrono::Duration::minutes(15),
    );
    let others = [
        nonce(&job, 'r', channel),
        nonce(&job, 's', channel + 1),
        nonce(&later, 's', channel),
        nonce(
            &Job::new(IncidentId(12346), JobKind::StatusUpdate, t),
            's',
            channel,
        ),
    ];
    for o in others {
        assert_ne!(a, o);
    }
    // Pinned: a nonce that changed between builds would defeat a replay after an upgrade.
    assert_eq!(a, "s1c6acb72f212e41f");
}

#[test]
fn backoff_doubles_up_to_a_cap() {
    assert_eq!(RETRY.after(0), Duration::from_secs(30));
    assert_eq!(RETRY.after(1), Duration::from_secs(60));
    assert_eq!(RETRY.after(20), RETRY.max);
}

/// Incidents without a type: their posts at open are the opening post and the announcement,
/// with no checklist between them.
fn untyped() -> Config {
    let mut c = Config::default();
    c.types.clear();
    c
}

fn title(post: &Post) -> &str {
    post.embed.as_ref().map_or("", |e| e.title.as_str())
}

#[tokio::test(start_paused = true)]
async fn a_commands_posts_go_out_at_once_through_the_outbox() {
    let h = Harness::new(untyped());
    let out = h.ok("/incident open title:x severity:SEV1").await;
    assert_eq!(out.posts.len(), 2, "the outcome tells what was queued");
    tokio::time::sleep(Duration::from_millis(10)).await;
    let ch = h.channel_of(1);
    let sent: Vec<(i64, u64, String)> = h
        .sent()
        .into_iter()
        .map(|s| (s.at, s.channel, title(&s.post).to_string()))
        .collect();
    assert_eq!(
        sent,
        [
            (0, ch, "INC-1 · x".to_string()),
            (0, STAKEHOLDERS, "INC-1 · x".to_string())
        ],
        "the opening post, then the announcement, without waiting for a tick"
    );
    assert_eq!(h.app.store.outbox().unwrap(), [], "forgotten once sent");
    assert_eq!(h.timed_jobs().len(), 1, "the status update stays scheduled");
}

#[tokio::test(start_paused = true)]
async fn an_outbox_post_is_retried_with_backoff_and_its_nonce_and_its_channel_waits() {
    let h = Harness::new(untyped());
    // The opening post fails at 0 s and 2 s; the announcement at 0 s.
    h.chat.failures.store(3, Ordering::SeqCst);
    h.ok("/incident open title:x severity:SEV1").await;
    let queued = h.app.store.outbox().unwrap();
    assert_eq!(queued.len(), 2, "on disk before the reply");
    h.at(1).await;
    h.ok("/incident update message:\"Rolling back\"").await;
    let queued: Vec<Job> = queued
        .into_iter()
        .chain(h.app.store.outbox().unwrap().into_iter().skip(2))
        .collect();
    let seqs: Vec<u64> = queued
        .iter()
        .map(|j| match j.kind {
            JobKind::Post { seq, .. } => seq,
            _ => panic!("{j:?}"),
        })
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4], "numbered in the order queued");
    h.at(10).await;

    let ch = h.channel_of(1);
    let sent: Vec<(i64, u64, String)> = h
        .sent()
        .into_iter()
        .map(|s| (s.at, s.channel, title(&s.post).to_string()))
        .collect();
    assert_eq!(
        sent,
        [
            (2, STAKEHOLDERS, "INC-1 · x".to_string()),
            (2, STAKEHOLDERS, "Update · INC-1 · x".to_string()),
            (6, ch, "INC-1 · x".to_string()),
            (6, ch, "Update · INC-1 · x".to_string()),
        ],
        "each channel in order: the update waits for the opening post"
    );
    // Each post kept its nonce across attempts, and no two posts share one.
    let tried = h.chat.tried.lock().unwrap().clone();
    let expected = |n: usize| {
        let job = &queued[n];
        let JobKind::Post { channel, .. } = job.kind else {
            unreachable!()
        };
        (channel, Some(nonce(job, 'o', channel)))
    };
    let attempts = |n: usize| -> Vec<i64> {
        let (channel, nonce) = expected(n);
        tried
            .iter()
            .filter(|(_, c, x)| *c == channel && *x == nonce)
            .map(|(at, _, _)| *at)
            .collect()
    };
    assert_eq!(attempts(0), [0, 2, 6], "2 s, then twice as long");
    assert_eq!(attempts(1), [0, 2]);
    assert_eq!(attempts(2), [6], "never tried ahead of the opening post");
    assert_eq!(attempts(3), [2]);
    assert_eq!(tried.len(), 7, "every attempt is one of the above");
    let nonces: std::collections::HashSet<_> = (0..4).map(|n| expected(n).1).collect();
    assert_eq!(nonces.len(), 4);
    assert_eq!(h.app.store.outbox().unwrap(), []);
}

#[tokio::test(start_paused = true)]
async fn a_post_the_chat_keeps_refusing_is_dropped_and_its_channel_moves_on() {
    let h = Harness::new(untyped());
    // Both posts are refused at 0, 2, 6 and 14 s; at 30 s the opening post is refused a fifth
    // time and dropped, and the announcement goes out.
    h.chat
        .refusals
        .store(2 * outbox::MAX_REFUSALS - 1, Ordering::SeqCst);
    h.ok("/incident open title:x severity:SEV1").await;
    h.at(m(5)).await;
    let ch = h.channel_of(1);
    let sent: Vec<(i64, u64, String)> = h
        .sent()
        .into_iter()
        .map(|s| (s.at, s.channel, title(&s.post).to_string()))
        .collect();
    assert_eq!(sent, [(30, STAKEHOLDERS, "INC-1 · x".to_string())]);
    assert_eq!(
        h.app.store.outbox().unwrap(),
        [],
        "dropped, not retried for ever"
    );
    h.ok("/incident update message:\"Rolling back\"").await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(
        h.sent()
            .iter()
            .filter(|s| s.channel == ch && title(&s.post).starts_with("Update"))
            .count(),
        1,
        "the channel is not held up by the dropped post"
    );
}

#[tokio::test(start_paused = true)]
async fn posts_queued_before_a_crash_go_out_once_the_scheduler_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut h = Harness::on(untyped(), store.clone());
    h.stop_scheduler().await;
    h.ok("/incident open title:x severity:SEV1").await;
    h.at(30).await;
    assert!(
        h.sent().is_empty(),
        "nothing delivers while the scheduler is down"
    );
    drop(h);
    drop(store);
    // A new process on the same database.
    let h = Harness::on(untyped(), Store::open(dir.path()).unwrap());
    tokio::time::sleep(Duration::from_millis(10)).await;
    let channels: Vec<u64> = h.sent().iter().map(|s| s.channel).collect();
    assert_eq!(channels, [h.channel_of(1), STAKEHOLDERS]);
}

/// Jobs as builds before the outbox wrote them: they must read the same, and write the same.
#[test]
fn jobs_stored_by_older_builds_still_decode() {
    let t = |min: i64| {
        Utc.with_ymd_and_hms(2026, 11, 21, 10, 0, 0).unwrap() + chrono::Duration::minutes(min)
    };
    let cases = [
        (
            r#"{"incident":3,"kind":{"job":"status_update"},"due":"2026-11-21T10:15:00Z","attempts":0,"retry_at":null}"#,
            Job::new(IncidentId(3), JobKind::StatusUpdate, t(15)),
        ),
        (
            r#"{"incident":3,"kind":{"job":"escalation_timeout","escalation":1,"level":2,"policy":"default"},"due":"2026-11-21T10:15:00Z","attempts":2,"retry_at":"2026-11-21T10:17:00Z"}"#,
            Job {
                attempts: 2,
                retry_at: Some(t(17)),
                ..Job::new(
                    IncidentId(3),
                    JobKind::EscalationTimeout {
                        escalation: 1,
                        level: 2,
                        policy: Some("default".into()),
                    },
                    t(15),
                )
            },
        ),
        (
            r#"{"incident":3,"kind":{"job":"stuck_nudge"},"due":"2026-11-21T10:15:00Z","attempts":0,"retry_at":null}"#,
            Job::new(IncidentId(3), JobKind::StuckNudge, t(15)),
        ),
        (
            r#"{"incident":3,"kind":{"job":"archive"},"due":"2026-11-21T10:15:00Z","attempts":0,"retry_at":null}"#,
            Job::new(IncidentId(3), JobKind::Archive, t(15)),
        ),
    ];
    for (json, job) in cases {
        let mut bytes = vec![crate::store::SCHEMA_VERSION];
        bytes.extend_from_slice(json.as_bytes());
        let read: Job = crate::store::decode("jobs", &bytes).unwrap();
        assert_eq!(read, job);
        assert_eq!(crate::store::encode(&job), bytes, "written as before");
    }
    // The oldest, from before retries were counted, and before ladders had policies.
    let oldest = br#"{"incident":3,"kind":{"job":"escalation_timeout","escalation":1,"level":2},"due":"2026-11-21T10:15:00Z"}"#;
    let mut bytes = vec![crate::store::SCHEMA_VERSION];
    bytes.extend_from_slice(oldest);
    let read: Job = crate::store::decode("jobs", &bytes).unwrap();
    assert_eq!((read.attempts, read.retry_at), (0, None));
    assert!(matches!(
        read.kind,
        JobKind::EscalationTimeout { policy: None, .. }
    ));
}

#[test]
fn outbox_backoff_starts_short_and_is_capped() {
    assert_eq!(outbox::RETRY.after(0), Duration::from_secs(2));
    assert_eq!(outbox::RETRY.after(1), Duration::from_secs(4));
    assert_eq!(outbox::RETRY.after(30), Duration::from_secs(120));
}

#[tokio::test(start_paused = true)]
async fn updates_due_together_share_digest_messages_within_discords_limits() {
    let h = Harness::new(untyped());
    for n in 1..=23 {
        h.ok(&format!(
            "/incident open title:\"Outage {n}\" severity:SEV1"
        ))
        .await;
    }
    h.at(m(15) + 1).await;
    let digests: Vec<Post> = h
        .sent()
        .into_iter()
        .filter(|s| s.channel == STAKEHOLDERS && is_status_update(&s.post))
        .map(|s| s.post)
        .collect();
    let titles: Vec<String> = digests
        .iter()
        .flat_map(|p| p.embeds().map(|e| e.title.clone()))
        .collect();
    let expected: Vec<String> = (1..=23)
        .map(|n| format!("Status update · INC-{n} · Outage {n}"))
        .collect();
    assert_eq!(titles, expected, "every incident once, in order");
    assert!(
        (3..=4).contains(&digests.len()),
        "{} messages",
        digests.len()
    );
    for d in &digests {
        assert!(d.embeds().count() <= 10);
        assert!(d.embeds().map(Embed::chars).sum::<usize>() <= crate::message::MAX_EMBED_TOTAL);
        assert!(d.content.is_empty() && d.buttons.is_empty() && d.files.is_empty());
        assert!(d.nonce.as_deref().is_some_and(|n| n.starts_with('d')));
    }
    // Each incident's own channel still gets its own update.
    for n in 1..=23 {
        assert_eq!(h.updates(h.channel_of(n)), [m(15)]);
    }
    assert!(h.app.store.outbox().unwrap().is_empty());
}
