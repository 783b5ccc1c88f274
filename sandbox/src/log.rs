//! The request log: every request the HTTPS listener answered, in order, so
//! tests can assert on what was called and — as importantly — what was not.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// One answered (or dropped) request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Monotonic sequence number, starting at 1 for each sandbox.
    pub seq: u64,
    /// Milliseconds since the sandbox started.
    pub ms: u64,
    /// `Host` header (without port), or the TLS SNI name when it was absent.
    pub host: String,
    pub method: String,
    /// Path and query as sent.
    pub path: String,
    /// Status code; 0 when the connection was dropped without a response.
    pub status: u16,
    /// `x-ms-client-request-id` the client sent, if any.
    pub client_request_id: Option<String>,
    /// `User-Agent` the client sent, if any (absent in logs written before
    /// the field existed).
    #[serde(default)]
    pub user_agent: Option<String>,
    /// What answered: `arm`, `entra`, `oidc`, `kudu:{app}/{slot}`,
    /// `app:{app}/{slot}`, `fault:{kind}` or `unknown`.
    pub target: String,
}

/// Bounded in-memory log; the oldest records are evicted past `capacity`.
#[derive(Debug)]
pub(crate) struct RequestLog {
    records: VecDeque<RequestRecord>,
    next_seq: u64,
    capacity: usize,
}

impl RequestLog {
    pub fn new(capacity: usize) -> Self {
        Self {
            records: VecDeque::new(),
            next_seq: 1,
            capacity: capacity.max(1),
        }
    }

    pub fn push(&mut self, mut record: RequestRecord) -> u64 {
        record.seq = self.next_seq;
        self.next_seq += 1;
        if self.records.len() >= self.capacity {
            self.records.pop_front();
        }
        let seq = record.seq;
        self.records.push_back(record);
        seq
    }

    /// Records with `seq > since`.
    pub fn since(&self, since: u64) -> Vec<RequestRecord> {
        self.records
            .iter()
            .filter(|r| r.seq > since)
            .cloned()
            .collect()
    }

    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }
}
