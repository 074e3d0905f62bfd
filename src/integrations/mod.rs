//! Clients for the outside systems sitrep reads from or pages: Prometheus, deploy sources, PagerDuty,
//! and the alert payloads Alertmanager and Grafana send.
pub mod alertmanager;
pub mod deploys;
pub mod github;
pub mod pagerduty;
pub mod prometheus;
