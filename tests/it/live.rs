//! Live updates and the network between the reviewer and the approval API (a switchable TCP
//! proxy from the testkit): the event stream updates the cache live and resumes with
//! `Last-Event-ID` after a server restart; polling takes over when SSE is refused; a network
//! cut in the middle of a drain leaves the rest of the outbox queued, and it drains exactly once
//! when the network is back.

use std::sync::Arc;
use std::time::Duration;

use guestlist_devtenant::defaults;
use guestlist_reviewer::{
    Faults, LiveSource, LiveUpdate, MemoryStore, OpenOptions, OutboxState, Outcome, QueueQuery,
    Reviewer,
};
use guestlist_tests::Proxy;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::reviewer::{Env, facebook, id_of, sign_in};

async fn behind(env: &Env, proxy: &Proxy, name: &str) -> Reviewer {
    let mut settings = env.settings();
    settings.api_base_url = proxy.url();
    let r = Reviewer::open_with(
        &env.dir.path().join(name),
        Some(settings),
        OpenOptions {
            token_store: Some(Arc::new(MemoryStore::new())),
            faults: Faults::default(),
            outbox_worker: false,
        },
    )
    .await
    .unwrap();
    sign_in(&r, defaults::ADA_UPN).await;
    r
}

fn follow(r: &Reviewer) -> (UnboundedReceiver<LiveUpdate>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let r = r.clone();
    let task = tokio::spawn(async move {
        r.follow_events(move |u| {
            let _ = tx.send(u);
        })
        .await
    });
    (rx, task)
}

/// The next update that satisfies `want` (20 s at most).
async fn update(
    rx: &mut UnboundedReceiver<LiveUpdate>,
    want: impl Fn(&LiveUpdate) -> bool,
) -> LiveUpdate {
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let u = rx.recv().await.unwrap();
            if want(&u) {
                return u;
            }
        }
    })
    .await
    .expect("no such live update within 20 s")
}

/// Waits (10 s at most) until the reviewer synced after `before` (its `last_sync_at`): a stream
/// opened without `Last-Event-ID` is followed by a catch-up sync.
async fn synced_after(r: &Reviewer, before: Option<String>) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while r.status().await.last_sync_at == before {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("no sync within 10 s");
}

async fn cached(r: &Reviewer, email: &str) -> bool {
    r.queue(QueueQuery {
        q: Some(email.into()),
        ..Default::default()
    })
    .await
    .unwrap()
    .total_matching
        == 1
}

#[tokio::test]
async fn sse_updates_the_cache_live_and_resumes_after_a_server_restart() {
    let mut env = Env::start().await;
    let proxy = Proxy::start(env.server_addr).await.unwrap();
    let r = behind(&env, &proxy, "live").await;
    let bob = env
        .reviewer("bob", Arc::new(MemoryStore::new()), Faults::default())
        .await;
    sign_in(&bob, defaults::ADA_UPN).await;
    let before = r.status().await.last_sync_at;
    let (mut rx, task) = follow(&r);
    proxy.event_streams(1).await;
    synced_after(&r, before).await;

    env.request_approval(&facebook(60)).await;
    let u = update(&mut rx, |u| u.added == 1).await;
    assert_eq!(u.source, LiveSource::Sse, "{u:?}");
    assert!(cached(&r, "fb60@fabrikam.com").await);

    // Decided by someone else: removed live.
    bob.sync().await.unwrap();
    let id60 = id_of(&bob, "fb60@fabrikam.com").await;
    bob.deny(vec![id60], "not a supplier".into()).await.unwrap();
    let u = update(&mut rx, |u| u.changed == 1 && u.source == LiveSource::Sse).await;
    let seen = u.last_event_id.unwrap();
    assert!(!cached(&r, "fb60@fabrikam.com").await);

    // The network and the server go away; a request arrives while the reviewer cannot see.
    proxy.set_up(false);
    env.stop_server().await;
    env.restart_server().await;
    env.request_approval(&facebook(61)).await;
    assert!(!cached(&r, "fb61@fabrikam.com").await);
    proxy.set_up(true);
    update(&mut rx, |u| u.added == 1).await;
    assert!(cached(&r, "fb61@fabrikam.com").await);
    proxy.event_streams(2).await;
    // The stream is back, resumed after the last event seen before the restart.
    bob.sync().await.unwrap();
    let id61 = id_of(&bob, "fb61@fabrikam.com").await;
    bob.deny(vec![id61], "not a supplier".into()).await.unwrap();
    let u = update(&mut rx, |u| u.changed == 1 && u.source == LiveSource::Sse).await;
    assert!(u.last_event_id.unwrap() > seen);
    assert!(!cached(&r, "fb61@fabrikam.com").await);
    let resumed = proxy.last_event_ids();
    assert!(
        resumed.contains(&seen.to_string()),
        "reconnected with Last-Event-ID {seen}: {resumed:?}"
    );
    task.abort();
}

