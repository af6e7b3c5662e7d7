//! CD-Text: the titles, performers, songwriters, composers and codes of a disc, as the 18-byte
//! packs of the lead-in's R–W subcode (one block, ISO 8859-1, English), the way `CDTEXT.BIN`
//! of a DDP fileset carries them.
//!
//! A pack is: type (0x80 title, 0x81 performer, 0x82 songwriter, 0x83 composer, 0x8E UPC/ISRC,
//! 0x8F size information), the track its first character belongs to (0 = the disc), its
//! sequence number in the block, the block number (bits 4–6) with how many characters of the
//! current string earlier packs already held (bits 0–3, at most 15), 12 bytes of text, and a
//! CRC-16 (CCITT, x¹⁶+x¹²+x⁵+1, initial 0, inverted, most significant byte first) of the 16
//! bytes before it. The strings of one type — the disc's, then every track's — are written one
//! after the other, each ending in a NUL, cut into packs of 12 bytes (the last one NUL-padded).
//! The three size packs (0x8F) close the block: character code, first and last track,
//! copyright flags, the pack count of each type, the last sequence number of each block and
//! each block's language. (Layout as libcdio's "CD-Text Format" describes it, from the
//! MMC-3 annex J description.)

/// Pack types.
pub const TITLE: u8 = 0x80;
/// Performer.
pub const PERFORMER: u8 = 0x81;
/// Songwriter.
pub const SONGWRITER: u8 = 0x82;
/// Composer.
pub const COMPOSER: u8 = 0x83;
/// UPC/EAN (disc) and ISRC (tracks).
pub const CODES: u8 = 0x8E;
/// Size information.
pub const SIZE_INFO: u8 = 0x8F;
/// Language code of English (block 0).
pub const ENGLISH: u8 = 0x09;

/// The text of the disc (index 0) and of each track (index n), per pack type; `None` where a
/// track has none (written as an empty string while another track has one).
#[derive(Debug, Clone, Default)]
pub struct Texts {
    /// (pack type, strings for the disc then tracks 1..=N).
    pub fields: Vec<(u8, Vec<Option<String>>)>,
}

/// CRC-16/CCITT (poly 0x1021, initial 0) of `bytes`, inverted: the CD-Text pack CRC.
pub fn crc(bytes: &[u8]) -> u16 {
    let mut c: u16 = 0;
    for &b in bytes {
        c ^= u16::from(b) << 8;
        for _ in 0..8 {
            c = if c & 0x8000 != 0 {
                (c << 1) ^ 0x1021
            } else {
                c << 1
            };
        }
    }
    !c
}

/// `s` in ISO 8859-1 (characters outside it become `?`, control characters are dropped).
fn latin1(s: &str) -> Vec<u8> {
    s.chars()
        .filter(|c| !c.is_control())
        .map(|c| if (c as u32) < 256 { c as u8 } else { b'?' })
        .collect()
}

/// Seals a pack: its CRC in bytes 16–17.
fn seal(mut p: [u8; 18]) -> [u8; 18] {
    let c = crc(&p[..16]);
    p[16..].copy_from_slice(&c.to_be_bytes());
    p
}

/// The packs of one block for `texts` on a disc of tracks `1..=tracks`.
pub fn packs(texts: &Texts, tracks: u8) -> Vec<[u8; 18]> {
    let mut out: Vec<[u8; 18]> = Vec::new();
    let mut counts = [0u8; 16];
    for (kind, strings) in &texts.fields {
        if strings.iter().all(Option::is_none) {
            continue;
        }
        // The type's text, remembering which track each byte belongs to and its offset in
        // that track's string.
        let mut bytes: Vec<(u8, u8, usize)> = Vec::new();
        for (track, s) in strings.iter().enumerate() {
            let mut t = latin1(s.as_deref().unwrap_or(""));
            t.push(0);
            for (i, b) in t.into_iter().enumerate() {
                bytes.push((b, track as u8, i));
            }
        }
        for chunk in bytes.chunks(12) {
            let seq = out.len() as u8;
            let (_, track, offset) = chunk[0];
            let mut p = [0u8; 18];
            p[0] = *kind;
            p[1] = track;
            p[2] = seq;
            p[3] = offset.min(15) as u8; // block 0, single-byte characters
            for (i, (b, _, _)) in chunk.iter().enumerate() {
                p[4 + i] = *b;
            }
            out.push(seal(p));
            counts[usize::from(kind - 0x80)] += 1;
        }
    }
    if out.is_empty() {
        return out;
    }
    counts[usize::from(SIZE_INFO - 0x80)] = 3;
    let last_seq = (out.len() + 2) as u8;
    let mut info = [0u8; 36];
    info[0] = 0x00; // ISO 8859-1
    info[1] = 1;
    info[2] = tracks;
    info[3] = 0; // no copyright flags
    info[4..20].copy_from_slice(&counts);
    info[20] = last_seq; // block 0; blocks 1-7 unused
    info[28] = ENGLISH;
    for (k, part) in info.chunks(12).enumerate() {
        let mut p = [0u8; 18];
        p[0] = SIZE_INFO;
        p[1] = k as u8;
        p[2] = out.len() as u8;
        p[3] = 0;
        p[4..16].copy_from_slice(part);
        out.push(seal(p));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_of_a_known_pack() {
        // CRC-16/XMODEM("123456789") = 0x31C3; the pack CRC is its complement.
        assert_eq!(crc(b"123456789"), !0x31C3);
    }

    #[test]
    fn strings_cross_packs_with_their_offsets() {
        let t = Texts {
            fields: vec![(
                TITLE,
                vec![
                    Some("Disc".into()),
                    Some("A Long Track Name".into()),
                    Some("B".into()),
                ],
            )],
        };
        let p = packs(&t, 2);
        // "Disc\0" + "A Long Track Name\0" + "B\0" = 25 bytes: 3 packs, then 3 size packs.
        assert_eq!(p.len(), 6);
        assert_eq!(&p[0][4..16], b"Disc\0A Long ");
        assert_eq!((p[1][1], p[1][3]), (1, 7));
        // The last pack starts with the NUL after track 2's "B".
        assert_eq!((p[2][1], p[2][3]), (2, 1));
        assert_eq!(p[3][0], SIZE_INFO);
        assert_eq!(p[3][4 + 4], 3, "three title packs");
        assert_eq!(p[4][4 + 8], 5, "last sequence number");
        for pack in &p {
            assert_eq!(crc(&pack[..16]).to_be_bytes(), [pack[16], pack[17]]);
        }
    }
}
