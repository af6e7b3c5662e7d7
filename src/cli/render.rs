//! `stemgraph render RECIPE [--out DIR]`.

use super::CliError;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use stemgraph::render::{render, RenderOptions, RenderResult};
use stemgraph::script::load_recipe;

/// Arguments of `render`.
#[derive(clap::Args)]
pub struct Args {
    /// The recipe (a Lua file).
    recipe: PathBuf,
    /// Folder for the deliverables (default: `out/` beside the recipe).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Frames per processing block.
    #[arg(long, default_value_t = stemgraph::render::DEFAULT_BLOCK)]
    block: usize,
    /// Override a parameter or session field: `--set vocals.gain_db=1.5`,
    /// `--set master.target_lufs=-12` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Threads to render on: 1, 2 (more are not used yet), or 0 for as many as the machine has.
    /// The output is the same, bit for bit, whatever the number.
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

/// Loads `recipe` and renders it to `out`, with a progress bar; prints what was written.
pub fn render_recipe(
    recipe: &Path,
    out: &Path,
    block: usize,
    set: &[String],
    threads: usize,
) -> Result<RenderResult, CliError> {
    let mut session = load_recipe(recipe)?;
    for s in set {
        session.apply_override(s)?;
    }
    let bar = ProgressBar::new(1000);
    bar.set_style(
        ProgressStyle::with_template("{spinner} rendering {msg} [{bar:30}] {percent}% ({eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(session.title.clone());
    let mut opts = RenderOptions::new(out);
    opts.block_size = block.max(1);
    opts.threads = if threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        threads
    };
    opts.interrupt = Some(super::interrupt_flag());
    let b = bar.clone();
    opts.progress = Some(Box::new(move |done, total| {
        b.set_length(total);
        b.set_position(done);
    }));
    let result = render(&session, opts);
    bar.finish_and_clear();
    let result = result?;
    for w in &result.warnings {
        eprintln!("warning: {w}");
    }
    let secs = result.song_frames as f64 / f64::from(result.sample_rate);
    println!(
        "rendered \"{}\": {:.1} s of audio at {} Hz in {:.2} s ({:.0}x real time)",
        session.title,
        secs,
        result.sample_rate,
        result.seconds,
        secs / result.seconds.max(1e-9)
    );
    for f in &result.files {
        print!(
            "  {} ({}-bit, {} Hz",
            f.wav.path.display(),
            f.bits,
            f.sample_rate
        );
        if f.wav.clipped > 0 {
            print!(", {} samples clipped", f.wav.clipped);
        }
        println!(")");
    }
    Ok(result)
}

/// Runs `render`.
pub fn run(args: Args) -> Result<(), CliError> {
    let out = args.out.unwrap_or_else(|| {
        args.recipe
            .parent()
            .map(|p| p.join("out"))
            .unwrap_or_else(|| PathBuf::from("out"))
    });
    render_recipe(&args.recipe, &out, args.block, &args.set, args.threads)?;
    Ok(())
}
