//! Audio buffers and the views processors see.
//!
//! The engine's sample type is [`Sample`] (`f64`) and its layout is **planar**: every channel is a
//! contiguous run of `stride` samples, channel `c` starting at `c * stride`. Planar f64 keeps
//! per-channel loops simple and vectorizable, gives filters and envelopes the headroom of double
//! precision, and a block of a few thousand frames still fits in the L2 cache. Every channel
//! starts on a 64-byte boundary (a cache line, an AVX-512 register): a vector load or store of a
//! whole line then touches one line, not two (a decoder writing 64-byte stores into 16-byte
//! aligned channels took twice the time in a test).

/// The sample type of every signal in the graph.
pub type Sample = f64;

/// Most channels any buffer in the graph holds (mono or stereo signals).
pub const MAX_CHANNELS: usize = 2;

/// Samples per cache line: the unit [`AudioBuffer`]s are allocated in.
const LINE_SAMPLES: usize = 8;

/// One cache line of samples, aligned to it.
#[derive(Debug, Default, Clone, Copy)]
#[repr(C, align(64))]
struct Line([Sample; LINE_SAMPLES]);

/// An owned, preallocated planar buffer of up to [`MAX_CHANNELS`] channels × `stride` frames.
#[derive(Debug, Default)]
pub struct AudioBuffer {
    /// The samples, in whole cache lines: channel `c` from sample `c * stride`.
    lines: Box<[Line]>,
    channels: usize,
    /// Samples from one channel's start to the next: `max_frames` rounded up to whole lines.
    stride: usize,
    max_frames: usize,
}

impl AudioBuffer {
    /// Allocates a zeroed buffer of `channels` × `max_frames`, each channel starting on a
    /// 64-byte boundary.
    pub fn new(channels: usize, max_frames: usize) -> Self {
        assert!(channels <= MAX_CHANNELS, "at most {MAX_CHANNELS} channels");
        let stride = max_frames.div_ceil(LINE_SAMPLES) * LINE_SAMPLES;
        Self {
            lines: vec![Line::default(); channels * stride / LINE_SAMPLES].into_boxed_slice(),
            channels,
            stride,
            max_frames,
        }
    }

    /// Every sample of the allocation.
    fn data(&self) -> &[Sample] {
        // SAFETY: a `Line` is `LINE_SAMPLES` samples and nothing else (`repr(C)`, its size a
        // multiple of its alignment), so the lines are that many times as many samples.
        unsafe {
            std::slice::from_raw_parts(self.lines.as_ptr().cast(), self.lines.len() * LINE_SAMPLES)
        }
    }

    /// Every sample of the allocation, mutable.
    fn data_mut(&mut self) -> &mut [Sample] {
        // SAFETY: as in `data`, borrowed mutably through `self`.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.lines.as_mut_ptr().cast(),
                self.lines.len() * LINE_SAMPLES,
            )
        }
    }

    /// Channel count.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Capacity in frames.
    pub fn max_frames(&self) -> usize {
        self.max_frames
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
        self.max_frames == other.max_frames && self.lines.len() == other.lines.len()
    }

    /// Sets how many channels are in use (at most the count it was allocated with).
    pub fn set_channels(&mut self, channels: usize) {
        debug_assert!(channels * self.stride <= self.lines.len() * LINE_SAMPLES);
        self.channels = channels;
    }

    /// One channel, `frames` long.
    pub fn channel(&self, c: usize, frames: usize) -> &[Sample] {
        debug_assert!(frames <= self.max_frames);
        let at = c * self.stride;
        &self.data()[at..at + frames]
    }

    /// One channel, `frames` long, mutable.
    pub fn channel_mut(&mut self, c: usize, frames: usize) -> &mut [Sample] {
        debug_assert!(frames <= self.max_frames);
        let at = c * self.stride;
        &mut self.data_mut()[at..at + frames]
    }

    /// A read-only view of the first `frames` frames.
    pub fn view(&self, frames: usize) -> AudioRef<'_> {
        debug_assert!(frames <= self.max_frames);
        AudioRef {
            data: self.data(),
            channels: self.channels,
            stride: self.stride,
            frames,
        }
    }

    /// A mutable view of the first `frames` frames.
    pub fn view_mut(&mut self, frames: usize) -> AudioMut<'_> {
        debug_assert!(frames <= self.max_frames);
        let (channels, stride) = (self.channels, self.stride);
        AudioMut {
            data: self.data_mut(),
            channels,
            stride,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every channel of every buffer starts on a 64-byte boundary, whatever the frame count, and
    /// the channels do not overlap: a full channel written leaves the next one as it was.
    #[test]
    fn channels_start_on_cache_lines_and_do_not_overlap() {
        for max_frames in [1, 7, 8, 9, 1023, 1024, 1027] {
            let mut b = AudioBuffer::new(MAX_CHANNELS, max_frames);
            assert_eq!(b.max_frames(), max_frames);
            for c in 0..MAX_CHANNELS {
                let start = b.channel(c, max_frames).as_ptr() as usize;
                assert_eq!(
                    start % 64,
                    0,
                    "channel {c} of {max_frames} frames at {start:#x}"
                );
                assert_eq!(b.view(max_frames).channel(c).as_ptr() as usize, start);
            }
            b.channel_mut(0, max_frames).fill(1.5);
            assert!(b.channel(1, max_frames).iter().all(|&x| x == 0.0));
            let mut view = b.view_mut(max_frames);
            let (l, r) = view.stereo_mut();
            assert_eq!((l.len(), r.len()), (max_frames, max_frames));
            assert!(l.iter().all(|&x| x == 1.5) && r.iter().all(|&x| x == 0.0));
            assert!(b.same_shape(&AudioBuffer::with_room(1, max_frames)));
            assert!(!b.same_shape(&AudioBuffer::new(MAX_CHANNELS, max_frames + 1)));
        }
    }
}
