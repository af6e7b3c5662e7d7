//! CLAP hosting through clack-host: the bundles (`.clap` files) installed or named by a recipe,
//! the plugins in them, their descriptions, instances ([`instance`]) and their state (the state
//! extension's bytes, as hex text).
//!
//! Everything here runs on the control side. A bundle's library is loaded once per process and
//! kept (clack-host caches entries by path; so do we, with the list of its plugins). A
//! description needs an instance: one is created, asked for its audio ports and parameters, and
//! destroyed without being activated.
//!
//! Parameters are addressed by a **symbol** made from the parameter's name: lower case, every
//! run of characters other than letters and digits as one `_` (`Dry/Wet` → `dry_wet`), `p_` in
//! front when it would start with a digit, and `p<id>` (the parameter's CLAP id) when the name is
//! empty or another parameter has the symbol already. Read-only and hidden parameters are not
//! listed.

pub mod instance;

use super::host::{ControlDesc, Hosted, InputRole, PluginDesc};
use clack_extensions::audio_ports::{AudioPortFlags, AudioPortInfoBuffer, PluginAudioPorts};
use clack_extensions::latency::PluginLatency;
use clack_extensions::params::{ParamInfoBuffer, ParamInfoFlags, PluginParams};
use clack_extensions::state::PluginState;
use clack_host::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// The host's side of the callbacks a plugin may make: none needs an answer here (a plugin that
/// asks for a restart or a main-thread callback is not restarted; its latency is read at
/// activation).
pub struct Handlers;

/// Callbacks callable from any thread.
pub struct SharedCallbacks;

impl SharedHandler<'_> for SharedCallbacks {
    fn request_restart(&self) {}
    fn request_process(&self) {}
    fn request_callback(&self) {}
}

/// Main-thread callbacks (none).
pub struct MainCallbacks;

impl MainThreadHandler<'_> for MainCallbacks {}

/// Audio-thread callbacks (none).
pub struct AudioCallbacks;

impl AudioProcessorHandler<'_> for AudioCallbacks {}

impl HostHandlers for Handlers {
    type Shared<'a> = SharedCallbacks;
    type MainThread<'a> = MainCallbacks;
    type AudioProcessor<'a> = AudioCallbacks;
}

/// What this host tells plugins about itself.
fn host_info() -> HostInfo {
    HostInfo::new(
        "stemgraph",
        "stemgraph",
        "https://github.com/stemgraph",
        env!("CARGO_PKG_VERSION"),
    )
    .expect("no NUL in the host's name")
}

/// A loaded bundle: its entry and its plugins' ids and names.
#[derive(Clone)]
struct Bundle {
    entry: PluginEntry,
    plugins: Vec<(String, String)>,
}

/// The bundles loaded so far, by path (a library is loaded and initialised once per process).
static BUNDLES: OnceLock<Mutex<HashMap<PathBuf, Bundle>>> = OnceLock::new();

/// The bundle at `path`, loaded on first use.
fn bundle(path: &Path) -> Result<Bundle, String> {
    let cache = BUNDLES.get_or_init(|| Mutex::new(HashMap::new()));
    let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(b) = cache.get(path) {
        return Ok(b.clone());
    }
    if !path.is_file() {
        return Err(format!(
            "the CLAP bundle `{}` does not exist (or is not a file)",
            path.display()
        ));
    }
    // SAFETY: loading a library runs its code; the user named this bundle (or installed it in a
    // CLAP folder) for this host to run.
    let entry = unsafe { PluginEntry::load(path) }
        .map_err(|e| format!("the CLAP bundle `{}` cannot be loaded: {e}", path.display()))?;
    let plugins = entry
        .get_plugin_factory()
        .map(|f| {
            f.plugin_descriptors()
                .filter_map(|d| {
                    let id = d.id()?.to_string_lossy().into_owned();
                    let name = d.name().map_or(id.clone(), |n| n.to_string_lossy().into());
                    Some((id, name))
                })
                .collect()
        })
        .unwrap_or_default();
    let b = Bundle { entry, plugins };
    cache.insert(path.to_path_buf(), b.clone());
    Ok(b)
}

/// The folders searched for bundles, in order: each of `CLAP_PATH` (separated by `:`),
/// `~/.clap`, `/usr/lib/clap` (the CLAP specification's places on Linux).
pub fn search_paths() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("CLAP_PATH")
        .map(|v| std::env::split_paths(&v).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".clap"));
    }
    dirs.push(PathBuf::from("/usr/lib/clap"));
    dirs
}

/// Every `.clap` file under the search paths (recursively), in path order per folder.
pub fn bundle_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        entries.sort();
        for p in entries {
            if p.extension().is_some_and(|e| e == "clap") && p.is_file() {
                out.push(p);
            } else if p.is_dir() && depth < 8 {
                walk(&p, depth + 1, out);
            }
        }
    }
    let mut out = Vec::new();
    for dir in search_paths() {
        walk(&dir, 0, &mut out);
    }
    out.dedup();
    out
}

