//! Hot reload of recipes with a third-party LV2 plugin (x42 balance, from `x42-plugins`) through
//! the real reload path and the simulated device of `tests/live_reload.rs`, under the allocation
//! guard: a reload that changes a plugin parameter glides without a click (the running instance
//! moves over, no crossfade), one that adds a plugin crossfades without a click, and one that
//! names an unknown plugin keeps the last good graph and reports the recipe's line.
mod common;
mod plugin_util;

use common::{alloc_violations, Rng};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use stemgraph::live::audio::AudioSide;
use stemgraph::live::control::{start, Controller, LiveConfig, LiveEvent, SwapRecord};
use stemgraph::render::in_memory::render_in_memory;
use stemgraph::script::load_recipe;

const FS: u32 = 48_000;
const BLOCK: usize = 256;
const SONG: usize = 3 * FS as usize;

/// Writes a 24-bit stereo WAV.
fn write_wav(path: &Path, ch: &[Vec<f64>; 2]) {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: FS,
        bits_per_sample: 24,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..ch[0].len() {
        for c in ch {
            w.write_sample((c[i] * 8_388_608.0).round() as i32).unwrap();
        }
    }
    w.finalize().unwrap();
}

/// Reads a WAV the way the decoder does (24-bit → f64 by 2^-23).
fn read_wav(path: &Path) -> Vec<Vec<f64>> {
    let mut r = hound::WavReader::open(path).unwrap();
    let ch = r.spec().channels as usize;
    let s: Vec<i32> = r.samples::<i32>().map(|x| x.unwrap()).collect();
    (0..ch)
        .map(|c| {
            s.iter()
                .skip(c)
                .step_by(ch)
                .map(|&v| f64::from(v) / 8_388_608.0)
                .collect()
        })
        .collect()
}

struct Song {
    dir: tempfile::TempDir,
}

impl Song {
    /// A song folder with three stems: noise, a tone, and another noise for stem swaps.
    fn new() -> Song {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("stems")).unwrap();
        let mut rng = Rng::new(7);
        let noise: Vec<f64> = (0..SONG).map(|_| 0.2 * rng.next_f64()).collect();
        let noise_r: Vec<f64> = (0..SONG).map(|_| 0.2 * rng.next_f64()).collect();
        write_wav(&dir.path().join("stems/noise.wav"), &[noise, noise_r]);
        let tone: Vec<f64> = (0..SONG)
            .map(|i| 0.3 * (2.0 * std::f64::consts::PI * 220.0 * i as f64 / 48_000.0).sin())
            .collect();
        write_wav(&dir.path().join("stems/tone.wav"), &[tone.clone(), tone]);
        let other: Vec<f64> = (0..SONG).map(|_| 0.1 * rng.next_f64()).collect();
        write_wav(&dir.path().join("stems/other.wav"), &[other.clone(), other]);
        Song { dir }
    }

    fn recipe(&self) -> PathBuf {
        self.dir.path().join("song.lua")
    }

    /// Saves the recipe the way editors do: write a temporary file, rename it over.
    fn save(&self, text: &str) {
        let tmp = self.dir.path().join(".song.lua.swp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, self.recipe()).unwrap();
    }

    /// What the recipe renders offline, latency-trimmed (interleaved f32 as the device gets it).
    fn offline(&self, text: &str) -> Vec<f32> {
        let path = self.dir.path().join("offline.lua");
        std::fs::write(&path, text).unwrap();
        let session = load_recipe(&path).unwrap();
        let stems: Vec<Vec<Vec<f64>>> = session.stems.iter().map(|s| read_wav(&s.path)).collect();
        let out = render_in_memory(&session.graph_at(48_000.0), &stems, 48_000.0, 1024).unwrap();
        let o = &out[0];
        (0..o[0].len())
            .flat_map(|i| [o[0][i] as f32, o[o.len() - 1][i] as f32])
            .collect()
    }
}

