//! Pack files: `blob1 || ... || blobN || encrypted header || header length`.
//!
//! Each blob is encrypted on its own; the header lists, per blob, its type,
//! encrypted length, (for compressed blobs) plaintext length, and plaintext
//! SHA-256. The last four bytes are the encrypted header's length,
//! little-endian.

use crate::crypto::{Key, CRYPTO_OVERHEAD};
use crate::error::{Error, Result};
use crate::format::BlobType;
use crate::id::Id;

/// Size of a header entry for an uncompressed blob: type, length, hash.
const ENTRY_PLAIN: usize = 1 + 4 + 32;
/// Size of a header entry for a compressed blob: type, length, raw length, hash.
const ENTRY_COMPRESSED: usize = 1 + 4 + 4 + 32;

/// One blob as a pack header (or an index) describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackedBlob {
    /// Plaintext hash.
    pub id: Id,
    /// Data or tree.
    pub blob_type: BlobType,
    /// Offset of the encrypted blob in the pack.
    pub offset: u32,
    /// Encrypted length.
    pub length: u32,
    /// Plaintext length for compressed blobs, `None` for uncompressed ones.
    pub uncompressed_length: Option<u32>,
}

impl PackedBlob {
    /// Plaintext length.
    pub fn data_length(&self) -> u32 {
        self.uncompressed_length
            .unwrap_or_else(|| self.length.saturating_sub(CRYPTO_OVERHEAD as u32))
    }
}

/// Serialise the plaintext header for `blobs` (in pack order).
pub(crate) fn header(blobs: &[PackedBlob]) -> Vec<u8> {
    let mut h = Vec::with_capacity(blobs.len() * ENTRY_COMPRESSED);
    for b in blobs {
        let t = match (b.blob_type, b.uncompressed_length.is_some()) {
            (BlobType::Data, false) => 0u8,
            (BlobType::Tree, false) => 1,
            (BlobType::Data, true) => 2,
            (BlobType::Tree, true) => 3,
        };
        h.push(t);
        h.extend_from_slice(&b.length.to_le_bytes());
        if let Some(u) = b.uncompressed_length {
            h.extend_from_slice(&u.to_le_bytes());
        }
        h.extend_from_slice(&b.id.0);
    }
    h
}

/// Parse a decrypted header; `pack_size` bounds the offsets.
pub(crate) fn parse_header(h: &[u8], header_start: u64, what: &str) -> Result<Vec<PackedBlob>> {
    let mut out = Vec::with_capacity(h.len() / ENTRY_PLAIN);
    let mut pos = 0usize;
    let mut offset: u64 = 0;
    let le32 = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    while pos < h.len() {
        let t = h[pos];
        let (blob_type, compressed) = match t {
            0 => (BlobType::Data, false),
            1 => (BlobType::Tree, false),
            2 => (BlobType::Data, true),
            3 => (BlobType::Tree, true),
            _ => {
                return Err(Error::format(
                    what,
                    format!("invalid blob type {t} in header"),
                ))
            }
        };
        let need = if compressed {
            ENTRY_COMPRESSED
        } else {
            ENTRY_PLAIN
        };
        let e = h
            .get(pos..pos + need)
            .ok_or_else(|| Error::format(what, "truncated header entry"))?;
        let length = le32(&e[1..5]);
        let (uncompressed_length, hash) = if compressed {
            (Some(le32(&e[5..9])), &e[9..41])
        } else {
            (None, &e[5..37])
        };
        if (length as usize) < CRYPTO_OVERHEAD {
            return Err(Error::format(
                what,
                format!("blob length {length} too small"),
            ));
        }
        let mut id = [0u8; 32];
        id.copy_from_slice(hash);
        let end = offset + length as u64;
        if end > header_start {
            return Err(Error::format(what, "blob extends into the pack header"));
        }
        out.push(PackedBlob {
            id: Id(id),
            blob_type,
            offset: u32::try_from(offset).map_err(|_| Error::format(what, "pack too large"))?,
            length,
            uncompressed_length,
        });
        offset = end;
        pos += need;
    }
    Ok(out)
}

