//! Reading appended bytes through a memory map without ever dying of SIGBUS.
//!
//! This is the only module with `unsafe` code.
//!
//! # Why a guard is needed
//! Touching a mapped page that lies past the end of its file raises SIGBUS. A tailed file
//! can be truncated by another process between our `fstat` and our copy, so even a map
//! of exactly "what stat says exists" can fault. By default SIGBUS kills the host.
//!
//! # The design
//! * [`read_mapped`] maps only `[offset, offset + len)` (memmap2 aligns the start down to a
//!   page), registers the mapped range in a small fixed table of atomics ([`SLOTS`]
//!   entries, claimed with a compare-and-swap, never locked), copies the bytes out with a
//!   raw-pointer copy, deregisters, and unmaps.
//! * A process-wide SIGBUS handler (installed once, `SA_SIGINFO | SA_ONSTACK`) looks up the
//!   faulting address `si_addr` in the table. If it lies in a registered range, the
//!   handler maps an anonymous zero page over the faulting page
//!   (`mmap(MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS)`) and raises that slot's `faulted`
//!   flag; returning retries the faulting load, which now reads zeros, so the copy
//!   completes. The reader sees the flag, throws the bytes away and falls back to `pread`
//!   (which reports the shrink as a short read, handled as a truncation by the tailer).
//! * A SIGBUS that is not ours is passed on to the handler that was installed before
//!   (Rust's own stack-overflow handler, wasmtime's trap handler, ...); with no previous
//!   handler the default action is restored and the handler returns, so the signal fires
//!   again and the process dies exactly as it would have without us.
//!
//! The handler only loads atomics and calls `mmap`/`sigaction`, both plain system calls
//! (async-signal-safe in practice on Linux; `sigaction` is in the POSIX list). If every
//! slot is busy, or the handler could not be installed, [`read_mapped`] returns
//! [`MapRead::Unavailable`] and the caller uses `pread`: the guard never blocks.

use std::fs::File;
use std::io;
use std::ptr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering, compiler_fence};

use memmap2::MmapOptions;

/// Concurrent guarded copies supported; more fall back to `pread`.
const SLOTS: usize = 64;

/// One in-flight copy: the mapped range `[start, end)` and whether it faulted.
struct Slot {
    busy: AtomicBool,
    start: AtomicUsize,
    end: AtomicUsize,
    faulted: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)] // used only to initialise TABLE
const FREE: Slot = Slot {
    busy: AtomicBool::new(false),
    start: AtomicUsize::new(0),
    end: AtomicUsize::new(0),
    faulted: AtomicBool::new(false),
};

static TABLE: [Slot; SLOTS] = [FREE; SLOTS];
static PAGE_SIZE: AtomicUsize = AtomicUsize::new(0);
/// The SIGBUS disposition found when ours was installed (chained to for foreign faults).
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();
/// Whether installation succeeded (set once).
static INSTALLED: OnceLock<bool> = OnceLock::new();

/// What a guarded copy achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MapRead {
    /// All bytes copied.
    Copied,
    /// The file shrank under the copy: the bytes are garbage (zeros) and were discarded.
    Faulted,
    /// No guard available (handler not installed or all slots busy): use `pread`.
    Unavailable,
}

/// Copies `dst.len()` bytes of `file` starting at `offset` through a guarded memory map.
///
/// The caller has checked with `fstat` that the range exists; if the file shrinks
/// meanwhile the result is [`MapRead::Faulted`] instead of a crash.
pub(crate) fn read_mapped(file: &File, offset: u64, dst: &mut [u8]) -> io::Result<MapRead> {
    if dst.is_empty() {
        return Ok(MapRead::Copied);
    }
    if !install() {
        return Ok(MapRead::Unavailable);
    }
    let map = MmapOptions::new()
        .offset(offset)
        .len(dst.len())
        .map_raw_read_only(file)?;
    let src = map.as_ptr();
    // SAFETY: `src` points at `dst.len()` mapped, readable bytes (the map above has that
    // length) that stay mapped until `map` drops after this call. `dst` is a distinct,
    // writable Rust buffer of the same length. A fault while reading is handled by the
    // registered guard (see `guarded_copy`).
    let outcome = unsafe { guarded_copy(src, dst) };
    drop(map);
    Ok(outcome)
}

/// Copies `dst.len()` bytes from `src` with the range registered in the SIGBUS table.
///
/// # Safety
/// `src..src + dst.len()` must be a live, readable memory mapping for the whole call
/// (pages may fault with SIGBUS, which is what the guard is for), not overlapping `dst`.
pub(crate) unsafe fn guarded_copy(src: *const u8, dst: &mut [u8]) -> MapRead {
    if !install() {
        return MapRead::Unavailable;
    }
    let Some(slot) = claim(src as usize, src as usize + dst.len()) else {
        return MapRead::Unavailable;
    };
    // The handler runs on this thread in the middle of the copy: make sure the compiler
    // does not move the registration after (or the flag read before) the copy.
    compiler_fence(Ordering::SeqCst);
    // SAFETY: the caller guarantees `src` is readable for `dst.len()` bytes (or faults
    // with SIGBUS, which the handler turns into reads of a zero page), and that it does
    // not overlap `dst`, which is a unique, valid buffer of that length.
    unsafe { ptr::copy_nonoverlapping(src, dst.as_mut_ptr(), dst.len()) };
    compiler_fence(Ordering::SeqCst);
    let faulted = slot.faulted.load(Ordering::SeqCst);
    release(slot);
    if faulted {
        MapRead::Faulted
    } else {
        MapRead::Copied
    }
}

