//! The server under test: spawning `toolhost serve` on 127.0.0.1:0 the way
//! the e2e harness does, waiting for its banner, trusting its generated
//! certificate, timing the way to a first successful call, and killing it.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use http::HeaderValue;
use serde::Serialize;
use tokio::sync::oneshot;

use crate::conn;
use crate::mcp::{Caller, Kind, Target, Tool};

/// How long a start may take before the bench gives up (a cold start
/// compiles the plugins).
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// Where the binary and its inputs are.
#[derive(Clone, Debug)]
pub(crate) struct Setup {
    pub(crate) bin: PathBuf,
    pub(crate) plugins: PathBuf,
    /// Where each start's stderr (JSON logs) goes.
    pub(crate) logs: PathBuf,
    /// The tool every call made through the server's [`Target`] uses.
    pub(crate) tool: Tool,
    /// Configuration overrides (`TOOLHOST_SECTION__KEY`) for every start.
    pub(crate) env: Vec<(String, String)>,
}

/// A running toolhost, killed when dropped.
pub(crate) struct Toolhost {
    child: Child,
    pub(crate) pid: u32,
    pub(crate) target: Arc<Target>,
    /// From spawning the process to its banner (plugins loaded, socket bound).
    pub(crate) banner_after: Duration,
    /// From spawning to a token in hand, when it had to be minted after the
    /// banner (the cold start).
    minted_after: Option<Duration>,
    spawned: Instant,
}

/// How long a start took.
#[derive(Clone, Copy, Debug, Serialize)]
pub(crate) struct StartTiming {
    /// Spawn → banner on stdout.
    pub(crate) banner_ms: f64,
    /// Spawn → the first token minted, when that waited for the server's
    /// first signing key (cold start only; warm starts mint before the spawn).
    pub(crate) token_ms: Option<f64>,
    /// Spawn → TCP and TLS handshakes done.
    pub(crate) connected_ms: f64,
    /// Spawn → `initialize` and `notifications/initialized` answered.
    pub(crate) session_ms: f64,
    /// Spawn → the first `tools/call` answered: the cold-start figure.
    pub(crate) first_call_ms: f64,
    /// The call after that alone, for comparison with the first.
    pub(crate) second_call_ms: f64,
}

