//! The A/B loudness match: integrated loudness of the master and of the reference mix, measured
//! offline on a background thread after each reload.
//!
//! Each job renders the whole song through the graph as it now stands (with the master chain
//! bypassed if it is) with the same streamed render the `render` command uses, and measures it
//! with an EBU R128 meter; the reference file is measured once per file. A newer job interrupts
//! an older one. The thread runs at a lower scheduling priority so it does not compete with the
//! audio thread.
//!
//! Never runs on the audio thread; its result reaches the callback as one latest-value atomic.

use super::reload::bypass_master_chain;
use crate::engine::parallel::RunSettings;
use crate::graph::{compile, CompileOptions};
use crate::io::decode::{StemStream, StreamOptions};
use crate::render::{open_stems, plan_stems, run};
use crate::session::Session;
use crossbeam::channel::{Receiver, Sender};
use ebur128::{EbuR128, Mode};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A measurement to make.
pub struct LoudnessJob {
    /// The reload it belongs to.
    pub generation: u64,
    /// The session as it now plays.
    pub session: Session,
    /// Whether the master chain is bypassed.
    pub bypass_master: bool,
}

/// What a job measured.
#[derive(Debug, Clone, PartialEq)]
pub struct LoudnessResult {
    /// The reload it belongs to.
    pub generation: u64,
    /// Integrated loudness of the master, LUFS.
    pub master_lufs: Result<f64, String>,
    /// Integrated loudness of the reference mix, LUFS (`None`: no reference).
    pub reference_lufs: Option<Result<f64, String>>,
    /// How long the measurement took.
    pub took: Duration,
}

impl LoudnessResult {
    /// The gain (dB) that brings the reference to the master's loudness, if both are known.
    pub fn reference_gain_db(&self) -> Option<f64> {
        let m = self.master_lufs.as_ref().ok()?;
        let r = self.reference_lufs.as_ref()?.as_ref().ok()?;
        (m.is_finite() && r.is_finite()).then(|| m - r)
    }
}

/// The background measurement thread. Dropping it stops the thread.
pub struct LoudnessWorker {
    jobs: Option<Sender<(LoudnessJob, Arc<AtomicBool>)>>,
    results: Receiver<LoudnessResult>,
    current: Option<Arc<AtomicBool>>,
    thread: Option<JoinHandle<()>>,
}

impl LoudnessWorker {
    /// Starts the thread.
    pub fn spawn() -> LoudnessWorker {
        let (jobs_tx, jobs_rx) = crossbeam::channel::unbounded();
        let (results_tx, results_rx) = crossbeam::channel::unbounded();
        let thread = std::thread::Builder::new()
            .name("stemgraph-loudness".into())
            .spawn(move || worker(jobs_rx, results_tx))
            .ok();
        LoudnessWorker {
            jobs: Some(jobs_tx),
            results: results_rx,
            current: None,
            thread,
        }
    }

    /// Measures `job`, interrupting the measurement under way.
    pub fn submit(&mut self, job: LoudnessJob) {
        if let Some(c) = self.current.take() {
            c.store(true, Ordering::Relaxed);
        }
        let cancel = Arc::new(AtomicBool::new(false));
        self.current = Some(cancel.clone());
        if let Some(tx) = &self.jobs {
            let _ = tx.send((job, cancel));
        }
    }

    /// A finished measurement, if any.
    pub fn poll(&self) -> Option<LoudnessResult> {
        self.results.try_iter().last()
    }
}

impl Drop for LoudnessWorker {
    fn drop(&mut self) {
        if let Some(c) = self.current.take() {
            c.store(true, Ordering::Relaxed);
        }
        self.jobs.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Lowers the calling thread's scheduling priority (Linux: per-thread nice value).
pub fn lower_thread_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain system calls on the calling thread's id; no memory is shared.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 10);
    }
}

