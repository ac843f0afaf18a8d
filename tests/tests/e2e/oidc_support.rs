//! A local OIDC issuer for the tests: HTTPS on loopback with a certificate from a CA the test
//! generates (the registry trusts it through the issuer's CA file), a discovery document, a JWKS,
//! and ES256 ID tokens signed with keys the test generates, rotated on demand. It counts how
//! often its keys are fetched.

use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use crypto_glue::ecdsa_p256::{
    EcdsaP256DerSignature, EcdsaP256Signature, EcdsaP256SigningKey, EcdsaP256VerifyingKey,
};
use crypto_glue::traits::{
    EncodeDer, EncodePem, Generate, LineEndingPem, Pkcs8EncodePrivateKey, Signer, ToExtension,
};
use crypto_glue::x509::profile::BuilderProfile;
use crypto_glue::x509::{
    BasicConstraints, Builder, CertBuilderError, Certificate, CertificateBuilder, Extension, GeneralName,
    KeyUsage, KeyUsages, Name, SubjectAltName, SubjectPublicKeyInfoOwned, SubjectPublicKeyInfoRef,
    TbsCertificate, Time, Validity, uuid_to_serial,
};
use serde_json::{Value, json};

struct Profile {
    subject: Name,
    issuer: Name,
    ca: bool,
}

impl BuilderProfile for Profile {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        _spk: SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: SubjectPublicKeyInfoRef<'_>,
        tbs: &TbsCertificate,
    ) -> Result<Vec<Extension>, CertBuilderError> {
        let mut extensions = Vec::new();
        let constraints = BasicConstraints { ca: self.ca, path_len_constraint: None };
        extensions.push(constraints.to_extension(tbs.subject(), &extensions)?);
        let usage = if self.ca {
            KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign)
        } else {
            KeyUsage(KeyUsages::DigitalSignature.into())
        };
        extensions.push(usage.to_extension(tbs.subject(), &extensions)?);
        if !self.ca {
            let ip = crypto_glue::der::asn1::OctetString::new(vec![127u8, 0, 0, 1]).unwrap();
            let dns = crypto_glue::der::asn1::Ia5String::new("localhost").unwrap();
            let san = SubjectAltName(vec![GeneralName::IpAddress(ip), GeneralName::DnsName(dns)]);
            extensions.push(san.to_extension(tbs.subject(), &extensions)?);
        }
        Ok(extensions)
    }
}

fn issue(
    subject: &str,
    issuer: Option<(&Certificate, &EcdsaP256SigningKey)>,
    ca: bool,
) -> (Certificate, EcdsaP256SigningKey) {
    let key = EcdsaP256SigningKey::generate();
    let spki = SubjectPublicKeyInfoOwned::from_key(&EcdsaP256VerifyingKey::from(&key)).unwrap();
    let subject = Name::from_str(subject).unwrap();
    let issuer_name = issuer.map_or_else(|| subject.clone(), |(c, _)| c.tbs_certificate().subject().clone());
    let now = SystemTime::now();
    let validity = Validity::new(
        Time::try_from(now - Duration::from_secs(3600)).unwrap(),
        Time::try_from(now + Duration::from_secs(86400)).unwrap(),
    );
    let builder = CertificateBuilder::new(
        Profile { subject, issuer: issuer_name, ca },
        uuid_to_serial(uuid::Uuid::new_v4()),
        validity,
        spki,
    )
    .unwrap();
    let signer = issuer.map_or(&key, |(_, k)| k);
    let cert = builder.build::<EcdsaP256SigningKey, EcdsaP256DerSignature>(signer).unwrap();
    (cert, key)
}

/// One of the issuer's signing keys.
pub struct IssuerKey {
    pub kid: String,
    pub key: EcdsaP256SigningKey,
}

impl IssuerKey {
    pub fn new(kid: &str) -> IssuerKey {
        IssuerKey { kid: kid.into(), key: EcdsaP256SigningKey::generate() }
    }

    /// The public JWK.
    pub fn jwk(&self) -> Value {
        let point = EcdsaP256VerifyingKey::from(&self.key).to_sec1_point(false);
        let bytes = point.as_bytes();
        json!({
            "kty": "EC", "crv": "P-256", "kid": self.kid, "alg": "ES256", "use": "sig",
            "x": URL_SAFE_NO_PAD.encode(&bytes[1..33]), "y": URL_SAFE_NO_PAD.encode(&bytes[33..65]),
        })
    }

    /// A compact JWS of `claims` with `header` (alg ES256, this kid, unless overridden).
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let mut h = json!({ "alg": "ES256", "typ": "JWT", "kid": self.kid });
        merge(&mut h, header);
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&h).unwrap()),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap())
        );
        let signature: EcdsaP256Signature = self.key.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }
}

