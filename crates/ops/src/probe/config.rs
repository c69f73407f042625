//! `[[monitor]]` (with `BASE_URL`, `UPTIME_INTERVAL_SEC`, `UPTIME_STRIKES`).

use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::cx::*;
use crate::config::raw::Sp;
use crate::config::*;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MonitorRaw {
    pub(crate) name: Sp<String>,
    #[serde(rename = "type")]
    pub(crate) kind: Option<Sp<String>>,
    pub(crate) url: Option<Sp<String>>,
    pub(crate) method: Option<Sp<String>>,
    pub(crate) headers: Option<BTreeMap<String, Sp<String>>>,
    pub(crate) body: Option<Sp<String>>,
    pub(crate) interval: Option<Sp<String>>,
    pub(crate) timeout: Option<Sp<String>>,
    pub(crate) strikes: Option<Sp<i64>>,
    pub(crate) recover_after: Option<Sp<i64>>,
    pub(crate) expect_status: Option<Sp<toml::Value>>,
    pub(crate) max_latency: Option<Sp<String>>,
    pub(crate) body_contains: Option<Sp<String>>,
    pub(crate) json: Option<BTreeMap<String, toml::Value>>,
    pub(crate) cert_min_days: Option<Sp<i64>>,
    pub(crate) tags: Option<Vec<Sp<String>>>,
    pub(crate) period: Option<Sp<String>>,
    pub(crate) grace: Option<Sp<String>>,
    pub(crate) public: Option<bool>,
}

pub(crate) struct MonitorDefaults {
    interval: Duration,
    strikes: u32,
}

impl MonitorDefaults {
    pub(crate) fn from_env(cx: &mut Cx<'_>, env: &dyn Fn(&str) -> Option<String>) -> Self {
        let mut d = MonitorDefaults {
            interval: DEFAULT_INTERVAL,
            strikes: DEFAULT_STRIKES,
        };
        if let Some(v) = env("UPTIME_INTERVAL_SEC") {
            match v.trim().parse::<u64>() {
                Ok(n) if n >= 1 => d.interval = Duration::from_secs(n),
                _ => cx.env_error(
                    "UPTIME_INTERVAL_SEC",
                    format!("invalid value {v:?}: expected a whole number of seconds, at least 1"),
                ),
            }
        }
        if let Some(v) = env("UPTIME_STRIKES") {
            match v.trim().parse::<u32>() {
                Ok(n) if n >= 1 => d.strikes = n,
                _ => cx.env_error(
                    "UPTIME_STRIKES",
                    format!("invalid value {v:?}: expected a whole number, at least 1"),
                ),
            }
        }
        d
    }
}

pub(crate) const HTTP_METHODS: &[&str] =
    &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

