//! Where a repository lives, spelled as restic spells it: a local path,
//! `s3:[http(s)://host[:port]/]bucket[/prefix]`, `azure:container:/prefix`
//! or `gs:bucket:/prefix`. One parser for the config check and the backend
//! opener, so a location that passes `config check` is one the opener reads
//! the same way.

use std::fmt;
use std::path::PathBuf;

use crate::error::{Error, Result};

/// restic's backends that Bulwark does not speak.
const FOREIGN: &[&str] = &["rest:", "sftp:", "b2:", "swift:", "rclone:"];

/// A parsed repository location.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Location {
    /// A directory (`/srv/backups/app`, `local:/srv/backups/app`).
    Local(PathBuf),
    /// Amazon S3 or a compatible store.
    S3 {
        /// `http(s)://host[:port]` when given; None means AWS.
        endpoint: Option<String>,
        /// The bucket.
        bucket: String,
        /// The repository's folder in the bucket, without slashes at either
        /// end; empty for the bucket's root.
        prefix: String,
    },
    /// An Azure Blob Storage container.
    Azure {
        /// The container.
        container: String,
        /// The repository's folder in the container.
        prefix: String,
    },
    /// A Google Cloud Storage bucket.
    Gcs {
        /// The bucket.
        bucket: String,
        /// The repository's folder in the bucket.
        prefix: String,
    },
}

fn invalid(repo: &str, expected: &str) -> Error {
    Error::InvalidArgument(format!("invalid repository {repo:?}: expected {expected}"))
}

/// `NAME:/prefix` (or `NAME:prefix`, or just `NAME`) of azure: and gs:.
fn name_and_prefix(repo: &str, rest: &str, form: &str) -> Result<(String, String)> {
    let (name, prefix) = rest.split_once(':').unwrap_or((rest, ""));
    if name.is_empty() || name.contains('/') {
        return Err(invalid(repo, form));
    }
    Ok((name.to_string(), prefix.trim_matches('/').to_string()))
}

impl Location {
    /// Parses a repository string.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the expected form, or the restic
    /// backend Bulwark does not speak.
    pub fn parse(repo: &str) -> Result<Location> {
        let repo = repo.trim();
        if repo.is_empty() {
            return Err(Error::InvalidArgument(
                "the repository must not be empty".into(),
            ));
        }
        if let Some(rest) = repo.strip_prefix("s3:") {
            let (endpoint, path) = match rest.split_once("://") {
                Some((scheme @ ("http" | "https"), after)) => {
                    let (host, path) = after.split_once('/').unwrap_or((after, ""));
                    if host.is_empty() {
                        return Err(invalid(repo, "s3:[http(s)://host[:port]/]bucket[/prefix]"));
                    }
                    (Some(format!("{scheme}://{host}")), path)
                }
                Some(_) => {
                    return Err(Error::InvalidArgument(format!(
                        "invalid repository {repo:?}: s3 endpoints are http:// or https://"
                    )))
                }
                None => (None, rest),
            };
            let path = path.trim_matches('/');
            let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
            if bucket.is_empty() {
                return Err(invalid(repo, "s3:[http(s)://host[:port]/]bucket[/prefix]"));
            }
            return Ok(Location::S3 {
                endpoint,
                bucket: bucket.to_string(),
                prefix: prefix.trim_matches('/').to_string(),
            });
        }
        if let Some(rest) = repo.strip_prefix("azure:") {
            let (container, prefix) = name_and_prefix(repo, rest, "azure:container:/prefix")?;
            return Ok(Location::Azure { container, prefix });
        }
        if let Some(rest) = repo.strip_prefix("gs:") {
            let (bucket, prefix) = name_and_prefix(repo, rest, "gs:bucket:/prefix")?;
            return Ok(Location::Gcs { bucket, prefix });
        }
        if let Some(scheme) = FOREIGN.iter().find(|p| repo.starts_with(**p)) {
            return Err(Error::InvalidArgument(format!(
                "unsupported repository backend `{}` (use a local path, s3:, azure: or gs:)",
                scheme.trim_end_matches(':')
            )));
        }
        if repo.contains("://") {
            return Err(Error::InvalidArgument(format!(
                "invalid repository {repo:?}: use a local path, s3:, azure: or gs:"
            )));
        }
        Ok(Location::Local(PathBuf::from(
            repo.strip_prefix("local:").unwrap_or(repo),
        )))
    }

