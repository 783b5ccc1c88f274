//! Exactly one crypto backend (docs/adr/0002-crypto-backend.md): with none or
//! two, jsonwebtoken panics when it signs — in production, the first time a
//! GitHub App token is needed. This signs through the product's own App-JWT
//! function, with the product's dependency set.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::process::Command;

#[test]
fn the_build_graph_has_no_second_backend() {
    // Cargo.lock also lists optional dependencies no feature enables, so ask
    // cargo for the resolved graph (with features) instead.
    for forbidden in ["aws-lc-rs", "aws-lc-sys", "openssl-sys"] {
        let out = Command::new(env!("CARGO"))
            .args([
                "tree",
                "--offline",
                "--workspace",
                "-e",
                "normal,build",
                "-i",
                forbidden,
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains("nothing to print") || text.contains("did not match any packages"),
            "{forbidden} is in the build (see docs/adr/0002-crypto-backend.md):\n{text}"
        );
    }
}

#[test]
fn app_jwt_signing_works_with_the_product_dependency_set() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("app.pem");
    // GitHub issues PKCS#1 PEM keys ("BEGIN RSA PRIVATE KEY"); make one.
    let status = Command::new("openssl")
        .args(["genrsa", "-traditional", "-out"])
        .arg(&key)
        .arg("2048")
        .output();
    let pem = match status {
        Ok(out) if out.status.success() => std::fs::read(&key).unwrap(),
        _ => {
            assert!(
                std::env::var("EXPEDITE_REQUIRE_TOOLS").is_err(),
                "openssl is required in CI"
            );
            eprintln!("skipped: openssl not found");
            return;
        }
    };
    assert!(String::from_utf8_lossy(&pem).contains("BEGIN RSA PRIVATE KEY"));
    let jwt = expedite::github::auth::app_jwt("12345", &String::from_utf8_lossy(&pem)).unwrap();
    let jwt = secrecy::ExposeSecret::expose_secret(&jwt).to_string();
    assert_eq!(jwt.split('.').count(), 3);
    let header = jsonwebtoken::decode_header(&jwt).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    // The signature verifies with the public key, as GitHub checks it.
    let public = dir.path().join("app.pub.pem");
    let out = Command::new("openssl")
        .args(["rsa", "-pubout", "-in"])
        .arg(&key)
        .arg("-out")
        .arg(&public)
        .output()
        .unwrap();
    assert!(out.status.success());
    let decoding =
        jsonwebtoken::DecodingKey::from_rsa_pem(&std::fs::read(&public).unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.required_spec_claims = ["exp", "iss"].iter().map(|s| s.to_string()).collect();
    validation.set_issuer(&["12345"]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(&jwt, &decoding, &validation)
        .unwrap()
        .claims;
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert_eq!(exp - iat, 600, "{claims}");

    // A PKCS#8 key (`BEGIN PRIVATE KEY`) signs too; a tampered token fails.
    let pkcs8 = dir.path().join("app8.pem");
    let out = Command::new("openssl")
        .args(["pkcs8", "-topk8", "-nocrypt", "-in"])
        .arg(&key)
        .arg("-out")
        .arg(&pkcs8)
        .output()
        .unwrap();
    assert!(out.status.success());
    let jwt8 = expedite::github::auth::app_jwt("12345", &std::fs::read_to_string(&pkcs8).unwrap())
        .unwrap();
    let jwt8 = secrecy::ExposeSecret::expose_secret(&jwt8).to_string();
    assert!(jsonwebtoken::decode::<serde_json::Value>(&jwt8, &decoding, &validation).is_ok());
    let tampered = format!("{}x", &jwt8[..jwt8.len() - 1]);
    assert!(jsonwebtoken::decode::<serde_json::Value>(&tampered, &decoding, &validation).is_err());
}

/// The product no longer links the `rsa` crate (RUSTSEC-2023-0071): the
/// action's build (no `sandbox` feature) has no path to it.
#[test]
fn the_action_build_has_no_rsa_crate() {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "-p",
            "expedite",
            "--no-default-features",
            "-e",
            "normal,build",
            "-i",
            "rsa",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("nothing to print") || text.contains("did not match any packages"),
        "rsa is in the action's build:\n{text}"
    );
}
