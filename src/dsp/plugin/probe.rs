//! The impulse probe (control side, at load): a throw-away instance of the plugin, set up like
//! the node, is fed an impulse; the peak of its response is the measured latency, the last
//! sample above −100 dBFS (relative to an impulse of 0.5) the end of its tail. The reported
//! latency is read from the plugin's latency port after the first block.

use super::host::{Hosted, InputRole};

/// What the probe found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Probe {
    /// What the plugin reports, in samples.
    pub reported: usize,
    /// Where the response peaks, in samples (`None`: no response, e.g. a gate or a muted plugin).
    pub measured: Option<usize>,
    /// How long the response rings after its peak, in samples.
    pub tail: usize,
}

/// Amplitude of the probe's impulse (well under any sane limiter threshold).
const IMPULSE: f32 = 0.5;
/// A response below this is silence.
const FLOOR: f32 = 1e-5 * IMPULSE;

/// How many samples two latencies may differ before the report warns.
pub const TOLERANCE: usize = 2;

/// Runs an impulse through `host` for `seconds` of audio (plus the reported latency) in blocks
/// of `block` frames; `inputs` describes its audio inputs (the impulse goes into every main
/// input, the key inputs stay silent), `outputs` is its audio output count.
pub fn run(
    host: &mut dyn Hosted,
    inputs: &[InputRole],
    outputs: usize,
    sample_rate: f64,
    block: usize,
) -> Result<Probe, String> {
    let block = block.max(1);
    let mut ins = vec![vec![0.0f32; block]; inputs.len()];
    let mut outs = vec![vec![0.0f32; block]; outputs];
    warm_up(host, sample_rate, block, &mut ins, &mut outs)?;
    // The first block: the impulse, and the latency the plugin reports once it has run.
    for (buf, role) in ins.iter_mut().zip(inputs) {
        if matches!(role, InputRole::Main(_)) {
            buf[0] = IMPULSE;
        }
    }
    let mut peak = (0.0f32, None);
    let mut last = None;
    let mut t = 0;
    let mut total = (sample_rate.max(1.0) as usize) / 2;
    let mut reported = 0;
    while t < total {
        if !host.run(block, &mut ins, &mut outs) {
            return Err("the plugin refused to process the probe's impulse".into());
        }
        if t == 0 {
            let r = host.reported_latency();
            reported = if r.is_finite() && r > 0.0 {
                r.round() as usize
            } else {
                0
            };
            total += reported;
            ins.iter_mut().for_each(|b| b[0] = 0.0);
        }
        for out in &outs {
            for (n, &y) in out.iter().enumerate() {
                let a = y.abs();
                if !a.is_finite() {
                    return Err(
                        "the plugin answered the probe's impulse with NaN or infinity".into(),
                    );
                }
                if a > peak.0 {
                    peak = (a, Some(t + n));
                }
                if a > FLOOR {
                    last = Some(t + n);
                }
            }
        }
        t += block;
    }
    let measured = if peak.0 > FLOOR { peak.1 } else { None };
    Ok(Probe {
        reported,
        measured,
        tail: match (measured, last) {
            (Some(p), Some(l)) => l.saturating_sub(p),
            _ => 0,
        },
    })
}

/// Seconds of silence a fresh instance runs before it is used: some plugins set up their delay
/// lines and report their latency only from their second run, and many smooth their controls
/// from a starting value, which has settled by then.
pub const WARM_UP_SECONDS: f64 = 0.5;

/// Runs [`WARM_UP_SECONDS`] of silence (at least two blocks of `frames` frames) through `host`
/// (control side, after activation); `ins` and `outs` are its buffers, at least `frames` long.
pub fn warm_up(
    host: &mut dyn Hosted,
    sample_rate: f64,
    frames: usize,
    ins: &mut [Vec<f32>],
    outs: &mut [Vec<f32>],
) -> Result<(), String> {
    ins.iter_mut().for_each(|b| b.fill(0.0));
    let blocks = ((WARM_UP_SECONDS * sample_rate) as usize)
        .div_ceil(frames.max(1))
        .max(2);
    for _ in 0..blocks {
        if !host.run(frames, ins, outs) {
            return Err("the plugin refused to process a block of silence".into());
        }
    }
    Ok(())
}

impl Probe {
    /// The warning the report gives when the measured latency is not the reported one.
    pub fn mismatch(&self) -> Option<String> {
        let m = self.measured?;
        (m.abs_diff(self.reported) > TOLERANCE).then(|| {
            format!(
                "the plugin reports a latency of {} samples but its impulse response peaks at {m}: \
                 the graph compensates {} (parallel paths may be misaligned by {} samples)",
                self.reported,
                self.reported,
                m.abs_diff(self.reported)
            )
        })
    }
}
