use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use super::*;
use crate::identity::Role;

fn no_env(_: &str) -> Option<String> {
    None
}

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k: &str| map.get(k).cloned()
}

fn ok(text: &str) -> Loaded {
    ok_env(text, &no_env)
}

fn ok_env(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Loaded {
    match parse(text, Some(Path::new("bulwark.toml")), env) {
        Ok(loaded) => loaded,
        Err(e) => panic!("expected the config to compile, got:\n{e}"),
    }
}

fn diags(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Vec<Diagnostic> {
    match parse(text, Some(Path::new("bulwark.toml")), env) {
        Ok(loaded) => loaded.warnings,
        Err(e) => e.diagnostics,
    }
}

/// Asserts the exact set of errors: (line, field, part of the message).
/// Line 0 stands for "no line" (environment errors).
fn check(input: &str, expected: &[(usize, &str, &str)]) {
    check_env(input, &no_env, expected)
}

fn check_env(input: &str, env: &dyn Fn(&str) -> Option<String>, expected: &[(usize, &str, &str)]) {
    let errors: Vec<Diagnostic> = diags(input, env)
        .into_iter()
        .filter(|d| d.severity == Severity::Error)
        .collect();
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
        let found = errors.iter().any(|d| {
            d.line.unwrap_or(0) == *line && d.field == *field && d.message.contains(message)
        });
        assert!(
            found,
            "expected {line}: {field}: ...{message}... in:\n{shown}"
        );
    }
    for d in &errors {
        assert!(!d.message.ends_with('.'), "trailing period: {d}");
        assert!(d.message == lowercase_first(&d.message), "capitalized: {d}");
    }
}

fn check_warnings(
    input: &str,
    env: &dyn Fn(&str) -> Option<String>,
    expected: &[(usize, &str, &str)],
) {
    let warnings = ok_env(input, env).warnings;
    let shown = warnings
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(warnings.len(), expected.len(), "warnings:\n{shown}");
    for (line, field, message) in expected {
        let found = warnings.iter().any(|d| {
            d.severity == Severity::Warning
                && d.line.unwrap_or(0) == *line
                && d.field == *field
                && d.message.contains(message)
        });
        assert!(
            found,
            "expected warning {line}: {field}: ...{message}... in:\n{shown}"
        );
    }
}

#[test]
fn three_mistakes_in_three_places_are_all_reported() {
    let text = r#"
[[monitor]]
name = "api"
url = "http://127.0.0.1:9000/health"
intervall = "30s"

[[monitor]]
name = "web"
url = "https://example.com/"
interval = "6o s"

[[slo]]
name = "api-availability"
monitor = "apii"
target = 0.995
"#;
    check(
        text,
        &[
            (5, "monitor[0].intervall", "unknown field `intervall`"),
            (10, "monitor[1].interval", "invalid duration \"6o s\""),
            (14, "slo[0].monitor", "unknown monitor \"apii\""),
        ],
    );
    let err = parse(text, Some(Path::new("bulwark.toml")), &no_env).unwrap_err();
    let shown = err.to_string();
    assert_eq!(shown.lines().count(), 3, "{shown}");
    assert!(
        shown.contains("bulwark.toml:10:12: monitor[1].interval: invalid duration \"6o s\""),
        "{shown}"
    );
    assert!(
        shown.contains("bulwark.toml:5:1: monitor[0].intervall: unknown field"),
        "{shown}"
    );
}

#[test]
fn syntax_error_has_a_line() {
    let err = parse(
        "[server]\nlisten = \"127.0.0.1:80\"\n\n[[monitor]\nname = 1\n",
        None,
        &no_env,
    )
    .unwrap_err();
    assert_eq!(err.diagnostics.len(), 1, "{err}");
    let d = &err.diagnostics[0];
    assert_eq!(d.line, Some(4), "{err}");
    assert!(d.column.is_some());
    assert!(!d.message.is_empty() && !d.message.ends_with('.'), "{d}");
}

#[test]
fn syntax_error_and_env_error_in_one_run() {
    let env = env_of(&[("UPTIME_STRIKES", "zero")]);
    check_env(
        "a = ",
        &env,
        &[
            (1, "", ""),
            (0, "env UPTIME_STRIKES", "invalid value \"zero\""),
        ],
    );
}

#[test]
fn durations() {
    let table: &[(&str, Option<u64>)] = &[
        ("500ms", Some(500)),
        ("60s", Some(60_000)),
        ("5m", Some(300_000)),
        ("1h", Some(3_600_000)),
        ("30d", Some(30 * 86_400_000)),
        ("1w", Some(7 * 86_400_000)),
        ("1h30m", Some(5_400_000)),
        ("1m30s250ms", Some(90_250)),
        (" 10s ", Some(10_000)),
        ("0s", Some(0)),
        ("", None),
        ("  ", None),
        ("-5s", None),
        ("60", None),
        ("5 m", None),
        ("6o s", None),
        ("1y", None),
        ("s", None),
        ("1.5h", None),
        ("99999999999999999999s", None),
        ("18446744073709551615w", None),
        ("18446744073709551615s18446744073709551615s", None),
    ];
    for (input, expected) in table {
        let got = parse_duration(input).map(|d| d.as_millis() as u64);
        match expected {
            Some(ms) => assert_eq!(got, Ok(*ms), "{input:?}"),
            None => {
                let err = got.expect_err(input);
                assert!(!err.is_empty() && !err.ends_with('.'), "{input:?}: {err}");
            }
        }
    }
    assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
    assert_eq!(format_duration(Duration::from_millis(500)), "500ms");
}

#[test]
fn cron_expressions() {
    let table: &[(&str, bool)] = &[
        ("0 3 * * 0", true),
        ("30 2 * * *", true),
        ("*/15 * * * *", true),
        ("0 0 1,15 * mon-fri", true),
        ("0 0 * JAN-DEC SUN", true),
        ("0 30 2 * * *", true),
        ("0 0 * * 7", true),
        ("@daily", true),
        ("@weekly", true),
        ("0 3 * *", false),
        ("0 0 3 * * * *", false),
        ("60 * * * *", false),
        ("* 24 * * *", false),
        ("* * 0 * *", false),
        ("* * * 13 *", false),
        ("* * * * 8", false),
        ("*/0 * * * *", false),
        ("5-1 * * * *", false),
        ("x * * * *", false),
        ("@sometimes", false),
        ("", false),
    ];
    for (expr, valid) in table {
        assert_eq!(
            validate_cron(expr).is_ok(),
            *valid,
            "{expr:?}: {:?}",
            validate_cron(expr)
        );
    }
}

#[test]
fn defaults_without_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = load(&dir.path().join("bulwark.toml"), false, &no_env).unwrap();
    let c = &loaded.config;
    assert!(loaded.warnings.is_empty());
    assert_eq!(c.source, None);
    assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
    assert!(c.server.database.is_none());
    assert_eq!(c.server.strict_budget_threshold, 0.8);
    assert!(!c.server.metrics_require_key);
    assert!(c.auth.keys.is_empty());
    assert!(c.monitors.is_empty() && c.slos.is_empty() && c.channels.is_empty());
    assert!(c.backups.is_empty() && c.secrets.is_empty() && c.drills.is_empty());
    assert!(c.routes.is_empty() && c.maintenance.is_empty());
}

#[test]
fn load_reads_files_and_requires_them_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let err = load(&missing, true, &no_env).unwrap_err();
    assert_eq!(err.diagnostics[0].file.as_deref(), Some(missing.as_path()));
    assert!(err.to_string().contains("cannot read config"), "{err}");

    let path = dir.path().join("bulwark.toml");
    std::fs::write(&path, "[server]\nlisten = \"0.0.0.0:9\"\nbogus = 1\n").unwrap();
    let err = load(&path, false, &no_env).unwrap_err();
    assert_eq!(err.diagnostics[0].line, Some(3));
    assert!(
        err.to_string()
            .starts_with(&format!("{}:3:1: server.bogus: ", path.display())),
        "{err}"
    );

    std::fs::write(&path, "[server]\nlisten = \"0.0.0.0:9\"\n").unwrap();
    let loaded = load(&path, true, &no_env).unwrap();
    assert_eq!(loaded.config.source.as_deref(), Some(path.as_path()));
    assert_eq!(loaded.config.server.listen.port(), 9);
}

