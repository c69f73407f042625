use super::*;
use crate::backend::memory::MemoryBackend;
use crate::crypto::KdfParams;
use crate::format::snapshot::Snapshot;
use crate::format::tree::{Node, Tree};
use crate::repository::BlobSaver;

#[test]
fn hostile_names_stay_inside_the_target() {
    for (name, ok) in [
        ("a", true),
        ("..", false),
        (".", false),
        ("a/b", false),
        ("", false),
        ("x\0", false),
    ] {
        assert_eq!(crate::format::tree::is_safe_name(name), ok, "{name:?}");
    }
    // An authenticated but hostile tree (written with the key).
    let mut repo = Repository::init(
        Box::new(MemoryBackend::new()),
        b"pw",
        KdfParams::INSECURE_FAST,
    )
    .unwrap();
    let mut saver = BlobSaver::new();
    let (blob, _) = saver.save(&mut repo, BlobType::Data, b"evil").unwrap();
    let mk = |name: &str| Node {
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
    };
    // A symlink "d" to the outside, then a directory "d" holding a file.
    let outside = tempfile::tempdir().unwrap();
    let sub = Tree {
        nodes: vec![mk("planted")],
    };
    let (sub_id, _) = saver
        .save(&mut repo, BlobType::Tree, &sub.to_json().unwrap())
        .unwrap();
    let mut link = mk("d");
    link.node_type = "symlink".into();
    link.content = None;
    link.linktarget = outside.path().display().to_string();
    let mut dir = mk("d");
    dir.node_type = "dir".into();
    dir.content = None;
    dir.subtree = Some(sub_id);
    let tree = Tree {
        nodes: vec![mk("../escaped"), link, dir, mk("fine")],
    };
    let (tid, _) = saver
        .save(&mut repo, BlobType::Tree, &tree.to_json().unwrap())
        .unwrap();
    saver.finish(&mut repo).unwrap();
    let snap = Snapshot::for_tests(tid, "/x");
    repo.save_snapshot(&snap).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("target");
    let r = restore(
        &repo,
        "latest",
        &RestoreOptions {
            target: target.clone(),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(r.files, 1);
    assert_eq!(r.errors.len(), 2, "{:?}", r.errors);
    assert!(!tmp.path().join("escaped").exists());
    assert!(!outside.path().join("planted").exists());
    assert_eq!(std::fs::read(target.join("fine")).unwrap(), b"evil");
}
