//! The database at rest (issue 12 "At rest"): file modes and the online backup.
//!
//! - [`secure_files`], run by [`SqliteStore::open`](super::SqliteStore::open) before SQLite opens anything,
//!   creates the database and `<database>.lock` with mode 0600 and sets exactly 0600 whatever
//!   the process umask. SQLite creates `-wal`, `-shm` (and a rollback `-journal`) with the mode
//!   of the database file (`findCreateFileMode` of its unix VFS, which `fchmod`s past the
//!   umask), so they are 0600 too. An existing file of the four that is readable or writable
//!   by others is tightened to 0600, with a WARN naming the file and its old mode.
//! - [`backup`] is `guestlist-server backup --to FILE`: SQLite's online backup API on a
//!   read-only connection, beside a running server (which holds `<database>.lock`: the backup
//!   takes no lock of ours; SQLite's WAL lets it read while the server writes).

use std::fs::{File, OpenOptions, Permissions};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, MAIN_DB, OpenFlags};

use super::StoreError;

/// The mode of every file of the database: owner read/write only.
pub const FILE_MODE: u32 = 0o600;

/// `<database><suffix>`, e.g. `guestlist.db-wal`.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

fn io_error(what: &str, path: &Path, e: &std::io::Error) -> StoreError {
    StoreError::Locked(format!("cannot {what} {}: {e}", path.display()))
}

/// Sets `file` (at `path`) to exactly 0600 if its mode differs; `warn`: log a WARN, since the
/// file existed before with that mode.
fn tighten(file: &File, path: &Path, warn: bool) -> Result<(), StoreError> {
    let meta = file
        .metadata()
        .map_err(|e| io_error("read the mode of", path, &e))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode != FILE_MODE {
        if warn && mode & 0o077 != 0 {
            tracing::warn!(
                file = %path.display(),
                old_mode = %format_args!("{mode:o}"),
                "database file was readable or writable by others; set to 0600"
            );
        }
        file.set_permissions(Permissions::from_mode(FILE_MODE))
            .map_err(|e| io_error("set the mode 0600 of", path, &e))?;
    }
    Ok(())
}

/// Creates the database file and its lock file with mode 0600 if missing, and sets the
/// database, `-wal`, `-shm` and `.lock` files that exist to exactly 0600 (see the module docs).
///
/// Errors: [`StoreError::Locked`] when a file cannot be created or its mode set (the message
/// names the file).
pub fn secure_files(database: &Path) -> Result<(), StoreError> {
    for (suffix, create) in [
        ("", true),
        (".lock", true),
        ("-wal", false),
        ("-shm", false),
    ] {
        let path = sibling(database, suffix);
        let existed = path.exists();
        if !existed && !create {
            continue;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .mode(FILE_MODE)
            .open(&path)
            .map_err(|e| io_error("open", &path, &e))?;
        tighten(&file, &path, existed)?;
    }
    Ok(())
}

/// What [`backup`] copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupReport {
    /// Pages copied (the source's page count at the snapshot).
    pub pages: u64,
    /// Bytes of the copy.
    pub bytes: u64,
}

/// How often [`backup`] retries a step that SQLite answered busy or locked.
const BUSY_RETRIES: u32 = 50;

/// Copies the database at `database` to `to` with SQLite's online backup API, while a server
/// may be running on it: the source is opened read-only and copied in one step (one read
/// transaction, so the copy is the consistent state of one commit, whatever the server writes
/// meanwhile). The copy is written to `<to>.partial` (mode 0600, created anew), synced, checked
/// with `PRAGMA quick_check`, then renamed to `to` (replacing a file there), so `to` is never a
/// half-written copy.
///
/// Errors: [`StoreError::Db`] when the source cannot be read or the copy fails its check;
/// [`StoreError::Locked`] for file errors (the message names the file).
pub fn backup(database: &Path, to: &Path) -> Result<BackupReport, StoreError> {
    if !database.is_file() {
        return Err(StoreError::Locked(format!(
            "no database at {}",
            database.display()
        )));
    }
    let src = Connection::open_with_flags(
        database,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    src.busy_timeout(std::time::Duration::from_secs(5))?;
    let partial = sibling(to, ".partial");
    let _ = std::fs::remove_file(&partial);
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(&partial)
        .map_err(|e| io_error("create", &partial, &e))?;
    tighten(&file, &partial, false)?;
    let result = (|| -> Result<BackupReport, StoreError> {
        let mut dst = Connection::open(&partial)?;
        let pages = {
            let copy = Backup::new_with_names(&src, MAIN_DB, &mut dst, MAIN_DB)?;
            let mut tries = 0;
            loop {
                match copy.step(-1)? {
                    StepResult::Done => break,
                    StepResult::More | StepResult::Busy | StepResult::Locked
                        if tries < BUSY_RETRIES =>
                    {
                        tries += 1;
                        std::thread::sleep(std::time::Duration::from_millis(100));
                    }
                    _ => {
                        return Err(StoreError::Task(
                            "the database stayed busy; the backup was not made".into(),
                        ));
                    }
                }
            }
            u64::try_from(copy.progress().pagecount).unwrap_or_default()
        };
        let check: String = dst.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
        if check != "ok" {
            return Err(StoreError::Corrupt(format!(
                "the copy fails quick_check: {check}"
            )));
        }
        drop(dst);
        file.sync_all()
            .map_err(|e| io_error("sync", &partial, &e))?;
        let bytes = file.metadata().map(|m| m.len()).unwrap_or_default();
        Ok(BackupReport { pages, bytes })
    })();
    match result {
        Ok(report) => {
            std::fs::rename(&partial, to).map_err(|e| io_error("rename the copy to", to, &e))?;
            Ok(report)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}
