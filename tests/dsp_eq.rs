//! The parametric EQ through the real engine: magnitude responses against an independently coded
//! reference (the bilinear transform of each analog prototype), transparency at 0 dB, mid/side,
//! block-size invariance with automation, no clicks on parameter steps, stability under fast
//! automation — all under the allocation guard.
use crate::common;

use std::f64::consts::PI;
use stemgraph::automation::{Breakpoint, Curve, Shape};
use stemgraph::dsp::{ConfigValue, Handover, ProcessorConfig};
use stemgraph::graph::{AutomationSpec, GraphSpec};
use stemgraph::render::in_memory::{render_in_memory, single_processor_graph, Planar};

// ---------------------------------------------------------------------------------------------
// Helpers

/// One band table.
fn band(kind: &str, opts: &[(&str, f64)]) -> ConfigValue {
    let mut c = ProcessorConfig::new().text("type", kind);
    for (k, v) in opts {
        c = c.num(k, *v);
    }
    ConfigValue::Table(c)
}

/// A band table with a `mode`.
fn band_mode(kind: &str, mode: &str, opts: &[(&str, f64)]) -> ConfigValue {
    match band(kind, opts) {
        ConfigValue::Table(c) => ConfigValue::Table(c.text("mode", mode)),
        _ => unreachable!(),
    }
}

/// An `eq` graph with `bands` for `channels` channels.
fn eq_graph(bands: Vec<ConfigValue>, channels: usize) -> GraphSpec {
    single_processor_graph(
        "eq",
        ProcessorConfig::new().with("bands", ConfigValue::List(bands)),
        channels,
    )
}

/// Renders under the allocation guard and checks it saw no allocation.
fn render(spec: &GraphSpec, input: &Planar, fs: f64, block: usize) -> Planar {
    let (out, violations) =
        common::alloc_violations(|| render_in_memory(spec, std::slice::from_ref(input), fs, block));
    assert_eq!(violations, 0, "allocation on the audio path");
    out.expect("render").remove(0)
}

/// A curve through `(position, value, shape)` points.
fn curve(points: &[(i64, f64, Shape)]) -> Curve {
    Curve::new(
        points
            .iter()
            .map(|&(pos, value, shape)| Breakpoint { pos, value, shape })
            .collect(),
    )
    .unwrap()
}

fn automate(spec: &mut GraphSpec, param: &str, c: Curve) {
    spec.automation.push(AutomationSpec {
        param: param.into(),
        curve: c,
        origin: None,
    });
}

/// Largest sample-to-sample jump of `x` from index `from` on.
fn max_jump(x: &[f64], from: usize) -> f64 {
    x[from.max(1)..]
        .iter()
        .zip(&x[from.max(1) - 1..])
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max)
}

// ---------------------------------------------------------------------------------------------
// The independent reference: analog prototypes through the bilinear transform.

#[derive(Clone, Copy, Debug)]
struct C(f64, f64);

impl std::ops::Add for C {
    type Output = C;
    fn add(self, o: C) -> C {
        C(self.0 + o.0, self.1 + o.1)
    }
}
impl std::ops::Mul for C {
    type Output = C;
    fn mul(self, o: C) -> C {
        C(self.0 * o.0 - self.1 * o.1, self.0 * o.1 + self.1 * o.0)
    }
}
impl std::ops::Div for C {
    type Output = C;
    fn div(self, o: C) -> C {
        let d = o.0 * o.0 + o.1 * o.1;
        C(
            (self.0 * o.0 + self.1 * o.1) / d,
            (self.1 * o.0 - self.0 * o.1) / d,
        )
    }
}
impl C {
    fn re(x: f64) -> C {
        C(x, 0.0)
    }
    fn abs(self) -> f64 {
        self.0.hypot(self.1)
    }
}

/// `a·s² + b·s + c` at `s`.
fn quad(s: C, a: f64, b: f64, c: f64) -> C {
    C::re(a) * s * s + C::re(b) * s + C::re(c)
}

/// What a test band is, for the reference.
#[derive(Clone, Copy, Debug)]
enum Ref {
    Bell {
        gain_db: f64,
        q: f64,
    },
    LowShelf {
        gain_db: f64,
        q: f64,
    },
    HighShelf {
        gain_db: f64,
        q: f64,
    },
    /// Butterworth of the given order (magnitude 1/(1+Ω^2N) form).
    ButterHighPass {
        order: i32,
    },
    ButterLowPass {
        order: i32,
    },
    /// A single resonant 12 dB/oct section.
    HighPass2 {
        q: f64,
    },
    LowPass2 {
        q: f64,
    },
    Notch {
        q: f64,
    },
    BandPass {
        q: f64,
    },
    Tilt {
        gain_db: f64,
    },
}

