//! Durable per-job cursors (issue 14 §5): how far a background job that follows the event log
//! (today the guest e-mail job, [`crate::guest_email`]) has got, by job name. A job reads
//! [`Backend::events_after`](super::Backend::events_after) from its cursor and advances it only
//! once an event is fully handled, so a crash or restart resumes where it stopped, never
//! before (no duplicate) and never after (nothing lost). Table `job_cursors` (SQLite migration
//! [`MIGRATION`]; PostgreSQL `migrations/postgres/V3__job_cursors.sql`).

use rusqlite::{OptionalExtension, params};

use super::{SqliteStore, StoreError};

/// The SQLite migration that creates `job_cursors` (appended to the store's migrations).
pub(super) const MIGRATION: &str = r#"
    CREATE TABLE job_cursors (
        name TEXT PRIMARY KEY,
        seq INTEGER NOT NULL
    );
"#;

impl SqliteStore {
    /// The cursor of job `name` (an event `seq`), or `None` when the job never stored one.
    ///
    /// Errors: [`StoreError`] on database failure.
    pub fn job_cursor(&self, name: &str) -> Result<Option<u64>, StoreError> {
        self.read(|c| {
            let seq: Option<i64> = c
                .prepare_cached("SELECT seq FROM job_cursors WHERE name = ?1")?
                .query_row(params![name], |r| r.get(0))
                .optional()?;
            Ok(seq.map(|s| u64::try_from(s).unwrap_or_default()))
        })
    }

    /// Stores `seq` as the cursor of job `name`, committed before returning. The cursor only
    /// moves forward: a lower `seq` than the stored one leaves it unchanged.
    ///
    /// Errors: [`StoreError`] on database failure.
    pub async fn set_job_cursor(&self, name: &str, seq: u64) -> Result<(), StoreError> {
        let name = name.to_owned();
        let seq = i64::try_from(seq).unwrap_or(i64::MAX);
        self.write_async(move |tx| {
            tx.prepare_cached(
                "INSERT INTO job_cursors (name, seq) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET seq = MAX(seq, excluded.seq)",
            )?
            .execute(params![name, seq])?;
            Ok(())
        })
        .await
    }
}
