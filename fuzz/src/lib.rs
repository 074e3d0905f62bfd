//! What the fuzz targets share: hostile text from fuzz bytes, and the checks every target makes.

use arbitrary::{Result, Unstructured};
use serde_json::Value;
use sitrep::commands::options::{kind, manifest};

/// Pieces users really type, or that break naive escaping: mentions, Markdown, template syntax,
/// invisible and bidirectional characters.
pub const HOSTILE: &[&str] = &[
    "@everyone",
    "@here",
    "<@&1300000000000000777>",
    "<@1300000000000000004>",
    "<@!1300000000000000004>",
    "<#1300000000000000005>",
    "<@&",
    "<@",
    ">",
    "@",
    "{{ 7 * 7 }}",
    "{{",
    "}}",
    "{% if true %}x{% endif %}",
    "{%",
    "%}",
    "{#",
    "#}",
    "{{ incident.title }}",
    "{% raw %}",
    "**",
    "__",
    "`",
    "```",
    "||",
    "> ",
    "# ",
    "[link](https://example.com)",
    "<t:1795255200:R>",
    "\n",
    "\r\n",
    "\t",
    " ",
    "\u{200B}",
    "\u{200D}",
    "\u{2060}",
    "\u{FEFF}",
    "\u{202E}",
    "\u{202D}",
    "\u{200F}",
    "\u{061C}",
    "é",
    "İ",
    "ß",
    "𝕏",
    "👩‍🚒",
    "\"",
    "'",
    "\\",
    ":",
    "|",
    "\0",
];

/// A string made of a few hostile pieces and arbitrary text, sometimes thousands of characters.
pub fn hostile(u: &mut Unstructured) -> Result<String> {
    let mut s = String::new();
    let pieces = u.int_in_range(0..=6)?;
    for _ in 0..pieces {
        match u.int_in_range(0..=9)? {
            0..=4 => s.push_str(u.choose(HOSTILE)?),
            5..=7 => s.push_str(u.arbitrary::<&str>()?),
            8 => {
                let n = u.int_in_range(1..=6500)?;
                let piece = u.choose(&["x", "é", "@everyone ", "{{ x }}", "\u{200B}", "🔥"])?;
                s.extend(piece.chars().cycle().take(n));
            }
            _ => s.push_str(&u.int_in_range(0..=u64::MAX)?.to_string()),
        }
    }
    Ok(s)
}

/// Deserializes a checked option object into the handler's arguments, as `commands::run` does.
/// `None` for a command the table lacks.
pub fn typed_args(command: &str, json: Value) -> Option<std::result::Result<(), String>> {
    sitrep::commands::parse_args(command, json).map(|r| r.map_err(|e| e.to_string()))
}

fn is_sub(spec: &Value) -> bool {
    matches!(
        spec["type"].as_u64(),
        Some(kind::SUB_COMMAND | kind::SUB_COMMAND_GROUP)
    )
}