/// Sets each key of `patch` in `target` (null: removes it).
pub fn merge(target: &mut Value, patch: &Value) {
    if let (Some(t), Some(p)) = (target.as_object_mut(), patch.as_object()) {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                t.insert(k.clone(), v.clone());
            }
        }
    }
}

struct Shared {
    keys: Mutex<Vec<Arc<IssuerKey>>>,
    fetches: AtomicUsize,
    url: Mutex<String>,
}

/// The issuer, serving until dropped.
pub struct TestIssuer {
    pub url: String,
    /// The CA that issued its TLS certificate, as PEM.
    pub ca_pem: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestIssuer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestIssuer {
    pub async fn start() -> TestIssuer {
        let (ca, ca_key) = issue("CN=tapgate test OIDC CA,O=tapgate tests", None, true);
        let (cert, key) = issue("CN=localhost,O=tapgate tests", Some((&ca, &ca_key)), false);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![rustls::pki_types::CertificateDer::from(cert.to_der().unwrap())],
                rustls::pki_types::PrivateKeyDer::Pkcs8(
                    key.to_pkcs8_der().unwrap().as_bytes().to_vec().into(),
                ),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let shared = Arc::new(Shared {
            keys: Mutex::new(vec![Arc::new(IssuerKey::new("key-1"))]),
            fetches: AtomicUsize::new(0),
            url: Mutex::new(url.clone()),
        });
        let s1 = shared.clone();
        let s2 = shared.clone();
        let app = Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(move || {
                    let url = s1.url.lock().unwrap().clone();
                    async move { axum::Json(json!({ "issuer": url, "jwks_uri": format!("{url}/jwks") })) }
                }),
            )
            .route(
                "/jwks",
                get(move || {
                    s2.fetches.fetch_add(1, Ordering::SeqCst);
                    let keys: Vec<Value> = s2.keys.lock().unwrap().iter().map(|k| k.jwk()).collect();
                    async move { axum::Json(json!({ "keys": keys })) }
                }),
            );
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { continue };
                let acceptor = acceptor.clone();
                let app = app.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    let service = hyper_util::service::TowerToHyperService::new(app);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        TestIssuer { url, ca_pem: ca.to_pem(LineEndingPem::LF).unwrap(), shared, task }
    }

    /// The key new tokens are signed with.
    pub fn current(&self) -> Arc<IssuerKey> {
        self.shared.keys.lock().unwrap().last().unwrap().clone()
    }

    /// Replaces every published key with a new one (`kid`): the old key is gone from the JWKS.
    pub fn rotate(&self, kid: &str) {
        *self.shared.keys.lock().unwrap() = vec![Arc::new(IssuerKey::new(kid))];
    }

    /// How often the JWKS was fetched.
    pub fn fetches(&self) -> usize {
        self.shared.fetches.load(Ordering::SeqCst)
    }

    /// GitHub-shaped claims for `repository`'s `workflow` at `now`, for the audience `aud`.
    pub fn claims(&self, now: i64, aud: &str, repository: &str, workflow: &str) -> Value {
        json!({
            "iss": self.url,
            "aud": aud,
            "sub": format!("repo:{repository}:ref:refs/heads/main"),
            "repository": repository,
            "repository_owner": repository.split('/').next().unwrap_or_default(),
            "workflow_ref": format!("{repository}/.github/workflows/{workflow}@refs/heads/main"),
            "ref": "refs/heads/main",
            "jti": uuid::Uuid::new_v4().to_string(),
            "iat": now,
            "nbf": now,
            "exp": now + 300,
        })
    }

    /// An ID token with `claims`, patched, signed by the current key.
    pub fn token(&self, claims: &Value, patch: &Value) -> String {
        let mut c = claims.clone();
        merge(&mut c, patch);
        self.current().sign(&json!({}), &c)
    }
}

/// The issuer as the registry's configuration names it (kind github, trusted through its CA).
pub fn github_issuer(issuer: &TestIssuer) -> tapgate_server::oidc::Issuer {
    tapgate_server::oidc::Issuer::new(
        "github".into(),
        issuer.url.clone(),
        tapgate_server::oidc::IssuerKind::GitHub,
        tapgate_server::oidc::IssuerKind::GitHub.default_required_claims(),
        Some(issuer.ca_pem.as_bytes()),
    )
    .unwrap()
}

/// A token `alg: none` (no signature) and one "signed" with HS256 using the JWK as the secret.
pub fn forged_tokens(key: &IssuerKey, claims: &Value) -> (String, String) {
    use crypto_glue::hmac_s256::HmacSha256;
    use crypto_glue::traits::{KeyInit, Mac};
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    let none = format!("{}.{}.", b64(&json!({"alg": "none", "kid": key.kid})), b64(claims));
    let input = format!("{}.{}", b64(&json!({"alg": "HS256", "kid": key.kid})), b64(claims));
    let secret = serde_json::to_vec(&key.jwk()).unwrap();
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&secret).unwrap();
    mac.update(input.as_bytes());
    let hs = format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()));
    (none, hs)
}
