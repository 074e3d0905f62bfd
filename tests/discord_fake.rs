//! Self-test of the Discord fake: a real serenity 0.12 client and serenity's HTTP client against it.

mod support;

use serde_json::{json, Value};
use serenity::all::{
    ActionRowComponent, ApplicationId, ChannelId, CommandOptionType, CommandType, Context,
    CreateActionRow, CreateAttachment, CreateAutocompleteResponse, CreateButton, CreateCommand,
    CreateCommandOption, CreateInputText, CreateInteractionResponse,
    CreateInteractionResponseMessage, CreateModal, EventHandler, GatewayIntents, GuildId,
    InputTextStyle, Interaction as SerenityInteraction, InteractionId, Message, Reaction, Ready,
    ResumedEvent,
};
use serenity::builder::Builder;
use serenity::model::event::{ChannelPinsUpdateEvent, Event, GatewayEvent};
use std::time::{Duration, Instant};
use support::discord::*;
use tokio::sync::mpsc;

fn code_of(e: &serenity::Error) -> Option<isize> {
    match e {
        serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(r)) => {
            Some(r.error.code)
        }
        _ => None,
    }
}

fn error_paths(e: &serenity::Error) -> Vec<String> {
    match e {
        serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(r)) => {
            r.error.errors.iter().map(|x| x.path.clone()).collect()
        }
        _ => vec![],
    }
}

/// Tells the test what the bot-side handler saw, as short strings.
struct Handler {
    seen: mpsc::UnboundedSender<String>,
}

impl Handler {
    fn note(&self, s: impl Into<String>) {
        let _ = self.seen.send(s.into());
    }
}

#[serenity::async_trait]
impl EventHandler for Handler {
    async fn ready(&self, _: Context, r: Ready) {
        self.note(format!("ready {}", r.user.name));
    }

    async fn resume(&self, _: Context, _: ResumedEvent) {
        self.note("resumed");
    }

    async fn message(&self, _: Context, m: Message) {
        self.note(format!("message {}", m.content));
    }

    async fn reaction_add(&self, _: Context, r: Reaction) {
        self.note(format!("reaction {}", r.emoji));
    }

    async fn channel_pins_update(&self, _: Context, p: ChannelPinsUpdateEvent) {
        self.note(format!("pins {}", p.channel_id));
    }

    async fn interaction_create(&self, ctx: Context, interaction: SerenityInteraction) {
        let result = match &interaction {
            SerenityInteraction::Command(c) => {
                let response = match c.data.name.as_str() {
                    "ping" => CreateInteractionResponse::Message(
                        CreateInteractionResponseMessage::new()
                            .content("pong")
                            .ephemeral(true),
                    ),
                    "buttons" => CreateInteractionResponse::Message(
                        CreateInteractionResponseMessage::new()
                            .content("choose")
                            .components(vec![CreateActionRow::Buttons(vec![CreateButton::new(
                                "ack",
                            )
                            .label("Acknowledge")])]),
                    ),
                    "report" => CreateInteractionResponse::Modal(
                        CreateModal::new("report", "Report").components(vec![
                            CreateActionRow::InputText(CreateInputText::new(
                                InputTextStyle::Short,
                                "Title",
                                "title",
                            )),
                        ]),
                    ),
                    "Capture" => {
                        let target = c
                            .data
                            .resolved
                            .messages
                            .values()
                            .next()
                            .map(|m| m.content.clone());
                        CreateInteractionResponse::Message(
                            CreateInteractionResponseMessage::new()
                                .content(format!("captured {}", target.unwrap_or_default()))
                                .ephemeral(true),
                        )
                    }
                    _ => CreateInteractionResponse::Defer(CreateInteractionResponseMessage::new()),
                };
                c.create_response(&ctx.http, response).await
            }
            SerenityInteraction::Component(c) => {
                let update = CreateInteractionResponseMessage::new()
                    .content("acknowledged")
                    .components(vec![]);
                c.create_response(&ctx.http, CreateInteractionResponse::UpdateMessage(update))
                    .await
            }
            SerenityInteraction::Modal(m) => {
                let title = m
                    .data
                    .components
                    .iter()
                    .flat_map(|row| row.components.iter())
                    .find_map(|c| match c {
                        ActionRowComponent::InputText(t) if t.custom_id == "title" => {
                            t.value.clone()
                        }
                        _ => None,
                    })
                    .unwrap_or_default();
                let reply =
                    CreateInteractionResponseMessage::new().content(format!("report: {title}"));
                m.create_response(&ctx.http, CreateInteractionResponse::Message(reply))
                    .await
            }
            SerenityInteraction::Autocomplete(a) => {
                let choices = CreateAutocompleteResponse::new().add_string_choice("api", "api");
                a.create_response(&ctx.http, CreateInteractionResponse::Autocomplete(choices))
                    .await
            }
            _ => Ok(()),
        };
        self.note(format!(
            "interaction {} {:?}",
            interaction.id(),
            result.map_err(|e| e.to_string())
        ));
    }
}

