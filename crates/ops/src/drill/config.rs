//! `[[drill]]`.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::time::Duration;

use crate::config::cx::*;
use crate::config::raw::Sp;
use crate::config::*;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DrillRaw {
    pub(crate) name: Sp<String>,
    pub(crate) backup: Sp<String>,
    pub(crate) schedule: Option<Sp<String>>,
    pub(crate) start: Option<Sp<String>>,
    pub(crate) health_url: Option<Sp<String>>,
    pub(crate) rto_target: Option<Sp<String>>,
    pub(crate) rpo_target: Option<Sp<String>>,
    pub(crate) timeout: Option<Sp<String>>,
    pub(crate) env: Option<BTreeMap<String, Sp<String>>>,
    pub(crate) pass_env: Option<Vec<Sp<String>>>,
    pub(crate) snapshot: Option<Sp<String>>,
    pub(crate) expect_files: Option<Vec<Sp<String>>>,
    pub(crate) notify: Option<Sp<String>>,
    /// SQL checks of a database drill.
    pub(crate) checks: Option<Sp<Vec<CheckRaw>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CheckRaw {
    pub(crate) sql: String,
    pub(crate) min: Option<f64>,
    pub(crate) max: Option<f64>,
    pub(crate) equals: Option<String>,
}

pub(crate) fn compile_drill(
    cx: &mut Cx<'_>,
    el: &Element,
    backups: &BTreeSet<String>,
) -> Option<DrillConfig> {
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
                format!("timeout {} is shorter than rto_target {}, so a slow recovery is cut off before it can miss the target", crate::config::format_duration(t), crate::config::format_duration(*rto)),
            );
        }
    }
    let snapshot = match &raw.snapshot {
        None => Some(super::select::SnapshotSpec::Latest),
        Some(v) => match super::select::SnapshotSpec::parse(v.get_ref(), false) {
            Ok(spec) => Some(spec),
            Err(e) => {
                cx.error(Some(v.span()), format!("{p}.snapshot"), e);
                None
            }
        },
    };
    let expect_files = compile_expect_files(cx, &raw.expect_files, p);
    let notify = cx.notify(&raw.notify, format!("{p}.notify"), Notify::Failure);
    let checks = compile_checks(cx, p, &raw.checks);
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
        snapshot: snapshot?,
        expect_files: expect_files?,
        notify: notify?,
        checks: checks?,
    })
}

/// `expect_files`: paths as the drill restores them, relative to the
/// backup's first path (where `start` runs) or absolute as in the snapshot;
/// never leaving the sandbox.
fn compile_expect_files(
    cx: &mut Cx<'_>,
    raw: &Option<Vec<Sp<String>>>,
    p: &str,
) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut ok = true;
    for (i, f) in raw.iter().flatten().enumerate() {
        let path = std::path::Path::new(f.get_ref());
        let problem = if f.get_ref().trim().is_empty() {
            Some("is empty")
        } else if path
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            Some("must not contain `..`: it would leave the restored tree")
        } else {
            None
        };
        match problem {
            Some(msg) => {
                cx.error(Some(f.span()), format!("{p}.expect_files[{i}]"), msg);
                ok = false;
            }
            None => out.push(f.get_ref().clone()),
        }
    }
    ok.then_some(out)
}

/// `checks = [{ sql, min | max | equals }]`.
fn compile_checks(
    cx: &mut Cx<'_>,
    p: &str,
    raw: &Option<Sp<Vec<CheckRaw>>>,
) -> Option<Vec<SqlCheck>> {
    let Some(raw) = raw else {
        return Some(Vec::new());
    };
    let mut ok = true;
    let mut out = Vec::new();
    for (i, c) in raw.get_ref().iter().enumerate() {
        let mut problem = |msg: &str| {
            cx.error(Some(raw.span()), format!("{p}.checks[{i}]"), msg);
            ok = false;
        };
        if c.sql.trim().is_empty() {
            problem("`sql` must not be empty");
        }
        if c.min.is_none() && c.max.is_none() && c.equals.is_none() {
            problem("needs `min`, `max` or `equals`");
        }
        if let (Some(min), Some(max)) = (c.min, c.max) {
            if min > max {
                problem("`min` is greater than `max`: no value can pass");
            }
        }
        out.push(SqlCheck {
            sql: c.sql.trim().to_string(),
            min: c.min,
            max: c.max,
            equals: c.equals.clone(),
        });
    }
    ok.then_some(out)
}
