//! Save-to-audible latency of hot reload, through the real output device.
//!
//! Plays a generated 30-second song on the default device with the file watcher on, saves the
//! recipe ten times (write a temporary file, rename it over, as editors do), and for each save
//! measures the time from the rename to the moment the swap is heard: the engine's swap sample
//! converted to time with the callback's clock, plus the engine's fixed latency and the device
//! latency cpal reports. Prints each edit and the median.
//!
//! On a machine without a sound card, start a private PulseAudio first:
//!
//!     eval export $(.ci/pulse-start)
//!     cargo run --release --example live_latency -- [BUFFER_FRAMES] [EDITS]

use std::path::Path;
use std::time::{Duration, Instant};
use stemgraph::live::control::{start, LiveConfig, LiveEvent};
use stemgraph::live::output;

fn write_noise(path: &Path, seconds: usize, seed: u64) {
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

fn recipe(gain_db: f64) -> String {
    format!(
        "local s = session {{ title = \"latency\" }}\n\
         local master = s:bus \"master\"\n\
         s:stem(\"a\", \"a.wav\", {{ gain_db = {gain_db} }}):to(master)\n\
         s:stem(\"b\", \"b.wav\"):chain {{ pan {{ pan = 0.2 }} }}:to(master)\n\
         master:chain {{ gain {{ gain_db = -3 }} }}:to(s:output \"main\")\n\
         return s\n"
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let buffer: u32 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(256);
    let edits: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(10);
    let dir = tempfile::tempdir().unwrap();
    write_noise(&dir.path().join("a.wav"), 30, 1);
    write_noise(&dir.path().join("b.wav"), 30, 2);
    let song = dir.path().join("song.lua");
    std::fs::write(&song, recipe(0.0)).unwrap();

    let session = stemgraph::script::load_recipe(&song).unwrap();
    let config = LiveConfig {
        buffer_frames: buffer as usize,
        loudness_match: false,
        ..LiveConfig::default()
    };
    let (mut ctl, audio) = start(session, &config).unwrap();
    ctl.wait_ready(Duration::from_secs(5));
    let request = output::DeviceRequest {
        name: None,
        rate: 48_000,
        buffer_frames: buffer,
        realtime: true,
    };
    let out = output::open(&request, audio).unwrap();
    println!(
        "device {} at {} Hz, {} frames per callback; engine latency {:.1} ms",
        out.info.device,
        out.info.sample_rate,
        buffer,
        ctl.live_latency() as f64 / 48.0
    );
    let run = |ctl: &mut stemgraph::live::control::Controller, d: Duration| {
        let t = Instant::now();
        let mut swaps = Vec::new();
        while t.elapsed() < d {
            for e in ctl.tick(Instant::now()) {
                if let LiveEvent::Swapped(s) = e {
                    swaps.push(s);
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        swaps
    };
    // PulseAudio's ALSA plugin may take a second or two to start moving: wait until the
    // callback has played half a second.
    let t = Instant::now();
    while ctl
        .status()
        .position
        .load(std::sync::atomic::Ordering::Relaxed)
        < 24_000
        && t.elapsed() < Duration::from_secs(10)
    {
        run(&mut ctl, Duration::from_millis(10));
    }
    run(&mut ctl, Duration::from_millis(500));
    let mut latencies = Vec::new();
    for k in 1..=edits {
        let tmp = dir.path().join(".song.lua.tmp");
        std::fs::write(&tmp, recipe(-0.5 * k as f64)).unwrap();
        let saved = Instant::now();
        std::fs::rename(&tmp, &song).unwrap();
        let mut swaps = run(&mut ctl, Duration::from_millis(400));
        let t = Instant::now();
        while swaps.is_empty() && t.elapsed() < Duration::from_secs(3) {
            swaps = run(&mut ctl, Duration::from_millis(50));
        }
        run(&mut ctl, Duration::from_millis(200));
        let Some(s) = swaps.last() else {
            println!("edit {k}: no swap");
            continue;
        };
        let Some(heard) = s.audible_at else {
            println!("edit {k}: no clock");
            continue;
        };
        let ms = heard.saturating_duration_since(saved).as_secs_f64() * 1000.0;
        println!(
            "edit {k:2}: swap at sample {:>8}, reload {:.1} ms, saved → audible {ms:.1} ms",
            s.position,
            s.reload_took.map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0),
        );
        latencies.push(ms);
    }
    latencies.sort_by(f64::total_cmp);
    if !latencies.is_empty() {
        println!(
            "median save → audible over {} edits: {:.1} ms (min {:.1}, max {:.1})",
            latencies.len(),
            latencies[latencies.len() / 2],
            latencies[0],
            latencies[latencies.len() - 1]
        );
    }
    let c = ctl.status().clock.read();
    if let Some(c) = c {
        println!(
            "device latency reported by cpal: {:.1} ms",
            c.device_latency.as_secs_f64() * 1000.0
        );
    }
    drop(out);
}
