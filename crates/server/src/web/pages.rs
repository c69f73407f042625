//! The dashboard's pages. Each one calls the handlers of the API routes
//! whose documents it shows, with the viewer as the caller, and renders
//! their wire types; admin actions are rendered for admins only (and the
//! API refuses them to anyone else anyway).

use bulwark_ops::DayCount;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use maud::{html, Markup};
use serde::Deserialize;

use super::layout::{self, age, pct, state_badge, svg, time, Section};
use super::Viewer;
use crate::api::{
    AuditQuery, DrillQuery, DrillReportWire, IncidentQuery, IncidentWire, JobWire, MonitorWire,
    ResultsQuery, SecretMetaWire, SloStatusWire, SnapshotQuery,
};
use crate::auth::{Analyst, Auth};
use crate::error::ApiError;
use crate::routes;
use crate::state::AppState;

type Page = Result<Response, ApiError>;

/// The viewer as the caller of an analyst route: every signed-in role is
/// at least an analyst.
fn analyst(viewer: &Viewer) -> Auth<Analyst> {
    Auth::checked(viewer.principal.clone()).expect("every role allows analyst routes")
}

/// `GET /`: the overview when signed in, the sign-in page otherwise.
pub(crate) async fn home(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Page {
    match Viewer::of(&headers, &state).await? {
        Some(viewer) => overview(state, viewer).await,
        None => Ok(layout::sign_in_page(StatusCode::OK, None)),
    }
}

async fn monitors(state: &Arc<AppState>, viewer: &Viewer) -> Result<Vec<MonitorWire>, ApiError> {
    let Json(m) = routes::monitors::list(State(state.clone()), analyst(viewer)).await?;
    Ok(m)
}

async fn incidents(
    state: &Arc<AppState>,
    viewer: &Viewer,
    monitor: Option<String>,
    open: Option<bool>,
) -> Result<Vec<IncidentWire>, ApiError> {
    let query = IncidentQuery {
        monitor,
        open,
        limit: Some(50),
    };
    let Json(i) =
        routes::incidents::list(State(state.clone()), analyst(viewer), Ok(Query(query))).await?;
    Ok(i)
}

async fn slos(state: &Arc<AppState>, viewer: &Viewer) -> Result<Vec<SloStatusWire>, ApiError> {
    let Json(s) = routes::slo::status(State(state.clone()), analyst(viewer)).await?;
    Ok(s)
}

async fn drill_reports(
    state: &Arc<AppState>,
    viewer: &Viewer,
    limit: u32,
) -> Result<Vec<DrillReportWire>, ApiError> {
    let query = DrillQuery { limit: Some(limit) };
    let Json(d) =
        routes::evidence::drills(State(state.clone()), analyst(viewer), Ok(Query(query))).await?;
    Ok(d)
}

async fn jobs_of(state: &Arc<AppState>, viewer: &Viewer) -> Result<Vec<JobWire>, ApiError> {
    let Json(j) = routes::jobs::list(State(state.clone()), analyst(viewer)).await?;
    Ok(j)
}

async fn secrets_of(
    state: &Arc<AppState>,
    viewer: &Viewer,
) -> Result<Vec<SecretMetaWire>, ApiError> {
    let Json(s) = routes::secrets::list(State(state.clone()), analyst(viewer)).await?;
    Ok(s)
}

async fn overview(state: Arc<AppState>, viewer: Viewer) -> Page {
    // Independent views, read at once: the page takes as long as the
    // slowest (usually `ops check`), not their sum.
    let (monitors, open, slos, Json(check), drills, jobs, secrets) = tokio::try_join!(
        monitors(&state, &viewer),
        incidents(&state, &viewer, None, Some(true)),
        slos(&state, &viewer),
        routes::evidence::ops_check(State(state.clone()), analyst(&viewer)),
        drill_reports(&state, &viewer, 1),
        jobs_of(&state, &viewer),
        secrets_of(&state, &viewer),
    )?;
    let down = monitors.iter().filter(|m| m.up == Some(false)).count();
    let up = monitors.iter().filter(|m| m.up == Some(true)).count();
    let failing_jobs: Vec<&JobWire> = jobs
        .iter()
        .filter(|j| j.last_run.as_ref().is_some_and(|r| r.outcome == "failure"))
        .collect();
    let body = html! {
        section.card #dr-card aria-labelledby="dr-card-title" {
            h2 #dr-card-title { "Reliability & DR" }
            div.actions {
                @if viewer.is_admin() {
                    button type="button" data-card="uptime" { "Run Uptime Test" }
                }
                button type="button" data-card="slo" { "View SLO" }
                button type="button" data-card="dr" { "Last DR Report" }
            }
            div #output .output role="log" aria-live="polite" aria-label="Output" {
                p.muted { "Results appear here." }
            }
        }
        div.grid {
            section.card aria-labelledby="mon-title" {
                h2 #mon-title { "Monitors" }
                p.summary {
                    span.badge.up { (up) " up" } " "
                    @if down > 0 { span.badge.down { (down) " down" } } @else { span.badge.unknown { "0 down" } }
                    " of " (monitors.len())
                }
                (monitor_table(&monitors))
            }
            section.card aria-labelledby="inc-title" {
                h2 #inc-title { "Open incidents" }
                @if open.is_empty() { p.muted { "None." } } @else { (incident_table(&open)) }
            }
            section.card aria-labelledby="slo-title" {
                h2 #slo-title { "Error budgets" }
                @if slos.is_empty() { p.muted { "No SLOs configured." } }
                ul.gauges {
                    @for s in &slos {
                        li {
                            a href={ "/slos/" (s.name) } { (s.name) }
                            " "
                            meter min="0" max="1" low="0.25" high="0.5" optimum="1"
                                value=(s.budget_remaining.clamp(0.0, 1.0))
                                aria-label={ "budget left for " (s.name) } {}
                            " " span.figure { (format!("{:.1}%", s.budget_remaining * 100.0)) " left" }
                        }
                    }
                }
            }
            section.card aria-labelledby="check-title" {
                h2 #check-title { "Backups, verification and checks" }
                table {
                    thead { tr { th { "Area" } th { "Name" } th { "State" } th { "Detail" } } }
                    tbody {
                        @for row in &check.rows {
                            tr {
                                td { (row.area) }
                                td { (row.name) }
                                td { @if row.ok { span.badge.up { "ok" } } @else { span.badge.down { "FAIL" } } }
                                td { (row.detail) }
                            }
                        }
                    }
                }
            }
            section.card aria-labelledby="drill-title" {
                h2 #drill-title { "Last drill" }
                @match drills.first() {
                    Some(d) => (drill_summary(d)),
                    None => p.muted { "No drill has run yet." },
                }
            }
            section.card aria-labelledby="secret-title" {
                h2 #secret-title { "Secrets" }
                (secret_table(&secrets, false))
            }
            section.card aria-labelledby="jobs-title" {
                h2 #jobs-title { "Failing jobs" }
                @if failing_jobs.is_empty() { p.muted { "None: every job's last run succeeded." } }
                @else {
                    ul { @for j in &failing_jobs {
                        li { a href="/jobs" { (j.name) } ": "
                            @if let Some(r) = &j.last_run { (r.summary) " (" (time(&r.started_at)) ")" } }
                    } }
                }
            }
        }
    };
    Ok(layout::page(&viewer, Section::Overview, "Overview", body))
}

