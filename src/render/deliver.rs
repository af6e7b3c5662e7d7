//! Deliverables: one output of the graph turned into one file.
//!
//! The pipeline per deliverable is: (sample-rate conversion) → (dither) → quantize → write.
//! Sample-rate conversion, the true-peak safety limiter and dither join here as they are built;
//! a deliverable that asks for a stage that does not exist yet is refused with a clear message,
//! never silently ignored.

use super::RenderError;
use crate::dsp::AudioRef;
use crate::engine::Schedule;
use crate::io::atomic::OutputError;
use crate::io::wav::{WavFormat, WavOutput, WavSummary};
use crate::session::{Deliverable, DitherKind, Session};
use std::path::{Path, PathBuf};

/// A file a render produced.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveredFile {
    /// The WAV summary (path, frames, clipped samples).
    pub wav: WavSummary,
    /// Bits per sample.
    pub bits: u32,
    /// Sample rate.
    pub sample_rate: u32,
    /// The output node it came from.
    pub output: String,
}

/// A deliverable being written.
pub struct DeliverableSink {
    output_index: usize,
    output_id: String,
    wav: WavOutput,
    bits: u32,
    sample_rate: u32,
    lead_silence: u64,
    tail_silence: u64,
    started: bool,
}

/// Expands `{title}` (made safe for file names) in a file pattern.
pub fn expand_file_name(pattern: &str, session: &Session) -> String {
    let title: String = session
        .title
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    pattern.replace("{title}", title.trim())
}

impl DeliverableSink {
    /// Prepares the file for deliverable `d`.
    pub fn create(
        d: &Deliverable,
        session: &Session,
        schedule: &Schedule,
        session_rate: u32,
        out_dir: &Path,
        protected: &[PathBuf],
    ) -> Result<DeliverableSink, RenderError> {
        let at = crate::graph::spec::at(&d.origin);
        let outputs: Vec<&str> = (0..schedule.output_count())
            .map(|o| schedule.output_slot(o).id.as_str())
            .collect();
        let output_index = match &d.output {
            Some(id) => outputs.iter().position(|o| o == id).ok_or_else(|| {
                RenderError::Invalid(format!(
                    "{at}deliverable `{}` names output `{id}`, but the graph's outputs are: {}",
                    d.file,
                    outputs.join(", ")
                ))
            })?,
            None if outputs.len() == 1 => 0,
            None => {
                return Err(RenderError::Invalid(format!(
                    "{at}the graph has several outputs ({}): say which one deliverable `{}` is made from",
                    outputs.join(", "),
                    d.file
                )))
            }
        };
        let sample_rate = d.sample_rate.unwrap_or(session_rate);
        if sample_rate != session_rate {
            return Err(RenderError::Invalid(format!(
                "{at}deliverable `{}` asks for {sample_rate} Hz, but sample-rate conversion of \
                 deliverables is not available yet; deliver at the session rate ({session_rate} Hz)",
                d.file
            )));
        }
        if d.dither != DitherKind::None {
            return Err(RenderError::Invalid(format!(
                "{at}deliverable `{}` asks for dither, which is not available yet",
                d.file
            )));
        }
        let format = WavFormat::from_bits(d.bits).ok_or_else(|| {
            RenderError::Invalid(format!(
                "{at}deliverable `{}`: {} bits is not a WAV format",
                d.file, d.bits
            ))
        })?;
        let path = out_dir.join(expand_file_name(&d.file, session));
        let channels = schedule.output(output_index, 0).channels();
        let wav = WavOutput::create(&path, sample_rate, channels, format, protected)?;
        Ok(DeliverableSink {
            output_index,
            output_id: outputs[output_index].to_string(),
            wav,
            bits: d.bits,
            sample_rate,
            lead_silence: crate::units::seconds_to_samples(d.lead_silence_s, f64::from(sample_rate))
                .max(0) as u64,
            tail_silence: crate::units::seconds_to_samples(d.tail_silence_s, f64::from(sample_rate))
                .max(0) as u64,
            started: false,
        })
    }

    /// The schedule output this deliverable is made from.
    pub fn output_index(&self) -> usize {
        self.output_index
    }

    /// Writes `frames` frames of silence.
    fn write_silence(&mut self, frames: u64) -> Result<(), OutputError> {
        let channels = self.wav.channels();
        let zeros = crate::dsp::AudioBuffer::new(channels, 4096);
        let mut left = frames;
        while left > 0 {
            let n = left.min(4096) as usize;
            self.wav.write(zeros.view(n))?;
            left -= n as u64;
        }
        Ok(())
    }

    /// Writes one block of the output.
    pub fn write(&mut self, block: AudioRef<'_>) -> Result<(), OutputError> {
        if !self.started {
            self.started = true;
            self.write_silence(self.lead_silence)?;
        }
        self.wav.write(block)
    }

    /// Completes the file.
    pub fn finish(mut self) -> Result<DeliveredFile, OutputError> {
        if !self.started {
            self.write_silence(self.lead_silence)?;
        }
        self.write_silence(self.tail_silence)?;
        Ok(DeliveredFile {
            wav: self.wav.finish()?,
            bits: self.bits,
            sample_rate: self.sample_rate,
            output: self.output_id,
        })
    }
}
