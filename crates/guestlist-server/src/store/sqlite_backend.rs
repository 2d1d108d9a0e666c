//! [`Backend`] for [`SqliteStore`]: reads run the store's sync methods on tokio's blocking pool
//! (a reader connection each); the connector calls go to the writer thread's group commit and
//! are awaited without a blocking thread (`request_approval`, and the expiry write of
//! `check_status`, which otherwise answers from the in-memory check index on the calling task).

use std::collections::HashMap;

use guestlist_core::connector::Claims;
use guestlist_core::model::{
    Actor, ApprovalRequest, Decision, Event, Flow, HistoryEntry, RequestPage, Status,
};
use guestlist_core::policy::{MessageKind, Policy};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use super::audit::{AuditAction, AuditRecord};
use super::backend::{AuditExportPage, Backend, BackendKind, ExportCursor};
use super::export::AccessExport;
use super::privacy::Erased;
use super::reopen::ReopenOutcome;
use super::retention::RetentionCutoffs;
use super::{RequestApprovalOutcome, SqliteStore, StoreError};

impl SqliteStore {
    /// Runs `f` on a clone of the store on tokio's blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&SqliteStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let s = self.clone();
        tokio::task::spawn_blocking(move || f(&s))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }
}

#[async_trait::async_trait]
impl Backend for SqliteStore {
    fn kind(&self) -> BackendKind {
        BackendKind::Sqlite
    }

    fn render_metrics(&self) -> String {
        let (background, writer) = self.wal_checkpoints();
        format!(
            "# HELP guestlist_sqlite_wal_checkpoints_total WAL checkpoints completed, by the checkpoint thread (background) or by the writer itself once the WAL passed 16,000 pages (writer).\n\
             # TYPE guestlist_sqlite_wal_checkpoints_total counter\n\
             guestlist_sqlite_wal_checkpoints_total{{by=\"background\"}} {background}\n\
             guestlist_sqlite_wal_checkpoints_total{{by=\"writer\"}} {writer}\n"
        )
    }

    fn sqlite(&self) -> Option<&SqliteStore> {
        Some(self)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.blocking(|s| s.ping()).await
    }

    async fn check_status(
        &self,
        claims: &Claims,
        policy: &Policy,
        now: OffsetDateTime,
    ) -> Result<(Option<MessageKind>, Option<Event>), StoreError> {
        self.check_status_async(claims, policy, now).await
    }

    async fn request_approval_flow(
        &self,
        claims: &Claims,
        flow: Flow,
        policy: &Policy,
        now: OffsetDateTime,
        retry_window: time::Duration,
    ) -> Result<RequestApprovalOutcome, StoreError> {
        self.request_approval_flow_async(claims, flow, policy, now, retry_window)
            .await
    }

    async fn requests_of_email(&self, email: &str) -> Result<Vec<ApprovalRequest>, StoreError> {
        let email = email.to_owned();
        self.blocking(move |s| s.requests_of_email(&email)).await
    }

    async fn complete_external(
        &self,
        id: Uuid,
        submitted: &serde_json::Map<String, Value>,
        now: OffsetDateTime,
    ) -> Result<Option<Event>, StoreError> {
        self.write_async(super::external::complete_external_job(
            id,
            submitted.clone(),
            now,
        ))
        .await
    }

    async fn expire(&self, id: Uuid, now: OffsetDateTime) -> Result<Option<Event>, StoreError> {
        self.expire_async(id, now).await
    }

    async fn escalate_due(
        &self,
        cuts: &[super::escalation::EscalationCut],
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        self.write_async(super::escalation::escalate_due_job(
            cuts.to_vec(),
            now,
            limit,
        ))
        .await
    }

    async fn get(&self, id: Uuid) -> Result<ApprovalRequest, StoreError> {
        self.blocking(move |s| s.get(id)).await
    }

