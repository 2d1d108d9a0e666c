//! Server-side notifications, part 2: reminders. With `notifications.webhook_url` and
//! `notifications.remind_after_hours` set, a periodic task (every
//! `notifications.reminder_interval_seconds`) posts one message listing the requests pending
//! longer than that many hours to the webhook ([`crate::webhook`], same template and retries).
//! A request is reminded about at most once per `remind_after_hours`, across restarts: when it was
//! last reminded about is kept in the store (`Store::reminded`, `Store::record_reminded`, table
//! `reminded`). The same task escalates routed requests ([`crate::escalation`], issue 14 §2).
//! Ends when the server's event sender is dropped.

use std::time::Duration;

use guestlist_core::model::{ApprovalRequest, Event};
use time::OffsetDateTime;
use tokio::sync::broadcast;

use crate::store::{Store, StoreError};
use crate::webhook::{Notifications, Sender};

/// Most requests listed by name in one reminder; the rest are counted.
pub const LISTED: usize = 10;

/// A reminder's content: how many requests are due, and the oldest [`LISTED`] of them.
#[derive(Debug, Clone, Default)]
pub struct Due {
    /// Pending requests older than the period and not reminded about within it.
    pub count: u64,
    /// The oldest of them, at most [`LISTED`] (or the `limit` given to [`due_with_limit`]).
    pub oldest: Vec<ApprovalRequest>,
}

/// The pending requests older than `hours` at `now` that were not reminded about in the last
/// `hours`: their number and the oldest [`LISTED`]. They are all then recorded as reminded at
/// `now` in the store (table `reminded`), so a restarted server does not remind about them
/// again before `hours` have passed; records of requests that are no longer pending are
/// dropped at the same time. Memory and the message are bounded whatever the number of pending
/// requests: a `COUNT`, a `LIMIT` query and one set-based update ([`Backend::pending_due`](crate::store::Backend::pending_due),
/// [`Backend::record_reminded_due`](crate::store::Backend::record_reminded_due)).
///
/// Errors: [`StoreError`] on database failure.
pub async fn due(store: &Store, hours: u64, now: OffsetDateTime) -> Result<Due, StoreError> {
    due_with_limit(store, hours, now, LISTED).await
}

/// [`due`] listing at most `limit` requests.
///
/// Errors: [`StoreError`] on database failure.
pub async fn due_with_limit(
    store: &Store,
    hours: u64,
    now: OffsetDateTime,
    limit: usize,
) -> Result<Due, StoreError> {
    let age = i64::try_from(hours.saturating_mul(3600)).unwrap_or(i64::MAX);
    let cut = now.unix_timestamp().saturating_sub(age);
    let (count, oldest) = store.pending_due(cut, cut, limit).await?;
    store
        .record_reminded_due(cut, cut, now.unix_timestamp())
        .await?;
    Ok(Due { count, oldest })
}

