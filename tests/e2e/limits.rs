//! Front-door limits against the real server: tool-call budgets with 429,
//! `Retry-After` and RateLimit fields; independence per principal and per
//! tool; forwarded addresses believed only from trusted proxies; the IP
//! allowlist.

use std::time::Duration;

use serde_json::json;

use crate::harness::{Reply, Server, Session, Setup, mint_token};

async fn call_as(
    session: &Session<'_>,
    forwarded_for: Option<&str>,
    tool: &str,
) -> anyhow::Result<Reply> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": {"text": "x"}}});
    let mut headers = vec![
        ("mcp-session-id", session.id.as_str()),
        ("mcp-protocol-version", session.version.as_str()),
    ];
    if let Some(ip) = forwarded_for {
        headers.push(("x-forwarded-for", ip));
    }
    session.server.post_raw(&headers, body.to_string()).await
}

async fn call(server: &Server, token: &str, tool: &str) -> anyhow::Result<Reply> {
    server
        .stateless_as(
            token,
            "tools/call",
            json!({"name": tool, "arguments": {"text": "x"}}),
        )
        .await
}

#[tokio::test]
async fn budgets_refuse_with_retry_after_and_recover() -> anyhow::Result<()> {
    let server = Setup::new()
        .fixture("hostile")
        .config("[limits]\ntool_calls_per_hour = 3600\ntool_calls_burst = 2")
        .start()
        .await?;
    let session = server.session("2025-11-25").await?;
    let first = call_as(&session, None, "echo").await?;
    assert_eq!(first.status, 200);
    assert_eq!(
        first.header("ratelimit-policy").as_deref(),
        Some("\"calls\";q=3600;w=3600")
    );
    assert!(
        first
            .header("ratelimit")
            .is_some_and(|v| v.starts_with("\"calls\";r=1;")),
        "{:?}",
        first.header("ratelimit")
    );
    assert_eq!(call_as(&session, None, "echo").await?.status, 200);
    let refused = call_as(&session, None, "echo").await?;
    assert_eq!(refused.status, 429, "{}", refused.text);
    assert_eq!(refused.header("retry-after").as_deref(), Some("1"));
    assert!(
        refused
            .header("ratelimit")
            .is_some_and(|v| v.contains("r=0"))
    );
    let body = refused.json();
    assert_eq!(body["error"]["code"], -32029);
    assert_eq!(body["error"]["data"]["limit"], "calls");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("retry in 1 s"))
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        call_as(&session, None, "echo").await?.status,
        200,
        "the budget refills"
    );
    assert!(server.stderr().contains("rate limited"));
    Ok(())
}

#[tokio::test]
async fn budgets_are_per_principal_and_per_tool() -> anyhow::Result<()> {
    let server = Setup::new()
        .fixture("hostile")
        .config(
            "[limits]\ntool_calls_per_hour = 2\ntool_calls_burst = 2\n\
             [limits.tools.counter]\ncalls_per_hour = 1",
        )
        .start()
        .await?;
    // Budgets belong to the token's subject, whatever address it calls from.
    let token = |who: &str| {
        mint_token(
            &server.config_path,
            &server.data_dir,
            who,
            "read write",
            None,
        )
    };
    let (alice, bob) = (token("alice")?, token("bob")?);
    assert_eq!(call(&server, &alice, "counter").await?.status, 200);
    let refused = call(&server, &alice, "counter").await?;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.json()["error"]["data"]["limit"], "tool:counter");
    assert_eq!(
        call(&server, &alice, "echo").await?.status,
        200,
        "the tool budget is separate"
    );
    assert_eq!(
        call(&server, &alice, "echo").await?.status,
        429,
        "alice's shared budget is spent"
    );
    assert_eq!(
        call(&server, &bob, "echo").await?.status,
        200,
        "bob has his own"
    );
    Ok(())
}

#[tokio::test]
async fn forwarded_addresses_from_untrusted_peers_are_ignored() -> anyhow::Result<()> {
    let server = Setup::new()
        .fixture("hostile")
        .config("[limits]\ntool_calls_per_hour = 1\ntool_calls_burst = 1")
        .start()
        .await?;
    let session = server.session("2025-11-25").await?;
    assert_eq!(
        call_as(&session, Some("203.0.113.1"), "echo").await?.status,
        200
    );
    let spoofed = call_as(&session, Some("203.0.113.2"), "echo").await?;
    assert_eq!(
        spoofed.status, 429,
        "a forged X-Forwarded-For does not buy a new budget"
    );
    Ok(())
}

