//! The built-in demo song: a short, deterministic, synthesized song delivered as stems plus their
//! reference mix, for the zero-setup first run (`stemgraph demo`), the tests and the benchmarks.
//!
//! What it owns, by file: the song (`score`: 120 BPM, A minor, Am7 – Fmaj7 – G – Em7, intro /
//! verse / chorus / break; `patterns`: what each part plays), the instruments (`drums`,
//! `instruments`: sub bass, electric-piano keys, pads, arpeggio; `voice`: the sibilant vocal-like
//! lead and its backing harmony) built from `dsp` blocks and `rng` noise, the streaming generator
//! [`DemoSynth`] (`synth`) and [`write_demo`], which writes its stems and mix through the renders'
//! WAV writer ([`crate::io::wav`]).
//!
//! Guarantees:
//! - **Bit-exact everywhere**: own PRNG with fixed seeds, `libm` (never the C library) for the
//!   transcendental functions, a compile-time sine table per sample, no threads, no hash-map
//!   order; the output does not depend on the block sizes asked of [`DemoSynth`].
//! - **Bounded memory**: generation is streamed in blocks; no stem is ever held whole, so an hour
//!   long project costs the same memory as a minute.
//! - **The mix is the sum of the stems as written**: stems are quantized to 24 bits and the mix
//!   is the integer sum of the quantized samples, so a null test leaves exactly nothing.
//! - **Realistic mastering input**: the reference mix sits around -17.5 LUFS integrated with
//!   its true peak near -3 dBTP (peak-to-loudness ratio about 14 dB), a stereo image, a real
//!   sub bass, sibilance for a de-esser, and quiet and loud sections (loudness range about 6 LU).
//!
//! Nothing here runs on the audio thread; generation may allocate (once, up front) and does I/O.
//!
//! See `docs/demo-song.md` for the song and its measured levels.

mod drums;
mod dsp;
mod instruments;
mod patterns;
mod rng;
mod score;
mod synth;
mod voice;

use crate::io::atomic::OutputError;
use crate::io::quantize::quantize_planes;
use crate::io::wav::{WavFormat, WavOutput};
use std::fs;
use std::path::{Path, PathBuf};

pub use synth::DemoSynth;

/// What to generate.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DemoOptions {
    /// Sample rate in Hz (8 000 to 384 000); 48 000 by default.
    pub sample_rate: u32,
    /// Length in seconds; 40 by default. The song loops its verse / chorus / break for as long as
    /// asked and fades out over its last 2.5 s.
    pub seconds: f64,
    /// Number of stems, 2 to 8; 4 by default (drums, bass, keys, lead). 2 gives drums and music,
    /// 3 drums, bass and music; 5 to 8 add pads, perc, arp and backing.
    pub stems: usize,
    /// Seed of the humanization (velocities, timing, detune, noise). Same seed, same bits.
    pub seed: u64,
}

impl DemoOptions {
    /// The seed used when none is given.
    pub const DEFAULT_SEED: u64 = 0x5EED_0001;

    /// Checks that the options describe a song that can be generated and written.
    pub fn validate(&self) -> Result<(), DemoError> {
        let bad = |msg: String| Err(DemoError::InvalidOptions(msg));
        if !(8_000..=384_000).contains(&self.sample_rate) {
            return bad(format!(
                "sample rate {} Hz is outside 8000..=384000",
                self.sample_rate
            ));
        }
        if !(2..=8).contains(&self.stems) {
            return bad(format!(
                "{} stems requested; the demo has 2 to 8",
                self.stems
            ));
        }
        if !self.seconds.is_finite() || self.seconds <= 0.0 {
            return bad(format!(
                "length {} s is not a positive number of seconds",
                self.seconds
            ));
        }
        let frames = total_frames(self.seconds, self.sample_rate);
        if frames == 0 {
            return bad(format!(
                "length {} s is shorter than one sample",
                self.seconds
            ));
        }
        if frames > MAX_WAV_FRAMES {
            let max = MAX_WAV_FRAMES as f64 / self.sample_rate as f64;
            return bad(format!(
                "length {} s does not fit a 24-bit stereo WAV file at {} Hz (at most {:.0} s)",
                self.seconds, self.sample_rate, max
            ));
        }
        Ok(())
    }
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            sample_rate: 48_000,
            seconds: 40.0,
            stems: 4,
            seed: Self::DEFAULT_SEED,
        }
    }
}

