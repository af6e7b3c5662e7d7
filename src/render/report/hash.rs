//! SHA-256 of files (stems can be large): read in stretches of [`READ_BYTES`] into a buffer;
//! several files two at a time, side by side, where the CPU has the SHA extensions
//! ([`super::sha_lanes`]: two messages take about 1.2 times the time of one, not twice).

use super::sha_lanes;
use sha2::{Digest, Sha256};
use std::io::{self, Read};
use std::path::Path;

/// SHA-256 of the file at `path` as lowercase hex, and its size in bytes.
pub fn sha256_file(path: &Path) -> io::Result<(String, u64)> {
    let mut source = Source::open(path)?;
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    loop {
        let chunk = source.next()?;
        if chunk.is_empty() {
            return Ok((hex(&hasher.finalize()), bytes));
        }
        hasher.update(chunk);
        bytes += chunk.len() as u64;
    }
}

/// [`sha256_file`] of each of `paths`, in order, on this thread: two files at a time side by
/// side when the CPU has the SHA extensions (each lane takes the next file when its own ends),
/// one after the other otherwise. The same digests either way.
pub fn sha256_files(paths: &[&Path]) -> Vec<io::Result<(String, u64)>> {
    if paths.len() < 2 || !sha_lanes::available() {
        return paths.iter().map(|p| sha256_file(p)).collect();
    }
    side_by_side(paths.len(), |i| Source::open(paths[i]))
}

/// The digests of `count` files, each opened by `open` when a lane takes it, two lanes side by
/// side ([`sha256_files`]).
fn side_by_side(
    count: usize,
    mut open: impl FnMut(usize) -> io::Result<Source>,
) -> Vec<io::Result<(String, u64)>> {
    let mut out: Vec<Option<io::Result<(String, u64)>>> = (0..count).map(|_| None).collect();
    let mut next_file = 0;
    let mut lanes: [Option<Lane>; 2] = [None, None];
    loop {
        // Every idle lane takes the next file that opens.
        for lane in lanes.iter_mut() {
            while lane.is_none() && next_file < count {
                match open(next_file) {
                    Ok(source) => *lane = Some(Lane::new(next_file, source)),
                    Err(e) => out[next_file] = Some(Err(e)),
                }
                next_file += 1;
            }
        }
        let failed = match &mut lanes {
            [Some(a), Some(b)] => Lane::pair(a, b).err(),
            [Some(a), None] => a.alone().err().map(|e| (0, e)),
            [None, Some(b)] => b.alone().err().map(|e| (1, e)),
            [None, None] => break,
        };
        if let Some((which, e)) = failed {
            let lane = lanes[which].take().expect("the lane that failed");
            out[lane.index] = Some(Err(e));
        }
        // Lanes whose file ended give their digest.
        for lane in lanes.iter_mut() {
            if lane.as_ref().is_some_and(|l| l.message.ended) {
                let done = lane.take().expect("checked above");
                out[done.index] = Some(Ok(done.message.digest()));
            }
        }
    }
    out.into_iter()
        .map(|r| r.expect("every file hashed or failed"))
        .collect()
}

/// Bytes read from a hashed file per system call: the buffer stays in the core's cache while
/// it is hashed (measured on R, AMD Zen 5: cheaper than hashing the page cache in place through
/// mapped windows, whose page-table work cost more than this copy).
const READ_BYTES: usize = 128 * 1024;

/// A file's bytes, read front to back into a buffer of its own.
struct Source {
    file: std::fs::File,
    buf: Vec<u8>,
}

impl Source {
    fn open(path: &Path) -> io::Result<Source> {
        Ok(Source {
            file: std::fs::File::open(path)?,
            buf: vec![0u8; READ_BYTES],
        })
    }