async fn expect(
    rx: &mut mpsc::UnboundedReceiver<String>,
    want: impl Fn(&str) -> bool,
    what: &str,
) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(s)) if want(&s) => return s,
            Ok(Some(_)) => {}
            _ => panic!("the serenity handler never saw {what}"),
        }
    }
}

/// Handlers run as separate tasks, so events may be noted in any order.
async fn expect_all(rx: &mut mpsc::UnboundedReceiver<String>, wanted: &[&str]) {
    let mut missing: Vec<&str> = wanted.to_vec();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !missing.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(s)) => missing.retain(|w| *w != s),
            _ => panic!("the serenity handler never saw {missing:?}"),
        }
    }
}

fn intents() -> GatewayIntents {
    GatewayIntents::GUILDS
        | GatewayIntents::GUILD_MESSAGES
        | GatewayIntents::MESSAGE_CONTENT
        | GatewayIntents::GUILD_MESSAGE_REACTIONS
        | GatewayIntents::GUILD_MEMBERS
}

async fn client(fake: &FakeDiscord) -> (serenity::Client, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let client = serenity::client::ClientBuilder::new_with_http(fake.proxy_http(), intents())
        .event_handler(Handler { seen: tx })
        .await
        .expect("serenity client");
    (client, rx)
}

fn admin_http(fake: &FakeDiscord) -> serenity::http::Http {
    let http = fake.proxy_http();
    http.set_application_id(ApplicationId::new(APPLICATION_ID));
    http
}

