//! The state database: two servers on one data dir (the embedded SQLite
//! engine) lose no registration, and a data dir written by the release
//! before the database keeps its clients and sign-ins.

use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::harness::{Server, Setup, client_builder, scratch_dir};

fn base(server: &Server) -> String {
    server.url.trim_end_matches("/mcp").to_string()
}

fn anonymous(server: &Server) -> anyhow::Result<reqwest::Client> {
    Ok(client_builder(&server.cert_path, None)?
        .timeout(Duration::from_secs(60))
        .build()?)
}

async fn token(server: &Server, form: &[(&str, &str)]) -> anyhow::Result<(u16, Value)> {
    let res = anonymous(server)?
        .post(format!("{}/token", base(server)))
        .form(form)
        .send()
        .await?;
    let status = res.status().as_u16();
    Ok((status, res.json().await.unwrap_or(Value::Null)))
}

/// Each replica writes its own audit chain; two on one data dir would
/// interleave one file.
fn replica(data_dir: &std::path::Path, name: &str) -> Setup {
    let audit = scratch_dir(&format!("audit-{name}"));
    Setup::new()
        .data_dir(data_dir.to_path_buf())
        .config("[auth]\nmax_clients_per_range = 0\n")
        .env("TOOLHOST_AUDIT__DIR", &audit.display().to_string())
}

