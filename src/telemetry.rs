//! The bot's own health for whoever runs it, in Prometheus' text format, served as `GET /metrics`.
//!
//! The parts that do the work record into one [`Telemetry`], which they are handed (through
//! [`crate::app::App`], or directly where the app does not exist yet); nothing here is global.
//! Counters and histograms are written as things happen. What the store already knows (open
//! incidents, the outbox) and what serenity keeps (the gateway's heartbeat round trip) is read
//! when Prometheus scrapes, so that it can never drift from the truth.
//!
//! Labels carry names from a closed set (commands of the manifests, call sites, job kinds,
//! severities), never ids or user text; each free-form label is capped at [`MAX_LABEL_VALUES`]
//! values, after which newcomers are counted as `other`.

use crate::config::Config;
use crate::store::Store;
use crate::store::StoreError;
use chrono::{DateTime, Utc};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use tokio::time::Instant;

/// The content type of [`Telemetry::exposition`]: Prometheus' text format 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Discord counts invalid requests (401, 403, 429) over this window and bans an IP for an hour
/// at 10,000 of them.
pub const INVALID_WINDOW: Duration = Duration::from_secs(10 * 60);
/// Distinct values one free-form label may take before the rest are counted as `other`.
pub const MAX_LABEL_VALUES: usize = 200;

/// How a command, button or form ended for the person who used it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ended {
    /// It did what was asked.
    Ok,
    /// Refused with an explanation the person can act on.
    UserError,
    /// Failed on our side (or on a system we depend on); the person got an apology and an id.
    InternalError,
}

impl Ended {
    pub fn as_str(self) -> &'static str {
        match self {
            Ended::Ok => "ok",
            Ended::UserError => "user_error",
            Ended::InternalError => "internal_error",
        }
    }
}

impl EncodeLabelValue for Ended {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

/// What came back from one REST call to Discord.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Any success: serenity does not tell 200 from 204.
    Success,
    /// An HTTP status Discord answered with.
    Status(u16),
    /// No answer in time, or no connection.
    Timeout,
    /// Anything else that kept the call from completing.
    Failed,
}

impl Answer {
    fn label(self) -> String {
        match self {
            Answer::Success => "2xx".into(),
            Answer::Status(s) => s.to_string(),
            Answer::Timeout => "timeout".into(),
            Answer::Failed => "error".into(),
        }
    }

