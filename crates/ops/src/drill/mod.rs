//! Disaster-recovery drills (`[[drill]]`): prove a backup can be turned back
//! into a running service, and measure how long it takes.
//!
//! Steps, each timed and recorded: validate the config; find the latest
//! snapshot and compare its age (the RPO) with `rpo_target`; restore it into
//! a fresh sandbox; verify every restored file against the snapshot by
//! SHA-256; run `start` inside the restored tree and probe `health_url`
//! until it answers 2xx or `timeout` passes; stop it and remove the sandbox.
//! RTO is restore start to healthy (to verified, without `start`). The
//! report is stored, audited, and written to `logs/dr_report_<UTC>.json`.

pub(crate) mod config;
mod database;
mod jobs;
mod select;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::audit::{AuditedTx, Entry, Outcome};
use crate::config::{Config, DrillConfig};
use crate::identity::Actor;
use crate::store::{Store, StoreError};
use crate::time::Timestamp;

pub use jobs::{jobs, DrillJob, DRILL_SLACK};
pub use select::SnapshotSpec;

/// The version of the stored report document (`drill_reports.report` and
/// `logs/dr_report_*.json`). Reports stored before the field existed are
/// version 1.
pub const REPORT_SCHEMA: u32 = 1;

fn schema_1() -> u32 {
    1
}

/// One timed step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub name: String,
    pub ok: bool,
    pub started_at: DateTime<Utc>,
    pub duration_ms: u64,
    pub detail: String,
}

/// A drill's report. Its serde form is the stored document (versioned by
/// `schema`, read back by [`last`]); clients see the server's wire type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrillReport {
    #[serde(default = "schema_1")]
    pub schema: u32,
    pub id: String,
    pub drill: String,
    pub backup: String,
    pub actor: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub passed: bool,
    /// The first step that failed.
    pub failed_step: Option<String>,
    pub snapshot: Option<String>,
    /// How the snapshot was chosen (`older-than:90d: the newest snapshot
    /// at least that old`); none in reports made before drills could
    /// choose.
    #[serde(default)]
    pub snapshot_choice: Option<String>,
    pub steps: Vec<Step>,
    pub rto_seconds: Option<f64>,
    pub rto_target_seconds: Option<u64>,
    pub rto_met: Option<bool>,
    /// The restored snapshot's age when the drill started.
    pub rpo_seconds: Option<f64>,
    pub rpo_target_seconds: Option<u64>,
    pub rpo_met: Option<bool>,
    /// One per copy of the backup (`repos = [...]`), in order; empty in
    /// reports made before copies were checked.
    #[serde(default)]
    pub copies: Vec<CopyCheck>,
}

/// Whether a copy of the backup holds the snapshot the drill restored,
/// and how old what it holds is against the RPO target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CopyCheck {
    pub repo: String,
    /// The drill's snapshot (the same tree and time: a copy gets a new id)
    /// is in the copy.
    pub present: bool,
    /// Its id in the copy, or the copy's newest snapshot when absent.
    pub snapshot: Option<String>,
    /// That snapshot's age when the drill started.
    pub age_seconds: Option<f64>,
    pub rpo_met: Option<bool>,
    /// Why the copy could not be read.
    pub error: Option<String>,
}

impl CopyCheck {
    /// Readable, and not older than the RPO target.
    pub fn ok(&self) -> bool {
        self.error.is_none() && self.rpo_met != Some(false)
    }
}

