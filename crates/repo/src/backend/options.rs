//! Backend options in restic's `-o key=value` spelling.
//!
//! One set of options serves every repository a command touches (`copy`
//! from S3 to Azure takes both clouds' options at once), so an option for
//! another cloud than the repository's is ignored; an option no backend
//! knows is an error naming the known ones.

use std::collections::BTreeMap;
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
    /// Credentials and endpoints given by configuration instead of the
    /// environment.
    pub credentials: Credentials,
}

/// The standard variables a repository's credentials and endpoint may be
/// given by, per cloud, as each cloud's own tools read them.
pub const CREDENTIAL_VARIABLES: [&str; 13] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_ACCOUNT_NAME",
    "AZURE_ACCOUNT_KEY",
    "AZURE_ACCOUNT_SAS",
    "AZURE_ENDPOINT_SUFFIX",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "STORAGE_EMULATOR_HOST",
    "AWS_PROFILE",
];

/// Values of [`CREDENTIAL_VARIABLES`] given by configuration (a
/// `[[backup]]`'s `credentials`), so two backups on one machine can use
/// two accounts. A variable given here is used instead of the process
/// environment's; one not given is read from the environment as usual.
///
/// Holds secrets: `Debug` prints only the names.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials(BTreeMap<&'static str, String>);

impl Credentials {
    /// Set `name` (one of [`CREDENTIAL_VARIABLES`]) to `value`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for another name or an empty value; the
    /// message never holds the value.
    pub fn set(&mut self, name: &str, value: impl Into<String>) -> Result<()> {
        let known = CREDENTIAL_VARIABLES
            .iter()
            .find(|v| **v == name)
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "unknown credential {name:?} (known: {})",
                    CREDENTIAL_VARIABLES.join(", ")
                ))
            })?;
        let value = value.into();
        if value.trim().is_empty() {
            return Err(Error::InvalidArgument(format!(
                "credential {name}: empty value"
            )));
        }
        self.0.insert(known, value);
        Ok(())
    }

    /// Whether configuration gave `name` (the environment not consulted).
    pub fn given(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// `name` from configuration, else from the environment; empty values
    /// count as unset.
    pub(crate) fn var(&self, name: &str) -> Option<String> {
        self.0
            .get(name)
            .cloned()
            .or_else(|| std::env::var(name).ok())
            .filter(|v| !v.trim().is_empty())
    }

    /// `name` as one of a set of variables that only make sense together
    /// (an account and its key): when configuration gives any of `group`,
    /// the environment is not read for the others, so a configured account
    /// never mixes with an ambient one.
    pub(crate) fn var_in(&self, group: &[&str], name: &str) -> Option<String> {
        if group.iter().any(|g| self.given(g)) {
            self.0.get(name).cloned().filter(|v| !v.trim().is_empty())
        } else {
            self.var(name)
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
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

    #[test]
    fn credentials_are_known_variables_and_never_printed() {
        let mut c = Credentials::default();
        c.set("AWS_SECRET_ACCESS_KEY", "s3cr3t-value").unwrap();
        assert!(c.given("AWS_SECRET_ACCESS_KEY"));
        assert_eq!(
            c.var("AWS_SECRET_ACCESS_KEY").as_deref(),
            Some("s3cr3t-value")
        );
        let e = c
            .set("AWS_SECRET_KEY", "s3cr3t-value")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("AWS_SECRET_KEY") && e.contains("AWS_SECRET_ACCESS_KEY"),
            "{e}"
        );
        assert!(!e.contains("s3cr3t"), "{e}");
        assert!(c
            .set("AZURE_ACCOUNT_KEY", " ")
            .unwrap_err()
            .to_string()
            .contains("empty"));
        let options = BackendOptions {
            credentials: c,
            ..BackendOptions::default()
        };
        let shown = format!("{options:?} {options}");
        assert!(
            !shown.contains("s3cr3t") && shown.contains("AWS_SECRET_ACCESS_KEY"),
            "{shown}"
        );
    }
}
