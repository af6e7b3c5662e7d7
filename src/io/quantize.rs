//! Float samples to the integers of a file's word length, once for everything that needs them:
//! the interleaved integers (a WAV's bytes, a FLAC's samples) and the values a decoder reads
//! back from them (a deliverable's analysis). A deliverable's stream used to quantize its
//! samples once per consumer (the WAV writer, the FLAC writer and the analysis, each on its own);
//! the values are the same: [`crate::io::wav::quantize`]'s integers and clip count, and
//! [`crate::io::wav::read_back`]'s values.

use super::wav::quantize;

/// Quantizes `frames` frames of `planes` (one slice per channel) to `bits` bits into `ints`
/// (interleaved: frame by frame, channels in order; at least `frames × channels` long) and,
/// when `back` is given (one slice per channel, each at least `frames` long), writes the
/// values a decoder reads back from those integers into it (each integer over `2^(bits−1)`:
/// what [`crate::io::wav::read_back`] gives). Returns the samples clipped. Stereo four frames
/// at a time with AVX2 where the CPU has it; the same values either way.
pub fn quantize_planes(
    planes: &[&[f64]],
    frames: usize,
    bits: u32,
    ints: &mut [i32],
    mut back: Option<&mut [&mut [f64]]>,
) -> u64 {
    let channels = planes.len();
    assert!(ints.len() >= frames * channels, "room for every sample");
    let mut clipped = 0;
    let done = match (channels, back.as_deref_mut()) {
        (2, Some([bl, br])) => {
            let back = Some((&mut **bl, &mut **br));
            let (done, clips) = stereo_fast(planes[0], planes[1], frames, bits, ints, back);
            clipped += clips;
            done
        }
        (2, None) => {
            let (done, clips) = stereo_fast(planes[0], planes[1], frames, bits, ints, None);
            clipped += clips;
            done
        }
        _ => 0,
    };
    let inv = 1.0 / (1u64 << (bits - 1)) as f64;
    for n in done..frames {
        for (c, plane) in planes.iter().enumerate() {
            let (v, clip) = quantize(plane[n], bits);
            clipped += u64::from(clip);
            ints[n * channels + c] = v;
            if let Some(b) = back.as_deref_mut() {
                b[c][n] = f64::from(v) * inv;
            }
        }
    }
    clipped
}

