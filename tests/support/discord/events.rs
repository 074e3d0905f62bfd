//! What users do in the guild, turned into the dispatches Discord would send: interactions and messages.

use super::validate::MessageTarget;
use super::world::{
    id_str, parse_id, InteractionRec, NewMessage, World, ATTACHMENT_SIZE_LIMIT, PERM_ADMINISTRATOR,
};
use super::{Interaction, APPLICATION_ID, GUILD_ID};
use serde_json::{json, Map, Value};
use std::time::Instant;

impl World {
    fn registered_command(&self, kind: u64, name: &str) -> Value {
        let find = |guild: bool| {
            self.commands.iter().find(|c| {
                c.get("guild_id").is_some() == guild
                    && c.get("type").and_then(Value::as_u64).unwrap_or(1) == kind
                    && c.get("name").and_then(Value::as_str) == Some(name)
            })
        };
        match find(true).or_else(|| find(false)) {
            Some(c) => c.clone(),
            None => panic!(
                "no command of type {kind} named {name:?} is registered; Discord only sends interactions for \
                 registered commands (registered: {:?})",
                self.commands.iter().map(|c| c["name"].clone()).collect::<Vec<_>>()
            ),
        }
    }

    fn check_invoker(&self, user: u64, channel: u64, command: &Value) {
        assert!(
            self.members.contains_key(&user),
            "user {user} is not a member of the guild"
        );
        assert!(
            self.channels.get(&channel).is_some_and(|c| c.is_textual()),
            "channel {channel} does not exist or holds no messages"
        );
        let required = parse_id(command.get("default_member_permissions"));
        if let Some(required) = required {
            let perms = self.member_permissions(user);
            assert!(
                perms & PERM_ADMINISTRATOR != 0 || perms & required == required,
                "user {user} cannot see command {:?}: default_member_permissions {required} needs permissions they lack",
                command["name"]
            );
        }
    }

    /// Builds and dispatches INTERACTION_CREATE with every field serenity 0.12 needs.
    pub fn new_interaction(
        &mut self,
        kind: u8,
        user: u64,
        channel: u64,
        data: Value,
        source_message: Option<u64>,
    ) -> Interaction {
        let id = self.next_id();
        let token = format!("aW50ZXJhY3Rpb246{id}OnRva2Vu{}", random_token(64));
        let mut payload = json!({
            "id": id_str(id),
            "application_id": id_str(APPLICATION_ID),
            "type": kind,
            "token": token,
            "version": 1,
            "guild_id": id_str(GUILD_ID),
            "guild": { "id": id_str(GUILD_ID), "locale": "en-US", "features": [] },
            "channel_id": id_str(channel),
            "channel": self.partial_channel_json(channel, user),
            "member": self.member_json(user, true, true),
            "locale": "en-US",
            "guild_locale": "en-US",
            "entitlements": [],
            "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
            "app_permissions": self.bot_channel_permissions(channel).to_string(),
            "authorizing_integration_owners": { "0": id_str(GUILD_ID) },
            "context": 0,
            "data": data,
        });
        if let Some(m) = source_message {
            payload["message"] = self.messages[&m].obj.clone();
        }
        self.interactions.insert(
            id,
            InteractionRec {
                id,
                token: token.clone(),
                kind,
                channel_id: channel,
                user_id: user,
                created: Instant::now(),
                dispatched: Instant::now(),
                on_socket: false,
                payload: payload.clone(),
                source_message,
                ack: None,
                original: None,
                loading: false,
                answered: None,
                followups: vec![],
                invalidated: false,
                opener: None,
            },
        );
        self.dispatch("INTERACTION_CREATE", payload.clone(), None);
        Interaction {
            id,
            token,
            kind,
            channel_id: channel,
            user_id: user,
            payload,
        }
    }

    /// A chat-input command (type 2) or its autocomplete (type 4) with `focused` named.
    pub fn command_interaction(
        &mut self,
        user: u64,
        channel: u64,
        name: &str,
        options: &Value,
        focused: Option<&str>,
    ) -> Interaction {
        let command = self.registered_command(1, name);
        self.check_invoker(user, channel, &command);
        let manifest = command
            .get("options")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut resolved = Resolved::default();
        let opts = self.build_options(
            &manifest,
            options,
            focused,
            &mut resolved,
            &format!("/{name}"),
        );
        let mut data = json!({
            "id": command["id"].clone(),
            "name": name,
            "type": 1,
            "options": opts,
        });
        if let Some(g) = command.get("guild_id") {
            data["guild_id"] = g.clone();
        }
        let r = resolved.into_json();
        if !r.as_object().is_some_and(Map::is_empty) {
            data["resolved"] = r;
        }
        let kind = if focused.is_some() { 4 } else { 2 };
        self.new_interaction(kind, user, channel, data, None)
    }

