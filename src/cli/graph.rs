//! `stemgraph graph RECIPE [--dot]`.

use super::CliError;
use std::path::PathBuf;
use stemgraph::graph::{compile, describe, CompileOptions};
use stemgraph::script::load_recipe;

/// Arguments of `graph`.
#[derive(clap::Args)]
pub struct Args {
    /// The recipe (a Lua file).
    recipe: PathBuf,
    /// Print Graphviz DOT instead of text.
    #[arg(long)]
    dot: bool,
}

/// Runs `graph`.
pub fn run(args: Args) -> Result<(), CliError> {
    let session = load_recipe(&args.recipe)?;
    // The graph's shape does not depend on the stems' rate; latencies are shown at the recipe's
    // rate, or 48 kHz.
    let rate = f64::from(session.sample_rate.unwrap_or(48_000));
    let compiled = compile(&session.graph_at(rate), CompileOptions::new(rate, 1024))?;
    for w in &compiled.warnings {
        eprintln!("warning: {w}");
    }
    if args.dot {
        print!("{}", describe::dot(&compiled.summary));
    } else {
        print!("{}", describe::text(&compiled.summary, rate));
        println!("total latency: {} samples", compiled.schedule.latency());
    }
    Ok(())
}
