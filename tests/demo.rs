//! The built-in demo song: deterministic, the mix is the sum of the stems, realistic mastering
//! input (loudness, peak-to-loudness ratio, headroom, stereo, dynamics), a real sub bass, a
//! sibilant lead, exact lengths, and the 2- to 8-stem variants.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ebur128::{EbuR128, Mode};
use stemgraph::demo::{write_demo, DemoError, DemoFiles, DemoOptions, DemoSynth};

/// Full scale of a 24-bit sample.
const FS24: f64 = 8_388_608.0;

/// Decoded 24-bit stereo WAV: sample rate and interleaved integer samples.
struct Wav {
    rate: u32,
    samples: Vec<i32>,
}

impl Wav {
    fn read(path: &Path) -> Wav {
        let mut r =
            hound::WavReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let spec = r.spec();
        assert_eq!(spec.channels, 2, "{}", path.display());
        assert_eq!(spec.bits_per_sample, 24, "{}", path.display());
        assert_eq!(spec.sample_format, hound::SampleFormat::Int);
        let samples = r.samples::<i32>().map(|s| s.unwrap()).collect();
        Wav {
            rate: spec.sample_rate,
            samples,
        }
    }

    fn frames(&self) -> usize {
        self.samples.len() / 2
    }

    fn float(&self) -> Vec<f64> {
        self.samples.iter().map(|&s| s as f64 / FS24).collect()
    }

    /// Mono (mid) signal as floats.
    fn mid(&self) -> Vec<f64> {
        self.samples
            .chunks_exact(2)
            .map(|f| 0.5 * (f[0] + f[1]) as f64 / FS24)
            .collect()
    }

    fn peak_dbfs(&self) -> f64 {
        let peak = self
            .samples
            .iter()
            .map(|s| s.unsigned_abs())
            .max()
            .unwrap_or(0);
        20.0 * (peak as f64 / FS24).log10()
    }
}

/// The default demo (4 stems, 40 s, 48 kHz), written once for the tests that only read it.
fn default_demo() -> &'static (tempfile::TempDir, DemoFiles) {
    static DEMO: OnceLock<(tempfile::TempDir, DemoFiles)> = OnceLock::new();
    DEMO.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let files = write_demo(dir.path(), &DemoOptions::default()).unwrap();
        (dir, files)
    })
}

fn write(opts: &DemoOptions) -> (tempfile::TempDir, DemoFiles) {
    let dir = tempfile::tempdir().unwrap();
    let files = write_demo(dir.path(), opts).unwrap();
    (dir, files)
}

fn names(files: &DemoFiles) -> Vec<&str> {
    files.stems.iter().map(|(n, _)| n.as_str()).collect()
}

/// Checks that the mix file is exactly the sum of the stem files, sample for sample.
fn assert_mix_is_sum(files: &DemoFiles) {
    let mix = Wav::read(&files.reference);
    let stems: Vec<Wav> = files.stems.iter().map(|(_, p)| Wav::read(p)).collect();
    for s in &stems {
        assert_eq!(s.frames(), mix.frames());
        assert_eq!(s.rate, mix.rate);
    }
    let mut worst = 0i64;
    for i in 0..mix.samples.len() {
        let sum: i64 = stems.iter().map(|s| s.samples[i] as i64).sum();
        worst = worst.max((sum - mix.samples[i] as i64).abs());
    }
    assert_eq!(
        worst, 0,
        "mix differs from the sum of the stems by up to {worst} LSB"
    );
}

/// Integrated loudness, loudness range and the higher true peak (dBTP) of a stereo file.
fn loudness(w: &Wav) -> (f64, f64, f64) {
    let mut m = EbuR128::new(2, w.rate, Mode::I | Mode::TRUE_PEAK | Mode::LRA).unwrap();
    m.add_frames_f64(&w.float()).unwrap();
    let tp = m.true_peak(0).unwrap().max(m.true_peak(1).unwrap());
    (
        m.loudness_global().unwrap(),
        m.loudness_range().unwrap(),
        20.0 * tp.log10(),
    )
}

/// Short-term loudness (3 s window) at `t` seconds.
fn short_term_at(w: &Wav, t: f64) -> f64 {
    let mut m = EbuR128::new(2, w.rate, Mode::S).unwrap();
    let end = (t * w.rate as f64) as usize * 2;
    let start = end.saturating_sub(3 * w.rate as usize * 2);
    m.add_frames_f64(&w.float()[start..end]).unwrap();
    m.loudness_shortterm().unwrap()
}

/// A second-order section (RBJ cookbook), for the band measurements.
struct Biquad {
    b: [f64; 3],
    a: [f64; 2],
    z: [f64; 2],
}

