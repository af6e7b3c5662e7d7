//! FLAC masters (`stemgraph::io::flac`): they decode bit-exact (our decoder and ffmpeg), carry
//! their tags in a Vorbis comment block, have a correct STREAMINFO (length, block sizes, MD5),
//! are written atomically, and are encoded with bounded memory however long the song.
//!
//! ffmpeg is optional on a workstation (the checks that need it are skipped with a note), but
//! under `CI=true` a missing ffmpeg is a failure.

use crate::common;

use common::flac::{metadata_blocks, vorbis_comments};
use common::tools::{ffmpeg_pcm, have};
use std::path::{Path, PathBuf};
use std::process::Command;
use stemgraph::dsp::AudioBuffer;
use stemgraph::io::decode::Decoder;
use stemgraph::io::flac::{FlacOutput, BLOCK_FRAMES};

/// A deterministic test signal as integers: a chord, noise and full-scale extremes.
fn signal(frames: usize, bits: u32, seed: u64) -> Vec<Vec<i32>> {
    let full = (1i64 << (bits - 1)) as f64;
    let mut state = seed | 1;
    (0..2)
        .map(|c| {
            (0..frames)
                .map(|i| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    let noise = (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
                    let t = i as f64 / 48_000.0;
                    let x = 0.5
                        * (2.0 * std::f64::consts::PI * (220.0 + 110.0 * c as f64) * t).sin()
                        + 0.05 * noise;
                    match i {
                        10 => -full as i32,
                        11 => (full - 1.0) as i32,
                        _ => (x * full).round() as i32,
                    }
                })
                .collect()
        })
        .collect()
}

/// Writes `ints` (exact at `bits`) through [`FlacOutput`] in blocks of `block` frames.
fn encode(path: &Path, ints: &[Vec<i32>], bits: u32, block: usize, tags: &[(&str, &str)]) {
    let tags: Vec<(String, String)> = tags
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut out = FlacOutput::create(path, 48_000, 2, bits, &tags, &[]).unwrap();
    let scale = 1.0 / (1i64 << (bits - 1)) as f64;
    let mut buf = AudioBuffer::new(2, block);
    let frames = ints[0].len();
    let mut at = 0;
    while at < frames {
        let n = block.min(frames - at);
        for (c, ch) in ints.iter().enumerate() {
            for (d, &s) in buf.channel_mut(c, n).iter_mut().zip(&ch[at..at + n]) {
                *d = f64::from(s) * scale;
            }
        }
        out.write(buf.view(n)).unwrap();
        at += n;
    }
    let summary = out.finish().unwrap();
    assert_eq!(summary.frames, frames as u64);
    assert_eq!(summary.clipped, 0);
}

fn decode(path: &Path) -> (u32, Vec<Vec<i32>>) {
    let mut d = Decoder::open(path).unwrap();
    let info = d.info().clone();
    assert_eq!(info.codec, "flac");
    let bits = info.bits_per_sample.unwrap();
    let full = (1i64 << (bits - 1)) as f64;
    let mut out = vec![Vec::new(); info.channels];
    let mut l = vec![0.0; 4096];
    let mut r = vec![0.0; 4096];
    loop {
        let n = d.read(&mut [&mut l[..], &mut r[..]], 4096).unwrap();
        if n == 0 {
            break;
        }
        for i in 0..n {
            out[0].push((l[i] * full) as i32);
            out[1].push((r[i] * full) as i32);
        }
    }
    assert_eq!(info.frames, Some(out[0].len() as u64));
    (bits, out)
}

fn interleaved_le(ints: &[Vec<i32>], bits: u32) -> Vec<u8> {
    let bytes = (bits / 8) as usize;
    let mut v = Vec::new();
    for i in 0..ints[0].len() {
        for ch in ints {
            v.extend_from_slice(&ch[i].to_le_bytes()[..bytes]);
        }
    }
    v
}

