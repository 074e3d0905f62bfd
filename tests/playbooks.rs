//! Incident types end to end, the real binary over the Discord fake: a typed open with its
//! required field, the checklist post and its buttons, ticks by two responders, progress and
//! fields in status posts (public ones only for stakeholders), and the post-mortem's checklist.

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::bot::{world, Bot, Mode};
use support::discord::{FakeDiscord, Interaction, GENERAL_CHANNEL_ID, OWNER_ID};

const TYPES: &str = r#"
[types.database]
description = "A database is slow or down"
severity = "SEV2"
service = "postgres"

[[types.database.checklist]]
text = "Fail over to the replica if the primary is down"
runbook = "https://wiki.example.com/runbooks/failover"
owner = "commander"

[[types.database.checklist]]
text = "Look for long-running queries"
hint = "pg_stat_activity by query_start"

[[types.database.checklist]]
text = "Tell support what is degraded"
owner = "communications"

[[types.database.fields]]
name = "cluster"
kind = "choice"
choices = ["eu-main", "us-main"]
required = true
public = true

[[types.database.fields]]
name = "lag_seconds"
kind = "number"
"#;

/// What the responder read last: the reply, or the filled-in deferral.
async fn answer(fake: &FakeDiscord, i: &Interaction) -> (String, bool) {
    let first = fake.wait_response(i).await;
    if first.kind != 5 {
        return (first.content().to_string(), first.ephemeral());
    }
    let text = fake
        .wait_until(Duration::from_secs(10), |f| {
            f.original(i)
                .and_then(|m| m["content"].as_str().map(str::to_string))
                .filter(|c| !c.is_empty())
        })
        .await
        .expect("the deferral is filled in");
    (text, first.ephemeral())
}

fn in_channel(m: &Value, channel: u64) -> bool {
    m["channel_id"].as_str().and_then(|s| s.parse().ok()) == Some(channel)
}

