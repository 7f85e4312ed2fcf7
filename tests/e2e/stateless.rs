//! The stateless era (2026-07-28): no session, version and capabilities in
//! every request's `_meta`, method and name mirrored in headers.

use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};

use crate::harness::{Reply, Server, Setup};

const V: &str = "2026-07-28";

fn meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": V,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "e2e", "version": "1"}
    })
}

async fn send(server: &Server, id: i64, method: &str, mut params: Value) -> anyhow::Result<Reply> {
    if params.get("_meta").is_none() {
        params["_meta"] = meta();
    }
    let name = params["name"].as_str().unwrap_or_default().to_string();
    let mut headers = vec![("mcp-protocol-version", V), ("mcp-method", method)];
    if method == "tools/call" {
        headers.push(("mcp-name", name.as_str()));
    }
    let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
    server.post_raw(&headers, body.to_string()).await
}

#[tokio::test]
async fn discover_list_and_call() -> anyhow::Result<()> {
    let server = Setup::new().fixture("hostile").start().await?;
    let discover = send(&server, 1, "server/discover", json!({})).await?;
    assert_eq!(discover.status, 200, "{}", discover.text);
    let result = &discover.json()["result"];
    assert_eq!(result["resultType"], "complete");
    assert!(
        result["supportedVersions"]
            .as_array()
            .is_some_and(|v| v.contains(&json!(V)))
    );
    assert_eq!(result["capabilities"]["tools"]["listChanged"], true);
    assert_eq!(
        result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "toolhost"
    );
    assert!(!discover.text.contains('\n'), "stateless JSON is one line");
    assert!(discover.header("mcp-session-id").is_none());

    let list = send(&server, 2, "tools/list", json!({})).await?.json();
    assert_eq!(list["result"]["resultType"], "complete");
    assert_eq!(list["result"]["ttlMs"], 0);
    assert_eq!(list["result"]["cacheScope"], "private");
    assert!(
        list["result"]["tools"]
            .as_array()
            .is_some_and(|t| !t.is_empty())
    );

    let call = send(
        &server,
        3,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "hi"}}),
    )
    .await?
    .json();
    assert_eq!(call["id"], 3);
    assert_eq!(call["result"]["resultType"], "complete");
    assert_eq!(call["result"]["content"][0]["text"], "hi");
    Ok(())
}

#[tokio::test]
async fn errors_echo_the_id_with_the_right_status() -> anyhow::Result<()> {
    let server = Setup::new().fixture("hostile").start().await?;
    let check = |reply: Reply, status: u16, code: i64, id: i64| {
        assert_eq!(reply.status, status, "{}", reply.text);
        let body = reply.json();
        assert_eq!(body["error"]["code"], code, "{}", reply.text);
        assert_eq!(body["id"], id, "{}", reply.text);
        body
    };
    check(
        send(&server, 101, "server/discover", json!({"_meta": {}})).await?,
        400,
        -32602,
        101,
    );
    let mut no_caps = meta();
    no_caps
        .as_object_mut()
        .map(|m| m.remove("io.modelcontextprotocol/clientCapabilities"));
    check(
        send(&server, 104, "server/discover", json!({"_meta": no_caps})).await?,
        400,
        -32602,
        104,
    );
    let mut bad_version = meta();
    bad_version["io.modelcontextprotocol/protocolVersion"] = json!("v999.0.0");
    check(
        send(
            &server,
            302,
            "server/discover",
            json!({"_meta": bad_version.clone()}),
        )
        .await?,
        400,
        -32020,
        302,
    );
    let body = json!({"jsonrpc": "2.0", "id": 301, "method": "server/discover", "params": {"_meta": bad_version}});
    let reply = server
        .post_raw(
            &[
                ("mcp-protocol-version", "v999.0.0"),
                ("mcp-method", "server/discover"),
            ],
            body.to_string(),
        )
        .await?;
    let err = check(reply, 400, -32022, 301);
    assert_eq!(err["error"]["data"]["requested"], "v999.0.0");
    assert!(
        err["error"]["data"]["supported"]
            .as_array()
            .is_some_and(|s| s.contains(&json!(V)))
    );
    for (id, method) in [
        (500, "initialize"),
        (501, "ping"),
        (502, "logging/setLevel"),
        (601, "unknown/method"),
    ] {
        check(send(&server, id, method, json!({})).await?, 404, -32601, id);
    }
    let mismatched =
        json!({"jsonrpc": "2.0", "id": 7, "method": "tools/list", "params": {"_meta": meta()}});
    let reply = server
        .post_raw(
            &[("mcp-protocol-version", V), ("mcp-method", "tools/call")],
            mismatched.to_string(),
        )
        .await?;
    check(reply, 400, -32020, 7);
    Ok(())
}