/// The analog prototype's magnitude at normalised frequency `w` (= 1 at the band's frequency).
fn analog_mag(r: Ref, w: f64) -> f64 {
    let s = C(0.0, w);
    let a = |g: f64| 10f64.powf(g / 40.0);
    match r {
        Ref::Bell { gain_db, q } => {
            let a = a(gain_db);
            (quad(s, 1.0, a / q, 1.0) / quad(s, 1.0, 1.0 / (a * q), 1.0)).abs()
        }
        Ref::LowShelf { gain_db, q } => {
            let a = a(gain_db);
            let sa = a.sqrt();
            (C::re(a) * quad(s, 1.0, sa / q, a) / quad(s, a, sa / q, 1.0)).abs()
        }
        Ref::HighShelf { gain_db, q } => {
            let a = a(gain_db);
            let sa = a.sqrt();
            (C::re(a) * quad(s, a, sa / q, 1.0) / quad(s, 1.0, sa / q, a)).abs()
        }
        Ref::ButterHighPass { order } => {
            let p = w.powi(2 * order);
            (p / (1.0 + p)).sqrt()
        }
        Ref::ButterLowPass { order } => (1.0 / (1.0 + w.powi(2 * order))).sqrt(),
        Ref::HighPass2 { q } => (quad(s, 1.0, 0.0, 0.0) / quad(s, 1.0, 1.0 / q, 1.0)).abs(),
        Ref::LowPass2 { q } => (C::re(1.0) / quad(s, 1.0, 1.0 / q, 1.0)).abs(),
        Ref::Notch { q } => (quad(s, 1.0, 0.0, 1.0) / quad(s, 1.0, 1.0 / q, 1.0)).abs(),
        Ref::BandPass { q } => (quad(s, 0.0, 1.0 / q, 0.0) / quad(s, 1.0, 1.0 / q, 1.0)).abs(),
        Ref::Tilt { gain_db } => {
            let a = a(gain_db);
            ((C::re(a) * s + C::re(1.0)) / (s + C::re(a))).abs()
        }
    }
}

/// The digital reference: the analog prototype through the bilinear transform prewarped at `f0`
/// (`s = j·tan(ω/2)/tan(ω0/2)`), the frequency clamped to 0.49·fs like the processor's.
fn digital_ref(r: Ref, f0: f64, f: f64, fs: f64) -> f64 {
    let f0 = f0.min(0.49 * fs);
    let w = (PI * f / fs).tan() / (PI * f0 / fs).tan();
    analog_mag(r, w)
}

/// |DFT| of `h` at frequency `f` (a rotating phasor, renormalised every 1024 samples).
fn dft_mag(h: &[f64], f: f64, fs: f64) -> f64 {
    let w = 2.0 * PI * f / fs;
    let (mut re, mut im) = (0.0, 0.0);
    for (k, chunk) in h.chunks(1024).enumerate() {
        let phase = -w * (k * 1024) as f64;
        let (mut pr, mut pi) = (phase.cos(), phase.sin());
        let (sr, si) = (w.cos(), -w.sin());
        for &x in chunk {
            re += x * pr;
            im += x * pi;
            let t = pr * sr - pi * si;
            pi = pr * si + pi * sr;
            pr = t;
        }
    }
    re.hypot(im)
}

/// Frequencies from 10 Hz to 0.45·fs, log-spaced, plus `extra`.
fn grid(fs: f64, n: usize, extra: &[f64]) -> Vec<f64> {
    let (lo, hi) = (10f64, 0.45 * fs);
    let mut v: Vec<f64> = (0..n)
        .map(|i| lo * (hi / lo).powf(i as f64 / (n - 1) as f64))
        .collect();
    v.extend(extra.iter().copied().filter(|&f| f <= hi));
    v
}

/// The impulse response of a one-band EQ through the engine, `seconds` long.
fn impulse_response(b: ConfigValue, fs: f64, seconds: f64) -> Vec<f64> {
    let n = (seconds * fs) as usize;
    let mut x = vec![0.0; n];
    x[0] = 1.0;
    let out = render(&eq_graph(vec![b], 1), &vec![x], fs, 4096);
    out[0].clone()
}

