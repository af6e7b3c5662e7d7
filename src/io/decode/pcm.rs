//! Fast path for plain PCM files (WAV and AIFF): after [`super::pcm_header`] has found the
//! sample data, converts 16/24/32-bit integers or 32-bit floats straight into planar `f64`,
//! without per-sample dispatch. The bytes come from `read()` in stretches of about
//! [`READ_AHEAD_BYTES`] (one system call each, not one per block the engine asks for) into a
//! buffer that stays in the core's cache while it is converted.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use super::pcm_header::{self, Encoding, PcmHeader};
use super::{Failure, StemInfo};

/// Bytes read from the file per system call (rounded down to whole frames). A render reads
/// its stems a block at a time, and one `read` per block cost more than the copy it makes;
/// larger stretches leave the buffer in the L2 cache for the conversion. Measured on R (AMD
/// Zen 5): reading the stems so costs less than mapping their page-cache pages (the kernel's
/// page-table work for 1 MiB populated windows and their unmapping was ~15 % of R, the copy
/// of `read()` ~7 %); 32 KiB stretches cost more (more system calls).
const READ_AHEAD_BYTES: usize = 128 * 1024;

/// A plain PCM file positioned at its first sample.
pub(super) struct PcmReader {
    file: File,
    encoding: Encoding,
    channels: usize,
    /// Frames the data chunk can hold; reading stops there.
    frames_stored: u64,
    /// Byte offset of the first sample.
    data_start: u64,
    /// The bytes read from the file and not yet converted.
    ahead: ReadAhead,
    /// Whether every sample converted since [`PcmReader::take_finite`] last asked is known to
    /// be finite (checked as stereo float samples are converted; integers always are).
    finite: bool,
}

/// Whole frames read from the file ahead of the conversion.
struct ReadAhead {
    /// Frames read from the file (handed out, or waiting in `bytes`).
    frames_fetched: u64,
    /// Set once the file ended before the data did.
    hit_eof: bool,
    /// Whole frames from the file; `bytes[start..end]` not yet handed out.
    bytes: Vec<u8>,
    start: usize,
    end: usize,
}

impl PcmReader {
    /// Opens `file` as plain PCM WAV or AIFF if it is one; otherwise gives the file back
    /// (rewound) for the general decoder.
    pub(super) fn try_open(
        mut file: File,
        path: &Path,
    ) -> io::Result<Result<(PcmReader, StemInfo), File>> {
        let header = match pcm_header::parse(&mut file) {
            Ok(h) => h,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => None,
            Err(e) => return Err(e),
        };
        let Some(PcmHeader {
            encoding,
            channels,
            sample_rate,
            frames_promised,
            frames_stored,
        }) = header
        else {
            file.seek(SeekFrom::Start(0))?;
            return Ok(Err(file));
        };
        let data_start = file.stream_position()?;
        let info = StemInfo {
            path: path.to_path_buf(),
            sample_rate,
            channels,
            frames: Some(frames_promised),
            bits_per_sample: Some(8 * encoding.bytes() as u32),
            codec: encoding.codec_name().to_string(),
            lossless: true,
        };
        let block_align = channels * encoding.bytes();
        let reader = PcmReader {
            file,
            encoding,
            channels,
            frames_stored,
            data_start,
            ahead: ReadAhead {
                frames_fetched: 0,
                hit_eof: false,
                bytes: vec![0; (READ_AHEAD_BYTES / block_align).max(1) * block_align],
                start: 0,
                end: 0,
            },
            finite: true,
        };
        Ok(Ok((reader, info)))
    }

    /// Whether the file holds integer samples: every one converts to a finite value.
    pub(super) fn integer(&self) -> bool {
        !matches!(self.encoding, Encoding::F32Le)
    }

    /// Whether every sample read since the last call is known to be finite: integers always
    /// are; stereo float samples are checked as they are converted (a float stream is then
    /// not scanned again), others are not (false: unknown).
    pub(super) fn take_finite(&mut self) -> bool {
        std::mem::replace(&mut self.finite, true)
    }

