//! The console end to end: the real binary, piped input, a database reopened by a new process.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

fn console(db: &std::path::Path, script: &str) -> (String, String, i32) {
    console_with(db, &["--no-http"], script)
}

/// [`console`] with more arguments, in UTC so that local times can be asserted.
fn console_with(db: &std::path::Path, args: &[&str], script: &str) -> (String, String, i32) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sitrep"))
        .args(["console", "--db"])
        .arg(db)
        .args(args)
        .env("USER", "alice")
        .env("TZ", "UTC")
        .env_remove("SITREP_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the sitrep binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

const SCRIPT: &str = r#"
/incident open title:"Checkout returns 500" severity:SEV2 service:checkout started:"15m ago"
/incident update state:identified message:"Bad deploy of checkout v2.3"
/incident severity level:SEV1 reason:"All regions"
/incident role role:communications user:@bob
/incident note text:"Rollback started"
/incident action text:"Add a canary stage" owner:@carol due:7d
/incident resolve summary:"Rolled back v2.3"
/incident status
"#;

#[test]
fn a_whole_incident_in_the_terminal_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (out, err, code) = console(dir.path(), SCRIPT);
    assert_eq!(code, 0, "stderr: {err}");
    let expect_in_order = [
        "[reply] Opened INC-1 (SEV2) in #inc-1-checkout-returns-500",
        "[#inc-1-checkout-returns-500] INC-1 · Checkout returns 500",
        "[#stakeholders] INC-1 · Checkout returns 500",
        "[reply] alice posted an update to INC-1 (investigating → identified)",
        "[#stakeholders] Update · INC-1",
        "[reply] INC-1 is now SEV1.",
        "[#inc-1-checkout-returns-500] Severity · INC-1",
        "[reply] bob is now communications lead for INC-1.",
        "[#inc-1-checkout-returns-500] @bob is now **communications lead** for INC-1.",
        "[reply] Noted in INC-1's timeline: Rollback started",
        "[reply] Action item added to INC-1: Add a canary stage · owner carol",
        "[reply] INC-1 is resolved after 15m.",
        "[#stakeholders] Resolved · INC-1",
        "[reply] Status · INC-1 · Checkout returns 500",
    ];
    support::assert_in_order(&out, &expect_in_order);
    assert!(!out.contains("[error]"), "{out}");

    // A new process on the same database sees the same incident, resolved, with its TTR.
    let (again, err, code) = console(dir.path(), "/incident status\n");
    assert_eq!(code, 0, "stderr: {err}");
    assert!(
        again.contains("[reply] Status · INC-1 · Checkout returns 500"),
        "{again}"
    );
    assert!(again.contains("**Status:** Resolved"), "{again}");
    assert!(again.contains("TTR 15m"), "{again}");
    assert!(
        again.contains("**Incident commander:** alice · **Communications lead:** bob"),
        "{again}"
    );

    // And numbering goes on from there.
    let (third, _, _) = console(
        dir.path(),
        "/incident open title:\"Search slow\" severity:SEV3\n",
    );
    assert!(
        third.contains("Opened INC-2 (SEV3) in #inc-2-search-slow"),
        "{third}"
    );
}

#[test]
fn bad_lines_print_errors_and_the_console_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _, code) = console(
        dir.path(),
        "/incident open title:\"unclosed\n/incident status\n/incident open title:ok severity:SEV3\n",
    );
    assert_eq!(code, 0);
    assert!(out.contains("[error] unbalanced quote"), "{out}");
    assert!(out.contains("[error] which incident?"), "{out}");
    assert!(out.contains("[reply] Opened INC-1 (SEV3)"), "{out}");
}

#[test]
fn buttons_are_numbered_and_pressed_from_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sitrep.toml");
    std::fs::write(&config, "[escalation.targets.dba]\nroles = [4242]\n").unwrap();
    let script = r#"
