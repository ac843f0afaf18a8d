//! Serving connections within bounds: how many at once, and how long a client may take.
//!
//! `axum::serve` reaches none of hyper's per-connection knobs, so this is its accept loop with
//! three additions:
//!
//! - **A connection cap.** Past [`ConnectionLimits::max_connections`] open connections, a new
//!   one is answered `503` with `Retry-After` and closed at once, without a task or a timer: a
//!   flood of connections costs the server an accept and a write each.
//! - **A header timeout.** A client has [`ConnectionLimits::header_timeout`] to send a request's
//!   headers, counted from connecting or, on a kept-alive connection, from the previous response:
//!   a client that sends half a request, or keeps an idle connection, is dropped then.
//! - **Graceful shutdown** as before: stop accepting, finish the requests in flight, close idle
//!   connections.
//!
//! The body and whole-request timeouts are layers of the router (see [`crate::bounds`]).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tapgate_shared::{ErrorCode, ErrorEnvelope};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tower::{Service, ServiceExt};

/// How many connections, and how long each may wait for a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections served at once; more are refused with `503`.
    pub max_connections: usize,
    /// Time to send a request's headers (from connecting, or from the previous response).
    pub header_timeout: Duration,
    /// Longest pause while a request body streams in.
    pub body_idle_timeout: Duration,
    /// Longest a whole request may take, its body's upload included.
    pub request_timeout: Duration,
}

pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
pub const DEFAULT_HEADER_TIMEOUT_SECONDS: u64 = 10;
pub const DEFAULT_BODY_IDLE_TIMEOUT_SECONDS: u64 = 30;
/// 20 minutes: a 50 MiB tarball travels base64-encoded (about 67 MiB) and must arrive on a link
/// of about 450 kbit/s; a slower upload is cut off.
pub const DEFAULT_REQUEST_TIMEOUT_SECONDS: u64 = 20 * 60;

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_timeout: Duration::from_secs(DEFAULT_HEADER_TIMEOUT_SECONDS),
            body_idle_timeout: Duration::from_secs(DEFAULT_BODY_IDLE_TIMEOUT_SECONDS),
            request_timeout: Duration::from_secs(DEFAULT_REQUEST_TIMEOUT_SECONDS),
        }
    }
}

/// Seconds a refused client is asked to wait.
const REFUSED_RETRY_AFTER_SECONDS: u32 = 5;

/// Serves `app` on `listener` until `shutdown` resolves, then lets the requests in flight finish.
pub async fn run(
    listener: TcpListener,
    app: Router,
    limits: &ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).keep_alive(true);
    let http = Arc::new(http);
    let refusal = refusal_response();
    let mut refused = RefusalLog::default();
    // Dropping the receiver tells every connection to shut down gracefully.
    let (signal_tx, signal_rx) = watch::channel(());
    tokio::spawn(async move {
        shutdown.await;
        drop(signal_rx);
    });
    // Every connection holds a receiver; the loop waits for them all to drop at the end.
    let (close_tx, close_rx) = watch::channel(());
    let mut make_service = app.into_make_service_with_connect_info::<SocketAddr>();
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = signal_tx.closed() => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            refuse(&stream, &refusal);
            refused.note(limits.max_connections);
            continue;
        };
        let service = match ServiceExt::<SocketAddr>::ready(&mut make_service).await {
            Ok(ready) => ready.call(remote).await,
            Err(never) => match never {},
        };
        let service = match service {
            Ok(service) => service,
            Err(never) => match never {},
        };
        let service =
            TowerToHyperService::new(service.map_request(|req: Request<Incoming>| req.map(Body::new)));
        let http = http.clone();
        let signal_tx = signal_tx.clone();
        let close_rx = close_rx.clone();
        tokio::spawn(async move {
            let mut conn = pin!(http.serve_connection(TokioIo::new(stream), service));
            let mut shutdown = pin!(signal_tx.closed());
            let mut shutting_down = false;
            loop {
                tokio::select! {
                    result = conn.as_mut() => {
                        if let Err(e) = result {
                            tracing::debug!(error = %e, client = %remote, "connection ended with an error");
                        }
                        break;
                    }
                    () = &mut shutdown, if !shutting_down => {
                        shutting_down = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
            drop(permit);
            drop(close_rx);
        });
    }
    drop(close_rx);
    drop(listener);
    close_tx.closed().await;
    Ok(())
}

/// The bytes a refused connection is sent: `503`, `Retry-After`, the error envelope.
fn refusal_response() -> Vec<u8> {
    let envelope = ErrorEnvelope::new(
        ErrorCode::Unavailable,
        format!(
            "the registry is serving as many connections as it allows: try again in {REFUSED_RETRY_AFTER_SECONDS} seconds"
        ),
    );
    let body = serde_json::to_string(&envelope).unwrap_or_default();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: {REFUSED_RETRY_AFTER_SECONDS}\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Answers a connection over the cap without waiting on it: whatever the client already sent is
/// read (so closing does not reset the connection under the answer), the answer is written into
/// the fresh socket's empty send buffer, and the socket is closed as it drops.
fn refuse(stream: &TcpStream, refusal: &[u8]) {
    let mut scratch = [0u8; 4096];
    let _ = stream.try_read(&mut scratch);
    let _ = stream.try_write(refusal);
}

/// Warns about refused connections at most every ten seconds.
#[derive(Debug, Default)]
struct RefusalLog {
    since_warning: u64,
    last_warning: Option<Instant>,
}

impl RefusalLog {
    fn note(&mut self, max_connections: usize) {
        self.since_warning += 1;
        if self.last_warning.is_none_or(|at| at.elapsed() >= Duration::from_secs(10)) {
            tracing::warn!(
                max_connections,
                refused = self.since_warning,
                "connection cap reached: refusing new connections with 503"
            );
            self.since_warning = 0;
            self.last_warning = Some(Instant::now());
        }
    }
}

/// As `axum::serve`: a failed accept of one connection is skipped; anything else (out of file
/// descriptors) is logged and waited out for a second.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accepting a connection failed; retrying in a second");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
