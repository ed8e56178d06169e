//! The compression function G written with AVX-512 intrinsics.
//!
//! LLVM's autovectorization of the portable G under AVX-512 is poor: it
//! gathers and scatters the column words and turns the BlaMka product into
//! the slow 64-bit `vpmullq`. Here the block is sixteen 512-bit registers,
//! two rows (or columns) are permuted per set of four registers, and the
//! rotations are single instructions (`vprolq`). The register layout follows the AVX-512
//! path of the reference implementation (phc-winner-argon2
//! `blamka-round-opt.h`, CC0 / Apache-2.0).

use core::arch::x86_64::{
    __m512i, _mm256_extract_epi64, _mm512_add_epi64, _mm512_extracti64x4_epi64, _mm512_mul_epu32,
    _mm512_permutex_epi64, _mm512_permutexvar_epi64, _mm512_ror_epi64, _mm512_set_epi64, _mm512_setr_epi64,
    _mm512_shuffle_i64x2, _mm512_xor_si512,
};

use crate::block::Block;

/// A block as sixteen registers; register `k` holds words `8k..8k + 8`.
type State = [__m512i; 16];

/// P on four rows, given as the registers of rows 2j and 2j + 1 and of
/// rows 2j + 2 and 2j + 3 (each row: words 0..8, words 8..16). Swapping
/// 256-bit halves gives (A, B, C, D) of two rows, one row per half.
/// (Macros rather than functions: LLVM does not always inline a function
/// this large, and `#[inline(always)]` is not allowed with target features.)
macro_rules! rows {
    ($a0:ident, $c0:ident, $b0:ident, $d0:ident, $a1:ident, $c1:ident, $b1:ident, $d1:ident) => {
        swap_halves(&mut $a0, &mut $b0);
        swap_halves(&mut $c0, &mut $d0);
        swap_halves(&mut $a1, &mut $b1);
        swap_halves(&mut $c1, &mut $d1);
        round(
            &mut $a0, &mut $b0, &mut $c0, &mut $d0, &mut $a1, &mut $b1, &mut $c1, &mut $d1,
        );
        swap_halves(&mut $a0, &mut $b0);
        swap_halves(&mut $c0, &mut $d0);
        swap_halves(&mut $a1, &mut $b1);
        swap_halves(&mut $c1, &mut $d1);
    };
}

/// P on four columns, given as the eight rows' registers that hold them.
/// Swapping quarters puts two columns in each register, one per half.
macro_rules! columns {
    ($a0:ident, $a1:ident, $b0:ident, $b1:ident, $c0:ident, $c1:ident, $d0:ident, $d1:ident) => {
        swap_quarters(&mut $a0, &mut $a1);
        swap_quarters(&mut $b0, &mut $b1);
        swap_quarters(&mut $c0, &mut $c1);
        swap_quarters(&mut $d0, &mut $d1);
        round(
            &mut $a0, &mut $b0, &mut $c0, &mut $d0, &mut $a1, &mut $b1, &mut $c1, &mut $d1,
        );
        unswap_quarters(&mut $a0, &mut $a1);
        unswap_quarters(&mut $b0, &mut $b1);
        unswap_quarters(&mut $c0, &mut $c1);
        unswap_quarters(&mut $d0, &mut $d1);
    };
}

/// Writes G(x, y) = P(x ^ y) ^ x ^ y to `dst`, or XORs it into `dst` if
/// `xor`; the same as [`Block::compress`].
#[inline]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2")]
pub(crate) fn compress(x: &Block, y: &Block, dst: &mut Block, xor: bool) {
    let (x, y) = (load(x), load(y));
    let mut r = x;
    for k in 0..16 {
        r[k] = _mm512_xor_si512(x[k], y[k]);
    }
    #[rustfmt::skip]
    let [mut q0, mut q1, mut q2, mut q3, mut q4, mut q5, mut q6, mut q7,
         mut q8, mut q9, mut q10, mut q11, mut q12, mut q13, mut q14, mut q15] = r;

    // Rows: row `i` is registers 2i (words 0..8) and 2i + 1 (words 8..16).
    rows!(q0, q1, q2, q3, q4, q5, q6, q7);
    rows!(q8, q9, q10, q11, q12, q13, q14, q15);
    // Columns: column `i` is words 2i and 2i + 1 of every row, so the even
    // registers hold columns 0..4 and the odd ones columns 4..8.
    columns!(q0, q2, q4, q6, q8, q10, q12, q14);
    columns!(q1, q3, q5, q7, q9, q11, q13, q15);

    let mut q = [q0, q1, q2, q3, q4, q5, q6, q7, q8, q9, q10, q11, q12, q13, q14, q15];
    for k in 0..16 {
        q[k] = _mm512_xor_si512(q[k], r[k]);
    }
    if xor {
        let old = load(dst);
        for k in 0..16 {
            q[k] = _mm512_xor_si512(q[k], old[k]);
        }
    }
    store(&q, dst);
}

