//! GitHub deployments and their statuses, polled with conditional requests into the `deploys` tree.
//!
//! Each poll asks for a repository's recent deployments with the ETag of the last answer, so an
//! idle repository costs a 304 that GitHub does not count against the rate limit. A deployment is
//! followed through its statuses until it settles (success, failure, error, inactive) or is a
//! day old; its record is replaced as its status changes, never duplicated.

use crate::clock::Clock;
use crate::config::{GitHubConfig, Secrets};
use crate::integrations::deploys::check_url;
use crate::store::{Deploy, DeploySource, Store, StoreError};
use chrono::{DateTime, Duration, Utc};
use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION, ETAG, IF_NONE_MATCH, RETRY_AFTER};
use reqwest::StatusCode;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;

pub const TOKEN_ENV: &str = "SITREP_GITHUB_TOKEN";
/// The REST API version these shapes were written against.
pub const API_VERSION: &str = "2022-11-28";
pub const MEDIA_TYPE: &str = "application/vnd.github+json";
/// Deployments read per repository and poll: the newest page, enough at any sane poll interval.
pub const DEPLOYMENTS_PER_PAGE: u32 = 30;
/// GitHub's page maximum; statuses are few, and their order is not relied on.
pub const STATUSES_PER_PAGE: u32 = 100;
/// A deployment still unsettled after this long is taken as abandoned and no longer followed.
const FOLLOW_FOR_HOURS: i64 = 24;
const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum GitHubError {
    #[error("GitHub: {0}")]
    Remote(String),
    #[error("GitHub at {url}: {message}")]
    Transport { url: String, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one poll did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PollReport {
    pub requests: usize,
    pub not_modified: usize,
    /// Deploys stored for the first time.
    pub new: usize,
    /// Deploys whose stored record changed (a newer status).
    pub updated: usize,
    /// Skipped because GitHub asked us to wait (rate limit).
    pub paused: bool,
    pub errors: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct GhUser {
    login: String,
}

#[derive(Debug, Deserialize)]
struct GhDeployment {
    id: u64,
    sha: String,
    #[serde(rename = "ref")]
    git_ref: String,
    environment: String,
    creator: Option<GhUser>,
    created_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize)]
struct GhStatus {
    id: u64,
    state: String,
    created_at: DateTime<Utc>,
    #[serde(default)]
    log_url: Option<String>,
    #[serde(default)]
    environment_url: Option<String>,
    #[serde(default)]
    target_url: Option<String>,
}

#[derive(Debug, Deserialize)]
struct GhError {
    message: String,
}

enum Fetched {
    NotModified,
    Body(Vec<u8>),
}

fn settled(status: Option<&str>) -> bool {
    matches!(status, Some("success" | "failure" | "error" | "inactive"))
}

/// Polls the configured repositories; keeps the ETags and the deployments still in flight.
pub struct GitHubPoller {
    http: reqwest::Client,
    api_base: String,
    token: String,
    repositories: Vec<String>,
    environments: Vec<String>,
    etags: HashMap<String, String>,
    /// Deployments whose status may still change, by identity.
    following: BTreeMap<String, Deploy>,
    paused_until: Option<DateTime<Utc>>,
}

impl GitHubPoller {
    pub fn new(config: &GitHubConfig, token: &str) -> Result<GitHubPoller, GitHubError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("sitrep/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(std::time::Duration::from_secs(10))
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| GitHubError::Transport {
                url: config.api_base.clone(),
                message: e.to_string(),
            })?;
        Ok(GitHubPoller {
            http,
            api_base: config.api_base.trim_end_matches('/').to_string(),
            token: token.to_string(),
            repositories: config
                .repositories
                .iter()
                .map(|r| r.trim().to_lowercase())
                .collect(),
            environments: config.environments.clone(),
            etags: HashMap::new(),
            following: BTreeMap::new(),
            paused_until: None,
        })
    }

    /// Reads every repository once; a failing repository does not stop the others.
    pub async fn poll_once(&mut self, store: &Store, now: DateTime<Utc>) -> PollReport {
        let mut report = PollReport::default();
        if self.paused_until.is_some_and(|t| t > now) {
            report.paused = true;
            return report;
        }
        self.paused_until = None;
        for repo in self.repositories.clone() {
            if let Err(e) = self.poll_repo(&repo, store, now, &mut report).await {
                report.errors.push(e.to_string());
            }
            if self.paused_until.is_some() {
                break;
            }
        }
        if report.new + report.updated > 0 {
            if let Err(e) = store.flush().await {
                report.errors.push(e.to_string());
            }
        }
        report
    }

    fn wanted(&self, environment: &str) -> bool {
        self.environments.is_empty()
            || self
                .environments
                .iter()
                .any(|e| e.eq_ignore_ascii_case(environment))
    }

    async fn poll_repo(
        &mut self,
        repo: &str,
        store: &Store,
        now: DateTime<Utc>,
        report: &mut PollReport,
    ) -> Result<(), GitHubError> {
        let url = format!(
            "{}/repos/{repo}/deployments?per_page={DEPLOYMENTS_PER_PAGE}",
            self.api_base
        );
        if let Fetched::Body(body) = self.get(&url, report, now).await? {
            let list: Vec<GhDeployment> = parse(&url, &body)?;
            for d in list {
                if !self.wanted(&d.environment) {
                    continue;
                }
                let deploy = from_github(repo, &d);
                let identity = deploy.identity();
                if self.following.contains_key(&identity) {
                    continue;
                }
                match store.deploy(&identity)? {
                    Some(known) if settled(known.status.as_deref()) => {}
                    Some(known) => {
                        self.following.insert(identity, known);
                    }
                    None => {
                        self.following.insert(identity, deploy);
                    }
                }
            }
        }

        let prefix = format!("{repo}#");
        let mut mine: Vec<Deploy> = self
            .following
            .values()
            .filter(|d| d.id.starts_with(&prefix))
            .cloned()
            .collect();
        mine.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| b.id.cmp(&a.id)));
        for deploy in mine {
            if let Err(e) = self.follow(repo, deploy, store, now, report).await {
                report.errors.push(e.to_string());
            }
            if self.paused_until.is_some() {
                break;
            }
        }
        Ok(())
    }

    /// Reads one deployment's statuses and stores what changed; stops following it once it has
    /// settled or is too old to matter.
    async fn follow(
        &mut self,
        repo: &str,
        mut deploy: Deploy,
        store: &Store,
        now: DateTime<Utc>,
        report: &mut PollReport,
    ) -> Result<(), GitHubError> {
        let identity = deploy.identity();
        let number = deploy.id.rsplit('#').next().unwrap_or_default().to_string();
        let url = format!(
            "{}/repos/{repo}/deployments/{number}/statuses?per_page={STATUSES_PER_PAGE}",
            self.api_base
        );
        let before = store.deploy(&identity)?;
        if deploy.time < now - Duration::hours(FOLLOW_FOR_HOURS) {
            // Old history is kept as it is, without asking about it.
            if before.is_none() && store.put_deploy(&deploy)? {
                report.new += 1;
            }
            self.following.remove(&identity);
            self.etags.remove(&url);
            return Ok(());
        }
        match self.get(&url, report, now).await? {
            Fetched::NotModified if before.is_some() => return Ok(()),
            Fetched::NotModified => {}
            Fetched::Body(body) => {
                let statuses: Vec<GhStatus> = parse(&url, &body)?;
                if let Some(latest) = statuses.iter().max_by_key(|s| (s.created_at, s.id)) {
                    deploy.status = Some(latest.state.to_lowercase());
                    deploy.url = [&latest.log_url, &latest.environment_url, &latest.target_url]
                        .into_iter()
                        .find_map(|u| check_url("url", u.clone()).ok().flatten());
                }
            }
        }
        if before.as_ref() != Some(&deploy) {
            match store.put_deploy(&deploy)? {
                true => report.new += 1,
                false => report.updated += 1,
            }
        }
        if settled(deploy.status.as_deref()) {
            self.following.remove(&identity);
            self.etags.remove(&url);
        } else {
            self.following.insert(identity, deploy);
        }
        Ok(())
    }

    /// One conditional GET with GitHub's documented headers. The token goes in a header only,
    /// so that no URL, log line or error message carries it.
    async fn get(
        &mut self,
        url: &str,
        report: &mut PollReport,
        now: DateTime<Utc>,
    ) -> Result<Fetched, GitHubError> {
        let mut req = self
            .http
            .get(url)
            .header(ACCEPT, MEDIA_TYPE)
            .header(AUTHORIZATION, format!("Bearer {}", self.token))
            .header("X-GitHub-Api-Version", API_VERSION);
        if let Some(etag) = self.etags.get(url) {
            req = req.header(IF_NONE_MATCH, etag);
        }
        report.requests += 1;
        let transport = |e: reqwest::Error| GitHubError::Transport {
            url: url.to_string(),
            message: e.without_url().to_string(),
        };
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        if status == StatusCode::NOT_MODIFIED {
            report.not_modified += 1;
            return Ok(Fetched::NotModified);
        }
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map_err(transport)?;
        if status.is_success() {
            if body.len() > MAX_BODY_BYTES {
                return Err(GitHubError::Remote(format!(
                    "{url} answered {} bytes; more than expected",
                    body.len()
                )));
            }
            match headers.get(ETAG).and_then(|v| v.to_str().ok()) {
                Some(etag) => self.etags.insert(url.to_string(), etag.to_string()),
                None => self.etags.remove(url),
            };
            return Ok(Fetched::Body(body.to_vec()));
        }
        let message = serde_json::from_slice::<GhError>(&body)
            .map(|e| e.message.chars().take(200).collect::<String>())
            .unwrap_or_default();
        if let Some(until) = rate_limited(status, &headers, now) {
            self.paused_until = Some(until);
            return Err(GitHubError::Remote(format!(
                "rate limited ({status}); polling resumes at {}",
                until.format("%H:%M:%S UTC")
            )));
        }
        let why = match status {
            StatusCode::UNAUTHORIZED => {
                format!("the token in {TOKEN_ENV} was refused (401); it may be expired or revoked")
            }
            StatusCode::FORBIDDEN => format!(
                "access denied (403) to {url}; the token needs read access to deployments"
            ),
            StatusCode::NOT_FOUND => format!(
                "{url} was not found (404): check the repository name, and that the token can see it"
            ),
            _ => format!("{url} answered {status}"),
        };
        Err(GitHubError::Remote(if message.is_empty() {
            why
        } else {
            format!("{why}: {message}")
        }))
    }
}

