//! The display contract, and the plain display of `--no-tui`: one status line per second and one
//! line per event (reloads, swaps, errors), for scripts, logs and tests.
//!
//! Runs on the control thread; never touches the audio side.

use super::control::{Command, LiveEvent, Snapshot};
use super::transport::clock;
use std::io::{self, Write};
use std::time::{Duration, Instant, SystemTime};

/// What the player needs from a display.
pub trait Display {
    /// Shows the state; called every few milliseconds (the display decides when to draw).
    fn show(&mut self, snap: &Snapshot) -> io::Result<()>;
    /// Logs an event.
    fn event(&mut self, event: &LiveEvent) -> io::Result<()>;
    /// Waits at most `timeout` for a key and returns what it asks for.
    fn input(&mut self, timeout: Duration) -> io::Result<Option<Command>>;
}

/// `-inf` or one decimal.
pub fn db(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.1}")
    } else {
        "-inf".into()
    }
}

/// The one-line summary of a snapshot.
pub fn status_line(s: &Snapshot) -> String {
    let state = if s.ended {
        "ended"
    } else if s.paused {
        "paused"
    } else {
        "playing"
    };
    let mut line = format!(
        "{state} {}/{} | M {} S {} I {} LUFS | TP {} dBTP",
        clock(s.position_s),
        clock(s.song_s),
        db(s.meters.momentary_lufs),
        db(s.meters.short_term_lufs),
        db(s.meters.integrated_lufs),
        db(s.meters.true_peak_dbtp),
    );
    let gr = s.gain_reduction.iter().map(|g| g.1).fold(0.0f64, f64::max);
    if !s.gain_reduction.is_empty() {
        line.push_str(&format!(" | GR {gr:.1} dB"));
    }
    if s.has_reference {
        line.push_str(if s.listening_reference {
            " | B ref"
        } else {
            " | A master"
        });
    }
    if s.bypass_master {
        line.push_str(" | master bypassed");
    }
    if let Some((a, b, label)) = &s.looping {
        line.push_str(&format!(" | loop {label} {}-{}", clock(*a), clock(*b)));
    }
    line.push_str(&format!(
        " | load {:.0}% (max {:.0}%) | underruns {}",
        s.load_pct.0, s.load_pct.1, s.underruns
    ));
    line
}

/// Plain lines on stdout.
pub struct PlainDisplay {
    last_line: Option<Instant>,
    out: io::Stdout,
}

impl PlainDisplay {
    /// A plain display on stdout.
    pub fn new() -> Self {
        Self {
            last_line: None,
            out: io::stdout(),
        }
    }

    fn line(&mut self, text: &str) -> io::Result<()> {
        let mut out = self.out.lock();
        writeln!(
            out,
            "[{}] {text}",
            super::control::wall_clock(SystemTime::now())
        )?;
        out.flush()
    }
}

impl Default for PlainDisplay {
    fn default() -> Self {
        Self::new()
    }
}

impl Display for PlainDisplay {
    fn show(&mut self, snap: &Snapshot) -> io::Result<()> {
        let now = Instant::now();
        if self
            .last_line
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            return Ok(());
        }
        self.last_line = Some(now);
        self.line(&status_line(snap))
    }

    fn event(&mut self, event: &LiveEvent) -> io::Result<()> {
        self.line(&event.to_string())
    }

    fn input(&mut self, timeout: Duration) -> io::Result<Option<Command>> {
        std::thread::sleep(timeout);
        Ok(None)
    }
}
