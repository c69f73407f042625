//! `http://` and `https://`: status, body substring, JSON fields and the
//! certificate's days left. Error messages never include the URL (it may
//! carry a token in its query string).

use crate::config::HttpCheck;

use super::Outcome;

/// At most this much of a body is read for `body_contains` and `json`, so a
/// huge answer cannot exhaust memory.
const MAX_BODY: usize = 1 << 20;

pub(super) async fn probe(client: &reqwest::Client, check: &HttpCheck, now: i64) -> Outcome {
    let method = match reqwest::Method::from_bytes(check.method.as_bytes()) {
        Ok(m) => m,
        Err(_) => return Outcome::fail(None, format!("invalid method {:?}", check.method)),
    };
    let mut request = client.request(method, &check.url);
    for (name, value) in &check.headers {
        request = request.header(name.as_str(), value.expose().as_str());
    }
    if let Some(body) = &check.body {
        request = request.body(body.clone());
    }
    let mut response = match request.send().await {
        Ok(r) => r,
        Err(e) => return Outcome::fail(None, describe(&e)),
    };
    let status = response.status().as_u16();
    if let Some(min_days) = check.cert_min_days {
        let not_after = response
            .extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(|info| info.peer_certificate())
            .and_then(super::not_after_unix);
        match not_after {
            Some(t) => {
                if let Err(e) = super::check_cert(t, now, Some(min_days)) {
                    return Outcome::fail(Some(status), e);
                }
            }
            None => return Outcome::fail(Some(status), "cannot read the certificate's expiry"),
        }
    }
    if !check.status_ok(status) {
        return Outcome::fail(Some(status), format!("unexpected status {status}"));
    }
    if check.body_contains.is_none() && check.json.is_empty() {
        return Outcome::ok(Some(status));
    }
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                body.extend_from_slice(&chunk);
                if body.len() >= MAX_BODY {
                    body.truncate(MAX_BODY);
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => return Outcome::fail(Some(status), describe(&e)),
        }
    }
    match judge_body(check, &body) {
        Ok(()) => Outcome::ok(Some(status)),
        Err(e) => Outcome::fail(Some(status), e),
    }
}

/// A reqwest error without its URL.
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "cannot read the body"
    } else {
        "request failed"
    };
    // The source chain holds the useful part (connection refused, dns...),
    // and never the URL, which reqwest keeps on the outer error only.
    let mut cause = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    if cause.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {}", crate::config::lowercase_first(&cause))
    }
}

/// The body checks: substring and JSON field equality.
pub(crate) fn judge_body(check: &HttpCheck, body: &[u8]) -> Result<(), String> {
    if let Some(needle) = &check.body_contains {
        let text = String::from_utf8_lossy(body);
        if !text.contains(needle.as_str()) {
            return Err(format!("body does not contain {needle:?}"));
        }
    }
    if !check.json.is_empty() {
        let doc: serde_json::Value =
            serde_json::from_slice(body).map_err(|_| "body is not valid JSON".to_string())?;
        for (path, expected) in &check.json {
            match lookup(&doc, path) {
                Some(actual) if actual == expected => {}
                Some(actual) => {
                    return Err(format!("json {path} is {actual}, expected {expected}"))
                }
                None => return Err(format!("json {path} is missing")),
            }
        }
    }
    Ok(())
}

/// Follows a dotted path; numeric segments index arrays.
fn lookup<'a>(doc: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    path.split('.').try_fold(doc, |v, seg| match v {
        serde_json::Value::Object(map) => map.get(seg),
        serde_json::Value::Array(items) => seg.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check_with(contains: Option<&str>, fields: &[(&str, serde_json::Value)]) -> HttpCheck {
        HttpCheck {
            url: "http://127.0.0.1:1/".into(),
            method: "GET".into(),
            headers: vec![],
            body: None,
            expect_status: vec![200..=399],
            max_latency: None,
            body_contains: contains.map(str::to_string),
            json: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            cert_min_days: None,
        }
    }

    #[test]
    fn body_checks() {
        let body = br#"{"status":"UP","db":{"ok":true,"replicas":[{"lag":0}]}}"#;
        type Case<'a> = (Option<&'a str>, Vec<(&'a str, serde_json::Value)>, bool);
        let cases: &[Case] = &[
            (Some("UP"), vec![], true),
            (Some("DOWN"), vec![], false),
            (None, vec![("status", json!("UP"))], true),
            (None, vec![("status", json!("DOWN"))], false),
            (None, vec![("db.ok", json!(true))], true),
            (None, vec![("db.replicas.0.lag", json!(0))], true),
            (None, vec![("db.missing", json!(1))], false),
            (Some("UP"), vec![("db.ok", json!(false))], false),
        ];
        for (contains, fields, ok) in cases {
            let c = check_with(*contains, fields);
            assert_eq!(judge_body(&c, body).is_ok(), *ok, "{contains:?} {fields:?}");
        }
        assert!(judge_body(&check_with(None, &[("a", json!(1))]), b"not json").is_err());
    }
}
