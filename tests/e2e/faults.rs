//! The developer CLI under failure, through a fault-injecting proxy: a TLS
//! front (with the server's own certificate) that, on cue, answers 429,
//! 401 or 503 itself, or drops the connection after reading the request,
//! and otherwise passes the request to the real server. It counts what it
//! saw, so the tests assert exactly how many times the client retried.

use std::collections::VecDeque;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::harness::{Server, Setup, scratch_dir, toolhost_bin};

/// What the proxy does with the next request for a method.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// 429 with `Retry-After: N`.
    RateLimited(u64),
    /// 401 `invalid_token`, as for an expired token.
    Expired,
    /// 503.
    Unavailable,
    /// Close the connection without answering.
    Drop,
    /// Read the request and never answer (the connection stays open).
    Stall,
}

#[derive(Default)]
struct Script {
    /// Faults to inject, in order, for requests whose `Mcp-Method` matches.
    faults: Vec<(String, VecDeque<Fault>)>,
    /// Every `Mcp-Method` seen, in order, with whether it was faulted.
    seen: Vec<(String, bool)>,
}

struct Proxy {
    url: String,
    script: Arc<Mutex<Script>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    /// Serves on `listener` in front of `server`, whose public URL is the
    /// proxy's (so the tokens clients get through it name it as audience).
    async fn start(listener: TcpListener, server: &Server) -> anyhow::Result<Proxy> {
        let tls = server_tls(&server.data_dir)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let url = format!("https://127.0.0.1:{}/mcp", listener.local_addr()?.port());
        let upstream = server.url.clone();
        let forward = crate::harness::client_builder(&server.cert_path, None)?.build()?;
        let script = Arc::new(Mutex::new(Script::default()));
        let shared = script.clone();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, forward, upstream, script) = (
                    acceptor.clone(),
                    forward.clone(),
                    upstream.clone(),
                    shared.clone(),
                );
                tokio::spawn(async move {
                    if let Ok(stream) = acceptor.accept(tcp).await {
                        let _ = serve(stream, &forward, &upstream, &script).await;
                    }
                });
            }
        });
        Ok(Proxy { url, script, task })
    }

    fn inject(&self, method: &str, faults: &[Fault]) {
        if let Ok(mut script) = self.script.lock() {
            script
                .faults
                .push((method.to_string(), faults.iter().copied().collect()));
        }
    }

    /// How many requests for `method` arrived, faulted or not.
    fn count(&self, method: &str) -> usize {
        self.script
            .lock()
            .map(|s| s.seen.iter().filter(|(m, _)| m == method).count())
            .unwrap_or(0)
    }
}

fn server_tls(data_dir: &Path) -> anyhow::Result<rustls::ServerConfig> {
    let cert = std::fs::read(data_dir.join("tls/cert.pem"))?;
    let key = std::fs::read(data_dir.join("tls/key.pem"))?;
    let certs = rustls_pemfile::certs(&mut cert.as_slice()).collect::<Result<Vec<_>, _>>()?;
    let key = rustls_pemfile::private_key(&mut key.as_slice())?.context("no key")?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// One HTTP/1.1 exchange (the proxy closes every connection after it).
async fn serve(
    mut stream: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    forward: &reqwest::Client,
    upstream: &str,
    script: &Mutex<Script>,
) -> anyhow::Result<()> {
    let mut buf = Vec::new();
    let head_end = loop {
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await?;
        anyhow::ensure!(n > 0, "closed");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_string();
    let mut parts = request_line.split(' ');
    let (verb, path) = (
        parts.next().unwrap_or("GET").to_string(),
        parts.next().unwrap_or("/").to_string(),
    );
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let length: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await?;
        anyhow::ensure!(n > 0, "closed mid-body");
        body.extend_from_slice(&chunk[..n]);
    }
    let method = header("mcp-method").unwrap_or_else(|| format!("{verb} {path}"));
    let fault = {
        let mut script = script.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        let fault = script
            .faults
            .iter_mut()
            .find(|(m, queue)| *m == method && !queue.is_empty())
            .and_then(|(_, queue)| queue.pop_front());
        script.seen.push((method.clone(), fault.is_some()));
        fault
    };
    let (status, extra, answer) = match fault {
        Some(Fault::Drop) => return Ok(()),
        Some(Fault::Stall) => {
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            return Ok(());
        }
        Some(Fault::RateLimited(secs)) => (
            "429 Too Many Requests".to_string(),
            format!("retry-after: {secs}\r\n"),
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32029,"message":"rate limited","data":{"limit":"calls"}}}"#.to_string(),
        ),
        Some(Fault::Expired) => (
            "401 Unauthorized".to_string(),
            "www-authenticate: Bearer error=\"invalid_token\"\r\n".to_string(),
            r#"{"error":"invalid_token","error_description":"the token has expired"}"#.to_string(),
        ),
        Some(Fault::Unavailable) => ("503 Service Unavailable".to_string(), String::new(), "{}".to_string()),
        None => {
            // Pass through: same path on the real server.
            let target = format!("{}{}", upstream.trim_end_matches("/mcp"), path);
            let mut request = forward.request(verb.parse()?, &target).body(body);
            for (k, v) in &headers {
                if !matches!(k.as_str(), "host" | "content-length" | "connection") {
                    request = request.header(k.as_str(), v.as_str());
                }
            }
            let response = request.send().await?;
            let status = format!("{} {}", response.status().as_u16(), response.status().canonical_reason().unwrap_or(""));
            let mut extra = String::new();
            for name in ["content-type", "www-authenticate", "retry-after", "ratelimit", "cache-control"] {
                if let Some(v) = response.headers().get(name).and_then(|v| v.to_str().ok()) {
                    extra.push_str(&format!("{name}: {v}\r\n"));
                }
            }
            (status, extra, response.text().await?)
        }
    };
    let has_type = extra.contains("content-type");
    let response = format!(
        "HTTP/1.1 {status}\r\n{extra}{}content-length: {}\r\nconnection: close\r\n\r\n{answer}",
        if has_type {
            ""
        } else {
            "content-type: application/json\r\n"
        },
        answer.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await?;
    Ok(())
}

