//! `tls://host:port`: up when a TLS handshake with a certificate chain valid
//! for `host` succeeds and the leaf certificate is not too close to expiry.

use std::sync::{Arc, OnceLock};

use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::CertificateDer;

use super::Outcome;

/// A connector trusting the bundled web PKI roots plus `extra` (private CAs).
/// An untrusted chain fails the probe on purpose: clients of the service
/// would refuse it too, so it is an outage, not just an expiry question.
pub(crate) fn connector(extra: &[CertificateDer<'static>]) -> tokio_rustls::TlsConnector {
    // Every `Prober::new()` shares one config: the root store is built once.
    static DEFAULT: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    if extra.is_empty() {
        return tokio_rustls::TlsConnector::from(
            DEFAULT.get_or_init(|| client_config(&[])).clone(),
        );
    }
    tokio_rustls::TlsConnector::from(client_config(extra))
}

fn client_config(extra: &[CertificateDer<'static>]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    // A root that does not parse is left out; the handshake then fails and
    // names the unknown issuer, which is the honest verdict.
    roots.add_parsable_certificates(extra.iter().cloned());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|b| {
            b.with_root_certificates(roots.clone())
                .with_no_client_auth()
        });
    let config = match config {
        Ok(c) => c,
        // The ring provider supports the default versions; this arm is
        // unreachable in practice but must not panic.
        Err(_) => rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    };
    Arc::new(config)
}

pub(super) async fn probe(
    connector: &tokio_rustls::TlsConnector,
    host: &str,
    port: u16,
    min_days: Option<u32>,
    now: i64,
) -> Outcome {
    let name = match rustls::pki_types::ServerName::try_from(host.to_string()) {
        Ok(n) => n,
        Err(_) => return Outcome::fail(None, format!("invalid server name {host:?}")),
    };
    let tcp = match tokio::net::TcpStream::connect((host, port)).await {
        Ok(s) => s,
        Err(e) => return Outcome::fail(None, format!("cannot connect: {}", e.kind())),
    };
    let stream = match connector.connect(name, tcp).await {
        Ok(s) => s,
        Err(e) => return Outcome::fail(None, format!("tls handshake failed: {e}")),
    };
    let (_, session) = stream.get_ref();
    let Some(leaf) = session.peer_certificates().and_then(|c| c.first()) else {
        return Outcome::fail(None, "the server sent no certificate");
    };
    match super::not_after_unix(leaf.as_ref()) {
        Some(not_after) => match super::check_cert(not_after, now, min_days) {
            Ok(()) => Outcome::ok(None),
            Err(e) => Outcome::fail(None, e),
        },
        None => Outcome::fail(None, "cannot read the certificate's expiry"),
    }
}
