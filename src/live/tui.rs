//! The terminal display (ratatui on crossterm): transport, meters, stems, A/B, the last reload
//! and the key bindings; keys become [`Command`]s.
//!
//! Runs on the control thread, redraws at most 20 times a second, and restores the terminal when
//! dropped (also after an error). Never touches the audio side.

use super::control::{Command, LiveEvent, Snapshot};
use super::status::{db, Display};
use super::transport::{clock, SEEK_STEP_S};
use crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use crossterm::ExecutableCommand;
use ratatui::backend::CrosstermBackend;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Gauge, Paragraph};
use ratatui::{Frame, Terminal};
use std::collections::VecDeque;
use std::io::{self, Stdout};
use std::time::{Duration, Instant};

/// The key bindings, as shown at the bottom of the screen.
pub const HELP: &str = "space pause · ←/→ seek 5 s · a A/B · b bypass master · 1-8 mute · \
shift+1-8 or s+digit solo · l loop ([ ] mark) · r reload · q quit";

/// The ratatui display. Dropping it gives the terminal back.
pub struct TuiDisplay {
    terminal: Terminal<CrosstermBackend<Stdout>>,
    log: VecDeque<String>,
    last_draw: Option<Instant>,
    solo_prefix: bool,
}

impl TuiDisplay {
    /// Switches the terminal to raw mode on the alternate screen.
    pub fn new() -> io::Result<Self> {
        enable_raw_mode()?;
        let mut out = io::stdout();
        if let Err(e) = out.execute(EnterAlternateScreen) {
            let _ = disable_raw_mode();
            return Err(e);
        }
        let terminal = Terminal::new(CrosstermBackend::new(out))?;
        Ok(Self {
            terminal,
            log: VecDeque::new(),
            last_draw: None,
            solo_prefix: false,
        })
    }

    fn key(&mut self, code: KeyCode, modifiers: KeyModifiers) -> Option<Command> {
        let solo = std::mem::take(&mut self.solo_prefix);
        let digit = |c: char| c.to_digit(10).filter(|d| (1..=8).contains(d));
        match code {
            KeyCode::Char('c') if modifiers.contains(KeyModifiers::CONTROL) => Some(Command::Quit),
            KeyCode::Char('q') | KeyCode::Esc => Some(Command::Quit),
            KeyCode::Char(' ') => Some(Command::TogglePause),
            KeyCode::Left => Some(Command::SeekBy(-SEEK_STEP_S)),
            KeyCode::Right => Some(Command::SeekBy(SEEK_STEP_S)),
            KeyCode::Char('a') => Some(Command::ToggleAb),
            KeyCode::Char('b') => Some(Command::ToggleBypass),
            KeyCode::Char('l') => Some(Command::ToggleLoop),
            KeyCode::Char('[') => Some(Command::LoopIn),
            KeyCode::Char(']') => Some(Command::LoopOut),
            KeyCode::Char('r') => Some(Command::Reload),
            KeyCode::Char('s') => {
                self.solo_prefix = true;
                None
            }
            KeyCode::Char(c) => {
                if let Some(d) = digit(c) {
                    let i = d as usize - 1;
                    Some(if solo || modifiers.contains(KeyModifiers::SHIFT) {
                        Command::ToggleSolo(i)
                    } else {
                        Command::ToggleMute(i)
                    })
                } else {
                    // Shift+digit on a US layout arrives as the shifted symbol.
                    "!@#$%^&*".find(c).map(Command::ToggleSolo)
                }
            }
            _ => None,
        }
    }
}

impl Drop for TuiDisplay {
    fn drop(&mut self) {
        let _ = disable_raw_mode();
        let _ = self.terminal.backend_mut().execute(LeaveAlternateScreen);
        let _ = self.terminal.show_cursor();
    }
}

fn meter_ratio(dbfs: f64) -> f64 {
    // -60 dBFS .. 0 dBFS
    ((dbfs + 60.0) / 60.0).clamp(0.0, 1.0)
}

