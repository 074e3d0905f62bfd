//! The floor for benches/discord.rs: a bare serenity bot that answers every command with a constant.
//!
//! Same serenity version and features as sitrep, the same intents, the same REST client set-up
//! (proxy with serenity's limiter off, or discord.com over TLS with a CA file and a
//! connect-to override) and the same command manifests, so that whatever sitrep costs beyond it
//! is sitrep's own. It stores nothing, logs nothing and reads no configuration file:
//!
//!     SITREP_DISCORD_TOKEN=... floor APPLICATION_ID GUILD_ID (--api-base URL |
//!         --ca-file PEM --connect-to discord.com:443:127.0.0.1:PORT)

use serenity::all::{
    ApplicationId, ClientBuilder, Context, CreateInteractionResponse,
    CreateInteractionResponseMessage, EventHandler, GatewayIntents, GuildId, HttpBuilder,
    Interaction,
};
use std::net::SocketAddr;
use std::time::Duration;

/// The manifests sitrep registers, as files, so that the floor does not link sitrep.
const MANIFESTS: [&str; 6] = [
    include_str!("../../commands/incident.json"),
    include_str!("../../commands/escalate.json"),
    include_str!("../../commands/metrics.json"),
    include_str!("../../commands/deploys.json"),
    include_str!("../../commands/timeline.json"),
    include_str!("../../commands/postmortem.json"),
];

struct Floor;

#[serenity::async_trait]
impl EventHandler for Floor {
    async fn interaction_create(&self, ctx: Context, interaction: Interaction) {
        if let Interaction::Command(c) = interaction {
            let answer = CreateInteractionResponseMessage::new()
                .content("ok")
                .ephemeral(true);
            if let Err(e) = c
                .create_response(&ctx.http, CreateInteractionResponse::Message(answer))
                .await
            {
                eprintln!("floor: answering {}: {e}", c.id);
            }
        }
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: floor APPLICATION_ID GUILD_ID (--api-base URL | --ca-file PEM --connect-to HOST:PORT:IP:PORT)"
    );
    std::process::exit(2)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [app, guild, rest @ ..] = args.as_slice() else {
        usage()
    };
    let (Ok(app), Ok(guild)) = (app.parse::<u64>(), guild.parse::<u64>()) else {
        usage()
    };
    let token = std::env::var("SITREP_DISCORD_TOKEN").unwrap_or_else(|_| usage());
    let mut client = reqwest::Client::builder()
        .use_rustls_tls()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15));
    let mut api_base = None;
    let mut flags = rest.iter();
    while let Some(flag) = flags.next() {
        let value = flags.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--api-base" => api_base = Some(value.trim_end_matches('/').to_string()),
            "--ca-file" => {
                let pem = std::fs::read(value).expect("ca file");
                client =
                    client.add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("PEM"));
            }
            "--connect-to" => {
                let (host, addr) = value
                    .split_once(':')
                    .and_then(|(host, rest)| Some((host, rest.split_once(':')?.1)))
                    .unwrap_or_else(|| usage());
                let addr: SocketAddr = addr.parse().unwrap_or_else(|_| usage());
                client = client.resolve(host, addr);
            }
            _ => usage(),
        }
    }
    let mut http = HttpBuilder::new(&token)
        .client(client.build().expect("HTTP client"))
        .application_id(ApplicationId::new(app));
    if let Some(api) = &api_base {
        http = http.proxy(api).ratelimiter_disabled(true);
    }
    let http = http.build();
    let manifests: Vec<serde_json::Value> = MANIFESTS
        .iter()
        .map(|m| serde_json::from_str(m).expect("manifest"))
        .collect();
    http.create_guild_commands(GuildId::new(guild), &manifests)
        .await
        .expect("registering commands");
    let intents = GatewayIntents::GUILDS
        | GatewayIntents::GUILD_MESSAGES
        | GatewayIntents::GUILD_MESSAGE_REACTIONS
        | GatewayIntents::MESSAGE_CONTENT;
    let mut client = ClientBuilder::new_with_http(http, intents)
        .event_handler(Floor)
        .await
        .expect("client");
    if let Err(e) = client.start().await {
        eprintln!("floor: {e}");
        std::process::exit(1);
    }
}