impl Biquad {
    fn new(kind: &str, freq: f64, q: f64, rate: f64) -> Self {
        let w = 2.0 * std::f64::consts::PI * freq / rate;
        let (cw, alpha) = (w.cos(), w.sin() / (2.0 * q));
        let a0 = 1.0 + alpha;
        let b = match kind {
            "low" => [(1.0 - cw) / 2.0, 1.0 - cw, (1.0 - cw) / 2.0],
            "high" => [(1.0 + cw) / 2.0, -(1.0 + cw), (1.0 + cw) / 2.0],
            _ => unreachable!(),
        };
        Biquad {
            b: b.map(|x| x / a0),
            a: [-2.0 * cw / a0, (1.0 - alpha) / a0],
            z: [0.0; 2],
        }
    }

    fn tick(&mut self, x: f64) -> f64 {
        let y = self.b[0] * x + self.z[0];
        self.z[0] = self.b[1] * x - self.a[0] * y + self.z[1];
        self.z[1] = self.b[2] * x - self.a[1] * y;
        y
    }
}

/// `x` through a 4th-order band pass from `lo` to `hi` Hz.
fn band(x: &[f64], lo: f64, hi: f64, rate: f64) -> Vec<f64> {
    let q = std::f64::consts::FRAC_1_SQRT_2;
    let mut f = [
        Biquad::new("high", lo, q, rate),
        Biquad::new("high", lo, q, rate),
        Biquad::new("low", hi, q, rate),
        Biquad::new("low", hi, q, rate),
    ];
    x.iter()
        .map(|&s| f.iter_mut().fold(s, |v, b| b.tick(v)))
        .collect()
}

fn energy(x: &[f64]) -> f64 {
    x.iter().map(|v| v * v).sum()
}

/// Goertzel power of `x` at `freq`.
fn goertzel(x: &[f64], freq: f64, rate: f64) -> f64 {
    let c = 2.0 * (2.0 * std::f64::consts::PI * freq / rate).cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &v in x {
        let s = v + c * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    s1 * s1 + s2 * s2 - c * s1 * s2
}

fn all_files(files: &DemoFiles) -> Vec<PathBuf> {
    files
        .stems
        .iter()
        .map(|(_, p)| p.clone())
        .chain([files.reference.clone()])
        .collect()
}

#[test]
fn default_options_are_the_documented_ones() {
    let o = DemoOptions::default();
    assert_eq!((o.sample_rate, o.seconds, o.stems), (48_000, 40.0, 4));
    let synth = DemoSynth::new(&o);
    assert_eq!(synth.stem_names(), ["drums", "bass", "keys", "lead"]);
    assert_eq!(synth.total_frames(), 40 * 48_000);
}

#[test]
fn default_demo_writes_four_stems_and_the_mix() {
    let (dir, files) = default_demo();
    assert_eq!(files.dir, dir.path());
    assert_eq!(names(files), ["drums", "bass", "keys", "lead"]);
    let stems_dir = dir.path().join("stems");
    for (name, path) in &files.stems {
        assert_eq!(path, &stems_dir.join(format!("{name}.wav")));
    }
    assert_eq!(files.reference, stems_dir.join("mix.wav"));
    for path in all_files(files) {
        let w = Wav::read(&path);
        assert_eq!(
            (w.rate, w.frames()),
            (48_000, 40 * 48_000),
            "{}",
            path.display()
        );
    }
    // Nothing but the finished files is left in the folder.
    let mut left: Vec<String> = std::fs::read_dir(&stems_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["bass.wav", "drums.wav", "keys.wav", "lead.wav", "mix.wav"]
    );
}

#[test]
fn generation_is_deterministic_to_the_byte() {
    let opts = DemoOptions {
        seconds: 12.0,
        stems: 8,
        ..Default::default()
    };
    let (_a, first) = write(&opts);
    let (_b, second) = write(&opts);
    for (x, y) in all_files(&first).iter().zip(all_files(&second)) {
        assert!(
            std::fs::read(x).unwrap() == std::fs::read(&y).unwrap(),
            "{} differs between runs",
            x.display()
        );
    }
    // Another seed humanizes differently.
    let (_c, other) = write(&DemoOptions { seed: 7, ..opts });
    assert!(std::fs::read(&first.reference).unwrap() != std::fs::read(&other.reference).unwrap());
}

#[test]
fn output_does_not_depend_on_block_size() {
    let opts = DemoOptions {
        seconds: 9.0,
        stems: 8,
        ..Default::default()
    };
    let render = |blocks: &[usize]| {
        let mut synth = DemoSynth::new(&opts);
        let stems = synth.stem_count();
        let mut out: Vec<[Vec<f64>; 2]> = vec![[Vec::new(), Vec::new()]; stems];
        let mut all: Vec<Vec<f64>> = vec![Vec::new(); 2 * stems];
        let mut i = 0;
        loop {
            let want = blocks[i % blocks.len()];
            i += 1;
            let n = synth.render_block(&mut out, want);
            if n == 0 {
                break;
            }
            for s in 0..stems {
                for ch in 0..2 {
                    all[2 * s + ch].extend_from_slice(&out[s][ch][..n]);
                }
            }
        }
        all
    };
    let reference = render(&[4096]);
    let odd = render(&[1, 7, 300, 64, 1023, 2, 5000]);
    assert_eq!(reference.len(), odd.len());
    for (a, b) in reference.iter().zip(&odd) {
        assert_eq!(a.len(), 9 * 48_000);
        assert!(
            a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()),
            "block size changed the output"
        );
    }
}

