//! Loudness targets: solving for the master limiter's drive so the master lands on
//! `target_lufs` with its true peak under `ceiling_dbtp`.
//!
//! Three stages, and the full graph runs once:
//! 1. the whole graph renders once, and the signal entering the master limiter (the
//!    pre-limiter master) is spilled to a temporary 32-bit float file and measured;
//! 2. the limiter and what follows it (the "tail chain") run over the spill with a drive, and the
//!    result is measured; the drive is corrected until the integrated loudness is within
//!    ±0.05 LU of the target (a plain step by the error first, then secant steps on the
//!    measured curve: the limiter's loudness gain is smooth in the drive, so this takes two or
//!    three cheap passes);
//! 3. the tail chain runs a last time over the spill with the solved drive and writes the
//!    deliverables.
//!
//! Memory stays flat: every stage streams. The drive is a gain ahead of the limiter (−60…+36 dB,
//! applied by the limiter to its input before anything else it does: `limiter::SOLVER_DRIVE_DB`),
//! so the limiter's own settings stay as the recipe wrote them.
//!
//! In a render, stage 1 is the run stage ([`spill`], called by [`super::run`]) and stages 2
//! and 3 are the target stage ([`meet`]); the deliver stage then finishes the files.
//!
//! Each stage is also a public function ([`master_tail`], [`spill_pre_limiter`],
//! [`measure_tail`], [`solve_drive`], [`render_tail`]) so that an album can run stage 1 for
//! every song, decide the drives across songs (album gain), and then run stage 3 per song.

use super::inputs::non_finite_warnings;
use super::readings::{LimiterReadings, ReadingsMode};
use super::report::CollectedMeters;
use super::run::{after_each_block, run, Observe, Pass, Staging};
use super::speculate::{PeakHistogram, Speculate};
use super::timings::{StageTime, Stopwatch};
use super::{RenderContext, RenderError, RenderOptions, RenderResult, StemPlan};
use crate::analysis::meters::LoudnessMeter;
use crate::dsp::limiter::SOLVER_DRIVE_DB;
use crate::dsp::{ConfigValue, Port};
use crate::engine::parallel::RunSettings;
use crate::graph::{EdgeSpec, GraphSpec, NodeKind, NodeSpec};
use crate::io::decode::{StemStream, StreamOptions};
use crate::io::wav::{WavFormat, WavOutput};
use crate::session::Session;
use serde::Serialize;
use std::path::PathBuf;

/// Integrated-loudness tolerance the solver aims for (the promise is ±0.1 LU).
pub const TOLERANCE_LU: f64 = 0.05;
/// How far from the target the master may land and count as reaching it, unless the recipe
/// says otherwise (`session { target_tolerance_lu = … }`).
pub const DEFAULT_TOLERANCE_LU: f64 = 0.1;
/// Average gain reduction above which the report warns that the target is pushed too hard.
pub const SENSIBLE_MEAN_REDUCTION_DB: f64 = 3.0;

/// How the target was met.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetOutcome {
    /// The target.
    pub target_lufs: f64,
    /// Integrated loudness of the master as delivered (before dither), measured.
    pub integrated_lufs: f64,
    /// Loudness of the pre-limiter master.
    pub pre_limiter_lufs: f64,
    /// The limiter drive solved for, dB.
    pub drive_db: f64,
    /// What the limiter took away: drive minus loudness gained, LU.
    pub limiting_cost_lu: f64,
    /// Passes over the full graph.
    pub full_passes: u32,
    /// Passes of the tail chain over the spilled pre-limiter master.
    pub tail_passes: u32,
    /// Those of them in which the limiter's true-peak detector ran over the spill; the others
    /// replayed its recorded readings (see [`super::readings`]).
    pub detecting_passes: u32,
    /// The limiter node driven.
    pub limiter: String,
    /// Whether the master landed within `tolerance_lu` of the target.
    pub reached: bool,
    /// The tolerance, LU.
    pub tolerance_lu: f64,
    /// How far the master is from the target (target minus measured: positive when it is
    /// quieter), LU.
    pub missed_by_lu: f64,
    /// Why the target was not reached, when it was not.
    pub reason: Option<String>,
    /// The outcome in one line, as the render prints it.
    pub outcome: String,
}

