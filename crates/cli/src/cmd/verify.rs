//! `bulwark verify [NAME]`: verification of configured backups (check, a
//! read of a subset of packs, a sample restore compared by SHA-256). Exit 1
//! on any mismatch.

use std::process::ExitCode;

use bulwark_ops::backups;

use crate::Globals;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// A configured [[backup]]; all of them when omitted
    name: Option<String>,
}

pub(crate) fn run(globals: &Globals, args: Args) -> anyhow::Result<ExitCode> {
    let loaded = super::load_config(globals)?;
    let config = loaded.config;
    let targets: Vec<_> = match &args.name {
        Some(n) => vec![config
            .backup(n)
            .ok_or_else(|| anyhow::anyhow!("no backup named {n:?} is configured"))?],
        None => config.backups.iter().collect(),
    };
    if targets.is_empty() {
        anyhow::bail!("no [[backup]] is configured");
    }
    super::runtime()?.block_on(async {
        let mut failed = false;
        let mut out = Vec::new();
        for cfg in targets {
            let report = backups::verify(cfg, &globals.data_dir).await?;
            failed |= !report.is_ok();
            if globals.json {
                out.push(serde_json::json!({
                    "backup": report.backup,
                    "ok": report.is_ok(),
                    "snapshot": report.snapshot,
                    "packs": report.packs,
                    "packs_read": report.packs_read,
                    "files_sampled": report.files_sampled,
                    "check_errors": report.check_errors,
                    "mismatches": report.mismatches.iter().map(|m| serde_json::json!({
                        "path": m.path, "expected_sha256": m.expected,
                        "actual_sha256": m.actual, "reason": m.reason,
                    })).collect::<Vec<_>>(),
                }));
            } else {
                println!(
                    "{}: {} (snapshot {}, {} of {} packs read, {} files compared)",
                    report.backup,
                    if report.is_ok() { "ok" } else { "FAILED" },
                    report.snapshot.as_deref().unwrap_or("-"),
                    report.packs_read,
                    report.packs,
                    report.files_sampled
                );
                for e in &report.check_errors {
                    println!("  check: {e}");
                }
                for m in &report.mismatches {
                    println!("  mismatch: {}: {}", m.path, m.reason);
                }
            }
        }
        if globals.json {
            crate::output::print_json(&serde_json::Value::Array(out));
        }
        Ok(if failed {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        })
    })
}
