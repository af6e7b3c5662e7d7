//! The general decoding path through symphonia: probes the container, decodes the default audio
//! track packet by packet, and converts each decoded buffer exactly into planar `f64`.
//!
//! Symphonia's calls run under [`guard`]: should it panic on malformed data, the panic becomes
//! a [`Failure::Corrupt`] naming the file instead of ending the program (an album render keeps
//! its other songs), and the source stays failed from then on.

use std::fs::File;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;

use symphonia::core::audio::{Audio, AudioBuffer, GenericAudioBufferRef};
use symphonia::core::codecs::audio::well_known as codec_ids;
use symphonia::core::codecs::audio::{AudioCodecId, AudioDecoder, AudioDecoderOptions};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, SeekMode, SeekTo, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::units::Timestamp;

use super::{Failure, StemInfo};

/// Largest packet (in frames) whose buffer is preallocated at open.
const MAX_PREALLOC_FRAMES: u64 = 1 << 16;
/// Frames preallocated when the header does not state the largest packet (Vorbis blocks are at
/// most 8192 samples); a larger packet grows the buffer once.
const DEFAULT_PREALLOC_FRAMES: u64 = 8192;

/// One file decoded through symphonia, with the last decoded packet buffered.
pub(super) struct SymphoniaSource {
    reader: Box<dyn FormatReader>,
    decoder: Box<dyn AudioDecoder>,
    track_id: u32,
    channels: usize,
    /// Whether a file that ends mid-packet with no stated length is an error (lossless) or just
    /// the end (lossy streams often end with a partial frame).
    strict_end: bool,
    /// The decode reproduces the stored samples, so a seek lands on exactly the same ones.
    lossless: bool,
    pending: Vec<Vec<f64>>,
    pending_pos: usize,
    pending_len: usize,
    ended: bool,
    /// Set if symphonia panicked: its state is unknown, so nothing more is read.
    poisoned: bool,
}

impl SymphoniaSource {
    /// Probes `file` and prepares a decoder for its default audio track.
    pub(super) fn open(file: File, path: &Path) -> Result<(SymphoniaSource, StemInfo), Failure> {
        guard(|| Self::open_unguarded(file, path))
    }

