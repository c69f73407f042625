use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use bulwark_ops::{export_audit, verify_audit};

use crate::Globals;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Check the hash chain; exit 1 naming the first bad record
    Verify,
    /// Write the whole trail, oldest first, as NDJSON
    Export {
        /// Write here (atomically) instead of stdout
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

pub(crate) fn run(globals: &Globals, command: Command) -> anyhow::Result<ExitCode> {
    let loaded = super::load_config(globals)?;
    super::runtime()?.block_on(async {
        let store = super::open_store(globals, &loaded.config).await?;
        let code = match command {
            Command::Verify => verify(globals, &store).await?,
            Command::Export { output } => {
                export(&store, output).await?;
                ExitCode::SUCCESS
            }
        };
        store.close().await;
        Ok(code)
    })
}

async fn verify(globals: &Globals, store: &bulwark_ops::Store) -> anyhow::Result<ExitCode> {
    let v = verify_audit(store).await?;
    if globals.json {
        crate::output::print_json(&crate::wire::AuditVerification::from(&v));
    } else {
        match &v.first_break {
            None => println!("audit trail intact: {} records, head {}", v.records, v.head),
            Some(b) => println!(
                "audit trail BROKEN at record {}: {} ({} records verified before it)",
                b.seq, b.reason, v.records
            ),
        }
    }
    Ok(if v.is_intact() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn export(store: &bulwark_ops::Store, output: Option<PathBuf>) -> anyhow::Result<()> {
    match output {
        None => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            export_audit(store, &mut out).await?;
            out.flush()?;
        }
        Some(path) => {
            // Written beside the target and renamed, so a reader never sees
            // half an export.
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let tmp = tempfile::NamedTempFile::new_in(dir)
                .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
            let mut out = std::io::BufWriter::new(tmp);
            let n = export_audit(store, &mut out).await?;
            let tmp = out.into_inner().map_err(|e| e.into_error())?;
            tmp.as_file().sync_all()?;
            tmp.persist(&path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("wrote {n} records to {}", path.display());
        }
    }
    Ok(())
}
