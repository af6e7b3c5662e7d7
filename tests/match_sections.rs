//! Section-aware matching with known answers: the demo song (intro 0–8 s, verse 8–24 s, chorus
//! 24–40 s) against a reference made from the same stems with the bass 5 dB up in one section
//! only. Each section is paired with the parts of the reference that resemble it, so the
//! section with the change gets ≈ +5 dB and the other ≈ 0 dB, although verse and chorus lie
//! within 2 LU of each other (loudness alone could not tell them apart); the quiet intro gets
//! no clamp-hitting values; the values are step automation at the sections' starts.
use crate::matching;

use matching::*;
use std::path::PathBuf;
use std::sync::OnceLock;
use stemgraph::matching::report::MatchReport;

const BASS: &str = "master.send.bass.compressor.gain_db";
/// How close each section's bass must come to the truth, dB. Measured: +0.08 / +4.95 (change
/// in the chorus), +4.93 / +0.49 (change in the verse). Not 0.5: a section's fit trades the
/// bass against the EQ's low shelf (both explain the lows; the shelf is shared by the song),
/// and the refinement's correction from the check render moves each section by a few tenths.
const TOLERANCE_DB: f64 = 0.5;

/// The demo project with sections declared.
fn project() -> &'static SharedDir {
    static P: OnceLock<SharedDir> = OnceLock::new();
    P.get_or_init(|| {
        let dir = shared_demo_project(
            "match_sections",
            40.0,
            stemgraph::demo::DemoOptions::DEFAULT_SEED,
        );
        let recipe = dir.path().join("demo.lua");
        let text = std::fs::read_to_string(&recipe).unwrap().replace(
            "  tempo_bpm = 120,",
            "  tempo_bpm = 120,\n  sections = { intro = 0, verse = 8, chorus = 24 },",
        );
        std::fs::write(&recipe, text).unwrap();
        dir
    })
}

/// The reference with the bass `db` up from `from` s to `to` s (and back at 0 after), and the
/// match of the unchanged recipe to it.
fn matched(name: &str, from: f64, to: f64, db: f64) -> (MatchReport, PathBuf) {
    let dir = project();
    let lua = format!(
        "local s = require \"demo\"\ns:automate(\"{BASS}\", {{ {{ 0, 0, \"step\" }}, {{ {from}, {db}, \"step\" }}, {{ {to}, 0, \"step\" }} }})\nreturn s\n"
    );
    let reference = render_lua(dir.path(), name, &lua);
    let recipe = dir.path().join("demo.lua");
    let r = run_match(&recipe, &[reference.display().to_string()], 100.0);
    eprintln!("{name}: notes {:?}", r.notes);
    if let Some(e) = &r.proposal.eq {
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
        "  stems {:?}",
        r.proposal
            .stems
            .iter()
            .map(|s| format!("{} {:+.2}", s.stem, s.change_db))
            .collect::<Vec<_>>()
    );
    for s in &r.sections {
        eprintln!(
            "  {}: {:.1} LUFS, measured {:.1} s, paired {:.1} s at {:+.1} LU, distance {:.2} dB, confidence {:.2}, matched {}, held {:?}; stems {:?} eq {:?}",
            s.name, s.master_lufs, s.master_s, s.reference_s, s.reference_rel_lu, s.distance_db, s.confidence, s.matched,
            s.held_stems,
            r.stems.iter().zip(&s.stem_db).map(|(n, v)| format!("{n} {v:+.2}")).collect::<Vec<_>>(),
            s.eq_db.iter().map(|v| format!("{v:+.2}")).collect::<Vec<_>>()
        );
    }
    (r, reference)
}

/// The two cases, each matched once for the tests that read them.
fn chorus_case() -> &'static (MatchReport, PathBuf) {
    static C: OnceLock<(MatchReport, PathBuf)> = OnceLock::new();
    C.get_or_init(|| matched("chorus_bass", 24.0, 1000.0, 5.0))
}

fn verse_case() -> &'static (MatchReport, PathBuf) {
    static C: OnceLock<(MatchReport, PathBuf)> = OnceLock::new();
    C.get_or_init(|| matched("verse_bass", 8.0, 24.0, 5.0))
}

fn section<'a>(r: &'a MatchReport, name: &str) -> &'a stemgraph::matching::sections::SectionReport {
    r.sections.iter().find(|s| s.name == name).unwrap()
}

fn bass(r: &MatchReport, name: &str) -> f64 {
    let k = r.stems.iter().position(|s| s == "bass").unwrap();
    section(r, name).stem_db[k]
}

/// Verse and chorus lie within 2 LU of each other: loudness alone cannot pair them.
fn assert_close_in_loudness(r: &MatchReport) {
    let (v, c) = (section(r, "verse"), section(r, "chorus"));
    assert!(
        (v.master_lufs - c.master_lufs).abs() <= 2.0,
        "verse {:.1} LUFS, chorus {:.1}",
        v.master_lufs,
        c.master_lufs
    );
}

/// How far from no change a section whose material is identical in master and reference
/// may be, dB (every stem and every EQ band gain): the recovery tolerance, about the
/// smallest broadband level change a listener notices.
const UNCHANGED_DB: f64 = 0.5;

