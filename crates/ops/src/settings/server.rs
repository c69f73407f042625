//! `[server]` and `[auth]` (with `ROLES_JSON`).

use serde::Deserialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use sha2::{Digest, Sha256};
use toml_edit::{Item, Key, Table, Value};

use crate::config::raw::Sp;
use crate::config::*;
use crate::identity::Role;

use crate::config::cx::*;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServerRaw {
    pub(crate) listen: Option<Sp<String>>,
    pub(crate) database: Option<Sp<String>>,
    pub(crate) strict_budget_threshold: Option<Sp<f64>>,
    pub(crate) max_silence: Option<Sp<String>>,
    pub(crate) metrics_require_key: Option<bool>,
    pub(crate) results_retention: Option<Sp<String>>,
    pub(crate) trusted_proxies: Option<Vec<Sp<String>>>,
    pub(crate) header_read_timeout: Option<Sp<String>>,
    pub(crate) max_connections: Option<Sp<i64>>,
    pub(crate) shutdown_grace: Option<Sp<String>>,
    pub(crate) session_ttl: Option<Sp<String>>,
    pub(crate) restore_roots: Option<Vec<Sp<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeyRaw {
    pub(crate) name: Sp<String>,
    pub(crate) role: Sp<String>,
    pub(crate) hash: Sp<String>,
}

pub(crate) fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    if let Some(port) = s.strip_prefix("localhost:") {
        if let Ok(p) = port.parse::<u16>() {
            return Ok(SocketAddr::from(([127, 0, 0, 1], p)));
        }
    }
    s.parse::<SocketAddr>().map_err(|_| {
        format!("invalid listen address {s:?}: expected ip:port such as 127.0.0.1:8080")
    })
}

/// A sanity bound on `[server] max_connections`: far above what one
/// process's open-file limit allows.
pub(crate) const MAX_CONNECTIONS_LIMIT: i64 = 1_000_000;

pub(crate) fn compile_server(
    cx: &mut Cx<'_>,
    root: &Table,
    env: &dyn Fn(&str) -> Option<String>,
) -> ServerConfig {
    let mut server = ServerConfig::default();
    if let Some(item) = root.get("server") {
        let span = root.get_key_value("server").and_then(|(k, _)| k.span());
        if let Some(raw) = cx.de_item::<ServerRaw>(item, "server", span) {
            if let Some(v) = &raw.listen {
                match parse_listen(v.get_ref()) {
                    Ok(addr) => server.listen = addr,
                    Err(msg) => cx.error(Some(v.span()), "server.listen", msg),
                }
            }
            if let Some(v) = &raw.database {
                let url = v.get_ref().trim();
                let valid = ["postgres://", "postgresql://"]
                    .iter()
                    .any(|p| url.strip_prefix(p).is_some_and(|rest| !rest.is_empty()));
                if valid {
                    server.database = Some(Secret::new(url.to_string()));
                } else {
                    // Never echo it: the URL may carry a password.
                    cx.error(
                        Some(v.span()),
                        "server.database",
                        "must be a postgres:// or postgresql:// url (leave it out to use sqlite in the data directory)",
                    );
                }
            }
            if let Some(v) = &raw.strict_budget_threshold {
                let t = *v.get_ref();
                if t > 0.0 && t <= 1.0 {
                    server.strict_budget_threshold = t;
                } else {
                    cx.error(
                        Some(v.span()),
                        "server.strict_budget_threshold",
                        format!("must be in (0, 1], got {t}"),
                    );
                }
            }
            if let Some(v) = &raw.max_silence {
                if let Some(d) =
                    cx.duration_at(v, "server.max_silence".into(), Duration::from_secs(60))
                {
                    server.max_silence = d;
                }
            }
            if let Some(b) = raw.metrics_require_key {
                server.metrics_require_key = b;
            }
            if let Some(v) = &raw.results_retention {
                // At least two minutes, so a minute is always rolled up
                // before its raw results go.
                if let Some(d) = cx.duration_at(
                    v,
                    "server.results_retention".into(),
                    Duration::from_secs(120),
                ) {
                    server.results_retention = d;
                }
            }
            for (i, v) in raw.trusted_proxies.iter().flatten().enumerate() {
                match IpNetwork::parse(v.get_ref()) {
                    Ok(net) => server.trusted_proxies.push(net),
                    Err(msg) => {
                        cx.error(Some(v.span()), format!("server.trusted_proxies[{i}]"), msg)
                    }
                }
            }
            for (i, v) in raw.restore_roots.iter().flatten().enumerate() {
                let root = std::path::Path::new(v.get_ref().trim());
                let field = format!("server.restore_roots[{i}]");
                if !root.is_absolute() {
                    cx.error(Some(v.span()), field, "must be an absolute directory");
                } else if root
                    .components()
                    .any(|c| matches!(c, std::path::Component::ParentDir))
                {
                    cx.error(Some(v.span()), field, "must not contain `..`");
                } else if root.parent().is_none() {
                    cx.error(
                        Some(v.span()),
                        field,
                        "must not be `/`: list the directories restores may write to",
                    );
                } else {
                    server.restore_roots.push(root.to_path_buf());
                }
            }
            if let Some(v) = &raw.session_ttl {
                // At least a minute: shorter signs people out while they read.
                if let Some(d) =
                    cx.duration_at(v, "server.session_ttl".into(), Duration::from_secs(60))
                {
                    server.session_ttl = d;
                }
            }
            if let Some(v) = &raw.header_read_timeout {
                // Below a second, clients on slow links lose requests.
                if let Some(d) = cx.duration_at(
                    v,
                    "server.header_read_timeout".into(),
                    Duration::from_secs(1),
                ) {
                    server.header_read_timeout = d;
                }
            }
            if let Some(v) = &raw.max_connections {
                if let Some(n) =
                    cx.int_at(v, "server.max_connections".into(), 1, MAX_CONNECTIONS_LIMIT)
                {
                    server.max_connections = n as usize;
                }
            }
            if let Some(v) = &raw.shutdown_grace {
                if let Some(d) = cx.duration_at(v, "server.shutdown_grace".into(), Duration::ZERO) {
                    server.shutdown_grace = d;
                }
            }
        }
    }
    if let Some(v) = env("BULWARK_LISTEN") {
        match parse_listen(&v) {
            Ok(addr) => server.listen = addr,
            Err(msg) => cx.env_error("BULWARK_LISTEN", msg),
        }
    }
    server
}

