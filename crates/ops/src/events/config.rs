//! `[[sink]]`: where the event stream goes.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::config::cx::*;
use crate::config::raw::Sp;
use crate::config::*;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SinkRaw {
    pub(crate) name: Sp<String>,
    #[serde(rename = "type")]
    pub(crate) kind: Sp<String>,
    pub(crate) events: Option<Vec<Sp<String>>>,
    pub(crate) batch: Option<Sp<i64>>,
    // file
    pub(crate) path: Option<Sp<String>>,
    // syslog, http
    pub(crate) url: Option<Sp<String>>,
    // syslog
    pub(crate) facility: Option<Sp<String>>,
    pub(crate) max_message: Option<Sp<i64>>,
    pub(crate) ca_file: Option<Sp<String>>,
    pub(crate) hostname: Option<Sp<String>>,
    // cloudwatch
    pub(crate) group: Option<Sp<String>>,
    pub(crate) stream: Option<Sp<String>>,
    pub(crate) region: Option<Sp<String>>,
    pub(crate) endpoint: Option<Sp<String>>,
    // http
    pub(crate) headers: Option<BTreeMap<String, Sp<String>>>,
    pub(crate) timeout: Option<Sp<String>>,
}

const SINK_TYPES: &[&str] = &["file", "syslog", "cloudwatch", "http"];

/// Syslog facilities by name, RFC 5424 section 6.2.1.
pub(crate) const FACILITIES: &[&str] = &[
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "ntp", "audit", "alert", "clock", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
];

pub(crate) const DEFAULT_BATCH: u32 = 500;
/// RFC 5426 asks every receiver to take 2048-byte datagrams; larger ones
/// may be dropped on the way.
pub(crate) const DEFAULT_UDP_MAX: u32 = 2048;

