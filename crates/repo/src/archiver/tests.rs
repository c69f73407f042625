use super::*;

#[test]
fn exclude_patterns_table() {
    let g = build_globs(&[
        "*.tmp".into(),
        "/srv/app/cache".into(),
        "node_modules".into(),
        "logs/*.log".into(),
    ])
    .unwrap()
    .unwrap();
    let cases = [
        ("/srv/app/a.tmp", true),
        ("/srv/app/deep/er/b.tmp", true),
        ("/srv/app/a.tmpx", false),
        ("/srv/app/cache", true),
        ("/srv/other/cache", false),
        ("/srv/app/x/node_modules", true),
        ("/srv/app/logs/x.log", true),
        ("/srv/app/logs/sub/x.log", false),
        ("/srv/app/main.rs", false),
    ];
    for (p, want) in cases {
        assert_eq!(g.is_match(p), want, "{p}");
    }
    assert!(build_globs(&["a[".into()]).is_err());
}

#[test]
fn clean_absolute_is_lexical() {
    assert_eq!(
        clean_absolute(Path::new("/a/./b/../c")).unwrap(),
        PathBuf::from("/a/c")
    );
}

fn memory_repo() -> Repository {
    Repository::init(
        Box::new(crate::backend::memory::MemoryBackend::new()),
        b"pw",
        crate::crypto::KdfParams::INSECURE_FAST,
    )
    .unwrap()
}

/// Back up `src` into a new repository, with `hook` called after the walk
/// stat'ed each entry. Returns the repository and the summary.
fn backup_with_hook(
    src: &Path,
    hook: impl FnMut(&Path) + Send + 'static,
) -> (Repository, BackupSummary) {
    let mut repo = memory_repo();
    STAT_HOOK.with(|h| *h.borrow_mut() = Some(Box::new(hook)));
    let opts = BackupOptions {
        paths: vec![src.to_path_buf()],
        ..Default::default()
    };
    let summary = backup(&mut repo, &opts, |_| {}).unwrap();
    (repo, summary)
}

/// Everything a snapshot holds below `below`: (path, type, content).
fn snapshot_entries(repo: &Repository, id: &Id, below: &Path) -> Vec<(String, String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut dirs = vec![(String::new(), repo.load_snapshot(id).unwrap().tree)];
    while let Some((path, tree)) = dirs.pop() {
        for n in repo.load_tree(&tree).unwrap().nodes {
            let p = format!("{path}/{}", n.name);
            let mut content = Vec::new();
            for b in n.content.iter().flatten() {
                content.extend(repo.load_blob(BlobType::Data, b).unwrap());
            }
            if let Some(sub) = n.subtree {
                dirs.push((p.clone(), sub));
            }
            if Path::new(&p).starts_with(below) && Path::new(&p) != below {
                out.push((p, n.node_type, content));
            }
        }
    }
    out.sort();
    out
}

/// A user who can write into the backed-up tree replaces entries after the
/// walk looked at them and before they are opened: a file by a symlink to
/// a file only the backup's user may read, a file by a FIFO (whose plain
/// open waits forever for a writer), a file by another file, a directory
/// by a symlink to another directory, a directory by another directory.
/// None of them is followed or read; each is named as skipped, and the
/// rest of the tree is backed up whole.
#[test]
fn entries_replaced_after_the_walk_saw_them_are_skipped_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path().to_path_buf();
    let src = t.join("src");
    fs::create_dir_all(&src).unwrap();
    // Enough files that the readers run behind the walk.
    let mut want = Vec::new();
    for i in 0..300 {
        let (name, body) = (format!("f{i:03}"), format!("file {i}\n"));
        fs::write(src.join(&name), &body).unwrap();
        want.push((src.join(name), "file".to_string(), body.into_bytes()));
    }
    for name in ["victim_link", "victim_fifo", "victim_file"] {
        fs::write(src.join(name), b"innocent\n").unwrap();
    }
    for name in ["victim_dir_link", "victim_dir"] {
        fs::create_dir(src.join(name)).unwrap();
        fs::write(src.join(name).join("inner"), b"innocent\n").unwrap();
    }
    fs::write(t.join("secret"), b"TOP SECRET\n").unwrap();
    fs::create_dir(t.join("private")).unwrap();
    fs::write(t.join("private/id_ed25519"), b"PRIVATE KEY\n").unwrap();
    fs::create_dir(t.join("other")).unwrap();
    fs::write(t.join("other/planted"), b"PLANTED DIR\n").unwrap();
    fs::write(t.join("replacement"), b"PLANTED FILE\n").unwrap();

    let (s, hook_t) = (src.clone(), t.clone());
    let (repo, summary) = backup_with_hook(&src, move |p| {
        let t = &hook_t;
        let Some(name) = p.file_name().and_then(|n| n.to_str()) else {
            return;
        };
        if p != s.join(name) {
            return;
        }
        match name {
            "victim_link" => {
                fs::remove_file(p).unwrap();
                std::os::unix::fs::symlink(t.join("secret"), p).unwrap();
            }
            "victim_fifo" => {
                fs::remove_file(p).unwrap();
                let mode = rustix::fs::Mode::from_raw_mode(0o644);
                rustix::fs::mknodat(rustix::fs::CWD, p, FileType::Fifo, mode, 0).unwrap();
            }
            "victim_file" => fs::rename(t.join("replacement"), p).unwrap(),
            "victim_dir_link" => {
                fs::rename(p, t.join("was_dir_link")).unwrap();
                std::os::unix::fs::symlink(t.join("private"), p).unwrap();
            }
            "victim_dir" => {
                fs::rename(p, t.join("was_dir")).unwrap();
                fs::rename(t.join("other"), p).unwrap();
            }
            _ => {}
        }
    });

    let mut errors = summary.errors.clone();
    errors.sort();
    let skipped = |name: &str| changed_message(&src.join(name));
    assert_eq!(
        errors,
        [
            skipped("victim_dir"),
            skipped("victim_dir_link"),
            skipped("victim_fifo"),
            skipped("victim_file"),
            skipped("victim_link"),
        ]
    );
    let got = snapshot_entries(&repo, &summary.snapshot_id, &src);
    let want: Vec<_> = want
        .into_iter()
        .map(|(p, t, c)| (p.display().to_string(), t, c))
        .collect();
    assert_eq!(got, want, "exactly the files nobody touched");
    for secret in [
        &b"TOP SECRET\n"[..],
        b"PRIVATE KEY\n",
        b"PLANTED DIR\n",
        b"PLANTED FILE\n",
    ] {
        assert!(
            repo.lookup(BlobType::Data, &Id::hash(secret)).is_none(),
            "{} reached the repository",
            String::from_utf8_lossy(secret)
        );
    }
    assert_eq!(summary.files_new, 300);
}