    async fn list_scoped(
        &self,
        scope: &crate::duties::Scope,
        since: Option<u64>,
        status: Option<Status>,
        q: Option<&str>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<RequestPage, StoreError> {
        let q = q.map(str::to_owned);
        let cursor = cursor.map(str::to_owned);
        let scope = scope.clone();
        self.blocking(move |s| {
            s.list_scoped(
                &scope,
                since,
                status,
                q.as_deref(),
                cursor.as_deref(),
                limit,
            )
        })
        .await
    }

    async fn decide_all(
        &self,
        id: Uuid,
        decision: &Decision,
        actor: &Actor,
        if_match: Option<u64>,
        idempotency_key: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<(ApprovalRequest, Vec<Event>), StoreError> {
        let (decision, actor) = (decision.clone(), actor.clone());
        let key = idempotency_key.map(str::to_owned);
        self.decide_all_async(id, &decision, &actor, if_match, key.as_deref(), now)
            .await
    }

    async fn history(&self, id: Uuid) -> Result<Vec<HistoryEntry>, StoreError> {
        self.blocking(move |s| s.history(id)).await
    }

    async fn reopen(
        &self,
        id: Uuid,
        reason: &str,
        actor: &Actor,
        if_match: u64,
        now: OffsetDateTime,
    ) -> Result<ReopenOutcome, StoreError> {
        let (reason, actor) = (reason.to_owned(), actor.clone());
        self.blocking(move |s| s.reopen(id, &reason, &actor, if_match, now))
            .await
    }

    async fn events_after(&self, after: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
        self.blocking(move |s| s.events_after(after, limit)).await
    }

    async fn latest_event_seq(&self) -> Result<u64, StoreError> {
        self.blocking(|s| s.latest_event_seq()).await
    }

    async fn job_cursor(&self, name: &str) -> Result<Option<u64>, StoreError> {
        let name = name.to_owned();
        self.blocking(move |s| s.job_cursor(&name)).await
    }

    async fn set_job_cursor(&self, name: &str, seq: u64) -> Result<(), StoreError> {
        SqliteStore::set_job_cursor(self, name, seq).await
    }

    async fn reminded(&self) -> Result<HashMap<Uuid, OffsetDateTime>, StoreError> {
        self.blocking(|s| s.reminded()).await
    }

    async fn record_reminded(&self, ids: &[Uuid], now: OffsetDateTime) -> Result<(), StoreError> {
        let ids = ids.to_vec();
        self.blocking(move |s| s.record_reminded(&ids, now)).await
    }

    async fn pending_due(
        &self,
        created_by: i64,
        reminded_by: i64,
        limit: usize,
    ) -> Result<(u64, Vec<ApprovalRequest>), StoreError> {
        self.blocking(move |s| s.pending_due(created_by, reminded_by, limit))
            .await
    }

    async fn record_reminded_due(
        &self,
        created_by: i64,
        reminded_by: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        self.blocking(move |s| s.record_reminded_due(created_by, reminded_by, now))
            .await
    }

    async fn counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.blocking(|s| s.counts()).await
    }

    async fn status_counts(&self) -> Result<[(Status, u64); 4], StoreError> {
        Ok(SqliteStore::status_counts(self))
    }

    async fn audit(
        &self,
        at: OffsetDateTime,
        action: AuditAction,
        request_id: Option<Uuid>,
        actor: &Actor,
        detail: Value,
    ) -> Result<u64, StoreError> {
        let actor = actor.clone();
        self.blocking(move |s| s.audit(at, action, request_id, &actor, detail))
            .await
    }

    async fn audit_page(
        &self,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        self.blocking(move |s| s.audit_page(after_seq, limit)).await
    }

    async fn audit_export_page(
        &self,
        since: Option<OffsetDateTime>,
        until: Option<OffsetDateTime>,
        after: ExportCursor,
        limit: usize,
    ) -> Result<AuditExportPage, StoreError> {
        self.blocking(move |s| s.audit_export_page(since, until, after, limit))
            .await
    }

    async fn set_tombstone_key(&self, key: Vec<u8>) -> Result<(), StoreError> {
        SqliteStore::set_tombstone_key(self, key)
    }

    async fn ensure_tombstone_key(&self) -> Result<(), StoreError> {
        self.blocking(|s| s.ensure_tombstone_key()).await
    }

    async fn is_tombstoned(&self, canonical_email: &str) -> Result<bool, StoreError> {
        SqliteStore::is_tombstoned(self, canonical_email)
    }

    async fn erase_email(
        &self,
        canonical_email: &str,
        keep_denial: bool,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<Erased, StoreError> {
        let (email, actor) = (canonical_email.to_owned(), actor.clone());
        self.blocking(move |s| s.erase_email(&email, keep_denial, &actor, now))
            .await
    }

    async fn checkpoint_truncate(&self) -> Result<(), StoreError> {
        self.blocking(|s| s.checkpoint_truncate()).await
    }

    async fn access_export(
        &self,
        email_address: &str,
        now: OffsetDateTime,
    ) -> Result<AccessExport, StoreError> {
        let email = email_address.to_owned();
        self.blocking(move |s| s.access_export(&email, now)).await
    }

    async fn retention_batch(
        &self,
        cut: RetentionCutoffs,
        limit: usize,
        now: OffsetDateTime,
    ) -> Result<Erased, StoreError> {
        self.blocking(move |s| s.retention_batch(cut, limit, now))
            .await
    }

    async fn compact_events(
        &self,
        before: OffsetDateTime,
        limit: usize,
    ) -> Result<u64, StoreError> {
        self.blocking(move |s| s.compact_events(before, limit))
            .await
    }

    async fn drop_idempotency(
        &self,
        before: OffsetDateTime,
        limit: usize,
    ) -> Result<u64, StoreError> {
        self.blocking(move |s| s.drop_idempotency(before, limit))
            .await
    }
}
