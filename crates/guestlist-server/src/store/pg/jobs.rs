//! Cluster-wide locks of the background jobs (issue 13 §2 "Background work runs once
//! cluster-wide"): `pg_try_advisory_lock` on a connection taken out of the pool and held for
//! the job's run.

use super::{JOB_NS, PgStore, db_err};
use crate::store::{HeldLock, StoreError};

/// Holds a job's session-level advisory lock: the connection that took it, detached from the
/// pool. [`HeldLock::release`] unlocks it (`pg_advisory_unlock`) and waits for the answer, so
/// another replica can take the job at once. Dropping it instead closes that connection, and
/// PostgreSQL releases a session's advisory locks when it sees the session end — also when
/// this process dies, so a crashed replica never keeps a job locked.
pub struct JobLockGuard {
    client: deadpool_postgres::ClientWrapper,
    name: String,
}

#[async_trait::async_trait]
impl HeldLock for JobLockGuard {
    async fn release(self: Box<Self>) {
        let unlocked = self
            .client
            .query_one(
                "SELECT pg_advisory_unlock($1, hashtext($2))",
                &[&JOB_NS, &self.name],
            )
            .await;
        if let Err(e) = unlocked {
            // The session closes when `self` drops, which releases the lock as well.
            tracing::warn!(job = %self.name, error = %e, "job lock: explicit unlock failed");
        }
    }
}

impl PgStore {
    /// Takes the lock of job `name` without waiting (`pg_try_advisory_lock` on
    /// `hashtext(name)` in guestlist's job namespace): `Some(guard)` when this replica may run
    /// the job now (hold the guard for the run), `None` when another replica holds it.
    ///
    /// Errors: [`StoreError::Unavailable`] when the database cannot be reached.
    pub async fn try_job_lock_guard(&self, name: &str) -> Result<Option<JobLockGuard>, StoreError> {
        let client = self.conn().await?;
        let got: bool = client
            .query_one(
                "SELECT pg_try_advisory_lock($1, hashtext($2))",
                &[&JOB_NS, &name],
            )
            .await
            .and_then(|r| r.try_get(0))
            .map_err(db_err)?;
        if !got {
            // Not taken: the connection goes back to the pool as it was.
            return Ok(None);
        }
        Ok(Some(JobLockGuard {
            client: deadpool_postgres::Object::take(client),
            name: name.to_owned(),
        }))
    }
}
