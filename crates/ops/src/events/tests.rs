use std::time::Duration;

use super::ship::retry_delay;
use super::sink::cloudwatch::{chunks, timestamps, EVENT_OVERHEAD, MAX_BYTES, MAX_EVENTS};
use super::sink::syslog::{format_message, truncate};
use super::sink::Line;
use crate::config::{SinkKind, SyslogTransport};

fn parse(text: &str) -> Result<crate::config::Config, String> {
    crate::settings::parse(text, None, &|_| None)
        .map(|l| l.config)
        .map_err(|e| e.to_string())
}

/// Each config and the (line, field, message part) of every error it must give.
fn check(input: &str, expected: &[(usize, &str, &str)]) {
    let errors = match crate::settings::parse(input, None, &|_| None) {
        Ok(_) if expected.is_empty() => return,
        Ok(_) => panic!("expected errors {expected:?} for\n{input}"),
        Err(e) => e.diagnostics,
    };
    let errors: Vec<_> = errors
        .iter()
        .filter(|d| d.severity == crate::config::Severity::Error)
        .collect();
    assert_eq!(errors.len(), expected.len(), "{input}\n{errors:#?}");
    for (d, (line, field, msg)) in errors.iter().zip(expected) {
        assert_eq!(d.line, Some(*line), "{d:?}");
        assert_eq!(d.field, *field, "{d:?}");
        assert!(d.message.contains(msg), "{d:?} should say {msg:?}");
    }
}

#[test]
fn sink_config_table() {
    check(
        "[[sink]]\nname = \"f\"\ntype = \"file\"\nevents = [\"audit\", \"job\"]\n",
        &[],
    );
    check(
        "[[sink]]\nname = \"f\"\ntype = \"kafka\"\n",
        &[(3, "sink[0].type", "unknown sink type \"kafka\"")],
    );
    check(
        "[[sink]]\nname = \"f\"\ntype = \"file\"\nevents = [\"audit\", \"logins\"]\n",
        &[(4, "sink[0].events[1]", "unknown event kind \"logins\"")],
    );
    check(
        "[[sink]]\nname = \"f\"\ntype = \"file\"\ncolour = \"red\"\n",
        &[(4, "sink[0].colour", "unknown field `colour`")],
    );
    check(
        "[[sink]]\nname = \"f\"\ntype = \"file\"\nurl = \"http://x/\"\n",
        &[(4, "sink[0].url", "`url` does not apply to a file sink")],
    );
    check(
        "[[sink]]\nname = \"f\"\ntype = \"file\"\npath = \"../escape.ndjson\"\n",
        &[(4, "sink[0].path", "must stay below")],
    );
    check(
        "[[sink]]\nname = \"s\"\ntype = \"syslog\"\nurl = \"smtp://h:25\"\n",
        &[(4, "sink[0].url", "unknown scheme `smtp`")],
    );
    check(
        "[[sink]]\nname = \"s\"\ntype = \"syslog\"\nurl = \"udp://h:514\"\nfacility = \"local9\"\n",
        &[(5, "sink[0].facility", "unknown facility")],
    );
    check(
        "[[sink]]\nname = \"s\"\ntype = \"syslog\"\nurl = \"tcp://h:514\"\nca_file = \"/ca.pem\"\n",
        &[(5, "sink[0].ca_file", "tls:// only")],
    );
    check(
        "[[sink]]\nname = \"c\"\ntype = \"cloudwatch\"\ngroup = \"g\"\n",
        &[(1, "sink[0]", "needs `stream`")],
    );
    check(
        "[[sink]]\nname = \"h\"\ntype = \"http\"\nurl = \"ftp://x\"\n",
        &[(4, "sink[0].url", "invalid url")],
    );
    check(
        "[[sink]]\nname = \"a\"\ntype = \"file\"\n[[sink]]\nname = \"a\"\ntype = \"file\"\n",
        &[(5, "sink[1].name", "duplicate sink name \"a\"")],
    );
}

#[test]
fn sinks_compile_with_defaults() {
    let config = parse(
        r#"
[[sink]]
name = "audit-file"
type = "file"
[[sink]]
name = "sys"
type = "syslog"
url = "tls://logs.example.com:6514"
facility = "authpriv"
[[sink]]
name = "siem"
type = "http"
url = "https://siem.example.com/ingest?token=abc"
headers = { Authorization = "Bearer s3cret" }
"#,
    )
    .unwrap();
    match &config.sinks[0].kind {
        SinkKind::File { path } => assert_eq!(path.to_str(), Some("audit-file.ndjson")),
        other => panic!("{other:?}"),
    }
    assert!(config.sinks[0].events.is_empty() && config.sinks[0].wants("job"));
    match &config.sinks[1].kind {
        SinkKind::Syslog(s) => {
            assert_eq!(s.transport, SyslogTransport::Tls);
            assert_eq!(
                (s.host.as_str(), s.port, s.facility),
                ("logs.example.com", 6514, 10)
            );
        }
        other => panic!("{other:?}"),
    }
    // Neither the URL's token nor the header's value prints.
    let printed = format!("{:?}", config.sinks[2]);
    assert!(
        !printed.contains("abc") && !printed.contains("s3cret"),
        "{printed}"
    );
}

fn line(at_ms: i64, severity: u8, json: &str) -> Line {
    Line {
        at: crate::time::Timestamp::from_millis(at_ms),
        kind: "audit".to_string(),
        severity,
        json: json.to_string(),
    }
}

