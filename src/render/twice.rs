//! The determinism check of `render --twice` (on request: many third-party plugins are not
//! bit-deterministic): the song is rendered a second time into a temporary folder, without a
//! report, and the report of the real render says whether every deliverable came out the same,
//! byte for byte.

use super::report::sha256_files;
use super::{RenderError, RenderOptions};
use crate::session::Session;
use serde::Serialize;

/// What the check found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Determinism {
    /// How many renders were compared (2).
    pub renders: u32,
    /// Whether every deliverable was identical, byte for byte.
    pub identical: bool,
    /// The deliverables that differed (file names).
    pub differing: Vec<String>,
}

/// The SHA-256 of each deliverable of a second render of `session` (by file name), rendered
/// like `opts` into a temporary folder of its output folder, which is removed after.
pub fn second_render(
    session: &Session,
    opts: &RenderOptions,
) -> Result<Vec<(String, String)>, RenderError> {
    std::fs::create_dir_all(&opts.out_dir)
        .map_err(|e| RenderError::Invalid(format!("{}: {e}", opts.out_dir.display())))?;
    let dir = crate::io::temp::path_in(&opts.out_dir, "twice")
        .map_err(|e| RenderError::Invalid(format!("the determinism check's folder: {e}")))?;
    let mut again = RenderOptions::new(&dir);
    again.block_size = opts.block_size;
    again.threads = opts.threads;
    again.report = false;
    again.interrupt = opts.interrupt.clone();
    let result = super::render(session, again);
    let hashes = result.and_then(|r| {
        let paths: Vec<&std::path::Path> = r.files.iter().map(|f| f.wav.path.as_path()).collect();
        paths
            .iter()
            .zip(sha256_files(&paths))
            .map(|(path, hash)| {
                let name = path
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
                hash.map(|(h, _)| (name, h))
                    .map_err(|e| RenderError::Invalid(format!("the determinism check: {e}")))
            })
            .collect()
    });
    let _ = std::fs::remove_dir_all(&dir);
    crate::io::temp::tidy(&opts.out_dir);
    hashes
}

/// Compares the deliverables of the real render (name, SHA-256) with the second render's.
pub fn compare(first: &[(String, String)], second: &[(String, String)]) -> Determinism {
    let differing: Vec<String> = first
        .iter()
        .filter(|(name, hash)| !second.iter().any(|(n, h)| n == name && h == hash))
        .map(|(name, _)| name.clone())
        .collect();
    Determinism {
        renders: 2,
        identical: differing.is_empty() && first.len() == second.len(),
        differing,
    }
}
