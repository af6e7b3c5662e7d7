//! The `plugin` processor: a third-party plugin (LV2 or CLAP) as a graph node.
//!
//! `plugin { lv2 = URI, params = { symbol = value, … }, state = "file" }`, or
//! `plugin { clap = ID, path = "bundle.clap", params = …, state = … }`. The formats live in
//! [`lv2`] and [`clap`] behind [`host`]'s format-neutral interface; this module is the node.
//! The plugin's control inputs (CLAP: its parameters) become the node's parameters (`<node>.<symbol>`, validated against the plugin's
//! declared ranges, automatable, glided on a reload), after one of the host's own: `active`
//! (1: the plugin is heard; 0: the input, delayed by the plugin's latency; glides 20 ms, so a
//! bypass never clicks and never moves the timing).
//!
//! Control side (build): the plugin is looked up (unknown URIs get the closest installed
//! names), a throw-away instance measures its latency and tail with an impulse ([`probe`]),
//! and the instance that will run is instantiated, activated, given its saved state and warmed
//! up on half a second of silence (plugins that smooth their controls have settled when the
//! first block comes).
//! Audio side (`process`): the input is converted to the plugin's `f32` buffers (preallocated),
//! control values are written, the plugin runs, and its output is mixed with the delayed input
//! by `active`. LV2 control ports have no sample offset: values are written per block, and per
//! 16-frame slice while a parameter glides or is automated. CLAP parameter events carry a
//! sample offset: the plugin runs once per block and gets an event at every frame where a
//! gliding or automated value changes, so a step lands on its exact sample. The plugin's own process call runs outside the engine's
//! allocation guard (`assert_no_alloc::permit_alloc`): a plugin that allocates is the plugin's
//! fault, not the engine's, and must not fail the engine's guard tests.
//!
//! At a hot reload that changes only parameter values, the new node takes the running instance
//! over (a pointer swap: [`Processor::take_state`] with [`Handover::Move`]), so the plugin's
//! state goes on and its parameters glide. A plugin cannot be copied, so in a crossfade the new
//! node starts from a fresh instance of its own.
//!
//! Without the `plugins` cargo feature the kind exists (recipes and the reference are the same)
//! but building one is an error.

#[cfg(feature = "plugins")]
pub mod clap;
pub mod host;
#[cfg(feature = "plugins")]
pub mod lv2;
pub mod probe;
pub mod state;

use super::config::{ConfigValue, ProcessorConfig};
use super::kind::{BuildContext, KindInfo};
use super::param::{ParamInfo, Unit};
use super::state::Handover;
use super::{AudioMut, AudioRef, ParamBlock, ProcessSpec, Processor};
use host::{Hosted, InputRole, PluginDesc, PluginRef};

/// Index of `active`, the host's own parameter.
pub const ACTIVE: usize = 0;
/// Frames per slice while a control glides or is automated.
pub const SLICE: usize = 16;

/// The registry entry.
pub const KIND: KindInfo = KindInfo {
    name: "plugin",
    doc: "A third-party LV2 or CLAP plugin: `plugin { lv2 = \"http://…\", params = { symbol = \
          value }, state = \"file.ttl\" }` or `plugin { clap = \"org.example.id\", path = \
          \"x.clap\", params = { … } }` (`path` relative to the recipe; without it the installed \
          CLAP bundles are searched). The plugin's control ports (CLAP: its parameters, by name \
          in snake_case) are its parameters (`<node>.<symbol>`, in the plugin's declared ranges; \
          `stemgraph plugins` lists them), after `active`. Its reported latency is compensated; at \
          load an impulse measures it and the report warns when the two differ. LV2 control \
          values change once per block, or every 16 frames while they glide or are automated; \
          CLAP parameters change at the exact sample (parameter events with a sample offset). \
          `state` restores a state saved with `stemgraph plugin save-state` (path relative to the \
          recipe; its hash is in the report). A side-chain `key` input feeds the plugin's \
          side-chain ports.",
    build,
    example: || {
        ProcessorConfig::new()
            .text("lv2", "http://example.org/plugin")
            .text("clap", "org.example.plugin")
            .text("path", "plugins/example.clap")
            .text("state", "plugin-state.ttl")
            .with("params", ConfigValue::Table(ProcessorConfig::new()))
    },
};

