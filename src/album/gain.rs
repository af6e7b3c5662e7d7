//! Phase 2: the limiter drive of every song, from the policy and the phase-1 measurements.
//!
//! - **Per track**: each song keeps the drive that puts it alone on the target (solved in its
//!   measure job).
//! - **Album gain, keyed to the loudest song**: every song gets the same drive, the smallest of
//!   the songs' own drives. The song that needs the least drive to reach the target is the
//!   loudest; it lands on the target and every other song keeps its distance below it, except for
//!   what its own limiting takes away (the report says how much).
//! - **Album gain, keyed to the whole album**: every song gets the same drive, solved so that the
//!   album measured as one programme (the gating blocks of every song together, as
//!   [`LoudnessMeter::integrated_lufs_of`] does) lands on the target. Each step of the solve runs
//!   every song's limiter chain over its spill, in parallel.
//!
//! The true-peak ceiling holds either way: every song's master limiter and every deliverable's
//! safety limiter stop at it.

use super::spec::{GainKey, PolicyMode};
use super::work::{GainRecord, MeasureRecord};
use super::{pool, song, AlbumContext, AlbumError};
use crate::analysis::meters::LoudnessMeter;
use crate::render::target::{DRIVE_RANGE_DB, TOLERANCE_LU};

/// Most steps of the whole-album solve.
const MAX_WHOLE_PASSES: u32 = 8;

/// Computes every song's drive.
pub fn solve(ctx: &AlbumContext<'_>, measures: &[MeasureRecord]) -> Result<GainRecord, AlbumError> {
    let policy = ctx.spec.policy;
    let keys = measures.iter().map(|m| m.key.clone()).collect();
    let own = |m: &MeasureRecord| {
        m.own.ok_or_else(|| {
            AlbumError::Invalid(format!(
                "track {}: its measurement has no drive of its own (measured under another policy); measure it again",
                m.track
            ))
        })
    };
    let mut record = GainRecord {
        policy,
        measure_keys: keys,
        drives_db: Vec::new(),
        album_gain_db: None,
        reference_track: None,
        album_lufs_at_gain: None,
        solve_passes: 0,
    };
    match (policy.mode, policy.key) {
        (PolicyMode::PerTrack, _) => {
            for m in measures {
                record.drives_db.push(own(m)?.drive_db);
            }
        }
        (PolicyMode::AlbumGain, GainKey::Loudest) => {
            let mut best: Option<(f64, usize)> = None;
            for m in measures {
                let d = own(m)?.drive_db;
                // Ties go to the earlier track.
                if best.is_none_or(|(b, _)| d < b) {
                    best = Some((d, m.track));
                }
            }
            let (gain, track) = best.expect("an album has songs");
            record.drives_db = vec![gain; measures.len()];
            record.album_gain_db = Some(gain);
            record.reference_track = Some(track);
        }
        (PolicyMode::AlbumGain, GainKey::Whole) => {
            let (gain, lufs, passes) = solve_whole(ctx, measures)?;
            record.drives_db = vec![gain; measures.len()];
            record.album_gain_db = Some(gain);
            record.album_lufs_at_gain = Some(lufs);
            record.solve_passes = passes;
        }
    }
    Ok(record)
}

/// The album's pre-limiter loudness estimated from the songs' (power mean by duration): the
/// first guess of the whole-album solve.
fn pre_limiter_album_lufs(measures: &[MeasureRecord]) -> f64 {
    let (mut e, mut t) = (0.0, 0.0);
    for m in measures {
        let w = m.song_frames as f64 / f64::from(m.sample_rate_hz);
        e += w * 10f64.powf(m.pre_limiter_lufs / 10.0);
        t += w;
    }
    10.0 * (e / t.max(1e-9)).log10()
}

fn solve_whole(
    ctx: &AlbumContext<'_>,
    measures: &[MeasureRecord],
) -> Result<(f64, f64, u32), AlbumError> {
    let songs = &ctx.spec.songs;
    let ready = pool::try_run(ctx.jobs, songs.len(), |i| {
        let prep = song::prepare(ctx, &songs[i])?;
        let spilled = song::ensure_spill(ctx, &songs[i], &prep, &measures[i])?;
        Ok::<_, AlbumError>((prep, spilled))
    })?;
    let target = ctx.spec.policy.target_lufs;
    let (lo, hi) = DRIVE_RANGE_DB;
    let mut gain = (target - pre_limiter_album_lufs(measures)).clamp(lo, hi);
    let mut lufs = f64::NAN;
    let mut passes = 0;
    while passes < MAX_WHOLE_PASSES {
        let meters = pool::try_run(ctx.jobs, songs.len(), |i| {
            let (prep, spilled) = &ready[i];
            song::tail_loudness(ctx, &songs[i], prep, spilled, gain)
        })?;
        passes += 1;
        let refs: Vec<&LoudnessMeter> = meters.iter().collect();
        lufs = LoudnessMeter::integrated_lufs_of(&refs);
        let error = target - lufs;
        if error.abs() <= TOLERANCE_LU {
            break;
        }
        let next = (gain + error).clamp(lo, hi);
        if next == gain {
            break;
        }
        gain = next;
    }
    Ok((gain, lufs, passes))
}
