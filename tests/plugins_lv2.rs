//! Real third-party LV2 plugins from Debian (`x42-plugins`, `lsp-plugins-lv2`, installed by
//! `.ci/install-deps test`) as graph nodes, rendered from recipes: a gain plugin's level against
//! its setting and its automation, a plugin's reported latency compensated (a null test against
//! the dry path), a true-peak limiter's output under its threshold, the `active` bypass, and the
//! recipe mistakes (unknown URI, parameter out of range, mono plugin on a stereo stem, missing
//! state file), each with the recipe's file and line.
//!
//! Without the plugins installed these tests say so and pass, except under `CI=true`, where they
//! fail.
use crate::common;

use std::path::Path;
use stemgraph::analysis::meters::TruePeakMeter;
use stemgraph::dsp::param::ParamSlot;
use stemgraph::dsp::plugin::lv2;
use stemgraph::dsp::registry;
use stemgraph::dsp::{AudioBuffer, Handover, ParamBlock, ProcessSpec, Processor, ProcessorConfig};
use stemgraph::graph::{compile, CompileOptions};
use stemgraph::render::{render, RenderOptions};
use stemgraph::script::load_recipe;

const BALANCE: &str = "http://gareus.org/oss/lv2/balance";
const NODELAY: &str = "http://gareus.org/oss/lv2/nodelay";
const DPL: &str = "http://gareus.org/oss/lv2/dpl#stereo";
const FS: u32 = 48_000;

/// Whether `uri` is installed; under CI a missing plugin fails the test.
fn installed(uri: &str) -> bool {
    match lv2::find(uri) {
        Ok(_) => true,
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{e} (CI installs x42-plugins and lsp-plugins-lv2: .ci/install-deps test)")
        }
        Err(e) => {
            eprintln!("skipped: {e}");
            false
        }
    }
}

