//! The plugin tests (the `plugins` feature): LV2 and CLAP hosting, scanning, plugins in the live
//! engine. One binary, so the CLAP test plugin is built once. Each file is a module.

// Helpers shared by the modules.
mod common;
mod plugin_util;

// The test files.
mod plugins_clap;
#[cfg(feature = "live")]
mod plugins_live;
mod plugins_lv2;
mod plugins_scan;
