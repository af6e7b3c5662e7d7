//! The fixed-width ASCII records of a DDP 2.00 fileset: the identifier (`DDPID`, 128 bytes), the
//! map stream (`DDPMS`, one 128-byte packet per stream) and the PQ descriptor (`PQDESCR`, one
//! 64-byte packet per index).
//!
//! DCA's specification is not public; the field positions below are those the open-source DDP
//! readers and writers agree on (for example the DDP players and exporters whose sources
//! document DDPID, DDPMS "VVVM" and PQ "VVVS" packets field by field; see docs/album.md for the
//! list), and that cue2ddp/ddpinfo-compatible filesets use:
//!
//! DDPID: level `DDP 2.00` (0–7), UPC/EAN (8–20), map stream start (21–28) and length (29–36)
//! (blank: the map stream is the file `DDPMS`), media number (37), master id (38–85), book type
//! (86), disc type `CD` (87–88), sides and layers (89–92), user text (93–127).
//!
//! DDPMS packet: `VVVM` (0–3), stream type (4–5: `D0` main data, `S0` subcode), stream pointer
//! (6–13), stream length (14–21: sectors for main data, bytes otherwise), stream start (22–29),
//! subcode descriptor (30–37: `PQ DESCR`, `CDTEXT`), CD mode (38–39: `DA` audio), source storage
//! mode (40), scrambled (41), pre-gap 1 (42–45), pre-gap 2 (46–49: the pause before track 1
//! held in the image, sectors), post-gap (50–53), media number (54), track (55–56), index
//! (57–58), ISRC (59–70), size of the stream identifier (71–73: `017`), the stream's file name
//! (74–90), and DDP 2.00 extensions (91–127, blank).
//!
//! PQ packet: `VVVS` (0–3), track (4–5: `00` lead-in, `01`–`99`, `AA` lead-out), index (6–7),
//! time as `hhmmssff` (8–15, hours blank, absolute from the start of the image), control
//! (16–17), reserved (18–19), ISRC (20–31), UPC/EAN (32–44), user text (45–63).

use crate::io::bext::ascii_field;

/// Bytes of a CD sector of audio (588 stereo 16-bit frames).
pub const SECTOR_BYTES: u64 = 2352;

/// `text` cut or space-padded to `width` bytes (ASCII; other characters become `?`).
fn field(out: &mut Vec<u8>, text: &str, width: usize) {
    ascii_field(out, text, width, b' ');
}

/// `sectors` as `mmssff` (minutes, seconds, 1/75 s).
pub fn msf(sectors: u64) -> String {
    format!(
        "{:02}{:02}{:02}",
        sectors / (75 * 60),
        sectors / 75 % 60,
        sectors % 75
    )
}

/// The `DDPID` record.
pub fn ddpid(upc: Option<&str>, master_id: &str) -> Vec<u8> {
    let mut d = Vec::with_capacity(128);
    field(&mut d, "DDP 2.00", 8);
    field(&mut d, upc.unwrap_or(""), 13);
    field(&mut d, "", 8 + 8 + 1);
    field(&mut d, master_id, 48);
    field(&mut d, "", 1);
    field(&mut d, "CD", 2);
    field(&mut d, "", 128 - 89);
    debug_assert_eq!(d.len(), 128);
    d
}

/// One stream of the map.
#[derive(Debug, Clone)]
pub struct Stream<'a> {
    /// `D0` or `S0`.
    pub kind: &'a str,
    /// Sectors (main data) or bytes.
    pub length: u64,
    /// Subcode descriptor (`PQ DESCR`, `CDTEXT`) or blank.
    pub subcode: &'a str,
    /// Pause before track 1 held in the stream, sectors (main data).
    pub pregap: Option<u64>,
    /// The file.
    pub name: &'a str,
}

/// A `DDPMS` packet.
pub fn map_packet(s: &Stream) -> Vec<u8> {
    let mut p = Vec::with_capacity(128);
    field(&mut p, "VVVM", 4);
    field(&mut p, s.kind, 2);
    field(&mut p, "", 8);
    field(&mut p, &format!("{:08}", s.length), 8);
    field(&mut p, "", 8);
    field(&mut p, s.subcode, 8);
    // Audio: CD mode DA, source storage mode 7 (complete 2352-byte sectors), scrambled flag 1,
    // as cue2ddp-compatible filesets write them.
    field(&mut p, if s.kind == "D0" { "DA71" } else { "" }, 4);
    field(&mut p, "", 4);
    field(
        &mut p,
        &s.pregap.map(|g| format!("{g:04}")).unwrap_or_default(),
        4,
    );
    field(&mut p, "", 4 + 1 + 2 + 2 + 12);
    field(&mut p, "017", 3);
    field(&mut p, s.name, 17);
    field(&mut p, "", 128 - 91);
    debug_assert_eq!(p.len(), 128);
    p
}

/// One entry of the PQ descriptor.
#[derive(Debug, Clone, PartialEq)]
pub struct PqEntry {
    /// `00` lead-in, `01`–`99`, `AA` lead-out.
    pub track: String,
    /// Index (0 = pre-gap, 1 = start).
    pub index: u32,
    /// Sector from the start of the image.
    pub sector: u64,
    /// ISRC (tracks).
    pub isrc: Option<String>,
    /// UPC/EAN (lead-in).
    pub upc: Option<String>,
}

/// A `PQDESCR` packet. Control `00`: two-channel audio, no pre-emphasis, copy not permitted.
pub fn pq_packet(e: &PqEntry) -> Vec<u8> {
    let mut p = Vec::with_capacity(64);
    field(&mut p, "VVVS", 4);
    field(&mut p, &e.track, 2);
    field(&mut p, &format!("{:02}", e.index), 2);
    field(&mut p, "", 2);
    field(&mut p, &msf(e.sector), 6);
    field(&mut p, "00", 2);
    field(&mut p, "", 2);
    field(&mut p, e.isrc.as_deref().unwrap_or(""), 12);
    field(&mut p, e.upc.as_deref().unwrap_or(""), 13);
    field(&mut p, "", 64 - 45);
    debug_assert_eq!(p.len(), 64);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths() {
        let id = ddpid(Some("4006381333931"), "CAT-1");
        assert_eq!(&id[..21], b"DDP 2.004006381333931");
        assert_eq!(&id[87..89], b"CD");
        let m = map_packet(&Stream {
            kind: "D0",
            length: 1575,
            subcode: "",
            pregap: Some(150),
            name: "IMAGE.DAT",
        });
        assert_eq!(&m[14..22], b"00001575");
        assert_eq!(&m[38..41], b"DA7");
        assert_eq!(&m[46..50], b"0150");
        assert_eq!(&m[74..83], b"IMAGE.DAT");
        let q = pq_packet(&PqEntry {
            track: "01".into(),
            index: 1,
            sector: 150,
            isrc: Some("GBAYE2400001".into()),
            upc: None,
        });
        assert_eq!(&q[..16], b"VVVS0101  000200");
        assert_eq!(&q[20..32], b"GBAYE2400001");
        assert_eq!(msf(75 * 61 + 3), "010103");
    }
}