impl TargetOutcome {
    /// Judges the solved drive against the target.
    #[allow(clippy::too_many_arguments)]
    pub fn judge(
        target: f64,
        tolerance: f64,
        solved: &SolvedDrive,
        pre_lufs: f64,
        ceiling_dbtp: Option<f64>,
        limiter: &str,
        tail_passes: u32,
    ) -> TargetOutcome {
        let lufs = solved.lufs;
        let missed = target - lufs;
        let reached = missed.abs() <= tolerance;
        let reason = (!reached).then(|| miss_reason(target, solved, ceiling_dbtp, limiter));
        let outcome = if reached {
            format!(
                "loudness target {target} LUFS: reached ({lufs:.2} LUFS, within ±{tolerance} LU)"
            )
        } else {
            format!(
                "loudness target {target} LUFS: not reached (by {:.2} LU: {lufs:.2} LUFS, because {})",
                missed.abs(),
                reason.as_deref().unwrap_or("")
            )
        };
        TargetOutcome {
            target_lufs: target,
            integrated_lufs: lufs,
            pre_limiter_lufs: pre_lufs,
            drive_db: solved.drive_db,
            limiting_cost_lu: solved.drive_db - (lufs - pre_lufs),
            full_passes: 1,
            tail_passes,
            detecting_passes: tail_passes,
            limiter: limiter.to_string(),
            reached,
            tolerance_lu: tolerance,
            missed_by_lu: missed,
            reason,
            outcome,
        }
    }
}

/// Why the solver stopped short of `target`.
fn miss_reason(
    target: f64,
    solved: &SolvedDrive,
    ceiling_dbtp: Option<f64>,
    limiter: &str,
) -> String {
    let (lo, hi) = DRIVE_RANGE_DB;
    let louder = target > solved.lufs;
    if louder && solved.drive_db >= hi {
        return format!("the drive into limiter `{limiter}` is at its maximum of {hi:+} dB");
    }
    if !louder && solved.drive_db <= lo {
        return format!("the drive into limiter `{limiter}` is at its minimum of {lo} dB");
    }
    let ceiling = ceiling_dbtp.map_or_else(String::new, |c| format!(" at its {c} dBTP ceiling"));
    match solved.last_step {
        Some((dd, dl)) if louder && dd > 0.0 && dl < 0.5 * dd => format!(
            "limiter `{limiter}`{ceiling} holds the master there: the last {dd:+.2} dB of drive gained \
             only {dl:.2} LU (a lower target, a higher ceiling or less dynamic material would)"
        ),
        _ => format!(
            "the solver stopped after {} passes {:.2} LU away",
            solved.passes,
            (target - solved.lufs).abs()
        ),
    }
}

/// The master limiter and the chain from it to the output: what the loudness solvers drive.
#[derive(Debug, Clone, PartialEq)]
pub struct MasterTail {
    /// The node whose output enters the limiter.
    pub feed: String,
    /// The limiter and every node after it up to (not including) the output, in order.
    pub tail: Vec<String>,
    /// The output node.
    pub output: String,
    /// Channels of the output.
    pub channels: usize,
}

impl MasterTail {
    /// The limiter node the drive is applied to.
    pub fn limiter(&self) -> &str {
        &self.tail[0]
    }
}

/// The pre-limiter master spilled to a 32-bit float file: what stages 2 and 3 run over.
#[derive(Debug, Clone, PartialEq)]
pub struct SpilledMaster {
    /// The spill file.
    pub path: PathBuf,
    /// Frames in it: the song plus the graph's tail.
    pub frames: u64,
    /// Its sample rate (the session's).
    pub sample_rate: u32,
    /// Its channels (the output's).
    pub channels: usize,
}

/// What stage 1 produced.
pub struct PreLimiter {
    /// The spill.
    pub spill: SpilledMaster,
    /// Loudness of the pre-limiter master.
    pub meter: LoudnessMeter,
    /// Its frames' peak magnitudes (whether the first drive can be run as the final one).
    pub peaks: PeakHistogram,
    /// Compiler warnings of the full graph.
    pub warnings: Vec<String>,
    /// The taps of the full pass, after the last block.
    pub taps: Vec<(String, Box<dyn crate::engine::Tap>)>,
    /// The report's meters of the full pass (stems, gain reduction before the limiter).
    pub meters: Option<CollectedMeters>,
    /// Non-finite samples each stem stream muted, in stem order.
    pub non_finite: Vec<crate::io::decode::NonFinite>,
}

/// How the drive was solved in stage 2.
#[derive(Debug, Clone, PartialEq)]
pub struct SolvedDrive {
    /// The limiter drive, dB.
    pub drive_db: f64,
    /// Integrated loudness of the tail chain's output at that drive, LUFS.
    pub lufs: f64,
    /// Passes of the tail chain over the spill.
    pub passes: u32,
    /// The last change of drive and what it gained (dB, LU), when there were two passes.
    pub last_step: Option<(f64, f64)>,
    /// What each measuring pass took.
    pub pass_times: Vec<StageTime>,
}

