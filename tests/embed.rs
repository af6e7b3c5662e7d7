//! The embedding API: a host's callback drives an `EngineRuntime` while an `EngineHandle`
//! replaces the graph. A replacement keeps the state of unchanged nodes (bit for bit), changes
//! of structure crossfade, the callback never allocates, and misuse is an error, not a crash.
use crate::common;

use common::{alloc_violations, noise};
use stemgraph::dsp::ProcessorConfig;
use stemgraph::embed::{EmbedError, EngineBuilder, EngineRuntime};
use stemgraph::engine::live::EngineEvent;
use stemgraph::graph::GraphSpec;

const FS: f64 = 48_000.0;
const BLOCK: usize = 128;

/// A stem through a compressor (its envelope is state) and a gain into the output; with `extra`,
/// a second stem through its own gain joins at a bus (a structural change).
fn graph(gain_db: f64, extra: bool) -> GraphSpec {
    graph_with(gain_db, extra, true)
}

/// [`graph`], with or without the compressor.
fn graph_with(gain_db: f64, extra: bool, compressor: bool) -> GraphSpec {
    let mut g = GraphSpec::new();
    g.source("vox", 0)
        .processor(
            "vox.comp",
            "compressor",
            ProcessorConfig::new()
                .num("threshold_db", -30.0)
                .num("ratio", 4.0)
                .num("release_ms", 400.0),
        )
        .processor(
            "vox.gain",
            "gain",
            ProcessorConfig::new().num("gain_db", gain_db),
        )
        .bus("mix")
        .output("main")
        .chain(&["vox", "vox.comp", "vox.gain", "mix", "main"]);
    if !compressor {
        g.nodes.retain(|n| n.id != "vox.comp");
        g.edges.clear();
        g.chain(&["vox", "vox.gain", "mix", "main"]);
    }
    if extra {
        g.source("keys", 1)
            .processor(
                "keys.gain",
                "gain",
                ProcessorConfig::new().num("gain_db", -60.0),
            )
            .chain(&["keys", "keys.gain", "mix"]);
    }
    g
}

/// Runs blocks `from_block..from_block + blocks` of `signal` (on every input) and returns the
/// left output.
fn run(rt: &mut EngineRuntime, signal: &[Vec<f64>], from_block: usize, blocks: usize) -> Vec<f64> {
    let mut out = Vec::new();
    for b in from_block..from_block + blocks {
        let at = b * BLOCK;
        for i in 0..rt.input_count() {
            let mut input = rt.input_mut(i, BLOCK);
            for c in 0..input.channels() {
                input
                    .channel_mut(c)
                    .copy_from_slice(&signal[c.min(1)][at..at + BLOCK]);
            }
        }
        // The callback's part, under the allocation guard.
        let view = assert_no_alloc::assert_no_alloc(|| rt.process(BLOCK));
        out.extend_from_slice(view.channel(0));
    }
    out
}

fn builder() -> EngineBuilder {
    EngineBuilder::new(FS).max_block(BLOCK).inputs(2)
}

#[test]
fn replacing_a_graph_by_the_same_graph_changes_no_sample() {
    let signal = noise(40 * BLOCK, 0.8, 7);
    let (mut plain, _h) = builder().build(&graph(-6.0, false)).unwrap();
    let (mut swapped, mut handle) = builder().build(&graph(-6.0, false)).unwrap();
    let a = run(&mut plain, &signal, 0, 40);
    let mut b = run(&mut swapped, &signal, 0, 20);
    // Mid-signal, the compressor's envelope deep in gain reduction: the new schedule takes it.
    let generation = handle.replace(&graph(-6.0, false)).unwrap();
    b.extend(run(&mut swapped, &signal, 20, 20));
    assert_eq!(a, b, "the state carried over and nothing glided");
    assert_eq!(
        handle.events(),
        [EngineEvent::Swapped {
            generation,
            position: (20 * BLOCK) as i64,
            crossfade: false
        }]
    );
    assert_eq!(handle.collect_garbage(), 1, "the old schedule came back");
}

