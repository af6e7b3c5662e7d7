//! The deliverables written on a thread of their own while a pass runs (renders on two or more
//! threads). The pass copies each output block into a recycled buffer, hands it over and goes on
//! with the next block while the safety limiters, dither, encoders and files work on this one.
//! Blocks arrive in order, so every file is the same, bit for bit, as when the pass writes it
//! itself; a few blocks in flight keep both threads busy without holding more of the song.

use super::deliver::Deliveries;
use super::RenderError;
use crate::dsp::{AudioBuffer, AudioRef};
use crossbeam::channel::{bounded, Receiver, Sender};
use std::thread::{Scope, ScopedJoinHandle};

/// Blocks in flight between the pass and the writer.
const IN_FLIGHT: usize = 16;

/// One block of one output, handed over.
struct Handed {
    output: usize,
    buffer: AudioBuffer,
    frames: usize,
}

/// The writer thread and the pass's end of its queues.
pub(crate) struct SinkThread<'scope> {
    to_writer: Sender<Handed>,
    free: Receiver<AudioBuffer>,
    writer: ScopedJoinHandle<'scope, Result<Deliveries, RenderError>>,
    capacity: usize,
}

impl<'scope> SinkThread<'scope> {
    /// Starts the writer on `scope` with `sinks`, for blocks of up to `channels` channels
    /// (buffers of `capacity` frames; larger blocks are handed over in parts).
    pub fn spawn<'env>(
        scope: &'scope Scope<'scope, 'env>,
        mut sinks: Deliveries,
        channels: usize,
        capacity: usize,
    ) -> Self {
        let capacity = capacity.max(1);
        let (to_writer, blocks) = bounded::<Handed>(IN_FLIGHT);
        let (give_back, free) = bounded::<AudioBuffer>(IN_FLIGHT);
        for _ in 0..IN_FLIGHT {
            give_back
                .send(AudioBuffer::new(channels.max(1), capacity))
                .expect("the queue holds them all");
        }
        let writer = std::thread::Builder::new()
            .name("deliverables".into())
            .spawn_scoped(scope, move || {
                for h in blocks {
                    let block = h.buffer.view(h.frames);
                    sinks.write(h.output, block)?;
                    // The pass may have stopped taking buffers back: nothing to do then.
                    let _ = give_back.send(h.buffer);
                }
                Ok(sinks)
            })
            .expect("a thread for the deliverables");
        Self {
            to_writer,
            free,
            writer,
            capacity,
        }
    }

    /// Hands `block` of output `output` to the writer (waits while [`IN_FLIGHT`] blocks are
    /// waiting to be written).
    pub fn write(&mut self, output: usize, block: AudioRef<'_>) -> Result<(), RenderError> {
        let mut start = 0;
        while start < block.frames() {
            let n = (block.frames() - start).min(self.capacity);
            let part = block.slice(start, start + n);
            let mut buffer = self.free.recv().map_err(|_| stopped())?;
            buffer.set_channels(part.channels());
            for c in 0..part.channels() {
                buffer.channel_mut(c, n).copy_from_slice(part.channel(c));
            }
            self.to_writer
                .send(Handed {
                    output,
                    buffer,
                    frames: n,
                })
                .map_err(|_| stopped())?;
            start += n;
        }
        Ok(())
    }

    /// Waits for the writer to write what it was handed and gives the deliverables back (or the
    /// error that stopped it).
    pub fn finish(self) -> Result<Deliveries, RenderError> {
        drop(self.to_writer);
        match self.writer.join() {
            Ok(r) => r,
            Err(_) => Err(RenderError::Invalid(
                "the deliverables' writer thread panicked".into(),
            )),
        }
    }
}

/// The writer has stopped (its error is what [`SinkThread::finish`] returns).
fn stopped() -> RenderError {
    RenderError::Invalid("the deliverables' writer stopped".into())
}
