//! The memory-filling passes, compiled once per backend.
//!
//! The loop is adapted from RustCrypto's `argon2` 0.5.3 `Argon2::fill_blocks`
//! (MIT OR Apache-2.0, Copyright RustCrypto Developers), reduced to
//! Argon2id v0x13. `argon2` switches to AVX2 per call of the compression
//! function; here the whole loop and its compression function are compiled
//! under each `#[target_feature]` set, and the copy is chosen once, when the
//! `Hasher` is built. The AVX-512 copy uses the intrinsics of `avx512.rs`
//! (on x86-64); the others rely on LLVM's autovectorization of
//! `Block::compress`.

use core::cmp::Ordering;

use crate::Backend;
use crate::block::{Block, WORDS};

/// Synchronisation points (slices) per pass.
pub(crate) const SYNC_POINTS: usize = 4;

/// The Argon2 type number of Argon2id, mixed into the address blocks.
const ARGON2ID: u64 = 2;

/// Shape of the memory: `lanes` lanes of `lane_length` blocks, `passes` passes.
#[derive(Clone, Copy)]
pub(crate) struct Geometry {
    pub(crate) lanes: usize,
    pub(crate) lane_length: usize,
    pub(crate) passes: usize,
}

/// Runs all passes over `memory`, whose first two blocks per lane are set.
pub(crate) fn fill(backend: Backend, memory: &mut [Block], geometry: Geometry) {
    debug_assert!(backend.available());
    match backend {
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        Backend::Avx512 => {
            #[allow(unsafe_code)]
            // SAFETY: a `Hasher` only holds a backend whose `available()` was
            // true (runtime detection of avx512f/vl/bw/dq and avx2), so the
            // CPU supports every feature `fill_avx512` is compiled for.
            unsafe {
                fill_avx512(memory, geometry)
            }
        }
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        Backend::Avx2 => {
            #[allow(unsafe_code)]
            // SAFETY: as above; `available()` detected avx2 at runtime.
            unsafe {
                fill_avx2(memory, geometry)
            }
        }
        // On other architectures only `Portable` is ever available.
        _ => fill_portable(memory, geometry),
    }
}

// Each copy passes G as a closure, not as the fn item `Block::compress`: a
// closure inherits the enclosing function's target features, whereas the fn
// item's shared `Fn::call` shim is compiled for the baseline only (which made
// the AVX2 copy no faster than the portable one).

/// On x86-64, with G written in AVX-512 intrinsics (see `avx512.rs`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2")]
fn fill_avx512(memory: &mut [Block], geometry: Geometry) {
    fill_blocks(memory, geometry, |x, y, dst, xor| {
        crate::avx512::compress(x, y, dst, xor)
    });
}

/// On 32-bit x86, the autovectorized G.
#[cfg(target_arch = "x86")]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2")]
#[allow(clippy::redundant_closure)]
fn fill_avx512(memory: &mut [Block], geometry: Geometry) {
    fill_blocks(memory, geometry, |x, y, dst, xor| Block::compress(x, y, dst, xor));
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
#[target_feature(enable = "avx2")]
#[allow(clippy::redundant_closure)]
fn fill_avx2(memory: &mut [Block], geometry: Geometry) {
    fill_blocks(memory, geometry, |x, y, dst, xor| Block::compress(x, y, dst, xor));
}

#[allow(clippy::redundant_closure)]
fn fill_portable(memory: &mut [Block], geometry: Geometry) {
    fill_blocks(memory, geometry, |x, y, dst, xor| Block::compress(x, y, dst, xor));
}

/// Argon2id passes (RFC 9106 §3.2 steps 5–6 and §3.4): data-independent
/// addressing for the first half of the first pass, data-dependent after.
#[inline(always)]
#[allow(clippy::cast_possible_truncation)]
fn fill_blocks(memory: &mut [Block], geometry: Geometry, compress: impl Fn(&Block, &Block, &mut Block, bool)) {
    let Geometry {
        lanes,
        lane_length,
        passes,
    } = geometry;
    let segment_length = lane_length / SYNC_POINTS;
    let zero = Block::ZERO;

    for pass in 0..passes {
        for slice in 0..SYNC_POINTS {
            let data_independent = pass == 0 && slice < SYNC_POINTS / 2;

            for lane in 0..lanes {
                let mut address_block = Block::ZERO;
                let mut input_block = Block::ZERO;
                if data_independent {
                    input_block.0[..6].copy_from_slice(&[
                        pass as u64,
                        lane as u64,
                        slice as u64,
                        memory.len() as u64,
                        passes as u64,
                        ARGON2ID,
                    ]);
                }

                // The first two blocks of each lane were set from H0.
                let first_block = if pass == 0 && slice == 0 {
                    if data_independent {
                        next_addresses(&compress, &mut address_block, &mut input_block, &zero);
                    }
                    2
                } else {
                    0
                };

                let segment_start = lane * lane_length + slice * segment_length;
                for block in first_block..segment_length {
                    let cur_index = segment_start + block;
                    // The previous block wraps to the lane's last one.
                    let prev_index = if slice == 0 && block == 0 {
                        cur_index + lane_length - 1
                    } else {
                        cur_index - 1
                    };
                    let rand = if data_independent {
                        let address_index = block % WORDS;
                        if address_index == 0 {
                            next_addresses(&compress, &mut address_block, &mut input_block, &zero);
                        }
                        address_block.0[address_index]
                    } else {
                        memory[prev_index].0[0]
                    };

                    let ref_lane = if pass == 0 && slice == 0 {
                        lane
                    } else {
                        (rand >> 32) as usize % lanes
                    };

                    // RFC 9106 §3.4.1.2: the blocks this one may reference.
                    let reference_area_size = if pass == 0 {
                        if slice == 0 {
                            block - 1
                        } else if ref_lane == lane {
                            slice * segment_length + block - 1
                        } else {
                            slice * segment_length - usize::from(block == 0)
                        }
                    } else if ref_lane == lane {
                        lane_length - segment_length + block - 1
                    } else {
                        lane_length - segment_length - usize::from(block == 0)
                    };

                    let j1 = rand & 0xFFFF_FFFF;
                    let x = (j1 * j1) >> 32;
                    let relative_position = reference_area_size - 1 - ((reference_area_size as u64 * x) >> 32) as usize;
                    let start_position = if pass != 0 && slice != SYNC_POINTS - 1 {
                        (slice + 1) * segment_length
                    } else {
                        0
                    };
                    let ref_index = ref_lane * lane_length + (start_position + relative_position) % lane_length;

                    // Version 0x13 XORs into the old block after the first
                    // pass. Neither source block is the one being written.
                    let (before, rest) = memory.split_at_mut(cur_index);
                    let (dst, after) = rest.split_first_mut().expect("cur_index is in bounds");
                    let source = |index: usize| match index.cmp(&cur_index) {
                        Ordering::Less => &before[index],
                        Ordering::Greater => &after[index - cur_index - 1],
                        Ordering::Equal => unreachable!("Argon2 never references the block it computes"),
                    };
                    compress(source(prev_index), source(ref_index), dst, pass != 0);
                }
            }
        }
    }
}

/// Next block of 128 pseudo-random reference words for data-independent
/// addressing: G(0, G(0, input)) after incrementing the input's counter.
#[inline(always)]
fn next_addresses(
    compress: &impl Fn(&Block, &Block, &mut Block, bool),
    address_block: &mut Block,
    input_block: &mut Block,
    zero: &Block,
) {
    input_block.0[6] += 1;
    let mut first = Block::ZERO;
    compress(zero, input_block, &mut first, false);
    compress(zero, &first, address_block, false);
}