/// Judges one copy from its snapshots as `(id, tree, time)`: looks for
/// the drill's snapshot (`tree` taken at `time`), else takes the newest.
pub fn check_copy(
    repo: &str,
    wanted: (bulwark_repo::Id, DateTime<Utc>),
    found: Result<Vec<(bulwark_repo::Id, bulwark_repo::Id, DateTime<Utc>)>, String>,
    started_at: DateTime<Utc>,
    rpo_target: Option<Duration>,
) -> CopyCheck {
    let snaps = match found {
        Ok(s) => s,
        Err(e) => {
            return CopyCheck {
                repo: repo.to_string(),
                present: false,
                snapshot: None,
                age_seconds: None,
                rpo_met: rpo_target.map(|_| false),
                error: Some(e),
            }
        }
    };
    let same = snaps
        .iter()
        .find(|(_, tree, time)| *tree == wanted.0 && *time == wanted.1);
    let chosen = same.or_else(|| snaps.iter().max_by_key(|(_, _, time)| *time));
    let age = chosen.map(|(_, _, time)| (started_at - *time).to_std().unwrap_or_default());
    CopyCheck {
        repo: repo.to_string(),
        present: same.is_some(),
        snapshot: chosen.map(|(id, _, _)| id.to_hex()),
        age_seconds: age.map(|a| a.as_secs_f64()),
        rpo_met: match (age, rpo_target) {
            (Some(a), Some(t)) => Some(a <= t),
            (None, Some(_)) => Some(false),
            _ => None,
        },
        error: None,
    }
}

/// A copy's check in a few words, for the `copies` step.
fn describe_copy(c: &CopyCheck) -> String {
    if let Some(e) = &c.error {
        return format!("{}: cannot read: {e}", c.repo);
    }
    let Some(id) = &c.snapshot else {
        return format!("{}: no snapshot", c.repo);
    };
    let age = crate::config::format_duration(Duration::from_secs(
        c.age_seconds.unwrap_or_default() as u64,
    ));
    let what = if c.present {
        format!("has the snapshot as {}", &id[..8.min(id.len())])
    } else {
        format!("lacks the snapshot; newest {}", &id[..8.min(id.len())])
    };
    let rpo = match c.rpo_met {
        Some(true) => ", within rpo_target",
        Some(false) => ", older than rpo_target",
        None => "",
    };
    format!("{}: {what}, {age} old{rpo}", c.repo)
}

