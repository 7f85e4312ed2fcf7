//! MCP over Streamable HTTP: the `/mcp` endpoint for both protocol eras.
//!
//! **Invariant:** only this module reads or writes MCP JSON. It reaches
//! plugins only through [`crate::plugins::Registry`] and
//! [`crate::plugins::call_tool`].

mod call;
mod guard;
mod jsonrpc;
mod methods;
mod protocol;
mod relay;
mod request_state;
mod session;
mod stateless;
mod streams;
mod tools;
mod transport;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::post;

use crate::audit::AuditSink;
use crate::auth::{Auth, Decision, Principal, ToolRef};
use crate::config::Config;
use crate::limits::RateTable;
use crate::plugins::{LoadedPlugin, Registry, Runtime, ToolSpec};

#[cfg(feature = "fuzzing")]
pub(crate) use {
    jsonrpc::Message, jsonrpc::parse_message, stateless::validate as validate_stateless,
};

/// Everything `/mcp` handlers share; lives as long as the server.
pub struct McpState {
    runtime: Arc<Runtime>,
    registry: Registry,
    sessions: session::Sessions,
    settings: guard::Settings,
    state_key: request_state::StateKey,
    audit: AuditSink,
    /// Swapped whole when the config file's `[limits]` change.
    rates: arc_swap::ArcSwap<RateTable>,
    /// The deployment's durable state: sessions ended on any replica.
    durable: Arc<crate::state::Durable>,
    /// Budgets in Redis, when the cluster has one; kept to rebuild the
    /// table when the limits are reconfigured.
    shared_budgets: Option<crate::limits::RedisBudgets>,
    relay: Option<Arc<crate::state::relay::Relay>>,
    /// Open long-lived event streams per client.
    streams: Arc<streams::StreamSlots>,
    auth: Arc<Auth>,
    next_request: AtomicU64,
}

/// What every replica of a deployment shares, as the endpoint needs it.
pub struct Deployment {
    pub durable: Arc<crate::state::Durable>,
    /// Seals `requestState` and (derived) session ids; the same on every
    /// replica, so a round or a session started on one goes on on another.
    pub key: [u8; 32],
    /// Rate budgets in Redis, when the cluster has one.
    pub budgets: Option<crate::limits::RedisBudgets>,
    /// Carries a session's messages to the replica they are for, when
    /// there are replicas.
    pub relay: Option<Arc<crate::state::relay::Relay>>,
}

/// How often a replica learns of sessions ended elsewhere.
const ENDED_SESSIONS_REFRESH: Duration = Duration::from_secs(2);
/// Idle sessions and full budgets are swept every this many refreshes.
const SWEEP_EVERY: u64 = 30;

impl McpState {
    /// New tool-call budgets from a reloaded `[limits]`; budgets start full.
    pub fn replace_rates(&self, limits: &crate::config::LimitsConfig) {
        self.rates.store(Arc::new(RateTable::new(
            limits,
            self.shared_budgets.clone(),
        )));
    }

    /// Builds the endpoint's state at start-up from the validated config.
    pub fn new(
        config: &Config,
        runtime: Arc<Runtime>,
        registry: Registry,
        audit: AuditSink,
        auth: Arc<Auth>,
        shared: Deployment,
    ) -> McpState {
        let Deployment {
            durable,
            key: state_key,
            budgets: shared_budgets,
            relay,
        } = shared;
        let mcp = &config.mcp;
        let mut allowed_hosts: Vec<String> = mcp
            .allowed_hosts
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect();
        let public_host = config
            .server
            .public_url
            .as_deref()
            .and_then(|url| url.split_once("://"))
            .map(|(_, rest)| {
                rest.split(['/', ':'])
                    .next()
                    .unwrap_or(rest)
                    .to_ascii_lowercase()
            });
        allowed_hosts.extend(public_host);
        let enforce_host = config.server.listen.ip().is_loopback() || !allowed_hosts.is_empty();
        let sealing = request_state::StateKey::new(state_key);
        McpState {
            runtime,
            registry,
            sessions: session::Sessions::new(
                mcp.max_sessions,
                mcp.max_sessions_per_client,
                mcp.session_idle_timeout_secs,
                &state_key,
            ),
            durable,
            settings: guard::Settings {
                max_body_bytes: mcp.max_body_bytes,
                page_size: mcp.page_size,
                allowed_hosts,
                allowed_origins: mcp
                    .allowed_origins
                    .iter()
                    .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                    .collect(),
                enforce_host,
            },
            state_key: sealing,
            audit,
            rates: arc_swap::ArcSwap::from_pointee(RateTable::new(
                &config.limits,
                shared_budgets.clone(),
            )),
            shared_budgets,
            relay,
            streams: streams::StreamSlots::new(mcp.max_streams_per_client),
            auth,
            next_request: AtomicU64::new(1),
        }
    }

