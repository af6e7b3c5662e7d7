//! Helpers shared by the dynamics, multiband and width tests: running a graph through the real
//! engine block by block (with the allocation guard and telemetry snapshots), automation curves,
//! test signals and measurements. Included next to `common` (`mod common; mod dsp_util;`).
#![allow(dead_code)]

use std::f64::consts::PI;
use stemgraph::automation::{Breakpoint, Curve, Shape};
use stemgraph::dsp::ProcessorConfig;
use stemgraph::graph::{compile, AutomationSpec, CompileOptions, GraphSpec};
use stemgraph::render::in_memory::{single_processor_graph, Planar};

/// Sample rate of every test.
pub const FS: f64 = 48000.0;
/// The block sizes of the invariance checks.
pub const BLOCKS: [usize; 4] = [1, 64, 997, 4096];

/// What a run of a graph produced.
pub struct Run {
    /// Output 0.
    pub out: Planar,
    /// Telemetry of the watched node after each block: (frames done, slot values).
    pub telemetry: Vec<(usize, Vec<f64>)>,
}

/// Runs `spec` over `inputs` (all the same length) in blocks of `block` frames, asserting that
/// processing allocates nothing; records the telemetry of node `watch` after every block.
pub fn run(spec: &GraphSpec, inputs: &[Planar], block: usize, watch: &str) -> Run {
    let compiled = compile(spec, CompileOptions::new(FS, block)).expect("graph compiles");
    let mut schedule = compiled.schedule;
    assert_eq!(schedule.latency(), 0, "dynamics processors add no latency");
    let len = inputs[0][0].len();
    let tel = schedule.telemetry(watch);
    let out_channels = schedule.output(0, 0).channels();
    let mut out: Planar = vec![Vec::with_capacity(len); out_channels];
    let mut telemetry = Vec::new();
    let mut done = 0;
    let mut violations = 0;
    while done < len {
        let n = block.min(len - done);
        for (i, input) in inputs.iter().enumerate() {
            let mut dst = schedule.input_mut(i, n);
            for c in 0..dst.channels() {
                let src = &input[c.min(input.len() - 1)];
                dst.channel_mut(c).copy_from_slice(&src[done..done + n]);
            }
        }
        let ((), v) = crate::common::alloc_violations(|| {
            assert_no_alloc::assert_no_alloc(|| schedule.process(n))
        });
        violations += v;
        let view = schedule.output(0, n);
        for (c, ch) in out.iter_mut().enumerate() {
            ch.extend_from_slice(view.channel(c));
        }
        done += n;
        if let Some(t) = &tel {
            telemetry.push((done, (0..t.names().len()).map(|i| t.get(i)).collect()));
        }
    }
    assert_eq!(violations, 0, "allocation inside process()");
    Run { out, telemetry }
}

/// A one-processor graph `in → fx → out`, with the processor's id `fx`.
pub fn graph(kind: &str, config: ProcessorConfig, channels: usize) -> GraphSpec {
    single_processor_graph(kind, config, channels)
}

/// Runs a one-processor graph and returns its output.
pub fn process(kind: &str, config: ProcessorConfig, input: &Planar, block: usize) -> Planar {
    run(
        &graph(kind, config, input.len()),
        std::slice::from_ref(input),
        block,
        "fx",
    )
    .out
}

/// Adds an automation curve for `fx.<param>`.
pub fn automate(spec: &mut GraphSpec, param: &str, points: &[(i64, f64, Shape)]) {
    let curve = Curve::new(
        points
            .iter()
            .map(|&(pos, value, shape)| Breakpoint { pos, value, shape })
            .collect(),
    )
    .expect("points");
    spec.automation.push(AutomationSpec {
        param: format!("fx.{param}"),
        curve,
        origin: None,
    });
}

/// Asserts that every block size of [`BLOCKS`] gives the same output, bit for bit.
pub fn assert_block_invariant(spec: &GraphSpec, inputs: &[Planar]) {
    let reference = run(spec, inputs, BLOCKS[0], "fx").out;
    for &b in &BLOCKS[1..] {
        let out = run(spec, inputs, b, "fx").out;
        for (c, (a, r)) in out.iter().zip(&reference).enumerate() {
            if let Some(i) = a
                .iter()
                .zip(r)
                .position(|(x, y)| x.to_bits() != y.to_bits())
            {
                panic!(
                    "block {b}: channel {c} differs from block {} at sample {i}: {} vs {}",
                    BLOCKS[0], a[i], r[i]
                );
            }
        }
    }
}

/// The largest sample-to-sample jump of a signal.
pub fn max_jump(x: &[f64]) -> f64 {
    x.windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .fold(0.0, f64::max)
}

/// A sine of `n` samples.
pub fn sine(n: usize, freq: f64, amp: f64) -> Vec<f64> {
    (0..n)
        .map(|i| amp * (2.0 * PI * freq * i as f64 / FS).sin())
        .collect()
}

/// Decibels of an amplitude ratio.
pub fn db(x: f64) -> f64 {
    20.0 * x.log10()
}

/// Amplitude factor of a level in dB.
pub fn amp(db: f64) -> f64 {
    10f64.powf(db / 20.0)
}

/// Amplitude of the `freq` component of `x[start..start + len]` (a window holding a whole
/// number of its periods) by correlation with a sine and a cosine.
pub fn tone_amplitude(x: &[f64], freq: f64, start: usize, len: usize) -> f64 {
    let (mut re, mut im) = (0.0, 0.0);
    for (n, v) in x[start..start + len].iter().enumerate() {
        let ph = 2.0 * PI * freq * (start + n) as f64 / FS;
        re += v * ph.cos();
        im += v * ph.sin();
    }
    2.0 * (re * re + im * im).sqrt() / len as f64
}

/// Magnitude in dB of the frequency response of impulse response `h` at `freq` (direct DFT).
pub fn response_db(h: &[f64], freq: f64) -> f64 {
    let w = 2.0 * PI * freq / FS;
    let (c, s) = (w.cos(), w.sin());
    // Rotating phasor e^{-jwn} by recurrence, renormalised now and then.
    let (mut pr, mut pi) = (1.0f64, 0.0f64);
    let (mut re, mut im) = (0.0, 0.0);
    for (n, v) in h.iter().enumerate() {
        re += v * pr;
        im += v * pi;
        let nr = pr * c + pi * s;
        let ni = pi * c - pr * s;
        pr = nr;
        pi = ni;
        if n % 1024 == 1023 {
            let m = (pr * pr + pi * pi).sqrt();
            pr /= m;
            pi /= m;
        }
    }
    db((re * re + im * im).sqrt())
}

/// RMS of a slice.
pub fn rms(x: &[f64]) -> f64 {
    (x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64).sqrt()
}
