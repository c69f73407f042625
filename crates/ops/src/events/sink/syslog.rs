//! `type = "syslog"`: RFC 5424 messages over UDP (RFC 5426, one datagram
//! each, cut at `max_message`), TCP (RFC 6587 octet counting) or TLS
//! (RFC 5425, the same framing).
//!
//! Syslog has no acknowledgements: a batch counts as confirmed once every
//! datagram is handed to the kernel, or every frame is written and
//! flushed on the stream. A stream that breaks midway may have delivered
//! part of the batch, which its retry then sends again; nothing is lost.

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};

use super::{Line, SendError, Sink};
use crate::config::{SyslogSink as Config, SyslogTransport};
use crate::BoxFuture;

const IO_TIMEOUT: Duration = Duration::from_secs(10);

enum Conn {
    Udp(UdpSocket),
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

pub(super) struct SyslogSink {
    cfg: Config,
    hostname: String,
    connector: Option<tokio_rustls::TlsConnector>,
    conn: Option<Conn>,
}

impl SyslogSink {
    pub(super) fn new(cfg: &Config) -> Result<SyslogSink, String> {
        let connector = match cfg.transport {
            SyslogTransport::Tls => {
                let extra = match &cfg.ca_file {
                    None => Vec::new(),
                    Some(path) => {
                        let pem = std::fs::read(path)
                            .map_err(|e| format!("cannot read ca_file {}: {e}", path.display()))?;
                        let certs: Vec<CertificateDer<'static>> =
                            CertificateDer::pem_slice_iter(&pem)
                                .collect::<Result<_, _>>()
                                .map_err(|e| {
                                    format!(
                                        "ca_file {} is not PEM certificates: {e:?}",
                                        path.display()
                                    )
                                })?;
                        if certs.is_empty() {
                            return Err(format!("ca_file {} holds no certificate", path.display()));
                        }
                        certs
                    }
                };
                Some(crate::probe::tls::connector(&extra))
            }
            _ => None,
        };
        Ok(SyslogSink {
            hostname: cfg.hostname.clone().unwrap_or_else(local_hostname),
            cfg: cfg.clone(),
            connector,
            conn: None,
        })
    }

    async fn connect(&self) -> Result<Conn, String> {
        let addr = (self.cfg.host.as_str(), self.cfg.port);
        let target = format!("{}:{}", self.cfg.host, self.cfg.port);
        match self.cfg.transport {
            SyslogTransport::Udp => {
                let remote = tokio::net::lookup_host(addr)
                    .await
                    .map_err(|e| format!("cannot resolve {target}: {e}"))?
                    .next()
                    .ok_or_else(|| format!("{target} resolves to no address"))?;
                let local = if remote.is_ipv4() {
                    "0.0.0.0:0"
                } else {
                    "[::]:0"
                };
                let socket = UdpSocket::bind(local)
                    .await
                    .map_err(|e| format!("cannot open a udp socket: {e}"))?;
                socket
                    .connect(remote)
                    .await
                    .map_err(|e| format!("cannot address {target}: {e}"))?;
                Ok(Conn::Udp(socket))
            }
            SyslogTransport::Tcp | SyslogTransport::Tls => {
                let tcp = tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(addr))
                    .await
                    .map_err(|_| format!("connecting to {target} timed out"))?
                    .map_err(|e| format!("cannot connect to {target}: {e}"))?;
                let _ = tcp.set_nodelay(true);
                let Some(connector) = &self.connector else {
                    return Ok(Conn::Tcp(tcp));
                };
                let name = ServerName::try_from(self.cfg.host.clone())
                    .map_err(|_| format!("invalid server name {:?}", self.cfg.host))?;
                let tls = tokio::time::timeout(IO_TIMEOUT, connector.connect(name, tcp))
                    .await
                    .map_err(|_| format!("tls handshake with {target} timed out"))?
                    .map_err(|e| format!("tls handshake with {target} failed: {e}"))?;
                Ok(Conn::Tls(Box::new(tls)))
            }
        }
    }

    async fn deliver(&mut self, lines: &[Line]) -> Result<(), String> {
        if self.conn.is_none() {
            self.conn = Some(self.connect().await?);
        }
        let pid = std::process::id();
        let max = self.cfg.max_message;
        let messages = lines
            .iter()
            .map(|l| format_message(self.cfg.facility, &self.hostname, pid, l));
        let result = match self.conn.as_mut() {
            Some(Conn::Udp(socket)) => {
                let mut r = Ok(());
                for m in messages {
                    let m = truncate(&m, max);
                    if let Err(e) = socket.send(m.as_bytes()).await {
                        r = Err(format!(
                            "cannot send to {}:{}: {e}",
                            self.cfg.host, self.cfg.port
                        ));
                        break;
                    }
                }
                r
            }
            Some(Conn::Tcp(s)) => write_frames(s, messages).await,
            Some(Conn::Tls(s)) => write_frames(s.as_mut(), messages).await,
            None => Err("not connected".to_string()),
        };
        if let Err(e) = result {
            // The next batch starts on a fresh connection.
            self.conn = None;
            return Err(e);
        }
        Ok(())
    }
}

impl Sink for SyslogSink {
    fn send<'a>(&'a mut self, lines: &'a [Line]) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move { self.deliver(lines).await.map_err(SendError::new) })
    }
}

/// Octet-counted frames (`LEN SP MSG`), written and flushed.
async fn write_frames<W: tokio::io::AsyncWrite + Unpin>(
    w: &mut W,
    messages: impl Iterator<Item = String>,
) -> Result<(), String> {
    let mut buf = Vec::new();
    for m in messages {
        buf.extend_from_slice(format!("{} ", m.len()).as_bytes());
        buf.extend_from_slice(m.as_bytes());
    }
    let io = async {
        w.write_all(&buf).await?;
        w.flush().await
    };
    tokio::time::timeout(IO_TIMEOUT, io)
        .await
        .map_err(|_| "writing to the syslog stream timed out".to_string())?
        .map_err(|e| format!("cannot write to the syslog stream: {e}"))
}

/// `<PRI>1 TIMESTAMP HOSTNAME bulwark PROCID MSGID [origin ...] MSG`.
pub(crate) fn format_message(facility: u8, hostname: &str, pid: u32, line: &Line) -> String {
    let pri = u32::from(facility) * 8 + u32::from(line.severity.min(7));
    let ts = line.at.to_string();
    let msgid: String = line
        .kind
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(32)
        .collect();
    let msgid = if msgid.is_empty() {
        "-".to_string()
    } else {
        msgid
    };
    format!(
        "<{pri}>1 {ts} {hostname} bulwark {pid} {msgid} [origin software=\"bulwark\" swVersion=\"{}\"] {}",
        env!("CARGO_PKG_VERSION"),
        line.json
    )
}

/// `message` cut to at most `max` bytes at a character boundary.
pub(crate) fn truncate(message: &str, max: usize) -> &str {
    if message.len() <= max {
        return message;
    }
    let mut cut = max;
    while !message.is_char_boundary(cut) {
        cut -= 1;
    }
    &message[..cut]
}

/// The HOSTNAME field: the kernel's host name, `-` (NILVALUE) when unknown.
fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| {
            h.trim()
                .chars()
                .filter(|c| c.is_ascii_graphic())
                .take(255)
                .collect::<String>()
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "-".to_string())
}
