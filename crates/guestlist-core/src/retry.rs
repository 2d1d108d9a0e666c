//! One retry rule for every HTTP client of Guestlist (the Microsoft Graph client and the
//! desktop app's approval API client): how long to wait before trying again after a throttling
//! (429) or unavailable (503) answer.
//!
//! - [`parse_retry_after`] reads a `Retry-After` header in both of its forms (RFC 9110 §10.2.3):
//!   delta-seconds (`120`) and an HTTP-date (`Wed, 21 Oct 2015 07:28:00 GMT`, the IMF-fixdate
//!   and the two obsolete forms, via the `httpdate` crate). A date in the past means "now".
//! - [`Backoff`] turns an attempt number and that header into the wait: the server's
//!   `Retry-After` when it gave one, else exponential backoff from [`Backoff::base`]; both with
//!   random jitter (so clients throttled together do not come back together), both capped by
//!   [`Backoff::cap`]. A `Retry-After` longer than the cap, or the last attempt, ends the retries
//!   (`None`): the caller reports the error instead of sleeping for minutes.
//!
//! Pure (no I/O, no sleeping): the caller sleeps. The current time and the jitter are
//! parameters of the `_at` functions, so the rules are tested without clocks.

use std::time::{Duration, SystemTime};

/// The wait a `Retry-After` header value asks for, at `now`.
///
/// - delta-seconds: one or more ASCII digits (`"3"` → 3 s; a number too large for `u64`
///   saturates to [`Duration::MAX`]). A non-negative decimal (`"1.5"`) is accepted too, as
///   some servers send one.
/// - HTTP-date (`"Sun, 06 Nov 1994 08:49:37 GMT"`, also RFC 850 and asctime forms): the time
///   from `now` until that date; [`Duration::ZERO`] for a date not in the future.
/// - anything else (empty, negative, `"soon"`, a malformed date): `None`, so the caller falls
///   back to its own backoff.
///
/// Surrounding whitespace is ignored.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if v.is_empty() {
        return None;
    }
    if v.bytes().all(|b| b.is_ascii_digit()) {
        return Some(
            v.parse::<u64>()
                .map(Duration::from_secs)
                .unwrap_or(Duration::MAX),
        );
    }
    if v.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return v
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .and_then(|s| Duration::try_from_secs_f64(s).ok());
    }
    let date = httpdate::parse_http_date(v).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// [`parse_retry_after`] at the current system time.
pub fn retry_after(value: &str) -> Option<Duration> {
    parse_retry_after(value, SystemTime::now())
}

/// A capped, jittered retry schedule (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first wait without a `Retry-After` (doubled after each further failure), and the
    /// least jitter span added to a `Retry-After`.
    pub base: Duration,
    /// The longest wait. A `Retry-After` above it ends the retries.
    pub cap: Duration,
    /// Total attempts, the first included (so `max_attempts - 1` retries). `0` or `1`: never
    /// retry.
    pub max_attempts: u32,
}

impl Backoff {
    /// The wait before the next attempt after `attempt` attempts have failed (`attempt` ≥ 1),
    /// given the server's `Retry-After` (already parsed), with fresh random jitter; `None` when
    /// no further attempt is to be made. See [`Backoff::delay_at`].
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Option<Duration> {
        self.delay_at(attempt, retry_after, fastrand::f64())
    }

