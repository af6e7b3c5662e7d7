//! DDP 2.00 filesets: the album's CD image as a replication plant takes it.
//!
//! From the CD image (`cd.rs`: every song in one 16-bit 44.1 kHz WAV, tracks on CD frames) and
//! the album's metadata, [`write`] makes a folder with:
//!
//! - `IMAGE.DAT`: the main data, 16-bit little-endian interleaved stereo PCM in 2352-byte sectors
//!   (CD-DA byte order, IEC 60908; DDP carries audio main data in it, as the open-source DDP
//!   tools write and read it), the first track's pre-gap (2 s of silence by default) first, then
//!   the CD image's samples byte for byte;
//! - `PQDESCR`: the PQ descriptor, a packet per index (lead-in with the UPC/EAN, each track's
//!   index 00 and 01 with its ISRC, the lead-out);
//! - `CDTEXT.BIN`: CD-Text packs (album and track titles and performers, songwriters,
//!   composers, UPC and ISRCs), when there is text;
//! - `DDPMS` (the map of those streams), `DDPID` (level `DDP 2.00`, UPC/EAN, master id);
//! - `CHECKSUM.MD5`: the MD5 of every file (`md5sum -c` reads it).
//!
//! The Red Book rules are checked first ([`check_red_book`]): at most 99 tracks, each at
//! least 4 s, a pre-gap of at least 2 s before track 1, tracks on frames of 588 samples, at
//! most 79:57 in all. Every file is written atomically.

pub mod cdtext;
pub mod records;

use super::cd::{CdOutcome, CD_FRAMES_PER_SECOND, CD_FRAME_SAMPLES};
use super::spec::AlbumSpec;
use super::AlbumError;
use crate::io::atomic::AtomicFile;
use md5::{Digest, Md5};
use records::{PqEntry, Stream, SECTOR_BYTES};
use serde::Serialize;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

/// Most tracks a CD holds.
pub const MAX_TRACKS: usize = 99;
/// Shortest track, seconds.
pub const MIN_TRACK_SECONDS: u64 = 4;
/// Shortest pre-gap before track 1, seconds.
pub const MIN_FIRST_PREGAP_SECONDS: f64 = 2.0;
/// Longest programme (79:57), sectors.
pub const MAX_SECTORS: u64 = (79 * 60 + 57) * CD_FRAMES_PER_SECOND;

/// The DDP fileset written.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DdpOutcome {
    /// The folder, relative to the output folder.
    pub folder: String,
    /// Sectors of the main data (pre-gap included).
    pub sectors: u64,
    /// Each file and its MD5, in `CHECKSUM.MD5` order.
    pub files: Vec<(String, String)>,
}

/// One track on the disc, in sectors from the start of the main data.
#[derive(Debug, Clone, PartialEq)]
pub struct DiscTrack {
    /// Track number.
    pub number: usize,
    /// Title (for messages and CD-Text).
    pub title: String,
    /// Start of its pre-gap (index 00).
    pub index0: Option<u64>,
    /// Start of the song (index 01).
    pub index1: u64,
    /// Where the next track (or the lead-out) starts.
    pub end: u64,
}

/// The disc as sectors, from the CD image's layout and the first pre-gap. Positions that are not
/// on a CD frame are refused.
pub fn disc_layout(cd: &CdOutcome, first_pregap_s: f64) -> Result<Vec<DiscTrack>, String> {
    let pregap = (first_pregap_s * CD_FRAMES_PER_SECOND as f64).round() as u64;
    let sector = |samples: u64, what: &str, t: usize| -> Result<u64, String> {
        if !samples.is_multiple_of(CD_FRAME_SAMPLES) {
            return Err(format!(
                "track {t}: its {what} is at sample {samples}, not on a CD frame (a multiple of \
                 {CD_FRAME_SAMPLES} samples)"
            ));
        }
        Ok(pregap + samples / CD_FRAME_SAMPLES)
    };
    if !cd.total_samples.is_multiple_of(CD_FRAME_SAMPLES) {
        return Err(format!(
            "the CD image is {} samples, not a whole number of CD frames ({CD_FRAME_SAMPLES} samples)",
            cd.total_samples
        ));
    }
    let total = pregap + cd.total_samples / CD_FRAME_SAMPLES;
    let mut tracks = Vec::new();
    for (i, t) in cd.tracks.iter().enumerate() {
        let index1 = sector(t.index01_samples, "start (index 01)", t.track)?;
        let index0 = match (i, t.index00_samples) {
            (0, _) => Some(0),
            (_, Some(s)) => Some(sector(s, "pre-gap (index 00)", t.track)?),
            (_, None) => None,
        };
        tracks.push(DiscTrack {
            number: t.track,
            title: t.title.clone(),
            index0,
            index1,
            end: total,
        });
    }
    for i in 1..tracks.len() {
        let next = tracks[i].index0.unwrap_or(tracks[i].index1);
        tracks[i - 1].end = next;
    }
    Ok(tracks)
}

