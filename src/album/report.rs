//! The album report: every song's loudness, loudness range, true peak, PLR and limiting, the
//! spread across the album, the album measured as one programme, and the policy applied; as
//! JSON (`album.json`) and Markdown (`album.md`).
//!
//! Every level is measured on the delivered files (the song's first file at the session rate),
//! not taken from the render: the report checks the render.

use super::cd::CdOutcome;
use super::spec::{AlbumSpec, GainKey, Policy, PolicyMode};
use super::work::{level_db, FileRecord, GainMove, GainRecord, MeasureRecord, RenderRecord};
use crate::analysis::meters::LoudnessMeter;
use serde::Serialize;
use std::fmt::Write;

/// How far past the ceiling a file's true peak (8×, measured independently) may read before the
/// report flags it: the meters' interpolation filters differ by a few hundredths of a dB.
pub const CEILING_TOLERANCE_DB: f64 = 0.05;
/// A song whose own limiting moves it by more than this relative to the reference is called
/// out in the report.
pub const SHIFT_NOTE_LU: f64 = 0.1;

/// The policy, spelled out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyReport {
    /// `album_gain` or `per_track`.
    pub mode: PolicyMode,
    /// `loudest` or `whole` (album gain).
    pub key: Option<GainKey>,
    /// The target, LUFS.
    pub target_lufs: f64,
    /// The true-peak ceiling, dBTP.
    pub ceiling_dbtp: f64,
    /// In words.
    pub description: String,
}

/// One song in the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SongReport {
    /// Track number.
    pub track: usize,
    /// Title.
    pub title: String,
    /// Artist.
    pub artist: Option<String>,
    /// ISRC.
    pub isrc: Option<String>,
    /// Integrated loudness of the master as delivered, LUFS.
    #[serde(with = "level_db")]
    pub integrated_lufs: f64,
    /// Loudness range, LU.
    #[serde(with = "level_db")]
    pub loudness_range_lu: f64,
    /// True peak (8× oversampled), dBTP.
    #[serde(with = "level_db")]
    pub true_peak_dbtp: f64,
    /// Sample peak, dBFS.
    #[serde(with = "level_db")]
    pub sample_peak_dbfs: f64,
    /// Peak-to-loudness ratio: true peak minus integrated loudness, dB.
    #[serde(with = "level_db")]
    pub plr_db: f64,
    /// Short-term loudness maximum, LUFS.
    #[serde(with = "level_db")]
    pub short_term_max_lufs: f64,
    /// Integrated loudness of the pre-limiter master, LUFS.
    #[serde(with = "level_db")]
    pub pre_limiter_lufs: f64,
    /// The master limiter's drive, dB.
    pub drive_db: f64,
    /// What the master limiter took away: drive minus the loudness gained, LU.
    #[serde(with = "level_db")]
    pub gain_reduction_lu: f64,
    /// Album gain: how far this song's own limiting moved it relative to the reference song
    /// (negative: quieter than its pre-limiter distance to the reference), LU.
    pub limiting_shift_lu: Option<f64>,
    /// Difference from the target, LU (per track: every song; album gain: the reference).
    pub off_target_lu: Option<f64>,
    /// Duration, s.
    pub duration_s: f64,
    /// The file the song's levels were measured on.
    pub measured_file: String,
    /// Every deliverable, measured.
    pub files: Vec<FileRecord>,
    /// Warnings of its render.
    pub warnings: Vec<String>,
}

/// Largest minus smallest across the songs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Spread {
    /// Integrated loudness, LU.
    pub integrated_lu: f64,
    /// Loudness range, LU.
    pub loudness_range_lu: f64,
    /// True peak, dB.
    pub true_peak_db: f64,
    /// PLR, dB.
    pub plr_db: f64,
    /// The loudest song.
    pub loudest_track: usize,
    /// The quietest song.
    pub quietest_track: usize,
}

/// The album report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlbumReport {
    /// Album title.
    pub album: String,
    /// Album artist.
    pub artist: Option<String>,
    /// stemgraph's version.
    pub engine_version: String,
    /// The policy applied.
    pub policy: PolicyReport,
    /// Album gain: the drive every song shares, dB.
    pub album_gain_db: Option<f64>,
    /// Album gain keyed to the loudest song: that song.
    pub reference_track: Option<usize>,
    /// Album gain: how it moved since the previous render, when it did (one song's change
    /// moves every song's drive).
    pub album_gain_move: Option<GainMove>,
    /// The album measured as one programme, LUFS.
    #[serde(with = "level_db")]
    pub album_integrated_lufs: f64,
    /// The album's loudness range, LU.
    #[serde(with = "level_db")]
    pub album_loudness_range_lu: f64,
    /// Spread across the songs.
    pub spread: Spread,
    /// Every song.
    pub songs: Vec<SongReport>,
    /// The CD image, if made.
    pub cd: Option<CdOutcome>,
    /// Whether every file's true peak is at or under the ceiling (within
    /// [`CEILING_TOLERANCE_DB`]).
    pub ceiling_holds: bool,
    /// Album-level notes: a move of the album gain, songs moved by their own limiting, ceilings
    /// exceeded.
    pub notes: Vec<String>,
}