/// The host's own parameters (before the plugin's controls).
pub fn own_params() -> Vec<ParamInfo> {
    vec![ParamInfo::new("active", Unit::Plain, 0.0, 1.0, 1.0)
        .doc("1: the plugin is heard; 0: the input, delayed by the plugin's latency (glides: a click-free bypass)")]
}

/// The state file a plugin node's configuration names (already resolved against the recipe's
/// folder by the recipe layer), for the report and the album's incremental key.
pub fn state_path(config: &ProcessorConfig) -> Option<std::path::PathBuf> {
    match config.entries.get("state") {
        Some(ConfigValue::Text(p)) => Some(p.into()),
        _ => None,
    }
}

/// The node's options as the recipe gave them (the parameters stay in the configuration for the
/// registry to take).
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// The plugin.
    pub source: PluginRef,
    /// The saved state to restore.
    pub state: Option<state::StateFile>,
}

/// A text option (`None` when absent; an error when not a non-empty string).
fn take_text(
    config: &mut ProcessorConfig,
    key: &str,
    what: &str,
) -> Result<Option<String>, String> {
    match config.take(key) {
        None => Ok(None),
        Some(ConfigValue::Text(s)) if !s.is_empty() => Ok(Some(s)),
        Some(other) => Err(format!(
            "`{key}` must be {what} (a string), not {}",
            other.type_name()
        )),
    }
}

/// Which plugin `config` names: `lv2 = URI`, or `clap = ID` with an optional `path`.
fn take_source(config: &mut ProcessorConfig) -> Result<PluginRef, String> {
    let lv2 = take_text(config, "lv2", "the plugin's URI")?;
    let clap = take_text(config, "clap", "the plugin's CLAP id")?;
    let path = take_text(config, "path", "the CLAP bundle's file")?;
    match (lv2, clap) {
        (Some(_), Some(_)) => Err("a plugin is either `lv2 = URI` or `clap = ID`, not both".into()),
        (Some(uri), None) if path.is_none() => Ok(PluginRef::Lv2(uri)),
        (Some(_), None) => Err("`path` names a CLAP bundle: use it with `clap = ID`".into()),
        (None, Some(id)) => Ok(PluginRef::Clap {
            id,
            path: path.map(Into::into),
        }),
        (None, None) => Err(
            "a plugin needs `lv2 = \"<plugin URI>\"` or `clap = \"<plugin id>\"` \
             (see `stemgraph plugins`)"
                .into(),
        ),
    }
}

/// Takes `lv2`/`clap`/`path`, `state` and `params` from `config`; the entries of `params` move
/// to the top level, where the registry takes parameter values.
fn take_options(config: &mut ProcessorConfig) -> Result<Options, String> {
    let source = take_source(config)?;
    let state = match config.take("state") {
        None => None,
        Some(ConfigValue::Text(p)) => Some(state::StateFile::read(&p)?),
        Some(other) => {
            return Err(format!(
                "`state` must be a file name, not {}",
                other.type_name()
            ))
        }
    };
    match config.take("params") {
        None => {}
        Some(ConfigValue::Table(t)) => {
            for (k, v) in t.entries {
                if config.entries.insert(k.clone(), v).is_some() {
                    return Err(format!("`{k}` is given twice (in `params` and beside it)"));
                }
            }
        }
        Some(ConfigValue::List(l)) if l.is_empty() => {}
        Some(other) => {
            return Err(format!(
                "`params` must be a table of parameter values, not {}",
                other.type_name()
            ))
        }
    }
    Ok(Options { source, state })
}

