//! `analyze` and `stemgraph analyze`: figures against known values, agreement with ffmpeg's
//! `ebur128` filter, the JSON document against its schema, plots, errors.
use crate::common;

use common::tools::{ffmpeg_r128, have};
use std::path::{Path, PathBuf};
use std::process::Command;
use stemgraph::analysis::analyze::{analyze, Analysis};

const PI: f64 = std::f64::consts::PI;

/// Sample formats the test files are written in.
#[derive(Clone, Copy)]
enum Format {
    Int(u16),
    Float,
}

/// Writes planar `ch` as a WAV; integer formats round to the grid first. Returns the samples
/// as stored (full scale ±1).
fn write_wav(path: &Path, ch: &[Vec<f64>], rate: u32, format: Format) -> Vec<Vec<f64>> {
    let (bits, sample_format) = match format {
        Format::Int(b) => (b, hound::SampleFormat::Int),
        Format::Float => (32, hound::SampleFormat::Float),
    };
    let spec = hound::WavSpec {
        channels: ch.len() as u16,
        sample_rate: rate,
        bits_per_sample: bits,
        sample_format,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    let mut stored: Vec<Vec<f64>> = vec![Vec::with_capacity(ch[0].len()); ch.len()];
    for n in 0..ch[0].len() {
        for (c, x) in ch.iter().enumerate() {
            match format {
                Format::Int(b) => {
                    let scale = f64::from(1u32 << (b - 1));
                    let q = (x[n] * scale).round().clamp(-scale, scale - 1.0);
                    w.write_sample(q as i32).unwrap();
                    stored[c].push(q / scale);
                }
                Format::Float => {
                    w.write_sample(x[n] as f32).unwrap();
                    stored[c].push(f64::from(x[n] as f32));
                }
            }
        }
    }
    w.finalize().unwrap();
    stored
}

/// A stereo, music-like signal: a bass line, chords, a hi-hat-like noise, sections of
/// different levels, and slightly different channels.
fn music_like(fs: f64, seconds: f64, seed: u64) -> Vec<Vec<f64>> {
    let n = (fs * seconds) as usize;
    let mut rng = common::Rng::new(seed);
    let mut l = Vec::with_capacity(n);
    let mut r = Vec::with_capacity(n);
    let mut hat = 0.0;
    for i in 0..n {
        let t = i as f64 / fs;
        let section = if ((t / 4.0) as u64).is_multiple_of(2) {
            1.0
        } else {
            0.45
        };
        let beat = (t * 2.0).fract();
        let env = (-beat * 6.0).exp();
        let bass = 0.30 * env * (2.0 * PI * 55.0 * t).sin();
        let chord = 0.08
            * [220.0, 277.18, 329.63, 440.0]
                .iter()
                .map(|f| (2.0 * PI * f * t).sin())
                .sum::<f64>();
        hat = 0.6 * hat + rng.next_f64() * 0.4;
        let hats = 0.10 * (-(t * 8.0).fract() * 30.0).exp() * (rng.next_f64() - hat);
        let lead = 0.12 * (2.0 * PI * (880.0 + 30.0 * (2.0 * PI * 5.0 * t).sin()) * t).sin();
        l.push(section * (bass + chord + hats + 0.6 * lead));
        r.push(section * (bass + 0.9 * chord - hats + lead));
    }
    vec![l, r]
}

fn sine(fs: f64, seconds: f64, f: f64, amp: f64) -> Vec<f64> {
    (0..(fs * seconds) as usize)
        .map(|i| amp * (2.0 * PI * f * i as f64 / fs).sin())
        .collect()
}

fn db_to_lin(db: f64) -> f64 {
    10f64.powf(db / 20.0)
}

/// A quiet file: a −100 dBFS noise floor with a 3 s tone burst at −50 dBFS in the middle.
fn near_silent(fs: f64) -> Vec<Vec<f64>> {
    let mut rng = common::Rng::new(99);
    let n = (fs * 10.0) as usize;
    let tone = sine(fs, 10.0, 440.0, db_to_lin(-50.0));
    (0..2)
        .map(|_| {
            (0..n)
                .map(|i| {
                    let t = i as f64 / fs;
                    let burst = if (3.5..6.5).contains(&t) {
                        tone[i]
                    } else {
                        0.0
                    };
                    burst + db_to_lin(-100.0) * rng.next_f64()
                })
                .collect()
        })
        .collect()
}

struct Fixture {
    name: &'static str,
    path: PathBuf,
    stored: Vec<Vec<f64>>,
}

/// The synthesized files every test measures.
fn fixtures(dir: &Path) -> Vec<Fixture> {
    let mut out = Vec::new();
    let mut add = |name: &'static str, ch: Vec<Vec<f64>>, rate: u32, format: Format| {
        let path = dir.join(format!("{name}.wav"));
        let stored = write_wav(&path, &ch, rate, format);
        out.push(Fixture { name, path, stored });
    };
    add(
        "music-44k1-24bit",
        music_like(44_100.0, 30.0, 7),
        44_100,
        Format::Int(24),
    );
    add(
        "tone-stereo-m23",
        vec![sine(48_000.0, 10.0, 1000.0, db_to_lin(-23.0)); 2],
        48_000,
        Format::Float,
    );
    add(
        "near-silent",
        near_silent(48_000.0),
        48_000,
        Format::Int(24),
    );
    add(
        "mono-m23",
        vec![sine(48_000.0, 10.0, 1000.0, db_to_lin(-23.0))],
        48_000,
        Format::Int(16),
    );
    add(
        "music-96k",
        music_like(96_000.0, 20.0, 11),
        96_000,
        Format::Int(24),
    );
    // 16-bit content inside a 24-bit file: rounded to the 16-bit grid, stored as 24-bit.
    let m16: Vec<Vec<f64>> = music_like(48_000.0, 20.0, 13)
        .into_iter()
        .map(|c| {
            c.into_iter()
                .map(|x| (x * 32768.0).round() / 32768.0)
                .collect()
        })
        .collect();
    add("16-in-24", m16, 48_000, Format::Int(24));
    out
}

