//! The connection limit: its default, from the process's open-file limit, and the answer a
//! connection over it gets.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The most connections served by default, when the open-file limit allows it.
const DEFAULT_MAX_CONNECTIONS: usize = 4096;

/// File descriptors left for everything but served connections: logs, refusals, the runtime.
const RESERVED_FDS: u64 = 128;

/// Connections over the limit being handled at once (waiting for room or being refused);
/// past this, more are closed without an answer.
pub(super) const OVER_LIMIT_AT_ONCE: usize = 64;

/// How long a connection over the limit waits for another to make room.
pub(super) const ROOM_WAIT: Duration = Duration::from_secs(1);

/// How long a refused connection may take to receive its answer.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(1);

/// [`DEFAULT_MAX_CONNECTIONS`], or fewer if the open-file limit is low, so that connections
/// alone never exhaust the process's file descriptors.
pub(super) fn default_max_connections() -> usize {
    match open_file_limit() {
        Some(limit) => {
            let room = limit.saturating_sub(RESERVED_FDS).max(16);
            DEFAULT_MAX_CONNECTIONS.min(usize::try_from(room).unwrap_or(usize::MAX))
        }
        None => DEFAULT_MAX_CONNECTIONS,
    }
}

#[cfg(unix)]
fn open_file_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

#[cfg(not(unix))]
fn open_file_limit() -> Option<u64> {
    None
}

/// Answers a connection over the limit with HTTP 503 `ServiceUnavailable` (which the AWS SDKs
/// retry) and closes it.
pub(super) async fn refuse(mut socket: impl AsyncRead + AsyncWrite + Unpin, max: usize) {
    let body = format!(
        r#"{{"__type":"ServiceUnavailable","message":"The engine is serving its maximum of {max} connections, all busy; retry later."}}"#
    );
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/x-amz-json-1.1\r\n\
         x-amzn-ErrorType: ServiceUnavailable\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(REFUSAL_TIMEOUT, async {
        // Answer once the request head is in (an HTTP client takes an answer that comes
        // before its request as a broken connection), or at once if it is slow to come.
        let mut head = Vec::new();
        let mut chunk = [0u8; 4096];
        let _ = tokio::time::timeout(REFUSAL_TIMEOUT / 2, async {
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 << 10 {
                match socket.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(read) => head.extend_from_slice(&chunk[..read]),
                }
            }
        })
        .await;
        socket.write_all(answer.as_bytes()).await?;
        socket.shutdown().await?;
        // Read what the client sent, so that closing does not reset the connection before
        // the client has read the answer.
        while socket.read(&mut chunk).await? > 0 {}
        Ok::<_, std::io::Error>(())
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_stays_under_the_open_file_limit() {
        let max = default_max_connections();
        assert!((16..=DEFAULT_MAX_CONNECTIONS).contains(&max));
        if let Some(limit) = open_file_limit() {
            assert!(max as u64 <= limit.saturating_sub(RESERVED_FDS).max(16));
        }
    }
}