/// Builds the report. `meters[i]` measures song `i`'s measured file; `gain_move` is how the
/// album gain moved since the previous render.
pub fn build(
    spec: &AlbumSpec,
    gain: &GainRecord,
    measures: &[MeasureRecord],
    renders: &[RenderRecord],
    meters: &[LoudnessMeter],
    cd: Option<CdOutcome>,
    gain_move: Option<GainMove>,
) -> AlbumReport {
    let policy: Policy = spec.policy;
    let gr = |i: usize| {
        renders[i].drive_db - (renders[i].stats.integrated_lufs - measures[i].pre_limiter_lufs)
    };
    let reference = gain
        .reference_track
        .and_then(|t| spec.songs.iter().position(|s| s.track == t))
        .or_else(|| {
            // The whole-album key has no reference song: shifts are relative to the song the
            // limiter touched least.
            (policy.mode == PolicyMode::AlbumGain).then(|| {
                (0..renders.len())
                    .min_by(|&a, &b| gr(a).total_cmp(&gr(b)))
                    .unwrap_or(0)
            })
        });
    let mut notes: Vec<String> = gain_move.iter().map(GainMove::describe).collect();
    let mut songs = Vec::new();
    let mut ceiling_holds = true;
    for (i, s) in spec.songs.iter().enumerate() {
        let st = renders[i].stats;
        let shift = reference.map(|r| gr(r) - gr(i));
        let off_target = match policy.mode {
            PolicyMode::PerTrack => Some(st.integrated_lufs - policy.target_lufs),
            PolicyMode::AlbumGain if reference == Some(i) && policy.key == GainKey::Loudest => {
                Some(st.integrated_lufs - policy.target_lufs)
            }
            PolicyMode::AlbumGain => None,
        };
        if let Some(sh) = shift {
            if sh.abs() > SHIFT_NOTE_LU {
                notes.push(format!(
                    "track {} ({}): its own limiting takes {:.2} LU {} than the reference's, so it sits {:.2} LU {} than the album gain alone would put it",
                    s.track,
                    s.session.title,
                    sh.abs(),
                    if sh < 0.0 { "more" } else { "less" },
                    sh.abs(),
                    if sh < 0.0 { "lower" } else { "higher" },
                ));
            }
        }
        for f in &renders[i].files {
            let ceiling = f.ceiling_dbtp.unwrap_or(policy.ceiling_dbtp);
            if f.true_peak_dbtp > ceiling + CEILING_TOLERANCE_DB {
                ceiling_holds = false;
                notes.push(format!(
                    "{}: true peak {:.2} dBTP is over the {ceiling} dBTP ceiling",
                    f.path, f.true_peak_dbtp
                ));
            }
        }
        songs.push(SongReport {
            track: s.track,
            title: s.session.title.clone(),
            artist: s.session.artist.clone(),
            isrc: s.isrc.clone(),
            integrated_lufs: st.integrated_lufs,
            loudness_range_lu: st.loudness_range_lu,
            true_peak_dbtp: st.true_peak_dbtp,
            sample_peak_dbfs: st.sample_peak_dbfs,
            plr_db: st.true_peak_dbtp - st.integrated_lufs,
            short_term_max_lufs: st.short_term_max_lufs,
            pre_limiter_lufs: measures[i].pre_limiter_lufs,
            drive_db: renders[i].drive_db,
            gain_reduction_lu: gr(i),
            limiting_shift_lu: shift,
            off_target_lu: off_target,
            duration_s: st.duration_s,
            measured_file: renders[i].measured_file.clone(),
            files: renders[i].files.clone(),
            warnings: renders[i].warnings.clone(),
        });
    }
    let spread_of = |f: &dyn Fn(&SongReport) -> f64| {
        let vals: Vec<f64> = songs.iter().map(f).filter(|v| v.is_finite()).collect();
        let max = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let min = vals.iter().copied().fold(f64::INFINITY, f64::min);
        if vals.is_empty() {
            0.0
        } else {
            max - min
        }
    };
    let by_loudness =
        |a: &&SongReport, b: &&SongReport| a.integrated_lufs.total_cmp(&b.integrated_lufs);
    let spread = Spread {
        integrated_lu: spread_of(&|s| s.integrated_lufs),
        loudness_range_lu: spread_of(&|s| s.loudness_range_lu),
        true_peak_db: spread_of(&|s| s.true_peak_dbtp),
        plr_db: spread_of(&|s| s.plr_db),
        loudest_track: songs.iter().max_by(by_loudness).map_or(0, |s| s.track),
        quietest_track: songs.iter().min_by(by_loudness).map_or(0, |s| s.track),
    };
    let refs: Vec<&LoudnessMeter> = meters.iter().collect();
    AlbumReport {
        album: spec.title.clone(),
        artist: spec.artist.clone(),
        engine_version: super::hash::ENGINE_VERSION.to_string(),
        policy: PolicyReport {
            mode: policy.mode,
            key: (policy.mode == PolicyMode::AlbumGain).then_some(policy.key),
            target_lufs: policy.target_lufs,
            ceiling_dbtp: policy.ceiling_dbtp,
            description: policy.describe(),
        },
        album_gain_db: gain.album_gain_db,
        reference_track: gain.reference_track,
        album_gain_move: gain_move,
        album_integrated_lufs: LoudnessMeter::integrated_lufs_of(&refs),
        album_loudness_range_lu: LoudnessMeter::loudness_range_lu_of(&refs),
        spread,
        songs,
        cd,
        ceiling_holds,
        notes,
    }
}

