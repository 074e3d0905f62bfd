//! Timed status updates end to end: console sessions with the real scheduler on tokio's paused
//! clock, and the real binary sending, once, an update that came due while it was not running.

use sitrep::chat::console::{Console, ConsoleChat};
use sitrep::clock::{Clock, TokioClock};
use sitrep::commands::options::console_user_id;
use sitrep::domain::UserRef;
use sitrep::render::TimeStyle;
use sitrep::store::Store;
use sitrep::testkit::TestApp;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

struct Session {
    console: Console,
    kit: TestApp<ConsoleChat>,
}

impl Session {
    /// A console on `store`, as `sitrep console` builds it, but on the given clock.
    fn new(store: Store, clock: Arc<dyn Clock>) -> Session {
        let kit = TestApp::builder()
            .store(store)
            .clock(clock)
            .time_style(TimeStyle::Plain)
            .scheduler()
            .build_console();
        Session {
            console: Console {
                app: kit.app.clone(),
                chat: kit.chat.clone(),
                user: UserRef::new(console_user_id("alice"), "alice"),
            },
            kit,
        }
    }

    /// Runs a line and returns everything printed since the last look.
    async fn run(&self, line: &str) -> String {
        self.console.line(line).await;
        self.take()
    }

    fn take(&self) -> String {
        self.kit.take_printed()
    }

    fn store(&self) -> &Store {
        &self.console.app.store
    }

    async fn close(mut self) {
        self.kit.stop_scheduler().await;
    }
}

/// Opens the database a session just closed. sled lets go of its lock file from its own
/// threads, a moment after the last handle drops: on a busy machine the reopen can come first.
fn reopen(path: &std::path::Path) -> Store {
    let mut tries = 0;
    loop {
        match Store::open(path) {
            Ok(store) => return store,
            Err(_) if tries < 100 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("the database reopens: {e}"),
        }
    }
}

