//! One way for tests to build an [`App`]: a settable or paused clock, a chat that records what
//! was posted when, the scheduler when a test needs it, a temporary store and a default config.
//!
//! Unit tests get it under `cfg(test)`; integration tests, benches and fuzz targets through the
//! `testkit` feature. Nothing in the bot itself uses it.

use crate::app::App;
use crate::chat::console::{ConsoleChat, Sink};
use crate::clock::{Clock, TokioClock};
use crate::config::Config;
use crate::domain::UserRef;
use crate::message::Post;
use crate::platform::{Chat, ChatError, Place};
use crate::render::{Renderer, TimeStyle};
use crate::scheduler::Scheduler;
use crate::store::Store;
use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// When a test's clock starts unless it says otherwise: 2026-11-21 10:00 UTC.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 10, 0, 0)
        .single()
        .expect("a valid time")
}

/// A clock that stands still until the test sets it, so that every event lands at a known time.
pub struct SetClock(Mutex<DateTime<Utc>>);

impl SetClock {
    pub fn at(t: DateTime<Utc>) -> Arc<SetClock> {
        Arc::new(SetClock(Mutex::new(t)))
    }

    pub fn set(&self, t: DateTime<Utc>) {
        *self.0.lock().expect("clock") = t;
    }
}

impl Clock for SetClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().expect("clock")
    }
}

/// A post the recording chat accepted.
#[derive(Debug, Clone)]
pub struct Sent {
    /// Seconds after the chat was made.
    pub at: i64,
    pub channel: u64,
    pub id: u64,
    pub post: Post,
}

/// An edit the recording chat accepted.
#[derive(Debug, Clone)]
pub struct Edited {
    /// Seconds after the chat was made.
    pub at: i64,
    pub message: u64,
    pub post: Post,
}

/// A chat that records what was posted and edited, and when; it can also fail or refuse posts
/// as an unreachable platform would.
pub struct RecordingChat {
    clock: Arc<dyn Clock>,
    t0: DateTime<Utc>,
    stakeholders: Option<u64>,
    places: Mutex<u64>,
    pub sent: Mutex<Vec<Sent>>,
    pub edited: Mutex<Vec<Edited>>,
    /// Posts to fail before accepting again, as an unreachable platform would.
    pub failures: AtomicU32,
    /// Posts to refuse before accepting again, as a platform would a post it will never take.
    pub refusals: AtomicU32,
    /// Every attempt to post, failed or not: when, where, and with which nonce.
    pub tried: Mutex<Vec<(i64, u64, Option<String>)>>,
    /// Runs once while the next post is in flight, as a command typed meanwhile would.
    pub meanwhile: Mutex<Option<Box<dyn FnOnce() + Send>>>,
    /// While set, posts are accepted without being recorded (another feature's posts).
    pub unrecorded: AtomicBool,
    /// Roles given (`true`) and taken (`false`), in order: (given, user, role).
    pub role_changes: Mutex<Vec<(bool, u64, u64)>>,
}

impl RecordingChat {
    /// Places are channels 101, 102, …; `stakeholders` is the stakeholder channel, if any.
    pub fn new(clock: Arc<dyn Clock>, stakeholders: Option<u64>) -> RecordingChat {
        RecordingChat {
            t0: clock.now(),
            clock,
            stakeholders,
            places: Mutex::new(0),
            sent: Mutex::new(Vec::new()),
            edited: Mutex::new(Vec::new()),
            failures: AtomicU32::new(0),
            refusals: AtomicU32::new(0),
            tried: Mutex::new(Vec::new()),
            meanwhile: Mutex::new(None),
            unrecorded: AtomicBool::new(false),
            role_changes: Mutex::new(Vec::new()),
        }
    }

    fn secs(&self) -> i64 {
        (self.clock.now() - self.t0).num_seconds()
    }

    pub fn sent(&self) -> Vec<Sent> {
        self.sent.lock().expect("sent").clone()
    }

    pub fn edited(&self) -> Vec<Edited> {
        self.edited.lock().expect("edited").clone()
    }
}

/// Takes one from `counter` if it is above zero.
fn take_one(counter: &AtomicU32) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

#[async_trait]
impl Chat for RecordingChat {
    async fn create_place(&self, name: &str, _topic: &str) -> Result<Place, ChatError> {
        let mut n = self.places.lock().expect("places");
        *n += 1;
        Ok(Place {
            channel: 100 + *n,
            name: name.into(),
            mention: format!("#{name}"),
        })
    }