fn write_wav(path: &Path, ch: &[Vec<f64>]) {
    let spec = hound::WavSpec {
        channels: ch.len() as u16,
        sample_rate: FS,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for n in 0..ch[0].len() {
        for c in ch {
            w.write_sample(c[n] as f32).unwrap();
        }
    }
    w.finalize().unwrap();
}

fn read_wav(path: &Path) -> Vec<Vec<f64>> {
    let mut r = hound::WavReader::open(path).unwrap();
    let channels = r.spec().channels as usize;
    let mut out = vec![Vec::new(); channels];
    for (i, s) in r.samples::<f32>().enumerate() {
        out[i % channels].push(f64::from(s.unwrap()));
    }
    out
}

/// Renders `body` (a recipe whose stem is `in.wav` = `input`) and returns `out.wav`.
fn render_recipe(dir: &Path, body: &str, input: &[Vec<f64>]) -> Vec<Vec<f64>> {
    write_wav(&dir.join("in.wav"), input);
    let path = dir.join("song.lua");
    std::fs::write(&path, body).unwrap();
    let session = load_recipe(&path).unwrap_or_else(|e| panic!("{e}"));
    let out = dir.join("out");
    let mut opts = RenderOptions::new(&out);
    opts.block_size = 512;
    render(&session, opts).unwrap_or_else(|e| panic!("{e}"));
    read_wav(&out.join("out.wav"))
}

fn rms_db(x: &[f64]) -> f64 {
    let ms = x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64;
    10.0 * ms.log10()
}

/// The recipe mistake for `body`: loading or compiling must fail; the message.
fn recipe_error(body: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("song.lua");
    std::fs::write(&path, body).unwrap();
    match load_recipe(&path) {
        Err(e) => e.to_string(),
        Ok(s) => compile(&s.graph_at(48_000.0), CompileOptions::new(48_000.0, 512))
            .err()
            .expect("the graph must be refused")
            .to_string(),
    }
}

#[test]
fn a_gain_plugin_changes_the_level_by_its_setting() {
    if !installed(BALANCE) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = common::noise(FS as usize, 0.1, 3);
    let body = format!(
        r#"local s = session {{ title = "p" }}
s:stem("mix", "in.wav"):chain {{
  plugin {{ id = "trim", lv2 = "{BALANCE}", params = {{ trim = -6 }} }},
}}:to(s:output())
s:deliver {{ file = "out.wav", bits = 32 }}
return s
"#
    );
    let out = render_recipe(dir.path(), &body, &input);
    for c in 0..2 {
        let delta = rms_db(&out[c][..input[c].len()]) - rms_db(&input[c]);
        assert!(
            (delta + 6.0).abs() < 0.01,
            "channel {c}: {delta:.4} dB, not -6"
        );
    }
}

#[test]
fn an_automated_plugin_parameter_follows_its_curve() {
    if !installed(BALANCE) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = common::noise(2 * FS as usize, 0.1, 4);
    let body = format!(
        r#"local s = session {{ title = "p" }}
s:stem("mix", "in.wav"):chain {{
  plugin {{ id = "trim", lv2 = "{BALANCE}" }},
}}:to(s:output())
s:automate("trim.trim", {{ {{ 0.5, 0 }}, {{ 1.0, -12 }} }})
s:deliver {{ file = "out.wav", bits = 32 }}
return s
"#
    );
    let out = render_recipe(dir.path(), &body, &input);
    let fs = FS as usize;
    let level = |a: usize, b: usize| rms_db(&out[0][a..b]) - rms_db(&input[0][a..b]);
    assert!(
        level(0, fs / 2).abs() < 0.01,
        "before the ramp: {}",
        level(0, fs / 2)
    );
    assert!(
        (level(fs + fs / 10, 2 * fs) + 12.0).abs() < 0.05,
        "after the ramp: {}",
        level(fs + fs / 10, 2 * fs)
    );
    let mid = level(fs / 2 + fs / 4 - 480, fs / 2 + fs / 4 + 480);
    assert!((mid + 6.0).abs() < 0.5, "half way down the ramp: {mid}");
}

#[test]
fn a_plugins_reported_latency_is_compensated_against_the_dry_path() {
    if !installed(NODELAY) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = vec![common::noise(FS as usize, 0.25, 5).swap_remove(0)];
    // The plugin delays by 300 samples and reports it; the dry path, inverted, meets it on a bus.
    let body = format!(
        r#"local s = session {{ title = "p" }}
local mix = s:stem("mix", "in.wav", {{ channels = 1 }})
local bus = s:bus("sum", {{ channels = 1 }})
mix:chain {{ plugin {{ id = "late", lv2 = "{NODELAY}", params = {{ delay = 300 }} }} }}:to(bus)
mix:chain {{ gain {{ id = "dry", invert = 1 }} }}:to(bus)
bus:to(s:output("main", {{ channels = 1 }}))
s:deliver {{ file = "out.wav", bits = 32 }}
return s
"#
    );
    let out = render_recipe(dir.path(), &body, &input);
    let residual = rms_db(&out[0][..input[0].len()]);
    assert!(
        residual < -120.0,
        "the two paths do not null: {residual:.1} dBFS"
    );
}

#[test]
fn the_active_bypass_passes_the_input_delayed_by_the_latency() {
    if !installed(NODELAY) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = vec![common::noise(FS as usize / 2, 0.25, 6).swap_remove(0)];
    let body = format!(
        r#"local s = session {{ title = "p" }}
s:stem("mix", "in.wav", {{ channels = 1 }}):chain {{
  plugin {{ id = "late", lv2 = "{NODELAY}", params = {{ delay = 64, active = 0 }} }},
}}:to(s:output("main", {{ channels = 1 }}))
s:deliver {{ file = "out.wav", bits = 32 }}
return s
"#
    );
    let out = render_recipe(dir.path(), &body, &input);
    let n = input[0].len();
    let as_f32: Vec<f64> = input[0].iter().map(|&x| f64::from(x as f32)).collect();
    assert_eq!(
        &out[0][..n],
        &as_f32[..],
        "bypassed, the output is the input, in time"
    );
}

#[test]
fn a_true_peak_limiter_plugin_keeps_its_threshold() {
    if !installed(DPL) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Music-like material: partials below 8 kHz (full-band noise has no well-defined true peak).
    let input: Vec<Vec<f64>> = (0..2)
        .map(|c| {
            (0..FS as usize)
                .map(|n| {
                    let t = n as f64 / f64::from(FS);
                    (1..=12)
                        .map(|k| {
                            let f = 97.0 * k as f64 * (1.0 + 0.13 * c as f64);
                            0.12 / (k as f64).sqrt()
                                * (std::f64::consts::TAU * f * t + k as f64).sin()
                        })
                        .sum::<f64>()
                })
                .collect()
        })
        .collect();
    let body = format!(
        r#"local s = session {{ title = "p" }}
s:stem("mix", "in.wav"):chain {{
  plugin {{ id = "dpl", lv2 = "{DPL}", params = {{ gain = 12, threshold = -3, truepeak = 1 }} }},
}}:to(s:output())
s:deliver {{ file = "out.wav", bits = 32 }}
return s
"#
    );
    let out = render_recipe(dir.path(), &body, &input);
    let mut meter = TruePeakMeter::new(f64::from(FS), 2, 8);
    meter.push(&[&out[0][..], &out[1][..]]);
    let tp = meter.true_peak_dbtp();
    eprintln!("true peak: {tp:.3} dBTP");
    assert!(
        tp <= -3.0 + 0.1,
        "true peak {tp:.2} dBTP over the -3 dBTP threshold"
    );
    assert!(tp > -4.0, "the limiter is not driven: {tp:.2} dBTP");
    if let Some(ffmpeg_tp) = ffmpeg_true_peak(&dir.path().join("out/out.wav")) {
        assert!(ffmpeg_tp <= -3.0 + 0.1, "ffmpeg reads {ffmpeg_tp:.2} dBTP");
    }
}

/// ffmpeg's true peak of a file, or None when ffmpeg is missing (which fails under CI).
fn ffmpeg_true_peak(path: &Path) -> Option<f64> {
    let out = match std::process::Command::new("ffmpeg")
        .args(["-nostats", "-hide_banner", "-i"])
        .arg(path)
        .args(["-af", "ebur128=peak=true", "-f", "null", "-"])
        .output()
    {
        Ok(o) => o,
        Err(_) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "ffmpeg is needed under CI"
            );
            eprintln!("ffmpeg not installed: skipping the independent measurement");
            return None;
        }
    };
    let text = String::from_utf8_lossy(&out.stderr);
    let summary = &text[text.rfind("Summary:")?..];
    let at = summary.find("Peak:")? + "Peak:".len();
    summary[at..].split_whitespace().next()?.parse().ok()
}