fn description(m: &Value) -> String {
    m["embeds"][0]["description"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn channel_link(text: &str) -> u64 {
    let start = text.find("<#").expect("a channel link") + 2;
    text[start..]
        .split('>')
        .next()
        .unwrap()
        .parse()
        .expect("a channel id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typed_incident_is_worked_through_its_checklist_and_fields() {
    let fake = FakeDiscord::start().await;
    let w = world(&fake);
    let _bot = Bot::start(&fake, w, Mode::Proxy, TYPES);
    fake.wait_ready().await;

    // The type is suggested while typing.
    let ac = fake.autocomplete(
        OWNER_ID,
        GENERAL_CHANNEL_ID,
        "incident",
        json!({ "open": { "title": "x", "type": "data" } }),
        "type",
    );
    let suggestions = fake.wait_response(&ac).await;
    assert_eq!(suggestions.kind, 8);
    assert_eq!(suggestions.data["choices"][0]["value"], "database");

    // A required field missing: refused privately, nothing opened.
    let refused = fake.slash(
        OWNER_ID,
        GENERAL_CHANNEL_ID,
        "incident",
        json!({ "open": { "title": "Primary down", "type": "database" } }),
    );
    let (text, private) = answer(&fake, &refused).await;
    assert!(private, "{text}");
    assert!(
        text.contains("needs cluster (one of eu-main, us-main)")
            && text.contains("fields:\"cluster=…\""),
        "{text}"
    );
    assert!(fake.requests_to("POST /guilds/{guild}/channels").is_empty());

    // Opened with it: the type's severity and service, and the checklist in the channel.
    let open = fake.slash(
        OWNER_ID,
        GENERAL_CHANNEL_ID,
        "incident",
        json!({ "open": { "title": "Primary down", "type": "database", "fields": "cluster=EU-MAIN" } }),
    );
    let (text, _) = answer(&fake, &open).await;
    assert!(text.contains("Opened INC-1 (SEV2)"), "{text}");
    assert!(text.contains("database checklist is posted"), "{text}");
    let channel = channel_link(&text);
    let checklist = fake
        .wait_message(|m| {
            in_channel(m, channel) && m["components"].to_string().contains("checklist:tick:1:")
        })
        .await;
    let body = description(&checklist);
    assert!(
        body.contains(
            "☐ 1. **Fail over to the replica if the primary is down** · _incident commander_"
        ) && body.contains("Runbook: https://wiki.example.com/runbooks/failover")
            && body.contains("☐ 3. **Tell support what is degraded** · _communications lead_")
            && body.contains("0 of 3 done"),
        "{body}"
    );
    let ids: Vec<String> = checklist["components"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row["components"].as_array().unwrap().clone())
        .map(|b| b["custom_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        ids,
        [
            "checklist:tick:1:1",
            "checklist:tick:1:2",
            "checklist:tick:1:3"
        ]
    );
    // Owners are shown by name, and the post pings nobody.
    let sent = fake
        .requests_to("POST /channels/{channel}/messages")
        .into_iter()
        .find(|r| r.body.to_string().contains("checklist:tick:1:1"))
        .expect("the checklist was sent");
    let mentions = &sent.body["allowed_mentions"];
    assert_eq!(mentions["parse"], json!([]), "{mentions}");
    assert!(mentions["users"].as_array().map_or(true, |u| u.is_empty()));
    assert!(mentions["roles"].as_array().map_or(true, |r| r.is_empty()));
    let message: u64 = checklist["id"].as_str().unwrap().parse().unwrap();

    // Two responders tick an item each with the buttons.
    let bob = fake.add_member("bob", &[]);
    let tick = fake.click(OWNER_ID, message, "checklist:tick:1:1");
    let (said, private) = answer(&fake, &tick).await;
    assert!(!private);
    assert!(
        said.contains("did #1 of INC-1: Fail over to the replica") && said.contains("1 of 3 done"),
        "{said}"
    );
    let tick = fake.click(bob, message, "checklist:tick:1:2");
    let (said, _) = answer(&fake, &tick).await;
    assert!(
        said.starts_with("bob did #2") && said.contains("2 of 3 done"),
        "{said}"
    );
    // A second press of a done item says who did it, privately, and records nothing.
    let again = fake.click(bob, message, "checklist:tick:1:1");
    let (said, private) = answer(&fake, &again).await;
    assert!(private && said.contains("#1 is already done"), "{said}");

    // A field, then an update with the impact: the status shows progress and fields, the
    // stakeholders' copy only the public field.
    let set = fake.slash(
        bob,
        channel,
        "incident",
        json!({ "field": { "name": "lag_seconds", "value": "42" } }),
    );
    let (said, _) = answer(&fake, &set).await;
    assert!(said.contains("set lag_seconds of INC-1 to 42"), "{said}");
    let bad = fake.slash(
        bob,
        channel,
        "incident",
        json!({ "field": { "name": "cluster", "value": "mars" } }),
    );
    let (said, private) = answer(&fake, &bad).await;
    assert!(
        private && said.contains("`mars` is not a choice of `cluster`"),
        "{said}"
    );
    let update = fake.slash(
        OWNER_ID,
        channel,
        "incident",
        json!({ "update": { "message": "Failed over; replica is primary", "impact": "EU writes fail" } }),
    );
    answer(&fake, &update).await;
    let ours = fake
        .wait_message(|m| in_channel(m, channel) && description(m).contains("Failed over"))
        .await;
    let ours = description(&ours);
    assert!(
        ours.contains("**Impact:** EU writes fail")
            && ours.contains("**cluster:** eu-main · **lag_seconds:** 42")
            && ours.contains("**Checklist:** 2 of 3 done"),
        "{ours}"
    );
    let theirs = fake
        .wait_message(|m| in_channel(m, w.stakeholders) && description(m).contains("Failed over"))
        .await;
    let theirs = description(&theirs);
    assert!(
        theirs.contains("**Impact:** EU writes fail") && theirs.contains("**cluster:** eu-main"),
        "{theirs}"
    );
    assert!(
        !theirs.contains("lag_seconds") && !theirs.contains("Checklist"),
        "{theirs}"
    );

    // Skipped with a reason, then resolved: the post-mortem lists every item.
    let skip = fake.slash(
        OWNER_ID,
        channel,
        "incident",
        json!({ "checklist": { "action": "skip", "item": 3, "reason": "support saw the banner" } }),
    );
    let (said, _) = answer(&fake, &skip).await;
    assert!(said.contains("skipped #3"), "{said}");
    let resolve = fake.slash(
        OWNER_ID,
        channel,
        "incident",
        json!({ "resolve": { "summary": "Failed over to the replica" } }),
    );
    answer(&fake, &resolve).await;
    let export = fake.slash(OWNER_ID, channel, "postmortem", json!({ "export": {} }));
    answer(&fake, &export).await;
    let original: u64 = fake.original(&export).unwrap()["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let md = String::from_utf8(fake.attachment(original, "INC-1-postmortem.md").unwrap()).unwrap();
    for needle in [
        "| **Type** | database |",
        "| **Cluster** | eu-main |",
        "| **Impact** | EU writes fail |",
        "## Checklist",
        "2 of 3 done, 1 skipped.",
        "| 1 | Fail over to the replica if the primary is down | incident commander | ✅ done by owner at 20",
        "| 2 | Look for long-running queries | — | ✅ done by bob at 20",
        "| 3 | Tell support what is degraded | communications lead | ⏭️ skipped by owner at 20",
        ": support saw the banner |",
    ] {
        assert!(md.contains(needle), "missing {needle:?} in\n{md}");
    }
}

/// `sitrep console` on `db` with the types above, as `user`: what it printed.
fn console(db: &std::path::Path, user: &str, script: &str) -> String {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let config = db.with_extension("toml");
    std::fs::write(&config, TYPES).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sitrep"))
        .args(["console", "--no-http", "--user", user, "--db"])
        .arg(db)
        .arg("--config")
        .arg(&config)
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
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_console_works_a_checklist_too() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let out = console(
        &db,
        "alice",
        r#"
/incident open title:"Primary down" type:database
/incident open title:"Primary down" type:database fields:"cluster=eu-main; lag_seconds=12"
press 3
/incident field name:impact value:"EU writes fail"
/incident update message:"Failed over"
/incident checklist action:skip item:3 reason:"support saw the banner"
/incident checklist action:add text:"Check the backups ran"
/incident list type:database field:cluster=eu-main
/incident list field:cluster=us-main
"#,
    );
    support::assert_in_order(
        &out,
        &[
            "[error] a database incident needs cluster (one of eu-main, us-main) before it opens",
            "[reply] Opened INC-1 (SEV2)",
            "Checklist (database) · INC-1 · Primary down",
            "☐ 1. **Fail over to the replica if the primary is down** · _incident commander_",
            "[3] ✓ 1. Fail over to the replica",
            "[reply] alice did #1 of INC-1: Fail over to the replica if the primary is down (1 of 3 done)",
            "[reply] alice set impact of INC-1 to EU writes fail",
            "**Impact:** EU writes fail",
            "**cluster:** eu-main · **lag_seconds:** 12",
            "**Checklist:** 1 of 3 done",
            "[#stakeholders] Update · INC-1",
            "**Impact:** EU writes fail",
            "**cluster:** eu-main\n",
            "[reply] alice skipped #3 of INC-1: Tell support what is degraded, because support saw the banner (1 of 3 done, 1 skipped)",
            "[reply] alice added #4 to INC-1's checklist: Check the backups ran (1 of 4 done, 1 skipped)",
            "**INC-1** · SEV2 · investigating · Primary down",
            "☑ 1 of 4",
            "No open incidents with cluster=us-main.",
        ],
    );
    // A second responder, in a new process on the same database.
    let out = console(
        &db,
        "bob",
        "/incident checklist action:tick item:2 incident:INC-1\n/incident checklist action:tick item:2 incident:INC-1\n/incident checklist incident:INC-1\n",
    );
    support::assert_in_order(
        &out,
        &[
            "[reply] bob did #2 of INC-1: Look for long-running queries (2 of 4 done, 1 skipped)",
            "[error] #2 is already done (bob, ",
            "☑ 1. ~~Fail over to the replica if the primary is down~~ · _incident commander_ — alice at ",
            "☑ 2. ~~Look for long-running queries~~ — bob at ",
            "⤼ 3. Tell support what is degraded · _communications lead_ — skipped by alice: support saw the banner",
            "☐ 4. **Check the backups ran**",
            "**Progress:** 2 of 4 done, 1 skipped",
        ],
    );
}
