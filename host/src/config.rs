//! Typed configuration: the TOML file, `TOOLHOST_*` overrides and command-line
//! flags, merged once at start-up and validated before anything listens.
//!
//! This module is a leaf: it knows nothing about TLS, MCP or wasmtime. Every
//! value is parsed here into its final type, so no other module parses strings
//! from configuration.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Prefix of environment variables that override configuration keys.
/// `TOOLHOST_SERVER__LISTEN=0.0.0.0:8443` sets `[server] listen`; a double
/// underscore separates nesting levels because keys themselves contain `_`.
pub const ENV_PREFIX: &str = "TOOLHOST_";

/// The whole configuration, after merging file, environment and flags.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub tls: TlsConfig,
    pub mcp: McpConfig,
    pub plugins: PluginsConfig,
    pub audit: AuditConfig,
    pub limits: LimitsConfig,
    pub metrics: MetricsConfig,
    pub auth: AuthConfig,
    pub cluster: ClusterConfig,
}

/// `[cluster]`: where the state shared by every replica lives. Unset, it
/// is the embedded SQLite database in the data dir, which the processes of
/// one host share.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// PostgreSQL for the durable state (OAuth clients, refresh-token
    /// families, consents, signing keys), e.g.
    /// `postgres://toolhost:…@db:5432/toolhost`.
    pub postgres_url: Option<String>,
    /// The most PostgreSQL connections one replica holds (8); replicas ×
    /// this must stay under the server's `max_connections` (or go through
    /// a pooler such as PgBouncer in transaction mode).
    pub postgres_max_connections: u32,
    /// Redis for the rate budgets every replica shares (tool calls and the
    /// sign-in endpoints), e.g. `redis://redis:6379/0`.
    pub redis_url: Option<String>,
    /// When Redis cannot be reached: `local` answers from this replica's
    /// own budgets (N replicas then allow N times the budget until it is
    /// back), `deny` refuses the calls. Either way a warning is logged and
    /// `toolhost_shared_budget_fallbacks_total` counts the checks.
    pub on_redis_down: OnRedisDown,
    /// This replica's name: its audit chain's files carry it. Default: the
    /// host name when `postgres_url` is set (a pod's name on Kubernetes),
    /// else none.
    pub replica_id: Option<String>,
}

/// `cluster.on_redis_down`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnRedisDown {
    #[default]
    Local,
    Deny,
}

impl ClusterConfig {
    /// The name this process's audit chain goes by (empty: none).
    pub fn replica(&self) -> String {
        match (&self.replica_id, &self.postgres_url) {
            (Some(id), _) => id.clone(),
            (None, Some(_)) => host_name(),
            (None, None) => String::new(),
        }
    }
}

/// The host's name, cut to what a replica id may hold.
fn host_name() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let name: String = raw
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .take(63)
        .collect();
    if valid_replica_id(&name) {
        name
    } else {
        "replica".to_string()
    }
}

/// A replica id is part of file names: letters, digits, `.`, `_`, `-`,
/// starting with a letter or digit, at most 63 characters.
fn valid_replica_id(id: &str) -> bool {
    (1..=63).contains(&id.len())
        && id.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            postgres_url: None,
            postgres_max_connections: 8,
            redis_url: None,
            on_redis_down: OnRedisDown::default(),
            replica_id: None,
        }
    }
}

/// By hand, so a logged configuration never shows the database password.
impl std::fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConfig")
            .field(
                "postgres_url",
                &self.postgres_url.as_ref().map(|_| "(set, not shown)"),
            )
            .field(
                "redis_url",
                &self.redis_url.as_ref().map(|_| "(set, not shown)"),
            )
            .field("postgres_max_connections", &self.postgres_max_connections)
            .field("on_redis_down", &self.on_redis_down)
            .field("replica_id", &self.replica_id)
            .finish()
    }
}

