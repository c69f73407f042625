//! Email alerts through a minimal SMTP server on loopback, via the outbox.

use std::sync::{Arc, Mutex};

use bulwark_ops::{
    deliver_due, notify_alert, parse_settings, pending_deliveries, Alert, AlertSeverity,
    AlertStatus, Store,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Speaks just enough SMTP to accept messages; keeps each message's data.
async fn smtp_server() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let g = g.clone();
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut lines = BufReader::new(r).lines();
                let _ = w.write_all(b"220 localhost ESMTP test\r\n").await;
                let mut data: Option<String> = None;
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(d) = data.as_mut() {
                        if line == "." {
                            g.lock().unwrap().push(data.take().unwrap_or_default());
                            let _ = w.write_all(b"250 queued\r\n").await;
                        } else {
                            d.push_str(&line);
                            d.push('\n');
                        }
                        continue;
                    }
                    let verb = line.split(' ').next().unwrap_or("").to_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250 localhost\r\n",
                        "DATA" => {
                            data = Some(String::new());
                            b"354 end with .\r\n"
                        }
                        "QUIT" => {
                            let _ = w.write_all(b"221 bye\r\n").await;
                            return;
                        }
                        _ => b"250 ok\r\n",
                    };
                    let _ = w.write_all(reply).await;
                }
            });
        }
    });
    (port, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_channel_sends_firing_and_resolved() {
    let (port, got) = smtp_server().await;
    let text = format!(
        r#"
[[channel]]
name = "mail"
type = "email"
smtp_host = "127.0.0.1"
smtp_port = {port}
from = "bulwark@example.com"
to = ["oncall@example.com"]
starttls = false
"#
    );
    let config = parse_settings(&text, None, &|_| None)
        .unwrap_or_else(|e| panic!("{e}"))
        .config;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(None, dir.path()).await.unwrap();
    let client = reqwest::Client::new();
    let now = bulwark_ops::Timestamp::now();
    let mut a = Alert::new(
        "MonitorDown",
        "api",
        "",
        AlertSeverity::Critical,
        "api is down: unexpected status 503".into(),
        now,
    );
    notify_alert(&store, &config, &a, now).await.unwrap();
    assert_eq!(
        deliver_due(&store, &config, &client, now).await.unwrap(),
        1,
        "{:?}",
        pending_deliveries(&store).await.unwrap()
    );
    a.status = AlertStatus::Resolved;
    notify_alert(
        &store,
        &config,
        &a,
        now + std::time::Duration::from_millis(1),
    )
    .await
    .unwrap();
    assert_eq!(
        deliver_due(
            &store,
            &config,
            &client,
            now + std::time::Duration::from_millis(1)
        )
        .await
        .unwrap(),
        1
    );
    let mails = got.lock().unwrap().clone();
    assert_eq!(mails.len(), 2);
    assert!(
        mails[0].contains("Subject: [FIRING] MonitorDown api (critical)"),
        "{}",
        mails[0]
    );
    assert!(mails[0].contains("api is down: unexpected status 503"));
    assert!(mails[0].contains("To: oncall@example.com"));
    assert!(
        mails[1].contains("Subject: [RESOLVED] MonitorDown api"),
        "{}",
        mails[1]
    );
}
