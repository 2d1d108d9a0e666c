//! Identical request-approval calls in flight at the same time share one store call (issue 13
//! §2 "retries and bursts create one request").
//!
//! Entra retries a connector call that took too long, and a user double-submits: the same
//! claims arrive several times at once. The store already answers them right (an identical call
//! within the retry window gets the first call's answer, and counts no attempt), but each call
//! would still run its own transaction; on PostgreSQL those wait on one another for the
//! person's lock, each holding a pool connection, so a burst of one person's calls could use up
//! the pool. Here the first call (the leader) runs; the others with byte-identical claims wait
//! for its answer and return it. If the leader fails or is cancelled, each waiting call runs its
//! own store call, so an error is never shared and nothing is lost.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use guestlist_core::policy::MessageKind;
use tokio::sync::watch;

use crate::error::ApiError;

/// The calls in flight, by their claims (canonical JSON text).
#[derive(Default)]
pub struct Coalescer {
    inflight: Mutex<HashMap<String, watch::Receiver<Option<Option<MessageKind>>>>>,
}

/// Removes the leader's entry when its call ends, however it ends.
struct Leading<'a> {
    coalescer: &'a Coalescer,
    key: String,
}

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        self.coalescer
            .inflight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.key);
    }
}

impl Coalescer {
    /// Runs `call` for `key`, or, when a call for the same `key` is in flight, waits for its
    /// answer (module docs).
    ///
    /// Errors: `call`'s.
    pub async fn run<F, Fut>(&self, key: String, call: F) -> Result<Option<MessageKind>, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<MessageKind>, ApiError>>,
    {
        let waiting = {
            let mut inflight = self
                .inflight
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match inflight.get(&key) {
                Some(rx) => Ok(rx.clone()),
                None => {
                    let (tx, rx) = watch::channel(None);
                    inflight.insert(key.clone(), rx);
                    Err(tx)
                }
            }
        };
        match waiting {
            Ok(mut rx) => {
                // The leader's answer; if it failed or went away, this call runs on its own.
                let answer = rx.wait_for(Option::is_some).await.ok().and_then(|a| *a);
                match answer {
                    Some(block) => Ok(block),
                    None => call().await,
                }
            }
            Err(tx) => {
                let _leading = Leading {
                    coalescer: self,
                    key,
                };
                let out = call().await;
                if let Ok(block) = &out {
                    let _ = tx.send(Some(*block));
                }
                out
            }
        }
    }

    /// Calls in flight now (for tests).
    pub fn in_flight(&self) -> usize {
        self.inflight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::store::StoreError;

    #[tokio::test]
    async fn identical_calls_share_one_answer_and_a_failed_leader_shares_nothing() {
        let c = Arc::new(Coalescer::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let (go_tx, go_rx) = watch::channel(false);
        // Ten identical calls at once: one runs, nine wait for its answer.
        let calls: Vec<_> = (0..10)
            .map(|_| {
                let (c, runs, mut go) = (c.clone(), runs.clone(), go_rx.clone());
                tokio::spawn(async move {
                    c.run("same".into(), || async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        let _ = go.wait_for(|g| *g).await;
                        Ok(Some(MessageKind::Requested))
                    })
                    .await
                })
            })
            .collect();
        while runs.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        go_tx.send(true).unwrap();
        for call in calls {
            assert_eq!(call.await.unwrap().unwrap(), Some(MessageKind::Requested));
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(c.in_flight(), 0);

        // A leader that fails: the waiting call runs on its own and gets its own answer.
        let (fail_tx, fail_rx) = watch::channel(false);
        let leader = {
            let (c, mut fail) = (c.clone(), fail_rx.clone());
            tokio::spawn(async move {
                c.run("k".into(), || async move {
                    let _ = fail.wait_for(|f| *f).await;
                    Err(ApiError::Store(StoreError::Unavailable("down".into())))
                })
                .await
            })
        };
        while c.in_flight() == 0 {
            tokio::task::yield_now().await;
        }
        let follower = {
            let c = c.clone();
            tokio::spawn(async move { c.run("k".into(), || async { Ok(None) }).await })
        };
        tokio::task::yield_now().await;
        fail_tx.send(true).unwrap();
        assert!(leader.await.unwrap().is_err());
        assert_eq!(follower.await.unwrap().unwrap(), None);
    }
}