fn config(watch: bool) -> LiveConfig {
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
fn pull(audio: &mut AudioSide, ctl: &Controller, blocks: usize, out: &mut Vec<f32>) -> u32 {
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

fn max_jump(x: &[f32]) -> f32 {
    let mut m = 0f32;
    for c in 0..2 {
        let ch: Vec<f32> = x.iter().skip(c).step_by(2).copied().collect();
        for w in ch.windows(2) {
            m = m.max((w[1] - w[0]).abs());
        }
    }
    m
}

fn swapped(events: &[LiveEvent]) -> Vec<SwapRecord> {
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
fn diff(live: &[f32], expected: &[f32], offset: i64, from: usize, to: usize) -> f32 {
    (from..to)
        .flat_map(|n| (0..2).map(move |c| (n, c)))
        .map(|(n, c)| {
            let e = (n as i64 - offset) as usize;
            (live[2 * n + c] - expected[2 * e + c]).abs()
        })
        .fold(0.0, f32::max)
}

struct Rig {
    song: Song,
    ctl: Controller,
    audio: AudioSide,
    out: Vec<f32>,
    events: Vec<LiveEvent>,
    violations: u32,
}

impl Rig {
    fn new(text: &str, watch: bool) -> Rig {
        Self::with(Song::new(), text, config(watch))
    }

    fn with(song: Song, text: &str, config: LiveConfig) -> Rig {
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

    fn play(&mut self, blocks: usize) {
        for _ in 0..blocks {
            self.violations += pull(&mut self.audio, &self.ctl, 1, &mut self.out);
            let events = self.ctl.tick(Instant::now());
            self.events.extend(events);
        }
    }

    fn reload(&mut self) -> Vec<LiveEvent> {
        let e = self.ctl.reload(None);
        self.events.extend(e.clone());
        e
    }

    fn frames(&self) -> usize {
        self.out.len() / 2
    }
}

const BALANCE: &str = "http://gareus.org/oss/lv2/balance";
/// The test bundle's stereo gain, which does not smooth its control (tests/fixtures/lv2).
const GAIN2: &str = "urn:stemgraph:test:gain2";

/// Whether x42 balance is installed (under CI a missing plugin fails the test); the test bundle
/// is on `LV2_PATH` from here on.
fn installed() -> bool {
    plugin_util::in_process();
    match stemgraph::dsp::plugin::lv2::find(BALANCE) {
        Ok(_) => true,
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => panic!("{e}"),
        Err(e) => {
            eprintln!("skipped: {e}");
            false
        }
    }
}

/// The tone stem into the master, with `chain` on the master (Lua, may be empty).
fn recipe(chain: &str) -> String {
    format!(
        "local s = session {{ title = \"t\" }}\n\
         local master = s:bus \"master\"\n\
         s:stem(\"tone\", \"stems/tone.wav\"):to(master)\n\
         master:chain {{ gain {{ gain_db = -1 }}, {chain} }}:to(s:output \"main\")\n\
         return s\n"
    )
}

fn trim(db: f64) -> String {
    format!("plugin {{ id = \"trim\", lv2 = \"{BALANCE}\", params = {{ trim = {db} }} }}")
}

fn gain2(gain: f64) -> String {
    format!("plugin {{ id = \"g\", lv2 = \"{GAIN2}\", params = {{ gain = {gain} }} }}")
}

/// Plays `before`, reloads `after` after 100 blocks, plays 200 more; checks the swap (a crossfade
/// or not), no click (no sample-to-sample jump over `jump` times the material's own), no
/// allocation, and the new graph once settled (to the plugin's f32).
fn reload_case(before: &str, after: &str, crossfade: bool, jump: f32) {
    let mut rig = Rig::new(before, false);
    let latency = rig.ctl.live_latency();
    rig.play(100);
    rig.song.save(after);
    let ev = rig.reload();
    assert!(
        ev.iter().any(|e| matches!(e, LiveEvent::Reloaded { .. })),
        "{ev:?}"
    );
    rig.play(200);
    let swaps = swapped(&rig.events);
    assert_eq!(swaps.len(), 1, "{:?}", rig.events);
    assert_eq!(swaps[0].crossfade, crossfade, "{:?}", swaps[0]);
    let p = swaps[0].position as usize;
    let a = rig.song.offline(before);
    let b = rig.song.offline(after);
    let fade_in = latency + 240;
    assert!(
        diff(&rig.out, &a, latency as i64, fade_in, p + latency) < 1e-6,
        "before the swap: the old graph"
    );
    assert!(
        diff(
            &rig.out,
            &a,
            latency as i64,
            p + latency,
            p + latency + 2000
        ) > 0.01,
        "no change after the swap"
    );
    let settled = p + latency + 2400;
    let d = diff(&rig.out, &b, latency as i64, settled, rig.frames());
    assert!(d < 1e-5, "after the swap: the new graph ({d})");
    let own = max_jump(&a).max(max_jump(&b));
    let live = max_jump(&rig.out[2 * fade_in..]);
    assert!(
        live <= own * jump,
        "a click: jump {live} > {jump} × material's {own}"
    );
    assert_eq!(rig.violations, 0, "the callback allocated");
}

#[test]
fn a_reload_that_changes_a_plugin_parameter_glides_without_a_click() {
    if !installed() {
        return;
    }
    reload_case(&recipe(&trim(0.0)), &recipe(&trim(-6.0)), false, 1.01);
    // A plugin that does not smooth its control relies on the host's glide: the control port
    // steps every 16 frames along the 20 ms glide, well under the click an instant -6 dB is
    // (15 times the tone's own largest step).
    reload_case(&recipe(&gain2(1.0)), &recipe(&gain2(0.5)), false, 1.5);
}

#[test]
fn a_reload_that_adds_a_plugin_crossfades_without_a_click() {
    if !installed() {
        return;
    }
    reload_case(&recipe(""), &recipe(&trim(-6.0)), true, 1.01);
    reload_case(&recipe(""), &recipe(&gain2(0.5)), true, 1.01);
}

#[test]
fn a_reload_with_an_unknown_plugin_keeps_the_last_good_graph() {
    if !installed() {
        return;
    }
    let good = recipe(&trim(-3.0));
    let mut rig = Rig::new(&good, false);
    let latency = rig.ctl.live_latency();
    rig.play(20);
    for (what, text) in [
        (
            "unknown URI",
            good.replace("oss/lv2/balance", "oss/lv2/balanse"),
        ),
        ("out of range", good.replace("trim = -3", "trim = 40")),
    ] {
        rig.song.save(&text);
        match rig.reload().as_slice() {
            [LiveEvent::ReloadFailed { error, .. }] => {
                assert!(error.contains("song.lua:4"), "{what}: {error}");
            }
            other => panic!("{what}: {other:?}"),
        }
        rig.play(20);
    }
    assert!(swapped(&rig.events).is_empty());
    let a = rig.song.offline(&good);
    assert!(diff(&rig.out, &a, latency as i64, latency + 240, rig.frames()) < 1e-6);
    assert_eq!(rig.violations, 0);
}
