//! Backend options in restic's `-o key=value` spelling.
//!
//! One set of options serves every repository a command touches (`copy`
//! from S3 to Azure takes both clouds' options at once), so an option for
//! another cloud than the repository's is ignored; an option no backend
//! knows is an error naming the known ones.

use std::fmt;

use crate::error::{Error, Result};

/// Every option, as spelt on the command line and in `[[backup]] options`.
pub const KNOWN_OPTIONS: [&str; 8] = [
    "s3.storage-class",
    "s3.kms-key-id",
    "s3.sse",
    "s3.path-style",
    "s3.region",
    "azure.access-tier",
    "gs.storage-class",
    "connections",
];

/// S3 storage classes a pack may be written in. The archive classes
/// (GLACIER, DEEP_ARCHIVE) are refused: their objects cannot be read
/// until thawed, so `check --read-data`, restores and drills would fail.
const S3_STORAGE_CLASSES: [&str; 6] = [
    "STANDARD",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER_IR",
    "REDUCED_REDUNDANCY",
];

/// Azure access tiers; Archive is refused for the same reason.
const AZURE_TIERS: [&str; 3] = ["Hot", "Cool", "Cold"];

/// GCS storage classes (all of them read at once, unlike S3's archive).
const GCS_STORAGE_CLASSES: [&str; 4] = ["STANDARD", "NEARLINE", "COLDLINE", "ARCHIVE"];

/// The most parallel requests `connections` allows.
const MAX_CONNECTIONS: usize = 64;

/// Validated backend options. `Default` is what a repository gets with no
/// `-o`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackendOptions {
    /// S3 storage class for data packs; metadata stays in STANDARD so
    /// listing and index reads stay cheap.
    pub s3_storage_class: Option<String>,
    /// SSE-KMS with this key on every object.
    pub s3_kms_key_id: Option<String>,
    /// SSE-S3 (`AES256`) on every object.
    pub s3_sse_aes256: bool,
    /// Path-style requests (`host/bucket/key`) instead of virtual-hosted
    /// ones; `None` picks by endpoint (AWS: virtual-hosted, others: path).
    pub s3_path_style: Option<bool>,
    /// Overrides `AWS_REGION`/`AWS_DEFAULT_REGION`.
    pub s3_region: Option<String>,
    /// Azure access tier for data packs.
    pub azure_access_tier: Option<String>,
    /// GCS storage class for data packs.
    pub gs_storage_class: Option<String>,
    /// Parallel requests; `None` is the backend's default.
    pub connections: Option<usize>,
}

fn one_of(key: &str, value: &str, allowed: &[&str], why: &str) -> Result<String> {
    allowed
        .iter()
        .find(|a| a.eq_ignore_ascii_case(value))
        .map(|a| (*a).to_string())
        .ok_or_else(|| {
            Error::InvalidArgument(format!(
                "option {key}={value}: expected one of {}{why}",
                allowed.join(", ")
            ))
        })
}

