//! The interactive loop of `stemgraph play`: start the live session, open the device, then tick
//! the controller, feed keys to it and show its state until the song ends, the user quits, or
//! the time given with `--seconds` is up.
//!
//! Runs on the main (control) thread. The audio callback runs on the device's thread and is
//! only reached through the controller's queues.

use super::control::{self, Command, LiveConfig, LiveEvent};
use super::output;
use super::status::{status_line, Display, PlainDisplay};
use super::tui::TuiDisplay;
use super::LiveError;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What `stemgraph play` was asked to do.
#[derive(Debug, Clone)]
pub struct PlayOptions {
    /// The recipe.
    pub recipe: PathBuf,
    /// Where to start, in seconds.
    pub from_seconds: f64,
    /// The output device (name, id, or a unique part of the name); the default if `None`.
    pub device: Option<String>,
    /// Frames per callback.
    pub buffer_frames: u32,
    /// Ask for real-time priority for the audio thread.
    pub realtime: bool,
    /// Reload on save.
    pub watch: bool,
    /// The terminal UI (else plain status lines).
    pub tui: bool,
    /// Crossfade of structural reloads, in milliseconds.
    pub crossfade_ms: f64,
    /// Stop after this many seconds.
    pub seconds: Option<f64>,
    /// A region or section to loop from the start.
    pub loop_region: Option<String>,
    /// Set from another thread (Ctrl-C) to stop.
    pub interrupt: Option<Arc<AtomicBool>>,
    /// A reference track heard on B (loudness-matched) instead of the recipe's reference mix.
    pub reference: Option<PathBuf>,
}

/// How often the controller ticks.
const TICK: Duration = Duration::from_millis(5);
/// How often the display gets a new snapshot.
const FRAME: Duration = Duration::from_millis(50);

/// Plays `opts.recipe` until the end, `q`, Ctrl-C, or `opts.seconds`.
pub fn play(opts: &PlayOptions) -> Result<(), LiveError> {
    let session = crate::script::load_recipe(&opts.recipe)?;
    let config = LiveConfig {
        buffer_frames: opts.buffer_frames as usize,
        crossfade_ms: opts.crossfade_ms,
        from_seconds: opts.from_seconds,
        loop_region: opts.loop_region.clone(),
        watch: opts.watch,
        reference_track: opts.reference.clone(),
        ..LiveConfig::default()
    };
    let (mut ctl, audio) = control::start(session, &config)?;
    ctl.wait_ready(Duration::from_secs(10));
    let rate = ctl.sample_rate() as u32;
    let mut out = output::open(
        &output::DeviceRequest {
            name: opts.device.as_deref(),
            rate,
            buffer_frames: opts.buffer_frames,
            realtime: opts.realtime,
        },
        audio,
    )?;
    let mut display: Box<dyn Display> = if opts.tui {
        Box::new(TuiDisplay::new()?)
    } else {
        Box::new(PlainDisplay::new())
    };
    let i = &out.info;
    display.event(&LiveEvent::Info(format!(
        "playing {} on {} at {} Hz{}, {} ch, {} frames per callback, engine latency {} samples \
         ({:.1} ms){}",
        opts.recipe.display(),
        i.device,
        i.sample_rate,
        i.resampled_from
            .map(|r| format!(" (resampled from {r} Hz)"))
            .unwrap_or_default(),
        i.channels,
        i.buffer_frames
            .map_or("default".to_string(), |n| n.to_string()),
        ctl.live_latency(),
        ctl.live_latency() as f64 / ctl.sample_rate() * 1000.0,
        if opts.watch {
            ", watching the recipe"
        } else {
            ""
        }
    )))?;

    let started = Instant::now();
    let mut last_frame: Option<Instant> = None;
    let result = loop {
        let now = Instant::now();
        for e in ctl.tick(now) {
            display.event(&e)?;
        }
        for e in out.take_errors() {
            display.event(&LiveEvent::Problem(format!("audio device: {e}")))?;
        }
        if ctl.ended() {
            display.event(&LiveEvent::Info("end of song".into()))?;
            break Ok(());
        }
        if opts
            .seconds
            .is_some_and(|s| started.elapsed().as_secs_f64() >= s)
        {
            break Ok(());
        }
        if opts
            .interrupt
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed))
        {
            break Ok(());
        }
        if last_frame.is_none_or(|t| now.duration_since(t) >= FRAME) {
            last_frame = Some(now);
            display.show(&ctl.snapshot())?;
        }
        let wait = ctl
            .next_deadline()
            .map_or(TICK, |d| d.saturating_duration_since(Instant::now()))
            .min(TICK);
        match display.input(wait)? {
            Some(Command::Quit) => break Ok(()),
            Some(cmd) => {
                for e in ctl.command(cmd) {
                    display.event(&e)?;
                }
            }
            None => {}
        }
    };
    let snap = ctl.snapshot();
    drop(out);
    ctl.collect_garbage();
    drop(display);
    println!(
        "stopped: {} | {} swap(s)",
        status_line(&snap),
        ctl.swaps().len()
    );
    result
}
