//! The sinks: each takes a batch of lines and says how much of it arrived.

use std::path::Path;
use std::time::Duration;

use crate::config::{SinkConfig, SinkKind};
use crate::time::Timestamp;
use crate::BoxFuture;

pub(super) mod cloudwatch;
mod file;
mod http;
pub(super) mod syslog;

/// One message for a sink.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    /// When it happened (CloudWatch's timestamp, syslog's TIMESTAMP).
    pub at: Timestamp,
    /// The event kind (syslog's MSGID), `ship` for `events ship` lines.
    pub kind: String,
    /// RFC 5424 severity, 0..=7.
    pub severity: u8,
    /// One JSON document, no newline.
    pub json: String,
}

/// A batch that did not (entirely) arrive.
#[derive(Debug, Clone)]
pub(crate) struct SendError {
    /// What went wrong, never a URL's path, query or credentials.
    pub message: String,
    /// The first `confirmed` lines did arrive (a sink that sends a batch in
    /// several requests); they must not be sent again.
    pub confirmed: usize,
    /// The receiver's `Retry-After`.
    pub retry_after: Option<Duration>,
    /// The receiver refused the batch for its size (HTTP 413): sending it
    /// again can never succeed, smaller batches may.
    pub too_large: bool,
}

impl SendError {
    pub(crate) fn new(message: impl Into<String>) -> SendError {
        SendError {
            message: message.into(),
            confirmed: 0,
            retry_after: None,
            too_large: false,
        }
    }
}

/// Where lines go. `send` returns once the whole batch is confirmed: the
/// file synced, the datagrams or stream written, the HTTP or CloudWatch
/// request answered with success.
pub(crate) trait Sink: Send {
    fn send<'a>(&'a mut self, lines: &'a [Line]) -> BoxFuture<'a, Result<(), SendError>>;
}

/// The sink `cfg` describes. `env` looks up the standard variables
/// (CloudWatch endpoints and region).
pub(crate) fn open(
    cfg: &SinkConfig,
    data_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Box<dyn Sink>, String> {
    Ok(match &cfg.kind {
        SinkKind::File { path } => Box::new(file::FileSink::new(&data_dir.join("logs").join(path))),
        SinkKind::Syslog(s) => Box::new(syslog::SyslogSink::new(s)?),
        SinkKind::Cloudwatch(c) => Box::new(cloudwatch::CloudwatchSink::new(c, env)?),
        SinkKind::Http(h) => Box::new(http::HttpSink::new(h)?),
    })
}

/// `Retry-After` as seconds or an HTTP date.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    Some(Timestamp::from(at.with_timezone(&chrono::Utc)) - Timestamp::now())
}
