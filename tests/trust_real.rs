//! The render's promises on real material: the corpus songs of tests/corpus (stems rendered per
//! instrument by fluidsynth). A delay return's tail ends the master where the music has decayed
//! and the fade lands on it; every deliverable of a loud master stays at or under its true-peak
//! ceiling by an independent 16× reference and by ffmpeg's `ebur128` meter.
use crate::common;
use crate::corpus;

use common::audio::{decode, file_true_peak_16x, peak_db};
use common::tools::{ffmpeg_true_peak, have};
use corpus::{Project, Song};
use std::path::{Path, PathBuf};
use stemgraph::render::{render, RenderOptions, RenderResult};
use stemgraph::script::load_recipe;

fn song<'a>(songs: &'a [Song], name: &str) -> &'a Song {
    songs.iter().find(|s| s.name == name).unwrap()
}

/// The song's lead: the stem a producer would send to a delay.
fn lead(song: &Song) -> &'static str {
    match song.name.as_str() {
        "rock" => "sax",
        "ballad" => "trumpet",
        "electronic" => "lead_synth",
        other => panic!("no lead known for {other}"),
    }
}

/// Writes `<name>.lua` in the project: every stem into a master bus, the lead also into a delay
/// return, then `master_chain` and `deliver`; `session_extra` adds session fields.
fn recipe(
    p: &Project,
    lead: &str,
    name: &str,
    session_extra: &str,
    master_chain: &str,
    deliver: &str,
) -> PathBuf {
    let mut lua = format!(
        "local s = session {{ title = '{}', {session_extra} }}\nlocal m = s:bus 'master'\n\
         local echo = s:bus 'echo'\n",
        p.song
    );
    for stem in &p.stems {
        lua.push_str(&format!(
            "local {stem} = s:stem('{stem}', 'stems/{stem}.wav')\n{stem}:to(m)\n"
        ));
    }
    lua.push_str(&format!(
        "{lead}:to(echo, {{ gain_db = -6 }})\n\
         echo:chain {{ delay {{ time_ms = 375, feedback_pct = 45, mix_pct = 100, low_cut_hz = 200, high_cut_hz = 7000 }} }}:to(m)\n\
         m:chain {{ {master_chain} }}:to(s:output 'main')\n{deliver}\nreturn s\n"
    ));
    let path = p.path(&format!("{name}.lua"));
    std::fs::write(&path, lua).unwrap();
    path
}

fn render_to(recipe: &Path, out: &Path) -> RenderResult {
    let session = load_recipe(recipe).unwrap();
    render(&session, RenderOptions::new(out)).unwrap()
}

fn rms_db(ch: &[Vec<f64>], range: std::ops::Range<usize>) -> f64 {
    let n = (range.len() * ch.len()) as f64;
    let sum: f64 = ch
        .iter()
        .flat_map(|c| &c[range.clone()])
        .map(|v| v * v)
        .sum();
    10.0 * (sum / n).max(1e-30).log10()
}

// ---------------------------------------------------------------------------------------------
// Tails and fades

