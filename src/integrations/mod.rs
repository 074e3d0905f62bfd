//! Clients for the outside systems sitrep reads from or pages: Prometheus, deploy sources,
//! PagerDuty (events and on-calls), iCalendar feeds.
pub mod deploys;
pub mod github;
pub mod ical;
pub mod pagerduty;
pub mod pagerduty_oncalls;
pub mod prometheus;
