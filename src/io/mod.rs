//! Files in and out (control side): streamed decoding of stems (with sample-rate conversion,
//! channel mapping and padding), the resampler, and writing masters (WAV, FLAC, and the lossy MP3 and Ogg Opus) atomically.
//!
//! Nothing here runs on the audio thread: a render's loop calls into it between blocks, and live
//! playback reads stems on a streamer thread.

pub mod atomic;
pub mod bext;
pub mod decode;
pub mod flac;
pub mod format;
pub mod lossy;
pub mod offset;
pub mod paths;
pub mod quantize;
pub mod resample;
pub mod temp;
pub mod wav;
