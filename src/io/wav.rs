//! WAV masters: 16- and 24-bit integer and 32-bit float, written atomically.
//!
//! Float to integer rounds to nearest and clips at full scale; clipped samples are counted and
//! reported. No dither is added here: word-length reduction with dither is the deliverable
//! pipeline's job, before this quantizer.
//!
//! The bytes are those hound (the crate this writer replaced on the hot path) writes: the same
//! header (`PCMWAVEFORMAT` up to 16 bits and 2 channels, `WAVE_FORMAT_EXTENSIBLE` above), the
//! same little-endian samples, the same sizes patched in at the end (a unit test compares the
//! two byte for byte). Blocks are converted and interleaved into a byte buffer and written in one
//! call: about twenty times cheaper than a call per sample. The file gets its bytes, header
//! included, in stretches of [`WRITE_BYTES`] that end on multiples of it in the file, written
//! from the buffer the samples were encoded into (no copy into a second buffer), into blocks
//! allocated ahead of them on ext4 ([`ALLOCATE_AHEAD_BYTES`]).

use super::atomic::{AtomicFile, OutputError};
use crate::dsp::AudioRef;
use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Sample format of a WAV file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WavFormat {
    /// 16-bit integer PCM.
    Int16,
    /// 24-bit integer PCM.
    Int24,
    /// 32-bit IEEE float.
    Float32,
}

impl WavFormat {
    /// The format for a bit depth as recipes write it (16, 24, 32 = float).
    pub fn from_bits(bits: u32) -> Option<WavFormat> {
        match bits {
            16 => Some(WavFormat::Int16),
            24 => Some(WavFormat::Int24),
            32 => Some(WavFormat::Float32),
            _ => None,
        }
    }
    /// Bits per sample.
    pub fn bits(self) -> u32 {
        match self {
            WavFormat::Int16 => 16,
            WavFormat::Int24 => 24,
            WavFormat::Float32 => 32,
        }
    }
    /// Whether samples are integers.
    pub fn is_integer(self) -> bool {
        !matches!(self, WavFormat::Float32)
    }
}

/// What a finished WAV file holds.
#[derive(Debug, Clone, PartialEq)]
pub struct WavSummary {
    /// Where it is.
    pub path: PathBuf,
    /// Frames written.
    pub frames: u64,
    /// Samples clipped at full scale by the integer conversion (float files: samples over ±1).
    pub clipped: u64,
}

/// Frames converted per call of the encoder.
const ENCODE_FRAMES: usize = 2048;

/// Bytes handed to the file per `write` call, ending at multiples of it in the file: the page
/// cache (ext4) then holds the file in folios of this size, fewer than the mixed small folios of
/// unaligned writes. Not larger: folios over 32 KiB (order 3) come from the allocator's shared
/// free lists instead of its per-CPU caches, and on the benchmark machine (a VM) the copy into
/// freshly allocated high-order folios cost now and then several times the system time (M:
/// 0.5 s instead of 0.15 s with 256 KiB to 2 MiB writes).
const WRITE_BYTES: usize = 32 << 10;

/// How far ahead of its writes a WAV file's blocks are allocated (`fallocate`) on ext4: its
/// writes then land in blocks already allocated instead of reserving each block as it is
/// written (R on an AMD Zen 5 VM: the output's `write` calls 6.9 % -> 5.4 % of R's CPU, perf).
/// The file's length follows the allocation (zeros past the samples) until
/// [`WavOutput::finish_with`] cuts it back to the bytes written.
const ALLOCATE_AHEAD_BYTES: u64 = 8 << 20;

/// A WAV file being written.
pub struct WavOutput {
    atomic: Option<AtomicFile>,
    writer: Option<File>,
    format: WavFormat,
    channels: usize,
    frames: u64,
    clipped: u64,
    /// Offset of the data chunk's size field (hound's layout: 40 or 64).
    data_len_offset: u32,
    /// Bytes of sample data written.
    data_bytes: u64,
    /// The file's next bytes, not written yet: `staged[..pending]` (the header, then encoded
    /// frames), with room for [`ENCODE_FRAMES`] more frames and 4 bytes of slack past
    /// [`WRITE_BYTES`] (the encoder's 4-byte stores).
    staged: Vec<u8>,
    pending: usize,
    /// Bytes of the file allocated ahead of the writes: [`ALLOCATE_AHEAD_BYTES`] at a time
    /// while `allocating`.
    allocated: u64,
    /// Whether the file system allocates ahead (ext4; until a call fails).
    allocating: bool,
}

/// Rounds `x` (full scale ±1) to a `bits`-bit integer, clipping; returns the value and whether it
/// clipped.
#[inline]
pub fn quantize(x: f64, bits: u32) -> (i32, bool) {
    let scale = (1u64 << (bits - 1)) as f64;
    let v = round_half_away(x * scale);
    let max = scale - 1.0;
    if v > max {
        (max as i32, true)
    } else if v < -scale {
        (-scale as i32, true)
    } else {
        (v as i32, false)
    }
}