/// Passes measured before the solver turns from plain steps (drive += error) to secant steps.
/// Two: after the first pass's plain step the second pass gives the curve's slope, and a
/// limiter working hard gains well under a dB of loudness per dB of drive, so plain steps only
/// creep up on the target (the loud master of benches/compare took four passes to the
/// secant's three, and landed further from it).
pub const PLAIN_PASSES: u32 = 2;
/// The slopes (LU of loudness per dB of drive) a secant step trusts; outside them (a
/// measurement dominated by gating or a limiter at its end stop) the step is a plain one.
const SECANT_SLOPES: (f64, f64) = (0.05, 1.5);
/// Passes of the tail chain the solver makes at most.
pub const MAX_PASSES: u32 = 12;

/// The drive range the solver searches (a gain ahead of the limiter).
pub const DRIVE_RANGE_DB: (f64, f64) = (-60.0, 36.0);

fn single_input<'a>(spec: &'a GraphSpec, id: &str) -> Vec<&'a EdgeSpec> {
    spec.edges.iter().filter(|e| e.to == id).collect()
}

/// Finds the last `limiter` on the way to `output` and checks that only a chain follows it.
fn plan_tail(spec: &GraphSpec, output: &str) -> Result<MasterTail, RenderError> {
    let invalid = |m: String| RenderError::Invalid(m);
    let mut chain = Vec::new();
    let mut at = output.to_string();
    loop {
        let inputs = single_input(spec, &at);
        if inputs.len() != 1 || inputs[0].port != Port::Main {
            return Err(invalid(format!(
                "target_lufs needs a `limiter` in the chain that feeds output `{output}`; the search stopped at `{at}`, which has {} inputs",
                inputs.len()
            )));
        }
        let from = inputs[0].from.clone();
        let node = spec.find(&from).expect("validated graph");
        let consumers = spec.edges.iter().filter(|e| e.from == from).count();
        match &node.kind {
            NodeKind::Processor { kind, .. } if consumers == 1 => {
                chain.push(from.clone());
                if kind == "limiter" {
                    chain.reverse();
                    let feed = single_input(spec, &from)
                        .iter()
                        .find(|e| e.port == Port::Main)
                        .map(|e| e.from.clone())
                        .ok_or_else(|| invalid(format!("limiter `{from}` has no input")))?;
                    if single_input(spec, &from).iter().any(|e| e.port == Port::Key) {
                        return Err(invalid(format!("target_lufs cannot drive limiter `{from}`: it has a side-chain key")));
                    }
                    return Ok(MasterTail {
                        feed,
                        tail: chain,
                        output: output.to_string(),
                        channels: 0,
                    });
                }
                at = from;
            }
            _ => {
                return Err(invalid(format!(
                    "target_lufs needs a `limiter` at the end of the master chain feeding output `{output}` \
                     (only a chain of processors may follow it); none found before `{from}`"
                )))
            }
        }
    }
}

/// The tail chain as a graph of its own, fed by engine input 0 (the spill), its limiter driven
/// by `drive` dB (`limiter::SOLVER_DRIVE_DB`: a gain on its input ahead of everything it does,
/// the bits of a gain node ahead of it without that node's pass over every block).
pub fn tail_spec(spec: &GraphSpec, plan: &MasterTail, drive: f64) -> GraphSpec {
    let channels = plan.channels;
    let mut g = GraphSpec::new();
    g.node(
        "__pre_limiter",
        NodeKind::Source {
            input: 0,
            channels,
            config: Default::default(),
        },
    );
    let mut prev = "__pre_limiter".to_string();
    for id in &plan.tail {
        let mut node: NodeSpec = spec.find(id).expect("planned from this graph").clone();
        if *id == plan.tail[0] {
            if let NodeKind::Processor { config, .. } = &mut node.kind {
                *config = config.clone().num(SOLVER_DRIVE_DB, drive);
            }
        }
        g.nodes.push(node);
        g.connect(&prev, id);
        prev = id.clone();
    }
    g.nodes
        .push(spec.find(&plan.output).expect("planned").clone());
    g.connect(&prev, &plan.output);
    g.automation = spec
        .automation
        .iter()
        .filter(|a| {
            plan.tail
                .iter()
                .any(|id| a.param.starts_with(&format!("{id}.")))
        })
        .cloned()
        .collect();
    g
}

fn spill_stream(spill: &SpilledMaster) -> Result<StemStream, RenderError> {
    Ok(StemStream::open(
        &spill.path,
        &StreamOptions {
            target_rate: spill.sample_rate,
            target_channels: spill.channels,
            length_frames: None,
        },
    )?
    .0)
}