/// The header of a pack of `size` bytes from `tail`, the pack's last
/// `tail.len()` bytes (the whole pack will do): what follows the blobs
/// when a pack is read as a stream (`check --read-data`). A header longer
/// than `tail` would cover bytes the caller took for blobs, and is an
/// error.
///
/// Every length is checked against the sizes before anything is sliced,
/// so a hostile pack gives an error, never a panic or a large allocation.
pub(crate) fn header_from_tail(
    key: &Key,
    size: u64,
    tail: &[u8],
    what: &str,
) -> Result<Vec<PackedBlob>> {
    check_pack_size(size, what)?;
    if tail.len() < 4 {
        return Err(Error::format(
            what,
            format!(
                "the header length field lies inside the blobs ({} bytes follow them)",
                tail.len()
            ),
        ));
    }
    let n = tail.len();
    let hlen = header_length(tail, size, what)?;
    if hlen + 4 > n as u64 {
        return Err(Error::format(
            what,
            format!(
                "header of {hlen} bytes reaches into the blobs ({} bytes follow them)",
                n - 4
            ),
        ));
    }
    let enc = &tail[n - 4 - hlen as usize..n - 4];
    open_header(key, enc, size - 4 - hlen, what)
}

/// The most bytes the header of a pack listed with `entries` blobs can
/// take, length field included, with room for as many blobs again that the
/// index does not list (so such a pack is still reported as not matching
/// its index): what `check --read-data` holds after the last blob.
pub(crate) fn header_bound(entries: usize) -> u64 {
    let entries = entries.saturating_mul(2).saturating_add(64);
    4 + CRYPTO_OVERHEAD as u64 + (ENTRY_COMPRESSED as u64).saturating_mul(entries as u64)
}

fn check_pack_size(size: u64, what: &str) -> Result<()> {
    let min = 4 + CRYPTO_OVERHEAD as u64;
    if size < min {
        return Err(Error::format(
            what,
            format!("pack of {size} bytes is too small"),
        ));
    }
    Ok(())
}

/// The encrypted header's length from the last four bytes of `tail`,
/// checked against the pack's `size`.
fn header_length(tail: &[u8], size: u64, what: &str) -> Result<u64> {
    let n = tail.len();
    let hlen = u32::from_le_bytes([tail[n - 4], tail[n - 3], tail[n - 2], tail[n - 1]]) as u64;
    if hlen < CRYPTO_OVERHEAD as u64 || hlen + 4 > size {
        return Err(Error::format(
            what,
            format!("header length {hlen} invalid for pack size {size}"),
        ));
    }
    Ok(hlen)
}

fn open_header(key: &Key, enc: &[u8], header_start: u64, what: &str) -> Result<Vec<PackedBlob>> {
    let plain = key.open(enc, &format!("{what} header"))?;
    parse_header(&plain, header_start, what)
}

/// Assembles a pack in memory. Packs are bounded (a target size plus one
/// blob of at most 8 MiB), so memory stays bounded too.
pub(crate) struct PackBuilder {
    pub(crate) blob_type: BlobType,
    pub(crate) data: Vec<u8>,
    pub(crate) blobs: Vec<PackedBlob>,
}

impl PackBuilder {
    pub(crate) fn new(blob_type: BlobType) -> Self {
        PackBuilder {
            blob_type,
            data: Vec::new(),
            blobs: Vec::new(),
        }
    }

    /// Append an already encrypted blob.
    pub(crate) fn add(&mut self, id: Id, encrypted: &[u8], uncompressed_length: Option<u32>) {
        self.blobs.push(PackedBlob {
            id,
            blob_type: self.blob_type,
            offset: self.data.len() as u32,
            length: encrypted.len() as u32,
            uncompressed_length,
        });
        self.data.extend_from_slice(encrypted);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.blobs.is_empty()
    }

