//! expedite's Kubernetes client against the sandbox's API server, with the
//! kubeconfig the sandbox writes: reads, creates, a merge patch, a
//! compare-and-set that loses (409 → `Conflict`, read again), a missing
//! object (`None`), a wrong token (`Denied`, the token not in the error),
//! and an unknown context (one error naming the contexts there are).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use expedite::cancel::Cancel;
use expedite::kube::{Kube, KubeError, Source};
use expedite_sandbox::{Sandbox, SandboxConfig};
use serde_json::json;

async fn sandbox() -> Sandbox {
    expedite_sandbox::start(SandboxConfig::default())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_reads_writes_and_says_what_to_do_when_refused() {
    let sb = sandbox().await;
    let path = sb.settings().kubeconfig_path.clone();
    let c = Cancel::new();
    let k = Kube::connect(&Source::Path(path.clone()), None).unwrap();
    assert_eq!(k.namespace, "default");
    assert!(
        k.base().starts_with("https://kubernetes.test:"),
        "{}",
        k.base()
    );

    let ns = k
        .get("/api/v1/namespaces/default", &c)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ns["status"]["phase"], "Active");
    assert!(
        k.get("/api/v1/namespaces/nope", &c)
            .await
            .unwrap()
            .is_none()
    );

    let svc = "/api/v1/namespaces/default/services";
    let created = k
        .create(svc, &json!({"metadata": {"name": "web"}, "spec": {"selector": {"app": "web", "version": "blue"}}}), &c)
        .await
        .unwrap();
    let rv = created["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    // Creating it again: AlreadyExists, as a conflict to read and decide on.
    match k
        .create(svc, &json!({"metadata": {"name": "web"}}), &c)
        .await
    {
        Err(KubeError::Conflict { reason, .. }) => assert_eq!(reason, "AlreadyExists"),
        other => panic!("{other:?}"),
    }
    // The blue-green switch as a compare-and-set on what was read.
    let web = format!("{svc}/web");
    let switched = k
        .merge_patch(&web, &json!({"metadata": {"resourceVersion": rv}, "spec": {"selector": {"version": "green"}}}), &c)
        .await
        .unwrap();
    assert_eq!(switched["spec"]["selector"]["version"], "green");
    // The same version again has lost the race: Conflict, nothing changed.
    match k
        .merge_patch(&web, &json!({"metadata": {"resourceVersion": rv}, "spec": {"selector": {"version": "blue"}}}), &c)
        .await
    {
        Err(e @ KubeError::Conflict { .. }) => assert!(e.to_string().contains("modified"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        k.get(&web, &c).await.unwrap().unwrap()["spec"]["selector"]["version"],
        "green"
    );
    let listed = k.list(svc, Some("app notin (x)"), &c).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(k.delete(&web, &c).await.unwrap());
    assert!(!k.delete(&web, &c).await.unwrap());

    // A wrong token: Denied with the server's words, and no token in them.
    let text = std::fs::read_to_string(&path).unwrap();
    let real = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("token: "))
        .unwrap()
        .to_owned();
    let wrong = text.replace(&real, "wrong-token-0123456789");
    let bad = Kube::connect(&Source::Content(wrong), None).unwrap();
    match bad.get("/api/v1/namespaces/default", &c).await {
        Err(e @ KubeError::Denied { status: 401, .. }) => {
            assert!(!e.to_string().contains("wrong-token"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    // An unknown context: the contexts there are.
    let e = Kube::connect(&Source::Path(path), Some("production")).unwrap_err();
    assert!(
        e.to_string()
            .contains("no context 'production' (it has: sandbox)"),
        "{e}"
    );
    sb.shutdown().await;
}
