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
//! - `live`: live playback with hot reload (`stemgraph play`; feature `live`).
//! - [`album`]: albums (many songs, one loudness policy, parallel and incremental renders).
//!
//! The control side may allocate, block and fail with rich errors; the audio side (the engine and
//! the processors) never allocates, locks, does I/O or runs Lua.
//!
//! # Using the library
//!
//! Three entry points, each a thin layer over what the command line uses:
//!
//! - **Load a recipe**: [`script::load_recipe`] runs a Lua recipe in its sandbox and returns the
//!   [`session::Session`] it declares (stems, graph, automation, deliverables), as plain data.
//! - **Render it**: [`render::render`] streams the stems through the graph and writes every
//!   deliverable (and `report.json`/`report.md`, unless [`render::RenderOptions::report`] is
//!   off), returning what it wrote and the loudness it met.
//! - **Run a graph in your own audio callback**: [`embed::EngineBuilder`] compiles a graph and
//!   gives an [`embed::EngineRuntime`] for the callback and an [`embed::EngineHandle`] for the
//!   control thread, which replaces the graph while it plays (see [`embed`]).
//!
//! ```
//! use stemgraph::render::{render, RenderOptions};
//! use stemgraph::script::load_recipe;
//!
//! let dir = tempfile::tempdir()?;
//! // One second of a stereo stem, 24-bit at 48 kHz.
//! let spec = hound::WavSpec {
//!     channels: 2,
//!     sample_rate: 48_000,
//!     bits_per_sample: 24,
//!     sample_format: hound::SampleFormat::Int,
//! };
//! let mut wav = hound::WavWriter::create(dir.path().join("drums.wav"), spec)?;
//! for n in 0..48_000 {
//!     let x = (f64::from(n) * 0.05).sin() * 2_000_000.0;
//!     wav.write_sample(x as i32)?;
//!     wav.write_sample(x as i32)?;
//! }
//! wav.finalize()?;
//! // The recipe: the stem through a bus to the output, one 24-bit master.
//! std::fs::write(
//!     dir.path().join("song.lua"),
//!     r#"
//!     local s = session { title = "Song" }
//!     local master = s:bus "master"
//!     s:stem("drums", "drums.wav"):to(master)
//!     master:to(s:output "main")
//!     s:deliver { file = "master.wav", bits = 24 }
//!     return s
//!     "#,
//! )?;
//!
//! let session = load_recipe(&dir.path().join("song.lua"))?;
//! let result = render(&session, RenderOptions::new(dir.path().join("out")))?;
//! assert_eq!(result.files.len(), 1);
//! assert_eq!(result.files[0].wav.frames, 48_000);
//! assert!(dir.path().join("out/master.wav").exists());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Cargo features
//!
//! All on by default. Without them (`default-features = false`) the library and the `render`,
//! `check`, `analyze`, `album` and `graph` commands build with no ALSA headers or display stack.
//!
//! - `live`: live playback, the `live` module and `stemgraph play` (cpal, notify, ratatui,
//!   crossterm; ALSA headers on Linux);
//! - `plot`: the PNG plots of `analyze --plot`, `analysis::plot` (plotters, png);
//! - `demo`: the demo song synthesizer, the `demo` module and `stemgraph demo`.
#![warn(missing_docs)]

pub mod album;
pub mod analysis;
pub mod automation;
pub mod delivery;
#[cfg(feature = "demo")]
pub mod demo;
pub mod dsp;
pub mod embed;
pub mod engine;
pub mod graph;
pub mod io;
#[cfg(feature = "live")]
pub mod live;
pub mod matching;
pub mod metadata;
pub mod pool;
pub mod render;
pub mod script;
pub mod session;
pub mod suggest;
pub mod units;
