//! A terminal chat, like Hubot's shell adapter: Discord's command syntax in, posts printed out.

pub mod markup;

use crate::app::App;
use crate::commands::options::{is_sub, manifest};
use crate::commands::{self, CommandInput, InputOption, InputValue, Invocation, Outcome, Target};
use crate::domain::{IncidentId, UserRef};
use crate::error::{CommandError, UserError};
use crate::message::Post;
use crate::platform::{Chat, ChatError, Place};
use crate::store::StoreError;
use async_trait::async_trait;
use chrono::{Offset, Utc};
use markup::Mention;
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// Where the console prints: stdout in use, a buffer in tests.
pub type Sink = Arc<Mutex<dyn Write + Send>>;

const STAKEHOLDERS: u64 = 1;
const CURRENT: &str = "console/current";

pub struct ConsoleChat {
    out: Sink,
    channels: Mutex<HashMap<u64, String>>,
    next_id: Mutex<u64>,
    /// People the bot has named, so that a `<@id>` reads as their name.
    users: Mutex<HashMap<u64, String>>,
    /// Role ids as the configuration names them (escalation targets).
    roles: HashMap<u64, String>,
    /// Every button printed so far, as (custom id, channel): button `[n]` is `buttons[n - 1]`.
    buttons: Mutex<Vec<(String, u64)>>,
}

impl ConsoleChat {
    /// `known` are channels made by earlier runs on the same database, so that they keep their names.
    pub fn new(out: Sink, known: impl IntoIterator<Item = (u64, String)>) -> Self {
        let mut channels: HashMap<u64, String> = known.into_iter().collect();
        channels.insert(STAKEHOLDERS, "stakeholders".into());
        let next = channels.keys().max().copied().unwrap_or(0).max(1000) + 1;
        ConsoleChat {
            out,
            channels: Mutex::new(channels),
            next_id: Mutex::new(next),
            users: Mutex::new(HashMap::new()),
            roles: HashMap::new(),
            buttons: Mutex::new(Vec::new()),
        }
    }

    /// Names for role ids, so that a page to `<@&123>` reads `@dba`.
    pub fn with_roles(mut self, roles: impl IntoIterator<Item = (u64, String)>) -> Self {
        self.roles.extend(roles);
        self
    }

    /// Someone the console speaks as, so that a mention of them reads as their name.
    pub fn know_user(&self, user: &UserRef) {
        self.users
            .lock()
            .expect("user map")
            .insert(user.id, user.name.clone());
    }

    /// The custom id and channel of button `[n]`, if one was printed.
    pub fn button(&self, n: usize) -> Option<(String, u64)> {
        let buttons = self.buttons.lock().expect("button list");
        n.checked_sub(1).and_then(|i| buttons.get(i)).cloned()
    }

    /// Prints a post sent to (or answered in) `channel`: Discord's markup spelt out, and its
    /// buttons as numbered choices that `press N` presses.
    pub fn show(&self, prefix: &str, channel: Option<u64>, post: &Post, edited: bool) {
        let mut text = post_text(post);
        if edited {
            text = format!("(edited) {text}");
        }
        if !post.buttons.is_empty() {
            let mut buttons = self.buttons.lock().expect("button list");
            let first = buttons.len() + 1;
            buttons.extend(
                post.buttons
                    .iter()
                    .map(|b| (b.custom_id.clone(), channel.unwrap_or(STAKEHOLDERS))),
            );
            let labels = post.buttons.iter().map(|b| b.label.as_str());
            let line = markup::choices((first..).zip(labels));
            text = if text.is_empty() {
                line
            } else {
                format!("{text}\n{line}")
            };
        }
        self.print(prefix, &text);
    }

    fn name(&self, channel: u64) -> String {
        self.channels
            .lock()
            .expect("channel map")
            .get(&channel)
            .cloned()
            .unwrap_or_else(|| format!("channel-{channel}"))
    }

    /// Prints `text` under `[prefix]`, Discord's markup spelt out for a terminal.
    pub fn print(&self, prefix: &str, text: &str) {
        let text = self.for_terminal(text);
        let mut out = self.out.lock().expect("console output");
        let mut lines = text.lines();
        let first = lines.next().unwrap_or("");
        let _ = writeln!(out, "[{prefix}] {first}");
        for line in lines {
            let _ = writeln!(out, "    {line}");
        }
        let _ = out.flush();
    }
}