/// The permutation P on two sets of two rows or columns: GB on the
/// columns of each 4x4 matrix (one per 256-bit half), then on its diagonals.
#[inline]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2")]
#[allow(clippy::too_many_arguments)]
fn round(
    a0: &mut __m512i,
    b0: &mut __m512i,
    c0: &mut __m512i,
    d0: &mut __m512i,
    a1: &mut __m512i,
    b1: &mut __m512i,
    c1: &mut __m512i,
    d1: &mut __m512i,
) {
    gb(a0, b0, c0, d0);
    gb(a1, b1, c1, d1);
    // Rotate B, C, D left by 1, 2, 3 words so that diagonals become columns.
    *b0 = _mm512_permutex_epi64::<0x39>(*b0);
    *c0 = _mm512_permutex_epi64::<0x4E>(*c0);
    *d0 = _mm512_permutex_epi64::<0x93>(*d0);
    *b1 = _mm512_permutex_epi64::<0x39>(*b1);
    *c1 = _mm512_permutex_epi64::<0x4E>(*c1);
    *d1 = _mm512_permutex_epi64::<0x93>(*d1);
    gb(a0, b0, c0, d0);
    gb(a1, b1, c1, d1);
    *b0 = _mm512_permutex_epi64::<0x93>(*b0);
    *c0 = _mm512_permutex_epi64::<0x4E>(*c0);
    *d0 = _mm512_permutex_epi64::<0x39>(*d0);
    *b1 = _mm512_permutex_epi64::<0x93>(*b1);
    *c1 = _mm512_permutex_epi64::<0x4E>(*c1);
    *d1 = _mm512_permutex_epi64::<0x39>(*d1);
}

/// The BlaMka quarter round GB, on every 64-bit lane.
#[inline]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2")]
fn gb(a: &mut __m512i, b: &mut __m512i, c: &mut __m512i, d: &mut __m512i) {
    *a = fblamka(*a, *b);
    *d = _mm512_ror_epi64::<32>(_mm512_xor_si512(*d, *a));
    *c = fblamka(*c, *d);
    *b = _mm512_ror_epi64::<24>(_mm512_xor_si512(*b, *c));
    *a = fblamka(*a, *b);
    *d = _mm512_ror_epi64::<16>(_mm512_xor_si512(*d, *a));
    *c = fblamka(*c, *d);
    *b = _mm512_ror_epi64::<63>(_mm512_xor_si512(*b, *c));
}

/// x + y + 2 * lo32(x) * lo32(y) per lane.
#[inline]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2")]
fn fblamka(x: __m512i, y: __m512i) -> __m512i {
    let product = _mm512_mul_epu32(x, y);
    _mm512_add_epi64(_mm512_add_epi64(x, y), _mm512_add_epi64(product, product))
}

/// (x, y) -> (x.low ++ y.low, x.high ++ y.high) in 256-bit halves; an involution.
#[inline]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2")]
fn swap_halves(x: &mut __m512i, y: &mut __m512i) {
    let low = _mm512_shuffle_i64x2::<0x44>(*x, *y);
    let high = _mm512_shuffle_i64x2::<0xEE>(*x, *y);
    *x = low;
    *y = high;
}

/// Two rows' quarters (word pairs) regrouped so that each 256-bit half holds
/// one column's four words from these two rows.
#[inline]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2")]
fn swap_quarters(x: &mut __m512i, y: &mut __m512i) {
    swap_halves(x, y);
    let order = _mm512_setr_epi64(0, 1, 4, 5, 2, 3, 6, 7);
    *x = _mm512_permutexvar_epi64(order, *x);
    *y = _mm512_permutexvar_epi64(order, *y);
}

/// The inverse of [`swap_quarters`].
#[inline]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2")]
fn unswap_quarters(x: &mut __m512i, y: &mut __m512i) {
    let order = _mm512_setr_epi64(0, 1, 4, 5, 2, 3, 6, 7);
    *x = _mm512_permutexvar_epi64(order, *x);
    *y = _mm512_permutexvar_epi64(order, *y);
    swap_halves(x, y);
}

/// Safe load (LLVM merges the lane inserts into one vector load).
#[inline]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2")]
#[allow(clippy::cast_possible_wrap)]
fn load(block: &Block) -> State {
    let mut state = [_mm512_setr_epi64(0, 0, 0, 0, 0, 0, 0, 0); 16];
    for (v, w) in state.iter_mut().zip(block.0.chunks_exact(8)) {
        *v = _mm512_set_epi64(
            w[7] as i64,
            w[6] as i64,
            w[5] as i64,
            w[4] as i64,
            w[3] as i64,
            w[2] as i64,
            w[1] as i64,
            w[0] as i64,
        );
    }
    state
}

/// Safe store (LLVM merges the lane extracts into one vector store).
#[inline]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2")]
#[allow(clippy::cast_sign_loss)]
fn store(state: &State, block: &mut Block) {
    for (w, v) in block.0.chunks_exact_mut(8).zip(state) {
        let low = _mm512_extracti64x4_epi64::<0>(*v);
        let high = _mm512_extracti64x4_epi64::<1>(*v);
        w[0] = _mm256_extract_epi64::<0>(low) as u64;
        w[1] = _mm256_extract_epi64::<1>(low) as u64;
        w[2] = _mm256_extract_epi64::<2>(low) as u64;
        w[3] = _mm256_extract_epi64::<3>(low) as u64;
        w[4] = _mm256_extract_epi64::<0>(high) as u64;
        w[5] = _mm256_extract_epi64::<1>(high) as u64;
        w[6] = _mm256_extract_epi64::<2>(high) as u64;
        w[7] = _mm256_extract_epi64::<3>(high) as u64;
    }
}
