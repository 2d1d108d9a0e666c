//! Stored events in sequence order across replicas (the module docs of [`super`], "Sequence
//! order across replicas"), the listener of their notifications, the reminders' bookkeeping and
//! the counts — the counterparts of the SQLite store's `events.rs`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use guestlist_core::model::{ApprovalRequest, Event, Status};
use time::OffsetDateTime;
use tokio_postgres::{AsyncMessage, Row};
use uuid::Uuid;

use super::rows::{R_COLUMNS, rows_to_requests};
use super::{
    CATCH_UP_INTERVAL, EVENTS_CHANNEL, LOCK_NS, PgStore, SEQ_LOCK, TxResult, db_err, unjson,
};
use crate::store::StoreError;
use crate::store::backend::{ClusterSignal, ClusterSignals};

fn decode_events(rows: &[Row]) -> Result<Vec<(u64, Event)>, StoreError> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let seq: i64 = row.try_get(0).map_err(db_err)?;
        let seq = u64::try_from(seq).unwrap_or_default();
        let kind: String = row.try_get(1).map_err(db_err)?;
        let request_id: Uuid = row.try_get(2).map_err(db_err)?;
        let event = if kind == guestlist_core::model::EVENT_REQUEST_ERASED {
            Event::erased(seq, request_id)
        } else {
            Event::with_request(seq, kind, unjson(row.try_get(3).map_err(db_err)?)?)
        };
        out.push((seq, event));
    }
    Ok(out)
}

impl PgStore {
    /// The highest number of `sequence` (`change_seq` or `event_seq`) below which every number
    /// is final — committed, or never to be: reads the sequence's last value `h`, then takes
    /// and releases the sequence lock exclusively, which waits for every write transaction in
    /// flight (each took the lock shared before its first `nextval`, so any holder of a number
    /// ≤ `h` is one of them). Module docs of [`super`].
    ///
    /// Errors: [`StoreError`] on database failure.
    pub(super) async fn safe_mark(&self, sequence: &str) -> Result<u64, StoreError> {
        let mut client = self.conn().await?;
        let tx = client.transaction().await.map_err(db_err)?;
        // Only our two sequence names reach here (no user text in the SQL).
        let sql = match sequence {
            "event_seq" => "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM event_seq",
            _ => "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM change_seq",
        };
        let h: i64 = tx
            .query_one(sql, &[])
            .await
            .and_then(|r| r.try_get(0))
            .map_err(db_err)?;
        tx.execute(
            "SELECT pg_advisory_xact_lock($1, $2)",
            &[&LOCK_NS, &SEQ_LOCK],
        )
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(u64::try_from(h).unwrap_or_default())
    }

    /// Stored events with `seq > after`, oldest first, at most `limit`, never skipping one that
    /// commits later with a lower number (module docs of [`super`]).
    ///
    /// Errors: [`StoreError`] on database failure or an unreadable row.
    pub async fn events_after(&self, after: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
        const SQL: &str = "SELECT seq, kind, request_id, body FROM events
                           WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3";
        let after_i = i64::try_from(after).unwrap_or(i64::MAX);
        let limit_i = i64::try_from(limit).unwrap_or(i64::MAX);
        {
            let client = self.conn().await?;
            let rows = client
                .query(SQL, &[&after_i, &i64::MAX, &limit_i])
                .await
                .map_err(db_err)?;
            let found = decode_events(&rows)?;
            // Gap-free from `after + 1`: every number up to the last one read is committed, so
            // none can appear below it later.
            if found
                .iter()
                .enumerate()
                .all(|(i, (seq, _))| *seq == after + 1 + i as u64)
            {
                return Ok(found.into_iter().map(|(_, e)| e).collect());
            }
        }
        let mark = i64::try_from(self.safe_mark("event_seq").await?).unwrap_or(i64::MAX);
        let client = self.conn().await?;
        let rows = client
            .query(SQL, &[&after_i, &mark, &limit_i])
            .await
            .map_err(db_err)?;
        Ok(decode_events(&rows)?.into_iter().map(|(_, e)| e).collect())
    }

    /// The sequence number where a new event stream starts: the safe mark of the event
    /// sequence (every event at or below it has committed or never will), 0 when none.
    ///
    /// Errors: [`StoreError`] on database failure.
    pub async fn latest_event_seq(&self) -> Result<u64, StoreError> {
        self.safe_mark("event_seq").await
    }

    /// Wakes this replica's notifier task after a commit (never waits): it sends one
    /// notification on [`EVENTS_CHANNEL`] after every commit that woke it, for a whole group of
    /// commits at once (module docs of [`super`], "Notifications after commit").
    pub(super) fn wake_listeners(&self) {
        // Full: a wake is pending, and its notification is sent after this commit.
        let _ = self.notifier.try_send(());
    }