/// The samples a decoder reads back from a file of `format` that `src` was written to: each
/// [`quantize`]d and scaled back by `2^(bits−1)` (what [`crate::io::decode`] does, exactly),
/// or for float files rounded to `f32`. Into `dst` (as long as `src`). Vectorized where the
/// CPU allows; the same values either way.
pub fn read_back(src: &[f64], dst: &mut [f64], format: WavFormat) {
    let bits = format.bits();
    if !format.is_integer() {
        for (d, &x) in dst.iter_mut().zip(src) {
            *d = f64::from(x as f32);
        }
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if crate::dsp::simd::avx512() {
        // SAFETY: the CPU has AVX-512F (checked at run time).
        return unsafe { read_back_int_avx512(src, dst, bits) };
    }
    #[cfg(target_arch = "x86_64")]
    if crate::dsp::simd::avx2() {
        // SAFETY: the CPU has AVX2 (checked at run time).
        return unsafe { read_back_int_avx2(src, dst, bits) };
    }
    read_back_int(src, dst, bits);
}

/// [`read_back_int_avx2`] eight samples at a time in AVX-512 registers, the same operations lane
/// by lane (the tie and NaN cases by masks); the rest by [`read_back_int_avx2`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2")]
fn read_back_int_avx512(src: &[f64], dst: &mut [f64], bits: u32) {
    use std::arch::x86_64::*;
    const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5·2^52
    let scale = (1u64 << (bits - 1)) as f64;
    let n = src.len().min(dst.len());
    let (vscale, inv) = (_mm512_set1_pd(scale), _mm512_set1_pd(1.0 / scale));
    let (lo, hi) = (_mm512_set1_pd(-(scale + 1.0)), _mm512_set1_pd(scale + 1.0));
    let (min_int, max_int) = (_mm512_set1_pd(-scale), _mm512_set1_pd(scale - 1.0));
    let (magic, half) = (_mm512_set1_pd(MAGIC), _mm512_set1_pd(0.5));
    let sign = _mm512_set1_epi64(i64::MIN);
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: `i + 8 <= n`, within both slices.
        let x = unsafe { _mm512_loadu_pd(src.as_ptr().add(i)) };
        let p = _mm512_mul_pd(x, vscale);
        // NaN reads back as 0 (zeroed by the mask of ordered lanes); `max`/`min` of a non-NaN
        // `p` are `f64::max`/`f64::min`.
        let p = _mm512_maskz_mov_pd(_mm512_cmp_pd_mask::<_CMP_ORD_Q>(p, p), p);
        let p = _mm512_min_pd(_mm512_max_pd(p, lo), hi);
        let r = _mm512_sub_pd(_mm512_add_pd(p, magic), magic);
        let gap = _mm512_castsi512_pd(_mm512_andnot_si512(
            sign,
            _mm512_castpd_si512(_mm512_sub_pd(p, r)),
        ));
        let tie = _mm512_cmp_pd_mask::<_CMP_EQ_OQ>(gap, half);
        let signed_half = _mm512_castsi512_pd(_mm512_or_si512(
            _mm512_and_si512(_mm512_castpd_si512(p), sign),
            _mm512_castpd_si512(half),
        ));
        let r = _mm512_mask_add_pd(r, tie, p, signed_half);
        let r = _mm512_max_pd(_mm512_min_pd(r, max_int), min_int);
        // SAFETY: as the load.
        unsafe { _mm512_storeu_pd(dst.as_mut_ptr().add(i), _mm512_mul_pd(r, inv)) };
        i += 8;
    }
    read_back_int_avx2(&src[i..n], &mut dst[i..n], bits);
}

/// [`read_back_int`] four samples at a time in AVX2 registers, lane by lane its operations (the
/// compiler's build of the scalar loop does not vectorize its tie and NaN cases); the rest by
/// [`read_back_int`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn read_back_int_avx2(src: &[f64], dst: &mut [f64], bits: u32) {
    use std::arch::x86_64::*;
    const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5·2^52
    let scale = (1u64 << (bits - 1)) as f64;
    let n = src.len().min(dst.len());
    let (vscale, inv) = (_mm256_set1_pd(scale), _mm256_set1_pd(1.0 / scale));
    let (lo, hi) = (_mm256_set1_pd(-(scale + 1.0)), _mm256_set1_pd(scale + 1.0));
    let (min_int, max_int) = (_mm256_set1_pd(-scale), _mm256_set1_pd(scale - 1.0));
    let (magic, half, sign) = (
        _mm256_set1_pd(MAGIC),
        _mm256_set1_pd(0.5),
        _mm256_set1_pd(-0.0),
    );
    let mut i = 0;
    while i + 4 <= n {
        // SAFETY: `i + 4 <= n`, within both slices.
        let x = unsafe { _mm256_loadu_pd(src.as_ptr().add(i)) };
        let p = _mm256_mul_pd(x, vscale);
        // NaN reads back as 0; `max`/`min` of a non-NaN `p` are `f64::max`/`f64::min`.
        let p = _mm256_andnot_pd(_mm256_cmp_pd::<_CMP_UNORD_Q>(p, p), p);
        let p = _mm256_min_pd(_mm256_max_pd(p, lo), hi);
        let r = _mm256_sub_pd(_mm256_add_pd(p, magic), magic);
        let tie = _mm256_cmp_pd::<_CMP_EQ_OQ>(_mm256_andnot_pd(sign, _mm256_sub_pd(p, r)), half);
        let away = _mm256_add_pd(p, _mm256_or_pd(_mm256_and_pd(p, sign), half));
        let r = _mm256_blendv_pd(r, away, tie);
        let r = _mm256_max_pd(_mm256_min_pd(r, max_int), min_int);
        // SAFETY: as the load.
        unsafe { _mm256_storeu_pd(dst.as_mut_ptr().add(i), _mm256_mul_pd(r, inv)) };
        i += 4;
    }
    read_back_int(&src[i..n], &mut dst[i..n], bits);
}

/// [`read_back`] of integer samples, written without branches so that it vectorizes: `p` is
/// first held within ±(scale + 1) (beyond it every value clips to the same integer, and
/// inside it the rounding is [`round_half_away`]'s for |p| < 2⁵¹), NaN reads back as 0 as
/// [`quantize`] makes it.
#[inline(always)]
fn read_back_int(src: &[f64], dst: &mut [f64], bits: u32) {
    const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5·2^52
    let scale = (1u64 << (bits - 1)) as f64;
    let inv = 1.0 / scale;
    for (d, &x) in dst.iter_mut().zip(src) {
        let p = x * scale;
        let p = if p.is_nan() { 0.0 } else { p };
        let p = p.max(-(scale + 1.0)).min(scale + 1.0);
        let r = (p + MAGIC) - MAGIC;
        let r = if (p - r).abs() == 0.5 {
            p + 0.5f64.copysign(p)
        } else {
            r
        };
        *d = r.min(scale - 1.0).max(-scale) * inv;
    }
}

/// `libm::round` (half away from zero), without a call for the values a quantizer meets:
/// |p| < 2⁵¹ is rounded to nearest-even by the 1.5·2⁵² trick and exact ties are then moved away
/// from zero; larger magnitudes, infinities and NaN go to `libm::round`.
#[inline(always)]
fn round_half_away(p: f64) -> f64 {
    const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5·2^52
    if p.abs() < 2_251_799_813_685_248.0 {
        let r = (p + MAGIC) - MAGIC;
        if (p - r).abs() == 0.5 {
            p + 0.5f64.copysign(p)
        } else {
            r
        }
    } else {
        libm::round(p)
    }
}

