//! Starting the real `toolhost` binary for a test and talking to it the way
//! clients do: HTTPS with the server's generated certificate, JSON-RPC bodies.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// A running server, killed when dropped.
pub(crate) struct Server {
    pub(crate) url: String,
    /// `http://127.0.0.1:PORT/metrics`, when metrics are enabled.
    pub(crate) metrics_url: Option<String>,
    /// The certificate the server presents (generated or configured).
    pub(crate) cert_path: PathBuf,
    pub(crate) data_dir: PathBuf,
    pub(crate) plugins_dir: PathBuf,
    pub(crate) config_path: PathBuf,
    /// The environment the server was started with, for the admin
    /// commands run against its data dir (`client add`, `client list`).
    env: Vec<(String, String)>,
    /// An HTTPS client trusting the server's certificate and sending
    /// [`Server::token`] on every request.
    pub(crate) client: reqwest::Client,
    /// A `read write` access token for subject `e2e`, minted with
    /// `toolhost token` (absent when the config turns embedded auth off).
    pub(crate) token: Option<String>,
    child: Child,
    stderr_log: PathBuf,
    /// Everything the server printed on stdout (the banner), and a signal
    /// for each new line.
    stdout: std::sync::Arc<(std::sync::Mutex<Vec<String>>, std::sync::Condvar)>,
}

/// What a test server should serve.
pub(crate) struct Setup {
    /// Bundled plugins by name (`devtools`).
    pub(crate) bundled: Vec<&'static str>,
    /// Test fixtures by name (`conformance`, `hostile`, `collide`, …).
    pub(crate) fixtures: Vec<&'static str>,
    /// Extra TOML config.
    pub(crate) config: String,
    pub(crate) env: Vec<(String, String)>,
    /// Reuse a data dir (certificate and compile cache) from an earlier server.
    pub(crate) data_dir: Option<PathBuf>,
    /// Sidecars (`NAME.toml`) written next to the plugins before start.
    pub(crate) sidecars: Vec<(&'static str, String)>,
    /// Integration plugins (`github`, `jira`) by name.
    pub(crate) integrations: Vec<&'static str>,
    /// `--log-format` of the server (`json` unless a test reads `pretty`).
    pub(crate) log_format: &'static str,
}

impl Setup {
    pub(crate) fn new() -> Setup {
        Setup {
            bundled: Vec::new(),
            fixtures: Vec::new(),
            config: String::new(),
            env: Vec::new(),
            data_dir: None,
            sidecars: Vec::new(),
            integrations: Vec::new(),
            log_format: "json",
        }
    }

    pub(crate) fn log_format(mut self, format: &'static str) -> Setup {
        self.log_format = format;
        self
    }

    pub(crate) fn data_dir(mut self, dir: PathBuf) -> Setup {
        self.data_dir = Some(dir);
        self
    }

    pub(crate) fn bundled(mut self, name: &'static str) -> Setup {
        self.bundled.push(name);
        self
    }

    pub(crate) fn fixture(mut self, name: &'static str) -> Setup {
        self.fixtures.push(name);
        self
    }

    /// An integration plugin (`target/integrations/NAME.wasm`).
    pub(crate) fn integration(mut self, name: &'static str) -> Setup {
        self.integrations.push(name);
        self
    }

    /// A sidecar for plugin `name`, in place before the server starts.
    pub(crate) fn sidecar(mut self, name: &'static str, toml: &str) -> Setup {
        self.sidecars.push((name, toml.to_string()));
        self
    }