async fn register(fake: &FakeDiscord) {
    let commands = vec![
        CreateCommand::new("ping").description("Answers pong"),
        CreateCommand::new("buttons").description("Shows a button"),
        CreateCommand::new("report").description("Opens a form"),
        CreateCommand::new("lookup")
            .description("Looks a service up")
            .add_option(
                CreateCommandOption::new(CommandOptionType::String, "service", "Which service")
                    .required(true)
                    .set_autocomplete(true),
            ),
        CreateCommand::new("page")
            .description("Pages someone")
            .add_option(
                CreateCommandOption::new(CommandOptionType::User, "who", "Who to page")
                    .required(true),
            )
            .add_option(CreateCommandOption::new(
                CommandOptionType::Role,
                "team",
                "Which team",
            )),
        CreateCommand::new("Capture").kind(CommandType::Message),
    ];
    GuildId::new(GUILD_ID)
        .set_commands(&admin_http(fake), commands)
        .await
        .expect("commands accepted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serenity_receives_every_dispatch_and_its_answers_are_recorded() {
    let fake = FakeDiscord::start().await;
    register(&fake).await;
    let (mut client, mut seen) = client(&fake).await;
    let runner = tokio::spawn(async move { client.start().await });
    fake.wait_ready().await;
    expect(&mut seen, |s| s == "ready sitrep", "READY").await;
    assert_eq!(fake.gateway_stats().intents, Some(intents().bits()));

    // Slash command answered ephemerally: the exact body serenity sent.
    let ping = fake.slash(OWNER_ID, GENERAL_CHANNEL_ID, "ping", Value::Null);
    let r = fake.wait_response(&ping).await;
    assert_eq!(r.kind, 4);
    assert!(r.ephemeral());
    assert!(r.latency < Duration::from_secs(3));
    let callback = fake
        .wait_for_request(|r| r.route == "POST /interactions/{interaction}/{token}/callback")
        .await;
    assert_eq!(
        callback.body,
        json!({ "type": 4, "data": { "content": "pong", "flags": 64, "attachments": [] } })
    );
    assert_eq!(callback.status, 204);
    assert_eq!(
        fake.original(&ping).expect("reply stored")["flags"],
        json!(64)
    );

    // A button on a reply, then its click answered by updating the message.
    let buttons = fake.slash(OWNER_ID, GENERAL_CHANNEL_ID, "buttons", Value::Null);
    fake.wait_response(&buttons).await;
    let reply = fake.original(&buttons).expect("reply stored");
    let reply_id: u64 = reply["id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("snowflake");
    let click = fake.click(OWNER_ID, reply_id, "ack");
    let r = fake.wait_response(&click).await;
    assert_eq!(r.kind, 7);
    assert_eq!(
        r.data,
        json!({ "content": "acknowledged", "components": [], "attachments": [] })
    );
    assert_eq!(
        fake.message(reply_id).expect("still there")["content"],
        "acknowledged"
    );

    // A modal, filled in and submitted.
    let report = fake.slash(OWNER_ID, GENERAL_CHANNEL_ID, "report", Value::Null);
    let r = fake.wait_response(&report).await;
    assert_eq!(r.kind, 9);
    let submit = fake.submit_modal(&report, &[("title", "db down")]);
    let r = fake.wait_response(&submit).await;
    assert_eq!(r.content(), "report: db down");

    // Autocomplete and a message context-menu command.
    let ac = fake.autocomplete(
        OWNER_ID,
        GENERAL_CHANNEL_ID,
        "lookup",
        json!({ "service": "ap" }),
        "service",
    );
    let r = fake.wait_response(&ac).await;
    assert_eq!(r.kind, 8);
    assert_eq!(r.data["choices"][0]["value"], "api");

    // A member's message, a reaction and a pin reach the handler.
    let said = fake.say(OWNER_ID, GENERAL_CHANNEL_ID, "hello from a user");
    expect(
        &mut seen,
        |s| s == "message hello from a user",
        "MESSAGE_CREATE",
    )
    .await;
    let capture = fake.message_command(OWNER_ID, said, "Capture");
    assert_eq!(
        fake.wait_response(&capture).await.content(),
        "captured hello from a user"
    );
    fake.react(OWNER_ID, said, "✅");
    expect(&mut seen, |s| s == "reaction ✅", "MESSAGE_REACTION_ADD").await;
    fake.pin(OWNER_ID, said);
    expect(&mut seen, |s| s.starts_with("pins "), "CHANNEL_PINS_UPDATE").await;
    fake.edit(said, "edited");
    fake.delete(said);
    fake.add_role("responders");
    fake.add_channel("incidents", ChannelKind::Category, None);
    let thread = fake.add_thread(GENERAL_CHANNEL_ID, "inc-1");

    // Options with users and roles arrive resolved.
    let team = fake.add_role("db-oncall");
    let alice = fake.add_member("alice", &[team]);
    let page = fake.slash(
        OWNER_ID,
        GENERAL_CHANNEL_ID,
        "page",
        json!({ "who": alice, "team": team }),
    );
    assert_eq!(fake.wait_response(&page).await.kind, 5);
    let resolved = &page.payload["data"]["resolved"];
    assert_eq!(resolved["users"][alice.to_string()]["username"], "alice");
    assert!(resolved["members"][alice.to_string()]["roles"].is_array());
    assert_eq!(resolved["roles"][team.to_string()]["name"], "db-oncall");

    // More guild changes, some made by the bot over REST.
    fake.set_member_roles(alice, &[]);
    fake.set_role(team, true, 0);
    fake.unpin(said_again(&fake));
    let http = admin_http(&fake);
    let channel = GuildId::new(GUILD_ID)
        .create_channel(&http, serenity::all::CreateChannel::new("scratch"))
        .await
        .expect("channel");
    channel
        .id
        .edit(
            &http,
            serenity::all::EditChannel::new().topic("about to go"),
        )
        .await
        .expect("edit");
    channel.id.delete(&http).await.expect("delete");
    ChannelId::new(thread)
        .edit_thread(&http, serenity::all::EditThread::new().archived(true))
        .await
        .expect("archive");
    let note = ChannelId::new(GENERAL_CHANNEL_ID)
        .say(&http, "note")
        .await
        .expect("note");
    note.react(&http, '🔥').await.expect("react");
    http.delete_reaction_me(note.channel_id, note.id, &'🔥'.into())
        .await
        .expect("unreact");

    // Every dispatch the fake sent must parse as a known serenity event: serenity drops the rest silently.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut kinds = vec![];
    for frame in fake.frames() {
        if frame.direction != Direction::ToBot || frame.op() != Some(0) {
            continue;
        }
        let name = frame.event().unwrap_or("").to_string();
        match serde_json::from_value::<GatewayEvent>(frame.payload.clone()) {
            Ok(GatewayEvent::Dispatch(_, Event::Unknown(u))) => {
                panic!("serenity does not know {name}: {u:?}")
            }
            Ok(_) => kinds.push(name),
            Err(e) => panic!("serenity cannot parse {name}: {e}\n{}", frame.payload),
        }
    }
    for want in [
        "READY",
        "GUILD_CREATE",
        "INTERACTION_CREATE",
        "MESSAGE_CREATE",
        "MESSAGE_UPDATE",
        "MESSAGE_DELETE",
        "MESSAGE_REACTION_ADD",
        "CHANNEL_PINS_UPDATE",
        "GUILD_ROLE_CREATE",
        "CHANNEL_CREATE",
        "THREAD_CREATE",
        "THREAD_UPDATE",
        "CHANNEL_UPDATE",
        "CHANNEL_DELETE",
        "GUILD_MEMBER_ADD",
        "GUILD_MEMBER_UPDATE",
        "GUILD_ROLE_UPDATE",
        "MESSAGE_REACTION_REMOVE",
    ] {
        assert!(
            kinds.iter().any(|k| k == want),
            "{want} was never dispatched: {kinds:?}"
        );
    }
    runner.abort();
}

#[tokio::test]
async fn rest_objects_parse_in_serenity() {
    let fake = FakeDiscord::start().await;
    let role = fake.add_role("db-oncall");
    let member = fake.add_member("alice", &[role]);
    let http = admin_http(&fake);
    let guild = GuildId::new(GUILD_ID);
    assert_eq!(
        http.get_current_user()
            .await
            .expect("current user")
            .id
            .get(),
        BOT_USER_ID
    );
    http.get_current_application_info()
        .await
        .expect("application info");
    http.get_guild(guild).await.expect("guild");
    assert!(http
        .get_guild_roles(guild)
        .await
        .expect("roles")
        .iter()
        .any(|r| r.id.get() == role));
    assert_eq!(
        http.get_member(guild, member.into())
            .await
            .expect("member")
            .roles[0]
            .get(),
        role
    );
    let category = guild
        .create_channel(
            &http,
            serenity::all::CreateChannel::new("Incidents")
                .kind(serenity::all::ChannelType::Category),
        )
        .await
        .expect("category");
    let channel = guild
        .create_channel(
            &http,
            serenity::all::CreateChannel::new("INC 42 Database Down")
                .category(category.id)
                .topic("sev1"),
        )
        .await
        .expect("channel");
    assert_eq!(channel.name, "inc-42-database-down");
    let thread = channel
        .id
        .create_thread(
            &http,
            serenity::all::CreateThread::new("timeline")
                .kind(serenity::all::ChannelType::PublicThread),
        )
        .await
        .expect("thread");
    let posted = thread
        .id
        .say(&http, "first")
        .await
        .expect("message in thread");
    posted.react(&http, '👀').await.expect("reaction");
    posted.pin(&http).await.expect("pin");
    assert_eq!(thread.id.pins(&http).await.expect("pins").len(), 1);
    for i in 0..5 {
        channel
            .id
            .say(&http, format!("line {i}"))
            .await
            .expect("message");
    }
    let newest = channel
        .id
        .messages(&http, serenity::all::GetMessages::new().limit(3))
        .await
        .expect("history");
    let contents: Vec<&str> = newest.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(contents, ["line 4", "line 3", "line 2"]);
    let older = channel
        .id
        .messages(
            &http,
            serenity::all::GetMessages::new()
                .before(newest[2].id)
                .limit(100),
        )
        .await
        .expect("history before");
    assert_eq!(older.len(), 2);
    let history = fake.requests_to("GET /channels/{channel}/messages");
    assert_eq!(history[0].query("limit"), Some("3"));
    let raw = reqwest::Client::new()
        .get(format!(
            "{}/api/v10/channels/{}/messages?&limit=101",
            fake.api_base(),
            channel.id
        ))
        .header("authorization", format!("Bot {TOKEN}"))
        .send()
        .await
        .expect("request");
    assert_eq!(raw.status(), 400);
    let body: Value = raw.json().await.expect("json");
    assert_eq!(body["code"], 50035);
    assert!(body["errors"]["limit"]["_errors"].is_array(), "{body}");
    let with_file = http
        .send_message(
            channel.id,
            vec![CreateAttachment::bytes(
                b"# Post-mortem".to_vec(),
                "postmortem.md",
            )],
            &json!({ "content": "attached" }),
        )
        .await
        .expect("multipart message");
    assert_eq!(with_file.attachments[0].filename, "postmortem.md");
    assert_eq!(
        fake.attachment(with_file.id.get(), "postmortem.md")
            .as_deref(),
        Some(&b"# Post-mortem"[..])
    );
    let upload = fake
        .requests_to("POST /channels/{channel}/messages")
        .pop()
        .expect("recorded");
    assert_eq!(upload.body["content"], "attached");
    assert_eq!(upload.files[0].filename, "postmortem.md");
    channel
        .id
        .edit(
            &http,
            serenity::all::EditChannel::new().name("inc-42-resolved"),
        )
        .await
        .expect("rename 1");
    channel
        .id
        .edit(&http, serenity::all::EditChannel::new().topic("resolved"))
        .await
        .expect("rename 2");
    let third = channel
        .id
        .edit(
            &http,
            serenity::all::EditChannel::new().name("inc-42-again"),
        )
        .await;
    assert_eq!(
        fake.requests_to("PATCH /channels/{channel}")
            .last()
            .map(|r| r.status),
        Some(429)
    );
    assert!(
        third.is_err(),
        "a third rename within ten minutes is rate limited"
    );
}

#[tokio::test]
async fn discord_limits_are_enforced() {
    let fake = FakeDiscord::start().await;
    let http = admin_http(&fake);
    let general = ChannelId::new(GENERAL_CHANNEL_ID);

    // Manifest validation.
    let bad = json!([
        { "name": "Incident", "description": "uppercase is not allowed" },
        { "name": "ok", "description": "" },
        { "name": "opts", "description": "bad options", "options": [
            { "type": 3, "name": "a", "description": "optional" },
            { "type": 3, "name": "b", "description": "required after optional", "required": true, "max_length": 7000 },
        ]},
        { "name": "Capture", "type": 3, "description": "context menus take no description" },
    ]);
    let err = http
        .create_guild_commands(GuildId::new(GUILD_ID), &bad)
        .await
        .expect_err("bad manifest");
    assert_eq!(code_of(&err), Some(50035));
    let paths = error_paths(&err);
    for p in [
        "0.name",
        "1.description",
        "2.options",
        "2.options.1.max_length",
        "3.description",
    ] {
        assert!(paths.iter().any(|x| x == p), "no error at {p}: {paths:?}");
    }
    let good = json!([{ "name": "incident", "description": "Incidents", "options": [
        { "type": 1, "name": "open", "description": "Open one", "options": [
            { "type": 3, "name": "title", "description": "Title", "required": true, "max_length": 100 },
        ]},
    ]}]);
    let stored = http
        .create_guild_commands(GuildId::new(GUILD_ID), &good)
        .await
        .expect("good manifest");
    assert_eq!(stored[0].name, "incident");

    // Message limits, through serenity's raw calls (its builders check some limits first).
    let err = http
        .send_message(general, vec![], &json!({ "content": "x".repeat(2001) }))
        .await
        .expect_err("too long");
    assert_eq!(code_of(&err), Some(50035));
    assert_eq!(error_paths(&err), ["content"]);
    let err = http
        .send_message(general, vec![], &json!({ "content": "" }))
        .await
        .expect_err("empty");
    assert_eq!(code_of(&err), Some(50006));
    let fields: Vec<Value> = (0..26)
        .map(|i| json!({ "name": format!("f{i}"), "value": "v" }))
        .collect();
    let err = http
        .send_message(
            general,
            vec![],
            &json!({ "embeds": [{ "title": "t".repeat(257), "fields": fields }] }),
        )
        .await
        .expect_err("bad embed");
    let paths = error_paths(&err);
    assert!(
        paths.contains(&"embeds.0.title".to_string())
            && paths.contains(&"embeds.0.fields".to_string()),
        "{paths:?}"
    );
    let err = http
        .send_message(
            general,
            vec![],
            &json!({ "content": "x", "allowed_mentions": { "parse": ["users"], "users": ["1"] } }),
        )
        .await
        .expect_err("parse and users");
    assert_eq!(code_of(&err), Some(50035));

    // Who gets pinged.
    let role = fake.add_role("db-oncall");
    let other_role = fake.add_role("web-oncall");
    let alice = fake.add_member("alice", &[role]);
    let content = format!("@everyone <@&{role}> <@&{other_role}> <@{alice}>");
    let send = |body: Value| {
        let http = &http;
        async move {
            http.send_message(general, vec![], &body)
                .await
                .expect("sent")
                .id
                .get()
        }
    };
    let m = send(json!({ "content": content })).await;
    assert_eq!(
        fake.pings(m),
        Pings {
            everyone: true,
            users: vec![alice],
            roles: vec![role, other_role]
        }
    );
    let m = send(json!({ "content": content, "allowed_mentions": { "parse": [] } })).await;
    assert!(fake.pings(m).nobody());
    let m =
        send(json!({ "content": content, "allowed_mentions": { "roles": [role.to_string()] } }))
            .await;
    assert_eq!(
        fake.pings(m),
        Pings {
            everyone: false,
            users: vec![],
            roles: vec![role]
        }
    );
    let m = send(json!({ "content": "no ping", "embeds": [{ "description": "@everyone" }] })).await;
    assert!(fake.pings(m).nobody());
    let said = fake.say(alice, GENERAL_CHANNEL_ID, "@everyone help");
    assert!(
        !fake.pings(said).everyone,
        "members without Mention Everyone cannot ping everyone"
    );

    // Unknown routes and bad tokens, with rate-limit headers on every answer.
    let raw = reqwest::Client::new();
    let r = raw
        .get(format!("{}/api/v10/nope", fake.api_base()))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 404);
    let r = raw
        .get(format!(
            "{}/api/v10/channels/{GENERAL_CHANNEL_ID}",
            fake.api_base()
        ))
        .header("authorization", "Bot wrong")
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("x-ratelimit-bucket"));
    assert_eq!(
        r.json::<Value>().await.expect("json"),
        json!({ "message": "401: Unauthorized", "code": 0 })
    );
    assert_eq!(fake.invalid_request_count(), 1);
}

