//! `bulwark ops check`: one pass/fail table over everything; exit 1 if any
//! row fails.

use std::process::ExitCode;

use bulwark_ops::{all_checks_ok, run_ops_check, CheckRow};

use bulwark_server::api::OpsCheck;

use crate::Globals;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Config, probes, SLO budgets, backups, verifications, drills, secrets, audit chain
    Check,
}

fn print(globals: &Globals, rows: &[CheckRow]) {
    if globals.json {
        // The document `GET /api/v1/ops/check` serves.
        crate::output::print_json(&OpsCheck::from(rows.to_vec()));
        return;
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.area.to_string(),
                r.name.clone(),
                if r.ok { "ok" } else { "FAIL" }.to_string(),
                r.detail.clone(),
            ]
        })
        .collect();
    crate::output::print_table(&["CHECK", "NAME", "RESULT", "DETAIL"], &table);
    let failed = rows.iter().filter(|r| !r.ok).count();
    if failed == 0 {
        println!("all {} checks passed", rows.len());
    } else {
        println!("{failed} of {} checks FAILED", rows.len());
    }
}

pub(crate) fn run(globals: &Globals, command: Command) -> anyhow::Result<ExitCode> {
    let Command::Check = command;
    // An invalid config is a failed row (exit 1), not a runtime error: it is
    // the first thing this check exists to catch. Nothing else can be judged
    // without it, so the table stops there.
    let loaded =
        match bulwark_ops::load_settings(&globals.config_path, globals.config_required, &|k| {
            std::env::var(k).ok()
        }) {
            Ok(l) => l,
            Err(errors) => {
                let n = errors.errors().count();
                eprintln!("{errors}");
                print(
                    globals,
                    &[CheckRow::new(
                        "config",
                        &globals.config_path.display().to_string(),
                        false,
                        format!("{n} error(s); see above"),
                    )],
                );
                return Ok(ExitCode::from(1));
            }
        };
    // Warnings go to stderr; the config row says it is valid, as the API's.
    for warning in &loaded.warnings {
        eprintln!("{warning}");
    }
    let config = loaded.config;
    // Probes run concurrently; give them worker threads as `uptime check` does.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let store = super::open_store(globals, &config).await?;
        let result = run_ops_check(&store, &config, &globals.data_dir, chrono::Utc::now()).await;
        store.close().await;
        let rows = result?;
        print(globals, &rows);
        Ok(if all_checks_ok(&rows) {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    })
}
