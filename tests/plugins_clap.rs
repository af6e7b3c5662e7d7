//! CLAP plugins as graph nodes, with the repository's own CLAP test plugins
//! (`plugins/clap-testgain`, built by the test with cargo: a gain that takes sample-accurate
//! parameter events, reports a 64-sample latency and saves its state; stereo, mono and
//! stereo + side-chain key): the level against the setting, an automation step landing on its
//! exact sample (against the native gain under the same automation), the latency compensated (a
//! null test), state saved with `stemgraph plugin save-state` and restored, `render --twice`,
//! the side-chain input, `stemgraph plugins` listing them, the host's side of `process` free of
//! allocation, and the recipe mistakes (unknown id, wrong path, parameter out of range, mono
//! plugin on a stereo stem, missing state file), each with the recipe's file and line.
//!
//! Nothing here is skipped: the plugins are built from the repository.
use crate::common;
use crate::plugin_util;

use std::path::{Path, PathBuf};
use std::process::Command;
use stemgraph::dsp::param::ParamSlot;
use stemgraph::dsp::registry;
use stemgraph::dsp::{AudioBuffer, ParamBlock, ProcessSpec, ProcessorConfig};
use stemgraph::graph::{compile, CompileOptions};
use stemgraph::render::{render, RenderOptions};
use stemgraph::script::load_recipe;

const GAIN: &str = "org.stemgraph.testgain-stereo";
const MONO: &str = "org.stemgraph.testgain-mono";
const KEY: &str = "org.stemgraph.testgain-key";
const BROKEN: &str = "org.stemgraph.testgain-broken";
/// The test plugins' internal delay, which they report.
const LATENCY: usize = 64;
const FS: u32 = 48_000;

fn bundle() -> PathBuf {
    plugin_util::clap_bundle()
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

/// Writes the stem `in.wav` and the recipe; renders it into `dir/out`; returns `out.wav`.
fn render_in(dir: &Path, body: &str, input: &[Vec<f64>], twice: bool) -> Vec<Vec<f64>> {
    write_wav(&dir.join("in.wav"), input);
    let path = dir.join("song.lua");
    std::fs::write(&path, body).unwrap();
    let session = load_recipe(&path).unwrap_or_else(|e| panic!("{e}"));
    let out = dir.join("out");
    let mut opts = RenderOptions::new(&out);
    opts.block_size = 512;
    opts.twice = twice;
    render(&session, opts).unwrap_or_else(|e| panic!("{e}"));
    read_wav(&out.join("out.wav"))
}

fn report(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("out/report.json")).unwrap()).unwrap()
}

fn rms_db(x: &[f64]) -> f64 {
    let ms = x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64;
    10.0 * ms.log10()
}

/// A stereo recipe: the stem through `chain` (Lua) into the output; `extra` after the chain.
fn stereo(chain: &str, extra: &str) -> String {
    format!(
        "local s = session {{ title = \"p\" }}\n\
         s:stem(\"mix\", \"in.wav\"):chain {{\n  {chain},\n}}:to(s:output())\n\
         {extra}\n\
         s:deliver {{ file = \"out.wav\", bits = 32 }}\nreturn s\n"
    )
}

