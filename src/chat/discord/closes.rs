//! Gateway closes that serenity 0.12 neither ends the session on nor should retry (4010–4012), read from its tracing spans.
//!
//! serenity stops on 4004, 4013 and 4014, but after 4010 or 4011 it sits on the dead socket,
//! and after 4012 it identifies again every five seconds, for ever. It does record every close in
//! a `handle_gateway_closed` span whose `data` field holds the close frame, and nothing else in
//! its API carries the code, so this layer reads it there and the bot stops with what to fix.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::OnceLock;
use tokio::sync::Notify;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::Subscriber;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// The closes serenity mishandles; the others it ends the session on or rightly resumes after.
const WATCHED: [u16; 3] = [4010, 4011, 4012];

static CODE: AtomicU16 = AtomicU16::new(0);

fn seen() -> &'static Notify {
    static SEEN: OnceLock<Notify> = OnceLock::new();
    SEEN.get_or_init(Notify::new)
}

/// The layer to add to the process's subscriber; it sees only serenity's close spans, whatever
/// `SITREP_LOG` lets through to the terminal.
pub fn layer<S>() -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let filter = filter_fn(|m| {
        m.target() == "serenity::gateway::shard" && m.name() == "handle_gateway_closed"
    })
    .with_max_level_hint(tracing::Level::INFO);
    CloseWatch.with_filter(filter)
}

struct CloseWatch;

impl<S: Subscriber> Layer<S> for CloseWatch {
    fn on_new_span(&self, attrs: &Attributes<'_>, _: &Id, _: Context<'_, S>) {
        let mut v = FrameVisitor(None);
        attrs.record(&mut v);
        if let Some(code) = v.0 {
            record(code);
        }
    }
}

struct FrameVisitor(Option<u16>);

impl Visit for FrameVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "data" {
            self.0 = parse_code(&format!("{value:?}"));
        }
    }
}

/// `Some(CloseFrame { code: Library(4010), reason: "..." })` → 4010.
fn parse_code(frame: &str) -> Option<u16> {
    let rest = &frame[frame.find("code: ")? + "code: ".len()..];
    let inner = &rest[rest.find('(')? + 1..];
    inner[..inner.find(')')?].parse().ok()
}

/// Notes a close; only the first watched one counts.
fn record(code: u16) {
    if WATCHED.contains(&code)
        && CODE
            .compare_exchange(0, code, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    {
        seen().notify_waiters();
    }
}

/// Resolves with the first watched close code the gateway sent.
pub async fn fatal_close() -> u16 {
    loop {
        let notified = seen().notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        match CODE.load(Ordering::SeqCst) {
            0 => notified.await,
            code => return code,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_code_from_serenitys_close_frame() {
        assert_eq!(
            parse_code(
                r#"Some(CloseFrame { code: Library(4012), reason: "Invalid API version." })"#
            ),
            Some(4012)
        );
        assert_eq!(parse_code("None"), None);
        assert_eq!(
            parse_code("Some(CloseFrame { code: Normal, reason: \"\" })"),
            None
        );
    }
}
