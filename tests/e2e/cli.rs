//! The developer CLI (`toolhost login`, `tools`, `call`, `logout`) against
//! the real server: both sign-in flows, the credentials file, the output,
//! exit statuses, renewal after the access token expires, and waiting out
//! a rate limit.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

use crate::harness::{Server, Setup, scratch_dir, toolhost_bin};

const SHA256_ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

/// The CLI with its own credentials file, trusting the server's certificate.
fn cli(server: &Server, credentials: &Path) -> Command {
    let mut command = Command::new(toolhost_bin());
    command
        .env("TOOLHOST_CREDENTIALS", credentials)
        .env("TOOLHOST_CA_CERT", &server.cert_path)
        .env_remove("TOOLHOST_URL")
        .stdin(Stdio::null());
    command
}

fn run(mut command: Command) -> anyhow::Result<Output> {
    Ok(command.output()?)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Starts `toolhost login` with `extra` arguments and returns it with the
/// `n` stderr lines that follow the first line starting with `marker`.
async fn spawn_login(
    server: &Server,
    credentials: &Path,
    extra: &str,
    marker: &'static str,
    n: usize,
) -> anyhow::Result<(std::process::Child, Vec<String>)> {
    let mut login = cli(server, credentials);
    login
        .args(["login", &server.url, extra])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = login.spawn()?;
    let stderr = child.stderr.take().context("stderr")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stderr).lines().map_while(Result::ok);
        while let Some(line) = lines.next() {
            if line.starts_with(marker) {
                let _ = tx.send(lines.by_ref().take(n).collect::<Vec<_>>());
            }
        }
    });
    let lines = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(60)))
        .await?
        .with_context(|| format!("the CLI never printed {marker:?}"))?;
    Ok((child, lines))
}

fn credentials_file() -> PathBuf {
    scratch_dir("cli").join("credentials.json")
}

#[tokio::test]
async fn a_service_signs_in_lists_and_calls() -> anyhow::Result<()> {
    let server = Setup::new()
        .bundled("devtools")
        .fixture("conformance")
        .start()
        .await?;
    let (id, secret) = server.add_client("cli-service", "read write")?;
    let credentials = credentials_file();
    let mut login = cli(&server, &credentials);
    login
        .args(["login", &server.url, "--client-credentials"])
        .env("TOOLHOST_CLIENT_ID", &id)
        .env("TOOLHOST_CLIENT_SECRET", &secret);
    let out = run(login)?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!("as {id}")),
        "{}",
        text(&out.stdout)
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&credentials)?.permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "credentials are private");
    }

    // With one server signed in, no --url is needed.
    let mut tools = cli(&server, &credentials);
    tools.arg("tools");
    let out = run(tools)?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(table.starts_with("NAME"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("hash ") && l.contains(" read ")),
        "{table}"
    );
    let mut json = cli(&server, &credentials);
    // Flags have environment equivalents: TOOLHOST_JSON is --json.
    json.arg("tools").env("TOOLHOST_JSON", "1");
    let listed: Value = serde_json::from_slice(&run(json)?.stdout)?;
    assert!(
        listed.as_array().is_some_and(|tools| tools.len() > 20),
        "{listed}"
    );

    let mut call = cli(&server, &credentials);
    call.args([
        "call",
        "hash",
        "--arg",
        "input=abc",
        "--arg",
        "algorithm=sha256",
    ]);
    let out = run(call)?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(SHA256_ABC),
        "{}",
        text(&out.stdout)
    );

    // Progress arrives while the call runs, as a bar per update.
    let mut progress = cli(&server, &credentials);
    progress.args(["call", "test_tool_with_progress"]);
    let out = run(progress)?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("[##########----------] 50/100"), "{stderr}");
    assert!(
        stderr.contains("[####################] 100/100"),
        "{stderr}"
    );

    // A tool error is printed and makes the exit status 1.
    let mut failing = cli(&server, &credentials);
    failing.args(["call", "test_error_handling"]);
    let out = run(failing)?;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(!text(&out.stdout).is_empty());
    // An unknown tool is a clear error.
    let mut unknown = cli(&server, &credentials);
    unknown.args(["call", "no_such_tool", "--json", "{}"]);
    let out = run(unknown)?;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no tool \"no_such_tool\""),
        "{}",
        text(&out.stderr)
    );

    // Signing out revokes and forgets.
    let mut logout = cli(&server, &credentials);
    logout.args(["logout", "--url", &server.url]);
    assert!(run(logout)?.status.success());
    let mut after = cli(&server, &credentials);
    after.args(["tools", "--url", &server.url]);
    let out = run(after)?;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("not signed in"),
        "{}",
        text(&out.stderr)
    );
    Ok(())
}

