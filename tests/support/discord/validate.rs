//! Discord's documented request limits, and the error bodies Discord answers with when one is broken.

use serde_json::{json, Map, Value};

/// An error answer: HTTP status and Discord's JSON body.
#[derive(Clone, Debug)]
pub struct ApiError {
    pub status: u16,
    pub body: Value,
}

impl ApiError {
    pub fn new(status: u16, code: u64, message: &str) -> Self {
        ApiError {
            status,
            body: json!({ "message": message, "code": code }),
        }
    }
    pub fn not_found() -> Self {
        Self::new(404, 0, "404: Not Found")
    }
    pub fn unauthorized() -> Self {
        Self::new(401, 0, "401: Unauthorized")
    }
    pub fn method_not_allowed() -> Self {
        Self::new(405, 0, "405: Method Not Allowed")
    }
    pub fn unknown_channel() -> Self {
        Self::new(404, 10003, "Unknown Channel")
    }
    pub fn unknown_guild() -> Self {
        Self::new(404, 10004, "Unknown Guild")
    }
    pub fn unknown_member() -> Self {
        Self::new(404, 10007, "Unknown Member")
    }
    pub fn unknown_message() -> Self {
        Self::new(404, 10008, "Unknown Message")
    }
    pub fn unknown_role() -> Self {
        Self::new(404, 10011, "Unknown Role")
    }
    pub fn unknown_user() -> Self {
        Self::new(404, 10013, "Unknown User")
    }
    pub fn unknown_emoji() -> Self {
        Self::new(400, 10014, "Unknown Emoji")
    }
    pub fn unknown_webhook() -> Self {
        Self::new(404, 10015, "Unknown Webhook")
    }
    pub fn unknown_interaction() -> Self {
        Self::new(404, 10062, "Unknown interaction")
    }
    pub fn unknown_command() -> Self {
        Self::new(404, 10063, "Unknown application command")
    }
    pub fn already_acknowledged() -> Self {
        Self::new(400, 40060, "Interaction has already been acknowledged.")
    }
    pub fn empty_message() -> Self {
        Self::new(400, 50006, "Cannot send an empty message")
    }
    pub fn not_author() -> Self {
        Self::new(403, 50005, "Cannot edit a message authored by another user")
    }
    pub fn non_text_channel() -> Self {
        Self::new(400, 50008, "Cannot send messages in a non-text channel")
    }
    pub fn wrong_channel_type() -> Self {
        Self::new(400, 50024, "Cannot execute action on this channel type")
    }
    pub fn invalid_webhook_token() -> Self {
        Self::new(401, 50027, "Invalid Webhook Token")
    }
    pub fn archived_thread() -> Self {
        Self::new(400, 50083, "Thread is archived")
    }
    pub fn invalid_json() -> Self {
        Self::new(400, 50109, "The request body contains invalid JSON.")
    }
    pub fn too_large() -> Self {
        Self::new(413, 40005, "Request entity too large")
    }
    pub fn max_pins() -> Self {
        Self::new(400, 30003, "Maximum number of pins reached (50)")
    }
    pub fn max_channels() -> Self {
        Self::new(400, 30013, "Maximum number of guild channels reached (500)")
    }
    pub fn daily_command_creates() -> Self {
        Self::new(
            400,
            30034,
            "Max number of daily application command creates has been reached (200)",
        )
    }
    pub fn cannot_pin_system() -> Self {
        Self::new(400, 50021, "Cannot execute action on a system message")
    }
}

