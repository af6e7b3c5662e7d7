//! ns per stereo frame of the limiter (4× and 8× detection), dither (none / lipshitz) and
//! saturation, through `Processor::process` with 1024-frame blocks.
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use stemgraph::dsp::config::{ConfigValue, ProcessorConfig};
use stemgraph::dsp::param::ParamSlot;
use stemgraph::dsp::{registry, AudioBuffer, ParamBlock, ProcessSpec};

const BLOCK: usize = 1024;
const FS: f64 = 48_000.0;

fn bench_kind(c: &mut Criterion, name: &str, kind: &str, config: ProcessorConfig) {
    let built = match registry::build(kind, &config, 2) {
        Ok(b) => b,
        Err(e) => panic!("{kind}: {e}"),
    };
    let mut p = built.processor;
    p.prepare(&ProcessSpec {
        sample_rate: FS,
        max_block: BLOCK,
        input_channels: 2,
    });
    let slots: Vec<ParamSlot> = built
        .initial
        .iter()
        .map(|&v| ParamSlot::new(v, BLOCK))
        .collect();
    // Loud program-like material: a few partials and noise, peaking well over the ceiling.
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let signal: Vec<Vec<f64>> = (0..2)
        .map(|ch| {
            (0..BLOCK * 16)
                .map(|i| {
                    state ^= state >> 12;
                    state ^= state << 25;
                    state ^= state >> 27;
                    let r = (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64
                        / (1u64 << 53) as f64;
                    let t = i as f64 / FS;
                    0.9 * (2.0 * std::f64::consts::PI * (110.0 + ch as f64) * t).sin()
                        + 0.5 * (2.0 * std::f64::consts::PI * 1234.0 * t).sin()
                        + 0.4 * (r - 0.5)
                })
                .collect()
        })
        .collect();
    let mut buf = AudioBuffer::new(2, BLOCK);
    let mut offset = 0;
    let mut group = c.benchmark_group("stereo_frames");
    group.throughput(Throughput::Elements(BLOCK as u64));
    group.bench_function(name, |b| {
        b.iter(|| {
            for (ch, src) in signal.iter().enumerate() {
                buf.channel_mut(ch, BLOCK)
                    .copy_from_slice(&src[offset..offset + BLOCK]);
            }
            offset = (offset + BLOCK) % (BLOCK * 16);
            p.process(&mut buf.view_mut(BLOCK), None, ParamBlock::new(&slots));
            black_box(buf.channel(0, BLOCK)[0]);
        })
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    // The AVX2 builds, as the command line runs them (meters decide for themselves).
    stemgraph::dsp::simd::init();
    for factor in [4.0, 8.0] {
        bench_kind(
            c,
            &format!("limiter_{factor}x"),
            "limiter",
            ProcessorConfig::new()
                .num("oversampling", factor)
                .num("input_gain_db", 6.0)
                .with("auto_release", ConfigValue::Bool(true)),
        );
    }
    if registry::find("dither").is_some() {
        for shaping in ["none", "lipshitz"] {
            bench_kind(
                c,
                &format!("dither_{shaping}"),
                "dither",
                ProcessorConfig::new()
                    .num("bits", 16.0)
                    .text("noise_shaping", shaping),
            );
        }
    }
    if registry::find("saturation").is_some() {
        for character in ["soft", "tape", "tube"] {
            bench_kind(
                c,
                &format!("saturation_{character}"),
                "saturation",
                ProcessorConfig::new()
                    .num("drive_db", 12.0)
                    .text("character", character),
            );
        }
    }
}

criterion_group! {
    name = group;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(2)).warm_up_time(std::time::Duration::from_millis(500));
    targets = benches
}
criterion_main!(group);