#[tokio::test]
async fn a_person_signs_in_with_the_browser_and_stays_signed_in() -> anyhow::Result<()> {
    // Access tokens last 2 s here, so the second command must renew.
    let server = Setup::new()
        .bundled("devtools")
        .config("[auth]\naccess_token_ttl = \"2s\"\nleeway_ms = 0")
        .start()
        .await?;
    let credentials = credentials_file();
    let (child, lines) =
        spawn_login(&server, &credentials, "--no-browser", "Sign in at:", 1).await?;
    let url = lines.first().context("no URL")?.clone();
    // The person signs in; the browser follows the redirect to the CLI.
    let callback = server
        .sign_in(&url, "admin", &server.admin_password()?)
        .await?;
    assert!(callback.starts_with("http://127.0.0.1:"), "{callback}");
    let landed = reqwest::Client::new().get(&callback).send().await?;
    assert_eq!(landed.status(), 200);
    let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await??;
    assert!(out.status.success());
    assert!(
        text(&out.stdout).contains("as admin"),
        "{}",
        text(&out.stdout)
    );
    let stored: Value = serde_json::from_slice(&std::fs::read(&credentials)?)?;
    let first_refresh = stored["servers"][&server.url]["refresh_token"].clone();
    assert!(first_refresh.is_string(), "{stored}");

    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut call = cli(&server, &credentials);
    call.args(["call", "whoami", "--url", &server.url]);
    let out = run(call)?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("subject: admin"),
        "{}",
        text(&out.stdout)
    );
    let stored: Value = serde_json::from_slice(&std::fs::read(&credentials)?)?;
    let second_refresh = &stored["servers"][&server.url]["refresh_token"];
    assert_ne!(
        &first_refresh, second_refresh,
        "renewed with a rotated refresh token"
    );
    Ok(())
}

#[tokio::test]
async fn a_rate_limit_is_waited_out() -> anyhow::Result<()> {
    let server = Setup::new()
        .bundled("devtools")
        .config("[limits]\ntool_calls_per_hour = 3600\ntool_calls_burst = 1\nauth_requests_per_minute = 0")
        .start()
        .await?;
    let (id, secret) = server.add_client("cli-limited", "read")?;
    let credentials = credentials_file();
    let mut login = cli(&server, &credentials);
    login
        .args([
            "login",
            &server.url,
            "--client-credentials",
            "--scope",
            "read",
        ])
        .env("TOOLHOST_CLIENT_ID", &id)
        .env("TOOLHOST_CLIENT_SECRET", &secret);
    assert!(run(login)?.status.success());
    let mut waited = String::new();
    for _ in 0..2 {
        let mut call = cli(&server, &credentials);
        call.args(["call", "uuid"]);
        let out = run(call)?;
        assert!(out.status.success(), "{}", text(&out.stderr));
        waited = text(&out.stderr);
    }
    // The second call found the one-call burst spent, said so, waited the
    // second the server asked for, and then succeeded.
    assert!(
        waited.contains("rate limited by the \"calls\" limit; waiting"),
        "{waited}"
    );
    Ok(())
}

