//! Running WebAuthn ceremonies from the terminal: the CLI plays the browser's part. It builds
//! `clientDataJSON` with the registry's origin (taken from `--server`, never from the server's
//! answer), checks the relying-party id the way a browser would, and hands the bytes to the
//! authenticator on a blocking thread.

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tapgate_shared::public_key::PublicKey;
use webauthn_rs_proto::{
    AuthenticationExtensionsClientOutputs, AuthenticatorAssertionResponseRaw,
    AuthenticatorAttestationResponseRaw, PublicKeyCredential, PublicKeyCredentialCreationOptions,
    PublicKeyCredentialRequestOptions, RegisterPublicKeyCredential, RegistrationExtensionsClientOutputs,
    UserVerificationPolicy,
};

use crate::authenticator::{self, AssertRequest, AuthenticatorChoice, RegisterRequest, UserVerification};

/// The web origin of a registry URL: `scheme://host[:port]`.
pub fn origin_of(server: &str) -> Result<String> {
    let url = url::Url::parse(server).with_context(|| format!("invalid registry URL {server:?}"))?;
    let origin = url.origin();
    if !origin.is_tuple() {
        bail!("registry URL {server:?} has no web origin");
    }
    Ok(origin.ascii_serialization())
}

/// Whether `rp_id` may be used from `origin`: equal to its host, or a parent domain of it.
pub fn rp_id_allowed(rp_id: &str, origin: &str) -> bool {
    let Ok(url) = url::Url::parse(origin) else {
        return false;
    };
    let Some(host) = url.host_str() else { return false };
    !rp_id.is_empty() && (host == rp_id || host.ends_with(&format!(".{rp_id}")))
}

/// `clientDataJSON` as a browser would write it.
pub fn client_data_json(kind: &str, challenge: &[u8], origin: &str) -> Vec<u8> {
    serde_json::json!({
        "type": kind,
        "challenge": URL_SAFE_NO_PAD.encode(challenge),
        "origin": origin,
        "crossOrigin": false,
    })
    .to_string()
    .into_bytes()
}

fn uv(policy: &UserVerificationPolicy) -> UserVerification {
    match policy {
        UserVerificationPolicy::Required => UserVerification::Required,
        UserVerificationPolicy::Preferred => UserVerification::Preferred,
        UserVerificationPolicy::Discouraged_DO_NOT_USE => UserVerification::Discouraged,
    }
}

/// Creates a credential on the chosen authenticator for these options.
pub async fn register(
    choice: &AuthenticatorChoice,
    options: &PublicKeyCredentialCreationOptions,
    origin: &str,
) -> Result<RegisterPublicKeyCredential> {
    if !rp_id_allowed(&options.rp.id, origin) {
        bail!(
            "the registry asked for a key for {:?}, which does not belong to {origin}; refusing",
            options.rp.id
        );
    }
    let client_data = client_data_json("webauthn.create", &options.challenge, origin);
    let request = RegisterRequest {
        rp_id: options.rp.id.clone(),
        rp_name: options.rp.name.clone(),
        client_data_json: client_data.clone(),
        user_id: options.user.id.clone(),
        user_name: options.user.name.clone(),
        user_display_name: options.user.display_name.clone(),
        exclude_credentials: options.exclude_credentials.iter().flatten().map(|c| c.id.clone()).collect(),
        user_verification: options
            .authenticator_selection
            .as_ref()
            .map_or(UserVerification::Preferred, |s| uv(&s.user_verification)),
        algorithms: options.pub_key_cred_params.iter().map(|p| p.alg).collect(),
    };
    let choice = choice.clone();
    let response = tokio::task::spawn_blocking(move || {
        let mut auth = authenticator::open(&choice)?;
        auth.register(&request)
    })
    .await
    .map_err(|e| anyhow!("the security key task failed: {e}"))??;
    Ok(RegisterPublicKeyCredential {
        id: URL_SAFE_NO_PAD.encode(&response.credential_id),
        raw_id: response.credential_id,
        response: AuthenticatorAttestationResponseRaw {
            attestation_object: response.attestation_object,
            client_data_json: client_data,
            transports: None,
        },
        type_: "public-key".into(),
        extensions: RegistrationExtensionsClientOutputs::default(),
    })
}