fn minutes(m: u64) -> Duration {
    Duration::from_secs(m * 60)
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

const UPDATE_HERE: &str =
    "[#inc-1-checkout-returns-500] Status update · INC-1 · Checkout returns 500";
const UPDATE_STAKEHOLDERS: &str = "[#stakeholders] Status update · INC-1 · Checkout returns 500";
const REMINDER: &str =
    "[#inc-1-checkout-returns-500] @alice, stakeholders have had no update on INC-1";

#[tokio::test(start_paused = true)]
async fn a_console_session_gets_status_updates_on_the_cadence() {
    let start = tokio::time::Instant::now();
    let at = |m: u64, s: u64| tokio::time::sleep_until(start + minutes(m) + Duration::from_secs(s));
    let clock = Arc::new(TokioClock::starting_at(chrono::Utc::now()));
    let s = Session::new(Store::temporary().unwrap(), clock);
    let out = s
        .run(r#"/incident open title:"Checkout returns 500" severity:SEV1 summary:"EU checkout fails""#)
        .await;
    assert!(out.contains("[reply] Opened INC-1 (SEV1)"), "{out}");

    at(14, 59).await;
    assert_eq!(s.take(), "", "nothing before the first tick");
    at(15, 1).await;
    let first = s.take();
    for part in [
        UPDATE_HERE,
        UPDATE_STAKEHOLDERS,
        "**Status:** Investigating for 15m · SEV1 · Critical",
        "**Impact:** EU checkout fails",
        "**Current understanding:** No update from the team yet.",
        "**Actions:** none recorded yet.",
        "**Next update:** ",
        REMINDER,
        "[10] Post update",
    ] {
        assert!(first.contains(part), "{part:?} missing in:\n{first}");
    }
    assert_eq!(count(&first, "Status update · INC-1"), 2, "{first}");

    at(20, 0).await;
    s.run(r#"/incident update message:"Rolled back checkout v2.3""#)
        .await;
    s.run(r#"/incident action text:"Add a canary stage" owner:@carol"#)
        .await;
    at(30, 1).await;
    let second = s.take();
    assert_eq!(count(&second, "Status update · INC-1"), 2, "{second}");
    assert!(second.contains("**Current understanding:** Rolled back checkout v2.3 _(alice, "));
    assert!(
        second.contains("**Actions:**\n    - Add a canary stage — carol"),
        "{second}"
    );
    assert!(second.contains("_Scheduled update. Last update from the team: "));
    assert!(
        !second.contains("stakeholders have had no update"),
        "{second}"
    );

    let out = s.run("/incident cadence every:5m").await;
    assert!(
        out.contains("[reply] alice set INC-1 to INC-1's own cadence. Status updates go out every 5m; the next in 5m."),
        "{out}"
    );
    at(35, 2).await;
    let third = s.take();
    assert_eq!(count(&third, "Status update · INC-1"), 2, "{third}");
    assert!(
        third.contains(REMINDER),
        "quiet since the last tick: {third}"
    );

    let out = s
        .run(r#"/incident resolve summary:"Rolled back v2.3""#)
        .await;
    assert!(out.contains("[#stakeholders] Resolved · INC-1"), "{out}");
    at(180, 0).await;
    assert_eq!(s.take(), "", "resolved: no more timed posts");
    s.close().await;
}

#[tokio::test(start_paused = true)]
async fn cadence_mistakes_are_explained_and_change_nothing() {
    let clock = Arc::new(TokioClock::starting_at(chrono::Utc::now()));
    let s = Session::new(Store::temporary().unwrap(), clock);
    s.run(r#"/incident open title:"Search slow" severity:SEV3"#)
        .await;
    s.run(r#"/incident resolve summary:"fixed""#).await;
    s.run(r#"/incident open title:"Checkout returns 500" severity:SEV1"#)
        .await;
    let cases = [
        (
            "/incident cadence every:30s",
            "30s is more often than once a minute; the shortest cadence is 1m",
        ),
        ("/incident cadence every:soon", "`soon` is not a duration"),
        (
            r#"/incident cadence cron:"*/15 * * * *""#,
            "is not a cron expression",
        ),
        (
            r#"/incident cadence cron:"*/30 * * * * *""#,
            "more often than once a minute",
        ),
        (
            "/incident cadence off:true",
            "SEV1 incidents must keep their scheduled updates",
        ),
        ("/incident cadence", "give exactly one of"),
        ("/incident cadence off:false", "give exactly one of"),
        (
            "/incident cadence every:10m off:true",
            "give exactly one of",
        ),
        (
            "/incident cadence every:10m incident:INC-1",
            "INC-1 is resolved",
        ),
        (
            "/incident cadence every:10m incident:INC-9",
            "INC-9 does not exist",
        ),
        (
            "/incident cadence every:10m colour:red",
            "unknown option `colour`",
        ),
    ];
    for (line, needle) in cases {
        let before = s.store().dump().unwrap();
        let out = s.run(line).await;
        assert!(
            out.starts_with("[error] "),
            "{line}: expected an error, got {out}"
        );
        assert!(out.contains(needle), "{line}: {needle:?} not in {out}");
        assert_eq!(
            s.store().dump().unwrap(),
            before,
            "{line} changed the store"
        );
    }
    // The same `off` is fine where the configuration allows it.
    let out = s.run("/incident severity level:SEV2").await;
    assert!(
        out.contains("Status updates go out every 30m; the next in 30m."),
        "{out}"
    );
    let out = s.run("/incident cadence off:true").await;
    assert!(
        out.contains("No scheduled status updates for INC-2"),
        "{out}"
    );
    s.close().await;
}

#[tokio::test(start_paused = true)]
async fn after_downtime_a_missed_update_goes_out_once() {
    let dir = tempfile::tempdir().unwrap();
    let start = tokio::time::Instant::now();
    let at = |m: u64, s: u64| tokio::time::sleep_until(start + minutes(m) + Duration::from_secs(s));
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::starting_at(chrono::Utc::now()));

    let s = Session::new(reopen(dir.path()), clock.clone());
    s.run(r#"/incident open title:"Checkout returns 500" severity:SEV1"#)
        .await;
    at(1, 0).await;
    s.close().await;

    // Down across the 15m, 30m and 45m ticks; the database is reopened from disk.
    at(50, 0).await;
    let s = Session::new(reopen(dir.path()), clock);
    at(64, 0).await;
    let caught_up = s.take();
    assert_eq!(count(&caught_up, UPDATE_STAKEHOLDERS), 1, "{caught_up}");
    assert_eq!(count(&caught_up, UPDATE_HERE), 1, "{caught_up}");
    at(65, 1).await;
    let next = s.take();
    assert_eq!(
        count(&next, UPDATE_STAKEHOLDERS),
        1,
        "15m after the late one: {next}"
    );
    s.close().await;
}

fn console(db: &std::path::Path, script: &str, env: &[(&str, &str)], hold: Duration) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sitrep"))
        .args(["console", "--db"])
        .arg(db)
        .env("USER", "alice")
        .env_remove("SITREP_LOG")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the sitrep binary runs");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(script.as_bytes()).unwrap();
    // The console runs until its input ends; holding it open lets real time pass.
    std::thread::sleep(hold);
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The bot was down when the first update came due: the next `sitrep console` sends it once,
/// before it reads any command, and a run after that does not send it again.
#[test]
fn the_console_binary_catches_up_once_on_an_overdue_update() {
    let dir = tempfile::tempdir().unwrap();
    let an_hour_ago = chrono::Utc::now() - chrono::Duration::hours(1);
    let out = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(open_without_scheduler(dir.path(), an_hour_ago));
    assert!(out.contains("[reply] Opened INC-1 (SEV1)"), "{out}");
    let first = console(dir.path(), "/incident status\n", &[], Duration::ZERO);
    assert_eq!(count(&first, UPDATE_HERE), 1, "{first}");
    assert_eq!(count(&first, UPDATE_STAKEHOLDERS), 1, "{first}");
    assert_eq!(count(&first, REMINDER), 1, "{first}");
    let caught_up = first.find(UPDATE_STAKEHOLDERS).unwrap();
    let status = first.find("[reply] Status · INC-1").unwrap();
    assert!(
        caught_up < status,
        "sent before the first command:\n{first}"
    );
    assert!(
        first.contains("**Status:** Investigating for 1h · SEV1"),
        "{first}"
    );

    let second = console(dir.path(), "/incident status\n", &[], Duration::ZERO);
    assert_eq!(count(&second, "Status update · INC-1"), 0, "{second}");
    assert!(second.contains("**Next update:** "), "{second}");
}

/// Opens INC-1 as the console would have at `at`, with no scheduler running since; the database
/// is closed again on return.
async fn open_without_scheduler(db: &std::path::Path, at: chrono::DateTime<chrono::Utc>) -> String {
    let kit = TestApp::builder()
        .store(Store::open(db).unwrap())
        .paused_clock_at(at)
        .time_style(TimeStyle::Plain)
        .build_console();
    let console = Console {
        app: kit.app.clone(),
        chat: kit.chat.clone(),
        user: UserRef::new(console_user_id("alice"), "alice"),
    };
    console
        .line(r#"/incident open title:"Checkout returns 500" severity:SEV1"#)
        .await;
    kit.take_printed()
}
