//! Raw file + environment => validated [`Config`], collecting every diagnostic.
//!
//! The document is parsed once with `toml_edit`, which keeps the byte span of
//! every key and value. Each section element is then deserialized on its own,
//! so a serde error (unknown key, wrong type) costs only that element, and the
//! error's span is mapped back to a line and a field path by walking the
//! element. Semantic checks use `Spanned` raw fields for their positions.
//!
//! Names of elements that failed to deserialize are still read straight from
//! the document, so that an SLO pointing at a broken monitor is not also
//! reported as pointing at a missing one.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::{DeserializeOwned, IntoDeserializer};
use sha2::{Digest, Sha256};
use toml_edit::{ImDocument, Item, Key, Table, Value};

use super::raw::*;
use super::types::*;
use super::{
    lowercase_first, parse_duration, validate_cron, ConfigErrors, Diagnostic, Loaded, Severity,
};
use crate::identity::Role;

type Span = Range<usize>;
type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

const SECTIONS: &[&str] = &[
    "server",
    "auth",
    "monitor",
    "slo",
    "maintenance",
    "channel",
    "route",
    "backup",
    "secret",
    "drill",
];

/// The env vars that toggle rotation of the two managed secrets users had before Bulwark.
const ROTATE_ENV: &[(&str, &str)] = &[
    ("ROTATE_DASHBOARD_KEY", "DASHBOARD_KEY"),
    ("ROTATE_STRIPE_WEBHOOK", "STRIPE_WEBHOOK_SECRET"),
];

pub(super) fn compile(
    text: &str,
    file: Option<&Path>,
    env: Env<'_>,
) -> Result<Loaded, ConfigErrors> {
    let mut cx = Cx {
        text,
        file: file.map(Path::to_path_buf),
        diags: Vec::new(),
    };
    // Empty values count as unset: compose files and systemd units often
    // declare a variable with nothing in it.
    let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());

    let empty = ImDocument::parse(String::new()).ok();
    let parsed = ImDocument::parse(text.to_string());
    let doc = match &parsed {
        Ok(doc) => Some(doc),
        Err(e) => {
            cx.error(e.span(), "", lowercase_first(e.message()));
            // Keep going on an empty document so that environment mistakes are
            // reported in the same run.
            empty.as_ref()
        }
    };
    let root = match doc {
        Some(doc) => doc.as_table(),
        None => return Err(cx.into_errors()),
    };

    for (name, _) in root.iter() {
        if !SECTIONS.contains(&name) {
            let span = root.get_key_value(name).and_then(|(k, _)| k.span());
            cx.error(
                span,
                name,
                format!(
                    "unknown section `{name}`, expected one of {}",
                    quoted_list(SECTIONS)
                ),
            );
        }
    }

    let server = compile_server(&mut cx, root, &env);
    let auth = compile_auth(&mut cx, root, &env);

    let defaults = MonitorDefaults::from_env(&mut cx, &env);
    let monitor_els = cx.elements(root, "monitor");
    let mut monitor_names = cx.check_names(&monitor_els, "monitor", true);
    let mut monitors: Vec<MonitorConfig> = monitor_els
        .iter()
        .filter_map(|el| compile_monitor(&mut cx, el, &defaults))
        .collect();
    if let Some(url) = env("BASE_URL") {
        if monitor_names.contains("base_url") {
            // The file wins over the environment variable: nothing to add.
        } else if let Some(m) = base_url_monitor(&mut cx, &url, &defaults) {
            monitor_names.insert(m.name.clone());
            monitors.push(m);
        }
    }

    let slo_defaults = SloDefaults::from_env(&mut cx, &env);
    let slo_els = cx.elements(root, "slo");
    cx.check_names(&slo_els, "slo", true);
    let slos = slo_els
        .iter()
        .filter_map(|el| compile_slo(&mut cx, el, &slo_defaults, &monitor_names))
        .collect();

    let maint_els = cx.elements(root, "maintenance");
    cx.check_names(&maint_els, "maintenance window", false);
    let maintenance = maint_els
        .iter()
        .filter_map(|el| compile_maintenance(&mut cx, el, &monitor_names))
        .collect();

    let channel_els = cx.elements(root, "channel");
    let mut channel_names = cx.check_names(&channel_els, "channel", true);
    let mut channels: Vec<ChannelConfig> = channel_els
        .iter()
        .filter_map(|el| compile_channel(&mut cx, el))
        .collect();
    // (channel name, where it came from) for the "never routed" warning.
    let mut channel_origin: Vec<(String, Origin)> = channel_els
        .iter()
        .filter_map(|el| {
            let (name, span) = el.name.clone()?;
            Some((name, Origin::File(el.path.clone(), span)))
        })
        .collect();
    for (channel, var) in env_channels(&mut cx, &env, &channel_names) {
        channel_names.insert(channel.name.clone());
        channel_origin.push((channel.name.clone(), Origin::Env(var)));
        channels.push(channel);
    }

    let route_els = cx.elements(root, "route");
    let routes: Vec<RouteConfig> = route_els
        .iter()
        .filter_map(|el| compile_route(&mut cx, el, &channel_names, &monitor_names))
        .collect();
    if !route_els.is_empty() {
        let routed: BTreeSet<String> = route_els
            .iter()
            .filter_map(|el| str_at(&el.item, "channel").map(|(s, _)| s))
            .collect();
        for (name, origin) in &channel_origin {
            if !routed.contains(name) {
                let msg = format!(
                    "channel \"{name}\" is not used by any route, so it never receives alerts"
                );
                match origin {
                    Origin::File(path, span) => {
                        cx.warn(Some(span.clone()), format!("{path}.name"), msg)
                    }
                    Origin::Env(var) => cx.warn(None, format!("env {var}"), msg),
                }
            }
        }
    }

    let backup_els = cx.elements(root, "backup");
    let backup_names = cx.check_names(&backup_els, "backup", true);
    let backups = backup_els
        .iter()
        .filter_map(|el| compile_backup(&mut cx, el))
        .collect();

    let secret_els = cx.elements(root, "secret");
    cx.check_names(&secret_els, "secret", false);
    let mut secrets: Vec<SecretConfig> = secret_els
        .iter()
        .filter_map(|el| compile_secret(&mut cx, el))
        .collect();
    for (var, secret_name) in ROTATE_ENV {
        if let Some(value) = env(var) {
            match parse_env_bool(&value) {
                Some(rotate) => {
                    for s in secrets.iter_mut().filter(|s| s.name == *secret_name) {
                        s.rotate = rotate;
                    }
                }
                None => cx.error(
                    None,
                    format!("env {var}"),
                    format!("invalid value {value:?}: expected 0, 1, true or false"),
                ),
            }
        }
    }

    let drill_els = cx.elements(root, "drill");
    cx.check_names(&drill_els, "drill", true);
    let drills = drill_els
        .iter()
        .filter_map(|el| compile_drill(&mut cx, el, &backup_names))
        .collect();

    let config = Config {
        server,
        auth,
        monitors,
        slos,
        maintenance,
        channels,
        routes,
        backups,
        secrets,
        drills,
        source: file.map(Path::to_path_buf),
    };
    cx.finish(config)
}

