//! `[[backup]]`.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::config::cx::*;
use crate::config::raw::Sp;
use crate::config::*;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BackupRaw {
    pub(crate) name: Sp<String>,
    pub(crate) repo: Sp<String>,
    pub(crate) password_file: Option<Sp<String>>,
    pub(crate) password_env: Option<Sp<String>>,
    pub(crate) paths: Option<Sp<Vec<String>>>,
    pub(crate) exclude: Option<Vec<String>>,
    pub(crate) tags: Option<Vec<String>>,
    pub(crate) git: Option<bool>,
    pub(crate) schedule: Option<Sp<String>>,
    pub(crate) timezone: Option<Sp<String>>,
    pub(crate) keep: Option<KeepRaw>,
    pub(crate) verify: Option<VerifyRaw>,
    /// More repositories that get a copy of every new snapshot.
    pub(crate) repos: Option<Sp<Vec<String>>>,
    /// restic's `-o key=value` backend options.
    pub(crate) options: Option<BTreeMap<String, Sp<String>>>,
    /// The clouds' standard credential variables, by name.
    pub(crate) credentials: Option<BTreeMap<String, CredentialRaw>>,
    pub(crate) notify: Option<Sp<String>>,
    /// `files` (default), `postgres` or `command`.
    pub(crate) kind: Option<Sp<String>>,
    /// `kind = "postgres"`: the whole URL is a secret.
    pub(crate) url: Option<Sp<String>>,
    pub(crate) databases: Option<Sp<Vec<String>>>,
    pub(crate) pg_dump_options: Option<Sp<Vec<String>>>,
    pub(crate) pg_dump: Option<Sp<String>>,
    /// `kind = "command"`: argv of a dump command (no shell).
    pub(crate) command: Option<Sp<Vec<String>>>,
    /// `kind = "command"`: what the command sees beyond `PATH`, `HOME`, `LANG`.
    pub(crate) env: Option<BTreeMap<String, Sp<String>>>,
    pub(crate) pass_env: Option<Vec<Sp<String>>>,
    /// Storage prices and threshold over `[cost]`'s.
    pub(crate) cost: Option<crate::cost::config::BackupCostRaw>,
}

