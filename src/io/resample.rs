//! Streaming, delay-compensated sample-rate conversion.
//!
//! [`StreamResampler`] converts by FFT convolution (overlap-add): each chunk of input is
//! transformed, multiplied by a long linear-phase anti-aliasing filter (rubato's synchronous FFT
//! resampler's, a BlackmanHarris²-windowed sinc), its spectrum cut or extended to the output
//! rate's and transformed back. It turns this into a *pull* stream (the caller asks for output
//! frames and the resampler pulls input frames from a source closure as it needs them) or a
//! *push* one, and owns:
//!
//! - **delay compensation**: the filter's latency is dropped from the start of the output, so an
//!   event at input frame `t` comes out at output frame `t · to_hz / from_hz`;
//! - **exact length**: an input of `n` frames yields exactly `round(n · to_hz / from_hz)` output
//!   frames (the filter tail is flushed with silence, then the output stops);
//! - **bounded memory**: all buffers are sized in [`StreamResampler::new`]; converting never
//!   allocates.
//!
//! It computes in `f64` (the default) or in `f32` (`StreamResampler<f32>`, twice the FFT lanes),
//! which the deliverables use to convert down to a 16-bit or lossy file: its rounding noise
//! (under −122 dBFS RMS from the `f64` conversion's result going down, tested) lies some 30 dB
//! under such a file's own.
//!
//! The real FFTs are rustfft's complex ones of half the length with realfft's untangling
//! passes, vectorized ([`real_fft`]: realfft's bits; the two transforms of a chunk take about
//! 30 % less time than realfft's in `f32`). The filter design (the windowed sinc, its window
//! and cutoff) follows rubato 5's `synchro::Fft` (© 2020 Henrik Enquist, MIT licence; the
//! window's formula is the `windowfunctions` crate's, MIT): cut into rubato's FFTs, a
//! conversion gives rubato's bits (tested).

use realfft::num_complex::Complex;
use realfft::num_traits::{Float, Zero};
use realfft::FftNum;
use rubato::{calculate_cutoff, WindowFunction};
use rustfft::FftPlanner;

mod real_fft;
use real_fft::{RealForward, RealInverse};

/// The most channels a [`StreamResampler`] handles (the source closure gets one slice each).
pub const MAX_CHANNELS: usize = 8;

/// The arithmetic a [`StreamResampler`] computes in: `f32` or `f64`.
pub trait Sample: FftNum + Float {
    /// π in this type.
    const PI: Self;
    /// `x` rounded to this type.
    fn of_f64(x: f64) -> Self;
    /// `n` as this type.
    fn of_usize(n: usize) -> Self;
}

impl Sample for f32 {
    const PI: f32 = std::f32::consts::PI;
    fn of_f64(x: f64) -> f32 {
        x as f32
    }
    fn of_usize(n: usize) -> f32 {
        n as f32
    }
}

impl Sample for f64 {
    const PI: f64 = std::f64::consts::PI;
    fn of_f64(x: f64) -> f64 {
        x
    }
    fn of_usize(n: usize) -> f64 {
        n as f64
    }
}

/// Input frames the filter spans, at least (rounded up to what the rate pair allows:
/// [`filter_frames`]). A long filter gives a cutoff close to Nyquist (about 0.993 · Nyquist
/// here).
const FILTER_FRAMES: usize = 2048;

/// The filter's length in input frames for converting `from_hz` to `to_hz`: a whole number of
/// the rate pair's units (`from_hz / gcd` input frames, `to_hz / gcd` output frames), the
/// fewest making [`FILTER_FRAMES`], or the next count (up to 8 more) whose two FFT lengths
/// (twice the filter in and out) have no prime factor over 7. rustfft has vectorized
/// butterflies for 2, 3, 5 and 7 only: 48 → 44.1 kHz took 13 units, FFTs of 4160 = 2⁶·5·13 and
/// 3822 = 2·3·7²·13 frames whose scalar 13-point butterflies were half of the conversion's
/// time; 14 units (4480 = 2⁷·5·7 and 4116 = 2²·3·7³) convert about a quarter faster with a
/// longer filter. Pairs whose count was already 7-smooth (44.1 → 48 and 96 kHz: 14 units) keep
/// their length. (This is the chunk rubato's resampler was built with, one FFT block per chunk.)
fn filter_frames(from_hz: u32, to_hz: u32) -> usize {
    let (unit_in, unit_out) = units(from_hz, to_hz);
    let fewest = FILTER_FRAMES.div_ceil(unit_in);
    let units = (fewest..=fewest + 8)
        .find(|k| smooth(2 * k * unit_in) && smooth(2 * k * unit_out))
        .unwrap_or(fewest);
    units * unit_in
}

/// Whether `n` has no prime factor over 7.
fn smooth(mut n: usize) -> bool {
    for p in [2, 3, 5, 7] {
        while n % p == 0 {
            n /= p;
        }
    }
    n == 1
}

/// The rate pair's units: the fewest input and output frames spanning the same time.
fn units(from_hz: u32, to_hz: u32) -> (usize, usize) {
    let gcd = gcd(from_hz, to_hz);
    ((from_hz / gcd) as usize, (to_hz / gcd) as usize)
}

