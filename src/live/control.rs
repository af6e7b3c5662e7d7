//! The control side of a live session: everything but the callback, the device and the display.
//!
//! [`start`] builds the pieces from a loaded session (the first schedule, the live engine, the
//! streamer, the queues, the meters, the loudness worker, the watcher) and returns the
//! [`Controller`] with the [`AudioSide`] to hand to a device (or to a simulated callback in tests
//! and tools). The controller is driven by [`Controller::tick`] every few milliseconds and by
//! [`Controller::command`] for key presses: it debounces file events and reloads, retries a
//! schedule waiting for room, collects the schedules the engine retired (they are dropped here),
//! turns engine events into log entries with stream positions and wall-clock times, and keeps
//! the A/B loudness match up to date.
//!
//! Never runs on the audio thread; may allocate, block briefly and run Lua.

pub use super::events::{wall_clock, LiveEvent, SwapRecord};
pub use super::snapshot::{Snapshot, StemView};

use super::audio::{AudioSide, AudioWiring};
use super::loudness::{LoudnessJob, LoudnessResult, LoudnessWorker};
use super::meters::Meters;
use super::reload::{Debouncer, Prepared, Reloader, Submitted, Watcher, DEBOUNCE};

/// How long an empty recipe file may stay empty before its reload is tried (and fails).
pub const EMPTY_GRACE: Duration = Duration::from_millis(300);
use super::shared::{SharedControls, SharedStatus, COMMAND_QUEUE};
use super::streamer::{self, Opened};
use super::transport::{Transport, TransportParts};
use super::xruns::UnderrunCounts;
use super::{LiveError, LATENCY_HEADROOM_MS, STEM_CAPACITY};
use crate::engine::live::{EngineEvent, LiveControl, LiveEngine};
use crate::render::plan_stems;
use crate::session::Session;
use crate::units::{gain_to_db, ms_to_samples};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// How a live session is set up.
#[derive(Debug, Clone)]
pub struct LiveConfig {
    /// Frames per device callback: the engine's largest block.
    pub buffer_frames: usize,
    /// Crossfade length of structural reloads, in milliseconds.
    pub crossfade_ms: f64,
    /// Where playback starts, in seconds of song time.
    pub from_seconds: f64,
    /// A region to loop from the start (`START..END` or a section name).
    pub loop_region: Option<String>,
    /// Read-ahead of the streamer, in seconds.
    pub read_ahead_seconds: f64,
    /// Run the meter thread.
    pub meters: bool,
    /// Measure loudness for the A/B match after each reload.
    pub loudness_match: bool,
    /// Watch the recipe and reload on save.
    pub watch: bool,
    /// A reference track (`play --reference`, e.g. the commercial track a master is matched
    /// to) heard on B instead of the recipe's reference mix, loudness-matched the same way;
    /// kept across reloads.
    pub reference_track: Option<std::path::PathBuf>,
}

impl Default for LiveConfig {
    fn default() -> Self {
        Self {
            buffer_frames: 256,
            crossfade_ms: 30.0,
            from_seconds: 0.0,
            loop_region: None,
            read_ahead_seconds: 1.0,
            meters: true,
            loudness_match: true,
            watch: true,
            reference_track: None,
        }
    }
}

/// A key press or its equivalent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Command {
    /// Pause or resume.
    TogglePause,
    /// Seek by this many seconds.
    SeekBy(f64),
    /// Master (A) or reference (B).
    ToggleAb,
    /// Bypass the master chain or not.
    ToggleBypass,
    /// Mute stem `i`.
    ToggleMute(usize),
    /// Solo stem `i`.
    ToggleSolo(usize),
    /// Loop on or off.
    ToggleLoop,
    /// Mark the loop start at the playhead.
    LoopIn,
    /// Mark the loop end at the playhead.
    LoopOut,
    /// Reload the recipe now.
    Reload,
    /// Stop playing.
    Quit,
}

struct Timing {
    generation: u64,
    saved: Option<Instant>,
    took: Duration,
}

struct Reopen {
    epoch: u64,
    opened: Opened,
    prepared: Prepared,
    saved: Option<Instant>,
    started: Instant,
}

