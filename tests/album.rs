//! Albums (`stemgraph album`): songs from one template with per-song overrides, the loudness
//! policies, every deliverable (24-bit WAV, resampled and dithered 16-bit 44.1 kHz WAV, FLAC with
//! tags, a CD image with its CUE sheet), incremental renders, and the distributed plan.
//!
//! Songs are the built-in demo song with different seeds, 10 s long. Levels are measured here,
//! on the delivered files, with the crate's meters (true peak 8× oversampled). ffmpeg checks are
//! skipped when ffmpeg is missing, except under `CI=true`, where that is a failure.

use crate::common;

use common::audio::decode;
use common::demo::band_4stem_song;
use common::flac::vorbis_comments;
use common::tools::{ffmpeg_pcm, have};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use stemgraph::album::{render_album, AlbumOptions, AlbumOutcome};
use stemgraph::analysis::meters::{LoudnessMeter, TruePeakMeter};
use stemgraph::demo::DemoOptions;
use stemgraph::script::load_album;

const SECONDS: f64 = 10.0;
/// Slack of a true-peak reading against the ceiling: our 8× meter and the limiter's detector
/// interpolate differently by a few thousandths of a dB.
const TP_SLACK_DB: f64 = 0.02;

/// Writes song `n` (demo seed `seed`) as the four stems band_4stem wants, and its mix.
fn song(dir: &Path, n: usize, seed: u64) {
    let opts = DemoOptions {
        seconds: SECONDS,
        seed,
        ..DemoOptions::default()
    };
    band_4stem_song(dir, n, &opts);
}

fn project(songs: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for n in 1..=songs {
        song(dir.path(), n, 100 + n as u64);
    }
    dir
}

fn render(album: &Path, out: &Path, jobs: usize, only: Option<&str>) -> AlbumOutcome {
    let spec = load_album(album).unwrap();
    let mut opts = AlbumOptions::new(out);
    opts.jobs = jobs;
    opts.only = only.map(|s| spec.find_song(s).unwrap());
    render_album(&spec, &opts).unwrap()
}

fn loudness(path: &Path) -> LoudnessMeter {
    let (rate, ch) = decode(path);
    let mut m = LoudnessMeter::new(f64::from(rate), ch.len());
    let planar: Vec<&[f64]> = ch.iter().map(|c| &c[..]).collect();
    m.push(&planar);
    m
}

fn true_peak_8x(path: &Path) -> f64 {
    let (rate, ch) = decode(path);
    let mut m = TruePeakMeter::new(f64::from(rate), ch.len(), 8);
    let planar: Vec<&[f64]> = ch.iter().map(|c| &c[..]).collect();
    m.push(&planar);
    m.finish();
    m.true_peak_dbtp()
}

/// Every delivered audio file under `out` (not the work folder).
fn delivered(out: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![out.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

fn mtimes(out: &Path) -> BTreeMap<PathBuf, std::time::SystemTime> {
    delivered(out)
        .into_iter()
        .map(|p| {
            let t = std::fs::metadata(&p).unwrap().modified().unwrap();
            (p, t)
        })
        .collect()
}

fn report(out: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out.join("album.json")).unwrap()).unwrap()
}

const DELIVER: &str = r#"
  deliver = {
    wav { file = "{track:02} {title}.wav", bits = 24 },
    wav { file = "cd/{track:02} {title}.wav", bits = 16, sample_rate_hz = 44100 },
    flac { file = "flac/{track:02} {title}.flac", bits = 24 },
  },
"#;

fn album_file(dir: &Path, policy: &str, songs: &str, extra: &str) -> PathBuf {
    album_file_with(dir, policy, DELIVER, songs, extra)
}

fn album_file_with(dir: &Path, policy: &str, deliver: &str, songs: &str, extra: &str) -> PathBuf {
    let path = dir.join("album.lua");
    std::fs::write(
        &path,
        format!(
            r#"return album {{
  title = "Test Album", artist = "The Examples",
  template = "band_4stem",
  policy = {policy},
  {deliver}
  {extra}
  songs = {{
{songs}
  }},
}}
"#
        ),
    )
    .unwrap();
    path
}

const THREE_SONGS: &str = r#"
    { title = "One", stems = "songs/01/stems", isrc = "GB-AYE-24-00001" },
    { title = "Two", stems = "songs/02/stems", vocals = { gain_db = 1 } },
    { title = "Three", stems = "songs/03/stems", drums = { gain_db = -3 } },
"#;

/// Every delivered file's true peak (8×) is at or under the ceiling.
fn assert_ceiling(out: &Path, ceiling: f64) {
    for f in delivered(out) {
        let ext = f.extension().and_then(|e| e.to_str()).unwrap_or("");
        if ext != "wav" && ext != "flac" {
            continue;
        }
        let tp = true_peak_8x(&f);
        assert!(
            tp <= ceiling + TP_SLACK_DB,
            "{}: true peak {tp:.3} dBTP over the {ceiling} dBTP ceiling",
            f.display()
        );
    }
}

