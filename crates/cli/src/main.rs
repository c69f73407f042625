//! The `bulwark` binary: parses arguments, calls `bulwark-ops`,
//! `bulwark-server` and `bulwark-repo`, prints, and maps errors to exit codes
//! (0 success, 1 a check failed, 2 usage or runtime error).
// One exception: the allocator setting in `alloc` (a libc call).
#![deny(unsafe_code)]

mod alloc;
mod cmd;
mod output;
mod repo_audit;
mod repo_cmd;
mod wire;

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
    /// Probe monitors
    #[command(subcommand)]
    Uptime(cmd::uptime::Command),
    /// SLOs and error budgets
    #[command(subcommand)]
    Slo(cmd::slo::Command),
    /// Silence alert notifications
    #[command(subcommand)]
    Silence(cmd::silence::Command),
    /// Managed secrets: ages, rotation
    #[command(subcommand)]
    Secrets(cmd::secrets::Command),
    /// Scheduled jobs: next runs, history, run one now
    #[command(subcommand)]
    Jobs(cmd::jobs::Command),
    /// Verify configured backups: check, read-data subset, sample restore by SHA-256
    Verify(cmd::verify::Args),
    /// Disaster-recovery drills: run one, show recent reports
    #[command(subcommand)]
    Drill(cmd::drill::Command),
    /// Operational checks: one pass/fail table over everything
    #[command(subcommand)]
    Ops(cmd::ops::Command),
    /// Monthly reliability evidence report (html, md or json)
    Report(cmd::report::Args),
    /// Event export: ship lines to a [[sink]], list the event stream
    #[command(subcommand)]
    Events(cmd::events::Command),
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
    alloc::tune();
    quiet_on_closed_stdout();
    let cli = Cli::parse();
    match try_main(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::from(2)
        }
    }
}

/// The error and its causes on one line, each cause once: errors that
/// already quote their source in their own message (the repository
/// engine's do) would otherwise print it twice.
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.ends_with(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line.replace('\n', " ")
}

/// `bulwark jobs list | head -1`: the reader went away, so there is nobody
/// left to tell anything. Rust ignores SIGPIPE, and `println!` then panics
/// on the broken pipe; end quietly instead, as Unix tools do.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
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
        Command::Uptime(c) => cmd::uptime::run(&globals, c),
        Command::Slo(c) => cmd::slo::run(&globals, c),
        Command::Silence(c) => cmd::silence::run(&globals, c),
        Command::Secrets(c) => cmd::secrets::run(&globals, c),
        Command::Events(c) => cmd::events::run(&globals, c),
        Command::Jobs(c) => cmd::jobs::run(&globals, c),
        Command::Verify(a) => cmd::verify::run(&globals, a),
        Command::Drill(c) => cmd::drill::run(&globals, c),
        Command::Ops(c) => cmd::ops::run(&globals, c),
        Command::Report(a) => cmd::report::run(&globals, a),
        Command::Repo(c) => repo_cmd::run(c, &globals),
    }
}
