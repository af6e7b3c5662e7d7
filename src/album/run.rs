//! The phases of an album render, and the one-process render that runs them all
//! ([`render_album`]). The distributed commands ([`super::plan`]) call the same phase functions
//! one job at a time, so both give the same bits.

use super::hash::KeyBuilder;
use super::report::{self, AlbumReport};
use super::work::{
    read_json, write_json, Digested, GainMove, GainRecord, Manifest, ManifestSong, MeasureRecord,
    RenderRecord,
};
use super::{gain, pool, song, AlbumContext, AlbumError, AlbumOptions, AlbumSpec};
use std::time::Instant;

/// What happened to a song in the render phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenderStatus {
    /// Rendered now.
    Rendered,
    /// Its files were current.
    Unchanged,
    /// Left out of date (another song was selected with `--only`).
    Stale,
}

/// What an album render did.
#[derive(Debug)]
pub struct AlbumOutcome {
    /// Tracks measured in this run (the others' measurements were current).
    pub measured: Vec<usize>,
    /// Tracks rendered in this run.
    pub rendered: Vec<usize>,
    /// Tracks left out of date because `--only` named another song.
    pub stale: Vec<usize>,
    /// The drives.
    pub gain: GainRecord,
    /// The report, when it was written (`None`: it was current, or songs are stale).
    pub report: Option<AlbumReport>,
    /// Wall time, s.
    pub seconds: f64,
}

/// Phase 1 over every song: measured, or read back when current. `only` forces one song.
pub(crate) fn measure_phase(
    ctx: &AlbumContext<'_>,
    only: Option<usize>,
) -> Result<Vec<(MeasureRecord, bool)>, AlbumError> {
    let songs = &ctx.spec.songs;
    pool::try_run(ctx.jobs, songs.len(), |i| {
        let started = Instant::now();
        let (r, cached) = song::measure(ctx, &songs[i], only == Some(i))?;
        if cached {
            ctx.say(&format!(
                "unchanged {:02} {} (measurement)",
                r.track, r.title
            ));
        } else {
            ctx.say(&format!(
                "measured  {:02} {}: pre-limiter {:.1} LUFS{} ({:.1} s)",
                r.track,
                r.title,
                r.pre_limiter_lufs,
                r.own
                    .map(|o| format!(", {:+.2} dB of drive to the target", o.drive_db))
                    .unwrap_or_default(),
                started.elapsed().as_secs_f64()
            ));
        }
        Ok((r, cached))
    })
}

/// Phase 2: the gain record, read back when it was computed from these measurements under
/// this policy, otherwise solved and written. Returns it and whether it was solved now.
pub(crate) fn gain_phase(
    ctx: &AlbumContext<'_>,
    measures: &[MeasureRecord],
) -> Result<(GainRecord, bool), AlbumError> {
    let keys: Vec<String> = measures.iter().map(|m| m.key.clone()).collect();
    if let Some(g) = read_json::<GainRecord>(&ctx.work.gain()) {
        if g.measure_keys == keys && g.policy == ctx.spec.policy {
            return Ok((g, false));
        }
    }
    let before = read_json::<GainRecord>(&ctx.work.gain()).and_then(|g| g.album_gain_db);
    let g = gain::solve(ctx, measures)?;
    write_json(&ctx.work.gain(), &g)?;
    match g.album_gain_db {
        Some(d) => ctx.say(&format!(
            "album gain: {d:+.2} dB of drive for every song{}{}",
            g.reference_track
                .map(|t| format!(" (track {t} is the loudest)"))
                .or(g
                    .album_lufs_at_gain
                    .map(|l| format!(" (the album at {l:.2} LUFS)")))
                .unwrap_or_default(),
            before
                .filter(|b| b.to_bits() != d.to_bits())
                .map(|b| format!(
                    "; it was {b:+.2} dB, so every song is rendered again with the new drive"
                ))
                .unwrap_or_default()
        )),
        None => ctx.say("per-track drives solved"),
    }
    Ok((g, true))
}

