//! Issue 14 §2, escalation, over real HTTP on 127.0.0.1 (SQLite file, or PostgreSQL with
//! `GUESTLIST_TEST_STORE=postgres`): a routed request still pending `escalate_after_hours` after
//! it was created is marked escalated once — `escalatedAt` on the request, the event
//! `request.escalated` on the event stream of a fallback-role approver opened before it
//! escalated, a new change sequence number for `?since=` — and the webhook gets one escalation
//! reminder naming the route, its fallback role and the request; a restarted server does not
//! repeat either. Two replicas on one PostgreSQL escalate each request once and send one
//! reminder.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use guestlist_core::connector::Claims;
use guestlist_core::policy::{Policy, RouteRule};
use guestlist_server::RunningServer;
use guestlist_server::config::Secret;
use guestlist_server::store::{DatabaseUrl, Store};
use serde_json::{Value, json};

use crate::common::{self, Issuer, eventually, open_stream, read_until, tail};

/// The route of these tests: fabrikam.com to `Approver.Partners`, escalating to
/// `Approver.Fallback` after `seconds`.
fn partners(seconds: f64) -> RouteRule {
    RouteRule {
        name: "partners".into(),
        email_domains: vec!["fabrikam.com".into()],
        identity_providers: Vec::new(),
        applications: Vec::new(),
        role: "Approver.Partners".into(),
        fallback_role: Some("Approver.Fallback".into()),
        escalate_after_hours: Some(seconds / 3600.0),
        approvals_required: 1,
    }
}

fn policy(seconds: f64) -> Policy {
    Policy {
        routes: vec![partners(seconds)],
        ..Policy::default()
    }
}

/// A webhook receiver on 127.0.0.1: its URL and every JSON body it received.
async fn receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            g.lock()
                .unwrap()
                .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
            async { "ok" }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, got)
}

/// The escalation reminders among `got`.
fn escalations(got: &Mutex<Vec<Value>>) -> Vec<Value> {
    got.lock()
        .unwrap()
        .iter()
        .filter(|v| v["type"] == "requests.escalated")
        .cloned()
        .collect()
}

/// The ids of the stored `request.escalated` events.
async fn escalated_events(store: &Store) -> Vec<String> {
    store
        .events_after(0, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "request.escalated")
        .map(|e| e.request_id.to_string())
        .collect()
}

/// A server with the route escalating after `seconds`, checking every second, posting to `hook`.
async fn start(
    issuer: &Issuer,
    db: &std::path::Path,
    seconds: f64,
    hook: &str,
    database: Option<DatabaseUrl>,
) -> RunningServer {
    let hook = hook.to_owned();
    common::start(issuer, db, move |c| {
        c.policy = policy(seconds);
        c.notifications.webhook_url = Some(Secret(hook));
        c.notifications.reminder_interval_seconds = 1;
        if let Some(url) = database {
            c.database = url;
        }
    })
    .await
}

fn token(issuer: &Issuer, oid: &str, role: &str) -> String {
    let mut c = issuer.claims(oid, 3600);
    c["roles"] = json!([role]);
    c["preferred_username"] = json!(format!("{oid}@contoso.onmicrosoft.com"));
    issuer.sign(&c)
}