/// hound's header up to the data chunk's size: RIFF, `fmt ` (PCMWAVEFORMAT or
/// WAVE_FORMAT_EXTENSIBLE) and `data`, sizes zero (patched by `finish`).
fn header(sample_rate: u32, channels: u16, format: WavFormat) -> Vec<u8> {
    let bits = format.bits() as u16;
    let bytes_per_sample = bits.div_ceil(8);
    let extensible = channels > 2 || bits > 16;
    let mut h = Vec::with_capacity(68);
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&0u32.to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&(if extensible { 40u32 } else { 16 }).to_le_bytes());
    let tag: u16 = if extensible {
        0xfffe
    } else if format.is_integer() {
        1
    } else {
        3
    };
    h.extend_from_slice(&tag.to_le_bytes());
    h.extend_from_slice(&channels.to_le_bytes());
    h.extend_from_slice(&sample_rate.to_le_bytes());
    let bytes_per_sec = sample_rate * u32::from(bytes_per_sample) * u32::from(channels);
    h.extend_from_slice(&bytes_per_sec.to_le_bytes());
    h.extend_from_slice(&((bytes_per_sec / sample_rate) as u16).to_le_bytes());
    if extensible {
        h.extend_from_slice(&(bytes_per_sample * 8).to_le_bytes());
        h.extend_from_slice(&22u16.to_le_bytes());
        h.extend_from_slice(&bits.to_le_bytes());
        let mask = (0..u32::from(channels.min(18))).fold(0u32, |m, c| m | 1 << c);
        h.extend_from_slice(&mask.to_le_bytes());
        let sub: u8 = if format.is_integer() { 1 } else { 3 };
        h.extend_from_slice(&[
            sub, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38,
            0x9b, 0x71,
        ]);
    } else {
        h.extend_from_slice(&bits.to_le_bytes());
    }
    h.extend_from_slice(b"data");
    h.extend_from_slice(&0u32.to_le_bytes());
    h
}

/// Converts `frames` frames of `audio` from frame `at` into interleaved little-endian bytes in
/// `out`; returns the number of clipped samples.
#[inline(always)]
fn encode(
    audio: &AudioRef<'_>,
    at: usize,
    frames: usize,
    format: WavFormat,
    out: &mut [u8],
) -> u64 {
    let channels = audio.channels();
    let mut clipped = 0u64;
    match format {
        WavFormat::Float32 => {
            // Stereo: the first frames four at a time where the CPU can.
            let done = if channels == 2 {
                let l = &audio.channel(0)[at..at + frames];
                let r = &audio.channel(1)[at..at + frames];
                let (done, clips) = stereo_f32_fast(l, r, out);
                clipped += clips;
                done
            } else {
                0
            };
            for c in 0..channels {
                let src = &audio.channel(c)[at + done..at + frames];
                let stride = 4 * channels;
                for (x, o) in src
                    .iter()
                    .zip(out[stride * done + 4 * c..].chunks_mut(stride))
                {
                    clipped += u64::from(x.abs() > 1.0);
                    o[..4].copy_from_slice(&(*x as f32).to_le_bytes());
                }
            }
        }
        WavFormat::Int16 | WavFormat::Int24 => {
            let bits = format.bits();
            let width = (bits / 8) as usize;
            // Frame by frame, channels in order, with 4-byte stores: each store's spare bytes are
            // overwritten by the next one, the last one's land in the 4 bytes of slack of `out`.
            // Stereo: the first frames four at a time where the CPU can.
            let done = if channels == 2 {
                let l = &audio.channel(0)[at..at + frames];
                let r = &audio.channel(1)[at..at + frames];
                let (done, clips) = stereo_int_fast(l, r, bits, out);
                clipped += clips;
                done
            } else {
                0
            };
            let mut store = |pos: usize, x: f64| {
                let (v, clip) = quantize(x, bits);
                clipped += u64::from(clip);
                out[pos..pos + 4].copy_from_slice(&v.to_le_bytes());
            };
            if channels == 2 {
                let l = &audio.channel(0)[at..at + frames];
                let r = &audio.channel(1)[at..at + frames];
                for (n, (&a, &b)) in l.iter().zip(r).enumerate().skip(done) {
                    store(2 * width * n, a);
                    store(2 * width * n + width, b);
                }
            } else {
                for n in 0..frames {
                    for c in 0..channels {
                        store(width * (channels * n + c), audio.channel(c)[at + n]);
                    }
                }
            }
        }
    }
    clipped
}

/// The first frames of a stereo 32-bit float block, four at a time with AVX2 on CPUs that have
/// it (the scalar path's conversion — IEEE round to nearest, as `as f32` — count of samples over
/// full scale and bytes); returns the frames done (a multiple of 4, the rest is the caller's)
/// and the samples over full scale.
fn stereo_f32_fast(l: &[f64], r: &[f64], out: &mut [u8]) -> (usize, u64) {
    #[cfg(target_arch = "x86_64")]
    if crate::dsp::simd::avx2() {
        // SAFETY: the CPU has AVX2 (checked at run time).
        return unsafe { stereo_f32_avx2(l, r, out) };
    }
    let _ = (l, r, out);
    (0, 0)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn stereo_f32_avx2(l: &[f64], r: &[f64], out: &mut [u8]) -> (usize, u64) {
    use std::arch::x86_64::*;
    let n = l.len().min(r.len()).min(out.len() / 8) / 4 * 4;
    let sign = _mm256_set1_pd(-0.0);
    let one = _mm256_set1_pd(1.0);
    let mut clipped = 0u64;
    for i in (0..n).step_by(4) {
        // SAFETY: i + 4 ≤ n ≤ the lengths of `l` and `r`, and 8·(i + 4) ≤ 8·n ≤ `out.len()`.
        unsafe {
            let a = _mm256_loadu_pd(l.as_ptr().add(i));
            let b = _mm256_loadu_pd(r.as_ptr().add(i));
            // |x| > 1, false for NaN, as the scalar comparison.
            let over_a = _mm256_cmp_pd::<_CMP_GT_OQ>(_mm256_andnot_pd(sign, a), one);
            let over_b = _mm256_cmp_pd::<_CMP_GT_OQ>(_mm256_andnot_pd(sign, b), one);
            clipped += u64::from(
                (_mm256_movemask_pd(over_a) as u32).count_ones()
                    + (_mm256_movemask_pd(over_b) as u32).count_ones(),
            );
            let (fa, fb) = (_mm256_cvtpd_ps(a), _mm256_cvtpd_ps(b));
            let dst = out.as_mut_ptr().add(8 * i).cast::<f32>();
            _mm_storeu_ps(dst, _mm_unpacklo_ps(fa, fb));
            _mm_storeu_ps(dst.add(4), _mm_unpackhi_ps(fa, fb));
        }
    }
    (n, clipped)
}

/// The first frames of a stereo 16- or 24-bit block, four at a time with AVX2 on CPUs that have
/// it (the scalar path's rounding, clipping and bytes, operation for operation); returns the
/// frames done (a multiple of 4, the rest is the caller's) and the samples clipped.
fn stereo_int_fast(l: &[f64], r: &[f64], bits: u32, out: &mut [u8]) -> (usize, u64) {
    #[cfg(target_arch = "x86_64")]
    if crate::dsp::simd::avx2() {
        // SAFETY: the CPU has AVX2 (checked at run time).
        return unsafe { stereo_int_avx2(l, r, bits, out) };
    }
    let _ = (l, r, bits, out);
    (0, 0)
}

/// [`quantize`] on four samples: `(p + 1.5·2⁵²) − 1.5·2⁵²` rounds to nearest-even, an exact tie
/// then moves away from zero ([`round_half_away`]), and the result is clipped to
/// `[−scale, scale − 1]`. Only for |p| < 2⁵¹ (the caller checks). Returns the integers and a
/// mask of the clipped lanes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn quantize4(
    p: std::arch::x86_64::__m256d,
    scale: f64,
) -> (std::arch::x86_64::__m128i, std::arch::x86_64::__m256d) {
    use std::arch::x86_64::*;
    let magic = _mm256_set1_pd(6_755_399_441_055_744.0);
    let half = _mm256_set1_pd(0.5);
    let sign = _mm256_set1_pd(-0.0);
    let r = _mm256_sub_pd(_mm256_add_pd(p, magic), magic);
    let off = _mm256_andnot_pd(sign, _mm256_sub_pd(p, r));
    let tie = _mm256_cmp_pd::<_CMP_EQ_OQ>(off, half);
    let away = _mm256_add_pd(p, _mm256_or_pd(half, _mm256_and_pd(p, sign)));
    let v = _mm256_blendv_pd(r, away, tie);
    let max = _mm256_set1_pd(scale - 1.0);
    let min = _mm256_set1_pd(-scale);
    let clip = _mm256_or_pd(
        _mm256_cmp_pd::<_CMP_GT_OQ>(v, max),
        _mm256_cmp_pd::<_CMP_LT_OQ>(v, min),
    );
    let v = _mm256_max_pd(_mm256_min_pd(v, max), min);
    (_mm256_cvttpd_epi32(v), clip)
}

