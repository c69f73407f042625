//! The plaintext encoding of index, snapshot and lock files: in format
//! version 2 a leading byte `2` means "zstd-compressed JSON follows", while
//! a leading `{` or `[` means the whole plaintext is plain JSON (version 1
//! files, and version 2 files written without compression).

use crate::error::{Error, Result};

/// Largest decompressed metadata file we accept: bounds memory for hostile
/// input. restic keeps index files below 8 MiB compressed; trees of huge
/// directories can be large, so allow plenty.
pub(crate) const MAX_JSON: usize = 1 << 30;

/// Encode JSON for storage in a repository of `version`.
pub(crate) fn encode(json: &[u8], version: u32) -> Result<Vec<u8>> {
    if version < 2 {
        return Ok(json.to_vec());
    }
    let mut out = vec![2u8];
    out.extend(compress(json, "metadata")?);
    Ok(out)
}

/// Decode a plaintext into JSON bytes.
pub(crate) fn decode(plain: Vec<u8>, what: &str) -> Result<Vec<u8>> {
    match plain.first() {
        Some(b'{') | Some(b'[') => Ok(plain),
        Some(2) => decompress(&plain[1..], MAX_JSON, what),
        Some(v) => Err(Error::format(what, format!("unknown encoding version {v}"))),
        None => Err(Error::format(what, "empty file")),
    }
}

/// zstd at restic's default level.
pub(crate) fn compress(data: &[u8], what: &str) -> Result<Vec<u8>> {
    zstd::bulk::compress(data, 3).map_err(|e| Error::Compression {
        what: what.to_string(),
        reason: e.to_string(),
    })
}

/// Decompress a zstd frame into at most `limit` bytes.
pub(crate) fn decompress(data: &[u8], limit: usize, what: &str) -> Result<Vec<u8>> {
    // Stream with a cap rather than trusting the frame's content size field.
    use std::io::Read;
    let dec = zstd::stream::read::Decoder::new(data).map_err(|e| Error::Compression {
        what: what.to_string(),
        reason: e.to_string(),
    })?;
    let mut out = Vec::new();
    dec.take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::Compression {
            what: what.to_string(),
            reason: e.to_string(),
        })?;
    if out.len() > limit {
        return Err(Error::Compression {
            what: what.to_string(),
            reason: format!("decompressed size exceeds {limit} bytes"),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_table() {
        let j = br#"{"a":1}"#;
        assert_eq!(decode(encode(j, 2).unwrap(), "t").unwrap(), j);
        assert_eq!(encode(j, 1).unwrap(), j);
        assert_eq!(decode(j.to_vec(), "t").unwrap(), j);
        assert_eq!(decode(b"[1]".to_vec(), "t").unwrap(), b"[1]");
        assert!(decode(vec![], "t").is_err());
        assert!(decode(vec![3, 1, 2], "t").is_err());
        assert!(decode(vec![2, 1, 2, 3], "t").is_err());
    }

    #[test]
    fn decompression_is_capped() {
        let big = compress(&vec![0u8; 1 << 20], "t").unwrap();
        assert!(decompress(&big, 1000, "t").is_err());
        assert_eq!(decompress(&big, 1 << 20, "t").unwrap().len(), 1 << 20);
    }
}
