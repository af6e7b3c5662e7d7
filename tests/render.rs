//! File-to-file renders: null test, determinism, atomic outputs, errors that write nothing.
use crate::common;

use common::audio::{read_wav, write_wav24};
use std::path::PathBuf;
use stemgraph::render::{render, RenderOptions};
use stemgraph::script::load_recipe;

/// Writes three stems (one shorter) and a unity recipe into a temp folder.
fn project(recipe_body: &str) -> (tempfile::TempDir, PathBuf, Vec<Vec<Vec<f64>>>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("stems")).unwrap();
    let mut stems = Vec::new();
    for (i, name) in ["bass", "drums", "vocals"].iter().enumerate() {
        let n = 24_000 - i * 1000;
        let s: Vec<Vec<f64>> = common::noise(n, 0.2, i as u64 + 5)
            .into_iter()
            .map(|c| {
                c.into_iter()
                    .map(|x| (x * 8_388_608.0).round() / 8_388_608.0)
                    .collect()
            })
            .collect();
        write_wav24(&dir.path().join(format!("stems/{name}.wav")), &s, 48_000);
        stems.push(s);
    }
    let recipe = dir.path().join("song.lua");
    std::fs::write(&recipe, recipe_body).unwrap();
    (dir, recipe, stems)
}

const UNITY: &str = r#"
local s = session { title = "Null" }
local master = s:bus "master"
for _, name in ipairs { "bass", "drums", "vocals" } do
  s:stem(name, "stems/" .. name .. ".wav"):to(master)
end
master:to(s:output "main")
s:deliver { file = "null_32f.wav", bits = 32 }
s:deliver { file = "null_24.wav", bits = 24 }
return s
"#;

#[test]
fn unity_render_equals_the_plain_sum_of_the_decoded_stems() {
    let (dir, recipe, stems) = project(UNITY);
    let session = load_recipe(&recipe).unwrap();
    let out = dir.path().join("out");
    let (result, violations) =
        common::alloc_violations(|| render(&session, RenderOptions::new(&out)).unwrap());
    assert_eq!(violations, 0);
    assert_eq!(result.song_frames, 24_000);
    let (spec, master) = {
        let mut r = hound::WavReader::open(out.join("null_32f.wav")).unwrap();
        let spec = r.spec();
        let s: Vec<f32> = r.samples::<f32>().map(|s| s.unwrap()).collect();
        (
            spec,
            (0..2)
                .map(|c| {
                    s.iter()
                        .skip(c)
                        .step_by(2)
                        .map(|&x| f64::from(x))
                        .collect::<Vec<f64>>()
                })
                .collect::<Vec<_>>(),
        )
    };
    assert_eq!(spec.sample_rate, 48_000);
    assert_eq!(master[0].len(), 24_000);
    let mut worst = 0.0f64;
    for c in 0..2 {
        for k in 0..24_000 {
            let plain: f64 = 0.0
                + stems
                    .iter()
                    .map(|s| s[c].get(k).copied().unwrap_or(0.0))
                    .sum::<f64>();
            // The float file holds f32: compare at f32 precision of the sum.
            worst = worst.max((master[c][k] - f64::from(plain as f32)).abs());
        }
    }
    assert_eq!(worst, 0.0, "residual {worst}");
    // The 24-bit master is the sum quantized: within half an LSB.
    let (_, m24) = read_wav(&out.join("null_24.wav"));
    for c in 0..2 {
        for k in 0..24_000 {
            let plain: f64 = stems
                .iter()
                .map(|s| s[c].get(k).copied().unwrap_or(0.0))
                .sum();
            assert!((m24[c][k] - plain).abs() <= 0.5 / 8_388_608.0 + 1e-15);
        }
    }
    drop(dir);
}