    /// Moves to frame `frame` (clamped to the end of the data) by byte offset.
    pub(super) fn seek(&mut self, frame: u64) -> Result<u64, Failure> {
        let frame = frame.min(self.frames_stored);
        let block_align = (self.channels * self.encoding.bytes()) as u64;
        self.file
            .seek(SeekFrom::Start(self.data_start + frame * block_align))?;
        let ra = &mut self.ahead;
        ra.frames_fetched = frame;
        ra.hit_eof = false;
        (ra.start, ra.end) = (0, 0);
        Ok(frame)
    }

    /// Reads up to `max` frames into `out`; 0 at the end of the data or of the file (a file
    /// that another program truncated meanwhile ends early: the decoder reports it as
    /// truncated).
    pub(super) fn read(&mut self, out: &mut [&mut [f64]], max: usize) -> Result<usize, Failure> {
        let block_align = self.channels * self.encoding.bytes();
        let ra = &mut self.ahead;
        let mut done = 0;
        while done < max {
            if ra.start == ra.end && !ra.fetch(&mut self.file, self.frames_stored, block_align)? {
                break;
            }
            let n = ((ra.end - ra.start) / block_align).min(max - done);
            let bytes = &ra.bytes[ra.start..ra.start + n * block_align];
            self.finite &= convert(self.encoding, bytes, out, done, n);
            ra.start += n * block_align;
            done += n;
        }
        Ok(done)
    }
}

impl ReadAhead {
    /// Refills the buffer with the next whole frames of the data; false at its end (or the
    /// file's: a partial last frame is dropped).
    fn fetch(
        &mut self,
        file: &mut File,
        frames_stored: u64,
        block_align: usize,
    ) -> Result<bool, Failure> {
        let left = frames_stored - self.frames_fetched;
        if self.hit_eof || left == 0 {
            return Ok(false);
        }
        let frames =
            (self.bytes.len() / block_align).min(usize::try_from(left).unwrap_or(usize::MAX));
        let want = frames * block_align;
        let got = read_full(file, &mut self.bytes[..want])?;
        if got < want {
            self.hit_eof = true;
        }
        let whole = got / block_align;
        (self.start, self.end) = (0, whole * block_align);
        self.frames_fetched += whole as u64;
        Ok(whole > 0)
    }
}

/// Reads into `buf` until it is full or the file ends; returns the bytes read.
fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Scale of a 16-bit integer sample: 1 / 2^15.
const S16: f64 = 1.0 / 32_768.0;
/// Scale of a 24-bit integer sample: 1 / 2^23.
const S24: f64 = 1.0 / 8_388_608.0;
/// Scale of a 32-bit integer sample: 1 / 2^31.
const S32: f64 = 1.0 / 2_147_483_648.0;

/// Converts `frames` interleaved frames from `bytes` into `out[c][at..at + frames]`.
/// Integers convert as `x / 2^(bits−1)` (exact); floats are widened. Whether every sample is
/// known to be finite: integers always are; stereo floats are checked as they are converted,
/// other floats are not (false).
fn convert(
    encoding: Encoding,
    bytes: &[u8],
    out: &mut [&mut [f64]],
    at: usize,
    frames: usize,
) -> bool {
    match encoding {
        Encoding::F32Le => {
            return match out {
                [left, right] => stereo_f32le_fast(
                    bytes,
                    &mut left[at..at + frames],
                    &mut right[at..at + frames],
                ),
                _ => {
                    deinterleave::<4>(bytes, out, at, frames, f32le);
                    false
                }
            }
        }
        Encoding::I16Le => deinterleave::<2>(bytes, out, at, frames, |b| {
            f64::from(i16::from_le_bytes([b[0], b[1]])) * S16
        }),
        Encoding::I24Le => match out {
            [left, right] => stereo_i24le_fast(
                bytes,
                &mut left[at..at + frames],
                &mut right[at..at + frames],
            ),
            _ => deinterleave::<3>(bytes, out, at, frames, |b| {
                f64::from(i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8) * S24
            }),
        },
        Encoding::I32Le => deinterleave::<4>(bytes, out, at, frames, |b| {
            f64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])) * S32
        }),
        Encoding::I16Be => deinterleave::<2>(bytes, out, at, frames, |b| {
            f64::from(i16::from_be_bytes([b[0], b[1]])) * S16
        }),
        Encoding::I24Be => deinterleave::<3>(bytes, out, at, frames, |b| {
            f64::from(i32::from_be_bytes([b[0], b[1], b[2], 0]) >> 8) * S24
        }),
        Encoding::I32Be => deinterleave::<4>(bytes, out, at, frames, |b| {
            f64::from(i32::from_be_bytes([b[0], b[1], b[2], b[3]])) * S32
        }),
    }
    true
}

