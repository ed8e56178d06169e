//! The hasher's memory: its own anonymous mapping on Unix.
//!
//! Mapped directly rather than taken from the global allocator, so that
//! dropping a [`Memory`] gives the pages back to the system at once,
//! whatever allocator the program uses (mimalloc, for one, keeps freed
//! memory resident for a while), and a pooled hasher's memory is never
//! shared with, or fragmented by, other allocations.

use crate::block::Block;

/// `len` zeroed blocks.
pub(crate) struct Memory {
    #[cfg(unix)]
    map: memmap2::MmapMut,
    #[cfg(unix)]
    len: usize,
    #[cfg(not(unix))]
    blocks: Vec<Block>,
}

impl Memory {
    /// `len` zeroed blocks. Pages are touched (committed) on first use.
    ///
    /// # Panics
    /// When the system refuses the mapping (out of address space), as a
    /// `Vec` would on allocation failure.
    #[cfg(unix)]
    pub(crate) fn new(len: usize) -> Self {
        let map = memmap2::MmapMut::map_anon(len * Block::SIZE).expect("map Argon2 memory");
        Self { map, len }
    }

    #[cfg(not(unix))]
    pub(crate) fn new(len: usize) -> Self {
        Self {
            blocks: vec![Block::ZERO; len],
        }
    }

    /// The blocks.
    #[cfg(unix)]
    #[allow(unsafe_code)]
    pub(crate) fn blocks(&mut self) -> &mut [Block] {
        let ptr = self.map.as_mut_ptr().cast::<Block>();
        debug_assert_eq!(ptr.align_offset(std::mem::align_of::<Block>()), 0);
        // SAFETY: the mapping is `len * Block::SIZE` bytes, page-aligned
        // (so aligned for `Block`, 64 bytes), zero-filled by the kernel,
        // and owned by `self` for the borrow's lifetime; `Block` is a plain
        // array of `u64`, valid for any bit pattern.
        unsafe { std::slice::from_raw_parts_mut(ptr, self.len) }
    }

    #[cfg(not(unix))]
    pub(crate) fn blocks(&mut self) -> &mut [Block] {
        &mut self.blocks
    }
}
