//! The report as its JSON document, as Markdown and as one self-contained
//! HTML page.
//!
//! The HTML has no scripts, stylesheets or images from elsewhere: auditors
//! archive it and open it offline years later. Charts are inline SVG drawn
//! here. Every string from the store or the config (monitor names, incident
//! causes, actors) passes through [`escape`], since a monitor name is
//! operator input and an incident cause is whatever a probed server said.

use std::fmt::Write;

use super::{MonitorUptime, Report, ReportDocument};

pub use crate::charts::escape;

/// The JSON document ([`ReportDocument`]), pretty-printed, ending in a newline.
pub fn json(r: &Report) -> String {
    // Plain structs of strings, finite numbers and dates: serialising
    // cannot fail.
    let mut s = serde_json::to_string_pretty(&ReportDocument::from(r)).unwrap_or_default();
    s.push('\n');
    s
}

/// Markdown table cells: a `|` or newline would break the row.
fn md(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

fn pct(x: Option<f64>) -> String {
    x.map_or_else(|| "no data".to_string(), |v| format!("{:.3}%", v * 100.0))
}

fn secs(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_string(), |v| format!("{v:.1}s"))
}

fn target(x: Option<u64>) -> String {
    x.map_or_else(|| "-".to_string(), |v| format!("{v}s"))
}

fn yes_no(x: Option<bool>) -> &'static str {
    match x {
        Some(true) => "yes",
        Some(false) => "NO",
        None => "-",
    }
}

fn duration(s: i64) -> String {
    crate::config::format_duration(std::time::Duration::from_secs(s.max(0) as u64))
}

fn ts(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%SZ").to_string()
}

/// A section: title, column headers, rows of cells.
type Table = (&'static str, Vec<&'static str>, Vec<Vec<String>>);

/// The sections, so Markdown and HTML show the same figures.
fn tables(r: &Report) -> Vec<Table> {
    let mut out = vec![
        (
            "Uptime",
            vec![
                "Monitor",
                "Uptime",
                "SLA",
                "SLA met",
                "Probes",
                "Failures",
                "Incidents",
                "Downtime",
            ],
            r.monitors
                .iter()
                .map(|m| {
                    vec![
                        m.monitor.clone(),
                        pct(m.uptime),
                        pct(m.sla_target),
                        yes_no(m.sla_met).to_string(),
                        m.total.to_string(),
                        m.failures.to_string(),
                        m.incidents.to_string(),
                        duration(m.downtime_seconds),
                    ]
                })
                .collect(),
        ),
        (
            "SLOs",
            vec![
                "SLO",
                "Monitor",
                "Target",
                "Attainment",
                "Budget used",
                "Budget left",
                "Met",
            ],
            r.slos
                .iter()
                .map(|s| {
                    vec![
                        s.slo.clone(),
                        s.monitor.clone(),
                        pct(Some(s.target)),
                        pct(Some(s.attainment)),
                        format!("{:.1}%", (s.budget_consumed * 100.0).min(1e6)),
                        format!("{:.1}%", s.budget_remaining * 100.0),
                        yes_no(Some(s.met)).to_string(),
                    ]
                })
                .collect(),
        ),
        (
            "Incidents",
            vec![
                "Incident", "Monitor", "Opened", "Resolved", "Duration", "Cause",
            ],
            r.incidents
                .iter()
                .map(|i| {
                    vec![
                        i.id.clone(),
                        i.monitor.clone(),
                        ts(&i.opened_at),
                        i.resolved_at
                            .as_ref()
                            .map_or_else(|| "open".to_string(), ts),
                        duration(i.duration_seconds),
                        i.cause.clone(),
                    ]
                })
                .collect(),
        ),
        ("Backups", job_header(), job_rows(&r.backups)),
        ("Verifications", job_header(), job_rows(&r.verifications)),
        (
            "DR drills",
            vec![
                "Drill",
                "Started",
                "Result",
                "RTO",
                "RTO target",
                "RTO met",
                "RPO",
                "RPO target",
                "RPO met",
            ],
            r.drills
                .iter()
                .map(|d| {
                    vec![
                        d.drill.clone(),
                        d.started_at.as_ref().map_or_else(|| "-".to_string(), ts),
                        if d.passed {
                            "passed".to_string()
                        } else {
                            format!("failed at {}", d.failed_step.as_deref().unwrap_or("?"))
                        },
                        secs(d.rto_seconds),
                        target(d.rto_target_seconds),
                        yes_no(d.rto_met).to_string(),
                        secs(d.rpo_seconds),
                        target(d.rpo_target_seconds),
                        yes_no(d.rpo_met).to_string(),
                    ]
                })
                .collect(),
        ),
        (
            "Secret rotations",
            vec!["Secret", "Version", "Rotated", "By"],
            r.rotations
                .iter()
                .map(|x| {
                    vec![
                        x.secret.clone(),
                        x.version.map_or_else(|| "-".to_string(), |v| v.to_string()),
                        ts(&x.at),
                        x.actor.clone(),
                    ]
                })
                .collect(),
        ),
    ];
    // Only where cost is configured: elsewhere there is nothing to say.
    if !r.storage.is_empty() {
        out.push((
            "Storage cost (as last listed)",
            vec![
                "Backup",
                "Repository",
                "Classes",
                "Monthly cost",
                "Threshold",
                "Listed",
            ],
            storage_rows(&r.storage),
        ));
    }
    out
}

