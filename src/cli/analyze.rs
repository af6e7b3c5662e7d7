//! `stemgraph analyze FILE… [--json] [--plot PNG] [--reference FILE]`: loudness and level
//! analysis of any audio file, as a table, as JSON, and as a plot.

use super::CliError;
use serde::Serialize;
use std::path::{Path, PathBuf};
use stemgraph::analysis::analyze::{
    analyze_with, Analysis, AnalyzeOptions, Difference, FileAnalysis,
};
use stemgraph::delivery::platforms::{self, Normalization};

/// Arguments of `analyze`.
#[derive(clap::Args)]
pub struct Args {
    /// The audio files (WAV, AIFF, FLAC, MP3, Ogg Vorbis, Ogg Opus).
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
    /// Per file: what each platform's normalization does to it.
    platforms: Vec<Vec<Normalization>>,
}

/// Runs `analyze`.
pub fn run(args: Args) -> Result<(), CliError> {
    #[cfg(not(feature = "plot"))]
    if args.plot.is_some() {
        // Said before measuring anything.
        return Err(super::missing_feature("`analyze --plot`", "plot"));
    }
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
            draw(&path, a, reference.as_ref())?;
            plots.push(path);
        }
    }

    if args.json {
        let doc = Document {
            files: analyses.iter().map(|a| &a.figures).collect(),
            reference: reference.as_ref().map(|r| &r.figures),
            differences,
            platforms: analyses
                .iter()
                .map(|a| platforms::table(a.figures.integrated_lufs, a.figures.true_peak_dbtp))
                .collect(),
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

/// Draws the plot of `a` into `path` (feature `plot`).
#[cfg(feature = "plot")]
fn draw(path: &Path, a: &Analysis, reference: Option<&Analysis>) -> Result<(), CliError> {
    Ok(stemgraph::analysis::plot::plot(path, a, reference)?)
}

/// Without the `plot` feature: says which feature `--plot` needs.
#[cfg(not(feature = "plot"))]
fn draw(_: &Path, _: &Analysis, _: Option<&Analysis>) -> Result<(), CliError> {
    Err(super::missing_feature("`analyze --plot`", "plot"))
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

/// A figure of a file: from its analysis, and its difference from the reference's.
type Figure = fn(&FileAnalysis) -> f64;
/// A difference between a file and the reference.
type Delta = fn(&Difference) -> f64;

/// One line of the table.
struct Row {
    label: String,
    value: f64,
    reference: Option<f64>,
    delta: Option<f64>,
    unit: &'static str,
    decimals: usize,
}

/// The table's figures, in order, with the reference's and the differences when given.
fn rows(f: &FileAnalysis, cmp: Option<(&FileAnalysis, &Difference)>) -> Vec<Row> {
    let row = |label: &str, figure: Figure, delta: Option<Delta>, unit, decimals| Row {
        label: label.to_string(),
        value: figure(f),
        reference: cmp.map(|(r, _)| figure(r)),
        delta: cmp.and_then(|(_, d)| delta.map(|delta| delta(d))),
        unit,
        decimals,
    };
    let tp_label = format!("true peak ({}×)", f.true_peak_oversampling);
    vec![
        row(
            "integrated",
            |a| a.integrated_lufs,
            Some(|d| d.integrated_lu),
            "LUFS",
            1,
        ),
        row(
            "short-term max",
            |a| a.short_term_max_lufs,
            Some(|d| d.short_term_max_lu),
            "LUFS",
            1,
        ),
        row(
            "momentary max",
            |a| a.momentary_max_lufs,
            Some(|d| d.momentary_max_lu),
            "LUFS",
            1,
        ),
        row(
            "loudness range",
            |a| a.loudness_range_lu,
            Some(|d| d.loudness_range_lu),
            "LU",
            1,
        ),
        row(
            &tp_label,
            |a| a.true_peak_dbtp,
            Some(|d| d.true_peak_db),
            "dBTP",
            2,
        ),
        row(
            "true peak (8×)",
            |a| a.true_peak_8x_dbtp.unwrap_or(f64::NAN),
            Some(|d| d.true_peak_8x_db.unwrap_or(f64::NAN)),
            "dBTP",
            2,
        ),
        row(
            "sample peak",
            |a| a.sample_peak_dbfs,
            Some(|d| d.sample_peak_db),
            "dBFS",
            2,
        ),
        row("RMS", |a| a.rms_dbfs, Some(|d| d.rms_db), "dBFS", 1),
        row("PLR", |a| a.plr_db, Some(|d| d.plr_db), "dB", 1),
        row(
            "crest factor",
            |a| a.crest_factor_db,
            Some(|d| d.crest_factor_db),
            "dB",
            1,
        ),
        row(
            "correlation",
            |a| a.correlation.unwrap_or(f64::NAN),
            Some(|d| d.correlation.unwrap_or(f64::NAN)),
            "",
            2,
        ),
        row(
            "width (S/M)",
            |a| a.width.unwrap_or(f64::NAN),
            Some(|d| d.width.unwrap_or(f64::NAN)),
            "",
            2,
        ),
        row("DC offset", |a| a.dc_offset_dbfs, None, "dBFS", 1),
    ]
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
    for Row {
        label,
        value: v,
        reference: rv,
        delta: dv,
        unit,
        decimals: d,
    } in rows(f, cmp)
    {
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
    out.push_str(&platform_lines(f));
    out
}

/// What each streaming platform's normalization does to the file (docs/delivery.md).
fn platform_lines(f: &FileAnalysis) -> String {
    use std::fmt::Write;
    let mut out = String::from("  platform normalization (* not published by the platform):\n");
    for r in platforms::table(f.integrated_lufs, f.true_peak_dbtp) {
        let _ = writeln!(
            out,
            "    {:<14}{:>10}{:>9} dB  → {:>6} LUFS{}",
            format!("{}{}", r.platform, if r.official { "" } else { " *" }),
            r.target_lufs
                .map_or_else(|| "none".to_string(), |t| format!("{t:.0} LUFS")),
            fmt_delta(r.gain_db, 1),
            fmt(r.played_lufs, 1),
            if r.limiter_engages {
                "  (its limiter engages)"
            } else {
                ""
            }
        );
    }
    out
}
