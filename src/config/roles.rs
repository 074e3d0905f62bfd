//! `[roles.NAME]`: the incident roles, and which Discord roles may hold each.

use crate::domain::COMMANDER;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleConfig {
    #[serde(default)]
    pub description: String,
    /// Discord roles whose members may hold this incident role; empty means anyone.
    #[serde(default)]
    pub discord_roles: Vec<u64>,
}

fn role(description: &str) -> RoleConfig {
    RoleConfig {
        description: description.into(),
        discord_roles: Vec::new(),
    }
}

/// Commander, communications and scribe; a file changes and adds to them, or replaces them with
/// `replace = true`.
pub(super) fn defaults() -> BTreeMap<String, RoleConfig> {
    BTreeMap::from([
        (
            COMMANDER.into(),
            role("Leads the response and makes the calls"),
        ),
        ("communications".into(), role("Keeps stakeholders informed")),
        ("scribe".into(), role("Keeps the timeline complete")),
    ])
}

pub(super) fn problems(roles: &BTreeMap<String, RoleConfig>) -> Vec<String> {
    let mut out = Vec::new();
    if !roles.contains_key(COMMANDER) {
        out.push("[roles] must define `commander`".into());
    }
    out
}

pub(super) fn summary(roles: &BTreeMap<String, RoleConfig>) -> String {
    let mut s = String::new();
    for (name, role) in roles {
        let who = if role.discord_roles.is_empty() {
            "anyone".to_string()
        } else {
            format!("roles {:?}", role.discord_roles)
        };
        s.push_str(&format!("role       {name} · {who}\n"));
    }
    s
}
