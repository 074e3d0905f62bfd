//! How long an incident thread stays in the channel list: one of the four periods Discord allows.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A thread's `auto_archive_duration`, written in config as `"1h"`, `"1d"`, `"3d"` or `"1w"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoArchive(u16);

/// The only values Discord takes, in minutes.
const ALLOWED: [(u16, &str); 4] = [(60, "1h"), (1440, "1d"), (4320, "3d"), (10080, "1w")];

impl AutoArchive {
    /// A week: the longest Discord allows, so that a quiet incident stays in sight.
    pub const WEEK: AutoArchive = AutoArchive(10080);

    pub fn minutes(self) -> u16 {
        self.0
    }
}

impl Default for AutoArchive {
    fn default() -> Self {
        AutoArchive::WEEK
    }
}

impl FromStr for AutoArchive {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let d = humantime::parse_duration(s.trim()).map_err(|e| {
            format!("`{s}` is not a duration; use \"1h\", \"1d\", \"3d\" or \"1w\" ({e})")
        })?;
        let minutes = d.as_secs() / 60;
        ALLOWED
            .iter()
            .find(|(m, _)| u64::from(*m) == minutes && d.as_secs() % 60 == 0)
            .map(|(m, _)| AutoArchive(*m))
            .ok_or_else(|| {
                format!(
                    "thread_auto_archive = \"{s}\": Discord hides an idle thread only after 1h, 1d, 3d or 1w; use one of \"1h\", \"1d\", \"3d\", \"1w\""
                )
            })
    }
}

impl fmt::Display for AutoArchive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = ALLOWED
            .iter()
            .find(|(m, _)| *m == self.0)
            .map_or("1w", |(_, n)| n);
        f.write_str(name)
    }
}

impl Serialize for AutoArchive {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for AutoArchive {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_discords_four_periods_are_taken() {
        assert_eq!("1w".parse::<AutoArchive>().unwrap().minutes(), 10080);
        assert_eq!("24h".parse::<AutoArchive>().unwrap().minutes(), 1440);
        assert_eq!("60m".parse::<AutoArchive>().unwrap().minutes(), 60);
        assert_eq!("3d".parse::<AutoArchive>().unwrap().to_string(), "3d");
        let e = "2h".parse::<AutoArchive>().unwrap_err();
        assert!(e.contains("1h, 1d, 3d or 1w"), "{e}");
        assert!("soon".parse::<AutoArchive>().is_err());
        assert!("60m30s".parse::<AutoArchive>().is_err());
        assert_eq!(AutoArchive::default(), AutoArchive::WEEK);
    }
}
