//! REST v10 over HTTP and HTTPS: routing, authentication, rate-limit gates, handlers and recording.

use super::perms::{
    missing_permissions, OverwriteRec, PERM_ADD_REACTIONS, PERM_ATTACH_FILES,
    PERM_CREATE_PRIVATE_THREADS, PERM_CREATE_PUBLIC_THREADS, PERM_MANAGE_CHANNELS,
    PERM_MANAGE_MESSAGES, PERM_MANAGE_ROLES, PERM_MANAGE_THREADS, PERM_PIN_MESSAGES,
    PERM_READ_MESSAGE_HISTORY, PERM_SEND_MESSAGES, PERM_SEND_MESSAGES_IN_THREADS,
};
use super::ratelimit::{retry_headers, Gate, Headers};
use super::validate::{
    check_autocomplete, check_commands, check_message_fields, check_modal, check_single_command,
    ApiError, FormErrors, MessageTarget, FLAG_EPHEMERAL, FLAG_LOADING,
};
use super::world::{
    emoji_json, id_str, iso, now_ms, parse_id, AckRec, ChannelRec, NewMessage, ReactionRec,
    ThreadMeta, World, INTENT_GUILDS, INTENT_GUILD_MEMBERS, INTENT_GUILD_MESSAGE_REACTIONS,
    INTENT_GUILD_PRESENCES, INTENT_MESSAGE_CONTENT,
};
use super::{Request, Shared, UploadedFile, APPLICATION_ID, BOT_USER_ID, GUILD_ID, TOKEN};
use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, Response, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Discord's limit on a whole request, files included.
const MAX_REQUEST_BYTES: usize = 25 * 1024 * 1024;

/// Every route the fake answers, in matching order (literal segments before placeholders).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/gateway"),
    ("GET", "/gateway/bot"),
    ("GET", "/users/@me"),
    ("GET", "/users/{user}"),
    ("GET", "/oauth2/applications/@me"),
    ("GET", "/applications/@me"),
    ("GET", "/applications/{application}/commands"),
    ("PUT", "/applications/{application}/commands"),
    ("POST", "/applications/{application}/commands"),
    ("GET", "/applications/{application}/commands/{command}"),
    ("DELETE", "/applications/{application}/commands/{command}"),
    ("GET", "/applications/{application}/guilds/{guild}/commands"),
    ("PUT", "/applications/{application}/guilds/{guild}/commands"),
    (
        "POST",
        "/applications/{application}/guilds/{guild}/commands",
    ),
    (
        "GET",
        "/applications/{application}/guilds/{guild}/commands/{command}",
    ),
    (
        "DELETE",
        "/applications/{application}/guilds/{guild}/commands/{command}",
    ),
    ("GET", "/guilds/{guild}"),
    ("GET", "/guilds/{guild}/channels"),
    ("POST", "/guilds/{guild}/channels"),
    ("GET", "/guilds/{guild}/roles"),
    ("GET", "/guilds/{guild}/members"),
    ("GET", "/guilds/{guild}/members/{user}"),
    ("PUT", "/guilds/{guild}/members/{user}/roles/{role}"),
    ("DELETE", "/guilds/{guild}/members/{user}/roles/{role}"),
    ("GET", "/guilds/{guild}/threads/active"),
    ("GET", "/channels/{channel}"),
    ("PATCH", "/channels/{channel}"),
    ("DELETE", "/channels/{channel}"),
    ("POST", "/channels/{channel}/threads"),
    ("PUT", "/channels/{channel}/thread-members/@me"),
    ("PUT", "/channels/{channel}/thread-members/{user}"),
    ("POST", "/channels/{channel}/typing"),
    ("GET", "/channels/{channel}/pins"),
    ("PUT", "/channels/{channel}/pins/{message}"),
    ("DELETE", "/channels/{channel}/pins/{message}"),
    ("GET", "/channels/{channel}/messages/pins"),
    ("PUT", "/channels/{channel}/messages/pins/{message}"),
    ("DELETE", "/channels/{channel}/messages/pins/{message}"),
    ("GET", "/channels/{channel}/messages"),
    ("POST", "/channels/{channel}/messages"),
    ("GET", "/channels/{channel}/messages/{message}"),
    ("PATCH", "/channels/{channel}/messages/{message}"),
    ("DELETE", "/channels/{channel}/messages/{message}"),
    ("POST", "/channels/{channel}/messages/{message}/threads"),
    (
        "GET",
        "/channels/{channel}/messages/{message}/reactions/{emoji}",
    ),
    (
        "PUT",
        "/channels/{channel}/messages/{message}/reactions/{emoji}/@me",
    ),
    (
        "DELETE",
        "/channels/{channel}/messages/{message}/reactions/{emoji}/@me",
    ),
    ("POST", "/interactions/{interaction}/{token}/callback"),
    ("POST", "/webhooks/{application}/{token}"),
    ("GET", "/webhooks/{application}/{token}/messages/{message}"),
    (
        "PATCH",
        "/webhooks/{application}/{token}/messages/{message}",
    ),
    (
        "DELETE",
        "/webhooks/{application}/{token}/messages/{message}",
    ),
];

type Params = BTreeMap<&'static str, String>;

enum RouteMatch {
    Found(&'static str, Params),
    WrongMethod,
    None,
}

fn match_route(method: &str, path: &str) -> RouteMatch {
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let mut path_known = false;
    for (m, template) in ROUTES {
        let tsegs: Vec<&'static str> = template.split('/').skip(1).collect();
        if tsegs.len() != segs.len() {
            continue;
        }
        let mut params = Params::new();
        let ok = tsegs.iter().zip(&segs).all(|(t, s)| {
            if let Some(name) = t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                params.insert(name, percent_decode(s));
                !s.is_empty()
            } else {
                t == s
            }
        });
        if !ok {
            continue;
        }
        if *m == method {
            return RouteMatch::Found(template, params);
        }
        path_known = true;
    }
    if path_known {
        RouteMatch::WrongMethod
    } else {
        RouteMatch::None
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Is `route` (`"METHOD /template"`) one the fake serves? Lets `fail_next` catch typos.
pub fn known_route(route: &str) -> bool {
    route == "*" || ROUTES.iter().any(|(m, t)| format!("{m} {t}") == route)
}

pub async fn serve(
    shared: Arc<Shared>,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((s, _)) => s,
                Err(_) => continue,
            },
            _ = shutdown.changed() => return,
        };
        let shared = shared.clone();
        let tls = tls.clone();
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            let secure = tls.is_some();
            let service =
                hyper::service::service_fn(move |req| handle(shared.clone(), req, secure));
            let builder = hyper::server::conn::http1::Builder::new();
            match tls {
                Some(acceptor) => {
                    let Ok(stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    let conn =
                        builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                    tokio::select! { _ = conn => {}, _ = shutdown.changed() => {} }
                }
                None => {
                    let conn =
                        builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                    tokio::select! { _ = conn => {}, _ = shutdown.changed() => {} }
                }
            }
        });
    }
}

struct Parsed {
    body: Value,
    files: Vec<UploadedFile>,
}

async fn parse_body(content_type: &str, bytes: Bytes) -> Result<Parsed, ApiError> {
    if bytes.is_empty() {
        return Ok(Parsed {
            body: Value::Null,
            files: vec![],
        });
    }
    if content_type.starts_with("multipart/form-data") {
        let boundary = multer::parse_boundary(content_type)
            .map_err(|_| ApiError::new(400, 0, "400: Bad Request"))?;
        let stream = futures::stream::once(async move { Ok::<Bytes, std::io::Error>(bytes) });
        let mut form = multer::Multipart::new(stream, boundary);
        let mut body = Value::Null;
        let mut files = vec![];
        loop {
            let field = match form.next_field().await {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(_) => return Err(ApiError::new(400, 0, "400: Bad Request")),
            };
            let name = field.name().unwrap_or("").to_string();
            let filename = field.file_name().map(str::to_string);
            let content_type = field.content_type().map(|m| m.to_string());
            let data = field
                .bytes()
                .await
                .map_err(|_| ApiError::new(400, 0, "400: Bad Request"))?;
            if name == "payload_json" {
                body = serde_json::from_slice(&data).map_err(|_| ApiError::invalid_json())?;
            } else if let Some(filename) = filename {
                files.push(UploadedFile {
                    field: name,
                    filename,
                    content_type,
                    bytes: data.to_vec(),
                });
            } else {
                if body.is_null() {
                    body = json!({});
                }
                body[name] = Value::String(String::from_utf8_lossy(&data).into_owned());
            }
        }
        return Ok(Parsed { body, files });
    }
    let body = serde_json::from_slice(&bytes).map_err(|_| ApiError::invalid_json())?;
    Ok(Parsed {
        body,
        files: vec![],
    })
}

fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(kv), String::new()),
        })
        .collect()
}

struct Outcome {
    status: u16,
    body: Option<Value>,
    headers: Headers,
}

impl From<ApiError> for Outcome {
    fn from(e: ApiError) -> Self {
        let headers = match (e.status, e.body.get("retry_after").and_then(Value::as_f64)) {
            (429, Some(r)) => retry_headers(r, "user"),
            _ => vec![],
        };
        Outcome {
            status: e.status,
            body: Some(e.body),
            headers,
        }
    }
}

/// What is known of a request before it is answered.
struct Incoming {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    tls: bool,
}

/// Records the exchange; called under the same lock as the handler so that whoever sees
/// the handler's effects also sees the request.
fn finish(
    w: &mut World,
    req: &Incoming,
    route: &str,
    outcome: &mut Outcome,
    parsed: Option<&Parsed>,
) {
    if outcome
        .headers
        .iter()
        .all(|(k, _)| k != "x-ratelimit-limit")
    {
        // Answers that never reached a bucket still say where it stands.
        outcome.headers.extend(w.limits.peek(route));
    }
    w.limits.count_response(outcome.status, &outcome.headers);
    let at = w.elapsed();
    w.requests.push(Request {
        method: req.method.clone(),
        path: req.path.clone(),
        route: route.to_string(),
        query: req.query.clone(),
        headers: req.headers.clone(),
        body: parsed.map_or(Value::Null, |p| p.body.clone()),
        files: parsed.map_or_else(Vec::new, |p| p.files.clone()),
        status: outcome.status,
        response: outcome.body.clone().unwrap_or(Value::Null),
        at,
        tls: req.tls,
    });
}

async fn handle(
    shared: Arc<Shared>,
    req: hyper::Request<hyper::body::Incoming>,
    tls: bool,
) -> Result<Response<Body>, Infallible> {
    let full_path = req.uri().path().to_string();
    let mut auth = None;
    let mut content_type = String::new();
    let mut headers = vec![];
    for (k, v) in req.headers() {
        let v = v.to_str().unwrap_or("").to_string();
        match k.as_str() {
            "authorization" => auth = Some(v),
            "content-type" => {
                content_type = v.clone();
                headers.push((k.to_string(), v));
            }
            _ => headers.push((k.to_string(), v)),
        }
    }
    let incoming = Incoming {
        method: req.method().as_str().to_string(),
        path: full_path
            .strip_prefix("/api/v10")
            .map_or(full_path.clone(), str::to_string),
        query: parse_query(req.uri().query().unwrap_or("")),
        headers,
        tls,
    };
    let versioned = full_path.starts_with("/api/v10/");
    let bytes =
        axum::body::to_bytes(Body::new(req.into_body()), MAX_REQUEST_BYTES + 1024 * 1024).await;
    let outcome = if versioned {
        process(&shared, &incoming, auth, &content_type, bytes).await
    } else {
        let mut o: Outcome = ApiError::not_found().into();
        let route = format!("{} {}", incoming.method, incoming.path);
        shared.with(|w| finish(w, &incoming, &route, &mut o, None));
        o
    };
    let mut resp = Response::new(match &outcome.body {
        Some(v) => Body::from(v.to_string()),
        None => Body::empty(),
    });
    *resp.status_mut() =
        StatusCode::from_u16(outcome.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    if outcome.body.is_some() {
        h.insert("content-type", HeaderValue::from_static("application/json"));
    }
    for (k, v) in outcome.headers {
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::try_from(k),
            HeaderValue::try_from(v),
        ) {
            h.insert(name, value);
        }
    }
    Ok(resp)
}

async fn process(
    shared: &Arc<Shared>,
    req: &Incoming,
    auth: Option<String>,
    content_type: &str,
    bytes: Result<Bytes, axum::Error>,
) -> Outcome {
    let early = |route: String, mut o: Outcome, parsed: Option<&Parsed>| {
        shared.with(|w| finish(w, req, &route, &mut o, parsed));
        o
    };
    let method = req.method.as_str();
    let (template, params) = match match_route(method, &req.path) {
        RouteMatch::Found(t, p) => (t, p),
        RouteMatch::WrongMethod => {
            return early(
                format!("{method} {}", req.path),
                ApiError::method_not_allowed().into(),
                None,
            )
        }
        RouteMatch::None => {
            return early(
                format!("{method} {}", req.path),
                ApiError::not_found().into(),
                None,
            )
        }
    };
    let route = format!("{method} {template}");
    let webhookish = template.starts_with("/webhooks/") || template.starts_with("/interactions/");
    let needs_auth = !webhookish && !template.starts_with("/gateway");
    if needs_auth && auth.as_deref() != Some(format!("Bot {TOKEN}").as_str()) {
        return early(route, ApiError::unauthorized().into(), None);
    }
    let major = ["channel", "guild", "interaction", "token"]
        .iter()
        .filter_map(|k| params.get(k).map(String::as_str))
        .collect::<Vec<_>>()
        .join("/");
    let (rate_headers, delay, late) =
        match shared.with(|w| w.limits.gate(&route, &major, webhookish, !req.tls)) {
            Gate::Reject {
                status,
                body,
                headers,
            } => {
                // Recorded with what was sent, so that a test can tell which request came again.
                let sent = match &bytes {
                    Ok(b) => parse_body(content_type, b.clone()).await.ok(),
                    Err(_) => None,
                };
                return early(
                    route,
                    Outcome {
                        status,
                        body: Some(body),
                        headers,
                    },
                    sent.as_ref(),
                );
            }
            Gate::Proceed {
                headers,
                delay,
                late,
            } => (headers, delay, late),
        };
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    let bytes = match bytes {
        Ok(b) if b.len() <= MAX_REQUEST_BYTES => b,
        _ => {
            let mut o: Outcome = ApiError::too_large().into();
            o.headers.extend(rate_headers);
            return early(route, o, None);
        }
    };
    let parsed = match parse_body(content_type, bytes).await {
        Ok(p) => p,
        Err(e) => {
            let mut o: Outcome = e.into();
            o.headers.extend(rate_headers);
            return early(route, o, None);
        }
    };
    let ctx = Ctx {
        params: &params,
        query: &req.query,
        body: &parsed.body,
        files: &parsed.files,
    };
    let outcome = shared.with(|w| {
        let mut outcome = match route_to(w, method, template, &ctx) {
            Ok((status, body)) => Outcome {
                status,
                body,
                headers: vec![],
            },
            Err(e) => e.into(),
        };
        let retry_given = outcome.headers.iter().any(|(k, _)| k == "retry-after");
        outcome.headers.extend(
            rate_headers
                .into_iter()
                .filter(|(k, _)| !(retry_given && k == "x-ratelimit-scope")),
        );
        finish(w, req, &route, &mut outcome, Some(&parsed));
        outcome
    });
    if let Some(d) = late {
        tokio::time::sleep(d).await;
    }
    outcome
}

struct Ctx<'a> {
    params: &'a Params,
    query: &'a [(String, String)],
    body: &'a Value,
    files: &'a [UploadedFile],
}

impl Ctx<'_> {
    fn id(&self, name: &str) -> Result<u64, ApiError> {
        let raw = self.params.get(name).map(String::as_str).unwrap_or("");
        raw.parse().map_err(|_| {
            let mut errs = FormErrors::default();
            errs.add(
                format!("{name}_id"),
                "NUMBER_TYPE_COERCE",
                format!("Value \"{raw}\" is not snowflake."),
            );
            errs.into_result().expect_err("one error was added")
        })
    }
    fn param(&self, name: &str) -> &str {
        self.params.get(name).map(String::as_str).unwrap_or("")
    }
    fn q(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    fn body_obj(&self) -> Value {
        if self.body.is_null() {
            json!({})
        } else {
            self.body.clone()
        }
    }
}

type Out = Result<(u16, Option<Value>), ApiError>;

fn ok(v: Value) -> Out {
    Ok((200, Some(v)))
}

fn created(v: Value) -> Out {
    Ok((201, Some(v)))
}

fn no_content() -> Out {
    Ok((204, None))
}