/// The closest of `known` to `name`, up to three, quoted, closest first.
pub fn closest(name: &str, known: &[String]) -> Vec<String> {
    let mut scored: Vec<(usize, &String)> = known
        .iter()
        .map(|k| (crate::suggest::edit_distance(name, k), k))
        .collect();
    scored.sort();
    scored
        .iter()
        .take(3)
        .map(|(_, k)| format!("`{k}`"))
        .collect()
}

/// That `name` is not installed, with the closest of `known` (up to three).
pub fn unknown_message(what: &str, name: &str, known: &[String]) -> String {
    let close = closest(name, known);
    if close.is_empty() {
        format!("no {what} `{name}` is installed (none are: see `stemgraph plugins`)")
    } else {
        format!(
            "no {what} `{name}` is installed; the closest: {} (see `stemgraph plugins`)",
            close.join(", ")
        )
    }
}

/// The plugin's parameters for an error message: `symbol (min … max)`, one per line.
fn parameter_list(desc: &PluginDesc) -> String {
    let mut s = String::from("its parameters:");
    for c in &desc.controls {
        s.push_str(&format!(
            "\n  {} ({} … {}, default {}): {}",
            c.symbol, c.min, c.max, c.default, c.name
        ));
    }
    s
}

/// Checks every parameter value the recipe gives against the plugin's controls.
fn check_params(desc: &PluginDesc, config: &ProcessorConfig) -> Result<(), String> {
    for (key, value) in &config.entries {
        if key == "active" {
            continue;
        }
        let Some(i) = desc.control(key) else {
            let suggestion =
                crate::suggest::closest(key, desc.controls.iter().map(|c| c.symbol.as_str()));
            return Err(format!(
                "`{}` has no parameter `{key}`{}; {}",
                desc.uri,
                crate::suggest::did_you_mean(&suggestion),
                parameter_list(desc)
            ));
        };
        let c = &desc.controls[i];
        let v = match value {
            ConfigValue::Number(v) => *v,
            ConfigValue::Bool(b) => f64::from(u8::from(*b)),
            other => {
                return Err(format!(
                    "`{key}` must be a number, not {}",
                    other.type_name()
                ))
            }
        };
        if !(v.is_finite() && v >= c.min && v <= c.max) {
            return Err(format!(
                "`{key}` = {v} is out of range for `{}`: it must be between {} and {}; {}",
                desc.uri,
                c.min,
                c.max,
                parameter_list(desc)
            ));
        }
    }
    Ok(())
}

/// A name that lives for the whole process (the parameter docs of plugins), interned.
fn intern(s: &str) -> &'static str {
    use std::collections::BTreeSet;
    use std::sync::Mutex;
    static NAMES: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
    let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(n) = names.get(s) {
        return n;
    }
    let n: &'static str = Box::leak(s.to_string().into_boxed_str());
    names.insert(n);
    n
}

/// The node's parameters: `active`, then one per control (defaults: the instance's values, which
/// are the saved state's when one was restored).
fn params_of(desc: &PluginDesc, defaults: &[f64]) -> Vec<ParamInfo> {
    let mut params = own_params();
    for (c, &d) in desc.controls.iter().zip(defaults) {
        let mut p = ParamInfo::new(
            c.symbol.clone(),
            Unit::Plain,
            c.min,
            c.max,
            d.clamp(c.min, c.max),
        )
        .doc(intern(&c.name));
        if c.steps() {
            p = p.glide(0.0);
        } else if c.logarithmic && c.min > 0.0 {
            p = p.log();
        }
        params.push(p);
    }
    params
}

fn build(cx: &mut BuildContext) -> Result<Box<dyn Processor>, String> {
    let options = take_options(cx.config)?;
    let desc = find(&options.source)?;
    Ok(Box::new(PluginNode::new(desc, options, cx)?))
}

