//! The exposition as Prometheus reads it: names, units, labels and values.

use super::*;
use crate::app::App;
use crate::domain::{Actor, Event, EventKind, IncidentId, Severity, UserRef};
use crate::message::Post;
use crate::render::TimeStyle;
use crate::store::JobChange;
use crate::testkit::TestApp;
use chrono::{DateTime, TimeZone, Utc};

fn noon() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, 12, 0, 0).unwrap()
}

fn app() -> App {
    TestApp::builder()
        .clock_at(noon())
        .time_style(TimeStyle::Plain)
        .build_console()
        .app
}

fn open(app: &App, severity: u8) -> IncidentId {
    let id = app.store.reserve_incident_id().unwrap();
    let ev = Event {
        at: noon(),
        actor: Actor::User(UserRef::new(1, "alice")),
        kind: EventKind::Opened {
            title: format!("incident {}", id.0),
            severity: Severity(severity),
            summary: None,
            service: None,
            started: noon(),
            channel: Some(100 + id.0),
            channel_name: None,
            drill: false,
            playbook: None,
        },
    };
    app.store.create_incident(id, ev).unwrap();
    id
}

/// The value of the one line that starts with `series` followed by a space.
fn value(text: &str, series: &str) -> f64 {
    let found: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .collect();
    assert_eq!(found.len(), 1, "{series} in:\n{text}");
    found[0].parse().unwrap()
}

