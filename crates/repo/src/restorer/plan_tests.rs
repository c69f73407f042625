use super::*;
use crate::backend::local::LocalBackend;
use crate::crypto::KdfParams;
use crate::format::snapshot::Snapshot;
use crate::format::tree::Tree;
use crate::repository::BlobSaver;

/// A write of the blob at `offset` in pack `pack` to file `file`.
fn use_at(pack: u32, offset: u32, length: u32, file: u32) -> BlobUse {
    BlobUse {
        pack,
        blob: PackedBlob {
            id: Id::hash(&offset.to_le_bytes()),
            blob_type: BlobType::Data,
            offset,
            length,
            uncompressed_length: None,
        },
        file,
        offset: 0,
    }
}

#[test]
fn jobs_merge_neighbours_and_split_at_gaps_and_size() {
    const M: u32 = MAX_READ as u32;
    const G: u32 = MAX_GAP as u32;
    // (blobs as (offset, length), expected reads as (start, len, blobs))
    type Case = (Vec<(u32, u32)>, Vec<(u64, u64, usize)>);
    let cases: Vec<Case> = vec![
        (vec![(0, 100)], vec![(0, 100, 1)]),
        // Adjacent and out of order: one read.
        (vec![(100, 50), (0, 100)], vec![(0, 150, 2)]),
        // A small gap is read through.
        (vec![(0, 100), (100 + G, 10)], vec![(0, 110 + G as u64, 2)]),
        // A larger gap starts a new read.
        (
            vec![(0, 100), (101 + G, 10)],
            vec![(0, 100, 1), (101 + G as u64, 10, 1)],
        ),
        // Reads stop at MAX_READ...
        (
            vec![(0, M / 2), (M / 2, M / 2), (M, 1)],
            vec![(0, M as u64, 2), (M as u64, 1, 1)],
        ),
        // ... except a single blob larger than that, read alone.
        (
            vec![(0, 10), (10, 2 * M), (10 + 2 * M, 5)],
            vec![(0, 10, 1), (10, 2 * M as u64, 1), (10 + 2 * M as u64, 5, 1)],
        ),
    ];
    for (i, (blobs, want)) in cases.into_iter().enumerate() {
        let mut uses: Vec<BlobUse> = blobs.iter().map(|&(o, l)| use_at(0, o, l, 0)).collect();
        let jobs = plan_jobs(&mut uses);
        let got: Vec<(u64, u64, usize)> = jobs
            .iter()
            .map(|j| (j.start, j.len, j.uses.len()))
            .collect();
        assert_eq!(got, want, "case {i}");
        for j in &jobs {
            assert_eq!(j.pack, 0);
            for u in &uses[j.uses.clone()] {
                assert!(u.blob.offset as u64 >= j.start, "case {i}");
                assert!(u.blob.offset as u64 + u.blob.length as u64 <= j.start + j.len);
            }
        }
    }
    // Packs stay apart, even at neighbouring offsets.
    let mut uses = vec![use_at(1, 10, 10, 0), use_at(0, 0, 10, 1)];
    let jobs = plan_jobs(&mut uses);
    assert_eq!(jobs.len(), 2);
    assert_eq!((jobs[0].pack, jobs[1].pack), (0, 1));
}

/// A blob several files use is one record per write; sorted, the records
/// sit together in one read, in planning order, next to the blobs around.
#[test]
fn writes_of_a_shared_blob_share_one_read() {
    let mut uses = vec![
        use_at(0, 100, 50, 0),
        use_at(0, 0, 100, 1),
        use_at(0, 100, 50, 2),
        use_at(0, 100, 50, 3),
    ];
    let jobs = plan_jobs(&mut uses);
    assert_eq!(
        jobs,
        vec![Job {
            pack: 0,
            start: 0,
            len: 150,
            uses: 0..4
        }]
    );
    let order: Vec<(u32, u32)> = uses.iter().map(|u| (u.blob.offset, u.file)).collect();
    assert_eq!(order, vec![(0, 1), (100, 0), (100, 2), (100, 3)]);
}