/// The test gain `id` as a plugin node with id `node` and extra fields `more` (Lua).
fn clap(node: &str, id: &str, more: &str) -> String {
    format!(
        "plugin {{ id = \"{node}\", clap = \"{id}\", path = \"{}\"{more} }}",
        bundle().display()
    )
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
fn the_clap_gain_changes_the_level_by_its_setting_in_time() {
    let dir = tempfile::tempdir().unwrap();
    let input = common::noise(FS as usize / 2, 0.1, 3);
    let body = stereo(&clap("g", GAIN, ", params = { gain_db = -6 }"), "");
    let out = render_in(dir.path(), &body, &input, false);
    let g = 10f64.powf(-6.0 / 20.0);
    for c in 0..2 {
        let n = input[c].len();
        let delta = rms_db(&out[c][..n]) - rms_db(&input[c]);
        assert!((delta + 6.0).abs() < 1e-3, "channel {c}: {delta:.5} dB");
        // Sample by sample, in time: the plugin's 64-sample delay is compensated.
        let worst = (0..n)
            .map(|i| (out[c][i] - input[c][i] * g).abs())
            .fold(0.0, f64::max);
        assert!(
            worst < 1e-6,
            "channel {c}: off by {worst} from the input × gain"
        );
    }
    let r = report(dir.path());
    assert_eq!(r["plugins"][0]["uri"], GAIN);
    assert!(
        !r["warnings"].to_string().contains("latency"),
        "{}",
        r["warnings"]
    );
}

#[test]
fn an_automation_step_lands_on_its_exact_sample() {
    let dir = tempfile::tempdir().unwrap();
    let input = common::noise(FS as usize, 0.1, 4);
    // A step at 0.5 s + 7 samples (not on a block or a 16-frame slice), and a ramp: the plugin
    // and the native gain get the same curve; the plugin's events carry the sample offsets.
    let t = 0.5 + 7.0 / f64::from(FS);
    let points =
        format!("{{ {{ 0, 0, \"step\" }}, {{ {t}, -12 }}, {{ 0.8, -12 }}, {{ 0.9, 3 }} }}");
    let body = stereo(
        &format!(
            "{},\n  gain {{ id = \"n\", gain_db = 0 }}",
            clap("g", GAIN, "")
        ),
        &format!("s:automate(\"g.gain_db\", {points})"),
    );
    let plugin = render_in(dir.path(), &body, &input, false);
    let dir2 = tempfile::tempdir().unwrap();
    let body = stereo(
        &format!(
            "{},\n  gain {{ id = \"n\", gain_db = 0 }}",
            clap("g", GAIN, "")
        ),
        &format!("s:automate(\"n.gain_db\", {points})"),
    );
    let native = render_in(dir2.path(), &body, &input, false);
    let n = input[0].len();
    let first_change = |y: &[f64]| (0..n).find(|&i| (y[i] - input[0][i]).abs() > 1e-7);
    let step = first_change(&native[0]).expect("the native gain follows the step");
    assert!(
        step % 16 != 0 && step % 512 != 0,
        "the step must fall inside a slice: {step}"
    );
    assert_eq!(
        first_change(&plugin[0]),
        Some(step),
        "the plugin's output changes on the native gain's sample"
    );
    for c in 0..2 {
        let worst = (0..n)
            .map(|i| (plugin[c][i] - native[c][i]).abs())
            .fold(0.0, f64::max);
        assert!(
            worst < 1e-6,
            "channel {c}: the plugin differs from the native gain by {worst}"
        );
    }
}

#[test]
fn the_reported_latency_is_compensated_in_a_null_test() {
    let dir = tempfile::tempdir().unwrap();
    let input = vec![common::noise(FS as usize / 2, 0.25, 5).swap_remove(0)];
    // The plugin path (64 samples late inside, reported) against the dry path inverted: the
    // graph delays the dry path by the reported latency, so the two meet in time and null.
    let body = format!(
        r#"local s = session {{ title = "p" }}
local mix = s:stem("mix", "in.wav", {{ channels = 1 }})
local bus = s:bus("sum", {{ channels = 1 }})
mix:chain {{ {} }}:to(bus)
mix:chain {{ gain {{ id = "dry", invert = 1 }} }}:to(bus)
bus:to(s:output("main", {{ channels = 1 }}))
s:deliver {{ file = "out.wav", bits = 32 }}
return s
"#,
        clap("late", MONO, "")
    );
    let out = render_in(dir.path(), &body, &input, false);
    let residual = rms_db(&out[0][..input[0].len()]);
    assert!(
        residual < -120.0,
        "the paths do not null: {residual:.1} dBFS"
    );
    // Without the compensation the paths would be 64 samples apart: that residual is loud.
    let x = &input[0];
    let apart: Vec<f64> = (LATENCY..x.len()).map(|i| x[i - LATENCY] - x[i]).collect();
    assert!(rms_db(&apart) > -20.0);
    // The impulse measured what the plugin reports: no warning.
    let warnings = report(dir.path())["warnings"].to_string();
    assert!(!warnings.contains("latency"), "{warnings}");
}

#[test]
fn a_saved_state_restores_the_same_render() {
    let dir = tempfile::tempdir().unwrap();
    let input = common::noise(FS as usize / 4, 0.1, 6);
    write_wav(&dir.path().join("in.wav"), &input);
    let with_params = stereo(&clap("g", GAIN, ", params = { gain_db = -9.5 }"), "");
    std::fs::write(dir.path().join("song.lua"), &with_params).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_stemgraph"))
        .args(["plugin", "save-state"])
        .arg(dir.path().join("song.lua"))
        .arg("g")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let state = dir.path().join("g.state.hex");
    let text = std::fs::read_to_string(&state).unwrap();
    assert!(
        text.starts_with(&format!("# stemgraph CLAP plugin state: {GAIN}\n")),
        "{text}"
    );
    let expected = render_in(dir.path(), &with_params, &input, false);
    // The state alone (no parameter in the recipe) gives the same render, bit for bit.
    let dir2 = tempfile::tempdir().unwrap();
    std::fs::copy(&state, dir2.path().join("g.state.hex")).unwrap();
    let restored = render_in(
        dir2.path(),
        &stereo(&clap("g", GAIN, ", state = \"g.state.hex\""), ""),
        &input,
        false,
    );
    assert_eq!(restored, expected);
    // The report names the state file and its hash.
    let r = report(dir2.path());
    let sha = stemgraph::dsp::plugin::state::sha256_hex(text.as_bytes());
    assert_eq!(
        r["plugins"][0]["state"]["sha256"],
        sha.as_str(),
        "{}",
        r["plugins"]
    );
    let plain = render_in(
        dir2.path(),
        &stereo(&clap("g", GAIN, ""), ""),
        &input,
        false,
    );
    assert_ne!(plain, expected, "without the state the gain is 0 dB");
}

#[test]
fn render_twice_finds_the_clap_gain_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let input = common::noise(FS as usize / 4, 0.1, 7);
    let body = stereo(&clap("g", GAIN, ", params = { gain_db = -3 }"), "");
    render_in(dir.path(), &body, &input, true);
    let d = &report(dir.path())["determinism"];
    assert_eq!(d["identical"], true, "{d}");
}

