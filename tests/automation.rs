//! Automation from recipes: a ramp starts on the exact output sample it names (after the latency
//! trim) at every block size, and a function curve equals the breakpoint curve of the same ramp.
use crate::common;

use common::audio::{read_wav, write_f32};
use std::path::Path;
use stemgraph::render::{render, RenderOptions};
use stemgraph::script::load_recipe;

/// A steady signal through a limiter (latency) and then an automated gain.
fn recipe(automation: &str) -> String {
    format!(
        r#"
local s = session {{ title = "auto" }}
s:stem("tone", "tone.wav"):chain {{
  limiter {{ ceiling_dbtp = -1, lookahead_ms = 2 }},
  gain {{ id = "fader" }},
}}:to(s:output())
{automation}
s:deliver {{ file = "out.wav", bits = 32 }}
return s
"#
    )
}

fn render_with(dir: &Path, name: &str, body: &str, block: usize) -> Vec<f64> {
    let path = dir.join(format!("{name}.lua"));
    std::fs::write(&path, body).unwrap();
    let session = load_recipe(&path).unwrap_or_else(|e| panic!("{e}"));
    let out = dir.join(format!("out_{name}_{block}"));
    let mut opts = RenderOptions::new(&out);
    opts.block_size = block;
    render(&session, opts).unwrap();
    read_wav(&out.join("out.wav")).1.swap_remove(0)
}

#[test]
fn a_ramp_starts_on_the_sample_it_names_after_the_latency_trim() {
    let dir = tempfile::tempdir().unwrap();
    let n = 48_000;
    write_f32(
        &dir.path().join("tone.wav"),
        &[vec![0.25; n], vec![0.25; n]],
        48_000,
    );
    let plain = render_with(dir.path(), "plain", &recipe(""), 256);
    // 0.5 s = sample 24 000 exactly; 0.3217 s rounds to sample 15 442.
    for (time, start) in [("0.5", 24_000usize), ("0.3217", 15_442)] {
        let body = recipe(&format!(
            "s:automate('fader.gain_db', {{ {{ {time}, 0 }}, {{ 0.9, -6 }} }})"
        ));
        for block in [1, 64, 997, 4096] {
            let out = render_with(dir.path(), &format!("ramp{start}"), &body, block);
            assert_eq!(out.len(), plain.len());
            assert_eq!(
                &out[..=start],
                &plain[..=start],
                "block {block}: changed before sample {start}"
            );
            assert!(
                out[start + 1] < plain[start + 1],
                "block {block}: the ramp did not start at {start}"
            );
        }
    }
}

#[test]
fn a_function_curve_equals_the_breakpoint_curve() {
    let dir = tempfile::tempdir().unwrap();
    let n = 48_000;
    let noise = common::noise(n, 0.2, 9);
    write_f32(&dir.path().join("tone.wav"), &noise, 48_000);
    let points = render_with(
        dir.path(),
        "points",
        &recipe("s:automate('fader.gain_db', { { 0.2, 0 }, { 0.7, -12 } })"),
        512,
    );
    let function = render_with(
        dir.path(),
        "function",
        &recipe(
            "s:automate('fader.gain_db', function(t) return t < 0.2 and 0 or (t > 0.7 and -12 or -24 * (t - 0.2)) end, \
             { from = 0, to = 1.0, rate_hz = 200 })",
        ),
        512,
    );
    let worst = points
        .iter()
        .zip(&function)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(worst < 1e-6, "residual {worst} (must be under −120 dBFS)");
}
