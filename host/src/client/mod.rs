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

pub mod clock;
pub mod credentials;
pub mod oauth;
pub mod retry;
pub mod settings;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use clock::{Clock, SystemClock};
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
    clock: Arc<dyn Clock>,
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
            clock: Arc::new(SystemClock),
        })
    }

    /// Waits on `clock` instead of the system's (tests).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Remote {
        self.clock = clock;
        self
    }

    /// Time spent on this request so far, by the client's clock.
    fn since(&self, started: std::time::SystemTime) -> Duration {
        self.clock
            .now()
            .duration_since(started)
            .unwrap_or(Duration::ZERO)
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
        let started = self.clock.now();
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
                        && self.since(started) < retry::MAX_TRANSIENT_WAIT
                    {
                        let wait = retry::backoff(attempts, retry::random());
                        eprintln!(
                            "toolhost: {}; retrying in {:.1} s",
                            describe(&err),
                            wait.as_secs_f64()
                        );
                        self.clock.sleep(wait).await;
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
                    let wait = retry::rate_limit_wait(response.headers(), self.clock.now());
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
                    self.clock.sleep(wait).await;
                    continue;
                }
                s if retry::is_transient(s)
                    && repeat == Repeat::Safe
                    && attempts < retry::MAX_TRANSIENT_ATTEMPTS
                    && self.since(started) < retry::MAX_TRANSIENT_WAIT =>
                {
                    let wait = retry::backoff(attempts, retry::random());
                    eprintln!(
                        "toolhost: the server answered {s}; retrying in {:.1} s",
                        wait.as_secs_f64()
                    );
                    self.clock.sleep(wait).await;
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

    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, SystemTime};

    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    use serde_json::{Value, json};

    use super::clock::{Clock, FakeClock};
    use super::credentials::{Credential, Store};
    use super::{Remote, Repeat};

    /// What the scripted server answers next; when the script runs out it
    /// answers the request properly.
    type Script = Arc<Mutex<(VecDeque<(u16, Vec<(&'static str, String)>)>, usize)>>;

    async fn answer(
        State(script): State<Script>,
        body: axum::Json<Value>,
    ) -> (StatusCode, HeaderMap, String) {
        let next = {
            let mut script = script.lock().expect("script");
            script.1 += 1;
            script.0.pop_front()
        };
        let mut headers = HeaderMap::new();
        match next {
            Some((status, pairs)) => {
                for (name, value) in pairs {
                    headers.insert(name, value.parse().expect("header value"));
                }
                let body = json!({"jsonrpc": "2.0", "id": body["id"], "error": {
                    "code": -32000, "message": "scripted", "data": {"limit": "calls"}}});
                (
                    StatusCode::from_u16(status).expect("status"),
                    headers,
                    body.to_string(),
                )
            }
            None => {
                headers.insert("content-type", "application/json".parse().expect("type"));
                let body = json!({"jsonrpc": "2.0", "id": body["id"], "result": {"tools": []}});
                (StatusCode::OK, headers, body.to_string())
            }
        }
    }

    /// A plain-HTTP MCP endpoint following `script`, and a client signed in
    /// to it that waits on a fake clock.
    async fn scripted(
        script: Vec<(u16, Vec<(&'static str, String)>)>,
    ) -> (Remote, Script, FakeClock) {
        let state: Script = Arc::new(Mutex::new((script.into(), 0)));
        let app = axum::Router::new()
            .route("/mcp", axum::routing::post(answer))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/mcp", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        let path = std::env::temp_dir().join(format!(
            "toolhost-client-{}-{}.json",
            std::process::id(),
            super::retry::random()
        ));
        let store = Store::at(&path);
        store
            .put(
                &url,
                Credential {
                    token_endpoint: format!("{url}/token"),
                    revocation_endpoint: None,
                    client_id: "test".into(),
                    client_secret: None,
                    access_token: "token".into(),
                    refresh_token: None,
                    expires_at: u64::MAX,
                    scope: "read".into(),
                },
            )
            .expect("credentials");
        let clock = FakeClock::starting_at(SystemTime::UNIX_EPOCH + Duration::from_secs(1 << 31));
        let http = super::http_client(None, Duration::from_secs(5)).expect("client");
        let remote = Remote::connect(&url, http, store, false)
            .expect("signed in")
            .with_clock(Arc::new(clock.clone()));
        (remote, state, clock)
    }

    fn requests(script: &Script) -> usize {
        script.lock().expect("script").1
    }

    fn limited(header: &'static str, value: String) -> (u16, Vec<(&'static str, String)>) {
        (429, vec![(header, value)])
    }

    #[tokio::test]
    async fn a_long_retry_after_is_waited_out_exactly() {
        let (mut remote, script, clock) = scripted(vec![limited("retry-after", "30".into())]).await;
        let started = clock.now();
        let result = remote.request("tools/list", json!({}), Repeat::Safe).await;
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(requests(&script), 2);
        let sleeps = clock.sleeps();
        assert_eq!(sleeps.len(), 1);
        // 30 s plus at most a tenth of it (and 100 ms) of jitter.
        assert!(sleeps[0] >= Duration::from_secs(30), "{sleeps:?}");
        assert!(sleeps[0] < Duration::from_millis(33_100), "{sleeps:?}");
        assert_eq!(clock.now(), started + sleeps[0]);
    }

    #[tokio::test]
    async fn a_retry_after_date_and_a_ratelimit_reset_are_waited_out() {
        let (mut remote, script, clock) = scripted(vec![]).await;
        let at = clock.now() + Duration::from_secs(45);
        script.lock().expect("script").0.extend([
            limited("retry-after", httpdate::fmt_http_date(at)),
            limited("ratelimit", "\"calls\";r=0;t=12".into()),
        ]);
        let result = remote.request("tools/list", json!({}), Repeat::Safe).await;
        assert!(result.is_ok(), "{result:?}");
        let sleeps = clock.sleeps();
        assert_eq!(sleeps.len(), 2, "{sleeps:?}");
        assert!(
            (45_000..49_600).contains(&sleeps[0].as_millis()),
            "{sleeps:?}"
        );
        assert!(
            (12_000..13_300).contains(&sleeps[1].as_millis()),
            "{sleeps:?}"
        );
        assert_eq!(requests(&script), 3);
    }

    #[tokio::test]
    async fn a_wait_past_the_cap_is_reported_not_slept() {
        let (mut remote, script, clock) =
            scripted(vec![limited("retry-after", "3600".into())]).await;
        let err = remote
            .request("tools/list", json!({}), Repeat::Safe)
            .await
            .expect_err("an hour is too long to wait");
        assert!(
            format!("{err:#}").contains("\"calls\" limit; try again in 3600 s"),
            "{err:#}"
        );
        assert!(clock.sleeps().is_empty());
        assert_eq!(requests(&script), 1);
    }

    #[tokio::test]
    async fn rate_limits_are_retried_at_most_three_times() {
        let (mut remote, script, clock) =
            scripted(vec![limited("retry-after", "2".into()); 5]).await;
        assert!(
            remote
                .request("tools/list", json!({}), Repeat::Safe)
                .await
                .is_err()
        );
        assert_eq!(requests(&script), 4);
        assert_eq!(clock.sleeps().len(), 3);
    }

    #[tokio::test]
    async fn transient_failures_back_off_with_full_jitter_and_a_cap() {
        let (mut remote, script, clock) =
            scripted(vec![(503, vec![]), (502, vec![]), (504, vec![])]).await;
        let result = remote.request("tools/list", json!({}), Repeat::Safe).await;
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(requests(&script), 4);
        let sleeps = clock.sleeps();
        assert_eq!(sleeps.len(), 3);
        // Ceilings 500 ms, 1 s, 2 s: 250 ms doubled per attempt.
        for (sleep, ceiling) in sleeps.iter().zip([500, 1_000, 2_000]) {
            assert!(sleep.as_millis() <= ceiling, "{sleeps:?}");
        }
        // Four attempts in all, then the failure is reported.
        let (mut remote, script, clock) = scripted(vec![(503, vec![]); 6]).await;
        assert!(
            remote
                .request("tools/list", json!({}), Repeat::Safe)
                .await
                .is_err()
        );
        assert_eq!((requests(&script), clock.sleeps().len()), (4, 3));
    }

    #[tokio::test]
    async fn a_request_that_must_run_once_is_not_repeated() {
        let (mut remote, script, clock) = scripted(vec![(503, vec![])]).await;
        assert!(
            remote
                .request("tools/call", json!({"name": "write"}), Repeat::Once)
                .await
                .is_err()
        );
        assert_eq!(requests(&script), 1);
        assert!(clock.sleeps().is_empty());
    }
}
