//! Rendering beyond one machine: the album as lists of independent jobs.
//!
//! [`write_plan`] writes a JSON plan of two phases. Phase `measure` has one job per song (jobs
//! `0..n`), phase `render` one per song (jobs `n..2n`); within a phase the jobs are independent
//! and may run anywhere, in any order, at once (GNU parallel, a Slurm job array, a Kubernetes
//! indexed Job), as long as every machine sees the same output folder (a shared file system):
//! the jobs communicate through the records of the work folder ([`super::work`]).
//!
//! Between the phases and at the end, [`finish`] runs once: after the measure phase it combines
//! the measurements into the drives (the album gain); after the render phase it writes the CD
//! image, the report and the manifest. [`run_job`] runs one job. A job or a finish that finds its
//! work current does nothing, so a failed job can simply be run again, and the whole plan can be
//! run again after a change to redo only what changed. The result is the same, bit for bit, as
//! one `stemgraph album` run: the same functions run the same jobs.

use super::run::{gain_phase, render_one, report_phase};
use super::song;
use super::work::{read_json, GainRecord, MeasureRecord, RenderRecord};
use super::{pool, report::AlbumReport, AlbumContext, AlbumError, AlbumOptions, AlbumSpec};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One job of the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanJob {
    /// The job number (`--job K`).
    pub job: usize,
    /// The song's track number.
    pub track: usize,
    /// The song's title.
    pub title: String,
    /// The command line arguments after the program name.
    pub args: Vec<String>,
}

/// One phase of the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanPhase {
    /// `measure` or `render`.
    pub phase: String,
    /// The first job number of the phase.
    pub first_job: usize,
    /// The last job number of the phase.
    pub last_job: usize,
    /// The jobs.
    pub jobs: Vec<PlanJob>,
    /// What to run once every job of the phase is done (arguments after the program name).
    pub then: Vec<String>,
}

/// The plan of an album.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The album file.
    pub album: PathBuf,
    /// The output folder (shared by every machine).
    pub out: PathBuf,
    /// Number of songs.
    pub songs: usize,
    /// The phases, in order.
    pub phases: Vec<PlanPhase>,
}

/// What one job did.
#[derive(Debug, Clone, PartialEq)]
pub enum JobOutcome {
    /// A measure job.
    Measured {
        /// The song.
        track: usize,
        /// Whether its measurement was already current.
        unchanged: bool,
    },
    /// A render job.
    Rendered {
        /// The song.
        track: usize,
        /// Whether its files were already current.
        unchanged: bool,
    },
}

/// What `--finish` did.
#[derive(Debug)]
pub enum FinishOutcome {
    /// After the measure phase: the drives were computed (or were current); run the render jobs.
    Gain(GainRecord),
    /// After the render phase: the report (`None` when it was current).
    Report(Option<Box<AlbumReport>>),
}

fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    })
}

/// Writes the plan of `spec` to `path` and returns it.
pub fn write_plan(spec: &AlbumSpec, opts: &AlbumOptions, path: &Path) -> Result<Plan, AlbumError> {
    AlbumContext::new(spec, opts)?;
    std::fs::create_dir_all(&opts.out_dir).map_err(|source| AlbumError::Io {
        path: opts.out_dir.clone(),
        source,
    })?;
    let album = absolute(&spec.file);
    let out = absolute(&opts.out_dir);
    let base = |extra: &[String]| {
        let mut a = vec![
            "album".to_string(),
            album.display().to_string(),
            "--out".to_string(),
            out.display().to_string(),
        ];
        if opts.block_size != crate::render::DEFAULT_BLOCK {
            a.push("--block".into());
            a.push(opts.block_size.to_string());
        }
        a.extend_from_slice(extra);
        a
    };
    let n = spec.songs.len();
    let phase = |name: &str, first: usize| PlanPhase {
        phase: name.to_string(),
        first_job: first,
        last_job: first + n - 1,
        jobs: spec
            .songs
            .iter()
            .enumerate()
            .map(|(i, s)| PlanJob {
                job: first + i,
                track: s.track,
                title: s.session.title.clone(),
                args: base(&["--job".to_string(), (first + i).to_string()]),
            })
            .collect(),
        then: base(&["--finish".to_string()]),
    };
    let plan = Plan {
        album: album.clone(),
        out: out.clone(),
        songs: n,
        phases: vec![phase("measure", 0), phase("render", n)],
    };
    super::work::write_json(path, &plan)?;
    Ok(plan)
}

