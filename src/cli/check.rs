//! `stemgraph check RECIPE [--json]`: stem preparation checks and the null test.

use super::CliError;
use std::path::PathBuf;
use stemgraph::analysis::check::{check, Severity};
use stemgraph::script::load_recipe;

/// Arguments of `check`.
#[derive(clap::Args)]
pub struct Args {
    /// The recipe (a Lua file) whose stems and reference mix are checked.
    recipe: PathBuf,
    /// Print one JSON document on stdout instead of the table.
    #[arg(long)]
    json: bool,
}

/// Runs `check`. Exit status 1 when a check fails (warnings do not fail).
pub fn run(args: Args) -> Result<(), CliError> {
    let session = load_recipe(&args.recipe)?;
    let report = check(&session)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
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
                    .map(|o| format!("  offset {o}"))
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
    if report.failed() {
        std::process::exit(1);
    }
    Ok(())
}
