//! Header parsing for the plain-PCM fast path: walks the chunks of a RIFF/WAVE or FORM/AIFF
//! file up to its sample data. Only layouts the fast path converts are accepted (16/24/32-bit
//! integer, 32-bit float WAV; 16/24/32-bit integer AIFF); anything else returns `None` and goes
//! to symphonia.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

/// The tail of the KSDATAFORMAT_SUBTYPE GUIDs (after the 2-byte format tag) in
/// WAVE_FORMAT_EXTENSIBLE headers.
const SUBTYPE_GUID_TAIL: [u8; 14] = [
    0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71,
];

/// How one stored sample is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Encoding {
    I16Le,
    I24Le,
    I32Le,
    F32Le,
    I16Be,
    I24Be,
    I32Be,
}

impl Encoding {
    /// Bytes per sample.
    pub(super) fn bytes(self) -> usize {
        match self {
            Encoding::I16Le | Encoding::I16Be => 2,
            Encoding::I24Le | Encoding::I24Be => 3,
            Encoding::I32Le | Encoding::F32Le | Encoding::I32Be => 4,
        }
    }

    /// The codec's short name, as symphonia would give it.
    pub(super) fn codec_name(self) -> &'static str {
        match self {
            Encoding::I16Le => "pcm_s16le",
            Encoding::I24Le => "pcm_s24le",
            Encoding::I32Le => "pcm_s32le",
            Encoding::F32Le => "pcm_f32le",
            Encoding::I16Be => "pcm_s16be",
            Encoding::I24Be => "pcm_s24be",
            Encoding::I32Be => "pcm_s32be",
        }
    }
}

/// What the header says, with the file positioned at the first sample.
pub(super) struct PcmHeader {
    pub(super) encoding: Encoding,
    pub(super) channels: usize,
    pub(super) sample_rate: u32,
    /// Frames the header promises.
    pub(super) frames_promised: u64,
    /// Frames the data chunk can hold (at most `frames_promised`).
    pub(super) frames_stored: u64,
}

/// Parses a WAV or AIFF header the fast path handles, or returns `None`.
pub(super) fn parse(file: &mut File) -> io::Result<Option<PcmHeader>> {
    let mut magic = [0u8; 12];
    file.read_exact(&mut magic)?;
    match (&magic[0..4], &magic[8..12]) {
        (b"RIFF", b"WAVE") => parse_wav(file),
        (b"FORM", b"AIFF") => parse_aiff(file),
        _ => Ok(None),
    }
}

/// Reads a chunk header: its id and its length.
fn chunk_header(file: &mut File, big_endian: bool) -> io::Result<([u8; 4], u32)> {
    let mut h = [0u8; 8];
    file.read_exact(&mut h)?;
    let len = [h[4], h[5], h[6], h[7]];
    let len = if big_endian {
        u32::from_be_bytes(len)
    } else {
        u32::from_le_bytes(len)
    };
    Ok(([h[0], h[1], h[2], h[3]], len))
}

/// Skips a chunk body of `len` bytes and its pad byte.
fn skip_chunk(file: &mut File, len: u32) -> io::Result<()> {
    file.seek(SeekFrom::Current(i64::from(len) + i64::from(len & 1)))?;
    Ok(())
}

/// Reads a small chunk body (with its pad byte); `None` if it is longer than `max`.
fn read_small_chunk(file: &mut File, len: u32, max: u32) -> io::Result<Option<Vec<u8>>> {
    if len > max {
        return Ok(None);
    }
    let mut buf = vec![0u8; len as usize + (len & 1) as usize];
    file.read_exact(&mut buf)?;
    Ok(Some(buf))
}

/// Walks RIFF/WAVE chunks to `data`.
fn parse_wav(file: &mut File) -> io::Result<Option<PcmHeader>> {
    let mut format = None;
    loop {
        let (id, len) = chunk_header(file, false)?;
        match &id {
            b"fmt " => match read_small_chunk(file, len, 1024)?.and_then(|b| parse_fmt(&b)) {
                Some(f) => format = Some(f),
                None => return Ok(None),
            },
            b"data" => {
                let Some((encoding, channels, sample_rate)) = format else {
                    return Ok(None);
                };
                if len == u32::MAX {
                    return Ok(None); // length unknown (streamed): leave it to symphonia
                }
                let frames = u64::from(len) / (channels * encoding.bytes()) as u64;
                return Ok(Some(PcmHeader {
                    encoding,
                    channels,
                    sample_rate,
                    frames_promised: frames,
                    frames_stored: frames,
                }));
            }
            _ => skip_chunk(file, len)?,
        }
    }
}

