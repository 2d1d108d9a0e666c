//! The retention job (issue 12 "Retention"): erases the personal data of requests decided or
//! expired longer ago than `retention.decided_after_days`, and of requests pending longer than
//! `retention.pending_after_days`; compacts stored events older than
//! `retention.events_after_days`; drops idempotency records as old. What "erase" means (the
//! request row, its events, the personal fields of its history, a tombstone for a denial) is in
//! [`crate::store::privacy`].
//!
//! A run works in batches of `retention.batch_size` requests (or events, or records), each its
//! own write, so its memory and the time it holds the writer are bounded whatever the size of
//! the database; runs never overlap (a run asked for while one is in progress does nothing and
//! says so). A run that removed anything appends one `retention.run` audit row with the counts,
//! then checkpoints the WAL so the bytes are gone from disk. The clock is injectable
//! ([`Retention::with_clock`]) for tests.
//!
//! Owns: `[retention]` and the schedule. Must not write SQL (that is [`crate::store`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use guestlist_core::model::{Actor, Event};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::broadcast;

use crate::config::Secret;
use crate::store::audit::AuditAction;
use crate::store::privacy::{ErasureCounts, MIN_TOMBSTONE_KEY_BYTES, read_key_file};
use crate::store::retention::RetentionCutoffs;
use crate::store::{Store, StoreError};

/// `[retention]`: how long personal data is kept, and the denial tombstone key (README
/// "Personal data").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Days a decided (approved, denied) or expired request is kept after its last change.
    pub decided_after_days: u32,
    /// Days a stored event is kept (events replay to `Last-Event-ID`; older clients resync).
    /// Idempotency records are kept as long.
    pub events_after_days: u32,
    /// Days a pending request is kept after its creation; unset: `policy.expire_after_days`
    /// (and never, when that is unset too).
    pub pending_after_days: Option<u32>,
    /// Seconds between runs of the job (0: never runs on its own).
    pub interval_seconds: u64,
    /// Requests (or events, or idempotency records) per batch: per write transaction.
    pub batch_size: usize,
    /// The denial tombstone key (at least 32 bytes): HMAC-SHA256 key of the canonical e-mail
    /// of an erased denial. Unset with `tombstone_key_file` unset: a random key generated into
    /// `<database>.tombstone-key` (0600) on first start.
    pub tombstone_key: Option<Secret>,
    /// A file holding the tombstone key (its bytes, a trailing line break ignored).
    pub tombstone_key_file: Option<PathBuf>,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            decided_after_days: 90,
            events_after_days: 30,
            pending_after_days: None,
            interval_seconds: 3600,
            batch_size: 500,
            tombstone_key: None,
            tombstone_key_file: None,
        }
    }
}

impl RetentionConfig {
    /// The configured tombstone key, `None` when neither key nor file is set (the store then
    /// uses `<database>.tombstone-key`).
    ///
    /// Errors: both set, a key shorter than 32 bytes, or an unreadable file (never the key).
    pub fn tombstone_key(&self) -> Result<Option<Vec<u8>>, String> {
        match (&self.tombstone_key, &self.tombstone_key_file) {
            (Some(_), Some(_)) => {
                Err("set retention.tombstone_key or retention.tombstone_key_file, not both".into())
            }
            (Some(k), None) if k.0.len() < MIN_TOMBSTONE_KEY_BYTES => Err(format!(
                "retention.tombstone_key is shorter than {MIN_TOMBSTONE_KEY_BYTES} bytes (e.g. `openssl rand -hex 32`)"
            )),
            (Some(k), None) => Ok(Some(k.0.clone().into_bytes())),
            (None, Some(f)) => read_key_file(f).map(Some),
            (None, None) => Ok(None),
        }
    }

    /// Checks the keys (for [`crate::Config::validate`]).
    ///
    /// Errors: a message naming the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.batch_size == 0 {
            return Err("retention.batch_size must be at least 1".into());
        }
        self.tombstone_key().map(|_| ())
    }
}

