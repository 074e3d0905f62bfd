//! Metric answers as chat text: a short table that fits one Discord message, and one-line summaries.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::{Flag, MetricAnswer, RangeSpec, SeriesRow};

/// Discord's limit on a message's content, in characters.
pub const MESSAGE_LIMIT: usize = 2000;

/// Widest series label in a table before it is cut; wider ones push values off a phone screen.
const LABEL_WIDTH: usize = 40;
/// Longest raw PromQL quoted back in a header.
const PROMQL_SHOWN: usize = 300;

/// A value in at most four significant digits, large ones with an SI suffix: `4.5`, `0.2`,
/// `1235`, `12.35k`, `1.2e-5`.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    if v == 0.0 {
        return "0".to_string();
    }
    let a = v.abs();
    if a >= 1e4 {
        let (div, suffix) = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")]
            .into_iter()
            .find(|(d, _)| a >= *d)
            .unwrap_or((1.0, ""));
        if a / div < 1e4 {
            return format!("{}{suffix}", significant(v / div));
        }
    }
    if !(1e-3..1e16).contains(&a) {
        return format!("{v:.2e}");
    }
    significant(v)
}

fn significant(v: f64) -> String {
    let magnitude = v.abs().log10().floor() as i32;
    let decimals = (3 - magnitude).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// `3.0×`, `12×`, `0.33×`.
pub fn format_ratio(r: f64) -> String {
    if r >= 10.0 {
        format!("{r:.0}×")
    } else if r >= 1.0 {
        format!("{r:.1}×")
    } else if r >= 0.01 {
        format!("{r:.2}×")
    } else {
        "<0.01×".to_string()
    }
}

/// The largest whole unit: `1w`, `2d`, `6h`, `30m`, `45s`, `250ms`.
pub fn short_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if d.subsec_nanos() != 0 || secs == 0 {
        return format!("{}ms", d.as_millis());
    }
    for (unit, name) in [(604_800, "w"), (86_400, "d"), (3_600, "h"), (60, "m")] {
        if secs % unit == 0 {
            return format!("{}{name}", secs / unit);
        }
    }
    format!("{secs}s")
}

fn flag_mark(flag: Option<Flag>) -> &'static str {
    match flag {
        Some(Flag::Up) => "▲",
        Some(Flag::Down) => "▼",
        None => "",
    }
}

fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max.saturating_sub(1)) {
        Some((i, _)) if s.chars().count() > max => format!("{}…", &s[..i]),
        _ => s.to_string(),
    }
}

/// Labels as PromQL writes them: `http_requests_total{code="500"}`, `{service="checkout"}`.
/// An unlabelled series is called after its query.
pub(crate) fn series_label(labels: &BTreeMap<String, String>, answer: &MetricAnswer) -> String {
    let name = labels.get("__name__").cloned().unwrap_or_default();
    let pairs: Vec<String> = labels
        .iter()
        .filter(|(k, _)| *k != "__name__")
        .map(|(k, v)| format!("{k}=\"{v}\""))
        .collect();
    if pairs.is_empty() && name.is_empty() {
        return answer.name.clone().unwrap_or_else(|| "value".to_string());
    }
    if pairs.is_empty() {
        return name;
    }
    format!("{name}{{{}}}", pairs.join(", "))
}

pub(crate) fn chart_title(answer: &MetricAnswer, range: RangeSpec) -> String {
    format!(
        "{} · last {}",
        cut(&answer.query_label(), 80),
        short_duration(range.duration())
    )
}

/// Code spans cannot hold a backtick; a look-alike keeps the query readable.
fn code_safe(s: &str) -> String {
    s.replace('`', "ˋ").replace('\n', " ")
}

fn pad_right(s: &str, width: usize) -> String {
    let n = s.chars().count();
    format!("{s}{}", " ".repeat(width.saturating_sub(n)))
}

fn pad_left(s: &str, width: usize) -> String {
    let n = s.chars().count();
    format!("{}{s}", " ".repeat(width.saturating_sub(n)))
}

impl MetricAnswer {
    /// What was asked, in a few words: `error_rate service=checkout`, or the raw PromQL.
    pub fn query_label(&self) -> String {
        match &self.name {
            Some(name) => {
                let mut s = name.clone();
                for (k, v) in &self.params {
                    let _ = write!(s, " {k}={v}");
                }
                s
            }
            None => cut(&self.promql.replace('\n', " "), 100),
        }
    }

    /// One line for the timeline, beside [`Self::query_label`] (which it does not repeat).
    pub fn summary(&self) -> String {
        let unit = self
            .unit
            .as_deref()
            .map(|u| format!(" {u}"))
            .unwrap_or_default();
        let Some(top) = self.rows.first() else {
            return "no data".to_string();
        };
        let value = |v: Option<f64>| match v {
            Some(v) => format!("{}{unit}", format_value(v)),
            None => "no data".to_string(),
        };
        let mut parts = vec![format!("{} now", value(top.current))];
        for b in &top.baselines {
            let mut part = format!("{} {} ago", value(b.value), b.label);
            if let Some(r) = b.ratio {
                let _ = write!(part, " ({}{})", format_ratio(r), flag_mark(b.flag));
            } else if b.flag.is_some() {
                let _ = write!(part, " ({})", flag_mark(b.flag));
            }
            parts.push(part);
        }
        let count = self.series_count();
        if count == 1 {
            parts.join(", ")
        } else {
            let flagged = self.rows.iter().filter(|r| r.flagged).count() + self.rest_flagged;
            format!(
                "{count} series, {flagged} flagged; top {}: {}",
                series_label(&top.labels, self),
                parts.join(", ")
            )
        }
    }

