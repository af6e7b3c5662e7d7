//! Running the engine in a host's own audio callback: a builder compiles a graph and splits the
//! engine into an [`EngineRuntime`], which goes into the callback, and an [`EngineHandle`],
//! which stays on a control thread and replaces the graph while it plays.
//!
//! This is the live engine `stemgraph play` uses ([`crate::engine::live`]), without the sound
//! card, the disk streamer or the terminal: the host brings the audio (it fills the inputs, one
//! per stem, and takes the output) and decides when to change the graph. Replacing a graph keeps
//! the state of every node that did not change (a compressor mid-release goes on releasing) and
//! glides changed parameter values; a change of structure (a node added, removed or rewired)
//! crossfades from the old graph to the new one. The old schedule is dropped on the control
//! thread, in [`EngineHandle::collect_garbage`], never in the callback.
//!
//! ```
//! use stemgraph::dsp::ProcessorConfig;
//! use stemgraph::embed::EngineBuilder;
//! use stemgraph::graph::GraphSpec;
//!
//! // A stereo stem through a gain into the output.
//! let graph = |gain_db: f64| {
//!     let mut g = GraphSpec::new();
//!     g.source("stem", 0)
//!         .processor("gain", "gain", ProcessorConfig::new().num("gain_db", gain_db))
//!         .output("main")
//!         .chain(&["stem", "gain", "main"]);
//!     g
//! };
//! let (mut runtime, mut handle) = EngineBuilder::new(48_000.0)
//!     .max_block(256)
//!     .build(&graph(-6.0))?;
//!
//! // The audio callback: fill the inputs, process, read the output. No allocation, no lock.
//! let audio = std::thread::spawn(move || {
//!     let mut peak = 0.0f64;
//!     for _ in 0..100 {
//!         let frames = 256;
//!         let mut input = runtime.input_mut(0, frames);
//!         for c in 0..input.channels() {
//!             input.channel_mut(c).fill(0.5);
//!         }
//!         let out = runtime.process(frames);
//!         peak = out.channel(0).iter().fold(peak, |p, x| p.max(x.abs()));
//!     }
//!     (runtime, peak)
//! });
//! // Meanwhile, on the control thread: a new gain glides in, the state carries over.
//! handle.replace(&graph(-12.0))?;
//! let (_runtime, peak) = audio.join().unwrap();
//! assert!(peak > 0.12 && peak <= 0.26, "0.5 at -6 dB, then at -12 dB: {peak}");
//! handle.collect_garbage();
//! # Ok::<(), stemgraph::embed::EmbedError>(())
//! ```
//!
//! A recipe gives its graph with [`crate::script::load_recipe`] and
//! [`crate::session::Session::graph_at`] (its automation placed at the sample rate); engine
//! input `i` is the recipe's stem `i`.

use crate::dsp::{AudioMut, AudioRef};
use crate::engine::live::{EngineEvent, LiveControl, LiveEngine};
use crate::graph::diff::{plan, ScheduleShape};
use crate::graph::{compile, CompileOptions, GraphError, GraphSpec};

/// Why a graph could not be started or replaced.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The graph does not validate or compile.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// The graph reads more inputs than the runtime was built with room for.
    #[error("the graph reads {needs} inputs, but the runtime has room for {room} (EngineBuilder::inputs)")]
    Inputs {
        /// Inputs the graph reads.
        needs: usize,
        /// Inputs the runtime has.
        room: usize,
    },
    /// The audio side has not yet taken the graphs handed to it before (is the callback
    /// running?); try again after it has processed a block.
    #[error("the audio side has not taken the previous graphs yet")]
    Busy,
}

/// Settings of an engine to embed: sample rate, block size, room for inputs, crossfade.
#[derive(Debug, Clone)]
pub struct EngineBuilder {
    sample_rate: f64,
    max_block: usize,
    inputs: usize,
    latency: usize,
    crossfade_ms: f64,
}

impl EngineBuilder {
    /// An engine at `sample_rate`, taking blocks of up to 512 frames, with room for the first
    /// graph's inputs, its latency, and structural changes crossfaded over 30 ms.
    pub fn new(sample_rate: f64) -> Self {
        Self {
            sample_rate,
            max_block: 512,
            inputs: 0,
            latency: 0,
            crossfade_ms: 30.0,
        }
    }

    /// The most frames one call of [`EngineRuntime::process`] takes.
    pub fn max_block(mut self, frames: usize) -> Self {
        self.max_block = frames.max(1);
        self
    }

    /// Room for `n` inputs (stereo each), so that later graphs may read more stems than the
    /// first one (default: the first graph's inputs).
    pub fn inputs(mut self, n: usize) -> Self {
        self.inputs = n;
        self
    }

    /// The fixed output latency, in frames (default, and at least: the first graph's latency).
    /// A later graph with more latency than this shifts the output; leave room for it here.
    pub fn latency(mut self, frames: usize) -> Self {
        self.latency = frames;
        self
    }