/// The time source of the job.
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

/// What one run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    /// Requests erased, history entries scrubbed, their events and idempotency records.
    #[serde(flatten)]
    pub erased: ErasureCounts,
    /// Erasure batches (write transactions) the run took.
    pub batches: u64,
    /// Old events deleted by compaction.
    pub events_compacted: u64,
    /// Old idempotency records deleted.
    pub idempotency_dropped: u64,
}

impl RunReport {
    fn removed_anything(&self) -> bool {
        self.erased.requests + self.events_compacted + self.idempotency_dropped > 0
    }
}

/// Counters of the job since start (`/metrics`).
#[derive(Debug, Default)]
pub struct RetentionMetrics {
    /// Runs completed.
    pub runs: AtomicU64,
    /// Requests erased.
    pub requests_erased: AtomicU64,
    /// Events deleted by compaction.
    pub events_compacted: AtomicU64,
}

/// The job. Cheap to share behind an `Arc`.
pub struct Retention {
    store: Store,
    config: RetentionConfig,
    pending_after_days: Option<u32>,
    clock: Clock,
    running: tokio::sync::Mutex<()>,
    events: Option<broadcast::Sender<Event>>,
    /// Counters since start.
    pub metrics: RetentionMetrics,
}

impl Retention {
    /// A job on `store` with the wall clock. `expire_after_days` is `policy.expire_after_days`
    /// (the default of `pending_after_days`); `events` gets the `request.erased` events.
    pub fn new(
        store: Store,
        config: RetentionConfig,
        expire_after_days: Option<u32>,
        events: Option<broadcast::Sender<Event>>,
    ) -> Retention {
        Retention {
            store,
            pending_after_days: config.pending_after_days.or(expire_after_days),
            config,
            clock: Arc::new(OffsetDateTime::now_utc),
            running: tokio::sync::Mutex::new(()),
            events,
            metrics: RetentionMetrics::default(),
        }
    }

    /// The same job reading time from `clock` (tests).
    pub fn with_clock(mut self, clock: Clock) -> Retention {
        self.clock = clock;
        self
    }

    /// Runs the job once, in batches (module docs). Returns `None` without doing anything when
    /// a run is already in progress, in this process or (several replicas on one database) in
    /// another one: the run holds the cluster-wide job lock `retention`
    /// ([`crate::store::Backend::try_job_lock`]).
    ///
    /// Errors: [`StoreError`] when a batch fails (the batches before it stay done), or when
    /// the job lock cannot be asked for.
    pub async fn run_once(&self) -> Option<Result<RunReport, StoreError>> {
        let _guard = self.running.try_lock().ok()?;
        let job = match self.store.try_job_lock("retention").await {
            Ok(Some(lock)) => lock,
            Ok(None) => return None,
            Err(e) => return Some(Err(e)),
        };
        let report = self.run_locked().await;
        job.release().await;
        Some(report)
    }

