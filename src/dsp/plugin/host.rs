//! What the `plugin` node needs from a plugin format, whatever the format: a description of the
//! plugin's ports ([`PluginDesc`]) read on the control side, and a running instance
//! ([`Hosted`]) whose `run` is the only call made on the audio thread.

use serde::Serialize;

/// One control input (a parameter) as the plugin declares it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ControlDesc {
    /// The symbol recipes use (`<node>.<symbol>`).
    pub symbol: String,
    /// The plugin's own name for it.
    pub name: String,
    /// Smallest value (−∞ when the plugin declares none).
    pub min: f64,
    /// Largest value (+∞ when the plugin declares none).
    pub max: f64,
    /// The plugin's default.
    pub default: f64,
    /// Whole numbers only (a mode, a count): changes step, never glide.
    pub integer: bool,
    /// An on/off switch: changes step, never glide.
    pub toggled: bool,
    /// The plugin asks for a logarithmic scale (frequencies, times): glides in octaves.
    pub logarithmic: bool,
}

impl ControlDesc {
    /// Whether the value changes by steps (no glide between two values).
    pub fn steps(&self) -> bool {
        self.integer || self.toggled
    }
}

/// What an audio input of the plugin receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InputRole {
    /// Channel `n` of the node's main input.
    Main(usize),
    /// Channel `n` of the side-chain `key` input (silence when nothing is connected).
    Key(usize),
}

/// A plugin as its format describes it (no instance needed).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PluginDesc {
    /// `lv2` (or `clap`).
    pub format: &'static str,
    /// The URI (LV2) or id (CLAP).
    pub uri: String,
    /// The plugin's name.
    pub name: String,
    /// Its audio inputs in port order: main channels and side-chain channels.
    pub inputs: Vec<InputRole>,
    /// Audio outputs.
    pub outputs: usize,
    /// Control inputs (the node's parameters after `active`), in port order.
    pub controls: Vec<ControlDesc>,
    /// Whether the plugin reports its latency on a port.
    pub reports_latency: bool,
    /// Whether the plugin can save and restore a state beyond its control values.
    pub has_state: bool,
}

impl PluginDesc {
    /// Channels of the main input.
    pub fn main_inputs(&self) -> usize {
        self.inputs
            .iter()
            .filter(|r| matches!(r, InputRole::Main(_)))
            .count()
    }
    /// Channels of the side-chain input.
    pub fn key_inputs(&self) -> usize {
        self.inputs.len() - self.main_inputs()
    }
    /// The control of a symbol.
    pub fn control(&self, symbol: &str) -> Option<usize> {
        self.controls.iter().position(|c| c.symbol == symbol)
    }
}

/// A running plugin instance, activated on the control side.
///
/// # Realtime safety
/// `set_control` and `run` are called on the audio thread. The host's side of them (connecting
/// preallocated buffers, writing a control value) does not allocate, lock or do I/O; what the
/// plugin does inside its own process call is the plugin's business and runs outside the
/// engine's allocation guard (see [`super::PluginNode`]).
pub trait Hosted: Send {
    /// Sets control `i` (an index into [`PluginDesc::controls`]) for the next `run`.
    fn set_control(&mut self, i: usize, value: f32);
    /// Processes `frames` frames: `inputs[k]` feeds the plugin's audio input `k`, `outputs[k]`
    /// receives its audio output `k`. False when the plugin refused the call.
    fn run(&mut self, frames: usize, inputs: &[Vec<f32>], outputs: &mut [Vec<f32>]) -> bool;
    /// The latency the plugin reports now, in samples (0 when it reports none).
    fn reported_latency(&self) -> f64;
    /// The current value of every control (after a state was restored: the state's values).
    fn control_values(&self) -> Vec<f64>;
    /// The plugin's full state as text (control side).
    fn save_state(&self) -> Result<String, String>;
}
