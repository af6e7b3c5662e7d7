//! The direct polyphase true-peak interpolator (a Kaiser-windowed sinc, [`PolyphaseTable`])
//! that the true-peak meter measures with, one sample at a time ([`PolyphaseInterpolator`]) or a
//! block at a time through its folded kernel ([`FoldedPhases`]).

use super::design::{kaiser_beta, PolyphaseTable};
pub use super::kernels::folded::{FoldedPhases, SCAN_MAX_NEW, SCAN_MAX_TAPS};

/// Kaiser β for a taps-per-phase count: chosen so that the interpolation error is smallest
/// up to 0.45·fs (measured; see the tests in `tests/meters.rs`): the stop-band attenuation
/// Kaiser's formula gives for a ±0.05·fs transition with that many taps.
pub fn default_kaiser_beta(taps: usize) -> f64 {
    kaiser_beta(14.36 * 0.1 * taps as f64 + 7.95)
}

/// Default taps per phase for an oversampling factor.
pub fn default_taps(factor: usize) -> usize {
    match factor {
        0 | 1 => 1,
        _ => 32,
    }
}

/// A polyphase windowed-sinc interpolator by an integer factor, one sample at a time.
///
/// For each input sample `x[n]` it yields `factor` values of the band-limited signal at
/// `n - delay + p/factor`, `p = 0..factor`, where `delay = taps/2`; the value at `p = 0` is
/// exactly `x[n - delay]` (the prototype is a Nyquist filter). Each phase is normalised to
/// unity gain at DC.
#[derive(Clone, Debug)]
pub struct PolyphaseInterpolator {
    table: PolyphaseTable,
    /// Last `taps` input samples, oldest first.
    history: Box<[f64]>,
}

impl PolyphaseInterpolator {
    /// An interpolator by `factor` (≥ 1) with `taps` (even, ≥ 2) coefficients per phase and
    /// Kaiser window parameter `beta`. Allocates.
    pub fn new(factor: usize, taps: usize, beta: f64) -> Self {
        assert!(factor >= 1, "oversampling factor must be at least 1");
        let taps = if factor == 1 { 1 } else { taps };
        assert!(
            factor == 1 || (taps >= 2 && taps % 2 == 0),
            "taps per phase must be even"
        );
        Self {
            table: PolyphaseTable::kaiser_sinc(factor, taps, beta),
            history: vec![0.0; taps].into_boxed_slice(),
        }
    }

    /// Oversampling factor.
    pub fn factor(&self) -> usize {
        self.table.factor()
    }

    /// Taps per phase.
    pub fn taps(&self) -> usize {
        self.table.taps()
    }

    /// Delay of the output in input samples (`taps / 2`).
    pub fn delay(&self) -> usize {
        self.taps() / 2
    }

    /// The coefficient table (phases `1..factor`).
    pub fn table(&self) -> &PolyphaseTable {
        &self.table
    }

    /// Coefficients of phase `p` (1..factor), oldest-sample first.
    pub fn phase(&self, p: usize) -> &[f64] {
        self.table.phase(p)
    }

    /// Largest sum of absolute coefficients over the phases: no output can exceed this
    /// times the largest input magnitude in its window.
    pub fn max_gain(&self) -> f64 {
        self.table.max_l1()
    }

    /// Clears the history.
    pub fn reset(&mut self) {
        self.history.fill(0.0);
    }

    /// Feeds one sample and writes the `factor` output values into `out[..factor]`.
    pub fn push_sample(&mut self, x: f64, out: &mut [f64]) {
        let t = self.taps();
        self.history.copy_within(1.., 0);
        self.history[t - 1] = x;
        if self.factor() == 1 {
            out[0] = x;
            return;
        }
        out[0] = self.history[t - 1 - t / 2];
        for (p, o) in out.iter_mut().enumerate().take(self.factor()).skip(1) {
            *o = self
                .table
                .phase(p)
                .iter()
                .zip(self.history.iter())
                .fold(0.0, |s, (c, h)| s + c * h);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Noise with a few loud bursts and a quiet stretch, so that both the evaluated and the
    /// skipped groups are exercised.
    fn signal(n: usize) -> Vec<f64> {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        (0..n)
            .map(|i| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let r = (seed >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
                let level = if i % 5000 < 300 { 1.6 } else { 0.3 };
                level * r + 0.2 * (i as f64 * 0.37).sin()
            })
            .collect()
    }

    /// The direct form, sample by sample: every phase summed in tap order.
    fn reference(factor: usize, x: &[f64]) -> f64 {
        let mut it = PolyphaseInterpolator::new(factor, 32, default_kaiser_beta(32));
        let mut out = [0.0; 16];
        let mut peak = 0.0f64;
        for &v in x.iter().chain(std::iter::repeat_n(&0.0, 16)) {
            it.push_sample(v, &mut out);
            peak = out[..factor].iter().fold(peak, |m, y| m.max(y.abs()));
        }
        peak
    }

    /// The folded scan over `x` cut into calls of `block` samples, then `taps/2` zeros.
    fn scanned(factor: usize, x: &[f64], block: usize, portable: bool) -> f64 {
        let it = PolyphaseInterpolator::new(factor, 32, default_kaiser_beta(32));
        let mut folded = FoldedPhases::new(it.table());
        folded.set_portable(portable);
        let t = it.taps();
        let mut buf = vec![0.0; t - 1 + SCAN_MAX_NEW];
        let mut peak = 0.0;
        let zeros = vec![0.0; t / 2];
        for chunk in x.chunks(block.min(SCAN_MAX_NEW)).chain([&zeros[..]]) {
            buf[t - 1..t - 1 + chunk.len()].copy_from_slice(chunk);
            peak = folded.scan(&buf[..t - 1 + chunk.len()], peak);
            buf.copy_within(chunk.len()..chunk.len() + t - 1, 0);
        }
        peak
    }

    #[test]
    fn folded_skipping_scan_agrees_with_the_direct_form() {
        let x = signal(40_000);
        for factor in [2, 4, 8, 16] {
            let want = reference(factor, &x);
            let portable = scanned(factor, &x, 4096, true);
            let wide = scanned(factor, &x, 4096, false);
            for got in [portable, wide] {
                assert!(
                    (got - want).abs() <= 1e-13 * want,
                    "{factor}x: {got} vs direct form {want}"
                );
            }
            // Within one build the reading does not depend on the block size.
            for block in [1, 7, 333] {
                assert_eq!(
                    scanned(factor, &x, block, true),
                    portable,
                    "{factor}x {block}"
                );
                assert_eq!(scanned(factor, &x, block, false), wide, "{factor}x {block}");
            }
        }
    }
}
