//! Metric answers for responders: a query's values now against the same query at earlier times, and charts.

mod chart;
mod template;
mod text;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::domain::{EventKind, Incident, IncidentId};
use crate::integrations::prometheus::{PromError, PrometheusClient, Sample, Series};
use crate::store::{written_seq, Store, StoreError};

pub use chart::{render_chart, ChartInput, ChartSeries, CHART_SIZE};
pub use template::{check_param_value, placeholders, render_template};
pub use text::{format_ratio, format_value, short_duration, MESSAGE_LIMIT};

/// Prometheus refuses range queries of more than this many steps per series.
pub const MAX_POINTS: u64 = 11_000;
/// A ratio this far from 1 (either way) is flagged, unless configured otherwise.
pub const DEFAULT_THRESHOLD: f64 = 3.0;
/// Series shown before the rest are only counted.
pub const DEFAULT_TOP_N: usize = 5;
/// Points a chart aims for when no step is given: enough for a smooth line at chart width.
const TARGET_POINTS: u64 = 250;
/// At most this many series are drawn, so that a chart stays readable.
const CHART_SERIES: usize = 5;

const DAY: Duration = Duration::from_secs(86_400);

/// The same query a day and a week earlier.
pub fn default_offsets() -> Vec<Duration> {
    vec![DAY, 7 * DAY]
}

/// How answers compare and trim; built from `[metrics]`-style settings by the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct CompareOptions {
    pub offsets: Vec<Duration>,
    pub threshold: f64,
    pub top_n: usize,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            offsets: default_offsets(),
            threshold: DEFAULT_THRESHOLD,
            top_n: DEFAULT_TOP_N,
        }
    }
}

/// Why a metric answer could not be given, worded for the responder who asked.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error(transparent)]
    Prometheus(#[from] PromError),
    #[error("There is no query named `{name}`. {}", known_text(known))]
    UnknownQuery { name: String, known: Vec<String> },
    #[error("The query `{query}` needs a value for `{param}`: add `{param}:<value>`.")]
    MissingParam { query: String, param: String },
    #[error("`{value}` is not a valid {param}: use only letters, digits and _ . : -")]
    InvalidParam { param: String, value: String },
    #[error("`{input}` is not a usable duration ({reason}). Try 30m, 1h or 6h.")]
    InvalidDuration { input: String, reason: String },
    #[error("The query is empty.")]
    EmptyQuery,
    #[error(
        "A {range} range at a {step} step is {points} points per series, and Prometheus allows at most 11,000. Use a shorter range or a larger step."
    )]
    RangeTooLong {
        range: String,
        step: String,
        points: u64,
    },
    #[error(
        "No data for `{query}` with {}, now or {}. Check the {} value.",
        params_text(params),
        earlier_text(baselines),
        param_names(params)
    )]
    NoData {
        query: String,
        params: BTreeMap<String, String>,
        baselines: Vec<String>,
    },
    #[error("The chart could not be drawn: {0}")]
    Chart(String),
    #[error("sitrep failed while answering: {0}")]
    Internal(String),
}

impl MetricsError {
    /// True when the asker can fix it by changing the command (as opposed to Prometheus being
    /// down or misconfigured).
    pub fn is_user_error(&self) -> bool {
        match self {
            MetricsError::Prometheus(e) => e.is_query_error(),
            MetricsError::Chart(_) | MetricsError::Internal(_) => false,
            _ => true,
        }
    }
}

fn known_text(known: &[String]) -> String {
    if known.is_empty() {
        "No named queries are configured; use `query:` with PromQL instead.".to_string()
    } else {
        format!("Configured: {}.", known.join(", "))
    }
}

fn params_text(params: &BTreeMap<String, String>) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn param_names(params: &BTreeMap<String, String>) -> String {
    params.keys().cloned().collect::<Vec<_>>().join(" and ")
}

fn earlier_text(baselines: &[String]) -> String {
    if baselines.is_empty() {
        "earlier".to_string()
    } else {
        format!("{} ago", baselines.join(" or "))
    }
}

