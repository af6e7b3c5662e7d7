//! The disk streamer: decodes the stems and the reference mix ahead of playback, on its own
//! thread, into chunks the audio callback only has to copy from.
//!
//! Owns the decoders ([`StemStream`]), the read position, the loop region and the chunk pool.
//! Chunks circulate through two rtrb rings: the streamer takes an empty chunk from the *free*
//! ring, fills it and pushes it to the *full* ring; the callback ([`ChunkReader`]) pops it, copies
//! from it, and pushes it back to the free ring. The pool (about a second of read-ahead) is
//! allocated once, when the streamer starts, so neither side allocates while playing and the
//! callback never frees anything.
//!
//! A chunk holds every stem and the reference for the same stretch of frames, so they stay
//! sample-aligned by construction. Each chunk carries its stream position and an *epoch*: a seek
//! or a reopen starts a new epoch, and the callback drops what is left of the old one. A loop is
//! the streamer's own business: at the loop end it marks the chunk (`jump_after`), rewinds, and
//! the callback sees the position jump. A seek (a key, `--from`, a loop wrap) moves each file on
//! its own without decoding what lies before the new position where the file allows it (plain
//! PCM by byte offset, lossless formats through their demuxer); a resampled or lossy stem reads
//! forward to it (reopened first to go back).
//!
//! Never runs on the audio thread, and never makes the callback wait: when it falls behind the
//! callback plays silence and counts an underrun.

use super::{LiveError, STEM_CAPACITY};
use crate::graph::Origin;
use crate::io::decode::{StemStream, StreamOptions};
use crate::render::StemPlan;
use crate::session::Session;
use crossbeam::channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use rtrb::{Consumer, Producer, RingBuffer};
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Frames per chunk.
pub const CHUNK_FRAMES: usize = 1024;
/// The chunk slot of the reference mix (stems use slots `0..STEM_CAPACITY`).
pub const REFERENCE_SLOT: usize = STEM_CAPACITY;
const SLOTS: usize = STEM_CAPACITY + 1;

/// A stretch of every stem (and the reference), decoded at the session rate. Planar `f64`.
pub struct Chunk {
    /// The epoch it belongs to (see the module docs).
    pub epoch: u64,
    /// Stream position of its first frame.
    pub position: i64,
    /// Frames it holds (at most [`CHUNK_FRAMES`]).
    pub frames: usize,
    /// Stems it holds (slots `0..stems`).
    pub stems: usize,
    /// Channels of each stem (1 or 2).
    pub stem_channels: [u8; STEM_CAPACITY],
    /// Whether the reference slot holds the reference mix.
    pub has_reference: bool,
    /// The next chunk does not follow on: the loop wraps after this one.
    pub jump_after: bool,
    /// The song and its tail end with this chunk.
    pub last: bool,
    data: Box<[f64]>,
}

impl Chunk {
    fn new() -> Box<Chunk> {
        Box::new(Chunk {
            epoch: 0,
            position: 0,
            frames: 0,
            stems: 0,
            stem_channels: [2; STEM_CAPACITY],
            has_reference: false,
            jump_after: false,
            last: false,
            data: vec![0.0; SLOTS * 2 * CHUNK_FRAMES].into_boxed_slice(),
        })
    }

    /// Channel `c` (0 or 1) of slot `slot`, [`Chunk::frames`] long. A mono stem has only
    /// channel 0.
    #[inline]
    pub fn channel(&self, slot: usize, c: usize) -> &[f64] {
        let start = (slot * 2 + c) * CHUNK_FRAMES;
        &self.data[start..start + self.frames]
    }

    /// Both channels of `slot`, full length.
    fn slot_mut(&mut self, slot: usize) -> (&mut [f64], &mut [f64]) {
        let start = slot * 2 * CHUNK_FRAMES;
        let (a, b) = self.data[start..start + 2 * CHUNK_FRAMES].split_at_mut(CHUNK_FRAMES);
        (a, b)
    }
}

/// One stem file as the streamer reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct StemSource {
    /// The file.
    pub path: PathBuf,
    /// Channels it is played on (1 or 2).
    pub channels: usize,
    /// Its move on the timeline in samples (the recipe's `offset_samples`).
    pub offset_samples: f64,
    /// Where the recipe declared it (for error messages).
    pub origin: Option<Origin>,
}

/// Everything the streamer reads, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct Sources {
    /// The stems, in engine input order.
    pub stems: Vec<StemSource>,
    /// The reference mix.
    pub reference: Option<PathBuf>,
    /// The session rate: every file is converted to it.
    pub sample_rate: u32,
    /// The song length (the longest stem); shorter files are padded with silence.
    pub song_frames: u64,
}

