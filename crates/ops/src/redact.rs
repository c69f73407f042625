//! Keeping credentials out of what people read. URLs of health checks,
//! hooks and webhooks may carry tokens in their user info, path or query
//! (`https://app/healthz?token=...`), so what is shown of a URL is its
//! origin: scheme, host and port.

/// `scheme://host[:port]` of `url`, without user info, path, query or
/// fragment.
pub fn url_origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or(authority);
    format!("{scheme}://{host}")
}

/// `text` with every `http://` or `https://` URL in it cut to its origin.
/// For free text that may quote a URL (a step's detail, an error).
pub fn urls_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let next = ["http://", "https://"]
            .iter()
            .filter_map(|s| rest.find(s))
            .min();
        let Some(start) = next else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..start]);
        let url_len = rest[start..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '\\' | '<' | '>' | '`'))
            .unwrap_or(rest.len() - start);
        let url = &rest[start..start + url_len];
        // A sentence may end right after the URL.
        let trimmed = url.trim_end_matches([',', ';', ')', '.']);
        out.push_str(&url_origin(trimmed));
        out.push_str(&url[trimmed.len()..]);
        rest = &rest[start + url_len..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_table() {
        for (url, want) in [
            (
                "http://127.0.0.1:9200/healthz?token=s3cret",
                "http://127.0.0.1:9200",
            ),
            ("https://user:pw@example.com/x", "https://example.com"),
            ("https://example.com", "https://example.com"),
            ("http://[::1]:80/#frag", "http://[::1]:80"),
        ] {
            assert_eq!(url_origin(url), want, "{url}");
        }
    }

    #[test]
    fn urls_in_free_text_lose_path_and_query() {
        assert_eq!(
            urls_in("http://h:1/healthz?t=s3cret answered 200 OK after 0.1s"),
            "http://h:1 answered 200 OK after 0.1s"
        );
        assert_eq!(
            urls_in("probe (https://a/b?k=v), then \"http://b/c?x=y\"."),
            "probe (https://a), then \"http://b\"."
        );
        assert_eq!(urls_in("no url here"), "no url here");
        // Inside stored JSON, a quoted URL ends at the escape.
        assert_eq!(
            urls_in(r#"{"detail":"\"http://h/p?t=x\" down"}"#),
            r#"{"detail":"\"http://h\" down"}"#
        );
    }
}