/// The bundle that has plugin `id`: `path` when given, else the first installed bundle with it
/// (unknown ids get the closest ids of that bundle, or of every installed bundle).
fn locate(id: &str, path: Option<&Path>) -> Result<(PathBuf, Bundle), String> {
    if let Some(path) = path {
        let b = bundle(path)?;
        if b.plugins.iter().any(|(i, _)| i == id) {
            return Ok((path.to_path_buf(), b));
        }
        let ids: Vec<String> = b.plugins.iter().map(|(i, _)| i.clone()).collect();
        return Err(format!(
            "the CLAP bundle `{}` has no plugin `{id}`; the closest: {}",
            path.display(),
            super::closest(id, &ids).join(", ")
        ));
    }
    let mut ids = Vec::new();
    for file in bundle_files() {
        let Ok(b) = bundle(&file) else {
            continue;
        };
        if b.plugins.iter().any(|(i, _)| i == id) {
            return Ok((file, b));
        }
        ids.extend(b.plugins.iter().map(|(i, _)| i.clone()));
    }
    Err(format!(
        "{} (searched: {})",
        super::unknown_message("CLAP plugin", id, &ids),
        search_paths()
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// The description of plugin `id` (in the bundle `path`, or installed).
pub fn find(id: &str, path: Option<&Path>) -> Result<PluginDesc, String> {
    let (file, b) = locate(id, path)?;
    let mut inst = create(&b.entry, id)?;
    let layout = Layout::of(&mut inst, id)?;
    let (controls, _) = controls(&mut inst);
    let h = inst.plugin_handle();
    let reports_latency = h.get_extension::<PluginLatency>().is_some();
    let has_state = h.get_extension::<PluginState>().is_some();
    let name = b
        .plugins
        .iter()
        .find(|(i, _)| i == id)
        .map_or(id.to_string(), |(_, n)| n.clone());
    Ok(PluginDesc {
        format: "clap".into(),
        uri: id.to_string(),
        path: Some(file.display().to_string()),
        name,
        inputs: layout.roles(),
        outputs: layout.outputs,
        controls,
        reports_latency,
        has_state,
    })
}

/// Every plugin of every installed bundle, described, in id order (plugins that cannot be
/// described are left out; bundles that cannot be loaded too).
pub fn list() -> Vec<PluginDesc> {
    let mut found: BTreeMap<String, PluginDesc> = BTreeMap::new();
    for file in bundle_files() {
        let Ok(b) = bundle(&file) else {
            continue;
        };
        for (id, _) in &b.plugins {
            if found.contains_key(id) {
                continue;
            }
            if let Ok(d) = find(id, Some(&file)) {
                found.insert(id.clone(), d);
            }
        }
    }
    found.into_values().collect()
}

/// A new (inactive) instance of `id`.
fn create(entry: &PluginEntry, id: &str) -> Result<PluginInstance<Handlers>, String> {
    let cid = CString::new(id).map_err(|_| format!("`{id}` is not a valid CLAP id"))?;
    PluginInstance::<Handlers>::new(
        |_| SharedCallbacks,
        |_| MainCallbacks,
        entry,
        &cid,
        &host_info(),
    )
    .map_err(|e| format!("CLAP plugin `{id}` failed to instantiate: {e}"))
}

/// The audio ports a node connects: the main input (port 0), an optional side-chain input (port
/// 1) and the main output (port 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Channels of input port 0.
    pub main: usize,
    /// Channels of input port 1 (0: none).
    pub key: usize,
    /// Channels of output port 0.
    pub outputs: usize,
}

impl Layout {
    fn of(inst: &mut PluginInstance<Handlers>, id: &str) -> Result<Self, String> {
        let h = inst.plugin_handle();
        let Some(ports) = h.get_extension::<PluginAudioPorts>() else {
            return Err(format!("CLAP plugin `{id}` declares no audio ports"));
        };
        let mut buf = AudioPortInfoBuffer::new();
        let mut channels = |input: bool| -> Vec<(usize, bool)> {
            (0..ports.count(&h, input))
                .filter_map(|i| {
                    let info = ports.get(&h, i, input, &mut buf)?;
                    Some((
                        info.channel_count as usize,
                        info.flags.contains(AudioPortFlags::IS_MAIN),
                    ))
                })
                .collect()
        };
        let (ins, outs) = (channels(true), channels(false));
        if ins.len() > 2 || outs.len() != 1 || ins.iter().skip(1).any(|&(_, main)| main) {
            return Err(format!(
                "CLAP plugin `{id}` has {} input and {} output audio ports; stemgraph hosts a \
                 main input (port 0), an optional side-chain input and one output",
                ins.len(),
                outs.len()
            ));
        }
        Ok(Self {
            main: ins.first().map_or(0, |p| p.0),
            key: ins.get(1).map_or(0, |p| p.0),
            outputs: outs[0].0,
        })
    }

    fn roles(&self) -> Vec<InputRole> {
        (0..self.main)
            .map(InputRole::Main)
            .chain((0..self.key).map(InputRole::Key))
            .collect()
    }
}

/// The parameters a node exposes (writable, not hidden), with their CLAP ids, in the plugin's
/// order.
fn controls(inst: &mut PluginInstance<Handlers>) -> (Vec<ControlDesc>, Vec<ClapId>) {
    let h = inst.plugin_handle();
    let Some(params) = h.get_extension::<PluginParams>() else {
        return (Vec::new(), Vec::new());
    };
    let mut buf = ParamInfoBuffer::new();
    let (mut descs, mut ids) = (Vec::new(), Vec::new());
    for i in 0..params.count(&h) {
        let Some(info) = params.get_info(&h, i, &mut buf) else {
            continue;
        };
        if info
            .flags
            .intersects(ParamInfoFlags::IS_READONLY | ParamInfoFlags::IS_HIDDEN)
        {
            continue;
        }
        let name = String::from_utf8_lossy(info.name).into_owned();
        let mut symbol = symbol_of(&name);
        if symbol.is_empty() || descs.iter().any(|d: &ControlDesc| d.symbol == symbol) {
            symbol = format!("p{}", info.id.get());
        }
        let stepped = info.flags.contains(ParamInfoFlags::IS_STEPPED);
        descs.push(ControlDesc {
            symbol,
            name,
            min: info.min_value,
            max: info.max_value,
            default: info.default_value,
            integer: stepped,
            toggled: stepped && info.min_value == 0.0 && info.max_value == 1.0,
            logarithmic: false,
        });
        ids.push(info.id);
    }
    (descs, ids)
}

/// A parameter's symbol from its name (see the module's documentation).
pub fn symbol_of(name: &str) -> String {
    let mut s = String::new();
    for ch in name.chars() {
        if ch.is_ascii_alphanumeric() {
            s.push(ch.to_ascii_lowercase());
        } else if !s.is_empty() && !s.ends_with('_') {
            s.push('_');
        }
    }
    while s.ends_with('_') {
        s.pop();
    }
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert_str(0, "p_");
    }
    s
}

/// The first line of a state file written by this host.
const STATE_HEADER: &str = "# stemgraph CLAP plugin state";

/// A plugin's state bytes as the text of a state file: a header naming the plugin, then the
/// bytes in hex, 64 to a line.
pub fn encode_state(id: &str, bytes: &[u8]) -> String {
    let mut s = format!("{STATE_HEADER}: {id}\n");
    for line in bytes.chunks(32) {
        for b in line {
            s.push_str(&format!("{b:02x}"));
        }
        s.push('\n');
    }
    s
}

/// The bytes of a state file's text (lines starting with `#` are comments).
pub fn decode_state(text: &str) -> Result<Vec<u8>, String> {
    let hex: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(|l| l.chars().filter(|c| !c.is_whitespace()))
        .collect();
    if !hex.len().is_multiple_of(2) || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err("it is not a CLAP state written by `stemgraph plugin save-state` (hex)".into());
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|e| e.to_string()))
        .collect()
}

