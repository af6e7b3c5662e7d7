//! The building blocks of the limiter's gain computer, all per sample and allocation-free after
//! construction: a sliding-window minimum (monotonic deque), exact box filters, the release
//! envelopes and a fixed delay line.

/// Gains are quantised (rounded down) to multiples of 2⁻³² before the box filters, so that the
/// running sums are exact in f64 (every partial sum is a multiple of 2⁻³² below 2²¹): no drift
/// over hours of audio, and a gain of exactly 1 comes out as exactly 1.
const QUANT: f64 = 4_294_967_296.0; // 2^32

/// Rounds a gain in [0, 1] down to the box filters' grid.
#[inline(always)]
pub fn quantize_down(g: f64) -> f64 {
    // Truncation is rounding down for g ≥ 0, and g · 2^32 ≤ 2^32 is an integer exactly
    // representable, so `trunc` gives what the cast to an integer and back gave (one rounding
    // instruction instead of a saturating conversion there and back). Gains are never NaN.
    (g * QUANT).trunc() * (1.0 / QUANT)
}

/// Minimum of the last `len` values pushed (a monotonic deque over a preallocated ring).
#[derive(Debug, Clone)]
pub struct SlidingMin {
    vals: Vec<f64>,
    stamps: Vec<u64>,
    at: MinCursor,
}

/// A [`SlidingMin`]'s counters, apart from its buffers so that a block loop can hold them in
/// registers ([`SlidingMin::view`]).
#[derive(Debug, Clone, Copy)]
struct MinCursor {
    head: usize,
    count: usize,
    len: u64,
    t: u64,
}

impl SlidingMin {
    /// A window of `len` samples (≥ 1). Allocates.
    pub fn new(len: usize) -> Self {
        let cap = len + 1;
        Self {
            vals: vec![0.0; cap],
            stamps: vec![0; cap],
            at: MinCursor {
                head: 0,
                count: 0,
                len: len.max(1) as u64,
                t: 0,
            },
        }
    }

    /// Forgets everything (the window then holds only what is pushed next).
    pub fn reset(&mut self) {
        self.at.head = 0;
        self.at.count = 0;
        self.at.t = 0;
    }

    /// Pushes `v` and returns the minimum of the window ending with it.
    #[inline]
    pub fn push(&mut self, v: f64) -> f64 {
        self.view().push(v)
    }

    /// The window for a run of pushes: its counters copied out, written back when the view is
    /// dropped.
    #[inline(always)]
    pub fn view(&mut self) -> SlidingMinView<'_> {
        SlidingMinView {
            at: self.at,
            vals: &mut self.vals,
            stamps: &mut self.stamps,
            home: &mut self.at,
        }
    }

    /// Whether every value in the window is 1 (or the window is empty), so that pushing 1
    /// returns 1. Pushed values are gains, never above 1.
    pub fn is_unity(&self) -> bool {
        self.at.count == 0 || self.vals[self.at.head] == 1.0
    }

    /// The state after pushing `n` ones into a window for which [`Self::is_unity`] holds: only
    /// the newest 1 remains in the deque (pushing 1 drops everything not below it).
    pub fn skip_unity(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        debug_assert!(self.is_unity());
        let at = &mut self.at;
        self.vals[at.head] = 1.0;
        self.stamps[at.head] = at.t + n as u64 - 1;
        at.count = 1;
        at.t += n as u64;
    }
}

/// A [`SlidingMin`] borrowed for a run of pushes, its counters in a local copy (kept in
/// registers by the loop that uses it) and written back on drop.
pub struct SlidingMinView<'a> {
    at: MinCursor,
    vals: &'a mut [f64],
    stamps: &'a mut [u64],
    home: &'a mut MinCursor,
}

impl SlidingMinView<'_> {
    /// Pushes `v` and returns the minimum of the window ending with it.
    #[inline(always)]
    pub fn push(&mut self, v: f64) -> f64 {
        let at = &mut self.at;
        let cap = self.vals.len();
        // `head + k` for k < cap, wrapped (no division: both are below `cap`).
        let wrap = |i: usize| if i >= cap { i - cap } else { i };
        // Drop from the back everything not smaller than v: it can never be the minimum again.
        while at.count > 0 {
            let back = wrap(at.head + at.count - 1);
            if self.vals[back] >= v {
                at.count -= 1;
            } else {
                break;
            }
        }
        let slot = wrap(at.head + at.count);
        self.vals[slot] = v;
        self.stamps[slot] = at.t;
        at.count += 1;
        // Drop from the front what has left the window.
        if self.stamps[at.head] + at.len <= at.t {
            at.head = wrap(at.head + 1);
            at.count -= 1;
        }
        at.t += 1;
        self.vals[at.head]
    }
}

