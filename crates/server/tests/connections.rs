//! The real server's connection handling on a loopback port: slow and
//! silent clients are disconnected after the header-read timeout, a full
//! server leaves new connections in the accept queue until a slot frees,
//! and shutdown ends within its grace whatever clients do.
//!
//! Durations here are only guards against a hung test; nothing asserts how
//! fast the server is.

use std::future::Future;
use std::time::Duration;

use bulwark_server::ServeOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod common;
use common::{Harness, Server, ADMIN};

const GUARD: Duration = Duration::from_secs(30);

async fn guard<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(GUARD, f)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

fn options(header_read_timeout: Duration, max_connections: usize) -> ServeOptions {
    ServeOptions {
        header_read_timeout,
        max_connections,
        ..ServeOptions::default()
    }
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: bulwark\r\n\r\n";
/// A request head without its final blank line: the server waits for more.
const HALF_SENT: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: bulwark\r\n";

async fn connect(server: &Server) -> TcpStream {
    TcpStream::connect(server.addr).await.unwrap()
}

/// Reads one response (head and `content-length` body); its text.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return text;
            }
        }
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed before a whole response: {text:?}");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Reads until the server closes the connection; what it sent meanwhile.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk).await {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return out,
            Err(e) => panic!("read failed: {e}"),
        }
    }
}

#[tokio::test]
async fn slow_and_silent_clients_are_disconnected_after_the_header_timeout() {
    let h = Harness::new("").await;
    let server = h.serve(options(Duration::from_millis(300), 16)).await;
    let mut half = connect(&server).await;
    half.write_all(HALF_SENT).await.unwrap();
    let mut silent = connect(&server).await;

    let sent = guard("half-sent request closed", read_until_closed(&mut half)).await;
    assert!(sent.is_empty(), "no answer to half a request: {sent:?}");
    let sent = guard("silent connection closed", read_until_closed(&mut silent)).await;
    assert!(sent.is_empty(), "{sent:?}");

    // Whole requests are still served.
    let mut ok = connect(&server).await;
    ok.write_all(HEALTHZ).await.unwrap();
    let response = guard("healthz", read_response(&mut ok)).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    server.stop().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let h = Harness::new("").await;
    let server = h.serve(options(Duration::from_millis(300), 16)).await;
    let mut conn = connect(&server).await;
    conn.write_all(HEALTHZ).await.unwrap();
    let response = guard("healthz", read_response(&mut conn)).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(!response.to_ascii_lowercase().contains("connection: close"));
    // Kept alive, then closed once idle for the header timeout.
    let sent = guard("idle connection closed", read_until_closed(&mut conn)).await;
    assert!(sent.is_empty(), "{sent:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_full_server_accepts_no_more_until_a_slot_frees() {
    let h = Harness::new("").await;
    // A long header timeout: only a client leaving frees a slot here.
    let server = h.serve(options(Duration::from_secs(600), 2)).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut conn = connect(&server).await;
        conn.write_all(HEALTHZ).await.unwrap();
        let response = guard("healthz", read_response(&mut conn)).await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        // Kept alive: it holds its slot.
        held.push(conn);
    }
    // The kernel completes the handshake, but the server does not accept.
    let mut waiting = connect(&server).await;
    waiting.write_all(HEALTHZ).await.unwrap();
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(500), waiting.read(&mut byte)).await;
    assert!(
        early.is_err(),
        "served while every slot was taken: {early:?}"
    );

    // (A read cut short by the timeout loses nothing: it read nothing.)
    drop(held.pop());
    let response = guard("served once a slot freed", read_response(&mut waiting)).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    server.stop().await;
}

#[tokio::test]
async fn half_open_connections_lose_their_slots_at_the_header_timeout() {
    let h = Harness::new("").await;
    let server = h.serve(options(Duration::from_millis(500), 2)).await;
    // Every slot taken by a half-sent request, as in a slowloris attack.
    let mut attackers = Vec::new();
    for _ in 0..2 {
        let mut conn = connect(&server).await;
        conn.write_all(HALF_SENT).await.unwrap();
        attackers.push(conn);
    }
    // /healthz waits in the accept queue and is answered once the header
    // timeout has closed them.
    let mut probe = connect(&server).await;
    probe.write_all(HEALTHZ).await.unwrap();
    let response = guard("healthz after the timeout", read_response(&mut probe)).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    for conn in &mut attackers {
        let sent = guard("attacker closed", read_until_closed(conn)).await;
        assert!(sent.is_empty(), "{sent:?}");
    }
    server.stop().await;
}

#[tokio::test]
async fn serve_returns_within_the_grace_with_a_half_sent_request_open() {
    let h = Harness::new("").await;
    let mut server = h
        .serve(ServeOptions {
            header_read_timeout: Duration::from_secs(600),
            max_connections: 16,
            shutdown_grace: Duration::from_millis(300),
        })
        .await;
    let mut half = connect(&server).await;
    half.write_all(HALF_SENT).await.unwrap();
    // And an idle keep-alive connection.
    let mut idle = connect(&server).await;
    idle.write_all(HEALTHZ).await.unwrap();
    guard("healthz", read_response(&mut idle)).await;

    server.signal_stop();
    guard("serve returned", &mut server.task).await.unwrap();
    // Both connections are gone, and nobody is listening.
    guard("half-sent closed", read_until_closed(&mut half)).await;
    guard("idle closed", read_until_closed(&mut idle)).await;
    assert!(TcpStream::connect(server.addr).await.is_err());
}

#[tokio::test]
async fn a_request_in_flight_at_shutdown_is_answered() {
    let h = Harness::new("").await;
    let mut server = h
        .serve(ServeOptions {
            header_read_timeout: Duration::from_secs(600),
            max_connections: 16,
            shutdown_grace: Duration::from_secs(600),
        })
        .await;
    let body = br#"{"role":"analyst","name":"late"}"#;
    let head = format!(
        "POST /api/v1/keys HTTP/1.1\r\nHost: bulwark\r\nx-dash-key: {ADMIN}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let mut conn = connect(&server).await;
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(&body[..5]).await.unwrap();
    // In the handler, waiting for the rest of its body.
    guard("request in flight", async {
        while !h
            .state
            .metrics
            .render()
            .contains("bulwark_http_requests_in_flight 1")
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;

    server.signal_stop();
    conn.write_all(&body[5..]).await.unwrap();
    let response = guard("answer", read_response(&mut conn)).await;
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    // The connection then closes and serve returns, before the grace ends.
    guard("closed", read_until_closed(&mut conn)).await;
    guard("serve returned", &mut server.task).await.unwrap();
}
