//! `sitrep check-config` on files as operators write them: every mistake in one run, at its line.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

struct Run {
    out: String,
    err: String,
    ok: bool,
}

/// `sitrep check-config --config <file> [extra]`, with no variables but `env`.
fn check(file: &Path, extra: &[&str], env: &[(&str, &str)]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_sitrep"))
        .arg("check-config")
        .arg("--config")
        .arg(file)
        .args(extra)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("the sitrep binary runs");
    Run {
        out: String::from_utf8_lossy(&out.stdout).into_owned(),
        err: String::from_utf8_lossy(&out.stderr).into_owned(),
        ok: out.status.success(),
    }
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn every_mistake_in_a_file_is_reported_in_one_run_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "sitrep.toml",
        r##"[discord]
application_id = 11
guild_id = "my-server"
incident_mode = "thread"
incident_parent_channel_id = 33
token = "MTMw.pasted-into-the-file"

[severities.SEV1]
colour = "red"
update_evry = "5m"

[severities.SEV2]
update_every = "soonish"

[permissions]
"incident resolve" = [1]
"incident explode" = [2]
"##,
    );
    let run = check(&file, &[], &[("SITREP_DISCORD_TOKEN", "x")]);
    assert!(!run.ok, "{}", run.out);
    let at = |line: usize| format!("problem: {}: line {line}: ", file.display());
    let expected = [
        format!("{}[discord] guild_id: invalid type: string \"my-server\"", at(3)),
        format!("{}`token` is not a setting; secrets are read from the environment only", at(6)),
        format!(
            "{}unknown key `update_evry` in [severities.SEV1] (`update_evry = \"5m\"`); did you mean `update_every`?",
            at(10)
        ),
        format!("{}[severities.SEV2] update_every: `soonish` is not a duration", at(13)),
        // The checks of the whole, after the file's own, also at their lines.
        format!("{}[severities.SEV1] colour = \"red\" is not a #rrggbb colour", at(9)),
        // guild_id, set aside above, is not reported again as missing.
        format!("{}[discord] stakeholder_channel_id is not set", at(1)),
        format!("{}[permissions] \"incident explode\" is not a command", at(17)),
    ];
    let problems: Vec<&str> = run
        .err
        .lines()
        .filter(|l| l.starts_with("problem:"))
        .collect();
    for (line, want) in problems.iter().zip(&expected) {
        assert!(
            line.starts_with(want.as_str()),
            "{line:?} is not {want:?}:\n{}",
            run.err
        );
    }
    assert_eq!(problems.len(), expected.len(), "{}", run.err);
    assert!(
        run.err.contains("the configuration has 7 problems"),
        "{}",
        run.err
    );
    assert!(!run.err.contains("pasted-into-the-file"), "{}", run.err);
}

#[test]
fn a_file_that_is_not_toml_is_one_problem() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(&dir, "sitrep.toml", "[discord\nguild_id = 1\n");
    let run = check(&file, &["--console"], &[]);
    assert!(!run.ok);
    assert!(run.err.contains("line 1"), "{}", run.err);
    assert!(
        run.err.contains("the configuration has 1 problem"),
        "{}",
        run.err
    );
}

#[test]
fn a_table_for_a_built_in_severity_changes_only_what_it_sets() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "sitrep.toml",
        "[severities.SEV3]\nupdate_every = \"1m\"\n\n[roles.commander]\ndiscord_roles = [7]\n",
    );
    let run = check(
        &file,
        &["--console"],
        &[("SITREP_SEVERITIES__SEV1__UPDATE_EVERY", "2m")],
    );
    assert!(run.ok, "{}\n{}", run.out, run.err);
    for needle in [
        "severity   SEV1 Critical #d0021b · every 2m (cannot be turned off)",
        "severity   SEV2 Major #f5a623 · every 30m",
        "severity   SEV3 Minor #f8e71c · every 1m",
        "severity   SEV4 Low #4a90e2 · no scheduled updates",
        "role       commander · roles [7]",
        "role       communications · anyone",
        "role       scribe · anyone",
        "ok: no problems found",
    ] {
        assert!(
            run.out.contains(needle),
            "missing {needle:?} in:\n{}",
            run.out
        );
    }
}

#[test]
fn replace_makes_the_files_severities_and_roles_the_whole_set() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "sitrep.toml",
        r##"[severities]
replace = true
[severities.SEV1]
name = "Down"
colour = "#ff0000"
update_every = "10m"

[roles]
replace = true
[roles.commander]

[escalation]
stuck_severities = ["SEV1"]
"##,
    );
    let run = check(&file, &["--console"], &[]);
    assert!(run.ok, "{}\n{}", run.out, run.err);
    assert!(
        run.out.contains("severity   SEV1 Down #ff0000 · every 10m"),
        "{}",
        run.out
    );
    assert!(!run.out.contains("SEV2"), "{}", run.out);
    assert!(run.out.contains("role       commander"), "{}", run.out);
    assert!(!run.out.contains("scribe"), "{}", run.out);

    // Without replace, a new severity needs its name and colour; it is not merged with anything.
    let file = write(
        &dir,
        "sev5.toml",
        "[severities.SEV5]\nupdate_every = \"1h\"\n",
    );
    let run = check(&file, &["--console"], &[]);
    assert!(!run.ok);
    assert!(
        run.err.contains(&format!(
            "problem: {}: line 1: [severities.SEV5] missing field `name`",
            file.display()
        )),
        "{}",
        run.err
    );
}

#[test]
fn the_example_config_passes_as_it_is_and_with_replace() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
    let run = check(&example, &["--console"], &[]);
    assert!(run.ok, "{}\n{}", run.out, run.err);
    let text = std::fs::read_to_string(&example).unwrap();
    let switch = "# [severities]\n# replace = true\n";
    assert!(
        text.contains(switch),
        "the example shows how to replace the set"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "replaced.toml",
        &text.replace(switch, "[severities]\nreplace = true\n"),
    );
    let replaced = check(&file, &["--console"], &[]);
    assert!(replaced.ok, "{}\n{}", replaced.out, replaced.err);
    // The example lists the built-in severities as they are: replacing changes nothing.
    assert_eq!(replaced.out, run.out);
}

#[test]
fn run_refuses_to_start_with_every_problem_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "sitrep.toml",
        "[discord]\napplication_id = 11\nguild_id = 22\nstakeholder_channel_id = 33\napi_bsae = \"http://127.0.0.1:9\"\n\n[severities.SEV2]\ncolour = \"green\"\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_sitrep"))
        .arg("run")
        .arg("--config")
        .arg(&file)
        .env_clear()
        .env("SITREP_DISCORD_TOKEN", "x")
        .env("SITREP_STORAGE__PATH", dir.path().join("db"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    let at = |line: usize| format!("{}: line {line}: ", file.display());
    for needle in [
        "cannot start:".to_string(),
        format!("{}unknown key `api_bsae` in [discord]", at(5)),
        format!(
            "{}[severities.SEV2] colour = \"green\" is not a #rrggbb colour",
            at(8)
        ),
    ] {
        assert!(err.contains(&needle), "missing {needle:?} in:\n{err}");
    }
}
