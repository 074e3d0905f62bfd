use super::*;
use crate::testkit::TestApp;
use std::collections::BTreeMap;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn config(extra: &str) -> Config {
    let toml = format!(
        r#"
        [people]
        alice = 111
        bob = 222
        "dave@example.com" = 444

        [oncall.web]
        description = "Web on call"
        [oncall.web.rotation]
        members = ["alice", "bob"]
        time_zone = "Europe/Berlin"
        start = "2026-11-02"
        handoff_weekday = "mon"
        {extra}
        "#
    );
    Config::from_parts(Some(("a.toml", &toml)), &BTreeMap::new()).unwrap()
}

#[tokio::test]
async fn a_rotation_answers_now_and_next_with_discord_timestamps() {
    let kit = TestApp::builder()
        .config(config(""))
        .clock_at(at("2026-11-03T12:00:00Z"))
        .build();
    let a = lookup(&kit.app, "WEB").await.unwrap();
    assert_eq!(a.schedule, "web");
    assert_eq!(a.unreachable, None);
    let text = describe(&kit.app, &a);
    let handoff = at("2026-11-09T08:00:00Z").timestamp();
    assert!(text.starts_with("**web** (Web on call)\n"), "{text}");
    assert!(
        text.contains(&format!(
            "On call now: <@111> (alice) since <t:{}:f>, hands off <t:{handoff}:f> (<t:{handoff}:R>)",
            at("2026-11-02T08:00:00Z").timestamp()
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "Next: <@222> (bob) from <t:{handoff}:f> (<t:{handoff}:R>)"
        )),
        "{text}"
    );
    assert_eq!(
        current_user(&kit.app.config, &a, kit.app.now()).map(|u| u.id),
        Some(111)
    );
    let err = lookup(&kit.app, "nope").await.unwrap_err().to_string();
    assert_eq!(err, "`nope` is not an on-call schedule; configured: web");
}

#[tokio::test]
async fn a_failing_source_answers_with_the_last_known_answer_marked() {
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("dba.ics");
    std::fs::write(&feed, include_str!("../../tests/fixtures/oncall.ics")).unwrap();
    let extra = format!(
        "[oncall.dba]\nical = {{ file = {:?} }}\n",
        feed.display().to_string()
    );
    let kit = TestApp::builder()
        .config(config(&extra))
        .clock_at(at("2026-11-14T12:00:00Z"))
        .build();
    let fresh = lookup(&kit.app, "dba").await.unwrap();
    let now = fresh.shifts.now.as_ref().unwrap();
    assert_eq!(now.who.email.as_deref(), Some("dave@example.com"));
    // Dave is mapped by his email.
    assert!(describe(&kit.app, &fresh).contains("On call now: <@444> (Dave)"));

    std::fs::remove_file(&feed).unwrap();
    kit.set(at("2026-11-14T13:00:00Z"));
    let stale = lookup(&kit.app, "dba").await.unwrap();
    assert_eq!(stale.shifts, fresh.shifts);
    assert_eq!(stale.as_of, at("2026-11-14T12:00:00Z"));
    let text = describe(&kit.app, &stale);
    assert!(
        text.contains(&format!(
            "⚠ As of <t:{}:t>, source unreachable (cannot fetch the calendar: ",
            at("2026-11-14T12:00:00Z").timestamp()
        )),
        "{text}"
    );
    // A stale answer whose shift has ended points at whoever it said was next.
    let later = at("2026-11-15T01:00:00Z");
    assert_eq!(
        current_user(&kit.app.config, &stale, later).map(|u| u.name),
        Some("Bob".into())
    );
}

#[tokio::test]
async fn a_source_that_never_answered_is_an_error_not_nobody() {
    let extra = "[oncall.gone]\nical = { file = \"/nonexistent/sitrep/feed.ics\" }\n";
    let kit = TestApp::builder()
        .config(config(extra))
        .clock_at(at("2026-11-03T12:00:00Z"))
        .build();
    let err = lookup(&kit.app, "gone").await.unwrap_err().to_string();
    assert!(
        err.starts_with("the source of gone cannot be read (cannot fetch the calendar: /nonexistent/sitrep/feed.ics"),
        "{err}"
    );
}
