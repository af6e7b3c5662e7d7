//! FLAC masters: 16- and 24-bit, streamed frame by frame, with a Vorbis comment block of tags,
//! written atomically.
//!
//! flacenc has no tag API, and its one-call encoder builds the whole stream in memory before
//! anything can be written. This module uses only its frame encoder: samples are gathered into
//! one block (4096 frames), the block is encoded and its bytes written at once, and the buffers
//! are reused for the next block, so memory does not depend on the song's length
//! ([`FlacOutput::buffered_bytes`] says how much is held). The file is laid out by hand:
//!
//! 1. `fLaC`, a STREAMINFO block written first as a placeholder, and a VORBIS_COMMENT block with
//!    the tags (the last metadata block);
//! 2. the frames, as they are encoded;
//! 3. at the end, STREAMINFO is written again over its placeholder with what is only known then:
//!    the total sample count, the smallest and largest frame, and the MD5 of the audio.
//!
//! Float to integer conversion is the WAV writer's ([`super::wav::quantize`]: round to nearest,
//! clip at full scale, count clipped samples), so a FLAC and a WAV of the same deliverable hold
//! the same integers. No dither is added here.

use super::atomic::{AtomicFile, OutputError};
use super::wav::{quantize, stereo_ints_fast, WavSummary};
use crate::dsp::AudioRef;
use flacenc::bitsink::ByteSink;
use flacenc::component::{BitRepr, StreamInfo};
use flacenc::error::{Verified, Verify};
use flacenc::source::{Context, Fill, FrameBuf};
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Frames per FLAC block (flacenc's default, and the reference encoder's).
pub const BLOCK_FRAMES: usize = 4096;

/// Bytes of the STREAMINFO block's body.
const STREAMINFO_LEN: usize = 34;
/// Where STREAMINFO's body starts: after `fLaC` and its 4-byte block header.
const STREAMINFO_OFFSET: u64 = 8;
/// Metadata block types.
const BLOCK_STREAMINFO: u8 = 0;
const BLOCK_VORBIS_COMMENT: u8 = 4;
/// Set on the last metadata block's type byte.
const LAST_BLOCK: u8 = 0x80;
/// The vendor string of the Vorbis comment block.
pub const VENDOR: &str = concat!("stemgraph ", env!("CARGO_PKG_VERSION"), " (flacenc)");

/// LPC order of the encoder: the reference encoder's at its default level (`flac -5`).
pub const LPC_ORDER: usize = 8;

/// flacenc's encoder settings for masters: quantized LPC of order [`LPC_ORDER`] (flacenc's
/// default is 10) and no fixed predictors.
///
/// Measured on real masters (4096-frame blocks; 73 s loud master, 240 s stems): flacenc 0.5
/// chooses a fixed predictor whenever its LPC frame is not smaller than the *smaller* of the
/// verbatim and fixed frames, so on loud 24-bit masters it writes fixed frames larger than the
/// PCM they hold (the −9 LUFS master: 22.1 MB of FLAC for a 19.3 MB WAV; without fixed
/// predictors 16.2 MB). Elsewhere fixed predictors save ≤ 1.3 % (16-bit loud master 7.51 → 7.61
/// MB, stems 0–0.7 %). Both settings together cut encode time by about 30 %: the estimate of the
/// LPC (an auto-correlation per lag, each step a fused multiply-add) scales with the order. Our
/// copy of flacenc (vendor/flacenc/PATCHED.md) runs those on the CPU's FMA unit, not as calls
/// into compiler_builtins (the crate is built without the `fma` target feature), with the same
/// bytes. The audio is the same whatever the settings (lossless): only the file's size and bytes
/// differ.
fn encoder_config() -> flacenc::config::Encoder {
    let mut config = flacenc::config::Encoder::default();
    config.subframe_coding.use_fixed = false;
    config.subframe_coding.qlpc.lpc_order = LPC_ORDER;
    config
}

/// A FLAC file being written.
pub struct FlacOutput {
    dest: PathBuf,
    atomic: Option<AtomicFile>,
    writer: Option<BufWriter<File>>,
    config: Verified<flacenc::config::Encoder>,
    info: StreamInfo,
    channels: usize,
    bits: u32,
    /// Interleaved integer samples of the block being gathered.
    block: Vec<i32>,
    /// Frames in `block`.
    fill: usize,
    frame_buf: FrameBuf,
    /// MD5 of the samples and the sample count (flacenc's own bookkeeping).
    context: Context,
    /// Encoded bytes of one frame.
    sink: ByteSink,
    frame_number: usize,
    min_frame_bytes: usize,
    max_frame_bytes: usize,
    frames: u64,
    clipped: u64,
}