#[test]
fn one_template_per_track_loudness_and_incremental_renders() {
    let dir = project(3);
    // The template lives beside the album (found first on the search path), so the test can
    // change it.
    let template = dir.path().join("band_4stem.lua");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("graphs/band_4stem.lua"),
        &template,
    )
    .unwrap();
    // Song Three is a recipe of its own, built on the same template.
    std::fs::write(
        dir.path().join("three.lua"),
        r#"local band = template "band_4stem"
return band {
  title = "Three", tempo_bpm = 120,
  stems = { drums = "songs/03/stems/drums.wav", bass = "songs/03/stems/bass.wav",
            music = "songs/03/stems/music.wav", vocals = "songs/03/stems/vocals.wav" },
  drums = { gain_db = -3 },
  master = { target_lufs = -20 },
}
"#,
    )
    .unwrap();
    let songs = THREE_SONGS.replace(
        r#"{ title = "Three", stems = "songs/03/stems", drums = { gain_db = -3 } },"#,
        r#"{ recipe = "three.lua" },"#,
    );
    let policy = r#"{ mode = "per_track", target_lufs = -14, ceiling_dbtp = -1 }"#;
    let album = album_file(dir.path(), policy, &songs, "");
    let out = dir.path().join("out");

    let first = render(&album, &out, 2, None);
    assert_eq!(first.rendered, vec![1, 2, 3]);
    assert_eq!(first.measured, vec![1, 2, 3]);
    assert!(first.report.is_some());
    // Per track: every song on its target, measured on the files.
    for name in ["01 One.wav", "02 Two.wav", "03 Three.wav"] {
        let l = loudness(&out.join(name)).integrated_lufs();
        assert!((l + 14.0).abs() <= 0.1, "{name}: {l:.3} LUFS");
    }
    assert_ceiling(&out, -1.0);
    let r = report(&out);
    assert_eq!(r["policy"]["mode"], "per_track");
    assert_eq!(r["songs"].as_array().unwrap().len(), 3);
    for s in r["songs"].as_array().unwrap() {
        assert!(s["off_target_lu"].as_f64().unwrap().abs() <= 0.1);
        for key in [
            "integrated_lufs",
            "loudness_range_lu",
            "true_peak_dbtp",
            "plr_db",
            "gain_reduction_lu",
        ] {
            assert!(s[key].is_number(), "{key} missing");
        }
    }
    assert!(r["spread"]["integrated_lu"].as_f64().unwrap() <= 0.2);
    assert!(out.join("album.md").is_file());

    // Nothing changed: nothing is measured, rendered or written.
    let before = mtimes(&out);
    let second = render(&album, &out, 2, None);
    assert!(second.rendered.is_empty() && second.measured.is_empty());
    assert!(second.report.is_none());
    assert_eq!(mtimes(&out), before);

    // One song's override changes that song only.
    let album = album_file(
        dir.path(),
        policy,
        &songs.replace("vocals = { gain_db = 1 }", "vocals = { gain_db = 2 }"),
        "",
    );
    let one_before = std::fs::read(out.join("01 One.wav")).unwrap();
    let third = render(&album, &out, 2, None);
    assert_eq!(third.measured, vec![2]);
    assert_eq!(third.rendered, vec![2]);
    assert_eq!(std::fs::read(out.join("01 One.wav")).unwrap(), one_before);
    let after = mtimes(&out);
    for (p, t) in &after {
        let name = p.file_name().unwrap().to_string_lossy();
        if name.starts_with("02") || name.starts_with("album") {
            continue;
        }
        assert_eq!(before.get(p), Some(t), "{} was rewritten", p.display());
    }

    // The shared template changes every song: each is measured and rendered again, and each
    // song's master comes out different.
    let masters = ["01 One.wav", "02 Two.wav", "03 Three.wav"];
    let before_template: Vec<Vec<u8>> = masters
        .iter()
        .map(|n| std::fs::read(out.join(n)).unwrap())
        .collect();
    let text = std::fs::read_to_string(&template).unwrap();
    std::fs::write(
        &template,
        text.replace(
            "bell { freq_hz = 250, gain_db = -1.0, q = 1.0 }",
            "bell { freq_hz = 250, gain_db = -2.5, q = 1.0 }",
        ),
    )
    .unwrap();
    let fourth = render(&album, &out, 2, None);
    assert_eq!(fourth.measured, vec![1, 2, 3]);
    assert_eq!(fourth.rendered, vec![1, 2, 3]);
    for (n, old) in masters.iter().zip(&before_template) {
        assert!(
            std::fs::read(out.join(n)).unwrap() != *old,
            "{n} did not change with the template"
        );
    }

    // --only re-renders one song, even unchanged.
    let fifth = render(&album, &out, 2, Some("Three"));
    assert_eq!(fifth.rendered, vec![3]);
    assert!(fifth.stale.is_empty());
    assert!(render(&album, &out, 1, None).rendered.is_empty());
}

