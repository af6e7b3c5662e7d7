//! LV2 hosting through livi (lilv): the installed plugins, their descriptions, instances and
//! their state (the LV2 state extension, as Turtle text).
//!
//! The lilv world (every installed bundle's description) is loaded once per process and kept
//! behind a lock, with one set of host features per largest block size; everything here runs on
//! the control side. An instance keeps its own reference to its library and features, so it
//! lives on without the lock.

use super::host::{ControlDesc, Hosted, InputRole, PluginDesc};
use livi::{PortIndex, PortType};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

const LV2_CORE: &str = "http://lv2plug.in/ns/lv2core#";
const PORT_PROPS: &str = "http://lv2plug.in/ns/ext/port-props#";
const STATE_INTERFACE: &str = "http://lv2plug.in/ns/ext/state#interface";
/// The subject of the states this host writes.
const STATE_SUBJECT: &str = "urn:stemgraph:plugin-state";
/// Bytes of each atom sequence buffer (plugins with a message port get an empty sequence).
const ATOM_CAPACITY: usize = 8192;

/// The process's lilv world and host features (control side only, behind a lock).
struct Shared {
    world: livi::World,
    features: HashMap<usize, Arc<livi::Features>>,
}

// SAFETY: the world is only used under the mutex below, one thread at a time; lilv worlds are
// not tied to the thread that created them.
unsafe impl Send for Shared {}

static SHARED: OnceLock<Mutex<Shared>> = OnceLock::new();

fn with_shared<R>(f: impl FnOnce(&mut Shared) -> R) -> R {
    let m = SHARED.get_or_init(|| {
        Mutex::new(Shared {
            world: livi::World::new(),
            features: HashMap::new(),
        })
    });
    let mut guard = m.lock().unwrap_or_else(|e| e.into_inner());
    f(&mut guard)
}

impl Shared {
    fn features(&mut self, max_block: usize) -> Result<Arc<livi::Features>, String> {
        if let Some(f) = self.features.get(&max_block) {
            return Ok(f.clone());
        }
        let f = self
            .world
            .try_build_features(livi::FeaturesBuilder {
                min_block_length: 1,
                max_block_length: max_block.max(1),
            })
            .map_err(|e| format!("LV2 host features: {e}"))?;
        self.features.insert(max_block, f.clone());
        Ok(f)
    }

    fn plugin(&self, uri: &str) -> Result<livi::Plugin, String> {
        self.world.plugin_by_uri(uri).ok_or_else(|| {
            let uris: Vec<String> = self.world.iter_plugins().map(|p| p.uri()).collect();
            super::unknown_message("LV2 plugin", uri, &uris)
        })
    }
}

/// Every installed LV2 plugin that this host can run, described, in URI order.
pub fn list() -> Vec<PluginDesc> {
    with_shared(|s| {
        let mut v: Vec<PluginDesc> = s
            .world
            .iter_plugins()
            .map(|p| describe(&s.world, &p))
            .collect();
        v.sort_by(|a, b| a.uri.cmp(&b.uri));
        v
    })
}

/// The description of the plugin `uri` (with the closest names when it is not installed).
pub fn find(uri: &str) -> Result<PluginDesc, String> {
    with_shared(|s| s.plugin(uri).map(|p| describe(&s.world, &p)))
}

/// Whether a port has property `uri`.
fn has_property(world: &livi::World, port: &livi::lilv::port::Port, uri: String) -> bool {
    port.has_property(&world.raw().new_uri(&uri))
}

fn describe(world: &livi::World, p: &livi::Plugin) -> PluginDesc {
    let raw = p.raw();
    let mut inputs = Vec::new();
    let mut controls = Vec::new();
    let mut outputs = 0;
    let (mut main, mut key) = (0, 0);
    for port in p.ports() {
        let Some(rp) = raw.port_by_index(port.index.0) else {
            continue;
        };
        match port.port_type {
            PortType::AudioInput => {
                let symbol = port.symbol.to_lowercase();
                let side = has_property(world, &rp, format!("{LV2_CORE}isSideChain"))
                    || symbol.starts_with("sc")
                    || symbol.contains("sidechain")
                    || symbol.starts_with("key");
                if side {
                    inputs.push(InputRole::Key(key));
                    key += 1;
                } else {
                    inputs.push(InputRole::Main(main));
                    main += 1;
                }
            }
            PortType::AudioOutput => outputs += 1,
            PortType::ControlInput => controls.push(ControlDesc {
                symbol: port.symbol.clone(),
                name: port.name.clone(),
                min: port.min_value.map_or(f64::NEG_INFINITY, tidy),
                max: port.max_value.map_or(f64::INFINITY, tidy),
                default: tidy(port.default_value),
                integer: has_property(world, &rp, format!("{LV2_CORE}integer"))
                    || has_property(world, &rp, format!("{LV2_CORE}enumeration")),
                toggled: has_property(world, &rp, format!("{LV2_CORE}toggled")),
                logarithmic: has_property(world, &rp, format!("{PORT_PROPS}logarithmic")),
            }),
            _ => {}
        }
    }
    PluginDesc {
        format: "lv2".into(),
        uri: p.uri(),
        path: None,
        name: p.name(),
        inputs,
        outputs,
        controls,
        reports_latency: raw.has_latency(),
        has_state: raw.has_extension_data(&world.raw().new_uri(STATE_INTERFACE)),
    }
}

