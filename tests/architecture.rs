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

/// A platform is its own files and one line in the registry: outside a
/// platform's client (`src/platform/{name}.rs`) and its target
/// (`src/rollout/{name}.rs`), no code names its module — except the
/// registry's line in `src/rollout/platforms.rs`, the `mod` lines, and
/// Azure Monitor's table of which metrics each resource type has. Commands,
/// config, the manifest and the driver hold a `&dyn Platform` and never
/// tell platforms apart; nothing matches on a platform's name.
#[test]
fn a_platform_is_named_only_in_its_own_files_and_the_registry() {
    // Left, each on purpose (ADR 10, "Left"): the inputs' default platform,
    // and the journal's facts, which still carry App Service's swap status
    // beside the other platforms' facts.
    const LEFT: &[(&str, &str)] = &[
        ("src/config/spec.rs", ".default(\"app-service\")"),
        (
            "src/rollout/driver.rs",
            "use crate::platform::app_service::SwapStatus;",
        ),
    ];
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let platforms: Vec<String> = std::fs::read_dir(root.join("src/platform"))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            name.strip_suffix(".rs")
                .filter(|n| *n != "mod")
                .map(str::to_string)
        })
        .collect();
    assert!(platforms.len() >= 2, "{platforms:?}");
    let mut found = Vec::new();
    let mut registered = 0;
    for f in &files {
        let rel = f.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(f).unwrap();
        // A file's unit tests may name platforms to exercise them.
        let text = text.split("#[cfg(test)]").next().unwrap_or_default();
        for p in &platforms {
            let own = [
                format!("src/platform/{p}.rs"),
                format!("src/rollout/{p}.rs"),
            ];
            if own.contains(&rel) {
                continue;
            }
            // Its Rust name, and (a string) its name as users spell it.
            let spelled = format!("\"{}\"", p.replace('_', "-"));
            for (n, line) in text.lines().enumerate() {
                let t = line.trim_start();
                if t.starts_with("//") || t == format!("pub mod {p};") {
                    continue;
                }
                let named = line.contains(&format!("::{p}::"))
                    || line.contains(&format!("::{p};"))
                    || line.contains(&format!("{p}::"))
                    || line.contains(&spelled);
                if !named {
                    continue;
                }
                if rel == "src/rollout/platforms.rs" && t == format!("&super::{p}::PLATFORM,") {
                    registered += 1;
                } else if rel == "src/probe/evidence/azure_monitor.rs"
                    || (rel == "src/commands/drill.rs" && t.starts_with("(\"platform\", "))
                    || LEFT.contains(&(rel.as_str(), line.trim()))
                {
                    // Which metrics each resource type has; the drill, which
                    // writes a step's inputs as a workflow does; what is left.
                } else {
                    found.push(format!("{rel}:{}: {}", n + 1, line.trim()));
                }
            }
        }
    }
    assert_eq!(
        registered,
        platforms.len(),
        "every platform has one registration line"
    );
    assert!(
        found.is_empty(),
        "platforms named outside their own files: {found:#?}"
    );
}
