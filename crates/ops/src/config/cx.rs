//! The diagnostics engine: each element's span, the collected diagnostics with
//! file, line, column and field, and the value checks every section shares.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use serde::de::{DeserializeOwned, IntoDeserializer};
use toml_edit::{Item, Key, Table, Value};

use super::raw::*;
use super::types::*;
use super::{
    lowercase_first, parse_duration, validate_cron, ConfigErrors, Diagnostic, Loaded, Severity,
};

pub(crate) type Span = Range<usize>;
pub(crate) type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

pub(crate) enum Origin {
    File(String, Span),
    Env(&'static str),
}

/// One element of a section (`monitor[1]`), detached from the document.
pub(crate) struct Element {
    pub(crate) item: Item,
    pub(crate) path: String,
    pub(crate) span: Option<Span>,
    /// Its `name`, read directly from the document so it is known even when
    /// the element itself fails to deserialize.
    pub(crate) name: Option<(String, Span)>,
}

pub(crate) struct Cx<'a> {
    pub(crate) text: &'a str,
    pub(crate) file: Option<PathBuf>,
    pub(crate) diags: Vec<Diagnostic>,
}

impl Cx<'_> {
    pub(crate) fn push(
        &mut self,
        severity: Severity,
        span: Option<Span>,
        field: String,
        message: String,
    ) {
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

    pub(crate) fn error(
        &mut self,
        span: Option<Span>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.push(Severity::Error, span, field.into(), message.into());
    }

    pub(crate) fn warn(
        &mut self,
        span: Option<Span>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.push(Severity::Warning, span, field.into(), message.into());
    }

    pub(crate) fn env_error(&mut self, var: &str, message: impl Into<String>) {
        self.push(Severity::Error, None, format!("env {var}"), message.into());
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub(crate) fn position(&self, offset: usize) -> (usize, usize) {
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

    pub(crate) fn into_errors(mut self) -> ConfigErrors {
        sort(&mut self.diags);
        ConfigErrors {
            diagnostics: self.diags,
        }
    }

    pub(crate) fn finish(mut self, config: Config) -> Result<Loaded, ConfigErrors> {
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
    pub(crate) fn elements(&mut self, root: &Table, section: &str) -> Vec<Element> {
        let Some((key, item)) = root.get_key_value(section) else {
            return Vec::new();
        };
        self.elements_of(key, item, section)
    }

    pub(crate) fn elements_of(&mut self, key: &Key, item: &Item, base: &str) -> Vec<Element> {
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
    pub(crate) fn de_item<T: DeserializeOwned>(
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

    pub(crate) fn de<T: DeserializeOwned>(&mut self, el: &Element) -> Option<T> {
        self.de_item(&el.item, &el.path, el.span.clone())
    }

    /// Checks name syntax and uniqueness; returns every name seen, so that
    /// references to an element with other errors still resolve.
    pub(crate) fn check_names(
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

    pub(crate) fn duration(
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

    pub(crate) fn duration_at(
        &mut self,
        v: &Sp<String>,
        field: String,
        min: Duration,
    ) -> Option<Duration> {
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

    pub(crate) fn opt_duration(
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

    pub(crate) fn int(
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

    pub(crate) fn int_at(&mut self, v: &Sp<i64>, field: String, min: i64, max: i64) -> Option<u32> {
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

    pub(crate) fn cron(
        &mut self,
        value: &Option<Sp<String>>,
        field: String,
    ) -> Result<Option<String>, ()> {
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

    /// `notify = "failure" | "always"`; `default` when absent.
    pub(crate) fn notify(
        &mut self,
        v: &Option<Sp<String>>,
        field: String,
        default: super::Notify,
    ) -> Option<super::Notify> {
        match v.as_ref().map(|v| (v, v.get_ref().as_str())) {
            None => Some(default),
            Some((_, "failure")) => Some(super::Notify::Failure),
            Some((_, "always")) => Some(super::Notify::Always),
            Some((v, other)) => {
                self.error(
                    Some(v.span()),
                    field,
                    format!(
                        "{other:?} is not a notify setting: expected \"failure\" or \"always\""
                    ),
                );
                None
            }
        }
    }

    pub(crate) fn non_empty(&mut self, v: &Sp<String>, field: String) -> Option<String> {
        if v.get_ref().trim().is_empty() {
            self.error(Some(v.span()), field, "must not be empty");
            None
        } else {
            Some(v.get_ref().clone())
        }
    }

    pub(crate) fn http_url(&mut self, v: &Sp<String>, field: String) -> Option<String> {
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
    pub(crate) fn command_env(
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
                self.error(
                    Some(value.span()),
                    format!("{path}.env.{name}"),
                    "contains a NUL byte",
                );
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
                    format!(
                        "invalid variable name \"{}\"",
                        name.get_ref().escape_debug()
                    ),
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
    pub(crate) fn reject(
        &mut self,
        path: &str,
        context: &str,
        fields: &[(&str, Option<Span>)],
    ) -> bool {
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
pub(crate) fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub(crate) fn without_values(message: &str) -> String {
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
    pub(crate) fn new(item: Item, path: String, span: Option<Span>) -> Element {
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
pub(crate) fn str_at(item: &Item, key: &str) -> Option<(String, Span)> {
    let value = match item {
        Item::Table(t) => t.get(key)?.as_value()?,
        Item::Value(Value::InlineTable(t)) => t.get(key)?,
        _ => return None,
    };
    Some((value.as_str()?.to_string(), value.span().unwrap_or(0..0)))
}

pub(crate) fn item_span(item: &Item) -> Option<Span> {
    match item {
        Item::Value(v) => v.span(),
        Item::Table(t) => t.span(),
        Item::ArrayOfTables(a) => a.span(),
        Item::None => None,
    }
}

pub(crate) fn covers(span: Option<Span>, at: usize) -> bool {
    span.is_some_and(|s| s.contains(&at) || (s.is_empty() && s.start == at))
}

/// The field path (`.headers.Accept`, `.alert[1].burn_rate`) below `item` of
/// whatever sits at byte offset `at`.
pub(crate) fn locate(item: &Item, at: usize) -> String {
    let mut out = String::new();
    walk(item, at, &mut out);
    out
}

pub(crate) fn walk(item: &Item, at: usize, out: &mut String) -> bool {
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
pub(crate) fn sort(diags: &mut [Diagnostic]) {
    diags.sort_by_key(|d| (d.line.is_none(), d.line, d.column));
}

pub(crate) fn quoted_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn check_name(name: &str) -> Result<(), String> {
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

pub(crate) fn parse_env_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" => Some(true),
        "0" | "false" => Some(false),
        _ => None,
    }
}

/// Splits an http(s) URL into (scheme, authority, path+query).
pub(crate) fn check_http_url(url: &str) -> Result<(&str, &str, &str), String> {
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
pub(crate) fn host_port(rest: &str) -> Result<(String, u16), String> {
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

pub(crate) fn check_monitor_refs(
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
