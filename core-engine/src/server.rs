//! Accepts connections and serves HTTP/1.1 and HTTP/2 cleartext (prior knowledge) on the same
//! port until told to stop, or, with TLS, HTTP/1.1 and HTTP/2 as negotiated through ALPN, within
//! the listener's limits ([`ListenerConfig`]):
//!
//! - A connection must finish its TLS handshake and send its first request within the header
//!   read timeout of connecting, and an HTTP/1 request head, once started, must arrive within
//!   it; otherwise the connection is closed.
//! - A connection with no request in flight for the idle timeout is closed. A request in
//!   flight (a SubscribeToShard stream included) is never cut.
//! - At most `max_connections` connections are served. One more takes the place of an open
//!   connection with no request in flight (one that never sent a request first, then the one
//!   idle longest), which is closed; if every connection is busy, it is answered HTTP 503
//!   `ServiceUnavailable` and closed, while the others carry on.
//! - A body declared larger than [`MAX_BODY_BYTES`] is refused (413) before it is read, one
//!   that streams past it is cut there, and one that stalls for the header read timeout
//!   between two chunks has its connection closed.

mod conn;
mod limit;
mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::FutureExt;
use http::{HeaderMap, Request, Response, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;

use crate::error::ApiError;
use crate::protocol::{self, Body, DropConnection, MAX_BODY_BYTES, Services};
use conn::{Open, Timeouts, TrackedBody, TrackedIo, Tracker};
use limit::default_max_connections;
pub(crate) use tls::ServerTls;
use tls::Stream;

/// How long in-flight requests may take to finish once shutdown starts.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// How long an HTTP/2 connection closed for idling may take to say goodbye.
const GOAWAY_GRACE: Duration = Duration::from_secs(5);

/// The default header read timeout.
pub(crate) const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The default idle timeout: longer than the SDKs keep idle pooled connections (60 s for
/// Java, 90 s for Rust and Go), so a pooled connection is normally closed by its client first.
pub(crate) const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// The listener's limits, set on the engine builder.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ListenerConfig {
    /// How long a connection may take to send its first request, an HTTP/1 request head to
    /// arrive once started, and a request body to make progress.
    pub(crate) header_read_timeout: Duration,
    /// How long a connection with no request in flight stays open.
    pub(crate) idle_timeout: Duration,
    /// The most connections served at once; `None` for [`default_max_connections`].
    pub(crate) max_connections: Option<usize>,
}

impl Default for ListenerConfig {
    fn default() -> Self {
        Self {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: None,
        }
    }
}

/// What every connection's task shares.
struct Shared {
    builder: auto::Builder<TokioExecutor>,
    services: Services,
    timeouts: Timeouts,
    open: Arc<Open>,
    stopped: watch::Receiver<bool>,
    tls: Option<Arc<ServerTls>>,
}

/// Serves `listener` until `shutdown` completes, then lets in-flight requests finish.
pub(crate) async fn serve(
    listener: TcpListener,
    services: Services,
    config: ListenerConfig,
    tls: Option<Arc<ServerTls>>,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The watchdog in `run_connection` times heads out; hyper's own timeout would also cut
    // idle keep-alive connections that SDK pools want to reuse.
    builder.http1().header_read_timeout(None);
    builder
        .http2()
        .max_frame_size(1 << 20)
        .initial_stream_window_size(4 << 20)
        .initial_connection_window_size(8 << 20);
    let max = config
        .max_connections
        .unwrap_or_else(default_max_connections);
    let (stop, stopped) = watch::channel(false);
    let shared = Arc::new(Shared {
        builder,
        services,
        timeouts: Timeouts {
            header_read: config.header_read_timeout,
            idle: config.idle_timeout,
        },
        open: Arc::default(),
        stopped,
        tls,
    });
    // Each connection holds a slot until it ends, so all slots back means all are done.
    let slots = Arc::new(Semaphore::new(max));
    let over_limit = Arc::new(Semaphore::new(limit::OVER_LIMIT_AT_ONCE));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (socket, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(error) => {
                        // Usually out of file descriptors: back off instead of spinning.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                match slots.clone().try_acquire_owned() {
                    Ok(slot) => {
                        tokio::spawn(run_connection(shared.clone(), socket, peer, slot));
                    }
                    Err(_) => make_room(&shared, &slots, &over_limit, max, socket, peer),
                }
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    let _ = stop.send(true);
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    if tokio::time::timeout(DRAIN_TIMEOUT, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("in-flight requests did not finish within {DRAIN_TIMEOUT:?}");
    }
}

/// A connection over the limit: closes the open connection most willing to go (one with no
/// request in flight) and serves the new one in its place, or, if every connection is busy,
/// answers 503. Never holds up the accept loop.
fn make_room(
    shared: &Arc<Shared>,
    slots: &Arc<Semaphore>,
    over_limit: &Arc<Semaphore>,
    max: usize,
    socket: TcpStream,
    peer: SocketAddr,
) {
    let Ok(handling) = over_limit.clone().try_acquire_owned() else {
        tracing::warn!(%peer, "closed a connection over the connection limit");
        return;
    };
    let evicted = shared.open.evict_one();
    let shared = shared.clone();
    let slots = slots.clone();
    tokio::spawn(async move {
        if evicted
            && let Ok(Ok(slot)) =
                tokio::time::timeout(limit::ROOM_WAIT, slots.acquire_owned()).await
        {
            drop(handling);
            return run_connection(shared, socket, peer, slot).await;
        }
        tracing::warn!(%peer, max, "refused a connection over the connection limit");
        match &shared.tls {
            None => limit::refuse(socket, max).await,
            // Over HTTP/1.1 whatever the client offered, so that it can read the 503; the
            // handshake gets the time a newcomer gets to wait for room.
            Some(tls) => {
                let handshake = tls.handshake_http1(socket);
                if let Ok(Some(stream)) = tokio::time::timeout(limit::ROOM_WAIT, handshake).await {
                    limit::refuse(stream, max).await;
                }
            }
        }
        drop(handling);
    });
}

/// Serves one connection until it ends, closing it when it stalls or idles (see
/// [`Tracker::check`]) or when the engine stops.
async fn run_connection(
    shared: Arc<Shared>,
    socket: TcpStream,
    peer: SocketAddr,
    _slot: OwnedSemaphorePermit,
) {
    let _ = socket.set_nodelay(true);
    let tracker = Tracker::new();
    let _listed = shared.open.register(&tracker);
    let timeouts = shared.timeouts;
    let mut stopped = shared.stopped.clone();
    let socket = match &shared.tls {
        None => Stream::Plain(socket),
        Some(tls) => {
            match tls
                .handshake(socket, peer, &tracker, timeouts, &mut stopped)
                .await
            {
                Some(stream) => Stream::Tls(Box::new(stream)),
                None => return,
            }
        }
    };
    let service = {
        let services = shared.services.clone();
        let tracker = tracker.clone();
        service_fn(move |request| {
            let in_flight = tracker.begin();
            let services = services.clone();
            async move {
                let response = answer_or_500(&services, request, timeouts).await?;
                // The request stays in flight until its answer has been sent.
                Ok::<_, DropConnection>(response.map(|body| TrackedBody::new(body, in_flight)))
            }
        })
    };
    let io = TokioIo::new(TrackedIo::new(socket, tracker.clone()));
    let connection = shared.builder.serve_connection(io, service);
    tokio::pin!(connection);
    // When this connection must be gone by, once it has been asked to close.
    let mut closing: Option<Instant> = None;
    loop {
        let check = match tracker.check(timeouts) {
            Ok(next) => next,
            Err(why) if closing.is_none() => {
                tracing::debug!(%peer, why, "closing connection");
                if !tracker.is_http2() {
                    // Nothing in flight: drop the socket.
                    return;
                }
                connection.as_mut().graceful_shutdown();
                closing = Some(Instant::now() + GOAWAY_GRACE);
                continue;
            }
            Err(_) => closing.unwrap_or_else(Instant::now),
        };
        let wake = closing.map_or(check, |by| by.min(check));
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%peer, %error, "connection ended with an error");
                }
                return;
            }
            _ = stopped.wait_for(|stop| *stop), if closing.is_none() => {
                if tracker.is_idle() && !tracker.is_http2() {
                    return;
                }
                connection.as_mut().graceful_shutdown();
                closing = Some(Instant::now() + DRAIN_TIMEOUT);
            }
            () = tracker.changed() => {}
            () = tokio::time::sleep_until(wake) => {
                if closing.is_some_and(|by| Instant::now() >= by) {
                    return;
                }
            }
        }
    }
}