    pub(crate) fn env(mut self, key: &str, value: &str) -> Setup {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Serves the certificate and key in `dir` (`cert.pem`, `key.pem`),
    /// as replicas behind one balancer share one.
    pub(crate) fn tls_files(self, dir: &Path) -> Setup {
        self.config(&format!(
            "[tls]\ncert = \"{}\"\nkey = \"{}\"",
            dir.join("cert.pem").display(),
            dir.join("key.pem").display()
        ))
    }

    pub(crate) fn config(mut self, toml: &str) -> Setup {
        self.config.push_str(toml);
        self.config.push('\n');
        self
    }

    pub(crate) async fn start(self) -> anyhow::Result<Server> {
        Server::start(self).await
    }
}

pub(crate) fn artefact_dir(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(default))
}

pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

pub(crate) fn toolhost_bin() -> PathBuf {
    artefact_dir("TOOLHOST_BIN", "target/debug/toolhost")
}

pub(crate) fn scratch_dir(label: &str) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = workspace_root()
        .join("target/e2e")
        .join(format!("{label}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

pub(crate) fn install_crypto() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}

impl Server {
    async fn start(setup: Setup) -> anyhow::Result<Server> {
        install_crypto();
        let root = scratch_dir("server");
        let plugins_dir = root.join("plugins");
        let data_dir = setup.data_dir.clone().unwrap_or_else(|| root.join("data"));
        std::fs::create_dir_all(&plugins_dir)?;
        for name in &setup.bundled {
            let src =
                artefact_dir("TOOLHOST_PLUGINS", "target/plugins").join(format!("{name}.wasm"));
            std::fs::copy(&src, plugins_dir.join(format!("{name}.wasm")))
                .with_context(|| format!("copying {} (run `cargo xtask test`)", src.display()))?;
        }
        for name in &setup.fixtures {
            let src = artefact_dir("TOOLHOST_TEST_PLUGINS", "target/test-plugins")
                .join(format!("{name}.wasm"));
            std::fs::copy(&src, plugins_dir.join(format!("{name}.wasm")))
                .with_context(|| format!("copying {} (run `cargo xtask test`)", src.display()))?;
        }
        for name in &setup.integrations {
            let src = artefact_dir("TOOLHOST_INTEGRATIONS", "target/integrations")
                .join(format!("{name}.wasm"));
            std::fs::copy(&src, plugins_dir.join(format!("{name}.wasm")))
                .with_context(|| format!("copying {} (run `cargo xtask test`)", src.display()))?;
        }
        for (name, toml) in &setup.sidecars {
            std::fs::write(plugins_dir.join(format!("{name}.toml")), toml)?;
        }
        let config_path = root.join("toolhost.toml");
        // Tests make more calls (and sign-ins) than the default budgets
        // allow; tests of the limits set their own.
        let mut config = setup.config.clone();
        if !config.contains("[limits]") {
            config.push_str("\n[limits]\ntool_calls_per_hour = 0\nauth_requests_per_minute = 0\n");
        }
        // Many servers run at once: each gets its own metrics port.
        if !config.contains("[metrics]") {
            config.push_str("\n[metrics]\nlisten = \"127.0.0.1:0\"\n");
        }
        std::fs::write(&config_path, config)?;
        let stderr_log = root.join("stderr.log");
        let mut command = Command::new(toolhost_bin());
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format"])
            .arg(setup.log_format)
            .arg("--config")
            .arg(&config_path)
            .arg("--plugins")
            .arg(&plugins_dir)
            .arg("--data-dir")
            .arg(&data_dir)
            .env("TOOLHOST_LOG", "info,toolhost=debug")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_log)?);
        for (k, v) in &setup.env {
            command.env(k, v);
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", toolhost_bin().display()))?;
        let stdout = child.stdout.take().context("child stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        let printed =
            std::sync::Arc::new((std::sync::Mutex::new(Vec::new()), std::sync::Condvar::new()));
        let lines = printed.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(mut printed) = lines.0.lock() {
                    printed.push(line.clone());
                    lines.1.notify_all();
                }
                if let Some(url) = line.strip_prefix("toolhost listening on ") {
                    let _ = tx.send(url.to_string());
                }
                // `metrics: URL`, maybe followed by why it is not the default.
                if let Some(url) = line
                    .trim()
                    .strip_prefix("metrics: ")
                    .and_then(|rest| rest.split_whitespace().next())
                    .filter(|url| url.starts_with("http"))
                {
                    let _ = tx.send(format!("metrics {url}"));
                }
                if line.trim().starts_with("certificate (")
                    && let Some((_, path)) = line.split_once("): ")
                {
                    let _ = tx.send(format!("cert {path}"));
                }
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let log = std::fs::read_to_string(&stderr_log).unwrap_or_default();
                bail!("server did not start; stderr:\n{log}");
            }
        };
        // The rest of the banner: the certificate in use and the metrics address.
        let mut metrics_url = None;
        let mut cert_path = data_dir.join("tls/cert.pem");
        while let Ok(line) = rx.recv_timeout(Duration::from_secs(2)) {
            if let Some(url) = line.strip_prefix("metrics ") {
                metrics_url = Some(url.to_string());
                break;
            }
            if let Some(path) = line.strip_prefix("cert ") {
                cert_path = PathBuf::from(path);
            }
        }
        let embedded_auth = !(config_has(&setup.config, "mode = \"off\"")
            || config_has(&setup.config, "mode = \"external\"")
            || config_has(&setup.config, "mode = \"certificate\""));
        let token = if embedded_auth {
            Some(mint_token_with(
                &config_path,
                &data_dir,
                "e2e",
                "read write",
                None,
                &setup.env,
            )?)
        } else {
            None
        };
        let client = authorized_client(&cert_path, token.as_deref())?;
        Ok(Server {
            url,
            metrics_url,
            cert_path,
            data_dir,
            plugins_dir,
            config_path,
            env: setup.env.clone(),
            client,
            token,
            child,
            stderr_log,
            stdout: printed,
        })
    }