impl ConsoleChat {
    fn for_terminal(&self, text: &str) -> String {
        let now = Utc::now();
        let tz = chrono::Local::now().offset().fix();
        markup::for_terminal(text, now, tz, |m| match m {
            Mention::User(id) => self.users.lock().expect("user map").get(&id).cloned(),
            Mention::Role(id) => self.roles.get(&id).cloned(),
            Mention::Channel(id) => self.channels.lock().expect("channel map").get(&id).cloned(),
        })
    }
}

/// A post as a terminal shows it: embed title, body and attachments (buttons are printed by
/// [`ConsoleChat::show`], numbered).
pub fn post_text(post: &Post) -> String {
    let mut parts = Vec::new();
    if !post.content.is_empty() {
        parts.push(post.content.clone());
    }
    for e in post.embeds() {
        parts.push(e.title.clone());
        parts.push(e.description.clone());
    }
    for f in &post.files {
        parts.push(format!(
            "(attached {}, {} bytes)",
            f.filename,
            f.bytes.len()
        ));
    }
    parts.join("\n")
}

#[async_trait]
impl Chat for ConsoleChat {
    async fn create_place(&self, name: &str, _topic: &str) -> Result<Place, ChatError> {
        let id = {
            let mut next = self.next_id.lock().expect("id counter");
            *next += 1;
            *next - 1
        };
        self.channels
            .lock()
            .expect("channel map")
            .insert(id, name.to_string());
        Ok(Place {
            channel: id,
            name: name.to_string(),
            mention: format!("#{name}"),
        })
    }

    async fn post(&self, channel: u64, post: Post) -> Result<u64, ChatError> {
        self.show(
            &format!("#{}", self.name(channel)),
            Some(channel),
            &post,
            false,
        );
        Ok(fastrand::u64(1..u64::MAX / 2))
    }

    fn channel_mention(&self, channel: u64) -> String {
        format!("#{}", self.name(channel))
    }

    async fn archive(&self, channel: u64) -> Result<(), ChatError> {
        self.print(&format!("#{}", self.name(channel)), "(archived)");
        Ok(())
    }

    fn user_mention(&self, user: &UserRef) -> String {
        self.know_user(user);
        format!("@{}", user.name)
    }

    fn stakeholder_channel(&self) -> Option<u64> {
        Some(STAKEHOLDERS)
    }

    async fn edit(&self, channel: u64, _message: u64, post: Post) -> Result<(), ChatError> {
        self.show(
            &format!("#{}", self.name(channel)),
            Some(channel),
            &post,
            true,
        );
        Ok(())
    }
}

/// Reads `/incident open title:"Checkout returns 500" severity:SEV2` into a command, using the
/// manifest to tell subcommands from options.
pub fn parse_line(line: &str) -> Result<CommandInput, UserError> {
    let words = shlex::split(line)
        .ok_or_else(|| UserError::Line("unbalanced quote: close every \" you open".into()))?;
    let mut words = words.into_iter();
    let head = words.next().unwrap_or_default();
    let name = head
        .strip_prefix('/')
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            UserError::Line(format!(
                "commands start with /, like /incident status (got `{head}`)"
            ))
        })?
        .to_string();
    let spec = manifest(&name).ok_or_else(|| UserError::UnknownCommand(format!("/{name}")))?;
    let mut rest: Vec<String> = words.collect();
    let mut path = Vec::new();
    let mut spec = spec;
    loop {
        let subs: Vec<&serde_json::Value> = spec["options"]
            .as_array()
            .map(|o| o.iter().filter(|s| is_sub(s)).collect())
            .unwrap_or_default();
        if subs.is_empty() {
            break;
        }
        let names: Vec<&str> = subs.iter().filter_map(|s| s["name"].as_str()).collect();
        let Some(word) = rest.first().filter(|w| !w.contains(':')).cloned() else {
            return Err(UserError::Line(format!(
                "/{name} needs one of: {}",
                names.join(", ")
            )));
        };
        let Some(sub) = subs.iter().find(|s| s["name"] == word.as_str()).copied() else {
            return Err(UserError::Line(format!(
                "`{word}` is not one of: {}",
                names.join(", ")
            )));
        };
        rest.remove(0);
        path.push(word);
        spec = sub;
    }
    let mut options = Vec::new();
    for word in rest {
        let (k, v) = word.split_once(':').ok_or_else(|| {
            UserError::Line(format!(
                "`{word}` is not an option; write name:value, e.g. title:\"DB down\""
            ))
        })?;
        options.push(InputOption {
            name: k.to_string(),
            value: InputValue::Raw(v.to_string()),
        });
    }
    for sub in path.into_iter().rev() {
        options = vec![InputOption {
            name: sub,
            value: InputValue::Sub(options),
        }];
    }
    Ok(CommandInput { name, options })
}

