//! The gateway websocket: HELLO, IDENTIFY and READY, heartbeats, RESUME with replay, and faults on demand.

use super::world::{
    id_str, World, INTENT_GUILDS, INTENT_GUILD_MEMBERS, INTENT_GUILD_MESSAGES,
    INTENT_GUILD_PRESENCES, INTENT_MESSAGE_CONTENT, PRIVILEGED_INTENTS,
};
use super::{
    Direction, GatewayFault, GatewayFrame, Shared, APPLICATION_ID, BOT_USER_ID, GUILD_ID, TOKEN,
};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::handshake::server::{
    Request as WsRequest, Response as WsResponse,
};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

/// Every intent bit Discord defines; anything above is rejected with 4013.
const KNOWN_INTENTS: u64 = (1 << 26) - 1;

pub enum ConnCmd {
    Send(Value),
    Fault(GatewayFault),
}

pub struct Conn {
    tx: mpsc::UnboundedSender<ConnCmd>,
    session: Option<String>,
    sent_by_bot: Vec<Instant>,
}

pub struct Session {
    seq: u64,
    log: Vec<Value>,
    intents: u64,
    conn: Option<u32>,
    alive: bool,
}

pub struct GatewayState {
    pub url: String,
    pub heartbeat_interval_ms: u64,
    sessions: BTreeMap<String, Session>,
    conns: BTreeMap<u32, Conn>,
    next_conn: u32,
    pub connections: u32,
    pub identifies: u32,
    pub resumes: u32,
    pub intents: Option<u64>,
    pub identify_close: Option<u16>,
    pub heartbeat_acks: bool,
}

impl GatewayState {
    pub fn new(url: String, heartbeat_interval_ms: u64) -> Self {
        GatewayState {
            url,
            heartbeat_interval_ms,
            sessions: BTreeMap::new(),
            conns: BTreeMap::new(),
            next_conn: 0,
            connections: 0,
            identifies: 0,
            resumes: 0,
            intents: None,
            identify_close: None,
            heartbeat_acks: true,
        }
    }

    /// Hands a fault to every open connection; returns how many there were.
    pub fn fault(&self, f: &GatewayFault) -> usize {
        self.conns
            .values()
            .filter(|c| c.tx.send(ConnCmd::Fault(f.clone())).is_ok())
            .count()
    }

    pub fn open_connections(&self) -> usize {
        self.conns.len()
    }

    /// Whether some session is identified and attached to an open connection.
    pub fn ready(&self) -> bool {
        self.sessions
            .values()
            .any(|s| s.alive && s.conn.is_some_and(|c| self.conns.contains_key(&c)))
    }

    fn kill_session_of(&mut self, conn: u32) {
        if let Some(id) = self.conns.get(&conn).and_then(|c| c.session.clone()) {
            if let Some(s) = self.sessions.get_mut(&id) {
                s.alive = false;
            }
        }
    }
}

impl World {
    /// Sends a dispatch to every live session whose intents cover `intent`.
    pub fn dispatch(&mut self, event: &str, data: Value, intent: Option<u64>) {
        self.dispatch_with(event, intent, |_, _| data.clone());
    }

    /// Like `dispatch`, with a payload that depends on the receiving session's intents.
    pub fn dispatch_with(
        &mut self,
        event: &str,
        intent: Option<u64>,
        make: impl Fn(&World, u64) -> Value,
    ) {
        let targets: Vec<(String, u64)> = self
            .gateway
            .sessions
            .iter()
            .filter(|(_, s)| s.alive && intent.map_or(true, |bit| s.intents & bit != 0))
            .map(|(id, s)| (id.clone(), s.intents))
            .collect();
        for (id, intents) in targets {
            let d = make(self, intents);
            self.send_to_session(&id, event, d);
        }
    }

    fn send_to_session(&mut self, session: &str, event: &str, d: Value) {
        let Some(s) = self.gateway.sessions.get_mut(session) else {
            return;
        };
        s.seq += 1;
        let frame = json!({ "op": 0, "t": event, "s": s.seq, "d": d });
        s.log.push(frame.clone());
        if let Some(conn) = s.conn.and_then(|c| self.gateway.conns.get(&c)) {
            let _ = conn.tx.send(ConnCmd::Send(frame));
        }
    }