    /// The generated self-signed certificate, for clients that take a CA file.
    /// Kills the server with SIGKILL, as a crash would, and waits for it.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub(crate) fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }

    /// `toolhost ARGS` against this server's config, data dir and
    /// environment (its state database may be named there).
    pub(crate) fn admin(&self, args: &[&str]) -> Command {
        let mut command = Command::new(toolhost_bin());
        command
            .args(args)
            .arg("--config")
            .arg(&self.config_path)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    /// Registers a confidential `client_credentials` client with
    /// `toolhost client add`; returns its id and secret.
    pub(crate) fn add_client(&self, name: &str, scope: &str) -> anyhow::Result<(String, String)> {
        let out = self
            .admin(&["client", "add", name, "--scope", scope])
            .output()?;
        if !out.status.success() {
            bail!(
                "toolhost client add: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let text = String::from_utf8(out.stdout)?;
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}=")))
                .map(str::to_string)
                .with_context(|| format!("no {name} in {text}"))
        };
        Ok((field("client_id")?, field("client_secret")?))
    }

    /// `toolhost user add NAME --groups GROUPS` on the server's data dir,
    /// with the password on stdin.
    pub(crate) fn add_user(&self, name: &str, password: &str, groups: &str) -> anyhow::Result<()> {
        use std::io::Write;
        let mut add = self
            .admin(&["user", "add", name, "--groups", groups])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        add.stdin
            .take()
            .context("stdin")?
            .write_all(format!("{password}\n").as_bytes())?;
        let out = add.wait_with_output()?;
        anyhow::ensure!(
            out.status.success(),
            "user add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    }

    /// The ids of the stored clients, from `toolhost client list`.
    pub(crate) fn client_ids(&self) -> anyhow::Result<Vec<String>> {
        let out = self.admin(&["client", "list"]).output()?;
        if !out.status.success() {
            bail!(
                "toolhost client list: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?
            .lines()
            .filter_map(|line| line.split('\t').next())
            .map(str::to_string)
            .collect())
    }

    /// The password of `admin` that the first start printed.
    pub(crate) fn admin_password(&self) -> anyhow::Result<String> {
        self.stdout_line("first run: sign in as user \"admin\" with password ")
            .and_then(|rest| rest.split_whitespace().next().map(str::to_string))
            .context("the banner shows the first password")
    }

    /// The rest of the first stdout line containing `marker`, after it.
    pub(crate) fn stdout_line(&self, marker: &str) -> Option<String> {
        let lines = self.stdout.0.lock().ok()?;
        lines.iter().find_map(|line| {
            line.find(marker)
                .map(|at| line[at + marker.len()..].to_string())
        })
    }

    /// Every stdout line so far, once one starting with `prefix` has been
    /// printed (waiting up to `timeout` for it); `None` if it never was.
    pub(crate) fn stdout_through(&self, prefix: &str, timeout: Duration) -> Option<Vec<String>> {
        let (lines, printed) = &*self.stdout;
        let guard = lines.lock().ok()?;
        let (guard, _) = printed
            .wait_timeout_while(guard, timeout, |lines| {
                !lines.iter().any(|l| l.starts_with(prefix))
            })
            .ok()?;
        guard
            .iter()
            .any(|l| l.starts_with(prefix))
            .then(|| guard.clone())
    }

    /// Whether the process is still running.
    pub(crate) fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// A POST to `/mcp` with the given headers and raw body.
    pub(crate) async fn post_raw(
        &self,
        headers: &[(&str, &str)],
        body: impl Into<reqwest::Body>,
    ) -> anyhow::Result<Reply> {
        let mut req = self.client.post(&self.url);
        let mut has_ct = false;
        let mut has_accept = false;
        for (k, v) in headers {
            has_ct |= k.eq_ignore_ascii_case("content-type");
            has_accept |= k.eq_ignore_ascii_case("accept");
            req = req.header(*k, *v);
        }
        if !has_ct {
            req = req.header("content-type", "application/json");
        }
        if !has_accept {
            req = req.header("accept", "application/json, text/event-stream");
        }
        Reply::read(req.body(body).send().await?).await
    }

    /// One stateless-era (2026-07-28) request as the holder of `token`: a
    /// single POST with the protocol headers and `_meta`, no session.
    pub(crate) async fn stateless_as(
        &self,
        token: &str,
        method: &str,
        params: Value,
    ) -> anyhow::Result<Reply> {
        self.stateless_with(&self.client, Some(token), method, params)
            .await
    }

    /// One stateless-era request through `client` (say, one holding a TLS
    /// client certificate), with `token` if given.
    pub(crate) async fn stateless_with(
        &self,
        client: &reqwest::Client,
        token: Option<&str>,
        method: &str,
        params: Value,
    ) -> anyhow::Result<Reply> {
        let mut params = params;
        if let Some(map) = params.as_object_mut() {
            map.insert(
                "_meta".into(),
                json!({
                    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                    "io.modelcontextprotocol/clientInfo": {"name": "e2e", "version": "1"},
                    "io.modelcontextprotocol/clientCapabilities": {}
                }),
            );
        }
        let name = params["name"].as_str().map(str::to_string);
        let body = json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params});
        let mut req = client
            .post(&self.url)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", method);
        if let Some(name) = name {
            req = req.header("mcp-name", name);
        }
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let res = req.json(&body).send().await?;
        Reply::read(res).await
    }

    /// Opens a session: `initialize` then `notifications/initialized`.
    pub(crate) async fn session(&self, version: &str) -> anyhow::Result<Session<'_>> {
        self.session_with(version, json!({})).await
    }

    /// Opens a session whose client declares `capabilities` (say, that it
    /// answers elicitation questions).
    pub(crate) async fn session_with(
        &self,
        version: &str,
        capabilities: Value,
    ) -> anyhow::Result<Session<'_>> {
        let init = json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {
                "protocolVersion": version,
                "capabilities": capabilities,
                "clientInfo": {"name": "e2e", "version": "1"}
            }
        });
        let reply = self.post_raw(&[], init.to_string()).await?;
        if reply.status != 200 {
            bail!("initialize failed: {} {}", reply.status, reply.text);
        }
        let id = reply
            .header("mcp-session-id")
            .context("initialize returned no Mcp-Session-Id")?;
        let negotiated = reply.json()["result"]["protocolVersion"]
            .as_str()
            .context("no protocolVersion")?
            .to_string();
        let session = Session {
            server: self,
            id,
            version: negotiated,
        };
        let ack = session
            .post(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await?;
        if ack.status != 202 {
            bail!("notifications/initialized got {}", ack.status);
        }
        Ok(session)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config_has(config: &str, needle: &str) -> bool {
    config.lines().any(|line| line.trim() == needle)
}

/// Runs `toolhost token` against a server's data dir (and, with `url`, for
/// a server at that URL rather than the one that last used the data dir).
pub(crate) fn mint_token(
    config: &Path,
    data_dir: &Path,
    subject: &str,
    scope: &str,
    url: Option<&str>,
) -> anyhow::Result<String> {
    mint_token_with(config, data_dir, subject, scope, url, &[])
}

/// [`mint_token`] with the server's environment (its state database may be
/// named there).
fn mint_token_with(
    config: &Path,
    data_dir: &Path,
    subject: &str,
    scope: &str,
    url: Option<&str>,
    env: &[(String, String)],
) -> anyhow::Result<String> {
    let mut command = Command::new(toolhost_bin());
    command
        .envs(env.iter().map(|(k, v)| (k, v)))
        .arg("token")
        .arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--sub", subject, "--scope", scope]);
    if let Some(url) = url {
        command.args(["--url", url]);
    }
    let out = command.output().context("running toolhost token")?;
    if !out.status.success() {
        bail!(
            "toolhost token failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?.trim().to_string())
}

/// An HTTPS client trusting the certificate and, with a token, sending it.
pub(crate) fn authorized_client(
    cert_path: &Path,
    token: Option<&str>,
) -> anyhow::Result<reqwest::Client> {
    Ok(client_builder(cert_path, token)?
        .timeout(Duration::from_secs(60))
        .build()?)
}

/// A client builder trusting the certificate and, with a token, sending it.
pub(crate) fn client_builder(
    cert_path: &Path,
    token: Option<&str>,
) -> anyhow::Result<reqwest::ClientBuilder> {
    let pem =
        std::fs::read(cert_path).with_context(|| format!("reading {}", cert_path.display()))?;
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(token) = token {
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {token}").parse()?,
        );
    }
    Ok(reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem)?)
        .default_headers(headers))
}

