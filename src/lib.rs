//! # stemgraph
//!
//! A node-graph DSP engine for stem mastering, scripted in Lua.
//!
//! Where to start reading:
//! - [`dsp::Processor`]: the one contract every processor implements;
//! - [`graph::GraphSpec`] → [`graph::compile`] → [`engine::Schedule`]: a recipe's graph is
//!   validated on the control side and compiled into a flat, preallocated program that the audio
//!   side runs block by block;
//! - [`render`]: the offline render (streamed decode → engine → atomic file writes);
//! - [`script`]: Lua recipes;
//! - [`live`]: live playback with hot reload (`stemgraph play`).
//! - [`album`]: albums (many songs, one loudness policy, parallel and incremental renders).
//!
//! The control side may allocate, block and fail with rich errors; the audio side (the engine and
//! the processors) never allocates, locks, does I/O or runs Lua.
#![warn(missing_docs)]

pub mod album;
pub mod analysis;
pub mod automation;
pub mod demo;
pub mod dsp;
pub mod engine;
pub mod graph;
pub mod io;
pub mod live;
pub mod render;
pub mod script;
pub mod session;
pub mod suggest;
pub mod units;
