//! Test fixture: a real Alertmanager (Debian's `prometheus-alertmanager`) on a free loopback
//! port, sending every group to one webhook with a bearer token, with intervals of a second.

use super::prometheus::{free_port, http_status, tool};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct AlertmanagerFixture {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl AlertmanagerFixture {
    /// Starts Alertmanager routing everything, grouped by `alertname`, to `webhook` with
    /// `Authorization: Bearer <token>`, resolved notifications included; waits for `/-/ready`.
    pub fn start(webhook: &str, token: &str) -> AlertmanagerFixture {
        let binary = tool("prometheus-alertmanager");
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, token).unwrap();
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(
            &config,
            format!(
                "route:\n  receiver: sitrep\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n\
                 receivers:\n  - name: sitrep\n    webhook_configs:\n      - url: {webhook}\n        send_resolved: true\n\
                 \x20       http_config:\n          authorization:\n            credentials_file: {}\n",
                token_file.display()
            ),
        )
        .unwrap();
        let log_path = dir.path().join("alertmanager.log");
        for _ in 0..3 {
            let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
            let log = std::fs::File::create(&log_path).unwrap();
            let mut child = Command::new(&binary)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address={addr}"))
                // No gossip: one instance, and no port of its own to collide on.
                .arg("--cluster.listen-address=")
                .arg("--log.level=debug")
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("prometheus-alertmanager could not be started");
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut exited = false;
            while Instant::now() < deadline {
                if http_status(addr, "/-/ready") == Some(200) {
                    return AlertmanagerFixture { child, addr, dir };
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
            panic!("Alertmanager did not become ready on {addr}:\n{log}");
        }
        panic!("Alertmanager found no free port in three tries");
    }

    /// `host:port`, for Prometheus' alerting config.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("alertmanager.log")).unwrap_or_default()
    }
}

impl Drop for AlertmanagerFixture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