/// Without the `plugins` feature, what building a plugin node says.
#[cfg(not(feature = "plugins"))]
const NOT_BUILT: &str = "hosting plugins needs the `plugins` feature, which this build of stemgraph \
     was made without; build it with `cargo build --features plugins` (or with the default features)";

/// The description of a plugin.
pub fn find(source: &PluginRef) -> Result<PluginDesc, String> {
    #[cfg(feature = "plugins")]
    return match source {
        PluginRef::Lv2(uri) => lv2::find(uri),
        PluginRef::Clap { id, path } => clap::find(id, path.as_deref()),
    };
    #[cfg(not(feature = "plugins"))]
    {
        let _ = source;
        Err(NOT_BUILT.into())
    }
}

/// Every installed LV2 plugin (metadata only: nothing is loaded), described.
pub fn installed() -> Result<Vec<PluginDesc>, String> {
    #[cfg(feature = "plugins")]
    return Ok(lv2::list());
    #[cfg(not(feature = "plugins"))]
    Err(NOT_BUILT.into())
}

/// The installed CLAP bundles (`CLAP_PATH`, `~/.clap`, `/usr/lib/clap`); describing their
/// plugins loads their code ([`find`] with the path, best in a child process).
pub fn clap_bundles() -> Result<Vec<std::path::PathBuf>, String> {
    #[cfg(feature = "plugins")]
    return Ok(clap::bundle_files());
    #[cfg(not(feature = "plugins"))]
    Err(NOT_BUILT.into())
}

/// The ids of the plugins in a CLAP bundle (loads its code).
pub fn clap_ids(path: &std::path::Path) -> Result<Vec<String>, String> {
    #[cfg(feature = "plugins")]
    return clap::ids(path);
    #[cfg(not(feature = "plugins"))]
    {
        let _ = path;
        Err(NOT_BUILT.into())
    }
}

/// Instantiates a plugin with its defaults and probes it with an impulse (what `stemgraph
/// plugins` runs in its child process).
pub fn probe_installed(
    source: &PluginRef,
    sample_rate: f64,
    block: usize,
) -> Result<probe::Probe, String> {
    let desc = find(source)?;
    let mut host = instantiate(source, sample_rate, block, None)?;
    probe::run(
        host.as_mut(),
        &desc.inputs,
        desc.outputs,
        sample_rate,
        block,
    )
}

/// An activated instance of a plugin.
fn instantiate(
    source: &PluginRef,
    sample_rate: f64,
    max_block: usize,
    state: Option<&str>,
) -> Result<Box<dyn Hosted>, String> {
    #[cfg(feature = "plugins")]
    return match source {
        PluginRef::Lv2(uri) => lv2::instantiate(uri, sample_rate, max_block, state),
        PluginRef::Clap { id, path } => {
            clap::instantiate(id, path.as_deref(), sample_rate, max_block, state)
        }
    };
    #[cfg(not(feature = "plugins"))]
    {
        let _ = (source, sample_rate, max_block, state);
        Err(NOT_BUILT.into())
    }
}

/// What identifies the plugin a node runs (equal in both nodes for a hand-over).
#[derive(Debug, Clone, PartialEq)]
struct Identity {
    source: PluginRef,
    state_hash: Option<String>,
    sample_rate: f64,
    max_block: usize,
}

/// A plugin node.
pub struct PluginNode {
    params: Vec<ParamInfo>,
    desc: PluginDesc,
    identity: Identity,
    state_text: Option<String>,
    host: Box<dyn Hosted>,
    /// Channels of the main input.
    in_ch: usize,
    /// The plugin's audio input buffers and output buffers (one block each).
    ins: Vec<Vec<f32>>,
    outs: Vec<Vec<f32>>,
    /// The input delayed by the latency, per input channel (a ring each), and one block of it.
    dry: Vec<Vec<f64>>,
    dry_pos: usize,
    dry_out: Vec<Vec<f64>>,
    latency: usize,
    tail: usize,
    probe: probe::Probe,
    warning: Option<String>,
}