fn monitor_table(monitors: &[MonitorWire]) -> Markup {
    html! {
        table.monitors {
            thead { tr { th { "Monitor" } th { "State" } th { "Latency" } th { "Checked" } } }
            tbody {
                @for m in monitors {
                    tr {
                        td { a href={ "/monitors/" (m.name) } { (m.name) } }
                        td { (state_badge(&m.name, m.up)) }
                        td data-latency=(m.name) {
                            @if let Some(l) = &m.last { (l.latency_ms) " ms" }
                        }
                        td {
                            @if let Some(l) = &m.last {
                                (time(&l.ts))
                                @if let Some(e) = &l.error { br; span.error { (e) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn incident_table(incidents: &[IncidentWire]) -> Markup {
    html! {
        table {
            thead { tr { th { "Monitor" } th { "Opened" } th { "Resolved" } th { "Cause" } } }
            tbody {
                @for i in incidents {
                    tr {
                        td { a href={ "/monitors/" (i.monitor) } { (i.monitor) } }
                        td { (time(&i.opened_at)) }
                        td { @match &i.resolved_at { Some(t) => (time(t)), None => span.badge.down { "open" } } }
                        td { (i.cause) }
                    }
                }
            }
        }
    }
}

fn met(ok: Option<bool>) -> Markup {
    match ok {
        Some(true) => html! { span.badge.up { "met" } },
        Some(false) => html! { span.badge.down { "MISSED" } },
        None => html! { span.muted { "no target" } },
    }
}

fn drill_summary(d: &DrillReportWire) -> Markup {
    html! {
        p {
            @if d.passed { span.badge.up { "passed" } } @else { span.badge.down { "FAILED" } }
            " " strong { (d.drill) } " (backup " (d.backup) ") at " (time(&d.started_at))
        }
        dl.facts {
            dt { "RTO" } dd { (d.rto_seconds.map_or("—".into(), |s| age(s as u64))) " " (met(d.rto_met)) }
            dt { "RPO" } dd { (d.rpo_seconds.map_or("—".into(), |s| age(s as u64))) " " (met(d.rpo_met)) }
        }
    }
}

fn secret_table(secrets: &[SecretMetaWire], actions: bool) -> Markup {
    html! {
        @if secrets.is_empty() { p.muted { "No managed secrets configured." } }
        @else {
            table {
                thead { tr { th { "Secret" } th { "Version" } th { "Age" } th { "Next rotation" } @if actions { th { "Action" } } } }
                tbody {
                    @for s in secrets {
                        tr {
                            td { (s.name) }
                            td { @if let Some(v) = s.version { (v) } @else { span.muted { "not yet made" } } }
                            td {
                                @if let Some(a) = s.age_seconds { (age(a)) } " / max " (age(s.max_age_seconds))
                                @if s.due { " " span.badge.down { "due" } }
                            }
                            td { @match &s.next_rotation { Some(t) => (time(t)), None => span.muted { "manual" } } }
                            @if actions {
                                td {
                                    button type="button" data-method="POST"
                                        data-url={ "/api/v1/secrets/" (s.name) "/rotate?force=true" }
                                        data-confirm={ "Rotate " (s.name) " now?" } { "Rotate now" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /monitors/{name}`: state, latency, incidents, silences and
/// maintenance.
pub(crate) async fn monitor(
    State(state): State<Arc<AppState>>,
    viewer: Viewer,
    Path(name): Path<String>,
) -> Page {
    let all = monitors(&state, &viewer).await?;
    let Some(m) = all.into_iter().find(|m| m.name == name) else {
        return Err(ApiError::NotFound(format!("no monitor named {name:?}")));
    };
    let incidents = incidents(&state, &viewer, Some(name.clone()), None).await?;
    let now = chrono::Utc::now();
    let since = now - chrono::Duration::days(7);
    let query = ResultsQuery {
        since: Some(since.to_rfc3339()),
        until: None,
        limit: None,
        resolution: Some("hour".into()),
        rollup: None,
    };
    let Json(results) = routes::monitors::results(
        State(state.clone()),
        analyst(&viewer),
        Path(name.clone()),
        Ok(Query(query)),
    )
    .await?;
    let days = days_of(&state, &name, now, HISTORY_DAYS).await?;
    let p50: Vec<(i64, f64)> = results
        .rollups
        .iter()
        .map(|r| (r.minute.timestamp_millis(), r.latency_p50_ms as f64))
        .collect();
    let p95: Vec<(i64, f64)> = results
        .rollups
        .iter()
        .map(|r| (r.minute.timestamp_millis(), r.latency_p95_ms as f64))
        .collect();
    let known: Vec<f64> = days.iter().filter_map(|d| d.uptime).collect();
    let body = html! {
        section.card {
            p {
                (state_badge(&m.name, m.up)) " "
                (m.kind) " " code { (m.target) } " every " (age(m.interval_s))
                @if !m.tags.is_empty() { " · tags: " (m.tags.join(", ")) }
            }
            @if let Some(l) = &m.last {
                p { "Last check " (time(&l.ts)) ": " (l.latency_ms) " ms"
                    @if let Some(e) = &l.error { " — " span.error { (e) } } }
            }
        }
        section.card {
            h2 { "Uptime, last 90 days" }
            @if let Some(mean) = mean(&known) { p { (pct(mean)) " over the days with data (UTC days; hover a bar for its figure)" } }
            (svg(bulwark_ops::uptime_bars(&format!("{} daily uptime", m.name), &days)))
        }
        section.card {
            h2 { "Latency, last 7 days (hourly)" }
            @if results.rollups.is_empty() { p.muted { "No results yet." } }
            @else {
                (svg(bulwark_ops::latency_chart(&format!("{} latency p50 and p95", m.name), &p50, &p95)))
                details { summary { "The last 24 hours as a table" }
                table.compact {
                    thead { tr { th { "Hour" } th { "Checks" } th { "Failures" } th { "p50" } th { "p95" } } }
                    tbody {
                        @for r in results.rollups.iter().rev().take(24) {
                            tr { td { (time(&r.minute)) } td { (r.total) } td { (r.failures) }
                                 td { (r.latency_p50_ms) " ms" } td { (r.latency_p95_ms) " ms" } }
                        }
                    }
                }
                }
            }
        }
        section.card {
            h2 { "Incidents" }
            @if incidents.is_empty() { p.muted { "None." } } @else { (incident_table(&incidents)) }
        }
        @if viewer.is_admin() {
            section.card {
                h2 { "Silence alerts" }
                form data-method="POST" data-url="/api/v1/silences" data-json="silence" {
                    input type="hidden" name="monitor" value=(m.name);
                    label { "Duration " input name="duration" value="1h" required; }
                    label { "Comment " input name="comment" required; }
                    button type="submit" { "Silence" }
                }
                h2 { "Maintenance window" }
                form data-method="POST" data-url="/api/v1/maintenance" data-json="maintenance" {
                    input type="hidden" name="monitors" value=(m.name);
                    label { "Name " input name="name" value="maintenance" required; }
                    label { "Starts " input type="datetime-local" name="starts_at" required; }
                    label { "Ends " input type="datetime-local" name="ends_at" required; }
                    button type="submit" { "Schedule" }
                }
            }
        }
    };
    Ok(layout::page(&viewer, Section::Overview, &m.name, body))
}

/// Days shown in a monitor's uptime bars, as on the status page.
const HISTORY_DAYS: i64 = 90;

/// `monitor`'s daily uptime over the last `n` UTC days, oldest first.
async fn days_of(
    state: &AppState,
    monitor: &str,
    now: chrono::DateTime<chrono::Utc>,
    n: i64,
) -> Result<Vec<bulwark_ops::Day>, ApiError> {
    Ok(days_counts(state, monitor, now, n)
        .await?
        .into_iter()
        .map(|(day, c)| bulwark_ops::Day {
            date: chrono::DateTime::from_timestamp_millis(day)
                .unwrap_or_default()
                .date_naive(),
            uptime: c.uptime(),
        })
        .collect())
}

/// `1.5 GiB`, `320 KiB`, `12 B`.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

fn mean(xs: &[f64]) -> Option<f64> {
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}

/// `monitor`'s probe counts per UTC day over the last `n` days, oldest first.
async fn days_counts(
    state: &AppState,
    monitor: &str,
    now: chrono::DateTime<chrono::Utc>,
    n: i64,
) -> Result<Vec<(i64, DayCount)>, ApiError> {
    use bulwark_ops::DAY;
    let now = bulwark_ops::Timestamp::from(now);
    let days = u32::try_from(n).unwrap_or(1).max(1);
    let first = now.floor(DAY) - (days - 1) * DAY;
    let mut counts = state
        .views
        .daily
        .counts(
            &state.instance.store,
            first,
            now + std::time::Duration::from_millis(1),
        )
        .await?;
    let mine = counts.remove(monitor).unwrap_or_default();
    // Charts plot days on a Unix-millisecond axis.
    Ok((0..days)
        .map(|i| {
            let day = first + i * DAY;
            (day.as_millis(), mine.get(&day).copied().unwrap_or_default())
        })
        .collect())
}

/// The share of error budget left at the end of each day: 1 - (failures so
/// far / probes so far) / (1 - target), as the SLO computes it over the
/// window to date. Days before the first probe are left out.
fn burn_down_series(days: &[(i64, bulwark_ops::DayCount)], target: f64) -> Vec<(i64, f64)> {
    use bulwark_ops::DAY_MS;
    let (mut total, mut bad) = (0_u64, 0_u64);
    let mut out = Vec::new();
    for (day, c) in days {
        total += c.total;
        bad += c.bad;
        if total > 0 {
            let error_rate = bad as f64 / total as f64;
            out.push((day + DAY_MS, 1.0 - error_rate / (1.0 - target)));
        }
    }
    out
}

/// `GET /slos/{name}`: attainment, budget, burn rates and forecast.
pub(crate) async fn slo(
    State(state): State<Arc<AppState>>,
    viewer: Viewer,
    Path(name): Path<String>,
) -> Page {
    let Some(s) = slos(&state, &viewer)
        .await?
        .into_iter()
        .find(|s| s.name == name)
    else {
        return Err(ApiError::NotFound(format!("no SLO named {name:?}")));
    };
    let now = chrono::Utc::now();
    let window_days = (now - s.window_start).num_days().clamp(1, 400) + 1;
    let mut burn = burn_down_series(
        &days_counts(&state, &s.monitor, now, window_days).await?,
        s.target,
    );
    // The days are read from rollups; the SLO's own figure is the latest.
    burn.retain(|(t, _)| *t < now.timestamp_millis());
    burn.push((now.timestamp_millis(), 1.0 - s.budget_consumed));
    let body = html! {
        section.card {
            dl.facts {
                dt { "Monitor" } dd { a href={ "/monitors/" (s.monitor) } { (s.monitor) } }
                dt { "Target" } dd { (pct(s.target)) }
                dt { "Attainment" } dd { (pct(s.attainment)) " (" (s.bad) " of " (s.total) " probes failed since " (time(&s.window_start)) ")" }
                dt { "Error budget" } dd {
                    meter min="0" max="1" low="0.25" high="0.5" optimum="1" value=(s.budget_remaining.clamp(0.0, 1.0)) {}
                    " " (format!("{:.1}%", s.budget_remaining * 100.0)) " left (" (format!("{:.1}%", s.budget_consumed * 100.0)) " used; the window allows " (format!("{:.1}", s.budget_total)) " failed probes)"
                }
                dt { "Forecast" } dd {
                    @match &s.exhaustion_at { Some(t) => { "budget runs out at " (time(t)) " at the current burn rate" }, None => "not on course to run out" }
                }
                @if !s.firing.is_empty() { dt { "Firing" } dd { span.badge.down { (s.firing.join(", ")) } } }
            }
        }
        section.card {
            h2 { "Budget burn-down" }
            (svg(bulwark_ops::burn_down(&format!("{} error budget left", s.name), &burn, Some(0.0))))
            p.muted { "Budget left at the end of each UTC day of the window, from the probes counted so far." }
        }
        section.card {
            h2 { "Burn rates" }
            table.compact {
                thead { tr { th { "Window" } th { "Burn rate" } } }
                tbody { @for b in &s.burn_rates { tr { td { (b.window) } td { (format!("{:.2}", b.rate)) "×" } } } }
            }
        }
    };
    Ok(layout::page(&viewer, Section::Overview, &s.name, body))
}

/// `GET /backups`: every configured backup's snapshots and the history of
/// its backup and verification jobs.
pub(crate) async fn backups(State(state): State<Arc<AppState>>, viewer: Viewer) -> Page {
    let Json(all) = routes::evidence::snapshots(
        State(state.clone()),
        analyst(&viewer),
        Ok(Query(SnapshotQuery { backup: None })),
    )
    .await?;
    let mut history = Vec::new();
    for b in &state.instance.config.backups {
        for job in [format!("backup:{}", b.name), format!("verify:{}", b.name)] {
            let runs = bulwark_ops::run_history(&state.instance.store, &job, 10).await?;
            history.push((job, runs));
        }
    }
    let body = html! {
        @if all.is_empty() { section.card { p.muted { "No backups configured." } } }
        @for b in &all {
            section.card {
                h2 { (b.backup) }
                @if let Some(e) = &b.error { p.error { (e) } }
                p { (b.snapshots.len()) " snapshots" }
                table.compact {
                    thead { tr { th { "Snapshot" } th { "Time" } th { "Size" } th { "Added" } th { "Host" } th { "Paths" } th { "Tags" } } }
                    tbody {
                        @for s in b.snapshots.iter().rev().take(20) {
                            tr { td { code { (s.short_id) } } td { (s.time.format("%Y-%m-%d %H:%M %:z")) }
                                 td { @if let Some(m) = &s.summary { (bytes(m.total_bytes_processed)) " in " (m.total_files_processed) " files" } }
                                 td { @if let Some(m) = &s.summary { (bytes(m.data_added_packed)) } }
                                 td { (s.hostname) } td { (s.paths.join(", ")) } td { (s.tags.join(", ")) } }
                        }
                    }
                }
            }
        }
        @for (job, runs) in &history {
            section.card {
                h2 { "History of " code { (job) } }
                (run_table(runs))
            }
        }
    };
    Ok(layout::page(&viewer, Section::Backups, "Backups", body))
}

fn run_table(runs: &[bulwark_ops::JobRun]) -> Markup {
    html! {
        @if runs.is_empty() { p.muted { "No runs yet." } }
        @else {
            table.compact {
                thead { tr { th { "Started" } th { "Outcome" } th { "Trigger" } th { "By" } th { "Summary" } } }
                tbody {
                    @for r in runs {
                        tr {
                            td { a href={ "/jobs/runs/" (r.id) } { (time(&r.started_at)) } }
                            td { (outcome_badge(r.outcome.as_str())) }
                            td { (r.trigger.as_str()) }
                            td { (r.actor) }
                            td { (r.summary) }
                        }
                    }
                }
            }
        }
    }
}

fn outcome_badge(outcome: &str) -> Markup {
    let class = match outcome {
        "success" => "badge up",
        "running" => "badge unknown",
        _ => "badge down",
    };
    html! { span class=(class) { (outcome) } }
}

/// `GET /drills`: recent drill reports with steps, RTO and RPO.
pub(crate) async fn drills(State(state): State<Arc<AppState>>, viewer: Viewer) -> Page {
    let reports = drill_reports(&state, &viewer, 20).await?;
    let point =
        |d: &DrillReportWire, v: Option<f64>| v.map(|s| (d.started_at.timestamp_millis(), s));
    let rto: Vec<(i64, f64)> = reports
        .iter()
        .rev()
        .filter_map(|d| point(d, d.rto_seconds))
        .collect();
    let rpo: Vec<(i64, f64)> = reports
        .iter()
        .rev()
        .filter_map(|d| point(d, d.rpo_seconds))
        .collect();
    let trend = bulwark_ops::line_chart(&bulwark_ops::LineChart {
        title: "RTO and RPO of recent drills, seconds",
        series: &[
            bulwark_ops::Series {
                name: "RTO (s)",
                points: &rto,
            },
            bulwark_ops::Series {
                name: "RPO (s)",
                points: &rpo,
            },
        ],
        reference: None,
        from_zero: true,
        format: |v| format!("{v:.0} s"),
    });
    let body = html! {
        @if reports.is_empty() { section.card { p.muted { "No drill has run yet." } } }
        @else { section.card { h2 { "RTO and RPO trend" } (svg(trend)) } }
        @for d in &reports {
            section.card {
                (drill_summary(d))
                details {
                    summary { (d.steps.len()) " steps" @if let Some(f) = &d.failed_step { ", failed at " (f) } }
                    ol {
                        @for step in &d.steps {
                            li { @if step.ok { span.badge.up { "ok" } } @else { span.badge.down { "FAIL" } }
                                 " " (step.name) " (" (format!("{:.1}", step.duration_ms as f64 / 1000.0)) " s)"
                                 @if !step.detail.is_empty() { ": " (step.detail) } }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page(&viewer, Section::Drills, "Drills", body))
}

/// `GET /secrets`: ages and next rotations; rotate now for admins.
pub(crate) async fn secrets(State(state): State<Arc<AppState>>, viewer: Viewer) -> Page {
    let list = secrets_of(&state, &viewer).await?;
    let body = html! { section.card { (secret_table(&list, viewer.is_admin())) } };
    Ok(layout::page(&viewer, Section::Secrets, "Secrets", body))
}

/// `GET /jobs`: schedules, next and last runs; run now for admins.
pub(crate) async fn jobs(State(state): State<Arc<AppState>>, viewer: Viewer) -> Page {
    let jobs = jobs_of(&state, &viewer).await?;
    let admin = viewer.is_admin();
    let body = html! {
        section.card {
            @if jobs.is_empty() { p.muted { "No jobs." } }
            @else {
                table {
                    thead { tr { th { "Job" } th { "Schedule" } th { "Next run" } th { "Last run" } @if admin { th { "Action" } } } }
                    tbody {
                        @for j in &jobs {
                            tr {
                                td { code { (j.name) } }
                                td { @match &j.schedule { Some(s) => (s), None => span.muted { "on demand" } } }
                                td { @if let Some(t) = &j.next_run { (time(t)) } }
                                td { @if let Some(r) = &j.last_run { a href={ "/jobs/runs/" (r.id) } { (outcome_badge(r.outcome)) } " " (time(&r.started_at)) " " span.muted { (r.summary) } } }
                                @if admin {
                                    td { button type="button" data-method="POST" data-url={ "/api/v1/jobs/" (j.name) "/run" }
                                         data-confirm={ "Run " (j.name) " now?" } { "Run now" } }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page(&viewer, Section::Jobs, "Jobs", body))
}

/// `GET /jobs/runs/{id}`: one run (what notifications link to), with
/// its progress while it runs and the job's recent history.
pub(crate) async fn job_run(
    State(state): State<Arc<AppState>>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Page {
    let Json(status) =
        routes::jobs::run_status(State(state.clone()), analyst(&viewer), Path(id)).await?;
    let run = &status.run;
    let history = bulwark_ops::run_history(&state.instance.store, &run.job, 10).await?;
    let duration = run
        .finished_at
        .map(|end| age((end - run.started_at).num_seconds().max(0) as u64));
    let body = html! {
        section.card {
            dl.facts {
                dt { "Job" } dd { code { (run.job) } }
                dt { "Outcome" } dd { (outcome_badge(run.outcome)) }
                dt { "Summary" } dd { (run.summary) }
                dt { "Started" } dd { (time(&run.started_at)) " by " (run.actor) " (" (run.trigger) ")" }
                @if let Some(end) = &run.finished_at { dt { "Finished" } dd { (time(end)) @if let Some(d) = &duration { " after " (d) } } }
                @if let Some(p) = &status.progress {
                    dt { "Progress" } dd { (p.phase) ": " (p.files) " files, " (bytes(p.bytes)) " so far (reload to follow)" }
                }
                dt { "Run id" } dd { code { (run.id) } }
            }
        }
        section.card {
            h2 { "Recent runs of " code { (run.job) } }
            (run_table(&history))
        }
    };
    Ok(layout::page(&viewer, Section::Jobs, "Job run", body))
}

/// The audit page's filters, as the form sends them: empty fields are
/// absent filters.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct AuditFilters {
    actor: Option<String>,
    action: Option<String>,
    outcome: Option<String>,
    before: Option<i64>,
}

fn non_empty(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// `GET /audit`: the audit trail, newest first, with filters and paging.
pub(crate) async fn audit(
    State(state): State<Arc<AppState>>,
    viewer: Viewer,
    Query(f): Query<AuditFilters>,
) -> Page {
    let query = AuditQuery {
        actor: non_empty(&f.actor),
        action: non_empty(&f.action),
        outcome: non_empty(&f.outcome),
        since: None,
        until: None,
        before: f.before,
        limit: Some(100),
    };
    let Json(page) =
        routes::audit::list(State(state.clone()), analyst(&viewer), Ok(Query(query))).await?;
    let value = |s: &Option<String>| s.clone().unwrap_or_default();
    let body = html! {
        section.card {
            form.filters method="get" action="/audit" {
                label { "Actor " input name="actor" value=(value(&f.actor)) placeholder="key:ops-bot"; }
                label { "Action " input name="action" value=(value(&f.action)) placeholder="key.*"; }
                label { "Outcome "
                    select name="outcome" {
                        @for o in ["", "success", "failure", "denied"] {
                            option value=(o) selected[f.outcome.as_deref() == Some(o)] { @if o.is_empty() { "any" } @else { (o) } }
                        }
                    }
                }
                button type="submit" { "Filter" }
            }
            table.compact {
                thead { tr { th { "#" } th { "Time" } th { "Actor" } th { "Action" } th { "Target" } th { "Outcome" } } }
                tbody {
                    @for r in &page.records {
                        tr {
                            td { (r.seq) } td { (time(&r.ts)) } td { (r.actor) } td { code { (r.action) } }
                            td { (r.target) } td { (r.outcome) }
                        }
                    }
                }
            }
            @if let Some(before) = page.next_before {
                p { a href={ "/audit?actor=" (urlencode(&value(&f.actor))) "&action=" (urlencode(&value(&f.action)))
                        "&outcome=" (urlencode(&value(&f.outcome))) "&before=" (before) } { "Older records" } }
            }
        }
    };
    Ok(layout::page(&viewer, Section::Audit, "Audit trail", body))
}

/// Percent-encodes a query value (everything but unreserved characters).
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
