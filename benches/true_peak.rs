//! ns per frame (one channel) of the limiter's true-peak detector on music: the demo song's
//! mix scaled so that its true peak sits 6, 3 and 1 dB below the detector's threshold, and a
//! limited master (the mix through the limiter, +6 dB into a −1 dBTP ceiling, read against
//! the safety stage's threshold). `full` reads every sample; `above` is the threshold-aware
//! mode (exact readings only where one could exceed the threshold); the share of the steps it
//! reads exactly is printed before each case.
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use stemgraph::demo::{write_demo, DemoOptions};
use stemgraph::dsp::config::ProcessorConfig;
use stemgraph::dsp::oversample::TruePeakDetector;
use stemgraph::dsp::param::ParamSlot;
use stemgraph::dsp::{registry, AudioBuffer, ParamBlock, ProcessSpec};
use stemgraph::io::decode::Decoder;

const BLOCK: usize = 1024;
const FS: f64 = 48_000.0;
const FACTOR: usize = 8;

/// The demo song's reference mix, left channel.
fn music(seconds: f64) -> Vec<f64> {
    let dir = tempfile::tempdir().expect("temp dir");
    let opts = DemoOptions {
        seconds,
        ..DemoOptions::default()
    };
    let files = write_demo(dir.path(), &opts).expect("demo");
    let mut dec = Decoder::open(&files.reference).expect("open mix");
    let channels = dec.info().channels;
    let mut out = Vec::new();
    let mut bufs = vec![vec![0.0; BLOCK]; channels];
    loop {
        let mut views: Vec<&mut [f64]> = bufs.iter_mut().map(|b| &mut b[..]).collect();
        let n = dec.read(&mut views, BLOCK).expect("read mix");
        if n == 0 {
            break;
        }
        out.extend_from_slice(&bufs[0][..n]);
    }
    out
}

/// The largest reading of the full detector over `x`.
fn true_peak(x: &[f64]) -> f64 {
    let mut det = TruePeakDetector::new(FACTOR, FS);
    let mut p = vec![0.0; x.len()];
    det.peaks(x, &mut p);
    p.iter().fold(0.0, |m: f64, &v| m.max(v))
}

/// `x` through the limiter (stereo, both channels `x`), `drive_db` into a −1 dBTP ceiling.
fn limited(x: &[f64], drive_db: f64) -> Vec<f64> {
    let config = ProcessorConfig::new()
        .num("oversampling", FACTOR as f64)
        .num("ceiling_dbtp", -1.0)
        .num("input_gain_db", drive_db);
    let built = registry::build("limiter", &config, 2).expect("limiter");
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
    let mut buf = AudioBuffer::new(2, BLOCK);
    let mut out = Vec::with_capacity(x.len());
    for chunk in x.chunks(BLOCK) {
        let n = chunk.len();
        for ch in 0..2 {
            buf.channel_mut(ch, n).copy_from_slice(chunk);
        }
        p.process(&mut buf.view_mut(n), None, ParamBlock::new(&slots));
        out.extend_from_slice(buf.channel(0, n));
    }
    out
}

fn bench_case(c: &mut Criterion, name: &str, x: &[f64], threshold: f64) {
    let mut group = c.benchmark_group("true_peak_detector_frames");
    group.throughput(Throughput::Elements(x.len() as u64));
    group.sample_size(20);
    let mut det = TruePeakDetector::new(FACTOR, FS);
    let mut p = vec![0.0; BLOCK];
    group.bench_function(format!("{name}/full"), |b| {
        b.iter(|| {
            det.reset();
            for chunk in x.chunks(BLOCK) {
                det.peaks(chunk, &mut p[..chunk.len()]);
                black_box(p[0]);
            }
        })
    });
    let mut det = TruePeakDetector::new(FACTOR, FS);
    // How much the bounds leave to read exactly (one pass, before the timing).
    for chunk in x.chunks(BLOCK) {
        det.peaks_above(chunk, &mut p[..chunk.len()], threshold);
    }
    eprintln!(
        "{name}: {:.3} % of the steps read exactly",
        100.0 * det.steps_read() as f64 / x.len() as f64
    );
    group.bench_function(format!("{name}/above"), |b| {
        b.iter(|| {
            det.reset();
            for chunk in x.chunks(BLOCK) {
                det.peaks_above(chunk, &mut p[..chunk.len()], threshold);
                black_box(p[0]);
            }
        })
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    // The AVX2 builds, as the command line runs them (meters decide for themselves).
    stemgraph::dsp::simd::init();
    let mix = music(20.0);
    let threshold = 0.5;
    let tp = true_peak(&mix);
    for below_db in [6.0, 3.0, 1.0] {
        let g = threshold * 10f64.powf(-below_db / 20.0) / tp;
        let x: Vec<f64> = mix.iter().map(|v| v * g).collect();
        bench_case(c, &format!("music_{below_db}dB_below"), &x, threshold);
    }
    // A limited master, read against the limiter's safety-stage threshold (0.1 dB under the
    // ceiling): what the limiter's second detector sees.
    let master = limited(&mix, 6.0);
    bench_case(c, "limited_master", &master, 10f64.powf(-1.1 / 20.0));
}

criterion_group!(detector, benches);
criterion_main!(detector);
