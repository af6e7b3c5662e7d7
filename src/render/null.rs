//! The null test a render runs when the recipe names a reference mix: the stems as their files
//! are (at unity, without the recipe's faders or processing) summed against the reference, so
//! the report says whether the stems delivered are the song the reference is.
//!
//! It streams the stems and the reference once more at the session rate (decoding is cheap next
//! to the graph, and the files are in the operating system's cache from the render). The
//! thorough diagnosis (offsets, polarity, levels, missing elements) is `stemgraph check`'s.

use super::{RenderError, StemPlan};
use crate::analysis::check::{NullTest, Severity};
use crate::io::decode::{StemStream, StreamOptions};
use crate::session::Session;

/// Residual RMS at or under which the test passes, dBFS (as `check`).
pub const PASS_DBFS: f64 = -90.0;
/// Residual RMS at or under which it warns (above: fails), dBFS.
pub const WARN_DBFS: f64 = -60.0;

/// The null test of `session`'s stems against its reference, or `None` without a reference.
pub fn null_test(session: &Session, plan: &StemPlan) -> Result<Option<NullTest>, RenderError> {
    let Some(reference) = &session.reference else {
        return Ok(None);
    };
    let opts = StreamOptions {
        target_rate: plan.sample_rate,
        target_channels: 2,
        length_frames: Some(plan.song_frames),
    };
    let mut stems = Vec::new();
    for s in &session.stems {
        stems.push(StemStream::open(&s.path, &opts)?.0);
    }
    let mut mix = StemStream::open(reference, &opts)?.0;
    const BLOCK: usize = 4096;
    let mut buf = [vec![0.0; BLOCK], vec![0.0; BLOCK]];
    let mut sum = [vec![0.0; BLOCK], vec![0.0; BLOCK]];
    let (mut rr, mut peak, mut sm, mut ss) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    // Per 100 ms: the reference's peak and the residual's energy.
    let hop = (plan.sample_rate / 10).max(1) as usize;
    let mut envelope: Vec<(f64, f64)> = Vec::new();
    let (mut env_peak, mut env_res, mut env_n) = (0.0f64, 0.0f64, 0usize);
    let mut done = 0u64;
    while done < plan.song_frames {
        let n = BLOCK.min((plan.song_frames - done) as usize);
        for s in &mut sum {
            s[..n].fill(0.0);
        }
        for stream in &mut stems {
            let [l, r] = &mut buf;
            stream.read_block(&mut [&mut l[..], &mut r[..]], n)?;
            for (acc, b) in sum.iter_mut().zip(&buf) {
                for (a, x) in acc[..n].iter_mut().zip(&b[..n]) {
                    *a += x;
                }
            }
        }
        let [l, r] = &mut buf;
        mix.read_block(&mut [&mut l[..], &mut r[..]], n)?;
        for k in 0..n {
            for c in 0..2 {
                let (m, s) = (buf[c][k], sum[c][k]);
                let res = m - s;
                rr += res * res;
                peak = peak.max(res.abs());
                sm += s * m;
                ss += s * s;
                env_peak = env_peak.max(m.abs());
                env_res += res * res;
            }
            env_n += 1;
            if env_n == hop {
                envelope.push((env_peak, env_res));
                (env_peak, env_res, env_n) = (0.0, 0.0, 0);
            }
        }
        done += n as u64;
    }
    let db = |x: f64| 20.0 * libm::log10(x);
    let residual_rms_dbfs =
        10.0 * libm::log10((rr / (2 * plan.song_frames.max(1)) as f64).max(1e-30));
    envelope.sort_by(|a, b| b.0.total_cmp(&a.0));
    let top = (envelope.len() / 10).max(1);
    let res_total: f64 = envelope.iter().map(|e| e.1).sum();
    Ok(Some(NullTest {
        residual_rms_dbfs,
        residual_peak_dbfs: db(peak.max(1e-15)),
        after_fix_rms_dbfs: None,
        reference_gain_db: if ss > 0.0 && sm > 0.0 {
            db(sm / ss)
        } else {
            0.0
        },
        residual_band_hz: None,
        residual_in_peaks: if res_total > 0.0 {
            envelope.iter().take(top).map(|e| e.1).sum::<f64>() / res_total
        } else {
            0.0
        },
        severity: if residual_rms_dbfs <= PASS_DBFS {
            Severity::Pass
        } else if residual_rms_dbfs <= WARN_DBFS {
            Severity::Warn
        } else {
            Severity::Fail
        },
    }))
}
