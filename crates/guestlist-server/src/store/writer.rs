//! The writer thread and its group commit (see the [`super`] module docs): every write runs on
//! one thread that owns the only writer connection; the writes waiting when it becomes free (up
//! to [`MAX_BATCH`]) share one transaction, each in its own savepoint, and their callers are
//! answered after the commit. The [`super::check_index`] changes a batch recorded are applied
//! right after its commit.

use std::sync::Arc;
use std::sync::mpsc;

use rusqlite::Connection;

use super::check_index::{CheckIndex, INDEX_CHANGES, index_changes_len, truncate_index_changes};

pub(super) const READERS: usize = 4;

/// Most writes committed together by one transaction of the writer thread.
pub const MAX_BATCH: usize = 256;

/// Hands a write's result to its caller once the batch's commit is known (`Err`: the commit
/// failed, so nothing of the batch is stored).
pub(super) type Reply = Box<dyn FnOnce(Result<(), String>) + Send>;

/// One write, run by the writer thread inside its batch's transaction. Returns whether it
/// succeeded (its savepoint is kept) and how to answer its caller.
pub(super) type WriteJob = Box<dyn FnOnce(&Connection) -> (bool, Reply) + Send>;

/// The writer thread: batches waiting writes into one transaction (see the module docs). Ends
/// when the [`SqliteStore`](super::SqliteStore) (the only sender) is dropped.
pub(super) fn writer_loop(
    mut conn: Connection,
    jobs: mpsc::Receiver<WriteJob>,
    index: Arc<CheckIndex>,
) {
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
    }
}
