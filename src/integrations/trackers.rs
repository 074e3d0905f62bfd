//! Action items as issues: filed in GitHub Issues or Jira Cloud, and their state read back.
//!
//! GitHub: `POST /repos/{owner}/{repo}/issues` (REST API 2022-11-28), then each issue read with
//! `GET /repos/{owner}/{repo}/issues/{number}` and the ETag of the last answer, so that an
//! unchanged issue costs a 304 that GitHub does not count against the rate limit. Jira Cloud:
//! `POST /rest/api/3/issue` with an Atlassian Document Format description, and every filed key
//! read back in one `GET /rest/api/3/search/jql?jql=key in (...)` asking only for status and
//! resolution. Tokens go in headers only, never in a URL, a log line or an error.

use crate::config::{Secrets, TrackerKind, TrackersConfig};
use chrono::{DateTime, Utc};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use super::github::{API_VERSION, MEDIA_TYPE, TOKEN_ENV};

/// Jira's summary field holds at most 255 characters; GitHub's title has no documented limit,
/// but a title is not a place for a paragraph either.
pub const MAX_TITLE: usize = 255;
/// Keys per Jira search: JQL stays short and one page answers it.
pub const JIRA_KEYS_PER_SEARCH: usize = 50;
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum TrackerError {
    /// Not set up, or set up without its secret: worded for the person who asked.
    #[error("{0}")]
    NotSetUp(String),
    #[error("{tracker}: {message}")]
    Remote {
        tracker: &'static str,
        message: String,
    },
    #[error("{tracker} at {url}: {message}")]
    Transport {
        tracker: &'static str,
        url: String,
        message: String,
    },
}

/// What an action item's issue says.
#[derive(Debug, Clone, PartialEq)]
pub struct NewIssue {
    /// `INC-7`
    pub incident: String,
    pub incident_title: String,
    pub severity: String,
    /// The action item's text.
    pub text: String,
    /// The owner as the chat knows them, and their Discord id (for the assignee table).
    pub owner: Option<(u64, String)>,
    pub due: Option<DateTime<Utc>>,
    /// Where the incident is read in sitrep's browser, when that address is known.
    pub link: Option<String>,
    /// The incident's resolution or summary: the context the item came from.
    pub context: Option<String>,
}

impl NewIssue {
    fn title(&self) -> String {
        let t = format!("[{}] {}", self.incident, self.text.replace('\n', " "));
        if t.chars().count() <= MAX_TITLE {
            t
        } else {
            let mut s: String = t.chars().take(MAX_TITLE - 1).collect();
            s.push('…');
            s
        }
    }

    /// The lines both trackers say, as (label, value).
    fn facts(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![(
            "Incident",
            format!(
                "{} · {} · {}",
                self.incident, self.severity, self.incident_title
            ),
        )];
        if let Some(c) = &self.context {
            out.push(("Context", c.clone()));
        }
        if let Some((_, name)) = &self.owner {
            out.push(("Owner", name.clone()));
        }
        if let Some(d) = self.due {
            out.push(("Due", d.format("%Y-%m-%d").to_string()));
        }
        out
    }

    /// GitHub Markdown. GitHub issues have no due date, so it is said here.
    fn markdown(&self) -> String {
        let mut s = format!("Action item from incident {}:\n\n", self.incident);
        for line in self.text.lines() {
            s.push_str(&format!("> {line}\n"));
        }
        s.push('\n');
        for (label, value) in self.facts() {
            s.push_str(&format!("- **{label}:** {value}\n"));
        }
        if let Some(link) = &self.link {
            s.push_str(&format!("\n[{} in sitrep]({link})\n", self.incident));
        }
        s.push_str("\nFiled by sitrep; closing this issue marks the action item done.\n");
        s
    }