#[tokio::test]
async fn falls_back_to_polling_when_the_event_stream_is_refused() {
    let env = Env::start().await;
    let proxy = Proxy::start(env.server_addr).await.unwrap();
    proxy.block_events(true);
    let r = behind(&env, &proxy, "poll").await;
    let (mut rx, task) = follow(&r);
    env.request_approval(&facebook(80)).await;
    let u = update(&mut rx, |u| u.added == 1).await;
    assert_eq!(u.source, LiveSource::Poll, "{u:?}");
    assert!(cached(&r, "fb80@fabrikam.com").await);
    assert!(
        proxy.last_event_ids().is_empty(),
        "no event stream got through"
    );
    task.abort();
}

#[tokio::test]
async fn network_cut_mid_drain_then_back_drains_exactly_once() {
    let env = Env::start().await;
    let proxy = Proxy::start(env.server_addr).await.unwrap();
    for n in 70..73 {
        env.request_approval(&facebook(n)).await;
    }
    let r = behind(&env, &proxy, "cut").await;
    r.sync().await.unwrap();
    let ids: Vec<String> = r
        .queue(QueueQuery::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(ids.len(), 3);
    // The network goes down as the second decision report leaves.
    proxy.cut_at_decision(2);
    let out = r.approve(ids.clone()).await.unwrap();
    assert!(!proxy.is_up());
    let done = out.iter().filter(|o| o.outcome == Outcome::Done).count();
    assert_eq!(done, 1, "{out:?}");
    assert!(
        out.iter()
            .filter(|o| o.outcome != Outcome::Done)
            .all(|o| o.outcome == Outcome::Queued && o.state == OutboxState::Provisioned),
        "provisioned, report pending: {out:?}"
    );
    assert!(!r.status().await.online);
    assert_eq!(env.guests().len(), 3);
    // Back: the next sync drains the rest, once.
    proxy.set_up(true);
    let rep = r.sync().await.unwrap();
    assert_eq!(rep.pending, 0, "{rep:?}");
    let st = r.status().await;
    assert!(st.online);
    assert!(
        st.outbox.iter().all(|o| o.state == OutboxState::Reported),
        "{:?}",
        st.outbox
    );
    assert_eq!(env.guests().len(), 3, "no second account");
    for id in ids {
        let h = r.history(id).await.unwrap();
        assert_eq!(
            h.iter().filter(|e| e.action == "approved").count(),
            1,
            "{h:?}"
        );
    }
}

#[tokio::test]
async fn a_restored_server_database_makes_the_stream_resync_and_start_from_now() {
    let mut env = Env::start().await;
    let proxy = Proxy::start(env.server_addr).await.unwrap();
    let r = behind(&env, &proxy, "restored").await;
    let (mut rx, task) = follow(&r);
    proxy.event_streams(1).await;
    for n in 62..65 {
        env.request_approval(&facebook(n)).await;
    }
    update(&mut rx, |u| u.last_event_id == Some(3)).await;

    // The server comes back with an older backup of its database (here: an empty one), whose
    // latest event is behind the reviewer's Last-Event-ID.
    proxy.set_up(false);
    env.stop_server().await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(env.dir.path().join(format!("server.db{suffix}")));
    }
    env.restart_server().await;
    proxy.set_up(true);
    // The resumed stream gets a `resync` event; the reviewer syncs and reconnects from now.
    let hub = env.server.as_ref().unwrap().state.hub.clone();
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let st = hub.stats();
            if st.resyncs >= 1 && st.opened >= 2 && st.open_streams == 1 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no resync then a new stream: {:?}", hub.stats()));
    let ids = proxy.last_event_ids();
    assert!(ids.contains(&"3".to_string()), "resumed with 3: {ids:?}");
    env.request_approval(&facebook(66)).await;
    let u = update(&mut rx, |u| u.added == 1 && u.source == LiveSource::Sse).await;
    assert_eq!(u.last_event_id, Some(1), "{u:?}");
    assert!(cached(&r, "fb66@fabrikam.com").await);
    task.abort();
}
