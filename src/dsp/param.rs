//! Parameters: what a processor declares, and the per-block values the engine hands it.
//!
//! A processor never stores its parameter values. It declares them ([`ParamInfo`]: name, unit,
//! range, default, glide) and reads them each block from a [`ParamBlock`]; the engine owns the
//! targets, the automation curves and the glides (see `engine::params`). A parameter is either
//! constant over a block (the common case, so coefficient updates can be skipped) or given per
//! sample, which makes every processor's output independent of the block size.
//!
//! Parameter ids follow one grammar: `<node id>.<param>`, with numbered parts such as EQ bands as
//! `<node id>.<n>.<param>` (so a [`ParamInfo::name`] may itself be `1.gain_db`).

use super::buffer::Sample;

/// How a parameter moves between two values when it glides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// Glides linearly in its own unit (decibels, percent, milliseconds of a gain…).
    Linear,
    /// Glides linearly in the logarithm of its value (frequencies, ratios, times).
    Log,
}

/// The unit a parameter is written in, for documentation and range messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Decibels.
    Decibels,
    /// Hertz.
    Hertz,
    /// Milliseconds.
    Milliseconds,
    /// A ratio such as 4 (for 4:1).
    Ratio,
    /// Percent, 0–100.
    Percent,
    /// Quality factor of a filter.
    Q,
    /// A dimensionless value (pan position −1…1, on/off as 0/1).
    Plain,
}

impl Unit {
    /// The suffix a parameter name in this unit carries.
    pub fn symbol(self) -> &'static str {
        match self {
            Unit::Decibels => "dB",
            Unit::Hertz => "Hz",
            Unit::Milliseconds => "ms",
            Unit::Ratio => ":1",
            Unit::Percent => "%",
            Unit::Q => "Q",
            Unit::Plain => "",
        }
    }
}

/// The default glide time of a smoothed parameter.
pub const DEFAULT_GLIDE_MS: f64 = 20.0;

/// The description of one parameter, fixed when the processor is built.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamInfo {
    /// The name within its node, e.g. `gain_db` or `2.freq_hz`.
    pub name: String,
    /// What the value means.
    pub unit: Unit,
    /// Smallest accepted value.
    pub min: f64,
    /// Largest accepted value.
    pub max: f64,
    /// Value when the recipe does not set it.
    pub default: f64,
    /// How it glides.
    pub scale: Scale,
    /// How long a jump takes to glide to its new value, in milliseconds (0: no glide).
    pub glide_ms: f64,
    /// Whether automation may drive it (parameters that change latency may not).
    pub automatable: bool,
    /// One line for the API reference.
    pub doc: &'static str,
}

impl ParamInfo {
    /// A linear, automatable parameter with the default glide.
    pub fn new(name: impl Into<String>, unit: Unit, min: f64, max: f64, default: f64) -> Self {
        Self {
            name: name.into(),
            unit,
            min,
            max,
            default,
            scale: Scale::Linear,
            glide_ms: DEFAULT_GLIDE_MS,
            automatable: true,
            doc: "",
        }
    }
    /// Glides in the logarithm of the value.
    pub fn log(mut self) -> Self {
        self.scale = Scale::Log;
        self
    }
    /// Sets the glide time.
    pub fn glide(mut self, ms: f64) -> Self {
        self.glide_ms = ms;
        self
    }
    /// Marks the parameter as fixed for the life of the processor.
    pub fn fixed(mut self) -> Self {
        self.automatable = false;
        self.glide_ms = 0.0;
        self
    }
    /// Sets the one-line description.
    pub fn doc(mut self, doc: &'static str) -> Self {
        self.doc = doc;
        self
    }
    /// Whether `value` lies in the accepted range.
    pub fn accepts(&self, value: f64) -> bool {
        value.is_finite() && value >= self.min && value <= self.max
    }
}

/// The values of one parameter over one block.
#[derive(Debug, Clone, Copy)]
pub enum ParamValues<'a> {
    /// The same value for every sample of the block.
    Constant(Sample),
    /// One value per sample.
    Varying(&'a [Sample]),
}

impl ParamValues<'_> {
    /// The value at frame `n` of the block.
    #[inline]
    pub fn at(&self, n: usize) -> Sample {
        match self {
            ParamValues::Constant(v) => *v,
            ParamValues::Varying(v) => v[n],
        }
    }
    /// The value at the start of the block.
    #[inline]
    pub fn first(&self) -> Sample {
        self.at(0)
    }
    /// Whether the value holds for the whole block.
    #[inline]
    pub fn is_constant(&self) -> bool {
        matches!(self, ParamValues::Constant(_))
    }
}

/// The storage of one parameter's per-block values, owned by the engine.
#[derive(Debug)]
pub struct ParamSlot {
    /// Per-sample values, valid for the block's frames when `constant` is false.
    pub values: Box<[Sample]>,
    /// The block's value when `constant` is true.
    pub value: Sample,
    /// Whether the value holds for the whole block.
    pub constant: bool,
}

impl ParamSlot {
    /// A slot able to hold `max_frames` values, constant at `value`.
    pub fn new(value: Sample, max_frames: usize) -> Self {
        Self {
            values: vec![value; max_frames].into_boxed_slice(),
            value,
            constant: true,
        }
    }
}

/// Every parameter of one processor for one block, in the order of [`super::Processor::params`].
#[derive(Clone, Copy)]
pub struct ParamBlock<'a> {
    slots: &'a [ParamSlot],
}

impl<'a> ParamBlock<'a> {
    /// Wraps the engine's slots.
    pub fn new(slots: &'a [ParamSlot]) -> Self {
        Self { slots }
    }
    /// The values of parameter `index` over this block.
    #[inline]
    pub fn get(&self, index: usize) -> ParamValues<'a> {
        let slot = &self.slots[index];
        if slot.constant {
            ParamValues::Constant(slot.value)
        } else {
            ParamValues::Varying(&slot.values)
        }
    }
    /// Whether every parameter is constant over this block.
    pub fn all_constant(&self) -> bool {
        self.slots.iter().all(|s| s.constant)
    }
}