#[test]
fn monitor_defaults_and_kinds() {
    let c = ok(r#"
[[monitor]]
name = "api"
url = "http://127.0.0.1:9000/health"

[[monitor]]
name = "db"
url = "tcp://10.0.0.5:5432"
public = true

[[monitor]]
name = "edge"
url = "tls://[::1]:443"
cert_min_days = 14

[[monitor]]
name = "cron-job"
type = "push"
period = "1h"
grace = "5m"

[[monitor]]
name = "status"
url = "https://example.com/status"
method = "post"
headers = { Authorization = "Bearer s3cr3t-token" }
expect_status = [200, "3xx", "401-403"]
max_latency = "500ms"
json = { "status" = "UP", "checks.db" = true }
cert_min_days = 7
interval = "5s"
"#)
    .config;
    let api = &c.monitors[0];
    assert_eq!(api.interval, Duration::from_secs(60));
    assert_eq!(api.timeout, Duration::from_secs(10));
    assert_eq!((api.strikes, api.recover_after), (2, 2));
    // Private unless marked: only `db` is on the status page.
    let public: Vec<&str> = c
        .monitors
        .iter()
        .filter(|m| m.public)
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(public, ["db"]);
    let MonitorKind::Http(h) = &api.kind else {
        panic!("{:?}", api.kind)
    };
    assert_eq!(h.method, "GET");
    assert!(h.status_ok(200) && h.status_ok(302) && !h.status_ok(404));
    assert!(
        matches!(&c.monitors[1].kind, MonitorKind::Tcp { host, port: 5432 } if host == "10.0.0.5")
    );
    assert!(
        matches!(&c.monitors[2].kind, MonitorKind::Tls { host, port: 443, cert_min_days: Some(14) } if host == "::1")
    );
    assert!(
        matches!(c.monitors[3].kind, MonitorKind::Push { period, grace } if period == Duration::from_secs(3600) && grace == Duration::from_secs(300))
    );
    let status = &c.monitors[4];
    // The default timeout never exceeds a short interval.
    assert_eq!(status.timeout, Duration::from_secs(5));
    let MonitorKind::Http(h) = &status.kind else {
        panic!()
    };
    assert_eq!(h.method, "POST");
    assert!(h.status_ok(200) && h.status_ok(301) && h.status_ok(403) && !h.status_ok(201));
    assert_eq!(h.max_latency, Some(Duration::from_millis(500)));
    assert_eq!(h.json.len(), 2);
    assert_eq!(h.cert_min_days, Some(7));
    assert!(
        !format!("{c:?}").contains("s3cr3t-token"),
        "header values are secrets"
    );
}

#[test]
fn validation_rules() {
    let m = "[[monitor]]\nname = \"api\"\nurl = \"http://x/\"\n";
    type Case<'a> = (String, &'a [(usize, &'a str, &'a str)]);
    let table: &[Case] = &[
        // [server]
        ("[server]\nlisten = \"nope\"".into(), &[(2, "server.listen", "invalid listen address")]),
        ("[server]\ndatabase = \"mysql://u:pw@h/db\"".into(), &[(2, "server.database", "postgres://")]),
        ("[server]\nstrict_budget_threshold = 0.0".into(), &[(2, "server.strict_budget_threshold", "(0, 1]")]),
        ("[server]\nstrict_budget_threshold = 1.5".into(), &[(2, "server.strict_budget_threshold", "(0, 1]")]),
        ("[server]\nmetrics_require_key = \"yes\"".into(), &[(2, "server.metrics_require_key", "invalid type")]),
        ("[servers]\nlisten = \"x\"".into(), &[(1, "servers", "unknown section `servers`")]),
        ("[monitor]\nname = \"a\"".into(), &[(1, "monitor", "[[monitor]]")]),
        // [[auth.key]]
        ("[[auth.key]]\nname = \"ci\"\nrole = \"root\"\nhash = \"sha256:0000000000000000000000000000000000000000000000000000000000000000\"".into(), &[(3, "auth.key[0].role", "unknown role \"root\"")]),
        ("[[auth.key]]\nname = \"ci\"\nrole = \"admin\"\nhash = \"md5:abc\"".into(), &[(4, "auth.key[0].hash", "64 hex digits")]),
        ("[auth]\nkeys = []".into(), &[(2, "auth.keys", "unknown field `keys`")]),
        // [[monitor]]
        (format!("{m}{m}"), &[(5, "monitor[1].name", "duplicate monitor name \"api\" (first defined at line 2)")]),
        ("[[monitor]]\nname = \"a b\"\nurl = \"http://x/\"".into(), &[(2, "monitor[0].name", "invalid name \"a b\"")]),
        ("[[monitor]]\nname = \"a\"\nurl = \"ftp://x/\"".into(), &[(3, "monitor[0].url", "scheme `ftp`")]),
        ("[[monitor]]\nname = \"a\"\nurl = \"tcp://x\"".into(), &[(3, "monitor[0].url", "host:port")]),
        ("[[monitor]]\nname = \"a\"\nurl = \"http://x:http/\"".into(), &[(3, "monitor[0].url", "bad port")]),
        ("[[monitor]]\nname = \"a\"\nurl = \"http:///x\"".into(), &[(3, "monitor[0].url", "missing host")]),
        ("[[monitor]]\nname = \"a\"\nurl = \"tcp://x:1\"\nmax_latency = \"1s\"".into(), &[(4, "monitor[0].max_latency", "does not apply to a tcp monitor")]),
        ("[[monitor]]\nname = \"a\"\nurl = \"tcp://x:99999\"".into(), &[(3, "monitor[0].url", "invalid port")]),
        ("[[monitor]]\nname = \"a\"".into(), &[(1, "monitor[0]", "missing `url`")]),
        ("[[monitor]]\nurl = \"http://x/\"".into(), &[(1, "monitor[0]", "missing field `name`")]),
        ("[[monitor]]\nname = \"a\"\ntype = \"push\"".into(), &[(1, "monitor[0]", "needs `period`")]),
        ("[[monitor]]\nname = \"a\"\ntype = \"push\"\nperiod = \"1h\"\nurl = \"http://x/\"".into(), &[(5, "monitor[0].url", "does not apply to a push monitor")]),
        ("[[monitor]]\nname = \"a\"\ntype = \"grpc\"\nurl = \"http://x/\"".into(), &[(3, "monitor[0].type", "unknown monitor type")]),
        ("[[monitor]]\nname = \"a\"\ntype = \"tcp\"\nurl = \"http://x/\"".into(), &[(3, "monitor[0].type", "does not match")]),
        ("[[monitor]]\nname = \"a\"\nurl = \"http://x/\"\nperiod = \"1h\"".into(), &[(4, "monitor[0].period", "does not apply")]),
        (format!("{m}interval = \"500ms\""), &[(4, "monitor[0].interval", "at least 1s")]),
        (format!("{m}strikes = 0"), &[(4, "monitor[0].strikes", "between 1 and")]),
        (format!("{m}recover_after = -1"), &[(4, "monitor[0].recover_after", "between 1 and")]),
        (format!("{m}strikes = \"two\""), &[(4, "monitor[0].strikes", "invalid type")]),
        (format!("{m}public = \"yes\""), &[(4, "monitor[0].public", "invalid type")]),
        (format!("{m}public = 1"), &[(4, "monitor[0].public", "expected a boolean")]),
        (format!("{m}method = \"FETCH\""), &[(4, "monitor[0].method", "unknown http method")]),
        (format!("{m}expect_status = 700"), &[(4, "monitor[0].expect_status", "100 to 599")]),
        (format!("{m}expect_status = []"), &[(4, "monitor[0].expect_status", "must not be empty")]),
        (format!("{m}max_latency = \"fast\""), &[(4, "monitor[0].max_latency", "invalid duration")]),
        (format!("{m}cert_min_days = 14"), &[(4, "monitor[0].cert_min_days", "https://")]),
        (format!("{m}body_contains = \"\""), &[(4, "monitor[0].body_contains", "must not be empty")]),
        (format!("{m}tags = [\"\"]"), &[(4, "monitor[0].tags[0]", "must not be empty")]),
        (format!("{m}headers = {{ \"X Bad\" = \"v\" }}"), &[(4, "monitor[0].headers.\"X Bad\"", "invalid header name")]),
        (format!("{m}[monitor.headers]\nAccept = 5"), &[(5, "monitor[0].headers.Accept", "invalid type")]),
        ("[[monitor]]\nname = \"a\"\nurl = \"tcp://x:1\"\nmethod = \"GET\"".into(), &[(4, "monitor[0].method", "does not apply to a tcp monitor")]),
        // [[slo]]
        (format!("{m}[[slo]]\nname = \"s\"\nmonitor = \"api\"\ntarget = 1.0"), &[(7, "slo[0].target", "between 0 and 1")]),
        (format!("{m}[[slo]]\nname = \"s\"\nmonitor = \"api\"\nwindow = \"5m\""), &[(7, "slo[0].window", "at least 1h")]),
        (format!("{m}[[slo]]\nname = \"s\"\nmonitor = \"api\"\ncalendar = \"week\""), &[(7, "slo[0].calendar", "unknown calendar")]),
        (format!("{m}[[slo]]\nname = \"s\"\nmonitor = \"api\"\n[[slo]]\nname = \"s\"\nmonitor = \"api\""), &[(8, "slo[1].name", "duplicate slo name")]),
        (format!("{m}[[slo]]\nname = \"s\"\nmonitor = \"api\"\n[[slo.alert]]\nlong_window = \"5m\"\nshort_window = \"1h\"\nburn_rate = 2.0"), &[(9, "slo[0].alert[0].short_window", "shorter than `long_window`")]),
        (format!("{m}[[slo]]\nname = \"s\"\nmonitor = \"api\"\n[[slo.alert]]\nlong_window = \"1h\"\nshort_window = \"5m\"\nburn_rate = 0.0\nseverity = \"page\""), &[(10, "slo[0].alert[0].burn_rate", "greater than 0"), (11, "slo[0].alert[0].severity", "unknown severity")]),
        (format!("{m}[[slo]]\nname = \"s\"\nmonitor = \"api\"\n[[slo.alert]]\nlong_window = \"1h\""), &[(7, "slo[0].alert[0]", "missing field `short_window`")]),
        // [[maintenance]]
        (format!("{m}[[maintenance]]\nname = \"w\"\nmonitors = [\"nope\"]\nstart = \"2026-01-01T00:00:00Z\"\nend = \"2026-01-01T02:00:00Z\""), &[(6, "maintenance[0].monitors[0]", "unknown monitor \"nope\"")]),
        ("[[maintenance]]\nname = \"w\"\nstart = \"tomorrow\"\nend = 2026-01-01T02:00:00Z".into(), &[(3, "maintenance[0].start", "invalid date-time")]),
        ("[[maintenance]]\nname = \"w\"\nstart = 2026-01-02T00:00:00Z\nend = 2026-01-01T02:00:00Z".into(), &[(4, "maintenance[0].end", "after `start`")]),
        // [[channel]] and [[route]]
        ("[[channel]]\nname = \"c\"\ntype = \"sms\"".into(), &[(3, "channel[0].type", "unknown channel type")]),
        ("[[channel]]\nname = \"c\"\ntype = \"slack\"".into(), &[(1, "channel[0]", "needs `url`")]),
        ("[[channel]]\nname = \"c\"\ntype = \"slack\"\nurl = \"hooks.slack.com\"".into(), &[(4, "channel[0].url", "invalid url")]),
        ("[[channel]]\nname = \"c\"\ntype = \"slack\"\nurl = \"https://h/x\"\nchat_id = 5".into(), &[(5, "channel[0].chat_id", "does not apply to a slack channel")]),
        ("[[channel]]\nname = \"c\"\ntype = \"telegram\"\nbot_token = \"t\"".into(), &[(1, "channel[0]", "needs `chat_id`")]),
        ("[[channel]]\nname = \"c\"\ntype = \"email\"\nsmtp_host = \"h\"\nfrom = \"nobody\"\nto = [\"a@b\"]".into(), &[(5, "channel[0].from", "invalid email address")]),
        ("[[channel]]\nname = \"c\"\ntype = \"email\"\nsmtp_host = \"h\"\nfrom = \"a@b\"\nto = []".into(), &[(6, "channel[0].to", "at least one")]),
        ("[[channel]]\nname = \"c\"\ntype = \"email\"\nsmtp_host = \"h\"\nfrom = \"a@b\"\nto = [\"a@b\"]\nsmtp_port = 0\npassword = \"p\"".into(), &[(7, "channel[0].smtp_port", "between 1 and 65535"), (8, "channel[0].password", "needs `username`")]),
        ("[[channel]]\nname = \"c\"\ntype = \"pagerduty\"".into(), &[(1, "channel[0]", "needs `routing_key`")]),
        ("[[channel]]\nname = \"c\"\ntype = \"webhook\"\nurl = \"http://h/\"\n[[channel]]\nname = \"c\"\ntype = \"webhook\"\nurl = \"http://h/\"".into(), &[(6, "channel[1].name", "duplicate channel name")]),
        ("[[channel]]\nname = \"c\"\ntype = \"webhook\"\nurl = \"http://h/\"\n[[route]]\nchannel = \"d\"".into(), &[(6, "route[0].channel", "unknown channel \"d\"")]),
        ("[[channel]]\nname = \"c\"\ntype = \"webhook\"\nurl = \"http://h/\"\n[[route]]\nchannel = \"c\"\nseverity = [\"fatal\"]\ngroup_by = [\"host\"]\nrepeat_interval = \"1s\"".into(), &[(7, "route[0].severity[0]", "unknown severity"), (8, "route[0].group_by[0]", "unknown grouping"), (9, "route[0].repeat_interval", "at least 1m")]),
        // [[backup]]
        ("[[backup]]\nname = \"b\"\nrepo = \"sftp:host:/x\"\npaths = [\"/a\"]".into(), &[(3, "backup[0].repo", "unsupported repository backend `sftp`")]),
        ("[[backup]]\nname = \"b\"\nrepo = \"s3:\"\npaths = [\"/a\"]".into(), &[(3, "backup[0].repo", "s3:[http(s)://")]),
        ("[[backup]]\nname = \"b\"\nrepo = \"azure:\"\npaths = [\"/a\"]".into(), &[(3, "backup[0].repo", "azure:container:/prefix")]),
        ("[[backup]]\nname = \"b\"\nrepo = \"gs::/x\"\npaths = [\"/a\"]".into(), &[(3, "backup[0].repo", "gs:bucket:/prefix")]),
        ("[[backup]]\nname = \"b\"\nrepo = \"/r\"\npaths = []".into(), &[(4, "backup[0].paths", "at least one path")]),
        ("[[backup]]\nname = \"b\"\nrepo = \"/r\"".into(), &[(1, "backup[0]", "missing `paths`")]),
        ("[[backup]]\nname = \"b\"\nrepo = \"/r\"\npaths = [\"/a\"]\npassword_file = \"/p\"\npassword_env = \"P\"".into(), &[(6, "backup[0].password_env", "not both")]),
        ("[[backup]]\nname = \"b\"\nrepo = \"/r\"\npaths = [\"/a\"]\nschedule = \"0 3 * *\"".into(), &[(5, "backup[0].schedule", "expected 5 or 6 fields")]),
        ("[[backup]]\nname = \"b\"\nrepo = \"/r\"\npaths = [\"/a\"]\nschedule = \"0 25 * * *\"".into(), &[(5, "backup[0].schedule", "out of range")]),
        ("[[backup]]\nname = \"b\"\nrepo = \"/r\"\npaths = [\"/a\"]\ntimezone = \"Mars Base\"".into(), &[(5, "backup[0].timezone", "invalid time zone")]),
        ("[[backup]]\nname = \"b\"\nrepo = \"/r\"\npaths = [\"/a\"]\nkeep = { daily = 0, within = \"x\" }".into(), &[(5, "backup[0].keep.daily", "between 1 and"), (5, "backup[0].keep.within", "invalid duration")]),
        ("[[backup]]\nname = \"b\"\nrepo = \"/r\"\npaths = [\"/a\"]\nkeep = { dayly = 7 }".into(), &[(5, "backup[0].keep.dayly", "unknown field `dayly`")]),
        ("[[backup]]\nname = \"b\"\nrepo = \"/r\"\npaths = [\"/a\"]\nverify = { read_data_subset = \"0%\" }".into(), &[(5, "backup[0].verify.read_data_subset", "invalid percentage")]),
        ("[[backup]]\nname = \"b\"\nrepo = \"/r\"\npaths = [\"/a\"]\n[backup.verify]\nread_data_subset = \"101%\"\nsample_files = -1".into(), &[(6, "backup[0].verify.read_data_subset", "invalid percentage"), (7, "backup[0].verify.sample_files", "between 0 and")]),
        // database backups
        ("[[backup]]\nname = \"b\"\nrepo = \"/r\"\nkind = \"mysql\"".into(), &[(4, "backup[0].kind", "unknown kind \"mysql\" (known: files, postgres, command)")]),
        ("[[backup]]\nname = \"b\"\nrepo = \"/r\"\nkind = \"postgres\"".into(), &[(1, "backup[0]", "needs `url = ")]),
        ("[[backup]]\nname = \"b\"\nrepo = \"/r\"\nkind = \"command\"".into(), &[(1, "backup[0]", "needs `command = ")]),
        ("[[backup]]\nname = \"b\"\nrepo = \"/r\"\nkind = \"command\"\ncommand = [\"\"]".into(), &[(5, "backup[0].command", "program to run")]),
        ("[[backup]]\nname = \"b\"\nrepo = \"/r\"\nkind = \"postgres\"\nurl = \"postgres://u@h/db\"\npaths = [\"/a\"]".into(), &[(6, "backup[0].paths", "not used by this kind")]),
        ("[[backup]]\nname = \"b\"\nrepo = \"/r\"\nkind = \"postgres\"\nurl = \"mysql://u:hunter2@h/db\"".into(), &[(5, "backup[0].url", "must be a postgres://")]),
        ("[[backup]]\nname = \"b\"\nrepo = \"/r\"\nkind = \"postgres\"\nurl = \"postgres://u:hunter2@h:5432\"".into(), &[(5, "backup[0].url", "names no database")]),
        ("[[backup]]\nname = \"b\"\nrepo = \"/r\"\nkind = \"postgres\"\nurl = \"postgres://u@h/db\"\ndatabases = [\"a b\"]\npg_dump_options = [\"-f\"]".into(), &[(6, "backup[0].databases[0]", "plain database name"), (7, "backup[0].pg_dump_options[0]", "Bulwark sets those")]),
        ("[[backup]]\nname = \"b\"\nrepo = \"/r\"\npaths = [\"/a\"]\npass_env = [\"X\"]".into(), &[(1, "backup[0].env", "only used by kind = \"command\"")]),
        ("[[backup]]\nname = \"b\"\nrepo = \"/r\"\nkind = \"command\"\ncommand = [\"x\"]\npass_env = [\"RESTIC_PASSWORD\"]".into(), &[(6, "backup[0].pass_env[0]", "RESTIC_PASSWORD is never passed")]),
        ("[[backup]]\nname = \"b\"\nrepo = \"/r\"\npaths = [\"/a\"]\ncommand = [\"x\"]".into(), &[(5, "backup[0].command", "only used by kind = \"command\"")]),
        ("[[backup]]\nname = \"b\"\nrepo = \"/r\"\nkind = \"postgres\"\nurl = \"postgres://u@h/db\"\n[[drill]]\nname = \"d\"\nbackup = \"b\"\nchecks = [{ sql = \"SELECT 1\" }, { sql = \"\", min = 2, max = 1 }]".into(), &[(9, "drill[0].checks[0]", "needs `min`, `max` or `equals`"), (9, "drill[0].checks[1]", "`sql` must not be empty"), (9, "drill[0].checks[1]", "greater than `max`")]),
        // [[secret]]
        ("[[secret]]\nname = \"K\"\nlength = 32".into(), &[(3, "secret[0].length", "between 48 and 64")]),
        ("[[secret]]\nname = \"K\"\nalphabet = \"abcabc\"".into(), &[(3, "secret[0].alphabet", "at least 16 distinct")]),
        ("[[secret]]\nname = \"K\"\nalphabet = \"abcdefghijklmnop q\"".into(), &[(3, "secret[0].alphabet", "printable ascii")]),
        ("[[secret]]\nname = \"../K\"".into(), &[(2, "secret[0].name", "invalid secret name")]),
        ("[[secret]]\nname = \"K\"\nmax_age = \"1d\"\ngrace = \"2d\"".into(), &[(4, "secret[0].grace", "shorter than `max_age`")]),
        ("[[secret]]\nname = \"K\"\nhook = {}".into(), &[(1, "secret[0].hook", "needs `command` or `url`")]),
        ("[[secret]]\nname = \"K\"\nhook = { command = [] }".into(), &[(3, "secret[0].hook.command", "program to run")]),
        ("[[secret]]\nname = \"K\"\n[[secret]]\nname = \"K\"".into(), &[(4, "secret[1].name", "duplicate secret name")]),
        // [[drill]]
        ("[[drill]]\nname = \"d\"\nbackup = \"app\"".into(), &[(3, "drill[0].backup", "unknown backup \"app\"")]),
        ("[[backup]]\nname = \"app\"\nrepo = \"/r\"\npaths = [\"/a\"]\n[[drill]]\nname = \"d\"\nbackup = \"app\"\nhealth_url = \"http://h/\"\nrto_target = \"soon\"".into(), &[(8, "drill[0].health_url", "needs `start`"), (9, "drill[0].rto_target", "invalid duration")]),
        ("[[backup]]\nname = \"app\"\nrepo = \"/r\"\npaths = [\"/a\"]\n[[drill]]\nname = \"d\"\nbackup = \"app\"\nsnapshot = \"oldest\"".into(), &[(8, "drill[0].snapshot", "not a snapshot choice")]),
        ("[[backup]]\nname = \"app\"\nrepo = \"/r\"\npaths = [\"/a\"]\n[[drill]]\nname = \"d\"\nbackup = \"app\"\nsnapshot = \"older-than:90\"".into(), &[(8, "drill[0].snapshot", "older-than:")]),
        // An id is for `drill run --snapshot`, not config: it goes stale.
        ("[[backup]]\nname = \"app\"\nrepo = \"/r\"\npaths = [\"/a\"]\n[[drill]]\nname = \"d\"\nbackup = \"app\"\nsnapshot = \"abcd1234\"".into(), &[(8, "drill[0].snapshot", "not a snapshot choice")]),
        ("[[backup]]\nname = \"app\"\nrepo = \"/r\"\npaths = [\"/a\"]\n[[drill]]\nname = \"d\"\nbackup = \"app\"\nexpect_files = [\"etc/app.toml\",\n  \"../etc/passwd\", \"\"]".into(), &[(9, "drill[0].expect_files[1]", "must not contain `..`"), (9, "drill[0].expect_files[2]", "is empty")]),
        ("[[backup]]\nname = \"app\"\nrepo = \"/r\"\npaths = [\"/a\"]\nnotify = \"success\"\n[backup.verify]\nnotify = \"never\"\n[[drill]]\nname = \"d\"\nbackup = \"app\"\nnotify = \"Always\"".into(), &[(5, "backup[0].notify", "expected \"failure\" or \"always\""), (7, "backup[0].verify.notify", "not a notify setting"), (11, "drill[0].notify", "not a notify setting")]),
    ];
    for (input, expected) in table {
        check(input, expected);
    }
}

