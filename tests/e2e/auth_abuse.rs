//! Abuse of the embedded authorization server's anonymous endpoints:
//! registrations that fill the issuer state, per-address-range caps, dynamic
//! clients that expire when never used, and password guessing on the
//! sign-in and device pages.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::harness::{Server, Setup, client_builder, form_value, set_cookies};

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// A client that sends no token and follows no redirects.
fn anonymous(server: &Server) -> anyhow::Result<reqwest::Client> {
    Ok(client_builder(&server.cert_path, None)?
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()?)
}

fn base(server: &Server) -> String {
    server.url.trim_end_matches("/mcp").to_string()
}

/// `POST /register` as if from `from` (via the trusted proxy on loopback).
async fn register_from(
    server: &Server,
    from: Option<&str>,
    body: Value,
) -> anyhow::Result<(u16, Value)> {
    let mut request = anonymous(server)?
        .post(format!("{}/register", base(server)))
        .json(&body);
    if let Some(address) = from {
        request = request.header("x-forwarded-for", address);
    }
    let res = request.send().await?;
    let status = res.status().as_u16();
    Ok((status, res.json().await.unwrap_or(Value::Null)))
}

async fn register(server: &Server, body: Value) -> anyhow::Result<(u16, Value)> {
    register_from(server, None, body).await
}

fn public_client(redirect: &str) -> Value {
    json!({"redirect_uris": [redirect], "token_endpoint_auth_method": "none",
           "grant_types": ["authorization_code", "refresh_token"]})
}

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn authorize_url(server: &Server, client_id: &str, verifier: &str) -> String {
    format!(
        "{}/authorize?response_type=code&client_id={client_id}&redirect_uri=http%3A%2F%2Flocalhost%3A9%2Fcb&code_challenge={}&code_challenge_method=S256&state=s",
        base(server),
        challenge(verifier)
    )
}

/// Security events of type `kind` in the server's audit log.
fn audit_events(data_dir: &Path, kind: &str) -> Vec<Value> {
    let mut files: Vec<_> = std::fs::read_dir(data_dir.join("audit"))
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .collect::<Vec<_>>()
        })
        .filter(|r| r["type"] == kind)
        .collect()
}

