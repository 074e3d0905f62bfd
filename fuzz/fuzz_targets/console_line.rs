//! `sitrep console` lines → `parse_line` → `options::to_json` → typed arguments.
//!
//! Checks: a parsed line names a real command path and only `name:value` options; quoting the
//! parsed words again reads back to the same command; an accepted line obeys the manifest and
//! deserializes into its command's arguments.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sitrep::chat::console::parse_line;
use sitrep::commands::options::{kind, manifest, to_json};
use sitrep::commands::{CommandInput, InputOption, InputValue};
use sitrep_fuzz::{assert_obeys_manifest, typed_args};

/// The subcommand words and the leaf options of a parsed command.
fn split(input: &CommandInput) -> (Vec<String>, Vec<(String, String)>) {
    let mut words = Vec::new();
    let mut opts: &[InputOption] = &input.options;
    while let [InputOption {
        name,
        value: InputValue::Sub(inner),
    }] = opts
    {
        words.push(name.clone());
        opts = inner;
    }
    let leaf = opts
        .iter()
        .map(|o| match &o.value {
            InputValue::Raw(v) => (o.name.clone(), v.clone()),
            other => panic!("the console made a typed value {other:?}"),
        })
        .collect();
    (words, leaf)
}

fn check(line: &str) {
    let Ok(input) = parse_line(line) else {
        return;
    };
    let spec = manifest(&input.name).unwrap_or_else(|| panic!("{line:?}: unknown command"));
    let (words, leaf) = split(&input);
    // Subcommands are followed down to a leaf, as the manifest has them.
    let mut spec = spec;
    for w in &words {
        spec = spec["options"]
            .as_array()
            .and_then(|o| {
                o.iter().find(|s| {
                    s["name"] == w.as_str()
                        && matches!(
                            s["type"].as_u64(),
                            Some(kind::SUB_COMMAND | kind::SUB_COMMAND_GROUP)
                        )
                })
            })
            .unwrap_or_else(|| panic!("{line:?}: `{w}` is not a subcommand"));
    }
    let leaf_has_subs = spec["options"].as_array().is_some_and(|o| {
        o.iter().any(|s| {
            matches!(
                s["type"].as_u64(),
                Some(kind::SUB_COMMAND | kind::SUB_COMMAND_GROUP)
            )
        })
    });
    assert!(!leaf_has_subs, "{line:?}: stopped above a leaf");
    for (k, _) in &leaf {
        assert!(
            !k.contains(':'),
            "{line:?}: option name {k:?} holds a colon"
        );
    }

    // The same words, quoted again, read back to the same command.
    let mut parts = vec![format!("/{}", input.name)];
    parts.extend(words.iter().cloned());
    parts.extend(leaf.iter().map(|(k, v)| format!("{k}:{v}")));
    let quoted: Option<Vec<String>> = parts
        .iter()
        .map(|p| shlex::try_quote(p).ok().map(|q| q.into_owned()))
        .collect();
    if let Some(quoted) = quoted {
        let again = quoted.join(" ");
        assert_eq!(
            parse_line(&again).as_ref(),
            Ok(&input),
            "{line:?} → {again:?} reads differently"
        );
    }

    if let Ok(json) = to_json(&input) {
        assert_obeys_manifest(&input.name, &input.path(), &json);
        if let Some(Err(e)) = typed_args(&input.name, json.clone()) {
            panic!("{line:?}: accepted {json} but its arguments refuse it: {e}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(line) = std::str::from_utf8(data) {
        check(line);
    }
});
