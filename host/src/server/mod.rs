//! The listening socket: accepts connections, sets `TCP_NODELAY`, performs the
//! TLS handshake under a deadline, and serves HTTP/1.1 or HTTP/2 (by ALPN or
//! preface) with the application router until shutdown.
//!
//! Knows nothing about MCP; it serves whatever `Router` it is given.

mod timeouts;

pub use timeouts::BodyTimeout;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use timeouts::{Activity, DeadlineBody, InUseBody};

/// How long open connections get to finish after shutdown is requested.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Serving options fixed at start-up.
pub struct ServeConfig {
    /// `None` serves plain HTTP (only where config allowed it).
    pub tls: Option<Arc<crate::tls::Certificates>>,
    /// Deadline for the TLS handshake and for each request head (which,
    /// for HTTP/1.1, includes waiting idle for the next request).
    pub header_timeout: Duration,
    /// Deadline for a whole request body, from its head.
    pub body_timeout: Duration,
    /// A connection with no request in flight for this long is closed
    /// gracefully (HTTP/2 pings are not requests).
    pub idle_timeout: Duration,
    /// Connections open at once; accepting pauses at the cap.
    pub max_connections: usize,
}

/// Accepts connections on `listener` until `shutdown` resolves, then lets
/// open connections drain for a bounded time.
///
/// Strategy: one task per connection, owned by this function through a
/// `watch` channel that tells each to shut down gracefully.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    config: ServeConfig,
    shutdown: impl Future<Output = ()>,
) {
    let certificates = config.tls;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    let slots = Arc::new(tokio::sync::Semaphore::new(config.max_connections.max(1)));
    loop {
        // Wait for a free slot before accepting, so a flood of connections
        // queues in the kernel instead of exhausting file descriptors here.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!("accept failed: {err}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Responses go out in one write; without NODELAY a second small write
        // would wait for the client's delayed ACK (~40 ms).
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        // The configuration current at accept time: a reload affects new
        // connections only.
        let acceptor = certificates
            .as_ref()
            .map(|c| TlsAcceptor::from(c.current()));
        let stop_rx = stop_rx.clone();
        let timeouts = Timeouts {
            header: config.header_timeout,
            body: config.body_timeout,
            idle: config.idle_timeout,
        };
        tokio::spawn(async move {
            let _slot = slot;
            match acceptor {
                Some(acceptor) => {
                    match tokio::time::timeout(timeouts.header, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            // Verified by rustls during the handshake when
                            // mutual TLS is on; absent otherwise.
                            let identity = tls
                                .get_ref()
                                .1
                                .peer_certificates()
                                .and_then(crate::tls::ClientIdentity::from_chain)
                                .map(Arc::new);
                            serve_connection(tls, peer, identity, app, timeouts, stop_rx).await
                        }
                        Ok(Err(err)) => tracing::debug!(%peer, "TLS handshake failed: {err}"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
                None => serve_connection(stream, peer, None, app, timeouts, stop_rx).await,
            }
        });
    }
    let _ = stop_tx.send(true);
    let deadline = tokio::time::Instant::now() + DRAIN_TIMEOUT;
    while stop_tx.receiver_count() > 1 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[derive(Clone, Copy)]
struct Timeouts {
    header: Duration,
    body: Duration,
    idle: Duration,
}

async fn serve_connection<I>(
    io: I,
    peer: SocketAddr,
    identity: Option<Arc<crate::tls::ClientIdentity>>,
    app: Router,
    timeouts: Timeouts,
    mut stop_rx: watch::Receiver<bool>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let activity = Activity::new();
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            // In use from the head until the response body is sent.
            let in_use = activity.begin();
            req.extensions_mut().insert(ConnectInfo(peer));
            if let Some(identity) = &identity {
                req.extensions_mut().insert(identity.clone());
            }
            let response = app
                .clone()
                .oneshot(req.map(|body| Body::new(DeadlineBody::new(body, timeouts.body))));
            async move {
                let response = response.await?;
                Ok::<_, std::convert::Infallible>(
                    response.map(|body| Body::new(InUseBody::new(body, in_use))),
                )
            }
        })
    };
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.header)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)));
    let conn = builder.serve_connection(TokioIo::new(io), service);
    let mut conn = std::pin::pin!(conn);
    let stopping = async {
        let _ = stop_rx.wait_for(|stop| *stop).await;
    };
    let mut stopping = std::pin::pin!(stopping);
    tokio::select! {
        res = conn.as_mut() => {
            if let Err(err) = res {
                tracing::debug!(%peer, "connection ended: {err}");
            }
            return;
        }
        () = activity.idle_for(timeouts.idle) => {
            // No request is in flight (a long tool call or an open event
            // stream is use, however quiet). Graceful: HTTP/2 peers get a
            // GOAWAY, and a request that raced in is still answered.
            tracing::debug!(%peer, "closing an idle connection");
            conn.as_mut().graceful_shutdown();
        }
        () = stopping.as_mut() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(DRAIN_TIMEOUT, conn).await;
            return;
        }
    }
    tokio::select! {
        _ = conn.as_mut() => {}
        () = stopping => {
            let _ = tokio::time::timeout(DRAIN_TIMEOUT, conn).await;
        }
    }
}
