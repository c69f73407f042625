//! scrypt (RFC 7914), the key derivation of restic's key files: two lanes at
//! once in SSE2 registers, each in half of the textbook memory.
//!
//! Every repository command starts by deriving the master key from the
//! password. With the usual parameters (N=2^15, r=8, p=3..4) the textbook
//! algorithm costs 0.1 s of CPU and 32 MiB per lane, run one lane after
//! another: a fixed floor under every command, a third of a
//! `check --read-data` of a 200 MiB repository. Three things lower it
//! without changing the result:
//!
//! - Salsa20/8 runs on four 4-word vectors. The compiler does not vectorise
//!   the rotations by itself on x86_64's SSE2 baseline, so the [`Vector`]
//!   impl for `__m128i` calls the SSE2 instructions (the crate's only
//!   `unsafe`, about 1.6x per lane); elsewhere the same code runs on
//!   `[u32; 4]`.
//! - Two lanes run at once, on two threads.
//! - ROMix keeps only every other entry of its table (a time-memory
//!   trade-off) and recomputes an odd entry with one extra BlockMix when it
//!   is read: a quarter more work per lane, half the memory, so two lanes
//!   at once need what one textbook lane needs (128·r·N bytes).

use pbkdf2::pbkdf2_hmac;
use sha2::Sha256;

/// Lanes computed at once.
const MAX_THREADS: usize = 2;

/// Derive `out.len()` bytes. The caller has validated the parameters:
/// `n` a power of two of at least 2, `r` and `p` at least 1, and the
/// memory 128·r·N within its cap.
pub(crate) fn scrypt(password: &[u8], salt: &[u8], n: usize, r: usize, p: usize, out: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    scrypt_with::<std::arch::x86_64::__m128i>(password, salt, n, r, p, out);
    #[cfg(not(target_arch = "x86_64"))]
    scrypt_with::<[u32; 4]>(password, salt, n, r, p, out);
}

fn scrypt_with<V: Vector>(
    password: &[u8],
    salt: &[u8],
    n: usize,
    r: usize,
    p: usize,
    out: &mut [u8],
) {
    let lane_bytes = 128 * r;
    let mut b = vec![0u8; p * lane_bytes];
    pbkdf2_hmac::<Sha256>(password, salt, 1, &mut b);

    let threads = std::thread::available_parallelism()
        .map_or(1, |t| t.get())
        .clamp(1, MAX_THREADS)
        .min(p);
    // One thread keeps the whole table: halving it only pays when it lets
    // a second lane run in the same memory.
    let stride = if threads > 1 { 2 } else { 1 };
    let mix_all = |lanes: &mut [u8]| {
        let mut v = vec![V::zero(); n / stride * 8 * r];
        let mut x = vec![V::zero(); 8 * r];
        let mut t = vec![V::zero(); 8 * r];
        let mut u = vec![V::zero(); 8 * r];
        for lane in lanes.chunks_exact_mut(lane_bytes) {
            load(lane, &mut x);
            romix(&mut x, &mut v, &mut t, &mut u, n, stride);
            store(&x, lane);
        }
    };
    if threads == 1 {
        mix_all(&mut b);
    } else {
        let per_thread = p.div_ceil(threads) * lane_bytes;
        std::thread::scope(|s| {
            for chunk in b.chunks_mut(per_thread) {
                s.spawn(move || mix_all(chunk));
            }
        });
    }
    pbkdf2_hmac::<Sha256>(password, &b, 1, out);
}

/// Four 32-bit words in one register: what Salsa20/8 needs of a SIMD type.
/// Every method is inlined into [`salsa20_8`], so the trait costs nothing.
trait Vector: Copy + Send {
    fn zero() -> Self {
        Self::from_words([0; 4])
    }
    fn from_words(w: [u32; 4]) -> Self;
    fn to_words(self) -> [u32; 4];
    fn add(self, o: Self) -> Self;
    fn xor(self, o: Self) -> Self;
    /// `self ^ (v <<< k)`, word by word.
    fn xor_rotl(self, v: Self, k: u32) -> Self;
    /// Words `(i + by) % 4` for `i` in `0..4`.
    fn turn<const BY: usize>(self) -> Self;
}

impl Vector for [u32; 4] {
    #[inline(always)]
    fn from_words(w: [u32; 4]) -> Self {
        w
    }
    #[inline(always)]
    fn to_words(self) -> [u32; 4] {
        self
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        std::array::from_fn(|i| self[i].wrapping_add(o[i]))
    }
    #[inline(always)]
    fn xor(self, o: Self) -> Self {
        std::array::from_fn(|i| self[i] ^ o[i])
    }
    #[inline(always)]
    fn xor_rotl(self, v: Self, k: u32) -> Self {
        std::array::from_fn(|i| self[i] ^ v[i].rotate_left(k))
    }
    #[inline(always)]
    fn turn<const BY: usize>(self) -> Self {
        std::array::from_fn(|i| self[(i + BY) % 4])
    }
}