    /// The answer as a Discord message of at most [`MESSAGE_LIMIT`] characters.
    pub fn to_markdown(&self) -> String {
        self.to_markdown_within(MESSAGE_LIMIT)
    }

    /// The answer in at most `limit` characters: series are dropped from the end of the table
    /// (and counted) until it fits.
    pub fn to_markdown_within(&self, limit: usize) -> String {
        let mut shown = self.rows.len();
        loop {
            let text = self.render(shown);
            if text.chars().count() <= limit || shown == 0 {
                return text;
            }
            shown -= 1;
        }
    }

    fn render(&self, shown: usize) -> String {
        let mut out = String::new();
        match &self.name {
            Some(name) => {
                let _ = write!(out, "**{name}**");
                for (k, v) in &self.params {
                    let _ = write!(out, " · {k}={v}");
                }
                if let Some(d) = &self.description {
                    let _ = write!(out, " — {}", cut(d, 200));
                }
            }
            None => {
                let _ = write!(
                    out,
                    "**Query** `{}`",
                    cut(&code_safe(&self.promql), PROMQL_SHOWN)
                );
            }
        }
        out.push('\n');
        let when = self.at.format("%Y-%m-%d %H:%M UTC");
        let earlier: Vec<&str> = self.baselines.iter().map(|b| b.label.as_str()).collect();
        let _ = write!(out, "At {when}");
        if !earlier.is_empty() {
            let _ = write!(out, ", against {} earlier", earlier.join(" and "));
        }
        if let Some(unit) = &self.unit {
            let _ = write!(out, " · unit: {unit}");
        }
        out.push('\n');

        if self.no_data {
            out.push_str("**No data** for this query now.");
            if self.rows.is_empty() {
                out.push_str(" Nothing at the earlier times either.");
                return out;
            }
            out.push_str(" It had data earlier:\n");
        }

        let rows = &self.rows[..shown.min(self.rows.len())];
        if !rows.is_empty() {
            out.push_str(&self.table(rows));
        }

        let hidden = self.rows.len() - rows.len() + self.rest;
        let hidden_flagged =
            self.rows[rows.len()..].iter().filter(|r| r.flagged).count() + self.rest_flagged;
        if hidden > 0 {
            let _ = write!(out, "…and {hidden} more series");
            if hidden_flagged > 0 {
                let _ = write!(out, " ({hidden_flagged} flagged)");
            }
            out.push_str(".\n");
        }
        if self.flagged {
            let _ = writeln!(
                out,
                "▲/▼: {} or more away from the baseline.",
                format_ratio(self.threshold)
            );
        }
        out.trim_end().to_string()
    }