    /// Append the encrypted header and its length; returns the pack bytes,
    /// its id and the blob list.
    pub(crate) fn finish(mut self, key: &Key) -> (Vec<u8>, Id, Vec<PackedBlob>) {
        let h = key.seal(&header(&self.blobs));
        self.data.extend_from_slice(&h);
        self.data.extend_from_slice(&(h.len() as u32).to_le_bytes());
        let id = Id::hash(&self.data);
        (self.data, id, self.blobs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(n: usize, key: &Key) -> (Vec<u8>, Vec<PackedBlob>) {
        let mut b = PackBuilder::new(BlobType::Data);
        for i in 0..n {
            let pt = vec![i as u8; 100 + i];
            let comp = i % 2 == 0;
            b.add(
                Id::hash(&pt),
                &key.seal(&pt),
                comp.then_some(100 + i as u32),
            );
        }
        let (data, _, blobs) = b.finish(key);
        (data, blobs)
    }

    #[test]
    fn header_round_trip_small_and_large() {
        let key = Key::random();
        for n in [1, 2, 15, 16, 100] {
            let (data, blobs) = build(n, &key);
            let got = header_from_tail(&key, data.len() as u64, &data, "p").unwrap();
            assert_eq!(got, blobs, "n={n}");
        }
    }

    #[test]
    fn a_header_is_read_from_the_tail_after_the_blobs() {
        let key = Key::random();
        for n in [1, 16, 100] {
            let (data, blobs) = build(n, &key);
            let size = data.len() as u64;
            let last = blobs.last().unwrap();
            let blobs_end = (last.offset + last.length) as usize;
            // Exactly the bytes after the blobs, or more of them.
            for from in [blobs_end, blobs_end - 7] {
                let got = header_from_tail(&key, size, &data[from..], "p").unwrap();
                assert_eq!(got, blobs, "n={n}");
            }
            // A tail that stops short of the header's start: the header
            // would cover bytes taken for blobs.
            let e = header_from_tail(&key, size, &data[blobs_end + 1..], "p").unwrap_err();
            assert!(e.to_string().contains("reaches into the blobs"), "{e}");
            let e = header_from_tail(&key, size, &data[data.len() - 3..], "p").unwrap_err();
            assert!(e.to_string().contains("length field lies inside"), "{e}");
            // A length field or header that is damaged.
            let mut d = data.clone();
            let end = d.len();
            d[end - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
            let e = header_from_tail(&key, size, &d[blobs_end..], "p").unwrap_err();
            assert!(
                e.to_string().contains("header length 4294967295 invalid"),
                "{e}"
            );
            d[end - 10] ^= 1;
            d[end - 4..].copy_from_slice(&data[end - 4..]);
            let e = header_from_tail(&key, size, &d[blobs_end..], "p").unwrap_err();
            assert!(matches!(e, Error::Mac(_)), "{e}");
        }
        let e = header_from_tail(&key, 10, &[0; 10], "p").unwrap_err();
        assert!(
            e.to_string().contains("pack of 10 bytes is too small"),
            "{e}"
        );
    }

    #[test]
    fn hostile_packs_give_errors_not_panics() {
        let key = Key::random();
        let (data, _) = build(3, &key);
        let n = data.len();
        let mut cases: Vec<Vec<u8>> =
            vec![vec![], vec![1, 2, 3], vec![0; 36], data[..n - 1].to_vec()];
        for hl in [0u32, 31, u32::MAX, n as u32] {
            let mut d = data.clone();
            d[n - 4..].copy_from_slice(&hl.to_le_bytes());
            cases.push(d);
        }
        let mut flipped = data.clone();
        flipped[n - 10] ^= 1;
        cases.push(flipped);
        for (i, c) in cases.iter().enumerate() {
            assert!(
                header_from_tail(&key, c.len() as u64, c, "p").is_err(),
                "case {i}"
            );
        }
        // Entries that claim more bytes than precede the header.
        let bad = header(&[PackedBlob {
            id: Id::default(),
            blob_type: BlobType::Data,
            offset: 0,
            length: 1 << 30,
            uncompressed_length: None,
        }]);
        assert!(parse_header(&bad, 100, "p").is_err());
        assert!(parse_header(&[9], 100, "p").is_err());
        assert!(parse_header(&[0, 1, 2], 100, "p").is_err());
    }
}