/// One console session over an app whose chat is a [`ConsoleChat`].
pub struct Console {
    pub app: App,
    pub chat: Arc<ConsoleChat>,
    pub user: UserRef,
}

impl Console {
    /// Runs one line; prints the reply, the posts, or the error. Returns false on `exit`.
    pub async fn line(&self, line: &str) -> bool {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return true;
        }
        if matches!(line, "exit" | "quit" | "/exit" | "/quit") {
            return false;
        }
        if matches!(line, "help" | "/help") {
            self.chat.print("reply", HELP);
            return true;
        }
        if let Some((n, rest)) = markup::pressed(line) {
            self.press(n, rest).await;
            return true;
        }
        let input = match parse_line(line) {
            Ok(i) => i,
            Err(e) => {
                self.chat.print("error", &e.to_string());
                return true;
            }
        };
        let channel = match self.current_channel() {
            Ok(c) => c,
            Err(e) => {
                self.chat.print("error", &e.to_string());
                return true;
            }
        };
        self.invoke(self.invocation(channel, input), Run::Command(None))
            .await;
        true
    }

    fn invocation(&self, channel: Option<u64>, input: CommandInput) -> Invocation {
        self.chat.know_user(&self.user);
        Invocation {
            user: self.user.clone(),
            member_roles: Vec::new(),
            channel,
            input,
        }
    }

    /// Presses button `[n]` the way a click on Discord does: an escalation button through
    /// escalation's handler, any other through the command it stands for, pointed at the
    /// incident whose post holds it. Discord's "Post update" opens a form; here its fields follow
    /// the number (`press 2 message:"Rolling back"`).
    async fn press(&self, n: usize, rest: &str) {
        let Some((custom_id, channel)) = self.chat.button(n) else {
            self.chat
                .print("error", &format!("there is no button [{n}] to press"));
            return;
        };
        let mut parts = custom_id.splitn(4, ':');
        let (group, action, arg) = (parts.next(), parts.next(), parts.next());
        let id = arg.and_then(|a| a.parse::<IncidentId>().ok());
        // `group:action:<incident>[:<arg>]`, as on Discord: the argument is option `arg`.
        let extra = parts.next().map(str::to_string);
        let input = |name: &str| CommandInput {
            name: name.into(),
            options: extra
                .clone()
                .map(|a| commands::InputOption {
                    name: "arg".into(),
                    value: commands::InputValue::String(a),
                })
                .into_iter()
                .collect(),
        };
        match (group, action, id) {
            (Some("escalation"), _, _) => {
                let inv = self.invocation(Some(channel), input("escalate"));
                self.invoke(inv, Run::Escalation(&custom_id)).await;
            }
            (Some("incident"), Some("update"), Some(id)) if rest.is_empty() => {
                self.chat.print(
                    "reply",
                    &format!(
                        "Say what you know after the number, as you would in the form: press {n} message:\"…\" (and state:identified, investigating or monitoring); it runs /incident update incident:{id}."
                    ),
                );
            }
            (Some("incident"), Some("update"), Some(id)) => {
                match parse_line(&format!("/incident update incident:{id} {rest}")) {
                    Ok(input) => {
                        let inv = self.invocation(Some(channel), input);
                        self.invoke(inv, Run::Command(None)).await;
                    }
                    Err(e) => self.chat.print("error", &e.to_string()),
                }
            }
            (Some(group), Some(action), Some(id))
                if commands::table::button(&format!("{group} {action}")).is_some() =>
            {
                let inv = self.invocation(Some(channel), input(&format!("{group} {action}")));
                self.invoke(inv, Run::Command(Some(Target::Incident(id))))
                    .await;
            }
            _ => self.chat.print("error", "This button is no longer in use."),
        }
    }

    /// Runs `inv`, prints its reply or error, then the posts it made and its follow-up.
    async fn invoke(&self, inv: Invocation, how: Run<'_>) {
        let typed = matches!(how, Run::Command(_));
        let result = {
            // The command's posts are queued with its events; holding the outbox until the
            // reply is printed keeps the scheduler from printing them first.
            let _turn = self.app.store.outbox_turn().await;
            let result: Result<Outcome, CommandError> = match how {
                Run::Command(target) => match commands::prepare_on(&self.app, &inv, target) {
                    Ok(prepared) => prepared.run(&self.app, &inv).await,
                    Err(e) => Err(e),
                },
                Run::Escalation(custom_id) => {
                    commands::escalate::on_button(
                        &self.app,
                        custom_id,
                        inv.user.clone(),
                        inv.member_roles.clone(),
                        inv.channel,
                    )
                    .await
                }
            };
            match &result {
                Ok(outcome) => self
                    .chat
                    .show("reply", inv.channel, &outcome.reply.post, false),
                Err(e) => self.chat.print("error", &e.to_chat(&inv.input.path())),
            }
            result
        };
        if let Ok(outcome) = result {
            self.deliver().await;
            // As on Discord, where an escalation button's press has no follow-up.
            if typed {
                commands::after(&self.app, &inv, &outcome).await;
                self.deliver().await;
            }
            if let Some(id) = outcome.incident {
                let _ = self.app.store.meta_set(CURRENT, &id.0.to_string());
            }
        }
    }

    /// Prints what waits in the outbox now, so that a command's posts come before the prompt.
    async fn deliver(&self) {
        let outbox = crate::scheduler::Scheduler::new(self.app.clone());
        if let Err(e) = outbox.deliver_outbox().await {
            self.chat.print("error", &e.to_string());
        }
    }

    /// The console is "in" the channel of the incident last opened or named, else the newest one.
    fn current_channel(&self) -> Result<Option<u64>, StoreError> {
        let store = &self.app.store;
        let named = match store.meta_get(CURRENT)?.and_then(|s| s.parse::<u64>().ok()) {
            Some(n) => store.incident(IncidentId(n))?,
            None => None,
        };
        let inc = match named {
            Some(inc) => Some(inc),
            None => store.latest_incident()?,
        };
        Ok(inc.and_then(|i| i.channel))
    }
}