/// `[auth]`: who may call. Bearer tokens are required unless `mode = "off"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub mode: AuthMode,
    /// `external`: the identity provider's issuer URL, exactly as its tokens
    /// carry it in `iss`; its metadata is discovered from it.
    pub issuer: Option<String>,
    /// `external`: the JWKS URL, when discovery should be skipped.
    pub jwks_uri: Option<String>,
    /// The audience tokens must carry. Default: the canonical resource URL
    /// (`<public base URL>/mcp`), as RFC 8707 resource indicators produce.
    pub audience: Option<String>,
    /// Clock skew tolerated on `exp` and `nbf`.
    #[serde(with = "duration_ms")]
    pub leeway_ms: Duration,
    /// The claim holding group names, for access rules.
    pub groups_claim: String,
    /// Embedded issuer: lifetime of access tokens.
    #[serde(with = "duration_text")]
    pub access_token_ttl: Duration,
    /// Embedded issuer: lifetime of a refresh-token family.
    #[serde(with = "duration_text")]
    pub refresh_token_ttl: Duration,
    /// Embedded issuer: how often a new signing key replaces the current one.
    #[serde(with = "duration_text")]
    pub key_rotation: Duration,
    /// Per-plugin / per-tool access rules on top of the `read`/`write` scopes.
    pub rules: Vec<AccessRule>,
    /// Embedded issuer: accept Client ID Metadata Documents (a client_id
    /// that is an https URL serving the client's metadata).
    pub client_metadata_documents: bool,
    /// Also fetch metadata documents from private and loopback addresses
    /// (an internal network's clients). Off: only public addresses.
    pub client_metadata_private_addresses: bool,
    /// Extra CA certificate (PEM) trusted for metadata documents, besides
    /// the Mozilla roots.
    pub client_metadata_ca: Option<PathBuf>,
    /// `certificate`: the scopes a verified client certificate carries.
    pub certificate_scopes: Vec<String>,
    /// Embedded issuer: a dynamically registered client that has not
    /// completed a sign-in or refresh for this long is removed.
    #[serde(with = "duration_text")]
    pub dynamic_client_ttl: Duration,
    /// Embedded issuer: a dynamically registered client that never
    /// completed a sign-in is removed this long after registering.
    #[serde(with = "duration_text")]
    pub dynamic_client_unused_ttl: Duration,
    /// Embedded issuer: live dynamic registrations per address range (one
    /// IPv4 address, or an IPv6 /64); 0 means no per-range cap.
    pub max_clients_per_range: u32,
    /// Embedded issuer: failed sign-ins in a row after which an account
    /// backs off (every attempt refused for a while); 0 disables.
    pub password_failures: u32,
    /// Embedded issuer: the first backoff; it doubles with each further
    /// failure, up to an hour.
    #[serde(with = "duration_text")]
    pub password_backoff: Duration,
    /// Embedded issuer: password hashes computed at once (each argon2id run
    /// takes 19 MiB and a blocking thread); more sign-ins wait their turn.
    pub max_password_checks: u32,
}

/// Where tokens come from.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// toolhost's own authorization server issues and checks tokens.
    #[default]
    Embedded,
    /// Tokens come from an external identity provider (`issuer`).
    External,
    /// The TLS client certificate is the caller (mutual TLS, `tls.client_ca`):
    /// its subject's common name is the subject, its organizational units
    /// the groups; no bearer token is asked for.
    Certificate,
    /// No authentication: only allowed on a loopback listener.
    Off,
}

impl Default for AuthConfig {
    fn default() -> AuthConfig {
        AuthConfig {
            mode: AuthMode::Embedded,
            issuer: None,
            jwks_uri: None,
            audience: None,
            leeway_ms: Duration::from_secs(30),
            groups_claim: "groups".into(),
            access_token_ttl: Duration::from_secs(3600),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            key_rotation: Duration::from_secs(3600),
            rules: Vec::new(),
            client_metadata_documents: true,
            client_metadata_private_addresses: false,
            client_metadata_ca: None,
            certificate_scopes: vec!["read".into(), "write".into()],
            dynamic_client_ttl: Duration::from_secs(90 * 24 * 3600),
            dynamic_client_unused_ttl: Duration::from_secs(24 * 3600),
            max_clients_per_range: 100,
            password_failures: 5,
            password_backoff: Duration::from_secs(60),
            max_password_checks: 4,
        }
    }
}

/// `[[auth.rules]]`: allow or deny callers a set of tools. A call needs no
/// matching `deny` rule and, if any `allow` rule covers the tool, one
/// matching `allow` rule: deny wins.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AccessRule {
    pub effect: RuleEffect,
    /// Plugin name (the file stem); absent means every plugin.
    pub plugin: Option<String>,
    /// Exposed tool names; `*` suffix matches a prefix. Absent means all of the plugin's.
    #[serde(default)]
    pub tools: Vec<String>,
    /// Callers this rule is about: any listed subject, client id or group.
    /// All three empty means everyone.
    #[serde(default)]
    pub subjects: Vec<String>,
    #[serde(default)]
    pub clients: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RuleEffect {
    Allow,
    Deny,
}

/// Durations written as `"1h"`, `"30d"`, `"90s"`.
mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

/// `[metrics]`: the Prometheus endpoint, on its own plain-HTTP listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Where `/metrics` (and `/readyz`) listen; `enabled = false` turns it
    /// off. `None` is the default, [`MetricsConfig::DEFAULT_LISTEN`]: a
    /// second server on the machine may hold it, and then this one moves to
    /// a free port instead of failing; an address set explicitly must bind.
    pub listen: Option<SocketAddr>,
    pub enabled: bool,
}

impl MetricsConfig {
    pub const DEFAULT_LISTEN: SocketAddr =
        SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9464);

    /// The address to bind first.
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen.unwrap_or(Self::DEFAULT_LISTEN)
    }
}

