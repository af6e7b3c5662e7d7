//! MP3 files: an ID3v2.4 tag, then LAME's constant-bit-rate stream (joint stereo, quality 2,
//! the output rate forced to the input's so LAME never resamples), its first frame the LAME
//! Info tag (encoder delay and padding for gapless decoders), written over its placeholder at
//! the end. LAME is built from the source mp3lame-sys vendors.

use super::id3;
use crate::dsp::AudioRef;
use crate::io::atomic::{AtomicFile, OutputError};
use mp3lame_encoder::{
    Bitrate, Builder, Encoder, FlushGap, InterleavedPcm, Mode, MonoPcm, Quality,
};
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

/// Frames handed to LAME per call.
const CHUNK: usize = 4096;

/// LAME's version string.
pub fn version() -> String {
    mp3lame_encoder::mp3lame_version().into_owned()
}

fn bitrate(kbps: u32) -> Option<Bitrate> {
    Some(match kbps {
        32 => Bitrate::Kbps32,
        40 => Bitrate::Kbps40,
        48 => Bitrate::Kbps48,
        64 => Bitrate::Kbps64,
        80 => Bitrate::Kbps80,
        96 => Bitrate::Kbps96,
        112 => Bitrate::Kbps112,
        128 => Bitrate::Kbps128,
        160 => Bitrate::Kbps160,
        192 => Bitrate::Kbps192,
        224 => Bitrate::Kbps224,
        256 => Bitrate::Kbps256,
        320 => Bitrate::Kbps320,
        _ => return None,
    })
}

/// An MP3 file being encoded.
pub struct Mp3Output {
    dest: PathBuf,
    atomic: Option<AtomicFile>,
    writer: Option<BufWriter<File>>,
    encoder: Encoder,
    channels: usize,
    /// Where the first MP3 frame (the Info tag's placeholder) starts: after the ID3v2 tag.
    first_frame: u64,
    pcm: Vec<f32>,
    out: Vec<u8>,
}

impl Mp3Output {
    pub fn create(
        dest: &Path,
        rate: u32,
        channels: usize,
        kbps: u32,
        tags: &[(String, String)],
        protected: &[PathBuf],
    ) -> Result<Mp3Output, OutputError> {
        let encode = |message: String| OutputError::Encode {
            path: dest.to_path_buf(),
            message,
        };
        let brate = bitrate(kbps)
            .ok_or_else(|| encode(format!("LAME has no constant bit rate of {kbps} kbit/s")))?;
        let lame = |what: &str, e: mp3lame_encoder::BuildError| encode(format!("LAME {what}: {e}"));
        let mut b = Builder::new().ok_or_else(|| encode("LAME could not start".into()))?;
        b.set_num_channels(channels as u8)
            .map_err(|e| lame("channels", e))?;
        b.set_sample_rate(rate)
            .map_err(|e| lame("sample rate", e))?;
        b.set_output_sample_rate(NonZeroU32::new(rate))
            .map_err(|e| lame("output sample rate", e))?;
        b.set_brate(brate).map_err(|e| lame("bit rate", e))?;
        b.set_vbr_mode(mp3lame_encoder::VbrMode::Off)
            .map_err(|e| lame("mode", e))?;
        b.set_mode(if channels == 1 {
            Mode::Mono
        } else {
            Mode::JointStereo
        })
        .map_err(|e| lame("channel mode", e))?;
        b.set_quality(Quality::NearBest)
            .map_err(|e| lame("quality", e))?;
        b.set_to_write_vbr_tag(true)
            .map_err(|e| lame("Info tag", e))?;
        let encoder = b.build().map_err(|e| lame("settings", e))?;
        let tag = id3::tag(tags).map_err(encode)?;
        let (atomic, mut file) = AtomicFile::create(dest, protected)?;
        file.write_all(&tag).map_err(|source| OutputError::Io {
            path: dest.to_path_buf(),
            source,
        })?;
        Ok(Mp3Output {
            dest: dest.to_path_buf(),
            atomic: Some(atomic),
            writer: Some(file),
            encoder,
            channels,
            first_frame: tag.len() as u64,
            pcm: Vec::with_capacity(CHUNK * channels),
            // LAME's worst case: 1.25 × samples + 7200 bytes.
            out: Vec::with_capacity(CHUNK * 5 / 4 + 7200),
        })
    }

    fn io(&self, source: std::io::Error) -> OutputError {
        OutputError::Io {
            path: self.dest.clone(),
            source,
        }
    }

    fn encode_error(&self, e: mp3lame_encoder::EncodeError) -> OutputError {
        OutputError::Encode {
            path: self.dest.clone(),
            message: format!("LAME: {e}"),
        }
    }

    pub fn write(&mut self, audio: AudioRef<'_>) -> Result<(), OutputError> {
        let mut at = 0;
        while at < audio.frames() {
            let n = (audio.frames() - at).min(CHUNK);
            self.pcm.clear();
            for i in at..at + n {
                for c in 0..self.channels {
                    self.pcm.push(audio.channel(c)[i] as f32);
                }
            }
            self.out.clear();
            let r = if self.channels == 1 {
                self.encoder
                    .encode_to_vec(MonoPcm(&self.pcm[..]), &mut self.out)
            } else {
                self.encoder
                    .encode_to_vec(InterleavedPcm(&self.pcm[..]), &mut self.out)
            };
            r.map_err(|e| self.encode_error(e))?;
            let w = self.writer.as_mut().expect("written before finish");
            if let Err(e) = w.write_all(&self.out) {
                return Err(self.io(e));
            }
            at += n;
        }
        Ok(())
    }

    /// Flushes LAME, writes the Info tag over its placeholder and closes the file (still
    /// under its temporary name).
    pub fn finish(mut self) -> Result<AtomicFile, OutputError> {
        self.out.clear();
        self.encoder
            .flush_to_vec::<FlushGap>(&mut self.out)
            .map_err(|e| self.encode_error(e))?;
        let mut info = Vec::with_capacity(self.encoder.lame_tag_size());
        let has_info = self.encoder.lame_tag_encode_to_vec(&mut info).is_some();
        let mut w = self.writer.take().expect("finished once");
        let result = (|| -> std::io::Result<()> {
            w.write_all(&self.out)?;
            if has_info {
                w.seek(SeekFrom::Start(self.first_frame))?;
                w.write_all(&info)?;
            }
            w.flush()
        })();
        drop(w);
        result.map_err(|e| self.io(e))?;
        Ok(self.atomic.take().expect("finished once"))
    }
}