/// Finds a named query among configured ones, whatever map type holds them.
pub fn lookup<'a, Q: 'a>(
    queries: impl IntoIterator<Item = (&'a String, &'a Q)>,
    name: &str,
) -> Result<&'a Q, MetricsError> {
    let mut known = Vec::new();
    for (key, query) in queries {
        if key == name {
            return Ok(query);
        }
        known.push(key.clone());
    }
    known.sort();
    Err(MetricsError::UnknownQuery {
        name: name.to_string(),
        known,
    })
}

/// Parses a duration argument such as `1h`, `90m` or `2d`.
pub fn parse_duration(input: &str) -> Result<Duration, MetricsError> {
    let d = humantime::parse_duration(input.trim()).map_err(|e| MetricsError::InvalidDuration {
        input: input.to_string(),
        reason: e.to_string(),
    })?;
    if d.is_zero() {
        return Err(MetricsError::InvalidDuration {
            input: input.to_string(),
            reason: "it must be longer than zero".to_string(),
        });
    }
    Ok(d)
}

/// One metric question: what to evaluate, when, and optionally over what range.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRequest {
    /// The named query's name; `None` for raw PromQL.
    pub name: Option<String>,
    /// The PromQL to evaluate, placeholders already filled.
    pub promql: String,
    pub params: BTreeMap<String, String>,
    pub unit: Option<String>,
    pub description: Option<String>,
    /// The "now" of the answer.
    pub at: DateTime<Utc>,
    /// With a range, the answer carries a chart of the range ending at `at`.
    pub range: Option<Duration>,
    /// Chart resolution; chosen from the range when absent.
    pub step: Option<Duration>,
}

impl MetricRequest {
    /// Raw PromQL from `/metrics query:`.
    pub fn raw(promql: &str, at: DateTime<Utc>) -> Result<MetricRequest, MetricsError> {
        let promql = promql.trim();
        if promql.is_empty() {
            return Err(MetricsError::EmptyQuery);
        }
        Ok(MetricRequest {
            name: None,
            promql: promql.to_string(),
            params: BTreeMap::new(),
            unit: None,
            description: None,
            at,
            range: None,
            step: None,
        })
    }

    /// A configured query from `/metrics name:`, its placeholders filled from `params`. Only
    /// the parameters the template uses are kept, so the answer shows what shaped it.
    pub fn named(
        name: &str,
        template: &str,
        params: &BTreeMap<String, String>,
        at: DateTime<Utc>,
    ) -> Result<MetricRequest, MetricsError> {
        let promql = render_template(name, template, params)?;
        if promql.trim().is_empty() {
            return Err(MetricsError::EmptyQuery);
        }
        let used = placeholders(template);
        Ok(MetricRequest {
            name: Some(name.to_string()),
            promql,
            params: params
                .iter()
                .filter(|(k, _)| used.contains(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            unit: None,
            description: None,
            at,
            range: None,
            step: None,
        })
    }

    pub fn with_unit(mut self, unit: Option<&str>) -> Self {
        self.unit = unit.filter(|u| !u.trim().is_empty()).map(str::to_string);
        self
    }

    pub fn with_description(mut self, description: Option<&str>) -> Self {
        self.description = description
            .filter(|d| !d.trim().is_empty())
            .map(str::to_string);
        self
    }

    pub fn with_range(mut self, range: Duration, step: Option<Duration>) -> Self {
        self.range = Some(range);
        self.step = step;
        self
    }
}

/// Which way a series moved against a baseline, when it moved past the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flag {
    /// At least `threshold` times the baseline, or non-zero where the baseline was zero.
    Up,
    /// At most `1 / threshold` of the baseline, or gone where the baseline had data.
    Down,
}

/// One baseline: the same query `offset` earlier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineSpec {
    /// Short form for display: `1d`, `1w`.
    pub label: String,
    pub offset_secs: u64,
}

/// A series' value at one baseline and how now compares with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineValue {
    pub label: String,
    /// `None`: the series did not exist then.
    pub value: Option<f64>,
    /// now / then, when both are finite, then > 0 and now ≥ 0.
    pub ratio: Option<f64>,
    pub flag: Option<Flag>,
}

/// One series of an answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesRow {
    pub labels: BTreeMap<String, String>,
    /// `None`: the series has no value now but had one at a baseline.
    pub current: Option<f64>,
    pub baselines: Vec<BaselineValue>,
    pub flagged: bool,
}

