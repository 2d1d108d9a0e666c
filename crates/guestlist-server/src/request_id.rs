//! The `x-request-id` of every answer (tower-http's request-id layers, wired in
//! [`crate::router`]): [`MakeCounterRequestId`] makes one when the caller sent none.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{HeaderValue, Request};
use tower_http::request_id::{MakeRequestId, RequestId};

/// Request ids of the `x-request-id` header (when the caller sent none): a random 64-bit
/// prefix drawn once per process, then a counter, both as 16 hex digits
/// (`5f0c3b2a17d49a1e-000000000000002a`). Unique per process
/// and unlikely to repeat across processes, without a call to the OS random source per request
/// (tower-http's `MakeRequestUuid` made one `getrandom` call per request).
#[derive(Clone)]
pub struct MakeCounterRequestId {
    prefix: u64,
    next: Arc<AtomicU64>,
}

impl Default for MakeCounterRequestId {
    fn default() -> Self {
        MakeCounterRequestId {
            prefix: uuid::Uuid::new_v4().as_u64_pair().0,
            next: Arc::new(AtomicU64::new(1)),
        }
    }
}

impl MakeRequestId for MakeCounterRequestId {
    fn make_request_id<B>(&mut self, _request: &Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        // `<prefix: 16 hex digits>-<counter: 16 hex digits>`, written by hand: `format!` cost
        // more than the rest of this layer.
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut buf = [b'-'; 33];
        for (i, b) in buf.iter_mut().take(16).enumerate() {
            *b = HEX[((self.prefix >> (60 - 4 * i)) & 0xf) as usize];
        }
        for (i, b) in buf.iter_mut().skip(17).enumerate() {
            *b = HEX[((n >> (60 - 4 * i)) & 0xf) as usize];
        }
        HeaderValue::from_bytes(&buf).ok().map(RequestId::new)
    }
}
