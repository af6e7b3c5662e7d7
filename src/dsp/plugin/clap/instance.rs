//! A running CLAP instance ([`ClapInstance`]): activated on the control side, processed on the
//! audio thread with preallocated port descriptions and event lists.
//!
//! Parameter changes are `CLAP_EVENT_PARAM_VALUE` events with the sample offset the node gives
//! ([`Hosted::set_control_at`]); a change is sent only when the value differs from the last one
//! sent. The input event list is grown once at activation to hold [`EVENTS_PER_FRAME`] events per
//! frame of the largest block (plus two per parameter); when a block asks for more, the latest
//! value of each parameter that no longer fits is kept and sent at its offset (the list is then
//! sorted by time, in place), so the plugin always ends the block at the right values.

use super::{AudioCallbacks, Handlers, Layout};
use crate::dsp::plugin::host::Hosted;
use clack_extensions::latency::PluginLatency;
use clack_extensions::state::PluginState;
use clack_host::events::event_types::ParamValueEvent;
use clack_host::prelude::*;
use clack_host::process::PluginAudioProcessor as Processor;
use std::cell::RefCell;

/// Parameter events the input list holds per frame of the largest block without growing.
pub const EVENTS_PER_FRAME: usize = 4;
/// Events the plugin may send back per block before its list grows (inside the plugin's call).
const OUTPUT_EVENTS: usize = 256;

/// An activated CLAP plugin.
pub struct ClapInstance {
    /// The audio side (`None` only while being dropped).
    processor: Option<Processor<Handlers>>,
    /// The main-thread side (state, parameter values, deactivation), used on the control side
    /// only, never while `run` is running.
    instance: RefCell<PluginInstance<Handlers>>,
    id: String,
    layout: Layout,
    /// CLAP id of each control of the description.
    params: Vec<ClapId>,
    /// The value each parameter was last given (the plugin's own at activation).
    sent: Vec<f64>,
    /// Changes that did not fit in `events` this block: offset and value per parameter.
    overflow: Vec<Option<(u32, f64)>>,
    events: EventBuffer,
    /// How many events `events` holds without growing.
    room: usize,
    out_events: EventBuffer,
    in_ports: AudioPorts,
    out_ports: AudioPorts,
    latency: u32,
}

// SAFETY: clack keeps the main-thread side (`PluginInstance`) on one thread because CLAP asks
// main-thread calls to come from one thread. This host makes them (instantiate, state, values,
// deactivate) on the control side, one at a time, never during `run`; the node that owns this
// moves to the audio thread between those calls and back (hot reloads hand it over; nodes are
// dropped on the control side), which CLAP plugins see as calls from different threads at
// different times — the same contract LV2's `instantiate`/`run` split has.
unsafe impl Send for ClapInstance {}

impl ClapInstance {
    /// Activates `inst` (whose parameters are `params`, with `defaults`) and prepares its
    /// buffers for blocks of at most `max_block` frames.
    pub fn activate(
        mut inst: PluginInstance<Handlers>,
        id: &str,
        layout: Layout,
        params: Vec<ClapId>,
        defaults: Vec<f64>,
        sample_rate: f64,
        max_block: usize,
    ) -> Result<Self, String> {
        let max_block = max_block.max(1);
        let config = PluginAudioConfiguration {
            sample_rate,
            min_frames_count: 1,
            max_frames_count: max_block as u32,
        };
        let stopped = inst
            .activate(|_, _| AudioCallbacks, config)
            .map_err(|e| format!("CLAP plugin `{id}` failed to activate: {e}"))?;
        let h = inst.plugin_handle();
        let latency = h.get_extension::<PluginLatency>().map_or(0, |l| l.get(&h));
        let values = h
            .get_extension::<clack_extensions::params::PluginParams>()
            .map(|p| {
                params
                    .iter()
                    .zip(&defaults)
                    .map(|(&i, &d)| p.get_value(&h, i).unwrap_or(d))
                    .collect()
            })
            .unwrap_or(defaults);
        let room = max_block * EVENTS_PER_FRAME + 2 * params.len() + 16;
        Ok(Self {
            processor: Some(stopped.into()),
            instance: RefCell::new(inst),
            id: id.to_string(),
            layout,
            overflow: vec![None; params.len()],
            params,
            sent: values,
            events: grown(room),
            room,
            out_events: grown(OUTPUT_EVENTS),
            in_ports: AudioPorts::with_capacity(layout.main + layout.key, 2),
            out_ports: AudioPorts::with_capacity(layout.outputs, 1),
            latency,
        })
    }

