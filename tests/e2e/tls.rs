//! The socket layer as clients meet it: TLS 1.3 only, HTTP/2 and HTTP/1.1 by
//! ALPN, health check.

use std::time::Duration;

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
