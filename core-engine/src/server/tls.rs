//! TLS on accepted connections: the handshake, within the connection's header read timeout,
//! and the protocol each client negotiated through ALPN.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::conn::{Timeouts, Tracker};
use crate::tls::{LoadedTls, TlsConnections};

/// The listener's TLS settings and what its clients negotiated.
pub(crate) struct ServerTls {
    acceptor: TlsAcceptor,
    http1_acceptor: TlsAcceptor,
    ca_pem: Option<String>,
    h2: AtomicU64,
    http1: AtomicU64,
    no_alpn: AtomicU64,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("self_signed", &self.ca_pem.is_some())
            .field("connections", &self.connections())
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    pub(crate) fn new(loaded: LoadedTls) -> Self {
        Self {
            acceptor: TlsAcceptor::from(loaded.config),
            http1_acceptor: TlsAcceptor::from(loaded.http1_config),
            ca_pem: loaded.ca_pem,
            h2: AtomicU64::new(0),
            http1: AtomicU64::new(0),
            no_alpn: AtomicU64::new(0),
        }
    }

    /// The generated CA's certificate, for a self-signed engine.
    pub(crate) fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// What clients negotiated so far.
    pub(crate) fn connections(&self) -> TlsConnections {
        TlsConnections {
            h2: self.h2.load(Ordering::Relaxed),
            http1: self.http1.load(Ordering::Relaxed),
            no_alpn: self.no_alpn.load(Ordering::Relaxed),
        }
    }

    /// Completes the handshake, or gives up (`None`) when the connection's watchdog would close
    /// it: at the header read timeout counted from connecting, when it is evicted to make room,
    /// or when the engine stops.
    pub(super) async fn handshake(
        &self,
        socket: TcpStream,
        peer: SocketAddr,
        tracker: &Tracker,
        timeouts: Timeouts,
        stopped: &mut watch::Receiver<bool>,
    ) -> Option<TlsStream<TcpStream>> {
        let accept = self.acceptor.accept(socket);
        tokio::pin!(accept);
        let stream = loop {
            let wake = match tracker.check(timeouts) {
                Ok(wake) => wake,
                Err(why) => {
                    tracing::debug!(%peer, why, "closing connection during the TLS handshake");
                    return None;
                }
            };
            tokio::select! {
                accepted = &mut accept => match accepted {
                    Ok(stream) => break stream,
                    Err(error) => {
                        tracing::debug!(%peer, %error, "TLS handshake failed");
                        return None;
                    }
                },
                () = tracker.changed() => {}
                () = tokio::time::sleep_until(wake) => {}
                _ = stopped.wait_for(|stop| *stop) => return None,
            }
        };
        let alpn = stream.get_ref().1.alpn_protocol();
        let counter = match alpn {
            Some(b"h2") => &self.h2,
            Some(_) => &self.http1,
            None => &self.no_alpn,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            %peer,
            alpn = alpn.map(String::from_utf8_lossy).as_deref().unwrap_or("none"),
            "TLS handshake done"
        );
        Some(stream)
    }

    /// A handshake offering HTTP/1.1 only, for a connection to be answered with an HTTP/1.1
    /// 503; `None` if it fails.
    pub(super) async fn handshake_http1(&self, socket: TcpStream) -> Option<TlsStream<TcpStream>> {
        self.http1_acceptor.accept(socket).await.ok()
    }
}

/// An accepted connection, with or without TLS.
#[derive(Debug)]
pub(super) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(s) => s.is_write_vectored(),
            Self::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