impl Default for MetricsConfig {
    fn default() -> MetricsConfig {
        MetricsConfig {
            listen: None,
            enabled: true,
        }
    }
}

/// `[limits]`: who may connect and how much they may call.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// CIDR ranges allowed to connect; empty allows every address.
    pub allow_ips: Vec<ipnet::IpNet>,
    /// Proxies whose forwarding header is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The one header those proxies write: `"x-forwarded-for"` (default) or
    /// `"forwarded"`. The other is ignored, since proxies pass it through
    /// from the client.
    pub forwarded_header: crate::limits::ForwardedHeader,
    /// IPv6 clients are charged per network of this many bits (a host
    /// usually holds a whole /64); IPv4 clients per address.
    pub ipv6_prefix: u8,
    /// Tool calls per hour per principal (the client's address until auth
    /// identifies callers); 0 disables the limit.
    pub tool_calls_per_hour: u32,
    /// How many calls may be made at once before the hourly pace applies.
    pub tool_calls_burst: u32,
    /// Per-tool overrides by exposed tool name.
    pub tools: BTreeMap<String, ToolLimit>,
    /// Requests per minute per client address to the authorization
    /// server's endpoints (`/token`, `/register`, `/authorize`, `/revoke`);
    /// 0 disables.
    pub auth_requests_per_minute: u32,
    pub auth_burst: u32,
}

/// `[limits.tools.NAME]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ToolLimit {
    /// A separate hourly budget per principal for this tool.
    pub calls_per_hour: Option<u32>,
    pub burst: Option<u32>,
    /// How many units of the shared budget one call costs.
    #[serde(default = "one")]
    pub cost: u32,
}

fn one() -> u32 {
    1
}

impl Default for LimitsConfig {
    fn default() -> LimitsConfig {
        LimitsConfig {
            allow_ips: Vec::new(),
            trusted_proxies: Vec::new(),
            forwarded_header: crate::limits::ForwardedHeader::default(),
            ipv6_prefix: 64,
            tool_calls_per_hour: 100,
            tool_calls_burst: 100,
            tools: BTreeMap::new(),
            auth_requests_per_minute: 60,
            auth_burst: 30,
        }
    }
}

/// `[audit]`: the tamper-evident log of API calls and security events.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    pub enabled: bool,
    /// Default: `<data_dir>/audit`.
    pub dir: Option<PathBuf>,
    /// `"always"` (sync every batch before counting it written), `"batch"`
    /// (at most every `fsync_batch_ms`), or `"never"` (leave it to the OS).
    #[serde(rename = "fsync")]
    fsync_mode: FsyncMode,
    #[serde(with = "duration_ms")]
    fsync_batch_ms: Duration,
    #[serde(skip)]
    pub fsync: FsyncPolicy,
    /// Start a new file past this size (and at each new day).
    pub rotate_bytes: u64,
    /// Also print every record to stdout, for log shippers.
    pub stdout: bool,
    /// Records queued for the writer; beyond it records are dropped and counted.
    pub queue: usize,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum FsyncMode {
    Always,
    Batch,
    Never,
}

/// When the audit writer syncs to disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FsyncPolicy {
    #[default]
    Always,
    Batch(Duration),
    Never,
}

/// `[server]`: where to listen and where state lives.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Compiled-code cache, generated certificates and (later) auth state.
    pub data_dir: PathBuf,
    /// Serve plain HTTP instead of TLS (behind a TLS-terminating proxy).
    pub insecure_http: bool,
    /// Allow `insecure_http` on a non-loopback address. Off by default because
    /// bearer tokens would cross the network in clear.
    pub allow_insecure_non_loopback: bool,
    /// Public base URL (`https://tools.example.com`) when behind a proxy; used
    /// in printed client configuration and for Host/Origin checks.
    pub public_url: Option<String>,
    pub log_format: LogFormat,
    /// How long a TLS handshake and the request head may take before the
    /// connection is dropped (slow-loris defence).
    #[serde(with = "duration_ms")]
    pub header_timeout_ms: Duration,
    /// How long a whole request body may take to arrive after its head;
    /// beyond it the request gets 408.
    #[serde(with = "duration_ms")]
    pub body_timeout_ms: Duration,
    /// A connection that moves no byte for this long is closed (gracefully:
    /// a response being computed is finished first). HTTP/1.1 connections
    /// idle between requests are also bounded by `header_timeout_ms`.
    #[serde(with = "duration_ms")]
    pub idle_timeout_ms: Duration,
    /// Open connections at most; beyond it the server stops accepting until
    /// one closes (the kernel's backlog queues the rest).
    pub max_connections: usize,
}

/// Log output style.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

/// `[tls]`: certificate and key. With neither set, a self-signed development
/// certificate is generated in the data directory.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// CA certificates (PEM) that sign client certificates: turns on mutual
    /// TLS. Reloaded with the server certificate.
    pub client_ca: Option<PathBuf>,
    /// With `client_ca`: whether every client must present a certificate.
    pub client_auth: ClientAuth,
}

