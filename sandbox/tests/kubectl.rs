//! kubectl, a client nobody here wrote, against the sandbox's emulated
//! Kubernetes API server, with only the kubeconfig the sandbox writes
//! (`KUBECONFIG` from `Settings::client_env`): discovery, `apply
//! --validate=false`, `rollout status`, `set image` (a strategic merge
//! patch), `rollout undo` (ReplicaSet revisions), `scale` (the scale
//! subresource), `patch` on a Service's selector, `replace` with a stale
//! `resourceVersion` (409), a Lease created twice (AlreadyExists), and a
//! build whose pods never become ready (`rollout status` times out and the
//! old pods keep serving).
//!
//! Skips when kubectl is missing, unless `EXPEDITE_REQUIRE_KUBECTL=1` (CI),
//! where that is a failure.
#![cfg(test)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use expedite_sandbox::kube::PodBehaviour;
use serde_json::Value;

fn kubectl_version() -> Option<String> {
    let out = std::process::Command::new("kubectl")
        .args(["version", "--client", "-o", "json"])
        .output()
        .ok()?;
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    v["clientVersion"]["gitVersion"].as_str().map(str::to_owned)
}

/// Runs kubectl with the sandbox's kubeconfig and nothing else from this
/// environment: (exit code, stdout, stderr).
fn kubectl(env: &Env, home: &Path, args: &[&str]) -> (i32, String, String) {
    let s = env.sb.settings();
    // The kubeconfig is the one `expedite sandbox` prints for other clients.
    assert!(
        s.client_env()
            .contains(&("KUBECONFIG", s.kubeconfig_path.display().to_string()))
    );
    let out = std::process::Command::new("kubectl")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("KUBECONFIG", &s.kubeconfig_path)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(env: &Env, home: &Path, args: &[&str]) -> String {
    let (code, out, err) = kubectl(env, home, args);
    assert_eq!(code, 0, "kubectl {args:?}:\n{out}\n{err}");
    out
}

fn json_of(env: &Env, home: &Path, args: &[&str]) -> Value {
    let out = ok(env, home, args);
    serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("kubectl {args:?}: not JSON ({e}):\n{out}"))
}

const MANIFEST: &str = r#"apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: 2
  progressDeadlineSeconds: 600
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
        version: blue
    spec:
      containers:
      - name: web
        image: shop:1
        ports:
        - containerPort: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
spec:
  selector:
    app: web
    version: blue
  ports:
  - port: 80
    targetPort: 8080
"#;

