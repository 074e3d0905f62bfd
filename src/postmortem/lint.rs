//! The blameless lint: phrases that assign blame, each with a neutral rewording to suggest.
//!
//! Phrases are matched word by word, ignoring case and punctuation, so that "Bob's fault!" and
//! "bob's   fault" read the same. A phrase can name a person by `{person}`: a mention, an
//! `@name`, or the name of someone who took part; "the deploy broke" is a fact, "@bob broke" is
//! blame.

use crate::config::PostmortemConfig;
use serde::Serialize;
use std::collections::HashMap;

const FAULT: &str = "Describe the conditions that allowed the failure (\"the deploy went out without a canary\"), not whose fault it was.";
const HUMAN_ERROR: &str = "Name the gap that let a mistake through: a missing check, an unclear runbook, a risky default.";
const CARELESS: &str =
    "Describe what made the step easy to get wrong, and what would make it hard.";
const HINDSIGHT: &str = "Describe what was known, missing or hard to find at the time; hindsight makes it look obvious.";
const BLAME: &str =
    "Keep to what happened and why; a blameless review names systems and decisions, not culprits.";
const SUBJECT: &str =
    "Make the system the subject (\"the v2 deploy removed the index\") rather than a person.";
const FORGOT: &str = "Describe what did not prompt the step (\"the renewal had no reminder\") rather than who forgot.";

