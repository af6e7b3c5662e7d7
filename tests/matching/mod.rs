//! Helpers of the `match_*` tests: demo projects, references rendered with known changes, the
//! match run through the library, and the comparisons the issue asks for.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use stemgraph::dsp::eq::band::{BandType, Mode};
use stemgraph::matching::eq::{self, EqBand};
use stemgraph::matching::measure::Measured;
use stemgraph::matching::report::MatchReport;
use stemgraph::matching::{grid::Grid, propose, reference, scan, select, MatchOptions};
use stemgraph::render::{render, RenderOptions};
use stemgraph::script::load_recipe;

/// A folder with the demo song's stems (`stems/`) and the demo recipe (`demo.lua`).
#[cfg(feature = "demo")]
pub fn demo_project(seconds: f64, seed: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_demo_project(dir.path(), seconds, seed);
    dir
}

/// [`demo_project`] in a [`SharedDir`]: for a project the tests of a file share (a
/// `static`, which is never dropped).
#[cfg(feature = "demo")]
pub fn shared_demo_project(name: &str, seconds: f64, seed: u64) -> SharedDir {
    let dir = SharedDir::new(name);
    write_demo_project(dir.path(), seconds, seed);
    dir
}

#[cfg(feature = "demo")]
fn write_demo_project(dir: &Path, seconds: f64, seed: u64) {
    use stemgraph::demo::{write_demo, DemoOptions};
    let opts = DemoOptions {
        seconds,
        seed,
        ..DemoOptions::default()
    };
    write_demo(dir, &opts).unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(repo.join("scripts/demo.lua"), dir.join("demo.lua")).unwrap();
}

/// A folder in the target's temporary folder, emptied when made: one per name however often
/// the tests run (a `TempDir` in a `static` is never dropped, so it would leak one a run).
pub struct SharedDir(PathBuf);

impl SharedDir {
    /// The empty folder `name`.
    pub fn new(name: &str) -> SharedDir {
        let p = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        SharedDir(p)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

/// Writes `lua` as `name.lua` in `dir`, renders its first deliverable into `dir/name/` and
/// returns that file.
pub fn render_lua(dir: &Path, name: &str, lua: &str) -> PathBuf {
    let recipe = dir.join(format!("{name}.lua"));
    std::fs::write(&recipe, lua).unwrap();
    render_recipe(&recipe, &dir.join(name))
}

/// Renders `recipe`'s first deliverable into `out` and returns it.
pub fn render_recipe(recipe: &Path, out: &Path) -> PathBuf {
    let mut session = load_recipe(recipe).unwrap_or_else(|e| panic!("{e}"));
    session.deliverables.truncate(1);
    let mut opts = RenderOptions::new(out);
    opts.report = false;
    let r = render(&session, opts).unwrap_or_else(|e| panic!("{e}"));
    r.files[0].wav.path.clone()
}

/// Runs the match of `recipe` against `refs` (`PATH[:WEIGHT]`) with `amount` %.
pub fn run_match(recipe: &Path, refs: &[String], amount: f64) -> MatchReport {
    try_match(recipe, refs, amount, None).unwrap_or_else(|e| panic!("{e}"))
}

/// The match, or its error.
pub fn try_match(
    recipe: &Path,
    refs: &[String],
    amount: f64,
    section: Option<&str>,
) -> Result<MatchReport, stemgraph::matching::MatchError> {
    let session = load_recipe(recipe).unwrap();
    let work = tempfile::tempdir().unwrap();
    let refs = refs.iter().map(|r| reference::parse(r).unwrap()).collect();
    let mut opts = MatchOptions::new(refs, work.path());
    opts.amount_pct = amount;
    opts.section = section.map(String::from);
    propose(&session, &opts)
}

/// The proposed change of `stem`, dB (0 when none is proposed).
pub fn stem_change(r: &MatchReport, stem: &str) -> f64 {
    r.proposal
        .stems
        .iter()
        .find(|s| s.stem == stem)
        .map_or(0.0, |s| s.change_db)
}

/// A band of a known EQ.
pub fn band(kind: BandType, freq_hz: f64, gain_db: f64, q: f64) -> EqBand {
    EqBand {
        kind,
        freq_hz,
        gain_db,
        q,
        mode: Mode::Stereo,
    }
}

/// The largest difference between the proposed EQ's response and `truth` from 50 Hz to
/// 16 kHz (mid and side), after aligning their mean level (a level offset is the loudness
/// target's business), dB.
pub fn eq_error_db(r: &MatchReport, truth: &[EqBand], rate: f64) -> f64 {
    let bands = r
        .proposal
        .eq
        .as_ref()
        .map(|e| e.bands.clone())
        .unwrap_or_default();
    let grid = Grid::new(50.0, 16_000.0, 12);
    let mut worst = 0.0f64;
    for side in [false, true] {
        let d: Vec<f64> = grid
            .centres
            .iter()
            .map(|&f| {
                eq::response_db(&bands, f, rate, side) - eq::response_db(truth, f, rate, side)
            })
            .collect();
        let mean = d.iter().sum::<f64>() / d.len() as f64;
        worst = worst.max(d.iter().fold(0.0f64, |m, x| m.max((x - mean).abs())));
    }
    worst
}

/// Measures a file over its loudest sections.
pub fn measured(path: &Path, rate: u32) -> Measured {
    let s = scan::scan(path, rate).unwrap();
    let sel = select::loudest(&s, None);
    Measured::new(s, sel, (&Grid::fit(), &Grid::third_octave())).unwrap()
}

/// Per third-octave band from 50 Hz to 16 kHz: `a` minus `b`, loudness-matched (mid), dB;
/// and the two integrated loudnesses.
pub fn third_octave_diff(a: &Path, b: &Path, rate: u32) -> (Vec<f64>, f64, f64) {
    let (ma, mb) = (measured(a, rate), measured(b, rate));
    let d = ma
        .levels(false, true)
        .iter()
        .zip(mb.levels(false, true))
        .map(|(x, y)| x - y)
        .collect();
    (d, ma.scan.integrated_lufs, mb.scan.integrated_lufs)
}

/// As [`third_octave_diff`], both measured over their loudest windows within `range_s`
/// (seconds): the band differences only.
pub fn third_octave_diff_in(a: &Path, b: &Path, rate: u32, range_s: (f64, f64)) -> Vec<f64> {
    let m = |p: &Path| {
        let s = scan::scan(p, rate).unwrap();
        let sel = select::loudest(&s, Some(range_s));
        Measured::new(s, sel, (&Grid::fit(), &Grid::third_octave())).unwrap()
    };
    let (ma, mb) = (m(a), m(b));
    ma.levels(false, true)
        .iter()
        .zip(mb.levels(false, true))
        .map(|(x, y)| x - y)
        .collect()
}

/// Largest absolute value.
pub fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0f64, |m, x| m.max(x.abs()))
}

/// The value of `param` at `t` in the proposal: its automation there, else `fixed`.
pub fn automation_at(r: &MatchReport, param: &str, t: f64, fixed: f64) -> f64 {
    r.proposal
        .automation
        .iter()
        .find(|a| a.param == param)
        .and_then(|a| a.points.iter().rev().find(|p| p.0 <= t + 1e-9))
        .map_or(fixed, |p| p.1)
}
