//! The stages of a deliverable after the graph (and after its sample-rate conversion): the
//! true-peak safety limiter, whose delay is removed, and dither; and the silence written
//! around a deliverable. The dither is not applied here: each block goes out with the
//! [`TpdfQuantizer`] that dithers it as it is quantized for the file ([`Write`]).

use super::SAFETY_MARGIN_DB;
use crate::dsp::dither::TpdfQuantizer;
use crate::dsp::standalone::Standalone;
use crate::dsp::{AudioBuffer, AudioMut, AudioRef, ProcessorConfig};
use crate::io::atomic::OutputError;

/// Where the stages' output goes: each block of samples, with the dither still to apply to it
/// as it is quantized (the stream's own, advanced past every frame before it), if any.
pub(super) type Write<'a> =
    dyn FnMut(AudioRef<'_>, Option<&mut TpdfQuantizer>) -> Result<(), OutputError> + 'a;

/// The stages after the graph: safety limiter and dither, with the limiter's delay removed.
pub(super) struct Stages {
    limiter: Option<Standalone>,
    dither: Option<TpdfQuantizer>,
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
        let dither = dither_bits.map(|bits| TpdfQuantizer::new(channels, bits, seed));
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
        write: &mut Write<'_>,
    ) -> Result<(), OutputError> {
        if self.limiter.is_none() {
            // Nothing changes the samples here: no copy.
            return write(block, self.dither.as_mut());
        }
        let max = self.scratch.max_frames();
        let mut start = 0;
        while start < block.frames() {
            let n = (block.frames() - start).min(max);
            let part = block.slice(start, start + n);
            let mut scratch = self.scratch.view_mut(n);
            for c in 0..part.channels() {
                scratch.channel_mut(c).copy_from_slice(part.channel(c));
            }
            process(
                &mut self.limiter,
                &mut self.dither,
                &mut self.skip,
                &mut self.max_gr_db,
                scratch,
                write,
            )?;
            start += n;
        }
        Ok(())
    }

    /// [`Self::run`] on a block the caller is done with (of at most the block size the stages
    /// were made for: larger ones are copied in parts as [`Self::run`] does): processed where
    /// it is instead of in a copy. The same samples come out.
    pub(super) fn run_in_place(
        &mut self,
        block: AudioMut<'_>,
        write: &mut Write<'_>,
    ) -> Result<(), OutputError> {
        if self.limiter.is_none() {
            return write(block.as_ref(), self.dither.as_mut());
        }
        if block.frames() > self.scratch.max_frames() {
            return self.run(block.as_ref(), write);
        }
        process(
            &mut self.limiter,
            &mut self.dither,
            &mut self.skip,
            &mut self.max_gr_db,
            block,
            write,
        )
    }

    /// Pushes the limiter's delay out with silence.
    pub(super) fn flush(&mut self, write: &mut Write<'_>) -> Result<(), OutputError> {
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

/// The safety limiter over `audio`, in place (its largest gain reduction kept in `max_gr_db`),
/// and what comes out after the limiter's delay (`skip` frames still to drop) handed to `write`
/// with the dither, advanced past the frames dropped (as dithering them would).
fn process(
    limiter: &mut Option<Standalone>,
    dither: &mut Option<TpdfQuantizer>,
    skip: &mut usize,
    max_gr_db: &mut f64,
    mut audio: AudioMut<'_>,
    write: &mut Write<'_>,
) -> Result<(), OutputError> {
    let n = audio.frames();
    if let Some(l) = limiter {
        l.process(&mut audio);
        if let Some(gr) = l
            .processor()
            .telemetry()
            .and_then(|t| t.get_named(crate::dsp::telemetry::GAIN_REDUCTION_DB))
        {
            *max_gr_db = max_gr_db.max(gr);
        }
    }
    let drop = (*skip).min(n);
    *skip -= drop;
    if let Some(d) = dither {
        d.skip(drop);
    }
    if drop < n {
        write(audio.as_ref().slice(drop, n), dither.as_mut())?;
    }
    Ok(())
}

/// Writes `frames` frames of silence through `write`.
pub(super) fn silence(
    channels: usize,
    frames: u64,
    write: &mut Write<'_>,
) -> Result<(), OutputError> {
    let zeros = AudioBuffer::new(channels, 4096);
    let mut left = frames;
    while left > 0 {
        let n = left.min(4096) as usize;
        write(zeros.view(n), None)?;
        left -= n as u64;
    }
    Ok(())
}