/// Field errors collected while validating one request, rendered in Discord's
/// `{"code":50035,"errors":{"field":{"_errors":[...]}}}` shape.
#[derive(Default, Debug)]
pub struct FormErrors {
    items: Vec<(String, &'static str, String)>,
}

impl FormErrors {
    /// `path` is dotted (`embeds.0.title`); an empty path is an error on the body itself.
    pub fn add(&mut self, path: impl Into<String>, code: &'static str, message: impl Into<String>) {
        self.items.push((path.into(), code, message.into()));
    }
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
    pub fn max_len(&mut self, path: impl Into<String>, max: usize) {
        self.add(
            path,
            "BASE_TYPE_MAX_LENGTH",
            format!("Must be {max} or fewer in length."),
        );
    }
    pub fn bad_len(&mut self, path: impl Into<String>, min: usize, max: usize) {
        self.add(
            path,
            "BASE_TYPE_BAD_LENGTH",
            format!("Must be between {min} and {max} in length."),
        );
    }
    pub fn required(&mut self, path: impl Into<String>) {
        self.add(path, "BASE_TYPE_REQUIRED", "This field is required");
    }
    pub fn choices(&mut self, path: impl Into<String>, allowed: &[&str]) {
        self.add(
            path,
            "BASE_TYPE_CHOICES",
            format!("Value must be one of {{{}}}.", allowed.join(", ")),
        );
    }
    /// Checks an optional string field against a character range.
    pub fn check_str(
        &mut self,
        v: Option<&Value>,
        path: &str,
        min: usize,
        max: usize,
        required: bool,
    ) {
        match v {
            None | Some(Value::Null) => {
                if required {
                    self.required(path);
                }
            }
            Some(Value::String(s)) => {
                let n = s.chars().count();
                if n < min || n > max {
                    if min == 0 {
                        self.max_len(path, max);
                    } else {
                        self.bad_len(path, min, max);
                    }
                }
            }
            Some(other) => self.add(
                path,
                "BASE_TYPE_STRING",
                format!("Could not interpret \"{other}\" as string."),
            ),
        }
    }
    pub fn into_result(self) -> Result<(), ApiError> {
        if self.items.is_empty() {
            return Ok(());
        }
        let mut root = Map::new();
        for (path, code, message) in self.items {
            let mut node = &mut root;
            for part in path.split('.').filter(|p| !p.is_empty()) {
                node = node
                    .entry(part.to_string())
                    .or_insert_with(|| Value::Object(Map::new()))
                    .as_object_mut()
                    .expect("error tree nodes are objects");
            }
            node.entry("_errors".to_string())
                .or_insert_with(|| Value::Array(vec![]))
                .as_array_mut()
                .expect("_errors is an array")
                .push(json!({ "code": code, "message": message }));
        }
        Err(ApiError {
            status: 400,
            body: json!({ "message": "Invalid Form Body", "code": 50035, "errors": Value::Object(root) }),
        })
    }
}

fn chars(v: Option<&Value>) -> usize {
    v.and_then(Value::as_str).map_or(0, |s| s.chars().count())
}

fn join(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_string()
    } else {
        format!("{prefix}.{field}")
    }
}

/// Where a message body is being sent; the rules differ slightly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageTarget {
    Channel,
    Interaction,
}

pub const FLAG_SUPPRESS_EMBEDS: u64 = 1 << 2;
pub const FLAG_EPHEMERAL: u64 = 1 << 6;
pub const FLAG_LOADING: u64 = 1 << 7;
pub const FLAG_SUPPRESS_NOTIFICATIONS: u64 = 1 << 12;
pub const FLAG_IS_VOICE_MESSAGE: u64 = 1 << 13;
pub const FLAG_IS_COMPONENTS_V2: u64 = 1 << 15;

/// Validates the fields of a create/edit message body (JSON body or `payload_json`).
/// `prefix` is the path of the body within the request (`data` for interaction callbacks).
pub fn check_message_fields(body: &Value, prefix: &str, errs: &mut FormErrors) {
    let Some(obj) = body.as_object() else {
        errs.add(
            prefix,
            "DICT_TYPE_CONVERT",
            "Only dictionaries may be used in a DictType",
        );
        return;
    };
    errs.check_str(obj.get("content"), &join(prefix, "content"), 0, 2000, false);
    if let Some(nonce) = obj.get("nonce") {
        match nonce {
            Value::String(s) if s.chars().count() > 25 => errs.max_len(join(prefix, "nonce"), 25),
            Value::String(_) | Value::Number(_) | Value::Null => {}
            _ => errs.add(
                join(prefix, "nonce"),
                "BASE_TYPE_STRING",
                "Could not interpret nonce as string.",
            ),
        }
    }
    if let Some(embeds) = obj.get("embeds").filter(|v| !v.is_null()) {
        check_embeds(embeds, &join(prefix, "embeds"), errs);
    }
    if let Some(components) = obj.get("components").filter(|v| !v.is_null()) {
        let v2 = obj.get("flags").and_then(Value::as_u64).unwrap_or(0) & FLAG_IS_COMPONENTS_V2 != 0;
        if !v2 {
            check_message_components(components, &join(prefix, "components"), errs);
        }
    }
    if let Some(am) = obj.get("allowed_mentions").filter(|v| !v.is_null()) {
        check_allowed_mentions(am, &join(prefix, "allowed_mentions"), errs);
    }
    if let Some(stickers) = obj.get("sticker_ids").and_then(Value::as_array) {
        if stickers.len() > 3 {
            errs.max_len(join(prefix, "sticker_ids"), 3);
        }
    }
    if let Some(atts) = obj.get("attachments").and_then(Value::as_array) {
        if atts.len() > 10 {
            errs.max_len(join(prefix, "attachments"), 10);
        }
        for (i, a) in atts.iter().enumerate() {
            let p = join(prefix, &format!("attachments.{i}"));
            if a.get("id").is_none() {
                errs.required(join(&p, "id"));
            }
            errs.check_str(
                a.get("description"),
                &join(&p, "description"),
                0,
                1024,
                false,
            );
        }
    }
}