    async fn post(&self, channel: u64, post: Post) -> Result<u64, ChatError> {
        if self.unrecorded.load(Ordering::SeqCst) {
            return Ok(1);
        }
        let meanwhile = self.meanwhile.lock().expect("meanwhile").take();
        if let Some(f) = meanwhile {
            f();
        }
        self.tried
            .lock()
            .expect("tried")
            .push((self.secs(), channel, post.nonce.clone()));
        if take_one(&self.refusals) {
            return Err(ChatError::Refused("Missing Access".into()));
        }
        if take_one(&self.failures) {
            return Err(ChatError::Unavailable("connection reset".into()));
        }
        let mut sent = self.sent.lock().expect("sent");
        let id = 1000 + sent.len() as u64;
        sent.push(Sent {
            at: self.secs(),
            channel,
            id,
            post,
        });
        Ok(id)
    }

    async fn edit(&self, _channel: u64, message: u64, post: Post) -> Result<(), ChatError> {
        self.edited.lock().expect("edited").push(Edited {
            at: self.secs(),
            message,
            post,
        });
        Ok(())
    }

    fn channel_mention(&self, channel: u64) -> String {
        format!("<#{channel}>")
    }

    fn user_mention(&self, user: &UserRef) -> String {
        format!("<@{}>", user.id)
    }

    fn stakeholder_channel(&self) -> Option<u64> {
        self.stakeholders
    }

    async fn add_member_role(&self, user: u64, role: u64, _reason: &str) -> Result<(), ChatError> {
        self.role_changes
            .lock()
            .expect("roles")
            .push((true, user, role));
        Ok(())
    }

    async fn remove_member_role(
        &self,
        user: u64,
        role: u64,
        _reason: &str,
    ) -> Result<(), ChatError> {
        self.role_changes
            .lock()
            .expect("roles")
            .push((false, user, role));
        Ok(())
    }
}

enum ClockChoice {
    Set(DateTime<Utc>),
    Paused(DateTime<Utc>),
    Given(Arc<dyn Clock>),
}

/// How a test wants its app; start with [`TestApp::builder`].
pub struct TestAppBuilder {
    config: Config,
    store: Option<Store>,
    clock: ClockChoice,
    style: TimeStyle,
    templates: Option<PathBuf>,
    stakeholders: Option<u64>,
    scheduler: bool,
}

impl TestAppBuilder {
    /// The config instead of the default one.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Changes to the config so far.
    pub fn configure(mut self, change: impl FnOnce(&mut Config)) -> Self {
        change(&mut self.config);
        self
    }

    /// The store instead of a temporary one.
    pub fn store(mut self, store: Store) -> Self {
        self.store = Some(store);
        self
    }

    /// A clock that stands at `t` until [`TestApp::set`] moves it (the default, at [`t0`]).
    pub fn clock_at(mut self, t: DateTime<Utc>) -> Self {
        self.clock = ClockChoice::Set(t);
        self
    }

    /// Wall time that starts at `t` and moves with tokio's (paused) clock.
    pub fn paused_clock_at(mut self, t: DateTime<Utc>) -> Self {
        self.clock = ClockChoice::Paused(t);
        self
    }

