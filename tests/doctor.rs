//! `sitrep doctor` run as the real binary against the Discord fake: a correct setup passes, and
//! each broken setup is reported with the thing to do about it.

mod support;

use serde_json::json;
use std::process::Output;
use support::bot::{world, World};
use support::discord::{
    ChannelKind, FakeDiscord, APPLICATION_ID, BOT_ROLE_ID, BOT_ROLE_PERMISSIONS, GUILD_ID,
    INTENT_MESSAGE_CONTENT, PERM_CREATE_PUBLIC_THREADS, PERM_MANAGE_CHANNELS, TOKEN,
};

/// The invite without and with Mention Everyone, as the README gives them.
const INVITE: &str = "permissions=326417632272";
const INVITE_WITH_MENTIONS: &str = "permissions=326417763344";

/// The fake's bot role holds the README's invite with Mention Everyone; without this bit it is
/// the plain invite.
const MENTION_EVERYONE: u64 = 1 << 17;

struct Run {
    ok: bool,
    out: String,
}

/// How a run differs from the correct setup.
#[derive(Default)]
struct Setup<'a> {
    /// Lines added to `[discord]`.
    discord: &'a str,
    /// Tables after it.
    extra: &'a str,
    env: Vec<(&'a str, &'a str)>,
    /// Instead of the fake's token.
    token: Option<&'a str>,
    /// "discord.com" over TLS instead of `api_base`.
    direct: bool,
    /// Leave `incident_category_id` out.
    no_category: bool,
}

/// Writes a config pointing at the fake and runs `sitrep doctor` on it.
async fn doctor(fake: &FakeDiscord, w: World, setup: Setup<'_>) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let mut discord = format!(
        "[discord]\napplication_id = {APPLICATION_ID}\nguild_id = {GUILD_ID}\n\
         stakeholder_channel_id = {}\n{}\n",
        w.stakeholders, setup.discord
    );
    if !setup.no_category {
        discord.push_str(&format!("incident_category_id = {}\n", w.category));
    }
    if setup.direct {
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, fake.ca_pem()).unwrap();
        discord.push_str(&format!(
            "ca_file = \"{}\"\nconnect_to = \"discord.com:443:127.0.0.1:{}\"\n",
            ca.display(),
            fake.tls_addr().port()
        ));
    } else {
        discord.push_str(&format!("api_base = \"{}\"\n", fake.api_base()));
    }
    let config = dir.path().join("sitrep.toml");
    std::fs::write(&config, format!("{discord}\n{}\n", setup.extra)).unwrap();
    let token = setup.token.unwrap_or(TOKEN).to_string();
    let env: Vec<(String, String)> = setup
        .env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let out: Output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_sitrep"))
            .arg("doctor")
            .arg("--config")
            .arg(&config)
            .env("SITREP_DISCORD_TOKEN", token)
            .env("SITREP_LOG", "warn")
            .envs(env)
            .output()
            .expect("the sitrep binary runs")
    })
    .await
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains(TOKEN), "the token is never printed:\n{text}");
    Run {
        ok: out.status.success(),
        out: text,
    }
}

/// The README's setup: the channels the config names, and Message Content Intent switched on in
/// the portal (whatever the fake's default for a new application is).
fn set_up(fake: &FakeDiscord) -> World {
    fake.set_privileged_intents(INTENT_MESSAGE_CONTENT);
    world(fake)
}

fn problems(out: &str) -> Vec<&str> {
    out.lines().filter(|l| l.starts_with("problem:")).collect()
}

