//! The database half of a drill on a `kind = "postgres"` backup: the
//! restored dump is loaded into a throwaway PostgreSQL cluster and the
//! drill's `checks` run against it.
//!
//! The cluster is `initdb`'s, made with the server binaries found on the
//! machine (the newest `/usr/lib/postgresql/*/bin`, else `initdb` on
//! `PATH`), listening on a free loopback port with its unix socket in its
//! own directory, password authentication only (a random password that
//! lives in the child environments of this drill). [`Cluster`] stops it
//! when dropped, so a failed, cancelled or panicking drill leaves no
//! server behind; the drill's cleanup stops it explicitly first.
//!
//! PostgreSQL refuses to run as root. Run as root, the server binaries run
//! as the `postgres` account through `runuser -u postgres --`, in a
//! directory of their own under the temporary directory (the data
//! directory's drill sandboxes are root's alone, mode 0700); otherwise the
//! cluster lives in the drill's sandbox.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::config::{CommandEnv, DrillConfig, SqlCheck};

/// The role the throwaway cluster is made with.
const SUPERUSER: &str = "bulwark_drill";
/// The database the dump is loaded into.
const DATABASE: &str = "drill";
/// How much of a tool's stderr a failed step quotes.
const TAIL: usize = 1024;

/// A throwaway cluster. Dropping it stops the server (immediately) and
/// removes its directory when it has one of its own.
pub(super) struct Cluster {
    bin: PathBuf,
    data: PathBuf,
    root: PathBuf,
    /// Run the server binaries as `postgres` (we are root).
    as_postgres: bool,
    port: u16,
    password: String,
    /// Set once `pg_ctl start` was run: from then on there may be a server.
    started: bool,
    /// The cluster's own directory (root's case), removed on drop.
    own_dir: Option<tempfile::TempDir>,
}

fn euid_is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the process's effective user.
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// The directory holding `initdb`, `pg_ctl`, `pg_restore` and `psql`.
fn server_bin_dir() -> Option<PathBuf> {
    crate::backups::postgres::debian_bin_dirs()
        .into_iter()
        .chain(
            crate::backups::postgres::find_binary("initdb")
                .and_then(|p| p.parent().map(Path::to_path_buf)),
        )
        .find(|d| {
            ["initdb", "pg_ctl", "pg_restore", "psql"]
                .iter()
                .all(|b| crate::backups::postgres::is_executable(&d.join(b)))
        })
}

fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[bytes.len().saturating_sub(TAIL)..]);
    let text = text.trim();
    if text.is_empty() {
        "no output".to_string()
    } else {
        text.to_string()
    }
}

impl Cluster {
    /// `initdb` into `sandbox/pg` (or, as root, a directory of its own).
    pub(super) async fn init(
        sandbox: &Path,
        timeout: Duration,
    ) -> Result<(Cluster, String), String> {
        let bin = server_bin_dir().ok_or(
            "no PostgreSQL server binaries (initdb, pg_ctl, pg_restore, psql) under /usr/lib/postgresql/*/bin or on PATH",
        )?;
        let as_postgres = euid_is_root();
        let (root, own_dir) = if as_postgres {
            let dir = tempfile::Builder::new()
                .prefix("bulwark-drill-pg-")
                .tempdir()
                .map_err(|e| format!("cannot create the cluster directory: {e}"))?;
            (dir.path().to_path_buf(), Some(dir))
        } else {
            let root = sandbox.join("pg");
            crate::files::private_dir(&root)
                .map_err(|e| format!("cannot create {}: {e}", root.display()))?;
            (root, None)
        };
        let password = hex::encode(rand::random::<[u8; 24]>());
        let cluster = Cluster {
            data: root.join("data"),
            bin,
            root,
            as_postgres,
            port: 0,
            password,
            started: false,
            own_dir,
        };
        let pwfile = cluster.root.join("pwfile");
        crate::files::write_atomic(&pwfile, cluster.password.as_bytes())
            .map_err(|e| format!("cannot write the password file: {e}"))?;
        if as_postgres {
            let status = tokio::process::Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(&cluster.root)
                .status()
                .await
                .map_err(|e| format!("cannot run chown: {e}"))?;
            if !status.success() {
                return Err(format!(
                    "cannot give {} to the postgres account (chown {status})",
                    cluster.root.display()
                ));
            }
        }
        let mut cmd = cluster.server_tool("initdb");
        cmd.arg("-D")
            .arg(&cluster.data)
            .args([
                "-U",
                SUPERUSER,
                "--auth=scram-sha-256",
                "--no-locale",
                "-E",
                "UTF8",
                "--no-sync",
            ])
            .arg(format!("--pwfile={}", pwfile.display()));
        let out = run(cmd, timeout, "initdb").await;
        let _ = std::fs::remove_file(&pwfile);
        out?;
        let who = if as_postgres {
            " as postgres (we are root)"
        } else {
            ""
        };
        let detail = format!("initdb {}{who}", cluster.data.display());
        Ok((cluster, detail))
    }