    /// A command interaction whose options (Discord's array form) skip every client-side check,
    /// as a modified client could send them.
    pub fn command_interaction_raw(
        &mut self,
        user: u64,
        channel: u64,
        name: &str,
        options: Value,
    ) -> Interaction {
        let command = self.registered_command(1, name);
        let mut data = json!({
            "id": command["id"].clone(),
            "name": name,
            "type": 1,
            "options": options,
        });
        if let Some(g) = command.get("guild_id") {
            data["guild_id"] = g.clone();
        }
        self.new_interaction(2, user, channel, data, None)
    }

    /// Turns the test's options (Discord's array form, or `{"name": value}` objects
    /// nested by subcommand) into the option tree Discord sends, checked against the manifest.
    fn build_options(
        &self,
        manifest: &[Value],
        given: &Value,
        focused: Option<&str>,
        resolved: &mut Resolved,
        path: &str,
    ) -> Vec<Value> {
        let pairs: Vec<(String, Value)> = match given {
            Value::Null => vec![],
            Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            Value::Array(list) => list
                .iter()
                .map(|o| {
                    let name = o
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_else(|| panic!("{path}: option without a name: {o}"));
                    let inner = match o.get("options") {
                        Some(x) => x.clone(),
                        None => o.get("value").cloned().unwrap_or(Value::Null),
                    };
                    (name.to_string(), inner)
                })
                .collect(),
            other => panic!("{path}: options must be an array, an object or null, not {other}"),
        };
        let mut out = vec![];
        for (name, value) in &pairs {
            let spec = manifest
                .iter()
                .find(|m| m.get("name").and_then(Value::as_str) == Some(name))
                .unwrap_or_else(|| panic!("{path}: the manifest has no option {name:?}"));
            let kind = spec["type"].as_u64().unwrap_or(0);
            let here = format!("{path} {name}");
            if kind == 1 || kind == 2 {
                let children = spec
                    .get("options")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let nested = self.build_options(&children, value, focused, resolved, &here);
                out.push(json!({ "name": name, "type": kind, "options": nested }));
                continue;
            }
            let is_focused = focused == Some(name.as_str());
            let value = if is_focused {
                value.clone()
            } else {
                self.check_value(spec, value, &here, resolved)
            };
            let mut o = json!({ "name": name, "type": kind, "value": value });
            if is_focused {
                o["focused"] = json!(true);
            }
            out.push(o);
        }
        let is_sub = manifest
            .iter()
            .any(|m| matches!(m["type"].as_u64(), Some(1) | Some(2)));
        if is_sub {
            assert!(
                out.len() == 1,
                "{path}: pick exactly one subcommand, as a user must"
            );
        } else if focused.is_none() {
            for m in manifest {
                let name = m["name"].as_str().unwrap_or("");
                if m.get("required").and_then(Value::as_bool) == Some(true) {
                    assert!(
                        pairs.iter().any(|(n, _)| n == name),
                        "{path}: required option {name:?} is missing"
                    );
                }
            }
        }
        out
    }