/// The first frames of a stereo block, eight at a time with AVX-512 or four with AVX2 (returns
/// the frames done and the samples clipped); none without them.
fn stereo_fast(
    l: &[f64],
    r: &[f64],
    frames: usize,
    bits: u32,
    ints: &mut [i32],
    back: Option<(&mut [f64], &mut [f64])>,
) -> (usize, u64) {
    #[cfg(target_arch = "x86_64")]
    if crate::dsp::simd::avx512() {
        // SAFETY: the CPU has AVX-512F, AVX-512VL and AVX2 (checked at run time).
        return unsafe { stereo_avx512(&l[..frames], &r[..frames], bits, ints, back) };
    }
    #[cfg(target_arch = "x86_64")]
    if crate::dsp::simd::avx2() {
        // SAFETY: the CPU has AVX2 (checked at run time).
        return unsafe { stereo_avx2(&l[..frames], &r[..frames], bits, ints, back) };
    }
    let _ = (l, r, frames, bits, ints, back);
    (0, 0)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn stereo_avx2(
    l: &[f64],
    r: &[f64],
    bits: u32,
    ints: &mut [i32],
    back: Option<(&mut [f64], &mut [f64])>,
) -> (usize, u64) {
    // One loop with the read-back values and one without, so that neither asks in every step.
    match back {
        Some((bl, br)) => stereo_avx2_body::<true>(l, r, bits, ints, bl, br),
        None => stereo_avx2_body::<false>(l, r, bits, ints, &mut [], &mut []),
    }
}

/// [`stereo_avx2`], the read-back values written into `bl` and `br` when `BACK`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
fn stereo_avx2_body<const BACK: bool>(
    l: &[f64],
    r: &[f64],
    bits: u32,
    ints: &mut [i32],
    bl: &mut [f64],
    br: &mut [f64],
) -> (usize, u64) {
    use std::arch::x86_64::*;
    let scale = (1u64 << (bits - 1)) as f64;
    let inv = _mm256_set1_pd(1.0 / scale);
    let mut frames = l.len().min(r.len()).min(ints.len() / 2);
    if BACK {
        frames = frames.min(bl.len()).min(br.len());
    }
    let mut clipped = 0u64;
    let mut clip_lanes = _mm256_setzero_si256();
    let mut n = 0;
    while n + 4 <= frames {
        let Some((il, ir, clips)) = super::wav::quantize_pair4(l, r, n, scale) else {
            for k in n..n + 4 {
                for (c, x) in [l[k], r[k]].into_iter().enumerate() {
                    let (v, clip) = quantize(x, bits);
                    clipped += u64::from(clip);
                    ints[2 * k + c] = v;
                    if BACK {
                        let b = if c == 0 { &mut *bl } else { &mut *br };
                        b[k] = f64::from(v) * (1.0 / scale);
                    }
                }
            }
            n += 4;
            continue;
        };
        clip_lanes = _mm256_sub_epi64(clip_lanes, clips);
        let dst = &mut ints[2 * n..2 * n + 8];
        // SAFETY: the two 16-byte stores fill `dst` (8 integers): frames in order.
        unsafe {
            _mm_storeu_si128(dst.as_mut_ptr().cast(), _mm_unpacklo_epi32(il, ir));
            _mm_storeu_si128(dst.as_mut_ptr().add(4).cast(), _mm_unpackhi_epi32(il, ir));
        }
        if BACK {
            let (bl, br) = (&mut bl[n..n + 4], &mut br[n..n + 4]);
            // SAFETY: four values each; the integers are exact in f64 and the scale a power of
            // two, so each product is the integer over the scale exactly.
            unsafe {
                _mm256_storeu_pd(bl.as_mut_ptr(), _mm256_mul_pd(_mm256_cvtepi32_pd(il), inv));
                _mm256_storeu_pd(br.as_mut_ptr(), _mm256_mul_pd(_mm256_cvtepi32_pd(ir), inv));
            }
        }
        n += 4;
    }
    (n, clipped + super::wav::count_clips(clip_lanes))
}

/// [`stereo_avx2`] eight frames a step, the same operations lane by lane ([`quantize8`]); the
/// last frames (fewer than eight) by [`stereo_avx2`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx2")]
fn stereo_avx512(
    l: &[f64],
    r: &[f64],
    bits: u32,
    ints: &mut [i32],
    mut back: Option<(&mut [f64], &mut [f64])>,
) -> (usize, u64) {
    use std::arch::x86_64::*;
    let scale = (1u64 << (bits - 1)) as f64;
    let (vscale, inv) = (_mm512_set1_pd(scale), _mm512_set1_pd(1.0 / scale));
    let fast_limit = _mm512_set1_pd(2_251_799_813_685_248.0);
    // Integer k of the left vector and integer k of the right one, in turn.
    let zip = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    let mut frames = l.len().min(r.len()).min(ints.len() / 2);
    if let Some((bl, br)) = &back {
        frames = frames.min(bl.len()).min(br.len());
    }
    let mut clipped = 0u64;
    let mut n = 0;
    while n + 8 <= frames {
        // SAFETY: eight samples of `l` and `r` from `n`.
        let (pl, pr) = unsafe {
            (
                _mm512_mul_pd(_mm512_loadu_pd(l.as_ptr().add(n)), vscale),
                _mm512_mul_pd(_mm512_loadu_pd(r.as_ptr().add(n)), vscale),
            )
        };
        // NaN and huge values take the scalar path (its libm::round and NaN handling).
        let small = _mm512_cmp_pd_mask::<_CMP_LT_OQ>(_mm512_abs_pd(pl), fast_limit)
            & _mm512_cmp_pd_mask::<_CMP_LT_OQ>(_mm512_abs_pd(pr), fast_limit);
        if small != 0xFF {
            // These eight frames as the AVX2 build takes them (a step with such a sample one
            // sample at a time).
            let back = back
                .as_mut()
                .map(|(bl, br)| (&mut bl[n..n + 8], &mut br[n..n + 8]));
            let (l, r) = (&l[n..n + 8], &r[n..n + 8]);
            clipped += stereo_avx2(l, r, bits, &mut ints[2 * n..2 * n + 16], back).1;
            n += 8;
            continue;
        }
        let (vl, cl) = quantize8(pl, scale);
        let (vr, cr) = quantize8(pr, scale);
        clipped += u64::from(cl.count_ones() + cr.count_ones());
        let dst = &mut ints[2 * n..2 * n + 16];
        // SAFETY: the 64-byte store fills `dst` (16 integers): frames in order.
        unsafe {
            let il = _mm512_castsi256_si512(_mm512_cvttpd_epi32(vl));
            let ir = _mm512_castsi256_si512(_mm512_cvttpd_epi32(vr));
            _mm512_storeu_si512(
                dst.as_mut_ptr().cast(),
                _mm512_permutex2var_epi32(il, zip, ir),
            );
        }
        if let Some((bl, br)) = back.as_mut() {
            let (bl, br) = (&mut bl[n..n + 8], &mut br[n..n + 8]);
            // SAFETY: eight values each. The values are the integers (never −0: see
            // `quantize8`), the scale a power of two: each product is the integer over the
            // scale exactly, as the AVX2 path's.
            unsafe {
                _mm512_storeu_pd(bl.as_mut_ptr(), _mm512_mul_pd(vl, inv));
                _mm512_storeu_pd(br.as_mut_ptr(), _mm512_mul_pd(vr, inv));
            }
        }
        n += 8;
    }
    // The last frames.
    let back = back.map(|(bl, br)| (&mut bl[n..frames], &mut br[n..frames]));
    let (l, r) = (&l[n..frames], &r[n..frames]);
    let (done, clips) = stereo_avx2(l, r, bits, &mut ints[2 * n..], back);
    (n + done, clipped + clips)
}

/// `wav::quantize4` on eight samples (|p| < 2⁵¹, the caller checks): rounded to nearest-even by
/// `(p + 1.5·2⁵²) − 1.5·2⁵²`, an exact tie then moved away from zero, clipped to
/// `[−scale, scale − 1]`. Returns the integers as `f64` (never −0: the rounding gives +0, a
/// tie moved away is not 0) and the mask of the clipped lanes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx2")]
#[inline]
fn quantize8(p: std::arch::x86_64::__m512d, scale: f64) -> (std::arch::x86_64::__m512d, u8) {
    use std::arch::x86_64::*;
    const AND_OR: i32 = 0xEA; // (a & b) | c
    let magic = _mm512_set1_pd(6_755_399_441_055_744.0);
    let half = _mm512_set1_pd(0.5);
    let r = _mm512_sub_pd(_mm512_add_pd(p, magic), magic);
    let tie = _mm512_cmp_pd_mask::<_CMP_EQ_OQ>(_mm512_abs_pd(_mm512_sub_pd(p, r)), half);
    // ±0.5 with the sign of `p`.
    let signed_half = _mm512_castsi512_pd(_mm512_ternarylogic_epi64::<AND_OR>(
        _mm512_castpd_si512(p),
        _mm512_set1_epi64(i64::MIN),
        _mm512_castpd_si512(half),
    ));
    let v = _mm512_mask_add_pd(r, tie, p, signed_half);
    let (max, min) = (_mm512_set1_pd(scale - 1.0), _mm512_set1_pd(-scale));
    let clip = _mm512_cmp_pd_mask::<_CMP_GT_OQ>(v, max) | _mm512_cmp_pd_mask::<_CMP_LT_OQ>(v, min);
    (_mm512_max_pd(_mm512_min_pd(v, max), min), clip)
}

/// The little-endian bytes of `ints` (each `width` = 2 or 3 bytes: the integers must fit) into
/// `out`, which holds 4 bytes of slack past `ints.len() × width` (the stores are 4 bytes wide,
/// each one's spare bytes overwritten by the next).
pub fn pack_le(ints: &[i32], width: usize, out: &mut [u8]) {
    assert!(width == 2 || width == 3, "16 or 24 bits");
    assert!(out.len() >= ints.len() * width + 4, "4 bytes of slack");
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if crate::dsp::simd::avx2() {
        // SAFETY: the CPU has AVX2 (checked at run time).
        done = unsafe { pack_le_avx2(ints, width, out) };
    }
    for (i, v) in ints.iter().enumerate().skip(done) {
        out[width * i..width * i + 4].copy_from_slice(&v.to_le_bytes());
    }
}

/// [`pack_le`] eight integers at a time; returns the integers done.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn pack_le_avx2(ints: &[i32], width: usize, out: &mut [u8]) -> usize {
    use std::arch::x86_64::*;
    // 24 bits: the low three bytes of each 32-bit lane, packed.
    let pack24 = _mm_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1);
    let mut i = 0;
    while i + 8 <= ints.len() {
        let src = &ints[i..i + 8];
        let pos = width * i;
        // SAFETY: two 16-byte loads from `src` (8 integers); the stores end at `pos + 28`
        // (24 bits) or `pos + 16` (16 bits), within `out`: it holds `width × len + 4` bytes and
        // `i + 8 ≤ len`.
        unsafe {
            let lo = _mm_loadu_si128(src.as_ptr().cast());
            let hi = _mm_loadu_si128(src.as_ptr().add(4).cast());
            let dst = out[pos..].as_mut_ptr();
            if width == 3 {
                _mm_storeu_si128(dst.cast(), _mm_shuffle_epi8(lo, pack24));
                _mm_storeu_si128(dst.add(12).cast(), _mm_shuffle_epi8(hi, pack24));
            } else {
                _mm_storeu_si128(dst.cast(), _mm_packs_epi32(lo, hi));
            }
        }
        i += 8;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::dither::tests::{builds, on_build, signal_of, BLOCKS};
    use crate::dsp::dither::TpdfQuantizer;
    use crate::dsp::standalone::Standalone;
    use crate::dsp::{AudioBuffer, ProcessorConfig};
    use crate::io::wav::{read_back, WavFormat};

    /// The builds the tests compare (each one that the CPU has runs; the others fall back).
    const BUILDS: [&str; 3] = ["portable", "avx2", "avx512"];

    /// Forces `build` on the calling thread ("": the CPU decides).
    fn force(build: &str) {
        crate::dsp::simd::init();
        crate::dsp::simd::force_portable(build == "portable");
        crate::dsp::simd::force_avx2(build == "avx2");
    }

    /// Noise that clips, exact rounding ties of both word lengths, NaN, infinities and huge
    /// values now and then.
    fn signal(channels: usize, frames: usize) -> Vec<Vec<f64>> {
        let mut next = crate::dsp::test_signal::noise(11);
        (0..channels)
            .map(|c| {
                (0..frames)
                    .map(|n| {
                        let u = next() * 2.4;
                        match n % 37 {
                            3 => (libm::round(u * 1000.0) + 0.5) / 32768.0,
                            7 => (libm::round(u * 100_000.0) + 0.5) / 8_388_608.0,
                            11 if c == 0 => f64::NAN,
                            13 => f64::NEG_INFINITY,
                            17 => 1e300 * u,
                            _ => u,
                        }
                    })
                    .collect()
            })
            .collect()
    }

    /// The integers, clip count and read-back values are [`quantize`]'s and [`read_back`]'s,
    /// on every build (AVX-512, AVX2, portable), with and without the read-back values, for one to
    /// three channels.
    #[test]
    fn one_quantization_gives_the_writers_integers_and_the_read_back() {
        crate::dsp::simd::init();
        let frames = 1003;
        for channels in 1..=3 {
            let planes = signal(channels, frames);
            let refs: Vec<&[f64]> = planes.iter().map(Vec::as_slice).collect();
            for format in [WavFormat::Int16, WavFormat::Int24] {
                let bits = format.bits();
                let mut want_ints = vec![0; frames * channels];
                let mut want_clipped = 0;
                for n in 0..frames {
                    for c in 0..channels {
                        let (v, clip) = quantize(planes[c][n], bits);
                        want_ints[n * channels + c] = v;
                        want_clipped += u64::from(clip);
                    }
                }
                assert!(want_clipped > 50, "the signal clips");
                let want_back: Vec<Vec<f64>> = planes
                    .iter()
                    .map(|p| {
                        let mut b = vec![0.0; frames];
                        read_back(p, &mut b, format);
                        b
                    })
                    .collect();
                for build in BUILDS {
                    force(build);
                    let mut ints = vec![0; frames * channels];
                    let mut back = vec![vec![f64::NAN; frames]; channels];
                    let mut back_refs: Vec<&mut [f64]> =
                        back.iter_mut().map(Vec::as_mut_slice).collect();
                    let clipped =
                        quantize_planes(&refs, frames, bits, &mut ints, Some(&mut back_refs));
                    let mut ints_only = vec![0; frames * channels];
                    let clipped_only = quantize_planes(&refs, frames, bits, &mut ints_only, None);
                    force("");
                    let at = format!("{channels} ch, {bits} bits, {build}");
                    assert_eq!(ints, want_ints, "{at}");
                    assert_eq!(ints_only, want_ints, "{at}, no read-back");
                    assert_eq!(
                        (clipped, clipped_only),
                        (want_clipped, want_clipped),
                        "{at}"
                    );
                    for (got, want) in back.iter().zip(&want_back) {
                        for (g, w) in got.iter().zip(want) {
                            assert_eq!(g.to_bits(), w.to_bits(), "{at}");
                        }
                    }
                }
            }
        }
    }

    /// The packed bytes are each integer's low `width` bytes, little-endian, on every build.
    #[test]
    fn packing_gives_the_low_bytes() {
        crate::dsp::simd::init();
        let ints: Vec<i32> = (0..203)
            .map(|i: i32| (i * 7919 - 800_000).clamp(-8_388_608, 8_388_607))
            .collect();
        for width in [2, 3] {
            let ints: Vec<i32> = if width == 2 {
                ints.iter().map(|&v| v.clamp(-32768, 32767)).collect()
            } else {
                ints.clone()
            };
            let want: Vec<u8> = ints
                .iter()
                .flat_map(|v| v.to_le_bytes()[..width].to_vec())
                .collect();
            for build in BUILDS {
                force(build);
                let mut out = vec![0xAA; ints.len() * width + 4];
                pack_le(&ints, width, &mut out);
                force("");
                assert_eq!(&out[..want.len()], &want[..], "width {width}, {build}");
            }
        }
    }

    /// A [`TpdfQuantizer`] gives the integers and read-back values of the Dither processor's
    /// output quantized for the file ([`quantize_planes`], no sample clipped),
    /// and its noise carries on past frames skipped as the processor's does past frames it
    /// dithers: block after block of uneven lengths, the first frames of some skipped, for mono
    /// and stereo, at 16 and 24 bits, with and without the read-back values, on every build.
    /// (Here rather than in `dsp::dither`: `dsp` may not use `io`.)
    #[test]
    fn quantizer_gives_the_dither_processors_integers() {
        let frames: usize = BLOCKS.iter().sum();
        let seed = 77;
        for channels in 1..=crate::dsp::buffer::MAX_CHANNELS {
            let input = signal_of(channels, frames);
            for bits in [16u32, 24] {
                // The processor over every block, then quantized; the frames skipped are left out.
                let config = ProcessorConfig::new()
                    .num("bits", f64::from(bits))
                    .num("seed", seed as f64);
                let mut d = Standalone::new("dither", &config, channels, 44_100.0, 1024).unwrap();
                let (mut want_ints, mut want_back) = (Vec::new(), vec![Vec::new(); channels]);
                let mut at = 0;
                for (k, len) in BLOCKS.into_iter().enumerate() {
                    let skip = (k % 3) * len / 4;
                    let mut block = AudioBuffer::new(channels, len);
                    for c in 0..channels {
                        block
                            .channel_mut(c, len)
                            .copy_from_slice(&input.view(frames).channel(c)[at..at + len]);
                    }
                    d.process(&mut block.view_mut(len));
                    let kept = block.view(len).slice(skip, len);
                    let mut ints = vec![0; kept.frames() * channels];
                    let mut back = vec![vec![0.0; kept.frames()]; channels];
                    let mut back_refs: Vec<&mut [f64]> =
                        back.iter_mut().map(Vec::as_mut_slice).collect();
                    let clipped = kept.with_planes(|p| {
                        quantize_planes(p, kept.frames(), bits, &mut ints, Some(&mut back_refs))
                    });
                    assert_eq!(
                        clipped, 0,
                        "the dither's output lies within the word length"
                    );
                    want_ints.extend(ints);
                    for (w, b) in want_back.iter_mut().zip(back) {
                        w.extend(b.iter().map(|x| x.to_bits()));
                    }
                    at += len;
                }
                for build in builds() {
                    for with_back in [true, false] {
                        let (ints, back) = on_build(build, || {
                            let mut q = TpdfQuantizer::new(channels, bits, seed);
                            let (mut ints, mut back) = (Vec::new(), vec![Vec::new(); channels]);
                            let mut at = 0;
                            for (k, len) in BLOCKS.into_iter().enumerate() {
                                let skip = (k % 3) * len / 4;
                                q.skip(skip);
                                let view = input.view(frames).slice(at + skip, at + len);
                                let n = view.frames();
                                let mut out = vec![0; n * channels];
                                let mut b = vec![vec![f64::NAN; n]; channels];
                                let mut b_refs: Vec<&mut [f64]> =
                                    b.iter_mut().map(Vec::as_mut_slice).collect();
                                view.with_planes(|p| {
                                    q.quantize(p, n, &mut out, with_back.then_some(&mut b_refs))
                                });
                                ints.extend(out);
                                for (w, b) in back.iter_mut().zip(b) {
                                    w.extend(b.iter().map(|x| x.to_bits()));
                                }
                                at += len;
                            }
                            (ints, back)
                        });
                        let at = format!("{channels} ch, {bits} bits, {build}");
                        assert_eq!(ints, want_ints, "{at}, read-back {with_back}");
                        if with_back {
                            assert_eq!(back, want_back, "{at}");
                        }
                    }
                }
            }
        }
    }
}
