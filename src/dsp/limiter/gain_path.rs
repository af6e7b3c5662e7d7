//! The building blocks of the limiter's gain computer, allocation-free after construction: a
//! sliding-window minimum per sample (monotonic deque, [`SlidingMin`]) and per block
//! ([`WindowMin`]: branch-free, in vectors, each minimum handed on to the next stages as it is
//! formed), exact box filters, the release envelopes and a fixed delay line.

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

/// Minimum of the last `len` values pushed, a block at a time: the same minima as [`SlidingMin`]
/// (a minimum is exact in any order of comparisons), without its data-dependent branches. The
/// block is laid after the window's history and reduced by a sparse table of minima over runs
/// of 4ᵏ and 2ᵏ values (van Herk/Gil-Werman's 3 comparisons per sample need serial scans; the
/// table's ⌈log₂ len⌉ passes are plain vector minima).
#[derive(Debug, Clone)]
pub struct WindowMin {
    /// The last `len − 1` values pushed, oldest first (+∞ where nothing was pushed yet: never
    /// the minimum, as every window holds the value just pushed).
    hist: Vec<f64>,
}

/// `a` or `b`, whichever is smaller (the comparison `minpd` makes: for gains, never NaN, the
/// minimum).
#[inline(always)]
fn min2(a: f64, b: f64) -> f64 {
    if b < a {
        b
    } else {
        a
    }
}

impl WindowMin {
    /// A window of `len` samples (≥ 1). Allocates.
    pub fn new(len: usize) -> Self {
        Self {
            hist: vec![f64::INFINITY; len.max(1) - 1],
        }
    }

    /// How long the two scratch buffers of [`Self::push_block_then`] must be for a block of `n`.
    pub fn scratch_len(&self, n: usize) -> usize {
        n + self.hist.len()
    }

    /// Forgets everything (the window then holds only what is pushed next).
    pub fn reset(&mut self) {
        self.hist.fill(f64::INFINITY);
    }

    /// Whether pushing 1 returns 1: every value in the window's history is 1 (or nothing was
    /// pushed). Pushed values are gains, never above 1.
    pub fn is_unity(&self) -> bool {
        self.hist.iter().all(|&v| v >= 1.0)
    }

    /// The state after pushing `n` ones into a window for which [`Self::is_unity`] holds: a
    /// history of ones (or +∞, which no window's minimum can tell from 1).
    pub fn skip_unity(&mut self, n: usize) {
        if n > 0 {
            self.hist.fill(1.0);
        }
    }

    /// Pushes every value of `r` in turn, each replaced by `then` of the minimum of the window
    /// ending with it (`then` called in order, in the pass that forms the minima, so that the
    /// stages after the hold need no pass of their own). `a` and `b` are scratch of at least
    /// [`Self::scratch_len`] values.
    #[inline(always)]
    pub fn push_block_then(
        &mut self,
        r: &mut [f64],
        a: &mut [f64],
        b: &mut [f64],
        mut then: impl FnMut(f64) -> f64,
    ) {
        let n = r.len();
        let h = self.hist.len();
        let len = h + 1;
        if len == 1 || n == 0 {
            // A window of one sample: its minimum is the value itself.
            for v in r.iter_mut() {
                *v = then(*v);
            }
            return;
        }
        let m = n + h;
        let (a, b) = (&mut a[..m], &mut b[..m]);
        // src[i] = min(values[i..i + k]) for every i ≤ m − k, where values = history ++ block:
        // the first level read from the two (never laid out together), then level upon level.
        let mut k = if len >= 4 { 4 } else { 2 };
        self.first_level(r, a, k);
        if n >= h {
            self.hist.copy_from_slice(&r[n - h..]);
        } else {
            self.hist.copy_within(n.., 0);
            self.hist[h - n..].copy_from_slice(r);
        }
        let (mut src, mut dst) = (a, b);
        while 4 * k <= len {
            let valid = m + 1 - 4 * k;
            level(src, &mut dst[..valid], k, 4);
            std::mem::swap(&mut src, &mut dst);
            k *= 4;
        }
        while 2 * k <= len {
            let valid = m + 1 - 2 * k;
            level(src, &mut dst[..valid], k, 2);
            std::mem::swap(&mut src, &mut dst);
            k *= 2;
        }
        // The window ending at r[i] is values[i..i + len]: two runs of k ≤ len < 2k, overlapping.
        for ((o, &v0), &v1) in r.iter_mut().zip(&src[..n]).zip(&src[len - k..]) {
            *o = then(min2(v0, v1));
        }
    }

