//! Prometheus metrics: request counts and latencies per route, plus the
//! process collector (resident memory, CPU seconds, open fds, start time).

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

/// The registry and the HTTP metrics. Each instance has its own registry so
/// tests running in parallel do not share counters.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    in_flight: IntGauge,
    /// Computations of the cached views (`slo_status`, `ops_check`,
    /// `snapshots`): a cache miss each.
    pub(crate) view_computations: IntCounterVec,
    /// `bulwark_storage_*`, set from the cost cache at each scrape.
    pub(crate) storage: crate::storage_metrics::StorageMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "bulwark_http_requests_total",
                "HTTP requests answered, by route and status",
            ),
            &["method", "route", "status"],
        )
        .expect("static metric definition");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "bulwark_http_request_duration_seconds",
                "HTTP request latency, by route",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["method", "route"],
        )
        .expect("static metric definition");
        let view_computations = IntCounterVec::new(
            Opts::new(
                "bulwark_view_computations_total",
                "Expensive views computed (SLO evaluations, ops checks, repository \
                 openings), by view; requests served from the cache are not counted",
            ),
            &["view"],
        )
        .expect("static metric definition");
        let in_flight = IntGauge::new(
            "bulwark_http_requests_in_flight",
            "HTTP requests being served",
        )
        .expect("static metric definition");
        let build = IntGauge::with_opts(
            Opts::new(
                "bulwark_build_info",
                "Always 1; labels name the running version",
            )
            .const_label("version", env!("CARGO_PKG_VERSION")),
        )
        .expect("static metric definition");
        build.set(1);
        // Registration only fails for duplicate names, which these are not.
        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(in_flight.clone()),
            Box::new(view_computations.clone()),
            Box::new(build),
            Box::new(prometheus::process_collector::ProcessCollector::for_self()),
        ] {
            registry.register(collector).expect("unique metric names");
        }
        let storage = crate::storage_metrics::StorageMetrics::register(&registry);
        Metrics {
            registry,
            requests,
            latency,
            in_flight,
            view_computations,
            storage,
        }
    }

    /// The registry, for other components to add their metrics.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Everything, in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        String::from_utf8_lossy(&buf).into_owned()
    }
}

/// A request's method as a label value: one of the nine methods of RFC 9110
/// or `other`. Clients choose the method freely (`FOO`, `X1`, …), so the raw
/// string would let anyone add label sets without bound.
pub(crate) fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// A request's route as a label value: the matched template
/// (`/api/v1/keys/{id}`, not the concrete path, which may hold ids or push
/// tokens) or `unmatched`.
pub(crate) fn route_label(request: &Request) -> &str {
    request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
}

/// Middleware: counts and times every request under its method and route
/// template, both bounded label sets (see [`method_label`], [`route_label`]).
pub(crate) async fn track(State(m): State<Metrics>, request: Request, next: Next) -> Response {
    let method = method_label(request.method());
    let route = route_label(&request).to_string();
    // Decremented on drop: a request whose client went away (or whose
    // connection was closed at shutdown) is dropped mid-way, not finished.
    let _in_flight = InFlight::enter(&m.in_flight);
    let start = Instant::now();
    let response = next.run(request).await;
    m.latency
        .with_label_values(&[method, &route])
        .observe(start.elapsed().as_secs_f64());
    m.requests
        .with_label_values(&[method, &route, response.status().as_str()])
        .inc();
    response
}

struct InFlight<'a>(&'a IntGauge);

impl<'a> InFlight<'a> {
    fn enter(gauge: &'a IntGauge) -> InFlight<'a> {
        gauge.inc();
        InFlight(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_labels_are_the_standard_methods_or_other() {
        let check = |method: &str, expected: &str| {
            let m = Method::from_bytes(method.as_bytes()).unwrap();
            assert_eq!(method_label(&m), expected, "{method}");
        };
        for standard in [
            "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE",
        ] {
            check(standard, standard);
        }
        check("get", "other");
        check("PROPFIND", "other");
        check("X7f3a", "other");
    }
}
