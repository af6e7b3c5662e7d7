//! DDP 2.00 filesets (`album { cd = { ddp = … } }`): an album's fileset is parsed back by a
//! reader written here from the public descriptions of the format — the field tables that
//! open-source DDP players and exporters document (DDPID 128 bytes: level, UPC/EAN at 8,
//! master id at 38, "CD" at 87; DDPMS 128-byte "VVVM" packets: stream type at 4, length at 14,
//! subcode at 30, CD mode at 38, pre-gap 2 at 46, file name at 74; PQDESCR 64-byte "VVVS"
//! packets: track at 4, index at 6, mmssff at 10, ISRC at 20, UPC at 32) and libcdio's
//! description of CD-Text packs (18 bytes, CRC-16/CCITT inverted). It checks the track count,
//! each track's start and end in frames against the CD image's CUE layout, the ISRCs, the UPC,
//! the CD-Text titles and performers, the MD5 checksums (with `md5sum -c`), and that IMAGE.DAT
//! is the 2 s pre-gap followed by the CD image's PCM byte for byte. Red Book violations are
//! errors that say what is wrong.

use crate::common;

use common::demo::band_4stem_song;
use std::collections::BTreeMap;
use std::path::Path;
use stemgraph::album::cd::CdOutcome;
use stemgraph::album::ddp::{check_red_book, DiscTrack};
use stemgraph::album::{render_album, AlbumOptions};
use stemgraph::demo::DemoOptions;
use stemgraph::script::load_album;

/// A fixed-width ASCII field, trimmed.
fn field(b: &[u8], at: usize, len: usize) -> String {
    String::from_utf8(b[at..at + len].to_vec())
        .unwrap()
        .trim()
        .to_string()
}

#[derive(Debug)]
struct MapStream {
    kind: String,
    length: u64,
    subcode: String,
    cd_mode: String,
    pregap: Option<u64>,
    name: String,
}

#[derive(Debug, Clone)]
struct Pq {
    track: String,
    index: u32,
    frame: u64,
    isrc: String,
    upc: String,
}

/// The CD-Text pack CRC: CRC-16 with polynomial 0x1021 over the 16 bytes, no reflection,
/// initial value 0, result inverted (computed here a byte-wise table at a time).
fn cdtext_crc(bytes: &[u8]) -> u16 {
    let table: Vec<u16> = (0..256u16)
        .map(|i| {
            let mut c = i << 8;
            for _ in 0..8 {
                c = if c & 0x8000 != 0 {
                    (c << 1) ^ 0x1021
                } else {
                    c << 1
                };
            }
            c
        })
        .collect();
    let mut crc = 0u16;
    for &b in bytes {
        crc = (crc << 8) ^ table[usize::from(((crc >> 8) as u8) ^ b)];
    }
    !crc
}

/// CD-Text strings by pack type and track (block 0).
fn read_cdtext(bytes: &[u8]) -> BTreeMap<(u8, usize), String> {
    assert_eq!(bytes.len() % 18, 0, "CD-Text is whole packs");
    let mut by_type: BTreeMap<u8, (usize, Vec<u8>)> = BTreeMap::new();
    for (seq, p) in bytes.chunks(18).enumerate() {
        let crc = u16::from_be_bytes([p[16], p[17]]);
        assert_eq!(cdtext_crc(&p[..16]), crc, "pack {seq}: CRC");
        assert_eq!(usize::from(p[2]), seq, "pack {seq}: sequence number");
        assert_eq!(p[3] & 0x70, 0, "block 0");
        if p[0] == 0x8f {
            continue;
        }
        let entry = by_type
            .entry(p[0])
            .or_insert_with(|| (usize::from(p[1] & 0x7f), Vec::new()));
        entry.1.extend_from_slice(&p[4..16]);
    }
    let mut out = BTreeMap::new();
    for (kind, (first, bytes)) in by_type {
        let mut track = first;
        for s in bytes.split(|&b| b == 0) {
            if !s.is_empty() {
                // ISO 8859-1: each byte is the code point.
                out.insert((kind, track), s.iter().map(|&b| char::from(b)).collect());
            }
            track += 1;
        }
    }
    out
}

struct Fileset {
    upc: String,
    master_id: String,
    streams: Vec<MapStream>,
    pq: Vec<Pq>,
    text: BTreeMap<(u8, usize), String>,
}