/// `count` dynamic registrations at once, spread over `servers` in turn;
/// each must be answered 201. Returns the client ids.
async fn register_concurrently(servers: &[&Server], count: usize) -> anyhow::Result<Vec<String>> {
    let clients = servers
        .iter()
        .map(|s| anonymous(s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let registrations = (0..count).map(|i| {
        let server = servers[i % servers.len()];
        let request = clients[i % servers.len()]
            .post(format!("{}/register", base(server)))
            .json(&json!({
                "redirect_uris": [format!("http://127.0.0.1:9/cb{i}")],
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"],
                "client_name": format!("racer {i}"),
            }));
        async move {
            let res = request.send().await?;
            let status = res.status().as_u16();
            let body: Value = res.json().await?;
            anyhow::ensure!(status == 201, "registration {i}: {status} {body}");
            anyhow::Ok(body["client_id"].as_str().unwrap_or_default().to_string())
        }
    });
    futures::future::join_all(registrations)
        .await
        .into_iter()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_data_dir_lose_no_registration() -> anyhow::Result<()> {
    let data_dir = scratch_dir("shared-data");
    let a = replica(&data_dir, "a").start().await?;
    let b = replica(&data_dir, "b").start().await?;
    let registered = register_concurrently(&[&a, &b], 80).await?;
    let stored = a.client_ids()?;
    let lost: Vec<&String> = registered
        .iter()
        .filter(|id| !stored.contains(id))
        .collect();
    assert!(lost.is_empty(), "registered but not stored: {lost:?}");
    assert_eq!(stored.len(), 80, "{stored:?}");
    Ok(())
}

/// `auth/state.json` as the release before the state database wrote it: an
/// operator's client and a sign-in of `admin` (who exists: the first start
/// creates them) with a known refresh token.
fn state_file(client_secret: &str, refresh_secret: &str) -> Value {
    let digest = |secret: &str| hex::encode(Sha256::digest(secret.as_bytes()));
    json!({
        "clients": {
            "th-ops": {
                "client_id": "th-ops",
                "client_name": "ops",
                "secret_sha256": digest(client_secret),
                "redirect_uris": [],
                "grant_types": ["client_credentials"],
                "scope": "read write",
                "token_endpoint_auth_method": "client_secret_basic",
                "created": 1_700_000_000u64,
                "dynamic": false
            },
            "th-app": {
                "client_id": "th-app",
                "client_name": "app",
                "secret_sha256": null,
                "redirect_uris": ["http://127.0.0.1:9/cb"],
                "grant_types": ["authorization_code", "refresh_token"],
                "scope": "read write",
                "token_endpoint_auth_method": "none",
                "created": 1_700_000_000u64,
                "dynamic": true,
                "registered_from": "127.0.0.1"
            }
        },
        "families": {
            "fam0": {
                "client_id": "th-app",
                "subject": "admin",
                "scopes": ["read"],
                "groups": [],
                "expires": 4_000_000_000u64,
                "current_sha256": digest(refresh_secret)
            }
        },
        "consents": { "admin": { "th-app": ["read"] } }
    })
}

#[tokio::test]
async fn a_data_dir_from_the_last_release_keeps_its_clients_and_sign_ins() -> anyhow::Result<()> {
    let data_dir = scratch_dir("upgraded-data");
    // The first start lays out the data dir; then the server stops, the
    // database goes, an "old release" state file and users file appear,
    // and the next start imports both.
    let mut first = Setup::new().data_dir(data_dir.clone()).start().await?;
    first.kill();
    let _ = std::fs::remove_file(data_dir.join("toolhost.db"));
    let _ = std::fs::remove_file(data_dir.join("toolhost.db-wal"));
    let _ = std::fs::remove_file(data_dir.join("toolhost.db-shm"));
    let (client_secret, refresh_secret) = ("s3cret-of-ops", "r3fresh-of-admin");
    std::fs::write(
        data_dir.join("auth/state.json"),
        serde_json::to_vec_pretty(&state_file(client_secret, refresh_secret))?,
    )?;
    std::fs::write(
        data_dir.join("auth/users.toml"),
        "[[users]]\nname = \"admin\"\n\
         password = \"$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2f5ZIeKpKCxYQkKfu4bqbrBqmcRAaFIPLEzwRxqcVwA\"\n\
         groups = [\"dev\"]\n",
    )?;
    let server = Setup::new()
        .data_dir(data_dir.clone())
        .bundled("devtools")
        .start()
        .await?;
    assert!(!data_dir.join("auth/state.json").exists());
    assert!(data_dir.join("auth/state.json.imported").exists());
    assert!(data_dir.join("auth/users.toml.imported").exists());
    assert!(
        server.admin_password().is_err(),
        "the imported admin is kept, not replaced by a new one"
    );

    let (status, body) = token(
        &server,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "th-ops"),
            ("client_secret", client_secret),
        ],
    )
    .await?;
    assert_eq!(status, 200, "the operator's client still works: {body}");
    let access = body["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let reply = server
        .stateless_as(&access, "tools/list", json!({}))
        .await?;
    assert_eq!(reply.status, 200, "{}", reply.text);

    let refresh = format!("fam0.{refresh_secret}");
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
        ("client_id", "th-app"),
    ];
    let (status, body) = token(&server, &form).await?;
    assert_eq!(status, 200, "the sign-in still refreshes: {body}");
    let payload = body["access_token"]
        .as_str()
        .and_then(|t| t.split('.').nth(1))
        .unwrap_or_default();
    let claims: Value = serde_json::from_slice(&base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        payload,
    )?)?;
    assert_eq!(
        claims["groups"],
        json!(["dev"]),
        "the imported user's groups"
    );
    assert!(
        body["refresh_token"]
            .as_str()
            .is_some_and(|t| t.starts_with("fam0."))
    );
    // Rotation carried on from the imported family: the old token is now
    // reuse, which ends the sign-in.
    let (status, body) = token(&server, &form).await?;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    let ids = server.client_ids()?;
    assert!(ids.contains(&"th-ops".to_string()) && ids.contains(&"th-app".to_string()));
    Ok(())
}

