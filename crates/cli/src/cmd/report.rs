//! `bulwark report --period YYYY-MM [--format html|md|json] [--output FILE]`:
//! the monthly reliability evidence report.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use bulwark_ops::{gather_report, report_html, report_json, report_markdown, Period};

use crate::Globals;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    Html,
    Md,
    Json,
}

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The month, YYYY-MM (UTC)
    #[arg(long, value_name = "YYYY-MM")]
    period: String,
    /// Output format; `--json` implies json
    #[arg(long, value_enum, default_value_t = Format::Md)]
    format: Format,
    /// Write here (atomically) instead of stdout
    #[arg(long, short)]
    output: Option<PathBuf>,
}

pub(crate) fn run(globals: &Globals, args: Args) -> anyhow::Result<ExitCode> {
    // Checked before anything is opened, so a typo costs nothing.
    let period = Period::parse(&args.period)?;
    let format = if globals.json {
        Format::Json
    } else {
        args.format
    };
    let loaded = super::load_config(globals)?;
    let config = loaded.config;
    let data = super::runtime()?.block_on(async {
        let store = super::open_store(globals, &config).await?;
        let r = gather_report(&store, &config, period, chrono::Utc::now()).await;
        store.close().await;
        anyhow::Ok(r?)
    })?;
    let text = match format {
        Format::Json => report_json(&data),
        Format::Md => report_markdown(&data),
        Format::Html => report_html(&data),
    };
    match args.output {
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
        }
        Some(path) => {
            // Beside the target and renamed, so an archive never holds half
            // a report.
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let mut tmp = tempfile::NamedTempFile::new_in(dir)
                .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
            tmp.write_all(text.as_bytes())?;
            tmp.as_file().sync_all()?;
            tmp.persist(&path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