/// One 32-bit little-endian float, widened (exactly).
#[inline(always)]
fn f32le(b: &[u8]) -> f64 {
    f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Stereo 32-bit float (the loudness solve's spill of the master): frames eight at a time with
/// AVX-512, four with AVX2, where the CPU has them (the left and right samples gathered into the
/// halves of a register, each half widened: the conversion [`f32le`] makes, lane by lane), the
/// rest one by one. Whether every sample is finite, found in the same pass: a sample is not
/// when its exponent bits are all ones (a float widened keeps being infinite or NaN).
fn stereo_f32le_fast(bytes: &[u8], left: &mut [f64], right: &mut [f64]) -> bool {
    let frames = left.len().min(right.len()).min(bytes.len() / 8);
    let (mut done, mut finite) = (0, true);
    #[cfg(target_arch = "x86_64")]
    if crate::dsp::simd::avx512() {
        // SAFETY: the CPU has AVX-512F, AVX-512VL and AVX2 (checked at run time).
        (done, finite) = unsafe { stereo_f32le_avx512(&bytes[..8 * frames], left, right) };
    } else if crate::dsp::simd::avx2() {
        // SAFETY: the CPU has AVX2 (checked at run time).
        (done, finite) = unsafe { stereo_f32le_avx2(&bytes[..8 * frames], left, right) };
    }
    let pairs = left[done..frames].iter_mut().zip(&mut right[done..frames]);
    for ((l, r), b) in pairs.zip(bytes[8 * done..].chunks_exact(8)) {
        *l = f32le(&b[..4]);
        *r = f32le(&b[4..]);
        finite &= l.is_finite() && r.is_finite();
    }
    finite
}

/// The exponent bits of an `f32`: all ones for infinities and NaN only.
const F32_EXPONENT: u32 = 0x7F80_0000;

/// [`stereo_f32le_fast`]'s whole groups of four frames; returns the frames done and whether
/// their samples are finite (the largest exponent field met, below all ones).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn stereo_f32le_avx2(bytes: &[u8], left: &mut [f64], right: &mut [f64]) -> (usize, bool) {
    use std::arch::x86_64::*;
    let frames = left.len().min(right.len()).min(bytes.len() / 8);
    let gather = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    let exponent = _mm256_set1_epi32(F32_EXPONENT as i32);
    let mut largest = _mm256_setzero_si256();
    let mut i = 0;
    while i + 4 <= frames {
        // SAFETY: bytes 8i .. 8i + 32 are in `bytes`; frames i .. i + 4 in `left` and `right`.
        unsafe {
            let v = _mm256_loadu_ps(bytes.as_ptr().add(8 * i).cast());
            let e = _mm256_and_si256(_mm256_castps_si256(v), exponent);
            largest = _mm256_max_epu32(largest, e);
            let v = _mm256_permutevar8x32_ps(v, gather);
            let l = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
            let r = _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(v));
            _mm256_storeu_pd(left.as_mut_ptr().add(i), l);
            _mm256_storeu_pd(right.as_mut_ptr().add(i), r);
        }
        i += 4;
    }
    let all_ones = _mm256_cmpeq_epi32(largest, exponent);
    (i, _mm256_testz_si256(all_ones, all_ones) == 1)
}