    /// Notifications of committed events from every replica (`LISTEN guestlist_events` on a
    /// dedicated connection, not pooled). A lost connection is retried (every 250 ms to 2 s)
    /// and reported as [`ClusterSignal::Resync`] once back; so is every [`CATCH_UP_INTERVAL`]
    /// that passes without a notification, so an event whose notification was never sent (its
    /// replica died between the commit and the notification) is read within about that
    /// interval. The stream ends when dropped.
    ///
    /// Errors: [`StoreError::Unavailable`] when the first connection cannot be made.
    pub async fn listen_events(&self) -> Result<Option<ClusterSignals>, StoreError> {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<ClusterSignal, StoreError>>(1024);
        let heard = Arc::new(AtomicBool::new(false));
        let first = listen_once(&self.config, &self.tls, tx.clone(), heard.clone()).await?;
        let (config, tls) = (self.config.clone(), self.tls.clone());
        // The catch-up: a resync after each interval without a notification.
        let (catch_up, catch_up_heard) = (tx.clone(), heard.clone());
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(CATCH_UP_INTERVAL);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    _ = catch_up.closed() => return,
                }
                // A full queue means the reader has signals to act on anyway.
                if !catch_up_heard.swap(false, Ordering::Relaxed)
                    && let Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) =
                        catch_up.try_send(Ok(ClusterSignal::Resync))
                {
                    return;
                }
            }
        });
        tokio::spawn(async move {
            let mut ended = first;
            loop {
                // Wait for the connection to end (or the stream's reader to go away).
                tokio::select! {
                    _ = &mut ended => {}
                    _ = tx.closed() => return,
                }
                let mut wait = Duration::from_millis(250);
                ended = loop {
                    if tx.is_closed() {
                        return;
                    }
                    match listen_once(&config, &tls, tx.clone(), heard.clone()).await {
                        Ok(ended) => break ended,
                        Err(_) => {
                            tokio::time::sleep(wait).await;
                            wait = (wait * 2).min(Duration::from_secs(2));
                        }
                    }
                };
                if tx.send(Ok(ClusterSignal::Resync)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Some(
            tokio_stream::wrappers::ReceiverStream::new(rx).boxed(),
        ))
    }

    /// When each request was last reminded about.
    ///
    /// Errors: [`StoreError`] on database failure or an unreadable row.
    pub async fn reminded(&self) -> Result<HashMap<Uuid, OffsetDateTime>, StoreError> {
        let client = self.conn().await?;
        let rows = client
            .query("SELECT request_id, at_unix FROM reminded", &[])
            .await
            .map_err(db_err)?;
        let mut out = HashMap::with_capacity(rows.len());
        for row in rows {
            let id: Uuid = row.try_get(0).map_err(db_err)?;
            let at: i64 = row.try_get(1).map_err(db_err)?;
            let at = OffsetDateTime::from_unix_timestamp(at)
                .map_err(|e| StoreError::Corrupt(format!("reminded at {at}: {e}")))?;
            out.insert(id, at);
        }
        Ok(out)
    }

    /// Records that `ids` were reminded about at `now`, and forgets requests no longer pending.
    ///
    /// Errors: [`StoreError`] on database failure.
    pub async fn record_reminded(
        &self,
        ids: &[Uuid],
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let at = now.unix_timestamp();
        write_tx!(self, |tx| {
            tx.execute(
                "INSERT INTO reminded (request_id, at_unix) SELECT unnest($1::uuid[]), $2
                 ON CONFLICT (request_id) DO UPDATE SET at_unix = excluded.at_unix",
                &[&ids, &at],
            )
            .await?;
            forget_reminded(&tx).await
        })
    }

    /// How many pending requests were created at or before `created_by` (unix seconds) and not
    /// reminded about after `reminded_by`, and the oldest `limit` of them.
    ///
    /// Errors: [`StoreError`] on database failure.
    pub async fn pending_due(
        &self,
        created_by: i64,
        reminded_by: i64,
        limit: usize,
    ) -> Result<(u64, Vec<ApprovalRequest>), StoreError> {
        const DUE: &str = "FROM requests r WHERE r.status = 'pending' AND r.created_at <= to_timestamp($1)
               AND NOT EXISTS (SELECT 1 FROM reminded m WHERE m.request_id = r.id AND m.at_unix > $2)";
        let (cb, rb) = (created_by as f64, reminded_by);
        let client = self.conn().await?;
        let count: i64 = client
            .query_one(&format!("SELECT COUNT(*) {DUE}"), &[&cb, &rb])
            .await
            .and_then(|r| r.try_get(0))
            .map_err(db_err)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = client
            .query(
                &format!("SELECT {R_COLUMNS} {DUE} ORDER BY r.created_at, r.id LIMIT $3"),
                &[&cb, &rb, &limit],
            )
            .await
            .map_err(db_err)?;
        Ok((
            u64::try_from(count).unwrap_or_default(),
            rows_to_requests(&rows)?,
        ))
    }

    /// Records every request [`PgStore::pending_due`] counts as reminded at `now` (unix
    /// seconds), set-based, and forgets requests no longer pending.
    ///
    /// Errors: [`StoreError`] on database failure.
    pub async fn record_reminded_due(
        &self,
        created_by: i64,
        reminded_by: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        let cb = created_by as f64;
        write_tx!(self, |tx| {
            tx.execute(
                "INSERT INTO reminded (request_id, at_unix)
                 SELECT r.id, $3 FROM requests r WHERE r.status = 'pending' AND r.created_at <= to_timestamp($1)
                   AND NOT EXISTS (SELECT 1 FROM reminded m WHERE m.request_id = r.id AND m.at_unix > $2)
                 ON CONFLICT (request_id) DO UPDATE SET at_unix = excluded.at_unix",
                &[&cb, &reminded_by, &now],
            )
            .await?;
            forget_reminded(&tx).await
        })
    }

    /// Counts of requests per status, read from the table.
    ///
    /// Errors: [`StoreError`] on database failure.
    pub async fn counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let client = self.conn().await?;
        let rows = client
            .query("SELECT status, COUNT(*) FROM requests GROUP BY status", &[])
            .await
            .map_err(db_err)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let n: i64 = row.try_get(1).map_err(db_err)?;
            out.push((
                row.try_get(0).map_err(db_err)?,
                u64::try_from(n).unwrap_or_default(),
            ));
        }
        Ok(out)
    }

    /// Stored requests per status (pending, approved, denied, expired) for the `/metrics`
    /// gauges, from the table (one `GROUP BY` on the status index).
    ///
    /// Errors: [`StoreError`] on database failure.
    pub async fn status_counts(&self) -> Result<[(Status, u64); 4], StoreError> {
        let counts = self.counts().await?;
        let of = |s: Status| {
            counts
                .iter()
                .find(|(name, _)| name == s.as_str())
                .map_or(0, |(_, n)| *n)
        };
        Ok([
            (Status::Pending, of(Status::Pending)),
            (Status::Approved, of(Status::Approved)),
            (Status::Denied, of(Status::Denied)),
            (Status::Expired, of(Status::Expired)),
        ])
    }
}

