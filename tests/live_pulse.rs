//! End to end through a real sound server: `stemgraph play` on a private PulseAudio null sink,
//! recorded from the sink's monitor.
//!
//! - With the recipe rewritten during playback: the played signal is the song (found by
//!   cross-correlation), sample for sample; it changes at the stream sample the swap log names
//!   (within the glide); the change is the one written (one stem 6 dB down, ±0.5 dB); and
//!   nothing drops out.
//! - At the default buffer size on an idle machine: no dropout heard and none reported, and
//!   playback starts at `--from` (the first sound is that song frame; the playhead has advanced
//!   by the time played when it stops).
//! - With a busy loop on both cores for the whole run, and the player stopped (SIGSTOP) three
//!   times for 150 ms: the underruns the player reports equal the dropouts found in the
//!   recording, within one.
//!
//! Needs `pulseaudio`, `pactl` and `parec` (`.ci/install-deps test`). Without them the test fails
//! when `CI=true` and is skipped, loudly, otherwise. It is `#[ignore]`d so that it never runs
//! beside other tests (the null sink plays in real time): `make test` runs it alone afterwards
//! with `cargo test --test live live_pulse -- --ignored --test-threads=1`.
use crate::common;

use common::audio::{read_wav, write_wav24};
use common::Rng;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use stemgraph::render::in_memory::render_in_memory;
use stemgraph::script::load_recipe;

const FS: usize = 48_000;
/// Long enough that a plugin's first compile, which waits for the installed plugins'
/// descriptions (seconds, longer on a loaded machine), swaps before the song ends.
const SONG_S: usize = 12;

fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn recipe(noise_db: f64, tone: bool) -> String {
    format!(
        "local s = session {{ title = \"pulse\" }}\n\
         local master = s:bus \"master\"\n\
         s:stem(\"noise\", \"stems/noise.wav\", {{ gain_db = {noise_db} }}):to(master)\n\
         s:stem(\"tone\", \"stems/tone.wav\"){}\n\
         master:chain {{ gain {{ gain_db = -2 }} }}:to(s:output \"main\")\n\
         return s\n",
        if tone { ":to(master)" } else { "" }
    )
}

/// Left channel of the offline render of `text` (latency-trimmed), as the device gets it.
fn offline(dir: &Path, text: &str) -> Vec<f32> {
    let path = dir.join("offline.lua");
    std::fs::write(&path, text).unwrap();
    let session = load_recipe(&path).unwrap();
    let stems: Vec<Vec<Vec<f64>>> = session.stems.iter().map(|s| read_wav(&s.path).1).collect();
    let out = render_in_memory(&session.graph_at(FS as f64), &stems, FS as f64, 1024).unwrap();
    out[0][0].iter().map(|&x| x as f32).collect()
}

/// Kills a child we started (by its handle) and reaps it.
struct Reaper(Option<Child>);

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A private PulseAudio server with a null sink, stopped on drop; `None` when the tools are
/// missing outside CI (the test is then skipped, loudly).
struct Pulse {
    runtime: tempfile::TempDir,
    script: PathBuf,
}

impl Pulse {
    fn start() -> Option<Pulse> {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        let missing: Vec<&str> = ["pulseaudio", "pactl", "parec"]
            .into_iter()
            .filter(|t| !have(t))
            .collect();
        if !missing.is_empty() {
            let msg = format!(
                "live_pulse: {} missing; install with `.ci/install-deps test`",
                missing.join(", ")
            );
            if ci {
                panic!("{msg}");
            }
            eprintln!("\n!!!!!!!! SKIPPED: {msg} !!!!!!!!\n");
            return None;
        }
        let runtime = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/pulse-start");
        let started = Command::new(&script)
            .arg(runtime.path())
            .output()
            .expect("run .ci/pulse-start");
        assert!(
            started.status.success(),
            "pulse-start: {}",
            String::from_utf8_lossy(&started.stderr)
        );
        Some(Pulse { runtime, script })
    }

    fn dir(&self) -> &Path {
        self.runtime.path()
    }

