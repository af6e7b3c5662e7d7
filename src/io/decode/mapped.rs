//! Plain PCM sample data read in place through memory-mapped windows (Linux): the converter
//! reads the page cache directly, without `read()` copying every byte into a buffer first
//! (that copy was about a tenth of a simple render's CPU).
//!
//! One window of at most [`WINDOW_BYTES`] is mapped per reader at a time, its pages populated
//! when it is mapped, and unmapped when the reader moves past it: mapped file pages count in the
//! resident set, so a render's memory stays a few windows whatever the song's length. A file
//! that cannot be mapped (not a regular file, a file system without mmap, no free
//! [`super::sigbus`] slot) is read with `read()` instead ([`super::pcm`] keeps that path).
//!
//! A file truncated while it is mapped does not kill the process: [`super::sigbus`] gives the
//! vanished pages zeros and [`Windows::check`] reports it as an I/O error ("the file shrank
//! while it was read"), so the render stops with a message naming the file.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

use super::sigbus::{self, Slot};

/// Most bytes mapped at once per reader (a whole number of pages).
pub(super) const WINDOW_BYTES: usize = 1 << 20;

/// The window mapped now.
struct Window {
    ptr: *mut libc::c_void,
    len: usize,
    /// File offset of its first byte.
    offset: u64,
}

/// A reader's mapped window over one file, moved forward as it reads.
pub(super) struct Windows {
    slot: &'static Slot,
    window: Option<Window>,
    page: u64,
}

// SAFETY: the window is a private read-only mapping owned by this value alone; nothing else
// refers to its address.
unsafe impl Send for Windows {}

impl Windows {
    /// Windows over `file` if it is a regular file and a slot is free; `None` otherwise (the
    /// caller reads with `read()`).
    pub(super) fn new(file: &File) -> Option<Windows> {
        if !file.metadata().ok()?.is_file() {
            return None;
        }
        let slot = sigbus::claim()?;
        let page = sigbus::page_size();
        // A file (system) that cannot be mapped is read with read(): try one page, unpopulated.
        // SAFETY: a private read-only mapping of an open file, unmapped at once.
        let mappable = unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                page,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            );
            p != libc::MAP_FAILED && libc::munmap(p, page) == 0
        };
        if !mappable {
            slot.release();
            return None;
        }
        // SAFETY: advice on an open descriptor; failure is harmless.
        unsafe {
            libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_SEQUENTIAL);
        }
        Some(Windows {
            slot,
            window: None,
            page: page as u64,
        })
    }

    /// The bytes of `file` from `pos` up to `end` (at most a window's worth), mapping a new
    /// window when the one mapped now holds fewer than `min` of them. Empty when fewer than
    /// `min` bytes are left before `end`. `end` must not lie past the file's end as it was
    /// opened.
    pub(super) fn bytes(
        &mut self,
        file: &File,
        pos: u64,
        end: u64,
        min: usize,
    ) -> io::Result<&[u8]> {
        if end.saturating_sub(pos) < min as u64 {
            // The end: a file that shrank within its last page raised no fault.
            if file.metadata()?.len() < end {
                return Err(shrank());
            }
            return Ok(&[]);
        }
        let fits =
            |w: &Window| w.offset <= pos && pos + min as u64 <= (w.offset + w.len as u64).min(end);
        if !self.window.as_ref().is_some_and(fits) {
            self.unmap();
            let base = pos & !(self.page - 1);
            let len = usize::try_from((end - base).min(WINDOW_BYTES as u64)).unwrap_or(0);
            self.window = Some(self.map(file, base, len)?);
        }
        let w = self.window.as_ref().expect("mapped above");
        let stop = (w.offset + w.len as u64).min(end);
        // SAFETY: the window maps `w.len` readable bytes from file offset `w.offset`, and
        // `pos .. stop` lies inside it (checked by `fits`, or mapped from `base <= pos` to
        // at most `end`).
        Ok(unsafe {
            std::slice::from_raw_parts(
                w.ptr.cast::<u8>().add((pos - w.offset) as usize),
                (stop - pos) as usize,
            )
        })
    }

    /// An error if a page of the file vanished while it was mapped (truncated by another
    /// program): what was read since the last check may hold zeros in its place.
    pub(super) fn check(&self) -> io::Result<()> {
        if self.slot.take_hit() {
            return Err(shrank());
        }
        Ok(())
    }

    /// Maps `len` bytes of `file` from `offset` (a page boundary), populated, and registers
    /// them with the SIGBUS handler.
    fn map(&self, file: &File, offset: u64, len: usize) -> io::Result<Window> {
        let off = libc::off_t::try_from(offset)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset out of range"))?;
        // SAFETY: a new private read-only mapping of an open file; the kernel picks the address.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_POPULATE,
                file.as_raw_fd(),
                off,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        self.slot.set(ptr as usize, len);
        Ok(Window { ptr, len, offset })
    }

    /// Unmaps the window mapped now, if any.
    fn unmap(&mut self) {
        if let Some(w) = self.window.take() {
            self.slot.clear();
            // SAFETY: the window was mapped by `map` with this address and length, and no
            // slice of it outlives the borrow that `bytes` returned.
            unsafe {
                libc::munmap(w.ptr, w.len);
            }
        }
    }
}

/// A whole file read in place, front to back, through mapped windows (no copy into a buffer):
/// for a reader that only looks at the bytes (a hash).
pub(crate) struct MappedFile {
    file: File,
    windows: Windows,
    pos: u64,
    end: u64,
}

impl MappedFile {
    /// `file` up to its length now; `None` when it cannot be mapped (the caller reads it with
    /// `read()`).
    pub(crate) fn new(file: File) -> Option<io::Result<MappedFile>> {
        let end = match file.metadata() {
            Ok(m) => m.len(),
            Err(e) => return Some(Err(e)),
        };
        let windows = Windows::new(&file)?;
        Some(Ok(MappedFile {
            file,
            windows,
            pos: 0,
            end,
        }))
    }

    /// The next bytes (at most a window's worth; empty at the end). A file that shrank
    /// meanwhile is an error.
    pub(crate) fn next(&mut self) -> io::Result<&[u8]> {
        self.windows.check()?;
        if self.pos >= self.end {
            return Ok(&[]);
        }
        let bytes = self.windows.bytes(&self.file, self.pos, self.end, 1)?;
        self.pos += bytes.len() as u64;
        Ok(bytes)
    }
}

/// The error of a file that shrank under the reader.
fn shrank() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the file shrank while it was read (another program truncated or rewrote it)",
    )
}

impl Drop for Windows {
    fn drop(&mut self) {
        self.unmap();
        self.slot.release();
    }
}
