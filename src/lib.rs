//! sitrep: incident coordination for Discord.
//!
//! Data flows from the edges inwards; a layer uses only the layers below it.
//!
//! - Edges: [`chat::console`] (a terminal chat) and, later, Discord and the HTTP edge.
//! - Commands: [`commands`], one handler module per manifest in `commands/`
//!   ([`commands::incident`] ↔ `commands/incident.json`). Option trees are checked against the
//!   manifest and deserialized into typed args ([`commands::options`]).
//! - Services: [`app`] (what handlers reach), [`render`] (minijinja over `templates/`),
//!   [`scheduler`] (every timed job: status updates on a cadence, reminders),
//!   [`integrations`] and [`metrics`] (Prometheus).
//! - Core: [`domain`] (pure types, the timeline events and the fold into state) and [`store`]
//!   (sled trees, keys, schema versions).
//! - Across all: [`config`] (defaults → file → environment) and [`error`] (user-facing vs internal).

pub mod app;
pub mod chat;
pub mod commands;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod integrations;
#[cfg(not(feature = "no-metrics"))]
pub mod metrics;
pub mod render;
pub mod scheduler;
pub mod store;
pub mod whats_changed;
