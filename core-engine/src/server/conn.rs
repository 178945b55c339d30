//! What one connection is doing, so the listener can close it when it idles or stalls: requests
//! in flight, when the last one ended, and whether a request head has started to arrive.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::{Duration, Instant};

/// One connection's activity, shared by its socket wrapper, its requests and its watchdog.
#[derive(Clone, Debug)]
pub(super) struct Tracker {
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
}

#[derive(Debug)]
struct State {
    accepted: Instant,
    /// Requests whose answer is not finished (a streamed answer counts until it ends).
    in_flight: usize,
    /// Requests received so far.
    received: u64,
    /// When bytes of a request head first arrived with nothing in flight (HTTP/1 only).
    head_started: Option<Instant>,
    /// When the last request in flight ended.
    idle_since: Instant,
    /// Whether the client spoke HTTP/2; unknown until its first bytes.
    http2: Option<bool>,
    /// Asked to close, to make room for a new connection.
    evicted: bool,
}

/// The limits a connection's watchdog applies.
#[derive(Clone, Copy, Debug)]
pub(super) struct Timeouts {
    pub(super) header_read: Duration,
    pub(super) idle: Duration,
}

impl Tracker {
    pub(super) fn new() -> Self {
        let now = Instant::now();
        Self {
            state: Arc::new(Mutex::new(State {
                accepted: now,
                in_flight: 0,
                received: 0,
                head_started: None,
                idle_since: now,
                http2: None,
                evicted: false,
            })),
            changed: Arc::new(Notify::new()),
        }
    }

    /// A request has arrived; it is in flight until the guard is dropped.
    pub(super) fn begin(&self) -> InFlight {
        let mut state = self.state.lock();
        state.in_flight += 1;
        state.received += 1;
        state.head_started = None;
        drop(state);
        self.changed.notify_one();
        InFlight(self.clone())
    }

    /// Bytes arrived from the client.
    fn on_read(&self, bytes: &[u8]) {
        let mut state = self.state.lock();
        if state.http2.is_none() && bytes.len() >= 3 {
            state.http2 = Some(bytes.starts_with(b"PRI"));
        }
        if state.http2 == Some(false) && state.in_flight == 0 && state.head_started.is_none() {
            state.head_started = Some(Instant::now());
            drop(state);
            self.changed.notify_one();
        }
    }

    /// Whether nothing is in flight.
    pub(super) fn is_idle(&self) -> bool {
        self.state.lock().in_flight == 0
    }

    /// Whether the client speaks HTTP/2 (closed with GOAWAY rather than by dropping the socket).
    pub(super) fn is_http2(&self) -> bool {
        self.state.lock().http2 == Some(true)
    }

    /// Resolves when the activity changed, so the watchdog re-reads its deadline.
    pub(super) async fn changed(&self) {
        self.changed.notified().await;
    }

    /// When to look again, or why the connection should be closed now. A request in flight is
    /// never cut here: only heads that stall, connections that send nothing, and idle ones.
    pub(super) fn check(&self, limits: Timeouts) -> Result<Instant, &'static str> {
        let state = self.state.lock();
        let now = Instant::now();
        let (deadline, why) = if state.in_flight > 0 {
            return Ok(now + limits.idle);
        } else if state.evicted {
            return Err("closed to make room for a new connection");
        } else if let Some(started) = state.head_started {
            (
                started + limits.header_read,
                "the request head did not arrive within the header read timeout",
            )
        } else if state.received == 0 {
            (
                state.accepted + limits.header_read,
                "no request within the header read timeout of connecting",
            )
        } else {
            (state.idle_since + limits.idle, "idle for the idle timeout")
        };
        if now >= deadline {
            Err(why)
        } else {
            Ok(deadline)
        }
    }
}

impl Tracker {
    /// How willing this connection is to make room, lowest first: one that never sent a
    /// request, then the one idle longest. `None` while a request is in flight.
    fn eviction_rank(&self) -> Option<(bool, Instant)> {
        let state = self.state.lock();
        if state.in_flight > 0 || state.evicted {
            return None;
        }
        Some(match state.received {
            0 => (false, state.accepted),
            _ => (true, state.idle_since),
        })
    }

    fn evict(&self) {
        self.state.lock().evicted = true;
        self.changed.notify_one();
    }
}

/// The open connections, so that one with nothing in flight can make room for a new one.
#[derive(Debug, Default)]
pub(super) struct Open {
    connections: Mutex<HashMap<u64, Tracker>>,
    next_id: AtomicU64,
}

impl Open {
    /// Lists a connection until the returned guard is dropped.
    pub(super) fn register(self: &Arc<Self>, tracker: &Tracker) -> Registered {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.connections.lock().insert(id, tracker.clone());
        Registered {
            open: self.clone(),
            id,
        }
    }

    /// Asks the connection most willing to close (see [`Tracker::eviction_rank`]) to close;
    /// false if every connection has a request in flight.
    pub(super) fn evict_one(&self) -> bool {
        let connections = self.connections.lock();
        let victim = connections
            .values()
            .filter_map(|tracker| Some((tracker.eviction_rank()?, tracker)))
            .min_by_key(|(rank, _)| *rank);
        match victim {
            Some((_, tracker)) => {
                tracker.evict();
                true
            }
            None => false,
        }
    }
}

/// A listed connection; dropping it removes it from the list.
#[derive(Debug)]
pub(super) struct Registered {
    open: Arc<Open>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.open.connections.lock().remove(&self.id);
    }
}

/// A request in flight; dropping it marks the request done.
#[derive(Debug)]
pub(super) struct InFlight(Tracker);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut state = self.0.state.lock();
        state.in_flight -= 1;
        state.idle_since = Instant::now();
        drop(state);
        self.0.changed.notify_one();
    }
}

/// A socket that reports what it reads to its connection's [`Tracker`].
#[derive(Debug)]
pub(super) struct TrackedIo<T> {
    inner: T,
    tracker: Tracker,
}

impl<T> TrackedIo<T> {
    pub(super) fn new(inner: T, tracker: Tracker) -> Self {
        Self { inner, tracker }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for TrackedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.tracker.on_read(&buf.filled()[before..]);
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for TrackedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// An answer's body that keeps its request in flight until the body is done or dropped.
#[derive(Debug)]
pub(super) struct TrackedBody {
    inner: crate::protocol::Body,
    _in_flight: InFlight,
}

impl TrackedBody {
    pub(super) fn new(inner: crate::protocol::Body, in_flight: InFlight) -> Self {
        Self {
            inner,
            _in_flight: in_flight,
        }
    }
}

impl hyper::body::Body for TrackedBody {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    // Forwarded so that whole answers keep their Content-Length.
    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}