/// Waits (bounded) for the audit writer to have written a `kind` event.
async fn wait_for_event(data_dir: &Path, kind: &str) -> anyhow::Result<Vec<Value>> {
    let started = Instant::now();
    loop {
        let found = audit_events(data_dir, kind);
        if !found.is_empty() {
            return Ok(found);
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(20),
            "no {kind} event in the audit log"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn oversized_registrations_are_refused_naming_the_limit() -> anyhow::Result<()> {
    let server = Setup::new().start().await?;
    let many: Vec<String> = (0..11)
        .map(|i| format!("http://localhost:{}/cb", 1000 + i))
        .collect();
    let long_uri = format!("https://app.example/{}", "a".repeat(2000));
    let refusals = [
        (
            json!({"redirect_uris": many, "token_endpoint_auth_method": "none"}),
            "at most 10 redirect_uris",
        ),
        (public_client(&long_uri), "512 bytes"),
        (
            json!({"redirect_uris": ["http://localhost:9/cb"], "token_endpoint_auth_method": "none",
                   "client_name": "n".repeat(1000)}),
            "200 characters",
        ),
    ];
    for (request, limit) in refusals {
        let (status, body) = register(&server, request).await?;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"], "invalid_client_metadata", "{body}");
        let description = body["error_description"].as_str().unwrap_or_default();
        assert!(description.contains(limit), "{limit:?} in {description:?}");
    }
    // Within the limits, registration works as before.
    let (status, body) = register(
        &server,
        json!({"redirect_uris": ["http://localhost:9/cb", "https://app.example/cb"],
               "token_endpoint_auth_method": "none", "client_name": "n".repeat(200)}),
    )
    .await?;
    assert_eq!(status, 201, "{body}");
    Ok(())
}

#[tokio::test]
async fn registrations_are_capped_per_address_range() -> anyhow::Result<()> {
    let server = Setup::new()
        .config(
            "[auth]\nmax_clients_per_range = 3\n\
             [limits]\ntool_calls_per_hour = 0\nauth_requests_per_minute = 0\n\
             trusted_proxies = [\"127.0.0.1/32\"]",
        )
        .start()
        .await?;
    let client = public_client("http://localhost:9/cb");
    // IPv4 ranges are single addresses; IPv6 ranges are /64 prefixes.
    for (full, neighbour, other) in [
        ("203.0.113.7", "203.0.113.7", "203.0.113.8"),
        ("2001:db8:1:2::1", "2001:db8:1:2:ffff::9", "2001:db8:1:3::1"),
    ] {
        for _ in 0..3 {
            let (status, body) = register_from(&server, Some(full), client.clone()).await?;
            assert_eq!(status, 201, "{full}: {body}");
        }
        let (status, body) = register_from(&server, Some(neighbour), client.clone()).await?;
        assert_eq!(status, 429, "{neighbour} is in {full}'s range: {body}");
        assert_eq!(body["error"], "temporarily_unavailable", "{body}");
        assert!(
            body["error_description"]
                .as_str()
                .is_some_and(|d| d.contains("at most 3")),
            "{body}"
        );
        let (status, body) = register_from(&server, Some(other), client.clone()).await?;
        assert_eq!(status, 201, "{other} is another range: {body}");
    }
    Ok(())
}

#[tokio::test]
async fn dynamic_clients_that_never_sign_in_expire() -> anyhow::Result<()> {
    let server = Setup::new()
        .config("[auth]\ndynamic_client_unused_ttl = \"2s\"")
        .start()
        .await?;
    let password = server.admin_password()?;
    let client = public_client("http://localhost:9/cb");
    let (_, used) = register(&server, client.clone()).await?;
    let (_, unused) = register(&server, client.clone()).await?;
    let registered = Instant::now();
    let used = used["client_id"].as_str().context("client_id")?.to_string();
    let unused = unused["client_id"]
        .as_str()
        .context("client_id")?
        .to_string();

    // One client completes a sign-in; the other never does.
    let verifier = format!("expiry-{}", "v".repeat(50));
    let location = server
        .sign_in(
            &authorize_url(&server, &used, &verifier),
            "admin",
            &password,
        )
        .await?;
    let code = location
        .split_once("code=")
        .and_then(|(_, rest)| rest.split('&').next())
        .context("code")?
        .to_string();
    let http = anonymous(&server)?;
    let tokens: Value = http
        .post(format!("{}/token", base(&server)))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://localhost:9/cb"),
            ("code_verifier", &verifier),
            ("client_id", &used),
        ])
        .send()
        .await?
        .json()
        .await?;
    let refresh = tokens["refresh_token"]
        .as_str()
        .context("refresh_token")?
        .to_string();

    // Time is what expires them: wait out the 2 s.
    tokio::time::sleep(Duration::from_secs(3).saturating_sub(registered.elapsed())).await;
    let page = http
        .get(authorize_url(&server, &unused, &verifier))
        .send()
        .await?;
    assert_eq!(page.status(), 400);
    assert!(page.text().await?.contains("not registered"));
    let page = http
        .get(authorize_url(&server, &used, &verifier))
        .send()
        .await?;
    let status = page.status();
    assert_eq!(
        status,
        200,
        "a client that signed in stays: {}",
        page.text().await?
    );
    let refreshed = http
        .post(format!("{}/token", base(&server)))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", &used),
        ])
        .send()
        .await?;
    let status = refreshed.status();
    assert_eq!(status, 200, "{}", refreshed.text().await?);

    // The next registration sweeps it out of the state database.
    let (status, _) = register(&server, client).await?;
    assert_eq!(status, 201);
    let stored = server.client_ids()?;
    assert!(!stored.contains(&unused), "expired client still stored");
    assert!(stored.contains(&used), "{stored:?}");
    Ok(())
}

/// Submits the device approval page for `user_code` with `user`/`password`.
async fn approve_device(
    server: &Server,
    user_code: &str,
    user: &str,
    password: &str,
) -> anyhow::Result<(u16, Option<String>, String)> {
    let http = anonymous(server)?;
    let root = base(server);
    let page = http
        .get(format!("{root}/device?user_code={user_code}"))
        .send()
        .await?;
    if page.status() != 200 {
        return Ok((page.status().as_u16(), None, page.text().await?));
    }
    let cookies = set_cookies(&page).join("; ");
    let html = page.text().await?;
    let csrf = form_value(&html, "csrf").context("csrf")?;
    submit_device(server, &cookies, user_code, &csrf, user, password).await
}

async fn submit_device(
    server: &Server,
    cookies: &str,
    user_code: &str,
    csrf: &str,
    user: &str,
    password: &str,
) -> anyhow::Result<(u16, Option<String>, String)> {
    let res = anonymous(server)?
        .post(format!("{}/device", base(server)))
        .header("cookie", cookies)
        .form(&[
            ("user_code", user_code),
            ("csrf", csrf),
            ("username", user),
            ("password", password),
            ("action", "allow"),
        ])
        .send()
        .await?;
    let status = res.status().as_u16();
    let retry = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    Ok((status, retry, res.text().await?))
}

