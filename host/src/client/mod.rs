//! The developer CLI's client side: `toolhost login`, `tools` and `call`
//! talk to a toolhost server as a well-behaved MCP client should. Stored
//! sign-ins live in [`credentials`]; [`oauth`] signs in and renews;
//! [`retry`] decides waits. [`Remote`] makes MCP requests (the stateless
//! 2026-07-28 protocol: one POST each, no session) and applies the rules:
//!
//! - 401: renew once (refresh, rotation-aware; or the client secret again)
//!   and retry once; a second 401 means signing in again.
//! - 429: wait as `Retry-After` (or RateLimit `t=`) says, with jitter, up
//!   to a cap; say which limit was hit.
//! - Connection failures and 502/503/504: exponential backoff with full
//!   jitter, but only for requests that may run twice (listing, or calling
//!   a read-only or idempotent tool).

pub mod credentials;
pub mod oauth;
pub mod retry;
pub mod settings;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use credentials::{Credential, Store};

pub const PROTOCOL_VERSION: &str = "2026-07-28";

/// An HTTPS client trusting the Mozilla roots and, optionally, `ca` (a
/// development server's generated certificate); `timeout` bounds each request.
pub fn http_client(ca: Option<&Path>, timeout: Duration) -> anyhow::Result<reqwest::Client> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = ca {
        let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            roots.add(cert?)?;
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .connect_timeout(Duration::from_secs(10).min(timeout))
        .timeout(timeout)
        .build()?)
}

/// A signed-in server.
pub struct Remote {
    http: reqwest::Client,
    url: String,
    store: Store,
    credential: Credential,
    verbose: bool,
    next_id: u64,
}

/// What a request may be retried for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// It may run twice (a listing, a read-only or idempotent tool).
    Safe,
    /// It must not run twice once it may have reached the server.
    Once,
}

impl Remote {
    pub fn connect(
        url: &str,
        http: reqwest::Client,
        store: Store,
        verbose: bool,
    ) -> anyhow::Result<Remote> {
        let credential = store
            .get(url)?
            .with_context(|| format!("not signed in to {url}; run `toolhost login {url}`"))?;
        Ok(Remote {
            http,
            url: url.to_string(),
            store,
            credential,
            verbose,
            next_id: 1,
        })
    }

