//! How often an incident's status update goes out: a fixed interval, a cron schedule, or never.

use super::RuleError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Updates more often than this are noise to stakeholders and a rate-limit risk to the bot.
pub const MIN_CADENCE_SECS: u64 = 60;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Cadence {
    Every {
        seconds: u64,
    },
    /// Six or seven fields, seconds first, evaluated in UTC (the `cron` crate's syntax).
    Cron {
        expr: String,
    },
    Off,
}

impl Cadence {
    pub fn every(d: std::time::Duration) -> Result<Cadence, RuleError> {
        if d.as_secs() < MIN_CADENCE_SECS {
            return Err(RuleError::CadenceTooShort(
                humantime::format_duration(d).to_string(),
            ));
        }
        Ok(Cadence::Every {
            seconds: d.as_secs(),
        })
    }

    /// Reads `"10m"`, `"1h 30m"`.
    pub fn parse_every(s: &str) -> Result<Cadence, RuleError> {
        let d = humantime::parse_duration(s.trim()).map_err(|e| {
            RuleError::BadCadence(format!(
                "`{s}` is not a duration like \"10m\" or \"1h\" ({e})"
            ))
        })?;
        Cadence::every(d)
    }

    /// Checks the expression parses and never fires twice within a minute. A schedule fires at
    /// most once a minute exactly when its seconds field names a single second.
    pub fn cron(expr: &str) -> Result<Cadence, RuleError> {
        use cron::TimeUnitSpec;
        let expr = expr.trim();
        let schedule = cron::Schedule::from_str(expr).map_err(|e| {
            RuleError::BadCadence(format!(
                "`{expr}` is not a cron expression ({e}); write six fields, seconds first, in UTC: \"0 */15 * * * *\""
            ))
        })?;
        if schedule.seconds().count() != 1 {
            return Err(RuleError::CadenceTooShort(format!("cron `{expr}`")));
        }
        Ok(Cadence::Cron {
            expr: expr.to_string(),
        })
    }

    /// When the next update is due, counting from `now`; `None` when there is none.
    pub fn next_after(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Cadence::Every { seconds } => {
                Some(now + chrono::Duration::seconds(i64::try_from(*seconds).ok()?))
            }
            // Stored expressions were checked when they were written.
            Cadence::Cron { expr } => cron::Schedule::from_str(expr).ok()?.after(&now).next(),
            Cadence::Off => None,
        }
    }
}

impl fmt::Display for Cadence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cadence::Every { seconds } => write!(
                f,
                "every {}",
                humantime::format_duration(std::time::Duration::from_secs(*seconds))
            ),
            Cadence::Cron { expr } => write!(f, "on cron `{expr}` (UTC)"),
            Cadence::Off => f.write_str("off"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 21, h, m, s).unwrap()
    }

    #[test]
    fn intervals_parse_and_have_a_floor() {
        assert_eq!(
            Cadence::parse_every("10m").unwrap(),
            Cadence::Every { seconds: 600 }
        );
        assert_eq!(Cadence::parse_every("1m").unwrap().to_string(), "every 1m");
        assert!(matches!(
            Cadence::parse_every("59s"),
            Err(RuleError::CadenceTooShort(_))
        ));
        assert!(matches!(
            Cadence::parse_every("soon"),
            Err(RuleError::BadCadence(_))
        ));
    }

    #[test]
    fn cron_schedules_parse_and_have_a_floor() {
        assert!(Cadence::cron("0 */15 * * * *").is_ok());
        assert!(
            Cadence::cron("30 * * * * *").is_ok(),
            "once a minute is the floor"
        );
        for fast in ["* * * * * *", "0,30 * * * * *", "*/10 * * * * *"] {
            assert!(
                matches!(Cadence::cron(fast), Err(RuleError::CadenceTooShort(_))),
                "{fast}"
            );
        }
        for bad in ["*/15 * * * *", "every tuesday", ""] {
            let err = Cadence::cron(bad).unwrap_err().to_string();
            assert!(err.contains("not a cron expression"), "{bad}: {err}");
        }
    }

    #[test]
    fn next_counts_from_now_and_skips_missed_ticks() {
        let every = Cadence::Every { seconds: 900 };
        assert_eq!(every.next_after(t(10, 0, 0)), Some(t(10, 15, 0)));
        let cron = Cadence::cron("0 */15 * * * *").unwrap();
        assert_eq!(
            cron.next_after(t(10, 0, 0)),
            Some(t(10, 15, 0)),
            "strictly after"
        );
        assert_eq!(cron.next_after(t(10, 7, 30)), Some(t(10, 15, 0)));
        assert_eq!(cron.next_after(t(11, 59, 59)), Some(t(12, 0, 0)));
        assert_eq!(Cadence::Off.next_after(t(10, 0, 0)), None);
    }
}
