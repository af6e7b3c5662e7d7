//! `stemgraph render RECIPE [--out DIR]`.

use super::CliError;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use stemgraph::render::report::StemCache;
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
    /// Print one JSON document describing the render on stdout (and nothing else there).
    #[arg(long)]
    json: bool,
    /// Hash and meter every stem for the report even if an earlier render already did (by
    /// default their SHA-256 and meters are remembered in `$STEMGRAPH_CACHE_DIR`, else
    /// `~/.cache/stemgraph/stems`, keyed by the file's identity; `STEMGRAPH_CACHE_DIR=off`
    /// also turns this off).
    #[arg(long)]
    no_cache: bool,
    /// Write no `report.json` / `report.md` (and skip the meters and file analyses they need):
    /// for quick previews and pipelines that measure elsewhere.
    #[arg(long)]
    no_report: bool,
    /// Make a loudness target that cannot be reached (within the recipe's `target_tolerance_lu`)
    /// an error: the render stops before writing any file and exits non-zero.
    #[arg(long)]
    strict: bool,
    /// Render a second time (into a temporary folder) and say in the report whether every
    /// deliverable came out identical, byte for byte: third-party plugins may not be
    /// deterministic. Needs the report.
    #[arg(long)]
    twice: bool,
    /// Print where the time went, stage by stage and pass by pass (wall and CPU seconds).
    #[arg(long)]
    timings: bool,
    /// With a loudness target, always confirm the first drive with a measuring pass before the
    /// final pass (by default the first pass is run as the final one when the limiter will
    /// barely act; the master is the same either way: for comparisons).
    #[arg(long)]
    no_speculate: bool,
}

/// How `render_recipe` renders.
pub struct Settings<'a> {
    /// Frames per processing block.
    pub block: usize,
    /// `--set` overrides.
    pub set: &'a [String],
    /// Threads (0: all cores).
    pub threads: usize,
    /// One JSON document on stdout instead of text.
    pub json: bool,
    /// Use the stem cache.
    pub cache: bool,
    /// Write the render report.
    pub report: bool,
    /// A missed loudness target is an error.
    pub strict: bool,
    /// Render twice and compare (`--twice`).
    pub twice: bool,
    /// Print the stage timings (`--timings`).
    pub timings: bool,
    /// Never run the solve's first pass as the final one (`--no-speculate`).
    pub no_speculate: bool,
}

impl Default for Settings<'_> {
    fn default() -> Self {
        Self {
            block: stemgraph::render::DEFAULT_BLOCK,
            set: &[],
            threads: 0,
            json: false,
            cache: true,
            report: true,
            strict: false,
            twice: false,
            timings: false,
            no_speculate: false,
        }
    }
}

/// Loads `recipe` and renders it to `out`, with a progress bar; prints what was written.
pub fn render_recipe(
    recipe: &Path,
    out: &Path,
    settings: &Settings<'_>,
) -> Result<RenderResult, CliError> {
    let Settings {
        block,
        set,
        threads,
        json,
        cache,
        report,
        strict,
        twice,
        timings,
        no_speculate,
    } = *settings;
    let mut session = load_recipe(recipe)?;
    for s in set {
        session.apply_override(s)?;
    }
    let bar = if json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(1000)
    };
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
    if cache {
        opts.stem_cache = StemCache::new(StemCache::default_dir());
    }
    opts.report = report;
    opts.strict = strict;
    opts.twice = twice;
    if no_speculate {
        opts.speculate = stemgraph::render::speculate::Speculate::Never;
    }
    let b = bar.clone();
    opts.progress = Some(Box::new(move |done, total| {
        b.set_length(total);
        b.set_position(done);
    }));
    let result = render(&session, opts);
    bar.finish_and_clear();
    let result = result?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&summary(&session, &result))?
        );
        return Ok(result);
    }
    for w in result
        .warnings
        .iter()
        .filter(|w| result.target.as_ref().is_none_or(|t| **w != t.outcome))
    {
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
    if let Some(d) = result.report.as_ref().and_then(|r| r.determinism.as_ref()) {
        if d.identical {
            println!("  determinism: a second render was identical, byte for byte");
        } else {
            println!(
                "  determinism: a second render differs ({})",
                d.differing.join(", ")
            );
        }
    }
    if let Some(t) = &result.target {
        println!("  {}", t.outcome);
        println!(
            "  loudness: {:.2} LUFS for a target of {} LUFS (limiter `{}` driven {:+.2} dB, {:.2} LU of limiting; \
             {} full pass, {} passes of the limiter, its detector in {})",
            t.integrated_lufs, t.target_lufs, t.limiter, t.drive_db, t.limiting_cost_lu, t.full_passes, t.tail_passes,
            t.detecting_passes
        );
    }
    for f in &result.files {
        print!(
            "  {} ({}-bit, {} Hz",
            f.wav.path.display(),
            f.bits,
            f.sample_rate
        );
        if f.dithered {
            print!(", dithered");
        }
        if f.safety_gain_reduction_db > 0.0 {
            print!(", safety limiter {:.2} dB", f.safety_gain_reduction_db);
        }
        if f.wav.clipped > 0 {
            print!(", {} samples clipped", f.wav.clipped);
        }
        println!(")");
    }
    if timings {
        print_timings(&result);
    }
    Ok(result)
}

/// The stage timings as a table.
fn print_timings(r: &RenderResult) {
    println!("  timings (wall s, CPU s of every thread):");
    for t in &r.timings {
        println!("    {:7.3} {:7.3}  {}", t.wall_s, t.cpu_s, t.stage);
    }
    let (wall, cpu) = r
        .timings
        .iter()
        .fold((0.0, 0.0), |(w, c), t| (w + t.wall_s, c + t.cpu_s));
    println!("    {wall:7.3} {cpu:7.3}  in all");
}

/// The render as one JSON document (keys in snake_case with their unit).
fn summary(session: &stemgraph::session::Session, r: &RenderResult) -> serde_json::Value {
    serde_json::json!({
        "title": session.title,
        "recipe": session.recipe,
        "sample_rate_hz": r.sample_rate,
        "duration_s": r.song_frames as f64 / f64::from(r.sample_rate),
        "latency_samples": r.latency,
        "non_finite": r.non_finite,
        "tail_samples": r.tail,
        "render_s": r.seconds,
        "target": r.target,
        "files": r.files.iter().map(|f| serde_json::json!({
            "path": f.wav.path,
            "bits": f.bits,
            "sample_rate_hz": f.sample_rate,
            "frames": f.wav.frames,
            "clipped_samples": f.wav.clipped,
            "dithered": f.dithered,
            "ceiling_dbtp": f.ceiling_dbtp,
            "safety_gain_reduction_db": f.safety_gain_reduction_db,
            "output": f.output,
        })).collect::<Vec<_>>(),
        "warnings": r.warnings,
        "timings": r.timings,
    })
}

/// Runs `render`.
pub fn run(args: Args) -> Result<(), CliError> {
    let out = args.out.unwrap_or_else(|| {
        args.recipe
            .parent()
            .map(|p| p.join("out"))
            .unwrap_or_else(|| PathBuf::from("out"))
    });
    render_recipe(
        &args.recipe,
        &out,
        &Settings {
            block: args.block,
            set: &args.set,
            threads: args.threads,
            json: args.json,
            cache: !args.no_cache,
            report: !args.no_report,
            strict: args.strict,
            twice: args.twice,
            timings: args.timings,
            no_speculate: args.no_speculate,
        },
    )?;
    Ok(())
}