pub(crate) fn compile_monitor(
    cx: &mut Cx<'_>,
    el: &Element,
    defaults: &MonitorDefaults,
) -> Option<MonitorConfig> {
    let raw: MonitorRaw = cx.de(el)?;
    let p = &el.path;
    let sp = |v: &Option<Sp<String>>| v.as_ref().map(|v| v.span());

    let interval = cx.duration(
        &raw.interval,
        format!("{p}.interval"),
        defaults.interval,
        Duration::from_secs(1),
    );
    // The default timeout never exceeds the interval; only an explicit one is warned about.
    let default_timeout = DEFAULT_TIMEOUT.min(interval.unwrap_or(DEFAULT_TIMEOUT));
    let timeout = cx.duration(
        &raw.timeout,
        format!("{p}.timeout"),
        default_timeout,
        Duration::ZERO,
    );
    if let (Some(i), Some(t), Some(v)) = (interval, timeout, &raw.timeout) {
        if t > i {
            cx.warn(
                Some(v.span()),
                format!("{p}.timeout"),
                format!(
                    "timeout {} is longer than the interval {}, so probes can overlap",
                    crate::config::format_duration(t),
                    crate::config::format_duration(i)
                ),
            );
        }
    }
    let strikes = cx.int(
        &raw.strikes,
        format!("{p}.strikes"),
        defaults.strikes,
        1,
        1000,
    );
    let recover_after = cx.int(
        &raw.recover_after,
        format!("{p}.recover_after"),
        DEFAULT_RECOVER_AFTER,
        1,
        1000,
    );
    let mut tags = Vec::new();
    let mut tags_ok = true;
    for (i, t) in raw.tags.iter().flatten().enumerate() {
        match cx.non_empty(t, format!("{p}.tags[{i}]")) {
            Some(t) => tags.push(t),
            None => tags_ok = false,
        }
    }

    let declared = raw.kind.as_ref().map(|k| (k.get_ref().as_str(), k.span()));
    let kind = match (declared, &raw.url) {
        (Some(("push", _)), url) => {
            let mut ok = cx.reject(
                p,
                "a push monitor",
                &[
                    ("url", sp(url)),
                    ("method", sp(&raw.method)),
                    ("body", sp(&raw.body)),
                    ("max_latency", sp(&raw.max_latency)),
                    ("body_contains", sp(&raw.body_contains)),
                    (
                        "expect_status",
                        raw.expect_status.as_ref().map(|v| v.span()),
                    ),
                    (
                        "cert_min_days",
                        raw.cert_min_days.as_ref().map(|v| v.span()),
                    ),
                ],
            );
            if raw.headers.is_some() || raw.json.is_some() {
                cx.error(
                    el.span.clone(),
                    p.clone(),
                    "`headers` and `json` do not apply to a push monitor",
                );
                ok = false;
            }
            let period = match &raw.period {
                Some(v) => cx.duration_at(v, format!("{p}.period"), Duration::from_secs(1)),
                None => {
                    cx.error(
                        el.span.clone(),
                        p.clone(),
                        "a push monitor needs `period` (how often the heartbeat arrives)",
                    );
                    None
                }
            };
            let grace = cx.duration(
                &raw.grace,
                format!("{p}.grace"),
                DEFAULT_PUSH_GRACE,
                Duration::ZERO,
            );
            match (ok, period, grace) {
                (true, Some(period), Some(grace)) => Some(MonitorKind::Push { period, grace }),
                _ => None,
            }
        }
        (Some((other, span)), _) if !matches!(other, "http" | "tcp" | "tls") => {
            cx.error(Some(span), format!("{p}.type"), format!("unknown monitor type \"{other}\" (expected \"http\", \"tcp\", \"tls\" or \"push\")"));
            None
        }
        (_, None) => {
            cx.error(
                el.span.clone(),
                p.clone(),
                "missing `url` (or set type = \"push\" for a heartbeat monitor)",
            );
            None
        }
        (declared, Some(url)) => {
            let ok = cx.reject(
                p,
                "a monitor with a url",
                &[("period", sp(&raw.period)), ("grace", sp(&raw.grace))],
            );
            let kind = probe_kind(cx, el, &raw, url);
            if let (Some(kind), Some((declared, span))) = (&kind, declared) {
                let actual = match kind {
                    MonitorKind::Http(_) => "http",
                    MonitorKind::Tcp { .. } => "tcp",
                    _ => "tls",
                };
                if declared != actual {
                    cx.error(
                        Some(span),
                        format!("{p}.type"),
                        format!("type \"{declared}\" does not match the url, which is {actual}"),
                    );
                    return None;
                }
            }
            kind.filter(|_| ok)
        }
    };

    Some(MonitorConfig {
        name: raw.name.get_ref().clone(),
        kind: kind?,
        interval: interval?,
        timeout: timeout?,
        strikes: strikes?,
        recover_after: recover_after?,
        tags: Some(tags).filter(|_| tags_ok)?,
        public: raw.public.unwrap_or(false),
    })
}

