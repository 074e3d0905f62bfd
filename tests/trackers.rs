//! Action items in a tracker end to end: GitHub Issues and Jira Cloud stand-ins that check every
//! request against the documented shapes, the client against them, and the real binary filing
//! items and reading their state back, through the Discord fake and the console.
//!
//! GitHub: REST API 2022-11-28, "Create an issue" (`POST /repos/{owner}/{repo}/issues`, 201)
//! and "Get an issue" (`GET /repos/{owner}/{repo}/issues/{number}`, with ETag / If-None-Match
//! answered 304). Jira Cloud: REST v3 "Create issue" (`POST /rest/api/3/issue`, 201, rich text
//! as Atlassian Document Format) and "Search for issues using JQL enhanced search"
//! (`GET /rest/api/3/search/jql`).

mod support;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine;
use serde_json::{json, Value};
use sitrep::config::{GitHubIssuesConfig, JiraConfig, Secrets, TrackerPerson, TrackersConfig};
use sitrep::integrations::trackers::{NewIssue, Trackers};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::bot::{world, Bot, Mode};
use support::discord::{FakeDiscord, OWNER_ID};

const GITHUB_TOKEN: &str = "ghp_trackers_test_token";
const JIRA_EMAIL: &str = "sitrep@acme.test";
const JIRA_TOKEN: &str = "ATATT-jira-test-token";
const REPO: &str = "acme/checkout";

/// One request as a stand-in saw it, and the status it answered.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    query: String,
    body: Value,
    status: u16,
}

/// One issue the stand-in keeps.
#[derive(Clone, Debug)]
struct Issue {
    fields: Value,
    /// GitHub `open`/`closed`; Jira a status name.
    state: String,
    /// Bumped on every change, so that GitHub's ETag changes with it.
    version: u32,
}

#[derive(Default)]
struct Tracker {
    issues: Mutex<BTreeMap<u64, Issue>>,
    seen: Mutex<Vec<Seen>>,
    /// Everything about a request that the vendor's documentation does not allow.
    problems: Mutex<Vec<String>>,
    base: Mutex<String>,
}

impl Tracker {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn created(&self) -> Vec<Value> {
        self.seen()
            .into_iter()
            .filter(|s| s.method == "POST" && s.status == 201)
            .map(|s| s.body)
            .collect()
    }

    fn assert_well_formed(&self) {
        let p = self.problems.lock().unwrap();
        assert!(p.is_empty(), "requests the tracker would refuse: {p:#?}");
    }

    fn set_state(&self, number: u64, state: &str) {
        let mut issues = self.issues.lock().unwrap();
        let i = issues.get_mut(&number).expect("the issue was filed");
        i.state = state.into();
        i.version += 1;
    }

    fn problem(&self, p: String) {
        self.problems.lock().unwrap().push(p);
    }

    fn record(&self, req: &Parts, body: Value, status: u16) {
        self.seen.lock().unwrap().push(Seen {
            method: req.method.to_string(),
            path: req.path.clone(),
            query: req.query.clone(),
            body,
            status,
        });
    }

