//! `[storage]` (where the database lives) and `[http]` (where the HTTP edge listens).

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    pub path: PathBuf,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            path: PathBuf::from("./sitrep-data"),
        }
    }
}

impl StorageConfig {
    pub(super) fn summary(&self) -> String {
        format!("storage    {}\n", self.path.display())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Where the health, metrics, webhook and export endpoints listen; empty turns them off.
    pub listen: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "127.0.0.1:8080".into(),
        }
    }
}

impl HttpConfig {
    pub(super) fn summary(&self) -> String {
        format!(
            "http       {}\n",
            if self.listen.is_empty() {
                "off"
            } else {
                &self.listen
            }
        )
    }
}