/// The phrases every draft is checked for unless `[postmortem] builtin_lint = false`.
pub const BUILTIN: &[(&str, &str)] = &[
    ("{any}'s fault", FAULT),
    ("{any}'s mistake", FAULT),
    ("at fault", FAULT),
    ("human error", HUMAN_ERROR),
    ("operator error", HUMAN_ERROR),
    ("careless*", CARELESS),
    ("sloppy", CARELESS),
    ("negligen*", CARELESS),
    ("should have known", HINDSIGHT),
    ("should've known", HINDSIGHT),
    ("should have noticed", HINDSIGHT),
    ("should have caught", HINDSIGHT),
    ("blame", BLAME),
    ("blamed", BLAME),
    ("blames", BLAME),
    ("blaming", BLAME),
    ("{person} broke", SUBJECT),
    ("{person} caused", SUBJECT),
    ("{person} messed up", SUBJECT),
    ("{person} screwed up", SUBJECT),
    ("{person} failed to", SUBJECT),
    ("{person} ignored", SUBJECT),
    ("{person} missed", SUBJECT),
    ("{person} forgot", FORGOT),
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pat {
    Word(String),
    /// `careless*`: the word starts with this.
    Prefix(String),
    Person,
    Any,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum TokKind {
    Word(String),
    /// `<@123>`, `<@!123>` or `@name`.
    Mention,
}

#[derive(Debug, Clone)]
struct Tok {
    start: usize,
    end: usize,
    kind: TokKind,
}

const POSSESSIVE: &str = "'s";

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn is_apostrophe(c: char) -> bool {
    c == '\'' || c == '’'
}

/// Splits text into lower-cased words and mentions with their byte spans. A trailing `'s` is a
/// word of its own so that `{any}'s fault` can match "Bob's fault".
fn tokens(text: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '<' && text[i..].starts_with("<@") && !text[i..].starts_with("<@&") {
            let rest = &text[i + 2..];
            let digits = rest.trim_start_matches('!');
            let skipped = rest.len() - digits.len();
            let n = digits.bytes().take_while(u8::is_ascii_digit).count();
            if n > 0 && digits.as_bytes().get(n) == Some(&b'>') {
                let end = i + 2 + skipped + n + 1;
                out.push(Tok {
                    start: i,
                    end,
                    kind: TokKind::Mention,
                });
                while chars.peek().is_some_and(|(j, _)| *j < end) {
                    chars.next();
                }
            }
            continue;
        }
        if c == '@' && chars.peek().is_some_and(|(_, n)| is_word_char(*n)) {
            let mut end = i + 1;
            while let Some(&(j, n)) = chars.peek() {
                if is_word_char(n) || n == '.' || n == '-' {
                    end = j + n.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            out.push(Tok {
                start: i,
                end,
                kind: TokKind::Mention,
            });
            continue;
        }
        if !is_word_char(c) {
            continue;
        }
        let mut end = i + c.len_utf8();
        while let Some(&(j, n)) = chars.peek() {
            // An apostrophe belongs to the word only between letters: "didn't", "Bob's".
            let inner_apostrophe = is_apostrophe(n)
                && text[j + n.len_utf8()..]
                    .chars()
                    .next()
                    .is_some_and(char::is_alphabetic);
            if is_word_char(n) || n == '-' || inner_apostrophe {
                end = j + n.len_utf8();
                chars.next();
            } else {
                break;
            }
        }
        let lower = text[i..end].to_lowercase();
        let word = if lower.contains('’') {
            lower.replace('’', "'")
        } else {
            lower
        };
        match word.strip_suffix(POSSESSIVE).filter(|b| !b.is_empty()) {
            Some(base) => {
                // The original ends in an apostrophe (' or ’) and an s.
                let apostrophe = text[i..end - 1]
                    .chars()
                    .next_back()
                    .map_or(1, char::len_utf8);
                let cut = end - 1 - apostrophe;
                out.push(Tok {
                    start: i,
                    end: cut,
                    kind: TokKind::Word(base.to_string()),
                });
                out.push(Tok {
                    start: cut,
                    end,
                    kind: TokKind::Word(POSSESSIVE.into()),
                });
            }
            None => out.push(Tok {
                start: i,
                end,
                kind: TokKind::Word(word),
            }),
        }
    }
    out
}

fn parse(phrase: &str) -> Result<Vec<Pat>, String> {
    let mut out = Vec::new();
    for piece in phrase.split_whitespace() {
        if let Some(inner) = piece.strip_prefix('{') {
            let (name, rest) = inner
                .split_once('}')
                .ok_or_else(|| format!("`{piece}` opens {{ without closing it"))?;
            out.push(match name {
                "person" => Pat::Person,
                "any" => Pat::Any,
                other => {
                    return Err(format!(
                        "`{{{other}}}` is not a placeholder; use {{person}} or {{any}}"
                    ))
                }
            });
            match rest.replace('’', "'").as_str() {
                "" => {}
                POSSESSIVE => out.push(Pat::Word(POSSESSIVE.into())),
                other => return Err(format!("`{other}` after a placeholder; only 's may follow")),
            }
        } else if let Some(stem) = piece.strip_suffix('*') {
            let stem = stem.to_lowercase();
            if stem.is_empty() || !stem.chars().all(is_word_char) {
                return Err(format!("`{piece}`: * must end a word, as in careless*"));
            }
            out.push(Pat::Prefix(stem));
        } else {
            out.extend(tokens(piece).into_iter().map(|t| match t.kind {
                TokKind::Word(w) => Pat::Word(w),
                TokKind::Mention => Pat::Person,
            }));
        }
    }
    if out.is_empty() {
        return Err("the phrase is empty".into());
    }
    if out.iter().all(|p| matches!(p, Pat::Any | Pat::Person)) {
        return Err(format!(
            "\"{phrase}\" has no words of its own, so it would match almost anything"
        ));
    }
    Ok(out)
}

/// Whether a configured phrase can be used; the error says what is wrong with it.
pub fn check_phrase(phrase: &str) -> Result<(), String> {
    parse(phrase).map(|_| ())
}

struct Rule {
    phrase: String,
    suggest: String,
    pattern: Vec<Pat>,
}

/// One phrase found, where, and what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The words as written.
    pub found: String,
    /// The configured phrase that matched.
    pub rule: String,
    pub suggestion: String,
    /// Where in the draft: "Timeline, 2026-11-21 10:42:05 UTC".
    pub place: String,
    /// The words with some context, on one line.
    pub excerpt: String,
}

/// The configured phrases and the names of the people who took part.
pub struct Linter {
    rules: Vec<Rule>,
    /// Rules by the word they start with, so that most positions try none or one of them.
    by_first_word: HashMap<String, Vec<usize>>,
    /// Rules starting with a placeholder or a `*` word, tried everywhere, in rule order.
    open_start: Vec<usize>,
    /// Participants' names, lower-cased and split into words, by first word, longest first.
    people: HashMap<String, Vec<Vec<String>>>,
}

impl Linter {
    /// Phrases that do not parse are left out here; `check-config` reports them.
    pub fn new(config: &PostmortemConfig) -> Linter {
        let builtin = BUILTIN
            .iter()
            .filter(|_| config.builtin_lint)
            .map(|(p, s)| (p.to_string(), s.to_string()));
        let own = config
            .lint
            .iter()
            .map(|r| (r.phrase.clone(), r.suggest.clone()));
        let rules: Vec<Rule> = builtin
            .chain(own)
            .filter_map(|(phrase, suggest)| {
                Some(Rule {
                    pattern: parse(&phrase).ok()?,
                    phrase,
                    suggest,
                })
            })
            .collect();
        let mut by_first_word: HashMap<String, Vec<usize>> = HashMap::new();
        let mut open_start = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            match &r.pattern[0] {
                Pat::Word(w) => by_first_word.entry(w.clone()).or_default().push(i),
                _ => open_start.push(i),
            }
        }
        Linter {
            rules,
            by_first_word,
            open_start,
            people: HashMap::new(),
        }
    }

    /// Makes `{person}` match these names too, not only mentions.
    pub fn with_people<'a>(mut self, names: impl IntoIterator<Item = &'a str>) -> Linter {
        for name in names {
            let words: Vec<String> = tokens(name)
                .into_iter()
                .filter_map(|t| match t.kind {
                    TokKind::Word(w) => Some(w),
                    TokKind::Mention => None,
                })
                .collect();
            let Some(first) = words.first().cloned() else {
                continue;
            };
            let same_start = self.people.entry(first).or_default();
            if !same_start.contains(&words) {
                same_start.push(words);
                // Longest first, so that "Ann Lee" wins over "Ann".
                same_start.sort_by_key(|w| std::cmp::Reverse(w.len()));
            }
        }
        self
    }

    /// How many tokens from `i` name a person: a mention, or a participant's name.
    fn person_at(&self, toks: &[Tok], i: usize) -> Option<usize> {
        match &toks.get(i)?.kind {
            TokKind::Mention => Some(1),
            TokKind::Word(first) => self.people.get(first)?.iter().find_map(|name| {
                let fits = name.iter().enumerate().skip(1).all(|(k, w)| {
                    matches!(toks.get(i + k), Some(Tok { kind: TokKind::Word(t), .. }) if t == w)
                });
                fits.then_some(name.len())
            }),
        }
    }

    /// How many tokens `pattern` covers from `i`, if it matches there. `persons[j]` is
    /// [`Linter::person_at`] of `j`, worked out once per text.
    fn match_at(
        &self,
        pattern: &[Pat],
        toks: &[Tok],
        persons: &[Option<usize>],
        i: usize,
    ) -> Option<usize> {
        let mut j = i;
        for p in pattern {
            let tok = toks.get(j)?;
            j += match (p, &tok.kind) {
                (Pat::Word(w), TokKind::Word(t)) if t == w => 1,
                (Pat::Prefix(w), TokKind::Word(t)) if t.starts_with(w.as_str()) => 1,
                (Pat::Any, TokKind::Word(t)) if t != POSSESSIVE => 1,
                (Pat::Any, TokKind::Mention) => 1,
                (Pat::Person, _) => persons[j]?,
                _ => return None,
            };
        }
        Some(j - i)
    }

    /// Every phrase in `text`, in order; `place` says where the text is in the draft.
    pub fn lint(&self, place: &str, text: &str) -> Vec<Finding> {
        if self.rules.is_empty() || text.trim().is_empty() {
            return Vec::new();
        }
        let toks = tokens(text);
        let persons: Vec<Option<usize>> =
            (0..toks.len()).map(|i| self.person_at(&toks, i)).collect();
        let mut out = Vec::new();
        let mut i = 0;
        while i < toks.len() {
            let starting = match &toks[i].kind {
                TokKind::Word(w) => self.by_first_word.get(w).map_or(&[][..], Vec::as_slice),
                TokKind::Mention => &[][..],
            };
            // The earliest rule wins where several match, as if all were tried in order.
            let first = |ids: &[usize]| {
                ids.iter().find_map(|&r| {
                    self.match_at(&self.rules[r].pattern, &toks, &persons, i)
                        .map(|n| (r, n))
                })
            };
            let hit = match (first(starting), first(&self.open_start)) {
                (Some(a), Some(b)) => Some(if a.0 < b.0 { a } else { b }),
                (a, b) => a.or(b),
            };
            match hit {
                Some((r, n)) => {
                    let rule = &self.rules[r];
                    let (start, end) = (toks[i].start, toks[i + n - 1].end);
                    out.push(Finding {
                        found: text[start..end].to_string(),
                        rule: rule.phrase.clone(),
                        suggestion: rule.suggest.clone(),
                        place: place.to_string(),
                        excerpt: excerpt(text, start, end),
                    });
                    i += n;
                }
                None => i += 1,
            }
        }
        out
    }
}