impl Drop for SlidingMinView<'_> {
    fn drop(&mut self) {
        *self.home = self.at;
    }
}

/// A moving sum over the last `len` values (exact for values on the [`quantize_down`] grid).
#[derive(Debug, Clone)]
pub struct BoxSum {
    ring: Vec<f64>,
    at: SumCursor,
    fill: f64,
}

/// A [`BoxSum`]'s position and sum, apart from its ring so that a block loop can hold them in
/// registers ([`BoxCascade::view`]).
#[derive(Debug, Clone, Copy)]
struct SumCursor {
    pos: usize,
    sum: f64,
}

impl SumCursor {
    /// Pushes `v` into `ring` at this position and returns the sum of the window ending with it.
    #[inline(always)]
    fn push(&mut self, ring: &mut [f64], v: f64) -> f64 {
        self.sum += v - ring[self.pos];
        ring[self.pos] = v;
        self.pos += 1;
        if self.pos == ring.len() {
            self.pos = 0;
        }
        self.sum
    }
}

impl BoxSum {
    /// A sum over `len` ≥ 1 values, starting as if `fill` had been pushed `len` times.
    pub fn new(len: usize, fill: f64) -> Self {
        let len = len.max(1);
        Self {
            ring: vec![fill; len],
            at: SumCursor {
                pos: 0,
                sum: fill * len as f64,
            },
            fill,
        }
    }
    /// Back to the initial state.
    pub fn reset(&mut self) {
        self.ring.fill(self.fill);
        self.at = SumCursor {
            pos: 0,
            sum: self.fill * self.ring.len() as f64,
        };
    }
    /// Whether every value in the ring is the rest value (the values are never above it, and
    /// the sum is exact, so a full sum says so).
    pub fn is_full(&self) -> bool {
        self.at.sum == self.fill * self.ring.len() as f64
    }

    /// The state after pushing `n` rest values into a full ring: only the position moves.
    pub fn skip_full(&mut self, n: usize) {
        debug_assert!(self.is_full());
        self.at.pos = (self.at.pos + n) % self.ring.len();
    }
}

/// Two cascaded moving averages whose combined support is `support` samples: the smoothed gain
/// of a step reaches its final value exactly `support − 1` samples after the step starts.
#[derive(Debug, Clone)]
pub struct BoxCascade {
    a: BoxSum,
    b: BoxSum,
    norm: f64,
}

impl BoxCascade {
    /// A cascade with support `support` ≥ 1 (lengths ⌈(support+1)/2⌉ and the rest), resting at 1.
    pub fn new(support: usize) -> Self {
        let support = support.max(1);
        let la = support.div_ceil(2).max(1);
        let lb = support + 1 - la;
        Self {
            a: BoxSum::new(la, 1.0),
            b: BoxSum::new(lb, la as f64),
            norm: (la * lb) as f64,
        }
    }
    /// Back to rest (gain 1).
    pub fn reset(&mut self) {
        self.a.reset();
        self.b.reset();
    }
    /// Whether both boxes hold only the rest gain 1: pushing 1 then gives exactly 1.
    pub fn is_unity(&self) -> bool {
        self.a.is_full() && self.b.is_full()
    }

    /// The state after pushing `n` ones into a cascade at rest.
    pub fn skip_unity(&mut self, n: usize) {
        self.a.skip_full(n);
        self.b.skip_full(n);
    }

    /// Pushes a quantised gain, returns the smoothed gain.
    #[inline(always)]
    pub fn push(&mut self, g: f64) -> f64 {
        let norm = self.norm;
        self.view().push_sum(g) / norm
    }

    /// What [`BoxCascadeView::push_sum`] is divided by to give the smoothed gain.
    pub fn norm(&self) -> f64 {
        self.norm
    }

    /// The cascade for a run of pushes: positions and sums copied out, written back when the
    /// view is dropped.
    #[inline(always)]
    pub fn view(&mut self) -> BoxCascadeView<'_> {
        BoxCascadeView {
            at: [self.a.at, self.b.at],
            ring_a: &mut self.a.ring,
            ring_b: &mut self.b.ring,
            home: [&mut self.a.at, &mut self.b.at],
        }
    }
}

