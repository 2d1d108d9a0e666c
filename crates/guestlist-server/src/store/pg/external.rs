//! The external-tenant flow's storage on PostgreSQL (issue 17; `docs/CONTRACTS.md` §2): the
//! counterpart of the SQLite store's `external.rs`, on the columns of `V5__flow.sql`.

use deadpool_postgres::Transaction;
use guestlist_core::model::{Actor, ApprovalRequest, Event};
use time::OffsetDateTime;
use uuid::Uuid;

use super::rows::{COLUMNS, add_event, add_history, get_by_id, rows_to_requests, upsert};
use super::{PgStore, TxResult, db_err, lock_email, micros};
use crate::store::StoreError;
use crate::store::external::{EVENT_REQUEST_COMPLETED, completable, completed, completion_detail};
use crate::store::rows::search_text;

async fn complete_tx(
    tx: &Transaction<'_>,
    id: Uuid,
    submitted: &serde_json::Map<String, serde_json::Value>,
    now: OffsetDateTime,
) -> TxResult<Option<Event>> {
    let Some(found) = get_by_id(tx, id, false).await? else {
        return Ok(None);
    };
    // The person's lock, as every write of their requests takes it.
    lock_email(tx, &found.key.email).await?;
    let Some(r) = get_by_id(tx, id, true).await? else {
        return Ok(None);
    };
    if !completable(&r) {
        return Ok(None);
    }
    let r = completed(r, now);
    let claims = r
        .typed_claims()
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    upsert(tx, &r, &search_text(&claims)).await?;
    add_history(
        tx,
        &r,
        "completed",
        &Actor::user_flow(),
        completion_detail(submitted),
    )
    .await?;
    Ok(Some(add_event(tx, EVENT_REQUEST_COMPLETED, &r).await?))
}

impl PgStore {
    /// Every request of the canonical e-mail `email`, oldest first (index `requests_key`).
    ///
    /// Errors: [`StoreError`] on database failure; [`StoreError::Unavailable`] when the
    /// database cannot be reached.
    pub async fn requests_of_email(&self, email: &str) -> Result<Vec<ApprovalRequest>, StoreError> {
        let client = self.conn().await?;
        let sql =
            format!("SELECT {COLUMNS} FROM requests WHERE email = $1 ORDER BY created_at, id");
        let rows = client.query(&sql, &[&email]).await.map_err(db_err)?;
        rows_to_requests(&rows)
    }

    /// Completes the approved external request `id` (SQLite: `complete_external_job`).
    ///
    /// Errors: as [`PgStore::requests_of_email`].
    pub async fn complete_external(
        &self,
        id: Uuid,
        submitted: &serde_json::Map<String, serde_json::Value>,
        now: OffsetDateTime,
    ) -> Result<Option<Event>, StoreError> {
        let now = micros(now);
        write_tx!(self, |tx| complete_tx(&tx, id, submitted, now).await)
    }
}