fn md5_hex(bytes: &[u8]) -> Option<String> {
    use std::io::Write;
    let mut child = Command::new("md5sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(bytes).ok()?;
    let out = child.wait_with_output().ok()?;
    String::from_utf8(out.stdout)
        .ok()?
        .split_whitespace()
        .next()
        .map(str::to_string)
}

fn check_round_trip(bits: u32, frames: usize, block: usize) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("t{bits}.flac"));
    let ints = signal(frames, bits, 7);
    let tags = [
        ("TITLE", "Ünïcode Song"),
        ("ARTIST", "The Examples"),
        ("ALBUM", "Tests"),
        ("TRACKNUMBER", "3"),
        ("ISRC", "GBAYE2400001"),
    ];
    encode(&path, &ints, bits, block, &tags);
    // Nothing but the file is left in the folder.
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 1);

    let (got_bits, got) = decode(&path);
    assert_eq!(got_bits, bits);
    assert!(got == ints, "symphonia decode differs");

    let comments = vorbis_comments(&path);
    let want: Vec<(String, String)> = tags
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(comments, want);

    let bytes = std::fs::read(&path).unwrap();
    let blocks = metadata_blocks(&bytes);
    assert_eq!(blocks[0].0, 0, "STREAMINFO comes first");
    let si = &blocks[0].1;
    assert_eq!(u16::from_be_bytes([si[0], si[1]]) as usize, BLOCK_FRAMES);
    assert_eq!(u16::from_be_bytes([si[2], si[3]]) as usize, BLOCK_FRAMES);
    let total = (u64::from(si[13] & 0x0f) << 32)
        | u64::from(u32::from_be_bytes([si[14], si[15], si[16], si[17]]));
    assert_eq!(total, frames as u64);
    let md5: String = si[18..34].iter().map(|b| format!("{b:02x}")).collect();
    if let Some(want) = md5_hex(&interleaved_le(&ints, bits)) {
        assert_eq!(md5, want, "STREAMINFO MD5 is the MD5 of the samples");
    }

    if have("ffmpeg") {
        assert!(
            ffmpeg_pcm(&path, bits) == interleaved_le(&ints, bits),
            "ffmpeg decode differs"
        );
        let probe = Command::new("ffprobe")
            .args(["-v", "error", "-show_entries", "format_tags", "-of", "json"])
            .arg(&path)
            .output()
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&probe.stdout).unwrap();
        let tags = &json["format"]["tags"];
        let get = |k: &str| {
            tags.as_object()
                .unwrap()
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.as_str().unwrap().to_string())
        };
        assert_eq!(get("title").as_deref(), Some("Ünïcode Song"));
        assert_eq!(get("album").as_deref(), Some("Tests"));
        assert_eq!(get("track").as_deref(), Some("3"));
        assert_eq!(get("isrc").as_deref(), Some("GBAYE2400001"));
    }
}

#[test]
fn twenty_four_bit_round_trip_with_a_short_last_block() {
    check_round_trip(24, 5 * BLOCK_FRAMES + 5, 1000);
}

#[test]
fn sixteen_bit_round_trip() {
    check_round_trip(16, 3 * BLOCK_FRAMES + 1234, 4096);
}

#[test]
fn shorter_than_one_block() {
    check_round_trip(24, 777, 333);
}