/// The files [`write_demo`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoFiles {
    /// The folder given to [`write_demo`].
    pub dir: PathBuf,
    /// Stem names and paths, in stem order (`drums`, `bass`, …).
    pub stems: Vec<(String, PathBuf)>,
    /// The reference mix, `<dir>/stems/mix.wav`: the sum of the stems as written.
    pub reference: PathBuf,
}

/// Why the demo could not be written.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The options are out of range.
    #[error("invalid demo options: {0}")]
    InvalidOptions(String),
    /// A folder or file could not be created, written or renamed.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The file or folder concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// Largest frame count whose 24-bit stereo data fits the 32-bit sizes of a RIFF/WAV file.
const MAX_WAV_FRAMES: u64 = (u32::MAX as u64 - 1024) / 6;

/// Frames in `seconds` at `sample_rate`, rounded to the nearest frame.
pub(crate) fn total_frames(seconds: f64, sample_rate: u32) -> u64 {
    let frames = libm::round(seconds * sample_rate as f64);
    if frames.is_finite() && frames > 0.0 {
        frames as u64
    } else {
        0
    }
}

/// Writes `<dir>/stems/<name>.wav` for each stem and `<dir>/stems/mix.wav`, 24-bit stereo WAV.
///
/// The files are written by the renders' WAV writer ([`WavOutput`], in the same aligned writes):
/// each under a temporary name and renamed into place when complete, once every file's samples
/// are written, so a failed run leaves no partial file behind.
pub fn write_demo(dir: &Path, opts: &DemoOptions) -> Result<DemoFiles, DemoError> {
    write_demo_with_progress(dir, opts, &mut |_, _| {})
}

/// [`write_demo`], calling `progress(frames_done, frames_total)` after every block.
pub fn write_demo_with_progress(
    dir: &Path,
    opts: &DemoOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<DemoFiles, DemoError> {
    opts.validate()?;
    let stems_dir = dir.join("stems");
    fs::create_dir_all(&stems_dir).map_err(|source| DemoError::Io {
        path: stems_dir.clone(),
        source,
    })?;

    let mut synth = DemoSynth::new(opts);
    let names = synth.stem_names();
    let total = synth.total_frames();
    let paths: Vec<PathBuf> = names
        .iter()
        .copied()
        .chain(std::iter::once("mix"))
        .map(|name| stems_dir.join(format!("{name}.wav")))
        .collect();
    let mut writers = paths
        .iter()
        .map(|path| WavOutput::create(path, synth.sample_rate(), 2, WavFormat::Int24, &[]))
        .collect::<Result<Vec<_>, _>>()
        .map_err(write_error)?;

    const BLOCK: usize = 4096;
    let stems = names.len();
    let mut buffers: Vec<[Vec<f64>; 2]> = (0..stems)
        .map(|_| [vec![0.0; BLOCK], vec![0.0; BLOCK]])
        .collect();
    let mut ints = vec![0i32; 2 * BLOCK];
    let mut mix = vec![0i64; 2 * BLOCK];
    loop {
        let n = synth.render_block(&mut buffers, BLOCK);
        if n == 0 {
            break;
        }
        mix[..2 * n].fill(0);
        for (s, [left, right]) in buffers.iter().enumerate() {
            let clipped = quantize_planes(&[&left[..n], &right[..n]], n, 24, &mut ints, None);
            for (m, &q) in mix[..2 * n].iter_mut().zip(&ints[..2 * n]) {
                *m += i64::from(q);
            }
            writers[s]
                .write_ints(&ints[..2 * n], clipped)
                .map_err(write_error)?;
        }
        for (q, &m) in ints[..2 * n].iter_mut().zip(&mix[..2 * n]) {
            *q = m.clamp(-(1 << 23), (1 << 23) - 1) as i32;
        }
        writers[stems]
            .write_ints(&ints[..2 * n], 0)
            .map_err(write_error)?;
        progress(synth.position(), total);
    }
    for writer in writers {
        writer.finish().map_err(write_error)?;
    }
    let stem_files = names
        .iter()
        .zip(&paths)
        .map(|(name, path)| (name.to_string(), path.clone()))
        .collect();
    Ok(DemoFiles {
        dir: dir.to_path_buf(),
        stems: stem_files,
        reference: paths[stems].clone(),
    })
}

/// A WAV writer's error as the demo reports it.
fn write_error(e: OutputError) -> DemoError {
    let message = e.to_string();
    match e {
        OutputError::Io { path, source } => DemoError::Io { path, source },
        OutputError::WouldOverwriteInput { path, .. } | OutputError::Encode { path, .. } => {
            DemoError::Io {
                path,
                source: std::io::Error::other(message),
            }
        }
    }
}
