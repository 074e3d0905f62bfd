//! Pages on the HTTP edge: the public status page, the token-protected incident browser, metrics.
//!
//! - [`status`]: `/status`, `/status.json` and `/status/feed.atom`, built only from what was
//!   posted to the stakeholder channel (see [`status::PublicIncident`]). Public when
//!   `[status_page] enabled = true`; otherwise only for people signed in.
//! - [`browser`]: `/incidents` (filters), `/incidents/INC-7` (the whole timeline) and
//!   `/incidents/INC-7/postmortem` (the latest draft as HTML, its versions, the `.md`).
//! - [`telemetry`]: `/metrics`, the bot's own health for Prometheus, behind the admin token.
//! - [`auth`]: `SITREP_HTTP_ADMIN_TOKEN`, through a sign-in form that sets an HttpOnly,
//!   SameSite=Strict session cookie, or as a bearer token for scripts.
//!
//! Every page is rendered server-side from `templates/web/` with HTML escaping on, needs no
//! JavaScript, and goes out with a Content-Security-Policy that allows no script at all, so that
//! text from chat stays text even if a template forgot to escape it.

pub mod auth;
pub mod browser;
pub mod markdown;
pub mod status;
pub mod telemetry;
pub mod views;

use crate::app::App;
use crate::config::Secrets;
use crate::error::error_id;
use auth::Auth;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;
use views::Views;

/// What every page handler reaches.
pub struct Web {
    pub app: App,
    pub views: Views,
    pub auth: Auth,
}

/// The status page, the incident browser and their sign-in, for merging into the HTTP edge.
pub fn router(app: App, secrets: &Secrets) -> Router {
    let web = Arc::new(Web {
        views: Views::new(&app.config),
        auth: Auth::new(secrets.http_admin_token.as_deref(), &app.config),
        app,
    });
    Router::new()
        .route("/", get(home))
        .route("/status", get(status::page))
        .route("/status.json", get(status::json))
        .route("/status/feed.atom", get(status::feed))
        .route("/web.css", get(stylesheet))
        .route("/login", get(auth::login_form).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/incidents", get(browser::list))
        .route("/incidents/:id", get(browser::incident))
        .route("/incidents/:id/postmortem", get(browser::postmortem))
        .route("/incidents/:id/postmortem.md", get(browser::postmortem_md))
        .route("/postmortems/:file", get(browser::postmortem_export))
        .route("/incidents/:id/charts/:file", get(browser::chart))
        .route("/metrics", get(telemetry::metrics))
        .layer(axum::middleware::map_response(harden))
        .with_state(web)
}

/// The status page is what most people arriving here want.
async fn home() -> Redirect {
    Redirect::to("/status")
}

async fn stylesheet(State(web): State<Arc<Web>>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        web.views.stylesheet().to_string(),
    )
        .into_response()
}

/// Allows styles and images from this origin only, and no script, frame or plugin anywhere.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Headers that keep a page inert even where something slipped through escaping.
async fn harden(mut res: Response) -> Response {
    let h = res.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    }
    res
}

/// A failure of ours, logged with an id when it was made: answers carry only the id, as a page
/// ([`Internal::page`]) or as text (its `Display`).
pub(crate) struct Internal(String);

/// Logs a failure of ours with an id, for an answer that says only the id.
pub(crate) fn internal(what: &str, e: impl std::fmt::Display) -> Internal {
    let id = error_id();
    tracing::error!(error_id = %id, error = %e, "{what}");
    Internal(id)
}

impl Internal {
    /// The answer for a browser.
    pub(crate) fn page(self, web: &Web) -> Response {
        web.views.error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            &format!(
                "The page could not be made (error id {}); the bot's log has the details.",
                self.0
            ),
        )
    }
}

impl std::fmt::Display for Internal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "internal error (id {}); the bot's log has the details",
            self.0
        )
    }
}
