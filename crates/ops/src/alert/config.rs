//! `[[channel]]` (with `SLACK_WEBHOOK_URL`, `TELEGRAM_*`) and `[[route]]`.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::time::Duration;

use crate::config::cx::*;
use crate::config::raw::Sp;

use crate::config::*;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChannelRaw {
    pub(crate) name: Sp<String>,
    #[serde(rename = "type")]
    pub(crate) kind: Sp<String>,
    pub(crate) url: Option<Sp<String>>,
    pub(crate) headers: Option<BTreeMap<String, Sp<String>>>,
    pub(crate) bot_token: Option<Sp<String>>,
    pub(crate) chat_id: Option<Sp<toml::Value>>,
    pub(crate) api_base: Option<Sp<String>>,
    pub(crate) smtp_host: Option<Sp<String>>,
    pub(crate) smtp_port: Option<Sp<i64>>,
    pub(crate) username: Option<Sp<String>>,
    pub(crate) password: Option<Sp<String>>,
    pub(crate) from: Option<Sp<String>>,
    pub(crate) to: Option<Sp<Vec<String>>>,
    pub(crate) starttls: Option<Sp<bool>>,
    pub(crate) routing_key: Option<Sp<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RouteRaw {
    pub(crate) channel: Sp<String>,
    pub(crate) monitors: Option<Vec<Sp<String>>>,
    pub(crate) tags: Option<Vec<String>>,
    pub(crate) severity: Option<Vec<Sp<String>>>,
    pub(crate) group_by: Option<Vec<Sp<String>>>,
    pub(crate) group_wait: Option<Sp<String>>,
    pub(crate) group_interval: Option<Sp<String>>,
    pub(crate) repeat_interval: Option<Sp<String>>,
    pub(crate) send_resolved: Option<bool>,
}

pub(crate) const CHANNEL_TYPES: &[&str] = &["slack", "telegram", "webhook", "email", "pagerduty"];

pub(crate) fn compile_channel(cx: &mut Cx<'_>, el: &Element) -> Option<ChannelConfig> {
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

pub(crate) fn api_base(
    cx: &mut Cx<'_>,
    v: &Option<Sp<String>>,
    p: &str,
    default: &str,
) -> Option<String> {
    match v {
        None => Some(default.to_string()),
        Some(v) => cx
            .http_url(v, format!("{p}.api_base"))
            .map(|u| u.trim_end_matches('/').to_string()),
    }
}

/// Channels from the environment variables, unless the file already has one of
/// that name (the file is the more specific statement).
pub(crate) fn env_channels(
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

pub(crate) const GROUP_BY: &[&str] = &["monitor", "slo", "severity", "tags", "..."];

pub(crate) fn compile_route(
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
