#![allow(clippy::unwrap_used, clippy::expect_used)] // test code
//! The module layout ARCHITECTURE.md describes, checked: no command imports
//! another command (what several share lives in `commands/shared/`).

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn no_command_imports_another_command() {
    let commands_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/commands");
    // The commands: every module of src/commands but its mod.rs and shared/.
    let commands: Vec<String> = std::fs::read_dir(&commands_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let stem = p.file_stem()?.to_str()?.to_string();
            (stem != "mod" && stem != "shared").then_some(stem)
        })
        .collect();
    assert!(commands.len() >= 10, "{commands:?}");
    let mut found = Vec::new();
    for own in &commands {
        let mut files = Vec::new();
        let dir = commands_dir.join(own);
        if dir.is_dir() {
            rust_files(&dir, &mut files);
        } else {
            files.push(commands_dir.join(format!("{own}.rs")));
        }
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            for other in commands.iter().filter(|c| *c != own) {
                for path in [
                    format!("commands::{other}::"),
                    format!("commands::{other};"),
                    format!("super::{other}::"),
                    format!("super::{other};"),
                    format!("super::{{{other}"),
                ] {
                    if let Some(n) = text.lines().position(|l| l.contains(&path)) {
                        found.push(format!("{}:{}: {own} uses {other}", f.display(), n + 1));
                    }
                }
            }
        }
    }
    assert!(found.is_empty(), "a command imports another: {found:#?}");
}

/// Evidence sources are chosen in one place: the configuration names them
/// (`config/`), `SourceSpec::build` and `SourceSpec::name` in
/// `rollout/canary.rs` are the only code that tells them apart. A new source
/// is its own file under `probe/evidence/` plus a line in each.
#[test]
fn evidence_sources_are_told_apart_only_where_they_are_registered() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut found = Vec::new();
    for f in files {
        let rel = f.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        if rel.starts_with("src/config/") {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            if line.contains("SourceSpec::Probes")
                || line.contains("SourceSpec::Prometheus")
                || line.contains("SourceSpec::AzureMonitor")
            {
                found.push((rel.clone(), n + 1));
            }
        }
    }
    // build() and name(): three arms each, in one file.
    assert!(
        found.iter().all(|(f, _)| f == "src/rollout/canary.rs"),
        "evidence kinds matched outside the registration: {found:?}"
    );
    assert_eq!(found.len(), 6, "{found:?}");
}

/// Platforms are told apart in one place: `commands/shared/platforms.rs`
/// (the factory: a service's place, its target and evidence clients, what a
/// rollback aims at), beside the types that name them — the journal's
/// `Place` (`rollout/driver.rs`), the inputs and the manifest that parse
/// them (`config/`, `manifest/`), and Azure Monitor's table of which metrics
/// each resource type has. No command, rollout or post stage matches on a
/// platform.
#[test]
fn platforms_are_told_apart_only_in_the_factory() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let allowed = [
        "src/commands/shared/platforms.rs",
        "src/rollout/driver.rs",
        "src/probe/evidence/azure_monitor.rs",
    ];
    let patterns = [
        "Place::AppService",
        "Place::ContainerApps",
        "PlatformKind::AppService",
        "PlatformKind::ContainerApps",
        "Platform::AppService",
        "Platform::ContainerApps",
        "MonitorTarget::AppService",
        "MonitorTarget::ContainerApp",
    ];
    let mut found = Vec::new();
    let mut in_factory = 0;
    for f in files {
        let rel = f.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        if rel.starts_with("src/config/") || rel.starts_with("src/manifest/") {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") || !patterns.iter().any(|p| line.contains(p)) {
                continue;
            }
            if allowed.contains(&rel.as_str()) {
                in_factory += 1;
            } else {
                found.push(format!("{rel}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        in_factory >= 10,
        "the factory names platforms {in_factory} times: has it moved?"
    );
    assert!(
        found.is_empty(),
        "platforms told apart outside the factory: {found:#?}"
    );
}