fn read_fileset(dir: &Path) -> Fileset {
    let id = std::fs::read(dir.join("DDPID")).unwrap();
    assert_eq!(id.len(), 128);
    assert_eq!(&id[..8], b"DDP 2.00");
    assert_eq!(&id[87..89], b"CD");
    let map = std::fs::read(dir.join("DDPMS")).unwrap();
    assert_eq!(map.len() % 128, 0);
    let streams: Vec<MapStream> = map
        .chunks(128)
        .map(|p| {
            assert_eq!(&p[..4], b"VVVM");
            assert_eq!(field(p, 71, 3), "017", "size of the stream identifier");
            MapStream {
                kind: field(p, 4, 2),
                length: field(p, 14, 8).parse().unwrap(),
                subcode: field(p, 30, 8),
                cd_mode: field(p, 38, 2),
                pregap: field(p, 46, 4).parse().ok(),
                name: field(p, 74, 17),
            }
        })
        .collect();
    let pq_name = &streams
        .iter()
        .find(|s| s.kind == "S0" && s.subcode == "PQ DESCR")
        .expect("a PQ stream")
        .name;
    let pq_bytes = std::fs::read(dir.join(pq_name)).unwrap();
    assert_eq!(pq_bytes.len() % 64, 0);
    let pq = pq_bytes
        .chunks(64)
        .map(|p| {
            assert_eq!(&p[..4], b"VVVS");
            let (m, s, f): (u64, u64, u64) = (
                field(p, 10, 2).parse().unwrap(),
                field(p, 12, 2).parse().unwrap(),
                field(p, 14, 2).parse().unwrap(),
            );
            assert!(s < 60 && f < 75);
            Pq {
                track: field(p, 4, 2),
                index: field(p, 6, 2).parse().unwrap(),
                frame: (m * 60 + s) * 75 + f,
                isrc: field(p, 20, 12),
                upc: field(p, 32, 13),
            }
        })
        .collect();
    let text = streams
        .iter()
        .find(|s| s.subcode == "CDTEXT")
        .map(|s| read_cdtext(&std::fs::read(dir.join(&s.name)).unwrap()))
        .unwrap_or_default();
    Fileset {
        upc: field(&id, 8, 13),
        master_id: field(&id, 38, 48),
        streams,
        pq,
        text,
    }
}

/// The PCM bytes of a WAV's `data` chunk.
fn wav_pcm(path: &Path) -> Vec<u8> {
    let b = std::fs::read(path).unwrap();
    let mut at = 12;
    loop {
        let len = u32::from_le_bytes(b[at + 4..at + 8].try_into().unwrap()) as usize;
        if &b[at..at + 4] == b"data" {
            return b[at + 8..at + 8 + len].to_vec();
        }
        at += 8 + len + len % 2;
    }
}

fn project(seconds: &[f64], ddp: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let mut songs = String::new();
    let names = ["Ünïcode One", "Two", "Three"];
    for (i, s) in seconds.iter().enumerate() {
        let n = i + 1;
        let opts = DemoOptions {
            seconds: *s,
            seed: 300 + n as u64,
            ..DemoOptions::default()
        };
        band_4stem_song(dir.path(), n, &opts);
        songs += &format!(
            "    {{ title = \"{}\", stems = \"songs/{n:02}/stems\", isrc = \"GB-AYE-26-0000{n}\", composer = \"Composer {n}\" }},\n",
            names[i]
        );
    }
    let album = dir.path().join("album.lua");
    std::fs::write(
        &album,
        format!(
            r#"return album {{
  title = "DDP Album", artist = "The Examples", upc = "4006381333931",
  template = "band_4stem",
  policy = {{ mode = "album_gain", target_lufs = -14, ceiling_dbtp = -1 }},
  deliver = {{ wav {{ file = "{{track:02}} {{title}}.wav", bits = 24 }} }},
  cd = {{ file = "cd/{{album}}.wav", cue = "cd/{{album}}.cue", ddp = {ddp} }},
  gap_s = 2,
  songs = {{
{songs}  }},
}}
"#
        ),
    )
    .unwrap();
    (dir, album)
}

/// Renders the album; the CD outcome of its report (`None` when the report was current).
fn render(album: &Path, out: &Path) -> Result<Option<CdOutcome>, String> {
    let spec = load_album(album).map_err(|e| e.to_string())?;
    let mut opts = AlbumOptions::new(out);
    opts.jobs = 2;
    let outcome = render_album(&spec, &opts).map_err(|e| e.to_string())?;
    Ok(outcome
        .report
        .map(|r| r.cd.expect("the album has a CD image")))
}

