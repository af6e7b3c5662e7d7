//! The report stage of a render: the null test against the reference mix (when the recipe
//! names one), the report built from what the render measured and wrote, written beside the
//! deliverables, and what was learnt about the stems remembered in the
//! stem cache.

use super::{build_report, write_report, CachedStem, ReportInputs};
use crate::render::deliver::protected_inputs;
use crate::render::null;
use crate::render::{RenderContext, RenderError};

/// Stamps the render's wall time; then, when a report was asked for, runs the null test, builds
/// and writes the report and updates the stem cache.
pub(in crate::render) fn finish(ctx: &mut RenderContext<'_>) -> Result<(), RenderError> {
    ctx.result.seconds = ctx.started.elapsed().as_secs_f64();
    let Some(meters) = ctx.meters.take() else {
        return Ok(());
    };
    let null_test = null::null_test(ctx.session, &ctx.plan)?;
    if let Some(nt) = null_test
        .as_ref()
        .filter(|nt| nt.residual_rms_dbfs > null::PASS_DBFS)
    {
        ctx.result.warnings.push(format!(
            "null test: the stems summed at unity differ from the reference mix by {:.1} dBFS RMS \
             (run `stemgraph check` for where)",
            nt.residual_rms_dbfs
        ));
    }
    let (session, result) = (ctx.session, &ctx.result);
    let cached = &ctx.stems.cached;
    let report = build_report(ReportInputs {
        session,
        sample_rate: ctx.plan.sample_rate,
        song_frames: ctx.plan.song_frames,
        latency: result.latency,
        tail: result.tail,
        files: &result.files,
        analyses: std::mem::take(&mut ctx.analyses),
        out_dir: &ctx.opts.out_dir,
        meters,
        null_test,
        loudness_target: result.target.clone(),
        warnings: &result.warnings,
        render_seconds: result.seconds,
        stem_hashes: cached
            .iter()
            .map(|c| c.as_ref().map(|c| (c.sha256.clone(), c.bytes)))
            .collect(),
    })?;
    let mut report = report;
    if let Some(second) = &ctx.opts.second {
        let first: Vec<(String, String)> = result
            .files
            .iter()
            .zip(&report.deliverables)
            .map(|(f, d)| {
                let name = f
                    .wav
                    .path
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
                (name, d.file.sha256.clone())
            })
            .collect();
        let d = crate::render::twice::compare(&first, second);
        if !d.identical {
            report.warnings.push(format!(
                "two renders of this recipe differ ({}): something in the graph (a plugin?) is not deterministic",
                d.differing.join(", ")
            ));
        }
        report.determinism = Some(d);
    }
    write_report(&ctx.opts.out_dir, &report, &protected_inputs(session))?;
    // Remember what was learnt about stems the cache did not know (or knew unmetered).
    for ((stem, key), (was, rep)) in session
        .stems
        .iter()
        .zip(&ctx.stems.contexts)
        .zip(cached.iter().zip(&report.stems))
    {
        let now = CachedStem {
            sha256: rep.file.sha256.clone(),
            bytes: rep.file.bytes,
            meters: rep.meters.clone(),
        };
        if was.as_ref() != Some(&now) {
            ctx.opts.stem_cache.store(&stem.path, key, &now);
        }
    }
    ctx.result.report = Some(report);
    Ok(())
}
