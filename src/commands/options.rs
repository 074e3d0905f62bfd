//! Command manifests, and turning an interaction's option tree into a JSON object for serde.

use crate::domain::UserRef;
use crate::error::UserError;
use serde_json::{Map, Value};
use std::sync::LazyLock;

/// Discord's option types.
pub mod kind {
    pub const SUB_COMMAND: u64 = 1;
    pub const SUB_COMMAND_GROUP: u64 = 2;
    pub const STRING: u64 = 3;
    pub const INTEGER: u64 = 4;
    pub const BOOLEAN: u64 = 5;
    pub const USER: u64 = 6;
    pub const CHANNEL: u64 = 7;
    pub const ROLE: u64 = 8;
    pub const MENTIONABLE: u64 = 9;
    pub const NUMBER: u64 = 10;
}

/// Every manifest in the command table, parsed once, in the table's order: what Discord
/// registers verbatim. They are compiled in, so a broken one is a bug caught by the tests.
pub fn manifests() -> &'static [Value] {
    static PARSED: LazyLock<Vec<Value>> = LazyLock::new(|| {
        super::TABLE
            .iter()
            .filter_map(|c| c.manifest.map(|src| (c.name, src)))
            .map(|(name, src)| {
                serde_json::from_str(src).unwrap_or_else(|e| panic!("manifest of {name}: {e}"))
            })
            .collect()
    });
    &PARSED
}

pub fn manifest(name: &str) -> Option<&'static Value> {
    manifests().iter().find(|m| m["name"] == name)
}

/// Whether an option spec is a subcommand or a group of them.
pub fn is_sub(spec: &Value) -> bool {
    matches!(
        spec["type"].as_u64(),
        Some(kind::SUB_COMMAND | kind::SUB_COMMAND_GROUP)
    )
}