/// Whether mutual TLS demands a client certificate.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// The handshake fails without a certificate the CA signed.
    #[default]
    Required,
    /// A certificate is verified when offered; clients without one still
    /// connect (and authenticate with a token).
    Optional,
}

/// `[mcp]`: protocol and transport settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct McpConfig {
    /// Largest accepted request body; bigger bodies get 413.
    pub max_body_bytes: usize,
    /// Tools per `tools/list` page.
    pub page_size: usize,
    /// Browser origins allowed besides the server's own (`https://app.example.com`).
    pub allowed_origins: Vec<String>,
    /// Host names (without port) allowed in the `Host` header besides the
    /// loopback names and the public URL's host; guards against DNS rebinding.
    pub allowed_hosts: Vec<String>,
    /// Most sessions held at once; `initialize` beyond it is refused.
    pub max_sessions: usize,
    /// Most sessions one client (principal) may hold; beyond it `initialize`
    /// gets 429, so one client cannot fill the table.
    pub max_sessions_per_client: usize,
    /// Most long-lived event streams (`GET /mcp`, `subscriptions/listen`)
    /// one client may hold open; beyond it a new one gets 429.
    pub max_streams_per_client: usize,
    /// A session unused for this long is forgotten.
    #[serde(with = "duration_secs")]
    pub session_idle_timeout_secs: Duration,
}

/// `[plugins]`: where plugins come from and the default sandbox limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginsConfig {
    pub dir: PathBuf,
    /// Name prefixes per plugin (file stem → prefix), so two plugins with the
    /// same tool names can both be served: `prefixes = { github = "gh_" }`.
    pub prefixes: BTreeMap<String, String>,
    /// Defaults for plugins whose sidecar does not set a limit.
    pub limits: PluginLimits,
    /// Caps on what any sidecar may grant.
    pub policy: PluginPolicy,
    /// Watch the directory and reload changed plugins without a restart.
    pub watch: bool,
    /// Quiet period after the last file event before a reload, so an
    /// editor's or a copy's several writes become one reload.
    #[serde(with = "duration_ms")]
    pub debounce_ms: Duration,
}

/// `[plugins.policy]`: the most a sidecar may grant one plugin.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginPolicy {
    /// The pool reserves address space for this much memory per instance.
    pub max_memory_mib: u32,
    #[serde(with = "duration_ms")]
    pub max_deadline_ms: Duration,
    pub max_output_bytes: usize,
    /// Destinations no plugin may reach whatever its sidecar allows: host
    /// patterns (`metadata.google.internal`, `*.corp.example.com`, optionally
    /// `:port`) and CIDR ranges checked on resolved addresses (`10.0.0.0/8`).
    /// Parsed by the plugin runtime at start-up.
    pub network_deny: Vec<String>,
    /// Most a sidecar's `[network] timeout_ms` may be.
    #[serde(with = "duration_ms")]
    pub max_network_timeout_ms: Duration,
    /// Most a sidecar's `[network] max_response_bytes` may be.
    pub max_response_bytes: u64,
    /// Most a sidecar's `[network] max_requests_per_call` may be.
    pub max_requests_per_call: u32,
    /// Count the instructions guests execute, so `limits.fuel` can bound a
    /// call's CPU work exactly (the deadline bounds wall-clock time). Costs
    /// guest speed, so it is off unless asked for.
    pub fuel_metering: bool,
}

/// Per-call sandbox limits applied to every plugin.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginLimits {
    /// Linear memory a single call may use, in MiB.
    pub memory_mib: u32,
    /// Wall-clock budget of one call, in milliseconds.
    #[serde(with = "duration_ms")]
    pub deadline_ms: Duration,
    /// Largest result (all content plus structured content) a call may return.
    pub max_output_bytes: usize,
    /// Plugin instances alive at once across all plugins; more calls wait.
    /// Also the default per-plugin concurrency.
    pub max_instances: u32,
    /// Fuel (roughly, Wasm instructions) one call may burn; 0 is no budget.
    /// Needs `plugins.policy.fuel_metering`.
    pub fuel: u64,
    /// `host.log` lines one call may write; more are dropped and counted,
    /// so a plugin looping on `log` cannot fill the disk.
    pub log_lines: u32,
    /// `host.log` bytes (after escaping) one call may write.
    pub log_bytes: usize,
    /// `host.log` lines one plugin may write per second across its calls,
    /// which bounds the log a plugin's concurrent calls can write together.
    pub log_lines_per_second: u32,
    /// `host.log` bytes one plugin may write per second across its calls.
    pub log_bytes_per_second: usize,
}

/// An error in the configuration, naming where it came from.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid environment variable {name}: {message}")]
    Env { name: String, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Values given on the command line; they win over file and environment.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub plugins_dir: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub insecure_http: bool,
    pub log_format: Option<LogFormat>,
}

