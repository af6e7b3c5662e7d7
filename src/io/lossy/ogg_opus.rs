//! Ogg Opus (RFC 7845): the encoder's file and the reader the decoder uses.
//!
//! Writing: page 1 holds the identification header alone (`OpusHead`: version 1, the channel
//! count, the pre-skip, 48 kHz as the input rate, output gain 0, channel mapping family 0),
//! page 2 the comment header (`OpusTags`: vendor and the deliverable's tags, the same
//! Vorbis-comment layout as FLAC's), then the audio: 20 ms packets of libopus (VBR at the bit
//! rate asked for, complexity 10, `Audio` application). The pre-skip is the encoder's
//! lookahead; the stream is fed that many samples of silence past the end so the last real
//! samples come out, and the last page's granule position is pre-skip + the song's frames, so
//! players trim the padding (end trimming, RFC 7845 §4.4). Every other page's granule position
//! is the number of samples its completed packets decode to.
//!
//! Reading: the packets of the first logical stream, decoded by libopus at 48 kHz, the
//! pre-skip dropped, the end trimmed to the last granule position, the output gain applied.

use crate::dsp::AudioRef;
use crate::io::atomic::{AtomicFile, OutputError};
use ogg::{PacketReader, PacketWriteEndInfo, PacketWriter};
use opus::{Application, Bitrate, Channels, Decoder, Encoder};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Samples per channel of one packet: 20 ms at 48 kHz.
pub const PACKET_FRAMES: usize = 960;
/// Largest packet asked of libopus (its recommended bound).
const MAX_PACKET: usize = 4000;
/// The logical stream's serial number (fixed: renders are reproducible).
const SERIAL: u32 = 0x5354_4d47;
/// The vendor string of OpusTags.
fn vendor() -> String {
    format!(
        "stemgraph {} ({})",
        env!("CARGO_PKG_VERSION"),
        opus::version()
    )
}

fn channels_of(n: usize) -> Channels {
    if n == 1 {
        Channels::Mono
    } else {
        Channels::Stereo
    }
}

/// An Ogg Opus file being encoded.
pub struct OpusOutput {
    dest: PathBuf,
    atomic: Option<AtomicFile>,
    writer: Option<PacketWriter<'static, BufWriter<File>>>,
    encoder: Encoder,
    channels: usize,
    pre_skip: usize,
    /// Interleaved samples of the packet being gathered.
    pcm: Vec<f32>,
    packet: Vec<u8>,
    /// Frames fed to the encoder (whole packets).
    encoded: u64,
    /// Real frames written (without the padding).
    frames: u64,
}

impl OpusOutput {
    /// Starts encoding `dest` (through a temporary file) at 48 kHz, `kbps` kbit/s, writing the
    /// identification and comment headers.
    pub fn create(
        dest: &Path,
        channels: usize,
        kbps: u32,
        tags: &[(String, String)],
        protected: &[PathBuf],
    ) -> Result<OpusOutput, OutputError> {
        let encode = |message: String| OutputError::Encode {
            path: dest.to_path_buf(),
            message,
        };
        let opus = |what: &str, e: opus::Error| encode(format!("libopus {what}: {e}"));
        let mut encoder = Encoder::new(48_000, channels_of(channels), Application::Audio)
            .map_err(|e| opus("encoder", e))?;
        encoder
            .set_bitrate(Bitrate::Bits(kbps as i32 * 1000))
            .map_err(|e| opus("bit rate", e))?;
        encoder.set_vbr(true).map_err(|e| opus("VBR", e))?;
        encoder
            .set_complexity(10)
            .map_err(|e| opus("complexity", e))?;
        let pre_skip = encoder.get_lookahead().map_err(|e| opus("lookahead", e))? as usize;
        let mut head = Vec::with_capacity(19);
        head.extend_from_slice(b"OpusHead");
        head.push(1);
        head.push(channels as u8);
        head.extend_from_slice(&(pre_skip as u16).to_le_bytes());
        head.extend_from_slice(&48_000u32.to_le_bytes());
        head.extend_from_slice(&0i16.to_le_bytes());
        head.push(0);
        let mut comment = b"OpusTags".to_vec();
        comment
            .extend_from_slice(&crate::io::flac::vorbis_comment(&vendor(), tags).map_err(encode)?);
        let (atomic, file) = AtomicFile::create(dest, protected)?;
        let mut writer = PacketWriter::new(file);
        let io = |source| OutputError::Io {
            path: dest.to_path_buf(),
            source,
        };
        writer
            .write_packet(head, SERIAL, PacketWriteEndInfo::EndPage, 0)
            .map_err(io)?;
        writer
            .write_packet(comment, SERIAL, PacketWriteEndInfo::EndPage, 0)
            .map_err(io)?;
        Ok(OpusOutput {
            dest: dest.to_path_buf(),
            atomic: Some(atomic),
            writer: Some(writer),
            encoder,
            channels,
            pre_skip,
            pcm: Vec::with_capacity(PACKET_FRAMES * channels),
            packet: vec![0; MAX_PACKET],
            encoded: 0,
            frames: 0,
        })
    }

