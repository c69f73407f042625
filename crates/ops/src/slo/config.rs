//! `[[slo]]` (with `SLO_TARGET`, `SLO_WINDOW_DAYS`) and `[[maintenance]]`.

use serde::Deserialize;
use std::collections::BTreeSet;
use std::time::Duration;

use crate::config::cx::*;
use crate::config::raw::Sp;
use crate::config::*;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SloRaw {
    pub(crate) name: Sp<String>,
    pub(crate) monitor: Sp<String>,
    pub(crate) target: Option<Sp<f64>>,
    pub(crate) window: Option<Sp<String>>,
    pub(crate) calendar: Option<Sp<String>>,
    pub(crate) strict: Option<bool>,
    pub(crate) alert: Option<Vec<BurnRateRaw>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BurnRateRaw {
    pub(crate) long_window: Sp<String>,
    pub(crate) short_window: Sp<String>,
    pub(crate) burn_rate: Sp<f64>,
    pub(crate) severity: Option<Sp<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MaintenanceRaw {
    pub(crate) name: Sp<String>,
    pub(crate) monitors: Option<Vec<Sp<String>>>,
    /// String or TOML datetime; both must be RFC 3339 with an offset.
    pub(crate) start: Sp<toml::Value>,
    pub(crate) end: Sp<toml::Value>,
}

pub(crate) struct SloDefaults {
    target: f64,
    window: Duration,
}

impl SloDefaults {
    pub(crate) fn from_env(cx: &mut Cx<'_>, env: &dyn Fn(&str) -> Option<String>) -> Self {
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

pub(crate) fn compile_slo(
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

pub(crate) fn rfc3339(
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

pub(crate) fn compile_maintenance(
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

/// The SLO on the monitor made from `BASE_URL`, from `SLO_TARGET` and
/// `SLO_WINDOW_DAYS` (or their defaults), named like its monitor.
pub(crate) fn base_url_slo(defaults: &SloDefaults) -> SloConfig {
    SloConfig {
        name: "base_url".to_string(),
        monitor: "base_url".to_string(),
        target: defaults.target,
        window: defaults.window,
        calendar: None,
        strict: true,
        alerts: BurnRateRule::defaults(),
    }
}
