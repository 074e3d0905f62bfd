//! Discord-only syntax turned into what a terminal can show: times, mentions and buttons.

use chrono::{DateTime, FixedOffset, Utc};

/// What a `<@…>`, `<@&…>` or `<#…>` mention points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mention {
    User(u64),
    Role(u64),
    Channel(u64),
}

/// `text` with Discord's markup spelt out: `<t:1796657685:R>` becomes `14:05 (3 minutes ago)`
/// in `tz`, mentions become `@name` / `#name` where `name` knows them. Unknown mentions and
/// anything that only looks like markup are left as typed.
pub fn for_terminal(
    text: &str,
    now: DateTime<Utc>,
    tz: FixedOffset,
    name: impl Fn(Mention) -> Option<String>,
) -> String {
    if !text.contains('<') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('<') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let Some((word, len)) = token(tail, now, tz, &name) else {
            out.push('<');
            rest = &tail[1..];
            continue;
        };
        out.push_str(&word);
        rest = &tail[len..];
    }
    out.push_str(rest);
    out
}

/// The markup at the start of `tail` in words, and how many bytes of `tail` it stood for.
fn token(
    tail: &str,
    now: DateTime<Utc>,
    tz: FixedOffset,
    name: &impl Fn(Mention) -> Option<String>,
) -> Option<(String, usize)> {
    let close = tail.find('>')?;
    let inner = &tail[1..close];
    let id = |prefix: &str| {
        inner
            .strip_prefix(prefix)
            .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|d| d.parse::<u64>().ok())
    };
    if let Some(ts) = inner.strip_prefix("t:") {
        let (unix, style) = ts.split_once(':').unwrap_or((ts, "f"));
        let t = DateTime::from_timestamp(unix.parse().ok()?, 0)?;
        let mut len = close + 1;
        // Discord shows a time and then the same time as "(3 minutes ago)"; say it once.
        let pair = format!(" (<t:{unix}:R>)");
        if style != "R" && tail[len..].starts_with(&pair) {
            len += pair.len();
        }
        return Some((time(t, style, now, tz), len));
    }
    // A mention the console cannot name stays as typed, so that text someone wrote is never
    // shown as something it was not.
    let word = if let Some(n) = id("@!").or_else(|| id("@")) {
        format!("@{}", name(Mention::User(n))?)
    } else if let Some(n) = id("@&") {
        format!("@{}", name(Mention::Role(n))?)
    } else if let Some(n) = id("#") {
        format!("#{}", name(Mention::Channel(n))?)
    } else {
        return None;
    };
    Some((word, close + 1))
}

/// A Discord timestamp as local time and how long ago (or how soon) it is: `14:05 (3 minutes
/// ago)`; the date is left out when it is today.
fn time(t: DateTime<Utc>, style: &str, now: DateTime<Utc>, tz: FixedOffset) -> String {
    let local = t.with_timezone(&tz);
    let today = local.date_naive() == now.with_timezone(&tz).date_naive();
    let at = match style {
        "d" | "D" => local.format("%Y-%m-%d").to_string(),
        "T" if today => local.format("%H:%M:%S").to_string(),
        "T" => local.format("%Y-%m-%d %H:%M:%S").to_string(),
        _ if today => local.format("%H:%M").to_string(),
        _ => local.format("%Y-%m-%d %H:%M").to_string(),
    };
    format!("{at} ({})", relative(t, now))
}

/// `3 minutes ago`, `in 2 hours`, `just now`.
pub fn relative(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - t).num_seconds();
    let span = secs.unsigned_abs();
    if span < 45 {
        return "just now".into();
    }
    let (n, unit) = match span {
        s if s < 3570 => ((s + 30) / 60, "minute"),
        s if s < 36 * 3600 => ((s + 1800) / 3600, "hour"),
        s => ((s + 43_200) / 86_400, "day"),
    };
    let n = n.max(1);
    let amount = format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    if secs >= 0 {
        format!("{amount} ago")
    } else {
        format!("in {amount}")
    }
}

/// Buttons as numbered choices: `[1] Join  [2] Post update`.
pub fn choices<'a>(buttons: impl IntoIterator<Item = (usize, &'a str)>) -> String {
    buttons
        .into_iter()
        .map(|(n, label)| format!("[{n}] {label}"))
        .collect::<Vec<_>>()
        .join("  ")
}

