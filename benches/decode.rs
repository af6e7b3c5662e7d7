//! Decode speed: frames per second of a 24-bit stereo 48 kHz WAV through the fast PCM path
//! ([`Decoder`] and [`StemStream`]), compared with symphonia's own WAV path, plus FLAC and a
//! 44.1 → 48 kHz resampled stream for scale. Criterion reports time per iteration and
//! elements (frames) per second; ns/frame = 1e9 / (frames per second).
//!
//! Run: `cargo bench --bench decode`.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use stemgraph::io::decode::{Decoder, StemStream, StreamOptions};
use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

/// Frames in the benchmark file: 10 s at 48 kHz.
const FRAMES: usize = 480_000;
/// Frames per read, as a render would ask for.
const BLOCK: usize = 4096;

/// Writes a 24-bit stereo WAV of a non-trivial signal (so nothing is all zeros).
fn write_wav(path: &Path, rate: u32) {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: rate,
        bits_per_sample: 24,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    let mut x: u32 = 1;
    for i in 0..FRAMES {
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let s = ((i as f64 * 0.05).sin() * 4_000_000.0) as i32 + (x >> 20) as i32;
        w.write_sample(s).unwrap();
        w.write_sample(-s).unwrap();
    }
    w.finalize().unwrap();
}

/// Decodes a whole file with [`Decoder`]; returns a checksum so nothing is optimised away.
fn decode_file(path: &Path) -> f64 {
    let mut dec = Decoder::open(path).unwrap();
    let mut buf = vec![vec![0.0; BLOCK]; dec.info().channels];
    let mut sum = 0.0;
    loop {
        let mut slices: Vec<&mut [f64]> = buf.iter_mut().map(|b| b.as_mut_slice()).collect();
        let n = dec.read(&mut slices, BLOCK).unwrap();
        if n == 0 {
            return sum;
        }
        sum += buf[0][n - 1] + buf[1][0];
    }
}

/// Reads a whole file through a [`StemStream`] at `rate`.
fn stream_file(path: &Path, rate: u32, frames: usize) -> f64 {
    let opts = StreamOptions {
        target_rate: rate,
        target_channels: 2,
        length_frames: None,
    };
    let (mut stream, _) = StemStream::open(path, &opts).unwrap();
    let mut buf = vec![vec![0.0; BLOCK]; 2];
    let mut slices: Vec<&mut [f64]> = buf.iter_mut().map(|b| b.as_mut_slice()).collect();
    let mut sum = 0.0;
    let mut done = 0;
    while done < frames {
        let n = BLOCK.min(frames - done);
        stream.read_block(&mut slices, n).unwrap();
        sum += slices[0][n - 1];
        done += n;
    }
    sum
}

/// Decodes a whole file with symphonia directly (its WAV reader and PCM decoder, converting to
/// planar f64), for comparison with the fast path.
fn symphonia_file(path: &Path) -> f64 {
    let file = std::fs::File::open(path).unwrap();
    let mss = MediaSourceStream::new(Box::new(file), Default::default());
    let mut reader = symphonia::default::get_probe()
        .probe(
            &Hint::new(),
            mss,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .unwrap();
    let track = reader.default_track(TrackType::Audio).unwrap();
    let params = track
        .codec_params
        .as_ref()
        .unwrap()
        .audio()
        .unwrap()
        .clone();
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(&params, &AudioDecoderOptions::default())
        .unwrap();
    let mut planes: Vec<Vec<f64>> = vec![Vec::new(); 2];
    let mut sum = 0.0;
    while let Some(packet) = reader.next_packet().unwrap() {
        let decoded = decoder.decode(&packet).unwrap();
        decoded.copy_to_vecs_planar(&mut planes);
        sum += planes[0][0];
    }
    sum
}

fn bench_decode(c: &mut Criterion) {
    // The AVX2 builds, as the command line runs them (meters decide for themselves).
    stemgraph::dsp::simd::init();
    let dir = tempfile::tempdir().unwrap();
    let wav48 = dir.path().join("stem48k.wav");
    let wav44 = dir.path().join("stem44k1.wav");
    write_wav(&wav48, 48_000);
    write_wav(&wav44, 44_100);

    let mut group = c.benchmark_group("decode_24bit_stereo_10s");
    group.throughput(Throughput::Elements(FRAMES as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(4));
    group.bench_function("decoder_wav", |b| b.iter(|| black_box(decode_file(&wav48))));
    group.bench_function("stem_stream_wav_48k", |b| {
        b.iter(|| black_box(stream_file(&wav48, 48_000, FRAMES)))
    });
    group.bench_function("symphonia_wav_for_comparison", |b| {
        b.iter(|| black_box(symphonia_file(&wav48)))
    });
    group.bench_function("stem_stream_wav_44k1_to_48k", |b| {
        b.iter(|| black_box(stream_file(&wav44, 48_000, FRAMES * 160 / 147)))
    });
    group.finish();
}

criterion_group!(benches, bench_decode);
criterion_main!(benches);
