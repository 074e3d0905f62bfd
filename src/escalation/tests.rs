//! Ladders on tokio's paused clock, with a chat that records what was posted and edited when.

use super::*;
use crate::chat::console::parse_line;
use crate::commands::{self, Invocation, Outcome};
use crate::config::{Dur, EscalationPolicy, EscalationTarget};
use crate::error::CommandError;
use crate::scheduler::Scheduler;
use crate::store::Store;
use crate::testkit::{t0, Sent, TestApp};
use chrono::TimeZone;

const DBA: u64 = 11;
const ONCALL: u64 = 21;
const LEAD: u64 = 31;
const ALICE: u64 = 7;

fn m(minutes: i64) -> i64 {
    minutes * 60
}

fn target(roles: &[u64]) -> EscalationTarget {
    EscalationTarget {
        roles: roles.to_vec(),
        pagerduty_routing_key_env: None,
        description: None,
        schedule: None,
    }
}

/// dba, sre-oncall and sre-lead; the default policy climbs sre-oncall → sre-lead, 10m a level.
/// No scheduled status updates, so that only escalation posts are sent.
fn config() -> Config {
    let mut c = Config::default();
    for sev in c.severities.values_mut() {
        sev.update_every = None;
    }
    let e = &mut c.escalation;
    e.targets.insert("dba".into(), target(&[DBA]));
    e.targets.insert("sre-oncall".into(), target(&[ONCALL]));
    e.targets.insert("sre-lead".into(), target(&[LEAD]));
    e.targets.insert("nobody".into(), target(&[]));
    e.policies.insert(
        "default".into(),
        EscalationPolicy {
            levels: vec!["sre-oncall".into(), "sre-lead".into()],
            ack_timeout: Dur(Duration::from_secs(600)),
        },
    );
    e.stuck_after = Dur(Duration::ZERO);
    c
}

/// The test kit's app on the recording chat (no stakeholder channel), with the scheduler running
/// on tokio's paused clock.
type Harness = TestApp;

/// What these tests do with the kit's app.
trait EscalationHarness {
    fn new(config: Config) -> Self;

    fn channel(&self) -> u64;

    /// Runs a command as alice in `channel` (the latest incident's when `None`).
    async fn run_in(&self, line: &str, channel: Option<u64>) -> Result<Outcome, CommandError>;

    /// Waits (without letting the paused clock move) until the running scheduler has sent the
    /// posts a command queued, so that what a test sees next does not depend on when that task
    /// happened to be polled.
    async fn drain_outbox(&self);

    async fn ok(&self, line: &str) -> Outcome;

    async fn err(&self, line: &str, channel: Option<u64>) -> String;

    /// Pages sent so far: when, and the roles they pinged.
    fn pages(&self) -> Vec<(i64, Vec<u64>)>;

    fn incident(&self) -> Incident;

    fn steps(&self) -> Vec<String>;
}

impl EscalationHarness for TestApp {
    fn new(config: Config) -> Self {
        TestApp::builder()
            .config(config)
            .paused_clock_at(t0())
            .stakeholders(None)
            .scheduler()
            .build()
    }

    fn channel(&self) -> u64 {
        self.app
            .store
            .latest_incident()
            .unwrap()
            .and_then(|i| i.channel)
            .unwrap()
    }

    async fn run_in(&self, line: &str, channel: Option<u64>) -> Result<Outcome, CommandError> {
        let channel = channel.or_else(|| {
            self.app
                .store
                .latest_incident()
                .unwrap()
                .and_then(|i| i.channel)
        });
        let inv = Invocation {
            user: UserRef::new(ALICE, "alice"),
            member_roles: Vec::new(),
            channel,
            input: parse_line(line).unwrap(),
        };
        // The posts of an open (queued for the scheduler) and the "what changed" post after it
        // are another feature's; only resolve's follow-up matters.
        if inv.input.path() != "incident open" {
            let out = commands::run(&self.app, &inv).await?;
            commands::after(&self.app, &inv, &out).await;
            self.drain_outbox().await;
            return Ok(out);
        }
        let quiet = &self.chat.unrecorded;
        quiet.store(true, std::sync::atomic::Ordering::SeqCst);
        let out = commands::run(&self.app, &inv).await;
        if out.is_ok() {
            Scheduler::new(self.app.clone())
                .deliver_outbox()
                .await
                .unwrap();
        }
        quiet.store(false, std::sync::atomic::Ordering::SeqCst);
        out
    }