/// Parses a `fmt ` chunk body into (encoding, channels, sample rate).
fn parse_fmt(buf: &[u8]) -> Option<(Encoding, usize, u32)> {
    if buf.len() < 16 {
        return None;
    }
    let u16_at = |o: usize| u16::from_le_bytes([buf[o], buf[o + 1]]);
    let mut tag = u16_at(0);
    let channels = usize::from(u16_at(2));
    let sample_rate = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
    let block_align = usize::from(u16_at(12));
    let bits = u16_at(14);
    if tag == 0xFFFE {
        // WAVE_FORMAT_EXTENSIBLE: the real tag is the first two bytes of the sub-format GUID.
        if buf.len() < 40 || u16_at(18) != bits || buf[26..40] != SUBTYPE_GUID_TAIL {
            return None;
        }
        tag = u16_at(24);
    }
    let encoding = match (tag, bits) {
        (1, 16) => Encoding::I16Le,
        (1, 24) => Encoding::I24Le,
        (1, 32) => Encoding::I32Le,
        (3, 32) => Encoding::F32Le,
        _ => return None,
    };
    let valid = channels > 0 && sample_rate > 0 && block_align == channels * encoding.bytes();
    valid.then_some((encoding, channels, sample_rate))
}

/// What an AIFF `COMM` chunk says.
struct Comm {
    encoding: Encoding,
    channels: usize,
    frames: u64,
    sample_rate: u32,
}

/// Walks FORM/AIFF chunks to find `COMM` and `SSND`, then seeks to the first sample.
fn parse_aiff(file: &mut File) -> io::Result<Option<PcmHeader>> {
    let mut comm = None;
    let mut sound = None; // (first sample's byte offset, bytes of sample data)
    while comm.is_none() || sound.is_none() {
        let (id, len) = chunk_header(file, true)?;
        match &id {
            b"COMM" => match read_small_chunk(file, len, 1024)?.and_then(|b| parse_comm(&b)) {
                Some(c) => comm = Some(c),
                None => return Ok(None),
            },
            b"SSND" => {
                let mut h = [0u8; 8];
                file.read_exact(&mut h)?;
                let offset = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
                let start = file.stream_position()? + u64::from(offset);
                let bytes = u64::from(len).saturating_sub(8 + u64::from(offset));
                sound = Some((start, bytes));
                if comm.is_none() {
                    skip_chunk(file, len.saturating_sub(8))?;
                }
            }
            _ => skip_chunk(file, len)?,
        }
    }
    let (Some(comm), Some((start, bytes))) = (comm, sound) else {
        return Ok(None);
    };
    file.seek(SeekFrom::Start(start))?;
    let stored = bytes / (comm.channels * comm.encoding.bytes()) as u64;
    Ok(Some(PcmHeader {
        encoding: comm.encoding,
        channels: comm.channels,
        sample_rate: comm.sample_rate,
        frames_promised: comm.frames,
        frames_stored: stored.min(comm.frames),
    }))
}

/// Parses a `COMM` chunk body (plain AIFF, uncompressed).
fn parse_comm(buf: &[u8]) -> Option<Comm> {
    if buf.len() < 18 {
        return None;
    }
    let channels = usize::from(u16::from_be_bytes([buf[0], buf[1]]));
    let frames = u64::from(u32::from_be_bytes([buf[2], buf[3], buf[4], buf[5]]));
    let bits = u16::from_be_bytes([buf[6], buf[7]]);
    let sample_rate = extended_to_rate(buf[8..18].try_into().ok()?)?;
    let encoding = match bits {
        16 => Encoding::I16Be,
        24 => Encoding::I24Be,
        32 => Encoding::I32Be,
        _ => return None,
    };
    (channels > 0).then_some(Comm {
        encoding,
        channels,
        frames,
        sample_rate,
    })
}

/// Decodes an 80-bit IEEE 754 extended float holding a sample rate, rounded to whole Hz;
/// `None` unless it is between 1 Hz and 10 MHz.
fn extended_to_rate(b: [u8; 10]) -> Option<u32> {
    let sign_exp = u16::from_be_bytes([b[0], b[1]]);
    let mantissa = u64::from_be_bytes([b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9]]);
    if sign_exp & 0x8000 != 0 {
        return None;
    }
    let exp = i32::from(sign_exp) - 16_383 - 63;
    let rate = (mantissa as f64 * 2f64.powi(exp)).round();
    (1.0..=10_000_000.0).contains(&rate).then_some(rate as u32)
}
