//! The engine's offline runner (`engine::parallel`) on its own, with sources and a sink that are
//! not files: the same bits on one thread and two, interruption, a source's error coming back
//! from whichever thread read it; and the split layout on its own: every valid split of a
//! schedule gives the bits of the whole.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use stemgraph::dsp::{AudioMut, ProcessorConfig};
use stemgraph::engine::parallel::{
    join, run, split, unit_deps, units, valid, BlockSource, Crossings, Interrupted, RunSettings,
};
use stemgraph::engine::{Schedule, Step, Tap};
use stemgraph::graph::{compile, CompileOptions, GraphSpec};

const FS: f64 = 48_000.0;
const BLOCK: usize = 64;

/// Four stems through gains and compressors (one keyed by another stem) into a master with a
/// limiter: strips the runner can split.
fn graph() -> GraphSpec {
    let mut g = GraphSpec::new();
    g.bus("master").output("main");
    for i in 0..4 {
        let s = format!("s{i}");
        g.source(&s, i);
        g.processor(
            &format!("{s}.gain"),
            "gain",
            ProcessorConfig::new().num("gain_db", 2.0 - i as f64),
        );
        g.processor(
            &format!("{s}.comp"),
            "compressor",
            ProcessorConfig::new()
                .num("threshold_db", -24.0 - i as f64)
                .num("ratio", 4.0),
        );
        g.chain(&[&s, &format!("{s}.gain"), &format!("{s}.comp"), "master"]);
    }
    g.connect_port("s0", "s2.comp", stemgraph::dsp::Port::Key, 0.0);
    g.processor(
        "master.lim",
        "limiter",
        ProcessorConfig::new().num("oversampling", 4.0),
    );
    g.chain(&["master", "master.lim", "main"]);
    g
}

fn schedule() -> Schedule {
    compile(&graph(), CompileOptions::new(FS, BLOCK))
        .unwrap()
        .schedule
}

/// A stereo test signal per stem, `len` frames long, silent after; optionally failing when it
/// reaches frame `fail_at`, or costing `dear.1` more steps of work per block from frame
/// `dear.0` on; with `readers`, the thread that read each block, in order.
struct Tone {
    stem: usize,
    pos: u64,
    len: u64,
    fail_at: Option<u64>,
    dear: (u64, u64),
    readers: Option<Vec<std::thread::ThreadId>>,
}

impl BlockSource for Tone {
    type Error = String;

    fn read_into(&mut self, mut input: AudioMut<'_>, frames: usize) -> Result<(), String> {
        if self.fail_at.is_some_and(|f| self.pos + frames as u64 > f) {
            return Err(format!("stem {} cannot be read at {}", self.stem, self.pos));
        }
        if let Some(r) = self.readers.as_mut() {
            r.push(std::thread::current().id());
        }
        if self.pos >= self.dear.0 {
            spin(self.dear.1);
        }
        let rate = 0.013 + 0.007 * self.stem as f64;
        for c in 0..input.channels() {
            for (k, x) in input.channel_mut(c).iter_mut().enumerate() {
                let n = self.pos + k as u64;
                *x = if n < self.len {
                    ((n as f64 * rate) + c as f64).sin() * (0.4 + 0.15 * self.stem as f64)
                } else {
                    0.0
                };
            }
        }
        self.pos += frames as u64;
        Ok(())
    }
}

fn tones(len: u64, fail: Option<(usize, u64)>) -> Vec<Tone> {
    (0..4)
        .map(|stem| Tone {
            stem,
            pos: 0,
            len,
            fail_at: fail.and_then(|(s, at)| (s == stem).then_some(at)),
            dear: (u64::MAX, 0),
            readers: None,
        })
        .collect()
}

/// `steps` steps of work.
fn spin(steps: u64) {
    let mut x = 0u64;
    for i in 0..steps {
        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
    }
}

#[derive(Debug, PartialEq)]
enum Error {
    Source(String),
    Interrupted,
}

impl From<String> for Error {
    fn from(e: String) -> Self {
        Error::Source(e)
    }
}

impl From<Interrupted> for Error {
    fn from(_: Interrupted) -> Self {
        Error::Interrupted
    }
}

