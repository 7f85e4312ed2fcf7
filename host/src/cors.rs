//! CORS for browser-based clients (MCP Inspector, claude.ai): answers
//! preflights and marks responses readable for allowed origins, on `/mcp`,
//! the well-known documents and the authorization server's endpoints.
//! Origins are allowed by the same rule as the MCP Host/Origin guard.
//! No credentials mode: tokens travel in `Authorization`, not cookies.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::mcp::McpState;

const ALLOW_METHODS: &str = "GET, POST, DELETE, OPTIONS";
const ALLOW_HEADERS: &str = "authorization, content-type, accept, mcp-session-id, mcp-protocol-version, \
                             last-event-id, mcp-method, mcp-name";
const EXPOSE_HEADERS: &str = "mcp-session-id, www-authenticate, mcp-protocol-version, retry-after, ratelimit, ratelimit-policy";

fn covered(path: &str) -> bool {
    path == "/mcp"
        || path.starts_with("/.well-known/")
        || matches!(path, "/token" | "/register" | "/revoke")
}

pub(crate) async fn layer(
    State(mcp): State<Arc<McpState>>,
    request: Request,
    next: Next,
) -> Response {
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .filter(|o| covered(request.uri().path()) && mcp.origin_allowed(o))
        .and_then(|o| HeaderValue::from_str(o).ok());
    let Some(origin) = origin else {
        return next.run(request).await;
    };
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = if preflight {
        let mut response = StatusCode::NO_CONTENT.into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOW_METHODS),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOW_HEADERS),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        response
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSE_HEADERS),
    );
    headers.append(header::VARY, HeaderValue::from_static("origin"));
    response
}
