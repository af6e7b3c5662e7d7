//! `stemgraph album ALBUM [--jobs N] [--only SONG] [--out DIR] [--plan FILE] [--job K] [--finish]`.

use super::CliError;
use std::path::PathBuf;
use std::sync::Arc;
use stemgraph::album::{self, AlbumOptions, FinishOutcome, JobOutcome};
use stemgraph::script::load_album;

/// Arguments of `album`.
#[derive(clap::Args)]
pub struct Args {
    /// The album file (Lua, returning `album { ... }`).
    album: PathBuf,
    /// Songs rendered at once (default: the number of cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Render only this song (track number or title), even if unchanged.
    #[arg(long, value_name = "SONG")]
    only: Option<String>,
    /// Folder for the deliverables and the report (default: `out/` beside the album file).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Frames per processing block.
    #[arg(long, default_value_t = stemgraph::render::DEFAULT_BLOCK)]
    block: usize,
    /// Write the album as lists of independent jobs (JSON) to FILE, and stop.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["job", "finish", "only"])]
    plan: Option<PathBuf>,
    /// Run job K of the plan (measure jobs first, then render jobs).
    #[arg(long, value_name = "K", conflicts_with_all = ["finish", "only"])]
    job: Option<usize>,
    /// Combine the measurements into the album gain (after the measure jobs), or write the CD
    /// image and the report (after the render jobs).
    #[arg(long, conflicts_with = "only")]
    finish: bool,
    /// Print the album report (or the plan) as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// Runs `album`.
pub fn run(args: Args) -> Result<(), CliError> {
    let spec = load_album(&args.album)?;
    let out = args.out.clone().unwrap_or_else(|| {
        args.album
            .parent()
            .map(|p| p.join("out"))
            .unwrap_or_else(|| PathBuf::from("out"))
    });
    let mut opts = AlbumOptions::new(&out);
    if let Some(j) = args.jobs {
        opts.jobs = j.max(1);
    }
    opts.block_size = args.block.max(1);
    opts.interrupt = Some(super::interrupt_flag());
    opts.progress = Some(Arc::new(|line: &str| eprintln!("{line}")));
    if let Some(sel) = &args.only {
        opts.only = Some(spec.find_song(sel).ok_or_else(|| {
            let titles: Vec<String> = spec
                .songs
                .iter()
                .map(|s| format!("{} {}", s.track, s.session.title))
                .collect();
            format!(
                "--only {sel}: no such song; the album has {}",
                titles.join(", ")
            )
        })?);
    }

    if let Some(plan_path) = &args.plan {
        let plan = album::write_plan(&spec, &opts, plan_path)?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&plan)?);
        } else {
            let n = plan.songs;
            println!(
                "wrote {}: measure jobs 0..={}, then --finish, then render jobs {}..={}, then --finish",
                plan_path.display(),
                n - 1,
                n,
                2 * n - 1
            );
        }
        return Ok(());
    }
    if let Some(k) = args.job {
        match album::run_job(&spec, &opts, k)? {
            JobOutcome::Measured { track, unchanged } => println!(
                "job {k}: track {track} {}",
                if unchanged {
                    "measurement unchanged"
                } else {
                    "measured"
                }
            ),
            JobOutcome::Rendered { track, unchanged } => println!(
                "job {k}: track {track} {}",
                if unchanged { "unchanged" } else { "rendered" }
            ),
        }
        return Ok(());
    }
    if args.finish {
        match album::finish(&spec, &opts)? {
            FinishOutcome::Gain(g) => {
                if !args.json {
                    println!(
                        "drives computed{}: run the render jobs {}..={}, then --finish again",
                        g.album_gain_db
                            .map(|d| format!(" (album gain {d:+.2} dB)"))
                            .unwrap_or_default(),
                        spec.songs.len(),
                        2 * spec.songs.len() - 1
                    );
                }
            }
            FinishOutcome::Report(r) => print_report(r.as_deref(), &out, args.json)?,
        }
        return Ok(());
    }

    let outcome = album::render_album(&spec, &opts)?;
    if !args.json {
        println!(
            "album \"{}\": {} song(s) measured, {} rendered, {} unchanged in {:.1} s",
            spec.title,
            outcome.measured.len(),
            outcome.rendered.len(),
            spec.songs.len() - outcome.rendered.len() - outcome.stale.len(),
            outcome.seconds
        );
    }
    print_report(outcome.report.as_ref(), &out, args.json)?;
    Ok(())
}

fn print_report(
    report: Option<&album::report::AlbumReport>,
    out: &std::path::Path,
    json: bool,
) -> Result<(), CliError> {
    match (report, json) {
        (Some(r), true) => println!("{}", serde_json::to_string_pretty(r)?),
        (None, true) => {
            // The report on disk is current (or, with stale songs, none was written).
            match std::fs::read_to_string(out.join("album.json")) {
                Ok(text) => println!("{}", text.trim_end()),
                Err(_) => println!("null"),
            }
        }
        (Some(r), false) => {
            for s in &r.songs {
                println!(
                    "  {:02} {:<24} {:>6.1} LUFS  LRA {:>4.1}  TP {:>6.2} dBTP  PLR {:>4.1}  GR {:>4.2} LU",
                    s.track,
                    s.title,
                    s.integrated_lufs,
                    s.loudness_range_lu,
                    s.true_peak_dbtp,
                    s.plr_db,
                    s.gain_reduction_lu
                );
            }
            for n in &r.notes {
                println!("  note: {n}");
            }
            println!("  report: {}", out.join("album.md").display());
        }
        (None, false) => {}
    }
    Ok(())
}
