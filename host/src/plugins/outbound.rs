//! Plugins' outbound HTTP (`wasi:http/outgoing-handler`) as the host sends it.
//!
//! Every request a plugin hands over is checked against its [`NetworkGrant`]
//! and the operator's deny list, its host is resolved once, every resolved
//! address is checked (loopback, private, link-local, metadata, … need an
//! explicit `allow_private`), and the connection goes to exactly an address
//! that passed, so a second resolution can never swap in another (DNS
//! rebinding). Credentials are attached only here, after the checks, so the
//! guest never holds them. Refusals reach the guest as `wasi:http` error
//! codes, never traps, and are logged with the plugin and destination.
//!
//! Redirects need no handling here: `wasi:http` never follows them, so a
//! guest that follows a 3xx sends a new request, checked like any other.
//!
//! This is an HTTP *client* only; it knows nothing about MCP or the server.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep, timeout_at};
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use super::network::{DenyList, Host, NetworkError, NetworkGrant, Refusal, Scheme, Target};

/// Process-wide outbound machinery: the TLS client configuration and the
/// operator's deny list. Built once by `Runtime::new`.
pub(crate) struct Outbound {
    tls: tokio_rustls::TlsConnector,
    deny: DenyList,
}

/// Why the outbound machinery could not be built at start-up.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OutboundError {
    #[error("plugins.policy.network_deny: {0}")]
    Deny(#[from] NetworkError),
    #[error("building the TLS client configuration: {0}")]
    Tls(#[from] rustls::Error),
}

impl Outbound {
    /// Parses the operator's deny list and builds a TLS client that trusts
    /// the Mozilla roots (webpki-roots), as wasmtime's own default does.
    pub(crate) fn new(network_deny: &[String]) -> Result<Outbound, OutboundError> {
        let deny = DenyList::parse(network_deny)?;
        let mut config = crate::http::web_client_config()?;
        // The connection below speaks HTTP/1.1 only.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Outbound {
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
            deny,
        })
    }
}

/// The `wasi:http` hooks of one call: its plugin's grant and how many
/// requests it has started. Lives in the call's `CallState`.
pub(crate) struct OutboundHooks {
    shared: Arc<Outbound>,
    grant: Arc<NetworkGrant>,
    plugin: Arc<str>,
    request_id: Arc<str>,
    n_requests: u32,
}

impl OutboundHooks {
    pub(crate) fn new(
        shared: Arc<Outbound>,
        grant: Arc<NetworkGrant>,
        plugin: Arc<str>,
        request_id: Arc<str>,
    ) -> OutboundHooks {
        OutboundHooks {
            shared,
            grant,
            plugin,
            request_id,
            n_requests: 0,
        }
    }

    /// The checks that need no I/O, run before anything leaves the host:
    /// request count, method, destination against grant and deny list. Then
    /// the credential for the destination, replacing any header of the same
    /// name the plugin set.
    fn admit(&mut self, mut request: http::Request<WasiBody>) -> Result<Exchange, Error> {
        let plugin = &*self.plugin;
        let request_id = &*self.request_id;
        let limit = self.grant.limits.max_requests_per_call;
        self.n_requests = self.n_requests.saturating_add(1);
        if self.n_requests > limit {
            // Logged once per call: a plugin looping on a refusal must not flood the log.
            if self.n_requests == limit.saturating_add(1) {
                tracing::warn!(
                    plugin,
                    request_id,
                    limit,
                    "outbound request refused: the call reached max_requests_per_call"
                );
            }
            return Err(Error::ConnectionLimitReached);
        }
        // TRACE echoes the request, credential included, back to the plugin;
        // CONNECT would turn the connection into a tunnel past every check.
        if matches!(
            *request.method(),
            http::Method::TRACE | http::Method::CONNECT
        ) {
            tracing::warn!(plugin, request_id, method = %request.method(), "outbound request refused: method not allowed");
            return Err(Error::HttpRequestMethodInvalid);
        }
        let uri = request.uri();
        let scheme = match uri.scheme_str() {
            Some("https") => Scheme::Https,
            Some("http") => Scheme::Http,
            _ => return Err(Error::HttpProtocolError),
        };
        let target = match uri.authority() {
            // User info in the authority would only confuse the Host header.
            Some(authority) if !authority.as_str().contains('@') => {
                super::network::parse_target(scheme, authority.host(), authority.port_u16())
            }
            _ => Err("no host, or user info in the authority".to_string()),
        };
        let target = target.map_err(|reason| {
            // The guest chose this text: bound what reaches the log.
            let shown: String = uri
                .authority()
                .map_or("", |a| a.as_str())
                .chars()
                .take(256)
                .collect();
            let shown = super::guest_log::escape(&shown);
            let reason = super::guest_log::escape(&reason);
            tracing::warn!(plugin, request_id, destination = %shown, %reason, "outbound request refused: invalid destination");
            Error::HttpRequestUriInvalid
        })?;
        if let Err(refusal) = self.grant.check_target(&target, &self.shared.deny) {
            tracing::warn!(plugin, request_id, destination = %target, reason = %refusal, "outbound request refused");
            return Err(match refusal {
                Refusal::NonPublicAddress { .. } | Refusal::OperatorDeniedAddress { .. } => {
                    Error::DestinationIpProhibited
                }
                _ => Error::HttpRequestDenied,
            });
        }
        if let Some(credential) = self.grant.credential_for(&target) {
            // `insert` drops every value the plugin set under this name.
            request
                .headers_mut()
                .insert(credential.header.clone(), credential.value.clone());
        }
        Ok(Exchange {
            request,
            route: Route {
                target,
                grant: self.grant.clone(),
                shared: self.shared.clone(),
                plugin: self.plugin.clone(),
                request_id: self.request_id.clone(),
            },
        })
    }
}

type IoFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;
type SendFuture =
    Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), Error>> + Send>;

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_errors: IoFuture,
    ) -> SendFuture {
        match self.admit(request) {
            Ok(exchange) => Box::new(exchange.run(options)),
            Err(err) => Box::new(std::future::ready(Err(err))),
        }
    }
}

/// One admitted request on its way out.
struct Exchange {
    request: http::Request<WasiBody>,
    route: Route,
}

/// Where an admitted request goes and under which grant; kept apart from the
/// request, whose body is not `Sync`, so it can be borrowed across awaits.
struct Route {
    target: Target,
    grant: Arc<NetworkGrant>,
    shared: Arc<Outbound>,
    plugin: Arc<str>,
    request_id: Arc<str>,
}

trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

impl Exchange {
    /// Resolve, check, connect, TLS, send; all under the grant's timeout.
    async fn run(
        self,
        options: Option<RequestOptions>,
    ) -> Result<(http::Response<WasiBody>, IoFuture), Error> {
        let Exchange { mut request, route } = self;
        let started = Instant::now();
        let deadline = started + route.grant.limits.timeout;
        let within = |limit: Option<std::time::Duration>| {
            limit.map_or(deadline, |limit| (started + limit).min(deadline))
        };
        let connect_deadline = within(options.and_then(|o| o.connect_timeout));
        let first_byte_deadline = within(options.and_then(|o| o.first_byte_timeout));
        let addrs = route.resolve(connect_deadline).await?;
        let tcp = connect(&addrs, connect_deadline).await?;
        let stream: Box<dyn Stream> = match route.target.scheme {
            Scheme::Http => Box::new(tcp),
            Scheme::Https => {
                let server_name = match &route.target.host {
                    Host::Name(name) => ServerName::try_from(name.clone())
                        .map_err(|_| Error::HttpRequestUriInvalid)?,
                    Host::Ip(ip) => ServerName::from(*ip),
                };
                let tls = timeout_at(connect_deadline, route.shared.tls.connect(server_name, tcp))
                    .await
                    .map_err(|_| Error::ConnectionTimeout)?
                    .map_err(tls_error)?;
                Box::new(tls)
            }
        };
        let (mut sender, conn) = timeout_at(
            connect_deadline,
            hyper::client::conn::http1::handshake(TokioIo::new(stream)),
        )
        .await
        .map_err(|_| Error::ConnectionTimeout)??;
        // Aborted when wasi:http drops the io future with the response, so no
        // connection outlives the call's store.
        let conn = wasmtime_wasi::runtime::spawn(conn);
        // Origin-form on the wire: scheme and authority are only for proxies.
        let path = request
            .uri()
            .path_and_query()
            .map_or_else(|| http::uri::PathAndQuery::from_static("/"), Clone::clone);
        *request.uri_mut() = http::Uri::from(path);
        let method = request.method().clone();
        let response = timeout_at(first_byte_deadline, sender.send_request(request))
            .await
            .map_err(|_| Error::HttpResponseTimeout)??;
        let plugin = &*route.plugin;
        let request_id = &*route.request_id;
        let destination = route.target.to_string();
        let limit = route.grant.limits.max_response_bytes;
        let declared = response
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if let Some(declared) = declared.filter(|len| *len > limit) {
            tracing::warn!(plugin, request_id, %destination, declared, limit, "outbound response refused: body over max_response_bytes");
            return Err(Error::HttpResponseBodySize(Some(limit)));
        }
        tracing::debug!(plugin, request_id, %destination, %method, status = response.status().as_u16(), "outbound request");
        let response = response.map(|incoming| {
            CappedBody {
                inner: incoming,
                received: 0,
                limit,
                deadline: Box::pin(tokio::time::sleep_until(deadline)),
                failed: false,
                plugin: route.plugin.clone(),
                request_id: route.request_id.clone(),
                destination,
            }
            .boxed_unsync()
        });
        let io: IoFuture = Box::new(async move { conn.await.map_err(Error::from) });
        Ok((response, io))
    }
}