/// The button a line presses, `1` or `press 1`, and what follows it.
pub fn pressed(line: &str) -> Option<(usize, &str)> {
    let line = line.trim();
    let line = line.strip_prefix("press ").map_or(line, str::trim_start);
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    let (number, rest) = line.split_at(digits);
    if !rest.is_empty() && !rest.starts_with(' ') {
        return None;
    }
    Some((number.parse().ok().filter(|n| *n > 0)?, rest.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn names(m: Mention) -> Option<String> {
        match m {
            Mention::User(7) => Some("bob".into()),
            Mention::Role(42) => Some("dba".into()),
            Mention::Channel(1001) => Some("inc-1-db-down".into()),
            _ => None,
        }
    }

    #[test]
    fn timestamps_read_as_local_and_relative_times() {
        let now = at("2026-11-21T14:08:00Z");
        let t = at("2026-11-21T14:05:00Z").timestamp();
        let utc = FixedOffset::east_opt(0).unwrap();
        let cet = FixedOffset::east_opt(3600).unwrap();
        let f = |s: &str, tz| for_terminal(s, now, tz, names);
        assert_eq!(f(&format!("<t:{t}:R>"), utc), "14:05 (3 minutes ago)");
        assert_eq!(
            f(&format!("at <t:{t}:F>."), cet),
            "at 15:05 (3 minutes ago)."
        );
        assert_eq!(f(&format!("<t:{t}:T>"), utc), "14:05:00 (3 minutes ago)");
        assert_eq!(f(&format!("<t:{t}>"), utc), "14:05 (3 minutes ago)");
        // The pair the bot writes on Discord says the relative time once.
        assert_eq!(
            f(&format!("by <t:{t}:f> (<t:{t}:R>) or"), utc),
            "by 14:05 (3 minutes ago) or"
        );
        let earlier = at("2026-11-19T09:00:00Z").timestamp();
        assert_eq!(
            f(&format!("<t:{earlier}:f>"), utc),
            "2026-11-19 09:00 (2 days ago)"
        );
        let later = at("2026-11-21T16:08:00Z").timestamp();
        assert_eq!(f(&format!("<t:{later}:t>"), utc), "16:08 (in 2 hours)");
    }

    #[test]
    fn relative_times_round_as_people_say_them() {
        let now = at("2026-11-21T14:00:00Z");
        let ago = |s: i64| relative(now - chrono::Duration::seconds(s), now);
        assert_eq!(ago(10), "just now");
        assert_eq!(ago(-10), "just now");
        assert_eq!(ago(60), "1 minute ago");
        assert_eq!(ago(150), "3 minutes ago");
        assert_eq!(ago(3600), "1 hour ago");
        assert_eq!(ago(-7200), "in 2 hours");
        assert_eq!(ago(3 * 86_400), "3 days ago");
    }

    #[test]
    fn mentions_read_as_names_where_known() {
        let now = at("2026-11-21T14:00:00Z");
        let utc = FixedOffset::east_opt(0).unwrap();
        assert_eq!(
            for_terminal("<@7> and <@!7> page <@&42> in <#1001>", now, utc, names),
            "@bob and @bob page @dba in #inc-1-db-down"
        );
        for typed in [
            "<@8> <@&9> <#10>",
            "a < b",
            "<@x>",
            "<t:soon:R>",
            "<b>bold</b>",
            "<",
            "x <@1",
        ] {
            assert_eq!(for_terminal(typed, now, utc, names), typed);
        }
    }

    #[test]
    fn buttons_are_numbered_choices_a_line_can_press() {
        assert_eq!(
            choices([(1, "Acknowledge"), (2, "Post update")]),
            "[1] Acknowledge  [2] Post update"
        );
        assert_eq!(pressed("1"), Some((1, "")));
        assert_eq!(pressed(" press 12 "), Some((12, "")));
        assert_eq!(
            pressed("press 2 message:\"Rolling back\""),
            Some((2, "message:\"Rolling back\""))
        );
        for not in ["", "0", "press", "12a", "/incident status", "press x", "-1"] {
            assert_eq!(pressed(not), None, "{not}");
        }
    }
}
