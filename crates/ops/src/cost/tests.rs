use std::path::Path;

use super::*;
use crate::config::{Diagnostic, Severity};
use crate::cost::store::ClassBytes;

fn parse(text: &str) -> Result<Config, Vec<Diagnostic>> {
    crate::settings::parse(text, Some(Path::new("bulwark.toml")), &|_| None)
        .map(|l| l.config)
        .map_err(|e| e.diagnostics)
}

/// Asserts the exact errors: (line, field, part of the message).
fn check(input: &str, expected: &[(usize, &str, &str)]) {
    let errors: Vec<Diagnostic> = match parse(input) {
        Ok(_) => Vec::new(),
        Err(d) => d
            .into_iter()
            .filter(|d| d.severity == Severity::Error)
            .collect(),
    };
    let shown = errors
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(
        errors.len(),
        expected.len(),
        "input:\n{input}\nerrors:\n{shown}"
    );
    for (line, field, message) in expected {
        assert!(
            errors.iter().any(|d| d.line.unwrap_or(0) == *line
                && d.field == *field
                && d.message.contains(message)),
            "expected {line}: {field}: ...{message}... in:\n{shown}"
        );
    }
}

const BACKUP: &str = r#"
[[backup]]
name = "app"
repo = "/srv/repo"
paths = ["/srv/app"]
repos = ["s3:http://user:pw@127.0.0.1:9/b/app"]
"#;

#[test]
fn config_errors_name_line_and_field() {
    check(
        &format!(
            r#"[cost]
prices = {{ STANDARD = 0.023, standard = 0.02, "GLACIER IR" = 0.004, STANDARD_IA = -1.0 }}
currency = ""
monthly_threshold = -5
interval = "10s"
{BACKUP}cost = {{ monthly_threshold = nan, prices = {{ local = 0 }} }}
"#
        ),
        &[
            (2, "cost.prices.standard", "priced twice"),
            (2, "cost.prices.GLACIER IR", "a storage class is"),
            (2, "cost.prices.STANDARD_IA", "at least 0"),
            (3, "cost.currency", "short label"),
            (4, "cost.monthly_threshold", "at least 0"),
            (5, "cost.interval", "at least"),
            (12, "backup[0].cost.monthly_threshold", "at least 0"),
        ],
    );
    check("[cost]\nprice = 1\n", &[(2, "cost.price", "unknown field")]);
    check(
        &format!("{BACKUP}cost = {{ currency = \"EUR\" }}\n"),
        &[(7, "backup[0].cost.currency", "unknown field")],
    );
}

#[test]
fn cost_is_off_unless_configured_and_backups_override_prices() {
    let c = parse(BACKUP).unwrap();
    assert!(!c.cost.enabled);
    assert!(evaluate(&c, &[]).is_empty());
    assert!(job(&std::sync::Arc::new(c), &dummy_store()).is_none());

    let c = parse(&format!("{BACKUP}cost = {{ monthly_threshold = 3 }}\n")).unwrap();
    assert!(c.cost.enabled, "a backup's cost alone turns it on");
    assert_eq!(c.cost.interval, crate::config::DEFAULT_COST_INTERVAL);

    let c = parse(&format!(
        "[cost]\nprices = {{ STANDARD = 0.023, STANDARD_IA = 0.0125 }}\nmonthly_threshold = 10\ncurrency = \"EUR\"\ninterval = \"15m\"\n{BACKUP}cost = {{ prices = {{ standard_ia = 0.01, local = 0.05 }}, monthly_threshold = 2.5 }}\n"
    ))
    .unwrap();
    let p = Pricing::for_backup(&c, &c.backups[0]);
    assert_eq!(p.price("STANDARD"), Some(0.023));
    // The backup's spelling replaces `[cost]`'s, whatever the case.
    assert_eq!(p.price("STANDARD_IA"), Some(0.01));
    assert_eq!(p.prices.len(), 3);
    assert_eq!(p.price("LOCAL"), Some(0.05));
    assert_eq!(p.price("GLACIER"), None);
    assert_eq!(p.monthly_threshold, Some(2.5));
    assert_eq!(p.currency, "EUR");
    assert_eq!(c.cost.interval.as_secs(), 900);
}

/// A store that is never used: `job` only needs one to build the task.
fn dummy_store() -> Store {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(Store::open(None, dir.path())).unwrap()
}