    /// MESSAGE_CREATE / MESSAGE_UPDATE as a session sees it: with guild and member, and
    /// without content when the session lacks the message-content intent.
    pub fn dispatch_message(&mut self, event: &str, id: u64) {
        self.dispatch_with(event, Some(INTENT_GUILD_MESSAGES), |w, intents| {
            let mut d = w.message_for_bot(id, intents);
            d["guild_id"] = id_str(GUILD_ID);
            let rec = &w.messages[&id];
            if d.get("webhook_id").is_none() && w.members.contains_key(&rec.author_id) {
                d["member"] = w.member_json(rec.author_id, false, false);
            }
            d
        });
    }

    fn record_frame(&mut self, conn: u32, direction: Direction, payload: Value) {
        let at = self.elapsed();
        // An interaction's clock starts when its frame is on the socket, as at Discord, not when
        // a test queued it: a burst queued in one go would otherwise charge the bot for the
        // time the test took to build it.
        if direction == Direction::ToBot && payload["t"] == "INTERACTION_CREATE" {
            let id = payload["d"]["id"]
                .as_str()
                .and_then(|s| s.parse::<u64>().ok());
            if let Some(rec) = id.and_then(|id| self.interactions.get_mut(&id)) {
                if !rec.on_socket {
                    rec.dispatched = Instant::now();
                    rec.on_socket = true;
                }
            }
        }
        self.frames.push(GatewayFrame {
            conn,
            direction,
            at,
            payload,
        });
    }
}

enum Reply {
    Send(Value),
    Close(u16, &'static str),
}

pub async fn serve(
    shared: Arc<Shared>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    tokio::spawn(connection(shared.clone(), stream, shutdown.clone()));
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}

fn hello(interval: u64) -> Value {
    json!({ "op": 10, "d": { "heartbeat_interval": interval, "_trace": ["[\"gateway-fake\"]"] }, "s": null, "t": null })
}

async fn connection(shared: Arc<Shared>, stream: TcpStream, mut shutdown: watch::Receiver<bool>) {
    let mut query = String::new();
    // The error type is tungstenite's, not ours to shrink.
    #[allow(clippy::result_large_err)]
    let callback = |req: &WsRequest, resp: WsResponse| {
        query = req.uri().query().unwrap_or("").to_string();
        Ok(resp)
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
        return;
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (conn_id, interval) = shared.with(|w| {
        let id = w.gateway.next_conn;
        w.gateway.next_conn += 1;
        w.gateway.connections += 1;
        w.gateway.conns.insert(
            id,
            Conn {
                tx,
                session: None,
                sent_by_bot: vec![],
            },
        );
        (id, w.gateway.heartbeat_interval_ms)
    });
    let version_ok = query
        .split('&')
        .all(|kv| !kv.starts_with("v=") || kv == "v=10");
    let mut pending: Vec<Reply> = vec![Reply::Send(hello(interval))];
    if !version_ok {
        pending.push(Reply::Close(4012, "Invalid API version."));
    }
    'outer: loop {
        for reply in pending.drain(..) {
            match reply {
                Reply::Send(v) => {
                    if ws.send(Message::Text(v.to_string())).await.is_err() {
                        break 'outer;
                    }
                    shared.with(|w| w.record_frame(conn_id, Direction::ToBot, v));
                }
                Reply::Close(code, reason) => {
                    close(&shared, conn_id, &mut ws, code, reason).await;
                    break 'outer;
                }
            }
        }
        tokio::select! {
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(text))) => pending = shared.with(|w| on_text(w, conn_id, &text)),
                Some(Ok(Message::Binary(_))) => pending.push(Reply::Close(4002, "Decode error.")),
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
            cmd = rx.recv() => match cmd {
                Some(ConnCmd::Send(v)) => pending.push(Reply::Send(v)),
                Some(ConnCmd::Fault(GatewayFault::DropSocket)) => break,
                Some(ConnCmd::Fault(GatewayFault::Close(code))) => pending.push(Reply::Close(code, "Closed by the test.")),
                Some(ConnCmd::Fault(GatewayFault::Reconnect)) => {
                    pending.push(Reply::Send(json!({ "op": 7, "d": null, "s": null, "t": null })));
                }
                Some(ConnCmd::Fault(GatewayFault::InvalidSession { resumable })) => {
                    if !resumable {
                        shared.with(|w| w.gateway.kill_session_of(conn_id));
                    }
                    pending.push(Reply::Send(json!({ "op": 9, "d": resumable, "s": null, "t": null })));
                }
                Some(ConnCmd::Fault(GatewayFault::RequestHeartbeat)) => {
                    pending.push(Reply::Send(json!({ "op": 1, "d": null, "s": null, "t": null })));
                }
                None => break,
            },
            _ = shutdown.changed() => break,
        }
    }
    shared.with(|w| {
        if let Some(conn) = w.gateway.conns.remove(&conn_id) {
            if let Some(s) = conn.session.and_then(|id| w.gateway.sessions.get_mut(&id)) {
                if s.conn == Some(conn_id) {
                    s.conn = None;
                }
            }
        }
    });
}