    fn table(&self, rows: &[SeriesRow]) -> String {
        let labels: Vec<String> = rows
            .iter()
            .map(|r| cut(&series_label(&r.labels, self), LABEL_WIDTH))
            .collect();
        let now: Vec<String> = rows
            .iter()
            .map(|r| {
                r.current
                    .map(format_value)
                    .unwrap_or_else(|| "—".to_string())
            })
            .collect();
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                r.baselines
                    .iter()
                    .map(|b| {
                        let mut cell = b.value.map(format_value).unwrap_or_else(|| "—".to_string());
                        if let Some(ratio) = b.ratio {
                            let _ = write!(cell, " {}", format_ratio(ratio));
                        }
                        if b.flag.is_some() {
                            let _ = write!(cell, " {}", flag_mark(b.flag));
                        }
                        cell
                    })
                    .collect()
            })
            .collect();
        let headers: Vec<String> = self
            .baselines
            .iter()
            .map(|b| format!("{} AGO", b.label))
            .collect();
        let width =
            |items: &mut dyn Iterator<Item = usize>, min: usize| items.max().unwrap_or(0).max(min);
        let w_label = width(
            &mut labels.iter().map(|s| s.chars().count()),
            "SERIES".len(),
        );
        let w_now = width(&mut now.iter().map(|s| s.chars().count()), "NOW".len());
        let w_cells: Vec<usize> = headers
            .iter()
            .enumerate()
            .map(|(i, h)| {
                width(
                    &mut cells
                        .iter()
                        .map(|c| c.get(i).map_or(0, |s| s.chars().count())),
                    h.chars().count(),
                )
            })
            .collect();

        let mut t = String::from("```\n");
        let mut line = format!(
            "{}  {}",
            pad_right("SERIES", w_label),
            pad_left("NOW", w_now)
        );
        for (h, w) in headers.iter().zip(&w_cells) {
            let _ = write!(line, "  {}", pad_right(h, *w));
        }
        t.push_str(line.trim_end());
        t.push('\n');
        for ((label, now), cells) in labels.iter().zip(&now).zip(&cells) {
            let mut line = format!("{}  {}", pad_right(label, w_label), pad_left(now, w_now));
            for (cell, w) in cells.iter().zip(&w_cells) {
                let _ = write!(line, "  {}", pad_right(cell, *w));
            }
            t.push_str(line.trim_end());
            t.push('\n');
        }
        t.push_str("```\n");
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrations::prometheus::{Sample, Series};
    use crate::metrics::{build_answer, CompareOptions, MetricRequest};
    use chrono::DateTime;

    fn series(labels: &[(&str, &str)], value: f64) -> Series {
        Series {
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            samples: vec![Sample {
                at: DateTime::from_timestamp(0, 0).unwrap(),
                value,
            }],
        }
    }

    fn named() -> MetricRequest {
        let params = [("service".to_string(), "checkout".to_string())].into();
        MetricRequest::named(
            "error_rate",
            "sum(rate(x{service=\"{{service}}\"}[5m]))",
            &params,
            DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        )
        .unwrap()
        .with_unit(Some("req/s"))
        .with_description(Some("5xx responses per second"))
    }

    #[test]
    fn values_read_well() {
        assert_eq!(format_value(4.5), "4.5");
        assert_eq!(format_value(0.2), "0.2");
        assert_eq!(format_value(3.0), "3");
        assert_eq!(format_value(1234.56), "1235");
        assert_eq!(format_value(12_345.0), "12.35k");
        assert_eq!(format_value(-2_500_000.0), "-2.5M");
        assert_eq!(format_value(0.000_012_3), "1.23e-5");
        assert_eq!(format_value(1.0 / 3.0), "0.3333");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_ratio(3.0), "3.0×");
        assert_eq!(format_ratio(1.0 / 3.0), "0.33×");
        assert_eq!(format_ratio(12.4), "12×");
        assert_eq!(short_duration(Duration::from_secs(86_400)), "1d");
        assert_eq!(short_duration(Duration::from_secs(604_800)), "1w");
        assert_eq!(short_duration(Duration::from_secs(5_400)), "90m");
        assert_eq!(short_duration(Duration::from_secs(45)), "45s");
    }

    #[test]
    fn single_series_answer_shows_values_ratios_and_flags() {
        let a = build_answer(
            &named(),
            &CompareOptions::default(),
            &[series(&[], 4.5)],
            &[vec![series(&[], 1.5)], vec![series(&[], 4.5)]],
            None,
        );
        let md = a.to_markdown();
        assert!(
            md.starts_with("**error_rate** · service=checkout — 5xx responses per second\n"),
            "{md}"
        );
        assert!(
            md.contains("At 2023-11-14 22:13 UTC, against 1d and 1w earlier · unit: req/s"),
            "{md}"
        );
        assert!(md.contains("error_rate  4.5  1.5 3.0× ▲  4.5 1.0×"), "{md}");
        assert!(
            md.contains("▲/▼: 3.0× or more away from the baseline."),
            "{md}"
        );
        assert_eq!(
            a.summary(),
            "4.5 req/s now, 1.5 req/s 1d ago (3.0×▲), 4.5 req/s 1w ago (1.0×)"
        );
    }

    #[test]
    fn no_data_says_so() {
        let a = build_answer(
            &named(),
            &CompareOptions::default(),
            &[],
            &[vec![], vec![]],
            None,
        );
        let md = a.to_markdown();
        assert!(
            md.contains("**No data** for this query now. Nothing at the earlier times either."),
            "{md}"
        );
        assert_eq!(a.summary(), "no data");
    }

    #[test]
    fn long_answers_fit_one_message() {
        let now: Vec<Series> = (0..200)
            .map(|i| {
                series(
                    &[("pod", &format!("checkout-{i:04}-{}", "x".repeat(50)))],
                    i as f64,
                )
            })
            .collect();
        let opts = CompareOptions {
            top_n: 200,
            ..CompareOptions::default()
        };
        let raw = MetricRequest::raw(&format!("up + {}", "0".repeat(5000)), named().at).unwrap();
        let a = build_answer(&raw, &opts, &now, &[now.clone(), vec![]], None);
        let md = a.to_markdown();
        assert!(
            md.chars().count() <= MESSAGE_LIMIT,
            "{} chars",
            md.chars().count()
        );
        assert!(md.contains("more series."), "{md}");
        assert!(md.contains("**Query** `up + 000"));
        assert!(md.contains("{pod=\"checkout-0199-xxxxxxxx"));
    }

    #[test]
    fn labels_read_as_promql() {
        let a = build_answer(&named(), &CompareOptions::default(), &[], &[], None);
        let labels: BTreeMap<String, String> = [
            ("__name__".to_string(), "up".to_string()),
            ("job".to_string(), "api".to_string()),
        ]
        .into();
        assert_eq!(series_label(&labels, &a), "up{job=\"api\"}");
        assert_eq!(series_label(&BTreeMap::new(), &a), "error_rate");
    }
}
