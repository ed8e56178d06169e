//! The 1 KiB Argon2 memory block and its compression function G.
//!
//! Adapted from RustCrypto's `argon2` 0.5.3 `src/block.rs`
//! (<https://github.com/RustCrypto/password-hashes>, MIT OR Apache-2.0,
//! Copyright RustCrypto Developers). Only the layout and the BlaMka
//! permutation are kept; everything is `#[inline(always)]` so that each
//! `#[target_feature]` copy of the fill loop gets its own vectorized copy.

use core::ops::BitXorAssign;

/// The BlaMka multiply-add: a + b + 2 * lo32(a) * lo32(b) (all wrapping).
#[inline(always)]
const fn fblamka(a: u64, b: u64) -> u64 {
    const LO: u64 = u32::MAX as u64;
    a.wrapping_add(b).wrapping_add(2u64.wrapping_mul((a & LO) * (b & LO)))
}

/// The BlaMka quarter round GB on four words.
macro_rules! permute_step {
    ($a:expr, $b:expr, $c:expr, $d:expr) => {
        $a = fblamka($a, $b);
        $d = ($d ^ $a).rotate_right(32);
        $c = fblamka($c, $d);
        $b = ($b ^ $c).rotate_right(24);
        $a = fblamka($a, $b);
        $d = ($d ^ $a).rotate_right(16);
        $c = fblamka($c, $d);
        $b = ($b ^ $c).rotate_right(63);
    };
}

/// The permutation P on sixteen words: GB on the columns, then on the diagonals.
macro_rules! permute {
    (
        $v0:expr, $v1:expr, $v2:expr, $v3:expr, $v4:expr, $v5:expr, $v6:expr, $v7:expr,
        $v8:expr, $v9:expr, $v10:expr, $v11:expr, $v12:expr, $v13:expr, $v14:expr, $v15:expr,
    ) => {
        permute_step!($v0, $v4, $v8, $v12);
        permute_step!($v1, $v5, $v9, $v13);
        permute_step!($v2, $v6, $v10, $v14);
        permute_step!($v3, $v7, $v11, $v15);
        permute_step!($v0, $v5, $v10, $v15);
        permute_step!($v1, $v6, $v11, $v12);
        permute_step!($v2, $v7, $v8, $v13);
        permute_step!($v3, $v4, $v9, $v14);
    };
}

/// Number of 64-bit words in a block.
pub(crate) const WORDS: usize = 128;

/// One 1 KiB memory block: 128 little-endian 64-bit words.
#[derive(Copy, Clone)]
#[repr(align(64))]
pub(crate) struct Block(pub(crate) [u64; WORDS]);

impl Block {
    /// Size of a block in bytes.
    pub(crate) const SIZE: usize = 1024;

    /// The all-zero block.
    pub(crate) const ZERO: Block = Block([0; WORDS]);

    /// Loads a block from its little-endian byte form.
    pub(crate) fn from_bytes(bytes: &[u8; Self::SIZE]) -> Block {
        let mut block = Block::ZERO;
        for (word, chunk) in block.0.iter_mut().zip(bytes.chunks_exact(8)) {
            *word = u64::from_le_bytes(chunk.try_into().expect("chunks_exact(8) yields 8 bytes"));
        }
        block
    }

    /// The little-endian byte form of the block.
    pub(crate) fn to_bytes(self) -> [u8; Self::SIZE] {
        let mut bytes = [0u8; Self::SIZE];
        for (chunk, word) in bytes.chunks_exact_mut(8).zip(self.0) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        bytes
    }

    /// Writes G(x, y) = P(x ^ y) ^ x ^ y to `dst`, or XORs it into `dst` if
    /// `xor`. P applies the BlaMka permutation to the eight rows and then to
    /// the eight columns of the 8x8 matrix of 16-byte registers.
    #[inline(always)]
    pub(crate) fn compress(x: &Block, y: &Block, dst: &mut Block, xor: bool) {
        let mut r = *x;
        r ^= y;
        let mut q = r;

        for row in q.0.chunks_exact_mut(16) {
            #[rustfmt::skip]
            permute!(
                row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7],
                row[8], row[9], row[10], row[11], row[12], row[13], row[14], row[15],
            );
        }

        for i in 0..8 {
            let b = i * 2;
            #[rustfmt::skip]
            permute!(
                q.0[b], q.0[b + 1], q.0[b + 16], q.0[b + 17], q.0[b + 32], q.0[b + 33], q.0[b + 48], q.0[b + 49],
                q.0[b + 64], q.0[b + 65], q.0[b + 80], q.0[b + 81], q.0[b + 96], q.0[b + 97], q.0[b + 112],
                q.0[b + 113],
            );
        }

        q ^= &r;
        if xor {
            *dst ^= &q;
        } else {
            *dst = q;
        }
    }
}

impl BitXorAssign<&Block> for Block {
    #[inline(always)]
    fn bitxor_assign(&mut self, rhs: &Block) {
        for (dst, src) in self.0.iter_mut().zip(rhs.0.iter()) {
            *dst ^= src;
        }
    }
}
