//! Tests of the USB HID authenticator that need no device.

use der::EncodePem;
use der::pem::LineEnding;
use sha2::{Digest, Sha256};
use webauthn_authenticator_rs::ctap2::commands::MakeCredentialRequest;
use webauthn_authenticator_rs::perform_register_with_request;
use webauthn_authenticator_rs::softtoken::SoftToken;
use webauthn_rs_proto::{PubKeyCredParams, RelyingParty, User};

use super::*;
use crate::authenticator::soft::test_support::{TestRp, ca_list};

/// ctap-hid-fido2 sends SHA-256 of the "challenge" it is given as clientDataHash, for both
/// commands: passing clientDataJSON therefore makes the key sign SHA-256(clientDataJSON).
#[test]
fn library_hashes_the_challenge_into_client_data_hash() {
    use ctap_hid_fido2::fidokey::get_assertion::get_assertion_command;
    use ctap_hid_fido2::fidokey::make_credential::make_credential_command;
    let cdj =
        br#"{"type":"webauthn.get","challenge":"abc","origin":"http://localhost:1234","crossOrigin":false}"#;
    let expected = Sha256::digest(cdj).to_vec();
    let mc = make_credential_command::Params::new("localhost", cdj.to_vec(), vec![1]);
    assert_eq!(mc.client_data_hash, expected);
    let ga = get_assertion_command::Params::new("localhost", cdj.to_vec(), vec![]);
    assert_eq!(ga.client_data_hash, expected);
}

fn caps(pin: PinState, builtin_uv: bool) -> Caps {
    Caps { pin, builtin_uv, algorithms: Vec::new(), max_credentials_in_list: 0, max_credential_id_length: 0 }
}

#[test]
fn user_verification_method() {
    use PinState::*;
    use UserVerification as P;
    let m = |p, c: &Caps| uv_method(p, c);
    assert_eq!(m(P::Required, &caps(Set, false)), Ok(Uv::Pin));
    assert_eq!(m(P::Required, &caps(Set, true)), Ok(Uv::Pin));
    assert_eq!(m(P::Required, &caps(NotSet, true)), Ok(Uv::BuiltIn));
    assert_eq!(m(P::Required, &caps(NotSet, false)), Err(AuthenticatorError::PinNotSet));
    assert!(matches!(m(P::Required, &caps(Unsupported, false)), Err(AuthenticatorError::Unsupported(_))));
    assert_eq!(m(P::Preferred, &caps(Set, false)), Ok(Uv::Pin));
    assert_eq!(m(P::Preferred, &caps(NotSet, false)), Ok(Uv::None));
    assert_eq!(m(P::Preferred, &caps(Unsupported, true)), Ok(Uv::BuiltIn));
    assert_eq!(m(P::Discouraged, &caps(Set, true)), Ok(Uv::None));
}

#[test]
fn algorithm_choice() {
    let ids = |v: Vec<CredentialSupportedKeyType>| v.into_iter().map(|t| t as i64).collect::<Vec<_>>();
    assert_eq!(ids(key_types(&[], &[]).expect("both")), vec![-7, -8]);
    assert_eq!(ids(key_types(&[-8, -7], &[]).expect("both")), vec![-7, -8]);
    assert_eq!(ids(key_types(&[-7, -8], &[-7]).expect("es256")), vec![-7]);
    assert_eq!(ids(key_types(&[-8, -257], &[]).expect("eddsa")), vec![-8]);
    assert!(matches!(key_types(&[-257], &[]), Err(AuthenticatorError::Unsupported(_))));
    assert!(matches!(key_types(&[-8], &[-7]), Err(AuthenticatorError::Unsupported(_))));
}

/// A real packed attestation (from a software key, as a CTAP authenticatorMakeCredential
/// response) goes through ctap-hid-fido2's parser and the rebuild; the relying party must then
/// accept it, signature and certificate chain included.
#[test]
fn rebuilt_attestation_object_verifies() {
    let (mut token, ca) = SoftToken::new(true).expect("soft token");
    let pem = ca.to_pem(LineEnding::LF).expect("pem");
    let rp = TestRp::new();
    let cas = ca_list(pem.as_bytes());
    let cred = rp
        .register_with(Some(&cas), UserVerification::Discouraged, |req| {
            let request = MakeCredentialRequest {
                client_data_hash: Sha256::digest(&req.client_data_json).to_vec(),
                rp: RelyingParty { name: req.rp_name.clone(), id: req.rp_id.clone() },
                user: User {
                    id: req.user_id.clone(),
                    name: req.user_name.clone(),
                    display_name: req.user_display_name.clone(),
                },
                pub_key_cred_params: vec![PubKeyCredParams { type_: "public-key".into(), alg: -7 }],
                exclude_list: vec![],
                options: None,
                pin_uv_auth_param: None,
                pin_uv_auth_proto: None,
                enterprise_attest: None,
            };
            let ctap_response =
                perform_register_with_request(&mut token, request, 10_000).map_err(|e| e.to_string())?;
            let att = ctap_hid_fido2::fidokey::make_credential::make_credential_response::parse_cbor(
                &ctap_response,
            )
            .map_err(|e| e.to_string())?;
            assert_eq!(att.fmt, "packed");
            assert_eq!(att.attstmt_x5c.len(), 1);
            let attestation_object = attestation::attestation_object(&att).map_err(|e| e.to_string())?;
            let credential_id = attestation::credential_id(&att.auth_data).map_err(|e| e.to_string())?;
            assert_eq!(credential_id, att.credential_descriptor.id);
            Ok(RegisterResponse { credential_id, attestation_object })
        })
        .expect("the relying party accepts the rebuilt attestation object");
    assert!(!cred.cred_id.is_empty());
}

#[test]
fn assertion_without_credentials_needs_no_device() {
    let mut auth = HidAuthenticator::new();
    let req = AssertRequest {
        rp_id: "localhost".into(),
        client_data_json: b"{}".to_vec(),
        allow_credentials: vec![],
        user_verification: UserVerification::Discouraged,
    };
    assert_eq!(auth.assert(&req).err(), Some(AuthenticatorError::NoMatchingCredential));
}
