//! Object stores — Amazon S3 and compatible stores ([`s3`]), Azure Blob
//! Storage ([`azure`]), Google Cloud Storage ([`gcs`]) — through opendal, in
//! restic's layout under the location's prefix: `config`, `keys/<id>`,
//! `data/<first two hex chars>/<id>`, `index/<id>`, `snapshots/<id>`,
//! `locks/<id>`.
//!
//! The engine is synchronous; opendal is async. Each backend owns a small
//! tokio runtime and blocks on it, so the engine's threads (readers, the
//! pack writer, restore workers) each wait for their own request while the
//! runtime multiplexes the connections.
//!
//! A write is one PUT carrying its length: the store makes the object
//! visible whole or not at all, so nothing half-written ever has its final
//! name. Every request has a deadline and is retried when the store is
//! busy or briefly broken ([`transport`]); a body shorter than announced is
//! an error, never data, and such reads are retried here — a streamed read
//! ([`Backend::read_with`]) by calling its consumer again from the start.
//!
//! Two operators share one transport: data packs go through one carrying
//! the pack storage class (`s3.storage-class`, `gs.storage-class`),
//! everything else through one in the standard class, so listings and
//! index reads stay cheap. Azure's access tier (`azure.access-tier`) has no
//! opendal setting: tiered packs are uploaded by [`azure::TieredPut`].
//! Every object is written as `application/octet-stream`, as restic does
//! (GCS wants a content type).

mod azure;
mod gcs;
mod s3;
mod transport;

use std::io;
use std::time::Duration;

use opendal::{ErrorKind, Operator};

use super::location::Location;
use super::options::BackendOptions;
use super::{Backend, FileType};
use crate::error::{Error, Result};
use transport::RetryPolicy;

/// Worker threads of a backend's runtime: requests are I/O-bound, and the
/// engine already runs its own threads.
const RUNTIME_THREADS: usize = 2;

/// Attempts at a read whose body came back short or broke off (on top of
/// the transport's retries of the request itself).
const BODY_ATTEMPTS: u32 = 5;

/// Longest wait for the next piece of a body, and longest for a whole
/// operation with its retries: generous bounds that only catch a hang.
const IO_TIMEOUT: Duration = Duration::from_secs(120);
const OP_TIMEOUT: Duration = Duration::from_secs(600);

/// A repository in an object store.
pub struct ObjectBackend {
    /// Everything but data packs.
    meta: Operator,
    /// Data packs (their own storage class).
    data: Operator,
    /// Azure packs in an access tier, written past opendal.
    tiered: Option<azure::TieredPut>,
    /// S3's bucket settings, asked past opendal.
    probe: Option<s3::BucketProbe>,
    /// S3: `meta` and `data` sending `Content-MD5`, used from the first
    /// upload the bucket refused without it (Object Lock with a default
    /// retention) on: hashing every pack costs CPU that other buckets
    /// need not pay, and asking the bucket first needs a permission
    /// (`s3:GetBucketObjectLockConfiguration`) a backup key may lack.
    md5: Option<(Operator, Operator)>,
    use_md5: std::sync::atomic::AtomicBool,
    rt: tokio::runtime::Runtime,
    /// The location as the user wrote it, for messages.
    location: String,
    /// The bucket or container, for messages: `s3 bucket NAME at ENDPOINT`.
    container: String,
    /// The location's prefix (no slashes at either end).
    prefix: String,
    /// Azure and GCS, whose listings here do not carry the class: the
    /// classes metadata and data packs are written with (see
    /// [`Backend::usage`]).
    assumed_classes: Option<(String, String)>,
    connections: usize,
}

fn open_error(location: &Location, e: impl std::fmt::Display) -> Error {
    Error::InvalidArgument(format!("cannot open repository {location}: {e}"))
}

/// An opendal error in one line that names no credential: kind, message
/// and root cause, without the request URI or headers opendal attaches as
/// context (a SAS token travels in the query string).
fn describe(e: &opendal::Error) -> String {
    let mut out = format!("{}: {}", e.kind(), store_message(e.message()));
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    let mut root = None;
    while let Some(c) = cause {
        root = Some(c);
        cause = c.source();
    }
    if let Some(root) = root {
        out.push_str(": ");
        out.push_str(&strip_queries(&root.to_string()));
    }
    out.replace('\n', " ")
}

