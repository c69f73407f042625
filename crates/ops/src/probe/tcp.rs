//! `tcp://host:port`: up when a TCP connection is accepted.

use super::Outcome;

pub(super) async fn probe(host: &str, port: u16) -> Outcome {
    match tokio::net::TcpStream::connect((host, port)).await {
        Ok(_) => Outcome::ok(None),
        Err(e) => Outcome::fail(None, format!("cannot connect: {}", e.kind())),
    }
}
