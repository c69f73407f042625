//! Shipping: a [`Shipper`] per sink moves the sink's cursor through the
//! stream, and [`ship_stream`] sends lines read from a pipe
//! (`bulwark events ship`).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncBufReadExt;
use tokio::sync::watch;

use super::sink::{self, Line, SendError, Sink};
use crate::config::{Config, SinkConfig};
use crate::store::{Store, StoreError};
use crate::time::Timestamp;

/// Told how shipping goes, e.g. to update Prometheus metrics (`ops` knows
/// nothing of Prometheus).
pub trait ShipObserver: Send + Sync {
    /// A batch of `sent` events was confirmed; `lag` events remain after
    /// the cursor.
    fn shipped(&self, sink: &str, sent: usize, lag: i64);
    /// A batch failed and will be retried.
    fn failed(&self, sink: &str);
    /// `n` events were skipped: the sink refused each alone for its size.
    fn dropped(&self, _sink: &str, _n: usize) {}
}

/// Knobs with production defaults; tests shorten them.
#[derive(Clone)]
pub struct ShipOptions {
    /// How often a caught-up shipper looks for new events.
    pub poll: Duration,
    /// The first retry's delay after a failure; doubled per failure.
    pub min_backoff: Duration,
    /// The longest delay between retries (also caps `Retry-After`).
    pub max_backoff: Duration,
    /// How long a shipper's claim on its sink lasts without renewal.
    pub lease: Duration,
    pub observer: Option<Arc<dyn ShipObserver>>,
}

impl std::fmt::Debug for ShipOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShipOptions")
            .field("poll", &self.poll)
            .field("min_backoff", &self.min_backoff)
            .field("max_backoff", &self.max_backoff)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

impl Default for ShipOptions {
    fn default() -> ShipOptions {
        ShipOptions {
            poll: Duration::from_secs(1),
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            lease: Duration::from_secs(60),
            observer: None,
        }
    }
}

/// Why a batch did not go out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShipError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no [[sink]] named \"{0}\" in the config")]
    UnknownSink(String),
    #[error("sink \"{sink}\": {message}")]
    Sink {
        sink: String,
        message: String,
        /// The receiver's `Retry-After`.
        retry_after: Option<Duration>,
    },
    #[error("cannot read the input: {0}")]
    Input(std::io::Error),
}

/// What one [`Shipper::ship_once`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    /// Events read after the cursor.
    pub read: usize,
    /// Of those, sent (the rest are kinds the sink does not want).
    pub sent: usize,
    /// Of those sent, skipped because the sink refused each alone as too
    /// large (HTTP 413): kept back, it would block every later event.
    pub dropped: usize,
    /// The cursor afterwards.
    pub cursor: i64,
    /// False when another instance holds the sink: nothing was done.
    pub leased: bool,
}

/// Ships the stream to one sink from its cursor on.
pub struct Shipper {
    store: Store,
    config: SinkConfig,
    sink: Box<dyn Sink>,
    owner: String,
    opts: ShipOptions,
}

impl std::fmt::Debug for Shipper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shipper")
            .field("sink", &self.config.name)
            .finish_non_exhaustive()
    }
}

impl Shipper {
    /// A shipper for `config` over `store`; files go under `data_dir/logs`.
    ///
    /// # Errors
    /// When the sink cannot be set up (an unreadable `ca_file`).
    pub fn new(
        store: Store,
        config: &SinkConfig,
        data_dir: &Path,
        opts: ShipOptions,
    ) -> Result<Shipper, ShipError> {
        let sink = sink::open(config, data_dir, &|k| std::env::var(k).ok())
            .map_err(|message| sink_error(&config.name, message, None))?;
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".to_string());
        Ok(Shipper {
            store,
            config: config.clone(),
            sink,
            // Unique per shipper: a second shipper of the same sink (another
            // instance) waits for this one's lease to end.
            owner: format!(
                "{host}:{}:{}",
                std::process::id(),
                hex::encode(rand::random::<[u8; 4]>())
            ),
            opts,
        })
    }

    pub fn sink_name(&self) -> &str {
        &self.config.name
    }

