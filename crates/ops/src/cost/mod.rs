//! Storage cost: what each `[[backup]]`'s repositories (`repo` and every
//! copy in `repos`) occupy per storage class, priced per GB-month, against
//! a monthly threshold.
//!
//! The `cost` job ([`job`]) lists every repository (one listing each,
//! [`bulwark_repo::usage`]; no password, nothing decrypted) and keeps the
//! result in the store ([`store`]: `storage_measurements`,
//! `storage_usage`); it raises `StorageCostHigh` for a backup whose monthly
//! cost is above its threshold and resolves it once back under. Readers
//! (metrics, `ops check`, the monthly report) call [`status`], which reads
//! that cache and never lists a store.
//!
//! Pricing is pure ([`evaluate`], [`monthly_cost`]): bytes × price per
//! GB-month / 10^9 — a GB is 10^9 bytes, as AWS, Azure and Google bill —
//! each class's amount rounded to a millionth of the currency unit so
//! that a threshold compares as written. A class found in a listing with
//! no price is counted, priced 0 and named as unpriced, never dropped.

pub(crate) mod config;
pub mod job;
pub(crate) mod store;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use crate::config::{BackupConfig, Config};
use crate::store::{Store, StoreError};
use crate::time::Timestamp;

pub use job::job;
pub use store::Measurement;

/// Bytes in the GB storage is billed by.
pub const BYTES_PER_GB: f64 = 1e9;

/// The alert a backup above its threshold raises.
pub const ALERT_NAME: &str = "StorageCostHigh";

/// Prices and threshold that apply to one backup: `[cost]`'s, with the
/// backup's own `cost = {...}` replacing the classes it names.
#[derive(Debug, Clone, PartialEq)]
pub struct Pricing {
    pub prices: BTreeMap<String, f64>,
    pub monthly_threshold: Option<f64>,
    pub currency: String,
}

impl Pricing {
    pub fn for_backup(config: &Config, backup: &BackupConfig) -> Pricing {
        let mut prices = config.cost.prices.clone();
        for (class, price) in &backup.cost.prices {
            prices.retain(|k, _| !k.eq_ignore_ascii_case(class));
            prices.insert(class.clone(), *price);
        }
        Pricing {
            prices,
            monthly_threshold: backup
                .cost
                .monthly_threshold
                .or(config.cost.monthly_threshold),
            currency: config.cost.currency.clone(),
        }
    }

    /// The price of `class`: the exact spelling, else the one differing
    /// only in case (`Cool` priced as `COOL`).
    pub fn price(&self, class: &str) -> Option<f64> {
        self.prices.get(class).copied().or_else(|| {
            self.prices
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(class))
                .map(|(_, p)| *p)
        })
    }
}

/// A money amount rounded to a millionth: float noise (0.1 + 0.2) never
/// decides a threshold.
pub fn round_amount(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// What `bytes` cost per month at `price` per GB-month.
pub fn monthly_cost(bytes: u64, price: f64) -> f64 {
    round_amount(bytes as f64 * price / BYTES_PER_GB)
}

/// Whether `cost` is above `threshold` (equal is not above).
pub fn over_threshold(cost: f64, threshold: Option<f64>) -> bool {
    threshold.is_some_and(|t| round_amount(cost) > round_amount(t))
}

/// `12.35 USD`; an amount above 0 that rounds to nothing shows as
/// `<0.01 USD`, so a priced repository never reads as free.
pub fn format_amount(amount: f64, currency: &str) -> String {
    if amount > 0.0 && amount < 0.005 {
        format!("<0.01 {currency}")
    } else {
        format!("{amount:.2} {currency}")
    }
}

/// A size in decimal units, as storage is billed: `950 B`, `11.55 kB`,
/// `3.00 MB`, `4.01 GB`, `1.20 TB`.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut x = bytes as f64 / 1000.0;
    let mut unit = 0;
    while x >= 1000.0 && unit + 1 < UNITS.len() {
        x /= 1000.0;
        unit += 1;
    }
    format!("{x:.2} {}", UNITS[unit])
}

/// One storage class of one repository, priced.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassCost {
    pub class: String,
    pub objects: u64,
    pub bytes: u64,
    /// None: no price configured (counted at 0).
    pub price: Option<f64>,
    pub monthly: f64,
}

