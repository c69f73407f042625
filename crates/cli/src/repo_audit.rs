//! The audit records of `bulwark backup` and `bulwark restore`.
//!
//! Repository commands run without any Bulwark installation (a laptop with
//! a repository and a password, as with restic), so they audit only where
//! there is a state store to write to: the data directory exists, or the
//! config names a PostgreSQL database. Nothing is created for it. The
//! record is written after the command, with its outcome; failing to write
//! it is a warning, not a failed backup (the data is safe either way).
//!
//! The target is the repository's location with no credentials (an S3
//! endpoint is cut to its origin); the command's arguments, which may hold
//! a database password, are never recorded, only the program's name.

use anyhow::Context;
use bulwark_ops::{append_audit, Actor, Entry, Outcome};

use crate::Globals;

/// Record `action` on the repository `location` with `outcome` and
/// `detail` (one of `crate::wire`'s audit details), if this machine has a
/// state store (see the module docs).
pub(crate) fn record(
    globals: &Globals,
    action: &str,
    location: &str,
    outcome: Outcome,
    detail: &impl serde::Serialize,
) {
    if let Err(e) = try_record(globals, action, location, outcome, detail) {
        eprintln!("warning: {action} not written to the audit trail: {e:#}");
    }
}

fn try_record(
    globals: &Globals,
    action: &str,
    location: &str,
    outcome: Outcome,
    detail: &impl serde::Serialize,
) -> anyhow::Result<()> {
    let env = |k: &str| std::env::var(k).ok();
    let loaded =
        match bulwark_ops::load_settings(&globals.config_path, globals.config_required, &env) {
            Ok(l) => l,
            // No store to find without a valid config, unless the data
            // directory is there: then say why nothing was written.
            Err(errors) if globals.data_dir.is_dir() => {
                anyhow::bail!("invalid configuration: {errors}")
            }
            Err(_) => return Ok(()),
        };
    if loaded.config.server.database.is_none() && !globals.data_dir.is_dir() {
        return Ok(());
    }
    let detail = serde_json::to_value(detail).context("encoding the record's detail")?;
    let entry = Entry::new(&Actor::cli(), action, &target(location), outcome).detail(detail);
    crate::cmd::runtime()?.block_on(async {
        let store = crate::cmd::open_store(globals, &loaded.config).await?;
        append_audit(&store, entry).await?;
        anyhow::Ok(())
    })
}

/// The location as the audit trail shows it: no user info in an S3
/// endpoint (credentials otherwise come from the environment, never the
/// location string).
pub(crate) fn target(location: &str) -> String {
    use bulwark_repo::Location;
    match Location::parse(location) {
        Ok(Location::S3 {
            endpoint: Some(endpoint),
            bucket,
            prefix,
        }) => Location::S3 {
            endpoint: Some(bulwark_ops::url_origin(&endpoint)),
            bucket,
            prefix,
        }
        .to_string(),
        Ok(l) => l.to_string(),
        Err(_) => "(invalid repository location)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn targets_carry_no_credentials() {
        let check =
            |input: &str, expected: &str| assert_eq!(super::target(input), expected, "{input}");
        check("/srv/backups/app", "/srv/backups/app");
        check("s3:bucket/app", "s3:bucket/app");
        check(
            "s3:https://key:secret@minio.local:9000/bucket/app",
            "s3:https://minio.local:9000/bucket/app",
        );
        check("azure:box:/app", "azure:box:/app");
        check("sftp:host:/x", "(invalid repository location)");
    }
}