/// Deeper than the walk keeps directories open: the outer ones are closed
/// and opened again through `..` on the way back, and every entry after
/// the deep branch, at every level, is still backed up.
#[test]
fn trees_deeper_than_the_open_directory_limit_are_backed_up_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let depth = MAX_OPEN_DIRS * 2 + 3;
    let mut dir = src.clone();
    let mut want = Vec::new();
    for level in 0..depth {
        dir.push("d");
        fs::create_dir_all(&dir).unwrap();
        // Before and after the subdirectory in name order.
        for name in ["a", "z"] {
            let p = dir.parent().unwrap().join(name);
            let body = format!("{name} at level {level}\n");
            fs::write(&p, &body).unwrap();
            want.push((
                p.display().to_string(),
                "file".to_string(),
                body.into_bytes(),
            ));
        }
        want.push((dir.display().to_string(), "dir".to_string(), Vec::new()));
    }
    want.sort();
    let (repo, summary) = backup_with_hook(&src, |_| {});
    assert!(summary.errors.is_empty(), "{:?}", summary.errors);
    assert_eq!(snapshot_entries(&repo, &summary.snapshot_id, &src), want);
}

/// A directory the walk is deep inside is moved elsewhere: opening its old
/// parent again through `..` would now lead to the new place, so the walk
/// stops there rather than back up a directory nobody named.
#[test]
fn a_directory_moved_away_during_a_deep_walk_is_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let moved = src.join("p/moved");
    let mut bottom = moved.clone();
    for _ in 0..MAX_OPEN_DIRS + 5 {
        bottom.push("d");
    }
    fs::create_dir_all(&bottom).unwrap();
    fs::write(bottom.join("leaf"), b"leaf\n").unwrap();
    fs::write(src.join("p/z_after"), b"after\n").unwrap();
    let elsewhere = tmp.path().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    fs::write(elsewhere.join("not_named"), b"NOT NAMED\n").unwrap();

    let (leaf, from, to) = (bottom.join("leaf"), moved.clone(), elsewhere.join("moved"));
    let (repo, summary) = backup_with_hook(&src, move |p| {
        if p == leaf {
            fs::rename(&from, &to).unwrap();
        }
    });
    let p = src.join("p");
    assert!(
        summary.errors.contains(&format!(
            "{}: changed during backup (moved), the rest of it skipped",
            p.display()
        )),
        "{:?}",
        summary.errors
    );
    let got = snapshot_entries(&repo, &summary.snapshot_id, &src);
    assert!(got.iter().any(|e| e.0.ends_with("/leaf")), "{got:?}");
    for (path, _, content) in &got {
        assert!(
            !path.ends_with("z_after") && !path.ends_with("not_named"),
            "{path}"
        );
        assert_ne!(content, b"NOT NAMED\n");
    }
}

