//! Section matching on a song whose sections repeat: the 240 s demo song (intro, then verse,
//! chorus and break again and again: 18 sections, 4 kinds). A reference made from the same
//! stems with a known change per kind (every chorus's bass +3 dB, every verse's lead −2 dB)
//! must give every section its kind's change when the recipe numbers the repeats (`verse1`,
//! `verse2`, …). And, a measurement (ignored: run it with `--ignored`), why the kinds come
//! from the names and not from how alike the sections sound: the likeness between sections
//! of one kind and of different kinds, on the demo and on the corpus songs, overlaps.
use crate::corpus;
use crate::matching;

use matching::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use stemgraph::matching::grid::Grid;
use stemgraph::matching::kinds;
use stemgraph::matching::pairing::Windows;
use stemgraph::matching::report::MatchReport;
use stemgraph::matching::scan;

const SONG_S: f64 = 240.0;
/// The bass's send into the mix, and its gain in the recipe, dB.
const BASS: [(&str, f64); 1] = [("master.send.bass.compressor.gain_db", 0.0)];
/// The lead's sends (the mix, its echo return) and their gains in the recipe, dB.
const LEAD: [(&str, f64); 2] = [
    ("master.send.lead.compressor.gain_db", 0.0),
    ("echo.send.lead.compressor.gain_db", -18.0),
];
/// The recovery tolerance for stem changes, dB.
const STEM_DB: f64 = 0.5;
/// How far from no change an EQ band of a section may be (the truth moves no EQ), dB.
const EQ_DB: f64 = 0.5;
/// How close the rendered override file must land on the reference per third-octave band, dB.
const RENDER_DB: f64 = 0.5;

/// The demo song's sections (its arrangement: a 4-bar intro, then verse 8 bars, chorus 8,
/// break 4 at 120 BPM): (kind, start s, end s) up to [`SONG_S`].
fn demo_sections() -> Vec<(&'static str, f64, f64)> {
    let mut v = vec![("intro", 0.0, 8.0)];
    let mut t = 8.0;
    for (kind, len) in [("verse", 16.0), ("chorus", 16.0), ("break", 8.0)]
        .iter()
        .cycle()
    {
        if t + len > SONG_S + 1e-9 {
            break;
        }
        v.push((kind, t, t + len));
        t += len;
    }
    v
}

/// The 240 s demo project (its master rendered once).
fn project() -> &'static (SharedDir, PathBuf) {
    static P: OnceLock<(SharedDir, PathBuf)> = OnceLock::new();
    P.get_or_init(|| {
        let dir = shared_demo_project(
            "match_repeats",
            SONG_S,
            stemgraph::demo::DemoOptions::DEFAULT_SEED,
        );
        let master = render_recipe(&dir.path().join("demo.lua"), &dir.path().join("plain"));
        (dir, master)
    })
}

/// The section names, the repeats numbered: `intro`, `verse1`, `chorus1`, `break1`,
/// `verse2`, …
fn names() -> Vec<String> {
    let mut count = std::collections::HashMap::new();
    demo_sections()
        .iter()
        .map(|(kind, _, _)| {
            let n = count.entry(*kind).or_insert(0);
            *n += 1;
            if *kind == "intro" {
                kind.to_string()
            } else {
                format!("{kind}{n}")
            }
        })
        .collect()
}

/// The demo recipe with the sections declared, as `numbered.lua` beside it.
fn recipe() -> PathBuf {
    let (dir, _) = project();
    let decl: Vec<String> = names()
        .iter()
        .zip(demo_sections())
        .map(|(n, (_, from, _))| format!("{n} = {from}"))
        .collect();
    let text = std::fs::read_to_string(dir.path().join("demo.lua"))
        .unwrap()
        .replace(
            "  tempo_bpm = 120,",
            &format!(
                "  tempo_bpm = 120,\n  sections = {{ {} }},",
                decl.join(", ")
            ),
        );
    let path = dir.path().join("numbered.lua");
    std::fs::write(&path, text).unwrap();
    path
}

/// The truth per kind: (bass, lead) change, dB.
fn truth(kind: &str) -> (f64, f64) {
    match kind {
        "chorus" => (3.0, 0.0),
        "verse" => (0.0, -2.0),
        _ => (0.0, 0.0),
    }
}

/// The reference: every chorus's bass +3 dB, every verse's lead −2 dB (both its sends).
fn reference() -> &'static PathBuf {
    static R: OnceLock<PathBuf> = OnceLock::new();
    R.get_or_init(|| {
        let (dir, _) = project();
        let mut lua = String::from("local s = require \"demo\"\n");
        for (keys, pick) in [(&BASS[..], 0usize), (&LEAD[..], 1)] {
            for (k, base) in keys {
                let points: Vec<String> = demo_sections()
                    .iter()
                    .map(|(kind, from, _)| {
                        let (b, l) = truth(kind);
                        format!("{{ {from}, {}, \"step\" }}", base + [b, l][pick])
                    })
                    .collect();
                lua += &format!("s:automate(\"{k}\", {{ {} }})\n", points.join(", "));
            }
        }
        lua += "return s\n";
        render_lua(dir.path(), "per_kind", &lua)
    })
}

