//! What a release publishes, checked here where no registry is reachable:
//! the script that pins `action.yml` to the image by digest (run on sample
//! digests, its result checked against the GitHub Actions schema), the
//! release workflow's order (CI on the same commit before anything is
//! published; every artifact signed), and the Dockerfile's base images
//! pinned by digest.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const IMAGE: &str = "ghcr.io/expedite-dev/expedite";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `.github/scripts/pin-image.sh` on `file`: (exit code, stderr+stdout).
fn pin(digest: &str, file: &Path) -> (i32, String) {
    let out = Command::new("bash")
        .arg(root().join(".github/scripts/pin-image.sh"))
        .arg(digest)
        .arg(file)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).unwrap()
}

/// `action.yml` copied into a fresh directory.
fn copy_of_action_yml() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("action.yml");
    std::fs::copy(root().join("action.yml"), &file).unwrap();
    (dir, file)
}

/// `check-jsonschema` (from `.ci/.venv`, or `EXPEDITE_PYTHON`'s), if any.
fn check_jsonschema() -> Option<PathBuf> {
    let python = PathBuf::from(std::env::var("EXPEDITE_PYTHON").ok()?);
    let exe = python.parent()?.join("check-jsonschema");
    exe.exists().then_some(exe)
}

#[test]
fn pinning_names_the_image_by_digest_and_changes_nothing_else() {
    let before = std::fs::read_to_string(root().join("action.yml")).unwrap();
    let version = env!("CARGO_PKG_VERSION");
    for digest in [
        format!("sha256:{}", "0".repeat(64)),
        format!("sha256:{}", "9f".repeat(32)),
        "sha256:064dfc925d68d1a63f4fd2871bd7dc6e6ea56692989a487185855d62885d90aa".to_owned(),
    ] {
        let (_dir, file) = copy_of_action_yml();
        let (code, text) = pin(&digest, &file);
        assert_eq!(code, 0, "{text}");
        assert!(text.contains(&digest) && text.contains(version), "{text}");
        let after = std::fs::read_to_string(&file).unwrap();

        // One line differs: the image.
        let changed: Vec<(&str, &str)> = before
            .lines()
            .zip(after.lines())
            .filter(|(a, b)| a != b)
            .collect();
        assert_eq!(before.lines().count(), after.lines().count());
        assert_eq!(
            changed,
            vec![(
                format!("  image: docker://{IMAGE}:{version}").as_str(),
                format!("  image: docker://{IMAGE}@{digest} # {version}").as_str()
            )]
        );
        // As the runner reads it: the digest, and the comment is not part of it.
        let (old, new) = (yaml(&before), yaml(&after));
        assert_eq!(
            new["runs"]["image"],
            Value::String(format!("docker://{IMAGE}@{digest}"))
        );
        let strip = |mut v: Value| {
            v["runs"]["image"] = Value::Null;
            v
        };
        assert_eq!(strip(old), strip(new), "only runs.image may change");

        // And it is still a valid action.
        match check_jsonschema() {
            Some(exe) => {
                let out = Command::new(exe)
                    .args(["--builtin-schema", "vendor.github-actions"])
                    .arg(&file)
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "the pinned action.yml fails the GitHub Actions schema:\n{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            None if std::env::var_os("EXPEDITE_REQUIRE_TOOLS").is_some() => {
                panic!("check-jsonschema is required (EXPEDITE_PYTHON's venv)")
            }
            None => {
                println!("SKIPPED the schema check: no check-jsonschema beside EXPEDITE_PYTHON")
            }
        }
    }
}