    /// Sends one MCP request and returns its `result`, applying the retry rules.
    pub async fn request(
        &mut self,
        method: &str,
        params: Value,
        repeat: Repeat,
    ) -> anyhow::Result<Value> {
        let mut renewed = false;
        let mut rate_limited = 0;
        let mut attempts = 0;
        let started = Instant::now();
        loop {
            attempts += 1;
            let id = self.next_id;
            self.next_id += 1;
            let sent = self.send(method, &params, id).await;
            let response = match sent {
                Ok(response) => response,
                Err(err) => {
                    // A failure before any response: connect errors cannot
                    // have reached the server; others may have.
                    let retry = repeat == Repeat::Safe || err.is_connect();
                    if retry
                        && attempts < retry::MAX_TRANSIENT_ATTEMPTS
                        && started.elapsed() < retry::MAX_TRANSIENT_WAIT
                    {
                        let wait = retry::backoff(attempts, retry::random());
                        eprintln!(
                            "toolhost: {}; retrying in {:.1} s",
                            describe(&err),
                            wait.as_secs_f64()
                        );
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    return Err(
                        anyhow::Error::new(err).context(format!("{method} to {}", self.url))
                    );
                }
            };
            let status = response.status().as_u16();
            if self.verbose {
                eprintln!("< {status} ({method})");
            }
            match status {
                401 if !renewed => {
                    renewed = true;
                    self.renew().await?;
                    continue;
                }
                401 => bail!(
                    "{} refused the renewed token; run `toolhost login {}`",
                    self.url,
                    self.url
                ),
                429 => {
                    let wait = retry::rate_limit_wait(response.headers(), SystemTime::now());
                    let body: Value = response.json().await.unwrap_or(Value::Null);
                    let limit = body["error"]["data"]["limit"]
                        .as_str()
                        .unwrap_or("rate")
                        .to_string();
                    rate_limited += 1;
                    if rate_limited > retry::MAX_RATE_LIMIT_RETRIES
                        || wait > retry::MAX_RATE_LIMIT_WAIT
                    {
                        bail!(
                            "rate limited by the {limit:?} limit; try again in {} s",
                            wait.as_secs().max(1)
                        );
                    }
                    let wait = retry::with_jitter(wait, retry::random());
                    eprintln!(
                        "toolhost: rate limited by the {limit:?} limit; waiting {:.1} s",
                        wait.as_secs_f64()
                    );
                    tokio::time::sleep(wait).await;
                    continue;
                }
                s if retry::is_transient(s)
                    && repeat == Repeat::Safe
                    && attempts < retry::MAX_TRANSIENT_ATTEMPTS
                    && started.elapsed() < retry::MAX_TRANSIENT_WAIT =>
                {
                    let wait = retry::backoff(attempts, retry::random());
                    eprintln!(
                        "toolhost: the server answered {s}; retrying in {:.1} s",
                        wait.as_secs_f64()
                    );
                    tokio::time::sleep(wait).await;
                    continue;
                }
                _ => {}
            }
            let message = read_answer(response, id).await?;
            if let Some(error) = message.get("error") {
                bail!(
                    "{method} failed: {} (code {})",
                    error["message"].as_str().unwrap_or("error"),
                    error["code"]
                );
            }
            return message
                .get("result")
                .cloned()
                .with_context(|| format!("{method}: the answer has no result: {message}"));
        }
    }

    async fn send(
        &self,
        method: &str,
        params: &Value,
        id: u64,
    ) -> Result<reqwest::Response, reqwest::Error> {
        let mut params = params.clone();
        if let Some(map) = params.as_object_mut() {
            let mut meta = json!({
                "io.modelcontextprotocol/protocolVersion": PROTOCOL_VERSION,
                "io.modelcontextprotocol/clientInfo": {"name": "toolhost-cli", "version": env!("CARGO_PKG_VERSION")},
                "io.modelcontextprotocol/clientCapabilities": {},
            });
            if method == "tools/call" {
                meta["progressToken"] = json!(format!("cli-{id}"));
            }
            map.insert("_meta".into(), meta);
        }
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        if self.verbose {
            eprintln!(
                "> POST {} {method} (Authorization: Bearer …redacted)",
                self.url
            );
        }
        let mut request = self
            .http
            .post(&self.url)
            .bearer_auth(&self.credential.access_token)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", PROTOCOL_VERSION)
            .header("mcp-method", method);
        if let Some(name) = params["name"].as_str().filter(|_| method == "tools/call") {
            request = request.header("mcp-name", name);
        }
        request.json(&body).send().await
    }

    async fn renew(&mut self) -> anyhow::Result<()> {
        let renewed = oauth::renew(&self.http, &self.credential, &self.url)
            .await
            .with_context(|| {
                format!(
                    "the sign-in to {} expired; run `toolhost login {}`",
                    self.url, self.url
                )
            })?;
        self.store.put(&self.url, renewed.clone())?;
        self.credential = renewed;
        if self.verbose {
            eprintln!("toolhost: renewed the access token");
        }
        Ok(())
    }
}

/// The JSON-RPC response to request `id`: the body, or the last message of
/// an event stream, read as it arrives so progress shows live on stderr (a
/// bar on a terminal, a line per update otherwise).
async fn read_answer(mut response: reqwest::Response, id: u64) -> anyhow::Result<Value> {
    let is_stream = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let status = response.status();
    if !is_stream {
        let text = response.text().await?;
        return serde_json::from_str(&text).with_context(|| format!("HTTP {status}: {text}"));
    }
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut drew_bar = false;
    let mut pending: Vec<u8> = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let Some(data) = line.trim_end().strip_prefix("data:") else {
                continue;
            };
            let Ok(message) = serde_json::from_str::<Value>(data.trim()) else {
                continue;
            };
            if message["method"] == "notifications/progress" {
                let p = &message["params"];
                let text = progress_line(
                    p["progress"].as_f64().unwrap_or(0.0),
                    p["total"].as_f64(),
                    p["message"].as_str().unwrap_or_default(),
                );
                if terminal {
                    eprint!("\r\x1b[2K{text}");
                    drew_bar = true;
                } else {
                    eprintln!("{text}");
                }
            } else if message["id"] == id {
                if drew_bar {
                    eprintln!();
                }
                return Ok(message);
            }
        }
    }
    bail!("the event stream ended without an answer")
}

/// `[#########-----------]  45/100  message`, or a plain count without a total.
fn progress_line(progress: f64, total: Option<f64>, message: &str) -> String {
    const WIDTH: usize = 20;
    let text = match total.filter(|t| *t > 0.0) {
        Some(total) => {
            let filled = ((progress / total).clamp(0.0, 1.0) * WIDTH as f64).round() as usize;
            format!(
                "[{}{}] {progress}/{total}",
                "#".repeat(filled),
                "-".repeat(WIDTH - filled)
            )
        }
        None => format!("progress {progress}"),
    };
    if message.is_empty() {
        text
    } else {
        format!("{text}  {message}")
    }
}

fn describe(err: &reqwest::Error) -> String {
    if err.is_connect() {
        "could not connect".into()
    } else if err.is_timeout() {
        "the request timed out".into()
    } else {
        "the connection failed".into()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn progress_is_a_bar_when_the_total_is_known() {
        assert_eq!(
            super::progress_line(50.0, Some(100.0), "half"),
            "[##########----------] 50/100  half"
        );
        assert_eq!(super::progress_line(3.0, None, ""), "progress 3");
        assert_eq!(
            super::progress_line(500.0, Some(100.0), ""),
            "[####################] 500/100"
        );
    }
}
