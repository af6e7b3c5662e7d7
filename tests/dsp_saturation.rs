//! Saturation: aliasing of a driven 15 kHz tone, real saturation of a 1 kHz tone, latency-aligned
//! dry/wet mix, block-size invariance with automation, no clicks, no allocation.
use crate::analysis;
use crate::common;

use analysis::*;
use stemgraph::dsp::ProcessorConfig;
use stemgraph::render::in_memory::Planar;

const FS: f64 = 48_000.0;
const CHARACTERS: [&str; 3] = ["soft", "tape", "tube"];

fn sat(character: &str, drive: f64, mix: f64) -> ProcessorConfig {
    ProcessorConfig::new()
        .text("character", character)
        .num("drive_db", drive)
        .num("mix_pct", mix)
}

fn run(cfg: ProcessorConfig, x: &Planar, block: usize) -> Planar {
    let spec = graph("saturation", cfg, x.len(), &[]);
    let (y, v) = render(&spec, x, FS, block);
    assert_eq!(v, 0, "allocations in the audio path");
    y
}

#[test]
fn aliases_of_a_driven_15_khz_tone_stay_below_minus_60_dbc() {
    // 15 kHz falls exactly on bin 10240 of a 32768-point FFT at 48 kHz.
    let n = 1 << 15;
    let x = vec![common::sine(n + 8_000, 15_000.0, 1.0, FS)[0].clone()];
    for character in CHARACTERS {
        let y = run(sat(character, 12.0, 100.0), &x, 512);
        let spec = power_spectrum(&y[0][8_000..8_000 + n]);
        let carrier = spec[10_240 - 4..=10_240 + 4].iter().sum::<f64>();
        let (mut worst, mut at) = (0.0f64, 0);
        for (k, p) in spec.iter().enumerate() {
            let near_carrier = k.abs_diff(10_240) <= 4;
            let near_dc = k <= 4;
            if !near_carrier && !near_dc && *p > worst {
                worst = *p;
                at = k;
            }
        }
        let dbc = 10.0 * (worst / carrier).log10();
        println!(
            "{character}: largest alias {dbc:.1} dBc at {:.0} Hz",
            at as f64 * FS / n as f64
        );
        assert!(dbc < -60.0, "{character}: {dbc} dBc");
    }
}

#[test]
fn a_1_khz_tone_really_saturates() {
    let n = 48_000;
    let x = vec![common::sine(n, 1_000.0, 1.0, FS)[0].clone()];
    for character in CHARACTERS {
        let y = run(sat(character, 12.0, 100.0), &x, 512);
        let (res, fund) = sine_fit(&y[0][4_800..], 1_000.0, FS);
        let thd = 100.0 * res / fund;
        println!("{character}: THD+N {thd:.1} %");
        assert!(thd >= 3.0, "{character}: {thd} %");
    }
}

#[test]
fn dry_path_is_latency_aligned() {
    let n = 20_000;
    let x = common::sine(n, 5_000.0, 0.8, FS);
    for character in CHARACTERS {
        // Mix 0 %: the input, exactly.
        assert_eq!(run(sat(character, 24.0, 0.0), &x, 64), x, "{character}");
    }
    // Mix 50 % at a level where the soft curve is linear: wet ≈ dry, so any misalignment of the
    // two paths would leave a large residual at 5 kHz (one sample: −10 dB). What remains is the
    // oversampler's passband ripple (about 1e−4).
    let quiet = common::sine(n, 5_000.0, 1e-4, FS);
    let y = run(sat("soft", 0.0, 50.0), &quiet, 64);
    // (Away from the abrupt start and end, whose content above 0.45·fs the wet path filters.)
    let err = y[0][2_000..18_000]
        .iter()
        .zip(&quiet[0][2_000..18_000])
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    println!(
        "mix 50 %: residual {:.1} dB relative to the signal",
        db(err / 1e-4)
    );
    assert!(db(err / 1e-4) < -70.0);
}

#[test]
fn block_size_invariance_with_automation() {
    let n = 30_000;
    let mut x = common::noise(n, 0.3, 8);
    for (c, ch) in x.iter_mut().enumerate() {
        for (i, v) in ch.iter_mut().enumerate() {
            *v += 0.5 * (i as f64 * 0.05 + c as f64).sin();
        }
    }
    for character in CHARACTERS {
        let spec = graph(
            "saturation",
            sat(character, 6.0, 100.0),
            2,
            &[
                (
                    "drive_db",
                    linear_curve(&[(0, 0.0), (12_000, 24.0), (25_000, 3.0)]),
                ),
                ("mix_pct", linear_curve(&[(5_000, 100.0), (20_000, 30.0)])),
                ("output_db", linear_curve(&[(8_000, 0.0), (9_000, -6.0)])),
            ],
        );
        let (reference, v) = render(&spec, &x, FS, 1);
        assert_eq!(v, 0);
        for block in [64, 997, 4096] {
            let (y, v) = render(&spec, &x, FS, block);
            assert_eq!(v, 0);
            assert!(y == reference, "{character}: block {block} differs");
        }
    }
}

#[test]
fn no_click_on_a_parameter_step() {
    let n = 48_000;
    let x = common::sine(n, 200.0, 0.5, FS);
    for character in CHARACTERS {
        for (param, before, after) in [("drive_db", 0.0, 24.0), ("mix_pct", 0.0, 100.0)] {
            let spec = graph(
                "saturation",
                sat(character, 0.0, 100.0),
                2,
                &[(param, step_curve(24_001, before, after))],
            );
            let (y, _) = render(&spec, &x, FS, 64);
            let around = max_jump(&y[0], 23_000..27_000);
            let steady = max_jump(&y[0], 2_000..20_000).max(max_jump(&y[0], 30_000..47_000));
            println!(
                "{character} {param}: jump around the step {around:.5}, elsewhere {steady:.5}"
            );
            assert!(
                around <= steady * 1.1,
                "{character} {param}: {around} > {steady}"
            );
        }
    }
}
