//! Every template of `templates/` fed hostile titles, summaries, updates, notes, names and
//! messages in a realistic incident, then the posts built from them as serenity would send them.
//!
//! Checks, per template: user text is data, never template source (rendering the same incident
//! with each text replaced by a marker, then putting the texts back, gives the real output
//! exactly), and every mention in the output lies inside one user text or was placed by the
//! template itself. Per post: Discord's limits and `allowed_mentions` that ping only whom the
//! feature meant.
#![no_main]

use arbitrary::{Result, Unstructured};
use chrono::{DateTime, Duration, TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use minijinja::context;
use serde_json::Value;
use sitrep::app::App;
use sitrep::clock::SystemClock;
use sitrep::chat::discord::{build_http, global_limiter, outgoing, DiscordChat};
use sitrep::config::{Config, EscalationTarget, Secrets};
use sitrep::domain::{Actor, Event, EventKind, Incident, IncidentId, Severity, State, UserRef};
use sitrep::escalation::{page_post, Ladder};
use sitrep::message::Post;
use sitrep::postmortem::{compile, Meta, Sources};
use sitrep::render::{IncidentView, Renderer, TimeStyle};
use sitrep::status::{incident_post, reminder_post, status_text};
use sitrep::store::{CapturedMessage, Deploy, DeploySource};
use sitrep::testkit::TestApp;
use sitrep_fuzz::{assert_message_ok, hostile, mentions, Mention};
use std::sync::{Arc, OnceLock};

const COMMANDER: u64 = 1_300_000_000_000_000_004;
const HELPER: u64 = 1_300_000_000_000_000_010;
const OWNER: u64 = 1_300_000_000_000_000_011;
const ACKER: u64 = 1_300_000_000_000_000_012;
const DBA_ROLE: u64 = 1_300_000_000_000_000_777;
const CHANNEL: u64 = 1_300_000_000_000_000_100;
const STAKEHOLDERS: u64 = 1_300_000_000_000_000_101;

/// Opening mark of a stand-in; private-use characters that no template or configured value holds.
const OPEN: char = '\u{F8F0}';
const CLOSE: char = '\u{F8F1}';

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 10, 0, 0).unwrap()
}

fn config() -> Config {
    let mut c = Config::default();
    c.discord.stakeholder_channel_id = Some(STAKEHOLDERS);
    c.escalation.targets.insert(
        "dba".into(),
        EscalationTarget {
            roles: vec![DBA_ROLE],
            pagerduty_routing_key_env: None,
            description: None,
            schedule: None,
        },
    );
    c
}

struct World {
    app: App,
    renderer: Renderer,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let config = Arc::new(config());
        let secrets = Secrets {
            discord_token: Some("fuzz".into()),
            ..Secrets::default()
        };
        // Never called: the posts are built and serialized, not sent.
        let http = build_http(&config, &secrets).expect("an HTTP client");
        let chat = DiscordChat::new(Arc::new(http), config.clone(), Arc::new(global_limiter()));
        let app = TestApp::builder()
            .config((*config).clone())
            .clock(Arc::new(SystemClock))
            .build_with(Arc::new(chat))
            .app;
        World {
            app,
            renderer: Renderer::new(None, TimeStyle::Discord).expect("built-in templates"),
        }
    })
}

/// Everything a person could have typed into an incident.
#[derive(Clone, Debug)]
struct Texts {
    title: String,
    summary: Option<String>,
    service: Option<String>,
    commander: String,
    helper: String,
    owner: String,
    acker: String,
    updates: Vec<String>,
    note: String,
    action: String,
    severity_reason: Option<String>,
    escalation_reason: String,
    resolution: String,
    messages: Vec<(String, String)>,
    deploy: (String, String),
}

impl Texts {
    fn arbitrary(u: &mut Unstructured) -> Result<Texts> {
        let opt = |u: &mut Unstructured| -> Result<Option<String>> {
            Ok(if u.arbitrary()? {
                Some(hostile(u)?)
            } else {
                None
            })
        };
        let n_updates = u.int_in_range(0..=2)?;
        let n_messages = u.int_in_range(0..=3)?;
        Ok(Texts {
            title: hostile(u)?,
            summary: opt(u)?,
            service: opt(u)?,
            commander: hostile(u)?,
            helper: hostile(u)?,
            owner: hostile(u)?,
            acker: hostile(u)?,
            updates: (0..n_updates).map(|_| hostile(u)).collect::<Result<_>>()?,
            note: hostile(u)?,
            action: hostile(u)?,
            severity_reason: opt(u)?,
            escalation_reason: hostile(u)?,
            resolution: hostile(u)?,
            messages: (0..n_messages)
                .map(|_| Ok((hostile(u)?, hostile(u)?)))
                .collect::<Result<_>>()?,
            deploy: (hostile(u)?, hostile(u)?),
        })
    }

