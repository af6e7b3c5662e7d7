//! The engine's offline runner (`engine::parallel`) on its own, with sources and a sink that are
//! not files: the same bits on one thread and two, interruption, a source's error coming back
//! from whichever thread read it.

use stemgraph::dsp::{AudioMut, ProcessorConfig};
use stemgraph::engine::parallel::{run, BlockSource, Interrupted, RunSettings};
use stemgraph::engine::Schedule;
use stemgraph::graph::{compile, CompileOptions, GraphSpec};
use std::sync::atomic::{AtomicBool, Ordering};

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
/// reaches frame `fail_at`.
struct Tone {
    stem: usize,
    pos: u64,
    len: u64,
    fail_at: Option<u64>,
}

impl BlockSource for Tone {
    type Error = String;

    fn read_into(&mut self, mut input: AudioMut<'_>, frames: usize) -> Result<(), String> {
        if self.fail_at.is_some_and(|f| self.pos + frames as u64 > f) {
            return Err(format!("stem {} cannot be read at {}", self.stem, self.pos));
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
        })
        .collect()
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
    };
    let ended = run(&mut s, &mut sources, len, settings, |o, pos, block| {
        assert_eq!(o, 0);
        assert_eq!(pos, out.len() as u64, "blocks in order, none missing");
        out.extend_from_slice(block.channel(0));
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
    assert_eq!(one.len() as u64, len + s.tail() as u64, "song plus tail, latency trimmed");
    assert!(one.iter().any(|x| x.abs() > 0.1), "a signal came through");
    let (two, ended, s2) = render(2, len, None, None);
    ended.unwrap();
    assert_eq!(two.len(), one.len());
    assert!(
        two.iter().zip(&one).all(|(a, b)| a.to_bits() == b.to_bits()),
        "the thread count changes the output"
    );
    // The nodes are back in the schedule, at the end of the run.
    assert_eq!(s2.position(), s.position());
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
            assert_eq!(
                ended,
                Err(Error::Source(format!(
                    "stem {stem} cannot be read at {}",
                    120_000 / BLOCK as u64 * BLOCK as u64
                ))),
                "stem {stem}, {threads} threads"
            );
            assert!(out.len() < 120_000, "nothing after the error");
        }
    }
}