#[tokio::test]
async fn a_machine_without_a_browser_signs_in_with_a_code() -> anyhow::Result<()> {
    let server = Setup::new().bundled("devtools").start().await?;
    let credentials = credentials_file();
    let (child, lines) =
        spawn_login(&server, &credentials, "--device", "On any device, open", 2).await?;
    let (link, code_line) = match lines.as_slice() {
        [link, code_line] => (link.clone(), code_line.clone()),
        _ => anyhow::bail!("unexpected device prompt: {lines:?}"),
    };
    let code = code_line.rsplit(' ').next().unwrap_or_default().to_string();
    assert!(
        link.contains(&format!("user_code={code}")),
        "{link} / {code_line}"
    );

    // Someone opens the link on another machine and approves.
    let browser = crate::harness::client_builder(&server.cert_path, None)?
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let page = browser.get(&link).send().await?;
    let cookies = crate::harness::set_cookies(&page).join("; ");
    let html = page.text().await?;
    assert!(html.contains(&code), "the page shows the code to check");
    let csrf = crate::harness::form_value(&html, "csrf").context("csrf")?;
    let base = server.url.trim_end_matches("/mcp");
    let password = server.admin_password()?;
    let answer = browser
        .post(format!("{base}/device"))
        .header("cookie", cookies)
        .form(&[
            ("user_code", code.as_str()),
            ("csrf", csrf.as_str()),
            ("username", "admin"),
            ("password", password.as_str()),
            ("action", "allow"),
        ])
        .send()
        .await?;
    assert_eq!(answer.status(), 200);
    let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await??;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("as admin"),
        "{}",
        text(&out.stdout)
    );
    let mut call = cli(&server, &credentials);
    call.args(["call", "whoami"]);
    let out = run(call)?;
    assert!(
        text(&out.stdout).contains("subject: admin"),
        "{}",
        text(&out.stdout)
    );
    Ok(())
}

#[test]
fn plugin_check_validates_a_component_offline() -> anyhow::Result<()> {
    let plugins = crate::harness::artefact_dir("TOOLHOST_PLUGINS", "target/plugins");
    let fixtures = crate::harness::artefact_dir("TOOLHOST_TEST_PLUGINS", "target/test-plugins");
    let mut good = Command::new(toolhost_bin());
    good.args(["plugin", "check", "--json"])
        .arg(plugins.join("devtools.wasm"));
    let out = run(good)?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout)?;
    assert!(
        report["tools"]
            .as_array()
            .is_some_and(|tools| tools.iter().any(|t| t["name"] == "hash")),
        "{report}"
    );
    assert!(
        report["imports"]
            .as_array()
            .is_some_and(|i| i.iter().any(|name| name
                .as_str()
                .is_some_and(|n| n.starts_with("toolhost:plugin/types")))),
        "{report}"
    );
    for (fixture, reason) in [
        ("many-tools", "declares 10000 tools; at most 1000"),
        ("bad-schema", "not valid JSON"),
    ] {
        let mut bad = Command::new(toolhost_bin());
        bad.args(["plugin", "check"])
            .arg(fixtures.join(format!("{fixture}.wasm")));
        let out = run(bad)?;
        assert!(!out.status.success(), "{fixture} passed the check");
        assert!(text(&out.stderr).contains(reason), "{}", text(&out.stderr));
    }
    Ok(())
}

#[tokio::test]
async fn a_plugin_from_the_rust_template_builds_and_serves() -> anyhow::Result<()> {
    let dir = scratch_dir("template").join("greeter");
    let mut new = Command::new(toolhost_bin());
    new.args(["plugin", "new", "greeter", "--lang", "rust", "--dir"])
        .arg(&dir);
    let out = run(new)?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Shares the guests' target dir, so wit-bindgen is already compiled.
    let target = crate::harness::workspace_root().join("target/wasm");
    let mut build = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    build
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", &target)
        .args(["build", "--quiet", "--release", "--target", "wasm32-wasip2"]);
    let out = tokio::task::spawn_blocking(move || build.output()).await??;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let wasm = target.join("wasm32-wasip2/release/greeter.wasm");
    let server = Setup::new().start().await?;
    std::fs::copy(&wasm, server.plugins_dir.join(".greeter.wasm.tmp"))?;
    std::fs::rename(
        server.plugins_dir.join(".greeter.wasm.tmp"),
        server.plugins_dir.join("greeter.wasm"),
    )?;
    let session = server.session("2025-11-25").await?;
    let started = std::time::Instant::now();
    loop {
        let res = session
            .call("hello", serde_json::json!({"name": "Ada"}))
            .await?;
        if res["result"]["content"][0]["text"] == "Hello, Ada!" {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(60),
            "the new plugin never served: {res}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}
