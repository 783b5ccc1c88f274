//! One service's settings, checked one way whichever place they come from:
//! the inputs of a single-app `deploy` or `rollback`, or an entry of the
//! manifest. Each function takes the text as written and returns the typed
//! value or a [`ValueError`] saying what is wrong and what is accepted; the
//! caller only adds *where* (`--slot`, `input 'slot'`, `service 'web':
//! slot`). So a value refused on the command line is refused, in the same
//! words, in a manifest — `tests/service_spec.rs` feeds one table of bad
//! values through both.

use super::values::{self, ValueError, shown};

/// What no staging place may be called: the live site itself (App
/// Service's production slot; a Static Web Apps environment of that name
/// would read as production to every person on call).
const PRODUCTION: &str = "production";

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

/// A Kubernetes name that must be a DNS-1123 label (a namespace, a
/// Service): lower-case letters, digits and `-`, starting and ending with
/// a letter or digit, at most 63 — so it is sent as written and cannot
/// reshape the API path it is put in.
pub fn dns_label(what: &str, v: &str) -> Result<String, ValueError> {
    let ok = !v.is_empty()
        && v.len() <= 63
        && v.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && v.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && v.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(v.to_string())
    } else {
        Err(ValueError {
            problem: format!("{} is not a Kubernetes {what} name", shown(v)),
            accepted: "lower-case letters, digits and -, starting and ending with a letter or digit (up to 63)".into(),
        })
    }
}

/// A Kubernetes Deployment's name: a DNS-1123 subdomain — lower-case
/// letters, digits, `-` and `.`, starting and ending with a letter or
/// digit, at most 253 — so it is sent as written and cannot reshape the API
/// path it is put in.
pub fn deployment_name(v: &str) -> Result<String, ValueError> {
    let ok = !v.is_empty()
        && v.len() <= 253
        && v.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && v.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && v.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    if ok {
        Ok(v.to_string())
    } else {
        Err(ValueError {
            problem: format!("{} is not a Kubernetes Deployment name", shown(v)),
            accepted:
                "lower-case letters, digits, - and ., starting and ending with a letter or digit"
                    .into(),
        })
    }
}

/// How the name of a service's resource (`app-name`, a manifest's `app`,
/// `rollback`'s `services`) is checked on `platform`: a Deployment's name
/// on Kubernetes, an Azure resource name elsewhere (and while the platform
/// is not known).
pub fn app_name_check(
    platform: Option<&dyn crate::rollout::platforms::Platform>,
) -> fn(&str) -> Result<String, ValueError> {
    if platform.is_some_and(|p| p.needs_kube()) {
        deployment_name
    } else {
        resource_name
    }
}

/// How a Kubernetes service changes.
pub fn strategy(v: &str) -> Result<String, ValueError> {
    match v {
        "blue-green" | "canary" => Ok(v.to_string()),
        other => Err(ValueError {
            problem: format!("{} is not a strategy", shown(other)),
            accepted: "blue-green (switch the Service's version selector) or canary (Istio VirtualService weights)".into(),
        }),
    }
}

/// A kubeconfig context's name: printable, no spaces at either end.
pub fn kube_context(v: &str) -> Result<String, ValueError> {
    if !v.is_empty() && v.len() <= 253 && v.trim() == v && !v.contains(|c: char| c.is_control()) {
        Ok(v.to_string())
    } else {
        Err(ValueError {
            problem: format!("{} is not a context name", shown(v)),
            accepted: "the name of a context in the kubeconfig (kubectl config get-contexts)"
                .into(),
        })
    }
}

/// Where users reach a service: an `https://` URL with a host, and no
/// credentials, query or fragment (probes add the paths).
pub fn production_url(v: &str) -> Result<String, ValueError> {
    let accepted =
        "an https:// address users reach the service at, e.g. https://payments.example.com";
    let bad = |problem: String| ValueError {
        problem,
        accepted: accepted.into(),
    };
    let url = reqwest::Url::parse(v).map_err(|_| bad(format!("{} is not a URL", shown(v))))?;
    if url.scheme() != "https" || url.host_str().is_none_or(str::is_empty) {
        return Err(bad(format!("{} is not an https:// URL", shown(v))));
    }
    if !url.username().is_empty()
        || url.password().is_some()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(bad(format!(
            "{} carries a user, a query or a fragment",
            shown(&redacted_url(v))
        )));
    }
    Ok(v.trim_end_matches('/').to_string())
}

