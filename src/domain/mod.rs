//! Pure incident types and rules: the timeline events and the fold that turns them into state.

mod backoff;
mod cadence;
pub mod escalation;
mod event;
pub mod incident;
pub mod oncall;
pub mod playbook;

pub use backoff::Backoff;
pub use cadence::{Cadence, MIN_CADENCE_SECS};
pub use escalation::{Escalation, Escalations};
pub use event::{Actor, Event, EventKind, UserRef};
pub use incident::{ActionItem, FiledIssue, Incident, RoleAssignment, RuleError, Times};
pub use playbook::{FieldDef, FieldKind, Item, ItemDef, Playbook, Progress};

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// An incident number; shown to people as `INC-<n>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct IncidentId(pub u64);

impl IncidentId {
    /// Owns the timed jobs that belong to no incident (a schedule's hand-off, a weekly digest).
    /// Incidents are numbered from 1, so no incident has it.
    pub const HOUSE: IncidentId = IncidentId(0);
}

impl fmt::Display for IncidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "INC-{}", self.0)
    }
}

impl FromStr for IncidentId {
    type Err = RuleError;

    /// Accepts `INC-7`, `inc-7` and a bare `7`, because responders type all three.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let digits = t
            .strip_prefix("INC-")
            .or_else(|| t.strip_prefix("inc-"))
            .or_else(|| t.strip_prefix("Inc-"))
            .unwrap_or(t);
        match digits.parse::<u64>() {
            Ok(n) if n > 0 => Ok(IncidentId(n)),
            _ => Err(RuleError::BadIncidentId(s.to_string())),
        }
    }
}

/// Severity level, `SEV1` (worst) to `SEVn`; which levels exist is config's business.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Severity(pub u8);

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SEV{}", self.0)
    }
}

impl FromStr for Severity {
    type Err = RuleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let digits = t
            .strip_prefix("SEV")
            .or_else(|| t.strip_prefix("sev"))
            .or_else(|| t.strip_prefix("Sev"))
            .unwrap_or(t);
        match digits.parse::<u8>() {
            Ok(n) if n > 0 => Ok(Severity(n)),
            _ => Err(RuleError::BadSeverity(s.to_string())),
        }
    }
}

/// Lifecycle state. Order matters: forward jumps are allowed, backwards are not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Investigating,
    Identified,
    Monitoring,
    Resolved,
}

impl State {
    pub const ALL: [State; 4] = [
        State::Investigating,
        State::Identified,
        State::Monitoring,
        State::Resolved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Investigating => "investigating",
            State::Identified => "identified",
            State::Monitoring => "monitoring",
            State::Resolved => "resolved",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for State {
    type Err = RuleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        State::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| RuleError::BadState(s.to_string()))
    }
}

/// The role everyone has to know; others (communications, scribe, configured ones) are plain names.
pub const COMMANDER: &str = "commander";

/// FNV-1a: a hash that stays the same across builds and platforms (std's hasher promises
/// neither), for ids and nonces that must be recomputed identically after a restart.
#[derive(Debug, Clone, Copy)]
pub struct StableHash(u64);

impl Default for StableHash {
    fn default() -> Self {
        StableHash(0xcbf2_9ce4_8422_2325)
    }
}

impl StableHash {
    pub fn feed(&mut self, bytes: &[u8]) -> &mut Self {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
        self
    }

    pub fn finish(&self) -> u64 {
        self.0
    }
}

/// Formats a duration the way responders say it: `1h 5m`, `42s`.
pub fn human_duration(d: chrono::Duration) -> String {
    let secs = d.num_seconds().max(0);
    let (days, hours, mins, s) = (
        secs / 86_400,
        (secs % 86_400) / 3600,
        (secs % 3600) / 60,
        secs % 60,
    );
    let mut parts = Vec::new();
    if days > 0 {
        parts.push(format!("{days}d"));
    }
    if hours > 0 {
        parts.push(format!("{hours}h"));
    }
    if mins > 0 && days == 0 {
        parts.push(format!("{mins}m"));
    }
    if parts.is_empty() {
        parts.push(format!("{s}s"));
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incident_ids_parse_the_ways_people_type_them() {
        assert_eq!("INC-7".parse::<IncidentId>().unwrap(), IncidentId(7));
        assert_eq!("inc-12".parse::<IncidentId>().unwrap(), IncidentId(12));
        assert_eq!(" 3 ".parse::<IncidentId>().unwrap(), IncidentId(3));
        assert!("INC-0".parse::<IncidentId>().is_err());
        assert!("INC-x".parse::<IncidentId>().is_err());
        assert!("".parse::<IncidentId>().is_err());
        assert_eq!(IncidentId(42).to_string(), "INC-42");
    }

    #[test]
    fn severities_and_states_parse() {
        assert_eq!("SEV2".parse::<Severity>().unwrap(), Severity(2));
        assert_eq!("sev1".parse::<Severity>().unwrap(), Severity(1));
        assert!("SEV".parse::<Severity>().is_err());
        assert_eq!("Monitoring".parse::<State>().unwrap(), State::Monitoring);
        assert!("fixed".parse::<State>().is_err());
    }

    #[test]
    fn durations_read_like_speech() {
        assert_eq!(human_duration(chrono::Duration::seconds(42)), "42s");
        assert_eq!(human_duration(chrono::Duration::seconds(3900)), "1h 5m");
        assert_eq!(human_duration(chrono::Duration::seconds(90_000)), "1d 1h");
        assert_eq!(human_duration(chrono::Duration::seconds(-5)), "0s");
    }
}