/// Frames `n .. n + 4` of `l` and `r` [`quantize4`]d (`[L0 L1 L2 L3]`, `[R0 R1 R2 R3]`) with
/// minus the samples clipped in each frame (64-bit lanes, for [`count_clips`]), or `None` when
/// a sample is NaN or too large for the fast rounding (the caller then takes [`quantize`]
/// sample by sample).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
pub(super) fn quantize_pair4(
    l: &[f64],
    r: &[f64],
    n: usize,
    scale: f64,
) -> Option<(
    std::arch::x86_64::__m128i,
    std::arch::x86_64::__m128i,
    std::arch::x86_64::__m256i,
)> {
    use std::arch::x86_64::*;
    let (l, r) = (&l[n..n + 4], &r[n..n + 4]);
    let vscale = _mm256_set1_pd(scale);
    let fast_limit = _mm256_set1_pd(2_251_799_813_685_248.0);
    let sign = _mm256_set1_pd(-0.0);
    // SAFETY: `l` and `r` hold four samples each.
    let (pl, pr) = unsafe {
        (
            _mm256_mul_pd(_mm256_loadu_pd(l.as_ptr()), vscale),
            _mm256_mul_pd(_mm256_loadu_pd(r.as_ptr()), vscale),
        )
    };
    // NaN and huge values take the scalar path (its libm::round and NaN handling).
    let small = _mm256_and_pd(
        _mm256_cmp_pd::<_CMP_LT_OQ>(_mm256_andnot_pd(sign, pl), fast_limit),
        _mm256_cmp_pd::<_CMP_LT_OQ>(_mm256_andnot_pd(sign, pr), fast_limit),
    );
    if _mm256_movemask_pd(small) != 0b1111 {
        return None;
    }
    let (il, cl) = quantize4(pl, scale);
    let (ir, cr) = quantize4(pr, scale);
    // Minus the samples clipped in each frame: the callers sum them in a register
    // ([`count_clips`]), not a count of a mask every step.
    let clips = _mm256_add_epi64(_mm256_castpd_si256(cl), _mm256_castpd_si256(cr));
    Some((il, ir, clips))
}

/// The samples clipped, from `acc`: [`quantize_pair4`]'s clip lanes of every step subtracted
/// from zero.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
pub(super) fn count_clips(acc: std::arch::x86_64::__m256i) -> u64 {
    let mut lanes = [0u64; 4];
    // SAFETY: four 64-bit lanes into four u64.
    unsafe { std::arch::x86_64::_mm256_storeu_si256(lanes.as_mut_ptr().cast(), acc) };
    lanes.iter().sum()
}

/// [`quantize_pair4`] interleaved (`[L0 R0 L1 R1]`, `[L2 R2 L3 R3]`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn quantize_frames4(
    l: &[f64],
    r: &[f64],
    n: usize,
    scale: f64,
) -> Option<(
    std::arch::x86_64::__m128i,
    std::arch::x86_64::__m128i,
    std::arch::x86_64::__m256i,
)> {
    use std::arch::x86_64::*;
    let (il, ir, clips) = quantize_pair4(l, r, n, scale)?;
    Some((
        _mm_unpacklo_epi32(il, ir),
        _mm_unpackhi_epi32(il, ir),
        clips,
    ))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn stereo_int_avx2(l: &[f64], r: &[f64], bits: u32, out: &mut [u8]) -> (usize, u64) {
    use std::arch::x86_64::*;
    let scale = (1u64 << (bits - 1)) as f64;
    let frames = l.len().min(r.len());
    let width = (bits / 8) as usize;
    // 24 bits: the low three bytes of each 32-bit lane, packed.
    let pack24 = _mm_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1);
    let mut clipped = 0u64;
    let mut clip_lanes = _mm256_setzero_si256();
    let mut n = 0;
    // A 24-bit step stores 28 bytes for its 24 (the slack is overwritten by what follows).
    let store_len = if width == 3 { 28 } else { 16 };
    while n + 4 <= frames && 2 * width * n + store_len <= out.len() {
        let pos = 2 * width * n;
        let Some((lo, hi, clips)) = quantize_frames4(l, r, n, scale) else {
            for k in n..n + 4 {
                for (c, x) in [l[k], r[k]].into_iter().enumerate() {
                    let (v, clip) = quantize(x, bits);
                    clipped += u64::from(clip);
                    let at = pos + width * (2 * (k - n) + c);
                    out[at..at + 4].copy_from_slice(&v.to_le_bytes());
                }
            }
            n += 4;
            continue;
        };
        clip_lanes = _mm256_sub_epi64(clip_lanes, clips);
        let dst = &mut out[pos..pos + store_len];
        // SAFETY: the stores stay in `dst` (16 bytes at 0 and, for 24 bits, at 12).
        unsafe {
            if width == 3 {
                _mm_storeu_si128(dst.as_mut_ptr().cast(), _mm_shuffle_epi8(lo, pack24));
                _mm_storeu_si128(
                    dst.as_mut_ptr().add(12).cast(),
                    _mm_shuffle_epi8(hi, pack24),
                );
            } else {
                _mm_storeu_si128(dst.as_mut_ptr().cast(), _mm_packs_epi32(lo, hi));
            }
        }
        n += 4;
    }
    (n, clipped + count_clips(clip_lanes))
}