/// The code and message of an S3 or Azure error document, which opendal
/// passes on in its Debug form (`S3Error { code: "NoSuchBucket", message:
/// "...", request_id: ... }`, `AzblobError { code: ..., message: ...,
/// query_parameter_value: ... }`); anything else as it is, less any
/// echoed query parameter value.
fn store_message(message: &str) -> String {
    let field = |name: &str| {
        let start = message.find(&format!("{name}: \""))? + name.len() + 3;
        let len = message[start..].find('"')?;
        Some(&message[start..start + len])
    };
    match (
        message.starts_with("S3Error {") || message.starts_with("AzblobError {"),
        field("code"),
        field("message"),
    ) {
        (true, Some(code), Some(text)) => format!("{code}: {text}"),
        _ => redact_echoed_query(message),
    }
}

/// Azure echoes the query parameter it rejects (a SAS field, the
/// signature itself) in its error: keep the parameter's name, drop its
/// value.
fn redact_echoed_query(message: &str) -> String {
    const FIELD: &str = "query_parameter_value: \"";
    let Some(start) = message.find(FIELD).map(|i| i + FIELD.len()) else {
        return message.to_string();
    };
    let end = message[start..]
        .find('"')
        .map_or(message.len(), |i| start + i);
    format!("{}…{}", &message[..start], &message[end..])
}

/// Drop the query string of every URL in `s` (reqwest names the URL in its
/// errors).
fn strip_queries(s: &str) -> String {
    s.split(' ')
        .map(
            |word| match word.split_once("://").and(word.split_once('?')) {
                Some((before, _)) => before,
                None => word,
            },
        )
        .collect::<Vec<_>>()
        .join(" ")
}

/// Operators over one service builder: the same transport, timeouts and
/// runtime for both.
fn with_layers(op: Operator) -> Operator {
    let transport =
        opendal::HttpTransporter::new(transport::RetryingTransport::new(RetryPolicy::DEFAULT));
    op.with_context(opendal::OperationContext::new().with_http_transport(transport))
        .layer(
            opendal::layers::TimeoutLayer::new()
                .with_timeout(OP_TIMEOUT)
                .with_io_timeout(IO_TIMEOUT),
        )
}