fn image_of(d: &Value) -> String {
    d["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_applies_rolls_out_undoes_scales_and_patches() {
    let Some(version) = kubectl_version() else {
        assert!(
            std::env::var("EXPEDITE_REQUIRE_KUBECTL").as_deref() != Ok("1"),
            "EXPEDITE_REQUIRE_KUBECTL=1 but kubectl is not installed (apt-get install kubernetes-client)"
        );
        eprintln!("skipped: no kubectl");
        return;
    };
    eprintln!("kubectl {version}");
    let env = start().await;
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let env = std::sync::Arc::new(env);
    let run = {
        let env = env.clone();
        let h = h.to_owned();
        move || {
            let env = &*env;
            let h = h.as_path();
            // Discovery and the server's version.
            let v = json_of(env, h, &["version", "-o", "json"]);
            assert!(
                v["serverVersion"]["gitVersion"]
                    .as_str()
                    .is_some_and(|g| g.contains("sandbox")),
                "{v}"
            );
            let resources = ok(env, h, &["api-resources", "-o", "name"]);
            for r in [
                "deployments.apps",
                "leases.coordination.k8s.io",
                "virtualservices.networking.istio.io",
            ] {
                assert!(
                    resources.lines().any(|l| l == r),
                    "{r} missing:\n{resources}"
                );
            }

            // Apply, and wait as an operator would.
            let file = h.join("shop.yaml");
            std::fs::write(&file, MANIFEST).unwrap();
            let out = ok(
                env,
                h,
                &["apply", "--validate=false", "-f", file.to_str().unwrap()],
            );
            assert!(out.contains("deployment.apps/web created"), "{out}");
            let out = ok(
                env,
                h,
                &[
                    "-n",
                    "shop",
                    "rollout",
                    "status",
                    "deployment/web",
                    "--timeout=30s",
                ],
            );
            assert!(out.contains("successfully rolled out"), "{out}");
            let d = json_of(
                env,
                h,
                &["-n", "shop", "get", "deployment", "web", "-o", "json"],
            );
            assert_eq!(d["status"]["readyReplicas"], 2, "{d}");
            assert_eq!(
                d["status"]["observedGeneration"],
                d["metadata"]["generation"]
            );
            let pods = json_of(
                env,
                h,
                &["-n", "shop", "get", "pods", "-l", "app=web", "-o", "json"],
            );
            assert_eq!(pods["items"].as_array().map(Vec::len), Some(2), "{pods}");
            // Applying the same file again changes nothing.
            let out = ok(
                env,
                h,
                &["apply", "--validate=false", "-f", file.to_str().unwrap()],
            );
            assert!(out.contains("deployment.apps/web unchanged"), "{out}");

            // A new image: a strategic merge patch, a second ReplicaSet.
            ok(
                env,
                h,
                &["-n", "shop", "set", "image", "deployment/web", "web=shop:2"],
            );
            ok(
                env,
                h,
                &[
                    "-n",
                    "shop",
                    "rollout",
                    "status",
                    "deployment/web",
                    "--timeout=30s",
                ],
            );
            let d = json_of(
                env,
                h,
                &["-n", "shop", "get", "deployment", "web", "-o", "json"],
            );
            assert_eq!(image_of(&d), "shop:2");
            assert_eq!(d["metadata"]["generation"], 2);
            let rs = json_of(env, h, &["-n", "shop", "get", "replicasets", "-o", "json"]);
            let mut revisions: Vec<(String, i64)> = rs["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    (
                        image_of(r),
                        r["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                            .as_str()
                            .unwrap_or("0")
                            .parse()
                            .unwrap_or(0),
                    )
                })
                .collect();
            revisions.sort_by_key(|r| r.1);
            assert_eq!(
                revisions,
                [("shop:1".to_owned(), 1), ("shop:2".to_owned(), 2)]
            );

            // rollout undo: back to the previous ReplicaSet's template.
            let out = ok(env, h, &["-n", "shop", "rollout", "undo", "deployment/web"]);
            assert!(out.contains("rolled back"), "{out}");
            ok(
                env,
                h,
                &[
                    "-n",
                    "shop",
                    "rollout",
                    "status",
                    "deployment/web",
                    "--timeout=30s",
                ],
            );
            let d = json_of(
                env,
                h,
                &["-n", "shop", "get", "deployment", "web", "-o", "json"],
            );
            assert_eq!(image_of(&d), "shop:1");
            assert_eq!(
                d["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "3",
                "{d}"
            );

            // scale: the scale subresource.
            ok(
                env,
                h,
                &["-n", "shop", "scale", "deployment/web", "--replicas=3"],
            );
            ok(
                env,
                h,
                &[
                    "-n",
                    "shop",
                    "rollout",
                    "status",
                    "deployment/web",
                    "--timeout=30s",
                ],
            );
            let pods = json_of(
                env,
                h,
                &[
                    "-n",
                    "shop",
                    "get",
                    "pods",
                    "-l",
                    "app=web,version=blue",
                    "-o",
                    "json",
                ],
            );
            assert_eq!(pods["items"].as_array().map(Vec::len), Some(3), "{pods}");

            // The Service's selector, patched as a blue-green switch is.
            ok(
                env,
                h,
                &[
                    "-n",
                    "shop",
                    "patch",
                    "service",
                    "web",
                    "-p",
                    r#"{"spec":{"selector":{"version":"green"}}}"#,
                ],
            );
            let svc = json_of(
                env,
                h,
                &["-n", "shop", "get", "service", "web", "-o", "json"],
            );
            assert_eq!(svc["spec"]["selector"]["version"], "green");
            assert_eq!(svc["spec"]["selector"]["app"], "web");

            // A stale resourceVersion is a conflict, as on a real cluster.
            let stale = ok(
                env,
                h,
                &["-n", "shop", "get", "service", "web", "-o", "json"],
            );
            ok(
                env,
                h,
                &["-n", "shop", "label", "service", "web", "tier=front"],
            );
            let stale_file = h.join("stale.json");
            std::fs::write(&stale_file, stale).unwrap();
            let (code, _, err) = kubectl(
                env,
                h,
                &[
                    "replace",
                    "--validate=false",
                    "-f",
                    stale_file.to_str().unwrap(),
                ],
            );
            assert_ne!(code, 0);
            assert!(err.contains("the object has been modified"), "{err}");

            // A Lease: created once; the second create is AlreadyExists.
            let lease = h.join("lease.yaml");
            std::fs::write(
                &lease,
                "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata:\n  name: expedite-web\n  namespace: shop\nspec:\n  holderIdentity: run-1\n  leaseDurationSeconds: 60\n",
            )
            .unwrap();
            ok(
                env,
                h,
                &["create", "--validate=false", "-f", lease.to_str().unwrap()],
            );
            let (code, _, err) = kubectl(
                env,
                h,
                &["create", "--validate=false", "-f", lease.to_str().unwrap()],
            );
            assert_ne!(code, 0);
            assert!(
                err.contains("AlreadyExists") || err.contains("already exists"),
                "{err}"
            );

            // Pods that never become ready: no rollout, the old pods stay.
            env.sb.kube_set_pod_behaviour(
                "shop:bad",
                PodBehaviour {
                    ready_after: Duration::ZERO,
                    never_ready: true,
                },
            );
            ok(
                env,
                h,
                &[
                    "-n",
                    "shop",
                    "set",
                    "image",
                    "deployment/web",
                    "web=shop:bad",
                ],
            );
            let (code, out, err) = kubectl(
                env,
                h,
                &[
                    "-n",
                    "shop",
                    "rollout",
                    "status",
                    "deployment/web",
                    "--timeout=3s",
                ],
            );
            assert_ne!(code, 0, "{out}{err}");
            let d = json_of(
                env,
                h,
                &["-n", "shop", "get", "deployment", "web", "-o", "json"],
            );
            assert_eq!(
                d["status"]["readyReplicas"], 3,
                "the old pods keep serving: {d}"
            );
            assert_eq!(d["status"]["updatedReplicas"], 3, "{d}");
            let bad = json_of(env, h, &["-n", "shop", "get", "pods", "-o", "json"]);
            let crashing = bad["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| {
                    p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"]
                        == "CrashLoopBackOff"
                })
                .count();
            assert_eq!(crashing, 3, "{bad}");

            // Errors a person sees: one line, the API server's words.
            let (code, _, err) = kubectl(env, h, &["-n", "shop", "get", "deployment", "nope"]);
            assert_ne!(code, 0);
            assert!(err.contains("\"nope\" not found"), "{err}");
        }
    };
    tokio::task::spawn_blocking(run).await.unwrap();
    // Nothing else was asked of the sandbox than what the server's own
    // object says.
    let d = env.sb.kube_object("deployments", "shop", "web").unwrap();
    assert_eq!(image_of(&d), "shop:bad");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_server_refuses_what_a_real_one_refuses() {
    let env = start().await;
    let s = env.sb.settings();
    let client = client_for(&env.sb);
    let token = std::fs::read_to_string(&s.kubeconfig_path)
        .unwrap()
        .lines()
        .find_map(|l| l.trim().strip_prefix("token: ").map(str::to_owned))
        .unwrap();
    let base = "https://kubernetes.test";
    // No token: 401, as a Status.
    let r = client
        .get(format!("{base}/api/v1/namespaces"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["kind"], "Status");
    let auth = format!("Bearer {token}");
    let send = |method: reqwest::Method, path: &str, ct: &str, body: &str| {
        client
            .request(method, format!("{base}{path}"))
            .header("authorization", &auth)
            .header("content-type", ct)
            .body(body.to_owned())
            .send()
    };
    // A Deployment whose selector does not match its template: 422.
    let r = send(
        reqwest::Method::POST,
        "/apis/apps/v1/namespaces/default/deployments",
        "application/json",
        r#"{"metadata":{"name":"x"},"spec":{"selector":{"matchLabels":{"app":"x"}},"template":{"metadata":{"labels":{"app":"y"}},"spec":{"containers":[{"name":"c","image":"i"}]}}}}"#,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 422);
    // A namespace that does not exist: 404.
    let r = send(
        reqwest::Method::POST,
        "/api/v1/namespaces/missing/services",
        "application/json",
        r#"{"metadata":{"name":"x"},"spec":{}}"#,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 404);
    // Server-side apply is not emulated, and says so.
    let r = send(
        reqwest::Method::PATCH,
        "/api/v1/namespaces/default",
        "application/apply-patch+yaml",
        "{}",
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 415);
    // A watch from an old version returns what changed since.
    let r = send(
        reqwest::Method::POST,
        "/api/v1/namespaces/default/services",
        "application/json",
        r#"{"metadata":{"name":"svc","labels":{"app":"a"}},"spec":{}}"#,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    let rv: u64 = created["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let r = send(
        reqwest::Method::PATCH,
        "/api/v1/namespaces/default/services/svc",
        "application/merge-patch+json",
        r#"{"metadata":{"labels":{"app":"b"}}}"#,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let r = send(
        reqwest::Method::GET,
        &format!("/api/v1/namespaces/default/services?watch=true&resourceVersion={rv}"),
        "application/json",
        "",
    )
    .await
    .unwrap();
    let text = r.text().await.unwrap();
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 1, "{text}");
    assert_eq!(events[0]["type"], "MODIFIED");
    assert_eq!(events[0]["object"]["metadata"]["labels"]["app"], "b");
    // Malformed objects and patches are refused, and the server goes on.
    for (method, path, ct, body, code) in [
        (
            reqwest::Method::POST,
            "/api/v1/namespaces/default/services",
            "application/json",
            r#"{"metadata":"svc2"}"#,
            400,
        ),
        (
            reqwest::Method::POST,
            "/api/v1/namespaces/default/services",
            "application/json",
            r#"{"metadata":{"name":"svc2","labels":{"app":7}}}"#,
            400,
        ),
        (
            reqwest::Method::POST,
            "/apis/apps/v1/namespaces/default/deployments",
            "application/json",
            r#"{"metadata":{"name":"d"},"spec":{"selector":{"matchLabels":{"a":"b"}},"template":"x"}}"#,
            400,
        ),
        (
            reqwest::Method::PATCH,
            "/api/v1/namespaces/default/services/svc",
            "application/json-patch+json",
            r#"[{"op":"add","path":"","value":5}]"#,
            422,
        ),
        (
            reqwest::Method::PATCH,
            "/api/v1/namespaces/default/services/svc",
            "application/merge-patch+json",
            r#"{"spec":"x"}"#,
            400,
        ),
        (
            reqwest::Method::PUT,
            "/api/v1/namespaces/default/services/svc",
            "application/json",
            r#"[1,2]"#,
            400,
        ),
    ] {
        let r = send(method.clone(), path, ct, body).await.unwrap();
        assert_eq!(r.status(), code, "{method} {path} {body}");
    }
    let r = send(reqwest::Method::GET, "/version", "application/json", "")
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Label selectors on lists.
    let r = send(
        reqwest::Method::GET,
        "/api/v1/namespaces/default/services?labelSelector=app%20in%20(a,c)",
        "application/json",
        "",
    )
    .await
    .unwrap();
    let list: Value = r.json().await.unwrap();
    assert_eq!(list["items"].as_array().map(Vec::len), Some(0), "{list}");
}
