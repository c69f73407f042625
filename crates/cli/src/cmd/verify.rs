//! `bulwark verify [NAME]`: verification of configured backups (check, a
//! read of a subset of packs, a sample restore compared by SHA-256), each a
//! run of its `verify:NAME` job: recorded, audited and alerted like a
//! scheduled one. Exit 1 on any mismatch.

use std::process::ExitCode;

use bulwark_ops::{Actor, VerifyJob};

use crate::wire::{Verified, VerifyNotRun, VerifyReportJson};
use crate::Globals;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// A configured [[backup]]; all of them when omitted
    name: Option<String>,
}

pub(crate) fn run(globals: &Globals, args: Args) -> anyhow::Result<ExitCode> {
    let loaded = super::load_config(globals)?;
    let config = loaded.config;
    let targets: Vec<String> = match &args.name {
        Some(n) => vec![config
            .backup(n)
            .ok_or_else(|| anyhow::anyhow!("no backup named {n:?} is configured"))?
            .name
            .clone()],
        None => config.backups.iter().map(|b| b.name.clone()).collect(),
    };
    if targets.is_empty() {
        anyhow::bail!("no [[backup]] is configured");
    }
    super::runtime()?.block_on(async {
        let instance = super::open_instance(globals, config).await?;
        super::cancel_jobs_on_signal(&instance);
        let mut failed = false;
        let mut out = Vec::new();
        for name in targets {
            let job = VerifyJob {
                config: instance.config.clone(),
                name: name.clone(),
                data_dir: instance.data_dir.clone(),
            };
            let (run, reports) = instance
                .scheduler
                .run_task(&format!("verify:{name}"), &job, &Actor::cli())
                .await?;
            // No report: the verification could not run at all.
            let Some(reports) = reports else {
                failed = true;
                if globals.json {
                    out.push(Verified::NotRun(VerifyNotRun {
                        backup: name,
                        error: run.summary,
                        ok: false,
                        outcome: run.outcome.as_str(),
                        run: run.id,
                    }));
                } else {
                    println!(
                        "{name}: {} ({})",
                        run.outcome.as_str().to_uppercase(),
                        run.summary
                    );
                }
                continue;
            };
            // With copies, one report per repository, each naming it.
            let copies = reports.len() > 1;
            for report in reports {
                failed |= !report.is_ok();
                if globals.json {
                    out.push(Verified::Report(VerifyReportJson::from(&report)));
                } else {
                    let name = if copies {
                        format!("{} ({})", report.backup, report.repo)
                    } else {
                        report.backup.clone()
                    };
                    println!(
                        "{}: {} (snapshot {}, {} of {} packs read, {} files compared)",
                        name,
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
        }
        if globals.json {
            crate::output::print_json(&out);
        }
        instance.store.close().await;
        Ok(if failed {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        })
    })
}