    /// A server binary, run as `postgres` when we are root.
    fn server_tool(&self, name: &str) -> tokio::process::Command {
        let program = self.bin.join(name);
        let mut cmd = if self.as_postgres {
            let mut c = tokio::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            tokio::process::Command::new(program)
        };
        crate::child_env::apply(&mut cmd, &CommandEnv::default(), &[]);
        cmd.current_dir(&self.root);
        cmd
    }

    /// A client tool connected to the cluster: the password only in
    /// `PGPASSWORD`.
    fn client_tool(&self, name: &str, database: &str) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(self.bin.join(name));
        crate::child_env::apply(
            &mut cmd,
            &CommandEnv::default(),
            &[
                ("PGHOST", "127.0.0.1".to_string()),
                ("PGPORT", self.port.to_string()),
                ("PGUSER", SUPERUSER.to_string()),
                ("PGDATABASE", database.to_string()),
                ("PGPASSWORD", self.password.clone()),
                ("PGCONNECT_TIMEOUT", "10".to_string()),
            ],
        );
        cmd
    }

    /// `pg_ctl start` on a free loopback port.
    pub(super) async fn start(&mut self, timeout: Duration) -> Result<String, String> {
        self.port = free_port().map_err(|e| format!("no free loopback port: {e}"))?;
        // A unix socket path has room for about 107 bytes; past that the
        // server would refuse to start, so it listens on loopback only.
        let socket_dir = if self.root.join(".s.PGSQL.65535.lock").as_os_str().len() < 100 {
            self.root.display().to_string()
        } else {
            "''".to_string()
        };
        let mut cmd = self.server_tool("pg_ctl");
        cmd.arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(self.root.join("server.log"))
            .args(["-w", "-t", &timeout.as_secs().max(1).to_string(), "-o"])
            .arg(format!(
                "-c listen_addresses=127.0.0.1 -p {} -c unix_socket_directories={socket_dir} -c fsync=off",
                self.port,
            ))
            .arg("start");
        self.started = true;
        match run(cmd, timeout + Duration::from_secs(5), "pg_ctl start").await {
            Ok(_) => Ok(format!("server on 127.0.0.1:{}", self.port)),
            Err(e) => {
                let log = std::fs::read(self.root.join("server.log")).unwrap_or_default();
                Err(format!("{e}; server log: {}", tail(&log)))
            }
        }
    }

    /// Creates the drill database and loads `dump` into it: `pg_restore`
    /// for pg_dump's archive formats, `psql -f` for plain SQL.
    pub(super) async fn load(&self, dump: &Path, timeout: Duration) -> Result<String, String> {
        let mut create = self.client_tool("psql", "postgres");
        create
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-c"])
            .arg(format!("CREATE DATABASE {DATABASE}"));
        run(create, timeout, "psql (create database)").await?;
        let archive =
            is_archive(dump).map_err(|e| format!("cannot read {}: {e}", dump.display()))?;
        let name = dump
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if archive {
            let mut cmd = self.client_tool("pg_restore", DATABASE);
            cmd.args(["--no-owner", "--no-acl", "-d", DATABASE])
                .arg(dump);
            run(cmd, timeout, "pg_restore").await?;
            Ok(format!("{name} (pg_dump archive) loaded with pg_restore"))
        } else {
            let mut cmd = self.client_tool("psql", DATABASE);
            cmd.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-f"])
                .arg(dump);
            run(cmd, timeout, "psql -f").await?;
            Ok(format!("{name} (plain SQL) loaded with psql"))
        }
    }

    /// The first column of the first row `sql` returns (None: no row).
    pub(super) async fn query(
        &self,
        sql: &str,
        timeout: Duration,
    ) -> Result<Option<String>, String> {
        let mut cmd = self.client_tool("psql", DATABASE);
        cmd.args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-F",
            "\u{1f}",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ]);
        let out = run(cmd, timeout, "psql").await?;
        let text = String::from_utf8_lossy(&out);
        Ok(text
            .lines()
            .next()
            .map(|l| l.split('\u{1f}').next().unwrap_or("").to_string()))
    }

    /// Stops the server (fast, then immediate) and says how.
    pub(super) async fn stop(&mut self) -> String {
        if !self.started {
            return "cluster never started".to_string();
        }
        for mode in ["fast", "immediate"] {
            let mut cmd = self.server_tool("pg_ctl");
            cmd.arg("-D")
                .arg(&self.data)
                .args(["-m", mode, "-w", "-t", "20", "stop"]);
            if run(cmd, Duration::from_secs(25), "pg_ctl stop")
                .await
                .is_ok()
            {
                self.started = false;
                return format!("cluster stopped ({mode})");
            }
        }
        self.kill_postmaster();
        self.started = false;
        "cluster killed".to_string()
    }

    /// SIGKILL to the postmaster named in `postmaster.pid`, if any.
    fn kill_postmaster(&self) {
        let pid = std::fs::read_to_string(self.data.join("postmaster.pid"))
            .ok()
            .and_then(|t| t.lines().next().and_then(|l| l.trim().parse::<u32>().ok()));
        if let Some(pid) = pid {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
    }

    /// Stops the server and removes the cluster's own directory (in the
    /// sandbox, it goes with the sandbox).
    pub(super) async fn teardown(mut self) -> Result<String, String> {
        let stopped = self.stop().await;
        match self.own_dir.take() {
            None => Ok(stopped),
            Some(dir) => {
                let path = dir.path().display().to_string();
                dir.close()
                    .map(|()| format!("{stopped}; {path} removed"))
                    .map_err(|e| format!("{stopped}; cannot remove {path}: {e}"))
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.started {
            let program = self.bin.join("pg_ctl");
            let mut cmd = if self.as_postgres {
                let mut c = std::process::Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(program);
                c
            } else {
                std::process::Command::new(program)
            };
            crate::child_env::apply_std(&mut cmd, &CommandEnv::default(), &[]);
            let stopped = cmd
                .arg("-D")
                .arg(&self.data)
                .args(["-m", "immediate", "-w", "-t", "10", "stop"])
                .current_dir(&self.root)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !stopped {
                self.kill_postmaster();
            }
        }
        if let Some(dir) = self.own_dir.take() {
            let _ = dir.close();
        }
    }
}

/// pg_dump's archive formats (custom, tar) start with this; plain SQL
/// does not.
fn is_archive(dump: &Path) -> std::io::Result<bool> {
    use std::io::Read;
    let mut head = [0u8; 5];
    let mut f = std::fs::File::open(dump)?;
    let n = f.read(&mut head)?;
    // A tar archive has its magic at offset 257; pg_restore reads it too.
    let mut tar = [0u8; 262];
    let is_tar = {
        let mut f = std::fs::File::open(dump)?;
        f.read_exact(&mut tar).is_ok() && &tar[257..262] == b"ustar"
    };
    Ok(&head[..n] == b"PGDMP" || is_tar)
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}

/// Runs `cmd` to its end within `timeout`: its stdout, or an error naming
/// `what`, its status and the end of its stderr.
async fn run(
    mut cmd: tokio::process::Command,
    timeout: Duration,
    what: &str,
) -> Result<Vec<u8>, String> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = cmd.spawn().map_err(|e| format!("cannot run {what}: {e}"))?;
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Err(_) => Err(format!(
            "{what} did not finish within {}",
            crate::config::format_duration(timeout)
        )),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Ok(Ok(out)) if out.status.success() => Ok(out.stdout),
        Ok(Ok(out)) => Err(format!(
            "{what} failed ({}): {}",
            out.status,
            tail(&out.stderr)
        )),
    }
}