#[test]
fn an_unknown_uri_gives_the_closest_installed_names_and_the_line() {
    if !installed(BALANCE) {
        return;
    }
    let msg = recipe_error(
        "local s = session {}\ns:stem('a', 'a.wav'):chain {\n  plugin { lv2 = 'http://gareus.org/oss/lv2/balanse' },\n}:to(s:output())\nreturn s\n",
    );
    assert!(msg.contains("song.lua:3"), "{msg}");
    assert!(msg.contains(BALANCE), "{msg}");
}

#[test]
fn a_parameter_out_of_range_lists_the_plugins_parameters() {
    if !installed(BALANCE) {
        return;
    }
    let msg = recipe_error(&format!(
        "local s = session {{}}\ns:stem('a', 'a.wav'):chain {{\n  plugin {{ lv2 = '{BALANCE}', params = {{ trim = 40 }} }},\n}}:to(s:output())\nreturn s\n"
    ));
    assert!(msg.contains("song.lua:3"), "{msg}");
    assert!(
        msg.contains("trim") && msg.contains("-20") && msg.contains("20"),
        "{msg}"
    );
    assert!(
        msg.contains("balance") && msg.contains("monoswap"),
        "the list: {msg}"
    );
    let msg = recipe_error(&format!(
        "local s = session {{}}\ns:stem('a', 'a.wav'):chain {{\n  plugin {{ lv2 = '{BALANCE}', params = {{ trm = 1 }} }},\n}}:to(s:output())\nreturn s\n"
    ));
    assert!(
        msg.contains("song.lua:3") && msg.contains("did you mean `trim`"),
        "{msg}"
    );
}

