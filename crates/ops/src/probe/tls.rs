//! `tls://host:port`: up when a TLS handshake with a certificate chain valid
//! for `host` succeeds and the leaf certificate is not too close to expiry.

use std::sync::{Arc, OnceLock};

use tokio_rustls::rustls;

use super::Outcome;

fn connector() -> tokio_rustls::TlsConnector {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map(|b| b.with_root_certificates(roots).with_no_client_auth());
        match config {
            Ok(c) => Arc::new(c),
            // The ring provider supports the default versions; this arm is
            // unreachable in practice but must not panic.
            Err(_) => Arc::new(
                rustls::ClientConfig::builder()
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth(),
            ),
        }
    });
    tokio_rustls::TlsConnector::from(config.clone())
}

pub(super) async fn probe(host: &str, port: u16, min_days: Option<u32>, now: i64) -> Outcome {
    let name = match rustls::pki_types::ServerName::try_from(host.to_string()) {
        Ok(n) => n,
        Err(_) => return Outcome::fail(None, format!("invalid server name {host:?}")),
    };
    let tcp = match tokio::net::TcpStream::connect((host, port)).await {
        Ok(s) => s,
        Err(e) => return Outcome::fail(None, format!("cannot connect: {}", e.kind())),
    };
    let stream = match connector().connect(name, tcp).await {
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