#[test]
fn an_element_with_a_type_error_does_not_cascade_into_missing_references() {
    // monitor "api" fails to deserialize, yet the SLO naming it is not an error.
    check(
        "[[monitor]]\nname = \"api\"\nurl = \"http://x/\"\nstrikes = \"2\"\n[[slo]]\nname = \"s\"\nmonitor = \"api\"",
        &[(4, "monitor[0].strikes", "invalid type")],
    );
}

#[test]
fn several_errors_in_one_element_are_all_reported() {
    check(
        "[[monitor]]\nname = \"api\"\nurl = \"http://x/\"\ninterval = \"1x\"\ntimeout = \"-1s\"\nstrikes = 0",
        &[
            (4, "monitor[0].interval", "unknown unit"),
            (5, "monitor[0].timeout", "negative"),
            (6, "monitor[0].strikes", "between 1"),
        ],
    );
}

#[test]
fn inline_arrays_of_tables_work_too() {
    let c = ok(
        "monitor = [{ name = \"a\", url = \"http://x/\" }, { name = \"b\", url = \"tcp://x:1\" }]",
    )
    .config;
    assert_eq!(c.monitors.len(), 2);
    check(
        "monitor = [{ name = \"a\", url = \"http://x/\" }, { name = \"b\", url = \"tcp://x:1\", nope = 1 }]",
        &[(1, "monitor[1].nope", "unknown field `nope`")],
    );
}