    /// Whether `who` may see and call `tool`.
    fn decide(&self, who: &Principal, plugin: &LoadedPlugin, tool: &ToolSpec) -> Decision {
        self.auth.policy().decide(
            who,
            &ToolRef {
                plugin: plugin.name(),
                name: &tool.name,
                read_only: tool.annotations.read_only,
            },
        )
    }

    /// Whether a browser page from `origin` may call this server (CORS).
    pub fn origin_allowed(&self, origin: &str) -> bool {
        guard::origin_allowed(&self.settings, origin)
    }

    fn next_request_id(&self) -> Arc<str> {
        let n = self.next_request.fetch_add(1, Ordering::Relaxed);
        Arc::from(format!("r{n:x}"))
    }

    /// What `/metrics` and `/readyz` report about the served state.
    pub fn snapshot(&self) -> crate::metrics::Snapshot {
        let set = self.registry.current();
        crate::metrics::Snapshot {
            plugins_loaded: set.plugins().len() as i64,
            tools_served: set.tools().len() as i64,
            sessions_open: self.sessions.len() as i64,
            pool_resident_bytes: i64::try_from(self.runtime.pool_resident_bytes())
                .unwrap_or(i64::MAX),
        }
    }

    /// Forgets idle sessions and full rate budgets every minute until the
    /// returned task is aborted.
    pub fn spawn_session_sweeper(self: &Arc<McpState>) -> tokio::task::JoinHandle<()> {
        let state = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(ENDED_SESSIONS_REFRESH);
            let mut ticks = 0u64;
            loop {
                tick.tick().await;
                ticks += 1;
                // Sessions another replica ended: off the request path, so
                // a session lookup never waits on the database.
                match state.durable.ended_sessions(crate::state::unix_now()).await {
                    Ok(ended) => state.sessions.set_ended(ended.into_iter().collect()),
                    Err(err) => tracing::warn!("reading ended sessions: {err}"),
                }
                if ticks.is_multiple_of(SWEEP_EVERY) {
                    let now = crate::state::unix_now();
                    if let Err(err) = state.durable.prune_ended_sessions(now).await {
                        tracing::warn!("pruning ended sessions: {err}");
                    }
                    state.rates.load().retain_recent();
                    let removed = state.sessions.sweep();
                    if removed > 0 {
                        tracing::info!(removed, "expired idle sessions");
                    }
                }
            }
        })
    }

    /// Ends a session on every replica: here at once, elsewhere within
    /// [`ENDED_SESSIONS_REFRESH`].
    pub(crate) async fn end_session(&self, id: &str) {
        let (digest, expires) = self.sessions.end(id);
        if let Err(err) = self.durable.end_session(&digest, expires).await {
            tracing::error!("recording an ended session for the other replicas: {err}");
        }
    }
}

/// The `/mcp` routes.
pub fn router(state: Arc<McpState>) -> Router {
    Router::new()
        .route(
            "/mcp",
            post(transport::post)
                .get(transport::get)
                .delete(transport::delete),
        )
        .with_state(state)
}
