//! Graph throttling ("Microsoft Graph throttling guidance", "Microsoft Entra service limits
//! and restrictions": 3,000 writes per app and tenant per 2 min 30 s): a token bucket per
//! (tenant, app, read/write). An empty bucket answers 429 `TooManyRequests` with `Retry-After`
//! in seconds (CONTRACTS.md §3).

use std::time::Instant;

use super::{GraphResponse, auth::Principal};
use crate::state::{Bucket, Shared};

pub(super) fn retry_after(mut r: GraphResponse, secs: u64) -> GraphResponse {
    r.headers.push(("Retry-After", secs.max(1).to_string()));
    r
}

/// Takes one token from the (tenant, app, read/write) bucket, or returns the seconds until one
/// is available.
pub(super) fn take_token(s: &Shared, p: &Principal, write: bool) -> Result<(), u64> {
    let limit = if write {
        s.cfg.throttle.write_limit
    } else {
        s.cfg.throttle.read_limit.unwrap_or(u32::MAX)
    };
    if limit == u32::MAX {
        return Ok(());
    }
    let limit = f64::from(limit.max(1));
    let window = s.cfg.throttle.window_secs.max(1) as f64;
    let rate = limit / window;
    let now = Instant::now();
    let mut inner = s.lock();
    let b = inner
        .buckets
        .entry((p.tid.clone(), p.azp.clone(), write))
        .or_insert(Bucket {
            tokens: limit,
            at: now,
        });
    let elapsed = now.duration_since(b.at).as_secs_f64();
    b.tokens = (b.tokens + elapsed * rate).min(limit);
    b.at = now;
    if b.tokens >= 1.0 {
        b.tokens -= 1.0;
        Ok(())
    } else {
        Err(((1.0 - b.tokens) / rate).ceil() as u64)
    }
}