/// Finds the master limiter and the chain after it, on the way to the output the session's
/// deliverables are made from.
pub fn master_tail(session: &Session, spec: &GraphSpec) -> Result<MasterTail, RenderError> {
    let output = match session.deliverables.iter().find_map(|d| d.output.clone()) {
        Some(o) => o,
        None => spec
            .nodes
            .iter()
            .find(|n| matches!(n.kind, NodeKind::Output { .. }))
            .map(|n| n.id.clone())
            .ok_or(RenderError::Graph(crate::graph::GraphError::NoOutput))?,
    };
    let mut tail = plan_tail(spec, &output)?;
    tail.channels = match spec.find(&output).map(|n| &n.kind) {
        Some(NodeKind::Output { channels }) => *channels,
        _ => 2,
    };
    Ok(tail)
}

/// Stage 1: runs the full graph once over `streams`, spilling what enters the limiter to
/// `spill_path` (written atomically) and measuring its loudness. Uses (and returns) the taps of
/// `opts`.
pub fn spill_pre_limiter(
    spec: &GraphSpec,
    tail: &MasterTail,
    mut streams: Vec<StemStream>,
    plan: &StemPlan,
    spill_path: &std::path::Path,
    opts: &mut RenderOptions,
) -> Result<PreLimiter, RenderError> {
    let rate = plan.sample_rate;
    let channels = tail.channels;
    let mut pass1 = without_tail(spec, tail);
    pass1.output("__spill");
    if let Some(NodeSpec {
        kind: NodeKind::Output { channels: c },
        ..
    }) = pass1.nodes.last_mut()
    {
        *c = channels;
    }
    pass1.connect(&tail.feed, "__spill");
    let mut copts = crate::graph::CompileOptions::new(f64::from(rate), opts.block_size);
    // Taps on the nodes this pass runs; those on the tail chain and its output wait in `opts`
    // for the pass that runs them (stage 3).
    let (here, later) = std::mem::take(&mut opts.taps)
        .into_iter()
        .partition(|(id, _)| pass1.find(id).is_some());
    copts.taps = here;
    opts.taps = later;
    // The report's stem meters and the gain reduction before the limiter come from this pass
    // (its outputs are metered in stage 3: no meter on the spill).
    let mut collector =
        opts.report_collector(&pass1, f64::from(rate), plan.song_frames, &mut copts);
    let spill_output = |id: &str| id == "__spill";
    copts.taps.retain(|(id, _)| !spill_output(id));
    let compiled = crate::graph::compile(&pass1, copts)?;
    let warnings = compiled.warnings;
    let mut schedule = compiled.schedule;
    if let Some(c) = collector.as_mut() {
        c.watch(&schedule);
    }
    let mut user_progress = opts.progress.take();
    let frames_done = std::cell::Cell::new(0);
    let mut after_block = after_each_block(&frames_done, &mut user_progress);
    let spill_index = (0..schedule.output_count())
        .find(|&o| schedule.output_slot(o).id == "__spill")
        .expect("added above");
    let mut writer = WavOutput::create(spill_path, rate, channels, WavFormat::Float32, &[])?;
    let mut pre = LoudnessMeter::new(f64::from(rate), channels);
    let mut peaks = PeakHistogram::default();
    let settings = RunSettings {
        block: opts.block_size,
        threads: opts.threads,
        interrupt: opts.interrupt.as_deref(),
        progress: Some(&mut after_block),
        stop: None,
    };
    run(
        &mut schedule,
        &mut streams,
        plan.song_frames,
        settings,
        |o, _, b| {
            if o == spill_index {
                let planar: Vec<&[f64]> = (0..b.channels()).map(|c| b.channel(c)).collect();
                pre.push(&planar);
                peaks.push(b);
                writer.write(b)?;
            }
            Ok(())
        },
    )?;
    writer.finish()?;
    drop(after_block);
    opts.progress = user_progress;
    let mut taps = schedule.take_taps();
    let meters = collector.map(|c| c.finish(&mut taps, frames_done.get()));
    Ok(PreLimiter {
        spill: SpilledMaster {
            path: spill_path.to_path_buf(),
            frames: plan.song_frames + schedule.tail() as u64,
            sample_rate: rate,
            channels,
        },
        meter: pre,
        peaks,
        warnings,
        taps,
        meters,
        non_finite: streams.iter().map(StemStream::non_finite).collect(),
    })
}

/// `spec` without the master limiter, what follows it and the output it feeds: the part of the
/// graph stage 1 runs (the tail chain runs over the spill in stages 2 and 3, so running it in
/// stage 1 too would be wasted work, and its true-peak detection is the dearest part of a render).
fn without_tail(spec: &GraphSpec, tail: &MasterTail) -> GraphSpec {
    let cut = |id: &str| id == tail.output || tail.tail.iter().any(|t| t == id);
    let mut g = spec.clone();
    g.nodes.retain(|n| !cut(&n.id));
    g.edges.retain(|e| !cut(&e.from) && !cut(&e.to));
    g.automation.retain(|a| {
        !tail
            .tail
            .iter()
            .any(|id| a.param.starts_with(&format!("{id}.")))
    });
    g
}

