//! `stemgraph check RECIPE [--json] [--fix] [--write FILE]`: stem preparation checks, the null
//! test, and the recipe changes that make the stems null.

use super::CliError;
use std::io::Write;
use std::path::PathBuf;
use stemgraph::analysis::check::{check, fix, CheckReport, Severity};
use stemgraph::io::atomic::AtomicFile;
use stemgraph::script::load_recipe;

/// Arguments of `check`.
#[derive(clap::Args)]
pub struct Args {
    /// The recipe (a Lua file) whose stems and reference mix are checked.
    recipe: PathBuf,
    /// Print one JSON document on stdout instead of the table (with the fixes in `fixes`).
    #[arg(long)]
    json: bool,
    /// Print the recipe changes (offset_samples, invert, gain_db, missing stems) that make the
    /// stems null against the reference. The recipe itself is never changed.
    #[arg(long)]
    fix: bool,
    /// Write the changes of `--fix` to this file (atomically; never the recipe or any input).
    #[arg(long, value_name = "FILE")]
    write: Option<PathBuf>,
}

fn print_table(report: &CheckReport) {
    println!(
        "{} stems at {} Hz",
        report.stems.len(),
        report.sample_rate_hz
    );
    for s in &report.stems {
        println!(
            "  {:<12} {:>6} Hz {:>2}-bit {:>7.1} dBFS peak {:>7.1} dBFS RMS{}",
            s.name,
            s.sample_rate_hz,
            s.bits.unwrap_or(32),
            s.sample_peak_dbfs,
            s.rms_dbfs,
            s.offset_samples
                .map(|o| format!("  offset {o:.2}"))
                .unwrap_or_default()
        );
    }
    for f in &report.findings {
        let tag = match f.severity {
            Severity::Pass => "pass",
            Severity::Warn => "WARN",
            Severity::Fail => "FAIL",
        };
        println!("{tag}  {}", f.message);
    }
    if report.null_test.is_none() {
        println!("(no reference mix in the recipe: no null test)");
    }
}

/// Runs `check`. Exit status 1 when a check fails (warnings do not fail).
pub fn run(args: Args) -> Result<(), CliError> {
    let session = load_recipe(&args.recipe)?;
    let report = check(&session)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
        if args.fix {
            println!();
            print!("{}", fix::text(&report, &args.recipe));
        }
    }
    if let Some(dest) = &args.write {
        let mut protected = session.loaded_files.clone();
        protected.push(args.recipe.clone());
        protected.extend(session.stems.iter().map(|s| s.path.clone()));
        protected.extend(session.reference.iter().cloned());
        let (file, mut w) = AtomicFile::create(dest, &protected)?;
        w.write_all(fix::text(&report, &args.recipe).as_bytes())?;
        w.flush()?;
        drop(w);
        file.commit()?;
        eprintln!("the changes are in {}", dest.display());
    }
    if report.failed() {
        std::process::exit(1);
    }
    Ok(())
}