/// An open session-era session.
pub(crate) struct Session<'a> {
    pub(crate) server: &'a Server,
    pub(crate) id: String,
    pub(crate) version: String,
}

impl Session<'_> {
    pub(crate) async fn post(&self, body: Value) -> anyhow::Result<Reply> {
        self.server
            .post_raw(
                &[
                    ("mcp-session-id", &self.id),
                    ("mcp-protocol-version", &self.version),
                ],
                body.to_string(),
            )
            .await
    }

    /// Sends a message and reads the answer's events as they come, for a
    /// call that asks the client something before it ends.
    pub(crate) async fn stream(&self, body: Value) -> anyhow::Result<Events> {
        let response = self
            .server
            .client
            .post(&self.server.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", &self.id)
            .header("mcp-protocol-version", &self.version)
            .body(body.to_string())
            .send()
            .await?;
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        if !content_type.starts_with("text/event-stream") {
            bail!(
                "expected an event stream, got {} {content_type}: {}",
                response.status(),
                response.text().await?
            );
        }
        Ok(Events {
            response,
            buffer: String::new(),
        })
    }

    /// Sends a request and returns its JSON-RPC response object.
    pub(crate) async fn request(&self, method: &str, params: Value) -> anyhow::Result<Value> {
        let reply = self
            .post(json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
            .await?;
        reply.response()
    }

    /// Calls a tool and returns the `result` (a CallToolResult) or the error.
    pub(crate) async fn call(&self, tool: &str, arguments: Value) -> anyhow::Result<Value> {
        self.request("tools/call", json!({"name": tool, "arguments": arguments}))
            .await
    }
}

/// The events of a streamed answer, read one at a time.
pub(crate) struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    /// The next event's JSON-RPC message; `None` once the stream ends. Waits
    /// at most 10 s for each piece.
    pub(crate) async fn next(&mut self) -> anyhow::Result<Option<Value>> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let event: String = self.buffer.drain(..end + 2).collect();
                let data: Vec<&str> = event
                    .lines()
                    .filter_map(|l| l.strip_prefix("data: "))
                    .collect();
                if data.is_empty() {
                    continue; // a comment or a keep-alive
                }
                return Ok(Some(serde_json::from_str(&data.join("\n"))?));
            }
            let chunk =
                tokio::time::timeout(std::time::Duration::from_secs(10), self.response.chunk())
                    .await
                    .context("no event within 10 s")??;
            match chunk {
                Some(bytes) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                None => return Ok(None),
            }
        }
    }

    /// Reads on until the message that answers request `id`.
    pub(crate) async fn answer_to(&mut self, id: &Value) -> anyhow::Result<Value> {
        while let Some(message) = self.next().await? {
            if &message["id"] == id && message.get("method").is_none() {
                return Ok(message);
            }
        }
        bail!("the stream ended without an answer to {id}")
    }
}