#[test]
fn pinning_refuses_bad_digests_a_second_pin_and_a_missing_file_and_leaves_the_file_alone() {
    let (_dir, file) = copy_of_action_yml();
    let original = std::fs::read(&file).unwrap();
    for bad in [
        "",
        "latest",
        "sha256:abc",
        &format!("sha256:{}", "A".repeat(64)),
        &format!("sha512:{}", "0".repeat(128)),
        &format!("sha256:{}0", "0".repeat(64)),
        &format!("sha256:{}|x", "0".repeat(64)),
        &format!("sha256:{}\n  evil: true", "0".repeat(64)),
    ] {
        let (code, text) = pin(bad, &file);
        assert_eq!(code, 2, "{bad:?} was taken: {text}");
        assert!(text.contains("64 lower-case hex"), "{text}");
        assert_eq!(std::fs::read(&file).unwrap(), original, "{bad:?}");
    }
    let digest = format!("sha256:{}", "1".repeat(64));
    let (code, text) = pin(&digest, &file);
    assert_eq!(code, 0, "{text}");
    let pinned = std::fs::read(&file).unwrap();
    let (code, text) = pin(&format!("sha256:{}", "2".repeat(64)), &file);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("already runs the image by digest"), "{text}");
    assert_eq!(std::fs::read(&file).unwrap(), pinned);

    let (code, text) = pin(&digest, &file.with_file_name("missing.yml"));
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("no such file"), "{text}");

    // An action.yml edited by hand (no tag-form line) is refused, not guessed at.
    let edited = file.with_file_name("edited.yml");
    std::fs::write(
        &edited,
        String::from_utf8_lossy(&original).replace(&format!("{IMAGE}:"), "example.com/other:"),
    )
    .unwrap();
    let (code, text) = pin(&digest, &edited);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("has 0 lines"), "{text}");
    // No temporary file is left beside it.
    let left: Vec<_> = std::fs::read_dir(file.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
}

/// The release workflow's jobs, as GitHub reads them.
fn release_jobs() -> Value {
    let text = std::fs::read_to_string(root().join(".github/workflows/release.yml")).unwrap();
    yaml(&text)["jobs"].clone()
}

fn needs(job: &Value) -> Vec<String> {
    match &job["needs"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        _ => vec![],
    }
}

