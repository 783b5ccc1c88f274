//! Locks as Kubernetes Leases (`coordination.k8s.io/v1`), the cluster's
//! native lock: one Lease per service, named from the key, in a namespace
//! the deploy may write.
//!
//! The record is the Lease's `expedite.dev/lock-record` annotation; the
//! store's version is the Lease's `resourceVersion`. The compare-and-set is
//! the API server's own: creating a Lease that exists is `409
//! AlreadyExists`, and a replace carrying a `resourceVersion` other than the
//! stored one is `409 Conflict` — so, as with the GitHub store, a write
//! succeeds only from the version the writer read. `spec.holderIdentity`,
//! `leaseDurationSeconds` and the times are kept in step for people reading
//! it with `kubectl get lease`; expedite reads only the annotation.
//!
//! A Lease cannot tell whether a workflow run has finished, so a holder is
//! stale only when its record expires (the TTL), not when its run ends.

use serde_json::{Value, json};

use super::{CasError, LockError, LockKey, Record, Versioned};
use crate::cancel::Cancel;
use crate::kube::{Kube, KubeError};

/// The annotation that carries the record.
pub const RECORD_ANNOTATION: &str = "expedite.dev/lock-record";

/// A lock store in one namespace of one cluster.
#[derive(Clone, Debug)]
pub struct LeaseStore {
    kube: Kube,
    namespace: String,
}

/// The Lease's name for a key: readable, a DNS-1123 subdomain, unique per
/// key path (a hash of the path ends it).
pub fn lease_name(key: &LockKey) -> String {
    let readable: String = key
        .path
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    // The key's end says most (the app); the hash keeps it unique.
    let readable = readable.trim_matches('-');
    let tail = readable[readable.len().saturating_sub(40)..].trim_start_matches('-');
    format!(
        "expedite-lock-{tail}-{:016x}",
        crate::text::fnv1a64(key.path.bytes())
    )
}

impl LeaseStore {
    /// Leases in `namespace` of the cluster `kube` connects to.
    pub fn new(kube: Kube, namespace: impl Into<String>) -> Self {
        LeaseStore {
            kube,
            namespace: namespace.into(),
        }
    }

    fn collection(&self) -> String {
        format!(
            "/apis/coordination.k8s.io/v1/namespaces/{}/leases",
            self.namespace
        )
    }

    fn path(&self, key: &LockKey) -> String {
        format!("{}/{}", self.collection(), lease_name(key))
    }

    fn error(&self, key: &LockKey, e: KubeError) -> LockError {
        let what = self.describe(key);
        match e {
            KubeError::Denied { message, .. } => LockError::Denied {
                what,
                detail: message,
                fix: format!(
                    "the lock is a Lease: the deploy's credentials need get, create and update on leases.coordination.k8s.io in namespace {}",
                    self.namespace
                ),
            },
            KubeError::Cancelled(c) => LockError::Cancelled(c),
            other => LockError::Unavailable {
                what,
                detail: other.to_string(),
            },
        }
    }

    fn lease(
        &self,
        key: &LockKey,
        record: &Record,
        version: Option<&str>,
    ) -> Result<Value, LockError> {
        let text = serde_json::to_string(record).map_err(|e| LockError::Corrupt {
            what: self.describe(key),
            detail: e.to_string(),
            fix: self.clear_hint(key),
        })?;
        let ttl = record
            .expires_at()
            .signed_duration_since(chrono::Utc::now())
            .num_seconds()
            .clamp(1, i64::from(i32::MAX));
        let micro = |t: &str| {
            chrono::DateTime::parse_from_rfc3339(t)
                .map(|d| {
                    d.with_timezone(&chrono::Utc)
                        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
                        .to_string()
                })
                .unwrap_or_default()
        };
        let mut lease = json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": lease_name(key),
                "namespace": self.namespace,
                "labels": {"app.kubernetes.io/managed-by": "expedite"},
                "annotations": {RECORD_ANNOTATION: text, "expedite.dev/lock-key": key.path},
            },
            "spec": {
                "holderIdentity": record.holder.id,
                "leaseDurationSeconds": ttl,
                "acquireTime": micro(&record.since),
                "renewTime": micro(&chrono::Utc::now().to_rfc3339()),
            },
        });
        if let Some(v) = version {
            lease["metadata"]["resourceVersion"] = json!(v);
        }
        Ok(lease)
    }

    /// The lock's current record and version.
    pub async fn read(&self, key: &LockKey) -> Result<Option<Versioned>, LockError> {
        let got = self
            .kube
            .get(&self.path(key), &Cancel::new())
            .await
            .map_err(|e| self.error(key, e))?;
        let Some(lease) = got else {
            return Ok(None);
        };
        let version = lease["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let corrupt = |detail: String| LockError::Corrupt {
            what: self.describe(key),
            detail,
            fix: self.clear_hint(key),
        };
        let text = lease["metadata"]["annotations"][RECORD_ANNOTATION]
            .as_str()
            .ok_or_else(|| corrupt(format!("the Lease has no {RECORD_ANNOTATION} annotation")))?;
        let record: Record = serde_json::from_str(text)
            .map_err(|e| corrupt(format!("its record is not expedite's: {e}")))?;
        if record.key != key.path {
            return Err(corrupt(format!(
                "it is the lock of {}, not of {}",
                record.key, key.path
            )));
        }
        Ok(Some(Versioned { version, record }))
    }

    /// Creates the Lease; `Conflict` when it exists.
    pub async fn create(&self, key: &LockKey, record: &Record) -> Result<String, CasError> {
        let lease = self.lease(key, record, None)?;
        match self
            .kube
            .create(&self.collection(), &lease, &Cancel::new())
            .await
        {
            Ok(v) => Ok(version_of(&v)),
            Err(KubeError::Conflict { .. }) => Err(CasError::Conflict),
            Err(e) => Err(CasError::Failed(self.error(key, e))),
        }
    }

    /// Replaces the record if the Lease is still at `expected`.
    pub async fn replace(
        &self,
        key: &LockKey,
        expected: &str,
        record: &Record,
    ) -> Result<String, CasError> {
        let lease = self.lease(key, record, Some(expected))?;
        match self
            .kube
            .replace(&self.path(key), &lease, &Cancel::new())
            .await
        {
            Ok(v) => Ok(version_of(&v)),
            // Gone since it was read is a moved chain too: read again.
            Err(KubeError::Conflict { .. } | KubeError::NotFound { .. }) => Err(CasError::Conflict),
            Err(e) => Err(CasError::Failed(self.error(key, e))),
        }
    }

    /// Whether the Lease is still at `version`.
    pub async fn unchanged(&self, key: &LockKey, version: &str) -> Result<bool, LockError> {
        let got = self
            .kube
            .get(&self.path(key), &Cancel::new())
            .await
            .map_err(|e| self.error(key, e))?;
        Ok(got.is_some_and(|l| l["metadata"]["resourceVersion"] == version))
    }

    /// Where the lock lives, for people.
    pub fn describe(&self, key: &LockKey) -> String {
        format!(
            "Lease {}/{} in {}",
            self.namespace,
            lease_name(key),
            self.kube.context
        )
    }

    /// The command that clears it by hand.
    pub fn clear_hint(&self, key: &LockKey) -> String {
        format!(
            "kubectl --context {} -n {} delete lease {}",
            self.kube.context,
            self.namespace,
            lease_name(key)
        )
    }
}

fn version_of(lease: &Value) -> String {
    lease["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}
