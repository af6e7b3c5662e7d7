//! Meter throughput on one second of 48 kHz stereo in 512-frame blocks. Criterion reports
//! throughput in frames: ns per stereo frame = 1000 / (Melem/s).

use std::f64::consts::PI;
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use stemgraph::analysis::meters::{LevelMeter, LoudnessMeter, TruePeakMeter};

const FS: f64 = 48_000.0;
const BLOCK: usize = 512;

/// Music-like stereo: bass, chord, decaying noise bursts.
fn music() -> [Vec<f64>; 2] {
    let mut seed = 1u64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    };
    let n = FS as usize;
    let mut env = 0.0;
    let (mut l, mut r) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        let t = i as f64 / FS;
        if i % 24_000 == 0 {
            env = 1.0;
        }
        env *= 0.9995;
        let tonal = 0.3 * (2.0 * PI * 55.0 * t).sin() + 0.1 * (2.0 * PI * 440.0 * t).sin();
        l.push(tonal + 0.4 * env * rnd());
        r.push(tonal + 0.4 * env * rnd());
    }
    [l, r]
}

/// Noise whose level rises steadily: every inter-sample value must be evaluated.
fn rising_noise() -> [Vec<f64>; 2] {
    let [l, r] = music();
    let n = l.len() as f64;
    let ramp = |x: Vec<f64>| -> Vec<f64> {
        x.iter()
            .enumerate()
            .map(|(i, v)| v.signum() * (0.01 + 0.9 * i as f64 / n))
            .collect()
    };
    [ramp(l), ramp(r)]
}

fn blocks(ch: &[Vec<f64>; 2]) -> impl Iterator<Item = [&[f64]; 2]> {
    ch[0]
        .chunks(BLOCK)
        .zip(ch[1].chunks(BLOCK))
        .map(|(l, r)| [l, r])
}

fn bench(c: &mut Criterion) {
    // The AVX2 builds, as the command line runs them (meters decide for themselves).
    stemgraph::dsp::simd::init();
    let sig = music();
    let worst = rising_noise();
    let mut g = c.benchmark_group("meters_48k_stereo");
    g.throughput(Throughput::Elements(sig[0].len() as u64));
    g.measurement_time(Duration::from_secs(3));
    g.warm_up_time(Duration::from_secs(1));
    g.sample_size(20);

    let mut lm = LoudnessMeter::new(FS, 2);
    g.bench_function("loudness", |b| {
        b.iter(|| {
            for blk in blocks(&sig) {
                lm.push(black_box(&blk));
            }
            black_box(lm.momentary_lufs())
        })
    });
    let mut lv = LevelMeter::new(2);
    g.bench_function("level", |b| {
        b.iter(|| {
            for blk in blocks(&sig) {
                lv.push(black_box(&blk));
            }
            black_box(lv.rms())
        })
    });
    for factor in [4, 8, 16] {
        let mut tp = TruePeakMeter::new(FS, 2, factor);
        g.bench_function(format!("true_peak_{factor}x_music"), |b| {
            b.iter(|| {
                tp.reset();
                for blk in blocks(&sig) {
                    tp.push(black_box(&blk));
                }
                black_box(tp.true_peak())
            })
        });
        g.bench_function(format!("true_peak_{factor}x_worst_case"), |b| {
            b.iter(|| {
                tp.reset();
                for blk in blocks(&worst) {
                    tp.push(black_box(&blk));
                }
                black_box(tp.true_peak())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