#[test]
fn mix_is_the_sum_of_the_stems_as_written() {
    assert_mix_is_sum(&default_demo().1);
}

#[test]
fn default_mix_is_realistic_mastering_input() {
    let mix = Wav::read(&default_demo().1.reference);
    let (integrated, lra, true_peak) = loudness(&mix);
    println!(
        "default mix: {integrated:.2} LUFS, LRA {lra:.2} LU, {true_peak:.2} dBTP, PLR {:.2} dB",
        true_peak - integrated
    );
    assert!(
        (-20.0..=-14.0).contains(&integrated),
        "integrated {integrated:.2} LUFS"
    );
    assert!(
        true_peak - integrated >= 8.0,
        "PLR {:.2} dB",
        true_peak - integrated
    );
    assert!(true_peak < -1.0, "true peak {true_peak:.2} dBTP");
    assert!((3.0..=12.0).contains(&lra), "loudness range {lra:.2} LU");
    // Arrangement: the chorus is clearly louder than the intro.
    let intro = short_term_at(&mix, 6.0);
    let verse = short_term_at(&mix, 16.0);
    let chorus = short_term_at(&mix, 32.0);
    println!("short-term: intro {intro:.1}, verse {verse:.1}, chorus {chorus:.1} LUFS");
    assert!(
        chorus - intro >= 6.0,
        "intro {intro:.1} vs chorus {chorus:.1} LUFS"
    );
    assert!(
        chorus - verse >= 1.5,
        "verse {verse:.1} vs chorus {chorus:.1} LUFS"
    );
}

#[test]
fn nothing_peaks_above_minus_1_dbfs() {
    // The fullest arrangement, whole choruses, a few humanization seeds.
    for seed in [DemoOptions::DEFAULT_SEED, 6] {
        let (_d, files) = write(&DemoOptions {
            seed,
            stems: 8,
            seconds: 40.0,
            ..Default::default()
        });
        for path in all_files(&files) {
            let peak = Wav::read(&path).peak_dbfs();
            assert!(
                peak < -1.0,
                "seed {seed}: {} peaks at {peak:.2} dBFS",
                path.display()
            );
        }
    }
    for path in all_files(&default_demo().1) {
        let peak = Wav::read(&path).peak_dbfs();
        assert!(peak < -1.0, "{} peaks at {peak:.2} dBFS", path.display());
    }
}

#[test]
fn mix_has_a_stereo_image() {
    let mix = Wav::read(&default_demo().1.reference);
    let (mut mid, mut side, mut lr) = (0.0, 0.0, 0.0);
    let (mut ll, mut rr) = (0.0, 0.0);
    for f in mix.samples.chunks_exact(2) {
        let (l, r) = (f[0] as f64, f[1] as f64);
        mid += (l + r) * (l + r);
        side += (l - r) * (l - r);
        lr += l * r;
        ll += l * l;
        rr += r * r;
    }
    let side_db = 10.0 * (side / mid).log10();
    let correlation = lr / (ll * rr).sqrt();
    assert!(
        (-25.0..=-6.0).contains(&side_db),
        "side/mid {side_db:.1} dB"
    );
    assert!(
        (0.5..0.98).contains(&correlation),
        "correlation {correlation:.3}"
    );
}