impl Config {
    /// Loads the configuration at start-up: `file` (if any), then every
    /// `TOOLHOST_*` variable in `env`, then `overrides`; validates the result.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        let source_name = file.map_or_else(|| PathBuf::from("<defaults>"), Path::to_path_buf);
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                text.parse::<toml::Table>()
                    .map_err(|err| ConfigError::Parse {
                        path: path.to_path_buf(),
                        message: err.to_string(),
                    })?
            }
            None => toml::Table::new(),
        };
        for (name, value) in env {
            // Only SECTION__KEY names are configuration; TOOLHOST_CONFIG,
            // TOOLHOST_LOG and unrelated TOOLHOST_* variables are not.
            let Some(rest) = name.strip_prefix(ENV_PREFIX).filter(|r| r.contains("__")) else {
                continue;
            };
            apply_env(&mut table, rest, &value).map_err(|message| ConfigError::Env {
                name: name.clone(),
                message,
            })?;
        }
        let mut config: Config =
            toml::Value::Table(table)
                .try_into()
                .map_err(|err: toml::de::Error| ConfigError::Parse {
                    path: source_name,
                    message: err.to_string(),
                })?;
        if let Some(listen) = overrides.listen {
            config.server.listen = listen;
        }
        if let Some(dir) = &overrides.plugins_dir {
            config.plugins.dir = dir.clone();
        }
        if let Some(dir) = &overrides.data_dir {
            config.server.data_dir = dir.clone();
        }
        if overrides.insecure_http {
            config.server.insecure_http = true;
        }
        if let Some(format) = overrides.log_format {
            config.server.log_format = format;
        }
        config.audit.fsync = match config.audit.fsync_mode {
            FsyncMode::Always => FsyncPolicy::Always,
            FsyncMode::Batch => FsyncPolicy::Batch(config.audit.fsync_batch_ms),
            FsyncMode::Never => FsyncPolicy::Never,
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |msg: String| Err(ConfigError::Invalid(msg));
        if self.server.insecure_http
            && !self.server.listen.ip().is_loopback()
            && !self.server.allow_insecure_non_loopback
        {
            return invalid(format!(
                "insecure_http on non-loopback address {} sends tokens in clear; \
                 set server.allow_insecure_non_loopback = true if a TLS proxy is in front",
                self.server.listen
            ));
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return invalid("tls.cert and tls.key must be set together".into());
        }
        if self.mcp.max_body_bytes < 1024 {
            return invalid("mcp.max_body_bytes must be at least 1024".into());
        }
        if self.audit.queue == 0 || self.audit.rotate_bytes < 4096 {
            return invalid(
                "audit.queue must be positive and audit.rotate_bytes at least 4096".into(),
            );
        }
        if self.mcp.page_size == 0 {
            return invalid("mcp.page_size must be at least 1".into());
        }
        if !(1..=128).contains(&self.limits.ipv6_prefix) {
            return invalid("limits.ipv6_prefix must be between 1 and 128".into());
        }
        if let Some(url) = &self.cluster.postgres_url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return invalid(
                "cluster.postgres_url must be a postgres:// or postgresql:// URL".into(),
            );
        }
        if let Some(url) = &self.cluster.redis_url
            && !url.starts_with("redis://")
        {
            return invalid(
                "cluster.redis_url must be a redis:// URL (TLS to Redis, rediss://, is not built in; \
                 reach Redis over a private network or a local TLS tunnel)"
                    .into(),
            );
        }
        if !(1..=1000).contains(&self.cluster.postgres_max_connections) {
            return invalid("cluster.postgres_max_connections must be between 1 and 1000".into());
        }
        if let Some(id) = &self.cluster.replica_id
            && !valid_replica_id(id)
        {
            return invalid(format!(
                "cluster.replica_id {id:?}: use 1 to 63 letters, digits, '.', '_' or '-', \
                 starting with a letter or digit"
            ));
        }
        let limits = &self.plugins.limits;
        let policy = &self.plugins.policy;
        if !(1..=4096).contains(&policy.max_memory_mib) {
            return invalid("plugins.policy.max_memory_mib must be between 1 and 4096".into());
        }
        if !(1..=policy.max_memory_mib).contains(&limits.memory_mib) {
            return invalid(format!(
                "plugins.limits.memory_mib must be between 1 and plugins.policy.max_memory_mib ({})",
                policy.max_memory_mib
            ));
        }
        if limits.deadline_ms > policy.max_deadline_ms {
            return invalid(
                "plugins.limits.deadline_ms exceeds plugins.policy.max_deadline_ms".into(),
            );
        }
        if limits.max_output_bytes > policy.max_output_bytes {
            return invalid(
                "plugins.limits.max_output_bytes exceeds plugins.policy.max_output_bytes".into(),
            );
        }
        if policy.max_network_timeout_ms.is_zero()
            || policy.max_response_bytes == 0
            || policy.max_requests_per_call == 0
        {
            return invalid(
                "plugins.policy.max_network_timeout_ms, max_response_bytes and \
                 max_requests_per_call must be positive"
                    .into(),
            );
        }
        if limits.deadline_ms.is_zero() {
            return invalid("plugins.limits.deadline_ms must be positive".into());
        }
        if limits.fuel > 0 && !self.plugins.policy.fuel_metering {
            return invalid("plugins.limits.fuel needs plugins.policy.fuel_metering = true".into());
        }
        if !(1..=10_000).contains(&limits.max_instances) {
            return invalid("plugins.limits.max_instances must be between 1 and 10000".into());
        }
        for (plugin, prefix) in &self.plugins.prefixes {
            let valid = prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !valid || prefix.len() > 32 {
                return invalid(format!(
                    "plugins.prefixes.{plugin}: {prefix:?} may only hold [a-zA-Z0-9_-], at most 32"
                ));
            }
        }
        self.validate_auth()?;
        if let Some(url) = &self.server.public_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return invalid(format!(
                "server.public_url {url:?} must start with https://"
            ));
        }
        Ok(())
    }

    fn validate_auth(&self) -> Result<(), ConfigError> {
        let invalid = |msg: String| Err(ConfigError::Invalid(msg));
        let auth = &self.auth;
        match auth.mode {
            AuthMode::Certificate
                if self.tls.client_ca.is_none()
                    || self.tls.client_auth != ClientAuth::Required
                    || self.server.insecure_http =>
            {
                return invalid(
                    "auth.mode = \"certificate\" needs TLS with tls.client_ca and \
                     tls.client_auth = \"required\""
                        .into(),
                );
            }
            AuthMode::Off if !self.server.listen.ip().is_loopback() => {
                return invalid(format!(
                    "auth.mode = \"off\" lets anyone call every tool; it is only allowed on a \
                     loopback listener, not {}",
                    self.server.listen
                ));
            }
            AuthMode::External => {
                let issuer = auth.issuer.as_deref().unwrap_or_default();
                // Keys fetched over plain HTTP could be swapped in transit;
                // only a provider on this machine may use it.
                let loopback_http = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
                    .iter()
                    .any(|prefix| {
                        issuer.strip_prefix(prefix).is_some_and(|rest| {
                            rest.is_empty() || rest.starts_with(':') || rest.starts_with('/')
                        })
                    });
                if !(issuer.starts_with("https://") || loopback_http) {
                    return invalid(
                        "auth.mode = \"external\" needs auth.issuer, an https URL (http only on loopback)"
                            .into(),
                    );
                }
            }
            _ => {}
        }
        if auth.access_token_ttl < Duration::from_secs(1)
            || auth.key_rotation < Duration::from_secs(1)
            || auth.refresh_token_ttl < auth.access_token_ttl
        {
            return invalid(
                "auth.access_token_ttl and auth.key_rotation must be at least 1s, and \
                 auth.refresh_token_ttl at least auth.access_token_ttl"
                    .into(),
            );
        }
        if auth.dynamic_client_ttl < Duration::from_secs(1)
            || auth.dynamic_client_unused_ttl < Duration::from_secs(1)
            || auth.password_backoff < Duration::from_secs(1)
            || auth.max_password_checks == 0
        {
            return invalid(
                "auth.dynamic_client_ttl, auth.dynamic_client_unused_ttl and \
                 auth.password_backoff must be at least 1s, and auth.max_password_checks \
                 at least 1"
                    .into(),
            );
        }
        for rule in &auth.rules {
            if let Some(tool) = rule
                .tools
                .iter()
                .find(|t| t.is_empty() || t[..t.len() - 1].contains('*'))
            {
                return invalid(format!(
                    "auth.rules: tool pattern {tool:?} may only end in `*`"
                ));
            }
        }
        Ok(())
    }

    /// The base URL clients use, such as `https://127.0.0.1:8443`.
    pub fn base_url(&self, bound: SocketAddr) -> String {
        if let Some(url) = &self.server.public_url {
            return url.trim_end_matches('/').to_string();
        }
        let scheme = if self.server.insecure_http {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{bound}")
    }
}

