//! What every API test needs: an `AppState` over a real SQLite file and data
//! directory, and a way to call the router as a client would.
#![allow(dead_code)] // each test binary uses a different part

use bulwark_ops::{record_results, rollup_results};
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use bulwark_ops::{parse_settings, query_audit, Filter, Instance};
use bulwark_server::{AppState, ServeOptions};
use http_body_util::BodyExt;
use tower::ServiceExt;

pub const ADMIN: &str = "k-admin";
pub const ANALYST: &str = "k-analyst";

pub struct Harness {
    pub state: Arc<AppState>,
    pub dir: tempfile::TempDir,
}

impl Harness {
    /// `config_text` is a bulwark.toml; `ROLES_JSON` gives [`ADMIN`] and
    /// [`ANALYST`] their roles.
    pub async fn new(config_text: &str) -> Harness {
        Harness::with_state(config_text, |s| s).await
    }

    /// [`Harness::new`], with `adjust` applied to the state (e.g. a view TTL).
    pub async fn with_state(
        config_text: &str,
        adjust: impl FnOnce(AppState) -> AppState,
    ) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let env = |k: &str| {
            (k == "ROLES_JSON").then(|| format!(r#"{{"{ADMIN}":"admin","{ANALYST}":"analyst"}}"#))
        };
        let loaded = parse_settings(config_text, None, &env).expect("config");
        let instance = Instance::open(Arc::new(loaded.config), dir.path())
            .await
            .unwrap();
        let state = AppState::new(Arc::new(instance));
        Harness {
            state: Arc::new(adjust(state)),
            dir,
        }
    }

    /// [`Harness::new`] over a fresh schema of the PostgreSQL server named
    /// by `BULWARK_TEST_DATABASE_URL` (`scripts/test.sh` starts it) instead
    /// of SQLite; `config_text` must not have a `[server]` section.
    pub async fn postgres(config_text: &str) -> Harness {
        let url = postgres_schema().await;
        let text = format!("[server]\ndatabase = \"{url}\"\n{config_text}");
        Harness::new(&text).await
    }

    /// Sends `req` through the router; the status and body as text.
    pub async fn send(&self, req: Request<Body>) -> (StatusCode, String) {
        let resp = bulwark_server::app(self.state.clone())
            .oneshot(req)
            .await
            .unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    /// A bodiless request from the TCP peer `peer` (as the real server
    /// records it), with `headers`; the status.
    pub async fn call_from(
        &self,
        peer: &str,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
    ) -> StatusCode {
        let mut req = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let mut req = req.body(Body::empty()).unwrap();
        let peer: SocketAddr = peer.parse().unwrap();
        req.extensions_mut().insert(ConnectInfo(peer));
        self.send(req).await.0
    }

    /// `n` GET requests to `uri` sent at once, each on its own task; their
    /// statuses and bodies.
    pub async fn concurrently(
        &self,
        n: usize,
        uri: &str,
        key: Option<&str>,
    ) -> Vec<(StatusCode, String)> {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..n {
            let mut req = Request::builder().uri(uri);
            if let Some(key) = key {
                req = req.header("x-dash-key", key);
            }
            let req = req.body(Body::empty()).unwrap();
            let app = bulwark_server::app(self.state.clone());
            tasks.spawn(async move {
                let resp = app.oneshot(req).await.unwrap();
                let status = resp.status();
                let bytes = resp.into_body().collect().await.unwrap().to_bytes();
                (status, String::from_utf8_lossy(&bytes).into_owned())
            });
        }
        tasks.join_all().await
    }

    /// How often the cached view `view` was computed, from `/metrics`'
    /// `bulwark_view_computations_total`.
    pub fn view_computations(&self, view: &str) -> u64 {
        let series = format!("bulwark_view_computations_total{{view=\"{view}\"}} ");
        let text = self.state.metrics.render();
        text.lines()
            .find_map(|l| l.strip_prefix(&series))
            .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
            .parse()
            .unwrap()
    }

    /// The real server on a loopback port.
    pub async fn serve(&self, options: ServeOptions) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(bulwark_server::serve(
            listener,
            self.state.clone(),
            options,
            async {
                let _ = stopped.await;
            },
        ));
        Server {
            addr,
            stop: Some(stop),
            task,
        }
    }

    /// The status and body as text.
    pub async fn text(
        &self,
        method: &str,
        uri: &str,
        key: Option<&str>,
        body: Option<&str>,
    ) -> (StatusCode, String) {
        let (status, _, text) = self.exchange(method, uri, key, body).await;
        (status, text)
    }

    /// The status and body as JSON (a JSON string when the body is not JSON).
    pub async fn call(
        &self,
        method: &str,
        uri: &str,
        key: Option<&str>,
        body: Option<&str>,
    ) -> (StatusCode, serde_json::Value) {
        let (status, text) = self.text(method, uri, key, body).await;
        let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        (status, json)
    }

    /// The status, headers and body of `method uri`, with `key` in
    /// `X-Dash-Key` and `body` as JSON when given.
    pub async fn exchange(
        &self,
        method: &str,
        uri: &str,
        key: Option<&str>,
        body: Option<&str>,
    ) -> (StatusCode, axum::http::HeaderMap, String) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(key) = key {
            req = req.header("x-dash-key", key);
        }
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        let resp = bulwark_server::app(self.state.clone())
            .oneshot(req)
            .await
            .unwrap();
        let (parts, body) = resp.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        (
            parts.status,
            parts.headers,
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }

    /// A checker of served documents against this server's
    /// `/api/openapi.json`; see [`Conformance`].
    pub async fn conformance(&self) -> Conformance {
        let (_, doc) = self.call("GET", "/api/openapi.json", None, None).await;
        Conformance {
            doc,
            checked: Default::default(),
            reachable: Default::default(),
            visited: Default::default(),
            mismatches: Vec::new(),
        }
    }

    /// Stores `total` results of `monitor` spread over the hour starting at
    /// `hour_ms`, `bad` of them failed (their error naming `secret.internal`),
    /// and rolls that hour up into per-minute rollups: the store's real
    /// write paths, as the engine uses them.
    pub async fn seed_hour(&self, monitor: &str, hour_ms: i64, total: u32, bad: u32) {
        let store = &self.state.instance.store;
        let results: Vec<bulwark_ops::ProbeResult> = (0..total)
            .map(|i| bulwark_ops::ProbeResult {
                monitor: monitor.to_string(),
                at: ts(hour_ms + i64::from(i) * (3_600_000 / i64::from(total.max(1)))),
                ok: i >= bad,
                latency: std::time::Duration::from_millis(20),
                status: Some(if i >= bad { 200 } else { 503 }),
                error: (i < bad).then(|| "connect to secret.internal:5432 refused".to_string()),
            })
            .collect();
        record_results(store, &results).await.unwrap();
        rollup_results(store, ts(hour_ms), ts(hour_ms + 3_600_000))
            .await
            .unwrap();
    }

    /// Every audit record as "action outcome target", newest first.
    pub async fn audit_actions(&self) -> Vec<String> {
        query_audit(&self.state.instance.store, &Filter::default())
            .await
            .unwrap()
            .into_iter()
            .map(|r| format!("{} {} {}", r.action, r.outcome, r.target))
            .collect()
    }
}

/// A new, empty schema in the test PostgreSQL server; the URL selects it.
pub async fn postgres_schema() -> String {
    use sqlx::ConnectOptions;
    use std::str::FromStr;
    sqlx::any::install_default_drivers();
    let base = std::env::var("BULWARK_TEST_DATABASE_URL").expect(
        "BULWARK_TEST_DATABASE_URL is not set: run the tests with scripts/test.sh, \
         which installs and starts PostgreSQL and sets it",
    );
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let schema = format!("t_srv_{}_{nanos}", std::process::id());
    let mut admin = sqlx::any::AnyConnectOptions::from_str(&base)
        .expect("postgres url")
        .connect()
        .await
        .expect("connect to the test PostgreSQL server");
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut admin)
        .await
        .expect("create test schema");
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-c%20search_path%3D{schema}")
}

