//! The socket layer as clients meet it: TLS 1.3 only, HTTP/2 and HTTP/1.1 by
//! ALPN, health check.

use std::time::Duration;

use anyhow::Context;

use crate::harness::Setup;

fn client_with(
    data_dir: &std::path::Path,
    build: impl FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
) -> anyhow::Result<reqwest::Client> {
    let pem = std::fs::read(data_dir.join("tls/cert.pem"))?;
    let builder = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem)?)
        .timeout(Duration::from_secs(10));
    Ok(build(builder).build()?)
}

#[tokio::test]
async fn tls_1_2_is_refused() -> anyhow::Result<()> {
    let server = Setup::new().fixture("hostile").start().await?;
    let health = format!("{}/healthz", server.url.trim_end_matches("/mcp"));
    let old = client_with(&server.data_dir, |b| {
        b.max_tls_version(reqwest::tls::Version::TLS_1_2)
    })?;
    let err = old
        .get(&health)
        .send()
        .await
        .expect_err("a TLS 1.2 client must not connect");
    assert!(err.is_connect() || err.is_request(), "{err:?}");
    let modern = client_with(&server.data_dir, |b| b)?;
    assert_eq!(modern.get(&health).send().await?.status(), 200);
    Ok(())
}

#[tokio::test]
async fn http2_and_http1_are_both_served() -> anyhow::Result<()> {
    let server = Setup::new().fixture("hostile").start().await?;
    let health = format!("{}/healthz", server.url.trim_end_matches("/mcp"));
    let h1 = client_with(&server.data_dir, |b| b.http1_only())?;
    let res = h1.get(&health).send().await?;
    assert_eq!(res.version(), reqwest::Version::HTTP_11);
    let h2 = client_with(&server.data_dir, |b| b)?;
    let res = h2.get(&health).send().await?;
    assert_eq!(res.version(), reqwest::Version::HTTP_2, "ALPN picks h2");
    Ok(())
}

/// Generates a certificate pair by starting (and stopping) a server on a
/// fresh data dir, and returns that dir's `tls/` folder.
async fn fresh_certificate() -> anyhow::Result<std::path::PathBuf> {
    let server = Setup::new().fixture("hostile").start().await?;
    Ok(server.data_dir.join("tls"))
}

fn trusting(certs: &[&std::path::Path]) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(10));
    for dir in certs {
        let pem = std::fs::read(dir.join("cert.pem"))?;
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(&pem)?);
    }
    Ok(builder.build()?)
}

