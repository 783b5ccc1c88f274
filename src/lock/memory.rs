//! An in-memory lock store with the same compare-and-set semantics as the
//! GitHub one, for unit tests of the protocol (never built into the
//! product).

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::{CasError, LockError, LockKey, Record, Versioned};
use crate::action::identity::ActionsRun;

#[derive(Default)]
pub struct MemoryStore {
    chains: Mutex<BTreeMap<String, (u64, Record)>>,
    next: Mutex<u64>,
    finished_runs: Mutex<Vec<u64>>,
}

impl MemoryStore {
    fn next_version(&self) -> u64 {
        let mut n = self.next.lock().unwrap_or_else(|e| e.into_inner());
        *n += 1;
        *n
    }

    pub async fn read(&self, key: &LockKey) -> Result<Option<Versioned>, LockError> {
        tokio::task::yield_now().await;
        let chains = self.chains.lock().unwrap_or_else(|e| e.into_inner());
        Ok(chains.get(&key.path).map(|(v, r)| Versioned {
            version: v.to_string(),
            record: r.clone(),
        }))
    }

    pub async fn create(&self, key: &LockKey, record: &Record) -> Result<String, CasError> {
        tokio::task::yield_now().await;
        let v = self.next_version();
        let mut chains = self.chains.lock().unwrap_or_else(|e| e.into_inner());
        if chains.contains_key(&key.path) {
            return Err(CasError::Conflict);
        }
        chains.insert(key.path.clone(), (v, record.clone()));
        Ok(v.to_string())
    }

    pub async fn replace(
        &self,
        key: &LockKey,
        expected: &str,
        record: &Record,
    ) -> Result<String, CasError> {
        tokio::task::yield_now().await;
        let v = self.next_version();
        let mut chains = self.chains.lock().unwrap_or_else(|e| e.into_inner());
        match chains.get_mut(&key.path) {
            Some((cur, r)) if cur.to_string() == expected => {
                *cur = v;
                *r = record.clone();
                Ok(v.to_string())
            }
            _ => Err(CasError::Conflict),
        }
    }

    pub async fn unchanged(&self, key: &LockKey, version: &str) -> Result<bool, LockError> {
        let chains = self.chains.lock().unwrap_or_else(|e| e.into_inner());
        Ok(chains
            .get(&key.path)
            .is_some_and(|(v, _)| v.to_string() == version))
    }

    pub fn run_over(&self, run: &ActionsRun) -> Option<bool> {
        let done = self.finished_runs.lock().unwrap_or_else(|e| e.into_inner());
        Some(done.contains(&run.run_id))
    }

    pub fn finish_run(&self, id: u64) {
        self.finished_runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(id);
    }
}
