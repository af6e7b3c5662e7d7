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
//! Memory stays flat: every stage streams. The drive is a gain ahead of the limiter (−60…+36 dB).

use super::{render_graph, RenderError, RenderOptions, RenderResult, StemPlan};
use crate::analysis::meters::LoudnessMeter;
use crate::analysis::report::{CollectedMeters, ReportCollector};
use crate::dsp::{ConfigValue, Port};
use crate::graph::{EdgeSpec, GraphSpec, NodeKind, NodeSpec};
use crate::io::decode::{StemStream, StreamOptions};
use crate::io::wav::{WavFormat, WavOutput};
use crate::session::Session;
use serde::Serialize;
use std::path::PathBuf;

/// The gain node the solver adds ahead of the master limiter.
pub const DRIVE_NODE: &str = "__target_gain";
/// The range of the solver's drive, dB.
const DRIVE_RANGE: (f64, f64) = (-60.0, 36.0);
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

/// The master limiter and the chain from it to the output.
struct TailPlan {
    /// The node whose output enters the limiter.
    feed: String,
    /// The limiter and every node after it up to (not including) the output, in order.
    tail: Vec<String>,
    /// The output node.
    output: String,
}

fn single_input<'a>(spec: &'a GraphSpec, id: &str) -> Vec<&'a EdgeSpec> {
    spec.edges.iter().filter(|e| e.to == id).collect()
}

