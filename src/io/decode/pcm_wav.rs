//! Fast path for plain PCM WAV: parses the RIFF header itself, then reads the data chunk in
//! blocks of [`BLOCK_FRAMES`] frames and converts little-endian 16/24/32-bit integers or 32-bit
//! floats straight into planar `f64`. Anything it does not recognise (8-bit, 64-bit float,
//! compressed WAV, RF64, odd layouts) is handed back to the caller for symphonia.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use super::{Failure, StemInfo};

/// Frames read from disk and converted per step.
const BLOCK_FRAMES: usize = 4096;

/// The tail of the KSDATAFORMAT_SUBTYPE GUIDs (after the 2-byte format tag) in
/// WAVE_FORMAT_EXTENSIBLE headers.
const SUBTYPE_GUID_TAIL: [u8; 14] = [
    0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71,
];

/// The stored sample encodings this path handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PcmFormat {
    I16,
    I24,
    I32,
    F32,
}

impl PcmFormat {
    fn bytes(self) -> usize {
        match self {
            PcmFormat::I16 => 2,
            PcmFormat::I24 => 3,
            PcmFormat::I32 | PcmFormat::F32 => 4,
        }
    }

    fn codec_name(self) -> &'static str {
        match self {
            PcmFormat::I16 => "pcm_s16le",
            PcmFormat::I24 => "pcm_s24le",
            PcmFormat::I32 => "pcm_s32le",
            PcmFormat::F32 => "pcm_f32le",
        }
    }
}

/// What the `fmt ` chunk says.
struct WavFormat {
    format: PcmFormat,
    channels: usize,
    sample_rate: u32,
}

/// A plain PCM WAV file positioned in its data chunk.
pub(super) struct PcmWav {
    file: File,
    format: PcmFormat,
    channels: usize,
    frames_promised: u64,
    frames_read: u64,
    /// Set once the file ended before the data chunk did.
    hit_eof: bool,
    bytes: Vec<u8>,
}

impl PcmWav {
    /// Opens `file` as a plain PCM WAV if it is one; otherwise gives the file back (rewound) for
    /// the general decoder.
    pub(super) fn try_open(
        mut file: File,
        path: &Path,
    ) -> io::Result<Result<(PcmWav, StemInfo), File>> {
        let header = match parse_header(&mut file) {
            Ok(h) => h,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => None,
            Err(e) => return Err(e),
        };
        let Some((fmt, data_len)) = header else {
            file.seek(SeekFrom::Start(0))?;
            return Ok(Err(file));
        };
        let block_align = fmt.channels * fmt.format.bytes();
        let frames_promised = u64::from(data_len) / block_align as u64;
        let info = StemInfo {
            path: path.to_path_buf(),
            sample_rate: fmt.sample_rate,
            channels: fmt.channels,
            frames: Some(frames_promised),
            bits_per_sample: Some(8 * fmt.format.bytes() as u32),
            codec: fmt.format.codec_name().to_string(),
            lossless: true,
        };
        let wav = PcmWav {
            file,
            format: fmt.format,
            channels: fmt.channels,
            frames_promised,
            frames_read: 0,
            hit_eof: false,
            bytes: vec![0; BLOCK_FRAMES * block_align],
        };
        Ok(Ok((wav, info)))
    }

    /// Reads up to `max` frames into `out`; 0 at the end of the data chunk or of the file.
    pub(super) fn read(&mut self, out: &mut [&mut [f64]], max: usize) -> Result<usize, Failure> {
        let block_align = self.channels * self.format.bytes();
        let mut done = 0;
        while done < max && !self.hit_eof && self.frames_read < self.frames_promised {
            let left = self.frames_promised - self.frames_read;
            let n = (max - done)
                .min(BLOCK_FRAMES)
                .min(usize::try_from(left).unwrap_or(usize::MAX));
            let want = n * block_align;
            let got = read_full(&mut self.file, &mut self.bytes[..want])?;
            if got < want {
                self.hit_eof = true;
            }
            let whole = got / block_align;
            convert(
                self.format,
                &self.bytes[..whole * block_align],
                out,
                done,
                whole,
            );
            done += whole;
            self.frames_read += whole as u64;
        }
        Ok(done)
    }
}

