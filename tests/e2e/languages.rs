//! Plugins written in Python, JavaScript and C (`plugins/examples/`), built
//! from `wit/world.wit` by `plugins/examples/build.sh`, served by the real
//! server like any Rust plugin: listed, called, given config by a sidecar, and
//! held to the sidecar's network grant.
//!
//! The components come from `TOOLHOST_LANG_PLUGINS` (default
//! `target/lang-plugins`). The Python one is ~18 MB and the JavaScript one
//! ~12 MB: compiling them takes seconds, so waits are generous.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use crate::harness::{Server, Session, Setup, artefact_dir};

/// Time for a cold server to compile the three components.
const LOAD_TIMEOUT: Duration = Duration::from_secs(240);

fn lang_plugin(name: &str) -> PathBuf {
    artefact_dir("TOOLHOST_LANG_PLUGINS", "target/lang-plugins").join(format!("{name}.wasm"))
}

/// Copies a component into the plugins directory the way the README says:
/// under a hidden name, then renamed into place.
fn deploy_file(src: &Path, plugins_dir: &Path, name: &str) -> anyhow::Result<()> {
    let staging = plugins_dir.join(format!(".{name}.tmp"));
    std::fs::copy(src, &staging).with_context(|| {
        format!(
            "copying {} (run `bash plugins/examples/build.sh`)",
            src.display()
        )
    })?;
    std::fs::rename(&staging, plugins_dir.join(name))?;
    Ok(())
}