/// The runnable leaves of a manifest: each (sub)command's path below the manifest
/// (`["role"]`, or none for a command without subcommands) with its own option specs.
pub fn leaves(manifest: &Value) -> Vec<(Vec<String>, &[Value])> {
    fn walk<'m>(spec: &'m Value, path: Vec<String>, out: &mut Vec<(Vec<String>, &'m [Value])>) {
        let opts: &[Value] = spec["options"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        let subs: Vec<&Value> = opts.iter().filter(|o| is_sub(o)).collect();
        if subs.is_empty() {
            out.push((path, opts));
            return;
        }
        for s in subs {
            let mut p = path.clone();
            p.push(s["name"].as_str().unwrap_or_default().to_string());
            walk(s, p, out);
        }
    }
    let mut out = Vec::new();
    walk(manifest, Vec::new(), &mut out);
    out
}

/// Every runnable command path: `incident open`, `incident resolve`, ….
pub fn command_paths() -> Vec<String> {
    manifests()
        .iter()
        .flat_map(|m| {
            let name = m["name"].as_str().unwrap_or_default();
            leaves(m).into_iter().map(move |(path, _)| {
                std::iter::once(name)
                    .chain(path.iter().map(String::as_str))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
        })
        .collect()
}

/// An option value as the edges deliver it, before it is checked against the manifest.
#[derive(Debug, Clone, PartialEq)]
pub enum InputValue {
    /// A subcommand or group and its own options.
    Sub(Vec<InputOption>),
    /// Text typed in a terminal, to be read according to the manifest's type.
    Raw(String),
    String(String),
    Integer(i64),
    Number(f64),
    Bool(bool),
    User(UserRef),
    Channel(u64),
    Role(u64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct InputOption {
    pub name: String,
    pub value: InputValue,
}

/// A command as typed: `/incident open title:…`.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandInput {
    pub name: String,
    pub options: Vec<InputOption>,
}

impl CommandInput {
    /// `incident open`, for logs, permissions and error messages.
    pub fn path(&self) -> String {
        let mut parts = vec![self.name.clone()];
        let mut opts = &self.options;
        while let Some(InputOption {
            name,
            value: InputValue::Sub(inner),
        }) = opts.first()
        {
            parts.push(name.clone());
            opts = inner;
        }
        parts.join(" ")
    }
}

/// Checks `input` against its manifest (names, types, required, choices, lengths, ranges) and
/// returns `{"subcommand": "open", "title": …}`. Everything an edge or a tampered client can send
/// passes through here, so Discord's client-side checks are not trusted.
pub fn to_json(input: &CommandInput) -> Result<Value, UserError> {
    let manifest = manifest(&input.name)
        .ok_or_else(|| UserError::UnknownCommand(format!("/{}", input.name)))?;
    let mut out = Map::new();
    walk(
        manifest,
        &input.options,
        &format!("/{}", input.name),
        &mut out,
    )?;
    Ok(Value::Object(out))
}

fn walk(
    spec: &Value,
    given: &[InputOption],
    path: &str,
    out: &mut Map<String, Value>,
) -> Result<(), UserError> {
    let specs: &[Value] = spec["options"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let has_subs = specs.iter().any(is_sub);
    if has_subs {
        let names: Vec<&str> = specs.iter().filter_map(|s| s["name"].as_str()).collect();
        let [InputOption { name, value }] = given else {
            return Err(UserError::BadOptions {
                command: path.into(),
                message: format!("choose one of: {}", names.join(", ")),
            });
        };
        let sub = specs
            .iter()
            .find(|s| s["name"] == name.as_str())
            .ok_or_else(|| UserError::BadOptions {
                command: path.into(),
                message: format!("`{name}` is not one of: {}", names.join(", ")),
            })?;
        let InputValue::Sub(inner) = value else {
            return Err(UserError::BadOptions {
                command: path.into(),
                message: format!("`{name}` is a subcommand, not an option"),
            });
        };
        let key = if sub["type"] == kind::SUB_COMMAND_GROUP {
            "group"
        } else {
            "subcommand"
        };
        out.insert(key.into(), Value::String(name.clone()));
        return walk(sub, inner, &format!("{path} {name}"), out);
    }

    for opt in given {
        let spec = specs
            .iter()
            .find(|s| s["name"] == opt.name.as_str())
            .ok_or_else(|| UserError::BadOptions {
                command: path.into(),
                message: format!(
                    "unknown option `{}`; it takes {}",
                    opt.name,
                    describe_options(specs)
                ),
            })?;
        if out.contains_key(&opt.name) {
            return Err(UserError::BadOptions {
                command: path.into(),
                message: format!("`{}` is given twice", opt.name),
            });
        }
        let value = check_value(spec, &opt.value).map_err(|message| UserError::BadOptions {
            command: path.into(),
            message: format!("`{}`: {message}", opt.name),
        })?;
        out.insert(opt.name.clone(), value);
    }
    for spec in specs {
        let name = spec["name"].as_str().unwrap_or_default();
        if spec["required"] == true && !out.contains_key(name) {
            return Err(UserError::BadOptions {
                command: path.into(),
                message: format!(
                    "`{name}` is required ({})",
                    spec["description"].as_str().unwrap_or_default()
                ),
            });
        }
    }
    Ok(())
}

fn describe_options(specs: &[Value]) -> String {
    let names: Vec<String> = specs
        .iter()
        .filter_map(|s| s["name"].as_str())
        .map(|n| format!("`{n}`"))
        .collect();
    if names.is_empty() {
        "no options".into()
    } else {
        names.join(", ")
    }
}

fn check_value(spec: &Value, value: &InputValue) -> Result<Value, String> {
    let ty = spec["type"].as_u64().unwrap_or(kind::STRING);
    let value = coerce(ty, value)?;
    if let Value::String(s) = &value {
        let len = s.chars().count() as u64;
        if let Some(max) = spec["max_length"].as_u64() {
            if len > max {
                return Err(format!("{len} characters is too long; the limit is {max}"));
            }
        }
        let min = spec["min_length"].as_u64().unwrap_or(0);
        if len < min || (len == 0 && spec["required"] == true) {
            return Err("must not be empty".into());
        }
    }
    if let Some(n) = value.as_f64().filter(|_| value.is_number()) {
        if let Some(min) = spec["min_value"].as_f64().filter(|m| n < *m) {
            return Err(format!("must be at least {min}"));
        }
        if let Some(max) = spec["max_value"].as_f64().filter(|m| n > *m) {
            return Err(format!("must be at most {max}"));
        }
    }
    if let Some(choices) = spec["choices"].as_array() {
        if !choices.iter().any(|c| c["value"] == value) {
            let allowed: Vec<String> = choices
                .iter()
                .map(|c| match &c["value"] {
                    Value::String(s) => s.clone(),
                    v => v.to_string(),
                })
                .collect();
            return Err(format!("must be one of {}", allowed.join(", ")));
        }
    }
    Ok(value)
}

fn coerce(ty: u64, value: &InputValue) -> Result<Value, String> {
    let raw = match value {
        InputValue::Raw(s) => s.as_str(),
        InputValue::Sub(_) => return Err("is a subcommand, not a value".into()),
        typed => return typed_json(ty, typed),
    };
    match ty {
        kind::STRING => Ok(Value::String(raw.to_string())),
        kind::INTEGER => raw
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("`{raw}` is not a whole number")),
        kind::NUMBER => raw
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(|n| serde_json::Number::from_f64(n).map(Value::Number))
            .ok_or_else(|| format!("`{raw}` is not a number")),
        kind::BOOLEAN => match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Ok(Value::Bool(true)),
            "false" | "no" | "0" => Ok(Value::Bool(false)),
            _ => Err(format!("`{raw}` is not true or false")),
        },
        kind::USER | kind::MENTIONABLE => {
            user_from_text(raw).map(|u| serde_json::to_value(u).expect("plain struct"))
        }
        kind::CHANNEL | kind::ROLE => snowflake_from_text(raw)
            .map(Value::from)
            .ok_or_else(|| format!("`{raw}` is not a channel or role")),
        other => Err(format!("option type {other} is not supported")),
    }
}

fn typed_json(ty: u64, value: &InputValue) -> Result<Value, String> {
    let ok = match (ty, value) {
        (kind::STRING, InputValue::String(s)) => Value::String(s.clone()),
        (kind::INTEGER, InputValue::Integer(n)) => Value::from(*n),
        (kind::NUMBER, InputValue::Number(n)) => serde_json::Number::from_f64(*n)
            .map(Value::Number)
            .ok_or("is not a finite number")?,
        (kind::NUMBER, InputValue::Integer(n)) => Value::from(*n as f64),
        (kind::BOOLEAN, InputValue::Bool(b)) => Value::Bool(*b),
        (kind::USER | kind::MENTIONABLE, InputValue::User(u)) => {
            serde_json::to_value(u).expect("plain struct")
        }
        (kind::CHANNEL, InputValue::Channel(c)) => Value::from(*c),
        (kind::ROLE | kind::MENTIONABLE, InputValue::Role(r)) => Value::from(*r),
        _ => return Err("has the wrong type".into()),
    };
    Ok(ok)
}

/// `<@123>` or `<@!123>` keep their id; `@alice` or `alice` in a terminal become a stable made-up id,
/// so that the same name is the same person across a console session.
fn user_from_text(raw: &str) -> Result<UserRef, String> {
    let t = raw.trim();
    if let Some(id) = t
        .strip_prefix("<@")
        .and_then(|r| r.strip_suffix('>'))
        .map(|r| r.trim_start_matches('!'))
    {
        return id
            .parse::<u64>()
            .map(|id| UserRef::new(id, format!("user-{id}")))
            .map_err(|_| format!("`{raw}` is not a user"));
    }
    let name = t.trim_start_matches('@');
    if name.is_empty() {
        return Err("names nobody; give a user like @alice".into());
    }
    if name
        .chars()
        .any(|c| c.is_whitespace() || c == '<' || c == '>')
    {
        return Err(format!("`{raw}` is not a user name"));
    }
    Ok(UserRef::new(console_user_id(name), name))
}

/// A made-up, stable id for a name typed in the console (FNV-1a; below Discord's snowflake range).
pub fn console_user_id(name: &str) -> u64 {
    let h = crate::domain::StableHash::default()
        .feed(name.to_lowercase().as_bytes())
        .finish();
    h % 1_000_000_000 + 1
}

fn snowflake_from_text(raw: &str) -> Option<u64> {
    let t = raw
        .trim()
        .trim_start_matches("<#")
        .trim_start_matches("<@&");
    t.trim_end_matches('>').parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(name: &str, opts: &[(&str, InputValue)]) -> CommandInput {
        CommandInput {
            name: "incident".into(),
            options: vec![InputOption {
                name: name.into(),
                value: InputValue::Sub(
                    opts.iter()
                        .map(|(n, v)| InputOption {
                            name: (*n).into(),
                            value: v.clone(),
                        })
                        .collect(),
                ),
            }],
        }
    }

    fn raw(s: &str) -> InputValue {
        InputValue::Raw(s.into())
    }

    #[test]
    fn option_tree_becomes_a_flat_object() {
        let input = sub(
            "open",
            &[
                ("title", raw("Checkout returns 500")),
                ("severity", raw("SEV2")),
                ("drill", raw("yes")),
            ],
        );
        assert_eq!(
            to_json(&input).unwrap(),
            serde_json::json!({"subcommand": "open", "title": "Checkout returns 500", "severity": "SEV2", "drill": true})
        );
        assert_eq!(input.path(), "incident open");
    }

    #[test]
    fn manifest_rules_are_enforced() {
        let cases = [
            (
                sub("open", &[("severity", raw("SEV2"))]),
                "`title` is required",
            ),
            (
                sub("open", &[("title", raw("x")), ("severity", raw("SEV9"))]),
                "must be one of",
            ),
            (
                sub(
                    "open",
                    &[("title", raw(&"x".repeat(300))), ("severity", raw("SEV1"))],
                ),
                "300 characters is too long",
            ),
            (
                sub("open", &[("title", raw("")), ("severity", raw("SEV1"))]),
                "must not be empty",
            ),
            (
                sub(
                    "open",
                    &[
                        ("title", raw("x")),
                        ("severity", raw("SEV1")),
                        ("colour", raw("red")),
                    ],
                ),
                "unknown option `colour`",
            ),
            (
                sub(
                    "open",
                    &[
                        ("title", raw("x")),
                        ("title", raw("y")),
                        ("severity", raw("SEV1")),
                    ],
                ),
                "given twice",
            ),
            (sub("explode", &[]), "not one of"),
            (
                sub("role", &[("role", raw("commander")), ("user", raw("@"))]),
                "names nobody",
            ),
            (
                sub(
                    "open",
                    &[
                        ("title", raw("x")),
                        ("severity", raw("SEV1")),
                        ("drill", raw("maybe")),
                    ],
                ),
                "not true or false",
            ),
        ];
        for (input, needle) in cases {
            let err = to_json(&input).unwrap_err().to_string();
            assert!(err.contains(needle), "{needle:?} not in {err:?}");
        }
        let err = to_json(&CommandInput {
            name: "incident".into(),
            options: vec![],
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("choose one of"), "{err}");
    }

    #[test]
    fn users_from_text() {
        assert_eq!(user_from_text("<@!42>").unwrap().id, 42);
        let a = user_from_text("@alice").unwrap();
        assert_eq!(a, user_from_text("alice").unwrap());
        assert_eq!(a.name, "alice");
        assert_ne!(a.id, user_from_text("@bob").unwrap().id);
    }

    #[test]
    fn manifests_keep_discords_limits() {
        fn check(opt: &Value, depth: usize) {
            let name = opt["name"].as_str().unwrap();
            assert!(!name.is_empty() && name.len() <= 32, "{name}");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'),
                "{name}"
            );
            let d = opt["description"].as_str().unwrap();
            assert!(!d.is_empty() && d.chars().count() <= 100, "{name}: {d}");
            let opts = opt["options"].as_array().cloned().unwrap_or_default();
            assert!(opts.len() <= 25);
            let mut seen_optional = false;
            for o in &opts {
                if o["type"] == kind::SUB_COMMAND || o["type"] == kind::SUB_COMMAND_GROUP {
                    assert!(depth < 2);
                } else if o["required"] == true {
                    assert!(
                        !seen_optional,
                        "{name}: required option after an optional one"
                    );
                } else {
                    seen_optional = true;
                }
                if let Some(c) = o["choices"].as_array() {
                    assert!(c.len() <= 25);
                }
                if let Some(m) = o["max_length"].as_u64() {
                    assert!((1..=6000).contains(&m));
                }
                check(o, depth + 1);
            }
        }
        for m in manifests() {
            // Message and user commands (types 2, 3) take a display name and no description.
            if m["type"] == 2 || m["type"] == 3 {
                let name = m["name"].as_str().unwrap();
                assert!((1..=32).contains(&name.chars().count()), "{name}");
                assert!(m.get("description").is_none() && m.get("options").is_none());
                continue;
            }
            check(m, 0);
        }
    }
}
