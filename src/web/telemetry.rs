//! `GET /metrics`: the bot's own telemetry for Prometheus, behind the admin token.
//!
//! It tells how many incidents of each severity are open and how busy the responders are, which
//! is the organisation's business, so it is guarded like the incident browser: Prometheus sends
//! the admin token as a bearer token (`authorization: {credentials_file: ...}` in its scrape
//! config), a signed-in person may look too.

use super::auth::{self, Access};
use super::Web;
use crate::telemetry::CONTENT_TYPE;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

pub async fn metrics(State(web): State<Arc<Web>>, headers: HeaderMap) -> Response {
    match web.auth.check(&headers, web.app.now()) {
        Access::Granted => {}
        // Whoever reads this is configuring a scraper, not browsing incidents.
        Access::Off => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "/metrics needs the admin token: the operator sets SITREP_HTTP_ADMIN_TOKEN and gives it to Prometheus as a bearer token\n",
            )
                .into_response();
        }
        access => return auth::refuse(&web, &headers, access, "/metrics"),
    }
    match web
        .app
        .telemetry
        .exposition(&web.app.store, &web.app.config, web.app.now())
        .await
    {
        Ok(text) => (
            [
                (header::CONTENT_TYPE, CONTENT_TYPE),
                (header::CACHE_CONTROL, "no-store"),
            ],
            text,
        )
            .into_response(),
        Err(e) => super::internal("writing /metrics", e).page(&web),
    }
}