fn check_embeds(embeds: &Value, path: &str, errs: &mut FormErrors) {
    let Some(list) = embeds.as_array() else {
        errs.add(path, "BASE_TYPE_ARRAY", "Must be an array.");
        return;
    };
    if list.len() > 10 {
        errs.max_len(path, 10);
    }
    let mut total = 0usize;
    for (i, e) in list.iter().enumerate() {
        let p = format!("{path}.{i}");
        errs.check_str(e.get("title"), &format!("{p}.title"), 0, 256, false);
        errs.check_str(
            e.get("description"),
            &format!("{p}.description"),
            0,
            4096,
            false,
        );
        total += chars(e.get("title")) + chars(e.get("description"));
        if let Some(color) = e.get("color").filter(|v| !v.is_null()) {
            match color.as_u64() {
                Some(c) if c <= 0xFF_FFFF => {}
                _ => errs.add(
                    format!("{p}.color"),
                    "NUMBER_TYPE_MAX",
                    "int value should be less than or equal to 16777215.",
                ),
            }
        }
        if let Some(fields) = e.get("fields").and_then(Value::as_array) {
            if fields.len() > 25 {
                errs.max_len(format!("{p}.fields"), 25);
            }
            for (j, f) in fields.iter().enumerate() {
                errs.check_str(f.get("name"), &format!("{p}.fields.{j}.name"), 1, 256, true);
                errs.check_str(
                    f.get("value"),
                    &format!("{p}.fields.{j}.value"),
                    1,
                    1024,
                    true,
                );
                total += chars(f.get("name")) + chars(f.get("value"));
            }
        }
        if let Some(footer) = e.get("footer").filter(|v| !v.is_null()) {
            errs.check_str(
                footer.get("text"),
                &format!("{p}.footer.text"),
                1,
                2048,
                true,
            );
            total += chars(footer.get("text"));
        }
        if let Some(author) = e.get("author").filter(|v| !v.is_null()) {
            errs.check_str(
                author.get("name"),
                &format!("{p}.author.name"),
                1,
                256,
                true,
            );
            total += chars(author.get("name"));
        }
    }
    if total > 6000 {
        errs.add(
            path,
            "MAX_EMBED_SIZE_EXCEEDED",
            "Embed size exceeds maximum size of 6000",
        );
    }
}

const SELECT_TYPES: [u64; 5] = [3, 5, 6, 7, 8];