fn uses(job: &Value) -> Vec<String> {
    job["steps"]
        .as_array()
        .map(|steps| {
            steps
                .iter()
                .filter_map(|s| s["uses"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Every job that publishes something waits for the CI workflow on the same
/// commit; nothing else can reach the registry or the repository's refs.
#[test]
fn the_release_publishes_only_after_ci_passed_on_the_same_commit() {
    let jobs = release_jobs();
    assert_eq!(jobs["ci"]["uses"], "./.github/workflows/ci.yml");
    let ci = yaml(&std::fs::read_to_string(root().join(".github/workflows/ci.yml")).unwrap());
    assert!(
        ci["on"].get("workflow_call").is_some(),
        "ci.yml must be callable by the release"
    );
    // Transitively after `ci`: a job's needs, and theirs.
    let after_ci = |name: &str| {
        let mut todo = vec![name.to_owned()];
        let mut seen = Vec::new();
        while let Some(j) = todo.pop() {
            if j == "ci" {
                return true;
            }
            if !seen.contains(&j) {
                todo.extend(needs(&jobs[&j]));
                seen.push(j);
            }
        }
        false
    };
    let mut publishing = Vec::new();
    for (name, job) in jobs.as_object().unwrap() {
        let perms = &job["permissions"];
        // Signing (id-token, attestations) publishes too.
        let writes = perms
            .as_object()
            .is_some_and(|p| p.values().any(|v| v == "write"));
        if writes {
            publishing.push(name.clone());
            assert!(
                after_ci(name),
                "job {name} publishes without waiting for CI"
            );
        }
    }
    publishing.sort();
    assert_eq!(
        publishing,
        ["binaries", "image", "publish"].map(String::from)
    );
    // The workflow itself grants nothing; each job asks for what it needs.
    let text = std::fs::read_to_string(root().join(".github/workflows/release.yml")).unwrap();
    assert_eq!(yaml(&text)["permissions"], serde_json::json!({}));
}

/// The image and every binary get signed provenance; the image an SBOM; the
/// release commit pins the digest the image job pushed.
#[test]
fn every_artifact_is_signed_and_the_release_commit_pins_the_pushed_digest() {
    let jobs = release_jobs();
    let attest = |job: &str| {
        uses(&jobs[job])
            .iter()
            .filter(|u| u.starts_with("actions/attest@"))
            .count()
    };
    assert_eq!(attest("image"), 2, "image: provenance and SBOM");
    assert_eq!(attest("binaries"), 1, "each binary: provenance");
    let image_steps = jobs["image"]["steps"].as_array().unwrap();
    assert!(
        image_steps
            .iter()
            .filter(|s| s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/attest@")))
            .all(|s| s["with"]["push-to-registry"] == true
                && s["with"]["subject-digest"] == "${{ steps.build.outputs.digest }}"),
        "the image's attestations name the pushed digest and travel with it"
    );
    assert!(
        image_steps
            .iter()
            .any(|s| s["with"]["sbom-path"].is_string()),
        "an SBOM attestation"
    );
    assert_eq!(
        jobs["image"]["outputs"]["digest"],
        "${{ steps.build.outputs.digest }}"
    );
    let pin_step = jobs["publish"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| {
            s["run"]
                .as_str()
                .is_some_and(|r| r.contains(".github/scripts/pin-image.sh"))
        })
        .expect("publish runs pin-image.sh");
    assert_eq!(
        pin_step["env"]["DIGEST"],
        "${{ needs.image.outputs.digest }}"
    );
    // The five CLI targets the README's install lines name.
    let targets: Vec<String> = jobs["binaries"]["strategy"]["matrix"]["include"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["target"].as_str().unwrap().to_owned())
        .collect();
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    for t in [
        "x86_64-unknown-linux-musl",
        "aarch64-unknown-linux-musl",
        "aarch64-apple-darwin",
        "x86_64-apple-darwin",
        "x86_64-pc-windows-msvc",
    ] {
        assert!(targets.iter().any(|x| x == t), "no {t} binary");
        assert!(
            readme.contains(t),
            "the README does not say how to install {t}"
        );
    }
    assert!(readme.contains("gh attestation verify oci://ghcr.io/expedite-dev/expedite@"));
}

/// Every base image is named by digest (a tag can be moved under a
/// release); the CI workflow checks that each digest resolves.
#[test]
fn the_dockerfile_pins_every_base_image_by_digest() {
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    let froms: Vec<&str> = dockerfile
        .lines()
        .filter_map(|l| l.strip_prefix("FROM "))
        .map(|l| l.split_whitespace().next().unwrap_or_default())
        .collect();
    assert!(froms.len() >= 2, "{froms:?}");
    for f in &froms {
        let digest = f.split_once("@sha256:").map(|(_, d)| d).unwrap_or_default();
        assert!(
            digest.len() == 64 && digest.chars().all(|c| c.is_ascii_hexdigit()),
            "FROM {f} is not pinned by digest"
        );
    }
    let ci = std::fs::read_to_string(root().join(".github/workflows/ci.yml")).unwrap();
    assert!(ci.contains("docker buildx imagetools inspect"));
}

/// The install lines name the version in `Cargo.toml` (the one the release
/// workflow publishes), not an older one.
#[test]
fn the_readme_installs_this_version() {
    let version = env!("CARGO_PKG_VERSION");
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let mut seen = 0;
    for (i, _) in readme.match_indices("expedite-") {
        let rest = &readme[i + "expedite-".len()..];
        if rest.starts_with(|c: char| c.is_ascii_digit()) {
            let named: String = rest
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            assert_eq!(
                named.trim_end_matches('.'),
                version,
                "the README names expedite-{named}"
            );
            seen += 1;
        }
    }
    assert!(seen >= 5, "the install lines are gone ({seen})");
    for line in readme.lines().filter(|l| l.contains("gh release download")) {
        assert!(line.contains(&format!("download v{version} ")), "{line}");
    }
}
