//! Metadata: what a song says about itself (album, track, ISRC, UPC/EAN, composer, …) and what
//! a deliverable's file carries of it.
//!
//! A recipe declares it on its session (`session { isrc = …, album = …, track = 3 }`), an album
//! file on the album (`upc`, the album's title and artist) and on each song (`isrc`, `composer`,
//! …, over the song's own recipe); a deliverable can add or override any tag (`tags = { … }`)
//! and say what its WAV file carries (`bext`, `ixml`). Everything ends in one list of
//! Vorbis-comment style tags per deliverable ([`tags`]): FLAC writes it as Vorbis comments, WAV as
//! a `LIST`/`INFO` chunk beside the BWF `bext` chunk ([`crate::io::bext`]), lossy formats as their
//! own tags.
//!
//! Codes are checked where they are read: an ISRC is 12 characters `CC-XXX-YY-NNNNN`
//! ([`normalize_isrc`]), a UPC (12 digits) or EAN (13 digits) must carry a
//! right check digit ([`normalize_upc`]).

/// What a song (or an album) declares about itself. Every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    /// The album's title.
    pub album: Option<String>,
    /// The album's artist (when it differs from the song's).
    pub album_artist: Option<String>,
    /// Track number on the album, from 1.
    pub track: Option<u32>,
    /// Tracks on the album.
    pub track_total: Option<u32>,
    /// ISRC, normalized (12 characters, no hyphens).
    pub isrc: Option<String>,
    /// UPC/EAN barcode of the release, normalized (12 or 13 digits).
    pub upc: Option<String>,
    /// Composer.
    pub composer: Option<String>,
    /// Songwriter / lyricist.
    pub songwriter: Option<String>,
    /// Genre.
    pub genre: Option<String>,
    /// Release date (`2026` or `2026-03-01`).
    pub date: Option<String>,
    /// Copyright line.
    pub copyright: Option<String>,
    /// Record label.
    pub label: Option<String>,
    /// Free comment.
    pub comment: Option<String>,
    /// Who made the file (BWF `bext` Originator); "stemgraph" when absent.
    pub originator: Option<String>,
    /// When the master was made, `YYYY-MM-DD` or `YYYY-MM-DD HH:MM:SS` (BWF origination date and
    /// time); see [`origination`] for the default.
    pub origination: Option<String>,
}

/// The string keys of [`Metadata`] as recipes write them (besides `track` and `track_total`,
/// which are numbers).
pub const TEXT_KEYS: &[&str] = &[
    "album",
    "album_artist",
    "isrc",
    "upc",
    "composer",
    "songwriter",
    "genre",
    "date",
    "copyright",
    "label",
    "comment",
    "originator",
    "origination",
];

impl Metadata {
    /// The text field named `key` (one of [`TEXT_KEYS`]).
    pub fn text_mut(&mut self, key: &str) -> Option<&mut Option<String>> {
        Some(match key {
            "album" => &mut self.album,
            "album_artist" => &mut self.album_artist,
            "isrc" => &mut self.isrc,
            "upc" => &mut self.upc,
            "composer" => &mut self.composer,
            "songwriter" => &mut self.songwriter,
            "genre" => &mut self.genre,
            "date" => &mut self.date,
            "copyright" => &mut self.copyright,
            "label" => &mut self.label,
            "comment" => &mut self.comment,
            "originator" => &mut self.originator,
            "origination" => &mut self.origination,
            _ => return None,
        })
    }

    /// Every field `over` sets replaces this one's.
    pub fn overlay(&mut self, over: &Metadata) {
        let mut over_text = over.clone();
        for key in TEXT_KEYS {
            let v = over_text.text_mut(key).and_then(Option::take);
            if let (Some(v), Some(slot)) = (v, self.text_mut(key)) {
                *slot = Some(v);
            }
        }
        self.track = over.track.or(self.track);
        self.track_total = over.track_total.or(self.track_total);
    }

    /// Checks and normalizes the codes and the origination date; the message names the field.
    pub fn validate(&mut self) -> Result<(), String> {
        if let Some(i) = &self.isrc {
            self.isrc = Some(normalize_isrc(i).map_err(|e| format!("isrc: {e}"))?);
        }
        if let Some(u) = &self.upc {
            self.upc = Some(normalize_upc(u).map_err(|e| format!("upc: {e}"))?);
        }
        if let Some(o) = &self.origination {
            parse_origination(o).map_err(|e| format!("origination: {e}"))?;
        }
        if let (Some(t), Some(n)) = (self.track, self.track_total) {
            if t > n {
                return Err(format!("track = {t} is past track_total = {n}"));
            }
        }
        if self.track == Some(0) {
            return Err("track numbers count from 1".into());
        }
        Ok(())
    }
}