/// Greatest common divisor (Euclid).
fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// How a conversion is cut into FFTs: the filter's length, the hop (input frames per chunk)
/// and the FFT lengths, in and out.
///
/// Each chunk of `hop_in` frames is convolved with the filter (`filter_in` taps) in one FFT of
/// `fft_in ≥ hop_in + filter_in` frames, so nothing wraps around. The FFT spans the least
/// power-of-two count of the rate pair's units that is at least [`FFT_PER_FILTER`] times the
/// filter's, so its lengths have the units' prime factors and twos only: 48 ↔ 44.1 kHz with
/// the filter of 14 units takes 64 (10240 = 2¹¹·5 and 9408 = 2⁶·3·7² frames) and a hop of 50
/// (8000 frames at 48 kHz). Rubato's resampler transformed twice the filter (4480 = 2⁷·5·7 and
/// 4116 = 2²·3·7³, a hop of 14 units): per frame, the longer transforms with their fewer
/// radix-7 passes cost about 40 % less in `f32` and 35 % less in `f64`. The filter is the same;
/// the output differs from rubato's by the transforms' rounding (tested).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    /// The filter's length in input frames (the sinc's points).
    filter_in: usize,
    /// The same span in output frames.
    filter_out: usize,
    /// Input frames per chunk.
    hop_in: usize,
    /// Output frames per chunk.
    hop_out: usize,
    /// The forward FFT's length (`hop_in + filter_in`).
    fft_in: usize,
    /// The inverse FFT's length.
    fft_out: usize,
}

/// The least ratio of the FFT's span to the filter's (see [`Layout`]).
const FFT_PER_FILTER: usize = 4;

impl Layout {
    /// The layout for converting `from_hz` to `to_hz`.
    fn new(from_hz: u32, to_hz: u32) -> Layout {
        let (unit_in, unit_out) = units(from_hz, to_hz);
        let filter_units = filter_frames(from_hz, to_hz) / unit_in;
        Layout::of_units(
            (unit_in, unit_out),
            filter_units,
            (FFT_PER_FILTER * filter_units).next_power_of_two(),
        )
    }

    /// The layout of a filter of `filter_units` units and FFTs of `fft_units` units.
    fn of_units(
        (unit_in, unit_out): (usize, usize),
        filter_units: usize,
        fft_units: usize,
    ) -> Layout {
        let hop_units = fft_units - filter_units;
        Layout {
            filter_in: filter_units * unit_in,
            filter_out: filter_units * unit_out,
            hop_in: hop_units * unit_in,
            hop_out: hop_units * unit_out,
            fft_in: fft_units * unit_in,
            fft_out: fft_units * unit_out,
        }
    }
}

/// The anti-aliasing filter's taps (`filter_in` of them), as rubato 5 makes them (its
/// `synchro::FftResampler::new` and `sinc::make_sincs`): a BlackmanHarris²-windowed sinc
/// centred on tap `filter_in / 2`, its cutoff (relative to the input's Nyquist) rubato's
/// fit for the filter's length (scaled to the output's Nyquist going down), normalised to unit
/// gain at DC. Computed in `T`, the window in `f64`, in rubato's order, for rubato's bits.
fn filter_taps<T: Sample>(filter_in: usize, filter_out: usize) -> Vec<T> {
    let window = WindowFunction::BlackmanHarris2;
    let cutoff = if filter_in > filter_out {
        calculate_cutoff::<f32>(filter_out, window) * filter_out as f32 / filter_in as f32
    } else {
        calculate_cutoff::<f32>(filter_in, window)
    };
    let sinc = |x: T| {
        if x == T::zero() {
            T::one()
        } else {
            (x * T::PI).sin() / (x * T::PI)
        }
    };
    // The periodic Blackman-Harris window (windowfunctions' cosine family, its fifth term
    // zero), squared in `T`.
    let len = filter_in as f64;
    let two_pi = 2.0 * std::f64::consts::PI;
    let four_pi = 4.0 * std::f64::consts::PI;
    let six_pi = 6.0 * std::f64::consts::PI;
    let mut sum = T::zero();
    let mut taps: Vec<T> = (0..filter_in)
        .map(|n| {
            let x = n as f64;
            let w = 0.35875 - 0.48829 * (two_pi * x / len).cos()
                + 0.14128 * (four_pi * x / len).cos()
                - 0.01168 * (six_pi * x / len).cos();
            let w = T::of_f64(w);
            let arg = (T::of_usize(n) - T::of_usize(filter_in / 2)) * T::of_f64(f64::from(cutoff))
                / T::one();
            let tap = w * w * sinc(arg);
            sum = sum + tap;
            tap
        })
        .collect();
    for tap in &mut taps {
        *tap = *tap / sum;
    }
    taps
}

/// Why a resampler could not be built or run.
#[derive(Debug, thiserror::Error)]
pub enum ResampleError {
    /// The rate pair or channel count is not usable.
    #[error("cannot resample from {from_hz} Hz to {to_hz} Hz with {channels} channels: {reason}")]
    Construction {
        /// Input rate.
        from_hz: u32,
        /// Output rate.
        to_hz: u32,
        /// Channel count asked for.
        channels: usize,
        /// What was wrong.
        reason: String,
    },
}

/// The output length for an input of `frames` frames: `round(frames · to_hz / from_hz)`.
pub fn resampled_len(frames: u64, from_hz: u32, to_hz: u32) -> u64 {
    let num = u128::from(frames) * u128::from(to_hz);
    let den = u128::from(from_hz);
    ((num + den / 2) / den) as u64
}

impl StreamResampler {
    /// The output length for an input of `frames` frames ([`resampled_len`]).
    pub fn output_len_for(frames: u64, from_hz: u32, to_hz: u32) -> u64 {
        resampled_len(frames, from_hz, to_hz)
    }
}