/// Draws the whole display, a panel per part, top to bottom.
fn draw(f: &mut Frame, s: &Snapshot, log: &VecDeque<String>) {
    let stems_h = s.stems.len() as u16 + 2;
    let [top, meters, ab, stems, logs, help] = Layout::vertical([
        Constraint::Length(4),
        Constraint::Length(5),
        Constraint::Length(3),
        Constraint::Length(stems_h),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(f.area());
    draw_transport(f, s, top);
    draw_meters(f, s, meters);
    draw_ab(f, s, ab);
    draw_stems(f, s, stems);
    draw_log(f, s, log, logs);
    f.render_widget(
        Paragraph::new(HELP).style(Style::default().fg(Color::DarkGray)),
        help,
    );
}

/// Play state, section, loop and the position in the song.
fn draw_transport(f: &mut Frame, s: &Snapshot, top: Rect) {
    let state = if s.ended {
        "■ ended"
    } else if s.paused {
        "⏸ paused"
    } else {
        "▶ playing"
    };
    let mut where_ = format!("{state}   {}", s.section.clone().unwrap_or_default());
    if let Some((a, b, label)) = &s.looping {
        where_.push_str(&format!("   ⟲ loop {label} {}–{}", clock(*a), clock(*b)));
    }
    let block = Block::default()
        .borders(Borders::ALL)
        .title(format!(" stemgraph play — {} ", s.title));
    let inner = block.inner(top);
    f.render_widget(block, top);
    let [line1, line2] =
        Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(inner);
    f.render_widget(Paragraph::new(where_), line1);
    f.render_widget(
        Gauge::default()
            .gauge_style(Style::default().fg(Color::Cyan))
            .ratio((s.position_s / s.song_s.max(1e-9)).clamp(0.0, 1.0))
            .label(format!("{} / {}", clock(s.position_s), clock(s.song_s))),
        line2,
    );
}

/// Loudness and true peak, gain reduction, load, and the integrated loudness at reloads.
fn draw_meters(f: &mut Frame, s: &Snapshot, meters: Rect) {
    let gr = if s.gain_reduction.is_empty() {
        "GR —".to_string()
    } else {
        s.gain_reduction
            .iter()
            .map(|(id, g)| format!("GR {id} {g:.1} dB"))
            .collect::<Vec<_>>()
            .join("  ")
    };
    let m = &s.meters;
    let text = vec![
        Line::from(vec![
            Span::styled("M ", Style::default().add_modifier(Modifier::BOLD)),
            Span::raw(format!("{:>6} ", db(m.momentary_lufs))),
            Span::styled("S ", Style::default().add_modifier(Modifier::BOLD)),
            Span::raw(format!("{:>6} ", db(m.short_term_lufs))),
            Span::styled("I ", Style::default().add_modifier(Modifier::BOLD)),
            Span::raw(format!("{:>6} LUFS   ", db(m.integrated_lufs))),
            Span::styled("TP ", Style::default().add_modifier(Modifier::BOLD)),
            Span::styled(
                format!("{} dBTP", db(m.true_peak_dbtp)),
                if m.true_peak_dbtp > -1.0 {
                    Style::default().fg(Color::Red)
                } else {
                    Style::default()
                },
            ),
            Span::raw(format!(" (now {})", db(m.recent_true_peak_dbtp))),
        ]),
        Line::from(format!(
            "{gr}   load {:.0}% (max {:.0}%)   latency {:.1} ms   underruns {}   meter drops {}",
            s.load_pct.0, s.load_pct.1, s.latency_ms, s.underruns, s.meter_drops
        )),
        Line::from(format!(
            "integrated at reloads: {}",
            m.markers
                .iter()
                .rev()
                .take(4)
                .rev()
                .map(|(label, i)| format!("{label}: {}", db(*i)))
                .collect::<Vec<_>>()
                .join("   ")
        )),
    ];
    f.render_widget(
        Paragraph::new(text).block(Block::default().borders(Borders::ALL).title(" meters ")),
        meters,
    );
}

/// What is heard (master or reference, loudness-matched) and the master chain's bypass.
fn draw_ab(f: &mut Frame, s: &Snapshot, ab: Rect) {
    let ab_text = if !s.has_reference {
        "A master (no reference mix declared)".to_string()
    } else {
        let match_ = match (s.ab_lufs, s.reference_gain_db) {
            ((Some(a), Some(b)), Some(g)) => {
                format!("matched: master {a:.1} LUFS, reference {b:.1} LUFS → {g:+.1} dB")
            }
            _ => "measuring loudness…".to_string(),
        };
        format!(
            "{}   {match_}",
            if s.listening_reference {
                "B reference"
            } else {
                "A master"
            }
        )
    };
    let ab_text = format!(
        "{ab_text}   master chain: {}",
        if s.bypass_master { "BYPASSED" } else { "on" }
    );
    f.render_widget(
        Paragraph::new(ab_text).block(Block::default().borders(Borders::ALL).title(" A/B ")),
        ab,
    );
}

/// A level bar per stem, with its mute and solo marks.
fn draw_stems(f: &mut Frame, s: &Snapshot, stems: Rect) {
    let block = Block::default().borders(Borders::ALL).title(" stems ");
    let inner = block.inner(stems);
    f.render_widget(block, stems);
    for (i, st) in s.stems.iter().enumerate() {
        let row = Rect {
            y: inner.y + i as u16,
            height: 1,
            ..inner
        };
        if row.y >= inner.y + inner.height {
            break;
        }
        let [label, bar] =
            Layout::horizontal([Constraint::Length(28), Constraint::Min(10)]).areas(row);
        let marks = format!(
            "{}{}",
            if st.muted { "M" } else { " " },
            if st.soloed { "S" } else { " " }
        );
        f.render_widget(
            Paragraph::new(format!("{} {marks} {:<20}", i + 1, st.name)),
            label,
        );
        f.render_widget(
            Gauge::default()
                .gauge_style(Style::default().fg(if st.muted {
                    Color::DarkGray
                } else {
                    Color::Green
                }))
                .ratio(meter_ratio(st.peak_db))
                .label(format!("peak {} rms {}", db(st.peak_db), db(st.rms_db))),
            bar,
        );
    }
}

/// The last reload and as much of the log as fits.
fn draw_log(f: &mut Frame, s: &Snapshot, log: &VecDeque<String>, logs: Rect) {
    let mut lines: Vec<Line> = Vec::new();
    if let Some(r) = &s.last_reload {
        lines.push(Line::styled(
            format!("last reload: {r}"),
            Style::default().add_modifier(Modifier::BOLD),
        ));
    }
    let room = logs.height.saturating_sub(2 + lines.len() as u16) as usize;
    lines.extend(
        log.iter()
            .rev()
            .take(room)
            .rev()
            .map(|l| Line::from(l.as_str())),
    );
    f.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(format!(
            " log {}",
            if s.watching {
                "(watching the recipe) "
            } else {
                ""
            }
        ))),
        logs,
    );
}

impl Display for TuiDisplay {
    fn show(&mut self, snap: &Snapshot) -> io::Result<()> {
        let now = Instant::now();
        if self
            .last_draw
            .is_some_and(|t| now.duration_since(t) < Duration::from_millis(50))
        {
            return Ok(());
        }
        self.last_draw = Some(now);
        let log = &self.log;
        self.terminal.draw(|f| draw(f, snap, log))?;
        Ok(())
    }

    fn event(&mut self, event: &LiveEvent) -> io::Result<()> {
        let line = format!(
            "{} {}",
            super::control::wall_clock(std::time::SystemTime::now()),
            event.to_string().replace('\n', " ")
        );
        self.log.push_back(line);
        while self.log.len() > 200 {
            self.log.pop_front();
        }
        self.last_draw = None;
        Ok(())
    }

    fn input(&mut self, timeout: Duration) -> io::Result<Option<Command>> {
        if !event::poll(timeout)? {
            return Ok(None);
        }
        match event::read()? {
            Event::Key(k) if k.kind == KeyEventKind::Press => Ok(self.key(k.code, k.modifiers)),
            Event::Resize(..) => {
                self.last_draw = None;
                Ok(None)
            }
            _ => Ok(None),
        }
    }
}