/// Runs the graph over `len` frames of the tones; returns the left channel of the output as
/// the sink saw it (positions checked to follow each other from 0) and how it ended.
fn render(
    threads: usize,
    len: u64,
    fail: Option<(usize, u64)>,
    interrupt_after: Option<u64>,
) -> (Vec<f64>, Result<(), Error>, Schedule) {
    render_busy(threads, len, fail, interrupt_after, 0)
}

/// [`render`] with a sink that also spins `sink_work` steps per block (work that stays on the
/// runner's own thread, as a master chain's meters and files do).
fn render_busy(
    threads: usize,
    len: u64,
    fail: Option<(usize, u64)>,
    interrupt_after: Option<u64>,
    sink_work: u64,
) -> (Vec<f64>, Result<(), Error>, Schedule) {
    let mut s = schedule();
    let mut sources = tones(len, fail);
    let flag = AtomicBool::new(false);
    let mut progress = |done: u64, _total: u64| {
        if interrupt_after.is_some_and(|a| done >= a) {
            flag.store(true, Ordering::Relaxed);
        }
    };
    let mut out = Vec::new();
    let settings = RunSettings {
        block: BLOCK,
        threads,
        interrupt: Some(&flag),
        progress: Some(&mut progress),
        stop: None,
    };
    let ended = run(&mut s, &mut sources, len, settings, |o, pos, block| {
        assert_eq!(o, 0);
        assert_eq!(pos, out.len() as u64, "blocks in order, none missing");
        out.extend_from_slice(block.channel(0));
        spin(sink_work);
        Ok::<(), Error>(())
    });
    (out, ended, s)
}

#[test]
fn two_threads_give_the_bits_of_one() {
    // Long enough for the profiling blocks, the trial stretches and the rest.
    let len = 200_000;
    let (one, ended, s) = render(1, len, None, None);
    ended.unwrap();
    assert_eq!(
        one.len() as u64,
        len + s.tail() as u64,
        "song plus tail, latency trimmed"
    );
    assert!(one.iter().any(|x| x.abs() > 0.1), "a signal came through");
    let (two, ended, s2) = render(2, len, None, None);
    ended.unwrap();
    assert_same_bits(&two, &one);
    // The nodes are back in the schedule, at the end of the run.
    assert_eq!(s2.position(), s.position());
}

/// With the runner's own thread much the busier (a heavy sink), the balancing gives the worker
/// its strips and then some of its stems to read itself: the same bits as one thread, and a
/// stem that cannot be read stops the run with its error whichever thread reads it.
#[test]
fn a_worker_reading_its_own_stems_gives_the_bits_of_one() {
    let len = 200_000;
    let (one, ended, _) = render(1, len, None, None);
    ended.unwrap();
    let (two, ended, _) = render_busy(2, len, None, None, 20_000);
    ended.unwrap();
    assert_same_bits(&two, &one);
    for stem in 0..4 {
        let (out, ended, _) = render_busy(2, len, Some((stem, 150_000)), None, 20_000);
        assert_read_error(&out, ended, stem, 150_000);
    }
}

/// With the runner's own thread the busier in the first half of the song (a heavy sink) and
/// the worker in the second (an idle sink, the stems dear to read), the reading of the stems
/// moves to the worker and back while the run goes on: each stem is still read in order
/// whichever thread reads it (the bits of one thread), and stems change hands both ways.
#[test]
fn stems_change_readers_both_ways_with_the_bits_of_one() {
    let len = 400_000;
    let (one, ended, _) = render(1, len, None, None);
    ended.unwrap();
    let mut s = schedule();
    let mut sources = tones(len, None);
    for t in &mut sources {
        t.dear = (len / 2, 2_000);
        t.readers = Some(Vec::with_capacity(len as usize / BLOCK + 64));
    }
    let mut out = Vec::new();
    let settings = RunSettings {
        block: BLOCK,
        threads: 2,
        interrupt: None,
        progress: None,
        stop: None,
    };
    run(&mut s, &mut sources, len, settings, |_, pos, block| {
        out.extend_from_slice(block.channel(0));
        spin(if pos < len / 2 { 20_000 } else { 0 });
        Ok::<(), Error>(())
    })
    .unwrap();
    assert_same_bits(&out, &one);
    let here = std::thread::current().id();
    let (mut given, mut taken) = (0, 0);
    for t in &sources {
        let readers = t.readers.as_ref().expect("recorded");
        for pair in readers.windows(2) {
            match (pair[0] == here, pair[1] == here) {
                (true, false) => given += 1,
                (false, true) => taken += 1,
                _ => {}
            }
        }
    }
    assert!(
        given > 0 && taken > 0,
        "{given} readings given to the worker, {taken} taken back"
    );
}

