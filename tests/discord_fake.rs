//! Self-test of the Discord fake: a real serenity 0.12 client and serenity's HTTP client against it.

mod support;

use serde_json::{json, Value};
use serenity::all::{
    ActionRowComponent, ApplicationId, ChannelId, CommandOptionType, CommandType, Context,
    CreateActionRow, CreateAttachment, CreateAutocompleteResponse, CreateButton, CreateCommand,
    CreateCommandOption, CreateInputText, CreateInteractionResponse,
    CreateInteractionResponseMessage, CreateModal, EventHandler, GatewayIntents, GuildId,
    InputTextStyle, Interaction as SerenityInteraction, InteractionId, Message, MessageId,
    Reaction, Ready, ResumedEvent,
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
    // The two privileged intents asked for, switched on as in the developer portal.
    fake.set_privileged_intents(INTENT_MESSAGE_CONTENT | INTENT_GUILD_MEMBERS);
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
    // A forum, its tags and a tagged post, as serenity reads them back.
    let forum = fake.add_channel("incident-forum", ChannelKind::Forum, None);
    let tag = fake.add_forum_tags(forum, &["SEV1"])[0];
    let post = http
        .create_forum_post(
            ChannelId::new(forum),
            &json!({
                "name": "inc-7", "auto_archive_duration": 1440, "applied_tags": [tag.to_string()],
                "message": { "content": "INC-7", "allowed_mentions": { "parse": [] } },
            }),
            None,
        )
        .await
        .expect("forum post");
    assert_eq!(post.applied_tags.len(), 1);
    assert_eq!(post.applied_tags[0].get(), tag);
    let forum_read = http
        .get_channel(ChannelId::new(forum))
        .await
        .expect("forum");
    let forum_read = forum_read.guild().expect("a guild channel");
    assert_eq!(forum_read.available_tags[0].name, "SEV1");

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
    // This bot pins, which the default invite does not allow.
    fake.set_bot_permissions(BOT_ROLE_PERMISSIONS | PERM_PIN_MESSAGES);
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

/// Tokens end 15 minutes after the interaction (here shortened), answering 401 50027; a
/// deleted placeholder ends the deferral, so that the next follow-up may be ephemeral.
#[tokio::test]
async fn interaction_tokens_expire_and_a_deleted_placeholder_ends_the_deferral() {
    let fake = FakeDiscord::start_with(FakeOptions {
        interaction_token_lifetime: Duration::from_millis(1500),
        ..FakeOptions::default()
    })
    .await;
    let http = admin_http(&fake);
    let manifest = json!([{ "name": "status", "description": "Shows status" }]);
    http.create_guild_commands(GuildId::new(GUILD_ID), &manifest)
        .await
        .expect("manifest");
    let defer = || CreateInteractionResponse::Defer(CreateInteractionResponseMessage::new());

    let i = fake.slash(OWNER_ID, GENERAL_CHANNEL_ID, "status", Value::Null);
    defer()
        .execute(&http, (InteractionId::new(i.id), i.token.as_str()))
        .await
        .expect("defer");
    let placeholder: u64 = fake.original(&i).expect("placeholder")["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    http.delete_original_interaction_response(&i.token)
        .await
        .expect("delete the placeholder");
    assert!(fake.original_deleted(&i));
    assert!(fake.original(&i).is_none());
    assert!(!fake
        .messages(GENERAL_CHANNEL_ID)
        .iter()
        .any(|m| m["id"].as_str() == Some(placeholder.to_string().as_str())));
    assert_eq!(
        fake.requests_to("DELETE /webhooks/{application}/{token}/messages/{message}")
            .len(),
        1
    );
    let err = http
        .edit_original_interaction_response(
            &i.token,
            &serenity::all::EditInteractionResponse::new().content("late"),
            vec![],
        )
        .await
        .expect_err("the placeholder is gone");
    assert_eq!(code_of(&err), Some(10008));
    let private = http
        .create_followup_message(
            &i.token,
            &json!({ "content": "only you", "flags": 64 }),
            vec![],
        )
        .await
        .expect("an ephemeral follow-up");
    assert_eq!(private.content, "only you");
    let followups = fake.followups(&i);
    assert_eq!(followups.len(), 1);
    assert_eq!(followups[0]["flags"].as_u64().unwrap() & 64, 64);
    assert!(!fake
        .messages(GENERAL_CHANNEL_ID)
        .iter()
        .any(|m| m["content"] == "only you"));

    tokio::time::sleep(Duration::from_millis(1600)).await;
    let err = http
        .create_followup_message(&i.token, &json!({ "content": "too late" }), vec![])
        .await
        .expect_err("the token ran out");
    assert_eq!(code_of(&err), Some(50027));
    assert_eq!(status_of(&err), Some(401));
}

fn status_of(e: &serenity::Error) -> Option<u16> {
    match e {
        serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(r)) => {
            Some(r.status_code.as_u16())
        }
        _ => None,
    }
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
async fn a_new_application_is_refused_privileged_intents_with_4014() {
    let fake = FakeDiscord::start().await;
    let client =
        |intents| serenity::client::ClientBuilder::new_with_http(fake.proxy_http(), intents);
    let mut refused = client(intents()).await.expect("serenity client");
    let result = tokio::time::timeout(Duration::from_secs(15), refused.start())
        .await
        .expect("start returns");
    match result {
        Err(serenity::Error::Gateway(
            serenity::gateway::GatewayError::DisallowedGatewayIntents,
        )) => {}
        other => panic!("expected DisallowedGatewayIntents, got {other:?}"),
    }
    assert_eq!(fake.gateway_stats().identifies, 0);
    // Without the privileged ones the same application connects.
    let mut plain =
        client(intents() - GatewayIntents::MESSAGE_CONTENT - GatewayIntents::GUILD_MEMBERS)
            .await
            .expect("serenity client");
    let runner = tokio::spawn(async move { plain.start().await });
    fake.wait_ready().await;
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

/// One raw call to the fake: (status, Discord's JSON code or 0, the body).
async fn call(fake: &FakeDiscord, method: &str, path: &str, body: Value) -> (u16, u64, Value) {
    let r = reqwest::Client::new()
        .request(
            method.parse().expect("method"),
            format!("{}/api/v10{path}", fake.api_base()),
        )
        .header("authorization", format!("Bot {TOKEN}"))
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    (status, v["code"].as_u64().unwrap_or(0), v)
}

#[tokio::test]
async fn threads_and_forums_keep_discords_rules() {
    let fake = FakeDiscord::start().await;
    let g = GENERAL_CHANNEL_ID;
    let (s, code, _) = call(
        &fake,
        "POST",
        &format!("/channels/{g}/threads"),
        json!({"name": "t", "type": 11, "auto_archive_duration": 120}),
    )
    .await;
    assert_eq!(
        (s, code),
        (400, 50035),
        "only 60, 1440, 4320 or 10080 minutes"
    );
    let (s, _, t) = call(
        &fake,
        "POST",
        &format!("/channels/{g}/threads"),
        json!({"name": "t", "type": 11, "auto_archive_duration": 60}),
    )
    .await;
    assert_eq!(s, 201);
    let thread: u64 = t["id"].as_str().unwrap().parse().unwrap();
    let (_, _, m) = call(
        &fake,
        "POST",
        &format!("/channels/{thread}/messages"),
        json!({"content": "a"}),
    )
    .await;
    let msg = m["id"].as_str().unwrap().to_string();
    let bob = fake.add_member("bob", &[]);

    // Archived by inactivity: only a new message (which unarchives it) gets through.
    fake.archive_thread(thread, false);
    let edit = format!("/channels/{thread}/messages/{msg}");
    assert_eq!(
        call(&fake, "PATCH", &edit, json!({"content": "b"})).await.1,
        50083
    );
    let member = format!("/channels/{thread}/thread-members/{bob}");
    assert_eq!(call(&fake, "PUT", &member, Value::Null).await.1, 50083);
    let rename = format!("/channels/{thread}");
    assert_eq!(
        call(&fake, "PATCH", &rename, json!({"name": "x"})).await.1,
        50083
    );
    let (s, _, _) = call(
        &fake,
        "POST",
        &format!("/channels/{thread}/messages"),
        json!({"content": "c"}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        fake.channel(thread).unwrap()["thread_metadata"]["archived"],
        false
    );
    assert_eq!(call(&fake, "PUT", &member, Value::Null).await.0, 204);
    assert_eq!(fake.thread_members(thread), vec![BOT_USER_ID, bob]);

    // Locked by a moderator: messages stay out, and only Manage Threads unarchives it.
    fake.archive_thread(thread, true);
    assert_eq!(
        call(
            &fake,
            "POST",
            &format!("/channels/{thread}/messages"),
            json!({"content": "d"})
        )
        .await
        .1,
        50083
    );
    fake.set_bot_permissions(BOT_ROLE_PERMISSIONS & !(1 << 34));
    assert_eq!(
        call(&fake, "PATCH", &rename, json!({"archived": false}))
            .await
            .1,
        50013
    );
    fake.set_bot_permissions(BOT_ROLE_PERMISSIONS);
    assert_eq!(
        call(&fake, "PATCH", &rename, json!({"archived": false}))
            .await
            .0,
        200
    );

    // Forums: a post needs its starter message and takes only the forum's tags, five at most.
    let forum = fake.add_channel("forum", ChannelKind::Forum, None);
    let posts = format!("/channels/{forum}/threads");
    assert_eq!(
        call(&fake, "POST", &posts, json!({"name": "p"})).await.1,
        50035
    );
    let (s, code, _) = call(
        &fake,
        "POST",
        &posts,
        json!({"name": "p", "applied_tags": ["1"], "message": {"content": "x"}}),
    )
    .await;
    assert_eq!((s, code), (400, 50035), "an unknown tag");
    let many: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
    let tags: Vec<Value> = many.iter().map(|n| json!({"name": n})).collect();
    let forum_path = format!("/channels/{forum}");
    assert_eq!(
        call(&fake, "PATCH", &forum_path, json!({"available_tags": tags}))
            .await
            .1,
        30048
    );
    let twice = json!({"available_tags": [{"name": "x"}, {"name": "x"}]});
    assert_eq!(call(&fake, "PATCH", &forum_path, twice).await.1, 40061);
    let ids = fake.add_forum_tags(forum, &["a", "b", "c", "d", "e", "f"]);
    let six: Vec<String> = ids.iter().map(u64::to_string).collect();
    assert_eq!(
        call(
            &fake,
            "POST",
            &posts,
            json!({"name": "p", "applied_tags": six, "message": {"content": "x"}})
        )
        .await
        .1,
        50035
    );
    let (s, _, p) = call(
        &fake,
        "POST",
        &posts,
        json!({"name": "p", "applied_tags": [six[0]], "message": {"content": "x"}}),
    )
    .await;
    assert_eq!(s, 201, "{p}");
    assert_eq!(
        p["message"]["id"], p["id"],
        "the starter message shares the post's id"
    );
    assert_eq!(
        fake.applied_tag_names(p["id"].as_str().unwrap().parse().unwrap()),
        vec!["a"]
    );
    let (s, code, _) = call(
        &fake,
        "POST",
        &format!("/channels/{forum}/messages"),
        json!({"content": "x"}),
    )
    .await;
    assert_eq!(
        (s, code),
        (400, 40058),
        "messages go in posts, not the forum"
    );
    fake.require_forum_tag(forum);
    assert_eq!(
        call(
            &fake,
            "POST",
            &posts,
            json!({"name": "q", "message": {"content": "x"}})
        )
        .await
        .1,
        40067
    );

    // The server's cap of active threads.
    fake.fill_active_threads(g, 1000 - fake.active_threads());
    let (s, code, _) = call(
        &fake,
        "POST",
        &format!("/channels/{g}/threads"),
        json!({"name": "one too many", "type": 11}),
    )
    .await;
    assert_eq!((s, code), (400, 160006));
    assert_eq!(
        call(
            &fake,
            "POST",
            &posts,
            json!({"name": "p2", "applied_tags": [six[0]], "message": {"content": "x"}})
        )
        .await
        .1,
        160006
    );
}

/// Status and Discord error code of a refused call.
fn refusal<T: std::fmt::Debug>(r: serenity::Result<T>) -> (u16, isize) {
    match r {
        Err(serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(e))) => {
            (e.status_code.as_u16(), e.error.code)
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bots_permissions_come_from_roles_and_overwrites() {
    const ADMINISTRATOR: u64 = 1 << 3;
    let fake = FakeDiscord::start().await;
    let http = fake.proxy_http();
    let category = fake.add_channel("Incidents", ChannelKind::Category, None);
    let archive = fake.add_channel("Archive", ChannelKind::Category, None);
    let inc = fake.add_channel("inc-1", ChannelKind::Text, Some(category));
    let stakeholders = fake.add_channel("stakeholders", ChannelKind::Text, None);
    let (inc_id, st_id) = (ChannelId::new(inc), ChannelId::new(stakeholders));
    inc_id
        .say(&http, "hello")
        .await
        .expect("the invite allows posting");

    // @everyone's deny takes Send Messages from the bot's role; the role's own allow gives it back.
    fake.set_overwrite(stakeholders, GUILD_ID, false, 0, PERM_SEND_MESSAGES);
    assert_eq!(refusal(st_id.say(&http, "update").await), (403, 50013));
    fake.set_overwrite(stakeholders, BOT_ROLE_ID, false, PERM_SEND_MESSAGES, 0);
    st_id.say(&http, "update").await.expect("role allow wins");
    // The member's own overwrite comes last: without View Channel the channel is out of reach.
    fake.set_overwrite(stakeholders, BOT_USER_ID, true, 0, PERM_VIEW_CHANNEL);
    assert_eq!(refusal(st_id.say(&http, "update").await), (403, 50001));
    assert_eq!(refusal(http.get_channel(st_id).await), (403, 50001));

    // Without Read Message History, history reads come back empty, as Discord documents.
    let seeded = fake.seed_messages(OWNER_ID, inc, 3);
    fake.set_overwrite(inc, BOT_ROLE_ID, false, 0, PERM_READ_MESSAGE_HISTORY);
    let read = inc_id
        .messages(&http, serenity::all::GetMessages::new().limit(10))
        .await
        .expect("an empty page, not an error");
    assert!(read.is_empty());
    assert_eq!(
        refusal(http.get_message(inc_id, seeded[0].into()).await),
        (403, 50013)
    );
    assert!(inc_id.pins(&http).await.expect("pins").is_empty());
    fake.set_overwrite(inc, BOT_ROLE_ID, false, 0, 0);
    // Pinning needs Pin Messages, which the invite does not ask for.
    assert_eq!(
        refusal(inc_id.pin(&http, MessageId::new(seeded[0])).await),
        (403, 50013)
    );

    // Threads: archiving needs Manage Threads; unarchiving only Send Messages.
    let thread = inc_id
        .create_thread(
            &http,
            serenity::all::CreateThread::new("timeline")
                .kind(serenity::all::ChannelType::PublicThread),
        )
        .await
        .expect("thread");
    thread
        .id
        .edit_thread(&http, serenity::all::EditThread::new().archived(true))
        .await
        .expect("archive");
    fake.set_overwrite(inc, BOT_ROLE_ID, false, 0, PERM_MANAGE_THREADS);
    thread
        .id
        .edit_thread(&http, serenity::all::EditThread::new().archived(false))
        .await
        .expect("unarchive needs no Manage Threads");
    assert_eq!(
        refusal(
            thread
                .id
                .edit_thread(&http, serenity::all::EditThread::new().archived(true))
                .await
        ),
        (403, 50013)
    );

    // Moving a channel needs Manage Channels where it goes too.
    fake.set_overwrite(archive, BOT_ROLE_ID, false, 0, PERM_MANAGE_CHANNELS);
    let mv = serenity::all::EditChannel::new().category(ChannelId::new(archive));
    assert_eq!(refusal(inc_id.edit(&http, mv.clone()).await), (403, 50013));

    // A channel created in a category starts with the category's overwrites.
    fake.set_overwrite(category, BOT_ROLE_ID, false, 0, PERM_ATTACH_FILES);
    let created = GuildId::new(GUILD_ID)
        .create_channel(
            &http,
            serenity::all::CreateChannel::new("inc-2").category(ChannelId::new(category)),
        )
        .await
        .expect("created");
    assert_eq!(created.permission_overwrites.len(), 1);
    assert_eq!(
        fake.bot_permissions_in(created.id.get()) & PERM_ATTACH_FILES,
        0
    );

    // Paging a role that is not mentionable takes Mention Everyone in that very channel.
    let dba = fake.add_role("dba");
    let page = || {
        serenity::all::CreateMessage::new()
            .content(format!("<@&{dba}> replica lag"))
            .allowed_mentions(serenity::all::CreateAllowedMentions::new().roles(vec![dba]))
    };
    let general = ChannelId::new(GENERAL_CHANNEL_ID);
    let pinged = general.send_message(&http, page()).await.expect("page");
    assert_eq!(fake.pings(pinged.id.get()).roles, [dba]);
    fake.set_overwrite(GENERAL_CHANNEL_ID, BOT_ROLE_ID, false, 0, 1 << 17);
    let silent = general.send_message(&http, page()).await.expect("page");
    assert!(fake.pings(silent.id.get()).nobody());

    // Administrator overrides every overwrite.
    fake.set_bot_permissions(ADMINISTRATOR);
    st_id.say(&http, "admin").await.expect("administrator");
    inc_id.edit(&http, mv).await.expect("administrator moves");
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
