//! Pan and balance.
//!
//! On a mono input, `pan` places the signal in a stereo field with a constant-power (−3 dB centre)
//! law and the output is stereo. On a stereo input it is a balance control: the far side is
//! turned down, the near side stays at unity, and the centre is bit-transparent.

use super::kind::KindInfo;
use super::{AudioMut, AudioRef, ParamBlock, ParamInfo, ProcessSpec, Processor, Unit};

/// The registry entry.
pub const KIND: KindInfo = KindInfo {
    name: "pan",
    doc: "Mono input: constant-power pan (−3 dB centre) to stereo. Stereo input: balance \
          (the far side attenuated, centre transparent).",
    build: |cx| match cx.input_channels {
        1 | 2 => Ok(Box::new(Pan::new(cx.input_channels))),
        n => Err(format!(
            "pan takes a mono or stereo input, not {n} channels"
        )),
    },
    example: super::config::ProcessorConfig::new,
};

/// A pan (mono in) or balance (stereo in) control.
pub struct Pan {
    params: Vec<ParamInfo>,
    input_channels: usize,
}

impl Pan {
    /// A pan for a mono or stereo input.
    pub fn new(input_channels: usize) -> Self {
        Self {
            params: vec![ParamInfo::new("pan", Unit::Plain, -1.0, 1.0, 0.0)
                .doc("position: −1 left, 0 centre, +1 right")],
            input_channels,
        }
    }
}

/// Constant-power gains (left, right) for a mono source at `pan`.
#[inline]
fn pan_law(pan: f64) -> (f64, f64) {
    let theta = (pan + 1.0) * std::f64::consts::FRAC_PI_4;
    (libm::cos(theta), libm::sin(theta))
}

/// Balance gains (left, right) for a stereo source at `pan`.
#[inline]
fn balance_law(pan: f64) -> (f64, f64) {
    ((1.0 - pan).min(1.0), (1.0 + pan).min(1.0))
}

impl Processor for Pan {
    fn kind(&self) -> &'static str {
        "pan"
    }
    fn params(&self) -> &[ParamInfo] {
        &self.params
    }
    fn output_channels(&self) -> usize {
        2
    }
    fn prepare(&mut self, _spec: &ProcessSpec) {}
    fn reset(&mut self) {}
    fn process(
        &mut self,
        audio: &mut AudioMut<'_>,
        _key: Option<AudioRef<'_>>,
        params: ParamBlock<'_>,
    ) {
        let pan = params.get(0);
        let mono = self.input_channels == 1;
        let law = if mono { pan_law } else { balance_law };
        let (l, r) = audio.stereo_mut();
        if mono {
            r.copy_from_slice(l);
        }
        if pan.is_constant() {
            let (gl, gr) = law(pan.first());
            if gl != 1.0 {
                l.iter_mut().for_each(|x| *x *= gl);
            }
            if gr != 1.0 {
                r.iter_mut().for_each(|x| *x *= gr);
            }
        } else {
            for n in 0..l.len() {
                let (gl, gr) = law(pan.at(n));
                l[n] *= gl;
                r[n] *= gr;
            }
        }
    }
    crate::no_signal_state!();
}
