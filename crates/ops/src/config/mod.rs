//! The `bulwark.toml` configuration: parsing, validation and environment overrides.
//!
//! Parsing happens in two layers, the way Vector does it. Raw serde structs with
//! `deny_unknown_fields` mirror the file; they are compiled into the validated
//! types below in a single pass that collects every error and warning instead of
//! stopping at the first one, so `bulwark config check` can show a user all of
//! their mistakes at once, each with the file, line, column and field at fault.
//!
//! ```
//! use bulwark_ops::config;
//!
//! let text = r#"
//! [[monitor]]
//! name = "api"
//! url = "http://127.0.0.1:9000/health"
//! interval = "30s"
//! "#;
//! let loaded = config::parse(text, None, &|_| None).unwrap();
//! assert_eq!(loaded.config.monitors[0].interval.as_secs(), 30);
//! ```

mod alerting;
mod backup;
mod compile;
mod cron;
mod cx;
mod drill;
mod duration;
mod monitor;
mod raw;
mod secret;
mod server;
mod slo;
mod types;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};

pub use cron::validate_cron;
pub use duration::{format_duration, parse_duration};
pub use types::*;

/// How bad a [`Diagnostic`] is: errors make the config unusable, warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem found in a config, located as precisely as the source allows.
///
/// Problems coming from environment variables have no file or line; their
/// `field` is `env NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: Option<PathBuf>,
    /// 1-based.
    pub line: Option<usize>,
    /// 1-based, counted in characters.
    pub column: Option<usize>,
    /// Where in the config, e.g. `monitor[1].interval`; empty for syntax errors.
    pub field: String,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut location = Vec::new();
        if let Some(file) = &self.file {
            location.push(file.display().to_string());
        }
        if let Some(line) = self.line {
            location.push(line.to_string());
            if let Some(column) = self.column {
                location.push(column.to_string());
            }
        }
        if !location.is_empty() {
            write!(f, "{}: ", location.join(":"))?;
        }
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        if self.severity == Severity::Warning {
            f.write_str("warning: ")?;
        }
        f.write_str(&self.message)
    }
}

/// A config that compiled, with whatever it was warned about.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<Diagnostic>,
}

/// A config that did not compile: every error, and the warnings found alongside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    pub diagnostics: Vec<Diagnostic>,
}

impl ConfigErrors {
    /// Only the diagnostics that made the config unusable.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Loads the config at `path`.
///
/// When `path` does not exist and `required` is false, the embedded default is
/// returned (server defaults plus environment overrides, `source: None`), so
/// `bulwark serve` runs on a fresh machine.
///
/// `env` looks up environment variables; production passes
/// `&|k| std::env::var(k).ok()`, tests a closure over a map.
///
/// # Errors
///
/// Every problem found in the file or in the environment overrides, or a
/// single diagnostic when the file cannot be read.
pub fn load(
    path: &Path,
    required: bool,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, ConfigErrors> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, Some(path), env),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => parse("", None, env),
        Err(e) => Err(ConfigErrors {
            diagnostics: vec![Diagnostic {
                severity: Severity::Error,
                file: Some(path.to_path_buf()),
                line: None,
                column: None,
                field: String::new(),
                message: format!("cannot read config: {}", lowercase_first(&e.to_string())),
            }],
        }),
    }
}

/// Parses and validates a config held in memory; `file` names it in diagnostics
/// and becomes [`Config::source`].
///
/// # Errors
///
/// Every error found (syntax, unknown keys, invalid values, broken references,
/// invalid environment overrides), together with the warnings, in source order.
pub fn parse(
    text: &str,
    file: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, ConfigErrors> {
    compile::compile(text, file, env)
}

/// Turns a library's message into house style: lowercase start, one line, no
/// trailing period.
pub(crate) fn lowercase_first(s: &str) -> String {
    let one_line = s
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    let trimmed = one_line.trim_end_matches('.');
    let mut chars = trimmed.chars();
    match chars.next() {
        // Acronyms such as "TOML" stay as they are.
        Some(c) if !chars.next().is_some_and(|n| n.is_uppercase()) => c
            .to_lowercase()
            .chain(trimmed[c.len_utf8()..].chars())
            .collect(),
        _ => trimmed.to_string(),
    }
}
