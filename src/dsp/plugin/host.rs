//! What the `plugin` node needs from a plugin format, whatever the format: a description of the
//! plugin's ports ([`PluginDesc`]) read on the control side, and a running instance
//! ([`Hosted`]) whose `run` is the only call made on the audio thread. [`PluginRef`] says which
//! plugin, in which format.

use serde::{Deserialize, Serialize};

/// One control input (a parameter) as the plugin declares it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputRole {
    /// Channel `n` of the node's main input.
    Main(usize),
    /// Channel `n` of the side-chain `key` input (silence when nothing is connected).
    Key(usize),
}

/// Which plugin a node runs, as the recipe names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginRef {
    /// An installed LV2 plugin by URI.
    Lv2(String),
    /// A CLAP plugin by id, in the bundle `path` (a `.clap` file) or, without one, in the first
    /// installed bundle that has it (`CLAP_PATH`, `~/.clap`, `/usr/lib/clap`).
    Clap {
        /// The plugin's id.
        id: String,
        /// The bundle file.
        path: Option<std::path::PathBuf>,
    },
}

impl PluginRef {
    /// The URI or id.
    pub fn id(&self) -> &str {
        match self {
            PluginRef::Lv2(uri) => uri,
            PluginRef::Clap { id, .. } => id,
        }
    }
}

/// A plugin as its format describes it (LV2: from its metadata; CLAP: from an instance that is
/// created, asked and destroyed, never activated).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginDesc {
    /// `lv2` or `clap`.
    pub format: String,
    /// The URI (LV2) or id (CLAP).
    pub uri: String,
    /// The bundle file it was loaded from (CLAP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The plugin's name.
    pub name: String,
    /// Its audio inputs in port order: main channels and side-chain channels.
    pub inputs: Vec<InputRole>,
    /// Audio outputs.
    pub outputs: usize,
    /// Control inputs (the node's parameters after `active`), in port order.
    pub controls: Vec<ControlDesc>,
    /// Whether the plugin reports its latency (LV2: on a port; CLAP: the latency extension).
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
/// `set_control`, `set_control_at`, `run` and `reset` are called on the audio thread. The host's
/// side of them (connecting preallocated buffers, writing a control value or queuing an event in
/// a preallocated list) does not allocate, lock or do I/O; what the plugin does inside its own
/// process call is the plugin's business and runs outside the engine's allocation guard (see
/// [`super::PluginNode`]).
pub trait Hosted: Send {
    /// Sets control `i` (an index into [`PluginDesc::controls`]) for the next `run`.
    fn set_control(&mut self, i: usize, value: f64);
    /// Whether a control change can take effect at a frame inside a `run` (CLAP parameter events
    /// carry a sample offset; LV2 control ports hold one value per run).
    fn sample_accurate(&self) -> bool {
        false
    }
    /// Sets control `i` from frame `offset` of the next `run` on (calls for one run come in
    /// non-decreasing `offset` order). Without sample accuracy: [`Hosted::set_control`].
    fn set_control_at(&mut self, i: usize, offset: usize, value: f64) {
        let _ = offset;
        self.set_control(i, value);
    }
    /// Processes `frames` frames: `inputs[k]` feeds the plugin's audio input `k`, `outputs[k]`
    /// receives its audio output `k` (the input buffers are the host's scratch: some formats
    /// take them mutably, the plugin never writes them). False when the plugin refused the call.
    fn run(&mut self, frames: usize, inputs: &mut [Vec<f32>], outputs: &mut [Vec<f32>]) -> bool;
    /// Clears the plugin's processing state (delay lines, envelopes) where the format has a
    /// real-time reset (CLAP); nothing otherwise.
    fn reset(&mut self) {}
    /// The latency the plugin reports now, in samples (0 when it reports none).
    fn reported_latency(&self) -> f64;
    /// The current value of every control (after a state was restored: the state's values).
    fn control_values(&self) -> Vec<f64>;
    /// The plugin's full state as text (control side).
    fn save_state(&self) -> Result<String, String>;
}
