//! Escalation's storage on PostgreSQL (issue 14 §2; `docs/CONTRACTS.md` §6): the counterpart of
//! the SQLite store's `escalation.rs`, on the column of `V6__escalation.sql`.

use deadpool_postgres::Transaction;
use guestlist_core::model::{Actor, Event};
use time::OffsetDateTime;

use super::rows::{COLUMNS, add_event, add_history, rows_to_requests, upsert};
use super::{PgStore, TxResult, micros};
use crate::store::StoreError;
use crate::store::escalation::{
    ESCALATION_RULE, EVENT_REQUEST_ESCALATED, EscalationCut, HISTORY_ESCALATED, escalated,
    history_detail,
};
use crate::store::rows::search_text;

/// The due requests of one route, locked. `SKIP LOCKED`: a request another transaction is
/// writing (a decision holding its person's lock and its row) is left for the next run, so this
/// job never waits on, nor deadlocks with, the approvers' writes; the `WHERE` is re-checked on
/// the row's newest version, so a request decided or escalated meanwhile is not taken.
const DUE_SQL: &str =
    "status = 'pending' AND escalated_at IS NULL AND route = $1 AND created_at < $2
     ORDER BY created_at, id LIMIT $3 FOR UPDATE SKIP LOCKED";

async fn escalate_tx(
    tx: &Transaction<'_>,
    cuts: &[EscalationCut],
    now: OffsetDateTime,
    limit: usize,
) -> TxResult<Vec<Event>> {
    let sql = format!("SELECT {COLUMNS} FROM requests WHERE {DUE_SQL}");
    let statement = tx.prepare_cached(&sql).await?;
    let mut events = Vec::new();
    for cut in cuts {
        let left = limit.saturating_sub(events.len());
        if left == 0 {
            break;
        }
        let left = i64::try_from(left).unwrap_or(i64::MAX);
        let rows = tx
            .query(&statement, &[&cut.route, &cut.cutoff, &left])
            .await?;
        for r in rows_to_requests(&rows)? {
            let r = escalated(r, now);
            let claims = r
                .typed_claims()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            upsert(tx, &r, &search_text(&claims)).await?;
            add_history(
                tx,
                &r,
                HISTORY_ESCALATED,
                &Actor::policy(ESCALATION_RULE),
                history_detail(cut),
            )
            .await?;
            events.push(add_event(tx, EVENT_REQUEST_ESCALATED, &r).await?);
        }
    }
    Ok(events)
}

impl PgStore {
    /// Marks the due requests of `cuts` escalated at `now`, at most `limit`, in one transaction
    /// (SQLite: `escalate_due_job`), each with its history entry; returns their events.
    ///
    /// Errors: [`StoreError`] on database failure; [`StoreError::Unavailable`] when the
    /// database cannot be reached.
    pub async fn escalate_due(
        &self,
        cuts: &[EscalationCut],
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let now = micros(now);
        write_tx!(self, |tx| escalate_tx(&tx, cuts, now, limit).await)
    }
}
