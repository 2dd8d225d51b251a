//! The request journal: what the emulator received, for tests and debugging. Bounded by
//! entries and by bytes; a large body is kept only as a marker with its size; calls that failed
//! authentication are kept without their body; credentials are fingerprinted. Reading it copies
//! only pointers under the lock and renders JSON outside it, so a big journal never stalls calls.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::{Arc, Mutex, MutexGuard},
};

use bytes::Bytes;
use serde::Serialize;
use serde_json::{Value, json};

use crate::redact;

/// One request the emulator received.
#[derive(Debug, Clone, Serialize)]
pub struct JournalEntry {
    /// Sequence number since start or the last reset.
    pub seq: u64,
    /// gRPC method, `package.Service/Method`.
    pub method: String,
    /// Request metadata; credentials are replaced by a fingerprint (`***1a2b3c4d`).
    pub metadata: BTreeMap<String, String>,
    /// The request message as protobuf JSON, credentials fingerprinted; `null` when the body
    /// was not kept (see `note`).
    pub request: Value,
    /// Why the body is missing or incomplete, if it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// What to keep of a request body.
pub(crate) enum Body {
    /// The encoded message and its protobuf type.
    Message { type_name: String, bytes: Bytes },
    /// Not kept, for this reason.
    Omitted(String),
}

struct Raw {
    seq: u64,
    method: String,
    metadata: BTreeMap<String, String>,
    body: Body,
    cost: usize,
}

#[derive(Default)]
struct Inner {
    seq: u64,
    entries: VecDeque<Arc<Raw>>,
    bytes: usize,
}

/// Limits of the journal.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Entries kept (oldest dropped first); 0 turns the journal off.
    pub entries: usize,
    /// Bytes of kept bodies and metadata in total.
    pub bytes: usize,
    /// Largest body kept; larger ones become a marker.
    pub body_bytes: usize,
}

pub(crate) struct Journal {
    inner: Mutex<Inner>,
    limits: Limits,
}

impl Journal {
    pub(crate) fn new(limits: Limits) -> Journal {
        Journal { inner: Mutex::default(), limits }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a call. `headers` are redacted here; `body` is dropped if it is too large.
    pub(crate) fn record(&self, method: &str, headers: &http::HeaderMap, body: Body) {
        if self.limits.entries == 0 {
            return;
        }
        let metadata: BTreeMap<String, String> = headers
            .iter()
            .filter_map(|(k, v)| {
                let name = k.as_str();
                (!name.ends_with("-bin"))
                    .then(|| (name.to_owned(), redact::header(name, v.to_str().unwrap_or("<binary>"))))
            })
            .collect();
        let body = match body {
            Body::Message { bytes, .. } if bytes.len() > self.limits.body_bytes => Body::Omitted(format!(
                "body of {} bytes not kept (the journal keeps bodies up to {} bytes)",
                bytes.len(),
                self.limits.body_bytes
            )),
            // Copy out of the request buffer so a small entry never pins a large one.
            Body::Message { type_name, bytes } => Body::Message { type_name, bytes: Bytes::copy_from_slice(&bytes) },
            omitted => omitted,
        };
        let cost = 64
            + method.len()
            + metadata.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()
            + match &body {
                Body::Message { bytes, .. } => bytes.len(),
                Body::Omitted(why) => why.len(),
            };
        let mut inner = self.lock();
        inner.seq += 1;
        let entry = Arc::new(Raw { seq: inner.seq, method: method.to_owned(), metadata, body, cost });
        inner.bytes += cost;
        inner.entries.push_back(entry);
        while inner.entries.len() > self.limits.entries || inner.bytes > self.limits.bytes {
            match inner.entries.pop_front() {
                Some(old) => inner.bytes -= old.cost,
                None => break,
            }
        }
    }

    /// The journal as protobuf JSON, oldest first.
    pub(crate) fn entries(&self) -> Vec<JournalEntry> {
        let raw: Vec<Arc<Raw>> = self.lock().entries.iter().cloned().collect();
        raw.iter().map(|e| render(e)).collect()
    }

    pub(crate) fn clear(&self) {
        *self.lock() = Inner::default();
    }
}

fn render(e: &Raw) -> JournalEntry {
    let (request, note) = match &e.body {
        Body::Message { type_name, bytes } => match crate::reflect::to_json(type_name, bytes) {
            Ok(mut v) => {
                redact::message(&mut v);
                (v, None)
            }
            Err(why) => (json!(null), Some(format!("body could not be decoded: {why}"))),
        },
        Body::Omitted(why) => (Value::Null, Some(why.clone())),
    };
    JournalEntry { seq: e.seq, method: e.method.clone(), metadata: e.metadata.clone(), request, note }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_journal_is_bounded_by_bytes_and_large_bodies_become_markers() {
        let journal = Journal::new(Limits { entries: 1000, bytes: 10_000, body_bytes: 1_000 });
        let headers = http::HeaderMap::new();
        for _ in 0..100 {
            let bytes = Bytes::from(vec![0u8; 900]);
            journal.record("m", &headers, Body::Message { type_name: "x".into(), bytes });
        }
        let entries = journal.entries();
        assert!(entries.len() < 12, "{}", entries.len());
        assert_eq!(entries.last().unwrap().seq, 100);
        journal.record("m", &headers, Body::Message { type_name: "x".into(), bytes: Bytes::from(vec![0u8; 5_000]) });
        let last = journal.entries().pop().unwrap();
        assert!(last.note.unwrap().contains("5000 bytes not kept"));
    }
}