/// How a console line runs: as a typed command (or a button standing for one), or as a press
/// of an escalation button.
enum Run<'a> {
    Command(Option<Target>),
    Escalation(&'a str),
}

pub const HELP: &str = "Type commands as in Discord, e.g.
/incident open title:\"Checkout returns 500\" severity:SEV2 service:checkout
/incident update state:identified message:\"Bad deploy of v2.3\"
/incident status
Commands apply to the incident last opened or named (incident:INC-2).
Buttons print as numbered choices, [1] Join  [2] Post update: type `press 1` (or just `1`) to press one.
`exit` quits.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_like_discord_syntax() {
        let input = parse_line(
            r#"/incident open title:"Checkout returns 500" severity:SEV2 started:10:42"#,
        )
        .unwrap();
        assert_eq!(input.path(), "incident open");
        let InputValue::Sub(opts) = &input.options[0].value else {
            panic!()
        };
        assert_eq!(opts[0].name, "title");
        assert_eq!(
            opts[0].value,
            InputValue::Raw("Checkout returns 500".into())
        );
        assert_eq!(opts[2].value, InputValue::Raw("10:42".into()));
    }

    #[test]
    fn malformed_lines_are_explained() {
        for (line, needle) in [
            (r#"/incident open title:"Checkout"#, "unbalanced quote"),
            ("incident open", "start with /"),
            ("/nope", "not a command"),
            ("/incident", "needs one of"),
            ("/incident explode", "not one of"),
            ("/incident note hello", "name:value"),
        ] {
            let err = parse_line(line).unwrap_err().to_string();
            assert!(err.contains(needle), "{line}: {err}");
        }
    }
}