async fn start_device(server: &Server, client_id: &str) -> anyhow::Result<(String, String)> {
    let started: Value = anonymous(server)?
        .post(format!("{}/device_authorization", base(server)))
        .form(&[("client_id", client_id), ("scope", "read")])
        .send()
        .await?
        .json()
        .await?;
    Ok((
        started["device_code"]
            .as_str()
            .context("device_code")?
            .to_string(),
        started["user_code"]
            .as_str()
            .context("user_code")?
            .to_string(),
    ))
}

#[tokio::test]
async fn password_guessing_on_the_device_page_is_throttled() -> anyhow::Result<()> {
    // The default budget: five failures in a row.
    let server = Setup::new().start().await?;
    let password = server.admin_password()?;
    let (_, client) = register(
        &server,
        json!({"grant_types": [DEVICE_GRANT], "token_endpoint_auth_method": "none"}),
    )
    .await?;
    let client_id = client["client_id"].as_str().context("client_id")?;

    // One device code allows a few guesses, then it is spent, whoever guesses.
    let (device_code, user_code) = start_device(&server, client_id).await?;
    let http = anonymous(&server)?;
    let page = http
        .get(format!("{}/device?user_code={user_code}", base(&server)))
        .send()
        .await?;
    let cookies = set_cookies(&page).join("; ");
    let csrf = form_value(&page.text().await?, "csrf").context("csrf")?;
    for attempt in 1..=5 {
        let (status, _, html) = submit_device(
            &server,
            &cookies,
            &user_code,
            &csrf,
            &format!("guess-{attempt}"),
            "wrong",
        )
        .await?;
        let expected = if attempt < 5 { 401 } else { 403 };
        assert_eq!(status, expected, "attempt {attempt}: {html}");
    }
    let (status, _, html) =
        submit_device(&server, &cookies, &user_code, &csrf, "admin", &password).await?;
    assert_eq!(status, 404, "the spent code approves nothing: {html}");
    let polled: Value = http
        .post(format!("{}/token", base(&server)))
        .form(&[
            ("grant_type", DEVICE_GRANT),
            ("device_code", &device_code),
            ("client_id", client_id),
        ])
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(polled["error"], "expired_token", "{polled}");

    // Guesses at one account across fresh device codes: after five the
    // account backs off, and even its right password is refused for now.
    for attempt in 1..=5 {
        let (_, user_code) = start_device(&server, client_id).await?;
        let (status, _, html) = approve_device(&server, &user_code, "admin", "wrong").await?;
        let expected = if attempt < 5 { 401 } else { 429 };
        assert_eq!(status, expected, "attempt {attempt}: {html}");
    }
    let (_, user_code) = start_device(&server, client_id).await?;
    let (status, retry, html) = approve_device(&server, &user_code, "admin", &password).await?;
    assert_eq!(status, 429, "{html}");
    assert!(html.contains("Too many failed sign-ins"), "{html}");
    assert!(retry.is_some_and(|s| s.parse::<u64>().is_ok_and(|s| s > 0)));

    let events = wait_for_event(&server.data_dir, "sign_in_throttled").await?;
    assert_eq!(events[0]["actor"]["user"]["uid"], "admin", "{}", events[0]);
    Ok(())
}

#[tokio::test]
async fn password_guessing_across_sign_in_flows_is_throttled() -> anyhow::Result<()> {
    // The default budget: five failures in a row.
    let server = Setup::new().start().await?;
    let password = server.admin_password()?;
    let (_, client) = register(&server, public_client("http://localhost:9/cb")).await?;
    let client_id = client["client_id"].as_str().context("client_id")?;
    let verifier = format!("guess-{}", "v".repeat(50));
    let url = authorize_url(&server, client_id, &verifier);

    // A fresh flow for every guess does not reset the account's budget.
    for attempt in 1..=5 {
        let refused = server
            .sign_in(&url, "admin", "wrong")
            .await
            .err()
            .context("a wrong password signs in")?
            .to_string();
        let expected = if attempt < 5 { "401" } else { "429" };
        assert!(refused.contains(expected), "attempt {attempt}: {refused}");
    }
    let refused = server
        .sign_in(&url, "admin", &password)
        .await
        .err()
        .context("the right password was accepted during the backoff")?
        .to_string();
    assert!(
        refused.contains("429") && refused.contains("Too many failed sign-ins"),
        "{refused}"
    );
    let events = wait_for_event(&server.data_dir, "sign_in_throttled").await?;
    assert_eq!(events[0]["actor"]["user"]["uid"], "admin", "{}", events[0]);
    Ok(())
}
