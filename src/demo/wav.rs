//! A minimal streaming writer for 24-bit stereo WAV files whose length is known up front.
//!
//! The header (WAVE_FORMAT_EXTENSIBLE, the same layout hound writes for 24-bit audio) is written
//! complete before the first sample, so the file never needs a seek, and samples are packed a
//! block at a time: much faster than a call per sample, which matters for hour-long stems.

use std::fs::File;
use std::io::{self, BufWriter, Write};

/// Bytes of one 24-bit stereo frame.
const FRAME_BYTES: u64 = 6;

/// Streams interleaved 24-bit stereo samples into a file.
pub(crate) struct Wav24Writer {
    out: BufWriter<File>,
    bytes: Vec<u8>,
    frames_left: u64,
}

impl Wav24Writer {
    /// Writes the header for `frames` stereo frames at `sample_rate`. The caller has checked that
    /// the data fits a RIFF file's 32-bit sizes.
    pub(crate) fn new(file: File, sample_rate: u32, frames: u64) -> io::Result<Self> {
        let mut out = BufWriter::with_capacity(1 << 18, file);
        out.write_all(&header(sample_rate, frames))?;
        Ok(Self {
            out,
            bytes: Vec::new(),
            frames_left: frames,
        })
    }

    /// Appends interleaved samples (left, right, left, …), each within the 24-bit range.
    pub(crate) fn write(&mut self, interleaved: &[i32]) -> io::Result<()> {
        debug_assert!(interleaved.len().is_multiple_of(2));
        let frames = (interleaved.len() / 2) as u64;
        if frames > self.frames_left {
            return Err(io::Error::other(
                "more frames than the WAV header announces",
            ));
        }
        self.frames_left -= frames;
        self.bytes.clear();
        self.bytes.reserve(interleaved.len() * 3);
        for &s in interleaved {
            let b = s.to_le_bytes();
            self.bytes.extend_from_slice(&b[..3]);
        }
        self.out.write_all(&self.bytes)
    }

    /// Flushes the file; fails if fewer frames were written than announced.
    pub(crate) fn finish(mut self) -> io::Result<File> {
        if self.frames_left != 0 {
            return Err(io::Error::other(
                "fewer frames than the WAV header announces",
            ));
        }
        self.out.flush()?;
        self.out.into_inner().map_err(|e| e.into_error())
    }
}

/// The 68-byte RIFF/WAVE header of a 24-bit stereo PCM file (WAVE_FORMAT_EXTENSIBLE).
fn header(sample_rate: u32, frames: u64) -> [u8; 68] {
    let data = (frames * FRAME_BYTES) as u32;
    let mut h = Vec::with_capacity(68);
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&(data + 60).to_le_bytes());
    h.extend_from_slice(b"WAVE");
    h.extend_from_slice(b"fmt ");
    h.extend_from_slice(&40u32.to_le_bytes());
    h.extend_from_slice(&0xFFFEu16.to_le_bytes()); // WAVE_FORMAT_EXTENSIBLE
    h.extend_from_slice(&2u16.to_le_bytes()); // channels
    h.extend_from_slice(&sample_rate.to_le_bytes());
    h.extend_from_slice(&(sample_rate * FRAME_BYTES as u32).to_le_bytes()); // bytes per second
    h.extend_from_slice(&(FRAME_BYTES as u16).to_le_bytes()); // block align
    h.extend_from_slice(&24u16.to_le_bytes()); // container bits
    h.extend_from_slice(&22u16.to_le_bytes()); // extension size
    h.extend_from_slice(&24u16.to_le_bytes()); // valid bits
    h.extend_from_slice(&3u32.to_le_bytes()); // front left | front right
                                              // KSDATAFORMAT_SUBTYPE_PCM
    h.extend_from_slice(&[
        0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B,
        0x71,
    ]);
    h.extend_from_slice(b"data");
    h.extend_from_slice(&data.to_le_bytes());
    h.try_into().expect("header is 68 bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hound_reads_what_we_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.wav");
        let samples = [0, -1, 8_388_607, -8_388_608, 12_345, -54_321];
        let mut w = Wav24Writer::new(File::create(&path).unwrap(), 44_100, 3).unwrap();
        w.write(&samples).unwrap();
        w.finish().unwrap();
        let mut r = hound::WavReader::open(&path).unwrap();
        let spec = r.spec();
        assert_eq!(
            (spec.channels, spec.sample_rate, spec.bits_per_sample),
            (2, 44_100, 24)
        );
        let back: Vec<i32> = r.samples::<i32>().map(|s| s.unwrap()).collect();
        assert_eq!(back, samples);
    }
}
