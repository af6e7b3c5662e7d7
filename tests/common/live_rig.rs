//! A song folder and a simulated audio device for hot-reload tests through the real reload path
//! (the `live` feature): recipe files saved the way editors save them, the controller, the
//! streamer, and the callback body pulled block by block under the allocation guard.

use super::audio::{read_wav, write_wav24};
use super::{alloc_violations, Rng};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use stemgraph::live::audio::AudioSide;
use stemgraph::live::control::{start, Controller, LiveConfig, LiveEvent, SwapRecord};
use stemgraph::render::in_memory::render_in_memory;
use stemgraph::script::load_recipe;

pub const FS: u32 = 48_000;
pub const BLOCK: usize = 256;
pub const SONG: usize = 3 * FS as usize;

pub struct Song {
    pub dir: tempfile::TempDir,
}

impl Song {
    /// A song folder with three stems: noise, a tone, and another noise for stem swaps.
    pub fn new() -> Song {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("stems")).unwrap();
        let mut rng = Rng::new(7);
        let noise: Vec<f64> = (0..SONG).map(|_| 0.2 * rng.next_f64()).collect();
        let noise_r: Vec<f64> = (0..SONG).map(|_| 0.2 * rng.next_f64()).collect();
        write_wav24(&dir.path().join("stems/noise.wav"), &[noise, noise_r], FS);
        let tone: Vec<f64> = (0..SONG)
            .map(|i| 0.3 * (2.0 * std::f64::consts::PI * 220.0 * i as f64 / 48_000.0).sin())
            .collect();
        write_wav24(
            &dir.path().join("stems/tone.wav"),
            &[tone.clone(), tone],
            FS,
        );
        let other: Vec<f64> = (0..SONG).map(|_| 0.1 * rng.next_f64()).collect();
        write_wav24(
            &dir.path().join("stems/other.wav"),
            &[other.clone(), other],
            FS,
        );
        Song { dir }
    }

    pub fn recipe(&self) -> PathBuf {
        self.dir.path().join("song.lua")
    }

    /// Saves the recipe the way editors do: write a temporary file, rename it over.
    pub fn save(&self, text: &str) {
        let tmp = self.dir.path().join(".song.lua.swp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, self.recipe()).unwrap();
    }

    /// What the recipe renders offline, latency-trimmed (interleaved f32 as the device gets it).
    pub fn offline(&self, text: &str) -> Vec<f32> {
        let path = self.dir.path().join("offline.lua");
        std::fs::write(&path, text).unwrap();
        let session = load_recipe(&path).unwrap();
        let stems: Vec<Vec<Vec<f64>>> = session.stems.iter().map(|s| read_wav(&s.path).1).collect();
        let out = render_in_memory(&session.graph_at(48_000.0), &stems, 48_000.0, 1024).unwrap();
        let o = &out[0];
        (0..o[0].len())
            .flat_map(|i| [o[0][i] as f32, o[o.len() - 1][i] as f32])
            .collect()
    }
}

pub fn config(watch: bool) -> LiveConfig {
    LiveConfig {
        buffer_frames: BLOCK,
        crossfade_ms: 30.0,
        meters: false,
        loudness_match: false,
        watch,
        ..LiveConfig::default()
    }
}

/// The simulated device: pulls `blocks` callbacks of `BLOCK` frames, waiting for the streamer to
/// have read ahead as it would have with a real device's head start. Returns the allocation
/// violations inside the callback.
pub fn pull(audio: &mut AudioSide, ctl: &Controller, blocks: usize, out: &mut Vec<f32>) -> u32 {
    let mut buf = vec![0f32; BLOCK * 2];
    let mut violations = 0;
    for _ in 0..blocks {
        let t = Instant::now();
        while ctl.decoded_ahead() < 4 * BLOCK as i64 && t.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_micros(200));
        }
        let (_, v) = alloc_violations(|| audio.render(&mut buf, 2, Duration::ZERO));
        violations += v;
        out.extend_from_slice(&buf);
    }
    violations
}

pub fn max_jump(x: &[f32]) -> f32 {
    let mut m = 0f32;
    for c in 0..2 {
        let ch: Vec<f32> = x.iter().skip(c).step_by(2).copied().collect();
        for w in ch.windows(2) {
            m = m.max((w[1] - w[0]).abs());
        }
    }
    m
}

pub fn swapped(events: &[LiveEvent]) -> Vec<SwapRecord> {
    events
        .iter()
        .filter_map(|e| match e {
            LiveEvent::Swapped(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

/// The largest difference between output frames `from..to` of `live` and `expected` (both
/// interleaved stereo), where output frame `n` plays expected frame `n - offset`.
pub fn diff(live: &[f32], expected: &[f32], offset: i64, from: usize, to: usize) -> f32 {
    (from..to)
        .flat_map(|n| (0..2).map(move |c| (n, c)))
        .map(|(n, c)| {
            let e = (n as i64 - offset) as usize;
            (live[2 * n + c] - expected[2 * e + c]).abs()
        })
        .fold(0.0, f32::max)
}

pub struct Rig {
    pub song: Song,
    pub ctl: Controller,
    pub audio: AudioSide,
    pub out: Vec<f32>,
    pub events: Vec<LiveEvent>,
    pub violations: u32,
}

impl Rig {
    pub fn new(text: &str, watch: bool) -> Rig {
        Self::with(Song::new(), text, config(watch))
    }

    pub fn with(song: Song, text: &str, config: LiveConfig) -> Rig {
        song.save(text);
        let session = load_recipe(&song.recipe()).unwrap();
        let (ctl, audio) = start(session, &config).unwrap();
        assert!(ctl.wait_ready(Duration::from_secs(5)));
        Rig {
            song,
            ctl,
            audio,
            out: Vec::new(),
            events: Vec::new(),
            violations: 0,
        }
    }

    pub fn play(&mut self, blocks: usize) {
        for _ in 0..blocks {
            self.violations += pull(&mut self.audio, &self.ctl, 1, &mut self.out);
            let events = self.ctl.tick(Instant::now());
            self.events.extend(events);
        }
    }

    pub fn tick(&mut self) {
        let events = self.ctl.tick(Instant::now());
        self.events.extend(events);
    }

    pub fn reload(&mut self) -> Vec<LiveEvent> {
        let e = self.ctl.reload(None);
        self.events.extend(e.clone());
        e
    }

    pub fn frames(&self) -> usize {
        self.out.len() / 2
    }
}
