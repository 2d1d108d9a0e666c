//! One process per database: the exclusive advisory lock (`flock`) on `<database>.lock` taken
//! by [`SqliteStore::open`](super::SqliteStore::open), released by the OS when the process ends.

use std::path::Path;

use super::StoreError;

/// How long [`SqliteStore::open`](super::SqliteStore::open) waits for another process to release the
/// database (a server being restarted may still be exiting).
pub(super) const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Takes the exclusive lock on `<database>.lock` (created if missing, never deleted; an advisory
/// `flock`, released by the OS when the process ends, even by `kill -9`), waiting up to
/// `wait` ([`LOCK_WAIT`] from [`SqliteStore::open`](super::SqliteStore::open)) for another process to let go.
///
/// Errors: [`StoreError::Locked`] when another process keeps it, or the file cannot be opened.
pub(super) fn lock_database(
    path: &Path,
    wait: std::time::Duration,
) -> Result<std::fs::File, StoreError> {
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock_path = std::path::PathBuf::from(lock_path);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| {
            StoreError::Locked(format!(
                "cannot open the lock file {}: {e}",
                lock_path.display()
            ))
        })?;
    let deadline = std::time::Instant::now() + wait;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StoreError::Locked(format!(
                    "the database {} is in use by another guestlist-server process (its lock {} \
                     is held); stop that process or give this one another --database",
                    path.display(),
                    lock_path.display()
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(StoreError::Locked(format!(
                    "cannot lock {}: {e}",
                    lock_path.display()
                )));
            }
        }
    }
}