/// Action rows with buttons and select menus, as allowed in messages.
pub fn check_message_components(components: &Value, path: &str, errs: &mut FormErrors) {
    let Some(rows) = components.as_array() else {
        errs.add(path, "BASE_TYPE_ARRAY", "Must be an array.");
        return;
    };
    if rows.len() > 5 {
        errs.max_len(path, 5);
    }
    let mut custom_ids = std::collections::HashSet::new();
    for (i, row) in rows.iter().enumerate() {
        let rp = format!("{path}.{i}");
        if row.get("type").and_then(Value::as_u64) != Some(1) {
            errs.add(
                format!("{rp}.type"),
                "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                "Top-level components must be action rows.",
            );
            continue;
        }
        let children = row
            .get("components")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if children.is_empty() || children.len() > 5 {
            errs.bad_len(format!("{rp}.components"), 1, 5);
        }
        let has_select = children.iter().any(|c| {
            c.get("type")
                .and_then(Value::as_u64)
                .is_some_and(|t| SELECT_TYPES.contains(&t))
        });
        if has_select && children.len() > 1 {
            errs.add(
                format!("{rp}.components"),
                "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                "The specified component exceeds the maximum width",
            );
        }
        for (j, c) in children.iter().enumerate() {
            let cp = format!("{rp}.components.{j}");
            let kind = c.get("type").and_then(Value::as_u64).unwrap_or(0);
            match kind {
                2 => check_button(c, &cp, errs),
                t if SELECT_TYPES.contains(&t) => check_select(c, t, &cp, errs),
                _ => errs.choices(format!("{cp}.type"), &["2", "3", "5", "6", "7", "8"]),
            }
            if let Some(id) = c.get("custom_id").and_then(Value::as_str) {
                if !custom_ids.insert(id.to_string()) {
                    errs.add(
                        format!("{cp}.custom_id"),
                        "COMPONENT_CUSTOM_ID_DUPLICATED",
                        "Component custom id cannot be duplicated",
                    );
                }
            }
        }
    }
}

fn check_button(c: &Value, p: &str, errs: &mut FormErrors) {
    let style = c.get("style").and_then(Value::as_u64).unwrap_or(0);
    if !(1..=6).contains(&style) {
        errs.choices(format!("{p}.style"), &["1", "2", "3", "4", "5", "6"]);
    }
    errs.check_str(c.get("label"), &format!("{p}.label"), 0, 80, false);
    match style {
        5 => {
            errs.check_str(c.get("url"), &format!("{p}.url"), 1, 512, true);
            if c.get("custom_id").is_some_and(|v| !v.is_null()) {
                errs.add(
                    format!("{p}.custom_id"),
                    "BUTTON_COMPONENT_CUSTOM_ID_NOT_ALLOWED",
                    "A custom id cannot be specified for this button style",
                );
            }
        }
        6 => {}
        _ => {
            errs.check_str(c.get("custom_id"), &format!("{p}.custom_id"), 1, 100, true);
            if c.get("url").is_some_and(|v| !v.is_null()) {
                errs.add(
                    format!("{p}.url"),
                    "BUTTON_COMPONENT_URL_NOT_ALLOWED",
                    "A url cannot be specified for this button style",
                );
            }
        }
    }
    if chars(c.get("label")) == 0 && c.get("emoji").map_or(true, Value::is_null) {
        errs.add(
            format!("{p}.label"),
            "BUTTON_COMPONENT_INVALID",
            "A button must have a label or an emoji",
        );
    }
}

fn check_select(c: &Value, kind: u64, p: &str, errs: &mut FormErrors) {
    errs.check_str(c.get("custom_id"), &format!("{p}.custom_id"), 1, 100, true);
    errs.check_str(
        c.get("placeholder"),
        &format!("{p}.placeholder"),
        0,
        150,
        false,
    );
    let min = c.get("min_values").and_then(Value::as_u64);
    let max = c.get("max_values").and_then(Value::as_u64);
    if min.is_some_and(|m| m > 25) {
        errs.add(
            format!("{p}.min_values"),
            "NUMBER_TYPE_MAX",
            "int value should be less than or equal to 25.",
        );
    }
    if let Some(m) = max {
        if !(1..=25).contains(&m) {
            errs.add(
                format!("{p}.max_values"),
                "NUMBER_TYPE_MAX",
                "int value should be between 1 and 25.",
            );
        }
    }
    if kind == 3 {
        let options = c
            .get("options")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if options.is_empty() || options.len() > 25 {
            errs.bad_len(format!("{p}.options"), 1, 25);
        }
        for (k, o) in options.iter().enumerate() {
            errs.check_str(
                o.get("label"),
                &format!("{p}.options.{k}.label"),
                1,
                100,
                true,
            );
            errs.check_str(
                o.get("value"),
                &format!("{p}.options.{k}.value"),
                1,
                100,
                true,
            );
            errs.check_str(
                o.get("description"),
                &format!("{p}.options.{k}.description"),
                0,
                100,
                false,
            );
        }
    }
}

