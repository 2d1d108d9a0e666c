//! `guestlist-server backup --to FILE` (issue 12 "At rest"): a consistent copy of the database
//! while the server runs, through SQLite's online backup API ([`crate::store::at_rest::backup`]:
//! read-only, one snapshot, copy mode 0600, never a half-written `FILE`).

use std::path::Path;

use crate::store::StoreError;
pub use crate::store::at_rest::BackupReport;

/// Copies the database `database` (the server's `database` setting) to `to`; returns what was
/// copied. Safe beside a running server on the same file: it takes no lock of the server's and
/// only reads.
///
/// Errors: [`StoreError`] naming the file that could not be read or written, or a copy that
/// fails `PRAGMA quick_check`.
pub fn backup(database: &Path, to: &Path) -> Result<BackupReport, StoreError> {
    if to == database {
        return Err(StoreError::Locked(
            "the backup must go to another file than the database".into(),
        ));
    }
    crate::store::at_rest::backup(database, to)
}