    /// Any other clock, the system's for one.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = ClockChoice::Given(clock);
        self
    }

    /// How rendered times read (Discord's `<t:…>` by default).
    pub fn time_style(mut self, style: TimeStyle) -> Self {
        self.style = style;
        self
    }

    /// Templates from `dir` instead of the config's (or the built-in ones).
    pub fn templates(mut self, dir: &Path) -> Self {
        self.templates = Some(dir.to_path_buf());
        self
    }

    /// The recording chat's stakeholder channel (1 by default).
    pub fn stakeholders(mut self, channel: Option<u64>) -> Self {
        self.stakeholders = channel;
        self
    }

    /// Runs the scheduler from the start (inside a tokio runtime).
    pub fn scheduler(mut self) -> Self {
        self.scheduler = true;
        self
    }

    /// An app on the recording chat.
    pub fn build(self) -> TestApp<RecordingChat> {
        let stakeholders = self.stakeholders;
        self.build_on(|clock| Arc::new(RecordingChat::new(clock.clone(), stakeholders)))
    }

    /// An app on the console chat, which prints into [`TestApp::out`]; channels the store
    /// already knows keep their names.
    pub fn build_console(self) -> TestApp<ConsoleChat> {
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink: Sink = out.clone();
        let known: Vec<(u64, String)> = match &self.store {
            Some(store) => store
                .incidents()
                .expect("incidents")
                .into_iter()
                .filter_map(|i| Some((i.channel?, i.channel_name?)))
                .collect(),
            None => Vec::new(),
        };
        let mut kit = self.build_on(|_| Arc::new(ConsoleChat::new(sink, known)));
        kit.out = out;
        kit
    }

    /// An app on a chat the test made, a real adapter for one.
    pub fn build_with<C: Chat + 'static>(self, chat: Arc<C>) -> TestApp<C> {
        self.build_on(|_| chat)
    }

    fn build_on<C: Chat + 'static>(
        self,
        chat: impl FnOnce(&Arc<dyn Clock>) -> Arc<C>,
    ) -> TestApp<C> {
        let (clock, settable): (Arc<dyn Clock>, _) = match self.clock {
            ClockChoice::Set(t) => {
                let c = SetClock::at(t);
                (c.clone(), Some(c))
            }
            ClockChoice::Paused(t) => (Arc::new(TokioClock::starting_at(t)), None),
            ClockChoice::Given(c) => (c, None),
        };
        let chat = chat(&clock);
        let templates = self
            .templates
            .as_deref()
            .or(self.config.templates.dir.as_deref());
        let renderer = Renderer::new(templates, self.style).expect("templates");
        let store = match self.store {
            Some(s) => s,
            None => Store::temporary().expect("a temporary store"),
        };
        let app = App::new(
            Arc::new(self.config),
            store,
            Arc::new(renderer),
            chat.clone(),
            clock.clone(),
        );
        let mut kit = TestApp {
            app,
            chat,
            clock,
            settable,
            out: Arc::default(),
            start: tokio::time::Instant::now(),
            stop: None,
            task: None,
        };
        if self.scheduler {
            kit.start_scheduler();
        }
        kit
    }
}

/// An app as a test drives it, with its chat, its clock and, when running, its scheduler.
pub struct TestApp<C: Chat + 'static = RecordingChat> {
    pub app: App,
    pub chat: Arc<C>,
    pub clock: Arc<dyn Clock>,
    /// What the console chat printed (empty for other chats).
    pub out: Arc<Mutex<Vec<u8>>>,
    settable: Option<Arc<SetClock>>,
    start: tokio::time::Instant,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestApp {
    /// The default config, a temporary store, a clock standing at [`t0`], the recording chat
    /// with stakeholder channel 1, Discord's time style, no scheduler.
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder {
            config: Config::default(),
            store: None,
            clock: ClockChoice::Set(t0()),
            style: TimeStyle::Discord,
            templates: None,
            stakeholders: Some(1),
            scheduler: false,
        }
    }
}

impl<C: Chat + 'static> TestApp<C> {
    pub fn store(&self) -> &Store {
        &self.app.store
    }

    /// Moves a settable clock to `t`.
    pub fn set(&self, t: DateTime<Utc>) {
        self.settable
            .as_ref()
            .expect("a settable clock (TestAppBuilder::clock_at)")
            .set(t);
    }

    /// Everything the console printed since the last look.
    pub fn take_printed(&self) -> String {
        let bytes = std::mem::take(&mut *self.out.lock().expect("console output"));
        String::from_utf8(bytes).expect("UTF-8 output")
    }

    /// Lets (tokio's) time pass until `secs` after the app was built.
    pub async fn at(&self, secs: i64) {
        tokio::time::sleep_until(self.start + Duration::from_secs(secs as u64)).await;
    }

    pub fn start_scheduler(&mut self) {
        let (tx, rx) = oneshot::channel();
        self.stop = Some(tx);
        self.task = Some(Scheduler::spawn(self.app.clone(), async move {
            let _ = rx.await;
        }));
    }

    /// Stops the scheduler and waits until it has.
    pub async fn stop_scheduler(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("the scheduler ends cleanly");
        }
    }

    pub fn scheduler_running(&self) -> bool {
        self.task.is_some()
    }
}

impl TestApp<RecordingChat> {
    pub fn sent(&self) -> Vec<Sent> {
        self.chat.sent()
    }

    pub fn edited(&self) -> Vec<Edited> {
        self.chat.edited()
    }
}
