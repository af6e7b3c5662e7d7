//! The recovery test of `stemgraph match` on real material: the three corpus songs (stems
//! rendered per instrument by fluidsynth, see tests/corpus), each through a master chain with
//! a loudness target. A reference is rendered with a known change (the second stem +3 dB, the
//! fourth −2 dB, a +2 dB high shelf at 8 kHz and a −1.5 dB tilt); matching the unchanged recipe
//! must recover it as on the demo song.
mod common;
mod corpus;
mod matching;

use matching::*;
use std::path::Path;
use stemgraph::dsp::eq::band::BandType;

fn recipe(dir: &Path, song: &corpus::Song) -> std::path::PathBuf {
    let mut lua = String::from(
        "local s = session { title = 'song', target_lufs = -16, ceiling_dbtp = -1 }\nlocal m = s:bus 'master'\n",
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
