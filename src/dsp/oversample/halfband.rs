//! Half-band 2× stages, the building block of the cascades: one sample at a time ([`Up2`],
//! [`ShortUp2`], and [`Stage`] in both directions) and a chunk at a time ([`BlockUp2`],
//! [`BlockDown2`], on the block kernel [`halfband_dots`]), the same sums in the same order.

use super::design::HalfbandDesign;
use super::kernels::{dot, dot_n, halfband_dots};

/// A doubled ring buffer: `window()` is the last `len` inputs, newest first, contiguous.
#[derive(Debug, Clone)]
pub(crate) struct History {
    buf: Vec<f64>,
    pos: usize,
    len: usize,
}

impl History {
    pub(crate) fn new(len: usize) -> Self {
        Self {
            buf: vec![0.0; 2 * len],
            pos: 0,
            len,
        }
    }
    #[inline(always)]
    pub(crate) fn push(&mut self, x: f64) {
        self.pos = if self.pos == 0 {
            self.len - 1
        } else {
            self.pos - 1
        };
        self.buf[self.pos] = x;
        self.buf[self.pos + self.len] = x;
    }
    #[inline(always)]
    pub(crate) fn window(&self) -> &[f64] {
        &self.buf[self.pos..self.pos + self.len]
    }
    pub(crate) fn reset(&mut self) {
        self.buf.fill(0.0);
        self.pos = 0;
    }
}

/// One half-band 2× upsampling stage.
#[derive(Debug, Clone)]
pub(crate) struct Up2 {
    pub(crate) d: HalfbandDesign,
    hist: History,
}

impl Up2 {
    pub(crate) fn new(d: HalfbandDesign) -> Self {
        Self {
            hist: History::new(2 * d.m),
            d,
        }
    }
    /// One input sample → two output samples (in time order).
    #[inline(always)]
    pub(crate) fn up(&mut self, x: f64) -> [f64; 2] {
        self.hist.push(x);
        let w = self.hist.window();
        [dot(&self.d.a, w), w[self.d.m - 1]]
    }
    pub(crate) fn reset(&mut self) {
        self.hist.reset();
    }
}

/// Coefficient slots of a [`ShortUp2`].
pub(crate) const SHORT: usize = 12;

/// A short half-band 2× upsampling stage (at most [`SHORT`] odd taps), unrolled.
#[derive(Debug, Clone)]
pub(crate) struct ShortUp2 {
    pub(crate) a: [f64; SHORT],
    pub(crate) centre: usize,
    hist: History,
}

impl ShortUp2 {
    pub(crate) fn new(d: HalfbandDesign) -> Self {
        assert!(2 * d.m <= SHORT, "short half-band stage too long");
        let mut a = [0.0; SHORT];
        a[..2 * d.m].copy_from_slice(&d.a);
        Self {
            a,
            centre: d.m - 1,
            hist: History::new(SHORT),
        }
    }
    #[inline(always)]
    pub(crate) fn up(&mut self, x: f64) -> [f64; 2] {
        self.hist.push(x);
        let w: &[f64; SHORT] = self.hist.window().try_into().expect("window of SHORT");
        let mut s = [0.0; 4];
        for k in 0..SHORT / 4 {
            for i in 0..4 {
                s[i] += self.a[4 * k + i] * w[4 * k + i];
            }
        }
        [(s[0] + s[2]) + (s[1] + s[3]), w[self.centre]]
    }
    pub(crate) fn reset(&mut self) {
        self.hist.reset();
    }
}

/// One half-band stage in both directions.
#[derive(Debug, Clone)]
pub(crate) struct Stage {
    pub(crate) d: HalfbandDesign,
    /// Short stages keep their coefficients zero-padded in a fixed-size array (unrolled).
    kernel: Kernel,
    up: History,
    down_even: History,
    down_odd: History,
}

/// The coefficients of a [`Stage`], by size.
#[derive(Debug, Clone)]
pub(crate) enum Kernel {
    S8([f64; 8]),
    S16([f64; 16]),
    Long,
}

pub(crate) fn padded<const N: usize>(a: &[f64]) -> [f64; N] {
    let mut p = [0.0; N];
    p[..a.len()].copy_from_slice(a);
    p
}