/// Errors that stop a drill from producing a report at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DrillError {
    #[error("no drill named {0:?} is configured")]
    Unknown(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn since(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Runs the step `name`, recording how long it took and what it said.
/// URLs in what it said are cut to their origin: analysts read reports,
/// and a `health_url` may carry a token.
async fn step<T>(
    steps: &mut Vec<Step>,
    name: &str,
    f: impl std::future::Future<Output = Result<(T, String), String>>,
) -> Option<T> {
    let started_at = Utc::now();
    let t0 = Instant::now();
    let result = f.await;
    let duration_ms = since(t0);
    match result {
        Ok((value, detail)) => {
            steps.push(Step {
                name: name.to_string(),
                ok: true,
                started_at,
                duration_ms,
                detail: crate::redact::urls_in(&detail),
            });
            Some(value)
        }
        Err(detail) => {
            let detail = crate::redact::urls_in(&detail);
            tracing::error!(step = name, error = %detail, "drill step failed");
            steps.push(Step {
                name: name.to_string(),
                ok: false,
                started_at,
                duration_ms,
                detail,
            });
            None
        }
    }
}

/// The running app; killed (its whole process group) on drop too, so a
/// failed or cancelled drill leaves nothing behind.
struct App {
    child: tokio::process::Child,
}

impl App {
    async fn stop(&mut self) -> String {
        if let Some(pid) = self.child.id() {
            // `start` is run by `sh -c`, which may fork the real server:
            // signal the whole group it leads.
            let _ = tokio::process::Command::new("kill")
                .args(["-TERM", "--", &format!("-{pid}")])
                .status()
                .await;
        }
        match tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await {
            Ok(Ok(status)) => format!("stopped ({status})"),
            _ => {
                let _ = self.child.kill().await;
                "killed after 10s".to_string()
            }
        }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status();
        }
    }
}

/// Runs `drill` now on behalf of `actor`: every step, the report stored,
/// audited (`drill.run`) and written to `logs/dr_report_<UTC>.json`.
///
/// # Errors
/// Only when the report cannot be stored; a failing step makes a failed
/// report, not an error.
pub async fn run(
    store: &Store,
    config: &Config,
    drill: &DrillConfig,
    data_dir: &Path,
    actor: &Actor,
    cancel: &bulwark_repo::Cancel,
) -> Result<DrillReport, DrillError> {
    let started_at = Utc::now();
    let mut steps = Vec::new();
    let mut snapshot = None;
    let mut snapshot_choice = None;
    let mut rpo = None;
    let mut rto = None;
    // The restored snapshot's tree and time, to find it in the copies.
    let mut restored_snapshot = None;

    let backup = step(&mut steps, "validate_config", async {
        let b = config
            .backup(&drill.backup)
            .ok_or_else(|| format!("drill names unknown backup {:?}", drill.backup))?;
        Ok((b.clone(), format!("backup {:?} at {}", b.name, b.repo)))
    })
    .await;

    let latest = match &backup {
        None => None,
        Some(b) => {
            step(&mut steps, "snapshot_age", async {
                let b = b.clone();
                let spec = drill.snapshot.clone();
                let (found, how) = tokio::task::spawn_blocking(move || {
                    let snaps = crate::backups::snapshots(&b).map_err(|e| e.to_string())?;
                    let listed: Vec<(String, DateTime<Utc>)> = snaps
                        .iter()
                        .map(|(id, s)| (id.to_hex(), s.time.with_timezone(&Utc)))
                        .collect();
                    let (i, how) =
                        select::choose(&listed, started_at, &spec, rand::random::<u64>())
                            .map_err(|e| format!("no snapshot to restore ({spec}): {e}"))?;
                    let (id, snap) = &snaps[i];
                    Ok::<_, String>(((*id, snap.time.with_timezone(&Utc), snap.tree), how))
                })
                .await
                .map_err(|e| e.to_string())??;
                snapshot_choice = Some(how.clone());
                let age = (started_at - found.1).to_std().unwrap_or_default();
                rpo = Some(age);
                restored_snapshot = Some((found.2, found.1));
                snapshot = Some(found.0.to_hex());
                let detail = format!(
                    "snapshot {} ({how}) taken {}, {} old",
                    &found.0.to_hex()[..8],
                    found.1.to_rfc3339(),
                    crate::config::format_duration(Duration::from_secs(age.as_secs()))
                );
                match drill.rpo_target {
                    Some(target) if age > target => Err(format!(
                        "{detail}: older than rpo_target {}",
                        crate::config::format_duration(target)
                    )),
                    _ => Ok((found.0, detail)),
                }
            })
            .await
        }
    };

    let mut copies = Vec::new();
    if let (Some(b), Some(wanted)) = (&backup, restored_snapshot) {
        if !b.copies.is_empty() {
            let _ = step(&mut steps, "copies", async {
                for repo in &b.copies {
                    let (cfg, r) = (b.clone(), repo.clone());
                    let found = tokio::task::spawn_blocking(move || {
                        crate::backups::snapshots_at(&cfg, &r)
                            .map(|snaps| {
                                snaps
                                    .into_iter()
                                    .map(|(id, s)| (id, s.tree, s.time.with_timezone(&Utc)))
                                    .collect()
                            })
                            .map_err(|e| e.to_string())
                    })
                    .await
                    .unwrap_or_else(|e| Err(format!("task failed: {e}")));
                    copies.push(check_copy(
                        repo,
                        wanted,
                        found,
                        started_at,
                        drill.rpo_target,
                    ));
                }
                let detail = copies
                    .iter()
                    .map(describe_copy)
                    .collect::<Vec<_>>()
                    .join("; ");
                if copies.iter().all(CopyCheck::ok) {
                    Ok(((), detail))
                } else {
                    Err(detail)
                }
            })
            .await;
        }
    }

    let sandbox = tempfile::Builder::new()
        .prefix(&format!("drill-{}-", drill.name))
        .tempdir_in({
            let dir = data_dir.join("drills");
            let _ = crate::files::private_dir(&dir);
            dir
        })
        .or_else(|_| tempfile::Builder::new().prefix("bulwark-drill-").tempdir());
    let recovery_started = Instant::now();
    let mut app = None;
    // A database backup's throwaway PostgreSQL, stopped by the cleanup
    // step (and by its drop, whatever happens before that).
    let mut cluster = None;

    if let (Some(b), Some(sid), Ok(sandbox)) = (&backup, &latest, &sandbox) {
        let target = sandbox.path().to_path_buf();
        let restored = step(&mut steps, "restore", async {
            let (b, sid, target) = (b.clone(), *sid, target.clone());
            let cancel = cancel.clone();
            tokio::task::spawn_blocking(move || {
                let repo = crate::backups::open(&b).map_err(|e| e.to_string())?;
                let opts = bulwark_repo::RestoreOptions {
                    target,
                    cancel,
                    ..Default::default()
                };
                let summary = bulwark_repo::restore(&repo, &sid.to_hex(), &opts)
                    .map_err(|e| format!("restore failed: {e}"))?;
                if !summary.errors.is_empty() {
                    return Err(format!(
                        "restore reported errors: {}",
                        summary.errors.join("; ")
                    ));
                }
                Ok((
                    (),
                    format!("{} files, {} bytes", summary.files, summary.bytes),
                ))
            })
            .await
            .map_err(|e| e.to_string())?
        })
        .await;

        let verified = match restored {
            None => None,
            Some(()) => {
                step(&mut steps, "verify_files", async {
                    let (b, sid, target) = (b.clone(), *sid, target.clone());
                    tokio::task::spawn_blocking(move || {
                        let repo = crate::backups::open(&b).map_err(|e| e.to_string())?;
                        let snap = repo.load_snapshot(&sid).map_err(|e| e.to_string())?;
                        let mut files = Vec::new();
                        crate::backups::walk(&repo, &snap.tree, "", &mut files)?;
                        let bad: Vec<String> = files
                            .iter()
                            .filter_map(|f| crate::backups::compare_restored(&repo, f, &target))
                            .map(|m| format!("{}: {}", m.path, m.reason))
                            .collect();
                        if bad.is_empty() {
                            Ok(((), format!("{} files match the snapshot", files.len())))
                        } else {
                            Err(format!("{} files differ: {}", bad.len(), bad.join("; ")))
                        }
                    })
                    .await
                    .map_err(|e| e.to_string())?
                })
                .await
            }
        };

        let verified = match (&b.kind, verified) {
            (crate::config::BackupKind::Postgres(_), Some(())) => {
                let loaded =
                    database::run_steps(&mut steps, drill, sandbox.path(), &target, &mut cluster)
                        .await;
                loaded.then_some(())
            }
            (_, Some(())) if !drill.checks.is_empty() => {
                step(&mut steps, "checks", async {
                    Err::<((), String), _>(
                        "`checks` need a database backup (kind = \"postgres\")".to_string(),
                    )
                })
                .await
            }
            (_, v) => v,
        };

        let expected = match (&restored, drill.expect_files.is_empty()) {
            (Some(()), false) => {
                step(&mut steps, "expect_files", async {
                    let app_dir = app_dir(b, &target);
                    let missing = missing_files(&drill.expect_files, &target, &app_dir);
                    if missing.is_empty() {
                        Ok((
                            (),
                            format!("all {} expected files restored", drill.expect_files.len()),
                        ))
                    } else {
                        Err(format!(
                            "{} of {} expected files missing: {}",
                            missing.len(),
                            drill.expect_files.len(),
                            missing.join(", ")
                        ))
                    }
                })
                .await
            }
            _ => Some(()),
        };

        if verified.is_some() && expected.is_some() {
            match &drill.start {
                None => rto = Some(recovery_started.elapsed()),
                Some(start) => {
                    // The restored tree of the backup's first path is where
                    // the app lives, as it did on the original machine.
                    let app_dir = app_dir(b, &target);
                    let started = step(&mut steps, "start", async {
                        let mut cmd = tokio::process::Command::new("sh");
                        let mut own = vec![
                            ("BULWARK_DRILL_NAME", drill.name.clone()),
                            ("BULWARK_DRILL_SANDBOX", target.display().to_string()),
                        ];
                        if let Some(port) = drill.health_url.as_deref().and_then(url_port) {
                            own.push(("BULWARK_DRILL_PORT", port.to_string()));
                        }
                        crate::child_env::apply(&mut cmd, &drill.env, &own);
                        cmd.arg("-c")
                            .arg(start)
                            .current_dir(&app_dir)
                            .stdin(std::process::Stdio::null())
                            .stdout(std::process::Stdio::null())
                            .stderr(std::process::Stdio::null())
                            .kill_on_drop(true);
                        #[cfg(unix)]
                        cmd.process_group(0);
                        let child = cmd
                            .spawn()
                            .map_err(|e| format!("cannot run start command: {e}"))?;
                        Ok((App { child }, format!("`{start}` in {}", app_dir.display())))
                    })
                    .await;
                    if let Some(a) = started {
                        app = Some(a);
                    }
                    if let (Some(a), Some(url)) = (app.as_mut(), &drill.health_url) {
                        let healthy = step(&mut steps, "health", async {
                            wait_healthy(a, url, drill.timeout).await.map(|d| ((), d))
                        })
                        .await;
                        if healthy.is_some() {
                            rto = Some(recovery_started.elapsed());
                        }
                    } else if app.is_some() {
                        rto = Some(recovery_started.elapsed());
                    }
                }
            }
        }
    } else if let Err(e) = &sandbox {
        steps.push(Step {
            name: "restore".to_string(),
            ok: false,
            started_at: Utc::now(),
            duration_ms: 0,
            detail: format!("cannot create a sandbox directory: {e}"),
        });
    }

    let _ = step(&mut steps, "cleanup", async {
        let mut said = Vec::new();
        if let Some(mut a) = app.take() {
            said.push(format!("app {}", a.stop().await));
        }
        // Stopped before the sandbox goes; a failure here still lets the
        // sandbox be removed.
        let cluster_stopped = match cluster.take() {
            Some(c) => c.teardown().await.map(|d| said.push(d)),
            None => Ok(()),
        };
        if let Ok(sandbox) = sandbox {
            let path: PathBuf = sandbox.path().to_path_buf();
            sandbox
                .close()
                .map_err(|e| format!("cannot remove sandbox {}: {e}", path.display()))?;
            said.push("sandbox removed".to_string());
        }
        cluster_stopped?;
        Ok(((), said.join("; ")))
    })
    .await;

    let finished_at = Utc::now();
    let rto_met = match (rto, drill.rto_target) {
        (Some(r), Some(t)) => Some(r <= t),
        (None, Some(_)) => Some(false),
        _ => None,
    };
    let rpo_met = match (rpo, drill.rpo_target) {
        (Some(r), Some(t)) => Some(r <= t),
        (None, Some(_)) => Some(false),
        _ => None,
    };
    let failed_step = steps.iter().find(|s| !s.ok).map(|s| s.name.clone());
    let report = DrillReport {
        schema: REPORT_SCHEMA,
        id: format!("d_{}", hex::encode(rand::random::<[u8; 6]>())),
        drill: drill.name.clone(),
        backup: drill.backup.clone(),
        actor: actor.as_str().to_string(),
        started_at,
        finished_at,
        passed: failed_step.is_none() && rto_met != Some(false) && rpo_met != Some(false),
        failed_step,
        snapshot,
        snapshot_choice,
        steps,
        rto_seconds: rto.map(|d| d.as_secs_f64()),
        rto_target_seconds: drill.rto_target.map(|d| d.as_secs()),
        rto_met,
        rpo_seconds: rpo.map(|d| d.as_secs_f64()),
        rpo_target_seconds: drill.rpo_target.map(|d| d.as_secs()),
        rpo_met,
        copies,
    };
    save(store, &report, data_dir, actor).await?;
    Ok(report)
}

/// The restored tree of the backup's first path: where the app lives, as
/// it did on the original machine.
fn app_dir(b: &crate::config::BackupConfig, target: &Path) -> PathBuf {
    b.paths
        .first()
        .map(|p| target.join(p.strip_prefix("/").unwrap_or(p)))
        .unwrap_or_else(|| target.to_path_buf())
}

/// The `expect_files` not in the restored tree, as written: relative ones
/// are looked up under `app_dir` (the backup's first path, where `start`
/// runs), absolute ones under the sandbox `target`, as in the snapshot.
fn missing_files(expect: &[String], target: &Path, app_dir: &Path) -> Vec<String> {
    expect
        .iter()
        .filter(|f| {
            let p = Path::new(f.as_str());
            let at = match p.strip_prefix("/") {
                Ok(rel) => target.join(rel),
                Err(_) => app_dir.join(p),
            };
            std::fs::symlink_metadata(at).is_err()
        })
        .cloned()
        .collect()
}

/// The port `url` names or implies, so the restored app can be told where
/// the drill will probe it.
fn url_port(url: &str) -> Option<u16> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit('@').next()?;
    // `[::1]:8080` or `host:8080`; a bare IPv6 literal has no port.
    let port = match host_port.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(':') && !port.contains(']') => port.parse().ok(),
        _ => None,
    };
    port.or(match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    })
}

