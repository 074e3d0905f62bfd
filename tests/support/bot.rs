//! The real `sitrep` binary as a child process, configured against the Discord fake.

use super::discord::{FakeDiscord, APPLICATION_ID, GUILD_ID, TOKEN};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How the bot reaches the fake's REST API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `api_base` pointed at the fake over HTTP, serenity's limiter off.
    Proxy,
    /// "discord.com" over TLS with the fake's CA and a connect-to override, serenity's limiter on.
    Direct,
}

/// Channels the bot's config points at.
#[derive(Clone, Copy, Debug)]
pub struct World {
    pub category: u64,
    pub stakeholders: u64,
}

pub fn world(fake: &FakeDiscord) -> World {
    use super::discord::ChannelKind;
    let category = fake.add_channel("Incidents", ChannelKind::Category, None);
    let stakeholders = fake.add_channel("stakeholders", ChannelKind::Text, None);
    World {
        category,
        stakeholders,
    }
}

pub struct Bot {
    child: Option<Child>,
    log: Arc<Mutex<String>>,
    pub db: PathBuf,
    pub config: PathBuf,
    _dir: Arc<tempfile::TempDir>,
}

impl Bot {
    /// Writes a config for `fake` (plus `extra` TOML appended) and starts `sitrep run`. The
    /// config asks for message text, as the default does; unless the test switched the fake's
    /// portal toggle on ([`FakeDiscord::set_privileged_intents`]), Discord refuses it and the
    /// bot runs without text, as a new application's would.
    pub fn start(fake: &FakeDiscord, world: World, mode: Mode, extra: &str) -> Bot {
        Self::start_with_env(fake, world, mode, extra, &[])
    }

    /// As [`Bot::start`], with extra environment (e.g. `SITREP_DISCORD__INCIDENT_MODE`).
    pub fn start_with_env(
        fake: &FakeDiscord,
        world: World,
        mode: Mode,
        extra: &str,
        env: &[(&str, &str)],
    ) -> Bot {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let db = dir.path().join("db");
        Self::start_on(fake, world, mode, extra, env, dir, db)
    }

    /// As [`Bot::start`], on an existing database folder.
    pub fn start_on_db(fake: &FakeDiscord, world: World, db: &Path) -> Bot {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        Self::start_on(fake, world, Mode::Proxy, "", &[], dir, db.to_path_buf())
    }

    /// As [`Bot::start_on_db`], reaching the fake in `mode`, with extra environment.
    pub fn start_on_db_in(
        fake: &FakeDiscord,
        world: World,
        db: &Path,
        mode: Mode,
        env: &[(&str, &str)],
    ) -> Bot {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        Self::start_on(fake, world, mode, "", env, dir, db.to_path_buf())
    }

    /// As [`Bot::start`], on the database and folder of an earlier bot.
    pub fn restart(&self, fake: &FakeDiscord, world: World, mode: Mode, extra: &str) -> Bot {
        Self::start_on(
            fake,
            world,
            mode,
            extra,
            &[],
            self._dir.clone(),
            self.db.clone(),
        )
    }

    /// As [`Bot::restart`], with extra environment.
    pub fn restart_with_env(
        &self,
        fake: &FakeDiscord,
        world: World,
        extra: &str,
        env: &[(&str, &str)],
    ) -> Bot {
        self.restart_in(fake, world, Mode::Proxy, extra, env)
    }

    /// As [`Bot::restart`], in `mode` and with extra environment.
    pub fn restart_in(
        &self,
        fake: &FakeDiscord,
        world: World,
        mode: Mode,
        extra: &str,
        env: &[(&str, &str)],
    ) -> Bot {
        Self::start_on(
            fake,
            world,
            mode,
            extra,
            env,
            self._dir.clone(),
            self.db.clone(),
        )
    }

    fn start_on(
        fake: &FakeDiscord,
        world: World,
        mode: Mode,
        extra: &str,
        env: &[(&str, &str)],
        dir: Arc<tempfile::TempDir>,
        db: PathBuf,
    ) -> Bot {
        let mut discord = format!(
            "[discord]\napplication_id = {APPLICATION_ID}\nguild_id = {GUILD_ID}\n\
             incident_category_id = {}\nstakeholder_channel_id = {}\n",
            world.category, world.stakeholders
        );
        match mode {
            Mode::Proxy => discord.push_str(&format!("api_base = \"{}\"\n", fake.api_base())),
            Mode::Direct => {
                let ca = dir.path().join("ca.pem");
                std::fs::write(&ca, fake.ca_pem()).unwrap();
                discord.push_str(&format!(
                    "ca_file = \"{}\"\nconnect_to = \"discord.com:443:127.0.0.1:{}\"\n",
                    ca.display(),
                    fake.tls_addr().port()
                ));
            }
        }
        let config = dir.path().join("sitrep.toml");
        // The built-in type's checklist is one more post at every open; the tests of other
        // features count posts per channel, so their incidents open without it (a test that
        // sets `[types.default]` itself keeps its own). tests/playbooks.rs works checklists.
        let untyped = if extra.contains("[types.default]") {
            ""
        } else {
            "[types.default]\nchecklist = []\n"
        };
        let text = format!(
            "{discord}\n[storage]\npath = \"{}\"\n\n[http]\nlisten = \"\"\n\n{untyped}\n{extra}\n",
            db.display()
        );
        std::fs::write(&config, text).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_sitrep"))
            .arg("run")
            .arg("--config")
            .arg(&config)
            .env("SITREP_DISCORD_TOKEN", TOKEN)
            .env("SITREP_LOG", "info,sitrep=debug")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the sitrep binary starts");
        let log = Arc::new(Mutex::new(String::new()));
        for stream in [
            Box::new(child.stderr.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stdout.take().unwrap()),
        ] {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    log.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        Bot {
            child: Some(child),
            log,
            db,
            config,
            _dir: dir,
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Waits for the process to end by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut()?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                // Let the log readers drain the pipes.
                std::thread::sleep(Duration::from_millis(50));
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn stop(&mut self) -> ExitStatus {
        let pid = self.pid();
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status();
        let status = self
            .wait_exit(Duration::from_secs(15))
            .unwrap_or_else(|| panic!("sitrep did not stop on SIGTERM; log:\n{}", self.log()));
        self.child = None;
        status
    }

    /// kill -9: no chance to flush or say goodbye.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn db_path(&self) -> &Path {
        &self.db
    }
}

impl Drop for Bot {
    fn drop(&mut self) {
        self.kill();
    }
}
