//! The stages of a deliverable after the graph (and after its sample-rate conversion): the
//! true-peak safety limiter, whose delay is removed, and dither; and the silence written
//! around a deliverable.

use super::SAFETY_MARGIN_DB;
use crate::dsp::standalone::Standalone;
use crate::dsp::{AudioBuffer, AudioRef, ProcessorConfig};
use crate::io::atomic::OutputError;

/// The stages after the graph: safety limiter and dither, with the limiter's delay removed.
pub(super) struct Stages {
    limiter: Option<Standalone>,
    dither: Option<Standalone>,
    scratch: AudioBuffer,
    /// Output frames still to drop (the limiter's latency).
    skip: usize,
    pub(super) max_gr_db: f64,
}

impl Stages {
    pub(super) fn new(
        channels: usize,
        rate: u32,
        ceiling: Option<f64>,
        dither_bits: Option<u32>,
        seed: u64,
        block: usize,
    ) -> Result<Self, String> {
        let limiter = match ceiling {
            Some(c) => Some(
                Standalone::new(
                    "limiter",
                    &ProcessorConfig::new().num("ceiling_dbtp", c - SAFETY_MARGIN_DB),
                    channels,
                    f64::from(rate),
                    block,
                )
                .map_err(|e| format!("safety limiter: {e}"))?,
            ),
            None => None,
        };
        let dither = match dither_bits {
            Some(bits) => Some(
                Standalone::new(
                    "dither",
                    &ProcessorConfig::new()
                        .num("bits", f64::from(bits))
                        .num("seed", seed as f64),
                    channels,
                    f64::from(rate),
                    block,
                )
                .map_err(|e| format!("dither: {e}"))?,
            ),
            None => None,
        };
        let skip = limiter.as_ref().map_or(0, |l| l.latency());
        Ok(Self {
            limiter,
            dither,
            scratch: AudioBuffer::new(channels, block),
            skip,
            max_gr_db: 0.0,
        })
    }

    fn latency(&self) -> usize {
        self.limiter.as_ref().map_or(0, |l| l.latency())
    }

    /// Runs `block` through the stages and hands what comes out to `write`.
    pub(super) fn run(
        &mut self,
        block: AudioRef<'_>,
        write: &mut dyn FnMut(AudioRef<'_>) -> Result<(), OutputError>,
    ) -> Result<(), OutputError> {
        if self.limiter.is_none() && self.dither.is_none() {
            return write(block);
        }
        let max = self.scratch.max_frames();
        let mut start = 0;
        while start < block.frames() {
            let n = (block.frames() - start).min(max);
            let part = block.slice(start, start + n);
            for c in 0..part.channels() {
                self.scratch
                    .channel_mut(c, n)
                    .copy_from_slice(part.channel(c));
            }
            if let Some(l) = &mut self.limiter {
                l.process(&mut self.scratch.view_mut(n));
                if let Some(gr) = l
                    .processor()
                    .telemetry()
                    .and_then(|t| t.get_named(crate::dsp::telemetry::GAIN_REDUCTION_DB))
                {
                    self.max_gr_db = self.max_gr_db.max(gr);
                }
            }
            if let Some(d) = &mut self.dither {
                d.process(&mut self.scratch.view_mut(n));
            }
            let drop = self.skip.min(n);
            self.skip -= drop;
            if drop < n {
                write(self.scratch.view(n).slice(drop, n))?;
            }
            start += n;
        }
        Ok(())
    }

    /// Pushes the limiter's delay out with silence.
    pub(super) fn flush(
        &mut self,
        write: &mut dyn FnMut(AudioRef<'_>) -> Result<(), OutputError>,
    ) -> Result<(), OutputError> {
        let mut left = self.latency();
        let zeros = AudioBuffer::new(self.scratch.channels(), self.scratch.max_frames());
        while left > 0 {
            let n = left.min(zeros.max_frames());
            self.run(zeros.view(n), write)?;
            left -= n;
        }
        Ok(())
    }
}

/// Writes `frames` frames of silence through `write`.
pub(super) fn silence(
    channels: usize,
    frames: u64,
    write: &mut dyn FnMut(AudioRef<'_>) -> Result<(), OutputError>,
) -> Result<(), OutputError> {
    let zeros = AudioBuffer::new(channels, 4096);
    let mut left = frames;
    while left > 0 {
        let n = left.min(4096) as usize;
        write(zeros.view(n))?;
        left -= n as u64;
    }
    Ok(())
}