#[tokio::test]
async fn the_allowlist_refuses_other_addresses() -> anyhow::Result<()> {
    let server = Setup::new()
        .fixture("hostile")
        .config("[limits]\nallow_ips = [\"10.0.0.0/8\", \"::1/128\"]")
        .start()
        .await?;
    let refused = server
        .post_raw(
            &[],
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#,
        )
        .await?;
    assert_eq!(refused.status, 403);
    assert!(
        refused.json()["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("127.0.0.1 is not allowed"))
    );
    let forged = server
        .post_raw(
            &[("x-forwarded-for", "10.1.2.3")],
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#,
        )
        .await?;
    assert_eq!(
        forged.status, 403,
        "forwarding headers from an untrusted peer do not pass the allowlist"
    );
    Ok(())
}

#[tokio::test]
async fn trusted_proxies_pass_the_allowlist_for_their_clients() -> anyhow::Result<()> {
    let server = Setup::new()
        .fixture("hostile")
        .config("[limits]\nallow_ips = [\"10.0.0.0/8\"]\ntrusted_proxies = [\"127.0.0.1/32\"]")
        .start()
        .await?;
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25"}}"#;
    let inside = server
        .post_raw(&[("x-forwarded-for", "10.1.2.3")], body)
        .await?;
    assert_eq!(inside.status, 200, "{}", inside.text);
    let outside = server
        .post_raw(&[("x-forwarded-for", "192.0.2.1")], body)
        .await?;
    assert_eq!(outside.status, 403);
    Ok(())
}

/// Issue #12: a proxy appends `X-Forwarded-For` and passes the client's own
/// `Forwarded` header through untouched, so preferring `Forwarded` let any
/// client name its own address.
#[tokio::test]
async fn a_client_forged_forwarded_header_does_not_pass_the_allowlist() -> anyhow::Result<()> {
    let server = Setup::new()
        .fixture("hostile")
        .config("[limits]\nallow_ips = [\"10.9.9.9/32\"]\ntrusted_proxies = [\"127.0.0.1/32\"]")
        .start()
        .await?;
    let root = server.url.trim_end_matches("/mcp").to_string();
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25"}}"#;
    let proxied = [("x-forwarded-for", "203.0.113.5")];
    let forged = [
        ("x-forwarded-for", "203.0.113.5"),
        ("forwarded", "for=10.9.9.9"),
    ];
    assert_eq!(server.post_raw(&proxied, body).await?.status, 403);
    let mcp = server.post_raw(&forged, body).await?;
    assert_eq!(mcp.status, 403, "forged Forwarded on /mcp: {}", mcp.text);
    for (method, path) in [
        (reqwest::Method::GET, "/healthz"),
        (reqwest::Method::POST, "/register"),
    ] {
        let mut request = server
            .client
            .request(method, format!("{root}{path}"))
            .json(&json!({"redirect_uris": ["http://localhost:1/cb"]}));
        for (name, value) in forged {
            request = request.header(name, value);
        }
        let status = request.send().await?.status();
        assert_eq!(status, 403, "forged Forwarded on {path}");
    }
    eventually("the refusals are audited", || async {
        Ok(audit_text(&server).matches("203.0.113.5").count() >= 3)
    })
    .await?;
    let audit = audit_text(&server);
    assert!(
        !audit.contains("10.9.9.9"),
        "the audit log records the proxy's client, not the forged address:\n{audit}"
    );
    Ok(())
}

/// With `forwarded_header = "forwarded"` the standard header is the one
/// believed, and `X-Forwarded-For` is ignored, whatever it says.
#[tokio::test]
async fn the_operator_chooses_which_forwarding_header_is_believed() -> anyhow::Result<()> {
    let server = Setup::new()
        .fixture("hostile")
        .config("[limits]\nallow_ips = [\"10.9.9.9/32\"]\ntrusted_proxies = [\"127.0.0.1/32\"]\nforwarded_header = \"forwarded\"")
        .start()
        .await?;
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25"}}"#;
    let inside = server
        .post_raw(&[("forwarded", "for=10.9.9.9;proto=https")], body)
        .await?;
    assert_eq!(inside.status, 200, "{}", inside.text);
    let xff = server
        .post_raw(
            &[
                ("forwarded", "for=203.0.113.5"),
                ("x-forwarded-for", "10.9.9.9"),
            ],
            body,
        )
        .await?;
    assert_eq!(xff.status, 403, "X-Forwarded-For is not the chosen header");
    Ok(())
}

/// Issue #12: budgets and in-flight sign-ins were keyed per full IPv6
/// address, so one /64 (which any host has) had unlimited budget and could
/// fill the global tables for everyone.
#[tokio::test]
async fn ipv6_clients_share_a_budget_per_64() -> anyhow::Result<()> {
    let server = Setup::new()
        .config("[limits]\ntool_calls_per_hour = 0\nauth_requests_per_minute = 60\nauth_burst = 2\ntrusted_proxies = [\"127.0.0.1/32\"]")
        .start()
        .await?;
    let base = server.url.trim_end_matches("/mcp").to_string();
    let token = |client: &str| {
        server
            .client
            .post(format!("{base}/token"))
            .header("x-forwarded-for", client)
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", "th-nobody"),
            ])
            .send()
    };
    assert_eq!(token("2001:db8:1:2::1").await?.status(), 401);
    assert_eq!(token("2001:db8:1:2::2").await?.status(), 401);
    assert_eq!(
        token("2001:db8:1:2:ffff:ffff:ffff:ffff").await?.status(),
        429,
        "a third address in the same /64 finds the budget spent"
    );
    assert_eq!(
        token("2001:db8:1:3::1").await?.status(),
        401,
        "the next /64 has its own"
    );
    assert_eq!(token("192.0.2.1").await?.status(), 401);
    assert_eq!(token("192.0.2.1").await?.status(), 401);
    assert_eq!(
        token("192.0.2.2").await?.status(),
        401,
        "IPv4 budgets stay per address"
    );
    Ok(())
}

