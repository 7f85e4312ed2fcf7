//! The consent page as a person sees it: what each scope lets the
//! application do on this server (counts and example tool names), who asks
//! and where the browser goes back to. Checked over HTTP, and in Debian's
//! Chromium driven by `tests/browser/consent.mjs` (installed by
//! `tests/browser/setup.sh`, which `cargo xtask test` runs), which leaves a
//! screenshot in `target/test-artefacts/consent.png`.

use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::harness::{Server, Setup, artefact_dir, client_builder, workspace_root};

const CLIENT_NAME: &str = "Consent <Check> App";
/// Nothing listens here during the HTTP-only test.
const REDIRECT: &str = "http://127.0.0.1:50124/callback";

/// devtools (all read-only) and the GitHub plugin (reads and changes), so
/// both scopes reach tools.
async fn start() -> anyhow::Result<Server> {
    Setup::new()
        .bundled("devtools")
        .integration("github")
        .sidecar(
            "github",
            "[config]\nbase_url = \"http://localhost:9\"\n[network]\nallow = [\"http://localhost:9\"]\n",
        )
        .start()
        .await
}

/// What the page should say, from the server's own tool list: per scope,
/// the count and the first tool of its kind.
struct Expected {
    read_only: usize,
    read_example: String,
    changing: usize,
    change_example: String,
}

async fn expected(server: &Server) -> anyhow::Result<Expected> {
    let session = server.session("2025-11-25").await?;
    let list = session.request("tools/list", json!({})).await?;
    let tools = list["result"]["tools"].as_array().context("tools")?;
    let (read, change): (Vec<&Value>, Vec<&Value>) = tools
        .iter()
        .partition(|t| t["annotations"]["readOnlyHint"] == true);
    let name = |tools: &[&Value]| {
        tools
            .first()
            .and_then(|t| t["name"].as_str())
            .map(str::to_string)
            .context("no tool of this kind")
    };
    Ok(Expected {
        read_only: read.len(),
        read_example: name(&read)?,
        changing: change.len(),
        change_example: name(&change)?,
    })
}

/// Registers a public client and returns the authorize URL and PKCE verifier.
async fn authorize_url(
    server: &Server,
    redirect: &str,
) -> anyhow::Result<(String, String, String)> {
    let base = server.url.trim_end_matches("/mcp");
    let http = client_builder(&server.cert_path, None)?
        .timeout(Duration::from_secs(30))
        .build()?;
    let client: Value = http
        .post(format!("{base}/register"))
        .json(&json!({
            "client_name": CLIENT_NAME, "redirect_uris": [redirect],
            "grant_types": ["authorization_code", "refresh_token"], "token_endpoint_auth_method": "none",
        }))
        .send()
        .await?
        .json()
        .await?;
    let client_id = client["client_id"]
        .as_str()
        .context("client_id")?
        .to_string();
    let verifier = format!("consent-{}", "v".repeat(50));
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let escape = |s: &str| s.replace(':', "%3A").replace('/', "%2F");
    let url = format!(
        "{base}/authorize?response_type=code&client_id={client_id}&redirect_uri={}&code_challenge={challenge}&code_challenge_method=S256&state=st&scope=read+write",
        escape(redirect)
    );
    Ok((url, client_id, verifier))
}

#[tokio::test]
async fn the_consent_page_says_what_each_scope_allows() -> anyhow::Result<()> {
    let server = start().await?;
    let want = expected(&server).await?;
    assert!(want.read_only > 0 && want.changing > 0);
    let (url, _, _) = authorize_url(&server, REDIRECT).await?;
    let http = client_builder(&server.cert_path, None)?.build()?;
    let html = http.get(&url).send().await?.text().await?;
    for needle in [
        format!(
            "call the <b>{}</b> read-only tools, such as <code>{}</code>",
            want.read_only, want.read_example
        ),
        format!(
            "call the <b>{}</b> tools that change things, such as <code>{}</code>",
            want.changing, want.change_example
        ),
        "<b>Consent &lt;Check&gt; App</b> asks to use this server's tools as you".to_string(),
        "returns to <b>127.0.0.1</b>".to_string(),
        "Your answer is remembered for this application.".to_string(),
    ] {
        assert!(html.contains(&needle), "no {needle:?} in\n{html}");
    }
    assert!(!html.contains("asks for: <b>read write</b>"), "{html}");
    Ok(())
}

#[tokio::test]
async fn consent_in_a_real_browser() -> anyhow::Result<()> {
    let dir = artefact_dir("TOOLHOST_BROWSER_DIR", "tests/browser");
    anyhow::ensure!(
        dir.join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed: run `bash tests/browser/setup.sh` (cargo xtask test does)"
    );
    let server = start().await?;
    let want = expected(&server).await?;
    // The script listens there for the browser's return, as a native app does.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let redirect = format!("http://127.0.0.1:{port}/callback");
    let (url, client_id, verifier) = authorize_url(&server, &redirect).await?;
    let artefacts = workspace_root().join("target/test-artefacts");
    std::fs::create_dir_all(&artefacts)?;
    let screenshot = artefacts.join("consent.png");
    let _ = std::fs::remove_file(&screenshot);
    let password = server.admin_password()?;
    let expected_text = [
        format!(
            "call the {} read-only tools, such as {}",
            want.read_only, want.read_example
        ),
        format!(
            "call the {} tools that change things, such as {}",
            want.changing, want.change_example
        ),
        format!("{CLIENT_NAME} asks to use this server's tools as you"),
        "your browser returns to 127.0.0.1".to_string(),
        redirect.clone(),
    ];
    let output = tokio::task::spawn_blocking({
        let dir = dir.clone();
        let screenshot = screenshot.clone();
        let redirect = redirect.clone();
        move || {
            Command::new("node")
                .current_dir(&dir)
                .arg("consent.mjs")
                .args([url.as_str(), redirect.as_str(), "admin", password.as_str()])
                .arg(&screenshot)
                .args(&expected_text)
                .output()
        }
    })
    .await??;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.starts_with("OK code="),
        "consent.mjs: {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- server\n{}",
        output.status,
        server.stderr()
    );
    assert!(
        screenshot.is_file(),
        "no screenshot at {}",
        screenshot.display()
    );
    // The code the browser carried back is a real one: it redeems.
    let code = stdout
        .trim()
        .strip_prefix("OK code=")
        .and_then(|rest| rest.split_whitespace().next())
        .context("code")?;
    let base = server.url.trim_end_matches("/mcp");
    let http = client_builder(&server.cert_path, None)?.build()?;
    let token: Value = http
        .post(format!("{base}/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect.as_str()),
            ("client_id", client_id.as_str()),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(token["scope"], "read write", "{token}");
    assert!(token["access_token"].is_string(), "{token}");
    Ok(())
}