/// The first frames of a stereo block [`quantize`]d into interleaved integers (`out`: L R L R
/// …), four at a time with AVX2 on CPUs that have it (the scalar path's rounding and clipping,
/// operation for operation): returns the frames done (a multiple of 4, the rest is the
/// caller's) and the samples clipped. For encoders that take integers (FLAC).
pub fn stereo_ints_fast(l: &[f64], r: &[f64], bits: u32, out: &mut [i32]) -> (usize, u64) {
    #[cfg(target_arch = "x86_64")]
    if crate::dsp::simd::avx2() {
        // SAFETY: the CPU has AVX2 (checked at run time).
        return unsafe { stereo_ints_avx2(l, r, bits, out) };
    }
    let _ = (l, r, bits, out);
    (0, 0)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn stereo_ints_avx2(l: &[f64], r: &[f64], bits: u32, out: &mut [i32]) -> (usize, u64) {
    use std::arch::x86_64::*;
    let scale = (1u64 << (bits - 1)) as f64;
    let frames = l.len().min(r.len()).min(out.len() / 2);
    let mut clipped = 0u64;
    let mut clip_lanes = _mm256_setzero_si256();
    let mut n = 0;
    while n + 4 <= frames {
        let Some((lo, hi, clips)) = quantize_frames4(l, r, n, scale) else {
            for k in n..n + 4 {
                for (c, x) in [l[k], r[k]].into_iter().enumerate() {
                    let (v, clip) = quantize(x, bits);
                    clipped += u64::from(clip);
                    out[2 * k + c] = v;
                }
            }
            n += 4;
            continue;
        };
        clip_lanes = _mm256_sub_epi64(clip_lanes, clips);
        let dst = &mut out[2 * n..2 * n + 8];
        // SAFETY: the two 16-byte stores fill `dst` (8 integers): frames in order.
        unsafe {
            _mm_storeu_si128(dst.as_mut_ptr().cast(), lo);
            _mm_storeu_si128(dst.as_mut_ptr().add(4).cast(), hi);
        }
        n += 4;
    }
    (n, clipped + count_clips(clip_lanes))
}

impl WavOutput {
    /// Starts writing `dest` (through a temporary file), refusing any path in `protected`.
    pub fn create(
        dest: &Path,
        sample_rate: u32,
        channels: usize,
        format: WavFormat,
        protected: &[PathBuf],
    ) -> Result<WavOutput, OutputError> {
        Self::create_with_chunks(dest, sample_rate, channels, format, protected, &[])
    }

    /// [`WavOutput::create`] with `chunks` (whole RIFF chunks, e.g. `bext`, `LIST`) between
    /// `fmt ` and `data`; they start at byte [`WavOutput::chunks_offset`] of the file.
    pub fn create_with_chunks(
        dest: &Path,
        sample_rate: u32,
        channels: usize,
        format: WavFormat,
        protected: &[PathBuf],
        chunks: &[u8],
    ) -> Result<WavOutput, OutputError> {
        let (atomic, file) = AtomicFile::create(dest, protected)?;
        let mut head = header(sample_rate, channels as u16, format);
        let at = head.len() - 8;
        head.splice(at..at, chunks.iter().copied());
        // Nothing is buffered yet: the header goes out with the first samples.
        let file = file.into_inner().map_err(|e| OutputError::Io {
            path: dest.to_path_buf(),
            source: e.into_error(),
        })?;
        let width = (format.bits() / 8) as usize;
        let room = WRITE_BYTES.max(head.len()) + ENCODE_FRAMES * channels * width + 4;
        let mut staged = vec![0; room];
        staged[..head.len()].copy_from_slice(&head);
        let allocating = allocates_ahead(&file);
        Ok(WavOutput {
            atomic: Some(atomic),
            writer: Some(file),
            format,
            channels,
            frames: 0,
            clipped: 0,
            data_len_offset: (head.len() - 4) as u32,
            data_bytes: 0,
            staged,
            pending: head.len(),
            allocated: 0,
            allocating,
        })
    }

    fn io_error(&self, source: io::Error) -> OutputError {
        OutputError::Io {
            path: self
                .atomic
                .as_ref()
                .map(|a| a.dest().to_path_buf())
                .unwrap_or_default(),
            source,
        }
    }

    /// Where the extra chunks of [`WavOutput::create_with_chunks`] start: the byte after `fmt `.
    pub fn chunks_offset(format: WavFormat, channels: usize) -> u64 {
        (header(1, channels as u16, format).len() - 8) as u64
    }

    /// Channels per frame.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Appends one block (its channel count must be the file's).
    pub fn write(&mut self, audio: AudioRef<'_>) -> Result<(), OutputError> {
        debug_assert_eq!(audio.channels(), self.channels);
        let frame_bytes = self.channels * (self.format.bits() / 8) as usize;
        let mut at = 0;
        while at < audio.frames() {
            let n = (audio.frames() - at).min(ENCODE_FRAMES);
            let len = n * frame_bytes;
            let out = &mut self.staged[self.pending..self.pending + len + 4];
            self.clipped += encode(&audio, at, n, self.format, out);
            self.staged_more(len).map_err(|e| self.io_error(e))?;
            self.frames += n as u64;
            at += n;
        }
        Ok(())
    }

    /// Appends `ints.len() / channels` frames already quantized to the file's word length
    /// (interleaved, as [`crate::io::quantize::quantize_planes`] gives them, `clipped` of them
    /// clipped): the bytes [`WavOutput::write`] writes for the samples they came from.
    ///
    /// # Panics
    /// For a float file.
    pub fn write_ints(&mut self, ints: &[i32], clipped: u64) -> Result<(), OutputError> {
        assert!(self.format.is_integer(), "integers for an integer file");
        let width = (self.format.bits() / 8) as usize;
        for part in ints.chunks(ENCODE_FRAMES * self.channels) {
            let len = part.len() * width;
            let out = &mut self.staged[self.pending..self.pending + len + 4];
            crate::io::quantize::pack_le(part, width, out);
            self.staged_more(len).map_err(|e| self.io_error(e))?;
            self.frames += (part.len() / self.channels) as u64;
        }
        self.clipped += clipped;
        Ok(())
    }

    /// Counts `len` more bytes of sample data staged, and writes the staged bytes up to the
    /// next multiple of [`WRITE_BYTES`] in the file once they reach it.
    fn staged_more(&mut self, len: usize) -> io::Result<()> {
        self.pending += len;
        self.data_bytes += len as u64;
        loop {
            let written =
                u64::from(self.data_len_offset) + 4 + self.data_bytes - self.pending as u64;
            let upto = WRITE_BYTES - (written % WRITE_BYTES as u64) as usize;
            if self.pending < upto {
                return Ok(());
            }
            self.allocate_ahead(written + upto as u64);
            let writer = self.writer.as_mut().expect("written after finish");
            writer.write_all(&self.staged[..upto])?;
            self.staged.copy_within(upto..self.pending, 0);
            self.pending -= upto;
        }
    }

    /// Allocates the file's next [`ALLOCATE_AHEAD_BYTES`] when a write would reach past those
    /// allocated; stops allocating for good when a call fails.
    fn allocate_ahead(&mut self, end: u64) {
        if !self.allocating || end <= self.allocated {
            return;
        }
        let file = self.writer.as_ref().expect("written after finish");
        self.allocating = allocate(file, self.allocated, ALLOCATE_AHEAD_BYTES);
        if self.allocating {
            self.allocated += ALLOCATE_AHEAD_BYTES;
        }
    }

    /// Completes the file (sizes in the header) and renames it into place.
    pub fn finish(self) -> Result<WavSummary, OutputError> {
        self.finish_with(|_| Ok(Vec::new()))
    }

    /// [`WavOutput::finish`], with `patch` run on the complete temporary file before it is
    /// renamed into place: the (offset, bytes) it returns are written over the file (fields
    /// known only from the finished audio, such as `bext`'s loudness).
    pub fn finish_with(
        mut self,
        patch: impl FnOnce(&Path) -> Result<Vec<(u64, Vec<u8>)>, OutputError>,
    ) -> Result<WavSummary, OutputError> {
        let mut writer = self.writer.take().expect("finished once");
        let result = (|| -> io::Result<()> {
            writer.write_all(&self.staged[..self.pending])?;
            let data = u32::try_from(self.data_bytes)
                .ok()
                .filter(|d| d.checked_add(self.data_len_offset - 4).is_some())
                .ok_or_else(|| io::Error::other("the audio does not fit a WAV file (4 GiB)"))?;
            if self.allocated > 0 {
                writer.set_len(u64::from(self.data_len_offset) + 4 + self.data_bytes)?;
            }
            writer.seek(SeekFrom::Start(4))?;
            writer.write_all(&(data + self.data_len_offset - 4).to_le_bytes())?;
            writer.seek(SeekFrom::Start(u64::from(self.data_len_offset)))?;
            writer.write_all(&data.to_le_bytes())?;
            writer.flush()
        })();
        drop(writer);
        result.map_err(|e| self.io_error(e))?;
        let tmp = self
            .atomic
            .as_ref()
            .expect("committed once")
            .tmp()
            .to_path_buf();
        let patches = patch(&tmp)?;
        if !patches.is_empty() {
            let apply = || -> io::Result<()> {
                let mut f = std::fs::OpenOptions::new().write(true).open(&tmp)?;
                for (at, bytes) in &patches {
                    f.seek(SeekFrom::Start(*at))?;
                    f.write_all(bytes)?;
                }
                f.flush()
            };
            apply().map_err(|e| self.io_error(e))?;
        }
        let frames = self.frames;
        let clipped = self.clipped;
        let path = self.atomic.take().expect("committed once").commit()?;
        Ok(WavSummary {
            path,
            frames,
            clipped,
        })
    }
}

/// Whether `file` lies on ext4, where allocating ahead was measured to pay (on tmpfs, say, it
/// would zero pages that the writes then fill again).
#[cfg(target_os = "linux")]
fn allocates_ahead(file: &File) -> bool {
    use std::os::fd::AsRawFd;
    const EXT4_SUPER_MAGIC: u64 = 0xEF53;
    // SAFETY: fstatfs fills the zeroed struct for an open descriptor.
    unsafe {
        let mut fs: libc::statfs = std::mem::zeroed();
        libc::fstatfs(file.as_raw_fd(), &mut fs) == 0 && fs.f_type as u64 == EXT4_SUPER_MAGIC
    }
}

#[cfg(not(target_os = "linux"))]
fn allocates_ahead(_: &File) -> bool {
    false
}

/// Allocates `len` bytes of `file` from `offset` (its length grows to cover them); false when
/// the file system refuses.
#[cfg(target_os = "linux")]
fn allocate(file: &File, offset: u64, len: u64) -> bool {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len)) else {
        return false;
    };
    // SAFETY: fallocate on an open descriptor; it only allocates blocks.
    unsafe { libc::fallocate(file.as_raw_fd(), 0, offset, len) == 0 }
}