enum Origin {
    File(String, Span),
    Env(&'static str),
}

/// One element of a section (`monitor[1]`), detached from the document.
struct Element {
    item: Item,
    path: String,
    span: Option<Span>,
    /// Its `name`, read directly from the document so it is known even when
    /// the element itself fails to deserialize.
    name: Option<(String, Span)>,
}

struct Cx<'a> {
    text: &'a str,
    file: Option<PathBuf>,
    diags: Vec<Diagnostic>,
}

impl Cx<'_> {
    fn push(&mut self, severity: Severity, span: Option<Span>, field: String, message: String) {
        let (line, column) = match span {
            Some(span) => {
                let (l, c) = self.position(span.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        // Environment problems have no place in the file.
        let file = if field.starts_with("env ") {
            None
        } else {
            self.file.clone()
        };
        self.diags.push(Diagnostic {
            severity,
            file,
            line,
            column,
            field,
            message,
        });
    }

    fn error(&mut self, span: Option<Span>, field: impl Into<String>, message: impl Into<String>) {
        self.push(Severity::Error, span, field.into(), message.into());
    }

    fn warn(&mut self, span: Option<Span>, field: impl Into<String>, message: impl Into<String>) {
        self.push(Severity::Warning, span, field.into(), message.into());
    }

    fn env_error(&mut self, var: &str, message: impl Into<String>) {
        self.push(Severity::Error, None, format!("env {var}"), message.into());
    }

    /// 1-based line and column (in characters) of a byte offset.
    fn position(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    fn into_errors(mut self) -> ConfigErrors {
        sort(&mut self.diags);
        ConfigErrors {
            diagnostics: self.diags,
        }
    }

    fn finish(mut self, config: Config) -> Result<Loaded, ConfigErrors> {
        sort(&mut self.diags);
        if self.diags.iter().any(|d| d.severity == Severity::Error) {
            Err(ConfigErrors {
                diagnostics: self.diags,
            })
        } else {
            Ok(Loaded {
                config,
                warnings: self.diags,
            })
        }
    }

    /// The elements of an array-of-tables section (`[[monitor]]` or
    /// `monitor = [{...}]`).
    fn elements(&mut self, root: &Table, section: &str) -> Vec<Element> {
        let Some((key, item)) = root.get_key_value(section) else {
            return Vec::new();
        };
        self.elements_of(key, item, section)
    }

    fn elements_of(&mut self, key: &Key, item: &Item, base: &str) -> Vec<Element> {
        let mut out = Vec::new();
        match item {
            Item::ArrayOfTables(tables) => {
                for (i, table) in tables.iter().enumerate() {
                    out.push(Element::new(
                        Item::Table(table.clone()),
                        format!("{base}[{i}]"),
                        table.span(),
                    ));
                }
            }
            Item::Value(Value::Array(values)) => {
                for (i, value) in values.iter().enumerate() {
                    if value.is_inline_table() {
                        out.push(Element::new(
                            Item::Value(value.clone()),
                            format!("{base}[{i}]"),
                            value.span(),
                        ));
                    } else {
                        self.error(value.span(), format!("{base}[{i}]"), "expected a table");
                    }
                }
            }
            _ => self.error(
                key.span(),
                base,
                format!("expected an array of tables: write [[{base}]] for each entry"),
            ),
        }
        out
    }

    /// Deserializes one element into its raw struct, reporting the first serde
    /// error (unknown key, wrong type, missing field) with its position.
    fn de_item<T: DeserializeOwned>(
        &mut self,
        item: &Item,
        path: &str,
        fallback: Option<Span>,
    ) -> Option<T> {
        let value = item.clone().into_value().ok()?;
        match T::deserialize(value.into_deserializer()) {
            Ok(raw) => Some(raw),
            Err(e) => {
                let span = e.span().or(fallback);
                let sub = span
                    .as_ref()
                    .map(|s| locate(item, s.start))
                    .unwrap_or_default();
                let message = without_values(&lowercase_first(e.message()));
                self.error(span, format!("{path}{sub}"), message);
                None
            }
        }
    }

    fn de<T: DeserializeOwned>(&mut self, el: &Element) -> Option<T> {
        self.de_item(&el.item, &el.path, el.span.clone())
    }

    /// Checks name syntax and uniqueness; returns every name seen, so that
    /// references to an element with other errors still resolve.
    fn check_names(
        &mut self,
        els: &[Element],
        what: &str,
        strict_syntax: bool,
    ) -> BTreeSet<String> {
        let mut seen: HashMap<String, Span> = HashMap::new();
        let mut names = BTreeSet::new();
        for el in els {
            let Some((name, span)) = &el.name else {
                continue;
            };
            if strict_syntax {
                if let Err(msg) = check_name(name) {
                    self.error(Some(span.clone()), format!("{}.name", el.path), msg);
                }
            }
            if let Some(first) = seen.get(name) {
                let (line, _) = self.position(first.start);
                self.error(
                    Some(span.clone()),
                    format!("{}.name", el.path),
                    format!("duplicate {what} name \"{name}\" (first defined at line {line})"),
                );
            } else {
                seen.insert(name.clone(), span.clone());
            }
            names.insert(name.clone());
        }
        names
    }

    fn duration(
        &mut self,
        value: &Option<Sp<String>>,
        field: String,
        default: Duration,
        min: Duration,
    ) -> Option<Duration> {
        match value {
            None => Some(default),
            Some(v) => self.duration_at(v, field, min),
        }
    }

    fn duration_at(&mut self, v: &Sp<String>, field: String, min: Duration) -> Option<Duration> {
        match parse_duration(v.get_ref()) {
            Ok(d) if d >= min && !d.is_zero() => Some(d),
            Ok(_) => {
                self.error(
                    Some(v.span()),
                    field,
                    format!(
                        "must be at least {}",
                        super::format_duration(min.max(Duration::from_millis(1)))
                    ),
                );
                None
            }
            Err(msg) => {
                self.error(Some(v.span()), field, msg);
                None
            }
        }
    }

    fn opt_duration(
        &mut self,
        value: &Option<Sp<String>>,
        field: String,
    ) -> Result<Option<Duration>, ()> {
        match value {
            None => Ok(None),
            Some(v) => self
                .duration_at(v, field, Duration::ZERO)
                .map(Some)
                .ok_or(()),
        }
    }

    fn int(
        &mut self,
        value: &Option<Sp<i64>>,
        field: String,
        default: u32,
        min: i64,
        max: i64,
    ) -> Option<u32> {
        match value {
            None => Some(default),
            Some(v) => self.int_at(v, field, min, max),
        }
    }

    fn int_at(&mut self, v: &Sp<i64>, field: String, min: i64, max: i64) -> Option<u32> {
        let n = *v.get_ref();
        if n < min || n > max {
            self.error(
                Some(v.span()),
                field,
                format!("must be between {min} and {max}, got {n}"),
            );
            return None;
        }
        u32::try_from(n).ok()
    }

    fn cron(&mut self, value: &Option<Sp<String>>, field: String) -> Result<Option<String>, ()> {
        match value {
            None => Ok(None),
            Some(v) => match validate_cron(v.get_ref()) {
                Ok(()) => Ok(Some(v.get_ref().trim().to_string())),
                Err(msg) => {
                    self.error(Some(v.span()), field, msg);
                    Err(())
                }
            },
        }
    }

    fn non_empty(&mut self, v: &Sp<String>, field: String) -> Option<String> {
        if v.get_ref().trim().is_empty() {
            self.error(Some(v.span()), field, "must not be empty");
            None
        } else {
            Some(v.get_ref().clone())
        }
    }

    fn http_url(&mut self, v: &Sp<String>, field: String) -> Option<String> {
        match check_http_url(v.get_ref()) {
            Ok(_) => Some(v.get_ref().clone()),
            Err(msg) => {
                self.error(Some(v.span()), field, msg);
                None
            }
        }
    }

    /// `env = { NAME = "value" }` and `pass_env = ["NAME"]` of a command
    /// Bulwark runs. Values are never echoed (they may be credentials).
    fn command_env(
        &mut self,
        env: &Option<BTreeMap<String, Sp<String>>>,
        pass_env: &Option<Vec<Sp<String>>>,
        path: &str,
    ) -> Option<CommandEnv> {
        let mut ok = true;
        let mut out = CommandEnv::default();
        for (name, value) in env.iter().flatten() {
            if !is_env_name(name) {
                // A key has no span of its own once deserialized: point at its value.
                self.error(
                    Some(value.span()),
                    format!("{path}.env.{name}"),
                    "invalid variable name (use letters, digits and `_`, not starting with a digit)",
                );
                ok = false;
            } else if value.get_ref().contains('\0') {
                self.error(Some(value.span()), format!("{path}.env.{name}"), "contains a NUL byte");
                ok = false;
            } else {
                out.set
                    .push((name.clone(), Secret::new(value.get_ref().clone())));
            }
        }
        for (i, name) in pass_env.iter().flatten().enumerate() {
            let field = format!("{path}.pass_env[{i}]");
            if !is_env_name(name.get_ref()) {
                self.error(
                    Some(name.span()),
                    field,
                    format!("invalid variable name \"{}\"", name.get_ref().escape_debug()),
                );
                ok = false;
            } else if NEVER_PASSED.contains(&name.get_ref().as_str()) {
                self.error(
                    Some(name.span()),
                    field,
                    format!(
                        "{} is never passed to commands (it unlocks backups or the API)",
                        name.get_ref()
                    ),
                );
                ok = false;
            } else {
                out.pass.push(name.get_ref().clone());
            }
        }
        ok.then_some(out)
    }

    /// Fields present in the file that do not apply in this context.
    fn reject(&mut self, path: &str, context: &str, fields: &[(&str, Option<Span>)]) -> bool {
        let mut ok = true;
        for (name, span) in fields {
            if let Some(span) = span {
                self.error(
                    Some(span.clone()),
                    format!("{path}.{name}"),
                    format!("`{name}` does not apply to {context}"),
                );
                ok = false;
            }
        }
        ok
    }
}

/// serde's type and value errors quote the offending value ("invalid type:
/// integer `1234567890`, expected a string"), which may be a password typed
/// into the wrong place. The diagnostic already points at line and column,
/// so the value itself is dropped: "invalid type: integer, expected a string".
fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub(super) fn without_values(message: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: "] {
        let Some(rest) = message.strip_prefix(prefix) else {
            continue;
        };
        let Some((unexpected, expected)) = rest.split_once(", expected ") else {
            return format!("{prefix}(value not shown)");
        };
        // `integer `5``, `floating point `1.5``, `string "abc"`, `sequence`:
        // the kind is everything before the quoted value.
        let cut = [" `", " \""]
            .iter()
            .filter_map(|q| unexpected.find(q))
            .min()
            .unwrap_or(unexpected.len());
        return format!("{prefix}{}, expected {expected}", &unexpected[..cut]);
    }
    message.to_string()
}

impl Element {
    fn new(item: Item, path: String, span: Option<Span>) -> Element {
        let name = str_at(&item, "name");
        Element {
            item,
            path,
            span,
            name,
        }
    }
}

/// A string value of a direct child of a table item, with its span.
fn str_at(item: &Item, key: &str) -> Option<(String, Span)> {
    let value = match item {
        Item::Table(t) => t.get(key)?.as_value()?,
        Item::Value(Value::InlineTable(t)) => t.get(key)?,
        _ => return None,
    };
    Some((value.as_str()?.to_string(), value.span().unwrap_or(0..0)))
}

fn item_span(item: &Item) -> Option<Span> {
    match item {
        Item::Value(v) => v.span(),
        Item::Table(t) => t.span(),
        Item::ArrayOfTables(a) => a.span(),
        Item::None => None,
    }
}

fn covers(span: Option<Span>, at: usize) -> bool {
    span.is_some_and(|s| s.contains(&at) || (s.is_empty() && s.start == at))
}

/// The field path (`.headers.Accept`, `.alert[1].burn_rate`) below `item` of
/// whatever sits at byte offset `at`.
fn locate(item: &Item, at: usize) -> String {
    let mut out = String::new();
    walk(item, at, &mut out);
    out
}

fn walk(item: &Item, at: usize, out: &mut String) -> bool {
    let pairs: Vec<(&Key, &Item)> = match item {
        Item::Table(t) => t
            .iter()
            .filter_map(|(name, _)| t.get_key_value(name))
            .collect(),
        Item::Value(Value::InlineTable(t)) => t
            .iter()
            .filter_map(|(name, _)| t.get_key_value(name))
            .collect(),
        Item::Value(Value::Array(a)) => {
            for (i, v) in a.iter().enumerate() {
                let mut sub = String::new();
                if walk(&Item::Value(v.clone()), at, &mut sub) || covers(v.span(), at) {
                    out.push_str(&format!("[{i}]{sub}"));
                    return true;
                }
            }
            return false;
        }
        Item::ArrayOfTables(a) => {
            for (i, t) in a.iter().enumerate() {
                let mut sub = String::new();
                if walk(&Item::Table(t.clone()), at, &mut sub) || covers(t.span(), at) {
                    out.push_str(&format!("[{i}]{sub}"));
                    return true;
                }
            }
            return false;
        }
        _ => return false,
    };
    for (key, child) in pairs {
        let mut sub = String::new();
        if walk(child, at, &mut sub) || covers(key.span(), at) || covers(item_span(child), at) {
            let name = key.get();
            if !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                out.push('.');
                out.push_str(name);
            } else {
                out.push_str(&format!(".{name:?}"));
            }
            out.push_str(&sub);
            return true;
        }
    }
    false
}

/// Diagnostics in file order; environment ones (no line) last.
fn sort(diags: &mut [Diagnostic]) {
    diags.sort_by_key(|d| (d.line.is_none(), d.line, d.column));
}

fn quoted_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("name must not be empty".to_string());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(format!(
            "invalid name \"{name}\": {c:?} is not allowed (use letters, digits, `_`, `.` and `-`)"
        ));
    }
    Ok(())
}