fn check_allowed_mentions(am: &Value, path: &str, errs: &mut FormErrors) {
    let parse: Vec<&str> = am
        .get("parse")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for (i, p) in parse.iter().enumerate() {
        if !["users", "roles", "everyone"].contains(p) {
            errs.choices(format!("{path}.parse.{i}"), &["users", "roles", "everyone"]);
        }
    }
    for kind in ["users", "roles"] {
        let list = am
            .get(kind)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if list.len() > 100 {
            errs.max_len(format!("{path}.{kind}"), 100);
        }
        // An empty or null list alongside `parse` is accepted, as documented.
        if !list.is_empty() && parse.contains(&kind) {
            let ids: Vec<String> = list
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string())
                })
                .collect();
            errs.add(
                path,
                "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                format!(
                    "parse:[\"{kind}\"] and {kind}: [{}] are mutually exclusive.",
                    ids.join(", ")
                ),
            );
        }
    }
}

/// Checks the data of an interaction callback of type 9 (MODAL).
pub fn check_modal(data: &Value, errs: &mut FormErrors) {
    errs.check_str(data.get("custom_id"), "data.custom_id", 1, 100, true);
    errs.check_str(data.get("title"), "data.title", 1, 45, true);
    let rows = data
        .get("components")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if rows.is_empty() || rows.len() > 5 {
        errs.bad_len("data.components", 1, 5);
    }
    for (i, row) in rows.iter().enumerate() {
        let rp = format!("data.components.{i}");
        let children = row
            .get("components")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if row.get("type").and_then(Value::as_u64) != Some(1) || children.len() != 1 {
            errs.add(
                &rp,
                "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                "Modal action rows must hold exactly one text input.",
            );
            continue;
        }
        let c = &children[0];
        let cp = format!("{rp}.components.0");
        if c.get("type").and_then(Value::as_u64) != Some(4) {
            errs.choices(format!("{cp}.type"), &["4"]);
            continue;
        }
        errs.check_str(c.get("custom_id"), &format!("{cp}.custom_id"), 1, 100, true);
        errs.check_str(c.get("label"), &format!("{cp}.label"), 1, 45, true);
        errs.check_str(
            c.get("placeholder"),
            &format!("{cp}.placeholder"),
            0,
            100,
            false,
        );
        errs.check_str(c.get("value"), &format!("{cp}.value"), 0, 4000, false);
        let style = c.get("style").and_then(Value::as_u64).unwrap_or(0);
        if !(1..=2).contains(&style) {
            errs.choices(format!("{cp}.style"), &["1", "2"]);
        }
        if let Some(min) = c.get("min_length").and_then(Value::as_i64) {
            if !(0..=4000).contains(&min) {
                errs.add(
                    format!("{cp}.min_length"),
                    "NUMBER_TYPE_MAX",
                    "int value should be between 0 and 4000.",
                );
            }
        }
        if let Some(max) = c.get("max_length").and_then(Value::as_i64) {
            if !(1..=4000).contains(&max) {
                errs.add(
                    format!("{cp}.max_length"),
                    "NUMBER_TYPE_MAX",
                    "int value should be between 1 and 4000.",
                );
            }
        }
    }
}

/// Checks the data of an interaction callback of type 8 (autocomplete result).
pub fn check_autocomplete(data: &Value, errs: &mut FormErrors) {
    let Some(choices) = data.get("choices").and_then(Value::as_array) else {
        errs.required("data.choices");
        return;
    };
    if choices.len() > 25 {
        errs.max_len("data.choices", 25);
    }
    for (i, c) in choices.iter().enumerate() {
        errs.check_str(
            c.get("name"),
            &format!("data.choices.{i}.name"),
            1,
            100,
            true,
        );
        match c.get("value") {
            Some(Value::String(s)) if s.chars().count() > 100 => {
                errs.max_len(format!("data.choices.{i}.value"), 100)
            }
            Some(Value::String(_)) | Some(Value::Number(_)) => {}
            _ => errs.required(format!("data.choices.{i}.value")),
        }
    }
}

const LOCALES: [&str; 32] = [
    "id", "da", "de", "en-GB", "en-US", "es-ES", "es-419", "fr", "hr", "it", "lt", "hu", "nl",
    "no", "pl", "pt-BR", "ro", "fi", "sv-SE", "vi", "tr", "cs", "el", "bg", "ru", "uk", "hi", "th",
    "zh-CN", "ja", "zh-TW", "ko",
];