/// The control side of a live session.
pub struct Controller {
    control: LiveControl,
    reloader: Reloader,
    transport: Transport,
    meters: Option<Meters>,
    loudness: Option<LoudnessWorker>,
    loudness_match: bool,
    watcher: Option<Watcher>,
    debouncer: Debouncer,
    /// When a reload first found the recipe file empty (a save under way), until it is not.
    empty_since: Option<Instant>,
    rate: f64,
    latency: usize,
    timings: Vec<Timing>,
    reopen: Option<Reopen>,
    last_reload: Option<String>,
    last_loudness: Option<LoudnessResult>,
    retired: u64,
    underruns_seen: u64,
    underruns_told: Option<Instant>,
    realtime_told: bool,
    swaps: Vec<SwapRecord>,
}

/// Builds a live session for `session`: returns its control side and the callback body.
pub fn start(
    mut session: Session,
    config: &LiveConfig,
) -> Result<(Controller, AudioSide), LiveError> {
    if let Some(track) = &config.reference_track {
        session.reference = Some(track.clone());
    }
    let stem_plan = plan_stems(&session)?;
    let rate = f64::from(stem_plan.sample_rate);
    let max_block = config.buffer_frames.clamp(16, 8192);
    let (mut reloader, schedule) =
        Reloader::new(session.clone(), &stem_plan, max_block, config.crossfade_ms)?;
    reloader.keep_reference(config.reference_track.clone());
    let (engine, control) = LiveEngine::with_input_capacity(
        schedule,
        ms_to_samples(LATENCY_HEADROOM_MS, rate),
        STEM_CAPACITY,
    );
    let latency = engine.live_latency();
    let opened = Opened::open(reloader.sources())?;
    let start = crate::units::seconds_to_samples(config.from_seconds.max(0.0), rate);
    let end = stem_plan.song_frames as i64 + (reloader.tail() + latency) as i64;
    let (streamer, chunks) = streamer::spawn(
        opened,
        start,
        end,
        None,
        (config.read_ahead_seconds * rate) as usize,
    )?;
    let (commands_tx, commands_rx) = rtrb::RingBuffer::new(COMMAND_QUEUE);
    let controls = Arc::new(SharedControls::default());
    let status = Arc::new(SharedStatus::default());
    let (meter_tx, meter_rx) = super::meters::ring(stem_plan.sample_rate);
    let audio = AudioSide::new(
        engine,
        rate,
        AudioWiring {
            chunks,
            commands: commands_rx,
            controls: controls.clone(),
            status: status.clone(),
            meter: meter_tx,
        },
    );
    let mut transport = Transport::new(
        TransportParts {
            commands: commands_tx,
            controls,
            status,
            streamer,
        },
        rate,
        latency,
    );
    let meters = config
        .meters
        .then(|| Meters::spawn(meter_rx, stem_plan.sample_rate));
    let watcher = if config.watch {
        let mut w = Watcher::new()?;
        w.watch(&session.loaded_files)?;
        Some(w)
    } else {
        None
    };
    let mut ctl = Controller {
        control,
        reloader,
        transport: {
            transport.set_song(
                session.stems.iter().map(|s| s.name.clone()).collect(),
                session.sections.clone(),
                stem_plan.song_frames,
                0,
                session.reference.is_some(),
            );
            transport
        },
        meters,
        loudness: None,
        loudness_match: config.loudness_match,
        watcher,
        debouncer: Debouncer::new(DEBOUNCE),
        empty_since: None,
        rate,
        latency,
        timings: Vec::new(),
        reopen: None,
        last_reload: None,
        last_loudness: None,
        retired: 0,
        underruns_seen: 0,
        underruns_told: None,
        realtime_told: false,
        swaps: Vec::new(),
    };
    ctl.update_song();
    if let Some(spec) = &config.loop_region {
        ctl.transport
            .set_preset_loop(spec)
            .map_err(LiveError::Unsupported)?;
        ctl.transport.toggle_loop();
    }
    ctl.measure_loudness(0);
    Ok((ctl, audio))
}

