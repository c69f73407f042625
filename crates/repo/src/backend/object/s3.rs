//! Amazon S3 and S3-compatible stores. Credentials come from AWS's own
//! chain (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`, `AWS_PROFILE` and `~/.aws`, web identity, instance
//! metadata), which reqsign loads as the AWS SDKs do, unless the options'
//! [`Credentials`](crate::Credentials) name keys or a profile. One chain serves
//! opendal's operators and our own bucket questions ([`BucketProbe`]), so
//! both sign with the same credentials.

use http::{Request, StatusCode};
use opendal::{services::S3, Buffer, HttpTransport, Operator};
use reqsign_aws_v4::{
    Credential, DefaultCredentialProvider, ProfileCredentialProvider, RequestSigner,
    StaticCredentialProvider,
};
use reqsign_core::{Context, OsEnv, ProvideCredentialChain, Signer};
use reqsign_file_read_tokio::TokioFileRead;

use super::transport::{RetryPolicy, RetryingTransport};
use crate::backend::options::BackendOptions;
use crate::backend::{BucketProtection, Protection};

/// Whether a refused upload asked for `Content-MD5` (S3: `InvalidRequest`
/// "Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object
/// requests with Object Lock parameters"; moto:
/// `MissingUploadObjectWithObjectLockHeaders`).
pub(super) fn wants_content_md5(e: &opendal::Error) -> bool {
    let m = e.message();
    m.contains("Content-MD5") || m.contains("MissingUploadObjectWithObjectLockHeaders")
}

/// SHA-256 of an empty body, which a signed GET declares.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// The region for S3 requests: `s3.region`, then the standard variables
/// (configuration's `credentials` first), else us-east-1 (what AWS's own
/// tools default to, and what S3 emulators accept).
fn region(options: &BackendOptions) -> String {
    options
        .s3_region
        .clone()
        .or_else(|| options.credentials.var("AWS_REGION"))
        .or_else(|| options.credentials.var("AWS_DEFAULT_REGION"))
        .filter(|r| !r.trim().is_empty())
        .unwrap_or_else(|| "us-east-1".to_string())
}

/// Where S3 credentials come from. Keys given by configuration are used
/// alone, so a wrong one fails as itself instead of falling through to
/// instance metadata; a configured `AWS_PROFILE` replaces the
/// environment's keys; otherwise AWS's default chain (environment,
/// profile, web identity, ECS, instance metadata), as opendal would
/// build it.
fn credentials(options: &BackendOptions) -> ProvideCredentialChain<Credential> {
    let given = &options.credentials;
    if given.given("AWS_ACCESS_KEY_ID") {
        // One key set: the environment's session token belongs to another
        // identity and must not be paired with configured keys.
        const KEYS: [&str; 3] = [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
        ];
        let id = given.var_in(&KEYS, "AWS_ACCESS_KEY_ID").unwrap_or_default();
        let secret = given
            .var_in(&KEYS, "AWS_SECRET_ACCESS_KEY")
            .unwrap_or_default();
        let mut fixed = StaticCredentialProvider::new(&id, &secret);
        if let Some(token) = given.var_in(&KEYS, "AWS_SESSION_TOKEN") {
            fixed = fixed.with_session_token(&token);
        }
        return ProvideCredentialChain::new().push(fixed);
    }
    let mut chain = DefaultCredentialProvider::builder();
    if given.given("AWS_PROFILE") {
        let profile = given.var("AWS_PROFILE").unwrap_or_default();
        chain = chain
            .no_env()
            .profile(ProfileCredentialProvider::new().with_profile(profile));
    }
    ProvideCredentialChain::new().push(chain.build())
}

/// What an S3 location is opened as.
pub(super) struct S3Operators {
    /// Everything but data packs.
    pub meta: Operator,
    /// Data packs, in their storage class.
    pub data: Operator,
    /// `meta` and `data` sending `Content-MD5`, which S3 demands of every
    /// upload to a bucket whose Object Lock has a default retention.
    pub meta_md5: Operator,
    pub data_md5: Operator,
    pub probe: BucketProbe,
}