/// Two replicas, each with its own data dir, sharing one PostgreSQL (the
/// test's own server). They start together on an empty database (the
/// schema migrates once, under the lock); each verifies the other's
/// tokens (one key ring); registrations spread over both are all kept; of
/// 50 parallel refreshes of one token spread over both, exactly one
/// succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_postgres_register_and_rotate_as_one() -> anyhow::Result<()> {
    let postgres = toolhost_testbed::Postgres::start()?;
    let url = postgres.url();
    let (dir_a, dir_b) = (scratch_dir("pg-replica-a"), scratch_dir("pg-replica-b"));
    // Replica A brings a sign-in from the release before the database.
    let refresh_secret = "r3fresh-across-replicas";
    std::fs::create_dir_all(dir_a.join("auth"))?;
    std::fs::write(
        dir_a.join("auth/state.json"),
        serde_json::to_vec(&state_file("unused", refresh_secret))?,
    )?;
    // One public URL, as behind a balancer: one issuer, one audience.
    let replica = |dir: &std::path::Path| {
        Setup::new()
            .data_dir(dir.to_path_buf())
            .config(
                "[server]\npublic_url = \"https://127.0.0.1:7443\"\n\
                 [auth]\nmax_clients_per_range = 0\n",
            )
            .env("TOOLHOST_CLUSTER__POSTGRES_URL", &url)
    };
    let (a, b) = tokio::join!(replica(&dir_a).start(), replica(&dir_b).start());
    let (a, b) = (a?, b?);
    // One key ring: a token signed by either replica is good on both.
    for (signer, verifier) in [(&a, &b), (&b, &a)] {
        let token = signer.token.as_deref().unwrap_or_default();
        let reply = verifier
            .stateless_as(token, "tools/list", json!({}))
            .await?;
        assert_eq!(reply.status, 200, "{}", reply.text);
    }
    let (http_a, http_b) = (anonymous(&a)?, anonymous(&b)?);
    let pick = |i: usize| {
        if i.is_multiple_of(2) {
            (&http_a, &a)
        } else {
            (&http_b, &b)
        }
    };

    let registered = register_concurrently(&[&a, &b], 60).await?;
    let stored = b.client_ids()?;
    let lost: Vec<&String> = registered
        .iter()
        .filter(|id| !stored.contains(id))
        .collect();
    assert!(lost.is_empty(), "registered but not stored: {lost:?}");
    assert!(
        stored.contains(&"th-app".to_string()),
        "A's import is B's too"
    );

    let refresh = format!("fam0.{refresh_secret}");
    let refreshes = (0..50).map(|i| {
        let (http, server) = pick(i);
        let request = http.post(format!("{}/token", base(server))).form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
            ("client_id", "th-app"),
        ]);
        async move { anyhow::Ok(request.send().await?.status().as_u16()) }
    });
    let statuses: Vec<u16> = futures::future::join_all(refreshes)
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let succeeded = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(succeeded, 1, "{statuses:?}");
    assert!(
        statuses.iter().all(|s| matches!(s, 200 | 400)),
        "{statuses:?}"
    );
    Ok(())
}

/// PostgreSQL lost mid-run: `/readyz` says so (503) while `/healthz` stays
/// 200, registration fails with a clear server error instead of hanging,
/// and all of it recovers by itself when the database is back.
#[tokio::test]
async fn losing_postgres_is_reported_and_recovered_from() -> anyhow::Result<()> {
    let postgres = toolhost_testbed::Postgres::start()?;
    let server = Setup::new()
        .env("TOOLHOST_CLUSTER__POSTGRES_URL", &postgres.url())
        .start()
        .await?;
    let http = anonymous(&server)?;
    let probe = |path: &'static str| {
        let request = http.get(format!("{}{path}", base(&server)));
        async move {
            let res = request.send().await?;
            let status = res.status().as_u16();
            anyhow::Ok((status, res.text().await?))
        }
    };
    let register = || {
        http.post(format!("{}/register", base(&server)))
            .json(&json!({"redirect_uris": ["http://127.0.0.1:9/cb"],
                          "token_endpoint_auth_method": "none"}))
            .send()
    };
    assert_eq!(probe("/readyz").await?.0, 200);

    postgres.kill()?;
    let (status, body) = probe("/readyz").await?;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("state database"), "{body}");
    assert_eq!(probe("/healthz").await?.0, 200, "liveness is not readiness");
    let started = std::time::Instant::now();
    let refused = register().await?;
    assert!(refused.status().is_server_error(), "{}", refused.status());
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "a lost database must fail requests, not hang them: {:?}",
        started.elapsed()
    );

    postgres.restart()?;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = probe("/readyz").await?;
        if status == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not ready again: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(register().await?.status().as_u16(), 201);
    Ok(())
}

