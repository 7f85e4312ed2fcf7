//! The session-era protocol (2024-11-05 … 2025-11-25) as SDK clients use it.

use anyhow::Context;
use serde_json::{Value, json};

use crate::harness::Setup;

#[tokio::test]
async fn initialize_list_and_call() -> anyhow::Result<()> {
    let server = Setup::new().fixture("hostile").start().await?;
    let session = server.session("2025-11-25").await?;
    assert_eq!(session.version, "2025-11-25");
    let list = session.request("tools/list", json!({})).await?;
    let names: Vec<&str> = list["result"]["tools"]
        .as_array()
        .expect("tools array")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(names.contains(&"echo"), "{names:?}");
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "tools are listed in a stable order");
    let echo = list["result"]["tools"]
        .as_array()
        .and_then(|tools| tools.iter().find(|t| t["name"] == "echo"))
        .expect("echo listed")
        .clone();
    assert_eq!(echo["inputSchema"]["type"], "object");
    assert_eq!(echo["annotations"]["readOnlyHint"], true);

    let res = session.call("echo", json!({"text": "hello"})).await?;
    assert_eq!(res["result"]["isError"], false, "{res}");
    assert_eq!(
        res["result"]["content"][0],
        json!({"type": "text", "text": "hello"})
    );
    assert_eq!(res["result"]["structuredContent"], json!({"text": "hello"}));
    Ok(())
}

#[tokio::test]
async fn version_negotiation_never_fails() -> anyhow::Result<()> {
    let server = Setup::new().fixture("hostile").start().await?;
    let check = |requested: &'static str, expect: &'static str| {
        let server = &server;
        async move {
            let session = server.session(requested).await?;
            assert_eq!(session.version, expect, "for {requested}");
            anyhow::Ok(())
        }
    };
    check("2025-11-25", "2025-11-25").await?;
    check("2025-06-18", "2025-06-18").await?;
    check("2025-03-26", "2025-03-26").await?;
    check("2024-11-05", "2024-11-05").await?;
    check("2099-12-31", "2025-11-25").await?;
    Ok(())
}

#[tokio::test]
async fn ping_and_set_level_return_empty_objects() -> anyhow::Result<()> {
    let server = Setup::new().fixture("hostile").start().await?;
    let session = server.session("2025-11-25").await?;
    assert_eq!(
        session.request("ping", json!({})).await?["result"],
        json!({})
    );
    let res = session
        .request("logging/setLevel", json!({"level": "info"}))
        .await?;
    assert_eq!(res["result"], json!({}));
    Ok(())
}

#[tokio::test]
async fn pagination_walks_every_tool_once() -> anyhow::Result<()> {
    let server = Setup::new()
        .fixture("hostile")
        .config("[mcp]\npage_size = 3")
        .start()
        .await?;
    let session = server.session("2025-11-25").await?;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..20 {
        let params = match &cursor {
            Some(c) => json!({"cursor": c}),
            None => json!({}),
        };
        let res = session.request("tools/list", params).await?;
        let tools = res["result"]["tools"].as_array().expect("tools").clone();
        assert!(tools.len() <= 3);
        seen.extend(
            tools
                .iter()
                .filter_map(|t| t["name"].as_str().map(str::to_string)),
        );
        match res["result"]["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.dedup();
    assert_eq!(seen, unique);
    assert!(seen.len() > 3, "{seen:?}");
    assert!(seen.contains(&"caller".to_string()));
    Ok(())
}

#[tokio::test]
async fn delete_ends_the_session() -> anyhow::Result<()> {
    let server = Setup::new().fixture("hostile").start().await?;
    let session = server.session("2025-11-25").await?;
    let res = server
        .client
        .delete(&server.url)
        .header("mcp-session-id", &session.id)
        .header("mcp-protocol-version", &session.version)
        .send()
        .await?;
    assert_eq!(res.status(), 204);
    let after = session
        .post(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
        .await?;
    assert_eq!(after.status, 404);
    Ok(())
}

#[tokio::test]
async fn get_opens_an_event_stream() -> anyhow::Result<()> {
    let server = Setup::new().fixture("hostile").start().await?;
    let session = server.session("2025-11-25").await?;
    let res = server
        .client
        .get(&server.url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session.id)
        .header("mcp-protocol-version", &session.version)
        .send()
        .await?;
    assert_eq!(res.status(), 200);
    let content_type = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok());
    assert_eq!(content_type, Some("text/event-stream"));
    Ok(())
}

#[tokio::test]
async fn batches_only_in_2025_03_26() -> anyhow::Result<()> {
    let server = Setup::new().fixture("hostile").start().await?;
    let old = server.session("2025-03-26").await?;
    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "ping"},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "b"}}},
        {"jsonrpc": "2.0", "id": 3, "method": "nope"}
    ]);
    let reply = old.post(batch.clone()).await?;
    assert_eq!(reply.status, 200);
    let items = reply.json();
    let items = items.as_array().expect("array reply");
    assert_eq!(items.len(), 3, "{items:?}");
    assert_eq!(items[0]["result"], json!({}));
    assert_eq!(items[1]["result"]["content"][0]["text"], "b");
    assert_eq!(items[2]["error"]["code"], -32601);
    let new = server.session("2025-11-25").await?;
    assert_eq!(new.post(batch).await?.status, 400);
    Ok(())
}

