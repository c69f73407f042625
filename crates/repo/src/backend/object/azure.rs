//! Azure Blob Storage. Credentials come from the variables restic and
//! Azure's own tools read: `AZURE_STORAGE_CONNECTION_STRING` (which may
//! name the endpoint with `BlobEndpoint=`, as for Azurite), else
//! `AZURE_ACCOUNT_NAME` with `AZURE_ACCOUNT_KEY` or `AZURE_ACCOUNT_SAS`
//! at `https://ACCOUNT.blob.core.windows.net` (`AZURE_ENDPOINT_SUFFIX`
//! replaces `core.windows.net`, for the sovereign clouds). The options'
//! [`Credentials`](crate::Credentials) may give any of them instead.
//!
//! `azure.access-tier` applies to data packs. opendal's azblob service has
//! no access-tier setting, and a header added under its signer would break
//! a Shared Key signature, so packs in a tier are uploaded here: one
//! `Put Blob` carrying `x-ms-access-tier`, signed by the same signer
//! opendal uses, sent through the same retrying transport. The tier is set
//! as the blob is created, as restic does, never by a second request that
//! could fail after the upload.

use std::time::Duration;

use http::{HeaderValue, Request, StatusCode};
use opendal::{services::Azblob, Buffer, HttpTransport, Operator};
use opendal_service_azure_common::{azure_config_from_connection_string, AzureStorageService};
use reqsign_azure_storage::{Credential, RequestSigner, StaticCredentialProvider};
use reqsign_core::{Context, ProvideCredentialChain, Signer};

use super::transport::{RetryPolicy, RetryingTransport};
use crate::backend::options::BackendOptions;

/// The REST API version of our own requests; opendal's azblob sends the
/// same one (Azurite knows it).
const API_VERSION: &str = "2022-11-02";

/// Where the account is and how to sign for it. Holds secrets: no `Debug`.
struct Account {
    /// `https://ACCOUNT.blob.core.windows.net`, or a connection string's
    /// `BlobEndpoint`, without a trailing slash.
    endpoint: String,
    name: Option<String>,
    key: Option<String>,
    sas: Option<String>,
}

/// The account from configuration's credentials or the environment;
/// errors name variables, never values.
fn account(options: &BackendOptions) -> Result<Account, String> {
    const ACCOUNT: [&str; 5] = [
        "AZURE_STORAGE_CONNECTION_STRING",
        "AZURE_ACCOUNT_NAME",
        "AZURE_ACCOUNT_KEY",
        "AZURE_ACCOUNT_SAS",
        "AZURE_ENDPOINT_SUFFIX",
    ];
    let var = |name: &str| options.credentials.var_in(&ACCOUNT, name);
    if let Some(conn) = var("AZURE_STORAGE_CONNECTION_STRING") {
        let config = azure_config_from_connection_string(&conn, AzureStorageService::Blob)
            .map_err(|e| {
                format!(
                    "AZURE_STORAGE_CONNECTION_STRING is not a valid connection string ({})",
                    e.kind()
                )
            })?;
        let endpoint = config.endpoint.ok_or(
            "AZURE_STORAGE_CONNECTION_STRING names no blob endpoint \
             (give BlobEndpoint=, or AccountName= with EndpointSuffix=)",
        )?;
        if config.account_key.is_none() && config.sas_token.is_none() {
            return Err(
                "AZURE_STORAGE_CONNECTION_STRING has neither AccountKey= nor \
                        SharedAccessSignature="
                    .into(),
            );
        }
        return Ok(Account {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            name: config.account_name,
            key: config.account_key,
            sas: config.sas_token,
        });
    }
    let name = var("AZURE_ACCOUNT_NAME");
    let key = var("AZURE_ACCOUNT_KEY");
    let sas = var("AZURE_ACCOUNT_SAS").map(|s| s.trim_start_matches('?').to_string());
    match name {
        Some(name) if key.is_some() || sas.is_some() => {
            let suffix =
                var("AZURE_ENDPOINT_SUFFIX").unwrap_or_else(|| "core.windows.net".to_string());
            Ok(Account {
                endpoint: format!("https://{name}.blob.{}", suffix.trim_matches('/')),
                name: Some(name),
                key,
                sas,
            })
        }
        Some(_) => Err(
            "AZURE_ACCOUNT_NAME is set but neither AZURE_ACCOUNT_KEY nor \
                        AZURE_ACCOUNT_SAS is"
                .into(),
        ),
        None => Err(
            "no Azure credentials: set AZURE_STORAGE_CONNECTION_STRING, or \
                     AZURE_ACCOUNT_NAME with AZURE_ACCOUNT_KEY or AZURE_ACCOUNT_SAS"
                .into(),
        ),
    }
}

