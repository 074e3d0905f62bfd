//! sitrep: incident coordination for Discord.
//!
//! Data flows from the edges inwards; a module uses only the modules listed below it (no import
//! runs back up, and none runs in a circle).
//!
//! - Entry: `main.rs` (the command line) and [`preflight`], the checks of a loaded configuration
//!   that need the commands and the lint (permission keys, lint phrases); every entry point that
//!   checks a configuration runs them; and [`demo`], the incident `sitrep demo` plays into the
//!   console, with a stand-in Prometheus for its metric snapshot.
//! - Edges: [`chat::discord`] (serenity: gateway in, REST out, the channel capture, the
//!   permissions the bot needs and `sitrep doctor`'s checks of a setup against Discord),
//!   [`chat::console`] (a terminal chat with the same commands) and [`http`] (health, the signed
//!   deploy webhook, the alert webhook, exports), which also serves [`web`] (the public status page and the
//!   token-protected incident browser).
//! - Commands: [`commands`], one handler module per manifest in `commands/`
//!   ([`commands::incident`] ↔ `commands/incident.json`) and one entry per command in
//!   [`commands::TABLE`], which every edge dispatches through; buttons are table entries too
//!   ([`commands::alert`]: alert groups from the HTTP edge routed, offered for triage and
//!   declared through the path `/incident open` takes). Option trees are checked against
//!   the manifest and deserialized into typed args once per interaction ([`commands::options`]).
//! - Timed work: [`scheduler`] (the loop that runs due jobs, and the outbox), over [`kinds`]
//!   (the one list of job kinds, and `App::new`, which hands the app their planning).
//! - Features: [`escalation`] (pages to configured roles and PagerDuty, ladders that climb until
//!   someone acknowledges; its timeout and nudge jobs), [`whats_changed`] (the post at open),
//!   [`status`] (how an incident reads in a post, and the scheduled status update),
//!   [`postmortem`] (drafts from the timeline and the channel, key moments, the blameless lint,
//!   statistics), [`metrics`] (baselines, charts, snapshots), [`action_items`] (items filed
//!   as issues in GitHub or Jira, their state read back, overdue ones brought up) and
//!   [`oncall`] (who each schedule puts on call now and next, from PagerDuty, a calendar feed
//!   or a rotation, with the last known answer when a source fails).
//! - Services: [`jobs`] (what a timed job kind is, and the archive and label kinds),
//!   [`app`] (what handlers reach, and [`app::App::record`], the one way events are recorded and
//!   jobs re-planned), [`error`] (user-facing vs internal), [`render`] (minijinja over
//!   `templates/`), [`telemetry`] (the bot's own health, served on `GET /metrics`) and
//!   [`integrations`] (Prometheus, deploy sources, PagerDuty's events and on-calls, iCalendar
//!   feeds, GitHub Issues and Jira, Alertmanager's and Grafana's alert payloads).
//! - Core: [`store`] (sled trees, keys, schema versions), [`config`] (defaults → file →
//!   environment, one file per section), [`platform`] (the [`platform::Chat`] trait the
//!   services post through), [`clock`] (where "now" comes from), [`domain`] (pure types, the
//!   timeline events and the fold into state) and [`message`] (what the bot says: posts,
//!   embeds, buttons, who they may ping, Discord's limits).
//! - Tests only: `testkit` (one way to build an app for tests), behind the `testkit` feature.

pub mod action_items;
pub mod app;
pub mod chat;
pub mod clock;
pub mod commands;
pub mod config;
pub mod demo;
pub mod domain;
pub mod error;
pub mod escalation;
pub mod http;
pub mod integrations;
pub mod jobs;
pub mod kinds;
pub mod message;
pub mod metrics;
pub mod oncall;
pub mod platform;
pub mod postmortem;
pub mod preflight;
pub mod render;
pub mod scheduler;
pub mod status;
pub mod store;
pub mod telemetry;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod web;
pub mod whats_changed;
