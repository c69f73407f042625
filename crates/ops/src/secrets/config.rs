//! `[[secret]]` (with `ROTATE_*`).

use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::cx::*;
use crate::config::raw::Sp;
use crate::config::*;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SecretRaw {
    pub(crate) name: Sp<String>,
    pub(crate) length: Option<Sp<i64>>,
    pub(crate) alphabet: Option<Sp<String>>,
    pub(crate) max_age: Option<Sp<String>>,
    pub(crate) grace: Option<Sp<String>>,
    pub(crate) rotate: Option<bool>,
    pub(crate) schedule: Option<Sp<String>>,
    pub(crate) hook: Option<HookRaw>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HookRaw {
    pub(crate) command: Option<Sp<Vec<String>>>,
    pub(crate) url: Option<Sp<String>>,
    pub(crate) env: Option<BTreeMap<String, Sp<String>>>,
    pub(crate) pass_env: Option<Vec<Sp<String>>>,
}

pub(crate) fn compile_secret(cx: &mut Cx<'_>, el: &Element) -> Option<SecretConfig> {
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

/// A managed secret asked for by `ROTATE_<NAME>=1` alone: the documented
/// defaults (48 characters, letters and digits, rotated every 30 days with
/// a day's grace).
pub(crate) fn env_secret(name: &str) -> SecretConfig {
    SecretConfig {
        name: name.to_string(),
        length: DEFAULT_SECRET_LENGTH,
        alphabet: DEFAULT_ALPHABET.to_string(),
        max_age: DEFAULT_MAX_AGE,
        grace: DEFAULT_GRACE,
        rotate: true,
        schedule: None,
        hook: None,
    }
}
