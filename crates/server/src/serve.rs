//! The accept loop: HTTP/1.1 over hyper with the limits `axum::serve` does
//! not have. A client gets `header_read_timeout` to send its request head
//! (and an idle keep-alive connection is closed after as long); at most
//! `max_connections` connections are served at once, the rest wait in the
//! kernel's accept queue; after the shutdown signal, requests in flight get
//! `shutdown_grace`, then their connections are dropped.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::Router;
use bulwark_ops::ServerConfig;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::state::AppState;

/// How [`serve`] treats connections; [`ServeOptions::from_config`] reads
/// them from `[server]`.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Time to receive a request's head, from the connection's start or the
    /// end of the previous response: slow or silent clients are
    /// disconnected, idle keep-alive connections closed.
    pub header_read_timeout: Duration,
    /// Connections served at once. A full server stops accepting until one
    /// closes, so a burst waits in the kernel's backlog rather than being
    /// accepted and dropped.
    pub max_connections: usize,
    /// After the shutdown signal, how long requests in flight may finish.
    pub shutdown_grace: Duration,
}

impl ServeOptions {
    pub fn from_config(server: &ServerConfig) -> ServeOptions {
        ServeOptions {
            header_read_timeout: server.header_read_timeout,
            max_connections: server.max_connections,
            shutdown_grace: server.shutdown_grace,
        }
    }
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions::from_config(&ServerConfig::default())
    }
}

/// First pause after an accept error that is not the peer's (out of file
/// descriptors, of memory); doubled while the errors go on.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Serves [`crate::app`] on `listener` until `shutdown` completes; see
/// the module docs for the limits. Returns once every connection has
/// closed or been dropped at the end of the grace period.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    tokio::spawn({
        let state = state.clone();
        async move { state.warm_up().await }
    });
    let app = crate::app(state.clone());
    let slots = Arc::new(Semaphore::new(connection_slots(options.max_connections)));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout);
    let (stop, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut backoff = ACCEPT_BACKOFF;
    tokio::pin!(shutdown);
    loop {
        while connections.try_join_next().is_some() {}
        // A slot first, then a connection: while every slot is taken the
        // listener is not polled and new connections queue in the kernel.
        let permit = tokio::select! {
            biased;
            () = &mut shutdown => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break, // never closed
            },
        };
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = ACCEPT_BACKOFF;
                let conn = serve_connection(
                    stream,
                    peer,
                    app.clone(),
                    http.clone(),
                    stopping.clone(),
                    permit,
                );
                connections.spawn(conn);
            }
            // The peer gave up between connecting and our accept.
            Err(e) if is_connection_error(&e) => {}
            Err(e) => {
                // EMFILE and the like: retrying at once would spin.
                tracing::error!(error = %e, retry_in = ?backoff, "cannot accept a connection");
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
            }
        }
    }
    // New connections are refused from here on.
    drop(listener);
    let _ = stop.send(true);
    state.closing.send_replace(true);
    let drained = tokio::time::timeout(options.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = connections.len(),
            grace = ?options.shutdown_grace,
            "shutdown grace over: dropping the connections still open"
        );
        connections.shutdown().await;
    }
}

/// One connection, holding its slot until it ends.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    http: http1::Builder,
    mut stopping: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    // Small JSON answers should not wait for Nagle's algorithm.
    let _ = stream.set_nodelay(true);
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        // What `into_make_service_with_connect_info` gave handlers: the
        // limiter and the audit trail need the peer.
        request.extensions_mut().insert(ConnectInfo(peer));
        tower::Service::call(&mut app.clone(), request)
    });
    let conn = http
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(conn);
    let stop_requested = async move {
        let _ = stopping.wait_for(|stop| *stop).await;
    };
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = stop_requested => {
            // Finish the request in flight, if any, then close.
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        // Timeouts and clients that went away: routine, not errors of ours.
        tracing::debug!(client = %peer, error = %e, "connection ended with an error");
    }
}

/// Errors about one connection, not the listener: the next accept works.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        e.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    )
}

/// `max_connections`, lowered when the open-file limit could not hold that
/// many sockets besides what the rest of the process needs (the store,
/// logs, probes, repositories): running out of descriptors breaks more than
/// the API.
fn connection_slots(max_connections: usize) -> usize {
    let max = max_connections.max(1);
    let Some(limit) = open_file_limit() else {
        return max;
    };
    let room = descriptors_for_connections(limit);
    if max > room {
        tracing::warn!(
            max_connections = max,
            open_file_limit = limit,
            serving = room,
            "max_connections is more than the open-file limit leaves room for; \
             raise the limit (LimitNOFILE= in a systemd unit, ulimit -n) to serve more"
        );
        return room;
    }
    max
}

/// Of `limit` descriptors, what connections may use: a quarter plus 64 is
/// kept for everything else.
fn descriptors_for_connections(limit: u64) -> usize {
    let room = limit.saturating_sub(limit / 4 + 64).max(1);
    usize::try_from(room).unwrap_or(usize::MAX)
}

/// The soft `RLIMIT_NOFILE`, from `/proc/self/limits` (Linux only; no
/// libc call, the crate forbids `unsafe`).
fn open_file_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_open_file_limit(&text)
}

fn parse_open_file_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?;
    soft.parse().ok() // "unlimited" => None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_file_limit_from_proc() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                    Max processes             63413                63413                processes \n\
                    Max open files            1024                 524288               files     \n";
        assert_eq!(parse_open_file_limit(text), Some(1024));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_open_file_limit(unlimited), None);
        assert_eq!(parse_open_file_limit(""), None);
    }

    #[test]
    fn connections_leave_descriptors_for_the_rest() {
        for (limit, room) in [(256, 128), (1024, 704), (65_536, 49_088), (10, 1)] {
            assert_eq!(descriptors_for_connections(limit), room, "{limit}");
        }
    }
}
