//! An assertion as the server checks it (every tap: sign-in, approvals, CI credentials):
//! clientDataJSON, authenticatorData and signature, through `RelyingParty::finish_authentication`
//! against the fixture credential, with the challenge set the way publish approvals set it.
//!
//! Input: `split(data, 4)` = clientDataJSON, raw id, authenticatorData, signature. An empty raw
//! id stands for the fixture credential's id.
#![no_main]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use tapgate_fuzz::{CREDENTIAL_JSON, challenge_in, relying_party, split};
use webauthn_rs_core::proto::{AuthenticatorAssertionResponseRaw, Credential, PublicKeyCredential};

fuzz_target!(|data: &[u8]| {
    let parts = split(data, 4);
    let (client_data_json, raw_id, authenticator_data, signature) = (parts[0], parts[1], parts[2], parts[3]);
    let Ok(credential) = serde_json::from_str::<Credential>(CREDENTIAL_JSON) else { return };
    let Some(rp) = relying_party() else { return };
    let challenge: [u8; 32] =
        challenge_in(client_data_json).and_then(|c| c.try_into().ok()).unwrap_or([0; 32]);
    let raw_id = if raw_id.is_empty() { credential.cred_id.to_vec() } else { raw_id.to_vec() };
    let Ok((_, state)) = rp.begin_authentication(vec![credential], Some(challenge)) else { return };
    let rsp = PublicKeyCredential {
        id: URL_SAFE_NO_PAD.encode(&raw_id),
        raw_id: raw_id.into(),
        response: AuthenticatorAssertionResponseRaw {
            authenticator_data: authenticator_data.to_vec().into(),
            client_data_json: client_data_json.to_vec().into(),
            signature: signature.to_vec().into(),
            user_handle: None,
        },
        extensions: Default::default(),
        type_: "public-key".into(),
    };
    let _ = rp.finish_authentication(&rsp, &state);
});
