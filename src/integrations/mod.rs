//! Clients for the outside systems sitrep reads from or pages: Prometheus, deploy sources, PagerDuty.
pub mod prometheus;
