//! `stemgraph analyze FILE… [--json] [--plot PNG] [--reference FILE]`: loudness and level
//! analysis of any audio file, as a table, as JSON, and as a plot.

use super::CliError;
use serde::Serialize;
use std::path::{Path, PathBuf};
use stemgraph::analysis::analyze::{analyze_with, AnalyzeOptions, Difference, FileAnalysis};
use stemgraph::analysis::plot::plot;

/// Arguments of `analyze`.
#[derive(clap::Args)]
pub struct Args {
    /// The audio files (WAV, AIFF, FLAC, MP3, Ogg Vorbis).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Print one JSON document on stdout instead of the table.
    #[arg(long)]
    json: bool,
    /// Draw loudness, true peak and spectrum into this PNG (with several files: one PNG each,
    /// numbered `NAME-1.png`, `NAME-2.png`, …).
    #[arg(long, value_name = "PNG")]
    plot: Option<PathBuf>,
    /// Also measure this file and show each file's differences from it.
    #[arg(long, value_name = "FILE")]
    reference: Option<PathBuf>,
}

/// The JSON document `analyze --json` prints.
#[derive(Serialize)]
struct Document<'a> {
    files: Vec<&'a FileAnalysis>,
    reference: Option<&'a FileAnalysis>,
    differences: Vec<Difference>,
}

/// Runs `analyze`.
pub fn run(args: Args) -> Result<(), CliError> {
    let opts = AnalyzeOptions {
        fft_size: args
            .plot
            .as_ref()
            .map(|_| stemgraph::analysis::spectrum::DEFAULT_FFT_SIZE),
        ..AnalyzeOptions::default()
    };
    let mut analyses = Vec::new();
    for f in &args.files {
        analyses.push(analyze_with(f, &opts)?);
    }
    let reference = match &args.reference {
        Some(r) => Some(analyze_with(r, &opts)?),
        None => None,
    };
    let differences: Vec<Difference> = reference
        .as_ref()
        .map(|r| {
            analyses
                .iter()
                .map(|a| Difference::between(&a.figures, &r.figures))
                .collect()
        })
        .unwrap_or_default();

    let mut plots = Vec::new();
    if let Some(png) = &args.plot {
        for (i, a) in analyses.iter().enumerate() {
            let path = numbered(png, i, analyses.len());
            plot(&path, a, reference.as_ref())?;
            plots.push(path);
        }
    }

    if args.json {
        let doc = Document {
            files: analyses.iter().map(|a| &a.figures).collect(),
            reference: reference.as_ref().map(|r| &r.figures),
            differences,
        };
        println!("{}", serde_json::to_string_pretty(&doc)?);
        for p in &plots {
            eprintln!("plot written to {}", p.display());
        }
    } else {
        for (i, a) in analyses.iter().enumerate() {
            if i > 0 {
                println!();
            }
            let cmp = reference.as_ref().map(|r| (&r.figures, &differences[i]));
            print!("{}", table(&a.figures, cmp));
        }
        for p in &plots {
            println!("\nplot written to {}", p.display());
        }
    }
    Ok(())
}

/// `png` itself for one file; `NAME-<i+1>.EXT` for several.
fn numbered(png: &Path, i: usize, n: usize) -> PathBuf {
    if n <= 1 {
        return png.to_path_buf();
    }
    let stem = png
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plot".into());
    let ext = png
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_else(|| "png".into());
    png.with_file_name(format!("{stem}-{}.{ext}", i + 1))
}

/// A number with `d` decimals, `-inf` as `−inf`.
fn fmt(v: f64, d: usize) -> String {
    if v.is_finite() {
        format!("{v:.d$}")
    } else if v.is_nan() {
        "n/a".into()
    } else if v > 0.0 {
        "+inf".into()
    } else {
        "-inf".into()
    }
}

/// A signed difference with `d` decimals.
fn fmt_delta(v: f64, d: usize) -> String {
    if v.is_finite() {
        format!("{v:+.d$}")
    } else {
        "n/a".into()
    }
}

/// `m:ss.s` for a duration.
fn clock(s: f64) -> String {
    let m = (s / 60.0).floor();
    format!("{}:{:04.1}", m as u64, s - m * 60.0)
}