    /// Reads the next batch after the cursor, sends the events the sink
    /// wants and moves the cursor past what the sink confirmed.
    ///
    /// # Errors
    /// When the store fails or the sink did not confirm the batch (the
    /// cursor then stays before the first unconfirmed event).
    pub async fn ship_once(&mut self) -> Result<Progress, ShipError> {
        let now = Timestamp::now();
        let name = self.config.name.clone();
        if !super::lease(&self.store, &name, &self.owner, now, now + self.opts.lease).await? {
            return Ok(Progress {
                cursor: super::cursor(&self.store, &name).await?,
                ..Progress::default()
            });
        }
        let cursor = super::cursor(&self.store, &name).await?;
        let limit = u32::try_from(self.config.batch).unwrap_or(500);
        let events = super::list(&self.store, cursor, None, limit).await?;
        let Some(last) = events.last().map(|e| e.seq) else {
            return Ok(Progress {
                cursor,
                leased: true,
                ..Progress::default()
            });
        };
        let wanted: Vec<&super::Event> = events
            .iter()
            .filter(|e| self.config.wants(&e.kind))
            .collect();
        let lines: Vec<Line> = wanted.iter().map(|e| line(e)).collect();
        // `read` and `sent` are set below from what went out.
        let mut progress = Progress {
            cursor,
            leased: true,
            ..Progress::default()
        };
        // `lines[..done]` are confirmed or skipped; `size` halves while the
        // sink refuses batches for their size and doubles again after each
        // success. A split batch takes several requests: past half the
        // lease the round ends with what was confirmed, and the next one
        // (which renews the lease) goes on, so no other instance takes the
        // sink over and sends the same events.
        let deadline = std::time::Instant::now() + self.opts.lease / 2;
        let (mut done, mut size) = (0, lines.len());
        while done < lines.len() {
            if done > 0 && std::time::Instant::now() >= deadline {
                break;
            }
            let end = done.saturating_add(size).min(lines.len());
            match self.sink.send(&lines[done..end]).await {
                Ok(()) => {
                    done = end;
                    size = size.saturating_mul(2).min(lines.len());
                }
                Err(e) => {
                    done += e.confirmed.min(end - done);
                    if !e.too_large {
                        // Keep what was confirmed: the cursor moves to the
                        // last confirmed event, so the retry starts after it.
                        if done > 0 {
                            let seq = wanted[done - 1].seq;
                            super::advance(&self.store, &name, &self.owner, seq).await?;
                        }
                        return Err(sink_error(&name, e.message, e.retry_after));
                    }
                    if end - done > 1 {
                        size = (end - done) / 2;
                    } else if done < end {
                        let skipped = wanted[done];
                        tracing::error!(sink = %name, seq = skipped.seq, kind = %skipped.kind, bytes = lines[done].json.len(), error = %e.message, "the sink refuses this event alone as too large; skipped (it stays in `bulwark events list`)");
                        progress.dropped += 1;
                        if let Some(o) = &self.opts.observer {
                            o.dropped(&name, 1);
                        }
                        done += 1;
                    }
                }
            }
        }
        let through = if done == lines.len() {
            last
        } else {
            wanted[done - 1].seq
        };
        progress.sent = done;
        progress.read = events.iter().filter(|e| e.seq <= through).count();
        if super::advance(&self.store, &name, &self.owner, through).await? {
            progress.cursor = through;
        } else {
            tracing::warn!(sink = %name, "lost the sink's lease while shipping; another instance takes over");
            progress.leased = false;
        }
        Ok(progress)
    }

