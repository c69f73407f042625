//! The report's JSON document: what `bulwark report --format json` prints,
//! `GET /api/v1/reports/{period}` serves and the `report` job archives as
//! `reports/report_YYYY-MM.json`.
//!
//! It is a rendering like the Markdown and HTML ones, so it lives beside
//! them and not in the server: the scheduled job writes it from `ops`. The
//! domain types in [`super`] stay free to change; these structs are the
//! promise, versioned by `schema`. A field is only ever added; a change of
//! meaning bumps [`REPORT_SCHEMA`].
//!
//! With the `openapi` feature (the server turns it on) they also describe
//! themselves to the OpenAPI document, so the route's schema is the type it
//! actually serves.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::{Serialize, Serializer};

use super::{
    DayUptime, DrillRow, IncidentRow, JobSummary, MonitorUptime, Report, RotationRow, SloSummary,
    StorageClassRow, StorageRow,
};

/// The version of [`ReportDocument`]'s shape.
pub(crate) const REPORT_SCHEMA: u32 = 1;

/// Times as everywhere else on Bulwark's wire: RFC 3339, milliseconds, `Z`
/// (chrono's own form varies from none to nine fraction digits).
fn millis<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

fn millis_or_null<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => millis(t, s),
        None => s.serialize_none(),
    }
}

/// The monthly reliability evidence report.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReportDocument {
    /// The version of this document's shape: 1.
    schema: u32,
    /// The month, `YYYY-MM` (UTC).
    period: String,
    #[serde(serialize_with = "millis")]
    from: DateTime<Utc>,
    /// Exclusive: the first instant of the next month.
    #[serde(serialize_with = "millis")]
    to: DateTime<Utc>,
    #[serde(serialize_with = "millis")]
    generated_at: DateTime<Utc>,
    monitors: Vec<MonitorUptimeDoc>,
    slos: Vec<SloSummaryDoc>,
    incidents: Vec<IncidentDoc>,
    /// `backup:NAME` runs per backup.
    backups: Vec<JobSummaryDoc>,
    /// `verify:NAME` runs per backup.
    verifications: Vec<JobSummaryDoc>,
    drills: Vec<DrillDoc>,
    rotations: Vec<RotationDoc>,
    /// Storage cost per repository as last listed, when cost is configured.
    storage: Vec<StorageDoc>,
}

/// One monitor's month.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct MonitorUptimeDoc {
    monitor: String,
    total: u64,
    failures: u64,
    /// Share of good probes; null without measurements.
    uptime: Option<f64>,
    /// The strictest SLO target set on this monitor: its SLA.
    sla_target: Option<f64>,
    sla_met: Option<bool>,
    incidents: usize,
    /// Incident time inside the month.
    downtime_seconds: i64,
    daily: Vec<DayUptimeDoc>,
}

/// One day of one monitor.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct DayUptimeDoc {
    date: NaiveDate,
    total: u64,
    failures: u64,
    /// Null when nothing was measured that day.
    uptime: Option<f64>,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct SloSummaryDoc {
    slo: String,
    monitor: String,
    target: f64,
    total: u64,
    bad: u64,
    attainment: f64,
    budget_total: f64,
    /// Share of the budget spent; the largest finite number when failures
    /// met a budget of zero.
    budget_consumed: f64,
    budget_remaining: f64,
    met: bool,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct IncidentDoc {
    id: String,
    monitor: String,
    #[serde(serialize_with = "millis")]
    opened_at: DateTime<Utc>,
    #[serde(serialize_with = "millis_or_null")]
    resolved_at: Option<DateTime<Utc>>,
    /// From opening to resolution (or to the report's end while open).
    duration_seconds: i64,
    cause: String,
}

/// The runs of one job (`backup:NAME` or `verify:NAME`) in the month.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct JobSummaryDoc {
    backup: String,
    runs: u64,
    successes: u64,
    failures: u64,
    last_outcome: Option<String>,
    #[serde(serialize_with = "millis_or_null")]
    last_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct DrillDoc {
    drill: String,
    #[serde(serialize_with = "millis_or_null")]
    started_at: Option<DateTime<Utc>>,
    passed: bool,
    failed_step: Option<String>,
    rto_seconds: Option<f64>,
    rto_target_seconds: Option<u64>,
    rto_met: Option<bool>,
    rpo_seconds: Option<f64>,
    rpo_target_seconds: Option<u64>,
    rpo_met: Option<bool>,
}

/// A rotation: name, version, when and who; never the value.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct RotationDoc {
    secret: String,
    version: Option<i64>,
    #[serde(serialize_with = "millis")]
    at: DateTime<Utc>,
    actor: String,
}

