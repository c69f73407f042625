//! `check`: verify the repository's structure and, optionally, its data.
//!
//! Structure: every index file and snapshot decodes, every tree reachable
//! from a snapshot loads and parses, every blob a tree refers to is in the
//! index, and every pack the index names exists with the size the index
//! implies. Every node name must be one plain path component (see
//! [`is_safe_name`](crate::is_safe_name)): restore refuses other names, so
//! a snapshot holding one cannot be restored whole.
//!
//! With `read_data`, every (or a sample of) pack is read, its hash
//! compared with its name, its header with the index, and every blob
//! decrypted, decompressed and hashed. A pack is verified as its bytes
//! stream from the backend ([`Backend::read_with`](crate::Backend::read_with)),
//! one blob in memory at a time. Damaged packs are reported with the
//! snapshots that use them.

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;

use crate::backend::FileType;
use crate::cancel::Cancel;
use crate::crypto::CRYPTO_OVERHEAD;
use crate::error::{Error, Result};
use crate::format::pack::{self, PackedBlob};
use crate::format::BlobType;
use crate::id::Id;
use crate::repository::{IndexEntry, Repository};

/// How much pack data to read.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum ReadData {
    /// Structure only.
    #[default]
    None,
    /// Every pack.
    All,
    /// A random sample of this percentage of packs (0 < p <= 100), at least one.
    Subset(f64),
    /// Group `n` of `t` (1-based), as restic's `--read-data-subset n/t`:
    /// the packs whose id's first byte modulo `t` is `n - 1`. Checking
    /// every group in turn reads every pack once.
    Group(u32, u32),
}

/// One problem found by `check`.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckError {
    /// What is wrong.
    pub message: String,
    /// The pack at fault, if any.
    pub pack: Option<Id>,
    /// Snapshots that cannot be fully restored because of it.
    pub snapshots: Vec<Id>,
}

/// The outcome of `check`.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    /// Problems: the check failed if this is not empty.
    pub errors: Vec<CheckError>,
    /// Things worth knowing that do not endanger data (unreferenced packs).
    pub warnings: Vec<String>,
    /// Snapshots checked.
    pub snapshots: u64,
    /// Distinct trees checked.
    pub trees: u64,
    /// Packs listed by the index.
    pub packs: u64,
    /// Packs read in full.
    pub packs_read: u64,
    /// Blobs decrypted and hashed.
    pub blobs_read: u64,
}

impl CheckReport {
    /// True when no error was found.
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
}

fn err(message: String, pack: Option<Id>) -> CheckError {
    CheckError {
        message,
        pack,
        snapshots: Vec::new(),
    }
}