/// A [`BoxCascade`] borrowed for a run of pushes, its positions and sums in a local copy (kept in
/// registers by the loop that uses it) and written back on drop.
pub struct BoxCascadeView<'a> {
    at: [SumCursor; 2],
    ring_a: &'a mut [f64],
    ring_b: &'a mut [f64],
    home: [&'a mut SumCursor; 2],
}

impl BoxCascadeView<'_> {
    /// Pushes a quantised gain, returns the smoothed gain times [`BoxCascade::norm`] (exact): the
    /// division left to the caller, which can do a block of them at once, off the recursion.
    #[inline(always)]
    pub fn push_sum(&mut self, g: f64) -> f64 {
        let s = self.at[0].push(self.ring_a, g);
        self.at[1].push(self.ring_b, s)
    }
}

impl Drop for BoxCascadeView<'_> {
    fn drop(&mut self) {
        *self.home[0] = self.at[0];
        *self.home[1] = self.at[1];
    }
}

/// A fixed delay of `len` samples.
#[derive(Debug, Clone)]
pub struct Delay {
    ring: Vec<f64>,
    pos: usize,
}

impl Delay {
    /// A delay of `len` ≥ 1 samples, filled with `fill`.
    pub fn new(len: usize, fill: f64) -> Self {
        Self {
            ring: vec![fill; len.max(1)],
            pos: 0,
        }
    }
    /// Fills the line with `v`.
    pub fn reset(&mut self, v: f64) {
        self.ring.fill(v);
        self.pos = 0;
    }
    /// [`Self::swap`] on every sample of `x` in turn, in place: `x` comes out delayed.
    pub fn swap_block(&mut self, x: &mut [f64]) {
        let len = self.ring.len();
        let mut done = 0;
        while done < x.len() {
            let k = (x.len() - done).min(len - self.pos);
            x[done..done + k].swap_with_slice(&mut self.ring[self.pos..self.pos + k]);
            done += k;
            self.pos += k;
            if self.pos == len {
                self.pos = 0;
            }
        }
    }

    /// Pushes `x`, returns the sample pushed `len` samples ago.
    #[inline(always)]
    pub fn swap(&mut self, x: f64) -> f64 {
        let out = std::mem::replace(&mut self.ring[self.pos], x);
        self.pos += 1;
        if self.pos == self.ring.len() {
            self.pos = 0;
        }
        out
    }
}

// The blocks' whole contents are their state: copied in place for the limiter's linked paths
// and at a hot reload (see `dsp::state`).
crate::signal_state!(SlidingMin { copy: at; state: vals, stamps; });
crate::signal_state!(BoxSum { copy: at, fill; state: ring; });
crate::signal_state!(BoxCascade { copy: norm; state: a, b; });
crate::signal_state!(Delay { copy: pos; state: ring; });

/// Reductions below this (as 1 − gain) are flushed to zero: far under the 2⁻³² gain grid, and
/// it keeps the envelopes out of denormals.
const FLUSH: f64 = 1.0 / 17_179_869_184.0; // 2^-34

/// Release coefficients, per sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReleaseCoefs {
    /// Fixed release, or the slow (sustained) release in auto mode.
    pub slow: f64,
    /// Fast release for short peaks (auto mode).
    pub fast: f64,
    /// How fast the sustained envelope charges (auto mode): 1 − e^(−1/(τ·fs)).
    pub charge: f64,
}

impl ReleaseCoefs {
    /// Coefficients for a release time of `release_ms` at `fs`. In auto mode the fast release is
    /// a tenth of it and the sustained envelope charges with a time constant of `release_ms`.
    pub fn new(release_ms: f64, fs: f64) -> Self {
        let pole = |ms: f64| libm::exp(-1000.0 / (ms * fs));
        Self {
            slow: pole(release_ms),
            fast: pole(release_ms * 0.1),
            charge: 1.0 - pole(release_ms),
        }
    }
}

/// The release stage, in the reduction domain u = 1 − gain. It never lets the gain above its
/// input (`min` with the held target), so it cannot break the lookahead guarantee.
#[derive(Debug, Clone, Copy, Default)]
pub struct Release {
    fast: f64,
    slow: f64,
}

