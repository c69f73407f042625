//! Prometheus metrics of the monitoring engine: per-monitor up and latency,
//! per-SLO budget and burn rates. The engine reports through the
//! [`Observer`] trait so `ops` stays free of Prometheus.

use std::sync::Arc;

use bulwark_ops::{Observer, ProbeResult, ShipObserver, SloStatus};
use prometheus::{GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts};

use crate::metrics::Metrics;

struct MonitoringMetrics {
    up: IntGaugeVec,
    latency: HistogramVec,
    budget_remaining: GaugeVec,
    attainment: GaugeVec,
    burn_rate: GaugeVec,
}

impl Observer for MonitoringMetrics {
    fn probe(&self, result: &ProbeResult, up: bool) {
        self.up
            .with_label_values(&[&result.monitor])
            .set(i64::from(up));
        self.latency
            .with_label_values(&[&result.monitor])
            .observe(result.latency.as_secs_f64());
    }

    fn slo(&self, s: &SloStatus) {
        self.budget_remaining
            .with_label_values(&[&s.name])
            .set(s.budget_remaining);
        self.attainment
            .with_label_values(&[&s.name])
            .set(s.attainment);
        for (window, rate) in &s.burn_rates {
            self.burn_rate
                .with_label_values(&[&s.name, window])
                .set(*rate);
        }
    }
}

/// Registers the monitoring metrics on `metrics` and returns the observer
/// to hand to the engine.
pub fn monitoring_observer(metrics: &Metrics) -> Arc<dyn Observer> {
    let up = IntGaugeVec::new(
        Opts::new(
            "bulwark_monitor_up",
            "1 when the monitor is up (no open incident), else 0",
        ),
        &["monitor"],
    )
    .expect("static metric definition");
    let latency = HistogramVec::new(
        HistogramOpts::new(
            "bulwark_probe_duration_seconds",
            "Probe latency, by monitor",
        )
        .buckets(vec![
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ]),
        &["monitor"],
    )
    .expect("static metric definition");
    let budget_remaining = GaugeVec::new(
        Opts::new(
            "bulwark_slo_error_budget_remaining",
            "Share of the error budget left (0 to 1)",
        ),
        &["slo"],
    )
    .expect("static metric definition");
    let attainment = GaugeVec::new(
        Opts::new(
            "bulwark_slo_attainment",
            "Share of good probes in the SLO window",
        ),
        &["slo"],
    )
    .expect("static metric definition");
    let burn_rate = GaugeVec::new(
        Opts::new("bulwark_slo_burn_rate", "Error budget burn rate, by window"),
        &["slo", "window"],
    )
    .expect("static metric definition");
    let registry = metrics.registry();
    for c in [
        Box::new(up.clone()) as Box<dyn prometheus::core::Collector>,
        Box::new(latency.clone()),
        Box::new(budget_remaining.clone()),
        Box::new(attainment.clone()),
        Box::new(burn_rate.clone()),
    ] {
        // Only fails when called twice on one registry; the metrics then
        // already exist, so there is nothing to add.
        if let Err(e) = registry.register(c) {
            tracing::warn!(error = %e, "monitoring metrics already registered");
        }
    }
    Arc::new(MonitoringMetrics {
        up,
        latency,
        budget_remaining,
        attainment,
        burn_rate,
    })
}

/// Per-sink metrics of the event export.
struct ShipMetrics {
    shipped: IntCounterVec,
    failures: IntCounterVec,
    dropped: IntCounterVec,
    lag: IntGaugeVec,
}

impl ShipObserver for ShipMetrics {
    fn shipped(&self, sink: &str, sent: usize, lag: i64) {
        self.shipped
            .with_label_values(&[sink])
            .inc_by(u64::try_from(sent).unwrap_or(0));
        self.lag.with_label_values(&[sink]).set(lag);
    }

    fn failed(&self, sink: &str) {
        self.failures.with_label_values(&[sink]).inc();
    }

    fn dropped(&self, sink: &str, n: usize) {
        self.dropped
            .with_label_values(&[sink])
            .inc_by(u64::try_from(n).unwrap_or(0));
    }
}

/// Registers the event export's metrics on `metrics` (events shipped,
/// failed batches, events skipped as too large, lag = newest event -
/// cursor, per sink) and returns the
/// observer to hand to the shippers.
pub fn events_observer(metrics: &Metrics) -> Arc<dyn ShipObserver> {
    let shipped = IntCounterVec::new(
        Opts::new(
            "bulwark_events_shipped_total",
            "Events a sink confirmed, by sink",
        ),
        &["sink"],
    )
    .expect("static metric definition");
    let failures = IntCounterVec::new(
        Opts::new(
            "bulwark_events_ship_failures_total",
            "Batches a sink did not confirm (retried), by sink",
        ),
        &["sink"],
    )
    .expect("static metric definition");
    let dropped = IntCounterVec::new(
        Opts::new(
            "bulwark_events_dropped_total",
            "Events skipped because the sink refused each alone as too large (HTTP 413), by sink",
        ),
        &["sink"],
    )
    .expect("static metric definition");
    let lag = IntGaugeVec::new(
        Opts::new(
            "bulwark_events_lag",
            "Events not yet confirmed by the sink (newest seq - cursor)",
        ),
        &["sink"],
    )
    .expect("static metric definition");
    let registry = metrics.registry();
    for c in [
        Box::new(shipped.clone()) as Box<dyn prometheus::core::Collector>,
        Box::new(failures.clone()),
        Box::new(dropped.clone()),
        Box::new(lag.clone()),
    ] {
        if let Err(e) = registry.register(c) {
            tracing::warn!(error = %e, "event export metrics already registered");
        }
    }
    Arc::new(ShipMetrics {
        shipped,
        failures,
        dropped,
        lag,
    })
}