/// Check the repository. The index is (re)loaded from the repository
/// file by file, so one broken index file is reported, not fatal.
/// `progress` is called after each pack read with (packs read, packs to
/// read). `cancel` is polled between index files, snapshots, trees and
/// packs.
///
/// # Errors
/// Only failures that prevent checking at all (listing the backend), and
/// [`Error::Cancelled`]; everything else is reported in the
/// [`CheckReport`].
pub fn check(
    repo: &mut Repository,
    read_data: ReadData,
    cancel: &Cancel,
    progress: impl Fn(u64, u64) + Sync,
) -> Result<CheckReport> {
    cancel.check()?;
    let _lock = crate::lock::lock_for_reading(repo)?;
    let mut report = CheckReport::default();
    // Snapshots before the index (the read order of the design document).
    let snapshot_ids = repo.list_ids(FileType::Snapshot)?;
    let pack_files: HashMap<Id, u64> = repo.list_ids(FileType::Pack)?.into_iter().collect();

    // Index, file by file.
    repo.index.clear();
    let mut packs: HashMap<Id, Vec<PackedBlob>> = HashMap::new();
    for (iid, size) in repo.list_ids(FileType::Index)? {
        cancel.check()?;
        match repo.load_index_file(&iid, Some(size)) {
            Ok(idx) => {
                for p in idx.packs {
                    let list = packs.entry(p.id).or_default();
                    for b in p.blobs {
                        let pb = b.to_packed();
                        list.push(pb);
                        repo.index.insert(
                            (pb.blob_type, pb.id),
                            IndexEntry {
                                pack: p.id,
                                blob: pb,
                            },
                        );
                    }
                }
            }
            Err(e) => report.errors.push(err(format!("index {iid}: {e}"), None)),
        }
    }
    // A pack listed by two index files (an interrupted prune) lists its
    // blobs twice: keep one of each, in pack order.
    for list in packs.values_mut() {
        list.sort_unstable_by_key(|b| (b.offset, b.id, b.length));
        list.dedup();
    }
    report.packs = packs.len() as u64;

    // Packs: present, right size.
    let mut bad_packs: HashMap<Id, String> = HashMap::new();
    for (pid, blobs) in &packs {
        let expected: u64 = blobs.iter().map(|b| b.length as u64).sum::<u64>()
            + blobs
                .iter()
                .map(|b| {
                    if b.uncompressed_length.is_some() {
                        41
                    } else {
                        37
                    }
                })
                .sum::<u64>()
            + CRYPTO_OVERHEAD as u64
            + 4;
        match pack_files.get(pid) {
            None => {
                bad_packs.insert(*pid, format!("pack {pid}: listed in index but missing"));
            }
            Some(&size) if size != expected => {
                bad_packs.insert(
                    *pid,
                    format!("pack {pid}: size {size}, index implies {expected}"),
                );
            }
            Some(_) => {}
        }
    }
    for pid in pack_files.keys() {
        if !packs.contains_key(pid) {
            report
                .warnings
                .push(format!("pack {pid}: not referenced in any index"));
        }
    }

    // Snapshots and trees.
    let mut snapshots = Vec::new();
    for (sid, size) in &snapshot_ids {
        cancel.check()?;
        match repo.load_snapshot_sized(sid, Some(*size)) {
            Ok(s) => snapshots.push((*sid, s)),
            Err(e) => report
                .errors
                .push(err(format!("snapshot {sid}: {e}"), None)),
        }
    }
    report.snapshots = snapshots.len() as u64;
    let mut seen: HashSet<Id> = HashSet::new();
    let repo_ro: &Repository = repo;
    for (sid, s) in &snapshots {
        // Breadth first, each level's trees loaded and checked in
        // parallel (decrypting and parsing thousands of trees one by one
        // was most of a structural check).
        let mut level = Vec::new();
        if seen.insert(s.tree) {
            level.push(s.tree);
        }
        while !level.is_empty() {
            cancel.check()?;
            report.trees += level.len() as u64;
            let checked: Vec<(Vec<CheckError>, Vec<Id>)> = level
                .par_iter()
                .map(|tid| {
                    // Cancelled mid-level: the rest of it is skipped and
                    // the check below ends the walk.
                    if cancel.is_cancelled() {
                        return (Vec::new(), Vec::new());
                    }
                    check_tree(repo_ro, tid, sid)
                })
                .collect();
            level = Vec::new();
            for (errors, subtrees) in checked {
                report.errors.extend(errors);
                for st in subtrees {
                    if seen.insert(st) {
                        level.push(st);
                    }
                }
            }
        }
    }

    // Data.
    let mut to_read: Vec<(&Id, &Vec<PackedBlob>)> = packs
        .iter()
        .filter(|(p, _)| pack_files.contains_key(p) && !bad_packs.contains_key(p))
        .collect();
    to_read.sort_by_key(|(p, _)| **p);
    match read_data {
        ReadData::None => to_read.clear(),
        ReadData::All => {}
        ReadData::Subset(pct) => {
            use rand::seq::SliceRandom;
            let n = ((to_read.len() as f64 * pct.clamp(0.0, 100.0) / 100.0).ceil() as usize)
                .max(1)
                .min(to_read.len());
            to_read.shuffle(&mut rand::thread_rng());
            to_read.truncate(n);
        }
        ReadData::Group(n, t) => {
            if t == 0 || n == 0 || n > t {
                return Err(Error::InvalidArgument(format!(
                    "read-data group {n}/{t}: need 1 <= n <= t"
                )));
            }
            to_read.retain(|(p, _)| u32::from(p.0[0]) % t == n - 1);
        }
    }
    let total = to_read.len() as u64;
    let done = std::sync::atomic::AtomicU64::new(0);
    let repo_ref = repo_ro;
    let read_all = || -> Vec<(Id, u64, Option<String>)> {
        to_read
            .par_iter()
            .filter_map(|(pid, blobs)| {
                // Packs not started when cancelled are skipped; the result is
                // discarded below.
                if cancel.is_cancelled() {
                    return None;
                }
                let r = read_pack(repo_ref, pid, pack_files[*pid], blobs, cancel);
                let d = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                progress(d, total);
                Some(match r {
                    Ok(n) => (**pid, n, None),
                    Err((n, e)) => (**pid, n, Some(e)),
                })
            })
            .collect()
    };
    // A remote read is mostly waiting on the network: keep `connections`
    // of them in flight, more than the one thread per core rayon starts.
    // Packs are verified as they stream (read_pack), so a reader holds
    // one blob and a pack's header, not the pack: `connections` of them
    // cost a few MiB where whole packs cost 16 MiB each and had to be
    // capped below `connections` to keep the peak under restic's
    // (docs/benchmarks.md).
    let readers = repo_ref.backend.connections();
    let pool = (rayon::current_num_threads() < readers)
        .then(|| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(readers)
                .thread_name(|i| format!("bulwark-check-{i}"))
                .build()
                .ok()
        })
        .flatten();
    // Without a pool of its own the check reads at rayon's pace.
    let results = match pool {
        Some(pool) => pool.install(read_all),
        None => read_all(),
    };
    cancel.check()?;
    report.packs_read = results.len() as u64;
    for (pid, n, e) in results {
        report.blobs_read += n;
        if let Some(e) = e {
            bad_packs.insert(pid, e);
        }
    }

    // Name the snapshots each damaged pack breaks.
    if !bad_packs.is_empty() {
        let mut bad_blobs: HashMap<(BlobType, Id), Id> = HashMap::new();
        for pid in bad_packs.keys() {
            for b in packs.get(pid).into_iter().flatten() {
                bad_blobs.insert((b.blob_type, b.id), *pid);
            }
        }
        let mut affected: HashMap<Id, Vec<Id>> = HashMap::new();
        let mut memo: HashMap<Id, HashSet<Id>> = HashMap::new();
        for (sid, s) in &snapshots {
            cancel.check()?;
            for pid in packs_used_by_tree(repo_ref, &s.tree, &bad_blobs, &mut memo, 0) {
                affected.entry(pid).or_default().push(*sid);
            }
        }
        let mut bad: Vec<_> = bad_packs.into_iter().collect();
        bad.sort();
        for (pid, msg) in bad {
            let mut snaps = affected.remove(&pid).unwrap_or_default();
            snaps.sort();
            report.errors.push(CheckError {
                message: msg,
                pack: Some(pid),
                snapshots: snaps,
            });
        }
    }
    Ok(report)
}

