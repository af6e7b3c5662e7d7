//! A corpus of real multitrack stems for the tests, regenerated on a fresh machine from Debian
//! packages and cached.
//!
//! Three short songs (≤ 25 s) in different styles are composed here as MIDI ([`songs`]), and
//! each stem (an instrument group: drums on channel 10, bass, keys/pads, a lead, …) is rendered on
//! its own by `fluidsynth` with the FluidR3 General MIDI soundfont (packages `fluidsynth` and
//! `fluid-soundfont-gm`, installed by `.ci/install-deps test`), as a float file. The stems are
//! then exported as a DAW does: 24-bit files (rounded) of the float renders, and a reference mix
//! that is the float sum of the stems exported once more, dithered or rounded to 24 bits or
//! dithered to 16 bits (each song a different one).
//!
//! The result is cached under the cargo target folder, keyed by a SHA-256 of everything that
//! makes it (the MIDI bytes, the fluidsynth version and options, the soundfont, the export
//! settings and [`GENERATOR_VERSION`]). Without fluidsynth the tests that need the corpus are
//! skipped with a message, except under `CI=true`, where they fail.

#![allow(dead_code)]

pub mod midi;
pub mod songs;

use sha2::{Digest, Sha256};
use songs::{MixExport, SongDef};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Bumped whenever the export below changes in a way the hash does not see.
const GENERATOR_VERSION: &str = "corpus-1";
const SOUNDFONT: &str = "/usr/share/sounds/sf2/FluidR3_GM.sf2";
/// fluidsynth: no MIDI input, no shell, quiet, reverb on, chorus off, float WAV, fast render.
const FLUID_ARGS: &[&str] = &[
    "-n", "-i", "-q", "-R", "1", "-C", "0", "-g", "0.5", "-O", "float", "-T", "wav",
];

/// One rendered song: its stems and reference mix on disk (read-only cache).
pub struct Song {
    pub name: String,
    pub rate: u32,
    pub frames: usize,
    /// Folder holding `<stem>.wav` and `mix.wav`.
    pub dir: PathBuf,
    pub stems: Vec<String>,
    /// Bits of the reference mix.
    pub mix_bits: u16,
}

/// The corpus, or `None` (with a message) when fluidsynth or the soundfont is missing outside CI.
///
/// # Panics
/// Under `CI=true` when the tools are missing, or when a render fails.
pub fn songs() -> Option<Vec<Song>> {
    let have = Command::new("fluidsynth")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
        && Path::new(SOUNDFONT).exists();
    if !have {
        let msg = "the real-material corpus needs fluidsynth and fluid-soundfont-gm (.ci/install-deps test)";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{msg}");
        }
        eprintln!("skipped: {msg}");
        return None;
    }
    Some(songs::all().iter().map(build).collect())
}