/// Answers a request; a bug that panics becomes an InternalFailure answer instead of a dropped
/// connection. An error closes the connection without an answer (an injected fault, or a body
/// that stalled).
async fn answer_or_500(
    services: &Services,
    request: Request<Incoming>,
    timeouts: Timeouts,
) -> Result<Response<Body>, DropConnection> {
    match AssertUnwindSafe(answer(services, request, timeouts))
        .catch_unwind()
        .await
    {
        Ok(answer) => answer,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(panic = %what, "request handler panicked");
            Ok(protocol::error_response(&ApiError::InternalFailure(
                "Internal service failure".into(),
            )))
        }
    }
}

async fn answer(
    services: &Services,
    request: Request<Incoming>,
    timeouts: Timeouts,
) -> Result<Response<Body>, DropConnection> {
    let (parts, body) = request.into_parts();
    let body = match read_body(&parts.headers, body, timeouts.header_read).await? {
        Ok(body) => body,
        Err(error) => return Ok(protocol::Wire::of(&parts.headers).error(&error)),
    };
    protocol::handle(services, &parts.method, &parts.uri, &parts.headers, body).await
}

/// Reads a request body of at most [`MAX_BODY_BYTES`]: a larger declared length is refused
/// before anything is read, and a body that grows past the limit is refused as soon as it
/// does. A body that makes no progress for `stall` drops the connection.
async fn read_body(
    headers: &HeaderMap,
    mut body: Incoming,
    stall: Duration,
) -> Result<Result<Bytes, ApiError>, DropConnection> {
    let too_large = || {
        ApiError::RequestEntityTooLarge(format!(
            "Request body is larger than {MAX_BODY_BYTES} bytes"
        ))
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return Ok(Err(too_large()));
    }
    // Memory follows the bytes that actually arrive, never the length a client announces.
    let mut buffer = BytesMut::with_capacity(declared.map_or(0, |length| {
        usize::try_from(length).unwrap_or(0).min(64 << 10)
    }));
    loop {
        let frame = match tokio::time::timeout(stall, body.frame()).await {
            Err(_) => {
                tracing::debug!("request body stalled; closing the connection");
                return Err(DropConnection);
            }
            Ok(None) => break,
            Ok(Some(Err(error))) => {
                return Ok(Err(ApiError::Serialization(format!(
                    "Could not read the request body: {error}"
                ))));
            }
            Ok(Some(Ok(frame))) => frame,
        };
        if let Ok(data) = frame.into_data() {
            if buffer.len() + data.len() > MAX_BODY_BYTES {
                return Ok(Err(too_large()));
            }
            buffer.extend_from_slice(&data);
        }
    }
    Ok(Ok(buffer.freeze()))
}
