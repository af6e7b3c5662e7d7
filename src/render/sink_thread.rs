//! The deliverables written on threads of their own while a pass runs (renders on two or more
//! threads). The deliverables are shared between up to [`WRITERS`] writer threads by their
//! work (whole feeds: an output at one rate and every deliverable made from it, see
//! [`Deliveries::split`]); the pass may keep the lightest share and write it itself (a light
//! pass beside its deliverables, see [`super::run::Staging`]). The pass copies each output
//! block into a recycled buffer of every writer that uses that output, hands it over and goes
//! on (with its own share, then the next block) while the converters, safety limiters,
//! dither, measurements, encoders and files work on this one.
//! Blocks arrive in order, so every file is the same, bit for bit, as when the pass writes it
//! itself; a few blocks in flight keep the threads busy without holding more of the song.

use super::deliver::Deliveries;
use super::RenderError;
use crate::dsp::{AudioBuffer, AudioRef};
use crate::engine::parallel::handover::{store_fence, stream_copy};
use crossbeam::channel::{bounded, Receiver, Sender};
use std::thread::{Scope, ScopedJoinHandle};

/// Blocks in flight between the pass and each writer.
const IN_FLIGHT: usize = 16;

/// The most writer threads: the pass and two writers keep two cores busy when the
/// deliverables are more work than the pass (several rates, FLAC).
pub(crate) const WRITERS: usize = 2;

/// One block of one output, handed over.
struct Handed {
    output: usize,
    buffer: AudioBuffer,
    frames: usize,
}

/// One writer thread and the pass's end of its queues.
struct Writer<'scope> {
    to_writer: Sender<Handed>,
    free: Receiver<AudioBuffer>,
    handle: ScopedJoinHandle<'scope, Result<Deliveries, RenderError>>,
    /// Which outputs its deliverables are made from.
    uses: Vec<bool>,
}

/// The writer threads and the pass's end of their queues.
pub(crate) struct SinkThread<'scope> {
    writers: Vec<Writer<'scope>>,
    capacity: usize,
    /// The share the pass writes itself, on its own thread.
    own: Option<Deliveries>,
}

impl<'scope> SinkThread<'scope> {
    /// Starts up to `writers` writers on `scope` with `sinks` (made from `outputs` outputs),
    /// for blocks of up to `channels` channels (buffers of `capacity` frames; larger blocks are
    /// handed over in parts). With `keep_lightest`, the deliverables are shared in
    /// `writers + 1` parts and the lightest stays with the pass ([`Self::write`] writes it);
    /// with `lend` too (the frames every output hands on, when its deliverables hold them as
    /// they come), the pass's share lends the analysis of one of its deliverables to a writer
    /// whose own analysis its loudness pairs with ([`Deliveries::lend_across`]).
    #[allow(clippy::too_many_arguments)]
    pub fn spawn<'env>(
        scope: &'scope Scope<'scope, 'env>,
        sinks: Deliveries,
        writers: usize,
        keep_lightest: bool,
        lend: Option<u64>,
        outputs: usize,
        channels: usize,
        capacity: usize,
    ) -> Self {
        let capacity = capacity.max(1);
        let mut parts = sinks.split(writers + usize::from(keep_lightest));
        let mut own = None;
        if keep_lightest && parts.len() > 1 {
            let lightest = (0..parts.len())
                .min_by(|&a, &b| parts[a].weight().total_cmp(&parts[b].weight()))
                .expect("two or more parts");
            let mut kept = parts.remove(lightest);
            if let Some(frames) = lend {
                for part in &mut parts {
                    if kept.lend_across(part, frames) {
                        break;
                    }
                }
            }
            own = Some(kept);
        }
        let writers = parts
            .into_iter()
            .map(|part| {
                let uses = (0..outputs).map(|o| part.uses(o)).collect();
                spawn_writer(scope, part, uses, channels, capacity)
            })
            .collect();
        Self {
            writers,
            capacity,
            own,
        }
    }

    /// Hands `block` of output `output` to the writers that use it (waits while [`IN_FLIGHT`]
    /// blocks are waiting to be written), then writes it into the pass's own share.
    pub fn write(&mut self, output: usize, block: AudioRef<'_>) -> Result<(), RenderError> {
        self.hand_over(output, block)?;
        match self.own.as_mut() {
            Some(own) => own.write(output, block),
            None => Ok(()),
        }
    }

    /// Hands `block` of output `output` to the writers that use it.
    fn hand_over(&mut self, output: usize, block: AudioRef<'_>) -> Result<(), RenderError> {
        for w in &mut self.writers {
            if !w.uses.get(output).copied().unwrap_or(false) {
                continue;
            }
            let mut start = 0;
            while start < block.frames() {
                let n = (block.frames() - start).min(self.capacity);
                let part = block.slice(start, start + n);
                let mut buffer = w.free.recv().map_err(|_| stopped())?;
                buffer.set_channels(part.channels());
                // Streaming stores: the buffer's lines were last read by the writer's core.
                for c in 0..part.channels() {
                    stream_copy(buffer.channel_mut(c, n), part.channel(c));
                }
                store_fence();
                w.to_writer
                    .send(Handed {
                        output,
                        buffer,
                        frames: n,
                    })
                    .map_err(|_| stopped())?;
                start += n;
            }
        }
        Ok(())
    }

    /// Waits for the writers to write what they were handed and gives the deliverables back
    /// (or the first error that stopped a writer).
    pub fn finish(self) -> Result<Deliveries, RenderError> {
        let mut parts = Vec::with_capacity(self.writers.len() + 1);
        parts.extend(self.own);
        let mut first_error = None;
        // Every queue is closed first, so that no writer waits for a block while another is
        // joined.
        let handles: Vec<_> = self
            .writers
            .into_iter()
            .map(|w| {
                drop(w.to_writer);
                w.handle
            })
            .collect();
        for h in handles {
            match h.join() {
                Ok(Ok(part)) => parts.push(part),
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(_) => {
                    first_error.get_or_insert(RenderError::Invalid(
                        "the deliverables' writer thread panicked".into(),
                    ));
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => {
                let mut all = Deliveries::join(parts);
                all.return_borrowed()?;
                Ok(all)
            }
        }
    }
}

/// Starts a writer of `sinks` on `scope`.
fn spawn_writer<'scope>(
    scope: &'scope Scope<'scope, '_>,
    mut sinks: Deliveries,
    uses: Vec<bool>,
    channels: usize,
    capacity: usize,
) -> Writer<'scope> {
    let (to_writer, blocks) = bounded::<Handed>(IN_FLIGHT);
    let (give_back, free) = bounded::<AudioBuffer>(IN_FLIGHT);
    for _ in 0..IN_FLIGHT {
        give_back
            .send(AudioBuffer::new(channels.max(1), capacity))
            .expect("the queue holds them all");
    }
    let handle = std::thread::Builder::new()
        .name("deliverables".into())
        .spawn_scoped(scope, move || {
            for h in blocks {
                sinks.write(h.output, h.buffer.view(h.frames))?;
                // The pass may have stopped taking buffers back: nothing to do then.
                let _ = give_back.send(h.buffer);
            }
            Ok(sinks)
        })
        .expect("a thread for the deliverables");
    Writer {
        to_writer,
        free,
        handle,
        uses,
    }
}

/// A writer has stopped (its error is what [`SinkThread::finish`] returns).
fn stopped() -> RenderError {
    RenderError::Invalid("the deliverables' writer stopped".into())
}
