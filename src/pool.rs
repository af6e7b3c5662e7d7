//! A small pool of worker threads for independent jobs: an album's songs, a render's
//! deliverables (each finished and analysed on its own thread).
//!
//! Jobs are taken in order from a shared counter by `workers` threads; results come back in job
//! order whatever thread ran them, so nothing downstream depends on scheduling. After the first
//! failure no new job starts (jobs under way finish). Each job streams what it works on (a song, a
//! file), so memory is bounded per worker.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// The number of workers when none is asked for: the machine's available parallelism.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs `job(i)` for every `i` in `0..count` on up to `workers` threads and returns the results
/// in order. Jobs not started because an earlier one failed are `None`.
pub fn run<T, E, F>(workers: usize, count: usize, job: F) -> Vec<Option<Result<T, E>>>
where
    T: Send,
    E: Send,
    F: Fn(usize) -> Result<T, E> + Sync,
{
    let results: Mutex<Vec<Option<Result<T, E>>>> = Mutex::new((0..count).map(|_| None).collect());
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let work = || loop {
        if failed.load(Ordering::Relaxed) {
            return;
        }
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= count {
            return;
        }
        let r = job(i);
        if r.is_err() {
            failed.store(true, Ordering::Relaxed);
        }
        results.lock().expect("pool results")[i] = Some(r);
    };
    let workers = workers.clamp(1, count.max(1));
    if workers == 1 {
        work();
    } else {
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(work);
            }
        });
    }
    results.into_inner().expect("pool results")
}

/// [`run`], with the first error (in job order) returned instead of the list.
pub fn try_run<T, E, F>(workers: usize, count: usize, job: F) -> Result<Vec<T>, E>
where
    T: Send,
    E: Send,
    F: Fn(usize) -> Result<T, E> + Sync,
{
    let results = run(workers, count, job);
    let mut out = Vec::with_capacity(count);
    let mut first_err = None;
    for r in results {
        match r {
            Some(Ok(v)) => out.push(v),
            Some(Err(e)) if first_err.is_none() => first_err = Some(e),
            Some(Err(_)) | None => {}
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_in_order() {
        let r = try_run::<_, (), _>(3, 10, |i| Ok(i * 2)).unwrap();
        assert_eq!(r, (0..10).map(|i| i * 2).collect::<Vec<_>>());
    }

    #[test]
    fn first_error_wins() {
        let r = try_run(2, 10, |i| if i == 4 { Err(i) } else { Ok(i) });
        assert_eq!(r, Err(4));
    }
}
