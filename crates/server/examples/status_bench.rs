//! Benchmark of the public status page and the dashboard's overview (not
//! run in CI; see docs/benchmarks.md, "Dashboard and status page").
//!
//! Seeds a SQLite store with `--monitors` public monitors and `--days` days
//! of history through the store's real write paths (raw results written in
//! batches, rolled up into per-minute rollups, minutes older than 35 days
//! folded into hourly rollups, as the engine's housekeeping does), then
//! renders `GET /status` through the router (no network) `--requests`
//! times with the view cache off (every request reads the store) and on,
//! and prints median and p95 server time and the page's size; then the
//! signed-in overview (`GET /`) the same way.
//!
//! ```text
//! cargo run --release -p bulwark-server --example status_bench -- \
//!     --monitors 1000 --days 90 --per-hour 1 --requests 30 --save /tmp/status.html
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use bulwark_ops::{
    downsample_results, parse_settings, prune_raw_results, record_results, rollup_results,
    Instance, ProbeResult,
};
use bulwark_server::AppState;
use http_body_util::BodyExt;
use tower::ServiceExt;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;

struct Args {
    monitors: usize,
    days: i64,
    per_hour: i64,
    requests: usize,
    save: Option<String>,
    data_dir: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        monitors: 1000,
        days: 90,
        per_hour: 1,
        requests: 30,
        save: None,
        data_dir: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--monitors" => a.monitors = value.parse().expect("--monitors N"),
            "--days" => a.days = value.parse().expect("--days N"),
            "--per-hour" => a.per_hour = value.parse().expect("--per-hour N (1 to 60)"),
            "--requests" => a.requests = value.parse().expect("--requests N"),
            "--save" => a.save = Some(value),
            "--data-dir" => a.data_dir = Some(value),
            other => panic!("unknown option {other}"),
        }
    }
    assert!((1..=60).contains(&a.per_hour), "--per-hour is 1 to 60");
    a
}

fn config(monitors: usize) -> String {
    (0..monitors)
        .map(|i| {
            format!(
                "[[monitor]]\nname = \"svc-{i:04}\"\nurl = \"http://127.0.0.1:9/{i}\"\npublic = true\n"
            )
        })
        .collect()
}

/// Results of every monitor for `days` days up to the current hour,
/// `per_hour` an hour at distinct minutes; about 0.5% of them failed, and
/// monitor i had a bad day (every probe failed) on day i % days.
async fn seed(state: &AppState, a: &Args) {
    let store = &state.instance.store;
    let now = chrono::Utc::now().timestamp_millis();
    let end = now.div_euclid(HOUR_MS) * HOUR_MS;
    let start = end.div_euclid(DAY_MS) * DAY_MS - (a.days - 1) * DAY_MS;
    let names: Vec<String> = (0..a.monitors).map(|i| format!("svc-{i:04}")).collect();
    let t = Instant::now();
    let mut hour = start;
    let mut n = 0_u64;
    while hour < end {
        let day = (hour - start) / DAY_MS;
        let mut batch = Vec::with_capacity(a.monitors * a.per_hour as usize);
        for (i, name) in names.iter().enumerate() {
            let bad_day = day == (i as i64) % a.days;
            for k in 0..a.per_hour {
                let at = hour + k * (60 / a.per_hour) * 60_000 + (i as i64 % 50) * 1000;
                let ok = !bad_day && (hour / HOUR_MS + i as i64 + k) % 200 != 0;
                batch.push(ProbeResult {
                    monitor: name.clone(),
                    at: ts(at),
                    ok,
                    latency: Duration::from_millis(20 + (i as u64 % 30)),
                    status: Some(if ok { 200 } else { 503 }),
                    error: (!ok).then(|| "status 503".to_string()),
                });
            }
        }
        n += batch.len() as u64;
        record_results(store, &batch).await.expect("record");
        rollup_results(store, ts(hour), ts(hour + HOUR_MS))
            .await
            .expect("rollup");
        // Raw results are pruned after 7 days anyway; keeping them out
        // keeps the database the size of the rollups.
        prune_raw_results(store, ts(hour + HOUR_MS))
            .await
            .expect("prune");
        hour += HOUR_MS;
    }
    eprintln!(
        "seeded {n} results into per-minute rollups in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let folded = downsample_results(store, ts(now - 35 * DAY_MS))
        .await
        .expect("downsample");
    eprintln!(
        "folded {folded} minute rollups older than 35 days into hours in {:.1}s",
        t.elapsed().as_secs_f64()
    );
}

/// The admin key the overview is signed in with.
const KEY: &str = "bench-admin-key";

/// A session cookie for [`KEY`], from the sign-in form.
async fn sign_in(state: &Arc<AppState>) -> String {
    let req = Request::builder()
        .method("POST")
        .uri("/login")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(format!("key={KEY}")))
        .unwrap();
    let resp = bulwark_server::app(state.clone())
        .oneshot(req)
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "sign-in");
    let cookie = resp.headers()["set-cookie"].to_str().unwrap();
    cookie.split(';').next().unwrap().to_string()
}

