//! Hot reload of recipes with a third-party LV2 plugin (x42 balance, from `x42-plugins`) and the
//! repository's CLAP test gain (`plugins/clap-testgain`) through the real reload path and the
//! simulated device of `tests/common/live_rig.rs`, under the allocation guard: a reload that changes a plugin parameter glides without a click (the running instance
//! moves over, no crossfade), one that adds a plugin crossfades without a click, and one that
//! names an unknown plugin keeps the last good graph and reports the recipe's line.
use crate::common;
use crate::plugin_util;

use common::live_rig::{diff, max_jump, swapped, Rig};
use stemgraph::live::control::LiveEvent;

const BALANCE: &str = "http://gareus.org/oss/lv2/balance";
/// The test bundle's stereo gain, which does not smooth its control (tests/fixtures/lv2).
const GAIN2: &str = "urn:stemgraph:test:gain2";

/// Whether x42 balance is installed (under CI a missing plugin fails the test); the test bundle
/// is on `LV2_PATH` from here on.
fn installed() -> bool {
    plugin_util::in_process();
    match stemgraph::dsp::plugin::lv2::find(BALANCE) {
        Ok(_) => true,
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => panic!("{e}"),
        Err(e) => {
            eprintln!("skipped: {e}");
            false
        }
    }
}

/// The tone stem into the master, with `chain` on the master (Lua, may be empty).
fn recipe(chain: &str) -> String {
    format!(
        "local s = session {{ title = \"t\" }}\n\
         local master = s:bus \"master\"\n\
         s:stem(\"tone\", \"stems/tone.wav\"):to(master)\n\
         master:chain {{ gain {{ gain_db = -1 }}, {chain} }}:to(s:output \"main\")\n\
         return s\n"
    )
}

fn trim(db: f64) -> String {
    format!("plugin {{ id = \"trim\", lv2 = \"{BALANCE}\", params = {{ trim = {db} }} }}")
}

fn gain2(gain: f64) -> String {
    format!("plugin {{ id = \"g\", lv2 = \"{GAIN2}\", params = {{ gain = {gain} }} }}")
}

/// Plays `before`, reloads `after` after 100 blocks, plays 200 more; checks the swap (a crossfade
/// or not), no click (no sample-to-sample jump over `jump` times the material's own), no
/// allocation, and the new graph once settled (to the plugin's f32).
fn reload_case(before: &str, after: &str, crossfade: bool, jump: f32) {
    let mut rig = Rig::new(before, false);
    let latency = rig.ctl.live_latency();
    rig.play(100);
    rig.song.save(after);
    let ev = rig.reload();
    assert!(
        ev.iter().any(|e| matches!(e, LiveEvent::Reloaded { .. })),
        "{ev:?}"
    );
    rig.play(200);
    let swaps = swapped(&rig.events);
    assert_eq!(swaps.len(), 1, "{:?}", rig.events);
    assert_eq!(swaps[0].crossfade, crossfade, "{:?}", swaps[0]);
    let p = swaps[0].position as usize;
    let a = rig.song.offline(before);
    let b = rig.song.offline(after);
    let fade_in = latency + 240;
    assert!(
        diff(&rig.out, &a, latency as i64, fade_in, p + latency) < 1e-6,
        "before the swap: the old graph"
    );
    assert!(
        diff(
            &rig.out,
            &a,
            latency as i64,
            p + latency,
            p + latency + 2000
        ) > 0.01,
        "no change after the swap"
    );
    let settled = p + latency + 2400;
    let d = diff(&rig.out, &b, latency as i64, settled, rig.frames());
    assert!(d < 1e-5, "after the swap: the new graph ({d})");
    let own = max_jump(&a).max(max_jump(&b));
    let live = max_jump(&rig.out[2 * fade_in..]);
    assert!(
        live <= own * jump,
        "a click: jump {live} > {jump} × material's {own}"
    );
    assert_eq!(rig.violations, 0, "the callback allocated");
}