    /// `local`, `s3`, `azure` or `gs`.
    pub fn scheme(&self) -> &'static str {
        match self {
            Location::Local(_) => "local",
            Location::S3 { .. } => "s3",
            Location::Azure { .. } => "azure",
            Location::Gcs { .. } => "gs",
        }
    }

    /// Whether this build can open it: local directories, S3, Azure Blob
    /// Storage and Google Cloud Storage all have backends.
    pub fn is_supported(&self) -> bool {
        matches!(
            self,
            Location::Local(_)
                | Location::S3 { .. }
                | Location::Azure { .. }
                | Location::Gcs { .. }
        )
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let slash = |p: &str| {
            if p.is_empty() {
                String::new()
            } else {
                format!("/{p}")
            }
        };
        match self {
            Location::Local(p) => write!(f, "{}", p.display()),
            Location::S3 {
                endpoint,
                bucket,
                prefix,
            } => match endpoint {
                Some(e) => write!(f, "s3:{e}/{bucket}{}", slash(prefix)),
                None => write!(f, "s3:{bucket}{}", slash(prefix)),
            },
            Location::Azure { container, prefix } => write!(f, "azure:{container}:/{prefix}"),
            Location::Gcs { bucket, prefix } => write!(f, "gs:{bucket}:/{prefix}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_table() {
        let s3 = |e: Option<&str>, b: &str, p: &str| Location::S3 {
            endpoint: e.map(str::to_string),
            bucket: b.into(),
            prefix: p.into(),
        };
        for (repo, want) in [
            (
                "/srv/backups/app",
                Location::Local("/srv/backups/app".into()),
            ),
            ("local:/srv/x", Location::Local("/srv/x".into())),
            ("relative/dir", Location::Local("relative/dir".into())),
            ("s3:acme-backups/db", s3(None, "acme-backups", "db")),
            ("s3:acme-backups", s3(None, "acme-backups", "")),
            (
                "s3:http://127.0.0.1:5000/backups/app/daily",
                s3(Some("http://127.0.0.1:5000"), "backups", "app/daily"),
            ),
            (
                "s3:https://s3.eu-central-1.amazonaws.com/acme/db",
                s3(Some("https://s3.eu-central-1.amazonaws.com"), "acme", "db"),
            ),
            (
                "azure:backups:/app",
                Location::Azure {
                    container: "backups".into(),
                    prefix: "app".into(),
                },
            ),
            (
                "gs:bucket:/code",
                Location::Gcs {
                    bucket: "bucket".into(),
                    prefix: "code".into(),
                },
            ),
        ] {
            let got = Location::parse(repo).unwrap_or_else(|e| panic!("{repo}: {e}"));
            assert_eq!(got, want, "{repo}");
            // Printing gives a string that parses to the same location.
            assert_eq!(Location::parse(&got.to_string()).unwrap(), want, "{repo}");
        }
        for (repo, message) in [
            ("", "must not be empty"),
            ("s3:", "s3:[http(s)://"),
            ("s3:http://", "s3:[http(s)://"),
            ("s3:ftp://h/b", "http:// or https://"),
            ("azure:", "azure:container:/prefix"),
            ("gs::/x", "gs:bucket:/prefix"),
            ("sftp:host:/x", "unsupported repository backend `sftp`"),
            (
                "https://example.com/repo",
                "use a local path, s3:, azure: or gs:",
            ),
        ] {
            let err = Location::parse(repo).unwrap_err().to_string();
            assert!(err.contains(message), "{repo:?}: {err}");
        }
    }
}