impl PluginNode {
    fn new(desc: PluginDesc, options: Options, cx: &BuildContext) -> Result<Self, String> {
        let main = desc.main_inputs();
        if main != cx.input_channels {
            return Err(channel_message(&desc, cx.input_channels));
        }
        if !(1..=2).contains(&desc.outputs) {
            return Err(format!(
                "`{}` has {} audio outputs; a plugin node has 1 or 2",
                desc.uri, desc.outputs
            ));
        }
        check_params(&desc, cx.config)?;
        let state_text = options.state.as_ref().map(|s| s.text.clone());
        let identity = Identity {
            source: options.source.clone(),
            state_hash: options.state.as_ref().map(|s| s.sha256.clone()),
            sample_rate: cx.sample_rate,
            max_block: cx.max_block,
        };
        let mut node = Self {
            params: Vec::new(),
            desc,
            identity,
            state_text,
            host: Box::new(NoHost),
            in_ch: cx.input_channels,
            ins: Vec::new(),
            outs: Vec::new(),
            dry: Vec::new(),
            dry_pos: 0,
            dry_out: Vec::new(),
            latency: 0,
            tail: 0,
            probe: probe::Probe {
                reported: 0,
                measured: None,
                tail: 0,
            },
            warning: None,
        };
        node.load(cx.config)?;
        Ok(node)
    }

    /// Instantiates the plugin (twice: a probe, then the instance that runs) at the identity's
    /// rate and block size, with the values `config` gives.
    fn load(&mut self, config: &ProcessorConfig) -> Result<(), String> {
        let id = self.identity.clone();
        let state = self.state_text.as_deref();
        let mut host = instantiate(&id.source, id.sample_rate, id.max_block, state)?;
        let defaults = host.control_values();
        self.params = params_of(&self.desc, &defaults);
        let values: Vec<f64> = self.params[1..]
            .iter()
            .map(|p| config.peek_number(&p.name, p.default).unwrap_or(p.default))
            .collect();
        for (i, v) in values.iter().enumerate() {
            host.set_control(i, *v);
        }
        let found = probe::run(
            host.as_mut(),
            &self.desc.inputs,
            self.desc.outputs,
            id.sample_rate,
            id.max_block,
        )?;
        drop(host);
        self.probe = found;
        self.latency = found.reported;
        self.tail = found.tail;
        self.warning = found.mismatch();
        self.host = instantiate(&id.source, id.sample_rate, id.max_block, state)?;
        for (i, v) in values.iter().enumerate() {
            self.host.set_control(i, *v);
        }
        self.allocate(id.max_block);
        probe::warm_up(
            self.host.as_mut(),
            id.sample_rate,
            id.max_block,
            &mut self.ins,
            &mut self.outs,
        )
    }

    fn allocate(&mut self, max_block: usize) {
        self.ins = vec![vec![0.0; max_block]; self.desc.inputs.len()];
        self.outs = vec![vec![0.0; max_block]; self.desc.outputs];
        self.dry = vec![vec![0.0; self.latency.max(1)]; self.in_ch];
        self.dry_out = vec![vec![0.0; max_block]; self.in_ch];
        self.dry_pos = 0;
    }

    /// The plugin's description.
    pub fn desc(&self) -> &PluginDesc {
        &self.desc
    }

    /// What the load-time impulse found.
    pub fn probe(&self) -> probe::Probe {
        self.probe
    }

    /// The SHA-256 of the restored state file, if any.
    pub fn state_hash(&self) -> Option<&str> {
        self.identity.state_hash.as_deref()
    }

    /// The running instance's full state as text (control side: `stemgraph plugin save-state`).
    pub fn save_state(&self) -> Result<String, String> {
        self.host.save_state()
    }