/// `^[-_'\p{L}\p{N}\p{sc=Deva}\p{sc=Thai}]{1,32}$`, lowercase where a lowercase form exists.
pub fn valid_chat_input_name(name: &str) -> bool {
    let n = name.chars().count();
    (1..=32).contains(&n)
        && name.chars().all(|c| {
            let allowed = matches!(c, '-' | '_' | '\'')
                || c.is_alphabetic()
                || c.is_numeric()
                || ('\u{0900}'..='\u{097F}').contains(&c)
                || ('\u{0E00}'..='\u{0E7F}').contains(&c);
            allowed && !c.is_uppercase()
        })
}

fn check_localizations(
    v: Option<&Value>,
    path: &str,
    chat_input_name: bool,
    max: usize,
    errs: &mut FormErrors,
) {
    let Some(map) = v.and_then(Value::as_object) else {
        return;
    };
    for (locale, value) in map {
        let p = format!("{path}.{locale}");
        if !LOCALES.contains(&locale.as_str()) {
            errs.add(&p, "LOCALE_INVALID", format!("Invalid locale: {locale}"));
            continue;
        }
        if chat_input_name {
            if !value.as_str().is_some_and(valid_chat_input_name) {
                errs.add(
                    &p,
                    "APPLICATION_COMMAND_INVALID_NAME",
                    "Command name is invalid",
                );
            }
        } else {
            errs.check_str(Some(value), &p, 1, max, true);
        }
    }
}

/// Validates one command (a create) with errors at the body's root, as Discord reports them.
pub fn check_single_command(cmd: &Value) -> Result<(), ApiError> {
    let mut errs = FormErrors::default();
    check_command(cmd, "", &mut errs);
    errs.into_result()
}

/// Validates a bulk-overwrite body: an array of application commands.
pub fn check_commands(body: &Value) -> Result<(), ApiError> {
    let mut errs = FormErrors::default();
    let Some(list) = body.as_array() else {
        errs.add("", "BASE_TYPE_ARRAY", "Must be an array.");
        return errs.into_result();
    };
    let mut counts = [0usize; 4];
    let mut seen = std::collections::HashSet::new();
    for (i, cmd) in list.iter().enumerate() {
        let p = i.to_string();
        let Some(kind) = check_command(cmd, &p, &mut errs) else {
            continue;
        };
        counts[kind as usize] += 1;
        if let Some(n) = cmd.get("name").and_then(Value::as_str) {
            if !seen.insert((kind, n.to_string())) {
                errs.add(
                    format!("{p}.name"),
                    "APPLICATION_COMMANDS_DUPLICATE_NAME",
                    "Application command names must be unique",
                );
            }
        }
    }
    if counts[1] > 100 {
        errs.max_len("", 100);
    }
    if counts[2] > 5 || counts[3] > 5 {
        errs.add(
            "",
            "APPLICATION_COMMANDS_TOO_MANY",
            "Maximum number of context menu commands reached (5)",
        );
    }
    errs.into_result()
}