impl Sources {
    /// What `session` plays, at the rate and length of `plan`.
    pub fn of(session: &Session, plan: &StemPlan) -> Result<Sources, LiveError> {
        if session.stems.len() > STEM_CAPACITY {
            return Err(LiveError::Unsupported(format!(
                "{}: {} stems; live playback plays at most {STEM_CAPACITY}",
                session.recipe.display(),
                session.stems.len()
            )));
        }
        Ok(Sources {
            stems: session
                .stems
                .iter()
                .map(|s| StemSource {
                    path: s.path.clone(),
                    channels: s.channels,
                    offset_samples: s.offset_samples,
                    origin: s.origin.clone(),
                })
                .collect(),
            reference: session.reference.clone(),
            sample_rate: plan.sample_rate,
            song_frames: plan.song_frames,
        })
    }
}

/// The decoders of a [`Sources`], opened at the start of the song.
pub struct Opened {
    sources: Sources,
    stems: Vec<StemStream>,
    reference: Option<StemStream>,
}

impl Opened {
    /// Opens every file (on the calling thread, so that errors come back to the caller).
    pub fn open(sources: &Sources) -> Result<Opened, LiveError> {
        let mut stems = Vec::with_capacity(sources.stems.len());
        for slot in 0..sources.stems.len() {
            stems.push(Self::open_slot(sources, slot)?);
        }
        let reference = match &sources.reference {
            Some(_) => Some(Self::open_slot(sources, REFERENCE_SLOT)?),
            None => None,
        };
        Ok(Opened {
            sources: sources.clone(),
            stems,
            reference,
        })
    }

    /// Opens the file of chunk slot `slot` (a stem, or [`REFERENCE_SLOT`]) at its start.
    fn open_slot(sources: &Sources, slot: usize) -> Result<StemStream, LiveError> {
        let (path, channels, offset, origin) = match sources.stems.get(slot) {
            Some(s) => (
                s.path.as_path(),
                s.channels,
                s.offset_samples,
                s.origin.clone(),
            ),
            None => match &sources.reference {
                Some(r) => (r.as_path(), 2, 0.0, None),
                None => return Err(LiveError::Unsupported("no reference mix".into())),
            },
        };
        StemStream::open(
            path,
            &StreamOptions {
                target_rate: sources.sample_rate,
                target_channels: channels,
                length_frames: Some(sources.song_frames),
            },
        )
        .and_then(|(s, _warnings)| s.with_offset(offset))
        .map_err(|source| LiveError::Decode { origin, source })
    }

    /// The stream of chunk slot `slot`.
    fn slot_mut(&mut self, slot: usize) -> &mut StemStream {
        match self.stems.get_mut(slot) {
            Some(s) => s,
            None => self
                .reference
                .as_mut()
                .expect("a reference slot is only used when open"),
        }
    }

    /// Every open stream with its slot and channels.
    fn streams(&mut self) -> impl Iterator<Item = (usize, usize, &mut StemStream)> {
        let channels: Vec<usize> = self.sources.stems.iter().map(|s| s.channels).collect();
        let stems = self
            .stems
            .iter_mut()
            .enumerate()
            .map(move |(i, s)| (i, channels[i], s));
        stems.chain(self.reference.iter_mut().map(|r| (REFERENCE_SLOT, 2, r)))
    }
}

/// A region of the stream that plays over and over: `start..end` in frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// First frame.
    pub start: i64,
    /// One past the last frame.
    pub end: i64,
}

/// What the control side asks of the streamer.
pub enum StreamerCommand {
    /// Restart at `position` in a new epoch.
    Seek {
        /// Stream position.
        position: i64,
        /// The new epoch.
        epoch: u64,
    },
    /// Read other files from now on, from `position`, in a new epoch.
    Reopen {
        /// The new decoders.
        opened: Box<Opened>,
        /// Stream position.
        position: i64,
        /// The new epoch.
        epoch: u64,
    },
    /// Loop a region, or stop looping.
    SetLoop(Option<Region>),
    /// Where playback ends (the song, its tail and the engine latency), in frames.
    SetEnd(i64),
}

/// What the streamer reports.
#[derive(Debug, Default)]
pub struct StreamerStatus {
    /// The next frame it will write.
    pub write_position: AtomicI64,
    /// The epoch it writes.
    pub epoch: AtomicU64,
    /// Frames pushed in that epoch.
    pub written: AtomicU64,
    /// Chunks decoded and waiting for the callback.
    pub buffered_chunks: AtomicUsize,
    /// Decoding errors (the files are played as silence from there).
    pub errors: Mutex<Vec<String>>,
}

/// The control side's handle on the streamer thread. Dropping it stops the thread.
pub struct StreamerHandle {
    tx: Option<Sender<StreamerCommand>>,
    status: Arc<StreamerStatus>,
    thread: Option<JoinHandle<()>>,
    chunks: usize,
}

