//! `/incident` rules through the console adapter: every rejected command leaves the store as it was.

use sitrep::chat::console::Console;
use sitrep::clock::SystemClock;
use sitrep::commands::options::console_user_id;
use sitrep::domain::{IncidentId, State, UserRef};
use sitrep::render::TimeStyle;
use sitrep::store::Store;
use sitrep::testkit::TestApp;
use std::sync::{Arc, Mutex};

struct Harness {
    console: Console,
    out: Arc<Mutex<Vec<u8>>>,
}

impl Harness {
    fn new() -> Harness {
        // The system's clock, as the console runs.
        let kit = TestApp::builder()
            .clock(Arc::new(SystemClock))
            .time_style(TimeStyle::Plain)
            .build_console();
        Harness {
            console: Console {
                app: kit.app,
                chat: kit.chat,
                user: UserRef::new(console_user_id("alice"), "alice"),
            },
            out: kit.out,
        }
    }

    /// Runs a line and returns what it printed.
    async fn run(&self, line: &str) -> String {
        self.out.lock().unwrap().clear();
        self.console.line(line).await;
        String::from_utf8(self.out.lock().unwrap().clone()).unwrap()
    }

    fn store(&self) -> &Store {
        &self.console.app.store
    }
}

#[tokio::test]
async fn rejected_commands_change_nothing() {
    let h = Harness::new();
    h.run(r#"/incident open title:"Checkout returns 500" severity:SEV2"#)
        .await;
    h.run(r#"/incident open title:"Search slow" severity:SEV3"#)
        .await;
    h.run(r#"/incident resolve summary:"fixed" incident:INC-2"#)
        .await;
    h.run("/incident note text:back-to-one incident:INC-1")
        .await;

    let long = "x".repeat(151);
    let cases = [
        (
            "/incident open severity:SEV2".to_string(),
            "`title` is required",
        ),
        (
            "/incident open title:x severity:SEV2 colour:red".into(),
            "unknown option `colour`",
        ),
        (
            r#"/incident open title:"   " severity:SEV2"#.into(),
            "must not be empty",
        ),
        (
            format!("/incident open title:{long} severity:SEV2"),
            "151 characters is too long",
        ),
        (
            "/incident open title:x severity:SEV7".into(),
            "must be one of",
        ),
        (
            "/incident open title:x severity:SEV1 started:\"in 2h\"".into(),
            "not a time",
        ),
        (
            "/incident open title:x severity:SEV1 started:2099-01-01T00:00:00Z".into(),
            "in the future",
        ),
        (
            "/incident status incident:INC-99".into(),
            "INC-99 does not exist",
        ),
        (
            "/incident note text:hi incident:INC-99".into(),
            "INC-99 does not exist",
        ),
        (
            "/incident note text:hi incident:banana".into(),
            "not an incident id",
        ),
        (
            "/incident update message:again incident:INC-2".into(),
            "INC-2 is resolved; reopen it",
        ),
        (
            "/incident update state:resolved message:x".into(),
            "must be one of",
        ),
        (
            "/incident reopen reason:why incident:INC-1".into(),
            "INC-1 is not resolved",
        ),
        (
            "/incident role role:commander user:@".into(),
            "names nobody",
        ),
        ("/incident role role:commander".into(), "`user` is required"),
        (
            "/incident role role:commander user:@alice".into(),
            "alice is already the commander",
        ),
        (
            "/incident severity level:SEV2".into(),
            "INC-1 is already SEV2",
        ),
        (
            "/incident action text:x due:2001-01-01".into(),
            "in the past",
        ),
        (
            r#"/incident note text:"unbalanced"#.into(),
            "unbalanced quote",
        ),
        ("/incident".into(), "needs one of"),
        ("/deploy now".into(), "not a command"),
    ];
    for (line, needle) in cases {
        let before = h.store().dump().unwrap();
        let out = h.run(&line).await;
        assert!(
            out.starts_with("[error] "),
            "{line}: expected an error, got {out}"
        );
        assert!(out.contains(needle), "{line}: {needle:?} not in {out}");
        assert_eq!(
            h.store().dump().unwrap(),
            before,
            "{line} changed the store"
        );
    }
}

#[tokio::test]
async fn commands_apply_to_the_incident_last_opened_or_named() {
    let h = Harness::new();
    h.run(r#"/incident open title:"One" severity:SEV2"#).await;
    h.run(r#"/incident open title:"Two" severity:SEV3"#).await;
    let out = h.run("/incident note text:second").await;
    assert!(out.contains("INC-2"), "{out}");
    let out = h.run("/incident note text:first incident:INC-1").await;
    assert!(out.contains("INC-1"), "{out}");
    let out = h
        .run("/incident update state:monitoring message:mitigated")
        .await;
    assert!(
        out.contains("INC-1"),
        "the incident last named is current: {out}"
    );
    let one = h.store().incident(IncidentId(1)).unwrap().unwrap();
    assert_eq!(one.state, State::Monitoring);
    assert_eq!(one.notes, 1);
    let two = h.store().incident(IncidentId(2)).unwrap().unwrap();
    assert_eq!(two.state, State::Investigating);
}

#[tokio::test]
async fn user_text_reaches_posts_verbatim_and_handover_keeps_one_commander() {
    let h = Harness::new();
    let out = h
        .run(
            r#"/incident open title:"@everyone {{ 7*7 }} <@&1>" severity:SEV1 summary:"{% raw %}""#,
        )
        .await;
    assert!(out.contains("@everyone {{ 7*7 }} <@&1>"), "{out}");
    assert!(out.contains("{% raw %}"), "{out}");
    h.run("/incident role role:commander user:@bob").await;
    let inc = h.store().incident(IncidentId(1)).unwrap().unwrap();
    assert_eq!(inc.commander().map(|u| u.name.as_str()), Some("bob"));
    let commanders = inc
        .current_roles()
        .into_iter()
        .filter(|r| r.role == "commander")
        .count();
    assert_eq!(commanders, 1);
    let events = h.store().events(IncidentId(1)).unwrap();
    let names: Vec<&str> = events.iter().map(|e| e.kind.name()).collect();
    assert_eq!(names, ["opened", "role_relinquished", "role_assigned"]);
}

#[tokio::test]
async fn only_the_commander_may_resolve_once_command_is_handed_over() {
    let h = Harness::new();
    h.run(r#"/incident open title:"One" severity:SEV2"#).await;
    h.run("/incident role role:commander user:@bob").await;
    let before = h.store().dump().unwrap();
    for line in [
        "/incident resolve summary:done",
        "/incident severity level:SEV1",
        "/incident role role:commander user:@alice",
    ] {
        let out = h.run(line).await;
        assert!(
            out.starts_with("[error] you are not allowed to run /incident"),
            "{line}: {out}"
        );
        assert!(out.contains("INC-1's commander"), "{out}");
    }
    assert_eq!(h.store().dump().unwrap(), before);
    // Updates and notes stay open to every responder.
    let out = h.run("/incident note text:still-here").await;
    assert!(out.starts_with("[reply]"), "{out}");
}
