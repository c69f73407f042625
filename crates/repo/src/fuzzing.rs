//! Entry points for the fuzz targets in `crates/repo/fuzz`: the parsers of
//! untrusted repository bytes, each run the way the engine runs it, with the
//! invariants the rest of the engine relies on asserted. Not a stable API:
//! compiled only with the `fuzzing` feature (and for this crate's tests).
//!
//! Every entry point must return for any input; a panic (including a failed
//! invariant below) is a bug.

use crate::crypto::{Key, CRYPTO_OVERHEAD};
use crate::error::{Error, Result};
use crate::format::index::IndexJson;
use crate::format::pack;
use crate::format::tree::Tree;
use crate::format::unpacked;

/// A fixed master key, so that inputs reproduce.
fn key() -> Key {
    let mut b = [0u8; 64];
    for (i, x) in b.iter_mut().enumerate() {
        *x = i as u8;
    }
    Key::from_kdf_output(&b)
}

/// What the engine relies on from a parsed header: blobs lie inside the
/// data area, one after the other, each long enough to hold a MAC.
fn assert_header_invariants(blobs: &[pack::PackedBlob], header_start: u64) {
    let mut end = 0u64;
    for b in blobs {
        assert_eq!(b.offset as u64, end, "blobs are contiguous");
        assert!(
            b.length as usize >= CRYPTO_OVERHEAD,
            "blob shorter than a MAC"
        );
        end = b.offset as u64 + b.length as u64;
        assert!(end <= header_start, "blob reaches into the header");
    }
}

/// Pack header parsing, three ways:
/// - `data` as a whole pack file (length field, size checks, MAC);
/// - `data[4..]` as a decrypted header whose data area is `data[..4]` bytes
///   long (the parser itself);
/// - `data[1..]` as a plaintext header sealed under the fixed key behind a
///   data area of `data[0] * 64` bytes, so that mutated headers get past the
///   MAC and through the whole read path.
#[doc(hidden)]
pub fn parse_pack_header(data: &[u8]) {
    let k = key();
    if let Ok(blobs) = pack::header_from_tail(&k, data.len() as u64, data, "fuzz pack") {
        assert_header_invariants(&blobs, data.len() as u64);
    }
    if let Some((start, h)) = data.split_first_chunk::<4>() {
        let header_start = u32::from_le_bytes(*start) as u64;
        if let Ok(blobs) = pack::parse_header(h, header_start, "fuzz header") {
            assert_header_invariants(&blobs, header_start);
            // What we parse, we write back the same.
            assert_eq!(pack::header(&blobs), h, "header round trip");
        }
    }
    if let Some((&area, plain)) = data.split_first() {
        let mut file = vec![0u8; area as usize * 64];
        let header_start = file.len() as u64;
        let sealed = k.seal(plain);
        file.extend_from_slice(&sealed);
        file.extend_from_slice(&(sealed.len() as u32).to_le_bytes());
        if let Ok(blobs) = pack::header_from_tail(&k, file.len() as u64, &file, "fuzz pack") {
            assert_header_invariants(&blobs, header_start);
        }
    }
}

/// Index file parsing: the plaintext encoding (plain or zstd JSON, bounded)
/// then the JSON, then what loading the index does with each entry.
#[doc(hidden)]
pub fn parse_index(data: &[u8]) {
    let json = unpacked::decode(data.to_vec(), "fuzz index").unwrap_or_else(|_| data.to_vec());
    let Ok(idx) = serde_json::from_slice::<IndexJson>(&json) else {
        return;
    };
    for p in &idx.packs {
        for b in &p.blobs {
            let pb = b.to_packed();
            // Lengths from an index are untrusted; derived values must not
            // overflow or panic.
            let _ = pb.data_length();
            let _ = (pb.offset as u64).checked_add(pb.length as u64);
        }
    }
    let back = serde_json::to_vec(&idx).expect("an index we parsed serialises");
    let again: IndexJson = serde_json::from_slice(&back).expect("and parses again");
    assert_eq!(again.packs.len(), idx.packs.len());
}

