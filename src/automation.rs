//! Automation curves: parameter values over song time, as data; and the curves of fades
//! ([`FadeShape`]).
//!
//! A recipe's curves (breakpoints with shapes, or a Lua function sampled at control rate when the
//! recipe loads) are compiled into a [`Curve`] of breakpoints at whole sample positions. The
//! engine evaluates it sample by sample on the audio thread, so a render is identical whatever the
//! block size; Lua never runs there.
//!
//! A curve is continuous except where a `Step` segment ends (or two breakpoints share a
//! position): there the value jumps, and the engine turns the jump into a short glide so it never
//! clicks ([`Curve::jump_at`] tells it where).

/// How the value moves from one breakpoint to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Holds the value until the next breakpoint, then jumps (glided by the engine).
    Step,
    /// Straight line in the parameter's unit.
    Linear,
    /// Straight line in decibels of the value (for linear-amplitude parameters).
    LinearDb,
    /// S-curve (smoothstep): eases out of one value and into the next.
    Smooth,
    /// Geometric: constant ratio per unit of time (frequencies, times).
    Exponential,
}

impl Shape {
    /// Parses a shape name as recipes write it.
    pub fn parse(name: &str) -> Option<Shape> {
        Some(match name {
            "step" => Shape::Step,
            "linear" => Shape::Linear,
            "linear_db" | "db" => Shape::LinearDb,
            "smooth" | "s" | "s_curve" => Shape::Smooth,
            "exp" | "exponential" => Shape::Exponential,
            _ => return None,
        })
    }
    /// Every shape name, for messages and documentation.
    pub const NAMES: &'static [&'static str] = &["step", "linear", "linear_db", "smooth", "exp"];
}

/// One breakpoint: the value at a sample position, and the shape of the segment that follows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Breakpoint {
    /// Song position in samples.
    pub pos: i64,
    /// The value there.
    pub value: f64,
    /// How the value moves to the next breakpoint.
    pub shape: Shape,
}

/// A parameter's value over time.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    points: Vec<Breakpoint>,
}

impl Curve {
    /// A curve through `points`, sorted by position (stable, so coincident points keep their
    /// order). Returns `None` for an empty list.
    pub fn new(mut points: Vec<Breakpoint>) -> Option<Curve> {
        if points.is_empty() {
            return None;
        }
        points.sort_by_key(|p| p.pos);
        Some(Curve { points })
    }

    /// The breakpoints.
    pub fn points(&self) -> &[Breakpoint] {
        &self.points
    }

    /// The value at song position `t` (samples).
    pub fn value_at(&self, t: i64) -> f64 {
        let pts = &self.points;
        // The last breakpoint at or before t.
        let i = pts.partition_point(|p| p.pos <= t);
        if i == 0 {
            return pts[0].value;
        }
        let a = &pts[i - 1];
        match pts.get(i) {
            None => a.value,
            Some(b) => interpolate(a, b, t),
        }
    }

    /// The value the curve approaches at `t` from the left (the value of the segment that
    /// contains `t − 1`, extended to `t`).
    fn left_limit(&self, t: i64) -> f64 {
        let pts = &self.points;
        let i = pts.partition_point(|p| p.pos < t);
        if i == 0 {
            return pts[0].value;
        }
        let a = &pts[i - 1];
        match pts.get(i) {
            None => a.value,
            Some(b) => match a.shape {
                Shape::Step => a.value,
                _ => b.value,
            },
        }
    }

    /// If the curve jumps at `t`, the values before and at the jump.
    pub fn jump_at(&self, t: i64) -> Option<(f64, f64)> {
        // Jumps only happen on breakpoint positions (after the first).
        let i = self.points.partition_point(|p| p.pos < t);
        if i == 0 || i >= self.points.len() || self.points[i].pos != t {
            return None;
        }
        let before = self.left_limit(t);
        let at = self.value_at(t);
        (before != at).then_some((before, at))
    }

    /// Whether the curve is constant from `t` on, with no jump at `t` itself.
    pub fn settled_after(&self, t: i64) -> bool {
        self.points.last().is_some_and(|p| p.pos < t)
    }

    /// Positions where the curve may jump, in order (for the engine's cursor).
    pub fn breakpoint_positions(&self) -> impl Iterator<Item = i64> + '_ {
        self.points.iter().map(|p| p.pos)
    }
}