/// A response with its body read.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) text: String,
}

impl Reply {
    pub(crate) async fn read(response: reqwest::Response) -> anyhow::Result<Reply> {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await?;
        Ok(Reply {
            status,
            headers,
            text,
        })
    }

    pub(crate) fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    /// Every JSON-RPC message in the body: one for JSON, each event for SSE.
    pub(crate) fn messages(&self) -> Vec<Value> {
        if self
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/event-stream"))
        {
            self.text
                .lines()
                .filter_map(|line| line.strip_prefix("data: "))
                .filter_map(|data| serde_json::from_str(data).ok())
                .collect()
        } else {
            vec![self.json()]
        }
    }

    /// The final JSON-RPC response (the message with an id and no method).
    pub(crate) fn response(&self) -> anyhow::Result<Value> {
        self.messages()
            .into_iter()
            .rfind(|m| {
                m.get("method").is_none() && (m.get("result").is_some() || m.get("error").is_some())
            })
            .with_context(|| {
                format!(
                    "no JSON-RPC response in {} body: {}",
                    self.status, self.text
                )
            })
    }
}

/// The `value` of the input named `name` in a server-rendered form.
pub(crate) fn form_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let rest = &html[html.find(&marker)? + marker.len()..];
    Some(rest[..rest.find('"')?].to_string())
}