/// The pre-limiter master a song's measure job spilled (`.stemgraph-album/spill/NN-<key>.wav`).
fn spill_of(out: &Path, track: usize) -> PathBuf {
    let dir = out.join(".stemgraph-album/spill");
    let prefix = format!("{track:02}-");
    let found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(&prefix) && name.ends_with(".wav")
        })
        .collect();
    assert_eq!(found.len(), 1, "spills of track {track}: {found:?}");
    found[0].clone()
}

/// The songs of the album-gain tests: Two is 5 dB quieter, Three is peaky (hot drums, no glue).
const UNEVEN_SONGS: &str = r#"
    { title = "One", stems = "songs/01/stems" },
    { title = "Two", stems = "songs/02/stems", drums = { gain_db = -5 }, bass = { gain_db = -5 }, music = { gain_db = -5 }, vocals = { gain_db = -5 } },
    { title = "Three", stems = "songs/03/stems", drums = { gain_db = 5 }, master = { glue = false } },
"#;

/// What an album-gain render did to every song, measured by the test itself: the delivered
/// 24-bit masters and the pre-limiter spills, with our meter.
struct AlbumGainLevels {
    /// Index of the reference song (the report's).
    reference: usize,
    /// Integrated loudness of each delivered master, LUFS.
    out: Vec<f64>,
    /// Integrated loudness of each pre-limiter master (the spill), LUFS.
    pre: Vec<f64>,
    /// The one drive, dB.
    drive: f64,
    /// The report's limiting shift of each song, LU.
    shift: Vec<f64>,
}

/// Measures the songs of an album-gain render and checks what must hold whatever the limiter
/// did: one drive for every song; the reference is the loudest and on `target` ±0.1 LU; the
/// report's pre-limiter loudness and gain reduction are what the files say; and each song's
/// departure from its pre-limiter distance to the reference is the limiting shift the report
/// gives (±0.05 LU), with a note whenever that shift exceeds 0.1 LU and none otherwise.
fn album_gain_levels(out: &Path, target: f64) -> AlbumGainLevels {
    let r = report(out);
    let reference = r["reference_track"].as_u64().unwrap() as usize - 1;
    let songs = r["songs"].as_array().unwrap();
    let names = ["01 One.wav", "02 Two.wav", "03 Three.wav"];
    let out_lufs: Vec<f64> = names
        .iter()
        .map(|n| loudness(&out.join(n)).integrated_lufs())
        .collect();
    let pre: Vec<f64> = (1..=3)
        .map(|t| loudness(&spill_of(out, t)).integrated_lufs())
        .collect();
    let field = |key: &str| -> Vec<f64> {
        songs
            .iter()
            .map(|s| s[key].as_f64().unwrap_or_else(|| panic!("{key}")))
            .collect()
    };
    let (drives, shift, gr, pre_r) = (
        field("drive_db"),
        field("limiting_shift_lu"),
        field("gain_reduction_lu"),
        field("pre_limiter_lufs"),
    );
    eprintln!(
        "album gain at {target} LUFS: delivered {out_lufs:.3?}, pre-limiter {pre:.3?}, drive {:.3}, \
         shifts {shift:.3?}, gain reduction {gr:.3?}",
        drives[0]
    );
    assert!(drives.iter().all(|d| *d == drives[0]), "{drives:?}");
    assert_eq!(r["album_gain_db"].as_f64(), Some(drives[0]));
    assert!(
        (out_lufs[reference] - target).abs() <= 0.1,
        "the reference at {:.3} LUFS",
        out_lufs[reference]
    );
    assert!(out_lufs.iter().all(|l| *l <= out_lufs[reference] + 0.05));
    let notes: Vec<&str> = r["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    for i in 0..3 {
        assert!(
            (pre_r[i] - pre[i]).abs() <= 0.01,
            "song {}: pre-limiter",
            i + 1
        );
        // The limiter's cost: the drive minus what the song gained, on the files.
        let cost = drives[0] - (out_lufs[i] - pre[i]);
        assert!(
            (gr[i] - cost).abs() <= 0.02,
            "song {}: gain reduction",
            i + 1
        );
        assert!(
            cost >= -0.05,
            "song {}: the limiter added {cost:.3} LU",
            i + 1
        );
        let departure = (out_lufs[i] - out_lufs[reference]) - (pre[i] - pre[reference]);
        assert!(
            (departure - shift[i]).abs() <= 0.05,
            "song {}: {departure:.3} LU from its distance to the reference, the report says {:.3}",
            i + 1,
            shift[i]
        );
        let noted = notes
            .iter()
            .any(|n| n.starts_with(&format!("track {} ", i + 1)));
        assert_eq!(noted, shift[i].abs() > 0.1, "song {}: {notes:?}", i + 1);
    }
    AlbumGainLevels {
        reference,
        out: out_lufs,
        pre,
        drive: drives[0],
        shift,
    }
}

