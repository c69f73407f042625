//! Repository commands (`init`, `backup`, `snapshots`, `restore`, `check`,
//! `forget`, `prune`, `export`, `copy`, `unlock`), restic-compatible, over
//! `bulwark-repo`. Progress goes to stderr as a bar on a terminal, or to
//! stdout as `{"message_type":"status",...}` lines with `--json` (restic's
//! convention), followed by one summary object.
//!
//! The lead wires this in `main.rs` as `#[command(flatten)] Repo(RepoCommand)`
//! and calls [`run`]. Exit codes: 0 ok; 1 the check failed, the restore could
//! not verify or write everything, or the backup skipped unreadable files;
//! errors (returned as `Err`) become 2 in `main`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bulwark_ops::{find_snapshot, Outcome};
use bulwark_repo::Cancel;
use bulwark_repo::{
    backup, check, forget, open_backend_with, prune, restore_with_progress, Backend,
    BackendOptions, BackupOptions, KdfParams, Protection, ReadData, Repository, RestoreOptions,
    RetentionPolicy,
};
use bulwark_server::api::SnapshotWire;
use tokio::signal::unix::SignalKind;

use crate::output::print_json;
use crate::wire;
use crate::{repo_audit, Globals};
use bulwark_ops::{command_stream, stdin_stream};

/// Where the repository is and how to unlock it.
#[derive(Debug, clap::Args)]
pub(crate) struct RepoArgs {
    /// Repository: a local path, s3:[http(s)://host[:port]/]bucket[/prefix], azure:container:/prefix or gs:bucket:/prefix; credentials from each cloud's standard variables (AWS_*, AZURE_STORAGE_CONNECTION_STRING or AZURE_ACCOUNT_NAME with AZURE_ACCOUNT_KEY/AZURE_ACCOUNT_SAS, GOOGLE_APPLICATION_CREDENTIALS or STORAGE_EMULATOR_HOST) [env: BULWARK_REPOSITORY, RESTIC_REPOSITORY]
    #[arg(short = 'r', long = "repo", value_name = "REPO")]
    repo: Option<String>,
    /// Backend option, as restic spells it: s3.storage-class, s3.kms-key-id, s3.sse, s3.path-style, s3.region, azure.access-tier, gs.storage-class, connections (repeatable)
    #[arg(short = 'o', long = "option", value_name = "KEY=VALUE")]
    options: Vec<String>,
    /// Do not use the local metadata cache of remote repositories ($XDG_CACHE_HOME/bulwark)
    #[arg(long)]
    no_cache: bool,
    /// Read the repository password from FILE (or put the password itself in BULWARK_PASSWORD or RESTIC_PASSWORD)
    #[arg(long, value_name = "FILE", env = "BULWARK_PASSWORD_FILE")]
    password_file: Option<PathBuf>,
}

