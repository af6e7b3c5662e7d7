//! Integration tests of the stem decoder (`stemgraph::io::decode`) against its public API.
//!
//! Lossless formats are written here (hound for WAV, by hand for AIFF, flacenc for FLAC) from
//! known integer or float samples and must decode bit-exact. The lossy fixtures in
//! `tests/fixtures/` were encoded once from [`lossy_source`] (see `tests/fixtures/README.md`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::f64::consts::PI;
use std::path::{Path, PathBuf};

use stemgraph::io::decode::*;

// ---------------------------------------------------------------------------------------------
// Allocation counting (per thread), for the "read_block never allocates" test.

struct CountingAlloc;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn note_allocation() {
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

fn allocations() -> u64 {
    ALLOCATIONS.with(|c| c.get())
}

// ---------------------------------------------------------------------------------------------
// Helpers.

/// A deterministic xorshift generator for test samples.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// `frames × channels` interleaved integers spanning the full `bits` range, both extremes
/// included.
fn full_range_ints(frames: usize, channels: usize, bits: u32, seed: u64) -> Vec<i32> {
    let mut rng = Rng(seed);
    let min = -(1i64 << (bits - 1));
    let max = (1i64 << (bits - 1)) - 1;
    let span = (max - min + 1) as u64;
    let mut v: Vec<i32> = (0..frames * channels)
        .map(|_| (min + (rng.next() % span) as i64) as i32)
        .collect();
    v[0] = min as i32;
    v[1] = max as i32;
    v
}

/// Integer sample → expected `f64`: `x / 2^(bits−1)`.
fn int_to_f64(x: i32, bits: u32) -> f64 {
    f64::from(x) / (1u64 << (bits - 1)) as f64
}

/// Splits interleaved samples into planes.
fn planar<T: Copy>(interleaved: &[T], channels: usize) -> Vec<Vec<T>> {
    (0..channels)
        .map(|c| {
            interleaved
                .iter()
                .skip(c)
                .step_by(channels)
                .copied()
                .collect()
        })
        .collect()
}

/// Decodes a whole file with [`Decoder`] in blocks of `block` frames.
fn decode_all(path: &Path, block: usize) -> Result<(StemInfo, Vec<Vec<f64>>), DecodeError> {
    let mut dec = Decoder::open(path)?;
    let info = dec.info().clone();
    let mut planes = vec![Vec::new(); info.channels];
    let mut buf = vec![vec![0.0; block]; info.channels];
    loop {
        let mut slices: Vec<&mut [f64]> = buf.iter_mut().map(|b| b.as_mut_slice()).collect();
        let n = dec.read(&mut slices, block)?;
        if n == 0 {
            return Ok((info, planes));
        }
        for (p, b) in planes.iter_mut().zip(&buf) {
            p.extend_from_slice(&b[..n]);
        }
    }
}

/// Reads `total` frames from a [`StemStream`] in blocks of `block` frames.
fn stream_all(
    stream: &mut StemStream,
    channels: usize,
    total: usize,
    block: usize,
) -> Vec<Vec<f64>> {
    let mut planes = vec![Vec::with_capacity(total); channels];
    let mut buf = vec![vec![f64::NAN; block]; channels];
    let mut done = 0;
    while done < total {
        let n = block.min(total - done);
        let mut slices: Vec<&mut [f64]> = buf.iter_mut().map(|b| b.as_mut_slice()).collect();
        stream.read_block(&mut slices, n).unwrap();
        for (p, b) in planes.iter_mut().zip(&buf) {
            p.extend_from_slice(&b[..n]);
        }
        done += n;
    }
    planes
}

/// Writes integer samples as a WAV with hound.
fn write_wav_int(path: &Path, samples: &[i32], channels: u16, bits: u16, rate: u32) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: bits,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for &s in samples {
        match bits {
            8 => w.write_sample(s as i8).unwrap(),
            16 => w.write_sample(s as i16).unwrap(),
            _ => w.write_sample(s).unwrap(),
        }
    }
    w.finalize().unwrap();
}

/// Writes `f64` planes as a 24-bit WAV (rounded), returning the exact values written.
fn write_wav_24(path: &Path, planes: &[Vec<f64>], rate: u32) -> Vec<Vec<f64>> {
    let channels = planes.len();
    let scale = 8_388_608.0;
    let mut ints = Vec::with_capacity(planes[0].len() * channels);
    for i in 0..planes[0].len() {
        for p in planes {
            ints.push((p[i] * scale).round().clamp(-scale, scale - 1.0) as i32);
        }
    }
    write_wav_int(path, &ints, channels as u16, 24, rate);
    planar(&ints, channels)
        .into_iter()
        .map(|p| p.into_iter().map(|x| int_to_f64(x, 24)).collect())
        .collect()
}

/// Asserts two planar signals are identical, sample for sample.
fn assert_bit_exact(got: &[Vec<f64>], want: &[Vec<f64>]) {
    assert_eq!(got.len(), want.len(), "channel count");
    for (c, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.len(), w.len(), "length of channel {c}");
        if let Some(i) = (0..g.len()).find(|&i| g[i].to_bits() != w[i].to_bits()) {
            panic!(
                "channel {c} differs at frame {i}: got {} want {}",
                g[i], w[i]
            );
        }
    }
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Lossless formats: bit-exact.

