//! The controllers a rollout needs, run to a fixed point after every change
//! and on every read (sandbox time moves pods to Ready):
//!
//! - **Deployment → ReplicaSet**: one ReplicaSet per pod template,
//!   `{deployment}-{hash}` with the `pod-template-hash` label, owned by the
//!   Deployment. The template's ReplicaSet gets `spec.replicas`; the others
//!   are scaled to zero once it is fully ready (a rolling update that never
//!   leaves the Deployment without ready pods). The newest template gets
//!   the next `deployment.kubernetes.io/revision`, an old template coming
//!   back (`rollout undo`) takes a new number, as the real controller does.
//!   Status: `observedGeneration`, `replicas`, `updatedReplicas`,
//!   `readyReplicas`, `availableReplicas`, and the `Available` and
//!   `Progressing` conditions `kubectl rollout status` reads
//!   (`NewReplicaSetAvailable`, or `ProgressDeadlineExceeded` after
//!   `progressDeadlineSeconds`).
//! - **ReplicaSet → Pods**: `{replicaset}-{5 chars}` pods from the template;
//!   a pod is Ready after its image's [`PodBehaviour`] delay, or never
//!   (`CrashLoopBackOff`).

use std::time::Instant;

use serde_json::{Value, json};

use super::Selector;
use super::store::{Cluster, PodBehaviour, kind_index};

const REVISION: &str = "deployment.kubernetes.io/revision";
const HASH: &str = "pod-template-hash";

/// Runs the controllers until nothing changes (bounded: a bug must not
/// hang the server).
pub(crate) fn reconcile(c: &mut Cluster) {
    for _ in 0..8 {
        let before = c.revision();
        deployments(c);
        replicasets(c);
        if c.revision() == before {
            return;
        }
    }
}

/// FNV-1a of the template, as ten lower-case alphanumerics (the real
/// controller's hash is also FNV, encoded differently; only stability
/// matters).
fn template_hash(template: &Value) -> String {
    let mut t = template.clone();
    if let Some(labels) = t["metadata"]["labels"].as_object_mut() {
        labels.remove(HASH);
    }
    let h = fnv(&t.to_string());
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..10)
        .map(|i| ALPHABET[((h >> (i * 6)) % ALPHABET.len() as u64) as usize] as char)
        .collect()
}

