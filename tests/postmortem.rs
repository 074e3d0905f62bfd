//! Post-mortems end to end through the command layer: capture, key moments, drafts and their
//! versions, export (in chat and offline), the blameless lint, anonymity and statistics.

use chrono::{DateTime, TimeZone, Utc};
use sitrep::app::{App, Clock};
use sitrep::chat::console::{parse_line, ConsoleChat, Sink};
use sitrep::commands::options::console_user_id;
use sitrep::commands::postmortem::add_to_timeline;
use sitrep::commands::{self, Invocation, Outcome};
use sitrep::config::Config;
use sitrep::domain::{Actor, EventKind, IncidentId, UserRef};
use sitrep::postmortem;
use sitrep::render::{Renderer, TimeStyle};
use sitrep::store::{CapturedMessage, Deploy, DeploySource, Highlighted, MessageAttachment, Store};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// A clock the test sets, so that every event lands at a known minute.
struct SetClock(Mutex<DateTime<Utc>>);

impl Clock for SetClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, h, m, 0).unwrap()
}

fn user(name: &str) -> UserRef {
    UserRef::new(console_user_id(name), name)
}

struct Harness {
    app: App,
    clock: Arc<SetClock>,
}

impl Harness {
    fn new() -> Harness {
        Self::with(Config::default(), None)
    }

    fn with(config: Config, templates: Option<&Path>) -> Harness {
        let sink: Sink = Arc::new(Mutex::new(Vec::<u8>::new()));
        let chat = Arc::new(ConsoleChat::new(sink, []));
        let renderer = Renderer::new(templates, TimeStyle::Discord).unwrap();
        let clock = Arc::new(SetClock(Mutex::new(at(10, 0))));
        let app = App::new(
            Arc::new(config),
            Store::temporary().unwrap(),
            Arc::new(renderer),
            chat,
            clock.clone(),
        );
        Harness { app, clock }
    }

    fn set(&self, t: DateTime<Utc>) {
        *self.clock.0.lock().unwrap() = t;
    }

    fn store(&self) -> &Store {
        &self.app.store
    }

    fn invocation(&self, who: &str, line: &str) -> Invocation {
        Invocation {
            user: user(who),
            member_roles: Vec::new(),
            channel: self.channel(),
            input: parse_line(line).unwrap(),
        }
    }

    /// The newest incident's channel: commands run "in" it.
    fn channel(&self) -> Option<u64> {
        self.store()
            .latest_incident()
            .unwrap()
            .and_then(|i| i.channel)
    }

    async fn try_run(&self, who: &str, line: &str) -> Result<Outcome, String> {
        let inv = self.invocation(who, line);
        commands::run(&self.app, &inv)
            .await
            .map_err(|e| e.to_chat(&inv.input.path()))
    }

