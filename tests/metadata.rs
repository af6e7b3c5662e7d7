//! Metadata in delivered files: a recipe's `session { isrc, upc, album, track, composer, … }`
//! and a deliverable's `bext`/`ixml`/`tags` end up in the WAV's BWF `bext` chunk (read back by a
//! parser written here from the EBU Tech 3285 v2 layout), its `LIST`/`INFO` and `iXML` chunks,
//! and the FLAC's Vorbis comments (read back by symphonia); ffprobe reads the tags of both.
//! The `bext` loudness fields equal the report's analysis of the file as written, renders are
//! bit-identical run to run, and malformed codes are errors naming the recipe's line.
//!
//! ffprobe checks are skipped when ffmpeg is missing, except under `CI=true`.

mod common;

use common::flac::vorbis_comments;
use common::tools::have;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use stemgraph::render::{render, RenderOptions};
use stemgraph::script::load_recipe;

/// A RIFF chunk of a WAV file: id and body.
type Chunk = ([u8; 4], Vec<u8>);

/// Every chunk of a RIFF/WAVE file, in order (an independent walk: id, LE size, body, pad).
fn chunks(bytes: &[u8]) -> Vec<Chunk> {
    assert_eq!(&bytes[..4], b"RIFF");
    assert_eq!(&bytes[8..12], b"WAVE");
    let riff = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
    assert_eq!(riff + 8, bytes.len(), "RIFF size");
    let mut out = Vec::new();
    let mut at = 12;
    while at + 8 <= bytes.len() {
        let id: [u8; 4] = bytes[at..at + 4].try_into().unwrap();
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        out.push((id, bytes[at + 8..at + 8 + len].to_vec()));
        at += 8 + len + len % 2;
    }
    assert_eq!(at, bytes.len(), "chunks end with the file");
    out
}

/// The `bext` fields, read from the EBU Tech 3285 (version 2) layout.
#[derive(Debug)]
struct Bext {
    description: String,
    originator: String,
    originator_reference: String,
    date: String,
    time: String,
    time_reference: u64,
    version: u16,
    umid_zero: bool,
    loudness: [i16; 5],
    reserved_zero: bool,
    coding_history: String,
}

fn text(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8(b[..end].to_vec()).unwrap()
}

fn parse_bext(b: &[u8]) -> Bext {
    assert!(b.len() >= 602, "bext is at least 602 bytes");
    let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    let i16_at = |o: usize| i16::from_le_bytes(b[o..o + 2].try_into().unwrap());
    Bext {
        description: text(&b[0..256]),
        originator: text(&b[256..288]),
        originator_reference: text(&b[288..320]),
        date: text(&b[320..330]),
        time: text(&b[330..338]),
        time_reference: u64::from(u32_at(338)) | (u64::from(u32_at(342)) << 32),
        version: u16::from_le_bytes([b[346], b[347]]),
        umid_zero: b[348..412].iter().all(|&x| x == 0),
        loudness: [
            i16_at(412),
            i16_at(414),
            i16_at(416),
            i16_at(418),
            i16_at(420),
        ],
        reserved_zero: b[422..602].iter().all(|&x| x == 0),
        coding_history: text(&b[602..]),
    }
}

/// The `LIST`/`INFO` entries of a chunk list.
fn info(chunks: &[Chunk]) -> BTreeMap<String, String> {
    let list = chunks
        .iter()
        .find(|(id, body)| id == b"LIST" && &body[..4] == b"INFO")
        .expect("a LIST/INFO chunk");
    let b = &list.1[4..];
    let mut out = BTreeMap::new();
    let mut at = 0;
    while at + 8 <= b.len() {
        let id = String::from_utf8(b[at..at + 4].to_vec()).unwrap();
        let len = u32::from_le_bytes(b[at + 4..at + 8].try_into().unwrap()) as usize;
        out.insert(id, text(&b[at + 8..at + 8 + len]));
        at += 8 + len + len % 2;
    }
    out
}

/// A stem: 3 s of a 440 Hz sine at −12 dBFS, 24-bit 48 kHz stereo.
fn write_stem(path: &Path) {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 48_000,
        bits_per_sample: 24,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for n in 0..3 * 48_000 {
        let x = 0.25 * (2.0 * std::f64::consts::PI * 440.0 * n as f64 / 48_000.0).sin();
        let v = (x * 8_388_607.0).round() as i32;
        w.write_sample(v).unwrap();
        w.write_sample(v).unwrap();
    }
    w.finalize().unwrap();
}

