//! Extractors whose rejections use the JSON error envelope.

use axum::extract::FromRequest;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tapgate_shared::ErrorCode;

use crate::error::ApiError;

/// `axum::Json`, with rejections in the envelope.
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
                "send the body as JSON with `Content-Type: application/json`",
            ),
            JsonRejection::JsonSyntaxError(e) => ApiError::bad_request(
                ErrorCode::InvalidJson,
                format!("the body is not valid JSON: {}", e.body_text()),
            ),
            JsonRejection::JsonDataError(e) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidJson,
                format!("the JSON body has the wrong shape: {}", e.body_text()),
            ),
            JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::PayloadTooLarge,
                "the request body is larger than this endpoint accepts",
            ),
            other if caused_by_timeout(&other) => ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                ErrorCode::RequestTimeout,
                "the request body stopped arriving: send the request again",
            ),
            other => ApiError::bad_request(
                ErrorCode::BadRequest,
                format!("unreadable request body: {}", other.body_text()),
            ),
        }
    }
}

/// Whether the body stalled past the body idle timeout (see [`crate::bounds`]).
fn caused_by_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        cause = e.source();
    }
    false
}

/// `axum::extract::Path`, with rejections (e.g. a segment that is not UTF-8) in the envelope.
#[derive(Debug, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::PathRejection) -> Self {
        ApiError::bad_request(
            ErrorCode::BadRequest,
            format!("the URL path is not valid: {}", rejection.body_text()),
        )
    }
}

/// The client's address: the connection's peer. (Forwarding headers are not trusted: anyone can
/// send them.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub std::net::IpAddr);

impl ClientIp {
    /// The address [`crate::serve`] recorded for the request's connection.
    pub fn of(extensions: &axum::http::Extensions) -> Result<Self, ApiError> {
        extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|info| ClientIp(info.0.ip()))
            .ok_or_else(|| {
                ApiError::internal(
                    "the router runs without connection info: serve it with tapgate_server::serve",
                )
            })
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, ApiError> {
        Self::of(&parts.extensions)
    }
}

/// Where a request came from, for the gate to show with an approval: the connection's address
/// (see [`ClientIp`]) and the `User-Agent` the client sent.
#[derive(Debug, Clone)]
pub struct RequestOrigin(pub crate::gate::Origin);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for RequestOrigin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, ApiError> {
        let ClientIp(ip) = ClientIp::of(&parts.extensions)?;
        let user_agent = parts
            .headers
            .get(axum::http::header::USER_AGENT)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .filter(|v| !v.trim().is_empty());
        Ok(RequestOrigin(crate::gate::Origin { ip: Some(ip), user_agent }))
    }
}
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for crate::client_info::ClientInfo {
    type Rejection = std::convert::Infallible;

    /// The peer address (when served by [`crate::serve`]) and the `User-Agent` header.
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, std::convert::Infallible> {
        Ok(client_info(parts))
    }
}

/// The client of a request, as far as the server can tell.
pub fn client_info(parts: &axum::http::request::Parts) -> crate::client_info::ClientInfo {
    let ip =
        parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|info| info.0.ip());
    let agent = parts.headers.get(axum::http::header::USER_AGENT).and_then(|v| v.to_str().ok());
    crate::client_info::ClientInfo::new(ip, agent)
}