    fn open_unguarded(file: File, path: &Path) -> Result<(SymphoniaSource, StemInfo), Failure> {
        let mss = MediaSourceStream::new(Box::new(file), Default::default());
        let mut hint = Hint::new();
        if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
            hint.with_extension(ext);
        }
        let reader = symphonia::default::get_probe()
            .probe(
                &hint,
                mss,
                FormatOptions::default(),
                MetadataOptions::default(),
            )
            .map_err(probe_failure)?;
        let track = reader
            .default_track(TrackType::Audio)
            .ok_or_else(|| Failure::Unsupported("it has no audio track".into()))?;
        let track_id = track.id;
        let frames = track.num_frames;
        let params = track
            .codec_params
            .as_ref()
            .and_then(|p| p.audio())
            .ok_or_else(|| Failure::Unsupported("its audio track has no codec parameters".into()))?
            .clone();
        let decoder = symphonia::default::get_codecs()
            .make_audio_decoder(&params, &AudioDecoderOptions::default())
            .map_err(|e| decode_failure(e, "no decoder for its codec"))?;
        let sample_rate = params.sample_rate.filter(|&r| r > 0).ok_or_else(|| {
            Failure::Unsupported("its header does not state a sample rate".into())
        })?;
        let channels = params
            .channels
            .as_ref()
            .or(decoder.codec_params().channels.as_ref())
            .map(|c| c.count())
            .filter(|&c| c > 0)
            .ok_or_else(|| Failure::Unsupported("its header does not state the channels".into()))?;
        let lossless = is_lossless(params.codec);
        let info = StemInfo {
            path: path.to_path_buf(),
            sample_rate,
            channels,
            frames,
            bits_per_sample: params.bits_per_sample.filter(|_| lossless),
            codec: decoder.codec_info().short_name.to_string(),
            lossless,
        };
        let prealloc = params
            .max_frames_per_packet
            .filter(|&n| n <= MAX_PREALLOC_FRAMES)
            .unwrap_or(DEFAULT_PREALLOC_FRAMES) as usize;
        let source = SymphoniaSource {
            reader,
            decoder,
            track_id,
            channels,
            strict_end: lossless && frames.is_none(),
            lossless,
            pending: vec![vec![0.0; prealloc]; channels],
            pending_pos: 0,
            pending_len: 0,
            ended: false,
            poisoned: false,
        };
        Ok((source, info))
    }

    /// Moves to frame `frame` through the demuxer's seek (sample-accurate: it lands at or before
    /// the frame, and the decoded frames before it are skipped). Only for lossless tracks whose
    /// timestamps count frames; `Ok(false)` when this file cannot seek that way (the caller
    /// decodes forward instead).
    pub(super) fn seek(&mut self, frame: u64, sample_rate: u32) -> Result<bool, Failure> {
        if self.poisoned {
            return Err(Failure::Corrupt(PANIC_REASON.into()));
        }
        guard(|| self.seek_unguarded(frame, sample_rate))
    }

    fn seek_unguarded(&mut self, frame: u64, sample_rate: u32) -> Result<bool, Failure> {
        let Some(track) = self.reader.tracks().iter().find(|t| t.id == self.track_id) else {
            return Ok(false);
        };
        let counts_frames = track
            .time_base
            .is_some_and(|tb| tb.numer.get() == 1 && tb.denom.get() == sample_rate);
        if !self.lossless || !counts_frames || track.start_ts != Timestamp::new(0) {
            return Ok(false);
        }
        let to = SeekTo::Timestamp {
            ts: Timestamp::new(frame as i64),
            track_id: self.track_id,
        };
        let seeked = match self.reader.seek(SeekMode::Accurate, to) {
            Ok(s) => s,
            Err(SymError::SeekError(_)) | Err(SymError::Unsupported(_)) => return Ok(false),
            Err(e) => return Err(decode_failure(e, "cannot seek")),
        };
        self.decoder.reset();
        self.pending_pos = 0;
        self.pending_len = 0;
        self.ended = false;
        let mut skip = seeked.required_ts.get() - seeked.actual_ts.get();
        while skip > 0 {
            if self.pending_pos == self.pending_len {
                if self.ended {
                    break;
                }
                self.decode_next()?;
                continue;
            }
            let n = (self.pending_len - self.pending_pos).min(skip as usize);
            self.pending_pos += n;
            skip -= n as i64;
        }
        Ok(true)
    }

    /// Reads up to `max` frames into `out`; 0 at the end of the stream.
    pub(super) fn read(&mut self, out: &mut [&mut [f64]], max: usize) -> Result<usize, Failure> {
        let mut done = 0;
        while done < max {
            if self.pending_pos < self.pending_len {
                let n = (max - done).min(self.pending_len - self.pending_pos);
                for (dst, src) in out.iter_mut().zip(&self.pending) {
                    dst[done..done + n]
                        .copy_from_slice(&src[self.pending_pos..self.pending_pos + n]);
                }
                self.pending_pos += n;
                done += n;
            } else if self.ended {
                break;
            } else if self.poisoned {
                return Err(Failure::Corrupt(PANIC_REASON.into()));
            } else {
                let result = guard(|| self.decode_next());
                if matches!(&result, Err(Failure::Corrupt(r)) if r == PANIC_REASON) {
                    self.poisoned = true;
                }
                result?;
            }
        }
        Ok(done)
    }

    /// Decodes the next packet of our track into `pending`, or marks the end of the stream.
    fn decode_next(&mut self) -> Result<(), Failure> {
        loop {
            let packet = match self.reader.next_packet() {
                Ok(Some(p)) => p,
                Ok(None) => {
                    self.ended = true;
                    return Ok(());
                }
                Err(SymError::IoError(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    if self.strict_end {
                        return Err(Failure::Corrupt(
                            "the file ends in the middle of a packet".into(),
                        ));
                    }
                    self.ended = true;
                    return Ok(());
                }
                Err(e) => return Err(decode_failure(e, "cannot read the next packet")),
            };
            if packet.track_id != self.track_id {
                continue;
            }
            let decoded = self
                .decoder
                .decode(&packet)
                .map_err(|e| decode_failure(e, "cannot decode a packet"))?;
            if decoded.num_planes() != self.channels {
                return Err(Failure::Unsupported(format!(
                    "its channel count changes mid-stream ({} to {})",
                    self.channels,
                    decoded.num_planes()
                )));
            }
            let frames = decoded.frames();
            if frames == 0 {
                continue;
            }
            for plane in &mut self.pending {
                if plane.len() < frames {
                    plane.resize(frames, 0.0);
                }
            }
            convert(&decoded, &mut self.pending);
            self.pending_pos = 0;
            self.pending_len = frames;
            return Ok(());
        }
    }
}

/// What a panic inside symphonia is reported as.
const PANIC_REASON: &str = "the decoder failed on malformed data";

/// Runs `f`, turning a panic inside it into a [`Failure::Corrupt`].
fn guard<T>(f: impl FnOnce() -> Result<T, Failure>) -> Result<T, Failure> {
    panic::catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err(Failure::Corrupt(PANIC_REASON.into())))
}

