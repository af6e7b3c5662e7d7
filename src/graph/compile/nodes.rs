//! Compilation step 3: in topological order, channel counts propagate and are checked, and
//! each node is made: processors built and prepared (which fixes their latency), stems' faders,
//! buses with one send-gain parameter per input, outputs.

use super::super::error::GraphError;
use super::super::spec::{at, GraphSpec, NodeKind, NodeSpec};
use super::validate::Wiring;
use crate::dsp::buffer::MAX_CHANNELS;
use crate::dsp::latency_delay::LatencyDelay;
use crate::dsp::param::{ParamInfo, Unit};
use crate::dsp::registry::{self, check_range, BuildError};
use crate::dsp::{ProcessSpec, Processor, ProcessorConfig};
use crate::engine::RtKind;

/// A node as made, before it is placed in the program.
pub(super) struct Built {
    /// What runs (a bus and an output carry [`RtKind::Bus`]).
    pub kind: RtKind,
    /// Parameter declarations, in slot order.
    pub infos: Vec<ParamInfo>,
    /// Starting values of the parameters.
    pub initial: Vec<f64>,
    /// Channels it outputs.
    pub out_channels: usize,
    /// Latency it adds.
    pub latency: usize,
    /// How long it rings on.
    pub tail: usize,
    /// Whether the recipe bypassed it.
    pub bypassed: bool,
}

impl Built {
    /// A node that only passes or sums signal (no processor, no latency).
    fn plain(infos: Vec<ParamInfo>, initial: Vec<f64>, out_channels: usize) -> Self {
        Self {
            kind: RtKind::Bus,
            infos,
            initial,
            out_channels,
            latency: 0,
            tail: 0,
            bypassed: false,
        }
    }
}

/// What making one node needs to know.
struct Cx<'a, 'w> {
    spec: &'a GraphSpec,
    w: &'a Wiring<'w>,
    fs: f64,
    max_block: usize,
    /// The nodes made so far (all of this node's inputs, in topological order).
    built: &'a [Option<Built>],
    /// This node's index.
    i: usize,
}

/// Makes every node of `spec`, in topological order `topo`. Warnings from processors (a
/// setting they cannot honour at this rate) are added to `warnings`.
pub(super) fn build_nodes(
    spec: &GraphSpec,
    w: &Wiring<'_>,
    topo: &[usize],
    fs: f64,
    max_block: usize,
    warnings: &mut Vec<String>,
) -> Result<Vec<Built>, GraphError> {
    let mut built: Vec<Option<Built>> = (0..spec.nodes.len()).map(|_| None).collect();
    for &i in topo {
        let cx = Cx {
            spec,
            w,
            fs,
            max_block,
            built: &built,
            i,
        };
        let b = match &spec.nodes[i].kind {
            NodeKind::Source {
                channels, config, ..
            } => cx.source(*channels, config)?,
            NodeKind::Processor {
                kind,
                config,
                bypass,
            } => cx.processor(kind, config, *bypass, warnings)?,
            NodeKind::Bus { channels } => cx.bus(*channels)?,
            NodeKind::Output { channels } => cx.output(*channels)?,
        };
        built[i] = Some(b);
    }
    Ok(built
        .into_iter()
        .map(|b| b.expect("every node is built"))
        .collect())
}

impl Cx<'_, '_> {
    fn node(&self) -> &NodeSpec {
        &self.spec.nodes[self.i]
    }

    fn channels_of(&self, j: usize) -> usize {
        self.built[j].as_ref().map_or(0, |b| b.out_channels)
    }

    fn prepare_spec(&self, channels: usize) -> ProcessSpec {
        ProcessSpec {
            sample_rate: self.fs,
            max_block: self.max_block,
            input_channels: channels,
        }
    }

    fn dangling(&self) -> GraphError {
        let node = self.node();
        GraphError::DanglingInput {
            id: node.id.clone(),
            kind: node.kind.describe(),
            origin: node.origin.clone(),
        }
    }

    fn build_err(&self, source: BuildError) -> GraphError {
        let node = self.node();
        GraphError::Build {
            id: node.id.clone(),
            source,
            origin: node.origin.clone(),
        }
    }

    fn too_many(&self, port: &'static str, count: usize) -> GraphError {
        GraphError::TooManyInputs {
            id: self.node().id.clone(),
            port,
            count,
            origin: self.node().origin.clone(),
        }
    }