/// Reads song `i`'s measure record and checks it is current.
fn current_measure(ctx: &AlbumContext<'_>, i: usize) -> Result<MeasureRecord, AlbumError> {
    let s = &ctx.spec.songs[i];
    let key = song::current_measure_key(ctx, s)?;
    match read_json::<MeasureRecord>(&ctx.work.measure(s.track)) {
        Some(r) if r.key == key => Ok(r),
        _ => Err(AlbumError::Plan(format!(
            "track {} ({}) has not been measured with its current inputs: run its measure job (--job {i}) first",
            s.track, s.session.title
        ))),
    }
}

/// Runs job `k` of the plan (see the module documentation).
pub fn run_job(spec: &AlbumSpec, opts: &AlbumOptions, k: usize) -> Result<JobOutcome, AlbumError> {
    let ctx = AlbumContext::new(spec, opts)?;
    let n = spec.songs.len();
    let result = if k < n {
        song::measure(&ctx, &spec.songs[k], false).map(|(r, unchanged)| JobOutcome::Measured {
            track: r.track,
            unchanged,
        })
    } else if k < 2 * n {
        let i = k - n;
        (|| {
            let measure = current_measure(&ctx, i)?;
            // The gain must come from the measurements on record now, every song's: a song
            // measured again since --finish may have moved the album gain.
            let on_record: Vec<Option<String>> = spec
                .songs
                .iter()
                .map(|s| read_json::<MeasureRecord>(&ctx.work.measure(s.track)).map(|m| m.key))
                .collect();
            let gain = read_json::<GainRecord>(&ctx.work.gain())
                .filter(|g| {
                    g.policy == spec.policy
                        && g.measure_keys.len() == n
                        && g.measure_keys[i] == measure.key
                        && g.measure_keys
                            .iter()
                            .zip(&on_record)
                            .all(|(k, r)| r.as_ref() == Some(k))
                })
                .ok_or_else(|| {
                    AlbumError::Plan(
                        "the album gain has not been computed from the current measurements: run \
                         every measure job, then --finish, before the render jobs"
                            .into(),
                    )
                })?;
            let (r, unchanged) = render_one(&ctx, i, &measure, &gain, false)?;
            Ok(JobOutcome::Rendered {
                track: r.track,
                unchanged,
            })
        })()
    } else {
        Err(AlbumError::Plan(format!(
            "job {k} does not exist: the album has {n} songs, so jobs 0 to {} (measure) and {n} to {} (render)",
            n - 1,
            2 * n - 1
        )))
    };
    ctx.save_digests();
    result
}

/// Runs the step between the phases or after them (see the module documentation).
pub fn finish(spec: &AlbumSpec, opts: &AlbumOptions) -> Result<FinishOutcome, AlbumError> {
    let ctx = AlbumContext::new(spec, opts)?;
    let result = (|| {
        let n = spec.songs.len();
        let measures = pool::try_run(ctx.jobs, n, |i| current_measure(&ctx, i))?;
        let keys: Vec<String> = measures.iter().map(|m| m.key.clone()).collect();
        let (gain, solved) = gain_phase(&ctx, &measures)?;
        debug_assert_eq!(gain.measure_keys, keys);
        let mut renders = Vec::new();
        let mut missing = Vec::new();
        for (i, s) in spec.songs.iter().enumerate() {
            let key = song::current_render_key(&ctx, s, &measures[i].key, gain.drives_db[i]);
            match read_json::<RenderRecord>(&ctx.work.render(s.track)) {
                Some(r) if r.key == key => renders.push(r),
                _ => missing.push(n + i),
            }
        }
        if !missing.is_empty() && (solved || missing.len() == n) {
            return Ok(FinishOutcome::Gain(gain));
        }
        if !missing.is_empty() {
            return Err(AlbumError::Plan(format!(
                "render jobs {missing:?} have not run since the album gain was computed: run them, then --finish again"
            )));
        }
        Ok(FinishOutcome::Report(
            report_phase(&ctx, &measures, &gain, &renders)?.map(Box::new),
        ))
    })();
    ctx.save_digests();
    result
}
