//! The HTTP API driven through the router (`oneshot`) and through a real
//! server on a loopback port.

use axum::http::StatusCode;
use bulwark_ops::{query_audit, Filter};
use bulwark_server::ServeOptions;

mod common;
use common::{Harness, ADMIN, ANALYST};

#[tokio::test]
async fn healthz_needs_no_key() {
    let h = Harness::new("").await;
    let (status, body) = h.call("GET", "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, serde_json::json!({ "status": "ok" }));
}

#[tokio::test]
async fn missing_and_unknown_keys_get_401_and_are_audited() {
    let h = Harness::new("").await;
    assert_eq!(
        h.call("GET", "/api/v1/audit", None, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        h.call("GET", "/api/v1/audit", Some("wrong"), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        h.call("GET", "/api/v1/whoami", Some("wrong"), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        h.audit_actions().await,
        [
            "auth.unauthenticated denied GET /api/v1/whoami",
            "auth.unauthenticated denied GET /api/v1/audit",
            "auth.unauthenticated denied GET /api/v1/audit",
        ]
    );
    // The presented key is never recorded.
    let records = query_audit(&h.state.instance.store, &Filter::default())
        .await
        .unwrap();
    assert!(records.iter().all(|r| !format!("{r:?}").contains("wrong")));
}

#[tokio::test]
async fn analyst_reads_audit_but_cannot_create_keys() {
    let h = Harness::new("").await;
    let (status, page) = h.call("GET", "/api/v1/audit", Some(ANALYST), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page["records"].is_array());
    let (status, body) = h
        .call(
            "POST",
            "/api/v1/keys",
            Some(ANALYST),
            Some(r#"{"role":"analyst","name":"x"}"#),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "this action needs the admin role");
    assert_eq!(
        h.call("GET", "/api/v1/keys", Some(ANALYST), None).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        h.audit_actions().await,
        [
            "auth.forbidden denied GET /api/v1/keys",
            "auth.forbidden denied POST /api/v1/keys"
        ]
    );
}

#[tokio::test]
async fn admin_creates_lists_and_revokes_keys() {
    let h = Harness::new("").await;
    let (status, created) = h
        .call(
            "POST",
            "/api/v1/keys",
            Some(ADMIN),
            Some(r#"{"role":"analyst","name":"x"}"#),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let key = created["key"].as_str().unwrap().to_string();
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["role"], "analyst");

    let (status, me) = h.call("GET", "/api/v1/whoami", Some(&key), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        me,
        serde_json::json!({ "name": "x", "role": "analyst", "key_id": id })
    );

    let (status, list) = h.call("GET", "/api/v1/keys", Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(
        !list.to_string().contains(&key),
        "the list never shows the key"
    );

    let (status, revoked) = h
        .call("DELETE", &format!("/api/v1/keys/{id}"), Some(ADMIN), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(revoked["revoked_at"].is_string());
    assert_eq!(
        h.call("GET", "/api/v1/whoami", Some(&key), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        h.call("DELETE", &format!("/api/v1/keys/{id}"), Some(ADMIN), None)
            .await
            .0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        h.call("DELETE", "/api/v1/keys/k_nope", Some(ADMIN), None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );

    let actions = h.audit_actions().await;
    assert!(
        actions.contains(&format!("key.create success {id}")),
        "{actions:?}"
    );
    assert!(
        actions.contains(&format!("key.revoke success {id}")),
        "{actions:?}"
    );
    let all = format!(
        "{:?}",
        query_audit(&h.state.instance.store, &Filter::default())
            .await
            .unwrap()
    );
    assert!(!all.contains(&key), "the audit trail never holds the key");
}

#[tokio::test]
async fn bad_bodies_and_queries_get_400_naming_the_problem() {
    let h = Harness::new("").await;
    let check = |body: &'static str, needle: &'static str| {
        let h = &h;
        async move {
            let (status, resp) = h
                .call("POST", "/api/v1/keys", Some(ADMIN), Some(body))
                .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            let msg = resp["error"].as_str().unwrap();
            assert!(msg.contains(needle), "{body}: {msg}");
        }
    };
    check(r#"{"role":"root","name":"x"}"#, "role").await;
    check(r#"{"role":"admin"}"#, "name").await;
    check(r#"{"role":"admin","name":"has space"}"#, "invalid key name").await;
    check(r#"{"role":"admin","name":"x","extra":1}"#, "extra").await;
    check(r#"not json"#, "invalid body").await;
    let (status, resp) = h
        .call("GET", "/api/v1/audit?outcome=maybe", Some(ANALYST), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(resp["error"].as_str().unwrap().contains("outcome"));
    let (status, _) = h
        .call("GET", "/api/v1/audit?limit=0", Some(ANALYST), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = h
        .call("GET", "/api/v1/audit?since=yesterday", Some(ANALYST), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn audit_route_filters_newest_first() {
    let h = Harness::new("").await;
    for _ in 0..3 {
        h.call("GET", "/api/v1/keys", Some(ANALYST), None).await;
    }
    h.call("GET", "/api/v1/whoami", None, None).await;
    let (_, page) = h
        .call(
            "GET",
            "/api/v1/audit?action=auth.forbidden&limit=2",
            Some(ANALYST),
            None,
        )
        .await;
    let seqs: Vec<i64> = page["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [3, 2]);
    assert_eq!(page["next_before"], 2);
    let (_, page) = h
        .call(
            "GET",
            "/api/v1/audit?action=auth.forbidden&before=2",
            Some(ANALYST),
            None,
        )
        .await;
    assert_eq!(page["records"].as_array().unwrap().len(), 1);
    assert!(page["next_before"].is_null());
    let (_, page) = h
        .call(
            "GET",
            "/api/v1/audit?outcome=denied&actor=key:ROLES_JSON%232",
            Some(ANALYST),
            None,
        )
        .await;
    assert_eq!(page["records"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn metrics_count_requests_per_route_template() {
    let h = Harness::new("").await;
    h.call("DELETE", "/api/v1/keys/k_abc", Some(ADMIN), None)
        .await;
    h.call("DELETE", "/api/v1/keys/k_def", Some(ADMIN), None)
        .await;
    let (status, text) = h.call("GET", "/metrics", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let text = text.as_str().unwrap();
    assert!(
        text.contains(r#"bulwark_http_requests_total{method="DELETE",route="/api/v1/keys/{id}",status="404"} 2"#),
        "{text}"
    );
    assert!(text.contains("bulwark_http_request_duration_seconds_bucket"));
    assert!(text.contains("process_resident_memory_bytes"));
}

#[tokio::test]
async fn openapi_describes_every_route() {
    let h = Harness::new("").await;
    let (status, doc) = h.call("GET", "/api/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for route in [
        "/healthz",
        "/metrics",
        "/api/v1/whoami",
        "/api/v1/keys",
        "/api/v1/keys/{id}",
        "/api/v1/audit",
    ] {
        assert!(paths.contains_key(route), "missing {route}");
    }
    assert!(doc["components"]["securitySchemes"]["dash_key"].is_object());
}

/// Client generators need a document that validates and names each
/// operation once: `openapi-spec-validator` (PyPI, installed by
/// scripts/test.sh) is the judge.
#[tokio::test]
async fn openapi_document_is_valid_with_unique_operation_ids() {
    let h = Harness::new("").await;
    let (_, doc) = h.call("GET", "/api/openapi.json", None, None).await;
    let mut ids = std::collections::BTreeMap::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap_or_default().to_string();
            assert!(!id.is_empty(), "{method} {path} has no operationId");
            if let Some(first) = ids.insert(id.clone(), format!("{method} {path}")) {
                panic!("operationId {id} of {method} {path} is also {first}'s");
            }
        }
    }
    let file = h.dir.path().join("openapi.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let out = std::process::Command::new("openapi-spec-validator")
        .arg(&file)
        .output()
        .expect("openapi-spec-validator (pip install openapi-spec-validator; scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The real server on a loopback port: the client address is known, so
/// failed attempts are limited per address. A valid key always passes:
/// whoever shares the address (a proxy, a NAT) cannot lock its owner out.
#[tokio::test]
async fn real_server_refuses_guesses_past_the_budget_but_never_a_valid_key() {
    let h = Harness::new("").await;
    let server = h.serve(ServeOptions::default()).await;
    let client = reqwest::Client::new();
    let get = |key: Option<&'static str>| {
        let mut req = client.get(server.url("/api/v1/whoami"));
        if let Some(key) = key {
            req = req.header("authorization", format!("Bearer {key}"));
        }
        req.send()
    };

    assert_eq!(get(Some(ANALYST)).await.unwrap().status(), 200);
    for _ in 0..10 {
        assert_eq!(get(Some("guess")).await.unwrap().status(), 401);
    }
    let blocked = get(Some("guess")).await.unwrap();
    assert_eq!(blocked.status(), 429);
    assert!(blocked.headers().get("retry-after").is_some());
    // The valid keys from the same address still pass.
    assert_eq!(get(Some(ANALYST)).await.unwrap().status(), 200);
    assert_eq!(get(Some(ADMIN)).await.unwrap().status(), 200);
    // Failing attempts stay refused, with or without a key.
    assert_eq!(get(Some("guess-again")).await.unwrap().status(), 429);
    assert_eq!(get(None).await.unwrap().status(), 429);

    let actions = h.audit_actions().await;
    assert_eq!(
        actions
            .iter()
            .filter(|a| a.starts_with("auth.unauthenticated"))
            .count(),
        10
    );
    assert_eq!(
        actions
            .iter()
            .filter(|a| a.starts_with("auth.rate_limited"))
            .count(),
        1,
        "{actions:?}"
    );
    // The audit trail names the client as the server saw it.
    let records = query_audit(&h.state.instance.store, &Filter::default())
        .await
        .unwrap();
    assert!(
        records.iter().all(|r| r.actor == "anonymous:127.0.0.1"),
        "{records:?}"
    );

    server.stop().await;
}

/// The clients named in refusals' audit records, newest first.
async fn audited_clients(h: &Harness) -> Vec<String> {
    query_audit(&h.state.instance.store, &Filter::default())
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.actor)
        .collect()
}

#[tokio::test]
async fn forwarded_for_is_ignored_from_untrusted_peers() {
    let h = Harness::new("").await;
    // Each guess claims another address; all are the peer's.
    for i in 0..10 {
        let forwarded = format!("198.51.100.{i}");
        let status = h
            .call_from(
                "127.0.0.1:4000",
                "GET",
                "/api/v1/whoami",
                &[("x-dash-key", "guess"), ("x-forwarded-for", &forwarded)],
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let status = h
        .call_from(
            "127.0.0.1:4000",
            "GET",
            "/api/v1/whoami",
            &[
                ("x-dash-key", "guess"),
                ("x-forwarded-for", "198.51.100.99"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let clients = audited_clients(&h).await;
    assert_eq!(clients.len(), 11);
    assert!(
        clients.iter().all(|c| c == "anonymous:127.0.0.1"),
        "{clients:?}"
    );
}

#[tokio::test]
async fn forwarded_for_is_honoured_from_trusted_proxies() {
    let h = Harness::new("[server]\ntrusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\"]\n").await;
    let guess = |peer: &'static str, forwarded: &'static str| {
        let h = &h;
        async move {
            h.call_from(
                peer,
                "GET",
                "/api/v1/whoami",
                &[("x-dash-key", "guess"), ("x-forwarded-for", forwarded)],
            )
            .await
        }
    };
    for _ in 0..10 {
        assert_eq!(
            guess("127.0.0.1:4000", "203.0.113.9").await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        guess("127.0.0.1:4000", "203.0.113.9").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Another client behind the same proxy is not blocked.
    assert_eq!(
        guess("127.0.0.1:4000", "203.0.113.10").await,
        StatusCode::UNAUTHORIZED
    );
    // The right-most untrusted address counts, through a chain of proxies;
    // what the client wrote at the left changes nothing.
    assert_eq!(
        guess("10.0.0.5:4000", "6.6.6.6, 203.0.113.9, 10.1.1.1").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Without the header, the proxy is the client.
    assert_eq!(
        h.call_from(
            "127.0.0.1:4000",
            "GET",
            "/api/v1/whoami",
            &[("x-dash-key", "guess")]
        )
        .await,
        StatusCode::UNAUTHORIZED
    );
    // From a peer that is not a trusted proxy, the header is not believed.
    assert_eq!(
        guess("192.0.2.1:4000", "203.0.113.9").await,
        StatusCode::UNAUTHORIZED
    );

    let clients = audited_clients(&h).await;
    assert_eq!(
        &clients[..4],
        [
            "anonymous:192.0.2.1",
            "anonymous:127.0.0.1",
            "anonymous:203.0.113.10",
            "anonymous:203.0.113.9",
        ],
        "newest first"
    );
    let limited = query_audit(
        &h.state.instance.store,
        &Filter {
            action: Some("auth.rate_limited".into()),
            ..Filter::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(limited.len(), 1);
    assert_eq!(limited[0].actor, "anonymous:203.0.113.9");
    assert_eq!(limited[0].detail["client"], "203.0.113.9");
}

#[tokio::test]
async fn random_methods_leave_the_metric_label_set_bounded() {
    let h = Harness::new("").await;
    let (_, before) = h.text("GET", "/metrics", None, None).await;
    // Methods anyone can send: on a route (405) and on no route (404).
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..2_000 {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let method = format!("M{:016X}", seed);
        let uri = if i % 2 == 0 {
            "/healthz"
        } else {
            "/no/such/route"
        };
        let (status, _) = h.text(&method, uri, None, None).await;
        assert!(
            status == StatusCode::METHOD_NOT_ALLOWED || status == StatusCode::NOT_FOUND,
            "{method} {uri}: {status}"
        );
    }
    let (_, after) = h.text("GET", "/metrics", None, None).await;
    let methods: std::collections::BTreeSet<&str> = after
        .lines()
        .filter(|l| l.starts_with("bulwark_http_"))
        .filter_map(|l| l.split("method=\"").nth(1))
        .filter_map(|rest| rest.split('"').next())
        .collect();
    assert_eq!(methods, ["GET", "other"].into_iter().collect(), "{after}");
    assert!(
        after.contains(
            r#"bulwark_http_requests_total{method="other",route="/healthz",status="405"} 1000"#
        ),
        "{after}"
    );
    assert!(
        after.contains(
            r#"bulwark_http_requests_total{method="other",route="unmatched",status="404"} 1000"#
        ),
        "{after}"
    );
    // Two thousand requests added a few label sets (`other` on two routes,
    // GET /metrics; 17 lines each with the histogram), not thousands.
    let series = |text: &str| {
        text.lines()
            .filter(|l| l.starts_with("bulwark_http_"))
            .count()
    };
    assert!(
        series(&after) <= series(&before) + 100,
        "{} series before, {} after",
        series(&before),
        series(&after)
    );
}

#[tokio::test]
async fn config_file_keys_authenticate_by_hash() {
    // sha256("s3cret-ops-key"), as `printf %s KEY | sha256sum` prints it.
    let digest = {
        use std::fmt::Write;
        let d = <sha2::Sha256 as sha2::Digest>::digest(b"s3cret-ops-key");
        d.iter().fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    };
    let text =
        format!("[[auth.key]]\nname = \"ops\"\nrole = \"admin\"\nhash = \"sha256:{digest}\"\n");
    let h = Harness::new(&text).await;
    let (status, me) = h
        .call("GET", "/api/v1/whoami", Some("s3cret-ops-key"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        me,
        serde_json::json!({ "name": "ops", "role": "admin", "key_id": null })
    );
    assert_eq!(
        h.call("GET", "/api/v1/whoami", Some("s3cret-ops-key "), None)
            .await
            .0,
        StatusCode::OK,
        "surrounding blanks are trimmed"
    );
    assert_eq!(
        h.call("GET", "/api/v1/whoami", Some("s3cret-ops-kez"), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
}
