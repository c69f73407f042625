//! Real databases for the store tests: a SQLite file in a temporary
//! directory, and a fresh schema in the PostgreSQL server that
//! `scripts/test.sh` starts (its URL in `BULWARK_TEST_DATABASE_URL`); and
//! loopback HTTP helpers (a webhook receiver, a request reader) for the
//! tests that run the engine or probe servers.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use bulwark_ops::{Store, StoreError};
use sqlx::any::AnyConnectOptions;
use sqlx::{AnyConnection, ConnectOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub enum TestDb {
    Sqlite {
        _dir: tempfile::TempDir,
        url: String,
    },
    Postgres {
        url: String,
    },
}

impl TestDb {
    /// A second, independent connection: what someone editing the database
    /// by hand would use.
    pub async fn raw(&self) -> AnyConnection {
        sqlx::any::install_default_drivers();
        let url = match self {
            TestDb::Sqlite { url, .. } | TestDb::Postgres { url } => url,
        };
        AnyConnectOptions::from_str(url)
            .expect("test database url")
            .connect()
            .await
            .expect("raw connection to the test database")
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, TestDb::Postgres { .. })
    }

    /// Opens the same database again, as another instance or a restart
    /// would (migrations included).
    pub async fn open_again(&self) -> Result<Store, StoreError> {
        match self {
            TestDb::Postgres { url } => Store::open_postgres(url).await,
            TestDb::Sqlite { url, .. } => {
                Store::open_sqlite(std::path::Path::new(url.trim_start_matches("sqlite://"))).await
            }
        }
    }
}

pub async fn sqlite() -> (Store, TestDb) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bulwark.db");
    let store = Store::open_sqlite(&path).await.expect("open sqlite store");
    let url = format!("sqlite://{}", path.display());
    (store, TestDb::Sqlite { _dir: dir, url })
}

pub fn postgres_url() -> String {
    std::env::var("BULWARK_TEST_DATABASE_URL").expect(
        "BULWARK_TEST_DATABASE_URL is not set: run the tests with scripts/test.sh, \
         which installs and starts PostgreSQL and sets it",
    )
}

pub async fn postgres() -> (Store, TestDb) {
    sqlx::any::install_default_drivers();
    let base = postgres_url();
    let schema = format!("t_{}", hex::encode(rand::random::<[u8; 6]>()));
    let mut admin = AnyConnectOptions::from_str(&base)
        .expect("postgres url")
        .connect()
        .await
        .expect("connect to the test PostgreSQL server");
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut admin)
        .await
        .expect("create test schema");
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    let store = Store::open_postgres(&url)
        .await
        .expect("open postgres store");
    (store, TestDb::Postgres { url })
}

/// Runs an async test body once on SQLite and once on PostgreSQL, as two
/// named tests.
#[macro_export]
macro_rules! on_both {
    ($name:ident, $body:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let (store, db) = $crate::common::sqlite().await;
                super::$body(store, db).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let (store, db) = $crate::common::postgres().await;
                super::$body(store, db).await;
            }
        }
    };
}

/// Webhook bodies received, by request path.
pub type Received = Arc<Mutex<BTreeMap<String, Vec<serde_json::Value>>>>;

/// A loopback webhook receiver that accepts every request with 200 and
/// keeps its JSON body under its path. Returns its base URL
/// (`http://127.0.0.1:PORT`, no path) and what it received.
pub async fn webhook_receiver() -> (String, Received) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let got: Received = Arc::default();
    let g = got.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let g = g.clone();
            tokio::spawn(async move {
                let Some((head, body)) = read_request(&mut sock).await else {
                    return;
                };
                let path = head
                    .lines()
                    .next()
                    .and_then(|l| l.split(' ').nth(1))
                    .unwrap_or("")
                    .to_string();
                let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                g.lock().unwrap().entry(path).or_default().push(body);
                let _ = sock
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    (base, got)
}

/// One HTTP/1.1 request from `sock`: its head (request line and headers)
/// as text and its `Content-Length` body, or `None` when the peer closes
/// first. What the loopback servers of these tests read.
pub async fn read_request(sock: &mut tokio::net::TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0_u8; 4096];
    loop {
        let k = sock.read(&mut chunk).await.ok()?;
        if k == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..k]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let len = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse::<usize>().ok())?
            })
            .unwrap_or(0);
        if buf.len() >= end + 4 + len {
            return Some((head, buf[end + 4..end + 4 + len].to_vec()));
        }
    }
}