/incident open title:"DB down" severity:SEV1
press 2
press 2 message:"Rolling back" state:identified
1
/escalate target:dba reason:"Replica lag"
press 10
40
/deploys since:2h
"#;
    let db = dir.path().join("db");
    let (out, err, code) = console_with(
        &db,
        &["--no-http", "--config", config.to_str().unwrap()],
        script,
    );
    assert_eq!(code, 0, "stderr: {err}");
    let expect_in_order = [
        "[#inc-1-db-down] INC-1 · DB down",
        "[1] Join  [2] Post update",
        // The built-in type's checklist, a button per item.
        "Checklist (default) · INC-1 · DB down",
        "[3] ✓ 1. Mitigate first",
        // Post update opens a form on Discord; here its fields follow the number.
        "[reply] Say what you know after the number",
        "press 2 message:",
        "[reply] alice posted an update to INC-1 (investigating → identified): Rolling back",
        // A state just reached is said so, not "Identified for 0s".
        "**Status:** Identified just now · SEV1",
        "[#stakeholders] Update · INC-1 · DB down",
        "[reply] You joined INC-1.",
        // A page names the role after its target, and Acknowledge is the next button.
        "[#inc-1-db-down] @dba you are needed on **INC-1** (SEV1).",
        "[10] Acknowledge",
        "[reply] alice escalated INC-1 to **dba**.",
        "[#inc-1-db-down] (edited) @dba you are needed on **INC-1** (SEV1).",
        "**Acknowledged** by @alice",
        "[reply] You acknowledged escalation #1 of INC-1",
        "[error] there is no button [40] to press",
        // Discord's relative timestamp, as a local time and how long ago.
        "[reply] No deploys since ",
        " (2 hours ago).",
    ];
    support::assert_in_order(&out, &expect_in_order);
    for raw in ["<t:", "<@", "<#"] {
        assert!(!out.contains(raw), "{raw} in:\n{out}");
    }
}

/// `GET path` on the console's HTTP edge, as a browser holding `token` would: status and body.
fn get(base: &str, path: &str, token: Option<&str>) -> (u16, String) {
    use std::io::Read;
    let host = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(host).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    // Bytes, as a chart is no text; its head and its PNG signature's letters survive.
    let mut bytes = Vec::new();
    s.read_to_end(&mut bytes).unwrap();
    let answer = String::from_utf8_lossy(&bytes).into_owned();
    let status = answer[9..12].parse().unwrap();
    (status, answer)
}

#[test]
fn the_console_serves_its_incidents_on_the_status_page_and_the_browser() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sitrep"))
        .args(["console", "--http", "127.0.0.1:0", "--db"])
        .arg(dir.path())
        .env("USER", "alice")
        .env_remove("SITREP_HTTP_ADMIN_TOKEN")
        .env_remove("SITREP_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the sitrep binary runs");
    let mut stdin = child.stdin.take().unwrap();
    writeln!(
        stdin,
        r#"/incident open title:"Checkout returns 500" severity:SEV2 summary:"EU checkout fails""#
    )
    .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut web = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.starts_with("[web]") {
            web = Some(line.clone());
        }
        if line.starts_with("[#stakeholders]") {
            break;
        }
    }
    // Printed once, before the first command: where to look, and the token made for this run.
    let web = web.expect("the console prints where its web pages are");
    let base = web
        .split_whitespace()
        .find_map(|w| w.strip_suffix("/status"))
        .expect("the status page's address")
        .to_string();
    let token = web
        .split("admin token for this run: ")
        .nth(1)
        .and_then(|t| t.strip_suffix(')'))
        .expect("the admin token");
    assert!(token.len() >= 32, "{web}");

    let (status, page) = get(&base, "/status", Some(token));
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Checkout returns 500"), "{page}");
    let (status, page) = get(&base, "/incidents", Some(token));
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("INC-1"), "{page}");
    let (status, page) = get(&base, "/incidents/INC-1", Some(token));
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Checkout returns 500"), "{page}");
    // Without the token the browser stays shut.
    let (status, _) = get(&base, "/incidents", None);
    assert_ne!(status, 200);
    let (status, _) = get(&base, "/incidents", Some("not-the-token-at-all"));
    assert_eq!(status, 401);

    // The page follows the console live: an update typed now is on it at once.
    writeln!(
        stdin,
        r#"/incident update state:identified message:"Bad deploy of checkout v2.3""#
    )
    .unwrap();
    for line in lines.by_ref() {
        if line.unwrap().starts_with("[#stakeholders] Update") {
            break;
        }
    }
    let (_, page) = get(&base, "/status", Some(token));
    assert!(page.contains("Bad deploy of checkout v2.3"), "{page}");

    drop(stdin);
    assert!(child.wait().unwrap().success());
}

