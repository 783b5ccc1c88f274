//! One service's settings, checked one way whichever place they come from:
//! the inputs of a single-app `deploy` or `rollback`, or an entry of the
//! manifest. Each function takes the text as written and returns the typed
//! value or a [`ValueError`] saying what is wrong and what is accepted; the
//! caller only adds *where* (`--slot`, `input 'slot'`, `service 'web':
//! slot`). So a value refused on the command line is refused, in the same
//! words, in a manifest — `tests/service_spec.rs` feeds one table of bad
//! values through both.

use super::values::{self, ValueError, shown};
use crate::platform::app_service::PRODUCTION;

/// An Azure resource's name (an app, a resource group): 1–90 letters,
/// digits, `- _ . ( )` — the characters every resource type we deploy to
/// accepts, so a name that passes here is sent as written and cannot reshape
/// the URL it is put in.
pub fn resource_name(v: &str) -> Result<String, ValueError> {
    let ok = !v.is_empty()
        && v.len() <= 90
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '(' | ')'));
    if ok {
        Ok(v.to_string())
    } else {
        Err(ValueError {
            problem: format!("{} is not an Azure resource name", shown(v)),
            accepted: "1 to 90 letters, digits, - _ . ( )".into(),
        })
    }
}

/// A staging slot of an App Service app: letters, digits and `-` (what
/// Azure accepts in a slot's name), and never `production`, which is the
/// site itself — an upload "to the production slot" would reach users before
/// any check.
pub fn slot(v: &str) -> Result<String, ValueError> {
    let ok = !v.is_empty()
        && v.len() <= 59
        && !v.eq_ignore_ascii_case(PRODUCTION)
        && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if ok {
        Ok(v.to_string())
    } else {
        Err(ValueError {
            problem: format!("{} is not a deployment slot", shown(v)),
            accepted: "the name of a slot other than production (letters, digits, -), e.g. staging"
                .into(),
        })
    }
}

/// A URL path the service answers on (`health-path`, `version-path`).
pub fn url_path(name: &str, v: &str) -> Result<String, ValueError> {
    if v.starts_with('/')
        && v.len() <= 2048
        && !v.contains(|c: char| c.is_whitespace() || c.is_control())
    {
        Ok(v.to_string())
    } else {
        Err(ValueError {
            problem: format!("{} is not a URL path", shown(v)),
            accepted: format!("a path starting with /, like the default of {name}"),
        })
    }
}

/// The version the service must report.
pub fn version(v: &str) -> Result<String, ValueError> {
    values::parse_version(v)
}

/// Canary steps: increasing whole percentages in 1–99 (`10,50`).
pub fn canary_steps(v: &str) -> Result<Vec<u8>, ValueError> {
    let accepted = "increasing percentages from 1 to 99, comma-separated, e.g. 10,50";
    let mut steps: Vec<u8> = Vec::new();
    for item in values::parse_list(v) {
        let n: u8 = item
            .trim_end_matches('%')
            .trim()
            .parse()
            .ok()
            .filter(|n| (1..=99).contains(n))
            .ok_or_else(|| ValueError {
                problem: format!("{} is not a step", shown(&item)),
                accepted: accepted.into(),
            })?;
        if steps.last().is_some_and(|last| *last >= n) {
            return Err(ValueError {
                problem: format!("{n} does not increase on the step before it"),
                accepted: accepted.into(),
            });
        }
        steps.push(n);
    }
    if steps.is_empty() {
        return Err(ValueError {
            problem: "no step given".into(),
            accepted: accepted.into(),
        });
    }
    Ok(steps)
}

/// A container image reference (`registry/repository:tag`, `@sha256:…`;
/// a manifest's may hold `${version}`).
pub fn image(v: &str) -> Result<String, ValueError> {
    if v.is_empty() || v.len() > 512 || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Err(ValueError {
            problem: format!("{} is not a container image reference", shown(v)),
            accepted: "registry/repository:tag or @sha256:digest".into(),
        })
    } else {
        Ok(v.to_string())
    }
}

/// The container of a container app that gets the new image: what Azure
/// accepts (lower-case letters, digits and `-`, starting with a letter, up
/// to 63).
pub fn container(v: &str) -> Result<String, ValueError> {
    let ok = v.len() <= 63
        && v.starts_with(|c: char| c.is_ascii_lowercase())
        && !v.ends_with('-')
        && v.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(v.to_string())
    } else {
        Err(ValueError {
            problem: format!("{} is not a container name", shown(v)),
            accepted: "lower-case letters, digits and -, starting with a letter (up to 63)".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_is_never_a_staging_slot_in_any_case() {
        for v in ["production", "Production", "PRODUCTION"] {
            assert!(slot(v).is_err(), "{v}");
        }
        assert!(slot("staging").is_ok() && slot("blue-2").is_ok());
        for v in ["", "bad slot!", "a/b", "x".repeat(60).as_str()] {
            assert!(slot(v).is_err(), "{v}");
        }
    }

    #[test]
    fn names_paths_images_and_steps() {
        assert!(resource_name("rg-contoso-prod").is_ok());
        assert!(resource_name("a/b").is_err() && resource_name("").is_err());
        assert!(url_path("health-path", "/health").is_ok());
        assert!(url_path("health-path", "health").is_err());
        assert!(url_path("health-path", "/a b").is_err());
        assert_eq!(canary_steps("10,50").unwrap(), vec![10, 50]);
        assert!(canary_steps("banana").is_err() && canary_steps("50,10").is_err());
        assert!(image("contoso.azurecr.io/p:${version}").is_ok());
        assert!(image("a b").is_err());
        assert!(container("api").is_ok() && container("Api").is_err());
    }
}
