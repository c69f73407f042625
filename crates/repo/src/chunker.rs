//! Content-defined chunking compatible with restic's chunker.
//!
//! A Rabin fingerprint over a 64-byte sliding window, computed modulo a
//! random irreducible polynomial of degree 53 that each repository records in
//! its config (so that boundaries cannot be predicted by an attacker who does
//! not know the polynomial). A chunk ends where the low 20 bits of the
//! fingerprint are zero, but never before 512 KiB and always at 8 MiB.
//!
//! To find the same boundaries as restic (and so deduplicate against data
//! restic wrote), every detail follows restic's algorithm, including two
//! quirks: after each boundary the window is reset and the byte `1` is slid
//! in, and the first `MIN_SIZE - 64` bytes of a chunk are skipped without
//! being hashed.
//!
//! Pure code: no I/O besides the caller's reader.

use std::io::Read;

/// Window of the rolling hash.
const WINDOW_SIZE: usize = 64;
/// Smallest chunk (except the last of a file).
pub const MIN_SIZE: usize = 512 * 1024;
/// Largest chunk.
pub const MAX_SIZE: usize = 8 * 1024 * 1024;
/// A cut happens where `digest & SPLIT_MASK == 0`: 1 MiB average.
const SPLIT_MASK: u64 = (1 << 20) - 1;
const READ_BUF: usize = 512 * 1024;

/// A polynomial over GF(2), bit i is the coefficient of x^i.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Polynomial(pub u64);

fn deg(x: u128) -> i32 {
    127 - x.leading_zeros() as i32
}

/// x mod d over GF(2).
fn pmod(mut x: u128, d: u128) -> u128 {
    let dd = deg(d);
    while x != 0 && deg(x) >= dd {
        x ^= d << (deg(x) - dd);
    }
    x
}

/// Carry-less product.
fn pmul(a: u64, b: u64) -> u128 {
    let mut r = 0u128;
    for i in 0..64 {
        if (b >> i) & 1 == 1 {
            r ^= (a as u128) << i;
        }
    }
    r
}

fn pgcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        let t = pmod(a, b);
        a = b;
        b = t;
    }
    a
}

impl Polynomial {
    /// Degree, -1 for the zero polynomial.
    pub fn degree(self) -> i32 {
        deg(self.0 as u128)
    }

    /// Ben-Or's test: x is irreducible iff gcd(x, x^(2^i) - x mod x) == 1 for
    /// every i up to deg/2.
    pub fn is_irreducible(self) -> bool {
        let g = self.0 as u128;
        if self.0 < 2 {
            return false;
        }
        let mut res: u128 = 2; // x
        for _i in 1..=self.degree() / 2 {
            // res = x^(2^i) mod g, by squaring the previous value.
            res = pmod(pmul(res as u64, res as u64), g);
            let q = pmod(res ^ 2, g);
            if pgcd(g, q) != 1 {
                return false;
            }
        }
        true
    }

    /// A random irreducible polynomial of degree 53, as restic picks one.
    pub fn random() -> Polynomial {
        loop {
            let mut f = rand::random::<u64>();
            f &= (1u64 << 54) - 1;
            f |= (1u64 << 53) | 1;
            let p = Polynomial(f);
            if p.is_irreducible() {
                return p;
            }
        }
    }
}

/// Lookup tables derived from the polynomial.
#[derive(Clone)]
pub struct ChunkerTables {
    out: [u64; 256],
    modt: [u64; 256],
    pol_shift: u32,
}

fn append_byte(h: u64, b: u8, pol: u64) -> u64 {
    pmod(((h as u128) << 8) | b as u128, pol as u128) as u64
}

