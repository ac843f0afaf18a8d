//! A key's registration response as the server checks it: clientDataJSON, the credential id and
//! the CBOR attestation object (authenticatorData, attested credential data, COSE key,
//! attestation statement), through `RelyingParty::finish_registration`.
//!
//! Input: `split(data, 3)` = clientDataJSON, raw id, attestation object. The ceremony expects
//! the challenge the clientDataJSON names, so mutations reach the attestation object.
#![no_main]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use tapgate_fuzz::{challenge_in, relying_party, split};
use tapgate_server::webauthn::attestation::statement_facts;
use webauthn_rs_core::proto::{
    AuthenticatorAttestationResponseRaw, RegisterPublicKeyCredential, RegistrationState,
};

fn state_for(challenge: &[u8]) -> Option<RegistrationState> {
    let rp = relying_party()?;
    let (_, state) = rp.begin_registration(&[1, 2, 3, 4], "alice", Vec::new()).ok()?;
    let mut value = serde_json::to_value(&state).ok()?;
    *value.get_mut("challenge")? = serde_json::Value::String(URL_SAFE_NO_PAD.encode(challenge));
    serde_json::from_value(value).ok()
}

fuzz_target!(|data: &[u8]| {
    let parts = split(data, 3);
    let (client_data_json, raw_id, attestation_object) = (parts[0], parts[1], parts[2]);
    let _ = statement_facts(attestation_object);
    let Some(rp) = relying_party() else { return };
    let challenge = challenge_in(client_data_json).unwrap_or_else(|| vec![0; 32]);
    let Some(state) = state_for(&challenge) else { return };
    let reg = RegisterPublicKeyCredential {
        id: URL_SAFE_NO_PAD.encode(raw_id),
        raw_id: raw_id.to_vec().into(),
        response: AuthenticatorAttestationResponseRaw {
            attestation_object: attestation_object.to_vec().into(),
            client_data_json: client_data_json.to_vec().into(),
            transports: None,
        },
        type_: "public-key".into(),
        extensions: Default::default(),
    };
    let _ = rp.finish_registration(&reg, &state);
});
