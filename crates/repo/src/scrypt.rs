//! scrypt (RFC 7914), the key derivation of restic's key files, with the
//! `p` independent ROMix lanes spread over two threads.
//!
//! Every repository command starts by deriving the master key from the
//! password. With the usual parameters (N=2^15, r=8, p=3..4) that is about
//! half a second of CPU: a third of a `check --read-data` of a 200 MiB
//! repository. The `scrypt` crate runs the lanes one after another and
//! converts bytes to words around every Salsa20/8 call; here the lanes stay
//! in words and two run at once. Two, not more: each lane needs
//! 128·r·N bytes (32 MiB at the usual parameters) while it runs, and two
//! keep the peak within what restic itself uses.

use pbkdf2::pbkdf2_hmac;
use sha2::Sha256;

/// Lanes computed at once (and so scrypt's memory: this many 128·r·N).
const MAX_THREADS: usize = 2;

/// Derive `out.len()` bytes. The caller has validated the parameters:
/// `n` a power of two of at least 2, `r` and `p` at least 1, and the
/// memory 128·r·N within its cap.
pub(crate) fn scrypt(password: &[u8], salt: &[u8], n: usize, r: usize, p: usize, out: &mut [u8]) {
    let lane_bytes = 128 * r;
    let mut b = vec![0u8; p * lane_bytes];
    pbkdf2_hmac::<Sha256>(password, salt, 1, &mut b);
    let mut lanes: Vec<Vec<u32>> = b
        .chunks_exact(lane_bytes)
        .map(|lane| {
            lane.chunks_exact(4)
                .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
                .collect()
        })
        .collect();

    let threads = std::thread::available_parallelism()
        .map_or(1, |t| t.get())
        .clamp(1, MAX_THREADS)
        .min(p);
    let per_thread = p.div_ceil(threads);
    let mix_all = |lanes: &mut [Vec<u32>]| {
        let mut v = vec![0u32; n * 32 * r];
        let mut t = vec![0u32; 32 * r];
        for lane in lanes {
            to_diagonal(lane);
            romix(lane, &mut v, &mut t, n, r);
            from_diagonal(lane);
        }
    };
    if threads == 1 {
        mix_all(&mut lanes);
    } else {
        std::thread::scope(|s| {
            for chunk in lanes.chunks_mut(per_thread) {
                s.spawn(move || mix_all(chunk));
            }
        });
    }

    for (lane, bytes) in lanes.iter().zip(b.chunks_exact_mut(lane_bytes)) {
        for (w, dst) in lane.iter().zip(bytes.chunks_exact_mut(4)) {
            dst.copy_from_slice(&w.to_le_bytes());
        }
    }
    pbkdf2_hmac::<Sha256>(password, &b, 1, out);
}

/// ROMix on one lane of 32·r words, in place; `v` holds N·32·r words and
/// `t` 32·r.
fn romix(x: &mut [u32], v: &mut [u32], t: &mut [u32], n: usize, r: usize) {
    let len = 32 * r;
    for i in 0..n {
        v[i * len..(i + 1) * len].copy_from_slice(x);
        block_mix(x, t, r);
        x.copy_from_slice(t);
    }
    // Integerify: the first word of the last 64-byte block, mod N.
    let last = (2 * r - 1) * 16;
    for _ in 0..n {
        let j = (x[last] as usize) & (n - 1);
        for ((tk, xk), vk) in t.iter_mut().zip(x.iter()).zip(&v[j * len..(j + 1) * len]) {
            *tk = xk ^ vk;
        }
        block_mix(t, x, r);
    }
}

/// BlockMix with Salsa20/8: even-indexed outputs first, then odd ones.
fn block_mix(input: &[u32], output: &mut [u32], r: usize) {
    let mut x = [0u32; 16];
    x.copy_from_slice(&input[(2 * r - 1) * 16..]);
    // In DIAGONAL order, as is everything here.
    for (i, block) in input.chunks_exact(16).enumerate() {
        for (xk, bk) in x.iter_mut().zip(block) {
            *xk ^= bk;
        }
        salsa20_8(&mut x);
        let pos = if i % 2 == 0 { i / 2 } else { r + i / 2 } * 16;
        output[pos..pos + 16].copy_from_slice(&x);
    }
}