impl Stage {
    pub(crate) fn new(d: HalfbandDesign) -> Self {
        let m = d.m;
        let (kernel, len) = match 2 * m {
            n if n <= 8 => (Kernel::S8(padded(&d.a)), 8),
            n if n <= 16 => (Kernel::S16(padded(&d.a)), 16),
            n => (Kernel::Long, n),
        };
        Self {
            up: History::new(len),
            down_even: History::new(len),
            down_odd: History::new(m + 1),
            kernel,
            d,
        }
    }
    /// The coefficients as [`Self::fir`] multiplies them (short kernels zero-padded).
    pub(crate) fn coefs(&self) -> Vec<f64> {
        match &self.kernel {
            Kernel::S8(a) => a.to_vec(),
            Kernel::S16(a) => a.to_vec(),
            Kernel::Long => self.d.a.clone(),
        }
    }
    #[inline(always)]
    pub(crate) fn fir(&self, w: &[f64]) -> f64 {
        match &self.kernel {
            Kernel::S8(a) => dot_n(a, w),
            Kernel::S16(a) => dot_n(a, w),
            Kernel::Long => dot(&self.d.a, w),
        }
    }
    /// One input sample → two output samples (in time order).
    #[inline(always)]
    pub(crate) fn up(&mut self, x: f64) -> [f64; 2] {
        self.up.push(x);
        let w = self.up.window();
        [self.fir(w), w[self.d.m - 1]]
    }
    /// Two input samples (in time order) → one output sample.
    #[inline(always)]
    pub(crate) fn down(&mut self, z: [f64; 2]) -> f64 {
        self.down_even.push(z[0]);
        let centre = self.down_odd.window()[self.d.m - 1];
        self.down_odd.push(z[1]);
        0.5 * (self.fir(self.down_even.window()) + centre)
    }
    pub(crate) fn reset(&mut self) {
        self.up.reset();
        self.down_even.reset();
        self.down_odd.reset();
    }
}

/// One half-band 2× stage run on chunks: [`Up2`] or [`ShortUp2`], the same sums in the same
/// order.
#[derive(Debug, Clone)]
pub(crate) struct BlockUp2 {
    /// Odd-tap coefficients, newest input first (as [`HalfbandDesign`]; a short stage's
    /// zero-padded to [`SHORT`], as [`ShortUp2`] multiplies them).
    a: Vec<f64>,
    /// Which input of the window is the delayed centre (`m − 1`, newest first).
    centre: usize,
    /// The last `a.len() − 1` inputs in time order, then the chunk's inputs.
    ext: Vec<f64>,
}

impl BlockUp2 {
    pub(crate) fn with(a: Vec<f64>, centre: usize, max_in: usize) -> Self {
        let h = a.len() - 1;
        Self {
            a,
            centre,
            ext: vec![0.0; h + max_in],
        }
    }

    pub(crate) fn reset(&mut self) {
        self.ext.fill(0.0);
    }

    /// Two outputs per input of `u` into `out` (in time order: the interpolated value, then
    /// the delayed input), as [`Up2::up`] / [`ShortUp2::up`] give them one by one. `dots` is scratch.
    #[inline(always)]
    pub(crate) fn run(&mut self, u: &[f64], out: &mut [f64], dots: &mut [f64]) {
        let h = self.a.len() - 1;
        let n = u.len();
        self.ext[h..h + n].copy_from_slice(u);
        halfband_dots(&self.a, &self.ext[..h + n], &mut dots[..n]);
        // Interleaved through slices taken once (no bounds check or field reload per frame).
        let delayed = &self.ext[h - self.centre..h - self.centre + n];
        for ((o, &d), &c) in out[..2 * n]
            .chunks_exact_mut(2)
            .zip(&dots[..n])
            .zip(delayed)
        {
            o[0] = d;
            o[1] = c;
        }
        self.ext.copy_within(n..n + h, 0);
    }
}

/// One half-band decimating stage run on chunks (the down half of [`Stage`], the same sums in
/// the same order).
#[derive(Debug, Clone)]
pub(crate) struct BlockDown2 {
    /// The stage's coefficients as [`Stage::fir`] uses them (short ones zero-padded).
    a: Vec<f64>,
    m: usize,
    /// The last `a.len() − 1` even inputs, then the chunk's.
    even: Vec<f64>,
    /// The last `m` odd inputs, then the chunk's.
    odd: Vec<f64>,
}

impl BlockDown2 {
    pub(crate) fn new(st: &Stage, max_out: usize) -> Self {
        let a = st.coefs();
        Self {
            even: vec![0.0; a.len() - 1 + max_out],
            odd: vec![0.0; st.d.m + max_out],
            a,
            m: st.d.m,
        }
    }

    pub(crate) fn reset(&mut self) {
        self.even.fill(0.0);
        self.odd.fill(0.0);
    }

    /// One output per pair of `z` (in time order), as [`Stage::down`] gives them one by one:
    /// `½·(dot(a, evens) + the odd input m pairs back)`.
    #[inline(always)]
    pub(crate) fn run(&mut self, z: &[f64], out: &mut [f64]) {
        let n = z.len() / 2;
        let (h, m) = (self.a.len() - 1, self.m);
        // Deinterleaved through slices taken once (no bounds check or field reload per pair).
        let (even, odd) = (&mut self.even[h..h + n], &mut self.odd[m..m + n]);
        for ((e, o), p) in even.iter_mut().zip(odd.iter_mut()).zip(z.chunks_exact(2)) {
            *e = p[0];
            *o = p[1];
        }
        halfband_dots(&self.a, &self.even[..h + n], &mut out[..n]);
        for (o, &c) in out[..n].iter_mut().zip(&self.odd[..n]) {
            *o = 0.5 * (*o + c);
        }
        self.even.copy_within(n..n + h, 0);
        self.odd.copy_within(n..n + m, 0);
    }
}

// Hot reload: the whole contents are handed over in place (see `dsp::state`).
crate::signal_state!(BlockUp2 { copy: centre; state: a, ext; });
crate::signal_state!(BlockDown2 { copy: m; state: a, even, odd; });
