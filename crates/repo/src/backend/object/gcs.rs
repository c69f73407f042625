//! Google Cloud Storage, through its JSON API. Credentials as Google's
//! client libraries find them: `GOOGLE_APPLICATION_CREDENTIALS` (a
//! service-account or authorized-user JSON file), else the gcloud
//! well-known file, else the metadata server of the VM we run on. With
//! `STORAGE_EMULATOR_HOST` (the variable Google's libraries honour) every
//! request goes to that host, unsigned, as to fake-gcs-server. The
//! options' [`Credentials`](crate::Credentials) may give either instead.
//!
//! Each object is one upload request (`uploadType=multipart`: metadata
//! and bytes together), never a resumable or XML multipart upload: packs
//! are 16 MiB, well under the single-request limit, and a single request
//! makes the object appear whole or not at all.

use opendal::{services::Gcs, Operator};

use crate::backend::options::BackendOptions;

/// The metadata and data-pack operators for `bucket/prefix`; packs carry
/// `gs.storage-class`.
pub(super) fn operators(
    bucket: &str,
    prefix: &str,
    options: &BackendOptions,
) -> Result<(Operator, Operator), String> {
    // Credentials and emulator come as a set: a configured key file never
    // meets an ambient emulator that would skip signing.
    const SET: [&str; 2] = ["GOOGLE_APPLICATION_CREDENTIALS", "STORAGE_EMULATOR_HOST"];
    let var = |name: &str| options.credentials.var_in(&SET, name);
    let emulator = var("STORAGE_EMULATOR_HOST").map(|host| {
        // Google's libraries accept `host:port` and prepend http://.
        let host = host.trim().trim_end_matches('/');
        if host.contains("://") {
            host.to_string()
        } else {
            format!("http://{host}")
        }
    });
    let credentials = var("GOOGLE_APPLICATION_CREDENTIALS");
    if emulator.is_none() {
        if let Some(path) = &credentials {
            if !std::path::Path::new(path).is_file() {
                // A key file's contents given where its path belongs (e.g.
                // a `[[backup]] credentials` `file` source) is the secret
                // itself: say so without quoting it.
                let looks_like_a_path = path.len() <= 4096
                    && !path.trim_start().starts_with('{')
                    && !path.chars().any(char::is_control);
                return Err(if looks_like_a_path {
                    format!(
                        "GOOGLE_APPLICATION_CREDENTIALS names {path}, which is not a readable file"
                    )
                } else {
                    "GOOGLE_APPLICATION_CREDENTIALS holds what looks like a key file's \
                     contents, not the path of one"
                        .to_string()
                });
            }
        }
    }
    let build = |storage_class: Option<&str>| {
        let mut builder = Gcs::default().bucket(bucket).root(&format!("/{prefix}"));
        match (&emulator, &credentials) {
            (Some(endpoint), _) => {
                builder = builder
                    .endpoint(endpoint)
                    .skip_signature()
                    .disable_vm_metadata()
                    .disable_config_load();
            }
            (None, Some(path)) => {
                builder = builder.credential_path(path).disable_vm_metadata();
            }
            (None, None) => {}
        }
        if let Some(class) = storage_class {
            builder = builder.default_storage_class(class);
        }
        Operator::new(builder).map_err(|e| super::describe(&e))
    };
    Ok((build(None)?, build(options.gs_storage_class.as_deref())?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `[[backup]] credentials` reads `file = ...` as the variable's value,
    /// so pointing GOOGLE_APPLICATION_CREDENTIALS's `file` at the key file
    /// makes the value the key itself. The error must say what is wrong
    /// without quoting it.
    #[test]
    fn a_key_given_as_the_credentials_path_is_never_quoted() {
        // nextest runs each test in its own process: the variable stays here.
        std::env::remove_var("STORAGE_EMULATOR_HOST");
        let key = r#"{"type":"service_account","private_key":"-----BEGIN PRIVATE KEY-----\nMIIEvSECRETKEYMATERIAL\n-----END PRIVATE KEY-----\n"}"#;
        let mut options = BackendOptions::default();
        options
            .credentials
            .set("GOOGLE_APPLICATION_CREDENTIALS", key)
            .unwrap();
        let err = operators("bucket", "prefix", &options).unwrap_err();
        assert!(err.contains("GOOGLE_APPLICATION_CREDENTIALS"), "{err}");
        assert!(
            !err.contains("SECRETKEYMATERIAL") && !err.contains("private_key"),
            "{err}"
        );
    }
}