    /// The next bytes of the file (empty at its end).
    fn next(&mut self) -> io::Result<&[u8]> {
        loop {
            match self.file.read(&mut self.buf) {
                Ok(n) => return Ok(&self.buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

/// One file being hashed by [`sha256_files`]: where its bytes come from, and the message so
/// far.
struct Lane {
    /// The file's place in the list.
    index: usize,
    source: Source,
    message: Message,
}

/// A message being hashed: its compression state and the bytes of its last, partial block.
struct Message {
    state: [u32; 8],
    /// A partial block carried over to the next chunk, `partial[..carried]`.
    partial: [u8; 64],
    carried: usize,
    bytes: u64,
    /// Whether its file ended.
    ended: bool,
}

/// SHA-256's initial state.
const H0: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

impl Lane {
    fn new(index: usize, source: Source) -> Lane {
        Lane {
            index,
            source,
            message: Message {
                state: H0,
                partial: [0; 64],
                carried: 0,
                bytes: 0,
                ended: false,
            },
        }
    }

    /// Hashes the next chunk of `a` and of `b` side by side (as many blocks as both have, the
    /// rest of the longer alone); the lane (0: `a`, 1: `b`) whose file failed, with why.
    fn pair(a: &mut Lane, b: &mut Lane) -> Result<(), (usize, io::Error)> {
        let ab = a.message.blocks(&mut a.source).map_err(|e| (0, e))?;
        let bb = match b.message.blocks(&mut b.source) {
            Ok(bb) => bb,
            Err(e) => {
                compress_blocks(&mut a.message.state, ab);
                return Err((1, e));
            }
        };
        let both = ab.len().min(bb.len());
        let mut states = [a.message.state, b.message.state];
        sha_lanes::compress_pair(&mut states, &ab[..both], &bb[..both]);
        [a.message.state, b.message.state] = states;
        compress_blocks(&mut a.message.state, &ab[both..]);
        compress_blocks(&mut b.message.state, &bb[both..]);
        Ok(())
    }

    /// Hashes the next chunk of the file alone.
    fn alone(&mut self) -> io::Result<()> {
        let blocks = self.message.blocks(&mut self.source)?;
        compress_blocks(&mut self.message.state, blocks);
        Ok(())
    }
}

impl Message {
    /// The whole blocks of `source`'s next chunk, after completing the carried block with its
    /// first bytes; what is left past the last whole block is carried. Empty when the file
    /// ended (`ended` is then set) or the chunk held no whole block.
    fn blocks<'a>(&mut self, source: &'a mut Source) -> io::Result<&'a [u8]> {
        let chunk = source.next()?;
        self.bytes += chunk.len() as u64;
        if chunk.is_empty() {
            self.ended = true;
            return Ok(chunk);
        }
        let mut rest = chunk;
        if self.carried > 0 {
            let take = (64 - self.carried).min(rest.len());
            self.partial[self.carried..self.carried + take].copy_from_slice(&rest[..take]);
            self.carried += take;
            rest = &rest[take..];
            if self.carried < 64 {
                return Ok(&[]);
            }
            compress_one(&mut self.state, &self.partial);
            self.carried = 0;
        }
        let whole = rest.len() / 64 * 64;
        let tail = &rest[whole..];
        self.partial[..tail.len()].copy_from_slice(tail);
        self.carried = tail.len();
        Ok(&rest[..whole])
    }

    /// The digest (hex) and length of the message, which ended: its last block padded.
    fn digest(mut self) -> (String, u64) {
        let n = self.carried;
        self.partial[n] = 0x80;
        self.partial[n + 1..].fill(0);
        if n + 1 > 56 {
            compress_one(&mut self.state, &self.partial);
            self.partial.fill(0);
        }
        self.partial[56..].copy_from_slice(&(self.bytes * 8).to_be_bytes());
        compress_one(&mut self.state, &self.partial);
        let digest: Vec<u8> = self.state.iter().flat_map(|w| w.to_be_bytes()).collect();
        (hex(&digest), self.bytes)
    }
}

/// Compresses the whole 64-byte blocks of `blocks` into `state` (sha2's compression: SHA-NI
/// where the CPU has it).
fn compress_blocks(state: &mut [u32; 8], blocks: &[u8]) {
    for block in blocks.chunks_exact(64) {
        compress_one(state, block.try_into().expect("64 bytes"));
    }
}

fn compress_one(state: &mut [u32; 8], block: &[u8; 64]) {
    sha2::compress256(state, &[(*block).into()]);
}

/// Bytes as lowercase hex.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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

    fn digest_of(bytes: &[u8]) -> String {
        hex(&Sha256::digest(bytes))
    }

    /// Files of every length around a block and a read, hashed alone and several at a time
    /// (lanes side by side, each taking the next file): the digests of their bytes.
    #[test]
    fn files_hashed_alone_or_side_by_side_give_the_digests_of_their_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let lengths = [
            0usize,
            1,
            55,
            56,
            63,
            64,
            65,
            4095,
            READ_BYTES - 1,
            (3 << 20) + 12_345,
            READ_BYTES,
            READ_BYTES + 1,
            119,
        ];
        let mut paths = Vec::new();
        let mut want = Vec::new();
        for (k, &len) in lengths.iter().enumerate() {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 31 + i / 977 + k) as u8).collect();
            let p = dir.path().join(format!("f{k}"));
            std::fs::write(&p, &bytes).unwrap();
            want.push((digest_of(&bytes), len as u64));
            assert_eq!(sha256_file(&p).unwrap(), want[k], "{len}");
            let mut read = Source {
                file: std::fs::File::open(&p).unwrap(),
                buf: vec![0; 1000],
            };
            let mut h = Sha256::new();
            loop {
                let c = read.next().unwrap();
                if c.is_empty() {
                    break;
                }
                h.update(c);
            }
            assert_eq!(hex(&h.finalize()), want[k].0, "{len}, 1000-byte reads");
            paths.push(p);
        }
        // Read in pieces of odd sizes: blocks carried over from one piece to the next.
        let read = |i: usize| -> io::Result<Source> {
            Ok(Source {
                file: std::fs::File::open(&paths[i])?,
                buf: vec![0; [1000, 777, 64, 65_536][i % 4]],
            })
        };
        let got: Vec<(String, u64)> = side_by_side(paths.len(), read)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(got, want, "read in pieces, side by side");
        let refs: Vec<&Path> = paths.iter().map(|p| p.as_path()).collect();
        for from in 0..refs.len() {
            for to in from..=refs.len() {
                let got: Vec<(String, u64)> = sha256_files(&refs[from..to])
                    .into_iter()
                    .map(Result::unwrap)
                    .collect();
                assert_eq!(got, want[from..to], "files {from}..{to}");
            }
        }
    }

    /// A file that cannot be opened is its own error; the others are hashed.
    #[test]
    fn a_missing_file_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::write(&a, vec![7u8; 300_000]).unwrap();
        std::fs::write(&b, vec![9u8; 70_000]).unwrap();
        let missing = dir.path().join("missing");
        let got = sha256_files(&[&a, &missing, &b]);
        assert_eq!(got[0].as_ref().unwrap().0, digest_of(&[7u8; 300_000]));
        assert!(got[1].is_err());
        assert_eq!(got[2].as_ref().unwrap().0, digest_of(&[9u8; 70_000]));
    }
}