#[test]
fn a_mono_plugin_on_a_stereo_stem_is_refused() {
    if !installed(NODELAY) {
        return;
    }
    let msg = recipe_error(&format!(
        "local s = session {{}}\ns:stem('a', 'a.wav'):chain {{\n\n  plugin {{ lv2 = '{NODELAY}' }},\n}}:to(s:output())\nreturn s\n"
    ));
    assert!(msg.contains("song.lua:4"), "{msg}");
    assert!(
        msg.contains("mono plugin") && msg.contains("stereo signal"),
        "{msg}"
    );
}

#[test]
fn a_missing_state_file_is_named() {
    if !installed(BALANCE) {
        return;
    }
    let msg = recipe_error(&format!(
        "local s = session {{}}\ns:stem('a', 'a.wav'):chain {{\n  plugin {{ lv2 = '{BALANCE}', state = 'nowhere.ttl' }},\n}}:to(s:output())\nreturn s\n"
    ));
    assert!(
        msg.contains("song.lua:3") && msg.contains("nowhere.ttl"),
        "{msg}"
    );
}

#[test]
fn a_latency_the_plugin_does_not_report_is_measured_and_warned_about() {
    if !installed(NODELAY) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = vec![common::noise(FS as usize / 4, 0.25, 8).swap_remove(0)];
    // Mode 0 delays without reporting: the impulse finds the 200 samples the port does not say.
    let body = format!(
        r#"local s = session {{ title = "p" }}
s:stem("mix", "in.wav", {{ channels = 1 }}):chain {{
  plugin {{ id = "late", lv2 = "{NODELAY}", params = {{ delay = 200, report_latency = 0 }} }},
}}:to(s:output("main", {{ channels = 1 }}))
s:deliver {{ file = "out.wav", bits = 32 }}
return s
"#
    );
    render_recipe(dir.path(), &body, &input);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("out/report.json")).unwrap())
            .unwrap();
    let warnings = report["warnings"].to_string();
    assert!(
        warnings.contains("song.lua:3")
            && warnings
                .contains("reports a latency of 0 samples but its impulse response peaks at 200"),
        "{warnings}"
    );
}

/// A prepared plugin node (mono) with its parameters at their starting values.
fn unit(config: &ProcessorConfig, block: usize) -> (Box<dyn Processor>, Vec<ParamSlot>) {
    let built = registry::build_at("plugin", config, 1, f64::from(FS), block).unwrap();
    let mut p = built.processor;
    p.prepare(&ProcessSpec {
        sample_rate: f64::from(FS),
        max_block: block,
        input_channels: 1,
    });
    let slots = built
        .initial
        .iter()
        .map(|&v| ParamSlot::new(v, block))
        .collect();
    (p, slots)
}

/// Runs frames `from..to` of `x` through `p` in blocks of `block`.
fn run_unit(
    p: &mut dyn Processor,
    slots: &[ParamSlot],
    x: &[f64],
    from: usize,
    to: usize,
    block: usize,
) -> Vec<f64> {
    let mut out = Vec::new();
    let mut buf = AudioBuffer::new(1, block);
    let mut at = from;
    while at < to {
        let n = block.min(to - at);
        buf.channel_mut(0, n).copy_from_slice(&x[at..at + n]);
        let (_, violations) = common::alloc_violations(|| {
            assert_no_alloc::assert_no_alloc(|| {
                p.process(&mut buf.view_mut(n), None, ParamBlock::new(slots))
            })
        });
        assert_eq!(violations, 0, "the host's side of process allocated");
        out.extend_from_slice(buf.channel(0, n));
        at += n;
    }
    out
}