/// Sets one dotted path in the TOML table from an environment variable.
/// The value is read as a TOML value when it parses as one (numbers, booleans,
/// arrays), else as a plain string.
fn apply_env(table: &mut toml::Table, path: &str, value: &str) -> Result<(), String> {
    let keys: Vec<String> = path.split("__").map(str::to_ascii_lowercase).collect();
    if keys.iter().any(String::is_empty) {
        return Err("empty key segment".into());
    }
    let parsed = format!("v = {value}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_string()));
    let (last, parents) = keys.split_last().ok_or("empty key")?;
    let mut current = table;
    for key in parents {
        let entry = current
            .entry(key.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = entry
            .as_table_mut()
            .ok_or_else(|| format!("{key} is not a table"))?;
    }
    current.insert(last.clone(), parsed);
    Ok(())
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            data_dir: PathBuf::from(".toolhost"),
            insecure_http: false,
            allow_insecure_non_loopback: false,
            public_url: None,
            log_format: LogFormat::Pretty,
            header_timeout_ms: Duration::from_secs(10),
            body_timeout_ms: Duration::from_secs(30),
            idle_timeout_ms: Duration::from_secs(120),
            max_connections: 10_000,
        }
    }
}

impl Default for McpConfig {
    fn default() -> McpConfig {
        McpConfig {
            max_body_bytes: 4 * 1024 * 1024,
            page_size: 100,
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            max_sessions: 100_000,
            max_sessions_per_client: 20_000,
            max_streams_per_client: 16,
            session_idle_timeout_secs: Duration::from_secs(3600),
        }
    }
}