// SAFETY (every `unsafe` block below): the intrinsics are SSE2
// instructions, and SSE2 is part of the x86_64 baseline: every x86_64 CPU
// has it, and the target enables it for all code. They touch no memory.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
impl Vector for std::arch::x86_64::__m128i {
    #[inline(always)]
    fn from_words(w: [u32; 4]) -> Self {
        let [a, b, c, d] = w.map(|x| x as i32);
        unsafe { std::arch::x86_64::_mm_set_epi32(d, c, b, a) }
    }
    #[inline(always)]
    fn to_words(self) -> [u32; 4] {
        use std::arch::x86_64::{_mm_cvtsi128_si32, _mm_shuffle_epi32};
        let words = unsafe {
            [
                _mm_cvtsi128_si32(self),
                _mm_cvtsi128_si32(_mm_shuffle_epi32::<0b01>(self)),
                _mm_cvtsi128_si32(_mm_shuffle_epi32::<0b10>(self)),
                _mm_cvtsi128_si32(_mm_shuffle_epi32::<0b11>(self)),
            ]
        };
        words.map(|x| x as u32)
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        unsafe { std::arch::x86_64::_mm_add_epi32(self, o) }
    }
    #[inline(always)]
    fn xor(self, o: Self) -> Self {
        unsafe { std::arch::x86_64::_mm_xor_si128(self, o) }
    }
    #[inline(always)]
    fn xor_rotl(self, v: Self, k: u32) -> Self {
        use std::arch::x86_64::{_mm_cvtsi32_si128, _mm_or_si128, _mm_sll_epi32, _mm_srl_epi32};
        // `k` is a constant after inlining: these become immediate shifts.
        unsafe {
            let left = _mm_sll_epi32(v, _mm_cvtsi32_si128(k as i32));
            let right = _mm_srl_epi32(v, _mm_cvtsi32_si128(32 - k as i32));
            self.xor(_mm_or_si128(left, right))
        }
    }
    #[inline(always)]
    fn turn<const BY: usize>(self) -> Self {
        use std::arch::x86_64::_mm_shuffle_epi32;
        unsafe {
            match BY % 4 {
                0 => self,
                1 => _mm_shuffle_epi32::<0b00_11_10_01>(self),
                2 => _mm_shuffle_epi32::<0b01_00_11_10>(self),
                _ => _mm_shuffle_epi32::<0b10_01_00_11>(self),
            }
        }
    }
}

/// Where each word of a 64-byte block is kept while the lanes are mixed:
/// vector `i / 4`, word `i % 4` holds word `DIAGONAL[i]`. Salsa20's
/// quarter-rounds then work on whole vectors. XOR and copies are
/// position-wise, so BlockMix and ROMix do not care, and Integerify's
/// word 0 stays at position 0.
const DIAGONAL: [usize; 16] = [0, 5, 10, 15, 4, 9, 14, 3, 8, 13, 2, 7, 12, 1, 6, 11];

/// Little-endian bytes of a lane into vectors in [`DIAGONAL`] order.
fn load<V: Vector>(bytes: &[u8], out: &mut [V]) {
    for (block, vectors) in bytes.chunks_exact(64).zip(out.chunks_exact_mut(4)) {
        let word = |i: usize| {
            let w = DIAGONAL[i] * 4;
            u32::from_le_bytes([block[w], block[w + 1], block[w + 2], block[w + 3]])
        };
        for (k, v) in vectors.iter_mut().enumerate() {
            *v = V::from_words(std::array::from_fn(|i| word(4 * k + i)));
        }
    }
}

/// The inverse of [`load`].
fn store<V: Vector>(vectors: &[V], bytes: &mut [u8]) {
    for (block, vs) in bytes.chunks_exact_mut(64).zip(vectors.chunks_exact(4)) {
        for (k, v) in vs.iter().enumerate() {
            for (i, w) in v.to_words().into_iter().enumerate() {
                let at = DIAGONAL[4 * k + i] * 4;
                block[at..at + 4].copy_from_slice(&w.to_le_bytes());
            }
        }
    }
}

/// ROMix on one lane of 8·r vectors, in place. `v` holds N/`stride`
/// entries of 8·r vectors: entry `i` of the textbook table is kept when
/// `i % stride == 0` and otherwise recomputed from the kept one before it
/// (`stride` is 1 or 2). `t` and `u` are scratch lanes.
fn romix<V: Vector>(x: &mut [V], v: &mut [V], t: &mut [V], u: &mut [V], n: usize, stride: usize) {
    let len = x.len();
    for i in 0..n {
        if i % stride == 0 {
            let k = i / stride;
            v[k * len..(k + 1) * len].copy_from_slice(x);
        }
        block_mix(x, t);
        x.copy_from_slice(t);
    }
    // Integerify: the first word of the last 64-byte block, mod N.
    let last = len - 4;
    for _ in 0..n {
        let j = (x[last].to_words()[0] as usize) & (n - 1);
        let k = j / stride;
        let kept = &v[k * len..(k + 1) * len];
        let entry = if j % stride == 0 {
            kept
        } else {
            block_mix(kept, u);
            &*u
        };
        for ((tk, xk), vk) in t.iter_mut().zip(x.iter()).zip(entry) {
            *tk = xk.xor(*vk);
        }
        block_mix(t, x);
    }
}