    /// The same texts with each non-empty one replaced by `f`.
    fn map(&self, f: &mut impl FnMut(&str) -> String) -> Texts {
        let mut g = |s: &str| if s.is_empty() { String::new() } else { f(s) };
        Texts {
            title: g(&self.title),
            summary: self.summary.as_deref().map(&mut g),
            service: self.service.as_deref().map(&mut g),
            commander: g(&self.commander),
            helper: g(&self.helper),
            owner: g(&self.owner),
            acker: g(&self.acker),
            updates: self.updates.iter().map(|s| g(s)).collect(),
            note: g(&self.note),
            action: g(&self.action),
            severity_reason: self.severity_reason.as_deref().map(&mut g),
            escalation_reason: g(&self.escalation_reason),
            resolution: g(&self.resolution),
            messages: self.messages.iter().map(|(a, m)| (g(a), g(m))).collect(),
            deploy: (g(&self.deploy.0), g(&self.deploy.1)),
        }
    }
}

/// How far the incident got.
#[derive(Clone, Copy, Debug)]
struct Plan {
    acknowledged: bool,
    resolved: bool,
    automated: bool,
    stakeholders: bool,
}

fn events(t: &Texts, p: Plan) -> Vec<Event> {
    let commander = UserRef::new(COMMANDER, &t.commander);
    let helper = UserRef::new(HELPER, &t.helper);
    let at = |m: i64| t0() + Duration::minutes(m);
    let by = |who: &UserRef, m: i64, kind: EventKind| Event {
        at: at(m),
        actor: Actor::User(who.clone()),
        kind,
    };
    let mut ev = vec![by(
        &commander,
        0,
        EventKind::Opened {
            title: t.title.clone(),
            severity: Severity(1),
            summary: t.summary.clone(),
            service: t.service.clone(),
            started: at(-7),
            channel: Some(CHANNEL),
            channel_name: Some("inc-1".into()),
            drill: false,
            playbook: None,
        },
    )];
    ev.push(by(
        &commander,
        1,
        EventKind::RoleAssigned {
            role: "communications".into(),
            user: helper.clone(),
        },
    ));
    for (i, text) in t.updates.iter().enumerate() {
        ev.push(by(
            &helper,
            2 + i as i64,
            EventKind::StatusPosted {
                automated: false,
                state: State::Identified,
                text: text.clone(),
            },
        ));
    }
    ev.push(by(
        &helper,
        5,
        EventKind::NoteAdded {
            text: t.note.clone(),
        },
    ));
    ev.push(by(
        &commander,
        6,
        EventKind::ActionItemAdded {
            text: t.action.clone(),
            owner: Some(UserRef::new(OWNER, &t.owner)),
            due: Some(at(60 * 24)),
        },
    ));
    ev.push(by(
        &commander,
        7,
        EventKind::SeverityChanged {
            from: Severity(1),
            to: Severity(2),
            reason: t.severity_reason.clone(),
        },
    ));
    ev.push(by(
        &commander,
        8,
        EventKind::Escalated {
            escalation: 1,
            target: "dba".into(),
            level: 1,
            roles: vec![DBA_ROLE],
            reason: t.escalation_reason.clone(),
            users: Vec::new(),
        },
    ));
    for (i, (author, content)) in t.messages.iter().enumerate() {
        ev.push(by(
            &UserRef::new(HELPER + 100 + i as u64, author),
            9,
            EventKind::MessageCaptured {
                message_id: 5000 + i as u64,
                author: UserRef::new(HELPER + 100 + i as u64, author),
                content: content.clone(),
                change: "highlighted".into(),
                said_at: Some(t0() + Duration::minutes(8)),
            },
        ));
    }
    if p.acknowledged {
        ev.push(by(
            &UserRef::new(ACKER, &t.acker),
            10,
            EventKind::EscalationAcknowledged { escalation: 1 },
        ));
    }
    ev.push(by(
        &helper,
        11,
        EventKind::StateChanged {
            from: State::Investigating,
            to: State::Monitoring,
        },
    ));
    if p.resolved {
        ev.push(by(
            &commander,
            20,
            EventKind::Resolved {
                summary: t.resolution.clone(),
            },
        ));
    }
    ev
}

fn incident(events: &[Event]) -> Incident {
    let mut inc = Incident::from_opened(IncidentId(1), &events[0]).expect("opened");
    for e in &events[1..] {
        inc.apply(e);
    }
    inc
}

fn mention(id: u64) -> String {
    format!("<@{id}>")
}