/// The error (dB) of the measured response against the reference where the reference is above
/// −100 dB; below, the linear difference must stay under 1e−6 (checked, not returned).
fn response_error(h: &[f64], r: Ref, f0: f64, fs: f64, what: &str) -> f64 {
    let tail = &h[h.len() * 9 / 10..];
    let tail_max = tail.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    assert!(
        tail_max < 1e-13,
        "{what}: impulse response not decayed ({tail_max:e})"
    );
    let mut worst = 0.0f64;
    for f in grid(fs, 64, &[f0, 20.0, 1000.0, 16000.0, 20000.0]) {
        let m = dft_mag(h, f, fs);
        let r = digital_ref(r, f0, f, fs);
        if r > 1e-5 {
            let e = (20.0 * (m / r).log10()).abs();
            assert!(
                e < 0.01,
                "{what}: at {f:.1} Hz measured {:.5} dB, reference {:.5} dB",
                20.0 * m.log10(),
                20.0 * r.log10()
            );
            worst = worst.max(e);
        } else {
            assert!((m - r).abs() < 1e-6, "{what}: at {f:.1} Hz {m:e} vs {r:e}");
        }
    }
    worst
}

// ---------------------------------------------------------------------------------------------
// Magnitude responses

#[test]
fn magnitude_responses_match_the_bilinear_reference() {
    // (band table, reference, frequency, IR length in seconds)
    let cases: Vec<(ConfigValue, Ref, f64, f64)> = vec![
        (
            band("bell", &[("freq_hz", 1000.0), ("gain_db", 6.0), ("q", 1.0)]),
            Ref::Bell {
                gain_db: 6.0,
                q: 1.0,
            },
            1000.0,
            0.5,
        ),
        (
            band(
                "bell",
                &[("freq_hz", 100.0), ("gain_db", -12.0), ("q", 4.0)],
            ),
            Ref::Bell {
                gain_db: -12.0,
                q: 4.0,
            },
            100.0,
            1.0,
        ),
        (
            band(
                "bell",
                &[("freq_hz", 1000.0), ("gain_db", 30.0), ("q", 10.0)],
            ),
            Ref::Bell {
                gain_db: 30.0,
                q: 10.0,
            },
            1000.0,
            1.0,
        ),
        (
            band(
                "bell",
                &[("freq_hz", 16000.0), ("gain_db", 6.0), ("q", 1.0)],
            ),
            Ref::Bell {
                gain_db: 6.0,
                q: 1.0,
            },
            16000.0,
            0.5,
        ),
        (
            band("bell", &[("freq_hz", 30.0), ("gain_db", -30.0), ("q", 0.3)]),
            Ref::Bell {
                gain_db: -30.0,
                q: 0.3,
            },
            30.0,
            4.0,
        ),
        (
            band(
                "low_shelf",
                &[("freq_hz", 20.0), ("gain_db", 6.0), ("q", 0.707)],
            ),
            Ref::LowShelf {
                gain_db: 6.0,
                q: 0.707,
            },
            20.0,
            1.0,
        ),
        (
            band(
                "low_shelf",
                &[("freq_hz", 200.0), ("gain_db", -8.0), ("q", 1.2)],
            ),
            Ref::LowShelf {
                gain_db: -8.0,
                q: 1.2,
            },
            200.0,
            0.5,
        ),
        (
            band("high_shelf", &[("freq_hz", 8000.0), ("gain_db", 4.0)]),
            Ref::HighShelf {
                gain_db: 4.0,
                q: std::f64::consts::FRAC_1_SQRT_2,
            },
            8000.0,
            0.5,
        ),
        (
            band(
                "high_shelf",
                &[("freq_hz", 3000.0), ("gain_db", -6.0), ("q", 2.0)],
            ),
            Ref::HighShelf {
                gain_db: -6.0,
                q: 2.0,
            },
            3000.0,
            0.5,
        ),
        (
            band("high_pass", &[("freq_hz", 20.0), ("slope_db", 12.0)]),
            Ref::ButterHighPass { order: 2 },
            20.0,
            1.0,
        ),
        (
            band("high_pass", &[("freq_hz", 20.0), ("slope_db", 24.0)]),
            Ref::ButterHighPass { order: 4 },
            20.0,
            1.5,
        ),
        (
            band("high_pass", &[("freq_hz", 20.0), ("slope_db", 48.0)]),
            Ref::ButterHighPass { order: 8 },
            20.0,
            2.0,
        ),
        (
            band("high_pass", &[("freq_hz", 500.0), ("q", 2.0)]),
            Ref::HighPass2 { q: 2.0 },
            500.0,
            0.5,
        ),
        (
            band("low_pass", &[("freq_hz", 5000.0), ("slope_db", 12.0)]),
            Ref::ButterLowPass { order: 2 },
            5000.0,
            0.5,
        ),
        (
            band("low_pass", &[("freq_hz", 5000.0), ("slope_db", 24.0)]),
            Ref::ButterLowPass { order: 4 },
            5000.0,
            0.5,
        ),
        (
            band("low_pass", &[("freq_hz", 15000.0), ("slope_db", 48.0)]),
            Ref::ButterLowPass { order: 8 },
            15000.0,
            0.5,
        ),
        (
            band("low_pass", &[("freq_hz", 200.0), ("q", 0.5)]),
            Ref::LowPass2 { q: 0.5 },
            200.0,
            0.5,
        ),
        (
            band("notch", &[("freq_hz", 1000.0), ("q", 4.0)]),
            Ref::Notch { q: 4.0 },
            1000.0,
            0.5,
        ),
        (
            band("notch", &[("freq_hz", 60.0), ("q", 10.0)]),
            Ref::Notch { q: 10.0 },
            60.0,
            2.5,
        ),
        (
            band("band_pass", &[("freq_hz", 2000.0), ("q", 2.0)]),
            Ref::BandPass { q: 2.0 },
            2000.0,
            0.5,
        ),
        (
            band("tilt", &[("freq_hz", 1000.0), ("gain_db", 6.0)]),
            Ref::Tilt { gain_db: 6.0 },
            1000.0,
            0.5,
        ),
        (
            band("tilt", &[("freq_hz", 300.0), ("gain_db", -10.0)]),
            Ref::Tilt { gain_db: -10.0 },
            300.0,
            0.5,
        ),
    ];
    let mut worst = 0.0f64;
    for fs in [44100.0, 48000.0, 96000.0] {
        for (b, r, f0, secs) in &cases {
            let h = impulse_response(b.clone(), fs, *secs);
            let what = format!("{r:?} at {f0} Hz, fs {fs}");
            worst = worst.max(response_error(&h, *r, *f0, fs, &what));
        }
    }
    println!("largest deviation from the bilinear reference: {worst:.3e} dB");
}