/// The time window a chart covers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RangeSpec {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub step_secs: u64,
}

impl RangeSpec {
    pub fn step(&self) -> Duration {
        Duration::from_secs(self.step_secs)
    }

    pub fn duration(&self) -> Duration {
        (self.end - self.start).to_std().unwrap_or_default()
    }
}

/// An answer to a metric question: recorded in the timeline as a snapshot and rendered for chat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricAnswer {
    pub name: Option<String>,
    pub promql: String,
    pub params: BTreeMap<String, String>,
    pub unit: Option<String>,
    pub description: Option<String>,
    pub at: DateTime<Utc>,
    pub threshold: f64,
    pub baselines: Vec<BaselineSpec>,
    /// The top series by current value, largest first.
    pub rows: Vec<SeriesRow>,
    /// Series left out of `rows`.
    pub rest: usize,
    /// How many of the left-out series are flagged, so that trimming hides no alarm silently.
    pub rest_flagged: usize,
    /// Nothing now (baseline rows may still be there, with no current value).
    pub no_data: bool,
    /// Some series, shown or not, passed the threshold against some baseline.
    pub flagged: bool,
    pub range: Option<RangeSpec>,
}

impl MetricAnswer {
    pub fn series_count(&self) -> usize {
        self.rows.len() + self.rest
    }
}

/// An answer and, for range requests with data, its chart as PNG bytes.
#[derive(Debug, Clone)]
pub struct MetricReply {
    pub answer: MetricAnswer,
    pub chart_png: Option<Vec<u8>>,
}

/// The name a snapshot's chart goes by in the timeline (and as `/metrics`' attachment).
pub const CHART_FILE: &str = "chart.png";

impl MetricReply {
    /// The timeline's record of this answer; its chart is kept beside it by [`keep_charts`].
    pub fn snapshot(&self) -> EventKind {
        EventKind::MetricSnapshot {
            query: self.answer.query_label(),
            summary: self.answer.summary(),
            chart: self.chart_png.as_ref().map(|_| CHART_FILE.to_string()),
        }
    }
}

/// Keeps each snapshot's chart for the incident browser, as chat's copy of an image does not
/// last. `charts` pairs the index of a snapshot among the `written` events an append of
/// `incident` just returned (`after` is the incident as it left it) with the image.
pub fn keep_charts(
    store: &Store,
    incident: IncidentId,
    after: &Incident,
    written: usize,
    charts: &[(usize, Vec<u8>)],
) -> Result<(), StoreError> {
    for (index, png) in charts {
        store.put_chart(incident, written_seq(after, written, *index), png)?;
    }
    Ok(())
}

/// The comparison settings from `[prometheus]`.
pub fn compare_options(config: &Config) -> CompareOptions {
    let p = &config.prometheus;
    CompareOptions {
        offsets: p.baselines.iter().map(|d| d.0).collect(),
        threshold: p.threshold,
        top_n: p.top_n,
    }
}

/// Builds the request for a configured query with its parameters, as of `now`.
pub fn named_request(
    config: &Config,
    name: &str,
    params: &BTreeMap<String, String>,
    now: DateTime<Utc>,
) -> Result<MetricRequest, MetricsError> {
    let q = lookup(&config.queries, name)?;
    Ok(MetricRequest::named(name, &q.promql, params, now)?
        .with_unit(q.unit.as_deref())
        .with_description(q.description.as_deref()))
}

/// A nice step for `range`: about 250 points, rounded up to a step a person would pick.
pub fn choose_step(range: Duration) -> Duration {
    const NICE: [u64; 15] = [
        15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 604800,
    ];
    let raw = range.as_secs().div_ceil(TARGET_POINTS).max(1);
    let secs = NICE
        .iter()
        .copied()
        .find(|&s| s >= raw)
        .unwrap_or_else(|| raw.div_ceil(86_400) * 86_400);
    Duration::from_secs(secs)
}

