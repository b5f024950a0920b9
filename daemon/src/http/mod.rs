//! The HTTP endpoint: `/metrics`, `/health`, `/ready` and the source API
//! (see [`routes`]), on hyper's HTTP/1.1 server.
//!
//! It shares the async runtime with the commit tasks but never the plugin
//! threads, and every connection is bounded: header size, time to send the
//! headers, total connection time, body size, and the number of connections
//! at once. A slow or hostile client costs one connection slot until its
//! time runs out; the pipeline never waits for it.

mod routes;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::pipeline::Supervisor;

/// Largest request head (request line and headers) accepted; larger ones
/// get `431`. hyper's minimum buffer is 8 KiB.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Largest request body accepted; no endpoint needs one, so this only
/// bounds what a client may announce (`413` beyond it).
pub const MAX_BODY_BYTES: u64 = 64 * 1024;
/// How long a client may take to send a request head.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one connection may stay open, keep-alive included.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(60);
/// Connections served at once; more wait in the kernel's accept queue.
pub const MAX_CONNECTIONS: usize = 64;

/// Errors of the HTTP endpoint.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The listen address could not be bound.
    #[error("cannot listen on {address} (`[http] listen`): {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// What the handlers need.
#[derive(Debug)]
pub struct HttpState {
    /// The sources, readiness and reloads.
    pub supervisor: Arc<Supervisor>,
    /// `[http] token`.
    pub token: Option<String>,
    /// The cluster membership, with `[cluster]`.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
}

/// Binds `address`. Separate from [`serve`] so a port in use fails the
/// start of the daemon, with the address in the message.
pub async fn bind(address: SocketAddr) -> Result<TcpListener, HttpError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| HttpError::Bind { address, source })
}

/// Serves connections from `listener` until `shutdown`.
pub async fn serve(listener: TcpListener, state: Arc<HttpState>, shutdown: CancellationToken) {
    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, "HTTP endpoint listening: /metrics, /health, /ready, /api/v1/sources.");
    }
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    // Each connection task ends on `shutdown`; the server returns only once
    // they all have, so the daemon's stop waits for replies in progress.
    let connections = TaskTracker::new();
    loop {
        // Wait for a free slot before accepting, so excess clients queue in
        // the kernel instead of holding memory here.
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = shutdown.cancelled() => return,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait, try again.
                    tracing::warn!(error = %e, "HTTP accept failed.");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let state = state.clone();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let _permit = permit;
            let service = service_fn(move |request| {
                let state = state.clone();
                async move {
                    Ok::<_, std::convert::Infallible>(routes::handle(&state, peer, request).await)
                }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .max_buf_size(MAX_HEADER_BYTES)
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                r = tokio::time::timeout(CONNECTION_TIMEOUT, connection) => match r {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "HTTP connection ended with an error."),
                    Err(_) => tracing::debug!(%peer, "HTTP connection closed: time limit reached."),
                },
                () = shutdown.cancelled() => {}
            }
        });
    }
    connections.close();
    connections.wait().await;
}
