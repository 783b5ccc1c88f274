//! `action.yml` and the README's reference tables, generated from the
//! [`spec`](super::spec) table. `tests/metadata.rs` fails when the committed
//! files differ; `EXPEDITE_BLESS=1 cargo test --test metadata` rewrites them.

use std::fmt::Write as _;

use super::spec::{COMMAND_INPUT, Command, INPUTS, InputSpec, OUTPUTS, Scope};

/// The public image the action runs (a prebuilt image starts in seconds;
/// a Dockerfile would be rebuilt in every job).
pub const IMAGE: &str = "ghcr.io/expedite-dev/expedite";

/// Where the post stage's entrypoint lives in the image.
pub const POST_ENTRYPOINT: &str = "/usr/local/bin/expedite-post";

fn quoted(s: &str) -> String {
    // A JSON string is a valid YAML double-quoted scalar.
    serde_json::Value::String(s.to_string()).to_string()
}

fn scope_names(scope: Scope) -> String {
    match scope {
        Scope::All => "all".to_string(),
        Scope::Only(cs) => cs.iter().map(|c| c.name()).collect::<Vec<_>>().join(", "),
    }
}

fn full_description(spec: &InputSpec) -> String {
    let mut d = spec.description.to_string();
    if spec.name != COMMAND_INPUT {
        let _ = write!(d, " Used by: {}.", scope_names(spec.scope));
        let required: Vec<_> = spec.required_for.iter().map(|c| c.name()).collect();
        if !required.is_empty() {
            let _ = write!(d, " Required by: {}.", required.join(", "));
        }
    }
    if spec.secret {
        d.push_str(" Secret: masked, never printed.");
    }
    d
}

/// The whole `action.yml`.
pub fn action_yml() -> String {
    let mut y = String::new();
    y.push_str("# Generated from src/config/spec.rs; edit the table there, then run\n");
    y.push_str("# `EXPEDITE_BLESS=1 cargo test --test metadata`.\n");
    y.push_str("name: expedite\n");
    let _ = writeln!(
        y,
        "description: {}",
        quoted(
            "Expedited hotfix path for Azure: critical-test gate, verified slot deploy with canary and circuit breaker, automatic rollback, cherry-pick back to main."
        )
    );
    y.push_str("author: expedite maintainers\n");
    y.push_str("branding:\n  icon: zap\n  color: orange\n");
    y.push_str("inputs:\n");
    for spec in INPUTS.iter().filter(|s| !s.cli_only()) {
        let _ = writeln!(y, "  {}:", spec.name);
        let _ = writeln!(y, "    description: {}", quoted(&full_description(spec)));
        let _ = writeln!(y, "    required: {}", spec.name == COMMAND_INPUT);
        if let Some(d) = spec.action_default.or(spec.default) {
            let _ = writeln!(y, "    default: {}", quoted(d));
        }
    }
    // Aliases are inputs too (the runner warns about undeclared ones), with
    // no default, so only a value someone wrote arrives.
    for spec in INPUTS.iter().filter(|s| !s.cli_only()) {
        for alias in spec.aliases {
            let _ = writeln!(y, "  {alias}:");
            let d = format!(
                "Alias of `{}` (the name a peer action uses for the same thing).",
                spec.name
            );
            let _ = writeln!(y, "    description: {}", quoted(&d));
            let _ = writeln!(y, "    required: false");
        }
    }
    y.push_str("outputs:\n");
    for o in OUTPUTS {
        // An output only CLI commands set is not the action's.
        if matches!(o.scope, Scope::Only(cs) if cs.iter().all(|c| c.cli_only())) {
            continue;
        }
        let _ = writeln!(y, "  {}:", o.name);
        let desc = format!("{} Set by: {}.", o.description, scope_names(o.scope));
        let _ = writeln!(y, "    description: {}", quoted(&desc));
    }
    y.push_str("runs:\n  using: docker\n");
    let _ = writeln!(y, "  image: docker://{IMAGE}:{}", env!("CARGO_PKG_VERSION"));
    let _ = writeln!(y, "  post-entrypoint: {POST_ENTRYPOINT}");
    y
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The README's inputs table (between its generated-section markers).
pub fn readme_inputs() -> String {
    let mut t = String::from("| input | commands | default | description |\n|---|---|---|---|\n");
    for spec in INPUTS {
        let commands = if spec.name == COMMAND_INPUT {
            "all (required)".to_string()
        } else {
            let mut s = scope_names(spec.scope);
            if spec.cli_only() {
                s.push_str(" (CLI only)");
            }
            if !spec.required_for.is_empty() {
                s.push_str(" (required)");
            }
            s
        };
        let default = spec
            .action_default
            .or(spec.default)
            .map(|d| format!("`{d}`"))
            .unwrap_or_default();
        let mut desc = spec.description.to_string();
        if spec.secret {
            desc.push_str(" *Secret.*");
        }
        if !spec.aliases.is_empty() {
            let names: Vec<String> = spec.aliases.iter().map(|a| format!("`{a}`")).collect();
            let _ = write!(desc, " Also accepted as {}.", names.join(", "));
        }
        let _ = writeln!(
            t,
            "| `{}` | {} | {} | {} |",
            spec.name,
            commands,
            cell(&default),
            cell(&desc)
        );
    }
    t
}

/// The README's outputs table.
pub fn readme_outputs() -> String {
    let mut t = String::from("| output | set by | description |\n|---|---|---|\n");
    for o in OUTPUTS {
        let _ = writeln!(
            t,
            "| `{}` | {} | {} |",
            o.name,
            scope_names(o.scope),
            cell(o.description)
        );
    }
    t
}

/// The README's command list.
pub fn readme_commands() -> String {
    let mut t = String::from("| command | what it does | in this version |\n|---|---|---|\n");
    for c in Command::ALL {
        let state = if c.available() {
            "available"
        } else {
            "not yet: exits 1 and says so"
        };
        let where_ = if Command::ACTION.contains(&c) {
            ""
        } else {
            " (CLI only)"
        };
        let _ = writeln!(
            t,
            "| `{}`{} | {} | {} |",
            c.name(),
            where_,
            c.about(),
            state
        );
    }
    t
}

/// Replaces the text between `<!-- BEGIN GENERATED: name -->` and
/// `<!-- END GENERATED: name -->`; `None` when the markers are missing.
pub fn replace_section(doc: &str, name: &str, body: &str) -> Option<String> {
    let begin = format!("<!-- BEGIN GENERATED: {name} -->\n");
    let end = format!("<!-- END GENERATED: {name} -->");
    let b = doc.find(&begin)? + begin.len();
    let e = b + doc[b..].find(&end)?;
    Some(format!("{}{}{}", &doc[..b], body, &doc[e..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_replaced_in_place() {
        let doc = "a\n<!-- BEGIN GENERATED: x -->\nold\n<!-- END GENERATED: x -->\nb";
        assert_eq!(
            replace_section(doc, "x", "new\n").unwrap(),
            "a\n<!-- BEGIN GENERATED: x -->\nnew\n<!-- END GENERATED: x -->\nb"
        );
        assert!(replace_section(doc, "y", "").is_none());
    }
}
