//! GitHub credentials: App JWTs (RS256, checked the way GitHub words its
//! 401s), the personal token and installation tokens, from `Authorization`
//! headers in every form GitHub accepts (`token`, `Bearer`, Basic with the
//! token as password or as user name).

use base64::Engine;
use http::HeaderMap;
use jsonwebtoken::{Algorithm, EncodingKey, Header, Validation};
use serde_json::{Value, json};

use super::{APP_CLIENT_ID, APP_ID, GitHub, Token};
use crate::SandboxError;

/// Clock skew GitHub tolerates on `iat`/`exp`.
const SKEW: i64 = 60;
/// Longest an App JWT may live.
const MAX_JWT_LIFETIME: i64 = 600;

pub(crate) const UNDECODABLE: &str = "A JSON web token could not be decoded";
pub(crate) const BAD_IAT: &str = "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued";
pub(crate) const IAT_FUTURE: &str = "'Issued at' claim ('iat') is in the future";
pub(crate) const BAD_EXP: &str = "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires";
pub(crate) const EXP_TOO_FAR: &str = "'Expiration time' claim ('exp') is too far in the future";
pub(crate) const NO_INTEGRATION: &str = "Integration not found";

/// What an `Authorization` header carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cred {
    None,
    /// A JWT sent with `Bearer`.
    Jwt(String),
    Token(String),
    /// A header GitHub would not understand.
    Malformed,
}

fn looks_like_jwt(t: &str) -> bool {
    t.starts_with("eyJ") && t.split('.').count() == 3
}

pub(crate) fn credential(headers: &HeaderMap) -> Cred {
    let Some(v) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Cred::None;
    };
    let (scheme, rest) = v.trim().split_once(' ').unwrap_or((v.trim(), ""));
    let rest = rest.trim();
    match scheme.to_ascii_lowercase().as_str() {
        "bearer" if looks_like_jwt(rest) => Cred::Jwt(rest.to_owned()),
        "bearer" | "token" if !rest.is_empty() => Cred::Token(rest.to_owned()),
        "basic" => {
            let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(rest) else {
                return Cred::Malformed;
            };
            let text = String::from_utf8_lossy(&raw).into_owned();
            let (user, pass) = text.split_once(':').unwrap_or((&text, ""));
            if pass.is_empty() || pass == "x-oauth-basic" {
                if user.is_empty() {
                    Cred::Malformed
                } else {
                    Cred::Token(user.to_owned())
                }
            } else {
                Cred::Token(pass.to_owned())
            }
        }
        _ => Cred::Malformed,
    }
}

/// Looks a token up; `None` for unknown or expired ones ("Bad credentials").
pub(crate) fn token(gh: &GitHub, t: &str) -> Option<Token> {
    if t == gh.personal_token {
        return Some(Token {
            actor: super::Actor::personal(),
            installation: None,
            owner: None,
            repositories: None,
            permissions: super::default_permissions(),
            expires_at: None,
        });
    }
    let st = gh.state();
    let tok = st.tokens.get(t)?;
    match tok.expires_at {
        Some(exp) if exp <= chrono::Utc::now() => None,
        _ => Some(tok.clone()),
    }
}

fn payload(jwt: &str) -> Option<Value> {
    let part = jwt.split('.').nth(1)?;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&raw).ok()
}

/// Checks an App JWT as GitHub does; `Err` is the 401 message.
pub(crate) fn verify_app_jwt(gh: &GitHub, jwt: &str) -> Result<(), &'static str> {
    let header = jsonwebtoken::decode_header(jwt).map_err(|_| UNDECODABLE)?;
    if header.alg != Algorithm::RS256 {
        return Err(UNDECODABLE);
    }
    let claims = payload(jwt).ok_or(UNDECODABLE)?;
    let iss = match claims.get("iss") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err(NO_INTEGRATION),
    };
    if iss != APP_ID.to_string() && iss != APP_CLIENT_ID {
        return Err(NO_INTEGRATION);
    }
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<Value>(jwt, &gh.decoding, &validation).map_err(|_| UNDECODABLE)?;
    let iat = claims.get("iat").and_then(Value::as_i64).ok_or(BAD_IAT)?;
    let exp = claims.get("exp").and_then(Value::as_f64).ok_or(BAD_EXP)? as i64;
    let now = chrono::Utc::now().timestamp();
    if iat > now + SKEW {
        return Err(IAT_FUTURE);
    }
    if exp + SKEW <= now || exp <= iat {
        return Err(BAD_EXP);
    }
    if exp > now + MAX_JWT_LIFETIME + SKEW || exp - iat > MAX_JWT_LIFETIME + SKEW {
        return Err(EXP_TOO_FAR);
    }
    Ok(())
}

/// Signs `{iat, exp, iss}` with `pem` (RS256), `iat = now + iat_offset`.
pub(crate) fn sign_app_jwt(
    pem: &str,
    iss: &str,
    iat_offset_secs: i64,
    lifetime_secs: i64,
) -> Result<String, SandboxError> {
    let key =
        EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| SandboxError::Tls(e.to_string()))?;
    let iat = chrono::Utc::now().timestamp() + iat_offset_secs;
    let claims = json!({"iat": iat, "exp": iat + lifetime_secs, "iss": iss});
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &key)
        .map_err(|e| SandboxError::Tls(e.to_string()))
}
