//! Driving the live engine as an audio callback would, block by block, under the allocation
//! guard.

use stemgraph::engine::live::LiveEngine;

/// Copies frames `at..at + frames` of every stem into the engine's inputs and runs one block
/// inside the allocation guard, appending its output to `out` (one vector per channel; reserve
/// their capacity beforehand, or the appends count as allocations). Returns the allocations
/// (and frees) the guard counted: the engine itself must add none.
pub fn live_block(
    engine: &mut LiveEngine,
    stems: &[Vec<Vec<f64>>],
    at: usize,
    frames: usize,
    out: &mut [Vec<f64>],
) -> u32 {
    for (i, s) in stems.iter().enumerate() {
        let mut input = engine.input_mut(i, frames);
        for (c, ch) in s.iter().enumerate() {
            input.channel_mut(c).copy_from_slice(&ch[at..at + frames]);
        }
    }
    let ((), violations) = super::alloc_violations(|| {
        assert_no_alloc::assert_no_alloc(|| {
            let o = engine.process(frames);
            for (c, ch) in out.iter_mut().enumerate() {
                ch.extend_from_slice(o.channel(c));
            }
        })
    });
    violations
}