/// When GitHub said to come back: `Retry-After` seconds, or the reset time of an exhausted
/// primary limit. Rate limits come as 403 or 429.
fn rate_limited(
    status: StatusCode,
    headers: &HeaderMap,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if !matches!(
        status,
        StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS
    ) {
        return None;
    }
    let number =
        |name: &str| -> Option<i64> { headers.get(name)?.to_str().ok()?.trim().parse().ok() };
    if let Some(secs) = number(RETRY_AFTER.as_str()) {
        return Some(now + Duration::seconds(secs.max(1)));
    }
    if number("x-ratelimit-remaining") == Some(0) {
        let reset = number("x-ratelimit-reset")
            .and_then(|t| DateTime::from_timestamp(t, 0))
            .filter(|t| *t > now)
            .unwrap_or(now + Duration::minutes(1));
        return Some(reset);
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Some(now + Duration::minutes(1));
    }
    None
}

fn parse<T: serde::de::DeserializeOwned>(url: &str, body: &[u8]) -> Result<T, GitHubError> {
    serde_json::from_slice(body).map_err(|e| {
        GitHubError::Remote(format!("{url} answered JSON of an unexpected shape: {e}"))
    })
}

fn from_github(repo: &str, d: &GhDeployment) -> Deploy {
    let service = repo.rsplit('/').next().unwrap_or(repo).to_string();
    // A deployment of a bare commit names the commit as its ref; the short form reads better.
    let version = if d.git_ref == d.sha {
        d.sha.chars().take(7).collect()
    } else {
        d.git_ref.clone()
    };
    Deploy {
        source: DeploySource::GitHub,
        id: format!("{repo}#{}", d.id),
        service,
        version,
        commit: Some(d.sha.clone()),
        author: d.creator.as_ref().map(|c| c.login.clone()),
        environment: Some(d.environment.clone()),
        status: None,
        url: None,
        time: d.created_at,
    }
}