impl Default for PluginsConfig {
    fn default() -> PluginsConfig {
        PluginsConfig {
            dir: PathBuf::from("plugins"),
            prefixes: BTreeMap::new(),
            limits: PluginLimits::default(),
            policy: PluginPolicy::default(),
            watch: true,
            debounce_ms: Duration::from_millis(150),
        }
    }
}

impl Default for AuditConfig {
    fn default() -> AuditConfig {
        AuditConfig {
            enabled: true,
            dir: None,
            // Lines reach the file (and survive a crash of the process) as
            // they are written; syncing to the disk at most every 50 ms bounds
            // what a power cut can take. `always` costs a sync per batch.
            fsync_mode: FsyncMode::Batch,
            fsync_batch_ms: Duration::from_millis(50),
            fsync: FsyncPolicy::Batch(Duration::from_millis(50)),
            rotate_bytes: 64 * 1024 * 1024,
            stdout: false,
            queue: 65_536,
        }
    }
}

impl Default for PluginPolicy {
    fn default() -> PluginPolicy {
        PluginPolicy {
            max_memory_mib: 1024,
            max_deadline_ms: Duration::from_secs(300),
            max_output_bytes: 64 * 1024 * 1024,
            network_deny: Vec::new(),
            max_network_timeout_ms: Duration::from_secs(120),
            max_response_bytes: 64 * 1024 * 1024,
            max_requests_per_call: 1000,
            fuel_metering: false,
        }
    }
}

impl Default for PluginLimits {
    fn default() -> PluginLimits {
        PluginLimits {
            memory_mib: 64,
            deadline_ms: Duration::from_secs(30),
            max_output_bytes: 4 * 1024 * 1024,
            max_instances: 256,
            fuel: 0,
            log_lines: 200,
            log_bytes: 256 * 1024,
            log_lines_per_second: 1000,
            log_bytes_per_second: 1024 * 1024,
        }
    }
}

mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

