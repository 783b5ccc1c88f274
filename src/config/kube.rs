//! The Kubernetes connection of a deploy or a rollback: where the
//! kubeconfig comes from (the `kubeconfig` input, then what `kubectl`
//! would use), checked before anything is sent — a missing file, a context
//! the kubeconfig lacks or a refused setting is an input error, never a
//! half-made change.

use super::Resolver;
use crate::action::Env;
use crate::kube::{Kube, Source};

/// The `kubeconfig` input (or `KUBECONFIG`, the same input's environment
/// variable: its first file when it lists several — expedite does not merge
/// kubeconfigs), else the pod's service account when run in a cluster,
/// else `~/.kube/config`.
pub(super) fn kube_source(r: &mut Resolver<'_>, env: &Env) -> Option<Source> {
    if let Some(v) = r.raw.get("kubeconfig").filter(|v| !v.trim().is_empty()) {
        // Content has lines; a path (or a list of paths) has none.
        if v.contains('\n') {
            return Some(Source::Content(v.to_string()));
        }
        return Some(Source::Path(first_path(v).into()));
    }
    // The action reads `KUBECONFIG` itself (the CLI takes it as the
    // input's variable).
    if let Some(v) = env.get("KUBECONFIG").filter(|v| !v.trim().is_empty()) {
        return Some(Source::Path(first_path(v).into()));
    }
    if env.get("KUBERNETES_SERVICE_HOST").is_some() {
        return Some(Source::InCluster);
    }
    match env.get("HOME").or_else(|| env.get("USERPROFILE")) {
        Some(home) => Some(Source::Path(
            std::path::Path::new(home).join(".kube").join("config"),
        )),
        None => {
            r.error(
                "kubeconfig",
                "is not given, and there is no KUBECONFIG, service account or home directory to find one in",
                "the kubeconfig's path or content",
            );
            None
        }
    }
}

/// The first file of a `KUBECONFIG`-style list (`:`-separated; `;` on
/// Windows).
fn first_path(list: &str) -> &str {
    let sep = if cfg!(windows) { ';' } else { ':' };
    list.split(sep).find(|p| !p.is_empty()).unwrap_or(list)
}

/// Connects as `source` says with `context`, sending nothing: an error
/// goes to the input that fixes it.
pub(super) fn check_connection(r: &mut Resolver<'_>, source: &Source, context: Option<&str>) {
    if let Err(e) = Kube::connect(source, context) {
        let text = e.to_string();
        let input = if context.is_some() && text.contains("context") {
            "kube-context"
        } else {
            "kubeconfig"
        };
        r.error(
            input,
            text,
            "a kubeconfig kubectl can use with this context (kubectl config get-contexts)",
        );
    }
}