/// One answer of a [`scripted_receiver`]: status and an optional
/// `Retry-After` value.
pub type Answer = (u16, Option<&'static str>);

/// What a [`scripted_receiver`] saw: every request's body, and the bodies
/// it answered with a 2xx.
#[derive(Default)]
pub struct Scripted {
    pub requests: Vec<String>,
    pub accepted: Vec<String>,
}

/// A loopback HTTP receiver answering requests with `script` in order,
/// then 200 to everything. Returns its URL (`http://127.0.0.1:PORT/ingest`).
pub async fn scripted_receiver(script: Vec<Answer>) -> (String, Arc<Mutex<Scripted>>) {
    let script = Mutex::new(std::collections::VecDeque::from(script));
    receiver(move |_| script.lock().unwrap().pop_front().unwrap_or((200, None))).await
}

/// A loopback HTTP receiver answering each request with `answer(body)`.
/// Returns its URL (`http://127.0.0.1:PORT/ingest`).
pub async fn receiver(
    answer: impl Fn(&str) -> Answer + Send + Sync + 'static,
) -> (String, Arc<Mutex<Scripted>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/ingest", listener.local_addr().unwrap());
    let seen: Arc<Mutex<Scripted>> = Arc::default();
    let s = seen.clone();
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let (s, answer) = (s.clone(), answer.clone());
            tokio::spawn(async move {
                let Some((_head, body)) = read_request(&mut sock).await else {
                    return;
                };
                let body = String::from_utf8_lossy(&body).into_owned();
                let (status, retry_after) = answer(&body);
                {
                    let mut s = s.lock().unwrap();
                    s.requests.push(body.clone());
                    if (200..300).contains(&status) {
                        s.accepted.push(body);
                    }
                }
                let extra = retry_after
                    .map(|r| format!("retry-after: {r}\r\n"))
                    .unwrap_or_default();
                let resp = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: 0\r\n{extra}connection: close\r\n\r\n"
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    (url, seen)
}

/// A loopback TCP proxy to `target` on a fixed port that can be stopped
/// (listener closed, open connections cut: an outage) and started again.
pub struct Proxy {
    pub port: u16,
    target: String,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Proxy {
    pub async fn start(target: &str) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut p = Proxy {
            port,
            target: target.to_string(),
            task: None,
        };
        p.serve(listener);
        p
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let target = self.target.clone();
        self.task = Some(tokio::spawn(async move {
            // Dropped with this task, aborting every connection.
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                conns.spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        }));
    }

    pub async fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }

    pub async fn resume(&mut self) {
        self.stop().await;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("rebind the proxy's port");
        self.serve(listener);
    }
}

/// The moto server `scripts/test.sh` starts (S3, KMS, CloudWatch Logs).
pub fn moto_endpoint() -> String {
    std::env::var("BULWARK_TEST_S3_ENDPOINT").unwrap_or_else(|_| {
        panic!("BULWARK_TEST_S3_ENDPOINT is not set: scripts/test.sh starts moto and sets it")
    })
}

/// Runs a boto3 snippet with a `logs` client bound to the moto server;
/// its stdout, trimmed.
pub fn boto3_logs(code: &str) -> String {
    let script = format!(
        "import boto3, json, sys\n\
         kw = dict(endpoint_url={:?}, region_name='us-east-1', \
         aws_access_key_id='bulwark-test', aws_secret_access_key='bulwark-test-secret')\n\
         logs = boto3.client('logs', **kw)\n{code}\n",
        moto_endpoint()
    );
    let out = std::process::Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3 (boto3 comes with moto[server], which scripts/test.sh installs)");
    assert!(
        out.status.success(),
        "boto3 script failed:\n{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A time from Unix milliseconds: tests keep their fixed instants as plain
/// numbers and turn them into the domain's time type where it is taken.
pub fn ts(ms: i64) -> bulwark_ops::Timestamp {
    bulwark_ops::Timestamp::from_millis(ms)
}
