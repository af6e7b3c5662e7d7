//! `stemgraph match` on references that are not the song: a different song gives a bounded,
//! plausible proposal and says how close it got; bad input (another sample rate, mono, shorter
//! than 10 s, silent, clipped) is an error or a note; the override file never replaces the
//! recipe or a file it loads.
use crate::corpus;
use crate::matching;

use matching::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use stemgraph::matching::report::MatchReport;
use stemgraph::matching::{writer, MatchError};

fn project() -> &'static (SharedDir, PathBuf) {
    static P: OnceLock<(SharedDir, PathBuf)> = OnceLock::new();
    P.get_or_init(|| {
        let dir = shared_demo_project(
            "match_inputs",
            24.0,
            stemgraph::demo::DemoOptions::DEFAULT_SEED,
        );
        let master = render_recipe(&dir.path().join("demo.lua"), &dir.path().join("plain"));
        (dir, master)
    })
}

fn write_wav(path: &Path, planes: &[Vec<f64>], rate: u32) {
    let spec = hound::WavSpec {
        channels: planes.len() as u16,
        sample_rate: rate,
        bits_per_sample: 24,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for k in 0..planes[0].len() {
        for p in planes {
            w.write_sample((p[k].clamp(-1.0, 1.0 - 1e-7) * 8_388_608.0).round() as i32)
                .unwrap();
        }
    }
    w.finalize().unwrap();
}

/// A proposal within the clamps, no stem muted, the EQ within its gain clamp.
fn assert_bounded(r: &MatchReport, what: &str) {
    let lim = r.limits;
    for s in &r.proposal.stems {
        assert!(s.change_db.abs() <= lim.stem_db + 1e-9, "{what}: {s:?}");
        assert!(
            s.change_db > -lim.stem_db + 0.5,
            "{what}: {} is nearly muted: {s:?}",
            s.stem
        );
    }
    for b in r.proposal.eq.iter().flat_map(|e| &e.bands) {
        assert!(b.gain_db.abs() <= lim.eq_db + 1e-9, "{what}: {b:?}");
    }
    if let Some(w) = &r.proposal.width {
        assert!((0.0..=200.0).contains(&w.to_pct), "{what}: {w:?}");
    }
    let c = r.check.as_ref().unwrap();
    eprintln!(
        "{what}: stems {:?}; EQ {:?}; check RMS {:.2} dB (before {:.2}), max {:.2} (before {:.2}); notes {:?}",
        r.proposal.stems.iter().map(|s| (&s.stem, s.change_db)).collect::<Vec<_>>(),
        r.proposal.eq.as_ref().map(|e| e.bands.iter().map(|b| (b.kind.name(), b.freq_hz, b.gain_db)).collect::<Vec<_>>()),
        c.after_rms_db, c.before_rms_db, c.after_max_db, c.before_max_db, r.notes
    );
    assert!(
        c.after_rms_db < c.before_rms_db,
        "{what}: the proposal got no closer: {c:?}"
    );
    assert!(r.markdown().contains("How close it gets"));
}

#[test]
fn a_different_song_gives_a_bounded_proposal() {
    let (dir, _) = project();
    let recipe = dir.path().join("demo.lua");
    // Another demo seed: the same arrangement played differently, its unprocessed stem mix.
    let other = demo_project(30.0, 0xD1FF);
    let r = run_match(
        &recipe,
        &[other.path().join("stems/mix.wav").display().to_string()],
        100.0,
    );
    assert_bounded(&r, "demo seed 0xD1FF");
    // A song of another style at another sample rate (the corpus ballad, 44.1 kHz).
    if let Some(songs) = corpus::songs() {
        let ballad = songs.iter().find(|s| s.name == "ballad").unwrap();
        let r = run_match(
            &recipe,
            &[ballad.dir.join("mix.wav").display().to_string()],
            100.0,
        );
        assert!(
            r.notes.iter().any(|n| n.contains("resampled")),
            "{:?}",
            r.notes
        );
        assert_bounded(&r, "ballad");
        // Another style: the report says the stems and EQ cannot make it the ballad, and
        // which values sit at their clamps because of it.
        assert!(
            r.notes
                .iter()
                .any(|n| n.contains("more than stem and EQ changes explain")),
            "{:?}",
            r.notes
        );
    }
}

#[test]
fn bad_references_are_errors_or_notes() {
    let (dir, master) = project();
    let recipe = dir.path().join("demo.lua");
    let (planes, spec) = corpus::read_wav(master);
    let rate = spec.sample_rate;
    let at = |name: &str| dir.path().join(name);
    // Shorter than 10 s.
    let short: Vec<Vec<f64>> = planes
        .iter()
        .map(|c| c[..(rate * 8) as usize].to_vec())
        .collect();
    write_wav(&at("short.wav"), &short, rate);
    let e = try_match(
        &recipe,
        &[at("short.wav").display().to_string()],
        100.0,
        None,
    )
    .unwrap_err();
    assert!(
        matches!(e, MatchError::Input { .. }) && e.to_string().contains("at least 10 s"),
        "{e}"
    );
    // Silent.
    write_wav(
        &at("silent.wav"),
        &[
            vec![0.0; (rate * 15) as usize],
            vec![0.0; (rate * 15) as usize],
        ],
        rate,
    );
    let e = try_match(
        &recipe,
        &[at("silent.wav").display().to_string()],
        100.0,
        None,
    )
    .unwrap_err();
    assert!(e.to_string().contains("silent"), "{e}");
    // Mono: matched, without width or side EQ.
    let mono = vec![planes[0]
        .iter()
        .zip(&planes[1])
        .map(|(a, b)| 0.5 * (a + b))
        .collect::<Vec<f64>>()];
    write_wav(&at("mono.wav"), &mono, rate);
    let r = run_match(&recipe, &[at("mono.wav").display().to_string()], 100.0);
    assert!(r.notes.iter().any(|n| n.contains("mono")), "{:?}", r.notes);
    assert!(r.proposal.width.is_none(), "{:?}", r.proposal.width);
    assert!(r
        .proposal
        .eq
        .iter()
        .flat_map(|e| &e.bands)
        .all(|b| b.mode != stemgraph::dsp::eq::band::Mode::Side));
    // Clipped: 12 dB hotter, hard-clipped at full scale.
    let hot: Vec<Vec<f64>> = planes
        .iter()
        .map(|c| c.iter().map(|x| (x * 4.0).clamp(-1.0, 1.0)).collect())
        .collect();
    write_wav(&at("clipped.wav"), &hot, rate);
    let r = run_match(&recipe, &[at("clipped.wav").display().to_string()], 100.0);
    assert!(
        r.notes.iter().any(|n| n.contains("clipped")),
        "{:?}",
        r.notes
    );
    // Nonexistent.
    assert!(try_match(&recipe, &["nowhere.wav".into()], 100.0, None).is_err());
}

#[test]
fn the_override_file_never_replaces_the_recipe() {
    let (dir, master) = project();
    let recipe = dir.path().join("demo.lua");
    let before = std::fs::read(&recipe).unwrap();
    let r = run_match(&recipe, &[master.display().to_string()], 100.0);
    let module = writer::module_name(&recipe, &recipe).unwrap();
    let text = writer::override_lua(&r, &module);
    let e = writer::write(&recipe, &text, std::slice::from_ref(&recipe)).unwrap_err();
    assert!(e.to_string().contains("input"), "{e}");
    assert_eq!(std::fs::read(&recipe).unwrap(), before);
    // Elsewhere than beside the recipe, the file could not `require` it.
    let elsewhere = tempfile::tempdir().unwrap();
    assert!(writer::module_name(&recipe, &elsewhere.path().join("o.lua")).is_err());
    // Matched to its own master, the recipe needs next to nothing.
    assert!(
        r.proposal.stems.iter().all(|s| s.change_db.abs() < 0.3),
        "{:?}",
        r.proposal.stems
    );
    assert!(r
        .proposal
        .eq
        .iter()
        .flat_map(|e| &e.bands)
        .all(|b| b.gain_db.abs() < 0.3));
}
