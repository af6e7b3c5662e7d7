//! What the display shows, read from the live session at one moment ([`Snapshot`]).
//!
//! Plain data built on the control side by `Controller::snapshot`. Never touches the audio side.

use super::meters::MeterReadings;
use super::xruns::UnderrunCounts;

/// One stem as the display shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct StemView {
    /// Its name.
    pub name: String,
    /// Peak of the last ~50 ms, dBFS.
    pub peak_db: f64,
    /// RMS of the last ~50 ms, dBFS.
    pub rms_db: f64,
    /// Muted.
    pub muted: bool,
    /// Soloed.
    pub soloed: bool,
}

/// Everything the display shows, read at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Song title.
    pub title: String,
    /// Song time heard now, seconds.
    pub position_s: f64,
    /// Song length, seconds.
    pub song_s: f64,
    /// Paused.
    pub paused: bool,
    /// Played to the end.
    pub ended: bool,
    /// The section the playhead is in.
    pub section: Option<String>,
    /// The loop: start and end in seconds, label.
    pub looping: Option<(f64, f64, String)>,
    /// Listening to the reference (B).
    pub listening_reference: bool,
    /// The recipe has a reference mix.
    pub has_reference: bool,
    /// Gain applied to the reference for the loudness match, dB.
    pub reference_gain_db: Option<f64>,
    /// Integrated loudness of master and reference from the last measurement.
    pub ab_lufs: (Option<f64>, Option<f64>),
    /// Master chain bypassed.
    pub bypass_master: bool,
    /// Meters.
    pub meters: MeterReadings,
    /// Gain reduction per node that reports it, dB.
    pub gain_reduction: Vec<(String, f64)>,
    /// Stems.
    pub stems: Vec<StemView>,
    /// The last reload: when, and how it went.
    pub last_reload: Option<String>,
    /// Underruns so far, from every source.
    pub underruns: UnderrunCounts,
    /// Blocks the meters missed.
    pub meter_drops: u64,
    /// Callback load now and at most, percent of the deadline.
    pub load_pct: (f64, f64),
    /// The engine's fixed latency in milliseconds.
    pub latency_ms: f64,
    /// Watching the recipe.
    pub watching: bool,
}
