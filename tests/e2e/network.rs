//! Plugins' outbound HTTP: only what the sidecar allows gets out, private
//! addresses need an explicit grant (checked after resolution), the host adds
//! credentials the plugin never sees, and the limits stop with clear errors.
//!
//! Every request here targets an upstream stand-in on 127.0.0.1 (or
//! `localhost`); 169.254.169.254 appears only to prove it is refused before
//! any connection is attempted.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::harness::{Server, Session, Setup, scratch_dir};

/// One request the stand-in received: its path and headers (lowercase names).
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    headers: Vec<(String, String)>,
}

impl Seen {
    fn header(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// A plain-HTTP upstream on 127.0.0.1 that records what it receives.
/// `/big?n=N` streams N bytes chunked, `/big-cl?n=N` sends them with a
/// Content-Length, `/slow` answers after 10 s, anything else says hello.
struct Upstream {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Upstream {
    async fn start() -> anyhow::Result<Upstream> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let recorder = seen.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let recorder = recorder.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, recorder).await;
                });
            }
        });
        Ok(Upstream { port, seen, task })
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

async fn serve(mut stream: TcpStream, recorder: Arc<Mutex<Vec<Seen>>>) -> anyhow::Result<()> {
    let (path, headers) = crate::harness::read_request_head(&mut stream).await?;
    if let Ok(mut seen) = recorder.lock() {
        seen.push(Seen {
            path: path.clone(),
            headers,
        });
    }
    let size = |p: &str| {
        p.split_once("n=")
            .and_then(|(_, n)| n.parse::<usize>().ok())
            .unwrap_or(0)
    };
    if path.starts_with("/big-cl") {
        let body = "x".repeat(size(&path));
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body.as_bytes()).await?;
    } else if path.starts_with("/big") {
        stream
            .write_all(
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
            )
            .await?;
        let mut left = size(&path);
        while left > 0 {
            let n = left.min(1024);
            let chunk = format!("{n:x}\r\n{}\r\n", "x".repeat(n));
            stream.write_all(chunk.as_bytes()).await?;
            left -= n;
        }
        stream.write_all(b"0\r\n\r\n").await?;
    } else {
        if path.starts_with("/slow") {
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
        let body = "hello from upstream";
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nx-upstream: stand-in\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body.as_bytes()).await?;
    }
    stream.shutdown().await?;
    Ok(())
}

/// Calls the fixture's `fetch` tool and returns its JSON report.
async fn fetch(session: &Session<'_>, arguments: Value) -> anyhow::Result<Value> {
    let res = session.call("fetch", arguments).await?;
    let text = res["result"]["content"][0]["text"]
        .as_str()
        .with_context(|| format!("fetch returned no text: {res}"))?;
    serde_json::from_str(text).with_context(|| format!("fetch report is not JSON: {text}"))
}

fn error_of(report: &Value) -> &str {
    report["error"].as_str().unwrap_or_default()
}

/// Reloads that brought in a new version of `fetch`, counted once the new
/// set serves (the server logs "plugins reloaded" after the swap).
fn loads_of_fetch(server: &Server) -> usize {
    server
        .stderr()
        .lines()
        .filter(|l| l.contains("plugins reloaded") && l.contains("fetch"))
        .count()
}