/// [`stereo_f32le_avx2`] eight frames (64 bytes) a step; the last frames by it.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx2")]
fn stereo_f32le_avx512(bytes: &[u8], left: &mut [f64], right: &mut [f64]) -> (usize, bool) {
    use std::arch::x86_64::*;
    let frames = left.len().min(right.len()).min(bytes.len() / 8);
    // The left samples (even) into the low half, the right ones (odd) into the high half.
    let gather = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    let exponent = _mm512_set1_epi32(F32_EXPONENT as i32);
    let mut largest = _mm512_setzero_si512();
    let mut i = 0;
    while i + 8 <= frames {
        // SAFETY: bytes 8i .. 8i + 64 are in `bytes`; frames i .. i + 8 in `left` and `right`.
        unsafe {
            let v = _mm512_loadu_ps(bytes.as_ptr().add(8 * i).cast());
            let e = _mm512_and_si512(_mm512_castps_si512(v), exponent);
            largest = _mm512_max_epu32(largest, e);
            let v = _mm512_permutexvar_ps(gather, v);
            let l = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
            let r = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(
                _mm512_castps_pd(v),
            )));
            _mm512_storeu_pd(left.as_mut_ptr().add(i), l);
            _mm512_storeu_pd(right.as_mut_ptr().add(i), r);
        }
        i += 8;
    }
    let finite = _mm512_cmpeq_epi32_mask(largest, exponent) == 0;
    let (l, r) = (&mut left[i..frames], &mut right[i..frames]);
    let (done, rest_finite) = stereo_f32le_avx2(&bytes[8 * i..], l, r);
    (i + done, finite && rest_finite)
}

/// Stereo 24-bit little-endian, the common stem format: each 6-byte frame is read as two
/// overlapping 4-byte words (bytes 0–3 and 2–5) whose low and high 24 bits are the samples.
fn stereo_i24le(bytes: &[u8], left: &mut [f64], right: &mut [f64]) {
    let pairs = left.iter_mut().zip(right.iter_mut());
    for ((l, r), b) in pairs.zip(bytes.chunks_exact(6)) {
        let lo = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let hi = i32::from_le_bytes([b[2], b[3], b[4], b[5]]);
        *l = f64::from((lo << 8) >> 8) * S24;
        *r = f64::from(hi >> 8) * S24;
    }
}

/// [`stereo_i24le`], eight frames at a time with AVX-512 VBMI or four with AVX2 on CPUs that
/// have them (the same integers, converted and scaled exactly: the same samples).
fn stereo_i24le_fast(bytes: &[u8], left: &mut [f64], right: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if crate::dsp::simd::avx512() && vbmi() {
        // SAFETY: the CPU has AVX-512F, BW and VBMI and AVX2 (checked at run time).
        return unsafe { stereo_i24le_vbmi(bytes, left, right) };
    }
    #[cfg(target_arch = "x86_64")]
    if crate::dsp::simd::avx2() {
        // SAFETY: the CPU has AVX2 (checked at run time).
        return unsafe { stereo_i24le_avx2(bytes, left, right) };
    }
    stereo_i24le(bytes, left, right)
}

/// Whether the CPU has the byte permutation of AVX-512 VBMI (`vpermb`) and AVX-512BW's byte
/// masks (std caches the answer: a load).
#[cfg(target_arch = "x86_64")]
fn vbmi() -> bool {
    std::arch::is_x86_feature_detected!("avx512vbmi")
        && std::arch::is_x86_feature_detected!("avx512bw")
}

