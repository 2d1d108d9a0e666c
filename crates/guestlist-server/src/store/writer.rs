//! The writer thread and its group commit (see the [`super`] module docs): every write runs on
//! one thread that owns the only writer connection; the writes waiting when it becomes free (up
//! to [`MAX_BATCH`]) share one transaction, each in its own savepoint, and their callers are
//! answered after the commit. The [`super::check_index`] changes a batch recorded are applied
//! right after its commit.
//!
//! Checkpoints: the writer connection does not checkpoint the WAL itself (SQLite's automatic
//! checkpoint would run inside the commit that crosses 1,000 WAL pages: copying the pages into
//! the database file and an `fsync` of it, while every caller of that batch and of the writes
//! queued behind it waits). A WAL hook reports the WAL's size after each commit; each time the
//! WAL has grown by [`CHECKPOINT_PAGES`] the writer wakes [`checkpointer_loop`], a second thread with its own
//! connection that runs `PRAGMA wal_checkpoint(PASSIVE)` (<https://sqlite.org/wal.html#ckpt>,
//! <https://sqlite.org/c3ref/wal_checkpoint_v2.html>) while the writer goes on appending. The
//! WAL restarts from its beginning at the first write after a checkpoint that copied every
//! frame, which under a sustained load (frames appended while the checkpointer copies) may not
//! happen: once the WAL passes [`WRITER_CHECKPOINT_PAGES`] the writer runs one checkpoint itself
//! (copying only what the checkpointer has not yet copied), so the WAL restarts and stays
//! bounded. When a checkpoint left frames uncopied, the checkpointer runs again after
//! [`CATCH_UP`], so once the writes pause the WAL is copied whole and the next write restarts it. Durability is unchanged:
//! each commit still syncs the WAL (`synchronous=FULL`) before any caller is answered, and a
//! checkpoint only copies committed pages.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use rusqlite::Connection;
use rusqlite::hooks::Wal;

use super::check_index::{CheckIndex, INDEX_CHANGES, index_changes_len, truncate_index_changes};

pub(super) const READERS: usize = 4;

/// Most writes committed together by one transaction of the writer thread.
pub const MAX_BATCH: usize = 256;

/// WAL size, in pages (frames), from which the writer asks [`checkpointer_loop`] for a
/// checkpoint: SQLite's own automatic-checkpoint threshold (4 MiB of 4 KiB pages).
pub(super) const CHECKPOINT_PAGES: i32 = 1000;

/// WAL size, in pages, from which the writer checkpoints itself after a commit (the background
/// checkpointer has not kept up): 64 MiB of 4 KiB pages, which bounds the WAL file.
pub(super) const WRITER_CHECKPOINT_PAGES: i32 = 16 * CHECKPOINT_PAGES;

thread_local! {
    /// The WAL's size in pages after the writer thread's last commit (0: unknown), set by
    /// [`wal_pages_hook`] on the writer thread.
    static WAL_PAGES: Cell<i32> = const { Cell::new(0) };
}

/// `sqlite3_wal_hook` of the writer connection: records the WAL's size after each commit.
/// Registering it also turns off the connection's automatic checkpoint (module docs).
fn wal_pages_hook(_: &Wal, pages: std::ffi::c_int) -> rusqlite::Result<()> {
    WAL_PAGES.with(|p| p.set(pages));
    Ok(())
}

/// WAL checkpoints that completed since the store opened, by who ran them (module docs): for
/// `/metrics` (`guestlist_sqlite_wal_checkpoints_total`) and for the tests, which check that the
/// writer leaves them to the checkpointer.
#[derive(Debug, Default)]
pub(super) struct Checkpoints {
    /// By [`checkpointer_loop`].
    pub(super) background: AtomicU64,
    /// By the writer thread itself (the WAL passed [`WRITER_CHECKPOINT_PAGES`]).
    pub(super) writer: AtomicU64,
}

/// `PRAGMA wal_checkpoint(PASSIVE)` on `conn`: copies the WAL frames no reader still needs
/// into the database file without waiting for any lock. Returns SQLite's
/// `(busy, WAL frames, frames checkpointed)`.
fn checkpoint_passive(conn: &Connection) -> rusqlite::Result<(i64, i64, i64)> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })
}

/// How soon the checkpointer runs again after a checkpoint that left frames uncopied (written
/// while it ran): once the writes pause, everything is copied and the next write restarts the
/// WAL from its beginning.
const CATCH_UP: std::time::Duration = std::time::Duration::from_millis(250);