/// The value between breakpoints `a` and `b` at `t` (a.pos <= t < b.pos).
fn interpolate(a: &Breakpoint, b: &Breakpoint, t: i64) -> f64 {
    let span = (b.pos - a.pos) as f64;
    if span <= 0.0 {
        return b.value;
    }
    if t == a.pos {
        // Exactly the breakpoint's value, whatever the shape's arithmetic.
        return a.value;
    }
    let x = (t - a.pos) as f64 / span;
    match a.shape {
        Shape::Step => a.value,
        Shape::Linear => a.value + (b.value - a.value) * x,
        Shape::Smooth => a.value + (b.value - a.value) * (x * x * (3.0 - 2.0 * x)),
        Shape::LinearDb => {
            if a.value > 0.0 && b.value > 0.0 {
                let (da, db) = (libm::log(a.value), libm::log(b.value));
                libm::exp(da + (db - da) * x)
            } else {
                a.value + (b.value - a.value) * x
            }
        }
        Shape::Exponential => {
            if a.value > 0.0 && b.value > 0.0 || a.value < 0.0 && b.value < 0.0 {
                a.value * libm::pow(b.value / a.value, x)
            } else {
                a.value + (b.value - a.value) * x
            }
        }
    }
}

/// The curve of a fade, from silence (x = 0) to full level (x = 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FadeShape {
    /// Straight line in amplitude.
    Linear,
    /// Quarter sine: equal power, the usual musical fade.
    Sine,
    /// Exponential: slow start, fast finish (sounds even in loudness).
    Exponential,
    /// S-curve (smoothstep).
    SCurve,
}

impl FadeShape {
    /// Parses a shape name.
    pub fn parse(name: &str) -> Option<FadeShape> {
        Some(match name {
            "linear" => FadeShape::Linear,
            "sine" | "equal_power" => FadeShape::Sine,
            "exp" | "exponential" | "log" => FadeShape::Exponential,
            "s" | "smooth" | "s_curve" => FadeShape::SCurve,
            _ => return None,
        })
    }

    /// The gain at position `x` in 0..=1.
    pub fn gain(self, x: f64) -> f64 {
        let x = x.clamp(0.0, 1.0);
        match self {
            FadeShape::Linear => x,
            FadeShape::Sine => libm::sin(x * std::f64::consts::FRAC_PI_2),
            FadeShape::Exponential => {
                const K: f64 = 4.0;
                (libm::exp(K * x) - 1.0) / (libm::exp(K) - 1.0)
            }
            FadeShape::SCurve => x * x * (3.0 - 2.0 * x),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bp(pos: i64, value: f64, shape: Shape) -> Breakpoint {
        Breakpoint { pos, value, shape }
    }

    #[test]
    fn linear_and_step() {
        let c = Curve::new(vec![
            bp(0, 0.0, Shape::Linear),
            bp(100, 1.0, Shape::Step),
            bp(200, 3.0, Shape::Linear),
        ])
        .unwrap();
        assert_eq!(c.value_at(-5), 0.0);
        assert_eq!(c.value_at(50), 0.5);
        assert_eq!(c.value_at(150), 1.0);
        assert_eq!(c.value_at(200), 3.0);
        assert_eq!(c.value_at(10_000), 3.0);
        assert_eq!(c.jump_at(100), None);
        assert_eq!(c.jump_at(200), Some((1.0, 3.0)));
    }

    #[test]
    fn coincident_points_jump() {
        let c = Curve::new(vec![
            bp(0, 0.0, Shape::Linear),
            bp(10, 1.0, Shape::Linear),
            bp(10, 5.0, Shape::Linear),
        ])
        .unwrap();
        assert_eq!(c.jump_at(10), Some((1.0, 5.0)));
        assert_eq!(c.value_at(10), 5.0);
    }

    #[test]
    fn shapes_end_on_their_targets() {
        for shape in [
            Shape::Linear,
            Shape::Smooth,
            Shape::LinearDb,
            Shape::Exponential,
        ] {
            let c = Curve::new(vec![bp(0, 100.0, shape), bp(1000, 1000.0, shape)]).unwrap();
            assert!((c.value_at(999) - 1000.0).abs() < 10.0, "{shape:?}");
            assert_eq!(c.value_at(0), 100.0);
        }
        let c = Curve::new(vec![
            bp(0, 100.0, Shape::Exponential),
            bp(1000, 10000.0, Shape::Linear),
        ])
        .unwrap();
        assert!((c.value_at(500) - 1000.0).abs() < 1e-9);
    }
}