/// How the digital bell departs from its *analog* prototype near Nyquist ("cramping"): the
/// bilinear transform maps the analog frequency axis onto 0…fs/2, so a bell at 16 kHz at
/// 44.1 kHz is exact at 16 kHz but squeezed above it, reaching 0 dB at Nyquist where the analog
/// bell still has most of its gain. Figures in docs/dsp.md.
#[test]
fn bell_cramping_near_nyquist_is_as_documented() {
    let fs = 44100.0;
    let r = Ref::Bell {
        gain_db: 6.0,
        q: 1.0,
    };
    let h = impulse_response(
        band(
            "bell",
            &[("freq_hz", 16000.0), ("gain_db", 6.0), ("q", 1.0)],
        ),
        fs,
        0.5,
    );
    let db = |x: f64| 20.0 * x.log10();
    let mut rows = Vec::new();
    for f in [8000.0, 12000.0, 16000.0, 18000.0, 20000.0, 22000.0] {
        let digital = db(dft_mag(&h, f, fs));
        let analog = db(analog_mag(r, f / 16000.0));
        println!(
            "{f:>6.0} Hz  digital {digital:+.2} dB  analog {analog:+.2} dB  difference {:+.2} dB",
            digital - analog
        );
        rows.push((f, digital, analog));
    }
    let get = |f: f64| rows.iter().find(|r| r.0 == f).unwrap();
    // Exact at the centre.
    assert!((get(16000.0).1 - 6.0).abs() < 0.01);
    // Below the centre the digital bell is narrower (the warp stretches the low side less).
    let (_, d8, a8) = *get(8000.0);
    assert!(d8 < a8);
    // Figures quoted in docs/dsp.md (±0.05 dB).
    let (_, d20, a20) = *get(20000.0);
    let (_, d22, a22) = *get(22000.0);
    assert!((d20 - 0.71).abs() < 0.05, "20 kHz digital {d20}");
    assert!((a20 - 4.95).abs() < 0.05, "20 kHz analog {a20}");
    assert!(d22.abs() < 0.05, "22 kHz digital {d22}");
    assert!((a22 - 4.19).abs() < 0.05, "22 kHz analog {a22}");
    assert!(
        (d8 - 0.60).abs() < 0.05 && (a8 - 1.88).abs() < 0.05,
        "8 kHz {d8} {a8}"
    );
    assert!((get(18000.0).1 - 3.29).abs() < 0.05 && (get(12000.0).1 - 2.13).abs() < 0.05);
}