// Repository commands. (A plain comment: a doc comment here would become the
// `about` of the command this enum is flattened into.)
#[derive(Debug, clap::Subcommand)]
pub(crate) enum RepoCommand {
    /// Create a new repository (restic format version 2, compression on)
    Init(InitArgs),
    /// Back up files and directories into a new snapshot
    Backup(BackupArgs),
    /// List snapshots
    Snapshots(SnapshotsArgs),
    /// Restore a snapshot into a directory
    Restore(RestoreArgs),
    /// Check the repository's structure and, optionally, its data
    Check(CheckArgs),
    /// Remove snapshots according to a retention policy
    Forget(ForgetArgs),
    /// Remove data no snapshot uses and repack partly used packs
    Prune(PruneArgs),
    /// Write a snapshot as a tar.gz archive
    Export(ExportArgs),
    /// Copy snapshots to another repository
    Copy(CopyArgs),
    /// Remove stale locks left by crashed processes
    Unlock(UnlockArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct UnlockArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// Remove every lock, not only stale ones
    #[arg(long)]
    remove_all: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct CopyArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// Destination repository
    #[arg(long, value_name = "REPO2")]
    to: String,
    /// Destination password file [env: BULWARK_TO_PASSWORD or RESTIC_PASSWORD2 hold the password; default: the source password]
    #[arg(long, value_name = "FILE")]
    to_password_file: Option<PathBuf>,
    /// Snapshots to copy (ids, prefixes or `latest`) [default: all]
    #[arg(value_name = "SNAPSHOT")]
    snapshots: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ExportArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// Snapshot id (or unique prefix), or `latest`
    #[arg(value_name = "SNAPSHOT")]
    snapshot: String,
    /// Archive to write; an existing directory gets a timestamped file name
    /// (`-o` is restic's backend option, as on every repository command)
    #[arg(long, value_name = "FILE.tar.gz")]
    output: PathBuf,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ForgetArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// Keep the N newest snapshots
    #[arg(long, value_name = "N", default_value_t = 0)]
    keep_last: u32,
    /// Keep the newest snapshot of each of the last N hours
    #[arg(long, value_name = "N", default_value_t = 0)]
    keep_hourly: u32,
    /// Keep the newest snapshot of each of the last N days
    #[arg(long, value_name = "N", default_value_t = 0)]
    keep_daily: u32,
    /// Keep the newest snapshot of each of the last N ISO weeks
    #[arg(long, value_name = "N", default_value_t = 0)]
    keep_weekly: u32,
    /// Keep the newest snapshot of each of the last N months
    #[arg(long, value_name = "N", default_value_t = 0)]
    keep_monthly: u32,
    /// Keep the newest snapshot of each of the last N years
    #[arg(long, value_name = "N", default_value_t = 0)]
    keep_yearly: u32,
    /// Keep snapshots newer than DUR (e.g. 1y2m3d4h) before the newest one
    #[arg(long, value_name = "DUR")]
    keep_within: Option<String>,
    /// Keep snapshots with tag T (repeatable; commas separate several)
    #[arg(long = "keep-tag", value_name = "T")]
    keep_tags: Vec<String>,
    /// Prune afterwards
    #[arg(long)]
    prune: bool,
    /// Only show what would be removed
    #[arg(long, short = 'n')]
    dry_run: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct PruneArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// Only show what would be removed
    #[arg(long, short = 'n')]
    dry_run: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct InitArgs {
    #[command(flatten)]
    repo: RepoArgs,
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("stream").args(["stdin", "stdin_from_command"])))]
pub(crate) struct BackupArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// Files and directories to back up
    #[arg(
        value_name = "PATH",
        required_unless_present = "stream",
        conflicts_with = "stream"
    )]
    paths: Vec<PathBuf>,
    /// Back up standard input as one file, /NAME in the snapshot (see --stdin-filename)
    #[arg(long, conflicts_with = "git")]
    stdin: bool,
    /// Run COMMAND (given after `--`, no shell) and back up its standard output as one file; no snapshot when it exits non-zero
    #[arg(long, requires = "command", conflicts_with = "git")]
    stdin_from_command: bool,
    /// The file name --stdin or --stdin-from-command saves at the snapshot's root [default: stdin]
    #[arg(long, value_name = "NAME", requires = "stream")]
    stdin_filename: Option<String>,
    /// The command of --stdin-from-command and its arguments
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
    /// Tag the snapshot (repeatable; commas separate several tags)
    #[arg(long = "tag", value_name = "T")]
    tags: Vec<String>,
    /// Leave out paths matching GLOB (repeatable; `/...` anchors at the root, else any depth)
    #[arg(long = "exclude", value_name = "GLOB")]
    excludes: Vec<String>,
    /// Host name to record [default: this machine's]
    #[arg(long)]
    host: Option<String>,
    /// Snapshot to compare with for unchanged files [default: latest of same host and paths]
    #[arg(long, value_name = "SNAPSHOT")]
    parent: Option<String>,
    /// Read every file, even those unchanged since the parent
    #[arg(long)]
    force: bool,
    /// Snapshot exactly the tree at HEAD of the git repository PATH (what
    /// `git archive HEAD` holds) and tag the commit id
    #[arg(long)]
    git: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct SnapshotsArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// Only snapshots with this tag (repeatable: any of them)
    #[arg(long = "tag", value_name = "T")]
    tags: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct RestoreArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// Snapshot id (or unique prefix), `latest`, or an archive name: `bulwark
    /// export`'s, or `app-backup-20231115_030000.tar.gz` for the snapshot
    /// taken in that second (UTC)
    #[arg(value_name = "SNAPSHOT")]
    snapshot: String,
    /// Directory to restore into
    #[arg(long, short = 't', value_name = "DIR")]
    target: PathBuf,
    /// Restore only PATH (a glob; `/...` anchors at the snapshot root), repeatable
    #[arg(long = "include", value_name = "PATH")]
    include: Vec<String>,
    /// Re-read every restored file and compare it with the snapshot
    #[arg(long)]
    verify: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct CheckArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// Also read, decrypt and hash every pack
    #[arg(long, conflicts_with = "read_data_subset")]
    read_data: bool,
    /// Read a random sample of the packs (`5%`) or one of t groups (`1/5`)
    #[arg(long, value_name = "N%")]
    read_data_subset: Option<String>,
}