fn fluid_version() -> String {
    let o = Command::new("fluidsynth")
        .arg("--version")
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

fn stem_midis(def: &SongDef) -> Vec<Vec<u8>> {
    def.stems
        .iter()
        .map(|(_, parts)| midi::smf(&parts.iter().collect::<Vec<_>>(), def.bpm, def.beats))
        .collect()
}

fn key(def: &SongDef, midis: &[Vec<u8>]) -> String {
    let mut h = Sha256::new();
    h.update(GENERATOR_VERSION);
    h.update(fluid_version());
    h.update(FLUID_ARGS.join(" "));
    h.update(
        std::fs::metadata(SOUNDFONT)
            .map(|m| m.len())
            .unwrap_or(0)
            .to_le_bytes(),
    );
    h.update(format!("{}|{}|{:?}", def.name, def.rate, def.mix));
    for ((name, _), m) in def.stems.iter().zip(midis) {
        h.update(name);
        h.update(m);
    }
    h.finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn build(def: &SongDef) -> Song {
    let midis = stem_midis(def);
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("corpus");
    let dir = root.join(format!("{}-{}", def.name, key(def, &midis)));
    let frames = (def.beats * 60.0 / def.bpm * f64::from(def.rate)).round() as usize;
    let song = Song {
        name: def.name.to_string(),
        rate: def.rate,
        frames,
        dir: dir.clone(),
        stems: def.stems.iter().map(|(n, _)| n.to_string()).collect(),
        mix_bits: if matches!(def.mix, MixExport::Dithered16) {
            16
        } else {
            24
        },
    };
    if dir.join("complete").exists() {
        return song;
    }
    std::fs::create_dir_all(&root).unwrap();
    let tmp = tempfile::tempdir_in(&root).unwrap();
    let mut floats = Vec::new();
    for ((name, _), m) in def.stems.iter().zip(&midis) {
        let mid = tmp.path().join(format!("{name}.mid"));
        let out = tmp.path().join(format!("{name}.f32.wav"));
        std::fs::write(&mid, m).unwrap();
        let status = Command::new("fluidsynth")
            .args(FLUID_ARGS)
            .args(["-r", &def.rate.to_string(), "-F"])
            .arg(&out)
            .arg(SOUNDFONT)
            .arg(&mid)
            .status()
            .unwrap();
        assert!(status.success(), "fluidsynth failed on {}/{name}", def.name);
        floats.push(read_float(&out, frames));
    }
    // One fader for the whole mix: the sum peaks at −1 dBFS, as a mix engineer's export would.
    let peak = (0..2)
        .flat_map(|c| (0..frames).map(move |k| (c, k)))
        .map(|(c, k)| floats.iter().map(|s| s[c][k]).sum::<f64>().abs())
        .fold(0.0, f64::max);
    let g = 10f64.powf(-1.0 / 20.0) / peak;
    for s in &mut floats {
        s.iter_mut().flatten().for_each(|x| *x *= g);
    }
    for ((name, _), s) in def.stems.iter().zip(&floats) {
        write_wav(
            &tmp.path().join(format!("{name}.wav")),
            s,
            def.rate,
            24,
            None,
        );
    }
    let mix: Vec<Vec<f64>> = (0..2)
        .map(|c| {
            (0..frames)
                .map(|k| floats.iter().map(|s| s[c][k]).sum())
                .collect()
        })
        .collect();
    let (bits, dither) = match def.mix {
        MixExport::Dithered24 => (24, Some(7)),
        MixExport::Rounded24 => (24, None),
        MixExport::Dithered16 => (16, Some(11)),
    };
    write_wav(&tmp.path().join("mix.wav"), &mix, def.rate, bits, dither);
    for (name, _) in &def.stems {
        std::fs::remove_file(tmp.path().join(format!("{name}.mid"))).unwrap();
        std::fs::remove_file(tmp.path().join(format!("{name}.f32.wav"))).unwrap();
    }
    std::fs::write(tmp.path().join("complete"), b"").unwrap();
    let tmp = tmp.keep();
    // Another test thread may have built the same song meanwhile: either copy is the same.
    if std::fs::rename(&tmp, &dir).is_err() {
        std::fs::remove_dir_all(&tmp).unwrap();
    }
    song
}

/// Reads a float WAV (fluidsynth's output) as stereo planes of exactly `frames` frames.
fn read_float(path: &Path, frames: usize) -> Vec<Vec<f64>> {
    let mut r = hound::WavReader::open(path).unwrap();
    let ch = r.spec().channels as usize;
    let all: Vec<f32> = r.samples::<f32>().map(Result::unwrap).collect();
    (0..2)
        .map(|c| {
            let mut v: Vec<f64> = all
                .iter()
                .skip(c.min(ch - 1))
                .step_by(ch)
                .map(|&x| f64::from(x))
                .collect();
            v.resize(frames, 0.0);
            v
        })
        .collect()
}

/// Reads a 16/24-bit integer or float WAV as planes of f64.
pub fn read_wav(path: &Path) -> (Vec<Vec<f64>>, hound::WavSpec) {
    let mut r = hound::WavReader::open(path).unwrap();
    let spec = r.spec();
    let ch = spec.channels as usize;
    let all: Vec<f64> = match spec.sample_format {
        hound::SampleFormat::Float => r.samples::<f32>().map(|x| f64::from(x.unwrap())).collect(),
        hound::SampleFormat::Int => {
            let scale = f64::from(1u32 << (spec.bits_per_sample - 1));
            r.samples::<i32>()
                .map(|x| f64::from(x.unwrap()) / scale)
                .collect()
        }
    };
    let planes = (0..ch)
        .map(|c| all.iter().skip(c).step_by(ch).copied().collect())
        .collect();
    (planes, spec)
}

/// A small deterministic generator (TPDF dither).
struct Lcg(u64);
impl Lcg {
    fn uniform(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Writes planes as a WAV: `bits` 16 or 24 (integer, rounded, with TPDF dither of ±1 LSB when
/// `dither` gives a seed) or 32 (float).
pub fn write_wav(path: &Path, planes: &[Vec<f64>], rate: u32, bits: u16, dither: Option<u64>) {
    let float = bits == 32;
    let spec = hound::WavSpec {
        channels: planes.len() as u16,
        sample_rate: rate,
        bits_per_sample: bits,
        sample_format: if float {
            hound::SampleFormat::Float
        } else {
            hound::SampleFormat::Int
        },
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    let scale = f64::from(1u32 << (bits.min(24) - 1));
    let mut rng = dither.map(Lcg);
    for k in 0..planes[0].len() {
        for p in planes {
            if float {
                w.write_sample(p[k] as f32).unwrap();
            } else {
                let d = rng.as_mut().map_or(0.0, |r| r.uniform() - r.uniform());
                let q = (p[k] * scale + d).round().clamp(-scale, scale - 1.0);
                w.write_sample(q as i32).unwrap();
            }
        }
    }
    w.finalize().unwrap();
}

/// A writable copy of a song: `stems/<stem>.wav`, `stems/mix.wav` and `song.lua`, in a temporary
/// folder, to plant faults in.
pub struct Project {
    pub dir: tempfile::TempDir,
    pub song: String,
    pub rate: u32,
    pub stems: Vec<String>,
}

impl Song {
    /// A copy of the song with a recipe that routes every stem to the master.
    pub fn project(&self) -> Project {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("stems")).unwrap();
        for f in self.stems.iter().map(String::as_str).chain(["mix"]) {
            std::fs::copy(
                self.dir.join(format!("{f}.wav")),
                dir.path().join(format!("stems/{f}.wav")),
            )
            .unwrap();
        }
        let p = Project {
            dir,
            song: self.name.clone(),
            rate: self.rate,
            stems: self.stems.clone(),
        };
        p.write_recipe(
            &self
                .stems
                .iter()
                .map(|s| (s.as_str(), ""))
                .collect::<Vec<_>>(),
        );
        p
    }
}

impl Project {
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    pub fn recipe(&self) -> PathBuf {
        self.path("song.lua")
    }
    /// Writes `song.lua` with these stems (name, extra options such as `gain_db = 1`).
    pub fn write_recipe(&self, stems: &[(&str, &str)]) {
        let mut lua = format!(
            "local s = session {{ title = '{}', reference = 'stems/mix.wav' }}\nlocal m = s:bus 'master'\n",
            self.song
        );
        for (name, opts) in stems {
            lua.push_str(&format!(
                "s:stem('{name}', 'stems/{name}.wav', {{ {opts} }}):to(m)\n"
            ));
        }
        lua.push_str("m:to(s:output())\nreturn s\n");
        std::fs::write(self.recipe(), lua).unwrap();
    }
    /// A stem's samples (stereo planes) and its WAV format.
    pub fn read(&self, stem: &str) -> (Vec<Vec<f64>>, hound::WavSpec) {
        read_wav(&self.path(&format!("stems/{stem}.wav")))
    }
    /// Replaces a stem by `f` of its samples, written at `rate` with `bits`.
    pub fn replace(
        &self,
        stem: &str,
        rate: u32,
        bits: u16,
        f: impl Fn(Vec<Vec<f64>>) -> Vec<Vec<f64>>,
    ) {
        let (planes, _) = self.read(stem);
        write_wav(
            &self.path(&format!("stems/{stem}.wav")),
            &f(planes),
            rate,
            bits,
            None,
        );
    }
}