/// Closes with a code, as Discord does; codes after which a session cannot resume end it.
async fn close(
    shared: &Arc<Shared>,
    conn_id: u32,
    ws: &mut tokio_tungstenite::WebSocketStream<TcpStream>,
    code: u16,
    reason: &'static str,
) {
    shared.with(|w| {
        if matches!(code, 4004 | 4007 | 4009 | 4010..=4014) {
            w.gateway.kill_session_of(conn_id);
        }
        w.record_frame(
            conn_id,
            Direction::ToBot,
            json!({ "close": code, "reason": reason }),
        );
    });
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    };
    let _ = ws.send(Message::Close(Some(frame))).await;
    // Give the client a moment to answer the close handshake; a client that has gone is fine too.
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(Ok(m)) = ws.next().await {
            if m.is_close() {
                break;
            }
        }
    })
    .await;
}

fn on_text(w: &mut World, conn_id: u32, text: &str) -> Vec<Reply> {
    let Ok(payload) = serde_json::from_str::<Value>(text) else {
        return vec![Reply::Close(4002, "Decode error.")];
    };
    w.record_frame(conn_id, Direction::FromBot, payload.clone());
    let Some(conn) = w.gateway.conns.get_mut(&conn_id) else {
        return vec![];
    };
    let now = Instant::now();
    conn.sent_by_bot
        .retain(|t| now.duration_since(*t) < Duration::from_secs(60));
    conn.sent_by_bot.push(now);
    if conn.sent_by_bot.len() > 120 {
        return vec![Reply::Close(4008, "Rate limited.")];
    }
    let identified = conn.session.is_some();
    let op = payload.get("op").and_then(Value::as_u64);
    let d = payload.get("d").cloned().unwrap_or(Value::Null);
    match op {
        Some(1) => {
            if w.gateway.heartbeat_acks {
                vec![Reply::Send(
                    json!({ "op": 11, "d": null, "s": null, "t": null }),
                )]
            } else {
                vec![]
            }
        }
        Some(2) if identified => vec![Reply::Close(4005, "Already authenticated.")],
        Some(2) => identify(w, conn_id, &d),
        Some(6) => resume(w, conn_id, &d),
        Some(_) if !identified => vec![Reply::Close(4003, "Not authenticated.")],
        Some(3) | Some(4) => vec![],
        Some(8) => {
            request_members(w, conn_id, &d);
            vec![]
        }
        _ => vec![Reply::Close(4001, "Unknown opcode.")],
    }
}

fn token_ok(d: &Value) -> bool {
    let t = d.get("token").and_then(Value::as_str).unwrap_or("");
    t.strip_prefix("Bot ").unwrap_or(t) == TOKEN
}

