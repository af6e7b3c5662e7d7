//! The metadata chunks of a WAV master: BWF `bext` (EBU Tech 3285 version 2), `LIST`/`INFO`
//! and, on request, `iXML`.
//!
//! They sit between `fmt ` and `data` ([`crate::io::wav::WavOutput::create_with_chunks`]). The
//! `bext` chunk is 602 bytes of fixed fields and the coding history:
//!
//! | offset | bytes | field |
//! |---|---|---|
//! | 0 | 256 | Description (ASCII, NUL-padded) |
//! | 256 | 32 | Originator |
//! | 288 | 32 | OriginatorReference |
//! | 320 | 10 | OriginationDate `yyyy-mm-dd` |
//! | 330 | 8 | OriginationTime `hh:mm:ss` |
//! | 338 | 8 | TimeReference (samples since midnight, u64 LE as two u32) |
//! | 346 | 2 | Version (2) |
//! | 348 | 64 | UMID (zeros: none) |
//! | 412 | 10 | LoudnessValue, LoudnessRange, MaxTruePeakLevel, MaxMomentaryLoudness, MaxShortTermLoudness: i16 LE, value × 100 (0x7FFF: not measured) |
//! | 422 | 180 | reserved (zeros) |
//! | 602 | … | CodingHistory (ASCII lines ending CR LF) |
//!
//! The loudness fields describe the file as written, which is known only once it is: they are
//! written as "not measured" and patched in place before the file is renamed into place
//! ([`LOUDNESS_OFFSET`], [`Loudness::to_bytes`]).
//!
//! The tags go in `LIST`/`INFO`: INAM (TITLE), IART (ARTIST), IPRD (ALBUM), ITRK (TRACKNUMBER),
//! IGNR, ICRD (DATE), ICOP, ICMT (COMMENT), IMUS (COMPOSER), IWRI (LYRICIST), and the ISRC in an
//! `ISRC` entry: ffmpeg/ffprobe show every INFO entry (the ISRC as `ISRC`), and it is where
//! tag editors and DAWs that read WAV ISRCs look. (`bext`'s OriginatorReference is left to the
//! recipe: its EBU R 99 "USID" layout is not an ISRC.)

use crate::metadata::DateTime;

/// Bytes of the fixed part of a `bext` chunk.
pub const BEXT_FIXED: usize = 602;
/// Offset of LoudnessValue in the `bext` chunk's body.
pub const LOUDNESS_OFFSET: usize = 412;
/// The value of a loudness field that was not measured.
pub const NOT_MEASURED: i16 = 0x7FFF;

/// The `bext` fields stemgraph writes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Bext {
    /// Description (up to 256 ASCII characters).
    pub description: String,
    /// Originator (up to 32).
    pub originator: String,
    /// OriginatorReference (up to 32).
    pub originator_reference: String,
    /// Origination date and time (blank when `None`).
    pub origination: Option<DateTime>,
    /// First sample's count since midnight.
    pub time_reference: u64,
    /// The coding history, lines ending in CR LF.
    pub coding_history: String,
}

/// The EBU R 128 loudness of a file, as `bext` version 2 stores it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Loudness {
    /// Integrated loudness, LUFS.
    pub integrated_lufs: f64,
    /// Loudness range, LU.
    pub range_lu: f64,
    /// Maximum true peak, dBTP.
    pub true_peak_dbtp: f64,
    /// Maximum momentary loudness, LUFS.
    pub momentary_max_lufs: f64,
    /// Maximum short-term loudness, LUFS.
    pub short_term_max_lufs: f64,
}

/// A value × 100, rounded, as `bext` stores it (non-finite or out of range: not measured).
pub fn centi(v: f64) -> i16 {
    let x = (v * 100.0).round();
    if x.is_finite() && x >= f64::from(i16::MIN) && x < f64::from(NOT_MEASURED) {
        x as i16
    } else {
        NOT_MEASURED
    }
}

impl Loudness {
    /// The five fields, little-endian, in `bext` order.
    pub fn to_bytes(&self) -> [u8; 10] {
        let mut b = [0u8; 10];
        let values = [
            self.integrated_lufs,
            self.range_lu,
            self.true_peak_dbtp,
            self.momentary_max_lufs,
            self.short_term_max_lufs,
        ];
        for (i, v) in values.iter().enumerate() {
            b[2 * i..2 * i + 2].copy_from_slice(&centi(*v).to_le_bytes());
        }
        b
    }
}

/// `s` as ASCII (other characters become `?`), cut or padded with `pad` to `width` bytes: the
/// fixed-width text fields of `bext` (NUL-padded) and of DDP records (space-padded).
pub(crate) fn ascii_field(out: &mut Vec<u8>, s: &str, width: usize, pad: u8) {
    let start = out.len();
    out.extend(
        s.chars()
            .map(|c| {
                if c.is_ascii() && !c.is_ascii_control() {
                    c as u8
                } else {
                    b'?'
                }
            })
            .take(width),
    );
    out.resize(start + width, pad);
}

/// A chunk: id, little-endian size, body. An odd body gets a NUL inside it (its size counts
/// it): RIFF pads chunks to even lengths, and readers that forget the pad byte (hound does)
/// still find the next chunk. Every body here is text or ends in text, where a NUL is its end.
fn chunk(id: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let len = body.len() + body.len() % 2;
    let mut c = Vec::with_capacity(len + 8);
    c.extend_from_slice(id);
    c.extend_from_slice(&(len as u32).to_le_bytes());
    c.extend_from_slice(body);
    c.resize(len + 8, 0);
    c
}

