//! Loudness and true peak over time, for plots: one point per 100 ms hop, in bounded memory.
//!
//! A [`SeriesBuilder`] keeps at most a fixed number of points: when it is full it merges
//! neighbouring points pairwise (each merged point holds the maximum of its readings, so
//! peaks and loud passages survive) and from then on puts twice as many hops in each point.
//! A one-hour file at the default cap keeps points of 1.6 s.

/// The most points a series keeps unless told otherwise.
pub const DEFAULT_MAX_POINTS: usize = 4096;

/// One point of the series: readings over the hops it covers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeriesPoint {
    /// End of the last hop covered, seconds from the start.
    pub t_s: f64,
    /// Highest momentary loudness (400 ms), LUFS.
    pub momentary_lufs: f64,
    /// Highest short-term loudness (3 s), LUFS.
    pub short_term_lufs: f64,
    /// Highest true peak, dBTP.
    pub true_peak_dbtp: f64,
}

impl SeriesPoint {
    fn merge(self, later: SeriesPoint) -> SeriesPoint {
        SeriesPoint {
            t_s: later.t_s,
            momentary_lufs: self.momentary_lufs.max(later.momentary_lufs),
            short_term_lufs: self.short_term_lufs.max(later.short_term_lufs),
            true_peak_dbtp: self.true_peak_dbtp.max(later.true_peak_dbtp),
        }
    }
}

/// A finished series.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    /// Time each point covers, seconds (0.1 until the cap forced merging).
    pub point_s: f64,
    /// The points, in time order.
    pub points: Vec<SeriesPoint>,
}

/// Collects a series hop by hop, merging when full.
#[derive(Debug, Clone)]
pub struct SeriesBuilder {
    max_points: usize,
    hop_s: f64,
    /// Hops per point.
    stride: usize,
    pending: Option<SeriesPoint>,
    pending_hops: usize,
    points: Vec<SeriesPoint>,
}

impl SeriesBuilder {
    /// A builder of hops `hop_s` long keeping at most `max_points` points (at least 2).
    pub fn new(hop_s: f64, max_points: usize) -> Self {
        let max_points = max_points.max(2) & !1;
        Self {
            max_points,
            hop_s,
            stride: 1,
            pending: None,
            pending_hops: 0,
            points: Vec::with_capacity(max_points),
        }
    }

    /// Adds the readings of one hop.
    pub fn push(&mut self, p: SeriesPoint) {
        self.pending = Some(match self.pending {
            Some(q) => q.merge(p),
            None => p,
        });
        self.pending_hops += 1;
        if self.pending_hops == self.stride {
            self.flush();
        }
    }

    fn flush(&mut self) {
        let Some(p) = self.pending.take() else {
            return;
        };
        self.pending_hops = 0;
        if self.points.len() == self.max_points {
            let merged: Vec<SeriesPoint> = self
                .points
                .chunks(2)
                .map(|c| if c.len() == 2 { c[0].merge(c[1]) } else { c[0] })
                .collect();
            self.points.clear();
            self.points.extend(merged);
            self.stride *= 2;
        }
        self.points.push(p);
    }

    /// The series (a last, partly filled point included).
    pub fn finish(mut self) -> Series {
        self.flush();
        Series {
            point_s: self.hop_s * self.stride as f64,
            points: self.points,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(i: usize) -> SeriesPoint {
        SeriesPoint {
            t_s: (i + 1) as f64 * 0.1,
            momentary_lufs: -(i as f64),
            short_term_lufs: -20.0,
            true_peak_dbtp: if i == 777 { 0.5 } else { -3.0 },
        }
    }

    #[test]
    fn stays_bounded_and_keeps_peaks() {
        let mut b = SeriesBuilder::new(0.1, 64);
        for i in 0..1000 {
            b.push(point(i));
        }
        let s = b.finish();
        assert!(s.points.len() <= 64, "{}", s.points.len());
        assert!(s.points.len() >= 32);
        assert!((s.point_s - 1.6).abs() < 1e-12);
        assert!(s.points.iter().any(|p| p.true_peak_dbtp == 0.5));
        assert!(s.points.windows(2).all(|w| w[0].t_s < w[1].t_s));
        assert!((s.points.last().unwrap().t_s - 100.0).abs() < 1e-9);
        assert_eq!(s.points[0].momentary_lufs, 0.0);
    }

    #[test]
    fn short_series_are_kept_whole() {
        let mut b = SeriesBuilder::new(0.1, 64);
        for i in 0..10 {
            b.push(point(i));
        }
        let s = b.finish();
        assert_eq!(s.points.len(), 10);
        assert_eq!(s.point_s, 0.1);
    }
}