#[test]
fn a_failed_encode_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gone.flac");
    {
        let mut out = FlacOutput::create(&path, 48_000, 2, 24, &[], &[]).unwrap();
        let buf = AudioBuffer::new(2, 5000);
        out.write(buf.view(5000)).unwrap();
        // Dropped without finish: an interrupted render.
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    let bad = FlacOutput::create(&path, 48_000, 2, 24, &[("A=B".into(), "x".into())], &[]);
    assert!(bad.is_err());
    let float = FlacOutput::create(&path, 48_000, 2, 32, &[], &[]);
    assert!(float.is_err());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn buffers_are_bounded_by_design() {
    let dir = tempfile::tempdir().unwrap();
    let mut out = FlacOutput::create(&dir.path().join("b.flac"), 48_000, 2, 24, &[], &[]).unwrap();
    let ints = signal(48_000, 24, 1);
    let mut buf = AudioBuffer::new(2, 48_000);
    for (c, ch) in ints.iter().enumerate() {
        for (d, &s) in buf.channel_mut(c, 48_000).iter_mut().zip(ch) {
            *d = f64::from(s) / 8_388_608.0;
        }
    }
    let bound = FlacOutput::buffer_bound(2);
    for _ in 0..60 {
        out.write(buf.view(48_000)).unwrap();
        assert!(
            out.buffered_bytes() <= bound,
            "{} > {bound}",
            out.buffered_bytes()
        );
    }
    // One block of samples and one encoded frame: well under a megabyte.
    assert!(bound < 1 << 20, "{bound} bytes");
    out.finish().unwrap();
}

// --- Memory in a child process -------------------------------------------------------------

const CHILD_ENV: &str = "STEMGRAPH_FLAC_CHILD";

/// Run as a child process by `a_ten_minute_encode_needs_no_more_memory_than_a_short_one`: encodes
/// `seconds` of stereo 24-bit audio to `path` (from `STEMGRAPH_FLAC_CHILD=seconds:path`). A no-op
/// otherwise.
#[test]
fn child_encode() {
    let Ok(arg) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (seconds, path) = arg.split_once(':').unwrap();
    let seconds: usize = seconds.parse().unwrap();
    let mut out = FlacOutput::create(Path::new(path), 48_000, 2, 24, &[], &[]).unwrap();
    let block = 48_000;
    let ints = signal(block, 24, 9);
    let mut buf = AudioBuffer::new(2, block);
    for (c, ch) in ints.iter().enumerate() {
        for (d, &s) in buf.channel_mut(c, block).iter_mut().zip(ch) {
            *d = f64::from(s) / 8_388_608.0;
        }
    }
    for _ in 0..seconds {
        out.write(buf.view(block)).unwrap();
    }
    let s = out.finish().unwrap();
    assert_eq!(s.frames, (seconds * block) as u64);
}

/// The test runner's name of [`child_encode`]: its module path without the crate's name
/// (`flac::child_encode`).
fn child_test_name() -> String {
    let module = module_path!().split_once("::").map_or("", |(_, m)| m);
    format!("{module}::child_encode")
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Peak RSS (KiB) of a child encoding `seconds` seconds, read from /proc while it runs.
fn child_peak_kib(seconds: usize, path: &Path) -> u64 {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            &child_test_name(),
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, format!("{seconds}:{}", path.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut peak = 0;
    loop {
        if let Some(kib) = vm_hwm_kib(child.id()) {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success());
            return peak;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

#[test]
fn a_ten_minute_encode_needs_no_more_memory_than_a_short_one() {
    let dir = tempfile::tempdir().unwrap();
    let short: PathBuf = dir.path().join("short.flac");
    let long: PathBuf = dir.path().join("long.flac");
    let short_kib = child_peak_kib(10, &short);
    let long_kib = child_peak_kib(600, &long);
    eprintln!("peak RSS: 10 s encode {short_kib} KiB, 10 min encode {long_kib} KiB");
    assert!(short_kib > 0 && long_kib > 0, "no reading of /proc");
    assert!(
        long_kib <= short_kib + 1024,
        "{long_kib} KiB vs {short_kib} KiB"
    );
    let d = Decoder::open(&long).unwrap();
    assert_eq!(d.info().frames, Some(600 * 48_000));
    // The long file really is the long song: its size grew, its memory did not.
    assert!(
        std::fs::metadata(&long).unwrap().len() > 50 * std::fs::metadata(&short).unwrap().len()
    );
}

/// A loud, saturated 24-bit master (what a −9 LUFS master looks like to a predictor): flacenc's
/// fixed predictors wrote frames several times larger than the PCM for it (3 s: 2.8 MB for 864
/// kB of samples). A FLAC frame is never worth more than its verbatim form, so the file is at
/// most the PCM plus the frames' headers and the metadata.
#[test]
fn a_loud_24_bit_master_is_no_larger_than_its_pcm() {
    let frames = 3 * 48_000;
    let full = f64::from(1 << 23);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut low = 0.0;
    let mut ints = vec![Vec::with_capacity(frames), Vec::with_capacity(frames)];
    for i in 0..frames {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let noise = (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
        low = 0.9 * low + 0.1 * noise;
        let t = i as f64 / 48_000.0;
        for (c, ch) in ints.iter_mut().enumerate() {
            let tone = 0.4 * (2.0 * std::f64::consts::PI * (55.0 + 2.0 * c as f64) * t).sin()
                + 0.3 * (2.0 * std::f64::consts::PI * 440.0 * t).sin();
            let x = (3.0 * (tone + low)).tanh() * 0.89;
            ch.push((x * (full - 1.0)).round() as i32);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("loud.flac");
    encode(&path, &ints, 24, BLOCK_FRAMES, &[]);
    let (_, got) = decode(&path);
    assert!(got == ints, "decodes bit-exact");
    let pcm = (frames * 2 * 3) as u64;
    let flac = std::fs::metadata(&path).unwrap().len();
    assert!(
        flac <= pcm + pcm / 100,
        "{flac} bytes of FLAC for {pcm} bytes of PCM"
    );
}

/// The patched flacenc (vendor/flacenc/PATCHED.md) estimates each subframe's LPC with the CPU's
/// FMA unit: the FLAC bytes are those of the unpatched loop (fused multiply-adds by calls), for
/// quiet, loud, and silent passages at both word lengths.
#[test]
fn the_fma_unit_encodes_the_portable_bytes() {
    #[cfg(target_arch = "x86_64")]
    if !std::arch::is_x86_feature_detected!("fma") {
        eprintln!("note: this CPU has no FMA: both encodes take the portable loop");
    }
    let dir = tempfile::tempdir().unwrap();
    for bits in [16, 24] {
        let frames = 5 * BLOCK_FRAMES + 123;
        let mut ints = signal(frames, bits, 99);
        for ch in &mut ints {
            // A quiet block, a silent one, and a saturated one.
            for x in &mut ch[BLOCK_FRAMES..2 * BLOCK_FRAMES] {
                *x /= 300;
            }
            ch[2 * BLOCK_FRAMES..3 * BLOCK_FRAMES].fill(0);
            let full = (1i32 << (bits - 1)) - 1;
            for x in &mut ch[3 * BLOCK_FRAMES..4 * BLOCK_FRAMES] {
                *x = (*x).saturating_mul(4).clamp(-full, full);
            }
        }
        let bytes = |portable: bool| {
            flacenc::force_portable_lpc(portable);
            let path = dir.path().join(format!("{bits}-{portable}.flac"));
            encode(&path, &ints, bits, 1000, &[]);
            flacenc::force_portable_lpc(false);
            std::fs::read(&path).unwrap()
        };
        let portable = bytes(true);
        assert!(bytes(false) == portable, "{bits} bits: the bytes differ");
    }
    // The FLAC bytes would hide a last-bit difference in the auto-correlation (its coefficients
    // are quantized): the auto-correlation itself is the same, bit for bit, on windowed signals
    // of every scale, at every order flacenc allows (up to 24 coefficients, 25 lags).
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for len in [9, 100, 4096] {
        for scale in [1e-3f32, 1.0, 8_388_607.0] {
            let signal: Vec<f32> = (0..len)
                .map(|i| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    let noise = (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
                    scale * ((i as f32 * 0.05).sin() * 0.7 + noise)
                })
                .collect();
            for order in [1, 9, 13, 25] {
                if order > len {
                    continue;
                }
                let corr = |portable: bool| {
                    flacenc::force_portable_lpc(portable);
                    let mut dest = vec![0.0f64; order];
                    flacenc::auto_correlation_f64(order, &signal, &mut dest);
                    flacenc::force_portable_lpc(false);
                    dest.iter().map(|x| x.to_bits()).collect::<Vec<u64>>()
                };
                assert_eq!(
                    corr(false),
                    corr(true),
                    "{len} samples at {scale}, order {order}"
                );
            }
        }
    }
}

/// Samples quantized once ([`stemgraph::io::quantize::quantize_planes`]) and written with
/// `write_ints` make the file `write` makes of them: the same bytes and clip count, in blocks
/// that do not line up with the encoder's.
#[test]
fn written_integers_encode_the_written_samples() {
    let tmp = tempfile::tempdir().unwrap();
    for bits in [16, 24] {
        let frames = 3 * BLOCK_FRAMES + 123;
        let ints = signal(frames, bits, 5);
        // Over full scale now and then, so that the writers clip.
        let scale = 1.0 / (1i64 << (bits - 1)) as f64;
        let mut buf = AudioBuffer::new(2, frames);
        for (c, ch) in ints.iter().enumerate() {
            for (n, (d, &s)) in buf.channel_mut(c, frames).iter_mut().zip(ch).enumerate() {
                *d = f64::from(s) * scale * if n % 97 == 0 { 2.5 } else { 1.0 };
            }
        }
        let write = |name: &str, quantized: bool| {
            let path = tmp.path().join(name);
            let mut out = FlacOutput::create(&path, 48_000, 2, bits, &[], &[]).unwrap();
            let mut at = 0;
            for len in [1, 999, BLOCK_FRAMES + 5, 7000].into_iter().cycle() {
                let n = len.min(frames - at);
                let part = buf.view(frames).slice(at, at + n);
                if quantized {
                    let mut v = vec![0; 2 * n];
                    let clipped = part.with_planes(|p| {
                        stemgraph::io::quantize::quantize_planes(p, n, bits, &mut v, None)
                    });
                    out.write_ints(&v, clipped).unwrap();
                } else {
                    out.write(part).unwrap();
                }
                at += n;
                if at == frames {
                    break;
                }
            }
            let summary = out.finish().unwrap();
            (
                std::fs::read(&path).unwrap(),
                summary.frames,
                summary.clipped,
            )
        };
        let want = write("samples.flac", false);
        assert!(want.2 > 0, "the signal clips");
        assert!(write("ints.flac", true) == want, "{bits} bits");
    }
}
