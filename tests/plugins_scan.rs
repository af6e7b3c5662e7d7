//! `stemgraph plugins` and `stemgraph plugin save-state` on a bundle of three tiny LV2 plugins
//! built here from `tests/fixtures/lv2` with the C compiler (a gain, one whose instantiation
//! fails, one that crashes the process when instantiated), found through `LV2_PATH`:
//! the scan lists the crashing plugin as broken and goes on with the rest (it probes in a
//! child process), a recipe that uses the failing one gets an error with its file and line, and
//! a saved state restores the parameter values, with its hash in the render report.

use crate::plugin_util;

use plugin_util::bundle;
use std::path::Path;
use std::process::{Command, Output};

fn stemgraph(lv2: &Path, dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stemgraph"))
        .args(args)
        .current_dir(dir)
        .env("LV2_PATH", lv2)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn a_crashing_plugin_is_listed_as_broken_and_the_scan_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let lv2 = bundle(dir.path());
    let out = stemgraph(&lv2, dir.path(), &["plugins", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let find = |uri: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|p| p["uri"] == uri)
            .unwrap_or_else(|| panic!("{uri} not listed: {list}"))
            .clone()
    };
    let crash = find("urn:stemgraph:test:crash");
    assert_eq!(crash["status"], "broken", "{crash}");
    assert!(
        crash["error"].as_str().unwrap().contains("crashed"),
        "{crash}"
    );
    let refuse = find("urn:stemgraph:test:refuse");
    assert_eq!(refuse["status"], "broken", "{refuse}");
    assert!(
        refuse["error"]
            .as_str()
            .unwrap()
            .contains("failed to instantiate"),
        "{refuse}"
    );
    let gain = find("urn:stemgraph:test:gain");
    assert_eq!(gain["status"], "ok", "{gain}");
    assert_eq!(gain["latency"], 0);
    assert_eq!(gain["controls"][0]["symbol"], "gain");
    assert_eq!(gain["controls"][0]["max"], 2.0);
    assert_eq!(gain["inputs"].as_array().unwrap().len(), 1);
}

fn write_stem(dir: &Path) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 48_000,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut w = hound::WavWriter::create(dir.join("a.wav"), spec).unwrap();
    for n in 0..24_000 {
        w.write_sample(0.25 * (n as f32 * 0.01).sin()).unwrap();
    }
    w.finalize().unwrap();
}

#[test]
fn a_plugin_that_fails_to_instantiate_is_an_error_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let lv2 = bundle(dir.path());
    write_stem(dir.path());
    std::fs::write(
        dir.path().join("song.lua"),
        "local s = session {}\ns:stem('a', 'a.wav', { channels = 1 }):chain {\n\n  plugin { lv2 = 'urn:stemgraph:test:refuse' },\n}:to(s:output('main', { channels = 1 }))\nreturn s\n",
    )
    .unwrap();
    let out = stemgraph(&lv2, dir.path(), &["graph", "song.lua"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("song.lua:4") && err.contains("failed to instantiate"),
        "{err}"
    );
}

#[test]
fn a_saved_state_restores_the_values_and_its_hash_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let lv2 = bundle(dir.path());
    write_stem(dir.path());
    let recipe = |state: &str| {
        format!(
            "local s = session {{}}\ns:stem('a', 'a.wav', {{ channels = 1 }}):chain {{\n  plugin {{ id = 'g', lv2 = 'urn:stemgraph:test:gain'{state} }},\n}}:to(s:output('main', {{ channels = 1 }}))\ns:deliver {{ file = 'out.wav', bits = 32 }}\nreturn s\n"
        )
    };
    std::fs::write(
        dir.path().join("save.lua"),
        recipe(", params = { gain = 0.5 }"),
    )
    .unwrap();
    let out = stemgraph(
        &lv2,
        dir.path(),
        &[
            "plugin",
            "save-state",
            "save.lua",
            "g",
            "--set",
            "g.gain=0.25",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let saved = std::fs::read_to_string(dir.path().join("g.state.ttl")).unwrap();
    assert!(saved.contains("gain") && saved.contains("0.25"), "{saved}");

    std::fs::write(
        dir.path().join("song.lua"),
        recipe(", state = 'g.state.ttl'"),
    )
    .unwrap();
    let out = stemgraph(&lv2, dir.path(), &["graph", "song.lua"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("g.gain = 0.25"),
        "{}",
        text(&out.stdout)
    );

    let out = stemgraph(&lv2, dir.path(), &["render", "song.lua", "--out", "out"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("out/report.json")).unwrap())
            .unwrap();
    let plugin = &report["plugins"][0];
    assert_eq!(plugin["node"], "g", "{report}");
    assert_eq!(plugin["uri"], "urn:stemgraph:test:gain");
    assert_eq!(
        plugin["state"]["sha256"].as_str().unwrap(),
        stemgraph::dsp::plugin::state::sha256_hex(saved.as_bytes())
    );

    std::fs::remove_file(dir.path().join("g.state.ttl")).unwrap();
    let out = stemgraph(&lv2, dir.path(), &["graph", "song.lua"]);
    let err = text(&out.stderr);
    assert!(
        !out.status.success() && err.contains("song.lua:3") && err.contains("g.state.ttl"),
        "{err}"
    );
}
