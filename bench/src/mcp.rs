//! What the benchmark says over a connection: the session-era MCP exchanges
//! (`initialize`, `notifications/initialized`, `tools/call`, `ping`,
//! `DELETE`) and the checks on their answers, plus the same request aimed at
//! the echo baseline.
//!
//! Requests on the hot path are prepared once per connection (body bytes and
//! header map) so the client spends as little CPU as possible: it shares the
//! machine's two cores with the server it measures.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, bail};
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

use crate::conn::Conn;

pub(crate) const PATH: &str = "/mcp";
pub(crate) const PROTOCOL_VERSION: &str = "2025-11-25";

const SESSION_HEADER: HeaderName = HeaderName::from_static("mcp-session-id");
const VERSION_HEADER: HeaderName = HeaderName::from_static("mcp-protocol-version");

/// The tool the load calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Tool {
    /// devtools `hash` of "abc" (SHA-256): the measured call of the issue.
    Hash,
    /// conformance `test_simple_text`: a fixed string from a small plugin,
    /// to tell the plugin's own work from the host's.
    SimpleText,
}

impl Tool {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Tool::Hash => "devtools `hash` of \"abc\"",
            Tool::SimpleText => "conformance `test_simple_text`",
        }
    }

    fn body(self) -> &'static [u8] {
        match self {
            Tool::Hash => {
                br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"hash","arguments":{"input":"abc"}}}"#
            }
            Tool::SimpleText => {
                br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"test_simple_text","arguments":{}}}"#
            }
        }
    }

    /// What proves the plugin ran, not just that the server answered.
    fn result(self) -> &'static [u8] {
        match self {
            // SHA-256("abc").
            Tool::Hash => b"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            Tool::SimpleText => b"This is a simple text response for testing.",
        }
    }

    /// What the echo baseline answers to the same request.
    fn echoed(self) -> &'static [u8] {
        match self {
            Tool::Hash => br#""text":"hash""#,
            Tool::SimpleText => br#""text":"test_simple_text""#,
        }
    }
}

const INITIALIZE: &[u8] = br#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"toolhost-bench","version":"1"}}}"#;
const INITIALIZED: &[u8] = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
const PING: &[u8] = br#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#;
const PING_RESULT: &[u8] = br#""result":{}"#;

/// Which server a load is aimed at.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    Toolhost,
    Echo,
}

impl Kind {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Kind::Toolhost => "toolhost",
            Kind::Echo => "echo",
        }
    }
}

/// A server to load: where it is and the certificate it must present.
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) kind: Kind,
    pub(crate) tool: Tool,
    pub(crate) addr: SocketAddr,
    pub(crate) tls: Arc<rustls::ClientConfig>,
    /// `Bearer …` for toolhost (auth is on by default); the echo has none.
    pub(crate) authorization: Option<HeaderValue>,
}

impl Target {
    pub(crate) async fn connect(&self) -> anyhow::Result<Conn> {
        Conn::open(self.addr, &self.tls, PATH).await
    }

    /// Headers every POST carries: Host (toolhost checks it against DNS
    /// rebinding), the bearer token, JSON content type, and an Accept for
    /// both answer framings.
    pub(crate) fn base_headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::with_capacity(8);
        // A SocketAddr always renders as a valid header value.
        let host = HeaderValue::from_str(&self.addr.to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("127.0.0.1"));
        headers.insert(HOST, host);
        if let Some(auth) = &self.authorization {
            headers.insert(AUTHORIZATION, auth.clone());
        }
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        headers
    }
}

/// The base headers plus the session and negotiated version.
pub(crate) fn session_headers(base: &HeaderMap, session: &HeaderValue) -> HeaderMap {
    let mut headers = base.clone();
    headers.insert(SESSION_HEADER, session.clone());
    headers.insert(VERSION_HEADER, HeaderValue::from_static(PROTOCOL_VERSION));
    headers
}