    async fn run_locked(&self) -> Result<RunReport, StoreError> {
        let now = (self.clock)();
        let days = |d: u32| now - time::Duration::days(i64::from(d));
        let cut = RetentionCutoffs {
            decided_before: days(self.config.decided_after_days),
            pending_before: self.pending_after_days.map(days),
        };
        let batch = self.config.batch_size.max(1);
        let mut report = RunReport::default();
        loop {
            let erased = self.store.retention_batch(cut, batch, now).await?;
            let n = erased.counts.requests;
            report.batches += u64::from(n > 0);
            report.erased.add(erased.counts);
            if let Some(tx) = &self.events {
                for e in erased.events {
                    let _ = tx.send(e);
                }
            }
            if n < batch as u64 {
                break;
            }
        }
        let events_before = days(self.config.events_after_days);
        loop {
            let n = self.store.compact_events(events_before, batch).await?;
            report.events_compacted += n;
            if n < batch as u64 {
                break;
            }
        }
        loop {
            let n = self.store.drop_idempotency(events_before, batch).await?;
            report.idempotency_dropped += n;
            if n < batch as u64 {
                break;
            }
        }
        if report.removed_anything() {
            self.store
                .audit(
                    now,
                    AuditAction::Retention,
                    None,
                    &Actor::policy("retention"),
                    serde_json::to_value(report).unwrap_or_default(),
                )
                .await?;
            if let Err(e) = self.store.checkpoint_truncate().await {
                tracing::warn!(error = %e, "retention: WAL checkpoint not done");
            }
            tracing::info!(
                requests = report.erased.requests,
                batches = report.batches,
                events_compacted = report.events_compacted,
                idempotency_dropped = report.idempotency_dropped,
                "retention run erased old personal data"
            );
        }
        self.metrics.runs.fetch_add(1, Ordering::Relaxed);
        self.metrics
            .requests_erased
            .fetch_add(report.erased.requests, Ordering::Relaxed);
        self.metrics
            .events_compacted
            .fetch_add(report.events_compacted, Ordering::Relaxed);
        Ok(report)
    }

    /// Prometheus lines of [`RetentionMetrics`] (appended to `/metrics`).
    pub fn render_metrics(&self) -> String {
        let m = &self.metrics;
        format!(
            "# HELP guestlist_retention_runs_total Retention job runs completed.\n# TYPE guestlist_retention_runs_total counter\nguestlist_retention_runs_total {}\n\
             # HELP guestlist_retention_requests_erased_total Requests erased by the retention job.\n# TYPE guestlist_retention_requests_erased_total counter\nguestlist_retention_requests_erased_total {}\n\
             # HELP guestlist_retention_events_compacted_total Old events deleted by the retention job.\n# TYPE guestlist_retention_events_compacted_total counter\nguestlist_retention_events_compacted_total {}\n",
            m.runs.load(Ordering::Relaxed),
            m.requests_erased.load(Ordering::Relaxed),
            m.events_compacted.load(Ordering::Relaxed),
        )
    }
}

/// Starts the periodic job (every `retention.interval_seconds`, the first run one interval
/// after start; nothing when 0). Ends when `stop` turns true or is dropped.
pub fn start(job: Arc<Retention>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let secs = job.config.interval_seconds;
    if secs == 0 {
        return;
    }
    let every = std::time::Duration::from_secs(secs);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        return;
                    }
                    continue;
                }
            }
            match job.run_once().await {
                Some(Ok(_)) => {}
                None => tracing::info!("retention: a run is still in progress; skipped"),
                Some(Err(e)) => tracing::warn!(error = %e, "retention run failed"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tombstone_key_is_checked_at_start() {
        let short = RetentionConfig {
            tombstone_key: Some(Secret("too short".into())),
            ..RetentionConfig::default()
        };
        let err = short.validate().unwrap_err();
        assert!(err.contains("shorter than 32 bytes"), "{err}");
        assert!(!err.contains("too short"), "the key is never echoed: {err}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key");
        std::fs::write(&file, format!("{}\n", "k".repeat(32))).unwrap();
        let both = RetentionConfig {
            tombstone_key: Some(Secret("k".repeat(32))),
            tombstone_key_file: Some(file.clone()),
            ..RetentionConfig::default()
        };
        assert!(both.validate().is_err());
        let from_file = RetentionConfig {
            tombstone_key_file: Some(file),
            ..RetentionConfig::default()
        };
        assert_eq!(from_file.tombstone_key().unwrap(), Some(vec![b'k'; 32]));
        let missing = RetentionConfig {
            tombstone_key_file: Some(dir.path().join("nope")),
            ..RetentionConfig::default()
        };
        assert!(missing.validate().unwrap_err().contains("cannot read"));
    }
}
