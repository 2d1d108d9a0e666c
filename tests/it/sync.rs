//! Incremental sync of guestlist-reviewer against a real guestlist-server (HTTP on 127.0.0.1,
//! SQLite files): after a full sync the cache keeps the server's change mark, and the next
//! syncs fetch only what changed (`GET /api/requests?since=`) — new requests, requests changed
//! by a new sign-up attempt, and requests decided by another approver all arrive that way —
//! also across a server restart; a server whose database was reset (its mark is below ours)
//! makes the reviewer list everything again.

use std::sync::Arc;

use guestlist_devtenant::defaults;
use guestlist_reviewer::{Faults, MemoryStore, QueueQuery, Reviewer};
use serde_json::{Value, json};

use crate::reviewer::{Env, facebook, id_of, server_config, sign_in};

async fn pending_emails(r: &Reviewer) -> Vec<String> {
    let mut v: Vec<String> = r
        .queue(QueueQuery::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|i| i.email)
        .collect();
    v.sort();
    v
}

fn emails(ns: &[u32]) -> Vec<String> {
    let mut v: Vec<String> = ns.iter().map(|n| format!("fb{n}@fabrikam.com")).collect();
    v.sort();
    v
}

/// `facebook(n)` with another display name: a new sign-up attempt with changed claims.
fn facebook_again(n: u32) -> Value {
    let mut c = facebook(n);
    c["displayName"] = json!(format!("Facebook User {n} (again)"));
    c
}

#[tokio::test]
async fn new_changed_and_decided_elsewhere_arrive_incrementally() {
    let mut env = Env::start().await;
    for n in 1..=6 {
        env.request_approval(&facebook(n)).await;
    }
    let ada = env
        .reviewer("ada", Arc::new(MemoryStore::new()), Faults::default())
        .await;
    sign_in(&ada, defaults::ADA_UPN).await;
    let full = ada.sync().await.unwrap();
    assert_eq!(
        (full.fetched, full.added, full.pending),
        (6, 6, 6),
        "{full:?}"
    );
    // Nothing changed: nothing fetched.
    let idle = ada.sync().await.unwrap();
    assert_eq!(
        (
            idle.fetched,
            idle.added,
            idle.updated,
            idle.removed,
            idle.pending
        ),
        (0, 0, 0, 0, 6),
        "{idle:?}"
    );

    // Another approver (a second app with its own cache) denies fb2; fb1 signs up again with
    // changed claims; fb7 is new.
    let other = env
        .reviewer(
            "ada-laptop",
            Arc::new(MemoryStore::new()),
            Faults::default(),
        )
        .await;
    sign_in(&other, defaults::ADA_UPN).await;
    other.sync().await.unwrap();
    let fb2 = id_of(&other, "fb2@fabrikam.com").await;
    other
        .deny(vec![fb2], "not a supplier".into())
        .await
        .unwrap();
    env.request_approval(&facebook_again(1)).await;
    env.request_approval(&facebook(7)).await;

    let inc = ada.sync().await.unwrap();
    assert_eq!(
        (inc.fetched, inc.added, inc.updated, inc.removed, inc.pages),
        (3, 1, 1, 1, 1),
        "only the three changes are fetched: {inc:?}"
    );
    assert_eq!(inc.pending, 6);
    assert_eq!(pending_emails(&ada).await, emails(&[1, 3, 4, 5, 6, 7]));
    let fb1 = id_of(&ada, "fb1@fabrikam.com").await;
    let q = ada
        .queue(QueueQuery {
            q: Some("fb1@".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(q.items[0].id, fb1);
    assert_eq!(q.items[0].attempts, 2, "the changed request was rewritten");

    // The server restarts on the same database: the mark still holds.
    env.stop_server().await;
    env.restart_server().await;
    env.request_approval(&facebook(8)).await;
    let after_restart = ada.sync().await.unwrap();
    assert_eq!(
        (
            after_restart.fetched,
            after_restart.added,
            after_restart.pending
        ),
        (1, 1, 7),
        "{after_restart:?}"
    );

    // The server starts again at the same address on a new, empty database (a reset): its
    // mark is now below ours, so the reviewer lists everything again and drops what the new
    // database does not hold. (A new file rather than deleting the old one: the stopped
    // server's connections may still be open in this process.)
    env.stop_server().await;
    let reset_server = guestlist_server::spawn(server_config(
        &env.tenant,
        &env.dir.path().join("server-reset.db"),
        env.server_addr,
    ))
    .await
    .unwrap();
    env.request_approval(&facebook(20)).await;
    env.request_approval(&facebook(21)).await;
    let reset = ada.sync().await.unwrap();
    assert_eq!(
        (reset.fetched, reset.added, reset.removed, reset.pending),
        (2, 2, 7, 2),
        "{reset:?}"
    );
    assert_eq!(pending_emails(&ada).await, emails(&[20, 21]));
    // And from there on it is incremental again.
    env.request_approval(&facebook(22)).await;
    let again = ada.sync().await.unwrap();
    assert_eq!((again.fetched, again.added, again.pending), (1, 1, 3));
    reset_server.shutdown().await;
}
