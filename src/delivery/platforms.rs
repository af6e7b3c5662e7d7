//! Streaming platforms: what each normalizes playback to, how (turn down only, turn up as far as
//! the peak allows, turn up into a limiter), and the deliverable preset for each.
//!
//! The figures and their sources are in docs/delivery.md; where a platform publishes no figure
//! the table says so (`official: false`) and the figure is the one measured and reported by the
//! industry (the AES TD1008 survey among others).

use crate::session::{DitherKind, FileFormat};
use serde::Serialize;

/// How a platform brings a master to its target.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Policy {
    /// No normalization: the master plays as it is.
    None,
    /// Loud masters are turned down to the target; quiet ones are left alone.
    DownOnly,
    /// Turned down, or up only as far as the true peak stays at or under `peak_dbtp`.
    UpToPeak {
        /// The highest the true peak may be raised to, dBTP.
        peak_dbtp: f64,
    },
    /// Turned down, or up by the whole difference, peaks then held by a limiter at
    /// `limiter_dbtp`.
    UpWithLimiter {
        /// Where the platform's limiter holds the peaks, dBTP.
        limiter_dbtp: f64,
    },
}

/// A platform's deliverable preset: format, rate, bits, bit rate, ceiling.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Preset {
    /// Container and codec.
    pub format: FileFormat,
    /// Bits per sample (PCM formats).
    pub bits: u32,
    /// Sample rate, Hz (`None`: the session's).
    pub sample_rate: Option<u32>,
    /// Bit rate, kbit/s (lossy formats).
    pub bitrate_kbps: Option<u32>,
    /// True-peak ceiling, dBTP.
    pub ceiling_dbtp: f64,
    /// Dither.
    pub dither: DitherKind,
}

/// One platform.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Platform {
    /// The name recipes use (`preset = "spotify"`).
    pub name: &'static str,
    /// Integrated loudness playback is normalized to, LUFS (`None`: no normalization).
    pub target_lufs: Option<f64>,
    /// How.
    pub policy: Policy,
    /// Whether an album played in order is normalized as a whole (one gain for every track,
    /// AES TD1008's album normalization) rather than track by track.
    pub album_mode: bool,
    /// Whether the platform publishes the target and policy itself.
    pub official: bool,
    /// The deliverable preset.
    pub preset: Preset,
}

const fn pcm(bits: u32, rate: Option<u32>, ceiling: f64, format: FileFormat) -> Preset {
    Preset {
        format,
        bits,
        sample_rate: rate,
        bitrate_kbps: None,
        ceiling_dbtp: ceiling,
        dither: if bits == 16 {
            DitherKind::Tpdf
        } else {
            DitherKind::None
        },
    }
}

const fn lossy(format: FileFormat, rate: u32, kbps: u32, ceiling: f64) -> Preset {
    Preset {
        format,
        bits: 32,
        sample_rate: Some(rate),
        bitrate_kbps: Some(kbps),
        ceiling_dbtp: ceiling,
        dither: DitherKind::None,
    }
}

/// Every platform, in the order tables list them.
pub const PLATFORMS: &[Platform] = &[
    Platform {
        name: "spotify",
        target_lufs: Some(-14.0),
        policy: Policy::UpToPeak { peak_dbtp: -1.0 },
        album_mode: true,
        official: true,
        preset: lossy(FileFormat::Opus, 48_000, 160, -1.0),
    },
    Platform {
        name: "spotify_loud",
        target_lufs: Some(-11.0),
        policy: Policy::UpWithLimiter { limiter_dbtp: -1.0 },
        album_mode: true,
        official: true,
        preset: lossy(FileFormat::Opus, 48_000, 160, -1.0),
    },
    Platform {
        name: "apple_music",
        target_lufs: Some(-16.0),
        policy: Policy::UpToPeak { peak_dbtp: -1.0 },
        album_mode: true,
        official: false,
        preset: pcm(24, None, -1.0, FileFormat::Wav),
    },
    Platform {
        name: "youtube",
        target_lufs: Some(-14.0),
        policy: Policy::DownOnly,
        album_mode: false,
        official: false,
        preset: lossy(FileFormat::Opus, 48_000, 160, -1.0),
    },
    Platform {
        name: "tidal",
        target_lufs: Some(-14.0),
        policy: Policy::DownOnly,
        album_mode: true,
        official: false,
        preset: pcm(24, None, -1.0, FileFormat::Flac),
    },
    Platform {
        name: "amazon",
        target_lufs: Some(-14.0),
        policy: Policy::DownOnly,
        album_mode: false,
        official: false,
        preset: pcm(24, None, -2.0, FileFormat::Flac),
    },
    Platform {
        name: "deezer",
        target_lufs: Some(-15.0),
        policy: Policy::DownOnly,
        album_mode: false,
        official: false,
        preset: lossy(FileFormat::Mp3, 44_100, 320, -1.0),
    },
    Platform {
        name: "soundcloud",
        target_lufs: None,
        policy: Policy::None,
        album_mode: false,
        official: false,
        preset: lossy(FileFormat::Mp3, 44_100, 128, -1.0),
    },
    Platform {
        name: "cd",
        target_lufs: None,
        policy: Policy::None,
        album_mode: false,
        official: true,
        preset: pcm(16, Some(44_100), -0.3, FileFormat::Wav),
    },
];

