//! # stemgraph
//!
//! A node-graph DSP engine for stem mastering, scripted in Lua.
#![warn(missing_docs)]

pub mod io;
