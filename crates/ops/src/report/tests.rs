use super::*;

#[test]
fn period_parse_table() {
    let check = |input: &str, expected: Option<(i32, u32, u32)>| {
        let got = Period::parse(input)
            .ok()
            .map(|p| (p.year, p.month, p.days()));
        assert_eq!(got, expected, "{input:?}");
    };
    check("2026-01", Some((2026, 1, 31)));
    check("2024-02", Some((2024, 2, 29)));
    check("2026-12", Some((2026, 12, 31)));
    check("2026-13", None);
    check("2026-00", None);
    check("2026-1", None);
    check("26-01", None);
    check("2026/01", None);
    check("2026-01-01", None);
    check("", None);
    let e = Period::parse("2026-13").unwrap_err().to_string();
    assert!(e.contains("\"2026-13\""), "{e}");
}

#[test]
fn uptime_summary_table() {
    let p = Period::parse("2026-02").unwrap();
    let day = |d: i64, minute: i64| {
        Timestamp::from_millis(p.start().timestamp_millis() + d * 86_400_000 + minute * 60_000)
    };
    let minutes = vec![
        (day(0, 0), 60, 0),
        (day(0, 1), 60, 6),
        (day(2, 5), 10, 10),
        // Outside the month: ignored.
        (day(-1, 0), 60, 60),
        (day(28, 0), 60, 60),
    ];
    let (total, failures, daily) = uptime_summary(&p, &minutes);
    assert_eq!((total, failures), (130, 16));
    assert_eq!(daily.len(), 28);
    assert_eq!(daily[0].uptime, Some(114.0 / 120.0));
    assert_eq!(daily[1].uptime, None);
    assert_eq!(daily[2].uptime, Some(0.0));
    assert_eq!(daily[0].date.to_string(), "2026-02-01");
}

#[test]
fn slo_summary_table() {
    let check = |target: f64, total: u64, bad: u64, attainment: f64, consumed: f64, met: bool| {
        let s = slo_summary("s", "m", target, total, bad);
        assert!((s.attainment - attainment).abs() < 1e-9, "{s:?}");
        assert!((s.budget_consumed - consumed).abs() < 1e-9, "{s:?}");
        assert_eq!(s.met, met, "{s:?}");
    };
    check(0.99, 1000, 0, 1.0, 0.0, true);
    check(0.99, 1000, 5, 0.995, 0.5, true);
    check(0.99, 1000, 10, 0.99, 1.0, true);
    check(0.99, 1000, 20, 0.98, 2.0, false);
    // Nothing measured: attained, budget untouched.
    check(0.99, 0, 0, 1.0, 0.0, true);
}

#[test]
fn job_summaries_count_per_backup() {
    let runs = vec![
        (
            "backup:app".to_string(),
            "success".to_string(),
            Timestamp::from_millis(1),
        ),
        (
            "backup:app".to_string(),
            "failure".to_string(),
            Timestamp::from_millis(2),
        ),
        (
            "verify:app".to_string(),
            "success".to_string(),
            Timestamp::from_millis(3),
        ),
        (
            "backup:db".to_string(),
            "abandoned".to_string(),
            Timestamp::from_millis(4),
        ),
    ];
    let names = vec!["app".to_string(), "db".to_string(), "idle".to_string()];
    let s = job_summaries("backup:", &names, &runs);
    assert_eq!((s[0].runs, s[0].successes, s[0].failures), (2, 1, 1));
    assert_eq!(s[0].last_outcome.as_deref(), Some("failure"));
    assert_eq!((s[1].runs, s[1].failures), (1, 1));
    assert_eq!((s[2].runs, s[2].last_outcome.as_deref()), (0, None));
}