/// One address range cannot hold more than its share of the sign-ins in
/// progress, so it cannot fill the global table and lock everyone out.
#[tokio::test]
async fn one_range_cannot_fill_the_pending_sign_in_tables() -> anyhow::Result<()> {
    // Mirrors the server's per-range bound on pending flows.
    const PER_RANGE: usize = 100;
    let server = Setup::new()
        .config("[limits]\ntool_calls_per_hour = 0\nauth_requests_per_minute = 0\ntrusted_proxies = [\"127.0.0.1/32\"]")
        .start()
        .await?;
    let base = server.url.trim_end_matches("/mcp").to_string();
    let http = crate::harness::client_builder(&server.cert_path, None)?
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let client: serde_json::Value = http
        .post(format!("{base}/register"))
        .json(&json!({
            "redirect_uris": ["http://localhost:9/cb"],
            "grant_types": ["authorization_code", "urn:ietf:params:oauth:grant-type:device_code"],
            "token_endpoint_auth_method": "none",
        }))
        .send()
        .await?
        .json()
        .await?;
    let client_id = client["client_id"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no client_id in {client}"))?
        .to_string();
    let authorize = |from: String| {
        http.get(format!(
            "{base}/authorize?response_type=code&client_id={client_id}&redirect_uri=http%3A%2F%2Flocalhost%3A9%2Fcb&code_challenge={}&code_challenge_method=S256&state=x",
            "A".repeat(43)
        ))
        .header("x-forwarded-for", from)
        .send()
    };
    let device = |from: String| {
        http.post(format!("{base}/device_authorization"))
            .header("x-forwarded-for", from)
            .form(&[("client_id", client_id.as_str())])
            .send()
    };
    for i in 1..=PER_RANGE {
        let from = format!("2001:db8:1:2::{i:x}");
        assert_eq!(authorize(from.clone()).await?.status(), 200, "sign-in {i}");
        assert_eq!(device(from).await?.status(), 200, "device code {i}");
    }
    let from = "2001:db8:1:2:ffff::1".to_string();
    assert_eq!(
        authorize(from.clone()).await?.status(),
        503,
        "the /64 holds its share of pending sign-ins"
    );
    assert_eq!(
        device(from).await?.status(),
        503,
        "the /64 holds its share of device codes"
    );
    let elsewhere = "2001:db8:1:3::1".to_string();
    assert_eq!(authorize(elsewhere.clone()).await?.status(), 200);
    assert_eq!(device(elsewhere).await?.status(), 200);
    Ok(())
}

#[tokio::test]
async fn auth_endpoints_are_limited_per_address() -> anyhow::Result<()> {
    let server = Setup::new()
        .config("[limits]\ntool_calls_per_hour = 0\nauth_requests_per_minute = 60\nauth_burst = 3")
        .start()
        .await?;
    let base = server.url.trim_end_matches("/mcp").to_string();
    let token = |client: &str| {
        server
            .client
            .post(format!("{base}/token"))
            .form(&[("grant_type", "client_credentials"), ("client_id", client)])
            .send()
    };
    for _ in 0..3 {
        assert_eq!(token("th-nobody").await?.status(), 401, "within the burst");
    }
    let refused = token("th-nobody").await?;
    assert_eq!(refused.status(), 429);
    let wait: u64 = refused
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    let body: serde_json::Value = refused.json().await?;
    assert_eq!(body["error"], "too_many_requests");
    // Registration shares the address's budget; the documents and /mcp do not.
    let register = server
        .client
        .post(format!("{base}/register"))
        .json(&json!({"redirect_uris": ["http://localhost:1/cb"]}))
        .send()
        .await?;
    assert_eq!(register.status(), 429);
    let metadata = server
        .client
        .get(format!("{base}/.well-known/oauth-authorization-server"))
        .send()
        .await?;
    assert_eq!(metadata.status(), 200);
    let session = server.session("2025-11-25").await?;
    assert_eq!(
        session.request("ping", json!({})).await?["result"],
        json!({})
    );
    Ok(())
}

/// Every audit line the server has written so far.
fn audit_text(server: &Server) -> String {
    let mut text = String::new();
    if let Ok(entries) = std::fs::read_dir(server.data_dir.join("audit")) {
        for entry in entries.flatten() {
            text.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
        }
    }
    text
}

/// Replaces the server's config file atomically, as an operator should.
fn rewrite_config(server: &Server, text: &str) -> anyhow::Result<()> {
    let staging = server.config_path.with_extension("toml.tmp");
    std::fs::write(
        &staging,
        format!("{text}\n[metrics]\nlisten = \"127.0.0.1:0\"\n"),
    )?;
    std::fs::rename(&staging, &server.config_path)?;
    Ok(())
}

/// Polls `check` until it holds or 10 s pass.
async fn eventually<F, Fut>(what: &str, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let started = std::time::Instant::now();
    while !check().await? {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(10),
            "{what} never happened"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

#[tokio::test]
async fn limits_allowlist_and_rules_follow_the_config_file_live() -> anyhow::Result<()> {
    let server = Setup::new()
        .fixture("hostile")
        .config("[limits]\ntool_calls_per_hour = 0\nauth_requests_per_minute = 0")
        .start()
        .await?;
    let token = server.token.clone().expect("token");
    for _ in 0..3 {
        assert_eq!(call(&server, &token, "echo").await?.status, 200);
    }
    // A budget of one call: the second is refused once the file is read.
    rewrite_config(
        &server,
        "[limits]\ntool_calls_per_hour = 3600\ntool_calls_burst = 1\nauth_requests_per_minute = 0",
    )?;
    eventually("the new budget", || async {
        Ok(call(&server, &token, "echo").await?.status == 429)
    })
    .await?;
    assert!(audit_text(&server).contains("config_reloaded"));

    // A broken file changes nothing and is reported.
    std::fs::write(
        &server.config_path,
        "[limits]\ntool_calls_per_hour = \"many\"\n",
    )?;
    eventually("the refusal", || async {
        Ok(audit_text(&server).contains("config_rejected"))
    })
    .await?;
    assert_eq!(
        call(&server, &token, "echo").await?.status,
        429,
        "the previous budget still holds"
    );

    // Access rules and the allowlist change live too.
    rewrite_config(
        &server,
        "[limits]\ntool_calls_per_hour = 0\nauth_requests_per_minute = 0\n\
         [[auth.rules]]\neffect = \"deny\"\nplugin = \"hostile\"\ntools = [\"echo\"]\nsubjects = [\"e2e\"]",
    )?;
    eventually("the deny rule", || async {
        let reply = call(&server, &token, "echo").await?;
        Ok(reply.status == 403
            && reply
                .json()
                .to_string()
                .contains("denied by this server's policy"))
    })
    .await?;
    rewrite_config(
        &server,
        "[limits]\ntool_calls_per_hour = 0\nauth_requests_per_minute = 0\nallow_ips = [\"10.0.0.0/8\"]",
    )?;
    eventually("the allowlist", || async {
        let reply = call(&server, &token, "echo").await?;
        Ok(reply.status == 403
            && reply
                .json()
                .to_string()
                .contains("is not allowed to use this server"))
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_client_may_hold_only_so_many_event_streams() -> anyhow::Result<()> {
    let server = Setup::new()
        .fixture("hostile")
        .config("[mcp]\nmax_streams_per_client = 2")
        .start()
        .await?;
    let token = server.token.clone().expect("token");
    let listen = || {
        let body = json!({"jsonrpc": "2.0", "id": 5, "method": "subscriptions/listen", "params": {
            "notifications": {"toolsListChanged": true},
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientInfo": {"name": "e2e", "version": "1"},
                "io.modelcontextprotocol/clientCapabilities": {}
            }
        }});
        server
            .client
            .post(&server.url)
            .bearer_auth(&token)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "subscriptions/listen")
            .json(&body)
            .send()
    };
    let first = listen().await?;
    let second = listen().await?;
    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (200, 200)
    );
    let third = listen().await?;
    assert_eq!(third.status(), 429);
    let refusal: serde_json::Value = third.json().await?;
    assert!(
        refusal["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("2 open event streams")),
        "{refusal}"
    );
    // Closing one frees its place: the stream task ends with the connection.
    drop(first);
    eventually("a freed stream", || async {
        Ok(listen().await?.status() == 200)
    })
    .await?;
    drop(second);
    Ok(())
}
