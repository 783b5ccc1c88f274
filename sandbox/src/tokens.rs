//! Signing keys and JWTs: Entra access tokens for ARM/Kudu and GitHub-style
//! OIDC ID tokens used as federated client assertions.
//!
//! Both issuers sign ES256 with their own P-256 key generated at start, so a
//! token minted by one issuer never verifies as the other's.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::SandboxError;

/// Audiences ARM accepts (reference §1.1: v2 scope and legacy v1 resource),
/// plus the sandbox cloud's own ARM endpoint (see `entra::ARM_RESOURCES`).
pub const ARM_AUDIENCES: [&str; 6] = [
    "https://management.azure.com/",
    "https://management.azure.com",
    "https://management.azure.test/",
    "https://management.azure.test",
    "https://management.core.windows.net/",
    "https://management.core.windows.net",
];

/// The audience of access tokens the sandbox issues for the ARM scope.
pub const ARM_AUDIENCE: &str = "https://management.azure.com/";

/// One issuer's key pair.
pub(crate) struct Signer {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// Public key as a JWK (RFC 7517), for the issuers' JWKS documents.
    jwk: Value,
}

impl Signer {
    pub fn generate(kid: &str) -> Result<Self, SandboxError> {
        let key = rcgen::KeyPair::generate().map_err(|e| SandboxError::Tls(e.to_string()))?;
        let encoding = EncodingKey::from_ec_pem(key.serialize_pem().as_bytes())
            .map_err(|e| SandboxError::Tls(e.to_string()))?;
        let decoding = DecodingKey::from_ec_pem(key.public_key_pem().as_bytes())
            .map_err(|e| SandboxError::Tls(e.to_string()))?;
        // Uncompressed SEC1 point: 0x04 || x (32 bytes) || y (32 bytes).
        let raw = key.public_key_raw();
        let (x, y) = match raw {
            [4, rest @ ..] if rest.len() == 64 => rest.split_at(32),
            _ => {
                return Err(SandboxError::Tls(
                    "unexpected P-256 public key encoding".into(),
                ));
            }
        };
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let jwk = serde_json::json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": b64.encode(x), "y": b64.encode(y),
        });
        Ok(Self {
            kid: kid.to_owned(),
            encoding,
            decoding,
            jwk,
        })
    }

    /// `{"keys": [jwk]}`.
    pub fn jwks(&self) -> Value {
        serde_json::json!({"keys": [self.jwk]})
    }

    pub fn sign(&self, claims: &Value) -> Result<String, SandboxError> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .map_err(|e| SandboxError::Tls(e.to_string()))
    }

    /// Verifies the signature only; time and audience checks are the
    /// caller's, because each surface words those failures differently.
    pub fn verify(&self, token: &str) -> Result<Claims, jsonwebtoken::errors::Error> {
        let mut validation = Validation::new(Algorithm::ES256);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation).map(|d| d.claims)
    }
}

/// The registered claims the sandbox checks; everything else is ignored.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Claims {
    #[serde(default)]
    pub iss: Option<String>,
    #[serde(default)]
    pub sub: Option<String>,
    #[serde(default)]
    pub aud: Option<Audience>,
    #[serde(default)]
    pub exp: Option<i64>,
    #[serde(default)]
    pub nbf: Option<i64>,
    #[serde(default)]
    pub iat: Option<i64>,
    #[serde(default)]
    pub appid: Option<String>,
    #[serde(default)]
    pub tid: Option<String>,
}

/// `aud` may be a string or an array of strings (RFC 7519 §4.1.3).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub fn values(&self) -> Vec<&str> {
        match self {
            Audience::One(a) => vec![a.as_str()],
            Audience::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// Seconds since the Unix epoch, from the wall clock (JWT times are wall-clock).
pub fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}