struct Cli {
    credentials: std::path::PathBuf,
    ca: std::path::PathBuf,
    url: String,
}

impl Cli {
    /// Signs in through the proxy as a service.
    async fn login(server: &Server, proxy: &Proxy) -> anyhow::Result<Cli> {
        let (id, secret) = server.add_client("faults", "read write")?;
        let cli = Cli {
            credentials: scratch_dir("faults").join("credentials.json"),
            ca: server.cert_path.clone(),
            url: proxy.url.clone(),
        };
        let mut login = cli.command(&["login", &proxy.url, "--client-credentials"]);
        login
            .env("TOOLHOST_CLIENT_ID", id)
            .env("TOOLHOST_CLIENT_SECRET", secret);
        // Off the runtime thread: the proxy serves on it.
        let out = tokio::task::spawn_blocking(move || login.output()).await??;
        anyhow::ensure!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(cli)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(toolhost_bin());
        command
            .args(args)
            .env("TOOLHOST_CREDENTIALS", &self.credentials)
            .env("TOOLHOST_CA_CERT", &self.ca)
            .env("TOOLHOST_URL", &self.url)
            .stdin(Stdio::null());
        command
    }

    async fn run(&self, args: &[&str]) -> anyhow::Result<(bool, String, String)> {
        let mut command = self.command(args);
        let out = tokio::task::spawn_blocking(move || command.output()).await??;
        Ok((
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }
}

async fn setup() -> anyhow::Result<(Server, Proxy, Cli)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let server = Setup::new()
        .bundled("devtools")
        .fixture("hostile")
        .config(&format!(
            "[server]\npublic_url = \"https://127.0.0.1:{port}\"\n[plugins.prefixes]\nhostile = \"h_\""
        ))
        .start()
        .await?;
    let proxy = Proxy::start(listener, &server).await?;
    let cli = Cli::login(&server, &proxy).await?;
    Ok((server, proxy, cli))
}

#[tokio::test]
async fn rate_limits_are_waited_out_then_reported() -> anyhow::Result<()> {
    let (_server, proxy, cli) = setup().await?;
    proxy.inject(
        "tools/list",
        &[Fault::RateLimited(1), Fault::RateLimited(1)],
    );
    let (ok, stdout, stderr) = cli.run(&["tools"]).await?;
    assert!(ok, "{stderr}");
    assert!(stdout.contains("hash"), "{stdout}");
    assert_eq!(proxy.count("tools/list"), 3, "two 429s, then the answer");
    assert_eq!(
        stderr
            .matches("rate limited by the \"calls\" limit; waiting 1.")
            .count(),
        2,
        "{stderr}"
    );
    // Past the cap (three retries), it gives up and says when to return.
    proxy.inject("tools/list", &[Fault::RateLimited(1); 4]);
    let before = proxy.count("tools/list");
    let (ok, _, stderr) = cli.run(&["tools"]).await?;
    assert!(!ok);
    assert_eq!(
        proxy.count("tools/list") - before,
        4,
        "the first try and three retries"
    );
    assert!(stderr.contains("try again in 1 s"), "{stderr}");
    Ok(())
}

#[tokio::test]
async fn an_expired_token_is_renewed_once() -> anyhow::Result<()> {
    let (_server, proxy, cli) = setup().await?;
    let before: serde_json::Value = serde_json::from_slice(&std::fs::read(&cli.credentials)?)?;
    proxy.inject("tools/list", &[Fault::Expired]);
    let (ok, _, stderr) = cli.run(&["tools"]).await?;
    assert!(ok, "{stderr}");
    assert_eq!(proxy.count("tools/list"), 2, "401, renew, one retry");
    let after: serde_json::Value = serde_json::from_slice(&std::fs::read(&cli.credentials)?)?;
    assert_ne!(
        before["servers"][&cli.url]["access_token"], after["servers"][&cli.url]["access_token"],
        "the renewed token was stored"
    );
    // A second 401 after renewing: stop and say to sign in again.
    proxy.inject("tools/list", &[Fault::Expired, Fault::Expired]);
    let before = proxy.count("tools/list");
    let (ok, _, stderr) = cli.run(&["tools"]).await?;
    assert!(!ok);
    assert_eq!(proxy.count("tools/list") - before, 2);
    assert!(stderr.contains("toolhost login"), "{stderr}");
    Ok(())
}

#[tokio::test]
async fn only_calls_that_may_run_twice_are_retried() -> anyhow::Result<()> {
    let (_server, proxy, cli) = setup().await?;
    // A listing survives two 503s and a dropped connection.
    proxy.inject(
        "tools/list",
        &[Fault::Unavailable, Fault::Drop, Fault::Unavailable],
    );
    let (ok, _, stderr) = cli.run(&["tools"]).await?;
    assert!(ok, "{stderr}");
    assert_eq!(proxy.count("tools/list"), 4);
    assert!(stderr.contains("retrying in"), "{stderr}");
    // A read-only tool is retried after a dropped connection.
    proxy.inject("tools/call", &[Fault::Drop]);
    let (ok, stdout, stderr) = cli.run(&["call", "uuid"]).await?;
    assert!(ok, "{stderr}");
    assert!(!stdout.trim().is_empty());
    assert_eq!(proxy.count("tools/call"), 2);
    // A tool that writes is not: the request may have run.
    proxy.inject("tools/call", &[Fault::Drop]);
    let before = proxy.count("tools/call");
    let (ok, _, stderr) = cli.run(&["call", "h_write"]).await?;
    assert!(!ok, "a dropped write must fail, not repeat");
    assert_eq!(proxy.count("tools/call") - before, 1, "{stderr}");
    proxy.inject("tools/call", &[Fault::Unavailable]);
    let before = proxy.count("tools/call");
    let (ok, _, _) = cli.run(&["call", "h_write"]).await?;
    assert!(!ok);
    assert_eq!(
        proxy.count("tools/call") - before,
        1,
        "no retry of a write on 503"
    );
    // Without faults the write runs once and succeeds.
    let (ok, stdout, stderr) = cli.run(&["call", "h_write"]).await?;
    assert!(ok, "{stderr}");
    assert!(stdout.contains("written"), "{stdout}");
    Ok(())
}

#[tokio::test]
async fn stalled_requests_time_out_with_settings_from_the_config_file() -> anyhow::Result<()> {
    let (_server, proxy, cli) = setup().await?;
    // The URL and a 1 s timeout come from the CLI's config file this time.
    let file = scratch_dir("cli-config").join("cli.toml");
    std::fs::write(
        &file,
        format!("url = \"{}\"\ntimeout_secs = 1\njson = true\n", proxy.url),
    )?;
    let run = |args: &'static [&'static str]| {
        let mut command = cli.command(args);
        command
            .env_remove("TOOLHOST_URL")
            .env("TOOLHOST_CLI_CONFIG", &file);
        async move {
            let out = tokio::task::spawn_blocking(move || command.output()).await??;
            anyhow::Ok((
                out.status.success(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
            ))
        }
    };
    proxy.inject("tools/list", &[Fault::Stall]);
    let started = std::time::Instant::now();
    let (ok, stderr, stdout) = run(&["tools"]).await?;
    assert!(ok, "{stderr}");
    let listed: serde_json::Value = serde_json::from_str(&stdout)
        .with_context(|| format!("`json = true` in cli.toml prints JSON: {stdout}"))?;
    assert!(listed.as_array().is_some_and(|tools| !tools.is_empty()));
    assert_eq!(
        proxy.count("tools/list"),
        2,
        "timed out once, then answered"
    );
    assert!(stderr.contains("timed out; retrying"), "{stderr}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    // A writing tool that stalls is reported, not repeated.
    proxy.inject("tools/call", &[Fault::Stall]);
    let (ok, stderr, _) = run(&["call", "h_write"]).await?;
    assert!(!ok);
    assert_eq!(proxy.count("tools/call"), 1, "{stderr}");
    Ok(())
}