impl Route {
    /// Resolves the host once and keeps only the addresses the grant allows.
    async fn resolve(&self, deadline: Instant) -> Result<Vec<SocketAddr>, Error> {
        let port = self.target.port;
        let candidates: Vec<SocketAddr> = match &self.target.host {
            Host::Ip(ip) => vec![SocketAddr::new(*ip, port)],
            Host::Name(name) => {
                match timeout_at(deadline, tokio::net::lookup_host((name.as_str(), port))).await {
                    Err(_) => return Err(Error::DnsTimeout),
                    Ok(Err(err)) => {
                        tracing::debug!(plugin = &*self.plugin, destination = %self.target, "outbound lookup failed: {err}");
                        return Err(Error::DnsError {
                            rcode: Some("name did not resolve".into()),
                            info_code: None,
                        });
                    }
                    Ok(Ok(addrs)) => addrs.collect(),
                }
            }
        };
        let mut permitted: Vec<SocketAddr> = Vec::with_capacity(candidates.len());
        let mut refusals: Vec<Refusal> = Vec::new();
        for addr in &candidates {
            match self.grant.check_address(addr.ip(), &self.shared.deny) {
                Ok(ip) if !permitted.iter().any(|p| p.ip() == ip) => {
                    permitted.push(SocketAddr::new(ip, port));
                }
                Ok(_) => {}
                Err(refusal) => refusals.push(refusal),
            }
        }
        if let Some(refusal) = refusals.first().filter(|_| permitted.is_empty()) {
            tracing::warn!(
                plugin = &*self.plugin,
                request_id = &*self.request_id,
                destination = %self.target,
                reason = %refusal,
                resolved = ?candidates.iter().map(SocketAddr::ip).collect::<Vec<_>>(),
                "outbound request refused after resolution"
            );
            return Err(Error::DestinationIpProhibited);
        }
        if permitted.is_empty() {
            return Err(Error::DestinationNotFound);
        }
        Ok(permitted)
    }
}

/// Connects to the first address that answers; these are the checked
/// addresses, never a fresh resolution.
async fn connect(addrs: &[SocketAddr], deadline: Instant) -> Result<TcpStream, Error> {
    let mut last_err = None;
    for addr in addrs {
        match timeout_at(deadline, TcpStream::connect(addr)).await {
            Err(_) => return Err(Error::ConnectionTimeout),
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Ok(Err(err)) => last_err = Some(err),
        }
    }
    Err(last_err.map_or(Error::ConnectionRefused, Error::Connect))
}

/// Maps a TLS handshake failure to the most specific `wasi:http` code.
fn tls_error(err: io::Error) -> Error {
    match err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::InvalidCertificate(_)) => Error::TlsCertificateError,
        Some(rustls::Error::AlertReceived(alert)) => Error::TlsAlertReceived {
            alert_id: Some(u8::from(*alert)),
            alert_message: Some(format!("{alert:?}")),
        },
        _ => Error::Tls(err),
    }
}

/// A response body that stops at the grant's size cap and the request's
/// deadline, counting bytes as they stream in, so a hostile or broken
/// upstream cannot make the host buffer or wait without bound.
struct CappedBody {
    inner: Incoming,
    received: u64,
    limit: u64,
    deadline: Pin<Box<Sleep>>,
    failed: bool,
    plugin: Arc<str>,
    request_id: Arc<str>,
    destination: String,
}

impl Body for CappedBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        if this.failed {
            return Poll::Ready(None);
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.failed = true;
            tracing::warn!(plugin = &*this.plugin, request_id = &*this.request_id, destination = %this.destination, "outbound response stopped: timeout_ms reached");
            return Poll::Ready(Some(Err(Error::HttpResponseTimeout)));
        }
        let frame = match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
            None => return Poll::Ready(None),
            Some(Err(err)) => {
                this.failed = true;
                let err = if err.is_timeout() {
                    Error::HttpResponseTimeout
                } else {
                    Error::Hyper(err)
                };
                return Poll::Ready(Some(Err(err)));
            }
            Some(Ok(frame)) => frame,
        };
        if let Some(data) = frame.data_ref() {
            this.received = this.received.saturating_add(data.len() as u64);
            if this.received > this.limit {
                this.failed = true;
                tracing::warn!(plugin = &*this.plugin, request_id = &*this.request_id, destination = %this.destination, limit = this.limit, "outbound response stopped: body over max_response_bytes");
                return Poll::Ready(Some(Err(Error::HttpResponseBodySize(Some(this.limit)))));
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