#[test]
fn bass_has_real_sub_bass() {
    let files = &default_demo().1;
    let bass = Wav::read(&files.stems.iter().find(|(n, _)| n == "bass").unwrap().1);
    let rate = bass.rate as f64;
    let x = bass.mid();
    // Share of the energy in 40-60 Hz over the verse and chorus (8-40 s), from the 1 Hz bins of
    // Hann-windowed one-second frames (Parseval: the bins of a frame sum to N times its energy).
    let n = bass.rate as usize;
    let (mut sub, mut all) = (0.0, 0.0);
    for frame in x[8 * n..40 * n].chunks_exact(n) {
        let w: Vec<f64> = frame
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v * (0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n as f64).cos())
            })
            .collect();
        sub += (40..=60)
            .map(|f| 2.0 * goertzel(&w, f as f64, rate))
            .sum::<f64>();
        all += n as f64 * energy(&w);
    }
    let share = sub / all;
    println!("bass: {:.0}% of the energy in 40-60 Hz", share * 100.0);
    assert!(
        share > 0.4,
        "only {:.0}% of the bass energy lies in 40-60 Hz",
        share * 100.0
    );
    // In every bar of the verse and chorus the chord's root, in 40-60 Hz (A1, F1, G1, E1), is
    // stronger than its upper harmonics: a real sub bass, not a bass that only implies it.
    let hann = |x: &[f64]| -> Vec<f64> {
        let n = x.len() as f64;
        x.iter()
            .enumerate()
            .map(|(i, v)| v * (0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n).cos()))
            .collect()
    };
    const ROOTS: [f64; 4] = [55.0, 43.654, 48.999, 41.203];
    for bar in 4..20 {
        let root = ROOTS[bar % 4];
        let w = hann(&x[bar * 2 * n..(bar + 1) * 2 * n]);
        let fundamental = goertzel(&w, root, rate);
        for k in 2..=4 {
            let harmonic = goertzel(&w, root * k as f64, rate);
            assert!(
                fundamental > harmonic,
                "bar {bar}: harmonic {k} of {root} Hz is stronger than the root"
            );
        }
    }
}

#[test]
fn lead_has_sibilant_bursts() {
    let files = &default_demo().1;
    let lead = Wav::read(&files.stems.iter().find(|(n, _)| n == "lead").unwrap().1);
    let rate = lead.rate as f64;
    let x = lead.mid();
    let hiss = band(&x, 5000.0, 10000.0, rate);
    // 10 ms frames: level of the 5-10 kHz band and of the whole signal.
    let hop = (rate / 100.0) as usize;
    let db = |e: f64| 10.0 * (e / hop as f64 + 1e-30).log10();
    let frames: Vec<(f64, f64)> = hiss
        .chunks(hop)
        .zip(x.chunks(hop))
        .map(|(h, a)| (db(energy(h)), db(energy(a))))
        .collect();
    let mut active: Vec<f64> = frames.iter().filter(|f| f.1 > -70.0).map(|f| f.0).collect();
    active.sort_by(f64::total_cmp);
    let median = active[active.len() / 2];
    let hot: Vec<bool> = frames.iter().map(|f| f.0 > median + 15.0).collect();
    let mut bursts = Vec::new();
    let mut run = 0;
    for &h in hot.iter().chain([&false]) {
        if h {
            run += 1;
        } else if run > 0 {
            bursts.push(run);
            run = 0;
        }
    }
    assert!(bursts.len() >= 15, "{} sibilant bursts", bursts.len());
    assert!(
        bursts.iter().all(|&r| r <= 15),
        "bursts longer than 150 ms: {bursts:?}"
    );
    // The bursts hold most of the band's energy, and they are loud: near the voice's own level.
    let in_bursts: f64 = hiss
        .chunks(hop)
        .zip(&hot)
        .filter(|(_, &h)| h)
        .map(|(c, _)| energy(c))
        .sum();
    assert!(in_bursts / energy(&hiss) > 0.6);
    let loudest_hiss = frames.iter().map(|f| f.0).fold(f64::MIN, f64::max);
    let loudest_voice = frames.iter().map(|f| f.1).fold(f64::MIN, f64::max);
    assert!(
        loudest_hiss > loudest_voice - 12.0,
        "hiss {loudest_hiss:.1} dB vs voice {loudest_voice:.1} dB"
    );
}

#[test]
fn lengths_are_exact() {
    for (rate, seconds, frames) in [
        (44_100, 3.3, 145_530u64),
        (48_000, 2.5, 120_000),
        (96_000, 1.00001, 96_001),
    ] {
        let opts = DemoOptions {
            sample_rate: rate,
            seconds,
            stems: 3,
            ..Default::default()
        };
        let mut synth = DemoSynth::new(&opts);
        assert_eq!(synth.total_frames(), frames);
        let mut out: Vec<[Vec<f64>; 2]> = vec![[Vec::new(), Vec::new()]; 3];
        let mut total = 0u64;
        loop {
            let n = synth.render_block(&mut out, 1000);
            if n == 0 {
                break;
            }
            total += n as u64;
        }
        assert_eq!(total, frames);
        let (_d, files) = write(&opts);
        for path in all_files(&files) {
            let w = Wav::read(&path);
            assert_eq!(
                (w.rate, w.frames() as u64),
                (rate, frames),
                "{}",
                path.display()
            );
        }
    }
}

