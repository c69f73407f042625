//! Index files: which blob lives in which pack, at which offset.

use serde::{Deserialize, Serialize};

use super::pack::PackedBlob;
use super::BlobType;
use crate::id::Id;

/// The JSON document of one index file.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct IndexJson {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) supersedes: Vec<Id>,
    #[serde(default)]
    pub(crate) packs: Vec<IndexPack>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct IndexPack {
    pub(crate) id: Id,
    #[serde(default)]
    pub(crate) blobs: Vec<IndexBlob>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct IndexBlob {
    pub(crate) id: Id,
    #[serde(rename = "type")]
    pub(crate) blob_type: BlobType,
    pub(crate) offset: u32,
    pub(crate) length: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) uncompressed_length: Option<u32>,
}

impl IndexPack {
    pub(crate) fn new(id: Id, blobs: &[PackedBlob]) -> Self {
        IndexPack {
            id,
            blobs: blobs
                .iter()
                .map(|b| IndexBlob {
                    id: b.id,
                    blob_type: b.blob_type,
                    offset: b.offset,
                    length: b.length,
                    uncompressed_length: b.uncompressed_length,
                })
                .collect(),
        }
    }
}

impl IndexBlob {
    pub(crate) fn to_packed(&self) -> PackedBlob {
        PackedBlob {
            id: self.id,
            blob_type: self.blob_type,
            offset: self.offset,
            length: self.length,
            uncompressed_length: self.uncompressed_length,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_restic_index_json() {
        let j = r#"{"packs":[{"id":"0e3c2bc3ce9fb63bcc4b9507b6a95c77069fe86e76a5a3dc01fe6e8481a547b3","blobs":[{"id":"5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03","type":"data","offset":0,"length":47,"uncompressed_length":6}]},{"id":"ed458f133ab8a72d6b229b1849dc3b754cd7c3dc979f6c8b48c2c051e7fcd5fc","blobs":[{"id":"2544aaf42881abd303eabf62a3ce52607011560853bfd28f9e23ceb0d82c26ff","type":"tree","offset":0,"length":293}]}]}"#;
        let idx: IndexJson = serde_json::from_str(j).unwrap();
        assert_eq!(idx.packs.len(), 2);
        assert_eq!(idx.packs[0].blobs[0].uncompressed_length, Some(6));
        assert_eq!(idx.packs[1].blobs[0].blob_type, BlobType::Tree);
        assert_eq!(idx.packs[1].blobs[0].uncompressed_length, None);
        let back = serde_json::to_string(&idx).unwrap();
        assert!(!back.contains("supersedes"));
        assert!(serde_json::from_str::<IndexJson>(r#"{"packs":[{"id":"zz"}]}"#).is_err());
    }
}
