//! The compressor's batch kernel: compressors of independent strips side by side.

use super::lockstep::{run_fast, Member};
use super::{Compressor, Fast};
use crate::dsp::dynamics::core::CHUNK;
use crate::dsp::{batch_kind, BatchItem, MAX_BATCH};

/// The compressor's [`crate::dsp::BatchKernel`]: compressors on the fast path at the same chunk
/// phase run in lockstep ([`run_fast`]), their ballistics (the serial part) side by side; the
/// others run alone. Same bits as `process`.
pub(super) fn batch(items: &mut [Option<BatchItem<'_>>]) {
    let mut fast: [Option<Fast>; MAX_BATCH] = [None; MAX_BATCH];
    let mut phase = [0u64; MAX_BATCH];
    for (j, item) in items.iter_mut().enumerate() {
        let item = item.as_mut().expect("a full batch");
        let params = item.params;
        if let Some(c) = item.processor.as_any_mut().downcast_mut::<Compressor>() {
            fast[j] = c.fast(false, &params);
            phase[j] = c.position % CHUNK as u64;
        }
    }
    let mut done = [false; MAX_BATCH];
    for j in 0..items.len() {
        if done[j] || fast[j].is_none() {
            continue;
        }
        let mut group = [0usize; MAX_BATCH];
        let mut k = 0;
        for i in j..items.len() {
            if !done[i] && fast[i].is_some() && phase[i] == phase[j] {
                group[k] = i;
                k += 1;
            }
        }
        if k < 2 {
            continue;
        }
        // Four recursions side by side keep the floating-point units busy; more spill out of
        // the registers, unless the AVX2 kernel takes them (up to eight: two registers).
        let k = k.min(if crate::dsp::simd::avx2() { 8 } else { 4 });
        let mut members: [Option<&mut BatchItem<'_>>; MAX_BATCH] = Default::default();
        let mut fasts = [fast[j].expect("fast"); MAX_BATCH];
        let mut slot = 0;
        for (i, item) in items.iter_mut().enumerate() {
            if group[..k].contains(&i) {
                members[slot] = item.as_mut();
                fasts[slot] = fast[i].expect("fast");
                slot += 1;
                done[i] = true;
            }
        }
        match k {
            2 => run_group::<2>(&mut members, &fasts),
            3 => run_group::<3>(&mut members, &fasts),
            4 => run_group::<4>(&mut members, &fasts),
            5 => run_group::<5>(&mut members, &fasts),
            6 => run_group::<6>(&mut members, &fasts),
            7 => run_group::<7>(&mut members, &fasts),
            _ => run_group::<8>(&mut members, &fasts),
        }
    }
    for (j, item) in items.iter_mut().enumerate() {
        if !done[j] {
            let item = item.as_mut().expect("a full batch");
            item.processor
                .process_gained(&mut item.audio, None, item.params, item.gain);
        }
    }
}

/// `K` compressors on the fast path, in lockstep (their chunk phases agree).
fn run_group<const K: usize>(
    members: &mut [Option<&mut BatchItem<'_>>; MAX_BATCH],
    fasts: &[Fast; MAX_BATCH],
) {
    // Each member as its compressor, its block and its folded gain, taken apart once per block
    // (not downcast again for every chunk).
    let mut group: [Member<'_, '_, '_>; K] = std::array::from_fn(|k| {
        let BatchItem {
            processor,
            audio,
            params,
            gain,
        } = members[k].take().expect("a full group");
        (
            batch_kind::<Compressor>(&mut **processor),
            audio,
            *params,
            *gain,
        )
    });
    run_fast::<K>(&mut group, &std::array::from_fn(|k| fasts[k]));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::buffer::AudioBuffer;
    use crate::dsp::dynamics::core::DetectorKind;
    use crate::dsp::param::ParamSlot;
    use crate::dsp::test_signal::noise;
    use crate::dsp::{ParamBlock, Processor};

    /// Strip `s` of a batch: bursts over the knee, stretches under it long enough to release to
    /// exactly 0, silence; each strip at its own level and pitch, with noise.
    fn strip_signal(s: usize, n: usize) -> [Vec<f64>; 2] {
        let mut noise = noise(0x9e37_79b9_7f4a_7c15 + s as u64);
        std::array::from_fn(|c| {
            (0..n)
                .map(|i| {
                    let level = match (i / (3000 + 500 * s)) % 6 {
                        0 => 0.9,
                        1 => 0.2,
                        3 => 0.0,
                        _ => 0.01,
                    };
                    let phase = i as f64 * (0.013 + 0.002 * s as f64 + 0.001 * c as f64);
                    level * (phase.sin() + 0.3 * noise())
                })
                .collect()
        })
    }

    /// Compressor `s` (RMS detector where `rms` says so) with its parameter slots.
    fn strip(s: usize, rms: bool, block: usize) -> (Compressor, Vec<ParamSlot>) {
        let kind = if rms {
            DetectorKind::Rms
        } else {
            DetectorKind::Peak
        };
        let (c, mut slots) = super::super::tests::prepared(kind, block);
        let f = s as f64;
        for (i, v) in [
            (super::super::THRESHOLD_DB, -16.0 - 2.0 * f),
            (super::super::RATIO, 2.0 + 0.5 * f),
            (super::super::ATTACK_MS, 1.0 + 3.0 * f),
            (super::super::RELEASE_MS, 5.0 + 10.0 * f),
            (super::super::MAKEUP_DB, if s % 3 == 1 { 2.0 } else { 0.0 }),
            (super::super::MIX_PCT, if s % 4 == 2 { 60.0 } else { 100.0 }),
        ] {
            slots[i].value = v;
        }
        (c, slots)
    }

    /// The gain stage after strip `s` (1: none).
    fn post(s: usize) -> f64 {
        [0.5, 1.0, 1.25, 1.0][s % 4]
    }

    /// `strips` compressors (RMS where `rms(s)`) over their signals in blocks of `block`, each
    /// followed by the gain [`post`]: as a batch (`batched`, the gains folded in) or one by
    /// one (two passes).
    fn render(strips: usize, rms: fn(usize) -> bool, block: usize, batched: bool) -> Vec<f64> {
        let len = 40_000;
        let x: Vec<[Vec<f64>; 2]> = (0..strips).map(|s| strip_signal(s, len)).collect();
        let mut comps: Vec<(Compressor, Vec<ParamSlot>)> =
            (0..strips).map(|s| strip(s, rms(s), block)).collect();
        let mut bufs: Vec<AudioBuffer> = (0..strips).map(|_| AudioBuffer::new(2, block)).collect();
        let mut out = Vec::new();
        for start in (0..len).step_by(block) {
            let n = block.min(len - start);
            for (b, x) in bufs.iter_mut().zip(&x) {
                for ch in 0..2 {
                    b.channel_mut(ch, n)
                        .copy_from_slice(&x[ch][start..start + n]);
                }
            }
            if batched {
                let mut items: Vec<Option<BatchItem<'_>>> = comps
                    .iter_mut()
                    .zip(bufs.iter_mut())
                    .enumerate()
                    .map(|(s, ((c, slots), b))| {
                        Some(BatchItem {
                            processor: c,
                            audio: b.view_mut(n),
                            params: ParamBlock::new(slots),
                            gain: post(s),
                        })
                    })
                    .collect();
                batch(&mut items);
            } else {
                // Each compressor, then a gain stage's pass over its output.
                for (s, ((c, slots), b)) in comps.iter_mut().zip(bufs.iter_mut()).enumerate() {
                    c.process(&mut b.view_mut(n), None, ParamBlock::new(slots));
                    let g = post(s);
                    if g != 1.0 {
                        b.view_mut(n)
                            .for_each_channel(|_, ch| ch.iter_mut().for_each(|x| *x *= g));
                    }
                }
            }
            for b in &bufs {
                for ch in 0..2 {
                    out.extend_from_slice(b.channel(ch, n));
                }
            }
        }
        out
    }

    /// A batch of two to eight compressors (with and without one of an RMS detector), gains
    /// folded in, gives each one's own output followed by its gain stage, bit for bit, in blocks that split chunks.
    #[test]
    fn a_batch_is_each_compressor_alone() {
        crate::dsp::simd::init();
        let peak: fn(usize) -> bool = |_| false;
        let one_rms: fn(usize) -> bool = |s| s == 1;
        for strips in 2..=8 {
            for rms in [peak, one_rms] {
                for block in [64, 100, 1024] {
                    let alone = render(strips, rms, block, false);
                    let batched = render(strips, rms, block, true);
                    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert!(
                        bits(&alone) == bits(&batched),
                        "{strips} strips, blocks of {block}"
                    );
                }
            }
        }
        // The strips do compress.
        let x = strip_signal(0, 40_000);
        let y = render(1, |_| false, 1024, false);
        let gains: Vec<f64> = y[..1024].iter().zip(&x[0]).map(|(y, x)| y / x).collect();
        assert!(gains.iter().any(|&g| g < 0.7 * post(0)), "reduces");
    }
}