#[tokio::test]
async fn logs_only_with_a_requested_level() -> anyhow::Result<()> {
    let server = Setup::new().fixture("hostile").start().await?;
    let quiet = send(&server, 1, "tools/call", json!({"name": "log"})).await?;
    assert!(
        !quiet.text.contains("notifications/message"),
        "{}",
        quiet.text
    );
    let mut with_level = meta();
    with_level["io.modelcontextprotocol/logLevel"] = json!("debug");
    let loud = send(
        &server,
        2,
        "tools/call",
        json!({"name": "log", "_meta": with_level}),
    )
    .await?;
    let n_logs = loud
        .messages()
        .iter()
        .filter(|m| m["method"] == "notifications/message")
        .count();
    assert_eq!(n_logs, 5, "one per level: {}", loud.text);
    Ok(())
}

#[tokio::test]
async fn listen_acknowledges_with_the_subscription_id() -> anyhow::Result<()> {
    let server = Setup::new().fixture("hostile").start().await?;
    let body = json!({
        "jsonrpc": "2.0", "id": 77, "method": "subscriptions/listen",
        "params": {"_meta": meta(), "notifications": {"toolsListChanged": true}}
    });
    let mut res = server
        .client
        .post(&server.url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", V)
        .header("mcp-method", "subscriptions/listen")
        .body(body.to_string())
        .send()
        .await?;
    assert_eq!(res.status(), 200);
    let chunk = tokio::time::timeout(std::time::Duration::from_secs(5), res.chunk()).await??;
    let text = String::from_utf8_lossy(&chunk.unwrap_or_default()).to_string();
    let data = text
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .expect("an event");
    let ack: Value = serde_json::from_str(data)?;
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    assert_eq!(
        ack["params"]["notifications"],
        json!({"toolsListChanged": true})
    );
    assert_eq!(
        ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        77
    );
    Ok(())
}

/// One frame of an event stream: a JSON-RPC message or a comment (the
/// server's keep-alive).
#[derive(Debug)]
enum Frame {
    Message(Value),
    Comment(String),
}

/// An open `subscriptions/listen` stream, read frame by frame.
struct Listen {
    response: reqwest::Response,
    buf: Vec<u8>,
}

impl Listen {
    /// Opens a stream asking for `notifications` and reads its
    /// acknowledgement, which must echo the filter and the subscription id.
    async fn open(server: &Server, id: i64, notifications: Value) -> anyhow::Result<Listen> {
        let body = json!({
            "jsonrpc": "2.0", "id": id, "method": "subscriptions/listen",
            "params": {"_meta": meta(), "notifications": notifications.clone()}
        });
        let response = server
            .client
            .post(&server.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", V)
            .header("mcp-method", "subscriptions/listen")
            .body(body.to_string())
            .send()
            .await?;
        anyhow::ensure!(response.status() == 200, "listen: {}", response.status());
        let mut stream = Listen {
            response,
            buf: Vec::new(),
        };
        let Frame::Message(ack) = stream.next().await? else {
            anyhow::bail!("the stream did not open with its acknowledgement");
        };
        assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
        assert_eq!(ack["params"]["notifications"], notifications);
        assert_eq!(ack["params"]["_meta"][SUBSCRIPTION_ID], id);
        Ok(stream)
    }

    /// The next frame; a stream quiet for longer than its keep-alive
    /// interval (15 s) has stopped working.
    async fn next(&mut self) -> anyhow::Result<Frame> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let event: Vec<u8> = self.buf.drain(..end + 2).collect();
                let text = String::from_utf8_lossy(&event).to_string();
                let data: Vec<&str> = text
                    .lines()
                    .filter_map(|line| line.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                if data.is_empty() {
                    return Ok(Frame::Comment(text.trim().to_string()));
                }
                return Ok(Frame::Message(serde_json::from_str(&data.join("\n"))?));
            }
            let chunk = tokio::time::timeout(Duration::from_secs(30), self.response.chunk())
                .await
                .context("no frame within 30 s")??
                .context("the stream ended")?;
            self.buf.extend_from_slice(&chunk);
        }
    }
}

const SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";