const CONTEXT: usize = 40;

/// The found words with up to [`CONTEXT`] characters either side, on one line.
fn excerpt(text: &str, start: usize, end: usize) -> String {
    let head: Vec<char> = text[..start].chars().rev().take(CONTEXT + 1).collect();
    let mut before: String = head.iter().take(CONTEXT).rev().collect();
    if head.len() > CONTEXT {
        before.insert(0, '…');
    }
    let mut tail = text[end..].chars();
    let mut after: String = tail.by_ref().take(CONTEXT).collect();
    if tail.next().is_some() {
        after.push('…');
    }
    let line = format!("{before}{}{after}", &text[start..end]);
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LintRuleConfig;

    fn linter() -> Linter {
        Linter::new(&PostmortemConfig::default()).with_people(["bob", "Ann Lee"])
    }

    fn found(text: &str) -> Vec<String> {
        linter()
            .lint("here", text)
            .into_iter()
            .map(|f| f.found)
            .collect()
    }

    #[test]
    fn postmortem_lint_finds_the_phrases_that_assign_blame() {
        assert_eq!(found("Honestly it was Bob’s fault."), ["Bob’s fault"]);
        assert_eq!(found("the cache's fault, really"), ["cache's fault"]);
        assert_eq!(
            found("Human   error during the\nfailover"),
            ["Human   error"]
        );
        assert_eq!(found("a CARELESSLY typed flag"), ["CARELESSLY"]);
        assert_eq!(
            found("they should have known better; who do we blame?"),
            ["should have known", "blame"]
        );
        assert_eq!(found("<@123> forgot to renew the cert"), ["<@123> forgot"]);
        assert_eq!(found("<@!123> broke checkout"), ["<@!123> broke"]);
        assert_eq!(
            found("then @bob.smith caused the outage"),
            ["@bob.smith caused"]
        );
        assert_eq!(found("bob missed the page"), ["bob missed"]);
        assert_eq!(found("Ann Lee ignored the alert"), ["Ann Lee ignored"]);
    }

    #[test]
    fn postmortem_lint_leaves_neutral_wording_alone() {
        for ok in [
            "the deploy broke checkout",
            "a blameless review",
            "the fault was in the load balancer",
            "the error budget for human-facing APIs",
            "carol forgot nothing; the runbook had no renewal step",
            "it's the cache",
            "",
        ] {
            assert!(found(ok).is_empty(), "{ok:?}: {:?}", found(ok));
        }
    }

    #[test]
    fn postmortem_lint_findings_carry_a_suggestion_and_context() {
        let text = format!("{} it was human error {}", "x".repeat(60), "y".repeat(60));
        let f = &linter().lint("Timeline, 10:42", &text)[0];
        assert_eq!(f.rule, "human error");
        assert_eq!(f.suggestion, HUMAN_ERROR);
        assert_eq!(f.place, "Timeline, 10:42");
        assert!(
            f.excerpt.starts_with('…') && f.excerpt.ends_with('…'),
            "{}",
            f.excerpt
        );
        assert!(f.excerpt.contains("it was human error"), "{}", f.excerpt);
    }

    #[test]
    fn postmortem_lint_phrases_are_configurable() {
        let config = PostmortemConfig {
            builtin_lint: false,
            lint: vec![
                LintRuleConfig {
                    phrase: "dropped the ball".into(),
                    suggest: "say what made the task hard to finish".into(),
                },
                LintRuleConfig {
                    phrase: "{nobody} x".into(),
                    suggest: "skipped: does not parse".into(),
                },
            ],
            ..PostmortemConfig::default()
        };
        let l = Linter::new(&config);
        assert!(l.lint("p", "human error").is_empty(), "built-ins are off");
        let f = l.lint("p", "Ops DROPPED the ball.");
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].found, "DROPPED the ball");
        assert_eq!(f[0].suggestion, "say what made the task hard to finish");
    }

    #[test]
    fn postmortem_lint_bad_phrases_are_explained() {
        for (phrase, needle) in [
            ("", "empty"),
            ("{who} broke", "not a placeholder"),
            ("{person}", "no words of its own"),
            ("{person}x fault", "only 's"),
            ("*", "must end a word"),
            ("{any broke", "without closing"),
        ] {
            let err = check_phrase(phrase).unwrap_err();
            assert!(err.contains(needle), "{phrase:?}: {err}");
        }
        for (phrase, _) in BUILTIN {
            check_phrase(phrase).unwrap();
        }
    }
}