/// The one file a database backup's snapshot restores to (`/NAME.dump`).
pub(super) fn restored_dump(target: &Path) -> Result<PathBuf, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(target)
        .map_err(|e| format!("cannot read the restored tree: {e}"))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    match files.len() {
        1 => Ok(files.remove(0)),
        0 => Err("the snapshot holds no dump file".to_string()),
        n => Err(format!("the snapshot holds {n} files, not one dump")),
    }
}

/// Judges `check` on the value its SQL returned: what to record, or why it
/// failed (the SQL and the value it got, always).
pub(crate) fn judge(check: &SqlCheck, value: Option<&str>) -> Result<String, String> {
    let Some(value) = value else {
        return Err(format!("`{}` returned no row", check.sql));
    };
    let got = || format!("`{}` returned {value:?}", check.sql);
    if let Some(want) = &check.equals {
        if value != want {
            return Err(format!("{}, expected {want:?}", got()));
        }
    }
    if check.min.is_some() || check.max.is_some() {
        let n: f64 = value
            .trim()
            .parse()
            .map_err(|_| format!("{}, not a number to compare with min/max", got()))?;
        if let Some(min) = check.min {
            if n < min {
                return Err(format!("{}, expected at least {min}", got()));
            }
        }
        if let Some(max) = check.max {
            if n > max {
                return Err(format!("{}, expected at most {max}", got()));
            }
        }
    }
    Ok(got())
}