/// A server started by [`Harness::serve`].
pub struct Server {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub task: tokio::task::JoinHandle<()>,
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends the shutdown signal; `task` then ends within the grace.
    pub fn signal_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Signals shutdown and waits for `serve` to return (a minute at most,
    /// as a guard: a hung server fails the test instead of hanging it).
    pub async fn stop(mut self) {
        self.signal_stop();
        tokio::time::timeout(std::time::Duration::from_secs(60), self.task)
            .await
            .expect("serve returns after shutdown")
            .unwrap();
    }
}

/// A browser's view of the dashboard: the session cookie it holds and the
/// CSRF token its last page carried.
pub struct Browser {
    pub cookie: String,
    pub csrf: String,
}

/// The whole `Set-Cookie` header and the session token in it.
pub struct SignIn {
    pub status: StatusCode,
    pub set_cookie: Option<String>,
    pub location: Option<String>,
    pub strict_transport: Option<String>,
}

impl Harness {
    /// Posts the sign-in form with `key` from `peer`, with extra `headers`.
    pub async fn post_sign_in(&self, key: &str, peer: &str, headers: &[(&str, &str)]) -> SignIn {
        let mut req = Request::builder()
            .method("POST")
            .uri("/login")
            .header("content-type", "application/x-www-form-urlencoded");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let mut req = req
            .body(Body::from(format!("key={}", form_encode(key))))
            .unwrap();
        req.extensions_mut()
            .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        let resp = bulwark_server::app(self.state.clone())
            .oneshot(req)
            .await
            .unwrap();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_string())
        };
        SignIn {
            status: resp.status(),
            set_cookie: header("set-cookie"),
            location: header("location"),
            strict_transport: header("strict-transport-security"),
        }
    }

    /// Signs in with `key` and loads the overview; panics unless both work.
    pub async fn sign_in(&self, key: &str) -> Browser {
        let s = self.post_sign_in(key, "127.0.0.1:50000", &[]).await;
        assert_eq!(s.status, StatusCode::SEE_OTHER, "sign-in with {key}");
        let set_cookie = s.set_cookie.expect("a session cookie");
        let cookie = set_cookie.split(';').next().unwrap().to_string();
        let mut browser = Browser {
            cookie,
            csrf: String::new(),
        };
        let (status, page) = self.browse(&browser, "GET", "/", &[]).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        browser.csrf = meta_csrf(&page).expect("the page carries a CSRF token");
        browser
    }

    /// A request with the browser's cookie and `headers`; status and body.
    pub async fn browse(
        &self,
        browser: &Browser,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
    ) -> (StatusCode, String) {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("cookie", &browser.cookie);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let mut req = req.body(Body::empty()).unwrap();
        req.extensions_mut().insert(ConnectInfo(
            "127.0.0.1:50000".parse::<SocketAddr>().unwrap(),
        ));
        self.send(req).await
    }
}

