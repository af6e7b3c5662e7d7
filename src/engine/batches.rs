//! The execution plan of a schedule: which process steps run side by side as a batch.
//!
//! Independent process steps of one kind that has a [`crate::dsp::BatchKernel`] (the EQs of the
//! stem strips, their compressors…) run side by side. The plan is a reordering of the steps that
//! respects every data dependency through the buffers (a step runs after every step whose
//! buffers it reads or overwrites), so every node sees the same input and the output is the
//! same, bit for bit.
//!
//! Planning allocates: it runs on the control side, when a schedule is built or split, never
//! on the audio thread. It lives with the engine (not with the graph compiler) because the
//! parallel splitter plans the halves of a split schedule again.

use super::schedule::{BufId, RtKind, RtNode, Step};
use crate::dsp::MAX_BATCH;

/// One entry of the execution plan: a step alone, or a batch of independent processor steps of
/// one kind run side by side by their kind's [`crate::dsp::BatchKernel`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exec {
    /// `steps[i]`.
    Step(usize),
    /// The process steps `batch_members[start..start + len]`.
    Batch { start: usize, len: usize },
    /// `steps[step]` with the gain step `steps[gain]` folded into it.
    Fold { step: usize, gain: usize },
}

/// The plan of `steps` over `nodes`: the entries, and the members of the batches (step
/// indexes, each with the gain step folded into it, see [`folds`]). An empty plan when nothing
/// batches or folds (the steps then run in program order).
#[allow(clippy::type_complexity)]
pub(crate) fn plan_batches(
    steps: &[Step],
    nodes: &[RtNode],
) -> (Vec<Exec>, Vec<(usize, Option<usize>)>) {
    let n = steps.len();
    let deps = dependencies(steps);
    let batchable: Vec<Option<(&'static str, usize, usize)>> =
        steps.iter().map(|st| batch_key(st, nodes)).collect();
    let mut done = vec![false; n];
    let mut plan = Vec::with_capacity(n);
    let mut members = Vec::new();
    let mut left = n;
    while left > 0 {
        let ready: Vec<usize> = (0..n)
            .filter(|&j| !done[j] && deps[j].iter().all(|&i| done[i]))
            .collect();
        // Steps that cannot batch go first (in program order), so that as many members of a
        // batch as possible are ready together; then the earliest batchable kind, with every
        // ready step of that kind.
        if let Some(&j) = ready.iter().find(|&&j| batchable[j].is_none()) {
            plan.push(Exec::Step(j));
            done[j] = true;
            left -= 1;
            continue;
        }
        let first = ready[0];
        let group: Vec<usize> = ready
            .iter()
            .copied()
            .filter(|&j| batchable[j] == batchable[first])
            .collect();
        for chunk in group.chunks(MAX_BATCH) {
            if chunk.len() == 1 {
                plan.push(Exec::Step(chunk[0]));
            } else {
                plan.push(Exec::Batch {
                    start: members.len(),
                    len: chunk.len(),
                });
                members.extend_from_slice(chunk);
            }
            for &j in chunk {
                done[j] = true;
                left -= 1;
            }
        }
    }
    let fold = folds(steps, nodes);
    if members.is_empty() && fold.iter().all(Option::is_none) {
        plan.clear();
    }
    // A folded gain step runs inside the step before it.
    plan.retain(|e| !matches!(e, Exec::Step(j) if fold.contains(&Some(*j))));
    for e in &mut plan {
        if let Exec::Step(i) = *e {
            if let Some(gain) = fold[i] {
                *e = Exec::Fold { step: i, gain };
            }
        }
    }
    let members = members.into_iter().map(|m| (m, fold[m])).collect();
    (plan, members)
}

/// `fold[i]`: the gain step that step i runs as part of itself (see
/// [`crate::dsp::Processor::folds_gain`]): a process step of a gain node, working in place on
/// the buffer step i (a processor that folds gains) writes, and the first step after it to
/// touch that buffer, so nothing reads the processor's output before the gain is applied.
fn folds(steps: &[Step], nodes: &[RtNode]) -> Vec<Option<usize>> {
    let folds_gain = |node: usize| match &nodes[node].kind {
        RtKind::Processor(p) => p.folds_gain(),
        RtKind::Bus => false,
    };
    let is_gain =
        |node: usize| matches!(&nodes[node].kind, RtKind::Processor(p) if p.kind() == "gain");
    let mut fold = vec![None; steps.len()];
    for (i, step) in steps.iter().enumerate() {
        let Step::Process { node, dst, .. } = step else {
            continue;
        };
        if !folds_gain(*node) {
            continue;
        }
        let next = (i + 1..steps.len()).find(|&j| {
            let (r, w) = step_buffers(&steps[j]);
            r.contains(dst) || w.contains(dst)
        });
        if let Some(j) = next {
            if let Step::Process {
                node: g,
                src,
                dst: d,
                key: None,
                ..
            } = &steps[j]
            {
                if src == dst && d == dst && is_gain(*g) {
                    fold[i] = Some(j);
                }
            }
        }
    }
    fold
}

/// `deps[j]`: earlier steps that step j must follow (it reads what they write, or writes what
/// they read or write). Taps and outputs keep their relative order too.
fn dependencies(steps: &[Step]) -> Vec<Vec<usize>> {
    let n = steps.len();
    let (reads, writes): (Vec<Vec<BufId>>, Vec<Vec<BufId>>) =
        steps.iter().map(step_buffers).unzip();
    let mut deps: Vec<Vec<usize>> = vec![Vec::new(); n];
    for j in 0..n {
        for i in 0..j {
            let conflict = writes[i]
                .iter()
                .any(|b| reads[j].contains(b) || writes[j].contains(b))
                || reads[i].iter().any(|b| writes[j].contains(b))
                || (is_io(&steps[i]) && is_io(&steps[j]));
            if conflict {
                deps[j].push(i);
            }
        }
    }
    deps
}

/// What a step batches with: process steps without a key, of a kind with a batch kernel, with
/// the same kind and channel counts.
fn batch_key(step: &Step, nodes: &[RtNode]) -> Option<(&'static str, usize, usize)> {
    match step {
        Step::Process {
            node,
            key: None,
            in_channels,
            out_channels,
            ..
        } => match &nodes[*node].kind {
            RtKind::Processor(p) if p.batch_kernel().is_some() => {
                Some((p.kind(), *in_channels, *out_channels))
            }
            _ => None,
        },
        _ => None,
    }
}

/// The buffers a step reads and writes.
fn step_buffers(step: &Step) -> (Vec<BufId>, Vec<BufId>) {
    match step {
        Step::Input { buf, .. } => (vec![], vec![*buf]),
        Step::Process { src, dst, key, .. } => {
            let mut r = vec![*src];
            r.extend(key);
            (r, vec![*dst])
        }
        Step::Bus { inputs, dst, .. } => (inputs.iter().map(|i| i.buf).collect(), vec![*dst]),
        Step::Tap { buf, .. } | Step::Output { buf, .. } => (vec![*buf], vec![]),
    }
}

/// Steps with effects outside the pool (taps, outputs), kept in their order.
fn is_io(step: &Step) -> bool {
    matches!(step, Step::Tap { .. } | Step::Output { .. })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io_only() -> Vec<Step> {
        vec![
            Step::Input { input: 0, buf: 0 },
            Step::Input { input: 1, buf: 1 },
            Step::Output { output: 0, buf: 0 },
            Step::Output { output: 1, buf: 1 },
        ]
    }

    #[test]
    fn steps_that_touch_a_buffer_follow_its_writer() {
        let deps = dependencies(&io_only());
        assert_eq!(deps[0], Vec::<usize>::new());
        assert_eq!(deps[1], Vec::<usize>::new());
        assert_eq!(deps[2], vec![0]);
        // Outputs keep their order among themselves as well.
        assert_eq!(deps[3], vec![1, 2]);
    }

    #[test]
    fn nothing_batchable_gives_an_empty_plan() {
        assert_eq!(plan_batches(&io_only(), &[]), (Vec::new(), Vec::new()));
    }
}