/// Polls every `every` until `shutdown` resolves. The first poll runs at once.
pub async fn poll(
    mut poller: GitHubPoller,
    store: Store,
    clock: Arc<dyn Clock>,
    every: std::time::Duration,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_errors: Vec<String> = Vec::new();
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tick.tick() => {}
        }
        let report = tokio::select! {
            _ = &mut shutdown => break,
            r = poller.poll_once(&store, clock.now()) => r,
        };
        // A lasting problem is logged when it starts, not once a minute.
        for e in &report.errors {
            if last_errors.contains(e) {
                tracing::debug!(error = %e, "GitHub deployments poll failed again");
            } else {
                tracing::warn!(error = %e, "GitHub deployments poll failed");
            }
        }
        if report.new + report.updated > 0 {
            tracing::info!(
                new = report.new,
                updated = report.updated,
                "deploys read from GitHub"
            );
        }
        last_errors = report.errors;
    }
}

/// Starts polling when `[github] repositories` are configured and the token is set; `None` when
/// GitHub is not configured (check-config reports a missing token).
pub fn spawn(
    config: &GitHubConfig,
    store: Store,
    clock: Arc<dyn Clock>,
    secrets: &Secrets,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Option<tokio::task::JoinHandle<()>>, GitHubError> {
    if config.repositories.is_empty() {
        return Ok(None);
    }
    let Some(token) = secrets.github_token.as_deref() else {
        tracing::warn!("[github] repositories are set but {TOKEN_ENV} is not; not polling GitHub");
        return Ok(None);
    };
    let poller = GitHubPoller::new(config, token)?;
    Ok(Some(tokio::spawn(poll(
        poller,
        store,
        clock,
        config.poll_every.0,
        shutdown,
    ))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn rate_limits_pause_polling_until_reset() {
        let now = DateTime::from_timestamp(1_795_255_200, 0).unwrap();
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
        h.insert("x-ratelimit-reset", HeaderValue::from_static("1795255500"));
        assert_eq!(
            rate_limited(StatusCode::FORBIDDEN, &h, now),
            DateTime::from_timestamp(1_795_255_500, 0)
        );
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("30"));
        assert_eq!(
            rate_limited(StatusCode::TOO_MANY_REQUESTS, &h, now),
            Some(now + Duration::seconds(30))
        );
        assert_eq!(
            rate_limited(StatusCode::FORBIDDEN, &HeaderMap::new(), now),
            None
        );
        assert_eq!(rate_limited(StatusCode::NOT_FOUND, &h, now), None);
    }

    #[test]
    fn deployments_become_deploys() {
        let d: GhDeployment = serde_json::from_value(serde_json::json!({
            "id": 42, "sha": "a84d88e7554fc1fa21bcbc4efae3c782a70d2b9d", "ref": "a84d88e7554fc1fa21bcbc4efae3c782a70d2b9d",
            "environment": "production", "creator": {"login": "octocat"},
            "created_at": "2026-11-21T10:00:00Z"
        }))
        .unwrap();
        let deploy = from_github("acme/checkout", &d);
        assert_eq!(deploy.service, "checkout");
        assert_eq!(deploy.version, "a84d88e");
        assert_eq!(deploy.identity(), "github:acme/checkout#42");
        assert!(settled(Some("inactive")) && !settled(Some("in_progress")) && !settled(None));
    }
}
