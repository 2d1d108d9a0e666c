//! [`Backend`] for [`PgStore`]: each operation is the inherent method of the same name (the
//! modules beside this one), so the trait adds no behaviour of its own.

use std::collections::HashMap;

use guestlist_core::connector::Claims;
use guestlist_core::model::{
    Actor, ApprovalRequest, Decision, Event, Flow, HistoryEntry, RequestPage, Status,
};
use guestlist_core::policy::{MessageKind, Policy};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use super::PgStore;
use crate::store::audit::{AuditAction, AuditRecord};
use crate::store::backend::{
    AuditExportPage, Backend, BackendKind, ClusterSignals, ExportCursor, JobLock,
};
use crate::store::export::AccessExport;
use crate::store::privacy::Erased;
use crate::store::reopen::ReopenOutcome;
use crate::store::retention::RetentionCutoffs;
use crate::store::{RequestApprovalOutcome, StoreError};

#[async_trait::async_trait]
impl Backend for PgStore {
    fn kind(&self) -> BackendKind {
        BackendKind::Postgres
    }

    async fn ping(&self) -> Result<(), StoreError> {
        PgStore::ping(self).await
    }

    async fn check_status(
        &self,
        claims: &Claims,
        policy: &Policy,
        now: OffsetDateTime,
    ) -> Result<(Option<MessageKind>, Option<Event>), StoreError> {
        PgStore::check_status(self, claims, policy, now).await
    }

    async fn request_approval_flow(
        &self,
        claims: &Claims,
        flow: Flow,
        policy: &Policy,
        now: OffsetDateTime,
        retry_window: time::Duration,
    ) -> Result<RequestApprovalOutcome, StoreError> {
        PgStore::request_approval_flow(self, claims, flow, policy, now, retry_window).await
    }

    async fn requests_of_email(&self, email: &str) -> Result<Vec<ApprovalRequest>, StoreError> {
        PgStore::requests_of_email(self, email).await
    }

    async fn complete_external(
        &self,
        id: Uuid,
        submitted: &serde_json::Map<String, Value>,
        now: OffsetDateTime,
    ) -> Result<Option<Event>, StoreError> {
        PgStore::complete_external(self, id, submitted, now).await
    }

    async fn expire(&self, id: Uuid, now: OffsetDateTime) -> Result<Option<Event>, StoreError> {
        PgStore::expire(self, id, now).await
    }

    async fn escalate_due(
        &self,
        cuts: &[crate::store::escalation::EscalationCut],
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        PgStore::escalate_due(self, cuts, now, limit).await
    }

    async fn get(&self, id: Uuid) -> Result<ApprovalRequest, StoreError> {
        PgStore::get(self, id).await
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
        PgStore::list_scoped(self, scope, since, status, q, cursor, limit).await
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
        PgStore::decide_all(self, id, decision, actor, if_match, idempotency_key, now).await
    }

    async fn history(&self, id: Uuid) -> Result<Vec<HistoryEntry>, StoreError> {
        PgStore::history(self, id).await
    }

    async fn reopen(
        &self,
        id: Uuid,
        reason: &str,
        actor: &Actor,
        if_match: u64,
        now: OffsetDateTime,
    ) -> Result<ReopenOutcome, StoreError> {
        PgStore::reopen(self, id, reason, actor, if_match, now).await
    }

    async fn events_after(&self, after: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
        PgStore::events_after(self, after, limit).await
    }

    async fn latest_event_seq(&self) -> Result<u64, StoreError> {
        PgStore::latest_event_seq(self).await
    }

    async fn listen_events(&self) -> Result<Option<ClusterSignals>, StoreError> {
        PgStore::listen_events(self).await
    }

    async fn reminded(&self) -> Result<HashMap<Uuid, OffsetDateTime>, StoreError> {
        PgStore::reminded(self).await
    }

    async fn record_reminded(&self, ids: &[Uuid], now: OffsetDateTime) -> Result<(), StoreError> {
        PgStore::record_reminded(self, ids, now).await
    }

    async fn pending_due(
        &self,
        created_by: i64,
        reminded_by: i64,
        limit: usize,
    ) -> Result<(u64, Vec<ApprovalRequest>), StoreError> {
        PgStore::pending_due(self, created_by, reminded_by, limit).await
    }

    async fn record_reminded_due(
        &self,
        created_by: i64,
        reminded_by: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        PgStore::record_reminded_due(self, created_by, reminded_by, now).await
    }

    async fn counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        PgStore::counts(self).await
    }

    async fn status_counts(&self) -> Result<[(Status, u64); 4], StoreError> {
        PgStore::status_counts(self).await
    }

    fn render_metrics(&self) -> String {
        let mut out = self.checks.render_metrics();
        out.push_str(&self.cache.render_metrics());
        out
    }

    async fn audit(
        &self,
        at: OffsetDateTime,
        action: AuditAction,
        request_id: Option<Uuid>,
        actor: &Actor,
        detail: Value,
    ) -> Result<u64, StoreError> {
        PgStore::audit(self, at, action, request_id, actor, detail).await
    }

    async fn audit_page(
        &self,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        PgStore::audit_page(self, after_seq, limit).await
    }

    async fn audit_export_page(
        &self,
        since: Option<OffsetDateTime>,
        until: Option<OffsetDateTime>,
        after: ExportCursor,
        limit: usize,
    ) -> Result<AuditExportPage, StoreError> {
        PgStore::audit_export_page(self, since, until, after, limit).await
    }

    async fn set_tombstone_key(&self, key: Vec<u8>) -> Result<(), StoreError> {
        PgStore::set_tombstone_key(self, key).await
    }

    async fn ensure_tombstone_key(&self) -> Result<(), StoreError> {
        PgStore::ensure_tombstone_key(self).await
    }

    async fn is_tombstoned(&self, canonical_email: &str) -> Result<bool, StoreError> {
        PgStore::is_tombstoned(self, canonical_email).await
    }

    async fn erase_email(
        &self,
        canonical_email: &str,
        keep_denial: bool,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<Erased, StoreError> {
        PgStore::erase_email(self, canonical_email, keep_denial, actor, now).await
    }

    async fn checkpoint_truncate(&self) -> Result<(), StoreError> {
        PgStore::checkpoint_truncate(self).await
    }

    async fn access_export(
        &self,
        email_address: &str,
        now: OffsetDateTime,
    ) -> Result<AccessExport, StoreError> {
        PgStore::access_export(self, email_address, now).await
    }

    async fn retention_batch(
        &self,
        cut: RetentionCutoffs,
        limit: usize,
        now: OffsetDateTime,
    ) -> Result<Erased, StoreError> {
        PgStore::retention_batch(self, cut, limit, now).await
    }

    async fn compact_events(
        &self,
        before: OffsetDateTime,
        limit: usize,
    ) -> Result<u64, StoreError> {
        PgStore::compact_events(self, before, limit).await
    }

    async fn drop_idempotency(
        &self,
        before: OffsetDateTime,
        limit: usize,
    ) -> Result<u64, StoreError> {
        PgStore::drop_idempotency(self, before, limit).await
    }

    async fn job_cursor(&self, name: &str) -> Result<Option<u64>, StoreError> {
        PgStore::job_cursor(self, name).await
    }

    async fn set_job_cursor(&self, name: &str, seq: u64) -> Result<(), StoreError> {
        PgStore::set_job_cursor(self, name, seq).await
    }

    async fn try_job_lock(&self, name: &str) -> Result<Option<JobLock>, StoreError> {
        Ok(self
            .try_job_lock_guard(name)
            .await?
            .map(|guard| JobLock::holding(Box::new(guard))))
    }
}