/// FNV-1a, 64 bits.
fn fnv(text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn revision_of(rs: &Value) -> u64 {
    rs["metadata"]["annotations"][REVISION]
        .as_str()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn owned_by(obj: &Value, uid: &Value) -> bool {
    obj["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|refs| refs.iter().any(|r| r["uid"] == *uid))
}

fn owner_ref(kind: &str, api_version: &str, owner: &Value) -> Value {
    json!([{
        "apiVersion": api_version, "kind": kind,
        "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
        "controller": true, "blockOwnerDeletion": true,
    }])
}

fn deployments(c: &mut Cluster) {
    let (dk, rk) = (kind_index("deployments"), kind_index("replicasets"));
    for d in c.select(dk, "", &Selector::default()) {
        let ns = d["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let name = d["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let uid = d["metadata"]["uid"].clone();
        let desired = d["spec"]["replicas"].as_i64().unwrap_or(1);
        let hash = template_hash(&d["spec"]["template"]);
        let rs_name = format!("{name}-{hash}");
        let owned: Vec<Value> = c
            .select(rk, &ns, &Selector::default())
            .into_iter()
            .filter(|rs| owned_by(rs, &uid))
            .collect();
        let max_revision = owned.iter().map(revision_of).max().unwrap_or(0);
        let paused = d["spec"]["paused"].as_bool().unwrap_or(false);

        // The template's ReplicaSet, created or brought to the top revision.
        let current = owned
            .iter()
            .find(|rs| rs["metadata"]["name"] == rs_name.as_str())
            .cloned();
        let new_rs = match current {
            None if !paused => {
                let mut template = d["spec"]["template"].clone();
                template["metadata"]["labels"][HASH] = json!(hash);
                let mut labels = template["metadata"]["labels"].clone();
                labels[HASH] = json!(hash);
                let mut selector = d["spec"]["selector"].clone();
                selector["matchLabels"][HASH] = json!(hash);
                let rs = json!({
                    "metadata": {
                        "name": rs_name, "labels": labels,
                        "annotations": {REVISION: (max_revision + 1).to_string(),
                                        "deployment.kubernetes.io/desired-replicas": desired.to_string()},
                        "ownerReferences": owner_ref("Deployment", "apps/v1", &d),
                    },
                    "spec": {"replicas": desired, "selector": selector, "template": template},
                });
                Some(c.insert_new(rk, &ns, rs))
            }
            None => None,
            Some(mut rs) => {
                if !paused {
                    let mut changed = false;
                    if revision_of(&rs) < max_revision {
                        rs["metadata"]["annotations"][REVISION] =
                            json!((max_revision + 1).to_string());
                        changed = true;
                    }
                    if rs["spec"]["replicas"].as_i64() != Some(desired) {
                        rs["spec"]["replicas"] = json!(desired);
                        changed = true;
                    }
                    if changed {
                        rs = c.store(rk, &ns, &rs_name, rs);
                    }
                }
                Some(rs)
            }
        };

        // The others drain once the new one is fully ready.
        let new_ready = new_rs
            .as_ref()
            .map_or(0, |rs| rs["status"]["readyReplicas"].as_i64().unwrap_or(0));
        if !paused && new_ready >= desired {
            for mut old in owned
                .iter()
                .filter(|rs| rs["metadata"]["name"] != rs_name.as_str())
                .cloned()
            {
                if old["spec"]["replicas"].as_i64() != Some(0) {
                    old["spec"]["replicas"] = json!(0);
                    let old_name = old["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    c.store(rk, &ns, &old_name, old);
                }
            }
        }

        // Status, from the ReplicaSets as they are now.
        let all: Vec<Value> = c
            .select(rk, &ns, &Selector::default())
            .into_iter()
            .filter(|rs| owned_by(rs, &uid))
            .collect();
        let sum = |field: &str| -> i64 {
            all.iter()
                .map(|rs| rs["status"][field].as_i64().unwrap_or(0))
                .sum()
        };
        let (replicas, ready) = (sum("replicas"), sum("readyReplicas"));
        let updated = new_rs
            .as_ref()
            .and_then(|rs| c.object(rk, &ns, rs["metadata"]["name"].as_str().unwrap_or_default()))
            .map_or(0, |rs| rs["status"]["replicas"].as_i64().unwrap_or(0));
        let complete = updated == desired && ready == desired && replicas == desired;
        let deadline = d["spec"]["progressDeadlineSeconds"].as_u64().unwrap_or(600);
        let since_change = d["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|x| x["type"] == "Progressing"))
            .and_then(|x| x["lastUpdateTime"].as_str())
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds());
        let generation = d["metadata"]["generation"].as_i64().unwrap_or(1);
        let observed_before = d["status"]["observedGeneration"].as_i64().unwrap_or(0);
        let (progressing, reason, message) = if complete {
            (
                "True",
                "NewReplicaSetAvailable",
                format!("ReplicaSet \"{rs_name}\" has successfully progressed."),
            )
        } else if observed_before == generation
            && since_change.is_some_and(|s| s >= i64::try_from(deadline).unwrap_or(i64::MAX))
        {
            (
                "False",
                "ProgressDeadlineExceeded",
                format!("ReplicaSet \"{rs_name}\" has timed out progressing."),
            )
        } else {
            (
                "True",
                "ReplicaSetUpdated",
                format!("ReplicaSet \"{rs_name}\" is progressing."),
            )
        };
        let old_progressing = d["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|x| x["type"] == "Progressing"))
            .cloned();
        // The time moves only when the reason does (or the spec changed).
        let update_time = match &old_progressing {
            Some(old) if old["reason"] == reason && observed_before == generation => {
                old["lastUpdateTime"].clone()
            }
            _ => json!(crate::respond::utc_now_rfc3339()),
        };
        let available = if ready >= desired { "True" } else { "False" };
        let mut status = json!({
            "observedGeneration": generation,
            "replicas": replicas,
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "conditions": [
                {"type": "Available", "status": available,
                 "reason": if available == "True" { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" },
                 "message": "Deployment has minimum availability."},
                {"type": "Progressing", "status": progressing, "reason": reason, "message": message,
                 "lastUpdateTime": update_time},
            ],
        });
        if replicas > ready {
            status["unavailableReplicas"] = json!(replicas - ready);
        }
        // Keep the old condition objects' other times stable, so an
        // unchanged status is not a change.
        let mut nd = d.clone();
        nd["status"] = status;
        if let Some(rs) = &new_rs {
            let rev = revision_of(
                c.object(rk, &ns, rs["metadata"]["name"].as_str().unwrap_or_default())
                    .unwrap_or(rs),
            );
            nd["metadata"]["annotations"][REVISION] = json!(rev.to_string());
        }
        if nd != d {
            c.store(dk, &ns, &name, nd);
        }
    }
}

fn replicasets(c: &mut Cluster) {
    let (rk, pk) = (kind_index("replicasets"), kind_index("pods"));
    let now = Instant::now();
    for rs in c.select(rk, "", &Selector::default()) {
        let ns = rs["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let name = rs["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let uid = rs["metadata"]["uid"].clone();
        let desired = usize::try_from(rs["spec"]["replicas"].as_i64().unwrap_or(1)).unwrap_or(0);
        let mut pods: Vec<Value> = c
            .select(pk, &ns, &Selector::default())
            .into_iter()
            .filter(|p| owned_by(p, &uid))
            .collect();
        while pods.len() < desired {
            let template = &rs["spec"]["template"];
            let pod = json!({
                "metadata": {
                    "name": format!("{name}-{}", crate::random_token(5).to_ascii_lowercase()),
                    "labels": template["metadata"]["labels"],
                    "ownerReferences": owner_ref("ReplicaSet", "apps/v1", &rs),
                },
                "spec": template["spec"],
            });
            let pod = c.insert_new(pk, &ns, pod);
            let pod_name = pod["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            c.pod_started.insert((ns.clone(), pod_name), now);
            pods.push(pod);
        }
        while pods.len() > desired {
            if let Some(p) = pods.pop() {
                let pod_name = p["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                c.remove(pk, &ns, &pod_name);
            }
        }
        let mut ready = 0;
        for p in &pods {
            let pod_name = p["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let started = c
                .pod_started
                .get(&(ns.clone(), pod_name.clone()))
                .copied()
                .unwrap_or(c.started);
            let behaviour = behaviour_of(c, p);
            let is_ready =
                !behaviour.never_ready && now.duration_since(started) >= behaviour.ready_after;
            if is_ready {
                ready += 1;
            }
            let status = pod_status(p, is_ready, behaviour.never_ready);
            if p["status"] != status {
                let mut np = p.clone();
                np["status"] = status;
                c.store(pk, &ns, &pod_name, np);
            }
        }
        let generation = rs["metadata"]["generation"].as_i64().unwrap_or(1);
        let status = json!({
            "observedGeneration": generation,
            "replicas": pods.len(),
            "fullyLabeledReplicas": pods.len(),
            "readyReplicas": ready,
            "availableReplicas": ready,
        });
        if let Some(current) = c.object(rk, &ns, &name).cloned()
            && current["status"] != status
        {
            let mut nrs = current;
            nrs["status"] = status;
            c.store(rk, &ns, &name, nrs);
        }
    }
}

/// The behaviour of a pod's first container's image: an exact entry, else
/// the longest prefix entry, else the default.
fn behaviour_of(c: &Cluster, pod: &Value) -> PodBehaviour {
    let image = pod["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or_default();
    if let Some(b) = c.behaviours.get(image) {
        return *b;
    }
    c.behaviours
        .iter()
        .filter(|(k, _)| image.starts_with(k.as_str()))
        .max_by_key(|(k, _)| k.len())
        .map(|(_, b)| *b)
        .unwrap_or_default()
}

fn pod_status(pod: &Value, ready: bool, crashing: bool) -> Value {
    let flag = if ready { "True" } else { "False" };
    let containers: Vec<Value> = pod["spec"]["containers"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|ct| {
                    let state = if crashing {
                        json!({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off restarting failed container"}})
                    } else {
                        json!({"running": {}})
                    };
                    // `imageID` is required by the API (clients reject a
                    // status without it): the image's digest as resolved.
                    let image = ct["image"].as_str().unwrap_or_default();
                    let digest = format!("{:016x}", fnv(image)).repeat(4);
                    json!({"name": ct["name"], "image": image, "ready": ready,
                           "imageID": format!("{}@sha256:{}", image.split(':').next().unwrap_or(image), &digest[..64]),
                           "restartCount": if crashing { 3 } else { 0 }, "started": !crashing, "state": state})
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "phase": "Running",
        "conditions": [
            {"type": "Ready", "status": flag},
            {"type": "ContainersReady", "status": flag},
            {"type": "PodScheduled", "status": "True"},
        ],
        "containerStatuses": containers,
    })
}