    /// Whether input `from` carries `expected` channels.
    fn check_channels(&self, expected: usize, from: usize) -> Result<(), GraphError> {
        let found = self.channels_of(from);
        if found == expected {
            return Ok(());
        }
        let node = self.node();
        let edge = self.w.main_in[self.i]
            .iter()
            .find(|e| e.0 == from)
            .map(|e| e.2);
        Err(GraphError::ChannelMismatch {
            from: self.spec.nodes[from].id.clone(),
            to: node.id.clone(),
            expected,
            found,
            origin: edge
                .and_then(|e| self.spec.edges[e].origin.clone())
                .or(node.origin.clone()),
        })
    }

    /// A stem: its fader, a `gain` processor.
    fn source(&self, channels: usize, config: &ProcessorConfig) -> Result<Built, GraphError> {
        if !(1..=MAX_CHANNELS).contains(&channels) {
            return Err(self.build_err(BuildError::Invalid(format!(
                "a stem has 1 or 2 channels, not {channels}"
            ))));
        }
        let mut b = registry::build("gain", config, channels).map_err(|e| self.build_err(e))?;
        b.processor.prepare(&self.prepare_spec(channels));
        Ok(Built {
            infos: b.processor.params().to_vec(),
            initial: b.initial,
            out_channels: channels,
            latency: 0,
            tail: 0,
            kind: RtKind::Processor(b.processor),
            bypassed: false,
        })
    }

    /// A processor from the registry (a latency-matched delay in its place when bypassed).
    fn processor(
        &self,
        kind: &str,
        config: &ProcessorConfig,
        bypass: bool,
        warnings: &mut Vec<String>,
    ) -> Result<Built, GraphError> {
        let node = self.node();
        let main = &self.w.main_in[self.i];
        if main.is_empty() {
            return Err(self.dangling());
        }
        if main.len() > 1 {
            return Err(self.too_many("in", main.len()));
        }
        let in_ch = self.channels_of(main[0].0);
        let mut b = registry::build_at(kind, config, in_ch, self.fs, self.max_block)
            .map_err(|e| self.build_err(e))?;
        b.processor.prepare(&self.prepare_spec(in_ch));
        if let Some(w) = b.processor.warning() {
            warnings.push(format!("{}`{}`: {w}", at(&node.origin), node.id));
        }
        let keys = &self.w.key_in[self.i];
        if keys.len() > 1 {
            return Err(self.too_many("key", keys.len()));
        }
        if let Some(&(from, ei)) = keys.first() {
            if !b.processor.accepts_key() {
                return Err(GraphError::BadConnection {
                    from: self.spec.nodes[from].id.clone(),
                    to: node.id.clone(),
                    reason: format!("`{kind}` has no side-chain `key` input"),
                    origin: self.spec.edges[ei].origin.clone(),
                });
            }
        }
        let out_channels = b.processor.output_channels();
        let latency = b.processor.latency();
        let tail = b.processor.tail();
        let infos = b.processor.params().to_vec();
        let processor: Box<dyn Processor> = if bypass {
            if out_channels != in_ch {
                return Err(self.build_err(BuildError::Invalid(format!(
                    "`{kind}` turns {in_ch} channel(s) into {out_channels}; it cannot be bypassed"
                ))));
            }
            let mut d = LatencyDelay::new(latency, in_ch);
            d.prepare(&self.prepare_spec(in_ch));
            Box::new(d)
        } else {
            b.processor
        };
        Ok(Built {
            kind: RtKind::Processor(processor),
            infos,
            initial: b.initial,
            out_channels,
            latency,
            tail: if bypass { 0 } else { tail },
            bypassed: bypass,
        })
    }

    /// A bus: a send gain per input (in the order they are summed).
    fn bus(&self, channels: usize) -> Result<Built, GraphError> {
        let main = &self.w.main_in[self.i];
        if main.is_empty() {
            return Err(self.dangling());
        }
        let mut infos = Vec::new();
        let mut initial = Vec::new();
        for &(from, gain_db, ei) in main {
            self.check_channels(channels, from)?;
            let info = ParamInfo::new(
                format!("send.{}.gain_db", self.spec.nodes[from].id),
                Unit::Decibels,
                -120.0,
                24.0,
                0.0,
            )
            .doc("send gain of one bus input");
            check_range(&info, gain_db).map_err(|source| GraphError::Build {
                id: self.node().id.clone(),
                source,
                origin: self.spec.edges[ei].origin.clone(),
            })?;
            infos.push(info);
            initial.push(gain_db);
        }
        Ok(Built::plain(infos, initial, channels))
    }

    /// An output: exactly one input of its channel count.
    fn output(&self, channels: usize) -> Result<Built, GraphError> {
        let main = &self.w.main_in[self.i];
        match main.len() {
            0 => return Err(self.dangling()),
            1 => self.check_channels(channels, main[0].0)?,
            count => return Err(self.too_many("in", count)),
        }
        Ok(Built::plain(Vec::new(), Vec::new(), channels))
    }
}