impl BackendOptions {
    /// Options from `key=value` strings, as `-o` gives them.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the first malformed or unknown
    /// option or bad value.
    pub fn parse<I, S>(pairs: I) -> Result<BackendOptions>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut options = BackendOptions::default();
        for pair in pairs {
            let pair = pair.as_ref();
            let (key, value) = pair.split_once('=').ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "option {pair:?}: expected key=value (known options: {})",
                    KNOWN_OPTIONS.join(", ")
                ))
            })?;
            options.set(key.trim(), value.trim())?;
        }
        Ok(options)
    }

    /// Set one option.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an unknown key or a bad value.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        if value.is_empty() {
            return Err(Error::InvalidArgument(format!("option {key}: empty value")));
        }
        match key {
            "s3.storage-class" => {
                self.s3_storage_class = Some(one_of(
                    key,
                    value,
                    &S3_STORAGE_CLASSES,
                    " (archive classes cannot be read by restores and checks without a thaw)",
                )?);
            }
            "s3.kms-key-id" => self.s3_kms_key_id = Some(value.to_string()),
            "s3.sse" => {
                one_of(key, value, &["AES256"], " (for SSE-KMS give s3.kms-key-id)")?;
                self.s3_sse_aes256 = true;
            }
            "s3.path-style" => {
                self.s3_path_style = Some(match value {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(Error::InvalidArgument(format!(
                            "option {key}={value}: expected true or false"
                        )))
                    }
                });
            }
            "s3.region" => self.s3_region = Some(value.to_string()),
            "azure.access-tier" => {
                self.azure_access_tier = Some(one_of(
                    key,
                    value,
                    &AZURE_TIERS,
                    " (Archive cannot be read by restores and checks without rehydration)",
                )?);
            }
            "gs.storage-class" => {
                self.gs_storage_class = Some(one_of(key, value, &GCS_STORAGE_CLASSES, "")?);
            }
            "connections" => {
                let n = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_CONNECTIONS).contains(n))
                    .ok_or_else(|| {
                        Error::InvalidArgument(format!(
                            "option {key}={value}: expected a number from 1 to {MAX_CONNECTIONS}"
                        ))
                    })?;
                self.connections = Some(n);
            }
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "unknown option {key:?} (known options: {})",
                    KNOWN_OPTIONS.join(", ")
                )))
            }
        }
        if self.s3_sse_aes256 && self.s3_kms_key_id.is_some() {
            return Err(Error::InvalidArgument(
                "options s3.sse and s3.kms-key-id exclude each other: SSE-KMS already encrypts"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// `key=value` pairs, as `-o` would take them back; the KMS key id is an
/// identifier, not a secret, but long: shown whole for auditability.
impl fmt::Display for BackendOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut pairs: Vec<String> = Vec::new();
        let mut push = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                pairs.push(format!("{k}={v}"));
            }
        };
        push("s3.storage-class", self.s3_storage_class.clone());
        push("s3.kms-key-id", self.s3_kms_key_id.clone());
        push("s3.sse", self.s3_sse_aes256.then(|| "AES256".to_string()));
        push("s3.path-style", self.s3_path_style.map(|b| b.to_string()));
        push("s3.region", self.s3_region.clone());
        push("azure.access-tier", self.azure_access_tier.clone());
        push("gs.storage-class", self.gs_storage_class.clone());
        push("connections", self.connections.map(|n| n.to_string()));
        f.write_str(&pairs.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_in_restics_spelling() {
        let o = BackendOptions::parse([
            "s3.storage-class=standard_ia",
            "s3.kms-key-id=arn:aws:kms:eu-central-1:1:key/abc",
            "s3.path-style=true",
            "s3.region=eu-central-1",
            "azure.access-tier=cool",
            "gs.storage-class=NEARLINE",
            "connections=8",
        ])
        .unwrap();
        assert_eq!(o.s3_storage_class.as_deref(), Some("STANDARD_IA"));
        assert_eq!(o.azure_access_tier.as_deref(), Some("Cool"));
        assert_eq!(o.s3_path_style, Some(true));
        assert_eq!(o.connections, Some(8));
        assert_eq!(
            BackendOptions::parse([o.to_string().split(' ').collect::<Vec<_>>()].concat()).unwrap(),
            o
        );
    }

    #[test]
    fn bad_options_name_what_is_wrong() {
        let err = |pairs: &[&str]| BackendOptions::parse(pairs).unwrap_err().to_string();
        let e = err(&["s3.storage_class=STANDARD"]);
        assert!(
            e.contains("unknown option") && e.contains("s3.storage-class"),
            "{e}"
        );
        let e = err(&["s3.storage-class=GLACIER"]);
        assert!(e.contains("GLACIER") && e.contains("thaw"), "{e}");
        assert!(err(&["connections=0"]).contains("1 to 64"));
        assert!(err(&["backup.tar.gz"]).contains("key=value"));
        assert!(err(&["s3.sse=aws:kms"]).contains("AES256"));
        assert!(err(&["s3.sse=AES256", "s3.kms-key-id=k"]).contains("exclude"));
        assert!(err(&["s3.path-style=yes"]).contains("true or false"));
    }
}
