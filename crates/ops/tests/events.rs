//! The event stream and its sinks against real receivers: an HTTP
//! endpoint that fails then recovers, loopback syslog listeners (UDP and
//! TCP), CloudWatch Logs on moto behind a proxy that goes down, a file
//! sink; cursors surviving a restart; and no secret in anything shipped.

mod common;

use bulwark_ops::{open_incident, resolve_incident};
use std::sync::Arc;
use std::time::Duration;

use bulwark_ops::{
    append_audit, event_cursor, event_head, list_events, parse_settings, prune_events, ship_stream,
    verify_audit, Actor, Config, Entry, EventKind, Outcome, ShipError, ShipObserver, ShipOptions,
    Shipper, SinkConfig, Store,
};
use common::TestDb;
use tokio::io::AsyncReadExt;

fn config(text: &str) -> Config {
    parse_settings(text, None, &|_| None)
        .unwrap_or_else(|e| panic!("config:\n{text}\n{e}"))
        .config
}

fn sink(text: &str) -> SinkConfig {
    config(text).sinks[0].clone()
}

fn fast() -> ShipOptions {
    ShipOptions {
        poll: Duration::from_millis(50),
        min_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(400),
        // Short, so a shipper dropped as in a crash is replaced quickly.
        lease: Duration::from_secs(1),
        observer: None,
    }
}

/// `n` audit records (each one event), targets `t{from}`..
async fn audit_events(store: &Store, from: usize, n: usize) {
    for i in from..from + n {
        append_audit(
            store,
            Entry::new(
                &Actor::system("test"),
                "test.event",
                &format!("t{i}"),
                Outcome::Success,
            ),
        )
        .await
        .unwrap();
    }
}

/// The `target`s of the audit events in NDJSON `text`, in order.
fn targets(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"));
            v["body"]["target"].as_str().unwrap_or("").to_string()
        })
        .collect()
}

fn expected(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("t{i}")).collect()
}

/// Calls `ship_once` until nothing is left, waiting for another
/// shipper's lease to lapse first if need be; the cursor.
async fn until_caught_up(shipper: &mut Shipper) -> i64 {
    for _ in 0..300 {
        let p = shipper.ship_once().await.expect("ship");
        if !p.leased {
            tokio::time::sleep(Duration::from_millis(100)).await;
        } else if p.read == 0 {
            return p.cursor;
        }
    }
    panic!("never caught up");
}

