//! Requests erased on the approval service (issue 12 item 8): their personal data was deleted
//! there (retention, or a data-protection erasure request), and the cache must not keep a
//! copy. A `since=` sync lists them in [`guestlist_core::model::RequestPage::erased`]; the live
//! stream sends a `request.erased` event. Either way [`Cache::erase_requests`] runs.
//!
//! What happens to a decision the approver made on such a request (possibly offline):
//!
//! - **not yet reported** (the outbox row is `queued`, `claimed`, `invited` or `provisioned`):
//!   it cannot apply any more: the server has nothing left to decide. The row becomes `failed`
//!   with the error `request.erased`, whose message says so and gives the remedy (a guest
//!   account already created or invited for it stays in the directory: delete it there if it
//!   should not exist). Its personal data is scrubbed: the label becomes "Erased request
//!   <id prefix>", the stored request keeps no claims and no e-mail, the deny reason and the
//!   server's last answer are dropped. It leaves the status bar after 24 hours and the file
//!   with the other finished items ([`Cache::purge`]).
//! - **finished** (`reported`, `conflict`, or `failed` for another reason): deleted.
//!
//! Deleted rows are overwritten in the file (`PRAGMA secure_delete`, set on every connection
//! by [`super::open_connection`]).

use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use time::OffsetDateTime;

use super::Cache;
use crate::error::{ReviewerError, codes};
use crate::types::OutboxState;

/// What [`Cache::erase_requests`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ErasedReport {
    /// Cached queue requests deleted.
    pub requests: u64,
    /// Unsent decisions turned into `failed` items with the error `request.erased`.
    pub decisions_failed: u64,
    /// Finished outbox items deleted.
    pub decisions_deleted: u64,
}

/// The label of an outbox item whose request was erased: no name, no e-mail.
fn erased_label(id: &str) -> String {
    format!("Erased request {}", id.get(..8).unwrap_or(id))
}

/// The error of an unsent decision whose request was erased, with the remedy.
fn erased_error(directory_object_id: Option<&str>) -> ReviewerError {
    let account = match directory_object_id {
        Some(oid) => format!(
            " A guest account was already created or invited for it (directory object id \
             {oid}); delete it in the directory if it should not exist."
        ),
        None => " Nothing was written to the directory.".to_owned(),
    };
    ReviewerError::new(
        codes::ERASED,
        format!(
            "This request was erased on the approval service (retention or a data-protection \
             erasure request) before your decision was sent, so the decision cannot apply and \
             was not reported.{account} This item disappears by itself."
        ),
    )
}

impl Cache {
    /// Drops the requests `ids` (erased on the server) from the cache in one transaction: the
    /// queue rows, finished outbox items, and unsent decisions turned into scrubbed `failed`
    /// items (see the module docs). Unknown ids are skipped; an id already handled (a `failed`
    /// `request.erased` item) is left as it is, so the same erasure may arrive twice (stream
    /// and sync).
    ///
    /// Errors: `storage.error`.
    pub fn erase_requests(
        &self,
        ids: &[String],
        now: OffsetDateTime,
    ) -> Result<ErasedReport, ReviewerError> {
        let mut report = ErasedReport::default();
        if ids.is_empty() {
            return Ok(report);
        }
        let mut c = self.conn()?;
        let tx = c.transaction()?;
        {
            let mut del_request = tx.prepare_cached("DELETE FROM requests WHERE id = ?1")?;
            let mut del_final = tx.prepare_cached(
                "DELETE FROM outbox WHERE request_id = ?1
                   AND state IN ('reported', 'conflict', 'failed')
                   AND coalesce(json_extract(last_error, '$.code'), '') <> ?2",
            )?;
            let mut unsent = tx.prepare_cached(
                "SELECT request_json, directory_object_id FROM outbox
                 WHERE request_id = ?1 AND state NOT IN ('reported', 'conflict', 'failed')",
            )?;
            let mut fail = tx.prepare_cached(
                "UPDATE outbox SET state = ?2, label = ?3, reason = NULL, request_json = ?4,
                    current_json = NULL, last_error = ?5, not_before_ms = 0, updated_unix = ?6
                 WHERE request_id = ?1",
            )?;
            for id in ids {
                report.requests += del_request.execute([id])? as u64;
                report.decisions_deleted +=
                    del_final.execute(params![id, codes::ERASED.as_str()])? as u64;
                let row: Option<(String, Option<String>)> = unsent
                    .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                let Some((json, object_id)) = row else {
                    continue;
                };
                let mut request: guestlist_core::model::ApprovalRequest =
                    serde_json::from_str(&json)?;
                request.claims.clear();
                request.key.email.clear();
                request.key.issuer_assigned_id.clear();
                fail.execute(params![
                    id,
                    OutboxState::Failed.as_str(),
                    erased_label(id),
                    serde_json::to_string(&request)?,
                    serde_json::to_string(&erased_error(object_id.as_deref()))?,
                    now.unix_timestamp(),
                ])?;
                report.decisions_failed += 1;
            }
        }
        tx.commit()?;
        if report != ErasedReport::default() {
            tracing::info!(
                requests = report.requests,
                decisions_failed = report.decisions_failed,
                decisions_deleted = report.decisions_deleted,
                "erased requests dropped from the cache"
            );
        }
        Ok(report)
    }
}
