//! The real-time callback's cost, measured in-process: for each example recipe, the live engine
//! (`LiveEngine::process`, what the sound card's callback runs) at 64-frame buffers, each call
//! timed by the calling thread's CPU clock (`CLOCK_THREAD_CPUTIME_ID`, so time the thread spent
//! preempted by other processes does not count). Prints a Markdown table: percentiles of the
//! per-callback CPU time as a share of the callback's deadline (64 frames at 48 kHz = 1.33 ms).
//!
//!     cargo bench --bench realtime [-- --stems-dir DIR] [--seconds S] [--passes N]
//!
//! The thread's CPU clock still counts what interrupts the thread without switching it out:
//! on a virtual machine the timer tick alone can cost tens of microseconds, every few
//! milliseconds, charged to whichever thread it lands on. Such a stall falls on a random
//! callback, while the engine's own work is deterministic: the same recipe on the same stems
//! does the same work in callback `i` of every pass. So each recipe runs `--passes` times (3
//! by default) from a fresh engine, and the table gives, for each callback, its cheapest pass:
//! the engine's cost, with every periodic or signal-dependent heavy callback of its own kept
//! (they recur in every pass) and the machine's stalls left out. The `p99.9, one pass` column is
//! the first pass as measured, stalls included, for comparison.
//!
//! The stems (the demo song, 4, 6 and 8 stems) are written to DIR (default: a temporary
//! folder) and decoded into memory first; the recipes are the project's `scripts/*.lua` and
//! the full mastering chain of `benches/compare/mastering.lua` (workload M: 8x true-peak
//! limiter). Not a timed test: a measurement to read (benches/compare/run.sh puts it in
//! docs/PERFORMANCE.md).

use std::path::{Path, PathBuf};
use stemgraph::demo::{write_demo, DemoOptions};
use stemgraph::engine::live::LiveEngine;
use stemgraph::graph::{compile, CompileOptions};
use stemgraph::io::decode::{StemStream, StreamOptions};
use stemgraph::script::load_recipe;

const BUFFER: usize = 64;
const RATE: u32 = 48_000;

