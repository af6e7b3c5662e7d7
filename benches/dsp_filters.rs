//! Filters and delay: nanoseconds per stereo frame through `Processor::process`, 1024-frame
//! blocks at 48 kHz, parameters constant (the common case) and, for the EQ, automated.
//!
//! Criterion reports the time per 1024-frame block; divide by 1024 for ns per stereo frame.

use criterion::{criterion_group, criterion_main, Criterion};
use stemgraph::dsp::filters::df1_batch::run_series2_batch;
use stemgraph::dsp::filters::{Df1Coefs, FlushClock};
use stemgraph::dsp::param::ParamSlot;
use stemgraph::dsp::registry::build;
use stemgraph::dsp::{
    AudioBuffer, ConfigValue, ParamBlock, ProcessSpec, Processor, ProcessorConfig,
};

const BLOCK: usize = 1024;
const FS: f64 = 48000.0;

fn band(kind: &str, opts: &[(&str, f64)]) -> ConfigValue {
    let mut c = ProcessorConfig::new().text("type", kind);
    for (k, v) in opts {
        c = c.num(k, *v);
    }
    ConfigValue::Table(c)
}

fn eq(bands: Vec<ConfigValue>) -> ProcessorConfig {
    ProcessorConfig::new().with("bands", ConfigValue::List(bands))
}

/// A processor of `kind` built and prepared for stereo, with its parameter slots.
fn setup(kind: &str, config: &ProcessorConfig) -> (Box<dyn Processor>, Vec<ParamSlot>) {
    let b = build(kind, config, 2).expect("builds");
    let mut p = b.processor;
    p.prepare(&ProcessSpec {
        sample_rate: FS,
        max_block: BLOCK,
        input_channels: 2,
    });
    let slots = b
        .initial
        .iter()
        .map(|&v| ParamSlot::new(v, BLOCK))
        .collect();
    (p, slots)
}