    /// `out[i] = min(values[i..i + span])` for every run of `span` (2 or 4) values within
    /// history ++ `r`: the runs within the history, those across its end, those within `r`.
    #[inline(always)]
    fn first_level(&self, r: &[f64], out: &mut [f64], span: usize) {
        let hist = &self.hist[..];
        let h = hist.len();
        let valid = h + r.len() + 1 - span;
        let within_hist = (h + 1).saturating_sub(span).min(valid);
        level(hist, &mut out[..within_hist], 1, span);
        for (i, o) in out
            .iter_mut()
            .enumerate()
            .take(h.min(valid))
            .skip(within_hist)
        {
            let at = |j: usize| if j < h { hist[j] } else { r[j - h] };
            *o = (i + 1..i + span).fold(at(i), |m, j| min2(m, at(j)));
        }
        if valid > h {
            level(r, &mut out[h..valid], 1, span);
        }
    }
}

/// `out[i] = min(src[i], src[i + k], …)` over `span` (2 or 4) values `k` apart, for every `i`
/// of `out` (`src` holds them all).
#[inline(always)]
fn level(src: &[f64], out: &mut [f64], k: usize, span: usize) {
    let n = out.len();
    if span == 4 {
        let (s0, s1, s2, s3) = (&src[..n], &src[k..], &src[2 * k..], &src[3 * k..]);
        for ((((d, &v0), &v1), &v2), &v3) in out.iter_mut().zip(s0).zip(s1).zip(s2).zip(s3) {
            *d = min2(min2(v0, v1), min2(v2, v3));
        }
    } else {
        for ((d, &v0), &v1) in out.iter_mut().zip(&src[..n]).zip(&src[k..]) {
            *d = min2(v0, v1);
        }
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
        let mut view = self.view();
        let sum = view.push_sum(g);
        view.close();
        sum / norm
    }

    /// What [`BoxCascadeView::push_sum`] is divided by to give the smoothed gain.
    pub fn norm(&self) -> f64 {
        self.norm
    }

    /// The cascade for a run of pushes: positions and sums copied out, written back by
    /// [`BoxCascadeView::close`].
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
/// registers by the loop that uses it) and written back by [`Self::close`]. Not on drop: a drop
/// would also run when a bounds check in the loop panics, and to have the sums at hand there
/// the loop kept them on the stack (a store and a load on every push).
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

    /// Ends the run of pushes: the positions and sums back into the cascade.
    #[inline(always)]
    pub fn close(self) {
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

    /// [`Self::swap_block`] with every sample that comes out multiplied by the gain of its step
    /// (`x[i]` becomes `d · gains[i]`, `d` the sample that step delays), in one pass: for a block
    /// at least as long as the line, the ring's samples come out first (through `spare`,
    /// scratch of at least the line's length) and the block's own follow, moved up within `x`
    /// from its end down, a line's length at a time, so that each run reads only below what it
    /// writes; the block's newest samples become the ring. Shorter blocks go through the ring.
    #[inline(always)]
    pub fn delay_scaled(&mut self, x: &mut [f64], gains: &[f64], spare: &mut [f64]) {
        let n = x.len();
        let len = self.ring.len();
        let gains = &gains[..n];
        if n < len {
            self.swap_block(x);
            for (x, &g) in x.iter_mut().zip(gains) {
                *x *= g;
            }
            return;
        }
        self.unroll_into(&mut spare[..len]);
        self.ring.copy_from_slice(&x[n - len..]);
        let mut hi = n;
        while hi > len {
            let lo = (hi - len).max(len);
            let (below, run) = x.split_at_mut(lo);
            let from = &below[lo - len..hi - len];
            for ((d, &v), &g) in run[..hi - lo].iter_mut().zip(from).zip(&gains[lo..hi]) {
                *d = v * g;
            }
            hi = lo;
        }
        for ((d, &v), &g) in x[..len].iter_mut().zip(&spare[..len]).zip(gains) {
            *d = v * g;
        }
    }

    /// [`Self::swap_block`] by moves: for a block at least as long as the line, the block's own
    /// samples moved up within `x` by the line's length (one copy), the ring's in front of them
    /// (through `spare`, scratch of at least the line's length), the block's newest into the
    /// ring. Shorter blocks go through the ring.
    #[inline(always)]
    pub fn delay_block(&mut self, x: &mut [f64], spare: &mut [f64]) {
        let n = x.len();
        let len = self.ring.len();
        if n < len {
            return self.swap_block(x);
        }
        let spare = &mut spare[..len];
        self.unroll_into(spare);
        self.ring.copy_from_slice(&x[n - len..]);
        x.copy_within(..n - len, len);
        x[..len].copy_from_slice(spare);
    }

    /// The ring's samples, oldest first, into `out` (the line's length), and the position
    /// back to 0: the caller then refills the whole ring.
    #[inline(always)]
    fn unroll_into(&mut self, out: &mut [f64]) {
        let (older, newer) = self.ring.split_at(self.pos);
        out[..newer.len()].copy_from_slice(newer);
        out[newer.len()..].copy_from_slice(older);
        self.pos = 0;
    }

    /// [`Self::swap_block`] into `out` through `f`: every sample of `x` pushed in turn, and
    /// `f` of the one that comes out written to `out` (`x` unchanged), in one pass. For a block
    /// at least as long as the line, the ring's samples come out, then the block's own, and the
    /// block's newest samples become the ring (no swap through the ring per sample).
    #[inline(always)]
    pub fn delay_into(&mut self, x: &[f64], out: &mut [f64], mut f: impl FnMut(f64) -> f64) {
        let len = self.ring.len();
        let n = x.len();
        let (x, out) = (x, &mut out[..n]);
        if n >= len {
            let (older, newer) = self.ring.split_at(self.pos);
            let (first, rest) = out.split_at_mut(newer.len());
            for (o, &v) in first.iter_mut().zip(newer) {
                *o = f(v);
            }
            let (second, rest) = rest.split_at_mut(older.len());
            for (o, &v) in second.iter_mut().zip(older) {
                *o = f(v);
            }
            for (o, &v) in rest.iter_mut().zip(&x[..n - len]) {
                *o = f(v);
            }
            self.ring.copy_from_slice(&x[n - len..]);
            self.pos = 0;
            return;
        }
        let mut done = 0;
        while done < x.len() {
            let k = (x.len() - done).min(len - self.pos);
            let ring = &mut self.ring[self.pos..self.pos + k];
            for ((o, r), &v) in out[done..done + k].iter_mut().zip(ring).zip(&x[done..]) {
                *o = f(*r);
                *r = v;
            }
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
crate::signal_state!(WindowMin { state: hist; });
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
    ///
    /// The envelopes are a recursion from sample to sample, the one part of the gain path that
    /// cannot run in vectors: its latency is the limiter's floor. The flushes are branches
    /// marked cold (an envelope reaches the flush once per release, then stays at zero), which
    /// takes their compare and select off the recursion; the same values as selecting.
    #[inline(always)]
    pub fn fixed(&mut self, target: f64, k: &ReleaseCoefs) -> f64 {
        let u_t = 1.0 - target;
        let mut u = self.slow * k.slow;
        if u < FLUSH {
            std::hint::cold_path();
            u = 0.0;
        }
        if u_t > u {
            u = u_t;
        }
        self.slow = u;
        lesser(1.0 - u, target)
    }

    /// Program-dependent release: a fast envelope (instant attack, release τ/10) and a
    /// sustained envelope that charges towards the reduction with time constant τ and releases
    /// with τ. The larger reduction wins: a short peak barely charges the sustained envelope and
    /// recovers at the fast rate; a long stretch of limiting recovers at the slow rate.
    ///
    /// As in [`Self::fixed`], the flushes are cold branches; so is the sustained envelope's
    /// release, which leaves on the recursion only the charging (or only the release) while
    /// either lasts: charging takes thousands of samples, and the branch's direction changes
    /// only where the reduction crosses the envelope.
    #[inline(always)]
    pub fn auto(&mut self, target: f64, k: &ReleaseCoefs) -> f64 {
        let u_t = 1.0 - target;
        let mut f = self.fast * k.fast;
        if f < FLUSH {
            std::hint::cold_path();
            f = 0.0;
        }
        if u_t > f {
            f = u_t;
        }
        let mut s = if u_t > self.slow {
            self.slow + (u_t - self.slow) * k.charge
        } else {
            std::hint::cold_path();
            self.slow * k.slow
        };
        if s < FLUSH {
            std::hint::cold_path();
            s = 0.0;
        }
        self.fast = f;
        self.slow = s;
        lesser(1.0 - greater(f, s), target)
    }
}

/// The larger of two reductions (never NaN: what `f64::max` gives, without its NaN test).
#[inline(always)]
fn greater(a: f64, b: f64) -> f64 {
    if a > b {
        a
    } else {
        b
    }
}

/// The smaller of two gains (never NaN: what `f64::min` gives, without its NaN test).
#[inline(always)]
fn lesser(a: f64, b: f64) -> f64 {
    if a < b {
        a
    } else {
        b
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

    /// A generator of test gains: runs of ones (limiting stops) and of values on the 2⁻³² grid
    /// at random levels, in runs of random lengths.
    struct Gains(u64);

    impl Gains {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 11
        }
        fn unit(&mut self) -> f64 {
            self.next() as f64 / (1u64 << 53) as f64
        }
        /// A block of `n`: all ones with probability 1/4, else mixed.
        fn block(&mut self, n: usize) -> Vec<f64> {
            let ones = self.next() % 4 == 0;
            (0..n)
                .map(|_| {
                    if ones || self.next() % 3 == 0 {
                        1.0
                    } else {
                        quantize_down(0.1 + 0.9 * self.unit())
                    }
                })
                .collect()
        }
        fn len(&mut self, max: u64) -> usize {
            (1 + self.next() % max) as usize
        }
    }

    /// The block minimum gives the deque's minima bit for bit, for windows of every kind of
    /// length (powers of two and 4, one more and less) and blocks shorter and longer than them,
    /// with skips over ones in between.
    #[test]
    fn window_min_blocks_give_the_deques_minima() {
        let mut gen = Gains(3);
        for len in [
            1usize, 2, 3, 4, 5, 7, 8, 15, 16, 17, 63, 64, 65, 83, 90, 257,
        ] {
            let mut deque = SlidingMin::new(len);
            let mut block = WindowMin::new(len);
            let mut checked = 0;
            for _ in 0..200 {
                let max = if gen.next() % 2 == 0 { 8 } else { 600 };
                let n = gen.len(max);
                let v = gen.block(n);
                if block.is_unity() && v.iter().all(|&g| g == 1.0) {
                    // (The deque's test also asks the value about to leave: pushed here.)
                    assert!(v.iter().all(|&g| deque.push(g) == 1.0));
                    block.skip_unity(n);
                    continue;
                }
                let want: Vec<f64> = v.iter().map(|&g| deque.push(g)).collect();
                let mut got = v.clone();
                let mut a = vec![0.0; block.scratch_len(n)];
                let mut b = a.clone();
                block.push_block_then(&mut got, &mut a, &mut b, |m| m);
                for (w, g) in want.iter().zip(&got) {
                    assert_eq!(w.to_bits(), g.to_bits(), "window {len}, block {n}");
                }
                checked += n;
            }
            assert!(checked > 10_000, "{checked}");
        }
    }

    /// The release envelopes give the bits of their formulas written with selects and
    /// `f64::max`/`min` (as they were before the cold branches), over limiting that charges,
    /// releases, and decays to the flush, for both modes.
    #[test]
    fn release_gives_the_bits_of_its_formulas() {
        let fs = 44_100.0;
        let reference = |st: &mut (f64, f64), target: f64, k: &ReleaseCoefs, auto: bool| {
            let u_t = 1.0 - target;
            if !auto {
                let mut u = st.1 * k.slow;
                if u < FLUSH {
                    u = 0.0;
                }
                if u_t > u {
                    u = u_t;
                }
                st.1 = u;
                return (1.0 - u).min(target);
            }
            let mut f = st.0 * k.fast;
            if f < FLUSH {
                f = 0.0;
            }
            if u_t > f {
                f = u_t;
            }
            let mut s = if u_t > st.1 {
                st.1 + (u_t - st.1) * k.charge
            } else {
                st.1 * k.slow
            };
            if s < FLUSH {
                s = 0.0;
            }
            *st = (f, s);
            (1.0 - f.max(s)).min(target)
        };
        let mut gen = Gains(5);
        for auto in [true, false] {
            // (Only the shortest release decays to the flush within these stretches.)
            let mut idle = 0;
            for ms in [1.0, 60.0, 1000.0] {
                let k = ReleaseCoefs::new(ms, fs);
                let mut rel = Release::default();
                let mut st = (0.0, 0.0);
                for _ in 0..400 {
                    // Stretches of limiting, and of none long enough to decay to the flush.
                    let max = if gen.next() % 2 == 0 { 300 } else { 30_000 };
                    let len = gen.len(max);
                    let g = if gen.next() % 3 == 0 {
                        1.0
                    } else {
                        quantize_down(0.3 + 0.7 * gen.unit())
                    };
                    for _ in 0..len {
                        let target = if g < 1.0 && gen.next() % 4 == 0 {
                            quantize_down(g * gen.unit())
                        } else {
                            g
                        };
                        let want = reference(&mut st, target, &k, auto);
                        let got = if auto {
                            rel.auto(target, &k)
                        } else {
                            rel.fixed(target, &k)
                        };
                        assert_eq!(want.to_bits(), got.to_bits());
                        assert_eq!(
                            (rel.fast.to_bits(), rel.slow.to_bits()),
                            (st.0.to_bits(), st.1.to_bits())
                        );
                        idle += usize::from(rel.is_idle());
                    }
                }
            }
            assert!(idle > 1000, "{idle}");
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
            view.close();
            for (w, g) in want.iter().zip(&got) {
                assert_eq!(w.to_bits(), g.to_bits());
            }
        }
    }

    /// The delay line's block passes (in place, times gains, into another buffer through a
    /// function) give the bits of one swap at a time, over blocks shorter and longer than the
    /// line, from every position in the ring.
    #[test]
    fn delay_blocks_give_the_bits_of_one_swap_at_a_time() {
        let mut gen = Gains(17);
        for len in [1usize, 2, 7, 64, 150] {
            let mut one = Delay::new(len, 0.0);
            let (mut shifted, mut scaled, mut into) = (one.clone(), one.clone(), one.clone());
            let mut spare = vec![0.0; len];
            let mut long = 0;
            for _ in 0..300 {
                let max = if gen.next() % 2 == 0 {
                    len as u64 + 2
                } else {
                    900
                };
                let n = gen.len(max);
                long += usize::from(n >= len);
                let x: Vec<f64> = (0..n).map(|_| gen.unit() - 0.5).collect();
                let g = gen.block(n);
                let want: Vec<f64> = x.iter().map(|&v| one.swap(v)).collect();
                let mut got = x.clone();
                shifted.delay_block(&mut got, &mut spare);
                let bits = |v: &[f64]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&want), "line {len}, block {n}");
                let mut got = x.clone();
                scaled.delay_scaled(&mut got, &g, &mut spare);
                let times: Vec<f64> = want.iter().zip(&g).map(|(&d, &g)| d * g).collect();
                assert_eq!(bits(&got), bits(&times), "line {len}, block {n}");
                let mut got = vec![0.0; n];
                into.delay_into(&x, &mut got, |v| -v);
                let negated: Vec<f64> = want.iter().map(|&d| -d).collect();
                assert_eq!(bits(&got), bits(&negated), "line {len}, block {n}");
            }
            assert!(long > 20, "line {len}: {long} blocks at least as long");
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