pub(crate) fn probe_kind(
    cx: &mut Cx<'_>,
    el: &Element,
    raw: &MonitorRaw,
    url: &Sp<String>,
) -> Option<MonitorKind> {
    let p = &el.path;
    let text = url.get_ref().trim();
    let scheme = text.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    let sp = |v: &Option<Sp<String>>| v.as_ref().map(|v| v.span());
    match scheme.as_deref() {
        Some("tcp") | Some("tls") => {
            let is_tls = scheme.as_deref() == Some("tls");
            let context = if is_tls {
                "a tls monitor"
            } else {
                "a tcp monitor"
            };
            let mut ok = cx.reject(
                p,
                context,
                &[
                    ("method", sp(&raw.method)),
                    ("body", sp(&raw.body)),
                    ("body_contains", sp(&raw.body_contains)),
                    (
                        "expect_status",
                        raw.expect_status.as_ref().map(|v| v.span()),
                    ),
                    ("max_latency", sp(&raw.max_latency)),
                ],
            );
            if raw.headers.is_some() || raw.json.is_some() {
                cx.error(
                    el.span.clone(),
                    p.clone(),
                    format!("`headers` and `json` do not apply to {context}"),
                );
                ok = false;
            }
            if !is_tls {
                ok &= cx.reject(
                    p,
                    context,
                    &[(
                        "cert_min_days",
                        raw.cert_min_days.as_ref().map(|v| v.span()),
                    )],
                );
            }
            let cert_min_days = cert_days(cx, raw, p);
            let rest = &text[6..];
            let (host, port) = match host_port(rest) {
                Ok(hp) => hp,
                Err(msg) => {
                    cx.error(
                        Some(url.span()),
                        format!("{p}.url"),
                        format!("invalid url {text:?}: {msg}"),
                    );
                    return None;
                }
            };
            if !ok {
                return None;
            }
            if is_tls {
                Some(MonitorKind::Tls {
                    host,
                    port,
                    cert_min_days: cert_min_days.ok()?,
                })
            } else {
                Some(MonitorKind::Tcp { host, port })
            }
        }
        Some("http") | Some("https") | None | Some(_) => {
            let (scheme, _, _) = match check_http_url(text) {
                Ok(parts) => parts,
                Err(msg) => {
                    cx.error(
                        Some(url.span()),
                        format!("{p}.url"),
                        format!("{msg} (monitors take http://, https://, tcp://host:port or tls://host:port)"),
                    );
                    return None;
                }
            };
            let mut ok = true;
            let method = match &raw.method {
                None => "GET".to_string(),
                Some(m) => {
                    let upper = m.get_ref().to_ascii_uppercase();
                    if !HTTP_METHODS.contains(&upper.as_str()) {
                        cx.error(
                            Some(m.span()),
                            format!("{p}.method"),
                            format!(
                                "unknown http method \"{}\" (expected one of {})",
                                m.get_ref(),
                                HTTP_METHODS.join(", ")
                            ),
                        );
                        ok = false;
                    }
                    upper
                }
            };
            let mut headers = Vec::new();
            for (name, value) in raw.headers.iter().flatten() {
                if name.is_empty()
                    || !name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
                {
                    cx.error(
                        Some(value.span()),
                        format!("{p}.headers.{name:?}"),
                        "invalid header name",
                    );
                    ok = false;
                } else if value.get_ref().contains(['\r', '\n']) {
                    cx.error(
                        Some(value.span()),
                        format!("{p}.headers.{name}"),
                        "header value must not contain line breaks",
                    );
                    ok = false;
                } else {
                    headers.push((name.clone(), Secret::new(value.get_ref().clone())));
                }
            }
            let expect_status = match &raw.expect_status {
                None => Some(vec![200..=399]),
                Some(v) => match expect_status(v.get_ref()) {
                    Ok(ranges) => Some(ranges),
                    Err(msg) => {
                        cx.error(Some(v.span()), format!("{p}.expect_status"), msg);
                        None
                    }
                },
            };
            let max_latency = cx.opt_duration(&raw.max_latency, format!("{p}.max_latency"));
            let mut json = Vec::new();
            for (path, value) in raw.json.iter().flatten() {
                let field = format!("{p}.json.{path:?}");
                if path.trim().is_empty() || path.split('.').any(str::is_empty) {
                    cx.error(el.span.clone(), field, "invalid json path: empty segment");
                    ok = false;
                    continue;
                }
                match toml_to_json(value) {
                    Some(v) => json.push((path.clone(), v)),
                    None => {
                        cx.error(
                            el.span.clone(),
                            field,
                            "dates cannot be compared: quote them as strings",
                        );
                        ok = false;
                    }
                }
            }
            if let Some(v) = &raw.cert_min_days {
                if scheme != "https" {
                    cx.error(
                        Some(v.span()),
                        format!("{p}.cert_min_days"),
                        "`cert_min_days` needs an https:// url",
                    );
                    ok = false;
                }
            }
            let cert_min_days = cert_days(cx, raw, p);
            if let Some(v) = &raw.body_contains {
                if v.get_ref().is_empty() {
                    cx.error(
                        Some(v.span()),
                        format!("{p}.body_contains"),
                        "must not be empty",
                    );
                    ok = false;
                }
            }
            if !ok {
                return None;
            }
            Some(MonitorKind::Http(HttpCheck {
                url: text.to_string(),
                method,
                headers,
                body: raw.body.as_ref().map(|b| b.get_ref().clone()),
                expect_status: expect_status?,
                max_latency: max_latency.ok()?,
                body_contains: raw.body_contains.as_ref().map(|b| b.get_ref().clone()),
                json,
                cert_min_days: cert_min_days.ok()?,
            }))
        }
    }
}