/// The public key a new credential's own attestation object holds (its attested credential
/// data), checked to be for the credential id the key reported. This is what the key produced,
/// not what the registry says it stored.
pub fn attested_public_key(credential: &RegisterPublicKeyCredential) -> Result<PublicKey> {
    let object: serde_cbor_2::Value = serde_cbor_2::from_slice(&credential.response.attestation_object)
        .context("the key's attestation object is not CBOR")?;
    let serde_cbor_2::Value::Map(map) = object else { bail!("the key's attestation object is not a map") };
    let Some(serde_cbor_2::Value::Bytes(auth_data)) = map.get(&serde_cbor_2::Value::Text("authData".into()))
    else {
        bail!("the key's attestation object has no authenticator data");
    };
    // rpIdHash (32) | flags (1) | counter (4) | aaguid (16) | id length (2) | id | COSE key | …
    if auth_data.len() < 55 || auth_data[32] & 0x40 == 0 {
        bail!("the key's authenticator data holds no attested credential");
    }
    let id_len = usize::from(u16::from_be_bytes([auth_data[53], auth_data[54]]));
    let id = auth_data.get(55..55 + id_len).context("the key's authenticator data is truncated")?;
    if id != credential.raw_id.as_slice() {
        bail!("the key's attestation is for another credential than the one it reported");
    }
    let (key, _) = PublicKey::from_cose_prefix(&auth_data[55 + id_len..])
        .map_err(|e| anyhow!("the key's public key is unreadable: {e}"))?;
    Ok(key)
}

/// Signs the options' challenge with one of the allowed credentials.
pub async fn assert(
    choice: &AuthenticatorChoice,
    options: &PublicKeyCredentialRequestOptions,
    origin: &str,
) -> Result<PublicKeyCredential> {
    if !rp_id_allowed(&options.rp_id, origin) {
        bail!(
            "the registry asked for a key for {:?}, which does not belong to {origin}; refusing",
            options.rp_id
        );
    }
    let client_data = client_data_json("webauthn.get", &options.challenge, origin);
    let request = AssertRequest {
        rp_id: options.rp_id.clone(),
        client_data_json: client_data.clone(),
        allow_credentials: options.allow_credentials.iter().map(|c| c.id.clone()).collect(),
        user_verification: uv(&options.user_verification),
    };
    let choice = choice.clone();
    let response = tokio::task::spawn_blocking(move || {
        let mut auth = authenticator::open(&choice)?;
        auth.assert(&request)
    })
    .await
    .map_err(|e| anyhow!("the security key task failed: {e}"))??;
    Ok(PublicKeyCredential {
        id: URL_SAFE_NO_PAD.encode(&response.credential_id),
        raw_id: response.credential_id,
        response: AuthenticatorAssertionResponseRaw {
            authenticator_data: response.authenticator_data,
            client_data_json: client_data,
            signature: response.signature,
            user_handle: response.user_handle,
        },
        extensions: AuthenticationExtensionsClientOutputs::default(),
        type_: "public-key".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_and_rp_ids() {
        assert_eq!(origin_of("http://localhost:8080/").unwrap(), "http://localhost:8080");
        assert_eq!(origin_of("https://reg.example.com/sub/").unwrap(), "https://reg.example.com");
        assert!(rp_id_allowed("localhost", "http://localhost:8080"));
        assert!(rp_id_allowed("example.com", "https://reg.example.com"));
        assert!(!rp_id_allowed("evil.com", "https://reg.example.com"));
        assert!(!rp_id_allowed("ample.com", "https://reg.example.com"));
        assert!(!rp_id_allowed("", "https://reg.example.com"));
    }

    #[test]
    fn client_data_is_what_a_browser_writes() {
        let cd = client_data_json("webauthn.get", &[1, 2, 3], "http://localhost:1");
        let v: serde_json::Value = serde_json::from_slice(&cd).unwrap();
        assert_eq!(v["type"], "webauthn.get");
        assert_eq!(v["challenge"], "AQID");
        assert_eq!(v["origin"], "http://localhost:1");
        assert_eq!(v["crossOrigin"], false);
    }
}