/// Opens a session on `conn`: `initialize`, then `notifications/initialized`.
/// Returns the `Mcp-Session-Id`.
pub(crate) async fn open_session(conn: &mut Conn, base: &HeaderMap) -> anyhow::Result<HeaderValue> {
    let reply = conn
        .post(base.clone(), Bytes::from_static(INITIALIZE))
        .await
        .context("initialize")?;
    if reply.status != StatusCode::OK {
        bail!("initialize answered {}: {}", reply.status, reply.text());
    }
    let session = reply
        .headers
        .get(SESSION_HEADER)
        .cloned()
        .context("initialize returned no Mcp-Session-Id")?;
    if !reply.contains(PROTOCOL_VERSION.as_bytes()) {
        bail!(
            "initialize did not negotiate {PROTOCOL_VERSION}: {}",
            reply.text()
        );
    }
    let ack = conn
        .post(
            session_headers(base, &session),
            Bytes::from_static(INITIALIZED),
        )
        .await
        .context("notifications/initialized")?;
    if ack.status != StatusCode::ACCEPTED {
        bail!("notifications/initialized answered {}", ack.status);
    }
    Ok(session)
}

/// `ping` in an open session; an error unless it answers 200 with `{}`.
pub(crate) async fn ping(
    conn: &mut Conn,
    base: &HeaderMap,
    session: &HeaderValue,
) -> anyhow::Result<()> {
    let reply = conn
        .post(session_headers(base, session), Bytes::from_static(PING))
        .await?;
    if reply.status != StatusCode::OK || !reply.contains(PING_RESULT) {
        bail!("ping answered {}: {}", reply.status, reply.text());
    }
    Ok(())
}

/// Why a benchmark call failed.
#[derive(Debug)]
pub(crate) enum CallError {
    /// The server answered, but not with the expected result; the connection
    /// and session are still usable (e.g. a 429 from a rate limit).
    Answer(String),
    /// The request or the connection failed; a new connection is needed.
    Transport(anyhow::Error),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Answer(message) => f.write_str(message),
            CallError::Transport(err) => write!(f, "{err:#}"),
        }
    }
}

impl std::error::Error for CallError {}

/// A connection ready to repeat the benchmark request against its target.
pub(crate) struct Caller {
    conn: Conn,
    base: HeaderMap,
    headers: HeaderMap,
    body: Bytes,
    expect: &'static [u8],
    session: Option<HeaderValue>,
}

impl Caller {
    /// Connects and, for toolhost, opens a session (not part of any timing).
    pub(crate) async fn open(target: &Target) -> anyhow::Result<Caller> {
        let conn = target.connect().await?;
        Caller::start(target, conn).await
    }

    /// [`Caller::open`] on a connection the caller made.
    pub(crate) async fn start(target: &Target, mut conn: Conn) -> anyhow::Result<Caller> {
        let base = target.base_headers();
        let (headers, session, expect) = match target.kind {
            Kind::Toolhost => {
                let session = open_session(&mut conn, &base).await?;
                (
                    session_headers(&base, &session),
                    Some(session),
                    target.tool.result(),
                )
            }
            // Same headers minus the session, so the client does the same work.
            Kind::Echo => (base.clone(), None, target.tool.echoed()),
        };
        Ok(Caller {
            conn,
            base,
            headers,
            body: Bytes::from_static(target.tool.body()),
            expect,
            session,
        })
    }

    /// One `tools/call` (or its echo), checked: 200 and the expected content.
    pub(crate) async fn call(&mut self) -> Result<(), CallError> {
        // Cloning the prepared map and a static body is a few small copies;
        // building them per request would cost more than the check below.
        let reply = self
            .conn
            .post(self.headers.clone(), self.body.clone())
            .await
            .map_err(CallError::Transport)?;
        if reply.status != StatusCode::OK {
            return Err(CallError::Answer(format!(
                "tools/call answered {}: {}",
                reply.status,
                reply.text()
            )));
        }
        if !reply.contains(self.expect) {
            return Err(CallError::Answer(format!(
                "tools/call answer lacks the expected result: {}",
                reply.text()
            )));
        }
        Ok(())
    }

    /// Ends the session so finished runs do not accumulate server state.
    pub(crate) async fn close(mut self) {
        if let Some(session) = &self.session {
            let headers = session_headers(&self.base, session);
            let _ = self.conn.send(Method::DELETE, headers, Bytes::new()).await;
        }
    }
}