/// Tree parsing: JSON into [`Tree`], and back into restic's encoding, which
/// must parse to the same tree (ids of re-written trees depend on it).
#[doc(hidden)]
pub fn parse_tree(data: &[u8]) {
    let Ok(tree) = serde_json::from_slice::<Tree>(data) else {
        return;
    };
    for n in &tree.nodes {
        let _ = crate::format::tree::unix_perm_from_go(n.mode);
    }
    let back = tree.to_json().expect("a tree we parsed serialises");
    let again: Tree = serde_json::from_slice(&back).expect("and parses again");
    assert_eq!(again, tree, "tree round trip");
}

/// Saves a snapshot whose root tree holds one file per name in `names`, each
/// with `content`, names unchecked: what a hostile writer holding the key
/// could store. For the tests of everything that turns tree names into
/// paths (restore, check, export, the ops crate's verification).
///
/// # Errors
/// When the repository cannot be written.
#[doc(hidden)]
pub fn save_snapshot_with_names(
    repo: &mut crate::Repository,
    names: &[&str],
    content: &[u8],
) -> Result<crate::Id> {
    use crate::format::tree::Node;
    use crate::format::{time, BlobType};
    let mut saver = crate::repository::BlobSaver::new();
    let (blob, _) = saver.save(repo, BlobType::Data, content)?;
    let node = |name: &str| Node {
        name: name.into(),
        node_type: "file".into(),
        mode: 0o644,
        mtime: time::zero(),
        atime: time::zero(),
        ctime: time::zero(),
        uid: 0,
        gid: 0,
        user: String::new(),
        group: String::new(),
        inode: 0,
        device_id: 0,
        size: content.len() as u64,
        links: 1,
        linktarget: String::new(),
        extended_attributes: None,
        device: 0,
        content: Some(vec![blob]),
        subtree: None,
        error: String::new(),
    };
    let tree = Tree {
        nodes: names.iter().map(|n| node(n)).collect(),
    };
    let json = tree.to_json().map_err(|e| Error::json("tree", e))?;
    let (tree_id, _) = saver.save(repo, BlobType::Tree, &json)?;
    saver.finish(repo)?;
    repo.save_snapshot(&crate::format::snapshot::Snapshot {
        time: time::now(),
        parent: None,
        tree: tree_id,
        paths: vec!["/hostile".into()],
        hostname: "hostile".into(),
        username: String::new(),
        uid: 0,
        gid: 0,
        excludes: Vec::new(),
        tags: Vec::new(),
        original: None,
        program_version: String::new(),
        summary: None,
    })
}

#[cfg(test)]
mod tests {
    //! The fuzz entry points over a deterministic corpus of mutated valid
    //! inputs, so that every `cargo test` exercises them on stable Rust.

    use super::*;
    use crate::format::index::IndexPack;
    use crate::format::BlobType;
    use crate::id::Id;
    use rand::{Rng, SeedableRng};

    const MUTANTS_PER_SEED: usize = 2000;

    fn mutate(rng: &mut impl Rng, seed: &[u8]) -> Vec<u8> {
        let mut v = seed.to_vec();
        for _ in 0..rng.gen_range(1..=4) {
            let len = v.len();
            match rng.gen_range(0..7) {
                0 if len > 0 => {
                    let i = rng.gen_range(0..len);
                    v[i] ^= 1 << rng.gen_range(0..8);
                }
                1 if len > 0 => {
                    let i = rng.gen_range(0..len);
                    v[i] = [0, 1, 0x7f, 0x80, 0xff, b'"', b'{', b'9'][rng.gen_range(0..8)];
                }
                2 if len > 0 => v.truncate(rng.gen_range(0..len)),
                3 => {
                    let i = rng.gen_range(0..=len);
                    let b: u8 = rng.gen();
                    v.insert(i, b);
                }
                4 if len > 1 => {
                    let a = rng.gen_range(0..len);
                    let b = rng.gen_range(a..len);
                    let chunk = v[a..=b].to_vec();
                    let at = rng.gen_range(0..=len);
                    v.splice(at..at, chunk);
                }
                5 if len > 0 => {
                    let a = rng.gen_range(0..len);
                    let b = rng.gen_range(a..len);
                    v.drain(a..=b);
                }
                6 if len >= 4 => {
                    // An extreme little-endian u32 somewhere (lengths).
                    let i = rng.gen_range(0..=len - 4);
                    let x = [0u32, 1, 31, 32, u32::MAX, u32::MAX - 3, 1 << 31][rng.gen_range(0..7)];
                    v[i..i + 4].copy_from_slice(&x.to_le_bytes());
                }
                _ => v.push(rng.gen()),
            }
        }
        v
    }

