//! SHA-256 of files (stems can be large), hashed in place through mapped windows of the page
//! cache where the file can be mapped (a deliverable just written is there: no copy into a
//! buffer), streamed in 64 KiB reads otherwise.

use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;

/// SHA-256 of the file at `path` as lowercase hex, and its size in bytes.
pub fn sha256_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    #[cfg(target_os = "linux")]
    if let Some(hashed) = crate::io::decode::each_mapped_chunk(&file, |b| hasher.update(b)) {
        return Ok((hex(hasher), hashed?));
    }
    sha256_read(&mut file, hasher)
}

/// [`sha256_file`] of an open file by `read()`, continuing `hasher`.
fn sha256_read(file: &mut std::fs::File, mut hasher: Sha256) -> std::io::Result<(String, u64)> {
    let mut buf = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok((hex(hasher), bytes))
}

/// The digest as lowercase hex.
fn hex(hasher: Sha256) -> String {
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("abc");
        std::fs::write(&p, b"abc").unwrap();
        assert_eq!(
            sha256_file(&p).unwrap(),
            (
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".to_string(),
                3
            )
        );
        // Longer than one read.
        std::fs::write(&p, vec![b'a'; 1_000_000]).unwrap();
        assert_eq!(
            sha256_file(&p).unwrap().0,
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        );
    }

    /// Mapped in several windows, the last one partial, or read: the digest of the bytes.
    #[test]
    fn mapped_and_read_files_give_the_digest_of_their_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("long");
        for len in [0usize, 1, 4095, (3 << 20) + 12_345] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 31 + i / 977) as u8).collect();
            std::fs::write(&p, &bytes).unwrap();
            let want: String = Sha256::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(sha256_file(&p).unwrap(), (want.clone(), len as u64), "{len}");
            let mut file = std::fs::File::open(&p).unwrap();
            assert_eq!(
                sha256_read(&mut file, Sha256::new()).unwrap(),
                (want, len as u64),
                "{len}, read"
            );
        }
    }
}