/// Loudness of the tail chain's output over the spill with `drive` (a full meter, so several
/// songs can be measured as one).
///
/// With `readings`, the limiter's stage-A readings are replayed from a recording that covers
/// `drive`, or recorded by this pass (see [`super::readings`]).
pub fn measure_tail(
    spec: &GraphSpec,
    tail: &MasterTail,
    drive: f64,
    spill: &SpilledMaster,
    block: usize,
    mut readings: Option<&mut LimiterReadings>,
) -> Result<LoudnessMeter, RenderError> {
    let mut g = tail_spec(spec, tail, drive);
    let mut streams = vec![spill_stream(spill)?];
    let mut recording = match readings.as_deref_mut() {
        Some(r) => {
            let mode = r.for_measure(drive);
            r.attach(&mut g, tail, mode, &mut streams)?
        }
        None => None,
    };
    // Only the loudness is wanted: the master limiter without its safety stage (see
    // crate::dsp::limiter::MEASURE_ONLY).
    if let Some(NodeSpec {
        kind: NodeKind::Processor { config, .. },
        ..
    }) = g.nodes.iter_mut().find(|n| n.id == tail.limiter())
    {
        *config = config
            .clone()
            .with(crate::dsp::limiter::MEASURE_ONLY, ConfigValue::Bool(true));
    }
    let rate = spill.sample_rate;
    let mut schedule = crate::graph::compile(
        &g,
        crate::graph::CompileOptions::new(f64::from(rate), block),
    )?
    .schedule;
    let recorded_output = (0..schedule.output_count())
        .find(|&o| schedule.output_slot(o).id == super::readings::READINGS_OUTPUT);
    let mut meter = LoudnessMeter::new(f64::from(rate), spill.channels);
    run(
        &mut schedule,
        &mut streams,
        spill.frames,
        RunSettings {
            block,
            threads: 1,
            interrupt: None,
            progress: None,
            stop: None,
        },
        |o, _, b| {
            if Some(o) == recorded_output {
                if let Some(w) = recording.as_mut() {
                    w.write(b)?;
                }
                return Ok(());
            }
            let planar: Vec<&[f64]> = (0..b.channels()).map(|c| b.channel(c)).collect();
            meter.push(&planar);
            Ok(())
        },
    )?;
    if let (Some(w), Some(r)) = (recording, readings) {
        r.finish_recording(w, drive)?;
    }
    Ok(meter)
}

/// Stage 2: the drive that puts the tail chain's output on `target` LUFS, within
/// [`TOLERANCE_LU`] when the limiter allows it (the largest drive otherwise).
///
/// The drive moves by the remaining error for the first [`PLAIN_PASSES`] − 1 steps (exact when
/// the limiter does nothing); then secant steps on the measured curve follow (a limiter working
/// hard gains less than a dB per dB of drive), while the curve's slope is within
/// [`SECANT_SLOPES`], up to [`MAX_PASSES`] passes in all.
///
/// `measured`, when the first drive ([`first_drive`]) has already been measured (a speculative
/// final pass that missed, see [`super::speculate`]): its loudness, counted as the first pass.
#[allow(clippy::too_many_arguments)]
pub fn solve_drive(
    spec: &GraphSpec,
    tail: &MasterTail,
    spill: &SpilledMaster,
    pre_lufs: f64,
    target: f64,
    block: usize,
    mut readings: Option<&mut LimiterReadings>,
    mut measured: Option<f64>,
) -> Result<SolvedDrive, RenderError> {
    let (lo, hi) = DRIVE_RANGE_DB;
    let mut drive = first_drive(target, pre_lufs);
    let mut passes = 0;
    let mut lufs = f64::NAN;
    let mut last_step = None;
    let mut prev: Option<(f64, f64)> = None;
    let mut pass_times = Vec::new();
    while passes < MAX_PASSES {
        lufs = match measured.take() {
            Some(l) => l,
            None => {
                let clock = Stopwatch::start();
                let mode = readings.as_deref().map(|r| r.for_measure(drive));
                let l = measure_tail(spec, tail, drive, spill, block, readings.as_deref_mut())?
                    .integrated_lufs();
                pass_times.push(clock.stop(format!(
                    "solve pass {} ({})",
                    passes + 1,
                    match mode {
                        Some(ReadingsMode::Replay) => "readings replayed",
                        Some(ReadingsMode::Record(_)) => "readings recorded",
                        Some(ReadingsMode::Probe(_)) => "readings computed",
                        _ => "detecting",
                    }
                )));
                l
            }
        };
        passes += 1;
        if let Some((d0, l0)) = prev {
            last_step = Some((drive - d0, lufs - l0));
        }
        let error = target - lufs;
        if error.abs() <= TOLERANCE_LU {
            break;
        }
        let step = match last_step {
            // Secant on the measured curve after the plain steps, when its slope is sane.
            Some((dd, dl))
                if passes >= PLAIN_PASSES
                    && dd.abs() > 1e-9
                    && (SECANT_SLOPES.0..=SECANT_SLOPES.1).contains(&(dl / dd)) =>
            {
                (error * dd / dl).clamp(-12.0, 12.0)
            }
            _ => error,
        };
        let next = (drive + step).clamp(lo, hi);
        if next == drive {
            break; // at the end of the drive range
        }
        prev = Some((drive, lufs));
        drive = next;
    }
    Ok(SolvedDrive {
        drive_db: drive,
        lufs,
        passes,
        last_step,
        pass_times,
    })
}