/// Where each word of a 64-byte block is kept while the lanes are mixed:
/// position `i` holds word `DIAGONAL[i]`. Salsa20's quarter-rounds then work
/// on four contiguous `[u32; 4]`, which the compiler turns into SIMD
/// instructions. XOR and copies are position-wise, so BlockMix and ROMix do
/// not care, and Integerify's word 0 stays at position 0.
const DIAGONAL: [usize; 16] = [0, 5, 10, 15, 4, 9, 14, 3, 8, 13, 2, 7, 12, 1, 6, 11];

fn to_diagonal(lane: &mut [u32]) {
    for block in lane.chunks_exact_mut(16) {
        let words: [u32; 16] = std::array::from_fn(|i| block[i]);
        for (dst, &w) in block.iter_mut().zip(&DIAGONAL) {
            *dst = words[w];
        }
    }
}

fn from_diagonal(lane: &mut [u32]) {
    for block in lane.chunks_exact_mut(16) {
        let held: [u32; 16] = std::array::from_fn(|i| block[i]);
        for (&w, v) in DIAGONAL.iter().zip(held) {
            block[w] = v;
        }
    }
}

type Row = [u32; 4];

#[inline(always)]
fn add(a: Row, b: Row) -> Row {
    std::array::from_fn(|i| a[i].wrapping_add(b[i]))
}

#[inline(always)]
fn xor_rotl(x: Row, v: Row, k: u32) -> Row {
    std::array::from_fn(|i| x[i] ^ v[i].rotate_left(k))
}

#[inline(always)]
fn turn(v: Row, by: usize) -> Row {
    std::array::from_fn(|i| v[(i + by) % 4])
}

/// The Salsa20/8 core of RFC 7914, section 3, on a block in [`DIAGONAL`]
/// order: `a` = (x0, x5, x10, x15), `b` = (x4, x9, x14, x3),
/// `c` = (x8, x13, x2, x7), `d` = (x12, x1, x6, x11), so a column round is
/// one vector quarter-round; turning `b`, `c`, `d` gives the rows.
fn salsa20_8(block: &mut [u32; 16]) {
    let row = |i: usize| -> Row { std::array::from_fn(|k| block[4 * i + k]) };
    let (mut a, mut b, mut c, mut d) = (row(0), row(1), row(2), row(3));
    for _ in 0..4 {
        b = xor_rotl(b, add(a, d), 7);
        c = xor_rotl(c, add(b, a), 9);
        d = xor_rotl(d, add(c, b), 13);
        a = xor_rotl(a, add(d, c), 18);
        // Rows: (x0, x1, x2, x3), (x5, x6, x7, x4), ... as quarter-rounds.
        let (mut rb, mut rc, mut rd) = (turn(d, 1), turn(c, 2), turn(b, 3));
        rb = xor_rotl(rb, add(a, rd), 7);
        rc = xor_rotl(rc, add(rb, a), 9);
        rd = xor_rotl(rd, add(rc, rb), 13);
        a = xor_rotl(a, add(rd, rc), 18);
        (b, c, d) = (turn(rd, 1), turn(rc, 2), turn(rb, 3));
    }
    for (i, v) in [a, b, c, d].into_iter().enumerate() {
        for (k, w) in v.into_iter().enumerate() {
            block[4 * i + k] = block[4 * i + k].wrapping_add(w);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn derive(pw: &[u8], salt: &[u8], log_n: u8, r: u32, p: u32) -> Vec<u8> {
        let mut out = vec![0u8; 64];
        scrypt(pw, salt, 1 << log_n, r as usize, p as usize, &mut out);
        out
    }

    #[test]
    fn rfc7914_vector() {
        assert_eq!(
            hex::encode(derive(b"", b"", 4, 1, 1)),
            "77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442\
             fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906"
        );
    }

    /// The `scrypt` crate as the oracle, across lane counts (one thread,
    /// lanes split evenly and unevenly) and block sizes.
    #[test]
    fn matches_the_scrypt_crate() {
        for (log_n, r, p) in [
            (1, 1, 1),
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
                derive(b"password", b"NaCl", log_n, r, p),
                want,
                "N=2^{log_n} r={r} p={p}"
            );
        }
    }
}
