//! Rebalancing: which units go to the worker thread, chosen from measured costs.
//!
//! The runner times every step and every source's reading over the first blocks on one
//! thread; [`plan`] sums the steps' times per unit ([`super::units`]) and picks the split whose
//! larger half is smallest ([`best_split`]). Reading the sources is left out of that choice:
//! this thread reads the worker's sources ahead of it, and [`first_reads`] then gives the
//! worker as many of them to read itself as even the two threads out by the measured costs.
//! The estimate misses how the halves' batches and caches behave apart, so after each trial
//! stretch [`rebalance`] moves one unit to the other side when the measured busy times say
//! that evens them out, and all through the run [`shift_reads`] moves the reading of one of
//! the worker's sources to the other thread when the two threads' busy times say so. None of
//! this changes a bit of the output.

use super::split::{unit_deps, units, valid, Crossings};
use crate::engine::schedule::Step;
use crate::engine::Schedule;

/// What the first blocks on one thread measured, in seconds.
pub struct Profile {
    /// Per step of the schedule.
    pub steps: Vec<f64>,
    /// Handing the outputs to the sink (encoding, writing): stays on the main thread.
    pub emitting: f64,
    /// Per source (engine input), reading (decoding) its blocks.
    pub reads: Vec<f64>,
    /// Blocks measured.
    pub blocks: u64,
}

impl Profile {
    /// Zeroed for `schedule` and its `sources`.
    pub fn new(schedule: &Schedule, sources: usize) -> Self {
        Self {
            steps: vec![0.0; schedule.steps.len()],
            emitting: 0.0,
            reads: vec![0.0; sources],
            blocks: 0,
        }
    }

    /// Forgets what was measured (the cold first blocks).
    pub fn clear(&mut self) {
        self.steps.fill(0.0);
        self.emitting = 0.0;
        self.reads.fill(0.0);
        self.blocks = 0;
    }
}

/// The split chosen from a [`Profile`].
pub struct Plan {
    /// Per step, its unit (`None`: stays on the main thread).
    pub unit: Vec<Option<usize>>,
    /// Estimated seconds of each unit.
    pub unit_cost: Vec<f64>,
    /// Per unit, the units it reads from ([`unit_deps`]).
    pub deps: Vec<Vec<usize>>,
    /// Per unit, whether the worker runs it.
    pub to_worker: Vec<bool>,
    /// Estimated seconds of everything, both threads.
    pub all: f64,
    /// Estimated seconds one value crossing between the threads costs each of them
    /// ([`CROSSING_COPIES`]).
    pub crossing: f64,
    /// Estimated seconds of reading each source (engine input).
    pub reads: Vec<f64>,
    /// Blocks the estimates are of.
    pub blocks: u64,
}

/// What one value handed from the worker to the main thread costs each thread, in in-cache
/// copies of a block (the schedule's input steps, as timed): the worker copies it out of its
/// pool and into the hand-over's buffer, this thread out of that into its own, from the other
/// core's cache; on M a handed-over stem costs about four times an input step's copy on each
/// side.
pub const CROSSING_COPIES: f64 = 4.0;

impl Plan {
    /// Estimated seconds of the worker's half.
    pub fn worker_cost(&self) -> f64 {
        self.unit_cost
            .iter()
            .zip(&self.to_worker)
            .filter(|(_, w)| **w)
            .map(|(c, _)| c)
            .sum()
    }
}

/// The most even split of the measured cost of `schedule` (see [`best_split`]).
pub fn plan(schedule: &Schedule, profile: &Profile) -> Plan {
    let (unit, count) = units(schedule);
    let mut unit_cost = vec![0.0; count];
    // What stays on this thread whatever the split: the sink (encoding, writing) and the steps
    // after the buses.
    let mut rest = profile.emitting;
    for (i, c) in profile.steps.iter().enumerate() {
        match unit[i] {
            Some(u) => unit_cost[u] += c,
            None => rest += c,
        }
    }
    let all: f64 = unit_cost.iter().sum::<f64>() + rest;
    let deps = unit_deps(schedule, &unit, count);
    // A copy in cache: the schedule's input steps as timed.
    let (copies, copy_time) = schedule
        .steps
        .iter()
        .zip(&profile.steps)
        .filter(|(s, _)| matches!(s, Step::Input { .. }))
        .fold((0, 0.0), |(n, t), (_, c)| (n + 1, t + c));
    let crossing = CROSSING_COPIES * copy_time / f64::from(copies.max(1));
    let crossings = Crossings::new(schedule);
    let crossed = |to_worker: &[bool]| crossings.count(schedule, &unit, to_worker);
    let to_worker = best_split(&unit_cost, all, &deps, crossing, &crossed);
    Plan {
        unit,
        unit_cost,
        deps,
        to_worker,
        all,
        crossing,
        reads: profile.reads.clone(),
        blocks: profile.blocks,
    }
}