/// The platform named `name`.
pub fn platform(name: &str) -> Option<&'static Platform> {
    PLATFORMS.iter().find(|p| p.name == name)
}

/// The names of every platform, for messages.
pub fn names() -> String {
    let n: Vec<&str> = PLATFORMS.iter().map(|p| p.name).collect();
    n.join(", ")
}

/// What a platform's normalization does to one master.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Normalization {
    /// The platform.
    pub platform: String,
    /// Its target, LUFS (`null`: it does not normalize).
    #[serde(serialize_with = "crate::analysis::json::opt_db")]
    pub target_lufs: Option<f64>,
    /// The gain playback applies to this master, dB (negative: turned down).
    #[serde(serialize_with = "crate::analysis::json::db")]
    pub gain_db: f64,
    /// The master's loudness as played, LUFS.
    #[serde(serialize_with = "crate::analysis::json::db")]
    pub played_lufs: f64,
    /// Whether the platform's limiter would act on this master (it raises it into one).
    pub limiter_engages: bool,
    /// Whether the figures are the platform's own (else measured by others; see the docs).
    pub official: bool,
}

/// What `p` does to a master of integrated loudness `lufs` and true peak `true_peak_dbtp`.
pub fn normalize(p: &Platform, lufs: f64, true_peak_dbtp: f64) -> Normalization {
    let want = match p.target_lufs {
        Some(t) if lufs.is_finite() => t - lufs,
        _ => 0.0,
    };
    let (gain, limiter) = match p.policy {
        Policy::None => (0.0, false),
        _ if want <= 0.0 => (want, false),
        Policy::DownOnly => (0.0, false),
        Policy::UpToPeak { peak_dbtp } => (want.min(peak_dbtp - true_peak_dbtp).max(0.0), false),
        Policy::UpWithLimiter { limiter_dbtp } => (want, true_peak_dbtp + want > limiter_dbtp),
    };
    Normalization {
        platform: p.name.into(),
        target_lufs: p.target_lufs,
        gain_db: gain,
        played_lufs: lufs + gain,
        limiter_engages: limiter,
        official: p.official,
    }
}

/// The whole table for one master.
pub fn table(lufs: f64, true_peak_dbtp: f64) -> Vec<Normalization> {
    PLATFORMS
        .iter()
        .map(|p| normalize(p, lufs, true_peak_dbtp))
        .collect()
}

/// The table as Markdown rows (a header and one row per platform).
pub fn markdown(rows: &[Normalization]) -> String {
    let mut s = String::from(
        "| platform | target LUFS | gain dB | played LUFS | limiter engages |\n|---|---|---|---|---|\n",
    );
    for r in rows {
        s.push_str(&format!(
            "| {}{} | {} | {:+.1} | {:.1} | {} |\n",
            r.platform,
            if r.official { "" } else { " *" },
            r.target_lufs
                .map_or("none".to_string(), |t| format!("{t:.0}")),
            r.gain_db,
            r.played_lufs,
            if r.limiter_engages { "yes" } else { "no" }
        ));
    }
    s.push_str(
        "\n\\* not published by the platform: the figure measured by others (docs/delivery.md).\n",
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spotify_turns_a_loud_master_down_and_a_quiet_one_up_to_its_peak() {
        let s = platform("spotify").unwrap();
        assert_eq!(normalize(s, -9.0, -1.0).gain_db, -5.0);
        // −16 LUFS at −1 dBTP: no room under the −1 dBTP peak rule.
        assert_eq!(normalize(s, -16.0, -1.0).gain_db, 0.0);
        // −16 LUFS at −4 dBTP: raised the whole 2 dB.
        assert_eq!(normalize(s, -16.0, -4.0).gain_db, 2.0);
        // −16 LUFS at −2 dBTP: raised 1 dB, to the peak rule.
        assert_eq!(normalize(s, -16.0, -2.0).gain_db, 1.0);
    }

    #[test]
    fn loud_mode_limits_and_down_only_platforms_never_raise() {
        let l = normalize(platform("spotify_loud").unwrap(), -16.0, -1.0);
        assert_eq!((l.gain_db, l.limiter_engages), (5.0, true));
        let y = normalize(platform("youtube").unwrap(), -16.0, -6.0);
        assert_eq!(y.gain_db, 0.0);
        let c = normalize(platform("soundcloud").unwrap(), -9.0, -1.0);
        assert_eq!(c.gain_db, 0.0);
    }
}