async fn stream_store_body(store: Store, db: TestDb) {
    // Every audit record is an event, in seq order, committed with it.
    let created =
        bulwark_ops::create_key(&store, &Actor::cli(), bulwark_ops::Role::Analyst, "grafana")
            .await
            .unwrap();
    audit_events(&store, 0, 3).await;
    let all = list_events(&store, 0, None, 100).await.unwrap();
    let seqs: Vec<i64> = all.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4]);
    assert_eq!(all[0].kind, "audit");
    assert_eq!(all[0].body["action"], "key.create");
    assert!(!all[0].to_json().contains(created.secret.expose().as_str()));
    assert!(verify_audit(&store).await.unwrap().is_intact());

    // Incidents open and resolve as events of their own.
    open_incident(
        &store,
        "api",
        bulwark_ops::Timestamp::from_millis(1_000),
        "answered 503",
    )
    .await
    .unwrap();
    resolve_incident(&store, "api", bulwark_ops::Timestamp::from_millis(2_000))
        .await
        .unwrap();
    let incidents = list_events(&store, 0, Some(EventKind::Incident), 100)
        .await
        .unwrap();
    let states: Vec<&str> = incidents
        .iter()
        .map(|e| e.body["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, vec!["opened", "resolved"]);
    assert_eq!(event_head(&store).await.unwrap(), 6);

    // A finished job run, its summary's URL cut to the origin.
    use bulwark_ops::{claim_run, finish_run, RunOutcome, Trigger};
    let at = chrono::Utc::now();
    let mut run = claim_run(
        &store,
        "verify:app",
        at,
        Trigger::Manual,
        "t",
        &Actor::cli(),
        at,
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    finish_run(
        &store,
        &mut run,
        RunOutcome::Failure,
        "http://u:pw@10.0.0.1:9000/x?token=tk answered 500",
        at + chrono::Duration::milliseconds(1500),
    )
    .await
    .unwrap();
    let jobs = list_events(&store, 0, Some(EventKind::Job), 100)
        .await
        .unwrap();
    assert_eq!(jobs.len(), 1, "{jobs:#?}");
    assert_eq!(
        jobs[0].body,
        serde_json::json!({
            "job": "verify:app",
            "run": run.id,
            "trigger": "manual",
            "status": "failure",
            "summary": "http://10.0.0.1:9000 answered 500",
            "duration_seconds": 1.5,
        })
    );
    let job_seq = jobs[0].seq;

    // Pruning keeps what a sink has not confirmed, and the newest event.
    let everything = bulwark_ops::Timestamp::from_millis(i64::MAX);
    assert_eq!(
        prune_events(&store, &["siem".to_string()], everything)
            .await
            .unwrap(),
        0
    );
    let data = tempfile::tempdir().unwrap();
    let cfg = sink("[[sink]]\nname = \"siem\"\ntype = \"file\"\nbatch = 4\n");
    let mut shipper = Shipper::new(store.clone(), &cfg, data.path(), fast()).unwrap();
    let p = shipper.ship_once().await.unwrap();
    assert_eq!((p.read, p.sent, p.cursor), (4, 4, 4));
    // One shipper per sink: a second one (another instance) waits while
    // the first holds the lease.
    let mut long = fast();
    long.lease = Duration::from_secs(600);
    let mut holder = Shipper::new(
        store.clone(),
        &sink("[[sink]]\nname = \"other\"\ntype = \"file\"\n"),
        data.path(),
        long.clone(),
    )
    .unwrap();
    assert!(holder.ship_once().await.unwrap().leased);
    let mut second = Shipper::new(
        store.clone(),
        &sink("[[sink]]\nname = \"other\"\ntype = \"file\"\n"),
        data.path(),
        long,
    )
    .unwrap();
    let p2 = second.ship_once().await.unwrap();
    assert!(!p2.leased && p2.read == 0, "{p2:?}");
    assert_eq!(
        prune_events(&store, &["siem".to_string()], everything)
            .await
            .unwrap(),
        4
    );
    until_caught_up(&mut shipper).await;
    assert_eq!(
        prune_events(&store, &["siem".to_string()], everything)
            .await
            .unwrap(),
        u64::try_from(job_seq - 5).unwrap(),
        "all but the newest"
    );
    // The newest stays, so the next event still follows the cursor.
    let store2 = db.open_again().await.unwrap();
    audit_events(&store2, 10, 1).await;
    assert_eq!(event_head(&store2).await.unwrap(), job_seq + 1);
    let p = shipper.ship_once().await.unwrap();
    assert_eq!((p.read, p.cursor), (1, job_seq + 1));
}
on_both!(stream_and_pruning, stream_store_body);

async fn http_body(store: Store, db: TestDb) {
    let (url, seen) = common::scripted_receiver(vec![(500, None), (429, Some("1"))]).await;
    let cfg = sink(&format!(
        "[[sink]]\nname = \"h\"\ntype = \"http\"\nurl = \"{url}\"\nbatch = 3\n\
         headers = {{ Authorization = \"Bearer sink-header-secret\" }}\n"
    ));
    let data = tempfile::tempdir().unwrap();
    audit_events(&store, 0, 7).await;
    let mut shipper = Shipper::new(store.clone(), &cfg, data.path(), fast()).unwrap();

    // 500: nothing confirmed, the cursor stays.
    let e = shipper.ship_once().await.unwrap_err();
    assert!(e.to_string().contains("500"), "{e}");
    assert_eq!(event_cursor(&store, "h").await.unwrap(), 0);
    // 429 with Retry-After: the shipper is told how long to wait.
    match shipper.ship_once().await.unwrap_err() {
        ShipError::Sink { retry_after, .. } => {
            assert_eq!(retry_after, Some(Duration::from_secs(1)))
        }
        other => panic!("{other}"),
    }
    assert_eq!(event_cursor(&store, "h").await.unwrap(), 0);
    // Recovered: one batch, then a restart (the shipper dropped without a
    // clean stop, as in a crash), a new shipper on a new connection to the
    // same database takes over once the lease lapses.
    let p = shipper.ship_once().await.unwrap();
    assert_eq!((p.sent, p.cursor), (3, 3));
    drop(shipper);
    let store2 = db.open_again().await.unwrap();
    let mut shipper = Shipper::new(store2.clone(), &cfg, data.path(), fast()).unwrap();
    assert_eq!(until_caught_up(&mut shipper).await, 7);

    let s = seen.lock().unwrap();
    assert_eq!(s.requests.len(), 5, "500, 429, then three batches");
    assert_eq!(targets(&s.accepted.concat()), expected(0..7));
    for body in &s.accepted {
        assert!(body.lines().count() <= 3);
    }
    let all = s.requests.concat();
    assert!(!all.contains("sink-header-secret"));
}
on_both!(http_sink_fails_then_recovers_exactly_once, http_body);

async fn http_too_large_body(store: Store, _db: TestDb) {
    // The receiver takes at most 2 lines per request, and never the one
    // event whose target is long: a batch of 5 is split until it fits,
    // and the event refused alone is skipped instead of blocking the rest.
    let (url, seen) = common::receiver(|body| {
        if body.lines().count() > 2 || body.contains("huge-") {
            (413, None)
        } else {
            (200, None)
        }
    })
    .await;
    let cfg = sink(&format!(
        "[[sink]]\nname = \"h\"\ntype = \"http\"\nurl = \"{url}\"\nbatch = 5\n"
    ));
    let data = tempfile::tempdir().unwrap();
    audit_events(&store, 0, 3).await;
    append_audit(
        &store,
        Entry::new(
            &Actor::system("test"),
            "test.event",
            &format!("huge-{}", "x".repeat(4096)),
            Outcome::Success,
        ),
    )
    .await
    .unwrap();
    audit_events(&store, 3, 4).await;
    let mut shipper = Shipper::new(store.clone(), &cfg, data.path(), fast()).unwrap();

    let p = shipper.ship_once().await.unwrap();
    assert_eq!((p.read, p.sent, p.dropped, p.cursor), (5, 5, 1, 5));
    let p = shipper.ship_once().await.unwrap();
    assert_eq!((p.read, p.dropped, p.cursor), (3, 0, 8));

    let s = seen.lock().unwrap();
    assert_eq!(
        targets(&s.accepted.concat()),
        expected(0..7),
        "all but the huge one, once, in order"
    );
    assert!(s.accepted.iter().all(|b| b.lines().count() <= 2));
    // The window halves on each refusal and doubles after each success:
    // 5 (413), 2, 3 (413), 1, 2 (413), the huge one alone (413, skipped),
    // 1; then 3 (413), 1, 2. Not one request per event after a split.
    assert_eq!(s.requests.len(), 10, "{:#?}", s.requests);
}
on_both!(
    http_sink_splits_batches_it_refuses_as_too_large,
    http_too_large_body
);

async fn running_body(store: Store, _db: TestDb) {
    // The shipper task: failures in a row, then every event once, in
    // order, including events written while it runs; it stops on shutdown.
    let (url, seen) = common::scripted_receiver(vec![(503, None), (500, None), (502, None)]).await;
    let cfg = sink(&format!(
        "[[sink]]\nname = \"h\"\ntype = \"http\"\nurl = \"{url}\"\nbatch = 4\nevents = [\"audit\"]\n"
    ));
    let data = tempfile::tempdir().unwrap();
    audit_events(&store, 0, 5).await;
    // Not shipped to this sink: its filter takes audit events only.
    open_incident(
        &store,
        "api",
        bulwark_ops::Timestamp::from_millis(1_000),
        "down",
    )
    .await
    .unwrap();
    let mut long = fast();
    long.lease = Duration::from_secs(600);
    let observed = Arc::new(Observed::default());
    long.observer = Some(observed.clone());
    let shipper = Shipper::new(store.clone(), &cfg, data.path(), long.clone()).unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(shipper.run(stopped));
    audit_events(&store, 5, 6).await;
    let head = event_head(&store).await.unwrap();
    let caught_up = async {
        while event_cursor(&store, "h").await.unwrap() < head {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), caught_up)
        .await
        .expect("the shipper caught up");
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("the shipper stopped")
        .unwrap();
    let accepted = seen.lock().unwrap().accepted.concat();
    assert_eq!(targets(&accepted), expected(0..11));
    // What metrics are told: three failures, eleven events, no lag left.
    let o = *observed.0.lock().unwrap();
    assert_eq!((o.0, o.1, o.2), (11, 3, 0), "shipped, failures, lag");
    // A clean stop gives the sink up: another shipper takes it at once,
    // long before the stopped one's lease would have lapsed.
    let mut next = Shipper::new(store.clone(), &cfg, data.path(), fast()).unwrap();
    assert!(next.ship_once().await.unwrap().leased);
}
on_both!(shipper_task_retries_and_stops, running_body);

/// (events shipped, failures, last lag) as a shipper reports them.
#[derive(Default)]
struct Observed(std::sync::Mutex<(usize, usize, i64)>);

impl ShipObserver for Observed {
    fn shipped(&self, _sink: &str, sent: usize, lag: i64) {
        let mut o = self.0.lock().unwrap();
        o.0 += sent;
        o.2 = lag;
    }

    fn failed(&self, _sink: &str) {
        self.0.lock().unwrap().1 += 1;
    }
}

/// `<PRI>1 TIMESTAMP HOSTNAME bulwark PROCID MSGID [SD] MSG`: the parts.
fn parse_5424(m: &str) -> (u32, serde_json::Value) {
    let rest = m.strip_prefix('<').unwrap_or_else(|| panic!("{m}"));
    let (pri, rest) = rest.split_once(">1 ").unwrap_or_else(|| panic!("{m}"));
    let fields: Vec<&str> = rest.splitn(6, ' ').collect();
    assert_eq!(fields.len(), 6, "{m}");
    chrono::DateTime::parse_from_rfc3339(fields[0]).unwrap_or_else(|e| panic!("{m}: {e}"));
    assert_eq!(fields[1], "bulwark-test-host");
    assert_eq!(fields[2], "bulwark");
    assert_eq!(fields[3], std::process::id().to_string());
    assert_eq!(fields[4], "audit");
    let sd_end = fields[5].find("] ").unwrap_or_else(|| panic!("{m}"));
    assert!(fields[5].starts_with("[origin software=\"bulwark\""), "{m}");
    let json =
        serde_json::from_str(&fields[5][sd_end + 2..]).unwrap_or_else(|e| panic!("{m}: {e}"));
    (pri.parse().unwrap(), json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_udp_datagrams() {
    let (store, _db) = common::sqlite().await;
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = socket.local_addr().unwrap().port();
    let cfg = sink(&format!(
        "[[sink]]\nname = \"s\"\ntype = \"syslog\"\nurl = \"udp://127.0.0.1:{port}\"\n\
         facility = \"authpriv\"\nhostname = \"bulwark-test-host\"\nmax_message = 600\n"
    ));
    audit_events(&store, 0, 3).await;
    // An event longer than max_message: its datagram is cut, not dropped.
    append_audit(
        &store,
        Entry::new(
            &Actor::system("test"),
            "test.event",
            "long",
            Outcome::Denied,
        )
        .detail(serde_json::json!({ "note": "é".repeat(400) })),
    )
    .await
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut shipper = Shipper::new(store.clone(), &cfg, data.path(), fast()).unwrap();
    assert_eq!(shipper.ship_once().await.unwrap().sent, 4);
    let mut got = Vec::new();
    let mut buf = vec![0_u8; 70_000];
    for _ in 0..4 {
        let n = tokio::time::timeout(Duration::from_secs(10), socket.recv(&mut buf))
            .await
            .expect("a datagram")
            .unwrap();
        got.push(buf[..n].to_vec());
    }
    for (i, d) in got[..3].iter().enumerate() {
        let (pri, json) = parse_5424(std::str::from_utf8(d).unwrap());
        // authpriv (10) * 8 + notice (5): a successful audit record.
        assert_eq!(pri, 85);
        assert_eq!(json["body"]["target"], format!("t{i}"));
        assert_eq!(json["seq"], i as i64 + 1);
    }
    let long = std::str::from_utf8(&got[3]).expect("cut at a character boundary");
    assert!(long.len() <= 600 && long.len() > 590, "{}", long.len());
    // authpriv, warning: a refusal.
    assert!(long.starts_with("<84>1 "), "{long}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_tcp_octet_counting() {
    let (store, _db) = common::sqlite().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let cfg = sink(&format!(
        "[[sink]]\nname = \"s\"\ntype = \"syslog\"\nurl = \"tcp://127.0.0.1:{port}\"\n\
         hostname = \"bulwark-test-host\"\nbatch = 4\n"
    ));
    // Multi-byte characters and a newline inside the message: octet
    // counting frames by bytes, so neither may confuse a receiver.
    audit_events(&store, 0, 6).await;
    append_audit(
        &store,
        Entry::new(&Actor::system("test"), "test.event", "t6", Outcome::Success)
            .detail(serde_json::json!({ "note": "ünïcödé\nsecond line" })),
    )
    .await
    .unwrap();
    let received = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut bytes = Vec::new();
        let mut buf = [0_u8; 4096];
        // Until 7 frames have arrived.
        loop {
            let n = sock.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed early");
            bytes.extend_from_slice(&buf[..n]);
            if frames(&bytes).len() == 7 {
                return bytes;
            }
        }
    });
    let data = tempfile::tempdir().unwrap();
    let mut shipper = Shipper::new(store.clone(), &cfg, data.path(), fast()).unwrap();
    until_caught_up(&mut shipper).await;
    let bytes = tokio::time::timeout(Duration::from_secs(10), received)
        .await
        .expect("frames arrived")
        .unwrap();
    let frames = frames(&bytes);
    let mut targets = Vec::new();
    for f in &frames {
        let (pri, json) = parse_5424(f);
        assert_eq!(pri, 16 * 8 + 5, "local0 by default");
        targets.push(json["body"]["target"].as_str().unwrap().to_string());
    }
    assert_eq!(targets, expected(0..7));
    assert!(frames[6].contains("ünïcödé"));
}

/// RFC 6587 octet-counted frames (`LEN SP MSG`) of a complete stream;
/// panics on a malformed frame.
fn frames(mut bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let Some(sp) = bytes.iter().position(|b| *b == b' ') else {
            break;
        };
        let len: usize = std::str::from_utf8(&bytes[..sp])
            .unwrap()
            .parse()
            .unwrap_or_else(|_| panic!("bad frame length in {:?}", String::from_utf8_lossy(bytes)));
        if bytes.len() < sp + 1 + len {
            break;
        }
        let msg = std::str::from_utf8(&bytes[sp + 1..sp + 1 + len]).unwrap();
        assert!(
            msg.starts_with('<'),
            "frame does not start a message: {msg}"
        );
        out.push(msg.to_string());
        bytes = &bytes[sp + 1 + len..];
    }
    out
}

async fn cloudwatch_body(store: Store, db: TestDb) {
    let moto = common::moto_endpoint();
    let target = moto
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let mut proxy = common::Proxy::start(&target).await;
    let id = hex::encode(rand::random::<[u8; 6]>());
    let (group, stream) = (format!("bulwark-{id}"), format!("events-{id}"));
    let cfg = sink(&format!(
        "[[sink]]\nname = \"cw\"\ntype = \"cloudwatch\"\ngroup = \"{group}\"\nstream = \"{stream}\"\n\
         region = \"us-east-1\"\nendpoint = \"http://127.0.0.1:{}\"\nbatch = 10\n",
        proxy.port
    ));
    std::env::set_var("AWS_ACCESS_KEY_ID", "bulwark-test");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "bulwark-test-secret");
    let data = tempfile::tempdir().unwrap();
    audit_events(&store, 0, 25).await;
    let mut shipper = Shipper::new(store.clone(), &cfg, data.path(), fast()).unwrap();
    // The group and stream do not exist: the first batch creates them.
    let mut sent = Vec::new();
    loop {
        let p = shipper.ship_once().await.unwrap();
        if p.read == 0 {
            break;
        }
        sent.push(p.sent);
    }
    assert_eq!(sent, vec![10, 10, 5]);

    // An outage: the endpoint refuses connections; nothing moves.
    proxy.stop().await;
    audit_events(&store, 25, 7).await;
    let before = event_cursor(&store, "cw").await.unwrap();
    assert!(shipper.ship_once().await.is_err());
    assert!(shipper.ship_once().await.is_err());
    assert_eq!(event_cursor(&store, "cw").await.unwrap(), before);
    // Back, and a restart on top (the old shipper dropped as in a crash):
    // a new shipper, whose group and stream already exist, takes over once
    // the lease lapses and resumes at the cursor.
    proxy.resume().await;
    drop(shipper);
    let store2 = db.open_again().await.unwrap();
    let mut shipper = Shipper::new(store2.clone(), &cfg, data.path(), fast()).unwrap();
    assert_eq!(until_caught_up(&mut shipper).await, 32);
    let out = common::boto3_logs(&format!(
        "ev = logs.get_log_events(logGroupName={group:?}, logStreamName={stream:?}, startFromHead=True)['events']\n\
         print(json.dumps([json.loads(e['message'])['body']['target'] for e in ev]))"
    ));
    let got: Vec<String> = serde_json::from_str(&out).unwrap();
    assert_eq!(got, expected(0..32), "every event once, in order");
}
on_both!(cloudwatch_on_moto, cloudwatch_body);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_a_sink() {
    use bulwark_ops::{
        create_key, deliver_due, notify_alert, rotate_secret, secret_current_path, sign_in, Alert,
        AlertSeverity, Instance, Role, RotateOptions,
    };

    let (store, _db) = common::sqlite().await;
    let data = tempfile::tempdir().unwrap();
    // A channel whose URL carries a password, a token in its path and one
    // in its query, on a port where nothing listens: delivery fails.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let text = format!(
        r#"
[[monitor]]
name = "api"
url = "http://127.0.0.1:{port}/health?token=monitor-token-secret"
[[channel]]
name = "hook"
type = "webhook"
url = "http://ops:chan-password-xyz@127.0.0.1:{port}/hook/tok-path-secret?token=query-token-secret"
headers = {{ Authorization = "Bearer header-token-secret" }}
[[route]]
channel = "hook"
[[secret]]
name = "DASHBOARD_KEY"
[[sink]]
name = "audit-file"
type = "file"
"#
    );
    let config = Arc::new(config(&text));
    let instance = Instance::new(config.clone(), store.clone(), data.path());
    let actor = Actor::system("test");

    // A rotation, twice (the second has a previous value).
    let now = chrono::Utc::now();
    let force = RotateOptions {
        force: true,
        no_grace: false,
    };
    let cfg = &config.secrets[0];
    rotate_secret(&store, data.path(), cfg, &actor, force, now)
        .await
        .unwrap();
    let first = std::fs::read_to_string(secret_current_path(data.path(), "DASHBOARD_KEY")).unwrap();
    rotate_secret(&store, data.path(), cfg, &actor, force, now)
        .await
        .unwrap();
    let second =
        std::fs::read_to_string(secret_current_path(data.path(), "DASHBOARD_KEY")).unwrap();
    // A key, sign-ins with it and with the managed key, a failed sign-in.
    let key = create_key(&store, &Actor::cli(), Role::Admin, "ops")
        .await
        .unwrap();
    let key = key.secret.expose().clone();
    let ttl = Duration::from_secs(600);
    let s1 = sign_in(&store, &instance.auth, &key, "127.0.0.1", ttl)
        .await
        .unwrap()
        .expect("the new key signs in");
    let s2 = sign_in(&store, &instance.auth, second.trim(), "127.0.0.1", ttl)
        .await
        .unwrap()
        .expect("the managed key signs in");
    let wrong = "bwk_0000typo-of-a-real-key-0000";
    assert!(sign_in(&store, &instance.auth, wrong, "127.0.0.1", ttl)
        .await
        .unwrap()
        .is_none());
    // An alert whose delivery fails.
    let at = bulwark_ops::Timestamp::now();
    let a = Alert::new(
        "MonitorDown",
        "api",
        "",
        AlertSeverity::Critical,
        "down".into(),
        at,
    );
    notify_alert(&store, &config, &a, at).await.unwrap();
    let delivered = deliver_due(
        &store,
        &config,
        &reqwest::Client::new(),
        at + std::time::Duration::from_millis(10),
    )
    .await
    .unwrap();
    assert_eq!(delivered, 0);

    let mut shipper = Shipper::new(store.clone(), &config.sinks[0], data.path(), fast()).unwrap();
    until_caught_up(&mut shipper).await;
    let path = data.path().join("logs/audit-file.ndjson");
    let shipped = std::fs::read_to_string(&path).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // Everything is there...
    let lines: Vec<serde_json::Value> = shipped
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let has = |kind: &str, field: &str, value: &str| {
        lines
            .iter()
            .any(|l| l["kind"] == kind && l["body"][field] == value)
    };
    assert!(has("audit", "action", "secret.rotate"), "{shipped}");
    assert!(has("audit", "action", "key.create"), "{shipped}");
    assert!(has("audit", "action", "session.sign_in"), "{shipped}");
    assert!(has("secret", "name", "DASHBOARD_KEY"), "{shipped}");
    assert!(has("alert", "outcome", "failed"), "{shipped}");
    let failed = lines.iter().find(|l| l["kind"] == "alert").unwrap();
    assert_eq!(failed["body"]["channel"], "hook");
    assert_eq!(failed["body"]["state"], "firing");
    assert_eq!(failed["body"]["attempt"], 1);
    // ...and no secret is.
    for secret in [
        first.trim(),
        second.trim(),
        key.as_str(),
        s1.token.expose().as_str(),
        s2.token.expose().as_str(),
        wrong,
        "chan-password-xyz",
        "tok-path-secret",
        "query-token-secret",
        "header-token-secret",
        "monitor-token-secret",
    ] {
        assert!(!secret.is_empty());
        assert!(
            !shipped.contains(secret),
            "{secret} was shipped:\n{shipped}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_tls_with_a_private_ca() {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "bulwark test log ca");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let leaf_cert = leaf.signed_by(&leaf_key, &ca_cert, &ca_key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![leaf_cert.der().clone()],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                let Ok(mut stream) = acceptor.accept(sock).await else {
                    return;
                };
                let mut buf = [0_u8; 4096];
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    let _ = tx.send(buf[..n].to_vec());
                }
            });
        }
    });
    let data = tempfile::tempdir().unwrap();
    let ca_file = data.path().join("ca.pem");
    std::fs::write(&ca_file, ca_cert.pem()).unwrap();
    let (store, _db) = common::sqlite().await;
    audit_events(&store, 0, 3).await;

    // Without the private CA the server is not trusted: nothing confirmed.
    let untrusted = sink(&format!(
        "[[sink]]\nname = \"s\"\ntype = \"syslog\"\nurl = \"tls://localhost:{port}\"\n\
         hostname = \"bulwark-test-host\"\n"
    ));
    let mut shipper = Shipper::new(store.clone(), &untrusted, data.path(), fast()).unwrap();
    let e = shipper.ship_once().await.unwrap_err();
    assert!(e.to_string().contains("tls handshake"), "{e}");
    assert_eq!(event_cursor(&store, "s").await.unwrap(), 0);
    drop(shipper);

    let trusted = sink(&format!(
        "[[sink]]\nname = \"s\"\ntype = \"syslog\"\nurl = \"tls://localhost:{port}\"\n\
         hostname = \"bulwark-test-host\"\nca_file = \"{}\"\n",
        ca_file.display()
    ));
    let mut shipper = Shipper::new(store.clone(), &trusted, data.path(), fast()).unwrap();
    assert_eq!(until_caught_up(&mut shipper).await, 3);
    let mut bytes = Vec::new();
    while frames(&bytes).len() < 3 {
        let chunk = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("frames over tls")
            .unwrap();
        bytes.extend_from_slice(&chunk);
    }
    let got: Vec<String> = frames(&bytes)
        .iter()
        .map(|f| {
            parse_5424(f).1["body"]["target"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(got, expected(0..3));
}

/// `events ship` reads a pipe it does not control: a line of invalid UTF-8
/// (a Latin-1 log line) must not abort it and drop the lines read before
/// it, and one endless line must not be held whole in memory (it is cut).
#[tokio::test]
async fn ship_stream_survives_bad_bytes_and_endless_lines() {
    let data = tempfile::tempdir().unwrap();
    let cfg = config(
        r#"
[[sink]]
name = "piped"
type = "file"
"#,
    );
    let mut input: Vec<u8> = Vec::new();
    input.extend_from_slice(b"{\"level\":\"info\",\"msg\":\"first\"}\n");
    input.extend_from_slice(b"caf\xe9 latin-1 line\n");
    input.extend(std::iter::repeat_n(b'x', 8 << 20));
    input.extend_from_slice(b"\nlast\n");
    let summary = ship_stream(
        &cfg,
        data.path(),
        "piped",
        tokio::io::BufReader::new(&input[..]),
        Duration::from_secs(5),
        &fast(),
    )
    .await
    .expect("every line shipped");
    assert_eq!(summary.lines, 4);
    let shipped = std::fs::read_to_string(data.path().join("logs/piped.ndjson")).unwrap();
    let lines: Vec<&str> = shipped.lines().collect();
    assert_eq!(
        lines.len(),
        4,
        "{:?}",
        lines.iter().map(|l| l.len()).collect::<Vec<_>>()
    );
    assert!(lines[0].contains("first"), "{}", lines[0]);
    assert!(lines[1].contains("latin-1 line"), "{}", lines[1]);
    assert!(
        lines[2].len() <= 1 << 20,
        "an 8 MiB line went out whole ({} bytes)",
        lines[2].len()
    );
    assert!(lines[3].contains("last"), "{}", lines[3]);
}