fn claim(start: usize, end: usize) -> Option<&'static Slot> {
    let slot = TABLE.iter().find(|s| {
        s.busy
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    })?;
    slot.faulted.store(false, Ordering::SeqCst);
    // `end` before `start`: the handler treats `start == 0` as a free slot.
    slot.end.store(end, Ordering::SeqCst);
    slot.start.store(start, Ordering::SeqCst);
    Some(slot)
}

fn release(slot: &Slot) {
    slot.start.store(0, Ordering::SeqCst);
    slot.end.store(0, Ordering::SeqCst);
    slot.busy.store(false, Ordering::Release);
}

/// Installs the SIGBUS handler once per process; `false` if that failed.
fn install() -> bool {
    *INSTALLED.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if page <= 0 {
            return false;
        }
        PAGE_SIZE.store(page as usize, Ordering::SeqCst);
        // SAFETY: a zeroed sigaction is a valid "query" argument; passing a null new
        // action only reads the current disposition into `previous`.
        let mut previous: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: see above; `previous` is a valid, writable sigaction.
        if unsafe { libc::sigaction(libc::SIGBUS, ptr::null(), &mut previous) } != 0 {
            return false;
        }
        // Stored before ours is live so the handler can always chain.
        let _ = PREVIOUS.set(previous);
        // SAFETY: zeroed is a valid sigaction (empty mask, no flags) that we fill in.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = on_sigbus as *const () as libc::sighandler_t;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        // SAFETY: `action.sa_mask` is a valid sigset_t owned by us.
        unsafe { libc::sigemptyset(&mut action.sa_mask) };
        // SAFETY: `action` is fully initialised and `on_sigbus` has the SA_SIGINFO
        // signature; it only performs async-signal-safe work (see the module docs).
        unsafe { libc::sigaction(libc::SIGBUS, &action, ptr::null_mut()) == 0 }
    })
}

/// The SIGBUS handler. Must stay async-signal-safe: atomics and raw syscalls only.
extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo_t for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    let page = PAGE_SIZE.load(Ordering::SeqCst);
    for slot in &TABLE {
        let start = slot.start.load(Ordering::SeqCst);
        if start == 0 || addr < start || addr >= slot.end.load(Ordering::SeqCst) {
            continue;
        }
        let page_start = addr & !(page - 1);
        // SAFETY: `page_start` lies inside a mapping registered by an in-flight
        // `guarded_copy` (so it is ours and still mapped); replacing that one page with a
        // private zero page only changes what the copy reads. munmap of the original
        // mapping later removes this page too.
        let zero = unsafe {
            libc::mmap(
                page_start as *mut libc::c_void,
                page,
                libc::PROT_READ,
                libc::MAP_FIXED | libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if zero == libc::MAP_FAILED {
            break; // cannot recover: die as if unguarded
        }
        slot.faulted.store(true, Ordering::SeqCst);
        return;
    }
    chain(sig, info, ctx);
}

/// Hands a SIGBUS that is not ours to the previous handler, or restores the default.
fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    if let Some(prev) = PREVIOUS.get() {
        let handler = prev.sa_sigaction;
        if handler != libc::SIG_DFL && handler != libc::SIG_IGN {
            if prev.sa_flags & libc::SA_SIGINFO != 0 {
                // SAFETY: the previous disposition declared SA_SIGINFO, so its handler
                // has this signature; we pass it the arguments we were given.
                let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    unsafe { std::mem::transmute(handler) };
                f(sig, info, ctx);
            } else {
                // SAFETY: without SA_SIGINFO the handler takes just the signal number.
                let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(handler) };
                f(sig);
            }
            return;
        }
    }
    // SAFETY: zeroed sigaction with SIG_DFL (0) is the default disposition; sigaction is
    // async-signal-safe. Returning re-executes the faulting access, which now kills the
    // process with the default action, as if we had never been installed.
    unsafe {
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(sig, &dfl, ptr::null_mut());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn copies_an_intact_range() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(b"hello, mapped world\n").unwrap();
        let mut dst = vec![0; 6];
        assert_eq!(read_mapped(&f, 7, &mut dst).unwrap(), MapRead::Copied);
        assert_eq!(&dst, b"mapped");
    }

    #[test]
    fn truncation_under_the_map_is_a_fault_not_a_crash() {
        let block = 4096 * 4;
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&vec![b'x'; block * 3]).unwrap();
        f.flush().unwrap();
        let map = MmapOptions::new()
            .len(block * 3)
            .map_raw_read_only(f.as_file())
            .unwrap();
        // Another handle (as another process would) cuts the file under the map.
        let other = std::fs::OpenOptions::new()
            .write(true)
            .open(f.path())
            .unwrap();
        other.set_len(block as u64 / 2).unwrap();
        let mut dst = vec![1u8; block * 3];
        // SAFETY: `map` is a live read-only mapping of `block * 3` bytes, distinct from dst.
        let outcome = unsafe { guarded_copy(map.as_ptr(), &mut dst) };
        assert_eq!(outcome, MapRead::Faulted);
        assert!(dst[..block / 2].iter().all(|&b| b == b'x'));
        assert!(
            dst[block * 2..].iter().all(|&b| b == 0),
            "faulted pages read as zeros"
        );
        drop(map);
        // The guard is reusable afterwards.
        let mut again = vec![0; 8];
        assert_eq!(
            read_mapped(f.as_file(), 0, &mut again).unwrap(),
            MapRead::Copied
        );
    }
}