    /// The answers Discord counts towards its invalid-request ban. A 429 of the shared scope
    /// does not count there, but serenity does not pass the scope header on; counting every 429
    /// errs on the side of warning early.
    fn is_invalid(self) -> bool {
        matches!(self, Answer::Status(401 | 403 | 429))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct SessionLabels {
    event: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct InteractionLabels {
    kind: &'static str,
    command: String,
    outcome: Ended,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CommandLabels {
    kind: &'static str,
    command: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    status: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct WaitLabels {
    global: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct JobLabels {
    job: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct SeverityLabels {
    severity: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Reads the gateway's last heartbeat round trip; `None` before the first acknowledgement.
pub type LatencyProbe =
    Box<dyn Fn() -> Pin<Box<dyn Future<Output = Option<Duration>> + Send>> + Send + Sync>;

/// Discord answers an interaction's first response within 3 s or never: the buckets gather
/// around that deadline.
fn ack_histogram() -> Histogram {
    Histogram::new([0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 5.0])
}

/// From "on time" to "the bot was down for an hour".
fn lag_histogram() -> Histogram {
    Histogram::new([
        0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 21600.0,
    ])
}

/// A label that may take values from outside a fixed list: each new value is admitted until
/// [`MAX_LABEL_VALUES`] are known, so that a bug or a hostile input cannot grow the exposition
/// without bound.
#[derive(Default)]
struct Bounded(Mutex<HashSet<String>>);

impl Bounded {
    fn admit(&self, value: &str) -> String {
        let mut known = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if known.contains(value) {
            return value.to_string();
        }
        if known.len() >= MAX_LABEL_VALUES {
            return "other".into();
        }
        known.insert(value.to_string());
        value.to_string()
    }
}

/// Everything the bot records about itself, and the registry that writes it out.
pub struct Telemetry {
    registry: Registry,
    /// A family without labels, so that the series can be absent until there is a value.
    gateway_latency: Family<Vec<(String, String)>, Gauge<f64, AtomicU64>>,
    gateway_sessions: Family<SessionLabels, Counter>,
    interactions: Family<InteractionLabels, Counter>,
    ack: Histograms<CommandLabels>,
    requests: Family<RequestLabels, Counter>,
    rate_limited: Family<RouteLabels, Counter>,
    limiter_waits: Family<WaitLabels, Counter>,
    invalid: Gauge,
    outbox_depth: Gauge,
    outbox_oldest: Gauge<f64, AtomicU64>,
    scheduler_lag: Histograms<JobLabels>,
    open_incidents: Family<SeverityLabels, Gauge>,
    invalid_at: Mutex<VecDeque<Instant>>,
    commands: Bounded,
    routes: Bounded,
    probe: OnceLock<LatencyProbe>,
    /// One scrape at a time: each clears and refills the series read from the store, and two
    /// Prometheus servers scraping together must not see each other's half-filled families.
    scraping: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry").finish_non_exhaustive()
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry::new()
    }
}

impl Telemetry {
    pub fn new() -> Telemetry {
        let mut registry = Registry::with_prefix("sitrep");
        let gateway_latency = Family::default();
        registry.register_with_unit(
            "gateway_latency",
            "Round trip of the last gateway heartbeat (absent until Discord acknowledged one)",
            Unit::Seconds,
            gateway_latency.clone(),
        );
        let gateway_sessions = Family::default();
        registry.register(
            "gateway_sessions",
            "Gateway sessions started (event=ready) or resumed (event=resumed); all but the first are reconnects",
            gateway_sessions.clone(),
        );
        let interactions = Family::default();
        registry.register(
            "interactions",
            "Interactions handled, by kind (command, button, form, autocomplete), command and outcome (ok, user_error, internal_error)",
            interactions.clone(),
        );
        let ack: Histograms<CommandLabels> = Family::new_with_constructor(ack_histogram);
        registry.register_with_unit(
            "interaction_ack",
            "Time from an interaction reaching the bot to Discord accepting its first response (reply or deferral); Discord allows 3 s",
            Unit::Seconds,
            ack.clone(),
        );
        let requests = Family::default();
        registry.register(
            "discord_requests",
            "Attempts of REST calls to Discord, by call site and answer (2xx, an HTTP status, timeout, error); a retried call counts once per attempt",
            requests.clone(),
        );
        let rate_limited = Family::default();
        registry.register(
            "discord_rate_limited",
            "429 answers that reached the bot, each attempt counted (through a proxy; direct, serenity waits them out itself)",
            rate_limited.clone(),
        );
        let limiter_waits = Family::default();
        registry.register(
            "discord_rate_limit_waits",
            "Times serenity's own rate limiter (direct mode) held a request back, before sending or after a 429",
            limiter_waits.clone(),
        );
        let invalid = Gauge::default();
        registry.register(
            "discord_invalid_requests",
            "401, 403 and 429 answers in the last 10 minutes; Discord bans the IP for an hour at 10,000",
            invalid.clone(),
        );
        let outbox_depth = Gauge::default();
        registry.register(
            "outbox_depth",
            "Posts queued by commands and not yet taken by Discord",
            outbox_depth.clone(),
        );
        let outbox_oldest = Gauge::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "outbox_oldest_age",
            "How long the oldest queued post has waited (0 when the outbox is empty)",
            Unit::Seconds,
            outbox_oldest.clone(),
        );
        let scheduler_lag: Histograms<JobLabels> = Family::new_with_constructor(lag_histogram);
        registry.register_with_unit(
            "scheduler_lag",
            "How late due jobs ran, by job kind (status, escalation, stuck, archive, post)",
            Unit::Seconds,
            scheduler_lag.clone(),
        );
        let open_incidents = Family::default();
        registry.register(
            "open_incidents",
            "Incidents not resolved, by severity (read from the database at each scrape)",
            open_incidents.clone(),
        );
        Telemetry {
            registry,
            gateway_latency,
            gateway_sessions,
            interactions,
            ack,
            requests,
            rate_limited,
            limiter_waits,
            invalid,
            outbox_depth,
            outbox_oldest,
            scheduler_lag,
            open_incidents,
            invalid_at: Mutex::new(VecDeque::new()),
            commands: Bounded::default(),
            routes: Bounded::default(),
            probe: OnceLock::new(),
            scraping: tokio::sync::Mutex::new(()),
        }
    }

    /// Where the gateway's heartbeat round trip is read at each scrape. Set once, by the
    /// Discord edge when it connects.
    pub fn set_latency_probe(&self, probe: LatencyProbe) {
        let _ = self.probe.set(probe);
    }

    /// A gateway session began: `resumed` after a reconnect that kept the session, a fresh
    /// READY otherwise.
    pub fn gateway_session(&self, resumed: bool) {
        let event = if resumed { "resumed" } else { "ready" };
        self.gateway_sessions
            .get_or_create(&SessionLabels { event })
            .inc();
    }

    /// Discord accepted the first response to an interaction `after` it reached the bot.
    pub fn interaction_acked(&self, kind: &'static str, command: &str, after: Duration) {
        let command = self.commands.admit(command);
        self.ack
            .get_or_create(&CommandLabels { kind, command })
            .observe(after.as_secs_f64());
    }

    /// An interaction ended with `outcome`.
    pub fn interaction_done(&self, kind: &'static str, command: &str, outcome: Ended) {
        let command = self.commands.admit(command);
        self.interactions
            .get_or_create(&InteractionLabels {
                kind,
                command,
                outcome,
            })
            .inc();
    }

    /// One attempt of a REST call, named by its call site (`send message`), never by ids.
    pub fn discord_request(&self, route: &str, answer: Answer) {
        let route = self.routes.admit(route);
        if answer == Answer::Status(429) {
            self.rate_limited
                .get_or_create(&RouteLabels {
                    route: route.clone(),
                })
                .inc();
        }
        if answer.is_invalid() {
            let mut at = self.invalid_at.lock().unwrap_or_else(|p| p.into_inner());
            at.push_back(Instant::now());
            prune(&mut at);
        }
        self.requests
            .get_or_create(&RequestLabels {
                route,
                status: answer.label(),
            })
            .inc();
    }

    /// serenity's own rate limiter held a request back (direct mode).
    pub fn rate_limit_wait(&self, global: bool) {
        let global = if global { "true" } else { "false" };
        self.limiter_waits
            .get_or_create(&WaitLabels { global })
            .inc();
    }

    /// A job of kind `job` (see [`crate::store::JobKind::tag`]) ran `late` after it was due.
    pub fn job_ran(&self, job: &'static str, late: Duration) {
        self.scheduler_lag
            .get_or_create(&JobLabels { job })
            .observe(late.as_secs_f64());
    }

    /// 401, 403 and 429 answers within [`INVALID_WINDOW`] of now.
    pub fn invalid_requests(&self) -> usize {
        let mut at = self.invalid_at.lock().unwrap_or_else(|p| p.into_inner());
        prune(&mut at);
        at.len()
    }

    /// Reads what is read at scrape time from the store (as of `now`) and the gateway, then
    /// writes everything out in Prometheus' text format; `config` names the severities. Reading
    /// every incident costs about 0.1 s for 5,000 of them in an unoptimised build: well inside
    /// a scrape.
    pub async fn exposition(
        &self,
        store: &Store,
        config: &Config,
        now: DateTime<Utc>,
    ) -> Result<String, StoreError> {
        let _one = self.scraping.lock().await;
        let incidents = store.incidents()?;
        let (depth, oldest) = store.outbox_summary()?;

        // Every configured severity appears, at 0 when none is open, so that an alert on
        // `sitrep_open_incidents{severity="SEV1"} > 0` has a series to look at.
        self.open_incidents.clear();
        for sev in config.severities.keys() {
            self.open_incidents
                .get_or_create(&SeverityLabels {
                    severity: sev.to_string(),
                })
                .set(0);
        }
        for inc in incidents.iter().filter(|i| i.is_open()) {
            self.open_incidents
                .get_or_create(&SeverityLabels {
                    severity: inc.severity.to_string(),
                })
                .inc();
        }

        self.outbox_depth.set(depth as i64);
        let age = oldest
            .and_then(|queued| (now - queued).to_std().ok())
            .unwrap_or_default();
        self.outbox_oldest.set(age.as_secs_f64());

        self.invalid.set(self.invalid_requests() as i64);
        let latency = match self.probe.get() {
            Some(probe) => probe().await,
            None => None,
        };
        match latency {
            Some(l) => {
                self.gateway_latency
                    .get_or_create(&Vec::new())
                    .set(l.as_secs_f64());
            }
            // No sample rather than a made-up one.
            None => self.gateway_latency.clear(),
        }

        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
            .expect("writing to a String does not fail");
        Ok(out)
    }
}

fn prune(at: &mut VecDeque<Instant>) {
    let now = Instant::now();
    while at
        .front()
        .is_some_and(|t| now.duration_since(*t) >= INVALID_WINDOW)
    {
        at.pop_front();
    }
}

#[cfg(test)]
mod tests;
