//! The CD running order: every song's 16-bit 44.1 kHz master in one WAV image, with gaps, and a
//! CUE sheet that points at each track.
//!
//! A CD addresses audio in frames (sectors) of 1/75 s, 588 stereo samples at 44.1 kHz, and a
//! track can only start on a frame. Each song is followed by silence up to the next frame
//! boundary, the gap before the next song is a whole number of frames (the gap asked for,
//! rounded to the nearest frame) and becomes that track's pregap (`INDEX 00`), and the song starts
//! at its `INDEX 01`. The image is streamed from the songs' CD tracks (rendered, dithered and
//! limited like any deliverable) and written atomically.

use super::spec::AlbumSpec;
use super::work::write_atomic;
use super::AlbumError;
use crate::dsp::AudioBuffer;
use crate::io::decode::Decoder;
use crate::io::wav::{WavFormat, WavOutput};
use serde::Serialize;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// Sample rate of a CD.
pub const CD_RATE: u32 = 44_100;
/// Samples per CD frame (1/75 s).
pub const CD_FRAME_SAMPLES: u64 = 588;
/// CD frames per second.
pub const CD_FRAMES_PER_SECOND: u64 = 75;

/// Where a track sits in the image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CueTrack {
    /// Track number.
    pub track: usize,
    /// Title.
    pub title: String,
    /// Start of the pregap (gap before the song), in samples, when there is one.
    pub index00_samples: Option<u64>,
    /// Start of the song, in samples (a multiple of 588).
    pub index01_samples: u64,
    /// `INDEX 01` as the CUE sheet writes it (mm:ss:ff).
    pub index01: String,
    /// The song's length in samples (before its padding to a frame).
    pub length_samples: u64,
}

/// The CD image and CUE sheet written.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CdOutcome {
    /// The image, relative to the output folder.
    pub image: String,
    /// The CUE sheet, relative to the output folder.
    pub cue: String,
    /// Total length in samples (a whole number of CD frames).
    pub total_samples: u64,
    /// The tracks.
    pub tracks: Vec<CueTrack>,
    /// The DDP fileset made from the image, if asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ddp: Option<super::ddp::DdpOutcome>,
}

/// A sample position as `mm:ss:ff` (minutes, seconds, 1/75 s frames).
pub fn msf(samples: u64) -> String {
    let frames = samples / CD_FRAME_SAMPLES;
    let (m, s, f) = (
        frames / (CD_FRAMES_PER_SECOND * 60),
        (frames / CD_FRAMES_PER_SECOND) % 60,
        frames % CD_FRAMES_PER_SECOND,
    );
    format!("{m:02}:{s:02}:{f:02}")
}

/// `n` rounded up to a whole CD frame.
pub fn round_up_to_frame(n: u64) -> u64 {
    n.div_ceil(CD_FRAME_SAMPLES) * CD_FRAME_SAMPLES
}

/// Text for a CUE string field: no double quotes or line breaks.
fn cue_text(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '"' => '\'',
            '\n' | '\r' => ' ',
            c => c,
        })
        .collect()
}

/// `to` relative to the folder `from`, for the CUE's FILE line (both inside the output folder).
fn relative(from_dir: &Path, to: &Path) -> String {
    let a: Vec<_> = from_dir.components().collect();
    let b: Vec<_> = to.components().collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut p = PathBuf::new();
    for _ in common..a.len() {
        p.push("..");
    }
    for c in &b[common..] {
        p.push(c.as_os_str());
    }
    p.to_string_lossy().into_owned()
}