/// Writes integer WAV at `bits`, decodes it, and checks info and samples.
fn check_wav_int(bits: u16, channels: u16) {
    let dir = tempdir();
    let path = dir.path().join(format!("int{bits}.wav"));
    let ints = full_range_ints(
        10_007,
        channels as usize,
        u32::from(bits),
        0x5eed + u64::from(bits),
    );
    write_wav_int(&path, &ints, channels, bits, 48_000);
    let (info, got) = decode_all(&path, 1000).unwrap();
    assert_eq!(info.sample_rate, 48_000);
    assert_eq!(info.channels, channels as usize);
    assert_eq!(info.frames, Some(10_007));
    assert_eq!(info.bits_per_sample, Some(u32::from(bits)));
    assert!(info.lossless);
    assert_eq!(info.path, path);
    let want: Vec<Vec<f64>> = planar(&ints, channels as usize)
        .into_iter()
        .map(|p| {
            p.into_iter()
                .map(|x| int_to_f64(x, u32::from(bits)))
                .collect()
        })
        .collect();
    assert_bit_exact(&got, &want);
}

#[test]
fn wav_16_bit_decodes_bit_exact() {
    check_wav_int(16, 2);
    check_wav_int(16, 1);
}

#[test]
fn wav_24_bit_decodes_bit_exact() {
    check_wav_int(24, 2);
    check_wav_int(24, 1);
    check_wav_int(24, 3);
}

#[test]
fn wav_32_bit_int_decodes_bit_exact() {
    check_wav_int(32, 2);
}

#[test]
fn wav_8_bit_decodes_bit_exact_through_the_general_path() {
    check_wav_int(8, 2);
}