    /// Delays `frames` frames of the main input (from `audio`, at `start`) into `dry_out`.
    fn delay_dry(&mut self, audio: &AudioMut<'_>, start: usize, frames: usize) {
        let len = self.dry.first().map_or(1, Vec::len);
        for c in 0..self.in_ch {
            let input = &audio.channel(c)[start..start + frames];
            let (ring, out) = (&mut self.dry[c], &mut self.dry_out[c]);
            if self.latency == 0 {
                out[..frames].copy_from_slice(input);
                continue;
            }
            let mut pos = self.dry_pos;
            for (o, &x) in out[..frames].iter_mut().zip(input) {
                *o = ring[pos];
                ring[pos] = x;
                pos += 1;
                if pos == len {
                    pos = 0;
                }
            }
        }
        if self.latency > 0 {
            self.dry_pos = (self.dry_pos + frames) % len;
        }
    }

    /// Gives the plugin the control values of frames `start..start + frames`: the value at
    /// `start` (formats without sample accuracy), or an event at every frame where a value
    /// changes (CLAP: constant values first, then the moving ones in time order).
    fn send_controls(&mut self, params: &ParamBlock<'_>, start: usize, frames: usize) {
        let n = self.desc.controls.len();
        if !self.host.sample_accurate() {
            for i in 0..n {
                self.host.set_control(i, params.get(i + 1).at(start));
            }
            return;
        }
        let mut moving = false;
        for i in 0..n {
            let p = params.get(i + 1);
            if p.is_constant() {
                self.host.set_control_at(i, 0, p.first());
            } else {
                moving = true;
            }
        }
        if !moving {
            return;
        }
        for t in 0..frames {
            for i in 0..n {
                let p = params.get(i + 1);
                if !p.is_constant() {
                    self.host.set_control_at(i, t, p.at(start + t));
                }
            }
        }
    }

    /// Runs one slice of `frames` frames from `start`.
    fn slice(
        &mut self,
        audio: &mut AudioMut<'_>,
        key: Option<&AudioRef<'_>>,
        params: &ParamBlock<'_>,
        start: usize,
        frames: usize,
    ) {
        self.send_controls(params, start, frames);
        for (buf, role) in self.ins.iter_mut().zip(&self.desc.inputs) {
            let src: Option<&[f64]> = match role {
                InputRole::Main(c) => Some(&audio.channel(*c)[start..start + frames]),
                InputRole::Key(c) => {
                    key.map(|k| &k.channel((*c).min(k.channels() - 1))[start..start + frames])
                }
            };
            match src {
                Some(src) => buf[..frames]
                    .iter_mut()
                    .zip(src)
                    .for_each(|(b, &x)| *b = x as f32),
                None => buf[..frames].fill(0.0),
            }
        }
        self.delay_dry(audio, start, frames);
        let ok =
            assert_no_alloc::permit_alloc(|| self.host.run(frames, &mut self.ins, &mut self.outs));
        if !ok {
            self.outs.iter_mut().for_each(|o| o[..frames].fill(0.0));
        }
        let active = params.get(ACTIVE);
        for c in 0..self.desc.outputs {
            let dry = &self.dry_out[c.min(self.in_ch - 1)];
            let wet = &self.outs[c];
            let out = &mut audio.channel_mut(c)[start..start + frames];
            if active.is_constant() && active.first() == 1.0 {
                out.iter_mut()
                    .zip(&wet[..frames])
                    .for_each(|(o, &w)| *o = f64::from(w));
            } else {
                for (n, o) in out.iter_mut().enumerate() {
                    let a = active.at(start + n);
                    *o = a * f64::from(wet[n]) + (1.0 - a) * dry[n];
                }
            }
        }
    }
}

