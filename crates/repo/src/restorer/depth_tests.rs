use super::*;
use crate::backend::memory::MemoryBackend;
use crate::crypto::KdfParams;
use crate::format::snapshot::Snapshot;
use crate::format::tree::{Node, Tree, MAX_TREE_DEPTH};
use crate::repository::BlobSaver;

fn dir(name: &str, sub: Id) -> Node {
    Node {
        name: name.into(),
        node_type: "dir".into(),
        mode: 0o755 | crate::format::tree::go::DIR,
        mtime: crate::format::time::zero(),
        atime: crate::format::time::zero(),
        ctime: crate::format::time::zero(),
        uid: 0,
        gid: 0,
        user: String::new(),
        group: String::new(),
        inode: 0,
        device_id: 0,
        size: 0,
        links: 0,
        linktarget: String::new(),
        extended_attributes: None,
        device: 0,
        content: None,
        subtree: Some(sub),
        error: String::new(),
    }
}

/// A chain of `depth` nested directories.
fn chain(depth: usize) -> Repository {
    let mut repo = Repository::init(
        Box::new(MemoryBackend::new()),
        b"pw",
        KdfParams::INSECURE_FAST,
    )
    .unwrap();
    let mut saver = BlobSaver::new();
    let (mut id, _) = saver
        .save(
            &mut repo,
            BlobType::Tree,
            &Tree::default().to_json().unwrap(),
        )
        .unwrap();
    for _ in 0..depth {
        let t = Tree {
            nodes: vec![dir("d", id)],
        };
        id = saver
            .save(&mut repo, BlobType::Tree, &t.to_json().unwrap())
            .unwrap()
            .0;
    }
    saver.finish(&mut repo).unwrap();
    let snap = Snapshot::for_tests(id, "/d");
    repo.save_snapshot(&snap).unwrap();
    repo
}

/// Hostile nesting is an error, not a stack overflow, even on a 2 MiB
/// stack (tokio's blocking threads, Rust's spawned threads).
#[test]
fn deep_trees_are_refused_within_a_small_stack() {
    let repo = chain(MAX_TREE_DEPTH + 5);
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("t");
    let r = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            restore(
                &repo,
                "latest",
                &RestoreOptions {
                    target,
                    ..Default::default()
                },
            )
        })
        .unwrap()
        .join()
        .unwrap();
    // The walk stops at the limit (or earlier, where the file system
    // refuses long paths) and reports it.
    let summary = r.unwrap();
    assert!(!summary.errors.is_empty());
}

#[test]
fn deep_trees_are_refused_by_export_within_a_small_stack() {
    let repo = chain(MAX_TREE_DEPTH + 5);
    let r = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || crate::export::export_tar_gz(&repo, "latest", std::io::sink()).map(|_| ()))
        .unwrap()
        .join()
        .unwrap();
    assert!(r.is_err());
}