/// The match of the recipe to the reference.
fn matched() -> MatchReport {
    let r = run_match(&recipe(), &[reference().display().to_string()], 100.0);
    eprintln!("notes {:?}", r.notes);
    r
}

/// Every repeated section (verse, chorus, break) is matched and gets its kind's change:
/// each stem within [`STEM_DB`] of the truth (as the proposal writes it: automation or the
/// song's value), each EQ band within [`EQ_DB`] of 0. The intro, the one section that does
/// not repeat, is held to the same when matched; when the reference holds too little like
/// it, it keeps the whole-song values and a note says so.
fn assert_every_section(r: &MatchReport) {
    let sections = demo_sections();
    let matched = r.sections.iter().filter(|s| s.matched).count();
    eprintln!(
        "coverage: {matched} of {} sections matched",
        r.sections.len()
    );
    assert_eq!(r.sections.len(), sections.len(), "{:?}", r.notes);
    assert!(
        r.markdown().contains(&format!(
            "Matched on their own: {matched} of {} sections",
            sections.len()
        )),
        "{}",
        r.markdown()
    );
    let send = |stem: &str| {
        r.proposal
            .stems
            .iter()
            .find(|s| s.stem == stem)
            .map(|s| (s.sends[0].0.clone(), s.sends[0].1, s.change_db))
    };
    let (bass_key, bass_from, bass_song) =
        send("bass").unwrap_or((BASS[0].0.into(), BASS[0].1, 0.0));
    let (lead_key, lead_from, lead_song) =
        send("lead").unwrap_or((LEAD[0].0.into(), LEAD[0].1, 0.0));
    let mut failures = Vec::new();
    for ((kind, from, _), rep) in sections.iter().zip(&r.sections) {
        let want = truth(kind);
        let bass = automation_at(r, &bass_key, *from, bass_from + bass_song) - bass_from;
        let lead_v = automation_at(r, &lead_key, *from, lead_from + lead_song) - lead_from;
        let eq_max = r.proposal.eq.as_ref().map_or(0.0, |e| {
            (0..e.bands.len())
                .map(|i| {
                    automation_at(
                        r,
                        &format!("{}.{}.gain_db", e.node, i + 1),
                        *from,
                        e.bands[i].gain_db,
                    )
                    .abs()
                })
                .fold(0.0, f64::max)
        });
        let others: Vec<(String, f64)> = r
            .stems
            .iter()
            .zip(&rep.stem_db)
            .filter(|(n, _)| *n != "bass" && *n != "lead")
            .map(|(n, v)| (n.clone(), *v))
            .collect();
        eprintln!(
            "  {} ({}, {from:.0} s): bass {bass:+.2} (truth {:+.1}), lead {lead_v:+.2} (truth {:+.1}), others {others:?}, EQ max {eq_max:.2}; matched {}, paired {:.1} s, confidence {:.2}",
            rep.name, rep.kind, want.0, want.1, rep.matched, rep.reference_s, rep.confidence
        );
        assert_eq!(rep.kind, *kind, "{rep:?}");
        if *kind == "intro" && !rep.matched {
            assert!(
                r.notes.iter().any(|n| n.contains("section `intro`")),
                "{:?}",
                r.notes
            );
            continue;
        }
        let off = (bass - want.0).abs() > STEM_DB
            || (lead_v - want.1).abs() > STEM_DB
            || others.iter().any(|(_, v)| v.abs() > STEM_DB)
            || eq_max > EQ_DB;
        if !rep.matched || off {
            failures.push(rep.name.clone());
        }
    }
    assert!(
        failures.is_empty(),
        "sections off the truth: {failures:?}; notes {:?}",
        r.notes
    );
}

#[test]
fn every_repeated_section_gets_its_kinds_change_when_the_names_number_the_repeats() {
    let r = &matched();
    assert_every_section(r);
    // The override file, rendered, lands on the reference in a section of every kind.
    let (dir, _) = project();
    let recipe = dir.path().join("numbered.lua");
    let file = dir.path().join("numbered.match.lua");
    let module = stemgraph::matching::writer::module_name(&recipe, &file).unwrap();
    let lua = stemgraph::matching::writer::override_lua(r, &module);
    stemgraph::matching::writer::write(&file, &lua, std::slice::from_ref(&recipe)).unwrap();
    let after = render_recipe(&file, &dir.path().join("after"));
    for (kind, from, to) in demo_sections().into_iter().skip(4).take(4) {
        let d = third_octave_diff_in(&after, reference(), 48_000, (from, to));
        eprintln!(
            "{kind} {from:.0}–{to:.0} s: after − reference, max {:.2} dB",
            max_abs(&d)
        );
        assert!(max_abs(&d) <= RENDER_DB, "{kind} at {from} s: {d:?}");
    }
}