    /// The crossfade of a structural change, in milliseconds.
    pub fn crossfade_ms(mut self, ms: f64) -> Self {
        self.crossfade_ms = ms.max(0.0);
        self
    }

    /// Compiles `graph` and returns the two halves of the engine running it: the runtime for
    /// the audio callback and the handle for the control thread.
    pub fn build(self, graph: &GraphSpec) -> Result<(EngineRuntime, EngineHandle), EmbedError> {
        let compiled = compile(graph, CompileOptions::new(self.sample_rate, self.max_block))?;
        let shape = ScheduleShape::of(graph, &compiled.schedule);
        let inputs = self.inputs.max(compiled.schedule.input_count());
        let (engine, control) =
            LiveEngine::with_input_capacity(compiled.schedule, self.latency, inputs);
        let handle = EngineHandle {
            control,
            shape,
            generation: 0,
            inputs,
            settings: self,
        };
        Ok((EngineRuntime { engine }, handle))
    }
}

/// The audio half: runs the current graph block by block. It is `Send`; move it into the audio
/// callback.
///
/// # Realtime safety
/// [`EngineRuntime::process`] never allocates, locks or does I/O.
pub struct EngineRuntime {
    engine: LiveEngine,
}

impl EngineRuntime {
    /// Engine input `i` (stem `i` of the graph), to fill with `frames` frames before
    /// [`EngineRuntime::process`]. A mono stem reads channel 0.
    pub fn input_mut(&mut self, i: usize, frames: usize) -> AudioMut<'_> {
        self.engine.input_mut(i, frames)
    }

    /// The number of inputs.
    pub fn input_count(&self) -> usize {
        self.engine.input_count()
    }

    /// Processes `frames` frames (at most [`EngineRuntime::max_block`]) of the inputs and
    /// returns the first output of the graph. A graph handed over by [`EngineHandle::replace`]
    /// takes over at the start of the block.
    pub fn process(&mut self, frames: usize) -> AudioRef<'_> {
        self.engine.process(frames)
    }

    /// The most frames one call of [`EngineRuntime::process`] takes.
    pub fn max_block(&self) -> usize {
        self.engine.max_block()
    }

    /// The output latency in frames: output frame `n` is the graph's answer to input frame
    /// `n - latency`.
    pub fn latency(&self) -> usize {
        self.engine.live_latency()
    }

    /// Frames of input processed so far (the stream position).
    pub fn position(&self) -> i64 {
        self.engine.position()
    }

    /// Moves the stream position (the host seeks in its stems): the graph's state is cleared so
    /// nothing of the old place rings on, and automation continues from `position`.
    pub fn seek(&mut self, position: i64) {
        self.engine.seek(position);
    }
}

/// The control half: replaces the graph while it plays, and drops old schedules.
pub struct EngineHandle {
    control: LiveControl,
    /// The shape of the last graph handed over (the one a replacement follows).
    shape: ScheduleShape,
    generation: u64,
    inputs: usize,
    settings: EngineBuilder,
}

impl EngineHandle {
    /// Compiles `graph` here and hands it to the runtime, which switches to it at its next
    /// block: nodes with the same id, kind and parameters keep their state and glide to their
    /// new values; if the structure changed, the old graph is crossfaded out. Returns the
    /// swap's generation (reported in [`EngineEvent::Swapped`]).
    pub fn replace(&mut self, graph: &GraphSpec) -> Result<u64, EmbedError> {
        let s = &self.settings;
        let compiled = compile(graph, CompileOptions::new(s.sample_rate, s.max_block))?;
        let needs = compiled.schedule.input_count();
        if needs > self.inputs {
            return Err(EmbedError::Inputs {
                needs,
                room: self.inputs,
            });
        }
        if !self.control.has_room() {
            return Err(EmbedError::Busy);
        }
        let shape = ScheduleShape::of(graph, &compiled.schedule);
        let crossfade = (s.crossfade_ms * s.sample_rate / 1000.0).round() as usize;
        let generation = self.generation + 1;
        let swap = plan(
            &self.shape,
            &shape,
            compiled.schedule,
            crossfade,
            generation,
        );
        self.control.submit(swap).map_err(|_| EmbedError::Busy)?;
        self.shape = shape;
        self.generation = generation;
        Ok(generation)
    }

    /// Drops the schedules the runtime has finished with (call it now and then, e.g. after each
    /// [`EngineHandle::replace`] or from a timer). Returns how many were dropped.
    pub fn collect_garbage(&mut self) -> usize {
        self.control.collect_garbage()
    }

    /// What the runtime reported since the last call: swaps that took effect, non-finite
    /// samples muted, a panic caught.
    pub fn events(&mut self) -> Vec<EngineEvent> {
        self.control.events()
    }
}