/// Checks an object that `options::to_json` accepted against the manifest, independently of how
/// it was checked: the path exists, every key is an option of that (sub)command, required ones
/// are there, and every value has the manifest's type, length, range and choices.
pub fn assert_obeys_manifest(command: &str, path: &str, json: &Value) {
    let spec = manifest(command).unwrap_or_else(|| panic!("accepted unknown /{command}"));
    let obj = json
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {json}"));
    let mut spec = spec;
    let mut walked = vec![command.to_string()];
    let mut path_keys = Vec::new();
    loop {
        let opts = spec["options"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        if !opts.iter().any(is_sub) {
            break;
        }
        let key = if obj.contains_key("group") && !path_keys.contains(&"group") {
            "group"
        } else {
            "subcommand"
        };
        let name = obj
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{json}: no {key} for /{}", walked.join(" ")));
        spec = opts
            .iter()
            .find(|o| o["name"].as_str() == Some(name) && is_sub(o))
            .unwrap_or_else(|| panic!("{json}: `{name}` is not a subcommand"));
        walked.push(name.to_string());
        path_keys.push(key);
    }
    assert_eq!(walked.join(" "), path, "{json}");
    let opts = spec["options"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    for (k, v) in obj {
        if path_keys.contains(&k.as_str()) {
            continue;
        }
        let o = opts
            .iter()
            .find(|o| o["name"].as_str() == Some(k.as_str()))
            .unwrap_or_else(|| panic!("{json}: `{k}` is not an option of /{path}"));
        check_value(o, v, json);
    }
    for o in opts {
        let name = o["name"].as_str().unwrap_or_default();
        if o["required"] == true {
            assert!(obj.contains_key(name), "{json}: required `{name}` missing");
        }
    }
}

fn check_value(o: &Value, v: &Value, json: &Value) {
    let name = &o["name"];
    match o["type"].as_u64() {
        Some(kind::STRING) => {
            let s = v
                .as_str()
                .unwrap_or_else(|| panic!("{json}: {name} not a string"));
            let n = s.chars().count() as u64;
            if let Some(max) = o["max_length"].as_u64() {
                assert!(n <= max, "{json}: {name} is {n} > {max} characters");
            }
            let min = o["min_length"].as_u64().unwrap_or(0);
            assert!(n >= min, "{json}: {name} under min_length");
            if o["required"] == true {
                assert!(n > 0, "{json}: required {name} empty");
            }
        }
        Some(kind::INTEGER) => assert!(v.is_i64(), "{json}: {name} not an integer"),
        Some(kind::NUMBER) => assert!(
            v.as_f64().is_some_and(f64::is_finite),
            "{json}: {name} not a finite number"
        ),
        Some(kind::BOOLEAN) => assert!(v.is_boolean(), "{json}: {name} not a boolean"),
        Some(kind::USER) => assert!(
            serde_json::from_value::<sitrep::domain::UserRef>(v.clone()).is_ok(),
            "{json}: {name} not a user"
        ),
        Some(kind::CHANNEL | kind::ROLE) => {
            assert!(v.is_u64(), "{json}: {name} not a snowflake")
        }
        Some(kind::MENTIONABLE) => assert!(
            v.is_u64() || serde_json::from_value::<sitrep::domain::UserRef>(v.clone()).is_ok(),
            "{json}: {name} not mentionable"
        ),
        other => panic!("{json}: {name} has unsupported type {other:?} yet was accepted"),
    }
    if let Some(n) = v.as_f64().filter(|_| v.is_number()) {
        if let Some(min) = o["min_value"].as_f64() {
            assert!(n >= min, "{json}: {name} below min_value");
        }
        if let Some(max) = o["max_value"].as_f64() {
            assert!(n <= max, "{json}: {name} above max_value");
        }
    }
    if let Some(choices) = o["choices"].as_array() {
        assert!(
            choices.iter().any(|c| &c["value"] == v),
            "{json}: {name} = {v} is not a choice"
        );
    }
}

/// A mention in message content, as Discord parses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mention {
    Everyone,
    User(u64),
    Role(u64),
}

/// Every mention in `text` with its byte range: `@everyone`, `@here`, `<@id>`, `<@!id>`,
/// `<@&id>`.
pub fn mentions(text: &str) -> Vec<(std::ops::Range<usize>, Mention)> {
    let mut out = Vec::new();
    for word in ["@everyone", "@here"] {
        out.extend(
            text.match_indices(word)
                .map(|(i, w)| (i..i + w.len(), Mention::Everyone)),
        );
    }
    for (start, _) in text.match_indices("<@") {
        let rest = &text[start + 2..];
        let (role, skip) = match rest.as_bytes().first() {
            Some(b'&') => (true, 1),
            Some(b'!') => (false, 1),
            _ => (false, 0),
        };
        let digits = rest[skip..].bytes().take_while(u8::is_ascii_digit).count();
        let end = start + 2 + skip + digits;
        if digits == 0 || !text[end..].starts_with('>') {
            continue;
        }
        let Ok(id) = rest[skip..skip + digits].parse::<u64>() else {
            continue;
        };
        let m = if role {
            Mention::Role(id)
        } else {
            Mention::User(id)
        };
        out.push((start..end + 1, m));
    }
    out.sort_by_key(|(r, _)| r.start);
    out
}

fn chars(v: &Value) -> usize {
    v.as_str().map_or(0, |s| s.chars().count())
}

fn ids(v: &Value) -> Vec<u64> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().and_then(|s| s.parse().ok()).or(x.as_u64()))
        .collect()
}