#[test]
fn warnings() {
    let channel = "[[channel]]\nname = \"ops\"\ntype = \"webhook\"\nurl = \"http://h/\"\n";
    check_warnings(
        "[[monitor]]\nname = \"a\"\nurl = \"http://x/\"\ninterval = \"10s\"\ntimeout = \"30s\"",
        &no_env,
        &[(5, "monitor[0].timeout", "longer than the interval")],
    );
    check_warnings(
        &format!("{channel}[[channel]]\nname = \"pager\"\ntype = \"pagerduty\"\nrouting_key = \"k\"\n[[route]]\nchannel = \"ops\""),
        &no_env,
        &[(6, "channel[1].name", "not used by any route")],
    );
    // With no route at all, every channel receives everything: no warning.
    check_warnings(channel, &no_env, &[]);
    check_warnings(
        "[[monitor]]\nname = \"a\"\nurl = \"http://x/\"\n[[slo]]\nname = \"s\"\nmonitor = \"a\"\ncalendar = \"month\"\nwindow = \"7d\"",
        &no_env,
        &[(8, "slo[0].window", "ignored")],
    );
    check_warnings(
        "[[monitor]]\nname = \"a\"\nurl = \"http://x/\"\n[[slo]]\nname = \"s\"\nmonitor = \"a\"\ntarget = 0.9\n[[slo.alert]]\nlong_window = \"1h\"\nshort_window = \"5m\"\nburn_rate = 14.4",
        &no_env,
        &[(11, "slo[0].alert[0].burn_rate", "can never be reached")],
    );
    check_warnings(
        "[[secret]]\nname = \"my-key\"",
        &no_env,
        &[(2, "secret[0].name", "environment-variable style")],
    );
    check_warnings(
        "[[backup]]\nname = \"app\"\nrepo = \"/r\"\npaths = [\"/a\"]\n[[drill]]\nname = \"d\"\nbackup = \"app\"\nstart = \"./run.sh\"\nrto_target = \"15m\"\ntimeout = \"5m\"",
        &no_env,
        &[(10, "drill[0].timeout", "shorter than rto_target")],
    );
    let w = ok_env(channel, &env_of(&[("TELEGRAM_BOT_TOKEN", "t")])).warnings;
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].field, "env TELEGRAM_CHAT_ID");
    assert!(w[0].to_string().contains("warning: "), "{}", w[0]);
}