/// Two servers on one data dir write one audit directory: the second with
/// the first's chain is refused at start (its lines would interleave the
/// chain beyond verifying); named replicas each write their own chain, and
/// `audit verify` checks every chain in the directory.
#[tokio::test]
async fn replicas_sharing_an_audit_dir_each_keep_a_chain() -> anyhow::Result<()> {
    let data_dir = scratch_dir("shared-audit");
    let first = Setup::new().data_dir(data_dir.clone()).start().await?;
    let refused = Setup::new().data_dir(data_dir.clone()).start().await;
    let err = refused.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("cluster.replica_id"), "{err}");
    drop(first);

    let a = Setup::new()
        .data_dir(data_dir.clone())
        .env("TOOLHOST_CLUSTER__REPLICA_ID", "pod-a")
        .start()
        .await?;
    let b = Setup::new()
        .data_dir(data_dir.clone())
        .env("TOOLHOST_CLUSTER__REPLICA_ID", "pod-b")
        .start()
        .await?;
    for server in [&a, &b] {
        let token = server.token.as_deref().unwrap_or_default();
        let reply = server.stateless_as(token, "tools/list", json!({})).await?;
        assert_eq!(reply.status, 200, "{}", reply.text);
    }
    drop((a, b));
    let out = std::process::Command::new(crate::harness::toolhost_bin())
        .args(["audit", "verify"])
        .arg(data_dir.join("audit"))
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for chain in ["chain (unnamed)", "chain pod-a", "chain pod-b"] {
        assert!(text.contains(chain), "{chain} missing from:\n{text}");
    }
    Ok(())
}

/// A tool call as `token`'s holder.
async fn call(server: &Server, token: &str) -> anyhow::Result<crate::harness::Reply> {
    server
        .stateless_as(
            token,
            "tools/call",
            json!({"name": "echo", "arguments": {"text": "x"}}),
        )
        .await
}

/// Three replicas behind one address share PostgreSQL and Redis: a budget
/// of 10 calls an hour lets exactly 10 through, whichever replicas serve
/// them (per-process budgets would let 30 through).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_spend_one_budget() -> anyhow::Result<()> {
    let (postgres, redis) = (
        toolhost_testbed::Postgres::start()?,
        toolhost_testbed::Redis::start()?,
    );
    let replica = || {
        Setup::new()
            .fixture("hostile")
            .config(
                "[server]\npublic_url = \"https://127.0.0.1:7443\"\n\
                 [limits]\ntool_calls_per_hour = 10\ntool_calls_burst = 10\n",
            )
            .env("TOOLHOST_CLUSTER__POSTGRES_URL", &postgres.url())
            .env("TOOLHOST_CLUSTER__REDIS_URL", &redis.url())
    };
    let (a, b, c) = tokio::join!(replica().start(), replica().start(), replica().start());
    let replicas = [a?, b?, c?];
    let token = replicas[0].token.clone().unwrap_or_default();
    let mut statuses = Vec::new();
    for i in 0..16 {
        statuses.push(call(&replicas[i % 3], &token).await?.status);
    }
    let allowed = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(allowed, 10, "{statuses:?}");
    assert!(
        statuses.iter().all(|s| matches!(s, 200 | 429)),
        "{statuses:?}"
    );
    let refused = call(&replicas[1], &token).await?;
    assert_eq!(
        refused.json()["error"]["data"]["limit"],
        "calls",
        "{}",
        refused.text
    );
    Ok(())
}

