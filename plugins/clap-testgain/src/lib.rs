//! stemgraph's CLAP test plugins (built with `clack-plugin`), one bundle with three plugins:
//!
//! - `org.stemgraph.testgain-stereo`: a stereo gain,
//! - `org.stemgraph.testgain-mono`: the same on one channel,
//! - `org.stemgraph.testgain-key`: stereo, with a second (side-chain, `key`) stereo input added to
//!   the main input before the gain,
//! - `org.stemgraph.testgain-broken`: listed, but fails to instantiate.
//!
//! A bundle whose file name ends with the value of `STEMGRAPH_TESTGAIN_CRASH` aborts the process
//! when it is loaded (the scan of `stemgraph plugins` must survive it).
//!
//! Each has one parameter, `gain_db` (−60 … +12 dB, default 0), changed by **sample-accurate
//! parameter events**: a change applies from the event's sample offset on, with no smoothing, so
//! a test sees the exact sample. The output is the gained input delayed by [`LATENCY`] samples (a
//! pure delay), which the plugin reports through the latency extension. Its state (state
//! extension) is the gain, in a small binary record ([`STATE_MAGIC`] then the value as an `f64`,
//! little-endian).
//!
//! The tests of stemgraph's CLAP host (`tests/plugins_clap.rs`) build this crate and load the
//! library as a `.clap` file.

use clack_extensions::audio_ports::{
    AudioPortFlags, AudioPortInfo, AudioPortInfoWriter, AudioPortType, PluginAudioPorts,
    PluginAudioPortsImpl,
};
use clack_extensions::latency::{PluginLatency, PluginLatencyImpl};
use clack_extensions::params::{
    ParamDisplayWriter, ParamInfo, ParamInfoFlags, ParamInfoWriter, PluginAudioProcessorParams,
    PluginMainThreadParams, PluginParams,
};
use clack_extensions::state::{PluginState, PluginStateImpl};
use clack_plugin::entry::prelude::{EntryFactories, EntryLoadError, PluginFactoryImpl};
use clack_plugin::entry::prelude::{HostInfo, PluginFactoryWrapper, PluginInstance};
use clack_plugin::events::spaces::CoreEventSpace;
use clack_plugin::prelude::*;
use clack_plugin::stream::{InputStream, OutputStream};
use std::ffi::CStr;
use std::fmt::Write as _;
use std::io::{Read, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};

/// The delay inside every plugin of the bundle, in samples (reported as its latency).
pub const LATENCY: usize = 64;
/// The id of the `gain_db` parameter.
const GAIN_ID: ClapId = ClapId::new(1);
/// The range and default of `gain_db`.
const GAIN_MIN: f64 = -60.0;
const GAIN_MAX: f64 = 12.0;
const GAIN_DEFAULT: f64 = 0.0;
/// The first bytes of a saved state.
pub const STATE_MAGIC: &[u8; 8] = b"SGTGAIN1";

/// Which plugin of the bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    Stereo,
    Mono,
    Key,
    Broken,
}

impl Variant {
    const ALL: [Variant; 4] = [
        Variant::Stereo,
        Variant::Mono,
        Variant::Key,
        Variant::Broken,
    ];

    fn id(self) -> &'static str {
        match self {
            Variant::Stereo => "org.stemgraph.testgain-stereo",
            Variant::Mono => "org.stemgraph.testgain-mono",
            Variant::Key => "org.stemgraph.testgain-key",
            Variant::Broken => "org.stemgraph.testgain-broken",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Variant::Stereo => "stemgraph test gain (stereo)",
            Variant::Mono => "stemgraph test gain (mono)",
            Variant::Key => "stemgraph test gain (stereo + key)",
            Variant::Broken => "stemgraph test gain that fails to instantiate",
        }
    }

    fn channels(self) -> usize {
        match self {
            Variant::Mono => 1,
            Variant::Stereo | Variant::Key | Variant::Broken => 2,
        }
    }
}