pub(crate) fn compile_auth(
    cx: &mut Cx<'_>,
    root: &Table,
    env: &dyn Fn(&str) -> Option<String>,
) -> AuthConfig {
    let mut keys: Vec<(StaticKey, Option<(String, Span)>)> = Vec::new();
    if let Some((auth_key, auth)) = root.get_key_value("auth") {
        let entries: Vec<(&Key, &Item)> = match auth {
            Item::Table(t) => t.iter().filter_map(|(n, _)| t.get_key_value(n)).collect(),
            Item::Value(Value::InlineTable(t)) => {
                t.iter().filter_map(|(n, _)| t.get_key_value(n)).collect()
            }
            _ => {
                cx.error(auth_key.span(), "auth", "expected a table");
                Vec::new()
            }
        };
        for (key, item) in entries {
            if key.get() != "key" {
                cx.error(
                    key.span(),
                    format!("auth.{}", key.get()),
                    format!("unknown field `{}`, expected `key`", key.get()),
                );
                continue;
            }
            let els = cx.elements_of(key, item, "auth.key");
            cx.check_names(&els, "key", false);
            for el in &els {
                let Some(raw) = cx.de::<KeyRaw>(el) else {
                    continue;
                };
                let name = cx.non_empty(&raw.name, format!("{}.name", el.path));
                let role = match raw.role.get_ref().parse::<Role>() {
                    Ok(r) => Some(r),
                    Err(e) => {
                        cx.error(
                            Some(raw.role.span()),
                            format!("{}.role", el.path),
                            e.to_string(),
                        );
                        None
                    }
                };
                let hash = match parse_hash(raw.hash.get_ref()) {
                    Some(h) => Some(h),
                    None => {
                        cx.error(
                            Some(raw.hash.span()),
                            format!("{}.hash", el.path),
                            "must be \"sha256:\" followed by 64 hex digits (the sha-256 of the key)",
                        );
                        None
                    }
                };
                if let (Some(name), Some(role), Some(sha256)) = (name, role, hash) {
                    keys.push((
                        StaticKey { name, role, sha256 },
                        Some((el.path.clone(), raw.hash.span())),
                    ));
                }
            }
        }
    }
    if let Some(json) = env("ROLES_JSON") {
        for key in roles_json(cx, &json) {
            keys.push((key, None));
        }
    }
    // One key with two roles would make authorization depend on lookup order.
    let mut seen: HashMap<[u8; 32], String> = HashMap::new();
    for (key, origin) in &keys {
        if let Some(first) = seen.get(&key.sha256) {
            let msg = format!("the same key is already configured as \"{first}\"");
            match origin {
                Some((path, span)) => cx.error(Some(span.clone()), format!("{path}.hash"), msg),
                None => cx.env_error("ROLES_JSON", format!("{}: {msg}", key.name)),
            }
        } else {
            seen.insert(key.sha256, key.name.clone());
        }
    }
    AuthConfig {
        keys: keys.into_iter().map(|(k, _)| k).collect(),
    }
}

pub(crate) fn parse_hash(s: &str) -> Option<[u8; 32]> {
    let hex_part = s.trim().strip_prefix("sha256:")?;
    if hex_part.len() != 64 {
        return None;
    }
    let bytes = hex::decode(hex_part).ok()?;
    bytes.try_into().ok()
}

/// Keys from `ROLES_JSON`; hashed at once, and no message ever
/// quotes a key or a role value (a swapped pair would put the key there).
pub(crate) fn roles_json(cx: &mut Cx<'_>, json: &str) -> Vec<StaticKey> {
    let map: serde_json::Map<String, serde_json::Value> = match serde_json::from_str(json) {
        Ok(m) => m,
        Err(e) => {
            // serde_json's own message can quote the input, hence only its position.
            cx.env_error(
                "ROLES_JSON",
                format!(
                    "invalid json at line {} column {}: expected an object such as {{\"KEY\":\"admin\"}}",
                    e.line(),
                    e.column()
                ),
            );
            return Vec::new();
        }
    };
    let mut keys = Vec::new();
    for (i, (raw_key, role)) in map.iter().enumerate() {
        let name = format!("ROLES_JSON#{}", i + 1);
        if raw_key.is_empty() {
            cx.env_error("ROLES_JSON", format!("{name}: empty key"));
            continue;
        }
        let role = match role.as_str().map(str::parse::<Role>) {
            Some(Ok(role)) => role,
            _ => {
                cx.env_error(
                    "ROLES_JSON",
                    format!("{name}: invalid role (expected \"admin\" or \"analyst\")"),
                );
                continue;
            }
        };
        let sha256: [u8; 32] = Sha256::digest(raw_key.as_bytes()).into();
        keys.push(StaticKey { name, role, sha256 });
    }
    keys
}