    /// Queues what did not fit, in time order with the rest.
    fn flush_overflow(&mut self) {
        let mut any = false;
        for (i, o) in self.overflow.iter_mut().enumerate() {
            if let Some((t, v)) = o.take() {
                let e = ParamValueEvent::new(t, self.params[i], Pckn::match_all(), v);
                self.events.push(&e);
                any = true;
            }
        }
        if any {
            self.events.sort();
        }
    }
}

/// The first `frames` frames of a buffer as a CLAP input channel (one type for every port).
fn first_frames(
    frames: usize,
) -> impl for<'a> Fn(&'a mut Vec<f32>) -> InputChannel<'a, f32> + Copy {
    move |b| InputChannel::variable(&mut b[..frames])
}

/// An event list that holds `n` parameter events without growing.
fn grown(n: usize) -> EventBuffer {
    let mut b = EventBuffer::new();
    let e = ParamValueEvent::new(0, ClapId::new(0), Pckn::match_all(), 0.0);
    for _ in 0..n {
        b.push(&e);
    }
    b.clear();
    b
}

impl Hosted for ClapInstance {
    fn set_control(&mut self, i: usize, value: f64) {
        self.set_control_at(i, 0, value);
    }

    fn sample_accurate(&self) -> bool {
        true
    }

    fn set_control_at(&mut self, i: usize, offset: usize, value: f64) {
        let (Some(&id), Some(sent)) = (self.params.get(i), self.sent.get_mut(i)) else {
            return;
        };
        if *sent == value {
            return;
        }
        *sent = value;
        if self.events.len() as usize + self.params.len() < self.room {
            let e = ParamValueEvent::new(offset as u32, id, Pckn::match_all(), value);
            self.events.push(&e);
        } else {
            self.overflow[i] = Some((offset as u32, value));
        }
    }

    fn run(&mut self, frames: usize, inputs: &mut [Vec<f32>], outputs: &mut [Vec<f32>]) -> bool {
        self.flush_overflow();
        let Some(Ok(p)) = self
            .processor
            .as_mut()
            .map(|p| p.ensure_processing_started())
        else {
            self.events.clear();
            return false;
        };
        let (main, key) = inputs.split_at_mut(self.layout.main.min(inputs.len()));
        let ch = first_frames(frames);
        let ports = [
            AudioPortBuffer {
                channels: AudioPortBufferType::f32_input_only(main.iter_mut().map(ch)),
                latency: 0,
            },
            AudioPortBuffer {
                channels: AudioPortBufferType::f32_input_only(key.iter_mut().map(ch)),
                latency: 0,
            },
        ];
        let in_count = usize::from(self.layout.main > 0) + usize::from(self.layout.key > 0);
        let ins = self
            .in_ports
            .with_input_buffers(ports.into_iter().take(in_count));
        let mut outs = self.out_ports.with_output_buffers([AudioPortBuffer {
            channels: AudioPortBufferType::f32_output_only(
                outputs.iter_mut().map(move |b| &mut b[..frames]),
            ),
            latency: 0,
        }]);
        let ok = p
            .process(
                &ins,
                &mut outs,
                &self.events.as_input(),
                &mut self.out_events.as_output(),
                None,
                None,
            )
            .is_ok();
        self.events.clear();
        self.out_events.clear();
        ok
    }

    fn reset(&mut self) {
        if let Some(p) = self.processor.as_mut() {
            p.reset();
        }
    }

    fn reported_latency(&self) -> f64 {
        f64::from(self.latency)
    }

    fn control_values(&self) -> Vec<f64> {
        self.sent.clone()
    }

    fn save_state(&self) -> Result<String, String> {
        let mut inst = self.instance.borrow_mut();
        let h = inst.plugin_handle();
        let ext = h
            .get_extension::<PluginState>()
            .ok_or_else(|| format!("CLAP plugin `{}` has no state extension", self.id))?;
        let mut bytes = Vec::new();
        ext.save(&h, &mut bytes)
            .map_err(|e| format!("the state of `{}` cannot be saved: {e}", self.id))?;
        Ok(super::encode_state(&self.id, &bytes))
    }
}

impl Drop for ClapInstance {
    fn drop(&mut self) {
        if let Some(p) = self.processor.take() {
            self.instance.get_mut().deactivate(p.into_stopped());
        }
    }
}