fn parse_env_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" => Some(true),
        "0" | "false" => Some(false),
        _ => None,
    }
}

/// Splits an http(s) URL into (scheme, authority, path+query).
fn check_http_url(url: &str) -> Result<(&str, &str, &str), String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| "invalid url: expected http:// or https://".to_string())?;
    if scheme != "http" && scheme != "https" {
        return Err(format!(
            "invalid url: scheme `{scheme}` is not http or https"
        ));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("invalid url: contains whitespace".to_string());
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host.is_empty() || host.starts_with(':') {
        return Err("invalid url: missing host".to_string());
    }
    let port = match host.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((addr, after)) if !addr.is_empty() => match after {
                "" => None,
                _ => Some(after.strip_prefix(':').ok_or("invalid url: bad host")?),
            },
            _ => return Err("invalid url: bad ipv6 host".to_string()),
        },
        None => host.split_once(':').map(|(_, p)| p),
    };
    if let Some(port) = port {
        if !matches!(port.parse::<u16>(), Ok(p) if p > 0) {
            return Err(format!("invalid url: bad port {port:?}"));
        }
    }
    Ok((scheme, authority, path))
}

/// `host:port` of tcp:// and tls:// monitors; `[v6]:port` for IPv6.
fn host_port(rest: &str) -> Result<(String, u16), String> {
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains(['/', '?', '#']) {
        return Err("expected host:port with no path".to_string());
    }
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or("unclosed `[` in host")?;
        (host, after.strip_prefix(':').ok_or("expected host:port")?)
    } else {
        rest.rsplit_once(':').ok_or("expected host:port")?
    };
    if host.is_empty() {
        return Err("missing host".to_string());
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok((host.to_string(), p)),
        _ => Err(format!("invalid port {port:?}")),
    }
}