impl Account {
    /// Exactly the credential given, so a wrong one fails as itself
    /// instead of falling through to instance metadata or the Azure CLI.
    fn credentials(&self) -> ProvideCredentialChain<Credential> {
        let provider = match (&self.name, &self.key, &self.sas) {
            (Some(name), Some(key), _) => StaticCredentialProvider::new_shared_key(name, key),
            (_, _, Some(sas)) => StaticCredentialProvider::new_sas_token(sas),
            // account() refuses an account with neither.
            _ => StaticCredentialProvider::new_sas_token(""),
        };
        ProvideCredentialChain::new().push(provider)
    }
}

/// The metadata and data-pack operators for `container/prefix`, and the
/// uploader of packs when they have an access tier.
pub(super) fn operators(
    container: &str,
    prefix: &str,
    options: &BackendOptions,
) -> Result<(Operator, Operator, Option<TieredPut>), String> {
    let account = account(options)?;
    let mut builder = Azblob::default()
        .container(container)
        .root(&format!("/{prefix}"))
        .endpoint(&account.endpoint)
        .credential_provider_chain(account.credentials());
    if let Some(name) = &account.name {
        builder = builder.account_name(name);
    }
    let op = Operator::new(builder).map_err(|e| super::describe(&e))?;
    let tiered = options.azure_access_tier.as_ref().map(|tier| TieredPut {
        base: format!(
            "{}/{}/{}",
            account.endpoint,
            encode_path(container),
            match prefix {
                "" => String::new(),
                p => format!("{}/", encode_path(p)),
            }
        ),
        tier: tier.clone(),
        signer: Signer::new(Context::new(), account.credentials(), RequestSigner::new()),
        transport: RetryingTransport::new(RetryPolicy::DEFAULT),
    });
    Ok((op.clone(), op, tiered))
}

/// Percent-encode a blob path as Azure's signer and server expect it:
/// everything but unreserved characters and `/`.
fn encode_path(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    for b in p.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Uploads data packs in an access tier (see the module comment).
pub(super) struct TieredPut {
    /// `ENDPOINT/CONTAINER/PREFIX/`, encoded.
    base: String,
    tier: String,
    signer: Signer<Credential>,
    transport: RetryingTransport,
}

impl TieredPut {
    /// `Put Blob` of `body` at `key` (relative to the prefix) in the tier.
    pub(super) async fn put(&self, key: &str, body: Vec<u8>) -> opendal::Result<()> {
        let len = body.len();
        let req = Request::put(format!("{}{}", self.base, encode_path(key)))
            .header("x-ms-blob-type", "BlockBlob")
            .header("x-ms-access-tier", &self.tier)
            .header("x-ms-version", API_VERSION)
            .header(http::header::CONTENT_TYPE, "application/octet-stream")
            .header(http::header::CONTENT_LENGTH, len)
            .body(())
            .map_err(|e| opendal::Error::new(opendal::ErrorKind::Unexpected, e.to_string()))?;
        let (mut parts, ()) = req.into_parts();
        self.signer.sign(&mut parts, None).await.map_err(|e| {
            opendal::Error::new(
                opendal::ErrorKind::PermissionDenied,
                format!("cannot sign the request: {}", e.kind()),
            )
        })?;
        let resp = self
            .transport
            .fetch(Request::from_parts(parts, Buffer::from(body)))
            .await?;
        let status = resp.status();
        if status == StatusCode::CREATED {
            return Ok(());
        }
        let code = resp
            .headers()
            .get("x-ms-error-code")
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let kind = match status {
            StatusCode::NOT_FOUND => opendal::ErrorKind::NotFound,
            StatusCode::FORBIDDEN => opendal::ErrorKind::PermissionDenied,
            _ => opendal::ErrorKind::Unexpected,
        };
        let mut e = opendal::Error::new(kind, format!("PutBlob: {status} {code}"));
        if status.is_server_error() {
            e = e.set_temporary();
        }
        Err(e)
    }
}

/// The longest a tiered upload may take with its retries (as opendal's
/// timeout layer bounds the others).
pub(super) const PUT_TIMEOUT: Duration = super::OP_TIMEOUT;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_paths_are_encoded_as_azure_signs_them() {
        assert_eq!(encode_path("data/ab/abcd"), "data/ab/abcd");
        assert_eq!(encode_path("my repo/ä"), "my%20repo/%C3%A4");
    }
}