    async fn run(&self, who: &str, line: &str) -> Outcome {
        self.try_run(who, line)
            .await
            .unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    async fn reply(&self, who: &str, line: &str) -> String {
        self.run(who, line).await.reply.post.content
    }

    async fn error(&self, who: &str, line: &str) -> String {
        match self.try_run(who, line).await {
            Ok(o) => panic!("{line} succeeded: {}", o.reply.post.content),
            Err(e) => e,
        }
    }

    fn say(&self, id: u64, who: &str, t: DateTime<Utc>, text: &str) -> CapturedMessage {
        let inc = self.store().latest_incident().unwrap().unwrap();
        let m = CapturedMessage::new(id, inc.channel.unwrap(), user(who), t, text);
        self.store().capture_message(inc.id, &m).unwrap();
        m
    }

    fn append(&self, t: DateTime<Utc>, who: &str, kind: EventKind) {
        self.set(t);
        let inc = self.store().latest_incident().unwrap().unwrap();
        self.store()
            .append(inc.id, &Actor::User(user(who)), t, move |_| {
                Ok(vec![kind.clone()])
            })
            .unwrap();
    }

    fn latest_markdown(&self, id: IncidentId) -> String {
        self.store().postmortem(id, None).unwrap().unwrap().markdown
    }
}

/// Checks that every needle is in `text`, each after the one before.
fn in_order(text: &str, needles: &[&str]) {
    let mut from = 0;
    for n in needles {
        match text[from..].find(n) {
            Some(i) => from += i + n.len(),
            None => panic!(
                "{n:?} is missing or out of order; after byte {from} the draft reads:\n{}\n\nwhole draft:\n{text}",
                &text[from..]
            ),
        }
    }
}

/// The checkout incident: declared at 10:00 for impact since 09:50, resolved at 10:30.
async fn checkout_incident(h: &Harness) -> IncidentId {
    h.store()
        .put_deploy(&Deploy {
            source: DeploySource::Webhook,
            id: "ci-981".into(),
            service: "payment-gateway".into(),
            version: "v3.1".into(),
            commit: None,
            author: Some("erin".into()),
            environment: Some("production".into()),
            status: Some("success".into()),
            url: Some("https://ci.example.com/981".into()),
            time: at(9, 40),
        })
        .unwrap();
    h.set(at(10, 0));
    h.run(
        "alice",
        r#"/incident open title:"Checkout returns 500" severity:SEV2 service:checkout summary:"EU customers cannot pay" started:"2026-11-21 09:50""#,
    )
    .await;
    let id = IncidentId(1);
    h.set(at(10, 3));
    h.run("alice", "/incident role role:communications user:@carol")
        .await;
    let mut first = h.say(
        1001,
        "bob",
        at(10, 4),
        "Seeing 500s from the payment gateway\nsince 09:50",
    );
    first.attachments.push(MessageAttachment {
        name: "errors.png".into(),
        url: "https://cdn.example.com/errors.png".into(),
        content_type: Some("image/png".into()),
    });
    let bob = console_user_id("bob");
    h.say(
        1002,
        "dave",
        at(10, 5),
        &format!("<@{bob}> forgot to renew the cert"),
    );
    h.say(1003, "erin", at(10, 5), "what a careless rollout");
    h.set(at(10, 6));
    h.run(
        "alice",
        r#"/incident update state:identified message:"Expired TLS certificate on the payment gateway""#,
    )
    .await;
    h.append(
        at(10, 7),
        "alice",
        EventKind::MetricSnapshot {
            query: "error_rate".into(),
            summary: "12.5 req/s, 40× a day ago".into(),
            chart: None,
        },
    );
    h.append(
        at(10, 8),
        "alice",
        EventKind::Escalated {
            escalation: 1,
            target: "payments-oncall".into(),
            level: 1,
            roles: vec![],
            reason: "the gateway belongs to payments".into(),
        },
    );
    h.append(
        at(10, 10),
        "frank",
        EventKind::EscalationAcknowledged { escalation: 1 },
    );
    h.set(at(10, 12));
    let carol = h.invocation("carol", "/postmortem stats");
    let out = add_to_timeline(&h.app, &carol, 1002, None).await.unwrap();
    assert!(
        out.reply.post.content.contains("Added to INC-1's timeline"),
        "{}",
        out.reply.post.content
    );
    // The capture missed this one; the message command carries it.
    let first_again =
        postmortem::highlight_captured(&h.app, id, &first, &Actor::User(user("alice")))
            .await
            .unwrap();
    assert!(matches!(first_again, Highlighted::Added(_)));
    h.set(at(10, 15));
    h.run(
        "alice",
        r#"/incident update state:monitoring message:"Certificate renewed; error rate back to normal""#,
    )
    .await;
    h.set(at(10, 20));
    h.run(
        "alice",
        r#"/incident action text:"Alert 14 days before certificates expire" owner:@bob due:2026-12-01"#,
    )
    .await;
    h.set(at(10, 30));
    h.run(
        "alice",
        r#"/incident resolve summary:"Renewed the expired certificate""#,
    )
    .await;
    id
}

#[tokio::test]
async fn draft_contains_all_of_it_in_order() {
    let h = Harness::new();
    let id = checkout_incident(&h).await;
    h.set(at(11, 0));
    let reply = h.reply("alice", "/postmortem draft").await;
    assert!(reply.contains("**version 1** of INC-1"), "{reply}");
    assert!(reply.contains("2 key moments"), "{reply}");
    assert!(reply.contains("1 phrase to reword"), "{reply}");
    let md = h.latest_markdown(id);
    in_order(
        &md,
        &[
            "# Post-mortem: Checkout returns 500 (INC-1)",
            "| **Date** | 2026-11-21 |",
            "| **Severity** | SEV2 (Major: Major feature degraded for many customers) |",
            "| **Service** | checkout |",
            "| **Status** | resolved |",
            "| **Duration** | 40m |",
            "| **Draft** | version 1, compiled 2026-11-21 11:00:00 UTC by alice |",
            "## Key times",
            "| Impact began | 2026-11-21 09:50:00 UTC |  |",
            "| Detected (declared) | 2026-11-21 10:00:00 UTC | TTD 10m |",
            "| Acknowledged | 2026-11-21 10:03:00 UTC | TTA 3m |",
            "| Identified | 2026-11-21 10:06:00 UTC |  |",
            "| Mitigated | 2026-11-21 10:15:00 UTC | TTM 25m |",
            "| Resolved | 2026-11-21 10:30:00 UTC | TTR 40m |",
            "**TTA** 3m · **TTM** 25m · **TTR** 40m",
            "## Participants",
            "- **Commander:** alice",
            "- **Communications:** carol",
            "- **Responders:** bob (1 message), dave (1 message), erin (1 message), frank",
            "## Summary",
            "EU customers cannot pay",
            "**Resolution:** Renewed the expired certificate",
            "> ✍️ **Prompt:**",
            "## Impact",
            "- **Severity:** SEV2",
            "- **Service:** checkout",
            "- **Impact window:** 2026-11-21 09:50:00 UTC → 2026-11-21 10:15:00 UTC (25m until mitigation)",
            "- **As declared:** EU customers cannot pay",
            "What responders reported in their updates:",
            "- 2026-11-21 10:06:00 UTC: (identified) Expired TLS certificate on the payment gateway (alice)",
            "- 2026-11-21 10:15:00 UTC: (monitoring) Certificate renewed; error rate back to normal (alice)",
            "> ✍️ **Prompt:**",
            "## Timeline",
            "- **2026-11-21 09:40:00 UTC** · Deploy · Deploy of payment-gateway v3.1 to production (success) · _erin_ · [deploy](https://ci.example.com/981)",
            "- **2026-11-21 09:50:00 UTC** · Impact · Impact began",
            "- **2026-11-21 10:00:00 UTC** · Declared · Declared as SEV2: Checkout returns 500 · _alice_",
            "- **2026-11-21 10:03:00 UTC** · Role · Communications role taken by carol · _alice_",
            "- **2026-11-21 10:04:00 UTC** · Key moment · Seeing 500s from the payment gateway since 09:50 · _bob_ · [errors.png](https://cdn.example.com/errors.png)",
            "- **2026-11-21 10:05:00 UTC** · Key moment · @bob forgot to renew the cert · _dave_",
            "- **2026-11-21 10:06:00 UTC** · State · State investigating → identified · _alice_",
            "- **2026-11-21 10:06:00 UTC** · Update · (identified) Expired TLS certificate on the payment gateway · _alice_",
            "- **2026-11-21 10:07:00 UTC** · Metric · error_rate: 12.5 req/s, 40× a day ago · _alice_",
            "- **2026-11-21 10:08:00 UTC** · Escalation · Escalated to payments-oncall (level 1): the gateway belongs to payments · _alice_",
            "- **2026-11-21 10:10:00 UTC** · Escalation · Escalation to payments-oncall acknowledged · _frank_",
            "- **2026-11-21 10:15:00 UTC** · State · State identified → monitoring",
            "- **2026-11-21 10:20:00 UTC** · Action item · Alert 14 days before certificates expire (owner bob) · _alice_",
            "- **2026-11-21 10:30:00 UTC** · Resolved · Resolved: Renewed the expired certificate · _alice_",
            "## Root cause",
            "- Resolution summary: Renewed the expired certificate",
            "- payment-gateway v3.1 deployed 2026-11-21 09:40:00 UTC (10m before impact began)",
            "> ✍️ **Prompt:** What in the system made this failure possible?",
            "## Contributing factors",
            "- Impact began 10m before the incident was declared.",
            "> ✍️ **Prompt:**",
            "## What went well",
            "- Acknowledged 3m after declaration.",
            "- Mitigated 25m after impact began.",
            "- payments-oncall acknowledged the escalation at 2026-11-21 10:10:00 UTC.",
            "> ✍️ **Prompt:**",
            "## What could be improved",
            "> ✍️ **Prompt:**",
            "## Action items",
            "| Action | Owner | Due |",
            "| Alert 14 days before certificates expire | bob | 2026-12-01 |",
            "> ✍️ **Prompt:**",
            "## Lessons learned",
            "> ✍️ **Prompt:**",
            "## Reviewer notes",
            "Blameless review: 1 phrase to reword before this is shared.",
            "- **\"@bob forgot\"** (Timeline, 2026-11-21 10:05:00 UTC): \"@bob forgot to renew the cert\". Suggestion: Describe what did not prompt the step",
        ],
    );
    assert!(
        !md.contains("careless"),
        "a message nobody highlighted stays out of the draft"
    );
    assert!(!md.contains("incident still open"));
    assert!(!md.contains("channel transcript"));
    assert!(md.ends_with(".\n") || md.ends_with("|\n"), "{md}");
}

#[tokio::test]
async fn export_attachment_equals_the_offline_export() {
    let h = Harness::new();
    let id = checkout_incident(&h).await;
    let offline = |version| {
        // `sitrep export` renders with the terminal's time style; the file must not care.
        let renderer = Renderer::new(None, TimeStyle::Plain).unwrap();
        postmortem::export(h.store(), &renderer, &h.app.config, id, version).unwrap()
    };

    // Before any draft: compiled on the fly, as of the last activity, the same every time.
    let out = h.run("alice", "/postmortem export").await;
    assert!(out.reply.post.content.contains("no draft stored yet"));
    assert_eq!(out.reply.post.files.len(), 1);
    assert_eq!(out.reply.post.files[0].filename, "INC-1-postmortem.md");
    assert_eq!(out.reply.post.files[0].bytes, offline(None).into_bytes());
    assert!(offline(None).contains("| **Draft** | not stored, compiled 2026-11-21 10:30:00 UTC |"));
    assert!(
        h.store().postmortem_versions(id).unwrap().is_empty(),
        "export stores nothing"
    );

    h.set(at(11, 0));
    h.run("alice", "/postmortem draft").await;
    let v1 = h.latest_markdown(id);
    h.set(at(12, 0));
    h.run(
        "carol",
        "/incident note text:\"Vendor confirmed the renewal\" incident:INC-1",
    )
    .await;
    h.run("carol", "/postmortem draft incident:INC-1").await;
    assert_eq!(h.store().postmortem_versions(id).unwrap(), [1, 2]);
    assert_eq!(
        h.store().postmortem(id, Some(1)).unwrap().unwrap().markdown,
        v1,
        "recompiling leaves earlier versions as they were"
    );
    let v2 = h.latest_markdown(id);
    assert!(v2.contains("Vendor confirmed the renewal") && !v1.contains("Vendor confirmed"));

    let out = h.run("alice", "/postmortem export").await;
    assert_eq!(
        out.reply.post.content,
        "Post-mortem of INC-1, version 2 of 2."
    );
    assert_eq!(out.reply.post.files[0].filename, "INC-1-postmortem-v2.md");
    assert_eq!(out.reply.post.files[0].bytes, offline(None).into_bytes());
    assert_eq!(out.reply.post.files[0].bytes, v2.clone().into_bytes());
    let out = h.run("alice", "/postmortem export version:1").await;
    assert_eq!(out.reply.post.files[0].bytes, offline(Some(1)).into_bytes());
    assert_eq!(out.reply.post.files[0].bytes, v1.into_bytes());

    let err = h.error("alice", "/postmortem export version:3").await;
    assert_eq!(
        err,
        "INC-1 has no post-mortem version 3; the versions are 1 to 2"
    );
    let err = h.error("alice", "/postmortem export version:0").await;
    assert!(err.contains("must be at least 1"), "{err}");
    let renderer = Renderer::new(None, TimeStyle::Plain).unwrap();
    let e =
        postmortem::export(h.store(), &renderer, &h.app.config, IncidentId(9), None).unwrap_err();
    assert!(e.is_not_found());
    assert_eq!(e.to_string(), "INC-9 does not exist");
    let e = postmortem::export(h.store(), &renderer, &h.app.config, id, Some(7)).unwrap_err();
    assert!(e.is_not_found());

    let preview = h.reply("alice", "/postmortem show version:1").await;
    assert!(
        preview.starts_with("# Post-mortem: Checkout returns 500 (INC-1)"),
        "{preview}"
    );
    assert!(
        preview.chars().count() <= 2000,
        "{}",
        preview.chars().count()
    );
    assert!(preview.contains("version 1 of 2; ") && preview.contains("`/postmortem export`"));
}

#[tokio::test]
async fn open_and_unknown_incidents() {
    let h = Harness::new();
    let err = h.error("alice", "/postmortem draft incident:INC-9").await;
    assert_eq!(err, "INC-9 does not exist");
    let err = h.error("alice", "/postmortem draft").await;
    assert!(err.contains("which incident?"), "{err}");

    h.run(
        "alice",
        r#"/incident open title:"Search is slow" severity:SEV3"#,
    )
    .await;
    h.set(at(10, 25));
    let reply = h.reply("alice", "/postmortem draft").await;
    assert!(
        reply.contains("INC-1 is still open (investigating)"),
        "{reply}"
    );
    let record = h.store().postmortem(IncidentId(1), None).unwrap().unwrap();
    assert!(record.incident_open);
    in_order(
        &record.markdown,
        &[
            "> ⚠️ **Incident still open** (investigating)",
            "| **Status** | still open (investigating) |",
            "| **Duration** | 25m so far |",
            "| Resolved | not yet |",
            "- No status updates were posted.",
            "| None recorded yet | | |",
            "Blameless review: no wording that assigns blame was found.",
        ],
    );
}

#[tokio::test]
async fn blameless_lint_lists_phrases_with_suggestions() {
    let h = Harness::new();
    h.run(
        "alice",
        r#"/incident open title:"Search is slow" severity:SEV3"#,
    )
    .await;
    let reply = h.reply("alice", "/postmortem lint").await;
    assert!(
        reply.starts_with("No wording that assigns blame found in INC-1's draft"),
        "{reply}"
    );
    let err = h.error("alice", r#"/postmortem lint text:"   ""#).await;
    assert_eq!(err, "there is no text to check");
    let reply = h
        .reply(
            "alice",
            r#"/postmortem lint text:"In hindsight it was human error; they should have known""#,
        )
        .await;
    assert!(reply.starts_with("2 phrases to reword:"), "{reply}");
    assert!(reply.contains("**\"human error\"** (your text)"), "{reply}");
    assert!(
        reply.contains("→ Name the gap that let a mistake through"),
        "{reply}"
    );

    h.set(at(10, 5));
    h.run(
        "bob",
        r#"/incident note text:"Ops says it was Carol's fault""#,
    )
    .await;
    let reply = h.reply("alice", "/postmortem lint").await;
    assert!(
        reply.starts_with("INC-1's draft has 1 phrase to reword:"),
        "{reply}"
    );
    assert!(
        reply.contains("**\"Carol's fault\"** (Timeline, 2026-11-21 10:05:00 UTC)"),
        "{reply}"
    );
    h.run("alice", "/postmortem draft").await;
    let md = h.latest_markdown(IncidentId(1));
    assert!(
        md.contains("- **\"Carol's fault\"** (Timeline, 2026-11-21 10:05:00 UTC)"),
        "{md}"
    );
}

#[tokio::test]
async fn anonymized_drafts_name_roles_not_people() {
    let mut config = Config::default();
    config.postmortem.anonymize = true;
    config.postmortem.transcript = true;
    let h = Harness::with(config, None);
    let id = checkout_incident(&h).await;
    h.set(at(11, 0));
    h.run("alice", "/postmortem draft").await;
    let md = h.latest_markdown(id);
    for name in ["alice", "bob", "carol", "dave", "erin", "frank"] {
        assert!(
            !md.to_lowercase().contains(name),
            "{name} is named in the anonymized draft:\n{md}"
        );
    }
    in_order(
        &md,
        &[
            "compiled 2026-11-21 11:00:00 UTC by Commander |",
            "People are named by their role in the incident.",
            "- **Commander:** Commander",
            "- **Communications:** Communications",
            "- **Responders:** Responder 1 (1 message), Responder 2 (1 message), Responder 3 (1 message), Responder 4",
            "· Role · Communications role taken · _Commander_",
            "· Key moment · Responder 1 forgot to renew the cert · _Responder 2_",
            "| Alert 14 days before certificates expire | Responder 1 | 2026-12-01 |",
            "- **\"Responder 1 forgot\"**",
            "**\"careless\"** (Transcript, 2026-11-21 10:05:00 UTC)",
            "## Appendix: channel transcript",
            "- 2026-11-21 10:04:00 UTC **Responder 1**: Seeing 500s",
            "- 2026-11-21 10:05:00 UTC **Responder 3**: what a careless rollout",
        ],
    );
}

#[tokio::test]
async fn operators_can_replace_the_template() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("postmortem.md.j2"),
        "Review of {{ incident.id }}: {{ timeline | length }} entries, {{ action_items | length }} actions",
    )
    .unwrap();
    let h = Harness::with(Config::default(), Some(dir.path()));
    let id = checkout_incident(&h).await;
    h.run("alice", "/postmortem draft").await;
    assert_eq!(
        h.latest_markdown(id),
        "Review of INC-1: 15 entries, 1 actions\n"
    );
}

