//! Loudness targets: solving for the master limiter's drive so the master lands on
//! `target_lufs` with its true peak under `ceiling_dbtp`.
//!
//! Three stages, and the full graph runs once:
//! 1. the whole graph renders once, and the signal entering the master limiter (the
//!    pre-limiter master) is spilled to a temporary 32-bit float file and measured;
//! 2. the limiter and what follows it (the "tail chain") run over the spill with a drive, and the
//!    result is measured; the drive is corrected until the integrated loudness is within
//!    ±0.05 LU of the target (the limiter's loudness gain is nearly linear below a few dB of
//!    reduction, so this takes two or three cheap passes);
//! 3. the tail chain runs a last time over the spill with the solved drive and writes the
//!    deliverables.
//!
//! Memory stays flat: every stage streams. The drive is a gain ahead of the limiter (the
//! master gain, −60…+36 dB), so the limiter's own settings stay as the recipe wrote them.
//!
//! Each stage is a public function ([`master_tail`], [`spill_pre_limiter`], [`measure_tail`],
//! [`solve_drive`], [`render_tail`]) so that an album can run stage 1 for every song, decide the
//! drives across songs (album gain), and then run stage 3 per song.

use super::report::CollectedMeters;
use super::{render_graph, RenderError, RenderOptions, RenderResult, StemPlan};
use crate::analysis::meters::LoudnessMeter;
use crate::dsp::{ConfigValue, Port};
use crate::graph::{EdgeSpec, GraphSpec, NodeKind, NodeSpec};
use crate::io::decode::{StemStream, StreamOptions};
use crate::io::wav::{WavFormat, WavOutput};
use crate::session::Session;
use serde::Serialize;
use std::path::PathBuf;

/// The gain node the solver adds ahead of the master limiter.
pub const DRIVE_NODE: &str = "__target_gain";
/// Integrated-loudness tolerance the solver aims for (the promise is ±0.1 LU).
pub const TOLERANCE_LU: f64 = 0.05;
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
    /// The limiter node driven.
    pub limiter: String,
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
    /// Compiler warnings of the full graph.
    pub warnings: Vec<String>,
    /// The taps of the full pass, after the last block.
    pub taps: Vec<(String, Box<dyn crate::engine::Tap>)>,
    /// The report's meters of the full pass (stems, gain reduction before the limiter).
    pub meters: Option<CollectedMeters>,
}

/// How the drive was solved in stage 2.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SolvedDrive {
    /// The limiter drive, dB.
    pub drive_db: f64,
    /// Integrated loudness of the tail chain's output at that drive, LUFS.
    pub lufs: f64,
    /// Passes of the tail chain over the spill.
    pub passes: u32,
}

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

/// The tail chain as a graph of its own, fed by engine input 0 (the spill) through a gain of
/// `drive` dB.
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
    g.processor(
        DRIVE_NODE,
        "gain",
        crate::dsp::ProcessorConfig::new().with("gain_db", ConfigValue::Number(drive)),
    );
    g.connect("__pre_limiter", DRIVE_NODE);
    let mut prev = DRIVE_NODE.to_string();
    for id in &plan.tail {
        let node: NodeSpec = spec.find(id).expect("planned from this graph").clone();
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
    let mut pass1 = spec.clone();
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
    copts.taps = std::mem::take(&mut opts.taps);
    // The report's stem meters and the gain reduction before the limiter come from this pass.
    let mut collector = opts.report_collector(spec, f64::from(rate), plan.song_frames, &mut copts);
    let compiled = crate::graph::compile(&pass1, copts)?;
    let warnings = compiled.warnings;
    let mut schedule = compiled.schedule;
    if let Some(c) = collector.as_mut() {
        c.watch(&schedule);
    }
    let mut user_progress = opts.progress.take();
    let mut after_block = super::after_each_block(&mut collector, &mut user_progress);
    let spill_index = (0..schedule.output_count())
        .find(|&o| schedule.output_slot(o).id == "__spill")
        .expect("added above");
    let mut writer = WavOutput::create(spill_path, rate, channels, WavFormat::Float32, &[])?;
    let mut pre = LoudnessMeter::new(f64::from(rate), channels);
    super::run_threads(
        &mut schedule,
        &mut streams,
        plan.song_frames,
        opts.block_size,
        opts.interrupt.as_deref(),
        Some(&mut after_block),
        |o, _, b| {
            if o == spill_index {
                let planar: Vec<&[f64]> = (0..b.channels()).map(|c| b.channel(c)).collect();
                pre.push(&planar);
                writer.write(b)?;
            }
            Ok(())
        },
        opts.threads,
    )?;
    writer.finish()?;
    drop(after_block);
    opts.progress = user_progress;
    let mut taps = schedule.take_taps();
    let meters = collector.map(|c| c.finish(&mut taps));
    Ok(PreLimiter {
        spill: SpilledMaster {
            path: spill_path.to_path_buf(),
            frames: plan.song_frames + schedule.tail() as u64,
            sample_rate: rate,
            channels,
        },
        meter: pre,
        warnings,
        taps,
        meters,
    })
}

/// Loudness of the tail chain's output over the spill with `drive` (a full meter, so several
/// songs can be measured as one).
pub fn measure_tail(
    spec: &GraphSpec,
    tail: &MasterTail,
    drive: f64,
    spill: &SpilledMaster,
    block: usize,
) -> Result<LoudnessMeter, RenderError> {
    let g = tail_spec(spec, tail, drive);
    let rate = spill.sample_rate;
    let mut schedule = crate::graph::compile(
        &g,
        crate::graph::CompileOptions::new(f64::from(rate), block),
    )?
    .schedule;
    let mut streams = vec![spill_stream(spill)?];
    let mut meter = LoudnessMeter::new(f64::from(rate), spill.channels);
    super::run(
        &mut schedule,
        &mut streams,
        spill.frames,
        block,
        None,
        None,
        |_, _, b| {
            let planar: Vec<&[f64]> = (0..b.channels()).map(|c| b.channel(c)).collect();
            meter.push(&planar);
            Ok(())
        },
    )?;
    Ok(meter)
}