impl Controller {
    /// Waits (at most `timeout`) until the streamer has read ahead enough to start playing.
    pub fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let s = self.transport.streamer();
        let want = (s.pool_chunks() / 2).max(1);
        loop {
            let buffered = s.status().buffered_chunks.load(Ordering::Relaxed);
            let written = s.status().write_position.load(Ordering::Relaxed);
            if buffered >= want || written >= self.transport.end() {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Frames the streamer has decoded ahead of the callback in the epoch the transport wants
    /// (`i64::MAX` once it has read to the end), for tools and tests that drive the callback
    /// themselves.
    pub fn decoded_ahead(&self) -> i64 {
        let st = self.transport.streamer().status();
        let epoch = st.epoch.load(Ordering::Acquire);
        if epoch < self.transport.epoch() {
            // Nothing of the new epoch yet; if the callback has not flushed the old one, it
            // must run first (a reopen waits for that flush).
            let acked = self.status().epoch_acked.load(Ordering::Acquire);
            return if acked < self.transport.epoch() {
                i64::MAX
            } else {
                0
            };
        }
        let written = st.written.load(Ordering::Acquire) as i64;
        if st.write_position.load(Ordering::Relaxed) >= self.transport.end() {
            return i64::MAX;
        }
        if self.status().epoch.load(Ordering::Relaxed) < epoch {
            return written;
        }
        written - self.status().consumed.load(Ordering::Relaxed) as i64
    }

    /// The session rate.
    pub fn sample_rate(&self) -> f64 {
        self.rate
    }

    /// The engine's fixed output latency in frames.
    pub fn live_latency(&self) -> usize {
        self.latency
    }

    /// The transport.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// What the callback reports.
    pub fn status(&self) -> &SharedStatus {
        self.transport.status()
    }

    /// The last good session.
    pub fn session(&self) -> &Session {
        self.reloader.session()
    }

    /// Every swap so far.
    pub fn swaps(&self) -> &[SwapRecord] {
        &self.swaps
    }

    /// Schedules handed to the engine after the first one.
    pub fn submitted(&self) -> u64 {
        self.reloader.submitted()
    }

    /// Old schedules the engine gave back and this side dropped.
    pub fn retired(&self) -> u64 {
        self.retired
    }

    /// Whether the song has been played to the end.
    pub fn ended(&self) -> bool {
        self.status().ended.load(Ordering::Relaxed)
    }

    /// The earliest moment [`Controller::tick`] has something to do (a debounced reload).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.debouncer.deadline()
    }

    /// Notes a file event at `at` (the watcher does this itself; for tools and tests).
    pub fn file_changed(&mut self, at: Instant) {
        self.debouncer.note(at);
    }

    /// Does what is due: reloads after a burst of saves, hands over a waiting schedule, drops
    /// retired schedules, reports engine events. Call every few milliseconds.
    pub fn tick(&mut self, now: Instant) -> Vec<LiveEvent> {
        let mut events = Vec::new();
        self.drain_watcher();
        if let Some(saved) = self.debouncer.take_due(now) {
            events.extend(self.reload(Some(saved)));
        }
        events.extend(self.finish_reopen());
        if let Some(s) = self.reloader.retry(&mut self.control) {
            events.extend(self.submitted_event(s, None));
        }
        self.retired += self.control.collect_garbage() as u64;
        for e in self.control.events() {
            events.push(self.engine_event(e));
        }
        for e in self.transport.streamer().take_errors() {
            events.push(LiveEvent::Problem(e));
        }
        events.extend(self.underrun_events(now));
        if let Some(r) = self.loudness.as_ref().and_then(|l| l.poll()) {
            if let Some(g) = r.reference_gain_db() {
                self.transport
                    .controls()
                    .reference_gain
                    .store(crate::units::db_to_gain(g));
            }
            self.last_loudness = Some(r.clone());
            events.push(LiveEvent::Loudness(r));
        }
        events
    }

    /// The audio thread's priority (once), and new underruns (at most one line a second).
    fn underrun_events(&mut self, now: Instant) -> Vec<LiveEvent> {
        let mut events = Vec::new();
        if !self.realtime_told {
            if let Some((line, problem)) =
                super::realtime::describe(self.status().realtime.load(Ordering::Relaxed))
            {
                self.realtime_told = true;
                events.push(if problem {
                    LiveEvent::Problem(line)
                } else {
                    LiveEvent::Info(line)
                });
            }
        }
        let counts = UnderrunCounts::read(self.status());
        let due = self
            .underruns_told
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1));
        if counts.total > self.underruns_seen && due {
            let late_ms = self.status().late_micros.load(Ordering::Relaxed) as f64 / 1000.0;
            events.push(LiveEvent::Problem(format!(
                "{} underrun(s), {} so far: device xruns {}, late callbacks {} ({late_ms:.1} ms \
                 dry), stems not decoded in time {} ({} frames)",
                counts.total - self.underruns_seen,
                counts.total,
                counts.device_xruns,
                counts.late_callbacks,
                counts.starved,
                self.status().underrun_frames.load(Ordering::Relaxed)
            )));
            self.underruns_seen = counts.total;
            self.underruns_told = Some(now);
        }
        events
    }

    fn drain_watcher(&mut self) {
        if let Some(w) = &self.watcher {
            for at in w.drain() {
                self.debouncer.note(at);
            }
        }
    }

    /// A newer save arrived after `t0`: what was loaded is already stale.
    fn superseded(&mut self, t0: Instant) -> bool {
        self.drain_watcher();
        self.debouncer.last().is_some_and(|l| l > t0)
    }

    /// Whether the recipe file is empty: an editor that truncates it and then writes leaves it
    /// so for a moment (on a loaded machine, for longer than the debounce). It is given
    /// [`EMPTY_GRACE`] to fill before its reload is tried and reported; meanwhile the last good
    /// graph plays on.
    fn still_being_written(&mut self, t0: Instant) -> bool {
        let empty = std::fs::metadata(&self.reloader.session().recipe).is_ok_and(|m| m.len() == 0);
        if !empty {
            self.empty_since = None;
            return false;
        }
        let first = *self.empty_since.get_or_insert(t0);
        if t0.duration_since(first) >= EMPTY_GRACE {
            self.empty_since = None;
            return false;
        }
        // Look again once the grace is over, unless a write comes first.
        self.debouncer.note(
            (first + EMPTY_GRACE)
                .checked_sub(DEBOUNCE)
                .unwrap_or(t0)
                .max(t0),
        );
        true
    }

    /// Loads the recipe now and hands the result over; `saved` is when the save began.
    pub fn reload(&mut self, saved: Option<Instant>) -> Vec<LiveEvent> {
        let t0 = Instant::now();
        if self.still_being_written(t0) {
            return Vec::new();
        }
        let result = self.reloader.load();
        if self.superseded(t0) {
            // Never queue a stale schedule: the debouncer reloads again for the newer save.
            return Vec::new();
        }
        match result {
            Ok(p) => self.apply(p, saved, t0),
            Err(e) => {
                let took = t0.elapsed();
                self.last_reload = Some(format!("{} failed: {e}", wall_clock(SystemTime::now())));
                vec![LiveEvent::ReloadFailed {
                    error: e.to_string(),
                    took,
                }]
            }
        }
    }

    fn apply(&mut self, prepared: Prepared, saved: Option<Instant>, t0: Instant) -> Vec<LiveEvent> {
        if prepared.stems_changed || self.reopen.is_some() {
            let opened = match Opened::open(&prepared.sources) {
                Ok(o) => o,
                Err(e) => {
                    return vec![LiveEvent::ReloadFailed {
                        error: e.to_string(),
                        took: t0.elapsed(),
                    }]
                }
            };
            self.reloader.drop_pending();
            let epoch = match self.reopen.take() {
                Some(r) => r.epoch,
                None => self.transport.begin_flush(),
            };
            self.reopen = Some(Reopen {
                epoch,
                opened,
                prepared,
                saved,
                started: t0,
            });
            let mut events = vec![LiveEvent::Info("reopening the stems".into())];
            events.extend(self.finish_reopen());
            return events;
        }
        let info = (
            prepared.generation,
            prepared.load_time,
            prepared.compile_time,
            prepared.warnings.clone(),
            false,
        );
        let submitted = self.reloader.submit(prepared, &mut self.control);
        self.after_submit(submitted, info, saved, t0)
    }

    /// Completes a reopen once the callback has flushed: hands over the schedule, then restarts
    /// the streamer on the new files where the engine stopped.
    fn finish_reopen(&mut self) -> Vec<LiveEvent> {
        let Some(r) = &self.reopen else {
            return Vec::new();
        };
        if self.status().epoch_acked.load(Ordering::Acquire) < r.epoch {
            return Vec::new();
        }
        let r = self.reopen.take().expect("checked");
        let position = self.status().position.load(Ordering::Relaxed);
        let info = (
            r.prepared.generation,
            r.prepared.load_time,
            r.prepared.compile_time,
            r.prepared.warnings.clone(),
            true,
        );
        let submitted = self.reloader.submit(r.prepared, &mut self.control);
        self.transport.restart(r.opened, position);
        self.after_submit(submitted, info, r.saved, r.started)
    }

    fn after_submit(
        &mut self,
        submitted: Submitted,
        (generation, load, compile, warnings, stems_changed): (
            u64,
            Duration,
            Duration,
            Vec<String>,
            bool,
        ),
        saved: Option<Instant>,
        t0: Instant,
    ) -> Vec<LiveEvent> {
        let took = t0.elapsed();
        self.timings.retain(|t| t.generation + 64 > generation);
        self.timings.push(Timing {
            generation,
            saved,
            took,
        });
        if let Some(w) = &mut self.watcher {
            let _ = w.watch(&self.reloader.session().loaded_files);
        }
        match submitted {
            Submitted::Queued { crossfade, .. } => {
                self.update_song();
                self.measure_loudness(generation);
                self.last_reload = Some(format!(
                    "{} #{generation} ok in {:.0} ms",
                    wall_clock(SystemTime::now()),
                    took.as_secs_f64() * 1000.0
                ));
                vec![LiveEvent::Reloaded {
                    generation,
                    crossfade,
                    stems_changed,
                    load,
                    compile,
                    took,
                    warnings,
                }]
            }
            Submitted::Waiting => vec![LiveEvent::Waiting { generation }],
        }
    }

    fn submitted_event(&mut self, s: Submitted, saved: Option<Instant>) -> Vec<LiveEvent> {
        match s {
            Submitted::Queued {
                generation,
                crossfade,
            } => {
                self.update_song();
                self.measure_loudness(generation);
                let _ = saved;
                self.last_reload = Some(format!(
                    "{} #{generation} handed over",
                    wall_clock(SystemTime::now())
                ));
                vec![LiveEvent::Info(format!(
                    "reload #{generation} handed over{}",
                    if crossfade { " (crossfade)" } else { "" }
                ))]
            }
            Submitted::Waiting => Vec::new(),
        }
    }

    /// Tells the transport about the last good session.
    fn update_song(&mut self) {
        let s = self.reloader.session();
        let song_frames = self.reloader.sources().song_frames;
        self.transport.set_song(
            s.stems.iter().map(|s| s.name.clone()).collect(),
            s.sections.clone(),
            song_frames,
            self.reloader.tail(),
            s.reference.is_some(),
        );
    }

    fn measure_loudness(&mut self, generation: u64) {
        if !self.loudness_match || self.reloader.session().reference.is_none() {
            return;
        }
        let worker = self.loudness.get_or_insert_with(LoudnessWorker::spawn);
        worker.submit(LoudnessJob {
            generation,
            session: self.reloader.session().clone(),
            bypass_master: self.reloader.bypass_master(),
        });
    }

    fn engine_event(&mut self, e: EngineEvent) -> LiveEvent {
        match e {
            EngineEvent::Swapped {
                generation,
                position,
                crossfade,
            } => {
                let timing = self.timings.iter().find(|t| t.generation == generation);
                let audible =
                    self.status()
                        .audible_at(position, self.latency, self.rate);
                let record = SwapRecord {
                    generation,
                    position,
                    output_position: position + self.latency as i64,
                    crossfade,
                    wall: SystemTime::now(),
                    reload_took: timing.map(|t| t.took),
                    saved_to_audible: timing
                        .and_then(|t| t.saved)
                        .zip(audible)
                        .map(|(s, a)| a.saturating_duration_since(s)),
                    audible_at: audible,
                    integrated_lufs: self
                        .meters
                        .as_ref()
                        .map(|m| m.readings().integrated_lufs),
                    underruns: self.status().underruns.load(Ordering::Relaxed),
                };
                if let Some(m) = &self.meters {
                    m.mark(format!(
                        "#{generation} at {}",
                        super::transport::clock(position as f64 / self.rate)
                    ));
                }
                self.swaps.push(record.clone());
                LiveEvent::Swapped(record)
            }
            EngineEvent::NonFinite {
                count,
                node,
                position,
            } => LiveEvent::Problem(format!(
                "NaN or infinity from node #{node} at stream sample {position} (muted; {count} so far)"
            )),
            EngineEvent::Panicked { position } => LiveEvent::Problem(format!(
                "processing panicked at stream sample {position}: silent until the next reload"
            )),
        }
    }

    /// Carries out a key press.
    pub fn command(&mut self, cmd: Command) -> Vec<LiveEvent> {
        let info = |s: String| vec![LiveEvent::Info(s)];
        match cmd {
            Command::TogglePause => info(self.transport.toggle_pause()),
            Command::SeekBy(s) => info(self.transport.seek_by(s)),
            Command::ToggleAb => info(self.transport.toggle_ab()),
            Command::ToggleMute(i) => self.transport.toggle_mute(i).map(info).unwrap_or_default(),
            Command::ToggleSolo(i) => self.transport.toggle_solo(i).map(info).unwrap_or_default(),
            Command::ToggleLoop => info(self.transport.toggle_loop()),
            Command::LoopIn => info(self.transport.mark_in()),
            Command::LoopOut => info(self.transport.mark_out()),
            Command::Reload => self.reload(None),
            Command::ToggleBypass => {
                let t0 = Instant::now();
                let on = !self.reloader.bypass_master();
                match self.reloader.set_bypass(on) {
                    Ok(p) => {
                        let mut ev = info(format!(
                            "master chain {}",
                            if on { "bypassed" } else { "back in" }
                        ));
                        ev.extend(self.apply(p, None, t0));
                        ev
                    }
                    Err(e) => vec![LiveEvent::Problem(format!("cannot bypass: {e}"))],
                }
            }
            Command::Quit => Vec::new(),
        }
    }

    /// What the display shows now.
    pub fn snapshot(&self) -> Snapshot {
        let status = self.status();
        let controls = self.transport.controls();
        let session = self.reloader.session();
        let (mute, solo) = (
            controls.mute.load(Ordering::Relaxed),
            controls.solo.load(Ordering::Relaxed),
        );
        let stems = session
            .stems
            .iter()
            .enumerate()
            .map(|(i, s)| StemView {
                name: s.name.clone(),
                peak_db: gain_to_db(status.stem_peak[i.min(STEM_CAPACITY - 1)].load()),
                rms_db: gain_to_db(status.stem_rms[i.min(STEM_CAPACITY - 1)].load()),
                muted: mute & (1 << i) != 0,
                soloed: solo & (1 << i) != 0,
            })
            .collect();
        let ab = self.last_loudness.as_ref();
        Snapshot {
            title: session.title.clone(),
            position_s: self.transport.heard_position() as f64 / self.rate,
            song_s: self.reloader.sources().song_frames as f64 / self.rate,
            paused: self.transport.paused(),
            ended: self.ended(),
            section: self.transport.section_name(),
            looping: self.transport.looping(),
            listening_reference: status.hearing_reference.load(Ordering::Relaxed),
            has_reference: session.reference.is_some(),
            reference_gain_db: ab.and_then(|r| r.reference_gain_db()),
            ab_lufs: (
                ab.and_then(|r| r.master_lufs.as_ref().ok().copied()),
                ab.and_then(|r| r.reference_lufs.as_ref()?.as_ref().ok().copied()),
            ),
            bypass_master: self.reloader.bypass_master(),
            meters: self
                .meters
                .as_ref()
                .map(|m| m.readings())
                .unwrap_or_default(),
            gain_reduction: self.reloader.gain_reduction(),
            stems,
            last_reload: self.last_reload.clone(),
            underruns: UnderrunCounts::read(status),
            meter_drops: status.meter_drops.load(Ordering::Relaxed),
            load_pct: (
                f64::from(status.load_permille.load(Ordering::Relaxed)) / 10.0,
                f64::from(status.load_max_permille.load(Ordering::Relaxed)) / 10.0,
            ),
            latency_ms: self.latency as f64 / self.rate * 1000.0,
            watching: self.watcher.is_some(),
        }
    }

    /// Drops what the engine retired so far (call after the callback has stopped, too).
    pub fn collect_garbage(&mut self) -> u64 {
        let n = self.control.collect_garbage() as u64;
        self.retired += n;
        n
    }
}
