//! Probes: one attempt to reach a monitored service and judge its answer.
//!
//! A probe never fails as a Rust error: every outcome, including "could not
//! connect", is a [`ProbeResult`] with `ok: false` and a short, secret-free
//! reason, because that is what gets stored, alerted on and shown.

pub(crate) mod config;
mod der;
mod http;
mod tcp;
pub(crate) mod tls;

use std::time::{Duration, Instant};

use crate::config::{MonitorConfig, MonitorKind};
use crate::time::Timestamp;

pub use der::not_after_unix;

/// What one probe found.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeResult {
    pub monitor: String,
    /// When the probe started.
    pub at: Timestamp,
    pub ok: bool,
    pub latency: Duration,
    /// The HTTP status, for HTTP probes that got an answer.
    pub status: Option<u16>,
    /// Why it failed; None when ok.
    pub error: Option<String>,
}

impl ProbeResult {
    pub(crate) fn new(monitor: &str, at: Timestamp, started: Instant, outcome: Outcome) -> Self {
        ProbeResult {
            monitor: monitor.to_string(),
            at,
            ok: outcome.error.is_none(),
            latency: started.elapsed(),
            status: outcome.status,
            error: outcome.error,
        }
    }
}

/// A probe's verdict before timing is attached.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub status: Option<u16>,
    pub error: Option<String>,
}

impl Outcome {
    pub(crate) fn ok(status: Option<u16>) -> Outcome {
        Outcome {
            status,
            error: None,
        }
    }

    pub(crate) fn fail(status: Option<u16>, error: impl Into<String>) -> Outcome {
        Outcome {
            status,
            error: Some(error.into()),
        }
    }
}

/// Runs probes; holds the HTTP client so connections are reused across probes.
#[derive(Clone)]
pub struct Prober {
    client: reqwest::Client,
    /// For `tls://` monitors; built once so its root store is parsed once.
    tls: tokio_rustls::TlsConnector,
}

impl std::fmt::Debug for Prober {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prober").finish_non_exhaustive()
    }
}

impl Default for Prober {
    fn default() -> Self {
        Prober::new()
    }
}

impl Prober {
    pub fn new() -> Prober {
        Prober::with_tls_roots(&[])
    }

    /// A prober whose `tls://` checks also trust `roots` (DER certificates),
    /// besides the bundled web PKI roots: a private CA, or a test's own.
    pub fn with_tls_roots(
        roots: &[tokio_rustls::rustls::pki_types::CertificateDer<'static>],
    ) -> Prober {
        let client = reqwest::Client::builder()
            .user_agent(concat!("bulwark/", env!("CARGO_PKG_VERSION")))
            // A monitor judges the answer it was given, not where a redirect
            // leads: 3xx counts as up unless `expect_status` says otherwise.
            .redirect(reqwest::redirect::Policy::none())
            .tls_info(true)
            .build()
            // Only fails when the TLS backend cannot initialise, which the
            // bundled rustls always can; fall back to defaults regardless.
            .unwrap_or_default();
        Prober {
            client,
            tls: tls::connector(roots),
        }
    }

    /// Probes `monitor` once, within its timeout. Push monitors are judged by
    /// the engine from their last heartbeat, so here they report an error.
    pub async fn probe(&self, monitor: &MonitorConfig) -> ProbeResult {
        let at = Timestamp::now();
        let started = Instant::now();
        let now = chrono::Utc::now().timestamp();
        let attempt = async {
            match &monitor.kind {
                MonitorKind::Http(check) => http::probe(&self.client, check, now).await,
                MonitorKind::Tcp { host, port } => tcp::probe(host, *port).await,
                MonitorKind::Tls {
                    host,
                    port,
                    cert_min_days,
                } => tls::probe(&self.tls, host, *port, *cert_min_days, now).await,
                MonitorKind::Push { .. } => {
                    Outcome::fail(None, "push monitors are not probed; they are pinged")
                }
            }
        };
        let outcome = match tokio::time::timeout(monitor.timeout, attempt).await {
            Ok(outcome) => outcome,
            Err(_) => Outcome::fail(
                None,
                format!(
                    "timed out after {}",
                    crate::config::format_duration(monitor.timeout)
                ),
            ),
        };
        let mut result = ProbeResult::new(&monitor.name, at, started, outcome);
        if let (true, MonitorKind::Http(check)) = (result.ok, &monitor.kind) {
            if let Some(max) = check.max_latency {
                if result.latency > max {
                    result.ok = false;
                    result.error = Some(format!(
                        "latency {} ms over the maximum {} ms",
                        result.latency.as_millis(),
                        max.as_millis()
                    ));
                }
            }
        }
        result
    }
}

/// Whole days from `now` (unix seconds) until `not_after`; negative once expired.
pub(crate) fn days_left(not_after: i64, now: i64) -> i64 {
    (not_after - now).div_euclid(86_400)
}

/// The verdict on a certificate expiring at `not_after`.
pub(crate) fn check_cert(not_after: i64, now: i64, min_days: Option<u32>) -> Result<(), String> {
    let left = days_left(not_after, now);
    if not_after <= now {
        return Err("certificate has expired".to_string());
    }
    match min_days {
        Some(min) if left < i64::from(min) => Err(format!(
            "certificate expires in {left} days, less than the {min} required"
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_days() {
        let day = 86_400;
        let check = |not_after: i64, now: i64, min: Option<u32>, ok: bool| {
            assert_eq!(
                check_cert(not_after, now, min).is_ok(),
                ok,
                "{not_after} {now} {min:?}"
            );
        };
        check(30 * day, 0, Some(14), true);
        check(14 * day, 0, Some(14), true);
        check(14 * day - 1, 0, Some(14), false);
        check(day, 0, None, true);
        check(0, 0, None, false);
        check(-day, 0, Some(1), false);
    }
}