fn file(name: &str, content: &[Id], size: u64, mode: u32) -> Node {
    Node {
        name: name.into(),
        node_type: "file".into(),
        mode,
        mtime: chrono::DateTime::parse_from_rfc3339("2021-05-06T07:08:09.123456789+02:00").unwrap(),
        atime: crate::format::time::zero(),
        ctime: crate::format::time::zero(),
        uid: 0,
        gid: 0,
        user: String::new(),
        group: String::new(),
        inode: 0,
        device_id: 0,
        size,
        links: 1,
        linktarget: String::new(),
        extended_attributes: None,
        device: 0,
        content: Some(content.to_vec()),
        subtree: None,
        error: String::new(),
    }
}

/// Blobs in two packs: `a` alone in the first, `b` and `c` in the
/// second. Files: `multi` = a+b+a (two packs, a blob twice), `dup1`
/// and `dup2` = b (one blob, several files), `conly` = c, `aonly` = a,
/// `empty`, all inside directory `x`.
struct Fixture {
    _tmp: tempfile::TempDir,
    repo_path: PathBuf,
    repo: Repository,
    a: Vec<u8>,
    b: Vec<u8>,
    c: Vec<u8>,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let repo_path = tmp.path().join("repo");
    let mut repo = Repository::init(
        Box::new(LocalBackend::new(&repo_path)),
        b"pw",
        KdfParams::INSECURE_FAST,
    )
    .unwrap();
    let a = b"first blob, alone in its pack\n".repeat(40);
    let b = b"second blob shared by files\n".repeat(30);
    let c = b"third blob, b's pack neighbour\n".repeat(20);
    let mut s1 = BlobSaver::new();
    let (ia, _) = s1.save(&mut repo, BlobType::Data, &a).unwrap();
    s1.finish(&mut repo).unwrap();
    let mut s2 = BlobSaver::new();
    let (ib, _) = s2.save(&mut repo, BlobType::Data, &b).unwrap();
    let (ic, _) = s2.save(&mut repo, BlobType::Data, &c).unwrap();
    let la = a.len() as u64;
    let (lb, lc) = (b.len() as u64, c.len() as u64);
    let sub = Tree {
        nodes: vec![
            file("aonly", &[ia], la, 0o600),
            file("conly", &[ic], lc, 0o644),
            file("dup1", &[ib], lb, 0o644),
            file("dup2", &[ib], lb, 0o444),
            file("empty", &[], 0, 0o640),
            file("multi", &[ia, ib, ia], 2 * la + lb, 0o755),
        ],
    };
    let (sid, _) = s2
        .save(&mut repo, BlobType::Tree, &sub.to_json().unwrap())
        .unwrap();
    let mut dir = file("x", &[], 0, 0o755 | crate::format::tree::go::DIR);
    dir.node_type = "dir".into();
    dir.content = None;
    dir.subtree = Some(sid);
    let root = Tree { nodes: vec![dir] };
    let (tid, _) = s2
        .save(&mut repo, BlobType::Tree, &root.to_json().unwrap())
        .unwrap();
    s2.finish(&mut repo).unwrap();
    assert_ne!(
        repo.lookup(BlobType::Data, &ia).unwrap().pack,
        repo.lookup(BlobType::Data, &ib).unwrap().pack
    );
    let snap = Snapshot::for_tests(tid, "/x");
    repo.save_snapshot(&snap).unwrap();
    Fixture {
        _tmp: tmp,
        repo_path,
        repo,
        a,
        b,
        c,
    }
}

fn run(repo: &Repository, target: &Path, include: &[&str]) -> RestoreSummary {
    restore(
        repo,
        "latest",
        &RestoreOptions {
            target: target.to_path_buf(),
            include: include.iter().map(|s| s.to_string()).collect(),
            verify: true,
            ..Default::default()
        },
    )
    .unwrap()
}