/// The body of a Vorbis comment block: vendor string and `KEY=value` fields, lengths
/// little-endian. Keys must be printable ASCII without `=` (they are case-insensitive; stored
/// as given).
pub fn vorbis_comment(vendor: &str, tags: &[(String, String)]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let put = |bytes: &[u8], out: &mut Vec<u8>| -> Result<(), String> {
        let len = u32::try_from(bytes.len()).map_err(|_| "a tag is too long".to_string())?;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(bytes);
        Ok(())
    };
    put(vendor.as_bytes(), &mut out)?;
    out.extend_from_slice(&(tags.len() as u32).to_le_bytes());
    for (key, value) in tags {
        if key.is_empty() || !key.bytes().all(|b| (0x20..=0x7d).contains(&b) && b != b'=') {
            return Err(format!(
                "`{key}` is not a tag name: use letters, digits and punctuation other than `=`"
            ));
        }
        put(format!("{key}={value}").as_bytes(), &mut out)?;
    }
    Ok(out)
}

impl FlacOutput {
    /// Starts writing `dest` (through a temporary file), refusing any path in `protected`.
    /// `bits` is 16 or 24; `tags` go to the Vorbis comment block in order.
    pub fn create(
        dest: &Path,
        sample_rate: u32,
        channels: usize,
        bits: u32,
        tags: &[(String, String)],
        protected: &[PathBuf],
    ) -> Result<FlacOutput, OutputError> {
        let encode = |message: String| OutputError::Encode {
            path: dest.to_path_buf(),
            message,
        };
        if bits != 16 && bits != 24 {
            return Err(encode(format!(
                "FLAC masters are 16 or 24 bits, not {bits}"
            )));
        }
        let info = StreamInfo::new(sample_rate as usize, channels, bits as usize)
            .map_err(|e| encode(format!("{e}")))?;
        let config = encoder_config()
            .into_verified()
            .map_err(|(_, e)| encode(format!("{e}")))?;
        let frame_buf =
            FrameBuf::with_size(channels, BLOCK_FRAMES).map_err(|e| encode(format!("{e}")))?;
        let comment = vorbis_comment(VENDOR, tags).map_err(encode)?;
        if comment.len() >= 1 << 24 {
            return Err(encode(
                "the tags are larger than a FLAC block can hold".into(),
            ));
        }
        let (atomic, mut file) = AtomicFile::create(dest, protected)?;
        let io = |source| OutputError::Io {
            path: dest.to_path_buf(),
            source,
        };
        let mut header = Vec::with_capacity(8 + STREAMINFO_LEN + 4 + comment.len());
        header.extend_from_slice(b"fLaC");
        header.push(BLOCK_STREAMINFO);
        header.extend_from_slice(&(STREAMINFO_LEN as u32).to_be_bytes()[1..]);
        header.extend_from_slice(&[0; STREAMINFO_LEN]);
        header.push(BLOCK_VORBIS_COMMENT | LAST_BLOCK);
        header.extend_from_slice(&(comment.len() as u32).to_be_bytes()[1..]);
        header.extend_from_slice(&comment);
        file.write_all(&header).map_err(io)?;
        Ok(FlacOutput {
            dest: dest.to_path_buf(),
            atomic: Some(atomic),
            writer: Some(file),
            config,
            info,
            channels,
            bits,
            block: vec![0; BLOCK_FRAMES * channels],
            fill: 0,
            frame_buf,
            context: Context::new(bits as usize, channels),
            sink: ByteSink::with_capacity(8 * BLOCK_FRAMES * channels * 4),
            frame_number: 0,
            min_frame_bytes: usize::MAX,
            max_frame_bytes: 0,
            frames: 0,
            clipped: 0,
        })
    }

    fn encode_error(&self, message: String) -> OutputError {
        OutputError::Encode {
            path: self.dest.clone(),
            message,
        }
    }

    /// Channels per frame.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Bytes held in buffers now: one block of samples, the encoder's frame buffer and the
    /// largest encoded frame so far. Never more than [`FlacOutput::buffer_bound`], whatever has
    /// been written.
    pub fn buffered_bytes(&self) -> usize {
        self.block.capacity() * 4 + self.frame_buf.size() * self.channels * 4 + self.max_frame_bytes
    }

    /// The most bytes a writer of `channels` channels buffers: one block of 32-bit samples in
    /// each of the gathering and the encoder's buffers, and one encoded frame at up to 64 bits
    /// per sample (a frame needs fewer than 33 bits per sample, even verbatim or rice-coded at
    /// its worst).
    pub fn buffer_bound(channels: usize) -> usize {
        BLOCK_FRAMES * channels * 4 * 4 + 64
    }

