//! The log-frequency grids the matching works on: fractional-octave bands (centres on the
//! 1 kHz series, edges half a step either side), and which FFT bin falls in which band.

/// Fractional-octave bands between two frequencies.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    /// Band centres, Hz, rising.
    pub centres: Vec<f64>,
    /// Bands per octave.
    pub per_octave: usize,
}

impl Grid {
    /// Bands of `1/per_octave` octave whose centres lie within `lo_hz ..= hi_hz`.
    pub fn new(lo_hz: f64, hi_hz: f64, per_octave: usize) -> Grid {
        let n = per_octave as f64;
        let k_lo = (n * (lo_hz / 1000.0).log2()).ceil() as i64;
        let k_hi = (n * (hi_hz / 1000.0).log2()).floor() as i64;
        Grid {
            centres: (k_lo..=k_hi)
                .map(|k| 1000.0 * 2f64.powf(k as f64 / n))
                .collect(),
            per_octave,
        }
    }

    /// The grid of the fit: twelfth-octave bands from 35 Hz to 18 kHz.
    pub fn fit() -> Grid {
        Grid::new(35.0, 18_000.0, 6)
    }

    /// Third-octave bands from 50 Hz to 16 kHz: the grid of the before/after comparison.
    pub fn third_octave() -> Grid {
        Grid::new(49.0, 16_100.0, 3)
    }

    /// Number of bands.
    pub fn len(&self) -> usize {
        self.centres.len()
    }

    /// Whether the grid has no band.
    pub fn is_empty(&self) -> bool {
        self.centres.is_empty()
    }

    /// The edges of band `b`, Hz.
    pub fn edges(&self, b: usize) -> (f64, f64) {
        let h = 2f64.powf(0.5 / self.per_octave as f64);
        (self.centres[b] / h, self.centres[b] * h)
    }

    /// For each bin of a one-sided spectrum of `bins` bins `bin_hz` apart: its band, if any.
    pub fn bin_bands(&self, bins: usize, bin_hz: f64) -> Vec<Option<usize>> {
        (0..bins)
            .map(|i| {
                let f = i as f64 * bin_hz;
                (0..self.len()).find(|&b| {
                    let (lo, hi) = self.edges(b);
                    f >= lo && f < hi
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn third_octaves_are_the_nominal_series() {
        let g = Grid::third_octave();
        assert!((g.centres[0] - 49.6).abs() < 0.1, "{:?}", g.centres);
        assert!(g.centres.iter().any(|c| (c - 1000.0).abs() < 1e-9));
        assert!((g.centres.last().unwrap() - 16_000.0).abs() < 20.0);
        let (lo, hi) = g.edges(3);
        assert!((hi / lo - 2f64.powf(1.0 / 3.0)).abs() < 1e-12);
    }
}
