//! The engine's own cost: per-block overhead of running a schedule, and a full in-memory render.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use stemgraph::dsp::ProcessorConfig;
use stemgraph::graph::{compile, CompileOptions, GraphSpec};
use stemgraph::render::in_memory::render_in_memory;

/// 8 stems, each with a gain and a pan, into a master bus with a gain: 26 steps.
fn graph() -> GraphSpec {
    let mut g = GraphSpec::new();
    g.bus("master").output("main");
    for i in 0..8 {
        let s = format!("stem{i}");
        g.source(&s, i);
        g.processor(
            &format!("{s}.gain"),
            "gain",
            ProcessorConfig::new().num("gain_db", -1.0),
        );
        g.processor(
            &format!("{s}.pan"),
            "pan",
            ProcessorConfig::new().num("pan", 0.1),
        );
        g.chain(&[&s, &format!("{s}.gain"), &format!("{s}.pan"), "master"]);
    }
    g.processor(
        "master.gain",
        "gain",
        ProcessorConfig::new().num("gain_db", 2.0),
    );
    g.chain(&["master", "master.gain", "main"]);
    g
}

fn per_block(c: &mut Criterion) {
    // The AVX2 builds, as the command line runs them (meters decide for themselves).
    stemgraph::dsp::simd::init();
    let mut group = c.benchmark_group("engine/block");
    for block in [64usize, 1024] {
        let mut schedule = compile(&graph(), CompileOptions::new(48_000.0, block))
            .unwrap()
            .schedule;
        group.throughput(Throughput::Elements(block as u64));
        group.bench_with_input(
            BenchmarkId::new("8 stems gain+pan", block),
            &block,
            |b, &block| {
                b.iter(|| {
                    schedule.process(black_box(block));
                })
            },
        );
        // The bare overhead: the same schedule over 1-frame blocks costs mostly bookkeeping.
    }
    let mut schedule = compile(&graph(), CompileOptions::new(48_000.0, 1))
        .unwrap()
        .schedule;
    group.throughput(Throughput::Elements(1));
    group.bench_function("overhead (1-frame block, 26 steps)", |b| {
        b.iter(|| schedule.process(black_box(1)))
    });
    group.finish();
}

fn full_render(c: &mut Criterion) {
    // The AVX2 builds, as the command line runs them (meters decide for themselves).
    stemgraph::dsp::simd::init();
    let n = 48_000 * 10;
    let inputs: Vec<Vec<Vec<f64>>> = (0..8)
        .map(|i| {
            (0..2)
                .map(|c| {
                    (0..n)
                        .map(|k| ((k * (i + 1) + c) % 97) as f64 / 200.0 - 0.25)
                        .collect()
                })
                .collect()
        })
        .collect();
    let mut group = c.benchmark_group("engine/render");
    group.sample_size(10);
    group.throughput(Throughput::Elements(n as u64));
    group.bench_function("10 s, 8 stems gain+pan, in memory", |b| {
        b.iter(|| render_in_memory(&graph(), black_box(&inputs), 48_000.0, 1024).unwrap())
    });
    group.finish();
}

criterion_group!(benches, per_block, full_render);
criterion_main!(benches);
