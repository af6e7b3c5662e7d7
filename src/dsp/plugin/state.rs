//! A plugin's saved state: a text file beside the recipe (LV2: Turtle written by the plugin's
//! state extension), read at load, hashed for the render report and the album's incremental key.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// A state file as read.
#[derive(Debug, Clone, PartialEq)]
pub struct StateFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its text.
    pub text: String,
    /// SHA-256 of its bytes, in hex.
    pub sha256: String,
}

impl StateFile {
    /// Reads a state file (the recipe layer has made a relative path absolute).
    pub fn read(path: &str) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("the plugin state file `{path}` cannot be read: {e}"))?;
        Ok(Self {
            path: PathBuf::from(path),
            sha256: sha256_hex(text.as_bytes()),
            text,
        })
    }
}

/// SHA-256 of `bytes` in lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes a state file (through a temporary file beside it, renamed into place).
pub fn write(path: &Path, text: &str) -> Result<(), String> {
    let tmp = path.with_extension("ttl.tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("cannot write `{}`: {e}", path.display()))
}