/// Pseudo-random bytes (xorshift), so chunks do not repeat within them.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A reader that yields `data`, then fails instead of ending, as the
/// CLI's command source does when the command exits non-zero.
struct FailingAtEnd(std::io::Cursor<Vec<u8>>);

impl std::io::Read for FailingAtEnd {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.0.read(buf)? {
            0 => Err(std::io::Error::other("command exited with status 3")),
            n => Ok(n),
        }
    }
}

#[test]
fn a_stream_becomes_one_file_at_the_root_and_deduplicates() {
    let mut repo = memory_repo();
    // Past the chunker's 8 MiB maximum, so at least two chunks whatever
    // the repository's random polynomial.
    let data = noise(9 << 20, 7);
    let opts = BackupOptions {
        tags: vec!["db".into()],
        ..Default::default()
    };
    let mut src = std::io::Cursor::new(data.clone());
    let mut seen = 0;
    let first = backup_stream(&mut repo, "app.dump", &mut src, &opts, |p| seen = p.bytes).unwrap();
    assert_eq!(seen, data.len() as u64);
    assert_eq!(
        (first.files_new, first.bytes_processed),
        (1, data.len() as u64)
    );
    assert!(first.data_blobs_added >= 2, "{first:?}");

    let snap = repo.load_snapshot(&first.snapshot_id).unwrap();
    assert_eq!(snap.paths, vec!["/app.dump".to_string()]);
    assert_eq!(snap.tags, vec!["db".to_string()]);
    let tree = repo.load_tree(&snap.tree).unwrap();
    assert_eq!(tree.nodes.len(), 1);
    let node = &tree.nodes[0];
    assert_eq!(
        (node.name.as_str(), node.node_type.as_str()),
        ("app.dump", "file")
    );
    assert_eq!((node.mode, node.size), (0o644, data.len() as u64));
    assert_eq!(node.mtime, snap.time);
    let mut back = Vec::new();
    for id in node.content.as_ref().unwrap() {
        back.extend(repo.load_blob(BlobType::Data, id).unwrap());
    }
    assert!(back == data, "content differs");

    // The same stream again: a new snapshot, no new data, parent found.
    let mut src = std::io::Cursor::new(data);
    let second = backup_stream(&mut repo, "app.dump", &mut src, &opts, |_| {}).unwrap();
    assert_ne!(second.snapshot_id, first.snapshot_id);
    assert_eq!(second.parent, Some(first.snapshot_id));
    assert_eq!((second.data_blobs_added, second.files_unmodified), (0, 1));
    let cancel = crate::Cancel::default();
    assert!(
        crate::check(&mut repo, crate::ReadData::All, &cancel, |_, _| {})
            .unwrap()
            .is_ok()
    );
}

#[test]
fn a_stream_that_fails_at_its_end_saves_no_snapshot() {
    let mut repo = memory_repo();
    let mut src = FailingAtEnd(std::io::Cursor::new(noise(2 << 20, 3)));
    let err = backup_stream(
        &mut repo,
        "stdin",
        &mut src,
        &BackupOptions::default(),
        |_| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("status 3"), "{err}");
    assert!(repo.load_snapshots().unwrap().snapshots.is_empty());
    let cancel = crate::Cancel::default();
    assert!(
        crate::check(&mut repo, crate::ReadData::All, &cancel, |_, _| {})
            .unwrap()
            .is_ok()
    );
    // The same value keeps working: a good stream afterwards is whole.
    let data = noise(2 << 20, 3);
    let mut good = std::io::Cursor::new(data.clone());
    let s = backup_stream(
        &mut repo,
        "stdin",
        &mut good,
        &BackupOptions::default(),
        |_| {},
    )
    .unwrap();
    let snap = repo.load_snapshot(&s.snapshot_id).unwrap();
    let node = repo.load_tree(&snap.tree).unwrap().nodes.remove(0);
    let mut back = Vec::new();
    for id in node.content.as_ref().unwrap() {
        back.extend(repo.load_blob(BlobType::Data, id).unwrap());
    }
    assert!(back == data, "content differs");
}

#[test]
fn stream_names_and_paths_are_checked() {
    let mut repo = memory_repo();
    for bad in ["", ".", "..", "a/b", "/x"] {
        let mut src = std::io::Cursor::new(b"x".to_vec());
        let r = backup_stream(&mut repo, bad, &mut src, &BackupOptions::default(), |_| {});
        assert!(matches!(r, Err(Error::InvalidArgument(_))), "{bad:?}");
    }
    let opts = BackupOptions {
        paths: vec![PathBuf::from("/etc")],
        ..Default::default()
    };
    let mut src = std::io::Cursor::new(b"x".to_vec());
    let r = backup_stream(&mut repo, "stdin", &mut src, &opts, |_| {});
    assert!(matches!(r, Err(Error::InvalidArgument(_))));
    assert!(repo.load_snapshots().unwrap().snapshots.is_empty());
}