fn max_abs(ch: &[Vec<f64>]) -> f64 {
    ch.iter().flatten().fold(0.0, |m, x| m.max(x.abs()))
}

#[test]
fn figures_match_known_values() {
    let dir = tempfile::tempdir().unwrap();
    for fx in fixtures(dir.path()) {
        let a = analyze(&fx.path).unwrap();
        let f = &a.figures;
        // Sample peak is exact: the largest stored sample.
        let peak = 20.0 * max_abs(&fx.stored).log10();
        assert!(
            (f.sample_peak_dbfs - peak).abs() < 1e-9,
            "{}: sample peak {} vs {peak}",
            fx.name,
            f.sample_peak_dbfs
        );
        assert!(f.true_peak_dbtp >= f.sample_peak_dbfs, "{}", fx.name);
        assert!(
            f.true_peak_8x_dbtp.unwrap() >= f.sample_peak_dbfs,
            "{}",
            fx.name
        );
        let frames = fx.stored[0].len() as f64;
        assert!((f.duration_s - frames / f64::from(f.sample_rate_hz)).abs() < 1e-12);
        assert_eq!(f.channels, fx.stored.len());
        // PLR and crest factor are the differences they are defined as.
        if f.integrated_lufs.is_finite() {
            assert!((f.plr_db - (f.true_peak_dbtp - f.integrated_lufs)).abs() < 1e-12);
        }
        assert!((f.crest_factor_db - (f.sample_peak_dbfs - f.rms_dbfs)).abs() < 1e-9);
        match fx.name {
            "tone-stereo-m23" => {
                assert!(
                    (f.integrated_lufs - -23.0).abs() < 0.1,
                    "{}",
                    f.integrated_lufs
                );
                assert!((f.sample_peak_dbfs - -23.0).abs() < 0.001);
                assert!((f.rms_dbfs - -26.0103).abs() < 0.01, "{}", f.rms_dbfs);
                assert!((f.correlation.unwrap() - 1.0).abs() < 1e-9);
                assert!(f.width.unwrap() < 1e-12);
                assert!(f.loudness_range_lu < 0.1);
                assert_eq!(f.effective_bits, None, "float content");
                assert_eq!(f.true_peak_oversampling, 4);
            }
            "mono-m23" => {
                // BS.1770: a mono file is one channel, 3 dB below the same sine in stereo.
                assert!(
                    (f.integrated_lufs - -26.0).abs() < 0.1,
                    "{}",
                    f.integrated_lufs
                );
                assert_eq!(f.correlation, None);
                assert_eq!(f.width, None);
                assert_eq!((f.bits, f.effective_bits), (Some(16), Some(16)));
                assert!(f.notes.is_empty(), "{:?}", f.notes);
            }
            "16-in-24" => {
                assert_eq!((f.bits, f.effective_bits), (Some(24), Some(16)));
                assert!(
                    f.notes
                        .iter()
                        .any(|n| n == "16-bit content in a 24-bit file"),
                    "{:?}",
                    f.notes
                );
            }
            "music-44k1-24bit" => {
                assert_eq!((f.bits, f.effective_bits), (Some(24), Some(24)));
                assert!(f.notes.is_empty(), "{:?}", f.notes);
                assert!(f.loudness_range_lu > 3.0, "{}", f.loudness_range_lu);
                let c = f.correlation.unwrap();
                assert!(c > 0.5 && c < 1.0, "{c}");
            }
            "music-96k" => {
                assert_eq!(f.sample_rate_hz, 96_000);
                // BS.1770-4: 2× from 96 kHz.
                assert_eq!(f.true_peak_oversampling, 2);
            }
            "near-silent" => {
                // The burst passes the gates; the −100 dBFS floor does not.
                assert!(
                    f.integrated_lufs < -45.0 && f.integrated_lufs > -60.0,
                    "{}",
                    f.integrated_lufs
                );
            }
            _ => unreachable!(),
        }
        // Series: one point per 100 ms, true peak never above the overall reading.
        let hops = (frames / (f64::from(f.sample_rate_hz) / 10.0)).floor() as usize;
        assert_eq!(a.series.points.len(), hops, "{}", fx.name);
        let tp_max = a
            .series
            .points
            .iter()
            .map(|p| p.true_peak_dbtp)
            .fold(f64::NEG_INFINITY, f64::max);
        assert!(tp_max <= f.true_peak_dbtp + 1e-12, "{}", fx.name);
        assert!(tp_max > f.true_peak_dbtp - 0.01, "{}", fx.name);
        let spec = a.spectrum.as_ref().unwrap();
        assert_eq!(spec.fft_size, 8192);
        // The bins add up to the mean square (within the Welch edge effects).
        let ms = 10.0 * spec.power.iter().sum::<f64>().log10();
        assert!(
            (ms - f.rms_dbfs).abs() < 0.5,
            "{}: {ms} vs {}",
            fx.name,
            f.rms_dbfs
        );
    }
}

