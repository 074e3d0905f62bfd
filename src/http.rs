//! The bot's HTTP edge: `GET /healthz`, the signed deploy webhook `POST /hooks/deploy` and the
//! alert webhook `POST /hooks/alertmanager` (Alertmanager and Grafana, bearer token).
//!
//! The status page, the incident browser and `GET /metrics` come from [`crate::web`].
//!
//! Answers are short plain text meant for a person reading a CI log: what was wrong, and how to
//! fix it. Nothing here echoes a secret or a signature.

use crate::app::App;
use crate::config::{Secrets, ALERTS_TOKEN_ENV};
use crate::integrations::alertmanager::{Delivery, MAX_BODY_BYTES as ALERT_BODY_BYTES};
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
    /// The bearer token alert senders present; `None` refuses every alert.
    alerts_token: Option<String>,
}

/// The routes, for [`serve`] or for mounting elsewhere. `POST /hooks/deploy` exists only with
/// `[deploys] webhook = true`. The status page and the incident browser come from [`crate::web`].
pub fn router(app: App, secrets: &Secrets) -> Router {
    let webhook = app.config.deploys.webhook;
    let alerts = app.config.alerts.enabled;
    let web = crate::web::router(app.clone(), secrets);
    let edge = Arc::new(Edge {
        verifier: secrets.deploy_webhook_secret.as_deref().map(Verifier::new),
        alerts_token: secrets.alerts_token.clone(),
        app,
    });
    let mut router = Router::new().route("/healthz", get(healthz));
    if webhook {
        router = router.route(
            "/hooks/deploy",
            post(deploy_hook).layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
        );
    }
    if alerts {
        router = router.route(
            "/hooks/alertmanager",
            post(alert_hook).layer(DefaultBodyLimit::max(ALERT_BODY_BYTES)),
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
    if app.config.alerts.enabled && secrets.alerts_token.is_none() {
        tracing::warn!("[alerts] enabled is on but {ALERTS_TOKEN_ENV} is not set; refusing alerts");
    }
    tracing::info!(%addr, webhook = app.config.deploys.webhook, alerts = app.config.alerts.enabled, "HTTP edge listening");
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

/// Which sender a delivery came from, for the timeline's actor.
fn sender(d: &Delivery) -> &'static str {
    if d.org_id.is_some() || d.version.as_deref() == Some("1") {
        "grafana"
    } else {
        "alertmanager"
    }
}

/// Token first (nothing is read for a stranger), then the size, the shape, and the delivery;
/// 200 only once what it changed is on disk. A failure of ours answers 5xx, which Alertmanager
/// and Grafana retry.
async fn alert_hook(State(edge): State<Arc<Edge>>, req: Request) -> Response {
    let Some(token) = &edge.alerts_token else {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the alert webhook has no token yet; the operator must set {ALERTS_TOKEN_ENV}"),
        );
    };
    let presented = header_text(req.headers(), header::AUTHORIZATION.as_str())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    if !presented.is_some_and(|p| crate::web::auth::same(p.as_bytes(), token.trim().as_bytes())) {
        tracing::info!("alert delivery refused: missing or wrong bearer token");
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "send `Authorization: Bearer <token>` (Alertmanager: http_config.authorization.credentials)\n",
        )
            .into_response();
    }
    let declared = header_text(req.headers(), header::CONTENT_LENGTH.as_str())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = || {
        text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than {ALERT_BODY_BYTES} bytes; lower max_alerts in the webhook config"),
        )
    };
    if declared.is_some_and(|n| n > ALERT_BODY_BYTES as u64) {
        return too_large();
    }
    let body = match Bytes::from_request(req, &()).await {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return too_large(),
        Err(e) => return text(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let delivery = match Delivery::parse(&body) {
        Ok(d) => d,
        Err(e) => {
            tracing::info!(error = %e, "alert delivery refused");
            return text(StatusCode::BAD_REQUEST, e.to_string());
        }
    };
    match crate::commands::alert::ingest(&edge.app, &delivery, sender(&delivery)).await {
        Ok(outcome) => text(StatusCode::OK, format!("ok: {outcome}")),
        Err(e) => {
            let error_id = crate::error::error_id();
            tracing::error!(%error_id, error = %e, "an alert delivery failed");
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("sitrep could not take this delivery now (error id {error_id}); it will be taken on retry"),
            )
        }
    }
}