#[test]
fn arithmetic_is_bytes_times_price_over_a_decimal_gb() {
    for (bytes, price, want) in [
        (1_000_000_000u64, 0.023, 0.023),
        (0, 0.023, 0.0),
        (1_500_000_000, 0.0125, 0.01875),
        // 1 TB in Deep Archive.
        (1_000_000_000_000, 0.00099, 0.99),
        // A GiB is more than a GB.
        (1 << 30, 1.0, 1.073742),
        // Rounded to a millionth: 123 bytes of STANDARD is nothing.
        (123, 0.023, 0.0),
        (u64::MAX, 0.0, 0.0),
    ] {
        assert_eq!(monthly_cost(bytes, price), want, "{bytes} bytes at {price}");
    }
    assert_eq!(round_amount(0.1 + 0.2), 0.3);
    for (bytes, want) in [
        (0, "0 B"),
        (999, "999 B"),
        (11_550, "11.55 kB"),
        (3_000_000, "3.00 MB"),
        (4_012_550_000, "4.01 GB"),
        (u64::MAX, "18446.74 PB"),
    ] {
        assert_eq!(format_bytes(bytes), want);
    }
    for (amount, want) in [
        (0.0, "0.00 USD"),
        (0.004, "<0.01 USD"),
        (0.005, "0.01 USD"),
        (12.345_678, "12.35 USD"),
        (1234.5, "1234.50 USD"),
    ] {
        assert_eq!(format_amount(amount, "USD"), want);
    }
}

#[test]
fn threshold_edges() {
    for (cost, threshold, over) in [
        (10.0, Some(10.0), false),
        (10.000_001, Some(10.0), true),
        // Float noise below a millionth does not cross it.
        (10.000_000_4, Some(10.0), false),
        (0.1 + 0.2, Some(0.3), false),
        (0.0, Some(0.0), false),
        (0.01, Some(0.0), true),
        (1e9, None, false),
    ] {
        assert_eq!(
            over_threshold(cost, threshold),
            over,
            "{cost} vs {threshold:?}"
        );
    }
}

fn at(s: i64) -> crate::time::Timestamp {
    crate::time::Timestamp::from_millis(s * 1000)
}

fn measured(backup: &str, repo: &str, classes: &[(&str, u64, u64)]) -> Measurement {
    Measurement {
        backup: backup.into(),
        repository: repo.into(),
        measured_at: Some(at(1_000)),
        attempted_at: at(1_000),
        error: None,
        assumed: false,
        by_class: classes
            .iter()
            .map(|(c, objects, bytes)| {
                (
                    c.to_string(),
                    ClassBytes {
                        objects: *objects,
                        bytes: *bytes,
                    },
                )
            })
            .collect(),
    }
}

#[test]
fn evaluation_prices_every_repository_and_names_unpriced_classes() {
    let c = parse(&format!(
        "[cost]\nprices = {{ STANDARD = 0.023, STANDARD_IA = 0.0125 }}\nmonthly_threshold = 0.05\n{BACKUP}"
    ))
    .unwrap();
    let copy = "s3:http://user:pw@127.0.0.1:9/b/app";
    let ms = [
        measured("app", "/srv/repo", &[("local", 3, 5_000_000_000)]),
        measured(
            "app",
            copy,
            &[
                ("STANDARD", 4, 1_000_000_000),
                ("STANDARD_IA", 2, 3_000_000_000),
            ],
        ),
        // Another backup's rows (a backup since removed) are not counted.
        measured("gone", "/srv/repo", &[("local", 1, 1)]),
    ];
    let costs = evaluate(&c, &ms);
    assert_eq!(costs.len(), 1);
    let app = &costs[0];
    assert_eq!(app.repositories.len(), 2);
    let local = &app.repositories[0];
    assert_eq!(local.repository, "/srv/repo");
    assert_eq!(local.monthly, 0.0);
    assert_eq!(local.unpriced, vec!["local".to_string()]);
    assert_eq!(local.classes[0].price, None);
    let s3 = &app.repositories[1];
    // No credentials in the label.
    assert_eq!(s3.repository, "s3:http://127.0.0.1:9/b/app");
    assert_eq!(s3.monthly, 0.023 + 0.0375);
    assert_eq!(s3.bytes, 4_000_000_000);
    assert!(s3.unpriced.is_empty());
    assert_eq!(app.monthly, 0.0605);
    assert_eq!(app.bytes, 9_000_000_000);
    assert!(app.over);
    assert_eq!(app.unpriced(), vec!["local".to_string()]);
    assert!(!app.never_measured());
    let a = job::alert(app, crate::time::Timestamp::from_millis(5));
    assert_eq!(a.alertname, ALERT_NAME);
    assert_eq!(a.monitor, "cost:app");
    assert_eq!(a.status, crate::alert::AlertStatus::Firing);
    assert!(a.summary.contains("0.06 USD"), "{}", a.summary);

    // Nothing listed yet: zero, not over, and said so.
    let costs = evaluate(&c, &[]);
    assert!(costs[0].never_measured());
    assert!(!costs[0].over);
    assert_eq!(
        job::alert(&costs[0], crate::time::Timestamp::from_millis(5)).status,
        crate::alert::AlertStatus::Resolved
    );
}
