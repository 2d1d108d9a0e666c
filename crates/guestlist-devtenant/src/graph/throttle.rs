//! Graph throttling ("Microsoft Graph throttling guidance", "Microsoft Entra service limits
//! and restrictions": 3,000 writes per app and tenant per 2 min 30 s): a token bucket per
//! (tenant, app, read/write). An empty bucket answers 429 `TooManyRequests` with `Retry-After`
//! in seconds (CONTRACTS.md §3). The injected faults of [`crate::FaultConfig`] answer here
//! too: a random 429, or a 503 `serviceNotAvailable`, both with the configured `Retry-After`.

use std::time::Instant;

use axum::http::StatusCode;
use rand::RngExt as _;

use super::{Ctx, GraphResponse, auth::Principal, odata_error};
use crate::state::{Bucket, Shared};

/// Adds `Retry-After: secs` (at least 1) to an answer.
fn retry_after(mut r: GraphResponse, secs: u64) -> GraphResponse {
    r.headers.push(("Retry-After", secs.max(1).to_string()));
    r
}

/// Takes one token from the (tenant, app, read/write) bucket, or returns the seconds until one
/// is available.
fn take_token(s: &Shared, p: &Principal, write: bool) -> Result<(), u64> {
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

/// 429 `TooManyRequests` with `Retry-After: secs`.
fn too_many_requests(ctx: &Ctx, secs: u64) -> GraphResponse {
    retry_after(
        odata_error(
            ctx,
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "Please retry again later.",
        ),
        secs,
    )
}

/// Admits one Graph operation (a plain request or a `$batch` step) of the caller `p`: takes a
/// token from its bucket (`write` for anything but GET), then rolls the injected faults.
///
/// # Errors
/// The 429 `TooManyRequests` or 503 `serviceNotAvailable` answer, with `Retry-After`.
pub(super) fn admit(
    s: &Shared,
    ctx: &Ctx,
    p: &Principal,
    write: bool,
) -> Result<(), GraphResponse> {
    if let Err(secs) = take_token(s, p, write) {
        return Err(too_many_requests(ctx, secs));
    }
    let (throttle, unavailable, after) = {
        let mut inner = s.lock();
        let f = inner.faults.clone();
        let t = f.throttle_rate > 0.0 && inner.rng.random_bool(f.throttle_rate.min(1.0));
        let u =
            !t && f.unavailable_rate > 0.0 && inner.rng.random_bool(f.unavailable_rate.min(1.0));
        (t, u, f.retry_after_secs)
    };
    if throttle {
        return Err(too_many_requests(ctx, after));
    }
    if unavailable {
        return Err(retry_after(
            odata_error(
                ctx,
                StatusCode::SERVICE_UNAVAILABLE,
                "serviceNotAvailable",
                "The service is temporarily unavailable. Please retry later.",
            ),
            after,
        ));
    }
    Ok(())
}
