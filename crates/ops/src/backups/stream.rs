//! What `backup --stdin`, `backup --stdin-from-command` and the `postgres`
//! and `command` kinds of `[[backup]]` read: a
//! [`Source`] that `bulwark_repo::backup_stream` chunks as it arrives.
//!
//! A pump thread reads the pipe (our stdin, or the command's stdout) in
//! 256 KiB pieces into a channel of four, so at most about a megabyte
//! waits in memory, and the backup's reads wake every 100 ms to notice a
//! cancellation (SIGINT/SIGTERM), even when the pipe is silent.
//!
//! For a command, the end of its output is not the end of the stream: the
//! pump waits for the command to exit and only a zero status ends the
//! stream. Any other status (or a signal) fails the last read, so the
//! backup saves no snapshot of a half-written dump (restic's semantics).
//! Its stderr is drained on another thread, keeping the last 4 KiB for the
//! error message.

use std::io::{self, Read};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bulwark_repo::Cancel;

/// Bytes per message from the pump.
const PIECE: usize = 256 * 1024;
/// Messages waiting in the channel.
const QUEUED: usize = 4;
/// How much of the command's stderr is kept.
const STDERR_TAIL: usize = 4096;
/// Variables a dump command never needs: the repository's password.
const WITHHELD_ENV: &[&str] = &[
    "BULWARK_PASSWORD",
    "RESTIC_PASSWORD",
    "BULWARK_PASSWORD_FILE",
    "RESTIC_PASSWORD_FILE",
];

/// The stream a backup reads.
pub struct Source {
    rx: Receiver<io::Result<Vec<u8>>>,
    piece: Vec<u8>,
    pos: usize,
    ended: bool,
    cancel: Cancel,
    child: Option<Arc<Shared>>,
}

/// What the pump, the stderr reader, the source and the caller share
/// about a running command.
struct Shared {
    child: Mutex<Child>,
    /// Its exit status, once the pump reaped it.
    status: Mutex<Option<ExitStatus>>,
    /// Set when we killed it (cancelled, or the backup failed first): its
    /// status then says nothing about the command.
    killed_by_us: std::sync::atomic::AtomicBool,
    stderr: Mutex<Vec<u8>>,
    stderr_done: Mutex<Option<Receiver<()>>>,
}

impl Shared {
    fn kill(&self) {
        if self
            .status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none()
        {
            self.killed_by_us
                .store(true, std::sync::atomic::Ordering::Relaxed);
            let _ = self
                .child
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .kill();
        }
    }
}

/// The command behind a [`Source`], for the error message after it failed.
pub struct CommandHandle {
    program: String,
    shared: Arc<Shared>,
}

impl CommandHandle {
    /// `Some(message)` when the command exited non-zero or was killed by a
    /// signal we did not send: it names the command, its status and the end
    /// of its stderr.
    pub fn failure(&self) -> Option<String> {
        let status = (*self
            .shared
            .status
            .lock()
            .unwrap_or_else(PoisonError::into_inner))?;
        if status.success()
            || self
                .shared
                .killed_by_us
                .load(std::sync::atomic::Ordering::Relaxed)
        {
            return None;
        }
        // Let the stderr reader take the last bytes (briefly: a process the
        // command left behind may hold the pipe open).
        if let Some(done) = self
            .shared
            .stderr_done
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let _ = done.recv_timeout(Duration::from_secs(2));
        }
        let how = match (status.code(), status.signal()) {
            (Some(code), _) => format!("exited with status {code}"),
            (None, Some(sig)) => format!("was killed by signal {sig}"),
            (None, None) => format!("failed ({status})"),
        };
        let tail = self
            .shared
            .stderr
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let tail = String::from_utf8_lossy(&tail);
        let tail = tail.trim();
        let mut msg = format!("command {:?} {how}; no snapshot saved", self.program);
        if tail.is_empty() {
            msg.push_str(" (its stderr was empty)");
        } else {
            msg.push_str("; the end of its stderr:\n");
            msg.push_str(tail);
        }
        Some(msg)
    }

    /// The program's name (its arguments may hold secrets: they are
    /// never repeated in messages or the audit trail).
    pub fn program(&self) -> &str {
        &self.program
    }
}

/// This process's stdin. Reading nothing at all is an error, as in
/// restic: an empty snapshot is more likely a forgotten pipe than a backup.
pub fn stdin(cancel: Cancel) -> Source {
    let (tx, rx) = mpsc::sync_channel(QUEUED);
    std::thread::spawn(move || {
        let total = pump(io::stdin().lock(), &tx);
        if total == Some(0) {
            let _ = tx.send(Err(io::Error::other("no data read from stdin")));
        }
    });
    Source {
        rx,
        piece: Vec::new(),
        pos: 0,
        ended: false,
        cancel,
        child: None,
    }
}