    /// An Atlassian Document Format document: Jira Cloud's v3 API takes rich text only so.
    fn adf(&self) -> Value {
        let text = |t: &str| json!({"type": "text", "text": t});
        let strong = |t: &str| json!({"type": "text", "text": t, "marks": [{"type": "strong"}]});
        let mut content = vec![
            json!({"type": "paragraph", "content": [text(&format!("Action item from incident {}:", self.incident))]}),
            json!({"type": "blockquote", "content": [
                {"type": "paragraph", "content": [text(&self.text)]}
            ]}),
        ];
        let items: Vec<Value> = self
            .facts()
            .into_iter()
            .map(|(label, value)| {
                json!({"type": "listItem", "content": [
                    {"type": "paragraph", "content": [strong(&format!("{label}: ")), text(&value)]}
                ]})
            })
            .collect();
        content.push(json!({"type": "bulletList", "content": items}));
        if let Some(link) = &self.link {
            content.push(json!({"type": "paragraph", "content": [{
                "type": "text",
                "text": format!("{} in sitrep", self.incident),
                "marks": [{"type": "link", "attrs": {"href": link}}]
            }]}));
        }
        content.push(json!({"type": "paragraph", "content": [text(
            "Filed by sitrep; resolving this issue marks the action item done."
        )]}));
        json!({"version": 1, "type": "doc", "content": content})
    }
}

/// Where an issue was filed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filed {
    pub tracker: TrackerKind,
    /// `acme/checkout#12` or `OPS-7`.
    pub key: String,
    pub url: String,
}

/// An issue's state as its tracker words it, and whether that means done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueState {
    pub state: String,
    pub done: bool,
}

/// What one read-back did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReadReport {
    pub requests: usize,
    pub not_modified: usize,
    pub errors: Vec<String>,
}

#[derive(Deserialize)]
struct GhIssue {
    number: u64,
    html_url: String,
    state: String,
    #[serde(default)]
    state_reason: Option<String>,
}

#[derive(Deserialize)]
struct JiraCreated {
    key: String,
}

#[derive(Deserialize)]
struct JiraSearch {
    #[serde(default)]
    issues: Vec<JiraIssue>,
    #[serde(default, rename = "nextPageToken")]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct JiraIssue {
    key: String,
    fields: JiraFields,
}

#[derive(Deserialize)]
struct JiraFields {
    status: Option<JiraStatus>,
    #[serde(default)]
    resolution: Option<Value>,
}

#[derive(Deserialize)]
struct JiraStatus {
    name: String,
    #[serde(rename = "statusCategory")]
    category: Option<JiraCategory>,
}

#[derive(Deserialize)]
struct JiraCategory {
    key: String,
}

/// The clients of the configured trackers.
pub struct Trackers {
    http: reqwest::Client,
    config: TrackersConfig,
    github_token: Option<String>,
    jira_auth: Option<(String, String)>,
    /// Per issue URL: the ETag of GitHub's last answer and the state it said.
    etags: Mutex<HashMap<String, (String, IssueState)>>,
}

impl std::fmt::Debug for Trackers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trackers")
            .field("filing", &self.config.filing())
            .finish_non_exhaustive()
    }
}