#[test]
fn the_side_chain_key_feeds_the_plugins_second_input() {
    let dir = tempfile::tempdir().unwrap();
    let a = common::noise(FS as usize / 4, 0.1, 8);
    let b = common::noise(FS as usize / 4, 0.1, 9);
    write_wav(&dir.path().join("key.wav"), &b);
    // The key variant adds its key input to its main input before the gain.
    let body = format!(
        "local s = session {{ title = \"p\" }}\n\
         local k = s:stem(\"k\", \"key.wav\")\n\
         local m = s:stem(\"mix\", \"in.wav\")\n\
         local p = s:processor({}, \"g\")\n\
         m:to(p)\n\
         k:key(p)\n\
         p:to(s:output())\n\
         s:deliver {{ file = \"out.wav\", bits = 32 }}\nreturn s\n",
        clap("g", KEY, ", params = { gain_db = -6 }")
    );
    let out = render_in(dir.path(), &body, &a, false);
    let g = 10f64.powf(-6.0 / 20.0);
    for c in 0..2 {
        let worst = (0..a[c].len())
            .map(|i| (out[c][i] - (a[c][i] + b[c][i]) * g).abs())
            .fold(0.0, f64::max);
        assert!(
            worst < 1e-6,
            "channel {c}: off by {worst} from (main + key) × gain"
        );
    }
}

#[test]
fn stemgraph_plugins_lists_the_clap_plugins_with_their_latency() {
    let dir = bundle().parent().unwrap().to_path_buf();
    let out = Command::new(env!("CARGO_BIN_EXE_stemgraph"))
        .args(["plugins", "--json", "stemgraph.testgain"])
        .env("CLAP_PATH", &dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["uri"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [BROKEN, KEY, MONO, GAIN], "{listed}");
    assert_eq!(listed[0]["status"], "broken", "{}", listed[0]);
    assert!(
        listed[0]["error"]
            .to_string()
            .contains("failed to instantiate"),
        "{}",
        listed[0]
    );
    for l in &listed.as_array().unwrap()[1..] {
        assert_eq!(l["format"], "clap");
        assert_eq!(l["status"], "ok", "{l}");
        assert_eq!(l["latency"], LATENCY, "{l}");
        assert_eq!(l["measured_latency"], LATENCY, "{l}");
        assert_eq!(l["controls"][0]["symbol"], "gain_db");
        assert_eq!(l["controls"][0]["min"], -60.0);
        assert_eq!(l["controls"][0]["max"], 12.0);
    }
    assert_eq!(
        listed[1]["inputs"].as_array().unwrap().len(),
        4,
        "main + key"
    );
}

#[test]
fn a_bundle_that_crashes_the_scan_is_listed_as_broken_and_the_scan_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["a-crashes.clap", "b-fine.clap"] {
        std::fs::copy(bundle(), dir.path().join(name)).unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_stemgraph"))
        .args(["plugins", "--json"])
        .env("CLAP_PATH", dir.path())
        .env("STEMGRAPH_TESTGAIN_CRASH", "a-crashes.clap")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let clap: Vec<&serde_json::Value> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["format"] == "clap")
        .collect();
    let crashed: Vec<_> = clap
        .iter()
        .filter(|l| l["uri"].as_str().unwrap().ends_with("a-crashes.clap"))
        .collect();
    assert_eq!(crashed.len(), 1, "{clap:?}");
    assert_eq!(crashed[0]["status"], "broken");
    assert!(
        crashed[0]["error"].to_string().contains("crashed"),
        "{}",
        crashed[0]
    );
    let fine: Vec<&str> = clap
        .iter()
        .filter(|l| l["status"] == "ok")
        .map(|l| l["uri"].as_str().unwrap())
        .collect();
    assert_eq!(
        fine,
        [KEY, MONO, GAIN],
        "the other bundle is scanned: {clap:?}"
    );
}