/// The checkpointer thread (module docs): one passive checkpoint per wake-up from the writer,
/// and again every [`CATCH_UP`] while the last one left frames uncopied. Ends when the writer
/// thread (the only sender) ends. Counts each completed checkpoint in `done.background`.
pub(super) fn checkpointer_loop(
    conn: Connection,
    wake: mpsc::Receiver<()>,
    done: Arc<Checkpoints>,
) {
    let mut behind = false;
    loop {
        let woken = if behind {
            wake.recv_timeout(CATCH_UP).or_else(|e| match e {
                mpsc::RecvTimeoutError::Timeout => Ok(()),
                mpsc::RecvTimeoutError::Disconnected => Err(()),
            })
        } else {
            wake.recv().map_err(|_| ())
        };
        if woken.is_err() {
            return;
        }
        behind = match checkpoint_passive(&conn) {
            Ok((_, frames, copied)) => {
                done.background.fetch_add(1, Ordering::Relaxed);
                copied < frames
            }
            Err(e) => {
                tracing::warn!(error = %e, "WAL checkpoint failed; it runs again");
                true
            }
        };
    }
}

/// Hands a write's result to its caller once the batch's commit is known (`Err`: the commit
/// failed, so nothing of the batch is stored).
pub(super) type Reply = Box<dyn FnOnce(Result<(), String>) + Send>;

/// One write, run by the writer thread inside its batch's transaction. Returns whether it
/// succeeded (its savepoint is kept) and how to answer its caller.
pub(super) type WriteJob = Box<dyn FnOnce(&Connection) -> (bool, Reply) + Send>;

/// The writer thread: batches waiting writes into one transaction (see the module docs). Ends
/// when the [`SqliteStore`](super::SqliteStore) (the only sender) is dropped.
///
/// `checkpoints` wakes the [`checkpointer_loop`] (a channel of capacity 1: a wake-up while one
/// is pending is dropped); the writer's own checkpoints are counted in `done.writer`.
pub(super) fn writer_loop(
    mut conn: Connection,
    jobs: mpsc::Receiver<WriteJob>,
    index: Arc<CheckIndex>,
    checkpoints: mpsc::SyncSender<()>,
    done: Arc<Checkpoints>,
) {
    conn.wal_hook(Some(wal_pages_hook));
    // The WAL's size, in pages, when the checkpointer was last woken (0: not since it restarted).
    let mut woken_at = 0;
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let mut replies: Vec<Reply> = Vec::with_capacity(batch.len());
        let committed = (|| -> Result<(), rusqlite::Error> {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            // A write alone needs no savepoint: when it fails, the transaction is rolled back.
            if batch.len() == 1
                && let Some(job) = batch.pop()
            {
                let (ok, reply) = job(&tx);
                replies.push(reply);
                return if ok {
                    tx.commit()
                } else {
                    truncate_index_changes(0);
                    tx.rollback()
                };
            }
            // Cached statements: `execute_batch` would parse these three again for every write.
            for job in batch.drain(..) {
                tx.prepare_cached("SAVEPOINT write_job")?.execute([])?;
                let mark = index_changes_len();
                let (ok, reply) = job(&tx);
                replies.push(reply);
                if !ok {
                    truncate_index_changes(mark);
                    tx.prepare_cached("ROLLBACK TO write_job")?.execute([])?;
                }
                tx.prepare_cached("RELEASE write_job")?.execute([])?;
            }
            tx.commit()
        })()
        .map_err(|e| e.to_string());
        // The index follows what was committed, before any caller hears of it.
        let changes = INDEX_CHANGES.with(|c| std::mem::take(&mut *c.borrow_mut()));
        if committed.is_ok() {
            index.apply(changes);
        }
        // Jobs of the batch that never ran drop their reply channel: their callers get an error.
        drop(batch);
        for reply in replies {
            reply(committed.clone());
        }
        // After the callers are answered: the WAL's size decides who checkpoints (module docs).
        let pages = WAL_PAGES.with(|p| p.replace(0));
        if pages == 0 {
            continue; // nothing committed
        }
        if pages < woken_at {
            woken_at = 0; // the WAL restarted from its beginning
        }
        if pages >= WRITER_CHECKPOINT_PAGES {
            match checkpoint_passive(&conn) {
                Ok(_) => {
                    done.writer.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "WAL checkpoint failed; the next commit retries it");
                }
            }
            woken_at = 0;
        } else if pages >= woken_at + CHECKPOINT_PAGES {
            // Once per CHECKPOINT_PAGES of WAL growth, not after every commit: a checkpoint
            // that runs while the writer appends leaves the WAL above the threshold.
            let _ = checkpoints.try_send(());
            woken_at = pages;
        }
    }
}