/// Phase 3 for song `i`.
pub(crate) fn render_one(
    ctx: &AlbumContext<'_>,
    i: usize,
    measure: &MeasureRecord,
    gain: &GainRecord,
    force: bool,
) -> Result<(RenderRecord, bool), AlbumError> {
    let s = &ctx.spec.songs[i];
    let started = Instant::now();
    let (r, cached) = song::render(ctx, s, measure, gain.drives_db[i], force)?;
    if cached {
        ctx.say(&format!("unchanged {:02} {}", r.track, r.title));
    } else {
        ctx.say(&format!(
            "rendered  {:02} {}: {:.1} LUFS, true peak {:.2} dBTP, {} file(s) ({:.1} s)",
            r.track,
            r.title,
            r.stats.integrated_lufs,
            r.stats.true_peak_dbtp,
            r.files.len(),
            started.elapsed().as_secs_f64()
        ));
    }
    Ok((r, cached))
}

/// Phase 3 over every song (or one, with `only`: the others are read back, and reported stale
/// when their render is not current).
fn render_phase(
    ctx: &AlbumContext<'_>,
    measures: &[MeasureRecord],
    gain: &GainRecord,
    only: Option<usize>,
) -> Result<Vec<(Option<RenderRecord>, RenderStatus)>, AlbumError> {
    pool::try_run(ctx.jobs, ctx.spec.songs.len(), |i| {
        if only.is_some_and(|j| j != i) {
            let s = &ctx.spec.songs[i];
            let key = song::current_render_key(ctx, s, &measures[i].key, gain.drives_db[i]);
            let old = read_json::<RenderRecord>(&ctx.work.render(s.track));
            let status = match &old {
                Some(r) if r.key == key => RenderStatus::Unchanged,
                _ => RenderStatus::Stale,
            };
            return Ok((old, status));
        }
        let (r, cached) = render_one(ctx, i, &measures[i], gain, only == Some(i))?;
        let status = if cached {
            RenderStatus::Unchanged
        } else {
            RenderStatus::Rendered
        };
        Ok((Some(r), status))
    })
}

/// The key of the report: what it is made from.
fn report_key(ctx: &AlbumContext<'_>, renders: &[RenderRecord]) -> String {
    let mut k = KeyBuilder::new();
    k.part("title", &ctx.spec.title)
        .part("artist", &format!("{:?}", ctx.spec.artist))
        .part("policy", &format!("{:?}", ctx.spec.policy))
        .part("cd", &format!("{:?}", ctx.spec.cd))
        .part("metadata", &format!("{:?}", ctx.spec.metadata));
    for (s, r) in ctx.spec.songs.iter().zip(renders) {
        k.part("render", &r.key)
            .part("gap", &format!("{:?}", s.gap_before_s))
            .part("isrc", &format!("{:?}", s.isrc));
    }
    k.finish()
}

fn digested(ctx: &AlbumContext<'_>, path: &std::path::Path) -> Result<Digested, AlbumError> {
    Ok(Digested {
        path: path.display().to_string(),
        sha256: ctx.digests.digest(path).map_err(|source| AlbumError::Io {
            path: path.to_path_buf(),
            source,
        })?,
    })
}