const RECIPE: &str = r#"local s = session {
  title = "Meta Song", artist = "The Examples",
  album = "Metadata Album", track = 2, track_total = 9,
  isrc = "gb-aye-26-00042", upc = "4006381333931",
  composer = "A. Composer", genre = "Test", date = "2026", copyright = "(c) 2026 Examples",
  origination = "2026-03-01 14:30:05",
}
s:stem("mix", "mix.wav"):to(s:output "main")
s:deliver(wav { file = "m24.wav", bits = 24, ixml = true,
                bext = { originator_reference = "REF-0001" }, tags = { COMMENT = "first cut" } })
s:deliver(wav { file = "m16.wav", bits = 16 })
s:deliver(wav { file = "plain.wav", bits = 24, bext = false })
s:deliver(flac { file = "m.flac", bits = 24 })
return s
"#;

fn project(recipe: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    write_stem(&dir.path().join("mix.wav"));
    let p = dir.path().join("song.lua");
    std::fs::write(&p, recipe).unwrap();
    (dir, p)
}

fn sha256_hex(path: &Path) -> String {
    stemgraph::render::report::sha256_file(path).unwrap().0
}

#[test]
fn wav_carries_bext_info_and_ixml_and_flac_its_vorbis_comments() {
    let (dir, recipe) = project(RECIPE);
    let session = load_recipe(&recipe).unwrap();
    let out = dir.path().join("out");
    let result = render(&session, RenderOptions::new(&out)).unwrap();
    let report = result.report.as_ref().expect("a report");

    let bytes = std::fs::read(out.join("m24.wav")).unwrap();
    let cs = chunks(&bytes);
    let ids: Vec<&[u8; 4]> = cs.iter().map(|(id, _)| id).collect();
    assert_eq!(ids, [b"fmt ", b"bext", b"LIST", b"iXML", b"data"]);
    let b = parse_bext(&cs[1].1);
    eprintln!("{b:?}");
    assert_eq!(b.description, "Meta Song - The Examples");
    assert_eq!(b.originator, "stemgraph");
    assert_eq!(b.originator_reference, "REF-0001");
    assert_eq!(
        (b.date.as_str(), b.time.as_str()),
        ("2026-03-01", "14:30:05")
    );
    assert_eq!(b.time_reference, 0);
    assert_eq!(b.version, 2);
    assert!(b.umid_zero && b.reserved_zero);
    let hash = sha256_hex(&recipe);
    assert_eq!(
        b.coding_history,
        format!(
            "A=PCM,F=48000,W=24,M=stereo,T=stemgraph {}; recipe song.lua sha256 {hash}\r\n",
            env!("CARGO_PKG_VERSION")
        )
    );
    // The loudness fields are the report's analysis of this very file, × 100.
    let a = report
        .deliverables
        .iter()
        .find(|d| d.analysis.path.ends_with("m24.wav"))
        .expect("the report analyses m24.wav")
        .analysis
        .clone();
    let want = [
        a.integrated_lufs,
        a.loudness_range_lu,
        a.true_peak_dbtp,
        a.momentary_max_lufs,
        a.short_term_max_lufs,
    ]
    .map(|v| (v * 100.0).round() as i16);
    assert_eq!(b.loudness, want);
    // A sine of amplitude 0.25 on both channels: BS.1770 gives 10·log10(2 · 0.25²/2) − 0.691 =
    // −12.73 LUFS (K-weighting is flat at 440 Hz to 0.1 dB), a true peak of 20·log10(0.25) =
    // −12.04 dBTP, and no loudness range.
    assert!((b.loudness[0] + 1273).abs() <= 10, "{:?}", b.loudness);
    assert!((b.loudness[2] + 1204).abs() <= 2, "{:?}", b.loudness);
    assert_eq!(b.loudness[1], 0, "{:?}", b.loudness);
    // ... and an independent meter agrees on the written file.
    let (rate, ch) = common::audio::decode(&out.join("m24.wav"));
    let mut m = stemgraph::analysis::meters::LoudnessMeter::new(f64::from(rate), ch.len());
    let planar: Vec<&[f64]> = ch.iter().map(|c| &c[..]).collect();
    m.push(&planar);
    assert!((m.integrated_lufs() * 100.0 - f64::from(b.loudness[0])).abs() <= 1.0);

    let tags = info(&cs);
    assert_eq!(tags["INAM"], "Meta Song");
    assert_eq!(tags["IART"], "The Examples");
    assert_eq!(tags["IPRD"], "Metadata Album");
    assert_eq!(tags["ITRK"], "2");
    assert_eq!(tags["ISRC"], "GBAYE2600042");
    assert_eq!(tags["IMUS"], "A. Composer");
    assert_eq!(tags["ICMT"], "first cut");
    let ixml = String::from_utf8(cs[3].1.clone()).unwrap();
    assert!(ixml.contains("<PROJECT>Metadata Album</PROJECT>"), "{ixml}");
    assert!(
        ixml.contains("<TAKE>2</TAKE>") && ixml.contains("ISRC=GBAYE2600042"),
        "{ixml}"
    );

    // The 16-bit file has its own coding history; no iXML unless asked.
    let cs16 = chunks(&std::fs::read(out.join("m16.wav")).unwrap());
    let ids: Vec<&[u8; 4]> = cs16.iter().map(|(id, _)| id).collect();
    assert_eq!(ids, [b"fmt ", b"bext", b"LIST", b"data"]);
    assert!(parse_bext(&cs16[1].1).coding_history.contains("W=16"));
    // Readers that walk chunks without RIFF's pad byte (hound) still find the audio.
    let h = hound::WavReader::open(out.join("m24.wav")).unwrap();
    assert_eq!(h.duration(), result.files[0].wav.frames as u32);
    let plain = chunks(&std::fs::read(out.join("plain.wav")).unwrap());
    assert!(plain.iter().all(|(id, _)| id != b"bext"), "bext = false");

    // FLAC: the same tags as Vorbis comments, read by our reader and by symphonia.
    let comments: BTreeMap<String, String> =
        vorbis_comments(&out.join("m.flac")).into_iter().collect();
    for (k, v) in [
        ("TITLE", "Meta Song"),
        ("ARTIST", "The Examples"),
        ("ALBUM", "Metadata Album"),
        ("TRACKNUMBER", "2"),
        ("TRACKTOTAL", "9"),
        ("ISRC", "GBAYE2600042"),
        ("BARCODE", "4006381333931"),
        ("COMPOSER", "A. Composer"),
        ("GENRE", "Test"),
        ("DATE", "2026"),
        ("COPYRIGHT", "(c) 2026 Examples"),
    ] {
        assert_eq!(comments.get(k).map(String::as_str), Some(v), "FLAC {k}");
    }
    let read = symphonia_tags(&out.join("m.flac"));
    for key in [
        "TITLE",
        "ARTIST",
        "ALBUM",
        "TRACKNUMBER",
        "ISRC",
        "BARCODE",
        "COMPOSER",
    ] {
        assert_eq!(read.get(key), comments.get(key), "symphonia: {key}");
    }

    if have("ffmpeg") {
        let wav = ffprobe_tags(&out.join("m24.wav"));
        assert_eq!(wav.get("title").map(String::as_str), Some("Meta Song"));
        assert_eq!(wav.get("artist").map(String::as_str), Some("The Examples"));
        assert_eq!(wav.get("album").map(String::as_str), Some("Metadata Album"));
        assert_eq!(wav.get("track").map(String::as_str), Some("2"));
        assert_eq!(wav.get("ISRC").map(String::as_str), Some("GBAYE2600042"));
        // ffmpeg's names for bext fields: Originator is encoded_by, OriginationTime
        // creation_time; Description is the comment (INFO's ICMT wins when there is one).
        assert_eq!(wav.get("comment").map(String::as_str), Some("first cut"));
        assert_eq!(wav.get("encoded_by").map(String::as_str), Some("stemgraph"));
        assert_eq!(
            wav.get("originator_reference").map(String::as_str),
            Some("REF-0001")
        );
        assert_eq!(
            wav.get("creation_time").map(String::as_str),
            Some("14:30:05")
        );
        assert_eq!(wav.get("time_reference").map(String::as_str), Some("0"));
        assert!(wav["coding_history"].contains(&hash), "{wav:?}");
        let wav16 = ffprobe_tags(&out.join("m16.wav"));
        assert_eq!(
            wav16.get("comment").map(String::as_str),
            Some("Meta Song - The Examples")
        );
        let flac = ffprobe_tags(&out.join("m.flac"));
        assert_eq!(flac.get("ISRC").map(String::as_str), Some("GBAYE2600042"));
        assert_eq!(flac.get("TITLE").map(String::as_str), Some("Meta Song"));
        assert_eq!(
            flac.get("ALBUM").map(String::as_str),
            Some("Metadata Album")
        );
        assert_eq!(
            flac.get("track")
                .or(flac.get("TRACKNUMBER"))
                .map(String::as_str),
            Some("2")
        );
    }

    // Bit-identical on a second render.
    let again = dir.path().join("again");
    render(&session, RenderOptions::new(&again)).unwrap();
    for f in ["m24.wav", "m16.wav", "plain.wav", "m.flac"] {
        assert!(
            std::fs::read(out.join(f)).unwrap() == std::fs::read(again.join(f)).unwrap(),
            "{f} differs between two renders"
        );
    }
}