impl ChunkerTables {
    /// Precompute the tables. The polynomial must have degree 53 (what every
    /// restic repository records); other degrees are accepted if they are
    /// between 9 and 62 so that the shifts stay in range.
    ///
    /// # Errors
    /// Returns a description of the problem for an unusable polynomial.
    pub fn new(pol: Polynomial) -> Result<ChunkerTables, String> {
        let k = pol.degree();
        if !(9..=62).contains(&k) {
            return Err(format!("chunker polynomial {:x} has degree {k}", pol.0));
        }
        let mut out = [0u64; 256];
        let mut modt = [0u64; 256];
        for b in 0..256usize {
            // Hash of b followed by WINDOW_SIZE-1 zeros: XOR it in to remove b
            // from the window.
            let mut h = append_byte(0, b as u8, pol.0);
            for _ in 0..WINDOW_SIZE - 1 {
                h = append_byte(h, 0, pol.0);
            }
            out[b] = h;
            // (b * x^k mod pol) | (b * x^k): one XOR both reduces and cancels
            // the top byte.
            let bk = (b as u128) << k;
            modt[b] = (pmod(bk, pol.0 as u128) | bk) as u64;
        }
        Ok(ChunkerTables {
            out,
            modt,
            pol_shift: (k - 8) as u32,
        })
    }
}

/// Splits a byte stream into content-defined chunks.
pub struct Chunker<'t, R> {
    tables: &'t ChunkerTables,
    rd: R,
    buf: Box<[u8]>,
    bpos: usize,
    bmax: usize,
    eof: bool,
    window: [u8; WINDOW_SIZE],
    wpos: usize,
    digest: u64,
}

impl<'t, R: Read> Chunker<'t, R> {
    /// A chunker reading from `rd`.
    pub fn new(tables: &'t ChunkerTables, rd: R) -> Self {
        let mut c = Chunker {
            tables,
            rd,
            buf: vec![0u8; READ_BUF].into_boxed_slice(),
            bpos: 0,
            bmax: 0,
            eof: false,
            window: [0; WINDOW_SIZE],
            wpos: 0,
            digest: 0,
        };
        c.reset();
        c
    }

    fn reset(&mut self) {
        self.window = [0; WINDOW_SIZE];
        self.wpos = 0;
        self.digest = 0;
        self.slide(1);
    }

    #[inline]
    fn slide(&mut self, b: u8) {
        let out = self.window[self.wpos];
        self.window[self.wpos] = b;
        self.digest ^= self.tables.out[out as usize];
        self.wpos = (self.wpos + 1) % WINDOW_SIZE;
        let index = (self.digest >> self.tables.pol_shift) as usize & 0xff;
        self.digest = (self.digest << 8) | b as u64;
        self.digest ^= self.tables.modt[index];
    }