impl ObjectBackend {
    /// The backend for a cloud `location`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the location is not an object store
    /// or the client cannot be built.
    pub fn open(location: &Location, options: &BackendOptions) -> Result<ObjectBackend> {
        let mut tiered = None;
        let mut probe = None;
        let mut md5 = None;
        let (meta, data) = match location {
            Location::S3 {
                endpoint,
                bucket,
                prefix,
            } => {
                let ops = s3::operators(endpoint.as_deref(), bucket, prefix, options)
                    .map_err(|e| open_error(location, describe(&e)))?;
                probe = Some(ops.probe);
                md5 = Some((with_layers(ops.meta_md5), with_layers(ops.data_md5)));
                (ops.meta, ops.data)
            }
            Location::Azure { container, prefix } => {
                let (meta, data, t) = azure::operators(container, prefix, options)
                    .map_err(|e| open_error(location, e))?;
                tiered = t;
                (meta, data)
            }
            Location::Gcs { bucket, prefix } => {
                gcs::operators(bucket, prefix, options).map_err(|e| open_error(location, e))?
            }
            Location::Local(_) => {
                return Err(Error::InvalidArgument(format!(
                    "repository {location} is a local directory, not an object store"
                )))
            }
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(RUNTIME_THREADS)
            .thread_name("bulwark-object-io")
            .enable_all()
            .build()
            .map_err(|e| open_error(location, e))?;
        Ok(ObjectBackend {
            meta: with_layers(meta),
            data: with_layers(data),
            tiered,
            probe,
            md5,
            use_md5: std::sync::atomic::AtomicBool::new(false),
            rt,
            location: location.to_string(),
            container: match location {
                Location::S3 {
                    endpoint, bucket, ..
                } => format!(
                    "s3 bucket {bucket} at {}",
                    endpoint.as_deref().unwrap_or("AWS")
                ),
                Location::Azure { container, .. } => format!("azure container {container}"),
                Location::Gcs { bucket, .. } => format!("gcs bucket {bucket}"),
                Location::Local(_) => String::new(),
            },
            connections: options.connections.unwrap_or(DEFAULT_CONNECTIONS),
            prefix: match location {
                Location::S3 { prefix, .. }
                | Location::Azure { prefix, .. }
                | Location::Gcs { prefix, .. } => prefix.trim_matches('/').to_string(),
                Location::Local(_) => String::new(),
            },
            // Azure's default tier is the account's (Hot unless changed);
            // a GCS object without a class has the bucket's default class.
            assumed_classes: match location {
                Location::Azure { .. } => Some((
                    "Hot".to_string(),
                    options
                        .azure_access_tier
                        .clone()
                        .unwrap_or_else(|| "Hot".to_string()),
                )),
                Location::Gcs { .. } => Some((
                    "STANDARD".to_string(),
                    options
                        .gs_storage_class
                        .clone()
                        .unwrap_or_else(|| "STANDARD".to_string()),
                )),
                _ => None,
            },
        })
    }

    /// The object key of a repository file, relative to the prefix.
    fn key(t: FileType, name: &str) -> Result<String> {
        if t == FileType::Config {
            return Ok("config".to_string());
        }
        // Names come from listings and ids: nothing may escape the prefix.
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(Error::InvalidArgument(format!(
                "invalid file name {name:?}"
            )));
        }
        Ok(match t {
            FileType::Pack => format!("data/{}/{name}", &name[..name.len().min(2)]),
            _ => format!("{}/{name}", t.dir()),
        })
    }

