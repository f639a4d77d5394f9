//! The plugin's memory allocator: free blocks kept per size class in front of the
//! system allocator (wasi-libc's dlmalloc).
//!
//! A plugin call allocates and frees many small blocks: each output string and
//! list, each field name, the host's arguments (`cabi_realloc`), freed again after
//! the host has read the output. dlmalloc spent about a third of the guests' time
//! on them. Here a block of at most [`MAX_SMALL`] bytes (and alignment of at most
//! 16) comes from its size class's stack of free blocks, or else is cut from a
//! 64 KiB arena: a push or a pop, a few instructions, and no read of the block
//! itself. Larger blocks go to the system allocator.
//!
//! Small blocks are never handed back to the system: a class keeps as many blocks
//! as it ever held at once, for the next call. (A plugin's memory only grows
//! anyway: WebAssembly memory never shrinks.)
//!
//! Used as the global allocator of plugins built for `wasm32` without threads
//! (feature `fast-alloc`, on by default); a plugin that wants another allocator
//! turns the feature off.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::ptr::{self, NonNull};

/// Size classes are multiples of this, and so are the blocks' addresses.
const GRAIN: usize = 16;
/// The largest small block; larger ones go to the system allocator.
pub const MAX_SMALL: usize = 512;
const CLASSES: usize = MAX_SMALL / GRAIN;
/// Bytes taken from the system at once to cut small blocks from.
const ARENA: usize = 64 << 10;

/// A free block that did not fit on its class's stack: the next such block.
struct Free {
    next: Option<NonNull<Free>>,
}

/// The free blocks of one class: their addresses on a stack (taking one reads
/// the stack, not the block, which may have gone cold since it was freed: a
/// free list linked through the blocks costs a cache miss per block taken,
/// one after the other), and the blocks freed while the stack could not grow
/// linked through themselves.
struct Class {
    stack: *mut *mut u8,
    len: usize,
    cap: usize,
    spilled: Option<NonNull<Free>>,
}

impl Class {
    const EMPTY: Class = Class {
        stack: ptr::null_mut(),
        len: 0,
        cap: 0,
        spilled: None,
    };

    /// A free block, if the class has one.
    ///
    /// # Safety
    /// One thread only.
    unsafe fn pop(&mut self) -> Option<*mut u8> {
        if self.len > 0 {
            self.len -= 1;
            // SAFETY: the first `len + 1` entries of the stack are set.
            return Some(unsafe { *self.stack.add(self.len) });
        }
        let block = self.spilled?;
        // SAFETY: spilled blocks are ours, unused and hold a `Free`.
        self.spilled = unsafe { block.as_ref().next };
        Some(block.as_ptr().cast())
    }

    /// Keeps a free block.
    ///
    /// # Safety
    /// `block` is of this class and no longer used; one thread only.
    unsafe fn push(&mut self, block: *mut u8) {
        // SAFETY: the stack's own allocation, grown by the system allocator.
        if self.len == self.cap && !unsafe { self.grow() } {
            let block = block.cast::<Free>();
            // SAFETY: the block is ours, at least `GRAIN` bytes and aligned to it.
            unsafe { block.write(Free { next: self.spilled }) };
            self.spilled = NonNull::new(block);
            return;
        }
        // SAFETY: `len < cap` entries fit the stack.
        unsafe { *self.stack.add(self.len) = block };
        self.len += 1;
    }

    /// Doubles the stack (at least 64 entries); false if the system has no room.
    ///
    /// # Safety
    /// One thread only.
    unsafe fn grow(&mut self) -> bool {
        let entry = size_of::<*mut u8>();
        let cap = (self.cap * 2).max(64);
        // SAFETY: non-zero sizes with the alignment of a pointer; the old layout
        // is the one the stack was allocated with.
        let stack = unsafe {
            let new = Layout::from_size_align_unchecked(cap * entry, align_of::<*mut u8>());
            match self.cap {
                0 => System.alloc(new),
                old => System.realloc(
                    self.stack.cast(),
                    Layout::from_size_align_unchecked(old * entry, align_of::<*mut u8>()),
                    new.size(),
                ),
            }
        };
        if stack.is_null() {
            return false;
        }
        self.stack = stack.cast();
        self.cap = cap;
        true
    }
}

struct Lists {
    classes: [Class; CLASSES],
    /// The unused rest of the current arena.
    arena: *mut u8,
    arena_left: usize,
}

/// Free blocks per size class in front of [`System`]; see the [module docs](self).
/// For one thread only: it is not `Sync` unless the target has no threads.
pub struct SizeClasses {
    lists: UnsafeCell<Lists>,
}

impl SizeClasses {
    /// An allocator with no block yet.
    pub const fn new() -> Self {
        SizeClasses {
            lists: UnsafeCell::new(Lists {
                classes: [Class::EMPTY; CLASSES],
                arena: ptr::null_mut(),
                arena_left: 0,
            }),
        }
    }
}

impl Default for SizeClasses {
    fn default() -> Self {
        Self::new()
    }
}

/// The class of a small layout (`None`: the system's).
fn class_of(layout: Layout) -> Option<usize> {
    if layout.size() > MAX_SMALL || layout.align() > GRAIN {
        return None;
    }
    // A zero-sized layout never reaches an allocator; treat it as the first class.
    Some(layout.size().max(1).div_ceil(GRAIN) - 1)
}