/// Deploys `fetch.toml` the way the README says (write beside, rename into
/// place) and waits until the plugin has been reloaded with it.
async fn deploy_sidecar(server: &Server, toml: &str) -> anyhow::Result<()> {
    let before = loads_of_fetch(server);
    let staging = server.plugins_dir.join(".fetch.toml.tmp");
    std::fs::write(&staging, toml)?;
    std::fs::rename(&staging, server.plugins_dir.join("fetch.toml"))?;
    let started = Instant::now();
    while loads_of_fetch(server) <= before {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(15),
            "sidecar not applied; stderr:\n{}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

async fn wait_for_log(server: &Server, needle: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    while !server.stderr().contains(needle) {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(15),
            "log never showed {needle:?}; stderr:\n{}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Loopback for upstreams on `localhost`, which resolves to both families.
const LOOPBACK: &str = r#"allow_private = ["127.0.0.0/8", "::1/128"]"#;

#[tokio::test]
async fn no_sidecar_means_no_network() -> anyhow::Result<()> {
    let upstream = Upstream::start().await?;
    let server = Setup::new().fixture("fetch").start().await?;
    let session = server.session("2025-11-25").await?;
    for url in [
        format!("http://127.0.0.1:{}/", upstream.port),
        format!("http://localhost:{}/", upstream.port),
    ] {
        let report = fetch(&session, json!({ "url": url })).await?;
        assert!(
            error_of(&report).contains("HttpRequestDenied"),
            "{url}: {report}"
        );
    }
    assert!(upstream.seen().is_empty(), "{:?}", upstream.seen());
    let log = server.stderr();
    assert!(
        log.contains("the plugin has no [network] grant") && log.contains("\"plugin\":\"fetch\""),
        "{log}"
    );
    Ok(())
}

#[tokio::test]
async fn only_allowed_destinations_are_reached() -> anyhow::Result<()> {
    let allowed = Upstream::start().await?;
    let other = Upstream::start().await?;
    let server = Setup::new().fixture("fetch").start().await?;
    let session = server.session("2025-11-25").await?;
    let a = allowed.port;
    deploy_sidecar(
        &server,
        &format!(
            "[network]\nallow = [\"http://localhost:{a}\", \"http://127.0.0.1:{a}\"]\n{LOOPBACK}\n"
        ),
    )
    .await?;

    let report = fetch(
        &session,
        json!({ "url": format!("http://localhost:{a}/hello") }),
    )
    .await?;
    assert_eq!(report["status"], 200, "{report}");
    assert_eq!(report["body"], "hello from upstream", "{report}");
    assert_eq!(report["headers"]["x-upstream"], "stand-in", "{report}");
    let report = fetch(&session, json!({ "url": format!("http://LocalHost:{a}/") })).await?;
    assert_eq!(report["status"], 200, "{report}");
    let report = fetch(&session, json!({ "url": format!("http://127.0.0.1:{a}/") })).await?;
    assert_eq!(report["status"], 200, "{report}");
    assert_eq!(allowed.seen().len(), 3);
    assert_eq!(allowed.seen()[0].path, "/hello");

    for url in [
        // Another port on an allowed host.
        format!("http://localhost:{}/", other.port),
        // HTTPS was not granted for this host and port.
        format!("https://localhost:{a}/"),
        // An unlisted name (refused before any lookup).
        format!("http://unlisted.localhost:{a}/"),
    ] {
        let report = fetch(&session, json!({ "url": url })).await?;
        assert!(
            error_of(&report).contains("HttpRequestDenied"),
            "{url}: {report}"
        );
    }
    assert!(other.seen().is_empty());
    assert_eq!(allowed.seen().len(), 3);
    let log = server.stderr();
    assert!(
        log.contains(&format!("http://localhost:{}", other.port))
            && log.contains("not in the plugin's [network] allow list"),
        "{log}"
    );
    Ok(())
}

#[tokio::test]
async fn https_upstreams_must_present_a_trusted_certificate() -> anyhow::Result<()> {
    // The toolhost server itself is an HTTPS upstream on loopback with a
    // self-signed certificate that no public root vouches for.
    let server = Setup::new().fixture("fetch").start().await?;
    let session = server.session("2025-11-25").await?;
    let port = server
        .url
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split('/').next())
        .context("server port")?
        .to_string();
    deploy_sidecar(
        &server,
        &format!(
            "[network]\nallow = [\"127.0.0.1:{port}\", \"https://localhost:{port}\"]\n{LOOPBACK}\n"
        ),
    )
    .await?;
    for url in [
        format!("https://127.0.0.1:{port}/mcp"),
        format!("https://localhost:{port}/mcp"),
    ] {
        let report = fetch(&session, json!({ "url": url })).await?;
        assert!(
            error_of(&report).contains("TlsCertificateError"),
            "{url}: {report}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn private_addresses_need_allow_private() -> anyhow::Result<()> {
    let upstream = Upstream::start().await?;
    let server = Setup::new().fixture("fetch").start().await?;
    let session = server.session("2025-11-25").await?;
    let p = upstream.port;
    deploy_sidecar(
        &server,
        &format!(
            "[network]\nallow = [\"http://localhost:{p}\", \"http://127.0.0.1:{p}\", \
             \"http://169.254.169.254\"]\n"
        ),
    )
    .await?;

    // An allowed IP literal that is loopback.
    let report = fetch(&session, json!({ "url": format!("http://127.0.0.1:{p}/") })).await?;
    assert!(
        error_of(&report).contains("DestinationIpProhibited"),
        "{report}"
    );
    // An allowed name that resolves to loopback: refused after resolution.
    let report = fetch(&session, json!({ "url": format!("http://localhost:{p}/") })).await?;
    assert!(
        error_of(&report).contains("DestinationIpProhibited"),
        "{report}"
    );
    wait_for_log(&server, "outbound request refused after resolution").await?;
    assert!(upstream.seen().is_empty(), "{:?}", upstream.seen());

    // The metadata address is refused by policy before any connection: fast,
    // and with the policy's error code rather than a timeout.
    let started = Instant::now();
    let report = fetch(
        &session,
        json!({ "url": "http://169.254.169.254/latest/meta-data/" }),
    )
    .await?;
    let took = started.elapsed();
    assert!(
        error_of(&report).contains("DestinationIpProhibited"),
        "{report}"
    );
    assert!(took < Duration::from_secs(2), "took {took:?}");
    let log = server.stderr();
    assert!(
        log.contains("http://169.254.169.254:80") && log.contains("(cloud metadata)"),
        "{log}"
    );
    // On a port the sidecar does not list it is not even a candidate.
    let report = fetch(&session, json!({ "url": "http://169.254.169.254:8080/" })).await?;
    assert!(error_of(&report).contains("HttpRequestDenied"), "{report}");

    // With allow_private covering loopback, both now reach the upstream.
    deploy_sidecar(
        &server,
        &format!(
            "[network]\nallow = [\"http://localhost:{p}\", \"http://127.0.0.1:{p}\"]\n{LOOPBACK}\n"
        ),
    )
    .await?;
    for url in [
        format!("http://127.0.0.1:{p}/"),
        format!("http://localhost:{p}/"),
    ] {
        let report = fetch(&session, json!({ "url": url })).await?;
        assert_eq!(report["status"], 200, "{url}: {report}");
    }
    assert_eq!(upstream.seen().len(), 2);
    Ok(())
}

#[tokio::test]
async fn credentials_are_added_by_the_host_and_never_seen_by_the_plugin() -> anyhow::Result<()> {
    const TOKEN: &str = "s3cret-token-value";
    const PASSWORD: &str = "pa55word-from-file";
    let bearer = Upstream::start().await?;
    let basic = Upstream::start().await?;
    let plain = Upstream::start().await?;
    let elsewhere = Upstream::start().await?;
    let secrets = scratch_dir("secrets");
    let password_file = secrets.join("password");
    std::fs::write(&password_file, format!("{PASSWORD}\n"))?;
    let server = Setup::new()
        .fixture("fetch")
        .env("TOOLHOST_TEST_TOKEN", TOKEN)
        .env("TOOLHOST_TEST_USER", "bot@example.com")
        .start()
        .await?;
    let session = server.session("2025-11-25").await?;
    let (b, u, c) = (bearer.port, basic.port, plain.port);
    deploy_sidecar(
        &server,
        &format!(
            "[network]\n\
             allow = [\"http://localhost:{b}\", \"http://localhost:{u}\", \"http://localhost:{c}\"]\n\
             {LOOPBACK}\n\n\
             [credentials]\n\
             \"http://localhost:{b}\" = {{ header = \"Authorization\", value = \"Bearer ${{env:TOOLHOST_TEST_TOKEN}}\" }}\n\
             \"http://localhost:{u}\" = {{ basic = {{ username = \"${{env:TOOLHOST_TEST_USER}}\", password = \"${{file:{}}}\" }} }}\n",
            password_file.display()
        ),
    )
    .await?;

    // The plugin's own Authorization is replaced, not merged or duplicated,
    // and what the plugin can read back is only its own value.
    let report = fetch(
        &session,
        json!({
            "url": format!("http://localhost:{b}/api"),
            "headers": {"Authorization": "Bearer plugin-own", "X-Plugin": "yes"}
        }),
    )
    .await?;
    assert_eq!(report["status"], 200, "{report}");
    assert_eq!(
        report["request_headers"]["authorization"], "Bearer plugin-own",
        "{report}"
    );
    assert!(!report.to_string().contains(TOKEN), "{report}");
    let seen = bearer.seen();
    assert_eq!(
        seen[0].header("authorization"),
        vec![format!("Bearer {TOKEN}")]
    );
    assert_eq!(seen[0].header("x-plugin"), vec!["yes"]);

    // Without a header of its own the plugin still sees none.
    let report = fetch(&session, json!({ "url": format!("http://localhost:{b}/") })).await?;
    assert_eq!(report["status"], 200, "{report}");
    assert_eq!(report["request_headers"], json!({}), "{report}");
    assert_eq!(
        bearer.seen()[1].header("authorization"),
        vec![format!("Bearer {TOKEN}")]
    );

    // Basic auth built from an environment variable and a file.
    let report = fetch(&session, json!({ "url": format!("http://localhost:{u}/") })).await?;
    assert_eq!(report["status"], 200, "{report}");
    // base64("bot@example.com:pa55word-from-file")
    assert_eq!(
        basic.seen()[0].header("authorization"),
        vec!["Basic Ym90QGV4YW1wbGUuY29tOnBhNTV3b3JkLWZyb20tZmlsZQ=="]
    );

    // An allowed destination without a credential gets only what the plugin sent.
    let report = fetch(
        &session,
        json!({
            "url": format!("http://localhost:{c}/"),
            "headers": {"Authorization": "Bearer plugin-own"}
        }),
    )
    .await?;
    assert_eq!(report["status"], 200, "{report}");
    assert_eq!(
        plain.seen()[0].header("authorization"),
        vec!["Bearer plugin-own"]
    );

    // Pointing the request anywhere else gets it refused, credential or not.
    let report = fetch(
        &session,
        json!({ "url": format!("http://localhost:{}/", elsewhere.port) }),
    )
    .await?;
    assert!(error_of(&report).contains("HttpRequestDenied"), "{report}");
    assert!(elsewhere.seen().is_empty());

    let log = server.stderr();
    assert!(
        !log.contains(TOKEN) && !log.contains(PASSWORD),
        "a secret reached the log"
    );
    Ok(())
}

#[tokio::test]
async fn credential_problems_refuse_the_sidecar() -> anyhow::Result<()> {
    let upstream = Upstream::start().await?;
    let server = Setup::new().fixture("fetch").start().await?;
    let session = server.session("2025-11-25").await?;
    let p = upstream.port;
    let network = format!("[network]\nallow = [\"http://localhost:{p}\"]\n{LOOPBACK}\n");

    std::fs::write(
        server.plugins_dir.join("fetch.toml"),
        format!(
            "{network}[credentials]\n\"http://localhost:{p}\" = \
             {{ header = \"Authorization\", value = \"Bearer ${{env:TOOLHOST_TEST_UNSET_VAR}}\" }}\n"
        ),
    )?;
    wait_for_log(
        &server,
        "environment variable TOOLHOST_TEST_UNSET_VAR is not set",
    )
    .await?;

    std::fs::write(
        server.plugins_dir.join("fetch.toml"),
        format!(
            "{network}[credentials]\n\"http://localhost:{p}\" = \
             {{ header = \"Authorization\", value = \"Bearer ghp_literal0secret1in2the3file\" }}\n"
        ),
    )?;
    wait_for_log(&server, "literal secrets are refused").await?;
    assert!(!server.stderr().contains("ghp_literal0secret1in2the3file"));

    // The version without a grant keeps serving: still no network.
    let report = fetch(&session, json!({ "url": format!("http://localhost:{p}/") })).await?;
    assert!(error_of(&report).contains("HttpRequestDenied"), "{report}");
    assert!(upstream.seen().is_empty());
    Ok(())
}

#[tokio::test]
async fn limits_stop_with_clear_errors() -> anyhow::Result<()> {
    let upstream = Upstream::start().await?;
    let server = Setup::new().fixture("fetch").start().await?;
    let session = server.session("2025-11-25").await?;
    let p = upstream.port;
    deploy_sidecar(
        &server,
        &format!(
            "[network]\nallow = [\"http://localhost:{p}\"]\n{LOOPBACK}\n\
             max_response_bytes = 1000\nmax_requests_per_call = 3\ntimeout_ms = 1000\n"
        ),
    )
    .await?;
    let url = |path: &str| format!("http://localhost:{p}{path}");

    let report = fetch(&session, json!({ "url": url("/big?n=1000") })).await?;
    assert_eq!(
        report["body"].as_str().map(str::len),
        Some(1000),
        "{report}"
    );

    // Streamed past the cap: stopped while reading.
    let report = fetch(&session, json!({ "url": url("/big?n=5000") })).await?;
    assert!(
        error_of(&report).contains("body size exceeds limit: 1000 bytes"),
        "{report}"
    );
    // Declared past the cap: refused before the body.
    let report = fetch(&session, json!({ "url": url("/big-cl?n=5000") })).await?;
    assert!(
        error_of(&report).contains("HttpResponseBodySize(Some(1000))"),
        "{report}"
    );

    let report = fetch(&session, json!({ "url": url("/"), "repeat": 5 })).await?;
    assert!(
        error_of(&report).contains("ConnectionLimitReached"),
        "{report}"
    );
    assert_eq!(report["attempt"], 4, "{report}");
    // The count is per call.
    let report = fetch(&session, json!({ "url": url("/"), "repeat": 3 })).await?;
    assert_eq!(report["status"], 200, "{report}");

    let started = Instant::now();
    let report = fetch(&session, json!({ "url": url("/slow") })).await?;
    assert!(
        error_of(&report).contains("HttpResponseTimeout"),
        "{report}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    let log = server.stderr();
    assert!(log.contains("max_requests_per_call"), "{log}");
    assert!(log.contains("max_response_bytes"), "{log}");

    // A request timeout longer than the call's deadline: the deadline wins,
    // even though the guest is parked in a host call, not running.
    deploy_sidecar(
        &server,
        &format!(
            "[limits]\ndeadline_ms = 1000\n\n[network]\nallow = [\"http://localhost:{p}\"]\n\
             {LOOPBACK}\ntimeout_ms = 20000\n"
        ),
    )
    .await?;
    let started = Instant::now();
    let res = session
        .call("fetch", json!({ "url": url("/slow") }))
        .await?;
    let text = res["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(text.contains("deadline of 1000 ms"), "{res}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    Ok(())
}

#[tokio::test]
async fn operator_deny_overrides_the_sidecar() -> anyhow::Result<()> {
    let upstream = Upstream::start().await?;
    let server = Setup::new()
        .fixture("fetch")
        .config("[plugins.policy]\nnetwork_deny = [\"localhost\", \"127.0.0.2\"]")
        .start()
        .await?;
    let session = server.session("2025-11-25").await?;
    let p = upstream.port;
    deploy_sidecar(
        &server,
        &format!(
            "[network]\nallow = [\"http://localhost:{p}\", \"http://127.0.0.1:{p}\", \
             \"http://127.0.0.2:{p}\"]\n{LOOPBACK}\n"
        ),
    )
    .await?;
    let report = fetch(&session, json!({ "url": format!("http://localhost:{p}/") })).await?;
    assert!(error_of(&report).contains("HttpRequestDenied"), "{report}");
    let report = fetch(&session, json!({ "url": format!("http://127.0.0.2:{p}/") })).await?;
    assert!(
        error_of(&report).contains("DestinationIpProhibited"),
        "{report}"
    );
    // The deny list is precise: the address it does not name still works.
    let report = fetch(&session, json!({ "url": format!("http://127.0.0.1:{p}/") })).await?;
    assert_eq!(report["status"], 200, "{report}");
    assert_eq!(upstream.seen().len(), 1);
    assert!(
        server
            .stderr()
            .contains("denied by plugins.policy.network_deny")
    );
    Ok(())
}
