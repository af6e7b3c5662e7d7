//! The fast path's loop over a block: compressors on the fast path at the same chunk phase
//! (one alone, or a group of a batch) in lockstep, a stretch of chunks at a time.

use super::kernels::group_ballistics_at;
use super::{Compressor, Fast};
use crate::dsp::dynamics::core::{fmax, DetectorKind, TrackCoefs, CHUNK};
use crate::dsp::{AudioMut, ParamBlock};

/// Chunks of a stretch: the targets and the gains of a stretch's chunks are each one kernel
/// call per compressor (a call's set-up costs as much as a third of a chunk's work).
const STRETCH_CHUNKS: usize = 4;

/// Frames of a stretch.
const STRETCH: usize = STRETCH_CHUNKS * CHUNK;

/// A compressor of a lockstep group with its block, its parameters and its folded gain (see
/// [`crate::dsp::Processor::process_gained`]).
pub(super) type Member<'m, 'a, 'p> = (
    &'m mut Compressor,
    &'m mut AudioMut<'a>,
    ParamBlock<'p>,
    f64,
);

/// `K` compressors on the fast path (`fasts`, their coefficients), whose chunk phases agree,
/// over their blocks, a stretch of up to [`STRETCH_CHUNKS`] chunks at a time: each one's
/// targets of the stretch, the group's ballistics chunk by chunk (their serial part, side by
/// side), then each one's gains of the stretch, one call for each run of chunks that are (or
/// are not) fully released. The same bits as each one's chunks in turn: the targets and the
/// gains are frame by frame. With an RMS detector, whose state runs from chunk to chunk (with
/// a flush between), the targets are computed chunk by chunk. Publishes each compressor's
/// largest reduction.
pub(super) fn run_fast<const K: usize>(members: &mut [Member<'_, '_, '_>; K], fasts: &[Fast; K]) {
    let frames = members[0].1.frames();
    let coefs: [TrackCoefs; K] = std::array::from_fn(|k| fasts[k].track);
    let peak = members
        .iter()
        .all(|m| m.0.detector.kind() == DetectorKind::Peak);
    let mut g = [[0.0; STRETCH]; K];
    let mut max_gr = [0.0f64; K];
    let mut k0 = 0;
    while k0 < frames {
        // The stretch's chunks: their first frames in the stretch and lengths.
        let mut chunks = [(0, 0); STRETCH_CHUNKS];
        let (mut count, mut len) = (0, 0);
        while count < STRETCH_CHUNKS && k0 + len < frames {
            let n = members[0].0.chunk_len(len, frames - k0 - len);
            chunks[count] = (len, n);
            count += 1;
            len += n;
        }
        let chunks = &chunks[..count];
        if peak {
            for (k, (c, audio, params, _)) in members.iter_mut().enumerate() {
                c.fast_targets(audio, params, k0, len, &fasts[k], &mut g[k][..len]);
            }
        }
        let mut largest = [[0.0; K]; STRETCH_CHUNKS];
        for (&(at, n), largest) in chunks.iter().zip(&mut largest) {
            if !peak {
                for (k, (c, audio, params, _)) in members.iter_mut().enumerate() {
                    c.fast_targets(audio, params, k0 + at, n, &fasts[k], &mut g[k][at..at + n]);
                }
            }
            let mut state = std::array::from_fn(|k| members[k].0.stage.single_state());
            *largest = group_ballistics_at::<K, STRETCH>(&mut state, &mut g, at, n, &coefs);
            for (k, m) in members.iter_mut().enumerate() {
                m.0.fast_commit(n, state[k]);
                max_gr[k] = max_gr[k].max(fmax(0.0, largest[k]));
            }
        }
        for (k, (c, audio, _, post)) in members.iter_mut().enumerate() {
            let released = |j: usize| largest[j][k] == 0.0;
            let mut j = 0;
            while j < count {
                let end = (j + 1..count)
                    .find(|&e| released(e) != released(j))
                    .unwrap_or(count);
                let (from, to) = (chunks[j].0, chunks[end - 1].0 + chunks[end - 1].1);
                c.fast_apply(
                    audio,
                    k0 + from,
                    to - from,
                    &fasts[k],
                    &g[k][from..to],
                    released(j),
                    *post,
                );
                j = end;
            }
        }
        k0 += len;
    }
    for (k, m) in members.iter_mut().enumerate() {
        m.0.telemetry.set_block(0, max_gr[k], frames);
    }
}
