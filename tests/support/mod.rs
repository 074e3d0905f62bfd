//! Fixtures shared by the integration tests: stand-ins for the services sitrep talks to.

#[allow(dead_code)]
pub mod bot;
pub mod discord;
#[allow(dead_code)]
pub mod load;
pub mod prometheus;