/// The `name=value` part of each cookie a response sets (not deletions).
pub(crate) fn set_cookies(res: &reqwest::Response) -> Vec<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next().map(str::to_string))
        .filter(|c| !c.ends_with('='))
        .collect()
}

impl Server {
    /// Signs in on the embedded authorization server's page the way a
    /// person would: opens `authorize_url`, submits the form with `user`
    /// and `password` and consent, and returns where the browser is sent.
    pub(crate) async fn sign_in(
        &self,
        authorize_url: &str,
        user: &str,
        password: &str,
    ) -> anyhow::Result<String> {
        let http = client_builder(&self.cert_path, None)?
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()?;
        let page = http.get(authorize_url).send().await?;
        let cookies = set_cookies(&page).join("; ");
        let html = page.text().await?;
        let field =
            |name: &str| form_value(&html, name).with_context(|| format!("no {name} in {html}"));
        let form = [
            ("flow", field("flow")?),
            ("csrf", field("csrf")?),
            ("username", user.to_string()),
            ("password", password.to_string()),
            ("action", "allow".to_string()),
        ];
        let base = self.url.trim_end_matches("/mcp");
        let res = http
            .post(format!("{base}/authorize"))
            .header("cookie", cookies)
            .form(&form)
            .send()
            .await?;
        if res.status() != 302 {
            bail!("sign-in answered {}: {}", res.status(), res.text().await?);
        }
        Ok(res
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .context("no Location")?
            .to_string())
    }
}