#[test]
fn digital_silence_reads_minus_infinity_and_null() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("silence.wav");
    write_wav(&path, &vec![vec![0.0; 48_000]; 2], 48_000, Format::Int(24));
    let a = analyze(&path).unwrap();
    let f = &a.figures;
    assert_eq!(f.integrated_lufs, f64::NEG_INFINITY);
    assert_eq!(f.sample_peak_dbfs, f64::NEG_INFINITY);
    assert_eq!(f.true_peak_dbtp, f64::NEG_INFINITY);
    assert!(f.notes.iter().any(|n| n.contains("digital silence")));
    let v = serde_json::to_value(f).unwrap();
    for key in [
        "integrated_lufs",
        "short_term_max_lufs",
        "momentary_max_lufs",
        "true_peak_dbtp",
        "sample_peak_dbfs",
        "rms_dbfs",
        "plr_db",
        "dc_offset_dbfs",
    ] {
        assert!(v[key].is_null(), "{key}: {}", v[key]);
    }
}

#[test]
fn agrees_with_ffmpeg_ebur128() {
    if !have("ffmpeg") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    println!("REPORT | file | I ours | I ffmpeg | ΔI | TP ours | TP ffmpeg | ΔTP");
    for fx in fixtures(dir.path()) {
        let a: Analysis = analyze(&fx.path).unwrap();
        let f = &a.figures;
        let ff = ffmpeg_r128(&fx.path);
        let di = f.integrated_lufs - ff.integrated;
        let dtp = f.true_peak_dbtp - ff.true_peak;
        println!(
            "REPORT | {} | {:.3} | {:.3} | {:+.3} | {:.3} | {:.1} | {:+.3}",
            fx.name, f.integrated_lufs, ff.integrated, di, f.true_peak_dbtp, ff.true_peak, dtp
        );
        assert!(
            di.abs() <= 0.1,
            "{}: integrated {di:+.3} LU from ffmpeg",
            fx.name
        );
        assert!(
            dtp.abs() <= 0.3,
            "{}: true peak {dtp:+.3} dB from ffmpeg",
            fx.name
        );
    }
}

// ---------------------------------------------------------------------------------------
// The command line

fn stemgraph(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_stemgraph"))
        .args(args)
        .output()
        .unwrap()
}

