//! Fixtures shared by the integration tests: stand-ins for the services sitrep talks to.

pub mod discord;
pub mod prometheus;
