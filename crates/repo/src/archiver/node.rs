//! What an entry's metadata becomes in a tree node: restic's node types,
//! Go's mode bits, times as restic writes them, owner names resolved once
//! per backup from `/etc/passwd` and `/etc/group`.

use std::collections::HashMap;
use std::fs;

use rustix::fs::FileType;

use super::dirfd::Meta;
use crate::format::time;
use crate::format::tree::{go_mode_from_unix, Node};

/// uid/gid to names from /etc/passwd and /etc/group (no libc needed).
#[derive(Default)]
pub(super) struct Names {
    users: HashMap<u32, String>,
    groups: HashMap<u32, String>,
}

impl Names {
    pub(super) fn load() -> Names {
        fn parse(path: &str) -> HashMap<u32, String> {
            let mut m = HashMap::new();
            if let Ok(s) = fs::read_to_string(path) {
                for line in s.lines() {
                    let f: Vec<&str> = line.split(':').collect();
                    if let (Some(name), Some(id)) =
                        (f.first(), f.get(2).and_then(|x| x.parse().ok()))
                    {
                        m.entry(id).or_insert_with(|| name.to_string());
                    }
                }
            }
            m
        }
        Names {
            users: parse("/etc/passwd"),
            groups: parse("/etc/group"),
        }
    }

    /// A node from an entry's metadata, its owner's names resolved, without
    /// extended attributes.
    pub(super) fn node(&self, name: String, md: &Meta) -> Node {
        let ft = md.file_type();
        let node_type = match ft {
            FileType::Directory => "dir",
            FileType::Symlink => "symlink",
            FileType::RegularFile => "file",
            FileType::BlockDevice => "dev",
            FileType::CharacterDevice => "chardev",
            FileType::Fifo => "fifo",
            _ => "socket",
        };
        let is_device = matches!(ft, FileType::BlockDevice | FileType::CharacterDevice);
        Node {
            name,
            node_type: node_type.to_string(),
            mode: go_mode_from_unix(md.mode),
            mtime: time::from_unix(md.mtime.0, md.mtime.1),
            atime: time::from_unix(md.atime.0, md.atime.1),
            ctime: time::from_unix(md.ctime.0, md.ctime.1),
            uid: md.uid,
            gid: md.gid,
            user: self.users.get(&md.uid).cloned().unwrap_or_default(),
            group: self.groups.get(&md.gid).cloned().unwrap_or_default(),
            inode: md.ino,
            device_id: md.dev,
            size: if ft == FileType::RegularFile {
                md.size
            } else {
                0
            },
            links: md.nlink,
            linktarget: String::new(),
            extended_attributes: None,
            device: if is_device { md.rdev } else { 0 },
            content: None,
            subtree: None,
            error: String::new(),
        }
    }
}
