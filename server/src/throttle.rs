//! The HTTP side of the rate limits ([`crate::limits`]): counting a request against its rules,
//! and the guard on presented second factors.
//!
//! Handlers of anonymous and second-factor endpoints call [`limit`] with the client's address
//! ([`crate::extract::ClientIp`]). Tickets and typed codes arrive as `npm-otp` on any gated write,
//! through many doors; [`otp_attempts`] guards them all in one place: it counts the attempt
//! before the request runs and gives it back unless the answer says the ticket or code was
//! refused ([`OtpRefused`], set where gate errors become responses).

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::{bearer_in, otp};
use crate::error::ApiError;
use crate::extract::ClientIp;
use crate::limits::{self, Attempt, Hits, Rule, Subject};
use crate::state::AppState;

/// Counts one request against `attempts`; `429` when a rule is over its limit.
pub async fn limit(state: &AppState, attempts: &[Attempt<'_>]) -> Result<Hits, ApiError> {
    Ok(limits::hit(state, attempts).await?)
}

/// Marks a response that refused a presented ticket or typed code: the attempt counts.
#[derive(Debug, Clone, Copy)]
pub struct OtpRefused;

/// Limits refused `npm-otp` values per address and per account at an address.
pub async fn otp_attempts(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if otp(request.headers()).is_none() {
        return next.run(request).await;
    }
    let ip = match ClientIp::of(request.extensions()) {
        Ok(ClientIp(ip)) => ip,
        Err(e) => return e.into_response(),
    };
    let account = match bearer_in(request.headers()) {
        Some(token) => match state.store.token_owner(token).await {
            Ok(owner) => owner,
            Err(e) => return ApiError::from(e).into_response(),
        },
        None => None,
    };
    let mut attempts = vec![Attempt::new(Rule::OtpFailures, Subject::Address(ip))];
    if let Some(account) = &account {
        attempts.push(Attempt::new(Rule::OtpFailuresAccount, Subject::Account(account, ip)));
    }
    let hits = match limit(&state, &attempts).await {
        Ok(hits) => hits,
        Err(e) => return e.into_response(),
    };
    let response = next.run(request).await;
    if response.extensions().get::<OtpRefused>().is_some() {
        hits.keep();
    } else if let Err(e) = hits.refund(&state.store).await {
        tracing::warn!(error = %e, "could not give back a second-factor attempt");
    }
    response
}