/// The `bext` chunk (header included), loudness fields "not measured"; the loudness fields are
/// at byte `8 + LOUDNESS_OFFSET` of it.
pub fn bext_chunk(b: &Bext) -> Vec<u8> {
    let mut body = Vec::with_capacity(BEXT_FIXED + b.coding_history.len());
    ascii_field(&mut body, &b.description, 256, 0);
    ascii_field(&mut body, &b.originator, 32, 0);
    ascii_field(&mut body, &b.originator_reference, 32, 0);
    match &b.origination {
        Some(d) => {
            ascii_field(&mut body, &d.date(), 10, 0);
            ascii_field(&mut body, &d.time(), 8, 0);
        }
        None => body.resize(body.len() + 18, 0),
    }
    body.extend_from_slice(&((b.time_reference & 0xffff_ffff) as u32).to_le_bytes());
    body.extend_from_slice(&((b.time_reference >> 32) as u32).to_le_bytes());
    body.extend_from_slice(&2u16.to_le_bytes());
    body.resize(body.len() + 64, 0);
    debug_assert_eq!(body.len(), LOUDNESS_OFFSET);
    for _ in 0..5 {
        body.extend_from_slice(&NOT_MEASURED.to_le_bytes());
    }
    body.resize(BEXT_FIXED, 0);
    let history: String = b
        .coding_history
        .chars()
        .map(|c| if c.is_ascii() { c } else { '?' })
        .collect();
    body.extend_from_slice(history.as_bytes());
    chunk(b"bext", &body)
}

/// The INFO id of a Vorbis-comment tag name, if it has one.
fn info_id(tag: &str) -> Option<&'static [u8; 4]> {
    Some(match tag.to_ascii_uppercase().as_str() {
        "TITLE" => b"INAM",
        "ARTIST" => b"IART",
        "ALBUM" => b"IPRD",
        "TRACKNUMBER" => b"ITRK",
        "GENRE" => b"IGNR",
        "DATE" => b"ICRD",
        "COPYRIGHT" => b"ICOP",
        "COMMENT" => b"ICMT",
        "COMPOSER" => b"IMUS",
        "LYRICIST" => b"IWRI",
        "ISRC" => b"ISRC",
        _ => return None,
    })
}

/// The `LIST`/`INFO` chunk of the tags that have an INFO id (UTF-8, NUL-terminated), or nothing
/// when none has.
pub fn info_chunk(tags: &[(String, String)]) -> Vec<u8> {
    let mut body = b"INFO".to_vec();
    for (k, v) in tags {
        if let Some(id) = info_id(k) {
            let mut text = v.as_bytes().to_vec();
            text.push(0);
            body.extend_from_slice(&chunk(id, &text));
        }
    }
    if body.len() == 4 {
        return Vec::new();
    }
    chunk(b"LIST", &body)
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An `iXML` chunk (iXML 2.10): the project (album or title), the take (track number), the note
/// (the description), the file's sample rate and bit depth, and the tags as `USER` entries.
pub fn ixml_chunk(
    project: &str,
    track: Option<u32>,
    note: &str,
    sample_rate: u32,
    bits: u32,
    tags: &[(String, String)],
) -> Vec<u8> {
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<BWFXML>\n");
    x += "  <IXML_VERSION>2.10</IXML_VERSION>\n";
    x += &format!("  <PROJECT>{}</PROJECT>\n", xml_escape(project));
    if let Some(t) = track {
        x += &format!("  <TAKE>{t}</TAKE>\n");
    }
    x += &format!("  <NOTE>{}</NOTE>\n", xml_escape(note));
    x += "  <SPEED>\n";
    x += &format!("    <FILE_SAMPLE_RATE>{sample_rate}</FILE_SAMPLE_RATE>\n");
    x += &format!("    <AUDIO_BIT_DEPTH>{bits}</AUDIO_BIT_DEPTH>\n");
    x += "  </SPEED>\n  <USER>";
    for (k, v) in tags {
        x += &format!("{}={}&#10;", xml_escape(k), xml_escape(v));
    }
    x += "</USER>\n</BWFXML>\n";
    chunk(b"iXML", x.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let c = bext_chunk(&Bext {
            description: "Song é".into(),
            originator: "stemgraph".into(),
            coding_history: "A=PCM\r\n".into(),
            ..Default::default()
        });
        assert_eq!(&c[..4], b"bext");
        // 7 bytes of history and a NUL: even.
        assert_eq!(
            u32::from_le_bytes(c[4..8].try_into().unwrap()) as usize,
            BEXT_FIXED + 8
        );
        assert_eq!(&c[8..14], b"Song ?");
        assert_eq!(&c[8 + 346..8 + 348], &2u16.to_le_bytes());
        assert_eq!(
            &c[8 + LOUDNESS_OFFSET..8 + LOUDNESS_OFFSET + 2],
            &[0xff, 0x7f]
        );
        assert_eq!(c.len() % 2, 0);
        assert_eq!(centi(-14.004), -1400);
        assert_eq!(centi(f64::NEG_INFINITY), NOT_MEASURED);
    }

    #[test]
    fn info() {
        let c = info_chunk(&[("TITLE".into(), "Abc".into()), ("X".into(), "y".into())]);
        assert_eq!(&c[..4], b"LIST");
        assert_eq!(&c[8..16], b"INFOINAM");
        assert!(info_chunk(&[("X".into(), "y".into())]).is_empty());
    }
}