/// Checks one command at path `p`; returns its type when that is valid.
fn check_command(cmd: &Value, p: &str, errs: &mut FormErrors) -> Option<u64> {
    let at = |field: &str| join(p, field);
    let kind = match cmd.get("type") {
        None | Some(Value::Null) => 1,
        Some(v) => v.as_u64().unwrap_or(0),
    };
    if !(1..=3).contains(&kind) {
        errs.choices(at("type"), &["1", "2", "3"]);
        return None;
    }
    if kind == 1 {
        match cmd.get("name").and_then(Value::as_str) {
            None => errs.required(at("name")),
            Some(n) if !valid_chat_input_name(n) => errs.add(
                at("name"),
                "APPLICATION_COMMAND_INVALID_NAME",
                "Command name is invalid",
            ),
            _ => {}
        }
        errs.check_str(cmd.get("description"), &at("description"), 1, 100, true);
        check_localizations(
            cmd.get("name_localizations"),
            &at("name_localizations"),
            true,
            32,
            errs,
        );
    } else {
        errs.check_str(cmd.get("name"), &at("name"), 1, 32, true);
        if cmd
            .get("description")
            .and_then(Value::as_str)
            .is_some_and(|d| !d.is_empty())
        {
            errs.add(
                at("description"),
                "APPLICATION_COMMAND_CONTEXT_MENU_DESCRIPTION",
                "Context menu commands cannot have a description",
            );
        }
        if cmd
            .get("options")
            .and_then(Value::as_array)
            .is_some_and(|o| !o.is_empty())
        {
            errs.add(
                at("options"),
                "APPLICATION_COMMAND_CONTEXT_MENU_OPTIONS",
                "Context menu commands cannot have options",
            );
        }
        check_localizations(
            cmd.get("name_localizations"),
            &at("name_localizations"),
            false,
            32,
            errs,
        );
    }
    check_localizations(
        cmd.get("description_localizations"),
        &at("description_localizations"),
        false,
        100,
        errs,
    );
    if let Some(perm) = cmd
        .get("default_member_permissions")
        .filter(|v| !v.is_null())
    {
        let ok = perm.as_str().is_some_and(|s| s.parse::<u64>().is_ok()) || perm.as_u64().is_some();
        if !ok {
            errs.add(
                at("default_member_permissions"),
                "PERMISSIONS_INVALID",
                "Invalid permission bits",
            );
        }
    }
    if kind == 1 {
        if let Some(opts) = cmd.get("options").filter(|v| !v.is_null()) {
            check_options(opts, &at("options"), Parent::Command, errs);
        }
        if command_size(cmd) > 8000 {
            errs.add(
                p,
                "APPLICATION_COMMAND_TOO_LARGE",
                "Command exceeds maximum size (8000)",
            );
        }
    }
    Some(kind)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Parent {
    Command,
    Group,
    Subcommand,
}

fn check_options(opts: &Value, path: &str, parent: Parent, errs: &mut FormErrors) {
    let Some(list) = opts.as_array() else {
        errs.add(path, "BASE_TYPE_ARRAY", "Must be an array.");
        return;
    };
    if list.len() > 25 {
        errs.max_len(path, 25);
    }
    let kinds: Vec<u64> = list
        .iter()
        .map(|o| o.get("type").and_then(Value::as_u64).unwrap_or(0))
        .collect();
    let subs = kinds.iter().filter(|k| **k == 1 || **k == 2).count();
    if parent == Parent::Command && subs > 0 && subs < list.len() {
        errs.add(
            path,
            "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
            "Sub-command and sub-command group option types are mutually exclusive to all other types",
        );
    }
    let mut names = std::collections::HashSet::new();
    let mut seen_optional = false;
    for (i, (o, kind)) in list.iter().zip(kinds).enumerate() {
        let p = format!("{path}.{i}");
        if !(1..=11).contains(&kind) {
            errs.choices(
                format!("{p}.type"),
                &["1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"],
            );
            continue;
        }
        match parent {
            Parent::Group if kind != 1 => errs.add(
                format!("{p}.type"),
                "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
                "Sub-command groups may only contain sub-commands",
            ),
            Parent::Subcommand if kind == 1 || kind == 2 => errs.add(
                format!("{p}.type"),
                "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
                "Sub-commands cannot contain sub-commands or groups",
            ),
            _ => {}
        }
        match o.get("name").and_then(Value::as_str) {
            None => errs.required(format!("{p}.name")),
            Some(n) if !valid_chat_input_name(n) => errs.add(
                format!("{p}.name"),
                "APPLICATION_COMMAND_INVALID_NAME",
                "Command name is invalid",
            ),
            Some(n) => {
                if !names.insert(n.to_string()) {
                    errs.add(
                        format!("{p}.name"),
                        "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS",
                        "Option names must be unique",
                    );
                }
            }
        }
        check_localizations(
            o.get("name_localizations"),
            &format!("{p}.name_localizations"),
            true,
            32,
            errs,
        );
        errs.check_str(
            o.get("description"),
            &format!("{p}.description"),
            1,
            100,
            true,
        );
        check_localizations(
            o.get("description_localizations"),
            &format!("{p}.description_localizations"),
            false,
            100,
            errs,
        );
        let required = o.get("required").and_then(Value::as_bool).unwrap_or(false);
        if kind >= 3 {
            if required && seen_optional {
                errs.add(
                    path,
                    "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                    "Required options must be placed before non-required options",
                );
            }
            if !required {
                seen_optional = true;
            }
        }
        let choices = o.get("choices").and_then(Value::as_array);
        if let Some(choices) = choices.filter(|c| !c.is_empty()) {
            if ![3, 4, 10].contains(&kind) {
                errs.add(
                    format!("{p}.choices"),
                    "APPLICATION_COMMAND_OPTION_CHOICES_INVALID",
                    "Choices are only valid for string, integer and number options",
                );
            }
            if choices.len() > 25 {
                errs.max_len(format!("{p}.choices"), 25);
            }
            for (j, c) in choices.iter().enumerate() {
                let cp = format!("{p}.choices.{j}");
                errs.check_str(c.get("name"), &format!("{cp}.name"), 1, 100, true);
                let value = c.get("value");
                let ok = match kind {
                    3 => value
                        .and_then(Value::as_str)
                        .is_some_and(|s| s.chars().count() <= 100),
                    4 => value.and_then(Value::as_i64).is_some(),
                    10 => value.and_then(Value::as_f64).is_some(),
                    _ => true,
                };
                if !ok {
                    errs.add(
                        format!("{cp}.value"),
                        "BASE_TYPE_CHOICES",
                        "Invalid choice value for this option type",
                    );
                }
            }
            if o.get("autocomplete").and_then(Value::as_bool) == Some(true) {
                errs.add(
                    format!("{p}.autocomplete"),
                    "APPLICATION_COMMAND_OPTION_AUTOCOMPLETE_CHOICES",
                    "Autocomplete cannot be enabled on an option with choices",
                );
            }
        }
        if o.get("autocomplete").and_then(Value::as_bool) == Some(true)
            && ![3, 4, 10].contains(&kind)
        {
            errs.add(
                format!("{p}.autocomplete"),
                "APPLICATION_COMMAND_OPTION_AUTOCOMPLETE_INVALID",
                "Autocomplete is only valid for string, integer and number options",
            );
        }
        if let Some(min) = o.get("min_length").filter(|v| !v.is_null()) {
            if !min.as_i64().is_some_and(|m| (0..=6000).contains(&m)) {
                errs.add(
                    format!("{p}.min_length"),
                    "NUMBER_TYPE_MAX",
                    "int value should be between 0 and 6000.",
                );
            }
        }
        if let Some(max) = o.get("max_length").filter(|v| !v.is_null()) {
            if !max.as_i64().is_some_and(|m| (1..=6000).contains(&m)) {
                errs.add(
                    format!("{p}.max_length"),
                    "NUMBER_TYPE_MAX",
                    "int value should be between 1 and 6000.",
                );
            }
        }
        if let (Some(min), Some(max)) = (
            o.get("min_value").and_then(Value::as_f64),
            o.get("max_value").and_then(Value::as_f64),
        ) {
            if min > max {
                errs.add(
                    format!("{p}.min_value"),
                    "APPLICATION_COMMAND_OPTION_MIN_MAX_INVALID",
                    "min_value must be less than or equal to max_value",
                );
            }
        }
        if let Some(types) = o.get("channel_types").and_then(Value::as_array) {
            for (j, t) in types.iter().enumerate() {
                if !t
                    .as_u64()
                    .is_some_and(|t| [0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15, 16].contains(&t))
                {
                    errs.choices(
                        format!("{p}.channel_types.{j}"),
                        &["0", "2", "4", "5", "10", "11", "12", "13", "15"],
                    );
                }
            }
        }
        if kind == 1 || kind == 2 {
            if let Some(children) = o.get("options").filter(|v| !v.is_null()) {
                let next = if kind == 2 {
                    Parent::Group
                } else {
                    Parent::Subcommand
                };
                check_options(children, &format!("{p}.options"), next, errs);
            }
        }
    }
}

/// The characters Discord counts toward a command's 8000 limit: names, descriptions,
/// choice names and values, at every level.
fn command_size(v: &Value) -> usize {
    let mut n = chars(v.get("name")) + chars(v.get("description"));
    if let Some(choices) = v.get("choices").and_then(Value::as_array) {
        for c in choices {
            n += chars(c.get("name"));
            n += match c.get("value") {
                Some(Value::String(s)) => s.chars().count(),
                Some(other) => other.to_string().len(),
                None => 0,
            };
        }
    }
    if let Some(opts) = v.get("options").and_then(Value::as_array) {
        n += opts.iter().map(command_size).sum::<usize>();
    }
    n
}