#[test]
fn env_overrides() {
    let text = r#"
[[monitor]]
name = "api"
url = "http://127.0.0.1:9000/health"

[[monitor]]
name = "pinned"
url = "http://127.0.0.1:9000/health"
interval = "30s"
strikes = 5

[[slo]]
name = "a"
monitor = "api"

[[slo]]
name = "b"
monitor = "base_url"
target = 0.99
window = "7d"

[[secret]]
name = "DASHBOARD_KEY"

[[secret]]
name = "STRIPE_WEBHOOK_SECRET"
rotate = true

[[secret]]
name = "OTHER"
"#;
    let env = env_of(&[
        ("BULWARK_LISTEN", "0.0.0.0:9999"),
        ("UPTIME_INTERVAL_SEC", "15"),
        ("UPTIME_STRIKES", "3"),
        ("SLO_TARGET", "0.999"),
        ("SLO_WINDOW_DAYS", "7"),
        ("ROTATE_DASHBOARD_KEY", "0"),
        ("ROTATE_STRIPE_WEBHOOK", "false"),
        ("BASE_URL", "http://localhost:5000"),
        (
            "SLACK_WEBHOOK_URL",
            "https://hooks.slack.com/services/T/B/slacksecret",
        ),
        ("TELEGRAM_BOT_TOKEN", "123:abc"),
        ("TELEGRAM_CHAT_ID", "-100200"),
    ]);
    let c = ok_env(text, &env).config;
    assert_eq!(c.server.listen.to_string(), "0.0.0.0:9999");
    let api = c.monitor("api").unwrap();
    assert_eq!((api.interval, api.strikes), (Duration::from_secs(15), 3));
    let pinned = c.monitor("pinned").unwrap();
    assert_eq!(
        (pinned.interval, pinned.strikes),
        (Duration::from_secs(30), 5)
    );
    let base = c.monitor("base_url").unwrap();
    let MonitorKind::Http(h) = &base.kind else {
        panic!()
    };
    assert_eq!(h.url, "http://localhost:5000/healthz");
    assert_eq!(base.interval, Duration::from_secs(15));
    assert_eq!(c.slos[0].target, 0.999);
    assert_eq!(c.slos[0].window, Duration::from_secs(7 * 86_400));
    assert_eq!(c.slos[1].target, 0.99);
    let rotate: Vec<bool> = c.secrets.iter().map(|s| s.rotate).collect();
    assert_eq!(rotate, [false, false, true]);
    let slack = c.channel("slack").unwrap();
    assert!(
        matches!(&slack.kind, ChannelKind::Slack { url } if url.expose().ends_with("/slacksecret"))
    );
    let tg = c.channel("telegram").unwrap();
    assert!(
        matches!(&tg.kind, ChannelKind::Telegram { chat_id, api_base, .. } if chat_id == "-100200" && api_base == "https://api.telegram.org")
    );
    let shown = format!("{c:?}");
    assert!(
        !shown.contains("slacksecret") && !shown.contains("123:abc"),
        "{shown}"
    );

    // ROTATE_* turn rotation back on too.
    let c = ok_env(
        "[[secret]]\nname = \"DASHBOARD_KEY\"\nrotate = false",
        &env_of(&[("ROTATE_DASHBOARD_KEY", "1")]),
    )
    .config;
    assert!(c.secrets[0].rotate);
    // Empty values are unset.
    let c = ok_env(
        "",
        &env_of(&[("BULWARK_LISTEN", ""), ("SLACK_WEBHOOK_URL", " ")]),
    )
    .config;
    assert_eq!(c.server.listen.port(), 8080);
    assert!(c.channels.is_empty());
}

#[test]
fn base_url_keeps_an_explicit_path_and_yields_to_a_configured_monitor() {
    let cases = [
        ("https://app.example.com", "https://app.example.com/healthz"),
        (
            "https://app.example.com/",
            "https://app.example.com/healthz",
        ),
        (
            "https://app.example.com/status",
            "https://app.example.com/status",
        ),
        (
            "http://10.0.0.1:5000/api/health?x=1",
            "http://10.0.0.1:5000/api/health?x=1",
        ),
    ];
    for (base, expected) in cases {
        let c = ok_env("", &env_of(&[("BASE_URL", base)])).config;
        let MonitorKind::Http(h) = &c.monitors[0].kind else {
            panic!()
        };
        assert_eq!(h.url, expected);
    }
    let c = ok_env(
        "[[monitor]]\nname = \"base_url\"\nurl = \"tcp://x:1\"",
        &env_of(&[("BASE_URL", "http://y/")]),
    )
    .config;
    assert_eq!(c.monitors.len(), 1);
    assert!(matches!(c.monitors[0].kind, MonitorKind::Tcp { .. }));
}

#[test]
fn file_channels_win_over_env_channels() {
    let text = "[[channel]]\nname = \"slack\"\ntype = \"webhook\"\nurl = \"http://h/\"";
    let loaded = ok_env(text, &env_of(&[("SLACK_WEBHOOK_URL", "https://hooks/x")]));
    assert_eq!(loaded.config.channels.len(), 1);
    assert_eq!(loaded.config.channels[0].kind.type_name(), "webhook");
    assert_eq!(loaded.warnings[0].field, "env SLACK_WEBHOOK_URL");
}

#[test]
fn env_channels_can_be_routed_to() {
    let c = ok_env(
        "[[route]]\nchannel = \"telegram\"\nseverity = [\"critical\"]",
        &env_of(&[("TELEGRAM_BOT_TOKEN", "t"), ("TELEGRAM_CHAT_ID", "1")]),
    )
    .config;
    assert_eq!(c.routes[0].channel, "telegram");
    assert_eq!(c.routes[0].repeat_interval, Duration::from_secs(4 * 3600));
    assert!(c.routes[0].send_resolved);
}

#[test]
fn invalid_env_overrides_name_the_variable() {
    let table: &[(&str, &str, &str)] = &[
        ("BULWARK_LISTEN", "localhost", "invalid listen address"),
        ("UPTIME_INTERVAL_SEC", "0", "at least 1"),
        ("UPTIME_INTERVAL_SEC", "1m", "whole number of seconds"),
        ("UPTIME_STRIKES", "-2", "at least 1"),
        ("SLO_TARGET", "99.5", "between 0 and 1"),
        ("SLO_TARGET", "1", "between 0 and 1"),
        ("SLO_WINDOW_DAYS", "0", "whole number of days"),
        ("ROTATE_DASHBOARD_KEY", "no", "expected 0, 1, true or false"),
        ("ROTATE_STRIPE_WEBHOOK", "2", "expected 0, 1, true or false"),
        ("BASE_URL", "localhost:5000", "invalid url"),
        (
            "SLACK_WEBHOOK_URL",
            "hooks.slack.com/services/SECRETPART",
            "invalid url",
        ),
        ("ROLES_JSON", "not json", "invalid json"),
    ];
    for (var, value, message) in table {
        let env = env_of(&[(var, value)]);
        let field = format!("env {var}");
        check_env("", &env, &[(0, &field, message)]);
    }
    let err = parse(
        "",
        None,
        &env_of(&[("SLACK_WEBHOOK_URL", "hooks.slack.com/services/SECRETPART")]),
    )
    .unwrap_err();
    assert!(!err.to_string().contains("SECRETPART"), "{err}");
    assert_eq!(err.to_string(), format!("{}", err.diagnostics[0]));
    assert!(
        err.to_string().starts_with("env SLACK_WEBHOOK_URL: "),
        "{err}"
    );
}