#[tokio::test]
async fn key_moments_are_added_once() {
    let h = Harness::new();
    h.run(
        "alice",
        r#"/incident open title:"Search is slow" severity:SEV3"#,
    )
    .await;
    h.say(
        2001,
        "bob",
        at(10, 1),
        "p99 doubled after the index rebuild",
    );
    let inv = h.invocation("carol", "/postmortem stats");
    let first = add_to_timeline(&h.app, &inv, 2001, None).await.unwrap();
    assert!(first.reply.ephemeral);
    let again = add_to_timeline(&h.app, &inv, 2001, None).await.unwrap();
    assert!(
        again
            .reply
            .post
            .content
            .starts_with("That message is already on INC-1's timeline (added by carol"),
        "{}",
        again.reply.post.content
    );
    let reacted = postmortem::highlight(&h.app, IncidentId(1), 2001, &Actor::System)
        .await
        .unwrap();
    assert!(matches!(reacted, Highlighted::Already(_)));
    let highlights = h
        .store()
        .events(IncidentId(1))
        .unwrap()
        .into_iter()
        .filter(|e| matches!(&e.kind, EventKind::MessageCaptured { change, .. } if change == "highlighted"))
        .count();
    assert_eq!(highlights, 1);

    let err = add_to_timeline(&h.app, &inv, 4242, None)
        .await
        .unwrap_err()
        .to_chat("Add to timeline");
    assert!(err.contains("has not captured that message"), "{err}");
    let mut elsewhere = inv.clone();
    elsewhere.channel = Some(77);
    let err = add_to_timeline(&h.app, &elsewhere, 2001, None)
        .await
        .unwrap_err()
        .to_chat("Add to timeline");
    assert!(err.contains("which incident?"), "{err}");
    let err = postmortem::highlight(&h.app, IncidentId(5), 2001, &Actor::System)
        .await
        .unwrap_err()
        .to_chat("highlight");
    assert_eq!(err, "INC-5 does not exist");
}

