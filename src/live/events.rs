//! What the live session reports: log events (reloads, swaps, errors, transport changes) and
//! the line each prints as.
//!
//! Plain data built on the control side; the displays ([`super::status`], [`super::tui`]) print
//! it. Never touches the audio side.

use super::loudness::LoudnessResult;
use std::fmt;
use std::time::{Duration, Instant, SystemTime};

/// A swap as the engine reported it.
#[derive(Debug, Clone, PartialEq)]
pub struct SwapRecord {
    /// The reload's generation.
    pub generation: u64,
    /// Stream sample where the new graph took over (its first input frame).
    pub position: i64,
    /// Output sample where that is heard (position plus the engine's live latency).
    pub output_position: i64,
    /// Whether it crossfades.
    pub crossfade: bool,
    /// Wall-clock time the control side learnt of it.
    pub wall: SystemTime,
    /// Load + compile + hand-over time of the reload.
    pub reload_took: Option<Duration>,
    /// From the first file event of the save to the moment the swap is heard.
    pub saved_to_audible: Option<Duration>,
    /// When the swap is heard: the callback's clock plus the engine's and the device's latency.
    pub audible_at: Option<Instant>,
    /// The integrated loudness measured until the swap (the meters' marker for it), LUFS.
    pub integrated_lufs: Option<f64>,
    /// Underruns heard so far, from every source.
    pub underruns: u64,
}

/// Something worth a line in the log.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveEvent {
    /// A transport change or a notice.
    Info(String),
    /// A new graph was handed to the engine.
    Reloaded {
        /// Its generation.
        generation: u64,
        /// Whether it will crossfade.
        crossfade: bool,
        /// Whether the stems were reopened.
        stems_changed: bool,
        /// Time to load the recipe.
        load: Duration,
        /// Time to compile.
        compile: Duration,
        /// From the start of the reload to the hand-over.
        took: Duration,
        /// Compiler warnings.
        warnings: Vec<String>,
    },
    /// The engine has not taken the previous graph yet (paused, or a burst): the newest waits.
    Waiting {
        /// Its generation.
        generation: u64,
    },
    /// The recipe failed; the last good graph keeps playing.
    ReloadFailed {
        /// The error, with its file and line.
        error: String,
        /// Time spent.
        took: Duration,
    },
    /// The engine swapped.
    Swapped(SwapRecord),
    /// A problem the audio side or the streamer reported.
    Problem(String),
    /// The A/B loudness match was measured.
    Loudness(LoudnessResult),
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl fmt::Display for LiveEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LiveEvent::Info(s) => write!(f, "{s}"),
            LiveEvent::Reloaded {
                generation,
                crossfade,
                stems_changed,
                load,
                compile,
                took,
                warnings,
            } => {
                write!(
                    f,
                    "reload #{generation} ok in {:.1} ms (load {:.1} ms, compile {:.1} ms){}{}",
                    ms(*took),
                    ms(*load),
                    ms(*compile),
                    if *crossfade {
                        ", structural: crossfade"
                    } else {
                        ", parameters only: glide"
                    },
                    if *stems_changed {
                        ", stems reopened"
                    } else {
                        ""
                    }
                )?;
                for w in warnings {
                    write!(f, "\n  warning: {w}")?;
                }
                Ok(())
            }
            LiveEvent::Waiting { generation } => {
                write!(
                    f,
                    "reload #{generation} waits until the engine takes the previous one"
                )
            }
            LiveEvent::ReloadFailed { error, took } => write!(
                f,
                "reload failed after {:.1} ms, still playing the last good graph: {error}",
                ms(*took)
            ),
            LiveEvent::Swapped(s) => {
                write!(
                    f,
                    "swap #{} at stream sample {} (output sample {}), {}",
                    s.generation,
                    s.position,
                    s.output_position,
                    if s.crossfade { "crossfade" } else { "glide" }
                )?;
                if let Some(t) = s.reload_took {
                    write!(f, ", reload took {:.1} ms", ms(t))?;
                }
                if let Some(t) = s.saved_to_audible {
                    write!(f, ", saved to audible {:.1} ms", ms(t))?;
                }
                if let Some(i) = s.integrated_lufs.filter(|i| i.is_finite()) {
                    write!(f, ", integrated so far {i:.1} LUFS")?;
                }
                write!(f, ", underruns so far {}", s.underruns)
            }
            LiveEvent::Problem(s) => write!(f, "problem: {s}"),
            LiveEvent::Loudness(r) => {
                match &r.master_lufs {
                    Ok(m) => write!(f, "A/B match: master {m:.1} LUFS")?,
                    Err(e) => write!(f, "A/B match: master not measured ({e})")?,
                }
                match &r.reference_lufs {
                    Some(Ok(v)) => write!(f, ", reference {v:.1} LUFS")?,
                    Some(Err(e)) => write!(f, ", reference not measured ({e})")?,
                    None => {}
                }
                if let Some(g) = r.reference_gain_db() {
                    write!(f, " → reference {g:+.1} dB")?;
                }
                write!(f, " (measured in {:.0} ms)", ms(r.took))
            }
        }
    }
}

/// `HH:MM:SS.mmm` (UTC) of a wall-clock time.
pub fn wall_clock(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let s = d.as_secs();
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        (s / 3600) % 24,
        (s / 60) % 60,
        s % 60,
        d.subsec_millis()
    )
}