fn num(x: f64, digits: usize) -> String {
    if x.is_finite() {
        format!("{x:.digits$}")
    } else {
        "−∞".into()
    }
}

/// The report as Markdown.
pub fn markdown(r: &AlbumReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# {}", r.album);
    if let Some(a) = &r.artist {
        let _ = writeln!(s, "\n{a}");
    }
    let _ = writeln!(s, "\n**Policy:** {}.", r.policy.description);
    if let Some(g) = r.album_gain_db {
        let _ = write!(
            s,
            "\n**Album gain:** {g:+.2} dB of limiter drive for every song"
        );
        match r.reference_track {
            Some(t) => {
                let _ = writeln!(s, ", keyed to track {t} (the loudest).");
            }
            None => {
                let _ = writeln!(s, ", keyed to the whole album.");
            }
        }
    }
    let _ = writeln!(
        s,
        "\n**Album as one programme:** {} LUFS integrated, loudness range {} LU.",
        num(r.album_integrated_lufs, 1),
        num(r.album_loudness_range_lu, 1)
    );
    let _ = writeln!(
        s,
        "\n| # | title | integrated LUFS | LRA LU | true peak dBTP | PLR dB | pre-limiter LUFS | drive dB | gain reduction LU | limiting shift LU |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for song in &r.songs {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {:+.2} | {} | {} |",
            song.track,
            song.title.replace('|', "\\|"),
            num(song.integrated_lufs, 1),
            num(song.loudness_range_lu, 1),
            num(song.true_peak_dbtp, 2),
            num(song.plr_db, 1),
            num(song.pre_limiter_lufs, 1),
            song.drive_db,
            num(song.gain_reduction_lu, 2),
            song.limiting_shift_lu
                .map_or("–".into(), |v| format!("{v:+.2}")),
        );
    }
    let sp = &r.spread;
    let _ = writeln!(
        s,
        "| | **spread** | {} | {} | {} | {} | | | | |",
        num(sp.integrated_lu, 1),
        num(sp.loudness_range_lu, 1),
        num(sp.true_peak_db, 2),
        num(sp.plr_db, 1)
    );
    let _ = writeln!(
        s,
        "\nLoudest: track {}; quietest: track {}. Levels are measured on the delivered files \
         (true peak 8× oversampled). Gain reduction is the loudness the master limiter took away \
         (drive minus loudness gained); the limiting shift is how far a song's own limiting moved \
         it relative to the reference.",
        sp.loudest_track, sp.quietest_track
    );
    if !r.notes.is_empty() {
        let _ = writeln!(s, "\n## Notes\n");
        for n in &r.notes {
            let _ = writeln!(s, "- {n}");
        }
    }
    let _ = writeln!(
        s,
        "\n## Files\n\n| file | format | bits | rate Hz | true peak dBTP | LUFS | safety limiter GR dB |\n|---|---|---:|---:|---:|---:|---:|"
    );
    for song in &r.songs {
        for f in &song.files {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {:.2} |",
                f.path.replace('|', "\\|"),
                f.format,
                f.bits,
                f.sample_rate_hz,
                num(f.true_peak_dbtp, 2),
                num(f.integrated_lufs, 1),
                f.safety_gain_reduction_db
            );
        }
    }
    if let Some(cd) = &r.cd {
        let _ = writeln!(
            s,
            "\n## CD\n\n`{}` with `{}`, {} (mm:ss:ff).\n\n| track | title | INDEX 01 |\n|---:|---|---|",
            cd.image,
            cd.cue,
            super::cd::msf(cd.total_samples)
        );
        for t in &cd.tracks {
            let _ = writeln!(
                s,
                "| {} | {} | {} |",
                t.track,
                t.title.replace('|', "\\|"),
                t.index01
            );
        }
        if let Some(d) = &cd.ddp {
            let _ = writeln!(
                s,
                "\nDDP 2.00 fileset `{}/`: {} sectors with the pre-gap, {} files with their MD5s \
                 (`CHECKSUM.MD5`).",
                d.folder,
                d.sectors,
                d.files.len()
            );
        }
    }
    s
}