#[tokio::test]
async fn stats_count_real_incidents_by_severity() {
    let h = Harness::new();
    h.set(at(8, 0));
    h.run("alice", r#"/incident open title:"Old one" severity:SEV3"#)
        .await;
    h.set(at(10, 0));
    h.run("alice", r#"/incident open title:"A" severity:SEV1"#)
        .await;
    h.set(at(10, 2));
    h.run("alice", "/incident note text:\"looking\" incident:INC-2")
        .await;
    h.set(at(10, 40));
    h.run("alice", "/incident resolve summary:fixed incident:INC-2")
        .await;
    h.set(at(11, 0));
    h.run("alice", r#"/incident open title:"B" severity:SEV2"#)
        .await;
    h.set(at(11, 4));
    h.run("alice", "/incident note text:\"looking\" incident:INC-3")
        .await;
    h.set(at(11, 5));
    h.run(
        "alice",
        r#"/incident open title:"Game day" severity:SEV1 drill:true"#,
    )
    .await;
    h.set(at(12, 0));
    let text = h.reply("bob", "/postmortem stats since:3h").await;
    in_order(
        &text,
        &[
            "**Incidents, since 2026-11-21 09:00 UTC:** 2 (1 resolved, 1 open) · 1 drill left out",
            "**MTTA** 3m · **MTTR** 40m",
            "SEV1          1         1  2m        40m",
            "SEV2          1         0  4m        —",
        ],
    );
    let all = h.reply("bob", "/postmortem stats").await;
    assert!(
        all.starts_with("**Incidents, all time:** 3 (1 resolved, 2 open)"),
        "{all}"
    );
    let err = h.error("bob", "/postmortem stats since:tomorrow").await;
    assert!(
        err.contains("`since:tomorrow` is not a time in the past"),
        "{err}"
    );
}

#[tokio::test]
async fn edits_and_deletes_of_key_moments_reach_the_draft() {
    let h = Harness::new();
    h.run(
        "alice",
        r#"/incident open title:"Search is slow" severity:SEV3"#,
    )
    .await;
    let id = IncidentId(1);
    h.say(3001, "bob", at(10, 1), "restarting search-3");
    h.say(3002, "bob", at(10, 2), "it was the disk");
    let inv = h.invocation("alice", "/postmortem stats");
    add_to_timeline(&h.app, &inv, 3001, None).await.unwrap();
    add_to_timeline(&h.app, &inv, 3002, None).await.unwrap();
    h.store()
        .edit_message(id, 3001, "restarting search-3 and search-4", at(10, 3))
        .unwrap();
    h.store().delete_message(id, 3002, at(10, 4)).unwrap();
    h.set(at(10, 30));
    h.run("alice", "/postmortem draft").await;
    in_order(
        &h.latest_markdown(id),
        &[
            "- **2026-11-21 10:01:00 UTC** · Key moment · restarting search-3 and search-4 (edited) · _bob_",
            "- **2026-11-21 10:02:00 UTC** · Key moment · (message since deleted) · _bob_",
        ],
    );
    assert!(!h.latest_markdown(id).contains("it was the disk"));
}

#[test]
fn the_example_config_documents_the_postmortem_section() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let c = Config::from_parts(Some(("config.example.toml", &text)), &Default::default()).unwrap();
    assert_eq!(c.postmortem, Config::default().postmortem);
    // The commented-out phrases are valid once uncommented.
    let own = text
        .replace("# [[postmortem.lint]]", "[[postmortem.lint]]")
        .replace("# phrase = ", "phrase = ")
        .replace("# suggest = ", "suggest = ");
    let c = Config::from_parts(Some(("config.example.toml", &own)), &Default::default()).unwrap();
    assert_eq!(c.postmortem.lint.len(), 2);
    let problems = c.problems(&Default::default(), false);
    assert!(
        !problems.iter().any(|p| p.contains("postmortem")),
        "{problems:?}"
    );
}
