//! Bad input of every kind gets the right HTTP status and JSON-RPC error, and
//! the server keeps serving afterwards.

use serde_json::{Value, json};

use crate::harness::{Server, Setup};

/// What a case expects back.
struct Expect {
    status: u16,
    /// JSON-RPC error code, or `None` when the reply is a result.
    code: Option<i64>,
    /// Text the reply must contain.
    contains: &'static str,
}

fn expect(status: u16, code: Option<i64>, contains: &'static str) -> Expect {
    Expect {
        status,
        code,
        contains,
    }
}

async fn check(
    server: &Server,
    name: &str,
    headers: &[(&str, &str)],
    body: impl Into<reqwest::Body>,
    want: Expect,
) {
    let reply = server.post_raw(headers, body).await.expect("request sent");
    assert_eq!(
        reply.status, want.status,
        "{name}: status; body {}",
        reply.text
    );
    let json = reply.json();
    let code = json["error"]["code"].as_i64();
    assert_eq!(code, want.code, "{name}: code; body {}", reply.text);
    assert!(
        reply.text.contains(want.contains),
        "{name}: {:?} not in {}",
        want.contains,
        reply.text
    );
}

#[tokio::test]
async fn malformed_requests_get_clear_errors() -> anyhow::Result<()> {
    let server = Setup::new()
        .fixture("hostile")
        .config("[mcp]\nmax_body_bytes = 65536")
        .start()
        .await?;
    let session = server.session("2025-11-25").await?;
    let sid = session.id.as_str();
    let s = |extra: &[(&'static str, &'static str)]| {
        let mut h: Vec<(&str, &str)> = vec![
            ("mcp-session-id", sid),
            ("mcp-protocol-version", "2025-11-25"),
        ];
        h.extend_from_slice(extra);
        h
    };
    let call = |params: Value| {
        json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": params}).to_string()
    };

    check(
        &server,
        "not JSON",
        &s(&[]),
        "{nope",
        expect(400, Some(-32700), "parse error"),
    )
    .await;
    check(
        &server,
        "empty body",
        &s(&[]),
        "",
        expect(400, Some(-32700), "parse error"),
    )
    .await;
    check(
        &server,
        "a number",
        &s(&[]),
        "42",
        expect(400, Some(-32600), "must be an object"),
    )
    .await;
    check(
        &server,
        "no jsonrpc",
        &s(&[]),
        r#"{"id":1,"method":"ping"}"#,
        expect(400, Some(-32600), "\\\"jsonrpc\\\" must be"),
    )
    .await;
    check(
        &server,
        "jsonrpc 1.0",
        &s(&[]),
        r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#,
        expect(400, Some(-32600), "2.0"),
    )
    .await;
    check(
        &server,
        "method not a string",
        &s(&[]),
        r#"{"jsonrpc":"2.0","id":1,"method":7}"#,
        expect(400, Some(-32600), "method"),
    )
    .await;
    check(
        &server,
        "params an array",
        &s(&[]),
        r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":[]}"#,
        expect(400, Some(-32600), "params"),
    )
    .await;
    check(
        &server,
        "id an object",
        &s(&[]),
        r#"{"jsonrpc":"2.0","id":{},"method":"ping"}"#,
        expect(400, Some(-32600), "id"),
    )
    .await;
    check(
        &server,
        "unknown method",
        &s(&[]),
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/frobnicate"}"#,
        expect(200, Some(-32601), "tools/frobnicate"),
    )
    .await;
    check(
        &server,
        "unknown tool",
        &s(&[]),
        call(json!({"name": "no_such_tool"})),
        expect(200, Some(-32602), "unknown tool: no_such_tool"),
    )
    .await;
    check(
        &server,
        "tool without name",
        &s(&[]),
        call(json!({})),
        expect(200, Some(-32602), "name"),
    )
    .await;
    check(
        &server,
        "arguments not an object",
        &s(&[]),
        call(json!({"name": "echo", "arguments": [1]})),
        expect(200, Some(-32602), "arguments"),
    )
    .await;
    check(
        &server,
        "schema-invalid argument",
        &s(&[]),
        call(json!({"name": "echo", "arguments": {"text": 5}})),
        expect(200, None, "invalid arguments"),
    )
    .await;
    check(
        &server,
        "missing required argument",
        &s(&[]),
        call(json!({"name": "echo", "arguments": {}})),
        expect(200, None, "\\\"text\\\" is a required property"),
    )
    .await;
    check(
        &server,
        "bad cursor",
        &s(&[]),
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"cursor":"zzz"}}"#,
        expect(200, Some(-32602), "invalid cursor"),
    )
    .await;
    check(
        &server,
        "bad log level",
        &s(&[]),
        r#"{"jsonrpc":"2.0","id":1,"method":"logging/setLevel","params":{"level":"loud"}}"#,
        expect(200, Some(-32602), "unknown log level"),
    )
    .await;
    check(
        &server,
        "text/plain body",
        &s(&[("content-type", "text/plain")]),
        "{}",
        expect(415, Some(-32600), "Content-Type"),
    )
    .await;
    check(
        &server,
        "Accept html only",
        &s(&[("accept", "text/html")]),
        r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
        expect(406, Some(-32600), "Accept"),
    )
    .await;
    check(
        &server,
        "no session id",
        &[],
        r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
        expect(400, Some(-32600), "Mcp-Session-Id header is required"),
    )
    .await;
    check(
        &server,
        "unknown session",
        &[("mcp-session-id", "feedface")],
        r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
        expect(404, Some(-32600), "session not found"),
    )
    .await;
    check(
        &server,
        "version mismatch",
        &[
            ("mcp-session-id", sid),
            ("mcp-protocol-version", "2025-06-18"),
        ],
        r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
        expect(400, Some(-32600), "does not match"),
    )
    .await;
    check(
        &server,
        "unknown version",
        &[
            ("mcp-session-id", sid),
            ("mcp-protocol-version", "1999-01-01"),
        ],
        r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
        expect(400, Some(-32600), "unsupported protocol version"),
    )
    .await;
    check(
        &server,
        "foreign Origin",
        &s(&[("origin", "https://evil.example.com")]),
        r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
        expect(403, Some(-32600), "Origin"),
    )
    .await;
    check(
        &server,
        "foreign Host",
        &s(&[("host", "evil.example.com")]),
        r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
        expect(403, Some(-32600), "Host"),
    )
    .await;
    let huge = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"pad":"{}"}}}}"#,
        "x".repeat(70_000)
    );
    check(
        &server,
        "oversized body",
        &s(&[]),
        huge,
        expect(413, Some(-32600), "exceeds the limit"),
    )
    .await;
    check(
        &server,
        "empty batch",
        &s(&[]),
        "[]",
        expect(400, Some(-32600), "empty batch"),
    )
    .await;
    check(
        &server,
        "batch after 2025-03-26",
        &s(&[]),
        r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#,
        expect(400, Some(-32600), "batches"),
    )
    .await;
    check(
        &server,
        "initialize inside a session",
        &s(&[]),
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#,
        expect(400, Some(-32600), "initialize must not"),
    )
    .await;

    // After all of that the server still answers normally.
    let res = session.call("echo", json!({"text": "still here"})).await?;
    assert_eq!(res["result"]["content"][0]["text"], "still here");
    Ok(())
}

#[tokio::test]
async fn get_and_delete_refuse_bad_requests() -> anyhow::Result<()> {
    let server = Setup::new().fixture("hostile").start().await?;
    let get_json = server
        .client
        .get(&server.url)
        .header("accept", "application/json")
        .send()
        .await?;
    assert_eq!(get_json.status(), 406);
    let get_no_session = server
        .client
        .get(&server.url)
        .header("accept", "text/event-stream")
        .send()
        .await?;
    assert_eq!(get_no_session.status(), 405);
    let delete_unknown = server
        .client
        .delete(&server.url)
        .header("mcp-session-id", "nope")
        .send()
        .await?;
    assert_eq!(delete_unknown.status(), 404);
    Ok(())
}