/// Normalizes an ISRC (`CC-XXX-YY-NNNNN`, hyphens optional) to its 12 characters, upper case.
pub fn normalize_isrc(isrc: &str) -> Result<String, String> {
    let s: String = isrc
        .chars()
        .filter(|c| *c != '-' && *c != ' ')
        .collect::<String>()
        .to_ascii_uppercase();
    let b = s.as_bytes();
    let ok = b.len() == 12
        && b[..2].iter().all(u8::is_ascii_uppercase)
        && b[2..5].iter().all(u8::is_ascii_alphanumeric)
        && b[5..].iter().all(u8::is_ascii_digit);
    if ok {
        Ok(s)
    } else {
        Err(format!(
            "`{isrc}` is not an ISRC: it is 12 characters, CC-XXX-YY-NNNNN (country, registrant, \
             year, designation)"
        ))
    }
}

/// Normalizes a UPC-A (12 digits) or EAN-13 (13 digits) barcode, spaces and hyphens allowed, and
/// checks its check digit (GS1: the digits weighted 3 and 1 alternately from the right, check
/// digit included, sum to a multiple of 10).
pub fn normalize_upc(code: &str) -> Result<String, String> {
    let s: String = code.chars().filter(|c| *c != ' ' && *c != '-').collect();
    if !(s.len() == 12 || s.len() == 13) || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "`{code}` is not a UPC or EAN: a UPC-A is 12 digits, an EAN-13 13 digits"
        ));
    }
    let digits: Vec<u32> = s.bytes().map(|b| u32::from(b - b'0')).collect();
    let (body, check) = digits.split_at(digits.len() - 1);
    let sum: u32 = body
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| if i % 2 == 0 { d * 3 } else { *d })
        .sum();
    let want = (10 - sum % 10) % 10;
    if want != check[0] {
        return Err(format!(
            "`{code}` has a wrong check digit: its last digit is {}, the other digits make it {want}",
            check[0]
        ));
    }
    Ok(s)
}

/// A civil date and time, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime {
    /// Year.
    pub year: u32,
    /// Month, 1–12.
    pub month: u32,
    /// Day, 1–31.
    pub day: u32,
    /// Hour.
    pub hour: u32,
    /// Minute.
    pub minute: u32,
    /// Second.
    pub second: u32,
}

impl DateTime {
    /// `YYYY-MM-DD` (BWF OriginationDate).
    pub fn date(&self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
    /// `HH:MM:SS` (BWF OriginationTime).
    pub fn time(&self) -> String {
        format!("{:02}:{:02}:{:02}", self.hour, self.minute, self.second)
    }

    /// The UTC time `secs` seconds after 1970-01-01 (days to civil date: H. Hinnant's algorithm).
    pub fn from_unix(secs: u64) -> DateTime {
        let days = (secs / 86_400) as i64;
        let rem = secs % 86_400;
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as u32;
        DateTime {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem / 60 % 60) as u32,
            second: (rem % 60) as u32,
        }
    }
}

/// Parses `YYYY-MM-DD`, `YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DDTHH:MM:SS`.
pub fn parse_origination(s: &str) -> Result<DateTime, String> {
    let bad = || format!("`{s}` is not a date: write \"2026-03-01\" or \"2026-03-01 14:30:00\"");
    let s = s.trim();
    let (date, time) = match s.split_once(['T', ' ']) {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let num = |p: &str, len: usize| -> Result<u32, String> {
        if p.len() == len && p.bytes().all(|b| b.is_ascii_digit()) {
            p.parse().map_err(|_| bad())
        } else {
            Err(bad())
        }
    };
    let d: Vec<&str> = date.split('-').collect();
    if d.len() != 3 {
        return Err(bad());
    }
    let (year, month, day) = (num(d[0], 4)?, num(d[1], 2)?, num(d[2], 2)?);
    let (hour, minute, second) = match time {
        None => (0, 0, 0),
        Some(t) => {
            let t: Vec<&str> = t.split(':').collect();
            if t.len() != 3 {
                return Err(bad());
            }
            (num(t[0], 2)?, num(t[1], 2)?, num(t[2], 2)?)
        }
    };
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(bad());
    }
    Ok(DateTime {
        year,
        month,
        day,
        hour,
        minute,
        second,
    })
}

