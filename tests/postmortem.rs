//! Post-mortems end to end: through the command layer (capture, key moments, drafts and their
//! versions, export in chat and offline, the blameless lint, anonymity, the transcript,
//! `/incident stats`), and through the Discord fake for reading a big channel before a draft.

mod support;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;
use sitrep::app::App;
use sitrep::chat::console::{parse_line, ConsoleChat};
use sitrep::commands::options::console_user_id;
use sitrep::commands::postmortem::ADD_TO_TIMELINE;
use sitrep::commands::{self, CommandInput, Invocation, Outcome, Target};
use sitrep::config::Config;
use sitrep::domain::{Actor, EventKind, IncidentId, UserRef};
use sitrep::postmortem;
use sitrep::render::{Renderer, TimeStyle};
use sitrep::store::{CapturedMessage, Deploy, DeploySource, Highlighted, MessageAttachment, Store};
use sitrep::testkit::TestApp;
use std::path::Path;
use std::time::Duration;
use support::bot::{world, Bot, Mode};
use support::discord::{
    FakeDiscord, FakeOptions, Fault, Request, GENERAL_CHANNEL_ID, INTENT_MESSAGE_CONTENT, OWNER_ID,
};

fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, h, m, 0).unwrap()
}

/// "Add to timeline" as Discord runs it: through the command table, pointed at a message.
async fn add_to_timeline(
    app: &App,
    inv: &Invocation,
    id: u64,
    message: Option<&CapturedMessage>,
) -> Result<Outcome, sitrep::error::CommandError> {
    let inv = Invocation {
        input: CommandInput {
            name: ADD_TO_TIMELINE.into(),
            options: Vec::new(),
        },
        ..inv.clone()
    };
    let target = Target::Message {
        id,
        message: message.cloned().map(Box::new),
    };
    commands::prepare_on(app, &inv, Some(target))?
        .run(app, &inv)
        .await
}

fn user(name: &str) -> UserRef {
    UserRef::new(console_user_id(name), name)
}

/// The test kit's app on the console chat, with a clock the test sets, so that every event lands
/// at a known minute.
struct Harness {
    app: App,
    kit: TestApp<ConsoleChat>,
}

impl Harness {
    fn new() -> Harness {
        Self::with(Config::default(), None)
    }

    fn with(config: Config, templates: Option<&Path>) -> Harness {
        let mut kit = TestApp::builder().config(config).clock_at(at(10, 0));
        if let Some(dir) = templates {
            kit = kit.templates(dir);
        }
        let kit = kit.build_console();
        Harness {
            app: kit.app.clone(),
            kit,
        }
    }

    fn set(&self, t: DateTime<Utc>) {
        self.kit.set(t);
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
        self.app
            .record(inc.id, &Actor::User(user(who)), t, move |_| {
                Ok(vec![kind.clone()])
            })
            .unwrap();
    }

    fn latest_markdown(&self, id: IncidentId) -> String {
        self.store().postmortem(id, None).unwrap().unwrap().markdown
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
            users: Vec::new(),
        },
    );
    h.append(
        at(10, 10),
        "frank",
        EventKind::EscalationAcknowledged { escalation: 1 },
    );
    h.set(at(10, 12));
    let carol = h.invocation("carol", "/postmortem lint");
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

/// Only the key moments: how drafts read with `[postmortem] transcript = false`.
fn without_transcript() -> Config {
    let mut config = Config::default();
    config.postmortem.transcript = false;
    config
}

