//! The services every handler reaches: config, store, templates, chat, the clock and telemetry.

use crate::chat::Chat;
use crate::config::Config;
use crate::integrations::prometheus::PrometheusClient;
use crate::render::Renderer;
use crate::store::Store;
use crate::telemetry::Telemetry;
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// Where "now" comes from; injected so that tests can run on tokio's paused clock.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Wall time that advances with tokio's clock, so `tokio::time::pause` and `advance` move it.
pub struct TokioClock {
    base: DateTime<Utc>,
    start: tokio::time::Instant,
}

impl TokioClock {
    pub fn starting_at(base: DateTime<Utc>) -> Self {
        TokioClock {
            base,
            start: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = chrono::Duration::from_std(self.start.elapsed()).unwrap_or_default();
        self.base + elapsed
    }
}

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
    /// The bot's own health, served on `GET /metrics`.
    pub telemetry: Arc<Telemetry>,
}

impl App {
    /// An app with no optional integrations; add them with the `with_*` methods.
    pub fn new(
        config: Arc<Config>,
        store: Store,
        renderer: Arc<Renderer>,
        chat: Arc<dyn Chat>,
        clock: Arc<dyn Clock>,
    ) -> App {
        App {
            config,
            store,
            renderer,
            chat,
            clock,
            prometheus: None,
            pagerduty: None,
            telemetry: Arc::default(),
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

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}