/// The solver's first drive: the target over the pre-limiter loudness (exact when the limiter
/// does nothing), within [`DRIVE_RANGE_DB`].
pub fn first_drive(target: f64, pre_lufs: f64) -> f64 {
    let (lo, hi) = DRIVE_RANGE_DB;
    (target - pre_lufs).clamp(lo, hi)
}

/// Stage 3: the tail chain over the spill with `drive`, writing the session's deliverables.
/// `song_frames` is the song's length without the graph's tail (the spill holds that tail).
pub fn render_tail(
    session: &Session,
    spec: &GraphSpec,
    tail: &MasterTail,
    drive: f64,
    spill: &SpilledMaster,
    song_frames: u64,
    opts: &mut RenderOptions,
) -> Result<(RenderResult, Option<CollectedMeters>), RenderError> {
    tail_pass(session, spec, tail, drive, spill, song_frames, opts, None)?.finish(spill.sample_rate)
}

/// The tail chain over the spill with `drive`, its deliverables written but not finished.
fn tail_pass(
    session: &Session,
    spec: &GraphSpec,
    tail: &MasterTail,
    drive: f64,
    spill: &SpilledMaster,
    song_frames: u64,
    opts: &mut RenderOptions,
    readings: Option<&mut LimiterReadings>,
) -> Result<Pass, RenderError> {
    let mut g = tail_spec(spec, tail, drive);
    let mut streams = vec![spill_stream(spill)?];
    if let Some(r) = readings {
        // The final pass never records (nothing would read the recording).
        let mode = r.for_final(drive);
        r.attach(&mut g, tail, mode, &mut streams)?;
    }
    Pass::run(
        session,
        &g,
        streams,
        spill.frames,
        spill.sample_rate,
        opts,
        song_frames,
        None,
        Staging::Chain,
    )
}

/// Whether the target stage runs its first pass as the final one: the limiter can take
/// recorded readings (the passes after a miss replay them), no tap waits for the final pass
/// (a tap cannot forget a pass), and the spill's peaks say the limiter will barely act at
/// `drive` ([`PeakHistogram::limiting_is_negligible`]).
fn worth_speculating(
    ctx: &RenderContext<'_>,
    readings: &LimiterReadings,
    peaks: &PeakHistogram,
    drive: f64,
) -> bool {
    let predicted = || {
        readings
            .threshold_at_unity()
            .is_some_and(|t| peaks.limiting_is_negligible(t, drive))
    };
    ctx.opts.taps.is_empty()
        && match ctx.opts.speculate {
            Speculate::Never => false,
            Speculate::WhenPredicted => predicted(),
            Speculate::Always => readings.threshold_at_unity().is_some(),
        }
}

/// The final pass at `drive` before the solve has confirmed it: the deliverables written, the
/// limiter fed its readings as a recording pass feeds it (nothing kept), and the loudness of the output measured over
/// every frame of the spill, as a measuring pass measures it.
fn speculative_pass(
    ctx: &mut RenderContext<'_>,
    tail: &MasterTail,
    drive: f64,
    spill: &SpilledMaster,
    readings: &mut LimiterReadings,
) -> Result<(Pass, f64), RenderError> {
    let mut g = tail_spec(&ctx.spec, tail, drive);
    let mut streams = vec![spill_stream(spill)?];
    let mode = readings.for_speculation(drive);
    readings.attach(&mut g, tail, mode, &mut streams)?;
    // The output's loudness as a measuring pass measures it: on the report's tap of the output
    // when there is one (K-weighted beside the report's own meter), else from its blocks.
    let mut meter = Some(LoudnessMeter::new(
        f64::from(spill.sample_rate),
        spill.channels,
    ));
    let mut each_block = |_: &str, _: crate::dsp::AudioRef<'_>| Ok(());
    let pass = Pass::run(
        ctx.session,
        &g,
        streams,
        spill.frames,
        spill.sample_rate,
        &mut ctx.opts,
        ctx.plan.song_frames,
        Some(Observe {
            each_block: &mut each_block,
            to_the_end: true,
            loudness: Some((&tail.output, &mut meter)),
        }),
        Staging::Chain,
    )?;
    let lufs = meter.expect("given back after the pass").integrated_lufs();
    Ok((pass, lufs))
}

