//! The recovery test of `stemgraph match` on real material: the three corpus songs (stems
//! rendered per instrument by fluidsynth, see tests/corpus), each through a master chain with
//! a loudness target. A reference is rendered with a known change (the second stem +3 dB, the
//! fourth −2 dB, a +2 dB high shelf at 8 kHz and a −1.5 dB tilt); matching the unchanged recipe
//! must recover it as on the demo song. And per section: a corpus song cut where its
//! arrangement changes, references with a different known change in each section.
use crate::corpus;
use crate::matching;

use matching::*;
use std::path::Path;
use stemgraph::dsp::eq::band::BandType;
use stemgraph::matching::report::MatchReport;

fn recipe(dir: &Path, song: &corpus::Song) -> std::path::PathBuf {
    recipe_with(dir, song, "")
}

/// [`recipe`] with `extra` in its `session { … }` (sections).
fn recipe_with(dir: &Path, song: &corpus::Song, extra: &str) -> std::path::PathBuf {
    let mut lua = format!(
        "local s = session {{ title = 'song', target_lufs = -16, ceiling_dbtp = -1{extra} }}\nlocal m = s:bus 'master'\n",
    );
    for st in &song.stems {
        lua += &format!("s:stem('{st}', 'stems/{st}.wav'):to(m)\n");
    }
    lua += "m:chain {\n  compressor { id = 'glue', threshold_db = -20, ratio = 2, attack_ms = 30, release_ms = 200 },\n  \
            limiter { ceiling_dbtp = -1 },\n}:to(s:output 'main')\ns:deliver { file = 'master.wav', bits = 24 }\nreturn s\n";
    let path = dir.join("song.lua");
    std::fs::write(&path, lua).unwrap();
    path
}

#[test]
fn known_changes_are_recovered_on_the_corpus_songs() {
    let Some(songs) = corpus::songs() else { return };
    for song in &songs {
        let p = song.project();
        let dir = p.dir.path();
        let recipe = recipe(dir, song);
        let (up, down) = (&song.stems[1], &song.stems[3]);
        let truth = format!(
            "local s = require 'song'\ns:set('master.send.{up}.gain_db', 3)\ns:set('master.send.{down}.gain_db', -2)\n\
             s:insert('master', {{ eq {{ id = 'truth', bands = {{ high_shelf {{ freq_hz = 8000, gain_db = 2, q = 0.707 }}, \
             tilt {{ freq_hz = 1000, gain_db = -1.5 }} }} }} }})\nreturn s\n"
        );
        let reference = render_lua(dir, "truth", &truth);
        let report = run_match(&recipe, &[reference.display().to_string()], 100.0);
        let changes: Vec<(String, f64)> = song
            .stems
            .iter()
            .map(|s| (s.clone(), stem_change(&report, s)))
            .collect();
        let eq_err = eq_error_db(
            &report,
            &[
                band(BandType::HighShelf, 8000.0, 2.0, 0.707),
                band(BandType::Tilt, 1000.0, -1.5, 0.707),
            ],
            f64::from(song.rate),
        );
        let check = report.check.clone().unwrap();
        eprintln!(
            "{}: {changes:?}; EQ error {eq_err:.2} dB; check max {:.2} dB (before {:.2}), {:.2} LUFS vs {:.2}",
            song.name, check.after_max_db, check.before_max_db, check.after_lufs, check.reference_lufs
        );
        if let Some(e) = &report.proposal.eq {
            for b in &e.bands {
                eprintln!(
                    "  {} {:?} {:.0} Hz {:+.2} dB q {:.2}",
                    b.kind.name(),
                    b.mode,
                    b.freq_hz,
                    b.gain_db,
                    b.q
                );
            }
        }
        eprintln!(
            "  width {:?}; model rms {:.2} → {:.2}",
            report.proposal.width, report.model_rms_before_db, report.model_rms_after_db
        );
        for (name, c) in &changes {
            let want = if name == up {
                3.0
            } else if name == down {
                -2.0
            } else {
                0.0
            };
            assert!(
                (c - want).abs() <= 0.5,
                "{}: {name} {c:+.2} dB, truth {want:+.1}",
                song.name
            );
        }
        assert!(
            eq_err <= 0.5,
            "{}: EQ response {eq_err:.2} dB from the truth",
            song.name
        );
        assert!(
            (check.after_lufs - check.reference_lufs).abs() <= 0.1,
            "{}: {check:?}",
            song.name
        );
        assert!(check.after_max_db <= 0.5, "{}: {check:?}", song.name);
    }
}

/// How close each section's stem changes must come to the truth, dB: the recovery
/// tolerance.
const SECTION_STEM_DB: f64 = 0.5;
/// How close each section's EQ response (the proposal's bands with the section's gains)
/// must come to the truth from 50 Hz to 16 kHz, dB: the recovery tolerance.
const SECTION_EQ_DB: f64 = 0.5;
/// How close the rendered override file must land on the reference in every third-octave
/// band of each section (loudness-matched), dB.
const SECTION_RENDER_DB: f64 = 0.5;

/// A corpus song cut in two where its arrangement changes, and the stems the reference
/// changes in each part.
struct SectionCase {
    song: &'static str,
    /// (first section, second section), and where the second starts, s.
    names: (&'static str, &'static str),
    split_s: f64,
    /// The stem changed in the first section only (−2 dB) and in the second only (+3 dB).
    first: &'static str,
    second: &'static str,
}