/// Redis lost mid-run: `/readyz` says so; with `on_redis_down = "deny"`
/// calls are refused, with `local` they are answered from the replica's own
/// budgets and counted; both recover by themselves when Redis is back.
#[tokio::test]
async fn losing_redis_follows_the_operators_choice() -> anyhow::Result<()> {
    let (postgres, redis) = (
        toolhost_testbed::Postgres::start()?,
        toolhost_testbed::Redis::start()?,
    );
    let server = |on_down: &str| {
        Setup::new()
            .fixture("hostile")
            .config(&format!(
                "[cluster]\non_redis_down = \"{on_down}\"\n\
                 [limits]\ntool_calls_per_hour = 1000\ntool_calls_burst = 1000\n"
            ))
            .env("TOOLHOST_CLUSTER__POSTGRES_URL", &postgres.url())
            .env("TOOLHOST_CLUSTER__REDIS_URL", &redis.url())
            .start()
    };
    let (deny, local) = (server("deny").await?, server("local").await?);
    let (deny_token, local_token) = (
        deny.token.clone().unwrap_or_default(),
        local.token.clone().unwrap_or_default(),
    );
    let http = anonymous(&deny)?;
    let ready = |server: &Server| {
        let request = http.get(format!("{}/readyz", base(server)));
        async move { anyhow::Ok(request.send().await?.status().as_u16()) }
    };
    assert_eq!(call(&deny, &deny_token).await?.status, 200);
    assert_eq!(ready(&deny).await?, 200);

    redis.kill();
    let started = std::time::Instant::now();
    let refused = call(&deny, &deny_token).await?;
    assert_eq!(refused.status, 429, "{}", refused.text);
    assert_eq!(
        refused.json()["error"]["data"]["limit"],
        "shared-budgets-unavailable",
        "{}",
        refused.text
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        call(&local, &local_token).await?.status,
        200,
        "local budgets answer"
    );
    assert_eq!(ready(&deny).await?, 503);
    let metrics_url = local.metrics_url.clone().unwrap_or_default();
    let metrics = reqwest::get(&metrics_url).await?.text().await?;
    let fallbacks = metrics
        .lines()
        .find_map(|l| l.strip_prefix("toolhost_shared_budget_fallbacks_total "))
        .and_then(|n| n.trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(fallbacks >= 1.0, "no fallback counted:\n{metrics}");

    redis.restart()?;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while call(&deny, &deny_token).await?.status != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "calls did not recover"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(ready(&deny).await?, 200);
    Ok(())
}

/// A session-era client keeps its session whichever replica serves it: the
/// id is sealed with the deployment's key, so a replica that never saw it
/// takes it up, also after the replica it started on is killed; a session
/// ended on one replica is refused by the others within seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_goes_on_on_any_replica() -> anyhow::Result<()> {
    let postgres = toolhost_testbed::Postgres::start()?;
    let replica = || {
        Setup::new()
            .fixture("hostile")
            .config("[server]\npublic_url = \"https://127.0.0.1:7443\"\n")
            .env("TOOLHOST_CLUSTER__POSTGRES_URL", &postgres.url())
    };
    let (a, b, c) = tokio::join!(replica().start(), replica().start(), replica().start());
    let (mut a, b, c) = (a?, b?, c?);
    let opened = a.session("2025-11-25").await?;
    let (id, version) = (opened.id.clone(), opened.version.clone());
    drop(opened);
    let on = |server| crate::harness::Session {
        server,
        id: id.clone(),
        version: version.clone(),
    };
    let echoed = on(&b).call("echo", json!({"text": "from b"})).await?;
    assert_eq!(echoed["result"]["isError"], false, "{echoed}");

    a.kill();
    let listed = on(&c).request("tools/list", json!({})).await?;
    assert!(
        listed["result"]["tools"]
            .as_array()
            .is_some_and(|t| !t.is_empty()),
        "{listed}"
    );
    let again = on(&b)
        .call("echo", json!({"text": "after the kill"}))
        .await?;
    assert_eq!(again["result"]["isError"], false, "{again}");

    // Ended on B; C took the session up earlier and lets go of it once it
    // has read the deployment's ended sessions.
    let ended = b
        .client
        .delete(&b.url)
        .header("mcp-session-id", &id)
        .header("mcp-protocol-version", &version)
        .send()
        .await?;
    assert_eq!(ended.status().as_u16(), 204);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let reply = on(&c)
            .post(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
            .await?;
        if reply.status == 404 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "C still serves an ended session"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(())
}

/// What a client sends in a session reaches the replica it is for, though
/// a balancer hands it to another: the answer to a running call's question,
/// a cancellation, and the log level (to the replicas holding the session
/// now, and to one that takes it up later). Over Redis pub/sub, or over
/// PostgreSQL `NOTIFY` for a cluster without Redis.
async fn messages_reach_the_replica_they_are_for(
    postgres: &toolhost_testbed::Postgres,
    redis: Option<&toolhost_testbed::Redis>,
) -> anyhow::Result<()> {
    let replica = || {
        let setup = Setup::new()
            .fixture("conformance")
            .fixture("hostile")
            .config(
                "[server]\npublic_url = \"https://127.0.0.1:7443\"\n\
                 [plugins.limits]\ndeadline_ms = 20000\n",
            )
            .env("TOOLHOST_CLUSTER__POSTGRES_URL", &postgres.url());
        match redis {
            Some(redis) => setup.env("TOOLHOST_CLUSTER__REDIS_URL", &redis.url()),
            None => setup,
        }
    };
    let (a, b, c) = tokio::join!(replica().start(), replica().start(), replica().start());
    let (a, b, c) = (a?, b?, c?);
    let opened = a
        .session_with("2025-11-25", json!({"elicitation": {}}))
        .await?;
    let on = |server| crate::harness::Session {
        server,
        id: opened.id.clone(),
        version: opened.version.clone(),
    };

    // The log level, set on B, holds on A (which started the session) and
    // on C (which takes it up afterwards).
    let set = on(&b)
        .request("logging/setLevel", json!({"level": "warning"}))
        .await?;
    assert!(set.get("result").is_some(), "{set}");
    let log_call =
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "log"}});
    for server in [&a, &c] {
        let reply = on(server).post(log_call.clone()).await?;
        let levels: Vec<Value> = reply
            .messages()
            .iter()
            .filter(|m| m["method"] == "notifications/message")
            .map(|m| m["params"]["level"].clone())
            .collect();
        assert_eq!(
            levels,
            vec![json!("warning"), json!("error")],
            "{}",
            reply.text
        );
    }

    // A's call asks a question; the answer lands on B.
    let call = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
        "params": {"name": "test_elicitation", "arguments": {"message": "Who are you?"}}});
    let mut events = opened.stream(call).await?;
    let question = events
        .next()
        .await?
        .ok_or_else(|| anyhow::anyhow!("no question"))?;
    assert_eq!(question["method"], "elicitation/create", "{question}");
    let answer = json!({"jsonrpc": "2.0", "id": question["id"],
        "result": {"action": "accept", "content": {"username": "ada", "email": "ada@example.com"}}});
    assert_eq!(on(&b).post(answer).await?.status, 202);
    let result = events.answer_to(&json!(5)).await?;
    assert!(
        result["result"]["content"][0]["text"]
            .as_str()
            .is_some_and(|t| t.contains("ada@example.com")),
        "{result}"
    );

    // A runs a call; its cancellation lands on C.
    let started = std::time::Instant::now();
    let spin = opened.post(json!({
        "jsonrpc": "2.0", "id": "spin-1", "method": "tools/call", "params": {"name": "spin"}
    }));
    let cancel = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        on(&c)
            .post(json!({
                "jsonrpc": "2.0", "method": "notifications/cancelled",
                "params": {"requestId": "spin-1", "reason": "pressed stop"}
            }))
            .await
    };
    let (reply, ack) = tokio::join!(spin, cancel);
    assert_eq!(ack?.status, 202);
    let reply = reply?;
    assert_eq!(reply.json()["error"]["code"], -32800, "{}", reply.text);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sessions_messages_cross_replicas_over_redis() -> anyhow::Result<()> {
    let (postgres, redis) = (
        toolhost_testbed::Postgres::start()?,
        toolhost_testbed::Redis::start()?,
    );
    messages_reach_the_replica_they_are_for(&postgres, Some(&redis)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sessions_messages_cross_replicas_over_postgres() -> anyhow::Result<()> {
    let postgres = toolhost_testbed::Postgres::start()?;
    messages_reach_the_replica_they_are_for(&postgres, None).await
}

/// A device sign-in whose every step lands on another replica: started on
/// A, its page opened on B, approved with a password on C, its tokens
/// collected from A. The grant, its user code, the form's CSRF value, the
/// users and the password backoff live in the shared database, not in one
/// replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_may_cross_replicas_at_every_step() -> anyhow::Result<()> {
    let postgres = toolhost_testbed::Postgres::start()?;
    let replica = || {
        Setup::new()
            .config(
                "[server]\npublic_url = \"https://127.0.0.1:7443\"\n\
                 [auth]\npassword_failures = 2\n",
            )
            .env("TOOLHOST_CLUSTER__POSTGRES_URL", &postgres.url())
    };
    let (a, b, c) = tokio::join!(replica().start(), replica().start(), replica().start());
    let (a, b, c) = (a?, b?, c?);
    // One first user for the deployment, not one per replica; a user
    // added through one replica's configuration signs in on all.
    let first_passwords = [&a, &b, &c]
        .iter()
        .filter(|server| server.admin_password().is_ok())
        .count();
    assert_eq!(first_passwords, 1, "one replica creates the first admin");
    let password = "correct horse battery staple";
    a.add_user("alice", password, "")?;
    let registered: Value = anonymous(&a)?
        .post(format!("{}/register", base(&a)))
        .json(
            &json!({"grant_types": ["urn:ietf:params:oauth:grant-type:device_code"],
                      "token_endpoint_auth_method": "none"}),
        )
        .send()
        .await?
        .json()
        .await?;
    let client_id = registered["client_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let grant = device_grant(&a, &b, &client_id).await?;
    // A wrong password on B counts against the same grant C then approves.
    assert_eq!(grant.approve(&b, "wrong horse").await?, 401);
    assert_eq!(
        grant.approve(&c, password).await?,
        200,
        "C approves B's page"
    );
    let device_code = grant.device_code.clone();
    let (status, tokens) = token(
        &a,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", device_code.as_str()),
            ("client_id", client_id.as_str()),
        ],
    )
    .await?;
    assert_eq!(status, 200, "A hands out the tokens C approved: {tokens}");
    let access = tokens["access_token"].as_str().unwrap_or_default();
    let reply = b.stateless_as(access, "tools/list", json!({})).await?;
    assert_eq!(reply.status, 200, "{}", reply.text);

    // Guesses at alice's password spread over the replicas count once
    // each: the second failure (`password_failures = 2`) on another replica
    // locks the account everywhere, even for the right password.
    let grant = device_grant(&c, &a, &client_id).await?;
    assert_eq!(grant.approve(&a, "guess one").await?, 401);
    assert_eq!(grant.approve(&b, "guess two").await?, 429, "locked");
    assert_eq!(
        grant.approve(&c, password).await?,
        429,
        "backing off on every replica"
    );
    Ok(())
}

/// A device grant started on one replica, its approval page opened on
/// another.
struct DeviceGrant {
    device_code: String,
    user_code: String,
    cookies: String,
    csrf: String,
}

async fn device_grant(
    start_on: &Server,
    page_on: &Server,
    client_id: &str,
) -> anyhow::Result<DeviceGrant> {
    let started: Value = anonymous(start_on)?
        .post(format!("{}/device_authorization", base(start_on)))
        .form(&[("client_id", client_id), ("scope", "read")])
        .send()
        .await?
        .json()
        .await?;
    let code = |field: &str| started[field].as_str().unwrap_or_default().to_string();
    let (device_code, user_code) = (code("device_code"), code("user_code"));
    anyhow::ensure!(
        !device_code.is_empty() && !user_code.is_empty(),
        "{started}"
    );
    let page = anonymous(page_on)?
        .get(format!("{}/device?user_code={user_code}", base(page_on)))
        .send()
        .await?;
    anyhow::ensure!(
        page.status().as_u16() == 200,
        "the page's replica knows the user code"
    );
    let cookies = crate::harness::set_cookies(&page).join("; ");
    let html = page.text().await?;
    let csrf = crate::harness::form_value(&html, "csrf").unwrap_or_default();
    Ok(DeviceGrant {
        device_code,
        user_code,
        cookies,
        csrf,
    })
}

impl DeviceGrant {
    /// Approves as alice on `server`; the answer's status.
    async fn approve(&self, server: &Server, password: &str) -> anyhow::Result<u16> {
        let response = anonymous(server)?
            .post(format!("{}/device", base(server)))
            .header("cookie", &self.cookies)
            .form(&[
                ("user_code", self.user_code.as_str()),
                ("csrf", self.csrf.as_str()),
                ("username", "alice"),
                ("password", password),
                ("action", "allow"),
            ])
            .send()
            .await?;
        Ok(response.status().as_u16())
    }
}

fn socket_of(server: &Server) -> anyhow::Result<std::net::SocketAddr> {
    let authority = server
        .url
        .trim_start_matches("https://")
        .trim_end_matches("/mcp");
    Ok(authority.parse()?)
}

/// Under a steady load of stateless calls and registrations through a
/// round-robin balancer, one of three replicas is killed (SIGKILL) and
/// started again on its data dir: no call fails once a client's one retry
/// is counted, every registration answered 201 is stored, and every
/// replica's audit chain still verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_under_load_loses_nothing() -> anyhow::Result<()> {
    let postgres = toolhost_testbed::Postgres::start()?;
    let replica = |dir: &std::path::Path, tls: Option<&std::path::Path>| {
        let setup = Setup::new()
            .fixture("hostile")
            .data_dir(dir.to_path_buf())
            .config(
                "[server]\npublic_url = \"https://127.0.0.1:7443\"\n\
                 [auth]\nmax_clients_per_range = 0",
            )
            .env("TOOLHOST_CLUSTER__POSTGRES_URL", &postgres.url());
        match tls {
            Some(tls) => setup.tls_files(tls),
            None => setup,
        }
    };
    let dirs = [
        scratch_dir("load-a"),
        scratch_dir("load-b"),
        scratch_dir("load-c"),
    ];
    let a = replica(&dirs[0], None).start().await?;
    let tls = dirs[0].join("tls");
    let (b, c) = tokio::join!(
        replica(&dirs[1], Some(&tls)).start(),
        replica(&dirs[2], Some(&tls)).start()
    );
    let (mut b, c) = (b?, c?);
    let balancer =
        toolhost_testbed::RoundRobin::start(vec![socket_of(&a)?, socket_of(&b)?, socket_of(&c)?])
            .await?;
    let front = format!("https://127.0.0.1:{}", balancer.addr.port());
    // A new connection per request, so the balancer spreads them all.
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(
            tls.join("cert.pem"),
        )?)?)
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(20))
        .build()?;
    let token = a.token.clone().unwrap_or_default();
    let call = |i: usize| {
        let request = http
            .post(format!("{front}/mcp"))
            .bearer_auth(&token)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/call")
            .header("mcp-name", "echo")
            .json(
                &json!({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {
                "name": "echo", "arguments": {"text": format!("call {i}")},
                "_meta": {
                    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                    "io.modelcontextprotocol/clientInfo": {"name": "load", "version": "1"},
                    "io.modelcontextprotocol/clientCapabilities": {}
                }}}),
            );
        async move {
            let res = request.send().await.ok()?;
            (res.status() == 200).then_some(())
        }
    };
    let register = |i: usize| {
        let request = http.post(format!("{front}/register")).json(&json!({
            "redirect_uris": [format!("http://127.0.0.1:9/cb{i}")],
            "token_endpoint_auth_method": "none",
        }));
        async move {
            let res = request.send().await.ok()?;
            if res.status() != 201 {
                return None;
            }
            let body: Value = res.json().await.ok()?;
            body["client_id"].as_str().map(str::to_string)
        }
    };
    let load = async {
        let (mut failed, mut retried, mut registered) = (0, 0, Vec::new());
        for i in 0..120usize {
            if call(i).await.is_none() {
                retried += 1;
                if call(i).await.is_none() {
                    failed += 1;
                }
            }
            if i % 4 == 0 {
                match register(i).await {
                    Some(id) => registered.push(id),
                    None => {
                        retried += 1;
                        match register(i).await {
                            Some(id) => registered.push(id),
                            None => failed += 1,
                        }
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (failed, retried, registered)
    };
    let chaos = async {
        tokio::time::sleep(Duration::from_millis(800)).await;
        b.kill();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let again = replica(&dirs[1], Some(&tls)).start().await?;
        balancer.replace(1, socket_of(&again)?);
        anyhow::Ok(again)
    };
    let ((failed, retried, registered), restarted) = tokio::join!(load, chaos);
    let restarted = restarted?;
    assert_eq!(
        failed, 0,
        "calls failed even after a retry ({retried} retried)"
    );
    let stored = restarted.client_ids()?;
    let lost: Vec<&String> = registered
        .iter()
        .filter(|id| !stored.contains(id))
        .collect();
    assert!(lost.is_empty(), "registered but lost: {lost:?}");
    drop((a, c, restarted));
    for dir in &dirs {
        let out = std::process::Command::new(crate::harness::toolhost_bin())
            .args(["audit", "verify"])
            .arg(dir.join("audit"))
            .output()?;
        assert!(
            out.status.success(),
            "{}: {}{}",
            dir.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}