#[test]
fn a_reload_that_changes_a_plugin_parameter_glides_without_a_click() {
    if !installed() {
        return;
    }
    reload_case(&recipe(&trim(0.0)), &recipe(&trim(-6.0)), false, 1.01);
    // A plugin that does not smooth its control relies on the host's glide: the control port
    // steps every 16 frames along the 20 ms glide, well under the click an instant -6 dB is
    // (15 times the tone's own largest step).
    reload_case(&recipe(&gain2(1.0)), &recipe(&gain2(0.5)), false, 1.5);
}

/// The CLAP test gain (`plugins/clap-testgain`, built by the test; no smoothing of its own) at
/// `gain_db`.
fn clap_gain(db: f64) -> String {
    format!(
        "plugin {{ id = \"cg\", clap = \"org.stemgraph.testgain-stereo\", path = \"{}\", params = {{ gain_db = {db} }} }}",
        plugin_util::clap_bundle().display()
    )
}

#[test]
fn a_reload_that_changes_a_clap_parameter_glides_without_a_click() {
    // Nothing to skip: the plugin is built from the repository. Its parameter events follow the
    // host's 20 ms glide sample by sample, so the jump stays the tone's own.
    reload_case(
        &recipe(&clap_gain(0.0)),
        &recipe(&clap_gain(-6.0)),
        false,
        1.01,
    );
}

#[test]
fn a_reload_that_adds_a_clap_plugin_crossfades_without_a_click() {
    reload_case(&recipe(""), &recipe(&clap_gain(-6.0)), true, 1.01);
}

#[test]
fn a_bad_clap_reload_keeps_the_last_good_graph() {
    let good = recipe(&clap_gain(-3.0));
    let mut rig = Rig::new(&good, false);
    let latency = rig.ctl.live_latency();
    rig.play(20);
    for (what, text) in [
        (
            "unknown id",
            good.replace("testgain-stereo", "testgain-sterio"),
        ),
        ("out of range", good.replace("gain_db = -3", "gain_db = 40")),
        (
            "fails to instantiate",
            good.replace("testgain-stereo", "testgain-broken"),
        ),
    ] {
        rig.song.save(&text);
        match rig.reload().as_slice() {
            [LiveEvent::ReloadFailed { error, .. }] => {
                assert!(error.contains("song.lua:4"), "{what}: {error}");
            }
            other => panic!("{what}: {other:?}"),
        }
        rig.play(20);
    }
    assert!(swapped(&rig.events).is_empty());
    let a = rig.song.offline(&good);
    assert!(diff(&rig.out, &a, latency as i64, latency + 240, rig.frames()) < 1e-6);
    assert_eq!(rig.violations, 0);
}

#[test]
fn a_reload_that_adds_a_plugin_crossfades_without_a_click() {
    if !installed() {
        return;
    }
    reload_case(&recipe(""), &recipe(&trim(-6.0)), true, 1.01);
    reload_case(&recipe(""), &recipe(&gain2(0.5)), true, 1.01);
}

#[test]
fn a_reload_with_an_unknown_plugin_keeps_the_last_good_graph() {
    if !installed() {
        return;
    }
    let good = recipe(&trim(-3.0));
    let mut rig = Rig::new(&good, false);
    let latency = rig.ctl.live_latency();
    rig.play(20);
    for (what, text) in [
        (
            "unknown URI",
            good.replace("oss/lv2/balance", "oss/lv2/balanse"),
        ),
        ("out of range", good.replace("trim = -3", "trim = 40")),
    ] {
        rig.song.save(&text);
        match rig.reload().as_slice() {
            [LiveEvent::ReloadFailed { error, .. }] => {
                assert!(error.contains("song.lua:4"), "{what}: {error}");
            }
            other => panic!("{what}: {other:?}"),
        }
        rig.play(20);
    }
    assert!(swapped(&rig.events).is_empty());
    let a = rig.song.offline(&good);
    assert!(diff(&rig.out, &a, latency as i64, latency + 240, rig.frames()) < 1e-6);
    assert_eq!(rig.violations, 0);
}