#[test]
fn album_gain_keeps_relative_loudness_where_the_limiter_leaves_it() {
    // A quiet target: one gain for every song brings the loudest to -18 LUFS, below where the
    // limiter works, so every song keeps its pre-limiter distance to every other within 0.1 LU.
    let dir = project(3);
    let policy =
        r#"{ mode = "album_gain", key = "loudest", target_lufs = -18, ceiling_dbtp = -1 }"#;
    let album = album_file(dir.path(), policy, UNEVEN_SONGS, "");
    let out = dir.path().join("out");
    render(&album, &out, 2, None);
    let l = album_gain_levels(&out, -18.0);
    for i in 0..3 {
        for j in 0..3 {
            let kept = (l.out[i] - l.out[j]) - (l.pre[i] - l.pre[j]);
            assert!(
                kept.abs() <= 0.1,
                "songs {} and {}: their distance moved by {kept:.3} LU",
                i + 1,
                j + 1
            );
        }
        assert!(l.shift[i].abs() <= 0.1);
    }
    // The songs are not on one level: the test would catch a gain per song.
    let spread = l.out.iter().copied().fold(f64::MIN, f64::max)
        - l.out.iter().copied().fold(f64::MAX, f64::min);
    assert!(spread > 3.0, "spread {spread:.2} LU");
    assert_ceiling(&out, -1.0);
    assert_eq!(report(&out)["ceiling_holds"], true);
}

#[test]
fn album_gain_keeps_relative_loudness_and_follows_the_loudest_song() {
    let dir = project(3);
    // A loud target so the limiter works: the peaky song is held back most, and the report says
    // how far each song's own limiting moved it.
    let policy =
        r#"{ mode = "album_gain", key = "loudest", target_lufs = -10, ceiling_dbtp = -1 }"#;
    let album = album_file(dir.path(), policy, UNEVEN_SONGS, "");
    let out = dir.path().join("out");
    let first = render(&album, &out, 2, None);
    let l = album_gain_levels(&out, -10.0);
    assert_eq!(first.gain.reference_track, Some(l.reference + 1));
    assert!(
        l.shift.iter().any(|s| s.abs() > 0.1),
        "no song's own limiting moved it: the test is not exercising that"
    );
    assert_ceiling(&out, -1.0);
    assert_eq!(report(&out)["ceiling_holds"], true);

    // Nothing changed: nothing is measured, solved or rendered.
    let before = mtimes(&out);
    let again = render(&album, &out, 2, None);
    assert!(again.measured.is_empty() && again.rendered.is_empty());
    assert!(again.report.is_none());
    assert_eq!(mtimes(&out), before);

    // A change to a song that stays below the loudest leaves the album gain where it was: only
    // that song is rendered again.
    assert_ne!(l.reference, 0, "song One must not be the reference here");
    let one_louder = UNEVEN_SONGS.replace(
        r#"{ title = "One", stems = "songs/01/stems" }"#,
        r#"{ title = "One", stems = "songs/01/stems", vocals = { gain_db = 1 } }"#,
    );
    let album = album_file(dir.path(), policy, &one_louder, "");
    let third = render(&album, &out, 2, None);
    assert_eq!(third.measured, vec![1]);
    assert_eq!(third.rendered, vec![1]);
    assert_eq!(third.gain.album_gain_db, Some(l.drive));
    assert_eq!(
        third.report.as_ref().unwrap().album_gain_move,
        None,
        "the album gain did not move"
    );
    let manifest = |out: &Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(out.join(".stemgraph-album/manifest.json")).unwrap())
            .unwrap()
    };
    assert!(manifest(&out)["album_gain_move"].is_null());

    // Song Two becomes the loudest: the album gain moves, every song is rendered again, and the
    // report and the manifest say by how much, which song moved it and which were rendered again
    // for the new gain alone.
    let louder = one_louder.replace("gain_db = -5", "gain_db = 6");
    let album = album_file(dir.path(), policy, &louder, "");
    let fourth = render(&album, &out, 2, None);
    assert_eq!(fourth.measured, vec![2]);
    assert_eq!(fourth.gain.reference_track, Some(2));
    assert_eq!(fourth.rendered, vec![1, 2, 3]);
    let l2 = loudness(&out.join("02 Two.wav")).integrated_lufs();
    assert!((l2 + 10.0).abs() <= 0.1, "{l2}");
    let new_gain = fourth.gain.album_gain_db.unwrap();
    assert!(new_gain < l.drive, "{new_gain} vs {}", l.drive);
    let r = report(&out);
    let moved = &r["album_gain_move"];
    assert_eq!(moved["previous_db"].as_f64(), Some(l.drive));
    assert_eq!(moved["current_db"].as_f64(), Some(new_gain));
    assert!((moved["moved_db"].as_f64().unwrap() - (new_gain - l.drive)).abs() < 1e-12);
    assert_eq!(moved["changed_tracks"], serde_json::json!([2]));
    assert_eq!(moved["moved_tracks"], serde_json::json!([1, 3]));
    assert_eq!(&manifest(&out)["album_gain_move"], moved);
    let md = std::fs::read_to_string(out.join("album.md")).unwrap();
    assert!(md.contains("the album gain moved from"), "{md}");
    // The song Two's change did not change One and Three's measurements, only their drive.
    let m = manifest(&out);
    for s in m["songs"].as_array().unwrap() {
        assert_eq!(s["drive_db"].as_f64(), Some(new_gain));
    }
}