#[test]
fn a_parameter_reload_moves_the_running_instance_over() {
    if !installed(NODELAY) {
        return;
    }
    let block = 64;
    let x = common::noise(12_000, 0.3, 9).swap_remove(0);
    let config = ProcessorConfig::new()
        .text("lv2", NODELAY)
        .num("delay", 500.0);
    let (mut reference, slots) = unit(&config, block);
    let (mut old, _) = unit(&config, block);
    let (mut new, _) = unit(&config, block);
    let expected = run_unit(reference.as_mut(), &slots, &x, 0, 12_000, block);
    let before = run_unit(old.as_mut(), &slots, &x, 0, 6_000, block);
    assert_eq!(before[..], expected[..6_000]);
    assert!(
        !new.take_state(old.as_mut(), Handover::Copy),
        "a plugin cannot be copied"
    );
    let (took, violations) = common::alloc_violations(|| {
        assert_no_alloc::assert_no_alloc(|| new.take_state(old.as_mut(), Handover::Move))
    });
    assert!(
        took && violations == 0,
        "the move must happen, without allocating"
    );
    let after = run_unit(new.as_mut(), &slots, &x, 6_000, 12_000, block);
    assert_eq!(
        after[..],
        expected[6_000..],
        "the moved instance goes on as if nothing happened"
    );
    // A fresh instance would not: its delay line is empty.
    let (mut fresh, _) = unit(&config, block);
    let cold = run_unit(fresh.as_mut(), &slots, &x, 6_000, 12_000, block);
    assert_ne!(cold[..600], expected[6_000..6_600]);
}

#[test]
fn an_automated_lsp_compressor_reduces_by_its_ratio() {
    const COMP: &str = "http://lsp-plug.in/plugins/lv2/compressor_stereo";
    if !installed(COMP) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let fs = FS as usize;
    // A steady 1 kHz sine at -6 dBFS peak (-9 dBFS RMS), 11 dB over a -20 dB threshold.
    let sine: Vec<f64> = (0..3 * fs)
        .map(|n| 0.5 * (std::f64::consts::TAU * 1000.0 * n as f64 / f64::from(FS)).sin())
        .collect();
    let input = vec![sine.clone(), sine];
    // The ratio is automated from 1:1 (no compression) to 4:1 at one second; RMS detection,
    // hard knee, fast attack and release.
    let body = format!(
        r#"local s = session {{ title = "p" }}
s:stem("mix", "in.wav"):chain {{
  plugin {{ id = "comp", lv2 = "{COMP}", params = {{ al = 0.1, kn = 1, at = 1, rt = 20, scm = 1, cr = 1 }} }},
}}:to(s:output())
s:automate("comp.cr", {{ {{ 1.0, 1 }}, {{ 1.01, 4 }} }})
s:deliver {{ file = "out.wav", bits = 32 }}
return s
"#
    );
    let out = render_recipe(dir.path(), &body, &input);
    let level = |a: usize, b: usize| rms_db(&out[0][a..b]);
    let open = level(fs / 2, fs - fs / 10);
    let compressed = level(2 * fs, 3 * fs);
    assert!(
        (open - rms_db(&input[0][..fs])).abs() < 0.1,
        "1:1 changes the level: {open}"
    );
    // Static curve: 11 dB over the threshold at 4:1 leaves 2.75 dB: 8.25 dB of gain reduction.
    let reduction = open - compressed;
    eprintln!("gain reduction at 4:1: {reduction:.2} dB");
    assert!(
        (reduction - 8.25).abs() < 0.5,
        "gain reduction {reduction:.2} dB, expected 8.25"
    );
}