/// Starts the reminder task when a webhook and `remind_after_hours` are configured, or when a
/// route of `routes` escalates ([`crate::escalation`]; then the task runs without a webhook
/// too, and only the escalation reminders need one). Every
/// `notifications.reminder_interval_seconds` it reminds about the requests pending too long,
/// then escalates the due requests of `routes`, publishes their `request.escalated` events on
/// `publish` and sends the escalation reminders owed, one per route and batch, from the event
/// log after a durable cursor ([`crate::escalation::remind`]: at least once, with an
/// idempotency key, also after a crash between the commit and the send).
///
/// With several replicas on one database, one of them runs each tick: the tick runs under
/// the cluster-wide job lock `reminders` ([`crate::store::Backend::try_job_lock`]), released
/// at its end. A pending reminder is sent after the commit of what it names (with the webhook's
/// retries): a process that dies in between does not send it, and no other one sends it again.
/// Ends when the server shuts down (`stop` turns true), dropping its store handle, or when the
/// server's event sender is dropped (the task holds only a weak one).
pub fn start(
    config: &Notifications,
    routes: &[guestlist_core::policy::RouteRule],
    store: Store,
    publish: &broadcast::Sender<Event>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let sender = Sender::new(config);
    let remind = sender.clone().zip(config.remind_after_hours);
    let escalating = crate::escalation::escalating(routes);
    if remind.is_none() && escalating.is_empty() {
        return;
    }
    let fault = crate::escalation::Fault::from_env();
    let mut events = publish.subscribe();
    let publish = publish.downgrade();
    let every = Duration::from_secs(config.reminder_interval_seconds.max(1));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        // Reminders in flight (or waiting to retry) and the requests they name: one naming an
        // erased request is dropped, never sent after the erasure (issue 12).
        let mut in_flight: Vec<(Vec<uuid::Uuid>, tokio::task::AbortHandle)> = Vec::new();
        // The escalation reminders' cursor exists (set at the first tick).
        let mut cursor_ready = false;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        return;
                    }
                    continue;
                }
                e = events.recv() => match e {
                    Err(broadcast::error::RecvError::Closed) => return,
                    Ok(ev) if ev.kind == guestlist_core::model::EVENT_REQUEST_ERASED => {
                        in_flight.retain(|(ids, task)| {
                            if ids.contains(&ev.request_id) {
                                task.abort();
                            }
                            !task.is_finished() && !ids.contains(&ev.request_id)
                        });
                        continue;
                    }
                    _ => continue,
                },
            }
            let now = OffsetDateTime::now_utc();
            // Held until the check has recorded what it reminds about: another replica's tick
            // then finds nothing due.
            let job = match store.try_job_lock("reminders").await {
                Ok(Some(lock)) => lock,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "reminder check failed");
                    continue;
                }
            };
            let mut send = |body: serde_json::Value, ids: Vec<uuid::Uuid>, s: &Sender| {
                let s = s.clone();
                let task = tokio::spawn(async move { s.deliver(&body).await });
                in_flight.retain(|(_, t)| !t.is_finished());
                in_flight.push((ids, task.abort_handle()));
            };
            if let Some((sender, hours)) = &remind {
                match due(&store, *hours, now).await {
                    Ok(d) if d.count > 0 => send(
                        sender.reminder_message(d.count, &d.oldest, *hours),
                        d.oldest.iter().map(|r| r.id).collect(),
                        sender,
                    ),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "reminder check failed"),
                }
            }
            if !escalating.is_empty() {
                if !cursor_ready {
                    match crate::escalation::init_reminder_cursor(&store).await {
                        Ok(()) => cursor_ready = true,
                        Err(e) => {
                            tracing::warn!(error = %e, "escalation check failed");
                            job.release().await;
                            continue;
                        }
                    }
                }
                let runs = match crate::escalation::run(&store, &escalating, now).await {
                    Ok(runs) => runs,
                    Err(e) => {
                        tracing::warn!(error = %e, "escalation check failed");
                        Vec::new()
                    }
                };
                let Some(publish) = publish.upgrade() else {
                    job.release().await;
                    return;
                };
                let escalated = runs.iter().any(|r| !r.events.is_empty());
                for run in runs {
                    for e in run.events {
                        let _ = publish.send(e);
                    }
                }
                drop(publish);
                if escalated {
                    crate::escalation::Fault::hit(fault, crate::escalation::Fault::AfterCommit);
                }
                // The reminders owed, from the event log: this run's, and any a crash or a
                // failed delivery left.
                if let Err(e) = crate::escalation::remind(
                    &store,
                    &escalating,
                    sender.as_ref(),
                    &mut events,
                    fault,
                )
                .await
                {
                    tracing::warn!(error = %e, "escalation reminders failed; retried next tick");
                }
            }
            job.release().await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use guestlist_core::connector::Claims;
    use guestlist_core::model::{Actor, Decision, ProvisionedBy};
    use guestlist_core::policy::Policy;
    use serde_json::json;
    use uuid::Uuid;

    async fn ask(store: &Store, email: &str, at: OffsetDateTime) -> Uuid {
        let c = Claims::from_json(json!({"email": email, "displayName": email})).unwrap();
        store
            .request_approval(&c, &Policy::default(), at, time::Duration::seconds(120))
            .await
            .unwrap();
        store.list(None, Some(email), None, 10).await.unwrap().items[0].id
    }

    #[tokio::test]
    async fn requests_pending_too_long_are_reminded_once_per_period_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::store::DatabaseUrl::Sqlite(dir.path().join("r.db"));
        let mut store = Store::open(&db).await.unwrap();
        let t0 = OffsetDateTime::now_utc();
        let h = time::Duration::hours(1);
        let a = ask(&store, "a@fabrikam.com", t0).await;
        let b = ask(&store, "b@fabrikam.com", t0 + h * 10).await;
        let ids = |v: Due| v.oldest.into_iter().map(|r| r.id).collect::<Vec<_>>();
        assert!(
            due(&store, 24, t0 + h * 23)
                .await
                .unwrap()
                .oldest
                .is_empty()
        );
        assert_eq!(ids(due(&store, 24, t0 + h * 25).await.unwrap()), vec![a]);
        // The record is in the database: a new store on the same file (a restarted server)
        // does not remind about `a` again.
        drop(store);
        store = Store::open(&db).await.unwrap();
        assert!(
            due(&store, 24, t0 + h * 30)
                .await
                .unwrap()
                .oldest
                .is_empty(),
            "a was reminded 5 h ago; b is 20 h old"
        );
        assert_eq!(ids(due(&store, 24, t0 + h * 35).await.unwrap()), vec![b]);
        // Decided requests are never reminded about.
        let current = store.get(a).await.unwrap();
        store
            .decide(
                a,
                &Decision::Approve {
                    directory_object_id: "u1".into(),
                    how: ProvisionedBy::UserCreated,
                },
                &Actor {
                    kind: "user".into(),
                    id: "o".into(),
                    name: "Ada".into(),
                    username: None,
                    client: None,
                },
                Some(current.version),
                Some("k1"),
                t0 + h * 40,
            )
            .await
            .unwrap();
        assert!(
            due(&store, 24, t0 + h * 50)
                .await
                .unwrap()
                .oldest
                .is_empty()
        );
        assert_eq!(ids(due(&store, 24, t0 + h * 60).await.unwrap()), vec![b]);
        // Only pending requests keep a record.
        let kept: Vec<Uuid> = store.reminded().await.unwrap().into_keys().collect();
        assert_eq!(kept, vec![b]);
    }
}
