//! Durable per-job cursors on PostgreSQL (issue 14 §5; see
//! [`crate::store::SqliteStore::job_cursor`] for the contract), table `job_cursors`
//! (`migrations/postgres/V3__job_cursors.sql`).

use super::{PgStore, db_err};
use crate::store::StoreError;

impl PgStore {
    /// The cursor of job `name` (an event `seq`), or `None` when the job never stored one.
    ///
    /// Errors: [`StoreError::Unavailable`] when the database cannot be reached;
    /// [`StoreError`] on other database failures.
    pub async fn job_cursor(&self, name: &str) -> Result<Option<u64>, StoreError> {
        let client = self.conn().await?;
        let row = client
            .query_opt("SELECT seq FROM job_cursors WHERE name = $1", &[&name])
            .await
            .map_err(db_err)?;
        let seq: Option<i64> = row.map(|r| r.try_get(0)).transpose().map_err(db_err)?;
        Ok(seq.map(|s| u64::try_from(s).unwrap_or_default()))
    }

    /// Stores `seq` as the cursor of job `name` (committed on return); it only moves forward.
    ///
    /// Errors: as [`PgStore::job_cursor`].
    pub async fn set_job_cursor(&self, name: &str, seq: u64) -> Result<(), StoreError> {
        let seq = i64::try_from(seq).unwrap_or(i64::MAX);
        let client = self.conn().await?;
        client
            .execute(
                "INSERT INTO job_cursors (name, seq) VALUES ($1, $2)
                 ON CONFLICT (name) DO UPDATE SET seq = GREATEST(job_cursors.seq, excluded.seq)",
                &[&name, &seq],
            )
            .await
            .map_err(db_err)?;
        Ok(())
    }
}