fn storage_rows(rows: &[super::StorageRow]) -> Vec<Vec<String>> {
    use crate::cost::format_amount;
    rows.iter()
        .map(|s| {
            let classes = s
                .classes
                .iter()
                .map(|c| {
                    let price = c
                        .price
                        .map_or_else(|| "no price".to_string(), |p| format!("{p}/GB-month"));
                    format!(
                        "{} {} ({price})",
                        c.class,
                        crate::cost::format_bytes(c.bytes)
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            vec![
                s.backup.clone(),
                s.repository.clone(),
                if classes.is_empty() {
                    "-".to_string()
                } else {
                    classes
                },
                format_amount(s.monthly_cost, &s.currency),
                match s.monthly_threshold {
                    Some(t) if s.over_threshold => {
                        format!("{} (exceeded)", format_amount(t, &s.currency))
                    }
                    Some(t) => format_amount(t, &s.currency),
                    None => "-".to_string(),
                },
                s.listed_at.as_ref().map_or_else(|| "never".to_string(), ts),
            ]
        })
        .collect()
}

fn job_header() -> Vec<&'static str> {
    vec![
        "Backup",
        "Runs",
        "Succeeded",
        "Failed",
        "Last outcome",
        "Last run",
    ]
}

fn job_rows(jobs: &[super::JobSummary]) -> Vec<Vec<String>> {
    jobs.iter()
        .map(|j| {
            vec![
                j.backup.clone(),
                j.runs.to_string(),
                j.successes.to_string(),
                j.failures.to_string(),
                j.last_outcome
                    .clone()
                    .unwrap_or_else(|| "no run".to_string()),
                j.last_at.as_ref().map_or_else(|| "-".to_string(), ts),
            ]
        })
        .collect()
}

/// The report as Markdown.
pub fn markdown(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Reliability evidence report {}\n", r.period);
    let _ = writeln!(
        out,
        "Period {} to {} (UTC, end exclusive). Generated {}.\n",
        ts(&r.from),
        ts(&r.to),
        ts(&r.generated_at)
    );
    for (title, header, rows) in tables(r) {
        let _ = writeln!(out, "## {title}\n");
        if rows.is_empty() {
            let _ = writeln!(out, "None recorded.\n");
            continue;
        }
        let _ = writeln!(out, "| {} |", header.join(" | "));
        let _ = writeln!(out, "|{}", "---|".repeat(header.len()));
        for row in rows {
            let cells: Vec<String> = row.iter().map(|c| md(c)).collect();
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        }
        out.push('\n');
    }
    out
}

/// The shared daily uptime bars ([`crate::charts::uptime_bars`]) of one
/// monitor.
fn uptime_chart(m: &MonitorUptime) -> String {
    let days: Vec<crate::charts::Day> = m
        .daily
        .iter()
        .map(|d| crate::charts::Day {
            date: d.date,
            uptime: d.uptime,
        })
        .collect();
    crate::charts::uptime_bars(&format!("Daily uptime of {}", m.monitor), &days)
}

/// The report as one HTML page with inline CSS and SVG.
pub fn html(r: &Report) -> String {
    let mut out = String::new();
    let title = format!("Reliability evidence report {}", escape(&r.period));
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
         <title>{title}</title><style>\
         body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}\
         table{{border-collapse:collapse;margin-bottom:1.5em}}\
         th,td{{border:1px solid #ccc;padding:.3em .6em;text-align:left}}\
         th{{background:#f3f3f3}}.chart{{margin:.3em 0 1em}}\
         </style></head><body><h1>{title}</h1>\
         <p>Period {} to {} (UTC, end exclusive). Generated {}.</p>",
        escape(&ts(&r.from)),
        escape(&ts(&r.to)),
        escape(&ts(&r.generated_at))
    );
    if !r.monitors.is_empty() {
        out.push_str("<h2>Daily uptime</h2>");
        for m in &r.monitors {
            let _ = write!(
                out,
                "<div class=\"chart\"><div>{} — {}</div>{}</div>",
                escape(&m.monitor),
                escape(&pct(m.uptime)),
                uptime_chart(m)
            );
        }
    }
    for (title, header, rows) in tables(r) {
        let _ = write!(out, "<h2>{}</h2>", escape(title));
        if rows.is_empty() {
            out.push_str("<p>None recorded.</p>");
            continue;
        }
        out.push_str("<table><thead><tr>");
        for h in header {
            let _ = write!(out, "<th>{}</th>", escape(h));
        }
        out.push_str("</tr></thead><tbody>");
        for row in rows {
            out.push_str("<tr>");
            for c in row {
                let _ = write!(out, "<td>{}</td>", escape(&c));
            }
            out.push_str("</tr>");
        }
        out.push_str("</tbody></table>");
    }
    out.push_str("</body></html>\n");
    out
}