/// The operators for `bucket/prefix` at `endpoint` (None: AWS in the
/// region), and the prober of the bucket's settings.
pub(super) fn operators(
    endpoint: Option<&str>,
    bucket: &str,
    prefix: &str,
    options: &BackendOptions,
) -> opendal::Result<S3Operators> {
    let region = region(options);
    let aws = endpoint.is_none();
    let endpoint = endpoint
        .map(|e| e.trim_end_matches('/').to_string())
        .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
    let path_style = options.s3_path_style.unwrap_or(!aws);
    let build = |storage_class: Option<&str>, md5: bool| {
        let mut builder = S3::default()
            .bucket(bucket)
            .root(&format!("/{prefix}"))
            .endpoint(&endpoint)
            .region(&region)
            .credential_provider_chain(credentials(options));
        // AWS wants virtual-hosted requests; MinIO, moto and most other
        // S3-compatible servers are addressed by path (restic's choice too).
        if !path_style {
            builder = builder.enable_virtual_host_style();
        }
        if let Some(key) = &options.s3_kms_key_id {
            builder = builder.server_side_encryption_with_customer_managed_kms_key(key);
        } else if options.s3_sse_aes256 {
            builder = builder.server_side_encryption_with_s3_key();
        }
        if let Some(class) = storage_class {
            builder = builder.default_storage_class(class);
        }
        if md5 {
            builder = builder.checksum_algorithm("md5");
        }
        Operator::new(builder)
    };
    let bucket_url = if path_style {
        format!("{endpoint}/{bucket}")
    } else {
        // https://s3.REGION.amazonaws.com -> https://BUCKET.s3.REGION.amazonaws.com
        match endpoint.split_once("://") {
            Some((scheme, host)) => format!("{scheme}://{bucket}.{host}"),
            None => format!("https://{bucket}.{endpoint}"),
        }
    };
    let probe = BucketProbe {
        bucket_url,
        signer: Signer::new(
            Context::new()
                .with_file_read(TokioFileRead)
                .with_env(OsEnv)
                .with_http_send(opendal::HttpTransporter::new(RetryingTransport::new(
                    RetryPolicy::DEFAULT,
                ))),
            credentials(options),
            RequestSigner::new("s3", &region),
        ),
        transport: RetryingTransport::new(RetryPolicy::DEFAULT),
    };
    let class = options.s3_storage_class.as_deref();
    Ok(S3Operators {
        meta: build(None, false)?,
        data: build(class, false)?,
        meta_md5: build(None, true)?,
        data_md5: build(class, true)?,
        probe,
    })
}

/// Asks a bucket about its versioning and Object Lock with signed
/// `GET ?versioning` and `GET ?object-lock` (opendal has neither).
pub(super) struct BucketProbe {
    /// `ENDPOINT/BUCKET` or `https://BUCKET.HOST`, without a slash.
    bucket_url: String,
    signer: Signer<Credential>,
    transport: RetryingTransport,
}

impl BucketProbe {
    /// Both settings; what the store refuses is [`Protection::Unknown`].
    pub(super) async fn protection(&self) -> BucketProtection {
        let versioning = match self.get("versioning").await {
            Ok((StatusCode::OK, body)) => match xml_text(&body, "Status").as_deref() {
                Some("Enabled") => Protection::Enabled,
                Some("Suspended") => Protection::Suspended,
                // A bucket that never had versioning answers with an
                // empty VersioningConfiguration.
                _ => Protection::Disabled,
            },
            Ok((status, body)) => Protection::Unknown(refusal(status, &body)),
            Err(e) => Protection::Unknown(super::describe(&e)),
        };
        let (object_lock, default_retention) = match self.get("object-lock").await {
            Ok((StatusCode::OK, body)) => {
                let on = xml_text(&body, "ObjectLockEnabled").as_deref() == Some("Enabled");
                let retention = on.then(|| retention(&body)).flatten();
                (
                    if on {
                        Protection::Enabled
                    } else {
                        Protection::Disabled
                    },
                    retention,
                )
            }
            // S3's answer for a bucket created without Object Lock.
            Ok((StatusCode::NOT_FOUND, body))
                if xml_text(&body, "Code").as_deref()
                    == Some("ObjectLockConfigurationNotFoundError") =>
            {
                (Protection::Disabled, None)
            }
            Ok((status, body)) => (Protection::Unknown(refusal(status, &body)), None),
            Err(e) => (Protection::Unknown(super::describe(&e)), None),
        };
        BucketProtection {
            versioning,
            object_lock,
            default_retention,
        }
    }

