//! The GitHub Actions runner contract.
//!
//! - [`Env`]: a snapshot of the environment, read once (testable, and no
//!   surprises from a variable changing mid-run); `INPUT_*` names keep their
//!   hyphens (`INPUT_GITHUB-TOKEN`), values are trimmed.
//! - [`Stage`]: main or post. The runner passes the same arguments to both,
//!   so the post stage is told apart by its entrypoint's name
//!   (`expedite-post`, see `action.yml`).
//! - [`runner::Runner`]: the run as the runner describes it (`GITHUB_*`,
//!   `RUNNER_TEMP`), each variable read there once.
//! - [`Sinks`]: outputs, state and summary — files in a job, stdout/nothing
//!   on a terminal.
//! - [`console`]: everything a person sees; [`escape`]: workflow commands;
//!   [`files`]: file commands; [`log`]: the tracing subscriber.

pub mod console;
pub mod escape;
pub mod files;
pub mod identity;
pub mod log;
pub mod runner;
pub mod vso;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use console::{Console, Style};
use escape::Level;
use files::FileCommandError;

/// A snapshot of the process environment.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    /// Reads the process environment. Variables whose name or value is not
    /// UTF-8 are skipped rather than crashing the run.
    pub fn from_process() -> Env {
        Env::from_pairs(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    /// Builds an environment from pairs (tests).
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Env {
        Env {
            vars: pairs.into_iter().collect(),
        }
    }

    /// A variable's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// A non-empty variable's value as a path.
    pub fn path(&self, name: &str) -> Option<PathBuf> {
        self.get(name).filter(|v| !v.is_empty()).map(PathBuf::from)
    }

    /// The runner's environment name for an input: spaces become `_`, the
    /// rest is upper-cased, hyphens are kept.
    pub fn input_var(name: &str) -> String {
        format!("INPUT_{}", name.replace(' ', "_").to_uppercase())
    }

    /// An input's value, trimmed; `None` when absent or empty.
    pub fn input(&self, name: &str) -> Option<String> {
        self.get(&Env::input_var(name))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    }

    /// The names of every `INPUT_*` variable, lower-cased back to input names.
    pub fn input_names(&self) -> Vec<String> {
        self.vars
            .keys()
            .filter_map(|k| k.strip_prefix("INPUT_"))
            .map(str::to_lowercase)
            .collect()
    }

    /// True inside a GitHub Actions job.
    pub fn in_actions(&self) -> bool {
        self.get("GITHUB_ACTIONS") == Some("true")
    }

    /// True in a script step of an Azure Pipelines job (the agent sets
    /// `TF_BUILD=True`), and not inside a GitHub Actions job.
    pub fn in_pipelines(&self) -> bool {
        !self.in_actions()
            && self
                .get("TF_BUILD")
                .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// The runner's variables, read the one way ([`runner::Runner`]).
    pub fn runner(&self) -> runner::Runner {
        runner::Runner::from_env(self)
    }

    /// True when the run has debug logging on (`RUNNER_DEBUG=1`) or the
    /// user asked for it (`EXPEDITE_DEBUG=1`).
    pub fn debug(&self) -> bool {
        self.get("RUNNER_DEBUG") == Some("1")
            || matches!(self.get("EXPEDITE_DEBUG"), Some("1" | "2"))
    }
}

/// Which stage of the action is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The step itself.
    Main,
    /// `post-entrypoint`: runs at the end of the job, also after failure or
    /// cancellation; finishes what an interrupted main stage left.
    Post,
}

/// The file name of the post-stage entrypoint (a link to the same binary).
pub const POST_ENTRYPOINT_NAME: &str = "expedite-post";

impl Stage {
    /// Detects the stage from the program name, or `EXPEDITE_STAGE=post`
    /// (for running the post stage by hand).
    pub fn detect(argv0: &std::ffi::OsStr, env: &Env) -> Stage {
        let name = Path::new(argv0)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name == POST_ENTRYPOINT_NAME || env.get("EXPEDITE_STAGE") == Some("post") {
            Stage::Post
        } else {
            Stage::Main
        }
    }
}

/// Where outputs, state and the summary go.
#[derive(Debug, Clone)]
pub struct Sinks {
    /// `$GITHUB_OUTPUT`, or `None` to print outputs on stdout.
    pub output: Option<PathBuf>,
    /// `$GITHUB_STATE`, or `None` outside a job.
    pub state: Option<PathBuf>,
    /// `$GITHUB_STEP_SUMMARY`, or a file given with `--summary-file`.
    pub summary: Option<PathBuf>,
    /// Without `$GITHUB_OUTPUT`: print the outputs as one JSON object
    /// (`--output json`) instead of `name=value` lines.
    pub json: bool,
    /// In an Azure Pipelines step: outputs are output variables, and the
    /// summary file is attached to the step at the end.
    pub pipelines: bool,
}

impl Sinks {
    /// The sinks the environment provides.
    pub fn from_env(env: &Env) -> Sinks {
        let pipelines = env.in_pipelines();
        // A pipeline has no summary file of its own: expedite writes one in
        // the agent's temporary directory and attaches it at the end.
        let summary = env.path("GITHUB_STEP_SUMMARY").or_else(|| {
            pipelines.then(|| {
                env.path("AGENT_TEMPDIRECTORY")
                    .unwrap_or_else(std::env::temp_dir)
                    .join(format!("expedite-summary-{}.md", std::process::id()))
            })
        });
        if pipelines && let Some(path) = &summary {
            let _ = std::fs::write(path, "");
        }
        Sinks {
            output: env.path("GITHUB_OUTPUT"),
            state: env.path("GITHUB_STATE"),
            summary,
            json: false,
            pipelines,
        }
    }

    /// In a pipeline: attaches the summary file to the step (once it has
    /// something) and, when the step succeeded with warnings, says so.
    pub fn finish_pipeline_step(&self, console: &Console, success: bool) {
        if !self.pipelines {
            return;
        }
        if let Some(path) = &self.summary
            && std::fs::metadata(path).is_ok_and(|m| m.len() > 0)
        {
            console.vso(&vso::command(
                "task.uploadsummary",
                &[],
                &path.display().to_string(),
            ));
        }
        if success && console.annotations_left(Level::Warning) < console::ANNOTATION_LIMIT_PER_LEVEL
        {
            console.vso(&vso::command(
                "task.complete",
                &[("result", "SucceededWithIssues".into())],
                "expedite succeeded with warnings",
            ));
        }
    }

    /// Sets an output. Without `$GITHUB_OUTPUT` it is printed as
    /// `name=value` on stdout (values with line breaks as JSON strings), so
    /// scripts can read it.
    pub fn set_output(
        &self,
        console: &Console,
        name: &str,
        value: &str,
    ) -> Result<(), FileCommandError> {
        debug_assert!(
            crate::config::spec::output_spec(name).is_some(),
            "undeclared output {name}"
        );
        // A secret never becomes an output (the runner would refuse it too).
        let value = console.secrets().redact(value);
        if self.pipelines {
            // An output variable a later step or job reads
            // (`$(step.name)`, `dependencies.job.outputs['step.name']`).
            console.vso(&vso::command(
                "task.setvariable",
                &[
                    ("variable", vso::variable_name(name)),
                    ("isoutput", "true".into()),
                ],
                &value,
            ));
            return Ok(());
        }
        match &self.output {
            Some(path) => files::append_key_value("output", path, name, &value),
            None => {
                let shown = if value.contains(['\n', '\r']) {
                    serde_json::Value::String(value).to_string()
                } else {
                    value
                };
                console.data(&format!("{name}={shown}\n"));
                Ok(())
            }
        }
    }

    /// Saves state for the post stage (`STATE_<name>` there).
    pub fn save_state(&self, name: &str, value: &str) -> Result<(), FileCommandError> {
        match &self.state {
            Some(path) => files::append_key_value("state", path, name, value),
            None => Ok(()),
        }
    }

    /// Appends markdown to the summary, if there is one.
    pub fn append_summary(
        &self,
        console: &Console,
        markdown: &str,
    ) -> Result<(), FileCommandError> {
        let Some(path) = &self.summary else {
            return Ok(());
        };
        let dropped = files::append_summary(path, &console.secrets().redact(markdown))?;
        if dropped > 0 {
            tracing::warn!(
                "the job summary reached the runner's 1 MiB limit; {dropped} bytes were left out"
            );
        }
        Ok(())
    }
}

/// The console style for this environment.
pub fn style_for(env: &Env) -> Style {
    if env.in_actions() {
        Style::Action
    } else if env.in_pipelines() {
        Style::Pipelines
    } else {
        Style::Cli
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_names_keep_hyphens() {
        assert_eq!(Env::input_var("github-token"), "INPUT_GITHUB-TOKEN");
        assert_eq!(Env::input_var("a b"), "INPUT_A_B");
        let env = Env::from_pairs([
            ("INPUT_GITHUB-TOKEN".into(), "  t  ".into()),
            ("INPUT_EMPTY".into(), " ".into()),
        ]);
        assert_eq!(env.input("github-token").as_deref(), Some("t"));
        assert_eq!(env.input("empty"), None);
        assert_eq!(env.input_names(), ["empty", "github-token"]);
    }

    #[test]
    fn stage_from_entrypoint_name() {
        let env = Env::default();
        assert_eq!(
            Stage::detect("/usr/local/bin/expedite-post".as_ref(), &env),
            Stage::Post
        );
        assert_eq!(
            Stage::detect("/usr/local/bin/expedite".as_ref(), &env),
            Stage::Main
        );
        let env = Env::from_pairs([("EXPEDITE_STAGE".into(), "post".into())]);
        assert_eq!(Stage::detect("expedite".as_ref(), &env), Stage::Post);
    }
}
