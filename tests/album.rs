//! Albums (`stemgraph album`): songs from one template with per-song overrides, the loudness
//! policies, every deliverable (24-bit WAV, resampled and dithered 16-bit 44.1 kHz WAV, FLAC with
//! tags, a CD image with its CUE sheet), incremental renders, and the distributed plan.
//!
//! Songs are the built-in demo song with different seeds, 10 s long. Levels are measured here,
//! on the delivered files, with the crate's meters (true peak 8× oversampled). ffmpeg checks are
//! skipped when ffmpeg is missing, except under `CI=true`, where that is a failure.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use stemgraph::album::{render_album, AlbumOptions, AlbumOutcome};
use stemgraph::analysis::meters::{LoudnessMeter, TruePeakMeter};
use stemgraph::demo::{write_demo, DemoOptions};
use stemgraph::io::decode::Decoder;
use stemgraph::script::load_album;

const SECONDS: f64 = 10.0;
/// Slack of a true-peak reading against the ceiling: our 8× meter and the limiter's detector
/// interpolate differently by a few thousandths of a dB.
const TP_SLACK_DB: f64 = 0.02;

/// Writes song `n` (demo seed `seed`) as the four stems band_4stem wants, and its mix.
fn song(dir: &Path, n: usize, seed: u64) {
    let song_dir = dir.join(format!("songs/{n:02}"));
    write_demo(
        &song_dir,
        &DemoOptions {
            seconds: SECONDS,
            seed,
            ..DemoOptions::default()
        },
    )
    .unwrap();
    let stems = song_dir.join("stems");
    std::fs::rename(stems.join("keys.wav"), stems.join("music.wav")).unwrap();
    std::fs::rename(stems.join("lead.wav"), stems.join("vocals.wav")).unwrap();
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

/// Decodes a file into planar f64.
fn decode(path: &Path) -> (u32, Vec<Vec<f64>>) {
    let mut d = Decoder::open(path).unwrap();
    let info = d.info().clone();
    let mut out = vec![Vec::new(); info.channels];
    let mut bufs = vec![vec![0.0; 8192]; info.channels];
    loop {
        let n = {
            let mut s: Vec<&mut [f64]> = bufs.iter_mut().map(|b| &mut b[..]).collect();
            d.read(&mut s, 8192).unwrap()
        };
        if n == 0 {
            break;
        }
        for (o, b) in out.iter_mut().zip(&bufs) {
            o.extend_from_slice(&b[..n]);
        }
    }
    (info.sample_rate, out)
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

/// Whether `tool` runs; under `CI=true` its absence fails the test.
fn have(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg("-version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{tool} is required under CI=true"
        );
        eprintln!("note: {tool} not found; skipping the checks that need it");
    }
    ok
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

    // The shared template changes every song.
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
    assert_eq!(fourth.rendered, vec![1, 2, 3]);

    // --only re-renders one song, even unchanged.
    let fifth = render(&album, &out, 2, Some("Three"));
    assert_eq!(fifth.rendered, vec![3]);
    assert!(fifth.stale.is_empty());
    assert!(render(&album, &out, 1, None).rendered.is_empty());
}

#[test]
fn album_gain_keeps_relative_loudness_and_follows_the_loudest_song() {
    let dir = project(3);
    // A loud target so the limiter works; song Three is peaky (no glue, hot drums) and song Two
    // is quieter.
    let policy =
        r#"{ mode = "album_gain", key = "loudest", target_lufs = -10, ceiling_dbtp = -1 }"#;
    let songs = r#"
    { title = "One", stems = "songs/01/stems" },
    { title = "Two", stems = "songs/02/stems", drums = { gain_db = -5 }, bass = { gain_db = -5 }, music = { gain_db = -5 }, vocals = { gain_db = -5 } },
    { title = "Three", stems = "songs/03/stems", drums = { gain_db = 5 }, master = { glue = false } },
"#;
    let album = album_file(dir.path(), policy, songs, "");
    let out = dir.path().join("out");
    let first = render(&album, &out, 2, None);
    let r = report(&out);
    let reference = r["reference_track"].as_u64().unwrap() as usize;
    assert_eq!(first.gain.reference_track, Some(reference));
    let names = ["01 One.wav", "02 Two.wav", "03 Three.wav"];
    let measured: Vec<f64> = names
        .iter()
        .map(|n| loudness(&out.join(n)).integrated_lufs())
        .collect();
    let songs_r = r["songs"].as_array().unwrap();
    let pre: Vec<f64> = songs_r
        .iter()
        .map(|s| s["pre_limiter_lufs"].as_f64().unwrap())
        .collect();
    let shift: Vec<f64> = songs_r
        .iter()
        .map(|s| s["limiting_shift_lu"].as_f64().unwrap())
        .collect();
    let drives: Vec<f64> = songs_r
        .iter()
        .map(|s| s["drive_db"].as_f64().unwrap())
        .collect();
    eprintln!("album gain: measured {measured:?}, pre-limiter {pre:?}, shifts {shift:?}");
    // One drive for every song.
    assert!(drives.iter().all(|d| *d == drives[0]));
    // The reference is the loudest and lands on the target.
    let ri = reference - 1;
    assert!(
        (measured[ri] + 10.0).abs() <= 0.1,
        "reference at {}",
        measured[ri]
    );
    assert!(measured.iter().all(|l| *l <= measured[ri] + 0.05));
    // Relative loudness is kept, except for what a song's own limiting changes, which the
    // report gives.
    let mut called_out = 0;
    for i in 0..3 {
        let relative = measured[i] - measured[ri];
        let kept = pre[i] - pre[ri];
        if shift[i].abs() <= 0.1 {
            assert!(
                (relative - kept).abs() <= 0.1,
                "song {}: {relative:.3} LU from the reference, {kept:.3} before the limiter",
                i + 1
            );
        } else {
            called_out += 1;
            assert!(
                (relative - kept - shift[i]).abs() <= 0.05,
                "song {}: the report's shift {:.3} does not explain {relative:.3} vs {kept:.3}",
                i + 1,
                shift[i]
            );
            let notes = r["notes"].as_array().unwrap();
            assert!(notes
                .iter()
                .any(|n| n.as_str().unwrap().starts_with(&format!("track {}", i + 1))));
        }
    }
    assert!(
        called_out > 0,
        "no song's own limiting moved it: the test is not exercising that"
    );
    assert_ceiling(&out, -1.0);
    assert_eq!(r["ceiling_holds"], true);

    // Song Two becomes the loudest: the album gain moves and every song is rendered again.
    let louder = songs.replace("gain_db = -5", "gain_db = 6");
    let album = album_file(dir.path(), policy, &louder, "");
    let second = render(&album, &out, 2, None);
    assert_eq!(second.measured, vec![2]);
    assert_eq!(second.gain.reference_track, Some(2));
    assert_eq!(second.rendered, vec![1, 2, 3]);
    let l2 = loudness(&out.join("02 Two.wav")).integrated_lufs();
    assert!((l2 + 10.0).abs() <= 0.1, "{l2}");
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
    assert_ceiling(&out, -1.0);
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

fn vorbis_comments(path: &Path) -> Vec<(String, String)> {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..4], b"fLaC");
    let mut at = 4;
    loop {
        let kind = bytes[at];
        let len = u32::from_be_bytes([0, bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
        let body = &bytes[at + 4..at + 4 + len];
        if kind & 0x7f == 4 {
            let u = |i: usize| u32::from_le_bytes(body[i..i + 4].try_into().unwrap()) as usize;
            let mut i = 4 + u(0);
            let n = u(i);
            i += 4;
            return (0..n)
                .map(|_| {
                    let l = u(i);
                    let f = std::str::from_utf8(&body[i + 4..i + 4 + l]).unwrap();
                    i += 4 + l;
                    let (k, v) = f.split_once('=').unwrap();
                    (k.to_string(), v.to_string())
                })
                .collect();
        }
        assert_eq!(kind & 0x80, 0, "no VORBIS_COMMENT block");
        at += 4 + len;
    }
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
        // Dithered: against the undithered master of the same signal, the error is TPDF noise
        // of about ±1 LSB: centred, variance near 1/6 LSB² plus rounding, never beyond 2 LSB.
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
        let nonzero = diff.iter().filter(|d| **d != 0.0).count() as f64 / diff.len() as f64;
        eprintln!(
            "dither error: mean {mean:.4}, variance {var:.3} LSB², max {max}, nonzero {nonzero:.2}"
        );
        assert!(mean.abs() < 0.02, "mean {mean}");
        assert!((0.1..0.6).contains(&var), "variance {var}");
        assert!(max <= 2.0, "max {max}");
        assert!(nonzero > 0.2, "nonzero {nonzero}");
        // In the quietest passage (the end of the tail) the LSBs are noise, not zeros.
        let tail = &dithered[dithered.len() - 2 * 4410..];
        assert!(
            tail.iter().any(|s| *s != 0),
            "the end of the dithered master is digital silence"
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
        if have("ffmpeg") {
            let raw = Command::new("ffmpeg")
                .args(["-v", "error", "-i"])
                .arg(&flac)
                .args(["-f", "s24le", "-"])
                .output()
                .unwrap();
            assert!(raw.status.success());
            let wav = std::fs::read(&wav24).unwrap();
            // The WAV's data chunk is the same little-endian 24-bit interleaved samples.
            let data = &wav[wav.len() - raw.stdout.len()..];
            assert!(
                data == &raw.stdout[..],
                "ffmpeg decodes the FLAC differently"
            );
            let probe = Command::new("ffprobe")
                .args(["-v", "error", "-show_entries", "format_tags", "-of", "json"])
                .arg(&flac)
                .output()
                .unwrap();
            let json: serde_json::Value = serde_json::from_slice(&probe.stdout).unwrap();
            let t = json["format"]["tags"].as_object().unwrap();
            let get = |k: &str| {
                t.iter()
                    .find(|(key, _)| key.eq_ignore_ascii_case(k))
                    .map(|(_, v)| v.as_str().unwrap().to_string())
            };
            assert_eq!(get("title").as_deref(), Some(title));
            assert_eq!(get("album").as_deref(), Some("Test Album"));
            assert_eq!(get("track").as_deref(), Some(n.to_string().as_str()));
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