    /// Ships until `shutdown` turns true: at once while there is a
    /// backlog, every `poll` when caught up, after a growing delay (with
    /// jitter, honouring `Retry-After`) while the sink fails. Gives up the
    /// sink's lease at the end.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut failures: u32 = 0;
        loop {
            if *shutdown.borrow() {
                break;
            }
            let result = self.ship_once().await;
            if let Some(o) = &self.opts.observer {
                match &result {
                    Ok(p) if p.leased => {
                        let lag = super::head(&self.store)
                            .await
                            .map(|h| (h - p.cursor).max(0));
                        o.shipped(&self.config.name, p.sent - p.dropped, lag.unwrap_or(0));
                    }
                    Ok(_) => {}
                    Err(_) => o.failed(&self.config.name),
                }
            }
            let wait = match result {
                Ok(p) if p.leased && p.read >= self.config.batch => {
                    failures = 0;
                    Duration::ZERO
                }
                Ok(_) => {
                    failures = 0;
                    self.opts.poll
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let retry_after = match &e {
                        ShipError::Sink { retry_after, .. } => *retry_after,
                        _ => None,
                    };
                    let delay = retry_delay(
                        failures,
                        retry_after,
                        self.opts.min_backoff,
                        self.opts.max_backoff,
                        rand::random::<f64>(),
                    );
                    tracing::warn!(sink = %self.config.name, failures, retry_in = ?delay, error = %e, "event shipping failed; will retry");
                    delay
                }
            };
            if !wait.is_zero() {
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
        if let Err(e) = super::release(&self.store, &self.config.name, &self.owner).await {
            tracing::warn!(sink = %self.config.name, error = %e, "cannot release the sink's lease");
        }
    }
}

/// A running shipper per configured sink, for `serve`; a sink that cannot
/// be set up is logged and left out.
pub(crate) fn start_all(
    store: &Store,
    config: &Config,
    data_dir: &Path,
    opts: &ShipOptions,
    shutdown: &watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    for sink in &config.sinks {
        match Shipper::new(store.clone(), sink, data_dir, opts.clone()) {
            Ok(shipper) => tasks.push(tokio::spawn(shipper.run(shutdown.clone()))),
            // One broken sink must not stop the others or the server.
            Err(e) => tracing::error!(sink = %sink.name, error = %e, "event sink not started"),
        }
    }
    tasks
}

fn sink_error(sink: &str, message: String, retry_after: Option<Duration>) -> ShipError {
    ShipError::Sink {
        sink: sink.to_string(),
        message,
        retry_after,
    }
}

fn line(e: &super::Event) -> Line {
    Line {
        at: e.at.into(),
        kind: e.kind.clone(),
        severity: super::severity(&e.kind, &e.body),
        json: e.to_json(),
    }
}

/// The delay before retry number `failures` (1 = the first): `Retry-After`
/// when the receiver gave one, else `min` doubled per failure, capped at
/// `max`, with "equal jitter" (`jitter` in 0..1 picks a point in the upper
/// half) so that sinks failing together do not retry together.
pub(crate) fn retry_delay(
    failures: u32,
    retry_after: Option<Duration>,
    min: Duration,
    max: Duration,
    jitter: f64,
) -> Duration {
    if let Some(r) = retry_after {
        return r.min(max);
    }
    let exp = failures.saturating_sub(1).min(30);
    let base = min.saturating_mul(1_u32 << exp).min(max);
    let half = base / 2;
    half + half.mul_f64(jitter.clamp(0.0, 1.0))
}

/// What [`ship_stream`] sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamSummary {
    pub lines: u64,
    pub batches: u64,
}

/// How many times `ship_stream` tries one batch before giving up.
const STREAM_ATTEMPTS: u32 = 4;

/// Ships the lines of `input` to the sink named `sink_name`, in batches of
/// the sink's `batch` size, a partial batch whenever the input pauses for
/// `idle` and at its end. A line that is not JSON goes as
/// `{"message": LINE}`; empty lines are skipped. A batch the sink refuses
/// is retried a few times with backoff before this fails.
///
/// # Errors
/// An unknown sink, unreadable input, or a batch never confirmed.
pub async fn ship_stream<R: tokio::io::AsyncBufRead + Unpin>(
    config: &Config,
    data_dir: &Path,
    sink_name: &str,
    input: R,
    idle: Duration,
    opts: &ShipOptions,
) -> Result<StreamSummary, ShipError> {
    let cfg = config
        .sink(sink_name)
        .ok_or_else(|| ShipError::UnknownSink(sink_name.to_string()))?;
    let mut sink = sink::open(cfg, data_dir, &|k| std::env::var(k).ok())
        .map_err(|m| sink_error(sink_name, m, None))?;
    let mut reader = LineReader::new(input);
    let mut batch: Vec<Line> = Vec::new();
    let mut summary = StreamSummary::default();
    loop {
        let next = if batch.is_empty() {
            Some(reader.next_line().await)
        } else {
            tokio::time::timeout(idle, reader.next_line()).await.ok()
        };
        // `None`: the input paused for `idle` with lines waiting.
        let (idle_flush, eof) = match next {
            None => (true, false),
            Some(Ok(Some(l))) => {
                if !l.trim().is_empty() {
                    batch.push(stdin_line(&l));
                }
                (false, false)
            }
            Some(Ok(None)) => (false, true),
            Some(Err(e)) => {
                // The lines read before the failure still go out.
                if !batch.is_empty() {
                    send_with_retries(sink.as_mut(), sink_name, &batch, opts).await?;
                }
                return Err(ShipError::Input(e));
            }
        };
        if !batch.is_empty() && (idle_flush || eof || batch.len() >= cfg.batch) {
            send_with_retries(sink.as_mut(), sink_name, &batch, opts).await?;
            summary.lines += batch.len() as u64;
            summary.batches += 1;
            batch.clear();
        }
        if eof {
            return Ok(summary);
        }
    }
}