/// The last step: the CD image, the report and the manifest, unless they are current. Returns
/// the report when it was written.
pub(crate) fn report_phase(
    ctx: &AlbumContext<'_>,
    measures: &[MeasureRecord],
    gain: &GainRecord,
    renders: &[RenderRecord],
) -> Result<Option<AlbumReport>, AlbumError> {
    let key = report_key(ctx, renders);
    let json_path = ctx.out_dir.join("album.json");
    let md_path = ctx.out_dir.join("album.md");
    let previous = read_json::<Manifest>(&ctx.work.manifest());
    if let Some(m) = &previous {
        let cd_there = match &ctx.spec.cd {
            None => true,
            Some(cd) => {
                let ddp_id = cd
                    .ddp
                    .as_ref()
                    .map(|d| format!("{}/CHECKSUM.MD5", d.folder));
                let there = [Some(&cd.file), Some(&cd.cue), ddp_id.as_ref()]
                    .into_iter()
                    .flatten()
                    .all(|p| {
                        ctx.out_dir
                            .join(super::spec::expand_album_pattern(
                                p,
                                None,
                                &ctx.spec.title,
                                ctx.spec.artist.as_deref(),
                                None,
                            ))
                            .is_file()
                    });
                there
            }
        };
        if m.report_key == key && json_path.is_file() && md_path.is_file() && cd_there {
            ctx.say("album report unchanged");
            return Ok(None);
        }
    }
    let songs = &ctx.spec.songs;
    let meters = pool::try_run(ctx.jobs, songs.len(), |i| {
        Ok::<_, AlbumError>(
            song::measure_file(&ctx.out_dir.join(&renders[i].measured_file))?.loudness,
        )
    })?;
    let cd_tracks: Vec<String> = renders
        .iter()
        .map(|r| r.cd_track.clone().unwrap_or_default())
        .collect();
    let cd = super::cd::write(ctx.spec, &ctx.out_dir, &cd_tracks)?;
    let gain_move = previous
        .as_ref()
        .and_then(|m| GainMove::between(m, measures, gain));
    let report = report::build(
        ctx.spec,
        gain,
        measures,
        renders,
        &meters,
        cd,
        gain_move.clone(),
    );
    write_json(&json_path, &report)?;
    super::work::write_atomic(&md_path, report::markdown(&report).as_bytes()).map_err(
        |source| AlbumError::Io {
            path: md_path.clone(),
            source,
        },
    )?;
    let mut manifest_songs = Vec::new();
    for (i, s) in songs.iter().enumerate() {
        let stems = s
            .session
            .stems
            .iter()
            .map(|st| digested(ctx, &st.path))
            .collect::<Result<_, _>>()?;
        let inputs = s
            .inputs
            .iter()
            .map(|p| digested(ctx, p))
            .collect::<Result<_, _>>()?;
        manifest_songs.push(ManifestSong {
            track: s.track,
            title: s.session.title.clone(),
            measure_key: measures[i].key.clone(),
            render_key: renders[i].key.clone(),
            drive_db: renders[i].drive_db,
            stems,
            inputs,
            files: renders[i]
                .files
                .iter()
                .map(|f| Digested {
                    path: f.path.clone(),
                    sha256: f.sha256.clone(),
                })
                .collect(),
        });
    }
    let manifest = Manifest {
        engine_version: super::hash::ENGINE_VERSION.to_string(),
        album_file: ctx.spec.file.display().to_string(),
        album_file_sha256: digested(ctx, &ctx.spec.file)?.sha256,
        policy: ctx.spec.policy,
        album_gain_db: gain.album_gain_db,
        report_key: key,
        album_gain_move: gain_move,
        songs: manifest_songs,
    };
    write_json(&ctx.work.manifest(), &manifest)?;
    ctx.say(&format!(
        "album report: {} and {}",
        json_path.display(),
        md_path.display()
    ));
    Ok(Some(report))
}

/// Renders an album in one process: every phase, every song on the pool of `opts.jobs`
/// workers, skipping what is current.
pub fn render_album(spec: &AlbumSpec, opts: &AlbumOptions) -> Result<AlbumOutcome, AlbumError> {
    let started = Instant::now();
    let ctx = AlbumContext::new(spec, opts)?;
    let result = (|| -> Result<AlbumOutcome, AlbumError> {
        let measured = measure_phase(&ctx, opts.only)?;
        let measures: Vec<MeasureRecord> = measured.iter().map(|(m, _)| m.clone()).collect();
        let (gain, _) = gain_phase(&ctx, &measures)?;
        let rendered = render_phase(&ctx, &measures, &gain, opts.only)?;
        let stale: Vec<usize> = rendered
            .iter()
            .zip(&spec.songs)
            .filter(|((_, st), _)| *st == RenderStatus::Stale)
            .map(|(_, s)| s.track)
            .collect();
        let report = if stale.is_empty() {
            let renders: Vec<RenderRecord> = rendered
                .iter()
                .map(|(r, _)| r.clone().expect("current renders have records"))
                .collect();
            report_phase(&ctx, &measures, &gain, &renders)?
        } else {
            ctx.say(&format!(
                "tracks {stale:?} are out of date (rendered with other inputs or another album gain): \
                 render the album without --only to bring them up to date; no report written"
            ));
            None
        };
        Ok(AlbumOutcome {
            measured: measured
                .iter()
                .filter(|(_, cached)| !cached)
                .map(|(m, _)| m.track)
                .collect(),
            rendered: rendered
                .iter()
                .zip(&spec.songs)
                .filter(|((_, st), _)| *st == RenderStatus::Rendered)
                .map(|(_, s)| s.track)
                .collect(),
            stale,
            gain,
            report,
            seconds: 0.0,
        })
    })();
    ctx.save_digests();
    let mut outcome = result?;
    outcome.seconds = started.elapsed().as_secs_f64();
    Ok(outcome)
}