#[test]
fn html_escapes_a_hostile_monitor_name() {
    let p = Period::parse("2026-01").unwrap();
    let hostile = "<script>alert('x')</script>\"&";
    let (total, failures, daily) = uptime_summary(&p, &[(p.start().into(), 10, 1)]);
    let report = Report {
        period: p.to_string(),
        from: p.start(),
        to: p.end(),
        generated_at: p.end(),
        monitors: vec![MonitorUptime {
            monitor: hostile.to_string(),
            total,
            failures,
            uptime: Some(0.9),
            sla_target: Some(0.99),
            sla_met: Some(false),
            incidents: 0,
            downtime_seconds: 0,
            daily,
        }],
        slos: vec![slo_summary("s|x", hostile, 0.99, 10, 1)],
        incidents: vec![],
        backups: vec![],
        verifications: vec![],
        drills: vec![],
        rotations: vec![],
        storage: vec![],
    };
    let html = render::html(&report);
    assert!(!html.contains("<script>"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;&amp;"));
    assert!(html.contains("<svg"));
    // The shared bars: the 90% day reads as bad (red, most of its column),
    // the other days as no data; the chart's label names the monitor, escaped.
    assert!(
        html.contains("<g class=\"bw-bad\"><title>2026-01-01 90.000% up</title>"),
        "{html}"
    );
    assert_eq!(html.matches("<g class=\"bw-none\">").count(), 30, "{html}");
    assert!(
        html.contains("aria-label=\"Daily uptime of &lt;script&gt;"),
        "{html}"
    );
    assert!(!html.contains("src=\"http"), "no external assets");
    let md = render::markdown(&report);
    assert!(md.contains("s\\|x"), "{md}");
}

#[test]
fn a_day_at_zero_reads_as_bad_in_the_report() {
    let p = Period::parse("2026-02").unwrap();
    let start = Timestamp::from(p.start());
    // Day 1 all good, day 2 all failed.
    let (total, failures, daily) = uptime_summary(
        &p,
        &[(start, 60, 0), (start + chrono::Duration::days(1), 60, 60)],
    );
    let report = Report {
        period: p.to_string(),
        from: p.start(),
        to: p.end(),
        generated_at: p.end(),
        monitors: vec![MonitorUptime {
            monitor: "api".to_string(),
            total,
            failures,
            uptime: Some(0.5),
            sla_target: None,
            sla_met: None,
            incidents: 1,
            downtime_seconds: 86_400,
            daily,
        }],
        slos: vec![],
        incidents: vec![],
        backups: vec![],
        verifications: vec![],
        drills: vec![],
        rotations: vec![],
        storage: vec![],
    };
    let html = render::html(&report);
    let bad = html
        .split("<g ")
        .find(|g| g.contains("<title>2026-02-02 "))
        .expect("the second day's bar");
    assert!(bad.starts_with("class=\"bw-bad\""), "{bad}");
    assert!(bad.contains("0.000% up"), "{bad}");
    // All of the column is red: no green part at all.
    let full = format!("height=\"{}\"", crate::charts::BARS_H);
    assert!(
        bad.contains("<rect class=\"l\"") && bad.contains(&full),
        "{bad}"
    );
    assert!(!bad.contains("class=\"u\""), "{bad}");
    let good = html
        .split("<g ")
        .find(|g| g.contains("<title>2026-02-01 "))
        .unwrap();
    assert!(good.starts_with("class=\"bw-ok\""), "{good}");
}

#[test]
fn the_storage_section_shows_classes_cost_and_threshold_in_every_format() {
    let p = Period::parse("2026-03").unwrap();
    let listed = p.end() - chrono::Duration::minutes(20);
    let row = |backup: &str, repository: &str, over: bool| StorageRow {
        backup: backup.to_string(),
        repository: repository.to_string(),
        listed_at: Some(listed),
        bytes: 4_000_000_000,
        classes: vec![
            StorageClassRow {
                class: "STANDARD".into(),
                objects: 4,
                bytes: 1_000_000_000,
                price: Some(0.023),
                monthly_cost: 0.023,
            },
            StorageClassRow {
                class: "STANDARD_IA".into(),
                objects: 2,
                bytes: 3_000_000_000,
                price: None,
                monthly_cost: 0.0,
            },
        ],
        monthly_cost: 0.023,
        currency: "EUR".into(),
        monthly_threshold: Some(0.01),
        over_threshold: over,
        unpriced: vec!["STANDARD_IA".into()],
    };
    let mut report = Report {
        period: p.to_string(),
        from: p.start(),
        to: p.end(),
        generated_at: p.end(),
        monitors: vec![],
        slos: vec![],
        incidents: vec![],
        backups: vec![],
        verifications: vec![],
        drills: vec![],
        rotations: vec![],
        storage: vec![],
    };
    assert!(
        !render::markdown(&report).contains("Storage cost"),
        "no section without cost"
    );
    report.storage = vec![
        row("app", "s3:http://127.0.0.1:9/b/app", true),
        row("<b>", "/srv/r", false),
    ];
    let md = render::markdown(&report);
    assert!(md.contains("## Storage cost (as last listed)"), "{md}");
    assert!(
        md.contains("| app | s3:http://127.0.0.1:9/b/app | STANDARD 1.00 GB (0.023/GB-month), STANDARD_IA 3.00 GB (no price) | 0.02 EUR | 0.01 EUR (exceeded) | 2026-03-31 23:40:00Z |"),
        "{md}"
    );
    let html = render::html(&report);
    assert!(
        html.contains("<h2>Storage cost (as last listed)</h2>"),
        "{html}"
    );
    assert!(
        html.contains("<td>&lt;b&gt;</td>") && !html.contains("<td><b>"),
        "{html}"
    );
    let json: serde_json::Value = serde_json::from_str(&render::json(&report)).unwrap();
    assert_eq!(json["schema"], super::document::REPORT_SCHEMA);
    assert_eq!(
        json["storage"][0]["classes"][1]["price"],
        serde_json::Value::Null
    );
    assert_eq!(json["storage"][0]["monthly_cost"], 0.023);
    assert_eq!(json["storage"][0]["over_threshold"], true);
}
