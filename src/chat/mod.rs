//! The chat edges: Discord over serenity, and a terminal console with the same commands. Both
//! implement [`crate::platform::Chat`].

pub mod console;
pub mod discord;
