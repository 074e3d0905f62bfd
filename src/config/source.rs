//! Where each setting came from, a line of the file or a variable, so problems say where to fix them.

use std::collections::BTreeMap;

/// A setting's place in the configuration: table keys, and `#n` for the n-th entry of an array.
pub(super) type KeyPath = Vec<String>;

/// The file's lines and the environment's variables by the settings they set.
#[derive(Clone, Default)]
pub struct Sources {
    origin: Option<String>,
    text: String,
    lines: BTreeMap<KeyPath, usize>,
    env: BTreeMap<KeyPath, String>,
    /// Settings that had a problem of their own and were left out of the configuration.
    set_aside: Vec<KeyPath>,
}

/// Without the file's text, which may hold a secret pasted by mistake.
impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources")
            .field("origin", &self.origin)
            .field("lines", &self.lines)
            .field("env", &self.env)
            .field("set_aside", &self.set_aside)
            .finish_non_exhaustive()
    }
}

impl Sources {
    pub(super) fn file(origin: &str, text: &str) -> Sources {
        let mut lines = BTreeMap::new();
        // The file already parsed as TOML; a parser that disagrees only costs the line numbers.
        if let Ok(doc) = toml_edit::ImDocument::parse(text) {
            walk_table(doc.as_table(), text, &mut Vec::new(), &mut lines);
        }
        Sources {
            origin: Some(origin.to_string()),
            text: text.to_string(),
            lines,
            env: BTreeMap::new(),
            set_aside: Vec::new(),
        }
    }

    pub(super) fn set_aside(&mut self, path: &[String]) {
        self.set_aside.push(path.to_vec());
    }

    /// Whether `problem` is about a setting already reported and left out, which the checks of
    /// the rest see as missing: the first report is the one to act on.
    pub fn is_about_set_aside(&self, problem: &str) -> bool {
        problem_path(problem).is_some_and(|p| self.set_aside.iter().any(|s| p.starts_with(s)))
    }

    pub(super) fn set_by_env(&mut self, path: KeyPath, var: &str) {
        self.env.insert(path, var.to_string());
    }

    /// `file: line N: ` or `environment variable VAR: ` for the setting at `path`, or the file's
    /// name alone when the file does not say it.
    pub(super) fn prefix(&self, path: &[String]) -> String {
        if let Some(var) = self.env_var(path) {
            return format!("environment variable {var}: ");
        }
        match (&self.origin, self.line(path)) {
            (Some(origin), Some(line)) => format!("{origin}: line {line}: "),
            (Some(origin), None) => format!("{origin}: "),
            (None, _) => "configuration: ".into(),
        }
    }

    /// The variable that set `path`, or a setting inside it, or the table holding it.
    fn env_var(&self, path: &[String]) -> Option<&str> {
        self.env
            .iter()
            .find(|(p, _)| p.starts_with(path) || path.starts_with(p))
            .map(|(_, var)| var.as_str())
    }

    /// The file's line for the setting at `path`, unless a variable set it since.
    pub(super) fn file_line(&self, path: &[String]) -> Option<usize> {
        self.env_var(path).map_or_else(|| self.line(path), |_| None)
    }

    /// The line of the setting at `path`, or of the nearest table around it the file writes.
    pub(super) fn line(&self, path: &[String]) -> Option<usize> {
        (1..=path.len())
            .rev()
            .find_map(|n| self.lines.get(&path[..n]).copied())
    }

    /// The file's line `n`, as written.
    pub(super) fn line_text(&self, n: usize) -> Option<&str> {
        self.text.lines().nth(n.checked_sub(1)?).map(str::trim)
    }

    /// `problem` with where to fix it in front, when it opens with the setting it is about
    /// (`[severities.SEV1] colour = …`, `[permissions] "x" is …`, `[[postmortem.lint]] #2: …`),
    /// and that setting came from the file or the environment. Others are returned as they are.
    pub fn locate(&self, problem: &str) -> String {
        let Some(path) = problem_path(problem) else {
            return problem.to_string();
        };
        if self.env_var(&path).is_none() && self.line(&path).is_none() {
            return problem.to_string();
        }
        format!("{}{problem}", self.prefix(&path))
    }
}

/// The setting a problem names at its start, as [`Sources::locate`] describes.
fn problem_path(problem: &str) -> Option<KeyPath> {
    let (inner, rest) = match problem.strip_prefix("[[") {
        Some(p) => p.split_once("]]")?,
        None => problem.strip_prefix('[')?.split_once(']')?,
    };
    let mut path: KeyPath = inner.split('.').map(|k| k.trim().to_string()).collect();
    let rest = rest.trim_start();
    if let Some(quoted) = rest.strip_prefix('"') {
        path.push(quoted.split('"').next()?.to_string());
    } else if let Some(n) = rest.strip_prefix('#') {
        let digits: String = n.chars().take_while(char::is_ascii_digit).collect();
        path.push(format!("#{digits}"));
    } else {
        let word: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !word.is_empty() {
            path.push(word);
        }
    }
    Some(path)
}