mod duration_secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(toml_text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = std::env::temp_dir().join(format!("toolhost-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("toolhost.toml");
        std::fs::write(&path, toml_text).expect("write config");
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        let res = Config::load(Some(&path), env, &Overrides::default());
        let _ = std::fs::remove_dir_all(&dir);
        res
    }

    #[test]
    fn defaults_are_valid() {
        let config = load("", &[]).expect("defaults load");
        assert_eq!(
            config.server.listen,
            SocketAddr::from(([127, 0, 0, 1], 8443))
        );
        assert_eq!(config.plugins.limits.memory_mib, 64);
    }

    #[test]
    fn certificate_auth_needs_a_required_client_ca() {
        assert!(load("[auth]\nmode = \"certificate\"\n", &[]).is_err());
        assert!(
            load(
                "[tls]\nclient_ca = \"ca.pem\"\nclient_auth = \"optional\"\n[auth]\nmode = \"certificate\"\n",
                &[]
            )
            .is_err()
        );
        let config = load(
            "[tls]\nclient_ca = \"ca.pem\"\n[auth]\nmode = \"certificate\"\n",
            &[],
        )
        .expect("a required client CA suffices");
        assert_eq!(config.tls.client_auth, ClientAuth::Required);
    }

    #[test]
    fn auth_settings_are_checked() {
        let config = load(
            "[auth]\naccess_token_ttl = \"15m\"\nkey_rotation = \"2h\"\n",
            &[],
        )
        .expect("durations as text");
        assert_eq!(config.auth.access_token_ttl, Duration::from_secs(900));
        assert_eq!(config.auth.key_rotation, Duration::from_secs(7200));
        let refused = |toml_text: &str, expect: &str| {
            let err = load(toml_text, &[]).expect_err("must fail").to_string();
            assert!(err.contains(expect), "{err:?} should contain {expect:?}");
        };
        refused(
            "[server]\nlisten = \"0.0.0.0:8443\"\n[auth]\nmode = \"off\"\n",
            "loopback",
        );
        refused("[auth]\nmode = \"external\"\n", "needs auth.issuer");
        refused(
            "[auth]\nmode = \"external\"\nissuer = \"http://idp.example\"\n",
            "http only on loopback",
        );
        refused(
            "[auth]\nmode = \"external\"\nissuer = \"http://localhost.evil.example\"\n",
            "http only on loopback",
        );
        refused("[auth]\naccess_token_ttl = \"soon\"\n", "access_token_ttl");
        refused("[auth]\nmax_password_checks = 0\n", "max_password_checks");
        refused(
            "[auth]\ndynamic_client_unused_ttl = \"0s\"\n",
            "dynamic_client_unused_ttl",
        );
        let config = load(
            "[auth]\ndynamic_client_unused_ttl = \"2s\"\nmax_clients_per_range = 3\n",
            &[],
        )
        .expect("registration limits");
        assert_eq!(
            config.auth.dynamic_client_unused_ttl,
            Duration::from_secs(2)
        );
        assert_eq!(config.auth.max_clients_per_range, 3);
        refused(
            "[[auth.rules]]\neffect = \"deny\"\ntools = [\"a*b\"]\n",
            "may only end in",
        );
        load(
            "[auth]\nmode = \"external\"\nissuer = \"http://127.0.0.1:8080/realms/x\"\n",
            &[],
        )
        .expect("a provider on loopback may use http");
    }

    #[test]
    fn client_address_settings_are_checked() {
        use crate::limits::ForwardedHeader;
        let config = load("", &[]).expect("defaults");
        assert_eq!(
            (config.limits.forwarded_header, config.limits.ipv6_prefix),
            (ForwardedHeader::XForwardedFor, 64)
        );
        let config = load(
            "[limits]\nforwarded_header = \"forwarded\"\nipv6_prefix = 48\n",
            &[],
        )
        .expect("chosen header and prefix");
        assert_eq!(
            (config.limits.forwarded_header, config.limits.ipv6_prefix),
            (ForwardedHeader::Forwarded, 48)
        );
        assert!(load("[limits]\nforwarded_header = \"x-real-ip\"\n", &[]).is_err());
        assert!(load("[limits]\nipv6_prefix = 0\n", &[]).is_err());
        assert!(load("[limits]\nipv6_prefix = 129\n", &[]).is_err());
    }

    #[test]
    fn env_overrides_file() {
        let config = load(
            "[server]\nlisten = \"127.0.0.1:1\"\n",
            &[
                ("TOOLHOST_SERVER__LISTEN", "127.0.0.1:9000"),
                ("TOOLHOST_PLUGINS__LIMITS__MEMORY_MIB", "128"),
                ("TOOLHOST_MCP__ALLOWED_HOSTS", "[\"a.example\"]"),
                ("UNRELATED", "x"),
                ("TOOLHOST_BIN", "/not/config"),
            ],
        )
        .expect("loads");
        assert_eq!(config.server.listen.port(), 9000);
        assert_eq!(config.plugins.limits.memory_mib, 128);
        assert_eq!(config.mcp.allowed_hosts, vec!["a.example".to_string()]);
    }

    #[test]
    fn errors_name_their_source() {
        let check = |toml_text: &str, env: &[(&str, &str)], expect: &str| {
            let err = load(toml_text, env).expect_err("must fail").to_string();
            assert!(err.contains(expect), "{err:?} should contain {expect:?}");
        };
        check("[server]\nlisten = 5\n", &[], "toolhost.toml");
        check("[server]\nbogus = 1\n", &[], "unknown field `bogus`");
        check("[nope]\n", &[], "unknown field `nope`");
        check(
            "",
            &[("TOOLHOST_SERVER__LISTEN", "not an addr")],
            "invalid socket address",
        );
        check("", &[("TOOLHOST_SERVER__", "x")], "empty key segment");
        check(
            "[cluster]\npostgres_max_connections = 0\n",
            &[],
            "postgres_max_connections",
        );
        check(
            "[cluster]\nredis_url = \"rediss://cache:6380\"\n",
            &[],
            "redis:// URL",
        );
        check("[cluster]\nreplica_id = \"../etc\"\n", &[], "replica_id");
        check(
            "[server]\nlisten = \"0.0.0.0:80\"\ninsecure_http = true\n",
            &[],
            "sends tokens in clear",
        );
        check("[tls]\ncert = \"a.pem\"\n", &[], "must be set together");
        check("[plugins.limits]\nmemory_mib = 0\n", &[], "memory_mib");
        check(
            "[plugins.prefixes]\ngithub = \"g h\"\n",
            &[],
            "plugins.prefixes.github",
        );
        check(
            "[plugins.policy]\nmax_requests_per_call = 0\n",
            &[],
            "max_requests_per_call must be positive",
        );
        check(
            "[audit]\nfsync = \"sometimes\"\n",
            &[],
            "unknown variant `sometimes`",
        );
    }
}