async fn sign_up(s: &RunningServer, email: &str) -> String {
    let c = Claims::from_json(json!({"email": email, "displayName": email})).unwrap();
    s.state.request_approval(&c).await.unwrap();
    let page = s
        .state
        .store
        .list(None, Some(email), None, 10)
        .await
        .unwrap();
    page.items[0].id.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_pending_past_its_route_delay_escalates_once_with_one_reminder() {
    let issuer = Issuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("e.db");
    let (hook, got) = receiver().await;
    let s = start(&issuer, &db, 2.0, &hook, None).await;
    let fallback = token(&issuer, "fallback-1", "Approver.Fallback");
    let ana = sign_up(&s, "ana@fabrikam.com").await;
    let bob = sign_up(&s, "bob@other.example").await;
    // What an approver's incremental sync has seen once both requests exist.
    let mark = s
        .state
        .store
        .list_page(Some(0), None, None, None, 500)
        .await
        .unwrap()
        .change_seq
        .unwrap();
    // The fallback approver's stream, opened before the request escalates (its scope's cutoff
    // is computed now, when ana's request is not visible yet).
    let mut sock = open_stream(&s, &fallback, None, None).await;
    eventually("the stream is open", || {
        s.state.hub.stats().open_streams == 1
    })
    .await;
    let mut text = String::new();
    assert!(read_until(&mut sock, &mut text, "event: request.escalated", 15).await);
    assert!(read_until(&mut sock, &mut text, "\"escalatedAt\"", 5).await);
    assert!(text.contains(&ana), "{}", tail(&text));
    assert!(!text.contains(&bob), "{}", tail(&text));

    // Incremental sync from the mark returns it, escalated, with a new version.
    let r = reqwest::Client::new()
        .get(format!("{}/api/requests?since={mark}", s.base_url()))
        .bearer_auth(&fallback)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let page: Value = r.json().await.unwrap();
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page}");
    assert_eq!(items[0]["id"], ana.as_str());
    assert!(items[0]["escalatedAt"].is_string(), "{page}");
    assert_eq!(items[0]["version"], 2);

    // One reminder, naming the route, its fallback role and the request, and no personal
    // data of the unrouted request.
    eventually("the escalation reminder", || !escalations(&got).is_empty()).await;
    let sent = escalations(&got);
    assert_eq!(sent[0]["route"], "partners", "{}", sent[0]);
    assert_eq!(sent[0]["fallbackRole"], "Approver.Fallback");
    assert_eq!(sent[0]["count"], 1);
    assert_eq!(sent[0]["requests"][0]["id"], ana.as_str());
    assert!(!sent[0].to_string().contains("bob@other.example"));
    // Later ticks (one a second) neither escalate nor remind again.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(escalations(&got).len(), 1, "{:?}", escalations(&got));
    assert_eq!(escalated_events(&s.state.store).await, vec![ana.clone()]);

    // A restarted server on the same database: nothing again.
    drop(sock);
    s.shutdown().await;
    let s = start(&issuer, &db, 2.0, &hook, None).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(escalations(&got).len(), 1, "{:?}", escalations(&got));
    assert_eq!(escalated_events(&s.state.store).await, vec![ana.clone()]);
    let stored = s.state.store.get(ana.parse().unwrap()).await.unwrap();
    assert!(stored.escalated_at.is_some());
    assert_eq!(stored.version, 2);
    s.shutdown().await;
}

/// PostgreSQL whatever `GUESTLIST_TEST_STORE` says: replicas need a shared database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_escalate_each_request_once_and_remind_once() {
    let issuer = Issuer::start().await;
    let url: DatabaseUrl = guestlist_testkit::postgres::Cluster::shared()
        .fresh_database()
        .parse()
        .unwrap();
    let store = Store::open(&url).await.unwrap();
    store
        .set_tombstone_key("test-tombstone-key-".repeat(3).into_bytes())
        .await
        .unwrap();
    // Three routed requests created an hour ago: due at the replicas' first tick.
    let an_hour_ago = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    for n in 0..3 {
        let c = Claims::from_json(json!({"email": format!("p{n}@fabrikam.com")})).unwrap();
        store
            .request_approval(&c, &policy(60.0), an_hour_ago, time::Duration::seconds(120))
            .await
            .unwrap();
    }
    let (hook, got) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let (pa, pb) = (dir.path().join("a.db"), dir.path().join("b.db"));
    let (a, b) = tokio::join!(
        start(&issuer, &pa, 60.0, &hook, Some(url.clone())),
        start(&issuer, &pb, 60.0, &hook, Some(url.clone())),
    );
    eventually("the escalation reminder", || !escalations(&got).is_empty()).await;
    // Both replicas tick every second: three more ticks each.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let sent = escalations(&got);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["count"], 3);
    let mut ids = escalated_events(&store).await;
    assert_eq!(ids.len(), 3, "{ids:?}");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "one event per request");
    a.shutdown().await;
    b.shutdown().await;
}