#[cfg(test)]
mod tests {
    use super::super::order::order;
    use super::super::validate::validate;
    use super::*;
    use crate::dsp::Port;

    fn made(g: &GraphSpec) -> Result<(Vec<Built>, Vec<String>), GraphError> {
        let w = validate(g)?;
        let o = order(g, &w)?;
        let mut warnings = Vec::new();
        let built = build_nodes(g, &w, &o.topo, 48_000.0, 64, &mut warnings)?;
        Ok((built, warnings))
    }

    fn strip(kind: &str, config: ProcessorConfig) -> GraphSpec {
        let mut g = GraphSpec::new();
        g.source("s", 0).output("out");
        g.processor("fx", kind, config);
        g.chain(&["s", "fx", "out"]);
        g
    }

    #[test]
    fn channels_latency_and_parameters_of_each_node() {
        let mut g = strip("limiter", ProcessorConfig::new());
        g.nodes[0] = NodeSpec {
            id: "s".into(),
            kind: NodeKind::Source {
                input: 0,
                channels: 2,
                config: ProcessorConfig::new().num("gain_db", -2.0),
            },
            origin: None,
        };
        let (built, warnings) = made(&g).unwrap();
        assert!(warnings.is_empty());
        let (s, out, fx) = (&built[0], &built[1], &built[2]);
        assert_eq!((s.out_channels, s.latency), (2, 0));
        assert_eq!(s.initial[0], -2.0);
        assert!(fx.latency > 0, "a true-peak limiter looks ahead");
        assert_eq!(fx.out_channels, 2);
        assert!(matches!(out.kind, RtKind::Bus));
        assert!(out.infos.is_empty());
    }

    #[test]
    fn a_bypassed_processor_keeps_its_latency_and_loses_its_tail() {
        let mut g = strip("delay", ProcessorConfig::new().num("time_ms", 100.0));
        let plain = made(&g).unwrap().0.remove(2);
        if let NodeKind::Processor { bypass, .. } = &mut g.nodes[2].kind {
            *bypass = true;
        }
        let bypassed = made(&g).unwrap().0.remove(2);
        assert!(plain.tail > 0);
        assert_eq!((bypassed.latency, bypassed.tail), (plain.latency, 0));
        assert!(bypassed.bypassed);
        assert_eq!(bypassed.infos.len(), plain.infos.len());
    }

    #[test]
    fn a_bus_has_a_send_gain_per_input_in_summing_order() {
        let mut g = GraphSpec::new();
        g.source("b", 1).source("a", 0).bus("mix").output("out");
        g.connect_port("b", "mix", Port::Main, -6.0);
        g.connect("a", "mix").connect("mix", "out");
        let (built, _) = made(&g).unwrap();
        let names: Vec<&str> = built[2].infos.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["send.a.gain_db", "send.b.gain_db"]);
        assert_eq!(built[2].initial, [0.0, -6.0]);
    }

    #[test]
    fn refuses_channel_mismatches_and_extra_inputs() {
        let mut g = GraphSpec::new();
        g.node(
            "mono",
            NodeKind::Source {
                input: 0,
                channels: 1,
                config: ProcessorConfig::new(),
            },
        );
        g.bus("mix").output("out").chain(&["mono", "mix", "out"]);
        assert!(matches!(
            made(&g).err(),
            Some(GraphError::ChannelMismatch {
                expected: 2,
                found: 1,
                ..
            })
        ));
        let mut g = strip("gain", ProcessorConfig::new());
        g.source("t", 1).connect("t", "fx");
        assert!(matches!(
            made(&g).err(),
            Some(GraphError::TooManyInputs { port: "in", .. })
        ));
    }

    #[test]
    fn a_processor_warning_becomes_a_compile_warning() {
        let g = strip(
            "dither",
            ProcessorConfig::new()
                .num("bits", 16.0)
                .text("noise_shaping", "lipshitz"),
        );
        let w = validate(&g).unwrap();
        let o = order(&g, &w).unwrap();
        let mut at_48k = Vec::new();
        build_nodes(&g, &w, &o.topo, 48_000.0, 64, &mut at_48k).unwrap();
        assert!(at_48k.is_empty(), "{at_48k:?}");
        let mut at_96k = Vec::new();
        build_nodes(&g, &w, &o.topo, 96_000.0, 64, &mut at_96k).unwrap();
        assert_eq!(at_96k.len(), 1);
        assert!(
            at_96k[0].starts_with("`fx`: dither: noise shaping"),
            "{}",
            at_96k[0]
        );
    }
}
