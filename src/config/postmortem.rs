//! `[postmortem]`: key moments, anonymity, the transcript, and the blameless lint's phrases.
//!
//! A phrase's syntax belongs to the lint, which checks it in the preflight, not here.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PostmortemConfig {
    /// Names people by their incident role (Commander, Responder 2) instead of their name.
    pub anonymize: bool,
    /// Reacting with this to a message in an incident channel puts it on the timeline.
    pub highlight_reaction: String,
    /// Pinning a message in an incident channel puts it on the timeline too.
    pub highlight_pins: bool,
    /// Appends every captured message of the channel to the draft as an appendix, edits as
    /// their final text and deletions marked, so that nothing said is missing from the record.
    /// Off, the draft holds only the key moments.
    pub transcript: bool,
    /// Keeps the built-in blameless-lint phrases; `lint` adds to them.
    pub builtin_lint: bool,
    pub lint: Vec<LintRuleConfig>,
}

impl Default for PostmortemConfig {
    fn default() -> Self {
        PostmortemConfig {
            anonymize: false,
            highlight_reaction: "📌".into(),
            highlight_pins: true,
            transcript: true,
            builtin_lint: true,
            lint: Vec::new(),
        }
    }
}

/// A phrase the blameless lint flags, and the neutral wording it suggests instead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LintRuleConfig {
    /// Words matched case-insensitively; `{person}` is a mention or a participant's name,
    /// `{any}` any one word, and a trailing `*` matches word endings (`careless*`).
    pub phrase: String,
    pub suggest: String,
}

impl PostmortemConfig {
    pub(super) fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.highlight_reaction.trim().is_empty() {
            out.push("[postmortem] highlight_reaction is empty; the default is \"📌\"".into());
        }
        for (i, rule) in self.lint.iter().enumerate() {
            if rule.suggest.trim().is_empty() {
                out.push(format!(
                    "[[postmortem.lint]] #{} (\"{}\"): suggest is empty; say what to write instead",
                    i + 1,
                    rule.phrase
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::env;
    use crate::config::{Config, Secrets};

    #[test]
    fn postmortem_section_from_a_file() {
        let d = Config::default();
        assert!(!d.postmortem.anonymize);
        assert!(
            d.postmortem.transcript,
            "nothing said is missing by default"
        );
        assert_eq!(d.postmortem.highlight_reaction, "📌");
        assert!(d.postmortem.builtin_lint && d.postmortem.lint.is_empty());
        let toml = r#"
            [postmortem]
            anonymize = true
            highlight_reaction = "⭐"
            transcript = false

            [[postmortem.lint]]
            phrase = "dropped the ball"
            suggest = "describe what made the task hard to finish in time"

            [[postmortem.lint]]
            phrase = "{person} overlooked"
            suggest = "say what the check did not show"
        "#;
        let c = Config::from_parts(
            Some(("a.toml", toml)),
            &env(&[("SITREP_POSTMORTEM__BUILTIN_LINT", "false")]),
        )
        .unwrap();
        assert!(c.postmortem.anonymize && !c.postmortem.transcript);
        assert!(!c.postmortem.builtin_lint);
        assert_eq!(c.postmortem.highlight_reaction, "⭐");
        assert_eq!(c.postmortem.lint.len(), 2);
        assert_eq!(c.postmortem.lint[1].phrase, "{person} overlooked");
        assert!(c.problems(&Secrets::default(), false).is_empty());

        // The phrases' own checks are the preflight's; see its tests.
        let bad = r#"
            [postmortem]
            highlight_reaction = " "
            [[postmortem.lint]]
            phrase = "{someone} broke it"
            suggest = ""
        "#;
        let c = Config::from_parts(Some(("a.toml", bad)), &env(&[])).unwrap();
        let all = c.problems(&Secrets::default(), false).join("\n");
        for needle in ["highlight_reaction is empty", "suggest is empty"] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
        let err = Config::from_parts(
            Some(("a.toml", "[postmortem]\nanonymise = true\n")),
            &env(&[]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("anonymise"), "{err}");
    }
}
