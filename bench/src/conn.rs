//! One client connection: TCP with `TCP_NODELAY`, TLS 1.3 trusting exactly
//! one certificate, HTTP/1.1 kept alive, and a request/response round trip
//! that reads the whole body.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// A client TLS configuration that trusts only `cert` (the server under
/// test's self-signed certificate), TLS 1.3 only, offering HTTP/1.1 by ALPN.
pub(crate) fn client_config(
    cert: CertificateDer<'static>,
) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).context("adding the server certificate")?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // The benchmark is specified over HTTP/1.1 (one request in flight per
    // connection); without ALPN the server would still pick HTTP/1.1, but
    // saying so keeps the measured protocol explicit.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// [`client_config`] for a certificate stored as PEM.
pub(crate) fn client_config_from_pem(pem: &[u8]) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let cert = CertificateDer::from_pem_slice(pem).context("parsing the server certificate PEM")?;
    client_config(cert)
}

/// A response with its body fully read.
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Reply {
    /// Whether the body contains `needle` (the check that the server really
    /// did the work, not just answered).
    pub(crate) fn contains(&self, needle: &[u8]) -> bool {
        !needle.is_empty() && self.body.windows(needle.len()).any(|w| w == needle)
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A kept-alive HTTPS/1.1 connection to one server.
pub(crate) struct Conn {
    sender: SendRequest<Full<Bytes>>,
    uri: Uri,
}

impl Conn {
    /// Connects to `addr` (always a loopback address here) and completes the
    /// TLS and HTTP/1.1 handshakes. The connection's I/O runs as a task on
    /// the current runtime.
    pub(crate) async fn open(
        addr: SocketAddr,
        tls: &Arc<rustls::ClientConfig>,
        path: &'static str,
    ) -> anyhow::Result<Conn> {
        anyhow::ensure!(
            addr.ip().is_loopback(),
            "refusing to load non-loopback {addr}"
        );
        let tcp = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        // Each request is one small write; Nagle would hold it back behind the
        // previous response's delayed ACK.
        tcp.set_nodelay(true)?;
        let name = ServerName::IpAddress(addr.ip().into());
        let stream = TlsConnector::from(tls.clone())
            .connect(name, tcp)
            .await
            .context("TLS handshake")?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP/1.1 handshake")?;
        tokio::spawn(async move {
            // Ends when the sender is dropped or the server closes; errors show
            // up on the next request instead.
            let _ = connection.await;
        });
        Ok(Conn {
            sender,
            uri: Uri::from_static(path),
        })
    }

    /// Sends one request and reads the whole response.
    pub(crate) async fn send(
        &mut self,
        method: Method,
        headers: HeaderMap,
        body: Bytes,
    ) -> anyhow::Result<Reply> {
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = method;
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = headers;
        self.sender.ready().await.context("connection closed")?;
        let response = self.sender.send_request(request).await?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    /// A POST to the connection's path.
    pub(crate) async fn post(&mut self, headers: HeaderMap, body: Bytes) -> anyhow::Result<Reply> {
        self.send(Method::POST, headers, body).await
    }
}