/// One repository of a backup, as the `cost` job last listed it.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct StorageDoc {
    backup: String,
    repository: String,
    #[serde(serialize_with = "millis_or_null")]
    listed_at: Option<DateTime<Utc>>,
    bytes: u64,
    classes: Vec<StorageClassDoc>,
    monthly_cost: f64,
    currency: String,
    /// The backup's threshold (it covers all of its repositories).
    monthly_threshold: Option<f64>,
    /// The backup, all repositories together, is above it.
    over_threshold: bool,
    /// Storage classes seen without a configured price.
    unpriced: Vec<String>,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct StorageClassDoc {
    class: String,
    objects: u64,
    bytes: u64,
    /// Per GB-month; null when no price is configured (counted as 0).
    price: Option<f64>,
    monthly_cost: f64,
}

impl From<&Report> for ReportDocument {
    fn from(r: &Report) -> ReportDocument {
        ReportDocument {
            schema: REPORT_SCHEMA,
            period: r.period.clone(),
            from: r.from,
            to: r.to,
            generated_at: r.generated_at,
            monitors: r.monitors.iter().map(Into::into).collect(),
            slos: r.slos.iter().map(Into::into).collect(),
            incidents: r.incidents.iter().map(Into::into).collect(),
            backups: r.backups.iter().map(Into::into).collect(),
            verifications: r.verifications.iter().map(Into::into).collect(),
            drills: r.drills.iter().map(Into::into).collect(),
            rotations: r.rotations.iter().map(Into::into).collect(),
            storage: r.storage.iter().map(Into::into).collect(),
        }
    }
}

impl From<&MonitorUptime> for MonitorUptimeDoc {
    fn from(m: &MonitorUptime) -> MonitorUptimeDoc {
        MonitorUptimeDoc {
            monitor: m.monitor.clone(),
            total: m.total,
            failures: m.failures,
            uptime: m.uptime,
            sla_target: m.sla_target,
            sla_met: m.sla_met,
            incidents: m.incidents,
            downtime_seconds: m.downtime_seconds,
            daily: m.daily.iter().map(Into::into).collect(),
        }
    }
}

impl From<&DayUptime> for DayUptimeDoc {
    fn from(d: &DayUptime) -> DayUptimeDoc {
        DayUptimeDoc {
            date: d.date,
            total: d.total,
            failures: d.failures,
            uptime: d.uptime,
        }
    }
}

impl From<&SloSummary> for SloSummaryDoc {
    fn from(s: &SloSummary) -> SloSummaryDoc {
        SloSummaryDoc {
            slo: s.slo.clone(),
            monitor: s.monitor.clone(),
            target: s.target,
            total: s.total,
            bad: s.bad,
            attainment: s.attainment,
            budget_total: s.budget_total,
            budget_consumed: s.budget_consumed,
            budget_remaining: s.budget_remaining,
            met: s.met,
        }
    }
}

impl From<&IncidentRow> for IncidentDoc {
    fn from(i: &IncidentRow) -> IncidentDoc {
        IncidentDoc {
            id: i.id.clone(),
            monitor: i.monitor.clone(),
            opened_at: i.opened_at,
            resolved_at: i.resolved_at,
            duration_seconds: i.duration_seconds,
            cause: i.cause.clone(),
        }
    }
}

impl From<&JobSummary> for JobSummaryDoc {
    fn from(j: &JobSummary) -> JobSummaryDoc {
        JobSummaryDoc {
            backup: j.backup.clone(),
            runs: j.runs,
            successes: j.successes,
            failures: j.failures,
            last_outcome: j.last_outcome.clone(),
            last_at: j.last_at,
        }
    }
}

impl From<&DrillRow> for DrillDoc {
    fn from(d: &DrillRow) -> DrillDoc {
        DrillDoc {
            drill: d.drill.clone(),
            started_at: d.started_at,
            passed: d.passed,
            failed_step: d.failed_step.clone(),
            rto_seconds: d.rto_seconds,
            rto_target_seconds: d.rto_target_seconds,
            rto_met: d.rto_met,
            rpo_seconds: d.rpo_seconds,
            rpo_target_seconds: d.rpo_target_seconds,
            rpo_met: d.rpo_met,
        }
    }
}

impl From<&RotationRow> for RotationDoc {
    fn from(r: &RotationRow) -> RotationDoc {
        RotationDoc {
            secret: r.secret.clone(),
            version: r.version,
            at: r.at,
            actor: r.actor.clone(),
        }
    }
}

impl From<&StorageRow> for StorageDoc {
    fn from(s: &StorageRow) -> StorageDoc {
        StorageDoc {
            backup: s.backup.clone(),
            repository: s.repository.clone(),
            listed_at: s.listed_at,
            bytes: s.bytes,
            classes: s.classes.iter().map(Into::into).collect(),
            monthly_cost: s.monthly_cost,
            currency: s.currency.clone(),
            monthly_threshold: s.monthly_threshold,
            over_threshold: s.over_threshold,
            unpriced: s.unpriced.clone(),
        }
    }
}

impl From<&StorageClassRow> for StorageClassDoc {
    fn from(c: &StorageClassRow) -> StorageClassDoc {
        StorageClassDoc {
            class: c.class.clone(),
            objects: c.objects,
            bytes: c.bytes,
            price: c.price,
            monthly_cost: c.monthly_cost,
        }
    }
}
