//! Memory stays flat with song length: a render streams (its lossy deliverables' encodes and
//! decodes too), and so does an album job, so a long song needs no more memory than a short one. Measured on the real binary (peak RSS of the child
//! process, from the kernel's accounting when it exits).

use std::path::Path;
use std::process::Command;

const RECIPE: &str = r#"
local s = session { title = "mem" }
local m = s:bus "master"
s:stem("drums", "stems/drums.wav"):to(m)
s:stem("music", "stems/music.wav"):to(m)
m:chain { gain { gain_db = -1 } }:to(s:output())
s:deliver { file = "master.wav", bits = 24 }
s:deliver { file = "master.mp3", format = "mp3", bitrate_kbps = 128, ceiling_dbtp = -1 }
s:deliver { file = "master.opus", format = "opus", bitrate_kbps = 96, ceiling_dbtp = -1 }
return s
"#;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_stemgraph")
}

/// Waits for `child` and returns its peak resident set in KiB, as the kernel counted it
/// (`wait4`'s `ru_maxrss`: exact, where polling /proc could miss a peak in the last moments
/// before the process exits). Panics unless it exited with success.
fn peak_rss_kib(child: std::process::Child) -> u64 {
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value to be overwritten.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `child` is our unwaited child; both pointers are valid for the call.
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as libc::pid_t, "wait4");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the child failed: {status}"
    );
    usage.ru_maxrss as u64
}

fn project(dir: &Path, seconds: u32) {
    let status = Command::new(bin())
        .args([
            "demo",
            "--no-render",
            "--stems",
            "2",
            "--seconds",
            &seconds.to_string(),
            "--out",
        ])
        .arg(dir)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::write(dir.join("mem.lua"), RECIPE).unwrap();
}

/// Renders and returns the render's peak RSS in KiB.
fn render(dir: &Path) -> u64 {
    let child = Command::new(bin())
        .arg("render")
        .arg(dir.join("mem.lua"))
        .arg("--out")
        .arg(dir.join("out"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    peak_rss_kib(child)
}

#[test]
fn a_ten_times_longer_song_needs_no_more_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let (short, long) = (tmp.path().join("short"), tmp.path().join("long"));
    project(&short, 30);
    project(&long, 300);
    let short_rss = render(&short);
    let long_rss = render(&long);
    eprintln!("peak RSS: 30 s render {short_rss} KiB, 300 s render {long_rss} KiB");
    assert!(short_rss > 0 && long_rss > 0, "no peak RSS reading");
    // 2 MiB of slack: the two-thread runner re-splits its schedule a timing-dependent number of
    // times (allocator noise of ~1 MiB under load). Memory that grew with the song would be
    // over it by far: the long song is 270 s (≈ 100 MB of stems) longer.
    assert!(
        long_rss <= short_rss + 2048,
        "{long_rss} KiB vs {short_rss} KiB"
    );
    let master = hound::WavReader::open(long.join("out/master.wav")).unwrap();
    assert_eq!(master.duration(), 300 * 48_000);
    for lossy in ["master.mp3", "master.opus"] {
        let bytes = std::fs::metadata(long.join("out").join(lossy))
            .unwrap()
            .len();
        // At least 90 % of 300 s at the bit rate asked for (96 kbit/s at the least).
        assert!(bytes > 300 * 96_000 / 8 * 9 / 10, "{lossy}: {bytes} bytes");
    }
}

/// Writes a one-song album of a `seconds`-long demo song on the band template, delivered as a
/// 24-bit WAV, a 24-bit FLAC and a 16-bit 44.1 kHz FLAC (resampled, limited, dithered).
fn album_project(dir: &Path, seconds: u32) {
    let status = Command::new(bin())
        .args([
            "demo",
            "--no-render",
            "--stems",
            "4",
            "--seconds",
            &seconds.to_string(),
            "--out",
        ])
        .arg(dir)
        .status()
        .unwrap();
    assert!(status.success());
    let stems = dir.join("stems");
    std::fs::rename(stems.join("keys.wav"), stems.join("music.wav")).unwrap();
    std::fs::rename(stems.join("lead.wav"), stems.join("vocals.wav")).unwrap();
    std::fs::write(
        dir.join("album.lua"),
        r#"return album {
  title = "Memory", artist = "stemgraph", template = "band_4stem",
  policy = { mode = "per_track", target_lufs = -14, ceiling_dbtp = -1 },
  deliver = {
    wav { file = "{track:02} {title}.wav", bits = 24 },
    flac { file = "{track:02} {title}.flac", bits = 24 },
    flac { file = "cd/{track:02} {title}.flac", bits = 16, sample_rate_hz = 44100 },
  },
  songs = { { title = "Long", stems = "stems" } },
}
"#,
    )
    .unwrap();
}

/// Peak RSS (KiB) of `stemgraph album` on `dir/album.lua` with one job.
fn render_album(dir: &Path) -> u64 {
    let child = Command::new(bin())
        .arg("album")
        .arg(dir.join("album.lua"))
        .args(["--jobs", "1", "--out"])
        .arg(dir.join("out"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    peak_rss_kib(child)
}

/// An album job streams its song through every phase (measure, drive solve, render, FLAC
/// encoding, resampling, the measurements of the files): a song ten times longer needs no more
/// memory.
#[test]
fn an_album_song_ten_times_longer_needs_no_more_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let (short, long) = (tmp.path().join("short"), tmp.path().join("long"));
    album_project(&short, 10);
    album_project(&long, 100);
    let short_rss = render_album(&short);
    let long_rss = render_album(&long);
    eprintln!("peak RSS: album of a 10 s song {short_rss} KiB, of a 100 s song {long_rss} KiB");
    assert!(short_rss > 0 && long_rss > 0, "no peak RSS reading");
    assert!(
        long_rss <= short_rss + 1024,
        "{long_rss} KiB vs {short_rss} KiB"
    );
    let flac = stemgraph::io::decode::Decoder::open(&long.join("out/01 Long.flac")).unwrap();
    assert!(flac.info().frames.unwrap() >= 100 * 48_000);
}
