//! Two server replicas on one PostgreSQL database (issue 13 §2), over real HTTP on 127.0.0.1 and
//! a real PostgreSQL the test starts itself: an approver's event stream on replica B receives
//! the events written by replica A and by B, in sequence order, each once; `Last-Event-ID`
//! resumes on the other replica; a `request.created` webhook is sent once cluster-wide, by the
//! replica that wrote the event. PostgreSQL whatever `GUESTLIST_TEST_STORE` says: replicas need a
//! shared database.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use guestlist_server::RunningServer;
use guestlist_server::config::Secret;
use guestlist_server::store::DatabaseUrl;

use crate::common::*;

/// The `id:` numbers of the SSE frames in `text`, in the order received.
fn ids(text: &str) -> Vec<u64> {
    text.lines()
        .filter_map(|l| l.strip_prefix("id: "))
        .map(|n| n.trim().parse().unwrap())
        .collect()
}

async fn replica(issuer: &Issuer, url: &DatabaseUrl, hook: &str) -> RunningServer {
    let (url, hook) = (url.clone(), hook.to_owned());
    // `start` takes a path; the tweak points the server at the shared database instead.
    let dir = tempfile::tempdir().unwrap();
    start(issuer, &dir.path().join("unused.db"), move |c| {
        c.database = url;
        c.notifications.webhook_url = Some(Secret(hook));
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_on_one_replica_gets_every_replicas_events_in_order_and_webhooks_go_once() {
    let issuer = Issuer::start().await;
    let url: DatabaseUrl = guestlist_testkit::postgres::Cluster::shared()
        .fresh_database()
        .parse()
        .unwrap();
    // The webhook receiver counts deliveries.
    let hits = Arc::new(AtomicU64::new(0));
    let h = hits.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            h.fetch_add(1, Ordering::SeqCst);
            async { "ok" }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let a = replica(&issuer, &url, &hook).await;
    let b = replica(&issuer, &url, &hook).await;
    let token = issuer.token("ada");

    let mut on_b = open_stream(&b, &token, None, None).await;
    eventually("the stream on B is open", || {
        b.state.hub.stats().open_streams == 1
    })
    .await;
    // Both replicas write at the same time: 20 sign-ups each.
    let (wa, wb) = (a.state.clone(), b.state.clone());
    let writers = [
        tokio::spawn(async move {
            for n in 0..20 {
                let c = guestlist_core::connector::Claims::from_json(
                    serde_json::json!({"email": format!("a{n}@fabrikam.com")}),
                )
                .unwrap();
                wa.request_approval(&c).await.unwrap();
            }
        }),
        tokio::spawn(async move {
            for n in 0..20 {
                let c = guestlist_core::connector::Claims::from_json(
                    serde_json::json!({"email": format!("b{n}@fabrikam.com")}),
                )
                .unwrap();
                wb.request_approval(&c).await.unwrap();
            }
        }),
    ];
    for w in writers {
        w.await.unwrap();
    }
    let latest = b.state.store.latest_event_seq().await.unwrap();
    assert_eq!(latest, 40);
    let mut text = String::new();
    assert!(read_until(&mut on_b, &mut text, "id: 40\n", 10).await);
    let seen = ids(&text);
    assert_eq!(
        seen,
        (1..=40).collect::<Vec<u64>>(),
        "every event once, in sequence order, on B: {}",
        tail(&text)
    );
    for n in 0..20 {
        assert!(
            text.contains(&format!("a{n}@fabrikam.com")),
            "A's event {n}"
        );
    }
    // Then A alone writes: nothing happens on B but the database's notification.
    for n in 0..5 {
        sign_up(&a, &format!("late{n}@fabrikam.com"), 0).await;
    }
    assert!(read_until(&mut on_b, &mut text, "id: 45\n", 10).await);
    assert_eq!(ids(&text), (1..=45).collect::<Vec<u64>>());
    assert!(text.contains("late4@fabrikam.com"));

    // Resume on the other replica: A replays what follows 25.
    let mut on_a = open_stream(&a, &token, Some("25"), None).await;
    let mut resumed = String::new();
    assert!(read_until(&mut on_a, &mut resumed, "id: 45\n", 10).await);
    assert_eq!(ids(&resumed), (26..=45).collect::<Vec<u64>>());

    // One webhook per sign-up, sent by the replica that stored it (not by both).
    eventually("45 webhook deliveries", || {
        hits.load(Ordering::SeqCst) >= 45
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(hits.load(Ordering::SeqCst), 45, "a webhook went twice");
    a.shutdown().await;
    b.shutdown().await;
}

/// `POST /connectors/<which>` with the test credentials: the status and the `code` of the body
/// (the block page's, or the error's), and how long the answer took.
async fn connector(s: &RunningServer, which: &str, email: &str) -> (u16, String, Duration) {
    let started = std::time::Instant::now();
    let r = reqwest::Client::new()
        .post(format!("{}/connectors/{which}", s.base_url()))
        .basic_auth("entra-user-flow", Some("correct horse battery staple"))
        .json(&serde_json::json!({"email": email, "displayName": "Kim"}))
        .timeout(Duration::from_secs(25))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: serde_json::Value = r.json().await.unwrap();
    let code = body["code"]
        .as_str()
        .or(body["error"]["code"].as_str())
        .unwrap_or_default()
        .to_owned();
    (status, code, started.elapsed())
}

async fn readyz(s: &RunningServer) -> (u16, Duration) {
    let started = std::time::Instant::now();
    let r = reqwest::Client::new()
        .get(format!("{}/readyz", s.base_url()))
        .timeout(Duration::from_secs(25))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), started.elapsed())
}

/// PostgreSQL stopped under a running server: `/readyz` and every call answer 503
/// `store.unavailable` at once (the pool's 1 s acquire timeout; the bound asserted is a
/// generous 5 s, far from Entra's 20 s), and when it is back the server recovers by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_answers_503_fast_and_the_server_recovers_without_a_restart() {
    let issuer = Issuer::start().await;
    let cluster = Arc::new(guestlist_testkit::postgres::Cluster::start().unwrap());
    let url: DatabaseUrl = cluster.fresh_database().parse().unwrap();
    let s = replica(&issuer, &url, "http://127.0.0.1:9/unused").await;
    assert_eq!(readyz(&s).await.0, 200);
    let (status, code, _) = connector(&s, "request-approval", "kim@fabrikam.com").await;
    assert_eq!(
        (status, code.as_str()),
        (200, "GUESTLIST-APPROVAL-REQUESTED")
    );

    let c = cluster.clone();
    tokio::task::spawn_blocking(move || c.stop())
        .await
        .unwrap()
        .unwrap();
    let (status, took) = readyz(&s).await;
    println!("readyz with PostgreSQL down: {status} in {took:?}");
    assert_eq!(status, 503);
    assert!(took < Duration::from_secs(5), "readyz took {took:?}");
    for which in ["check-approval-status", "request-approval"] {
        let (status, code, took) = connector(&s, which, "kim@fabrikam.com").await;
        println!("{which} with PostgreSQL down: {status} {code} in {took:?}");
        assert_eq!(
            (status, code.as_str()),
            (503, "store.unavailable"),
            "{which}"
        );
        assert!(took < Duration::from_secs(5), "{which} took {took:?}");
    }

    let c = cluster.clone();
    tokio::task::spawn_blocking(move || c.start_again())
        .await
        .unwrap()
        .unwrap();
    let mut ready = false;
    for _ in 0..100 {
        if readyz(&s).await.0 == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        ready,
        "the server did not recover within 10 s of PostgreSQL's restart"
    );
    // The request stored before the outage is there; new calls work.
    let (status, code, _) = connector(&s, "check-approval-status", "kim@fabrikam.com").await;
    assert_eq!((status, code.as_str()), (200, "GUESTLIST-APPROVAL-PENDING"));
    let (status, code, _) = connector(&s, "request-approval", "lee@fabrikam.com").await;
    assert_eq!(
        (status, code.as_str()),
        (200, "GUESTLIST-APPROVAL-REQUESTED")
    );
    s.shutdown().await;
}

/// Background jobs run once cluster-wide: while replica A holds the `retention` job lock (as
/// during its run), replica B's retention run does nothing; once A lets go, B's runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_runs_on_one_replica_at_a_time() {
    let issuer = Issuer::start().await;
    let url: DatabaseUrl = guestlist_testkit::postgres::Cluster::shared()
        .fresh_database()
        .parse()
        .unwrap();
    let a = replica(&issuer, &url, "http://127.0.0.1:9/unused").await;
    let b = replica(&issuer, &url, "http://127.0.0.1:9/unused").await;
    let held = a.state.store.try_job_lock("retention").await.unwrap();
    let held = held.expect("A takes the lock");
    assert!(
        b.state.retention.run_once().await.is_none(),
        "B's run while A holds the job"
    );
    // A's run ends: its release returns once PostgreSQL let go (a mere drop is released only
    // when the server sees the session close, which B could race).
    held.release().await;
    let report = b.state.retention.run_once().await;
    assert!(matches!(report, Some(Ok(_))), "{report:?}");
    a.shutdown().await;
    b.shutdown().await;
}
