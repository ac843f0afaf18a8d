//! A small client for the registry's JSON API. Errors carry the server's envelope message.

use anyhow::{Result, anyhow};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tapgate_shared::{ErrorCode, ErrorEnvelope};

/// An error answered by the registry.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ServerError {
    pub status: StatusCode,
    pub code: Option<ErrorCode>,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct Client {
    pub base: String,
    http: reqwest::Client,
    token: Option<String>,
}

impl Client {
    pub fn new(server: &str, token: Option<String>) -> Result<Self> {
        let base = crate::credentials::normalise(server);
        url::Url::parse(&base).map_err(|e| anyhow!("invalid --server {server:?}: {e}"))?;
        let http =
            reqwest::Client::builder().user_agent(concat!("tapgate/", env!("CARGO_PKG_VERSION"))).build()?;
        Ok(Self { base, http, token })
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let req = self.http.request(method, format!("{}{}", self.base, path));
        match &self.token {
            Some(token) => req.bearer_auth(token),
            None => req,
        }
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.send(self.request(Method::GET, path)).await
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        self.send(self.request(Method::POST, path).json(body)).await
    }

    pub async fn send<T: DeserializeOwned>(&self, req: RequestBuilder) -> Result<T> {
        let resp = self.execute(req).await?;
        resp.json::<T>().await.map_err(|e| anyhow!("the registry sent an unexpected answer: {e}"))
    }

    /// Sends and turns error statuses into [`ServerError`].
    pub async fn execute(&self, req: RequestBuilder) -> Result<Response> {
        let resp = req
            .send()
            .await
            .map_err(|e| anyhow!("cannot reach the registry at {}: {}", self.base, root_cause(&e)))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        Err(server_error(resp).await.into())
    }
}

pub async fn server_error(resp: Response) -> ServerError {
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    match serde_json::from_str::<ErrorEnvelope>(&text) {
        Ok(env) => ServerError { status, code: Some(env.error.code), message: env.error.message },
        Err(_) => ServerError {
            status,
            code: None,
            message: format!(
                "the registry answered {status}: {}",
                text.chars().take(200).collect::<String>()
            ),
        },
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}
