//! External tools the tests compare with (ffmpeg, flac, sox): whether they run, and what
//! ffmpeg's `ebur128` meter reads.

use std::path::Path;
use std::process::Command;

/// Whether `tool` runs (`tool -version`); under `CI=true` its absence fails the test.
pub fn have(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg("-version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{tool} is required under CI=true (make test installs it)"
        );
        eprintln!(
            "\n***** SKIPPED: {tool} is not installed: the checks that need it did NOT run *****\n"
        );
    }
    ok
}

/// What ffmpeg's `ebur128=peak=true` filter reports for a file.
pub struct FfmpegR128 {
    /// Integrated loudness, LUFS (its per-frame metadata, 3 decimals).
    pub integrated: f64,
    /// True peak, dBTP (its summary, 1 decimal: the metadata prints the linear value with 3
    /// decimals, which is too coarse for quiet files).
    pub true_peak: f64,
}

/// Runs ffmpeg (must be installed) on `path` with the audio filter `filter`, which writes
/// `ametadata=print` lines into `meta`; returns those lines and ffmpeg's log.
fn ffmpeg_meta(path: &Path, filter: &str, meta: &Path) -> (String, String) {
    let filter = format!("{filter},ametadata=print:file={}", meta.display());
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostats", "-y", "-i"])
        .arg(path)
        .args(["-af", &filter, "-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(out.status.success(), "ffmpeg failed on {}", path.display());
    let text = std::fs::read_to_string(meta).unwrap();
    (text, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Runs ffmpeg's `ebur128=peak=true` filter on `path` (ffmpeg must be installed).
pub fn ffmpeg_r128(path: &Path) -> FfmpegR128 {
    let meta = path.with_extension("r128.txt");
    let (text, log) = ffmpeg_meta(path, "ebur128=peak=true:metadata=1", &meta);
    let integrated = text
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("lavfi.r128.I="))
        .and_then(|v| v.parse().ok())
        .expect("ffmpeg reports lavfi.r128.I");
    // The summary's "True peak:" section: "Peak: -2.8 dBFS".
    let summary = &log[log.rfind("True peak:").expect("a true-peak summary")..];
    let true_peak = summary
        .lines()
        .find_map(|l| l.trim().strip_prefix("Peak:"))
        .and_then(|v| v.trim().trim_end_matches("dBFS").trim().parse().ok())
        .expect("ffmpeg's summary gives the true peak");
    FfmpegR128 {
        integrated,
        true_peak,
    }
}

/// The true peak of `path` by ffmpeg's `ebur128=peak=true` meter (4× oversampling at 48 kHz),
/// dBTP to about 0.001 dB: the file is first raised by exactly 20 dB (`volume` in double
/// precision, a linear scale the meter does not see), so that its metadata's three decimals of
/// the linear peak resolve a hundredth of a dB near full scale ten times finer, and the 20 dB
/// are taken off again. The summary's one decimal would round −0.981 to −1.0.
pub fn ffmpeg_true_peak(path: &Path) -> f64 {
    let meta = path.with_extension("tp.txt");
    let (text, _) = ffmpeg_meta(
        path,
        "volume=volume=20dB:precision=double,ebur128=peak=true:metadata=1",
        &meta,
    );
    let _ = std::fs::remove_file(&meta);
    let peak = text
        .lines()
        .filter_map(|l| l.strip_prefix("lavfi.r128.true_peak="))
        .filter_map(|v| v.parse::<f64>().ok())
        .fold(f64::NAN, f64::max);
    assert!(peak.is_finite(), "ffmpeg reports lavfi.r128.true_peak");
    20.0 * peak.log10() - 20.0
}

/// Raw interleaved little-endian PCM (`s16le` for 16 bits, else `s24le`) of a file decoded by
/// ffmpeg (must be installed).
pub fn ffmpeg_pcm(path: &Path, bits: u32) -> Vec<u8> {
    let fmt = if bits == 16 { "s16le" } else { "s24le" };
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", fmt, "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