#[tokio::test]
async fn interaction_deadlines_and_double_acks() {
    let fake = FakeDiscord::start().await;
    let http = admin_http(&fake);
    let manifest = json!([{ "name": "status", "description": "Shows status" }]);
    http.create_guild_commands(GuildId::new(GUILD_ID), &manifest)
        .await
        .expect("manifest");
    let defer = || CreateInteractionResponse::Defer(CreateInteractionResponseMessage::new());

    let early = fake.slash(OWNER_ID, GENERAL_CHANNEL_ID, "status", Value::Null);
    let edit = serenity::all::EditInteractionResponse::new().content("too soon");
    let err = http
        .edit_original_interaction_response(&early.token, &edit, vec![])
        .await
        .expect_err("no ack yet");
    assert_eq!(code_of(&err), Some(10015));
    defer()
        .execute(&http, (InteractionId::new(early.id), early.token.as_str()))
        .await
        .expect("first ack");
    let err = defer()
        .execute(&http, (InteractionId::new(early.id), early.token.as_str()))
        .await
        .expect_err("second ack");
    assert_eq!(code_of(&err), Some(40060));
    let edited = http
        .edit_original_interaction_response(&early.token, &edit, vec![])
        .await
        .expect("edit after defer");
    assert_eq!(edited.content, "too soon");
    assert_eq!(
        fake.original(&early).expect("original")["content"],
        "too soon"
    );

    let more = http
        .create_followup_message(&early.token, &json!({ "content": "more" }), vec![])
        .await
        .expect("followup");
    assert_eq!(more.content, "more");
    assert_eq!(fake.followups(&early).len(), 1);

    // Documented: the first followup after a defer fills the loading message instead.
    let deferred = fake.slash(OWNER_ID, GENERAL_CHANNEL_ID, "status", Value::Null);
    defer()
        .execute(
            &http,
            (InteractionId::new(deferred.id), deferred.token.as_str()),
        )
        .await
        .expect("defer");
    http.create_followup_message(&deferred.token, &json!({ "content": "filled" }), vec![])
        .await
        .expect("followup after defer");
    assert_eq!(
        fake.original(&deferred).expect("original")["content"],
        "filled"
    );
    assert!(fake.followups(&deferred).is_empty());

    // A reply with a file goes out as multipart.
    let filed = fake.slash(OWNER_ID, GENERAL_CHANNEL_ID, "status", Value::Null);
    let reply = CreateInteractionResponseMessage::new()
        .content("see file")
        .add_file(CreateAttachment::bytes(
            b"# timeline".to_vec(),
            "timeline.md",
        ));
    CreateInteractionResponse::Message(reply)
        .execute(&http, (InteractionId::new(filed.id), filed.token.as_str()))
        .await
        .expect("reply with a file");
    let r = fake.response(&filed).expect("answered");
    assert_eq!(r.files[0].filename, "timeline.md");
    assert_eq!(r.files[0].bytes, b"# timeline");
    let original = fake.original(&filed).expect("original");
    assert_eq!(original["attachments"][0]["filename"], "timeline.md");

    let late = fake.slash(OWNER_ID, GENERAL_CHANNEL_ID, "status", Value::Null);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let err = defer()
        .execute(&http, (InteractionId::new(late.id), late.token.as_str()))
        .await
        .expect_err("late");
    assert_eq!(code_of(&err), Some(10062));
    assert!(fake.response(&late).is_none());
}

