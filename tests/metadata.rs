//! `action.yml` and the README's reference tables are generated from the
//! input table; these tests fail when the committed files drift.
//! `EXPEDITE_BLESS=1 cargo test --test metadata` rewrites them.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use expedite::config::docs;

fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn check(path: &str, expected: &str) {
    let p = root().join(path);
    let current = std::fs::read_to_string(&p).unwrap_or_default();
    if current != expected {
        if std::env::var("EXPEDITE_BLESS").as_deref() == Ok("1") {
            std::fs::write(&p, expected).unwrap();
            return;
        }
        panic!(
            "{path} is out of date with src/config/spec.rs; run `EXPEDITE_BLESS=1 cargo test --test metadata`"
        );
    }
}

#[test]
fn action_yml_matches_the_input_table() {
    check("action.yml", &docs::action_yml());
}

#[test]
fn readme_tables_match_the_input_table() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let mut updated = readme.clone();
    for (name, body) in [
        ("inputs", docs::readme_inputs()),
        ("outputs", docs::readme_outputs()),
        ("commands", docs::readme_commands()),
    ] {
        updated = docs::replace_section(&updated, name, &body)
            .unwrap_or_else(|| panic!("README.md lacks the generated section '{name}'"));
    }
    check("README.md", &updated);
}

#[test]
fn the_action_runs_the_image_of_this_version() {
    let yml = std::fs::read_to_string(root().join("action.yml")).unwrap();
    let image = format!(
        "image: docker://{}:{}",
        docs::IMAGE,
        env!("CARGO_PKG_VERSION")
    );
    assert!(yml.contains(&image), "action.yml must run {image}");
    assert!(yml.contains(&format!("post-entrypoint: {}", docs::POST_ENTRYPOINT)));
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    assert!(
        dockerfile.contains(docs::POST_ENTRYPOINT),
        "the Dockerfile must provide the post entrypoint"
    );
}

#[test]
fn every_input_in_action_yml_is_documented_with_its_default() {
    // Parse action.yml as YAML would (via its JSON-compatible scalars) and
    // compare names with the table, so a hand edit cannot hide an input.
    let yml = std::fs::read_to_string(root().join("action.yml")).unwrap();
    for spec in expedite::config::INPUTS {
        let declared = yml.contains(&format!("\n  {}:\n    description:", spec.name));
        if spec.cli_only() {
            assert!(
                !declared,
                "{} is CLI-only and must not be an action input",
                spec.name
            );
        } else {
            assert!(declared, "{} missing from action.yml", spec.name);
        }
    }
}

/// Every test the README names as the proof of a claim (`` [`name`](tests/x.rs) ``)
/// exists in that file: a claim whose test was renamed or removed fails here.
#[test]
fn every_test_the_readme_names_exists() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let mut named = 0;
    let mut missing = Vec::new();
    for (i, _) in readme.match_indices("[`") {
        let rest = &readme[i + 2..];
        let Some(end) = rest.find("`](") else {
            continue;
        };
        let name = &rest[..end];
        let after = &rest[end + 3..];
        let Some(close) = after.find(')') else {
            continue;
        };
        let path = after[..close].split('#').next().unwrap_or_default();
        let is_fn = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !is_fn || !path.ends_with(".rs") {
            continue;
        }
        named += 1;
        let source = std::fs::read_to_string(root().join(path)).unwrap_or_default();
        // A test, or a module of tests one macro makes (the lock protocol's
        // `on_both_stores!(name, body)`).
        if !source.contains(&format!("fn {name}(")) && !source.contains(&format!("!({name}, ")) {
            missing.push(format!("{name} in {path}"));
        }
    }
    assert!(
        named >= 20,
        "only {named} tests named; the pattern no longer matches"
    );
    assert!(
        missing.is_empty(),
        "the README names tests that do not exist: {missing:#?}"
    );
}

/// A secret must be reachable on a terminal without a flag (flags are
/// refused for secrets): each has its environment variable.
#[test]
fn every_secret_input_has_an_environment_variable() {
    for spec in expedite::config::INPUTS.iter().filter(|s| s.secret) {
        assert!(
            spec.cli_env.is_some(),
            "{} has no environment variable",
            spec.name
        );
    }
}

/// The docs and examples name the major tag the release workflow moves for
/// the version in `Cargo.toml` (`v0` for 0.x.y), or a commit SHA: a copied
/// `uses: expedite-dev/expedite@v1` would not resolve while releases are
/// 0.x.
#[test]
fn docs_name_the_major_tag_the_release_moves() {
    let major = format!(
        "v{}",
        env!("CARGO_PKG_VERSION").split('.').next().unwrap_or("0")
    );
    let release = std::fs::read_to_string(root().join(".github/workflows/release.yml")).unwrap();
    assert!(
        release.contains(r#"major="v${VERSION%%.*}""#),
        "release.yml no longer moves v<major>: update this test with it"
    );
    let mut files = vec![root().join("README.md")];
    let mut dirs = vec![root().join("examples"), root().join("docs")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                if !p.ends_with("node_modules") {
                    dirs.push(p);
                }
            } else if p
                .extension()
                .is_some_and(|x| x == "md" || x == "yml" || x == "yaml")
            {
                files.push(p);
            }
        }
    }
    let mut wrong = Vec::new();
    let mut seen = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        for (i, _) in text.match_indices("expedite-dev/expedite@") {
            if text[..i].ends_with("ghcr.io/") {
                continue; // the image by digest, not the action
            }
            let r: String = text[i + "expedite-dev/expedite@".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '.')
                .collect();
            seen += 1;
            let sha = r.len() == 40 && r.chars().all(|c| c.is_ascii_hexdigit());
            if r != major && !sha && r != "vX.Y.Z" {
                wrong.push(format!("{}: @{r}", f.display()));
            }
        }
    }
    assert!(seen >= 5, "no references found: {files:?}");
    assert!(wrong.is_empty(), "expected @{major}: {wrong:#?}");
}
