//! The store interface (issue 13 "one store interface with two implementations"): every
//! operation the server performs on its database, as one async trait, [`Backend`], implemented
//! by [`SqliteStore`](super::SqliteStore) (one process, embedded, the default) and by the
//! PostgreSQL store in `store/pg` (several replicas sharing one database). The rest of the
//! server holds a [`Store`](super::Store), a cheap-to-clone `Arc<dyn Backend>`, and never knows
//! which one it talks to.
//!
//! Contract shared by both implementations (the server's test suite runs on each,
//! `GUESTLIST_TEST_STORE=sqlite|postgres`):
//!
//! - Every write has committed (durably: SQLite `synchronous=FULL`, PostgreSQL
//!   `synchronous_commit=on`) before its future resolves, so an answered call survives a
//!   `kill -9` of the process.
//! - The state machine's rules (idempotency, the retry window, optimistic concurrency, denial of
//!   the same person across identity providers, erasure, reopen) are the same transactions on
//!   both; `docs/CONTRACTS.md` §1–2 and §4 describe what callers see.
//! - Errors are [`StoreError`]; a database that cannot be reached is
//!   [`StoreError::Unavailable`] (HTTP 503 `store.unavailable`), returned quickly (PostgreSQL:
//!   the pool's acquire timeout, about 1 s) rather than after Entra's 20 s.
//!
//! SQLite-only maintenance stays off the trait, on [`SqliteStore`](super::SqliteStore) (reach it
//! through [`Backend::sqlite`]): the online backup (`pg_dump` does that for PostgreSQL), the
//! 0600 file modes, the `<database>.lock` file, and [`SqliteStore::verify_check_index`]
//! (PostgreSQL's check-status cache holds only what was read from the table, under a lease:
//! `pg/check_cache.rs`).
//!
//! [`SqliteStore`]: super::SqliteStore
//! [`SqliteStore::verify_check_index`]: super::SqliteStore::verify_check_index

use std::collections::HashMap;

use guestlist_core::connector::Claims;
use guestlist_core::model::{Actor, ApprovalRequest, Decision, Event, HistoryEntry, RequestPage};
use guestlist_core::model::{Flow, Status};
use guestlist_core::policy::{MessageKind, Policy};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::duties::Scope;

use super::audit::{AuditAction, AuditRecord};
use super::export::{AccessExport, AuditExportRecord};
use super::privacy::Erased;
use super::reopen::ReopenOutcome;
use super::retention::RetentionCutoffs;
use super::{RequestApprovalOutcome, SqliteStore, StoreError};

/// Where the audit export ([`Backend::audit_export_page`]) resumes: the last `history.id` and the
/// last `audit_log.seq` already returned (or skipped by the time range), and which source is
/// finished (not read again: rows committed after the export started may be left out, as a
/// snapshot would). `Default` starts at the beginning.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportCursor {
    /// Decisions (`history` rows) with an id above this one are still to come.
    pub history_after: u64,
    /// Operations (`audit_log` rows) with a seq above this one are still to come.
    pub audit_after: u64,
    /// Every decision has been returned.
    pub history_done: bool,
    /// Every operation has been returned.
    pub audit_done: bool,
}

/// One page of the audit export ([`Backend::audit_export_page`]).
#[derive(Debug, Clone, Default)]
pub struct AuditExportPage {
    /// Up to `limit` records in time order (decisions before operations at the same instant).
    pub records: Vec<AuditExportRecord>,
    /// Where the next page starts; `None` when the export is complete.
    pub next: Option<ExportCursor>,
    /// How many database pages (keyset reads of up to
    /// [`AUDIT_PAGE`](super::export::AUDIT_PAGE) rows) this call read: lets a test see that a
    /// stalled reader stops the reading.
    pub pages_read: u64,
}