#[tokio::test]
async fn direct_mode_retries_after_a_429() {
    let fake = FakeDiscord::start().await;
    let http = fake.direct_http();
    fake.fail_next(
        "POST /channels/{channel}/messages",
        Fault::RateLimit { retry_after: 0.4 },
    );
    let started = Instant::now();
    let sent = http
        .send_message(
            ChannelId::new(GENERAL_CHANNEL_ID),
            vec![],
            &json!({ "content": "after the limit" }),
        )
        .await
        .expect("retried and sent");
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(sent.content, "after the limit");
    let tries = fake.requests_to("POST /channels/{channel}/messages");
    assert_eq!(
        tries.iter().map(|r| r.status).collect::<Vec<_>>(),
        [429, 200]
    );
    assert!(tries.iter().all(|r| r.tls));
    assert!(tries[1].at - tries[0].at >= Duration::from_millis(400));
    assert_eq!(tries[0].response["retry_after"], json!(0.4));
    assert_eq!(fake.rate_limited_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_socket_is_resumed_not_reidentified() {
    let fake = FakeDiscord::start_with(FakeOptions {
        heartbeat_interval: Duration::from_millis(300),
        ..FakeOptions::default()
    })
    .await;
    let (mut client, mut seen) = client(&fake).await;
    let runner = tokio::spawn(async move { client.start().await });
    fake.wait_ready().await;
    expect(&mut seen, |s| s.starts_with("ready"), "READY").await;
    assert_eq!(fake.gateway_fault(GatewayFault::DropSocket), 1);
    // Sent while the bot is away: RESUME must replay it.
    fake.say(OWNER_ID, GENERAL_CHANNEL_ID, "while you were away");
    expect_all(&mut seen, &["resumed", "message while you were away"]).await;
    let stats = fake.gateway_stats();
    assert_eq!(
        (stats.identifies, stats.resumes, stats.connections),
        (1, 1, 2)
    );

    // Heartbeats are acknowledged; op 7 makes serenity reconnect and resume again.
    let acked = fake
        .wait_until(Duration::from_secs(5), |f| {
            let frames = f.frames();
            let beat = frames
                .iter()
                .any(|x| x.direction == Direction::FromBot && x.op() == Some(1));
            let ack = frames
                .iter()
                .any(|x| x.direction == Direction::ToBot && x.op() == Some(11));
            (beat && ack).then_some(())
        })
        .await;
    assert!(acked.is_some(), "no heartbeat and ACK");
    assert_eq!(fake.gateway_fault(GatewayFault::Reconnect), 1);
    let resumed = fake
        .wait_until(Duration::from_secs(10), |f| {
            (f.gateway_stats().resumes == 2).then_some(())
        })
        .await;
    assert!(
        resumed.is_some(),
        "op 7 did not lead to a RESUME: {:?}",
        fake.gateway_stats()
    );
    assert_eq!(fake.gateway_stats().identifies, 1);
    runner.abort();
}

#[tokio::test]
async fn close_4004_ends_client_start_with_an_error() {
    let fake = FakeDiscord::start().await;
    fake.close_identify_with(Some(4004));
    let (mut client, _seen) = client(&fake).await;
    let result = tokio::time::timeout(Duration::from_secs(15), client.start())
        .await
        .expect("start returns");
    match result {
        Err(serenity::Error::Gateway(serenity::gateway::GatewayError::InvalidAuthentication)) => {}
        other => panic!("expected InvalidAuthentication, got {other:?}"),
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        fake.gateway_stats().connections,
        1,
        "no reconnect loop after a fatal close"
    );
}

#[tokio::test]
async fn global_limit_and_injected_server_errors() {
    let fake = FakeDiscord::start().await;
    let raw = reqwest::Client::new();
    fake.set_global_limit(Some(3));
    let mut statuses = vec![];
    let mut global_header = false;
    for _ in 0..5 {
        let r = raw
            .get(format!("{}/api/v10/users/@me", fake.api_base()))
            .header("authorization", format!("Bot {TOKEN}"))
            .send()
            .await
            .expect("request");
        statuses.push(r.status().as_u16());
        global_header |= r.headers().get("x-ratelimit-global").is_some();
        if r.status() == 429 {
            let body: Value = r.json().await.expect("json");
            assert_eq!(body["global"], true);
            assert!(body["retry_after"]
                .as_f64()
                .is_some_and(|s| s > 0.0 && s <= 1.0));
        }
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    assert!(global_header);
    fake.set_global_limit(None);

    let http = admin_http(&fake);
    fake.fail_next("GET /users/@me", Fault::ServerError(502));
    let err = http.get_current_user().await.expect_err("502");
    match err {
        serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(r)) => {
            assert_eq!(r.status_code.as_u16(), 502)
        }
        other => panic!("expected a 502, got {other:?}"),
    }
    fake.fail_next("GET /users/@me", Fault::Delay(Duration::from_millis(300)));
    let started = Instant::now();
    http.get_current_user().await.expect("slow but fine");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(fake.rate_limited_count(), 2);
    assert_eq!(fake.invalid_request_count(), 2);
}

/// A message that is pinned, for unpinning.
fn said_again(fake: &FakeDiscord) -> u64 {
    let id = fake.say(OWNER_ID, GENERAL_CHANNEL_ID, "pin me");
    fake.pin(OWNER_ID, id);
    id
}

/// Posts `n` messages to a channel at once over raw HTTP(S); each answer's status and headers.
async fn burst(
    client: &reqwest::Client,
    base: &str,
    channel: u64,
    n: usize,
) -> Vec<(u16, reqwest::header::HeaderMap)> {
    let sends = (0..n).map(|i| {
        let req = client
            .post(format!("{base}/api/v10/channels/{channel}/messages"))
            .header("authorization", format!("Bot {TOKEN}"))
            .json(&json!({ "content": format!("message {i}") }));
        async move {
            let r = req.send().await.expect("request");
            (r.status().as_u16(), r.headers().clone())
        }
    });
    futures::future::join_all(sends).await
}

fn header<'a>(h: &'a reqwest::header::HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_posts_are_limited_per_channel_with_429_direct_and_a_queue_through_a_proxy() {
    let fake = FakeDiscord::start().await;
    let other = fake.add_channel("other", ChannelKind::Text, None);

    // Direct (TLS): the sixth post in five seconds to one channel is refused with Discord's 429.
    let direct = fake.direct_client();
    let answers = burst(&direct, "https://discord.com", GENERAL_CHANNEL_ID, 6).await;
    let mut statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    statuses.sort();
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429]);
    let (_, refused) = answers.iter().find(|(s, _)| *s == 429).unwrap();
    assert_eq!(header(refused, "x-ratelimit-scope"), Some("user"));
    assert_eq!(header(refused, "x-ratelimit-limit"), Some("5"));
    assert_eq!(header(refused, "x-ratelimit-remaining"), Some("0"));
    assert!(header(refused, "x-ratelimit-bucket").is_some());
    assert!(header(refused, "x-ratelimit-reset").is_some());
    let retry: f64 = header(refused, "retry-after").unwrap().parse().unwrap();
    assert!(retry > 4.0 && retry <= 5.0, "retry after {retry}");
    let body = &fake
        .requests_to("POST /channels/{channel}/messages")
        .into_iter()
        .find(|r| r.status == 429)
        .unwrap()
        .response;
    assert_eq!(body["global"], false);
    assert_eq!(body["retry_after"].as_f64(), Some(retry));
    let remaining: Vec<&str> = answers
        .iter()
        .filter(|(s, _)| *s == 200)
        .map(|(_, h)| header(h, "x-ratelimit-remaining").unwrap())
        .collect();
    assert!(
        remaining.contains(&"0") && remaining.contains(&"4"),
        "{remaining:?}"
    );
    // Another channel is another bucket.
    let answers = burst(&direct, "https://discord.com", other, 1).await;
    assert_eq!(answers[0].0, 200);
    assert_eq!(fake.route_limited_count(), 1);

    // Through the proxy port a burst waits for the next window instead: no 429; what does not
    // fit the open window is answered once it has passed.
    let before = fake.requests_to("POST /channels/{channel}/messages").len();
    let proxy = reqwest::Client::new();
    let started = Instant::now();
    let answers = burst(&proxy, &fake.api_base(), other, 6).await;
    let took = started.elapsed();
    assert!(
        answers.iter().all(|(s, _)| *s == 200),
        "no 429 through the proxy"
    );
    assert_eq!(fake.route_limited_count(), 1);
    assert_eq!(
        fake.queued_count(),
        2,
        "the burst's first four fit the open window"
    );
    // One post already spent this window; four more fit, the other two wait for the next.
    assert!(
        took >= Duration::from_millis(4_500) && took < Duration::from_secs(8),
        "took {took:?}"
    );
    let tries: Vec<_> = fake.requests_to("POST /channels/{channel}/messages")[before..].to_vec();
    let first = tries[0].at;
    for (i, r) in tries.iter().enumerate() {
        let earliest = Duration::from_secs(if i < 4 { 0 } else { 5 });
        assert!(
            r.at - first + Duration::from_millis(300) >= earliest,
            "post {i} answered {:?} after the first",
            r.at - first
        );
    }
    assert_eq!(fake.messages(other).len(), 7);
}

#[tokio::test]
async fn a_nonce_is_enforced_only_within_its_window() {
    let fake = FakeDiscord::start_with(FakeOptions {
        nonce_window: Duration::from_millis(800),
        ..FakeOptions::default()
    })
    .await;
    let http = fake.proxy_http();
    let body = json!({ "content": "once", "nonce": "n-1", "enforce_nonce": true });
    let send = || http.send_message(ChannelId::new(GENERAL_CHANNEL_ID), vec![], &body);
    let a = send().await.unwrap();
    let b = send().await.unwrap();
    assert_eq!(a.id, b.id, "within the window the first message comes back");
    tokio::time::sleep(Duration::from_millis(900)).await;
    let c = send().await.unwrap();
    assert_ne!(
        a.id, c.id,
        "after the window Discord no longer remembers the nonce"
    );
    assert_eq!(fake.messages(GENERAL_CHANNEL_ID).len(), 2);
    // The history never echoes a nonce, so a client cannot find its post by it later.
    let history = http
        .get_messages(ChannelId::new(GENERAL_CHANNEL_ID), None, Some(10))
        .await
        .unwrap();
    assert_eq!(history.len(), 2);
    assert!(history.iter().all(|m| m.nonce.is_none()));
}
