//! Audio buffers and the views processors see.
//!
//! The engine's sample type is [`Sample`] (`f64`) and its layout is **planar**: every channel is a
//! contiguous run of `stride` samples, channel `c` starting at `c * stride`. Planar f64 keeps
//! per-channel loops simple and vectorizable, gives filters and envelopes the headroom of double
//! precision, and a block of a few thousand frames still fits in the L2 cache.

/// The sample type of every signal in the graph.
pub type Sample = f64;

/// Most channels any buffer in the graph holds (mono or stereo signals).
pub const MAX_CHANNELS: usize = 2;

/// An owned, preallocated planar buffer of up to [`MAX_CHANNELS`] channels × `stride` frames.
#[derive(Debug, Default)]
pub struct AudioBuffer {
    data: Box<[Sample]>,
    channels: usize,
    stride: usize,
}

impl AudioBuffer {
    /// Allocates a zeroed buffer of `channels` × `max_frames`.
    pub fn new(channels: usize, max_frames: usize) -> Self {
        assert!(channels <= MAX_CHANNELS, "at most {MAX_CHANNELS} channels");
        Self {
            data: vec![0.0; channels * max_frames].into_boxed_slice(),
            channels,
            stride: max_frames,
        }
    }

    /// Channel count.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Capacity in frames.
    pub fn max_frames(&self) -> usize {
        self.stride
    }

    /// A zeroed buffer allocated for [`MAX_CHANNELS`] × `max_frames` with `channels` in use:
    /// one the engine can swap with any buffer of its pool ([`AudioBuffer::same_shape`]).
    pub fn with_room(channels: usize, max_frames: usize) -> Self {
        let mut b = Self::new(MAX_CHANNELS, max_frames);
        b.set_channels(channels);
        b
    }

    /// Whether `other` has the same allocation size and frame capacity, so that the two can
    /// trade places (`std::mem::swap`) whatever channel counts either is later set to.
    pub fn same_shape(&self, other: &AudioBuffer) -> bool {
        self.stride == other.stride && self.data.len() == other.data.len()
    }

    /// Sets how many channels are in use (at most the count it was allocated with).
    pub fn set_channels(&mut self, channels: usize) {
        debug_assert!(channels * self.stride <= self.data.len());
        self.channels = channels;
    }

    /// One channel, `frames` long.
    pub fn channel(&self, c: usize, frames: usize) -> &[Sample] {
        &self.data[c * self.stride..c * self.stride + frames]
    }

    /// One channel, `frames` long, mutable.
    pub fn channel_mut(&mut self, c: usize, frames: usize) -> &mut [Sample] {
        &mut self.data[c * self.stride..c * self.stride + frames]
    }

    /// A read-only view of the first `frames` frames.
    pub fn view(&self, frames: usize) -> AudioRef<'_> {
        debug_assert!(frames <= self.stride);
        AudioRef {
            data: &self.data,
            channels: self.channels,
            stride: self.stride,
            frames,
        }
    }

    /// A mutable view of the first `frames` frames.
    pub fn view_mut(&mut self, frames: usize) -> AudioMut<'_> {
        debug_assert!(frames <= self.stride);
        AudioMut {
            data: &mut self.data,
            channels: self.channels,
            stride: self.stride,
            frames,
        }
    }

    /// Zeroes the first `frames` frames of every channel.
    pub fn clear(&mut self, frames: usize) {
        for c in 0..self.channels {
            self.channel_mut(c, frames).fill(0.0);
        }
    }
}

/// A read-only planar view of one block.
#[derive(Clone, Copy)]
pub struct AudioRef<'a> {
    data: &'a [Sample],
    channels: usize,
    stride: usize,
    frames: usize,
}

impl<'a> AudioRef<'a> {
    /// Channel count.
    pub fn channels(&self) -> usize {
        self.channels
    }
    /// Frames in this block.
    pub fn frames(&self) -> usize {
        self.frames
    }
    /// One channel of this block.
    pub fn channel(&self, c: usize) -> &'a [Sample] {
        &self.data[c * self.stride..c * self.stride + self.frames]
    }
    /// Runs `f` on the channels as slices (on the stack for up to eight channels: no
    /// allocation there).
    pub fn with_planes<R>(&self, f: impl FnOnce(&[&[Sample]]) -> R) -> R {
        const ON_STACK: usize = 8;
        if self.channels > ON_STACK {
            let planes: Vec<&[Sample]> = (0..self.channels).map(|c| self.channel(c)).collect();
            return f(&planes);
        }
        let mut planes: [&[Sample]; ON_STACK] = Default::default();
        for (c, p) in planes.iter_mut().enumerate().take(self.channels) {
            *p = self.channel(c);
        }
        f(&planes[..self.channels])
    }
    /// The frames `start..end` of this block.
    pub fn slice(&self, start: usize, end: usize) -> AudioRef<'a> {
        assert!(start <= end && end <= self.frames);
        AudioRef {
            data: &self.data[start..],
            channels: self.channels,
            stride: self.stride,
            frames: end - start,
        }
    }
}

/// A mutable planar view of one block: processors work on it in place.
pub struct AudioMut<'a> {
    data: &'a mut [Sample],
    channels: usize,
    stride: usize,
    frames: usize,
}

impl<'a> AudioMut<'a> {
    /// Channel count.
    pub fn channels(&self) -> usize {
        self.channels
    }
    /// Frames in this block.
    pub fn frames(&self) -> usize {
        self.frames
    }
    /// One channel of this block.
    pub fn channel(&self, c: usize) -> &[Sample] {
        &self.data[c * self.stride..c * self.stride + self.frames]
    }
    /// One channel of this block, mutable.
    pub fn channel_mut(&mut self, c: usize) -> &mut [Sample] {
        &mut self.data[c * self.stride..c * self.stride + self.frames]
    }
    /// Both channels of a stereo block at once.
    ///
    /// # Panics
    /// If the block has fewer than two channels (a construction-time contract of stereo processors).
    pub fn stereo_mut(&mut self) -> (&mut [Sample], &mut [Sample]) {
        assert!(self.channels >= 2);
        let (l, r) = self.data.split_at_mut(self.stride);
        (&mut l[..self.frames], &mut r[..self.frames])
    }
    /// Every channel as a mutable slice, handed to `f` one at a time.
    pub fn for_each_channel(&mut self, mut f: impl FnMut(usize, &mut [Sample])) {
        for c in 0..self.channels {
            f(c, self.channel_mut(c));
        }
    }
    /// A read-only view of the same block.
    pub fn as_ref(&self) -> AudioRef<'_> {
        AudioRef {
            data: self.data,
            channels: self.channels,
            stride: self.stride,
            frames: self.frames,
        }
    }
}