fn line_of(text: &str, span: Option<std::ops::Range<usize>>) -> Option<usize> {
    let start = span?.start;
    Some(text.get(..start)?.matches('\n').count() + 1)
}

fn walk_table(
    table: &toml_edit::Table,
    text: &str,
    path: &mut KeyPath,
    out: &mut BTreeMap<KeyPath, usize>,
) {
    for (name, _) in table.iter() {
        let Some((key, item)) = table.get_key_value(name) else {
            continue;
        };
        path.push(name.to_string());
        walk_item(key.span(), item, text, path, out);
        path.pop();
    }
}

fn walk_item(
    key_span: Option<std::ops::Range<usize>>,
    item: &toml_edit::Item,
    text: &str,
    path: &mut KeyPath,
    out: &mut BTreeMap<KeyPath, usize>,
) {
    use toml_edit::Item;
    let line = match item {
        // A `[table]` header is where the reader looks, not the key inside `[a.b]`.
        Item::Table(t) => line_of(text, t.span()).or_else(|| line_of(text, key_span.clone())),
        _ => line_of(text, key_span.clone()).or_else(|| line_of(text, item.span())),
    };
    if let Some(line) = line {
        out.insert(path.clone(), line);
    }
    match item {
        Item::Table(t) => walk_table(t, text, path, out),
        Item::ArrayOfTables(a) => {
            for (i, t) in a.iter().enumerate() {
                path.push(format!("#{}", i + 1));
                if let Some(line) = line_of(text, t.span()) {
                    out.insert(path.clone(), line);
                }
                walk_table(t, text, path, out);
                path.pop();
            }
        }
        Item::Value(toml_edit::Value::InlineTable(t)) => {
            for (name, _) in t.iter() {
                if let Some((key, item)) = t.get_key_value(name) {
                    path.push(name.to_string());
                    walk_item(key.span(), item, text, path, out);
                    path.pop();
                }
            }
        }
        Item::Value(toml_edit::Value::Array(a)) => {
            for (i, v) in a.iter().enumerate() {
                if let Some(line) = line_of(text, v.span()) {
                    path.push(format!("#{}", i + 1));
                    out.insert(path.clone(), line);
                    path.pop();
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::Sources;

    fn path(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn settings_are_found_on_their_lines() {
        let text = "[discord]\nguild_id = 1\n\n[severities.SEV3]\nupdate_every = \"1m\"\n\n[[postmortem.lint]]\nphrase = \"a\"\n[[postmortem.lint]]\nphrase = \"b\"\n[permissions]\n\"incident resolve\" = [\n  1,\n  2,\n]\n";
        let s = Sources::file("a.toml", text);
        assert_eq!(s.line(&path(&["discord", "guild_id"])), Some(2));
        assert_eq!(s.line(&path(&["severities", "SEV3"])), Some(4));
        assert_eq!(
            s.line(&path(&["severities", "SEV3", "update_every"])),
            Some(5)
        );
        assert_eq!(s.line(&path(&["severities", "SEV3", "colour"])), Some(4));
        assert_eq!(
            s.line(&path(&["postmortem", "lint", "#2", "phrase"])),
            Some(10)
        );
        assert_eq!(
            s.line(&path(&["permissions", "incident resolve", "#2"])),
            Some(14)
        );
        assert_eq!(s.line(&path(&["storage"])), None);
        assert_eq!(s.line_text(5), Some("update_every = \"1m\""));
    }

    #[test]
    fn problems_are_located_by_the_setting_they_open_with() {
        let text = "[severities.SEV1]\ncolour = \"red\"\n[[postmortem.lint]]\nphrase = \"a\"\n[permissions]\n\"incident explode\" = [2]\n";
        let mut s = Sources::file("a.toml", text);
        s.set_by_env(
            path(&["severities", "SEV2", "colour"]),
            "SITREP_SEVERITIES__SEV2__COLOUR",
        );
        let cases = [
            (
                "[severities.SEV1] colour = \"red\" is not a #rrggbb colour",
                "a.toml: line 2: [severities.SEV1] colour",
            ),
            (
                "[severities.SEV2] colour = \"red\" is not a #rrggbb colour",
                "environment variable SITREP_SEVERITIES__SEV2__COLOUR: [severities.SEV2]",
            ),
            (
                "[[postmortem.lint]] #1: bad",
                "a.toml: line 3: [[postmortem.lint]]",
            ),
            (
                "[permissions] \"incident explode\" is not a command",
                "a.toml: line 6: [permissions]",
            ),
            (
                "SITREP_DISCORD_TOKEN is not set",
                "SITREP_DISCORD_TOKEN is not set",
            ),
            ("[roles] must define `commander`", "[roles] must define"),
        ];
        for (problem, located) in cases {
            let got = s.locate(problem);
            assert!(got.starts_with(located), "{got}");
            assert!(got.ends_with(problem), "{got}");
        }
    }
}
