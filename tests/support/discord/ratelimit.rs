//! Rate-limit buckets per route as Discord keeps them, injected faults, and the optional global limit.
//!
//! A bucket is a fixed window opened by its first request (Discord's `X-RateLimit-Reset-After`
//! counts from there). Over TLS (direct mode) an exhausted bucket answers 429 as Discord does; on
//! the plain-HTTP port (proxy mode) the request waits for the window that has room, as a
//! rate-limiting proxy in front of Discord would, so the bot behind it never sees the 429.

use super::Fault;
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub type Headers = Vec<(String, String)>;

struct Bucket {
    limit: u32,
    remaining: u32,
    /// When the window that `remaining` belongs to opens: later than now while requests queue.
    opens_at: Instant,
    reset_at: Instant,
    window: Duration,
}

/// What a bucket made of one request.
struct Taken {
    headers: Headers,
    exhausted: bool,
    /// How long a queued request waits for its window.
    wait: Duration,
}

struct PendingFault {
    matcher: String,
    fault: Fault,
    times: u32,
    /// Set for a storm: every matching request until then gets the fault, `times` unused.
    until: Option<Instant>,
}

/// What to do with a request before it reaches its handler.
pub enum Gate {
    Proceed {
        headers: Headers,
        /// Wait this long before handling the request.
        delay: Option<Duration>,
        /// Handle the request, then wait this long before answering.
        late: Option<Duration>,
    },
    Reject {
        status: u16,
        body: Value,
        headers: Headers,
    },
}

pub struct RateState {
    buckets: HashMap<String, Bucket>,
    faults: Vec<PendingFault>,
    global_limit: Option<u32>,
    global_window: VecDeque<Instant>,
    enforce_routes: bool,
    pub rate_limited: u64,
    pub invalid: u64,
    /// 429s answered because a route bucket was exhausted (not injected faults).
    pub route_limited: u64,
    /// Requests held back in proxy mode until their bucket had room.
    pub queued: u64,
}

/// Per-route limits in the spirit of Discord's (which it does not publish and may change):
/// the well-known ones are exact, the rest generous enough not to slow tests down.
fn route_limit(route: &str) -> (u32, Duration) {
    match route {
        "POST /channels/{channel}/messages" => (5, Duration::from_secs(5)),
        r if r.contains("/reactions/") => (1, Duration::from_millis(250)),
        "PATCH /channels/{channel}" => (5, Duration::from_secs(5)),
        r if r.starts_with("POST /interactions/") => (50, Duration::from_secs(1)),
        r if r.contains(" /webhooks/") => (5, Duration::from_secs(2)),
        r if r.starts_with("GET ") => (50, Duration::from_secs(1)),
        _ => (10, Duration::from_secs(1)),
    }
}

