//! A small npm registry the upstream tests start on loopback, which can lie: it serves what the
//! test puts in it (packuments, tarballs) and counts the requests it gets.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{StatusCode, Uri};
use axum::response::IntoResponse;
use serde_json::{Value, json};
use tapgate_server::upstream::{Upstream, UpstreamConfig};
use tapgate_shared::intent::sri_sha512;

#[derive(Default)]
pub struct FakeState {
    pub packuments: Mutex<HashMap<String, Value>>,
    pub tarballs: Mutex<HashMap<String, Vec<u8>>>,
    pub raw: Mutex<HashMap<String, Vec<u8>>>,
    pub hits: AtomicUsize,
}

pub struct FakeUpstream {
    pub base: String,
    pub state: Arc<FakeState>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl FakeUpstream {
    pub async fn start() -> FakeUpstream {
        let state = Arc::new(FakeState::default());
        let shared = state.clone();
        let app = axum::Router::new().fallback(move |uri: Uri| {
            let state = shared.clone();
            async move {
                state.hits.fetch_add(1, Ordering::SeqCst);
                let path = uri.path().to_string();
                if let Some(bytes) = state.raw.lock().unwrap().get(&path) {
                    return bytes.clone().into_response();
                }
                if path.ends_with(".tgz") {
                    return match state.tarballs.lock().unwrap().get(&path) {
                        Some(bytes) => bytes.clone().into_response(),
                        None => StatusCode::NOT_FOUND.into_response(),
                    };
                }
                let name = path.trim_start_matches('/').replace("%2f", "/").replace("%2F", "/");
                match state.packuments.lock().unwrap().get(&name) {
                    Some(doc) => axum::Json(doc.clone()).into_response(),
                    None => {
                        (StatusCode::NOT_FOUND, axum::Json(json!({"error": "Not found"}))).into_response()
                    }
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
        });
        FakeUpstream { base: format!("http://127.0.0.1:{port}"), state, _shutdown: tx }
    }

    /// Publishes `name@version` whose packument declares the integrity of `declared` while the
    /// tarball URL serves `served`.
    pub fn add(&self, name: &str, version: &str, declared: &[u8], served: &[u8]) {
        let bare = name.rsplit('/').next().unwrap();
        let path = format!("/{name}/-/{bare}-{version}.tgz");
        self.state.tarballs.lock().unwrap().insert(path.clone(), served.to_vec());
        let mut docs = self.state.packuments.lock().unwrap();
        let doc = docs
            .entry(name.to_string())
            .or_insert_with(|| json!({"name": name, "dist-tags": {}, "versions": {}, "time": {}}));
        doc["versions"][version] = json!({
            "name": name, "version": version, "description": "from upstream",
            "dist": {"tarball": format!("{}{path}", self.base), "integrity": sri_sha512(declared)},
        });
        doc["dist-tags"]["latest"] = json!(version);
        doc["time"][version] = json!("2026-01-01T00:00:00.000Z");
    }

    pub fn hits(&self) -> usize {
        self.state.hits.load(Ordering::SeqCst)
    }
}

/// An upstream client for `url`, reading packuments of at most 64 KiB, keeping `cache_bytes` of
/// tarballs.
pub fn upstream(url: &str, cache_bytes: i64) -> Option<Arc<Upstream>> {
    let config = UpstreamConfig {
        url: url.parse().unwrap(),
        max_packument_bytes: 64 * 1024,
        timeout: Duration::from_secs(5),
        cache_bytes,
    };
    Some(Arc::new(Upstream::new(config).unwrap()))
}