/// CPU time of the calling thread, in nanoseconds.
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid pointer to a timespec; CLOCK_THREAD_CPUTIME_ID is always available on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The machine's stalls as a thread sees them: spins for `seconds` reading its CPU clock and
/// returns (stalls per second, median stall in ns) of the jumps over 5 µs, time charged to the
/// thread while it ran no code of its own (interrupts, the hypervisor).
fn stall_probe(seconds: f64) -> (f64, u64) {
    let span = (seconds * 1e9) as u64;
    let start = thread_cpu_ns();
    let mut previous = start;
    let mut stalls = Vec::new();
    while previous - start < span {
        let now = thread_cpu_ns();
        if now - previous > 5_000 {
            stalls.push(now - previous);
        }
        previous = now;
    }
    stalls.sort_unstable();
    let median = if stalls.is_empty() {
        0
    } else {
        percentile(&stalls, 0.5)
    };
    (stalls.len() as f64 / seconds, median)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Per-callback percentiles (ns) of one recipe.
struct Percentiles {
    p50: u64,
    p99: u64,
    p999: u64,
    max: u64,
}

impl Percentiles {
    fn of(times: &[u64]) -> Self {
        let mut t = times.to_vec();
        t.sort_unstable();
        Self {
            p50: percentile(&t, 0.5),
            p99: percentile(&t, 0.99),
            p999: percentile(&t, 0.999),
            max: *t.last().unwrap_or(&0),
        }
    }
}

/// One recipe's figures: the callbacks timed per pass, the engine's cost (each callback's
/// cheapest pass) and the first pass as measured.
struct Measurement {
    callbacks: usize,
    engine: Percentiles,
    one_pass: Percentiles,
}

/// Runs one pass of the recipe from a fresh engine over `stems` (decoded, per stem per
/// channel); returns each callback's thread CPU time in ns.
fn run_pass(
    session: &stemgraph::session::Session,
    stems: &[Vec<Vec<f64>>],
    frames: usize,
) -> Result<Vec<u64>, String> {
    let spec = session.graph_at(f64::from(RATE));
    let compiled =
        compile(&spec, CompileOptions::new(f64::from(RATE), BUFFER)).map_err(|e| e.to_string())?;
    let mut schedule = compiled.schedule;
    schedule.set_guard_nonfinite(true);
    let latency = schedule.latency();
    let (mut engine, _control) = LiveEngine::new(schedule, latency);
    let mut times = Vec::with_capacity(frames / BUFFER);
    let mut pos = 0;
    while pos + BUFFER <= frames {
        for (i, planes) in stems.iter().enumerate() {
            let mut input = engine.input_mut(i, BUFFER);
            for (c, plane) in planes.iter().enumerate().take(input.channels()) {
                input
                    .channel_mut(c)
                    .copy_from_slice(&plane[pos..pos + BUFFER]);
            }
        }
        let t0 = thread_cpu_ns();
        let out = engine.process(BUFFER);
        std::hint::black_box(out.channel(0)[0]);
        times.push(thread_cpu_ns() - t0);
        pos += BUFFER;
    }
    Ok(times)
}

/// Measures one recipe over `passes` passes of `seconds` each.
fn measure(recipe: &Path, seconds: f64, passes: usize) -> Result<Measurement, String> {
    let session = load_recipe(recipe).map_err(|e| e.to_string())?;
    // The stems, decoded up front (the live player streams them on another thread).
    let frames = (seconds * f64::from(RATE)) as usize;
    let mut stems: Vec<Vec<Vec<f64>>> = Vec::new();
    for stem in &session.stems {
        let (mut s, _) = StemStream::open(
            &stem.path,
            &StreamOptions {
                target_rate: RATE,
                target_channels: stem.channels,
                length_frames: Some(frames as u64),
            },
        )
        .map_err(|e| e.to_string())?;
        let mut planes = vec![vec![0.0; frames]; stem.channels];
        let mut refs: Vec<&mut [f64]> = planes.iter_mut().map(|p| p.as_mut_slice()).collect();
        s.read_block(&mut refs, frames).map_err(|e| e.to_string())?;
        stems.push(planes);
    }
    let first = run_pass(&session, &stems, frames)?;
    let mut cheapest = first.clone();
    for _ in 1..passes {
        let times = run_pass(&session, &stems, frames)?;
        for (c, t) in cheapest.iter_mut().zip(times) {
            *c = (*c).min(t);
        }
    }
    // The first second warms caches and settles glides: leave it out.
    let skip = (RATE as usize / BUFFER).min(first.len() / 2);
    Ok(Measurement {
        callbacks: first.len() - skip,
        engine: Percentiles::of(&cheapest[skip..]),
        one_pass: Percentiles::of(&first[skip..]),
    })
}

fn main() {
    // The AVX2 builds, as the command line runs them (meters decide for themselves).
    stemgraph::dsp::simd::init();
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    // `cargo bench` passes `--bench`; under `cargo test --all-targets` this is a smoke run.
    let smoke = !args.iter().any(|a| a == "--bench");
    let seconds: f64 = value("--seconds")
        .and_then(|s| s.parse().ok())
        .unwrap_or(if smoke { 2.0 } else { 60.0 });
    let passes: usize = value("--passes")
        .and_then(|s| s.parse().ok())
        .unwrap_or(3)
        .max(1);
    let tmp;
    let dir: PathBuf = match value("--stems-dir") {
        Some(d) => PathBuf::from(d),
        None => {
            tmp = tempfile::tempdir().expect("a temporary folder");
            tmp.path().to_path_buf()
        }
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (name, stems) in [("demo", 4), ("demo6", 6), ("demo8", 8)] {
        let d = dir.join(name);
        if !d.join("stems").join("drums.wav").exists() {
            let opts = DemoOptions {
                seconds: seconds + 2.0,
                stems,
                ..DemoOptions::default()
            };
            write_demo(&d, &opts).expect("demo stems");
        }
    }
    std::fs::create_dir_all(dir.join("scripts")).expect("scripts folder");
    let mut recipes = Vec::new();
    for entry in std::fs::read_dir(root.join("scripts")).expect("scripts/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "lua") {
            let name = path.file_name().expect("a name").to_owned();
            // demo.lua lives beside its stems; the others in scripts/, next to ../demo*.
            let dest = if name == "demo.lua" {
                dir.join("demo").join(&name)
            } else {
                dir.join("scripts").join(&name)
            };
            std::fs::copy(&path, &dest).expect("copy the recipe");
            recipes.push(dest);
        }
    }
    // The full mastering chain of benches/compare (workload M: six strips, 8x true-peak limiter)
    // on six demo stems.
    let m = dir.join("demo6").join("mastering.lua");
    std::fs::copy(root.join("benches/compare/mastering.lua"), &m).expect("copy mastering.lua");
    recipes.sort();
    recipes.push(m);
    let deadline_ns = BUFFER as f64 / f64::from(RATE) * 1e9;
    println!(
        "Real-time callback (`LiveEngine::process`, {BUFFER}-frame buffers at {} kHz, deadline \
         {:.3} ms; thread CPU time per callback over {seconds:.0} s of each example recipe, the \
         first second left out; each callback's cheapest of {passes} passes, which leaves out \
         the machine's interrupts and keeps the engine's own heavy callbacks; `p99.9, one pass`: \
         the first pass as measured; SIMD path: {}):",
        RATE / 1000,
        deadline_ns / 1e6,
        stemgraph::dsp::simd::path_name()
    );
    let (stalls_per_s, stall_ns) = stall_probe(if smoke { 0.1 } else { 2.0 });
    println!();
    println!(
        "This machine, a thread spinning on its CPU clock for {} s: {stalls_per_s:.0} stalls a \
         second over 5 µs, median {:.1} µs, charged to the thread as its CPU time.",
        if smoke { 0.1 } else { 2.0 },
        stall_ns as f64 / 1e3
    );
    println!();
    println!(
        "| recipe | callbacks | p50 | p99 | p99.9 | max | p99.9, one pass | p99.9 / deadline |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let us = |ns: u64| ns as f64 / 1e3;
    for r in &recipes {
        let name = r.file_name().unwrap().to_string_lossy();
        match measure(r, seconds, passes) {
            Ok(m) => println!(
                "| {name} | {} | {:.1} µs | {:.1} µs | {:.1} µs | {:.1} µs | {:.1} µs | {:.1} % |",
                m.callbacks,
                us(m.engine.p50),
                us(m.engine.p99),
                us(m.engine.p999),
                us(m.engine.max),
                us(m.one_pass.p999),
                100.0 * m.engine.p999 as f64 / deadline_ns
            ),
            Err(e) => println!("| {name} | error: {e} | | | | | | |"),
        }
    }
}