/// The fix printed under the first problem containing `needle`.
fn fix_for<'a>(out: &'a str, needle: &str) -> &'a str {
    let mut lines = out.lines();
    while let Some(l) = lines.next() {
        if l.starts_with("problem:") && l.contains(needle) {
            return lines
                .next()
                .and_then(|f| f.trim().strip_prefix("fix: "))
                .unwrap_or_else(|| panic!("no fix under {l:?}:\n{out}"));
        }
    }
    panic!("no problem mentioning {needle:?}:\n{out}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correct_setup_passes_in_proxy_and_direct_mode() {
    let fake = FakeDiscord::start().await;
    let w = set_up(&fake);
    let oncall = fake.add_role("oncall");
    fake.set_role(oncall, true, 0);
    let dba = fake.add_role("dba");
    let extra = format!(
        "[escalation.targets.oncall]\nroles = [{oncall}]\n\n[escalation.targets.dba]\nroles = [{dba}]\n"
    );
    for direct in [false, true] {
        let setup = Setup {
            discord: "message_content = true",
            extra: &extra,
            direct,
            ..Setup::default()
        };
        let run = doctor(&fake, w, setup).await;
        assert!(run.ok, "direct={direct}:\n{}", run.out);
        assert!(problems(&run.out).is_empty(), "{}", run.out);
        for line in [
            "ok: the token is accepted",
            "ok: application_id 1300000000000000002 is this bot's",
            "ok: the Message Content Intent is enabled in the developer portal",
            "ok: the bot is in server sitrep test guild",
            "ok: #Incidents (incident_category_id): the bot has every permission it needs there",
            "ok: #stakeholders (stakeholder_channel_id): the bot has every permission it needs there",
            "ok: category Incidents (incident_category_id) has room for 50 more channels",
            "ok: escalation target oncall: @oncall is mentionable",
            "ok: escalation target dba: @dba is not mentionable, but the bot may mention all roles",
            "all good",
        ] {
            assert!(run.out.contains(line), "missing {line:?}:\n{}", run.out);
        }
        // dba is pinged through Mention Everyone, so the invite printed keeps it.
        assert!(run.out.contains(INVITE_WITH_MENTIONS), "{}", run.out);
    }
    let reqs = fake.requests();
    assert!(
        reqs.iter().all(|r| r.method == "GET"),
        "the doctor only reads: {:?}",
        reqs.iter().map(|r| &r.route).collect::<Vec<_>>()
    );
    assert!(reqs.iter().any(|r| r.tls), "direct mode went over TLS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_content_intent_off_in_the_portal_is_a_problem() {
    let fake = FakeDiscord::start().await;
    let w = set_up(&fake);
    fake.set_privileged_intents(0);
    let asked = Setup {
        discord: "message_content = true",
        ..Setup::default()
    };
    let run = doctor(&fake, w, asked).await;
    assert!(!run.ok, "{}", run.out);
    assert_eq!(problems(&run.out).len(), 1, "{}", run.out);
    let fix = fix_for(
        &run.out,
        "asks for the Message Content Intent, but it is off",
    );
    assert!(
        fix.contains("turn on Message Content Intent under Bot → Privileged Gateway Intents"),
        "{fix}"
    );
    // Not asking for it is no failure, but what it costs is said.
    let not_asked = Setup {
        discord: "message_content = false",
        ..Setup::default()
    };
    let run = doctor(&fake, w, not_asked).await;
    assert!(run.ok, "{}", run.out);
    assert!(
        run.out
            .contains("note: [discord] message_content = false: captured messages"),
        "{}",
        run.out
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overwrite_taking_manage_channels_on_the_category_is_found() {
    let fake = FakeDiscord::start().await;
    let w = set_up(&fake);
    fake.set_overwrite(w.category, BOT_ROLE_ID, false, 0, PERM_MANAGE_CHANNELS);
    // The fake refuses as Discord would: no channel in that category.
    let http = fake.proxy_http();
    let body = json!({ "name": "inc-1", "type": 0, "parent_id": w.category.to_string() });
    let err = http
        .create_channel(GUILD_ID.into(), &body, None)
        .await
        .expect_err("Discord refuses the channel");
    let text = err.to_string();
    assert!(text.contains("Missing Permissions"), "{text}");

    let run = doctor(&fake, w, Setup::default()).await;
    assert!(!run.ok, "{}", run.out);
    assert_eq!(problems(&run.out).len(), 1, "{}", run.out);
    let fix = fix_for(
        &run.out,
        "#Incidents (incident_category_id): the bot lacks Manage Channels",
    );
    assert!(
        fix.contains("allow Manage Channels for @sitrep")
            && fix.contains("an overwrite there denies them"),
        "{fix}"
    );
    assert!(run.out.contains("1 problem found"), "{}", run.out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_category_is_found() {
    let fake = FakeDiscord::start().await;
    let w = set_up(&fake);
    for i in 0..50 {
        fake.add_channel(&format!("inc-{i}"), ChannelKind::Text, Some(w.category));
    }
    let run = doctor(&fake, w, Setup::default()).await;
    assert!(!run.ok, "{}", run.out);
    let fix = fix_for(
        &run.out,
        "category Incidents (incident_category_id) holds 50 channels",
    );
    assert!(
        fix.contains("delete or move out channels of resolved incidents"),
        "{fix}"
    );
    assert!(
        run.out
            .contains("the server has room for 447 more channels"),
        "{}",
        run.out
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unmentionable_role_without_mention_everyone_is_found() {
    let fake = FakeDiscord::start().await;
    let w = set_up(&fake);
    let dba = fake.add_role("dba");
    fake.set_bot_permissions(BOT_ROLE_PERMISSIONS & !MENTION_EVERYONE);
    let extra = format!("[escalation.targets.dba]\nroles = [{dba}, 42]\n");
    let run = doctor(
        &fake,
        w,
        Setup {
            extra: &extra,
            ..Setup::default()
        },
    )
    .await;
    assert!(!run.ok, "{}", run.out);
    assert_eq!(problems(&run.out).len(), 2, "{}", run.out);
    let fix = fix_for(&run.out, "escalation target dba: @dba is not mentionable");
    assert!(
        fix.contains("Allow anyone to @mention this role") && fix.contains(INVITE_WITH_MENTIONS),
        "{fix}"
    );
    assert!(fix_for(&run.out, "role 42 does not exist").contains("Copy Role ID"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_guild_id_is_found() {
    let fake = FakeDiscord::start().await;
    let w = set_up(&fake);
    // Another server's id, through the environment as an operator might set it.
    let other = Setup {
        env: vec![("SITREP_DISCORD__GUILD_ID", "1300000000000000999")],
        ..Setup::default()
    };
    let run = doctor(&fake, w, other).await;
    assert!(!run.ok, "{}", run.out);
    let text = run.out;
    let fix = fix_for(
        &text,
        "guild_id = 1300000000000000999: the bot is not in that server",
    );
    assert!(
        fix.contains("Copy Server ID")
            && fix.contains(INVITE)
            && fix.contains("client_id=1300000000000000002"),
        "{fix}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_token_is_found_and_never_printed() {
    let fake = FakeDiscord::start().await;
    let w = set_up(&fake);
    let wrong = "MTMwMDAwMDAwMDAwMDAwMDAwMw.GsItRp.bm90LXRoZS1yaWdodC10b2tlbg";
    let setup = Setup {
        token: Some(wrong),
        ..Setup::default()
    };
    let run = doctor(&fake, w, setup).await;
    assert!(!run.ok, "{}", run.out);
    assert!(!run.out.contains(wrong), "{}", run.out);
    assert_eq!(problems(&run.out).len(), 1, "{}", run.out);
    assert!(
        fix_for(&run.out, "Discord refused the bot token").contains("SITREP_DISCORD_TOKEN"),
        "{}",
        run.out
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thread_mode_checks_the_parent_channel() {
    let fake = FakeDiscord::start().await;
    let w = set_up(&fake);
    let parent = fake.add_channel("incidents", ChannelKind::Text, None);
    let discord = format!("incident_mode = \"thread\"\nincident_parent_channel_id = {parent}");
    let thread_mode = || Setup {
        discord: &discord,
        ..Setup::default()
    };
    let run = doctor(&fake, w, thread_mode()).await;
    assert!(run.ok, "{}", run.out);
    assert!(
        run.out.contains(
            "ok: #incidents (incident_parent_channel_id): the bot has every permission it needs there"
        ),
        "{}",
        run.out
    );
    // @everyone may not start threads there, and the bot's role has no allow of its own.
    fake.set_overwrite(parent, GUILD_ID, false, 0, PERM_CREATE_PUBLIC_THREADS);
    let run = doctor(&fake, w, thread_mode()).await;
    assert!(!run.ok, "{}", run.out);
    let fix = fix_for(
        &run.out,
        "#incidents (incident_parent_channel_id): the bot lacks Create Public Threads",
    );
    assert!(
        fix.contains("allow Create Public Threads for @sitrep"),
        "{fix}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_applications_id_is_found() {
    let fake = FakeDiscord::start().await;
    let w = set_up(&fake);
    let other = Setup {
        env: vec![("SITREP_DISCORD__APPLICATION_ID", "1300000000000000777")],
        ..Setup::default()
    };
    let run = doctor(&fake, w, other).await;
    assert!(!run.ok, "{}", run.out);
    assert_eq!(problems(&run.out).len(), 1, "{}", run.out);
    assert_eq!(
        fix_for(
            &run.out,
            "this token belongs to application 1300000000000000002"
        ),
        "set [discord] application_id = 1300000000000000002"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_category_manage_channels_is_needed_server_wide() {
    let fake = FakeDiscord::start().await;
    let w = set_up(&fake);
    let top_level = || Setup {
        no_category: true,
        ..Setup::default()
    };
    let run = doctor(&fake, w, top_level()).await;
    assert!(run.ok, "{}", run.out);
    assert!(
        run.out
            .contains("note: [discord] incident_category_id is not set"),
        "{}",
        run.out
    );
    // Manage Channels only on a category, not server-wide.
    fake.set_bot_permissions(BOT_ROLE_PERMISSIONS & !PERM_MANAGE_CHANNELS);
    fake.set_overwrite(w.category, BOT_ROLE_ID, false, PERM_MANAGE_CHANNELS, 0);
    let run = doctor(&fake, w, top_level()).await;
    assert!(!run.ok, "{}", run.out);
    let fix = fix_for(&run.out, "where the bot lacks Manage Channels");
    assert!(
        fix.starts_with("set [discord] incident_category_id to a category where the bot has them"),
        "{fix}"
    );
    // Pointing at that category is the cure.
    assert!(doctor(&fake, w, Setup::default()).await.ok);
}