/// Eight frames (48 bytes) per step: one masked load of the 48 bytes, one byte permutation
/// (`vpermb`) that puts each sample's three bytes at the top of a 32-bit lane, the left samples
/// in lanes 0–7 and the right ones in lanes 8–15, an arithmetic shift for the sign, then two
/// conversions to `f64` and the scale: a third of [`stereo_i24le_avx2`]'s instructions per frame.
/// The last frames (fewer than eight) go through [`stereo_i24le_avx2`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx2")]
fn stereo_i24le_vbmi(bytes: &[u8], left: &mut [f64], right: &mut [f64]) {
    use std::arch::x86_64::*;
    let frames = left.len().min(right.len()).min(bytes.len() / 6);
    // Byte 4k + 1 + j of the permuted vector is byte j of sample k: frame k % 8, channel k / 8.
    let mut index = [0u8; 64];
    for (lane, chunk) in index.chunks_exact_mut(4).enumerate() {
        let first = 6 * (lane % 8) + 3 * (lane / 8);
        chunk.copy_from_slice(&[0, first as u8, first as u8 + 1, first as u8 + 2]);
    }
    // SAFETY: a 64-byte load from a 64-byte array.
    let index = unsafe { _mm512_loadu_si512(index.as_ptr().cast()) };
    let scale = _mm512_set1_pd(S24);
    let mut i = 0;
    while i + 8 <= frames {
        // SAFETY: bytes 6i .. 6i + 48 are in `bytes` (the load's other 16 bytes are masked off
        // and not read); frames i .. i + 8 in `left` and `right`.
        unsafe {
            let p = bytes.as_ptr().add(6 * i);
            // As in the AVX2 kernel: ask for the bytes two pages ahead (never faults).
            _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(PREFETCH_BYTES).cast());
            let v = _mm512_maskz_loadu_epi8(0xffff_ffff_ffff, p.cast());
            let v = _mm512_srai_epi32::<8>(_mm512_permutexvar_epi8(index, v));
            let l = _mm512_mul_pd(_mm512_cvtepi32_pd(_mm512_castsi512_si256(v)), scale);
            let r = _mm512_mul_pd(_mm512_cvtepi32_pd(_mm512_extracti64x4_epi64::<1>(v)), scale);
            _mm512_storeu_pd(left.as_mut_ptr().add(i), l);
            _mm512_storeu_pd(right.as_mut_ptr().add(i), r);
        }
        i += 8;
    }
    stereo_i24le_avx2(&bytes[6 * i..], &mut left[i..frames], &mut right[i..frames]);
}

/// How far ahead of the frames it converts [`stereo_i24le_avx2`] asks for the bytes.
#[cfg(target_arch = "x86_64")]
const PREFETCH_BYTES: usize = 8192;

/// Four frames per step: two 16-byte loads (frames 0–1 and 2–3), a byte shuffle that puts each
/// sample's three bytes at the top of a 32-bit lane as `[L, L, R, R]`, an arithmetic shift for
/// the sign, then the conversion to `f64` and the scale. The last frames go through
/// [`stereo_i24le`] (a load reaches 4 bytes past its two frames).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn stereo_i24le_avx2(bytes: &[u8], left: &mut [f64], right: &mut [f64]) {
    use std::arch::x86_64::*;
    let frames = left.len().min(right.len()).min(bytes.len() / 6);
    let shuffle = _mm_setr_epi8(-1, 0, 1, 2, -1, 6, 7, 8, -1, 3, 4, 5, -1, 9, 10, 11);
    let scale = _mm256_set1_pd(S24);
    let mut i = 0;
    while i + 4 <= frames && 6 * i + 28 <= bytes.len() {
        // SAFETY: bytes 6i .. 6i + 28 are in `bytes`; frames i .. i + 4 in `left` and `right`.
        unsafe {
            let p = bytes.as_ptr().add(6 * i);
            // Ask for the bytes two pages ahead, across the page boundaries the hardware
            // prefetcher stops at: even from the read-ahead buffer the kernel has just
            // copied them into, R's stems decode with about a third less CPU than without
            // (AMD Zen 5, perf samples of this kernel's AVX-512 build). A prefetch never
            // faults, whatever the address.
            _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(PREFETCH_BYTES).cast());
            let a = _mm_loadu_si128(p.cast());
            let b = _mm_loadu_si128(p.add(12).cast());
            let a = _mm_srai_epi32::<8>(_mm_shuffle_epi8(a, shuffle));
            let b = _mm_srai_epi32::<8>(_mm_shuffle_epi8(b, shuffle));
            let l = _mm256_mul_pd(_mm256_cvtepi32_pd(_mm_unpacklo_epi64(a, b)), scale);
            let r = _mm256_mul_pd(_mm256_cvtepi32_pd(_mm_unpackhi_epi64(a, b)), scale);
            _mm256_storeu_pd(left.as_mut_ptr().add(i), l);
            _mm256_storeu_pd(right.as_mut_ptr().add(i), r);
        }
        i += 4;
    }
    stereo_i24le(&bytes[6 * i..], &mut left[i..frames], &mut right[i..frames]);
}

