//! Compilation step 7: pool buffers for the symbolic values, by liveness. A processor works in
//! place on its input's buffer when nothing later reads that input, and a buffer whose value
//! is dead is reused by the next value that needs one (last freed, first reused).

use super::program::{SymProgram, SymStep};
use crate::engine::{BusInput, Step};

/// Assigns pool buffers to the values of `p`. Returns the steps and the pool size.
pub(super) fn assign_buffers(p: &SymProgram) -> (Vec<Step>, usize) {
    let nv = p.value_channels.len();
    let mut last_use = vec![usize::MAX; nv];
    for (si, s) in p.steps.iter().enumerate() {
        for v in s.reads() {
            last_use[v] = si;
        }
    }
    let mut buf_of = vec![usize::MAX; nv];
    let mut free: Vec<usize> = Vec::new();
    let mut pool_size = 0;
    let mut alloc = |free: &mut Vec<usize>| {
        free.pop().unwrap_or_else(|| {
            pool_size += 1;
            pool_size - 1
        })
    };
    let mut steps = Vec::with_capacity(p.steps.len());
    for (si, s) in p.steps.iter().enumerate() {
        let mut in_place = None;
        let step = match s {
            SymStep::Input { input, out } => {
                buf_of[*out] = alloc(&mut free);
                Step::Input {
                    input: *input,
                    buf: buf_of[*out],
                }
            }
            SymStep::Process {
                node,
                src,
                out,
                key,
            } => {
                if last_use[*src] == si && *key != Some(*src) {
                    buf_of[*out] = buf_of[*src];
                    in_place = Some(*src);
                } else {
                    buf_of[*out] = alloc(&mut free);
                }
                Step::Process {
                    node: *node,
                    src: buf_of[*src],
                    dst: buf_of[*out],
                    in_channels: p.value_channels[*src],
                    out_channels: p.value_channels[*out],
                    key: key.map(|k| buf_of[k]),
                }
            }
            SymStep::Bus { node, inputs, out } => {
                buf_of[*out] = alloc(&mut free);
                Step::Bus {
                    node: *node,
                    inputs: inputs
                        .iter()
                        .enumerate()
                        .map(|(i, &v)| BusInput {
                            buf: buf_of[v],
                            channels: p.value_channels[v],
                            slot: Some(i),
                        })
                        .collect(),
                    dst: buf_of[*out],
                    channels: p.value_channels[*out],
                }
            }
            SymStep::Tap { tap, value } => Step::Tap {
                tap: *tap,
                buf: buf_of[*value],
            },
            SymStep::Output { output, value } => Step::Output {
                output: *output,
                buf: buf_of[*value],
            },
        };
        steps.push(step);
        // Release values whose last reader was this step.
        let mut released: Vec<usize> = s.reads();
        released.sort_unstable();
        released.dedup();
        for v in released {
            if last_use[v] == si && Some(v) != in_place {
                free.push(buf_of[v]);
            }
        }
        // A value nobody reads dies at once.
        if let SymStep::Input { out, .. }
        | SymStep::Process { out, .. }
        | SymStep::Bus { out, .. } = s
        {
            if last_use[*out] == usize::MAX {
                free.push(buf_of[*out]);
            }
        }
    }
    (steps, pool_size)
}

#[cfg(test)]
mod tests {
    use super::super::program::SymNode;
    use super::*;

    fn program(steps: Vec<SymStep>, values: usize) -> SymProgram {
        SymProgram {
            nodes: vec![SymNode::Spec(0)],
            steps,
            value_channels: vec![2; values],
            input_channels: vec![2, 2],
            taps: Vec::new(),
        }
    }

    fn process(node: usize, src: usize, out: usize) -> SymStep {
        SymStep::Process {
            node,
            src,
            out,
            key: None,
        }
    }

    #[test]
    fn a_chain_runs_in_place_in_one_buffer() {
        let p = program(
            vec![
                SymStep::Input { input: 0, out: 0 },
                process(0, 0, 1),
                process(1, 1, 2),
                SymStep::Output {
                    output: 0,
                    value: 2,
                },
            ],
            3,
        );
        let (steps, pool) = assign_buffers(&p);
        assert_eq!(pool, 1);
        assert!(matches!(steps[2], Step::Process { src: 0, dst: 0, .. }));
    }

    #[test]
    fn a_value_still_read_later_is_not_overwritten() {
        // v0 feeds a processor and, later, a bus: the processor writes elsewhere.
        let p = program(
            vec![
                SymStep::Input { input: 0, out: 0 },
                process(0, 0, 1),
                SymStep::Bus {
                    node: 1,
                    inputs: vec![1, 0],
                    out: 2,
                },
                SymStep::Output {
                    output: 0,
                    value: 2,
                },
            ],
            3,
        );
        let (steps, pool) = assign_buffers(&p);
        assert!(matches!(steps[1], Step::Process { src: 0, dst: 1, .. }));
        match &steps[2] {
            Step::Bus { inputs, dst, .. } => {
                assert_eq!((inputs[0].buf, inputs[1].buf), (1, 0));
                assert_eq!(*dst, 2, "both inputs are read while the sum is written");
            }
            _ => panic!("a bus step"),
        }
        assert_eq!(pool, 3);
    }

    #[test]
    fn dead_buffers_are_reused_and_a_key_is_never_overwritten() {
        // Two stems, each processed and output in turn: the second reuses the first's buffer.
        let p = program(
            vec![
                SymStep::Input { input: 0, out: 0 },
                SymStep::Output {
                    output: 0,
                    value: 0,
                },
                SymStep::Input { input: 1, out: 1 },
                SymStep::Process {
                    node: 0,
                    src: 1,
                    out: 2,
                    key: Some(1),
                },
                SymStep::Output {
                    output: 1,
                    value: 2,
                },
            ],
            3,
        );
        let (steps, pool) = assign_buffers(&p);
        assert!(matches!(steps[2], Step::Input { input: 1, buf: 0 }));
        // Its own key: not in place.
        assert!(matches!(
            steps[3],
            Step::Process {
                src: 0,
                dst: 1,
                key: Some(0),
                ..
            }
        ));
        assert_eq!(pool, 2);
    }
}
