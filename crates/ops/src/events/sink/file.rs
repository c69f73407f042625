//! `type = "file"`: NDJSON appended to a file under `<data-dir>/logs/`.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{Line, SendError, Sink};
use crate::BoxFuture;

pub(super) struct FileSink {
    path: PathBuf,
}

impl FileSink {
    pub(super) fn new(path: &Path) -> FileSink {
        FileSink {
            path: path.to_path_buf(),
        }
    }

    /// Opened per batch, so a file moved away by logrotate is recreated.
    fn write(&self, lines: &[Line]) -> std::io::Result<()> {
        let mut buf = String::new();
        for line in lines {
            buf.push_str(&line.json);
            buf.push('\n');
        }
        let mut f = crate::files::open_append(&self.path)?;
        let before = f.metadata()?.len();
        let written = f.write_all(buf.as_bytes()).and_then(|()| f.sync_data());
        if let Err(e) = written {
            // Take a partly written batch back, so its retry does not
            // duplicate the lines that made it.
            let _ = f.set_len(before);
            return Err(e);
        }
        Ok(())
    }
}

impl Sink for FileSink {
    fn send<'a>(&'a mut self, lines: &'a [Line]) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            let path = self.path.clone();
            let lines = lines.to_vec();
            let this = FileSink { path: path.clone() };
            tokio::task::spawn_blocking(move || this.write(&lines))
                .await
                .map_err(|e| SendError::new(format!("file sink task failed: {e}")))?
                .map_err(|e| SendError::new(format!("cannot append to {}: {e}", path.display())))
        })
    }
}
