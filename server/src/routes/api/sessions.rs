//! Signing in with a security key: `POST /api/v1/sessions` `{username}` and
//! `POST /api/v1/sessions/{ceremony}` `{credential}` → `{token, username}`.
//!
//! An unknown or disabled user, or one without keys, gets a decoy ceremony shaped exactly like a
//! real one (a stable pseudo-random credential id derived from a server secret), and finishing it
//! fails exactly like a wrong key: the endpoint does not reveal which accounts exist.

use crate::extract::Path;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tapgate_shared::ErrorCode;
use tapgate_shared::api::{AuthenticationChallenge, BeginLogin, FinishLogin, LoginResult, Scope};
use webauthn_rs_proto::AllowCredentials;

use crate::bounds;
use crate::ceremonies::{self, AssertionError};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ClientIp, Json};
use crate::limits::{Attempt, Rule, Subject};
use crate::state::AppState;
use crate::store::tokens::TokenSource;
use crate::throttle;
use crate::webauthn::CeremonyFailure;
use crate::webauthn::StoredState;

const KIND: &str = "login";

/// Tokens from a key sign-in last 30 days.
pub const LOGIN_TOKEN_TTL_SECONDS: i64 = 30 * 86_400;

pub fn routes() -> Router<AppState> {
    Router::new().route("/sessions", post(begin)).route("/sessions/{ceremony}", post(finish))
}

#[derive(Debug, Serialize, Deserialize)]
struct Context {
    npm_login: Option<String>,
    token_name: Option<String>,
}

/// Credential id lengths real authenticators use (platform and roaming keys, resident or not).
const DECOY_ID_LENGTHS: [usize; 4] = [16, 32, 48, 64];

/// A stable decoy for `username`: one or two credential ids of plausible lengths, derived from a
/// server secret, so that asking twice gives the same answer and the shape looks like an
/// account's.
async fn decoy_credential_ids(state: &AppState, username: &str) -> ApiResult<Vec<Vec<u8>>> {
    let secret = state.store.server_secret("login-decoy").await?;
    let derive = |label: &[u8]| -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(&secret);
        h.update(label);
        h.update(username.as_bytes());
        h.finalize().into()
    };
    let shape = derive(b"decoy-shape");
    let count = 1 + usize::from(shape[0] % 2);
    let ids = (0..count)
        .map(|i| {
            let len = DECOY_ID_LENGTHS[usize::from(shape[1 + i]) % DECOY_ID_LENGTHS.len()];
            let mut id = Vec::with_capacity(len);
            for half in 0u8..2 {
                id.extend_from_slice(&derive(&[
                    b'd',
                    b'e',
                    b'c',
                    b'o',
                    b'y',
                    u8::try_from(i).unwrap_or(0),
                    half,
                ]));
            }
            id.truncate(len);
            id
        })
        .collect();
    Ok(ids)
}

/// Every sign-in failure but a cloned key's answers the same, for real and unknown accounts
/// alike: which failure it was would tell a prober whether the account exists.
fn sign_in_refused() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        ErrorCode::WebauthnFailed,
        "your security key's answer was not accepted: use a key enrolled for this account, on this site, and touch it when it blinks",
    )
}

/// What a client may name its sign-in token; longer names (a long host name in the CLI's
/// "tapgate CLI on HOST") are cut to [`bounds::MAX_TOKEN_NAME_CHARS`].
const MAX_SENT_TOKEN_NAME_CHARS: usize = 300;