#[test]
fn album_gain_keyed_to_the_whole_album() {
    let dir = project(3);
    let policy = r#"{ mode = "album_gain", key = "whole", target_lufs = -14, ceiling_dbtp = -1 }"#;
    let album = album_file(dir.path(), policy, THREE_SONGS, "");
    let out = dir.path().join("out");
    let outcome = render(&album, &out, 2, None);
    assert!(outcome.gain.album_gain_db.is_some());
    assert_eq!(outcome.gain.reference_track, None);
    let meters: Vec<LoudnessMeter> = ["01 One.wav", "02 Two.wav", "03 Three.wav"]
        .iter()
        .map(|n| loudness(&out.join(n)))
        .collect();
    let refs: Vec<&LoudnessMeter> = meters.iter().collect();
    let album_lufs = LoudnessMeter::integrated_lufs_of(&refs);
    assert!(
        (album_lufs + 14.0).abs() <= 0.1,
        "album at {album_lufs:.3} LUFS"
    );
    let r = report(&out);
    assert!((r["album_integrated_lufs"].as_f64().unwrap() - album_lufs).abs() < 0.01);
    assert_eq!(r["policy"]["key"], "whole");
    assert_ceiling(&out, -1.0);
    // The Markdown report has the table, the spread and the policy.
    let md = std::fs::read_to_string(out.join("album.md")).unwrap();
    for want in [
        "**Policy:** album gain: one gain for every song, the whole album at -14 LUFS",
        "| # | title | integrated LUFS | LRA LU | true peak dBTP | PLR dB |",
        "| | **spread** |",
        "keyed to the whole album",
    ] {
        assert!(md.contains(want), "{want:?} not in\n{md}");
    }
    // A second run solves nothing and renders nothing.
    let again = render(&album, &out, 2, None);
    assert!(again.measured.is_empty() && again.rendered.is_empty() && again.report.is_none());
    assert_eq!(again.gain, outcome.gain);
}

/// Samples of a 16-bit WAV, interleaved.
fn ints16(path: &Path) -> (hound::WavSpec, Vec<i32>) {
    let mut r = hound::WavReader::open(path).unwrap();
    let spec = r.spec();
    (spec, r.samples::<i32>().map(|s| s.unwrap()).collect())
}

/// Integers of a file decoded by our decoder at `bits`.
fn decoded_ints(path: &Path, bits: u32) -> Vec<Vec<i64>> {
    let full = (1i64 << (bits - 1)) as f64;
    decode(path)
        .1
        .into_iter()
        .map(|c| c.into_iter().map(|x| (x * full) as i64).collect())
        .collect()
}

/// The tags of a FLAC file as symphonia reads them (key upper-cased).
fn symphonia_tags(path: &Path) -> BTreeMap<String, String> {
    common::flac::symphonia_tags(path)
}

/// The samples of a PCM WAV's `data` chunk, as stored.
fn wav_data(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!((&bytes[..4], &bytes[8..12]), (&b"RIFF"[..], &b"WAVE"[..]));
    let mut at = 12;
    while at + 8 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        if &bytes[at..at + 4] == b"data" {
            return bytes[at + 8..at + 8 + len].to_vec();
        }
        at += 8 + len + (len & 1);
    }
    panic!("{}: no data chunk", path.display());
}