#[test]
fn two_renders_give_identical_bytes_at_any_block_size() {
    let (dir, recipe, _) = project(UNITY);
    let session = load_recipe(&recipe).unwrap();
    let mut hashes = Vec::new();
    for (i, block) in [4096usize, 64, 997, 4096].iter().enumerate() {
        let out = dir.path().join(format!("out{i}"));
        let mut opts = RenderOptions::new(&out);
        opts.block_size = *block;
        render(&session, opts).unwrap();
        hashes.push(std::fs::read(out.join("null_24.wav")).unwrap());
    }
    assert!(hashes.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn a_corrupt_stem_is_an_error_and_writes_nothing() {
    let (dir, recipe, _) = project(UNITY);
    std::fs::write(
        dir.path().join("stems/drums.wav"),
        b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk",
    )
    .unwrap();
    let session = load_recipe(&recipe).unwrap();
    let out = dir.path().join("out");
    let err = render(&session, RenderOptions::new(&out))
        .err()
        .expect("a corrupt stem must fail");
    assert!(err.to_string().contains("drums.wav"), "{err}");
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .map(|d| d.collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn an_interrupted_render_leaves_no_file() {
    let (dir, recipe, _) = project(UNITY);
    let session = load_recipe(&recipe).unwrap();
    let out = dir.path().join("out");
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut opts = RenderOptions::new(&out);
    opts.block_size = 256;
    opts.interrupt = Some(flag.clone());
    let f = flag.clone();
    opts.progress = Some(Box::new(move |done, _| {
        if done > 5000 {
            f.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }));
    let err = render(&session, opts).err().expect("interrupted");
    assert!(matches!(err, stemgraph::render::RenderError::Interrupted));
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
}

#[test]
fn an_output_never_overwrites_an_input() {
    let body = UNITY.replace("null_24.wav", "../stems/bass.wav");
    let (dir, recipe, _) = project(&body);
    let before = std::fs::read(dir.path().join("stems/bass.wav")).unwrap();
    let session = load_recipe(&recipe).unwrap();
    let err = render(&session, RenderOptions::new(dir.path().join("out")))
        .err()
        .expect("refused");
    assert!(err.to_string().contains("input"), "{err}");
    assert_eq!(
        std::fs::read(dir.path().join("stems/bass.wav")).unwrap(),
        before
    );
}

#[test]
fn trims_fades_and_silence() {
    let body = UNITY
        .replace(
            "local s = session { title = \"Null\" }",
            "local s = session { title = \"Null\", trim = { start = 0.05, finish = 0.4 }, \
             fade_in = { length = 0.01, shape = 'linear' }, fade_out = 0.02 }",
        )
        .replace(
            "s:deliver { file = \"null_24.wav\", bits = 24 }",
            "s:deliver { file = \"null_24.wav\", bits = 24, silence = { lead = 0.1, tail = 0.2 } }",
        );
    let (dir, recipe, stems) = project(&body);
    let session = load_recipe(&recipe).unwrap();
    let out = dir.path().join("out");
    render(&session, RenderOptions::new(&out)).unwrap();
    let (_, m) = read_wav(&out.join("null_24.wav"));
    // 0.1 s silence + (0.4 − 0.05) s of song + 0.2 s silence at 48 kHz.
    assert_eq!(m[0].len(), 4800 + 16_800 + 9600);
    assert!(m[0][..4800].iter().all(|&x| x == 0.0));
    assert!(m[0][4800 + 16_800..].iter().all(|&x| x == 0.0));
    // First kept frame is song frame 2400, faded from 0; mid-song frames untouched.
    assert_eq!(m[0][4800], 0.0);
    let k = 4800 + 8000;
    let plain: f64 = stems.iter().map(|s| s[0][2400 + 8000]).sum();
    assert!((m[0][k] - plain).abs() <= 0.5 / 8_388_608.0 + 1e-15);
    // Half way through the linear fade in: half the level.
    let half: f64 = stems.iter().map(|s| s[0][2400 + 240]).sum::<f64>() * 0.5;
    assert!((m[0][4800 + 240] - half).abs() <= 0.5 / 8_388_608.0 + 1e-12);
}

#[test]
fn a_deliverable_at_another_rate_is_resampled_to_the_exact_length() {
    let body = UNITY.replace(
        "s:deliver { file = \"null_24.wav\", bits = 24 }",
        "s:deliver { file = \"cd_rate.wav\", bits = 24, sample_rate_hz = 44100, silence = { tail = 0.5 } }",
    );
    let (dir, recipe, stems) = project(&body);
    let session = load_recipe(&recipe).unwrap();
    let out = dir.path().join("out");
    let result = render(&session, RenderOptions::new(&out)).unwrap();
    let (spec, m) = read_wav(&out.join("cd_rate.wav"));
    assert_eq!(spec.sample_rate, 44_100);
    // 24 000 frames at 48 kHz → 22 050 at 44.1 kHz, then 0.5 s of silence.
    assert_eq!(m[0].len(), 22_050 + 22_050);
    // Level preserved: the stems are white noise up to 24 kHz and the 44.1 kHz file keeps the
    // band up to the resampler's cutoff (≈ 0.993 × 22 050 Hz), so its RMS is the 48 kHz sum's
    // minus 10·log10(21 896 / 24 000) = −0.40 dB of lost band.
    let rms = |x: &[f64]| (x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64).sqrt();
    let sum: Vec<f64> = (0..24_000)
        .map(|k| {
            stems
                .iter()
                .map(|s| s[0].get(k).copied().unwrap_or(0.0))
                .sum()
        })
        .collect();
    let ratio_db = 20.0 * (rms(&m[0][1000..21_000]) / rms(&sum[1088..22_857])).log10();
    let expected = 10.0 * (0.993 * 22_050.0f64 / 24_000.0).log10();
    assert!(
        (ratio_db - expected).abs() < 0.05,
        "{ratio_db} dB, expected {expected} dB"
    );
    assert!(result.files.iter().any(|f| f.sample_rate == 44_100));
    // Nothing but the deliverables and the report is left in the folder (the spill is gone).
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["cd_rate.wav", "null_32f.wav", "report.json", "report.md"]
    );
}

/// A conversion down feeding only a 16-bit file runs in 32-bit float, one feeding a 24-bit file
/// in 64-bit float even when a 16-bit file shares it: the 24-bit file is the same bytes with or
/// without a 16-bit file beside it, and the 16-bit file alone differs from the one made beside
/// a 24-bit file by at most one step in a few samples.
#[test]
fn a_conversion_down_runs_as_precise_as_its_finest_file() {
    let cd16 =
        r#"s:deliver { file = "cd16.wav", bits = 16, sample_rate_hz = 44100, dither = "tpdf" }"#;
    let cd24 = r#"s:deliver { file = "cd24.wav", bits = 24, sample_rate_hz = 44100 }"#;
    // The samples of each file (their headers name the recipe, which differs).
    let files = |deliverables: &[&str]| {
        let body = UNITY.replace(
            "s:deliver { file = \"null_24.wav\", bits = 24 }",
            &deliverables.join("\n"),
        );
        let (dir, recipe, _) = project(&body);
        let out = dir.path().join("out");
        render(&load_recipe(&recipe).unwrap(), RenderOptions::new(&out)).unwrap();
        let read = |name: &str| {
            let path = out.join(name);
            path.exists().then(|| read_wav(&path).1)
        };
        (read("cd16.wav"), read("cd24.wav"))
    };
    let (_, alone24) = files(&[cd24]);
    let (alone16, _) = files(&[cd16]);
    let (beside16, beside24) = files(&[cd16, cd24]);
    assert!(
        alone24.is_some() && alone24 == beside24,
        "the 24-bit file keeps its samples"
    );
    let steps = |m: Vec<Vec<f64>>| -> Vec<i32> {
        m.concat()
            .iter()
            .map(|&x| (x * 32_768.0).round() as i32)
            .collect()
    };
    let (a, b) = (steps(alone16.unwrap()), steps(beside16.unwrap()));
    assert_eq!(a.len(), b.len());
    assert_ne!(a, b, "the 16-bit file alone is converted in 32-bit float");
    let differing = a.iter().zip(&b).filter(|(x, y)| x != y).count();
    let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).max().unwrap();
    assert!(
        worst <= 1 && differing * 20 < a.len(),
        "{differing} of {} samples differ, by up to {worst} steps",
        a.len()
    );
}

/// Two threads render the same bytes as one (and as other block sizes): stems with strips into
/// two buses, a send and a master chain.
#[test]
#[cfg(feature = "demo")]
fn thread_count_does_not_change_the_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    stemgraph::demo::write_demo(
        dir,
        &stemgraph::demo::DemoOptions {
            seconds: 12.0,
            stems: 6,
            ..Default::default()
        },
    )
    .unwrap();
    let recipe = dir.join("threads.lua");
    std::fs::write(
        &recipe,
        r#"
local s = session { title = "threads" }
local m = s:bus "master"
local fx = s:bus "fx"
for i, name in ipairs { "drums", "bass", "keys", "lead", "pads", "perc" } do
  local strip = s:stem(name, "stems/" .. name .. ".wav"):chain {
    eq { bands = { bell { freq_hz = 200 * i, gain_db = -2, q = 1 }, high_shelf { freq_hz = 8000, gain_db = 1 } } },
    compressor { threshold_db = -20 - i, ratio = 3 },
  }
  strip:to(m)
  if i % 2 == 0 then strip:to(fx, { gain_db = -12 }) end
end
fx:chain { delay { time_ms = 250, feedback_pct = 30 } }:to(m)
m:chain { compressor { threshold_db = -18, ratio = 2 }, limiter { ceiling_dbtp = -1 } }:to(s:output())
s:deliver { file = "out.wav", bits = 24 }
s:deliver { file = "out 16bit 44k1.wav", bits = 16, sample_rate_hz = 44100, dither = "tpdf" }
return s
"#,
    )
    .unwrap();
    let session = stemgraph::script::load_recipe(&recipe).unwrap();
    let mut outputs = Vec::new();
    let mut reports = Vec::new();
    for (threads, block) in [(1, 1024), (2, 1024), (2, 333)] {
        let out = dir.join(format!("out{threads}_{block}"));
        let mut opts = stemgraph::render::RenderOptions::new(&out);
        opts.threads = threads;
        opts.block_size = block;
        let result = stemgraph::render::render(&session, opts).unwrap();
        let report = result.report.expect("a report by default");
        outputs.push((
            std::fs::read(out.join("out.wav")).unwrap(),
            std::fs::read(out.join("out 16bit 44k1.wav")).unwrap(),
            // The report's contents (all but the wall time), gain-reduction statistics included.
            format!(
                "{:?} {:?} {:?} {:?}",
                report.gain_reduction, report.stems, report.outputs, report.deliverables
            ),
        ));
        if block == 1024 {
            reports.push(outputs.last().unwrap().2.clone());
        }
    }
    assert!(
        outputs
            .windows(2)
            .all(|w| w[0].0 == w[1].0 && w[0].1 == w[1].1),
        "same bytes at any thread count"
    );
    assert!(
        reports[0].matches("GainReduction {").count() >= 7,
        "the report lists the compressors and the limiter: {}",
        reports[0]
    );
    assert_eq!(
        reports[0], reports[1],
        "the same report on one thread and two"
    );
}
