//! Reading and writing test audio, and an independent true-peak reference.

use std::path::Path;
use stemgraph::io::decode::Decoder;

/// Decodes a file (any format the product reads) into its rate and planar f64.
pub fn decode(path: &Path) -> (u32, Vec<Vec<f64>>) {
    let mut d = Decoder::open(path).unwrap();
    let info = d.info().clone();
    let mut out = vec![Vec::new(); info.channels];
    let mut bufs = vec![vec![0.0; 8192]; info.channels];
    loop {
        let n = {
            let mut s: Vec<&mut [f64]> = bufs.iter_mut().map(|b| &mut b[..]).collect();
            d.read(&mut s, 8192).unwrap()
        };
        if n == 0 {
            break;
        }
        for (o, b) in out.iter_mut().zip(&bufs) {
            o.extend_from_slice(&b[..n]);
        }
    }
    (info.sample_rate, out)
}

/// Writes planar samples as 24-bit WAV (rounded, no dither) or, with `float`, 32-bit float.
pub fn write_wav(path: &Path, ch: &[Vec<f64>], rate: u32, float: bool) {
    let spec = hound::WavSpec {
        channels: ch.len() as u16,
        sample_rate: rate,
        bits_per_sample: if float { 32 } else { 24 },
        sample_format: if float {
            hound::SampleFormat::Float
        } else {
            hound::SampleFormat::Int
        },
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for n in 0..ch[0].len() {
        for c in ch {
            if float {
                w.write_sample(c[n] as f32).unwrap();
            } else {
                let v = (c[n] * 8_388_608.0)
                    .round()
                    .clamp(-8_388_608.0, 8_388_607.0) as i32;
                w.write_sample(v).unwrap();
            }
        }
    }
    w.finalize().unwrap();
}

/// The sample peak of `x`, dBFS.
pub fn peak_db(x: &[f64]) -> f64 {
    20.0 * x
        .iter()
        .fold(0.0f64, |m, v| m.max(v.abs()))
        .max(1e-30)
        .log10()
}

/// The true peak of `x` by an independent 16× band-limited (FFT, zero-padded spectrum)
/// interpolation, in overlapping chunks whose edges are discarded, dBTP.
pub fn true_peak_16x(x: &[f64]) -> f64 {
    use realfft::RealFftPlanner;
    const N: usize = 32_768;
    const EDGE: usize = 4_096;
    const L: usize = 16;
    let mut planner = RealFftPlanner::<f64>::new();
    let fwd = planner.plan_fft_forward(N);
    let inv = planner.plan_fft_inverse(N * L);
    let mut spec = fwd.make_output_vec();
    let mut up_spec = inv.make_input_vec();
    let mut up = inv.make_output_vec();
    let mut frame = vec![0.0; N];
    let mut peak = 0.0f64;
    let hop = N - 2 * EDGE;
    let mut start: isize = -(EDGE as isize);
    while start + (EDGE as isize) < x.len() as isize {
        for (k, f) in frame.iter_mut().enumerate() {
            let i = start + k as isize;
            *f = if i >= 0 && (i as usize) < x.len() {
                x[i as usize]
            } else {
                0.0
            };
        }
        fwd.process(&mut frame, &mut spec).unwrap();
        up_spec.iter_mut().for_each(|v| *v = Default::default());
        up_spec[..N / 2].copy_from_slice(&spec[..N / 2]);
        up_spec[N / 2] = spec[N / 2] * 0.5;
        inv.process(&mut up_spec, &mut up).unwrap();
        for v in &up[EDGE * L..(N - EDGE) * L] {
            peak = peak.max((v / N as f64).abs());
        }
        start += hop as isize;
    }
    20.0 * peak.log10()
}

/// The true peak of a file over all its channels by [`true_peak_16x`], dBTP.
pub fn file_true_peak_16x(path: &Path) -> f64 {
    let (_, ch) = decode(path);
    ch.iter().map(|c| true_peak_16x(c)).fold(f64::MIN, f64::max)
}

/// Writes planar samples as a 24-bit WAV (rounded, no dither).
pub fn write_wav24(path: &Path, ch: &[Vec<f64>], rate: u32) {
    write_wav(path, ch, rate, false);
}

/// Writes planar samples as a 32-bit float WAV.
pub fn write_f32(path: &Path, ch: &[Vec<f64>], rate: u32) {
    write_wav(path, ch, rate, true);
}

/// Reads a 16/24-bit integer or 32-bit float WAV with hound (independently of the product's
/// decoder; integers scaled by 2^-(bits-1), as the decoder does): its format and planar f64.
pub fn read_wav(path: &Path) -> (hound::WavSpec, Vec<Vec<f64>>) {
    let mut r = hound::WavReader::open(path).unwrap();
    let spec = r.spec();
    let all: Vec<f64> = match spec.sample_format {
        hound::SampleFormat::Float => r.samples::<f32>().map(|x| f64::from(x.unwrap())).collect(),
        hound::SampleFormat::Int => {
            let scale = 1.0 / f64::from(1u32 << (spec.bits_per_sample - 1));
            r.samples::<i32>()
                .map(|x| f64::from(x.unwrap()) * scale)
                .collect()
        }
    };
    let ch = spec.channels as usize;
    let planes = (0..ch)
        .map(|c| all.iter().skip(c).step_by(ch).copied().collect())
        .collect();
    (spec, planes)
}