#[test]
fn an_album_fileset_reads_back_with_its_tracks_codes_text_and_image() {
    let (dir, album) = project(
        &[5.0, 6.0, 4.5],
        r#"{ folder = "{album} DDP", master_id = "CAT-0001" }"#,
    );
    let out = dir.path().join("out");
    let cd = render(&album, &out)
        .unwrap()
        .expect("a first render writes the report");
    let ddp_dir = out.join("DDP Album DDP");
    let f = read_fileset(&ddp_dir);
    assert_eq!(f.upc, "4006381333931");
    assert_eq!(f.master_id, "CAT-0001");

    // Streams: CD-Text, PQ, and the audio main data with its 150-sector pause.
    let kinds: Vec<(&str, &str)> = f
        .streams
        .iter()
        .map(|s| (s.kind.as_str(), s.name.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [("S0", "CDTEXT.BIN"), ("S0", "PQDESCR"), ("D0", "IMAGE.DAT")]
    );
    for s in &f.streams {
        let bytes = std::fs::metadata(ddp_dir.join(&s.name)).unwrap().len();
        if s.kind == "D0" {
            assert_eq!(s.cd_mode, "DA");
            assert_eq!(s.pregap, Some(150));
            assert_eq!(bytes, s.length * 2352, "IMAGE.DAT is whole sectors");
        } else {
            assert_eq!(bytes, s.length);
        }
    }
    let sectors = f.streams[2].length;
    assert_eq!(sectors, 150 + cd.total_samples / 588);

    // PQ: lead-in with the UPC, each track's indexes where the CUE has them (+ 2 s), the
    // lead-out at the end of the image.
    assert_eq!(
        (f.pq[0].track.as_str(), f.pq[0].upc.as_str()),
        ("00", "4006381333931")
    );
    let lead_out = f.pq.last().unwrap();
    assert_eq!((lead_out.track.as_str(), lead_out.frame), ("AA", sectors));
    let starts: Vec<&Pq> =
        f.pq.iter()
            .filter(|p| p.index == 1 && p.track != "AA")
            .collect();
    assert_eq!(starts.len(), 3, "three tracks");
    for (n, (p, t)) in starts.iter().zip(&cd.tracks).enumerate() {
        assert_eq!(p.track, format!("{:02}", n + 1));
        assert_eq!(t.index01_samples % 588, 0);
        assert_eq!(
            p.frame,
            150 + t.index01_samples / 588,
            "track {} start",
            n + 1
        );
        assert_eq!(p.isrc, format!("GBAYE260000{}", n + 1));
        let pregap =
            f.pq.iter()
                .find(|q| q.track == p.track && q.index == 0)
                .expect("every track has its index 00");
        let want0 = match t.index00_samples {
            Some(s) => 150 + s / 588,
            None => 0,
        };
        assert_eq!(pregap.frame, want0, "track {} pre-gap", n + 1);
        // The track ends where the next one's pre-gap (or the lead-out) starts.
        let end = cd
            .tracks
            .get(n + 1)
            .map_or(sectors, |next| 150 + next.index00_samples.unwrap() / 588);
        let len_frames = end - p.frame;
        assert_eq!(
            len_frames,
            t.length_samples.div_ceil(588),
            "track {} length",
            n + 1
        );
    }
    // Track 1: index 00 at 00:00:00, index 01 at 00:02:00.
    assert_eq!(
        (f.pq[1].track.as_str(), f.pq[1].index, f.pq[1].frame),
        ("01", 0, 0)
    );
    assert_eq!(starts[0].frame, 150);

    // CD-Text: album and track titles and performers, composers, UPC and ISRCs.
    assert_eq!(f.text[&(0x80, 0)], "DDP Album");
    assert_eq!(f.text[&(0x80, 1)], "Ünïcode One");
    assert_eq!(f.text[&(0x80, 3)], "Three");
    assert_eq!(f.text[&(0x81, 0)], "The Examples");
    assert_eq!(f.text[&(0x81, 2)], "The Examples");
    assert_eq!(f.text[&(0x83, 2)], "Composer 2");
    assert_eq!(f.text[&(0x8e, 0)], "4006381333931");
    assert_eq!(f.text[&(0x8e, 3)], "GBAYE2600003");

    // IMAGE.DAT: 2 s of digital silence, then the CD image's samples byte for byte.
    let image = std::fs::read(ddp_dir.join("IMAGE.DAT")).unwrap();
    assert!(image[..150 * 2352].iter().all(|&b| b == 0));
    let pcm = wav_pcm(&out.join(&cd.image));
    assert!(
        image[150 * 2352..] == pcm[..],
        "IMAGE.DAT is the CD image's PCM"
    );

    // CHECKSUM.MD5 lists every file, and md5sum agrees.
    let sums = std::fs::read_to_string(ddp_dir.join("CHECKSUM.MD5")).unwrap();
    let listed: Vec<&str> = sums.lines().map(|l| &l[34..]).collect();
    assert_eq!(
        listed,
        ["DDPID", "DDPMS", "PQDESCR", "CDTEXT.BIN", "IMAGE.DAT"]
    );
    let check = std::process::Command::new("md5sum")
        .args(["-c", "--strict", "CHECKSUM.MD5"])
        .current_dir(&ddp_dir)
        .output()
        .expect("md5sum runs");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );

    // The report names the fileset; a second run leaves it as it is.
    let d = cd.ddp.expect("the report has the fileset");
    assert_eq!(d.folder, "DDP Album DDP");
    assert_eq!(d.sectors, sectors);
    let md = std::fs::read_to_string(out.join("album.md")).unwrap();
    assert!(md.contains("DDP 2.00 fileset `DDP Album DDP/`"), "{md}");
    let before = std::fs::read(ddp_dir.join("IMAGE.DAT")).unwrap();
    assert!(render(&album, &out).unwrap().is_none(), "nothing changed");
    assert!(std::fs::read(ddp_dir.join("IMAGE.DAT")).unwrap() == before);
    // Removing the fileset makes the next run write it again.
    std::fs::remove_dir_all(&ddp_dir).unwrap();
    render(&album, &out)
        .unwrap()
        .expect("the fileset was missing");
    assert!(std::fs::read(ddp_dir.join("IMAGE.DAT")).unwrap() == before);
}

