//! Signing in to GitHub: a token as given, or a GitHub App — an RS256 JWT
//! (`iat` 60 s in the past for clock drift, `exp` 9 minutes later, under
//! GitHub's 10-minute cap) → the App's installation on the repository →
//! an installation token, which is masked the moment it exists.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{Api, GithubError};
use crate::action::console::Console;
use crate::cancel::Cancel;
use crate::config::github::{GithubAccess, GithubAuth};

/// Why signing in failed; each variant says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The key cannot sign (checked at input time too; kept for the CLI).
    #[error(
        "app-private-key cannot sign a JWT: {0}; give the App's private key PEM exactly as GitHub generated it"
    )]
    BadKey(String),
    /// GitHub refused the JWT: a wrong app id, a key of another App, or a
    /// clock far off.
    #[error(
        "GitHub refused the App's JWT ({status}: {message}); check that app-id is this App's id (or client id) and app-private-key is one of its current keys, and that the runner's clock is right"
    )]
    JwtRefused {
        /// HTTP status.
        status: u16,
        /// GitHub's message.
        message: String,
    },
    /// The App is not installed on the repository.
    #[error(
        "the GitHub App {app_id} is not installed on {owner}/{repo} (404 from GET /repos/{owner}/{repo}/installation); install it on the repository (App settings → Install App) with Contents and Pull requests write"
    )]
    NotInstalled {
        /// The app id.
        app_id: String,
        /// Owner.
        owner: String,
        /// Repository.
        repo: String,
    },
    /// Anything else GitHub answered.
    #[error(transparent)]
    Api(#[from] GithubError),
}

#[derive(Debug, serde::Serialize)]
struct Claims<'a> {
    iat: i64,
    exp: i64,
    iss: &'a str,
}

/// Reads the App's RSA private key: PKCS#1 (`BEGIN RSA PRIVATE KEY`, what
/// GitHub generates) or PKCS#8 (`BEGIN PRIVATE KEY`).
pub fn app_key(key_pem: &str) -> Result<ring::rsa::KeyPair, String> {
    use rustls_pki_types::PrivateKeyDer;
    use rustls_pki_types::pem::PemObject;
    let der = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| format!("no private key in the PEM text ({e})"))?;
    let key = match &der {
        PrivateKeyDer::Pkcs1(k) => ring::rsa::KeyPair::from_der(k.secret_pkcs1_der()),
        PrivateKeyDer::Pkcs8(k) => ring::rsa::KeyPair::from_pkcs8(k.secret_pkcs8_der()),
        _ => return Err("the key is not an RSA key".into()),
    };
    key.map_err(|e| format!("the RSA key is not usable ({e})"))
}

/// Signs the App's JWT (RS256): `iat` = now − 60 s, `exp` = now + 540 s.
/// Signed by ring, whose RSA is constant-time (the `rsa` crate's is not:
/// RUSTSEC-2023-0071, ADR 2).
pub fn app_jwt(app_id: &str, key_pem: &str) -> Result<SecretString, AuthError> {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let key = app_key(key_pem).map_err(AuthError::BadKey)?;
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        iat: now - 60,
        exp: now + 540,
        iss: app_id,
    };
    let claims = serde_json::to_vec(&claims).map_err(|e| AuthError::BadKey(e.to_string()))?;
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"RS256"}"#),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let mut signature = vec![0u8; key.public().modulus_len()];
    key.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        signing_input.as_bytes(),
        &mut signature,
    )
    .map_err(|_| AuthError::BadKey("signing with the App's key failed".into()))?;
    Ok(SecretString::from(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    )))
}

#[derive(Deserialize)]
struct Installation {
    id: u64,
}

#[derive(Deserialize)]
struct AccessToken {
    token: String,
}

/// The token to use for `access`: the given token, or an installation
/// token minted for the App (masked through `console` before it is
/// returned, so nothing printed later can show it).
pub async fn token(
    http: &reqwest::Client,
    access: &GithubAccess,
    console: &Console,
    cancel: &Cancel,
) -> Result<SecretString, AuthError> {
    let (app_id, key) = match &access.auth {
        GithubAuth::Token(t) => return Ok(t.clone()),
        GithubAuth::App {
            app_id,
            private_key,
        } => (app_id, private_key),
    };
    let jwt = app_jwt(app_id, key.expose_secret())?;
    console.add_mask(jwt.expose_secret());
    let app = Api::new(http.clone(), access, jwt, cancel.clone());
    let refused = |e: GithubError| match e {
        GithubError::Api {
            status: status @ (401 | 403),
            message,
            ..
        } => AuthError::JwtRefused { status, message },
        other => AuthError::Api(other),
    };
    let installation: Installation = match app
        .get_json(&format!(
            "/repos/{}/{}/installation",
            access.owner, access.repo
        ))
        .await
    {
        Ok(i) => i,
        Err(GithubError::Api { status: 404, .. }) => {
            return Err(AuthError::NotInstalled {
                app_id: app_id.clone(),
                owner: access.owner.clone(),
                repo: access.repo.clone(),
            });
        }
        Err(e) => return Err(refused(e)),
    };
    // Narrowed to this repository: the token can touch nothing else even
    // if the App is installed on the whole organisation.
    let minted: AccessToken = app
        .post_json(
            &format!("/app/installations/{}/access_tokens", installation.id),
            &serde_json::json!({ "repositories": [access.repo] }),
        )
        .await
        .map_err(refused)?;
    console.add_mask(&minted.token);
    tracing::debug!(
        "signed in as GitHub App {app_id} (installation {})",
        installation.id
    );
    Ok(SecretString::from(minted.token))
}