impl Trackers {
    /// The clients, when `[trackers]` sets one up; `None` otherwise.
    pub fn new(
        config: &TrackersConfig,
        secrets: &Secrets,
    ) -> Result<Option<Trackers>, TrackerError> {
        if config.github.is_none() && config.jira.is_none() {
            return Ok(None);
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("sitrep/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(std::time::Duration::from_secs(10))
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| TrackerError::NotSetUp(e.to_string()))?;
        Ok(Some(Trackers {
            http,
            config: config.clone(),
            github_token: secrets.github_token.clone(),
            jira_auth: secrets.jira_email.clone().zip(secrets.jira_token.clone()),
            etags: Mutex::new(HashMap::new()),
        }))
    }

    /// The tracker new items go to.
    pub fn filing(&self) -> Option<TrackerKind> {
        self.config.filing()
    }

    /// Files `issue` in the tracker new items go to.
    pub async fn file(&self, issue: &NewIssue) -> Result<Filed, TrackerError> {
        match self.filing() {
            Some(TrackerKind::GitHub) => self.file_github(issue).await,
            Some(TrackerKind::Jira) => self.file_jira(issue).await,
            None => Err(TrackerError::NotSetUp(
                "No tracker is set up to file in; see [trackers] in the configuration.".into(),
            )),
        }
    }

    async fn file_github(&self, issue: &NewIssue) -> Result<Filed, TrackerError> {
        let g = self.config.github.as_ref().expect("filing() said github");
        let token = self.github_token.as_deref().ok_or_else(|| {
            TrackerError::NotSetUp(format!(
                "GitHub Issues is set up, but {TOKEN_ENV} is not set in the bot's environment."
            ))
        })?;
        let url = format!(
            "{}/repos/{}/issues",
            g.api_base.trim_end_matches('/'),
            g.repository
        );
        let mut body = json!({"title": issue.title(), "body": issue.markdown()});
        if !g.labels.is_empty() {
            body["labels"] = json!(g.labels);
        }
        if let Some(login) = issue
            .owner
            .as_ref()
            .and_then(|(id, _)| self.config.assignee(TrackerKind::GitHub, *id))
        {
            body["assignees"] = json!([login]);
        }
        let resp = self
            .http
            .post(&url)
            .header(ACCEPT, MEDIA_TYPE)
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .header("X-GitHub-Api-Version", API_VERSION)
            .json(&body)
            .send()
            .await
            .map_err(|e| transport("GitHub", &url, e))?;
        let (status, bytes) = read("GitHub", &url, resp).await?;
        if status != StatusCode::CREATED {
            return Err(remote("GitHub", &url, status, &bytes));
        }
        let created: GhIssue = parse("GitHub", &url, &bytes)?;
        Ok(Filed {
            tracker: TrackerKind::GitHub,
            key: format!("{}#{}", g.repository, created.number),
            url: created.html_url,
        })
    }

    async fn file_jira(&self, issue: &NewIssue) -> Result<Filed, TrackerError> {
        let j = self.config.jira.as_ref().expect("filing() said jira");
        let (email, token) = self.jira()?;
        let site = j.site.trim_end_matches('/');
        let url = format!("{site}/rest/api/3/issue");
        let mut fields = json!({
            "project": {"key": j.project},
            "issuetype": {"name": j.issue_type},
            "summary": issue.title(),
            "description": issue.adf(),
        });
        if let Some(d) = issue.due {
            fields["duedate"] = json!(d.format("%Y-%m-%d").to_string());
        }
        if let Some(account) = issue
            .owner
            .as_ref()
            .and_then(|(id, _)| self.config.assignee(TrackerKind::Jira, *id))
        {
            fields["assignee"] = json!({"accountId": account});
        }
        let resp = self
            .http
            .post(&url)
            .header(ACCEPT, "application/json")
            .header(CONTENT_TYPE, "application/json")
            .basic_auth(email, Some(token))
            .body(json!({"fields": fields}).to_string())
            .send()
            .await
            .map_err(|e| transport("Jira", &url, e))?;
        let (status, bytes) = read("Jira", &url, resp).await?;
        if status != StatusCode::CREATED {
            return Err(remote("Jira", &url, status, &bytes));
        }
        let created: JiraCreated = parse("Jira", &url, &bytes)?;
        Ok(Filed {
            tracker: TrackerKind::Jira,
            url: format!("{site}/browse/{}", created.key),
            key: created.key,
        })
    }

    fn jira(&self) -> Result<(&str, &str), TrackerError> {
        self.jira_auth
            .as_ref()
            .map(|(e, t)| (e.as_str(), t.as_str()))
            .ok_or_else(|| {
                TrackerError::NotSetUp(format!(
                    "Jira is set up, but {} and {} are not both set in the bot's environment.",
                    crate::config::JIRA_EMAIL_ENV,
                    crate::config::JIRA_TOKEN_ENV
                ))
            })
    }

    /// The state of each issue in `keys` (as [`Filed::key`] names them) in `tracker`; an
    /// issue that could not be read is left out, and why is in the report.
    pub async fn states(
        &self,
        tracker: TrackerKind,
        keys: &[String],
    ) -> (BTreeMap<String, IssueState>, ReadReport) {
        let mut report = ReadReport::default();
        let mut out = BTreeMap::new();
        match tracker {
            TrackerKind::GitHub => {
                for key in keys {
                    match self.github_state(key, &mut report).await {
                        Ok(s) => {
                            out.insert(key.clone(), s);
                        }
                        Err(e) => report.errors.push(e.to_string()),
                    }
                }
            }
            TrackerKind::Jira => {
                let (keys, odd): (Vec<String>, Vec<String>) =
                    keys.iter().cloned().partition(|k| jira_key(k));
                for k in odd {
                    report
                        .errors
                        .push(format!("Jira: {k:?} is not an issue key"));
                }
                for chunk in keys.chunks(JIRA_KEYS_PER_SEARCH) {
                    match self.jira_states(chunk, &mut report).await {
                        Ok(found) => out.extend(found),
                        Err(e) => report.errors.push(e.to_string()),
                    }
                }
            }
        }
        (out, report)
    }

    async fn github_state(
        &self,
        key: &str,
        report: &mut ReadReport,
    ) -> Result<IssueState, TrackerError> {
        let api_base = self
            .config
            .github
            .as_ref()
            .map(|g| g.api_base.trim_end_matches('/').to_string())
            .ok_or_else(|| TrackerError::NotSetUp(format!("{key}: [trackers.github] is gone")))?;
        let token = self.github_token.as_deref().ok_or_else(|| {
            TrackerError::NotSetUp(format!("{TOKEN_ENV} is not set; {key} cannot be read"))
        })?;
        let (repo, number) = key.rsplit_once('#').ok_or_else(|| TrackerError::Remote {
            tracker: "GitHub",
            message: format!("{key} is not owner/name#number"),
        })?;
        let url = format!("{api_base}/repos/{repo}/issues/{number}");
        let known = self.etags.lock().expect("not poisoned").get(&url).cloned();
        let mut req = self
            .http
            .get(&url)
            .header(ACCEPT, MEDIA_TYPE)
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .header("X-GitHub-Api-Version", API_VERSION);
        if let Some((etag, _)) = &known {
            req = req.header(IF_NONE_MATCH, etag);
        }
        report.requests += 1;
        let resp = req.send().await.map_err(|e| transport("GitHub", &url, e))?;
        if resp.status() == StatusCode::NOT_MODIFIED {
            if let Some((_, state)) = known {
                report.not_modified += 1;
                return Ok(state);
            }
        }
        let etag = resp
            .headers()
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let (status, bytes) = read("GitHub", &url, resp).await?;
        if status != StatusCode::OK {
            return Err(remote("GitHub", &url, status, &bytes));
        }
        let issue: GhIssue = parse("GitHub", &url, &bytes)?;
        let done = issue.state == "closed";
        let state = match (done, issue.state_reason.as_deref()) {
            (true, Some("not_planned")) => "closed (not planned)".to_string(),
            _ => issue.state,
        };
        let state = IssueState { state, done };
        if let Some(etag) = etag {
            self.etags
                .lock()
                .expect("not poisoned")
                .insert(url, (etag, state.clone()));
        }
        Ok(state)
    }

    async fn jira_states(
        &self,
        keys: &[String],
        report: &mut ReadReport,
    ) -> Result<BTreeMap<String, IssueState>, TrackerError> {
        let site = self
            .config
            .jira
            .as_ref()
            .map(|j| j.site.trim_end_matches('/').to_string())
            .ok_or_else(|| TrackerError::NotSetUp("[trackers.jira] is gone".into()))?;
        let (email, token) = self.jira()?;
        let url = format!("{site}/rest/api/3/search/jql");
        // Keys are checked before they are stored (PROJECT-NUMBER), so they need no quoting.
        let jql = format!("key in ({})", keys.join(","));
        let mut out = BTreeMap::new();
        let mut page: Option<String> = None;
        loop {
            let mut query = vec![
                ("jql", jql.clone()),
                ("fields", "status,resolution".to_string()),
                ("maxResults", JIRA_KEYS_PER_SEARCH.to_string()),
            ];
            if let Some(p) = &page {
                query.push(("nextPageToken", p.clone()));
            }
            report.requests += 1;
            let resp = self
                .http
                .get(&url)
                .query(&query)
                .header(ACCEPT, "application/json")
                .basic_auth(email, Some(token))
                .send()
                .await
                .map_err(|e| transport("Jira", &url, e))?;
            let (status, bytes) = read("Jira", &url, resp).await?;
            if status != StatusCode::OK {
                return Err(remote("Jira", &url, status, &bytes));
            }
            let found: JiraSearch = parse("Jira", &url, &bytes)?;
            for i in found.issues {
                let (name, category) = match &i.fields.status {
                    Some(s) => (s.name.clone(), s.category.as_ref().map(|c| c.key.as_str())),
                    None => ("unknown".to_string(), None),
                };
                let done = category == Some("done")
                    || i.fields.resolution.as_ref().is_some_and(|r| !r.is_null());
                out.insert(i.key, IssueState { state: name, done });
            }
            match found.next_page_token {
                Some(t) if !t.is_empty() && page.as_deref() != Some(&t) => page = Some(t),
                _ => break,
            }
        }
        Ok(out)
    }
}

/// Whether `key` is a Jira issue key (`OPS-7`), safe to put in JQL unquoted.
pub fn jira_key(key: &str) -> bool {
    key.split_once('-').is_some_and(|(p, n)| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            && !n.is_empty()
            && n.chars().all(|c| c.is_ascii_digit())
    })
}

