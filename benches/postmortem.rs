//! Loading, compiling and rendering a post-mortem draft at three sizes, to show it grows linearly.
//!
//! `cargo bench --bench postmortem` runs 2k messages + 200 events, 20k + 2k and 200k + 20k;
//! `cargo bench --bench postmortem -- 20000` runs only the sizes with that many messages.
//! Results and the machine they were taken on are in BENCHMARKS.md.

use chrono::{DateTime, Duration, TimeZone, Utc};
use sitrep::config::Config;
use sitrep::domain::{Actor, Event, EventKind, IncidentId, Severity, State, UserRef};
use sitrep::postmortem::{self, Meta};
use sitrep::render::{Renderer, TimeStyle};
use sitrep::store::{CapturedMessage, MessageAttachment, Store};
use std::hint::black_box;
use std::time::Instant;

const SIZES: &[(usize, usize)] = &[(2_000, 200), (20_000, 2_000), (200_000, 20_000)];
const PEOPLE: u64 = 40;

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 10, 0, 0).unwrap()
}

fn person(n: u64) -> UserRef {
    UserRef::new(1_000 + n % PEOPLE, format!("responder{}", n % PEOPLE))
}

/// An incident as a long one looks: a busy channel, updates, notes, metrics, deploys,
/// escalations and key moments, spread over the hours it lasted.
fn build(messages: usize, events: usize) -> (Store, IncidentId, DateTime<Utc>) {
    let store = Store::temporary().unwrap();
    let id = store.reserve_incident_id().unwrap();
    let t0 = start();
    let opened = Event {
        at: t0,
        actor: Actor::User(person(0)),
        kind: EventKind::Opened {
            title: "Checkout returns 500 for EU customers".into(),
            severity: Severity(1),
            summary: Some("Payments fail at the gateway".into()),
            service: Some("checkout".into()),
            started: t0 - Duration::minutes(12),
            channel: Some(42),
            channel_name: Some("inc-1-checkout".into()),
            drill: false,
            playbook: None,
        },
    };
    store.create_incident(id, opened).unwrap();

    // One message a second or so; snowflake-like ids that grow with time.
    for i in 0..messages {
        let at = t0 + Duration::milliseconds(i as i64 * 900);
        let text = match i % 7 {
            0 => format!(
                "checking pod checkout-{} logs, error rate still {}%",
                i % 50,
                i % 13
            ),
            1 => format!(
                "<@{}> can you look at the gateway dashboard?",
                1_000 + (i as u64 + 3) % PEOPLE
            ),
            2 => "rolling back the last config change on the payment gateway now".to_string(),
            3 => format!("p99 latency is {}ms, baseline is 180ms", 200 + i % 900),
            4 => "I think this was human error during the cert rotation".to_string(),
            5 => "seeing TLS handshake failures from the gateway to the card processor".to_string(),
            _ => format!("ack, on it ({i})"),
        };
        let mut m = CapturedMessage::new((i as u64 + 1) << 22, 42, person(i as u64), at, text);
        if i % 50 == 0 {
            m.attachments.push(MessageAttachment {
                name: format!("screenshot-{i}.png"),
                url: format!("https://cdn.example.com/{i}.png"),
                content_type: Some("image/png".into()),
            });
        }
        store.capture_message(id, &m).unwrap();
    }

    let span = Duration::milliseconds(messages as i64 * 900);
    let every = span / (events.max(1) as i32);
    let mut highlight = 0u64;
    for i in 0..events {
        let at = t0 + every * (i as i32);
        let who = Actor::User(person(i as u64 * 7));
        let kind = match i % 10 {
            0 | 5 => EventKind::StatusPosted {
                automated: false,
                state: State::Investigating,
                text: format!("Update {i}: error rate {}%, gateway team engaged", i % 40),
            },
            1 => EventKind::NoteAdded {
                text: format!("Tried restarting gateway pod {}", i % 30),
            },
            2 => EventKind::MetricSnapshot {
                query: "error_rate".into(),
                summary: format!("{}.{} req/s, 30× a day ago", i % 90, i % 10),
                chart: None,
            },
            3 => EventKind::DeployObserved {
                service: format!("service-{}", i % 12),
                version: format!("v1.{i}"),
                environment: Some("production".into()),
                url: Some(format!("https://ci.example.com/{i}")),
                deployed_at: at,
            },
            4 => EventKind::Escalated {
                escalation: i as u32,
                target: "payments-oncall".into(),
                level: 1,
                roles: vec![7],
                reason: "the gateway belongs to payments".into(),
                users: Vec::new(),
            },
            6 => EventKind::EscalationAcknowledged {
                escalation: i as u32 - 2,
            },
            7 => EventKind::ActionItemAdded {
                text: format!("Alert on certificate expiry for service-{}", i % 12),
                owner: Some(person(i as u64)),
                due: Some(at + Duration::days(14)),
            },
            _ => {
                // A key moment: one of the channel's messages, highlighted through the store.
                highlight = (highlight + 97) % messages.max(1) as u64;
                store
                    .highlight_message(id, (highlight + 1) << 22, &who, at)
                    .unwrap();
                continue;
            }
        };
        store
            .append(id, &who, at, move |_| Ok(vec![kind.clone()]))
            .unwrap();
    }
    let end = t0 + span + Duration::minutes(5);
    store
        .append(id, &Actor::User(person(0)), end, |i| {
            i.decide_resolve("Renewed the expired certificate")
        })
        .unwrap();
    (store, id, end)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

fn main() {
    let only: Option<usize> = std::env::args().skip(1).find_map(|a| a.parse().ok());
    let renderer = Renderer::new(None, TimeStyle::Plain).unwrap();
    // Medians per phase; the total also as its minimum, the steadiest figure on a shared machine.
    println!(
        "| messages | events | transcript | load ms | compile ms | render ms | total ms (median) | total ms (min) | draft KiB | runs |"
    );
    println!("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    for &(messages, events) in SIZES {
        if only.is_some_and(|n| n != messages) {
            continue;
        }
        let (store, id, end) = build(messages, events);
        let runs = if messages >= 200_000 { 3 } else { 11 };
        for transcript in [false, true] {
            let mut config = Config::default();
            config.postmortem.transcript = transcript;
            let meta = Meta {
                version: Some(1),
                compiled_at: end,
                compiled_by: Some(person(0)),
            };
            let (mut load, mut compile, mut render, mut total) = (vec![], vec![], vec![], vec![]);
            let mut size = 0;
            for _ in 0..runs {
                let t = Instant::now();
                let src = postmortem::load(&store, &config, id).unwrap().unwrap();
                load.push(ms(t));
                let c = Instant::now();
                let draft = postmortem::compile(&src, &config, &meta);
                compile.push(ms(c));
                let r = Instant::now();
                let md = postmortem::render(&renderer, &draft).unwrap();
                render.push(ms(r));
                total.push(ms(t));
                size = md.len();
                black_box(md);
            }
            let least = total.iter().copied().fold(f64::INFINITY, f64::min);
            println!(
                "| {messages} | {events} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {least:.1} | {} | {runs} |",
                if transcript { "yes" } else { "no" },
                median(load),
                median(compile),
                median(render),
                median(total),
                size / 1024,
            );
        }
    }
}