/// Each template with the context its caller gives it.
fn renders(r: &Renderer, inc: &Incident, p: Plan) -> Vec<(&'static str, String)> {
    let now = t0() + Duration::minutes(30);
    let view = IncidentView::new(inc, &config(), format!("<#{CHANNEL}>"), now);
    let next = Some(now + Duration::minutes(15));
    let esc = inc.escalations.get(1).expect("escalated");
    let acknowledged = esc.acknowledged.as_ref().map(|a| {
        context! {
            by => mention(a.by.user().map_or(0, |u| u.id)),
            at => a.at,
            tta => "2m",
        }
    });
    let render = |name: &str, ctx: minijinja::Value| {
        r.render(name, ctx)
            .unwrap_or_else(|e| panic!("{name} failed on {inc:?}: {e}"))
    };
    vec![
        (
            "opened/responders",
            render(
                "incident_opened.md.j2",
                context! { incident => &view, audience => "responders" },
            ),
        ),
        (
            "opened/stakeholders",
            render(
                "incident_opened.md.j2",
                context! { incident => &view, audience => "stakeholders" },
            ),
        ),
        (
            "status_update",
            render(
                "status_update.md.j2",
                context! { incident => &view, automated => p.automated, next_update => next },
            ),
        ),
        (
            "resolved",
            render("resolved.md.j2", context! { incident => &view }),
        ),
        (
            "update_reminder",
            render(
                "update_reminder.md.j2",
                context! {
                    incident => &view,
                    commander => mention(COMMANDER),
                    since => now - Duration::minutes(20),
                    next_update => next,
                },
            ),
        ),
        (
            "escalation",
            render(
                "escalation.md.j2",
                context! {
                    incident => &view,
                    commander => mention(COMMANDER),
                    reason => &esc.reason,
                    by => mention(COMMANDER),
                    target => "dba",
                    level => 1,
                    next_target => Some("sre-lead"),
                    next_at => next,
                    acknowledged,
                    stopped => esc.stopped.is_some(),
                },
            ),
        ),
    ]
}

fn sources(t: &Texts, p: Plan) -> Sources {
    let ev = events(t, p);
    let messages = t
        .messages
        .iter()
        .enumerate()
        .map(|(i, (author, content))| CapturedMessage {
            id: 5000 + i as u64,
            channel: CHANNEL,
            author: UserRef::new(HELPER + 100 + i as u64, author),
            at: t0() + Duration::minutes(9),
            content: content.clone(),
            attachments: Vec::new(),
            reply_to: None,
            history: Vec::new(),
            edited_at: None,
            deleted_at: None,
            highlighted: None,
        })
        .collect();
    let deploys = vec![Deploy {
        source: DeploySource::Webhook,
        id: "0".repeat(32),
        service: t.deploy.0.clone(),
        version: t.deploy.1.clone(),
        commit: None,
        author: Some(t.commander.clone()),
        environment: None,
        status: Some("success".into()),
        url: Some("https://ci.example.com/run/7".into()),
        time: t0() - Duration::minutes(10),
    }];
    Sources {
        incident: incident(&ev),
        events: ev,
        messages,
        deploys,
        text_gaps: Vec::new(),
    }
}