    /// Records the sink's monitor into `raw`, once it delivers.
    fn record(&self, raw: &Path) -> Reaper {
        let rec = Command::new("parec")
            .args([
                "-d",
                "testsink.monitor",
                "--rate=48000",
                "--channels=2",
                "--format=float32le",
                "--latency-msec=20",
            ])
            .arg(raw)
            .env("XDG_RUNTIME_DIR", self.dir())
            .env_remove("PULSE_SERVER")
            .spawn()
            .expect("parec");
        let rec = Reaper(Some(rec));
        let t = Instant::now();
        while std::fs::metadata(raw).map_or(0, |m| m.len()) < 200 * 48 * 8 {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "parec records nothing"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        rec
    }
}

impl Drop for Pulse {
    fn drop(&mut self) {
        let _ = Command::new(&self.script)
            .arg("--stop")
            .arg(self.runtime.path())
            .status();
    }
}

/// The song: noise and a tone, `SONG_S` seconds, in a temporary folder with its recipe.
fn song() -> tempfile::TempDir {
    let song = tempfile::tempdir().unwrap();
    let dir = song.path();
    std::fs::create_dir(dir.join("stems")).unwrap();
    let mut rng = Rng::new(11);
    let n = SONG_S * FS;
    let noise: [Vec<f64>; 2] = [
        (0..n).map(|_| 0.25 * rng.next_f64()).collect(),
        (0..n).map(|_| 0.25 * rng.next_f64()).collect(),
    ];
    write_wav24(&dir.join("stems/noise.wav"), &noise, FS as u32);
    let tone: Vec<f64> = (0..n)
        .map(|i| 0.2 * (2.0 * std::f64::consts::PI * 330.0 * i as f64 / FS as f64).sin())
        .collect();
    write_wav24(
        &dir.join("stems/tone.wav"),
        &[tone.clone(), tone],
        FS as u32,
    );
    std::fs::write(dir.join("song.lua"), recipe(0.0, true)).unwrap();
    song
}

/// `stemgraph play` with `--no-tui`, its stdout lines collected.
struct Player {
    child: Reaper,
    rx: mpsc::Receiver<String>,
    log: Vec<String>,
}

impl Player {
    fn spawn(pulse: &Pulse, dir: &Path, args: &[&str]) -> Player {
        let mut child = Command::new(env!("CARGO_BIN_EXE_stemgraph"))
            .args(["play", "song.lua", "--no-tui"])
            .args(args)
            .current_dir(dir)
            .env("XDG_RUNTIME_DIR", pulse.dir())
            .env_remove("PULSE_SERVER")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("stemgraph play");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Player {
            child: Reaper(Some(child)),
            rx,
            log: Vec::new(),
        }
    }

    fn pid(&self) -> i32 {
        self.child.0.as_ref().map_or(0, |c| c.id() as i32)
    }

    /// Waits (at most 15 s) for a line containing `what`.
    fn wait_for(&mut self, what: &str) -> String {
        let t = Instant::now();
        loop {
            let left = Duration::from_secs(15).saturating_sub(t.elapsed());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if line.contains(what) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no `{what}` from stemgraph play; log:\n{}",
                    self.log.join("\n")
                ),
            }
        }
    }

    /// Waits for the end and a clean exit; the whole log.
    fn finish(mut self) -> String {
        self.wait_for("stopped:");
        let status = self.child.0.take().unwrap().wait().unwrap();
        let log = self.log.join("\n");
        assert!(status.success(), "log:\n{log}");
        log
    }
}

