//! Checks of a loaded configuration against the rest of the program, run before anything starts.
//!
//! The configuration checks itself ([`Config::problems`]); what it cannot know without importing
//! the layers above it (which commands exist, what the blameless lint accepts) is checked here,
//! so that `config` depends on nothing but `domain`.

use crate::config::{Config, Loaded, Secrets};

/// Everything `check-config` reports: the problems found in reading the configuration, then
/// those of what was read, each at the line or variable that set it when it names a setting.
pub fn report(loaded: &Loaded, secrets: &Secrets, for_discord: bool) -> Vec<String> {
    let mut out = loaded.problems.clone();
    out.extend(
        problems(&loaded.config, secrets, for_discord)
            .iter()
            .filter(|p| !loaded.sources.is_about_set_aside(p))
            .map(|p| loaded.sources.locate(p)),
    );
    out
}

/// Every problem that would stop or hobble the bot, worded for the operator: the
/// configuration's own, then permission keys and lint phrases. `for_discord` adds what only the
/// bot needs (its token, ids, the secrets of the integrations it serves).
pub fn problems(config: &Config, secrets: &Secrets, for_discord: bool) -> Vec<String> {
    let mut out = config.problems(secrets, for_discord);
    out.extend(lint_phrases(config));
    out.extend(permission_keys(config));
    out
}

/// `[[postmortem.lint]]` phrases, in the lint's own syntax.
fn lint_phrases(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    for (i, rule) in config.postmortem.lint.iter().enumerate() {
        if let Err(e) = crate::postmortem::lint::check_phrase(&rule.phrase) {
            out.push(format!("[[postmortem.lint]] #{}: {e}", i + 1));
        }
    }
    out
}

/// `[permissions]` keys, each of which must be a command path of the manifests.
fn permission_keys(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    if config.permissions.is_empty() {
        return out;
    }
    let paths = crate::commands::options::command_paths();
    for key in config.permissions.keys() {
        if !paths.contains(key) {
            out.push(format!(
                "[permissions] \"{key}\" is not a command; known: {}",
                paths.join(", ")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::problems;
    use crate::config::{Config, Secrets};
    use std::collections::BTreeMap;

    #[test]
    fn problems_are_all_reported() {
        let toml = r##"
            [discord]
            incident_mode = "thread"
            [severities.SEV1]
            name = ""
            colour = "red"
            update_every = "30s"
            [severities.SEV2]
            name = "Major"
            colour = "#00ff00"
            update_cron = "every tuesday"
            [roles]
            replace = true
            [roles.scribe]
            [permissions]
            "incident resolve" = [1]
            "incident explode" = [2]
        "##;
        let c = Config::from_parts(Some(("a.toml", toml)), &BTreeMap::new()).unwrap();
        let problems = problems(&c, &Secrets::default(), true);
        let all = problems.join("\n");
        for needle in [
            "not a #rrggbb",
            "name is empty",
            "more often than once a minute",
            "update_cron",
            "must define `commander`",
            "SITREP_DISCORD_TOKEN",
            "application_id",
            "incident_parent_channel_id",
            "\"incident explode\" is not a command",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
    }

    #[test]
    fn lint_phrases_are_checked_by_the_lint() {
        let good = r#"
            [[postmortem.lint]]
            phrase = "dropped the ball"
            suggest = "describe what made the task hard to finish in time"

            [[postmortem.lint]]
            phrase = "{person} overlooked"
            suggest = "say what the check did not show"
        "#;
        let c = Config::from_parts(Some(("a.toml", good)), &BTreeMap::new()).unwrap();
        assert!(problems(&c, &Secrets::default(), false).is_empty());

        let bad = r#"
            [postmortem]
            highlight_reaction = " "
            [[postmortem.lint]]
            phrase = "{someone} broke it"
            suggest = ""
        "#;
        let c = Config::from_parts(Some(("a.toml", bad)), &BTreeMap::new()).unwrap();
        let all = problems(&c, &Secrets::default(), false).join("\n");
        for needle in [
            "highlight_reaction is empty",
            "[[postmortem.lint]] #1: ",
            "{someone}",
            "suggest is empty",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
    }

    #[test]
    fn the_report_has_the_files_problems_then_the_checks_each_at_its_line() {
        use super::report;
        let toml = r##"[severities.SEV1]
colour = "red"
update_evry = "5m"

[permissions]
"incident resolve" = [1]
"incident explode" = [2]
"##;
        let env = BTreeMap::from([(
            "SITREP_SEVERITIES__SEV2__COLOUR".to_string(),
            "blue".to_string(),
        )]);
        let loaded = Config::read_parts(Some(("a.toml", toml)), &env).unwrap();
        let all = report(&loaded, &Secrets::default(), false);
        assert_eq!(all.len(), 4, "{all:#?}");
        assert!(
            all[0].starts_with("a.toml: line 3: unknown key `update_evry` in [severities.SEV1]")
                && all[0].ends_with("did you mean `update_every`?"),
            "{all:#?}"
        );
        let rest = all[1..].join("\n");
        for needle in [
            "a.toml: line 2: [severities.SEV1] colour = \"red\" is not a #rrggbb colour",
            "environment variable SITREP_SEVERITIES__SEV2__COLOUR: [severities.SEV2] colour = \"blue\"",
            "a.toml: line 7: [permissions] \"incident explode\" is not a command",
        ] {
            assert!(rest.contains(needle), "missing {needle:?} in:\n{rest}");
        }
    }
}