// ---------------------------------------------------------------------------------------------
// Transparency and mid/side

#[test]
fn bands_at_zero_db_are_transparent() {
    let fs = 48000.0;
    let x = common::noise(48000, 0.5, 7);
    let spec = eq_graph(
        vec![
            band("bell", &[("freq_hz", 1000.0), ("gain_db", 0.0), ("q", 3.0)]),
            band("low_shelf", &[("freq_hz", 80.0), ("gain_db", 0.0)]),
            band("high_shelf", &[("freq_hz", 9000.0), ("gain_db", 0.0)]),
            band("tilt", &[("freq_hz", 700.0), ("gain_db", 0.0)]),
            band_mode("bell", "mid", &[("freq_hz", 300.0), ("gain_db", 0.0)]),
            band_mode("low_shelf", "side", &[("freq_hz", 300.0), ("gain_db", 0.0)]),
        ],
        2,
    );
    let y = render(&spec, &x, fs, 512);
    let mut worst = 0.0f64;
    for c in 0..2 {
        for (a, b) in x[c].iter().zip(&y[c]) {
            worst = worst.max((a - b).abs());
        }
    }
    println!("0 dB bands: largest residual {worst:e}");
    assert!(worst < 1e-7, "residual {worst:e} is above −140 dBFS");
    // Without mid/side bands nothing is converted: bit-exact.
    let spec = eq_graph(
        vec![
            band("bell", &[("freq_hz", 1000.0), ("gain_db", 0.0), ("q", 3.0)]),
            band("high_shelf", &[("freq_hz", 9000.0), ("gain_db", 0.0)]),
        ],
        2,
    );
    assert_eq!(render(&spec, &x, fs, 512), x);
}

#[test]
fn a_bell_at_zero_db_through_the_svf_is_exact() {
    // Not skipped: the gain is automated (so the band runs per sample) but sits at exactly 0 dB
    // except in a short bump; outside the bump the output equals the input.
    let fs = 48000.0;
    let x = common::noise(24000, 0.5, 9);
    let mut spec = eq_graph(
        vec![band(
            "bell",
            &[("freq_hz", 2000.0), ("gain_db", 0.0), ("q", 1.0)],
        )],
        2,
    );
    automate(
        &mut spec,
        "fx.1.freq_hz",
        curve(&[
            (0, 500.0, Shape::Exponential),
            (24000, 5000.0, Shape::Linear),
        ]),
    );
    let y = render(&spec, &x, fs, 256);
    assert_eq!(y, x);
}

#[test]
fn side_only_processing_leaves_a_mono_signal_untouched() {
    let fs = 48000.0;
    let mono = common::noise(48000, 0.5, 3).remove(0);
    let x = vec![mono.clone(), mono.clone()];
    let spec = eq_graph(
        vec![
            band_mode(
                "high_shelf",
                "side",
                &[("freq_hz", 2000.0), ("gain_db", -12.0)],
            ),
            band_mode(
                "high_pass",
                "side",
                &[("freq_hz", 200.0), ("slope_db", 24.0)],
            ),
        ],
        2,
    );
    let y = render(&spec, &x, fs, 1000);
    assert_eq!(y, x, "a side-only EQ changed a mono signal");

    // A pure side signal (L = −R) gets the same filtering as a mono EQ applies to it.
    let x = vec![mono.clone(), mono.iter().map(|v| -v).collect()];
    let y = render(&spec, &x, fs, 1000);
    let mono_eq = eq_graph(
        vec![
            band("high_shelf", &[("freq_hz", 2000.0), ("gain_db", -12.0)]),
            band("high_pass", &[("freq_hz", 200.0), ("slope_db", 24.0)]),
        ],
        1,
    );
    let expected = render(&mono_eq, &vec![mono.clone()], fs, 1000).remove(0);
    let mut worst = 0.0f64;
    for n in 0..mono.len() {
        worst = worst.max((y[0][n] - expected[n]).abs());
        worst = worst.max((y[1][n] + expected[n]).abs());
    }
    assert!(worst < 1e-12, "side processing differs by {worst:e}");

    // And a mid-only band leaves the side alone.
    let spec = eq_graph(
        vec![band_mode(
            "bell",
            "mid",
            &[("freq_hz", 500.0), ("gain_db", 9.0)],
        )],
        2,
    );
    let y = render(&spec, &x, fs, 1000);
    let worst = (0..mono.len())
        .map(|n| (y[0][n] - x[0][n]).abs().max((y[1][n] - x[1][n]).abs()))
        .fold(0.0, f64::max);
    assert!(worst < 1e-12, "a mid band touched the side: {worst:e}");
}

