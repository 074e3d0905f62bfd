//! The services every handler reaches (config, store, templates, chat, the clock, telemetry),
//! and the one path that records events and re-plans jobs ([`App::record`]).

use crate::clock::Clock;
use crate::config::Config;
use crate::domain::{Actor, Event, EventKind, Incident, IncidentId, RuleError};
use crate::integrations::prometheus::PrometheusClient;
use crate::platform::Chat;
use crate::render::Renderer;
use crate::store::{AppendError, JobChange, Store};
use crate::telemetry::Telemetry;
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// What every job kind plans after events were folded into an incident (`kinds::plan`).
pub(crate) type Planner = fn(&Config, &Incident, &[Event]) -> Vec<JobChange>;

/// Built by `App::new`, beside the registry of job kinds (`kinds`): the kinds record through
/// the app, so the app is handed their planning rather than naming them.
#[derive(Clone)]
pub struct App {
    pub config: Arc<Config>,
    pub store: Store,
    pub renderer: Arc<Renderer>,
    pub chat: Arc<dyn Chat>,
    pub clock: Arc<dyn Clock>,
    /// Present when `[prometheus] url` is set.
    pub prometheus: Option<Arc<PrometheusClient>>,
    /// Present when an escalation target has a PagerDuty routing key.
    pub pagerduty: Option<Arc<crate::integrations::pagerduty::PagerDuty>>,
    /// Present when `[trackers]` sets up GitHub Issues or Jira.
    pub trackers: Option<Arc<crate::integrations::trackers::Trackers>>,
    /// The bot's own health, served on `GET /metrics`.
    pub telemetry: Arc<Telemetry>,
    /// What on-call sources need besides config (PagerDuty tokens).
    pub oncall: Arc<crate::integrations::pagerduty_oncalls::OnCallTokens>,
    plan: Planner,
}

impl App {
    /// An app with no optional integrations, whose [`App::record`] plans jobs with `plan`.
    pub(crate) fn with_planner(
        config: Arc<Config>,
        store: Store,
        renderer: Arc<Renderer>,
        chat: Arc<dyn Chat>,
        clock: Arc<dyn Clock>,
        plan: Planner,
    ) -> App {
        App {
            config,
            store,
            renderer,
            chat,
            clock,
            prometheus: None,
            pagerduty: None,
            trackers: None,
            telemetry: Arc::default(),
            oncall: Arc::default(),
            plan,
        }
    }

    /// Records into `telemetry`, shared with the parts that exist before the app (the chat).
    pub fn with_telemetry(mut self, telemetry: Arc<Telemetry>) -> App {
        self.telemetry = telemetry;
        self
    }

    pub fn with_prometheus(mut self, client: Option<PrometheusClient>) -> App {
        self.prometheus = client.map(Arc::new);
        self
    }

    pub fn with_pagerduty(
        mut self,
        client: Option<crate::integrations::pagerduty::PagerDuty>,
    ) -> App {
        self.pagerduty = client.map(Arc::new);
        self
    }

    pub fn with_trackers(mut self, client: Option<crate::integrations::trackers::Trackers>) -> App {
        self.trackers = client.map(Arc::new);
        self
    }

    pub fn with_oncall(
        mut self,
        sources: crate::integrations::pagerduty_oncalls::OnCallTokens,
    ) -> App {
        self.oncall = Arc::new(sources);
        self
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Appends what `decide` makes of incident `id`, at `at`, and re-plans every job kind in
    /// the same transaction. The one way events are recorded.
    pub fn record<F>(
        &self,
        id: IncidentId,
        actor: &Actor,
        at: DateTime<Utc>,
        decide: F,
    ) -> Result<(Incident, Vec<Event>), AppendError>
    where
        F: Fn(&Incident) -> Result<Vec<EventKind>, RuleError>,
    {
        self.record_with(id, actor, at, decide, |_, _, _| Vec::new())
    }

    /// As [`App::record`], with the job changes `also` adds to what the kinds planned (posts
    /// for the outbox, a timer only the caller knows): `also` sees the new state, the events
    /// and the planned changes, and everything is written in the one transaction.
    pub fn record_with<F, A>(
        &self,
        id: IncidentId,
        actor: &Actor,
        at: DateTime<Utc>,
        decide: F,
        also: A,
    ) -> Result<(Incident, Vec<Event>), AppendError>
    where
        F: Fn(&Incident) -> Result<Vec<EventKind>, RuleError>,
        A: Fn(&Incident, &[Event], &[JobChange]) -> Vec<JobChange>,
    {
        self.store
            .append_with_jobs(id, actor, at, decide, self.planned(also))
    }

    /// Records a new incident from its `Opened` event, as [`App::record_with`] does.
    pub fn record_opened<A>(
        &self,
        id: IncidentId,
        opened: Event,
        also: A,
    ) -> Result<Incident, AppendError>
    where
        A: Fn(&Incident, &[Event], &[JobChange]) -> Vec<JobChange>,
    {
        self.store
            .create_incident_with_jobs(id, opened, self.planned(also))
    }

    /// What every kind plans, then what `also` adds seeing that.
    fn planned<'a, A>(&'a self, also: A) -> impl Fn(&Incident, &[Event]) -> Vec<JobChange> + 'a
    where
        A: Fn(&Incident, &[Event], &[JobChange]) -> Vec<JobChange> + 'a,
    {
        move |inc, events| {
            let mut changes = (self.plan)(&self.config, inc, events);
            let more = also(inc, events, &changes);
            changes.extend(more);
            changes
        }
    }
}
