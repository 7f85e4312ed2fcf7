//! Stand-ins for the internet's APIs: Prism serving an official OpenAPI
//! description (`tests/specs/*.json`, pruned to the operations a plugin
//! calls), behind a recording proxy that remembers every request the
//! plugin's traffic produced (with the headers the host injected) and can
//! answer chosen paths itself, as the real API does when it refuses.
//!
//! Prism validates each request against the description: an invalid one is
//! answered 422, and every violation it finds is reported in its
//! `sl-violations` header, which the proxy keeps so tests can require that
//! no request broke the contract. Prism's `--errors` mode is not used: it
//! also fails responses, and some of the official examples themselves
//! break their schemas (GitHub's branch and pull request examples).

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::harness::workspace_root;

/// A Prism mock server, killed when dropped.
pub(crate) struct Prism {
    child: Child,
    pub(crate) url: String,
}

impl Drop for Prism {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prism {
    /// Serves `tests/specs/{spec}` with request validation (`--errors`).
    pub(crate) async fn start(spec: &str) -> anyhow::Result<Prism> {
        let root = workspace_root();
        let prism = root.join("tests/interop/node_modules/.bin/prism");
        anyhow::ensure!(
            prism.exists(),
            "{} is missing: run tests/interop/setup.sh (cargo xtask test does)",
            prism.display()
        );
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
            probe.local_addr()?.port()
        };
        let log = crate::harness::scratch_dir("prism").join("prism.log");
        let mut child = Command::new(prism)
            .args(["mock", "-h", "127.0.0.1", "-p", &port.to_string()])
            .arg(root.join("tests/specs").join(spec))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log)?)
            .stderr(Stdio::null())
            .spawn()
            .context("starting prism")?;
        let started = Instant::now();
        loop {
            if std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("Prism is listening")
            {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                bail!(
                    "prism exited with {status}: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            if started.elapsed() > Duration::from_secs(90) {
                let _ = child.kill();
                bail!("prism did not start within 90 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(Prism {
            child,
            url: format!("http://127.0.0.1:{port}"),
        })
    }
}

/// One request as the upstream received it.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub(crate) method: String,
    /// Path and query.
    pub(crate) path: String,
    /// Lower-case names.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
    /// What Prism found wrong with the request (not with its own answer).
    pub(crate) violations: Vec<String>,
}

impl Recorded {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An answer the proxy gives itself to requests whose path contains a
/// marker, instead of asking Prism.
#[derive(Debug, Clone)]
pub(crate) struct Canned {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

type Shared<T> = Arc<Mutex<T>>;

/// A plain-HTTP recording proxy on 127.0.0.1 in front of `upstream`.
pub(crate) struct Recorder {
    pub(crate) port: u16,
    seen: Shared<Vec<Recorded>>,
    canned: Shared<Vec<(String, Canned)>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Recorder {
    pub(crate) async fn start(upstream: &str) -> anyhow::Result<Recorder> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let seen: Shared<Vec<Recorded>> = Arc::default();
        let canned: Shared<Vec<(String, Canned)>> = Arc::default();
        let (record, answers) = (seen.clone(), canned.clone());
        let upstream = upstream.to_string();
        crate::harness::install_crypto();
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()?;
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (record, answers, upstream, client) = (
                    record.clone(),
                    answers.clone(),
                    upstream.clone(),
                    client.clone(),
                );
                tokio::spawn(async move {
                    let _ = relay(stream, &record, &answers, &upstream, &client).await;
                });
            }
        });
        Ok(Recorder {
            port,
            seen,
            canned,
            task,
        })
    }

    /// Answers requests whose path contains `marker` with `canned`.
    pub(crate) fn answer(&self, marker: &str, canned: Canned) {
        if let Ok(mut answers) = self.canned.lock() {
            answers.push((marker.to_string(), canned));
        }
    }

    pub(crate) fn seen(&self) -> Vec<Recorded> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