/// `sectors` as m:ss.
fn minutes(sectors: u64) -> String {
    let s = sectors / CD_FRAMES_PER_SECOND;
    format!("{}:{:02}", s / 60, s % 60)
}

/// The Red Book rules: at most 99 tracks, each (index 01 to the next track) at least 4 s, at
/// least 2 s before track 1's index 01, at most 79:57 in all (`total` sectors).
pub fn check_red_book(tracks: &[DiscTrack], total: u64) -> Result<(), String> {
    if tracks.is_empty() {
        return Err("a CD needs at least one track".into());
    }
    if tracks.len() > MAX_TRACKS {
        return Err(format!(
            "{} tracks: a CD holds at most {MAX_TRACKS} (Red Book)",
            tracks.len()
        ));
    }
    let first = tracks[0].index1;
    if (first as f64) < MIN_FIRST_PREGAP_SECONDS * CD_FRAMES_PER_SECOND as f64 {
        return Err(format!(
            "the pre-gap before track 1 is {:.2} s: the Red Book asks for at least \
             {MIN_FIRST_PREGAP_SECONDS} s (index 00 at 00:00:00, index 01 at 00:02:00 or later)",
            first as f64 / CD_FRAMES_PER_SECOND as f64
        ));
    }
    for t in tracks {
        let len = t.end.saturating_sub(t.index1);
        if len < MIN_TRACK_SECONDS * CD_FRAMES_PER_SECOND {
            return Err(format!(
                "track {} ({}) is {:.2} s long: a CD track lasts at least {MIN_TRACK_SECONDS} s \
                 (Red Book)",
                t.number,
                t.title,
                len as f64 / CD_FRAMES_PER_SECOND as f64
            ));
        }
    }
    if total > MAX_SECTORS {
        return Err(format!(
            "the disc lasts {} with its pre-gap: a CD holds at most {} (Red Book)",
            minutes(total),
            minutes(MAX_SECTORS)
        ));
    }
    Ok(())
}

/// The CD-Text of the album: titles, performers, songwriters, composers, UPC and ISRCs.
fn texts(album: &AlbumSpec) -> cdtext::Texts {
    let songs = &album.songs;
    let mut fields = Vec::new();
    let mut add = |kind: u8, disc: Option<String>, each: &dyn Fn(usize) -> Option<String>| {
        let mut v = vec![disc];
        v.extend((0..songs.len()).map(each));
        fields.push((kind, v));
    };
    add(cdtext::TITLE, Some(album.title.clone()), &|i| {
        Some(songs[i].session.title.clone())
    });
    add(cdtext::PERFORMER, album.artist.clone(), &|i| {
        songs[i].session.artist.clone()
    });
    add(
        cdtext::SONGWRITER,
        album.metadata.songwriter.clone(),
        &|i| songs[i].session.metadata.songwriter.clone(),
    );
    add(cdtext::COMPOSER, album.metadata.composer.clone(), &|i| {
        songs[i].session.metadata.composer.clone()
    });
    add(cdtext::CODES, album.metadata.upc.clone(), &|i| {
        songs[i].isrc.clone()
    });
    cdtext::Texts { fields }
}

/// The PQ descriptor's entries: lead-in (with the UPC/EAN), each track's indexes (with its
/// ISRC), the lead-out.
fn pq_entries(album: &AlbumSpec, tracks: &[DiscTrack], total: u64) -> Vec<PqEntry> {
    let upc = album.metadata.upc.clone();
    let mut e = vec![PqEntry {
        track: "00".into(),
        index: 0,
        sector: 0,
        isrc: None,
        upc,
    }];
    for (t, song) in tracks.iter().zip(&album.songs) {
        let isrc = song.isrc.clone();
        for (index, sector) in [(0, t.index0), (1, Some(t.index1))] {
            if let Some(sector) = sector {
                e.push(PqEntry {
                    track: format!("{:02}", t.number),
                    index,
                    sector,
                    isrc: isrc.clone(),
                    upc: None,
                });
            }
        }
    }
    e.push(PqEntry {
        track: "AA".into(),
        index: 1,
        sector: total,
        isrc: None,
        upc: None,
    });
    e
}