    /// Appends one block (its channel count must be the file's).
    pub fn write(&mut self, audio: AudioRef<'_>) -> Result<(), OutputError> {
        debug_assert_eq!(audio.channels(), self.channels);
        let mut n = 0;
        while n < audio.frames() {
            let take = (BLOCK_FRAMES - self.fill).min(audio.frames() - n);
            // Stereo: the first frames four at a time where the CPU can.
            let done = if self.channels == 2 {
                let (l, r) = (audio.channel(0), audio.channel(1));
                let dst = &mut self.block[2 * self.fill..2 * (self.fill + take)];
                let (done, clips) =
                    stereo_ints_fast(&l[n..n + take], &r[n..n + take], self.bits, dst);
                self.clipped += clips;
                done
            } else {
                0
            };
            for c in 0..self.channels {
                let src = &audio.channel(c)[n + done..n + take];
                for (i, &x) in src.iter().enumerate() {
                    let (v, clip) = quantize(x, self.bits);
                    self.clipped += u64::from(clip);
                    self.block[(self.fill + done + i) * self.channels + c] = v;
                }
            }
            self.fill += take;
            n += take;
            if self.fill == BLOCK_FRAMES {
                self.encode_block()?;
            }
        }
        self.frames += audio.frames() as u64;
        Ok(())
    }

    /// Appends `ints.len() / channels` frames already quantized to the file's word length
    /// (interleaved, as [`crate::io::quantize::quantize_planes`] gives them, `clipped` of them
    /// clipped): what [`FlacOutput::write`] encodes for the samples they came from.
    pub fn write_ints(&mut self, ints: &[i32], clipped: u64) -> Result<(), OutputError> {
        let channels = self.channels;
        let frames = ints.len() / channels;
        let mut n = 0;
        while n < frames {
            let take = (BLOCK_FRAMES - self.fill).min(frames - n);
            self.block[channels * self.fill..channels * (self.fill + take)]
                .copy_from_slice(&ints[channels * n..channels * (n + take)]);
            self.fill += take;
            n += take;
            if self.fill == BLOCK_FRAMES {
                self.encode_block()?;
            }
        }
        self.frames += frames as u64;
        self.clipped += clipped;
        Ok(())
    }

    /// Encodes the gathered block as one FLAC frame and writes it.
    fn encode_block(&mut self) -> Result<(), OutputError> {
        if self.fill == 0 {
            return Ok(());
        }
        let samples = &self.block[..self.fill * self.channels];
        self.frame_buf
            .fill_interleaved(samples)
            .map_err(|e| OutputError::Encode {
                path: self.dest.clone(),
                message: format!("{e}"),
            })?;
        self.context
            .fill_interleaved(samples)
            .map_err(|e| OutputError::Encode {
                path: self.dest.clone(),
                message: format!("{e}"),
            })?;
        let frame = flacenc::encode_fixed_size_frame(
            &self.config,
            &self.frame_buf,
            self.frame_number,
            &self.info,
        )
        .map_err(|e| self.encode_error(format!("{e}")))?;
        self.sink.clear();
        frame
            .write(&mut self.sink)
            .map_err(|e| self.encode_error(format!("{e:?}")))?;
        let bytes = self.sink.as_slice();
        self.min_frame_bytes = self.min_frame_bytes.min(bytes.len());
        self.max_frame_bytes = self.max_frame_bytes.max(bytes.len());
        let writer = self.writer.as_mut().expect("written after finish");
        if let Err(source) = writer.write_all(bytes) {
            return Err(OutputError::Io {
                path: self.dest.clone(),
                source,
            });
        }
        self.frame_number += 1;
        self.fill = 0;
        Ok(())
    }

    /// Encodes what is left, completes STREAMINFO and renames the file into place.
    pub fn finish(mut self) -> Result<WavSummary, OutputError> {
        self.encode_block()?;
        let block = BLOCK_FRAMES;
        self.info
            .set_block_sizes(block, block)
            .map_err(|e| self.encode_error(format!("{e}")))?;
        if self.frame_number > 0 {
            self.info
                .set_frame_sizes(self.min_frame_bytes, self.max_frame_bytes)
                .map_err(|e| self.encode_error(format!("{e}")))?;
        } else {
            self.info
                .set_frame_sizes(0, 0)
                .map_err(|e| self.encode_error(format!("{e}")))?;
        }
        self.info.set_total_samples(self.frames as usize);
        self.info.set_md5_digest(&self.context.md5_digest());
        self.sink.clear();
        self.info
            .write(&mut self.sink)
            .map_err(|e| self.encode_error(format!("{e}")))?;
        let body = self.sink.as_slice().to_vec();
        debug_assert_eq!(body.len(), STREAMINFO_LEN);
        let mut writer = self.writer.take().expect("finished once");
        let io = |source| OutputError::Io {
            path: self.dest.clone(),
            source,
        };
        writer.flush().map_err(io)?;
        writer
            .seek(SeekFrom::Start(STREAMINFO_OFFSET))
            .map_err(io)?;
        writer.write_all(&body).map_err(io)?;
        let file = writer.into_inner().map_err(|e| io(e.into_error()))?;
        drop(file);
        let path = self.atomic.take().expect("committed once").commit()?;
        Ok(WavSummary {
            path,
            frames: self.frames,
            clipped: self.clipped,
        })
    }
}

impl Drop for FlacOutput {
    fn drop(&mut self) {
        // Close the file before the AtomicFile removes it.
        self.writer.take();
    }
}