impl Toolhost {
    /// Spawns `toolhost serve` with `data_dir` and waits for its banner.
    pub(crate) async fn spawn(
        setup: &Setup,
        data_dir: &Path,
        label: &str,
    ) -> anyhow::Result<Toolhost> {
        std::fs::create_dir_all(&setup.logs)?;
        let log_path = setup.logs.join(format!("{label}.stderr.log"));
        let mut command = Command::new(&setup.bin);
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
            .arg("--plugins")
            .arg(&setup.plugins)
            .arg("--data-dir")
            .arg(data_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log_path)?)
            .envs(setup.env.iter().map(|(k, v)| (k, v)));
        // A client brings its token. After the first start the data dir has
        // the signing key, so the token is minted before the spawn and every
        // timing runs from the spawn itself; a cold start has no key yet, so
        // its token is minted after the banner and that time counts (a client
        // of a fresh server also waits for its first token).
        let early_token = if data_dir.join("auth").exists() {
            Some(mint_token(setup, data_dir)?)
        } else {
            None
        };
        let spawned = Instant::now();
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", setup.bin.display()))?;
        let pid = child.id();
        let stdout = child.stdout.take().context("child stdout")?;
        let (url_tx, url_rx) = oneshot::channel();
        std::thread::spawn(move || {
            let mut url_tx = Some(url_tx);
            // Keeps draining stdout after the banner so the server never
            // blocks on a full pipe.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("toolhost listening on ")
                    && let Some(tx) = url_tx.take()
                {
                    let _ = tx.send((url.to_string(), Instant::now()));
                }
            }
        });
        let mut server = ToolhostGuard(Some(child));
        let (url, banner_at) = match tokio::time::timeout(START_TIMEOUT, url_rx).await {
            Ok(Ok(banner)) => banner,
            _ => {
                server.kill();
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                bail!("toolhost did not start; stderr:\n{log}");
            }
        };
        let addr = parse_url(&url)?;
        let pem = std::fs::read(data_dir.join("tls/cert.pem"))
            .context("reading the generated certificate")?;
        let (token, minted_after) = match early_token {
            Some(token) => (token, None),
            None => (mint_token(setup, data_dir)?, Some(spawned.elapsed())),
        };
        let banner_after = banner_at.duration_since(spawned);
        let target = Arc::new(Target {
            kind: Kind::Toolhost,
            tool: setup.tool,
            addr,
            tls: conn::client_config_from_pem(&pem)?,
            authorization: Some(HeaderValue::from_str(&format!("Bearer {token}"))?),
        });
        Ok(Toolhost {
            child: server.take().context("child")?,
            pid,
            target,
            banner_after,
            minted_after,
            spawned,
        })
    }

    /// Spawns a server and makes one checked `tools/call` as soon as it is
    /// up, timing each step from the spawn, then times a second call.
    pub(crate) async fn spawn_and_call(
        setup: &Setup,
        data_dir: &Path,
        label: &str,
    ) -> anyhow::Result<(Toolhost, StartTiming)> {
        let server = Toolhost::spawn(setup, data_dir, label).await?;
        let since_spawn = |at: Instant| at.duration_since(server.spawned).as_secs_f64() * 1e3;
        let conn = server.target.connect().await?;
        let connected = Instant::now();
        let mut caller = Caller::start(&server.target, conn).await?;
        let session = Instant::now();
        caller
            .call()
            .await
            .map_err(anyhow::Error::from)
            .context("first tools/call")?;
        let called = Instant::now();
        caller
            .call()
            .await
            .map_err(anyhow::Error::from)
            .context("second tools/call")?;
        let second_call = called.elapsed();
        caller.close().await;
        let timing = StartTiming {
            banner_ms: server.banner_after.as_secs_f64() * 1e3,
            token_ms: server.minted_after.map(|d| d.as_secs_f64() * 1e3),
            connected_ms: since_spawn(connected),
            session_ms: since_spawn(session),
            first_call_ms: since_spawn(called),
            second_call_ms: second_call.as_secs_f64() * 1e3,
        };
        Ok((server, timing))
    }

    pub(crate) fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// `toolhost token` for the server using `data_dir`, with the server's
/// environment (its state database may be named there).
fn mint_token(setup: &Setup, data_dir: &Path) -> anyhow::Result<String> {
    let out = Command::new(&setup.bin)
        .envs(setup.env.iter().map(|(k, v)| (k, v)))
        .arg("token")
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--sub", "bench"])
        .output()
        .context("running toolhost token")?;
    if !out.status.success() {
        bail!(
            "toolhost token failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?.trim().to_string())
}

impl Drop for Toolhost {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Kills a child that never became a [`Toolhost`].
struct ToolhostGuard(Option<Child>);

impl ToolhostGuard {
    fn kill(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn take(&mut self) -> Option<Child> {
        self.0.take()
    }
}

impl Drop for ToolhostGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `https://127.0.0.1:PORT/mcp` → the socket address.
fn parse_url(url: &str) -> anyhow::Result<SocketAddr> {
    let authority = url
        .strip_prefix("https://")
        .and_then(|rest| rest.split('/').next())
        .with_context(|| format!("unexpected banner URL {url:?} (is TLS off?)"))?;
    let addr: SocketAddr = authority
        .parse()
        .with_context(|| format!("banner URL {url:?} has no IP:port"))?;
    anyhow::ensure!(
        addr.ip().is_loopback(),
        "server listens on non-loopback {addr}"
    );
    Ok(addr)
}