/// Stage 2: the drive that puts the tail chain's output on `target` LUFS, within
/// [`TOLERANCE_LU`] when the limiter allows it (the largest drive otherwise).
pub fn solve_drive(
    spec: &GraphSpec,
    tail: &MasterTail,
    spill: &SpilledMaster,
    pre_lufs: f64,
    target: f64,
    block: usize,
) -> Result<SolvedDrive, RenderError> {
    let (lo, hi) = DRIVE_RANGE_DB;
    let mut drive = (target - pre_lufs).clamp(lo, hi);
    let mut passes = 0;
    let mut lufs = f64::NAN;
    for _ in 0..6 {
        lufs = measure_tail(spec, tail, drive, spill, block)?.integrated_lufs();
        passes += 1;
        let error = target - lufs;
        if error.abs() <= TOLERANCE_LU {
            break;
        }
        drive = (drive + error).clamp(lo, hi);
    }
    Ok(SolvedDrive {
        drive_db: drive,
        lufs,
        passes,
    })
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
    let g = tail_spec(spec, tail, drive);
    let stream = spill_stream(spill)?;
    let (mut result, meters) = render_graph(
        session,
        &g,
        vec![stream],
        spill.frames,
        spill.sample_rate,
        opts,
        0,
    )?;
    // The spill already holds the graph's tail: trim the final pass to the song plus that tail.
    result.song_frames = song_frames;
    Ok((result, meters))
}

/// Removes the spill when done or failed.
struct SpillGuard(PathBuf);

impl Drop for SpillGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Renders `session` so its master lands on `target` LUFS.
pub fn render_to_target(
    session: &Session,
    spec: &GraphSpec,
    streams: Vec<StemStream>,
    plan: &StemPlan,
    target: f64,
    opts: &mut RenderOptions,
) -> Result<(RenderResult, Option<CollectedMeters>), RenderError> {
    let tail = master_tail(session, spec)?;

    // 1. The full graph once, spilling what enters the limiter.
    std::fs::create_dir_all(&opts.out_dir).map_err(|source| {
        crate::io::atomic::OutputError::Io {
            path: opts.out_dir.clone(),
            source,
        }
    })?;
    let guard = SpillGuard(
        opts.out_dir
            .join(format!(".pre-limiter.{}.spill.wav", std::process::id())),
    );
    // Progress is reported by the final pass only.
    let progress = opts.progress.take();
    let pre = spill_pre_limiter(spec, &tail, streams, plan, &guard.0, opts);
    opts.progress = progress;
    let pre = pre?;
    let mut warnings = pre.warnings;
    let pre_lufs = pre.meter.integrated_lufs();
    if !pre_lufs.is_finite() {
        return Err(RenderError::Invalid(
            "target_lufs: the master is silent, there is no loudness to adjust".into(),
        ));
    }

    // 2. Solve the drive on the spill.
    let solved = solve_drive(spec, &tail, &pre.spill, pre_lufs, target, opts.block_size)?;
    let (drive, lufs) = (solved.drive_db, solved.lufs);
    if (target - lufs).abs() > 0.1 {
        warnings.push(format!(
            "target_lufs {target}: the master reaches {lufs:.2} LUFS at the largest drive the limiter allows"
        ));
    }
    let cost = drive - (lufs - pre_lufs);
    if cost > SENSIBLE_MEAN_REDUCTION_DB {
        warnings.push(format!(
            "target_lufs {target}: the limiter takes {cost:.1} LU away to get there; that is a lot of limiting \
             (consider a lower target or more compression before the limiter)"
        ));
    }

    // 3. The deliverables from the spill with the solved drive.
    let (mut result, tail_meters) = render_tail(
        session,
        spec,
        &tail,
        drive,
        &pre.spill,
        plan.song_frames,
        opts,
    )?;
    // Stems and everything before the limiter from the full pass; the limiter, what follows it
    // and the outputs from the final pass.
    let meters = match (pre.meters, tail_meters) {
        (Some(first), Some(last)) => {
            let stems: Vec<&str> = session.stems.iter().map(|s| s.name.as_str()).collect();
            let mut nodes: Vec<_> = first
                .nodes
                .into_iter()
                .filter(|(id, _)| stems.contains(&id.as_str()))
                .collect();
            nodes.extend(
                last.nodes
                    .into_iter()
                    .filter(|(id, _)| id != "__pre_limiter"),
            );
            let mut gain_reduction: Vec<_> = first
                .gain_reduction
                .into_iter()
                .filter(|g| !tail.tail.contains(&g.node))
                .collect();
            gain_reduction.extend(
                last.gain_reduction
                    .into_iter()
                    .filter(|g| g.node != DRIVE_NODE),
            );
            Some(CollectedMeters {
                nodes,
                gain_reduction,
            })
        }
        _ => None,
    };
    result.warnings.splice(0..0, warnings);
    result.taps = pre.taps;
    result.target = Some(TargetOutcome {
        target_lufs: target,
        integrated_lufs: lufs,
        pre_limiter_lufs: pre_lufs,
        drive_db: drive,
        limiting_cost_lu: cost,
        full_passes: 1,
        tail_passes: solved.passes + 1,
        limiter: tail.limiter().to_string(),
    });
    drop(guard);
    Ok((result, meters))
}
