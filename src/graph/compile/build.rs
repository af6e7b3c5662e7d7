//! Compilation step 8: the schedule itself. The symbolic program's nodes become the engine's
//! nodes (parameter states with their glides, per-block slots, alignment delays prepared), the
//! steps, buffers, inputs, outputs and taps go to a [`ScheduleBuilder`], automation curves are
//! attached to their parameters, and the builder checks the program and plans its batches.
//! Also the listing of the compiled graph for people.

use super::super::error::GraphError;
use super::super::spec::GraphSpec;
use super::latency::Latencies;
use super::nodes::Built;
use super::program::{SymNode, SymProgram};
use super::validate::Wiring;
use super::{param_ids, resolve_param_in, NodeSummary};
use crate::dsp::latency_delay::LatencyDelay;
use crate::dsp::param::{ParamSlot, Scale};
use crate::dsp::registry::check_range;
use crate::dsp::{Port, ProcessSpec, Processor};
use crate::engine::params::ParamState;
use crate::engine::{RtKind, RtNode, Schedule, ScheduleBuilder, Step};
use crate::suggest::closest;
use crate::units::ms_to_samples;

/// Everything the earlier steps produced.
pub(super) struct Parts<'a, 'w> {
    pub spec: &'a GraphSpec,
    pub w: &'a Wiring<'w>,
    pub built: Vec<Built>,
    pub lat: &'a Latencies,
    /// The outputs (spec indexes), in output order.
    pub outputs: &'a [usize],
    pub program: SymProgram,
    pub steps: Vec<Step>,
    pub pool_size: usize,
}

/// Builds the schedule and the listing.
pub(super) fn schedule(
    mut parts: Parts<'_, '_>,
    sample_rate: f64,
    max_block: usize,
) -> Result<(Schedule, Vec<NodeSummary>), GraphError> {
    let mut b = ScheduleBuilder::new(sample_rate, max_block);
    let mut summary = Vec::new();
    for item in &parts.program.nodes {
        let node = match *item {
            SymNode::Spec(i) => {
                summary.push(summarize(&parts, i));
                let arrival = parts.lat.arrival[i];
                spec_node(
                    &mut parts.built[i],
                    parts.w.ids[i],
                    arrival,
                    sample_rate,
                    max_block,
                )
            }
            SymNode::Align {
                ref id,
                delay,
                channels,
                arrival,
            } => align_node(id, delay, channels, arrival, sample_rate, max_block),
        };
        b.node(node);
    }
    for &c in &parts.program.input_channels {
        b.input(c.max(1));
    }
    b.buffers(parts.pool_size);
    for step in std::mem::take(&mut parts.steps) {
        b.step(step);
    }
    let (ids, lat, built) = (&parts.w.ids, parts.lat, &parts.built);
    for &i in parts.outputs {
        b.output(ids[i], built[i].out_channels, lat.arrival[i]);
    }
    for (id, tap) in std::mem::take(&mut parts.program.taps) {
        b.tap(id, tap);
    }
    let outputs = parts.outputs;
    b.latency(outputs.iter().map(|&i| lat.arrival[i]).max().unwrap_or(0));
    b.tail(outputs.iter().map(|&i| lat.tail[i]).max().unwrap_or(0));
    automate(&mut b, &parts)?;
    Ok((b.build()?, summary))
}

/// The engine node of recipe node `b` (its processor moves out of `b`).
fn spec_node(b: &mut Built, id: &str, arrival: usize, fs: f64, max_block: usize) -> RtNode {
    let kind = std::mem::replace(&mut b.kind, RtKind::Bus);
    let telemetry = match &kind {
        RtKind::Processor(p) => p.telemetry(),
        RtKind::Bus => None,
    };
    let params: Vec<ParamState> = b
        .infos
        .iter()
        .zip(&b.initial)
        .map(|(info, &v)| ParamState::new(v, info.scale, ms_to_samples(info.glide_ms, fs) as u32))
        .collect();
    let slots = b
        .initial
        .iter()
        .map(|&v| ParamSlot::new(v, max_block))
        .collect();
    RtNode {
        id: id.to_string(),
        kind,
        param_names: b.infos.iter().map(|p| p.name.clone()).collect(),
        params,
        slots,
        upstream_latency: arrival as i64,
        telemetry,
        bypassed: b.bypassed,
    }
}

/// A compensation delay.
fn align_node(
    id: &str,
    delay: usize,
    channels: usize,
    arrival: usize,
    fs: f64,
    max_block: usize,
) -> RtNode {
    let mut d = LatencyDelay::new(delay, channels);
    d.prepare(&ProcessSpec {
        sample_rate: fs,
        max_block,
        input_channels: channels,
    });
    RtNode {
        id: id.to_string(),
        kind: RtKind::Processor(Box::new(d)),
        param_names: Vec::new(),
        params: Vec::new(),
        slots: Vec::new(),
        upstream_latency: arrival as i64,
        telemetry: None,
        bypassed: false,
    }
}