/// One repository of a backup, as last listed.
#[derive(Debug, Clone, PartialEq)]
pub struct RepositoryCost {
    /// The location without credentials ([`repository_label`]).
    pub repository: String,
    /// The last successful listing; None: never listed.
    pub measured_at: Option<Timestamp>,
    /// Why the latest attempt failed, when it did.
    pub error: Option<String>,
    /// Classes assumed from the write settings (Azure, GCS).
    pub assumed: bool,
    pub classes: Vec<ClassCost>,
    pub bytes: u64,
    pub monthly: f64,
    /// Classes with bytes and no price.
    pub unpriced: Vec<String>,
}

/// A backup's storage cost: every repository it writes.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupCost {
    pub backup: String,
    pub currency: String,
    pub monthly_threshold: Option<f64>,
    pub repositories: Vec<RepositoryCost>,
    pub bytes: u64,
    pub monthly: f64,
    /// Above the threshold.
    pub over: bool,
}

impl BackupCost {
    /// No repository of it was ever listed.
    pub fn never_measured(&self) -> bool {
        self.repositories.iter().all(|r| r.measured_at.is_none())
    }

    /// Every class without a price, once.
    pub fn unpriced(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .repositories
            .iter()
            .flat_map(|r| r.unpriced.iter().cloned())
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// A repository string as shown in metrics, tables and reports: the
/// location as Bulwark reads it, an S3 endpoint cut to its origin (no
/// user info).
pub fn repository_label(repo: &str) -> String {
    match bulwark_repo::Location::parse(repo) {
        Ok(bulwark_repo::Location::S3 {
            endpoint: Some(e),
            bucket,
            prefix,
        }) => bulwark_repo::Location::S3 {
            endpoint: Some(crate::redact::url_origin(&e)),
            bucket,
            prefix,
        }
        .to_string(),
        Ok(l) => l.to_string(),
        Err(_) => crate::redact::urls_in(repo),
    }
}

/// The repositories of a backup: `repo`, then each copy.
pub fn repositories(backup: &BackupConfig) -> Vec<&str> {
    std::iter::once(backup.repo.as_str())
        .chain(backup.copies.iter().map(String::as_str))
        .collect()
}

/// Prices one repository's listing.
pub fn price_repository(
    repository: &str,
    measurement: Option<&Measurement>,
    pricing: &Pricing,
) -> RepositoryCost {
    let mut out = RepositoryCost {
        repository: repository_label(repository),
        measured_at: None,
        error: None,
        assumed: false,
        classes: Vec::new(),
        bytes: 0,
        monthly: 0.0,
        unpriced: Vec::new(),
    };
    let Some(m) = measurement else {
        return out;
    };
    out.measured_at = m.measured_at;
    out.error = m.error.clone();
    out.assumed = m.assumed;
    for (class, usage) in &m.by_class {
        let price = pricing.price(class);
        if price.is_none() && usage.bytes > 0 {
            out.unpriced.push(class.clone());
        }
        let monthly = monthly_cost(usage.bytes, price.unwrap_or(0.0));
        out.bytes += usage.bytes;
        out.monthly = round_amount(out.monthly + monthly);
        out.classes.push(ClassCost {
            class: class.clone(),
            objects: usage.objects,
            bytes: usage.bytes,
            price,
            monthly,
        });
    }
    out
}

/// Every configured backup's cost from the cached measurements (pure).
/// Empty when cost is not configured.
pub fn evaluate(config: &Config, measurements: &[Measurement]) -> Vec<BackupCost> {
    if !config.cost.enabled {
        return Vec::new();
    }
    config
        .backups
        .iter()
        .map(|b| {
            let pricing = Pricing::for_backup(config, b);
            let repositories: Vec<RepositoryCost> = repositories(b)
                .into_iter()
                .map(|repo| {
                    let m = measurements
                        .iter()
                        .find(|m| m.backup == b.name && m.repository == repo);
                    price_repository(repo, m, &pricing)
                })
                .collect();
            let monthly = round_amount(repositories.iter().map(|r| r.monthly).sum());
            BackupCost {
                backup: b.name.clone(),
                currency: pricing.currency.clone(),
                monthly_threshold: pricing.monthly_threshold,
                bytes: repositories.iter().map(|r| r.bytes).sum(),
                over: over_threshold(monthly, pricing.monthly_threshold),
                monthly,
                repositories,
            }
        })
        .collect()
}

/// `evaluate` over the store's cache.
///
/// # Errors
/// On a database error.
pub async fn status(store: &Store, config: &Config) -> Result<Vec<BackupCost>, StoreError> {
    if !config.cost.enabled {
        return Ok(Vec::new());
    }
    let measurements = store::measurements(store).await?;
    Ok(evaluate(config, &measurements))
}