/// Section `name` is matched (not left at the whole-song values) and proposes no change:
/// every stem and EQ gain within [`UNCHANGED_DB`] of 0 dB.
fn assert_unchanged(r: &MatchReport, name: &str) {
    let s = section(r, name);
    assert!(s.matched, "{name}: {s:?} {:?}", r.notes);
    for (stem, v) in r.stems.iter().zip(&s.stem_db) {
        assert!(
            v.abs() <= UNCHANGED_DB,
            "{name}: {stem} {v:+.2} dB (truth 0): {s:?}"
        );
    }
    for (i, v) in s.eq_db.iter().enumerate() {
        assert!(
            v.abs() <= UNCHANGED_DB,
            "{name}: EQ band {i} {v:+.2} dB (truth 0): {s:?}"
        );
    }
}

/// The override file of the chorus case, written beside the recipe and rendered.
fn chorus_after() -> &'static PathBuf {
    static A: OnceLock<PathBuf> = OnceLock::new();
    A.get_or_init(|| {
        let (r, _) = chorus_case();
        let dir = project();
        let recipe = dir.path().join("demo.lua");
        let file = dir.path().join("demo.match.lua");
        let module = stemgraph::matching::writer::module_name(&recipe, &file).unwrap();
        let lua = stemgraph::matching::writer::override_lua(r, &module);
        assert!(lua.contains(&format!("s:automate(\"{BASS}\"")), "{lua}");
        stemgraph::matching::writer::write(&file, &lua, std::slice::from_ref(&recipe)).unwrap();
        render_recipe(&file, &dir.path().join("after"))
    })
}

#[test]
fn a_change_in_the_chorus_only_is_found_in_the_chorus_only() {
    let (r, reference) = chorus_case();
    let r = r.clone();
    assert_close_in_loudness(&r);
    let names: Vec<&str> = r.sections.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["intro", "verse", "chorus"]);
    let (verse, chorus) = (bass(&r, "verse"), bass(&r, "chorus"));
    assert!(
        verse.abs() <= TOLERANCE_DB,
        "verse bass {verse:+.2} (truth 0)"
    );
    assert!(
        (chorus - 5.0).abs() <= TOLERANCE_DB,
        "chorus bass {chorus:+.2} (truth +5)"
    );
    // The chorus is paired with the reference's loudest part.
    let c = section(&r, "chorus");
    assert!(c.matched && c.reference_rel_lu > -2.0, "{c:?}");
    assert_unchanged(&r, "verse");
    let auto = r
        .proposal
        .automation
        .iter()
        .find(|a| a.param == BASS)
        .expect("the bass send is automated");
    let times: Vec<f64> = auto.points.iter().map(|p| p.0).collect();
    assert_eq!(times, [0.0, 8.0, 24.0]);
    let send = r.proposal.stems.iter().find(|s| s.stem == "bass");
    let from = send.map_or(0.0, |s| s.sends[0].1);
    assert!((auto.points[2].1 - from - chorus).abs() < 0.01, "{auto:?}");

    // The override file with its automation loads, renders, and lands on the reference in
    // the chorus and in the verse.
    for (name, range) in [("verse", (8.0, 24.0)), ("chorus", (24.0, 40.0))] {
        let d = third_octave_diff_in(chorus_after(), reference, 48_000, range);
        eprintln!("{name}: after − reference, max {:.2} dB", max_abs(&d));
        assert!(max_abs(&d) <= UNCHANGED_DB, "{name}: {d:?}");
    }
}

/// The quiet intro (8 s: keys, then the bass from bar 3; a drum fill into the verse) is the
/// same in master and reference in both cases: it must get no change, however the rest of
/// the song differs. It drew +4.65 dB of low shelf before the master's side of a section was
/// paired too (the whole intro was compared with the 6 s of the reference that paired with
/// it; the fill, which the reference gave to the chorus, made -5 to -9 dB narrow-band
/// differences).
#[test]
fn an_intro_identical_in_the_reference_gets_no_change() {
    for (r, _) in [chorus_case(), verse_case()] {
        assert_unchanged(r, "intro");
        let intro = section(r, "intro");
        assert!(intro.reference_s >= 4.0, "{intro:?}");
    }
    // Rendered: the proposal leaves the intro as it was (the reference's intro is the
    // master's), loudness-matched, in every third-octave band.
    let (_, reference) = chorus_case();
    let d = third_octave_diff_in(chorus_after(), reference, 48_000, (0.0, 8.0));
    eprintln!("intro: after − reference, max {:.2} dB", max_abs(&d));
    assert!(max_abs(&d) <= UNCHANGED_DB, "intro: {d:?}");
}

#[test]
fn a_change_in_the_verse_only_is_found_in_the_verse_only() {
    let (r, _) = verse_case();
    assert_close_in_loudness(&r);
    let (verse, chorus) = (bass(&r, "verse"), bass(&r, "chorus"));
    assert!(
        (verse - 5.0).abs() <= TOLERANCE_DB,
        "verse bass {verse:+.2} (truth +5)"
    );
    assert!(
        chorus.abs() <= TOLERANCE_DB,
        "chorus bass {chorus:+.2} (truth 0)"
    );
    assert_unchanged(r, "chorus");
}
