//! A small bounded Levenberg–Marquardt least-squares solver (dense, forward-difference
//! Jacobian), for the fits of the matching: a few dozen parameters, a few hundred residuals.

/// A least-squares problem: residuals of a parameter vector, and box bounds.
pub trait Problem {
    /// Writes the residuals of `x` into `r` (always the same length).
    fn residuals(&self, x: &[f64], r: &mut Vec<f64>);
    /// Lower and upper bound of parameter `i`.
    fn bounds(&self, i: usize) -> (f64, f64);
}

/// Minimises `Σ r²` from `x` (in place), projecting every step into the bounds. Returns the
/// final sum of squares.
pub fn solve(p: &dyn Problem, x: &mut [f64], iterations: usize) -> f64 {
    let n = x.len();
    for (i, v) in x.iter_mut().enumerate() {
        let (lo, hi) = p.bounds(i);
        *v = v.clamp(lo, hi);
    }
    let mut r = Vec::new();
    p.residuals(x, &mut r);
    let mut cost = sum_sq(&r);
    let mut lambda = 1e-3;
    let mut rt = Vec::new();
    let mut trial = x.to_vec();
    for _ in 0..iterations {
        let jac = jacobian(p, x, &r);
        // Normal equations: (JᵀJ + λ·diag(JᵀJ)) δ = −Jᵀr.
        let mut jtj = vec![vec![0.0; n]; n];
        let mut jtr = vec![0.0; n];
        for a in 0..n {
            for b in a..n {
                let s: f64 = jac[a].iter().zip(&jac[b]).map(|(u, v)| u * v).sum();
                jtj[a][b] = s;
                jtj[b][a] = s;
            }
            jtr[a] = jac[a].iter().zip(&r).map(|(u, v)| u * v).sum();
        }
        let mut improved = false;
        for _ in 0..12 {
            let mut m = jtj.clone();
            for (a, row) in m.iter_mut().enumerate() {
                row[a] += lambda * (jtj[a][a] + 1e-9);
            }
            let Some(delta) = solve_linear(m, jtr.iter().map(|v| -v).collect()) else {
                lambda *= 10.0;
                continue;
            };
            for i in 0..n {
                let (lo, hi) = p.bounds(i);
                trial[i] = (x[i] + delta[i]).clamp(lo, hi);
            }
            p.residuals(&trial, &mut rt);
            let c = sum_sq(&rt);
            if c < cost {
                let gain = cost - c;
                x.copy_from_slice(&trial);
                std::mem::swap(&mut r, &mut rt);
                cost = c;
                lambda = (lambda / 3.0).max(1e-9);
                improved = gain > 1e-12 * cost.max(1e-30);
                break;
            }
            lambda *= 4.0;
        }
        if !improved {
            break;
        }
    }
    cost
}

fn sum_sq(r: &[f64]) -> f64 {
    r.iter().map(|v| v * v).sum()
}

/// `jac[i][k] = ∂r_k/∂x_i` by forward differences (backwards at an upper bound).
fn jacobian(p: &dyn Problem, x: &[f64], r: &[f64]) -> Vec<Vec<f64>> {
    let mut xs = x.to_vec();
    let mut rs = Vec::new();
    (0..x.len())
        .map(|i| {
            let (_, hi) = p.bounds(i);
            let h = 1e-5 * x[i].abs().max(1.0);
            let h = if x[i] + h > hi { -h } else { h };
            xs[i] = x[i] + h;
            p.residuals(&xs, &mut rs);
            xs[i] = x[i];
            rs.iter().zip(r).map(|(a, b)| (a - b) / h).collect()
        })
        .collect()
}

/// Solves `m · x = v` by Gaussian elimination with partial pivoting; `None` when singular.
pub fn solve_linear(mut m: Vec<Vec<f64>>, mut v: Vec<f64>) -> Option<Vec<f64>> {
    let n = v.len();
    for c in 0..n {
        let p = (c..n).max_by(|&a, &b| m[a][c].abs().total_cmp(&m[b][c].abs()))?;
        if m[p][c].abs() < 1e-300 {
            return None;
        }
        m.swap(c, p);
        v.swap(c, p);
        for row in c + 1..n {
            let f = m[row][c] / m[c][c];
            if f != 0.0 {
                let (above, below) = m.split_at_mut(row);
                for (x, p) in below[0][c..n].iter_mut().zip(&above[c][c..n]) {
                    *x -= f * p;
                }
                v[row] -= f * v[c];
            }
        }
    }
    let mut x = vec![0.0; n];
    for c in (0..n).rev() {
        let s: f64 = (c + 1..n).map(|k| m[c][k] * x[k]).sum();
        x[c] = (v[c] - s) / m[c][c];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fits y = a·exp(b·t) with b bounded.
    struct Exp {
        t: Vec<f64>,
        y: Vec<f64>,
    }
    impl Problem for Exp {
        fn residuals(&self, x: &[f64], r: &mut Vec<f64>) {
            r.clear();
            r.extend(
                self.t
                    .iter()
                    .zip(&self.y)
                    .map(|(t, y)| x[0] * (x[1] * t).exp() - y),
            );
        }
        fn bounds(&self, i: usize) -> (f64, f64) {
            [(-10.0, 10.0), (-1.0, 0.3)][i]
        }
    }

    #[test]
    fn recovers_a_curve_and_respects_bounds() {
        let t: Vec<f64> = (0..20).map(|i| i as f64 * 0.1).collect();
        let y = t.iter().map(|t| 2.0 * (0.7 * t).exp()).collect();
        let p = Exp { t, y };
        let mut x = [1.0, 0.0];
        solve(&p, &mut x, 100);
        assert!((x[1] - 0.3).abs() < 1e-12, "{x:?}");
        let y = p.t.iter().map(|t| 2.0 * (-0.5 * t).exp()).collect();
        let p = Exp { t: p.t, y };
        let mut x = [1.0, 0.0];
        let cost = solve(&p, &mut x, 100);
        assert!(
            (x[0] - 2.0).abs() < 1e-6 && (x[1] + 0.5).abs() < 1e-6 && cost < 1e-12,
            "{x:?}"
        );
    }
}
