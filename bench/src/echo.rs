//! The baseline: a minimal axum + rustls (TLS 1.3) JSON echo server on its
//! own runtime inside the bench process, built like toolhost's socket layer
//! (nodelay, hyper's auto HTTP/1.1 + HTTP/2 builder, keep-alive) so the
//! difference between the two is what toolhost does per call.
//!
//! It parses the JSON body and serializes a small JSON-RPC result, so JSON
//! work is part of the baseline and the ratio isolates MCP handling and the
//! plugin call.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::conn;
use crate::mcp::PATH;

/// Name prefix of the echo runtime's threads, so their CPU time can be told
/// apart from the client's.
pub(crate) const THREAD_NAME: &str = "bench-echo";

/// A running echo server; stops when dropped (outside any async context).
pub(crate) struct Echo {
    pub(crate) addr: SocketAddr,
    pub(crate) client_tls: Arc<rustls::ClientConfig>,
    _runtime: tokio::runtime::Runtime,
}

/// Starts the echo server on 127.0.0.1 with a fresh self-signed certificate.
pub(crate) fn start() -> anyhow::Result<Echo> {
    // Same worker count as toolhost's runtime (tokio's default: one per
    // core), so both servers can use the same share of the machine.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_name(THREAD_NAME)
        .enable_all()
        .build()
        .context("starting the echo runtime")?;
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .context("generating the echo certificate")?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let client_tls = conn::client_config(certified.cert.der().clone())?;
    let listener = runtime
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .context("binding the echo server")?;
    let addr = listener.local_addr()?;
    let app = Router::new().route(PATH, post(echo));
    runtime.spawn(accept_loop(
        listener,
        TlsAcceptor::from(Arc::new(server)),
        app,
    ));
    Ok(Echo {
        addr,
        client_tls,
        _runtime: runtime,
    })
}

async fn accept_loop(listener: TcpListener, acceptor: TlsAcceptor, app: Router) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(stream).await else {
                return;
            };
            let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                app.clone().oneshot(req.map(Body::new))
            });
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            builder.http1().keep_alive(true);
            let _ = builder.serve_connection(TokioIo::new(tls), service).await;
        });
    }
}

/// Parses the JSON-RPC request and answers a result shaped like a tool
/// result: the tool's name as text and the arguments as structured content.
async fn echo(body: Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let params = request.get("params");
    let field = |name: &str| params.and_then(|p| p.get(name)).cloned();
    let response = json!({
        "jsonrpc": "2.0",
        "id": request.get("id").cloned().unwrap_or(Value::Null),
        "result": {
            "content": [{"type": "text", "text": field("name")}],
            "structuredContent": {"arguments": field("arguments"), "method": request.get("method")},
            "isError": false,
        }
    });
    match serde_json::to_vec(&response) {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