/// When the master was made, for BWF: the recipe's `origination`, else the `SOURCE_DATE_EPOCH`
/// environment variable at the time the recipe is loaded (seconds since 1970, UTC: the
/// reproducible-builds convention; see [`Metadata::resolve_origination`]), else none (the
/// fields are left blank). Never the clock: renders stay bit-identical across runs.
pub fn origination(meta: &Metadata) -> Option<DateTime> {
    meta.origination
        .as_deref()
        .and_then(|o| parse_origination(o).ok())
}

impl Metadata {
    /// Fills `origination` from `SOURCE_DATE_EPOCH` when the recipe gave none (so the session,
    /// and an album's record of it, say which date the files carry).
    pub fn resolve_origination(&mut self) {
        if self.origination.is_none() {
            self.origination = std::env::var("SOURCE_DATE_EPOCH")
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|s| {
                    let d = DateTime::from_unix(s);
                    format!("{} {}", d.date(), d.time())
                });
        }
    }
}

/// The tags of a song in Vorbis-comment names, in a fixed order: TITLE, ARTIST, then what its
/// metadata sets (ALBUM, ALBUMARTIST, TRACKNUMBER, TRACKTOTAL, ISRC, BARCODE, COMPOSER,
/// LYRICIST, GENRE, DATE, COPYRIGHT, LABEL, COMMENT), then `extra` (a deliverable's own tags),
/// each replacing a tag of the same name (case-insensitive) or added at the end.
pub fn tags(
    title: &str,
    artist: Option<&str>,
    meta: &Metadata,
    extra: &[(String, String)],
) -> Vec<(String, String)> {
    let mut tags = vec![("TITLE".to_string(), title.to_string())];
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            tags.push((k.to_string(), v));
        }
    };
    put("ARTIST", artist.map(str::to_string));
    put("ALBUM", meta.album.clone());
    put("ALBUMARTIST", meta.album_artist.clone());
    put("TRACKNUMBER", meta.track.map(|t| t.to_string()));
    put("TRACKTOTAL", meta.track_total.map(|t| t.to_string()));
    put("ISRC", meta.isrc.clone());
    put("BARCODE", meta.upc.clone());
    put("COMPOSER", meta.composer.clone());
    put("LYRICIST", meta.songwriter.clone());
    put("GENRE", meta.genre.clone());
    put("DATE", meta.date.clone());
    put("COPYRIGHT", meta.copyright.clone());
    put("LABEL", meta.label.clone());
    put("COMMENT", meta.comment.clone());
    for (k, v) in extra {
        match tags.iter_mut().find(|(key, _)| key.eq_ignore_ascii_case(k)) {
            Some(slot) => slot.1 = v.clone(),
            None => tags.push((k.clone(), v.clone())),
        }
    }
    tags
}

/// The value of tag `key` (case-insensitive) in a tag list.
pub fn tag<'a>(tags: &'a [(String, String)], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn barcodes() {
        // EAN-13 and UPC-A with their GS1 check digits.
        assert_eq!(normalize_upc("4006381333931").unwrap(), "4006381333931");
        assert_eq!(normalize_upc("0 36000 29145 2").unwrap(), "036000291452");
        assert!(normalize_upc("4006381333932")
            .unwrap_err()
            .contains("check digit"));
        assert!(normalize_upc("036000291453").is_err());
        assert!(normalize_upc("12345").is_err());
        assert!(normalize_upc("40063813339x1").is_err());
    }

    #[test]
    fn dates() {
        let d = parse_origination("2026-03-01 14:30:05").unwrap();
        assert_eq!(
            (d.date(), d.time()),
            ("2026-03-01".into(), "14:30:05".into())
        );
        assert_eq!(
            parse_origination("2026-03-01T00:00:00").unwrap().date(),
            "2026-03-01"
        );
        assert!(parse_origination("2026-13-01").is_err());
        assert!(parse_origination("yesterday").is_err());
        let e = DateTime::from_unix(1_700_000_000);
        assert_eq!(
            (e.date(), e.time()),
            ("2023-11-14".into(), "22:13:20".into())
        );
        assert_eq!(DateTime::from_unix(0).date(), "1970-01-01");
        assert_eq!(DateTime::from_unix(951_782_400).date(), "2000-02-29");
    }

    #[test]
    fn tag_order_and_overrides() {
        let meta = Metadata {
            album: Some("A".into()),
            track: Some(2),
            isrc: Some("GBAYE2400001".into()),
            ..Default::default()
        };
        let t = tags(
            "T",
            Some("Ar"),
            &meta,
            &[("album".into(), "B".into()), ("X".into(), "1".into())],
        );
        let keys: Vec<&str> = t.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            ["TITLE", "ARTIST", "ALBUM", "TRACKNUMBER", "ISRC", "X"]
        );
        assert_eq!(tag(&t, "ALBUM"), Some("B"));
    }
}
