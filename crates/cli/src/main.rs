//! The `bulwark` binary: parses arguments, calls `bulwark-ops`,
//! `bulwark-server` and `bulwark-repo`, prints, and maps errors to exit codes
//! (0 success, 1 a check failed, 2 usage or runtime error).
#![forbid(unsafe_code)]

mod cmd;
mod output;
mod repo_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "bulwark",
    version,
    about = "Uptime, SLOs, alerting, verified backups and DR drills in one binary"
)]
pub(crate) struct Cli {
    /// Config file [default: ./bulwark.toml]
    #[arg(long, global = true, env = "BULWARK_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory (SQLite database, secrets, logs)
    #[arg(
        long,
        global = true,
        env = "BULWARK_DATA_DIR",
        value_name = "DIR",
        default_value = "bulwark-data"
    )]
    data_dir: PathBuf,
    /// Print machine-readable JSON on stdout
    #[arg(long, global = true)]
    json: bool,
    /// Log line format on stderr
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the API, dashboard, scheduler and probes
    Serve(cmd::serve::Args),
    /// Inspect the configuration
    #[command(subcommand)]
    Config(cmd::config::Command),
    /// Manage API keys
    #[command(subcommand)]
    Keys(cmd::keys::Command),
    /// Check or export the audit trail
    #[command(subcommand)]
    Audit(cmd::audit::Command),
    #[command(flatten)]
    Repo(repo_cmd::RepoCommand),
}

/// Where the global options say things are.
pub(crate) struct Globals {
    /// The config path and whether the user named it (then it must exist).
    pub config_path: PathBuf,
    pub config_required: bool,
    pub data_dir: PathBuf,
    pub json: bool,
    pub log_format: LogFormat,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match try_main(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn try_main(cli: Cli) -> anyhow::Result<ExitCode> {
    let globals = Globals {
        config_required: cli.config.is_some(),
        config_path: cli.config.unwrap_or_else(|| PathBuf::from("bulwark.toml")),
        data_dir: cli.data_dir,
        json: cli.json,
        log_format: cli.log_format,
    };
    output::init_logging(globals.log_format, matches!(cli.command, Command::Serve(_)));
    match cli.command {
        Command::Serve(args) => cmd::serve::run(&globals, args),
        Command::Config(c) => cmd::config::run(&globals, c),
        Command::Keys(c) => cmd::keys::run(&globals, c),
        Command::Audit(c) => cmd::audit::run(&globals, c),
        Command::Repo(c) => repo_cmd::run(c, globals.json),
    }
}
