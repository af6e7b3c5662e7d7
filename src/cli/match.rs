//! `stemgraph match RECIPE --reference REF.wav[:WEIGHT]… [--section NAME] [--amount PCT]
//! [--json] [--write OVERRIDES.lua]`: proposes an editable recipe change that brings the master
//! toward a reference track (see `docs/matching.md`).

use super::CliError;
use std::path::PathBuf;
use stemgraph::matching::fit::Limits;
use stemgraph::matching::{propose, reference, writer, MatchOptions};
use stemgraph::script::load_recipe;

/// Arguments of `match`.
#[derive(clap::Args)]
pub struct Args {
    /// The recipe (a Lua file); it is never changed.
    recipe: PathBuf,
    /// A reference track, with an optional weight after a colon (`a.wav:0.7`); repeatable.
    #[arg(long, value_name = "FILE[:WEIGHT]", required = true)]
    reference: Vec<String>,
    /// Match only this section of the recipe (`session { sections = … }`) to the references'
    /// loudest parts. Without it, a recipe with sections gets per-section automation
    /// (sections whose names number their repeats, `verse1`, `verse2`, matched together).
    #[arg(long, value_name = "NAME")]
    section: Option<String>,
    /// How much of the fitted change to propose, % (0–100).
    #[arg(long, value_name = "PCT", default_value_t = 100.0)]
    amount: f64,
    /// Print the report as one JSON document on stdout (and nothing else there).
    #[arg(long)]
    json: bool,
    /// Write the proposal as a Lua override file (beside the recipe, which it `require`s);
    /// written atomically, never over the recipe or a file it loads.
    #[arg(long, value_name = "OVERRIDES.lua")]
    write: Option<PathBuf>,
    /// Folder for `match.json`, `match.md` and `match.png` (default: `match/` beside the recipe).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Override a parameter or session field before matching (as `render --set`; repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Largest EQ gain and stem change proposed, dB.
    #[arg(long, value_name = "DB", default_value_t = 6.0)]
    max_db: f64,
    /// Bells the EQ may use at most (besides a tilt and two shelves).
    #[arg(long, default_value_t = 3)]
    bells: usize,
    /// Skip the check render of the proposal (faster; the report then has no "how close").
    #[arg(long)]
    no_check: bool,
}

/// Runs `match`.
pub fn run(args: Args) -> Result<(), CliError> {
    let mut session = load_recipe(&args.recipe)?;
    for s in &args.set {
        session.apply_override(s)?;
    }
    let refs = args
        .reference
        .iter()
        .map(|r| reference::parse(r))
        .collect::<Result<Vec<_>, _>>()?;
    let module = match &args.write {
        Some(w) => Some(writer::module_name(&args.recipe, w)?),
        None => None,
    };
    let out = args.out.clone().unwrap_or_else(|| {
        args.recipe
            .parent()
            .map(|p| p.join("match"))
            .unwrap_or_else(|| PathBuf::from("match"))
    });
    let work = tempfile_dir(&out)?;
    let mut opts = MatchOptions::new(refs, work.path());
    opts.section = args.section.clone();
    opts.amount_pct = args.amount;
    opts.limits = Limits {
        stem_db: args.max_db,
        eq_db: args.max_db,
        bells: args.bells,
        ..Limits::default()
    };
    opts.check = !args.no_check;
    opts.interrupt = Some(super::interrupt_flag());
    if !args.json {
        eprintln!(
            "matching \"{}\": rendering the master and the stems…",
            session.title
        );
    }
    let report = propose(&session, &opts)?;
    drop(work);
    let md = report.markdown();
    let protected = session.loaded_files.clone();
    writer::write(&out.join("match.md"), &md, &protected)?;
    writer::write(
        &out.join("match.json"),
        &serde_json::to_string_pretty(&report)?,
        &protected,
    )?;
    #[cfg(feature = "plot")]
    stemgraph::matching::plot::plot(&out.join("match.png"), &report)?;
    if let (Some(path), Some(module)) = (&args.write, &module) {
        let text = writer::override_lua(&report, module);
        writer::write(path, &text, &protected)?;
        if !args.json {
            eprintln!("wrote {}", path.display());
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{md}");
        eprintln!("report: {}", out.display());
    }
    Ok(())
}

/// A temporary folder for the renders, inside the report folder's parent's temporaries.
fn tempfile_dir(out: &std::path::Path) -> Result<TempDir, CliError> {
    std::fs::create_dir_all(out)?;
    let dir = out.join(format!(".match-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(TempDir(dir))
}

/// A folder removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
