//! Probes against real servers on loopback: what each check accepts and
//! rejects, and that failures name the reason but never the URL.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bulwark_ops::{parse_settings, MonitorConfig, Prober};
use tokio::io::AsyncWriteExt;

/// A server answering every request with `status` and `body` after `delay`,
/// keeping the raw requests it saw.
async fn server(
    status: u16,
    body: &'static str,
    delay: Duration,
) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let s = s.clone();
            tokio::spawn(async move {
                let Some((head, req_body)) = common::read_request(&mut sock).await else {
                    return;
                };
                s.lock().unwrap().push(format!(
                    "{head}\r\n\r\n{}",
                    String::from_utf8_lossy(&req_body)
                ));
                tokio::time::sleep(delay).await;
                let reply = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(reply.as_bytes()).await;
            });
        }
    });
    (addr, seen)
}

fn monitor(extra: &str) -> MonitorConfig {
    let text = format!("[[monitor]]\nname = \"m\"\n{extra}\n");
    parse_settings(&text, None, &|_| None)
        .unwrap_or_else(|e| panic!("config: {e}"))
        .config
        .monitors
        .remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_checks_accept_and_reject() {
    let (addr, _) = server(200, r#"{"status":"UP","db":{"ok":true}}"#, Duration::ZERO).await;
    let (down, _) = server(503, "maintenance", Duration::ZERO).await;
    let (slow, _) = server(200, "{}", Duration::from_millis(400)).await;
    let p = Prober::new();
    // (monitor config lines, ok, error contains)
    let cases: Vec<(String, bool, &str)> = vec![
        (format!("url = \"http://{addr}/health\""), true, ""),
        (
            format!("url = \"http://{addr}/health?token=s3cret\"\nbody_contains = \"UP\""),
            true,
            "",
        ),
        (
            format!("url = \"http://{addr}/health?token=s3cret\"\nbody_contains = \"DOWN\""),
            false,
            "body does not contain",
        ),
        (
            format!("url = \"http://{addr}/\"\njson = {{ \"status\" = \"UP\", \"db.ok\" = true }}"),
            true,
            "",
        ),
        (
            format!("url = \"http://{addr}/\"\njson = {{ \"db.ok\" = false }}"),
            false,
            "json db.ok is true",
        ),
        (
            format!("url = \"http://{addr}/\"\nexpect_status = 204"),
            false,
            "unexpected status 200",
        ),
        (
            format!("url = \"http://{down}/?token=s3cret\""),
            false,
            "unexpected status 503",
        ),
        (
            format!("url = \"http://{down}/\"\nexpect_status = 503"),
            true,
            "",
        ),
        (
            format!("url = \"http://{slow}/\"\nmax_latency = \"100ms\""),
            false,
            "over the maximum",
        ),
        (
            format!("url = \"http://{slow}/\"\ntimeout = \"100ms\""),
            false,
            "timed out",
        ),
        (
            "url = \"http://127.0.0.1:9/?token=s3cret\"".to_string(),
            false,
            "cannot connect",
        ),
    ];
    for (extra, ok, error) in cases {
        let r = p.probe(&monitor(&extra)).await;
        assert_eq!(r.ok, ok, "{extra}: {r:?}");
        let e = r.error.clone().unwrap_or_default();
        assert!(e.contains(error), "{extra}: {e}");
        assert!(
            !e.contains("s3cret") && !e.contains("127.0.0.1"),
            "{extra}: the error names the url: {e}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_probe_sends_method_headers_and_body() {
    let (addr, seen) = server(200, "{}", Duration::ZERO).await;
    let m = monitor(&format!(
        "url = \"http://{addr}/rpc\"\nmethod = \"POST\"\nbody = \"ping\"\nheaders = {{ Authorization = \"Bearer t0ken\" }}"
    ));
    let r = Prober::new().probe(&m).await;
    assert!(r.ok, "{r:?}");
    assert_eq!(r.status, Some(200));
    let req = seen.lock().unwrap()[0].clone();
    assert!(req.starts_with("POST /rpc HTTP/1.1"), "{req}");
    assert!(
        req.to_lowercase().contains("authorization: bearer t0ken"),
        "{req}"
    );
    assert!(req.ends_with("ping"), "{req}");
    // The header value is a secret in the config: Debug output hides it.
    assert!(!format!("{m:?}").contains("t0ken"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_and_tls_probes() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        // Accept and drop: a TCP service that speaks no TLS.
        while let Ok((sock, _)) = listener.accept().await {
            drop(sock);
        }
    });
    let p = Prober::new();
    let r = p
        .probe(&monitor(&format!("url = \"tcp://127.0.0.1:{port}\"")))
        .await;
    assert!(r.ok, "{r:?}");
    let r = p.probe(&monitor("url = \"tcp://127.0.0.1:9\"")).await;
    assert!(!r.ok);
    assert!(r.error.unwrap().contains("cannot connect"));
    // A plain TCP service fails the TLS handshake.
    let r = p
        .probe(&monitor(&format!(
            "url = \"tls://localhost:{port}\"\ntimeout = \"2s\""
        )))
        .await;
    assert!(!r.ok);
    assert!(r.error.unwrap().contains("tls handshake failed"));
}