    fn run(seeds: &[Vec<u8>], f: fn(&[u8])) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0xb01_3a4c);
        for s in seeds {
            f(s);
            for _ in 0..MUTANTS_PER_SEED {
                f(&mutate(&mut rng, s));
            }
        }
        f(&[]);
    }

    fn blobs() -> Vec<pack::PackedBlob> {
        let mut out = Vec::new();
        let mut offset = 0;
        for i in 0..5u32 {
            let length = 40 + i * 7;
            out.push(pack::PackedBlob {
                id: Id::hash(&i.to_le_bytes()),
                blob_type: if i == 4 {
                    BlobType::Tree
                } else {
                    BlobType::Data
                },
                offset,
                length,
                uncompressed_length: (i % 2 == 0).then_some(length * 3),
            });
            offset += length;
        }
        out
    }

    #[test]
    fn pack_header_entry_point_survives_mutations() {
        let b = blobs();
        let h = pack::header(&b);
        let area: u32 = b.iter().map(|b| b.length).sum();
        let mut direct = area.to_le_bytes().to_vec();
        direct.extend_from_slice(&h);
        let mut sealed = vec![area.div_ceil(64) as u8];
        sealed.extend_from_slice(&h);
        // A real pack, built by the writer.
        let mut pb = pack::PackBuilder::new(BlobType::Data);
        let k = key();
        for i in 0..3u8 {
            let pt = vec![i; 50];
            pb.add(Id::hash(&pt), &k.seal(&pt), None);
        }
        let (real, _, _) = pb.finish(&k);
        run(&[direct, sealed, real], parse_pack_header);
    }

    #[test]
    fn index_entry_point_survives_mutations() {
        let idx = IndexJson {
            supersedes: vec![Id::hash(b"old")],
            packs: vec![IndexPack::new(Id::hash(b"pack"), &blobs())],
        };
        let json = serde_json::to_vec(&idx).unwrap();
        let compressed = unpacked::encode(&json, 2).unwrap();
        run(&[json, compressed], parse_index);
    }

    #[test]
    fn tree_entry_point_survives_mutations() {
        let file = r#"{"nodes":[{"name":"a.txt","type":"file","mode":420,"mtime":"2026-01-02T03:04:05.123456789+01:00","atime":"2026-01-02T03:04:05+01:00","ctime":"2026-01-02T03:04:05Z","uid":1000,"gid":1000,"user":"u","group":"g","inode":42,"device_id":2049,"size":5,"links":1,"content":["5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"]},{"name":"d","type":"dir","mode":2147484141,"mtime":"2020-01-01T00:00:00Z","atime":"2020-01-01T00:00:00Z","ctime":"2020-01-01T00:00:00Z","content":null,"subtree":"2544aaf42881abd303eabf62a3ce52607011560853bfd28f9e23ceb0d82c26ff"},{"name":"l","type":"symlink","mode":134218239,"mtime":"2020-01-01T00:00:00Z","atime":"2020-01-01T00:00:00Z","ctime":"2020-01-01T00:00:00Z","linktarget":"a.txt","content":null,"extended_attributes":[{"name":"user.x","value":"eQ=="}]}]}"#;
        let ours = Tree {
            nodes: serde_json::from_str::<Tree>(file).unwrap().nodes,
        }
        .to_json()
        .unwrap();
        run(&[file.as_bytes().to_vec(), ours], parse_tree);
    }
}
