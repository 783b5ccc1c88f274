//! `start`: open the hotfix branch from the release tag production serves
//! — never from `main`, which holds everything not yet released.
//!
//! The version is the `version` input, else the highest `release/*` tag.
//! The branch `hotfix/<incident>-<slug>` is created through the REST API at
//! the tag's commit. A missing tag is an error listing the nearest tags; a
//! branch that already starts from the tag (a re-run, or work already
//! pushed on it) is reported, never moved.

use super::{CommandError, Ctx, Report};
use crate::config::github::StartConfig;
use crate::github::{Api, GithubError, auth};
use crate::report::md_cell;

/// Why the branch could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Signing in failed.
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
    /// A REST call failed.
    #[error(transparent)]
    Api(#[from] GithubError),
    /// The release tag does not exist.
    #[error("the release tag {tag} does not exist in {repo}; {nearest}")]
    NoTag {
        /// The tag looked for.
        tag: String,
        /// The repository.
        repo: String,
        /// The nearest tags, or what to do.
        nearest: String,
    },
    /// No release tag at all, and no version given.
    #[error(
        "{repo} has no `{prefix}<version>` tag; give `version` (the version production serves) or check tag-prefix"
    )]
    NoReleases {
        /// The repository.
        repo: String,
        /// The prefix.
        prefix: String,
    },
    /// The branch exists and does not start from the tag.
    #[error(
        "the branch {branch} already exists and does not contain {tag}; delete it or choose another slug"
    )]
    BranchElsewhere {
        /// The branch.
        branch: String,
        /// The tag.
        tag: String,
    },
    /// The HTTP client could not be built.
    #[error("{0}")]
    Client(String),
}

impl From<StartError> for CommandError {
    fn from(e: StartError) -> Self {
        CommandError::Failed(e.to_string())
    }
}

/// A release tag and its version.
pub(crate) fn release_versions(
    refs: &[crate::github::GitRef],
    prefix: &str,
) -> Vec<(semver::Version, String)> {
    refs.iter()
        .filter_map(|r| {
            let name = r.name.strip_prefix("refs/tags/")?;
            let v = name.strip_prefix(prefix)?.trim_start_matches('v');
            semver::Version::parse(v)
                .ok()
                .map(|v| (v, name.to_string()))
        })
        .collect()
}

/// Up to five tags nearest `wanted` by semver distance (major, then minor,
/// then patch).
pub(crate) fn nearest(wanted: &str, tags: &[(semver::Version, String)]) -> Vec<String> {
    let Ok(w) = semver::Version::parse(wanted.trim_start_matches('v')) else {
        let mut all: Vec<_> = tags.iter().map(|(_, n)| n.clone()).collect();
        all.sort();
        all.truncate(5);
        return all;
    };
    let mut scored: Vec<_> = tags
        .iter()
        .map(|(v, n)| {
            (
                (
                    v.major.abs_diff(w.major),
                    v.minor.abs_diff(w.minor),
                    v.patch.abs_diff(w.patch),
                ),
                n.clone(),
            )
        })
        .collect();
    scored.sort();
    scored.into_iter().take(5).map(|(_, n)| n).collect()
}

/// Runs `start`.
pub async fn run(ctx: &Ctx, config: &StartConfig) -> Result<Report, CommandError> {
    let http =
        crate::http::client(&config.github.http).map_err(|e| StartError::Client(e.to_string()))?;
    let token = auth::token(&http, &config.github, &ctx.console, &ctx.cancel)
        .await
        .map_err(StartError::from)?;
    let api = Api::new(http, &config.github, token, ctx.cancel.clone());
    let prefix = &config.tag_prefix;
    let tags = release_versions(
        &api.matching_refs(&format!("tags/{prefix}"))
            .await
            .map_err(StartError::from)?,
        prefix,
    );
    let (version, base_tag) = match &config.version {
        Some(v) => (v.clone(), format!("{prefix}{v}")),
        None => {
            let (v, name) = tags.iter().max_by(|a, b| a.0.cmp(&b.0)).cloned().ok_or(
                StartError::NoReleases {
                    repo: api.repo.clone(),
                    prefix: prefix.clone(),
                },
            )?;
            ctx.console.info(&format!(
                "no version given; the highest release tag is {name}"
            ));
            (v.to_string(), name)
        }
    };
    let Some(tag_ref) = api
        .get_ref(&format!("tags/{base_tag}"))
        .await
        .map_err(StartError::from)?
    else {
        let near = nearest(&version, &tags);
        return Err(StartError::NoTag {
            tag: base_tag,
            repo: api.repo.clone(),
            nearest: if near.is_empty() {
                format!("there are no `{prefix}<version>` tags at all")
            } else {
                format!("the nearest are: {}", near.join(", "))
            },
        }
        .into());
    };
    let commit = api.peel(&tag_ref).await.map_err(StartError::from)?;
    let branch = match &config.slug {
        Some(s) => format!("hotfix/{}-{s}", config.incident),
        None => format!("hotfix/{}", config.incident),
    };
    let result = match api
        .create_ref(&format!("refs/heads/{branch}"), &commit)
        .await
    {
        Ok(_) => {
            ctx.console
                .info(&format!("created {branch} from {base_tag} ({commit})"));
            "created"
        }
        Err(e) if e.status() == Some(422) && e.mentions("already exists") => {
            // A re-run, or the branch already carries hotfix commits: fine
            // as long as it grew from this tag.
            let c = api
                .compare(&commit, &branch)
                .await
                .map_err(StartError::from)?;
            if matches!(c.status.as_str(), "ahead" | "identical") {
                ctx.console.info(&format!(
                    "{branch} already exists from {base_tag}; left as it is"
                ));
                "already-exists"
            } else {
                return Err(StartError::BranchElsewhere {
                    branch,
                    tag: base_tag,
                }
                .into());
            }
        }
        Err(e) => return Err(StartError::Api(e).into()),
    };
    let next = semver::Version::parse(version.trim_start_matches('v'))
        .map(|mut v| {
            v.patch += 1;
            v.pre = semver::Prerelease::EMPTY;
            v.build = semver::BuildMetadata::EMPTY;
            v.to_string()
        })
        .unwrap_or_default();
    let summary = format!(
        "## Hotfix branch {}\n\n| branch | {} |\n|---|---|\n| from | {} ({}) |\n| next version | {} |\n",
        result,
        md_cell(&branch),
        md_cell(&base_tag),
        md_cell(&commit.chars().take(12).collect::<String>()),
        if next.is_empty() {
            "(not a semantic version)"
        } else {
            &next
        },
    );
    Ok(Report {
        success: true,
        outputs: vec![
            ("result", result.to_string()),
            ("branch", branch),
            ("base-tag", base_tag),
            ("next-version", next),
        ],
        summary,
        ..Report::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_by_semver_distance() {
        let tags: Vec<_> = ["2.3.9", "2.4.0", "2.4.2", "3.0.0", "1.0.0", "2.5.0"]
            .iter()
            .map(|v| (semver::Version::parse(v).unwrap(), format!("release/{v}")))
            .collect();
        let n = nearest("2.4.1", &tags);
        assert_eq!(n[..2], ["release/2.4.0", "release/2.4.2"]);
        assert_eq!(n.len(), 5);
        assert_eq!(n[2..4], ["release/2.5.0", "release/2.3.9"]);
    }
}
