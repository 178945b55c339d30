//! Accepts connections and serves HTTP/1.1 and HTTP/2 cleartext (prior knowledge) on the same
//! port until told to stop.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::FutureExt;
use http::{Request, Response};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::error::ApiError;
use crate::protocol::{self, Body, DropConnection, MAX_BODY_BYTES, Services};

/// How long in-flight requests may take to finish once shutdown starts.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `listener` until `shutdown` completes, then lets in-flight requests finish.
pub(crate) async fn serve(
    listener: TcpListener,
    services: Services,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http2()
        .max_frame_size(1 << 20)
        .initial_stream_window_size(4 << 20)
        .initial_connection_window_size(8 << 20);
    let graceful = GracefulShutdown::new();
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
                let _ = socket.set_nodelay(true);
                let services = services.clone();
                let service = service_fn(move |request| {
                    let services = services.clone();
                    async move { answer_or_500(&services, request).await }
                });
                let connection = builder.serve_connection(TokioIo::new(socket), service).into_owned();
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(error) = connection.await {
                        tracing::debug!(%peer, %error, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("in-flight requests did not finish within {DRAIN_TIMEOUT:?}");
    }
}

/// Answers a request; a bug that panics becomes an InternalFailure answer instead of a dropped
/// connection. An error closes the connection without an answer (an injected fault).
async fn answer_or_500(
    services: &Services,
    request: Request<Incoming>,
) -> Result<Response<Body>, DropConnection> {
    match AssertUnwindSafe(answer(services, request))
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
) -> Result<Response<Body>, DropConnection> {
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            let too_large = error
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some();
            let error = if too_large {
                ApiError::RequestEntityTooLarge(format!(
                    "Request body is larger than {MAX_BODY_BYTES} bytes"
                ))
            } else {
                ApiError::Serialization(format!("Could not read the request body: {error}"))
            };
            return Ok(protocol::Wire::of(&parts.headers).error(&error));
        }
    };
    protocol::handle(services, &parts.method, &parts.uri, &parts.headers, body).await
}