/// A credential: the value itself, or where to read it at run time. No
/// spans inside: serde's untagged enums cannot hold `Spanned` values, so
/// errors point at the entry through the document (`entry_span`).
#[derive(Debug, Deserialize)]
#[serde(
    untagged,
    expecting = "a string, { env = \"VARIABLE\" } or { file = \"PATH\" }"
)]
pub(crate) enum CredentialRaw {
    Value(String),
    From(CredentialFromRaw),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CredentialFromRaw {
    pub(crate) env: Option<String>,
    pub(crate) file: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeepRaw {
    pub(crate) last: Option<Sp<i64>>,
    pub(crate) hourly: Option<Sp<i64>>,
    pub(crate) daily: Option<Sp<i64>>,
    pub(crate) weekly: Option<Sp<i64>>,
    pub(crate) monthly: Option<Sp<i64>>,
    pub(crate) yearly: Option<Sp<i64>>,
    pub(crate) within: Option<Sp<String>>,
    pub(crate) tags: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VerifyRaw {
    pub(crate) schedule: Option<Sp<String>>,
    pub(crate) read_data_subset: Option<Sp<String>>,
    pub(crate) sample_files: Option<Sp<i64>>,
    pub(crate) notify: Option<Sp<String>>,
}

pub(crate) fn compile_backup(cx: &mut Cx<'_>, el: &Element) -> Option<BackupConfig> {
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
    let mut copies = Vec::new();
    if let Some(repos) = &raw.repos {
        for repo in repos.get_ref() {
            let repo = repo.trim();
            let problem = match bulwark_repo::Location::parse(repo) {
                Err(bulwark_repo::Error::InvalidArgument(m)) => Some(m),
                Err(e) => Some(e.to_string()),
                Ok(_) if repo == raw.repo.get_ref().trim() || copies.iter().any(|c| c == repo) => {
                    Some(format!("repository {repo} is listed twice"))
                }
                Ok(_) => None,
            };
            match problem {
                Some(m) => {
                    cx.error(Some(repos.span()), format!("{p}.repos"), m);
                    ok = false;
                }
                None => copies.push(repo.to_string()),
            }
        }
    }
    let mut options = bulwark_repo::BackendOptions::default();
    for (key, value) in raw.options.iter().flatten() {
        if let Err(e) = options.set(key, value.get_ref()) {
            let msg = match e {
                bulwark_repo::Error::InvalidArgument(m) => m,
                other => other.to_string(),
            };
            cx.error(Some(value.span()), format!("{p}.options.{key}"), msg);
            ok = false;
        }
    }
    let credentials = compile_credentials(cx, el, &raw);
    let git = raw.git.unwrap_or(false);
    let kind = compile_kind(cx, el, &raw);
    let streamed = matches!(
        kind,
        Some(BackupKind::Postgres(_) | BackupKind::Command { .. })
    );
    let paths: Vec<PathBuf> = match &raw.paths {
        // A dump is one stream: `paths` would be ignored, so refuse it.
        Some(v) if streamed => {
            cx.error(
                Some(v.span()),
                format!("{p}.paths"),
                "not used by this kind of backup (it snapshots a dump's output)",
            );
            ok = false;
            Vec::new()
        }
        None if kind.is_none() || streamed => Vec::new(),
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
    let notify = cx.notify(&raw.notify, format!("{p}.notify"), Notify::Failure);
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
            let verify_notify = cx.notify(
                &v.notify,
                format!("{p}.verify.notify"),
                notify.unwrap_or_default(),
            );
            match (schedule, subset, sample, verify_notify) {
                (Ok(schedule), Ok(read_data_subset), Some(sample_files), Some(notify)) => {
                    Ok(Some(VerifyConfig {
                        schedule,
                        read_data_subset,
                        sample_files,
                        notify,
                    }))
                }
                _ => Err(()),
            }
        }
    };
    let cost = crate::cost::config::compile_backup_cost(cx, raw.cost.as_ref(), p);
    if !ok {
        return None;
    }
    Some(BackupConfig {
        name: raw.name.get_ref().clone(),
        repo: raw.repo.get_ref().trim().to_string(),
        location: location?,
        copies,
        options,
        password,
        credentials: credentials?,
        paths,
        exclude,
        tags: raw.tags.clone().unwrap_or_default(),
        git,
        schedule: schedule.ok()?,
        timezone: raw.timezone.as_ref().map(|t| t.get_ref().clone()),
        keep: keep?,
        verify: verify.ok()?,
        notify: notify?,
        kind: kind?,
        cost,
    })
}

/// `credentials = { NAME = value | { env = "VAR" } | { file = "PATH" } }`:
/// names the backend knows, one source each, keys in pairs. Values are
/// never echoed.
fn compile_credentials(
    cx: &mut Cx<'_>,
    el: &Element,
    raw: &BackupRaw,
) -> Option<Vec<(String, CredentialSource)>> {
    let p = &el.path;
    let mut ok = true;
    let mut out = Vec::new();
    for (name, value) in raw.credentials.iter().flatten() {
        let field = format!("{p}.credentials.{name}");
        let source = match value {
            CredentialRaw::Value(v) if v.trim().is_empty() => Err("empty value"),
            CredentialRaw::Value(v) => {
                Ok(CredentialSource::Value(Secret::new(v.trim().to_string())))
            }
            CredentialRaw::From(CredentialFromRaw {
                env: Some(v),
                file: None,
            }) => is_env_name(v)
                .then(|| CredentialSource::Env(v.clone()))
                .ok_or("invalid environment variable name"),
            CredentialRaw::From(CredentialFromRaw {
                env: None,
                file: Some(f),
            }) => (!f.trim().is_empty())
                .then(|| CredentialSource::File(PathBuf::from(f)))
                .ok_or("empty file name"),
            CredentialRaw::From(_) => Err("give exactly one of `env` and `file`"),
        };
        let span = el
            .item
            .get("credentials")
            .and_then(|c| c.get(name.as_str()))
            .and_then(item_span)
            .or_else(|| el.span.clone());
        if !bulwark_repo::CREDENTIAL_VARIABLES.contains(&name.as_str()) {
            cx.error(
                span,
                field,
                format!(
                    "unknown credential (known: {})",
                    bulwark_repo::CREDENTIAL_VARIABLES.join(", ")
                ),
            );
            ok = false;
            continue;
        }
        match source {
            Ok(source) => out.push((name.clone(), source)),
            Err(problem) => {
                cx.error(span, field, problem);
                ok = false;
            }
        }
    }
    let given = |n: &str| out.iter().any(|(name, _)| name == n);
    for (needs, with) in [
        ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
        ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"),
        ("AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID"),
    ] {
        if ok && given(needs) && !given(with) {
            cx.error(
                el.span.clone(),
                format!("{p}.credentials"),
                format!("{needs} is given without {with}"),
            );
            ok = false;
        }
    }
    ok.then_some(out)
}

/// `kind` and the fields each kind needs; None (reported) when invalid.
fn compile_kind(cx: &mut Cx<'_>, el: &Element, raw: &BackupRaw) -> Option<BackupKind> {
    let p = &el.path;
    let kind = raw
        .kind
        .as_ref()
        .map(|k| k.get_ref().as_str())
        .unwrap_or("files");
    let misplaced = |cx: &mut Cx<'_>, field: &str, span: Option<std::ops::Range<usize>>| {
        cx.error(
            span,
            format!("{p}.{field}"),
            format!(
                "only used by kind = \"{}\"",
                if field == "command" {
                    "command"
                } else {
                    "postgres"
                }
            ),
        );
    };
    let mut ok = true;
    if kind != "postgres" {
        for (field, span) in [
            ("url", raw.url.as_ref().map(|v| v.span())),
            ("databases", raw.databases.as_ref().map(|v| v.span())),
            (
                "pg_dump_options",
                raw.pg_dump_options.as_ref().map(|v| v.span()),
            ),
            ("pg_dump", raw.pg_dump.as_ref().map(|v| v.span())),
        ] {
            if span.is_some() {
                misplaced(cx, field, span);
                ok = false;
            }
        }
    }
    if kind != "command" {
        if let Some(c) = &raw.command {
            misplaced(cx, "command", Some(c.span()));
            ok = false;
        }
        if raw.env.is_some() || raw.pass_env.is_some() {
            cx.error(
                el.span.clone(),
                format!("{p}.env"),
                "`env` and `pass_env` are only used by kind = \"command\"",
            );
            ok = false;
        }
    }
    if kind != "files" && raw.git == Some(true) {
        cx.error(
            el.span.clone(),
            format!("{p}.git"),
            "only used by kind = \"files\"",
        );
        ok = false;
    }
    let compiled = match kind {
        "files" => Some(BackupKind::Files),
        "postgres" => compile_postgres(cx, el, raw).map(BackupKind::Postgres),
        "command" => match &raw.command {
            None => {
                cx.error(
                    el.span.clone(),
                    p.clone(),
                    "kind = \"command\" needs `command = [\"program\", \"arg\", ...]`",
                );
                None
            }
            Some(c) if c.get_ref().first().is_none_or(|s| s.trim().is_empty()) => {
                cx.error(
                    Some(c.span()),
                    format!("{p}.command"),
                    "must name a program to run",
                );
                None
            }
            Some(c) => cx
                .command_env(&raw.env, &raw.pass_env, p)
                .map(|env| BackupKind::Command {
                    argv: c.get_ref().clone(),
                    env,
                }),
        },
        other => {
            cx.error(
                raw.kind.as_ref().map(|k| k.span()),
                format!("{p}.kind"),
                format!(
                    "unknown kind \"{other}\" (known: {})",
                    BACKUP_KINDS.join(", ")
                ),
            );
            None
        }
    };
    if ok {
        compiled
    } else {
        None
    }
}

fn compile_postgres(cx: &mut Cx<'_>, el: &Element, raw: &BackupRaw) -> Option<PostgresSource> {
    let p = &el.path;
    let Some(url) = &raw.url else {
        cx.error(
            el.span.clone(),
            p.clone(),
            "kind = \"postgres\" needs `url = \"postgres://user:pass@host:port/db\"`",
        );
        return None;
    };
    let mut ok = true;
    // Never echo the URL: it carries the password.
    let url_db = match crate::backups::postgres::parse_url(url.get_ref()) {
        Ok(conn) => conn.database,
        Err(msg) => {
            cx.error(Some(url.span()), format!("{p}.url"), msg);
            ok = false;
            None
        }
    };
    let databases = match &raw.databases {
        Some(d) => {
            if d.get_ref().is_empty() {
                cx.error(
                    Some(d.span()),
                    format!("{p}.databases"),
                    "must list at least one database (or leave it out to dump the url's)",
                );
                ok = false;
            }
            if let Some(i) = d
                .get_ref()
                .iter()
                .position(|s| !crate::backups::postgres::plain_name(s))
            {
                cx.error(
                    Some(d.span()),
                    format!("{p}.databases[{i}]"),
                    "must be a plain database name (letters, digits, `_`, `-`, `.`)",
                );
                ok = false;
            }
            d.get_ref().clone()
        }
        None => match url_db {
            Some(db) => vec![db],
            None if ok => {
                cx.error(
                    Some(url.span()),
                    format!("{p}.url"),
                    "names no database: add one to the url or set `databases`",
                );
                ok = false;
                Vec::new()
            }
            None => Vec::new(),
        },
    };
    if let Some(o) = &raw.pg_dump_options {
        if let Some(i) = o.get_ref().iter().position(|s| {
            let s = s.trim();
            s.is_empty()
                || ["-f", "--file", "-d", "--dbname", "-W", "--password"]
                    .iter()
                    .any(|f| s == *f || s.starts_with(&format!("{f}=")))
        }) {
            cx.error(Some(o.span()), format!("{p}.pg_dump_options[{i}]"), "must not be empty, name an output file or a database, or ask for a password (Bulwark sets those)");
            ok = false;
        }
    }
    let pg_dump = match &raw.pg_dump {
        None => None,
        Some(v) => Some(PathBuf::from(cx.non_empty(v, format!("{p}.pg_dump"))?)),
    };
    if !ok {
        return None;
    }
    Some(PostgresSource {
        url: Secret::new(url.get_ref().trim().to_string()),
        databases,
        pg_dump_options: raw
            .pg_dump_options
            .as_ref()
            .map(|o| o.get_ref().clone())
            .unwrap_or_else(|| vec!["-Fc".to_string()]),
        pg_dump,
    })
}

/// `"5%"` => 5.0; restic's `--read-data-subset` percentage form.
pub(crate) fn parse_percent(s: &str) -> Result<f64, String> {
    let bad = || {
        format!("invalid percentage {s:?}: expected more than 0% and at most 100%, such as \"5%\"")
    };
    let number = s.trim().strip_suffix('%').ok_or_else(bad)?;
    match number.trim().parse::<f64>() {
        Ok(p) if p > 0.0 && p <= 100.0 => Ok(p),
        _ => Err(bad()),
    }
}