/// A cluster-wide lock on a background job, held while the value lives
/// ([`Backend::try_job_lock`]). [`JobLock::release`] lets go at once; dropping it also releases
/// the lock, later (PostgreSQL: when the server notices the holding session closed; SQLite:
/// nothing to release, one process owns the database).
pub struct JobLock {
    held: Option<Box<dyn HeldLock>>,
}

/// What a store holds for a [`JobLock`] (e.g. the PostgreSQL session that took
/// `pg_try_advisory_lock`).
#[async_trait::async_trait]
pub trait HeldLock: Send + Sync {
    /// Lets go of the lock and returns once another replica can take it. Never fails: when
    /// the explicit release cannot be sent, the lock goes with its session.
    async fn release(self: Box<Self>);
}

impl JobLock {
    /// A lock that holds nothing: for a store only one process can open (SQLite).
    pub fn local() -> JobLock {
        JobLock { held: None }
    }

    /// A lock released by `held` ([`HeldLock::release`], or its drop).
    pub fn holding(held: Box<dyn HeldLock>) -> JobLock {
        JobLock { held: Some(held) }
    }

    /// Releases the lock now: when this returns, another replica's `try_job_lock` gets it
    /// (a dropped lock is released only once the database has seen its session close).
    pub async fn release(mut self) {
        if let Some(held) = self.held.take() {
            held.release().await;
        }
    }
}

impl std::fmt::Debug for JobLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobLock")
            .field("held", &self.held.is_some())
            .finish()
    }
}

/// What the event listener of a shared database reports ([`Backend::listen_events`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterSignal {
    /// Events were committed (by any replica, this one included), numbered up to about this
    /// sequence number (a hint: read from the last seen number).
    Event(u64),
    /// The listener (re)connected, or heard nothing for a while (a periodic catch-up):
    /// notifications may have been missed, read [`Backend::events_after`] from the last seen
    /// sequence number.
    Resync,
}

/// The stream of [`Backend::listen_events`]. It ends (or yields errors) only when the store is
/// closed; a lost connection is retried inside and reported as [`ClusterSignal::Resync`].
pub type ClusterSignals = futures::stream::BoxStream<'static, Result<ClusterSignal, StoreError>>;

/// Which implementation a [`Backend`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// One SQLite file owned by one process ([`SqliteStore`]).
    Sqlite,
    /// A PostgreSQL database shared by any number of replicas.
    Postgres,
}