/// The FFT convolution of one chunk at a time, every channel: the planned transforms, the
/// filter's spectrum and the scratch they share.
struct Convolver<T> {
    layout: Layout,
    forward: RealForward<T>,
    inverse: RealInverse<T>,
    /// The filter's spectrum, its first `kept` bins: those the output spectrum takes.
    filter: Vec<Complex<T>>,
    /// The input chunk's spectrum (`fft_in / 2 + 1` bins).
    spectrum_in: Vec<Complex<T>>,
    /// The output's spectrum (`fft_out / 2 + 1` bins): the filtered input's first `kept` bins,
    /// zeros above.
    spectrum_out: Vec<Complex<T>>,
    /// Scratch for either transform.
    scratch: Vec<Complex<T>>,
}

/// `samples` as complex values, each two consecutive samples (the layout the real FFTs take
/// and give).
fn as_complex<T>(samples: &mut [T]) -> &mut [Complex<T>] {
    assert!(samples.len() % 2 == 0, "an even count of samples");
    // SAFETY: `Complex<T>` is `#[repr(C)]` of two `T` (its `re` then its `im`): the same size
    // and alignment as two consecutive `T`s; the new slice covers the same memory, borrowed
    // mutably for the same lifetime.
    unsafe { std::slice::from_raw_parts_mut(samples.as_mut_ptr().cast(), samples.len() / 2) }
}

impl<T: Sample> Convolver<T> {
    fn new(layout: Layout) -> Convolver<T> {
        let mut planner = FftPlanner::<T>::new();
        let forward = RealForward::new(layout.fft_in, &mut planner);
        let inverse = RealInverse::new(layout.fft_out, &mut planner);
        // Going down the output keeps the input's bins below its own Nyquist (whose bin is
        // zero); going up it keeps all of the input's, Nyquist's included.
        let kept = if layout.fft_in < layout.fft_out {
            layout.fft_in / 2 + 1
        } else {
            layout.fft_out / 2
        };
        // The taps scaled by 1 / fft_in: the two unnormalised transforms' gain.
        let mut taps = vec![T::zero(); layout.fft_in];
        let scale = T::of_usize(layout.fft_in);
        for (t, &tap) in taps
            .iter_mut()
            .zip(&filter_taps::<T>(layout.filter_in, layout.filter_out))
        {
            *t = tap / scale;
        }
        let mut scratch = vec![Complex::zero(); forward.scratch_len().max(inverse.scratch_len())];
        let mut filter = vec![Complex::zero(); layout.fft_in / 2 + 1];
        forward.process(as_complex(&mut taps), &mut filter, &mut scratch);
        filter.truncate(kept);
        Convolver {
            layout,
            forward,
            inverse,
            filter,
            spectrum_in: vec![Complex::zero(); layout.fft_in / 2 + 1],
            spectrum_out: vec![Complex::zero(); layout.fft_out / 2 + 1],
            scratch,
        }
    }

    /// Convolves one channel's chunk: `input` holds the chunk's `hop_in` frames and silence
    /// after them up to its `fft_in` (the transform leaves it garbage); `output` (`fft_out`
    /// frames) receives the chunk's first `hop_out` frames of output, the earlier chunks'
    /// tails `overlap` (`fft_out − hop_out` frames) added, and `overlap` takes this chunk's
    /// tail.
    fn convolve(&mut self, input: &mut [T], output: &mut [T], overlap: &mut [T]) {
        let Layout {
            hop_in, hop_out, ..
        } = self.layout;
        debug_assert!(input[hop_in..].iter().all(|x| x.is_zero()));
        self.forward
            .process(as_complex(input), &mut self.spectrum_in, &mut self.scratch);
        let kept = self.filter.len();
        for ((out, &x), &h) in self.spectrum_out[..kept]
            .iter_mut()
            .zip(&self.spectrum_in[..kept])
            .zip(&self.filter)
        {
            // rubato's order of operations (`Complex`'s `MulAssign`), for its bits.
            *out = Complex {
                re: x.re * h.re - x.im * h.im,
                im: x.im * h.re + x.re * h.im,
            };
        }
        self.spectrum_out[kept..].fill(Complex::zero());
        self.inverse.process(
            &mut self.spectrum_out,
            as_complex(output),
            &mut self.scratch,
        );
        let (head, tail) = output.split_at_mut(hop_out);
        for ((y, carried), next) in head.iter_mut().zip(overlap.iter_mut()).zip(tail) {
            *y = *y + *carried;
            *carried = *next;
        }
    }
}

/// A pull-style streaming resampler with delay compensation and exact output length.
pub struct StreamResampler<T: Sample = f64> {
    convolver: Convolver<T>,
    channels: usize,
    from_hz: u32,
    to_hz: u32,
    /// Input chunk being gathered from the source, per channel (its first `hop_in` frames;
    /// the FFT's input, `fft_in` long).
    input: Vec<Vec<T>>,
    input_fill: usize,
    /// Last processed output chunk per channel (its first `hop_out` frames; the inverse
    /// FFT's output, `fft_out` long) and the read position in it.
    output: Vec<Vec<T>>,
    output_pos: usize,
    output_len: usize,
    /// The tails of the chunks processed so far, to add to the next (`fft_out − hop_out`
    /// frames per channel).
    overlap: Vec<Vec<T>>,
    /// Output frames still to drop to compensate the filter delay.
    delay_left: usize,
    /// Input frames taken from the source so far.
    frames_in: u64,
    /// Output frames handed out so far.
    frames_out: u64,
    /// Total output length, known once the source has ended.
    out_total: Option<u64>,
}

