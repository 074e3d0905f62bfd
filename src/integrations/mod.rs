//! Clients for the outside systems sitrep reads from or pages: Prometheus, deploy sources, PagerDuty.
pub mod deploys;
pub mod github;
pub mod pagerduty;
pub mod prometheus;