/// A level in dB as a factor.
fn db_to_gain(db: f64) -> f32 {
    10f64.powf(db / 20.0) as f32
}

/// The plugin type (every variant).
pub struct TestGain;

impl Plugin for TestGain {
    type AudioProcessor<'a> = Processor<'a>;
    type Shared<'a> = Shared;
    type MainThread<'a> = MainThread<'a>;

    fn declare_extensions(builder: &mut PluginExtensions<Self>, _shared: Option<&Shared>) {
        builder
            .register::<PluginAudioPorts>()
            .register::<PluginParams>()
            .register::<PluginState>()
            .register::<PluginLatency>();
    }
}

/// What the main thread and the audio thread share: the variant and the gain (as `f64` bits).
pub struct Shared {
    variant: Variant,
    gain_db: AtomicU64,
}

impl Shared {
    fn gain_db(&self) -> f64 {
        f64::from_bits(self.gain_db.load(Ordering::Relaxed))
    }
    fn set_gain_db(&self, v: f64) {
        let v = v.clamp(GAIN_MIN, GAIN_MAX);
        self.gain_db.store(v.to_bits(), Ordering::Relaxed);
    }
    /// Applies a parameter-value event; true when it changed the gain.
    fn handle(&self, event: &UnknownEvent) -> bool {
        if let Some(CoreEventSpace::ParamValue(e)) = event.as_core_event() {
            if e.param_id() == Some(GAIN_ID) {
                self.set_gain_db(e.value());
                return true;
            }
        }
        false
    }
}

impl PluginShared<'_> for Shared {}

/// The main-thread side.
pub struct MainThread<'a> {
    shared: &'a Shared,
}

impl<'a> PluginMainThread<'a, Shared> for MainThread<'a> {}

/// The audio side: the delay line and scratch buffers (allocated at activation).
pub struct Processor<'a> {
    shared: &'a Shared,
    /// One ring of [`LATENCY`] samples per channel.
    ring: Vec<[f32; LATENCY]>,
    pos: usize,
    /// The block being processed, per channel.
    scratch: Vec<Vec<f32>>,
}

impl<'a> PluginAudioProcessor<'a, Shared, MainThread<'a>> for Processor<'a> {
    fn activate(
        _host: HostAudioProcessorHandle<'a>,
        _main_thread: &MainThread<'a>,
        shared: &'a Shared,
        config: PluginAudioConfiguration,
    ) -> Result<Self, PluginError> {
        let ch = shared.variant.channels();
        Ok(Self {
            shared,
            ring: vec![[0.0; LATENCY]; ch],
            pos: 0,
            scratch: vec![vec![0.0; config.max_frames_count as usize]; ch],
        })
    }

    fn process(
        &mut self,
        _process: Process,
        mut audio: Audio,
        events: Events,
    ) -> Result<ProcessStatus, PluginError> {
        let frames = (audio.frames_count() as usize).min(self.scratch[0].len());
        self.read_inputs(&audio, frames)?;
        for batch in events.input.batch() {
            for e in batch.events() {
                self.shared.handle(e);
            }
            let start = batch.first_sample().min(frames);
            let end = batch
                .next_batch_first_sample()
                .unwrap_or(frames)
                .min(frames);
            self.gain_and_delay(start, end);
        }
        let mut port = audio
            .output_port(0)
            .ok_or(PluginError::Message("no output port"))?;
        let mut out = port
            .channels()?
            .into_f32()
            .ok_or(PluginError::Message("f32 output expected"))?;
        for (c, buf) in self.scratch.iter().enumerate() {
            let o = out
                .channel_mut(c as u32)
                .ok_or(PluginError::Message("an output channel is missing"))?;
            o[..frames].copy_from_slice(&buf[..frames]);
        }
        Ok(ProcessStatus::Continue)
    }

    fn reset(&mut self) {
        self.ring.iter_mut().for_each(|r| r.fill(0.0));
        self.pos = 0;
    }
}

