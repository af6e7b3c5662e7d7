//! `stemgraph demo [--out DIR]`: the zero-setup first run (feature `demo`; without it the command
//! says which feature it needs).

use super::CliError;
use std::path::PathBuf;

/// The bundled demo recipe, written beside the demo stems.
#[cfg(feature = "demo")]
pub const DEMO_RECIPE: &str = include_str!("../../scripts/demo.lua");

/// Arguments of `demo`.
#[derive(clap::Args)]
#[cfg_attr(not(feature = "demo"), allow(dead_code))]
pub struct Args {
    /// Folder for the demo song, its recipe and the rendered masters.
    #[arg(long, default_value = "demo")]
    out: PathBuf,
    /// Length of the demo song in seconds.
    #[arg(long, default_value_t = 40.0)]
    seconds: f64,
    /// Number of stems (2–8). The bundled recipe expects the default 4.
    #[arg(long, default_value_t = 4)]
    stems: usize,
    /// Only write the song (stems and reference mix); do not render.
    #[arg(long)]
    no_render: bool,
}

/// Runs `demo`.
#[cfg(not(feature = "demo"))]
pub fn run(_args: Args) -> Result<(), CliError> {
    Err(super::missing_feature("`stemgraph demo`", "demo"))
}

/// Runs `demo`.
#[cfg(feature = "demo")]
pub fn run(args: Args) -> Result<(), CliError> {
    use stemgraph::demo::{write_demo, DemoOptions};
    let opts = DemoOptions {
        seconds: args.seconds,
        stems: args.stems,
        ..DemoOptions::default()
    };
    let files = write_demo(&args.out, &opts)?;
    println!(
        "wrote the demo song: {} stems and the reference mix in {}",
        files.stems.len(),
        args.out.join("stems").display()
    );
    if args.no_render {
        return Ok(());
    }
    if args.stems != 4 {
        return Err(format!(
            "the bundled demo recipe is written for 4 stems; with --stems {} use --no-render and your own recipe",
            args.stems
        )
        .into());
    }
    let recipe = args.out.join("demo.lua");
    match std::fs::read_to_string(&recipe) {
        Ok(existing) if existing != DEMO_RECIPE => {
            println!(
                "keeping your edited {} (delete it to get the bundled one back)",
                recipe.display()
            );
        }
        _ => std::fs::write(&recipe, DEMO_RECIPE)?,
    }
    super::render::render_recipe(
        &recipe,
        &args.out.join("out"),
        &super::render::Settings::default(),
    )?;
    println!(
        "edit {} and run `stemgraph render {}` again",
        recipe.display(),
        recipe.display()
    );
    Ok(())
}
