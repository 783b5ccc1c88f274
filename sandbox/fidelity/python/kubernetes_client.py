"""The official Python Kubernetes client (PyPI `kubernetes`) against the
sandbox's emulated API server, with only the kubeconfig the sandbox writes
(KUBECONFIG). Run by sandbox/tests/kubernetes_python.rs, which checks what
this prints (one JSON object) against what the sandbox holds.

Every wait is bounded; any unexpected answer raises, and the exit code is 1.
"""
import json
import sys
import time

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

NS = "shop"
out = {}


def until(what, check, seconds=20.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


def status_of(call):
    try:
        call()
    except ApiException as e:
        return e.status, json.loads(e.body or "{}").get("reason")
    return 200, None


config.load_kube_config()
core, apps = client.CoreV1Api(), client.AppsV1Api()
coordination, custom = client.CoordinationV1Api(), client.CustomObjectsApi()

out["server"] = client.VersionApi().get_code().git_version

core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS)))
labels = {"app": "web", "version": "blue"}
deployment = client.V1Deployment(
    metadata=client.V1ObjectMeta(name="web"),
    spec=client.V1DeploymentSpec(
        replicas=2,
        selector=client.V1LabelSelector(match_labels={"app": "web"}),
        template=client.V1PodTemplateSpec(
            metadata=client.V1ObjectMeta(labels=labels),
            spec=client.V1PodSpec(containers=[client.V1Container(name="web", image="shop:1")]),
        ),
    ),
)
apps.create_namespaced_deployment(NS, deployment)
core.create_namespaced_service(
    NS,
    client.V1Service(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1ServiceSpec(selector=labels, ports=[client.V1ServicePort(port=80, target_port=8080)]),
    ),
)


def ready(n):
    def check():
        s = apps.read_namespaced_deployment_status("web", NS).status
        return s.ready_replicas == n and s.updated_replicas == n and s.replicas == n
    return check


until("2 ready replicas", ready(2))

# A new image through a strategic merge patch (the client's default for a dict).
apps.patch_namespaced_deployment(
    "web", NS, {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "shop:2"}]}}}}
)
until("the new image rolled out", ready(2))
d = apps.read_namespaced_deployment("web", NS)
out["image"] = d.spec.template.spec.containers[0].image
out["generation"] = d.metadata.generation
out["observed_generation"] = d.status.observed_generation
rs = apps.list_namespaced_replica_set(NS, label_selector="app=web")
out["replicasets"] = sorted(
    (r.spec.template.spec.containers[0].image, r.spec.replicas) for r in rs.items
)

# The blue-green switch: the Service's selector.
core.patch_namespaced_service("web", NS, {"spec": {"selector": {"version": "green"}}})
svc = core.read_namespaced_service("web", NS)
out["selector"] = svc.spec.selector

# Optimistic concurrency: a replace with a stale resourceVersion is 409.
stale = core.read_namespaced_service("web", NS)
core.patch_namespaced_service("web", NS, {"metadata": {"labels": {"tier": "front"}}})
out["stale_replace"] = status_of(lambda: core.replace_namespaced_service("web", NS, stale))

# A Lease as a lock: created once, then moved by compare-and-set only.
lease = client.V1Lease(
    metadata=client.V1ObjectMeta(name="expedite-web"),
    spec=client.V1LeaseSpec(holder_identity="run-1", lease_duration_seconds=60),
)
coordination.create_namespaced_lease(NS, lease)
out["lease_again"] = status_of(lambda: coordination.create_namespaced_lease(NS, lease))
held = coordination.read_namespaced_lease("expedite-web", NS)
held.spec.holder_identity = "run-2"
coordination.replace_namespaced_lease("expedite-web", NS, held)
held.spec.holder_identity = "run-3"  # still carries the old resourceVersion
out["lease_stale_take"] = status_of(lambda: coordination.replace_namespaced_lease("expedite-web", NS, held))
out["lease_holder"] = coordination.read_namespaced_lease("expedite-web", NS).spec.holder_identity

# A watch: the pods as ADDED events, within its timeout.
w = watch.Watch()
seen = set()
for event in w.stream(core.list_namespaced_pod, NS, label_selector="app=web", timeout_seconds=2):
    if event["type"] == "ADDED":
        seen.add(event["object"].metadata.name)
w.stop()
out["watched_pods"] = len(seen)

# Istio's VirtualService through the custom objects API (a merge patch).
vs = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "VirtualService",
    "metadata": {"name": "web"},
    "spec": {
        "hosts": ["web"],
        "http": [{"route": [
            {"destination": {"host": "web", "subset": "stable"}, "weight": 100},
            {"destination": {"host": "web", "subset": "canary"}, "weight": 0},
        ]}],
    },
}
custom.create_namespaced_custom_object("networking.istio.io", "v1", NS, "virtualservices", vs)
vs["spec"]["http"][0]["route"][0]["weight"] = 90
vs["spec"]["http"][0]["route"][1]["weight"] = 10
custom.patch_namespaced_custom_object(
    "networking.istio.io", "v1", NS, "virtualservices", "web", {"spec": vs["spec"]}
)
got = custom.get_namespaced_custom_object("networking.istio.io", "v1", NS, "virtualservices", "web")
out["weights"] = [r["weight"] for r in got["spec"]["http"][0]["route"]]

out["missing"] = status_of(lambda: apps.read_namespaced_deployment("nope", NS))
print(json.dumps(out))