fn identify(w: &mut World, conn_id: u32, d: &Value) -> Vec<Reply> {
    if let Some(code) = w.gateway.identify_close {
        return vec![Reply::Close(code, "Closed by the test at IDENTIFY.")];
    }
    if !token_ok(d) {
        return vec![Reply::Close(4004, "Authentication failed.")];
    }
    let Some(intents) = d.get("intents").and_then(Value::as_u64) else {
        return vec![Reply::Close(4013, "Invalid intent(s).")];
    };
    if intents & !KNOWN_INTENTS != 0 {
        return vec![Reply::Close(4013, "Invalid intent(s).")];
    }
    if intents & PRIVILEGED_INTENTS & !w.privileged_intents != 0 {
        return vec![Reply::Close(4014, "Disallowed intent(s).")];
    }
    if let Some(shard) = d.get("shard").and_then(Value::as_array) {
        let (id, count) = (
            shard.first().and_then(Value::as_u64),
            shard.get(1).and_then(Value::as_u64),
        );
        if !matches!((id, count), (Some(i), Some(n)) if i < n) {
            return vec![Reply::Close(4010, "Invalid shard.")];
        }
    }
    w.gateway.identifies += 1;
    w.gateway.intents = Some(intents);
    // A fresh IDENTIFY leaves any detached session to expire, as Discord does.
    for s in w.gateway.sessions.values_mut() {
        if s.conn.is_none() {
            s.alive = false;
        }
    }
    let session_id = format!(
        "{:032x}",
        u128::from(fastrand::u64(..)) << 64 | u128::from(fastrand::u64(..))
    );
    w.gateway.sessions.insert(
        session_id.clone(),
        Session {
            seq: 0,
            log: vec![],
            intents,
            conn: Some(conn_id),
            alive: true,
        },
    );
    if let Some(c) = w.gateway.conns.get_mut(&conn_id) {
        c.session = Some(session_id.clone());
    }
    let mut app_flags = 0u64;
    if w.privileged_intents & INTENT_GUILD_PRESENCES != 0 {
        app_flags |= 1 << 13;
    }
    if w.privileged_intents & INTENT_GUILD_MEMBERS != 0 {
        app_flags |= 1 << 15;
    }
    if w.privileged_intents & INTENT_MESSAGE_CONTENT != 0 {
        app_flags |= 1 << 19;
    }
    let mut user = w.user_json(BOT_USER_ID);
    user["verified"] = json!(true);
    user["mfa_enabled"] = json!(true);
    user["email"] = json!(null);
    let ready = json!({
        "v": 10,
        "user": user,
        "guilds": [{ "id": id_str(GUILD_ID), "unavailable": true }],
        "session_id": session_id,
        "session_type": "normal",
        "resume_gateway_url": w.gateway.url,
        "shard": d.get("shard").cloned().unwrap_or(json!([0, 1])),
        "application": { "id": id_str(APPLICATION_ID), "flags": app_flags },
        "private_channels": [],
        "relationships": [],
        "presences": [],
        "guild_join_requests": [],
        "geo_ordered_rtc_regions": ["us-east"],
        "user_settings": {},
        "auth": {},
        "_trace": ["[\"gateway-fake\"]"],
    });
    w.send_to_session(&session_id, "READY", ready);
    if intents & INTENT_GUILDS != 0 {
        let guild = w.guild_json(true, intents);
        w.send_to_session(&session_id, "GUILD_CREATE", guild);
    }
    vec![]
}

fn resume(w: &mut World, conn_id: u32, d: &Value) -> Vec<Reply> {
    if !token_ok(d) {
        return vec![Reply::Close(4004, "Authentication failed.")];
    }
    let session_id = d
        .get("session_id")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let seq = d.get("seq").and_then(Value::as_u64).unwrap_or(0);
    let Some(session) = w.gateway.sessions.get_mut(&session_id).filter(|s| s.alive) else {
        return vec![Reply::Send(
            json!({ "op": 9, "d": false, "s": null, "t": null }),
        )];
    };
    if seq > session.seq {
        return vec![Reply::Close(4007, "Invalid seq.")];
    }
    session.conn = Some(conn_id);
    let missed: Vec<Value> = session
        .log
        .iter()
        .filter(|f| f.get("s").and_then(Value::as_u64).is_some_and(|s| s > seq))
        .cloned()
        .collect();
    w.gateway.resumes += 1;
    if let Some(c) = w.gateway.conns.get_mut(&conn_id) {
        c.session = Some(session_id.clone());
        for f in missed {
            let _ = c.tx.send(ConnCmd::Send(f));
        }
    }
    w.send_to_session(
        &session_id,
        "RESUMED",
        json!({ "_trace": ["[\"gateway-fake\"]"] }),
    );
    vec![]
}

fn request_members(w: &mut World, conn_id: u32, d: &Value) {
    let Some(session) = w
        .gateway
        .conns
        .get(&conn_id)
        .and_then(|c| c.session.clone())
    else {
        return;
    };
    let query = d
        .get("query")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_lowercase();
    let wanted: Vec<u64> = match d.get("user_ids") {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| super::world::parse_id(Some(v)))
            .collect(),
        Some(v) => super::world::parse_id(Some(v)).into_iter().collect(),
        None => vec![],
    };
    let members: Vec<Value> = w
        .members
        .keys()
        .filter(|u| {
            if !wanted.is_empty() {
                return wanted.contains(u);
            }
            w.users
                .get(u)
                .is_some_and(|x| x.name.to_lowercase().starts_with(&query))
        })
        .map(|u| w.member_json(*u, true, false))
        .collect();
    let mut chunk = json!({
        "guild_id": id_str(GUILD_ID),
        "members": members,
        "chunk_index": 0,
        "chunk_count": 1,
        "not_found": [],
    });
    if let Some(n) = d.get("nonce") {
        chunk["nonce"] = n.clone();
    }
    w.send_to_session(&session, "GUILD_MEMBERS_CHUNK", chunk);
}