/// The window and step of a chart ending at `end`, checked against Prometheus' point limit
/// before anything is sent.
pub fn plan_range(
    end: DateTime<Utc>,
    range: Duration,
    step: Option<Duration>,
) -> Result<RangeSpec, MetricsError> {
    let invalid = |what: &str, d: Duration, reason: &str| MetricsError::InvalidDuration {
        input: format!("{what} {}", short_duration(d)),
        reason: reason.to_string(),
    };
    if range.as_secs() == 0 {
        return Err(invalid("range", range, "it must be at least one second"));
    }
    let step = step.unwrap_or_else(|| choose_step(range));
    if step.as_secs() == 0 {
        return Err(invalid("step", step, "it must be at least one second"));
    }
    // Prometheus' own check: whole steps in the range, not counting the first point.
    let steps = range.as_secs() / step.as_secs();
    if steps > MAX_POINTS {
        return Err(MetricsError::RangeTooLong {
            range: short_duration(range),
            step: short_duration(step),
            points: steps + 1,
        });
    }
    let start = end - delta(range).ok_or_else(|| invalid("range", range, "it is too long"))?;
    Ok(RangeSpec {
        start,
        end,
        step_secs: step.as_secs(),
    })
}

fn delta(d: Duration) -> Option<TimeDelta> {
    TimeDelta::from_std(d).ok()
}

fn value_of(series: &Series) -> Option<f64> {
    series.value()
}

/// Orders values largest first, with NaN and missing values last.
fn by_value_desc(a: Option<f64>, b: Option<f64>) -> std::cmp::Ordering {
    let key = |v: Option<f64>| v.filter(|v| !v.is_nan());
    match (key(a), key(b)) {
        (Some(a), Some(b)) => b.total_cmp(&a),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    }
}

fn compare_one(
    current: Option<f64>,
    then: Option<f64>,
    threshold: f64,
) -> (Option<f64>, Option<Flag>) {
    let ratio = match (current, then) {
        (Some(c), Some(t)) if c.is_finite() && t.is_finite() && t > 0.0 && c >= 0.0 => Some(c / t),
        _ => None,
    };
    // A threshold of 1 or less would flag everything; treat it as "never".
    if threshold.is_nan() || threshold <= 1.0 {
        return (ratio, None);
    }
    let flag = match (ratio, current, then) {
        (Some(r), _, _) if r >= threshold => Some(Flag::Up),
        (Some(r), _, _) if r <= 1.0 / threshold => Some(Flag::Down),
        (Some(_), _, _) => None,
        (None, Some(c), Some(t)) if t == 0.0 && c > 0.0 && c.is_finite() => Some(Flag::Up),
        (None, None, Some(t)) if t > 0.0 => Some(Flag::Down),
        _ => None,
    };
    (ratio, flag)
}

/// Builds an answer from the series of the current evaluation and of each baseline (in the
/// order of `opts.offsets`). Series are matched across times by their full label set.
pub fn build_answer(
    req: &MetricRequest,
    opts: &CompareOptions,
    current: &[Series],
    baselines: &[Vec<Series>],
    range: Option<RangeSpec>,
) -> MetricAnswer {
    let specs: Vec<BaselineSpec> = opts
        .offsets
        .iter()
        .map(|d| BaselineSpec {
            label: short_duration(*d),
            offset_secs: d.as_secs(),
        })
        .collect();
    let then_maps: Vec<BTreeMap<&BTreeMap<String, String>, Option<f64>>> = baselines
        .iter()
        .map(|set| set.iter().map(|s| (&s.labels, value_of(s))).collect())
        .collect();

    // Every label set seen now or at any baseline: a series that vanished is news too.
    let mut label_sets: BTreeMap<&BTreeMap<String, String>, Option<f64>> = BTreeMap::new();
    for s in current {
        label_sets.insert(&s.labels, value_of(s));
    }
    for map in &then_maps {
        for labels in map.keys() {
            label_sets.entry(labels).or_insert(None);
        }
    }

    let mut rows: Vec<SeriesRow> = label_sets
        .into_iter()
        .map(|(labels, now)| {
            let baselines: Vec<BaselineValue> = specs
                .iter()
                .zip(then_maps.iter().map(Some).chain(std::iter::repeat(None)))
                .map(|(spec, map)| {
                    let then = map.and_then(|m| m.get(labels).copied().flatten());
                    let (ratio, flag) = compare_one(now, then, opts.threshold);
                    BaselineValue {
                        label: spec.label.clone(),
                        value: then,
                        ratio,
                        flag,
                    }
                })
                .collect();
            SeriesRow {
                labels: labels.clone(),
                current: now,
                flagged: baselines.iter().any(|b| b.flag.is_some()),
                baselines,
            }
        })
        .collect();
    // Stable sort over label-ordered rows: ties stay in label order, so answers are repeatable.
    rows.sort_by(|a, b| by_value_desc(a.current, b.current));

    let flagged = rows.iter().any(|r| r.flagged);
    let keep = opts.top_n.max(1).min(rows.len());
    let hidden = rows.split_off(keep);
    MetricAnswer {
        name: req.name.clone(),
        promql: req.promql.clone(),
        params: req.params.clone(),
        unit: req.unit.clone(),
        description: req.description.clone(),
        at: req.at,
        threshold: opts.threshold,
        baselines: specs,
        rest: hidden.len(),
        rest_flagged: hidden.iter().filter(|r| r.flagged).count(),
        rows,
        no_data: current.is_empty(),
        flagged,
        range,
    }
}

