//! Test fixture: a real Prometheus on a free loopback port over generated history with known numbers.

#![allow(dead_code)]

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

/// Days of history before `now`.
pub const HISTORY_DAYS: i64 = 8;
/// Minutes before `now` with the spike.
pub const SPIKE_MINUTES: i64 = 30;

/// A named query as the config would hold it, matching the generated data.
pub const ERROR_RATE: &str =
    r#"sum(rate(http_requests_total{service="{{service}}",code=~"5.."}[5m]))"#;

struct Counter {
    service: &'static str,
    code: &'static str,
    per_minute: u64,
    spike_per_minute: u64,
}

const COUNTERS: [Counter; 5] = [
    Counter {
        service: "checkout",
        code: "200",
        per_minute: 600,
        spike_per_minute: 600,
    },
    Counter {
        service: "checkout",
        code: "500",
        per_minute: 60,
        spike_per_minute: 180,
    },
    Counter {
        service: "checkout",
        code: "503",
        per_minute: 30,
        spike_per_minute: 90,
    },
    Counter {
        service: "search",
        code: "200",
        per_minute: 300,
        spike_per_minute: 300,
    },
    Counter {
        service: "search",
        code: "500",
        per_minute: 12,
        spike_per_minute: 12,
    },
];

/// The OpenMetrics text of the history ending at `now` (unix seconds, a whole minute).
///
/// Eight days, one sample a minute, one row per counter:
///
/// | series                                              | per minute | last 30 min | rate now | 1d / 1w ago |
/// |-----------------------------------------------------|-----------:|------------:|---------:|------------:|
/// | `http_requests_total{service="checkout",code="200"}` | +600 | +600 | 10 | 10 |
/// | `http_requests_total{service="checkout",code="500"}` | +60  | +180 | 3   | 1   |
/// | `http_requests_total{service="checkout",code="503"}` | +30  | +90  | 1.5 | 0.5 |
/// | `http_requests_total{service="search",code="200"}`   | +300 | +300 | 5   | 5   |
/// | `http_requests_total{service="search",code="500"}`   | +12  | +12  | 0.2 | 0.2 |
///
/// so `sum(rate(...{service="checkout",code=~"5.."}[5m]))` is 4.5 at `now` and 1.5 a day and a
/// week earlier: a 3× spike. The gauge `queue_depth{service="checkout"}` is 120 in the last 30
/// minutes, 40 before that and 30 before the last 3 days (so 3× against 1d, 4× against 1w);
/// `queue_depth{service="search"}` is always 7. Samples sit on whole minutes and `[5m]` windows
/// ending on one hold exactly five increments, so rates come out exact, without extrapolation.
/// How long the generated history runs past `now`.
pub const FUTURE_MINUTES: i64 = 15;

pub fn openmetrics(now: i64) -> String {
    let start = now - HISTORY_DAYS * 86_400;
    // The spike goes on a little past `now`, so that a bot reading the wall clock a few seconds
    // later (the end-to-end tests) sees the same rates as a query pinned at `now`.
    let end = now + FUTURE_MINUTES * 60;
    let spike_from = now - SPIKE_MINUTES * 60;
    let mut out = String::with_capacity(8 << 20);
    out.push_str("# HELP http_requests Requests served.\n# TYPE http_requests counter\n");
    for c in &COUNTERS {
        let mut total = 0u64;
        for t in (start..=end).step_by(60) {
            let _ = writeln!(
                out,
                "http_requests_total{{service=\"{}\",code=\"{}\"}} {total} {t}",
                c.service, c.code
            );
            // The increase from t to t + 1 min belongs to the spike when t is inside it.
            total += if t >= spike_from {
                c.spike_per_minute
            } else {
                c.per_minute
            };
        }
    }
    out.push_str("# HELP queue_depth Jobs waiting.\n# TYPE queue_depth gauge\n");
    for t in (start..=end).step_by(60) {
        let depth = if t > spike_from {
            120
        } else if t >= now - 3 * 86_400 {
            40
        } else {
            30
        };
        let _ = writeln!(out, "queue_depth{{service=\"checkout\"}} {depth} {t}");
    }
    for t in (start..=end).step_by(60) {
        let _ = writeln!(out, "queue_depth{{service=\"search\"}} 7 {t}");
    }
    out.push_str("# EOF\n");
    out
}

pub(crate) fn tool(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!("`{name}` is not on PATH: run .ci/install-prometheus.sh (Debian's `prometheus` package) first")
    })
}

/// Generated blocks, shared by every fixture of this test process: building them is the slow
/// part (promtool writes one block per 2 hours), starting Prometheus over a copy is not.
struct Blocks {
    now: DateTime<Utc>,
    dir: PathBuf,
}

