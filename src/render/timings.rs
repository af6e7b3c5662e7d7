//! Where a render's time goes: wall and CPU time (all threads of the process) per stage and
//! per pass, for `render --timings` and the benchmarks. Not part of the report: it is not a
//! property of the master, and it changes from run to run.

use serde::Serialize;
use std::time::Instant;

/// One stage or pass of a render and what it took.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageTime {
    /// What ran ("full graph", "solve pass 2 (replay)", "final pass", "deliverables", …).
    pub stage: String,
    /// Wall-clock seconds.
    pub wall_s: f64,
    /// CPU seconds of the whole process (user + system, every thread) over the stage.
    pub cpu_s: f64,
}

/// Starts timing a stage; [`Stopwatch::stop`] gives its [`StageTime`].
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch {
    wall: Instant,
    cpu: f64,
}

impl Stopwatch {
    /// From now.
    pub fn start() -> Self {
        Self {
            wall: Instant::now(),
            cpu: process_cpu_seconds(),
        }
    }

    /// The time since [`start`](Self::start), named `stage`.
    pub fn stop(self, stage: impl Into<String>) -> StageTime {
        StageTime {
            stage: stage.into(),
            wall_s: self.wall.elapsed().as_secs_f64(),
            cpu_s: (process_cpu_seconds() - self.cpu).max(0.0),
        }
    }
}

/// User + system CPU seconds of this process so far (0 where the platform does not say).
pub fn process_cpu_seconds() -> f64 {
    #[cfg(unix)]
    {
        let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: getrusage writes a whole `rusage` into the pointer it is given.
        let ok = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) } == 0;
        if ok {
            // SAFETY: initialised by the successful call above.
            let u = unsafe { usage.assume_init() };
            let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
            return secs(u.ru_utime) + secs(u.ru_stime);
        }
    }
    0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (Process-wide CPU time counts the other tests' threads too, so only a lower bound is
    /// testable here. On a loaded machine 60 ms of wall clock may hold little CPU time for
    /// this thread: it spins until the clock has counted 30 ms, or 20 s have passed.)
    #[test]
    fn a_busy_stage_takes_cpu_time() {
        let w = Stopwatch::start();
        let mut x = 0u64;
        let t = Instant::now();
        while t.elapsed().as_millis() < 60
            || (process_cpu_seconds() - w.cpu < 0.03 && t.elapsed().as_secs() < 20)
        {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(std::hint::black_box(1));
        }
        std::hint::black_box(x);
        let busy = w.stop("busy");
        assert!(busy.wall_s >= 0.06 && busy.cpu_s >= 0.03, "{busy:?}");
        assert_eq!(busy.stage, "busy");
    }
}
