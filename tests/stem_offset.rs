//! `s:stem(name, path, { offset_samples = … })`: the render places the stem exactly there,
//! whole or fractional, either direction, without allocating in the render loop.
use crate::common;

use common::audio::{read_wav, write_f32};
use stemgraph::render::{render, RenderOptions};
use stemgraph::script::load_recipe;

const FS: u32 = 48_000;
const N: usize = 48_000;

/// Renders one stem file with `options` through a neutral graph; the 32-bit float master.
fn render_one(stem: &[Vec<f64>], options: &str) -> Vec<Vec<f64>> {
    let dir = tempfile::tempdir().unwrap();
    write_f32(&dir.path().join("a.wav"), stem, FS);
    // A second stem that is never moved fixes the song's length and timeline.
    write_f32(&dir.path().join("b.wav"), &[vec![0.0; N], vec![0.0; N]], FS);
    let recipe = dir.path().join("song.lua");
    std::fs::write(
        &recipe,
        format!(
            "local s = session {{ title = 'o' }}\nlocal m = s:bus 'master'\n\
             s:stem('a', 'a.wav', {{ {options} }}):to(m)\ns:stem('b', 'b.wav'):to(m)\n\
             m:to(s:output())\ns:deliver {{ file = 'm.wav', bits = 32 }}\nreturn s\n"
        ),
    )
    .unwrap();
    let session = load_recipe(&recipe).unwrap();
    let out = dir.path().join("out");
    let (_, violations) =
        common::alloc_violations(|| render(&session, RenderOptions::new(&out)).unwrap());
    assert_eq!(violations, 0, "the render loop allocated");
    read_wav(&out.join("m.wav")).1
}

fn sine(freq: f64, delay: f64) -> Vec<Vec<f64>> {
    let x: Vec<f64> = (0..N)
        .map(|k| {
            let t = k as f64 - delay;
            // A smooth fade-in so the start is band-limited too.
            let env = (t / 2000.0).clamp(0.0, 1.0);
            0.1 * env * (2.0 * std::f64::consts::PI * freq * t / f64::from(FS)).sin()
        })
        .collect();
    vec![x.clone(), x]
}

#[test]
fn whole_sample_offsets_move_the_stem_exactly_either_way() {
    let x = sine(997.0, 100.0);
    let plain = render_one(&x, "");
    // The file is 37 samples late; the recipe moves it back.
    let late: Vec<Vec<f64>> = x
        .iter()
        .map(|c| {
            std::iter::repeat_n(0.0, 37)
                .chain(c[..N - 37].iter().copied())
                .collect()
        })
        .collect();
    let fixed = render_one(&late, "offset_samples = -37");
    assert_eq!(plain.len(), fixed.len());
    for c in 0..2 {
        assert_eq!(plain[c][..N - 37], fixed[c][..N - 37], "channel {c}");
    }
    // And later: 480 samples of silence first, then the stem.
    let later = render_one(&x, "offset_samples = 480");
    assert!(later[0][..480].iter().all(|v| *v == 0.0));
    assert_eq!(later[0][480..], plain[0][..N - 480]);
}

#[test]
fn a_fractional_offset_lands_at_the_fraction_with_its_latency_compensated() {
    let x = sine(1_000.0, 0.0);
    for d in [12.25, -37.5] {
        let y = render_one(&x, &format!("offset_samples = {d}"));
        let want = sine(1_000.0, d);
        let worst = (4000..N - 4000)
            .map(|k| (y[0][k] - want[0][k]).abs())
            .fold(0.0, f64::max);
        // The filter's error: 80 dB below the signal.
        assert!(worst < 1e-5, "offset {d}: error {worst}");
    }
}

#[test]
fn an_offset_out_of_range_is_a_recipe_error() {
    let dir = tempfile::tempdir().unwrap();
    write_f32(
        &dir.path().join("a.wav"),
        &[vec![0.0; 10], vec![0.0; 10]],
        FS,
    );
    let recipe = dir.path().join("song.lua");
    std::fs::write(
        &recipe,
        "local s = session {}\ns:stem('a', 'a.wav', { offset_samples = 1e12 }):to(s:output())\nreturn s\n",
    )
    .unwrap();
    let e = load_recipe(&recipe).unwrap_err().to_string();
    assert!(e.contains("offset_samples"), "{e}");
}
