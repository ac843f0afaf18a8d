//! Bounded connections: a client that sends half a request is dropped after the header timeout,
//! connections past the cap are refused with 503, stalled bodies and slow requests end in 408.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{Backend, TestApp};

/// Generous bound for "the server reacts": the configured timeouts are 1 second.
const WITHIN: Duration = Duration::from_secs(15);

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.base.trim_start_matches("http://")).await.unwrap()
}

/// Reads until the server closes the connection; what it sent before.
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let read = tokio::time::timeout(WITHIN, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the server kept the connection open; it sent: {:?}",
        String::from_utf8_lossy(&received)
    );
    String::from_utf8_lossy(&received).into_owned()
}

async fn app_with(configure: impl FnOnce(&mut tapgate_server::connections::ConnectionLimits)) -> TestApp {
    TestApp::with_config(Backend::Sqlite, |c| configure(&mut c.connections)).await.expect("sqlite app")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_sent_request_is_dropped_after_the_header_timeout() {
    let app = app_with(|c| c.header_timeout = Duration::from_secs(1)).await;
    let mut stream = connect(&app).await;
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n").await.unwrap();
    let sent = read_until_closed(&mut stream).await;
    assert!(!sent.contains("200 OK"), "the half request was not served: {sent}");
    // A connection that sends nothing at all is dropped too, and so is an idle kept-alive one.
    let mut silent = connect(&app).await;
    read_until_closed(&mut silent).await;
    let mut idle = connect(&app).await;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    let sent = read_until_closed(&mut idle).await;
    assert!(sent.starts_with("HTTP/1.1 200"), "{sent}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_are_refused_with_503() {
    let app = app_with(|c| {
        c.max_connections = 1;
        c.header_timeout = Duration::from_secs(60);
    })
    .await;
    // One kept-alive connection, served, holds the only slot.
    let mut held = connect(&app).await;
    held.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 1024];
    let n = tokio::time::timeout(WITHIN, held.read(&mut buf)).await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));

    let mut extra = connect(&app).await;
    let sent = read_until_closed(&mut extra).await;
    assert!(sent.starts_with("HTTP/1.1 503"), "{sent}");
    assert!(sent.contains("retry-after: 5"), "{sent}");
    assert!(sent.contains("\"code\":\"unavailable\""), "{sent}");

    // Once the held connection closes, new ones are served again.
    drop(held);
    let served = tokio::time::timeout(WITHIN, async {
        loop {
            let fresh = reqwest::Client::new();
            if let Ok(resp) = fresh.get(app.url("/healthz")).send().await
                && resp.status() == reqwest::StatusCode::OK
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(served.is_ok(), "the freed slot was never reused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_bodies_and_slow_requests_end_in_408() {
    let stalled = app_with(|c| c.body_idle_timeout = Duration::from_secs(1)).await;
    let request = "POST /api/v1/sessions HTTP/1.1\r\nHost: localhost\r\ncontent-type: application/json\r\n\
                   content-length: 100\r\n\r\n{\"username\":";
    let mut stream = connect(&stalled).await;
    stream.write_all(request.as_bytes()).await.unwrap();
    let sent = read_until_closed(&mut stream).await;
    assert!(sent.starts_with("HTTP/1.1 408"), "{sent}");
    assert!(sent.contains("\"code\":\"request_timeout\""), "{sent}");

    let slow = app_with(|c| c.request_timeout = Duration::from_secs(1)).await;
    let mut stream = connect(&slow).await;
    stream.write_all(request.as_bytes()).await.unwrap();
    let sent = read_until_closed(&mut stream).await;
    assert!(sent.starts_with("HTTP/1.1 408"), "{sent}");
    assert!(sent.contains("\"code\":\"request_timeout\""), "{sent}");
}