/// The longest line `events ship` keeps; the rest of a longer one is
/// dropped (CloudWatch takes 256 KiB per event, syslog far less), so an
/// endless line cannot fill memory.
const MAX_STREAM_LINE: usize = 256 * 1024;

/// Lines of a pipe: invalid UTF-8 replaced (a Latin-1 log line is still a
/// line), each cut at [`MAX_STREAM_LINE`] bytes. Cancel-safe like
/// `Lines::next_line`: only `fill_buf` awaits, and what it returned is
/// taken into `buf` before the next await, so a timeout loses nothing.
struct LineReader<R> {
    input: R,
    buf: Vec<u8>,
}

impl<R: tokio::io::AsyncBufRead + Unpin> LineReader<R> {
    fn new(input: R) -> LineReader<R> {
        LineReader {
            input,
            buf: Vec::new(),
        }
    }

    async fn next_line(&mut self) -> std::io::Result<Option<String>> {
        loop {
            let chunk = self.input.fill_buf().await?;
            if chunk.is_empty() {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Ok(Some(self.take()));
            }
            let (part, used, ends) = match chunk.iter().position(|b| *b == b'\n') {
                Some(i) => (&chunk[..i], i + 1, true),
                None => (chunk, chunk.len(), false),
            };
            let room = MAX_STREAM_LINE.saturating_sub(self.buf.len());
            self.buf.extend_from_slice(&part[..part.len().min(room)]);
            self.input.consume(used);
            if ends {
                return Ok(Some(self.take()));
            }
        }
    }

    fn take(&mut self) -> String {
        let mut bytes = std::mem::take(&mut self.buf);
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

fn stdin_line(l: &str) -> Line {
    let json = match serde_json::from_str::<serde_json::Value>(l) {
        Ok(v) => v,
        Err(_) => serde_json::json!({ "message": l }),
    };
    Line {
        at: Timestamp::now(),
        kind: "ship".to_string(),
        severity: super::severity("ship", &json),
        json: json.to_string(),
    }
}

async fn send_with_retries(
    sink: &mut dyn Sink,
    name: &str,
    batch: &[Line],
    opts: &ShipOptions,
) -> Result<(), ShipError> {
    let mut rest = batch;
    let mut failures = 0;
    loop {
        match sink.send(rest).await {
            Ok(()) => return Ok(()),
            // A batch too large is retried like any failure: `events ship`
            // sends what the pipe gives and reports a refusal.
            Err(SendError {
                message,
                confirmed,
                retry_after,
                ..
            }) => {
                rest = &rest[confirmed.min(rest.len())..];
                failures += 1;
                if failures >= STREAM_ATTEMPTS {
                    return Err(sink_error(name, message, retry_after));
                }
                let delay = retry_delay(
                    failures,
                    retry_after,
                    opts.min_backoff,
                    opts.max_backoff.min(Duration::from_secs(30)),
                    rand::random::<f64>(),
                );
                tracing::warn!(sink = %name, attempt = failures, retry_in = ?delay, error = %message, "sending failed; will retry");
                tokio::time::sleep(delay).await;
            }
        }
    }
}
