//! Dynamics and width: the references' integrated loudness, PLR (true peak to loudness), LRA
//! and side-to-mid ratio against the master's, turned into the loudness target (the render
//! solves the limiter's drive for it) and the width node's setting.

use super::measure::Measured;
use super::proposal::{LoudnessChange, WidthChange};
use crate::graph::{GraphSpec, NodeKind};
use crate::session::Session;

/// The figures compared (references: weighted means).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Dynamics {
    /// Integrated loudness, LUFS.
    pub reference_lufs: f64,
    /// The master's.
    pub master_lufs: f64,
    /// True peak minus integrated loudness, dB.
    pub reference_plr_db: f64,
    /// The master's.
    pub master_plr_db: f64,
    /// Loudness range, LU.
    pub reference_lra_lu: f64,
    /// The master's.
    pub master_lra_lu: f64,
    /// Side-to-mid power ratio over the loudest sections, dB.
    pub reference_side_to_mid_db: f64,
    /// The master's.
    pub master_side_to_mid_db: f64,
}

/// Compares the master with the weighted references.
pub fn compare(refs: &[(f64, &Measured)], master: &Measured) -> Dynamics {
    let mean = |f: &dyn Fn(&Measured) -> f64| refs.iter().map(|(w, m)| w * f(m)).sum::<f64>();
    Dynamics {
        reference_lufs: mean(&|m| m.scan.integrated_lufs),
        master_lufs: master.scan.integrated_lufs,
        reference_plr_db: mean(&|m| m.scan.plr_db()),
        master_plr_db: master.scan.plr_db(),
        reference_lra_lu: mean(&|m| m.scan.lra_lu),
        master_lra_lu: master.scan.lra_lu,
        reference_side_to_mid_db: mean(&|m| m.side_to_mid_db()),
        master_side_to_mid_db: master.side_to_mid_db(),
    }
}

/// The first processor of `kind` after `from` (breadth first along the signal).
pub fn find_after(graph: &GraphSpec, from: &str, kind: &str) -> Option<String> {
    let mut queue = std::collections::VecDeque::from([from.to_string()]);
    let mut seen = std::collections::BTreeSet::new();
    while let Some(n) = queue.pop_front() {
        if let Some(NodeKind::Processor { kind: k, .. }) = graph.find(&n).map(|x| &x.kind) {
            if k == kind {
                return Some(n);
            }
        }
        for e in graph.edges.iter().filter(|e| e.from == n) {
            if seen.insert(e.to.clone()) {
                queue.push_back(e.to.clone());
            }
        }
    }
    None
}

/// The loudness target to propose: the references' loudness (times `amount`), when the master
/// chain has a limiter to reach it with. `None` and a note otherwise.
pub fn loudness(
    session: &Session,
    mix_bus: &str,
    d: &Dynamics,
    amount: f64,
) -> Result<LoudnessChange, String> {
    let Some(limiter) = find_after(&session.graph, mix_bus, "limiter") else {
        return Err(format!(
            "the reference is {:.1} LUFS and the master {:.1} LUFS, but the master chain has no \
             limiter to drive: add one and a `target_lufs` to match the loudness",
            d.reference_lufs, d.master_lufs
        ));
    };
    let from = session.target_lufs.unwrap_or(d.master_lufs);
    let to = super::eq::round(from + amount * (d.reference_lufs - from), 2);
    if session.target_lufs.is_some() && (to - from).abs() < 0.05 {
        return Err(format!(
            "the loudness already matches: reference {:.1} LUFS, target {from} LUFS",
            d.reference_lufs
        ));
    }
    let harder = d.master_plr_db - d.reference_plr_db;
    Ok(LoudnessChange {
        from_lufs: session.target_lufs,
        to_lufs: to,
        why: format!(
            "reference {:.1} LUFS integrated (master {:.1}); PLR {:.1} dB against {:.1} and LRA \
             {:.1} LU against {:.1}: `{limiter}` is driven {} to reach it",
            d.reference_lufs,
            d.master_lufs,
            d.reference_plr_db,
            d.master_plr_db,
            d.reference_lra_lu,
            d.master_lra_lu,
            if harder > 0.5 {
                format!("about {harder:.1} dB harder")
            } else if harder < -0.5 {
                format!("about {:.1} dB more gently", -harder)
            } else {
                "about as hard as now".to_string()
            }
        ),
    })
}

/// The width setting for a side change of `width_db` (already scaled by the amount), on the
/// first width node after the mix bus, or on a new node `new_id`. `None` under 0.3 dB.
pub fn width(
    session: &Session,
    mix_bus: &str,
    new_id: &str,
    width_db: f64,
    d: &Dynamics,
) -> Option<WidthChange> {
    if width_db.abs() < 0.3 {
        return None;
    }
    let existing = find_after(&session.graph, mix_bus, "width");
    let from = existing
        .as_ref()
        .and_then(|n| match session.graph.find(n).map(|x| &x.kind) {
            Some(NodeKind::Processor { config, .. }) => config.peek_number("width_pct", 100.0).ok(),
            _ => None,
        })
        .unwrap_or(100.0);
    let to = super::eq::round((from * 10f64.powf(width_db / 20.0)).clamp(0.0, 200.0), 1);
    Some(WidthChange {
        node: existing.clone().unwrap_or_else(|| new_id.to_string()),
        exists: existing.is_some(),
        from_pct: from,
        to_pct: to,
        why: format!(
            "side-to-mid {:.1} dB in the reference against {:.1} dB in the master: side {width_db:+.1} dB",
            d.reference_side_to_mid_db, d.master_side_to_mid_db
        ),
    })
}