    /// A signed `GET BUCKET?QUERY` (a subresource such as `versioning`, or
    /// an encoded query): the status and body.
    async fn get(&self, subresource: &str) -> opendal::Result<(StatusCode, String)> {
        let unexpected = |e: String| opendal::Error::new(opendal::ErrorKind::Unexpected, e);
        let req = Request::get(format!("{}?{subresource}", self.bucket_url))
            .header("x-amz-content-sha256", EMPTY_SHA256)
            .body(())
            .map_err(|e| unexpected(e.to_string()))?;
        let (mut parts, ()) = req.into_parts();
        self.signer.sign(&mut parts, None).await.map_err(|e| {
            opendal::Error::new(
                opendal::ErrorKind::PermissionDenied,
                format!("cannot sign the request: {}", e.kind()),
            )
        })?;
        let resp = self
            .transport
            .fetch(Request::from_parts(parts, Buffer::new()))
            .await?;
        let status = resp.status();
        let body = resp.into_body().to_buffer().await?;
        Ok((
            status,
            String::from_utf8_lossy(&body.to_bytes()).into_owned(),
        ))
    }
}

/// One object of a listing: key (relative to the bucket), size, and the
/// storage class S3 reports (`STANDARD` when it leaves the element out,
/// as S3 documents for objects in the standard class).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ListedObject {
    pub key: String,
    pub size: u64,
    pub class: String,
}

impl BucketProbe {
    /// Every object under `prefix` with its storage class, by signed
    /// `ListObjectsV2` pages (opendal's listing drops the class).
    pub(super) async fn list_classes(&self, prefix: &str) -> opendal::Result<Vec<ListedObject>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = format!("list-type=2&prefix={}", query_encode(prefix));
            if let Some(t) = &token {
                query.push_str(&format!("&continuation-token={}", query_encode(t)));
            }
            let (status, body) = self.get(&query).await?;
            if status != StatusCode::OK {
                let kind = match status {
                    StatusCode::NOT_FOUND => opendal::ErrorKind::NotFound,
                    StatusCode::FORBIDDEN => opendal::ErrorKind::PermissionDenied,
                    _ => opendal::ErrorKind::Unexpected,
                };
                return Err(opendal::Error::new(
                    kind,
                    format!("ListObjectsV2: {}", refusal(status, &body)),
                ));
            }
            let (page, next) = parse_list_page(&body)?;
            out.extend(page);
            match next {
                // A truncated page without a token would loop forever.
                Some(t) if !t.is_empty() && token.as_deref() != Some(t.as_str()) => token = Some(t),
                Some(_) => {
                    return Err(opendal::Error::new(
                        opendal::ErrorKind::Unexpected,
                        "ListObjectsV2: truncated page without a new continuation token",
                    ))
                }
                None => return Ok(out),
            }
        }
    }
}

/// The objects of one `ListObjectsV2` page and, when it is truncated, the
/// token of the next.
fn parse_list_page(doc: &str) -> opendal::Result<(Vec<ListedObject>, Option<String>)> {
    let bad = |what: &str| {
        opendal::Error::new(
            opendal::ErrorKind::Unexpected,
            format!("ListObjectsV2: unreadable answer ({what})"),
        )
    };
    let mut objects = Vec::new();
    for part in doc.split("<Contents>").skip(1) {
        let item = part.split("</Contents>").next().unwrap_or(part);
        let key = xml_text(item, "Key").ok_or_else(|| bad("an object without Key"))?;
        let size = xml_text(item, "Size")
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| bad("an object without a valid Size"))?;
        let class = xml_text(item, "StorageClass")
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| "STANDARD".to_string());
        objects.push(ListedObject {
            key: xml_unescape(&key),
            size,
            class: xml_unescape(&class),
        });
    }
    // `<Contents>` elements come after the page's own fields, but an
    // object's key could spell `<IsTruncated>`: read them before the first.
    let head = doc.split("<Contents>").next().unwrap_or(doc);
    let tail = doc.rsplit("</Contents>").next().unwrap_or(doc);
    let field = |tag: &str| xml_text(head, tag).or_else(|| xml_text(tail, tag));
    let next = match field("IsTruncated").as_deref() {
        Some("true") => Some(xml_unescape(
            &field("NextContinuationToken").unwrap_or_default(),
        )),
        _ => None,
    };
    Ok((objects, next))
}