#[test]
fn six_stem_variant() {
    let (_d, files) = write(&DemoOptions {
        stems: 6,
        seconds: 30.0,
        ..Default::default()
    });
    assert_eq!(
        names(&files),
        ["drums", "bass", "keys", "lead", "pads", "perc"]
    );
    assert_mix_is_sum(&files);
    let (integrated, _, true_peak) = loudness(&Wav::read(&files.reference));
    assert!(
        (-20.0..=-14.0).contains(&integrated),
        "integrated {integrated:.2} LUFS"
    );
    assert!(true_peak - integrated >= 8.0);
    for (name, path) in &files.stems {
        assert!(
            Wav::read(path).peak_dbfs() > -40.0,
            "stem {name} is (nearly) silent"
        );
    }
}

#[test]
fn eight_stem_variant() {
    let (_d, files) = write(&DemoOptions {
        stems: 8,
        seconds: 30.0,
        ..Default::default()
    });
    assert_eq!(
        names(&files),
        ["drums", "bass", "keys", "lead", "pads", "perc", "arp", "backing"]
    );
    assert_mix_is_sum(&files);
    for (name, path) in &files.stems {
        assert!(
            Wav::read(path).peak_dbfs() > -40.0,
            "stem {name} is (nearly) silent"
        );
    }
}

#[test]
fn two_and_three_stem_variants_carry_the_same_song() {
    let base = DemoOptions {
        seconds: 30.0,
        ..Default::default()
    };
    let (_a, four) = write(&base);
    let (_b, two) = write(&DemoOptions {
        stems: 2,
        ..base.clone()
    });
    let (_c, three) = write(&DemoOptions {
        stems: 3,
        ..base.clone()
    });
    assert_eq!(names(&two), ["drums", "music"]);
    assert_eq!(names(&three), ["drums", "bass", "music"]);
    assert_mix_is_sum(&two);
    assert_mix_is_sum(&three);
    // Same parts, grouped differently: the mixes differ only by the rounding of the groups.
    let m4 = Wav::read(&four.reference);
    for other in [&two, &three] {
        let m = Wav::read(&other.reference);
        let worst = m4
            .samples
            .iter()
            .zip(&m.samples)
            .map(|(a, b)| (a - b).abs())
            .max()
            .unwrap();
        assert!(worst <= 2, "mixes differ by {worst} LSB");
    }
    // The drums stem is the same in every variant.
    assert_eq!(
        std::fs::read(&four.stems[0].1).unwrap(),
        std::fs::read(&two.stems[0].1).unwrap()
    );
}

#[test]
fn invalid_options_are_rejected_without_writing() {
    let base = DemoOptions::default();
    let bad = [
        DemoOptions {
            stems: 1,
            ..base.clone()
        },
        DemoOptions {
            stems: 9,
            ..base.clone()
        },
        DemoOptions {
            seconds: 0.0,
            ..base.clone()
        },
        DemoOptions {
            seconds: f64::NAN,
            ..base.clone()
        },
        DemoOptions {
            seconds: -3.0,
            ..base.clone()
        },
        DemoOptions {
            sample_rate: 1_000,
            ..base.clone()
        },
        DemoOptions {
            seconds: 6.0 * 3600.0,
            ..base.clone()
        },
    ];
    for opts in bad {
        let dir = tempfile::tempdir().unwrap();
        let err = write_demo(dir.path(), &opts).unwrap_err();
        assert!(
            matches!(err, DemoError::InvalidOptions(_)),
            "{opts:?}: {err}"
        );
        assert!(!dir.path().join("stems").exists());
    }
}

#[test]
fn a_failed_write_leaves_no_temporary_files() {
    let dir = tempfile::tempdir().unwrap();
    // mix.wav is a folder: renaming the finished mix into place fails.
    std::fs::create_dir_all(dir.path().join("stems/mix.wav/blocker")).unwrap();
    let err = write_demo(
        dir.path(),
        &DemoOptions {
            seconds: 1.0,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(matches!(err, DemoError::Io { .. }), "{err}");
    // Neither a temporary file nor the temporaries folder (hidden) is left.
    for entry in std::fs::read_dir(dir.path().join("stems")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(!name.starts_with('.'), "left behind: {name}");
    }
}