/// Run a repository command.
///
/// # Errors
/// Usage and runtime errors (exit status 2 in `main`).
pub(crate) fn run(cmd: RepoCommand, globals: &Globals) -> anyhow::Result<ExitCode> {
    let json = globals.json;
    match cmd {
        RepoCommand::Init(a) => init(a, json),
        RepoCommand::Backup(a) => run_backup(a, globals),
        RepoCommand::Snapshots(a) => snapshots(a, json),
        RepoCommand::Restore(a) => run_restore(a, globals),
        RepoCommand::Check(a) => run_check(a, json),
        RepoCommand::Forget(a) => run_forget(a, json),
        RepoCommand::Prune(a) => run_prune(a.repo, a.dry_run, json),
        RepoCommand::Export(a) => run_export(a, json),
        RepoCommand::Copy(a) => run_copy(a, json),
        RepoCommand::Unlock(a) => {
            let loc = a.repo.location()?;
            let repo = a.repo.open_unindexed(&loc, &a.repo.password()?)?;
            let n = if a.remove_all {
                bulwark_repo::remove_all_locks(&repo)?
            } else {
                bulwark_repo::unlock_stale(&repo)?
            };
            if json {
                print_json(&wire::Unlocked::new(n));
            } else {
                println!("removed {n} locks");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl RepoArgs {
    fn location(&self) -> anyhow::Result<String> {
        self.repo
            .clone()
            .or_else(|| env_nonempty("BULWARK_REPOSITORY"))
            .or_else(|| env_nonempty("RESTIC_REPOSITORY"))
            .context("no repository given: use -r/--repo, BULWARK_REPOSITORY or RESTIC_REPOSITORY")
    }

    fn password(&self) -> anyhow::Result<String> {
        let file = self
            .password_file
            .clone()
            .or_else(|| env_nonempty("RESTIC_PASSWORD_FILE").map(PathBuf::from));
        if let Some(f) = file {
            let s = std::fs::read_to_string(&f)
                .with_context(|| format!("reading password file {}", f.display()))?;
            // restic trims surrounding white space from password files.
            return Ok(s.trim().to_string());
        }
        env_nonempty("BULWARK_PASSWORD")
            .or_else(|| env_nonempty("RESTIC_PASSWORD"))
            .context("no password given: use --password-file, BULWARK_PASSWORD or RESTIC_PASSWORD")
    }

    fn backend_options(&self) -> anyhow::Result<BackendOptions> {
        Ok(BackendOptions::parse(&self.options)?)
    }

    /// The backend of `repo` (this repository or another one a command
    /// names) with this command's `-o` options.
    fn backend(&self, repo: &str) -> anyhow::Result<Box<dyn Backend>> {
        Ok(open_backend_with(repo, &self.backend_options()?)?)
    }

    /// `repo` opened with `password`, this command's options and (unless
    /// `--no-cache`) the metadata cache; the index is not loaded.
    fn open_unindexed(&self, repo: &str, password: &str) -> anyhow::Result<Repository> {
        let cache = (!self.no_cache)
            .then(bulwark_repo::default_cache_dir)
            .flatten();
        Repository::open_location(
            repo,
            &self.backend_options()?,
            password.as_bytes(),
            cache.as_deref(),
        )
        .with_context(|| format!("opening repository {repo}"))
    }

    fn open(&self) -> anyhow::Result<Repository> {
        let loc = self.location()?;
        let mut repo = self.open_unindexed(&loc, &self.password()?)?;
        repo.load_index()
            .with_context(|| format!("loading the index of {loc}"))?;
        Ok(repo)
    }
}

/// Progress on stderr for terminals, JSON status lines on stdout with
/// `--json`, nothing otherwise; throttled so it costs nothing.
struct Progress {
    json: bool,
    bar: Option<indicatif::ProgressBar>,
    last: Instant,
}

impl Progress {
    fn new(json: bool, total: Option<u64>, what: &str) -> Progress {
        let bar = (!json && std::io::stderr().is_terminal()).then(|| {
            let b = match total {
                Some(t) => indicatif::ProgressBar::new(t),
                None => indicatif::ProgressBar::new_spinner(),
            };
            let template = if total.is_some() {
                format!("{what} {{bar:40}} {{pos}}/{{len}} {{elapsed}}")
            } else {
                format!("{what} {{spinner}} {{msg}} {{elapsed}}")
            };
            if let Ok(style) = indicatif::ProgressStyle::with_template(&template) {
                b.set_style(style);
            }
            b.enable_steady_tick(Duration::from_millis(200));
            b
        });
        Progress {
            json,
            bar,
            last: Instant::now(),
        }
    }

    /// Move to `pos`; `msg` gives the bar's text and the `--json` line.
    fn update<M: serde::Serialize>(&mut self, pos: u64, msg: impl FnOnce() -> (String, M)) {
        if let Some(b) = &self.bar {
            b.set_position(pos);
            if self.last.elapsed() > Duration::from_millis(100) {
                b.set_message(msg().0);
                self.last = Instant::now();
            }
        } else if self.json && self.last.elapsed() > Duration::from_secs(1) {
            print_json(&msg().1);
            self.last = Instant::now();
        }
    }

    fn finish(self) {
        if let Some(b) = self.bar {
            b.finish_and_clear();
        }
    }
}

fn init(a: InitArgs, json: bool) -> anyhow::Result<ExitCode> {
    let loc = a.repo.location()?;
    let pw = a.repo.password()?;
    let repo = Repository::init(a.repo.backend(&loc)?, pw.as_bytes(), KdfParams::DEFAULT)
        .with_context(|| format!("creating repository {loc}"))?;
    // Creating proved the bucket reachable; now what it does against
    // deletion (information, never a reason to fail).
    let protection = repo
        .backend()
        .protection()
        .with_context(|| format!("asking {loc} about versioning and Object Lock"))?;
    if json {
        print_json(&wire::Initialized::new(
            repo.id(),
            &loc,
            repo.version(),
            protection.as_ref(),
        ));
    } else {
        println!(
            "created repository {} at {loc} (format version {})",
            &repo.id()[..10],
            repo.version()
        );
        if let Some(p) = &protection {
            print!("{}", protection_text(p));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The lines `init` prints about a bucket's protection.
fn protection_text(p: &bulwark_repo::BucketProtection) -> String {
    let state = |s: &Protection| match s {
        Protection::Unknown(why) => format!("unknown ({why})"),
        other => other.as_str().to_string(),
    };
    let mut out = format!("bucket versioning: {}\n", state(&p.versioning));
    out.push_str(&format!("bucket object lock: {}", state(&p.object_lock)));
    if let Some(r) = &p.default_retention {
        out.push_str(&format!(" (default retention {r})"));
    }
    out.push('\n');
    if p.versioning != Protection::Enabled && p.object_lock != Protection::Enabled {
        out.push_str(
            "note: without versioning or Object Lock, whoever holds these credentials \
             can delete or overwrite the backups for good\n",
        );
    }
    out
}

/// Cancel `cancel` on SIGINT or SIGTERM (a thread waits for them), so a
/// backup stops cleanly: no snapshot, lock released, a running command
/// killed.
fn cancel_on_signal(cancel: &Cancel) {
    let cancel = cancel.clone();
    let Ok(rt) = crate::cmd::runtime() else {
        return;
    };
    // The handlers are installed before the backup starts.
    let ctrl_c = rt.block_on(async { tokio::signal::unix::signal(SignalKind::interrupt()) });
    let term = rt.block_on(async { tokio::signal::unix::signal(SignalKind::terminate()) });
    let (Ok(mut ctrl_c), Ok(mut term)) = (ctrl_c, term) else {
        return;
    };
    std::thread::spawn(move || {
        rt.block_on(async {
            tokio::select! {
                _ = ctrl_c.recv() => {}
                _ = term.recv() => {}
            }
        });
        cancel.cancel();
    });
}

fn run_backup(a: BackupArgs, globals: &Globals) -> anyhow::Result<ExitCode> {
    let json = globals.json;
    if a.git && a.paths.len() != 1 {
        bail!("backup --git takes exactly one PATH: the git work tree");
    }
    // (clap's `requires` does not hold for a `last` positional.)
    if !a.command.is_empty() && !a.stdin_from_command {
        bail!("a COMMAND after `--` needs --stdin-from-command");
    }
    if a.stdin && std::io::stdin().is_terminal() {
        bail!("backup --stdin reads a pipe or a file, not a terminal");
    }
    let cancel = Cancel::new();
    cancel_on_signal(&cancel);
    let loc = a.repo.location()?;
    let mut repo = a.repo.open()?;
    let parent = match &a.parent {
        Some(p) => Some(repo.find_snapshot(p)?.0),
        None => None,
    };
    let tags = a
        .tags
        .iter()
        .flat_map(|t| t.split(','))
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect();
    let opts = BackupOptions {
        paths: if a.stdin || a.stdin_from_command {
            Vec::new()
        } else {
            a.paths.clone()
        },
        excludes: a.excludes.clone(),
        tags,
        hostname: a.host.clone(),
        parent,
        force: a.force,
        time: None,
        cancel: cancel.clone(),
    };
    let name = a.stdin_filename.as_deref().unwrap_or("stdin");
    let source = if a.stdin_from_command {
        wire::BackupSource::Command {
            command: a.command.first().cloned(),
        }
    } else if a.stdin {
        wire::BackupSource::Stdin { stdin: true }
    } else {
        wire::BackupSource::Paths {
            git: a.git,
            paths: a.paths.clone(),
        }
    };
    let mut progress = Progress::new(json, None, "backup");
    let on_progress = |p: bulwark_repo::BackupProgress| {
        progress.update(p.bytes, || {
            (
                format!("{} files, {} MiB", p.files, p.bytes >> 20),
                wire::BackupStatus::from(&p),
            )
        })
    };
    let mut command = None;
    let result = if a.stdin_from_command {
        let (mut src, handle) = command_stream(&a.command, cancel.clone())
            .with_context(|| format!("cannot start command {:?}", a.command[0]))?;
        command = Some(handle);
        bulwark_repo::backup_stream(&mut repo, name, &mut src, &opts, on_progress)
    } else if a.stdin {
        let mut src = stdin_stream(cancel.clone());
        bulwark_repo::backup_stream(&mut repo, name, &mut src, &opts, on_progress)
    } else if a.git {
        bulwark_repo::backup_git(&mut repo, &a.paths[0], &opts, on_progress)
    } else {
        backup(&mut repo, &opts, on_progress)
    };
    progress.finish();
    let s = match result {
        Ok(s) => s,
        Err(e) => {
            let failure = command.as_ref().and_then(|c| c.failure());
            let error = failure.as_deref().map_or_else(
                || e.to_string(),
                |_| {
                    format!(
                        "command {:?} failed",
                        command.as_ref().map_or("", |c| c.program())
                    )
                },
            );
            let detail = wire::BackupDetail {
                source,
                outcome: wire::BackupOutcome::Failed { error },
            };
            repo_audit::record(globals, "backup.create", &loc, Outcome::Failure, &detail);
            if let Some(msg) = failure {
                // The command's failure, not the engine's: exit 1, one message.
                eprintln!("error: {msg}");
                return Ok(ExitCode::from(1));
            }
            return Err(e.into());
        }
    };
    let detail = wire::BackupDetail {
        source,
        outcome: wire::BackupOutcome::Saved {
            snapshot_id: s.snapshot_id.to_hex(),
        },
    };
    repo_audit::record(globals, "backup.create", &loc, Outcome::Success, &detail);
    if json {
        print_json(&wire::BackupDone::from(&s));
    } else {
        for e in &s.errors {
            eprintln!("warning: {e}");
        }
        println!(
            "files: {} new, {} changed, {} unmodified; {} dirs; {} bytes processed",
            s.files_new, s.files_changed, s.files_unmodified, s.dirs, s.bytes_processed
        );
        println!(
            "added {} bytes ({} stored) in {} packs",
            s.data_added, s.data_added_packed, s.packs_written
        );
        println!("snapshot {} saved", s.snapshot_id.short());
    }
    Ok(if s.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn snapshots(a: SnapshotsArgs, json: bool) -> anyhow::Result<ExitCode> {
    let loc = a.repo.location()?;
    let repo = a.repo.open_unindexed(&loc, &a.repo.password()?)?;
    let loaded = repo.load_snapshots()?;
    for (id, e) in &loaded.broken {
        eprintln!("warning: snapshot {}: {e}", id.short());
    }
    let list: Vec<_> = loaded
        .snapshots
        .into_iter()
        .filter(|(_, s)| a.tags.is_empty() || s.tags.iter().any(|t| a.tags.contains(t)))
        .collect();
    if json {
        // The snapshots `GET /api/v1/snapshots` lists for a configured backup.
        let wire: Vec<SnapshotWire> = list.iter().cloned().map(SnapshotWire::from).collect();
        crate::output::print_json(&wire);
    } else {
        println!(
            "{:<10} {:<25} {:<15} {:<20} paths",
            "id", "time", "host", "tags"
        );
        for (id, s) in &list {
            println!(
                "{:<10} {:<25} {:<15} {:<20} {}",
                id.short(),
                s.time.format("%Y-%m-%d %H:%M:%S %z").to_string(),
                s.hostname,
                s.tags.join(","),
                s.paths.join(" ")
            );
        }
        println!("{} snapshots", list.len());
    }
    Ok(ExitCode::SUCCESS)
}

fn run_restore(a: RestoreArgs, globals: &Globals) -> anyhow::Result<ExitCode> {
    let json = globals.json;
    let loc = a.repo.location()?;
    let repo = a.repo.open()?;
    let opts = RestoreOptions {
        target: a.target.clone(),
        include: a.include.clone(),
        verify: a.verify,
        ..Default::default()
    };
    let mut progress = Progress::new(json, None, "restore");
    // The same reading of the name as the restore API's, so a CI workflow
    // can restore by the file name our users' scripts gave their archives.
    let result = find_snapshot(&repo, &a.snapshot).and_then(|id| {
        restore_with_progress(&repo, &id.to_hex(), &opts, |p| {
            progress.update(p.bytes, || {
                let line = wire::RestoreStatus::from(&p);
                (format!("{} files, {} MiB", p.files, p.bytes >> 20), line)
            })
        })
    });
    progress.finish();
    let target = std::path::absolute(&a.target).unwrap_or_else(|_| a.target.clone());
    let s = match result {
        Ok(s) => s,
        Err(e) => {
            let detail = wire::RestoreFailedDetail {
                error: e.to_string(),
                snapshot: a.snapshot.clone(),
                target,
            };
            repo_audit::record(globals, "backup.restore", &loc, Outcome::Failure, &detail);
            return Err(e.into());
        }
    };
    let outcome = if s.errors.is_empty() {
        Outcome::Success
    } else {
        Outcome::Failure
    };
    let detail = wire::RestoredDetail::new(&s, target);
    repo_audit::record(globals, "backup.restore", &loc, outcome, &detail);
    if json {
        print_json(&wire::RestoreDone::from(&s));
    } else {
        for e in &s.skipped {
            eprintln!("skipped: {e}");
        }
        for e in &s.errors {
            eprintln!("error: {e}");
        }
        println!(
            "restored snapshot {} to {}: {} files, {} dirs, {} symlinks, {} bytes",
            s.snapshot_id.short(),
            a.target.display(),
            s.files,
            s.dirs,
            s.symlinks,
            s.bytes
        );
        if a.verify {
            println!("verified {} files", s.verified);
        }
    }
    Ok(if s.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn run_forget(a: ForgetArgs, json: bool) -> anyhow::Result<ExitCode> {
    let policy = RetentionPolicy {
        last: a.keep_last,
        hourly: a.keep_hourly,
        daily: a.keep_daily,
        weekly: a.keep_weekly,
        monthly: a.keep_monthly,
        yearly: a.keep_yearly,
        within: a.keep_within.as_deref().map(str::parse).transpose()?,
        tags: a
            .keep_tags
            .iter()
            .flat_map(|t| t.split(','))
            .filter(|t| !t.is_empty())
            .map(String::from)
            .collect(),
    };
    let repo = a.repo.open()?;
    let decisions = forget(&repo, &policy, a.dry_run)?;
    let removed: Vec<_> = decisions.iter().filter(|d| !d.keep).collect();
    if json {
        print_json(&wire::Forgot::new(a.dry_run, &decisions));
    } else {
        for d in &decisions {
            let what = if d.keep {
                format!("keep   ({})", d.reasons.join(", "))
            } else {
                "remove".to_string()
            };
            println!("{} {what}", d.id.short());
        }
        let verb = if a.dry_run { "would remove" } else { "removed" };
        println!("{verb} {} of {} snapshots", removed.len(), decisions.len());
    }
    drop(repo);
    if a.prune && !removed.is_empty() {
        return run_prune(a.repo, a.dry_run, json);
    }
    Ok(ExitCode::SUCCESS)
}

fn run_prune(r: RepoArgs, dry_run: bool, json: bool) -> anyhow::Result<ExitCode> {
    let mut repo = r.open()?;
    let s = prune(&mut repo, dry_run, &bulwark_repo::Cancel::default())?;
    if json {
        print_json(&wire::Pruned::new(dry_run, &s));
    } else {
        let verb = if dry_run { "would remove" } else { "removed" };
        println!(
            "{verb} {} unused blobs: {} packs deleted, {} repacked, {} unindexed; {} bytes freed, {} bytes rewritten",
            s.blobs_unused, s.packs_deleted, s.packs_repacked, s.packs_unindexed, s.bytes_removed, s.bytes_added
        );
        if s.temp_files_removed > 0 {
            println!(
                "{verb} {} temporary files of interrupted writes ({} bytes)",
                s.temp_files_removed, s.temp_bytes_removed
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn run_export(a: ExportArgs, json: bool) -> anyhow::Result<ExitCode> {
    let repo = a.repo.open()?;
    let (sid, snap) = repo.find_snapshot(&a.snapshot)?;
    let output = if a.output.is_dir() {
        let ts = snap
            .time
            .with_timezone(&chrono::Utc)
            .format("%Y%m%dT%H%M%SZ");
        a.output
            .join(format!("bulwark-{}-{ts}.tar.gz", sid.short()))
    } else {
        a.output.clone()
    };
    // Write beside the destination, then rename: no half archive under
    // the final name if anything fails.
    let file_name = output
        .file_name()
        .context("--output needs a file name")?
        .to_string_lossy()
        .into_owned();
    let tmp = output.with_file_name(format!(".{file_name}.partial"));
    let f = std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let mut w = std::io::BufWriter::new(f);
    let result = bulwark_repo::export_tar_gz(&repo, &sid.to_hex(), &mut w).and_then(|s| {
        use std::io::Write;
        w.flush().map_err(|e| bulwark_repo::Error::Io {
            op: "write",
            path: tmp.clone(),
            source: e,
        })?;
        Ok(s)
    });
    let s = match result {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e).context(format!("exporting snapshot {}", sid.short()));
        }
    };
    std::fs::rename(&tmp, &output).with_context(|| format!("renaming to {}", output.display()))?;
    if json {
        print_json(&wire::Exported::new(&sid, output.clone(), &s));
    } else {
        println!(
            "wrote snapshot {} to {} ({} entries, {} bytes)",
            sid.short(),
            output.display(),
            s.entries,
            s.bytes
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn run_copy(a: CopyArgs, json: bool) -> anyhow::Result<ExitCode> {
    let src = a.repo.open()?;
    let to_password = match &a.to_password_file {
        Some(f) => std::fs::read_to_string(f)
            .with_context(|| format!("reading password file {}", f.display()))?
            .trim()
            .to_string(),
        None => {
            match env_nonempty("BULWARK_TO_PASSWORD").or_else(|| env_nonempty("RESTIC_PASSWORD2")) {
                Some(p) => p,
                None => a.repo.password()?,
            }
        }
    };
    let mut dst = a.repo.open_unindexed(&a.to, &to_password)?;
    dst.load_index()
        .with_context(|| format!("loading the index of {}", a.to))?;
    let mut ids = Vec::new();
    for spec in &a.snapshots {
        ids.push(src.find_snapshot(spec)?.0);
    }
    let s = bulwark_repo::copy_snapshots(&src, &mut dst, &ids)?;
    if json {
        print_json(&wire::Copied::from(&s));
    } else {
        for (from, to) in &s.copied {
            println!(
                "snapshot {} copied to {} as {}",
                from.short(),
                a.to,
                to.short()
            );
        }
        for id in &s.skipped {
            println!("snapshot {} already in {}", id.short(), a.to);
        }
        println!("{} blobs copied", s.blobs);
    }
    Ok(ExitCode::SUCCESS)
}

/// `N%` (a random sample) or `n/t` (restic's groups).
fn parse_subset(s: &str) -> anyhow::Result<ReadData> {
    if let Some((n, t)) = s.split_once('/') {
        let n: u32 = n
            .trim()
            .parse()
            .with_context(|| format!("--read-data-subset {s:?}: bad group"))?;
        let t: u32 = t
            .trim()
            .parse()
            .with_context(|| format!("--read-data-subset {s:?}: bad group count"))?;
        if n == 0 || t == 0 || n > t {
            bail!("--read-data-subset {s:?}: need 1 <= n <= t");
        }
        return Ok(ReadData::Group(n, t));
    }
    let n: f64 = s
        .strip_suffix('%')
        .context("--read-data-subset takes a percentage such as 5% or a group such as 1/5")?
        .trim()
        .parse()
        .with_context(|| format!("--read-data-subset {s:?}: not a number"))?;
    if !(n > 0.0 && n <= 100.0) {
        bail!("--read-data-subset {s:?}: must be more than 0% and at most 100%");
    }
    Ok(ReadData::Subset(n))
}

fn run_check(a: CheckArgs, json: bool) -> anyhow::Result<ExitCode> {
    let read = match (&a.read_data_subset, a.read_data) {
        (Some(s), _) => parse_subset(s)?,
        (None, true) => ReadData::All,
        (None, false) => ReadData::None,
    };
    // `check` loads the index itself, file by file, reporting broken ones:
    // `open` would read every index file twice and stop at the first bad one.
    let loc = a.repo.location()?;
    let mut repo = a.repo.open_unindexed(&loc, &a.repo.password()?)?;
    let progress = std::sync::Mutex::new(Progress::new(json, None, "read data"));
    let cancel = bulwark_repo::Cancel::default();
    let report = check(&mut repo, read, &cancel, |done, total| {
        if let Ok(mut p) = progress.lock() {
            p.update(done, || {
                (
                    format!("{done}/{total} packs"),
                    wire::CheckStatus::new(done, total),
                )
            });
        }
    })?;
    if let Ok(p) = progress.into_inner() {
        p.finish();
    }
    if json {
        print_json(&wire::CheckDone::from(&report));
    } else {
        for w in &report.warnings {
            eprintln!("warning: {w}");
        }
        for e in &report.errors {
            println!("error: {}", e.message);
            if !e.snapshots.is_empty() {
                let s: Vec<_> = e.snapshots.iter().map(|s| s.short()).collect();
                println!("  affected snapshots: {}", s.join(" "));
            }
        }
        println!(
            "checked {} snapshots, {} trees, {} packs; read {} packs ({} blobs)",
            report.snapshots, report.trees, report.packs, report.packs_read, report.blobs_read
        );
        println!(
            "{}",
            if report.is_ok() {
                "no errors were found"
            } else {
                "check failed"
            }
        );
    }
    Ok(if report.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct TestCli {
        #[command(subcommand)]
        cmd: RepoCommand,
    }

    fn run_args(args: &[&str]) -> anyhow::Result<ExitCode> {
        let cli = TestCli::try_parse_from(std::iter::once("bulwark").chain(args.iter().copied()))?;
        let globals = Globals {
            config_path: PathBuf::from("/nonexistent/bulwark.toml"),
            config_required: false,
            data_dir: PathBuf::from("/nonexistent/bulwark-data"),
            json: true,
            log_format: crate::LogFormat::Text,
        };
        run(cli.cmd, &globals)
    }

    /// The commands end to end, through argument parsing, with the exit
    /// codes of the contract: 0 ok, 1 check failed.
    #[test]
    fn repository_commands_end_to_end() {
        let tmp = tempfile::tempdir().unwrap();
        let pw = tmp.path().join("pw");
        std::fs::write(&pw, "secret\n").unwrap();
        let src = tmp.path().join("src");
        std::fs::create_dir_all(src.join("d")).unwrap();
        std::fs::write(src.join("d/f"), b"data ".repeat(1000)).unwrap();
        let repo = tmp.path().join("repo");
        let (r, p, s) = (
            repo.to_str().unwrap(),
            pw.to_str().unwrap(),
            src.to_str().unwrap(),
        );
        let ok = ExitCode::SUCCESS;
        assert_eq!(
            run_args(&["init", "-r", r, "--password-file", p]).unwrap(),
            ok
        );
        assert!(run_args(&["init", "-r", r, "--password-file", p]).is_err());
        let backup = [
            "backup",
            "-r",
            r,
            "--password-file",
            p,
            s,
            "--tag",
            "a,b",
            "--exclude",
            "*.tmp",
        ];
        assert_eq!(run_args(&backup).unwrap(), ok);
        assert_eq!(
            run_args(&["snapshots", "-r", r, "--password-file", p]).unwrap(),
            ok
        );
        assert_eq!(
            run_args(&[
                "check",
                "-r",
                r,
                "--password-file",
                p,
                "--read-data-subset",
                "50%"
            ])
            .unwrap(),
            ok
        );
        let target = tmp.path().join("t");
        let t = target.to_str().unwrap();
        let restore = [
            "restore",
            "-r",
            r,
            "--password-file",
            p,
            "latest",
            "--target",
            t,
            "--verify",
        ];
        assert_eq!(run_args(&restore).unwrap(), ok);
        let restored = target.join(src.strip_prefix("/").unwrap()).join("d/f");
        assert_eq!(std::fs::read(restored).unwrap(), b"data ".repeat(1000));
        let out = tmp.path().join("x.tar.gz");
        let export = [
            "export",
            "-r",
            r,
            "--password-file",
            p,
            "latest",
            "--output",
            out.to_str().unwrap(),
        ];
        assert_eq!(run_args(&export).unwrap(), ok);
        assert!(out.metadata().unwrap().len() > 0);
        assert!(
            run_args(&["forget", "-r", r, "--password-file", p]).is_err(),
            "no policy"
        );
        assert_eq!(
            run_args(&[
                "forget",
                "-r",
                r,
                "--password-file",
                p,
                "--keep-last",
                "1",
                "--prune"
            ])
            .unwrap(),
            ok
        );

        // Damage every pack: the check fails with exit status 1.
        for e in walk(&repo.join("data")) {
            let mut perm = std::fs::metadata(&e).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perm.set_readonly(false);
            std::fs::set_permissions(&e, perm).unwrap();
            let mut b = std::fs::read(&e).unwrap();
            b[0] ^= 1;
            std::fs::write(&e, b).unwrap();
        }
        let read = ["check", "-r", r, "--password-file", p, "--read-data"];
        assert_eq!(run_args(&read).unwrap(), ExitCode::from(1));
        // A wrong password is an error (exit status 2 in main).
        std::fs::write(&pw, "wrong").unwrap();
        assert!(run_args(&["snapshots", "-r", r, "--password-file", p]).is_err());
    }

    fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
        out
    }

    #[test]
    fn subset_specs() {
        let ok = [
            ("5%", ReadData::Subset(5.0)),
            ("100%", ReadData::Subset(100.0)),
            ("0.5%", ReadData::Subset(0.5)),
            ("1/5", ReadData::Group(1, 5)),
            ("5/5", ReadData::Group(5, 5)),
        ];
        for (input, want) in ok {
            assert_eq!(parse_subset(input).unwrap(), want, "{input}");
        }
        for bad in ["5", "0%", "101%", "x%", "", "0/5", "6/5", "1/0", "a/b"] {
            assert!(parse_subset(bad).is_err(), "{bad}");
        }
    }
}