#[tokio::test]
async fn progress_streams_before_the_result() -> anyhow::Result<()> {
    let server = Setup::new().fixture("hostile").start().await?;
    let session = server.session("2025-11-25").await?;
    let reply = session
        .post(json!({
            "jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {"name": "progress", "arguments": {"steps": 3}, "_meta": {"progressToken": "tok-1"}}
        }))
        .await?;
    assert_eq!(
        reply.header("content-type").as_deref(),
        Some("text/event-stream")
    );
    let messages = reply.messages();
    let progress: Vec<&Value> = messages
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .collect();
    assert_eq!(progress.len(), 3, "{messages:?}");
    assert!(
        progress
            .iter()
            .all(|p| p["params"]["progressToken"] == "tok-1")
    );
    let values: Vec<f64> = progress
        .iter()
        .filter_map(|p| p["params"]["progress"].as_f64())
        .collect();
    assert!(values.windows(2).all(|w| w[0] <= w[1]), "{values:?}");
    let last = messages.last().expect("messages");
    assert_eq!(last["id"], 7);
    assert_eq!(last["result"]["content"][0]["text"], "done");
    Ok(())
}

#[tokio::test]
async fn without_a_token_progress_answers_plain_json() -> anyhow::Result<()> {
    let server = Setup::new().fixture("hostile").start().await?;
    let session = server.session("2025-11-25").await?;
    let reply = session
        .post(json!({
            "jsonrpc": "2.0", "id": 8, "method": "tools/call",
            "params": {"name": "progress", "arguments": {}}
        }))
        .await?;
    assert_eq!(
        reply.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(reply.json()["result"]["content"][0]["text"], "done");
    Ok(())
}

#[tokio::test]
async fn plugin_logs_follow_the_session_level() -> anyhow::Result<()> {
    let server = Setup::new().fixture("hostile").start().await?;
    let session = server.session("2025-11-25").await?;
    let quiet = session
        .post(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "log"}}))
        .await?;
    assert_eq!(quiet.messages().len(), 1, "no logs before logging/setLevel");
    session
        .request("logging/setLevel", json!({"level": "warning"}))
        .await?;
    let reply = session
        .post(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "log"}}))
        .await?;
    let levels: Vec<String> = reply
        .messages()
        .iter()
        .filter(|m| m["method"] == "notifications/message")
        .filter_map(|m| m["params"]["level"].as_str().map(str::to_string))
        .collect();
    assert_eq!(levels, vec!["warning", "error"], "{}", reply.text);
    Ok(())
}

#[tokio::test]
async fn cancellation_stops_a_running_call() -> anyhow::Result<()> {
    let server = Setup::new()
        .fixture("hostile")
        .config("[plugins.limits]\ndeadline_ms = 20000")
        .start()
        .await?;
    let session = server.session("2025-11-25").await?;
    let started = std::time::Instant::now();
    let call = session.post(json!({
        "jsonrpc": "2.0", "id": "spin-1", "method": "tools/call", "params": {"name": "spin"}
    }));
    let cancel = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        session
            .post(json!({
                "jsonrpc": "2.0", "method": "notifications/cancelled",
                "params": {"requestId": "spin-1", "reason": "test"}
            }))
            .await
    };
    let (reply, ack) = tokio::join!(call, cancel);
    assert_eq!(ack?.status, 202);
    let reply = reply?;
    assert_eq!(reply.json()["error"]["code"], -32800, "{}", reply.text);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    Ok(())
}

#[tokio::test]
async fn devtools_serve_real_work() -> anyhow::Result<()> {
    let server = Setup::new().bundled("devtools").start().await?;
    let session = server.session("2025-11-25").await?;
    let list = session.request("tools/list", json!({})).await?;
    let n_tools = list["result"]["tools"].as_array().map_or(0, Vec::len);
    assert!(
        n_tools >= 6,
        "devtools offers at least six tools, got {n_tools}"
    );
    let res = session
        .call("hash", json!({"input": "abc", "algorithm": "sha256"}))
        .await?;
    assert_eq!(res["result"]["isError"], false, "{res}");
    assert_eq!(
        res["result"]["structuredContent"]["digest"],
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    Ok(())
}

#[tokio::test]
async fn tools_ask_the_client_over_the_call_stream() -> anyhow::Result<()> {
    let server = Setup::new().fixture("conformance").start().await?;
    let session = server
        .session_with("2025-11-25", json!({"elicitation": {}}))
        .await?;
    let call = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
        "params": {"name": "test_elicitation", "arguments": {"message": "Who are you?"}}});
    let mut events = session.stream(call).await?;
    let question = events.next().await?.context("a question")?;
    assert_eq!(question["method"], "elicitation/create");
    assert_eq!(question["params"]["message"], "Who are you?");
    let answer = json!({"jsonrpc": "2.0", "id": question["id"],
        "result": {"action": "accept", "content": {"username": "ada", "email": "ada@example.com"}}});
    let ack = session.post(answer).await?;
    assert_eq!(ack.status, 202);
    let result = events.answer_to(&json!(5)).await?;
    let text = result["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(text.contains("ada@example.com"), "{result}");
    Ok(())
}