fn missing_access() -> ApiError {
    ApiError::new(403, 50001, "Missing Access")
}

fn route_to(w: &mut World, method: &str, template: &str, c: &Ctx) -> Out {
    match (method, template) {
        ("GET", "/gateway") => ok(json!({ "url": w.gateway.url })),
        ("GET", "/gateway/bot") => ok(json!({
            "url": w.gateway.url,
            "shards": 1,
            "session_start_limit": {
                "total": 1000,
                "remaining": 1000u32.saturating_sub(w.gateway.identifies),
                "reset_after": 86_400_000,
                "max_concurrency": 1,
            },
        })),
        ("GET", "/users/@me") => {
            let mut u = w.user_json(BOT_USER_ID);
            u["verified"] = json!(true);
            u["mfa_enabled"] = json!(true);
            u["email"] = json!(null);
            u["locale"] = json!("en-US");
            ok(u)
        }
        ("GET", "/users/{user}") => {
            let id = c.id("user")?;
            if !w.users.contains_key(&id) {
                return Err(ApiError::unknown_user());
            }
            ok(w.user_json(id))
        }
        ("GET", "/oauth2/applications/@me") | ("GET", "/applications/@me") => {
            ok(application_json(w))
        }
        (_, t) if t.starts_with("/applications/{application}") => commands(w, method, template, c),
        (_, t) if t.starts_with("/guilds/{guild}") => {
            if c.id("guild")? != GUILD_ID {
                return Err(ApiError::unknown_guild());
            }
            guild_routes(w, method, template, c)
        }
        (_, t) if t.starts_with("/channels/{channel}") => channel_routes(w, method, template, c),
        ("POST", "/interactions/{interaction}/{token}/callback") => callback(w, c),
        (_, t) if t.starts_with("/webhooks/") => webhook_routes(w, method, c),
        _ => Err(ApiError::not_found()),
    }
}

fn application_json(w: &World) -> Value {
    json!({
        "id": id_str(APPLICATION_ID),
        "name": "sitrep",
        "icon": null,
        "description": "Incident coordination",
        "summary": "",
        "type": null,
        "bot_public": false,
        "bot_require_code_grant": false,
        "verify_key": "0000000000000000000000000000000000000000000000000000000000000000",
        "flags": application_flags(w.privileged_intents),
        "owner": w.user_json(super::OWNER_ID),
        "team": null,
        "bot": w.user_json(BOT_USER_ID),
        "guild_id": null,
        "install_params": null,
        "integration_types_config": { "0": {} },
        "approximate_guild_count": 1,
        "redirect_uris": [],
        "tags": [],
        "rpc_origins": [],
    })
}

/// The application flags the developer portal's intent toggles set, in their "limited" form
/// (GATEWAY_PRESENCE_LIMITED, GATEWAY_GUILD_MEMBERS_LIMITED, GATEWAY_MESSAGE_CONTENT_LIMITED),
/// as for an application in fewer than 100 servers.
fn application_flags(privileged: u64) -> u64 {
    let mut f = 0;
    if privileged & INTENT_GUILD_PRESENCES != 0 {
        f |= 1 << 13;
    }
    if privileged & INTENT_GUILD_MEMBERS != 0 {
        f |= 1 << 15;
    }
    if privileged & INTENT_MESSAGE_CONTENT != 0 {
        f |= 1 << 19;
    }
    f
}

// ----- application commands -----