fn md5_hex(d: Md5) -> String {
    d.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Offset and length of the `data` chunk of a RIFF/WAVE file.
fn wav_data(file: &mut std::fs::File) -> std::io::Result<(u64, u64)> {
    let mut head = [0u8; 12];
    file.read_exact(&mut head)?;
    if &head[..4] != b"RIFF" || &head[8..12] != b"WAVE" {
        return Err(std::io::Error::other("not a WAV file"));
    }
    let mut at = 12u64;
    loop {
        let mut c = [0u8; 8];
        file.seek(SeekFrom::Start(at))?;
        file.read_exact(&mut c)?;
        let len = u64::from(u32::from_le_bytes([c[4], c[5], c[6], c[7]]));
        if &c[..4] == b"data" {
            return Ok((at + 8, len));
        }
        at += 8 + len + len % 2;
    }
}

/// Writes `IMAGE.DAT`: `pregap` sectors of silence, then the image's samples; returns its MD5.
fn write_image(
    image: &Path,
    dest: &Path,
    pregap: u64,
    protected: &[std::path::PathBuf],
) -> Result<String, AlbumError> {
    let io = |source| AlbumError::Io {
        path: image.to_path_buf(),
        source,
    };
    let mut src = std::fs::File::open(image).map_err(io)?;
    let (offset, len) = wav_data(&mut src).map_err(io)?;
    src.seek(SeekFrom::Start(offset)).map_err(io)?;
    let (atomic, mut out) = AtomicFile::create(dest, protected)?;
    let out_err = |source| AlbumError::Io {
        path: dest.to_path_buf(),
        source,
    };
    let mut md5 = Md5::new();
    let zeros = vec![0u8; SECTOR_BYTES as usize];
    for _ in 0..pregap {
        md5.update(&zeros);
        out.write_all(&zeros).map_err(out_err)?;
    }
    let mut buf = vec![0u8; 1 << 16];
    let mut left = len;
    while left > 0 {
        let n = (left.min(buf.len() as u64)) as usize;
        src.read_exact(&mut buf[..n]).map_err(io)?;
        md5.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(out_err)?;
        left -= n as u64;
    }
    out.flush().map_err(out_err)?;
    drop(out);
    atomic.commit()?;
    Ok(md5_hex(md5))
}

/// Writes the DDP fileset of the album's CD image (`cd`), if the album asks for one.
pub fn write(
    album: &AlbumSpec,
    out: &Path,
    cd: &CdOutcome,
) -> Result<Option<DdpOutcome>, AlbumError> {
    let Some(spec) = album.cd.as_ref().and_then(|c| c.ddp.as_ref()) else {
        return Ok(None);
    };
    let invalid = |m: String| AlbumError::Invalid(format!("DDP: {m}"));
    let tracks = disc_layout(cd, spec.pregap_s).map_err(invalid)?;
    let pregap = tracks[0].index1 - cd.tracks[0].index01_samples / CD_FRAME_SAMPLES;
    let total = pregap + cd.total_samples / CD_FRAME_SAMPLES;
    check_red_book(&tracks, total).map_err(invalid)?;

    let folder_rel = super::spec::expand_album_pattern(
        &spec.folder,
        None,
        &album.title,
        album.artist.as_deref(),
        None,
    );
    let folder = out.join(&folder_rel);
    let protected = vec![album.file.clone()];
    let image_md5 = write_image(
        &out.join(&cd.image),
        &folder.join("IMAGE.DAT"),
        pregap,
        &protected,
    )?;

    let text: Vec<u8> = cdtext::packs(&texts(album), tracks.len() as u8).concat();
    let pq: Vec<u8> = pq_entries(album, &tracks, total)
        .iter()
        .flat_map(records::pq_packet)
        .collect();
    let mut map = Vec::new();
    if !text.is_empty() {
        map.extend(records::map_packet(&Stream {
            kind: "S0",
            length: text.len() as u64,
            subcode: "CDTEXT",
            pregap: None,
            name: "CDTEXT.BIN",
        }));
    }
    map.extend(records::map_packet(&Stream {
        kind: "S0",
        length: pq.len() as u64,
        subcode: "PQ DESCR",
        pregap: None,
        name: "PQDESCR",
    }));
    map.extend(records::map_packet(&Stream {
        kind: "D0",
        length: total,
        subcode: "",
        pregap: Some(pregap),
        name: "IMAGE.DAT",
    }));
    let id = records::ddpid(album.metadata.upc.as_deref(), &spec.master_id);

    let mut files = Vec::new();
    let mut put = |name: &str, bytes: &[u8]| -> Result<(), AlbumError> {
        let path = folder.join(name);
        super::work::write_atomic(&path, bytes).map_err(|source| AlbumError::Io {
            path: path.clone(),
            source,
        })?;
        let mut m = Md5::new();
        m.update(bytes);
        files.push((name.to_string(), md5_hex(m)));
        Ok(())
    };
    put("DDPID", &id)?;
    put("DDPMS", &map)?;
    put("PQDESCR", &pq)?;
    if !text.is_empty() {
        put("CDTEXT.BIN", &text)?;
    }
    files.push(("IMAGE.DAT".to_string(), image_md5));
    let sums: String = files
        .iter()
        .map(|(name, md5)| format!("{md5} *{name}\n"))
        .collect();
    let sums_path = folder.join("CHECKSUM.MD5");
    super::work::write_atomic(&sums_path, sums.as_bytes()).map_err(|source| AlbumError::Io {
        path: sums_path.clone(),
        source,
    })?;
    Ok(Some(DdpOutcome {
        folder: folder_rel,
        sectors: total,
        files,
    }))
}