#[tokio::test]
async fn certificates_reload_without_failing_a_request() -> anyhow::Result<()> {
    let old = fresh_certificate().await?;
    let new = fresh_certificate().await?;
    let live = crate::harness::scratch_dir("live-tls");
    std::fs::copy(old.join("cert.pem"), live.join("cert.pem"))?;
    std::fs::copy(old.join("key.pem"), live.join("key.pem"))?;
    let config = format!(
        "[tls]\ncert = \"{}\"\nkey = \"{}\"",
        live.join("cert.pem").display(),
        live.join("key.pem").display()
    );
    let server = Setup::new()
        .fixture("hostile")
        .config(&config)
        .start()
        .await?;
    let health = format!("{}/healthz", server.url.trim_end_matches("/mcp"));
    let only_new = trusting(&[&new])?;
    assert!(
        only_new.get(&health).send().await.is_err(),
        "the new certificate is not served yet"
    );

    let traffic = async {
        let mut failures = 0;
        for _ in 0..100 {
            // A fresh client each time: every request is a new TLS handshake.
            let client = trusting(&[&old, &new])?;
            if client.get(&health).send().await.map(|r| r.status()).ok()
                != Some(reqwest::StatusCode::OK)
            {
                failures += 1;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        anyhow::Ok(failures)
    };
    let rotate = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        // Renewal tools replace the key and the certificate one after the other.
        for name in ["key.pem", "cert.pem"] {
            std::fs::copy(new.join(name), live.join(format!(".{name}.tmp")))?;
            std::fs::rename(live.join(format!(".{name}.tmp")), live.join(name))?;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::Ok(())
    };
    let (failures, rotated) = tokio::join!(traffic, rotate);
    rotated?;
    assert_eq!(failures?, 0, "no request failed across the reload");
    let res = only_new.get(&health).send().await?;
    assert_eq!(res.status(), 200, "new connections get the new certificate");
    assert!(server.stderr().contains("TLS certificate reloaded"));
    Ok(())
}

#[tokio::test]
async fn slow_clients_are_cut_off_at_the_header_timeout() -> anyhow::Result<()> {
    use tokio::io::AsyncReadExt;
    let server = Setup::new()
        .fixture("hostile")
        .config("[server]\nheader_timeout_ms = 500")
        .start()
        .await?;
    let addr = server
        .url
        .trim_start_matches("https://")
        .trim_end_matches("/mcp")
        .to_string();
    // A client that connects and never speaks TLS (slowloris at the handshake).
    let mut stream = tokio::net::TcpStream::connect(&addr).await?;
    let started = std::time::Instant::now();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "the server closes the silent connection: {read:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "closed after {:?}",
        started.elapsed()
    );
    // The server still serves others.
    assert_eq!(
        server
            .client
            .get(format!("https://{addr}/healthz"))
            .send()
            .await?
            .status(),
        200
    );
    Ok(())
}

#[tokio::test]
async fn the_connection_cap_queues_rather_than_fails() -> anyhow::Result<()> {
    let server = Setup::new()
        .fixture("hostile")
        .config("[server]\nheader_timeout_ms = 1000\nmax_connections = 2")
        .start()
        .await?;
    let addr = server
        .url
        .trim_start_matches("https://")
        .trim_end_matches("/mcp")
        .to_string();
    // Two silent clients take both slots until the header timeout frees them.
    let _idle = (
        tokio::net::TcpStream::connect(&addr).await?,
        tokio::net::TcpStream::connect(&addr).await?,
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    let res = server
        .client
        .get(format!("https://{addr}/healthz"))
        .send()
        .await?;
    assert_eq!(
        res.status(),
        200,
        "the third client is served once a slot frees"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "served after {:?}: the cap was not applied",
        started.elapsed()
    );
    Ok(())
}

/// Reads until the server closes the connection (or `limit` passes).
async fn read_to_close(
    stream: &mut (impl tokio::io::AsyncRead + Unpin),
    limit: Duration,
) -> anyhow::Result<String> {
    use tokio::io::AsyncReadExt;
    let mut received = Vec::new();
    let read = tokio::time::timeout(limit, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    anyhow::ensure!(read.is_ok(), "the connection stayed open");
    Ok(String::from_utf8_lossy(&received).into_owned())
}

#[tokio::test]
async fn a_body_that_drips_gets_408_and_an_idle_connection_closes() -> anyhow::Result<()> {
    use tokio::io::AsyncWriteExt;
    let server = Setup::new()
        .fixture("hostile")
        .config("[server]\nheader_timeout_ms = 10000\nbody_timeout_ms = 500\nidle_timeout_ms = 800")
        .start()
        .await?;
    let token = server.token.clone().context("a token")?;
    // Promise 100 bytes, send 11, then nothing.
    let mut stream = crate::harness::tls_stream(&server).await?;
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n\
         Content-Length: 100\r\n\r\n{{\"jsonrpc\":"
    );
    stream.write_all(head.as_bytes()).await?;
    let started = std::time::Instant::now();
    let answer = read_to_close(&mut stream, Duration::from_secs(5)).await?;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("did not arrive within"), "{answer}");
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "answered after {:?}, before the body deadline",
        started.elapsed()
    );

    // A kept-alive connection that goes quiet is closed at the idle
    // timeout, well before the 10 s header timeout would close it.
    let mut stream = crate::harness::tls_stream(&server).await?;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await?;
    let started = std::time::Instant::now();
    let answer = read_to_close(&mut stream, Duration::from_secs(5)).await?;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let closed_after = started.elapsed();
    assert!(
        (Duration::from_millis(600)..Duration::from_secs(4)).contains(&closed_after),
        "closed after {closed_after:?}"
    );
    Ok(())
}

/// Keep-alive pings are not use: an HTTP/2 client that opens a connection
/// and only pings (as hyper and most clients do when idle) must still be
/// closed at the idle timeout, or idle connections could hold every slot.
#[tokio::test]
async fn an_http2_connection_that_only_pings_is_closed_when_idle() -> anyhow::Result<()> {
    let server = Setup::new()
        .fixture("hostile")
        .config("[server]\nidle_timeout_ms = 800")
        .start()
        .await?;
    let tls = crate::harness::tls_stream_alpn(&server, b"h2").await?;
    anyhow::ensure!(
        tls.get_ref().1.alpn_protocol() == Some(b"h2"),
        "the server did not pick h2"
    );
    let (requests, mut connection) = h2::client::handshake(tls).await?;
    let mut ping_pong = connection.ping_pong().context("ping handle")?;
    let closed = tokio::spawn(connection);
    // One real exchange first: a finished response must stop counting as use.
    let mut requests = requests.ready().await?;
    let request = http::Request::get("https://localhost/healthz").body(())?;
    let (response, _) = requests.send_request(request, true)?;
    let response = response.await?;
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    while let Some(chunk) = body.data().await {
        chunk?;
    }
    let started = std::time::Instant::now();
    let pinging = async {
        let mut answered = 0u32;
        loop {
            if ping_pong.ping(h2::Ping::opaque()).await.is_err() {
                return answered;
            }
            answered += 1;
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    };
    let answered = tokio::time::timeout(Duration::from_secs(5), async {
        tokio::select! {
            answered = pinging => answered,
            _ = closed => 0,
        }
    })
    .await;
    let closed_after = started.elapsed();
    assert!(
        answered.is_ok(),
        "a connection that only pinged stayed open for {closed_after:?}"
    );
    assert!(
        closed_after >= Duration::from_millis(600),
        "closed after {closed_after:?}, before the idle timeout"
    );
    Ok(())
}

/// A Kubernetes Secret mounted as a volume is renewed the kubelet's way:
/// the files are links through `..data` to a timestamped directory, and a
/// renewal writes a new directory and swaps the `..data` link, so no event
/// ever names `tls.crt` itself. The new certificate is served all the same.
#[cfg(unix)]
#[tokio::test]
async fn a_kubernetes_secret_volume_renewal_is_picked_up() -> anyhow::Result<()> {
    use std::os::unix::fs::symlink;
    let old = fresh_certificate().await?;
    let new = fresh_certificate().await?;
    let mount = crate::harness::scratch_dir("secret-volume");
    let publish = |from: &std::path::Path, stamp: &str| -> anyhow::Result<()> {
        let dir = mount.join(format!("..{stamp}"));
        std::fs::create_dir_all(&dir)?;
        std::fs::copy(from.join("cert.pem"), dir.join("tls.crt"))?;
        std::fs::copy(from.join("key.pem"), dir.join("tls.key"))?;
        let _ = std::fs::remove_file(mount.join("..data_tmp"));
        symlink(format!("..{stamp}"), mount.join("..data_tmp"))?;
        std::fs::rename(mount.join("..data_tmp"), mount.join("..data"))?;
        Ok(())
    };
    publish(&old, "2026_12_06_10_00_00.1")?;
    for name in ["tls.crt", "tls.key"] {
        symlink(format!("..data/{name}"), mount.join(name))?;
    }
    let config = format!(
        "[tls]\ncert = \"{}\"\nkey = \"{}\"",
        mount.join("tls.crt").display(),
        mount.join("tls.key").display()
    );
    let server = Setup::new()
        .fixture("hostile")
        .config(&config)
        .start()
        .await?;
    let health = format!("{}/healthz", server.url.trim_end_matches("/mcp"));
    let only_new = trusting(&[&new])?;
    assert!(
        only_new.get(&health).send().await.is_err(),
        "not served yet"
    );

    publish(&new, "2026_12_06_11_00_00.2")?;
    let _ = std::fs::remove_dir_all(mount.join("..2026_12_06_10_00_00.1"));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while only_new.get(&health).send().await.is_err() {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the renewed certificate was not picked up: {}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}