/// The error for a plugin whose main input does not match the signal.
fn channel_message(desc: &PluginDesc, channels: usize) -> String {
    let what = |n: usize| match n {
        1 => "mono".to_string(),
        2 => "stereo".to_string(),
        n => format!("{n}-channel"),
    };
    let mut msg = format!(
        "`{}` is a {} plugin ({} main audio input(s)) on a {} signal",
        desc.uri,
        what(desc.main_inputs()),
        desc.main_inputs(),
        what(channels)
    );
    let twin = if channels == 2 {
        desc.uri.replace("mono", "stereo")
    } else {
        desc.uri.replace("stereo", "mono")
    };
    if twin != desc.uri {
        msg.push_str(&format!(
            " (its {} variant may be `{twin}`)",
            what(channels)
        ));
    }
    msg
}

/// The instance of a node before its plugin is loaded (never runs).
struct NoHost;

impl Hosted for NoHost {
    fn set_control(&mut self, _: usize, _: f64) {}
    fn run(&mut self, _: usize, _: &mut [Vec<f32>], _: &mut [Vec<f32>]) -> bool {
        false
    }
    fn reported_latency(&self) -> f64 {
        0.0
    }
    fn control_values(&self) -> Vec<f64> {
        Vec::new()
    }
    fn save_state(&self) -> Result<String, String> {
        Err("the plugin is not loaded".into())
    }
}

impl Processor for PluginNode {
    fn kind(&self) -> &'static str {
        "plugin"
    }
    fn params(&self) -> &[ParamInfo] {
        &self.params
    }
    fn output_channels(&self) -> usize {
        self.desc.outputs
    }
    fn prepare(&mut self, spec: &ProcessSpec) {
        if spec.sample_rate == self.identity.sample_rate
            && spec.max_block <= self.identity.max_block
        {
            return;
        }
        // Built for another rate or a smaller block (a caller that used the registry's
        // defaults): load again at this one, with the starting values the parameters had.
        self.identity.sample_rate = spec.sample_rate;
        self.identity.max_block = spec.max_block;
        let mut config = ProcessorConfig::new();
        for p in &self.params[1..] {
            config = config.num(&p.name, p.default);
        }
        if let Err(e) = self.load(&config) {
            self.warning = Some(format!("{e}: the plugin is silent"));
            self.host = Box::new(NoHost);
            self.allocate(spec.max_block);
        }
    }
    fn reset(&mut self) {
        // A CLAP plugin resets itself; an LV2 plugin has no real-time reset (only the host's own
        // delay line is cleared).
        assert_no_alloc::permit_alloc(|| self.host.reset());
        self.dry.iter_mut().for_each(|r| r.fill(0.0));
        self.dry_pos = 0;
    }
    fn process(
        &mut self,
        audio: &mut AudioMut<'_>,
        key: Option<AudioRef<'_>>,
        params: ParamBlock<'_>,
    ) {
        let frames = audio.frames();
        let glides = (1..self.params.len()).any(|i| !params.get(i).is_constant());
        let step = if glides && !self.host.sample_accurate() {
            SLICE
        } else {
            frames.max(1)
        };
        let mut start = 0;
        while start < frames {
            let n = step.min(frames - start);
            self.slice(audio, key.as_ref(), &params, start, n);
            start += n;
        }
    }
    fn latency(&self) -> usize {
        self.latency
    }
    fn tail(&self) -> usize {
        self.tail
    }
    fn accepts_key(&self) -> bool {
        self.desc.key_inputs() > 0
    }
    fn warning(&self) -> Option<&str> {
        self.warning.as_deref()
    }
    fn take_state(&mut self, old: &mut dyn Processor, how: Handover) -> bool {
        if !super::same_shape(self, old) {
            return false;
        }
        let Some(old) = old.as_any_mut().downcast_mut::<Self>() else {
            return false;
        };
        if self.identity != old.identity || self.dry.len() != old.dry.len() || how == Handover::Copy
        {
            return false;
        }
        // The running instance moves over (the old node, discarded, gets the fresh one).
        std::mem::swap(&mut self.host, &mut old.host);
        std::mem::swap(&mut self.dry, &mut old.dry);
        std::mem::swap(&mut self.dry_pos, &mut old.dry_pos);
        true
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}