impl Lists {
    /// A block of `class`: a free one, or one cut from the arena.
    ///
    /// # Safety
    /// Only one thread may use the lists.
    unsafe fn take(&mut self, class: usize) -> *mut u8 {
        // SAFETY: one thread.
        if let Some(block) = unsafe { self.classes[class].pop() } {
            return block;
        }
        let size = (class + 1) * GRAIN;
        if self.arena_left < size {
            // The rest of the old arena (less than a block) is left unused.
            // SAFETY: a valid, non-zero layout.
            let arena = unsafe { System.alloc(Layout::from_size_align_unchecked(ARENA, GRAIN)) };
            if arena.is_null() {
                return arena;
            }
            self.arena = arena;
            self.arena_left = ARENA;
        }
        let block = self.arena;
        // SAFETY: `size <= arena_left`, so the new pointer stays within the arena.
        self.arena = unsafe { self.arena.add(size) };
        self.arena_left -= size;
        block
    }

    /// Keeps a block of `class` for the next time.
    ///
    /// # Safety
    /// `block` was taken from `class` and is no longer used; one thread only.
    unsafe fn give(&mut self, class: usize, block: *mut u8) {
        // SAFETY: the caller's guarantees.
        unsafe { self.classes[class].push(block) }
    }
}

// SAFETY: blocks are aligned to `GRAIN` (arenas are, and block sizes are
// multiples of it) and at least as large as their class; a block is on a free
// list only while nobody uses it. The lists are used by one thread at a time
// (see the `Sync` implementation below).
unsafe impl GlobalAlloc for SizeClasses {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match class_of(layout) {
            // SAFETY: one thread (see `Sync`); the lists are not borrowed elsewhere.
            Some(class) => unsafe { (*self.lists.get()).take(class) },
            // SAFETY: the caller's layout is valid and non-zero.
            None => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        match class_of(layout) {
            // SAFETY: allocated with this layout, hence from this class.
            Some(class) => unsafe { (*self.lists.get()).give(class, block) },
            // SAFETY: allocated by the system with this layout.
            None => unsafe { System.dealloc(block, layout) },
        }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's new size with the old alignment is a valid layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (class_of(layout), class_of(new_layout)) {
            (Some(old), Some(new)) if old == new => block,
            // SAFETY: both the system's: its own realloc.
            (None, None) => unsafe { System.realloc(block, layout, new_size) },
            _ => {
                // SAFETY: a valid layout; the copy covers what both blocks hold.
                unsafe {
                    let moved = self.alloc(new_layout);
                    if !moved.is_null() {
                        ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size));
                        self.dealloc(block, layout);
                    }
                    moved
                }
            }
        }
    }
}

// SAFETY: on `wasm32` without the `atomics` feature a plugin has one thread, so
// the lists are never used by two at once. Elsewhere (the SDK's own tests) the
// allocator is not `Sync` and cannot be global; its tests use it from one thread.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
unsafe impl Sync for SizeClasses {}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn classes_cover_sizes_up_to_the_small_limit_at_the_grain() {
        assert_eq!(class_of(layout(1, 1)), Some(0));
        assert_eq!(class_of(layout(16, 8)), Some(0));
        assert_eq!(class_of(layout(17, 8)), Some(1));
        assert_eq!(class_of(layout(MAX_SMALL, 16)), Some(CLASSES - 1));
        assert_eq!(class_of(layout(MAX_SMALL + 1, 1)), None);
        assert_eq!(class_of(layout(8, 32)), None);
    }

    #[test]
    fn blocks_are_reused_per_class_aligned_and_never_overlap() {
        let heap = SizeClasses::new();
        // SAFETY: one thread; every block is freed with its own layout.
        unsafe {
            let mut live: Vec<(*mut u8, Layout)> = Vec::new();
            // Sizes across every class, both sides of the limit, odd alignments.
            for i in 0..3_000usize {
                let l = layout(1 + (i * 37) % (MAX_SMALL + 100), [1, 2, 8, 16, 64][i % 5]);
                let p = heap.alloc(l);
                assert!(!p.is_null());
                assert_eq!(p as usize % l.align(), 0, "{l:?}");
                // Fill it: an overlap with another live block would show below.
                ptr::write_bytes(p, (i % 251) as u8, l.size());
                live.push((p, l));
                if i % 3 == 0 {
                    let (q, m) = live.swap_remove(i % live.len());
                    heap.dealloc(q, m);
                }
            }
            for (i, &(p, l)) in live.iter().enumerate() {
                let first = *p;
                assert!(
                    (0..l.size()).all(|k| *p.add(k) == first),
                    "block {i} overwritten"
                );
            }
            // A freed block is the next one its class hands out.
            let l = layout(40, 8);
            let p = heap.alloc(l);
            heap.dealloc(p, l);
            assert_eq!(heap.alloc(layout(48, 16)), p);
            for (p, l) in live {
                heap.dealloc(p, l);
            }
        }
    }

    #[test]
    fn realloc_keeps_the_contents_within_a_class_and_across_classes() {
        let heap = SizeClasses::new();
        // SAFETY: one thread; each block is used with the layout it has.
        unsafe {
            let l = layout(20, 4);
            let p = heap.alloc(l);
            ptr::copy_nonoverlapping(b"0123456789abcdefghij".as_ptr(), p, 20);
            // 20 -> 30 bytes: the same class, the same block.
            assert_eq!(heap.realloc(p, l, 30), p);
            let l = layout(30, 4);
            // Into a larger class, then to the system and back.
            let q = heap.realloc(p, l, 200);
            let r = heap.realloc(q, layout(200, 4), 5_000);
            let s = heap.realloc(r, layout(5_000, 4), 10);
            assert_eq!(std::slice::from_raw_parts(s, 10), b"0123456789");
            heap.dealloc(s, layout(10, 4));
        }
    }
}
