//! `type = "http"`: each batch POSTed as `application/x-ndjson`; a 2xx
//! answer confirms it, 413 makes the shipper split it, anything else is
//! retried (after `Retry-After` when the receiver sends one).

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};

use super::{Line, SendError, Sink};
use crate::config::HttpSink as Config;
use crate::BoxFuture;

pub(super) struct HttpSink {
    client: reqwest::Client,
    url: crate::config::Secret<String>,
    headers: HeaderMap,
    /// What errors name: the URL's origin only (its path may hold a token).
    origin: String,
}

impl HttpSink {
    pub(super) fn new(cfg: &Config) -> Result<HttpSink, String> {
        let mut headers = HeaderMap::new();
        for (name, value) in &cfg.headers {
            let n = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("invalid header name {name:?}"))?;
            let mut v = HeaderValue::from_str(value.expose())
                .map_err(|_| format!("header {name}: invalid value"))?;
            v.set_sensitive(true);
            headers.insert(n, v);
        }
        let client = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build the http client: {e}"))?;
        Ok(HttpSink {
            client,
            origin: crate::redact::url_origin(cfg.url.expose()),
            url: cfg.url.clone(),
            headers,
        })
    }
}

impl Sink for HttpSink {
    fn send<'a>(&'a mut self, lines: &'a [Line]) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            let mut body = String::new();
            for line in lines {
                body.push_str(&line.json);
                body.push('\n');
            }
            let resp = self
                .client
                .post(self.url.expose())
                .headers(self.headers.clone())
                .header(CONTENT_TYPE, "application/x-ndjson")
                .body(body)
                .send()
                .await
                .map_err(|e| {
                    SendError::new(format!(
                        "cannot post to {}: {}",
                        self.origin,
                        crate::redact::urls_in(&e.without_url().to_string())
                    ))
                })?;
            let status = resp.status();
            if status.is_success() {
                return Ok(());
            }
            Err(SendError {
                message: format!("{} answered {status}", self.origin),
                confirmed: 0,
                retry_after: super::retry_after(resp.headers()),
                too_large: status == reqwest::StatusCode::PAYLOAD_TOO_LARGE,
            })
        })
    }
}