#[test]
fn the_lv2_example_recipe_renders_under_its_true_peak_threshold() {
    if !installed("http://lsp-plug.in/plugins/lv2/compressor_stereo") || !installed(DPL) {
        return;
    }
    // Laid out like the repository after `make demo`: scripts/ and demo/stems/mix.wav.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("scripts")).unwrap();
    std::fs::create_dir_all(dir.path().join("demo/stems")).unwrap();
    let recipe = dir.path().join("scripts/lv2_master.lua");
    std::fs::write(&recipe, include_str!("../scripts/lv2_master.lua")).unwrap();
    let fs = FS as usize;
    let mix: Vec<Vec<f64>> = (0..2)
        .map(|c| {
            (0..12 * fs)
                .map(|n| {
                    let t = n as f64 / f64::from(FS);
                    let beat = (-8.0 * (t % 0.5)).exp();
                    0.5 * beat * (std::f64::consts::TAU * 55.0 * t).sin()
                        + 0.2 * (std::f64::consts::TAU * (440.0 + 3.0 * c as f64) * t).sin()
                })
                .collect()
        })
        .collect();
    write_wav(&dir.path().join("demo/stems/mix.wav"), &mix);
    let session = load_recipe(&recipe).unwrap_or_else(|e| panic!("{e}"));
    let out = dir.path().join("out");
    render(&session, RenderOptions::new(&out)).unwrap_or_else(|e| panic!("{e}"));
    let mut r = hound::WavReader::open(out.join("LV2 Master 24bit.wav")).unwrap();
    let v: Vec<f64> = r
        .samples::<i32>()
        .map(|s| f64::from(s.unwrap()) / 8_388_608.0)
        .collect();
    let planar: Vec<Vec<f64>> = (0..2)
        .map(|c| v.iter().skip(c).step_by(2).copied().collect())
        .collect();
    let mut meter = TruePeakMeter::new(f64::from(FS), 2, 8);
    meter.push(&[&planar[0][..], &planar[1][..]]);
    let tp = meter.true_peak_dbtp();
    assert!(tp <= -1.0 + 0.1, "{tp:.2} dBTP");
    assert!(tp > -3.0, "the limiter is not reached: {tp:.2} dBTP");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let nodes: Vec<&str> = report["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["node"].as_str().unwrap())
        .collect();
    assert_eq!(nodes, ["glue", "limit"]);
}

/// Renders `body` with `--twice`; the report's `determinism`.
fn determinism(dir: &Path, body: &str, input: &[Vec<f64>]) -> serde_json::Value {
    write_wav(&dir.join("in.wav"), input);
    let path = dir.join("song.lua");
    std::fs::write(&path, body).unwrap();
    let session = load_recipe(&path).unwrap_or_else(|e| panic!("{e}"));
    let out = dir.join("out");
    let mut opts = RenderOptions::new(&out);
    opts.twice = true;
    let result = render(&session, opts).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !out.join(".stemgraph-tmp").exists(),
        "the second render is cleaned up"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(
        serde_json::to_value(&result.report.unwrap().determinism).unwrap(),
        report["determinism"]
    );
    report
}

#[test]
fn render_twice_says_whether_two_renders_were_identical() {
    const NOISE: &str = "http://lsp-plug.in/plugins/lv2/noise_generator_x1";
    if !installed(NODELAY) || !installed(NOISE) {
        return;
    }
    let input = vec![common::noise(FS as usize / 2, 0.25, 10).swap_remove(0)];
    let recipe = |plugin: &str| {
        format!(
            "local s = session {{ title = \"p\" }}\ns:stem(\"mix\", \"in.wav\", {{ channels = 1 }}):chain {{ {plugin} }}:to(s:output(\"main\", {{ channels = 1 }}))\ns:deliver {{ file = \"out.wav\", bits = 32 }}\nreturn s\n"
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let same = determinism(
        dir.path(),
        &recipe(&format!(
            "plugin {{ lv2 = \"{NODELAY}\", params = {{ delay = 100 }} }}"
        )),
        &input,
    );
    assert_eq!(
        same["determinism"]["identical"], true,
        "{}",
        same["determinism"]
    );
    // LSP's noise generator draws new noise in every instance.
    let dir = tempfile::tempdir().unwrap();
    let noisy = determinism(
        dir.path(),
        &recipe(&format!(
            "plugin {{ lv2 = \"{NOISE}\", params = {{ na_1 = 0.1 }} }}"
        )),
        &input,
    );
    assert_eq!(
        noisy["determinism"]["identical"], false,
        "{}",
        noisy["determinism"]
    );
    assert_eq!(noisy["determinism"]["differing"][0], "out.wav");
    assert!(
        noisy["warnings"].to_string().contains("not deterministic"),
        "{}",
        noisy["warnings"]
    );
}