    async fn drain_outbox(&self) {
        if !self.scheduler_running() {
            return;
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while !self.app.store.outbox().unwrap().is_empty() && std::time::Instant::now() < deadline {
            tokio::task::yield_now().await;
        }
    }

    async fn ok(&self, line: &str) -> Outcome {
        match self.run_in(line, None).await {
            Ok(o) => o,
            Err(e) => panic!("{line}: {e}"),
        }
    }

    async fn err(&self, line: &str, channel: Option<u64>) -> String {
        match self.run_in(line, channel).await {
            Ok(o) => panic!("{line} succeeded: {:?}", o.reply),
            Err(e) => e.to_chat("test"),
        }
    }

    fn pages(&self) -> Vec<(i64, Vec<u64>)> {
        self.sent()
            .into_iter()
            .filter(|s| s.post.buttons.iter().any(|b| b.label == "Acknowledge"))
            .map(|s| (s.at, s.post.mentions.role_ids().to_vec()))
            .collect()
    }

    fn incident(&self) -> Incident {
        self.app.store.latest_incident().unwrap().unwrap()
    }

    fn steps(&self) -> Vec<String> {
        self.app
            .store
            .events(self.incident().id)
            .unwrap()
            .into_iter()
            .filter(|e| e.kind.name().starts_with("escalat"))
            .map(|e| e.kind.describe())
            .collect()
    }
}

async fn ack(h: &Harness, n: u32, user: UserRef, roles: &[u64]) -> Result<String, CommandError> {
    acknowledge(&h.app, h.incident().id, n, &user, roles).await
}

#[tokio::test(start_paused = true)]
async fn a_ladder_climbs_level_by_level_then_tells_the_commander() {
    let h = Harness::new(config());
    h.ok("/incident open title:\"Orders stuck\" severity:SEV2")
        .await;
    h.at(m(1)).await;
    let out = h
        .ok("/escalate target:dba reason:\"replica lag 40s\"")
        .await;
    let reply = &out.reply.post.content;
    assert!(
        reply.contains("escalated INC-1 to **dba** (policy default). If nobody acknowledges within 10m, **sre-oncall** is paged next."),
        "{reply}"
    );
    h.at(m(35)).await;
    assert_eq!(
        h.pages(),
        [
            (m(1), vec![DBA]),
            (m(11), vec![ONCALL]),
            (m(21), vec![LEAD])
        ],
        "one level every 10m, each pinging its own roles only"
    );
    let first = &h.sent()[0].post;
    assert!(first.mentions.user_ids().is_empty());
    assert!(first
        .content
        .starts_with("<@&11> you are needed on **INC-1** (SEV2)."));
    let embed = first.embed.as_ref().unwrap();
    assert!(embed.title.starts_with("Escalation · INC-1 · Orders stuck"));
    for part in [
        "**Severity:** SEV2 (Major)",
        "**Commander:** <@7>",
        "**Reason:** replica lag 40s",
        "**Paged:** dba (level 1) · escalated by <@7>",
        "Then **sre-oncall** is paged.",
    ] {
        assert!(
            embed.description.contains(part),
            "{part:?} in {}",
            embed.description
        );
    }
    let second = &h.sent()[1].post;
    assert!(second
        .content
        .contains("nobody from **dba** acknowledged in time"));
    assert!(second
        .embed
        .as_ref()
        .unwrap()
        .description
        .contains("**Reason:** replica lag 40s"));

    let told = h.sent().last().cloned().unwrap();
    assert_eq!(told.at, m(31), "past the last level, the commander is told");
    assert!(
        told.post.content.starts_with("<@7>, nobody acknowledged escalation #1 of **INC-1**: dba → sre-oncall → sre-lead paged, 10m each."),
        "{}",
        told.post.content
    );
    assert_eq!(told.post.mentions.user_ids(), [ALICE]);
    assert!(told.post.mentions.role_ids().is_empty());
    assert_eq!(
        h.steps(),
        [
            "Escalated to dba (level 1): replica lag 40s",
            "Escalation #1 not acknowledged at level 1",
            "Escalated to sre-oncall (level 2): replica lag 40s",
            "Escalation #1 not acknowledged at level 2",
            "Escalated to sre-lead (level 3): replica lag 40s",
            "Escalation #1 not acknowledged at level 3",
        ]
    );
    assert!(h.incident().escalations.get(1).unwrap().exhausted());
    assert_eq!(h.app.store.jobs().unwrap(), []);
    h.at(m(120)).await;
    assert_eq!(
        h.sent().len(),
        4,
        "nothing more after the commander was told"
    );
}

#[tokio::test(start_paused = true)]
async fn a_target_on_the_ladder_starts_there_and_no_policy_pages_it_alone() {
    let mut c = config();
    c.escalation.default_policy = None;
    c.escalation.policies.insert(
        "fast".into(),
        EscalationPolicy {
            levels: vec!["dba".into(), "sre-lead".into()],
            ack_timeout: Dur(Duration::from_secs(60)),
        },
    );
    let h = Harness::new(c);
    h.ok("/incident open title:x severity:SEV1").await;
    h.ok("/escalate target:sre-lead reason:\"need a decision\"")
        .await;
    h.ok("/escalate target:DBA reason:\"lag\" policy:fast")
        .await;
    h.at(m(12)).await;
    // The default policy starts at sre-lead, its last level; `fast` starts at dba.
    assert_eq!(
        h.pages(),
        [(0, vec![LEAD]), (0, vec![DBA]), (m(1), vec![LEAD])]
    );
    let two = h.incident().escalations.get(2).unwrap().clone();
    assert_eq!(two.targets(), ["dba", "sre-lead"], "names as configured");

    let mut alone = config();
    alone.escalation.policies.clear();
    alone.escalation.ack_timeout = Dur(Duration::from_secs(300));
    let h = Harness::new(alone);
    h.ok("/incident open title:x severity:SEV1").await;
    let out = h.ok("/escalate target:dba reason:lag").await;
    assert!(out
        .reply
        .post
        .content
        .contains("If nobody acknowledges within 5m, the commander is told."));
    h.at(m(6)).await;
    assert_eq!(h.pages(), [(0, vec![DBA])]);
    assert!(h.sent()[1].post.content.contains("dba paged, 5m each"));
}

#[tokio::test(start_paused = true)]
async fn a_role_holder_acknowledges_and_the_ladder_stops() {
    let h = Harness::new(config());
    h.ok("/incident open title:x severity:SEV1").await;
    h.ok("/escalate target:dba reason:lag").await;
    h.at(m(12)).await;
    assert_eq!(h.pages().len(), 2);

    let bob = UserRef::new(8, "bob");
    let refused = ack(&h, 1, bob.clone(), &[99]).await.unwrap_err();
    let text = refused.to_chat("test");
    assert!(
        text.contains("only members of <@&11>, <@&21> or INC-1's commander may"),
        "{text}"
    );
    assert!(h.edited().is_empty(), "a refusal changes nothing");

    // Holders of an earlier level's roles may still answer.
    let dana = UserRef::new(9, "dana");
    let text = ack(&h, 1, dana.clone(), &[5, DBA]).await.unwrap();
    assert!(
        text.contains("You acknowledged escalation #1 of INC-1 after 12m"),
        "{text}"
    );
    let again = ack(&h, 1, bob, &[ONCALL])
        .await
        .unwrap_err()
        .to_chat("test");
    assert!(again.contains("already acknowledged by dana"), "{again}");

    let edits = h.edited();
    let pages: Vec<u64> = h
        .sent()
        .iter()
        .filter(|s| !s.post.buttons.is_empty())
        .map(|s| s.id)
        .collect();
    assert_eq!(
        edits.iter().map(|e| e.message).collect::<Vec<_>>(),
        pages,
        "both pages show it"
    );
    for e in &edits {
        assert_eq!(e.at, m(12));
        assert!(e.post.buttons.is_empty());
        assert_eq!(e.post.mentions, Mentions::none());
        let d = &e.post.embed.as_ref().unwrap().description;
        assert!(
            d.contains("**Acknowledged** by <@9> at <t:") && d.contains("time to acknowledge 12m"),
            "{d}"
        );
    }
    h.at(m(60)).await;
    assert_eq!(h.pages().len(), 2, "nobody else is paged");
    let ev = h.app.store.events(h.incident().id).unwrap();
    let acked = ev
        .iter()
        .find(|e| matches!(e.kind, EventKind::EscalationAcknowledged { escalation: 1 }))
        .unwrap();
    assert_eq!(acked.actor, Actor::User(dana), "who and when are recorded");
    assert_eq!(
        h.incident().escalations.get(1).unwrap().tta(),
        Some(chrono::Duration::minutes(12))
    );
    assert_eq!(h.app.store.jobs().unwrap(), []);
}

#[tokio::test(start_paused = true)]
async fn the_commander_may_acknowledge() {
    let h = Harness::new(config());
    h.ok("/incident open title:x severity:SEV1").await;
    h.ok("/escalate target:dba reason:lag").await;
    h.at(m(2)).await;
    ack(&h, 1, UserRef::new(ALICE, "alice"), &[]).await.unwrap();
    h.at(m(30)).await;
    assert_eq!(h.pages().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn resolving_stops_every_ladder() {
    let h = Harness::new(config());
    h.ok("/incident open title:x severity:SEV1").await;
    h.ok("/escalate target:dba reason:lag").await;
    h.ok("/escalate target:sre-lead reason:\"call it\"").await;
    assert_eq!(h.app.store.jobs().unwrap().len(), 2, "a timer per ladder");
    h.at(m(5)).await;
    h.ok("/incident resolve summary:\"failed over\"").await;
    let left: Vec<crate::store::JobKind> = h
        .app
        .store
        .jobs()
        .unwrap()
        .into_iter()
        .map(|j| j.kind)
        .filter(|k| !matches!(k, crate::store::JobKind::Post { .. }))
        .collect();
    assert_eq!(
        left,
        [crate::store::JobKind::Archive],
        "cancelled with the resolve; only the channel's archival is left"
    );
    let stopped: Vec<String> = h
        .edited()
        .iter()
        .map(|e| e.post.embed.as_ref().unwrap().description.clone())
        .collect();
    assert_eq!(stopped.len(), 2);
    assert!(stopped
        .iter()
        .all(|d| d.contains("**Stopped:** INC-1 was resolved")));
    h.at(m(60)).await;
    assert_eq!(h.pages().len(), 2);
    assert!(h
        .incident()
        .escalations
        .iter()
        .all(|e| e.stopped == Some(h.incident().times.resolved.unwrap())));
    let err = ack(&h, 1, UserRef::new(9, "dana"), &[DBA])
        .await
        .unwrap_err();
    assert!(err.to_chat("t").contains("is resolved"));
}

#[tokio::test(start_paused = true)]
async fn a_restart_mid_ladder_continues_at_the_right_level() {
    let mut h = Harness::new(config());
    h.ok("/incident open title:x severity:SEV1").await;
    h.ok("/escalate target:dba reason:lag").await;
    h.at(m(5)).await;
    h.stop_scheduler().await;
    // Down across the 10m tick.
    h.at(m(14)).await;
    assert_eq!(h.pages().len(), 1);
    h.start_scheduler();
    h.at(m(15)).await;
    assert_eq!(
        h.pages(),
        [(0, vec![DBA]), (m(14), vec![ONCALL])],
        "the missed level is paged once, on start"
    );
    h.at(m(25)).await;
    assert_eq!(
        h.pages().last().unwrap(),
        &(m(24), vec![LEAD]),
        "the next counts from the late one"
    );
}

#[tokio::test(start_paused = true)]
async fn bad_input_pages_nobody() {
    let h = Harness::new(config());
    h.ok("/incident open title:x severity:SEV1").await;
    let elsewhere = Some(5);
    let before = h.app.store.dump().unwrap();
    let posts = h.sent().len();
    for (line, channel, needle) in [
        (
            "/escalate target:dbb reason:x",
            None,
            "`dbb` is not an escalation target; configured: dba, nobody, sre-lead, sre-oncall",
        ),
        (
            "/escalate target:dba reason:x policy:weekend",
            None,
            "`weekend` is not an escalation policy; configured: default",
        ),
        (
            "/escalate target:dba reason:x",
            elsewhere,
            "/escalate works in an incident's own channel",
        ),
        (
            "/escalate target:nobody reason:x",
            None,
            "escalation target `nobody` has no roles configured",
        ),
        (
            "/escalate target:dba reason:\"  \"",
            None,
            "the reason must not be empty",
        ),
    ] {
        let err = h.err(line, channel).await;
        assert!(err.contains(needle), "{line}: {err}");
    }
    assert_eq!(h.app.store.dump().unwrap(), before, "nothing recorded");
    assert_eq!(h.sent().len(), posts, "nothing paged");

    h.ok("/incident resolve summary:done").await;
    let err = h.err("/escalate target:dba reason:x", None).await;
    assert!(err.contains("INC-1 is resolved"), "{err}");
    let off = Harness::new(Config::default());
    off.ok("/incident open title:x severity:SEV1").await;
    let err = off.err("/escalate target:dba reason:x", None).await;
    assert!(
        err.contains("no escalation targets are configured"),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_page_mentions_its_roles_and_nothing_else_whatever_the_reason_says() {
    let mut c = config();
    c.escalation.targets.insert("db".into(), target(&[DBA, 12]));
    let h = Harness::new(c);
    h.ok("/incident open title:\"@everyone <@&1> down\" severity:SEV1")
        .await;
    let reason = "@everyone @here <@&999> <@123> <@!124> <#5> ping them all";
    h.ok(&format!("/escalate target:db reason:\"{reason}\""))
        .await;
    let page = h.sent().last().cloned().unwrap().post;
    assert_eq!(page.mentions.role_ids(), [DBA, 12]);
    assert!(page.mentions.user_ids().is_empty());
    assert_eq!(
        page.content,
        "<@&11> <@&12> you are needed on **INC-1** (SEV1)."
    );
    assert!(
        page.embed.unwrap().description.contains(reason),
        "the reason is shown, in the embed"
    );
}

#[tokio::test(start_paused = true)]
async fn a_stuck_incident_is_nudged_once_with_a_button_per_target() {
    let mut c = config();
    c.escalation.stuck_after = Dur(Duration::from_secs(1800));
    let h = Harness::new(c);
    h.ok("/incident open title:a severity:SEV1").await;
    let stuck = h.channel();
    h.ok("/incident open title:b severity:SEV3").await;
    let minor = h.channel();
    h.ok("/incident open title:c severity:SEV2").await;
    let moving = h.channel();
    h.at(m(10)).await;
    h.run_in(
        "/incident update state:identified message:\"found it\"",
        Some(moving),
    )
    .await
    .unwrap();
    h.run_in("/incident severity level:SEV2", Some(minor))
        .await
        .unwrap();
    h.at(m(90)).await;
    let nudges: Vec<Sent> = h
        .sent()
        .into_iter()
        .filter(|s| s.post.content.contains("has been investigating"))
        .collect();
    let at: Vec<(u64, i64)> = nudges.iter().map(|s| (s.channel, s.at)).collect();
    assert_eq!(
        at,
        [(stuck, m(30)), (minor, m(30))],
        "SEV1 at 30m; the SEV3 raised to SEV2 counts from its start; identified is not stuck"
    );
    let n = &nudges[0].post;
    assert!(
        n.content
            .starts_with("<@7>, **INC-1** (SEV1) has been investigating for 30m."),
        "{}",
        n.content
    );
    assert_eq!(n.mentions.user_ids(), [ALICE]);
    let ids: Vec<&str> = n.buttons.iter().map(|b| b.custom_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "escalation:nudge:1:dba",
            "escalation:nudge:1:sre-lead",
            "escalation:nudge:1:sre-oncall"
        ]
    );
    assert!(n.nonce.is_some());
    assert_eq!(h.app.store.jobs().unwrap(), [], "once");

    // A button escalates, as the person who pressed it.
    let press = commands::table::Press::parse("escalation:nudge:1:sre-oncall").unwrap();
    let inv = commands::Invocation {
        user: UserRef::new(8, "bob"),
        member_roles: vec![],
        channel: Some(stuck),
        input: press.input(),
    };
    let out = commands::prepare_on(&h.app, &inv, Some(press.target))
        .unwrap()
        .run(&h.app, &inv)
        .await
        .unwrap();
    assert!(out
        .reply
        .post
        .content
        .starts_with("bob escalated INC-1 to **sre-oncall**"));
    let inc = h.app.store.incident(IncidentId(1)).unwrap().unwrap();
    let e = inc.escalations.get(1).unwrap();
    assert_eq!(e.by, Actor::User(UserRef::new(8, "bob")));
    assert!(
        e.reason
            .contains("has been investigating for 1h 30m at SEV1"),
        "{}",
        e.reason
    );
}

#[test]
fn nonces_are_per_step_and_short() {
    let a = step_nonce(IncidentId(1), 1, 1, 'p');
    assert!(a.len() <= 25);
    assert_eq!(a, step_nonce(IncidentId(1), 1, 1, 'p'));
    for other in [
        step_nonce(IncidentId(2), 1, 1, 'p'),
        step_nonce(IncidentId(1), 2, 1, 'p'),
        step_nonce(IncidentId(1), 1, 2, 'p'),
        step_nonce(IncidentId(1), 1, 1, 'x'),
    ] {
        assert_ne!(a, other);
    }
}

#[test]
fn a_job_is_due_in_its_own_millisecond() {
    // A page timer due exactly now must fire now: the scheduler wakes at exactly that time on
    // tokio's paused clock, and a job left out would have it wake again and again.
    let store = Store::temporary().unwrap();
    let due = Utc.with_ymd_and_hms(2026, 11, 21, 10, 11, 0).unwrap();
    let job = Job::new(IncidentId(1), JobKind::StuckNudge, due);
    store.apply_jobs(&[JobChange::Put(job.clone())]).unwrap();
    assert_eq!(store.jobs_due(due).unwrap(), [job]);
    let before = due - chrono::Duration::milliseconds(1);
    assert_eq!(store.jobs_due(before).unwrap(), []);
}
