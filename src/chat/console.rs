//! A terminal chat, like Hubot's shell adapter: Discord's command syntax in, posts printed out.

use crate::app::App;
use crate::commands::options::{is_sub, manifest};
use crate::commands::{self, CommandInput, InputOption, InputValue, Invocation};
use crate::domain::{IncidentId, UserRef};
use crate::error::UserError;
use crate::message::Post;
use crate::platform::{Chat, ChatError, Place};
use crate::store::StoreError;
use async_trait::async_trait;
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
        }
    }

    fn name(&self, channel: u64) -> String {
        self.channels
            .lock()
            .expect("channel map")
            .get(&channel)
            .cloned()
            .unwrap_or_else(|| format!("channel-{channel}"))
    }

    pub fn print(&self, prefix: &str, text: &str) {
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

/// A post as a terminal shows it: embed title, body, buttons and attachments.
pub fn post_text(post: &Post) -> String {
    let mut parts = Vec::new();
    if !post.content.is_empty() {
        parts.push(post.content.clone());
    }
    for e in post.embeds() {
        parts.push(e.title.clone());
        parts.push(e.description.clone());
    }
    if !post.buttons.is_empty() {
        let labels: Vec<String> = post
            .buttons
            .iter()
            .map(|b| format!("[{}]", b.label))
            .collect();
        parts.push(labels.join(" "));
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
        self.print(&format!("#{}", self.name(channel)), &post_text(&post));
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
        format!("@{}", user.name)
    }

    fn stakeholder_channel(&self) -> Option<u64> {
        Some(STAKEHOLDERS)
    }

    async fn edit(&self, channel: u64, _message: u64, post: Post) -> Result<(), ChatError> {
        let text = format!("(edited) {}", post_text(&post));
        self.print(&format!("#{}", self.name(channel)), &text);
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
        let inv = Invocation {
            user: self.user.clone(),
            member_roles: Vec::new(),
            channel,
            input,
        };
        let result = {
            // The command's posts are queued with its events; holding the outbox until the
            // reply is printed keeps the scheduler from printing them first.
            let _turn = self.app.store.outbox_turn().await;
            let result = commands::run(&self.app, &inv).await;
            match &result {
                Ok(outcome) => self.chat.print("reply", &post_text(&outcome.reply.post)),
                Err(e) => self.chat.print("error", &e.to_chat(&inv.input.path())),
            }
            result
        };
        if let Ok(outcome) = result {
            self.deliver().await;
            commands::after(&self.app, &inv, &outcome).await;
            self.deliver().await;
            if let Some(id) = outcome.incident {
                let _ = self.app.store.meta_set(CURRENT, &id.0.to_string());
            }
        }
        true
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

pub const HELP: &str = "Type commands as in Discord, e.g.
/incident open title:\"Checkout returns 500\" severity:SEV2 service:checkout
/incident update state:identified message:\"Bad deploy of v2.3\"
/incident status
Commands apply to the incident last opened or named (incident:INC-2). `exit` quits.";

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