#[cfg(not(target_os = "linux"))]
fn allocate(_: &File, _: u64, _: u64) -> bool {
    false
}

impl Drop for WavOutput {
    fn drop(&mut self) {
        // Close the file before the AtomicFile removes it.
        self.writer.take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::AudioBuffer;

    /// Samples that exercise rounding ties, clipping, silence and non-finite values.
    pub(super) fn signal(channels: usize, frames: usize) -> AudioBuffer {
        let mut b = AudioBuffer::new(channels, frames);
        let special = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            1.5,
            -1.5,
            0.5 / 32768.0,
            -0.5 / 32768.0,
            1.5 / 32768.0,
            2.5 / 8_388_608.0,
            -2.5 / 8_388_608.0,
            32767.5 / 32768.0,
            -32768.5 / 32768.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e300,
        ];
        for c in 0..channels {
            for (n, x) in b.channel_mut(c, frames).iter_mut().enumerate() {
                *x = if n < special.len() {
                    special[(n + c) % special.len()]
                } else {
                    (n as f64 * 0.013 + c as f64).sin() * 1.1
                };
            }
        }
        b
    }

    fn hound_bytes(path: &Path, audio: &AudioBuffer, frames: usize, format: WavFormat) -> Vec<u8> {
        let spec = hound::WavSpec {
            channels: audio.channels() as u16,
            sample_rate: 44_100,
            bits_per_sample: format.bits() as u16,
            sample_format: if format.is_integer() {
                hound::SampleFormat::Int
            } else {
                hound::SampleFormat::Float
            },
        };
        let mut w = hound::WavWriter::create(path, spec).unwrap();
        for n in 0..frames {
            for c in 0..audio.channels() {
                let x = audio.channel(c, frames)[n];
                if format.is_integer() {
                    let scale = (1u64 << (format.bits() - 1)) as f64;
                    let v = libm::round(x * scale);
                    let v = if v > scale - 1.0 {
                        (scale - 1.0) as i32
                    } else if v < -scale {
                        -scale as i32
                    } else {
                        v as i32
                    };
                    w.write_sample(v).unwrap();
                } else {
                    w.write_sample(x as f32).unwrap();
                }
            }
        }
        w.finalize().unwrap();
        std::fs::read(path).unwrap()
    }