/// The ceiling of limiter `id` as the recipe sets it (the limiter's default otherwise).
fn limiter_ceiling(spec: &GraphSpec, id: &str) -> Option<f64> {
    match &spec.find(id)?.kind {
        NodeKind::Processor { config, .. } => match config.clone().take("ceiling_dbtp") {
            Some(ConfigValue::Number(c)) => Some(c),
            _ => Some(-1.0),
        },
        _ => None,
    }
}

/// Removes the spill when done or failed.
struct SpillGuard(PathBuf);

impl Drop for SpillGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        if let Some(dir) = self.0.parent().and_then(std::path::Path::parent) {
            crate::io::temp::tidy(dir);
        }
    }
}

/// What a render with a loudness target carries from its run stage to its target stage.
pub(crate) struct Spilled {
    /// The master limiter and what follows it.
    tail: MasterTail,
    /// The spill and its meter (its warnings and taps already in the render's result).
    pre: PreLimiter,
    /// Removes the spill when the render is done with it, or fails.
    guard: SpillGuard,
}

/// Stage 1 of a render to a target, its run stage: the full graph once over the stems,
/// spilling what enters the master limiter into the output folder's temporaries folder.
pub(super) fn spill(ctx: &mut RenderContext<'_>) -> Result<(), RenderError> {
    let tail = master_tail(ctx.session, &ctx.spec)?;
    let opts = &mut ctx.opts;
    std::fs::create_dir_all(&opts.out_dir).map_err(|source| {
        crate::io::atomic::OutputError::Io {
            path: opts.out_dir.clone(),
            source,
        }
    })?;
    // In the output folder's temporaries folder, where a killed run's spill is found and
    // removed by the next run (see crate::io::temp).
    let guard = SpillGuard(
        crate::io::temp::path_in(&opts.out_dir, "pre-limiter.spill.wav").map_err(|source| {
            crate::io::atomic::OutputError::Io {
                path: crate::io::temp::dir_for(&opts.out_dir),
                source,
            }
        })?,
    );
    // Progress is reported by the final pass only.
    let progress = opts.progress.take();
    let streams = std::mem::take(&mut ctx.streams);
    let pre = spill_pre_limiter(&ctx.spec, &tail, streams, &ctx.plan, &guard.0, opts);
    opts.progress = progress;
    let mut pre = pre?;
    let non_finite: Vec<_> = ctx
        .session
        .stems
        .iter()
        .zip(&pre.non_finite)
        .filter(|(_, n)| n.any())
        .map(|(stem, n)| (stem.name.clone(), *n))
        .collect();
    let r = &mut ctx.result;
    r.warnings.append(&mut pre.warnings);
    r.warnings.extend(non_finite_warnings(
        &non_finite,
        f64::from(ctx.plan.sample_rate),
    ));
    r.non_finite = non_finite;
    r.taps = std::mem::take(&mut pre.taps);
    ctx.pre_limiter = Some(Spilled { tail, pre, guard });
    Ok(())
}

