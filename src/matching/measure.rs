//! Renders and measurements: the master as the recipe renders it now, the stems'
//! contributions to the mix, and the band powers of a programme over chosen sections.

use super::grid::Grid;
use super::routing::{contributions_graph, param_in, Routing};
use super::scan::{self, Scan};
use super::select::Selection;
use super::spectra::{self, CrossBands};
use super::MatchError;
use crate::render::{render, RenderOptions, RenderResult};
use crate::session::{Deliverable, DitherKind, FileFormat, Session};
use std::path::{Path, PathBuf};

/// A 32-bit float file of `output` at the session rate, with no safety limiter unless
/// `ceiling` (the master keeps its own).
fn float_file(file: &str, output: Option<String>, ceiling: Option<f64>) -> Deliverable {
    Deliverable {
        file: file.to_string(),
        format: FileFormat::Wav,
        tags: Vec::new(),
        output,
        bits: 32,
        sample_rate: None,
        dither: DitherKind::None,
        ceiling_dbtp: ceiling,
        seed: 0,
        lead_silence_s: 0.0,
        tail_silence_s: 0.0,
        // A working file: no metadata, no measuring pass.
        bwf: crate::session::BwfDecl {
            bext: false,
            ..Default::default()
        },
        lossy: None,
        origin: None,
    }
}

fn options(
    dir: &Path,
    interrupt: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
) -> RenderOptions {
    let mut o = RenderOptions::new(dir);
    o.report = false;
    o.threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(2));
    o.interrupt = interrupt;
    o
}

/// Renders `session`'s master (its first deliverable's output) into `dir` as a float file
/// at the session rate, with the recipe's loudness target and ceiling.
pub fn render_master(
    session: &Session,
    dir: &Path,
    name: &str,
    interrupt: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
) -> Result<(PathBuf, RenderResult), MatchError> {
    let mut s = session.clone();
    let output = session.deliverables.first().and_then(|d| d.output.clone());
    s.deliverables = vec![float_file(name, output, None)];
    let result = render(&s, options(dir, interrupt))?;
    Ok((result.files[0].wav.path.clone(), result))
}

/// Renders each routed stem's contribution to the mix into `dir`: one float file per stem, in
/// the order of `routing.stems`.
pub fn render_contributions(
    session: &Session,
    routing: &Routing,
    dir: &Path,
    interrupt: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
) -> Result<Vec<PathBuf>, MatchError> {
    let mut s = session.clone();
    s.graph = contributions_graph(&session.graph, routing);
    let output = |i: usize| super::routing::contribution_ids(&session.graph, i).1;
    s.automation.retain(|a| param_in(&s.graph, &a.param));
    let graph = s.graph.clone();
    s.graph.automation.retain(|a| param_in(&graph, &a.param));
    s.target_lufs = None;
    s.ceiling_dbtp = None;
    s.reference = None;
    s.deliverables = (0..routing.stems.len())
        .map(|i| float_file(&format!("stem-{i}.wav"), Some(output(i)), None))
        .collect();
    let result = render(&s, options(dir, interrupt))?;
    Ok(result.files.iter().map(|f| f.wav.path.clone()).collect())
}

/// Band powers of the time-aligned files `paths` (read at `rate`) over `selection`, on
/// `grid`.
pub fn bands(
    paths: &[PathBuf],
    rate: u32,
    frames: u64,
    selection: &Selection,
    grid: &Grid,
) -> Result<CrossBands, MatchError> {
    let mut v = bands_many(paths, rate, frames, &[selection], grid)?;
    Ok(v.swap_remove(0))
}

/// [`bands`] over each of `selections`, in one read of the files.
pub fn bands_many(
    paths: &[PathBuf],
    rate: u32,
    frames: u64,
    selections: &[&Selection],
    grid: &Grid,
) -> Result<Vec<CrossBands>, MatchError> {
    let mut streams = paths
        .iter()
        .map(|p| scan::open(p, rate).map(|(s, _)| s))
        .collect::<Result<Vec<_>, _>>()?;
    let out = spectra::measure_many(&mut streams, frames, rate, selections, &[grid])?;
    Ok(out.into_iter().map(|mut g| g.swap_remove(0)).collect())
}

/// One programme measured: its scan, the sections chosen and its band powers on the fit grid
/// and on the third-octave grid.
#[derive(Debug, Clone)]
pub struct Measured {
    /// The first pass.
    pub scan: Scan,
    /// The sections measured.
    pub selection: Selection,
    /// Band powers on the fit grid.
    pub fit: CrossBands,
    /// Band powers on the third-octave grid.
    pub thirds: CrossBands,
}

impl Measured {
    /// Measures `scan`'s file over `selection` (one read).
    pub fn new(
        scan: Scan,
        selection: Selection,
        grids: (&Grid, &Grid),
    ) -> Result<Measured, MatchError> {
        let mut v = Self::many(&scan, vec![selection], grids)?;
        Ok(v.swap_remove(0))
    }

    /// Measures `scan`'s file over each of `selections`, in one read.
    pub fn many(
        scan: &Scan,
        selections: Vec<Selection>,
        grids: (&Grid, &Grid),
    ) -> Result<Vec<Measured>, MatchError> {
        let (mut stream, _) = scan::open(&scan.path, scan.sample_rate)?;
        let refs: Vec<&Selection> = selections.iter().collect();
        let out = spectra::measure_many(
            std::slice::from_mut(&mut stream),
            scan.frames,
            scan.sample_rate,
            &refs,
            &[grids.0, grids.1],
        )?;
        let mut measured = Vec::with_capacity(selections.len());
        for (selection, g) in selections.into_iter().zip(out) {
            let [fit, thirds]: [CrossBands; 2] = g
                .try_into()
                .map_err(|_| MatchError::Internal("two grids measured".into()))?;
            measured.push(Measured {
                scan: scan.clone(),
                selection,
                fit,
                thirds,
            });
        }
        Ok(measured)
    }

    /// Band levels in dB relative to the selection's loudness (loudness-matched levels), mid
    /// or side, on the fit grid or the third-octave grid.
    pub fn levels(&self, side: bool, thirds: bool) -> Vec<f64> {
        let c = if thirds { &self.thirds } else { &self.fit };
        c.total(side)
            .iter()
            .map(|p| 10.0 * p.max(1e-30).log10() - self.selection.loudness_lufs)
            .collect()
    }

    /// Side-to-mid ratio over the chosen sections, dB.
    pub fn side_to_mid_db(&self) -> f64 {
        let m: f64 = self.fit.total(false).iter().sum();
        let s: f64 = self.fit.total(true).iter().sum();
        10.0 * (s.max(1e-30) / m.max(1e-30)).log10()
    }
}
