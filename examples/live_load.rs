//! CPU load of the live callback: thread CPU time per callback against its deadline.
//!
//! For each recipe (default: every `scripts/*.lua`, plus a generated 8-stem recipe) and each
//! buffer size (64, 128, 256 frames), runs the real callback body (`AudioSide::render`) on a
//! thread paced like a device at 48 kHz for a few seconds, with the streamer, the meters and
//! the loudness worker running, and a structural reload (master bypass on/off, a crossfade)
//! every second. Missing stems are generated (noise). Prints p50 / p99 / p99.9 / max of the
//! thread CPU time per callback, and p99.9 as a share of the deadline.
//!
//!     cargo run --release --example live_load -- [SECONDS] [RECIPE...]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stemgraph::live::control::{start, Command, LiveConfig};

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn write_noise(path: &Path, seconds: usize, seed: u64) {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).unwrap();
    }
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 48_000,
        bits_per_sample: 24,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    let mut x = seed.max(1);
    for _ in 0..seconds * 48_000 * 2 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        w.write_sample(((x >> 40) as i32 - (1 << 23)) / 8).unwrap();
    }
    w.finalize().unwrap();
}

const EIGHT_STEMS: &str = r#"
local s = session { title = "8 stems", reference = "stems/mix.wav" }
local master = s:bus "master"
for i, name in ipairs { "kick", "snare", "hats", "bass", "keys", "pads", "lead", "vox" } do
  s:stem(name, "stems/" .. name .. ".wav", { gain_db = -1 })
    :chain { gain { gain_db = 0.5 }, pan { pan = (i - 4.5) / 5 } }:to(master)
end
master:chain { gain { gain_db = -2 }, pan { pan = 0 } }:to(s:output "main")
return s
"#;

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn measure(recipe: &Path, buffer: usize, seconds: f64) -> String {
    let session = stemgraph::script::load_recipe(recipe).unwrap();
    let config = LiveConfig {
        buffer_frames: buffer,
        watch: false,
        ..LiveConfig::default()
    };
    let (mut ctl, mut audio) = start(session, &config).unwrap();
    ctl.wait_ready(Duration::from_secs(5));
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let callbacks = (seconds * 48_000.0 / buffer as f64) as usize;
    let device = std::thread::Builder::new()
        .name("device".into())
        .spawn(move || {
            let mut out = vec![0f32; buffer * 2];
            let mut cpu = Vec::with_capacity(callbacks);
            let period = Duration::from_secs_f64(buffer as f64 / 48_000.0);
            let t0 = Instant::now();
            for k in 0..callbacks {
                let due = t0 + period * k as u32;
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let c0 = thread_cpu_ns();
                audio.render(&mut out, 2, Duration::ZERO);
                cpu.push(thread_cpu_ns() - c0);
                if stop2.load(Ordering::Relaxed) {
                    break;
                }
            }
            cpu
        })
        .unwrap();
    let t0 = Instant::now();
    let mut next_reload = t0 + Duration::from_secs(1);
    let mut reloads = 0;
    while !device.is_finished() {
        ctl.tick(Instant::now());
        if Instant::now() >= next_reload {
            ctl.command(Command::ToggleBypass);
            reloads += 1;
            next_reload += Duration::from_secs(1);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, Ordering::Relaxed);
    let mut cpu = device.join().unwrap();
    ctl.tick(Instant::now());
    cpu.sort_unstable();
    let deadline_us = buffer as f64 * 1e6 / 48_000.0;
    let us = |ns: u64| ns as f64 / 1000.0;
    let p999 = percentile(&cpu, 0.999);
    format!(
        "{:>5} | {:>8.0} | {:>6.1} | {:>6.1} | {:>7.1} | {:>7.1} | {:>6.2}% | {:>5} | {:>7} | {}",
        buffer,
        deadline_us,
        us(percentile(&cpu, 0.5)),
        us(percentile(&cpu, 0.99)),
        us(p999),
        us(*cpu.last().unwrap()),
        us(p999) / deadline_us * 100.0,
        cpu.len(),
        reloads,
        ctl.status().underruns.load(Ordering::Relaxed)
    )
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seconds: f64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(8.0);
    let mut recipes: Vec<PathBuf> = args.iter().skip(1).map(PathBuf::from).collect();
    if recipes.is_empty() {
        let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts");
        let mut found: Vec<PathBuf> = std::fs::read_dir(scripts)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "lua"))
            .collect();
        found.sort();
        recipes.extend(found);
    }
    let work = tempfile::tempdir().unwrap();
    let mut runs: Vec<(String, PathBuf)> = Vec::new();
    for (i, r) in recipes.iter().enumerate() {
        let dir = work.path().join(format!("r{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        let copy = dir.join(r.file_name().unwrap());
        std::fs::copy(r, &copy).unwrap();
        runs.push((r.display().to_string(), copy));
    }
    let eight = work.path().join("eight/eight.lua");
    std::fs::create_dir_all(eight.parent().unwrap()).unwrap();
    std::fs::write(&eight, EIGHT_STEMS).unwrap();
    for (i, n) in [
        "kick", "snare", "hats", "bass", "keys", "pads", "lead", "vox", "mix",
    ]
    .iter()
    .enumerate()
    {
        write_noise(
            &work.path().join(format!("eight/stems/{n}.wav")),
            20,
            100 + i as u64,
        );
    }
    runs.push(("generated 8-stem recipe".into(), eight));
    for (name, recipe) in &runs {
        // Generate the stems (and the reference) the recipe names.
        let text = std::fs::read_to_string(recipe).unwrap();
        let dir = recipe.parent().unwrap();
        let mut seed = 1;
        for part in text.split('"') {
            if part.ends_with(".wav") && !part.contains('{') {
                let path = dir.join(part);
                if !path.exists() {
                    write_noise(&path, 20, seed);
                    seed += 1;
                }
            }
        }
        println!("\n{name}");
        println!(
            "frames | deadline µs | p50 µs | p99 µs | p99.9 µs | max µs | p99.9/deadline | callbacks | reloads | underruns"
        );
        for buffer in [64, 128, 256] {
            println!("{}", measure(recipe, buffer, seconds));
        }
    }
}
