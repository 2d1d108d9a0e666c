//! Transient read failures of the event hub (module docs of [`super`], "Transient read
//! failures"): which store errors are worth a retry, the retry bounds, and the fault hook the
//! tests use ([`super::EventHub::fail_reads`]).

use std::sync::Mutex;
use std::time::Duration;

use guestlist_core::model::Event;

use crate::store::{Store, StoreError};

/// Attempts of one replay read of a stream, the first included, before the stream ends (module
/// docs, "Transient read failures").
pub const REPLAY_ATTEMPTS: u32 = 6;

/// The wait after a stream's first failed replay read; doubled after each further failure.
pub const REPLAY_BACKOFF: Duration = Duration::from_millis(50);

/// The longest wait of the pump between two attempts of a failed read (it starts at
/// [`REPLAY_BACKOFF`] and doubles).
pub const PUMP_BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Whether a failed store read may succeed if tried again soon: the database unreachable for a
/// moment ([`StoreError::Unavailable`]: pool acquire timeout, lost connection, PostgreSQL
/// restarting), a storage task that failed, SQLite busy or locked, a PostgreSQL
/// serialization failure or deadlock (SQLSTATE class 40) or lack of resources (class 53).
/// Anything else (a corrupt row, a migration error, another SQL error) is permanent.
pub fn transient(e: &StoreError) -> bool {
    match e {
        StoreError::Unavailable(_) | StoreError::Task(_) => true,
        StoreError::Db(rusqlite::Error::SqliteFailure(f, _)) => matches!(
            f.code,
            rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
        ),
        // `db_err` writes the SQLSTATE first.
        StoreError::Backend(text) => text.starts_with("40") || text.starts_with("53"),
        _ => false,
    }
}

/// Which read of the hub a fault injected by [`super::EventHub::fail_reads`] hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadSite {
    /// The replay reads of the streams (after `Last-Event-ID`).
    Replay,
    /// The pump's reads of new events.
    Pump,
}

/// Injected read failures of one [`ReadSite`]: `pass` more reads succeed, then `fail` reads
/// fail with [`StoreError::Unavailable`].
#[derive(Debug, Default)]
pub(super) struct Faults(Mutex<(u32, u32)>);

impl Faults {
    /// From now on `pass` reads succeed, then `fail` fail (replacing what was left).
    pub(super) fn set(&self, pass: u32, fail: u32) {
        if let Ok(mut f) = self.0.lock() {
            *f = (pass, fail);
        }
    }

    /// Whether this read is to fail (and counts it).
    pub(super) fn take(&self) -> bool {
        let Ok(mut f) = self.0.lock() else {
            return false;
        };
        match *f {
            (0, 0) => false,
            (0, ref mut fail) => {
                *fail -= 1;
                true
            }
            (ref mut pass, _) => {
                *pass -= 1;
                false
            }
        }
    }

    /// Reads `events_after(after, limit)` from `store`, or fails if a fault is due.
    pub(super) async fn events_after(
        &self,
        store: &Store,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        if self.take() {
            return Err(StoreError::Unavailable(
                "injected read failure (EventHub::fail_reads)".into(),
            ));
        }
        store.events_after(after, limit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_busy_and_retryable_sqlstates_are_transient_others_not() {
        assert!(transient(&StoreError::Unavailable("pool timeout".into())));
        assert!(transient(&StoreError::Task("join".into())));
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        assert!(transient(&StoreError::Db(busy)));
        assert!(transient(&StoreError::Backend(
            "40001: could not serialize".into()
        )));
        assert!(transient(&StoreError::Backend("53300: too many".into())));
        assert!(!transient(&StoreError::Backend(
            "42P01: no such table".into()
        )));
        assert!(!transient(&StoreError::Corrupt("bad json".into())));
        let corrupt = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
            None,
        );
        assert!(!transient(&StoreError::Db(corrupt)));
    }

    #[test]
    fn faults_let_pass_reads_through_then_fail_then_recover() {
        let f = Faults::default();
        if let Ok(mut g) = f.0.lock() {
            *g = (2, 3);
        }
        let seen: Vec<bool> = (0..7).map(|_| f.take()).collect();
        assert_eq!(seen, [false, false, true, true, true, false, false]);
    }
}