/// Writes the image and the CUE sheet from the songs' CD tracks (`tracks[i]` for song `i`,
/// paths relative to `out`).
pub fn write(
    album: &AlbumSpec,
    out: &Path,
    tracks: &[String],
) -> Result<Option<CdOutcome>, AlbumError> {
    let Some(cd) = &album.cd else {
        return Ok(None);
    };
    let expand = |p: &str| {
        super::spec::expand_album_pattern(p, None, &album.title, album.artist.as_deref(), None)
    };
    let image_rel = expand(&cd.file);
    let cue_rel = expand(&cd.cue);
    let image = out.join(&image_rel);
    let cue_path = out.join(&cue_rel);
    let protected = vec![album.file.clone()];
    let mut wav = WavOutput::create(&image, CD_RATE, 2, WavFormat::Int16, &protected)?;
    let zeros = AudioBuffer::new(2, 4096);
    let silence = |wav: &mut WavOutput, mut n: u64| -> Result<(), AlbumError> {
        while n > 0 {
            let k = n.min(4096) as usize;
            wav.write(zeros.view(k))?;
            n -= k as u64;
        }
        Ok(())
    };
    let mut pos = 0u64;
    let mut cue_tracks = Vec::new();
    let mut buf = AudioBuffer::new(2, 4096);
    for (song, rel) in album.songs.iter().zip(tracks) {
        let index00 = if song.track > 1 && song.gap_before_s > 0.0 {
            let frames = (song.gap_before_s * CD_FRAMES_PER_SECOND as f64).round() as u64;
            let start = pos;
            silence(&mut wav, frames * CD_FRAME_SAMPLES)?;
            pos += frames * CD_FRAME_SAMPLES;
            (frames > 0).then_some(start)
        } else {
            None
        };
        let index01 = pos;
        let mut d = Decoder::open(&out.join(rel))?;
        let info = d.info().clone();
        if info.sample_rate != CD_RATE || info.channels != 2 {
            return Err(AlbumError::Invalid(format!(
                "{rel}: a CD track must be stereo at 44.1 kHz, not {} channel(s) at {} Hz",
                info.channels, info.sample_rate
            )));
        }
        let mut len = 0u64;
        loop {
            let n = {
                let mut v = buf.view_mut(4096);
                let (l, r) = v.stereo_mut();
                d.read(&mut [l, r], 4096)?
            };
            if n == 0 {
                break;
            }
            wav.write(buf.view(n))?;
            len += n as u64;
        }
        let padded = round_up_to_frame(len);
        silence(&mut wav, padded - len)?;
        pos += padded;
        cue_tracks.push(CueTrack {
            track: song.track,
            title: song.session.title.clone(),
            index00_samples: index00,
            index01_samples: index01,
            index01: msf(index01),
            length_samples: len,
        });
    }
    wav.finish()?;

    let mut cue = String::new();
    let _ = writeln!(
        cue,
        "REM COMMENT \"stemgraph {}\"",
        super::hash::ENGINE_VERSION
    );
    if let Some(a) = &album.artist {
        let _ = writeln!(cue, "PERFORMER \"{}\"", cue_text(a));
    }
    let _ = writeln!(cue, "TITLE \"{}\"", cue_text(&album.title));
    let cue_dir = cue_path.parent().unwrap_or(out);
    let _ = writeln!(
        cue,
        "FILE \"{}\" WAVE",
        cue_text(&relative(cue_dir, &image))
    );
    for (song, t) in album.songs.iter().zip(&cue_tracks) {
        let _ = writeln!(cue, "  TRACK {:02} AUDIO", t.track);
        let _ = writeln!(cue, "    TITLE \"{}\"", cue_text(&t.title));
        if let Some(a) = &song.session.artist {
            let _ = writeln!(cue, "    PERFORMER \"{}\"", cue_text(a));
        }
        if let Some(isrc) = &song.isrc {
            let _ = writeln!(cue, "    ISRC {isrc}");
        }
        if let Some(i0) = t.index00_samples {
            let _ = writeln!(cue, "    INDEX 00 {}", msf(i0));
        }
        let _ = writeln!(cue, "    INDEX 01 {}", t.index01);
    }
    write_atomic(&cue_path, cue.as_bytes()).map_err(|source| AlbumError::Io {
        path: cue_path.clone(),
        source,
    })?;
    let mut outcome = CdOutcome {
        image: image_rel,
        cue: cue_rel,
        total_samples: pos,
        tracks: cue_tracks,
        ddp: None,
    };
    outcome.ddp = super::ddp::write(album, out, &outcome)?;
    Ok(Some(outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_seconds_frames() {
        assert_eq!(msf(0), "00:00:00");
        assert_eq!(msf(588), "00:00:01");
        assert_eq!(msf(44_100 * 61 + 588 * 3), "01:01:03");
        assert_eq!(round_up_to_frame(589), 1176);
        assert_eq!(round_up_to_frame(1176), 1176);
    }

    #[test]
    fn relative_paths() {
        assert_eq!(relative(Path::new("/o"), Path::new("/o/a.wav")), "a.wav");
        assert_eq!(
            relative(Path::new("/o/cue"), Path::new("/o/img/a.wav")),
            "../img/a.wav"
        );
    }
}