/// Reads into `buf` until it is full or the file ends; returns the bytes read.
fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Walks the RIFF chunks up to `data`. Returns the format and the data length with the file
/// positioned at the first sample, or `None` if this is not a WAV this path handles.
fn parse_header(file: &mut File) -> io::Result<Option<(WavFormat, u32)>> {
    let mut riff = [0u8; 12];
    file.read_exact(&mut riff)?;
    if &riff[0..4] != b"RIFF" || &riff[8..12] != b"WAVE" {
        return Ok(None);
    }
    let mut format = None;
    loop {
        let mut chunk = [0u8; 8];
        file.read_exact(&mut chunk)?;
        let len = u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
        match &chunk[0..4] {
            b"fmt " => {
                let Some(f) = parse_fmt(file, len)? else {
                    return Ok(None);
                };
                format = Some(f);
            }
            b"data" => {
                return Ok(match format {
                    Some(f) if len != u32::MAX => Some((f, len)),
                    _ => None,
                });
            }
            _ => {
                let skip = i64::from(len) + i64::from(len & 1);
                file.seek(SeekFrom::Current(skip))?;
            }
        }
    }
}

/// Parses a `fmt ` chunk of `len` bytes (and skips its pad byte).
fn parse_fmt(file: &mut File, len: u32) -> io::Result<Option<WavFormat>> {
    if !(16..=1024).contains(&len) {
        return Ok(None);
    }
    let mut buf = vec![0u8; len as usize + (len & 1) as usize];
    file.read_exact(&mut buf)?;
    let u16_at = |o: usize| u16::from_le_bytes([buf[o], buf[o + 1]]);
    let mut tag = u16_at(0);
    let channels = usize::from(u16_at(2));
    let sample_rate = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
    let block_align = usize::from(u16_at(12));
    let bits = u16_at(14);
    if tag == 0xFFFE {
        // WAVE_FORMAT_EXTENSIBLE: the real tag is the first two bytes of the sub-format GUID.
        if len < 40 || u16_at(18) != bits || buf[26..40] != SUBTYPE_GUID_TAIL {
            return Ok(None);
        }
        tag = u16_at(24);
    }
    let format = match (tag, bits) {
        (1, 16) => PcmFormat::I16,
        (1, 24) => PcmFormat::I24,
        (1, 32) => PcmFormat::I32,
        (3, 32) => PcmFormat::F32,
        _ => return Ok(None),
    };
    if channels == 0 || sample_rate == 0 || block_align != channels * format.bytes() {
        return Ok(None);
    }
    Ok(Some(WavFormat {
        format,
        channels,
        sample_rate,
    }))
}

/// Converts `frames` interleaved frames from `bytes` into `out[c][at..at + frames]`.
fn convert(format: PcmFormat, bytes: &[u8], out: &mut [&mut [f64]], at: usize, frames: usize) {
    match format {
        PcmFormat::I16 => deinterleave::<2>(bytes, out, at, frames, |b| {
            f64::from(i16::from_le_bytes([b[0], b[1]])) * (1.0 / 32_768.0)
        }),
        PcmFormat::I24 => deinterleave::<3>(bytes, out, at, frames, |b| {
            let v = i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8;
            f64::from(v) * (1.0 / 8_388_608.0)
        }),
        PcmFormat::I32 => deinterleave::<4>(bytes, out, at, frames, |b| {
            f64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])) * (1.0 / 2_147_483_648.0)
        }),
        PcmFormat::F32 => deinterleave::<4>(bytes, out, at, frames, |b| {
            f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        }),
    }
}

/// Splits interleaved samples of `W` bytes into planes, decoding each with `sample`.
/// Mono and stereo have their own loops so the compiler can drop the bounds checks.
#[inline(always)]
fn deinterleave<const W: usize>(
    bytes: &[u8],
    out: &mut [&mut [f64]],
    at: usize,
    frames: usize,
    sample: impl Fn(&[u8]) -> f64,
) {
    match out {
        [mono] => {
            for (d, b) in mono[at..at + frames].iter_mut().zip(bytes.chunks_exact(W)) {
                *d = sample(b);
            }
        }
        [left, right] => {
            let pairs = left[at..at + frames]
                .iter_mut()
                .zip(right[at..at + frames].iter_mut());
            for ((l, r), b) in pairs.zip(bytes.chunks_exact(2 * W)) {
                *l = sample(&b[..W]);
                *r = sample(&b[W..]);
            }
        }
        _ => {
            let channels = out.len();
            for (c, plane) in out.iter_mut().enumerate() {
                let frames_in = bytes.chunks_exact(channels * W);
                for (d, b) in plane[at..at + frames].iter_mut().zip(frames_in) {
                    *d = sample(&b[c * W..(c + 1) * W]);
                }
            }
        }
    }
}
