//! A fixed delay line that the compiler inserts to keep parallel paths sample-aligned.
//!
//! Not in the registry: recipes never name it. It also stands in for a bypassed processor, so
//! bypassing keeps the processor's latency and never shifts timing.

use super::{AudioMut, AudioRef, ParamBlock, ParamInfo, ProcessSpec, Processor};

/// A delay of a fixed number of samples per channel (a ring buffer).
pub struct LatencyDelay {
    delay: usize,
    channels: usize,
    ring: Vec<Vec<f64>>,
    pos: usize,
}

impl LatencyDelay {
    /// A delay of `delay` samples on `channels` channels.
    pub fn new(delay: usize, channels: usize) -> Self {
        Self {
            delay,
            channels,
            ring: Vec::new(),
            pos: 0,
        }
    }

    /// The delay in samples.
    pub fn delay(&self) -> usize {
        self.delay
    }
}

impl Processor for LatencyDelay {
    fn kind(&self) -> &'static str {
        "latency_delay"
    }
    fn params(&self) -> &[ParamInfo] {
        &[]
    }
    fn output_channels(&self) -> usize {
        self.channels
    }
    fn prepare(&mut self, _spec: &ProcessSpec) {
        self.ring = vec![vec![0.0; self.delay.max(1)]; self.channels];
        self.pos = 0;
    }
    fn reset(&mut self) {
        self.ring.iter_mut().for_each(|r| r.fill(0.0));
        self.pos = 0;
    }
    fn process(
        &mut self,
        audio: &mut AudioMut<'_>,
        _key: Option<AudioRef<'_>>,
        _params: ParamBlock<'_>,
    ) {
        if self.delay == 0 {
            return;
        }
        let len = self.delay;
        let frames = audio.frames();
        let mut pos = self.pos;
        for c in 0..self.channels {
            let ring = &mut self.ring[c];
            let x = audio.channel_mut(c);
            pos = self.pos;
            for s in x.iter_mut().take(frames) {
                let out = ring[pos];
                ring[pos] = *s;
                *s = out;
                pos += 1;
                if pos == len {
                    pos = 0;
                }
            }
        }
        self.pos = pos;
    }
    fn latency(&self) -> usize {
        self.delay
    }
    crate::hand_over! {
        config: delay, channels;
        state: ring, pos;
    }
}