/// `two` (a render on two threads) is `one` (on one), bit for bit.
fn assert_same_bits(two: &[f64], one: &[f64]) {
    assert_eq!(two.len(), one.len());
    assert!(
        two.iter().zip(one).all(|(a, b)| a.to_bits() == b.to_bits()),
        "the thread count changes the output"
    );
}

/// The run ended with stem `stem`'s read error at the block holding frame `at`, the sink
/// having had nothing from there on.
fn assert_read_error(out: &[f64], ended: Result<(), Error>, stem: usize, at: u64) {
    assert_eq!(
        ended,
        Err(Error::Source(format!(
            "stem {stem} cannot be read at {}",
            at / BLOCK as u64 * BLOCK as u64
        ))),
        "stem {stem}"
    );
    assert!(out.len() < at as usize, "nothing after the error");
}

/// A tap folding every sample it sees, in order, into one number.
struct Fingerprint(Arc<AtomicU64>);

impl Tap for Fingerprint {
    fn observe(&mut self, audio: stemgraph::dsp::AudioRef<'_>) {
        let mut h = self.0.load(Ordering::Relaxed);
        for c in 0..audio.channels() {
            for x in audio.channel(c) {
                h = h.rotate_left(7) ^ x.to_bits();
            }
        }
        self.0.store(h, Ordering::Relaxed);
    }
}

#[test]
fn one_source_on_two_threads_gives_the_bits_of_one() {
    // A spilled master's final pass: one source through a gain and an 8x true-peak limiter into
    // an output and a tap. The worker may take the whole chain (the units of the only source)
    // and leave the tap and the sink to this thread.
    let mut g = GraphSpec::new();
    g.source("spill", 0);
    g.processor("drive", "gain", ProcessorConfig::new().num("gain_db", 9.0));
    g.processor(
        "lim",
        "limiter",
        ProcessorConfig::new().num("oversampling", 8.0),
    );
    g.output("main");
    g.chain(&["spill", "drive", "lim", "main"]);
    let len = 200_000;
    let mut outs = Vec::new();
    for threads in [1, 2] {
        let seen = Arc::new(AtomicU64::new(0));
        let mut opts = CompileOptions::new(FS, BLOCK);
        opts.taps = vec![(
            "lim".to_string(),
            Box::new(Fingerprint(seen.clone())) as Box<dyn Tap>,
        )];
        let mut s = compile(&g, opts).unwrap().schedule;
        let mut sources: Vec<Tone> = tones(len, None).into_iter().take(1).collect();
        let mut out = Vec::new();
        let settings = RunSettings {
            block: BLOCK,
            threads,
            interrupt: None,
            progress: None,
            stop: None,
        };
        run(&mut s, &mut sources, len, settings, |_, _, block| {
            out.extend_from_slice(block.channel(0));
            out.extend_from_slice(block.channel(1));
            Ok::<(), Error>(())
        })
        .unwrap();
        outs.push((out, seen.load(Ordering::Relaxed)));
    }
    assert!(
        outs[0].0.iter().any(|x| x.abs() > 0.1),
        "a signal came through"
    );
    assert!(
        outs[0].0.len() == outs[1].0.len()
            && outs[0]
                .0
                .iter()
                .zip(&outs[1].0)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
        "the thread count changes the output"
    );
    assert_eq!(outs[0].1, outs[1].1, "the tap saw the same");
}

#[test]
fn the_sink_ends_the_run_with_the_stop_flag() {
    for threads in [1, 2] {
        let mut s = schedule();
        let mut sources = tones(200_000, None);
        let stop = std::cell::Cell::new(false);
        let mut seen = 0u64;
        let settings = RunSettings {
            block: BLOCK,
            threads,
            interrupt: None,
            progress: None,
            stop: Some(&stop),
        };
        let ended = run(&mut s, &mut sources, 200_000, settings, |_, _, block| {
            seen += block.frames() as u64;
            if seen >= 30_000 {
                stop.set(true);
            }
            Ok::<(), Error>(())
        });
        assert_eq!(ended, Ok(()), "{threads} threads");
        assert!(
            (30_000..30_000 + BLOCK as u64).contains(&seen),
            "{threads} threads: {seen} frames after the stop"
        );
    }
}