    /// Encodes the gathered packet and writes it with the granule position it ends at (or,
    /// when `last`, the stream's end).
    fn flush_packet(&mut self, last: bool) -> Result<(), OutputError> {
        let len = self
            .encoder
            .encode_float(&self.pcm, &mut self.packet)
            .map_err(|e| OutputError::Encode {
                path: self.dest.clone(),
                message: format!("libopus: {e}"),
            })?;
        self.pcm.clear();
        self.encoded += PACKET_FRAMES as u64;
        let (info, granule) = if last {
            (
                PacketWriteEndInfo::EndStream,
                self.pre_skip as u64 + self.frames,
            )
        } else {
            (PacketWriteEndInfo::NormalPacket, self.encoded)
        };
        let w = self.writer.as_mut().expect("written before finish");
        w.write_packet(self.packet[..len].to_vec(), SERIAL, info, granule)
            .map_err(|source| OutputError::Io {
                path: self.dest.clone(),
                source,
            })
    }

    /// Encodes one block (48 kHz, the file's channels), packet by packet.
    pub fn write(&mut self, audio: AudioRef<'_>) -> Result<(), OutputError> {
        for i in 0..audio.frames() {
            for c in 0..self.channels {
                self.pcm.push(audio.channel(c)[i] as f32);
            }
            if self.pcm.len() == PACKET_FRAMES * self.channels {
                self.flush_packet(false)?;
            }
        }
        self.frames += audio.frames() as u64;
        Ok(())
    }

    /// Feeds the lookahead's worth of silence, pads the last packet, ends the stream and closes
    /// the file (still under its temporary name).
    pub fn finish(mut self) -> Result<AtomicFile, OutputError> {
        let end = (self.frames + self.pre_skip as u64)
            .div_ceil(PACKET_FRAMES as u64)
            .max(1)
            * PACKET_FRAMES as u64;
        while self.encoded < end {
            self.pcm.resize(PACKET_FRAMES * self.channels, 0.0);
            let last = self.encoded + PACKET_FRAMES as u64 == end;
            self.flush_packet(last)?;
        }
        let mut w = self.writer.take().expect("finished once").into_inner();
        w.flush().map_err(|source| OutputError::Io {
            path: self.dest.clone(),
            source,
        })?;
        drop(w);
        Ok(self.atomic.take().expect("finished once"))
    }
}

/// Why an Ogg Opus file could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// The file system failed.
    Io(io::Error),
    /// The stream is not valid Ogg Opus.
    Corrupt(String),
}

/// Whether the file starts with an Ogg page holding an Opus identification header (the file
/// position is restored).
pub fn sniff(file: &mut File) -> io::Result<bool> {
    let mut head = [0u8; 36];
    let mut got = 0;
    while got < head.len() {
        match file.read(&mut head[got..])? {
            0 => break,
            n => got += n,
        }
    }
    file.seek(SeekFrom::Start(0))?;
    Ok(got == head.len() && &head[..4] == b"OggS" && &head[28..36] == b"OpusHead")
}

/// A decoded Ogg Opus stream, read packet by packet.
pub struct OpusReader {
    reader: PacketReader<BufReader<File>>,
    serial: u32,
    decoder: Decoder,
    channels: usize,
    /// Samples (per channel) still to drop from the start.
    skip: usize,
    /// Samples decoded so far, pre-skip included (what granule positions count).
    position: u64,
    gain: f32,
    /// Interleaved decoded samples not yet read, and the read position in them.
    pending: Vec<f32>,
    pending_pos: usize,
    done: bool,
}

