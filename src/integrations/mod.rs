//! Clients for the outside systems sitrep reads from, pages or files in: Prometheus, deploy
//! sources, PagerDuty, issue trackers, and the alert payloads Alertmanager and Grafana send.
pub mod alertmanager;
pub mod deploys;
pub mod github;
pub mod pagerduty;
pub mod prometheus;
pub mod trackers;
