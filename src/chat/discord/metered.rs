//! What the Discord edge tells [`Telemetry`]: each REST call's answer and the gateway's latency.

use crate::telemetry::{Answer, LatencyProbe, Telemetry};
use serenity::all::ShardManager;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// How long a scrape waits for serenity's shard table before reporting no latency.
const PROBE_WAIT: Duration = Duration::from_secs(1);

/// The answer a REST call got, as telemetry counts it.
pub fn answer_of<T>(result: &serenity::Result<T>) -> Answer {
    match result {
        Ok(_) => Answer::Success,
        Err(e) => match super::outgoing::status_of(e) {
            Some(status) => Answer::Status(status),
            None if super::outgoing::is_timeout(e) => Answer::Timeout,
            None => Answer::Failed,
        },
    }
}

/// Awaits one attempt of a REST call and counts its answer under `route`, the call site's name.
pub async fn metered<T>(
    telemetry: &Telemetry,
    route: &str,
    call: impl Future<Output = serenity::Result<T>>,
) -> serenity::Result<T> {
    let result = call.await;
    telemetry.discord_request(route, answer_of(&result));
    result
}

/// Reads the last heartbeat round trip serenity measured, from the table of shard runners of
/// whichever gateway client runs now (`shards` answers that: the bot may have reconnected with
/// fewer intents).
pub fn latency_probe(
    shards: impl Fn() -> Option<Arc<ShardManager>> + Send + Sync + 'static,
) -> LatencyProbe {
    Box::new(move || {
        let shards = shards();
        Box::pin(async move {
            let shards = shards?;
            let runners = tokio::time::timeout(PROBE_WAIT, shards.runners.lock())
                .await
                .ok()?;
            // sitrep runs one shard; with more, the slowest is the one to look at.
            runners.values().filter_map(|r| r.latency).max()
        })
    })
}