fn transport(tracker: &'static str, url: &str, e: reqwest::Error) -> TrackerError {
    TrackerError::Transport {
        tracker,
        url: url.to_string(),
        message: e.without_url().to_string(),
    }
}

async fn read(
    tracker: &'static str,
    url: &str,
    resp: reqwest::Response,
) -> Result<(StatusCode, Vec<u8>), TrackerError> {
    let status = resp.status();
    let bytes = resp.bytes().await.map_err(|e| transport(tracker, url, e))?;
    if bytes.len() > MAX_BODY_BYTES {
        return Err(TrackerError::Remote {
            tracker,
            message: format!("{url} answered {} bytes; more than expected", bytes.len()),
        });
    }
    Ok((status, bytes.to_vec()))
}

fn parse<T: serde::de::DeserializeOwned>(
    tracker: &'static str,
    url: &str,
    body: &[u8],
) -> Result<T, TrackerError> {
    serde_json::from_slice(body).map_err(|e| TrackerError::Remote {
        tracker,
        message: format!("{url} answered JSON of an unexpected shape: {e}"),
    })
}

/// A refusal, with what the tracker said: GitHub's `message`, Jira's `errorMessages` and
/// `errors` (field by field).
fn remote(tracker: &'static str, url: &str, status: StatusCode, body: &[u8]) -> TrackerError {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let mut said: Vec<String> = Vec::new();
    if let Some(m) = v["message"].as_str() {
        said.push(m.to_string());
    }
    for m in v["errorMessages"].as_array().into_iter().flatten() {
        if let Some(m) = m.as_str() {
            said.push(m.to_string());
        }
    }
    if let Some(errors) = v["errors"].as_object() {
        for (field, m) in errors {
            said.push(format!("{field}: {}", m.as_str().unwrap_or_default()));
        }
    }
    let why = match status {
        StatusCode::UNAUTHORIZED => format!("{url} refused sitrep's credentials (401)"),
        StatusCode::FORBIDDEN => format!("{url} denied access (403)"),
        StatusCode::NOT_FOUND => format!("{url} was not found (404)"),
        _ => format!("{url} answered {status}"),
    };
    let said: String = said.join("; ").chars().take(300).collect();
    TrackerError::Remote {
        tracker,
        message: if said.is_empty() {
            why
        } else {
            format!("{why}: {said}")
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn issue() -> NewIssue {
        NewIssue {
            incident: "INC-3".into(),
            incident_title: "Checkout down".into(),
            severity: "SEV1".into(),
            text: "Add an alert on replica lag".into(),
            owner: Some((111, "alice".into())),
            due: Some(Utc.with_ymd_and_hms(2026, 12, 10, 17, 0, 0).unwrap()),
            link: Some("https://sitrep.example.com/incidents/INC-3".into()),
            context: Some("Replica lag stalled checkout".into()),
        }
    }

    #[test]
    fn github_body_says_the_due_date_and_links_back() {
        let md = issue().markdown();
        for needle in [
            "> Add an alert on replica lag",
            "**Due:** 2026-12-10",
            "**Owner:** alice",
            "**Context:** Replica lag stalled checkout",
            "(https://sitrep.example.com/incidents/INC-3)",
        ] {
            assert!(md.contains(needle), "{needle:?} in {md}");
        }
        assert_eq!(issue().title(), "[INC-3] Add an alert on replica lag");
        let long = NewIssue {
            text: "x".repeat(400),
            ..issue()
        };
        assert_eq!(long.title().chars().count(), MAX_TITLE);
    }

    #[test]
    fn jira_description_is_a_document() {
        let d = issue().adf();
        assert_eq!(d["type"], "doc");
        assert_eq!(d["version"], 1);
        let text = d.to_string();
        assert!(text.contains(r#""href":"https://sitrep.example.com/incidents/INC-3""#));
        assert!(text.contains("2026-12-10"));
    }

    #[test]
    fn jira_keys_are_checked_before_jql() {
        assert!(jira_key("OPS-7"));
        assert!(jira_key("A1_B-12"));
        assert!(!jira_key("OPS-7) OR (1=1"));
        assert!(!jira_key("ops-7"));
        assert!(!jira_key("OPS-"));
    }
}
