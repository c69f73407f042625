//! A loopback HTTP/1.1 proxy in front of an object-store emulator that
//! misbehaves the way real stores do: every `fail_every`-th request is
//! answered 503 — S3's `SlowDown` or Azure's `ServerBusy` — (half of them
//! after the emulator has done the work, as when the answer is lost), and
//! every `cut_every`-th response with a body is cut short after its
//! headers promised the whole length. Or, to prove a streamed read starts
//! over cleanly, only the first read of each whole object under a path is
//! cut ([`FaultProxy::cutting_first_whole_reads`]).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// What the proxy did, for the test to check that faults really happened.
#[derive(Default)]
pub struct FaultCounts {
    pub requests: AtomicU64,
    pub failed: AtomicU64,
    pub cut: AtomicU64,
    /// The access key id of every signed S3 request (`Credential=KEY/...`),
    /// to tell which credentials a client used.
    pub key_ids: Mutex<BTreeSet<String>>,
    /// Every request's method and path without the query (`GET /bucket/key`).
    pub lines: Mutex<Vec<String>>,
}

pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    pub counts: Arc<FaultCounts>,
    stop: Arc<AtomicBool>,
}

/// Which store's "busy" answer the proxy gives.
#[derive(Clone, Copy)]
pub enum Busy {
    /// `503 Slow Down` with S3's XML error.
    S3,
    /// `503 Server Busy` with Azure's XML error and `x-ms-error-code`.
    Azure,
}

impl Busy {
    fn response(self) -> String {
        let (reason, extra, body) = match self {
            Busy::S3 => ("Slow Down", "", SLOW_DOWN),
            Busy::Azure => (
                "Server Busy",
                "x-ms-error-code: ServerBusy\r\n",
                SERVER_BUSY,
            ),
        };
        format!(
            "HTTP/1.1 503 {reason}\r\nContent-Type: application/xml\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
    }
}

const SLOW_DOWN: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code>\
<Message>Please reduce your request rate.</Message></Error>";
const SERVER_BUSY: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Error><Code>ServerBusy</Code>\
<Message>The server is currently unable to receive requests. Please retry your request.</Message></Error>";

/// What the proxy does wrong.
#[derive(Clone)]
struct Faults {
    busy: Busy,
    fail_every: u64,
    cut_every: u64,
    /// Cut the first answer carrying a whole object (from its first byte
    /// to its last) whose request path contains this, once per path.
    cut_first_whole: Option<String>,
    /// Cut the first S3 listing page (`?list-type=2`), once.
    cut_first_listing: bool,
    cut_paths: Arc<Mutex<BTreeSet<String>>>,
}

impl Faults {
    /// Nothing wrong: every request answered as the emulator answers it.
    fn none() -> Faults {
        Faults {
            busy: Busy::S3,
            fail_every: u64::MAX,
            cut_every: u64::MAX,
            cut_first_whole: None,
            cut_first_listing: false,
            cut_paths: Default::default(),
        }
    }
}

impl FaultProxy {
    /// A proxy to `upstream` (`http://host:port`) answering as S3 does.
    pub fn start(upstream: &str, fail_every: u64, cut_every: u64) -> FaultProxy {
        FaultProxy::start_as(Busy::S3, upstream, fail_every, cut_every)
    }

    /// A proxy to `upstream` whose 503s are `busy`'s.
    pub fn start_as(busy: Busy, upstream: &str, fail_every: u64, cut_every: u64) -> FaultProxy {
        FaultProxy::start_with(
            upstream,
            Faults {
                busy,
                fail_every,
                cut_every,
                ..Faults::none()
            },
        )
    }

    /// A proxy to `upstream` that answers everything but cuts the first
    /// S3 listing page half-way through its body: a listing must be asked
    /// again, not fail the command.
    pub fn cutting_first_listing(upstream: &str) -> FaultProxy {
        FaultProxy::start_with(
            upstream,
            Faults {
                cut_first_listing: true,
                ..Faults::none()
            },
        )
    }

    /// A proxy to `upstream` that answers everything, but cuts the first
    /// read of each whole object whose path contains `path_part` (`/data/`:
    /// every pack) half-way through its body, once: what `check
    /// --read-data` streams must be read again from its start.
    pub fn cutting_first_whole_reads(upstream: &str, path_part: &str) -> FaultProxy {
        FaultProxy::start_with(
            upstream,
            Faults {
                cut_first_whole: Some(path_part.to_string()),
                ..Faults::none()
            },
        )
    }

    fn start_with(upstream: &str, faults: Faults) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fault proxy");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let counts = Arc::new(FaultCounts::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s) = (counts.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (c, upstream, faults) = (c.clone(), upstream.clone(), faults.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, &upstream, &c, &faults);
                });
            }
        });
        FaultProxy { url, counts, stop }
    }
}

/// The head (request or status line plus headers) and the value of one
/// header.
fn read_head(r: &mut impl BufRead) -> std::io::Result<Option<Vec<String>>> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if line.is_empty() {
            return Ok(Some(lines));
        }
        lines.push(line);
    }
}

fn header<'a>(head: &'a [String], name: &str) -> Option<&'a str> {
    head.iter().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Whether a response head answers with a whole object: 200, or 206 with