/// How many of its sources (`worker_inputs`, engine inputs in the worker's order) the worker
/// should read itself from the start (the last ones: this thread reads the others ahead of
/// it), by the plan's estimates: this thread runs what the worker does not and reads every
/// source the worker leaves it; the count that evens the two out. (Reading is a third of a
/// strip's work on the stems: when this thread also runs a master chain, reading all the
/// worker's stems leaves it the busier.)
pub fn first_reads(plan: &Plan, worker_inputs: &[usize]) -> usize {
    if worker_inputs.is_empty() {
        return 0;
    }
    let worker = plan.worker_cost();
    let main = plan.all - worker + plan.reads.iter().sum::<f64>();
    let read_cost = worker_inputs
        .iter()
        .map(|&i| plan.reads.get(i).copied().unwrap_or(0.0))
        .sum::<f64>()
        / worker_inputs.len() as f64;
    if read_cost <= 0.0 {
        return 0;
    }
    // Each source moved shifts its reading from one side to the other.
    ((main - worker) / (2.0 * read_cost))
        .round()
        .clamp(0.0, worker_inputs.len() as f64) as usize
}

/// One unit moved to the other side (with the units that must move with it, see [`moved`]),
/// if the measured busy times (scaled by unit estimates) say the larger of the two gets
/// smaller by more than a few percent.
pub fn rebalance(
    unit_cost: &[f64],
    to_worker: &[bool],
    main: f64,
    worker: f64,
    deps: &[Vec<usize>],
    crossing: f64,
    crossed: &dyn Fn(&[bool]) -> usize,
) -> Option<Vec<bool>> {
    let est = |w: bool| -> f64 {
        unit_cost
            .iter()
            .zip(to_worker)
            .filter(|(_, &t)| t == w)
            .map(|(c, _)| c)
            .sum()
    };
    // Seconds of this trial per estimated second, on each side (the main side also carries
    // what no unit holds: its estimate is what the measure says).
    let k_worker = worker / est(true).max(1e-12);
    let before = main.max(worker);
    let now_crossing = crossed(to_worker) as f64;
    let mut best: Option<(f64, Vec<bool>)> = None;
    for u in 0..unit_cost.len() {
        let t = moved(to_worker, u, deps);
        if !valid(&t, deps) {
            continue;
        }
        // Both threads copy each crossing value.
        let handed = (crossed(&t) as f64 - now_crossing) * crossing * k_worker;
        let c: f64 = (0..t.len())
            .filter(|&v| t[v] != to_worker[v])
            .map(|v| unit_cost[v])
            .sum();
        let (m, w) = if to_worker[u] {
            (main + c * k_worker, worker - c * k_worker)
        } else {
            (main - c * k_worker, worker + c * k_worker)
        };
        let after = (m + handed).max(w + handed);
        if after < 0.97 * before && best.as_ref().is_none_or(|(b, _)| after < *b) {
            best = Some((after, t));
        }
    }
    best.map(|(_, t)| t)
}

/// One source's reading moved between the threads ([`shift_reads`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadShift {
    /// This thread hands the worker the reading of one more of its sources.
    Give,
    /// This thread takes the reading of one of them back.
    Take,
}

/// How much more than one source's reading the two threads' busy times must differ by before
/// it moves: a move pays as soon as they differ by more than that reading (the busier side
/// then gets shorter), and the margin keeps noise in the measures from moving it back and
/// forth.
pub const SHIFT_MARGIN: f64 = 1.25;

/// Whether one source's reading moves to the other thread after a stretch in which this
/// thread, reading `ahead` of the worker's `sources` ahead of it, was busy `main` seconds and
/// the worker `worker`, one source's reading over that stretch costing `read_cost`: to the
/// worker when this thread was the busier by over [`SHIFT_MARGIN`] readings, back when the
/// worker was.
pub fn shift_reads(
    main: f64,
    worker: f64,
    read_cost: f64,
    ahead: usize,
    sources: usize,
) -> Option<ReadShift> {
    if read_cost <= 0.0 {
        return None;
    }
    let margin = SHIFT_MARGIN * read_cost;
    if main - worker > margin && ahead > 0 {
        Some(ReadShift::Give)
    } else if worker - main > margin && ahead < sources {
        Some(ReadShift::Take)
    } else {
        None
    }
}