    #[test]
    fn bytes_are_hounds() {
        let tmp = tempfile::tempdir().unwrap();
        for format in [WavFormat::Int16, WavFormat::Int24, WavFormat::Float32] {
            for channels in [1, 2] {
                let frames = 5000;
                let audio = signal(channels, frames);
                let want = hound_bytes(&tmp.path().join("hound.wav"), &audio, frames, format);
                let dest = tmp.path().join("ours.wav");
                let mut out = WavOutput::create(&dest, 44_100, channels, format, &[]).unwrap();
                // Uneven blocks, one longer than the encoder's buffer.
                let mut at = 0;
                for len in [1, 700, 2500, 1799] {
                    out.write(audio.view(frames).slice(at, at + len)).unwrap();
                    at += len;
                }
                let summary = out.finish().unwrap();
                assert_eq!(summary.frames, frames as u64);
                let got = std::fs::read(&dest).unwrap();
                assert!(
                    got == want,
                    "{format:?} {channels} ch: bytes differ from hound's"
                );
            }
        }
    }

    /// A file longer than the blocks allocated ahead at a time ends at its last byte (the
    /// allocation's zeros past it cut off): hound's bytes.
    #[test]
    fn a_file_past_the_allocation_ahead_is_hounds_bytes() {
        let tmp = tempfile::tempdir().unwrap();
        let (channels, format) = (2, WavFormat::Int24);
        let frames = (ALLOCATE_AHEAD_BYTES / 6) as usize + 4321;
        let audio = signal(channels, frames);
        let want = hound_bytes(&tmp.path().join("hound.wav"), &audio, frames, format);
        let dest = tmp.path().join("ours.wav");
        let mut out = WavOutput::create(&dest, 44_100, channels, format, &[]).unwrap();
        for at in (0..frames).step_by(100_000) {
            let to = (at + 100_000).min(frames);
            out.write(audio.view(frames).slice(at, to)).unwrap();
        }
        out.finish().unwrap();
        assert!(
            std::fs::read(&dest).unwrap() == want,
            "bytes differ from hound's"
        );
    }

    /// Integers quantized once and written with `write_ints` make the file `write` makes of
    /// the samples (bytes and clip count), on the AVX2 and the portable path.
    #[test]
    fn written_integers_are_the_written_samples() {
        crate::dsp::simd::init();
        let tmp = tempfile::tempdir().unwrap();
        for format in [WavFormat::Int16, WavFormat::Int24] {
            for channels in [1, 2] {
                let frames = 5000;
                let audio = signal(channels, frames);
                let write = |name: &str, ints: bool| {
                    let dest = tmp.path().join(name);
                    let mut out = WavOutput::create(&dest, 44_100, channels, format, &[]).unwrap();
                    let mut at = 0;
                    for len in [1, 700, 2500, 1799] {
                        let part = audio.view(frames).slice(at, at + len);
                        if ints {
                            let mut v = vec![0; len * channels];
                            let clipped = part.with_planes(|p| {
                                crate::io::quantize::quantize_planes(
                                    p,
                                    len,
                                    format.bits(),
                                    &mut v,
                                    None,
                                )
                            });
                            out.write_ints(&v, clipped).unwrap();
                        } else {
                            out.write(part).unwrap();
                        }
                        at += len;
                    }
                    let summary = out.finish().unwrap();
                    (
                        std::fs::read(&dest).unwrap(),
                        summary.frames,
                        summary.clipped,
                    )
                };
                let want = write("samples.wav", false);
                assert!(want.2 > 0, "the signal clips");
                for portable in [false, true] {
                    crate::dsp::simd::force_portable(portable);
                    let got = write("ints.wav", true);
                    crate::dsp::simd::force_portable(false);
                    assert!(got == want, "{format:?} {channels} ch, portable {portable}");
                }
            }
        }
    }

    #[test]
    fn rounding_is_libms() {
        let mut x = -3.0;
        while x < 3.0 {
            for p in [x, x + 0.5, -(x + 0.5), x * 1e-7, x * 8_388_608.0 + 0.5] {
                let want = libm::round(p);
                let got = round_half_away(p);
                assert!(got == want, "{p}: {got} vs {want}");
            }
            x += 0.000_37;
        }
        for p in [
            4503599627370495.5,
            2251799813685247.5,
            2251799813685248.5,
            1e20,
            -1e20,
        ] {
            assert_eq!(round_half_away(p), libm::round(p));
        }
        assert!(round_half_away(f64::NAN).is_nan());
    }
}

#[cfg(test)]
mod simd_tests {
    use super::*;
    use crate::dsp::AudioBuffer;

