//! Recovery tests of `stemgraph match` with known answers (issue 18), on the demo song: a
//! reference is the same stems rendered with a known change (bass +3 dB, lead −2 dB on their
//! sends, a +2 dB high shelf at 8 kHz and a tilt on the master); matching the unchanged recipe
//! to it must find the stem gains within 0.5 dB, the EQ's response within 0.5 dB from 50 Hz to
//! 16 kHz and the loudness within 0.1 LU, and the written override file, rendered, must land
//! within 0.5 dB of the reference in every third-octave band.
use crate::matching;

use matching::*;
use std::sync::OnceLock;
use stemgraph::dsp::eq::band::BandType;
use stemgraph::matching::writer;

const TRUTH: &str = r#"
local s = require "demo"
s:set("master.send.bass.compressor.gain_db", 3)
s:set("master.send.lead.compressor.gain_db", -2)
s:set("master.send.echo.delay.gain_db", -2)
s:insert("master", { eq { id = "truth", bands = {
  high_shelf { freq_hz = 8000, gain_db = 2, q = 0.707 },
  tilt { freq_hz = 1000, gain_db = 1.5 },
} } })
return s
"#;

fn truth_eq() -> Vec<stemgraph::matching::eq::EqBand> {
    vec![
        band(BandType::HighShelf, 8000.0, 2.0, 0.707),
        band(BandType::Tilt, 1000.0, 1.5, 0.707),
    ]
}

/// The demo project and its reference with the known change (shared by the tests).
fn project() -> &'static (SharedDir, std::path::PathBuf) {
    static P: OnceLock<(SharedDir, std::path::PathBuf)> = OnceLock::new();
    P.get_or_init(|| {
        let dir = shared_demo_project(
            "match_recovery",
            30.0,
            stemgraph::demo::DemoOptions::DEFAULT_SEED,
        );
        let reference = render_lua(dir.path(), "truth", TRUTH);
        (dir, reference)
    })
}

#[test]
fn known_changes_are_recovered_and_the_override_file_lands_on_the_reference() {
    let (dir, reference) = project();
    let recipe = dir.path().join("demo.lua");
    let report = run_match(&recipe, &[reference.display().to_string()], 100.0);
    let (bass, lead) = (stem_change(&report, "bass"), stem_change(&report, "lead"));
    let (drums, keys) = (stem_change(&report, "drums"), stem_change(&report, "keys"));
    eprintln!("stems: bass {bass:+.2} lead {lead:+.2} drums {drums:+.2} keys {keys:+.2}");
    assert!((bass - 3.0).abs() <= 0.5, "bass {bass}");
    assert!((lead + 2.0).abs() <= 0.5, "lead {lead}");
    assert!(
        drums.abs() <= 0.5 && keys.abs() <= 0.5,
        "drums {drums}, keys {keys}"
    );
    let eq_err = eq_error_db(&report, &truth_eq(), 48_000.0);
    eprintln!("EQ response error {eq_err:.2} dB; {:?}", report.proposal.eq);
    assert!(eq_err <= 0.5, "EQ response {eq_err} dB from the truth");
    let check = report.check.as_ref().unwrap();
    eprintln!(
        "check: after max {:.2} dB rms {:.2} (before {:.2}); {:.2} LUFS vs {:.2}",
        check.after_max_db,
        check.after_rms_db,
        check.before_max_db,
        check.after_lufs,
        check.reference_lufs
    );
    assert!((check.after_lufs - check.reference_lufs).abs() <= 0.1);
    assert!(check.after_max_db <= 0.5, "{check:?}");
    assert!(
        check.before_max_db > 1.5,
        "the change was visible before: {check:?}"
    );

    // The override file, written and rendered as a user would.
    let file = dir.path().join("demo.match.lua");
    let module = writer::module_name(&recipe, &file).unwrap();
    let recipe_bytes = std::fs::read(&recipe).unwrap();
    writer::write(
        &file,
        &writer::override_lua(&report, &module),
        std::slice::from_ref(&recipe),
    )
    .unwrap();
    assert_eq!(
        std::fs::read(&recipe).unwrap(),
        recipe_bytes,
        "the recipe is never rewritten"
    );
    let after = render_recipe(&file, &dir.path().join("after"));
    let (d, after_lufs, ref_lufs) = third_octave_diff(&after, reference, 48_000);
    eprintln!(
        "override file: max {:.2} dB, {after_lufs:.2} LUFS vs {ref_lufs:.2}",
        max_abs(&d)
    );
    assert!(max_abs(&d) <= 0.5, "{d:?}");
    assert!((after_lufs - ref_lufs).abs() <= 0.1);
}

#[test]
fn the_amount_scales_the_proposal() {
    let (dir, reference) = project();
    let recipe = dir.path().join("demo.lua");
    let none = run_match(&recipe, &[reference.display().to_string()], 0.0);
    assert!(
        none.proposal.stems.is_empty() && none.proposal.eq.is_none(),
        "{:?}",
        none.proposal
    );
    let half = run_match(&recipe, &[reference.display().to_string()], 50.0);
    let bass = stem_change(&half, "bass");
    assert!((bass - 1.5).abs() <= 0.35, "bass at 50 %: {bass}");
    // Not just half the parameters: the master moves half the way, measured on a render of
    // the written override file (loudness-matched third-octave bands), and the loudness
    // moves half the way.
    let file = dir.path().join("demo.half.lua");
    let module = writer::module_name(&recipe, &file).unwrap();
    writer::write(
        &file,
        &writer::override_lua(&half, &module),
        std::slice::from_ref(&recipe),
    )
    .unwrap();
    let after = render_recipe(&file, &dir.path().join("half"));
    let master = render_recipe(&recipe, &dir.path().join("plain_half"));
    let (moved, after_lufs, master_lufs) = third_octave_diff(&after, &master, 48_000);
    let (whole, ref_lufs, _) = third_octave_diff(reference, &master, 48_000);
    let miss: Vec<f64> = moved.iter().zip(&whole).map(|(m, w)| m - 0.5 * w).collect();
    let c = half.check.as_ref().unwrap();
    eprintln!(
        "50 %: moved − half the way, max {:.2} dB (the whole way: max {:.2}); loudness {after_lufs:.2} \
         LUFS, half way {:.2}; report: {:.2} dB max, {:.2} RMS; notes {:?}",
        max_abs(&miss),
        max_abs(&whole),
        0.5 * (master_lufs + ref_lufs),
        c.target_max_db,
        c.target_rms_db,
        half.notes
    );
    assert!(max_abs(&miss) <= 0.3, "{miss:?}");
    assert!((after_lufs - 0.5 * (master_lufs + ref_lufs)).abs() <= 0.1);
    assert!(c.target_max_db <= 0.3, "{c:?}");
}

#[test]
fn weighted_references_pull_toward_their_weights() {
    let (dir, reference) = project();
    let recipe = dir.path().join("demo.lua");
    // The unchanged master as a second reference: the weighted target lies between.
    let plain = render_recipe(&recipe, &dir.path().join("plain"));
    let r = run_match(
        &recipe,
        &[
            format!("{}:0.7", reference.display()),
            format!("{}:0.3", plain.display()),
        ],
        100.0,
    );
    let bass = stem_change(&r, "bass");
    assert!((bass - 0.7 * 3.0).abs() <= 0.6, "bass {bass}");
    assert!((r.references[0].weight - 0.7).abs() < 1e-12);
}