/// The step name of a check: its SQL, cut to a readable length.
pub(super) fn check_name(check: &SqlCheck) -> String {
    let sql: String = check.sql.split_whitespace().collect::<Vec<_>>().join(" ");
    let short: String = sql.chars().take(80).collect();
    if short.len() < sql.len() {
        format!("check: {short}…")
    } else {
        format!("check: {short}")
    }
}

/// The drill's steps after the restore, for a database backup: initdb,
/// start, load, each check. True when every one passed. The cluster is
/// left in `slot` for the cleanup step to stop.
pub(super) async fn run_steps(
    steps: &mut Vec<super::Step>,
    drill: &DrillConfig,
    sandbox: &Path,
    target: &Path,
    slot: &mut Option<Cluster>,
) -> bool {
    let timeout = drill.timeout;
    let Some(cluster) = super::step(steps, "initdb", Cluster::init(sandbox, timeout)).await else {
        return false;
    };
    let cluster = slot.insert(cluster);
    let started = super::step(steps, "start_cluster", async {
        cluster.start(timeout).await.map(|d| ((), d))
    })
    .await;
    if started.is_none() {
        return false;
    }
    let loaded = super::step(steps, "load", async {
        let dump = restored_dump(target)?;
        cluster.load(&dump, timeout).await.map(|d| ((), d))
    })
    .await;
    if loaded.is_none() {
        return false;
    }
    let mut all = true;
    for check in &drill.checks {
        let name = check_name(check);
        let passed = super::step(steps, &name, async {
            let value = cluster.query(&check.sql, timeout).await?;
            judge(check, value.as_deref()).map(|d| ((), d))
        })
        .await;
        all &= passed.is_some();
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(min: Option<f64>, max: Option<f64>, equals: Option<&str>) -> SqlCheck {
        SqlCheck {
            sql: "SELECT x".into(),
            min,
            max,
            equals: equals.map(String::from),
        }
    }

    #[test]
    fn checks_judge_the_first_value() {
        let table: &[(SqlCheck, Option<&str>, Result<(), &str>)] = &[
            (c(Some(5.0), None, None), Some("5"), Ok(())),
            (
                c(Some(5.0), None, None),
                Some("4"),
                Err("`SELECT x` returned \"4\", expected at least 5"),
            ),
            (
                c(None, Some(1.0), None),
                Some("2"),
                Err("expected at most 1"),
            ),
            (c(None, None, Some("canary")), Some("canary"), Ok(())),
            (
                c(None, None, Some("canary")),
                Some("other"),
                Err("`SELECT x` returned \"other\", expected \"canary\""),
            ),
            (
                c(None, None, Some("canary")),
                None,
                Err("`SELECT x` returned no row"),
            ),
            (c(Some(1.0), None, None), Some("abc"), Err("not a number")),
        ];
        for (check, value, expected) in table {
            let got = judge(check, *value);
            match (expected, &got) {
                (Ok(()), Ok(_)) => {}
                (Err(want), Err(e)) if e.contains(want) => {}
                _ => panic!("{check:?} on {value:?}: {got:?}, expected {expected:?}"),
            }
        }
    }

    /// The drop guard alone (no explicit stop, as when a drill task is
    /// cancelled or panics) stops a running cluster and removes its
    /// directory. Uses the PostgreSQL server binaries the test script
    /// installs.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropping_a_started_cluster_stops_it() {
        let sandbox = tempfile::tempdir().unwrap();
        let t = Duration::from_secs(60);
        let (mut cluster, _) = Cluster::init(sandbox.path(), t).await.unwrap();
        cluster.start(t).await.unwrap();
        let data = cluster.data.display().to_string();
        let pid_file = cluster.data.join("postmaster.pid");
        assert!(pid_file.exists());
        let running = |pattern: &str| {
            std::process::Command::new("pgrep")
                .args(["-f", pattern])
                .status()
                .unwrap()
                .success()
        };
        assert!(running(&data), "no postmaster for {data}");
        drop(cluster);
        assert!(!running(&data), "a postmaster for {data} survived the drop");
        assert!(!pid_file.exists());
    }

    #[test]
    fn step_names_carry_the_sql() {
        assert_eq!(check_name(&c(None, None, Some("x"))), "check: SELECT x");
        let long = SqlCheck {
            sql: "SELECT ".repeat(30),
            ..c(None, None, Some("x"))
        };
        assert!(check_name(&long).ends_with('…'));
    }
}
