//! One interaction's responder: the first answer within Discord's 3 s, and what it learns while the interaction lasts.

use super::outgoing;
use crate::error::CommandError;
use crate::telemetry::{Ended, Telemetry};
use serenity::all::{CreateInteractionResponse, Http, InteractionId};
use serenity::builder::Builder;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Discord's deadline for an interaction's first response, counted from when it reached us.
const FIRST_RESPONSE_WINDOW: Duration = Duration::from_secs(3);
/// A retry of the first response must be sent by then, to leave it time to arrive.
const LAST_RETRY_AT: Duration = Duration::from_millis(2500);
/// Waits before each retry of a first response that met a 429 or a 5xx. Through a proxy the
/// 429's `retry_after` does not reach us (serenity drops the header and cannot read the body);
/// direct, serenity waits out `retry_after` itself before the error could reach us.
const RESPONSE_RETRIES: [Duration; 2] = [Duration::from_millis(250), Duration::from_millis(600)];
/// "Interaction has already been acknowledged": an earlier attempt did arrive.
const ALREADY_ACKNOWLEDGED: isize = 40060;

/// Answers one interaction: the first response, then edits or follow-ups.
pub(super) struct Responder<'a> {
    pub(super) http: &'a Http,
    pub(super) id: InteractionId,
    pub(super) token: &'a str,
    /// When the interaction reached us; Discord's 3 s for the first response and the token's
    /// 15 minutes run from about then.
    pub(super) received: Instant,
    /// What [`super::deferred`] learns while the interaction lasts.
    pub(super) state: TokenState,
    meter: Option<Meter>,
}

/// What an interaction counts as in telemetry, and how it has ended so far; recorded when the
/// [`Responder`] is dropped, at the end of the interaction's handling.
struct Meter {
    telemetry: Arc<Telemetry>,
    kind: &'static str,
    command: String,
    outcome: Mutex<Ended>,
}

impl Drop for Meter {
    fn drop(&mut self) {
        let outcome = *self.outcome.lock().unwrap_or_else(|p| p.into_inner());
        self.telemetry
            .interaction_done(self.kind, &self.command, outcome);
    }
}

impl Responder<'_> {
    pub(super) fn new<'a>(http: &'a Http, id: InteractionId, token: &'a str) -> Responder<'a> {
        Responder {
            http,
            id,
            token,
            received: Instant::now(),
            state: Default::default(),
            meter: None,
        }
    }

    /// Counts this interaction in `telemetry` as `kind` (command, button, form, autocomplete)
    /// of `command`, a name from a fixed set: never ids or typed text.
    pub(super) fn metered(
        mut self,
        telemetry: &Arc<Telemetry>,
        kind: &'static str,
        command: &str,
    ) -> Self {
        self.meter = Some(Meter {
            telemetry: telemetry.clone(),
            kind,
            command: command.to_string(),
            outcome: Mutex::new(Ended::Ok),
        });
        self
    }

    /// Records how the interaction ended; a failure of ours is not masked by a later mistake.
    pub(super) fn outcome(&self, outcome: Ended) {
        if let Some(m) = &self.meter {
            let mut o = m.outcome.lock().unwrap_or_else(|p| p.into_inner());
            if *o != Ended::InternalError {
                *o = outcome;
            }
        }
    }

    /// The text that explains `e` to the person, counted as their mistake or our failure.
    pub(super) fn explain(&self, e: &CommandError, what: &str) -> String {
        self.outcome(match e {
            CommandError::User(_) => Ended::UserError,
            CommandError::Internal(_) => Ended::InternalError,
        });
        e.to_chat(what)
    }

    pub(super) fn acked(&self) {
        if let Some(m) = &self.meter {
            m.telemetry
                .interaction_acked(m.kind, &m.command, self.received.elapsed());
        }
    }

    /// Sends the first response. A 429 or a 5xx is tried again, at most twice, while the answer
    /// can still arrive within Discord's window; anything else would be refused again.
    pub(super) async fn respond(&self, r: CreateInteractionResponse) -> bool {
        let mut retries = RESPONSE_RETRIES.iter();
        let mut retried = false;
        loop {
            let sent = r.clone().execute(self.http, (self.id, self.token));
            let e = match self.metered_call("interaction response", sent).await {
                Ok(()) => {
                    self.acked();
                    return true;
                }
                Err(e) => e,
            };
            if retried && outgoing::code_of(&e) == Some(ALREADY_ACKNOWLEDGED) {
                // The attempt that seemed to fail had arrived.
                self.acked();
                return true;
            }
            let status = outgoing::status_of(&e);
            let wait = retries
                .next()
                .filter(|_| matches!(status, Some(429 | 500..=599)))
                .filter(|w| self.received.elapsed() + **w <= LAST_RETRY_AT);
            let Some(wait) = wait else {
                tracing::warn!(
                    interaction = %self.id,
                    ?status,
                    elapsed_ms = self.received.elapsed().as_millis() as u64,
                    window_ms = FIRST_RESPONSE_WINDOW.as_millis() as u64,
                    error = %e,
                    "interaction response failed"
                );
                self.outcome(Ended::InternalError);
                return false;
            };
            tracing::info!(interaction = %self.id, ?status, "interaction response failed; trying again");
            tokio::time::sleep(*wait).await;
            retried = true;
        }
    }

    pub(super) async fn reply(&self, post: crate::message::Post, ephemeral: bool) -> bool {
        self.respond(CreateInteractionResponse::Message(outgoing::reply(
            post, ephemeral,
        )))
        .await
    }

    /// Tells the person what to fix, privately.
    pub(super) async fn error(&self, text: String) -> bool {
        self.outcome(Ended::UserError);
        self.reply(crate::message::Post::text(text), true).await
    }

    pub(super) async fn metered_call<T>(
        &self,
        route: &str,
        call: impl std::future::Future<Output = serenity::Result<T>>,
    ) -> serenity::Result<T> {
        match &self.meter {
            Some(m) => super::metered::metered(&m.telemetry, route, call).await,
            None => call.await,
        }
    }
}

/// What one interaction's responder learns while it lasts.
#[derive(Default)]
pub(super) struct TokenState {
    /// The deferral shows a placeholder to the whole channel.
    pub(super) public: AtomicBool,
    /// The placeholder's message id, once an edit returned it (0 until then).
    pub(super) placeholder: AtomicU64,
    /// Discord refused the token: it ran out, or the interaction is gone.
    pub(super) dead: AtomicBool,
}