/// Every operation of the server's store; see the module docs for the shared contract. All
/// methods are safe to call concurrently. Times are UTC; `limit`s are row counts.
#[async_trait::async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Which implementation this is.
    fn kind(&self) -> BackendKind;

    /// The SQLite store behind this backend, for SQLite-only maintenance (backup, the check
    /// index's self-check); `None` on PostgreSQL.
    fn sqlite(&self) -> Option<&SqliteStore> {
        None
    }

    /// Whether the database answers (`SELECT 1`), for `/readyz`.
    ///
    /// Errors: [`StoreError::Unavailable`] when it cannot be reached.
    async fn ping(&self) -> Result<(), StoreError>;

    // ----- The connector calls (docs/CONTRACTS.md §1–2) -----

    /// The "check approval status" decision (seed `002_*`): the block kind for this sign-up, or
    /// `None` for Continue. A pending request past its expiry is marked expired first (a write,
    /// whose event is returned to be published).
    ///
    /// Errors: [`StoreError`] on database failure.
    async fn check_status(
        &self,
        claims: &Claims,
        policy: &Policy,
        now: OffsetDateTime,
    ) -> Result<(Option<MessageKind>, Option<Event>), StoreError>;

    /// The "request approval" decision (seed `002_*`), in one transaction: store a new pending
    /// request, or apply the policy, or answer for the request already stored under the same
    /// identity key. An identical call within `retry_window` of the stored one is Entra's retry
    /// and gets the first call's answer (`REQUESTED`), so retries and bursts (on any replica)
    /// create one request and count one attempt.
    ///
    /// Errors: [`StoreError`] on database failure.
    async fn request_approval(
        &self,
        claims: &Claims,
        policy: &Policy,
        now: OffsetDateTime,
        retry_window: time::Duration,
    ) -> Result<RequestApprovalOutcome, StoreError> {
        self.request_approval_flow(claims, Flow::Workforce, policy, now, retry_window)
            .await
    }

    /// [`Backend::request_approval`] of a call that came through the user flow `flow`
    /// (issue 17): a new request is stored with it (an external one auto-approved by a rule is
    /// completed at once); a stored request keeps the flow it was created with.
    ///
    /// Errors: [`StoreError`] on database failure.
    async fn request_approval_flow(
        &self,
        claims: &Claims,
        flow: Flow,
        policy: &Policy,
        now: OffsetDateTime,
        retry_window: time::Duration,
    ) -> Result<RequestApprovalOutcome, StoreError>;

    // ----- The external-tenant flow (issue 17) -----

    /// Every request of the canonical e-mail `email` (all identity providers), oldest first:
    /// what the extension endpoints need to tell an approved person coming back from one who
    /// already finished (`docs/CONTRACTS.md` §2).
    ///
    /// Errors: [`StoreError`] on database failure.
    async fn requests_of_email(&self, email: &str) -> Result<Vec<ApprovalRequest>, StoreError>;

    /// Marks the approved external-flow request `id` completed at `now` (its person's sign-up
    /// continued, so Entra created the account): version bumped, history `completed` by the
    /// user flow with the claims of the completing call (`submitted`: what the account is
    /// created with; an erasure scrubs them like every history claim), event
    /// `request.completed`. `None` (nothing written) when the request is not an approved, not
    /// yet completed, external one.
    ///
    /// Errors: [`StoreError`] on database failure.
    async fn complete_external(
        &self,
        id: Uuid,
        submitted: &serde_json::Map<String, Value>,
        now: OffsetDateTime,
    ) -> Result<Option<Event>, StoreError>;

    /// Marks a pending request expired. Returns the event, or `None` if it was no longer
    /// pending.
    ///
    /// Errors: [`StoreError`] on database failure.
    async fn expire(&self, id: Uuid, now: OffsetDateTime) -> Result<Option<Event>, StoreError>;

    // ----- The approver API (docs/CONTRACTS.md §4) -----

    /// One request by id.
    ///
    /// Errors: [`StoreError::NotFound`].
    async fn get(&self, id: Uuid) -> Result<ApprovalRequest, StoreError>;

    /// A page of requests in stable order (`created_at`, then `id`), optionally filtered by
    /// status and a case-insensitive search over e-mail, names and company; `limit` is clamped
    /// to 1..=500; an undecodable cursor restarts at the beginning. Same as
    /// [`Backend::list_page`] without `since`.
    ///
    /// Errors: [`StoreError`] on database failure.
    async fn list(
        &self,
        status: Option<Status>,
        q: Option<&str>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<RequestPage, StoreError> {
        self.list_page(None, status, q, cursor, limit).await
    }

    /// [`Backend::list`], or with `since = Some(m)` the requests whose change sequence number
    /// is above `m`, in change order, with the page's high-water mark and the ids erased in
    /// between (see `SqliteStore::list_page` for the exact rules of `change_seq`).
    ///
    /// Errors: [`StoreError`] on database failure.
    async fn list_page(
        &self,
        since: Option<u64>,
        status: Option<Status>,
        q: Option<&str>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<RequestPage, StoreError> {
        self.list_scoped(&Scope::everything(), since, status, q, cursor, limit)
            .await
    }

    /// [`Backend::list_page`] of the requests in `scope` only (issue 14 §2: the caller's
    /// routes, [`Scope`]), filtered in SQL so paging and `since` work as without a scope.
    ///
    /// Errors: [`StoreError`] on database failure.
    async fn list_scoped(
        &self,
        scope: &Scope,
        since: Option<u64>,
        status: Option<Status>,
        q: Option<&str>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<RequestPage, StoreError>;

    /// Applies an approver's decision with optimistic concurrency and idempotency; returns the
    /// request after it and the decided request's event, if it changed (see
    /// [`Backend::decide_all`]).
    ///
    /// Errors: [`StoreError::IdempotencyKeyReused`], [`StoreError::VersionMismatch`],
    /// [`StoreError::AlreadyDecided`], [`StoreError::NotFound`].
    async fn decide(
        &self,
        id: Uuid,
        decision: &Decision,
        actor: &Actor,
        if_match: Option<u64>,
        idempotency_key: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<(ApprovalRequest, Option<Event>), StoreError> {
        let (r, events) = self
            .decide_all(id, decision, actor, if_match, idempotency_key, now)
            .await?;
        Ok((r, events.into_iter().next()))
    }

    /// [`Backend::decide`], returning every event to publish: the decided request's first,
    /// then, for a denial, one per other pending request of the same canonical e-mail, which
    /// the same transaction denies too (issue 10 §6).
    ///
    /// Errors: as [`Backend::decide`].
    async fn decide_all(
        &self,
        id: Uuid,
        decision: &Decision,
        actor: &Actor,
        if_match: Option<u64>,
        idempotency_key: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<(ApprovalRequest, Vec<Event>), StoreError>;

    /// The audit trail of a request, oldest first.
    ///
    /// Errors: [`StoreError::NotFound`] when the request does not exist.
    async fn history(&self, id: Uuid) -> Result<Vec<HistoryEntry>, StoreError>;

    /// Reopens the denied request `id` and the requests its denial denied with it (issue 12),
    /// audited as `request.reopen` with `reason`.
    ///
    /// Errors: [`StoreError::NotFound`]; [`StoreError::VersionMismatch`].
    async fn reopen(
        &self,
        id: Uuid,
        reason: &str,
        actor: &Actor,
        if_match: u64,
        now: OffsetDateTime,
    ) -> Result<ReopenOutcome, StoreError>;

    // ----- Events (`/api/events`, webhooks, reminders) -----

    /// Stored events with `seq > after`, in order, at most `limit`.
    ///
    /// Errors: [`StoreError`] on database failure or an unreadable row.
    async fn events_after(&self, after: u64, limit: usize) -> Result<Vec<Event>, StoreError>;

    /// The highest stored event sequence number (0 when none).
    ///
    /// Errors: [`StoreError`] on database failure.
    async fn latest_event_seq(&self) -> Result<u64, StoreError>;

    /// Notifications of committed events from every process sharing the database (PostgreSQL
    /// `LISTEN guestlist_events`); `None` when no other process can write to it (SQLite), so
    /// the local publish is complete.
    ///
    /// Errors: [`StoreError::Unavailable`] when the listener cannot connect at first.
    async fn listen_events(&self) -> Result<Option<ClusterSignals>, StoreError> {
        Ok(None)
    }

    // ----- Reminders -----

    /// When each pending request was last reminded about.
    ///
    /// Errors: [`StoreError`] on database failure or an unreadable row.
    async fn reminded(&self) -> Result<HashMap<Uuid, OffsetDateTime>, StoreError>;

    /// Records that `ids` were reminded about at `now`, and forgets requests no longer pending.
    ///
    /// Errors: [`StoreError`] on database failure.
    async fn record_reminded(&self, ids: &[Uuid], now: OffsetDateTime) -> Result<(), StoreError>;

    /// How many pending requests were created at or before `created_by` (unix seconds) and not
    /// reminded about after `reminded_by` (unix seconds), and the oldest `limit` of them.
    ///
    /// Errors: [`StoreError`] on database failure.
    async fn pending_due(
        &self,
        created_by: i64,
        reminded_by: i64,
        limit: usize,
    ) -> Result<(u64, Vec<ApprovalRequest>), StoreError>;

    /// Records every request [`Backend::pending_due`] counts as reminded at `now` (unix
    /// seconds), in one set-based write, and forgets requests no longer pending.
    ///
    /// Errors: [`StoreError`] on database failure.
    async fn record_reminded_due(
        &self,
        created_by: i64,
        reminded_by: i64,
        now: i64,
    ) -> Result<(), StoreError>;

    // ----- Escalation (issue 14 §2) -----

    /// Marks escalated at `now` the pending requests of each cut's route created before its
    /// cutoff and not escalated yet, oldest first, at most `limit` in all, in one transaction:
    /// each gets `escalated_at` and a change sequence number (so `?since=` returns it; the
    /// version is kept) and an event `request.escalated`
    /// ([`EVENT_REQUEST_ESCALATED`](super::escalation::EVENT_REQUEST_ESCALATED)), which are
    /// returned to be published. A request is escalated once, whatever the replicas and
    /// restarts (the mark is in the same transaction as the event).
    ///
    /// Errors: [`StoreError`] on database failure.
    async fn escalate_due(
        &self,
        cuts: &[super::escalation::EscalationCut],
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError>;

    // ----- Metrics -----

    /// Stored requests per status, from the table (`GROUP BY status`).
    ///
    /// Errors: [`StoreError`] on database failure.
    async fn counts(&self) -> Result<Vec<(String, u64)>, StoreError>;

    /// Stored requests per status (pending, approved, denied, expired) for the `/metrics`
    /// gauges, cheaply (SQLite: from the check index in memory).
    ///
    /// Errors: [`StoreError`] on database failure.
    async fn status_counts(&self) -> Result<[(Status, u64); 4], StoreError>;

    /// The store's own counters for `/metrics`, in the Prometheus text format (0.0.4): on
    /// PostgreSQL the check-status statements and the calls they carried
    /// (`store/pg/check_batch.rs`); on SQLite the WAL checkpoints by who ran them
    /// (`store/writer.rs`).
    fn render_metrics(&self) -> String {
        String::new()
    }

    // ----- Audit of operations (issue 12) -----

    /// Appends one audit row in its own committed transaction; returns its `seq`.
    ///
    /// Errors: [`StoreError`] on database failure.
    async fn audit(
        &self,
        at: OffsetDateTime,
        action: AuditAction,
        request_id: Option<Uuid>,
        actor: &Actor,
        detail: Value,
    ) -> Result<u64, StoreError>;

    /// Audit rows with `after_seq < seq`, oldest first, at most `limit`.
    ///
    /// Errors: [`StoreError`] on database failure or an unreadable row.
    async fn audit_page(
        &self,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError>;

    /// One page of the audit export (`GET /api/audit`): up to `limit` records with
    /// `since <= at < until` after `after`, decisions (`history`) and operations (`audit_log`)
    /// merged in time order. Memory is bounded by `limit` plus one keyset read of each source
    /// (SQLite reads on a dedicated read-only connection with a small page cache, so an export
    /// of a million rows does not fill the reader pool's caches).
    ///
    /// Errors: [`StoreError`] on database failure or an unreadable row.
    async fn audit_export_page(
        &self,
        since: Option<OffsetDateTime>,
        until: Option<OffsetDateTime>,
        after: ExportCursor,
        limit: usize,
    ) -> Result<AuditExportPage, StoreError>;

    // ----- Privacy (issue 12) -----

    /// Sets the denial tombstone key (at least `MIN_TOMBSTONE_KEY_BYTES`).
    ///
    /// Errors: [`StoreError::Corrupt`] if HMAC refuses the key.
    async fn set_tombstone_key(&self, key: Vec<u8>) -> Result<(), StoreError>;

    /// Makes sure a tombstone key is in force, creating one when none was set (SQLite:
    /// `<database>.tombstone-key`), so a denial keeps working across restarts.
    ///
    /// Errors: the key cannot be read or created.
    async fn ensure_tombstone_key(&self) -> Result<(), StoreError>;

    /// Whether the canonical e-mail is blocked by a denial tombstone.
    ///
    /// Errors: the key cannot be loaded; [`StoreError`] on database failure.
    async fn is_tombstoned(&self, canonical_email: &str) -> Result<bool, StoreError>;

    /// Erases every request of `canonical_email` (GDPR Art. 17) in one transaction, with its
    /// `privacy.erase` audit row. With `keep_denial`, a denied person keeps a tombstone.
    ///
    /// Errors: [`StoreError`] on database failure or an unreadable key.
    async fn erase_email(
        &self,
        canonical_email: &str,
        keep_denial: bool,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<Erased, StoreError>;

    /// Makes erased bytes leave the database's write-ahead storage after an erasure (SQLite:
    /// `wal_checkpoint(TRUNCATE)`; PostgreSQL may vacuum the touched tables or do nothing).
    ///
    /// Errors: [`StoreError`] when it could not run (it runs again after the next erasure).
    async fn checkpoint_truncate(&self) -> Result<(), StoreError>;

    /// Everything stored for the canonical form of `email_address` (GDPR Art. 15).
    ///
    /// Errors: [`StoreError::Corrupt`] for an e-mail with no canonical form.
    async fn access_export(
        &self,
        email_address: &str,
        now: OffsetDateTime,
    ) -> Result<AccessExport, StoreError>;

    // ----- Retention (issue 12) -----

    /// Erases at most `limit` requests past `cut`, oldest change first, in one write.
    ///
    /// Errors: [`StoreError`] on database failure.
    async fn retention_batch(
        &self,
        cut: RetentionCutoffs,
        limit: usize,
        now: OffsetDateTime,
    ) -> Result<Erased, StoreError>;

    /// Deletes at most `limit` stored events older than `before`; returns how many.
    ///
    /// Errors: [`StoreError`] on database failure.
    async fn compact_events(&self, before: OffsetDateTime, limit: usize)
    -> Result<u64, StoreError>;

    /// Deletes at most `limit` idempotency records stored before `before`; returns how many.
    ///
    /// Errors: [`StoreError`] on database failure.
    async fn drop_idempotency(
        &self,
        before: OffsetDateTime,
        limit: usize,
    ) -> Result<u64, StoreError>;

    // ----- Cluster-wide background jobs (issue 13 §2) -----

    /// Takes the cluster-wide lock of the background job `name` (`reminders`, `expiry`,
    /// `retention`) without waiting: `Some` when this process may run it now (hold the
    /// [`JobLock`] for the run), `None` when another replica is running it. SQLite: always
    /// `Some` (one process owns the database).
    ///
    /// Errors: [`StoreError::Unavailable`] when the database cannot be reached.
    async fn try_job_lock(&self, name: &str) -> Result<Option<JobLock>, StoreError> {
        let _ = name;
        Ok(Some(JobLock::local()))
    }

    /// The durable cursor of the background job `name` (the last event `seq` it finished
    /// with), or `None` when it never stored one (issue 14 §5, `store/job_cursor.rs`).
    ///
    /// Errors: [`StoreError::Unavailable`] when the database cannot be reached; [`StoreError`]
    /// on other database failures.
    async fn job_cursor(&self, name: &str) -> Result<Option<u64>, StoreError>;

    /// Stores `seq` as the cursor of job `name`, committed before the future resolves. It only
    /// moves forward (a lower `seq` leaves it as it is). Call it under the job's
    /// [`Backend::try_job_lock`].
    ///
    /// Errors: as [`Backend::job_cursor`].
    async fn set_job_cursor(&self, name: &str, seq: u64) -> Result<(), StoreError>;
}