/// The underruns of the `stopped:` line (`... | underruns N ...`).
fn reported_underruns(log: &str) -> usize {
    let line = log.lines().find(|l| l.starts_with("stopped:")).unwrap();
    let rest = &line[line.find("underruns ").unwrap_or_else(|| panic!("{line}")) + 10..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// The playhead of the `stopped:` line, in seconds (`stopped: playing M:SS.S/...`).
fn stopped_at(log: &str) -> f64 {
    let line = log.lines().find(|l| l.starts_with("stopped:")).unwrap();
    let clock = line.split_whitespace().nth(2).unwrap();
    let clock = clock.split('/').next().unwrap();
    let (m, s) = clock.split_once(':').unwrap();
    m.parse::<f64>().unwrap() * 60.0 + s.parse::<f64>().unwrap()
}

/// The left channel of a recording.
fn recording(raw: &Path) -> Vec<f32> {
    let bytes = std::fs::read(raw).unwrap();
    bytes
        .chunks_exact(8)
        .map(|f| f32::from_le_bytes([f[0], f[1], f[2], f[3]]))
        .collect()
}

/// Dropouts in what was played (between the first and the last sound): runs of at least 16
/// zero samples (the song has none), one dropout for runs less than the player's
/// `DROPOUT_MERGE` (50 ms) of sound apart (the stutter of a device restarting is heard as one
/// dropout). Start and length of each.
fn dropouts(rec: &[f32]) -> Vec<(usize, usize)> {
    let (Some(first), Some(last)) = (
        rec.iter().position(|&x| x != 0.0),
        rec.iter().rposition(|&x| x != 0.0),
    ) else {
        return Vec::new();
    };
    let merge = (stemgraph::live::xruns::DROPOUT_MERGE.as_secs_f64() * FS as f64) as usize;
    let mut runs: Vec<(usize, usize)> = Vec::new();
    let mut i = first;
    while i <= last {
        if rec[i] != 0.0 {
            i += 1;
            continue;
        }
        let j = (i..=last).find(|&j| rec[j] != 0.0).unwrap_or(last + 1);
        if j - i >= 16 {
            match runs.last_mut() {
                Some((s, n)) if i - (*s + *n) < merge => *n = j - *s,
                _ => runs.push((i, j - i)),
            }
        }
        i = j;
    }
    runs
}

/// Where song frame `k` of `song` is in `rec`: the lag (recording index minus song frame) at
/// which a 4096-frame window from `k` matches best, searched over `lags`.
fn lag_of(song: &[f32], rec: &[f32], k: usize, lags: std::ops::Range<i64>) -> (i64, f64) {
    let wn = 4096;
    let window = &song[k..k + wn];
    let energy: f64 = window.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
    let (best, score) = lags
        .filter(|&lag| k as i64 + lag >= 0 && (k as i64 + lag) as usize + wn <= rec.len())
        .map(|lag| {
            let at = (k as i64 + lag) as usize;
            let c: f64 = window
                .iter()
                .zip(&rec[at..at + wn])
                .map(|(&x, &y)| f64::from(x) * f64::from(y))
                .sum();
            (lag, c)
        })
        .fold((0, f64::MIN), |m, v| if v.1 > m.1 { v } else { m });
    (best, score / energy)
}

/// Busy loops on `threads` threads until dropped or `max` has passed (a hard stop).
struct Hog {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<u64>>,
}

impl Hog {
    fn start(threads: usize, max: Duration) -> Hog {
        let stop = Arc::new(AtomicBool::new(false));
        let deadline = Instant::now() + max;
        let threads = (0..threads)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x = 1u64;
                    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                        for _ in 0..10_000 {
                            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                        }
                    }
                    x
                })
            })
            .collect();
        Hog { stop, threads }
    }
}

impl Drop for Hog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = std::hint::black_box(t.join());
        }
    }
}

/// What [`reload_end_to_end`] found: the recording, where the song landed in it, the swap's
/// stream sample, the crossfade, where the checks ended, and the old recipe's render.
struct Reloaded {
    rec: Vec<f32>,
    lag: i64,
    p: usize,
    xfade: usize,
    end: usize,
    a: Vec<f32>,
}

impl Reloaded {
    /// The recorded sample of song frame `k`.
    fn at(&self, k: usize) -> Option<f32> {
        self.rec.get((k as i64 + self.lag) as usize).copied()
    }
}