#[test]
fn configuration_errors_are_explained() {
    use stemgraph::dsp::registry::build;
    let cfg =
        |bands: Vec<ConfigValue>| ProcessorConfig::new().with("bands", ConfigValue::List(bands));
    let err = |c: ProcessorConfig, ch: usize| build("eq", &c, ch).err().unwrap().to_string();
    let e = err(cfg(vec![band_mode("bell", "side", &[])]), 1);
    assert!(e.contains("stereo input"), "{e}");
    let e = err(cfg(vec![band("bel", &[])]), 2);
    assert!(e.contains("did you mean") && e.contains("bell"), "{e}");
    let e = err(cfg(vec![band("notch", &[("gain_db", 3.0)])]), 2);
    assert!(e.contains("no gain"), "{e}");
    let e = err(
        cfg(vec![band("high_pass", &[("slope_db", 24.0), ("q", 2.0)])]),
        2,
    );
    assert!(e.contains("Butterworth"), "{e}");
    let e = err(cfg(vec![band("low_pass", &[("slope_db", 36.0)])]), 2);
    assert!(e.contains("12, 24 or 48"), "{e}");
    let e = err(cfg(vec![band("bell", &[("freq_hz", 5.0)])]), 2);
    assert!(e.contains("1.freq_hz"), "{e}");
    let e = err(cfg(vec![band("bell", &[("gian_db", 1.0)])]), 2);
    assert!(e.contains("gain_db"), "{e}");
    // Parameter ids and what each type declares.
    let b = build(
        "eq",
        &cfg(vec![
            band("bell", &[("gain_db", 2.0)]),
            band("tilt", &[]),
            band("high_pass", &[("slope_db", 48.0)]),
            band("low_pass", &[]),
        ]),
        2,
    )
    .unwrap();
    let names: Vec<&str> = b
        .processor
        .params()
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "1.freq_hz",
            "1.gain_db",
            "1.q",
            "2.freq_hz",
            "2.gain_db",
            "3.freq_hz",
            "4.freq_hz",
            "4.q"
        ]
    );
    assert_eq!(b.initial[1], 2.0);
    // The documentation example builds, in stereo.
    let kind = stemgraph::dsp::registry::find("eq").unwrap();
    assert!(build("eq", &(kind.example)(), 2).is_ok());
}

// ---------------------------------------------------------------------------------------------
// Automation: block-size invariance, no clicks, stability

fn automated_eq(len: i64) -> GraphSpec {
    let mut spec = eq_graph(
        vec![
            band("bell", &[("freq_hz", 200.0), ("gain_db", -6.0), ("q", 2.0)]),
            band("high_pass", &[("freq_hz", 30.0), ("slope_db", 24.0)]),
            band_mode("low_shelf", "mid", &[("freq_hz", 120.0), ("gain_db", 3.0)]),
            band("tilt", &[("freq_hz", 1000.0), ("gain_db", 0.0)]),
        ],
        2,
    );
    use Shape::*;
    automate(
        &mut spec,
        "fx.1.freq_hz",
        curve(&[
            (0, 200.0, Exponential),
            (len / 3, 6000.0, Step),
            (len / 2, 300.0, Linear),
            (len, 900.0, Linear),
        ]),
    );
    automate(
        &mut spec,
        "fx.1.gain_db",
        curve(&[
            (1000, -6.0, Linear),
            (len / 4, 9.0, Step),
            (len / 2, 0.0, Linear),
            (len * 3 / 4, 0.0, Linear),
            (len - 2000, 4.0, Linear),
        ]),
    );
    automate(
        &mut spec,
        "fx.2.freq_hz",
        curve(&[(len / 5, 30.0, Smooth), (len / 2, 400.0, Linear)]),
    );
    automate(
        &mut spec,
        "fx.4.gain_db",
        curve(&[
            (len / 3, 0.0, Step),
            (len / 2, -8.0, Linear),
            (len * 3 / 4, -8.0, Linear),
        ]),
    );
    spec
}