#[test]
fn an_interrupt_stops_between_blocks() {
    for threads in [1, 2] {
        let (out, ended, _) = render(threads, 200_000, None, Some(50_000));
        assert_eq!(ended, Err(Error::Interrupted), "{threads} threads");
        assert!(
            out.len() >= 50_000 - 4096 && out.len() < 60_000,
            "{threads} threads: stopped after {} frames",
            out.len()
        );
    }
}

#[test]
fn a_source_error_comes_back_from_either_thread() {
    for stem in 0..4 {
        for threads in [1, 2] {
            let (out, ended, _) = render(threads, 200_000, Some((stem, 120_000)), None);
            assert_read_error(&out, ended, stem, 120_000);
        }
    }
}

/// Four stems through a compressor each (one keyed by another stem), a send to a second bus,
/// into a master with a limiter.
fn split_graph() -> GraphSpec {
    let mut g = GraphSpec::new();
    g.bus("master").bus("fx").output("main");
    for i in 0..4 {
        let s = format!("s{i}");
        g.source(&s, i);
        g.processor(
            &format!("{s}.comp"),
            "compressor",
            ProcessorConfig::new()
                .num("threshold_db", -20.0 - i as f64)
                .num("ratio", 3.0),
        );
        g.chain(&[&s, &format!("{s}.comp"), "master"]);
    }
    g.connect("s1.comp", "fx");
    g.connect_port("s0", "s2.comp", stemgraph::dsp::Port::Key, 0.0);
    g.processor(
        "fx.gain",
        "gain",
        ProcessorConfig::new().num("gain_db", -6.0),
    );
    g.chain(&["fx", "fx.gain", "master"]);
    g.processor(
        "master.lim",
        "limiter",
        ProcessorConfig::new().num("oversampling", 4.0),
    );
    g.chain(&["master", "master.lim", "main"]);
    g
}

/// Five stems through a gain each into a master, the third sent 3 dB down: the worker may sum
/// the first two (unity sends, in the bus's order) into one value for the bus.
fn partial_sum_graph() -> GraphSpec {
    let mut g = GraphSpec::new();
    g.bus("master").output("main");
    for i in 0..5 {
        let s = format!("s{i}");
        g.source(&s, i);
        g.processor(
            &format!("{s}.gain"),
            "gain",
            ProcessorConfig::new().num("gain_db", 1.5 - 0.7 * i as f64),
        );
        g.connect(&s, &format!("{s}.gain"));
        let send = if i == 2 { -3.0 } else { 0.0 };
        g.connect_port(
            &format!("{s}.gain"),
            "master",
            stemgraph::dsp::Port::Main,
            send,
        );
    }
    g.processor(
        "master.gain",
        "gain",
        ProcessorConfig::new().num("gain_db", -1.0),
    );
    g.chain(&["master", "master.gain", "main"]);
    g
}

#[test]
fn split_renders_the_same_bits() {
    let crossing = every_split_renders_the_same_bits(split_graph, 4);
    assert!(crossing
        .iter()
        .all(|&(_, handed, counted)| handed == counted));
}

#[test]
fn a_partial_bus_sum_on_the_worker_renders_the_same_bits() {
    let crossing = every_split_renders_the_same_bits(partial_sum_graph, 5);
    for (w, handed, counted) in &crossing {
        assert_eq!(handed, counted, "split {w:?}");
    }
    // Everything on the worker: s0 + s1 cross as one sum, s2 (sent 3 dB down), s3, s4 apart.
    let all = crossing
        .iter()
        .find(|(w, _, _)| w.iter().all(|&x| x))
        .expect("every unit on the worker is a valid split");
    assert_eq!(all.1, 4);
    // The sum needs both: with s1's strip on this thread nothing is summed.
    let s = compile(&partial_sum_graph(), CompileOptions::new(48_000.0, 512))
        .unwrap()
        .schedule;
    let (unit, _) = units(&s);
    let gain_unit = |stem: usize| {
        let node = s.node_index(&format!("s{stem}.gain")).unwrap();
        let step = s
            .steps()
            .iter()
            .position(|st| matches!(st, Step::Process { node: n, .. } if *n == node))
            .unwrap();
        unit[step].unwrap()
    };
    let apart = crossing
        .iter()
        .find(|(w, _, _)| w.iter().enumerate().all(|(u, &x)| x == (u != gain_unit(1))))
        .expect("all but s1's strip on the worker");
    assert_eq!(apart.1, 5);
}

