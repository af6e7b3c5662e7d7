//! One song's jobs: **measure** (phase 1: the full graph once, the pre-limiter master spilled and
//! measured, and the song's own drive to the target when the policy needs it) and **render**
//! (phase 3: the master limiter and what follows it run over the spill with the drive the
//! album's gain step gave the song, writing its deliverables, which are then measured).
//!
//! Both reuse the loudness-target stages of [`crate::render::target`]. Each job streams its song,
//! so memory does not grow with its length, and each leaves a record in the work folder
//! ([`super::work`]) carrying the key of its inputs: a job whose record is current is skipped.

use super::hash::{measure_key, render_key};
use super::spec::{PolicyMode, SongSpec};
use super::work::{FileRecord, MeasureRecord, OwnDrive, RenderRecord, SongStats, WorkDir};
use super::{AlbumContext, AlbumError};
use crate::analysis::meters::{LevelMeter, LoudnessMeter, TruePeakMeter};
use crate::dsp::ConfigValue;
use crate::graph::{GraphSpec, NodeKind};
use crate::io::decode::Decoder;
use crate::render::readings::LimiterReadings;
use crate::render::target::{
    master_tail, measure_tail, render_tail, solve_drive, spill_pre_limiter, MasterTail,
    SpilledMaster,
};
use crate::render::{open_stems, plan_stems, RenderError, RenderOptions, StemPlan};
use crate::session::{Deliverable, DitherKind, FileFormat, Session};
use std::path::{Path, PathBuf};

/// True-peak oversampling of the measurements on the delivered files.
pub const FILE_TRUE_PEAK_FACTOR: usize = 8;
/// Seed of the CD track's dither (a TPDF deliverable like any other).
const CD_DITHER_SEED: u64 = 0xCD_5EED;

/// A song ready to run: its stems planned, its graph at the session rate with the album's
/// ceiling on the master limiter, and that limiter's tail chain.
pub struct Prepared {
    /// Rate and length.
    pub plan: StemPlan,
    /// The graph.
    pub spec: GraphSpec,
    /// The master limiter and what follows it.
    pub tail: MasterTail,
}

fn render_err(song: &SongSpec, source: RenderError) -> AlbumError {
    AlbumError::Song {
        track: song.track,
        title: song.session.title.clone(),
        source: Box::new(source),
    }
}

/// Plans the stems and finds the master limiter; puts the policy's ceiling on it.
pub fn prepare(ctx: &AlbumContext<'_>, song: &SongSpec) -> Result<Prepared, AlbumError> {
    let s = &song.session;
    let plan = plan_stems(s).map_err(|e| render_err(song, e))?;
    let mut spec = s.graph_at(f64::from(plan.sample_rate));
    let tail = master_tail(s, &spec).map_err(|e| render_err(song, e))?;
    let ceiling = ctx.spec.policy.ceiling_dbtp;
    if let Some(NodeKind::Processor { config, .. }) = spec
        .nodes
        .iter_mut()
        .find(|n| n.id == tail.limiter())
        .map(|n| &mut n.kind)
    {
        config
            .entries
            .insert("ceiling_dbtp".into(), ConfigValue::Number(ceiling));
    }
    Ok(Prepared { plan, spec, tail })
}

/// The current measure key of a song.
pub fn current_measure_key(ctx: &AlbumContext<'_>, song: &SongSpec) -> Result<String, AlbumError> {
    measure_key(
        &song.session,
        &song.inputs,
        &format!("{:?}", ctx.spec.policy),
        &ctx.digests,
    )
    .map_err(|source| AlbumError::Io {
        path: song.session.recipe.clone(),
        source,
    })
}

/// The spill of a track for a measure key: the key is in the name, so a spill never stands for
/// inputs other than its own.
fn spill_path(work: &WorkDir, track: usize, key: &str) -> PathBuf {
    let base = work.spill(track);
    base.with_file_name(format!("{track:02}-{}.wav", &key[..16]))
}

