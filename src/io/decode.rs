//! PLACEHOLDER until the streaming decoder lands (branch `decode`): WAV only, through hound.
#![allow(missing_docs)]
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct StemInfo {
    pub path: PathBuf,
    pub sample_rate: u32,
    pub channels: usize,
    pub frames: Option<u64>,
    pub bits_per_sample: Option<u32>,
    pub codec: String,
    pub lossless: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("cannot decode {path}: {message}")]
    Other { path: PathBuf, message: String },
}

pub struct Decoder {
    info: StemInfo,
    reader: hound::WavReader<std::io::BufReader<std::fs::File>>,
}

impl Decoder {
    pub fn open(path: &Path) -> Result<Decoder, DecodeError> {
        let err = |e: hound::Error| DecodeError::Other {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let reader = hound::WavReader::open(path).map_err(err)?;
        let s = reader.spec();
        Ok(Decoder {
            info: StemInfo {
                path: path.to_path_buf(),
                sample_rate: s.sample_rate,
                channels: s.channels as usize,
                frames: Some(u64::from(reader.duration())),
                bits_per_sample: Some(u32::from(s.bits_per_sample)),
                codec: "pcm".into(),
                lossless: true,
            },
            reader,
        })
    }
    pub fn info(&self) -> &StemInfo {
        &self.info
    }
    pub fn read(
        &mut self,
        out: &mut [&mut [f64]],
        max_frames: usize,
    ) -> Result<usize, DecodeError> {
        let ch = self.info.channels;
        let scale = 1.0 / (1u64 << (self.info.bits_per_sample.unwrap() - 1)) as f64;
        let mut samples = self.reader.samples::<i32>();
        for n in 0..max_frames {
            for c in 0..ch {
                match samples.next() {
                    None => return Ok(n),
                    Some(v) => {
                        out[c][n] = f64::from(v.map_err(|e| DecodeError::Other {
                            path: self.info.path.clone(),
                            message: e.to_string(),
                        })?) * scale
                    }
                }
            }
        }
        Ok(max_frames)
    }
}

pub struct StreamOptions {
    pub target_rate: u32,
    pub target_channels: usize,
    pub length_frames: Option<u64>,
}

#[derive(Debug)]
pub enum StreamWarning {}
impl std::fmt::Display for StreamWarning {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        Ok(())
    }
}

pub struct StemStream {
    dec: Decoder,
    done: bool,
}

impl StemStream {
    pub fn open(
        path: &Path,
        _opts: &StreamOptions,
    ) -> Result<(StemStream, Vec<StreamWarning>), DecodeError> {
        Ok((
            StemStream {
                dec: Decoder::open(path)?,
                done: false,
            },
            Vec::new(),
        ))
    }
    pub fn read_block(&mut self, out: &mut [&mut [f64]], frames: usize) -> Result<(), DecodeError> {
        let n = if self.done {
            0
        } else {
            self.dec.read(out, frames)?
        };
        if n < frames {
            self.done = true;
            for ch in out.iter_mut() {
                ch[n..frames].fill(0.0);
            }
        }
        Ok(())
    }
}