pub(crate) fn cert_days(cx: &mut Cx<'_>, raw: &MonitorRaw, p: &str) -> Result<Option<u32>, ()> {
    match &raw.cert_min_days {
        None => Ok(None),
        Some(v) => cx
            .int_at(v, format!("{p}.cert_min_days"), 1, 3650)
            .map(Some)
            .ok_or(()),
    }
}

pub(crate) fn toml_to_json(v: &toml::Value) -> Option<serde_json::Value> {
    Some(match v {
        toml::Value::String(s) => serde_json::Value::String(s.clone()),
        toml::Value::Integer(i) => serde_json::Value::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f)
            .map_or(serde_json::Value::Null, serde_json::Value::Number),
        toml::Value::Boolean(b) => serde_json::Value::Bool(*b),
        toml::Value::Datetime(_) => return None,
        toml::Value::Array(a) => {
            serde_json::Value::Array(a.iter().map(toml_to_json).collect::<Option<_>>()?)
        }
        toml::Value::Table(t) => serde_json::Value::Object(
            t.iter()
                .map(|(k, v)| Some((k.clone(), toml_to_json(v)?)))
                .collect::<Option<_>>()?,
        ),
    })
}

/// `200`, `[200, 204]`, `"2xx"`, `"200-299"` or a list mixing them.
pub(crate) fn expect_status(v: &toml::Value) -> Result<Vec<std::ops::RangeInclusive<u16>>, String> {
    fn one(v: &toml::Value) -> Result<std::ops::RangeInclusive<u16>, String> {
        let code = |n: i64| -> Result<u16, String> {
            match u16::try_from(n) {
                Ok(c) if (100..=599).contains(&c) => Ok(c),
                _ => Err(format!("invalid status code {n}: expected 100 to 599")),
            }
        };
        match v {
            toml::Value::Integer(n) => code(*n).map(|c| c..=c),
            toml::Value::String(s) => {
                let s = s.trim();
                if let Some(class) = s.strip_suffix("xx").and_then(|d| d.parse::<i64>().ok()) {
                    let lo = code(class * 100)?;
                    return Ok(lo..=lo + 99);
                }
                match s
                    .split_once('-')
                    .map(|(a, b)| (a.trim().parse::<i64>(), b.trim().parse::<i64>()))
                {
                    Some((Ok(a), Ok(b))) if a <= b => Ok(code(a)?..=code(b)?),
                    _ => Err(format!(
                        "invalid status {s:?}: expected a code, \"2xx\" or \"200-299\""
                    )),
                }
            }
            _ => Err(
                "expected a status code, a string such as \"2xx\", or a list of them".to_string(),
            ),
        }
    }
    match v {
        toml::Value::Array(items) if items.is_empty() => Err("must not be empty".to_string()),
        toml::Value::Array(items) => items.iter().map(one).collect(),
        other => Ok(vec![one(other)?]),
    }
}

/// The uptime monitor on `BASE_URL`, probing `/healthz` when the URL
/// has no path of its own.
pub(crate) fn base_url_monitor(
    cx: &mut Cx<'_>,
    url: &str,
    defaults: &MonitorDefaults,
) -> Option<MonitorConfig> {
    let url = url.trim();
    let (_, _, path) = match check_http_url(url) {
        Ok(parts) => parts,
        Err(msg) => {
            cx.env_error("BASE_URL", msg);
            return None;
        }
    };
    let probe = match path {
        "" => format!("{url}/healthz"),
        "/" => format!("{url}healthz"),
        _ => url.to_string(),
    };
    Some(MonitorConfig {
        name: "base_url".to_string(),
        kind: MonitorKind::Http(HttpCheck {
            url: probe,
            method: "GET".to_string(),
            headers: Vec::new(),
            body: None,
            expect_status: vec![200..=399],
            max_latency: None,
            body_contains: None,
            json: Vec::new(),
            cert_min_days: None,
        }),
        interval: defaults.interval,
        timeout: DEFAULT_TIMEOUT.min(defaults.interval),
        strikes: defaults.strikes,
        recover_after: DEFAULT_RECOVER_AFTER,
        tags: Vec::new(),
        public: false,
    })
}
