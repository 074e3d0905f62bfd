//! The bot's HTTP edge: `GET /healthz` and the signed deploy webhook `POST /hooks/deploy`.
//!
//! The status page, the incident browser and `GET /metrics` come from [`crate::web`].
//!
//! Answers are short plain text meant for a person reading a CI log: what was wrong, and how to
//! fix it. Nothing here echoes a secret or a signature.

use crate::app::App;
use crate::config::Secrets;
use crate::integrations::deploys::{
    parse_notice, Rejection, Signed, Verifier, MAX_BODY_BYTES, SECRET_ENV, SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
};
use crate::web::internal;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

struct Edge {
    app: App,
    /// `None` when the webhook is on but its secret is missing: it then refuses everything.
    verifier: Option<Verifier>,
}

/// The routes, for [`serve`] or for mounting elsewhere. `POST /hooks/deploy` exists only with
/// `[deploys] webhook = true`. The status page and the incident browser come from [`crate::web`].
pub fn router(app: App, secrets: &Secrets) -> Router {
    let webhook = app.config.deploys.webhook;
    let web = crate::web::router(app.clone(), secrets);
    let edge = Arc::new(Edge {
        verifier: secrets.deploy_webhook_secret.as_deref().map(Verifier::new),
        app,
    });
    let mut router = Router::new().route("/healthz", get(healthz));
    if webhook {
        router = router.route(
            "/hooks/deploy",
            post(deploy_hook).layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
        );
    }
    router.with_state(edge).merge(web)
}

/// Serves the edge on `listener` until `shutdown` resolves, then lets requests in flight finish.
pub async fn serve(
    app: App,
    listener: TcpListener,
    secrets: Secrets,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    if app.config.deploys.webhook && secrets.deploy_webhook_secret.is_none() {
        tracing::warn!(
            "[deploys] webhook is on but {SECRET_ENV} is not set; refusing deploy notices"
        );
    }
    tracing::info!(%addr, webhook = app.config.deploys.webhook, "HTTP edge listening");
    axum::serve(listener, router(app, &secrets))
        .with_graceful_shutdown(shutdown)
        .await
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    let mut body = body.into();
    body.push('\n');
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn healthz(State(edge): State<Arc<Edge>>) -> Response {
    match edge.app.store.ping() {
        Ok(()) => text(StatusCode::OK, "ok"),
        Err(e) => {
            tracing::error!(error = %e, "health check: the store does not answer");
            text(StatusCode::SERVICE_UNAVAILABLE, "the store does not answer")
        }
    }
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    // A value that is not text cannot be a valid one; keep it so it is refused as malformed.
    headers.get(name).map(|v| v.to_str().unwrap_or("\u{fffd}"))
}

fn refuse(r: Rejection) -> Response {
    let status = match r {
        Rejection::Replayed => StatusCode::CONFLICT,
        Rejection::Busy => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::UNAUTHORIZED,
    };
    tracing::info!(status = status.as_u16(), reason = %r, "deploy notice refused");
    text(status, r.to_string())
}

fn too_large() -> Response {
    text(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the body is larger than {MAX_BODY_BYTES} bytes; send one deploy per notice"),
    )
}

/// Headers first (cheap, and a stale or unsigned notice is refused before its body is read), then
/// the size, the signature, replay, the content; the deploy is flushed before 202 is sent.
async fn deploy_hook(State(edge): State<Arc<Edge>>, req: Request) -> Response {
    let Some(verifier) = &edge.verifier else {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the deploy webhook has no secret yet; the operator must set {SECRET_ENV}"),
        );
    };
    let now = edge.app.now();
    let headers = req.headers();
    let signed = match Signed::from_headers(
        header_text(headers, TIMESTAMP_HEADER),
        header_text(headers, SIGNATURE_HEADER),
        now,
    ) {
        Ok(s) => s,
        Err(r) => return refuse(r),
    };
    let declared =
        header_text(headers, header::CONTENT_LENGTH.as_str()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return too_large();
    }
    let body = match Bytes::from_request(req, &()).await {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return too_large(),
        Err(e) => return text(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let claim = match verifier.verify(&signed, &body, now) {
        Ok(c) => c,
        Err(r) => return refuse(r),
    };
    let deploy = match parse_notice(&body, signed.signed_at(), now) {
        Ok(d) => d,
        Err(message) => {
            tracing::info!(%message, "deploy notice refused");
            return text(StatusCode::BAD_REQUEST, message);
        }
    };
    let new = match edge.app.store.put_deploy(&deploy) {
        Ok(new) => new,
        Err(e) => {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                internal("storing a deploy", e).to_string(),
            )
        }
    };
    if let Err(e) = edge.app.store.flush().await {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            internal("flushing a deploy", e).to_string(),
        );
    }
    claim.keep();
    let what = format!(
        "{} {}{}",
        deploy.service,
        deploy.version,
        deploy
            .environment
            .as_deref()
            .map(|e| format!(" to {e}"))
            .unwrap_or_default()
    );
    tracing::info!(
        service = %deploy.service,
        version = %deploy.version,
        new,
        "deploy notice accepted"
    );
    if new {
        text(StatusCode::ACCEPTED, format!("accepted: deploy of {what}"))
    } else {
        text(
            StatusCode::OK,
            format!("already recorded: deploy of {what}"),
        )
    }
}