/// Reads an HTTP/1.1 request head from a test upstream's connection:
/// the path and the headers (names lower-cased). Bodies are not read.
pub(crate) async fn read_request_head(
    stream: &mut tokio::net::TcpStream,
) -> anyhow::Result<(String, Vec<(String, String)>)> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let head_end = loop {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        anyhow::ensure!(n > 0 && buf.len() < 64 * 1024, "bad request head");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(idx) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break idx;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let path = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .unwrap_or("/")
        .to_string();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok((path, headers))
}

/// The tool names in a `tools/list` response.
pub(crate) fn tool_names(list: &Value) -> Vec<String> {
    list["result"]["tools"]
        .as_array()
        .map(|tools| {
            tools
                .iter()
                .filter_map(|t| t["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A raw TLS 1.3 connection to `server` speaking HTTP/1.1, for tests that
/// must control every byte on the wire.
pub(crate) async fn tls_stream(
    server: &Server,
) -> anyhow::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    tls_stream_alpn(server, b"http/1.1").await
}

/// A raw TLS 1.3 connection to `server` that offers only `alpn`.
pub(crate) async fn tls_stream_alpn(
    server: &Server,
    alpn: &[u8],
) -> anyhow::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    install_crypto();
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(&server.cert_path)?;
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(cert?)?;
    }
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let addr = server
        .url
        .trim_start_matches("https://")
        .trim_end_matches("/mcp")
        .to_string();
    let tcp = tokio::net::TcpStream::connect(&addr).await?;
    let name = rustls::pki_types::ServerName::try_from("localhost")?;
    Ok(
        tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
            .connect(name, tcp)
            .await?,
    )
}

/// A signing key of the embedded issuer, read from a data dir's state
/// database: what an attacker who stole the database would hold, which the
/// tests use to forge tokens the server must still refuse.
pub(crate) struct StoredKey {
    pub(crate) kid: String,
    pub(crate) active_from_ms: i64,
    /// PKCS#8 DER.
    pub(crate) der: Vec<u8>,
}

/// The signing keys in `data_dir/toolhost.db`, oldest first.
pub(crate) fn stored_keys(data_dir: &Path) -> anyhow::Result<Vec<StoredKey>> {
    use base64::Engine;
    let rows = stored_rows(
        data_dir,
        "SELECT kid, CAST(active_from_ms AS TEXT), pkcs8 FROM signing_keys ORDER BY active_from_ms",
    )?;
    rows.into_iter()
        .map(|row| match <[String; 3]>::try_from(row) {
            Ok([kid, active_from_ms, pkcs8]) => Ok(StoredKey {
                kid,
                active_from_ms: active_from_ms.parse()?,
                der: base64::engine::general_purpose::STANDARD.decode(pkcs8)?,
            }),
            Err(row) => bail!("a signing key row of {} columns", row.len()),
        })
        .collect()
}

/// The rows `sql` selects (text columns) from `data_dir/toolhost.db`, read
/// only. Blocking (on its own thread and runtime), so sync helpers can use
/// it inside tests.
pub(crate) fn stored_rows(data_dir: &Path, sql: &'static str) -> anyhow::Result<Vec<Vec<String>>> {
    use sqlx::Row;
    let url = format!(
        "sqlite://{}?mode=ro",
        data_dir.join("toolhost.db").display()
    );
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(async move {
                sqlx::any::install_default_drivers();
                let pool = sqlx::AnyPool::connect(&url).await?;
                let rows = sqlx::query(sql).fetch_all(&pool).await?;
                let texts = rows
                    .iter()
                    .map(|row| {
                        (0..row.len())
                            .map(|i| anyhow::Ok(row.try_get::<String, _>(i)?))
                            .collect::<anyhow::Result<Vec<_>>>()
                    })
                    .collect::<anyhow::Result<Vec<_>>>();
                pool.close().await;
                texts
            })
    })
    .join()
    .map_err(|_| anyhow::anyhow!("reading the state database panicked"))?
}