/// Answers a metric question: the query now and at each baseline, compared; with a range, a
/// chart too. All queries run at once, so the whole answer takes at most the client's timeout.
//
// Baselines are the same PromQL evaluated at `at - offset` (the API's `time` parameter), never a
// rewrite of the expression with `offset`: that would have to place the modifier on every
// selector and subquery of an arbitrary expression, while moving the evaluation time shifts all
// of them at once.
pub async fn fetch(
    client: &PrometheusClient,
    opts: &CompareOptions,
    req: &MetricRequest,
) -> Result<MetricReply, MetricsError> {
    let range = req
        .range
        .map(|r| plan_range(req.at, r, req.step))
        .transpose()?;
    let mut shifts = vec![Duration::ZERO];
    shifts.extend(opts.offsets.iter().copied());
    let mut times = Vec::with_capacity(shifts.len());
    for shift in &shifts {
        let d = delta(*shift).ok_or_else(|| MetricsError::InvalidDuration {
            input: short_duration(*shift),
            reason: "the offset is too long".to_string(),
        })?;
        times.push(d);
    }

    let mut tasks = tokio::task::JoinSet::new();
    for (i, shift) in times.iter().enumerate() {
        let (c, promql, at) = (client.clone(), req.promql.clone(), req.at - *shift);
        tasks.spawn(async move { (i, false, c.query(&promql, Some(at)).await) });
        if let Some(r) = range {
            let (c, promql, shift) = (client.clone(), req.promql.clone(), *shift);
            tasks.spawn(async move {
                let got = c
                    .query_range(&promql, r.start - shift, r.end - shift, r.step())
                    .await;
                (i, true, got.map(|series| shift_series(series, shift)))
            });
        }
    }
    let mut instant: Vec<Option<Vec<Series>>> = vec![None; times.len()];
    let mut ranged: Vec<Option<Vec<Series>>> = vec![None; times.len()];
    let mut first_error: Option<(usize, bool, PromError)> = None;
    while let Some(joined) = tasks.join_next().await {
        let (i, is_range, result) = joined.map_err(|e| MetricsError::Internal(e.to_string()))?;
        match result {
            Ok(series) if is_range => ranged[i] = Some(series),
            Ok(series) => instant[i] = Some(series),
            // The current instant query's error is reported first: the others are usually the
            // same error repeated.
            Err(e) => {
                let earlier = first_error
                    .as_ref()
                    .is_some_and(|(j, r, _)| (*j, *r) <= (i, is_range));
                if !earlier {
                    first_error = Some((i, is_range, e));
                }
            }
        }
    }
    if let Some((_, _, e)) = first_error {
        return Err(e.into());
    }
    let instant: Vec<Vec<Series>> = instant.into_iter().map(Option::unwrap_or_default).collect();
    let answer = build_answer(req, opts, &instant[0], &instant[1..], range);

    if !req.params.is_empty() && instant.iter().all(|s| s.is_empty()) {
        return Err(MetricsError::NoData {
            query: req.name.clone().unwrap_or_else(|| req.promql.clone()),
            params: req.params.clone(),
            baselines: answer.baselines.iter().map(|b| b.label.clone()).collect(),
        });
    }

    let chart_png = match range {
        Some(r) => {
            let ranged: Vec<Vec<Series>> =
                ranged.into_iter().map(Option::unwrap_or_default).collect();
            match chart_input(&answer, r, &ranged) {
                Some(input) => {
                    let drawn = tokio::task::spawn_blocking(move || render_chart(&input))
                        .await
                        .map_err(|e| MetricsError::Chart(e.to_string()))
                        .and_then(|r| r);
                    // The numbers matter more than the picture in an incident: answer without it.
                    match drawn {
                        Ok(png) => Some(png),
                        Err(e) => {
                            tracing::warn!(query = %answer.query_label(), "no chart: {e}");
                            None
                        }
                    }
                }
                None => None,
            }
        }
        None => None,
    };
    Ok(MetricReply { answer, chart_png })
}

