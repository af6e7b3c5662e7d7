//! ID3v2.4 tags for MP3 deliverables, built from the deliverable's Vorbis-comment style tags.
//!
//! The mapping: TITLE → TIT2, ARTIST → TPE1, ALBUM → TALB, ALBUMARTIST → TPE2,
//! TRACKNUMBER (with TRACKTOTAL) → TRCK (`3/12`), DISCNUMBER (with DISCTOTAL) → TPOS,
//! ISRC → TSRC, DATE → TDRC, GENRE → TCON, COMPOSER → TCOM, COPYRIGHT → TCOP; any other key is a
//! TXXX frame described by the key (UPC/BARCODE and the rest). Text is UTF-8 (encoding 3,
//! which ID3v2.4 allows); sizes are synchsafe; no unsynchronisation, no padding.

/// The standard text frame a tag key maps to, if it has one.
fn frame_of(key: &str) -> Option<&'static str> {
    Some(match key.to_ascii_uppercase().as_str() {
        "TITLE" => "TIT2",
        "ARTIST" => "TPE1",
        "ALBUM" => "TALB",
        "ALBUMARTIST" | "ALBUM ARTIST" => "TPE2",
        "TRACKNUMBER" => "TRCK",
        "DISCNUMBER" => "TPOS",
        "ISRC" => "TSRC",
        "DATE" | "YEAR" => "TDRC",
        "GENRE" => "TCON",
        "COMPOSER" => "TCOM",
        "COPYRIGHT" => "TCOP",
        _ => return None,
    })
}

/// A 28-bit synchsafe integer (7 bits per byte).
fn synchsafe(n: usize) -> Result<[u8; 4], String> {
    if n >= 1 << 28 {
        return Err("the tags are larger than an ID3v2 tag can hold".into());
    }
    Ok([
        ((n >> 21) & 0x7f) as u8,
        ((n >> 14) & 0x7f) as u8,
        ((n >> 7) & 0x7f) as u8,
        (n & 0x7f) as u8,
    ])
}

fn frame(id: &str, body: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(&synchsafe(body.len())?);
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(body);
    Ok(())
}

/// The value of `key` among `tags` (case-insensitive).
fn value<'a>(tags: &'a [(String, String)], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.as_str())
}

/// The whole ID3v2.4 tag (header and frames) for `tags`, in their order.
pub fn tag(tags: &[(String, String)]) -> Result<Vec<u8>, String> {
    let mut frames = Vec::new();
    for (key, val) in tags {
        let upper = key.to_ascii_uppercase();
        if upper == "TRACKTOTAL" || upper == "TOTALTRACKS" || upper == "DISCTOTAL" {
            continue; // folded into TRCK / TPOS
        }
        let mut body = vec![3u8]; // UTF-8
        match frame_of(key) {
            Some(id) => {
                let text = match id {
                    "TRCK" => with_total(
                        val,
                        value(tags, "TRACKTOTAL").or(value(tags, "TOTALTRACKS")),
                    ),
                    "TPOS" => with_total(val, value(tags, "DISCTOTAL")),
                    _ => val.clone(),
                };
                body.extend_from_slice(text.as_bytes());
                frame(id, &body, &mut frames)?;
            }
            None => {
                body.extend_from_slice(key.as_bytes());
                body.push(0);
                body.extend_from_slice(val.as_bytes());
                frame("TXXX", &body, &mut frames)?;
            }
        }
    }
    let mut out = Vec::with_capacity(10 + frames.len());
    out.extend_from_slice(b"ID3");
    out.extend_from_slice(&[4, 0, 0]);
    out.extend_from_slice(&synchsafe(frames.len())?);
    out.extend_from_slice(&frames);
    Ok(out)
}

fn with_total(n: &str, total: Option<&str>) -> String {
    match total {
        Some(t) if !n.contains('/') => format!("{n}/{t}"),
        _ => n.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn frames_and_sizes() {
        let t = tag(&tags(&[
            ("TITLE", "Song"),
            ("TRACKNUMBER", "3"),
            ("TRACKTOTAL", "12"),
            ("UPC", "012345678905"),
        ]))
        .unwrap();
        assert_eq!(&t[..5], b"ID3\x04\x00");
        let size = t[6..10]
            .iter()
            .fold(0usize, |a, &b| (a << 7) | usize::from(b));
        assert_eq!(size, t.len() - 10);
        let body = &t[10..];
        assert_eq!(&body[..4], b"TIT2");
        assert_eq!(&body[10..15], b"\x03Song");
        let trck = body.windows(4).position(|w| w == b"TRCK").unwrap();
        assert_eq!(&body[trck + 10..trck + 15], b"\x033/12");
        let txxx = body.windows(4).position(|w| w == b"TXXX").unwrap();
        assert_eq!(&body[txxx + 10..txxx + 15], b"\x03UPC\x00");
        assert!(!body.windows(10).any(|w| w == b"TRACKTOTAL"));
    }
}
