//! The tests of what the features change, run by the full build and again by the headless one
//! (`cargo test --no-default-features --test headless`): the command line, the render, check,
//! analyze and report paths, embedding, recipe errors and FLAC. Each file is a module.

// Helpers shared by the modules.
mod common;

// The test files.
mod analyze;
mod check;
mod embed;
mod features;
mod flac;
mod recipe_errors;
mod render;
mod report;