impl Release {
    /// Whether both envelopes are at zero reduction (a gain of 1 in then gives 1 out and
    /// leaves them there).
    pub fn is_idle(&self) -> bool {
        self.fast == 0.0 && self.slow == 0.0
    }

    /// Back to no reduction.
    pub fn reset(&mut self) {
        self.fast = 0.0;
        self.slow = 0.0;
    }

    /// Fixed release: the reduction follows the target up at once and decays exponentially.
    #[inline(always)]
    pub fn fixed(&mut self, target: f64, k: &ReleaseCoefs) -> f64 {
        let u_t = 1.0 - target;
        let mut u = self.slow * k.slow;
        if u < FLUSH {
            u = 0.0;
        }
        if u_t > u {
            u = u_t;
        }
        self.slow = u;
        (1.0 - u).min(target)
    }

    /// Program-dependent release: a fast envelope (instant attack, release τ/10) and a
    /// sustained envelope that charges towards the reduction with time constant τ and releases
    /// with τ. The larger reduction wins: a short peak barely charges the sustained envelope and
    /// recovers at the fast rate; a long stretch of limiting recovers at the slow rate.
    #[inline(always)]
    pub fn auto(&mut self, target: f64, k: &ReleaseCoefs) -> f64 {
        let u_t = 1.0 - target;
        let mut f = self.fast * k.fast;
        if f < FLUSH {
            f = 0.0;
        }
        if u_t > f {
            f = u_t;
        }
        let mut s = if u_t > self.slow {
            self.slow + (u_t - self.slow) * k.charge
        } else {
            self.slow * k.slow
        };
        if s < FLUSH {
            s = 0.0;
        }
        self.fast = f;
        self.slow = s;
        (1.0 - f.max(s)).min(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sliding_min_matches_brute_force() {
        let mut sm = SlidingMin::new(7);
        let mut r = 12345u64;
        let mut hist = Vec::new();
        for _ in 0..2000 {
            r = r
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let v = (r >> 11) as f64 / (1u64 << 53) as f64;
            hist.push(v);
            let got = sm.push(v);
            let lo = hist.len().saturating_sub(7);
            let want = hist[lo..].iter().cloned().fold(f64::INFINITY, f64::min);
            assert_eq!(got, want);
        }
    }

    #[test]
    fn quantize_down_is_the_integer_cast_there_and_back() {
        let mut r = 7u64;
        let mut cases = vec![0.0, 1.0, f64::MIN_POSITIVE, 1.0 - f64::EPSILON, 0.5, 1e-12];
        for _ in 0..100_000 {
            r = r
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            cases.push((r >> 11) as f64 / (1u64 << 53) as f64);
        }
        for g in cases {
            let cast = ((g * QUANT) as i64) as f64 * (1.0 / QUANT);
            assert_eq!(quantize_down(g).to_bits(), cast.to_bits(), "{g}");
        }
    }

    #[test]
    fn a_view_gives_the_bits_of_one_push_at_a_time() {
        let mut one = BoxCascade::new(37);
        let mut block = BoxCascade::new(37);
        let mut r = 99u64;
        // Blocks of several lengths (shorter and longer than the rings), gains on the grid.
        for len in [1usize, 5, 64, 17, 300, 2, 128] {
            let gains: Vec<f64> = (0..len)
                .map(|_| {
                    r = r
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    quantize_down(0.2 + 0.8 * (r >> 11) as f64 / (1u64 << 53) as f64)
                })
                .collect();
            let want: Vec<f64> = gains.iter().map(|&g| one.push(g)).collect();
            let norm = block.norm();
            let mut view = block.view();
            let got: Vec<f64> = gains.iter().map(|&g| view.push_sum(g) / norm).collect();
            drop(view);
            for (w, g) in want.iter().zip(&got) {
                assert_eq!(w.to_bits(), g.to_bits());
            }
        }
    }

    #[test]
    fn box_cascade_reaches_target_after_support() {
        let mut b = BoxCascade::new(10);
        for _ in 0..20 {
            assert_eq!(b.push(1.0), 1.0);
        }
        let g = quantize_down(0.5);
        let out: Vec<f64> = (0..12).map(|_| b.push(g)).collect();
        assert!(out[8] > g);
        assert_eq!(out[9], g);
        for _ in 0..20 {
            b.push(1.0);
        }
        assert_eq!(b.push(1.0), 1.0);
    }
}