async fn forget_reminded(tx: &tokio_postgres::Transaction<'_>) -> TxResult<()> {
    tx.execute(
        "DELETE FROM reminded m WHERE NOT EXISTS (SELECT 1 FROM requests r
           WHERE r.id = m.request_id AND r.status = 'pending')",
        &[],
    )
    .await?;
    Ok(())
}

/// The notifier task of a store (module docs of [`super`], "Notifications after commit"):
/// for each wake, one `pg_notify` on [`EVENTS_CHANNEL`] in a transaction of its own, after the
/// commits that woke it; wakes that arrive meanwhile coalesce into the next one. A failure
/// (database down) is logged at DEBUG and not retried: the listeners catch up by themselves
/// ([`PgStore::listen_events`]). Ends when the store (the sender of `wakes`) is dropped.
pub(super) async fn notifier(
    pool: deadpool_postgres::Pool,
    mut wakes: tokio::sync::mpsc::Receiver<()>,
) {
    // Simple-query protocol, one round trip; the payload is a hint (the readers read from their
    // own mark). The transaction stores nothing, so its commit need not wait for a WAL flush.
    let sql = format!(
        "BEGIN; SET LOCAL synchronous_commit = off; \
         SELECT pg_notify('{EVENTS_CHANNEL}', (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM event_seq)::text); \
         COMMIT"
    );
    while wakes.recv().await.is_some() {
        let sent = match pool.get().await {
            Ok(client) => client.batch_execute(&sql).await.map_err(db_err),
            Err(e) => Err(StoreError::Unavailable(e.to_string())),
        };
        if let Err(e) = sent {
            tracing::debug!(error = %e, "event notification not sent; listeners catch up by themselves");
        }
    }
}

/// Connects, runs `LISTEN`, and forwards each notification's payload (a sequence number) to
/// `out` from a task, setting `heard`; returns a future that resolves when that connection has
/// ended.
async fn listen_once(
    config: &tokio_postgres::Config,
    tls: &tokio_postgres_rustls::MakeRustlsConnect,
    out: tokio::sync::mpsc::Sender<Result<ClusterSignal, StoreError>>,
    heard: Arc<AtomicBool>,
) -> Result<tokio::sync::oneshot::Receiver<()>, StoreError> {
    let (client, mut connection) = config.connect(tls.clone()).await.map_err(db_err)?;
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<tokio_postgres::Client>();
    tokio::spawn(async move {
        // The client lives as long as the connection is driven (dropping it would close it).
        let mut client_slot = None;
        let mut ready_rx = Some(ready_rx);
        loop {
            let msg = futures::future::poll_fn(|cx| connection.poll_message(cx)).await;
            if let Some(rx) = ready_rx.as_mut()
                && let Ok(c) = rx.try_recv()
            {
                client_slot = Some(c);
                ready_rx = None;
            }
            match msg {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    heard.store(true, Ordering::Relaxed);
                    if let Ok(seq) = n.payload().parse::<u64>()
                        && out.send(Ok(ClusterSignal::Event(seq))).await.is_err()
                    {
                        break;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            }
        }
        drop(client_slot);
        let _ = done_tx.send(());
    });
    client
        .batch_execute(&format!("LISTEN {EVENTS_CHANNEL}"))
        .await
        .map_err(db_err)?;
    let _ = ready_tx.send(client);
    Ok(done_rx)
}