/// Renders `graph` whole and split every valid way, `inputs` stems of test signal: the same
/// bits each time. Returns, per split, the units given to the worker, the values handed from
/// the worker to this thread, and what [`Crossings`] counted for it.
fn every_split_renders_the_same_bits(
    graph: fn() -> GraphSpec,
    inputs: usize,
) -> Vec<(Vec<bool>, usize, usize)> {
    let split_graph = graph;
    let frames = 48_000;
    let block = 512;
    let signal = |i: usize, n: usize, c: usize| {
        ((n as f64 * (0.01 + 0.003 * i as f64)) + c as f64).sin() * (0.3 + 0.2 * i as f64)
    };
    let run = |split_units: Option<Vec<bool>>| -> (Vec<f64>, usize) {
        let mut s = compile(&split_graph(), CompileOptions::new(48_000.0, block))
            .unwrap()
            .schedule;
        let mut out = Vec::new();
        let mut done = 0;
        let mut halves = split_units.map(|w| {
            let (unit, _) = units(&s);
            split(&mut s, &unit, &w)
        });
        while done < frames {
            let n = block.min(frames - done);
            match &mut halves {
                None => {
                    for i in 0..inputs {
                        let mut v = s.input_mut(i, n);
                        for c in 0..2 {
                            for (k, x) in v.channel_mut(c).iter_mut().enumerate() {
                                *x = signal(i, done + k, c);
                            }
                        }
                    }
                    s.process(n);
                    out.extend_from_slice(s.output(0, n).channel(0));
                }
                Some(h) => {
                    for (k, &i) in h.worker_inputs.iter().enumerate() {
                        let mut v = h.worker.input_mut(k, n);
                        for c in 0..2 {
                            for (j, x) in v.channel_mut(c).iter_mut().enumerate() {
                                *x = signal(i, done + j, c);
                            }
                        }
                    }
                    h.worker.process(n);
                    for (k, &i) in h.main_inputs.iter().enumerate() {
                        let mut v = h.main.input_mut(k, n);
                        for c in 0..2 {
                            for (j, x) in v.channel_mut(c).iter_mut().enumerate() {
                                *x = signal(i, done + j, c);
                            }
                        }
                    }
                    let own = h.main_inputs.len();
                    for e in 0..h.worker.output_count() {
                        let src = h.worker.output(e, n);
                        let mut dst = h.main.input_mut(own + e, n);
                        for c in 0..src.channels() {
                            dst.channel_mut(c).copy_from_slice(src.channel(c));
                        }
                    }
                    h.main.process(n);
                    out.extend_from_slice(h.main.output(0, n).channel(0));
                }
            }
            done += n;
        }
        let mut handed = 0;
        if let Some(h) = halves {
            handed = h.worker.output_count();
            join(&mut s, h);
            assert_eq!(s.position(), frames as i64);
        }
        (out, handed)
    };
    let (whole, _) = run(None);
    let mut seen = Vec::new();
    let s = compile(&split_graph(), CompileOptions::new(48_000.0, block))
        .unwrap()
        .schedule;
    let (_, count) = units(&s);
    assert!(count >= 3, "stems give units: {count}");
    for mask in 1..(1u32 << count) {
        let w: Vec<bool> = (0..count).map(|u| mask & (1 << u) != 0).collect();
        if !valid(&w, &unit_deps(&s, &units(&s).0, count)) {
            continue;
        }
        let (got, handed) = run(Some(w.clone()));
        assert!(
            got.iter()
                .zip(&whole)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "split {mask:b} changes the output"
        );
        let counted = Crossings::new(&s).count(&s, &units(&s).0, &w);
        seen.push((w, handed, counted));
    }
    seen
}