#[tokio::test]
async fn the_exposition_holds_every_series_with_its_labels_and_values() {
    let app = app();
    let t = Telemetry::new();
    open(&app, 1);
    open(&app, 2);
    open(&app, 2);
    let sent = |seq_min: i64| JobChange::Send {
        incident: IncidentId(1),
        channel: 101,
        post: Box::new(Post::text("queued")),
        due: noon() - chrono::Duration::minutes(seq_min),
    };
    app.store.apply_jobs(&[sent(5), sent(1)]).unwrap();

    t.gateway_session(false);
    t.gateway_session(true);
    t.gateway_session(true);
    t.interaction_done("command", "incident open", Ended::Ok);
    t.interaction_done("command", "incident open", Ended::Ok);
    t.interaction_done("command", "incident update", Ended::UserError);
    t.interaction_done("button", "escalation ack", Ended::InternalError);
    t.interaction_acked("command", "incident open", Duration::from_millis(40));
    t.interaction_acked("command", "incident open", Duration::from_millis(2800));
    t.discord_request("send message", Answer::Success);
    t.discord_request("send message", Answer::Status(429));
    t.discord_request("send message", Answer::Status(429));
    t.discord_request("create channel", Answer::Status(403));
    t.discord_request("create channel", Answer::Status(400));
    t.discord_request("create channel", Answer::Timeout);
    t.rate_limit_wait(false);
    t.job_ran("status", Duration::from_secs(2));
    t.set_latency_probe(Box::new(|| {
        Box::pin(async { Some(Duration::from_millis(42)) })
    }));

    let text = t
        .exposition(&app.store, &app.config, app.now())
        .await
        .unwrap();
    assert!(
        text.contains("# TYPE sitrep_interactions_total counter"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE sitrep_interaction_ack_seconds histogram"),
        "{text}"
    );
    assert!(
        !text.contains("# EOF"),
        "Prometheus' text format, not OpenMetrics"
    );
    assert_eq!(value(&text, "sitrep_gateway_latency_seconds"), 0.042);
    assert_eq!(
        value(&text, r#"sitrep_gateway_sessions_total{event="resumed"}"#),
        2.0
    );
    assert_eq!(
        value(&text, r#"sitrep_gateway_sessions_total{event="ready"}"#),
        1.0
    );
    assert_eq!(
        value(
            &text,
            r#"sitrep_interactions_total{kind="command",command="incident open",outcome="ok"}"#
        ),
        2.0
    );
    assert_eq!(
        value(
            &text,
            r#"sitrep_interactions_total{kind="command",command="incident update",outcome="user_error"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            r#"sitrep_interactions_total{kind="button",command="escalation ack",outcome="internal_error"}"#
        ),
        1.0
    );
    let ack = r#"sitrep_interaction_ack_seconds_bucket{kind="command",command="incident open",le="0.05"}"#;
    assert_eq!(value(&text, ack), 1.0);
    let ack =
        r#"sitrep_interaction_ack_seconds_bucket{kind="command",command="incident open",le="3"}"#;
    assert_eq!(value(&text, ack), 2.0);
    assert_eq!(
        value(
            &text,
            r#"sitrep_interaction_ack_seconds_count{kind="command",command="incident open"}"#
        ),
        2.0
    );
    assert_eq!(
        value(
            &text,
            r#"sitrep_discord_requests_total{route="send message",status="429"}"#
        ),
        2.0
    );
    assert_eq!(
        value(
            &text,
            r#"sitrep_discord_requests_total{route="create channel",status="timeout"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            r#"sitrep_discord_rate_limited_total{route="send message"}"#
        ),
        2.0
    );
    // Two 429s and a 403; the 400 and the timeout are not what Discord bans for.
    assert_eq!(value(&text, "sitrep_discord_invalid_requests"), 3.0);
    assert_eq!(
        value(
            &text,
            r#"sitrep_discord_rate_limit_waits_total{global="false"}"#
        ),
        1.0
    );
    assert_eq!(value(&text, "sitrep_outbox_depth"), 2.0);
    assert_eq!(value(&text, "sitrep_outbox_oldest_age_seconds"), 300.0);
    assert_eq!(
        value(&text, r#"sitrep_scheduler_lag_seconds_count{job="status"}"#),
        1.0
    );
    assert_eq!(
        value(&text, r#"sitrep_open_incidents{severity="SEV1"}"#),
        1.0
    );
    assert_eq!(
        value(&text, r#"sitrep_open_incidents{severity="SEV2"}"#),
        2.0
    );
    assert_eq!(
        value(&text, r#"sitrep_open_incidents{severity="SEV4"}"#),
        0.0,
        "a configured severity with nothing open is there, at 0"
    );
}

#[tokio::test]
async fn gateway_latency_is_absent_until_known_and_the_outbox_empty_is_zero() {
    let app = app();
    let t = Telemetry::new();
    let text = t
        .exposition(&app.store, &app.config, app.now())
        .await
        .unwrap();
    assert!(!text.contains("sitrep_gateway_latency_seconds "), "{text}");
    assert_eq!(value(&text, "sitrep_outbox_depth"), 0.0);
    assert_eq!(value(&text, "sitrep_outbox_oldest_age_seconds"), 0.0);
}

#[tokio::test(start_paused = true)]
async fn invalid_requests_leave_the_window_after_ten_minutes() {
    let t = Telemetry::new();
    t.discord_request("send message", Answer::Status(401));
    tokio::time::advance(Duration::from_secs(5 * 60)).await;
    t.discord_request("send message", Answer::Status(429));
    assert_eq!(t.invalid_requests(), 2);
    tokio::time::advance(Duration::from_secs(5 * 60)).await;
    assert_eq!(t.invalid_requests(), 1, "the first one is 10 minutes old");
    tokio::time::advance(Duration::from_secs(5 * 60)).await;
    assert_eq!(t.invalid_requests(), 0);
}

#[test]
fn a_label_stops_taking_new_values_at_its_cap() {
    let t = Telemetry::new();
    for n in 0..MAX_LABEL_VALUES + 5 {
        t.discord_request(&format!("route {n}"), Answer::Success);
    }
    t.discord_request("route 0", Answer::Success);
    let other = t
        .requests
        .get(&RequestLabels {
            route: "other".into(),
            status: "2xx".into(),
        })
        .map(|c| c.get());
    assert_eq!(other, Some(5), "the five past the cap");
    assert_eq!(
        t.requests
            .get(&RequestLabels {
                route: "route 0".into(),
                status: "2xx".into(),
            })
            .map(|c| c.get()),
        Some(2)
    );
}