/// Load tree `tid` (of snapshot `sid`) and check its nodes against the
/// index. Returns the problems and the subtrees to check next.
fn check_tree(repo: &Repository, tid: &Id, sid: &Id) -> (Vec<CheckError>, Vec<Id>) {
    let mut errors = Vec::new();
    let mut subtrees = Vec::new();
    let tree = match repo.load_tree(tid) {
        Ok(t) => t,
        Err(e) => {
            let pack = repo.lookup(BlobType::Tree, tid).map(|e| e.pack);
            let mut ce = err(format!("tree {tid}: {e}"), pack);
            ce.snapshots.push(*sid);
            errors.push(ce);
            return (errors, subtrees);
        }
    };
    for n in &tree.nodes {
        if !crate::format::tree::is_safe_name(&n.name) {
            let mut ce = err(format!("tree {tid}: unsafe node name {:?}", n.name), None);
            ce.snapshots.push(*sid);
            errors.push(ce);
        }
        match n.node_type.as_str() {
            "file" => match &n.content {
                None => errors.push(err(
                    format!("tree {tid}: file {:?} has no content list", n.name),
                    None,
                )),
                Some(c) => {
                    let mut size = 0u64;
                    let mut all = true;
                    for b in c {
                        match repo.lookup(BlobType::Data, b) {
                            Some(e) => size += e.blob.data_length() as u64,
                            None => {
                                all = false;
                                errors.push(err(
                                    format!(
                                        "tree {tid}: file {:?}: data blob {b} not in index",
                                        n.name
                                    ),
                                    None,
                                ))
                            }
                        }
                    }
                    if size != n.size && all {
                        errors.push(err(
                            format!(
                                "tree {tid}: file {:?}: size {} but content has {size} bytes",
                                n.name, n.size
                            ),
                            None,
                        ));
                    }
                }
            },
            "dir" => match n.subtree {
                Some(st) => subtrees.push(st),
                None => errors.push(err(
                    format!("tree {tid}: dir {:?} has no subtree", n.name),
                    None,
                )),
            },
            "symlink" | "dev" | "chardev" | "fifo" | "socket" => {}
            other => errors.push(err(
                format!("tree {tid}: node {:?} has invalid type {other:?}", n.name),
                None,
            )),
        }
    }
    (errors, subtrees)
}

