//! HTTP helpers that several layers share, kept below all of them: a JSON
//! response (the MCP transport's answers, the auth challenge's bodies) and
//! the TLS configuration of toolhost's own outbound HTTPS (plugins'
//! requests, the issuer's metadata-document fetches, an identity provider's
//! keys).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// A JSON body with `status`, written in one buffer.
pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(bytes))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Outbound HTTPS as a browser would trust it: Mozilla's roots, TLS 1.2+,
/// the same aws-lc-rs provider as the server side.
pub(crate) fn web_client_config() -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
