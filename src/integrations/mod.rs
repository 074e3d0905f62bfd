//! Clients for the outside systems sitrep reads from, pages or files in: Prometheus, deploy
//! sources, PagerDuty (events and on-calls), iCalendar feeds, issue trackers, and the alert
//! payloads Alertmanager and Grafana send.
pub mod alertmanager;
pub mod deploys;
pub mod github;
pub mod ical;
pub mod pagerduty;
pub mod pagerduty_oncalls;
pub mod prometheus;
pub mod trackers;