/// The format tags ffprobe reads (keys as ffprobe spells them).
fn ffprobe_tags(path: &Path) -> BTreeMap<String, String> {
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "format_tags", "-of", "json"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        probe.status.success(),
        "ffprobe fails on {}",
        path.display()
    );
    let json: serde_json::Value = serde_json::from_slice(&probe.stdout).unwrap();
    json["format"]["tags"]
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// The tags symphonia reads from a file's metadata, by their original key.
fn symphonia_tags(path: &Path) -> BTreeMap<String, String> {
    common::flac::symphonia_tags(path)
}

#[test]
fn origination_comes_from_source_date_epoch_when_the_recipe_has_none() {
    let body = RECIPE.replace("  origination = \"2026-03-01 14:30:05\",\n", "");
    let (dir, recipe) = project(&body);
    // Blank without either.
    std::env::remove_var("SOURCE_DATE_EPOCH");
    let s = load_recipe(&recipe).unwrap();
    assert_eq!(s.metadata.origination, None);
    std::env::set_var("SOURCE_DATE_EPOCH", "1700000000");
    let s = load_recipe(&recipe).unwrap();
    std::env::remove_var("SOURCE_DATE_EPOCH");
    assert_eq!(
        s.metadata.origination.as_deref(),
        Some("2023-11-14 22:13:20")
    );
    let mut s = s;
    s.deliverables.retain(|d| d.file == "m16.wav");
    let mut opts = RenderOptions::new(dir.path().join("out"));
    opts.report = false;
    render(&s, opts).unwrap();
    let cs = chunks(&std::fs::read(dir.path().join("out/m16.wav")).unwrap());
    let b = parse_bext(&cs[1].1);
    assert_eq!(
        (b.date.as_str(), b.time.as_str()),
        ("2023-11-14", "22:13:20")
    );
    // Measured even without a report.
    assert!(
        b.loudness[0] < 0 && b.loudness[0] > -3000,
        "{:?}",
        b.loudness
    );
}