fn worker(jobs: Receiver<(LoudnessJob, Arc<AtomicBool>)>, results: Sender<LoudnessResult>) {
    lower_thread_priority();
    let cache: Mutex<Vec<(PathBuf, Option<std::time::SystemTime>, f64)>> = Mutex::default();
    while let Ok(mut job) = jobs.recv() {
        // Only the newest job matters.
        while let Ok(newer) = jobs.try_recv() {
            job = newer;
        }
        let (job, cancel) = job;
        let t0 = Instant::now();
        let master = measure_master(&job, &cancel);
        if cancel.load(Ordering::Relaxed) {
            continue;
        }
        let reference = job.session.reference.as_ref().map(|path| {
            let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
            let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(hit) = cache
                .iter()
                .find(|(p, m, _)| p == path && *m == modified && modified.is_some())
            {
                return Ok(hit.2);
            }
            let r = measure_reference(&job.session, path, &cancel);
            if let Ok(v) = r {
                cache.retain(|(p, _, _)| p != path);
                cache.push((path.clone(), modified, v));
            }
            r
        });
        if cancel.load(Ordering::Relaxed) {
            continue;
        }
        let _ = results.send(LoudnessResult {
            generation: job.generation,
            master_lufs: master,
            reference_lufs: reference,
            took: t0.elapsed(),
        });
    }
}

fn meter(rate: u32) -> Result<EbuR128, String> {
    EbuR128::new(2, rate, Mode::I).map_err(|e| e.to_string())
}

// `render::run` takes a sink returning its (large) error type.
#[allow(clippy::result_large_err)]
fn measure_master(job: &LoudnessJob, cancel: &AtomicBool) -> Result<f64, String> {
    const BLOCK: usize = 4096;
    let session = &job.session;
    let plan = plan_stems(session).map_err(|e| e.to_string())?;
    let (mut streams, _) = open_stems(session, &plan).map_err(|e| e.to_string())?;
    let rate = f64::from(plan.sample_rate);
    let mut spec = session.graph_at(rate);
    if job.bypass_master {
        bypass_master_chain(&mut spec);
    }
    let mut schedule = compile(&spec, CompileOptions::new(rate, BLOCK))
        .map_err(|e| e.to_string())?
        .schedule;
    let mut m = meter(plan.sample_rate)?;
    run(
        &mut schedule,
        &mut streams,
        plan.song_frames,
        RunSettings {
            block: BLOCK,
            threads: 1,
            interrupt: Some(cancel),
            progress: None,
            stop: None,
        },
        |o, _, block| {
            if o == 0 {
                let l = block.channel(0);
                let r = block.channel(block.channels().min(2) - 1);
                let _ = m.add_frames_planar_f64(&[l, r]);
            }
            Ok(())
        },
    )
    .map_err(|e| e.to_string())?;
    m.loudness_global().map_err(|e| e.to_string())
}

fn measure_reference(
    session: &Session,
    path: &std::path::Path,
    cancel: &AtomicBool,
) -> Result<f64, String> {
    const BLOCK: usize = 4096;
    let plan = plan_stems(session).map_err(|e| e.to_string())?;
    let (mut stream, _) = StemStream::open(
        path,
        &StreamOptions {
            target_rate: plan.sample_rate,
            target_channels: 2,
            length_frames: None,
        },
    )
    .map_err(|e| e.to_string())?;
    let info = crate::io::decode::Decoder::open(path)
        .map_err(|e| e.to_string())?
        .info()
        .clone();
    let info_frames = info.frames.map_or(plan.song_frames, |f| {
        (f as f64 * f64::from(plan.sample_rate) / f64::from(info.sample_rate)).round() as u64
    });
    let mut m = meter(plan.sample_rate)?;
    let (mut l, mut r) = (vec![0.0; BLOCK], vec![0.0; BLOCK]);
    let mut done = 0u64;
    while done < info_frames {
        if cancel.load(Ordering::Relaxed) {
            return Err("interrupted".into());
        }
        let n = BLOCK.min((info_frames - done) as usize);
        stream
            .read_block(&mut [&mut l[..n], &mut r[..n]], n)
            .map_err(|e| e.to_string())?;
        m.add_frames_planar_f64(&[&l[..n], &r[..n]])
            .map_err(|e| e.to_string())?;
        done += n as u64;
    }
    m.loudness_global().map_err(|e| e.to_string())
}