    /// Checks a value as Discord's client would before sending it, and resolves ids.
    fn check_value(
        &self,
        spec: &Value,
        value: &Value,
        path: &str,
        resolved: &mut Resolved,
    ) -> Value {
        let kind = spec["type"].as_u64().unwrap_or(0);
        if let Some(choices) = spec
            .get("choices")
            .and_then(Value::as_array)
            .filter(|c| !c.is_empty())
        {
            assert!(
                choices.iter().any(|c| c.get("value") == Some(value)),
                "{path}: {value} is not one of the choices {choices:?}"
            );
        }
        match kind {
            3 => {
                let s = value
                    .as_str()
                    .unwrap_or_else(|| panic!("{path}: expected a string, got {value}"));
                let n = s.chars().count() as u64;
                let min = spec.get("min_length").and_then(Value::as_u64).unwrap_or(0);
                let max = spec
                    .get("max_length")
                    .and_then(Value::as_u64)
                    .unwrap_or(6000);
                assert!(
                    n >= min && n <= max,
                    "{path}: length {n} is outside {min}..={max}"
                );
                value.clone()
            }
            4 | 10 => {
                let x = value
                    .as_f64()
                    .unwrap_or_else(|| panic!("{path}: expected a number, got {value}"));
                if kind == 4 {
                    assert!(
                        value.is_i64() || value.is_u64(),
                        "{path}: expected an integer, got {value}"
                    );
                }
                if let Some(min) = spec.get("min_value").and_then(Value::as_f64) {
                    assert!(x >= min, "{path}: {x} is below min_value {min}");
                }
                if let Some(max) = spec.get("max_value").and_then(Value::as_f64) {
                    assert!(x <= max, "{path}: {x} is above max_value {max}");
                }
                value.clone()
            }
            5 => {
                assert!(
                    value.is_boolean(),
                    "{path}: expected a boolean, got {value}"
                );
                value.clone()
            }
            6..=9 => {
                let id = parse_id(Some(value))
                    .unwrap_or_else(|| panic!("{path}: expected a snowflake, got {value}"));
                match kind {
                    6 => self.resolve_user(id, path, resolved),
                    7 => {
                        let ch = self
                            .channels
                            .get(&id)
                            .unwrap_or_else(|| panic!("{path}: no channel {id}"));
                        if let Some(types) = spec.get("channel_types").and_then(Value::as_array) {
                            assert!(
                                types.iter().any(|t| t.as_u64() == Some(u64::from(ch.kind))),
                                "{path}: channel type {} is not in {types:?}",
                                ch.kind
                            );
                        }
                        resolved.channels.insert(
                            id.to_string(),
                            self.partial_channel_json(id, super::BOT_USER_ID),
                        );
                    }
                    8 => self.resolve_role(id, path, resolved),
                    _ => {
                        if self.roles.contains_key(&id) {
                            self.resolve_role(id, path, resolved);
                        } else {
                            self.resolve_user(id, path, resolved);
                        }
                    }
                }
                json!(id.to_string())
            }
            other => panic!("{path}: option type {other} is not supported by the fake"),
        }
    }

    fn resolve_user(&self, id: u64, path: &str, resolved: &mut Resolved) {
        assert!(self.users.contains_key(&id), "{path}: no user {id}");
        resolved.users.insert(id.to_string(), self.user_json(id));
        if self.members.contains_key(&id) {
            resolved
                .members
                .insert(id.to_string(), self.member_json(id, false, true));
        }
    }

    fn resolve_role(&self, id: u64, path: &str, resolved: &mut Resolved) {
        let role = self
            .roles
            .get(&id)
            .unwrap_or_else(|| panic!("{path}: no role {id}"));
        resolved.roles.insert(id.to_string(), self.role_json(role));
    }

    /// A context-menu command: `kind` 2 targets a user, 3 a message.
    pub fn context_menu(&mut self, kind: u64, user: u64, target: u64, name: &str) -> Interaction {
        let command = self.registered_command(kind, name);
        let channel = if kind == 3 {
            self.messages
                .get(&target)
                .unwrap_or_else(|| panic!("no message {target}"))
                .channel_id
        } else {
            super::GENERAL_CHANNEL_ID
        };
        self.check_invoker(user, channel, &command);
        let mut resolved = Resolved::default();
        if kind == 3 {
            let mut m = self.messages[&target].obj.clone();
            m["guild_id"] = id_str(GUILD_ID);
            resolved.messages.insert(target.to_string(), m);
        } else {
            self.resolve_user(target, name, &mut resolved);
        }
        let data = json!({
            "id": command["id"].clone(),
            "name": name,
            "type": kind,
            "target_id": id_str(target),
            "resolved": resolved.into_json(),
        });
        self.new_interaction(2, user, channel, data, None)
    }