#[test]
fn cd_masters_flac_tags_and_the_cd_image() {
    let dir = project(2);
    let policy = r#"{ mode = "album_gain", target_lufs = -14, ceiling_dbtp = -1 }"#;
    let songs = r#"
    { title = "One", stems = "songs/01/stems", isrc = "GB-AYE-24-00001" },
    { title = "Two", stems = "songs/02/stems", gap_s = 1.5 },
"#;
    let extra = r#"
  cd = { file = "cd image/{album}.wav", cue = "{album}.cue" },
  gap_s = 2,
"#;
    let path = dir.path().join("album.lua");
    std::fs::write(
        &path,
        format!(
            r#"return album {{
  title = "Test Album", artist = "The Examples",
  template = "band_4stem",
  policy = {policy},
  deliver = {{
    wav {{ file = "{{track:02}} {{title}}.wav", bits = 24 }},
    wav {{ file = "cd/{{track:02}} {{title}}.wav", bits = 16, sample_rate_hz = 44100 }},
    wav {{ file = "plain/{{track:02}} {{title}}.wav", bits = 16, sample_rate_hz = 44100, dither = "none" }},
    flac {{ file = "flac/{{track:02}} {{title}}.flac", bits = 24 }},
    flac {{ file = "flac16/{{track:02}} {{title}}.flac", bits = 16, sample_rate_hz = 44100, tags = {{ GENRE = "Test" }} }},
  }},
  {extra}
  songs = {{ {songs} }},
}}
"#
        ),
    )
    .unwrap();
    let out = dir.path().join("out");
    render(&path, &out, 2, None);

    for (n, title) in [(1, "One"), (2, "Two")] {
        let wav24 = out.join(format!("{n:02} {title}.wav"));
        let cd = out.join(format!("cd/{n:02} {title}.wav"));
        let plain = out.join(format!("plain/{n:02} {title}.wav"));
        // Length: the 48 kHz length × 44100/48000, within one sample.
        let frames48 = hound::WavReader::open(&wav24).unwrap().duration() as f64;
        let (spec, dithered) = ints16(&cd);
        assert_eq!((spec.sample_rate, spec.bits_per_sample), (44_100, 16));
        let frames44 = (dithered.len() / 2) as f64;
        assert!(
            (frames44 - frames48 * 44_100.0 / 48_000.0).abs() <= 1.0,
            "{frames44} frames at 44.1 kHz for {frames48} at 48 kHz"
        );
        // The true peak after resampling holds the ceiling.
        let tp = true_peak_8x(&cd);
        assert!(tp <= -1.0 + TP_SLACK_DB, "16-bit master at {tp:.3} dBTP");
        // The report's true peak of that deliverable is the one measured on the 44.1 kHz file.
        let r = report(&out);
        let file = r["songs"][n - 1]["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == format!("cd/{n:02} {title}.wav"))
            .unwrap()
            .clone();
        assert_eq!(file["sample_rate_hz"], 44_100);
        assert_eq!(file["dithered"], true);
        let reported = file["true_peak_dbtp"].as_f64().unwrap();
        assert!(
            (reported - tp).abs() <= 0.01,
            "report {reported}, file {tp}"
        );
        // Dithered: against the undithered (rounded) master of the same signal, the difference
        // is what TPDF dither of ±1 LSB does: centred, never beyond 1 LSB, and nonzero a third of
        // the time, so its variance is 1/3 LSB² (rectangular dither would give 1/4, none 0).
        let (_, undithered) = ints16(&plain);
        assert_eq!(undithered.len(), dithered.len());
        let diff: Vec<f64> = dithered
            .iter()
            .zip(&undithered)
            .map(|(a, b)| f64::from(a - b))
            .collect();
        let mean = diff.iter().sum::<f64>() / diff.len() as f64;
        let var = diff.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / diff.len() as f64;
        let max = diff.iter().fold(0.0f64, |m, d| m.max(d.abs()));
        // The noise floor where the music has faded out (the last 100 ms): the dithered master
        // carries the dither's noise there, about 0.5 LSB RMS, where the undithered one has
        // (nearly) digital silence.
        let rms_db = |x: &[i32]| {
            let p = x.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / x.len() as f64;
            10.0 * (p / (32768.0f64 * 32768.0)).log10()
        };
        let tail = 2 * 4410;
        let floor = rms_db(&dithered[dithered.len() - tail..]);
        let plain_floor = rms_db(&undithered[undithered.len() - tail..]);
        eprintln!(
            "dither: difference mean {mean:.4}, variance {var:.3} LSB², max {max}; noise floor of \
             the last 100 ms {floor:.1} dBFS dithered, {plain_floor:.1} dBFS undithered"
        );
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((0.29..0.37).contains(&var), "variance {var} LSB²");
        assert!(max <= 1.0, "max {max}");
        // TPDF dither of ±1 LSB over silence: a quarter of the samples at ±1 LSB, so 0.5 LSB
        // RMS, 20·log10(0.5/32768) = −96.3 dBFS.
        assert!((floor + 96.3).abs() <= 1.0, "noise floor {floor:.1} dBFS");
        assert!(
            plain_floor < floor - 20.0,
            "the undithered tail is not quieter: the test does not look at silence"
        );

        // FLAC: bit-identical to the WAV it encodes, with its tags.
        let flac = out.join(format!("flac/{n:02} {title}.flac"));
        assert_eq!(decoded_ints(&flac, 24), decoded_ints(&wav24, 24));
        let flac16 = out.join(format!("flac16/{n:02} {title}.flac"));
        assert_eq!(decoded_ints(&flac16, 16), decoded_ints(&cd, 16));
        let tags: BTreeMap<String, String> = vorbis_comments(&flac).into_iter().collect();
        assert_eq!(tags["TITLE"], title);
        assert_eq!(tags["ARTIST"], "The Examples");
        assert_eq!(tags["ALBUM"], "Test Album");
        assert_eq!(tags["TRACKNUMBER"], n.to_string());
        assert_eq!(tags["TRACKTOTAL"], "2");
        assert_eq!(
            tags.get("ISRC").map(String::as_str),
            (n == 1).then_some("GBAYE2400001")
        );
        let tags16: BTreeMap<String, String> = vorbis_comments(&flac16).into_iter().collect();
        assert_eq!(tags16["GENRE"], "Test");
        // symphonia reads the same tags.
        let read = symphonia_tags(&flac);
        for key in ["TITLE", "ARTIST", "ALBUM", "TRACKNUMBER", "TRACKTOTAL"] {
            assert_eq!(read.get(key), tags.get(key), "symphonia: {key}");
        }
        assert_eq!(read.get("ISRC"), tags.get("ISRC"), "symphonia: ISRC");
        if have("ffmpeg") {
            // ffmpeg decodes both FLACs to the very samples of the WAVs they encode.
            assert!(
                ffmpeg_pcm(&flac, 24) == wav_data(&wav24),
                "ffmpeg decodes the 24-bit FLAC differently"
            );
            assert!(
                ffmpeg_pcm(&flac16, 16) == wav_data(&cd),
                "ffmpeg decodes the 16-bit FLAC differently"
            );
            let probe = Command::new("ffprobe")
                .args(["-v", "error", "-show_entries", "format_tags", "-of", "json"])
                .arg(&flac)
                .output()
                .unwrap();
            assert!(probe.status.success());
            let json: serde_json::Value = serde_json::from_slice(&probe.stdout).unwrap();
            let t = json["format"]["tags"].as_object().unwrap();
            let get = |k: &str| {
                t.iter()
                    .find(|(key, _)| key.eq_ignore_ascii_case(k))
                    .map(|(_, v)| v.as_str().unwrap().to_string())
            };
            assert_eq!(get("title").as_deref(), Some(title));
            assert_eq!(get("artist").as_deref(), Some("The Examples"));
            assert_eq!(get("album").as_deref(), Some("Test Album"));
            assert_eq!(get("track").as_deref(), Some(n.to_string().as_str()));
            assert_eq!(get("isrc").as_deref(), (n == 1).then_some("GBAYE2400001"));
        }
    }

    // The CD image: tracks start on 588-sample frames, gaps are silent, the songs are their CD
    // tracks, and the CUE sheet says where.
    let image = out.join("cd image/Test Album.wav");
    let cue = std::fs::read_to_string(out.join("Test Album.cue")).unwrap();
    assert!(
        cue.contains("FILE \"cd image/Test Album.wav\" WAVE"),
        "{cue}"
    );
    assert!(cue.contains("ISRC GBAYE2400001"));
    let msf = |s: &str| {
        let p: Vec<u64> = s.split(':').map(|x| x.parse().unwrap()).collect();
        ((p[0] * 60 + p[1]) * 75 + p[2]) * 588
    };
    let index = |track: usize, idx: &str| {
        let block = cue
            .split(&format!("TRACK {track:02} AUDIO"))
            .nth(1)
            .unwrap();
        block
            .lines()
            .find_map(|l| l.trim().strip_prefix(&format!("INDEX {idx} ")))
            .map(msf)
    };
    assert_eq!(index(1, "01"), Some(0));
    let i00 = index(2, "00").unwrap();
    let i01 = index(2, "01").unwrap();
    assert_eq!(
        i01 - i00,
        (1.5f64 * 75.0).round() as u64 * 588,
        "the pregap is song Two's gap_s"
    );
    assert_eq!(i00 % 588, 0);
    let (_, img) = ints16(&image);
    assert_eq!((img.len() / 2) % 588, 0, "the image is whole CD frames");
    // The image is made of the CD masters the album delivers.
    let (_, t1) = ints16(&out.join("cd/01 One.wav"));
    let (_, t2) = ints16(&out.join("cd/02 Two.wav"));
    assert_eq!(&img[..t1.len()], &t1[..]);
    assert!(
        img[t1.len()..2 * i01 as usize].iter().all(|s| *s == 0),
        "gap not silent"
    );
    assert_eq!(&img[2 * i01 as usize..2 * i01 as usize + t2.len()], &t2[..]);
    assert_ceiling(&out, -1.0);
}