/// The damaged packs a tree (recursively) depends on. Memoised per tree:
/// snapshots share most of their trees.
fn packs_used_by_tree(
    repo: &Repository,
    tid: &Id,
    bad: &HashMap<(BlobType, Id), Id>,
    memo: &mut HashMap<Id, HashSet<Id>>,
    depth: usize,
) -> HashSet<Id> {
    if let Some(m) = memo.get(tid) {
        return m.clone();
    }
    if depth > crate::format::tree::MAX_TREE_DEPTH {
        return HashSet::new();
    }
    // Insert an empty set first so a (hostile) cyclic tree terminates.
    memo.insert(*tid, HashSet::new());
    let mut out = HashSet::new();
    if let Some(p) = bad.get(&(BlobType::Tree, *tid)) {
        out.insert(*p);
    }
    if let Ok(tree) = repo.load_tree(tid) {
        for n in &tree.nodes {
            for b in n.content.iter().flatten() {
                if let Some(p) = bad.get(&(BlobType::Data, *b)) {
                    out.insert(*p);
                }
            }
            if let Some(st) = n.subtree {
                out.extend(packs_used_by_tree(repo, &st, bad, memo, depth + 1));
            }
        }
    }
    memo.insert(*tid, out.clone());
    out
}

/// Read a pack as a stream and verify everything in it. Returns the
/// number of blobs verified, or that number and a description of the
/// problems found.
fn read_pack(
    repo: &Repository,
    pid: &Id,
    size: u64,
    indexed: &[PackedBlob],
    cancel: &Cancel,
) -> Result<u64, (u64, String)> {
    let name = pid.to_hex();
    let mut verdict = None;
    // Read as the listed size: a pack shorter than listed is a failed
    // read, one longer fails its hash (its tail is not what was read).
    let read = repo
        .backend
        .read_with(FileType::Pack, &name, Some(size), &mut |body| {
            // Fresh state on every call: a backend calls again from the
            // first byte when a body broke off.
            verdict = None;
            verdict = Some(verify_pack(repo, pid, size, indexed, body, cancel)?);
            Ok(())
        });
    let (n, problems) = match (read, verdict) {
        (Ok(()), Some(v)) => v,
        (Err(e), _) => return Err((0, format!("pack {pid}: {e}"))),
        // A backend that returned without handing over the body.
        (Ok(()), None) => return Err((0, format!("pack {pid}: the backend returned no data"))),
    };
    if problems.is_empty() {
        Ok(n)
    } else {
        Err((n, problems.join("; ")))
    }
}

