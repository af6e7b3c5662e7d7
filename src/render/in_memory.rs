//! In-memory rendering (control side of tests, benches and tools): compile a graph and run it
//! over signals held in memory.
//!
//! For tests, benches and tools that work on short material (the file-based render streams
//! instead). The same schedule and the same latency trimming as a real render.

use crate::graph::{compile, CompileOptions, GraphError, GraphSpec};

/// Planar audio held in memory: `channels[c][n]`.
pub type Planar = Vec<Vec<f64>>;

/// Compiles `spec` and runs it over `inputs` (engine input `i` = `inputs[i]`, all the same
/// length), in blocks of `block` frames. Returns every output, latency-trimmed, with the tail
/// (the input length plus the graph's tail).
pub fn render_in_memory(
    spec: &GraphSpec,
    inputs: &[Planar],
    sample_rate: f64,
    block: usize,
) -> Result<Vec<Planar>, GraphError> {
    let compiled = compile(spec, CompileOptions::new(sample_rate, block))?;
    let mut schedule = compiled.schedule;
    let len = inputs.iter().map(|i| i[0].len()).max().unwrap_or(0);
    let tail = schedule.tail();
    let latencies: Vec<usize> = (0..schedule.output_count())
        .map(|o| schedule.output_slot(o).latency)
        .collect();
    let max_latency = latencies.iter().copied().max().unwrap_or(0);
    let total = len + tail + max_latency;
    let mut outputs: Vec<Planar> = (0..schedule.output_count())
        .map(|o| vec![Vec::with_capacity(len + tail); schedule.output(o, 0).channels()])
        .collect();
    let mut done = 0;
    while done < total {
        let n = block.min(total - done);
        for (i, input) in inputs.iter().enumerate() {
            let mut dst = schedule.input_mut(i, n);
            for c in 0..dst.channels() {
                let src = &input[c.min(input.len() - 1)];
                let ch = dst.channel_mut(c);
                for (k, x) in ch.iter_mut().enumerate() {
                    *x = src.get(done + k).copied().unwrap_or(0.0);
                }
            }
        }
        assert_no_alloc::assert_no_alloc(|| schedule.process(n));
        for (o, out) in outputs.iter_mut().enumerate() {
            let view = schedule.output(o, n);
            for (c, ch) in out.iter_mut().enumerate() {
                for (k, &x) in view.channel(c).iter().enumerate() {
                    let t = done + k;
                    if t >= latencies[o] && t < latencies[o] + len + tail {
                        ch.push(x);
                    }
                }
            }
        }
        done += n;
    }
    Ok(outputs)
}

/// A one-processor graph: stem → `kind` (with `config`) → output, for `channels` channels.
pub fn single_processor_graph(
    kind: &str,
    config: crate::dsp::ProcessorConfig,
    channels: usize,
) -> GraphSpec {
    use crate::graph::NodeKind;
    let mut g = GraphSpec::new();
    g.node(
        "in",
        NodeKind::Source {
            input: 0,
            channels,
            config: Default::default(),
        },
    );
    g.processor("fx", kind, config);
    let out_channels = crate::dsp::registry::build(kind, &config_for_channels(kind), channels)
        .map(|b| b.processor.output_channels())
        .unwrap_or(channels);
    g.node(
        "out",
        NodeKind::Output {
            channels: out_channels,
        },
    );
    g.connect("in", "fx").connect("fx", "out");
    g
}

/// A configuration good enough to learn a kind's output channel count.
fn config_for_channels(kind: &str) -> crate::dsp::ProcessorConfig {
    crate::dsp::registry::find(kind)
        .map(|k| (k.example)())
        .unwrap_or_default()
}
