//! Amazon S3 and S3-compatible stores. Credentials come from AWS's own
//! chain (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`, `AWS_PROFILE` and `~/.aws`, web identity, instance
//! metadata), which opendal loads as the AWS SDKs do.

use opendal::{services::S3, Operator};

use crate::backend::options::BackendOptions;

/// The region for S3 requests: `s3.region`, then the standard variables,
/// else us-east-1 (what AWS's own tools default to, and what S3 emulators
/// accept).
fn region(options: &BackendOptions) -> String {
    options
        .s3_region
        .clone()
        .or_else(|| std::env::var("AWS_REGION").ok())
        .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
        .filter(|r| !r.trim().is_empty())
        .unwrap_or_else(|| "us-east-1".to_string())
}

/// The metadata and data-pack operators for `bucket/prefix` at `endpoint`
/// (None: AWS in the region).
pub(super) fn operators(
    endpoint: Option<&str>,
    bucket: &str,
    prefix: &str,
    options: &BackendOptions,
) -> opendal::Result<(Operator, Operator)> {
    let region = region(options);
    let aws = endpoint.is_none();
    let endpoint = endpoint
        .map(str::to_string)
        .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
    let path_style = options.s3_path_style.unwrap_or(!aws);
    let build = |storage_class: Option<&str>| {
        let mut builder = S3::default()
            .bucket(bucket)
            .root(&format!("/{prefix}"))
            .endpoint(&endpoint)
            .region(&region);
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
        Operator::new(builder)
    };
    Ok((build(None)?, build(options.s3_storage_class.as_deref())?))
}
