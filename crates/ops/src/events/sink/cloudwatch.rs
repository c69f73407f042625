//! `type = "cloudwatch"`: AWS CloudWatch Logs' JSON protocol
//! (`Logs_20140328.PutLogEvents`), requests signed with AWS SigV4 (service
//! `logs`) by reqsign over AWS's standard credential chain, the one the S3
//! backend uses. The group and stream are created when missing.
//!
//! A batch is cut into PutLogEvents calls within the service's limits
//! (10,000 events, 1,048,576 bytes counting 26 bytes per event, one call
//! within 24 hours, timestamps in order); when a later call fails, the
//! calls before it count as confirmed so they are not sent again.

use std::time::Duration;

use bytes::Bytes;
use reqsign_aws_v4::{Credential, DefaultCredentialProvider, RequestSigner};
use reqsign_core::{Context, OsEnv, ProvideCredentialChain, Signer};
use reqsign_file_read_tokio::TokioFileRead;
use sha2::{Digest, Sha256};

use super::{Line, SendError, Sink};
use crate::config::CloudwatchSink as Config;
use crate::BoxFuture;

pub(crate) const MAX_EVENTS: usize = 10_000;
pub(crate) const MAX_BYTES: usize = 1_048_576;
pub(crate) const EVENT_OVERHEAD: usize = 26;
pub(crate) const MAX_SPAN_MS: i64 = 24 * 3_600_000 - 1;
/// One event's message at most (the service's limit is 256 KiB less the
/// overhead; a longer line is cut at a character boundary).
pub(crate) const MAX_MESSAGE: usize = 262_144 - EVENT_OVERHEAD;

/// reqsign's HTTP client (instance metadata, STS) over reqwest.
#[derive(Debug)]
struct ReqwestSend(reqwest::Client);

impl reqsign_core::HttpSend for ReqwestSend {
    async fn http_send(
        &self,
        req: http::Request<Bytes>,
    ) -> reqsign_core::Result<http::Response<Bytes>> {
        let req = reqwest::Request::try_from(req)
            .map_err(|e| reqsign_core::Error::unexpected(format!("invalid request: {e}")))?;
        let resp = self
            .0
            .execute(req)
            .await
            .map_err(|e| reqsign_core::Error::unexpected(e.without_url().to_string()))?;
        let mut out = http::Response::builder().status(resp.status());
        for (k, v) in resp.headers() {
            out = out.header(k, v);
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| reqsign_core::Error::unexpected(e.without_url().to_string()))?;
        out.body(body)
            .map_err(|e| reqsign_core::Error::unexpected(e.to_string()))
    }
}

pub(super) struct CloudwatchSink {
    client: reqwest::Client,
    signer: Signer<Credential>,
    endpoint: String,
    group: String,
    stream: String,
    /// Group and stream known to exist.
    ready: bool,
}

/// A refused call: the service's error code (`ThrottlingException`) and
/// message, or the transport's failure.
#[derive(Debug)]
struct CallError {
    code: String,
    message: String,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.code.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.code, self.message)
        }
    }
}