/// Start `argv` (no shell; stdin from /dev/null, the environment without
/// the repository password) and read its stdout.
///
/// # Errors
/// The command cannot be started (not found, not executable).
pub fn command(argv: &[String], cancel: Cancel) -> io::Result<(Source, CommandHandle)> {
    let Some((program, args)) = argv.split_first() else {
        return Err(io::Error::other("no command given after `--`"));
    };
    let mut cmd = std::process::Command::new(program);
    cmd.args(args);
    for var in WITHHELD_ENV {
        cmd.env_remove(var);
    }
    spawn(cmd, program.clone(), cancel)
}

/// Start `cmd` (its program, arguments and environment as the caller set
/// them; stdin from /dev/null) and read its stdout. `program` is what
/// error messages call it.
///
/// # Errors
/// The command cannot be started (not found, not executable).
pub fn spawn(
    mut cmd: std::process::Command,
    program: String,
    cancel: Cancel,
) -> io::Result<(Source, CommandHandle)> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    let (Some(stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(io::Error::other("no pipes to the command"));
    };
    let (done_tx, done_rx) = mpsc::channel();
    let shared = Arc::new(Shared {
        child: Mutex::new(child),
        status: Mutex::new(None),
        killed_by_us: false.into(),
        stderr: Mutex::new(Vec::new()),
        stderr_done: Mutex::new(Some(done_rx)),
    });

    let s = shared.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match stderr.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let mut tail = s.stderr.lock().unwrap_or_else(PoisonError::into_inner);
                    tail.extend_from_slice(&buf[..n]);
                    let excess = tail.len().saturating_sub(STDERR_TAIL);
                    tail.drain(..excess);
                }
            }
        }
        let _ = done_tx.send(());
    });

    let (tx, rx) = mpsc::sync_channel(QUEUED);
    let s = shared.clone();
    std::thread::spawn(move || {
        if pump(stdout, &tx).is_none() {
            // The backup stopped reading: stop the command.
            s.kill();
        }
        // Reap it without holding the lock while it runs, so that a
        // cancellation can still kill it.
        let status = loop {
            let polled = s
                .child
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .try_wait();
            match polled {
                Ok(Some(status)) => break Some(status),
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(_) => break None,
            }
        };
        *s.status.lock().unwrap_or_else(PoisonError::into_inner) = status;
        match status {
            Some(st) if st.success() => {} // dropping `tx` ends the stream
            Some(st) => {
                let _ = tx.send(Err(io::Error::other(format!("command failed ({st})"))));
            }
            None => {
                let _ = tx.send(Err(io::Error::other("cannot wait for the command")));
            }
        }
    });
    let handle = CommandHandle {
        program,
        shared: shared.clone(),
    };
    let source = Source {
        rx,
        piece: Vec::new(),
        pos: 0,
        ended: false,
        cancel,
        child: Some(shared),
    };
    Ok((source, handle))
}

/// Copy `r` into the channel until its end: the bytes read, or `None` if
/// the receiver went away. A read error is sent on.
fn pump(mut r: impl Read, tx: &SyncSender<io::Result<Vec<u8>>>) -> Option<u64> {
    let mut total = 0u64;
    loop {
        let mut piece = vec![0u8; PIECE];
        let mut filled = 0;
        // Fill the piece (pipes give at most 64 KiB a read).
        while filled < PIECE {
            match r.read(&mut piece[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    tx.send(Err(e)).ok()?;
                    return Some(total);
                }
            }
        }
        if filled == 0 {
            return Some(total);
        }
        piece.truncate(filled);
        total += filled as u64;
        tx.send(Ok(piece)).ok()?;
    }
}

impl Read for Source {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pos < self.piece.len() {
                let n = out.len().min(self.piece.len() - self.pos);
                out[..n].copy_from_slice(&self.piece[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if self.ended {
                return Ok(0);
            }
            match self.rx.recv_timeout(Duration::from_millis(100)) {
                Ok(Ok(piece)) => {
                    self.piece = piece;
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.ended = true;
                    return Err(e);
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.ended = true;
                    return Ok(0);
                }
                Err(RecvTimeoutError::Timeout) => {
                    if self.cancel.is_cancelled() {
                        if let Some(c) = &self.child {
                            c.kill();
                        }
                        self.ended = true;
                        return Err(io::Error::other("cancelled"));
                    }
                }
            }
        }
    }
}

impl Drop for Source {
    /// A backup that stopped early (an error, a cancellation) stops the
    /// command too.
    fn drop(&mut self) {
        if let Some(c) = &self.child {
            c.kill();
        }
    }
}