#[test]
fn a_track_under_four_seconds_is_refused() {
    let (dir, album) = project(&[5.0, 1.0], "\"DDP\"");
    let e = render(&album, &dir.path().join("out")).unwrap_err();
    assert!(
        e.contains("track 2 (Two)") && e.contains("at least 4 s"),
        "{e}"
    );
    assert!(
        !dir.path().join("out/DDP/DDPID").exists(),
        "no fileset is written"
    );
}

#[test]
fn a_first_pregap_under_two_seconds_is_refused_at_the_album_line() {
    let (_dir, album) = project(&[5.0], "{ pregap_s = 1 }");
    let e = load_album(&album).unwrap_err().to_string();
    assert!(
        e.contains("pregap_s = 1") && e.contains("at least 2 s"),
        "{e}"
    );
    assert!(e.contains("album.lua:1"), "{e}");
}

fn track(number: usize, index1: u64, end: u64) -> DiscTrack {
    DiscTrack {
        number,
        title: format!("T{number}"),
        index0: Some(index1.saturating_sub(150)),
        index1,
        end,
    }
}

#[test]
fn red_book_limits() {
    let ok = vec![track(1, 150, 600), track(2, 750, 1200)];
    check_red_book(&ok, 1200).unwrap();
    // Track 1 under 2 s after the start.
    let e = check_red_book(&[track(1, 100, 600)], 600).unwrap_err();
    assert!(
        e.contains("pre-gap before track 1") && e.contains("1.33 s"),
        "{e}"
    );
    // A track of 3.99 s.
    let e = check_red_book(&[track(1, 150, 150 + 299)], 449).unwrap_err();
    assert!(e.contains("track 1 (T1) is 3.99 s long"), "{e}");
    // 100 tracks.
    let many: Vec<DiscTrack> = (0..100)
        .map(|i| track(i + 1, 150 + 300 * i as u64, 150 + 300 * (i as u64 + 1)))
        .collect();
    let e = check_red_book(&many, 150 + 300 * 100).unwrap_err();
    assert!(e.contains("100 tracks") && e.contains("99"), "{e}");
    // 80 minutes.
    let long = 80 * 60 * 75;
    let e = check_red_book(&[track(1, 150, long)], long).unwrap_err();
    assert!(e.contains("80:00") && e.contains("79:57"), "{e}");
    // A layout off the CD frame grid is refused before that.
    let cd = CdOutcome {
        image: String::new(),
        cue: String::new(),
        total_samples: 588 * 400,
        tracks: vec![stemgraph::album::cd::CueTrack {
            track: 1,
            title: "T".into(),
            index00_samples: None,
            index01_samples: 100,
            index01: String::new(),
            length_samples: 588 * 300,
        }],
        ddp: None,
    };
    let e = stemgraph::album::ddp::disc_layout(&cd, 2.0).unwrap_err();
    assert!(e.contains("not on a CD frame") && e.contains("588"), "{e}");
}