    async fn wait_for(&self, what: &str, pred: impl Fn(&[Seen]) -> bool) {
        for _ in 0..300 {
            if pred(&self.seen()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the tracker never saw {what}; it saw {:#?}", self.seen());
    }
}

struct Parts {
    method: Method,
    path: String,
    query: String,
    headers: HeaderMap,
}

async fn split(req: Request) -> (Parts, Bytes) {
    let (p, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    (
        Parts {
            method: p.method,
            path: p.uri.path().to_string(),
            query: p.uri.query().unwrap_or_default().to_string(),
            headers: p.headers,
        },
        bytes,
    )
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

fn json_body(problems: &mut Vec<String>, h: &HeaderMap, body: &[u8]) -> Value {
    if !header(h, "content-type").starts_with("application/json") {
        problems.push(format!(
            "Content-Type is {:?}, not application/json",
            header(h, "content-type")
        ));
    }
    serde_json::from_slice(body).unwrap_or_else(|_| {
        problems.push("body is not JSON".into());
        Value::Null
    })
}

// ----- GitHub Issues -----

fn github_headers(h: &HeaderMap) -> Result<(), (u16, Vec<String>)> {
    let mut problems = Vec::new();
    if header(h, "accept") != "application/vnd.github+json" {
        problems.push(format!(
            "Accept is {:?}, not application/vnd.github+json",
            header(h, "accept")
        ));
    }
    if header(h, "x-github-api-version") != "2022-11-28" {
        problems.push("X-GitHub-Api-Version must be 2022-11-28".into());
    }
    // GitHub refuses requests without a User-Agent.
    if header(h, "user-agent").is_empty() {
        problems.push("no User-Agent".into());
    }
    if header(h, "authorization") != format!("Bearer {GITHUB_TOKEN}") {
        return Err((401, vec!["Authorization is not the Bearer token".into()]));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err((400, problems))
    }
}

fn github_issue(base: &str, number: u64, i: &Issue) -> Value {
    let mut v = i.fields.clone();
    let html = format!("https://github.com/{REPO}/issues/{number}");
    v["id"] = json!(1_000_000 + number);
    v["node_id"] = json!(format!("I_kwDO{number}"));
    v["number"] = json!(number);
    v["url"] = json!(format!("{base}/repos/{REPO}/issues/{number}"));
    v["html_url"] = json!(html);
    v["state"] = json!(i.state);
    v["state_reason"] = if i.state == "closed" {
        json!("completed")
    } else {
        Value::Null
    };
    v["labels"] = json!(i.fields["labels"]
        .as_array()
        .map(|l| l.iter().map(|n| json!({"name": n})).collect::<Vec<_>>())
        .unwrap_or_default());
    v["assignees"] = json!(i.fields["assignees"]
        .as_array()
        .map(|l| l.iter().map(|n| json!({"login": n})).collect::<Vec<_>>())
        .unwrap_or_default());
    v
}

fn github_error(status: u16, message: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        axum::Json(json!({"message": message, "documentation_url": "https://docs.github.com/rest/issues/issues"})),
    )
        .into_response()
}

/// What "Create an issue" documents for its body.
fn check_new_github_issue(v: &Value) -> Vec<String> {
    let mut p = Vec::new();
    let Some(obj) = v.as_object() else {
        return vec!["body is not an object".into()];
    };
    for k in obj.keys() {
        if ![
            "title",
            "body",
            "assignee",
            "milestone",
            "labels",
            "assignees",
            "type",
        ]
        .contains(&k.as_str())
        {
            p.push(format!("unknown field {k}"));
        }
    }
    if v["title"].as_str().map_or(true, |t| t.trim().is_empty()) {
        p.push("title is required".into());
    }
    if !v["body"].is_null() && !v["body"].is_string() {
        p.push("body must be a string".into());
    }
    for list in ["labels", "assignees"] {
        if !v[list].is_null()
            && !v[list]
                .as_array()
                .is_some_and(|a| a.iter().all(Value::is_string))
        {
            p.push(format!("{list} must be an array of strings"));
        }
    }
    p
}

async fn github(State(t): State<Arc<Tracker>>, req: Request) -> Response {
    let (mut req, body) = split(req).await;
    // GitHub Enterprise Server's API lives under /api/v3: the stand-in answers there.
    match req.path.strip_prefix("/api/v3") {
        Some(rest) => req.path = rest.to_string(),
        None => {
            t.problem(format!("{} is not under the configured api_base", req.path));
            return github_error(404, "Not Found");
        }
    }
    let base = t.base.lock().unwrap().clone();
    if let Err((status, problems)) = github_headers(&req.headers) {
        for p in &problems {
            t.problem(format!("{} {}: {p}", req.method, req.path));
        }
        t.record(&req, Value::Null, status);
        return github_error(
            status,
            if status == 401 {
                "Bad credentials"
            } else {
                "Invalid request"
            },
        );
    }
    let issues_path = format!("/repos/{REPO}/issues");
    if req.method == Method::POST && req.path == issues_path {
        let mut problems = Vec::new();
        let v = json_body(&mut problems, &req.headers, &body);
        problems.extend(check_new_github_issue(&v));
        if !problems.is_empty() {
            for p in &problems {
                t.problem(format!("create: {p}"));
            }
            t.record(&req, v, 422);
            return github_error(422, "Validation Failed");
        }
        let (number, issue) = {
            let mut issues = t.issues.lock().unwrap();
            let number = issues.len() as u64 + 1;
            let issue = Issue {
                fields: v.clone(),
                state: "open".into(),
                version: 1,
            };
            issues.insert(number, issue.clone());
            (number, issue)
        };
        t.record(&req, v, 201);
        return (
            StatusCode::CREATED,
            axum::Json(github_issue(&base, number, &issue)),
        )
            .into_response();
    }
    let number = req
        .path
        .strip_prefix(&format!("{issues_path}/"))
        .and_then(|n| n.parse::<u64>().ok());
    if let (&Method::GET, Some(number)) = (&req.method, number) {
        if !body.is_empty() {
            t.problem("GET with a body".into());
        }
        let Some(issue) = t.issues.lock().unwrap().get(&number).cloned() else {
            t.record(&req, Value::Null, 404);
            return github_error(404, "Not Found");
        };
        let etag = format!("W/\"issue-{number}-v{}\"", issue.version);
        if header(&req.headers, "if-none-match") == etag {
            t.record(&req, Value::Null, 304);
            return (StatusCode::NOT_MODIFIED, [("etag", etag)]).into_response();
        }
        t.record(&req, Value::Null, 200);
        return (
            StatusCode::OK,
            [("etag", etag)],
            axum::Json(github_issue(&base, number, &issue)),
        )
            .into_response();
    }
    t.problem(format!(
        "{} {} is not an issues endpoint",
        req.method, req.path
    ));
    t.record(&req, Value::Null, 404);
    github_error(404, "Not Found")
}

async fn start_github() -> (Arc<Tracker>, String) {
    let t = Arc::new(Tracker::default());
    let router = Router::new().fallback(github).with_state(t.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/api/v3", listener.local_addr().unwrap());
    *t.base.lock().unwrap() = base.clone();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (t, base)
}

// ----- Jira Cloud -----

/// What the Atlassian Document Format allows, as far as sitrep writes it.
fn check_adf(node: &Value, top: bool, p: &mut Vec<String>) {
    let kind = node["type"].as_str().unwrap_or_default();
    if top && (kind != "doc" || node["version"] != 1) {
        p.push("description is not an ADF doc of version 1".into());
    }
    let allowed_children: &[&str] = match kind {
        "doc" => &[
            "paragraph",
            "blockquote",
            "bulletList",
            "orderedList",
            "heading",
            "rule",
            "codeBlock",
        ],
        "blockquote" => &["paragraph", "bulletList", "orderedList"],
        "bulletList" | "orderedList" => &["listItem"],
        "listItem" => &["paragraph", "bulletList", "orderedList"],
        "paragraph" | "heading" => &["text", "hardBreak", "mention", "emoji", "inlineCard"],
        "text" => {
            if node["text"].as_str().map_or(true, str::is_empty) {
                p.push("a text node has empty text".into());
            }
            for m in node["marks"].as_array().into_iter().flatten() {
                let mark = m["type"].as_str().unwrap_or_default();
                if !["strong", "em", "code", "link", "strike", "underline"].contains(&mark) {
                    p.push(format!("unknown mark {mark:?}"));
                }
                if mark == "link" && m["attrs"]["href"].as_str().is_none() {
                    p.push("a link mark has no href".into());
                }
            }
            if node.get("content").is_some() {
                p.push("a text node has content".into());
            }
            return;
        }
        "hardBreak" | "rule" => return,
        other => {
            p.push(format!("unknown ADF node {other:?}"));
            return;
        }
    };
    let Some(content) = node["content"].as_array() else {
        p.push(format!("{kind} has no content array"));
        return;
    };
    if content.is_empty() && !["paragraph", "doc"].contains(&kind) {
        p.push(format!("{kind} is empty"));
    }
    for c in content {
        let ck = c["type"].as_str().unwrap_or_default();
        if !allowed_children.contains(&ck) {
            p.push(format!("{ck:?} cannot be inside {kind}"));
        }
        check_adf(c, false, p);
    }
}

/// What "Create issue" documents for its body, with the fields this project's create screen has.
fn check_new_jira_issue(v: &Value) -> Result<(), (Vec<String>, BTreeMap<String, String>)> {
    let mut p = Vec::new();
    let mut errors = BTreeMap::new();
    for k in v
        .as_object()
        .map(|o| o.keys().cloned().collect::<Vec<String>>())
        .unwrap_or_default()
    {
        if ![
            "fields",
            "update",
            "transition",
            "properties",
            "historyMetadata",
        ]
        .contains(&k.as_str())
        {
            p.push(format!("unknown top-level key {k}"));
        }
    }
    let f = &v["fields"];
    for k in f
        .as_object()
        .map(|o| o.keys().cloned().collect::<Vec<String>>())
        .unwrap_or_default()
    {
        if ![
            "project",
            "issuetype",
            "summary",
            "description",
            "duedate",
            "assignee",
            "labels",
            "priority",
        ]
        .contains(&k.as_str())
        {
            errors.insert(
                k.clone(),
                format!(
                    "Field '{k}' cannot be set. It is not on the appropriate screen, or unknown."
                ),
            );
        }
    }
    if f["project"]["key"] != "OPS" {
        errors.insert("project".into(), "valid project is required".into());
    }
    if f["issuetype"]["name"] != "Task" {
        errors.insert("issuetype".into(), "Specify an issue type".into());
    }
    match f["summary"].as_str() {
        Some(s) if !s.trim().is_empty() && s.chars().count() <= 255 && !s.contains('\n') => {}
        _ => {
            errors.insert(
                "summary".into(),
                "Summary is required, one line of up to 255 characters.".into(),
            );
        }
    }
    if f["description"].is_string() {
        // v2 took wiki text; v3 takes only ADF.
        errors.insert(
            "description".into(),
            "Operation value must be an Atlassian Document (see the Atlassian Document Format)."
                .into(),
        );
    } else if !f["description"].is_null() {
        check_adf(&f["description"], true, &mut p);
    }
    if let Some(d) = f.get("duedate") {
        let ok = d
            .as_str()
            .is_some_and(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok());
        if !ok {
            errors.insert(
                "duedate".into(),
                "Error parsing date string: use yyyy-MM-dd".into(),
            );
        }
    }
    if let Some(a) = f.get("assignee") {
        if a["accountId"].as_str().is_none() || a.get("name").is_some() {
            // Jira Cloud assigns by accountId only (GDPR): name and key are gone.
            errors.insert(
                "assignee".into(),
                "Specify the assignee by accountId.".into(),
            );
        }
    }
    if p.is_empty() && errors.is_empty() {
        Ok(())
    } else {
        Err((p, errors))
    }
}

fn jira_auth_ok(h: &HeaderMap) -> bool {
    let expected =
        base64::engine::general_purpose::STANDARD.encode(format!("{JIRA_EMAIL}:{JIRA_TOKEN}"));
    header(h, "authorization") == format!("Basic {expected}")
}

fn jira_status(state: &str) -> Value {
    let (id, category) = match state {
        "Done" => ("10002", "done"),
        "In Progress" => ("3", "indeterminate"),
        _ => ("10000", "new"),
    };
    json!({"self": "https://acme.atlassian.net/rest/api/3/status/1", "name": state, "id": id,
           "statusCategory": {"id": 3, "key": category, "name": state}})
}

async fn jira(State(t): State<Arc<Tracker>>, req: Request) -> Response {
    let (req, body) = split(req).await;
    let base = t.base.lock().unwrap().clone();
    if !jira_auth_ok(&req.headers) {
        t.problem(format!(
            "{} {}: not basic auth with the email and API token",
            req.method, req.path
        ));
        t.record(&req, Value::Null, 401);
        return (
            StatusCode::UNAUTHORIZED,
            "Client must be authenticated to access this resource.",
        )
            .into_response();
    }
    if header(&req.headers, "accept") != "application/json" {
        t.problem(format!(
            "{} {}: Accept is not application/json",
            req.method, req.path
        ));
    }
    match (&req.method, req.path.as_str()) {
        (&Method::POST, "/rest/api/3/issue") => {
            let mut problems = Vec::new();
            let v = json_body(&mut problems, &req.headers, &body);
            let checked = check_new_jira_issue(&v);
            if let Err((p, _)) = &checked {
                problems.extend(p.iter().cloned());
            }
            let errors = checked.err().map(|(_, e)| e).unwrap_or_default();
            if !problems.is_empty() || !errors.is_empty() {
                for p in &problems {
                    t.problem(format!("create: {p}"));
                }
                for (k, e) in &errors {
                    t.problem(format!("create: {k}: {e}"));
                }
                t.record(&req, v, 400);
                return (
                    StatusCode::BAD_REQUEST,
                    axum::Json(json!({"errorMessages": problems, "errors": errors})),
                )
                    .into_response();
            }
            let number = {
                let mut issues = t.issues.lock().unwrap();
                let number = issues.len() as u64 + 1;
                issues.insert(
                    number,
                    Issue {
                        fields: v["fields"].clone(),
                        state: "To Do".into(),
                        version: 1,
                    },
                );
                number
            };
            t.record(&req, v, 201);
            let id = 10_000 + number;
            (
                StatusCode::CREATED,
                axum::Json(json!({"id": id.to_string(), "key": format!("OPS-{number}"),
                                  "self": format!("{base}/rest/api/3/issue/{id}")})),
            )
                .into_response()
        }
        (&Method::GET, "/rest/api/3/search/jql") => {
            let q: HashMap<String, String> = url_pairs(&req.query);
            let jql = q.get("jql").cloned().unwrap_or_default();
            let keys: Vec<String> = match jql
                .strip_prefix("key in (")
                .and_then(|r| r.strip_suffix(')'))
            {
                Some(list) => list.split(',').map(|k| k.trim().to_string()).collect(),
                None => {
                    t.problem(format!("search: jql {jql:?} is not `key in (...)`"));
                    t.record(&req, Value::Null, 400);
                    return (
                        StatusCode::BAD_REQUEST,
                        axum::Json(
                            json!({"errorMessages": ["Error in the JQL Query"], "errors": {}}),
                        ),
                    )
                        .into_response();
                }
            };
            if q.get("fields").map(String::as_str) != Some("status,resolution") {
                t.problem(format!(
                    "search: fields {:?}, not status,resolution",
                    q.get("fields")
                ));
            }
            if let Some(m) = q.get("maxResults") {
                if !m.parse::<u32>().is_ok_and(|m| (1..=5000).contains(&m)) {
                    t.problem(format!("search: maxResults {m}"));
                }
            }
            let issues = t.issues.lock().unwrap().clone();
            let found: Vec<Value> = keys
                .iter()
                .filter_map(|k| {
                    let n: u64 = k.strip_prefix("OPS-")?.parse().ok()?;
                    let i = issues.get(&n)?;
                    let resolution = if i.state == "Done" {
                        json!({"id": "10000", "name": "Done"})
                    } else {
                        Value::Null
                    };
                    Some(json!({"id": (10_000 + n).to_string(), "key": k,
                                "self": format!("{base}/rest/api/3/issue/{}", 10_000 + n),
                                "fields": {"status": jira_status(&i.state), "resolution": resolution}}))
                })
                .collect();
            t.record(&req, Value::Null, 200);
            axum::Json(json!({"issues": found, "isLast": true})).into_response()
        }
        _ => {
            t.problem(format!(
                "{} {} is not an endpoint sitrep should call",
                req.method, req.path
            ));
            t.record(&req, Value::Null, 404);
            (
                StatusCode::NOT_FOUND,
                axum::Json(json!({"errorMessages": ["Not found"], "errors": {}})),
            )
                .into_response()
        }
    }
}

fn url_pairs(query: &str) -> HashMap<String, String> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte.
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => out.push(b),
                    Err(_) => out.extend_from_slice(&bytes[i..i + 3]),
                }
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn start_jira() -> (Arc<Tracker>, String) {
    let t = Arc::new(Tracker::default());
    let router = Router::new().fallback(jira).with_state(t.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    *t.base.lock().unwrap() = base.clone();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (t, base)
}

// ----- the client against the stand-ins -----

fn secrets() -> Secrets {
    let env = BTreeMap::from([
        ("SITREP_GITHUB_TOKEN".to_string(), GITHUB_TOKEN.to_string()),
        ("SITREP_JIRA_EMAIL".to_string(), JIRA_EMAIL.to_string()),
        ("SITREP_JIRA_TOKEN".to_string(), JIRA_TOKEN.to_string()),
    ]);
    Secrets::from_env(&env)
}

fn people() -> Vec<TrackerPerson> {
    vec![TrackerPerson {
        discord: 42,
        github: Some("bob-gh".into()),
        jira: Some("5b10ac8d82e05b22cc7d4ef5".into()),
    }]
}

fn new_issue(text: &str) -> NewIssue {
    NewIssue {
        incident: "INC-3".into(),
        incident_title: "Checkout down".into(),
        severity: "SEV1".into(),
        text: text.into(),
        owner: Some((42, "bob".into())),
        due: Some(
            chrono::DateTime::parse_from_rfc3339("2026-12-10T17:00:00Z")
                .unwrap()
                .into(),
        ),
        link: Some("https://sitrep.example.com/incidents/INC-3".into()),
        context: Some("Replica lag stalled checkout".into()),
    }
}

#[tokio::test]
async fn github_issues_are_filed_and_read_back_as_documented() {
    let (gh, base) = start_github().await;
    let config = TrackersConfig {
        github: Some(GitHubIssuesConfig {
            repository: REPO.into(),
            labels: vec!["incident".into(), "follow-up".into()],
            api_base: format!("{base}/"),
        }),
        people: people(),
        ..TrackersConfig::default()
    };
    let t = Trackers::new(&config, &secrets()).unwrap().unwrap();
    let filed = t.file(&new_issue("Alert on replica lag")).await.unwrap();
    assert_eq!(filed.key, "acme/checkout#1");
    assert_eq!(filed.url, "https://github.com/acme/checkout/issues/1");
    let sent = gh.created().remove(0);
    assert_eq!(sent["title"], "[INC-3] Alert on replica lag");
    assert_eq!(sent["labels"], json!(["incident", "follow-up"]));
    assert_eq!(sent["assignees"], json!(["bob-gh"]));
    let body = sent["body"].as_str().unwrap();
    // GitHub issues have no due date: the body says it.
    for needle in [
        "**Due:** 2026-12-10",
        "**Owner:** bob",
        "**Context:** Replica lag stalled checkout",
        "(https://sitrep.example.com/incidents/INC-3)",
    ] {
        assert!(body.contains(needle), "{needle:?} in {body}");
    }

    // Read back: a 200 with an ETag, then 304s while nothing changes, then the closed state.
    let keys = vec![filed.key.clone()];
    let (states, r) = t.states(sitrep::config::TrackerKind::GitHub, &keys).await;
    assert_eq!((r.requests, r.not_modified), (1, 0), "{r:?}");
    assert_eq!(states[&filed.key].state, "open");
    assert!(!states[&filed.key].done);
    let (states, r) = t.states(sitrep::config::TrackerKind::GitHub, &keys).await;
    assert_eq!((r.requests, r.not_modified), (1, 1), "{r:?}");
    assert!(!states[&filed.key].done);
    gh.set_state(1, "closed");
    let (states, r) = t.states(sitrep::config::TrackerKind::GitHub, &keys).await;
    assert_eq!(r.not_modified, 0);
    assert!(states[&filed.key].done, "{states:?}");
    let statuses: Vec<u16> = gh.seen().iter().map(|s| s.status).collect();
    assert_eq!(statuses, [201, 200, 304, 200]);
    gh.assert_well_formed();

    // A refused token is said as such, and the token appears nowhere.
    let wrong = Secrets::from_env(&BTreeMap::from([(
        "SITREP_GITHUB_TOKEN".to_string(),
        "ghp_wrong".to_string(),
    )]));
    let t = Trackers::new(&config, &wrong).unwrap().unwrap();
    let err = t.file(&new_issue("x")).await.unwrap_err().to_string();
    assert!(
        err.contains("401") && err.contains("Bad credentials"),
        "{err}"
    );
    assert!(!err.contains("ghp_wrong"), "{err}");
}

#[tokio::test]
async fn jira_issues_are_filed_with_adf_and_read_back_by_jql() {
    let (jira, base) = start_jira().await;
    let config = TrackersConfig {
        jira: Some(JiraConfig {
            site: base.clone(),
            project: "OPS".into(),
            issue_type: "Task".into(),
        }),
        people: people(),
        ..TrackersConfig::default()
    };
    let t = Trackers::new(&config, &secrets()).unwrap().unwrap();
    let first = t.file(&new_issue("Alert on replica lag")).await.unwrap();
    let mut unowned = new_issue(&"Raise the connection pool limit ".repeat(12));
    unowned.owner = None;
    unowned.due = None;
    unowned.link = None;
    let second = t.file(&unowned).await.unwrap();
    jira.assert_well_formed();
    assert_eq!(first.key, "OPS-1");
    assert_eq!(first.url, format!("{base}/browse/OPS-1"));
    assert_eq!(second.key, "OPS-2");
    let sent = jira.created();
    let f = &sent[0]["fields"];
    assert_eq!(f["summary"], "[INC-3] Alert on replica lag");
    assert_eq!(f["duedate"], "2026-12-10");
    assert_eq!(
        f["assignee"],
        json!({"accountId": "5b10ac8d82e05b22cc7d4ef5"})
    );
    let desc = f["description"].to_string();
    assert!(
        desc.contains(r#""href":"https://sitrep.example.com/incidents/INC-3""#),
        "{desc}"
    );
    let f = &sent[1]["fields"];
    assert!(
        f.get("duedate").is_none() && f.get("assignee").is_none(),
        "{f}"
    );
    assert_eq!(f["summary"].as_str().unwrap().chars().count(), 255);

    jira.set_state(2, "Done");
    let keys = vec![first.key.clone(), second.key.clone()];
    let (states, r) = t.states(sitrep::config::TrackerKind::Jira, &keys).await;
    assert!(r.errors.is_empty(), "{r:?}");
    assert_eq!(r.requests, 1, "one search for every key");
    assert_eq!(states["OPS-1"].state, "To Do");
    assert!(!states["OPS-1"].done);
    assert!(states["OPS-2"].done);
    let search = jira.seen().into_iter().find(|s| s.method == "GET").unwrap();
    assert_eq!(url_pairs(&search.query)["jql"], "key in (OPS-1,OPS-2)");
    jira.assert_well_formed();

    // A key that is not PROJECT-NUMBER never reaches JQL.
    let (_, r) = t
        .states(
            sitrep::config::TrackerKind::Jira,
            &["OPS-1) OR (1=1".to_string()],
        )
        .await;
    assert_eq!(r.requests, 0);
    assert_eq!(r.errors.len(), 1);
}

// ----- end to end -----

fn github_toml(base: &str, bob: u64) -> String {
    format!(
        r#"
[trackers]
poll_every = "1s"
browser_url = "https://sitrep.example.com"

[trackers.github]
repository = "{REPO}"
labels = ["incident"]
api_base = "{base}"

[[trackers.people]]
discord = {bob}
github = "bob-gh"
"#
    )
}

/// Runs a slash command that defers, and returns what the deferral was filled in with.
async fn deferred(
    fake: &FakeDiscord,
    user: u64,
    channel: u64,
    command: &str,
    options: Value,
) -> Value {
    let i = fake.slash(user, channel, command, options);
    let first = fake.wait_response(&i).await;
    assert!(
        first.latency < Duration::from_secs(3),
        "{:?}",
        first.latency
    );
    assert_eq!(first.kind, 5, "it waits on the tracker, so it defers");
    fake.wait_until(Duration::from_secs(10), |f| {
        f.original(&i)
            .filter(|m| m["content"].as_str().is_some_and(|c| !c.is_empty()))
    })
    .await
    .expect("the deferral is filled in")
}

fn content(m: &Value) -> &str {
    m["content"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_filed_from_discord_and_closed_on_github_shows_done() {
    let (gh, base) = start_github().await;
    let fake = FakeDiscord::start().await;
    let bob = fake.add_member("bob", &[]);
    let w = world(&fake);
    let mut bot = Bot::start_with_env(
        &fake,
        w,
        Mode::Proxy,
        &github_toml(&base, bob),
        &[("SITREP_GITHUB_TOKEN", GITHUB_TOKEN)],
    );
    fake.wait_ready().await;
    let channel = fake.open_incident("Checkout down", "SEV1").await;

    // Filed as it is added.
    let reply = deferred(
        &fake,
        OWNER_ID,
        channel,
        "incident",
        json!({"action": {"text": "Alert on replica lag", "owner": bob.to_string(), "due": "3d", "file": true}}),
    )
    .await;
    assert!(
        content(&reply)
            .contains("· filed as acme/checkout#1 <https://github.com/acme/checkout/issues/1>"),
        "{reply}"
    );
    let sent = gh.created().remove(0);
    assert_eq!(sent["title"], "[INC-1] Alert on replica lag");
    assert_eq!(sent["assignees"], json!(["bob-gh"]));
    assert_eq!(sent["labels"], json!(["incident"]));
    let body = sent["body"].as_str().unwrap();
    assert!(
        body.contains("https://sitrep.example.com/incidents/INC-1"),
        "{body}"
    );
    assert!(body.contains("**Due:** "), "{body}");

    // Added without filing: the reply carries the button that files it.
    let reply = deferred(
        &fake,
        OWNER_ID,
        channel,
        "incident",
        json!({"action": {"text": "Document the failover"}}),
    )
    .await;
    let button = reply["components"][0]["components"][0].clone();
    assert_eq!(button["custom_id"], "incident:file:1:2", "{reply}");
    assert_eq!(gh.created().len(), 1, "nothing filed before the press");
    let i = fake.click(
        bob,
        reply["id"].as_str().unwrap().parse().unwrap(),
        "incident:file:1:2",
    );
    let first = fake.wait_response(&i).await;
    assert_eq!(first.kind, 5);
    let pressed = fake
        .wait_until(Duration::from_secs(10), |f| {
            f.original(&i).filter(|m| content(m).contains("filed"))
        })
        .await
        .expect("the press is answered");
    assert!(
        content(&pressed).contains("bob filed action item #2 of INC-1 as acme/checkout#2"),
        "{pressed}"
    );

    // The rest at once from the post-mortem; nothing is filed twice.
    deferred(
        &fake,
        OWNER_ID,
        channel,
        "incident",
        json!({"action": {"text": "Load-test the replica"}}),
    )
    .await;
    let reply = deferred(&fake, OWNER_ID, channel, "postmortem", json!({"file": {}})).await;
    assert!(
        content(&reply).contains("Filed 1 action item of INC-1:\n#3 → acme/checkout#3"),
        "{reply}"
    );
    assert_eq!(gh.created().len(), 3);

    // Read back with conditional requests: unchanged issues cost 304s.
    gh.wait_for("a 304", |s| s.iter().any(|s| s.status == 304))
        .await;
    let before = gh.seen().len();
    gh.set_state(1, "closed");
    gh.wait_for("issue 1 read as closed", |s| {
        s[before..]
            .iter()
            .any(|s| s.method == "GET" && s.path.ends_with("/issues/1") && s.status == 200)
    })
    .await;
    // Shown done: the status lists each item with its issue and state.
    let mut shown = String::new();
    for _ in 0..40 {
        shown = answer(&fake, OWNER_ID, channel, "incident", json!({"status": {}})).await;
        if shown.contains("acme/checkout#1 done") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(shown.contains("acme/checkout#1 done"), "{shown}");
    assert!(shown.contains("acme/checkout#2 open"), "{shown}");
    gh.assert_well_formed();
    // Done items are no longer asked about.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = gh.seen().len();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !gh.seen()[after..]
            .iter()
            .any(|s| s.path.ends_with("/issues/1")),
        "a done item's issue is still polled"
    );
    assert!(!bot.log().contains(GITHUB_TOKEN), "the token is in the log");
    bot.stop();
}

/// Runs a slash command and returns its answer as JSON text: the message (when it answered at
/// once) or what the deferral was filled in with.
async fn answer(
    fake: &FakeDiscord,
    user: u64,
    channel: u64,
    command: &str,
    options: Value,
) -> String {
    let i = fake.slash(user, channel, command, options);
    let first = fake.wait_response(&i).await;
    if first.kind == 4 {
        return first.data.to_string();
    }
    fake.wait_until(Duration::from_secs(10), |f| {
        f.original(&i)
            .filter(|m| m["content"].as_str().is_some_and(|c| !c.is_empty()))
    })
    .await
    .expect("the deferral is filled in")
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_files_in_jira_and_reads_the_state_back() {
    let (jira, base) = start_jira().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sitrep.toml");
    std::fs::write(
        &config,
        format!(
            // Without the default checklist's buttons, the item's button is [3].
            "[trackers.jira]\nsite = \"{base}\"\nproject = \"OPS\"\n\n[trackers]\nbrowser_url = \"https://sitrep.example.com\"\n\n[types.default]\nchecklist = []\n"
        ),
    )
    .unwrap();
    let db = dir.path().join("db");
    let run = |script: &'static str| {
        let (config, db) = (config.clone(), db.clone());
        tokio::task::spawn_blocking(move || console(&db, &config, script))
    };
    let (out, err) = run(concat!(
        "/incident open title:\"Queue backlog\" severity:SEV2\n",
        "/incident action text:\"Alert on queue age\" due:7d file:true\n",
        "/incident action text:\"Autoscale the consumers\"\n",
        "press 3\n",
    ))
    .await
    .unwrap();
    support::assert_in_order(
        &out,
        &[
            "[reply] Action item added to INC-1: Alert on queue age",
            &format!("filed as OPS-1 <{base}/browse/OPS-1>"),
            "[reply] Action item added to INC-1: Autoscale the consumers",
            "[3] File #2 in tracker",
            &format!("[reply] alice filed action item #2 of INC-1 as OPS-2 <{base}/browse/OPS-2>"),
        ],
    );
    assert!(!out.contains("[error]"), "{out}\n{err}");
    jira.assert_well_formed();
    assert_eq!(jira.created().len(), 2);

    // Resolved in Jira while the console was closed: read back before the first command.
    jira.set_state(1, "Done");
    let (out, err) = run("/incident status incident:INC-1\n").await.unwrap();
    assert!(out.contains("OPS-1 done"), "{out}\n{err}");
    assert!(out.contains("OPS-2 To Do"), "{out}\n{err}");
    jira.assert_well_formed();

    // The post-mortem's action table links each issue and says its state.
    let md = std::process::Command::new(env!("CARGO_BIN_EXE_sitrep"))
        .args(["export", "INC-1", "--db"])
        .arg(&db)
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    let md = String::from_utf8_lossy(&md.stdout);
    assert!(md.contains("| Action | Owner | Due | Issue |"), "{md}");
    assert!(
        md.contains(&format!("| [OPS-1]({base}/browse/OPS-1) · done |")),
        "{md}"
    );
    assert!(
        md.contains(&format!("| [OPS-2]({base}/browse/OPS-2) · To Do |")),
        "{md}"
    );
}

fn console(db: &std::path::Path, config: &std::path::Path, script: &str) -> (String, String) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_sitrep"))
        .args(["console", "--no-http", "--db"])
        .arg(db)
        .arg("--config")
        .arg(config)
        .env("USER", "alice")
        .env("TZ", "UTC")
        .env("SITREP_JIRA_EMAIL", JIRA_EMAIL)
        .env("SITREP_JIRA_TOKEN", JIRA_TOKEN)
        .env_remove("SITREP_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the sitrep binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
