//! The inputs stage: the preflight (no output may land on an input, [`super::preflight`]), the
//! stems planned (session rate, song length) and opened as streams, the graph at the session
//! rate, and what the stem cache already knows of the stems. Also what the streams found:
//! non-finite samples, muted ([`stems_non_finite`]).
//!
//! [`plan_stems`] and [`open_stems`] are also how live playback and albums read a session's
//! stems.

use super::report::{CachedStem, StemCache};
use super::{RenderContext, RenderError, RenderOptions, RenderResult};
use crate::graph::GraphSpec;
use crate::io::decode::{Decoder, NonFinite, StemStream, StreamOptions};
use crate::session::Session;
use std::time::Instant;

/// What the stems say about the session: its rate and length.
pub struct StemPlan {
    /// The session rate.
    pub sample_rate: u32,
    /// The longest stem, in frames at the session rate.
    pub song_frames: u64,
}

/// What the stem cache knew of each stem when the render started.
pub(crate) struct KnownStems {
    /// Per stem (recipe order), its cache key's context ([`stem_context`]).
    pub contexts: Vec<String>,
    /// Per stem, what the cache held for it (nothing when no report is asked for).
    pub cached: Vec<Option<CachedStem>>,
}

/// The inputs stage: starts the render's context. Checks that the recipe delivers something,
/// plans and opens the stems, sets the graph at the session rate, and looks the stems up in
/// the stem cache (their meters known there are not measured again, nor their hashes computed).
pub(super) fn open(
    session: &Session,
    mut opts: RenderOptions,
) -> Result<RenderContext<'_>, RenderError> {
    let started = Instant::now();
    if session.deliverables.is_empty() {
        return Err(RenderError::Invalid(format!(
            "{}: the recipe declares no deliverables (add e.g. s:deliver {{ bits = 24 }})",
            session.recipe.display()
        )));
    }
    // Inputs are sacred: no output may land on one.
    super::preflight::check(session, &opts)?;
    let plan = plan_stems(session)?;
    let (streams, warnings) = open_stems(session, &plan)?;
    let spec = session.graph_at(f64::from(plan.sample_rate));
    let stems = look_up(session, &spec, &plan, &opts.stem_cache, opts.report);
    opts.known_stems = session
        .stems
        .iter()
        .zip(&stems.cached)
        .filter_map(|(stem, c)| Some((stem.name.clone(), c.as_ref()?.meters.clone()?)))
        .collect();
    let result = RenderResult {
        sample_rate: plan.sample_rate,
        song_frames: plan.song_frames,
        latency: 0,
        tail: 0,
        files: Vec::new(),
        warnings,
        seconds: 0.0,
        taps: Vec::new(),
        target: None,
        report: None,
        non_finite: Vec::new(),
        timings: Vec::new(),
    };
    Ok(RenderContext {
        session,
        opts,
        started,
        plan,
        spec,
        streams,
        stems,
        pre_limiter: None,
        sinks: Default::default(),
        meters: None,
        analyses: Vec::new(),
        result,
    })
}

/// What `cache` knows of the session's stems (nothing unless `report`: only the report uses
/// it).
fn look_up(
    session: &Session,
    spec: &GraphSpec,
    plan: &StemPlan,
    cache: &StemCache,
    report: bool,
) -> KnownStems {
    let contexts: Vec<String> = session
        .stems
        .iter()
        .map(|stem| stem_context(spec, plan, &stem.name, stem.channels))
        .collect();
    let cached = if report {
        session
            .stems
            .iter()
            .zip(&contexts)
            .map(|(stem, ctx)| cache.lookup(&stem.path, ctx))
            .collect()
    } else {
        vec![None; session.stems.len()]
    };
    KnownStems { contexts, cached }
}

/// What shapes a stem's signal in the graph besides its file, for the [`StemCache`] key: the
/// session rate, the song's length, the channel count and the stem fader's settings.
fn stem_context(spec: &GraphSpec, plan: &StemPlan, name: &str, channels: usize) -> String {
    let fader = spec
        .nodes
        .iter()
        .find(|n| n.id == name)
        .map(|n| format!("{:?}", n.kind))
        .unwrap_or_default();
    format!(
        "rate {} frames {} channels {channels} node {fader}",
        plan.sample_rate, plan.song_frames
    )
}