/// Codecs whose decode reproduces the stored samples exactly.
fn is_lossless(codec: AudioCodecId) -> bool {
    use codec_ids::*;
    let lossy_pcm = [CODEC_ID_PCM_ALAW, CODEC_ID_PCM_MULAW];
    let compressed = [
        CODEC_ID_FLAC,
        CODEC_ID_WAVPACK,
        CODEC_ID_MONKEYS_AUDIO,
        CODEC_ID_ALAC,
        CODEC_ID_TTA,
        CODEC_ID_RALF,
        CODEC_ID_TRUEHD,
    ];
    let pcm = [
        CODEC_ID_PCM_S32LE,
        CODEC_ID_PCM_S32BE,
        CODEC_ID_PCM_S24LE,
        CODEC_ID_PCM_S24BE,
        CODEC_ID_PCM_S16LE,
        CODEC_ID_PCM_S16BE,
        CODEC_ID_PCM_S8,
        CODEC_ID_PCM_U32LE,
        CODEC_ID_PCM_U32BE,
        CODEC_ID_PCM_U24LE,
        CODEC_ID_PCM_U24BE,
        CODEC_ID_PCM_U16LE,
        CODEC_ID_PCM_U16BE,
        CODEC_ID_PCM_U8,
        CODEC_ID_PCM_F32LE,
        CODEC_ID_PCM_F32BE,
        CODEC_ID_PCM_F64LE,
        CODEC_ID_PCM_F64BE,
    ];
    !lossy_pcm.contains(&codec) && (pcm.contains(&codec) || compressed.contains(&codec))
}

/// Maps a probe error: anything but an I/O failure means "not audio we know".
fn probe_failure(e: SymError) -> Failure {
    match e {
        SymError::IoError(e) if e.kind() == io::ErrorKind::UnexpectedEof => Failure::Unsupported(
            "it ended before any audio format could be recognised (truncated, or not audio)".into(),
        ),
        SymError::IoError(e) => Failure::Io(e),
        SymError::Unsupported(what) => {
            Failure::Unsupported(format!("no known audio format was found in it ({what})"))
        }
        other => Failure::Corrupt(other.to_string()),
    }
}

/// Maps a demux or decode error, with `context` saying what was being done.
fn decode_failure(e: SymError, context: &str) -> Failure {
    match e {
        SymError::IoError(e) if e.kind() != io::ErrorKind::UnexpectedEof => Failure::Io(e),
        SymError::Unsupported(what) => Failure::Unsupported(format!("{context}: {what}")),
        SymError::ResetRequired => Failure::Unsupported(format!(
            "{context}: the stream changes its track layout mid-file (chained stream)"
        )),
        other => Failure::Corrupt(format!("{context}: {other}")),
    }
}

/// Converts a decoded buffer exactly into the first `frames` samples of each plane of `dst`:
/// integers as `x / 2^(bits−1)` (unsigned ones re-centred first), floats widened.
fn convert(buf: &GenericAudioBufferRef<'_>, dst: &mut [Vec<f64>]) {
    match buf {
        GenericAudioBufferRef::U8(b) => planes(b, dst, |s| (f64::from(s) - 128.0) / 128.0),
        GenericAudioBufferRef::U16(b) => planes(b, dst, |s| (f64::from(s) - 32_768.0) / 32_768.0),
        GenericAudioBufferRef::U24(b) => planes(b, dst, |s| {
            (f64::from(s.inner()) - 8_388_608.0) / 8_388_608.0
        }),
        GenericAudioBufferRef::U32(b) => planes(b, dst, |s| {
            (f64::from(s) - 2_147_483_648.0) / 2_147_483_648.0
        }),
        GenericAudioBufferRef::S8(b) => planes(b, dst, |s| f64::from(s) / 128.0),
        GenericAudioBufferRef::S16(b) => planes(b, dst, |s| f64::from(s) / 32_768.0),
        GenericAudioBufferRef::S24(b) => planes(b, dst, |s| f64::from(s.inner()) / 8_388_608.0),
        GenericAudioBufferRef::S32(b) => planes(b, dst, |s| f64::from(s) / 2_147_483_648.0),
        GenericAudioBufferRef::F32(b) => planes(b, dst, f64::from),
        GenericAudioBufferRef::F64(b) => planes(b, dst, |s| s),
    }
}

/// Converts every plane of `buf` into the matching plane of `dst` with `f`.
fn planes<S: symphonia::core::audio::sample::Sample>(
    buf: &AudioBuffer<S>,
    dst: &mut [Vec<f64>],
    f: impl Fn(S) -> f64,
) {
    for (i, plane) in dst.iter_mut().enumerate() {
        if let Some(src) = buf.plane(i) {
            for (d, &s) in plane.iter_mut().zip(src) {
                *d = f(s);
            }
        }
    }
}