/// Waits until `tools/list` names every tool in `expected`; returns the list.
async fn wait_for_tools(
    server: &Server,
    session: &Session<'_>,
    expected: &[&str],
) -> anyhow::Result<Vec<Value>> {
    let started = Instant::now();
    loop {
        let list = session.request("tools/list", json!({})).await?;
        let tools = list["result"]["tools"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
        if expected.iter().all(|e| names.contains(e)) {
            return Ok(tools);
        }
        if started.elapsed() > LOAD_TIMEOUT {
            bail!(
                "tools {expected:?} not all listed after {LOAD_TIMEOUT:?} (have {names:?}); stderr:\n{}",
                server.stderr()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn tool<'a>(tools: &'a [Value], name: &str) -> &'a Value {
    tools
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or(&Value::Null)
}

fn text(result: &Value) -> &str {
    result["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
}

/// Calls a tool that must succeed; returns its `result`.
async fn call_ok(session: &Session<'_>, name: &str, args: Value) -> anyhow::Result<Value> {
    let res = session.call(name, args.clone()).await?;
    if res["result"]["isError"] != false || res["result"]["content"].is_null() {
        bail!("{name}({args}) failed: {res}");
    }
    Ok(res)
}

/// Calls a tool that must report an error; returns the message.
async fn call_err(session: &Session<'_>, name: &str, args: Value) -> anyhow::Result<String> {
    let res = session.call(name, args.clone()).await?;
    if res["result"]["isError"] != true {
        bail!("{name}({args}) should have failed: {res}");
    }
    Ok(text(&res).to_string())
}

/// A plain-HTTP upstream on 127.0.0.1 that answers "hello from upstream"
/// and counts the requests it receives.
struct Upstream {
    port: u16,
    hits: Arc<AtomicUsize>,
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
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let counter = counter.clone();
                tokio::spawn(async move {
                    if crate::harness::read_request_head(&mut stream).await.is_ok() {
                        counter.fetch_add(1, Ordering::SeqCst);
                        let body = "hello from upstream";
                        let reply = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\
                             connection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = stream.write_all(reply.as_bytes()).await;
                        let _ = stream.shutdown().await;
                    }
                });
            }
        });
        Ok(Upstream { port, hits, task })
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn python_javascript_and_c_plugins_serve_their_tools() -> anyhow::Result<()> {
    let allowed = Upstream::start().await?;
    let other = Upstream::start().await?;
    // Only the Python plugin has a sidecar at first: the JavaScript one
    // starts with no network at all.
    let server = Setup::new()
        .sidecar("python", "[config]\nkey = \"value\"\n")
        .start()
        .await?;
    for name in ["python", "js", "c"] {
        deploy_file(
            &lang_plugin(name),
            &server.plugins_dir,
            &format!("{name}.wasm"),
        )?;
    }
    let session = server.session("2025-11-25").await?;
    let tools = wait_for_tools(
        &server,
        &session,
        &[
            "py_word_count",
            "py_config",
            "js_reverse",
            "js_fetch",
            "c_add",
        ],
    )
    .await?;

    // The definitions each language returned from list-tools.
    let count = tool(&tools, "py_word_count");
    assert_eq!(count["annotations"]["readOnlyHint"], true, "{count}");
    assert_eq!(count["inputSchema"]["required"], json!(["text"]), "{count}");
    assert_eq!(count["outputSchema"]["type"], "object", "{count}");
    assert_eq!(
        tool(&tools, "js_fetch")["annotations"]["openWorldHint"],
        true
    );
    assert_eq!(tool(&tools, "c_add")["title"], "Add two integers (C)");
    assert_eq!(
        tool(&tools, "c_add")["inputSchema"]["properties"]["a"]["type"],
        "integer"
    );

    // Python: text plus structured content matching the output schema.
    let res = call_ok(
        &session,
        "py_word_count",
        json!({"text": "one two three\nfour, five"}),
    )
    .await?;
    assert_eq!(text(&res), "5 words, 2 lines, 24 characters", "{res}");
    assert_eq!(
        res["result"]["structuredContent"],
        json!({"words": 5, "lines": 2, "chars": 24}),
        "{res}"
    );
    // Python: host imports work (config from the sidecar).
    let res = call_ok(&session, "py_config", json!({"key": "key"})).await?;
    assert_eq!(text(&res), "value", "{res}");
    let res = call_ok(&session, "py_config", json!({"key": "absent"})).await?;
    assert_eq!(text(&res), "unset", "{res}");

    // JavaScript: code points, not UTF-16 units.
    let res = call_ok(&session, "js_reverse", json!({"text": "héllo, wörld 👋"})).await?;
    assert_eq!(text(&res), "👋 dlröw ,olléh", "{res}");

    // C: the sum; arguments the schema refuses never reach the plugin, and
    // integers written as 3.0 (valid for the schema) are still integers.
    let res = call_ok(&session, "c_add", json!({"a": 2, "b": 40})).await?;
    assert_eq!(text(&res), "42", "{res}");
    let res = call_ok(&session, "c_add", json!({"a": -7, "b": 3.0})).await?;
    assert_eq!(text(&res), "-4", "{res}");
    let res = call_ok(
        &session,
        "c_add",
        json!({"a": 9_007_199_254_740_991_i64, "b": 9_007_199_254_740_991_i64}),
    )
    .await?;
    assert_eq!(text(&res), "18014398509481982", "{res}");
    let message = call_err(&session, "c_add", json!({"a": 1.5, "b": 1})).await?;
    assert!(message.contains("invalid arguments"), "{message}");
    let message = call_err(&session, "c_add", json!({"a": 1})).await?;
    assert!(message.contains("invalid arguments"), "{message}");

    // JavaScript fetch without a sidecar: the host refuses, nothing leaves.
    let a = allowed.port;
    let url = format!("http://127.0.0.1:{a}/hello");
    let message = call_err(&session, "js_fetch", json!({ "url": url })).await?;
    assert!(
        message.contains("upstream error") && message.contains(&url),
        "{message}"
    );
    assert_eq!(allowed.hits(), 0, "a request got out without a grant");
    let log = server.stderr();
    assert!(
        log.contains("the plugin has no [network] grant") && log.contains("\"plugin\":\"js\""),
        "{log}"
    );

    // With a grant for one loopback port, that port answers and another
    // port stays refused.
    let staging = server.plugins_dir.join(".js.toml.tmp");
    std::fs::write(
        &staging,
        format!(
            "[network]\nallow = [\"http://127.0.0.1:{a}\"]\nallow_private = [\"127.0.0.0/8\"]\n"
        ),
    )?;
    std::fs::rename(&staging, server.plugins_dir.join("js.toml"))?;
    let started = Instant::now();
    let res = loop {
        let res = session.call("js_fetch", json!({ "url": url })).await?;
        if res["result"]["isError"] == false {
            break res;
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!(
                "js_fetch still refused after the grant: {res}; stderr:\n{}",
                server.stderr()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(text(&res), "200\nhello from upstream", "{res}");
    assert_eq!(allowed.hits(), 1);
    let elsewhere = format!("http://127.0.0.1:{}/", other.port);
    let message = call_err(&session, "js_fetch", json!({ "url": elsewhere })).await?;
    assert!(message.contains("upstream error"), "{message}");
    assert_eq!(other.hits(), 0, "a request reached an unlisted port");
    assert!(
        server
            .stderr()
            .contains("not in the plugin's [network] allow list"),
        "{}",
        server.stderr()
    );
    Ok(())
}

/// What `toolhost plugin new --lang python|js|c` writes must build with the
/// steps its README gives and serve: the templates are separate sources from
/// the examples above, so they are built here from a fresh scaffold.
#[tokio::test]
async fn every_language_template_builds_checks_and_serves() -> anyhow::Result<()> {
    let scratch = crate::harness::scratch_dir("lang-templates");
    let build_script = crate::harness::workspace_root().join("plugins/examples/build.sh");
    let mut built = Vec::new();
    for lang in ["python", "js", "c"] {
        let name = format!("hello-{lang}");
        let dir = scratch.join(&name);
        let out = std::process::Command::new(crate::harness::toolhost_bin())
            .args(["plugin", "new", &name, "--lang", lang, "--dir"])
            .arg(&dir)
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "plugin new --lang {lang}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let wasm = scratch.join(format!("{name}.wasm"));
        let mut build = std::process::Command::new("bash");
        build
            .arg(&build_script)
            .arg("--source")
            .arg(&dir)
            .arg("--out")
            .arg(&wasm)
            .arg(lang);
        let out = tokio::task::spawn_blocking(move || build.output()).await??;
        anyhow::ensure!(
            out.status.success(),
            "building the {lang} template: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // The README's second step: the offline check lists the tool.
        let out = std::process::Command::new(crate::harness::toolhost_bin())
            .args(["plugin", "check", "--json"])
            .arg(&wasm)
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "plugin check of the {lang} template: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout)?;
        assert_eq!(report["tools"][0]["name"], "hello", "{lang}: {report}");
        built.push((lang, name, wasm));
    }
    // Every template names its tool `hello`; prefixes let all three serve.
    let server = Setup::new()
        .config(
            "[plugins.prefixes]\n\"hello-python\" = \"py_\"\n\"hello-js\" = \"js_\"\n\"hello-c\" = \"c_\"\n",
        )
        .start()
        .await?;
    for (_, name, wasm) in &built {
        deploy_file(wasm, &server.plugins_dir, &format!("{name}.wasm"))?;
    }
    let session = server.session("2025-11-25").await?;
    wait_for_tools(&server, &session, &["py_hello", "js_hello", "c_hello"]).await?;
    let res = call_ok(&session, "py_hello", json!({"name": "Ada"})).await?;
    assert_eq!(text(&res), "Hello, Ada!", "{res}");
    let res = call_ok(&session, "js_hello", json!({"name": "Ada"})).await?;
    assert_eq!(text(&res), "Hello, Ada!", "{res}");
    let res = call_ok(&session, "c_hello", json!({})).await?;
    assert_eq!(text(&res), "Hello from C!", "{res}");
    Ok(())
}