/// `to_worker` with unit `u` moved to the other side, and the units that must go with it: to
/// the worker, the units it reads from; back to this thread, the units that read from it (a
/// strip and the stem it reads move together).
fn moved(to_worker: &[bool], u: usize, deps: &[Vec<usize>]) -> Vec<bool> {
    let mut t = to_worker.to_vec();
    let side = !to_worker[u];
    t[u] = side;
    loop {
        let mut changed = false;
        for v in 0..t.len() {
            let pulled = if side {
                // v goes to the worker when a unit there reads it.
                (0..t.len()).any(|w| t[w] && deps[w].contains(&v))
            } else {
                // v comes back when it reads a unit here.
                deps[v].iter().any(|&d| !t[d])
            };
            if pulled && t[v] != side {
                t[v] = side;
                changed = true;
            }
        }
        if !changed {
            return t;
        }
    }
}

/// The units (by cost) to give the worker so that the larger half is as small as possible:
/// every valid choice when there are few units (each thread also paying `crossing` seconds
/// per value `crossed` between them), greedily otherwise.
pub fn best_split(
    unit_cost: &[f64],
    all: f64,
    deps: &[Vec<usize>],
    crossing: f64,
    crossed: &dyn Fn(&[bool]) -> usize,
) -> Vec<bool> {
    if unit_cost.len() <= 20 {
        exhaustive_split(unit_cost, all, deps, crossing, crossed)
    } else {
        greedy_split(unit_cost, all, deps)
    }
}

/// Tries every valid choice of units.
fn exhaustive_split(
    unit_cost: &[f64],
    all: f64,
    deps: &[Vec<usize>],
    crossing: f64,
    crossed: &dyn Fn(&[bool]) -> usize,
) -> Vec<bool> {
    let n = unit_cost.len();
    let mut best = (f64::INFINITY, vec![false; n]);
    for mask in 1u32..(1 << n) {
        let choice: Vec<bool> = (0..n).map(|u| mask & (1 << u) != 0).collect();
        if !valid(&choice, deps) {
            continue;
        }
        let w: f64 = (0..n)
            .filter(|u| mask & (1 << u) != 0)
            .map(|u| unit_cost[u])
            .sum();
        let larger = w.max(all - w) + crossing * crossed(&choice) as f64;
        if larger < best.0 {
            best = (larger, choice);
        }
    }
    best.1
}