async fn relay(
    mut stream: TcpStream,
    record: &Shared<Vec<Recorded>>,
    answers: &Shared<Vec<(String, Canned)>>,
    upstream: &str,
    client: &reqwest::Client,
) -> anyhow::Result<()> {
    let mut request = read_request(&mut stream).await?;
    let canned = answers.lock().ok().and_then(|answers| {
        answers
            .iter()
            .find(|(marker, _)| request.path.contains(marker.as_str()))
            .map(|(_, canned)| canned.clone())
    });
    let answer = match canned {
        Some(canned) => canned,
        None => {
            let method = reqwest::Method::from_bytes(request.method.as_bytes())?;
            let mut forward = client.request(method, format!("{upstream}{}", request.path));
            for (name, value) in &request.headers {
                if !matches!(
                    name.as_str(),
                    "host" | "connection" | "content-length" | "transfer-encoding"
                ) {
                    forward = forward.header(name, value);
                }
            }
            let response = forward.body(request.body.clone()).send().await?;
            let status = response.status().as_u16();
            request.violations = request_violations(
                response
                    .headers()
                    .get("sl-violations")
                    .and_then(|v| v.to_str().ok()),
            );
            let headers = response
                .headers()
                .iter()
                .filter(|(name, _)| {
                    !matches!(
                        name.as_str(),
                        "connection" | "content-length" | "transfer-encoding" | "keep-alive"
                    )
                })
                .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or_default().to_string()))
                .collect();
            Canned {
                status,
                headers,
                body: response.text().await?,
            }
        }
    };
    if let Ok(mut seen) = record.lock() {
        seen.push(request);
    }
    let mut head = format!("HTTP/1.1 {} Stand-in\r\n", answer.status);
    for (name, value) in &answer.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        answer.body.len()
    ));
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(answer.body.as_bytes()).await?;
    stream.shutdown().await?;
    Ok(())
}

/// The request's own violations from Prism's `sl-violations` JSON.
fn request_violations(header: Option<&str>) -> Vec<String> {
    let Some(list) = header.and_then(|h| serde_json::from_str::<serde_json::Value>(h).ok()) else {
        return Vec::new();
    };
    list.as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["location"][0] == "request")
        .map(|v| v["message"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// Reads one HTTP/1.1 request with a `Content-Length` body (or none).
pub(crate) async fn read_request(stream: &mut TcpStream) -> anyhow::Result<Recorded> {
    let mut buf = Vec::new();
    let head_end = loop {
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await?;
        anyhow::ensure!(n > 0 && buf.len() < 256 * 1024, "bad request");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or("GET").to_string();
    let path = first.next().unwrap_or("/").to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let mut body = buf[head_end + 4..].to_vec();
    if chunked {
        // wasi:http sends a body of unknown length chunked.
        while !body.ends_with(b"0\r\n\r\n") {
            let mut chunk = [0u8; 8192];
            let n = stream.read(&mut chunk).await?;
            anyhow::ensure!(n > 0, "the chunked body ended early");
            body.extend_from_slice(&chunk[..n]);
        }
        body = dechunk(&body)?;
    }
    while body.len() < length {
        let mut chunk = vec![0u8; length - body.len()];
        let n = stream.read(&mut chunk).await?;
        anyhow::ensure!(n > 0, "the body ended early");
        body.extend_from_slice(&chunk[..n]);
    }
    let headers = headers
        .into_iter()
        .filter(|(n, _)| n != "transfer-encoding")
        .collect();
    Ok(Recorded {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        violations: Vec::new(),
    })
}

/// The data of a complete chunked body.
fn dechunk(mut raw: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("a chunk size line")?;
        let size_text = String::from_utf8_lossy(&raw[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        anyhow::ensure!(raw.len() >= size + 2, "a chunk is cut short");
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

/// Checks a plugin's spec-checked cases against what it serves, both ways:
/// every case's tool is served, and every served tool has a case, so a tool
/// added to the plugin cannot ship without a request checked against the
/// API description.
pub(crate) fn assert_cases_cover(served: &[String], cased: &[&str]) {
    if let Some(gaps) = coverage_gaps(served, cased) {
        panic!("{gaps}");
    }
}

fn coverage_gaps(served: &[String], cased: &[&str]) -> Option<String> {
    let unserved: Vec<&str> = cased
        .iter()
        .copied()
        .filter(|tool| !served.iter().any(|n| n == tool))
        .collect();
    let uncased: Vec<&str> = served
        .iter()
        .map(String::as_str)
        .filter(|tool| !cased.contains(tool))
        .collect();
    (!unserved.is_empty() || !uncased.is_empty()).then(|| {
        format!(
            "cases name tools that are not served: {unserved:?}; \
             served tools without a spec-checked case: {uncased:?}"
        )
    })
}

#[test]
fn coverage_is_checked_both_ways() {
    let served = ["old_tool".to_string(), "new_tool".to_string()];
    assert_eq!(coverage_gaps(&served, &["old_tool", "new_tool"]), None);
    let gaps = coverage_gaps(&served, &["old_tool", "gone_tool"]).unwrap_or_default();
    assert!(
        gaps.contains("not served: [\"gone_tool\"]")
            && gaps.contains("without a spec-checked case: [\"new_tool\"]"),
        "{gaps}"
    );
}
