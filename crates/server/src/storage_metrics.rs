//! Storage cost as Prometheus gauges, set from the `cost` job's cache
//! (`bulwark_ops::cost_status`) at each scrape: a scrape reads two small
//! tables and never lists a store.

use bulwark_ops::BackupCost;
use prometheus::{GaugeVec, Opts, Registry};

/// `bulwark_storage_*`. Repository labels are locations without
/// credentials (`cost::repository_label`).
#[derive(Clone)]
pub(crate) struct StorageMetrics {
    bytes: GaugeVec,
    objects: GaugeVec,
    monthly_cost: GaugeVec,
    threshold: GaugeVec,
    listed: GaugeVec,
}

fn gauge(name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    GaugeVec::new(Opts::new(name, help), labels).expect("static metric definition")
}

impl StorageMetrics {
    pub(crate) fn register(registry: &Registry) -> StorageMetrics {
        let m = StorageMetrics {
            bytes: gauge(
                "bulwark_storage_bytes",
                "Bytes a backup's repository holds, by storage class, as last listed",
                &["backup", "repository", "class"],
            ),
            objects: gauge(
                "bulwark_storage_objects",
                "Objects (files) a backup's repository holds, by storage class, as last listed",
                &["backup", "repository", "class"],
            ),
            monthly_cost: gauge(
                "bulwark_storage_monthly_cost",
                "Monthly storage cost of a backup's repository at the configured prices (GB = 1e9 bytes)",
                &["backup", "repository"],
            ),
            threshold: gauge(
                "bulwark_storage_cost_threshold",
                "Monthly storage cost above which a backup raises StorageCostHigh",
                &["backup"],
            ),
            listed: gauge(
                "bulwark_storage_last_listed_timestamp_seconds",
                "When the repository was last listed successfully (Unix time)",
                &["backup", "repository"],
            ),
        };
        for c in [
            &m.bytes,
            &m.objects,
            &m.monthly_cost,
            &m.threshold,
            &m.listed,
        ] {
            if let Err(e) = registry.register(Box::new(c.clone())) {
                tracing::warn!(error = %e, "storage metrics already registered");
            }
        }
        m
    }

    /// Replaces every value with `costs` (a backup or repository gone
    /// from the config disappears from the output).
    pub(crate) fn set(&self, costs: &[BackupCost]) {
        for g in [
            &self.bytes,
            &self.objects,
            &self.monthly_cost,
            &self.threshold,
            &self.listed,
        ] {
            g.reset();
        }
        for c in costs {
            if let Some(t) = c.monthly_threshold {
                self.threshold.with_label_values(&[&c.backup]).set(t);
            }
            for r in &c.repositories {
                let Some(at) = r.measured_at else {
                    continue;
                };
                let labels = [c.backup.as_str(), r.repository.as_str()];
                self.listed
                    .with_label_values(&labels)
                    .set(at.as_millis() as f64 / 1000.0);
                self.monthly_cost.with_label_values(&labels).set(r.monthly);
                for k in &r.classes {
                    let labels = [c.backup.as_str(), r.repository.as_str(), k.class.as_str()];
                    self.bytes.with_label_values(&labels).set(k.bytes as f64);
                    self.objects
                        .with_label_values(&labels)
                        .set(k.objects as f64);
                }
            }
        }
    }
}