fn commands(w: &mut World, method: &str, template: &str, c: &Ctx) -> Out {
    if c.id("application")? != APPLICATION_ID {
        return Err(missing_access());
    }
    let guild = if template.contains("/guilds/") {
        if c.id("guild")? != GUILD_ID {
            return Err(missing_access());
        }
        Some(GUILD_ID)
    } else {
        None
    };
    let in_scope = |cmd: &Value| parse_id(cmd.get("guild_id")) == guild;
    match (method, template.ends_with("{command}")) {
        ("GET", false) => ok(Value::Array(
            w.commands.iter().filter(|x| in_scope(x)).cloned().collect(),
        )),
        ("GET", true) => {
            let id = c.id("command")?;
            let cmd = w
                .commands
                .iter()
                .find(|x| in_scope(x) && parse_id(x.get("id")) == Some(id));
            cmd.cloned()
                .map(ok)
                .unwrap_or_else(|| Err(ApiError::unknown_command()))
        }
        ("DELETE", true) => {
            let id = c.id("command")?;
            let before = w.commands.len();
            w.commands
                .retain(|x| !(in_scope(x) && parse_id(x.get("id")) == Some(id)));
            if w.commands.len() == before {
                return Err(ApiError::unknown_command());
            }
            no_content()
        }
        ("PUT", false) => {
            check_commands(c.body)?;
            let list = c.body.as_array().cloned().unwrap_or_default();
            let existing: Vec<Value> = w.commands.iter().filter(|x| in_scope(x)).cloned().collect();
            let new_creates = list
                .iter()
                .filter(|cmd| find_same(&existing, cmd).is_none())
                .count();
            if w.command_creates + new_creates > 200 {
                return Err(ApiError::daily_command_creates());
            }
            w.command_creates += new_creates;
            let stored: Vec<Value> = list
                .iter()
                .map(|cmd| {
                    let id = find_same(&existing, cmd).unwrap_or_else(|| w.next_id());
                    normalize_command(w, cmd, id, guild)
                })
                .collect();
            w.commands.retain(|x| !in_scope(x));
            w.commands.extend(stored.iter().cloned());
            ok(Value::Array(stored))
        }
        ("POST", false) => {
            check_single_command(c.body)?;
            let existing: Vec<Value> = w.commands.iter().filter(|x| in_scope(x)).cloned().collect();
            let (id, status) = match find_same(&existing, c.body) {
                Some(id) => (id, 200),
                None => {
                    if w.command_creates >= 200 {
                        return Err(ApiError::daily_command_creates());
                    }
                    w.command_creates += 1;
                    (w.next_id(), 201)
                }
            };
            let cmd = normalize_command(w, c.body, id, guild);
            w.commands
                .retain(|x| !(in_scope(x) && parse_id(x.get("id")) == Some(id)));
            w.commands.push(cmd.clone());
            Ok((status, Some(cmd)))
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

fn command_kind(cmd: &Value) -> u64 {
    cmd.get("type").and_then(Value::as_u64).unwrap_or(1)
}

fn find_same(existing: &[Value], cmd: &Value) -> Option<u64> {
    existing
        .iter()
        .find(|x| command_kind(x) == command_kind(cmd) && x.get("name") == cmd.get("name"))
        .and_then(|x| parse_id(x.get("id")))
}

fn normalize_command(w: &mut World, cmd: &Value, id: u64, guild: Option<u64>) -> Value {
    let kind = command_kind(cmd);
    let version = w.next_id();
    let mut v = json!({
        "id": id_str(id),
        "application_id": id_str(APPLICATION_ID),
        "version": id_str(version),
        "type": kind,
        "name": cmd["name"],
        "name_localizations": cmd.get("name_localizations").cloned().unwrap_or(Value::Null),
        "description": cmd.get("description").and_then(Value::as_str).unwrap_or(""),
        "description_localizations": cmd.get("description_localizations").cloned().unwrap_or(Value::Null),
        "default_member_permissions": match cmd.get("default_member_permissions") {
            Some(Value::Number(n)) => json!(n.to_string()),
            Some(v) => v.clone(),
            None => Value::Null,
        },
        "nsfw": cmd.get("nsfw").and_then(Value::as_bool).unwrap_or(false),
    });
    match guild {
        Some(g) => v["guild_id"] = id_str(g),
        None => {
            v["dm_permission"] = cmd.get("dm_permission").cloned().unwrap_or(json!(true));
            v["contexts"] = cmd.get("contexts").cloned().unwrap_or(Value::Null);
            v["integration_types"] = cmd.get("integration_types").cloned().unwrap_or(json!([0]));
        }
    }
    if let Some(opts) = cmd
        .get("options")
        .and_then(Value::as_array)
        .filter(|o| !o.is_empty())
    {
        v["options"] = Value::Array(opts.clone());
    }
    v
}

// ----- guild -----

fn guild_routes(w: &mut World, method: &str, template: &str, c: &Ctx) -> Out {
    match (method, template) {
        ("GET", "/guilds/{guild}") => {
            let mut g = w.guild_json(false, 0);
            if c.q("with_counts") == Some("true") {
                g["approximate_member_count"] = json!(w.members.len());
                g["approximate_presence_count"] = json!(0);
            }
            ok(g)
        }
        ("GET", "/guilds/{guild}/channels") => ok(w
            .channels
            .values()
            .filter(|ch| !ch.is_thread())
            .map(|ch| w.channel_json(ch))
            .collect()),
        ("POST", "/guilds/{guild}/channels") => create_channel(w, c),
        ("GET", "/guilds/{guild}/roles") => ok(Value::Array(w.roles_json())),
        ("GET", "/guilds/{guild}/members/{user}") => {
            let id = c.id("user")?;
            if !w.members.contains_key(&id) {
                return Err(ApiError::unknown_member());
            }
            ok(w.member_json(id, true, false))
        }
        // Add or remove a member's role: Manage Roles, and only roles below the bot's highest
        // (else 50013); an unknown member 10007, an unknown role 10011; 204 and
        // GUILD_MEMBER_UPDATE, as Discord documents.
        ("PUT", "/guilds/{guild}/members/{user}/roles/{role}")
        | ("DELETE", "/guilds/{guild}/members/{user}/roles/{role}") => {
            let user = c.id("user")?;
            let role = c.id("role")?;
            if !w.members.contains_key(&user) {
                return Err(ApiError::unknown_member());
            }
            let Some(r) = w.roles.get(&role).cloned() else {
                return Err(ApiError::unknown_role());
            };
            w.bot_requires_in_guild(PERM_MANAGE_ROLES)?;
            let highest = w.members[&BOT_USER_ID]
                .roles
                .iter()
                .filter_map(|id| w.roles.get(id))
                .map(|r| r.position)
                .max()
                .unwrap_or(0);
            if r.position >= highest || r.bot_id.is_some() || role == GUILD_ID {
                return Err(missing_permissions());
            }
            let m = w.members.get_mut(&user).expect("checked above");
            let changed = if method == "PUT" {
                !m.roles.contains(&role) && {
                    m.roles.push(role);
                    true
                }
            } else {
                let before = m.roles.len();
                m.roles.retain(|x| *x != role);
                m.roles.len() != before
            };
            if changed {
                let mut m = w.member_json(user, true, false);
                m["guild_id"] = id_str(GUILD_ID);
                w.dispatch("GUILD_MEMBER_UPDATE", m, Some(INTENT_GUILD_MEMBERS));
            }
            no_content()
        }
        ("GET", "/guilds/{guild}/members") => {
            let limit: usize = match c.q("limit") {
                None => 1,
                Some(l) => match l.parse::<usize>() {
                    Ok(n) if (1..=1000).contains(&n) => n,
                    _ => {
                        let mut errs = FormErrors::default();
                        errs.add(
                            "limit",
                            "NUMBER_TYPE_MAX",
                            "int value should be between 1 and 1000.",
                        );
                        return errs.into_result().map(|_| (200, None));
                    }
                },
            };
            let after = c
                .q("after")
                .and_then(|a| a.parse::<u64>().ok())
                .unwrap_or(0);
            ok(w.members
                .keys()
                .filter(|u| **u > after)
                .take(limit)
                .map(|u| w.member_json(*u, true, false))
                .collect())
        }
        ("GET", "/guilds/{guild}/threads/active") => ok(json!({
            "threads": w.channels.values()
                .filter(|ch| ch.thread.as_ref().is_some_and(|t| !t.archived))
                .map(|ch| w.channel_json(ch))
                .collect::<Vec<_>>(),
            "members": [],
        })),
        _ => Err(ApiError::not_found()),
    }
}

/// Discord folds text channel names to lowercase with dashes for spaces.
fn text_channel_name(name: &str) -> String {
    name.split_whitespace()
        .collect::<Vec<_>>()
        .join("-")
        .to_lowercase()
}

fn create_channel(w: &mut World, c: &Ctx) -> Out {
    let body = c.body_obj();
    let mut errs = FormErrors::default();
    errs.check_str(body.get("name"), "name", 1, 100, true);
    let kind = body.get("type").and_then(Value::as_u64).unwrap_or(0);
    if ![0, 2, 4, 5, 13, 15, 16].contains(&kind) {
        errs.choices("type", &["0", "2", "4", "5", "13", "15", "16"]);
    }
    errs.check_str(body.get("topic"), "topic", 0, 1024, false);
    let parent = parse_id(body.get("parent_id"));
    if let Some(p) = parent {
        match w.channels.get(&p) {
            Some(ch) if ch.kind == 4 && kind != 4 => {
                if w.channels
                    .values()
                    .filter(|x| x.parent_id == Some(p) && !x.is_thread())
                    .count()
                    >= 50
                {
                    errs.add(
                        "parent_id",
                        "CHANNEL_PARENT_MAX_CHANNELS",
                        "Maximum number of channels in category reached (50)",
                    );
                }
            }
            _ => errs.add("parent_id", "CHANNEL_PARENT_INVALID_TYPE", "Not a category"),
        }
    }
    let overwrites: Option<Vec<OverwriteRec>> = body
        .get("permission_overwrites")
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(OverwriteRec::from_json).collect());
    errs.into_result()?;
    // Discord checks Manage Channels where the channel goes: in its category, or server-wide.
    match parent.filter(|p| w.channels.contains_key(p)) {
        Some(p) => w.bot_requires(p, PERM_MANAGE_CHANNELS)?,
        None => w.bot_requires_in_guild(PERM_MANAGE_CHANNELS)?,
    }
    if w.channels.values().filter(|x| !x.is_thread()).count() >= 500 {
        return Err(ApiError::max_channels());
    }
    let raw = body["name"].as_str().unwrap_or("");
    let name = if matches!(kind, 0 | 5 | 15 | 16) {
        text_channel_name(raw)
    } else {
        raw.to_string()
    };
    let position = w
        .channels
        .values()
        .filter(|x| x.parent_id == parent && !x.is_thread())
        .map(|x| x.position + 1)
        .max()
        .unwrap_or(0);
    let id = w.next_id();
    let ch = ChannelRec {
        id,
        kind: kind as u8,
        name,
        parent_id: parent,
        topic: body
            .get("topic")
            .and_then(Value::as_str)
            .map(str::to_string),
        position: body
            .get("position")
            .and_then(Value::as_u64)
            .unwrap_or(position),
        nsfw: body.get("nsfw").and_then(Value::as_bool).unwrap_or(false),
        rate_limit_per_user: body
            .get("rate_limit_per_user")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        last_message_id: None,
        last_pin_timestamp: None,
        thread: None,
        renames: vec![],
    };
    // Without overwrites of its own, a channel made in a category starts synced with it.
    let own = overwrites.unwrap_or_else(|| {
        parent
            .and_then(|p| w.overwrites.get(&p).cloned())
            .unwrap_or_default()
    });
    if !own.is_empty() {
        w.overwrites.insert(id, own);
    }
    let v = w.channel_json(&ch);
    w.channels.insert(id, ch);
    w.dispatch("CHANNEL_CREATE", v.clone(), Some(INTENT_GUILDS));
    created(v)
}

// ----- channels -----

fn channel_routes(w: &mut World, method: &str, template: &str, c: &Ctx) -> Out {
    let channel_id = c.id("channel")?;
    if !w.channels.contains_key(&channel_id) {
        return Err(ApiError::unknown_channel());
    }
    channel_permission_check(w, channel_id, method, template, c)?;
    match (method, template) {
        ("GET", "/channels/{channel}") => ok(w.channel_json(&w.channels[&channel_id])),
        ("PATCH", "/channels/{channel}") => modify_channel(w, channel_id, c),
        ("DELETE", "/channels/{channel}") => {
            let ch = w.channels.remove(&channel_id).expect("checked above");
            w.overwrites.remove(&channel_id);
            let v = w.channel_json(&ch);
            let event = if ch.is_thread() {
                "THREAD_DELETE"
            } else {
                "CHANNEL_DELETE"
            };
            w.dispatch(event, v.clone(), Some(INTENT_GUILDS));
            ok(v)
        }
        ("POST", "/channels/{channel}/threads") if w.is_forum(channel_id) => {
            created(w.create_forum_post(channel_id, &c.body_obj(), c.files)?)
        }
        ("POST", "/channels/{channel}/threads") => create_thread(w, channel_id, None, c),
        ("PUT", "/channels/{channel}/thread-members/@me") => {
            w.add_thread_member(channel_id, BOT_USER_ID)?;
            no_content()
        }
        ("PUT", "/channels/{channel}/thread-members/{user}") => {
            let user = c.id("user")?;
            w.add_thread_member(channel_id, user)?;
            no_content()
        }
        ("POST", "/channels/{channel}/messages/{message}/threads") => {
            let m = message_in(w, channel_id, c)?;
            create_thread(w, channel_id, Some(m), c)
        }
        ("POST", "/channels/{channel}/typing") => no_content(),
        ("GET", "/channels/{channel}/messages")
            if w.bot_channel_permissions(channel_id) & PERM_READ_MESSAGE_HISTORY == 0 =>
        {
            // Discord's documented answer without Read Message History: no messages.
            ok(json!([]))
        }
        ("GET", "/channels/{channel}/messages") => list_messages(w, channel_id, c),
        ("POST", "/channels/{channel}/messages") if w.is_forum(channel_id) => Err(ApiError::new(
            400,
            40058,
            "Cannot send a message in a forum channel",
        )),
        ("POST", "/channels/{channel}/messages") => {
            let id = w.create_message(NewMessage {
                channel_id,
                author_id: BOT_USER_ID,
                body: &c.body_obj(),
                files: c.files,
                target: MessageTarget::Channel,
                kind: 0,
                interaction: None,
                extra_flags: 0,
            })?;
            ok(w.message_for_bot(id, w.privileged_intents))
        }
        ("GET", "/channels/{channel}/messages/{message}") => {
            let id = message_in(w, channel_id, c)?;
            ok(w.message_for_bot(id, w.privileged_intents))
        }
        ("PATCH", "/channels/{channel}/messages/{message}") => {
            let id = message_in(w, channel_id, c)?;
            let body = c.body_obj();
            let only_flags = body
                .as_object()
                .is_some_and(|o| o.keys().all(|k| k == "flags"));
            if w.messages[&id].author_id != BOT_USER_ID && !only_flags {
                return Err(ApiError::not_author());
            }
            w.refuse_if_archived(channel_id)?;
            w.edit_message(id, &body, c.files, MessageTarget::Channel)?;
            ok(w.message_for_bot(id, w.privileged_intents))
        }
        ("DELETE", "/channels/{channel}/messages/{message}") => {
            let id = message_in(w, channel_id, c)?;
            w.delete_message(id)?;
            no_content()
        }
        ("GET", "/channels/{channel}/messages/{message}/reactions/{emoji}") => {
            let id = message_in(w, channel_id, c)?;
            let key = emoji_key(c.param("emoji"))?;
            let users = w.messages[&id]
                .reactions
                .iter()
                .find(|r| r.key == key)
                .map(|r| r.users.clone())
                .unwrap_or_default();
            ok(users.iter().map(|u| w.user_json(*u)).collect())
        }
        ("PUT", "/channels/{channel}/messages/{message}/reactions/{emoji}/@me") => {
            let id = message_in(w, channel_id, c)?;
            w.refuse_if_archived(channel_id)?;
            let key = emoji_key(c.param("emoji"))?;
            react(w, id, &key, BOT_USER_ID, true);
            no_content()
        }
        ("DELETE", "/channels/{channel}/messages/{message}/reactions/{emoji}/@me") => {
            let id = message_in(w, channel_id, c)?;
            let key = emoji_key(c.param("emoji"))?;
            react(w, id, &key, BOT_USER_ID, false);
            no_content()
        }
        ("GET", "/channels/{channel}/pins") | ("GET", "/channels/{channel}/messages/pins")
            if w.bot_channel_permissions(channel_id) & PERM_READ_MESSAGE_HISTORY == 0 =>
        {
            if template.ends_with("/messages/pins") {
                ok(json!({ "items": [], "has_more": false }))
            } else {
                ok(json!([]))
            }
        }
        ("GET", "/channels/{channel}/pins") => {
            let mut pinned: Vec<(u64, u64)> = pinned_in(w, channel_id);
            pinned.sort_by_key(|p| std::cmp::Reverse(p.1));
            ok(pinned
                .iter()
                .map(|(id, _)| w.message_for_bot(*id, w.privileged_intents))
                .collect())
        }
        ("GET", "/channels/{channel}/messages/pins") => {
            let mut pinned: Vec<(u64, u64)> = pinned_in(w, channel_id);
            pinned.sort_by_key(|p| std::cmp::Reverse(p.1));
            let limit = c
                .q("limit")
                .and_then(|l| l.parse::<usize>().ok())
                .unwrap_or(50)
                .clamp(1, 50);
            let items: Vec<Value> = pinned
                .iter()
                .take(limit)
                .map(|(id, at)| json!({ "pinned_at": iso(*at), "message": w.message_for_bot(*id, w.privileged_intents) }))
                .collect();
            ok(json!({ "items": items, "has_more": pinned.len() > limit }))
        }
        ("PUT", "/channels/{channel}/pins/{message}")
        | ("PUT", "/channels/{channel}/messages/pins/{message}") => {
            let id = message_in(w, channel_id, c)?;
            w.refuse_if_archived(channel_id)?;
            pin(w, id, BOT_USER_ID)?;
            no_content()
        }
        ("DELETE", "/channels/{channel}/pins/{message}")
        | ("DELETE", "/channels/{channel}/messages/pins/{message}") => {
            let id = message_in(w, channel_id, c)?;
            unpin(w, id);
            no_content()
        }
        _ => Err(ApiError::not_found()),
    }
}

/// What each channel route needs of the bot, from Discord's documentation of the route: every
/// one needs View Channel (else 50001), the rest 50013 when missing.
fn channel_permission_check(
    w: &World,
    channel_id: u64,
    method: &str,
    template: &str,
    c: &Ctx,
) -> Result<(), ApiError> {
    let ch = &w.channels[&channel_id];
    let thread = ch.is_thread();
    let send = if thread {
        PERM_SEND_MESSAGES_IN_THREADS
    } else {
        PERM_SEND_MESSAGES
    };
    let body = c.body_obj();
    let others_message = || {
        parse_id(Some(&json!(c.param("message"))))
            .and_then(|m| w.messages.get(&m))
            .is_some_and(|m| m.author_id != BOT_USER_ID)
    };
    let needs = match (method, template) {
        ("PATCH", "/channels/{channel}") if thread => {
            let only_unarchive = body.as_object().is_some_and(|o| {
                o.get("archived") == Some(&json!(false))
                    && o.keys().all(|k| k == "archived" || k == "locked")
                    && o.get("locked").map_or(true, |l| l == &json!(false))
            });
            let locked = ch.thread.as_ref().is_some_and(|t| t.locked);
            if only_unarchive && !locked {
                PERM_SEND_MESSAGES
            } else {
                PERM_MANAGE_THREADS
            }
        }
        ("PATCH", "/channels/{channel}") => {
            // Moving to another category needs Manage Channels there too.
            if let Some(p) = parse_id(body.get("parent_id")).filter(|p| w.channels.contains_key(p))
            {
                w.bot_requires(p, PERM_MANAGE_CHANNELS)?;
            }
            PERM_MANAGE_CHANNELS
        }
        ("DELETE", "/channels/{channel}") if thread => PERM_MANAGE_THREADS,
        ("DELETE", "/channels/{channel}") => PERM_MANAGE_CHANNELS,
        ("POST", "/channels/{channel}/threads") => {
            if ch.kind == 15 || ch.kind == 16 {
                PERM_SEND_MESSAGES
            } else if body.get("type").and_then(Value::as_u64) == Some(12) {
                PERM_CREATE_PRIVATE_THREADS
            } else {
                PERM_CREATE_PUBLIC_THREADS
            }
        }
        ("POST", "/channels/{channel}/messages/{message}/threads") => {
            PERM_CREATE_PUBLIC_THREADS | PERM_READ_MESSAGE_HISTORY
        }
        ("POST", "/channels/{channel}/typing") => send,
        ("POST", "/channels/{channel}/messages") => {
            let mut n = send;
            if !c.files.is_empty() {
                n |= PERM_ATTACH_FILES;
            }
            if body.get("message_reference").is_some_and(|r| !r.is_null()) {
                n |= PERM_READ_MESSAGE_HISTORY;
            }
            n
        }
        ("GET", "/channels/{channel}/messages/{message}") => PERM_READ_MESSAGE_HISTORY,
        ("PATCH", "/channels/{channel}/messages/{message}") if others_message() => {
            PERM_MANAGE_MESSAGES
        }
        ("DELETE", "/channels/{channel}/messages/{message}") if others_message() => {
            PERM_MANAGE_MESSAGES
        }
        ("PUT", "/channels/{channel}/messages/{message}/reactions/{emoji}/@me") => {
            let first = parse_id(Some(&json!(c.param("message"))))
                .and_then(|m| w.messages.get(&m))
                .map_or(true, |m| {
                    !m.reactions
                        .iter()
                        .any(|r| r.key == c.param("emoji") && !r.users.is_empty())
                });
            PERM_READ_MESSAGE_HISTORY | if first { PERM_ADD_REACTIONS } else { 0 }
        }
        ("PUT", "/channels/{channel}/pins/{message}")
        | ("PUT", "/channels/{channel}/messages/pins/{message}")
        | ("DELETE", "/channels/{channel}/pins/{message}")
        | ("DELETE", "/channels/{channel}/messages/pins/{message}") => PERM_PIN_MESSAGES,
        _ => 0,
    };
    w.bot_requires(channel_id, needs)
}

fn message_in(w: &World, channel_id: u64, c: &Ctx) -> Result<u64, ApiError> {
    let id = c.id("message")?;
    match w.messages.get(&id) {
        Some(m) if m.channel_id == channel_id && !m.deleted && !m.ephemeral => Ok(id),
        _ => Err(ApiError::unknown_message()),
    }
}

fn pinned_in(w: &World, channel_id: u64) -> Vec<(u64, u64)> {
    w.messages
        .iter()
        .filter(|(_, m)| m.channel_id == channel_id && !m.deleted)
        .filter_map(|(id, m)| m.pinned_at.map(|at| (*id, at)))
        .collect()
}

fn emoji_key(raw: &str) -> Result<String, ApiError> {
    match raw.rsplit_once(':') {
        // No custom emoji exist in the fake's guild.
        Some(_) => Err(ApiError::unknown_emoji()),
        None if raw.is_empty() || raw.is_ascii() => Err(ApiError::unknown_emoji()),
        None => Ok(raw.to_string()),
    }
}

/// Adds or removes a reaction and dispatches the matching event; no-ops dispatch nothing.
pub fn react(w: &mut World, message_id: u64, key: &str, user: u64, add: bool) {
    let rec = w.messages.get_mut(&message_id).expect("message exists");
    let channel_id = rec.channel_id;
    let author = rec.author_id;
    let pos = rec.reactions.iter().position(|r| r.key == key);
    let changed = match (pos, add) {
        (Some(p), true) if !rec.reactions[p].users.contains(&user) => {
            rec.reactions[p].users.push(user);
            true
        }
        (None, true) => {
            rec.reactions.push(ReactionRec {
                key: key.to_string(),
                users: vec![user],
            });
            true
        }
        (Some(p), false) if rec.reactions[p].users.contains(&user) => {
            rec.reactions[p].users.retain(|u| *u != user);
            true
        }
        _ => false,
    };
    if !changed {
        return;
    }
    w.set_reactions_field(message_id);
    let mut d = json!({
        "user_id": id_str(user),
        "channel_id": id_str(channel_id),
        "message_id": id_str(message_id),
        "guild_id": id_str(GUILD_ID),
        "emoji": emoji_json(key),
        "burst": false,
        "type": 0,
    });
    let event = if add {
        d["member"] = w.member_json(user, true, false);
        d["message_author_id"] = id_str(author);
        d["burst_colors"] = json!([]);
        "MESSAGE_REACTION_ADD"
    } else {
        "MESSAGE_REACTION_REMOVE"
    };
    w.dispatch(event, d, Some(INTENT_GUILD_MESSAGE_REACTIONS));
}

/// Pins a message the way Discord does: CHANNEL_PINS_UPDATE plus a "pinned a message" system message.
pub fn pin(w: &mut World, id: u64, by: u64) -> Result<(), ApiError> {
    let rec = &w.messages[&id];
    if rec.pinned_at.is_some() {
        return Ok(());
    }
    let kind = rec.obj["type"].as_u64().unwrap_or(0);
    if ![0, 19, 20, 23].contains(&kind) {
        return Err(ApiError::cannot_pin_system());
    }
    let channel_id = rec.channel_id;
    if pinned_in(w, channel_id).len() >= 50 {
        return Err(ApiError::max_pins());
    }
    let at = now_ms();
    let rec = w.messages.get_mut(&id).expect("message exists");
    rec.pinned_at = Some(at);
    rec.obj["pinned"] = json!(true);
    if let Some(ch) = w.channels.get_mut(&channel_id) {
        ch.last_pin_timestamp = Some(iso(at));
    }
    w.dispatch(
        "CHANNEL_PINS_UPDATE",
        json!({ "guild_id": id_str(GUILD_ID), "channel_id": id_str(channel_id), "last_pin_timestamp": iso(at) }),
        Some(INTENT_GUILDS),
    );
    let body = json!({ "content": "", "message_reference": { "message_id": id_str(id), "fail_if_not_exists": false } });
    let notice = w.create_message(NewMessage {
        channel_id,
        author_id: by,
        body: &body,
        files: &[],
        target: MessageTarget::Channel,
        kind: 6,
        interaction: None,
        extra_flags: FLAG_LOADING,
    });
    if let Ok(n) = notice {
        // The notice is a system message, not a loading one; the flag only let it be empty.
        let rec = w.messages.get_mut(&n).expect("just created");
        let f = rec.obj["flags"].as_u64().unwrap_or(0) & !FLAG_LOADING;
        rec.obj["flags"] = json!(f);
        rec.obj
            .as_object_mut()
            .expect("message object")
            .remove("referenced_message");
    }
    Ok(())
}

pub fn unpin(w: &mut World, id: u64) {
    let rec = w.messages.get_mut(&id).expect("message exists");
    if rec.pinned_at.take().is_none() {
        return;
    }
    rec.obj["pinned"] = json!(false);
    let channel_id = rec.channel_id;
    let last = pinned_in(w, channel_id)
        .iter()
        .map(|(_, at)| *at)
        .max()
        .map(iso);
    if let Some(ch) = w.channels.get_mut(&channel_id) {
        ch.last_pin_timestamp = last.clone();
    }
    w.dispatch(
        "CHANNEL_PINS_UPDATE",
        json!({ "guild_id": id_str(GUILD_ID), "channel_id": id_str(channel_id), "last_pin_timestamp": last }),
        Some(INTENT_GUILDS),
    );
}

fn list_messages(w: &World, channel_id: u64, c: &Ctx) -> Out {
    let limit = match c.q("limit") {
        None | Some("") => 50,
        Some(l) => {
            let mut errs = FormErrors::default();
            match l.parse::<i64>() {
                Ok(n) if n > 100 => errs.add(
                    "limit",
                    "NUMBER_TYPE_MAX",
                    "int value should be less than or equal to 100.",
                ),
                Ok(n) if n < 1 => errs.add(
                    "limit",
                    "NUMBER_TYPE_MIN",
                    "int value should be greater than or equal to 1.",
                ),
                Ok(_) => {}
                Err(_) => errs.add(
                    "limit",
                    "NUMBER_TYPE_COERCE",
                    format!("Value \"{l}\" is not int."),
                ),
            }
            errs.into_result()?;
            l.parse::<usize>().expect("validated above")
        }
    };
    let ids = w.channel_messages(channel_id);
    let anchor = |k: &str| c.q(k).and_then(|v| v.parse::<u64>().ok());
    let mut picked: Vec<u64> = if let Some(a) = anchor("around") {
        let before: Vec<u64> = ids.iter().copied().filter(|i| *i < a).collect();
        let after: Vec<u64> = ids.iter().copied().filter(|i| *i > a).collect();
        let half = limit / 2;
        let mut v: Vec<u64> = before[before.len().saturating_sub(half)..].to_vec();
        if ids.contains(&a) {
            v.push(a);
        }
        let room = limit.saturating_sub(v.len());
        v.extend(after.into_iter().take(room));
        v
    } else if let Some(b) = anchor("before") {
        let v: Vec<u64> = ids.iter().copied().filter(|i| *i < b).collect();
        v[v.len().saturating_sub(limit)..].to_vec()
    } else if let Some(a) = anchor("after") {
        ids.iter().copied().filter(|i| *i > a).take(limit).collect()
    } else {
        ids[ids.len().saturating_sub(limit)..].to_vec()
    };
    picked.reverse();
    // A nonce is echoed only when the message is created, never in the history.
    ok(picked
        .into_iter()
        .map(|id| {
            let mut m = w.message_for_bot(id, w.privileged_intents);
            if let Some(o) = m.as_object_mut() {
                o.remove("nonce");
            }
            m
        })
        .collect())
}

fn modify_channel(w: &mut World, channel_id: u64, c: &Ctx) -> Out {
    let body = c.body_obj();
    let current = w.channels[&channel_id].clone();
    w.check_thread_patch(channel_id, &body)?;
    let mut errs = FormErrors::default();
    let in_forum = current.parent_id.is_some_and(|p| w.is_forum(p));
    let applied = match (current.is_thread() && in_forum, body.get("applied_tags")) {
        (true, v) => {
            w.check_applied_tags(current.parent_id.expect("a post has a forum"), v, &mut errs)
        }
        (false, Some(v)) if !v.is_null() => {
            errs.add(
                "applied_tags",
                "CHANNEL_TYPE_INVALID",
                "Only forum posts have tags",
            );
            None
        }
        _ => None,
    };
    let available = match body.get("available_tags").filter(|v| !v.is_null()) {
        Some(v) if current.kind == 15 => Some(w.check_available_tags(channel_id, v, &mut errs)?),
        Some(_) => {
            errs.add(
                "available_tags",
                "CHANNEL_TYPE_INVALID",
                "Only forums have tags",
            );
            None
        }
        None => None,
    };
    errs.check_str(body.get("name"), "name", 1, 100, false);
    if !current.is_thread() {
        errs.check_str(body.get("topic"), "topic", 0, 1024, false);
    }
    if let Some(r) = body.get("rate_limit_per_user").and_then(Value::as_u64) {
        if r > 21600 {
            errs.add(
                "rate_limit_per_user",
                "NUMBER_TYPE_MAX",
                "int value should be less than or equal to 21600.",
            );
        }
    }
    if let Some(p) = body.get("parent_id").filter(|v| !v.is_null()) {
        let ok_parent = parse_id(Some(p))
            .and_then(|p| w.channels.get(&p))
            .is_some_and(|ch| ch.kind == 4);
        if !ok_parent || current.is_thread() || current.kind == 4 {
            errs.add("parent_id", "CHANNEL_PARENT_INVALID_TYPE", "Not a category");
        } else if let Some(p) = parse_id(Some(p)).filter(|p| current.parent_id != Some(*p)) {
            // A move counts against the category's 50 as a create does.
            if w.channels
                .values()
                .filter(|x| x.parent_id == Some(p) && !x.is_thread())
                .count()
                >= 50
            {
                errs.add(
                    "parent_id",
                    "CHANNEL_PARENT_MAX_CHANNELS",
                    "Maximum number of channels in category reached (50)",
                );
            }
        }
    }
    if let Some(d) = body.get("auto_archive_duration").filter(|v| !v.is_null()) {
        if !d
            .as_u64()
            .is_some_and(|d| [60, 1440, 4320, 10080].contains(&d))
        {
            errs.choices("auto_archive_duration", &["60", "1440", "4320", "10080"]);
        }
    }
    errs.into_result()?;
    let new_name = body.get("name").and_then(Value::as_str).map(|n| {
        if matches!(current.kind, 0 | 5 | 15 | 16) {
            text_channel_name(n)
        } else {
            n.to_string()
        }
    });
    let name_changes = new_name.as_ref().is_some_and(|n| *n != current.name);
    let topic_changes = body
        .get("topic")
        .is_some_and(|t| t.as_str().map(str::to_string) != current.topic);
    if (name_changes || topic_changes) && w.channel_rename_limit {
        let window = Duration::from_secs(600);
        let recent: Vec<Instant> = current
            .renames
            .iter()
            .copied()
            .filter(|t| t.elapsed() < window)
            .collect();
        if recent.len() >= 2 {
            let retry = (window - recent[0].elapsed()).as_secs_f64().ceil();
            let mut e = ApiError::new(429, 0, "You are being rate limited.");
            e.body = super::ratelimit::rate_limited_body(retry, false);
            return Err(e);
        }
    }
    if let Some(tags) = applied {
        w.applied_tags.insert(channel_id, tags);
    }
    if let Some(tags) = available {
        let kept: Vec<u64> = tags.iter().filter_map(|t| parse_id(t.get("id"))).collect();
        w.forum_tags.insert(channel_id, tags);
        // A tag removed from the forum comes off its posts.
        for (post, applied) in w.applied_tags.iter_mut() {
            if w.channels.get(post).and_then(|p| p.parent_id) == Some(channel_id) {
                applied.retain(|t| kept.contains(t));
            }
        }
    }
    let ch = w.channels.get_mut(&channel_id).expect("checked above");
    if name_changes || topic_changes {
        ch.renames
            .retain(|t| t.elapsed() < Duration::from_secs(600));
        ch.renames.push(Instant::now());
    }
    if let Some(n) = new_name {
        ch.name = n;
    }
    if let Some(t) = body.get("topic") {
        ch.topic = t.as_str().map(str::to_string);
    }
    if let Some(p) = body.get("parent_id") {
        ch.parent_id = parse_id(Some(p));
    }
    if let Some(p) = body.get("position").and_then(Value::as_u64) {
        ch.position = p;
    }
    if let Some(n) = body.get("nsfw").and_then(Value::as_bool) {
        ch.nsfw = n;
    }
    if let Some(r) = body.get("rate_limit_per_user").and_then(Value::as_u64) {
        ch.rate_limit_per_user = r;
    }
    if let Some(t) = &mut ch.thread {
        if let Some(a) = body.get("archived").and_then(Value::as_bool) {
            if a != t.archived {
                t.archived = a;
                t.archive_timestamp = iso(now_ms());
            }
        }
        if let Some(l) = body.get("locked").and_then(Value::as_bool) {
            t.locked = l;
        }
        if let Some(d) = body.get("auto_archive_duration").and_then(Value::as_u64) {
            t.auto_archive_duration = d;
        }
        if let Some(i) = body.get("invitable").and_then(Value::as_bool) {
            t.invitable = i;
        }
    }
    let is_thread = ch.is_thread();
    let v = w.channel_json(&w.channels[&channel_id]);
    w.dispatch(
        if is_thread {
            "THREAD_UPDATE"
        } else {
            "CHANNEL_UPDATE"
        },
        v.clone(),
        Some(INTENT_GUILDS),
    );
    ok(v)
}

fn create_thread(w: &mut World, parent_id: u64, from_message: Option<u64>, c: &Ctx) -> Out {
    let parent = w.channels[&parent_id].clone();
    if !matches!(parent.kind, 0 | 5) {
        return Err(ApiError::wrong_channel_type());
    }
    let body = c.body_obj();
    let mut errs = FormErrors::default();
    errs.check_str(body.get("name"), "name", 1, 100, true);
    let default_kind = match (from_message, parent.kind) {
        (Some(_), 5) => 10,
        (Some(_), _) => 11,
        (None, _) => 12,
    };
    let kind = body
        .get("type")
        .and_then(Value::as_u64)
        .unwrap_or(default_kind);
    if from_message.is_none() && ![10, 11, 12].contains(&kind) {
        errs.choices("type", &["10", "11", "12"]);
    }
    if kind == 12 && parent.kind == 5 {
        errs.add(
            "type",
            "THREAD_TYPE_INVALID",
            "Private threads cannot be created in announcement channels",
        );
    }
    let archive = body
        .get("auto_archive_duration")
        .and_then(Value::as_u64)
        .unwrap_or(4320);
    if ![60, 1440, 4320, 10080].contains(&archive) {
        errs.choices("auto_archive_duration", &["60", "1440", "4320", "10080"]);
    }
    errs.into_result()?;
    w.check_thread_cap()?;
    if let Some(m) = from_message {
        if w.messages[&m].obj.get("thread").is_some() || w.channels.contains_key(&m) {
            return Err(ApiError::new(
                400,
                160004,
                "A thread has already been created for this message",
            ));
        }
    }
    let id = from_message.unwrap_or_else(|| w.next_id());
    let now = iso(now_ms());
    let ch = ChannelRec {
        id,
        kind: kind as u8,
        name: body["name"].as_str().unwrap_or("").to_string(),
        parent_id: Some(parent_id),
        topic: None,
        position: 0,
        nsfw: false,
        rate_limit_per_user: body
            .get("rate_limit_per_user")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        last_message_id: None,
        last_pin_timestamp: None,
        thread: Some(ThreadMeta {
            archived: false,
            locked: false,
            auto_archive_duration: archive,
            owner_id: BOT_USER_ID,
            create_timestamp: now.clone(),
            archive_timestamp: now,
            message_count: 0,
            invitable: body
                .get("invitable")
                .and_then(Value::as_bool)
                .unwrap_or(true),
        }),
        renames: vec![],
    };
    let v = w.channel_json(&ch);
    w.channels.insert(id, ch);
    w.thread_members.insert(id, vec![BOT_USER_ID]);
    if let Some(m) = from_message {
        let rec = w.messages.get_mut(&m).expect("checked above");
        rec.obj["thread"] = v.clone();
        let f = rec.obj["flags"].as_u64().unwrap_or(0) | (1 << 5);
        rec.obj["flags"] = json!(f);
    }
    let mut event = v.clone();
    event["newly_created"] = json!(true);
    event["member"] = json!({
        "id": id_str(id),
        "user_id": id_str(BOT_USER_ID),
        "join_timestamp": iso(now_ms()),
        "flags": 0,
    });
    w.dispatch("THREAD_CREATE", event, Some(INTENT_GUILDS));
    created(v)
}

// ----- interactions -----

fn callback(w: &mut World, c: &Ctx) -> Out {
    let id = c.id("interaction")?;
    let token = c.param("token");
    let deadline = w.interaction_deadline;
    let Some(i) = w.interactions.get_mut(&id).filter(|i| i.token == token) else {
        return Err(ApiError::unknown_interaction());
    };
    if i.invalidated {
        return Err(ApiError::unknown_interaction());
    }
    if i.ack.is_some() {
        return Err(ApiError::already_acknowledged());
    }
    let latency = i.dispatched.elapsed();
    if latency > deadline {
        i.invalidated = true;
        return Err(ApiError::unknown_interaction());
    }
    let i = i.clone();
    let body = c.body_obj();
    let mut errs = FormErrors::default();
    let kind = body.get("type").and_then(Value::as_u64);
    let valid: &[u64] = match i.kind {
        2 => &[4, 5, 9],
        3 => &[4, 5, 6, 7, 9],
        4 => &[8],
        _ if i.source_message.is_some() => &[4, 5, 6, 7],
        _ => &[4, 5],
    };
    let Some(kind) = kind.filter(|k| valid.contains(k)) else {
        let names: Vec<String> = valid.iter().map(u64::to_string).collect();
        errs.choices(
            "type",
            &names.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        return errs.into_result().map(|_| (204, None));
    };
    let data = body.get("data").cloned().unwrap_or(Value::Null);
    match kind {
        4 | 7 => {
            check_message_fields(
                &if data.is_null() {
                    json!({})
                } else {
                    data.clone()
                },
                "data",
                &mut errs,
            );
        }
        8 => check_autocomplete(&data, &mut errs),
        9 => check_modal(&data, &mut errs),
        _ => {}
    }
    errs.into_result()?;
    let data_obj = if data.is_null() {
        json!({})
    } else {
        data.clone()
    };
    let mut original = None;
    let mut loading = false;
    match kind {
        4 => {
            let msg_kind = match (i.kind, i.payload["data"]["type"].as_u64()) {
                (2, Some(1)) => 20,
                (2, _) => 23,
                _ => 0,
            };
            original = Some(w.create_message(NewMessage {
                channel_id: i.channel_id,
                author_id: BOT_USER_ID,
                body: &data_obj,
                files: c.files,
                target: MessageTarget::Interaction,
                kind: msg_kind,
                interaction: Some(id),
                extra_flags: 0,
            })?);
        }
        5 => {
            let flags = data_obj.get("flags").and_then(Value::as_u64).unwrap_or(0) & FLAG_EPHEMERAL;
            let body = json!({ "content": "", "flags": flags });
            let msg_kind = if i.kind == 2 { 20 } else { 0 };
            original = Some(w.create_message(NewMessage {
                channel_id: i.channel_id,
                author_id: BOT_USER_ID,
                body: &body,
                files: &[],
                target: MessageTarget::Interaction,
                kind: msg_kind,
                interaction: Some(id),
                extra_flags: FLAG_LOADING,
            })?);
            loading = true;
        }
        6 => original = i.source_message,
        7 => {
            let src = i
                .source_message
                .expect("type 7 is only valid with a source message");
            w.edit_message(src, &data_obj, c.files, MessageTarget::Interaction)?;
            original = Some(src);
        }
        _ => {}
    }
    let rec = w.interactions.get_mut(&id).expect("checked above");
    rec.ack = Some(AckRec {
        kind: kind as u8,
        data,
        files: c.files.to_vec(),
        latency,
        since_created: rec.created.elapsed(),
    });
    rec.original = original;
    rec.loading = loading;
    if !loading {
        rec.answered = Some(Instant::now());
    }
    if c.q("with_response") == Some("true") {
        let message = original.map(|m| w.messages[&m].obj.clone());
        let flags = message
            .as_ref()
            .and_then(|m| m["flags"].as_u64())
            .unwrap_or(0);
        let mut resource = json!({ "type": kind });
        if let (Some(m), true) = (&message, kind == 4 || kind == 7) {
            resource["message"] = m.clone();
        }
        return ok(json!({
            "interaction": {
                "id": id_str(id),
                "type": i.kind,
                "response_message_id": original.map(id_str),
                "response_message_loading": loading,
                "response_message_ephemeral": flags & FLAG_EPHEMERAL != 0,
            },
            "resource": resource,
        }));
    }
    no_content()
}

fn webhook_routes(w: &mut World, method: &str, c: &Ctx) -> Out {
    if c.id("application")? != APPLICATION_ID {
        return Err(ApiError::unknown_webhook());
    }
    let token = c.param("token");
    let Some(i) = w.interactions.values().find(|i| i.token == token).cloned() else {
        return Err(ApiError::invalid_webhook_token());
    };
    if i.invalidated || i.dispatched.elapsed() > w.interaction_token_lifetime {
        return Err(ApiError::invalid_webhook_token());
    }
    let acked = i.ack.as_ref().map(|a| a.kind);
    if acked.is_none() || acked == Some(8) {
        return Err(ApiError::unknown_webhook());
    }
    let target = if c.params.contains_key("message") {
        let raw = c.param("message");
        let id = if raw == "@original" {
            i.original.ok_or_else(ApiError::unknown_message)?
        } else {
            let id = c.id("message")?;
            if Some(id) != i.original && !i.followups.contains(&id) {
                return Err(ApiError::unknown_message());
            }
            id
        };
        if w.messages.get(&id).map_or(true, |m| m.deleted) {
            return Err(ApiError::unknown_message());
        }
        Some(id)
    } else {
        None
    };
    let body = c.body_obj();
    match (method, target) {
        ("GET", Some(id)) => ok(w.messages[&id].obj.clone()),
        ("PATCH", Some(id)) => {
            w.edit_message(id, &body, c.files, MessageTarget::Interaction)?;
            if Some(id) == i.original {
                w.interactions.get_mut(&i.id).expect("exists").filled();
            }
            ok(w.messages[&id].obj.clone())
        }
        ("DELETE", Some(id)) => {
            w.delete_message(id)?;
            if Some(id) == i.original {
                // The deferral is over with its placeholder: a follow-up is a new message.
                w.interactions.get_mut(&i.id).expect("exists").loading = false;
            }
            no_content()
        }
        ("POST", None) => {
            if i.loading {
                // Documented backwards-compatibility: the first followup after a defer fills the loading message.
                let id = i.original.expect("a deferred response has a message");
                let mut body = body.clone();
                if let Some(o) = body.as_object_mut() {
                    o.remove("flags");
                }
                w.edit_message(id, &body, c.files, MessageTarget::Interaction)?;
                w.interactions.get_mut(&i.id).expect("exists").filled();
                return ok(w.messages[&id].obj.clone());
            }
            let id = w.create_message(NewMessage {
                channel_id: i.channel_id,
                author_id: BOT_USER_ID,
                body: &body,
                files: c.files,
                target: MessageTarget::Interaction,
                kind: 0,
                interaction: Some(i.id),
                extra_flags: 0,
            })?;
            let rec = w.interactions.get_mut(&i.id).expect("exists");
            rec.followups.push(id);
            // After a deleted placeholder, the first follow-up is the answer.
            rec.answered.get_or_insert_with(Instant::now);
            ok(w.messages[&id].obj.clone())
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}