    fn op(&self, t: FileType) -> &Operator {
        self.op_md5(t, self.use_md5.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// The operator for `t`, sending `Content-MD5` when `md5` (and S3).
    fn op_md5(&self, t: FileType, md5: bool) -> &Operator {
        let (meta, data) = match &self.md5 {
            Some((meta, data)) if md5 => (meta, data),
            _ => (&self.meta, &self.data),
        };
        if t == FileType::Pack {
            data
        } else {
            meta
        }
    }

    fn error(&self, op: &'static str, key: &str, e: &opendal::Error) -> Error {
        let what = format!("{}/{key}", self.location.trim_end_matches('/'));
        if e.kind() == ErrorKind::NotFound {
            Error::NotFound(what)
        } else {
            Error::Backend {
                op,
                what,
                source: io::Error::other(describe(e)),
            }
        }
    }

    /// Run `attempt` until it succeeds, fails for good, or has broken off
    /// [`BODY_ATTEMPTS`] times: the transport retried the request, but
    /// only the reader sees a body end early or break off.
    fn retrying_body<T>(&self, mut attempt: impl FnMut() -> Result<T, Attempt>) -> Result<T> {
        let policy = RetryPolicy::DEFAULT;
        let mut retry = 0;
        loop {
            let failure = match attempt() {
                Ok(v) => return Ok(v),
                Err(Attempt::Final(e)) => return Err(e),
                Err(Attempt::BrokenBody(e)) => e,
            };
            retry += 1;
            if retry >= BODY_ATTEMPTS {
                return Err(failure);
            }
            std::thread::sleep(policy.backoff(retry));
        }
    }

    /// An opendal failure of a read or a listing: the transport retried
    /// the request and marks what it gave up on as persistent; what is left
    /// broke off in the body, and asking again may help.
    fn body_failure(&self, op: &'static str, key: &str, e: &opendal::Error) -> Attempt {
        let err = self.error(op, key, e);
        if !e.is_persistent() && e.kind() == ErrorKind::Unexpected {
            Attempt::BrokenBody(err)
        } else {
            Attempt::Final(err)
        }
    }

    fn short_body(&self, key: &str, source: io::Error) -> Attempt {
        Attempt::BrokenBody(Error::Backend {
            op: "read",
            what: format!("{}/{key}", self.location.trim_end_matches('/')),
            source,
        })
    }

    /// Read `key` (a range of it when given), retrying bodies that break
    /// off or come back shorter than asked.
    fn read_retrying(&self, t: FileType, key: &str, range: Option<(u64, u32)>) -> Result<Vec<u8>> {
        self.retrying_body(|| {
            // Each chunk is copied into one buffer as it arrives, sized
            // up front for a range: collecting opendal's chunks and then
            // joining them would hold the file twice.
            let got = self.rt.block_on(async {
                let reader = self.op(t).reader(key).await?;
                // (Capped: a range comes from a listing or an index, which
                // a hostile store could inflate.)
                let mut buf = Vec::with_capacity(
                    range
                        .map_or(0, |(_, len)| len as usize)
                        .min(MAX_RESERVED_READ),
                );
                match range {
                    Some((offset, len)) => {
                        reader
                            .read_into(&mut buf, offset..offset + u64::from(len))
                            .await?
                    }
                    None => reader.read_into(&mut buf, ..).await?,
                };
                Ok::<_, opendal::Error>(buf)
            });
            match got {
                Ok(buf) => match range {
                    Some((offset, len)) if buf.len() != len as usize => Err(self.short_body(
                        key,
                        io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("{len} bytes at {offset} asked, {} returned", buf.len()),
                        ),
                    )),
                    _ => Ok(buf),
                },
                Err(e) => Err(self.body_failure("read", key, &e)),
            }
        })
    }
}

/// How one try at a read ended, when it did not succeed.
enum Attempt {
    /// The body broke off or came back short: read it again.
    BrokenBody(Error),
    /// Anything else (a missing object, a refused request, the transport
    /// having retried already, a consumer's verdict): no retry.
    Final(Error),
}

/// An opendal body as a blocking reader, one chunk (as the connection
/// delivers it) held at a time. It keeps the stream's own error, which
/// says whether retrying may help; the consumer sees it as an I/O error.
struct ChunkReader<'a> {
    rt: &'a tokio::runtime::Runtime,
    stream: opendal::BufferStream,
    chunk: opendal::Buffer,
    /// The stream said it has no more (it is not asked again).
    ended: bool,
    error: Option<opendal::Error>,
}

impl<'a> ChunkReader<'a> {
    /// The body of `key` (its first `length` bytes when given), its first
    /// chunk already there: opendal sends the request only when the body
    /// is first polled, and a missing or refused object must be the read's
    /// error even for a consumer that reads nothing.
    fn open(
        backend: &'a ObjectBackend,
        t: FileType,
        key: &str,
        length: Option<u64>,
    ) -> opendal::Result<ChunkReader<'a>> {
        use futures_util::TryStreamExt;
        backend.rt.block_on(async {
            let reader = backend.op(t).reader(key).await?;
            let mut stream = match length {
                Some(len) => reader.into_stream(0..len).await?,
                None => reader.into_stream(..).await?,
            };
            let first = stream.try_next().await?;
            Ok(ChunkReader {
                rt: &backend.rt,
                stream,
                ended: first.is_none(),
                chunk: first.unwrap_or_default(),
                error: None,
            })
        })
    }
}

impl io::Read for ChunkReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        use bytes::Buf;
        use futures_util::TryStreamExt;
        if out.is_empty() {
            return Ok(0);
        }
        while !self.chunk.has_remaining() {
            if self.ended {
                return Ok(0);
            }
            match self.rt.block_on(self.stream.try_next()) {
                Ok(Some(chunk)) => self.chunk = chunk,
                Ok(None) => {
                    self.ended = true;
                    return Ok(0);
                }
                Err(e) => {
                    let shown = io::Error::other(describe(&e));
                    self.error = Some(e);
                    return Err(shown);
                }
            }
        }
        let n = out.len().min(self.chunk.remaining());
        self.chunk.copy_to_slice(&mut out[..n]);
        Ok(n)
    }
}

/// The most a read reserves before the bytes arrive; larger ranges grow
/// as they come.
const MAX_RESERVED_READ: usize = 64 << 20;