async fn begin(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(body): Json<BeginLogin>,
) -> ApiResult<(StatusCode, Json<AuthenticationChallenge>)> {
    let username = body.username.trim().to_lowercase();
    if username.is_empty() || username.chars().count() > bounds::MAX_USERNAME_CHARS {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidName,
            format!("enter your username (at most {} characters)", bounds::MAX_USERNAME_CHARS),
        ));
    }
    if body.npm_login.as_ref().is_some_and(|id| id.chars().count() > bounds::MAX_LOGIN_ID_CHARS) {
        return Err(ApiError::bad_request(
            ErrorCode::BadRequest,
            "this npm login id is not one this registry issues: run `npm login` again",
        ));
    }
    let token_name = match body.token_name.as_deref() {
        None => None,
        Some(name) => {
            let name = bounds::text("the token name", name, MAX_SENT_TOKEN_NAME_CHARS)?;
            Some(name.chars().take(bounds::MAX_TOKEN_NAME_CHARS).collect::<String>())
        }
    };
    throttle::limit(
        &state,
        &[
            Attempt::new(Rule::SignIn, Subject::Address(ip)),
            Attempt::new(Rule::SignInAccount, Subject::Account(&username, ip)),
        ],
    )
    .await?
    .keep();
    if let Some(login_id) = &body.npm_login {
        let pending = state.store.npm_login(login_id).await?;
        if !pending.is_some_and(|l| l.approved_at.is_none() && l.expires_at > state.now()) {
            return Err(ApiError::new(
                StatusCode::GONE,
                ErrorCode::CeremonyExpired,
                "this npm login is unknown, finished or expired: run `npm login` again",
            ));
        }
    }
    let user = state.store.user_by_name(&username).await?.filter(|u| !u.disabled);
    let keys = match &user {
        Some(u) => ceremonies::usable_keys(&state, &u.id).await?,
        None => Vec::new(),
    };
    let real_user = user.filter(|_| !keys.is_empty());
    let credentials = keys.into_iter().map(|(_, c)| c).collect::<Vec<_>>();
    let (mut options, auth_state) =
        state.rp.begin_authentication(credentials, None).map_err(|f| ApiError::internal(f.message()))?;
    if real_user.is_none() {
        options.allow_credentials = decoy_credential_ids(&state, &username)
            .await?
            .into_iter()
            .map(|id| AllowCredentials { type_: "public-key".into(), id, transports: None })
            .collect();
    }
    // Transport hints would tell real credentials from decoys; keys work without them.
    for allowed in &mut options.allow_credentials {
        allowed.transports = None;
    }
    let context = Context { npm_login: body.npm_login, token_name };
    let user_id = real_user.as_ref().map(|u| u.id.as_str());
    let ceremony =
        ceremonies::persist(&state, KIND, user_id, &StoredState::Authentication(auth_state), &context)
            .await?;
    Ok((StatusCode::CREATED, Json(AuthenticationChallenge { ceremony, public_key: options })))
}

async fn finish(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(ceremony_id): Path<String>,
    Json(body): Json<FinishLogin>,
) -> ApiResult<(StatusCode, Json<LoginResult>)> {
    throttle::limit(&state, &[Attempt::new(Rule::SignIn, Subject::Address(ip))]).await?.keep();
    let ceremony = ceremonies::take(&state, &ceremony_id, KIND).await?;
    let context: Context = ceremonies::decode(&ceremony.context)?;
    let verified = match ceremonies::verify_assertion(
        &state,
        &ceremony.state,
        ceremony.user_id.as_deref().as_slice(),
        &body.credential,
        None,
    )
    .await
    {
        Ok(verified) => verified,
        Err(AssertionError::Failed(failure)) if !matches!(failure, CeremonyFailure::CounterRegression) => {
            return Err(sign_in_refused());
        }
        Err(e) => return Err(e.into()),
    };
    let user = state
        .store
        .user_by_id(&verified.key.user_id)
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(|| ApiError::unauthorized("this account is disabled"))?;
    let now = state.now();
    if let Some(login_id) = context.npm_login {
        if !state.store.approve_npm_login(&login_id, &user.id, now).await? {
            return Err(ApiError::new(
                StatusCode::GONE,
                ErrorCode::CeremonyExpired,
                "this npm login finished or expired meanwhile: run `npm login` again",
            ));
        }
        tracing::info!(user = %user.name, key_id = %verified.key.id, "npm web login approved");
        return Ok((
            StatusCode::CREATED,
            Json(LoginResult { username: user.name, token: None, npm_login: Some(login_id) }),
        ));
    }
    let name = context.token_name.unwrap_or_else(|| "key sign-in".into());
    let name: String = name.chars().filter(|c| !c.is_control()).take(100).collect();
    let (username, token) = issue_login_token(&state, &user.id, &name, TokenSource::Login).await?;
    tracing::info!(user = %username, key_id = %verified.key.id, user_verified = verified.user_verified, "signed in with a security key");
    Ok((StatusCode::CREATED, Json(LoginResult { username, token: Some(token), npm_login: None })))
}

/// Issues a login token for `user_id` (used by npm's web login when it collects).
pub async fn issue_login_token(
    state: &AppState,
    user_id: &str,
    name: &str,
    source: TokenSource,
) -> ApiResult<(String, String)> {
    let user = state
        .store
        .user_by_id(user_id)
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(|| ApiError::unauthorized("this account is disabled"))?;
    let mut scopes = vec![Scope::Read, Scope::Publish];
    if user.admin {
        scopes.push(Scope::Admin);
    }
    let now = state.now();
    let (_, token) = state
        .store
        .issue_token(&user.id, name, &scopes, Some(now + LOGIN_TOKEN_TTL_SECONDS), source, now)
        .await?;
    Ok((user.name, token))
}
