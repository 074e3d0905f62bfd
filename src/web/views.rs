//! The page templates under `templates/web/`, always rendered with HTML escaping on.
//!
//! They are built in rather than replaceable from `[templates] dir`: escaping and the
//! status page's promise of showing nothing internal live in them.

use crate::config::Config;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use minijinja::{context, AutoEscape, Environment};
use serde::Serialize;

/// Every web template, with its source.
pub const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../templates/web/base.html")),
    ("nav.html", include_str!("../../templates/web/nav.html")),
    (
        "status.html",
        include_str!("../../templates/web/status.html"),
    ),
    ("feed.xml", include_str!("../../templates/web/feed.xml")),
    ("login.html", include_str!("../../templates/web/login.html")),
    ("error.html", include_str!("../../templates/web/error.html")),
    (
        "incidents.html",
        include_str!("../../templates/web/incidents.html"),
    ),
    (
        "incident.html",
        include_str!("../../templates/web/incident.html"),
    ),
    (
        "postmortem.html",
        include_str!("../../templates/web/postmortem.html"),
    ),
];

const STYLESHEET: &str = include_str!("../../templates/web/web.css");

/// How long a browser or a proxy may keep a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cache {
    /// The public status page: anyone may keep it briefly, but must ask again after that.
    Public,
    /// Anything behind the admin token: nobody keeps it.
    Private,
}

impl Cache {
    fn header(self) -> &'static str {
        match self {
            Cache::Public => "public, max-age=15",
            Cache::Private => "private, no-store",
        }
    }
}

pub struct Views {
    env: Environment<'static>,
    stylesheet: String,
}

fn parse(value: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// `2026-11-21 10:04 UTC`: absolute, so that readers in any zone agree on it.
pub fn utc(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn utc_filter(value: String) -> String {
    parse(&value).map(utc).unwrap_or(value)
}

fn utc_seconds_filter(value: String) -> String {
    parse(&value)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or(value)
}

/// The machine-readable form for `<time datetime>` and Atom.
fn iso_filter(value: String) -> String {
    parse(&value)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or(value)
}

/// Severity colours from config; only well-formed `#rrggbb` values reach the stylesheet.
fn severity_rules(config: &Config) -> String {
    let mut css = String::new();
    for (key, sev) in &config.severities {
        let Some(rgb) = sev.colour_value() else {
            continue;
        };
        if key.chars().all(|c| c.is_ascii_alphanumeric()) {
            css.push_str(&format!(
                ".sev-{} {{ --sev: #{rgb:06x}; }}\n",
                key.to_ascii_lowercase()
            ));
        }
    }
    css
}

impl Views {
    pub fn new(config: &Config) -> Views {
        let mut env = Environment::new();
        // Every template is HTML or XML, and every value in it comes from people: escape all.
        env.set_auto_escape_callback(|_| AutoEscape::Html);
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.add_filter("utc", utc_filter);
        env.add_filter("utc_seconds", utc_seconds_filter);
        env.add_filter("iso", iso_filter);
        env.add_global("site_title", config.status_page.title.clone());
        for (name, source) in TEMPLATES {
            // Built in and covered by tests: a parse error here is a bug in this build.
            env.add_template(name, source)
                .unwrap_or_else(|e| panic!("templates/web/{name}: {e}"));
        }
        Views {
            env,
            stylesheet: format!("{STYLESHEET}\n{}", severity_rules(config)),
        }
    }

    pub fn stylesheet(&self) -> &str {
        &self.stylesheet
    }

    pub fn render<S: Serialize>(&self, name: &str, ctx: S) -> Result<String, minijinja::Error> {
        self.env.get_template(name)?.render(ctx)
    }

    /// An HTML page; a template that fails is logged and answered with a short error.
    pub fn page<S: Serialize>(
        &self,
        status: StatusCode,
        name: &str,
        ctx: S,
        cache: Cache,
    ) -> Response {
        match self.render(name, ctx) {
            Ok(body) => with_type(status, "text/html; charset=utf-8", body, cache),
            Err(e) => {
                let id = crate::error::error_id();
                tracing::error!(error_id = %id, template = name, error = %e, "rendering a page failed");
                with_type(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "text/plain; charset=utf-8",
                    format!("internal error (id {id}); the bot's log has the details\n"),
                    Cache::Private,
                )
            }
        }
    }

    pub fn error_page(&self, status: StatusCode, title: &str, message: &str) -> Response {
        self.page(
            status,
            "error.html",
            context! { title, message },
            Cache::Private,
        )
    }
}

/// A body with its type and caching rule.
pub fn with_type(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<axum::body::Body>,
    cache: Cache,
) -> Response {
    let mut res = (status, body.into()).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache.header()),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses_and_escapes() {
        let views = Views::new(&Config::default());
        let out = views
            .render(
                "error.html",
                context! { title => "<b>x</b>", message => "\"><img src=x onerror=alert(1)>" },
            )
            .unwrap();
        assert!(out.contains("&lt;b&gt;x&lt;&#x2f;b&gt;"), "{out}");
        assert!(!out.contains("<img src=x"), "{out}");
    }

    #[test]
    fn times_are_absolute_utc() {
        assert_eq!(
            utc_filter("2026-11-21T10:04:05+01:00".into()),
            "2026-11-21 09:04 UTC"
        );
        assert_eq!(
            utc_seconds_filter("2026-11-21T10:04:05Z".into()),
            "2026-11-21 10:04:05 UTC"
        );
        assert_eq!(
            iso_filter("2026-11-21T10:04:05.250Z".into()),
            "2026-11-21T10:04:05Z"
        );
        assert_eq!(utc_filter("not a time".into()), "not a time");
    }

    #[test]
    fn only_wellformed_colours_reach_the_stylesheet() {
        let mut c = Config::default();
        c.severities.get_mut("SEV2").unwrap().colour = "red; } body { display:none".into();
        let css = severity_rules(&c);
        assert!(css.contains(".sev-sev1 { --sev: #d0021b; }"), "{css}");
        assert!(!css.contains("sev2") && !css.contains("display"), "{css}");
    }
}