/// Finds the last `limiter` on the way to `output` and checks that only a chain follows it.
fn plan_tail(spec: &GraphSpec, output: &str) -> Result<TailPlan, RenderError> {
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
                    return Ok(TailPlan {
                        feed,
                        tail: chain,
                        output: output.to_string(),
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
/// `drive` dB (the master gain the solver adjusts; ahead of the limiter, so the limiter's own
/// settings stay as the recipe wrote them).
fn tail_spec(spec: &GraphSpec, plan: &TailPlan, drive: f64, channels: usize) -> GraphSpec {
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

fn spill_stream(
    path: &std::path::Path,
    rate: u32,
    channels: usize,
) -> Result<StemStream, RenderError> {
    Ok(StemStream::open(
        path,
        &StreamOptions {
            target_rate: rate,
            target_channels: channels,
            length_frames: None,
        },
    )?
    .0)
}

/// Integrated loudness of the tail chain over the spill with `drive`.
fn measure_tail(
    spec: &GraphSpec,
    plan: &TailPlan,
    drive: f64,
    spill: &std::path::Path,
    frames: u64,
    rate: u32,
    channels: usize,
    block: usize,
) -> Result<f64, RenderError> {
    let g = tail_spec(spec, plan, drive, channels);
    let mut schedule = crate::graph::compile(
        &g,
        crate::graph::CompileOptions::new(f64::from(rate), block),
    )?
    .schedule;
    let mut streams = vec![spill_stream(spill, rate, channels)?];
    let mut meter = LoudnessMeter::new(f64::from(rate), channels);
    super::run(
        &mut schedule,
        &mut streams,
        frames,
        block,
        None,
        None,
        |_, _, b| {
            let planar: Vec<&[f64]> = (0..b.channels()).map(|c| b.channel(c)).collect();
            meter.push(&planar);
            Ok(())
        },
    )?;
    Ok(meter.integrated_lufs())
}

/// Removes the spill when done or failed.
struct Spill(PathBuf);

impl Drop for Spill {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Renders `session` so its master lands on `target` LUFS.
pub fn render_to_target(
    session: &Session,
    spec: &GraphSpec,
    mut streams: Vec<StemStream>,
    plan: &StemPlan,
    target: f64,
    opts: &mut RenderOptions,
) -> Result<(RenderResult, Option<CollectedMeters>), RenderError> {
    let rate = plan.sample_rate;
    let output = match session.deliverables.iter().find_map(|d| d.output.clone()) {
        Some(o) => o,
        None => spec
            .nodes
            .iter()
            .find(|n| matches!(n.kind, NodeKind::Output { .. }))
            .map(|n| n.id.clone())
            .ok_or(RenderError::Graph(crate::graph::GraphError::NoOutput))?,
    };
    let tail = plan_tail(spec, &output)?;
    let channels = match spec.find(&output).map(|n| &n.kind) {
        Some(NodeKind::Output { channels }) => *channels,
        _ => 2,
    };

    // 1. The full graph once, spilling what enters the limiter.
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
    let mut collector = opts.report.then(|| {
        let (c, taps) = ReportCollector::new(spec, f64::from(rate));
        copts.taps.extend(taps);
        c
    });
    let compiled = crate::graph::compile(&pass1, copts)?;
    let mut warnings = compiled.warnings;
    let mut schedule = compiled.schedule;
    if let Some(c) = collector.as_mut() {
        c.watch(&schedule);
    }
    let mut last_done = 0u64;
    let mut after_block = |done: u64, _total: u64| {
        if let Some(c) = collector.as_mut() {
            c.observe_block(done - last_done);
        }
        last_done = done;
    };
    let spill_index = (0..schedule.output_count())
        .find(|&o| schedule.output_slot(o).id == "__spill")
        .expect("added above");
    std::fs::create_dir_all(&opts.out_dir).map_err(|source| {
        crate::io::atomic::OutputError::Io {
            path: opts.out_dir.clone(),
            source,
        }
    })?;
    let spill_path = opts
        .out_dir
        .join(format!(".pre-limiter.{}.spill.wav", std::process::id()));
    let spill = Spill(spill_path.clone());
    let mut writer = WavOutput::create(&spill.0, rate, channels, WavFormat::Float32, &[])?;
    let mut pre = LoudnessMeter::new(f64::from(rate), channels);
    super::run(
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
    )?;
    writer.finish()?;
    let mut taps = schedule.take_taps();
    let pass1_meters = collector.map(|c| c.finish(&mut taps));
    let spilled = plan.song_frames + schedule.tail() as u64;
    let pre_lufs = pre.integrated_lufs();
    if !pre_lufs.is_finite() {
        return Err(RenderError::Invalid(
            "target_lufs: the master is silent, there is no loudness to adjust".into(),
        ));
    }

    // 2. Solve the drive on the spill.
    let block = opts.block_size;
    let mut drive = (target - pre_lufs).clamp(DRIVE_RANGE.0, DRIVE_RANGE.1);
    let mut tail_passes = 0;
    let mut lufs = f64::NAN;
    for _ in 0..6 {
        lufs = measure_tail(spec, &tail, drive, &spill.0, spilled, rate, channels, block)?;
        tail_passes += 1;
        let error = target - lufs;
        if error.abs() <= TOLERANCE_LU {
            break;
        }
        drive = (drive + error).clamp(DRIVE_RANGE.0, DRIVE_RANGE.1);
    }
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
    let g = tail_spec(spec, &tail, drive, channels);
    let stream = spill_stream(&spill.0, rate, channels)?;
    let (mut result, tail_meters) =
        render_graph(session, &g, vec![stream], spilled, rate, opts, 0)?;
    // Stems and everything before the limiter from the full pass; the limiter, what follows it
    // and the outputs from the final pass.
    let meters = match (pass1_meters, tail_meters) {
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
            gain_reduction.extend(last.gain_reduction);
            Some(CollectedMeters {
                nodes,
                gain_reduction,
            })
        }
        _ => None,
    };
    // The spill already holds the graph's tail: trim the final pass to the song plus that tail.
    result.song_frames = plan.song_frames;
    result.warnings.splice(0..0, warnings);
    result.taps = taps;
    result.target = Some(TargetOutcome {
        target_lufs: target,
        integrated_lufs: lufs,
        pre_limiter_lufs: pre_lufs,
        drive_db: drive,
        limiting_cost_lu: cost,
        full_passes: 1,
        tail_passes: tail_passes + 1,
        limiter: tail.tail[0].clone(),
    });
    drop(spill);
    Ok((result, meters))
}
