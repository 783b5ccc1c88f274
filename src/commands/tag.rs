//! `tag`: the hotfix's annotated release tag, created through the REST API
//! (`POST git/tags`, then `POST git/refs`) and never moved: the same tag at
//! the same commit is `already-exists` (a re-run), at another commit an
//! error.

use super::{CommandError, Ctx, Report};
use crate::config::github::TagConfig;
use crate::github::{Api, GithubError, auth};
use crate::report::md_cell;

/// Why the tag could not be created.
#[derive(Debug, thiserror::Error)]
pub enum TagError {
    /// Signing in failed.
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
    /// A REST call failed.
    #[error(transparent)]
    Api(#[from] GithubError),
    /// The commit to tag does not exist.
    #[error("{0} is not a commit or branch of {1}; set `ref` to the hotfix's head")]
    NoCommit(String, String),
    /// The tag exists elsewhere: release tags are never moved.
    #[error(
        "the tag {tag} already exists at {existing}, not at {wanted}; a release tag is never moved — release the fix as a new version"
    )]
    Elsewhere {
        /// The tag.
        tag: String,
        /// Where it points.
        existing: String,
        /// Where it was asked to point.
        wanted: String,
    },
    /// The HTTP client could not be built.
    #[error("{0}")]
    Client(String),
}

impl From<TagError> for CommandError {
    fn from(e: TagError) -> Self {
        CommandError::Failed(e.to_string())
    }
}

/// The commit a release tag points at, if the tag exists.
async fn existing(api: &Api, name: &str) -> Result<Option<String>, TagError> {
    match api.get_ref(&format!("tags/{name}")).await? {
        Some(r) => Ok(Some(api.peel(&r).await?)),
        None => Ok(None),
    }
}

/// Runs `tag`.
pub async fn run(ctx: &Ctx, config: &TagConfig) -> Result<Report, CommandError> {
    Ok(tag(ctx, config).await?)
}

async fn tag(ctx: &Ctx, config: &TagConfig) -> Result<Report, TagError> {
    let http =
        crate::http::client(&config.github.http).map_err(|e| TagError::Client(e.to_string()))?;
    let token = auth::token(&http, &config.github, &ctx.console, &ctx.cancel).await?;
    let api = Api::new(http, &config.github, token, ctx.cancel.clone());
    let commit = api
        .commit(&config.git_ref)
        .await?
        .ok_or_else(|| TagError::NoCommit(config.git_ref.clone(), api.repo.clone()))?
        .sha;
    let name = format!("{}{}", config.tag_prefix, config.version);
    let result = match existing(&api, &name).await? {
        Some(at) if at == commit => "already-exists",
        Some(at) => {
            return Err(TagError::Elsewhere {
                tag: name,
                existing: at,
                wanted: commit,
            });
        }
        None => {
            let runner = ctx.env.runner();
            let run = runner.run_url().unwrap_or_else(|| {
                format!("by {} on a terminal, for {}", runner.actor(), api.repo)
            });
            let message = format!(
                "Release {} (hotfix)\n\nTagged by expedite ({run}).\n",
                config.version
            );
            let obj = api.create_tag_object(&name, &message, &commit).await?;
            match api.create_ref(&format!("refs/tags/{name}"), &obj.sha).await {
                Ok(_) => "created",
                // Another run tagged first: fine only if at the same commit.
                Err(e) if e.status() == Some(422) && e.mentions("already exists") => {
                    match existing(&api, &name).await? {
                        Some(at) if at == commit => "already-exists",
                        Some(at) => {
                            return Err(TagError::Elsewhere {
                                tag: name,
                                existing: at,
                                wanted: commit,
                            });
                        }
                        None => return Err(e.into()),
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    ctx.console.info(&format!("{name}: {result} at {commit}"));
    Ok(Report {
        success: true,
        outputs: vec![
            ("result", result.to_string()),
            ("tag", name.clone()),
            ("commit", commit.clone()),
        ],
        summary: format!(
            "## Release tag {}: {result}\n\nAt commit {}.\n",
            md_cell(&name),
            md_cell(&commit)
        ),
        ..Report::default()
    })
}
