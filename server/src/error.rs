//! The one error type every handler returns. It renders as the JSON envelope
//! `{"error": {"code", "message"}}`; internal details go to the log, never to the client.

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tapgate_shared::{ErrorCode, ErrorEnvelope};

use crate::ceremonies::AssertionError;
use crate::gate::GateError;
use crate::limits::{LimitError, Limited};
use crate::store::StoreError;
use crate::webauthn::CeremonyFailure;

/// An error answered to a client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    /// Extra response headers (e.g. `WWW-Authenticate`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Extra top-level body fields beside the envelope (npm's `authUrl`/`doneUrl`).
    pub extra: Option<serde_json::Value>,
    /// The `npm-notice` sentence, when it should differ from the message.
    pub notice: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), headers: Vec::new(), extra: None, notice: None }
    }

    pub fn bad_request(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        let mut err = Self::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, message);
        err.headers.push((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        err
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, message)
    }

    pub fn conflict(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// A server-side failure: logs `detail` and answers a generic 500.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "the server hit an internal error; the operator can find the details in its log",
        )
    }

    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }
}

impl From<crate::upstream::UpstreamError> for ApiError {
    fn from(err: crate::upstream::UpstreamError) -> Self {
        use crate::upstream::UpstreamError as E;
        match err {
            E::NotFound(m) => Self::new(StatusCode::NOT_FOUND, ErrorCode::PackageNotFound, m),
            E::Unavailable(m) => Self::new(StatusCode::BAD_GATEWAY, ErrorCode::UpstreamUnavailable, m),
            E::Invalid(m) => Self::new(StatusCode::BAD_GATEWAY, ErrorCode::UpstreamInvalid, m),
            E::IntegrityMismatch(m) => {
                Self::new(StatusCode::BAD_GATEWAY, ErrorCode::UpstreamIntegrityMismatch, m)
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(detail) => {
                tracing::error!(error = %detail, "database unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::Unavailable,
                    "the registry's database is unavailable; try again shortly",
                )
            }
            StoreError::Conflict(what) => Self::conflict(ErrorCode::Conflict, what),
            StoreError::InvalidText(_) => Self::bad_request(
                ErrorCode::BadRequest,
                "the request holds characters that cannot be stored (NUL or other control characters): remove them",
            ),
            other => Self::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // npm prints an `npm-notice` header on a failed request: repeat the sentence there so
        // npm users read why, in plain words.
        let notice: String = self
            .notice
            .as_deref()
            .unwrap_or(&self.message)
            .chars()
            .map(|c| if c.is_ascii() && !c.is_ascii_control() { c } else { '?' })
            .collect();
        let mut body = serde_json::to_value(ErrorEnvelope::new(self.code, self.message)).unwrap_or_default();
        if let (Some(serde_json::Value::Object(extra)), Some(obj)) = (self.extra, body.as_object_mut()) {
            obj.extend(extra);
        }
        let mut response = (self.status, axum::Json(body)).into_response();
        response.extensions_mut().insert(crate::observe::RefusalCode(self.code));
        if self.status.is_client_error()
            && let Ok(value) = HeaderValue::from_str(&notice)
        {
            response.headers_mut().insert(HeaderName::from_static("npm-notice"), value);
        }
        for (name, value) in self.headers {
            response.headers_mut().insert(name, value);
        }
        if matches!(self.code, ErrorCode::InvalidTicket | ErrorCode::InvalidDeployKey) {
            response.extensions_mut().insert(crate::throttle::OtpRefused);
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

impl From<LimitError> for ApiError {
    fn from(e: LimitError) -> Self {
        match e {
            LimitError::Limited(limited) => rate_limited(&limited),
            LimitError::Store(s) => s.into(),
        }
    }
}

/// `429`, `Retry-After: <seconds>`, and a sentence saying when to try again.
fn rate_limited(limited: &Limited) -> ApiError {
    let err = ApiError::new(StatusCode::TOO_MANY_REQUESTS, ErrorCode::RateLimited, limited.message());
    match HeaderValue::from_str(&limited.retry_after_seconds.to_string()) {
        Ok(seconds) => err.with_header(header::RETRY_AFTER, seconds),
        Err(_) => err,
    }
}

impl From<CeremonyFailure> for ApiError {
    fn from(failure: CeremonyFailure) -> Self {
        let code = match failure {
            CeremonyFailure::CounterRegression => ErrorCode::CounterRegression,
            _ => ErrorCode::WebauthnFailed,
        };
        let status = match failure {
            CeremonyFailure::Malformed(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::UNAUTHORIZED,
        };
        Self::new(status, code, failure.message())
    }
}

impl From<AssertionError> for ApiError {
    fn from(e: AssertionError) -> Self {
        match e {
            AssertionError::Failed(f) => f.into(),
            AssertionError::Busy => Self::conflict(
                ErrorCode::Conflict,
                "this key was used for another request at the same moment: try again",
            ),
            AssertionError::Store(s) => s.into(),
            AssertionError::Corrupt(detail) => Self::internal(detail),
        }
    }
}

impl From<GateError> for ApiError {
    fn from(e: GateError) -> Self {
        match e {
            GateError::TapRequired(pending) => otp_required(&pending),
            GateError::NoUsableKey(m) => Self::new(StatusCode::FORBIDDEN, ErrorCode::PolicyViolation, m),
            GateError::Forbidden(m) => Self::forbidden(m),
            GateError::PolicyViolation(m) => Self::new(StatusCode::FORBIDDEN, ErrorCode::PolicyViolation, m),
            GateError::Locked(m) => Self::new(StatusCode::LOCKED, ErrorCode::PackageLocked, m),
            GateError::NotFound(m) => Self::new(StatusCode::NOT_FOUND, ErrorCode::PackageNotFound, m),
            GateError::InvalidTicket(m) => Self::new(StatusCode::FORBIDDEN, ErrorCode::InvalidTicket, m),
            GateError::ApprovalGone(m) => Self::new(StatusCode::GONE, ErrorCode::ApprovalExpired, m),
            GateError::Conflict(m) => Self::conflict(ErrorCode::Conflict, m),
            GateError::VersionExists(m) => Self::new(StatusCode::FORBIDDEN, ErrorCode::VersionExists, m),
            GateError::KeyAlreadyEnrolled(m) => Self::conflict(ErrorCode::KeyAlreadyEnrolled, m),
            GateError::TooLarge(m) => Self::new(StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::PayloadTooLarge, m),
            GateError::Invalid(m) => Self::bad_request(ErrorCode::BadRequest, m),
            GateError::InvalidInvite(m) => Self::new(StatusCode::UNAUTHORIZED, ErrorCode::InvalidInvite, m),
            GateError::InvalidDeployKey(m) => {
                Self::new(StatusCode::FORBIDDEN, ErrorCode::InvalidDeployKey, m)
            }
            GateError::OutsideScope(m) => Self::new(StatusCode::FORBIDDEN, ErrorCode::OutsideCiScope, m),
            GateError::NotAllowed(m) => Self::new(StatusCode::FORBIDDEN, ErrorCode::PolicyViolation, m),
            GateError::Unauthenticated(m) => Self::unauthorized(m),
            GateError::StageNotFound(m) => Self::new(StatusCode::NOT_FOUND, ErrorCode::StageNotFound, m),
            GateError::StageClosed(m) => Self::new(StatusCode::GONE, ErrorCode::StageClosed, m),
            GateError::TooManyStages(m) => {
                Self::new(StatusCode::TOO_MANY_REQUESTS, ErrorCode::TooManyStages, m)
            }
            GateError::Oidc(failure, m) => {
                let status = match failure {
                    crate::oidc::OidcFailure::IssuerUnavailable => StatusCode::SERVICE_UNAVAILABLE,
                    _ => StatusCode::UNAUTHORIZED,
                };
                let mut err = Self::new(status, failure.code(), m);
                if status == StatusCode::UNAUTHORIZED {
                    err.headers.push((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
                }
                err
            }
            GateError::Key(k) => k.into(),
            GateError::Store(s) => s.into(),
            GateError::Corrupt(detail) => Self::internal(detail),
        }
    }
}

/// npm's "a second factor is needed" answer: `401`, `WWW-Authenticate: OTP`, and the web flow's
/// `authUrl`/`doneUrl` beside the envelope (plus the approval, for tapgate's own client).
fn otp_required(pending: &crate::gate::PendingApproval) -> ApiError {
    let info = &pending.info;
    let message = format!(
        "{}: open {} and touch your security key, or run `tapgate approve {}`",
        info.description, pending.auth_url, pending.auth_url
    );
    let mut err = ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::OtpRequired, message);
    err.headers.push((header::WWW_AUTHENTICATE, HeaderValue::from_static("OTP")));
    err.extra = Some(serde_json::json!({
        "authUrl": pending.auth_url,
        "doneUrl": pending.done_url,
        "approval": info,
    }));
    err.notice = Some(format!(
        "Approve with your security key: open {} and touch your key; if asked for a one-time code, enter the one shown there",
        pending.auth_url
    ));
    err
}