#[test]
fn malformed_codes_are_errors_at_the_recipe_line() {
    let cases = [
        ("isrc = \"gb-aye-26-00042\"", "isrc = \"GB-AYE-26\"", "ISRC"),
        (
            "upc = \"4006381333931\"",
            "upc = \"4006381333932\"",
            "check digit",
        ),
        ("upc = \"4006381333931\"", "upc = \"12345\"", "UPC"),
        ("track = 2,", "track = 0,", "track"),
        (
            "origination = \"2026-03-01 14:30:05\"",
            "origination = \"March\"",
            "origination",
        ),
        ("COMMENT = \"first cut\"", "ISRC = \"nope\"", "tag ISRC"),
        (
            "bext = { originator_reference = \"REF-0001\" }",
            "bext = 3",
            "bext",
        ),
    ];
    for (from, to, says) in cases {
        let body = RECIPE.replace(from, to);
        assert_ne!(body, RECIPE, "{from}");
        let (_dir, recipe) = project(&body);
        let e = load_recipe(&recipe).unwrap_err().to_string();
        // The session's errors point at its `session {` line (1), a deliverable's at its own (9).
        let line = if to.starts_with("ISRC") || to.starts_with("bext") {
            9
        } else {
            1
        };
        assert!(e.contains(says), "{to}: {e}");
        assert!(e.contains(&format!("song.lua:{line}")), "{to}: {e}");
    }
}