fn secs(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

fn epoch_after(d: Duration) -> String {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        + d;
    format!("{:.3}", t.as_secs_f64())
}

/// Discord's bucket ids are opaque hashes shared by every major parameter of a route.
fn bucket_hash(route: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in route.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

pub fn rate_limited_body(retry_after: f64, global: bool) -> Value {
    json!({ "message": "You are being rate limited.", "retry_after": retry_after, "global": global })
}

pub fn retry_headers(retry_after: f64, scope: &str) -> Headers {
    let mut h = vec![
        ("retry-after".to_string(), format!("{retry_after}")),
        ("x-ratelimit-scope".to_string(), scope.to_string()),
    ];
    if scope == "global" {
        h.push(("x-ratelimit-global".to_string(), "true".to_string()));
    }
    h
}

impl RateState {
    pub fn new(global_limit: Option<u32>, enforce_routes: bool) -> RateState {
        RateState {
            buckets: HashMap::new(),
            faults: vec![],
            global_limit,
            global_window: VecDeque::new(),
            enforce_routes,
            rate_limited: 0,
            invalid: 0,
            route_limited: 0,
            queued: 0,
        }
    }

    pub fn add_fault(&mut self, matcher: &str, fault: Fault, times: u32) {
        self.faults.push(PendingFault {
            matcher: matcher.to_string(),
            fault,
            times,
            until: None,
        });
    }

    pub fn add_storm(&mut self, matcher: &str, fault: Fault, window: Duration) {
        self.faults.push(PendingFault {
            matcher: matcher.to_string(),
            fault,
            times: 0,
            until: Some(Instant::now() + window),
        });
    }

    /// The fault for this request, if one applies; spends it unless it is a storm.
    fn take_fault(&mut self, route: &str, global_exempt: bool) -> Option<Fault> {
        let now = Instant::now();
        self.faults.retain(|f| f.until.map_or(true, |u| u > now));
        let pos = self.faults.iter().position(|f| {
            let matches = f.matcher == "*" || f.matcher == route;
            // Interaction routes are outside Discord's global limit: a global storm spares them.
            let spared = global_exempt
                && f.matcher == "*"
                && matches!(f.fault, Fault::GlobalRateLimit { .. });
            matches && !spared
        })?;
        let f = &mut self.faults[pos];
        let Some(until) = f.until else {
            let fault = f.fault.clone();
            f.times -= 1;
            if f.times == 0 {
                self.faults.remove(pos);
            }
            return Some(fault);
        };
        // During a storm Discord's answer says when it ends, rounded up to the millisecond.
        let left = ((until - now).as_secs_f64() * 1000.0).ceil() / 1000.0;
        Some(match f.fault.clone() {
            Fault::RateLimit { retry_after } => Fault::RateLimit {
                retry_after: retry_after.max(left),
            },
            Fault::SharedRateLimit { retry_after } => Fault::SharedRateLimit {
                retry_after: retry_after.max(left),
            },
            Fault::GlobalRateLimit { retry_after } => Fault::GlobalRateLimit {
                retry_after: retry_after.max(left),
            },
            other => other,
        })
    }

    pub fn clear_faults(&mut self) {
        self.faults.clear();
    }

    pub fn set_global_limit(&mut self, limit: Option<u32>) {
        self.global_limit = limit;
        self.global_window.clear();
    }

    /// Counts what Discord counts toward its invalid-request ban: 401, 403 and 429
    /// except shared-scope 429s.
    pub fn count_response(&mut self, status: u16, headers: &Headers) {
        let shared = headers
            .iter()
            .any(|(k, v)| k == "x-ratelimit-scope" && v == "shared");
        if status == 429 {
            self.rate_limited += 1;
        }
        if status == 401 || status == 403 || (status == 429 && !shared) {
            self.invalid += 1;
        }
    }

    /// Spends from the request's bucket. When it is exhausted and `queue` is set, the request
    /// takes a place in the next window instead (which then opens when this one resets).
    fn take(&mut self, route: &str, major: &str, queue: bool) -> Taken {
        let (limit, window) = route_limit(route);
        let now = Instant::now();
        let b = self
            .buckets
            .entry(format!("{route}|{major}"))
            .or_insert(Bucket {
                limit,
                remaining: limit,
                opens_at: now,
                reset_at: now + window,
                window,
            });
        if now >= b.reset_at {
            b.remaining = b.limit;
            b.opens_at = now;
            b.reset_at = now + b.window;
        }
        let exhausted = b.remaining == 0;
        if exhausted && queue {
            b.opens_at = b.reset_at;
            b.reset_at = b.opens_at + b.window;
            b.remaining = b.limit;
        }
        if b.remaining > 0 {
            b.remaining -= 1;
        }
        let wait = b.opens_at.saturating_duration_since(now);
        // As the answer will say once the request has had its turn.
        let after = b.reset_at.saturating_duration_since(now.max(b.opens_at));
        let headers = vec![
            ("x-ratelimit-limit".to_string(), b.limit.to_string()),
            ("x-ratelimit-remaining".to_string(), b.remaining.to_string()),
            ("x-ratelimit-reset".to_string(), epoch_after(wait + after)),
            ("x-ratelimit-reset-after".to_string(), secs(after)),
            ("x-ratelimit-bucket".to_string(), bucket_hash(route)),
        ];
        Taken {
            headers,
            exhausted: exhausted && !queue,
            wait,
        }
    }

    /// A bucket's headers without spending from it, for answers that never reached a handler.
    pub fn peek(&self, route: &str) -> Headers {
        let (limit, window) = route_limit(route);
        let now = Instant::now();
        let (remaining, after) = self
            .buckets
            .iter()
            .filter(|(k, b)| k.starts_with(&format!("{route}|")) && b.reset_at > now)
            .map(|(_, b)| (b.remaining, b.reset_at - now))
            .min()
            .unwrap_or((limit, window));
        vec![
            ("x-ratelimit-limit".to_string(), limit.to_string()),
            ("x-ratelimit-remaining".to_string(), remaining.to_string()),
            ("x-ratelimit-reset".to_string(), epoch_after(after)),
            ("x-ratelimit-reset-after".to_string(), secs(after)),
            ("x-ratelimit-bucket".to_string(), bucket_hash(route)),
        ]
    }

    /// Decides the fate of one request: an injected fault, the global limit, the route's
    /// bucket, or on to the handler with the bucket's headers. `queue` (proxy mode) makes an
    /// exhausted bucket delay the request instead of answering 429.
    pub fn gate(&mut self, route: &str, major: &str, global_exempt: bool, queue: bool) -> Gate {
        let queue = queue && self.enforce_routes;
        let Taken {
            mut headers,
            exhausted,
            wait,
        } = self.take(route, major, queue);
        if let Some(fault) = self.take_fault(route, global_exempt) {
            return match fault {
                Fault::RateLimit { retry_after } | Fault::SharedRateLimit { retry_after } => {
                    let scope = if matches!(fault, Fault::RateLimit { .. }) {
                        "user"
                    } else {
                        "shared"
                    };
                    headers.retain(|(k, _)| {
                        k != "x-ratelimit-remaining" && k != "x-ratelimit-reset-after"
                    });
                    headers.push(("x-ratelimit-remaining".into(), "0".into()));
                    headers.push((
                        "x-ratelimit-reset-after".into(),
                        format!("{retry_after:.3}"),
                    ));
                    headers.extend(retry_headers(retry_after, scope));
                    Gate::Reject {
                        status: 429,
                        body: rate_limited_body(retry_after, false),
                        headers,
                    }
                }
                Fault::GlobalRateLimit { retry_after } => Gate::Reject {
                    status: 429,
                    body: rate_limited_body(retry_after, true),
                    headers: retry_headers(retry_after, "global"),
                },
                Fault::ServerError(status) => {
                    let reason = match status {
                        500 => "Internal Server Error",
                        502 => "Bad Gateway",
                        503 => "Service Unavailable",
                        504 => "Gateway Timeout",
                        _ => "Server Error",
                    };
                    Gate::Reject {
                        status,
                        body: json!({ "message": format!("{status}: {reason}"), "code": 0 }),
                        headers,
                    }
                }
                Fault::Delay(d) => Gate::Proceed {
                    headers,
                    delay: Some(wait + d),
                    late: None,
                },
                Fault::LateAnswer(d) => Gate::Proceed {
                    headers,
                    delay: (!wait.is_zero()).then_some(wait),
                    late: Some(d),
                },
            };
        }
        if let (Some(limit), false) = (self.global_limit, global_exempt) {
            let now = Instant::now();
            while self
                .global_window
                .front()
                .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
            {
                self.global_window.pop_front();
            }
            if self.global_window.len() as u32 >= limit {
                let oldest = *self.global_window.front().expect("window is full");
                let retry = (Duration::from_secs(1) - now.duration_since(oldest)).as_secs_f64();
                let retry = (retry * 1000.0).ceil() / 1000.0;
                return Gate::Reject {
                    status: 429,
                    body: rate_limited_body(retry, true),
                    headers: retry_headers(retry, "global"),
                };
            }
            self.global_window.push_back(now);
        }
        if exhausted && self.enforce_routes {
            self.route_limited += 1;
            let after: f64 = headers
                .iter()
                .find(|(k, _)| k == "x-ratelimit-reset-after")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(1.0);
            headers.extend(retry_headers(after, "user"));
            return Gate::Reject {
                status: 429,
                body: rate_limited_body(after, false),
                headers,
            };
        }
        if !wait.is_zero() {
            self.queued += 1;
        }
        Gate::Proceed {
            headers,
            delay: (!wait.is_zero()).then_some(wait),
            late: None,
        }
    }
}