    /// [`Backoff::delay`] with the jitter given: `jitter` in `[0, 1)` (clamped), a uniform
    /// random draw in production.
    ///
    /// - `attempt >= max_attempts`: `None`.
    /// - `Some(ra)`: `None` when `ra > cap`; else `ra` plus up to a tenth of `max(ra, base)`
    ///   (`jitter` of it), at most `cap`. Never less than `ra`.
    /// - no `Retry-After`: `min(cap, base · 2^(attempt-1))` scaled into its upper half
    ///   (`0.5 + jitter / 2`: "equal jitter", never a retry storm at zero delay).
    pub fn delay_at(
        &self,
        attempt: u32,
        retry_after: Option<Duration>,
        jitter: f64,
    ) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        match retry_after {
            Some(ra) if ra > self.cap => None,
            Some(ra) => {
                let span = ra.max(self.base) / 10;
                Some((ra + span.mul_f64(jitter)).min(self.cap))
            }
            None => {
                let doublings = attempt.saturating_sub(1).min(31);
                let ceiling = self
                    .base
                    .checked_mul(1u32 << doublings)
                    .unwrap_or(self.cap)
                    .min(self.cap);
                Some(ceiling.mul_f64(0.5 + jitter / 2.0))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(unix: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(unix)
    }

    /// 1994-11-06T08:49:37Z, the date of RFC 9110's examples.
    const T: u64 = 784_111_777;

    #[test]
    fn delta_seconds() {
        let now = at(T);
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after("0", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("1.5", now),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::MAX)
        );
    }

    #[test]
    fn http_dates_in_all_three_forms() {
        let now = at(T - 90);
        let want = Some(Duration::from_secs(90));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            want
        );
        assert_eq!(
            parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now),
            want
        );
        assert_eq!(parse_retry_after("Sun Nov  6 08:49:37 1994", now), want);
    }

    #[test]
    fn a_date_in_the_past_means_now() {
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", at(T + 3600)),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", at(T)),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn garbage_is_none() {
        for v in [
            "",
            "   ",
            "soon",
            "-1",
            "1e3",
            "1.2.3",
            "Sun, 06 Nov 1994 25:49:37 GMT",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "06 Nov 1994",
        ] {
            assert_eq!(parse_retry_after(v, at(T)), None, "{v:?}");
        }
    }

    const B: Backoff = Backoff {
        base: Duration::from_secs(1),
        cap: Duration::from_secs(30),
        max_attempts: 4,
    };

    #[test]
    fn retry_after_is_honoured_with_jitter_on_top() {
        let ra = Some(Duration::from_secs(10));
        assert_eq!(B.delay_at(1, ra, 0.0), Some(Duration::from_secs(10)));
        assert_eq!(B.delay_at(1, ra, 0.5), Some(Duration::from_millis(10_500)));
        // Jitter never takes the wait below what the server asked for, nor above the cap.
        for _ in 0..100 {
            let d = B.delay(2, ra).unwrap();
            assert!(
                d >= Duration::from_secs(10) && d <= Duration::from_secs(11),
                "{d:?}"
            );
        }
        assert_eq!(
            B.delay_at(1, Some(Duration::from_secs(29)), 0.99),
            Some(Duration::from_secs(30))
        );
        // A date in the past (zero) still gets a little jitter from the base.
        assert_eq!(
            B.delay_at(1, Some(Duration::ZERO), 0.5),
            Some(Duration::from_millis(50))
        );
    }

    #[test]
    fn the_cap_ends_retries_and_bounds_backoff() {
        assert_eq!(B.delay_at(1, Some(Duration::from_secs(31)), 0.0), None);
        assert_eq!(B.delay_at(1, Some(Duration::MAX), 0.0), None);
        let long = Backoff {
            max_attempts: 100,
            ..B
        };
        assert_eq!(long.delay_at(60, None, 1.0), Some(Duration::from_secs(30)));
        assert_eq!(long.delay_at(60, None, 0.0), Some(Duration::from_secs(15)));
        assert!(long.delay(99, None).unwrap() <= Duration::from_secs(30));
    }

    #[test]
    fn exponential_without_retry_after() {
        assert_eq!(B.delay_at(1, None, 0.0), Some(Duration::from_millis(500)));
        assert_eq!(B.delay_at(1, None, 1.0), Some(Duration::from_secs(1)));
        assert_eq!(B.delay_at(2, None, 1.0), Some(Duration::from_secs(2)));
        assert_eq!(B.delay_at(3, None, 0.0), Some(Duration::from_secs(2)));
        // Out-of-range jitter is clamped.
        assert_eq!(B.delay_at(3, None, 7.0), Some(Duration::from_secs(4)));
        assert_eq!(B.delay_at(3, None, f64::NAN), Some(Duration::from_secs(2)));
    }

    #[test]
    fn attempts_run_out() {
        assert!(B.delay_at(3, None, 0.0).is_some());
        assert_eq!(B.delay_at(4, None, 0.0), None);
        assert_eq!(B.delay_at(4, Some(Duration::from_secs(1)), 0.0), None);
        let never = Backoff {
            max_attempts: 1,
            ..B
        };
        assert_eq!(never.delay_at(1, None, 0.0), None);
    }
}
