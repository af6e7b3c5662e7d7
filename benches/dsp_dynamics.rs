//! Dynamics processors through `Processor::process` directly, 1024-frame stereo blocks at
//! 48 kHz, realistic settings (working, not idling: the material is over threshold).
//! Criterion reports the time per block; the throughput line is in frames (ns per stereo frame
//! = 1000 / Melem/s).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use stemgraph::dsp::param::ParamSlot;
use stemgraph::dsp::registry::build;
use stemgraph::dsp::{AudioBuffer, ConfigValue, ParamBlock, ProcessSpec, ProcessorConfig};

const BLOCK: usize = 1024;
const FS: f64 = 48000.0;

/// A stereo block of drum-and-bass-like material around −10 dBFS.
fn material() -> [Vec<f64>; 2] {
    let mut seed = 0x1234_5678_9abc_def0u64;
    let mut noise = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    };
    let mut ch = [vec![0.0; BLOCK], vec![0.0; BLOCK]];
    for (c, ch) in ch.iter_mut().enumerate() {
        for (i, v) in ch.iter_mut().enumerate() {
            let t = i as f64 / FS;
            *v = 0.2 * noise()
                + 0.25 * (2.0 * std::f64::consts::PI * (60.0 + 5.0 * c as f64) * t).sin()
                + 0.1 * (2.0 * std::f64::consts::PI * 6500.0 * t).sin();
        }
    }
    ch
}

fn bench_kind(c: &mut Criterion, name: &str, kind: &str, config: ProcessorConfig) {
    let built = build(kind, &config, 2).expect("builds");
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
    let input = material();
    let mut buf = AudioBuffer::new(2, BLOCK);
    let mut group = c.benchmark_group("dynamics");
    group.throughput(Throughput::Elements(BLOCK as u64));
    group.bench_function(name, |b| {
        b.iter(|| {
            for (ch, src) in input.iter().enumerate() {
                buf.channel_mut(ch, BLOCK).copy_from_slice(src);
            }
            let mut view = buf.view_mut(BLOCK);
            p.process(&mut view, None, ParamBlock::new(&slots));
            std::hint::black_box(buf.channel(0, BLOCK)[BLOCK - 1]);
        })
    });
    group.finish();
}

fn dynamics(c: &mut Criterion) {
    // The AVX2 builds, as the command line runs them (meters decide for themselves).
    stemgraph::dsp::simd::init();
    let comp = || {
        ProcessorConfig::new()
            .num("threshold_db", -24.0)
            .num("ratio", 4.0)
            .num("attack_ms", 5.0)
            .num("release_ms", 120.0)
    };
    bench_kind(c, "compressor_peak", "compressor", comp());
    bench_kind(
        c,
        "compressor_rms",
        "compressor",
        comp().text("detector", "rms").num("rms_window_ms", 10.0),
    );
    bench_kind(
        c,
        "compressor_peak_unlinked_hpf",
        "compressor",
        comp().num("link_pct", 50.0).num("sidechain_hpf_hz", 100.0),
    );
    bench_kind(
        c,
        "deesser",
        "deesser",
        ProcessorConfig::new()
            .num("freq_hz", 6500.0)
            .num("threshold_db", -35.0),
    );
    let crossovers = ConfigValue::List(vec![
        ConfigValue::Number(100.0),
        ConfigValue::Number(1000.0),
        ConfigValue::Number(6000.0),
    ]);
    let mut mb = ProcessorConfig::new().with("crossovers_hz", crossovers);
    for b in 1..=4 {
        mb = mb
            .num(&format!("{b}.threshold_db"), -30.0)
            .num(&format!("{b}.ratio"), 3.0);
    }
    bench_kind(c, "multiband_4", "multiband", mb);
    bench_kind(
        c,
        "width",
        "width",
        ProcessorConfig::new().num("width_pct", 130.0),
    );
    bench_kind(
        c,
        "width_mono_below",
        "width",
        ProcessorConfig::new()
            .num("width_pct", 130.0)
            .num("mono_below_hz", 120.0),
    );
}

criterion_group!(benches, dynamics);
criterion_main!(benches);