#[test]
fn the_web_pages_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let (out, err, code) = console_with(dir.path(), &["--no-http"], "/incident list\n");
    assert_eq!(code, 0, "stderr: {err}");
    assert!(!out.contains("[web]"), "{out}");
}

#[test]
fn the_demo_plays_a_whole_incident_and_leaves_no_database_behind() {
    use std::io::BufRead;
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sitrep"))
        .args(["demo", "--http", "127.0.0.1:0"])
        .env("TMPDIR", tmp.path())
        .env_remove("SITREP_HTTP_ADMIN_TOKEN")
        .env_remove("SITREP_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the sitrep binary runs");
    let stdin = child.stdin.take().unwrap();
    let mut out = String::new();
    for line in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        out.push_str(&line);
        out.push('\n');
        if line.contains("Its post-mortem draft:") {
            break;
        }
    }
    let expect_in_order = [
        "[web] status page http://127.0.0.1:",
        "[reply] Opened INC-1 (SEV2)",
        // The deploy the demo recorded before the open is what changed.
        "**What changed** since",
        "**checkout** v2.3 to production by dave",
        "[reply] bob is now communications lead for INC-1.",
        "[reply] Noted in INC-1's timeline",
        "[reply] **Deploys of checkout since ",
        " (1 hour ago)**, newest first:",
        " (27 minutes ago) · **checkout** v2.3",
        "(investigating → identified)",
        "@payments_oncall you are needed on **INC-1**",
        "[reply] You acknowledged escalation #1 of INC-1",
        "[reply] Action item added to INC-1",
        "(identified → monitoring)",
        // The demo's own Prometheus answers, and the snapshot comes with its chart.
        "[demo] sitrep> /metrics name:error_rate service:checkout range:1h",
        "[reply] **error_rate** · service=checkout",
        "against 1d and 1w earlier · unit: %",
        "(attached chart.png, ",
        "[reply] INC-1 is resolved after 25m.",
        "[reply] Post-mortem draft **version 1** of INC-1 compiled",
        "[demo] That was INC-1, start to finish",
    ];
    support::assert_in_order(&out, &expect_in_order);
    assert!(!out.contains("[error]"), "{out}");

    // The draft it points at is there, in the browser, with the token it printed.
    let draft = out
        .split_whitespace()
        .find(|w| w.ends_with("/incidents/INC-1/postmortem"))
        .expect("the draft's address");
    let (base, path) = draft.split_at(draft.find("/incidents").unwrap());
    let token = out
        .split("admin token for this run: ")
        .nth(1)
        .and_then(|t| t.split(')').next())
        .expect("the admin token");
    let (status, page) = get(base, path, Some(token));
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Checkout returns 500"), "{page}");
    assert!(page.contains("Add a canary stage"), "{page}");
    // The metric snapshot is in the draft's timeline...
    assert!(
        page.contains("Metric · error_rate service=checkout: "),
        "{page}"
    );
    assert!(page.contains(" % now, "), "{page}");
    // The query is named once, not again at the head of its summary.
    assert!(
        !page.contains("error_rate service=checkout: error_rate"),
        "{page}"
    );

    // ...and in the browser's, with its chart kept and served.
    let (status, page) = get(base, "/incidents/INC-1", Some(token));
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Metric snapshot"), "{page}");
    let chart = page
        .split("<img src=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the snapshot's chart")
        .replace("&#x2f;", "/");
    assert!(chart.starts_with("/incidents/INC-1/charts/"), "{chart}");
    let (status, png) = get(base, &chart, Some(token));
    assert_eq!(status, 200, "{png}");
    assert!(png.contains("content-type: image/png"), "{png}");
    assert!(png.contains("PNG\r\n"), "not a PNG");

    drop(stdin);
    assert!(child.wait().unwrap().success());
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "the demo's database stayed: {left:?}");
}