/// Pseudo-random noise at −6 dBFS.
fn noise() -> AudioBuffer {
    let mut buf = AudioBuffer::new(2, BLOCK);
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    for c in 0..2 {
        for x in buf.channel_mut(c, BLOCK) {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            *x = 0.5 * ((s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0);
        }
    }
    buf
}

/// Benchmarks one block through `p`, the input restored before each block (the copy, about
/// 0.2 ns per frame, is included).
fn bench(c: &mut Criterion, name: &str, mut p: Box<dyn Processor>, slots: Vec<ParamSlot>) {
    let src = noise();
    let mut work = AudioBuffer::new(2, BLOCK);
    c.bench_function(name, |b| {
        b.iter(|| {
            for ch in 0..2 {
                work.channel_mut(ch, BLOCK)
                    .copy_from_slice(src.channel(ch, BLOCK));
            }
            p.process(&mut work.view_mut(BLOCK), None, ParamBlock::new(&slots));
            std::hint::black_box(work.channel(0, BLOCK)[BLOCK - 1]);
        })
    });
}

/// The strip EQs' batch kernel alone: `K` stereo signals of `S` sections (R's: six stems of two
/// bells), one 1024-frame block of each. The sections are all-passes, so the blocks, run again
/// and again through them, stay noise at about the same level (no copy of the inputs measured).
fn batch_of<const K: usize, const S: usize>(c: &mut Criterion, name: &str) {
    let coefs: [[Df1Coefs; S]; K] = std::array::from_fn(|k| {
        std::array::from_fn(|i| {
            let g = (std::f64::consts::PI * 200.0 * (1 + k + 3 * i) as f64 / FS).tan();
            let q = 0.7 + 0.1 * i as f64;
            Df1Coefs::bilinear(g, 1.0 / q, 1.0, -2.0 / q, 0.0)
        })
    });
    let src = noise();
    let mut work: Vec<[Vec<f64>; 2]> = (0..K)
        .map(|_| [0, 1].map(|ch| src.channel(ch, BLOCK).to_vec()))
        .collect();
    let mut hist = [[[[0.0; 4]; S]; 2]; K];
    let mut clock = FlushClock::default();
    c.bench_function(name, |b| {
        b.iter(|| {
            let mut it = work.iter_mut();
            let mut chans: [(&mut [f64], &mut [f64]); K] = std::array::from_fn(|_| {
                let [l, r] = it.next().unwrap();
                (&mut l[..], &mut r[..])
            });
            run_series2_batch::<K, S>(&coefs, &mut hist, &mut chans, &mut clock);
            std::hint::black_box(chans[K - 1].1[BLOCK - 1]);
        })
    });
}

fn batch(c: &mut Criterion) {
    batch_of::<6, 2>(
        c,
        "eq batch, 6 signals of 2 sections (per 1024 stereo frames)",
    );
    batch_of::<4, 2>(
        c,
        "eq batch, 4 signals of 2 sections (per 1024 stereo frames)",
    );
}

fn filters(c: &mut Criterion) {
    // The AVX2 builds, as the command line runs them (meters decide for themselves).
    stemgraph::dsp::simd::init();
    let two_bells = eq(vec![
        band("bell", &[("freq_hz", 250.0), ("gain_db", -3.0), ("q", 1.2)]),
        band("bell", &[("freq_hz", 3000.0), ("gain_db", 2.0), ("q", 0.8)]),
    ]);
    let (p, s) = setup("eq", &two_bells);
    bench(c, "eq 2 bells (per 1024 stereo frames)", p, s);

    // The masters' EQs of the R and M workloads: an EQ alone (not batched with others).
    let bell = eq(vec![band(
        "bell",
        &[("freq_hz", 3000.0), ("gain_db", 1.0), ("q", 0.7)],
    )]);
    let (p, s) = setup("eq", &bell);
    bench(c, "eq 1 bell (per 1024 stereo frames)", p, s);
    let master = eq(vec![
        band("high_pass", &[("freq_hz", 25.0), ("slope_db", 24.0)]),
        band("bell", &[("freq_hz", 3000.0), ("gain_db", 1.0), ("q", 0.7)]),
    ]);
    let (p, s) = setup("eq", &master);
    bench(
        c,
        "eq high-pass 24 dB/oct and a bell (per 1024 stereo frames)",
        p,
        s,
    );

    let six = eq(vec![
        band("high_pass", &[("freq_hz", 30.0), ("slope_db", 24.0)]),
        band("low_shelf", &[("freq_hz", 100.0), ("gain_db", 1.5)]),
        band("bell", &[("freq_hz", 400.0), ("gain_db", -2.0), ("q", 1.4)]),
        band("bell", &[("freq_hz", 2500.0), ("gain_db", 1.0), ("q", 0.9)]),
        band("high_shelf", &[("freq_hz", 10000.0), ("gain_db", 1.5)]),
        band("low_pass", &[("freq_hz", 20000.0), ("slope_db", 12.0)]),
    ]);
    let (p, s) = setup("eq", &six);
    bench(c, "eq 6 mixed bands (per 1024 stereo frames)", p, s);

    // The two bells with every parameter moving per sample (coefficients per sample).
    let (p, mut s) = setup("eq", &two_bells);
    for (i, slot) in s.iter_mut().enumerate() {
        slot.constant = false;
        for n in 0..BLOCK {
            slot.values[n] = slot.value * (1.0 + 0.1 * ((n + i) as f64 / BLOCK as f64));
        }
    }
    bench(
        c,
        "eq 2 bells, all parameters automated (per 1024 stereo frames)",
        p,
        s,
    );

    batch(c);

    let delay = ProcessorConfig::new()
        .num("time_ms", 375.0)
        .num("feedback_pct", 40.0)
        .num("mix_pct", 100.0)
        .num("low_cut_hz", 150.0)
        .num("high_cut_hz", 6000.0);
    let (p, s) = setup("delay", &delay);
    bench(c, "delay with loop filters (per 1024 stereo frames)", p, s);

    let plain = ProcessorConfig::new()
        .num("time_ms", 375.0)
        .num("feedback_pct", 40.0);
    let (p, s) = setup("delay", &plain);
    bench(c, "delay without filters (per 1024 stereo frames)", p, s);
}

criterion_group!(benches, filters);
criterion_main!(benches);