#[test]
fn plan_jobs_and_finish_in_separate_processes_give_the_same_bits() {
    let dir = project(3);
    let policy = r#"{ mode = "album_gain", key = "whole", target_lufs = -14, ceiling_dbtp = -1 }"#;
    // No CD master among the deliverables: the CD image gets CD tracks of its own.
    let deliver = r#"
  deliver = {
    wav { file = "{track:02} {title}.wav", bits = 24 },
    flac { file = "flac/{track:02} {title}.flac", bits = 16, sample_rate_hz = 44100 },
  },
"#;
    let album = album_file_with(dir.path(), policy, deliver, THREE_SONGS, "cd = true,");
    let one = dir.path().join("one");
    render(&album, &one, 2, None);

    let bin = env!("CARGO_BIN_EXE_stemgraph");
    let many = dir.path().join("many");
    let plan_path = dir.path().join("plan.json");
    let run = |args: &[String]| {
        let o = Command::new(bin).args(args).output().unwrap();
        assert!(
            o.status.success(),
            "stemgraph {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    run(&[
        "album".into(),
        album.display().to_string(),
        "--out".into(),
        many.display().to_string(),
        "--plan".into(),
        plan_path.display().to_string(),
    ]);
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&plan_path).unwrap()).unwrap();
    let phases = plan["phases"].as_array().unwrap();
    assert_eq!(phases.len(), 2);
    assert_eq!(phases[0]["phase"], "measure");
    assert_eq!(phases[1]["phase"], "render");
    let args = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect()
    };
    // A render job before the gain step is refused.
    let early = Command::new(bin)
        .args(args(&phases[1]["jobs"][0]["args"]))
        .output()
        .unwrap();
    assert!(!early.status.success());
    for phase in phases {
        // Jobs of a phase are independent: run them in reverse order.
        for job in phase["jobs"].as_array().unwrap().iter().rev() {
            run(&args(&job["args"]));
        }
        run(&args(&phase["then"]));
    }
    let a = delivered(&one);
    let b = delivered(&many);
    let rel = |base: &Path, v: &[PathBuf]| -> Vec<PathBuf> {
        v.iter()
            .map(|p| p.strip_prefix(base).unwrap().to_path_buf())
            .collect()
    };
    assert_eq!(rel(&one, &a), rel(&many, &b));
    assert!(a.len() >= 3 * 2 + 4, "{a:?}");
    assert!(one.join(".stemgraph-album/cd/03.wav").is_file());
    for (x, y) in a.iter().zip(&b) {
        assert!(
            std::fs::read(x).unwrap() == std::fs::read(y).unwrap(),
            "{} differs",
            x.display()
        );
    }
}

