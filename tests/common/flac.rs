//! Reading a FLAC file's metadata as bytes, independently of the product's decoder.

use std::path::Path;

/// The metadata blocks of a FLAC file's bytes: (type, body).
pub fn metadata_blocks(bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    assert_eq!(&bytes[..4], b"fLaC");
    let mut at = 4;
    let mut blocks = Vec::new();
    loop {
        let kind = bytes[at];
        let len = u32::from_be_bytes([0, bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
        blocks.push((kind & 0x7f, bytes[at + 4..at + 4 + len].to_vec()));
        at += 4 + len;
        if kind & 0x80 != 0 {
            return blocks;
        }
    }
}

/// The Vorbis comments of a FLAC file, parsed from its block, in order.
pub fn vorbis_comments(path: &Path) -> Vec<(String, String)> {
    let bytes = std::fs::read(path).unwrap();
    let (_, body) = metadata_blocks(&bytes)
        .into_iter()
        .find(|(k, _)| *k == 4)
        .expect("a VORBIS_COMMENT block");
    let u32le = |at: usize| u32::from_le_bytes(body[at..at + 4].try_into().unwrap()) as usize;
    let vendor = u32le(0);
    let mut at = 4 + vendor;
    let count = u32le(at);
    at += 4;
    (0..count)
        .map(|_| {
            let len = u32le(at);
            let field = std::str::from_utf8(&body[at + 4..at + 4 + len]).unwrap();
            at += 4 + len;
            let (k, v) = field.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// The tags symphonia reads from a file's metadata, keys upper-cased.
pub fn symphonia_tags(path: &Path) -> std::collections::BTreeMap<String, String> {
    use symphonia::core::formats::probe::Hint;
    use symphonia::core::formats::FormatOptions;
    use symphonia::core::io::MediaSourceStream;
    use symphonia::core::meta::MetadataOptions;
    let file = std::fs::File::open(path).unwrap();
    let mss = MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let mut reader = symphonia::default::get_probe()
        .probe(
            &hint,
            mss,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .unwrap();
    let mut metadata = reader.metadata();
    let revision = metadata
        .skip_to_latest()
        .expect("symphonia reads no metadata");
    revision
        .media
        .tags
        .iter()
        .map(|t| (t.raw.key.to_ascii_uppercase(), t.raw.value.to_string()))
        .collect()
}