impl OpusReader {
    /// Reads the headers of `file` (an Ogg Opus stream, see [`sniff`]).
    pub fn open(file: File) -> Result<OpusReader, ReadError> {
        let mut reader = PacketReader::new(BufReader::new(file));
        let corrupt = |e: ogg::OggReadError| match e {
            ogg::OggReadError::ReadError(e) => ReadError::Io(e),
            other => ReadError::Corrupt(other.to_string()),
        };
        let head = reader
            .read_packet()
            .map_err(corrupt)?
            .ok_or_else(|| ReadError::Corrupt("no Ogg page".into()))?;
        let d = &head.data;
        if d.len() < 19 || &d[..8] != b"OpusHead" || d[8] >> 4 != 0 {
            return Err(ReadError::Corrupt(
                "not an Opus identification header".into(),
            ));
        }
        let channels = usize::from(d[9]);
        if channels == 0 || channels > 2 || d[18] != 0 {
            return Err(ReadError::Corrupt(format!(
                "{channels} channels with mapping family {}: only mono and stereo (family 0) are read",
                d[18]
            )));
        }
        let pre_skip = usize::from(u16::from_le_bytes([d[10], d[11]]));
        let gain_q8 = i16::from_le_bytes([d[16], d[17]]);
        let serial = head.stream_serial();
        let tags = reader
            .read_packet()
            .map_err(corrupt)?
            .ok_or_else(|| ReadError::Corrupt("no comment header".into()))?;
        if !tags.data.starts_with(b"OpusTags") {
            return Err(ReadError::Corrupt("no OpusTags header".into()));
        }
        let decoder = Decoder::new(48_000, channels_of(channels))
            .map_err(|e| ReadError::Corrupt(format!("libopus decoder: {e}")))?;
        Ok(OpusReader {
            reader,
            serial,
            decoder,
            channels,
            skip: pre_skip,
            position: 0,
            gain: 10f32.powf(f32::from(gain_q8) / 256.0 / 20.0),
            pending: Vec::with_capacity(5760 * channels),
            pending_pos: 0,
            done: false,
        })
    }

    /// Channels of the stream.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Decodes the next packet into `pending`; false at the end.
    fn next_packet(&mut self) -> Result<bool, ReadError> {
        loop {
            let packet = match self.reader.read_packet() {
                Ok(Some(p)) => p,
                Ok(None) => return Ok(false),
                Err(ogg::OggReadError::ReadError(e)) => return Err(ReadError::Io(e)),
                Err(e) => return Err(ReadError::Corrupt(e.to_string())),
            };
            if packet.stream_serial() != self.serial {
                continue;
            }
            self.pending.resize(5760 * self.channels, 0.0);
            let n = self
                .decoder
                .decode_float(&packet.data, &mut self.pending, false)
                .map_err(|e| ReadError::Corrupt(format!("libopus: {e}")))?;
            let before = self.position;
            self.position += n as u64;
            let mut keep = n;
            if packet.last_in_stream() {
                keep = packet.absgp_page().saturating_sub(before).min(n as u64) as usize;
                self.done = true;
            }
            let drop = self.skip.min(keep);
            self.skip -= drop;
            self.pending.truncate(keep * self.channels);
            self.pending_pos = drop * self.channels;
            if self.gain != 1.0 {
                self.pending.iter_mut().for_each(|s| *s *= self.gain);
            }
            return Ok(true);
        }
    }

    /// Decodes up to `max` frames into `out` (planar); 0 only at the end.
    pub fn read(&mut self, out: &mut [&mut [f64]], max: usize) -> Result<usize, ReadError> {
        let mut done = 0;
        while done < max {
            if self.pending_pos >= self.pending.len() {
                if self.done || !self.next_packet()? {
                    break;
                }
                continue;
            }
            let avail = (self.pending.len() - self.pending_pos) / self.channels;
            let n = avail.min(max - done);
            for i in 0..n {
                for (c, dst) in out.iter_mut().enumerate() {
                    dst[done + i] =
                        f64::from(self.pending[self.pending_pos + i * self.channels + c]);
                }
            }
            self.pending_pos += n * self.channels;
            done += n;
        }
        Ok(done)
    }
}
