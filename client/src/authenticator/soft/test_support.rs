//! Test helpers: requests with clientDataJSON built the way the CLI builds it, and a relying
//! party (webauthn-rs-core) that verifies what an authenticator produced.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use url::Url;
use webauthn_authenticator_rs::softtoken::AAGUID;
use webauthn_rs_core::WebauthnCore;
use webauthn_rs_core::proto::{
    AttestationCaList, AttestationCaListBuilder, AttestationConveyancePreference, AuthenticationResult,
    AuthenticatorAssertionResponseRaw, AuthenticatorAttestationResponseRaw, Credential, PublicKeyCredential,
    RegisterPublicKeyCredential, UserVerificationPolicy,
};

use crate::authenticator::{
    AssertRequest, Authenticator, RegisterRequest, RegisterResponse, UserVerification,
};

pub const ORIGIN: &str = "http://localhost:1234";
pub const RP_ID: &str = "localhost";

/// clientDataJSON as the CLI sends it.
pub fn client_data(kind: &str, challenge: &[u8]) -> Vec<u8> {
    format!(
        r#"{{"type":"{kind}","challenge":"{}","origin":"{ORIGIN}","crossOrigin":false}}"#,
        URL_SAFE_NO_PAD.encode(challenge)
    )
    .into_bytes()
}

pub fn register_request(client_data_json: Vec<u8>, exclude: Vec<Vec<u8>>) -> RegisterRequest {
    RegisterRequest {
        rp_id: RP_ID.into(),
        rp_name: "tapgate test".into(),
        client_data_json,
        user_id: vec![1, 2, 3, 4],
        user_name: "alice".into(),
        user_display_name: "Alice".into(),
        exclude_credentials: exclude,
        user_verification: UserVerification::Preferred,
        algorithms: vec![-7, -8],
    }
}

pub fn assert_request(client_data_json: Vec<u8>, allow: Vec<Vec<u8>>) -> AssertRequest {
    AssertRequest {
        rp_id: RP_ID.into(),
        client_data_json,
        allow_credentials: allow,
        user_verification: UserVerification::Preferred,
    }
}

/// A trust list holding one software-key attestation CA given as PEM.
pub fn ca_list(pem: &[u8]) -> AttestationCaList {
    let mut builder = AttestationCaListBuilder::new();
    builder
        .insert_device_pem(pem, AAGUID, "tapgate software key".into(), BTreeMap::new())
        .expect("PEM attestation CA");
    builder.build()
}

fn policy(uv: UserVerification) -> UserVerificationPolicy {
    match uv {
        UserVerification::Required => UserVerificationPolicy::Required,
        UserVerification::Preferred => UserVerificationPolicy::Preferred,
        UserVerification::Discouraged => UserVerificationPolicy::Discouraged_DO_NOT_USE,
    }
}

/// A relying party for `localhost` accepting the origin `http://localhost:1234`.
pub struct TestRp {
    core: WebauthnCore,
}

impl TestRp {
    pub fn new() -> Self {
        let core = WebauthnCore::new_unsafe_experts_only(
            "tapgate test",
            RP_ID,
            vec![Url::parse(ORIGIN).expect("origin")],
            Duration::from_secs(60),
            None,
            None,
        );
        Self { core }
    }

    /// Registration ceremony with `auth`, verified against `cas` (no trust check if `None`).
    pub fn register(
        &self,
        auth: &mut dyn Authenticator,
        cas: Option<&AttestationCaList>,
        uv: UserVerification,
    ) -> Result<Credential, String> {
        self.register_with(cas, uv, |req| auth.register(req).map_err(|e| e.to_string()))
    }

    /// Registration ceremony where `make` turns the request into a response.
    pub fn register_with(
        &self,
        cas: Option<&AttestationCaList>,
        uv: UserVerification,
        make: impl FnOnce(&RegisterRequest) -> Result<RegisterResponse, String>,
    ) -> Result<Credential, String> {
        let builder = self
            .core
            .new_challenge_register_builder(&[1, 2, 3, 4], "alice", "Alice")
            .map_err(|e| e.to_string())?
            .attestation(AttestationConveyancePreference::Direct)
            .user_verification_policy(policy(uv));
        let (challenge, state) = self.core.generate_challenge_register(builder).map_err(|e| e.to_string())?;
        let client_data_json = client_data("webauthn.create", &challenge.public_key.challenge);
        let mut req = register_request(client_data_json.clone(), Vec::new());
        req.user_verification = uv;
        let resp = make(&req)?;
        let reg = RegisterPublicKeyCredential {
            id: URL_SAFE_NO_PAD.encode(&resp.credential_id),
            raw_id: resp.credential_id,
            response: AuthenticatorAttestationResponseRaw {
                attestation_object: resp.attestation_object,
                client_data_json,
                transports: None,
            },
            type_: "public-key".into(),
            extensions: Default::default(),
        };
        self.core.register_credential(&reg, &state, cas).map_err(|e| e.to_string())
    }

    /// Authentication ceremony with `auth` for the registered `cred`.
    pub fn authenticate(
        &self,
        auth: &mut dyn Authenticator,
        cred: &Credential,
        uv: UserVerification,
    ) -> Result<AuthenticationResult, String> {
        let (challenge, state) = self
            .core
            .new_challenge_authenticate_builder(vec![cred.clone()], Some(policy(uv)))
            .and_then(|b| self.core.generate_challenge_authenticate(b))
            .map_err(|e| e.to_string())?;
        let client_data_json = client_data("webauthn.get", &challenge.public_key.challenge);
        let allow = challenge.public_key.allow_credentials.iter().map(|c| c.id.clone()).collect();
        let mut req = assert_request(client_data_json.clone(), allow);
        req.user_verification = uv;
        let resp = auth.assert(&req).map_err(|e| e.to_string())?;
        let rsp = PublicKeyCredential {
            id: URL_SAFE_NO_PAD.encode(&resp.credential_id),
            raw_id: resp.credential_id,
            response: AuthenticatorAssertionResponseRaw {
                authenticator_data: resp.authenticator_data,
                client_data_json,
                signature: resp.signature,
                user_handle: resp.user_handle,
            },
            extensions: Default::default(),
            type_: "public-key".into(),
        };
        self.core.authenticate_credential(&rsp, &state).map_err(|e| e.to_string())
    }
}