/// The table of one file, with the reference's figures and the differences when given.
fn table(f: &FileAnalysis, cmp: Option<(&FileAnalysis, &Difference)>) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let bits = match (f.bits, f.effective_bits) {
        (Some(b), Some(e)) if e < b => format!(", {b}-bit ({e} used)"),
        (Some(b), _) => format!(", {b}-bit"),
        (None, _) => String::new(),
    };
    let _ = writeln!(
        out,
        "{}\n  {}, {} Hz, {} ch{bits}, {}",
        f.path.display(),
        f.codec,
        f.sample_rate_hz,
        f.channels,
        clock(f.duration_s)
    );
    if let Some((r, _)) = cmp {
        let _ = writeln!(out, "  reference: {}", r.path.display());
        let _ = writeln!(
            out,
            "  {:<20}{:>12}{:>12}{:>10}",
            "", "file", "reference", "Δ"
        );
    }
    let tp_label = format!("true peak ({}×)", f.true_peak_oversampling);
    type Row<'a> = (&'a str, f64, Option<f64>, Option<f64>, &'a str, usize);
    let rows: Vec<Row> = {
        let r = cmp.map(|c| c.0);
        let d = cmp.map(|c| c.1);
        vec![
            (
                "integrated",
                f.integrated_lufs,
                r.map(|r| r.integrated_lufs),
                d.map(|d| d.integrated_lu),
                "LUFS",
                1,
            ),
            (
                "short-term max",
                f.short_term_max_lufs,
                r.map(|r| r.short_term_max_lufs),
                d.map(|d| d.short_term_max_lu),
                "LUFS",
                1,
            ),
            (
                "momentary max",
                f.momentary_max_lufs,
                r.map(|r| r.momentary_max_lufs),
                d.map(|d| d.momentary_max_lu),
                "LUFS",
                1,
            ),
            (
                "loudness range",
                f.loudness_range_lu,
                r.map(|r| r.loudness_range_lu),
                d.map(|d| d.loudness_range_lu),
                "LU",
                1,
            ),
            (
                &tp_label,
                f.true_peak_dbtp,
                r.map(|r| r.true_peak_dbtp),
                d.map(|d| d.true_peak_db),
                "dBTP",
                2,
            ),
            (
                "true peak (8×)",
                f.true_peak_8x_dbtp.unwrap_or(f64::NAN),
                r.map(|r| r.true_peak_8x_dbtp.unwrap_or(f64::NAN)),
                d.map(|d| d.true_peak_8x_db.unwrap_or(f64::NAN)),
                "dBTP",
                2,
            ),
            (
                "sample peak",
                f.sample_peak_dbfs,
                r.map(|r| r.sample_peak_dbfs),
                d.map(|d| d.sample_peak_db),
                "dBFS",
                2,
            ),
            (
                "RMS",
                f.rms_dbfs,
                r.map(|r| r.rms_dbfs),
                d.map(|d| d.rms_db),
                "dBFS",
                1,
            ),
            (
                "PLR",
                f.plr_db,
                r.map(|r| r.plr_db),
                d.map(|d| d.plr_db),
                "dB",
                1,
            ),
            (
                "crest factor",
                f.crest_factor_db,
                r.map(|r| r.crest_factor_db),
                d.map(|d| d.crest_factor_db),
                "dB",
                1,
            ),
            (
                "correlation",
                f.correlation.unwrap_or(f64::NAN),
                r.map(|r| r.correlation.unwrap_or(f64::NAN)),
                d.map(|d| d.correlation.unwrap_or(f64::NAN)),
                "",
                2,
            ),
            (
                "width (S/M)",
                f.width.unwrap_or(f64::NAN),
                r.map(|r| r.width.unwrap_or(f64::NAN)),
                d.map(|d| d.width.unwrap_or(f64::NAN)),
                "",
                2,
            ),
            (
                "DC offset",
                f.dc_offset_dbfs,
                r.map(|r| r.dc_offset_dbfs),
                None,
                "dBFS",
                1,
            ),
        ]
    };
    for (label, v, rv, dv, unit, d) in rows {
        let unit_col = format!(" {unit:<4}");
        match (rv, dv) {
            (Some(rv), dv) => {
                let _ = writeln!(
                    out,
                    "  {label:<20}{:>12}{:>12}{:>10}{unit_col}",
                    fmt(v, d),
                    fmt(rv, d),
                    dv.map(|x| fmt_delta(x, d)).unwrap_or_default(),
                );
            }
            (None, _) => {
                let _ = writeln!(out, "  {label:<20}{:>12}{unit_col}", fmt(v, d));
            }
        }
    }
    if let Some(e) = f.effective_bits {
        let _ = writeln!(out, "  {:<20}{:>12} bits", "word length used", e);
    }
    if f.clipped_samples > 0 {
        let _ = writeln!(out, "  {:<20}{:>12}", "clipped samples", f.clipped_samples);
    }
    for n in &f.notes {
        let _ = writeln!(out, "  note: {n}");
    }
    out
}
