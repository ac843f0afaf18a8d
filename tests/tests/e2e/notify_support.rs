//! Real receivers on loopback for notification tests: a small SMTP server speaking enough of
//! the protocol for lettre (EHLO, MAIL, RCPT, DATA, QUIT), and an axum webhook receiver that
//! checks every `tapgate-signature`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use tapgate_server::notify::webhook::verify;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One email as received.
#[derive(Debug, Clone)]
pub struct Mail {
    #[allow(dead_code)]
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

impl Mail {
    pub fn subject(&self) -> String {
        self.data.lines().find_map(|l| l.strip_prefix("Subject: ")).unwrap_or_default().to_string()
    }

    /// The body after the headers, with quoted-printable soft breaks undone.
    pub fn body(&self) -> String {
        let body = self.data.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
        body.replace("=\r\n", "").replace("=3D", "=")
    }
}

/// An SMTP server on 127.0.0.1 that accepts every message.
pub struct SmtpReceiver {
    pub addr: SocketAddr,
    pub mails: Arc<Mutex<Vec<Mail>>>,
    task: tokio::task::JoinHandle<()>,
}

impl SmtpReceiver {
    pub async fn start() -> SmtpReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let store = mails.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let store = store.clone();
                tokio::spawn(async move {
                    let _ = session(stream, store).await;
                });
            }
        });
        SmtpReceiver { addr, mails, task }
    }

    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    pub fn to(&self, address: &str) -> Vec<Mail> {
        self.mails.lock().unwrap().iter().filter(|m| m.to.iter().any(|t| t == address)).cloned().collect()
    }
}

impl Drop for SmtpReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn angle(arg: &str) -> String {
    arg.split_once('<').and_then(|(_, r)| r.split_once('>')).map(|(a, _)| a.to_string()).unwrap_or_default()
}

async fn session(stream: tokio::net::TcpStream, store: Arc<Mutex<Vec<Mail>>>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 localhost test SMTP\r\n").await?;
    let (mut from, mut to) = (String::new(), Vec::new());
    loop {
        let mut line = String::new();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let upper = line.to_ascii_uppercase();
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            write.write_all(b"250-localhost\r\n250 8BITMIME\r\n").await?;
        } else if upper.starts_with("MAIL FROM") {
            from = angle(&line);
            to.clear();
            write.write_all(b"250 OK\r\n").await?;
        } else if upper.starts_with("RCPT TO") {
            to.push(angle(&line));
            write.write_all(b"250 OK\r\n").await?;
        } else if upper.starts_with("DATA") {
            write.write_all(b"354 go ahead\r\n").await?;
            let mut data = String::new();
            loop {
                let mut l = String::new();
                if lines.read_line(&mut l).await? == 0 {
                    return Ok(());
                }
                if l == ".\r\n" {
                    break;
                }
                data.push_str(l.strip_prefix('.').filter(|_| l.starts_with("..")).unwrap_or(&l));
            }
            store.lock().unwrap().push(Mail { from: from.clone(), to: to.clone(), data });
            write.write_all(b"250 queued\r\n").await?;
        } else if upper.starts_with("QUIT") {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            write.write_all(b"250 OK\r\n").await?;
        }
    }
}

/// One webhook request as received.
#[derive(Debug, Clone)]
pub struct Hook {
    pub path: String,
    pub body: Value,
    /// The signature verified with the secret the receiver was given.
    pub valid: bool,
    /// The `tapgate-delivery` header.
    pub delivery: String,
}

#[derive(Clone, Default)]
struct HookState {
    hooks: Arc<Mutex<Vec<Hook>>>,
    secrets: Arc<Mutex<Vec<String>>>,
    delay_ms: u64,
}

/// An axum app on 127.0.0.1 that records POSTs and checks their signature against the secrets
/// it was told.
pub struct WebhookReceiver {
    pub addr: SocketAddr,
    state: HookState,
    task: tokio::task::JoinHandle<()>,
}

impl WebhookReceiver {
    pub async fn start() -> WebhookReceiver {
        Self::on(TcpListener::bind("127.0.0.1:0").await.unwrap(), 0).await
    }

    /// A receiver on an address chosen earlier (one that was down until now), answering after
    /// `delay_ms`.
    pub async fn on(listener: TcpListener, delay_ms: u64) -> WebhookReceiver {
        let addr = listener.local_addr().unwrap();
        let state = HookState { delay_ms, ..Default::default() };
        let app =
            axum::Router::new().route("/{*path}", axum::routing::post(receive)).with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        WebhookReceiver { addr, state, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{path}", self.addr)
    }

    pub fn trust(&self, secret: &str) {
        self.state.secrets.lock().unwrap().push(secret.to_string());
    }

    pub fn hooks(&self) -> Vec<Hook> {
        self.state.hooks.lock().unwrap().clone()
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receive(
    State(state): State<HookState>,
    axum::extract::Path(path): axum::extract::Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    if state.delay_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(state.delay_ms)).await;
    }
    let signature = headers.get("tapgate-signature").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    // The server's clock may be a test's manual clock, a little ahead: a generous tolerance.
    let valid = state.secrets.lock().unwrap().iter().any(|s| verify(s, signature, &body, now, 3600));
    let delivery =
        headers.get("tapgate-delivery").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    state.hooks.lock().unwrap().push(Hook { path, body, valid, delivery });
    StatusCode::NO_CONTENT
}