impl Harness {
    /// A POST from one of the browser's pages: its cookie and CSRF token.
    pub async fn post_as(&self, browser: &Browser, uri: &str) -> (StatusCode, String) {
        self.browse(browser, "POST", uri, &[("x-csrf-token", &browser.csrf)])
            .await
    }

    /// The sign-out form posted with `csrf`; the whole response.
    pub async fn sign_out(&self, browser: &Browser, csrf: &str) -> axum::response::Response {
        let mut req = Request::builder()
            .method("POST")
            .uri("/logout")
            .header("cookie", &browser.cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(format!("csrf={}", form_encode(csrf))))
            .unwrap();
        req.extensions_mut().insert(ConnectInfo(
            "127.0.0.1:50000".parse::<SocketAddr>().unwrap(),
        ));
        bulwark_server::app(self.state.clone())
            .oneshot(req)
            .await
            .unwrap()
    }
}

/// The CSRF token of a dashboard page's `<meta name="csrf-token">`.
pub fn meta_csrf(page: &str) -> Option<String> {
    let at = page.find(r#"name="csrf-token" content=""#)?;
    let rest = &page[at + r#"name="csrf-token" content=""#.len()..];
    Some(rest[..rest.find('"')?].to_string())
}

fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A time from Unix milliseconds: tests keep their fixed instants as plain
/// numbers and turn them into the domain's time type where it is taken.
pub fn ts(ms: i64) -> bulwark_ops::Timestamp {
    bulwark_ops::Timestamp::from_millis(ms)
}

/// Checks what routes serve against the OpenAPI document, strictly, and
/// remembers what it saw, so [`Conformance::finish`] can demand that every
/// documented JSON operation was called and every schema they can return
/// was met with a value. Python's `jsonschema` (scripts/test.sh installs
/// it with openapi-spec-validator) is the judge, formats included.
pub struct Conformance {
    doc: serde_json::Value,
    /// (method, path template) of every operation called.
    checked: std::collections::BTreeSet<(String, String)>,
    /// Component schemas the checked responses can hold.
    reachable: std::collections::BTreeSet<String>,
    /// Component schemas a served value was checked against.
    visited: std::collections::BTreeSet<String>,
    mismatches: Vec<String>,
}

impl Conformance {
    /// Calls `uri` (an instance of the documented `template`) with `key`
    /// and `body`, and checks the answer against what the document gives
    /// its status: the media type, and the body read strictly (every
    /// object schema refuses properties it does not list and requires
    /// every one it lists, `null` included). A mismatch is kept for
    /// [`Conformance::finish`], so one run shows them all; the served body
    /// comes back for the caller's own use.
    pub async fn check(
        &mut self,
        h: &Harness,
        method: &str,
        template: &str,
        uri: &str,
        key: &str,
        body: Option<&str>,
    ) -> serde_json::Value {
        let (status, headers, text) = h.exchange(method, uri, Some(key), body).await;
        assert!(
            status.is_success() || status.is_server_error(),
            "{method} {uri}: {status} {text}"
        );
        let method = method.to_ascii_lowercase();
        self.checked.insert((method.clone(), template.to_string()));
        let op = &self.doc["paths"][template][&method];
        let content = &op["responses"][status.as_str()]["content"];
        let served_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .unwrap_or_default()
            .to_string();
        let served: serde_json::Value =
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        let schema = &content[served_type.as_str()]["schema"];
        if served_type != "application/json" || !schema.is_object() {
            self.mismatches.push(format!(
                "{method} {uri}: served {status} as {served_type:?}, documented as {}",
                content
            ));
            return served;
        }
        let files = tempfile::tempdir().unwrap();
        let write = |name: &str, v: &serde_json::Value| {
            let path = files.path().join(name);
            std::fs::write(&path, v.to_string()).unwrap();
            path
        };
        let out = std::process::Command::new("python3")
            .arg("-c")
            .arg(STRICT_VALIDATOR)
            .arg(write("openapi.json", &self.doc))
            .arg(write("schema.json", schema))
            .arg(write("served.json", &served))
            .output()
            .expect("python3");
        let verdict: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "the validator failed ({e}); scripts/test.sh installs jsonschema and rfc3339-validator:\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        let names = |key: &str| -> Vec<String> {
            verdict[key]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|n| n.as_str().map(str::to_string))
                .collect()
        };
        self.reachable.extend(names("reachable"));
        self.visited.extend(names("visited"));
        let errors = names("errors");
        if !errors.is_empty() {
            self.mismatches.push(format!(
                "{method} {uri} ({status}) does not match its OpenAPI schema:\n  {}",
                errors.join("\n  ")
            ));
        }
        served
    }

    /// Fails with every mismatch seen, every documented JSON operation not
    /// called, and every schema those operations can return that no served
    /// value reached (an empty list proves nothing about its items).
    pub fn finish(self) {
        let mut problems = self.mismatches;
        for (path, item) in self.doc["paths"].as_object().into_iter().flatten() {
            for (method, op) in item.as_object().into_iter().flatten() {
                let json = op["responses"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .any(|(code, r)| {
                        code.starts_with('2') && r["content"]["application/json"].is_object()
                    });
                if json && !self.checked.contains(&(method.clone(), path.clone())) {
                    problems.push(format!("{method} {path} was never checked"));
                }
            }
        }
        for name in self.reachable.difference(&self.visited) {
            problems.push(format!("schema {name} never held a served value"));
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}

/// argv: the OpenAPI document, one response schema, the served body.
/// Prints `{"errors", "reachable", "visited"}`. OpenAPI 3.1 schemas are
/// JSON Schema 2020-12; `$ref`s point into the document's components,
/// copied beside the schema. An `allOf` (a `#[serde(flatten)]`) is merged
/// into one object first, since a member that refuses unknown properties
/// would refuse its siblings'.
const STRICT_VALIDATOR: &str = r#"
import json, sys, jsonschema
import rfc3339_validator  # without it, `date-time` formats pass unchecked
doc, schema, served = (json.load(open(p)) for p in sys.argv[1:4])
original = doc.get("components", {}).get("schemas", {})
def ref_name(node):
    return node["$ref"].rsplit("/", 1)[1]
def resolve(node):
    while "$ref" in node:
        node = original[ref_name(node)]
    return node
def merge(node):
    if isinstance(node, list):
        return [merge(v) for v in node]
    if not isinstance(node, dict):
        return node
    if "allOf" in node:
        merged = {"type": "object", "properties": {}}
        for part in (merge(resolve(p)) for p in node["allOf"]):
            merged["properties"].update(part.get("properties", {}))
        return merged
    return {k: merge(v) for k, v in node.items()}
def strict(node):
    if isinstance(node, dict):
        if "properties" in node:
            node.setdefault("additionalProperties", False)
            node["required"] = sorted(node["properties"])
        for v in node.values():
            strict(v)
    elif isinstance(node, list):
        for v in node:
            strict(v)
root = merge({"components": {"schemas": original}, **schema})
strict(root)
schemas = root["components"]["schemas"]
check = jsonschema.Draft202012Validator(
    root, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
def reachable(node, seen):
    if isinstance(node, dict):
        if "$ref" in node and ref_name(node) not in seen:
            seen.add(ref_name(node))
            reachable(schemas[ref_name(node)], seen)
        for k, v in node.items():
            if k != "components":
                reachable(v, seen)
    elif isinstance(node, list):
        for v in node:
            reachable(v, seen)
    return seen
visited = set()
def fits(node, value):
    return check.evolve(schema={"components": root["components"], **node}).is_valid(value)
def walk(node, value):
    if "$ref" in node:
        visited.add(ref_name(node))
        return walk(schemas[ref_name(node)], value)
    for key in ("oneOf", "anyOf"):
        for sub in node.get(key, []):
            if fits(sub, value):
                walk(sub, value)
    if isinstance(value, dict):
        props = node.get("properties", {})
        for k, v in value.items():
            if k in props:
                walk(props[k], v)
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        for v in value:
            walk(node["items"], v)
errors = [("/".join(map(str, e.absolute_path)) or "(root)") + ": " + e.message
          for e in check.iter_errors(served)]
walk({k: v for k, v in root.items() if k != "components"}, served)
print(json.dumps({"errors": errors[:20],
                  "reachable": sorted(reachable({k: v for k, v in root.items() if k != "components"}, set())),
                  "visited": sorted(visited)}))
"#;