/// Pairs of sections described, and their likeness, dB.
type Pairs = Vec<(String, f64)>;

/// The likeness of every two sections of `windows` (`(kind, from, to)`), split into those of
/// one kind and those of different kinds: (pair, likeness dB).
fn likeness_pairs(song: &str, windows: &Windows, sections: &[(&str, f64, f64)]) -> (Pairs, Pairs) {
    let (mut same, mut different) = (Vec::new(), Vec::new());
    for (i, a) in sections.iter().enumerate() {
        for b in &sections[i + 1..] {
            let d = kinds::likeness(windows, (a.1, a.2), (b.1, b.2));
            let what = format!(
                "{song} {} {:.1}–{:.1} / {} {:.1}–{:.1}",
                a.0, a.1, a.2, b.0, b.1, b.2
            );
            if a.0 == b.0 {
                same.push((what, d));
            } else {
                different.push((what, d));
            }
        }
    }
    (same, different)
}

fn windows_of(path: &Path, rate: u32) -> Windows {
    let s = scan::scan(path, rate).unwrap();
    Windows::new(&s, &Grid::fit()).unwrap()
}

/// The corpus songs cut by bars: each part as (kind, from, to). The same kind: the halves
/// of a part (the same instruments, other chords); different kinds: the parts an instrument
/// comes in at (the sax, the choir, the lead synth).
fn corpus_sections(song: &str) -> Vec<(&'static str, f64, f64)> {
    let bar = |bpm: f64| 240.0 / bpm;
    match song {
        // 112 BPM, 8 bars: the sax from bar 2; the chords repeat every 4 bars.
        "rock" => {
            let b = bar(112.0);
            vec![
                ("no sax", 0.0, 2.0 * b),
                ("sax", 2.0 * b, 4.0 * b),
                ("sax", 6.0 * b, 8.0 * b),
            ]
        }
        // 72 BPM, 6 bars: the choir from bar 2.
        "ballad" => {
            let b = bar(72.0);
            vec![
                ("no choir", 0.0, 2.0 * b),
                ("choir", 2.0 * b, 4.0 * b),
                ("choir", 4.0 * b, 6.0 * b),
            ]
        }
        // 128 BPM, 8 bars: the lead synth from bar 4.
        _ => {
            let b = bar(128.0);
            vec![
                ("build", 0.0, 2.0 * b),
                ("build", 2.0 * b, 4.0 * b),
                ("drop", 4.0 * b, 6.0 * b),
                ("drop", 6.0 * b, 8.0 * b),
            ]
        }
    }
}

/// The likeness ([`kinds::likeness`]) of every two sections of one kind and of different
/// kinds, on the 240 s demo (18 sections: 153 pairs) and on the corpus songs, printed: the
/// measurement behind [`kinds`] grouping by names only (the two distributions overlap: no
/// threshold tells a repeat from another section). A measurement, not a check of the code:
/// run it with `cargo test --test suite match_repeats -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement: prints the likeness distributions"]
fn the_likeness_of_sections_measured() {
    let (_, master) = project();
    let (mut same, mut different) =
        likeness_pairs("demo", &windows_of(master, 48_000), &demo_sections());
    if let Some(songs) = corpus::songs() {
        for song in &songs {
            let w = windows_of(&song.dir.join("mix.wav"), song.rate);
            let (s, d) = likeness_pairs(&song.name, &w, &corpus_sections(&song.name));
            same.extend(s);
            different.extend(d);
        }
    }
    same.sort_by(|a, b| a.1.total_cmp(&b.1));
    different.sort_by(|a, b| a.1.total_cmp(&b.1));
    let show = |v: &[(String, f64)]| {
        let vals: Vec<String> = v.iter().map(|x| format!("{:.2}", x.1)).collect();
        vals.join(" ")
    };
    eprintln!("same kind ({}): {}", same.len(), show(&same));
    eprintln!(
        "different kinds ({}): {}",
        different.len(),
        show(&different)
    );
    for (w, d) in same.iter().rev().take(5) {
        eprintln!("  same, least alike: {w}: {d:.2} dB");
    }
    for (w, d) in different.iter().take(8) {
        eprintln!("  different, most alike: {w}: {d:.2} dB");
    }
    let (hi, lo) = (same.last().unwrap().1, different[0].1);
    eprintln!("same kind up to {hi:.2} dB, different kinds from {lo:.2} dB");
}