fn schema(name: &str) -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn assert_valid(schema: &serde_json::Value, doc: &serde_json::Value) {
    let v = jsonschema::draft202012::new(schema).expect("the schema compiles");
    let errors: Vec<String> = v
        .iter_errors(doc)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn json_output_has_exactly_the_documented_keys() {
    let dir = tempfile::tempdir().unwrap();
    let fx = fixtures(dir.path());
    let (a, b) = (&fx[0].path, &fx[3].path);
    let out = stemgraph(&[
        "analyze".as_ref(),
        a.as_os_str(),
        b.as_os_str(),
        "--json".as_ref(),
        "--reference".as_ref(),
        fx[1].path.as_os_str(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_valid(&schema("analyze.schema.json"), &doc);
    // The schema requires every key and allows no other; check the contract's names too.
    let file = doc["files"][0].as_object().unwrap();
    let mut keys: Vec<&str> = file.keys().map(|k| k.as_str()).collect();
    keys.sort_unstable();
    let mut documented: Vec<String> = schema("analyze.schema.json")["$defs"]["file_analysis"]
        ["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    documented.sort_unstable();
    assert_eq!(keys, documented);
    for k in [
        "integrated_lufs",
        "short_term_max_lufs",
        "momentary_max_lufs",
        "loudness_range_lu",
        "true_peak_dbtp",
        "sample_peak_dbfs",
        "rms_dbfs",
        "correlation",
        "duration_s",
        "sample_rate_hz",
        "channels",
        "plr_db",
        "crest_factor_db",
        "width",
        "dc_offset_dbfs",
        "bits",
        "effective_bits",
        "path",
    ] {
        assert!(file.contains_key(k), "missing {k}");
    }
    assert_eq!(doc["files"].as_array().unwrap().len(), 2);
    assert_eq!(doc["differences"].as_array().unwrap().len(), 2);
    // Mono against stereo: no correlation difference.
    assert!(doc["differences"][1]["correlation"].is_null());
    let d = doc["differences"][0]["integrated_lu"].as_f64().unwrap();
    let i = doc["files"][0]["integrated_lufs"].as_f64().unwrap();
    let r = doc["reference"]["integrated_lufs"].as_f64().unwrap();
    assert!((d - (i - r)).abs() < 0.002);
    // Without --reference: null and empty.
    let out = stemgraph(&["analyze".as_ref(), a.as_os_str(), "--json".as_ref()]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_valid(&schema("analyze.schema.json"), &doc);
    assert!(doc["reference"].is_null());
    assert_eq!(doc["differences"], serde_json::json!([]));
}

#[test]
fn the_file_analysis_is_described_alike_in_both_schemas() {
    assert_eq!(
        schema("analyze.schema.json")["$defs"]["file_analysis"],
        schema("report.schema.json")["$defs"]["file_analysis"]
    );
}

/// Width and height from a PNG's IHDR chunk.
#[cfg(feature = "plot")]
fn png_size(path: &Path) -> (u32, u32) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    assert_eq!(&b[12..16], b"IHDR");
    let be = |i: usize| u32::from_be_bytes(b[i..i + 4].try_into().unwrap());
    (be(16), be(20))
}

#[test]
#[cfg(feature = "plot")]
fn plot_writes_a_png_of_the_expected_size() {
    use stemgraph::analysis::plot::{PLOT_HEIGHT, PLOT_WIDTH};
    let dir = tempfile::tempdir().unwrap();
    let fx = fixtures(dir.path());
    let png = dir.path().join("plot.png");
    let out = stemgraph(&[
        "analyze".as_ref(),
        fx[0].path.as_os_str(),
        "--plot".as_ref(),
        png.as_os_str(),
        "--reference".as_ref(),
        fx[4].path.as_os_str(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(png_size(&png), (PLOT_WIDTH, PLOT_HEIGHT));
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.contains("integrated") && table.contains("reference"),
        "{table}"
    );
    // Several files: one numbered PNG each; stdout stays pure JSON.
    let out = stemgraph(&[
        "analyze".as_ref(),
        fx[2].path.as_os_str(),
        fx[3].path.as_os_str(),
        "--json".as_ref(),
        "--plot".as_ref(),
        png.as_os_str(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("stdout is only JSON");
    for name in ["plot-1.png", "plot-2.png"] {
        assert_eq!(png_size(&dir.path().join(name)), (PLOT_WIDTH, PLOT_HEIGHT));
    }
    // No temporary files left.
    assert!(std::fs::read_dir(dir.path()).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with(".partial")));
}

#[test]
fn a_corrupt_file_is_a_one_paragraph_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("broken.wav");
    std::fs::write(&bad, b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk").unwrap();
    let out = stemgraph(&["analyze".as_ref(), bad.as_os_str(), "--json".as_ref()]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "nothing on stdout on failure");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("broken.wav"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    let missing = dir.path().join("missing.flac");
    let out = stemgraph(&["analyze".as_ref(), missing.as_os_str()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.flac"));
}

#[test]
fn memory_stays_bounded_on_long_files() {
    // 20 minutes (at 8 kHz mono, to keep the file small): the series merges down to its cap
    // and still covers the whole file.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.wav");
    let fs = 8000.0;
    let x = sine(fs, 1200.0, 100.0, 0.1);
    write_wav(&path, &[x], 8000, Format::Int(16));
    let opts = stemgraph::analysis::analyze::AnalyzeOptions {
        max_series_points: 1000,
        ..Default::default()
    };
    let a = stemgraph::analysis::analyze::analyze_with(&path, &opts).unwrap();
    assert!(a.series.points.len() <= 1000 && a.series.points.len() > 500);
    assert!((a.series.points.last().unwrap().t_s - 1200.0).abs() < 1e-6);
    assert!((a.figures.duration_s - 1200.0).abs() < 1e-9);
}