#[tokio::test]
async fn draft_contains_all_of_it_in_order() {
    let h = Harness::with(without_transcript(), None);
    let id = checkout_incident(&h).await;
    h.set(at(11, 0));
    let reply = h.reply("alice", "/postmortem draft").await;
    assert!(reply.contains("**version 1** of INC-1"), "{reply}");
    assert!(reply.contains("2 key moments"), "{reply}");
    assert!(reply.contains("1 phrase to reword"), "{reply}");
    let md = h.latest_markdown(id);
    support::assert_in_order(
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
    assert!(!md.contains("Channel transcript"));
    assert!(md.ends_with(".\n") || md.ends_with("|\n"), "{md}");
}

#[tokio::test]
async fn the_transcript_keeps_everything_said() {
    let h = Harness::new();
    let id = checkout_incident(&h).await;
    h.say(1004, "bob", at(10, 31), "cert monitor added");
    h.say(1005, "dave", at(10, 32), "pasted the wrong token here");
    h.store()
        .edit_message(
            id,
            1004,
            "cert expiry monitor added to the dashboard",
            at(10, 33),
        )
        .unwrap();
    h.store().delete_message(id, 1005, at(10, 34)).unwrap();
    h.set(at(11, 0));
    let reply = h.reply("alice", "/postmortem draft").await;
    // "@bob forgot" once (the key moment, not again in the transcript), and "careless".
    assert!(reply.contains("2 phrases to reword"), "{reply}");
    let md = h.latest_markdown(id);
    support::assert_in_order(
        &md,
        &[
            "## Timeline",
            "· Key moment · @bob forgot to renew the cert · _dave_",
            "## Lessons learned",
            "## Reviewer notes",
            "- **\"@bob forgot\"** (Timeline, 2026-11-21 10:05:00 UTC)",
            "- **\"careless\"** (Transcript, 2026-11-21 10:05:00 UTC)",
            "## Appendix: Channel transcript",
            "- 2026-11-21 10:04:00 UTC **bob**: Seeing 500s from the payment gateway since 09:50 · [errors.png](https://cdn.example.com/errors.png)\n",
            "- 2026-11-21 10:05:00 UTC **dave**: @bob forgot to renew the cert\n",
            "- 2026-11-21 10:05:00 UTC **erin**: what a careless rollout\n",
            "- 2026-11-21 10:31:00 UTC **bob**: cert expiry monitor added to the dashboard _(edited)_\n",
            "- 2026-11-21 10:32:00 UTC **dave**: _(deleted)_\n",
        ],
    );
    assert!(
        md.ends_with("_(deleted)_\n"),
        "the transcript closes the draft"
    );
    assert!(
        !md.contains("cert monitor added"),
        "an edit shows its final text"
    );
    assert!(
        !md.contains("wrong token"),
        "a deleted message's text stays out"
    );

    // The same incident with the transcript off: the key moments only.
    let off = Harness::with(without_transcript(), None);
    let id = checkout_incident(&off).await;
    off.run("alice", "/postmortem draft").await;
    let md = off.latest_markdown(id);
    assert!(md.contains("@bob forgot to renew the cert"), "{md}");
    assert!(!md.contains("Channel transcript") && !md.contains("careless"));
}

#[tokio::test]
async fn key_moments_sit_where_they_were_said() {
    let h = Harness::new();
    h.run(
        "alice",
        r#"/incident open title:"Search is slow" severity:SEV3"#,
    )
    .await;
    let id = IncidentId(1);
    h.say(4001, "bob", at(10, 1), "search-3 disk is full");
    h.set(at(10, 6));
    h.run("carol", r#"/incident note text:"Cleared old snapshots""#)
        .await;
    // Pinned ten minutes after it was said, five after the note.
    h.set(at(10, 11));
    let carol = Actor::User(user("carol"));
    let Highlighted::Added(ev) = postmortem::highlight(&h.app, id, 4001, &carol)
        .await
        .unwrap()
    else {
        panic!("not added")
    };
    assert_eq!(ev.at, at(10, 11), "the event is dated when it was marked");
    assert_eq!(ev.actor, carol, "and says who marked it");
    match &ev.kind {
        EventKind::MessageCaptured {
            author, said_at, ..
        } => {
            assert_eq!(author.name, "bob");
            assert_eq!(*said_at, Some(at(10, 1)));
        }
        other => panic!("{other:?}"),
    }
    h.set(at(10, 20));
    h.run("alice", "/postmortem draft").await;
    let md = h.latest_markdown(id);
    support::assert_in_order(
        &md,
        &[
            "## Timeline",
            "- **2026-11-21 10:00:00 UTC** · Declared",
            "- **2026-11-21 10:01:00 UTC** · Key moment · search-3 disk is full · _bob_",
            "- **2026-11-21 10:06:00 UTC** · Note · Cleared old snapshots · _carol_",
            "## Root cause",
        ],
    );
    assert!(
        !md.contains("10:11:00"),
        "nothing is dated when it was marked:\n{md}"
    );
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
    support::assert_in_order(
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
    support::assert_in_order(
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
            "## Appendix: Channel transcript",
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
    let inv = h.invocation("carol", "/postmortem lint");
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
    let text = h.reply("bob", "/incident stats since:3h").await;
    support::assert_in_order(
        &text,
        &[
            "**Incidents, since 2026-11-21 09:00 UTC:** 2 (1 resolved, 1 open) · 1 drill left out",
            "**MTTA** 3m · **MTTR** 40m",
            "SEV1          1         1  2m        40m",
            "SEV2          1         0  4m        —",
        ],
    );
    let all = h.reply("bob", "/incident stats").await;
    assert!(
        all.starts_with("**Incidents, all time:** 3 (1 resolved, 2 open)"),
        "{all}"
    );
    let err = h.error("bob", "/incident stats since:tomorrow").await;
    assert!(
        err.contains("`since:tomorrow` is not a time in the past"),
        "{err}"
    );
    let moved = parse_line("/postmortem stats").unwrap_err().to_string();
    assert!(moved.contains("not one of"), "{moved}");
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
    let inv = h.invocation("alice", "/postmortem lint");
    add_to_timeline(&h.app, &inv, 3001, None).await.unwrap();
    add_to_timeline(&h.app, &inv, 3002, None).await.unwrap();
    h.store()
        .edit_message(id, 3001, "restarting search-3 and search-4", at(10, 3))
        .unwrap();
    h.store().delete_message(id, 3002, at(10, 4)).unwrap();
    h.set(at(10, 30));
    h.run("alice", "/postmortem draft").await;
    support::assert_in_order(
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
    let problems = sitrep::preflight::problems(&c, &Default::default(), false);
    assert!(
        !problems.iter().any(|p| p.contains("postmortem")),
        "{problems:?}"
    );
}

/// History reads of one channel, as the fake answered them.
fn history_reads(fake: &FakeDiscord, channel: u64) -> Vec<Request> {
    let path = format!("/channels/{channel}/messages");
    fake.requests_to("GET /channels/{channel}/messages")
        .into_iter()
        .filter(|r| r.path == path)
        .collect()
}

/// Edits of an interaction's original response, oldest first: what its placeholder said.
fn original_edits(fake: &FakeDiscord, token: &str) -> Vec<String> {
    fake.requests_to("PATCH /webhooks/{application}/{token}/messages/{message}")
        .into_iter()
        .filter(|r| r.status == 200 && r.path.contains(token) && r.path.ends_with("/@original"))
        .map(|r| r.body["content"].as_str().unwrap_or("").to_string())
        .collect()
}

/// A channel far bigger than one history page, said while the bot was down, is read in full
/// before the draft, 100 messages a request, with the placeholder telling how far it got.
///
/// `SITREP_TEST_BACKFILL_MESSAGES=100000 cargo test --release --test postmortem big_channel`
/// runs it at 100k messages (about 1,000 reads); the default, 5,000, keeps CI short.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_channel_is_read_in_full_with_progress_before_the_draft() {
    let n: usize = std::env::var("SITREP_TEST_BACKFILL_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    let fake = FakeDiscord::start_with(FakeOptions {
        wait_timeout: Duration::from_secs(15 + n as u64 / 500),
        ..FakeOptions::default()
    })
    .await;
    // The seeded messages' text reaches the bot only with the developer portal's toggle on.
    fake.set_privileged_intents(INTENT_MESSAGE_CONTENT);
    let w = world(&fake);
    let mut bot = Bot::start(&fake, w, Mode::Proxy, "");
    fake.wait_ready().await;
    let open = fake.slash(
        OWNER_ID,
        GENERAL_CHANNEL_ID,
        "incident",
        json!({"open": {"title": "Orders stuck", "severity": "SEV2"}}),
    );
    fake.wait_response(&open).await;
    fake.wait_until(Duration::from_secs(10), |f| {
        f.original(&open)
            .filter(|m| m["content"].as_str().is_some_and(|c| c.contains("Opened")))
    })
    .await
    .expect("opened");
    let channel: u64 = fake
        .channel_named("inc-1-orders-stuck")
        .expect("its channel")["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();

    // Said, then a note, then marked: the key moment goes before the note.
    let ana = fake.add_member("ana", &[]);
    let said = fake.say(ana, channel, "queue depth is 40k");
    let note = fake.slash(
        OWNER_ID,
        channel,
        "incident",
        json!({"note": {"text": "consumer restarted"}}),
    );
    fake.wait_response(&note).await;
    fake.react(OWNER_ID, said, "📌");
    let resolve = fake.slash(
        OWNER_ID,
        channel,
        "incident",
        json!({"resolve": {"summary": "drained the queue"}}),
    );
    fake.wait_response(&resolve).await;
    // Gateway events are handled beside interactions; give the reaction time to land.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(bot.stop().success(), "{}", bot.log());
    let last_stored = {
        let store = Store::open(bot.db_path()).unwrap();
        let inc = store.incident(IncidentId(1)).unwrap().unwrap();
        assert!(
            !inc.is_open(),
            "resolved: startup will not read its channel"
        );
        store
            .last_message_id(IncidentId(1))
            .unwrap()
            .expect("ana's message")
    };

    let seeded = fake.seed_messages(ana, channel, n);
    let mut bot = bot.restart(&fake, w, Mode::Proxy, "");
    fake.wait_ready().await;
    let unread = fake
        .messages(channel)
        .iter()
        .filter(|m| m["id"].as_str().unwrap().parse::<u64>().unwrap() > last_stored)
        .count();
    assert!(unread >= n, "{unread}");
    let reads_before = history_reads(&fake, channel).len();

    // A flaky Discord must not leave a hole: the first page fails once and is read again.
    fake.fail_next("GET /channels/{channel}/messages", Fault::ServerError(502));
    let started = std::time::Instant::now();
    let d = fake.slash(OWNER_ID, channel, "postmortem", json!({"draft": {}}));
    assert_eq!(fake.wait_response(&d).await.kind, 5, "deferred");
    let drafted = fake
        .wait_until(Duration::from_secs(15 + n as u64 / 500), |f| {
            f.original(&d)
                .and_then(|m| m["content"].as_str().map(str::to_string))
                .filter(|c| c.contains("Post-mortem draft"))
        })
        .await
        .unwrap_or_else(|| panic!("no draft; log:\n{}", bot.log()));
    let took = started.elapsed();
    assert!(drafted.contains("**version 1** of INC-1"), "{drafted}");
    assert!(!drafted.contains("stopped after"), "{drafted}");

    // Pages of 100, forward from the last stored message; one more only if the last was full.
    let reads: Vec<Request> = history_reads(&fake, channel)
        .into_iter()
        .skip(reads_before)
        .collect();
    assert!(reads
        .iter()
        .all(|r| r.query("limit") == Some("100") && r.query("after").is_some()));
    assert_eq!(
        reads[0].query("after"),
        Some(last_stored.to_string().as_str())
    );
    let failed = reads.iter().filter(|r| r.status != 200).count();
    let pages = reads.len() - failed;
    assert_eq!(failed, 1, "the injected 502, retried");
    let expected = unread.div_ceil(100) + usize::from(unread % 100 == 0);
    assert_eq!(pages, expected, "{unread} messages to read");
    assert!(
        pages == n.div_ceil(100) || pages == n.div_ceil(100) + 1,
        "{pages} reads for {n} messages"
    );

    // The placeholder said how far reading had got before the draft replaced it.
    let edits = original_edits(&fake, &d.token);
    let last = edits.last().expect("edits of the deferred response");
    assert!(last.contains("Post-mortem draft"), "{edits:?}");
    let progress: Vec<&String> = edits[..edits.len() - 1].iter().collect();
    assert!(!progress.is_empty(), "no progress shown: {edits:?}");
    for p in &progress {
        assert!(
            p.starts_with("Reading #inc-1-orders-stuck … ") && p.ends_with(" messages so far"),
            "{p}"
        );
    }
    assert!(
        progress.len() <= 1 + took.as_secs() as usize / 2,
        "{} progress edits in {took:?}: at most one every 2 s after the first",
        progress.len()
    );

    // The export holds every seeded message: first, middle and last, in order, after the
    // key moment that was said before the note and marked after it.
    let e = fake.slash(OWNER_ID, channel, "postmortem", json!({"export": {}}));
    fake.wait_response(&e).await;
    let upload = fake
        .wait_for_request(|r| {
            r.path.contains(&e.token) && r.files.iter().any(|f| f.filename.ends_with(".md"))
        })
        .await;
    let md = String::from_utf8(upload.files[0].bytes.clone()).unwrap();
    support::assert_in_order(
        &md,
        &[
            "· Key moment · queue depth is 40k · _ana_",
            "· Note · consumer restarted · _owner_",
            "## Appendix: Channel transcript",
            "**ana**: queue depth is 40k\n",
            &format!("**ana**: message 1 of {n}\n"),
            &format!("**ana**: message {} of {n}\n", n / 2),
            &format!("**ana**: message {n} of {n}\n"),
        ],
    );
    assert_eq!(
        md.matches(&format!(" of {n}\n")).count(),
        seeded.len(),
        "each seeded message once"
    );

    // Mistakes are answered at once and privately, not in the channel after a deferral.
    let missing = fake.slash(
        OWNER_ID,
        channel,
        "postmortem",
        json!({"export": {"version": 9}}),
    );
    let r = fake.wait_response(&missing).await;
    assert_eq!(r.kind, 4, "{:?}", r.data);
    assert!(r.ephemeral());
    assert_eq!(
        r.content(),
        "INC-1 has no post-mortem version 9; the versions are 1 to 1"
    );
    let nowhere = fake.slash(
        OWNER_ID,
        GENERAL_CHANNEL_ID,
        "postmortem",
        json!({"draft": {}}),
    );
    let r = fake.wait_response(&nowhere).await;
    assert!(r.kind == 4 && r.ephemeral(), "{:?}", r.data);
    assert!(r.content().contains("which incident?"), "{}", r.content());

    // When Discord keeps failing, the draft is still made, and says what it may miss.
    fake.seed_messages(ana, channel, 3);
    fake.fail_next_n(
        "GET /channels/{channel}/messages",
        Fault::ServerError(503),
        4,
    );
    let again = fake.slash(OWNER_ID, channel, "postmortem", json!({"draft": {}}));
    fake.wait_response(&again).await;
    let warned = fake
        .wait_until(Duration::from_secs(15 + n as u64 / 500), |f| {
            f.original(&again)
                .and_then(|m| m["content"].as_str().map(str::to_string))
                .filter(|c| c.contains("Post-mortem draft"))
        })
        .await
        .expect("the second draft");
    assert!(
        warned.starts_with("⚠️ Reading #inc-1-orders-stuck stopped after 0 messages (")
            && warned.contains("`/postmortem draft` again reads on from there")
            && warned.contains("**version 2**"),
        "{warned}"
    );
    eprintln!(
        "backfill of {unread} messages: {pages} reads, {} progress edits, draft in {took:?}",
        progress.len()
    );
    assert!(bot.stop().success(), "{}", bot.log());
}

/// A draft whose reading outlasts the interaction's token (15 minutes on Discord, a few seconds
/// here) still lands: in the channel, naming whoever asked, and stored; the placeholder that
/// would say the bot never answered is taken away, and no refused token reaches anyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draft_that_outlasts_its_token_lands_in_the_channel() {
    const PAGES: usize = 7;
    let fake = FakeDiscord::start_with(FakeOptions {
        interaction_token_lifetime: Duration::from_secs(5),
        wait_timeout: Duration::from_secs(20),
        ..FakeOptions::default()
    })
    .await;
    fake.set_privileged_intents(INTENT_MESSAGE_CONTENT);
    let w = world(&fake);
    let content = [("SITREP_DISCORD__MESSAGE_CONTENT", "true")];
    let mut bot = Bot::start_with_env(&fake, w, Mode::Proxy, "", &content);
    fake.wait_ready().await;
    let open = fake.slash(
        OWNER_ID,
        GENERAL_CHANNEL_ID,
        "incident",
        json!({"open": {"title": "Orders stuck", "severity": "SEV2"}}),
    );
    fake.wait_response(&open).await;
    fake.wait_until(Duration::from_secs(10), |f| {
        f.original(&open)
            .filter(|m| m["content"].as_str().is_some_and(|c| c.contains("Opened")))
    })
    .await
    .expect("opened");
    let channel: u64 = fake
        .channel_named("inc-1-orders-stuck")
        .expect("its channel")["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let ana = fake.add_member("ana", &[]);
    fake.seed_messages(ana, channel, PAGES * 100);

    // Each history page takes a second: the first progress shows at about 2 s, while the token
    // still works; the answer is ready only after it ran out.
    fake.fail_next_n(
        "GET /channels/{channel}/messages",
        Fault::Delay(Duration::from_secs(1)),
        PAGES as u32,
    );
    let d = fake.slash(OWNER_ID, channel, "postmortem", json!({"draft": {}}));
    assert_eq!(fake.wait_response(&d).await.kind, 5, "deferred");
    let posted = fake
        .wait_message(|m| {
            m["channel_id"].as_str() == Some(channel.to_string().as_str())
                && m["content"]
                    .as_str()
                    .is_some_and(|c| c.contains("Post-mortem draft **version 1** of INC-1"))
        })
        .await;
    let text = posted["content"].as_str().unwrap();
    assert!(
        text.starts_with(&format!(
            "<@{OWNER_ID}> `/postmortem draft` took longer than Discord's 15 minutes"
        )),
        "{text}"
    );
    let id: u64 = posted["id"].as_str().unwrap().parse().unwrap();
    let pings = fake.pings(id);
    assert_eq!(pings.users, vec![OWNER_ID], "only whoever asked");
    assert!(!pings.everyone && pings.roles.is_empty());

    // The placeholder showed progress while it could, and is gone now.
    let progress = original_edits(&fake, &d.token);
    assert!(
        progress
            .iter()
            .any(|p| p.starts_with("Reading #inc-1-orders-stuck … ")),
        "{progress:?}"
    );
    fake.wait_until(Duration::from_secs(5), |f| {
        f.original_deleted(&d).then_some(())
    })
    .await
    .expect("the stale placeholder is deleted");

    // Discord refused the token at most once; nobody saw it, and it was not logged as a failure.
    let refused: Vec<Request> = fake
        .requests()
        .into_iter()
        .filter(|r| r.path.contains(&d.token) && r.status == 401)
        .collect();
    assert!(refused.len() <= 1, "{refused:?}");
    assert!(fake.followups(&d).is_empty());
    let log = bot.log();
    assert!(
        !log.contains("Invalid Webhook Token") && !log.contains("deferred answer failed"),
        "{log}"
    );
    let answers = fake
        .messages(channel)
        .iter()
        .filter(|m| {
            m["content"]
                .as_str()
                .is_some_and(|c| c.contains("Post-mortem draft"))
        })
        .count();
    assert_eq!(answers, 1, "posted once");

    assert!(bot.stop().success(), "{}", bot.log());
    let store = Store::open(bot.db_path()).unwrap();
    assert_eq!(store.postmortem_versions(IncidentId(1)).unwrap(), vec![1]);
    let record = store
        .postmortem(IncidentId(1), None)
        .unwrap()
        .expect("the draft is stored");
    let last = format!("**ana**: message {n} of {n}\n", n = PAGES * 100);
    assert!(record.markdown.contains(&last), "read to the end");
}