/// The listing of recipe node `i`.
fn summarize(parts: &Parts<'_, '_>, i: usize) -> NodeSummary {
    let (w, lat, b) = (parts.w, parts.lat, &parts.built[i]);
    let ids = &w.ids;
    NodeSummary {
        id: ids[i].to_string(),
        kind: parts.spec.nodes[i].kind.describe(),
        channels: b.out_channels,
        latency: b.latency,
        arrival_latency: lat.arrival[i],
        inputs: w.main_in[i]
            .iter()
            .map(|&(f, g, _)| (ids[f].to_string(), Port::Main, g, lat.delay(f, i)))
            .chain(
                w.key_in[i]
                    .iter()
                    .map(|&(f, _)| (ids[f].to_string(), Port::Key, 0.0, lat.delay(f, i))),
            )
            .collect(),
        params: b
            .infos
            .iter()
            .map(|p| p.name.clone())
            .zip(b.initial.iter().copied())
            .collect(),
        bypassed: b.bypassed,
    }
}

/// Attaches the recipe's automation curves to their parameters, checking each is automatable
/// and every point in range.
fn automate(b: &mut ScheduleBuilder, parts: &Parts<'_, '_>) -> Result<(), GraphError> {
    for a in &parts.spec.automation {
        let (node, param) =
            resolve_param_in(b.nodes(), &a.param).ok_or_else(|| GraphError::UnknownParam {
                id: a.param.clone(),
                suggestion: closest(&a.param, param_ids(b.nodes())),
                origin: a.origin.clone(),
            })?;
        let spec_index = parts.w.index[b.nodes()[node].id.as_str()];
        let info = &parts.built[spec_index].infos[param];
        if !info.automatable {
            return Err(GraphError::NotAutomatable {
                id: a.param.clone(),
                reason: "it changes the processor's latency or structure".into(),
                origin: a.origin.clone(),
            });
        }
        for p in a.curve.points() {
            check_range(info, p.value).map_err(|_| GraphError::OutOfRange {
                id: a.param.clone(),
                value: p.value,
                min: info.min,
                max: info.max,
                unit: format!(" {}", info.unit.symbol()),
                origin: a.origin.clone(),
            })?;
            if info.scale == Scale::Log && p.value <= 0.0 {
                unreachable!("log-scaled parameters have positive ranges");
            }
        }
        b.node_mut(node).params[param].set_curve(Some(a.curve.clone()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::automation::{Breakpoint, Curve, Shape};
    use crate::dsp::ProcessorConfig;
    use crate::graph::{compile, AutomationSpec, CompileOptions, GraphError, GraphSpec};

    /// s ─ lim ─┬ mix ─ out, s ─┘.
    fn parallel() -> GraphSpec {
        let mut g = GraphSpec::new();
        g.source("s", 0).bus("mix").output("out");
        g.processor("lim", "limiter", ProcessorConfig::new());
        g.chain(&["s", "lim", "mix", "out"]).connect("s", "mix");
        g
    }

    fn automation(param: &str, value: f64) -> AutomationSpec {
        AutomationSpec {
            param: param.into(),
            curve: Curve::new(vec![Breakpoint {
                pos: 0,
                value,
                shape: Shape::Step,
            }])
            .unwrap(),
            origin: None,
        }
    }

    #[test]
    fn engine_nodes_with_their_arrival_latency_and_a_listing() {
        let c = compile(&parallel(), CompileOptions::new(48_000.0, 64)).unwrap();
        let s = &c.schedule;
        let ids: Vec<&str> = s.nodes().iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, ["s", "lim", "mix.align.s", "mix"]);
        let lim = c.summary.iter().find(|n| n.id == "lim").unwrap().latency;
        assert!(lim > 0);
        assert_eq!(s.nodes()[3].upstream_latency, lim as i64);
        assert_eq!(s.nodes()[2].upstream_latency, 0);
        assert_eq!(
            s.nodes()[3].param_names,
            ["send.lim.gain_db", "send.s.gain_db"]
        );
        assert_eq!((s.latency(), s.output_count()), (lim, 1));
        assert_eq!(s.output_slot(0).id, "out");
        let mix = c.summary.iter().find(|n| n.id == "mix").unwrap();
        let delays: Vec<usize> = mix.inputs.iter().map(|i| i.3).collect();
        assert_eq!(delays, [0, lim]);
        // The listing has the recipe's nodes only, in schedule order.
        let listed: Vec<&str> = c.summary.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(listed, ["s", "lim", "mix"]);
    }

    #[test]
    fn automation_reaches_its_parameter_or_says_why_not() {
        let mut g = parallel();
        g.automation.push(automation("mix.send.s.gain_db", -6.0));
        let c = compile(&g, CompileOptions::new(48_000.0, 64)).unwrap();
        let mix = &c.schedule.nodes()[3];
        assert!(mix.params[1].curve().is_some());
        assert!(mix.params[0].curve().is_none());
        let mut g = parallel();
        g.automation.push(automation("mix.send.s.gain", -6.0));
        assert!(matches!(
            compile(&g, CompileOptions::new(48_000.0, 64)).err(),
            Some(GraphError::UnknownParam { suggestion: Some(s), .. }) if s == "mix.send.s.gain_db"
        ));
        let mut g = parallel();
        g.automation.push(automation("mix.send.s.gain_db", 99.0));
        assert!(matches!(
            compile(&g, CompileOptions::new(48_000.0, 64)).err(),
            Some(GraphError::OutOfRange { .. })
        ));
    }
}