/// A zip the platform downloads: an absolute `https://` URL with a host and
/// no user name or password in it (a SAS token goes in the query, which
/// expedite never prints), naming `${version}` where the version goes.
pub fn package_url(v: &str) -> Result<String, ValueError> {
    let accepted = "an https:// URL of the build's zip that Azure can read (e.g. a blob URL with a SAS token); ${version} is replaced by the version";
    let probe = v.replace("${version}", "0.0.0");
    let bad = |problem: String| ValueError {
        problem,
        accepted: accepted.into(),
    };
    let url = reqwest::Url::parse(&probe)
        .map_err(|_| bad(format!("{} is not a URL", shown(&redacted_url(v)))))?;
    if url.scheme() != "https" || url.host_str().is_none_or(str::is_empty) {
        return Err(bad(format!(
            "{} is not an https:// URL",
            shown(&redacted_url(v))
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("carries a user name or password".into()));
    }
    if !v.contains("${version}") {
        // A rollback finds the previous build's zip by its version.
        return Err(bad(format!(
            "{} names no ${{version}}, so the previous build's zip could not be found for a rollback",
            shown(&redacted_url(v))
        )));
    }
    Ok(v.to_string())
}

/// A URL as expedite prints it: without its query (where a SAS token
/// lives) or credentials.
pub fn redacted_url(v: &str) -> String {
    let head = v.split(['?', '#']).next().unwrap_or(v);
    let query = if head.len() < v.len() { "?…" } else { "" };
    match head.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            let slash = if rest.contains('/') { "/" } else { "" };
            format!("{scheme}://{host}{slash}{path}{query}")
        }
        None => format!("{head}{query}"),
    }
}

/// A refusal of one platform setting, where it came from left to the
/// caller (`input 'image'`, `` service 'web': `image` ``).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The setting's key (input name and manifest field).
    pub key: &'static str,
    /// What is wrong.
    pub problem: String,
    /// What is accepted.
    pub accepted: String,
    /// The value is wrong (not: missing, or not a setting of the
    /// platform) — the manifest words the two differently.
    pub bad_value: bool,
}

/// The platform settings a service gave (`given(key)`: the value as
/// written, `None` when not given), checked against what `platform` takes:
/// each value by its validator above, a required one that is missing, and
/// one the platform does not take (refused, never ignored: a `slot` on a
/// container app would otherwise look honoured). Returns the settings by
/// key, defaults filled in, and every refusal (`rollback`: for a
/// rollback, which needs no new build). The inputs and the manifest
/// both call this, so they refuse the same things in the same words.
pub fn platform_settings<'g>(
    platform: &dyn crate::rollout::platforms::Platform,
    rollback: bool,
    given: impl Fn(&str) -> Option<&'g str>,
) -> (std::collections::BTreeMap<String, String>, Vec<Refusal>) {
    use crate::rollout::platforms::{Need, Setting};
    let mut settings = std::collections::BTreeMap::new();
    let mut refusals = Vec::new();
    let takes = platform.takes();
    let its: Vec<&str> = takes.iter().map(|t| t.setting.key()).collect();
    let mut seen = Vec::new();
    for setting in Setting::ALL {
        let key = setting.key();
        if seen.contains(&key) {
            continue;
        }
        let taken = takes.iter().find(|t| t.setting.key() == key);
        let value = given(key);
        let Some(t) = taken else {
            seen.push(key);
            if value.is_some() {
                refusals.push(Refusal {
                    key,
                    problem: format!("is not a setting of platform {}", platform.name()),
                    bad_value: false,
                    accepted: if its.is_empty() {
                        format!("leave it out ({} takes none of these)", platform.name())
                    } else {
                        format!(
                            "leave it out, or another platform (settings of {}: {})",
                            platform.name(),
                            its.join(", ")
                        )
                    },
                });
            }
            continue;
        };
        if t.setting != setting {
            continue;
        }
        seen.push(key);
        let checked = value.map(|v| match setting {
            Setting::Slot => slot(v),
            Setting::Package => Ok(v.to_string()),
            Setting::PackageUrl => package_url(v),
            Setting::Image => image(v),
            Setting::Container => container(v),
            Setting::Namespace => dns_label("namespace", v),
            Setting::Service => dns_label("Service", v),
            Setting::Strategy => strategy(v),
            Setting::KubeContext => kube_context(v),
            Setting::ProductionUrl => production_url(v),
        });
        match (checked, t.need) {
            (Some(Ok(v)), _) => {
                settings.insert(key.to_string(), v);
            }
            (Some(Err(e)), _) => refusals.push(Refusal {
                key,
                problem: e.problem,
                accepted: e.accepted,
                bad_value: true,
            }),
            (None, Need::ForDeploy(_)) if rollback => {}
            (None, Need::Required(example) | Need::ForDeploy(example)) => refusals.push(Refusal {
                key,
                problem: format!("is required by `platform: {}`", platform.name()),
                accepted: example.to_string(),
                bad_value: false,
            }),
            (None, Need::Default(d)) => {
                settings.insert(key.to_string(), d.to_string());
            }
            (None, Need::Optional) => {}
        }
    }
    (settings, refusals)
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