#[test]
fn rfc5424_message() {
    let m = format_message(16, "host1", 42, &line(1_700_000_000_123, 4, "{\"a\":1}"));
    assert_eq!(
        m,
        format!(
            "<132>1 2023-11-14T22:13:20.123Z host1 bulwark 42 audit [origin software=\"bulwark\" swVersion=\"{}\"] {{\"a\":1}}",
            env!("CARGO_PKG_VERSION")
        )
    );
}

#[test]
fn truncation_keeps_characters_whole() {
    assert_eq!(truncate("abc", 5), "abc");
    assert_eq!(truncate("abcdef", 4), "abcd");
    // "é" is two bytes: cutting inside it drops it.
    assert_eq!(truncate("aé", 2), "a");
}

#[test]
fn cloudwatch_batches_within_limits() {
    // Timestamps never go backwards, whatever the lines say.
    let lines = vec![line(10, 6, "a"), line(5, 6, "b"), line(20, 6, "c")];
    let ts: Vec<i64> = timestamps(&lines).iter().map(|(t, _)| *t).collect();
    assert_eq!(ts, vec![10, 10, 20]);

    let check = |events: Vec<(i64, String)>, sizes: &[usize]| {
        let refs: Vec<(i64, &str)> = events.iter().map(|(t, m)| (*t, m.as_str())).collect();
        let got: Vec<usize> = chunks(&refs).iter().map(|c| c.len()).collect();
        assert_eq!(got, sizes);
        for c in chunks(&refs) {
            let bytes: usize = c.iter().map(|(_, m)| m.len() + EVENT_OVERHEAD).sum();
            assert!(c.len() <= MAX_EVENTS && bytes <= MAX_BYTES);
            assert!(c.last().unwrap().0 - c[0].0 < 24 * 3_600_000);
        }
    };
    check(vec![], &[]);
    check((0..3).map(|i| (i, "x".into())).collect(), &[3]);
    check(
        (0..25_000).map(|i| (i, "x".into())).collect(),
        &[10_000, 10_000, 5_000],
    );
    // 100 KiB messages: ten fit in 1 MiB with their overhead, not eleven.
    let big = "y".repeat(102_400);
    check((0..12).map(|i| (i, big.clone())).collect(), &[10, 2]);
    // Events more than a day apart go to separate calls.
    let day = 24 * 3_600_000;
    check(
        vec![(0, "a".into()), (day - 1, "b".into()), (day, "c".into())],
        &[2, 1],
    );
}

#[test]
fn retry_delays_grow_with_jitter_and_honour_retry_after() {
    let (min, max) = (Duration::from_secs(1), Duration::from_secs(300));
    let d = |n, j| retry_delay(n, None, min, max, j);
    assert_eq!(d(1, 0.0), Duration::from_millis(500));
    assert_eq!(d(1, 1.0), Duration::from_secs(1));
    assert_eq!(d(4, 1.0), Duration::from_secs(8));
    assert_eq!(d(4, 0.0), Duration::from_secs(4));
    // Capped, however many failures.
    assert_eq!(d(40, 1.0), max);
    assert_eq!(d(u32::MAX, 0.0), max / 2);
    assert_eq!(
        retry_delay(3, Some(Duration::from_secs(7)), min, max, 0.5),
        Duration::from_secs(7)
    );
    assert_eq!(
        retry_delay(3, Some(Duration::from_secs(9000)), min, max, 0.5),
        max
    );
}

#[test]
fn severities() {
    let check = |kind: &str, body: serde_json::Value, want: u8| {
        assert_eq!(super::severity(kind, &body), want, "{kind} {body}");
    };
    check("audit", serde_json::json!({"outcome": "success"}), 5);
    check("audit", serde_json::json!({"outcome": "denied"}), 4);
    check("incident", serde_json::json!({"state": "opened"}), 3);
    check("incident", serde_json::json!({"state": "resolved"}), 5);
    check("alert", serde_json::json!({"outcome": "failed"}), 4);
    check("job", serde_json::json!({"status": "failure"}), 3);
    check("job", serde_json::json!({"status": "success"}), 6);
    check("drill", serde_json::json!({"passed": false}), 3);
    check("ship", serde_json::json!({"level": "ERROR"}), 3);
    check("ship", serde_json::json!({"message": "x"}), 6);
}

/// A file sink owns its file: one on Bulwark's own logs (uptime.ndjson,
/// ...) or on another sink's file would interleave two writers, and its
/// take-back after a failed batch (`set_len`) would cut the other's lines.
#[test]
fn file_sinks_never_share_a_file() {
    check(
        "[[sink]]\nname = \"uptime\"\ntype = \"file\"\n",
        &[(2, "sink[0].name", "uptime.ndjson")],
    );
    check(
        "[[sink]]\nname = \"f\"\ntype = \"file\"\npath = \"secret_rotations.ndjson\"\n",
        &[(4, "sink[0].path", "secret_rotations.ndjson")],
    );
    check(
        "[[sink]]\nname = \"a\"\ntype = \"file\"\npath = \"all.ndjson\"\n\n[[sink]]\nname = \"b\"\ntype = \"file\"\npath = \"all.ndjson\"\n",
        &[(9, "sink[1].path", "all.ndjson")],
    );
    check(
        "[[sink]]\nname = \"a\"\ntype = \"file\"\npath = \"all.ndjson\"\n\n[[sink]]\nname = \"b\"\ntype = \"file\"\npath = \"b.ndjson\"\n",
        &[],
    );
}