impl Processor<'_> {
    /// Copies the main input (plus the key input, for the key variant) into `scratch`.
    fn read_inputs(&mut self, audio: &Audio, frames: usize) -> Result<(), PluginError> {
        let port = audio
            .input_port(0)
            .ok_or(PluginError::Message("no input port"))?;
        let input = port
            .channels()?
            .into_f32()
            .ok_or(PluginError::Message("f32 input expected"))?;
        for (c, buf) in self.scratch.iter_mut().enumerate() {
            let i = input
                .channel(c as u32)
                .ok_or(PluginError::Message("an input channel is missing"))?;
            buf[..frames].copy_from_slice(&i[..frames]);
        }
        if self.shared.variant != Variant::Key {
            return Ok(());
        }
        if let Some(port) = audio.input_port(1) {
            if let Some(key) = port.channels()?.into_f32() {
                for (c, buf) in self.scratch.iter_mut().enumerate() {
                    if let Some(k) = key.channel(c as u32) {
                        buf[..frames].iter_mut().zip(k).for_each(|(b, &k)| *b += k);
                    }
                }
            }
        }
        Ok(())
    }

    /// Frames `start..end` of `scratch`: times the current gain, through the delay line.
    fn gain_and_delay(&mut self, start: usize, end: usize) {
        let g = db_to_gain(self.shared.gain_db());
        for n in start..end {
            for (c, buf) in self.scratch.iter_mut().enumerate() {
                let x = buf[n] * g;
                buf[n] = self.ring[c][self.pos];
                self.ring[c][self.pos] = x;
            }
            self.pos = (self.pos + 1) % LATENCY;
        }
    }
}

impl PluginAudioPortsImpl for MainThread<'_> {
    fn count(&self, is_input: bool) -> u32 {
        if is_input && self.shared.variant == Variant::Key {
            2
        } else {
            1
        }
    }

    fn get(&self, index: u32, is_input: bool, writer: &mut AudioPortInfoWriter) {
        let ch = self.shared.variant.channels() as u32;
        let port_type = if ch == 1 {
            AudioPortType::MONO
        } else {
            AudioPortType::STEREO
        };
        match (index, is_input) {
            (0, _) => writer.set(&AudioPortInfo {
                id: ClapId::new(0),
                name: b"main",
                channel_count: ch,
                flags: AudioPortFlags::IS_MAIN,
                port_type: Some(port_type),
                in_place_pair: None,
            }),
            (1, true) if self.shared.variant == Variant::Key => writer.set(&AudioPortInfo {
                id: ClapId::new(1),
                name: b"key",
                channel_count: 2,
                flags: AudioPortFlags::empty(),
                port_type: Some(AudioPortType::STEREO),
                in_place_pair: None,
            }),
            _ => {}
        }
    }
}

impl PluginLatencyImpl for MainThread<'_> {
    fn get(&self) -> u32 {
        LATENCY as u32
    }
}

impl PluginStateImpl for MainThread<'_> {
    fn save(&self, output: &mut OutputStream) -> Result<(), PluginError> {
        output.write_all(STATE_MAGIC)?;
        output.write_all(&self.shared.gain_db().to_le_bytes())?;
        Ok(())
    }

    fn load(&self, input: &mut InputStream) -> Result<(), PluginError> {
        let mut buf = [0u8; 16];
        input.read_exact(&mut buf)?;
        if &buf[..8] != STATE_MAGIC {
            return Err(PluginError::Message("not a state of this plugin"));
        }
        let mut v = [0u8; 8];
        v.copy_from_slice(&buf[8..]);
        let v = f64::from_le_bytes(v);
        if !(GAIN_MIN..=GAIN_MAX).contains(&v) {
            return Err(PluginError::Message("the saved gain is out of range"));
        }
        self.shared.set_gain_db(v);
        Ok(())
    }
}

