//! Trees: a directory listing as restic's JSON `{"nodes":[...]}`.

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

use crate::id::Id;

fn is_zero(v: &u64) -> bool {
    *v == 0
}
fn is_zero32(v: &u32) -> bool {
    *v == 0
}

/// One entry of a tree, with the fields and JSON names restic uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// File name (one path component).
    pub name: String,
    /// `file`, `dir`, `symlink`, `dev`, `chardev`, `fifo` or `socket`.
    #[serde(rename = "type")]
    pub node_type: String,
    /// Go `os.FileMode` bits as restic records them (not `st_mode`: the
    /// directory, symlink, setuid, ... bits sit higher).
    #[serde(default, skip_serializing_if = "is_zero32")]
    pub mode: u32,
    /// Modification time.
    #[serde(with = "super::time", default = "super::time::zero")]
    pub mtime: DateTime<FixedOffset>,
    /// Access time.
    #[serde(with = "super::time", default = "super::time::zero")]
    pub atime: DateTime<FixedOffset>,
    /// Status change time.
    #[serde(with = "super::time", default = "super::time::zero")]
    pub ctime: DateTime<FixedOffset>,
    /// Owner.
    #[serde(default)]
    pub uid: u32,
    /// Group.
    #[serde(default)]
    pub gid: u32,
    /// Owner name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    /// Group name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    /// Inode number.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub inode: u64,
    /// `st_dev` of the file system.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub device_id: u64,
    /// File size in bytes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub size: u64,
    /// Hard link count.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub links: u64,
    /// Symlink target.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub linktarget: String,
    /// Extended attributes, kept as restic wrote them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extended_attributes: Option<serde_json::Value>,
    /// `st_rdev` for device nodes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub device: u64,
    /// Data blob ids of a file, in order. restic's checker rejects a file
    /// with `null` content, so files always carry a list (maybe empty) and
    /// other nodes carry `null`.
    pub content: Option<Vec<Id>>,
    /// Tree id of a directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtree: Option<Id>,
    /// An error restic met while reading the entry.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
}

/// A directory listing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    /// Entries sorted by name.
    pub nodes: Vec<Node>,
}

impl Tree {
    /// restic's encoding: compact JSON plus a newline. The tree's id is the
    /// SHA-256 of exactly these bytes.
    pub(crate) fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut v = serde_json::to_vec(self)?;
        v.push(b'\n');
        Ok(v)
    }
}

/// Whether a node name from a tree is one plain path component: not
/// empty, not `.` or `..`, without `/` or NUL. Repositories are untrusted
/// input; a name that fails this would let a hostile tree write outside a
/// restore's target (`../../etc/cron.d/x`), so restore and export skip
/// such nodes and `check` reports them.
///
/// ```
/// use bulwark_repo::is_safe_name;
/// assert!(is_safe_name("notes.txt") && is_safe_name("..hidden"));
/// assert!(!is_safe_name("../../etc/hostname") && !is_safe_name(".."));
/// ```
pub fn is_safe_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
}

/// Deepest directory nesting followed when walking a snapshot. Real trees
/// stay far below (Linux paths end at 4096 bytes); a hostile repository
/// must not be able to exhaust the stack of the recursive walks.
pub(crate) const MAX_TREE_DEPTH: usize = 2048;

/// Go's `os.FileMode` type bits.
pub(crate) mod go {
    pub const DIR: u32 = 1 << 31;
    pub const SYMLINK: u32 = 1 << 27;
    pub const DEVICE: u32 = 1 << 26;
    pub const NAMED_PIPE: u32 = 1 << 25;
    pub const SOCKET: u32 = 1 << 24;
    pub const SETUID: u32 = 1 << 23;
    pub const SETGID: u32 = 1 << 22;
    pub const CHAR_DEVICE: u32 = 1 << 21;
    pub const STICKY: u32 = 1 << 20;
}

/// Convert `st_mode` to Go's `os.FileMode`, which restic stores.
pub fn go_mode_from_unix(m: u32) -> u32 {
    let mut g = m & 0o777;
    match m & 0o170000 {
        0o040000 => g |= go::DIR,
        0o120000 => g |= go::SYMLINK,
        0o060000 => g |= go::DEVICE,
        0o020000 => g |= go::DEVICE | go::CHAR_DEVICE,
        0o010000 => g |= go::NAMED_PIPE,
        0o140000 => g |= go::SOCKET,
        _ => {}
    }
    if m & 0o4000 != 0 {
        g |= go::SETUID;
    }
    if m & 0o2000 != 0 {
        g |= go::SETGID;
    }
    if m & 0o1000 != 0 {
        g |= go::STICKY;
    }
    g
}

/// The permission bits (with setuid/setgid/sticky) of a Go `os.FileMode`,
/// for `chmod`.
pub fn unix_perm_from_go(g: u32) -> u32 {
    let mut m = g & 0o777;
    if g & go::SETUID != 0 {
        m |= 0o4000;
    }
    if g & go::SETGID != 0 {
        m |= 0o2000;
    }
    if g & go::STICKY != 0 {
        m |= 0o1000;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_conversion_table() {
        // (st_mode, Go FileMode as restic records it)
        let cases = [
            (0o100644, 420),
            (0o040755, 2147484141),
            (0o041777, 2148532735), // /tmp, sticky
            (0o120777, 134218239),  // symlink
            (0o104755, 0o755 | go::SETUID),
        ];
        for (unix, g) in cases {
            assert_eq!(go_mode_from_unix(unix), g, "{unix:o}");
            assert_eq!(unix_perm_from_go(g), unix & 0o7777, "{unix:o}");
        }
    }

    #[test]
    fn parses_restic_tree_and_keeps_the_shape() {
        let j = r#"{"nodes":[{"name":"f","type":"file","mode":420,"mtime":"2026-11-21T23:50:58.33771158Z","atime":"2026-11-21T23:50:58.33771158Z","ctime":"2026-11-21T23:50:58.33771158Z","uid":0,"gid":0,"user":"root","group":"root","inode":10011177,"device_id":65024,"size":6,"links":1,"content":["5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"]},{"name":"l","type":"symlink","mode":134218239,"mtime":"2026-11-21T23:50:58.33771158Z","atime":"2026-11-21T23:50:58.33771158Z","ctime":"2026-11-21T23:50:58.33771158Z","uid":0,"gid":0,"user":"root","group":"root","inode":10011178,"device_id":65024,"links":1,"linktarget":"f","content":null}]}"#;
        let t: Tree = serde_json::from_str(j).unwrap();
        assert_eq!(t.nodes[1].linktarget, "f");
        // Our encoding of a restic tree is byte-identical, so tree ids match.
        let mut back = t.to_json().unwrap();
        assert_eq!(back.pop(), Some(b'\n'));
        assert_eq!(String::from_utf8(back).unwrap(), j);
        // Unknown fields from newer restic versions are tolerated.
        let t2: Tree = serde_json::from_str(
            r#"{"nodes":[{"name":"x","type":"dir","future":1,"content":null}]}"#,
        )
        .unwrap();
        assert_eq!(t2.nodes[0].name, "x");
    }
}