async fn get_as(state: &Arc<AppState>, uri: &str, cookie: Option<&str>) -> (Duration, Vec<u8>) {
    let mut req = Request::builder().uri(uri);
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let req = req.body(Body::empty()).unwrap();
    let t = Instant::now();
    let resp = bulwark_server::app(state.clone())
        .oneshot(req)
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (t.elapsed(), body)
}

fn stats(mut times: Vec<Duration>) -> String {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let p = |q: f64| times[((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1];
    format!(
        "median {:.1} ms, p95 {:.1} ms, min {:.1} ms (n={})",
        ms(p(0.5)),
        ms(p(0.95)),
        ms(times[0]),
        times.len()
    )
}

async fn measure(state: &Arc<AppState>, uri: &str, n: usize) -> (String, Vec<u8>) {
    measure_as(state, uri, n, None).await
}

async fn measure_as(
    state: &Arc<AppState>,
    uri: &str,
    n: usize,
    cookie: Option<&str>,
) -> (String, Vec<u8>) {
    let mut times = Vec::with_capacity(n);
    let mut last = Vec::new();
    let _ = get_as(state, uri, cookie).await; // warm the page cache of SQLite
    for _ in 0..n {
        let (t, body) = get_as(state, uri, cookie).await;
        times.push(t);
        last = body;
    }
    (stats(times), last)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a = args();
    let tmp = tempfile::tempdir().unwrap();
    let dir = a
        .data_dir
        .as_ref()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir).unwrap();
    let roles = format!(r#"{{"{KEY}":"admin"}}"#);
    let env = |k: &str| (k == "ROLES_JSON").then(|| roles.clone());
    let loaded = parse_settings(&config(a.monitors), None, &env).expect("config");
    let fresh = !dir.join("bulwark.db").exists();
    let instance = Instance::open(Arc::new(loaded.config), &dir)
        .await
        .expect("instance");
    let instance = Arc::new(instance);
    let cold = Arc::new(AppState::new(instance.clone()).with_view_ttl(Duration::ZERO));
    if fresh {
        seed(&cold, &a).await;
    } else {
        eprintln!("reusing the store in {}", dir.display());
    }
    let size = |f: &str| std::fs::metadata(dir.join(f)).map_or(0, |m| m.len());
    let db = size("bulwark.db") + size("bulwark.db-wal");
    println!(
        "{} public monitors, {} days, {} results/hour each; bulwark.db {:.1} MB",
        a.monitors,
        a.days,
        a.per_hour,
        db as f64 / 1e6
    );
    let (s, page) = measure(&cold, "/status", a.requests).await;
    println!("GET /status, view read from the store every time: {s}");
    let cached = Arc::new(AppState::new(instance.clone()));
    let (s, _) = measure(&cached, "/status", a.requests).await;
    println!("GET /status, view cached (default TTL): {s}");
    let (s, badge) = measure(&cached, "/badge/svc-0001.svg", a.requests).await;
    println!(
        "GET /badge/svc-0001.svg, view cached: {s}, {} bytes",
        badge.len()
    );
    println!("page weight: {} bytes", page.len());
    let cookie = sign_in(&cold).await;
    let (s, overview) = measure_as(&cold, "/", a.requests, Some(&cookie)).await;
    println!("GET / (overview), views computed on every request: {s}");
    let (s, _) = measure_as(&cached, "/", a.requests, Some(&cookie)).await;
    println!("GET / (overview), views cached (default TTL): {s}");
    println!("overview weight: {} bytes", overview.len());
    if let Some(path) = &a.save {
        std::fs::write(path, &page).unwrap();
        println!("page saved to {path}");
    }
}

fn ts(ms: i64) -> bulwark_ops::Timestamp {
    bulwark_ops::Timestamp::from_millis(ms)
}