/// Checks a message body exactly as serenity would send it (create, edit, interaction reply):
/// Discord's length limits, explicit `allowed_mentions` that parse nothing, and that the only
/// mentions in the content that can ping are the `users` and `roles` the feature intended.
pub fn assert_message_ok(body: &Value, intended_users: &[u64], intended_roles: &[u64]) {
    let content = body["content"].as_str().unwrap_or("");
    assert!(chars(&body["content"]) <= 2000, "content over 2000: {body}");
    if let Some(n) = body.get("nonce") {
        assert!(chars(n) <= 25, "nonce over 25: {n}");
    }
    let embeds = body["embeds"].as_array().cloned().unwrap_or_default();
    assert!(embeds.len() <= 10, "{} embeds", embeds.len());
    let mut total = 0;
    for e in &embeds {
        let title = chars(&e["title"]);
        let description = chars(&e["description"]);
        let footer = chars(&e["footer"]["text"]);
        let author = chars(&e["author"]["name"]);
        assert!(title <= 256, "embed title {title}");
        assert!(description <= 4096, "embed description {description}");
        assert!(footer <= 2048, "embed footer {footer}");
        assert!(author <= 256, "embed author {author}");
        let fields = e["fields"].as_array().cloned().unwrap_or_default();
        assert!(fields.len() <= 25, "{} fields", fields.len());
        total += title + description + footer + author;
        for f in &fields {
            assert!(
                chars(&f["name"]) <= 256 && chars(&f["value"]) <= 1024,
                "{f}"
            );
            total += chars(&f["name"]) + chars(&f["value"]);
        }
    }
    assert!(total <= 6000, "embeds total {total}");
    let rows = body["components"].as_array().cloned().unwrap_or_default();
    assert!(rows.len() <= 5, "{} action rows", rows.len());
    for row in &rows {
        let buttons = row["components"].as_array().cloned().unwrap_or_default();
        assert!(buttons.len() <= 5, "{} buttons in a row", buttons.len());
        for b in &buttons {
            assert!(chars(&b["label"]) <= 80, "button label {b}");
            assert!(chars(&b["custom_id"]) <= 100, "custom_id {b}");
        }
    }
    let am = &body["allowed_mentions"];
    assert!(am.is_object(), "no allowed_mentions: {body}");
    assert_eq!(am["parse"], serde_json::json!([]), "{am}");
    assert_ne!(am["replied_user"], true, "{am}");
    let users = ids(&am["users"]);
    let roles = ids(&am["roles"]);
    for u in &users {
        assert!(intended_users.contains(u), "may ping user {u}: {am}");
    }
    for r in &roles {
        assert!(intended_roles.contains(r), "may ping role {r}: {am}");
    }
    for (_, m) in mentions(content) {
        match m {
            // `parse` is empty, so @everyone and @here stay text.
            Mention::Everyone => {}
            Mention::User(u) => assert!(
                !users.contains(&u) || intended_users.contains(&u),
                "pings user {u}"
            ),
            Mention::Role(r) => assert!(
                !roles.contains(&r) || intended_roles.contains(&r),
                "pings role {r}"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_are_found_with_their_ranges() {
        let t = "a @here <@&12> <@!3> <@4> <@x> <@5";
        let found: Vec<Mention> = mentions(t).into_iter().map(|(_, m)| m).collect();
        assert_eq!(
            found,
            [
                Mention::Everyone,
                Mention::Role(12),
                Mention::User(3),
                Mention::User(4)
            ]
        );
        let (r, _) = &mentions(t)[1];
        assert_eq!(&t[r.clone()], "<@&12>");
    }
}