impl PluginMainThreadParams for MainThread<'_> {
    fn count(&self) -> u32 {
        1
    }

    fn get_info(&self, param_index: u32, info: &mut ParamInfoWriter) {
        if param_index != 0 {
            return;
        }
        info.set(&ParamInfo {
            id: GAIN_ID,
            flags: ParamInfoFlags::IS_AUTOMATABLE,
            cookie: Default::default(),
            name: b"gain_db",
            module: b"",
            min_value: GAIN_MIN,
            max_value: GAIN_MAX,
            default_value: GAIN_DEFAULT,
        })
    }

    fn get_value(&self, param_id: ClapId) -> Option<f64> {
        (param_id == GAIN_ID).then(|| self.shared.gain_db())
    }

    fn value_to_text(
        &self,
        param_id: ClapId,
        value: f64,
        writer: &mut ParamDisplayWriter,
    ) -> std::fmt::Result {
        if param_id == GAIN_ID {
            write!(writer, "{value:.2} dB")
        } else {
            Err(std::fmt::Error)
        }
    }

    fn text_to_value(&self, param_id: ClapId, text: &CStr) -> Option<f64> {
        let text = text.to_str().ok()?;
        (param_id == GAIN_ID)
            .then(|| text.trim().trim_end_matches("dB").trim().parse().ok())
            .flatten()
    }

    fn flush(&self, input: &InputEvents, _output: &mut OutputEvents) {
        for e in input {
            self.shared.handle(e);
        }
    }
}

impl PluginAudioProcessorParams for Processor<'_> {
    fn flush(&mut self, input: &InputEvents, _output: &mut OutputEvents) {
        for e in input {
            self.shared.handle(e);
        }
    }
}

/// The bundle's plugin factory: the three variants.
pub struct Factory {
    descriptors: Vec<(Variant, PluginDescriptor)>,
}

impl PluginFactoryImpl for Factory {
    fn plugin_count(&self) -> u32 {
        self.descriptors.len() as u32
    }

    fn plugin_descriptor(&self, index: u32) -> Option<&PluginDescriptor> {
        self.descriptors.get(index as usize).map(|(_, d)| d)
    }

    fn create_plugin<'a>(
        &'a self,
        host_info: HostInfo<'a>,
        plugin_id: &CStr,
    ) -> Option<PluginInstance<'a>> {
        let (variant, desc) = self
            .descriptors
            .iter()
            .find(|(_, d)| d.id() == Some(plugin_id))?;
        let variant = *variant;
        Some(PluginInstance::new::<TestGain>(
            host_info,
            desc,
            move |_host| {
                if variant == Variant::Broken {
                    return Err(PluginError::Message("this test plugin never instantiates"));
                }
                Ok(Shared {
                    variant,
                    gain_db: AtomicU64::new(GAIN_DEFAULT.to_bits()),
                })
            },
            |_host, shared| Ok(MainThread { shared }),
        ))
    }
}

/// The bundle's entry point.
pub struct TestGainEntry {
    factory: PluginFactoryWrapper<Factory>,
}

impl Entry for TestGainEntry {
    fn new(bundle_path: Option<&CStr>) -> Result<Self, EntryLoadError> {
        use clack_plugin::plugin::features::{AUDIO_EFFECT, MONO, STEREO};
        if let (Some(crash), Some(path)) =
            (std::env::var_os("STEMGRAPH_TESTGAIN_CRASH"), bundle_path)
        {
            if path.to_bytes().ends_with(crash.as_encoded_bytes()) {
                std::process::abort();
            }
        }
        let descriptors = Variant::ALL
            .iter()
            .map(|&v| {
                let layout = if v.channels() == 1 { MONO } else { STEREO };
                let d = PluginDescriptor::new(v.id(), v.name())
                    .with_vendor("stemgraph")
                    .with_features([AUDIO_EFFECT, layout]);
                (v, d)
            })
            .collect();
        Ok(Self {
            factory: PluginFactoryWrapper::new(Factory { descriptors }),
        })
    }

    fn declare_factories<'a>(&'a self, builder: &mut EntryFactories<'a>) {
        builder.register_factory(&self.factory);
    }
}

clack_export_entry!(TestGainEntry);