    fn find_component(&self, message: u64, custom_id: &str) -> Value {
        let rec = self
            .messages
            .get(&message)
            .filter(|m| !m.deleted)
            .unwrap_or_else(|| panic!("no message {message}"));
        let found = rec.obj["components"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
            .find(|c| c.get("custom_id").and_then(Value::as_str) == Some(custom_id));
        let c = found.unwrap_or_else(|| {
            panic!("message {message} has no component with custom_id {custom_id:?}")
        });
        assert!(
            c.get("disabled").and_then(Value::as_bool) != Some(true),
            "component {custom_id:?} on message {message} is disabled and cannot be used"
        );
        c
    }

    /// A button press on a message the bot sent.
    pub fn click(&mut self, user: u64, message: u64, custom_id: &str) -> Interaction {
        let c = self.find_component(message, custom_id);
        assert_eq!(
            c["type"].as_u64(),
            Some(2),
            "component {custom_id:?} is not a button"
        );
        let channel = self.messages[&message].channel_id;
        assert!(
            self.members.contains_key(&user),
            "user {user} is not a member of the guild"
        );
        let data = json!({ "custom_id": custom_id, "component_type": 2 });
        self.new_interaction(3, user, channel, data, Some(message))
    }

    /// A choice in a string select menu.
    pub fn select(
        &mut self,
        user: u64,
        message: u64,
        custom_id: &str,
        values: &[&str],
    ) -> Interaction {
        let c = self.find_component(message, custom_id);
        assert_eq!(
            c["type"].as_u64(),
            Some(3),
            "component {custom_id:?} is not a string select"
        );
        let options: Vec<&str> = c["options"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|o| o["value"].as_str())
            .collect();
        for v in values {
            assert!(
                options.contains(v),
                "{v:?} is not an option of select {custom_id:?}: {options:?}"
            );
        }
        let min = c.get("min_values").and_then(Value::as_u64).unwrap_or(1) as usize;
        let max = c.get("max_values").and_then(Value::as_u64).unwrap_or(1) as usize;
        assert!(
            values.len() >= min && values.len() <= max,
            "select {custom_id:?} takes {min}..={max} values"
        );
        let channel = self.messages[&message].channel_id;
        let data = json!({ "custom_id": custom_id, "component_type": 3, "values": values });
        self.new_interaction(3, user, channel, data, Some(message))
    }

    /// Fills in the modal the bot answered `opened_by` with, and submits it.
    pub fn submit_modal(
        &mut self,
        opened_by: &Interaction,
        fields: &[(&str, &str)],
    ) -> Interaction {
        let rec = self
            .interactions
            .get(&opened_by.id)
            .expect("interaction exists")
            .clone();
        let modal = match &rec.ack {
            Some(a) if a.kind == 9 => a.data.clone(),
            other => panic!(
                "interaction {} was not answered with a modal (answer: {other:?})",
                opened_by.id
            ),
        };
        let inputs: Vec<Value> = modal["components"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
            .collect();
        for (id, _) in fields {
            assert!(
                inputs.iter().any(|i| i["custom_id"].as_str() == Some(id)),
                "the modal has no text input {id:?}"
            );
        }
        let rows: Vec<Value> = inputs
            .iter()
            .map(|input| {
                let id = input["custom_id"].as_str().unwrap_or("");
                let value = fields.iter().find(|(k, _)| *k == id).map(|(_, v)| *v);
                let required = input
                    .get("required")
                    .and_then(Value::as_bool)
                    .unwrap_or(true);
                let value = match value {
                    Some(v) => v.to_string(),
                    None if !required => String::new(),
                    None => input
                        .get("value")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .unwrap_or_else(|| panic!("required text input {id:?} was left empty")),
                };
                let n = value.chars().count() as u64;
                let min = input.get("min_length").and_then(Value::as_u64).unwrap_or(0);
                let max = input
                    .get("max_length")
                    .and_then(Value::as_u64)
                    .unwrap_or(4000);
                assert!(
                    (value.is_empty() && !required) || (n >= min && n <= max),
                    "text input {id:?}: length {n} outside {min}..={max}"
                );
                json!({ "type": 1, "components": [{ "type": 4, "custom_id": id, "value": value }] })
            })
            .collect();
        let data = json!({ "custom_id": modal["custom_id"].clone(), "components": rows });
        let submitted =
            self.new_interaction(5, rec.user_id, rec.channel_id, data, rec.source_message);
        self.interactions
            .get_mut(&submitted.id)
            .expect("just created")
            .opener = Some(opened_by.id);
        submitted
    }

    /// A message typed by a member; Discord's default mentions for ordinary messages apply.
    pub fn user_message(&mut self, user: u64, channel: u64, body: &Value) -> u64 {
        assert!(
            self.members.contains_key(&user),
            "user {user} is not a member of the guild"
        );
        self.create_message(NewMessage {
            channel_id: channel,
            author_id: user,
            body,
            files: &[],
            target: MessageTarget::Channel,
            kind: 0,
            interaction: None,
            extra_flags: 0,
        })
        .unwrap_or_else(|e| {
            panic!(
                "Discord would refuse this user message: {} {}",
                e.status, e.body
            )
        })
    }
}

fn random_token(n: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    (0..n)
        .map(|_| ALPHABET[fastrand::usize(..ALPHABET.len())] as char)
        .collect()
}

#[derive(Default)]
struct Resolved {
    users: Map<String, Value>,
    members: Map<String, Value>,
    roles: Map<String, Value>,
    channels: Map<String, Value>,
    messages: Map<String, Value>,
}

impl Resolved {
    fn into_json(self) -> Value {
        let mut v = Map::new();
        for (k, m) in [
            ("users", self.users),
            ("members", self.members),
            ("roles", self.roles),
            ("channels", self.channels),
            ("messages", self.messages),
        ] {
            if !m.is_empty() {
                v.insert(k.to_string(), Value::Object(m));
            }
        }
        Value::Object(v)
    }
}