#[test]
fn wav_32_bit_float_decodes_bit_exact() {
    let dir = tempdir();
    let path = dir.path().join("float.wav");
    let mut rng = Rng(99);
    let floats: Vec<f32> = (0..2 * 5000)
        .map(|i| match i {
            0 => 1.0,
            1 => -1.0,
            2 => 1.5, // floats may exceed full scale and must survive untouched
            3 => f32::MIN_POSITIVE,
            _ => (rng.next() % 2_000_001) as f32 / 1_000_000.0 - 1.0,
        })
        .collect();
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 44_100,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut w = hound::WavWriter::create(&path, spec).unwrap();
    for &s in &floats {
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
    let (info, got) = decode_all(&path, 777).unwrap();
    assert_eq!(
        (info.sample_rate, info.channels, info.frames),
        (44_100, 2, Some(5000))
    );
    assert_eq!(info.codec, "pcm_f32le");
    let want: Vec<Vec<f64>> = planar(&floats, 2)
        .into_iter()
        .map(|p| p.into_iter().map(f64::from).collect())
        .collect();
    assert_bit_exact(&got, &want);
}

/// An 80-bit IEEE extended float holding an integer sample rate (AIFF's COMM chunk).
fn extended_80(rate: u32) -> [u8; 10] {
    let exp = 31 - rate.leading_zeros();
    let mantissa = u64::from(rate) << (63 - exp);
    let mut out = [0u8; 10];
    out[..2].copy_from_slice(&((16_383 + exp) as u16).to_be_bytes());
    out[2..].copy_from_slice(&mantissa.to_be_bytes());
    out
}

/// An AIFF file (FORM/COMM/SSND) of big-endian integer samples, written by hand.
fn aiff_bytes(samples: &[i32], channels: u16, bits: u16, rate: u32) -> Vec<u8> {
    aiff_bytes_ordered(samples, channels, bits, rate, false)
}

/// An AIFF file; with `sound_first` the SSND chunk (and an odd-length ANNO chunk) come before
/// COMM, which the format allows.
fn aiff_bytes_ordered(
    samples: &[i32],
    channels: u16,
    bits: u16,
    rate: u32,
    sound_first: bool,
) -> Vec<u8> {
    let bytes_per = usize::from(bits / 8);
    let frames = samples.len() / usize::from(channels);
    let mut sound = Vec::with_capacity(samples.len() * bytes_per);
    for &s in samples {
        sound.extend_from_slice(&s.to_be_bytes()[4 - bytes_per..]);
    }
    let mut comm = Vec::new();
    comm.extend_from_slice(&channels.to_be_bytes());
    comm.extend_from_slice(&(frames as u32).to_be_bytes());
    comm.extend_from_slice(&bits.to_be_bytes());
    comm.extend_from_slice(&extended_80(rate));
    let mut comm_chunk = b"COMM".to_vec();
    comm_chunk.extend_from_slice(&(comm.len() as u32).to_be_bytes());
    comm_chunk.extend_from_slice(&comm);
    let ssnd_len = 8 + sound.len();
    let mut ssnd_chunk = b"SSND".to_vec();
    ssnd_chunk.extend_from_slice(&(ssnd_len as u32).to_be_bytes());
    ssnd_chunk.extend_from_slice(&[0; 8]); // offset, block size
    ssnd_chunk.extend_from_slice(&sound);
    if ssnd_len % 2 == 1 {
        ssnd_chunk.push(0);
    }
    let mut body = b"AIFF".to_vec();
    if sound_first {
        body.extend_from_slice(&ssnd_chunk);
        body.extend_from_slice(b"ANNO\x00\x00\x00\x05hello\x00");
        body.extend_from_slice(&comm_chunk);
    } else {
        body.extend_from_slice(&comm_chunk);
        body.extend_from_slice(&ssnd_chunk);
    }
    let mut file = b"FORM".to_vec();
    file.extend_from_slice(&(body.len() as u32).to_be_bytes());
    file.extend_from_slice(&body);
    file
}

fn check_aiff(bits: u16, sound_first: bool) {
    let dir = tempdir();
    let path = dir.path().join(format!("stem{bits}.aiff"));
    let ints = full_range_ints(4411, 2, u32::from(bits), 7 + u64::from(bits));
    let bytes = aiff_bytes_ordered(&ints, 2, bits, 44_100, sound_first);
    std::fs::write(&path, bytes).unwrap();
    let (info, got) = decode_all(&path, 500).unwrap();
    assert_eq!(
        (info.sample_rate, info.channels, info.frames),
        (44_100, 2, Some(4411))
    );
    assert_eq!(info.bits_per_sample, Some(u32::from(bits)));
    assert_eq!(info.codec, format!("pcm_s{bits}be"));
    assert!(info.lossless);
    let want: Vec<Vec<f64>> = planar(&ints, 2)
        .into_iter()
        .map(|p| {
            p.into_iter()
                .map(|x| int_to_f64(x, u32::from(bits)))
                .collect()
        })
        .collect();
    assert_bit_exact(&got, &want);
}

#[test]
fn aiff_16_bit_decodes_bit_exact() {
    check_aiff(16, false);
    check_aiff(16, true);
}

#[test]
fn aiff_24_bit_decodes_bit_exact() {
    check_aiff(24, false);
    check_aiff(24, true);
}

#[test]
fn wav_with_extra_odd_length_chunks_decodes_bit_exact() {
    let dir = tempdir();
    let path = dir.path().join("chunks.wav");
    let ints = full_range_ints(3000, 2, 24, 77);
    write_wav_int(&path, &ints, 2, 24, 48_000);
    // Insert an odd-length LIST chunk (with its pad byte) before the data chunk.
    let bytes = std::fs::read(&path).unwrap();
    let data = bytes.windows(4).position(|w| w == b"data").unwrap();
    let list = b"LIST\x05\x00\x00\x00INFOx\x00";
    let mut edited = [&bytes[..data], &list[..], &bytes[data..]].concat();
    let riff_len = (edited.len() - 8) as u32;
    edited[4..8].copy_from_slice(&riff_len.to_le_bytes());
    std::fs::write(&path, edited).unwrap();
    let (info, got) = decode_all(&path, 1000).unwrap();
    assert_eq!(info.frames, Some(3000));
    let want: Vec<Vec<f64>> = planar(&ints, 2)
        .into_iter()
        .map(|p| p.into_iter().map(|x| int_to_f64(x, 24)).collect())
        .collect();
    assert_bit_exact(&got, &want);
}

/// FLAC bytes of interleaved integer samples, encoded with flacenc.
fn flac_bytes(samples: &[i32], channels: usize, bits: usize, rate: usize) -> Vec<u8> {
    use flacenc::component::BitRepr;
    use flacenc::error::Verify;
    let config = flacenc::config::Encoder::default().into_verified().unwrap();
    let source = flacenc::source::MemSource::from_samples(samples, channels, bits, rate);
    let stream = flacenc::encode_with_fixed_block_size(&config, source, config.block_size).unwrap();
    let mut sink = flacenc::bitsink::ByteSink::new();
    stream.write(&mut sink).unwrap();
    sink.as_slice().to_vec()
}

/// A signal FLAC can compress (so its predictors are exercised), with some noise.
fn musical_ints(frames: usize, channels: usize, bits: u32, seed: u64) -> Vec<i32> {
    let mut rng = Rng(seed);
    let full = (1i64 << (bits - 1)) as f64;
    let mut v = Vec::with_capacity(frames * channels);
    for i in 0..frames {
        for c in 0..channels {
            let t = i as f64 / 44_100.0;
            let x = 0.6 * (2.0 * PI * (220.0 + 110.0 * c as f64) * t).sin()
                + 0.3 * (2.0 * PI * 1234.5 * t).sin()
                + ((rng.next() % 2001) as f64 - 1000.0) / 1000.0 * 0.05;
            v.push((x * full).round().clamp(-full, full - 1.0) as i32);
        }
    }
    v
}

fn check_flac(bits: u32) {
    let dir = tempdir();
    let path = dir.path().join(format!("stem{bits}.flac"));
    // A whole number of flacenc's 4096-frame blocks: with a shorter last block flacenc states
    // that block's length as the stream's minimum block size, and symphonia then takes the
    // stream for a variable-block-size one and finds no frame it accepts.
    let frames = 5 * 4096;
    let mut ints = musical_ints(frames, 2, bits, 3);
    let full = 1i32 << (bits - 1);
    ints[10] = -full;
    ints[11] = full - 1;
    std::fs::write(&path, flac_bytes(&ints, 2, bits as usize, 44_100)).unwrap();
    let (info, got) = decode_all(&path, 1024).unwrap();
    assert_eq!(
        (info.sample_rate, info.channels, info.frames),
        (44_100, 2, Some(frames as u64))
    );
    assert_eq!(info.bits_per_sample, Some(bits));
    assert_eq!(info.codec, "flac");
    assert!(info.lossless);
    let want: Vec<Vec<f64>> = planar(&ints, 2)
        .into_iter()
        .map(|p| p.into_iter().map(|x| int_to_f64(x, bits)).collect())
        .collect();
    assert_bit_exact(&got, &want);
}

#[test]
fn flac_16_bit_decodes_bit_exact() {
    check_flac(16);
}

#[test]
fn flac_24_bit_decodes_bit_exact() {
    check_flac(24);
}

// ---------------------------------------------------------------------------------------------
// Lossy fixtures.

/// Rate of the lossy fixtures' source.
const LOSSY_RATE: u32 = 44_100;
/// Length of the lossy fixtures' source in frames (2.5 s).
const LOSSY_FRAMES: usize = 110_250;

/// The source the lossy fixtures were encoded from: 2.5 s of a stereo arpeggio (A minor, eighth
/// notes with four harmonics and a plucked envelope) over a sustained pad, peaking near −6 dBFS.
fn lossy_source() -> Vec<Vec<f64>> {
    let notes = [
        220.0, 261.63, 329.63, 440.0, 329.63, 261.63, 196.0, 246.94, 293.66, 392.0,
    ];
    let note_len = LOSSY_FRAMES / notes.len();
    let rate = f64::from(LOSSY_RATE);
    let mut left = Vec::with_capacity(LOSSY_FRAMES);
    let mut right = Vec::with_capacity(LOSSY_FRAMES);
    for i in 0..LOSSY_FRAMES {
        let t = i as f64 / rate;
        let note = notes[(i / note_len).min(notes.len() - 1)];
        let since = (i % note_len) as f64 / rate;
        let env = (since / 0.01).min(1.0) * (-since * 6.0).exp();
        let pluck: f64 = (1..=4)
            .map(|k| (2.0 * PI * note * k as f64 * t).sin() / k as f64)
            .sum();
        let pad = 0.12 * (2.0 * PI * 110.0 * t).sin() + 0.08 * (2.0 * PI * 164.81 * t).sin();
        left.push(0.3 * env * pluck + pad);
        right.push(0.25 * env * pluck + pad * 0.9 + 0.05 * (2.0 * PI * 659.25 * t).sin());
    }
    vec![left, right]
}

/// Writes the lossy fixtures' source as 16-bit WAV, for re-encoding them (see
/// `tests/fixtures/README.md`): `cargo test --test decode write_lossy_source -- --ignored`.
#[test]
#[ignore]
fn write_lossy_source() {
    let src = lossy_source();
    let mut ints = Vec::new();
    for i in 0..LOSSY_FRAMES {
        for p in &src {
            ints.push((p[i] * 32_768.0).round() as i32);
        }
    }
    let path = std::env::temp_dir().join("tone_source.wav");
    write_wav_int(&path, &ints, 2, 16, LOSSY_RATE);
    println!("wrote {}", path.display());
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Normalised correlation of `a[i]` with `b[i + lag]` over the overlap.
fn correlation_at(a: &[f64], b: &[f64], lag: isize) -> f64 {
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (i, &x) in a.iter().enumerate() {
        let j = i as isize + lag;
        if j < 0 || j as usize >= b.len() {
            continue;
        }
        let y = b[j as usize];
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    ab / (aa * bb).sqrt()
}

/// The lag in `-max_lag..=max_lag` at which `b` best matches `a`, and the correlation there.
fn best_alignment(a: &[f64], b: &[f64], max_lag: isize) -> (isize, f64) {
    let window = &a[..a.len().min(22_050)];
    let lag = (-max_lag..=max_lag)
        .max_by(|&x, &y| correlation_at(window, b, x).total_cmp(&correlation_at(window, b, y)))
        .unwrap();
    (lag, correlation_at(a, b, lag))
}

/// Decodes a lossy fixture and compares it with [`lossy_source`].
///
/// Both fixtures carry gapless information (MP3: the LAME tag's encoder delay of 576 + 529
/// frames and its end padding; Ogg Vorbis: the granule positions), which symphonia uses to trim
/// the codec's padding, so the decode has exactly the source's length and no offset. (An MP3
/// without a LAME tag would start 1105 frames late and run up to one 1152-frame MPEG frame
/// long.)
fn check_lossy(name: &str, codec: &str) {
    let src = lossy_source();
    let (info, got) = decode_all(&fixture(name), 1000).unwrap();
    assert_eq!(info.sample_rate, LOSSY_RATE);
    assert_eq!(info.channels, 2);
    assert_eq!(info.codec, codec);
    assert!(!info.lossless);
    assert_eq!(info.frames, Some(LOSSY_FRAMES as u64));
    assert_eq!(got[0].len(), LOSSY_FRAMES, "decoded length");
    for c in 0..2 {
        let (lag, corr) = best_alignment(&src[c], &got[c], 2000);
        assert_eq!(lag, 0, "channel {c} is offset by {lag} frames");
        assert!(corr > 0.99, "channel {c} correlates only {corr}");
    }
}

#[test]
fn mp3_fixture_decodes_at_its_rate_length_and_shape() {
    check_lossy("tone.mp3", "mp3");
}

#[test]
fn ogg_vorbis_fixture_decodes_at_its_rate_length_and_shape() {
    check_lossy("tone.ogg", "vorbis");
}

// ---------------------------------------------------------------------------------------------
// StemStream: resampling, channel mapping, padding.

fn opts(target_rate: u32, target_channels: usize, length_frames: Option<u64>) -> StreamOptions {
    StreamOptions {
        target_rate,
        target_channels,
        length_frames,
    }
}

/// `frames` frames of a sine at `hz`, amplitude `amp`, sampled at `rate`.
fn sine(frames: usize, hz: f64, amp: f64, rate: f64) -> Vec<f64> {
    (0..frames)
        .map(|n| amp * (2.0 * PI * hz * n as f64 / rate).sin())
        .collect()
}

/// The position of the largest |sample| in `x[range]`, refined by a parabola through the peak
/// and its neighbours.
fn peak_position(x: &[f64], range: std::ops::Range<usize>) -> f64 {
    let i = range
        .max_by(|&a, &b| x[a].abs().total_cmp(&x[b].abs()))
        .unwrap();
    let (l, c, r) = (x[i - 1].abs(), x[i].abs(), x[i + 1].abs());
    i as f64 + 0.5 * (l - r) / (l - 2.0 * c + r)
}

/// Resamples a stereo file made of two impulses (left) and a 1 kHz sine (right) and checks the
/// length, the warning, the impulses' positions and the sine's phase and level.
fn check_resampling(from_hz: u32, to_hz: u32, frames: usize, impulses: [usize; 2]) {
    let dir = tempdir();
    let path = dir.path().join(format!("at{from_hz}.wav"));
    let mut left = vec![0.0; frames];
    for &t in &impulses {
        left[t] = 0.5;
    }
    let right = sine(frames, 1000.0, 0.5, f64::from(from_hz));
    write_wav_24(&path, &[left, right], from_hz);

    let (mut stream, warnings) = StemStream::open(&path, &opts(to_hz, 2, None)).unwrap();
    assert_eq!(
        warnings,
        vec![StreamWarning::Resampled {
            path: path.clone(),
            from_hz,
            to_hz
        }]
    );
    assert!(warnings[0].to_string().contains("resampled"));
    let ratio = f64::from(to_hz) / f64::from(from_hz);
    let want_len = (frames as f64 * ratio).round() as usize;
    assert_eq!(stream.length_frames(), Some(want_len as u64));
    assert_eq!(stream.info().sample_rate, from_hz);

    let out = stream_all(&mut stream, 2, want_len + 300, 1000);
    // The material runs to the last frame and stops there: the sine is still going in the last
    // frames, and everything after is silence.
    let tail_rms = (out[1][want_len - 200..want_len]
        .iter()
        .map(|x| x * x)
        .sum::<f64>()
        / 200.0)
        .sqrt();
    assert!(tail_rms > 0.3, "material ends early (tail rms {tail_rms})");
    assert!(out.iter().all(|p| p[want_len..].iter().all(|&x| x == 0.0)));

    // Impulses stay where they were, within a fraction of a sample.
    for &t in &impulses {
        let want = t as f64 * ratio;
        let start = want as usize - 20;
        let got = peak_position(&out[0], start..start + 40);
        assert!(
            (got - want).abs() < 0.25,
            "impulse at {t}: output peak at {got}, want {want}"
        );
    }

    // The sine keeps its phase and its level (0.1 dB) away from the edges.
    let to = f64::from(to_hz);
    let body = 4000..want_len - 4000;
    let want_sine = sine(want_len, 1000.0, 0.5, to);
    let max_err = body
        .clone()
        .map(|n| (out[1][n] - want_sine[n]).abs())
        .fold(0.0, f64::max);
    assert!(max_err < 1e-5, "sine differs by up to {max_err}");
    let rms = (body.clone().map(|n| out[1][n].powi(2)).sum::<f64>() / body.len() as f64).sqrt();
    let level_db = 20.0 * (rms * 2f64.sqrt() / 0.5).log10();
    assert!(level_db.abs() < 0.1, "sine level off by {level_db} dB");
}

#[test]
fn resampling_44k1_to_48k_keeps_length_alignment_phase_and_level() {
    // 14_700 frames map to exactly 16_000; 30_001 to 32_654.42 (between samples).
    check_resampling(44_100, 48_000, 66_153, [14_700, 30_001]);
}

#[test]
fn resampling_96k_to_48k_keeps_length_alignment_phase_and_level() {
    // 20_000 frames map to 10_000; 40_001 to 20_000.5.
    check_resampling(96_000, 48_000, 96_003, [20_000, 40_001]);
}

#[test]
fn resampled_output_does_not_depend_on_block_size() {
    let dir = tempdir();
    let path = dir.path().join("blocks.wav");
    let src = lossy_source();
    write_wav_24(&path, &[src[0][..30_000].to_vec()], 44_100);
    let len = 40_000;
    let read = |block: usize| {
        let (mut s, _) = StemStream::open(&path, &opts(48_000, 2, Some(len as u64))).unwrap();
        stream_all(&mut s, 2, len, block)
    };
    let a = read(64);
    let b = read(4096);
    let c = read(1);
    assert_bit_exact(&a, &b);
    assert_bit_exact(&a, &c);
}

#[test]
fn short_stem_is_padded_with_silence_and_a_warning() {
    let dir = tempdir();
    let path = dir.path().join("short.wav");
    let src = sine(1000, 440.0, 0.7, 48_000.0);
    let written = write_wav_24(&path, &[src.clone(), src], 48_000);
    let (mut stream, warnings) = StemStream::open(&path, &opts(48_000, 2, Some(1500))).unwrap();
    assert_eq!(
        warnings,
        vec![StreamWarning::Padded {
            path: path.clone(),
            frames: 1000,
            to: 1500
        }]
    );
    let text = warnings[0].to_string();
    assert!(text.contains("1000") && text.contains("1500"), "{text}");
    assert_eq!(stream.length_frames(), Some(1500));
    let out = stream_all(&mut stream, 2, 1700, 256);
    for c in 0..2 {
        assert_bit_exact(&[out[c][..1000].to_vec()], &[written[c].clone()]);
        assert!(out[c][1000..].iter().all(|&x| x == 0.0));
    }
}

#[test]
fn long_stem_stops_at_the_length_asked_for() {
    let dir = tempdir();
    let path = dir.path().join("long.wav");
    let src = sine(2000, 440.0, 0.7, 48_000.0);
    let written = write_wav_24(&path, &[src.clone(), src], 48_000);
    let (mut stream, warnings) = StemStream::open(&path, &opts(48_000, 2, Some(1200))).unwrap();
    assert_eq!(
        warnings,
        vec![StreamWarning::Trimmed {
            path: path.clone(),
            frames: 2000,
            to: 1200
        }]
    );
    assert_eq!(stream.length_frames(), Some(1200));
    let out = stream_all(&mut stream, 2, 1500, 500);
    for c in 0..2 {
        assert_bit_exact(&[out[c][..1200].to_vec()], &[written[c][..1200].to_vec()]);
        assert!(out[c][1200..].iter().all(|&x| x == 0.0));
    }
}

#[test]
fn stem_at_the_target_length_and_rate_passes_through_untouched() {
    let dir = tempdir();
    let path = dir.path().join("exact.wav");
    let src = sine(3000, 1000.0, 0.9, 48_000.0);
    let written = write_wav_24(&path, &[src.clone(), src], 48_000);
    let (mut stream, warnings) = StemStream::open(&path, &opts(48_000, 2, None)).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(stream.length_frames(), Some(3000));
    let out = stream_all(&mut stream, 2, 3000, 480);
    assert_bit_exact(&out, &written);
}

#[test]
fn mono_stem_feeds_both_channels() {
    let dir = tempdir();
    let path = dir.path().join("mono.wav");
    let written = write_wav_24(&path, &[sine(5000, 330.0, 0.8, 48_000.0)], 48_000);
    let (mut stream, warnings) = StemStream::open(&path, &opts(48_000, 2, None)).unwrap();
    assert_eq!(
        warnings,
        vec![StreamWarning::MonoToStereo { path: path.clone() }]
    );
    assert!(warnings[0].to_string().contains("mono"));
    let out = stream_all(&mut stream, 2, 5000, 700);
    assert_bit_exact(&out, &[written[0].clone(), written[0].clone()]);

    // A mono stem into a mono target needs no note.
    let (_, warnings) = StemStream::open(&path, &opts(48_000, 1, None)).unwrap();
    assert!(warnings.is_empty());
}

#[test]
fn stereo_stem_into_a_mono_target_is_an_error() {
    let dir = tempdir();
    let path = dir.path().join("stereo.wav");
    write_wav_24(&path, &[vec![0.1; 100], vec![0.2; 100]], 48_000);
    let err = StemStream::open(&path, &opts(48_000, 1, None))
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            DecodeError::ChannelLayout {
                channels: 2,
                target: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("stereo.wav"), "{err}");
}

#[test]
fn more_than_two_channels_is_an_error() {
    let dir = tempdir();
    let path = dir.path().join("surround.wav");
    write_wav_24(&path, &vec![vec![0.1; 100]; 6], 48_000);
    let err = StemStream::open(&path, &opts(48_000, 2, None))
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            DecodeError::ChannelLayout {
                channels: 6,
                target: 2,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("surround.wav"), "{err}");
}

#[test]
fn read_block_does_not_allocate_after_the_first_call() {
    let dir = tempdir();
    let plain = dir.path().join("plain.wav");
    let mono_44k = dir.path().join("mono44k.wav");
    write_wav_24(&plain, &vec![sine(50_000, 440.0, 0.5, 48_000.0); 2], 48_000);
    write_wav_24(&mono_44k, &[sine(50_000, 440.0, 0.5, 44_100.0)], 44_100);
    for path in [plain, mono_44k] {
        let (mut stream, _) = StemStream::open(&path, &opts(48_000, 2, Some(70_000))).unwrap();
        let mut buf = vec![vec![0.0; 512]; 2];
        let mut slices: Vec<&mut [f64]> = buf.iter_mut().map(|b| b.as_mut_slice()).collect();
        stream.read_block(&mut slices, 512).unwrap();
        let before = allocations();
        for _ in 0..140 {
            stream.read_block(&mut slices, 500).unwrap();
        }
        assert_eq!(allocations() - before, 0, "{} allocated", path.display());
    }
}

// ---------------------------------------------------------------------------------------------
// Damaged, foreign and missing files: clear errors naming the file, never a panic.

/// Reads a whole stream through [`Decoder`], returning the first error.
fn read_until_error(path: &Path) -> Result<usize, DecodeError> {
    decode_all(path, 1000).map(|(_, planes)| planes[0].len())
}

#[test]
fn truncated_wav_is_a_truncated_error_with_both_counts() {
    let dir = tempdir();
    let path = dir.path().join("cut.wav");
    write_wav_24(&path, &[vec![0.25; 10_000], vec![-0.25; 10_000]], 48_000);
    let bytes = std::fs::read(&path).unwrap();
    let header = bytes.len() - 10_000 * 6;
    // Keep 6000 whole frames and half of the next one.
    std::fs::write(&path, &bytes[..header + 6000 * 6 + 4]).unwrap();

    let err = read_until_error(&path).unwrap_err();
    match &err {
        DecodeError::Truncated {
            path: p,
            expected,
            got,
        } => {
            assert_eq!((p, *expected, *got), (&path, 10_000, 6000));
        }
        other => panic!("expected Truncated, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("cut.wav") && text.contains("10000") && text.contains("6000"),
        "{text}"
    );

    // The stream a render reads reports the same.
    let (mut stream, _) = StemStream::open(&path, &opts(48_000, 2, None)).unwrap();
    let mut buf = vec![vec![0.0; 4096]; 2];
    let mut slices: Vec<&mut [f64]> = buf.iter_mut().map(|b| b.as_mut_slice()).collect();
    let err = (0..10)
        .find_map(|_| stream.read_block(&mut slices, 4096).err())
        .expect("the truncation is reported");
    assert!(
        matches!(
            err,
            DecodeError::Truncated {
                expected: 10_000,
                got: 6000,
                ..
            }
        ),
        "{err:?}"
    );
}

/// Stems many times longer than the decoder's read-ahead in every integer width, mono and
/// stereo: blocks of odd sizes that straddle two reads, and a seek back and forth, all
/// bit-exact.
#[test]
fn stems_over_many_windows_decode_bit_exact_and_seek() {
    let dir = tempdir();
    for (bits, channels) in [(24u16, 2u16), (24, 1), (16, 2), (32, 1)] {
        let frames = 3 * 1024 * 1024 / (usize::from(bits / 8) * usize::from(channels)) + 17;
        let ints = full_range_ints(frames, channels.into(), bits.into(), 77 + u64::from(bits));
        let path = dir.path().join(format!("long{bits}x{channels}.wav"));
        write_wav_int(&path, &ints, channels, bits, 48_000);
        let want: Vec<Vec<f64>> = planar(&ints, channels.into())
            .into_iter()
            .map(|p| p.into_iter().map(|x| int_to_f64(x, bits.into())).collect())
            .collect();
        for block in [4097, 1000] {
            let (_, got) = decode_all(&path, block).unwrap();
            assert_bit_exact(&got, &want);
        }
        // Seek near the end, back to the start, and to the middle.
        let mut dec = Decoder::open(&path).unwrap();
        let mut buf = vec![vec![0.0; 333]; channels.into()];
        for at in [frames - 1000, 5, frames / 2 + 1] {
            assert!(dec.seek(at as u64).unwrap());
            let mut slices: Vec<&mut [f64]> = buf.iter_mut().map(|b| b.as_mut_slice()).collect();
            let n = dec.read(&mut slices, 333).unwrap();
            assert_eq!(n, 333.min(frames - at));
            for (b, w) in buf.iter().zip(&want) {
                assert_eq!(&b[..n], &w[at..at + n], "{bits}-bit x{channels} at {at}");
            }
        }
    }
}

/// Another program truncating a stem while it is read stops the read with an error naming the
/// file: every frame handed out before is the file's (none made up, no silence), and the frames
/// counted are those the file held when the reader reached its new end.
#[test]
fn a_stem_truncated_while_it_is_read_is_an_error_not_a_crash() {
    let dir = tempdir();
    let path = dir.path().join("shrinking.wav");
    let frames = 600_000; // 3.6 MB: many reads
    write_wav_24(&path, &[vec![0.25; frames], vec![-0.25; frames]], 48_000);
    let header = std::fs::metadata(&path).unwrap().len() - 6 * frames as u64;
    for cut_at in [100_000u64, 400_000] {
        let mut dec = Decoder::open(&path).unwrap();
        let mut buf = vec![vec![0.0; 4096]; 2];
        let mut read = 0u64;
        let mut cut = false;
        let err = loop {
            if !cut && read >= 90_000 {
                // Near the frames read ahead now (100 000) or past them (400 000).
                let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
                f.set_len(header + 6 * cut_at).unwrap();
                cut = true;
            }
            let mut slices: Vec<&mut [f64]> = buf.iter_mut().map(|b| b.as_mut_slice()).collect();
            match dec.read(&mut slices, 4096) {
                Ok(0) => panic!("cut at {cut_at}: the read ended without an error"),
                Ok(n) => {
                    assert!(
                        buf[0][..n].iter().all(|&x| x == 0.25)
                            && buf[1][..n].iter().all(|&x| x == -0.25),
                        "cut at {cut_at}: frames {read}.. are not the file's"
                    );
                    read += n as u64;
                }
                Err(e) => break e,
            }
        };
        drop(dec);
        // Frames already read ahead when the file was cut are the file's as it was.
        assert!(
            (cut_at..cut_at + 100_000).contains(&read),
            "cut at {cut_at}: {read} frames read"
        );
        match &err {
            DecodeError::Truncated { expected, got, .. } => {
                assert_eq!((*expected, *got), (frames as u64, read), "cut at {cut_at}")
            }
            other => panic!("cut at {cut_at}: {other:?}"),
        }
        let text = err.to_string();
        assert!(
            text.contains("shrinking.wav") && text.contains("truncated"),
            "{text}"
        );
        write_wav_24(&path, &[vec![0.25; frames], vec![-0.25; frames]], 48_000);
    }
}

#[test]
fn truncated_flac_and_aiff_are_errors() {
    let dir = tempdir();
    let ints = musical_ints(8 * 4096, 2, 16, 5);
    let flac = flac_bytes(&ints, 2, 16, 44_100);
    let aiff = aiff_bytes(&ints, 2, 16, 44_100);
    for (name, bytes) in [("cut.flac", flac), ("cut.aiff", aiff)] {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let err = read_until_error(&path).unwrap_err();
        assert!(
            matches!(
                err,
                DecodeError::Truncated {
                    expected: 32_768,
                    ..
                }
            ),
            "{name}: {err:?}"
        );
        assert!(err.to_string().contains(name), "{err}");
    }
}

#[test]
fn random_bytes_and_text_are_errors_naming_the_file() {
    let dir = tempdir();
    let mut rng = Rng(12345);
    let noise: Vec<u8> = (0..65_536).map(|_| rng.next() as u8).collect();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("noise.wav", noise.clone()),
        ("noise.bin", noise.clone()),
        (
            "notes.txt",
            b"Mix notes: vocals up 1 dB in the chorus.\n".repeat(200),
        ),
        ("empty.wav", Vec::new()),
        ("header_only.wav", b"RIFF\x24\x00\x00\x00WAVEfmt ".to_vec()),
        (
            "zero_channels.wav",
            [
                &b"RIFF\x28\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x00\x00"[..],
                &48_000u32.to_le_bytes(),
                &[0; 4],
                &b"\x00\x00\x10\x00data\x04\x00\x00\x00\x00\x00\x00\x00"[..],
            ]
            .concat(),
        ),
    ];
    for (name, bytes) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let err = read_until_error(&path).unwrap_err();
        assert!(
            matches!(
                err,
                DecodeError::Unsupported { .. } | DecodeError::Corrupt { .. }
            ),
            "{name}: {err:?}"
        );
        assert!(err.to_string().contains(name), "{name}: {err}");
    }
}

#[test]
fn random_bytes_named_like_lossy_files_do_not_panic() {
    let dir = tempdir();
    for seed in 1..=4u64 {
        let mut rng = Rng(seed * 7919);
        let noise: Vec<u8> = (0..100_000).map(|_| rng.next() as u8).collect();
        for ext in ["mp3", "ogg", "flac", "aiff"] {
            let path = dir.path().join(format!("noise{seed}.{ext}"));
            std::fs::write(&path, &noise).unwrap();
            // Any outcome but a panic is acceptable; an error must name the file.
            if let Err(e) = read_until_error(&path) {
                assert!(e.to_string().contains(&format!("noise{seed}.{ext}")), "{e}");
            }
        }
    }
}

#[test]
fn damaged_lossy_fixtures_do_not_panic() {
    let dir = tempdir();
    for name in ["tone.mp3", "tone.ogg"] {
        let mut bytes = std::fs::read(fixture(name)).unwrap();
        let mut rng = Rng(31);
        for _ in 0..200 {
            let i = 200 + (rng.next() as usize) % (bytes.len() - 200);
            bytes[i] = rng.next() as u8;
        }
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        if let Err(e) = read_until_error(&path) {
            assert!(e.to_string().contains(name), "{e}");
        }
    }
}

#[test]
fn missing_file_is_an_open_error_naming_the_path() {
    let path = Path::new("/nonexistent/stems/drums.wav");
    let err = Decoder::open(path).err().unwrap();
    assert!(matches!(err, DecodeError::Open { .. }), "{err:?}");
    assert!(
        err.to_string().contains("/nonexistent/stems/drums.wav"),
        "{err}"
    );
    let err = StemStream::open(path, &opts(48_000, 2, None))
        .err()
        .unwrap();
    assert!(err.to_string().contains("drums.wav"), "{err}");
}

#[test]
fn unusable_options_are_errors() {
    let dir = tempdir();
    let path = dir.path().join("ok.wav");
    write_wav_24(&path, &[vec![0.0; 10]], 48_000);
    for o in [
        opts(0, 2, None),
        opts(48_000, 3, None),
        opts(48_000, 0, None),
    ] {
        let err = StemStream::open(&path, &o).err().unwrap();
        assert!(matches!(err, DecodeError::InvalidOptions { .. }), "{err:?}");
    }
}

#[test]
fn decoders_and_streams_can_move_to_another_thread() {
    fn assert_send<T: Send>() {}
    assert_send::<Decoder>();
    assert_send::<StemStream>();
    assert_send::<DecodeError>();
}