/// Units with their dependencies, costliest first, while the worker stays under half.
fn greedy_split(unit_cost: &[f64], all: f64, deps: &[Vec<usize>]) -> Vec<bool> {
    let n = unit_cost.len();
    let mut chosen = vec![false; n];
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|a, b| unit_cost[*b].total_cmp(&unit_cost[*a]));
    let mut w = 0.0;
    for u in order {
        let mut with = chosen.clone();
        with[u] = true;
        for &d in &deps[u] {
            with[d] = true;
        }
        let add: f64 = (0..n)
            .filter(|&v| with[v] && !chosen[v])
            .map(|v| unit_cost[v])
            .sum();
        if valid(&with, deps) && w + add <= all / 2.0 {
            w += add;
            chosen = with;
        }
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_split_halves_the_cost() {
        let cost = [4.0, 3.0, 2.0, 1.0];
        let deps = vec![Vec::new(); 4];
        let w = best_split(&cost, 10.0, &deps, 0.0, &|_| 0);
        let worker: f64 = cost
            .iter()
            .zip(&w)
            .filter(|(_, w)| **w)
            .map(|(c, _)| c)
            .sum();
        assert_eq!(worker, 5.0, "{w:?}");
    }

    #[test]
    fn best_split_keeps_dependencies_together() {
        // Unit 0 reads unit 1: the worker may take 0 only with 1.
        let cost = [5.0, 1.0, 4.0];
        let deps = vec![vec![1], vec![], vec![]];
        let w = best_split(&cost, 10.0, &deps, 0.0, &|_| 0);
        assert!(valid(&w, &deps), "{w:?}");
        assert!(!w[0] || w[1], "{w:?}");
    }

    #[test]
    fn greedy_split_stays_under_half_and_valid() {
        let cost: Vec<f64> = (0..24).map(|u| 1.0 + (u % 5) as f64).collect();
        let all: f64 = cost.iter().sum();
        let mut deps = vec![Vec::new(); 24];
        deps[3] = vec![7];
        let w = best_split(&cost, all, &deps, 0.0, &|_| 0);
        let worker: f64 = cost
            .iter()
            .zip(&w)
            .filter(|(_, w)| **w)
            .map(|(c, _)| c)
            .sum();
        assert!(valid(&w, &deps));
        assert!(
            worker <= all / 2.0 && worker > 0.4 * all,
            "{worker} of {all}"
        );
    }

    #[test]
    fn rebalance_moves_work_off_the_busier_thread() {
        let cost = [1.0, 1.0, 1.0, 1.0];
        let deps = vec![Vec::new(); 4];
        let to_worker = [true, true, false, false];
        // The worker took three times as long as the main thread: one unit comes back.
        let better = rebalance(&cost, &to_worker, 1.0, 3.0, &deps, 0.0, &|_| 0).expect("a move");
        assert_eq!(better.iter().filter(|w| **w).count(), 1, "{better:?}");
        // Even already: nothing to gain.
        assert!(rebalance(&cost, &to_worker, 1.0, 1.0, &deps, 0.0, &|_| 0).is_none());
    }

    #[test]
    fn shift_reads_moves_a_reading_only_past_the_margin() {
        // This thread busier by two readings: one goes to the worker.
        assert_eq!(shift_reads(1.2, 1.0, 0.1, 3, 6), Some(ReadShift::Give));
        // The worker busier by two: one comes back.
        assert_eq!(shift_reads(1.0, 1.2, 0.1, 3, 6), Some(ReadShift::Take));
        // Within the margin (a move would only swap which side is the busier): none.
        assert_eq!(shift_reads(1.1, 1.0, 0.1, 3, 6), None);
        assert_eq!(shift_reads(1.0, 1.1, 0.1, 3, 6), None);
        // Nothing left to give or to take back.
        assert_eq!(shift_reads(1.5, 1.0, 0.1, 0, 6), None);
        assert_eq!(shift_reads(1.0, 1.5, 0.1, 6, 6), None);
        // No measure of a reading: no move.
        assert_eq!(shift_reads(1.5, 1.0, 0.0, 3, 6), None);
    }

    #[test]
    fn first_reads_evens_out_the_estimates() {
        // Two strips of 1 s on the worker; this thread 2 s of its own beside reading both
        // stems (0.5 s each): the worker reads one of them itself.
        let plan = Plan {
            unit: vec![Some(0), Some(1), Some(2), Some(3), None],
            unit_cost: vec![0.0, 1.0, 0.0, 1.0],
            deps: vec![vec![], vec![0], vec![], vec![2]],
            to_worker: vec![true; 4],
            all: 4.0,
            crossing: 0.0,
            reads: vec![0.5, 0.5],
            blocks: 10,
        };
        assert_eq!(first_reads(&plan, &[0, 1]), 1);
        assert_eq!(first_reads(&plan, &[]), 0);
    }

    #[test]
    fn rebalance_moves_a_strip_with_the_stem_it_reads() {
        // Units 0 and 2 read stems (units 1 and 3, which cost nothing to process: the reader
        // thread reads them); the worker holds strip 2, this thread strip 0.
        let cost = [1.0, 0.0, 1.0, 0.0, 1.0, 0.0];
        let deps = vec![vec![1], vec![], vec![3], vec![], vec![5], vec![]];
        let to_worker = [false, false, true, true, false, false];
        // This thread took three times as long: a strip goes to the worker, with its stem.
        let better = rebalance(&cost, &to_worker, 3.0, 1.0, &deps, 0.0, &|_| 0).expect("a move");
        assert!(valid(&better, &deps), "{better:?}");
        assert_eq!(better.iter().filter(|w| **w).count(), 4, "{better:?}");
        // The worker took three times as long: a strip comes back, with its stem (which
        // would otherwise cross between the threads).
        let to_worker = [true, true, true, true, false, false];
        let crossed = |t: &[bool]| {
            (0..6)
                .filter(|&v| !t[v] && deps[v].iter().any(|&d| t[d]))
                .count()
        };
        let better = rebalance(&cost, &to_worker, 1.0, 3.0, &deps, 0.1, &crossed).expect("a move");
        assert!(valid(&better, &deps), "{better:?}");
        assert_eq!(better.iter().filter(|w| **w).count(), 2, "{better:?}");
    }
}
