//! `[templates]`: a folder of operator templates that replace the built-in ones, file by file.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TemplatesConfig {
    pub dir: Option<PathBuf>,
}

impl TemplatesConfig {
    /// Whether the templates themselves parse is the renderer's to say, at startup.
    pub(super) fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(dir) = &self.dir {
            if !dir.is_dir() {
                out.push(format!("[templates] dir {} is not a folder", dir.display()));
            }
        }
        out
    }

    pub(super) fn summary(&self) -> String {
        format!(
            "templates  {}\n",
            self.dir
                .as_ref()
                .map_or("built-in".to_string(), |d| d.display().to_string())
        )
    }
}