/// A reload (a plugin removed) reaches the stream that asked for tool
/// changes, tagged with its subscription id, and no other: a stream asking
/// only for prompt changes, and one asking for nothing, hear their next
/// keep-alive instead (sent 15 s after they opened, long after the change).
#[tokio::test]
async fn listen_streams_hear_only_the_changes_they_asked_for() -> anyhow::Result<()> {
    let server = Setup::new()
        .fixture("hostile")
        .fixture("fetch")
        .start()
        .await?;
    let mut tools = Listen::open(&server, 11, json!({"toolsListChanged": true})).await?;
    let mut prompts = Listen::open(&server, 12, json!({"promptsListChanged": true})).await?;
    let mut nothing = Listen::open(&server, 13, json!({})).await?;

    std::fs::remove_file(server.plugins_dir.join("fetch.wasm"))?;
    let changed = loop {
        match tools.next().await? {
            Frame::Message(message) => break message,
            Frame::Comment(_) => continue,
        }
    };
    assert_eq!(
        changed["method"], "notifications/tools/list_changed",
        "{changed}"
    );
    assert_eq!(changed["params"]["_meta"][SUBSCRIPTION_ID], 11, "{changed}");
    assert!(changed.get("id").is_none(), "a notification: {changed}");
    let list = send(&server, 2, "tools/list", json!({})).await?.json();
    assert!(
        !crate::harness::tool_names(&list).contains(&"fetch".to_string()),
        "the change was real: {list}"
    );

    // Each stream's feeder handles the change the moment it happens and its
    // keep-alive 15 s after opening, so a frame sent for the change would
    // come first.
    for (name, stream) in [("prompts", &mut prompts), ("nothing", &mut nothing)] {
        match stream.next().await? {
            Frame::Comment(comment) => assert_eq!(comment, ": keepalive", "{name}"),
            Frame::Message(message) => panic!("the {name} stream got {message}"),
        }
    }
    Ok(())
}

fn meta_with_caps(caps: Value) -> Value {
    let mut m = meta();
    m["io.modelcontextprotocol/clientCapabilities"] = caps;
    m
}

#[tokio::test]
async fn input_rounds_carry_sealed_state() -> anyhow::Result<()> {
    let server = Setup::new().fixture("conformance").start().await?;
    let tool = "test_input_required_result_multi_round";
    let caps = json!({"elicitation": {}});
    let first = send(
        &server,
        1,
        "tools/call",
        json!({"name": tool, "_meta": meta_with_caps(caps.clone())}),
    )
    .await?;
    let first = first.json()["result"].clone();
    assert_eq!(first["resultType"], "input_required", "{first}");
    assert_eq!(
        first["inputRequests"]["step1"]["method"],
        "elicitation/create"
    );
    let state1 = first["requestState"].as_str().expect("state").to_string();

    let answer = |content: Value| json!({"action": "accept", "content": content});
    let second = send(
        &server,
        2,
        "tools/call",
        json!({
            "name": tool, "_meta": meta_with_caps(caps.clone()),
            "inputResponses": {"step1": answer(json!({"name": "Ada"}))}, "requestState": state1
        }),
    )
    .await?
    .json()["result"]
        .clone();
    assert_eq!(second["resultType"], "input_required", "{second}");
    assert!(
        second["inputRequests"]["step2"]["params"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Ada"))
    );
    let state2 = second["requestState"].as_str().expect("state").to_string();
    assert_ne!(state1, state2);

    let tampered = send(&server, 3, "tools/call", json!({
        "name": tool, "_meta": meta_with_caps(caps.clone()),
        "inputResponses": {"step2": answer(json!({"color": "red"}))}, "requestState": format!("{state2}x")
    })).await?.json();
    assert_eq!(tampered["error"]["code"], -32602, "{tampered}");

    let done = send(
        &server,
        4,
        "tools/call",
        json!({
            "name": tool, "_meta": meta_with_caps(caps),
            "inputResponses": {"step2": answer(json!({"color": "red"}))}, "requestState": state2
        }),
    )
    .await?
    .json()["result"]
        .clone();
    assert_eq!(done["resultType"], "complete", "{done}");
    assert_eq!(done["content"][0]["text"], "Ada likes red");
    Ok(())
}

#[tokio::test]
async fn undeclared_capabilities_and_malformed_answers_are_refused() -> anyhow::Result<()> {
    let server = Setup::new().fixture("conformance").start().await?;
    let missing = send(
        &server,
        401,
        "tools/call",
        json!({"name": "test_missing_capability"}),
    )
    .await?;
    assert_eq!(missing.status, 400, "{}", missing.text);
    let body = missing.json();
    assert_eq!(body["error"]["code"], -32021);
    assert_eq!(
        body["error"]["data"]["requiredCapabilities"],
        json!({"sampling": {}})
    );
    let bad = send(
        &server,
        402,
        "tools/call",
        json!({
            "name": "test_input_required_result_elicitation",
            "_meta": meta_with_caps(json!({"elicitation": {}})),
            "inputResponses": {"user_name": 12345}
        }),
    )
    .await?
    .json();
    assert_eq!(bad["error"]["code"], -32602, "{bad}");
    Ok(())
}