#[test]
fn album_file_mistakes_are_errors_that_say_where() {
    let dir = project(1);
    let load = |body: &str| {
        let p = dir.path().join("bad.lua");
        std::fs::write(&p, body).unwrap();
        load_album(&p).map(|_| ()).unwrap_err().to_string()
    };
    let e = load(r#"return album { songs = { { title = "One", stems = "songs/01/stems" } } }"#);
    assert!(e.contains("song 1 (One)") && e.contains("template"), "{e}");
    let e = load(
        r#"return album { template = "band_4stem", songs = { { title = "One", stems = "songs/01/stems", isrc = "XX" } } }"#,
    );
    assert!(e.contains("ISRC") && e.contains("bad.lua:1"), "{e}");
    let e = load(
        r#"return album { template = "band_4stem", policy = { mode = "loud" }, songs = { { stems = "songs/01/stems" } } }"#,
    );
    assert!(e.contains("per_track"), "{e}");
    let e = load(r#"return album { template = "band_4stem", songs = { { stems = "nowhere" } } }"#);
    assert!(e.contains("nowhere"), "{e}");
    let e = load("return session {}");
    assert!(e.contains("album"), "{e}");
    let e = load(r#"return album { songs = {} }"#);
    assert!(e.contains("at least one song"), "{e}");
    // Two songs writing one file.
    let p = dir.path().join("clash.lua");
    std::fs::write(
        &p,
        r#"return album { template = "band_4stem", deliver = { wav { file = "master.wav" } },
  songs = { { stems = "songs/01/stems" }, { stems = "songs/01/stems" } } }"#,
    )
    .unwrap();
    let spec = load_album(&p).unwrap();
    let e = render_album(&spec, &AlbumOptions::new(dir.path().join("out")))
        .unwrap_err()
        .to_string();
    assert!(e.contains("both write master.wav"), "{e}");
}