impl<T: Sample> StreamResampler<T> {
    /// Builds a resampler from `from_hz` to `to_hz` for `channels` channels (1..=[`MAX_CHANNELS`]).
    /// Allocates every buffer it will use.
    pub fn new(from_hz: u32, to_hz: u32, channels: usize) -> Result<Self, ResampleError> {
        let fail = |reason: String| ResampleError::Construction {
            from_hz,
            to_hz,
            channels,
            reason,
        };
        if channels == 0 || channels > MAX_CHANNELS {
            return Err(fail(format!("channels must be 1 to {MAX_CHANNELS}")));
        }
        if from_hz == 0 || to_hz == 0 {
            return Err(fail("sample rates must be positive".into()));
        }
        Ok(Self::with_layout(
            from_hz,
            to_hz,
            channels,
            Layout::new(from_hz, to_hz),
        ))
    }

    /// A resampler cutting the conversion into FFTs as `layout` says.
    fn with_layout(from_hz: u32, to_hz: u32, channels: usize, layout: Layout) -> Self {
        StreamResampler {
            convolver: Convolver::new(layout),
            channels,
            from_hz,
            to_hz,
            input: vec![vec![T::zero(); layout.fft_in]; channels],
            input_fill: 0,
            output: vec![vec![T::zero(); layout.fft_out]; channels],
            output_pos: 0,
            output_len: 0,
            overlap: vec![vec![T::zero(); layout.fft_out - layout.hop_out]; channels],
            // The filter's centre, in output frames.
            delay_left: layout.filter_out / 2,
            frames_in: 0,
            frames_out: 0,
            out_total: None,
        }
    }

    /// Number of channels.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// The input rate, the output rate and the channel count it was built for.
    pub fn rates_and_channels(&self) -> (u32, u32, usize) {
        (self.from_hz, self.to_hz, self.channels)
    }

    /// Fills up to `frames` frames of `out` (one slice per channel, each at least `frames` long)
    /// and returns how many it wrote; fewer than `frames` only once the output is complete
    /// (0 after that).
    ///
    /// `source(buffers, n)` must write up to `n` frames of input into `buffers` (one slice per
    /// channel, each exactly `n` long) and return how many it wrote, 0 meaning the input ended.
    ///
    /// # Panics
    /// If `out` has the wrong number of channels or a slice shorter than `frames`.
    pub fn read<E, F>(
        &mut self,
        out: &mut [&mut [T]],
        frames: usize,
        mut source: F,
    ) -> Result<usize, E>
    where
        E: From<ResampleError>,
        F: FnMut(&mut [&mut [T]], usize) -> Result<usize, E>,
    {
        assert_eq!(out.len(), self.channels, "one output slice per channel");
        let mut written = 0;
        while written < frames {
            let left_total = match self.out_total {
                Some(total) if self.frames_out >= total => break,
                Some(total) => total - self.frames_out,
                None => u64::MAX,
            };
            if self.output_pos == self.output_len {
                self.process_chunk(&mut source)?;
                continue;
            }
            let n = (frames - written)
                .min(self.output_len - self.output_pos)
                .min(usize::try_from(left_total).unwrap_or(usize::MAX));
            for (dst, src) in out.iter_mut().zip(&self.output) {
                dst[written..written + n]
                    .copy_from_slice(&src[self.output_pos..self.output_pos + n]);
            }
            self.output_pos += n;
            self.frames_out += n as u64;
            written += n;
        }
        Ok(written)
    }

    /// Takes `frames` frames of input (one slice per channel, each sample mapped through `map`
    /// first) and hands every output frame they complete to `emit(planes, n)` (one slice per
    /// channel, `n` frames each, possibly in several calls): the push form of
    /// [`StreamResampler::read`], for a producer that cannot be pulled from. Fed the same
    /// input, the output is the same, bit for bit, however the input is cut into pushes. Call
    /// [`StreamResampler::end`] after the last push. Allocates nothing.
    ///
    /// # Panics
    /// If `input` has the wrong number of channels or a slice shorter than `frames`, or after
    /// [`StreamResampler::end`].
    pub fn push<E, F>(
        &mut self,
        input: &[&[f64]],
        frames: usize,
        map: impl Fn(f64) -> T,
        mut emit: F,
    ) -> Result<(), E>
    where
        E: From<ResampleError>,
        F: FnMut(&[&[T]], usize) -> Result<(), E>,
    {
        assert_eq!(input.len(), self.channels, "one input slice per channel");
        assert!(self.out_total.is_none(), "pushed after the end");
        let chunk_in = self.convolver.layout.hop_in;
        let mut at = 0;
        while at < frames {
            let n = (frames - at).min(chunk_in - self.input_fill);
            for (plane, src) in self.input.iter_mut().zip(input) {
                for (d, &x) in plane[self.input_fill..self.input_fill + n]
                    .iter_mut()
                    .zip(&src[at..at + n])
                {
                    *d = map(x);
                }
            }
            self.input_fill += n;
            self.frames_in += n as u64;
            at += n;
            if self.input_fill == chunk_in {
                self.run_chunk();
                self.emit_output(&mut emit)?;
            }
        }
        Ok(())
    }

    /// Ends the input of [`StreamResampler::push`]: flushes the filter and hands the rest of
    /// the output to `emit`, up to exactly `round(frames pushed · to_hz / from_hz)` frames in
    /// all.
    pub fn end<E, F>(&mut self, mut emit: F) -> Result<(), E>
    where
        E: From<ResampleError>,
        F: FnMut(&[&[T]], usize) -> Result<(), E>,
    {
        let total =
            *self
                .out_total
                .get_or_insert(resampled_len(self.frames_in, self.from_hz, self.to_hz));
        while self.frames_out < total {
            self.run_chunk();
            self.emit_output(&mut emit)?;
        }
        Ok(())
    }