    fn fill(&mut self) -> std::io::Result<()> {
        // Fill the whole buffer when possible (like io.ReadFull) so that
        // short reads do not change anything observable.
        let mut n = 0;
        while n < self.buf.len() {
            match self.rd.read(&mut self.buf[n..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(m) => n += m,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.bpos = 0;
        self.bmax = n;
        Ok(())
    }

    /// The next chunk, appended to a cleared `out`. Returns `false` at the
    /// end of the stream (and leaves `out` empty).
    ///
    /// # Errors
    /// I/O errors of the reader.
    pub fn next_chunk(&mut self, out: &mut Vec<u8>) -> std::io::Result<bool> {
        out.clear();
        // Bytes before MIN_SIZE - WINDOW_SIZE are not hashed.
        let mut pre = MIN_SIZE - WINDOW_SIZE;
        loop {
            if self.bpos >= self.bmax {
                if self.eof {
                    return Ok(!out.is_empty());
                }
                self.fill()?;
                if self.bmax == 0 {
                    return Ok(!out.is_empty());
                }
            }
            if pre > 0 {
                let n = (self.bmax - self.bpos).min(pre);
                out.extend_from_slice(&self.buf[self.bpos..self.bpos + n]);
                self.bpos += n;
                pre -= n;
                continue;
            }
            let start = self.bpos;
            let mut cut = None;
            let mut count = out.len();
            // The hot loop: state in locals so it stays in registers.
            let tables = self.tables;
            let (mut digest, mut wpos, mut window) = (self.digest, self.wpos, self.window);
            for (i, &b) in self.buf[start..self.bmax].iter().enumerate() {
                let old = window[wpos];
                window[wpos] = b;
                digest ^= tables.out[old as usize];
                wpos = (wpos + 1) % WINDOW_SIZE;
                let index = (digest >> tables.pol_shift) as usize & 0xff;
                digest = ((digest << 8) | b as u64) ^ tables.modt[index];
                count += 1;
                if count >= MIN_SIZE && (digest & SPLIT_MASK == 0 || count >= MAX_SIZE) {
                    cut = Some(start + i + 1);
                    break;
                }
            }
            (self.digest, self.wpos, self.window) = (digest, wpos, window);
            match cut {
                Some(end) => {
                    out.extend_from_slice(&self.buf[start..end]);
                    self.bpos = end;
                    self.reset();
                    return Ok(true);
                }
                None => {
                    out.extend_from_slice(&self.buf[start..self.bmax]);
                    self.bpos = self.bmax;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn irreducibility_table() {
        // (polynomial, irreducible?)
        let cases = [
            (0x3DA3358B4DC173u64, true), // restic chunker's test polynomial
            (0x7, true),                 // x^2 + x + 1
            (0x5, false),                // x^2 + 1 = (x + 1)^2
            (0xB, true),                 // x^3 + x + 1
            (0x3DA3358B4DC172, false),   // divisible by x
            (0x20792041eba743, true),    // from a real restic 0.14 repository
        ];
        for (p, want) in cases {
            assert_eq!(Polynomial(p).is_irreducible(), want, "{p:x}");
        }
        let r = Polynomial::random();
        assert_eq!(r.degree(), 53);
        assert!(r.is_irreducible());
    }

    fn chunk_all(t: &ChunkerTables, data: &[u8], read_size: usize) -> Vec<usize> {
        struct Trickle<'a>(&'a [u8], usize);
        impl Read for Trickle<'_> {
            fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
                let n = self.0.len().min(b.len()).min(self.1);
                b[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut c = Chunker::new(t, Trickle(data, read_size));
        let mut out = Vec::new();
        let mut lens = Vec::new();
        while c.next_chunk(&mut out).unwrap() {
            lens.push(out.len());
        }
        lens
    }

    #[test]
    fn chunks_respect_bounds_and_cover_input() {
        let t = ChunkerTables::new(Polynomial(0x3DA3358B4DC173)).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(23);
        let mut data = vec![0u8; 20 * 1024 * 1024];
        rng.fill(&mut data[..]);
        let lens = chunk_all(&t, &data, usize::MAX);
        assert_eq!(lens.iter().sum::<usize>(), data.len());
        assert!(lens.len() > 5, "{lens:?}");
        for l in &lens[..lens.len() - 1] {
            assert!((MIN_SIZE..=MAX_SIZE).contains(l), "{l}");
        }
        // Boundaries do not depend on how the reader delivers bytes.
        assert_eq!(chunk_all(&t, &data, 4097), lens);
        // Content-defined: a prefix insert only shifts the first boundary.
        let mut shifted = vec![7u8; 1000];
        shifted.extend_from_slice(&data);
        let l2 = chunk_all(&t, &shifted, usize::MAX);
        assert_eq!(l2[1..], lens[1..]);
    }

    #[test]
    fn zeros_cut_at_max_and_small_inputs_are_one_chunk() {
        let t = ChunkerTables::new(Polynomial(0x3DA3358B4DC173)).unwrap();
        assert_eq!(chunk_all(&t, &[], 100), Vec::<usize>::new());
        assert_eq!(chunk_all(&t, &[1, 2, 3], 100), vec![3]);
        assert_eq!(
            chunk_all(&t, &vec![5u8; MIN_SIZE - 1], 100000),
            vec![MIN_SIZE - 1]
        );
        let z = vec![0u8; MAX_SIZE * 2 + 10];
        // Zero bytes keep the digest constant and non-zero in the low bits
        // after the reset, so only MAX_SIZE cuts happen.
        let lens = chunk_all(&t, &z, usize::MAX);
        assert_eq!(lens.iter().sum::<usize>(), z.len());
    }

    #[test]
    fn bad_polynomials_are_rejected() {
        assert!(ChunkerTables::new(Polynomial(0)).is_err());
        assert!(ChunkerTables::new(Polynomial(0xff)).is_err());
        assert!(ChunkerTables::new(Polynomial(u64::MAX)).is_err());
    }
}
