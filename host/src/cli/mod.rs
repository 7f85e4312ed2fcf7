//! The command line: argument parsing, logging set-up and the `serve`
//! start-up sequence. The top of the dependency graph; nothing imports it.

mod admin;
mod banner;
mod plugin;
mod remote;
mod scaffold;
mod snippets;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::audit::{self, AuditSink, Event};
use crate::auth::Auth;
use crate::config::{AuthMode, Config, LogFormat, Overrides};
use crate::plugins::{self, PluginSet, Registry, Runtime};
use crate::{mcp, server, tls, watch};

#[derive(Parser)]
#[command(
    name = "toolhost",
    version,
    about = "A remote MCP server that hosts tools as sandboxed WebAssembly components"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve MCP over HTTPS (the default command).
    Serve(ServeArgs),
    /// Work with the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Print an access token signed by the embedded authorization server
    /// (for scripts and tests).
    Token(admin::TokenArgs),
    /// Manage OAuth clients of the embedded authorization server.
    #[command(subcommand)]
    Client(admin::ClientCommand),
    /// Manage the users who sign in to the embedded authorization server.
    #[command(subcommand)]
    User(admin::UserCommand),
    /// Print the configuration an MCP client (Claude Code, VS Code, Cursor)
    /// needs to use a toolhost server.
    Config(snippets::ConfigArgs),
    /// Sign in to a toolhost server (browser, --device, or --client-credentials).
    Login(remote::LoginArgs),
    /// Revoke and forget the sign-in to a server.
    Logout(remote::LogoutArgs),
    /// List the tools you may call.
    Tools(remote::ToolsArgs),
    /// Call a tool; exits with status 1 when the tool reports an error.
    Call(remote::CallArgs),
    /// Work with plugin components.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the hash chain of an audit log directory and report the first broken record.
    Verify {
        /// Directory of audit-*.jsonl files (default: the configured audit dir).
        dir: Option<PathBuf>,
        /// TOML configuration file, to find the audit directory.
        #[arg(long, env = "TOOLHOST_CONFIG")]
        config: Option<PathBuf>,
        /// Data directory, to find the audit directory.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

#[derive(clap::Args, Default)]
struct ServeArgs {
    /// TOML configuration file; every key can also be set as TOOLHOST_SECTION__KEY.
    #[arg(long, env = "TOOLHOST_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:8443).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Directory of plugin components (*.wasm).
    #[arg(long)]
    plugins: Option<PathBuf>,
    /// Directory for generated certificates and the compiled-code cache.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Serve plain HTTP (only on loopback unless the config allows more).
    #[arg(long)]
    insecure_http: bool,
    /// Log output format.
    #[arg(long, value_enum)]
    log_format: Option<LogFormat>,
}

/// Parses the command line and runs the chosen command.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let res = match cli.command.unwrap_or(Command::Serve(ServeArgs::default())) {
        Command::Serve(args) => serve(args),
        Command::Audit(AuditCommand::Verify {
            dir,
            config,
            data_dir,
        }) => audit_verify(dir, config, data_dir),
        Command::Token(args) => admin::token(args),
        Command::Client(command) => admin::client(command),
        Command::User(command) => admin::user(command),
        Command::Config(args) => snippets::run(args),
        Command::Plugin(command) => plugin::run(command),
        Command::Login(args) => client_runtime().and_then(|rt| rt.block_on(remote::login(args))),
        Command::Logout(args) => client_runtime().and_then(|rt| rt.block_on(remote::logout(args))),
        Command::Tools(args) => client_runtime().and_then(|rt| rt.block_on(remote::tools(args))),
        Command::Call(args) => {
            match client_runtime().and_then(|rt| rt.block_on(remote::call(args))) {
                // The tool ran and reported an error: its output is printed.
                Ok(true) => return ExitCode::from(1),
                Ok(false) => Ok(()),
                Err(err) => Err(err),
            }
        }
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("toolhost: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Task polls between checks of the socket driver and the shared queue
/// (tokio's defaults are 61 and 31); see `serve`.
const SOCKET_POLL_INTERVAL: u32 = 4;

/// The client commands make a handful of requests: one thread suffices.
fn client_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Strategy: load and validate everything that can fail (config, plugins,
/// certificates, the socket) before printing the banner, so a started server
/// is a working one; then serve until Ctrl-C or SIGTERM.
fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let overrides = Overrides {
        listen: args.listen,
        plugins_dir: args.plugins,
        data_dir: args.data_dir,
        insecure_http: args.insecure_http,
        log_format: args.log_format,
    };
    let config = Config::load(args.config.as_deref(), std::env::vars(), &overrides)?;
    init_logging(config.server.log_format);
    // Plugin calls are CPU work on these same workers, yielding every epoch
    // tick (1 ms). Tokio's defaults check the socket driver every 61 task
    // polls and the shared queue every 31: with every worker busy with a
    // spinning guest that would leave new requests unnoticed for ~60 ms.
    // Checking every few polls keeps other plugins responsive while one
    // burns its deadline, at the cost of a cheap non-blocking poll.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .event_interval(SOCKET_POLL_INTERVAL)
        .global_queue_interval(SOCKET_POLL_INTERVAL)
        .build()
        .context("starting the async runtime")?;
    let source = args.config.map(|path| (path, overrides));
    runtime.block_on(serve_async(config, source))
}

/// `toolhost audit verify`: exit status 0 when the chain holds.
fn audit_verify(
    dir: Option<PathBuf>,
    config: Option<PathBuf>,
    data_dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    let dir = match dir {
        Some(dir) => dir,
        None => {
            let overrides = Overrides {
                data_dir,
                ..Overrides::default()
            };
            let config = Config::load(config.as_deref(), std::env::vars(), &overrides)?;
            config
                .audit
                .dir
                .clone()
                .unwrap_or_else(|| config.server.data_dir.join("audit"))
        }
    };
    let report = audit::verify_dir(&dir)
        .with_context(|| format!("audit log {} does not verify", dir.display()))?;
    println!(
        "audit log {} verifies: {} records in {} files, {} chain(s)",
        dir.display(),
        report.records(),
        report.files(),
        report.chains.len()
    );
    for chain in &report.chains {
        let name = if chain.replica.is_empty() {
            "(unnamed)"
        } else {
            chain.replica.as_str()
        };
        println!(
            "  chain {name}: {} records in {} files",
            chain.records, chain.files
        );
        for torn in &chain.torn {
            println!(
                "    torn (incomplete) last line at {torn}: a crash during a write; the chain continues after it"
            );
        }
    }
    Ok(())
}

/// `source` is the config file and command-line overrides, when there is a
/// file to watch for live changes.
async fn serve_async(config: Config, source: Option<(PathBuf, Overrides)>) -> anyhow::Result<()> {
    // aws-lc seeds its RNG with a CPU-heavy entropy test on first use (tens of
    // ms); do it while plugins load instead of in the first client's handshake.
    std::thread::spawn(|| {
        let mut seed = [0u8; 32];
        let _ = rustls::crypto::aws_lc_rs::default_provider()
            .secure_random
            .fill(&mut seed);
    });
    let data_dir = &config.server.data_dir;
    crate::secret_file::create_dir(data_dir)
        .with_context(|| format!("creating data directory {}", data_dir.display()))?;
    let state = Arc::new(open_state(&config).await?);
    let replica = config.cluster.replica();
    let audit_key = state
        .shared_key(
            crate::state::secrets::AUDIT_DIGEST,
            audit::legacy_key(&config.audit, data_dir),
        )
        .await
        .context("reading the audit digest key")?;
    let (audit_sink, audit_writer) =
        AuditSink::start(&config.audit, data_dir, &replica, audit_key)?;
    audit_sink.event(
        Event::ServerStarted,
        format!("toolhost {}", env!("CARGO_PKG_VERSION")),
    );
    let mut plugin_runtime = Runtime::new(&config.plugins, data_dir.join("cache"))?;
    match std::env::current_exe() {
        Ok(exe) => plugin_runtime.compile_in_children(exe),
        Err(err) => tracing::warn!("plugins compile in the server process ({err})"),
    }
    let plugin_runtime = Arc::new(plugin_runtime);
    let plugins_dir = &config.plugins.dir;
    if !plugins_dir.is_dir() {
        std::fs::create_dir_all(plugins_dir)
            .with_context(|| format!("creating plugins directory {}", plugins_dir.display()))?;
        tracing::warn!(dir = %plugins_dir.display(), "plugins directory was missing; created it empty");
    }
    let (set, report) = plugins::reload_dir(&plugin_runtime, plugins_dir, &PluginSet::empty())
        .await
        .with_context(|| format!("reading plugins directory {}", plugins_dir.display()))?;
    for (name, err, _) in &report.failed {
        tracing::error!("plugin refused: {err}");
        audit_sink.event(Event::PluginRefused, format!("{name}: {err}"));
    }
    for name in &report.loaded {
        audit_sink.event(Event::PluginLoaded, name.clone());
    }
    let n_tools = set.tools().len();
    let n_plugins = set.plugins().len();
    let registry = Registry::new(set);
    let _watch = if config.plugins.watch {
        let handle = watch::spawn(
            plugin_runtime.clone(),
            registry.clone(),
            audit_sink.clone(),
            plugins_dir.clone(),
            config.plugins.debounce_ms,
        )
        .with_context(|| format!("watching plugins directory {}", plugins_dir.display()))?;
        Some(handle)
    } else {
        None
    };

    let tls = if config.server.insecure_http {
        None
    } else {
        let (server_config, cert) = tls::server_config(&config.tls, data_dir)?;
        Some((server_config, cert))
    };
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("binding {}", config.server.listen))?;
    let bound = listener.local_addr()?;
    let base_url = config.base_url(bound);
    let shared_budgets = shared_budgets(&config)?;
    let auth = Auth::new(
        &config,
        &base_url,
        audit_sink.clone(),
        state.clone(),
        shared_budgets.clone(),
    )
    .await
    .context("setting up auth")?;
    let first_password = match auth.embedded() {
        Some(issuer) => issuer
            .ensure_first_user()
            .await
            .context("creating the first user")?,
        None => None,
    };
    let _rotation = auth.spawn_rotation();
    if let Some(issuer) = auth.embedded() {
        // The consent page names the tools each scope reaches; the issuer
        // sits below the plugins, so it is handed a view of them.
        let registry = registry.clone();
        issuer.set_tool_source(Arc::new(move || {
            let set = registry.current();
            crate::auth::issuer::ToolSummary::from_tools(
                set.tools()
                    .map(|(_, tool)| (tool.name.as_str(), tool.annotations.read_only)),
            )
        }));
    }
    let request_state_key = state
        .shared_key(crate::state::secrets::REQUEST_STATE, None)
        .await
        .context("reading the request-state key")?;
    let mcp_state = Arc::new(mcp::McpState::new(
        &config,
        plugin_runtime.clone(),
        registry,
        audit_sink.clone(),
        auth.clone(),
        mcp::Deployment {
            durable: state.clone(),
            key: request_state_key,
            budgets: shared_budgets.clone(),
            relay: relay(&config, &state)?,
        },
    ));
    let sweeper = mcp_state.spawn_session_sweeper();
    let _relay = mcp_state.spawn_relay().await;
    let allowlist = Arc::new(arc_swap::ArcSwap::from_pointee(
        crate::limits::Allowlist::from_config(&config.limits),
    ));
    let mut metrics = crate::metrics::Metrics::new();
    metrics.register_plugin_timings(plugin_runtime.timings());
    metrics.register_plugin_log_drops(plugin_runtime.log_dropped());
    if let Some(shared) = &shared_budgets {
        metrics.register_shared_budget_fallbacks(shared.fallbacks());
    }
    let budgets = shared_budgets.as_ref().map(|s| s.budgets().clone());
    let metrics = Arc::new(metrics);
    let (metrics_listener, metrics_line) = bind_metrics(&config.metrics).await?;
    let metrics_server = metrics_listener.map(|listener| {
        let router = crate::metrics_app(
            mcp_state.clone(),
            audit_sink.clone(),
            metrics.clone(),
            crate::Backends {
                state: state.clone(),
                budgets: budgets.clone(),
            },
        );
        tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, router).await {
                tracing::error!("metrics listener stopped: {err}");
            }
        })
    });
    let _config_watch = match source {
        Some((path, overrides)) => {
            let live = crate::reconfigure::Live {
                allowlist: allowlist.clone(),
                mcp: mcp_state.clone(),
                auth: auth.clone(),
                audit: audit_sink.clone(),
            };
            Some(
                crate::reconfigure::watch(path, overrides, config.clone(), live)
                    .context("watching the configuration file")?,
            )
        }
        None => None,
    };
    let app = crate::app(
        mcp_state,
        auth.clone(),
        audit_sink.clone(),
        allowlist,
        metrics,
        crate::Backends { state, budgets },
    );

    let scheme = if tls.is_some() { "https" } else { "http" };
    let auth_detail = match config.auth.mode {
        AuthMode::Certificate => config
            .tls
            .client_ca
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        AuthMode::External => config.auth.issuer.clone().unwrap_or_default(),
        AuthMode::Off | AuthMode::Embedded => String::new(),
    };
    let facts = banner::Facts {
        bound_url: &format!("{scheme}://{bound}"),
        base_url: &base_url,
        cert: tls.as_ref().map(|(_, cert)| cert),
        n_plugins,
        n_tools,
        n_refused: report.failed.len(),
        auth_mode: config.auth.mode,
        auth_detail: &auth_detail,
        first_password: first_password.as_deref(),
        metrics: metrics_line,
        plugins_dir,
    };
    println!("{}", banner::lines(&facts).join("\n"));
    let _cert_watch = match &tls {
        Some((certificates, _)) => {
            Some(tls::watch(certificates.clone()).context("watching the TLS certificate files")?)
        }
        None => None,
    };
    let serve_config = server::ServeConfig {
        tls: tls.map(|(server_config, _)| server_config),
        header_timeout: config.server.header_timeout_ms,
        body_timeout: config.server.body_timeout_ms,
        idle_timeout: config.server.idle_timeout_ms,
        max_connections: config.server.max_connections,
    };
    server::serve(listener, app, serve_config, shutdown_signal()).await;
    sweeper.abort();
    if let Some(task) = metrics_server {
        task.abort();
    }
    if let Some(writer) = audit_writer {
        writer.shutdown().await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Binds the metrics listener. The default address is a convenience that a
/// second server on the machine (a test, a replica) already holds: then
/// this one takes a free port on the same interface, or goes without
/// metrics, and the banner says so. An address the operator chose must bind.
async fn bind_metrics(
    metrics: &crate::config::MetricsConfig,
) -> anyhow::Result<(Option<tokio::net::TcpListener>, banner::MetricsLine)> {
    use banner::MetricsLine;
    use tokio::net::TcpListener;
    if !metrics.enabled {
        return Ok((None, MetricsLine::Off));
    }
    let wanted = metrics.listen_addr();
    let err = match TcpListener::bind(wanted).await {
        Ok(listener) => {
            let at = listener.local_addr()?;
            return Ok((Some(listener), MetricsLine::At(at)));
        }
        Err(err) if metrics.listen.is_none() && err.kind() == std::io::ErrorKind::AddrInUse => err,
        Err(err) => {
            return Err(anyhow::Error::new(err).context(format!(
                "binding the metrics listener {wanted} (metrics.listen)"
            )));
        }
    };
    tracing::warn!("the default metrics address {wanted} is taken ({err}); trying a free port");
    match TcpListener::bind(SocketAddr::new(wanted.ip(), 0)).await {
        Ok(listener) => {
            let at = listener.local_addr()?;
            Ok((Some(listener), MetricsLine::Moved { wanted, at }))
        }
        Err(err) => {
            tracing::warn!("no free port for metrics ({err}); serving without metrics");
            Ok((None, MetricsLine::Unavailable { wanted }))
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TOOLHOST_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,wasmtime=warn,cranelift=warn")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Pretty => builder.init(),
    }
}

/// Rate budgets in Redis, when `[cluster]` names one.
fn shared_budgets(config: &Config) -> anyhow::Result<Option<crate::limits::RedisBudgets>> {
    let Some(url) = &config.cluster.redis_url else {
        return Ok(None);
    };
    let budgets = crate::state::budgets::SharedBudgets::new(url)
        .with_context(|| format!("setting up Redis at {}", crate::state::redact(url)))?;
    tracing::info!(redis = %crate::state::redact(url), on_down = ?config.cluster.on_redis_down, "rate budgets shared in Redis");
    let budgets = Arc::new(budgets);
    let warming = budgets.clone();
    tokio::spawn(async move { warming.warm().await });
    Ok(Some(crate::limits::RedisBudgets::new(
        budgets,
        config.cluster.on_redis_down,
    )))
}

/// The channel between replicas: Redis when the cluster has it, else
/// PostgreSQL; none for the embedded database (one machine, usually one
/// process).
fn relay(
    config: &Config,
    state: &Arc<crate::state::Durable>,
) -> anyhow::Result<Option<Arc<crate::state::relay::Relay>>> {
    let cluster = &config.cluster;
    let relay = match (&cluster.redis_url, &cluster.postgres_url) {
        (Some(url), _) => crate::state::relay::Relay::redis(url)
            .with_context(|| format!("setting up Redis at {}", crate::state::redact(url)))?,
        (None, Some(url)) => crate::state::relay::Relay::postgres(url, state.clone()),
        (None, None) => return Ok(None),
    };
    Ok(Some(Arc::new(relay)))
}

/// The deployment's durable state: PostgreSQL when `[cluster]` names one,
/// else the embedded database in the data dir.
async fn open_state(config: &Config) -> anyhow::Result<crate::state::Durable> {
    let postgres = config.cluster.postgres_url.as_deref();
    let target = postgres.map(|url| crate::state::Postgres {
        url,
        max_connections: config.cluster.postgres_max_connections,
    });
    let state = crate::state::Durable::open(&config.server.data_dir, target)
        .await
        .context("opening the state database")?;
    match postgres {
        Some(url) => tracing::info!(database = %crate::state::redact(url), "state in PostgreSQL"),
        None => tracing::info!(
            file = %config.server.data_dir.join(crate::state::SQLITE_FILE).display(),
            "state in the embedded database"
        ),
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// The CLI's promise: every setting flag of the client commands can
    /// also come from the environment and from `cli.toml`.
    #[test]
    fn client_flags_have_env_and_config_equivalents() {
        let mut command = Cli::command();
        command.build();
        let mut checked = 0;
        for name in ["login", "logout", "tools", "call", "config"] {
            let sub = command.find_subcommand(name).expect("subcommand");
            for arg in sub.get_arguments() {
                let id = arg.get_id().as_str();
                // The tool's arguments are data, not settings.
                if name == "call" && matches!(id, "tool" | "args" | "json") {
                    continue;
                }
                // `login URL` is `--url` said positionally.
                if (name == "config" && id == "client") || id == "target" || id == "help" {
                    continue;
                }
                assert!(arg.get_env().is_some(), "{name} {id} has no env variable");
                let key = match id {
                    "timeout" => "timeout_secs",
                    other => other,
                };
                let value = if arg.get_num_args().is_some_and(|n| n.takes_values()) {
                    match key {
                        "timeout_secs" => "5".to_string(),
                        _ => "\"x\"".to_string(),
                    }
                } else {
                    "true".to_string()
                };
                let parsed: Result<crate::client::settings::CliSettings, _> =
                    toml::from_str(&format!("{key} = {value}"));
                assert!(parsed.is_ok(), "{name} {id}: cli.toml has no {key}");
                checked += 1;
            }
        }
        assert!(checked >= 14, "{checked}");
    }
}