/// Probes `url` until it answers 2xx, the app exits, or `timeout` passes.
async fn wait_healthy(app: &mut App, url: &str, timeout: Duration) -> Result<String, String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    let mut last = String::from("no answer yet");
    while t0.elapsed() < timeout {
        if let Ok(Some(status)) = app.child.try_wait() {
            return Err(format!("the app exited ({status}) before it was healthy"));
        }
        match client.get(url).send().await {
            Ok(resp) if resp.status().is_success() => {
                return Ok(format!(
                    "{url} answered {} after {:.1}s",
                    resp.status(),
                    t0.elapsed().as_secs_f64()
                ))
            }
            Ok(resp) => last = format!("answered {}", resp.status()),
            Err(e) => last = e.without_url().to_string(),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(format!(
        "{url} not healthy within {} (last: {last})",
        crate::config::format_duration(timeout)
    ))
}

/// A drill report's summary as an event. Step details may quote URLs
/// and commands, so they stay in the report.
fn drill_event(report: &DrillReport) -> serde_json::Value {
    serde_json::json!({
        "report": report.id,
        "drill": report.drill,
        "backup": report.backup,
        "passed": report.passed,
        "failed_step": report.failed_step,
        "snapshot": report.snapshot,
        "started_at": report.started_at.to_rfc3339(),
        "finished_at": report.finished_at.to_rfc3339(),
        "rto_seconds": report.rto_seconds,
        "rto_target_seconds": report.rto_target_seconds,
        "rto_met": report.rto_met,
        "rpo_seconds": report.rpo_seconds,
        "rpo_target_seconds": report.rpo_target_seconds,
        "rpo_met": report.rpo_met,
    })
}

async fn save(
    store: &Store,
    report: &DrillReport,
    data_dir: &Path,
    actor: &Actor,
) -> Result<(), DrillError> {
    let json = serde_json::to_string(report).map_err(|e| StoreError::Invalid(e.to_string()))?;
    let mut tx = AuditedTx::begin(store).await?;
    sqlx::query(
        "INSERT INTO drill_reports (id, drill, started_at, finished_at, passed, report)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&report.id)
    .bind(&report.drill)
    .bind(report.started_at.timestamp_millis())
    .bind(report.finished_at.timestamp_millis())
    .bind(i64::from(report.passed))
    .bind(&json)
    .execute(tx.conn())
    .await
    .map_err(StoreError::from)?;
    let entry = Entry::new(
        actor,
        "drill.run",
        &report.drill,
        if report.passed {
            Outcome::Success
        } else {
            Outcome::Failure
        },
    )
    .detail(serde_json::json!({
        "report": report.id,
        "failed_step": report.failed_step,
        "rto_seconds": report.rto_seconds,
        "rpo_seconds": report.rpo_seconds,
    }));
    let mut tx = tx.record(&entry).await?;
    tx.event(crate::events::Kind::Drill, &drill_event(report))
        .await?;
    tx.commit().await?;
    let dir = data_dir.join("logs");
    let file = dir.join(format!(
        "dr_report_{}.json",
        report.started_at.format("%Y%m%dT%H%M%SZ")
    ));
    let written = serde_json::to_vec_pretty(report)
        .map_err(std::io::Error::other)
        .and_then(|json| crate::files::write_atomic(&file, &json));
    if let Err(e) = written {
        tracing::warn!(file = %file.display(), error = %e, "cannot write the drill report file");
    }
    Ok(())
}

/// A stored report, or None (logged) when it does not parse: one damaged
/// row must not hide the others. Reports stored before step details were
/// redacted may quote a full health URL: it is cut to its origin here.
fn parse_stored(text: &str) -> Option<DrillReport> {
    let text = crate::redact::urls_in(text);
    serde_json::from_str(&text)
        .map_err(|e| tracing::warn!(error = %e, "cannot read a stored drill report"))
        .ok()
}

async fn reports(
    store: &Store,
    sql: &str,
    binds: &[i64],
    name: Option<&str>,
) -> Result<Vec<DrillReport>, StoreError> {
    let mut q = sqlx::query(sql);
    if let Some(n) = name {
        q = q.bind(n.to_string());
    }
    for b in binds {
        q = q.bind(*b);
    }
    let rows = q.fetch_all(store.pool()).await?;
    let mut out = Vec::new();
    for r in &rows {
        let text: String = r.try_get("report")?;
        out.extend(parse_stored(&text));
    }
    Ok(out)
}

/// The latest `n` reports (all drills), newest first.
///
/// # Errors
/// On a database error.
pub async fn last(store: &Store, n: u32) -> Result<Vec<DrillReport>, StoreError> {
    let sql = format!(
        "SELECT report FROM drill_reports ORDER BY started_at DESC, id DESC LIMIT {}",
        n.clamp(1, 100)
    );
    reports(store, &sql, &[], None).await
}

/// Reports that started in `[from, to)`, oldest first.
///
/// # Errors
/// On a database error.
pub async fn between(
    store: &Store,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<DrillReport>, StoreError> {
    let sql = "SELECT report FROM drill_reports WHERE started_at >= $1 AND started_at < $2
               ORDER BY started_at, id";
    reports(store, sql, &[from.as_millis(), to.as_millis()], None).await
}

/// The latest report of `drill`, and when it last passed.
///
/// # Errors
/// On a database error.
pub async fn latest_and_last_pass(
    store: &Store,
    drill: &str,
) -> Result<(Option<DrillReport>, Option<DateTime<Utc>>), StoreError> {
    let sql = "SELECT report FROM drill_reports WHERE drill = $1
               ORDER BY started_at DESC, id DESC LIMIT 1";
    let latest = reports(store, sql, &[], Some(drill))
        .await?
        .into_iter()
        .next();
    let pass: Option<i64> = sqlx::query_scalar(
        "SELECT MAX(started_at) FROM drill_reports WHERE drill = $1 AND passed = 1",
    )
    .bind(drill)
    .fetch_one(store.pool())
    .await?;
    Ok((
        latest,
        pass.map(|t| Timestamp::from_millis(t).to_datetime()),
    ))
}

/// Runs the drill named `name`.
///
/// # Errors
/// As `run`, and `DrillError::Unknown`.
pub async fn run_named(
    store: &Store,
    config: &Config,
    name: &str,
    data_dir: &Path,
    actor: &Actor,
    cancel: &bulwark_repo::Cancel,
) -> Result<DrillReport, DrillError> {
    let drill = config
        .drills
        .iter()
        .find(|d| d.name == name)
        .ok_or_else(|| DrillError::Unknown(name.to_string()))?;
    run(store, config, drill, data_dir, actor, cancel).await
}

#[cfg(test)]
mod tests;