#[test]
fn a_new_value_glides_in_without_a_crossfade_and_lands_on_the_new_gain() {
    let signal = noise(80 * BLOCK, 0.8, 11);
    let (mut plain, _h) = builder().build(&graph(-6.0, false)).unwrap();
    let (mut swapped, mut handle) = builder().build(&graph(-6.0, false)).unwrap();
    let a = run(&mut plain, &signal, 0, 80);
    let mut b = run(&mut swapped, &signal, 0, 20);
    handle.replace(&graph(-12.0, false)).unwrap();
    b.extend(run(&mut swapped, &signal, 20, 60));
    let at = 20 * BLOCK;
    assert_eq!(a[..at], b[..at], "nothing changes before the swap");
    assert_ne!(a[at..], b[at..]);
    // Once the glide is over: exactly 6 dB lower, sample for sample (same compressor state).
    let ratio = 10f64.powf(-6.0 / 20.0);
    for k in 70 * BLOCK..80 * BLOCK {
        assert!(
            (b[k] - a[k] * ratio).abs() < 1e-9,
            "sample {k}: {} vs {}",
            b[k],
            a[k]
        );
    }
    assert!(matches!(
        handle.events()[..],
        [EngineEvent::Swapped {
            crossfade: false,
            ..
        }]
    ));
}

/// (Without the compressor: whether a structural change keeps every processor's state is the
/// processors' part, tested with each of them.)
#[test]
fn a_change_of_structure_crossfades_to_the_new_graph() {
    let signal = noise(60 * BLOCK, 0.8, 3);
    let (mut plain, _h) = builder().build(&graph_with(-6.0, false, false)).unwrap();
    let (mut rt, mut handle) = builder().build(&graph_with(-6.0, false, false)).unwrap();
    let a = run(&mut plain, &signal, 0, 60);
    let mut b = run(&mut rt, &signal, 0, 20);
    handle.replace(&graph_with(-6.0, true, false)).unwrap();
    b.extend(run(&mut rt, &signal, 20, 40));
    assert!(matches!(
        handle.events()[..],
        [EngineEvent::Swapped {
            crossfade: true,
            ..
        }]
    ));
    assert_eq!(a[..20 * BLOCK], b[..20 * BLOCK]);
    // During the crossfade the keys fade in; after it, they are there, 60 dB down.
    let keys = 10f64.powf(-60.0 / 20.0);
    let fade = (0.030 * FS) as usize;
    let after = 20 * BLOCK + fade + BLOCK;
    for k in after..60 * BLOCK {
        let want = a[k] + keys * signal[0][k];
        assert!((b[k] - want).abs() < 1e-9, "sample {k}: {} vs {want}", b[k]);
    }
    let mid = 20 * BLOCK + fade / 2;
    assert!((b[mid] - a[mid]).abs() < (keys * signal[0][mid]).abs());
}

#[test]
fn the_callback_never_allocates_through_replacements() {
    let signal = noise(64 * BLOCK, 0.5, 5);
    let (mut rt, mut handle) = builder().build(&graph(-6.0, false)).unwrap();
    for k in 0..8 {
        handle.replace(&graph(-6.0 - k as f64, k % 2 == 1)).unwrap();
        let (_, violations) = alloc_violations(|| run(&mut rt, &signal, k * 8, 8));
        assert_eq!(violations, 0, "replacement {k}");
        handle.collect_garbage();
    }
    assert_eq!(handle.events().len(), 8);
}

#[test]
fn a_graph_with_more_inputs_than_the_runtime_has_is_refused() {
    let (_rt, mut handle) = EngineBuilder::new(FS)
        .max_block(BLOCK)
        .build(&graph(-6.0, false))
        .unwrap();
    match handle.replace(&graph(-6.0, true)) {
        Err(EmbedError::Inputs { needs: 2, room: 1 }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_runtime_that_does_not_run_makes_the_handle_busy_not_blocked() {
    let (_rt, mut handle) = builder().build(&graph(-6.0, false)).unwrap();
    let mut accepted = 0;
    let refused = loop {
        match handle.replace(&graph(-6.0 - accepted as f64, false)) {
            Ok(_) => accepted += 1,
            Err(e) => break e,
        }
        assert!(accepted < 100, "the queue never fills");
    };
    assert!(matches!(refused, EmbedError::Busy), "{refused}");
    assert!(accepted >= 1);
}

#[test]
fn a_graph_that_does_not_validate_is_an_error_and_the_old_one_plays_on() {
    let signal = noise(20 * BLOCK, 0.5, 9);
    let (mut rt, mut handle) = builder().build(&graph(-6.0, false)).unwrap();
    let mut broken = graph(-6.0, false);
    broken.connect("vox.gain", "nowhere");
    assert!(matches!(handle.replace(&broken), Err(EmbedError::Graph(_))));
    let out = run(&mut rt, &signal, 0, 20);
    assert!(out.iter().any(|x| *x != 0.0));
    assert!(handle.events().is_empty());
}
