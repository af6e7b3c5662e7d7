//! The first look at a programme (a reference, a rendered master): its loudness over time
//! (BS.1770 short-term loudness every 100 ms), integrated loudness, loudness range, true peak,
//! clipping and whether it is mono, read in one streamed pass.

use super::MatchError;
use crate::analysis::meters::{LevelMeter, LoudnessMeter, TruePeakMeter};
use crate::io::decode::{StemStream, StreamOptions};
use std::path::{Path, PathBuf};

/// Frames read per block.
const BLOCK: usize = 4096;
/// Seconds per loudness hop (BS.1770's 100 ms).
pub const HOP_S: f64 = 0.1;
/// Hops in a short-term window (3 s).
pub const SHORT_TERM_HOPS: usize = 30;

/// What one pass over a programme measured.
#[derive(Debug, Clone)]
pub struct Scan {
    /// The file.
    pub path: PathBuf,
    /// The rate it was read at (the session's).
    pub sample_rate: u32,
    /// Its own rate.
    pub file_rate: u32,
    /// Its own channel count.
    pub file_channels: usize,
    /// Length in frames at `sample_rate`.
    pub frames: u64,
    /// Short-term loudness (LUFS) at the end of each 100 ms hop.
    pub short_term: Vec<f64>,
    /// Integrated loudness, LUFS.
    pub integrated_lufs: f64,
    /// Loudness range, LU.
    pub lra_lu: f64,
    /// True peak, dBTP.
    pub true_peak_dbtp: f64,
    /// Runs of consecutive full-scale samples (clipping).
    pub clip_runs: u64,
    /// Whether the two channels are the same (or the file has one).
    pub mono: bool,
}

impl Scan {
    /// Length in seconds.
    pub fn seconds(&self) -> f64 {
        self.frames as f64 / f64::from(self.sample_rate)
    }

    /// Peak to loudness ratio, dB.
    pub fn plr_db(&self) -> f64 {
        self.true_peak_dbtp - self.integrated_lufs
    }
}

/// Opens `path` as a stereo stream at `rate`, with the notes the user should see (resampled,
/// mono).
pub fn open(path: &Path, rate: u32) -> Result<(StemStream, Vec<String>), MatchError> {
    let opts = StreamOptions {
        target_rate: rate,
        target_channels: 2,
        length_frames: None,
    };
    let (stream, warnings) = StemStream::open(path, &opts)?;
    Ok((stream, warnings.iter().map(ToString::to_string).collect()))
}

/// Reads `path` once at `rate` and measures it.
pub fn scan(path: &Path, rate: u32) -> Result<Scan, MatchError> {
    let (mut stream, _) = open(path, rate)?;
    let info = stream.info().clone();
    let frames = stream.length_frames().ok_or_else(|| MatchError::Input {
        path: path.to_path_buf(),
        reason: "its length is unknown".into(),
    })?;
    let fs = f64::from(rate);
    let mut loud = LoudnessMeter::new(fs, 2);
    loud.set_history_capacity((frames as f64 / fs / HOP_S) as usize + 16);
    let mut tp = TruePeakMeter::bs1770(fs, 2);
    let mut level = LevelMeter::new(2);
    let mut bufs = vec![vec![0.0; BLOCK]; 2];
    let mut mono = info.channels == 1;
    let mut diff = 0.0f64;
    let mut done = 0u64;
    while done < frames {
        let n = BLOCK.min((frames - done) as usize);
        {
            let [l, r] = &mut bufs[..] else {
                unreachable!()
            };
            stream.read_block(&mut [&mut l[..n], &mut r[..n]], n)?;
        }
        let planar = [&bufs[0][..n], &bufs[1][..n]];
        loud.push(&planar);
        tp.push(&planar);
        level.push(&planar);
        diff = planar[0]
            .iter()
            .zip(planar[1])
            .fold(diff, |m, (a, b)| m.max((a - b).abs()));
        done += n as u64;
    }
    tp.finish();
    mono |= diff < 1e-9;
    let mut history = Vec::new();
    loud.drain_history(&mut history);
    Ok(Scan {
        path: path.to_path_buf(),
        sample_rate: rate,
        file_rate: info.sample_rate,
        file_channels: info.channels,
        frames,
        short_term: history.iter().map(|h| h.2).collect(),
        integrated_lufs: loud.integrated_lufs(),
        lra_lu: loud.loudness_range_lu(),
        true_peak_dbtp: tp.true_peak_dbtp(),
        clip_runs: level.clip_runs(),
        mono,
    })
}