/// Instantiates and activates `id` (from the bundle `path`, or installed) at `sample_rate` for
/// blocks of at most `max_block` frames, restoring `state` (text of [`encode_state`]) first.
pub fn instantiate(
    id: &str,
    path: Option<&Path>,
    sample_rate: f64,
    max_block: usize,
    state: Option<&str>,
) -> Result<Box<dyn Hosted>, String> {
    let (_, b) = locate(id, path)?;
    let mut inst = create(&b.entry, id)?;
    let layout = Layout::of(&mut inst, id)?;
    let (descs, ids) = controls(&mut inst);
    if let Some(text) = state {
        let bytes = decode_state(text).map_err(|e| format!("the state for `{id}`: {e}"))?;
        let h = inst.plugin_handle();
        let ext = h
            .get_extension::<PluginState>()
            .ok_or_else(|| format!("CLAP plugin `{id}` has no state extension"))?;
        ext.load(&h, &mut &bytes[..])
            .map_err(|e| format!("the state cannot be restored into `{id}`: {e}"))?;
    }
    let defaults = descs.iter().map(|d| d.default).collect();
    let host =
        instance::ClapInstance::activate(inst, id, layout, ids, defaults, sample_rate, max_block)?;
    Ok(Box::new(host))
}

/// The ids of the plugins in the bundle `path` (loads it).
pub fn ids(path: &Path) -> Result<Vec<String>, String> {
    Ok(bundle(path)?.plugins.into_iter().map(|(i, _)| i).collect())
}