pub(crate) fn compile_sink(cx: &mut Cx<'_>, el: &Element) -> Option<SinkConfig> {
    let raw: SinkRaw = cx.de(el)?;
    let p = &el.path;
    let ty = raw.kind.get_ref().as_str();
    if !SINK_TYPES.contains(&ty) {
        cx.error(
            Some(raw.kind.span()),
            format!("{p}.type"),
            format!(
                "unknown sink type \"{ty}\" (expected one of {})",
                quoted_list(SINK_TYPES)
            ),
        );
        return None;
    }
    let s = |v: &Option<Sp<String>>| v.as_ref().map(|v| v.span());
    let headers_span = raw
        .headers
        .as_ref()
        .and_then(|h| h.values().next().map(|v| v.span()))
        .or(el.span.clone());
    let all: Vec<(&str, Option<Span>)> = vec![
        ("path", s(&raw.path)),
        ("url", s(&raw.url)),
        ("facility", s(&raw.facility)),
        ("max_message", raw.max_message.as_ref().map(|v| v.span())),
        ("ca_file", s(&raw.ca_file)),
        ("hostname", s(&raw.hostname)),
        ("group", s(&raw.group)),
        ("stream", s(&raw.stream)),
        ("region", s(&raw.region)),
        ("endpoint", s(&raw.endpoint)),
        ("headers", raw.headers.as_ref().and(headers_span)),
        ("timeout", s(&raw.timeout)),
    ];
    let allowed: &[&str] = match ty {
        "file" => &["path"],
        "syslog" => &["url", "facility", "max_message", "ca_file", "hostname"],
        "cloudwatch" => &["group", "stream", "region", "endpoint"],
        _ => &["url", "headers", "timeout"],
    };
    let foreign: Vec<(&str, Option<Span>)> = all
        .into_iter()
        .filter(|(n, _)| !allowed.contains(n))
        .collect();
    let mut ok = cx.reject(p, &format!("a {ty} sink"), &foreign);

    let mut events = Vec::new();
    for (i, e) in raw.events.iter().flatten().enumerate() {
        match EventKind::parse(e.get_ref()) {
            Some(k) if !events.contains(&k) => events.push(k),
            Some(_) => {}
            None => {
                let known: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
                cx.error(
                    Some(e.span()),
                    format!("{p}.events[{i}]"),
                    format!(
                        "unknown event kind \"{}\" (expected one of {})",
                        e.get_ref().escape_debug(),
                        quoted_list(&known)
                    ),
                );
                ok = false;
            }
        }
    }
    let batch = cx.int(&raw.batch, format!("{p}.batch"), DEFAULT_BATCH, 1, 10_000);

    let required = |cx: &mut Cx<'_>, v: &Option<Sp<String>>, name: &str| -> Option<String> {
        match v {
            Some(v) => cx.non_empty(v, format!("{p}.{name}")),
            None => {
                cx.error(
                    el.span.clone(),
                    p.clone(),
                    format!("a {ty} sink needs `{name}`"),
                );
                None
            }
        }
    };
    let name = raw.name.get_ref().clone();
    let kind = match ty {
        "file" => {
            let path = match &raw.path {
                None => Some(PathBuf::from(format!("{name}.ndjson"))),
                Some(v) => match log_path(v.get_ref()) {
                    Ok(path) => Some(path),
                    Err(msg) => {
                        cx.error(Some(v.span()), format!("{p}.path"), msg);
                        None
                    }
                },
            };
            // Bulwark's own logs have writers (and readers: the last
            // verification is read back) of their own; a sink appending
            // there would interleave with them, and its take-back after a
            // failed batch would cut their lines.
            let path = path.filter(|path| {
                let own = OWN_LOGS.iter().any(|l| path.as_os_str() == *l);
                if own {
                    let (span, field) = match &raw.path {
                        Some(v) => (Some(v.span()), format!("{p}.path")),
                        None => (Some(raw.name.span()), format!("{p}.name")),
                    };
                    cx.error(
                        span,
                        field,
                        format!(
                            "{} is Bulwark's own log under <data-dir>/logs/: give the sink another `path`",
                            path.display()
                        ),
                    );
                }
                !own
            });
            path.map(|path| SinkKind::File { path })
        }
        "syslog" => {
            let url = required(cx, &raw.url, "url");
            let target = match (url, &raw.url) {
                (Some(url), Some(v)) => match syslog_target(&url) {
                    Ok(t) => Some(t),
                    Err(msg) => {
                        cx.error(Some(v.span()), format!("{p}.url"), msg);
                        None
                    }
                },
                _ => None,
            };
            let facility = match &raw.facility {
                None => Some(16),
                Some(v) => match FACILITIES.iter().position(|f| f == v.get_ref()) {
                    Some(i) => u8::try_from(i).ok(),
                    None => {
                        cx.error(
                            Some(v.span()),
                            format!("{p}.facility"),
                            format!(
                                "unknown facility \"{}\" (expected one of {})",
                                v.get_ref().escape_debug(),
                                quoted_list(FACILITIES)
                            ),
                        );
                        None
                    }
                },
            };
            let max_message = cx.int(
                &raw.max_message,
                format!("{p}.max_message"),
                DEFAULT_UDP_MAX,
                480,
                65_000,
            );
            let hostname = match &raw.hostname {
                None => Some(None),
                Some(v) => {
                    let h = v.get_ref();
                    if h.is_empty() || h.len() > 255 || !h.chars().all(|c| c.is_ascii_graphic()) {
                        cx.error(
                            Some(v.span()),
                            format!("{p}.hostname"),
                            "must be 1 to 255 printable ascii characters without spaces",
                        );
                        None
                    } else {
                        Some(Some(h.clone()))
                    }
                }
            };
            let ca_file = raw.ca_file.as_ref().map(|v| PathBuf::from(v.get_ref()));
            if let (Some(v), Some((t, _, _))) = (&raw.ca_file, &target) {
                if *t != SyslogTransport::Tls {
                    cx.error(
                        Some(v.span()),
                        format!("{p}.ca_file"),
                        "`ca_file` applies to tls:// only",
                    );
                    ok = false;
                }
            }
            match (target, facility, max_message, hostname) {
                (
                    Some((transport, host, port)),
                    Some(facility),
                    Some(max_message),
                    Some(hostname),
                ) => Some(SinkKind::Syslog(SyslogSink {
                    transport,
                    host,
                    port,
                    facility,
                    max_message: max_message as usize,
                    ca_file,
                    hostname,
                })),
                _ => None,
            }
        }
        "cloudwatch" => {
            let group = required(cx, &raw.group, "group");
            let stream = required(cx, &raw.stream, "stream");
            let region = raw
                .region
                .as_ref()
                .and_then(|v| cx.non_empty(v, format!("{p}.region")));
            let endpoint = match &raw.endpoint {
                None => Some(None),
                Some(v) => cx.http_url(v, format!("{p}.endpoint")).map(Some),
            };
            if let Some(v) = &raw.region {
                ok &= !v.get_ref().trim().is_empty();
            }
            match (group, stream, endpoint) {
                (Some(group), Some(stream), Some(endpoint)) => {
                    Some(SinkKind::Cloudwatch(CloudwatchSink {
                        group,
                        stream,
                        region,
                        endpoint,
                    }))
                }
                _ => None,
            }
        }
        _ => {
            let url = required(cx, &raw.url, "url");
            let url = match (url, &raw.url) {
                (Some(_), Some(v)) => cx.http_url(v, format!("{p}.url")),
                _ => None,
            };
            let mut headers = Vec::new();
            for (k, v) in raw.headers.iter().flatten() {
                let valid_name = !k.is_empty()
                    && k.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
                if !valid_name {
                    cx.error(
                        Some(v.span()),
                        format!("{p}.headers.{k}"),
                        "invalid header name",
                    );
                    ok = false;
                } else if v.get_ref().chars().any(|c| c.is_control()) {
                    // The value is never quoted: it may be a credential.
                    cx.error(
                        Some(v.span()),
                        format!("{p}.headers.{k}"),
                        "contains a control character",
                    );
                    ok = false;
                } else {
                    headers.push((k.clone(), Secret::new(v.get_ref().clone())));
                }
            }
            let timeout = cx.duration(
                &raw.timeout,
                format!("{p}.timeout"),
                Duration::from_secs(30),
                Duration::from_secs(1),
            );
            match (url, timeout) {
                (Some(url), Some(timeout)) => Some(SinkKind::Http(HttpSink {
                    url: Secret::new(url),
                    headers,
                    timeout,
                })),
                _ => None,
            }
        }
    };
    if !ok {
        return None;
    }
    Some(SinkConfig {
        name,
        events,
        batch: batch? as usize,
        kind: kind?,
    })
}

/// The files Bulwark itself writes under `<data-dir>/logs/`.
use crate::files::OWN_LOGS;

/// A file sink's path: relative, below `logs/`, no `..`.
fn log_path(path: &str) -> Result<PathBuf, String> {
    let p = Path::new(path);
    if path.trim().is_empty() {
        return Err("must not be empty".to_string());
    }
    if p.is_absolute() {
        return Err("must be relative: the file is written under <data-dir>/logs/".to_string());
    }
    if p.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err("must stay below <data-dir>/logs/ (no `..` or `.` components)".to_string());
    }
    Ok(p.to_path_buf())
}

/// `udp://host:port`, `tcp://host:port`, `tls://host:port`.
fn syslog_target(url: &str) -> Result<(SyslogTransport, String, u16), String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or("expected udp://host:port, tcp://host:port or tls://host:port")?;
    let transport = match scheme {
        "udp" => SyslogTransport::Udp,
        "tcp" => SyslogTransport::Tcp,
        "tls" => SyslogTransport::Tls,
        other => {
            return Err(format!(
                "unknown scheme `{other}`: expected udp://, tcp:// or tls://"
            ))
        }
    };
    let (host, port) = host_port(rest)?;
    Ok((transport, host, port))
}