/// BlockMix with Salsa20/8: even-indexed outputs first, then odd ones.
fn block_mix<V: Vector>(input: &[V], output: &mut [V]) {
    let r = input.len() / 8;
    let mut x = [V::zero(); 4];
    x.copy_from_slice(&input[input.len() - 4..]);
    for (i, block) in input.chunks_exact(4).enumerate() {
        for (xk, bk) in x.iter_mut().zip(block) {
            *xk = xk.xor(*bk);
        }
        salsa20_8(&mut x);
        let pos = if i % 2 == 0 { i / 2 } else { r + i / 2 } * 4;
        output[pos..pos + 4].copy_from_slice(&x);
    }
}

/// The Salsa20/8 core of RFC 7914, section 3, on a block in [`DIAGONAL`]
/// order: `a` = (x0, x5, x10, x15), `b` = (x4, x9, x14, x3),
/// `c` = (x8, x13, x2, x7), `d` = (x12, x1, x6, x11), so a column round is
/// one vector quarter-round; turning `b`, `c`, `d` gives the rows.
#[inline(always)]
fn salsa20_8<V: Vector>(block: &mut [V; 4]) {
    let [mut a, mut b, mut c, mut d] = *block;
    for _ in 0..4 {
        b = b.xor_rotl(a.add(d), 7);
        c = c.xor_rotl(b.add(a), 9);
        d = d.xor_rotl(c.add(b), 13);
        a = a.xor_rotl(d.add(c), 18);
        // Rows: (x0, x1, x2, x3), (x5, x6, x7, x4), ... as quarter-rounds.
        let (mut rb, mut rc, mut rd) = (d.turn::<1>(), c.turn::<2>(), b.turn::<3>());
        rb = rb.xor_rotl(a.add(rd), 7);
        rc = rc.xor_rotl(rb.add(a), 9);
        rd = rd.xor_rotl(rc.add(rb), 13);
        a = a.xor_rotl(rd.add(rc), 18);
        (b, c, d) = (rd.turn::<1>(), rc.turn::<2>(), rb.turn::<3>());
    }
    for (w, v) in block.iter_mut().zip([a, b, c, d]) {
        *w = w.add(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn derive<V: Vector>(pw: &[u8], salt: &[u8], log_n: u8, r: u32, p: u32) -> Vec<u8> {
        let mut out = vec![0u8; 64];
        scrypt_with::<V>(pw, salt, 1 << log_n, r as usize, p as usize, &mut out);
        out
    }

    /// Both vector types: the one `scrypt` uses here and the portable one.
    fn both(pw: &[u8], salt: &[u8], log_n: u8, r: u32, p: u32) -> Vec<u8> {
        let portable = derive::<[u32; 4]>(pw, salt, log_n, r, p);
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            derive::<std::arch::x86_64::__m128i>(pw, salt, log_n, r, p),
            portable,
            "SSE2 and portable differ at N=2^{log_n} r={r} p={p}"
        );
        portable
    }

    #[test]
    fn rfc7914_vectors() {
        let mut out = vec![0u8; 64];
        scrypt(b"", b"", 16, 1, 1, &mut out);
        assert_eq!(
            hex::encode(&out),
            "77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442\
             fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906"
        );
        // p = 16 runs two threads, so the halved table is exercised.
        assert_eq!(
            hex::encode(both(b"password", b"NaCl", 10, 8, 16)),
            "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162\
             2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640"
        );
    }

    /// The `scrypt` crate as the oracle, across lane counts (one thread,
    /// lanes split evenly and unevenly) and block sizes.
    #[test]
    fn matches_the_scrypt_crate() {
        for (log_n, r, p) in [
            (1, 1, 1),
            (1, 1, 2),
            (4, 1, 1),
            (10, 8, 1),
            (10, 8, 2),
            (10, 8, 3),
            (8, 3, 5),
        ] {
            let mut want = [0u8; 64];
            let params = ::scrypt::Params::new(log_n, r, p, 64).unwrap();
            ::scrypt::scrypt(b"password", b"NaCl", &params, &mut want).unwrap();
            assert_eq!(
                both(b"password", b"NaCl", log_n, r, p),
                want,
                "N=2^{log_n} r={r} p={p}"
            );
        }
    }
}