/// Verify pack `pid` of `size` bytes from `body`, which yields its bytes
/// in order: the blobs the index lists are read one at a time, in pack
/// order, and decoded (decrypted, decompressed, hashed); bytes between
/// them are skipped; everything after the last one is kept as the tail
/// that holds the header. Every byte goes through a SHA-256 for the pack's
/// own id. So the memory a pack costs is its largest blob and its header,
/// not the pack (up to 16 MiB).
///
/// Returns the blobs verified and the problems in the order the check
/// has always listed them (when it read packs whole): the pack's hash,
/// its header, then blob by blob.
///
/// # Errors
/// Only failures to read `body` (and [`Error::Cancelled`]): the backend
/// decides whether to read again.
fn verify_pack(
    repo: &Repository,
    pid: &Id,
    size: u64,
    indexed: &[PackedBlob],
    body: &mut dyn std::io::Read,
    cancel: &Cancel,
) -> Result<(u64, Vec<String>)> {
    use sha2::Digest;
    use std::io::Read;

    let what = format!("pack {pid}");
    let read_error = |e: std::io::Error| Error::Backend {
        op: "read",
        what: what.clone(),
        source: e,
    };
    let mut blobs: Vec<&PackedBlob> = indexed.iter().collect();
    blobs.sort_by_key(|b| (b.offset, b.length, b.id));
    let mut hasher = sha2::Sha256::new();
    // The position in the pack, and the bytes no index entry covers.
    let mut pos: u64 = 0;
    let mut gaps: u64 = 0;
    // One buffer for every blob of the pack, reused.
    let mut buf: Vec<u8> = Vec::new();
    let mut blob_problems = Vec::new();
    let mut n = 0;
    let mut previous: Option<&PackedBlob> = None;
    for b in blobs {
        if cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        let (start, len) = (u64::from(b.offset), u64::from(b.length));
        if start + len > size {
            blob_problems.push(format!("pack {pid}: blob {} lies past the end", b.id));
            continue;
        }
        if start < pos {
            // Only a damaged index overlaps blobs: the pack's own header
            // cannot. Its bytes went by with the blob before it.
            let before = previous.map_or_else(String::new, |p| p.id.to_hex());
            blob_problems.push(format!(
                "pack {pid}: blob {} overlaps blob {before} in the index",
                b.id
            ));
            continue;
        }
        let gap = start - pos;
        skip(body, &mut hasher, gap).map_err(read_error)?;
        gaps += gap;
        buf.clear();
        // Grown as the bytes arrive (reserved up to a bound): the length
        // comes from the index, not from what was read.
        buf.reserve(len.min(MAX_RESERVED_BLOB) as usize);
        (&mut *body)
            .take(len)
            .read_to_end(&mut buf)
            .map_err(read_error)?;
        if buf.len() as u64 != len {
            return Err(read_error(short(pos + gap + buf.len() as u64, size)));
        }
        hasher.update(&buf);
        pos = start + len;
        previous = Some(b);
        let e = IndexEntry {
            pack: *pid,
            blob: *b,
        };
        match repo.decode_blob(&e, &buf) {
            Ok(_) => n += 1,
            Err(err) => blob_problems.push(format!("pack {pid}: blob {}: {err}", b.id)),
        }
    }
    // The tail: in a pack that matches its index, the header and its
    // length, a few dozen bytes per blob. More than any header of this
    // pack could take (an index entry past the end, skipped above, leaves
    // up to 4 GiB here) is hashed on the way instead of held; the header
    // parse below then finds its length field in the bytes kept.
    drop(buf);
    let excess = (size - pos).saturating_sub(pack::header_bound(indexed.len()));
    if excess > 0 {
        skip(body, &mut hasher, excess).map_err(read_error)?;
        pos += excess;
    }
    let mut tail = Vec::new();
    (&mut *body)
        .take(size - pos)
        .read_to_end(&mut tail)
        .map_err(read_error)?;
    if tail.len() as u64 != size - pos {
        return Err(read_error(short(pos + tail.len() as u64, size)));
    }
    hasher.update(&tail);

    let mut problems = Vec::new();
    let actual = Id(hasher.finalize().into());
    if actual != *pid {
        problems.push(format!("pack {pid}: content hash is {actual}"));
    }
    match pack::header_from_tail(&repo.key, size, &tail, &what) {
        Ok(h) => {
            let mut a: Vec<_> = h.iter().map(|b| (b.offset, b.id)).collect();
            let mut b: Vec<_> = indexed.iter().map(|b| (b.offset, b.id)).collect();
            a.sort();
            b.sort();
            if a != b {
                let between = match gaps {
                    0 => String::new(),
                    g => format!(" ({g} bytes lie between the blobs it lists)"),
                };
                problems.push(format!(
                    "pack {pid}: header does not match the index{between}"
                ));
            }
        }
        Err(e) => problems.push(format!("pack {pid}: header: {e}")),
    }
    problems.extend(blob_problems);
    Ok((n, problems))
}

