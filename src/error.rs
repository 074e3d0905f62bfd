//! Two kinds of failure: a responder's mistake (shown in chat as is) and ours (logged, with an id).

use crate::domain::{IncidentId, RuleError};
use crate::platform::ChatError;
use crate::render::TemplateError;
use crate::store::{AppendError, StoreError};

/// Something the person typing can fix. The text is shown to them, ephemerally.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UserError {
    #[error("{0}")]
    Rule(#[from] RuleError),
    #[error("`{0}` is not a command sitrep knows")]
    UnknownCommand(String),
    #[error("/{command}: {message}")]
    BadOptions { command: String, message: String },
    #[error("{0} does not exist")]
    NoSuchIncident(IncidentId),
    #[error("which incident? Run this in an incident's channel or add `incident:` (e.g. incident:INC-7)")]
    NoIncidentHere,
    #[error("`{0}` is not a configured severity; configured: {1}")]
    UnknownSeverity(String, String),
    #[error("`{0}` is not a configured incident role; configured: {1}")]
    UnknownRole(String, String),
    #[error("{0}")]
    BadTime(String),
    #[error("{0}")]
    Line(String),
    #[error("you are not allowed to {0}")]
    Denied(String),
    #[error("{0}")]
    Metrics(String),
    #[error("{0}")]
    Postmortem(String),
    #[error("{0}")]
    Escalation(String),
    #[error("{0}")]
    OnCall(String),
}

/// A failure of ours or of a platform we depend on. Logged with its context; the responder sees
/// only an apology and the id that finds the log line.
#[derive(Debug, thiserror::Error)]
pub enum InternalError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Chat(#[from] ChatError),
}

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    User(#[from] UserError),
    #[error(transparent)]
    Internal(#[from] InternalError),
}

impl From<RuleError> for CommandError {
    fn from(e: RuleError) -> Self {
        CommandError::User(e.into())
    }
}

impl From<StoreError> for CommandError {
    fn from(e: StoreError) -> Self {
        CommandError::Internal(e.into())
    }
}

impl From<TemplateError> for CommandError {
    fn from(e: TemplateError) -> Self {
        CommandError::Internal(e.into())
    }
}

impl From<ChatError> for CommandError {
    fn from(e: ChatError) -> Self {
        CommandError::Internal(e.into())
    }
}

impl From<AppendError> for CommandError {
    fn from(e: AppendError) -> Self {
        match e {
            AppendError::Rule(r) => r.into(),
            AppendError::Store(StoreError::Missing(id)) => UserError::NoSuchIncident(id).into(),
            AppendError::Store(s) => s.into(),
        }
    }
}

/// A short id that ties the apology in chat to the log line.
pub fn error_id() -> String {
    format!("{:08x}", fastrand::u32(..))
}

impl CommandError {
    /// What the responder reads. Internal errors are logged here, once, with their id.
    pub fn to_chat(&self, command: &str) -> String {
        match self {
            CommandError::User(e) => e.to_string(),
            CommandError::Internal(e) => {
                let id = error_id();
                tracing::error!(error_id = %id, command, error = %e, "command failed");
                format!("Sorry, something went wrong on our side (error id `{id}`). The team can find it in the bot's log.")
            }
        }
    }
}
