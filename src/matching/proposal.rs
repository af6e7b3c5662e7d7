//! What a match proposes, as data: stem send changes, the EQ inserted after the mix bus, the
//! width, the loudness target and per-section automation, each with the reason shown to the
//! engineer. [`Proposal::apply`] makes the same change to a [`Session`] in memory (for the
//! check render and the live A/B); [`super::writer`] writes it as a Lua override file.

use super::eq::{self, EqBand};
use super::MatchError;
use crate::automation::Shape;
use crate::graph::{NodeKind, NodeSpec};
use crate::session::{AutomationDecl, PointDecl, Session};

/// A stem's level, changed on its sends.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StemChange {
    /// The stem.
    pub stem: String,
    /// The change, dB.
    pub change_db: f64,
    /// Each send: its `--set` key, the recipe's gain and the proposed one, dB.
    pub sends: Vec<(String, f64, f64)>,
    /// Why.
    pub why: String,
}

/// The EQ inserted after the mix bus.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EqChange {
    /// The new node's id.
    pub node: String,
    /// The node it follows (the mix bus).
    pub after: String,
    /// Its bands (none at 0 dB).
    pub bands: Vec<EqBand>,
    /// Why, one line per band.
    pub why: Vec<String>,
}

/// The width node's setting (an existing node, or a new one after the EQ).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct WidthChange {
    /// The node's id.
    pub node: String,
    /// Whether the recipe has it already.
    pub exists: bool,
    /// `width_pct` now.
    pub from_pct: f64,
    /// Proposed.
    pub to_pct: f64,
    /// Why.
    pub why: String,
}

/// The loudness target (the limiter's drive follows from it).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LoudnessChange {
    /// The recipe's target, if it has one.
    pub from_lufs: Option<f64>,
    /// Proposed.
    pub to_lufs: f64,
    /// Why.
    pub why: String,
}

/// Per-section values of a parameter, as step automation at the sections' starts.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AutomationChange {
    /// The parameter.
    pub param: String,
    /// (time in seconds, value).
    pub points: Vec<(f64, f64)>,
    /// Why.
    pub why: String,
}

/// Everything a match proposes.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Default)]
pub struct Proposal {
    /// How much of the fitted change is proposed, %.
    pub amount_pct: f64,
    /// Stem levels.
    pub stems: Vec<StemChange>,
    /// The tonal balance.
    pub eq: Option<EqChange>,
    /// The width.
    pub width: Option<WidthChange>,
    /// The loudness target.
    pub loudness: Option<LoudnessChange>,
    /// Section-aware values.
    pub automation: Vec<AutomationChange>,
}

impl Proposal {
    /// Makes the proposed change to `session`.
    pub fn apply(&self, session: &mut Session) -> Result<(), MatchError> {
        let err = |e: crate::session::OverrideError| MatchError::Apply(e.to_string());
        for s in &self.stems {
            for (key, _, to) in &s.sends {
                session
                    .apply_override(&format!("{key}={to}"))
                    .map_err(err)?;
            }
        }
        let mut after = None;
        if let Some(e) = &self.eq {
            let kind = NodeKind::Processor {
                kind: "eq".into(),
                config: eq::processor_config(&e.bands),
                bypass: false,
            };
            insert_after(session, &e.after, &e.node, kind)?;
            after = Some(e.node.clone());
        }
        if let Some(w) = &self.width {
            if w.exists {
                session
                    .apply_override(&format!("{}.width_pct={}", w.node, w.to_pct))
                    .map_err(err)?;
            } else {
                let after = after
                    .ok_or_else(|| MatchError::Apply("a new width node needs the EQ".into()))?;
                let kind = NodeKind::Processor {
                    kind: "width".into(),
                    config: crate::dsp::ProcessorConfig::new().num("width_pct", w.to_pct),
                    bypass: false,
                };
                insert_after(session, &after, &w.node, kind)?;
            }
        }
        if let Some(l) = &self.loudness {
            session.target_lufs = Some(l.to_lufs);
        }
        for a in &self.automation {
            session.automation.push(AutomationDecl {
                param: a.param.clone(),
                points: a
                    .points
                    .iter()
                    .map(|&(seconds, value)| PointDecl {
                        seconds,
                        value,
                        shape: Shape::Step,
                    })
                    .collect(),
                origin: None,
            });
        }
        Ok(())
    }
}

/// Inserts node `id` after `after`: what `after` fed now comes from `id`.
fn insert_after(
    session: &mut Session,
    after: &str,
    id: &str,
    kind: NodeKind,
) -> Result<(), MatchError> {
    if session.graph.find(after).is_none() {
        return Err(MatchError::Apply(format!("no node `{after}`")));
    }
    if session.graph.find(id).is_some() {
        return Err(MatchError::Apply(format!(
            "the recipe already has a node `{id}`"
        )));
    }
    for e in &mut session.graph.edges {
        if e.from == after && e.port == crate::dsp::Port::Main {
            e.from = id.to_string();
        }
    }
    session.graph.nodes.push(NodeSpec {
        id: id.to_string(),
        kind,
        origin: None,
    });
    session.graph.connect(after, id);
    Ok(())
}