/// The most one blob's buffer reserves before its bytes arrive: the
/// chunker's largest blob plus room for encryption and framing.
const MAX_RESERVED_BLOB: u64 = 9 << 20;

/// Read and hash `len` bytes of `body` that no blob claims, a block at a time.
fn skip(
    body: &mut dyn std::io::Read,
    hasher: &mut sha2::Sha256,
    mut len: u64,
) -> std::io::Result<()> {
    use sha2::Digest;
    let mut block = [0u8; 8192];
    while len > 0 {
        let want = len.min(block.len() as u64) as usize;
        let got = match body.read(&mut block[..want]) {
            // A signal, not a fault of the pack (`read_to_end` retries too).
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            r => r?,
        };
        if got == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "pack ended inside a gap between blobs",
            ));
        }
        hasher.update(&block[..got]);
        len -= got as u64;
    }
    Ok(())
}

/// A pack that ended at `at` of its listed `size` bytes.
fn short(at: u64, size: u64) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        format!("ended after {at} of {size} bytes"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::memory::MemoryBackend;
    use crate::crypto::KdfParams;
    use crate::format::snapshot::Snapshot;
    use crate::format::tree::{Node, Tree};
    use crate::repository::BlobSaver;

    /// An empty repository in memory, for checks of crafted content.
    fn memory_repo() -> Repository {
        Repository::init(
            Box::new(MemoryBackend::new()),
            b"pw",
            KdfParams::INSECURE_FAST,
        )
        .unwrap()
    }

    fn file(name: &str, blob: Id) -> Node {
        Node {
            name: name.into(),
            node_type: "file".into(),
            mode: 0o644,
            mtime: crate::format::time::zero(),
            atime: crate::format::time::zero(),
            ctime: crate::format::time::zero(),
            uid: 0,
            gid: 0,
            user: String::new(),
            group: String::new(),
            inode: 0,
            device_id: 0,
            size: 4,
            links: 1,
            linktarget: String::new(),
            extended_attributes: None,
            device: 0,
            content: Some(vec![blob]),
            subtree: None,
            error: String::new(),
        }
    }

    /// A pack whose index entries are doctored (one left out, one moved
    /// into its neighbour, one past the end) is reported blob by blob as
    /// it streams, and the blobs that are right are still verified.
    #[test]
    fn bytes_after_the_last_listed_blob_beyond_any_header_are_hashed_not_held() {
        // 200 blobs in one pack, the index listing only the first: what
        // follows it is far more than a header of one entry can take, so
        // the check keeps only `header_bound` bytes of it (the header's
        // length field then points before them) and still hashes it all.
        let mut repo = memory_repo();
        let mut saver = BlobSaver::new();
        let first = saver
            .save(&mut repo, BlobType::Data, b"blob 0 blob 0")
            .unwrap()
            .0;
        for i in 1..200 {
            let data = format!("blob {i} ").repeat(20);
            saver
                .save(&mut repo, BlobType::Data, data.as_bytes())
                .unwrap();
        }
        saver.finish(&mut repo).unwrap();
        let e = *repo.lookup(BlobType::Data, &first).unwrap();
        let data = repo.backend.read(FileType::Pack, &e.pack.to_hex()).unwrap();
        assert!(data.len() as u64 - e.blob.length as u64 > 4 * pack::header_bound(1));
        let (n, problems) = verify_pack(
            &repo,
            &e.pack,
            data.len() as u64,
            &[e.blob],
            &mut std::io::Cursor::new(&data),
            &Cancel::default(),
        )
        .unwrap();
        assert_eq!(n, 1);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("reaches into the blobs"),
            "{problems:?}"
        );
    }

    #[test]
    fn a_streamed_pack_is_checked_against_a_doctored_index() {
        let mut repo = memory_repo();
        let mut saver = BlobSaver::new();
        let ids: Vec<Id> = (0..3)
            .map(|i| {
                let data = format!("blob {i} ").repeat(100 + i);
                saver
                    .save(&mut repo, BlobType::Data, data.as_bytes())
                    .unwrap()
                    .0
            })
            .collect();
        saver.finish(&mut repo).unwrap();
        let entries: Vec<IndexEntry> = ids
            .iter()
            .map(|id| *repo.lookup(BlobType::Data, id).unwrap())
            .collect();
        let pid = entries[0].pack;
        let data = repo.backend.read(FileType::Pack, &pid.to_hex()).unwrap();
        let size = data.len() as u64;
        let verify = |indexed: &[PackedBlob]| {
            verify_pack(
                &repo,
                &pid,
                size,
                indexed,
                &mut std::io::Cursor::new(&data),
                &Cancel::default(),
            )
            .unwrap()
        };
        let mut blobs: Vec<PackedBlob> = entries.iter().map(|e| e.blob).collect();
        blobs.sort_by_key(|b| b.offset);
        assert_eq!(blobs[0].offset, 0);

        assert_eq!(verify(&blobs), (3, vec![]));

        let (n, problems) = verify(&[blobs[0], blobs[2]]);
        assert_eq!(n, 2);
        assert_eq!(
            problems,
            vec![format!(
                "pack {pid}: header does not match the index ({} bytes lie between the blobs it lists)",
                blobs[1].length
            )]
        );

        let mut overlapping = blobs[1];
        overlapping.offset = blobs[0].offset + 1;
        let mut past_end = blobs[2];
        past_end.offset = size as u32 - 10;
        let (n, problems) = verify(&[blobs[0], overlapping, past_end]);
        assert_eq!(n, 1);
        assert_eq!(
            problems,
            vec![
                format!("pack {pid}: header does not match the index"),
                format!(
                    "pack {pid}: blob {} overlaps blob {} in the index",
                    blobs[1].id, blobs[0].id
                ),
                format!("pack {pid}: blob {} lies past the end", blobs[2].id),
            ]
        );

        // A body that ends early is a read error, for the backend to retry
        // or report; not a verdict on the pack.
        let e = verify_pack(
            &repo,
            &pid,
            size,
            &blobs,
            &mut std::io::Cursor::new(&data[..data.len() - 1]),
            &Cancel::default(),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains(&format!("ended after {} of {size} bytes", size - 1)),
            "{e}"
        );
    }

    /// A hostile (but authenticated) tree whose node names would make a
    /// restore write outside its target: check names each one with its
    /// tree and the snapshot, and fails.
    #[test]
    fn unsafe_node_names_fail_the_check() {
        let mut repo = memory_repo();
        let mut saver = BlobSaver::new();
        let (blob, _) = saver.save(&mut repo, BlobType::Data, b"evil").unwrap();
        let unsafe_names = ["../../../../etc/hostname", "a/b", ".", "..", "", "nul\0"];
        let mut nodes: Vec<Node> = unsafe_names.iter().map(|n| file(n, blob)).collect();
        nodes.push(file("fine", blob));
        let tree = Tree { nodes };
        let (tid, _) = saver
            .save(&mut repo, BlobType::Tree, &tree.to_json().unwrap())
            .unwrap();
        saver.finish(&mut repo).unwrap();
        let sid = repo.save_snapshot(&Snapshot::for_tests(tid, "/x")).unwrap();

        let report = check(&mut repo, ReadData::All, &Cancel::default(), |_, _| {}).unwrap();
        assert!(!report.is_ok());
        let mut got: Vec<_> = report
            .errors
            .iter()
            .map(|e| (e.message.clone(), e.snapshots.clone()))
            .collect();
        got.sort();
        let mut want: Vec<_> = unsafe_names
            .iter()
            .map(|n| (format!("tree {tid}: unsafe node name {n:?}"), vec![sid]))
            .collect();
        want.sort();
        assert_eq!(got, want);
    }
}
