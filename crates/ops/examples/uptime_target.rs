//! A minimal HTTP/1.1 server for `bench/uptime.sh`: answers `200 ok` to
//! every request on one thread, keeping connections alive, so the benchmark
//! measures Bulwark rather than its target (Python's threading server
//! spends more CPU per request than the engine does).
//!
//!     cargo run --release -p bulwark-ops --example uptime_target -- 127.0.0.1:0
//!
//! Prints the bound address on the first line of stdout.

use std::io::Write;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: text/plain\r\n\r\nok";

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_string());
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let listener = tokio::net::TcpListener::bind(&addr).await?;
            let mut out = std::io::stdout();
            writeln!(out, "{}", listener.local_addr()?)?;
            out.flush()?;
            loop {
                let (sock, _) = listener.accept().await?;
                tokio::spawn(serve(sock));
            }
        })
}

/// Answers each request on the connection (requests carry no body: the
/// benchmark sends plain GETs) until the client closes it.
async fn serve(mut sock: tokio::net::TcpStream) {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0_u8; 4096];
    loop {
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.drain(..end + 4);
            if sock.write_all(RESPONSE).await.is_err() {
                return;
            }
        }
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}