    /// Hands what is left of the output chunk to `emit` (no more than the total length, once
    /// it is known).
    fn emit_output<E, F>(&mut self, emit: &mut F) -> Result<(), E>
    where
        F: FnMut(&[&[T]], usize) -> Result<(), E>,
    {
        let left_total = match self.out_total {
            Some(total) => total.saturating_sub(self.frames_out),
            None => u64::MAX,
        };
        let n = (self.output_len - self.output_pos)
            .min(usize::try_from(left_total).unwrap_or(usize::MAX));
        if n == 0 {
            return Ok(());
        }
        let mut planes: [&[T]; MAX_CHANNELS] = Default::default();
        for (slot, plane) in planes.iter_mut().zip(&self.output) {
            *slot = &plane[self.output_pos..self.output_pos + n];
        }
        emit(&planes[..self.channels], n)?;
        self.output_pos += n;
        self.frames_out += n as u64;
        Ok(())
    }

    /// Gathers one input chunk from the source (or silence once it has ended), resamples it into
    /// the output buffer and drops what is left of the filter delay.
    fn process_chunk<E, F>(&mut self, source: &mut F) -> Result<(), E>
    where
        E: From<ResampleError>,
        F: FnMut(&mut [&mut [T]], usize) -> Result<usize, E>,
    {
        if self.out_total.is_none() {
            self.fill_input(source)?;
        }
        self.run_chunk();
        Ok(())
    }

    /// Resamples the input chunk gathered (its first `input_fill` frames, silence after them)
    /// into the output buffer and drops what is left of the filter delay.
    fn run_chunk(&mut self) {
        let fill = self.input_fill;
        for ((input, output), overlap) in self
            .input
            .iter_mut()
            .zip(&mut self.output)
            .zip(&mut self.overlap)
        {
            input[fill..].fill(T::zero());
            self.convolver.convolve(input, output, overlap);
        }
        let produced = self.convolver.layout.hop_out;
        self.input_fill = 0;
        let skip = self.delay_left.min(produced);
        self.delay_left -= skip;
        self.output_pos = skip;
        self.output_len = produced;
    }

