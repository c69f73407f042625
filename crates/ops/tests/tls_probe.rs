//! `tls://` monitors against a real TLS server on loopback, with a
//! certificate made here: the probe reads the leaf's expiry, counts whole
//! days left and fails when `cert_min_days` asks for more. The chain must be
//! trusted (web PKI roots, plus roots a `Prober` is given): a self-signed or
//! unknown-CA certificate is a failed handshake, not an expiry reading,
//! because the service's clients would refuse it too.

use std::sync::Arc;
use std::time::Duration;

use bulwark_ops::{parse_settings, MonitorConfig, Prober};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A test CA and a `localhost` leaf it signed, expiring `not_after_unix`.
struct Pki {
    ca: CertificateDer<'static>,
    leaf: CertificateDer<'static>,
    leaf_key: PrivateKeyDer<'static>,
}

/// Sets a certificate time from unix seconds (after 1970, as every time here is).
macro_rules! set_time {
    ($field:expr, $unix:expr) => {
        $field = rcgen::date_time_ymd(1970, 1, 1)
            + Duration::from_secs(u64::try_from($unix).expect("a time after 1970"))
    };
}

fn pki(not_after_unix: i64) -> Pki {
    let now = chrono::Utc::now().timestamp();
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "bulwark test ca");
    set_time!(ca.not_before, now - 86_400);
    set_time!(ca.not_after, now + 3650 * 86_400);
    let ca_cert = ca.self_signed(&ca_key).expect("self-signed ca");

    let leaf_key = KeyPair::generate().expect("leaf key");
    let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).expect("leaf params");
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    set_time!(leaf.not_before, now - 86_400);
    set_time!(leaf.not_after, not_after_unix);
    let leaf_cert = leaf
        .signed_by(&leaf_key, &ca_cert, &ca_key)
        .expect("leaf signed by the ca");
    Pki {
        ca: ca_cert.der().clone(),
        leaf: leaf_cert.der().clone(),
        leaf_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
    }
}

/// Serves TLS with `chain` on a loopback port until the test ends; returns the port.
async fn tls_server(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> u16 {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server certificate");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // The probe only needs the handshake; hold the session open
                // briefly so the client reads it before we hang up.
                if let Ok(stream) = acceptor.accept(sock).await {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    drop(stream);
                }
            });
        }
    });
    port
}

fn monitor(port: u16, min_days: Option<u32>) -> MonitorConfig {
    monitor_at("localhost", port, min_days)
}

fn monitor_at(host: &str, port: u16, min_days: Option<u32>) -> MonitorConfig {
    let min = min_days.map_or(String::new(), |d| format!("cert_min_days = {d}\n"));
    let text = format!(
        "[[monitor]]\nname = \"cert\"\nurl = \"tls://{host}:{port}\"\ntimeout = \"5s\"\n{min}"
    );
    parse_settings(&text, None, &|_| None)
        .unwrap_or_else(|e| panic!("test config does not compile: {e}"))
        .config
        .monitors
        .remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_probe_reads_days_left_from_a_trusted_certificate() {
    // (days of validity left, cert_min_days, expected error or None for up).
    // One hour past the whole days keeps the count stable while the test runs.
    let cases: &[(i64, Option<u32>, Option<&str>)] = &[
        (20, None, None),
        (20, Some(14), None),
        (20, Some(20), None),
        (
            20,
            Some(21),
            Some("certificate expires in 20 days, less than the 21 required"),
        ),
        (
            20,
            Some(30),
            Some("certificate expires in 20 days, less than the 30 required"),
        ),
        (
            3,
            Some(7),
            Some("certificate expires in 3 days, less than the 7 required"),
        ),
        (
            0,
            Some(1),
            Some("certificate expires in 0 days, less than the 1 required"),
        ),
        (400, Some(365), None),
    ];
    for &(days, min, expected) in cases {
        let not_after = chrono::Utc::now().timestamp() + days * 86_400 + 3600;
        let pki = pki(not_after);
        let port = tls_server(vec![pki.leaf.clone(), pki.ca.clone()], pki.leaf_key).await;
        let prober = Prober::with_tls_roots(std::slice::from_ref(&pki.ca));
        let r = prober.probe(&monitor(port, min)).await;
        assert_eq!(
            r.error.as_deref(),
            expected,
            "{days} days left, cert_min_days {min:?}: {r:?}"
        );
        assert_eq!(r.ok, expected.is_none(), "{days} days, {min:?}: {r:?}");
        assert_eq!(r.monitor, "cert");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_probe_refuses_an_untrusted_or_expired_chain() {
    let now = chrono::Utc::now().timestamp();
    // A CA the prober was not told about: the handshake fails and says why.
    let pki_ok = pki(now + 90 * 86_400);
    let port = tls_server(vec![pki_ok.leaf.clone()], pki_ok.leaf_key).await;
    let r = Prober::new().probe(&monitor(port, Some(1))).await;
    assert!(!r.ok, "{r:?}");
    let err = r.error.unwrap();
    assert!(err.starts_with("tls handshake failed"), "{err}");
    assert!(err.contains("UnknownIssuer"), "{err}");
    assert!(!err.contains(&port.to_string()), "names no address: {err}");

    // Trusted but already expired: refused in the handshake as well.
    let expired = pki(now - 3600);
    let port = tls_server(vec![expired.leaf.clone()], expired.leaf_key).await;
    let r = Prober::with_tls_roots(std::slice::from_ref(&expired.ca))
        .probe(&monitor(port, None))
        .await;
    assert!(!r.ok, "{r:?}");
    let err = r.error.unwrap();
    assert!(
        err.starts_with("tls handshake failed") && err.contains("certificate expired"),
        "{err}"
    );

    // Trusted and valid, but for another name: `host` must match.
    let named = pki(now + 90 * 86_400);
    let port = tls_server(vec![named.leaf.clone()], named.leaf_key).await;
    let r = Prober::with_tls_roots(std::slice::from_ref(&named.ca))
        .probe(&monitor_at("127.0.0.1", port, None))
        .await;
    assert!(!r.ok, "{r:?}");
    let err = r.error.unwrap();
    assert!(
        err.starts_with("tls handshake failed") && err.contains("not valid for name"),
        "{err}"
    );
}