/// The target stage: with a loudness target, the limiter's drive solved on the spill
/// (stage 2), then the tail chain run over the spill with it into the deliverables (stage 3),
/// which the deliver stage finishes. Without a target, nothing.
pub(super) fn meet(ctx: &mut RenderContext<'_>) -> Result<(), RenderError> {
    let (Some(target), Some(spilled)) = (ctx.session.target_lufs, ctx.pre_limiter.take()) else {
        return Ok(());
    };
    let Spilled { tail, pre, guard } = spilled;
    let pre_lufs = pre.meter.integrated_lufs();
    if !pre_lufs.is_finite() {
        return Err(RenderError::Invalid(
            "target_lufs: the master is silent, there is no loudness to adjust".into(),
        ));
    }

    // 2. Solve the drive on the spill, the limiter's stage-A readings recorded once. When the
    //    limiter will barely act at the first drive, the first pass is the final one, run
    //    speculatively (see super::speculate): kept when it lands on the target, else its
    //    measurement starts the solve.
    let block = ctx.opts.block_size;
    let mut readings = LimiterReadings::new(&ctx.spec, &tail, &pre.spill);
    let first = first_drive(target, pre_lufs);
    let mut measured_first = None;
    let mut accepted = None;
    if worth_speculating(ctx, &readings, &pre.peaks, first) {
        let clock = Stopwatch::start();
        let (pass, lufs) = speculative_pass(ctx, &tail, first, &pre.spill, &mut readings)?;
        let landed = (target - lufs).abs() <= TOLERANCE_LU;
        ctx.result.timings.push(clock.stop(if landed {
            "final pass (first drive, kept)"
        } else {
            "speculative pass (missed: measured only)"
        }));
        if landed {
            accepted = Some((pass, lufs));
        } else {
            measured_first = Some(lufs);
        }
    }
    let (mut outcome, pass) = match accepted {
        Some((pass, lufs)) => {
            let solved = SolvedDrive {
                drive_db: first,
                lufs,
                passes: 0,
                last_step: None,
                pass_times: Vec::new(),
            };
            (judge(ctx, &tail, &solved, pre_lufs, target)?, pass)
        }
        None => {
            let solved = solve_drive(
                &ctx.spec,
                &tail,
                &pre.spill,
                pre_lufs,
                target,
                block,
                Some(&mut readings),
                measured_first,
            )?;
            ctx.result.timings.extend(solved.pass_times.iter().cloned());
            // With `--strict` a missed target stops here, before the final pass writes anything.
            let outcome = judge(ctx, &tail, &solved, pre_lufs, target)?;
            // 3. The deliverables from the spill with the solved drive.
            let clock = Stopwatch::start();
            let pass = tail_pass(
                ctx.session,
                &ctx.spec,
                &tail,
                solved.drive_db,
                &pre.spill,
                ctx.plan.song_frames,
                &mut ctx.opts,
                Some(&mut readings),
            )?;
            ctx.result.timings.push(clock.stop("final pass"));
            (outcome, pass)
        }
    };
    outcome.detecting_passes = outcome.tail_passes.saturating_sub(readings.replayed);
    drop(readings);
    drop(guard);
    let r = &mut ctx.result;
    r.latency = pass.latency;
    r.tail = pass.tail;
    r.warnings.extend(pass.warnings);
    r.taps.extend(pass.taps);
    r.target = Some(outcome);
    ctx.meters = merge_meters(ctx.session, &tail, pre.meters, pass.meters);
    ctx.sinks = pass.sinks;
    Ok(())
}

/// The outcome of the solve; a target missed is an error with `--strict`, a warning otherwise,
/// as is hard limiting.
fn judge(
    ctx: &mut RenderContext<'_>,
    tail: &MasterTail,
    solved: &SolvedDrive,
    pre_lufs: f64,
    target: f64,
) -> Result<TargetOutcome, RenderError> {
    let outcome = TargetOutcome::judge(
        target,
        ctx.session
            .target_tolerance_lu
            .unwrap_or(DEFAULT_TOLERANCE_LU),
        solved,
        pre_lufs,
        limiter_ceiling(&ctx.spec, tail.limiter()),
        tail.limiter(),
        solved.passes + 1,
    );
    let warnings = &mut ctx.result.warnings;
    if !outcome.reached {
        if ctx.opts.strict {
            // Nothing is written: the deliverables would not meet the recipe's target.
            return Err(RenderError::TargetMissed(outcome.outcome));
        }
        warnings.push(outcome.outcome.clone());
    }
    let cost = solved.drive_db - (solved.lufs - pre_lufs);
    if cost > SENSIBLE_MEAN_REDUCTION_DB {
        warnings.push(format!(
            "target_lufs {target}: the limiter takes {cost:.1} LU away to get there; that is a lot of limiting \
             (consider a lower target or more compression before the limiter)"
        ));
    }
    Ok(outcome)
}

/// The report's meters of a render to a target: stems and everything before the limiter from
/// the full pass; the limiter, what follows it and the outputs from the final pass.
fn merge_meters(
    session: &Session,
    tail: &MasterTail,
    first: Option<CollectedMeters>,
    last: Option<CollectedMeters>,
) -> Option<CollectedMeters> {
    let (first, last) = (first?, last?);
    let stems: Vec<&str> = session.stems.iter().map(|s| s.name.as_str()).collect();
    let mut nodes: Vec<_> = first
        .nodes
        .into_iter()
        .filter(|(id, _)| stems.contains(&id.as_str()))
        .collect();
    // The solver's own nodes (the spill's source, the drive, the readings' probe, source and
    // output) are not the recipe's: their ids start with `__`.
    nodes.extend(
        last.nodes
            .into_iter()
            .filter(|(id, _)| !crate::graph::is_internal(id)),
    );
    let mut gain_reduction: Vec<_> = first
        .gain_reduction
        .into_iter()
        .filter(|g| !tail.tail.contains(&g.node))
        .collect();
    gain_reduction.extend(
        last.gain_reduction
            .into_iter()
            .filter(|g| !crate::graph::is_internal(&g.node)),
    );
    Some(CollectedMeters {
        nodes,
        gain_reduction,
    })
}
