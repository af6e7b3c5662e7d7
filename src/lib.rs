//! stemgraph: a node-graph DSP engine for stem mastering, scripted in Lua.

pub mod demo;
