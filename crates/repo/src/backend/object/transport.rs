//! The HTTP transport under every object store: reqwest, with a timeout on
//! each attempt and retries with exponential backoff and full jitter on
//! the answers object stores give when they are busy or briefly broken
//! (429, 5xx — S3's `SlowDown` is a 503 —, 408, resets, timeouts),
//! honouring `Retry-After`.
//!
//! Retrying here, under the signing layer, resends the very request that
//! was signed: a PUT carries its whole body (`Buffer` clones are cheap), so
//! a retried upload is the same idempotent write. What the transport
//! cannot see is a body cut short after the headers arrived; the backend
//! retries those reads itself (see `ObjectBackend::read_retrying`).

use std::time::Duration;

use http::{Request, Response, StatusCode};
use opendal::{Buffer, Error, ErrorKind, HttpBody, HttpTransport};
use opendal_http_transport_reqwest::ReqwestTransport;
use rand::Rng;

/// How hard to try.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    /// Attempts per request, the first included.
    pub attempts: u32,
    /// The first backoff's upper bound; doubled per attempt.
    pub base: Duration,
    /// No backoff (or `Retry-After`) longer than this.
    pub cap: Duration,
    /// Until the answer's headers, for a request without a body.
    pub timeout: Duration,
}

impl RetryPolicy {
    pub(crate) const DEFAULT: RetryPolicy = RetryPolicy {
        attempts: 8,
        base: Duration::from_millis(100),
        cap: Duration::from_secs(20),
        timeout: Duration::from_secs(30),
    };

    /// Exponential backoff with full jitter: uniform in
    /// `[0, min(cap, base * 2^retry)]`, so that many clients backing off
    /// together do not come back together.
    pub(crate) fn backoff(&self, retry: u32) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32 << retry.min(16))
            .min(self.cap);
        ceiling.mul_f64(rand::thread_rng().gen_range(0.0..=1.0))
    }

    /// The attempt's deadline: uploads get one more second per 256 KiB, so
    /// a 16 MiB pack may take 94 s on a slow link before it counts as hung.
    fn attempt_timeout(&self, body_len: usize) -> Duration {
        self.timeout + Duration::from_secs((body_len / (256 * 1024)) as u64)
    }
}

/// Statuses that say "try again": overloaded, throttled, or a broken hop.
fn retryable(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

/// `Retry-After` in seconds (the form object stores send), capped.
fn retry_after(resp: &Response<HttpBody>, cap: Duration) -> Option<Duration> {
    let secs: u64 = resp
        .headers()
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs).min(cap))
}

/// reqwest with retries; see the module comment.
pub(crate) struct RetryingTransport {
    inner: ReqwestTransport,
    policy: RetryPolicy,
}

impl RetryingTransport {
    pub(crate) fn new(policy: RetryPolicy) -> RetryingTransport {
        RetryingTransport {
            inner: ReqwestTransport::default(),
            policy,
        }
    }
}

impl HttpTransport for RetryingTransport {
    async fn fetch(&self, req: Request<Buffer>) -> opendal::Result<Response<HttpBody>> {
        let (parts, body) = req.into_parts();
        let deadline = self.policy.attempt_timeout(body.len());
        let mut retry = 0;
        loop {
            let attempt = Request::from_parts(parts.clone(), body.clone());
            let last = retry + 1 >= self.policy.attempts;
            // What the last attempt gets is persistent ("temporary, but
            // retrying did not help"): nothing above retries it again.
            let wait = match tokio::time::timeout(deadline, self.inner.fetch(attempt)).await {
                Ok(Ok(resp)) if retryable(resp.status()) && last => {
                    return Err(Error::new(
                        ErrorKind::Unexpected,
                        format!("{} after {} attempts", resp.status(), self.policy.attempts),
                    )
                    .set_persistent())
                }
                Ok(Ok(resp)) if retryable(resp.status()) => retry_after(&resp, self.policy.cap)
                    .unwrap_or_else(|| self.policy.backoff(retry)),
                Ok(Ok(resp)) => return Ok(resp),
                Ok(Err(e)) if last => return Err(e.set_persistent()),
                // A request that cannot be built will not be fixed by waiting.
                Ok(Err(e)) if e.kind() == ErrorKind::ConfigInvalid => return Err(e),
                Ok(Err(_)) => self.policy.backoff(retry),
                Err(_) if last => {
                    return Err(Error::new(
                        ErrorKind::Unexpected,
                        format!(
                            "no answer within {} s ({} attempts)",
                            deadline.as_secs(),
                            self.policy.attempts
                        ),
                    )
                    .set_persistent())
                }
                Err(_) => self.policy.backoff(retry),
            };
            tokio::time::sleep(wait).await;
            retry += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_under_the_cap() {
        let p = RetryPolicy::DEFAULT;
        for retry in 0..40 {
            let ceiling = p.base.saturating_mul(1 << retry.min(16)).min(p.cap);
            for _ in 0..20 {
                assert!(p.backoff(retry) <= ceiling);
            }
        }
        // Jitter: not every wait is the same.
        let waits: std::collections::HashSet<_> = (0..20).map(|_| p.backoff(5)).collect();
        assert!(waits.len() > 1);
    }

    #[test]
    fn uploads_get_time_for_their_size() {
        let p = RetryPolicy::DEFAULT;
        assert_eq!(p.attempt_timeout(0), p.timeout);
        assert_eq!(
            p.attempt_timeout(16 << 20),
            p.timeout + Duration::from_secs(64)
        );
    }
}
