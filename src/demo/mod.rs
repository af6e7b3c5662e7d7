//! PLACEHOLDER until the demo synthesizer lands (branch `demo`).
#![allow(missing_docs)]
use std::path::{Path, PathBuf};
#[derive(Default)]
pub struct DemoOptions {
    pub seconds: f64,
}
pub struct DemoFiles {
    pub stems: Vec<(String, PathBuf)>,
}
pub fn write_demo(_dir: &Path, _opts: &DemoOptions) -> Result<DemoFiles, std::io::Error> {
    Err(std::io::Error::other(
        "the demo synthesizer is not merged yet",
    ))
}
