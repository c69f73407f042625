//! Writing repository files on threads of their own, `connections` at a
//! time, so that the caller keeps chunking and compressing while packs are
//! uploaded.
//!
//! Packs may be written in any order and at the same time. Any other file
//! (an index naming the packs) waits until every file handed over before
//! it is written: that order is what keeps the repository valid. The first
//! failure stops the writers, so nothing queued after a lost pack is
//! written (its index in particular).
//!
//! Memory: the hand-over channel holds no file, so a send waits until a
//! thread is free. At most `connections` finished packs (16 MiB each,
//! [`super::PACK_TARGET`]) are being written, besides the one the caller is
//! filling or handing over: 80 MiB with the object stores' default of 5,
//! 16 MiB for a local disk (one thread, as before).

use std::collections::BTreeSet;
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};

use crate::backend::{Backend, FileType};
use crate::error::{Error, Result};

/// A file for the writer threads: type, name, content.
pub(super) type FileJob = (FileType, String, Vec<u8>);

/// What the writer threads share with the caller.
#[derive(Default)]
struct Progress {
    /// Sequence numbers of files handed over and not written yet.
    unwritten: BTreeSet<u64>,
    /// The first failure, until [`FileWriter::finish`] takes it.
    error: Option<Error>,
    /// A write failed: nothing more is written.
    failed: bool,
}

#[derive(Default)]
struct Shared {
    progress: Mutex<Progress>,
    /// Signalled whenever a file is written or a write fails.
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Progress> {
        // Every update is a few field assignments: a panic cannot leave
        // the state half-changed.
        self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Writes repository files on `backend.connections()` threads, keeping the
/// order rule of the module documentation.
pub(super) struct FileWriter {
    tx: Option<mpsc::SyncSender<(u64, FileJob)>>,
    handles: Vec<std::thread::JoinHandle<()>>,
    shared: Arc<Shared>,
    /// Sequence number of the next file handed over.
    next: u64,
    /// A write failed (the error went to whoever waited first).
    pub(super) failed: bool,
}

impl FileWriter {
    /// `None` when no thread can be started (the caller writes inline).
    pub(super) fn start(backend: Arc<dyn Backend>) -> Option<FileWriter> {
        let n = backend.connections().max(1);
        let (tx, rx) = mpsc::sync_channel::<(u64, FileJob)>(0);
        let rx = Arc::new(Mutex::new(rx));
        let shared = Arc::new(Shared::default());
        let mut handles = Vec::with_capacity(n);
        for i in 0..n {
            let (backend, rx, shared) = (backend.clone(), rx.clone(), shared.clone());
            let h = std::thread::Builder::new()
                .name(format!("bulwark-write-{i}"))
                .spawn(move || write_loop(backend.as_ref(), &rx, &shared));
            match h {
                Ok(h) => handles.push(h),
                // Fewer threads only cost parallelism.
                Err(_) => break,
            }
        }
        if handles.is_empty() {
            return None;
        }
        Some(FileWriter {
            tx: Some(tx),
            handles,
            shared,
            next: 0,
            failed: false,
        })
    }

    /// Hand a file over; waits until a thread is free to take it.
    pub(super) fn send(&mut self, job: FileJob) -> Result<()> {
        let seq = self.next;
        self.next += 1;
        let accepted = {
            let mut p = self.shared.lock();
            if !p.failed {
                p.unwritten.insert(seq);
            }
            !p.failed
        };
        let sent = accepted
            && self
                .tx
                .as_ref()
                .is_some_and(|tx| tx.send((seq, job)).is_ok());
        if sent {
            Ok(())
        } else {
            // The threads stopped: the error says why.
            self.finish()?;
            Err(Error::format("pack writer", "stopped unexpectedly"))
        }
    }

    /// Wait until every file handed over is written (or a write failed).
    pub(super) fn finish(&mut self) -> Result<()> {
        drop(self.tx.take());
        let mut panicked = false;
        for h in self.handles.drain(..) {
            panicked |= h.join().is_err();
        }
        let r = match self.shared.lock().error.take() {
            Some(e) => Err(e),
            None if panicked => Err(Error::format("pack writer", "panicked")),
            None => Ok(()),
        };
        self.failed |= r.is_err();
        r
    }
}

impl Drop for FileWriter {
    fn drop(&mut self) {
        // Never leave a write running behind the caller's back (the lock
        // is released after this).
        let _ = self.finish();
    }
}

/// One writer thread: take files until the channel closes or a write fails.
fn write_loop(backend: &dyn Backend, rx: &Mutex<mpsc::Receiver<(u64, FileJob)>>, shared: &Shared) {
    loop {
        // The channel hands files out in order: every file before this one
        // was taken by a thread that is writing it or has written it.
        let job = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok((seq, (t, name, data))) = job else {
            return;
        };
        {
            let mut p = shared.lock();
            if t != FileType::Pack {
                while !p.failed && p.unwritten.first() != Some(&seq) {
                    p = shared.changed.wait(p).unwrap_or_else(|e| e.into_inner());
                }
            }
            if p.failed {
                return;
            }
        }
        // A panic must not leave a later index waiting for this file.
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            backend.write_owned(t, &name, data)
        }))
        .unwrap_or_else(|_| Err(Error::format(&name, "write panicked")));
        let mut p = shared.lock();
        p.unwritten.remove(&seq);
        if let Err(e) = r {
            if !p.failed {
                p.failed = true;
                p.error = Some(e);
            }
        }
        shared.changed.notify_all();
        if p.failed {
            return;
        }
    }
}