    #[test]
    fn the_avx2_encoder_writes_the_portable_bytes() {
        crate::dsp::simd::init();
        let frames = 1999;
        let mut b = AudioBuffer::new(2, frames);
        let mut seed = 7u64;
        for c in 0..2 {
            for (n, x) in b.channel_mut(c, frames).iter_mut().enumerate() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let u = (seed >> 11) as f64 / (1u64 << 53) as f64 * 2.4 - 1.2;
                // Exact ties of both word lengths, specials now and then, else noise that clips.
                *x = match n % 41 {
                    3 => (libm::round(u * 1000.0) + 0.5) / 32768.0,
                    7 => (libm::round(u * 100_000.0) + 0.5) / 8_388_608.0,
                    11 if c == 0 => f64::NAN,
                    13 => f64::NEG_INFINITY,
                    19 => 1e300 * u,
                    _ => u,
                };
            }
        }
        for format in [WavFormat::Int16, WavFormat::Int24] {
            let width = (format.bits() / 8) as usize;
            let encode_with = |portable: bool| {
                crate::dsp::simd::force_portable(portable);
                let mut out = vec![0u8; frames * 2 * width + 4];
                let clipped = encode(&b.view(frames), 0, frames, format, &mut out);
                crate::dsp::simd::force_portable(false);
                out.truncate(frames * 2 * width);
                (out, clipped)
            };
            let want = encode_with(true);
            assert!(want.1 > 100, "the signal clips");
            assert_eq!(encode_with(false), want, "{format:?}");
            // The integers for FLAC: each frame's pair is `quantize`'s.
            let (l, r) = (b.view(frames).channel(0), b.view(frames).channel(1));
            let mut ints = vec![0i32; 2 * frames];
            let (done, clipped) = stereo_ints_fast(l, r, format.bits(), &mut ints);
            if crate::dsp::simd::avx2() {
                assert_eq!(done, frames / 4 * 4, "AVX2 does the frames in fours");
            }
            let mut want_clipped = 0;
            for n in 0..done {
                for (c, x) in [l[n], r[n]].into_iter().enumerate() {
                    let (v, clip) = quantize(x, format.bits());
                    want_clipped += u64::from(clip);
                    assert_eq!(
                        ints[2 * n + c],
                        v,
                        "{format:?} frame {n} channel {c}: {x:e}"
                    );
                }
            }
            assert_eq!(clipped, want_clipped, "{format:?}");
        }
    }

    /// The stereo float path (four frames at a time on AVX2) writes the bytes and counts the
    /// overs of the sample-by-sample conversion, on values of every kind: NaN, infinities,
    /// values past `f32`'s range, subnormals, halfway cases of the rounding, full scale.
    #[test]
    fn stereo_float_frames_are_converted_as_one_by_one() {
        crate::dsp::simd::init();
        let mut xs = vec![
            f64::NAN,
            -f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e300,
            -1e300,
            1e-310,
            -0.0,
            1.0,
            -1.0,
            1.0 + f64::EPSILON,
            -1.0 - f64::EPSILON,
            1.0 + 2f64.powi(-24),
            0.1,
            f64::from(f32::MAX) * (1.0 + 2f64.powi(-25)),
        ];
        let mut noise = crate::dsp::test_signal::noise(0x0bad_cafe_f00d_1234u64);
        xs.extend((0..997).map(|_| 2.5 * noise()));
        let frames = xs.len() / 2;
        let (l, r) = (&xs[..frames], &xs[frames..2 * frames]);
        let mut out = vec![0u8; 8 * frames];
        let (done, clipped) = stereo_f32_fast(l, r, &mut out);
        if crate::dsp::simd::avx2() {
            assert_eq!(done, frames / 4 * 4);
        }
        let mut want_clipped = 0;
        for i in 0..done {
            for (k, x) in [l[i], r[i]].into_iter().enumerate() {
                want_clipped += u64::from(x.abs() > 1.0);
                let at = 8 * i + 4 * k;
                assert_eq!(
                    out[at..at + 4],
                    (x as f32).to_le_bytes(),
                    "{x:e} at frame {i}"
                );
            }
        }
        assert_eq!(clipped, want_clipped);
    }

    #[test]
    fn read_back_is_quantize_scaled_back() {
        let signal = super::tests::signal(1, 40);
        let mut xs: Vec<f64> = signal.view(40).channel(0).to_vec();
        // Every rounding tie and neighbour near full scale and near zero, at both word lengths.
        for bits in [16u32, 24] {
            let scale = (1u64 << (bits - 1)) as f64;
            for k in [
                -scale - 2.0,
                -scale - 1.0,
                -scale,
                -scale + 1.0,
                -1.0,
                0.0,
                1.0,
                scale - 2.0,
                scale - 1.0,
                scale,
            ] {
                for off in [-0.5, -0.25, 0.0, 0.25, 0.5, 0.75] {
                    xs.push((k + off) / scale);
                }
            }
        }
        xs.extend([
            f64::NAN,
            -f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e300,
            -1e300,
            -0.0,
            3e15,
            -3e15,
        ]);
        let mut seed = 7u64;
        for _ in 0..10_000 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            xs.push(((seed >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 2.2);
        }
        for format in [WavFormat::Int16, WavFormat::Int24] {
            let bits = format.bits();
            let mut got = vec![0.0; xs.len()];
            read_back(&xs, &mut got, format);
            crate::dsp::simd::init();
            let mut builds: Vec<(&str, Vec<f64>)> = Vec::new();
            let mut portable = vec![0.0; xs.len()];
            read_back_int(&xs, &mut portable, bits);
            builds.push(("portable", portable));
            #[cfg(target_arch = "x86_64")]
            if crate::dsp::simd::avx2() {
                let mut v = vec![0.0; xs.len()];
                // SAFETY: the CPU has AVX2 (checked above).
                unsafe { read_back_int_avx2(&xs, &mut v, bits) };
                builds.push(("avx2", v));
            }
            #[cfg(target_arch = "x86_64")]
            if crate::dsp::simd::avx512() {
                let mut v = vec![0.0; xs.len()];
                // SAFETY: the CPU has AVX-512F (checked above).
                unsafe { read_back_int_avx512(&xs, &mut v, bits) };
                builds.push(("avx512", v));
            }
            for (k, &x) in xs.iter().enumerate() {
                let want = f64::from(quantize(x, bits).0) / (1u64 << (bits - 1)) as f64;
                assert_eq!(got[k].to_bits(), want.to_bits(), "{x:e} at {bits} bits");
                for (name, v) in &builds {
                    assert_eq!(
                        v[k].to_bits(),
                        want.to_bits(),
                        "{x:e} at {bits} bits, {name}"
                    );
                }
            }
        }
        let mut got = vec![0.0; xs.len()];
        read_back(&xs, &mut got, WavFormat::Float32);
        for (&x, &g) in xs.iter().zip(&got) {
            assert_eq!(g.to_bits(), f64::from(x as f32).to_bits());
        }
    }
}