impl StreamerHandle {
    /// Sends a command (the thread is never gone while the handle lives).
    pub fn send(&self, cmd: StreamerCommand) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(cmd);
        }
    }

    /// What the streamer reports.
    pub fn status(&self) -> &StreamerStatus {
        &self.status
    }

    /// Chunks in the pool.
    pub fn pool_chunks(&self) -> usize {
        self.chunks
    }

    /// Takes the decoding errors reported since the last call.
    pub fn take_errors(&self) -> Vec<String> {
        std::mem::take(&mut *self.status.errors.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Drop for StreamerHandle {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The callback's end of the chunk rings.
///
/// # Realtime safety
/// Popping, peeking and giving back are lock-free ring operations; nothing is allocated or freed.
pub struct ChunkReader {
    full: Consumer<Box<Chunk>>,
    free: Producer<Box<Chunk>>,
}

impl ChunkReader {
    /// The next decoded chunk, if one is ready.
    #[inline]
    pub fn pop(&mut self) -> Option<Box<Chunk>> {
        self.full.pop().ok()
    }

    /// The next decoded chunk without taking it.
    #[inline]
    pub fn peek(&self) -> Option<&Chunk> {
        self.full.peek().ok().map(|c| &**c)
    }

    /// Returns a chunk to the pool.
    #[inline]
    pub fn give_back(&mut self, chunk: Box<Chunk>) {
        if let Err(rtrb::PushError::Full(c)) = self.free.push(chunk) {
            // Cannot happen (the free ring holds the whole pool); never free on this thread.
            std::mem::forget(c);
        }
    }
}

/// Starts the streamer on `opened`, at stream position `start`, ending at `end` (unless a loop
/// is set), with about `read_ahead_frames` of read-ahead.
pub fn spawn(
    opened: Opened,
    start: i64,
    end: i64,
    loop_region: Option<Region>,
    read_ahead_frames: usize,
) -> Result<(StreamerHandle, ChunkReader), LiveError> {
    let chunks = read_ahead_frames.div_ceil(CHUNK_FRAMES).max(4);
    let (full_tx, full_rx) = RingBuffer::new(chunks);
    let (mut free_tx, free_rx) = RingBuffer::new(chunks);
    for _ in 0..chunks {
        let _ = free_tx.push(Chunk::new());
    }
    let (tx, rx) = crossbeam::channel::unbounded();
    let status = Arc::new(StreamerStatus::default());
    let mut streamer = Streamer {
        opened,
        decoded_to: 0,
        position: 0,
        epoch: 0,
        written: 0,
        loop_region,
        end,
        done: false,
        scratch: [vec![0.0; 8192], vec![0.0; 8192]],
        full: full_tx,
        free: free_rx,
        status: status.clone(),
    };
    let thread = std::thread::Builder::new()
        .name("stemgraph-streamer".into())
        .spawn(move || {
            streamer.seek(start.max(0));
            streamer.run(rx)
        })
        .map_err(LiveError::Terminal)?;
    Ok((
        StreamerHandle {
            tx: Some(tx),
            status,
            thread: Some(thread),
            chunks,
        },
        ChunkReader {
            full: full_rx,
            free: free_tx,
        },
    ))
}

struct Streamer {
    opened: Opened,
    /// The position the decoders are at.
    decoded_to: i64,
    /// The next frame to write into a chunk.
    position: i64,
    epoch: u64,
    written: u64,
    loop_region: Option<Region>,
    end: i64,
    done: bool,
    scratch: [Vec<f64>; 2],
    full: Producer<Box<Chunk>>,
    free: Consumer<Box<Chunk>>,
    status: Arc<StreamerStatus>,
}

impl Streamer {
    fn run(&mut self, rx: Receiver<StreamerCommand>) {
        loop {
            loop {
                match rx.try_recv() {
                    Ok(cmd) => self.apply(cmd),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return,
                }
            }
            if !self.done {
                if let Ok(mut chunk) = self.free.pop() {
                    self.fill(&mut chunk);
                    let n = chunk.frames;
                    if let Err(rtrb::PushError::Full(c)) = self.full.push(chunk) {
                        drop(c); // cannot happen: both rings hold the whole pool
                    }
                    self.status.buffered_chunks.store(
                        self.full.buffer().capacity() - self.full.slots(),
                        Ordering::Relaxed,
                    );
                    self.written += n as u64;
                    self.status.written.store(self.written, Ordering::Release);
                    continue;
                }
            }
            match rx.recv_timeout(Duration::from_millis(4)) {
                Ok(cmd) => self.apply(cmd),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    fn apply(&mut self, cmd: StreamerCommand) {
        match cmd {
            StreamerCommand::Seek { position, epoch } => {
                self.set_epoch(epoch);
                self.seek(position.max(0));
            }
            StreamerCommand::Reopen {
                opened,
                position,
                epoch,
            } => {
                self.opened = *opened;
                self.decoded_to = 0;
                self.set_epoch(epoch);
                self.seek(position.max(0));
            }
            StreamerCommand::SetLoop(region) => {
                self.loop_region = region;
                self.done = false;
            }
            StreamerCommand::SetEnd(end) => {
                self.end = end;
                self.done = false;
            }
        }
    }

    fn set_epoch(&mut self, epoch: u64) {
        self.epoch = epoch;
        self.written = 0;
        self.status.written.store(0, Ordering::Relaxed);
        self.status.epoch.store(epoch, Ordering::Release);
    }

    fn report(&self, message: String) {
        self.status
            .errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(message);
    }

    /// Moves the decoders to `position`. Each file seeks on its own where it can (plain PCM by
    /// byte offset, lossless formats through their demuxer); one that cannot (a lossy format, a
    /// resampled stem) reads forward from where it is, or from its start, reopened, to go back.
    fn seek(&mut self, position: i64) {
        self.done = false;
        self.position = position;
        let from = self.decoded_to;
        let mut forward: Vec<(usize, usize, i64)> = Vec::new();
        let mut errors = Vec::new();
        for (slot, channels, s) in self.opened.streams() {
            match s.seek(position as u64) {
                Ok(true) => {}
                Ok(false) if position >= from => forward.push((slot, channels, from)),
                Ok(false) => forward.push((slot, channels, 0)),
                Err(e) => errors.push(e.to_string()),
            }
        }
        for e in errors {
            self.report(e);
        }
        for (slot, channels, start) in forward {
            if start == 0 && from > 0 {
                match Opened::open_slot(&self.opened.sources, slot) {
                    Ok(s) => *self.opened.slot_mut(slot) = s,
                    Err(e) => self.report(e.to_string()),
                }
            }
            let mut at = start;
            while at < position {
                let n = ((position - at) as usize).min(self.scratch[0].len());
                let [a, b] = &mut self.scratch;
                let s = self.opened.slot_mut(slot);
                read(s, channels, &mut a[..n], &mut b[..n], n, &self.status);
                at += n as i64;
            }
        }
        self.decoded_to = position;
        self.status
            .write_position
            .store(self.position, Ordering::Relaxed);
    }

    fn fill(&mut self, chunk: &mut Chunk) {
        let looping = self.loop_region.filter(|r| self.position < r.end);
        let limit = match looping {
            Some(r) => r.end,
            None => self.end,
        };
        let n = ((limit - self.position).max(1) as usize).min(CHUNK_FRAMES);
        chunk.epoch = self.epoch;
        chunk.position = self.position;
        chunk.frames = n;
        chunk.stems = self.opened.stems.len();
        for (i, src) in self.opened.sources.stems.iter().enumerate() {
            chunk.stem_channels[i] = src.channels as u8;
        }
        for (i, s) in self.opened.stems.iter_mut().enumerate() {
            let channels = self.opened.sources.stems[i].channels;
            let (a, b) = chunk.slot_mut(i);
            read(s, channels, &mut a[..n], &mut b[..n], n, &self.status);
        }
        chunk.has_reference = self.opened.reference.is_some();
        if let Some(r) = &mut self.opened.reference {
            let (a, b) = chunk.slot_mut(REFERENCE_SLOT);
            read(r, 2, &mut a[..n], &mut b[..n], n, &self.status);
        }
        self.position += n as i64;
        self.decoded_to = self.position;
        chunk.jump_after = false;
        chunk.last = false;
        match looping {
            Some(r) if self.position >= r.end => {
                chunk.jump_after = true;
                self.seek(r.start);
            }
            _ if self.position >= self.end && looping.is_none() => {
                chunk.last = true;
                self.done = true;
            }
            _ => {}
        }
        self.status
            .write_position
            .store(self.position, Ordering::Relaxed);
    }
}

/// Reads `n` frames of `s` into `a` (and `b` when stereo); a decoding error is reported once per
/// block and played as silence.
fn read(
    s: &mut StemStream,
    channels: usize,
    a: &mut [f64],
    b: &mut [f64],
    n: usize,
    status: &StreamerStatus,
) {
    let r = if channels == 2 {
        s.read_block(&mut [&mut a[..n], &mut b[..n]], n)
    } else {
        s.read_block(&mut [&mut a[..n]], n)
    };
    if let Err(e) = r {
        a[..n].fill(0.0);
        b[..n].fill(0.0);
        status
            .errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(e.to_string());
    }
}