fn parse_listen(s: &str) -> Result<SocketAddr, String> {
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
const MAX_CONNECTIONS_LIMIT: i64 = 1_000_000;

fn compile_server(
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

fn compile_auth(cx: &mut Cx<'_>, root: &Table, env: &dyn Fn(&str) -> Option<String>) -> AuthConfig {
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

fn parse_hash(s: &str) -> Option<[u8; 32]> {
    let hex_part = s.trim().strip_prefix("sha256:")?;
    if hex_part.len() != 64 {
        return None;
    }
    let bytes = hex::decode(hex_part).ok()?;
    bytes.try_into().ok()
}

/// Keys from `ROLES_JSON`; hashed at once, and no message ever
/// quotes a key or a role value (a swapped pair would put the key there).
fn roles_json(cx: &mut Cx<'_>, json: &str) -> Vec<StaticKey> {
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

struct MonitorDefaults {
    interval: Duration,
    strikes: u32,
}

impl MonitorDefaults {
    fn from_env(cx: &mut Cx<'_>, env: &dyn Fn(&str) -> Option<String>) -> Self {
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

const HTTP_METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

fn compile_monitor(
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
                    super::format_duration(t),
                    super::format_duration(i)
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
    })
}

fn probe_kind(
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

fn cert_days(cx: &mut Cx<'_>, raw: &MonitorRaw, p: &str) -> Result<Option<u32>, ()> {
    match &raw.cert_min_days {
        None => Ok(None),
        Some(v) => cx
            .int_at(v, format!("{p}.cert_min_days"), 1, 3650)
            .map(Some)
            .ok_or(()),
    }
}

fn toml_to_json(v: &toml::Value) -> Option<serde_json::Value> {
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
fn expect_status(v: &toml::Value) -> Result<Vec<std::ops::RangeInclusive<u16>>, String> {
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
fn base_url_monitor(
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
    })
}

struct SloDefaults {
    target: f64,
    window: Duration,
}

impl SloDefaults {
    fn from_env(cx: &mut Cx<'_>, env: &dyn Fn(&str) -> Option<String>) -> Self {
        let mut d = SloDefaults {
            target: DEFAULT_SLO_TARGET,
            window: DEFAULT_SLO_WINDOW,
        };
        if let Some(v) = env("SLO_TARGET") {
            match v.trim().parse::<f64>() {
                Ok(t) if t > 0.0 && t < 1.0 => d.target = t,
                _ => cx.env_error(
                    "SLO_TARGET",
                    format!("invalid value {v:?}: expected a number between 0 and 1 such as 0.995"),
                ),
            }
        }
        if let Some(v) = env("SLO_WINDOW_DAYS") {
            match v.trim().parse::<u64>() {
                Ok(n) if (1..=3660).contains(&n) => d.window = Duration::from_secs(n * 86_400),
                _ => cx.env_error(
                    "SLO_WINDOW_DAYS",
                    format!("invalid value {v:?}: expected a whole number of days, 1 to 3660"),
                ),
            }
        }
        d
    }
}

fn compile_slo(
    cx: &mut Cx<'_>,
    el: &Element,
    defaults: &SloDefaults,
    monitors: &BTreeSet<String>,
) -> Option<SloConfig> {
    let raw: SloRaw = cx.de(el)?;
    let p = &el.path;
    let mut ok = true;
    if !monitors.contains(raw.monitor.get_ref()) {
        let known = if monitors.is_empty() {
            "no monitor is configured".to_string()
        } else if monitors.len() <= 10 {
            format!(
                "known: {}",
                monitors.iter().cloned().collect::<Vec<_>>().join(", ")
            )
        } else {
            // Listing thousands of names would bury the message.
            format!(
                "{} monitors are configured, none by that name",
                monitors.len()
            )
        };
        cx.error(
            Some(raw.monitor.span()),
            format!("{p}.monitor"),
            format!("unknown monitor \"{}\" ({known})", raw.monitor.get_ref()),
        );
        ok = false;
    }
    let target = match &raw.target {
        None => Some(defaults.target),
        Some(v) if *v.get_ref() > 0.0 && *v.get_ref() < 1.0 => Some(*v.get_ref()),
        Some(v) => {
            cx.error(
                Some(v.span()),
                format!("{p}.target"),
                format!(
                    "must be between 0 and 1 exclusive (0.995 means 99.5%), got {}",
                    v.get_ref()
                ),
            );
            None
        }
    };
    let window = cx.duration(
        &raw.window,
        format!("{p}.window"),
        defaults.window,
        Duration::from_secs(3600),
    );
    let calendar = match &raw.calendar {
        None => None,
        Some(c) if c.get_ref() == "month" => {
            if let Some(w) = &raw.window {
                cx.warn(
                    Some(w.span()),
                    format!("{p}.window"),
                    "ignored because `calendar` is set",
                );
            }
            Some(Calendar::Month)
        }
        Some(c) => {
            cx.error(
                Some(c.span()),
                format!("{p}.calendar"),
                format!("unknown calendar \"{}\" (expected \"month\")", c.get_ref()),
            );
            ok = false;
            None
        }
    };
    let alerts = match &raw.alert {
        None => BurnRateRule::defaults(),
        Some(rules) => {
            let mut out = Vec::new();
            for (i, r) in rules.iter().enumerate() {
                let f = format!("{p}.alert[{i}]");
                let long = cx.duration_at(
                    &r.long_window,
                    format!("{f}.long_window"),
                    Duration::from_secs(60),
                );
                let short = cx.duration_at(
                    &r.short_window,
                    format!("{f}.short_window"),
                    Duration::from_secs(60),
                );
                if let (Some(l), Some(s)) = (long, short) {
                    if s >= l {
                        cx.error(
                            Some(r.short_window.span()),
                            format!("{f}.short_window"),
                            "must be shorter than `long_window`",
                        );
                        ok = false;
                    }
                }
                let rate = *r.burn_rate.get_ref();
                if !(rate > 0.0 && rate.is_finite()) {
                    cx.error(
                        Some(r.burn_rate.span()),
                        format!("{f}.burn_rate"),
                        format!("must be greater than 0, got {rate}"),
                    );
                    ok = false;
                } else if let Some(t) = target {
                    // Above 1/(1-target) the whole window's requests could fail
                    // without reaching the rate: the alert is dead code.
                    if rate > 1.0 / (1.0 - t) {
                        cx.warn(
                            Some(r.burn_rate.span()),
                            format!("{f}.burn_rate"),
                            format!("burn rate {rate} can never be reached with target {t}"),
                        );
                    }
                }
                let severity = match &r.severity {
                    None => Some(AlertSeverity::Critical),
                    Some(s) => match s.get_ref().parse::<AlertSeverity>() {
                        Ok(sev) => Some(sev),
                        Err(msg) => {
                            cx.error(Some(s.span()), format!("{f}.severity"), msg);
                            None
                        }
                    },
                };
                match (long, short, severity) {
                    (Some(long_window), Some(short_window), Some(severity)) => {
                        out.push(BurnRateRule {
                            long_window,
                            short_window,
                            burn_rate: rate,
                            severity,
                        })
                    }
                    _ => ok = false,
                }
            }
            out
        }
    };
    if !ok {
        return None;
    }
    Some(SloConfig {
        name: raw.name.get_ref().clone(),
        monitor: raw.monitor.get_ref().clone(),
        target: target?,
        window: window?,
        calendar,
        strict: raw.strict.unwrap_or(true),
        alerts,
    })
}

fn check_monitor_refs(
    cx: &mut Cx<'_>,
    refs: &Option<Vec<Sp<String>>>,
    field: &str,
    monitors: &BTreeSet<String>,
) -> Option<Vec<String>> {
    let mut ok = true;
    let mut out = Vec::new();
    for (i, m) in refs.iter().flatten().enumerate() {
        if monitors.contains(m.get_ref()) {
            out.push(m.get_ref().clone());
        } else {
            cx.error(
                Some(m.span()),
                format!("{field}[{i}]"),
                format!("unknown monitor \"{}\"", m.get_ref()),
            );
            ok = false;
        }
    }
    Some(out).filter(|_| ok)
}

fn rfc3339(
    cx: &mut Cx<'_>,
    v: &Sp<toml::Value>,
    field: String,
) -> Option<chrono::DateTime<chrono::Utc>> {
    let text = match v.get_ref() {
        toml::Value::String(s) => s.clone(),
        toml::Value::Datetime(d) => d.to_string(),
        _ => {
            cx.error(
                Some(v.span()),
                field,
                "expected an rfc 3339 date-time such as \"2026-01-31T22:00:00Z\"",
            );
            return None;
        }
    };
    match chrono::DateTime::parse_from_rfc3339(text.trim()) {
        Ok(t) => Some(t.with_timezone(&chrono::Utc)),
        Err(e) => {
            cx.error(Some(v.span()), field, format!("invalid date-time {text:?}: {e} (expected rfc 3339 with an offset, such as \"2026-01-31T22:00:00Z\")"));
            None
        }
    }
}

fn compile_maintenance(
    cx: &mut Cx<'_>,
    el: &Element,
    monitors: &BTreeSet<String>,
) -> Option<MaintenanceConfig> {
    let raw: MaintenanceRaw = cx.de(el)?;
    let p = &el.path;
    let name = cx.non_empty(&raw.name, format!("{p}.name"));
    let refs = check_monitor_refs(cx, &raw.monitors, &format!("{p}.monitors"), monitors);
    let start = rfc3339(cx, &raw.start, format!("{p}.start"));
    let end = rfc3339(cx, &raw.end, format!("{p}.end"));
    if let (Some(s), Some(e)) = (start, end) {
        if e <= s {
            cx.error(
                Some(raw.end.span()),
                format!("{p}.end"),
                "must be after `start`",
            );
            return None;
        }
    }
    Some(MaintenanceConfig {
        name: name?,
        monitors: refs?,
        start: start?,
        end: end?,
    })
}

const CHANNEL_TYPES: &[&str] = &["slack", "telegram", "webhook", "email", "pagerduty"];

fn compile_channel(cx: &mut Cx<'_>, el: &Element) -> Option<ChannelConfig> {
    let raw: ChannelRaw = cx.de(el)?;
    let p = &el.path;
    let ty = raw.kind.get_ref().as_str();
    if !CHANNEL_TYPES.contains(&ty) {
        cx.error(
            Some(raw.kind.span()),
            format!("{p}.type"),
            format!(
                "unknown channel type \"{ty}\" (expected one of {})",
                CHANNEL_TYPES.join(", ")
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
        ("url", s(&raw.url)),
        ("headers", raw.headers.as_ref().and(headers_span)),
        ("bot_token", s(&raw.bot_token)),
        ("chat_id", raw.chat_id.as_ref().map(|v| v.span())),
        ("api_base", s(&raw.api_base)),
        ("smtp_host", s(&raw.smtp_host)),
        ("smtp_port", raw.smtp_port.as_ref().map(|v| v.span())),
        ("username", s(&raw.username)),
        ("password", s(&raw.password)),
        ("from", s(&raw.from)),
        ("to", raw.to.as_ref().map(|v| v.span())),
        ("starttls", raw.starttls.as_ref().map(|v| v.span())),
        ("routing_key", s(&raw.routing_key)),
    ];
    let allowed: &[&str] = match ty {
        "slack" => &["url"],
        "telegram" => &["bot_token", "chat_id", "api_base"],
        "webhook" => &["url", "headers"],
        "email" => &[
            "smtp_host",
            "smtp_port",
            "username",
            "password",
            "from",
            "to",
            "starttls",
        ],
        _ => &["routing_key", "api_base"],
    };
    let foreign: Vec<(&str, Option<Span>)> = all
        .into_iter()
        .filter(|(n, _)| !allowed.contains(n))
        .collect();
    let mut ok = cx.reject(p, &format!("a {ty} channel"), &foreign);
    let mut required = |cx: &mut Cx<'_>, v: &Option<Sp<String>>, name: &str| -> Option<String> {
        match v {
            Some(v) => {
                let r = cx.non_empty(v, format!("{p}.{name}"));
                ok &= r.is_some();
                r
            }
            None => {
                cx.error(
                    el.span.clone(),
                    p.clone(),
                    format!("a {ty} channel needs `{name}`"),
                );
                ok = false;
                None
            }
        }
    };
    let kind = match ty {
        "slack" | "webhook" => {
            let url = required(cx, &raw.url, "url");
            let url = match (url, &raw.url) {
                (Some(_), Some(v)) => cx.http_url(v, format!("{p}.url")),
                _ => None,
            };
            if ty == "slack" {
                url.map(|url| ChannelKind::Slack {
                    url: Secret::new(url),
                })
            } else {
                let headers = raw
                    .headers
                    .iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), Secret::new(v.get_ref().clone())))
                    .collect();
                url.map(|url| ChannelKind::Webhook {
                    url: Secret::new(url),
                    headers,
                })
            }
        }
        "telegram" => {
            let token = required(cx, &raw.bot_token, "bot_token");
            let chat_id = match &raw.chat_id {
                None => {
                    cx.error(
                        el.span.clone(),
                        p.clone(),
                        "a telegram channel needs `chat_id`",
                    );
                    None
                }
                Some(v) => match v.get_ref() {
                    toml::Value::Integer(n) => Some(n.to_string()),
                    toml::Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
                    _ => {
                        cx.error(
                            Some(v.span()),
                            format!("{p}.chat_id"),
                            "expected a chat id (a number or an @channel name)",
                        );
                        None
                    }
                },
            };
            let api_base = api_base(cx, &raw.api_base, p, DEFAULT_TELEGRAM_API);
            match (token, chat_id, api_base) {
                (Some(t), Some(chat_id), Some(api_base)) => Some(ChannelKind::Telegram {
                    bot_token: Secret::new(t),
                    chat_id,
                    api_base,
                }),
                _ => None,
            }
        }
        "email" => {
            let host = required(cx, &raw.smtp_host, "smtp_host");
            let from = required(cx, &raw.from, "from");
            if let (Some(f), Some(v)) = (&from, &raw.from) {
                if !f.contains('@') {
                    cx.error(
                        Some(v.span()),
                        format!("{p}.from"),
                        format!("invalid email address \"{f}\""),
                    );
                    ok = false;
                }
            }
            let to = match &raw.to {
                None => {
                    cx.error(el.span.clone(), p.clone(), "an email channel needs `to`");
                    None
                }
                Some(v) if v.get_ref().is_empty() => {
                    cx.error(
                        Some(v.span()),
                        format!("{p}.to"),
                        "must list at least one address",
                    );
                    None
                }
                Some(v) => {
                    if let Some((i, bad)) = v
                        .get_ref()
                        .iter()
                        .enumerate()
                        .find(|(_, a)| !a.contains('@'))
                    {
                        cx.error(
                            Some(v.span()),
                            format!("{p}.to[{i}]"),
                            format!("invalid email address \"{bad}\""),
                        );
                        None
                    } else {
                        Some(v.get_ref().clone())
                    }
                }
            };
            let port = match &raw.smtp_port {
                None => Some(587),
                Some(v) => cx
                    .int_at(v, format!("{p}.smtp_port"), 1, 65535)
                    .map(|n| n as u16),
            };
            if raw.password.is_some() && raw.username.is_none() {
                cx.error(
                    raw.password.as_ref().map(|v| v.span()),
                    format!("{p}.password"),
                    "`password` needs `username`",
                );
                ok = false;
            }
            match (host, from, to, port) {
                (Some(smtp_host), Some(from), Some(to), Some(smtp_port)) => {
                    Some(ChannelKind::Email {
                        smtp_host,
                        smtp_port,
                        username: raw.username.as_ref().map(|u| u.get_ref().clone()),
                        password: raw
                            .password
                            .as_ref()
                            .map(|v| Secret::new(v.get_ref().clone())),
                        from,
                        to,
                        starttls: raw.starttls.as_ref().is_none_or(|b| *b.get_ref()),
                    })
                }
                _ => None,
            }
        }
        _ => {
            let key = required(cx, &raw.routing_key, "routing_key");
            let api_base = api_base(cx, &raw.api_base, p, DEFAULT_PAGERDUTY_API);
            match (key, api_base) {
                (Some(k), Some(api_base)) => Some(ChannelKind::PagerDuty {
                    routing_key: Secret::new(k),
                    api_base,
                }),
                _ => None,
            }
        }
    };
    if !ok {
        return None;
    }
    Some(ChannelConfig {
        name: raw.name.get_ref().clone(),
        kind: kind?,
    })
}

fn api_base(cx: &mut Cx<'_>, v: &Option<Sp<String>>, p: &str, default: &str) -> Option<String> {
    match v {
        None => Some(default.to_string()),
        Some(v) => cx
            .http_url(v, format!("{p}.api_base"))
            .map(|u| u.trim_end_matches('/').to_string()),
    }
}

/// Channels from the environment variables, unless the file already has one of
/// that name (the file is the more specific statement).
fn env_channels(
    cx: &mut Cx<'_>,
    env: &dyn Fn(&str) -> Option<String>,
    existing: &BTreeSet<String>,
) -> Vec<(ChannelConfig, &'static str)> {
    let mut out = Vec::new();
    if let Some(url) = env("SLACK_WEBHOOK_URL") {
        if existing.contains("slack") {
            cx.warn(
                None,
                "env SLACK_WEBHOOK_URL",
                "ignored: a channel named \"slack\" is configured",
            );
        } else if let Err(msg) = check_http_url(url.trim()) {
            // Never echo the URL: it is the credential.
            cx.env_error("SLACK_WEBHOOK_URL", msg);
        } else {
            out.push((
                ChannelConfig {
                    name: "slack".to_string(),
                    kind: ChannelKind::Slack {
                        url: Secret::new(url.trim().to_string()),
                    },
                },
                "SLACK_WEBHOOK_URL",
            ));
        }
    }
    match (env("TELEGRAM_BOT_TOKEN"), env("TELEGRAM_CHAT_ID")) {
        (Some(_), Some(_)) if existing.contains("telegram") => {
            cx.warn(
                None,
                "env TELEGRAM_BOT_TOKEN",
                "ignored: a channel named \"telegram\" is configured",
            );
        }
        (Some(token), Some(chat)) => out.push((
            ChannelConfig {
                name: "telegram".to_string(),
                kind: ChannelKind::Telegram {
                    bot_token: Secret::new(token.trim().to_string()),
                    chat_id: chat.trim().to_string(),
                    api_base: DEFAULT_TELEGRAM_API.to_string(),
                },
            },
            "TELEGRAM_BOT_TOKEN",
        )),
        (Some(_), None) => cx.warn(
            None,
            "env TELEGRAM_CHAT_ID",
            "not set, so TELEGRAM_BOT_TOKEN is ignored",
        ),
        (None, Some(_)) => cx.warn(
            None,
            "env TELEGRAM_BOT_TOKEN",
            "not set, so TELEGRAM_CHAT_ID is ignored",
        ),
        (None, None) => {}
    }
    out
}

const GROUP_BY: &[&str] = &["monitor", "slo", "severity", "tags", "..."];

fn compile_route(
    cx: &mut Cx<'_>,
    el: &Element,
    channels: &BTreeSet<String>,
    monitors: &BTreeSet<String>,
) -> Option<RouteConfig> {
    let raw: RouteRaw = cx.de(el)?;
    let p = &el.path;
    let mut ok = true;
    if !channels.contains(raw.channel.get_ref()) {
        cx.error(
            Some(raw.channel.span()),
            format!("{p}.channel"),
            format!("unknown channel \"{}\"", raw.channel.get_ref()),
        );
        ok = false;
    }
    let refs = check_monitor_refs(cx, &raw.monitors, &format!("{p}.monitors"), monitors);
    let mut severity = Vec::new();
    for (i, s) in raw.severity.iter().flatten().enumerate() {
        match s.get_ref().parse::<AlertSeverity>() {
            Ok(sev) => severity.push(sev),
            Err(msg) => {
                cx.error(Some(s.span()), format!("{p}.severity[{i}]"), msg);
                ok = false;
            }
        }
    }
    let mut group_by = Vec::new();
    for (i, g) in raw.group_by.iter().flatten().enumerate() {
        if GROUP_BY.contains(&g.get_ref().as_str()) {
            group_by.push(g.get_ref().clone());
        } else {
            cx.error(
                Some(g.span()),
                format!("{p}.group_by[{i}]"),
                format!(
                    "unknown grouping \"{}\" (expected one of {})",
                    g.get_ref(),
                    GROUP_BY.join(", ")
                ),
            );
            ok = false;
        }
    }
    let group_wait = cx.duration(
        &raw.group_wait,
        format!("{p}.group_wait"),
        DEFAULT_GROUP_WAIT,
        Duration::ZERO,
    );
    let group_interval = cx.duration(
        &raw.group_interval,
        format!("{p}.group_interval"),
        DEFAULT_GROUP_INTERVAL,
        Duration::ZERO,
    );
    let repeat_interval = cx.duration(
        &raw.repeat_interval,
        format!("{p}.repeat_interval"),
        DEFAULT_REPEAT_INTERVAL,
        Duration::from_secs(60),
    );
    if !ok {
        return None;
    }
    Some(RouteConfig {
        channel: raw.channel.get_ref().clone(),
        monitors: refs?,
        tags: raw.tags.unwrap_or_default(),
        severity,
        group_by,
        group_wait: group_wait?,
        group_interval: group_interval?,
        repeat_interval: repeat_interval?,
        send_resolved: raw.send_resolved.unwrap_or(true),
    })
}

fn compile_backup(cx: &mut Cx<'_>, el: &Element) -> Option<BackupConfig> {
    let raw: BackupRaw = cx.de(el)?;
    let p = &el.path;
    let mut ok = true;
    // The backend opener's own parser, so what passes here opens the same.
    let location = match bulwark_repo::Location::parse(raw.repo.get_ref()) {
        Ok(l) if !l.is_supported() => {
            cx.warn(
                Some(raw.repo.span()),
                format!("{p}.repo"),
                format!(
                    "this build has no {} backend yet: every run of this backup will fail",
                    l.scheme()
                ),
            );
            Some(l)
        }
        Ok(l) => Some(l),
        Err(e) => {
            let msg = match e {
                bulwark_repo::Error::InvalidArgument(m) => m,
                other => other.to_string(),
            };
            cx.error(Some(raw.repo.span()), format!("{p}.repo"), msg);
            None
        }
    };
    let password = match (&raw.password_file, &raw.password_env) {
        (Some(_), Some(v)) => {
            cx.error(
                Some(v.span()),
                format!("{p}.password_env"),
                "set either `password_file` or `password_env`, not both",
            );
            ok = false;
            None
        }
        (Some(f), None) => cx
            .non_empty(f, format!("{p}.password_file"))
            .map(|f| PasswordSource::File(PathBuf::from(f))),
        (None, Some(v)) => {
            let name = v.get_ref();
            let valid = name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                cx.error(
                    Some(v.span()),
                    format!("{p}.password_env"),
                    format!("invalid environment variable name \"{name}\""),
                );
                ok = false;
            }
            Some(PasswordSource::Env(name.clone()))
        }
        (None, None) => None,
    };
    let git = raw.git.unwrap_or(false);
    let paths: Vec<PathBuf> = match &raw.paths {
        Some(v) => {
            if v.get_ref().is_empty() && !git {
                cx.error(
                    Some(v.span()),
                    format!("{p}.paths"),
                    "must list at least one path (or set git = true)",
                );
                ok = false;
            }
            if let Some(i) = v.get_ref().iter().position(|s| s.trim().is_empty()) {
                cx.error(
                    Some(v.span()),
                    format!("{p}.paths[{i}]"),
                    "must not be empty",
                );
                ok = false;
            }
            v.get_ref().iter().map(PathBuf::from).collect()
        }
        None if git => Vec::new(),
        None => {
            cx.error(el.span.clone(), p.clone(), "missing `paths` (or set git = true to back up the repository at the working directory)");
            ok = false;
            Vec::new()
        }
    };
    let exclude = raw.exclude.clone().unwrap_or_default();
    if exclude.iter().any(|e| e.trim().is_empty()) {
        cx.error(
            el.span.clone(),
            format!("{p}.exclude"),
            "patterns must not be empty",
        );
        ok = false;
    }
    let schedule = cx.cron(&raw.schedule, format!("{p}.schedule"));
    if let Some(tz) = &raw.timezone {
        let name = tz.get_ref();
        let plausible = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_+-/".contains(c))
            && !name.starts_with('/')
            && !name.ends_with('/');
        if !plausible {
            cx.error(Some(tz.span()), format!("{p}.timezone"), format!("invalid time zone \"{name}\" (expected an IANA name such as \"Europe/Berlin\")"));
            ok = false;
        }
    }
    let keep = match &raw.keep {
        None => Some(KeepPolicy::default()),
        Some(k) => {
            let f = |n: &str| format!("{p}.keep.{n}");
            let count =
                |cx: &mut Cx<'_>, v: &Option<Sp<i64>>, n: &str| -> Result<Option<u32>, ()> {
                    match v {
                        None => Ok(None),
                        Some(v) => cx.int_at(v, f(n), 1, 1_000_000).map(Some).ok_or(()),
                    }
                };
            let last = count(cx, &k.last, "last");
            let hourly = count(cx, &k.hourly, "hourly");
            let daily = count(cx, &k.daily, "daily");
            let weekly = count(cx, &k.weekly, "weekly");
            let monthly = count(cx, &k.monthly, "monthly");
            let yearly = count(cx, &k.yearly, "yearly");
            let within = cx.opt_duration(&k.within, f("within"));
            (|| {
                Some(KeepPolicy {
                    last: last.ok()?,
                    hourly: hourly.ok()?,
                    daily: daily.ok()?,
                    weekly: weekly.ok()?,
                    monthly: monthly.ok()?,
                    yearly: yearly.ok()?,
                    within: within.ok()?,
                    tags: k.tags.clone().unwrap_or_default(),
                })
            })()
        }
    };
    let verify = match &raw.verify {
        None => Ok(None),
        Some(v) => {
            let schedule = cx.cron(&v.schedule, format!("{p}.verify.schedule"));
            let subset = match &v.read_data_subset {
                None => Ok(None),
                Some(s) => match parse_percent(s.get_ref()) {
                    Ok(pct) => Ok(Some(pct)),
                    Err(msg) => {
                        cx.error(Some(s.span()), format!("{p}.verify.read_data_subset"), msg);
                        Err(())
                    }
                },
            };
            let sample = cx.int(
                &v.sample_files,
                format!("{p}.verify.sample_files"),
                DEFAULT_SAMPLE_FILES,
                0,
                100_000,
            );
            match (schedule, subset, sample) {
                (Ok(schedule), Ok(read_data_subset), Some(sample_files)) => {
                    Ok(Some(VerifyConfig {
                        schedule,
                        read_data_subset,
                        sample_files,
                    }))
                }
                _ => Err(()),
            }
        }
    };
    if !ok {
        return None;
    }
    Some(BackupConfig {
        name: raw.name.get_ref().clone(),
        repo: raw.repo.get_ref().trim().to_string(),
        location: location?,
        password,
        paths,
        exclude,
        tags: raw.tags.clone().unwrap_or_default(),
        git,
        schedule: schedule.ok()?,
        timezone: raw.timezone.as_ref().map(|t| t.get_ref().clone()),
        keep: keep?,
        verify: verify.ok()?,
    })
}

/// `"5%"` => 5.0; restic's `--read-data-subset` percentage form.
fn parse_percent(s: &str) -> Result<f64, String> {
    let bad = || {
        format!("invalid percentage {s:?}: expected more than 0% and at most 100%, such as \"5%\"")
    };
    let number = s.trim().strip_suffix('%').ok_or_else(bad)?;
    match number.trim().parse::<f64>() {
        Ok(p) if p > 0.0 && p <= 100.0 => Ok(p),
        _ => Err(bad()),
    }
}

fn compile_secret(cx: &mut Cx<'_>, el: &Element) -> Option<SecretConfig> {
    let raw: SecretRaw = cx.de(el)?;
    let p = &el.path;
    let mut ok = true;
    let name = raw.name.get_ref();
    // The name becomes a file name under secrets/runtime/.
    let file_safe = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !file_safe {
        cx.error(
            Some(raw.name.span()),
            format!("{p}.name"),
            format!("invalid secret name \"{name}\" (use A-Z, 0-9 and `_`)"),
        );
        ok = false;
    } else if !name
        .chars()
        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    {
        cx.warn(
            Some(raw.name.span()),
            format!("{p}.name"),
            format!(
                "secret name \"{name}\" is not an environment-variable style name (A-Z, 0-9, `_`)"
            ),
        );
    }
    let length = match &raw.length {
        None => Some(DEFAULT_SECRET_LENGTH),
        Some(v) => cx
            .int_at(v, format!("{p}.length"), 48, 64)
            .map(|n| n as usize),
    };
    let alphabet = match &raw.alphabet {
        None => Some(DEFAULT_ALPHABET.to_string()),
        Some(v) => {
            // Duplicates would bias the generator towards the repeated characters.
            let mut distinct = String::new();
            for c in v.get_ref().chars() {
                if !distinct.contains(c) {
                    distinct.push(c);
                }
            }
            if let Some(c) = distinct.chars().find(|c| !c.is_ascii_graphic()) {
                cx.error(
                    Some(v.span()),
                    format!("{p}.alphabet"),
                    format!("{c:?} is not allowed: use printable ascii without spaces"),
                );
                None
            } else if distinct.chars().count() < 16 {
                cx.error(
                    Some(v.span()),
                    format!("{p}.alphabet"),
                    format!(
                        "needs at least 16 distinct characters, has {}",
                        distinct.chars().count()
                    ),
                );
                None
            } else {
                Some(distinct)
            }
        }
    };
    let max_age = cx.duration(
        &raw.max_age,
        format!("{p}.max_age"),
        DEFAULT_MAX_AGE,
        Duration::from_secs(60),
    );
    let grace = cx.duration(
        &raw.grace,
        format!("{p}.grace"),
        DEFAULT_GRACE,
        Duration::ZERO,
    );
    if let (Some(m), Some(g)) = (max_age, grace) {
        if g >= m {
            // Otherwise the old value would still be valid when the next rotation starts.
            cx.error(
                raw.grace.as_ref().map(|g| g.span()).or(el.span.clone()),
                format!("{p}.grace"),
                "must be shorter than `max_age`",
            );
            ok = false;
        }
    }
    let schedule = cx.cron(&raw.schedule, format!("{p}.schedule"));
    let hook = match &raw.hook {
        None => Some(None),
        Some(h) => {
            let command = match &h.command {
                None => Some(Vec::new()),
                Some(c) if c.get_ref().first().is_none_or(|s| s.trim().is_empty()) => {
                    cx.error(
                        Some(c.span()),
                        format!("{p}.hook.command"),
                        "must start with a program to run",
                    );
                    None
                }
                Some(c) => Some(c.get_ref().clone()),
            };
            let url = match &h.url {
                None => Some(None),
                Some(u) => cx
                    .http_url(u, format!("{p}.hook.url"))
                    .map(|u| Some(Secret::new(u))),
            };
            let env = cx.command_env(&h.env, &h.pass_env, &format!("{p}.hook"));
            if h.command.is_none() && h.url.is_none() {
                cx.error(
                    el.span.clone(),
                    format!("{p}.hook"),
                    "needs `command` or `url`",
                );
                ok = false;
            }
            match (command, url, env) {
                (Some(command), Some(url), Some(env)) => {
                    Some(Some(SecretHook { command, url, env }))
                }
                _ => None,
            }
        }
    };
    if !ok {
        return None;
    }
    Some(SecretConfig {
        name: name.clone(),
        length: length?,
        alphabet: alphabet?,
        max_age: max_age?,
        grace: grace?,
        rotate: raw.rotate.unwrap_or(true),
        schedule: schedule.ok()?,
        hook: hook?,
    })
}

fn compile_drill(cx: &mut Cx<'_>, el: &Element, backups: &BTreeSet<String>) -> Option<DrillConfig> {
    let raw: DrillRaw = cx.de(el)?;
    let p = &el.path;
    let mut ok = true;
    if !backups.contains(raw.backup.get_ref()) {
        cx.error(
            Some(raw.backup.span()),
            format!("{p}.backup"),
            format!("unknown backup \"{}\"", raw.backup.get_ref()),
        );
        ok = false;
    }
    let schedule = cx.cron(&raw.schedule, format!("{p}.schedule"));
    let start = match &raw.start {
        None => Some(None),
        Some(s) => cx.non_empty(s, format!("{p}.start")).map(Some),
    };
    let health_url = match &raw.health_url {
        None => Some(None),
        Some(u) => cx.http_url(u, format!("{p}.health_url")).map(Some),
    };
    if raw.health_url.is_some() && raw.start.is_none() {
        cx.error(
            raw.health_url.as_ref().map(|u| u.span()),
            format!("{p}.health_url"),
            "needs `start`: nothing would be serving it",
        );
        ok = false;
    }
    let env = cx.command_env(&raw.env, &raw.pass_env, p);
    if (raw.env.is_some() || raw.pass_env.is_some()) && raw.start.is_none() {
        cx.warn(
            el.span.clone(),
            format!("{p}.env"),
            "`env` and `pass_env` only apply to `start`, which is not set",
        );
    }
    let rto = cx.opt_duration(&raw.rto_target, format!("{p}.rto_target"));
    let rpo = cx.opt_duration(&raw.rpo_target, format!("{p}.rpo_target"));
    let timeout = cx.duration(
        &raw.timeout,
        format!("{p}.timeout"),
        DEFAULT_DRILL_TIMEOUT,
        Duration::from_secs(1),
    );
    if let (Ok(Some(rto)), Some(t)) = (&rto, timeout) {
        if t < *rto {
            cx.warn(
                raw.timeout.as_ref().map(|v| v.span()).or(el.span.clone()),
                format!("{p}.timeout"),
                format!("timeout {} is shorter than rto_target {}, so a slow recovery is cut off before it can miss the target", super::format_duration(t), super::format_duration(*rto)),
            );
        }
    }
    if !ok {
        return None;
    }
    Some(DrillConfig {
        name: raw.name.get_ref().clone(),
        backup: raw.backup.get_ref().clone(),
        schedule: schedule.ok()?,
        start: start?,
        health_url: health_url?,
        rto_target: rto.ok()?,
        rpo_target: rpo.ok()?,
        timeout: timeout?,
        env: env?,
    })
}
