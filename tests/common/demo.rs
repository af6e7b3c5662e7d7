//! Songs for render tests from the built-in demo synthesizer (the `demo` feature).

use std::path::Path;
use stemgraph::demo::{write_demo, DemoOptions};

/// Writes the demo song's stems (drums, bass, keys, lead) and `mix.wav` into `<dir>/stems`.
pub fn demo(dir: &Path, rate: u32, seconds: f64) {
    write_demo(
        dir,
        &DemoOptions {
            sample_rate: rate,
            seconds,
            ..DemoOptions::default()
        },
    )
    .unwrap();
}

/// Writes album song `n` into `<root>/songs/<nn>/stems` as the four stems the `band_4stem`
/// template wants (drums, bass, music, vocals: the demo's keys and lead renamed), and its mix.
pub fn band_4stem_song(root: &Path, n: usize, opts: &DemoOptions) {
    let song_dir = root.join(format!("songs/{n:02}"));
    write_demo(&song_dir, opts).unwrap();
    let stems = song_dir.join("stems");
    std::fs::rename(stems.join("keys.wav"), stems.join("music.wav")).unwrap();
    std::fs::rename(stems.join("lead.wav"), stems.join("vocals.wav")).unwrap();
}