/// The electronic song: bars 0–3 without the lead synth, bars 4–7 with it (128 BPM: 7.5 s a
/// part), the one corpus song whose parts are long enough to pair (the ballad's first part,
/// 6.7 s without the choir, holds under 4 s of windows a 3 s window wholly inside it; the
/// rock song's, 4.3 s without the sax, less).
const SECTION_CASES: [SectionCase; 2] = [
    SectionCase {
        song: "electronic",
        names: ("build", "drop"),
        split_s: 7.5,
        first: "pad",
        second: "synth_bass",
    },
    SectionCase {
        song: "electronic",
        names: ("build", "drop"),
        split_s: 7.5,
        first: "synth_bass",
        second: "drums",
    },
];

/// The per-section values of the proposal at time `t`: each stem's change and the EQ bands
/// with their gains there (automation, or the song's value).
fn proposal_at(
    r: &MatchReport,
    t: f64,
) -> (Vec<(String, f64)>, Vec<stemgraph::matching::eq::EqBand>) {
    let at = |param: &str, fixed: f64| automation_at(r, param, t, fixed);
    // The corpus recipe's sends are at 0 dB: a send's value is the stem's change.
    let stems = r
        .stems
        .iter()
        .map(|s| {
            (
                s.clone(),
                at(&format!("master.send.{s}.gain_db"), stem_change(r, s)),
            )
        })
        .collect();
    let bands = r.proposal.eq.as_ref().map_or(Vec::new(), |e| {
        e.bands
            .iter()
            .enumerate()
            .map(|(i, b)| stemgraph::matching::eq::EqBand {
                gain_db: at(&format!("{}.{}.gain_db", e.node, i + 1), b.gain_db),
                ..*b
            })
            .collect()
    });
    (stems, bands)
}

#[test]
fn section_changes_are_recovered_on_the_corpus_songs() {
    let Some(songs) = corpus::songs() else { return };
    for case in &SECTION_CASES {
        let song = songs.iter().find(|s| s.name == case.song).unwrap();
        let p = song.project();
        let dir = p.dir.path();
        let (a, b) = case.names;
        let split = case.split_s;
        let recipe = recipe_with(
            dir,
            song,
            &format!(", sections = {{ {a} = 0, {b} = {split} }}"),
        );
        let (first, second) = (case.first, case.second);
        // The truth: `first` −2 dB in the first section, `second` +3 dB in the second, and a
        // +2 dB high shelf at 8 kHz on the master throughout.
        let truth = format!(
            "local s = require 'song'\n\
             s:automate('master.send.{first}.gain_db', {{ {{ 0, -2, 'step' }}, {{ {split}, 0, 'step' }} }})\n\
             s:automate('master.send.{second}.gain_db', {{ {{ 0, 0, 'step' }}, {{ {split}, 3, 'step' }} }})\n\
             s:insert('master', {{ eq {{ id = 'truth', bands = {{ high_shelf {{ freq_hz = 8000, gain_db = 2, q = 0.707 }} }} }} }})\n\
             return s\n"
        );
        let reference = render_lua(dir, "truth", &truth);
        let report = run_match(&recipe, &[reference.display().to_string()], 100.0);
        eprintln!("{}: notes {:?}", song.name, report.notes);
        let shelf = [band(BandType::HighShelf, 8000.0, 2.0, 0.707)];
        let end = song.frames as f64 / f64::from(song.rate);
        for (name, range, want) in [
            (a, (0.0, split), (first, -2.0)),
            (b, (split, end), (second, 3.0)),
        ] {
            let s = report.sections.iter().find(|s| s.name == name).unwrap();
            let (stems, bands) = proposal_at(&report, range.0);
            let eq_err = eq_error_db(&eq_report(&report, &bands), &shelf, f64::from(song.rate));
            eprintln!(
                "  {name}: measured {:.1} s, paired {:.1} s, distance {:.2} dB, confidence {:.2}; {stems:?} (held {:?}); EQ error {eq_err:.2} dB",
                s.master_s, s.reference_s, s.distance_db, s.confidence, s.held_stems
            );
            assert!(
                s.matched,
                "{}: {name} not matched: {:?}",
                song.name, report.notes
            );
            // A stem too quiet in a section to judge keeps the whole-song value there (the
            // report says so): nothing to recover.
            for (stem, v) in stems.iter().filter(|(n, _)| !s.held_stems.contains(n)) {
                let truth = if stem == want.0 { want.1 } else { 0.0 };
                assert!(
                    (v - truth).abs() <= SECTION_STEM_DB,
                    "{}: {name}: {stem} {v:+.2} dB, truth {truth:+.1}",
                    song.name
                );
            }
            assert!(
                eq_err <= SECTION_EQ_DB,
                "{}: {name}: EQ {eq_err:.2} dB from the truth",
                song.name
            );
        }
        // The override file, rendered, lands on the reference in each section.
        let file = dir.join("song.match.lua");
        let module = stemgraph::matching::writer::module_name(&recipe, &file).unwrap();
        let lua = stemgraph::matching::writer::override_lua(&report, &module);
        stemgraph::matching::writer::write(&file, &lua, std::slice::from_ref(&recipe)).unwrap();
        let after = render_recipe(&file, &dir.join("after"));
        for (name, range) in [(a, (0.0, split)), (b, (split, end))] {
            let d = third_octave_diff_in(&after, &reference, song.rate, range);
            eprintln!("  {name}: after − reference, max {:.2} dB", max_abs(&d));
            assert!(
                max_abs(&d) <= SECTION_RENDER_DB,
                "{}: {name}: {d:?}",
                song.name
            );
        }
    }
}

/// `r` with its proposal's EQ bands replaced by `bands` (for [`eq_error_db`]).
fn eq_report(r: &MatchReport, bands: &[stemgraph::matching::eq::EqBand]) -> MatchReport {
    let mut r = r.clone();
    if let Some(e) = &mut r.proposal.eq {
        e.bands = bands.to_vec();
    }
    r
}
