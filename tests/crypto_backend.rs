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
}