/// On every corpus song, with a delay return on the lead: the master ends at the song's end
/// plus the tail measured here independently (the last sample above −120 dBFS), the result and
/// the report say that tail, the cut falls where the music has decayed (everything after it in
/// an uncut render stays under the threshold, the second before it is music, not silence), and
/// a fade-out ends on the master's last sample, acting on the decaying music.
#[test]
fn on_real_songs_the_master_ends_where_the_delay_tail_decays_and_the_fade_lands_on_it() {
    let Some(songs) = corpus::songs() else { return };
    for song in &songs {
        let p = song.project();
        let rate = song.rate as usize;
        let lead = lead(song);
        let deliver = r#"s:deliver { file = "master.wav", bits = 32 }"#;
        let out = |name: &str| p.path(name);

        // The whole declared tail, nothing trimmed: no float signal falls under −200 dBFS.
        let full = recipe(
            &p,
            lead,
            "full",
            "tail = { threshold_db = -200 }",
            "",
            deliver,
        );
        let r_full = render_to(&full, &out("full"));
        let (_, long) = decode(&out("full/master.wav"));
        let threshold = 10f64.powf(-120.0 / 20.0);
        let last_loud = (0..long[0].len())
            .rev()
            .find(|&i| long.iter().any(|c| c[i].abs() > threshold))
            .unwrap();
        let end = song.frames;
        assert!(
            last_loud > end + rate / 2,
            "{}: the delay rings on after the song ({} ms)",
            song.name,
            (last_loud - end) * 1000 / rate
        );
        assert!(
            r_full.tail > last_loud + 1 - end,
            "{}: declared tail",
            song.name
        );

        // The default: cut at the last sample above −120 dBFS.
        let trimmed = recipe(&p, lead, "trim", "", "", deliver);
        let r = render_to(&trimmed, &out("trim"));
        let (_, master) = decode(&out("trim/master.wav"));
        let len = master[0].len();
        assert_eq!(len, last_loud + 1, "{}: song end plus the tail", song.name);
        assert_eq!(r.tail, len - end, "{}: the result's tail", song.name);
        for (a, b) in master.iter().zip(&long) {
            assert_eq!(a[..], b[..len], "{}: same samples up to the cut", song.name);
        }
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out("trim/report.json")).unwrap())
                .unwrap();
        assert_eq!(
            report["settings"]["tail_samples"].as_u64().unwrap(),
            r.tail as u64,
            "{}: the report's tail",
            song.name
        );
        // Not cut while ringing: after the cut, the uncut render holds only the delay's last,
        // ever quieter repeats, far under the threshold.
        let after = rms_db(&long, len..long[0].len());
        assert!(
            after < -130.0,
            "{}: {after:.1} dBFS RMS after the cut",
            song.name
        );
        // And not on silence: from a second before the song's end to the cut, every half
        // second holds signal above the threshold (no silence is kept and faded), and the
        // music decays into the cut.
        let half = rate / 2;
        let windows: Vec<f64> = (end - 2 * half..len)
            .step_by(half)
            .map(|a| {
                let b = (a + half).min(len);
                master
                    .iter()
                    .map(|c| peak_db(&c[a..b]))
                    .fold(f64::MIN, f64::max)
            })
            .collect();
        eprintln!(
            "{}: tail {:.2} s; peak per half second from 1 s before the end: {}; RMS after the cut {after:.1} dBFS",
            song.name,
            r.tail as f64 / rate as f64,
            windows.iter().map(|w| format!("{w:.0}")).collect::<Vec<_>>().join(" ")
        );
        assert!(
            windows.iter().all(|&w| w > -120.0),
            "{}: a silent stretch before the cut",
            song.name
        );
        assert!(
            windows[0] > windows[windows.len() - 1] + 20.0,
            "{}: the music decays into the cut",
            song.name
        );

        // A linear fade-out ends on the master's last sample (docs: "Song edits and tails"):
        // one a second or two longer than the tail, so it starts in the song's own decay. Same
        // length, silent last sample, the linear gain along it.
        let fade_s = r.tail / rate + 2;
        let faded = recipe(
            &p,
            lead,
            "fade",
            &format!(r#"fade_out = {{ length = {fade_s}, shape = "linear" }}"#),
            "",
            deliver,
        );
        render_to(&faded, &out("fade"));
        let (_, f) = decode(&out("fade/master.wav"));
        assert_eq!(f[0].len(), len, "{}: the fade keeps the length", song.name);
        let fade = fade_s * rate;
        for (fc, mc) in f.iter().zip(&master) {
            assert_eq!(fc[len - 1], 0.0, "{}: silent on the last sample", song.name);
            assert_eq!(
                fc[..len - fade],
                mc[..len - fade],
                "{}: untouched before",
                song.name
            );
            for i in [len - fade / 2, len - fade / 4, len - 10] {
                let gain = (len - i - 1) as f64 / fade as f64;
                assert!(
                    (fc[i] - mc[i] * gain).abs() < 1e-6,
                    "{}: linear fade at {i}",
                    song.name
                );
            }
        }
        // The fade acts on the music's decay, not on silence: what it takes away peaks far
        // above the threshold.
        let taken = f
            .iter()
            .zip(&master)
            .map(|(a, b)| {
                let removed: Vec<f64> = a.iter().zip(b).map(|(x, y)| y - x).collect();
                peak_db(&removed)
            })
            .fold(f64::MIN, f64::max);
        eprintln!(
            "{}: a {fade_s} s fade takes away up to {taken:.1} dBFS",
            song.name
        );
        assert!(
            taken > -80.0,
            "{}: the fade takes {taken:.1} dBFS",
            song.name
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The ceiling on every deliverable of a loud master

/// The deliverables: 24-bit 48 kHz, 16-bit 44.1 kHz with TPDF dither, 24-bit FLAC at the
/// song's rate, and 32-bit float at 44.1 kHz (the resampler alone, no word length).
const DELIVER: &str = r#"s:deliver { file = "m24_48k.wav", bits = 24, sample_rate_hz = 48000 }
s:deliver { file = "m16_44k.wav", bits = 16, sample_rate_hz = 44100, dither = "tpdf" }
s:deliver(flac { file = "m24.flac", bits = 24 })
s:deliver { file = "m32_44k.wav", bits = 32, sample_rate_hz = 44100 }"#;
const FILES: [&str; 4] = ["m24_48k.wav", "m16_44k.wav", "m24.flac", "m32_44k.wav"];

/// One loud master: the session's target (none: the safety limiter alone holds a master pushed
/// into the ceiling) and ceiling.
struct Loud {
    target: Option<f64>,
    ceiling: f64,
}

/// −9 and −6 LUFS at −1 dBTP, −9 at −0.3, and no target: a bright master 14 dB into a −1 dBTP
/// ceiling with no master limiter (the case that came closest in a wider sweep, see
/// docs/dsp.md).
const CASES: [Loud; 4] = [
    Loud {
        target: Some(-9.0),
        ceiling: -1.0,
    },
    Loud {
        target: Some(-6.0),
        ceiling: -1.0,
    },
    Loud {
        target: Some(-9.0),
        ceiling: -0.3,
    },
    Loud {
        target: None,
        ceiling: -1.0,
    },
];

/// Renders `song` loud (a bright master: a high shelf into the limiter) for each case and
/// checks every deliverable's true peak by the 16× reference and by ffmpeg at or under the
/// ceiling. Prints the smallest margins (ceiling − peak) seen by each.
fn ceiling_holds(song: &Song) {
    let ffmpeg = have("ffmpeg");
    let p = song.project();
    let mut worst = (f64::MAX, f64::MAX);
    for (i, case) in CASES.iter().enumerate() {
        let ceiling = case.ceiling;
        let (session, push) = match case.target {
            Some(t) => (
                format!("target_lufs = {t}, ceiling_dbtp = {ceiling}"),
                format!("limiter {{ ceiling_dbtp = {ceiling} }}"),
            ),
            None => (
                format!("ceiling_dbtp = {ceiling}"),
                "gain { gain_db = 14 }".to_string(),
            ),
        };
        let name = format!("loud{i}");
        let rec = recipe(
            &p,
            lead(song),
            &name,
            &session,
            &format!("eq {{ bands = {{ high_shelf {{ freq_hz = 8000, gain_db = 6 }} }} }}, {push}"),
            DELIVER,
        );
        let out = p.path(&name);
        render_to(&rec, &out);
        let what = format!("{} at {:?} LUFS, ceiling {ceiling}", song.name, case.target);
        for f in FILES {
            let path = out.join(f);
            let tp16 = file_true_peak_16x(&path);
            let tpff = if ffmpeg {
                ffmpeg_true_peak(&path)
            } else {
                f64::NAN
            };
            eprintln!("{what}: {f:12} 16x {tp16:+.4} dBTP, ffmpeg {tpff:+.4} dBTP");
            worst.0 = worst.0.min(ceiling - tp16);
            assert!(
                tp16 <= ceiling,
                "{what}: {f} peaks at {tp16:.4} dBTP by 16x"
            );
            // Not needlessly low: the safety margin costs little.
            assert!(tp16 > ceiling - 0.5, "{what}: {f}: {tp16:.3}");
            if ffmpeg {
                worst.1 = worst.1.min(ceiling - tpff);
                assert!(
                    tpff <= ceiling,
                    "{what}: {f} peaks at {tpff:.4} dBTP by ffmpeg"
                );
            }
        }
    }
    eprintln!(
        "{}: worst margin under the ceiling: {:.4} dB by 16x, {:.4} dB by ffmpeg",
        song.name, worst.0, worst.1
    );
}

#[test]
fn the_rock_songs_deliverables_hold_the_ceiling_by_16x_and_ffmpeg() {
    let Some(songs) = corpus::songs() else { return };
    ceiling_holds(song(&songs, "rock"));
}

#[test]
fn the_ballads_deliverables_hold_the_ceiling_by_16x_and_ffmpeg() {
    let Some(songs) = corpus::songs() else { return };
    ceiling_holds(song(&songs, "ballad"));
}

#[test]
fn the_electronic_songs_deliverables_hold_the_ceiling_by_16x_and_ffmpeg() {
    let Some(songs) = corpus::songs() else { return };
    ceiling_holds(song(&songs, "electronic"));
}