/// Parallel requests when `connections` is not given: enough to keep a
/// link busy while the engine's threads compress and encrypt on 2 cores.
pub const DEFAULT_CONNECTIONS: usize = 5;

impl Backend for ObjectBackend {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn connections(&self) -> usize {
        self.connections
    }

    fn create(&self) -> Result<()> {
        // Object stores have no directories; this proves the bucket is there
        // and the credentials can list it before anything is written.
        self.rt
            .block_on(async { self.meta.list_with("keys/").limit(1).await })
            .map(|_| ())
            .map_err(|e| {
                // Azure and GCS answer a listing of a missing container
                // with 404; opendal passes S3's NoSuchBucket on as it is.
                if e.kind() == ErrorKind::NotFound || e.message().contains("NoSuchBucket") {
                    Error::NotFound(format!(
                        "{} (create it first, or check its name and the credentials' \
                         account)",
                        self.container
                    ))
                } else {
                    self.error("list", "keys/", &e)
                }
            })
    }

    fn list(&self, t: FileType) -> Result<Vec<(String, u64)>> {
        let dir = match t {
            FileType::Config => return Err(Error::InvalidArgument("config is not listed".into())),
            _ => format!("{}/", t.dir()),
        };
        // A page whose body breaks off fails the whole listing, which is
        // then asked again from the start.
        let entries = self.retrying_body(|| {
            self.rt
                .block_on(async { self.meta.list_with(&dir).recursive(true).await })
                .map_err(|e| self.body_failure("list", &dir, &e))
        })?;
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            if !e.metadata().is_file() {
                continue;
            }
            let Some(name) = e.path().rsplit('/').next() else {
                continue;
            };
            // Another tool's stray objects (and directory markers) are not
            // repository files.
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric()) {
                continue;
            }
            out.push((name.to_string(), e.metadata().content_length()));
        }
        Ok(out)
    }

    fn read(&self, t: FileType, name: &str) -> Result<Vec<u8>> {
        let key = Self::key(t, name)?;
        self.read_retrying(t, &key, None)
    }

    fn read_range(&self, t: FileType, name: &str, offset: u64, length: u32) -> Result<Vec<u8>> {
        let key = Self::key(t, name)?;
        self.read_retrying(t, &key, Some((offset, length)))
    }

    /// One GET (a range of `length` bytes when given), its body handed to
    /// the consumer chunk by chunk as the connection delivers it. A body
    /// that breaks off or ends short is read again from the start, the
    /// consumer called anew (see the trait's contract); the consumer's
    /// own error ends the read.
    fn read_with(
        &self,
        t: FileType,
        name: &str,
        length: Option<u64>,
        consumer: &mut dyn FnMut(&mut dyn io::Read) -> Result<()>,
    ) -> Result<()> {
        let key = Self::key(t, name)?;
        self.retrying_body(|| {
            let chunks = ChunkReader::open(self, t, &key, length)
                .map_err(|e| self.body_failure("read", &key, &e))?;
            let mut body = super::stream::Body::new(chunks, length);
            let verdict = consumer(&mut body);
            // The body's failure, whatever the consumer made of it: the
            // store's error when it had one, else a short body.
            if let Some(e) = body.inner_mut().error.take() {
                return Err(self.body_failure("read", &key, &e));
            }
            if let Some(e) = body.take_failure() {
                return Err(self.short_body(&key, e));
            }
            verdict.map_err(Attempt::Final)
        })
    }

    fn write(&self, t: FileType, name: &str, data: &[u8]) -> Result<()> {
        self.write_owned(t, name, data.to_vec())
    }

    fn write_owned(&self, t: FileType, name: &str, data: Vec<u8>) -> Result<()> {
        let key = Self::key(t, name)?;
        if let (FileType::Pack, Some(tiered)) = (t, &self.tiered) {
            return self
                .rt
                .block_on(async {
                    tokio::time::timeout(azure::PUT_TIMEOUT, tiered.put(&key, data))
                        .await
                        .unwrap_or_else(|_| {
                            Err(opendal::Error::new(
                                ErrorKind::Unexpected,
                                format!("no answer within {} s", azure::PUT_TIMEOUT.as_secs()),
                            ))
                        })
                })
                .map_err(|e| self.error("write", &key, &e));
        }
        let data = opendal::Buffer::from(data);
        let put = |md5: bool| {
            self.rt.block_on(async {
                self.op_md5(t, md5)
                    .write_with(&key, data.clone())
                    .content_type("application/octet-stream")
                    .await
            })
        };
        let md5 = self.use_md5.load(std::sync::atomic::Ordering::Relaxed);
        match put(md5) {
            Err(e) if !md5 && self.md5.is_some() && s3::wants_content_md5(&e) => {
                self.use_md5
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                put(true)
            }
            other => other,
        }
        .map(|_| ())
        .map_err(|e| self.error("write", &key, &e))
    }

    fn remove(&self, t: FileType, name: &str) -> Result<()> {
        let key = Self::key(t, name)?;
        // A missing key is deleted without complaint, as the contract says.
        self.rt
            .block_on(self.op(t).delete(&key))
            .map_err(|e| self.error("remove", &key, &e))
    }

    fn stat(&self, t: FileType, name: &str) -> Result<u64> {
        let key = Self::key(t, name)?;
        self.rt
            .block_on(self.op(t).stat(&key))
            .map(|m| m.content_length())
            .map_err(|e| self.error("stat", &key, &e))
    }

    fn usage(&self) -> Result<super::Usage> {
        let mut usage = super::Usage::default();
        if let Some(probe) = &self.probe {
            let prefix = match self.prefix.as_str() {
                "" => String::new(),
                p => format!("{p}/"),
            };
            let objects = self
                .rt
                .block_on(probe.list_classes(&prefix))
                .map_err(|e| self.error("list", "", &e))?;
            for o in objects {
                if let Some(key) = o.key.strip_prefix(&prefix) {
                    if super::occupancy::in_layout(key) {
                        usage.add(&o.class, o.size);
                    }
                }
            }
            return Ok(usage);
        }
        let (meta_class, data_class) = self.assumed_classes.clone().unwrap_or_default();
        let entries = self
            .rt
            .block_on(async { self.meta.list_with("").recursive(true).await })
            .map_err(|e| self.error("list", "", &e))?;
        for e in entries {
            if !e.metadata().is_file() || !super::occupancy::in_layout(e.path()) {
                continue;
            }
            let class = if e.path().starts_with("data/") {
                &data_class
            } else {
                &meta_class
            };
            usage.add(class, e.metadata().content_length());
        }
        usage.assumed = true;
        Ok(usage)
    }

    fn protection(&self) -> Result<Option<super::BucketProtection>> {
        Ok(self
            .probe
            .as_ref()
            .map(|p| self.rt.block_on(p.protection())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_error_documents_read_as_code_and_message() {
        assert_eq!(
            store_message(
                r#"S3Error { code: "NoSuchBucket", message: "The specified bucket does not exist", resource: "", request_id: "x" }"#
            ),
            "NoSuchBucket: The specified bucket does not exist"
        );
        assert_eq!(
            store_message(
                r#"AzblobError { code: "AuthenticationFailed", message: "Signature did not match", query_parameter_name: "sig", query_parameter_value: "SECRET", reason: "" }"#
            ),
            "AuthenticationFailed: Signature did not match"
        );
        assert_eq!(store_message("plain"), "plain");
    }

    #[test]
    fn errors_drop_url_queries() {
        assert_eq!(
            strip_queries("error sending request for url (http://h:1/c/k?sig=SECRET&se=1) reset"),
            "error sending request for url (http://h:1/c/k reset"
        );
        assert_eq!(strip_queries("plain words? yes"), "plain words? yes");
        assert_eq!(
            redact_echoed_query(
                r#"AzblobError { code: "AuthenticationFailed", query_parameter_name: "sig", query_parameter_value: "SECRET", reason: "" }"#
            ),
            r#"AzblobError { code: "AuthenticationFailed", query_parameter_name: "sig", query_parameter_value: "…", reason: "" }"#
        );
    }
}