/// Moves a baseline's samples forward onto the current window, so both share one time axis.
fn shift_series(mut series: Vec<Series>, shift: TimeDelta) -> Vec<Series> {
    for s in &mut series {
        for sample in &mut s.samples {
            sample.at += shift;
        }
    }
    series
}

/// Picks what to draw: the answer's top series in its order, then any others by last value, at
/// most five, each with its baselines.
fn chart_input(
    answer: &MetricAnswer,
    range: RangeSpec,
    ranged: &[Vec<Series>],
) -> Option<ChartInput> {
    let (current, baselines) = ranged.split_first()?;
    let rank = |labels: &BTreeMap<String, String>| {
        answer
            .rows
            .iter()
            .position(|r| &r.labels == labels)
            .unwrap_or(usize::MAX)
    };
    let samples_of = |set: &[Series], labels: &BTreeMap<String, String>| -> Vec<Sample> {
        set.iter()
            .find(|s| &s.labels == labels)
            .map(|s| s.samples.clone())
            .unwrap_or_default()
    };
    let last_value =
        |labels: &BTreeMap<String, String>| samples_of(current, labels).last().map(|s| s.value);
    // Series that only exist at a baseline are drawn too: a line that stopped is the news.
    let mut chosen: Vec<&BTreeMap<String, String>> = current
        .iter()
        .chain(baselines.iter().flatten())
        .filter(|s| !s.samples.is_empty())
        .map(|s| &s.labels)
        .collect();
    chosen.sort();
    chosen.dedup();
    chosen.sort_by(|a, b| {
        rank(a)
            .cmp(&rank(b))
            .then_with(|| by_value_desc(last_value(a), last_value(b)))
    });
    chosen.truncate(CHART_SERIES);
    if chosen.is_empty() {
        return None;
    }
    let series = chosen
        .into_iter()
        .map(|labels| ChartSeries {
            label: text::series_label(labels, answer),
            current: samples_of(current, labels),
            baselines: answer
                .baselines
                .iter()
                .zip(baselines)
                .map(|(spec, set)| (spec.label.clone(), samples_of(set, labels)))
                .collect(),
        })
        .collect();
    Some(ChartInput {
        title: text::chart_title(answer, range),
        unit: answer.unit.clone(),
        start: range.start,
        end: range.end,
        step: range.step(),
        series,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    fn series(labels: &[(&str, &str)], value: f64) -> Series {
        Series {
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            samples: vec![Sample { at: at(), value }],
        }
    }

    fn req() -> MetricRequest {
        MetricRequest::raw("x", at()).unwrap()
    }

    #[test]
    fn ratio_against_each_baseline_and_flag_at_threshold() {
        let now = [series(&[("s", "a")], 4.5)];
        let day = vec![series(&[("s", "a")], 1.5)];
        let week = vec![series(&[("s", "a")], 2.25)];
        let a = build_answer(&req(), &CompareOptions::default(), &now, &[day, week], None);
        let row = &a.rows[0];
        assert_eq!(row.current, Some(4.5));
        assert_eq!(row.baselines[0].label, "1d");
        assert_eq!(row.baselines[0].value, Some(1.5));
        assert_eq!(row.baselines[0].ratio, Some(3.0));
        assert_eq!(row.baselines[0].flag, Some(Flag::Up));
        assert_eq!(row.baselines[1].label, "1w");
        assert_eq!(row.baselines[1].ratio, Some(2.0));
        assert_eq!(row.baselines[1].flag, None);
        assert!(row.flagged && a.flagged && !a.no_data);
    }

    #[test]
    fn drops_zero_baselines_and_vanished_series() {
        let now = [series(&[("s", "down")], 0.5), series(&[("s", "new")], 2.0)];
        let day = vec![
            series(&[("s", "down")], 1.5),
            series(&[("s", "new")], 0.0),
            series(&[("s", "gone")], 1.0),
        ];
        let opts = CompareOptions {
            offsets: vec![DAY],
            ..CompareOptions::default()
        };
        let a = build_answer(&req(), &opts, &now, &[day], None);
        let find = |s: &str| a.rows.iter().find(|r| r.labels["s"] == s).unwrap();
        assert_eq!(find("down").baselines[0].ratio, Some(0.5 / 1.5));
        assert_eq!(find("down").baselines[0].flag, Some(Flag::Down));
        assert_eq!(find("new").baselines[0].ratio, None);
        assert_eq!(find("new").baselines[0].flag, Some(Flag::Up));
        assert_eq!(find("gone").current, None);
        assert_eq!(find("gone").baselines[0].flag, Some(Flag::Down));
        // Largest first, the vanished series last.
        let order: Vec<&str> = a.rows.iter().map(|r| r.labels["s"].as_str()).collect();
        assert_eq!(order, ["new", "down", "gone"]);
    }

    #[test]
    fn unchanged_and_missing_baselines_are_not_flagged() {
        let now = [series(&[], 2.0)];
        let a = build_answer(
            &req(),
            &CompareOptions::default(),
            &now,
            &[vec![series(&[], 2.0)], vec![]],
            None,
        );
        assert_eq!(a.rows[0].baselines[0].ratio, Some(1.0));
        assert_eq!(a.rows[0].baselines[1].value, None);
        assert_eq!(a.rows[0].baselines[1].ratio, None);
        assert!(!a.flagged);
        let never = CompareOptions {
            threshold: 1.0,
            ..CompareOptions::default()
        };
        let a = build_answer(&req(), &never, &now, &[vec![series(&[], 100.0)]], None);
        assert!(!a.flagged);
    }

    #[test]
    fn top_n_keeps_the_largest_and_counts_the_rest() {
        let now: Vec<Series> = (1..=8)
            .map(|i| series(&[("q", &format!("q{i}"))], i as f64))
            .collect();
        let mut then = now.clone();
        then[0].samples[0].value = 0.25; // q1 is 4× its baseline but not in the top 3.
        let opts = CompareOptions {
            offsets: vec![DAY],
            top_n: 3,
            ..CompareOptions::default()
        };
        let a = build_answer(&req(), &opts, &now, &[then], None);
        let shown: Vec<f64> = a.rows.iter().map(|r| r.current.unwrap()).collect();
        assert_eq!(shown, [8.0, 7.0, 6.0]);
        assert_eq!(a.rest, 5);
        assert_eq!(a.rest_flagged, 1);
        assert!(a.flagged);
        assert_eq!(a.series_count(), 8);
    }

    #[test]
    fn no_data_is_marked() {
        let a = build_answer(
            &req(),
            &CompareOptions::default(),
            &[],
            &[vec![], vec![]],
            None,
        );
        assert!(a.no_data && a.rows.is_empty() && a.rest == 0 && !a.flagged);
    }

    #[test]
    fn steps_are_nice_and_the_point_limit_holds() {
        assert_eq!(
            choose_step(Duration::from_secs(3600)),
            Duration::from_secs(15)
        );
        assert_eq!(
            choose_step(Duration::from_secs(6 * 3600)),
            Duration::from_secs(120)
        );
        assert_eq!(choose_step(7 * DAY), Duration::from_secs(3600));
        let r = plan_range(at(), Duration::from_secs(3600), None).unwrap();
        assert_eq!(r.end, at());
        assert_eq!(r.start, at() - TimeDelta::hours(1));
        assert_eq!(r.step_secs, 15);
        // 11,000 steps is Prometheus' limit, inclusive.
        assert!(plan_range(
            at(),
            Duration::from_secs(11_000),
            Some(Duration::from_secs(1))
        )
        .is_ok());
        let err = plan_range(at(), 2 * DAY, Some(Duration::from_secs(15))).unwrap_err();
        assert!(
            matches!(err, MetricsError::RangeTooLong { points: 11_521, .. }),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "A 2d range at a 15s step is 11521 points per series, and Prometheus allows at most 11,000. Use a shorter range or a larger step."
        );
        assert!(plan_range(at(), Duration::from_millis(500), None).is_err());
        assert!(plan_range(at(), DAY, Some(Duration::from_millis(500))).is_err());
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(
            parse_duration(" 6h ").unwrap(),
            Duration::from_secs(6 * 3600)
        );
        assert_eq!(parse_duration("1w").unwrap(), 7 * DAY);
        assert!(matches!(
            parse_duration("soon"),
            Err(MetricsError::InvalidDuration { .. })
        ));
        assert!(parse_duration("0s").is_err());
    }

    #[test]
    fn named_requests_keep_only_used_params() {
        let params: BTreeMap<String, String> = [("service", "checkout"), ("region", "eu")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let r = MetricRequest::named("e", "up{service=\"{{service}}\"}", &params, at())
            .unwrap()
            .with_unit(Some("req/s"))
            .with_description(Some(""));
        assert_eq!(r.promql, "up{service=\"checkout\"}");
        assert_eq!(r.params.len(), 1);
        assert_eq!(r.unit.as_deref(), Some("req/s"));
        assert_eq!(r.description, None);
        assert!(matches!(
            MetricRequest::raw("  ", at()),
            Err(MetricsError::EmptyQuery)
        ));
    }

    #[test]
    fn lookup_lists_known_names() {
        let mut queries = BTreeMap::new();
        queries.insert("latency".to_string(), 1);
        queries.insert("error_rate".to_string(), 2);
        assert_eq!(*lookup(&queries, "latency").unwrap(), 1);
        let err = lookup(&queries, "errors").unwrap_err();
        assert_eq!(
            err.to_string(),
            "There is no query named `errors`. Configured: error_rate, latency."
        );
        assert!(err.is_user_error());
        let none: BTreeMap<String, ()> = BTreeMap::new();
        assert!(lookup(&none, "x")
            .unwrap_err()
            .to_string()
            .contains("query:"));
    }

    #[test]
    fn no_data_error_names_the_parameter() {
        let mut params = BTreeMap::new();
        params.insert("service".to_string(), "chekout".to_string());
        let err = MetricsError::NoData {
            query: "error_rate".into(),
            params,
            baselines: vec!["1d".into(), "1w".into()],
        };
        assert_eq!(
            err.to_string(),
            "No data for `error_rate` with service=chekout, now or 1d or 1w ago. Check the service value."
        );
    }

    #[test]
    fn charts_draw_top_series_with_their_baselines_and_vanished_ones() {
        let range = plan_range(at(), Duration::from_secs(3600), None).unwrap();
        let now = vec![series(&[("s", "small")], 1.0), series(&[("s", "big")], 9.0)];
        let day = vec![series(&[("s", "big")], 3.0), series(&[("s", "gone")], 5.0)];
        let answer = build_answer(
            &req(),
            &CompareOptions::default(),
            &now,
            &[day.clone(), vec![]],
            Some(range),
        );
        let input = chart_input(&answer, range, &[now, day, vec![]]).unwrap();
        let labels: Vec<&str> = input.series.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(labels, ["{s=\"big\"}", "{s=\"small\"}", "{s=\"gone\"}"]);
        assert_eq!(input.series[0].baselines[0].1[0].value, 3.0);
        assert!(input.series[0].baselines[1].1.is_empty());
        assert!(input.series[2].current.is_empty());
        assert_eq!(input.step, Duration::from_secs(15));
        assert!(chart_input(&answer, range, &[vec![], vec![], vec![]]).is_none());
    }

    #[test]
    fn answers_round_trip_through_serde() {
        let now = [series(&[("s", "a")], 4.5)];
        let a = build_answer(
            &req(),
            &CompareOptions::default(),
            &now,
            &[vec![], vec![]],
            None,
        );
        let json = serde_json::to_string(&a).unwrap();
        let back: MetricAnswer = serde_json::from_str(&json).unwrap();
        assert_eq!(back, a);
    }
}
