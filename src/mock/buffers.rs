//! A small pool of response buffers. A 500-id answer is ~160 KB; allocating and freeing one
//! per call made the allocator return and re-fault pages on every request, and fresh pages
//! also pushed the record index out of cache. Reused buffers stay mapped and warm.

use axum::body::Bytes;
use std::sync::{Arc, Mutex};

use super::server::lock;

/// Buffers kept for reuse; beyond this, returned buffers are freed (enough for the in-flight
/// calls of any realistic client).
const MAX_POOLED: usize = 64;
/// Buffers that grew beyond this are not kept, so one huge answer does not pin memory.
const MAX_KEPT_CAPACITY: usize = 1 << 20;

#[derive(Default)]
pub(crate) struct BufferPool {
    free: Mutex<Vec<Vec<u8>>>,
}

impl BufferPool {
    /// An empty buffer with at least `capacity` bytes reserved.
    pub(crate) fn take(&self, capacity: usize) -> Vec<u8> {
        let mut buf = lock(&self.free).pop().unwrap_or_default();
        buf.clear();
        buf.reserve(capacity);
        buf
    }

    /// Wraps a filled buffer as a response body that returns to the pool once hyper has
    /// written it and dropped the last reference.
    pub(crate) fn body(self: &Arc<Self>, buf: Vec<u8>) -> Bytes {
        Bytes::from_owner(Pooled {
            buf,
            pool: self.clone(),
        })
    }

    fn give_back(&self, buf: Vec<u8>) {
        if buf.capacity() > MAX_KEPT_CAPACITY {
            return;
        }
        let mut free = lock(&self.free);
        if free.len() < MAX_POOLED {
            free.push(buf);
        }
    }
}

struct Pooled {
    buf: Vec<u8>,
    pool: Arc<BufferPool>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        self.pool.give_back(std::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_body_returns_its_buffer() {
        let pool = Arc::new(BufferPool::default());
        let mut buf = pool.take(1000);
        buf.extend_from_slice(b"hello");
        let body = pool.body(buf);
        assert_eq!(&body[..], b"hello");
        drop(body);
        let again = pool.take(10);
        assert!(again.is_empty());
        assert!(again.capacity() >= 1000);
    }
}