fn blocks() -> &'static Blocks {
    static BLOCKS: OnceLock<Blocks> = OnceLock::new();
    BLOCKS.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("prometheus-fixture");
        remove_stale(&root);
        let dir = root.join(std::process::id().to_string());
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();

        let now = Utc::now().timestamp() / 60 * 60;
        let input = dir.join("history.om");
        std::fs::write(&input, openmetrics(now)).unwrap();
        let out = dir.join("blocks");
        let result = Command::new(tool("promtool"))
            .args(["tsdb", "create-blocks-from", "openmetrics", "--quiet"])
            .arg(&input)
            .arg(&out)
            .output()
            .expect("promtool could not be started");
        assert!(
            result.status.success(),
            "promtool failed: {}\n{}",
            String::from_utf8_lossy(&result.stdout),
            String::from_utf8_lossy(&result.stderr)
        );
        let _ = std::fs::remove_file(&input);
        Blocks {
            now: DateTime::from_timestamp(now, 0).unwrap(),
            dir: out,
        }
    })
}

/// Blocks of earlier test processes: statics are never dropped, so each run clears the ones
/// whose process is gone.
fn remove_stale(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let alive = name
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
        if !alive {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A URL where connections are refused.
pub fn refused_url() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

/// The status code of `GET path`, if anything answered.
pub(crate) fn http_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// A running Prometheus over its own copy of the generated history; stopped on drop.
pub struct PrometheusFixture {
    child: Child,
    url: String,
    now: DateTime<Utc>,
    dir: tempfile::TempDir,
}

impl PrometheusFixture {
    /// Starts Prometheus and waits until it answers `/-/ready`.
    pub fn start() -> PrometheusFixture {
        let blocks = blocks();
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&blocks.dir, &dir.path().join("data"));
        Self::launch(
            dir,
            "global:\n  scrape_interval: 1m\nscrape_configs: []\n",
            blocks.now,
        )
    }

    /// Starts Prometheus with no history, scraping `GET /metrics` of `target` (`host:port`)
    /// every second with `bearer` as its bearer token, as an operator would set it up.
    pub fn scraping(target: &str, bearer: &str) -> PrometheusFixture {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, bearer).unwrap();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
             scrape_configs:\n  - job_name: sitrep\n    metrics_path: /metrics\n\
             \x20   authorization:\n      credentials_file: {}\n\
             \x20   static_configs:\n      - targets: [\"{target}\"]\n",
            token.display()
        );
        Self::launch(dir, &config, Utc::now())
    }

    /// Starts Prometheus scraping `target` (`host:port`) every second and evaluating `rules`
    /// (a rule file's YAML) every second, sending its alerts to the Alertmanager at
    /// `alertmanager` (`host:port`): alerts fire and resolve within seconds of the data.
    pub fn alerting(target: &str, rules: &str, alertmanager: &str) -> PrometheusFixture {
        let dir = tempfile::tempdir().unwrap();
        let rule_file = dir.path().join("rules.yml");
        std::fs::write(&rule_file, rules).unwrap();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files: [\"{}\"]\n\
             alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: [\"{alertmanager}\"]\n\
             scrape_configs:\n  - job_name: fixture\n    static_configs:\n      - targets: [\"{target}\"]\n",
            rule_file.display()
        );
        Self::launch(dir, &config, Utc::now())
    }

    fn launch(dir: tempfile::TempDir, config_text: &str, now: DateTime<Utc>) -> PrometheusFixture {
        let prometheus = tool("prometheus");
        let data = dir.path().join("data");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, config_text).unwrap();
        let log_path = dir.path().join("prometheus.log");

        // A port picked now may be taken before Prometheus binds it: try a few.
        for _ in 0..3 {
            let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
            let log = std::fs::File::create(&log_path).unwrap();
            let mut child = Command::new(&prometheus)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.tsdb.path={}", data.display()))
                .arg(format!("--web.listen-address={addr}"))
                .arg("--storage.tsdb.retention.time=30d")
                .arg("--log.level=warn")
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("prometheus could not be started");
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut exited = false;
            while Instant::now() < deadline {
                if http_status(addr, "/-/ready") == Some(200) {
                    return PrometheusFixture {
                        child,
                        url: format!("http://{addr}"),
                        now,
                        dir,
                    };
                }
                if child.try_wait().unwrap().is_some() {
                    exited = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            if exited && log.contains("address already in use") {
                continue;
            }
            let _ = child.kill();
            let _ = child.wait();
            panic!("Prometheus did not become ready on {addr}:\n{log}");
        }
        panic!("Prometheus found no free port in three tries");
    }

    /// The base URL, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The instant the history ends at, with the spike's last sample.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

impl Drop for PrometheusFixture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server that accepts connections and never answers: Prometheus stuck on a slow query.
pub struct HangingServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HangingServer {
    pub fn start() -> HangingServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((sock, _)) => held.push(sock),
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        HangingServer {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for HangingServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