/// Removes the spills of `track` other than `keep`.
fn remove_other_spills(work: &WorkDir, track: usize, keep: &Path) {
    let dir = work.spill(track);
    let Some(dir) = dir.parent() else { return };
    let prefix = format!("{track:02}-");
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(&prefix) && name.ends_with(".wav") && p != keep {
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

fn options(ctx: &AlbumContext<'_>) -> RenderOptions {
    let mut o = RenderOptions::new(&ctx.out_dir);
    // The album measures its files itself and writes its own report: no render report's
    // meters and deliverable analyses (a WAV's `bext` loudness is measured either way).
    o.report = false;
    o.block_size = ctx.block_size;
    o.interrupt = ctx.interrupt.clone();
    o
}

/// Runs the full graph and spills the pre-limiter master; returns it and its meter.
fn spill(
    ctx: &AlbumContext<'_>,
    song: &SongSpec,
    prep: &Prepared,
    key: &str,
) -> Result<(SpilledMaster, LoudnessMeter, Vec<String>), AlbumError> {
    let (streams, mut warnings) =
        open_stems(&song.session, &prep.plan).map_err(|e| render_err(song, e))?;
    let path = spill_path(&ctx.work, song.track, key);
    std::fs::create_dir_all(path.parent().expect("in the work folder")).map_err(|source| {
        AlbumError::Io {
            path: path.clone(),
            source,
        }
    })?;
    let pre = spill_pre_limiter(
        &prep.spec,
        &prep.tail,
        streams,
        &prep.plan,
        &path,
        &mut options(ctx),
    )
    .map_err(|e| render_err(song, e))?;
    remove_other_spills(&ctx.work, song.track, &path);
    warnings.extend(pre.warnings);
    Ok((pre.spill, pre.meter, warnings))
}

/// Phase 1 for one song. Returns the record and whether it was already current.
pub fn measure(
    ctx: &AlbumContext<'_>,
    song: &SongSpec,
    force: bool,
) -> Result<(MeasureRecord, bool), AlbumError> {
    let key = current_measure_key(ctx, song)?;
    let path = ctx.work.measure(song.track);
    if !force {
        if let Some(r) = super::work::read_json::<MeasureRecord>(&path) {
            if r.key == key {
                return Ok((r, true));
            }
        }
    }
    let prep = prepare(ctx, song)?;
    let (spilled, meter, warnings) = spill(ctx, song, &prep, &key)?;
    let pre_lufs = meter.integrated_lufs();
    if !pre_lufs.is_finite() {
        return Err(render_err(
            song,
            RenderError::Invalid("the master is silent: there is no loudness to adjust".into()),
        ));
    }
    let policy = ctx.spec.policy;
    let needs_own =
        policy.mode == PolicyMode::PerTrack || policy.key == super::spec::GainKey::Loudest;
    let own = if needs_own {
        // The limiter's detector runs in the first pass only (render::readings).
        let mut readings = LimiterReadings::new(&prep.spec, &prep.tail, &spilled);
        let s = solve_drive(
            &prep.spec,
            &prep.tail,
            &spilled,
            pre_lufs,
            policy.target_lufs,
            ctx.block_size,
            Some(&mut readings),
            None,
        )
        .map_err(|e| render_err(song, e))?;
        Some(OwnDrive {
            drive_db: s.drive_db,
            lufs: s.lufs,
            passes: s.passes,
        })
    } else {
        None
    };
    let record = MeasureRecord {
        track: song.track,
        title: song.session.title.clone(),
        key,
        sample_rate_hz: prep.plan.sample_rate,
        channels: prep.tail.channels,
        song_frames: prep.plan.song_frames,
        spill_frames: spilled.frames,
        pre_limiter_lufs: pre_lufs,
        pre_limiter_lra_lu: meter.loudness_range_lu(),
        own,
        limiter: prep.tail.limiter().to_string(),
        warnings,
    };
    super::work::write_json(&path, &record)?;
    Ok((record, false))
}

/// The spill of a measured song: the one its measure job wrote, or (if it is gone) the full
/// graph run again, which gives the same bits.
pub fn ensure_spill(
    ctx: &AlbumContext<'_>,
    song: &SongSpec,
    prep: &Prepared,
    record: &MeasureRecord,
) -> Result<SpilledMaster, AlbumError> {
    let path = spill_path(&ctx.work, song.track, &record.key);
    let spilled = SpilledMaster {
        path: path.clone(),
        frames: record.spill_frames,
        sample_rate: record.sample_rate_hz,
        channels: record.channels,
    };
    let intact = Decoder::open(&path)
        .map(|d| {
            let i = d.info();
            i.frames == Some(record.spill_frames)
                && i.sample_rate == record.sample_rate_hz
                && i.channels == record.channels
        })
        .unwrap_or(false);
    if intact {
        return Ok(spilled);
    }
    let (again, _, _) = spill(ctx, song, prep, &record.key)?;
    if again != spilled {
        return Err(AlbumError::Invalid(format!(
            "track {} ({}): the pre-limiter master came out differently when rendered again; \
             its inputs changed during the run",
            song.track, song.session.title
        )));
    }
    Ok(again)
}

/// Loudness of a song's tail chain at `drive` over its spill (for the whole-album gain).
pub fn tail_loudness(
    ctx: &AlbumContext<'_>,
    song: &SongSpec,
    prep: &Prepared,
    spilled: &SpilledMaster,
    drive: f64,
) -> Result<LoudnessMeter, AlbumError> {
    measure_tail(&prep.spec, &prep.tail, drive, spilled, ctx.block_size, None)
        .map_err(|e| render_err(song, e))
}

/// The deliverable of a song's session that the CD image is made from: one of its own when it
/// is a CD master already (16-bit 44.1 kHz TPDF-dithered WAV without added silence), else a
/// hidden one [`album_session`] adds.
fn cd_master(session: &Session) -> Option<usize> {
    session.deliverables.iter().position(|d| {
        d.format == FileFormat::Wav
            && d.bits == 16
            && d.sample_rate == Some(super::cd::CD_RATE)
            && d.dither == DitherKind::Tpdf
            && d.lead_silence_s == 0.0
            && d.tail_silence_s == 0.0
    })
}

/// The session as rendered in the album: its deliverables, plus a CD track in the work folder
/// when the album has a CD image and no deliverable is a CD master already. Returns the index of
/// the CD master among the deliverables, if any, and whether it is the hidden one.
pub fn album_session(ctx: &AlbumContext<'_>, song: &SongSpec) -> (Session, Option<(usize, bool)>) {
    let mut s = song.session.clone();
    if ctx.spec.cd.is_none() {
        return (s, None);
    }
    if let Some(i) = cd_master(&s) {
        return (s, Some((i, false)));
    }
    s.deliverables.push(Deliverable {
        file: WorkDir::cd_track_relative(song.track),
        format: FileFormat::Wav,
        tags: Vec::new(),
        output: s.deliverables.first().and_then(|d| d.output.clone()),
        bits: 16,
        sample_rate: Some(super::cd::CD_RATE),
        dither: DitherKind::Tpdf,
        ceiling_dbtp: None,
        seed: CD_DITHER_SEED,
        lead_silence_s: 0.0,
        tail_silence_s: 0.0,
        // A working file: no metadata, no measuring pass.
        bwf: crate::session::BwfDecl {
            bext: false,
            ..Default::default()
        },
        lossy: None,
        origin: None,
    });
    let i = s.deliverables.len() - 1;
    (s, Some((i, true)))
}

/// The current render key of a song rendered with `drive`.
pub fn current_render_key(
    ctx: &AlbumContext<'_>,
    song: &SongSpec,
    measure_key: &str,
    drive: f64,
) -> String {
    render_key(measure_key, drive, &album_session(ctx, song).0, "")
}

/// Phase 3 for one song. Returns the record and whether it was already current.
pub fn render(
    ctx: &AlbumContext<'_>,
    song: &SongSpec,
    record: &MeasureRecord,
    drive: f64,
    force: bool,
) -> Result<(RenderRecord, bool), AlbumError> {
    let (session, cd) = album_session(ctx, song);
    let key = render_key(&record.key, drive, &session, "");
    let path = ctx.work.render(song.track);
    if !force {
        if let Some(r) = super::work::read_json::<RenderRecord>(&path) {
            let files_there = r
                .files
                .iter()
                .map(|f| &f.path)
                .chain(r.cd_track.as_ref())
                .all(|p| ctx.out_dir.join(p).is_file());
            if r.key == key && files_there {
                return Ok((r, true));
            }
        }
    }
    let prep = prepare(ctx, song)?;
    let spilled = ensure_spill(ctx, song, &prep, record)?;
    let (result, _meters) = render_tail(
        &session,
        &prep.spec,
        &prep.tail,
        drive,
        &spilled,
        prep.plan.song_frames,
        &mut options(ctx),
    )
    .map_err(|e| render_err(song, e))?;
    let mut files = Vec::new();
    let mut cd_track = None;
    let mut stats = None;
    let mut measured_file = String::new();
    for (j, f) in result.files.iter().enumerate() {
        let rel = f
            .wav
            .path
            .strip_prefix(&ctx.out_dir)
            .unwrap_or(&f.wav.path)
            .to_string_lossy()
            .into_owned();
        if let Some((c, hidden)) = cd {
            if c == j {
                cd_track = Some(rel.clone());
                if hidden {
                    continue;
                }
            }
        }
        let m = measure_file(&f.wav.path)?;
        if stats.is_none() && f.sample_rate == record.sample_rate_hz {
            stats = Some(m.stats);
            measured_file = rel.clone();
        }
        files.push(FileRecord {
            path: rel,
            format: f.format.name().into(),
            bits: f.bits,
            sample_rate_hz: f.sample_rate,
            frames: f.wav.frames,
            clipped_samples: f.wav.clipped,
            dithered: f.dithered,
            ceiling_dbtp: f.ceiling_dbtp,
            safety_gain_reduction_db: f.safety_gain_reduction_db,
            true_peak_dbtp: m.stats.true_peak_dbtp,
            integrated_lufs: m.stats.integrated_lufs,
            sha256: super::hash::file_sha256(&f.wav.path).map_err(|source| AlbumError::Io {
                path: f.wav.path.clone(),
                source,
            })?,
        });
    }
    let stats = match stats {
        Some(s) => s,
        None => {
            // No file at the session rate: the first one stands for the song.
            let first = files.first().ok_or_else(|| {
                AlbumError::Invalid(format!("track {}: no deliverable", song.track))
            })?;
            measured_file = first.path.clone();
            measure_file(&ctx.out_dir.join(&first.path))?.stats
        }
    };
    let mut warnings = record.warnings.clone();
    warnings.extend(result.warnings);
    for f in &files {
        if f.clipped_samples > 0 {
            warnings.push(format!("{}: {} samples clipped", f.path, f.clipped_samples));
        }
    }
    let rec = RenderRecord {
        track: song.track,
        title: song.session.title.clone(),
        key,
        drive_db: drive,
        files,
        measured_file,
        stats,
        cd_track,
        warnings,
    };
    super::work::write_json(&path, &rec)?;
    Ok((rec, false))
}

/// A delivered file measured: its stats and its loudness meter.
pub struct FileMeasurement {
    /// The stats.
    pub stats: SongStats,
    /// The meter (for album loudness).
    pub loudness: LoudnessMeter,
}

/// Decodes a file and measures loudness, true peak (8×) and sample peak.
pub fn measure_file(path: &Path) -> Result<FileMeasurement, AlbumError> {
    let mut d = Decoder::open(path)?;
    let info = d.info().clone();
    let rate = f64::from(info.sample_rate);
    let ch = info.channels;
    let mut loud = LoudnessMeter::new(rate, ch);
    let mut tp = TruePeakMeter::new(rate, ch, FILE_TRUE_PEAK_FACTOR);
    let mut level = LevelMeter::new(ch);
    const BLOCK: usize = 8192;
    let mut bufs = vec![vec![0.0; BLOCK]; ch];
    let mut frames = 0u64;
    loop {
        let n = {
            let mut slices: Vec<&mut [f64]> = bufs.iter_mut().map(|b| &mut b[..]).collect();
            d.read(&mut slices, BLOCK)?
        };
        if n == 0 {
            break;
        }
        let planar: Vec<&[f64]> = bufs.iter().map(|b| &b[..n]).collect();
        loud.push(&planar);
        tp.push(&planar);
        level.push(&planar);
        frames += n as u64;
    }
    tp.finish();
    Ok(FileMeasurement {
        stats: SongStats {
            integrated_lufs: loud.integrated_lufs(),
            loudness_range_lu: loud.loudness_range_lu(),
            true_peak_dbtp: tp.true_peak_dbtp(),
            sample_peak_dbfs: level.sample_peak_dbfs(),
            short_term_max_lufs: loud.short_term_max_lufs(),
            duration_s: frames as f64 / rate,
        },
        loudness: loud,
    })
}