#[test]
fn output_is_independent_of_the_block_size_under_automation() {
    let fs = 48000.0;
    let len = 24000;
    let x = common::noise(len, 0.5, 11);
    let spec = automated_eq(len as i64);
    let reference = render(&spec, &x, fs, 4096);
    for block in [1, 64, 997] {
        let y = render(&spec, &x, fs, block);
        for c in 0..2 {
            let same = y[c]
                .iter()
                .zip(&reference[c])
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "block {block} differs from block 4096 (channel {c})");
        }
    }
}

/// A step test: one band of `kind` with `fixed` options, and `steps` of (option, from, to) taken
/// at the middle of the signal (the engine turns each into its 20 ms glide).
struct StepCase {
    what: &'static str,
    kind: &'static str,
    fixed: Vec<(&'static str, f64)>,
    steps: Vec<(&'static str, f64, f64)>,
}

impl StepCase {
    /// The band with every stepped option a fraction `u` of the way (in octaves for
    /// frequencies and quality factors, in dB for gains).
    fn band_at(&self, u: f64) -> ConfigValue {
        let mut opts = self.fixed.clone();
        for &(k, from, to) in &self.steps {
            let v = if k == "gain_db" {
                from + u * (to - from)
            } else {
                from * (to / from).powf(u)
            };
            opts.push((k, v));
        }
        band(self.kind, &opts)
    }
}

/// Renders the case on a sine; returns (largest jump with the step, largest jump of the filter
/// held still at any of 11 settings along the glide, largest jump of the input).
fn step_jumps(case: &StepCase, fs: f64, sine_hz: f64) -> (f64, f64, f64) {
    let n = (0.5 * fs) as usize;
    let x = common::sine(n, sine_hz, 0.5, fs);
    let mut spec = eq_graph(vec![case.band_at(0.0)], 2);
    for &(p, from, to) in &case.steps {
        automate(
            &mut spec,
            &format!("fx.1.{p}"),
            curve(&[
                (0, from, Shape::Step),
                (n as i64 / 2, to, Shape::Step),
                (n as i64, to, Shape::Step),
            ]),
        );
    }
    let y = render(&spec, &x, fs, 512);
    // Skip the start-up transient of the filters (first 50 ms).
    let skip = (0.05 * fs) as usize;
    let still = (0..=10)
        .map(|i| {
            let y = render(
                &eq_graph(vec![case.band_at(i as f64 / 10.0)], 2),
                &x,
                fs,
                512,
            );
            max_jump(&y[0], skip)
        })
        .fold(0.0, f64::max);
    (max_jump(&y[0], skip), still, max_jump(&x[0], 1))
}

#[test]
fn parameter_steps_do_not_click() {
    let fs = 48000.0;
    let cases = [
        StepCase {
            what: "bell 200 → 4000 Hz and 0 → +12 dB",
            kind: "bell",
            fixed: vec![("q", 1.0)],
            steps: vec![("freq_hz", 200.0, 4000.0), ("gain_db", 0.0, 12.0)],
        },
        StepCase {
            what: "low shelf 0 → +12 dB",
            kind: "low_shelf",
            fixed: vec![("freq_hz", 300.0)],
            steps: vec![("gain_db", 0.0, 12.0)],
        },
        StepCase {
            what: "48 dB/oct high-pass 20 → 2000 Hz",
            kind: "high_pass",
            fixed: vec![("slope_db", 48.0)],
            steps: vec![("freq_hz", 20.0, 2000.0)],
        },
        StepCase {
            what: "notch q 1 → 20",
            kind: "notch",
            fixed: vec![("freq_hz", 1500.0)],
            steps: vec![("q", 1.0, 20.0)],
        },
        StepCase {
            what: "tilt 0 → −12 dB",
            kind: "tilt",
            fixed: vec![("freq_hz", 600.0)],
            steps: vec![("gain_db", 0.0, -12.0)],
        },
    ];
    for case in &cases {
        for sine in [100.0, 1000.0] {
            let (jump, still, input) = step_jumps(case, fs, sine);
            println!(
                "{}, {sine} Hz sine: largest jump {jump:.4}, held still {still:.4} + input {input:.4}",
                case.what
            );
            assert!(
                jump <= still + input,
                "{} on a {sine} Hz sine clicks: jump {jump} > {still} + {input}",
                case.what
            );
        }
    }
}

#[test]
fn fast_sweeps_stay_stable() {
    let fs = 44100.0;
    let n = 44100;
    let x = common::noise(n, 0.5, 5);
    for b in [
        band("bell", &[("freq_hz", 20.0), ("gain_db", 18.0), ("q", 8.0)]),
        band("high_pass", &[("freq_hz", 20.0), ("slope_db", 48.0)]),
        band("low_pass", &[("freq_hz", 20.0), ("q", 10.0)]),
        band(
            "low_shelf",
            &[("freq_hz", 20.0), ("gain_db", 24.0), ("q", 4.0)],
        ),
        band(
            "high_shelf",
            &[("freq_hz", 20.0), ("gain_db", -30.0), ("q", 4.0)],
        ),
        band("notch", &[("freq_hz", 20.0), ("q", 40.0)]),
        band("band_pass", &[("freq_hz", 20.0), ("q", 40.0)]),
        band("tilt", &[("freq_hz", 20.0), ("gain_db", 30.0)]),
    ] {
        let mut spec = eq_graph(vec![b.clone()], 2);
        // 20 Hz → 20 kHz in 50 ms and back, over and over (and up to 24 kHz, clamped).
        let period = (0.05 * fs) as i64;
        let pts: Vec<(i64, f64, Shape)> = (0..(n as i64 / period))
            .map(|i| {
                let v = if i % 2 == 0 {
                    20.0
                } else if i % 4 == 1 {
                    20000.0
                } else {
                    24000.0
                };
                (i * period, v, Shape::Exponential)
            })
            .collect();
        automate(&mut spec, "fx.1.freq_hz", curve(&pts));
        let y = render(&spec, &x, fs, 333);
        let peak = y.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(
            y.iter().flatten().all(|v| v.is_finite()) && peak < 1000.0,
            "{b:?}: peak {peak}"
        );
    }
}

#[test]
fn hot_reload_carries_the_filter_states_of_an_unchanged_layout() {
    use stemgraph::dsp::param::ParamSlot;
    use stemgraph::dsp::registry::build;
    use stemgraph::dsp::{AudioBuffer, ParamBlock, ProcessSpec};
    let cfg = |gain: f64, kind: &str| {
        ProcessorConfig::new().with(
            "bands",
            ConfigValue::List(vec![band(kind, &[("freq_hz", 300.0), ("gain_db", gain)])]),
        )
    };
    let spec = ProcessSpec {
        sample_rate: 48000.0,
        max_block: 256,
        input_channels: 2,
    };
    let run = |p: &mut dyn stemgraph::dsp::Processor, initial: &[f64], x: f64| {
        let slots: Vec<ParamSlot> = initial.iter().map(|&v| ParamSlot::new(v, 256)).collect();
        let mut buf = AudioBuffer::new(2, 256);
        buf.channel_mut(0, 256).fill(x);
        buf.channel_mut(1, 256).fill(x);
        p.process(&mut buf.view_mut(256), None, ParamBlock::new(&slots));
        buf.channel(0, 256)[0]
    };
    let mut old = build("eq", &cfg(6.0, "bell"), 2).unwrap();
    old.processor.prepare(&spec);
    run(&mut *old.processor, &old.initial, 1.0);
    // Same layout, other values: adopted, so the first output continues the old filter's
    // response to the step (not the response of a filter at rest).
    let mut new = build("eq", &cfg(3.0, "bell"), 2).unwrap();
    new.processor.prepare(&spec);
    assert!(new
        .processor
        .take_state(&mut *old.processor, Handover::Move));
    let carried = run(&mut *new.processor, &new.initial, 1.0);
    let mut fresh = build("eq", &cfg(3.0, "bell"), 2).unwrap();
    fresh.processor.prepare(&spec);
    let at_rest = run(&mut *fresh.processor, &fresh.initial, 1.0);
    assert!((at_rest - carried).abs() > 1e-3, "{at_rest} vs {carried}");
    // Another layout (a shelf instead of a bell): not adopted.
    let mut other = build("eq", &cfg(6.0, "low_shelf"), 2).unwrap();
    other.processor.prepare(&spec);
    assert!(!other
        .processor
        .take_state(&mut *new.processor, Handover::Move));
}