/// Plays `before` (written as `song.lua` in `song()`'s folder) for `seconds`, rewrites it to
/// `after` `rewrite_ms` in, and checks: no dropout or underrun, the old recipe sample for sample before the
/// logged swap, the change starting at it (within a glide or crossfade), the new recipe sample
/// for sample after, no jump the song does not have.
fn reload_end_to_end(
    pulse: &Pulse,
    dir: &Path,
    (before, after): (&str, &str),
    seconds: &str,
    rewrite_ms: u64,
) -> Reloaded {
    let n = SONG_S * FS;
    let song_lua = dir.join("song.lua");
    std::fs::write(&song_lua, before).unwrap();

    // Record the monitor first, and wait until it delivers.
    let raw = dir.join("out.raw");
    let mut rec = pulse.record(&raw);

    // Play (at the default buffer size), and rewrite the recipe.
    let mut player = Player::spawn(pulse, dir, &["--seconds", seconds]);
    player.wait_for("playing song.lua");
    std::thread::sleep(Duration::from_millis(rewrite_ms));
    let tmp = dir.join(".song.lua.tmp");
    std::fs::write(&tmp, after).unwrap();
    std::fs::rename(&tmp, &song_lua).unwrap();
    let swap = player.wait_for("swap #");
    let log = player.finish();
    std::thread::sleep(Duration::from_millis(300));
    drop(rec.0.take().map(|mut c| {
        let _ = c.kill();
        c.wait()
    }));
    // Neither the streamer nor the device ran dry.
    assert!(
        !log.lines()
            .any(|l| l.contains("problem:") && l.contains("underrun")),
        "{log}"
    );
    assert_eq!(reported_underruns(&log), 0, "{log}");
    assert!(swap.contains("underruns so far 0"), "{swap}");
    assert!(!log.contains("reload failed"), "{log}");

    // "swap #1 at stream sample P (output sample Q), …"
    let number_after = |key: &str| -> usize {
        let rest = &swap[swap.find(key).unwrap_or_else(|| panic!("{swap}")) + key.len()..];
        rest.split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let p = number_after("stream sample ");

    let rec = recording(&raw);
    let a = offline(dir, before);
    let b = offline(dir, after);

    // Where song frame k landed: cross-correlate a window of the song (1 s in) with the
    // recording.
    let (lag, score) = lag_of(&a, &rec, FS, -(FS as i64)..rec.len() as i64);
    assert!(
        score > 0.99,
        "the song is not in the recording (correlation {score})"
    );
    let at = |k: usize| rec.get((k as i64 + lag) as usize).copied();

    // Before the swap: the old recipe, sample for sample (the server is bit-exact in float).
    let start = FS / 2;
    let before = (start..p)
        .map(|k| (at(k).unwrap() - a[k]).abs())
        .fold(0.0, f32::max);
    assert!(
        before < 1e-6,
        "before the swap the recording differs by {before}"
    );
    // It changes at the logged sample, within the glide (20 ms) or a crossfade (30 ms).
    let first_change = (start..p + FS)
        .find(|&k| (at(k).unwrap() - a[k]).abs() > 1e-5)
        .expect("the recording never changes");
    let xfade = 30 * FS / 1000;
    assert!(
        first_change >= p && first_change <= p + xfade,
        "the change is at song sample {first_change}, the log says {p}"
    );
    // After it: the new recipe, sample for sample, until the end of what was recorded.
    let end = (0..n)
        .take_while(|&k| at(k).is_some())
        .last()
        .unwrap()
        .min(p + 2 * FS);
    assert!(end > p + FS, "too little recorded after the swap");
    let after = (p + xfade..end)
        .map(|k| (at(k).unwrap() - b[k]).abs())
        .fold(0.0, f32::max);
    assert!(
        after < 1e-6,
        "after the swap the recording differs by {after}"
    );

    // No dropout: no run of zeros and no jump the song does not have, start to end.
    let own = a
        .windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .fold(0.0, f32::max);
    let played: Vec<f32> = (start..end).map(|k| at(k).unwrap()).collect();
    let jump = played
        .windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .fold(0.0, f32::max);
    assert!(
        jump <= own * 1.01,
        "a jump of {jump} (the song's largest: {own})"
    );
    let zeros = played
        .split(|&x| x != 0.0)
        .map(|run| run.len())
        .max()
        .unwrap_or(0);
    assert!(zeros < 4, "a run of {zeros} zeros");
    eprintln!("live_pulse: song found at lag {lag}, swap at {p}, first change at {first_change}");
    Reloaded {
        rec,
        lag,
        p,
        xfade,
        end,
        a,
    }
}

#[test]
#[ignore = "plays in real time through a sound server; run alone: \
            `cargo test --test live live_pulse -- --ignored --test-threads=1` (make test does)"]
fn pulse_playback_end_to_end_reload_changes_at_the_logged_sample() {
    let Some(pulse) = Pulse::start() else {
        return;
    };
    let song = song();
    let dir = song.path();
    // The noise 6 dB down.
    let r = reload_end_to_end(
        &pulse,
        dir,
        (&recipe(0.0, true), &recipe(-6.0, true)),
        "4.5",
        2000,
    );

    // The change is the one written: the noise stem 6 dB down (least squares on the recording).
    let noise_only = offline(dir, &recipe(0.0, false));
    let tone_only: Vec<f32> = r.a.iter().zip(&noise_only).map(|(x, y)| x - y).collect();
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for k in r.p + r.xfade..r.end {
        let x = f64::from(r.at(k).unwrap()) - f64::from(tone_only[k]);
        num += x * f64::from(noise_only[k]);
        den += f64::from(noise_only[k]) * f64::from(noise_only[k]);
    }
    let change_db = 20.0 * (num / den).log10();
    assert!(
        (change_db + 6.0).abs() < 0.5,
        "the noise changed by {change_db:.2} dB"
    );
}

/// Hot reload of third-party plugins through the sound server (feature `plugins`, x42-plugins):
/// a plugin parameter rewritten while playing glides at the logged sample (the running instance
/// goes on), and a plugin added to the master crossfades; both without a dropout or a click, and
/// sample for sample the new recipe after the glide or crossfade.
#[test]
#[cfg(feature = "plugins")]
#[ignore = "plays in real time through a sound server; run alone: \
            `cargo test --test live live_pulse -- --ignored --test-threads=1` (make test does)"]
fn pulse_plugin_reloads_glide_and_crossfade_at_the_logged_sample() {
    const BALANCE: &str = "http://gareus.org/oss/lv2/balance";
    if let Err(e) = stemgraph::dsp::plugin::lv2::find(BALANCE) {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{e}");
        eprintln!("skipped: {e}");
        return;
    }
    let Some(pulse) = Pulse::start() else {
        return;
    };
    let with = |chain: &str| {
        recipe(0.0, true).replace(
            "gain { gain_db = -2 } }",
            &format!("gain {{ gain_db = -2 }}, {chain} }}"),
        )
    };
    let trim = |db: f64| {
        format!("plugin {{ id = \"trim\", lv2 = \"{BALANCE}\", params = {{ trim = {db} }} }}")
    };
    for (before, after) in [
        (with(&trim(0.0)), with(&trim(-6.0))),
        (recipe(0.0, true), with(&trim(-6.0))),
    ] {
        assert_ne!(before, after);
        let song = song();
        // Later than the others: `play` loads the installed plugins' descriptions (seconds) in
        // the background at its start, and a first plugin compiles once they are there (4.6 s
        // after the rewrite seen on a loaded machine): played to 11.5 s of the 12 s song.
        let r = reload_end_to_end(&pulse, song.path(), (&before, &after), "11.5", 4500);
        // The whole mix 6 dB down after the swap (least squares against the old render).
        let (mut num, mut den) = (0.0f64, 0.0f64);
        for k in r.p + r.xfade..r.end {
            num += f64::from(r.at(k).unwrap()) * f64::from(r.a[k]);
            den += f64::from(r.a[k]) * f64::from(r.a[k]);
        }
        let change_db = 20.0 * (num / den).log10();
        assert!(
            (change_db + 6.0).abs() < 0.05,
            "the mix changed by {change_db:.2} dB"
        );
    }
}

#[test]
#[ignore = "plays in real time through a sound server; run alone: \
            `cargo test --test live live_pulse -- --ignored --test-threads=1` (make test does)"]
fn pulse_idle_default_buffer_starts_at_from_with_no_dropout() {
    let Some(pulse) = Pulse::start() else {
        return;
    };
    let song = song();
    let dir = song.path();
    let raw = dir.join("out.raw");
    let mut rec = pulse.record(&raw);
    let (from, seconds) = (2.0, 3.0);
    let player = Player::spawn(
        &pulse,
        dir,
        &["--from", "2", "--seconds", "3", "--no-watch"],
    );
    let log = player.finish();
    std::thread::sleep(Duration::from_millis(300));
    drop(rec.0.take().map(|mut c| {
        let _ = c.kill();
        c.wait()
    }));
    let rec = recording(&raw);
    let a = offline(dir, &recipe(0.0, true));

    // None reported, none heard.
    assert_eq!(reported_underruns(&log), 0, "{log}");
    let gaps = dropouts(&rec);
    assert!(gaps.is_empty(), "dropouts at {gaps:?}\n{log}");

    // The first sound is song frame `from` (the engine's declick opens on it), and playback
    // went on from there for the time it ran: no second lost at the start.
    let k = (from * FS as f64) as usize;
    let (lag, score) = lag_of(&a, &rec, k + FS / 4, -(k as i64)..rec.len() as i64);
    assert!(score > 0.99, "song frame {k} not found ({score})");
    let first = rec.iter().position(|&x| x != 0.0).unwrap() as i64;
    let expected = k as i64 + lag;
    assert!(
        (first - expected).abs() < (FS / 50) as i64,
        "the first sound is at recording sample {first}, song frame {k} at {expected}"
    );
    let heard = stopped_at(&log);
    assert!(
        heard >= from + seconds - 0.25,
        "stopped at {heard} s after {seconds} s from {from} s\n{log}"
    );
    let played = rec.iter().rposition(|&x| x != 0.0).unwrap() as i64 - first;
    assert!(
        played as f64 / FS as f64 >= seconds - 0.25,
        "only {played} frames were heard"
    );
    eprintln!(
        "live_pulse idle: first sound is song frame {k} (±{} frames), stopped at {heard} s",
        (first - expected).abs()
    );
}

#[test]
#[ignore = "plays in real time through a sound server; run alone: \
            `cargo test --test live live_pulse -- --ignored --test-threads=1` (make test does)"]
fn pulse_under_a_cpu_hog_every_dropout_is_counted() {
    let Some(pulse) = Pulse::start() else {
        return;
    };
    let song = song();
    let dir = song.path();
    let raw = dir.join("out.raw");
    let mut rec = pulse.record(&raw);
    // Both cores busy for the whole run (hard stop after 20 s).
    let hog = Hog::start(2, Duration::from_secs(20));
    let mut player = Player::spawn(&pulse, dir, &["--seconds", "5", "--no-watch"]);
    player.wait_for("playing song.lua");
    // Three dropouts the player cannot avoid: stopped for 150 ms, as a machine that stalls.
    let pid = player.pid();
    let stops = 3;
    for _ in 0..stops {
        std::thread::sleep(Duration::from_millis(900));
        // SAFETY: signals to the child we started (by its id), resumed right after.
        unsafe { libc::kill(pid, libc::SIGSTOP) };
        std::thread::sleep(Duration::from_millis(150));
        unsafe { libc::kill(pid, libc::SIGCONT) };
    }
    let log = player.finish();
    drop(hog);
    std::thread::sleep(Duration::from_millis(300));
    drop(rec.0.take().map(|mut c| {
        let _ = c.kill();
        c.wait()
    }));
    let rec = recording(&raw);
    let gaps = dropouts(&rec);
    let reported = reported_underruns(&log);
    assert!(
        gaps.len() >= stops,
        "{} dropouts heard for {stops} stops: {gaps:?}\n{log}",
        gaps.len()
    );
    assert!(
        reported.abs_diff(gaps.len()) <= 1,
        "{reported} underruns reported, {} heard at {gaps:?}\n{log}",
        gaps.len()
    );
    assert!(
        log.contains("underrun(s)"),
        "the underruns are logged as they happen\n{log}"
    );
    eprintln!(
        "live_pulse hog: {reported} underruns reported, {} dropouts heard ({:?})",
        gaps.len(),
        gaps.iter()
            .map(|(s, n)| format!("{:.3} s +{:.1} ms", *s as f64 / FS as f64, *n as f64 / 48.0))
            .collect::<Vec<_>>()
    );
}
