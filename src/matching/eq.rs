//! The EQ a match proposes, as stemgraph's own bands: a tilt, a low and a high shelf and up to
//! a few bells on the whole signal (mode "stereo"), and a tilt and two shelves on the side only
//! (mode "side"), so mid and side get their own curves. Responses come from
//! [`Band::response_db`]: the very sections the `eq` processor runs.

use crate::dsp::eq::band::{Band, BandSpec, BandType, Mode};
use crate::dsp::{ConfigValue, ProcessorConfig};

/// One proposed band.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct EqBand {
    /// Response type (tilt, low_shelf, high_shelf or bell).
    #[serde(serialize_with = "kind_name")]
    pub kind: BandType,
    /// Corner or centre frequency, Hz.
    pub freq_hz: f64,
    /// Gain, dB.
    pub gain_db: f64,
    /// Quality factor (not used by the tilt).
    pub q: f64,
    /// Stereo (both channels alike) or side only.
    #[serde(serialize_with = "mode_name")]
    pub mode: Mode,
}

fn kind_name<S: serde::Serializer>(k: &BandType, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(k.name())
}

fn mode_name<S: serde::Serializer>(m: &Mode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(match m {
        Mode::Stereo => "stereo",
        Mode::Mid => "mid",
        Mode::Side => "side",
    })
}

/// Quality factor of the proposed shelves (no overshoot).
pub const SHELF_Q: f64 = std::f64::consts::FRAC_1_SQRT_2;
/// Centre of the proposed tilts, Hz.
pub const TILT_HZ: f64 = 1000.0;

impl EqBand {
    /// A band at 0 dB.
    pub fn new(kind: BandType, freq_hz: f64, q: f64, mode: Mode) -> EqBand {
        EqBand {
            kind,
            freq_hz,
            gain_db: 0.0,
            q,
            mode,
        }
    }

    /// Response in dB at `f` (Hz) for `rate`.
    pub fn response_db(&self, f: f64, rate: f64) -> f64 {
        if self.gain_db == 0.0 {
            return 0.0;
        }
        let spec = BandSpec {
            kind: self.kind,
            slope_db: 12,
            mode: self.mode,
        };
        Band::response_db(spec, (self.freq_hz, self.gain_db, self.q), f, rate)
    }

    /// The band as an `eq` band table.
    pub fn config(&self) -> ConfigValue {
        let mut c = ProcessorConfig::new()
            .text("type", self.kind.name())
            .num("freq_hz", round(self.freq_hz, 0))
            .num("gain_db", round(self.gain_db, 2));
        if self.kind != BandType::Tilt {
            c = c.num("q", round(self.q, 3));
        }
        if self.mode == Mode::Side {
            c = c.text("mode", "side");
        }
        ConfigValue::Table(c)
    }
}

/// `x` rounded to `digits` decimals (what the override file writes, so the file and the
/// applied proposal are the same EQ).
pub fn round(x: f64, digits: i32) -> f64 {
    let p = 10f64.powi(digits);
    (x * p).round() / p
}

/// The summed response of `bands` in dB at `f` for the signal `side` (false: mid). Side-only
/// bands do not touch the mid.
pub fn response_db(bands: &[EqBand], f: f64, rate: f64, side: bool) -> f64 {
    bands
        .iter()
        .filter(|b| side || b.mode != Mode::Side)
        .map(|b| b.response_db(f, rate))
        .sum()
}

/// The `eq` processor's configuration for `bands`, every one in order (a band at 0 dB for the
/// song is there for its per-section automation, `<node>.<n>.gain_db`, n counted from 1).
pub fn processor_config(bands: &[EqBand]) -> ProcessorConfig {
    ProcessorConfig::new().with(
        "bands",
        ConfigValue::List(bands.iter().map(EqBand::config).collect()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_holds_every_band_in_order_those_at_0_db_too() {
        let b = |kind, gain_db| EqBand {
            kind,
            freq_hz: 1000.0,
            gain_db,
            q: SHELF_Q,
            mode: Mode::Stereo,
        };
        let bands = [
            b(BandType::Tilt, 1.0),
            b(BandType::LowShelf, 0.0),
            b(BandType::Bell, -2.0),
        ];
        let mut config = processor_config(&bands);
        let list = config.take_list("bands").unwrap();
        // Band 3 (`<node>.3.gain_db`, automated per section) is the bell.
        assert_eq!(list.len(), 3);
        let ConfigValue::Table(mut third) = list[2].clone() else {
            panic!("{list:?}")
        };
        assert_eq!(third.take_number("gain_db", 0.0), Ok(-2.0));
    }
}
