//! Prometheus metrics: requests by method and status, tool calls by plugin,
//! tool and outcome, latency histograms, rate-limit refusals, audit queue
//! health, loaded plugins and open sessions. Served as OpenMetrics text on
//! its own listener (`[metrics] listen`), so scraping never competes with
//! or is exposed like the API.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::audit::{AuditBatch, AuditNote, AuditSink};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolLabels {
    plugin: String,
    tool: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: String,
}

/// Every metric the server exports. Lives for the process.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<OperationLabels, Histogram>,
    tool_calls: Family<ToolLabels, Counter>,
    rate_limited: Counter,
    /// Set by the gauges' owners when scraped.
    plugins_loaded: Gauge,
    tools_served: Gauge,
    sessions_open: Gauge,
    pool_resident: Gauge,
    audit_written: Gauge,
    audit_dropped: Gauge,
    audit_queue_depth: Gauge,
}

/// Current values of the gauges, read at scrape time.
pub struct Snapshot {
    pub plugins_loaded: i64,
    pub tools_served: i64,
    pub sessions_open: i64,
    /// The plugin instance pool's idle resident bytes.
    pub pool_resident_bytes: i64,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("toolhost");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by method and status",
            requests.clone(),
        );
        let latency = Family::<OperationLabels, Histogram>::new_with_constructor(|| {
            // 50 µs to ~13 s: a call's latency spans in-memory tools to slow upstreams.
            Histogram::new(exponential_buckets(0.000_05, 2.0, 19))
        });
        registry.register(
            "request_duration_seconds",
            "Time to response headers by JSON-RPC method",
            latency.clone(),
        );
        let tool_calls = Family::<ToolLabels, Counter>::default();
        registry.register(
            "tool_calls",
            "Tool calls by plugin, tool and outcome",
            tool_calls.clone(),
        );
        let rate_limited = Counter::default();
        registry.register(
            "rate_limited",
            "Requests refused by a rate limit",
            rate_limited.clone(),
        );
        let plugins_loaded = Gauge::default();
        registry.register(
            "plugins_loaded",
            "Plugins serving now",
            plugins_loaded.clone(),
        );
        let tools_served = Gauge::default();
        registry.register("tools_served", "Tools serving now", tools_served.clone());
        let sessions_open = Gauge::default();
        registry.register(
            "sessions_open",
            "Open session-era sessions",
            sessions_open.clone(),
        );
        let pool_resident = Gauge::default();
        registry.register(
            "plugin_pool_resident_bytes",
            "Memory the plugin instance pool keeps resident in slots no call is using",
            pool_resident.clone(),
        );
        let audit_written = Gauge::default();
        registry.register(
            "audit_records_written",
            "Audit records durably written",
            audit_written.clone(),
        );
        let audit_queue_depth = Gauge::default();
        registry.register(
            "audit_queue_depth",
            "Audit records waiting for the writer",
            audit_queue_depth.clone(),
        );
        let audit_dropped = Gauge::default();
        registry.register(
            "audit_records_dropped",
            "Audit records dropped because the queue was full",
            audit_dropped.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            tool_calls,
            rate_limited,
            plugins_loaded,
            tools_served,
            sessions_open,
            pool_resident,
            audit_written,
            audit_dropped,
            audit_queue_depth,
        }
    }

    /// Exports the plugin runtime's own timings.
    pub fn register_plugin_timings(&mut self, timings: &crate::plugins::Timings) {
        self.registry.register(
            "plugin_instantiation_seconds",
            "Time to create a plugin instance for a call",
            timings.instantiate.clone(),
        );
        self.registry.register(
            "tool_execution_seconds",
            "Time in the plugin per call, instantiation to answer (streamed or not)",
            timings.execute.clone(),
        );
    }

    /// Exports the count of plugin log lines dropped over their budgets.
    pub fn register_plugin_log_drops(
        &mut self,
        dropped: &Family<crate::plugins::PluginLabel, Counter>,
    ) {
        self.registry.register(
            "plugin_log_lines_dropped",
            "Plugin log lines dropped over a call's log budget or a plugin's log rate",
            dropped.clone(),
        );
    }

    pub fn register_shared_budget_fallbacks(
        &mut self,
        fallbacks: &prometheus_client::metrics::counter::Counter,
    ) {
        self.registry.register(
            "shared_budget_fallbacks",
            "Rate-budget checks made while Redis was unreachable (answered as cluster.on_redis_down says)",
            fallbacks.clone(),
        );
    }

    /// The OpenMetrics text, with gauges refreshed from `snapshot`.
    pub fn render(&self, snapshot: &Snapshot, audit: &AuditSink) -> String {
        self.plugins_loaded.set(snapshot.plugins_loaded);
        self.tools_served.set(snapshot.tools_served);
        self.sessions_open.set(snapshot.sessions_open);
        self.pool_resident.set(snapshot.pool_resident_bytes);
        self.audit_written.set(audit.written() as i64);
        self.audit_dropped.set(audit.dropped() as i64);
        self.audit_queue_depth.set(audit.queue_depth() as i64);
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            tracing::error!("cannot encode metrics");
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

/// Middleware counting every request; reads (does not take) the audit note
/// the MCP layer attached, so it must sit inside the audit layer.
pub async fn layer(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    metrics
        .requests
        .get_or_create(&RequestLabels { method, status })
        .inc();
    if status == 429 {
        metrics.rate_limited.inc();
    }
    let count_call = |note: &AuditNote, implied_ok: bool| {
        if let (Some(plugin), Some(tool)) = (&note.plugin, &note.tool) {
            let outcome = match note.outcome {
                Some(outcome) => format!("{outcome:?}").to_ascii_lowercase(),
                None if implied_ok => "ok".into(),
                None => "failed".into(),
            };
            metrics
                .tool_calls
                .get_or_create(&ToolLabels {
                    plugin: plugin.clone(),
                    tool: tool.clone(),
                    outcome,
                })
                .inc();
        }
    };
    if let Some(note) = response.extensions().get::<AuditNote>() {
        let operation = note.operation.clone().unwrap_or_else(|| "none".into());
        metrics
            .latency
            .get_or_create(&OperationLabels { operation })
            .observe(started.elapsed().as_secs_f64());
        count_call(note, status == 200);
    }
    // Each call in a JSON-RPC batch counts as a call of its own.
    if let Some(AuditBatch(notes)) = response.extensions().get::<AuditBatch>() {
        for note in notes {
            count_call(note, status == 200);
        }
    }
    response
}
