//! Parameter state on the audio side: targets, automation and glides.
//!
//! Each parameter of each node has a [`ParamState`]. Once per block the engine asks it to fill a
//! [`ParamSlot`] for the processor: constant when nothing moves (the common case), otherwise one
//! value per sample. Continuous automation is followed exactly; a jump (a new value from a hot
//! reload or `set`, a `Step` segment of a curve) becomes a linear glide of the parameter's glide
//! time, computed in the parameter's glide domain (decibels as they are, frequencies in their
//! logarithm). Both kinds of jump go through the same arithmetic, so a reload that changes a value
//! at sample N is bit-identical to a render with that change automated as a step at N.
//!
//! # Realtime safety
//! [`ParamState::fill`] and [`ParamState::set_target`] never allocate.

use crate::automation::Curve;
use crate::dsp::param::{ParamSlot, Scale};

/// One parameter's value source and glide.
#[derive(Debug, Clone)]
pub struct ParamState {
    scale: Scale,
    glide_samples: u32,
    base: f64,
    curve: Option<Curve>,
    offset: f64,
    step: f64,
    remaining: u32,
}

impl ParamState {
    /// A parameter resting at `value`.
    pub fn new(value: f64, scale: Scale, glide_samples: u32) -> Self {
        Self {
            scale,
            glide_samples,
            base: value,
            curve: None,
            offset: 0.0,
            step: 0.0,
            remaining: 0,
        }
    }

    /// Follows `curve` from now on (its value replaces the static one).
    pub fn set_curve(&mut self, curve: Option<Curve>) {
        self.curve = curve;
    }

    /// The automation curve, if any.
    pub fn curve(&self) -> Option<&Curve> {
        self.curve.as_ref()
    }

    /// The static value (used when there is no curve).
    pub fn base(&self) -> f64 {
        self.base
    }

    /// Whether a glide is under way.
    pub fn is_gliding(&self) -> bool {
        self.remaining > 0
    }

    fn to_domain(&self, v: f64) -> f64 {
        match self.scale {
            Scale::Linear => v,
            Scale::Log => libm::log(v),
        }
    }

    fn from_domain(&self, d: f64) -> f64 {
        match self.scale {
            Scale::Linear => d,
            Scale::Log => libm::exp(d),
        }
    }

    /// Starts a glide that hides a jump of the target from `before` to `after`.
    fn jump(&mut self, before: f64, after: f64) {
        if self.glide_samples == 0 {
            return;
        }
        self.offset += self.to_domain(before) - self.to_domain(after);
        self.step = self.offset / f64::from(self.glide_samples);
        self.remaining = self.glide_samples;
    }

    /// Moves the static value to `value`, gliding from the current value. Real-time safe.
    pub fn set_target(&mut self, value: f64) {
        if value != self.base {
            let before = self.base;
            self.base = value;
            if self.curve.is_none() {
                self.jump(before, value);
            }
        }
    }

    /// Continues from the same parameter of the schedule that played until now (hot reload):
    /// the old value and any unfinished glide carry over, and a changed static value glides to
    /// its new value exactly as an automated step at this sample would. Real-time safe.
    pub fn continue_from(&mut self, old: &ParamState) {
        self.offset = old.offset;
        self.step = old.step;
        self.remaining = old.remaining;
        if self.curve.is_none() && old.curve.is_none() {
            let target = self.base;
            self.base = old.base;
            self.set_target(target);
        }
    }

    /// The value at song position `t` without advancing anything (control side).
    pub fn value_at(&self, t: i64) -> f64 {
        match &self.curve {
            Some(c) => c.value_at(t),
            None => self.base,
        }
    }

    /// Fills `slot` with the values of the `frames` samples starting at song position `t0`.
    pub fn fill(&mut self, slot: &mut ParamSlot, t0: i64, frames: usize) {
        let settled = match &self.curve {
            None => true,
            Some(c) => c.settled_after(t0),
        };
        if settled && self.remaining == 0 {
            slot.constant = true;
            slot.value = self.value_at(t0);
            return;
        }
        slot.constant = false;
        // Moved out for the loop (no allocation: it is an Option of a Vec) and put back after.
        let curve = self.curve.take();
        for n in 0..frames {
            let t = t0 + n as i64;
            let target = match &curve {
                None => self.base,
                Some(c) => {
                    if let Some((before, after)) = c.jump_at(t) {
                        self.jump(before, after);
                    }
                    c.value_at(t)
                }
            };
            let value = if self.remaining > 0 {
                self.offset -= self.step;
                self.remaining -= 1;
                if self.remaining == 0 {
                    self.offset = 0.0;
                    target
                } else {
                    self.from_domain(self.to_domain(target) + self.offset)
                }
            } else {
                target
            };
            slot.values[n] = value;
        }
        self.curve = curve;
        slot.value = slot.values[frames.saturating_sub(1)];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::automation::{Breakpoint, Shape};

    #[test]
    fn constant_without_automation() {
        let mut p = ParamState::new(3.0, Scale::Linear, 10);
        let mut slot = ParamSlot::new(0.0, 64);
        p.fill(&mut slot, 0, 64);
        assert!(slot.constant);
        assert_eq!(slot.value, 3.0);
    }

    #[test]
    fn set_target_glides_linearly() {
        let mut p = ParamState::new(0.0, Scale::Linear, 4);
        let mut slot = ParamSlot::new(0.0, 8);
        p.set_target(4.0);
        p.fill(&mut slot, 0, 8);
        assert_eq!(&slot.values[..6], &[1.0, 2.0, 3.0, 4.0, 4.0, 4.0]);
        p.fill(&mut slot, 8, 8);
        assert!(slot.constant);
    }

    #[test]
    fn step_automation_equals_set_target() {
        let curve = Curve::new(vec![
            Breakpoint {
                pos: 0,
                value: 0.0,
                shape: Shape::Step,
            },
            Breakpoint {
                pos: 5,
                value: 6.0,
                shape: Shape::Step,
            },
        ]);
        let mut a = ParamState::new(0.0, Scale::Linear, 7);
        a.set_curve(curve);
        let mut b = ParamState::new(0.0, Scale::Linear, 7);
        let mut sa = ParamSlot::new(0.0, 32);
        let mut sb = ParamSlot::new(0.0, 32);
        a.fill(&mut sa, 0, 5);
        b.fill(&mut sb, 0, 5);
        b.set_target(6.0);
        a.fill(&mut sa, 5, 20);
        b.fill(&mut sb, 5, 20);
        assert_eq!(&sa.values[..20], &sb.values[..20]);
    }

    #[test]
    fn log_scale_glides_in_octaves() {
        let mut p = ParamState::new(100.0, Scale::Log, 2);
        let mut slot = ParamSlot::new(0.0, 4);
        p.set_target(400.0);
        p.fill(&mut slot, 0, 4);
        assert!((slot.values[0] - 200.0).abs() < 1e-9);
        assert_eq!(slot.values[1], 400.0);
    }
}