#[test]
fn the_active_bypass_passes_the_input_in_time() {
    let dir = tempfile::tempdir().unwrap();
    let input = common::noise(FS as usize / 4, 0.2, 11);
    let body = stereo(
        &clap("g", GAIN, ", params = { gain_db = -20, active = 0 }"),
        "",
    );
    let out = render_in(dir.path(), &body, &input, false);
    for c in 0..2 {
        let n = input[c].len();
        let as_f32: Vec<f64> = input[c].iter().map(|&x| f64::from(x as f32)).collect();
        assert_eq!(&out[c][..n], &as_f32[..], "bypassed: the input, in time");
    }
}

#[test]
fn a_plugin_that_fails_to_instantiate_is_an_error_at_the_line() {
    let msg = recipe_error(&format!(
        "local s = session {{}}\ns:stem('a', 'a.wav'):chain {{\n  {},\n}}:to(s:output())\nreturn s\n",
        clap("g", BROKEN, "")
    ));
    assert!(
        msg.contains("song.lua:3") && msg.contains("failed to instantiate"),
        "{msg}"
    );
}

#[test]
fn an_installed_clap_plugin_is_found_by_id_and_set_from_the_command_line() {
    // Without a `path`, the id is looked up in the CLAP folders (here CLAP_PATH); `--set`
    // reaches the plugin's parameter.
    let clap_path = bundle().parent().unwrap().to_path_buf();
    let dir = tempfile::tempdir().unwrap();
    let input = common::noise(4800, 0.1, 1);
    write_wav(&dir.path().join("in.wav"), &input);
    std::fs::write(
        dir.path().join("song.lua"),
        stereo(&format!("plugin {{ id = \"g\", clap = \"{GAIN}\" }}"), ""),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_stemgraph"))
        .arg("render")
        .arg(dir.path().join("song.lua"))
        .arg("--out")
        .arg(dir.path().join("out"))
        .args(["--set", "g.gain_db=-12"])
        .env("CLAP_PATH", &clap_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let y = read_wav(&dir.path().join("out/out.wav"));
    let delta = rms_db(&y[0][..input[0].len()]) - rms_db(&input[0]);
    assert!((delta + 12.0).abs() < 1e-3, "{delta}");
}

#[test]
fn the_hosts_side_of_process_does_not_allocate() {
    let block = 256;
    let config = ProcessorConfig::new()
        .text("clap", MONO)
        .text("path", &bundle().display().to_string())
        .num("gain_db", -6.0);
    let built = registry::build_at("plugin", &config, 1, f64::from(FS), block).unwrap();
    let mut p = built.processor;
    p.prepare(&ProcessSpec {
        sample_rate: f64::from(FS),
        max_block: block,
        input_channels: 1,
    });
    let mut slots: Vec<ParamSlot> = built
        .initial
        .iter()
        .map(|&v| ParamSlot::new(v, block))
        .collect();
    let x = common::noise(block * 8, 0.2, 2).swap_remove(0);
    let mut buf = AudioBuffer::new(1, block);
    let mut out = Vec::new();
    for b in 0..8 {
        // Blocks 2 and 3: a ramp on gain_db from -6 to -20 dB (a value per frame: an event per
        // frame), then -20 dB.
        let slot = &mut slots[1];
        slot.constant = !(2..4).contains(&b);
        if slot.constant {
            slot.value = if b < 2 { -6.0 } else { -20.0 };
        } else {
            for (n, v) in slot.values.iter_mut().enumerate() {
                *v = -6.0 - 14.0 * ((b - 2) * block + n + 1) as f64 / (2 * block) as f64;
            }
        }
        buf.channel_mut(0, block)
            .copy_from_slice(&x[b * block..(b + 1) * block]);
        let (_, violations) = common::alloc_violations(|| {
            assert_no_alloc::assert_no_alloc(|| {
                p.process(&mut buf.view_mut(block), None, ParamBlock::new(&slots))
            })
        });
        assert_eq!(violations, 0, "the host's side of process allocated");
        out.extend_from_slice(buf.channel(0, block));
    }
    // The output is the input × the gain, 64 samples late (a unit on its own: no compensation).
    let g = |db: f64| 10f64.powf(db / 20.0);
    for i in LATENCY..2 * block {
        assert!((out[i] - x[i - LATENCY] * g(-6.0)).abs() < 1e-6, "{i}");
    }
    let end = 8 * block;
    assert!((out[end - 1] - x[end - 1 - LATENCY] * g(-20.0)).abs() < 1e-6);
}

#[test]
fn an_unknown_id_gives_the_closest_ids_and_the_line() {
    let msg = recipe_error(&format!(
        "local s = session {{}}\ns:stem('a', 'a.wav'):chain {{\n  {},\n}}:to(s:output())\nreturn s\n",
        clap("g", "org.stemgraph.testgain-sterio", "")
    ));
    assert!(msg.contains("song.lua:3"), "{msg}");
    assert!(
        msg.contains(&format!(
            "has no plugin `org.stemgraph.testgain-sterio`; the closest: `{GAIN}`"
        )),
        "{msg}"
    );
}

#[test]
fn a_wrong_bundle_path_is_named_with_the_line() {
    let msg = recipe_error(
        "local s = session {}\ns:stem('a', 'a.wav'):chain {\n  plugin { clap = 'org.stemgraph.testgain', path = 'nowhere/x.clap' },\n}:to(s:output())\nreturn s\n",
    );
    assert!(
        msg.contains("song.lua:3") && msg.contains("nowhere/x.clap"),
        "{msg}"
    );
}

#[test]
fn a_parameter_out_of_range_lists_the_plugins_parameters() {
    let msg = recipe_error(&format!(
        "local s = session {{}}\ns:stem('a', 'a.wav'):chain {{\n  {},\n}}:to(s:output())\nreturn s\n",
        clap("g", GAIN, ", params = { gain_db = 40 }")
    ));
    assert!(msg.contains("song.lua:3"), "{msg}");
    assert!(
        msg.contains("gain_db (-60 … 12, default 0)"),
        "the list of parameters: {msg}"
    );
    let msg = recipe_error(&format!(
        "local s = session {{}}\ns:stem('a', 'a.wav'):chain {{\n  {},\n}}:to(s:output())\nreturn s\n",
        clap("g", GAIN, ", params = { gain_dB = 1 }")
    ));
    assert!(
        msg.contains("song.lua:3") && msg.contains("did you mean `gain_db`"),
        "{msg}"
    );
}

#[test]
fn a_mono_plugin_on_a_stereo_stem_is_refused() {
    let msg = recipe_error(&format!(
        "local s = session {{}}\ns:stem('a', 'a.wav'):chain {{\n\n  {},\n}}:to(s:output())\nreturn s\n",
        clap("g", MONO, "")
    ));
    assert!(msg.contains("song.lua:4"), "{msg}");
    assert!(
        msg.contains("mono plugin") && msg.contains("stereo signal"),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("`{GAIN}`")),
        "the stereo variant is named: {msg}"
    );
}

#[test]
fn a_missing_state_file_is_named() {
    let msg = recipe_error(&format!(
        "local s = session {{}}\ns:stem('a', 'a.wav'):chain {{\n  {},\n}}:to(s:output())\nreturn s\n",
        clap("g", GAIN, ", state = 'nowhere.hex'")
    ));
    assert!(
        msg.contains("song.lua:3") && msg.contains("nowhere.hex"),
        "{msg}"
    );
}

#[test]
fn a_state_that_is_not_the_plugins_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.hex"), "# not a state\n0102\n").unwrap();
    let path = dir.path().join("song.lua");
    std::fs::write(
        &path,
        format!(
            "local s = session {{}}\ns:stem('a', 'a.wav'):chain {{\n  {},\n}}:to(s:output())\nreturn s\n",
            clap("g", GAIN, ", state = 'bad.hex'")
        ),
    )
    .unwrap();
    let s = load_recipe(&path).unwrap();
    let msg = compile(&s.graph_at(48_000.0), CompileOptions::new(48_000.0, 512))
        .err()
        .expect("refused")
        .to_string();
    assert!(
        msg.contains("song.lua:3") && msg.contains("cannot be restored"),
        "{msg}"
    );
}
