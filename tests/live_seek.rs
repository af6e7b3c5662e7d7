//! Seeking a stem without decoding from the file start (what the live streamer does for a seek,
//! `--from` and a loop wrap): after `StemStream::seek(p)` the stream delivers exactly the frames
//! a forward read delivers from `p` on, for plain PCM (by byte offset) and FLAC (the demuxer's
//! seek), forward and backward, inside the file, at block edges, and past its end (padding).
//! A stream that cannot seek that way (resampled, lossy) says so and has not moved.

use std::path::Path;
use stemgraph::io::decode::{StemStream, StreamOptions};

const FRAMES: usize = 5 * 4096;

/// A stereo signal with no repeats (noise plus a tone), as 24-bit integers.
fn ints(frames: usize) -> Vec<i32> {
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    let mut v = Vec::with_capacity(frames * 2);
    for i in 0..frames {
        for c in 0..2 {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            let noise = ((x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40) as f64) / 16_777_216.0 - 0.5;
            let tone = (i as f64 * 0.031 * (c + 1) as f64).sin();
            v.push(((0.3 * noise + 0.5 * tone) * 8_388_607.0) as i32);
        }
    }
    v
}

fn write_wav(path: &Path, samples: &[i32], rate: u32) {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: rate,
        bits_per_sample: 24,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for &s in samples {
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
}

fn write_flac(path: &Path, samples: &[i32]) {
    use flacenc::component::BitRepr;
    use flacenc::error::Verify;
    let config = flacenc::config::Encoder::default().into_verified().unwrap();
    let source = flacenc::source::MemSource::from_samples(samples, 2, 24, 48_000);
    let stream = flacenc::encode_with_fixed_block_size(&config, source, config.block_size).unwrap();
    let mut sink = flacenc::bitsink::ByteSink::new();
    stream.write(&mut sink).unwrap();
    std::fs::write(path, sink.as_slice()).unwrap();
}

fn open(path: &Path, length: u64) -> StemStream {
    StemStream::open(
        path,
        &StreamOptions {
            target_rate: 48_000,
            target_channels: 2,
            length_frames: Some(length),
        },
    )
    .unwrap()
    .0
}

fn read(s: &mut StemStream, n: usize) -> [Vec<f64>; 2] {
    let (mut l, mut r) = (vec![0.0; n], vec![0.0; n]);
    s.read_block(&mut [&mut l, &mut r], n).unwrap();
    [l, r]
}

/// Every seek lands on the same frames as a forward read, and the stream goes on from there.
fn check_seeks(path: &Path) {
    let length = (FRAMES + 3000) as u64; // padded past the file's end
    let forward = read(&mut open(path, length), length as usize);
    let n = 2500;
    let mut s = open(path, length);
    // Forward and backward on one stream, block edges, inside a packet, into the padding.
    for p in [
        12_345,
        4096,
        4095,
        0,
        1,
        16_383,
        17_000,
        FRAMES - 100,
        FRAMES + 10,
        777,
    ] {
        assert!(s.seek(p as u64).unwrap(), "{}: seek to {p}", path.display());
        let got = read(&mut s, n);
        for c in 0..2 {
            let want = &forward[c][p..(p + n).min(length as usize)];
            assert_eq!(
                &got[c][..want.len()],
                want,
                "{}: channel {c} after a seek to {p}",
                path.display()
            );
            assert!(got[c][want.len()..].iter().all(|&x| x == 0.0));
        }
    }
}

#[test]
fn pcm_and_flac_seek_to_exactly_the_frames_a_forward_read_gives() {
    let dir = tempfile::tempdir().unwrap();
    let samples = ints(FRAMES);
    let wav = dir.path().join("stem.wav");
    write_wav(&wav, &samples, 48_000);
    check_seeks(&wav);
    let flac = dir.path().join("stem.flac");
    write_flac(&flac, &samples);
    check_seeks(&flac);
}

#[test]
fn resampled_and_lossy_stems_refuse_and_stay_where_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("stem44.wav");
    write_wav(&wav, &ints(FRAMES), 44_100);
    let mp3 = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tone.mp3");
    for path in [wav.as_path(), mp3.as_path()] {
        let forward = read(&mut open(path, 8000), 8000);
        let mut s = open(path, 8000);
        let head = read(&mut s, 3000);
        assert!(
            !s.seek(100).unwrap(),
            "{} cannot seek exactly",
            path.display()
        );
        let rest = read(&mut s, 5000);
        assert_eq!(head[0], forward[0][..3000]);
        assert_eq!(rest[0], forward[0][3000..], "{} moved", path.display());
    }
}