#[test]
fn roles_json_adds_hashed_keys_in_serde_json_order() {
    let env = env_of(&[(
        "ROLES_JSON",
        r#"{"zz-analyst-key-123":"analyst","aa-admin-key-456":"admin"}"#,
    )]);
    let text = "[[auth.key]]\nname = \"ci\"\nrole = \"analyst\"\nhash = \"sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\"";
    let loaded = ok_env(text, &env);
    let keys = &loaded.config.auth.keys;
    assert_eq!(keys.len(), 3);
    assert_eq!(keys[0].name, "ci");
    assert_eq!(keys[0].role, Role::Analyst);
    assert_eq!(
        hex::encode(keys[0].sha256),
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    );
    // Numbered in serde_json's map order (sorted, unless some crate in the
    // build turns on its `preserve_order` feature).
    let order: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(r#"{"zz-analyst-key-123":"analyst","aa-admin-key-456":"admin"}"#)
            .unwrap();
    use sha2::Digest;
    for (i, (raw, role)) in order.iter().enumerate() {
        let key = &keys[i + 1];
        assert_eq!(key.name, format!("ROLES_JSON#{}", i + 1));
        assert_eq!(key.role.as_str(), role.as_str().unwrap());
        let expected: [u8; 32] = sha2::Sha256::digest(raw.as_bytes()).into();
        assert_eq!(key.sha256, expected);
    }
    let shown = format!("{:?}", loaded.config);
    assert!(
        !shown.contains("admin-key-456") && !shown.contains("analyst-key-123"),
        "{shown}"
    );
}

#[test]
fn roles_json_errors_never_show_the_key() {
    let cases: &[(&str, &str)] = &[
        (r#"{"SUPERSECRETKEY":"root"}"#, "ROLES_JSON#1: invalid role"),
        (r#"{"SUPERSECRETKEY":1}"#, "ROLES_JSON#1: invalid role"),
        (
            r#"{"admin":"SUPERSECRETKEY"}"#,
            "ROLES_JSON#1: invalid role",
        ),
        (r#""SUPERSECRETKEY""#, "invalid json"),
        (r#"["SUPERSECRETKEY"]"#, "invalid json"),
        (r#"{"SUPERSECRETKEY":"admin""#, "invalid json"),
        (
            r#"{"SUPERSECRETKEY":"admin","other":"analyst","SUPERSECRETKEY2":"admin"}"#,
            "",
        ),
    ];
    for (json, message) in cases {
        let result = parse("", None, &env_of(&[("ROLES_JSON", json)]));
        match (result, message.is_empty()) {
            (Ok(loaded), true) => {
                let shown = format!("{:?}", loaded);
                assert!(!shown.contains("SUPERSECRETKEY"), "{shown}");
            }
            (Err(err), false) => {
                assert_eq!(err.diagnostics.len(), 1, "{err}");
                assert_eq!(err.diagnostics[0].field, "env ROLES_JSON");
                assert!(err.to_string().contains(message), "{json}: {err}");
                assert!(!err.to_string().contains("SUPERSECRETKEY"), "{err}");
                assert!(!format!("{err:?}").contains("SUPERSECRETKEY"), "{err:?}");
            }
            (other, _) => panic!("{json}: unexpected {other:?}"),
        }
    }
}

#[test]
fn a_key_listed_twice_is_an_error() {
    let hash = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
    check(
        &format!("[[auth.key]]\nname = \"a\"\nrole = \"admin\"\nhash = \"{hash}\"\n[[auth.key]]\nname = \"b\"\nrole = \"analyst\"\nhash = \"{hash}\""),
        &[(8, "auth.key[1].hash", "already configured as \"a\"")],
    );
    // "hello" is the key whose SHA-256 that is.
    check_env(
        &format!("[[auth.key]]\nname = \"a\"\nrole = \"admin\"\nhash = \"{hash}\""),
        &env_of(&[("ROLES_JSON", r#"{"hello":"analyst"}"#)]),
        &[(
            0,
            "env ROLES_JSON",
            "ROLES_JSON#1: the same key is already configured as \"a\"",
        )],
    );
}

#[test]
fn secrets_are_redacted_everywhere() {
    let text = r#"
[server]
database = "postgres://bulwark:dbpassw0rd@db/bulwark"

[[channel]]
name = "tg"
type = "telegram"
bot_token = "tok-abc-123"
chat_id = 42

[[channel]]
name = "mail"
type = "email"
smtp_host = "smtp.example.com"
username = "alerts"
password = "mailpassw0rd"
from = "bulwark@example.com"
to = ["ops@example.com"]

[[channel]]
name = "pd"
type = "pagerduty"
routing_key = "pdroutingkey"

[[secret]]
name = "DASHBOARD_KEY"
hook = { command = ["systemctl", "reload", "app"], url = "https://hooks.example.com/rotate?token=hooktoken" }
"#;
    let c = ok(text).config;
    assert_eq!(
        c.server.database.as_ref().unwrap().expose(),
        "postgres://bulwark:dbpassw0rd@db/bulwark"
    );
    let shown = format!("{c:?}");
    for secret in [
        "dbpassw0rd",
        "tok-abc-123",
        "mailpassw0rd",
        "pdroutingkey",
        "hooktoken",
    ] {
        assert!(!shown.contains(secret), "{secret} leaked: {shown}");
    }
    assert_eq!(format!("{:?}", Secret::new("x")), "<redacted>");
    // A rejected database URL is not echoed either.
    let err = parse(
        "[server]\ndatabase = \"mysql://u:hunter2@h/db\"",
        None,
        &no_env,
    )
    .unwrap_err();
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[test]
fn a_secret_of_the_wrong_type_is_not_echoed() {
    // A numeric password, a token typed as a float, a key in a list: the
    // error names the field and the kind of value, never the value.
    let text = r#"
[[channel]]
name = "mail"
type = "email"
smtp_host = "smtp.example.com"
username = "alerts"
password = 1234567890
from = "bulwark@example.com"
to = ["ops@example.com"]

[[channel]]
name = "tg"
type = "telegram"
bot_token = 98765.4321
chat_id = 42
"#;
    check(
        text,
        &[
            (
                7,
                "channel[0].password",
                "invalid type: integer, expected a string",
            ),
            (
                14,
                "channel[1].bot_token",
                "invalid type: floating point, expected a string",
            ),
        ],
    );
    let err = parse(text, None, &no_env).unwrap_err().to_string();
    for value in ["1234567890", "98765", "4321"] {
        assert!(!err.contains(value), "{value} echoed: {err}");
    }
    assert_eq!(
        cx::without_values(r#"invalid value: string "hunter2", expected a duration"#),
        "invalid value: string, expected a duration"
    );
    assert_eq!(
        cx::without_values("unknown field `passwd`, expected one of `password`"),
        "unknown field `passwd`, expected one of `password`"
    );
}

#[test]
fn other_sections_compile_with_their_defaults() {
    let c = ok(r#"
[[monitor]]
name = "api"
url = "http://x/"

[[slo]]
name = "s"
monitor = "api"

[[maintenance]]
name = "upgrade"
start = 2026-01-01T00:00:00Z
end = "2026-01-01T02:00:00+01:00"

[[backup]]
name = "app"
repo = "s3:http://127.0.0.1:5000/backups/app"
paths = ["/srv/app"]
keep = { daily = 7, within = "2d" }
verify = { read_data_subset = "5%" }

[[backup]]
name = "code"
repo = "gs:bucket:/code"
git = true

[[secret]]
name = "DASHBOARD_KEY"

[[drill]]
name = "weekly"
backup = "app"
"#)
    .config;
    let s = &c.slos[0];
    assert_eq!(
        (s.target, s.window, s.strict),
        (0.995, Duration::from_secs(30 * 86_400), true)
    );
    assert_eq!(s.alerts, BurnRateRule::defaults());
    assert!(c.maintenance[0].monitors.is_empty());
    assert_eq!(
        (c.maintenance[0].end - c.maintenance[0].start).num_hours(),
        1
    );
    let b = &c.backups[0];
    assert_eq!(b.location.scheme(), "s3");
    assert_eq!(b.keep.daily, Some(7));
    assert_eq!(b.keep.within, Some(Duration::from_secs(2 * 86_400)));
    assert_eq!(
        b.verify,
        Some(VerifyConfig {
            schedule: None,
            read_data_subset: Some(5.0),
            sample_files: 20,
            notify: crate::config::Notify::Failure,
        })
    );
    assert!(c.backups[1].git && c.backups[1].paths.is_empty());
    assert_eq!(c.backups[1].location.scheme(), "gs");
    let sec = &c.secrets[0];
    assert_eq!((sec.length, sec.alphabet.len(), sec.rotate), (48, 62, true));
    assert_eq!(
        (sec.max_age, sec.grace),
        (
            Duration::from_secs(30 * 86_400),
            Duration::from_secs(86_400)
        )
    );
    assert_eq!(c.drills[0].timeout, Duration::from_secs(300));
}

#[test]
fn the_example_config_is_valid() {
    let text = include_str!("../../../../bulwark.example.toml");
    let loaded = ok(text);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let c = loaded.config;
    assert!(!c.monitors.is_empty() && !c.slos.is_empty() && !c.channels.is_empty());
    assert!(!c.routes.is_empty() && !c.backups.is_empty() && !c.secrets.is_empty());
    assert!(!c.drills.is_empty() && !c.maintenance.is_empty() && !c.auth.keys.is_empty());
}

#[test]
fn no_input_panics() {
    // A crude fuzz: every prefix of a realistic file must produce a result.
    let text = include_str!("../../../../bulwark.example.toml");
    for end in (0..text.len())
        .filter(|i| text.is_char_boundary(*i))
        .step_by(7)
    {
        let _ = parse(&text[..end], None, &no_env);
    }
    for odd in [
        "[[monitor]]\nname = 1",
        "monitor = 5",
        "monitor = [1, 2]",
        "[auth]\nkey = 3",
        "auth = 3",
        "[[slo]]\nalert = 5",
        "x.y.z = 1",
        "\u{feff}",
        "[[monitor]]\nname = \"é\"\nurl = \"http://é/\"",
    ] {
        let _ = parse(odd, None, &no_env);
    }
}

#[test]
fn diagnostics_display() {
    let d = Diagnostic {
        severity: Severity::Error,
        file: Some("bulwark.toml".into()),
        line: Some(12),
        column: Some(5),
        field: "monitor[1].interval".into(),
        message: "invalid duration \"6o s\"".into(),
    };
    assert_eq!(
        d.to_string(),
        "bulwark.toml:12:5: monitor[1].interval: invalid duration \"6o s\""
    );
    let w = Diagnostic {
        severity: Severity::Warning,
        file: None,
        line: None,
        column: None,
        field: "env X".into(),
        message: "m".into(),
    };
    assert_eq!(w.to_string(), "env X: warning: m");
    let e = ConfigErrors {
        diagnostics: vec![d.clone(), w],
    };
    assert_eq!(e.to_string().lines().count(), 2);
    assert_eq!(e.errors().count(), 1);
}

#[test]
fn http_url_forms() {
    for url in [
        "http://[::1]:8080/x",
        "http://user:pw@host:80/",
        "https://h?q=1",
        "http://h:65535",
    ] {
        let text = format!("[[monitor]]\nname = \"a\"\nurl = \"{url}\"");
        assert_eq!(ok(&text).config.monitors.len(), 1, "{url}");
    }
    for url in [
        "http://[::1/x",
        "http://h:0/",
        "http://h:70000/",
        "http://[]:80/",
        "http://h x/",
    ] {
        let text = format!("[[monitor]]\nname = \"a\"\nurl = \"{url}\"");
        check(&text, &[(3, "monitor[0].url", "invalid url")]);
    }
}

#[test]
fn results_retention() {
    let c = ok("");
    assert_eq!(c.config.server.results_retention, DEFAULT_RESULTS_RETENTION);
    let c = ok("[server]\nresults_retention = \"30d\"");
    assert_eq!(
        c.config.server.results_retention,
        Duration::from_secs(30 * 86_400)
    );
    check(
        "[server]\nresults_retention = \"1m\"",
        &[(2, "server.results_retention", "must be at least 2m")],
    );
}

#[test]
fn server_connection_settings() {
    let c = ok("").config;
    assert_eq!(c.server.header_read_timeout, DEFAULT_HEADER_READ_TIMEOUT);
    assert_eq!(c.server.max_connections, DEFAULT_MAX_CONNECTIONS);
    assert_eq!(c.server.shutdown_grace, DEFAULT_SHUTDOWN_GRACE);
    assert!(c.server.trusted_proxies.is_empty());

    let c = ok(r#"[server]
header_read_timeout = "5s"
max_connections = 64
shutdown_grace = "30s"
trusted_proxies = ["10.0.0.0/8", "127.0.0.1", "fd00::/8", "::1"]
"#)
    .config;
    assert_eq!(c.server.header_read_timeout, Duration::from_secs(5));
    assert_eq!(c.server.max_connections, 64);
    assert_eq!(c.server.shutdown_grace, Duration::from_secs(30));
    let shown: Vec<String> = c
        .server
        .trusted_proxies
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(shown, ["10.0.0.0/8", "127.0.0.1", "fd00::/8", "::1"]);

    check(
        "[server]\nheader_read_timeout = \"500ms\"",
        &[(2, "server.header_read_timeout", "must be at least 1s")],
    );
    check(
        "[server]\nheader_read_timeout = \"soon\"",
        &[(2, "server.header_read_timeout", "invalid duration")],
    );
    check(
        "[server]\nmax_connections = 0",
        &[(2, "server.max_connections", "must be between 1 and 1000000")],
    );
    check(
        "[server]\nmax_connections = \"many\"",
        &[(2, "server.max_connections", "invalid type")],
    );
    check(
        "[server]\nshutdown_grace = \"0s\"",
        &[(2, "server.shutdown_grace", "must be at least 1ms")],
    );
    check(
        "[server]\ntrusted_proxies = [\"10.0.0.0/8\",\n  \"10.0.0.1/8\", \"proxy.internal\",\n  \"10.0.0.0/33\"]",
        &[
            (3, "server.trusted_proxies[1]", "host bits set: did you mean 10.0.0.0/8?"),
            (3, "server.trusted_proxies[2]", "invalid address \"proxy.internal\""),
            (4, "server.trusted_proxies[3]", "expected 0 to 32"),
        ],
    );
    check(
        "[server]\ntrusted_proxies = \"10.0.0.0/8\"",
        &[(2, "server.trusted_proxies", "invalid type")],
    );
    check(
        "[server]\nrestore_roots = [\"/srv/restores\",\n  \"restores\", \"/srv/../etc\",\n  \"/\"]",
        &[
            (
                3,
                "server.restore_roots[1]",
                "must be an absolute directory",
            ),
            (3, "server.restore_roots[2]", "must not contain `..`"),
            (4, "server.restore_roots[3]", "must not be `/`"),
        ],
    );
    let c = parse(
        "[server]\nrestore_roots = [\"/srv/restores\", \" /mnt/dr \"]",
        None,
        &no_env,
    )
    .unwrap()
    .config;
    assert_eq!(
        c.server.restore_roots,
        [
            std::path::Path::new("/srv/restores"),
            std::path::Path::new("/mnt/dr")
        ]
    );
}

#[test]
fn ip_networks_contain_their_addresses() {
    let check = |net: &str, ip: &str, expected: bool| {
        let n = IpNetwork::parse(net).unwrap();
        let ip: std::net::IpAddr = ip.parse().unwrap();
        assert_eq!(n.contains(ip), expected, "{net} contains {ip}");
    };
    check("10.0.0.0/8", "10.255.1.2", true);
    check("10.0.0.0/8", "11.0.0.1", false);
    check("127.0.0.1", "127.0.0.1", true);
    check("127.0.0.1", "127.0.0.2", false);
    check("0.0.0.0/0", "203.0.113.9", true);
    check("0.0.0.0/0", "::1", false);
    // A dual-stack listener reports IPv4 peers as mapped IPv6 addresses.
    check("10.0.0.0/8", "::ffff:10.1.2.3", true);
    check("fd00::/8", "fd12::1", true);
    check("fd00::/8", "fe80::1", false);
    check("::/0", "2001:db8::1", true);
    check("::1", "::1", true);
}

#[test]
fn commands_get_only_the_environment_the_config_names() {
    let text = r#"
[[backup]]
name = "app"
repo = "/srv/backups/app"
paths = ["/srv/app"]

[[secret]]
name = "DASHBOARD_KEY"
hook = { command = ["reload"], env = { TOKEN = "s3cr3t-value", "1BAD" = "x" }, pass_env = ["HOME_URL", "BULWARK_PASSWORD"] }

[[drill]]
name = "weekly"
backup = "app"
start = "./run.sh"
pass_env = ["ROLES_JSON", "bad-name"]
"#;
    check(
        text,
        &[
            (9, "secret[0].hook.env.1BAD", "invalid variable name"),
            (
                9,
                "secret[0].hook.pass_env[1]",
                "BULWARK_PASSWORD is never passed",
            ),
            (15, "drill[0].pass_env[0]", "ROLES_JSON is never passed"),
            (
                15,
                "drill[0].pass_env[1]",
                "invalid variable name \"bad-name\"",
            ),
        ],
    );
    let err = parse(text, None, &no_env).unwrap_err().to_string();
    assert!(!err.contains("s3cr3t-value"), "{err}");

    let ok = ok(r#"
[[secret]]
name = "DASHBOARD_KEY"
hook = { command = ["reload"], env = { TOKEN = "s3cr3t-value" }, pass_env = ["HOME_URL"] }
"#);
    let env = &ok.config.secrets[0].hook.as_ref().unwrap().env;
    assert_eq!(env.pass, ["HOME_URL"]);
    assert_eq!(env.set[0].0, "TOKEN");
    assert!(!format!("{:?}", ok.config).contains("s3cr3t-value"));
}

#[test]
fn every_repository_kind_is_read_as_the_opener_reads_it_without_warnings() {
    for repo in [
        "/var/backups/app",
        "s3:http://127.0.0.1:5000/backups/app",
        "azure:backups:/app",
        "gs:bucket:/app",
    ] {
        let text = format!("[[backup]]\nname = \"b\"\nrepo = \"{repo}\"\npaths = [\"/a\"]\n");
        check_warnings(&text, &no_env, &[]);
        let loaded = ok(&text);
        let location = &loaded.config.backups[0].location;
        assert_eq!(*location, bulwark_repo::Location::parse(repo).unwrap());
        assert!(location.is_supported(), "{repo}");
    }
}

#[test]
fn backup_options_are_restics_and_bad_ones_are_named() {
    let text = "[[backup]]\nname = \"b\"\nrepo = \"s3:http://127.0.0.1:5000/backups/app\"\npaths = [\"/a\"]\noptions = { \"s3.storage-class\" = \"standard_ia\", connections = \"8\" }\n";
    let loaded = ok(text);
    let options = &loaded.config.backups[0].options;
    assert_eq!(options.s3_storage_class.as_deref(), Some("STANDARD_IA"));
    assert_eq!(options.connections, Some(8));
    check(
        &text.replace("s3.storage-class", "s3.storage_class"),
        &[(5, "backup[0].options.s3.storage_class", "unknown option")],
    );
    check(
        &text.replace("standard_ia", "GLACIER"),
        &[(5, "backup[0].options.s3.storage-class", "thaw")],
    );
}

#[test]
fn backup_credentials_are_standard_variables_from_a_value_env_or_file_and_never_echoed() {
    let base = "[[backup]]\nname = \"b\"\nrepo = \"s3:bk/app\"\npaths = [\"/a\"]\n";
    let text = format!(
        "{base}credentials = {{ AWS_ACCESS_KEY_ID = \"AKIAEXAMPLE\", AWS_SECRET_ACCESS_KEY = {{ file = \"/run/secrets/aws\" }}, AWS_SESSION_TOKEN = {{ env = \"APP_TOKEN\" }} }}\n"
    );
    let loaded = ok(&text);
    let creds = &loaded.config.backups[0].credentials;
    let names: Vec<&str> = creds.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN"
        ]
    );
    assert!(!format!("{:?}", loaded.config).contains("AKIAEXAMPLE"));
    check(
        &text.replace("AWS_SESSION_TOKEN", "AWS_TOKEN"),
        &[(
            5,
            "backup[0].credentials.AWS_TOKEN",
            "unknown credential (known: AWS_ACCESS_KEY_ID",
        )],
    );
    check(
        &text.replace("{ env = \"APP_TOKEN\" }", "{ env = \"APP-TOKEN\" }"),
        &[(
            5,
            "backup[0].credentials.AWS_SESSION_TOKEN",
            "invalid environment variable name",
        )],
    );
    check(
        &text.replace("{ env = \"APP_TOKEN\" }", "{ env = \"A\", file = \"/f\" }"),
        &[(
            5,
            "backup[0].credentials.AWS_SESSION_TOKEN",
            "exactly one of `env` and `file`",
        )],
    );
    check(
        &format!("{base}credentials = {{ AWS_ACCESS_KEY_ID = \"AKIAEXAMPLE\" }}\n"),
        &[(
            1,
            "backup[0].credentials",
            "AWS_ACCESS_KEY_ID is given without AWS_SECRET_ACCESS_KEY",
        )],
    );
    let shown: Vec<String> = diags(
        &format!("{base}credentials = {{ AZURE_ACCOUNT_KEY = 12345678 }}\n"),
        &no_env,
    )
    .iter()
    .map(|d| d.to_string())
    .collect();
    assert!(shown.iter().any(|d| d.contains("backup[0]")), "{shown:?}");
    assert!(!shown.iter().any(|d| d.contains("12345678")), "{shown:?}");
}

#[test]
fn backup_copies_parse_as_the_opener_parses_them_and_are_listed_once() {
    let text = "[[backup]]\nname = \"b\"\nrepo = \"/srv/b\"\npaths = [\"/a\"]\nrepos = [\"s3:http://127.0.0.1:5000/bk/b\", \"/mnt/usb/b\"]\n";
    let loaded = ok(text);
    let b = &loaded.config.backups[0];
    assert_eq!(b.copies, ["s3:http://127.0.0.1:5000/bk/b", "/mnt/usb/b"]);
    assert_eq!(b.repositories().count(), 3);
    check(
        &text.replace("\"/mnt/usb/b\"", "\"/srv/b\""),
        &[(5, "backup[0].repos", "listed twice")],
    );
    check(
        &text.replace("/mnt/usb/b", "s3:"),
        &[(5, "backup[0].repos", "s3")],
    );
}

#[test]
fn env_only_set_ups_get_the_seed_slo_and_secrets() {
    let env = env_of(&[
        ("BASE_URL", "http://127.0.0.1:5000"),
        ("SLO_TARGET", "0.99"),
        ("SLO_WINDOW_DAYS", "7"),
        ("ROTATE_DASHBOARD_KEY", "1"),
        ("ROTATE_STRIPE_WEBHOOK", "0"),
    ]);
    let c = ok_env("", &env).config;
    assert_eq!(c.slos.len(), 1);
    let slo = &c.slos[0];
    assert_eq!(
        (slo.name.as_str(), slo.monitor.as_str()),
        ("base_url", "base_url")
    );
    assert_eq!(
        (slo.target, slo.window),
        (0.99, Duration::from_secs(7 * 86_400))
    );
    assert!(slo.strict, "the original /healthz/strict watched it");
    // Asked to rotate: made with the documented defaults. Told not to: not made.
    let names: Vec<&str> = c.secrets.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["DASHBOARD_KEY"]);
    let key = &c.secrets[0];
    assert_eq!((key.length, key.rotate), (48, true));
    assert_eq!(key.max_age, Duration::from_secs(30 * 86_400));

    // The file's own SLO on base_url, or its own base_url monitor, wins.
    let c = ok_env(
        "[[slo]]\nname = \"mine\"\nmonitor = \"base_url\"\ntarget = 0.9",
        &env,
    )
    .config;
    let names: Vec<&str> = c.slos.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["mine"]);
    let c = ok_env(
        "[[monitor]]\nname = \"base_url\"\nurl = \"tcp://x:1\"",
        &env,
    )
    .config;
    assert!(c.slos.is_empty());
}

#[test]
fn notify_defaults_to_failure_and_verify_inherits_the_backups() {
    use crate::config::Notify;
    let c = ok(r#"
[[backup]]
name = "a"
repo = "/r"
paths = ["/a"]
notify = "always"
[backup.verify]
schedule = "0 4 * * *"

[[backup]]
name = "b"
repo = "/r"
paths = ["/a"]
[backup.verify]
notify = "always"

[[drill]]
name = "d"
backup = "b"
snapshot = "older-than:90d"
"#)
    .config;
    let notify = |b: &crate::config::BackupConfig| (b.notify, b.verify.as_ref().unwrap().notify);
    assert_eq!(notify(&c.backups[0]), (Notify::Always, Notify::Always));
    assert_eq!(notify(&c.backups[1]), (Notify::Failure, Notify::Always));
    assert_eq!(c.drills[0].notify, Notify::Failure);
    assert_eq!(
        c.drills[0].snapshot,
        crate::drill::SnapshotSpec::OlderThan(Duration::from_secs(90 * 86_400))
    );
    assert!(c.drills[0].expect_files.is_empty());
}

#[test]
fn a_database_url_is_never_quoted() {
    for url in [
        "mysql://u:hunter2@h/db",
        "postgres://u:hunter2@h:5432",
        "postgres://u:hunter2@h/d%20b",
    ] {
        let input = format!(
            "[[backup]]\nname = \"b\"\nrepo = \"/r\"\nkind = \"postgres\"\nurl = \"{url}\""
        );
        let all = diags(&input, &no_env);
        assert!(!all.is_empty(), "{url} passed");
        for d in all {
            assert!(!d.to_string().contains("hunter2"), "{d}");
        }
    }
}
