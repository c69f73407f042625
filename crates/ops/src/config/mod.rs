//! The configuration's validated types and its diagnostics engine.
//!
//! Parsing happens in two layers, the way Vector does it. Raw serde structs
//! with `deny_unknown_fields` mirror the file; they are compiled into the
//! validated types below in a single pass that collects every error and
//! warning instead of stopping at the first one, so `bulwark config check`
//! can show a user all of their mistakes at once, each with the file, line,
//! column and field at fault. Each section's raw struct and compile step
//! live next to the code it configures (`probe::config`, `slo::config`,
//! `alert::config`, `backups::config`, `secrets::config`, `drill::config`);
//! this module is what they share: the engine (`cx`: spans, the collected
//! diagnostics, value checks), durations, cron, [`Secret`] and the
//! validated types, which the whole crate reads. [`crate::settings`] runs
//! the pass.

mod cron;
pub(crate) mod cx;
mod duration;
pub(crate) mod raw;
pub(crate) mod snapshot;
mod types;

use std::fmt;
use std::path::PathBuf;

pub use cron::validate_cron;
pub use duration::{format_duration, parse_duration};
pub use snapshot::SnapshotSpec;
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