/// Splits interleaved samples of `W` bytes into planes, decoding each with `sample`.
/// Mono and stereo have their own loops so the compiler can drop the bounds checks.
#[inline(always)]
fn deinterleave<const W: usize>(
    bytes: &[u8],
    out: &mut [&mut [f64]],
    at: usize,
    frames: usize,
    sample: impl Fn(&[u8]) -> f64,
) {
    match out {
        [mono] => {
            for (d, b) in mono[at..at + frames].iter_mut().zip(bytes.chunks_exact(W)) {
                *d = sample(b);
            }
        }
        [left, right] => {
            let pairs = left[at..at + frames]
                .iter_mut()
                .zip(right[at..at + frames].iter_mut());
            for ((l, r), b) in pairs.zip(bytes.chunks_exact(2 * W)) {
                *l = sample(&b[..W]);
                *r = sample(&b[W..]);
            }
        }
        _ => {
            let channels = out.len();
            for (c, plane) in out.iter_mut().enumerate() {
                let frames_in = bytes.chunks_exact(channels * W);
                for (d, b) in plane[at..at + frames].iter_mut().zip(frames_in) {
                    *d = sample(&b[c * W..(c + 1) * W]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_stereo_24_bit_gives_the_scalar_samples() {
        crate::dsp::simd::init();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let bytes: Vec<u8> = (0..6 * 67)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed >> 32) as u8
            })
            .collect();
        for frames in 0..=67 {
            let b = &bytes[..6 * frames];
            let (mut wl, mut wr) = (vec![0.0; frames], vec![0.0; frames]);
            stereo_i24le(b, &mut wl, &mut wr);
            for (build, (l, r)) in every_build(b, frames) {
                assert_eq!((l, r), (wl.clone(), wr.clone()), "{build}, {frames} frames");
            }
        }
        // Full scale both ways.
        let edge = [0x00, 0x00, 0x80, 0xff, 0xff, 0x7f];
        let b: Vec<u8> = edge.iter().copied().cycle().take(6 * 8).collect();
        for (build, (l, r)) in every_build(&b, 8) {
            assert!(l.iter().all(|&x| x == -1.0), "{build}: {l:?}");
            assert!(r.iter().all(|&x| x == 1.0 - S24), "{build}: {r:?}");
        }
    }

    /// Stereo float frames convert as one by one, on every build (AVX-512, AVX2, portable):
    /// every length up to a few vectors, odd values (subnormals, infinities, NaN, −0).
    #[test]
    fn fast_stereo_float_gives_the_scalar_samples() {
        crate::dsp::simd::init();
        let specials = [
            0.0f32,
            -0.0,
            1.0e-40,
            -3.5e-39,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            f32::MAX,
            0.123_456_79,
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let values: Vec<f32> = (0..2 * 41)
            .map(|i| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                if i % 5 == 0 {
                    specials[(seed % specials.len() as u64) as usize]
                } else {
                    f32::from_bits((seed >> 32) as u32)
                }
            })
            .collect();
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        for frames in 0..=41 {
            let b = &bytes[..8 * frames];
            let want: (Vec<u64>, Vec<u64>) = (
                b.chunks_exact(8)
                    .map(|f| f32le(&f[..4]).to_bits())
                    .collect(),
                b.chunks_exact(8)
                    .map(|f| f32le(&f[4..]).to_bits())
                    .collect(),
            );
            for build in FLOAT_BUILDS {
                let (got, _) = float_on(build, b, frames);
                assert_eq!(got, want, "{frames} frames, {build}");
            }
        }
    }

    /// The builds of the stereo float conversion (each one the CPU has runs; the others fall
    /// back).
    const FLOAT_BUILDS: [&str; 3] = ["portable", "avx2", "avx512"];

    /// `frames` stereo float frames of `b` converted by `build`: the samples' bits and whether
    /// the conversion says they are finite.
    fn float_on(build: &str, b: &[u8], frames: usize) -> ((Vec<u64>, Vec<u64>), bool) {
        crate::dsp::simd::init();
        crate::dsp::simd::force_portable(build == "portable");
        crate::dsp::simd::force_avx2(build == "avx2");
        let (mut l, mut r) = (vec![f64::NAN; frames], vec![f64::NAN; frames]);
        let finite = stereo_f32le_fast(b, &mut l, &mut r);
        crate::dsp::simd::force_portable(false);
        crate::dsp::simd::force_avx2(false);
        let bits = |v: Vec<f64>| v.iter().map(|x| x.to_bits()).collect();
        ((bits(l), bits(r)), finite)
    }

    /// The stereo float conversion finds a non-finite sample wherever it is (either channel,
    /// any frame of the vector steps or of the rest), and says finite samples are, on every
    /// build.
    #[test]
    fn fast_stereo_float_finds_every_non_finite_sample() {
        let frames = 27;
        let clean: Vec<f32> = (0..2 * frames)
            .map(|i| f32::MAX / (i as f32 + 1.0) * if i % 3 == 0 { -1.0 } else { 1.0 })
            .collect();
        let bytes = |v: &[f32]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
        for build in FLOAT_BUILDS {
            assert!(float_on(build, &bytes(&clean), frames).1, "{build}");
            for at in 0..2 * frames {
                for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                    let mut v = clean.clone();
                    v[at] = bad;
                    let (_, finite) = float_on(build, &bytes(&v), frames);
                    assert!(!finite, "{build}: {bad} at {at}");
                }
            }
        }
    }

    /// The 24-bit stereo samples of `frames` frames of `bytes` from every build this CPU runs
    /// (the dispatcher's choice, AVX2, AVX-512 VBMI), named.
    fn every_build(bytes: &[u8], frames: usize) -> Vec<(&'static str, (Vec<f64>, Vec<f64>))> {
        type Kernel = fn(&[u8], &mut [f64], &mut [f64]);
        let mut builds: Vec<(&'static str, Kernel)> = vec![("dispatched", stereo_i24le_fast)];
        #[cfg(target_arch = "x86_64")]
        {
            if crate::dsp::simd::avx2() {
                // SAFETY: the CPU has AVX2 (checked just above).
                builds.push(("avx2", |b, l, r| unsafe { stereo_i24le_avx2(b, l, r) }));
            }
            if crate::dsp::simd::avx2() && crate::dsp::simd::avx512() && vbmi() {
                // SAFETY: the CPU has AVX-512F, BW and VBMI and AVX2 (checked just above).
                builds.push(("avx512vbmi", |b, l, r| unsafe {
                    stereo_i24le_vbmi(b, l, r)
                }));
            }
        }
        builds
            .into_iter()
            .map(|(name, kernel)| {
                let (mut l, mut r) = (vec![f64::NAN; frames], vec![f64::NAN; frames]);
                kernel(bytes, &mut l, &mut r);
                (name, (l, r))
            })
            .collect()
    }
}
