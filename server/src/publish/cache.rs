//! Serialized packuments kept in memory, each under the package revision it was built at (every
//! committed change increments the revision in its transaction, so any instance on the same
//! database sees a change as a miss), with its validator and its gzipped text. A GET that hits
//! costs one read of the package row (and of its maintainers, for the full form) and no
//! serialization or compression. Bounded in total bytes; the oldest entries go first.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::served::Form;

/// 64 MiB of packuments per process.
pub const DEFAULT_BYTES: usize = 64 * 1024 * 1024;

/// What a cached packument was built from: it is served only while all of it is current.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    pub revision: i64,
    pub modified_at: i64,
    /// The maintainers' names and addresses (full form only: they change without a revision).
    pub maintainers: String,
}

/// One serialized packument.
#[derive(Debug)]
pub struct Entry {
    pub stamp: Stamp,
    pub etag: String,
    pub body: Bytes,
    pub gzip: Bytes,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<(String, Form), Arc<Entry>>,
    order: VecDeque<(String, Form)>,
    bytes: usize,
}

/// The cache. Cheap to share; a poisoned lock only makes it miss.
#[derive(Debug)]
pub struct PackumentCache {
    max_bytes: usize,
    inner: Mutex<Inner>,
}

impl PackumentCache {
    pub fn new(max_bytes: usize) -> Self {
        Self { max_bytes, inner: Mutex::new(Inner::default()) }
    }

    /// The entry for `name` in `form` if it was built at `stamp`.
    pub fn get(&self, name: &str, form: Form, stamp: &Stamp) -> Option<Arc<Entry>> {
        let inner = self.inner.lock().ok()?;
        inner.entries.get(&(name.to_string(), form)).filter(|e| e.stamp == *stamp).cloned()
    }

    /// Whether a packument of `length` bytes is kept (larger ones are sent as they are read).
    pub fn fits(&self, length: usize) -> bool {
        length <= self.max_bytes / 8
    }

    /// Builds the entry for a packument text (gzipping it once) and keeps it if it fits.
    pub fn insert(&self, name: &str, form: Form, stamp: Stamp, etag: String, body: Vec<u8>) -> Arc<Entry> {
        let mut gz =
            flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 4), flate2::Compression::best());
        let gzip = match gz.write_all(&body).and_then(|()| gz.finish()) {
            Ok(z) => Bytes::from(z),
            Err(_) => Bytes::new(),
        };
        let entry = Arc::new(Entry { stamp, etag, body: Bytes::from(body), gzip });
        let size = entry.body.len() + entry.gzip.len();
        if size > self.max_bytes / 4 {
            return entry;
        }
        if let Ok(mut inner) = self.inner.lock() {
            let key = (name.to_string(), form);
            if let Some(old) = inner.entries.insert(key.clone(), entry.clone()) {
                inner.bytes -= old.body.len() + old.gzip.len();
                inner.order.retain(|k| *k != key);
            }
            inner.order.push_back(key);
            inner.bytes += size;
            while inner.bytes > self.max_bytes {
                let Some(oldest) = inner.order.pop_front() else { break };
                if let Some(old) = inner.entries.remove(&oldest) {
                    inner.bytes -= old.body.len() + old.gzip.len();
                }
            }
        }
        entry
    }

    /// (entries, bytes) held.
    pub fn usage(&self) -> (usize, usize) {
        self.inner.lock().map_or((0, 0), |i| (i.entries.len(), i.bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(revision: i64) -> Stamp {
        Stamp { revision, modified_at: 1, maintainers: String::new() }
    }

    #[test]
    fn an_entry_serves_only_its_revision_and_the_cache_stays_bounded() {
        let cache = PackumentCache::new(4096);
        cache.insert("p", Form::Full, stamp(1), "e1".into(), b"{\"a\":1}".to_vec());
        assert!(cache.get("p", Form::Full, &stamp(1)).is_some());
        assert!(cache.get("p", Form::Full, &stamp(2)).is_none(), "a newer revision misses");
        assert!(cache.get("p", Form::Abbreviated, &stamp(1)).is_none(), "forms are apart");
        let e = cache.insert("p", Form::Full, stamp(2), "e2".into(), b"{\"a\":2}".to_vec());
        assert_eq!(cache.usage().0, 1, "a rebuild replaces the entry");
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&e.gzip[..]), &mut text)
            .unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(text, "{\"a\":2}");
        for i in 0..100 {
            cache.insert(&format!("p{i}"), Form::Full, stamp(1), "e".into(), vec![b'x'; 300]);
        }
        assert!(cache.usage().1 <= 4096, "{:?}", cache.usage());
        assert!(cache.get("p99", Form::Full, &stamp(1)).is_some(), "the newest stay");
    }
}