/// Every non-empty string in `v`, replaced by `f`.
fn mark_json(v: &Value, f: &mut impl FnMut(&str) -> String) -> Value {
    match v {
        Value::String(s) if !s.is_empty() => Value::String(f(s)),
        Value::Array(a) => Value::Array(a.iter().map(|x| mark_json(x, f)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), mark_json(x, f)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Puts the texts back into a render of stand-ins; returns the text and where each one went.
fn unmark(skeleton: &str, texts: &[String]) -> (String, Vec<std::ops::Range<usize>>) {
    let mut out = String::new();
    let mut spans = Vec::new();
    let mut rest = skeleton;
    while let Some(i) = rest.find(OPEN) {
        out.push_str(&rest[..i]);
        let after = &rest[i + OPEN.len_utf8()..];
        let j = after.find(CLOSE).expect("a closed stand-in");
        let n: usize = after[..j].parse().expect("a stand-in number");
        let start = out.len();
        out.push_str(&texts[n]);
        spans.push(start..out.len());
        rest = &after[j + CLOSE.len_utf8()..];
    }
    out.push_str(rest);
    (out, spans)
}

/// `real` is `skeleton` with the texts put back, and its mentions are the user's or the
/// template's own.
fn assert_data_not_source(what: &str, real: &str, skeleton: &str, texts: &[String]) {
    assert!(
        !skeleton.contains(OPEN) || skeleton.contains(CLOSE),
        "{what}: a stand-in was cut"
    );
    let (rebuilt, spans) = unmark(skeleton, texts);
    assert_eq!(
        rebuilt.trim(),
        real,
        "{what}: user text changed the template's output"
    );
    let template_may = [
        Mention::User(COMMANDER),
        Mention::User(ACKER),
        Mention::User(HELPER),
    ];
    for (range, m) in mentions(&rebuilt) {
        let inside = spans
            .iter()
            .any(|s| s.start <= range.start && range.end <= s.end);
        let overlaps = spans
            .iter()
            .any(|s| s.start < range.end && range.start < s.end);
        if inside {
            continue;
        }
        assert!(
            !overlaps,
            "{what}: mention {:?} made by joining user text with the template: {rebuilt:?}",
            &rebuilt[range.clone()]
        );
        assert!(
            template_may.contains(&m),
            "{what}: the template placed {m:?}"
        );
    }
}

fn json<T: serde::Serialize>(b: T) -> Value {
    serde_json::to_value(b).expect("serenity builders serialize")
}

/// The posts the bot builds from these renders, as serenity would send them.
fn check_posts(inc: &Incident, p: Plan) {
    let app = &world().app;
    let now = t0() + Duration::minutes(30);
    let body = world()
        .renderer
        .render(
            "incident_opened.md.j2",
            context! {
                incident => sitrep::status::view(app, inc),
                audience => if p.stakeholders { "stakeholders" } else { "responders" },
            },
        )
        .expect("renders");
    let mut posts: Vec<(Post, Vec<u64>, Vec<u64>)> = Vec::new();
    posts.push((incident_post(app, inc, "", body), vec![], vec![]));
    let status = status_text(app, inc, p.automated, Some(now)).expect("renders");
    posts.push((incident_post(app, inc, "Update", status), vec![], vec![]));
    let reminder = reminder_post(app, inc, now, Some(now)).expect("renders");
    posts.push((reminder, vec![COMMANDER], vec![]));
    let esc = inc.escalations.get(1).expect("escalated");
    let page = esc.current().expect("paged");
    let ladder = Ladder {
        policy: None,
        levels: vec!["dba".into(), "sre-lead".into()],
        ack_timeout: std::time::Duration::from_secs(600),
    };
    for l in [Some(&ladder), None] {
        let post = page_post(app, inc, esc, page, l).expect("renders");
        posts.push((post, vec![], vec![DBA_ROLE]));
    }
    for (post, users, roles) in posts {
        assert_message_ok(&json(outgoing::message(post.clone())), &users, &roles);
        assert_message_ok(&json(outgoing::reply(post.clone(), false)), &users, &roles);
        assert_message_ok(&json(outgoing::edit(post.clone())), &users, &roles);
        assert_message_ok(&json(outgoing::edit_message(post)), &[], &[]);
    }
}

fn run(u: &mut Unstructured) -> Result<()> {
    let texts = Texts::arbitrary(u)?;
    let plan = Plan {
        acknowledged: u.arbitrary()?,
        resolved: u.arbitrary()?,
        automated: u.arbitrary()?,
        stakeholders: u.arbitrary()?,
    };
    let mut originals = Vec::new();
    let marked = texts.map(&mut |s| {
        originals.push(s.to_string());
        format!("{OPEN}{}{CLOSE}", originals.len() - 1)
    });
    let r = &world().renderer;
    let real = incident(&events(&texts, plan));
    let skeleton = incident(&events(&marked, plan));
    for ((what, out), (_, sk)) in renders(r, &real, plan)
        .into_iter()
        .zip(renders(r, &skeleton, plan))
    {
        assert_data_not_source(what, &out, &sk, &originals);
    }

    // The post-mortem compiles free text (names become aliases, phrases are linted), so the
    // check starts from the compiled draft: what the template receives.
    let config = config();
    let meta = Meta {
        version: Some(1),
        compiled_at: t0() + Duration::hours(1),
        compiled_by: Some(UserRef::new(COMMANDER, &texts.commander)),
    };
    let draft = serde_json::to_value(compile(&sources(&texts, plan), &config, &meta))
        .expect("a draft serializes");
    let mut pm_texts = Vec::new();
    let pm_marked = mark_json(&draft, &mut |s| {
        pm_texts.push(s.to_string());
        format!("{OPEN}{}{CLOSE}", pm_texts.len() - 1)
    });
    let pm = r
        .render("postmortem.md.j2", &draft)
        .unwrap_or_else(|e| panic!("postmortem failed: {e}"));
    let pm_sk = r.render("postmortem.md.j2", &pm_marked).expect("renders");
    assert_data_not_source("postmortem", &pm, &pm_sk, &pm_texts);

    check_posts(&real, plan);
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