    /// Pulls input frames until the chunk is full or the source ends; at the end it fixes the
    /// total output length.
    fn fill_input<E, F>(&mut self, source: &mut F) -> Result<(), E>
    where
        F: FnMut(&mut [&mut [T]], usize) -> Result<usize, E>,
    {
        let chunk_in = self.convolver.layout.hop_in;
        while self.input_fill < chunk_in {
            let want = chunk_in - self.input_fill;
            let mut slices: [&mut [T]; MAX_CHANNELS] = Default::default();
            for (slot, plane) in slices.iter_mut().zip(self.input.iter_mut()) {
                *slot = &mut plane[self.input_fill..chunk_in];
            }
            let got = source(&mut slices[..self.channels], want)?;
            if got == 0 {
                self.out_total = Some(resampled_len(self.frames_in, self.from_hz, self.to_hz));
                break;
            }
            self.input_fill += got.min(want);
            self.frames_in += got.min(want) as u64;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic stereo signal: two detuned sines and a little noise.
    fn signal(frames: usize) -> Vec<Vec<f64>> {
        let mut seed = 0x1234_5678_u64;
        (0..2)
            .map(|c| {
                (0..frames)
                    .map(|i| {
                        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                        let noise = (seed >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
                        0.6 * (i as f64 * (0.013 + 0.004 * c as f64)).sin() + 0.05 * noise
                    })
                    .collect()
            })
            .collect()
    }

    /// [`signal`] raised to near full scale (peaks about 0.9).
    fn near_full_scale(frames: usize) -> Vec<Vec<f64>> {
        signal(frames)
            .into_iter()
            .map(|p| p.into_iter().map(|x| 1.4 * x).collect())
            .collect()
    }

    /// Everything `read` gives for `input`, pulled in reads of `step` frames.
    fn pulled(from: u32, to: u32, input: &[Vec<f64>], step: usize) -> Vec<Vec<f64>> {
        let mut r = StreamResampler::new(from, to, 2).unwrap();
        let mut out = vec![Vec::new(), Vec::new()];
        let mut pos = 0;
        let mut buf = vec![vec![0.0; step]; 2];
        loop {
            let (a, b) = buf.split_at_mut(1);
            let got = r
                .read::<ResampleError, _>(&mut [&mut a[0], &mut b[0]], step, |bufs, n| {
                    let m = n.min(input[0].len() - pos).min(777);
                    for (d, s) in bufs.iter_mut().zip(input) {
                        d[..m].copy_from_slice(&s[pos..pos + m]);
                    }
                    pos += m;
                    Ok(m)
                })
                .unwrap();
            for (o, b) in out.iter_mut().zip(&buf) {
                o.extend_from_slice(&b[..got]);
            }
            if got < step {
                return out;
            }
        }
    }

    /// Everything `push` and `end` give for `input`, pushed in pieces of `step` frames.
    fn pushed(from: u32, to: u32, input: &[Vec<f64>], step: usize) -> Vec<Vec<f64>> {
        let mut r = StreamResampler::new(from, to, 2).unwrap();
        let mut out = vec![Vec::new(), Vec::new()];
        let mut take = |planes: &[&[f64]], n: usize| -> Result<(), ResampleError> {
            for (o, p) in out.iter_mut().zip(planes) {
                assert_eq!(p.len(), n);
                o.extend_from_slice(p);
            }
            Ok(())
        };
        let mut at = 0;
        while at < input[0].len() {
            let n = step.min(input[0].len() - at);
            let planes = [&input[0][at..at + n], &input[1][at..at + n]];
            r.push(&planes, n, |x| x, &mut take).unwrap();
            at += n;
        }
        r.end(&mut take).unwrap();
        out
    }

    /// What rubato's synchronous FFT resampler (`rubato::Fft`, BlackmanHarris², one FFT block
    /// per chunk of [`filter_frames`]) gives for `input`, its delay dropped and its length
    /// `round(frames · to / from)`: how this module converted before it owned the convolution.
    fn rubato_converted<T>(from: u32, to: u32, input: &[Vec<f64>]) -> Vec<Vec<T>>
    where
        T: Sample + rubato::Sample,
    {
        use rubato::audioadapter_buffers::direct::SequentialSliceOfVecs;
        use rubato::{Fft, FixedSync, Resampler};
        let channels = input.len();
        let mut fft = Fft::<T>::new_custom(
            from as usize,
            to as usize,
            filter_frames(from, to),
            1,
            channels,
            WindowFunction::BlackmanHarris2,
            FixedSync::Both,
        )
        .unwrap();
        let (chunk_in, chunk_out) = (fft.input_frames_max(), fft.output_frames_max());
        let frames = input[0].len();
        let want = fft.output_delay() + resampled_len(frames as u64, from, to) as usize;
        let mut out = vec![Vec::new(); channels];
        let mut at = 0;
        while out[0].len() < want {
            let chunk: Vec<Vec<T>> = input
                .iter()
                .map(|p| {
                    (at..at + chunk_in)
                        .map(|i| p.get(i).map_or(T::zero(), |&x| T::of_f64(x)))
                        .collect()
                })
                .collect();
            at += chunk_in;
            let mut produced = vec![vec![T::zero(); chunk_out]; channels];
            let adapter_in = SequentialSliceOfVecs::new(&chunk, channels, chunk_in).unwrap();
            let mut adapter_out =
                SequentialSliceOfVecs::new_mut(&mut produced, channels, chunk_out).unwrap();
            fft.process_into_buffer(&adapter_in, &mut adapter_out, None)
                .unwrap();
            for (o, p) in out.iter_mut().zip(&produced) {
                o.extend_from_slice(p);
            }
        }
        out.into_iter()
            .map(|o| o[fft.output_delay()..want].to_vec())
            .collect()
    }

    /// Everything a resampler gives for `input` (mapped to `T` by `map`), pushed whole.
    fn converted<T: Sample>(
        mut r: StreamResampler<T>,
        input: &[Vec<f64>],
        map: impl Fn(f64) -> T,
    ) -> Vec<Vec<T>> {
        let mut out = vec![Vec::new(); input.len()];
        let mut take = |planes: &[&[T]], _n: usize| -> Result<(), ResampleError> {
            for (o, p) in out.iter_mut().zip(planes) {
                o.extend_from_slice(p);
            }
            Ok(())
        };
        let planes: Vec<&[f64]> = input.iter().map(|p| &p[..]).collect();
        r.push(&planes, input[0].len(), map, &mut take).unwrap();
        r.end(&mut take).unwrap();
        out
    }

    /// Rubato's layout: one FFT of twice the filter per chunk of the filter's length.
    fn rubatos_layout(from: u32, to: u32) -> Layout {
        let units = units(from, to);
        let filter_units = filter_frames(from, to) / units.0;
        Layout::of_units(units, filter_units, 2 * filter_units)
    }

    const PAIRS: [(u32, u32); 4] = [
        (48_000, 44_100),
        (44_100, 48_000),
        (44_100, 96_000),
        (96_000, 44_100),
    ];

    #[test]
    fn rubatos_layout_gives_rubatos_bits() {
        let input = signal(30_001);
        for (from, to) in PAIRS {
            let layout = rubatos_layout(from, to);
            let r = StreamResampler::<f64>::with_layout(from, to, 2, layout);
            let want = rubato_converted::<f64>(from, to, &input);
            assert!(
                converted(r, &input, |x| x) == want,
                "{from} -> {to} Hz, f64"
            );
            let r = StreamResampler::<f32>::with_layout(from, to, 2, layout);
            let want = rubato_converted::<f32>(from, to, &input);
            assert!(
                converted(r, &input, |x| x as f32) == want,
                "{from} -> {to} Hz, f32"
            );
        }
    }

    /// Peak and RMS of `a − b` in dBFS.
    fn difference_db<T: Sample>(a: &[Vec<T>], b: &[Vec<T>]) -> (f64, f64) {
        let diffs = || {
            a.iter()
                .flatten()
                .zip(b.iter().flatten())
                .map(|(x, y)| (*x - *y).to_f64().unwrap())
        };
        let peak = diffs().fold(0.0f64, |m, d| m.max(d.abs()));
        let mean_sq = diffs().map(|d| d * d).sum::<f64>() / diffs().count() as f64;
        (20.0 * peak.log10(), 10.0 * mean_sq.log10())
    }

    /// The longer FFTs (and their longer hop) convolve with the same filter as rubato's layout:
    /// the two differ by their rounding alone, near full scale under −180 dBFS at the peak and
    /// −195 dBFS RMS in `f64` (measured −195/−210), under −115 and −128 dBFS in `f32`
    /// (measured −122/−135: the `f32` conversion's own noise, as far from the `f64` one).
    #[test]
    fn longer_ffts_differ_from_rubatos_layout_by_rounding() {
        let input = near_full_scale(60_001);
        for (from, to) in PAIRS {
            let layout = rubatos_layout(from, to);
            assert_ne!(layout, Layout::new(from, to));
            let ours = converted(
                StreamResampler::<f64>::new(from, to, 2).unwrap(),
                &input,
                |x| x,
            );
            let rubato = converted(
                StreamResampler::<f64>::with_layout(from, to, 2, layout),
                &input,
                |x| x,
            );
            let (peak, rms) = difference_db(&ours, &rubato);
            assert!(
                peak < -180.0 && rms < -195.0,
                "{from} -> {to} Hz, f64: peak {peak:.1} dBFS, rms {rms:.1} dBFS"
            );
            let ours = converted(
                StreamResampler::<f32>::new(from, to, 2).unwrap(),
                &input,
                |x| x as f32,
            );
            let rubato = converted(
                StreamResampler::<f32>::with_layout(from, to, 2, layout),
                &input,
                |x| x as f32,
            );
            let (peak, rms) = difference_db(&ours, &rubato);
            assert!(
                peak < -115.0 && rms < -128.0,
                "{from} -> {to} Hz, f32: peak {peak:.1} dBFS, rms {rms:.1} dBFS"
            );
        }
    }

    /// What a conversion does to a sine of `hz` at 0.5 amplitude: its gain in dB, its delay
    /// error in output frames (how far the output sine lies from `t · to / from`) and what is
    /// left beside the sine (aliases, images, noise) in dB under the input, measured on the
    /// output away from both ends.
    fn sine_figures<T: Sample>(
        r: StreamResampler<T>,
        hz: f64,
        map: impl Fn(f64) -> T,
    ) -> (f64, f64, f64) {
        let (from, to, _) = r.rates_and_channels();
        let frames = from as usize;
        let phase = 0.3;
        let w_in = 2.0 * std::f64::consts::PI * hz / f64::from(from);
        let input = vec![(0..frames)
            .map(|n| 0.5 * (w_in * n as f64 + phase).sin())
            .collect()];
        let out = converted(r, &input, map);
        let out: Vec<f64> = out[0].iter().map(|x| x.to_f64().unwrap()).collect();
        let w = 2.0 * std::f64::consts::PI * hz / f64::from(to);
        // A whole number of cycles in the middle half.
        let skip = out.len() / 4;
        let cycles = ((out.len() / 2) as f64 * hz / f64::from(to))
            .floor()
            .max(1.0);
        let len = (cycles * f64::from(to) / hz).round() as usize;
        let span = &out[skip..skip + len];
        let (mut a, mut b) = (0.0, 0.0);
        for (i, &y) in span.iter().enumerate() {
            let t = w * (skip + i) as f64 + phase;
            a += y * t.sin();
            b += y * t.cos();
        }
        let (a, b) = (2.0 * a / len as f64, 2.0 * b / len as f64);
        let gain_db = 20.0 * ((a * a + b * b).sqrt() / 0.5).log10();
        let delay = b.atan2(a) / w;
        let residual = span
            .iter()
            .enumerate()
            .map(|(i, &y)| {
                let t = w * (skip + i) as f64 + phase;
                let e = y - a * t.sin() - b * t.cos();
                e * e
            })
            .sum::<f64>()
            / len as f64;
        (gain_db, delay, 10.0 * (residual / 0.125).log10())
    }

    /// The conversion against the formulas for a sine: in the passband (20 Hz to 21.5 kHz)
    /// the output is the input's sine at the output rate, `t · to / from`: its gain within
    /// ±0.0002 dB (the passband ripple; measured under 1e-7 dB in `f64` but −0.00007 dB at
    /// 21.5 kHz from 96 kHz, 3e-5 dB in `f32`), its delay within 1e-6 output frames (measured
    /// 1e-10; `f32` 1e-4), and what is left beside it (aliases, images, rounding) under −180 dB
    /// in `f64` (measured −188 to −225) and −128 dB in `f32` (−133 to −140). Going down, a sine
    /// between the two Nyquists (300 Hz and 1 kHz above the output's) is rejected by over
    /// 200 dB in `f64` (measured 233 to 317) and 150 dB in `f32` (measured 167 to 191). Rubato's
    /// layout measured the same to the first digits. From 96 kHz to 44.1 the filter's centre
    /// (7 units of 147 output frames) falls between two output frames: that pair's output is
    /// half a frame early, as rubato's was (kept: it changes no deliverable of the benchmarks).
    #[test]
    fn sines_pass_and_aliases_are_rejected() {
        for (from, to) in PAIRS {
            let layout = Layout::new(from, to);
            let early = if layout.filter_out % 2 == 1 {
                -0.5
            } else {
                0.0
            };
            let nyquist = f64::from(from.min(to)) / 2.0;
            for hz in [
                20.0, 1000.0, 10_000.0, 18_000.0, 20_000.0, 21_000.0, 21_500.0,
            ] {
                let (gain, delay, rest) =
                    sine_figures(StreamResampler::<f64>::new(from, to, 1).unwrap(), hz, |x| x);
                assert!(
                    gain.abs() < 2e-4 && (delay - early).abs() < 1e-6 && rest < -180.0,
                    "{from} -> {to} Hz, {hz} Hz, f64: gain {gain:.2e} dB, delay {delay:.2e}, \
                     rest {rest:.1} dB"
                );
                let (gain, delay, rest) =
                    sine_figures(StreamResampler::<f32>::new(from, to, 1).unwrap(), hz, |x| {
                        x as f32
                    });
                assert!(
                    gain.abs() < 2e-4 && (delay - early).abs() < 1e-3 && rest < -128.0,
                    "{from} -> {to} Hz, {hz} Hz, f32: gain {gain:.2e} dB, delay {delay:.2e}, \
                     rest {rest:.1} dB"
                );
            }
            if to > from {
                continue;
            }
            for hz in [nyquist + 300.0, nyquist + 1000.0] {
                let (gain, _, _) =
                    sine_figures(StreamResampler::<f64>::new(from, to, 1).unwrap(), hz, |x| x);
                assert!(
                    gain < -200.0,
                    "{from} -> {to} Hz, {hz} Hz, f64: {gain:.1} dB"
                );
                let (gain, _, _) =
                    sine_figures(StreamResampler::<f32>::new(from, to, 1).unwrap(), hz, |x| {
                        x as f32
                    });
                assert!(
                    gain < -150.0,
                    "{from} -> {to} Hz, {hz} Hz, f32: {gain:.1} dB"
                );
            }
        }
    }

    #[test]
    fn chunks_avoid_large_prime_factors() {
        // 48 -> 44.1 kHz: 13 units of 160 frames made 2048; 14 are 7-smooth.
        assert_eq!(filter_frames(48_000, 44_100), 14 * 160);
        // Already 7-smooth counts are kept: 44.1 -> 48 and 96 kHz, 48 <-> 96 kHz.
        assert_eq!(filter_frames(44_100, 48_000), 14 * 147);
        assert_eq!(filter_frames(44_100, 96_000), 14 * 147);
        assert_eq!(filter_frames(48_000, 96_000), 2048);
        assert_eq!(filter_frames(96_000, 48_000), 2048);
        // A pair whose units hold a large prime: the fewest units.
        assert_eq!(filter_frames(44_100, 11_000), 2048usize.div_ceil(441) * 441);
    }

    #[test]
    fn pushing_gives_what_pulling_gives_bit_for_bit() {
        for (from, to) in [(48_000, 44_100), (44_100, 96_000), (44_100, 48_000)] {
            // Lengths at, around and between the resampler's chunks, and an empty input.
            for frames in [0, 1, 2047, 2048, 4096, 4097, 30_001] {
                let input = signal(frames);
                let want = pulled(from, to, &input, 1000);
                assert_eq!(
                    want[0].len() as u64,
                    StreamResampler::output_len_for(frames as u64, from, to)
                );
                for step in [1, 333, 1024, 4096, 50_000] {
                    let got = pushed(from, to, &input, step);
                    assert!(
                        got == want,
                        "{from} -> {to} Hz, {frames} frames pushed by {step}"
                    );
                }
            }
        }
    }

    #[test]
    fn push_maps_each_sample_first() {
        let input = signal(5000);
        let rounded: Vec<Vec<f64>> = input
            .iter()
            .map(|p| p.iter().map(|&x| f64::from(x as f32)).collect())
            .collect();
        let mut r = StreamResampler::new(48_000, 44_100, 2).unwrap();
        let mut out = vec![Vec::new(), Vec::new()];
        let mut take = |planes: &[&[f64]], _n: usize| -> Result<(), ResampleError> {
            for (o, p) in out.iter_mut().zip(planes) {
                o.extend_from_slice(p);
            }
            Ok(())
        };
        let planes = [&input[0][..], &input[1][..]];
        r.push(&planes, 5000, |x| f64::from(x as f32), &mut take)
            .unwrap();
        r.end(&mut take).unwrap();
        assert!(out == pushed(48_000, 44_100, &rounded, 5000));
        assert!(out != pushed(48_000, 44_100, &input, 5000));
    }

    /// Down to a lower rate, the conversion in 32-bit float (for 16-bit and lossy
    /// deliverables) differs from the 64-bit one by under −122 dBFS RMS and −115 dBFS at the
    /// peak (measured −126/−119 from 48 kHz to 44.1, −135/−124 from 96 kHz) on a signal near
    /// full scale: some 30 dB under a 16-bit file's own noise (−96 dBFS RMS with TPDF dither).
    /// Up to a higher rate it differs more (−114 dBFS RMS from 44.1 kHz to 48 or 96), which is
    /// why the deliverables convert up in 64-bit float whatever they hold. The 64-bit
    /// conversion is the reference the other tests hold.
    #[test]
    fn single_precision_stays_near_double_going_down() {
        let input = near_full_scale(40_000);
        let peak = input.iter().flatten().fold(0.0f64, |m, x| m.max(x.abs()));
        assert!(peak > 0.85, "near full scale: {peak}");
        for (from, to) in [(48_000, 44_100), (96_000, 44_100), (96_000, 48_000)] {
            let double = converted(
                StreamResampler::<f64>::new(from, to, 2).unwrap(),
                &input,
                |x| x,
            );
            let single: Vec<Vec<f64>> = converted(
                StreamResampler::<f32>::new(from, to, 2).unwrap(),
                &input,
                |x| x as f32,
            )
            .into_iter()
            .map(|p| p.into_iter().map(f64::from).collect())
            .collect();
            assert_eq!(single[0].len(), double[0].len());
            let (peak_db, rms_db) = difference_db(&single, &double);
            assert!(
                peak_db < -115.0 && rms_db < -122.0,
                "{from} -> {to} Hz: peak {peak_db:.1} dBFS, rms {rms_db:.1} dBFS"
            );
            assert!(
                rms_db > -200.0,
                "{from} -> {to} Hz: the two are different arithmetic"
            );
        }
    }
}