#[test]
fn files_spanning_packs_and_shared_blobs_restore_exactly() {
    use std::os::unix::fs::PermissionsExt;
    let fx = fixture();
    let out = tempfile::tempdir().unwrap();
    let mut seen = Vec::new();
    let r = restore_with_progress(
        &fx.repo,
        "latest",
        &RestoreOptions {
            target: out.path().to_path_buf(),
            verify: true,
            ..Default::default()
        },
        |p| seen.push(p.files),
    )
    .unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!((r.files, r.verified, r.dirs), (6, 6, 1));
    let multi = [fx.a.clone(), fx.b.clone(), fx.a.clone()].concat();
    let x = out.path().join("x");
    let want: [(&str, &[u8], u32); 6] = [
        ("aonly", &fx.a, 0o600),
        ("conly", &fx.c, 0o644),
        ("dup1", &fx.b, 0o644),
        ("dup2", &fx.b, 0o444),
        ("empty", b"", 0o640),
        ("multi", &multi, 0o755),
    ];
    for (name, content, mode) in want {
        let p = x.join(name);
        assert_eq!(fs::read(&p).unwrap(), content, "{name}");
        let md = fs::metadata(&p).unwrap();
        assert_eq!(md.permissions().mode() & 0o777, mode, "{name}");
        let mtime = filetime::FileTime::from_last_modification_time(&md);
        assert_eq!(
            (mtime.unix_seconds(), mtime.nanoseconds()),
            (1620277689, 123456789),
            "{name}"
        );
    }
    assert_eq!(
        r.bytes,
        (2 * fx.a.len() + 3 * fx.b.len() + fx.c.len() + fx.a.len()) as u64
    );
    // Progress once per file, counting up.
    assert_eq!(seen, (1..=6).collect::<Vec<u64>>());
    // Restoring again over the (partly read-only) result works.
    let again = run(&fx.repo, out.path(), &[]);
    assert!(again.errors.is_empty(), "{:?}", again.errors);
    assert_eq!(fs::read(x.join("dup2")).unwrap(), fx.b);
}

#[test]
fn include_restores_only_the_selected_file() {
    let fx = fixture();
    let out = tempfile::tempdir().unwrap();
    let r = run(&fx.repo, out.path(), &["/x/multi"]);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.files, 1);
    let names: Vec<_> = fs::read_dir(out.path().join("x"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec!["multi"]);
    assert_eq!(
        fs::read(out.path().join("x/multi")).unwrap(),
        [fx.a.clone(), fx.b.clone(), fx.a.clone()].concat()
    );
}

#[test]
fn a_damaged_blob_fails_only_the_files_using_it() {
    use std::os::unix::fs::PermissionsExt;
    let fx = fixture();
    let e = *fx.repo.lookup(BlobType::Data, &Id::hash(&fx.b)).unwrap();
    let hex = e.pack.to_hex();
    let pack = fx.repo_path.join("data").join(&hex[..2]).join(&hex);
    fs::set_permissions(&pack, fs::Permissions::from_mode(0o644)).unwrap();
    let mut bytes = fs::read(&pack).unwrap();
    bytes[e.blob.offset as usize + 40] ^= 1;
    fs::write(&pack, bytes).unwrap();

    let out = tempfile::tempdir().unwrap();
    let r = run(&fx.repo, out.path(), &[]);
    // The three files using b are named, once each; the rest, c from
    // the same pack included, is restored.
    assert_eq!(r.errors.len(), 3, "{:?}", r.errors);
    for (err, name) in r.errors.iter().zip(["dup1", "dup2", "multi"]) {
        assert!(err.starts_with(&format!("/x/{name}: ")), "{err}");
    }
    assert_eq!(r.files, 3);
    let x = out.path().join("x");
    assert_eq!(fs::read(x.join("aonly")).unwrap(), fx.a);
    assert_eq!(fs::read(x.join("conly")).unwrap(), fx.c);
    assert_eq!(fs::read(x.join("empty")).unwrap(), b"");
}