/// The five entities XML escapes text with.
fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// Percent-encode a query value: everything but unreserved characters
/// (the signer decodes the query once and encodes it again its own way).
fn query_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The error code of a refused question (`AccessDenied`), else the status.
fn refusal(status: StatusCode, body: &str) -> String {
    xml_text(body, "Code").unwrap_or_else(|| status.to_string())
}

/// The text of the first `<tag>` element of a small XML document (S3's
/// answers here are flat and unescaped where we read them).
fn xml_text(doc: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = doc.find(&open)? + open.len();
    let len = doc[start..].find(&format!("</{tag}>"))?;
    Some(doc[start..start + len].trim().to_string())
}

/// `MODE N days|years` of an Object Lock configuration's default
/// retention, when it has one.
fn retention(doc: &str) -> Option<String> {
    let mode = xml_text(doc, "Mode")?;
    let (n, unit) = match (xml_text(doc, "Days"), xml_text(doc, "Years")) {
        (Some(d), _) => (d, "days"),
        (None, Some(y)) => (y, "years"),
        (None, None) => return Some(mode),
    };
    Some(format!("{mode} {n} {unit}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys given by `[[backup]] credentials` are used alone: an ambient
    /// `AWS_SESSION_TOKEN` (a CI job's or an instance role's session) must
    /// not be paired with them, or every request fails as an invalid token
    /// signed under another account's session.
    #[tokio::test]
    async fn configured_keys_never_take_the_environments_session_token() {
        use reqsign_core::ProvideCredential;
        // nextest runs each test in its own process: the variable stays here.
        std::env::set_var("AWS_SESSION_TOKEN", "ambient-session-token");
        let mut options = BackendOptions::default();
        options
            .credentials
            .set("AWS_ACCESS_KEY_ID", "AKIACONFIGURED")
            .unwrap();
        options
            .credentials
            .set("AWS_SECRET_ACCESS_KEY", "configured-secret")
            .unwrap();
        let cred = credentials(&options)
            .provide_credential(&Context::new())
            .await
            .unwrap()
            .expect("static keys are a credential");
        assert_eq!(cred.access_key_id, "AKIACONFIGURED");
        assert_eq!(cred.session_token, None);
    }

    #[test]
    fn object_lock_answers_read_as_s3_writes_them() {
        let doc = r#"<?xml version="1.0" encoding="UTF-8"?>
<ObjectLockConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>COMPLIANCE</Mode><Years>1</Years></DefaultRetention></Rule></ObjectLockConfiguration>"#;
        assert_eq!(
            xml_text(doc, "ObjectLockEnabled").as_deref(),
            Some("Enabled")
        );
        assert_eq!(retention(doc).as_deref(), Some("COMPLIANCE 1 years"));
        let doc = "<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled></ObjectLockConfiguration>";
        assert_eq!(retention(doc), None);
        assert_eq!(
            refusal(
                StatusCode::FORBIDDEN,
                "<Error><Code>AccessDenied</Code><Message>no</Message></Error>"
            ),
            "AccessDenied"
        );
        assert_eq!(refusal(StatusCode::FORBIDDEN, ""), "403 Forbidden");
    }

    #[test]
    fn list_pages_read_keys_sizes_classes_and_the_next_token() {
        let doc = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult><Name>b</Name><Prefix>app/</Prefix><KeyCount>2</KeyCount><IsTruncated>true</IsTruncated><NextContinuationToken>a+b/c=</NextContinuationToken><Contents><Key>app/data/ab/abcd</Key><Size>16777216</Size><StorageClass>STANDARD_IA</StorageClass></Contents><Contents><Key>app/config</Key><Size>155</Size></Contents></ListBucketResult>"#;
        let (objects, next) = parse_list_page(doc).unwrap();
        assert_eq!(
            objects,
            vec![
                ListedObject {
                    key: "app/data/ab/abcd".into(),
                    size: 16_777_216,
                    class: "STANDARD_IA".into()
                },
                ListedObject {
                    key: "app/config".into(),
                    size: 155,
                    class: "STANDARD".into()
                },
            ]
        );
        assert_eq!(next.as_deref(), Some("a+b/c="));
        let last = "<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>";
        assert_eq!(parse_list_page(last).unwrap(), (vec![], None));
        let broken =
            "<ListBucketResult><Contents><Key>k</Key><Size>x</Size></Contents></ListBucketResult>";
        assert!(parse_list_page(broken).is_err());
        assert_eq!(query_encode("a+b/c= d"), "a%2Bb%2Fc%3D%20d");
    }
}