/// a `Content-Range` from the first byte to the last.
fn whole_object(resp_head: &[String]) -> bool {
    let status = resp_head.first().map(String::as_str).unwrap_or("");
    if status.starts_with("HTTP/1.1 200") {
        return true;
    }
    let Some(range) = header(resp_head, "content-range") else {
        return false;
    };
    let parse = || -> Option<bool> {
        let (span, total) = range.strip_prefix("bytes ")?.split_once('/')?;
        let (first, last) = span.split_once('-')?;
        let (first, last, total): (u64, u64, u64) =
            (first.parse().ok()?, last.parse().ok()?, total.parse().ok()?);
        Some(first == 0 && last + 1 == total)
    };
    status.starts_with("HTTP/1.1 206") && parse().unwrap_or(false)
}

fn serve(
    client: TcpStream,
    upstream: &str,
    counts: &FaultCounts,
    faults: &Faults,
) -> std::io::Result<()> {
    let Faults {
        busy,
        fail_every,
        cut_every,
        ..
    } = *faults;
    let mut reader = BufReader::new(client.try_clone()?);
    let mut client = client;
    while let Some(head) = read_head(&mut reader)? {
        let len: usize = header(&head, "content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        reader.read_exact(&mut body)?;
        if let Some(key) = header(&head, "authorization")
            .and_then(|a| a.split_once("Credential="))
            .and_then(|(_, c)| c.split('/').next())
        {
            counts.key_ids.lock().unwrap().insert(key.to_string());
        }
        if let Some((method, rest)) = head[0].split_once(' ') {
            let path = rest.split([' ', '?']).next().unwrap_or("");
            counts
                .lines
                .lock()
                .unwrap()
                .push(format!("{method} {path}"));
        }
        let n = counts.requests.fetch_add(1, Ordering::SeqCst) + 1;
        let fail = n % fail_every == 0;
        // Half the failures before the emulator sees the request, half
        // after it did the work (the answer was lost on the way back).
        if !(fail && (n / fail_every) % 2 == 0) {
            let response = forward(upstream, &head, &body)?;
            if !fail {
                let (resp_head, resp_body) = split_response(&response);
                let is_head = head[0].starts_with("HEAD ");
                // The object's path, not a listing's query naming it.
                let path = head[0]
                    .split(' ')
                    .nth(1)
                    .and_then(|p| p.split('?').next())
                    .unwrap_or("");
                let cut_first = faults.cut_first_whole.as_deref().is_some_and(|part| {
                    let lines: Vec<String> = String::from_utf8_lossy(resp_head)
                        .lines()
                        .map(str::to_string)
                        .collect();
                    path.contains(part)
                        && whole_object(&lines)
                        && faults.cut_paths.lock().unwrap().insert(path.to_string())
                });
                let cut_listing = faults.cut_first_listing
                    && head[0].contains("list-type=2")
                    && faults.cut_paths.lock().unwrap().insert("(listing)".into());
                if !is_head
                    && resp_body.len() > 16
                    && (n % cut_every == 0 || cut_first || cut_listing)
                {
                    counts.cut.fetch_add(1, Ordering::SeqCst);
                    client.write_all(resp_head)?;
                    client.write_all(&resp_body[..resp_body.len() / 2])?;
                    return Ok(()); // and close: the body ends early
                }
                client.write_all(&response)?;
                continue;
            }
        }
        counts.failed.fetch_add(1, Ordering::SeqCst);
        client.write_all(busy.response().as_bytes())?;
    }
    Ok(())
}

/// One request to the emulator on a fresh connection; the whole answer,
/// re-framed with a Content-Length so the client's connection stays open.
fn forward(upstream: &str, head: &[String], body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut conn = TcpStream::connect(upstream)?;
    let mut req = Vec::new();
    for line in head {
        if line.to_ascii_lowercase().starts_with("connection:") {
            continue;
        }
        req.extend_from_slice(line.as_bytes());
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"Connection: close\r\n\r\n");
    req.extend_from_slice(body);
    conn.write_all(&req)?;
    let mut reader = BufReader::new(conn);
    let resp_head = read_head(&mut reader)?.unwrap_or_default();
    let mut resp_body = Vec::new();
    let is_head = head[0].starts_with("HEAD ");
    if !is_head {
        if header(&resp_head, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            loop {
                let mut size = String::new();
                reader.read_line(&mut size)?;
                let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
                let mut chunk = vec![0; size + 2];
                reader.read_exact(&mut chunk)?;
                if size == 0 {
                    break;
                }
                resp_body.extend_from_slice(&chunk[..size]);
            }
        } else {
            reader.read_to_end(&mut resp_body)?;
        }
    }
    let mut out = Vec::new();
    for line in &resp_head {
        let lower = line.to_ascii_lowercase();
        if lower.starts_with("connection:")
            || lower.starts_with("transfer-encoding:")
            || (!is_head && lower.starts_with("content-length:"))
        {
            continue;
        }
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !is_head {
        out.extend_from_slice(format!("Content-Length: {}\r\n", resp_body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&resp_body);
    Ok(out)
}

/// (head with its blank line, body) of a response `forward` framed.
fn split_response(response: &[u8]) -> (&[u8], &[u8]) {
    let end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(response.len(), |p| p + 4);
    response.split_at(end)
}