/// An `f32` from the plugin's description as the shortest decimal that reads back as it (0.001,
/// not 0.0010000000474974513), so that a recipe can write the bound it reads.
fn tidy(v: f32) -> f64 {
    v.to_string().parse().unwrap_or(f64::from(v))
}

/// A running LV2 instance with its port buffers.
struct Lv2Instance {
    instance: livi::Instance,
    /// Port index of each control of the description.
    controls: Vec<PortIndex>,
    /// The latency output port.
    latency_port: Option<PortIndex>,
    atom_in: Vec<livi::event::LV2AtomSequence>,
    atom_out: Vec<livi::event::LV2AtomSequence>,
    uri: String,
}

/// Instantiates and activates `uri` at `sample_rate` for blocks of at most `max_block` frames,
/// restoring `state` (text written by [`Hosted::save_state`]) when given.
pub fn instantiate(
    uri: &str,
    sample_rate: f64,
    max_block: usize,
    state: Option<&str>,
) -> Result<Box<dyn Hosted>, String> {
    with_shared(|s| {
        let plugin = s.plugin(uri)?;
        let features = s.features(max_block)?;
        // SAFETY: the plugin comes from the system's LV2 path; the host upholds LV2's threading
        // rules (instantiate and state on the control side, run on one thread at a time).
        let mut instance = unsafe { plugin.instantiate(features.clone(), sample_rate) }
            .map_err(|e| format!("LV2 plugin `{uri}` failed to instantiate: {e}"))?;
        if let Some(text) = state {
            let st = s
                .world
                .state_from_string(&features, text)
                .map_err(|e| format!("the state for `{uri}` cannot be read: {e}"))?;
            instance
                .restore_state(&st)
                .map_err(|e| format!("the state cannot be restored into `{uri}`: {e}"))?;
        }
        let controls = plugin
            .ports_with_type(PortType::ControlInput)
            .map(|p| p.index)
            .collect();
        let latency_port = plugin.raw().latency_port_index().map(PortIndex);
        let count = |t| plugin.ports_with_type(t).count();
        let atom_in = (0..count(PortType::AtomSequenceInput))
            .map(|_| livi::event::LV2AtomSequence::new(&features, ATOM_CAPACITY))
            .collect();
        let atom_out = (0..count(PortType::AtomSequenceOutput))
            .map(|_| livi::event::LV2AtomSequence::new(&features, ATOM_CAPACITY))
            .collect();
        if count(PortType::CVInput) + count(PortType::CVOutput) > 0 {
            return Err(format!(
                "LV2 plugin `{uri}` has CV ports, which stemgraph does not host"
            ));
        }
        Ok(Box::new(Lv2Instance {
            instance,
            controls,
            latency_port,
            atom_in,
            atom_out,
            uri: uri.to_string(),
        }) as Box<dyn Hosted>)
    })
}

impl Hosted for Lv2Instance {
    fn set_control(&mut self, i: usize, value: f64) {
        let value = value as f32;
        if let Some(&port) = self.controls.get(i) {
            if self.instance.control_input(port) != Some(value) {
                self.instance.set_control_input(port, value);
            }
        }
    }

    fn run(&mut self, frames: usize, inputs: &mut [Vec<f32>], outputs: &mut [Vec<f32>]) -> bool {
        let ports = livi::EmptyPortConnections::new()
            .with_audio_inputs(inputs.iter().map(|b| &b[..frames]))
            .with_audio_outputs(outputs.iter_mut().map(|b| &mut b[..frames]))
            .with_atom_sequence_inputs(self.atom_in.iter())
            .with_atom_sequence_outputs(self.atom_out.iter_mut());
        // SAFETY: the buffers are the ones described, at least `frames` long, and live for the
        // call; the instance is only run from this one processor.
        unsafe { self.instance.run(frames, ports) }.is_ok()
    }

    fn reported_latency(&self) -> f64 {
        self.latency_port
            .and_then(|p| self.instance.control_output(p))
            .map_or(0.0, f64::from)
    }

    fn control_values(&self) -> Vec<f64> {
        self.controls
            .iter()
            .map(|&p| self.instance.control_input(p).map_or(0.0, tidy))
            .collect()
    }

    fn save_state(&self) -> Result<String, String> {
        // lilv reads the plugin's description from the world: hold its lock.
        with_shared(|_| {
            self.instance
                .state()
                .and_then(|s| s.to_string(STATE_SUBJECT))
                .map_err(|e| format!("the state of `{}` cannot be saved: {e}", self.uri))
        })
    }
}
