//! Command handlers: a typed invocation in, an outcome (reply and posts) out; no platform types.

pub mod incident;
pub mod options;
pub mod when;

use crate::app::App;
use crate::chat::Post;
use crate::domain::{IncidentId, UserRef};
use crate::error::{CommandError, UserError};
pub use options::{CommandInput, InputOption, InputValue};

/// Who ran what, where.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub user: UserRef,
    /// The invoker's Discord roles, for permission checks.
    pub member_roles: Vec<u64>,
    /// The channel it was typed in; inside an incident's channel it names the incident.
    pub channel: Option<u64>,
    pub input: CommandInput,
}

/// The answer to the person who typed the command.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub post: Post,
    /// Only the typist sees it (errors, lists, previews).
    pub ephemeral: bool,
}

impl Reply {
    pub fn public(content: impl Into<String>) -> Reply {
        Reply {
            post: Post::text(content),
            ephemeral: false,
        }
    }

    pub fn private(content: impl Into<String>) -> Reply {
        Reply {
            post: Post::text(content),
            ephemeral: true,
        }
    }
}

/// A post to send once the reply is out.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub channel: u64,
    pub post: Post,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub reply: Reply,
    pub posts: Vec<Delivery>,
    /// The incident the command acted on; the console makes it the current one.
    pub incident: Option<IncidentId>,
}

/// Whether the command waits on anything but the store before it can answer (a channel to create,
/// a remote system to ask): such commands are deferred first to keep Discord's 3 s deadline.
pub fn defers(input: &CommandInput) -> bool {
    matches!(input.path().as_str(), "incident open")
}

/// Runs one command. Events are flushed to disk before this returns a success.
pub async fn run(app: &App, inv: &Invocation) -> Result<Outcome, CommandError> {
    match inv.input.name.as_str() {
        "incident" => incident::run(app, inv, options::parse(&inv.input)?).await,
        other => Err(UserError::UnknownCommand(format!("/{other}")).into()),
    }
}
