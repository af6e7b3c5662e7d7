//! What happens when a mapped stem shrinks under the reader (Linux only).
//!
//! [`super::mapped`] reads plain PCM stems through memory-mapped windows. If another program
//! truncates the file while a window is mapped (a DAW re-exporting the stem in place), touching a
//! page past the new end raises `SIGBUS`, which would kill the process: a render would leave its
//! temporary files behind, live playback would stop dead. This module turns that into an error
//! instead: every mapped window is registered in a fixed table of [`Slot`]s, and a `SIGBUS`
//! handler installed on first use looks the faulting address up there. If it lies in a window,
//! the handler maps a page of zeros over the vanished page (so the access completes), marks the
//! slot, and returns; the reader checks the mark after converting what it read and reports
//! "the file shrank while it was read" ([`Slot::take_hit`]). A fault at any other address goes
//! to the handler that was there before (the Rust runtime's stack-overflow handler, or the
//! default action), exactly as if this one did not exist.
//!
//! The table has [`SLOTS`] entries; a reader that finds none free reads with `read()` instead.
//! The handler allocates nothing, takes no lock and calls only `mmap` and `sigaction` (system
//! calls, safe in a signal handler on Linux).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;

/// How many windows can be mapped at once in the process.
pub(super) const SLOTS: usize = 256;

/// One mapped window: its address range (`start == 0`: free or not mapped) and whether a page of
/// it vanished.
pub(super) struct Slot {
    /// 1 while owned by a reader (claimed), 0 when free.
    owned: AtomicBool,
    start: AtomicUsize,
    end: AtomicUsize,
    hit: AtomicBool,
}

impl Slot {
    const fn new() -> Slot {
        Slot {
            owned: AtomicBool::new(false),
            start: AtomicUsize::new(0),
            end: AtomicUsize::new(0),
            hit: AtomicBool::new(false),
        }
    }

    /// Registers the window `[start, start + len)`, mapped by the slot's owner, before anything
    /// in it is read.
    pub(super) fn set(&self, start: usize, len: usize) {
        self.start.store(0, Ordering::SeqCst);
        self.end.store(start + len, Ordering::SeqCst);
        self.start.store(start, Ordering::SeqCst);
    }

    /// Forgets the window (before it is unmapped).
    pub(super) fn clear(&self) {
        self.start.store(0, Ordering::SeqCst);
        self.end.store(0, Ordering::SeqCst);
    }

    /// Whether a page of the window vanished since the last call (and forgets it).
    pub(super) fn take_hit(&self) -> bool {
        self.hit.swap(false, Ordering::SeqCst)
    }

    /// Gives the slot back.
    pub(super) fn release(&self) {
        self.clear();
        self.hit.store(false, Ordering::SeqCst);
        self.owned.store(false, Ordering::SeqCst);
    }
}

static TABLE: [Slot; SLOTS] = [const { Slot::new() }; SLOTS];

/// The handler that was installed before ours, and the page size (set once, before ours is
/// installed).
struct Previous {
    action: libc::sigaction,
    page: usize,
}

// SAFETY: `sigaction` is plain data (a handler address, a signal mask, flags), only read after
// it is set once.
unsafe impl Sync for Previous {}
unsafe impl Send for Previous {}

/// The handler that was there before ours: set once, before ours is installed.
static PREVIOUS: OnceLock<Previous> = OnceLock::new();
/// Whether ours is installed (decided once per process).
static INSTALLED: OnceLock<bool> = OnceLock::new();

/// Installs the handler (once per process); false if it could not be installed (then nothing
/// may be mapped).
fn install() -> bool {
    *INSTALLED.get_or_init(|| {
        // SAFETY: sysconf and sigaction with valid pointers; the handler below is
        // async-signal-safe.
        unsafe {
            let Ok(page) = usize::try_from(libc::sysconf(libc::_SC_PAGESIZE)) else {
                return false;
            };
            if !page.is_power_of_two() {
                return false;
            }
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut old) != 0 {
                return false;
            }
            // Published before ours is installed: the handler chains to it from the start.
            if PREVIOUS.set(Previous { action: old, page }).is_err() {
                return false;
            }
            let mut new: libc::sigaction = std::mem::zeroed();
            new.sa_sigaction = on_sigbus as *const () as libc::sighandler_t;
            new.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
            libc::sigemptyset(&mut new.sa_mask);
            libc::sigaction(libc::SIGBUS, &new, std::ptr::null_mut()) == 0
        }
    })
}

/// The system's page size (0 before the handler is installed).
pub(super) fn page_size() -> usize {
    PREVIOUS.get().map_or(0, |p| p.page)
}

/// A free slot, with the handler installed; `None` when every slot is taken or the handler
/// cannot be installed (the caller reads with `read()`).
pub(super) fn claim() -> Option<&'static Slot> {
    if !install() {
        return None;
    }
    TABLE.iter().find(|s| {
        s.owned
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    })
}

/// The `SIGBUS` handler: a fault in a registered window gets a page of zeros and marks the
/// window; any other goes to the previous handler.
extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    let Some(prev) = PREVIOUS.get() else {
        return reset_default(sig);
    };
    for slot in &TABLE {
        let start = slot.start.load(Ordering::SeqCst);
        if start != 0 && addr >= start && addr < slot.end.load(Ordering::SeqCst) {
            let page = addr & !(prev.page - 1);
            // SAFETY: the page lies in the caller's own mapped window (registered above); a
            // fixed anonymous mapping replaces just that page with zeros.
            let p = unsafe {
                libc::mmap(
                    page as *mut libc::c_void,
                    prev.page,
                    libc::PROT_READ,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                    -1,
                    0,
                )
            };
            if p != libc::MAP_FAILED {
                slot.hit.store(true, Ordering::SeqCst);
                return;
            }
        }
    }
    let old = &prev.action;
    let handler = old.sa_sigaction;
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        return reset_default(sig);
    }
    // SAFETY: the previous handler was installed for this signal with these flags and is
    // called as the kernel would have called it.
    unsafe {
        if old.sa_flags & libc::SA_SIGINFO != 0 {
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                std::mem::transmute(handler);
            f(sig, info, ctx);
        } else {
            let f: extern "C" fn(libc::c_int) = std::mem::transmute(handler);
            f(sig);
        }
    }
}

/// Puts the default action back: the faulting access runs again and the process dies of
/// `SIGBUS` as it would have without this module.
fn reset_default(sig: libc::c_int) {
    // SAFETY: sigaction with a zeroed (SIG_DFL) action is async-signal-safe.
    unsafe {
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(sig, &dfl, std::ptr::null_mut());
    }
}
