//! The `sitrep` command line: console, run, check-config, doctor, register-commands, export.

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use sitrep::app::App;
use sitrep::chat::console::{Console, ConsoleChat, Sink};
use sitrep::chat::discord;
use sitrep::clock::SystemClock;
use sitrep::config::{Config, ConfigError, Secrets};
use sitrep::demo::Demo;
use sitrep::domain::UserRef;
use sitrep::integrations::pagerduty::PagerDuty;
use sitrep::integrations::prometheus::{self, PrometheusClient};
use sitrep::integrations::trackers::Trackers;
use sitrep::render::{Renderer, TimeStyle};
use sitrep::scheduler::Scheduler;
use sitrep::store::Store;
use sitrep::telemetry::Telemetry;
use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tracing_subscriber::prelude::*;

#[derive(Parser)]
#[command(name = "sitrep", version, about = "Incident coordination for Discord")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Work an incident in the terminal, with no Discord and no setup.
    Console {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Database folder (default: [storage] path, ./sitrep-data).
        #[arg(long)]
        db: Option<PathBuf>,
        /// The name you appear under.
        #[arg(long, env = "USER", default_value = "you")]
        user: String,
        /// Where the status page and the incident browser listen (default: [http] listen).
        #[arg(long, value_name = "ADDR")]
        http: Option<String>,
        /// Serve no status page or incident browser.
        #[arg(long, conflicts_with = "http")]
        no_http: bool,
    },
    /// Play a whole incident in the console, into a throwaway database, then go on as the
    /// console does: its status page, browser and post-mortem draft stay up until you exit.
    Demo {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Where the status page and the incident browser listen (default: [http] listen).
        #[arg(long, value_name = "ADDR")]
        http: Option<String>,
        /// Serve no status page or incident browser.
        #[arg(long, conflicts_with = "http")]
        no_http: bool,
    },
    /// Run the bot on Discord (needs SITREP_DISCORD_TOKEN and a config file).
    Run {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Register the commands in commands/ with Discord (a bulk overwrite) and exit.
    RegisterCommands {
        #[arg(long)]
        config: Option<PathBuf>,
        /// The server to register them on (default: [discord] guild_id; none: globally).
        #[arg(long)]
        guild: Option<u64>,
    },
    /// Write an incident's post-mortem as Markdown from the database (stop the bot first: the
    /// database admits one process at a time).
    Export {
        /// The incident: INC-7 or 7.
        incident: String,
        /// A stored draft version (default: the latest; with none stored, one compiled now).
        #[arg(long)]
        version: Option<u32>,
        /// Write here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long)]
        config: Option<PathBuf>,
        /// Database folder (default: [storage] path).
        #[arg(long)]
        db: Option<PathBuf>,
    },
    /// Ask Discord whether the setup gives the bot what it needs (ids, intents, permissions, room
    /// for channels, pingable escalation roles); exits non-zero while there are problems.
    Doctor {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Check a configuration file and print a summary, or every problem found.
    CheckConfig {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Only check what the console needs (no Discord settings).
        #[arg(long)]
        console: bool,
    },
}

fn environment() -> BTreeMap<String, String> {
    std::env::vars().collect()
}

fn load_config(path: Option<&PathBuf>) -> anyhow::Result<Config> {
    Ok(Config::load(path.map(|p| p.as_path()), &environment())?)
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("SITREP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,sitrep=info"));
    // The close watch has its own filter: it must see serenity's gateway closes whatever the
    // terminal is told.
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                // Colour codes are noise in a journal or a log file.
                .with_ansi(std::io::stderr().is_terminal())
                .with_filter(filter),
        )
        .with(discord::close_watch())
        .init();
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let result = match cli.command {
        Cmd::Console {
            config,
            db,
            user,
            http,
            no_http,
        } => {
            let listen = (!no_http).then_some(http);
            runtime.block_on(console(config, db, user, listen, false))
        }
        Cmd::Demo {
            config,
            http,
            no_http,
        } => {
            let listen = (!no_http).then_some(http);
            let db = std::env::temp_dir().join(format!("sitrep-demo-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&db);
            let result = runtime.block_on(console(
                config,
                Some(db.clone()),
                "alice".into(),
                listen,
                true,
            ));
            let _ = std::fs::remove_dir_all(&db);
            result
        }
        Cmd::CheckConfig { config, console } => check_config(config, console),
        Cmd::Run { config } => runtime.block_on(run(config)),
        Cmd::Export {
            incident,
            version,
            out,
            config,
            db,
        } => export(config, db, &incident, version, out),
        Cmd::RegisterCommands { config, guild } => runtime.block_on(register(config, guild)),
        Cmd::Doctor { config } => runtime.block_on(doctor(config)),
    };
    // A task stuck in a dependency (serenity spinning on a socket Discord closed for good) must
    // not keep the process alive once the bot has decided to stop.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}

fn check_config(path: Option<PathBuf>, console_only: bool) -> anyhow::Result<()> {
    // Every problem in one run: the file's and the environment's, then the checks of the rest.
    let env = environment();
    let (config, mut problems) = match Config::read(path.as_deref(), &env) {
        Ok(loaded) => {
            let secrets = Secrets::from_env(&env).with_routing_keys(&loaded.config, &env);
            let problems = sitrep::preflight::report(&loaded, &secrets, !console_only);
            (Some(loaded.config), problems)
        }
        Err(ConfigError::Invalid { problems }) => (None, problems),
        Err(e) => (None, vec![e.to_string()]),
    };
    if let Some(Err(e)) = config
        .as_ref()
        .map(|c| Renderer::from_config(c, TimeStyle::Plain))
    {
        problems.push(e.to_string());
    }
    if let (true, Some(config)) = (problems.is_empty(), &config) {
        print!("{}", config.summary());
        println!("ok: no problems found");
        return Ok(());
    }
    for p in &problems {
        eprintln!("problem: {p}");
    }
    bail!(
        "the configuration has {} problem{}",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    )
}

fn export(
    config: Option<PathBuf>,
    db: Option<PathBuf>,
    incident: &str,
    version: Option<u32>,
    out: Option<PathBuf>,
) -> anyhow::Result<()> {
    let config = load_config(config.as_ref())?;
    let id: sitrep::domain::IncidentId = incident.parse()?;
    let path = db.unwrap_or_else(|| config.storage.path.clone());
    if !path.exists() {
        // Opening would create an empty database; say what is wrong instead.
        bail!("no database at {}", path.display());
    }
    let store = Store::open(&path)
        .with_context(|| format!("opening the database at {}", path.display()))?;
    let renderer = Renderer::from_config(&config, TimeStyle::Plain)?;
    let md = sitrep::postmortem::export(&store, &renderer, &config, id, version)?;
    match out {
        Some(f) => std::fs::write(&f, md).with_context(|| format!("writing {}", f.display()))?,
        None => std::io::stdout().write_all(md.as_bytes())?,
    }
    Ok(())
}

/// The Prometheus client when `[prometheus] url` is set; credentials from the environment.
fn prometheus_client(config: &Config) -> anyhow::Result<Option<PrometheusClient>> {
    let Some(url) = &config.prometheus.url else {
        return Ok(None);
    };
    let auth = environment()
        .get(prometheus::TOKEN_ENV)
        .and_then(|s| prometheus::Auth::parse(s));
    Ok(Some(PrometheusClient::new(
        url,
        config.prometheus.timeout.0,
        auth,
    )?))
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

async fn run(path: Option<PathBuf>) -> anyhow::Result<()> {
    let env = environment();
    let loaded = Config::read(path.as_deref(), &env)?;
    let secrets = Secrets::from_env(&env).with_routing_keys(&loaded.config, &env);
    let problems = sitrep::preflight::report(&loaded, &secrets, true);
    if !problems.is_empty() {
        bail!("cannot start:\n  {}", problems.join("\n  "));
    }
    let config = loaded.config;
    let renderer = Renderer::from_config(&config, TimeStyle::Discord)?;
    let store = Store::open(&config.storage.path)
        .with_context(|| format!("opening the database at {}", config.storage.path.display()))?;
    let http = discord::build_http(&config, &secrets)?;
    let rest_secrets = secrets.clone();
    // Bound before connecting, so that a port in use stops startup instead of failing later.
    let listener = match config.http.listen.as_str() {
        "" => None,
        addr => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("listening on {addr} ([http] listen)"))?,
        ),
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let config = Arc::new(config);
    let telemetry = Arc::new(Telemetry::new());
    let app_telemetry = telemetry.clone();
    let app_config = config.clone();
    let prometheus = prometheus_client(&app_config)?;
    let pagerduty = PagerDuty::from_config(&app_config, &secrets)?;
    let trackers = Trackers::new(&app_config.trackers, &secrets)?;
    let oncall = sitrep::integrations::pagerduty_oncalls::OnCallTokens::from_secrets(&secrets);
    let make_app = move |chat| {
        let app = App::new(
            app_config,
            store,
            Arc::new(renderer),
            chat,
            Arc::new(SystemClock),
        )
        .with_prometheus(prometheus)
        .with_pagerduty(pagerduty)
        .with_trackers(trackers)
        .with_oncall(oncall)
        .with_telemetry(app_telemetry);
        if let Some(listener) = listener {
            let edge = sitrep::http::serve(app.clone(), listener, secrets.clone(), stopped());
            tokio::spawn(async move {
                if let Err(e) = edge.await {
                    tracing::error!(error = %e, "the HTTP edge stopped");
                }
            });
        }
        if let Err(e) = sitrep::integrations::github::spawn(
            &app.config.github,
            app.store.clone(),
            app.clock.clone(),
            &secrets,
            stopped(),
        ) {
            tracing::error!(error = %e, "cannot poll GitHub");
        }
        Scheduler::spawn(app.clone(), stopped());
        app
    };
    let shutdown = async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    };
    let (http_config, http_secrets) = (config.clone(), rest_secrets);
    let new_http = move || discord::build_http(&http_config, &http_secrets);
    discord::run(config, http, telemetry, new_http, make_app, shutdown).await?;
    tracing::info!("stopped cleanly");
    Ok(())
}

async fn doctor(path: Option<PathBuf>) -> anyhow::Result<()> {
    let config = load_config(path.as_ref())?;
    let secrets = Secrets::from_env(&environment());
    if secrets.discord_token.is_none() {
        println!("problem: SITREP_DISCORD_TOKEN is not set");
        println!("  fix: export the bot token (Bot → Reset Token in the developer portal) as SITREP_DISCORD_TOKEN");
        bail!("1 problem found");
    }
    let http = discord::build_http(&config, &secrets)?;
    let report = discord::doctor::check(&config, &http).await;
    print!("{}", report.render());
    match report.problems() {
        0 => {
            println!("all good: sitrep has what it needs on Discord");
            Ok(())
        }
        n => bail!("{n} problem{} found", if n == 1 { "" } else { "s" }),
    }
}

async fn register(path: Option<PathBuf>, guild: Option<u64>) -> anyhow::Result<()> {
    let config = load_config(path.as_ref())?;
    let secrets = Secrets::from_env(&environment());
    let http = discord::build_http(&config, &secrets)?;
    let guild = guild.or(config.discord.guild_id);
    let n = discord::register_commands(&http, guild).await?;
    match guild {
        Some(g) => println!("registered {n} command(s) on guild {g}"),
        None => println!("registered {n} command(s) globally (they can take a while to appear)"),
    }
    Ok(())
}

/// `listen`: `None` serves no web pages; `Some(None)` serves them where `[http] listen` says.
async fn console(
    config: Option<PathBuf>,
    db: Option<PathBuf>,
    user: String,
    listen: Option<Option<String>>,
    demo: bool,
) -> anyhow::Result<()> {
    let mut env = environment();
    // The demo brings its own metrics and someone to page, whatever the configuration has.
    let demo = if demo {
        Some(Demo::start().await.context("starting the demo's metrics")?)
    } else {
        None
    };
    if let Some(demo) = &demo {
        env.extend(demo.settings());
    }
    let config = Config::load(config.as_deref(), &env)?;
    let problems = sitrep::preflight::problems(&config, &Secrets::default(), false);
    if !problems.is_empty() {
        bail!("configuration problems:\n  {}", problems.join("\n  "));
    }
    let path = db.unwrap_or_else(|| config.storage.path.clone());
    let store = Store::open(&path)
        .with_context(|| format!("opening the database at {}", path.display()))?;
    let renderer = Renderer::from_config(&config, TimeStyle::Plain)?;
    let known = store
        .incidents()?
        .into_iter()
        .filter_map(|i| Some((i.channel?, i.channel_name?)));
    let out: Sink = Arc::new(Mutex::new(std::io::stdout()));
    // A page mentions roles by id; the console names them after the targets that hold them.
    let roles: Vec<(u64, String)> = config
        .escalation
        .targets
        .iter()
        .rev()
        .flat_map(|(name, t)| t.roles.iter().map(move |r| (*r, name.clone())))
        .collect();
    let chat = Arc::new(ConsoleChat::new(out, known).with_roles(roles));
    let prometheus = prometheus_client(&config)?;
    let env = environment();
    let secrets = Secrets::from_env(&env).with_routing_keys(&config, &env);
    let pagerduty = PagerDuty::from_config(&config, &secrets)?;
    let trackers = Trackers::new(&config.trackers, &secrets)?;
    let oncall = sitrep::integrations::pagerduty_oncalls::OnCallTokens::from_secrets(&secrets);
    let app = App::new(
        Arc::new(config),
        store,
        Arc::new(renderer),
        chat.clone(),
        Arc::new(SystemClock),
    )
    .with_prometheus(prometheus)
    .with_pagerduty(pagerduty)
    .with_trackers(trackers)
    .with_oncall(oncall);
    let console = Console {
        app,
        chat,
        user: UserRef::new(sitrep::commands::options::console_user_id(&user), user),
    };
    // What came due while the console was closed goes out once, before the first command.
    Scheduler::new(console.app.clone()).fire_due().await?;
    // So are the issues closed meanwhile: read once, before the first command.
    if let Err(e) = sitrep::action_items::read_back(&console.app).await {
        tracing::warn!(error = %e, "reading action items back failed");
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let timed = Scheduler::spawn(console.app.clone(), async {
        let _ = stopped.await;
    });
    let (web_stop, web_stopped) = tokio::sync::oneshot::channel::<()>();
    let web = match listen {
        Some(addr) => console_web(&console, addr, async {
            let _ = web_stopped.await;
        })
        .await?
        .map(|(url, edge)| (url, tokio::spawn(edge))),
        None => None,
    };
    if let Some(demo) = &demo {
        demo.play(&console, web.as_ref().map(|(url, _)| url.as_str()))
            .await;
    }
    let web = web.map(|(_, task)| task);

    let interactive = std::io::stdin().is_terminal();
    if interactive && demo.is_none() {
        println!("sitrep console: type `help` for examples, `exit` to leave.");
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(1);
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    // Stdin blocks; read it on its own thread so the runtime stays free for timed work. The
    // prompt waits for the previous line's output so that the two never interleave.
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        let mut lines = stdin.lock().lines();
        loop {
            if interactive {
                print!("sitrep> ");
                let _ = std::io::stdout().flush();
            }
            match lines.next() {
                Some(Ok(line)) => {
                    if tx.blocking_send(line).is_err() || done_rx.recv().is_err() {
                        break;
                    }
                }
                _ => break,
            }
        }
    });
    while let Some(line) = rx.recv().await {
        let go_on = console.line(&line).await;
        let _ = done_tx.send(());
        if !go_on {
            break;
        }
    }
    let _ = stop.send(());
    let _ = web_stop.send(());
    timed.await?;
    if let Some(web) = web {
        // A browser holding a connection open must not keep the console from exiting.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), web).await;
    }
    console.app.store.flush().await?;
    Ok(())
}

/// The console's status page and incident browser, on the HTTP edge the bot serves, with the
/// addresses (and an admin token made for this run, when the environment has none) printed
/// once. A busy port is said and the console goes on without them.
async fn console_web(
    console: &Console,
    addr: Option<String>,
    stopped: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Option<(String, impl std::future::Future<Output = ()>)>> {
    let addr = addr.unwrap_or_else(|| console.app.config.http.listen.clone());
    if addr.is_empty() {
        return Ok(None);
    }
    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(l) => l,
        Err(e) => {
            console.chat.print(
                "web",
                &format!("cannot listen on {addr} ({e}): no status page this time; `--http 127.0.0.1:8181` picks another place"),
            );
            return Ok(None);
        }
    };
    let url = format!("http://{}", listener.local_addr()?);
    let mut secrets = Secrets::from_env(&environment());
    let token_note = match &secrets.http_admin_token {
        Some(_) => "sign in with SITREP_HTTP_ADMIN_TOKEN".to_string(),
        None => {
            let mut bytes = [0u8; 24];
            let random = std::fs::File::open("/dev/urandom")
                .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes));
            match random {
                Ok(()) => {
                    let token = hex::encode(bytes);
                    let note = format!("admin token for this run: {token}");
                    secrets.http_admin_token = Some(token);
                    note
                }
                Err(e) => format!("no admin token could be made ({e}); set SITREP_HTTP_ADMIN_TOKEN to open the browser"),
            }
        }
    };
    console.chat.print(
        "web",
        &format!("status page {url}/status · incident browser {url}/incidents ({token_note})"),
    );
    let edge = sitrep::http::serve(console.app.clone(), listener, secrets, stopped);
    Ok(Some((url, async move {
        if let Err(e) = edge.await {
            tracing::error!(error = %e, "the HTTP edge stopped");
        }
    })))
}
