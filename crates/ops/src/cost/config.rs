//! `[cost]` and `[[backup]] cost`.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml_edit::Table;

use crate::config::cx::*;
use crate::config::raw::Sp;
use crate::config::*;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct CostRaw {
    pub(crate) prices: Option<BTreeMap<String, Sp<f64>>>,
    pub(crate) currency: Option<Sp<String>>,
    pub(crate) monthly_threshold: Option<Sp<f64>>,
    pub(crate) interval: Option<Sp<String>>,
}

/// `[[backup]] cost = { ... }`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct BackupCostRaw {
    pub(crate) prices: Option<BTreeMap<String, Sp<f64>>>,
    pub(crate) monthly_threshold: Option<Sp<f64>>,
}

/// The shortest `[cost] interval`: every listing of a large bucket is
/// thousands of requests, which the stores bill too.
const MIN_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

pub(crate) fn compile_cost(cx: &mut Cx<'_>, root: &Table) -> CostConfig {
    let mut cost = CostConfig::default();
    let Some(item) = root.get("cost") else {
        return cost;
    };
    cost.enabled = true;
    let span = root.get_key_value("cost").and_then(|(k, _)| k.span());
    let Some(raw) = cx.de_item::<CostRaw>(item, "cost", span) else {
        return cost;
    };
    cost.prices = prices(cx, raw.prices.as_ref(), "cost");
    if let Some(v) = &raw.currency {
        let c = v.get_ref().trim();
        if c.is_empty() || c.len() > 16 || !c.chars().all(|ch| ch.is_ascii_graphic()) {
            cx.error(
                Some(v.span()),
                "cost.currency",
                "must be a short label such as \"USD\" or \"EUR\"",
            );
        } else {
            cost.currency = c.to_string();
        }
    }
    cost.monthly_threshold = amount(cx, raw.monthly_threshold.as_ref(), "cost.monthly_threshold");
    if let Some(d) = cx.duration(
        &raw.interval,
        "cost.interval".to_string(),
        DEFAULT_COST_INTERVAL,
        MIN_INTERVAL,
    ) {
        cost.interval = d;
    }
    cost
}

/// The `cost` field of `[[backup]]` at `path` (`backup[0]`).
pub(crate) fn compile_backup_cost(
    cx: &mut Cx<'_>,
    raw: Option<&BackupCostRaw>,
    path: &str,
) -> BackupCostConfig {
    let Some(raw) = raw else {
        return BackupCostConfig::default();
    };
    BackupCostConfig {
        prices: prices(cx, raw.prices.as_ref(), &format!("{path}.cost")),
        monthly_threshold: amount(
            cx,
            raw.monthly_threshold.as_ref(),
            &format!("{path}.cost.monthly_threshold"),
        ),
    }
}

/// A money amount: finite and not negative.
fn amount(cx: &mut Cx<'_>, v: Option<&Sp<f64>>, field: &str) -> Option<f64> {
    let v = v?;
    let x = *v.get_ref();
    if x.is_finite() && x >= 0.0 {
        Some(x)
    } else {
        cx.error(
            Some(v.span()),
            field,
            "must be a number of at least 0 (per month, in `cost.currency`)",
        );
        None
    }
}

/// `prices = { CLASS = price per GB-month }`: class names as stores spell
/// them, matched without regard to case, so two spellings of one class
/// are an error rather than a silent choice.
fn prices(
    cx: &mut Cx<'_>,
    raw: Option<&BTreeMap<String, Sp<f64>>>,
    base: &str,
) -> BTreeMap<String, f64> {
    let mut out: BTreeMap<String, f64> = BTreeMap::new();
    for (class, price) in raw.into_iter().flatten() {
        let field = format!("{base}.prices.{class}");
        let valid_name = !class.is_empty()
            && class.len() <= 64
            && class
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid_name {
            cx.error(
                Some(price.span()),
                field,
                "a storage class is letters, digits, `_` and `-` (as the store spells it: STANDARD_IA, Cool, local)",
            );
            continue;
        }
        if let Some(other) = out.keys().find(|k| k.eq_ignore_ascii_case(class)) {
            let msg = format!(
                "the class {other} is priced twice (classes are matched without regard to case)"
            );
            cx.error(Some(price.span()), field, msg);
            continue;
        }
        let x = *price.get_ref();
        if !(x.is_finite() && x >= 0.0) {
            cx.error(
                Some(price.span()),
                field,
                "must be a price of at least 0 per GB-month",
            );
            continue;
        }
        out.insert(class.clone(), x);
    }
    out
}