/// Reads the stems' headers to decide the session rate (the recipe's, else the most common stem
/// rate) and the song length (the longest stem at that rate).
pub fn plan_stems(session: &Session) -> Result<StemPlan, RenderError> {
    if session.stems.is_empty() {
        return Err(RenderError::Invalid(format!(
            "{}: the recipe declares no stems",
            session.recipe.display()
        )));
    }
    let mut infos = Vec::new();
    for stem in &session.stems {
        let decoder = Decoder::open(&stem.path).map_err(|source| RenderError::Stem {
            name: stem.name.clone(),
            origin: stem.origin.clone(),
            source,
        })?;
        infos.push(decoder.info().clone());
    }
    let sample_rate = session.sample_rate.unwrap_or_else(|| {
        let mut counts: Vec<(u32, usize)> = Vec::new();
        for i in &infos {
            match counts.iter_mut().find(|c| c.0 == i.sample_rate) {
                Some(c) => c.1 += 1,
                None => counts.push((i.sample_rate, 1)),
            }
        }
        // Most common; ties go to the first stem's rate.
        counts
            .iter()
            .max_by_key(|c| {
                (
                    c.1,
                    std::cmp::Reverse(infos.iter().position(|i| i.sample_rate == c.0)),
                )
            })
            .unwrap()
            .0
    });
    let song_frames = infos
        .iter()
        .map(|i| {
            let frames = i.frames.unwrap_or(0);
            if i.sample_rate == sample_rate {
                frames
            } else {
                (frames as f64 * f64::from(sample_rate) / f64::from(i.sample_rate)).round() as u64
            }
        })
        .max()
        .unwrap_or(0);
    Ok(StemPlan {
        sample_rate,
        song_frames,
    })
}

/// Opens every stem as a stream at the session rate, padded to the song length.
pub fn open_stems(
    session: &Session,
    plan: &StemPlan,
) -> Result<(Vec<StemStream>, Vec<String>), RenderError> {
    let mut streams = Vec::new();
    let mut warnings = Vec::new();
    for stem in &session.stems {
        let (stream, w) = StemStream::open(
            &stem.path,
            &StreamOptions {
                target_rate: plan.sample_rate,
                target_channels: stem.channels,
                length_frames: Some(plan.song_frames),
            },
        )
        .and_then(|(s, w)| Ok((s.with_offset(stem.offset_samples)?, w)))
        .map_err(|source| RenderError::Stem {
            name: stem.name.clone(),
            origin: stem.origin.clone(),
            source,
        })?;
        warnings.extend(w.iter().map(|w| w.to_string()));
        streams.push(stream);
    }
    Ok((streams, warnings))
}

/// The stems whose streams muted non-finite samples, with what they found (nothing when the
/// streams are not the session's stems).
pub(crate) fn stems_non_finite(
    session: &Session,
    streams: &[StemStream],
) -> Vec<(String, NonFinite)> {
    if streams.len() != session.stems.len() {
        return Vec::new();
    }
    session
        .stems
        .iter()
        .zip(streams)
        .filter(|(stem, s)| s.non_finite().any() && s.info().path == stem.path)
        .map(|(stem, s)| (stem.name.clone(), s.non_finite()))
        .collect()
}

/// One warning per stem with non-finite samples.
pub(crate) fn non_finite_warnings(found: &[(String, NonFinite)], rate: f64) -> Vec<String> {
    found
        .iter()
        .map(|(name, n)| {
            let at = n.first_frame.unwrap_or(0) as f64 / rate;
            format!(
                "stem `{name}`: {} non-finite sample{} (NaN or infinity), the first at {}:{:06.3} \
                 ({at:.3} s); muted",
                n.count,
                if n.count == 1 { "" } else { "s" },
                (at / 60.0).floor() as u64,
                at % 60.0
            )
        })
        .collect()
}