impl CloudwatchSink {
    pub(super) fn new(
        cfg: &Config,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<CloudwatchSink, String> {
        let var = |k: &str| env(k).filter(|v| !v.trim().is_empty());
        let region = cfg
            .region
            .clone()
            .or_else(|| var("AWS_REGION"))
            .or_else(|| var("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".to_string());
        let endpoint = cfg
            .endpoint
            .clone()
            .or_else(|| var("AWS_ENDPOINT_URL_LOGS"))
            .or_else(|| var("AWS_ENDPOINT_URL"))
            .unwrap_or_else(|| format!("https://logs.{region}.amazonaws.com"));
        let endpoint = format!("{}/", endpoint.trim_end_matches('/'));
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| format!("cannot build the http client: {e}"))?;
        let signer = Signer::new(
            Context::new()
                .with_file_read(TokioFileRead)
                .with_env(OsEnv)
                .with_http_send(ReqwestSend(client.clone())),
            ProvideCredentialChain::new().push(DefaultCredentialProvider::builder().build()),
            RequestSigner::new("logs", &region),
        );
        Ok(CloudwatchSink {
            client,
            signer,
            endpoint,
            group: cfg.group.clone(),
            stream: cfg.stream.clone(),
            ready: false,
        })
    }

    /// One signed call of the JSON protocol; the answer's JSON.
    async fn call(
        &self,
        action: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, CallError> {
        let transport = |message: String| CallError {
            code: String::new(),
            message,
        };
        let body = body.to_string();
        let req = http::Request::post(&self.endpoint)
            .header("x-amz-target", format!("Logs_20140328.{action}"))
            .header("content-type", "application/x-amz-json-1.1")
            .header(
                "x-amz-content-sha256",
                hex::encode(Sha256::digest(body.as_bytes())),
            )
            .body(())
            .map_err(|e| transport(format!("invalid request: {e}")))?;
        let (mut parts, ()) = req.into_parts();
        self.signer
            .sign(&mut parts, None)
            .await
            .map_err(|e| transport(format!("cannot sign the request: {:?}", e.kind())))?;
        let req = reqwest::Request::try_from(http::Request::from_parts(parts, body))
            .map_err(|e| transport(format!("invalid request: {e}")))?;
        let origin = crate::redact::url_origin(&self.endpoint);
        let resp = self
            .client
            .execute(req)
            .await
            .map_err(|e| transport(format!("{action} to {origin}: {}", e.without_url())))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| transport(format!("{action} to {origin}: {}", e.without_url())))?;
        let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        if status.is_success() {
            return Ok(json);
        }
        // `__type` is `ResourceNotFoundException` or
        // `com.amazonaws.logs#ResourceNotFoundException`.
        let code = json
            .get("__type")
            .and_then(|v| v.as_str())
            .map(|t| t.rsplit('#').next().unwrap_or(t).to_string())
            .unwrap_or_else(|| format!("HTTP {}", status.as_u16()));
        let message = json
            .get("message")
            .or_else(|| json.get("Message"))
            .and_then(|v| v.as_str())
            .map(crate::redact::urls_in)
            .unwrap_or_else(|| format!("{action} answered {status}"));
        Err(CallError { code, message })
    }

    /// Creates the group and the stream; existing ones are fine.
    async fn ensure(&mut self) -> Result<(), CallError> {
        let exists = |r: Result<serde_json::Value, CallError>| match r {
            Ok(_) => Ok(()),
            Err(e) if e.code == "ResourceAlreadyExistsException" => Ok(()),
            Err(e) => Err(e),
        };
        exists(
            self.call(
                "CreateLogGroup",
                &serde_json::json!({ "logGroupName": self.group }),
            )
            .await,
        )?;
        exists(
            self.call(
                "CreateLogStream",
                &serde_json::json!({ "logGroupName": self.group, "logStreamName": self.stream }),
            )
            .await,
        )?;
        self.ready = true;
        Ok(())
    }

    async fn put(&mut self, events: &[(i64, &str)]) -> Result<(), CallError> {
        let body = serde_json::json!({
            "logGroupName": self.group,
            "logStreamName": self.stream,
            "logEvents": events
                .iter()
                .map(|(ts, m)| serde_json::json!({ "timestamp": ts, "message": m }))
                .collect::<Vec<_>>(),
        });
        let answer = self.call("PutLogEvents", &body).await?;
        if let Some(rejected) = answer.get("rejectedLogEventsInfo") {
            // Too old (over 14 days, or before the group's retention) or
            // too new: the service will never take these; resending would
            // not help.
            tracing::warn!(group = %self.group, stream = %self.stream, rejected = %rejected, "cloudwatch rejected some events of a batch");
        }
        Ok(())
    }

    async fn deliver(&mut self, lines: &[Line]) -> Result<(), SendError> {
        let fail = |confirmed: usize, e: CallError| SendError {
            message: format!("cloudwatch logs: {e}"),
            confirmed,
            retry_after: None,
            too_large: false,
        };
        if !self.ready {
            self.ensure().await.map_err(|e| fail(0, e))?;
        }
        let events = timestamps(lines);
        let mut confirmed = 0;
        for chunk in chunks(&events) {
            let mut result = self.put(chunk).await;
            if matches!(&result, Err(e) if e.code == "ResourceNotFoundException") {
                // Deleted behind our back: make it again and retry once.
                self.ready = false;
                self.ensure().await.map_err(|e| fail(confirmed, e))?;
                result = self.put(chunk).await;
            }
            result.map_err(|e| fail(confirmed, e))?;
            confirmed += chunk.len();
        }
        Ok(())
    }
}

impl Sink for CloudwatchSink {
    fn send<'a>(&'a mut self, lines: &'a [Line]) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(self.deliver(lines))
    }
}

/// (timestamp, message) per line, timestamps never going backwards (the
/// service wants them in order; the lines' order is the stream's).
pub(crate) fn timestamps(lines: &[Line]) -> Vec<(i64, &str)> {
    let mut last = i64::MIN;
    lines
        .iter()
        .map(|l| {
            last = last.max(l.at.as_millis());
            (last, super::syslog::truncate(&l.json, MAX_MESSAGE))
        })
        .collect()
}

/// `events` cut into PutLogEvents calls within the service's limits.
pub(crate) fn chunks<'a>(events: &'a [(i64, &'a str)]) -> Vec<&'a [(i64, &'a str)]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, (ts, m)) in events.iter().enumerate() {
        let size = m.len() + EVENT_OVERHEAD;
        let full = i - start >= MAX_EVENTS
            || bytes + size > MAX_BYTES
            || (i > start && ts - events[start].0 > MAX_SPAN_MS);
        if full && i > start {
            out.push(&events[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < events.len() {
        out.push(&events[start..]);
    }
    out
}
