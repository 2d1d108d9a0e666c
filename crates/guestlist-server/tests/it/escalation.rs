//! Issue 14 §2, escalation, over real HTTP on 127.0.0.1 (SQLite file, or PostgreSQL with
//! `GUESTLIST_TEST_STORE=postgres`): a routed request still pending `escalate_after_hours` after
//! it was created is marked escalated once — `escalatedAt` on the request, the event
//! `request.escalated` on the event stream of a fallback-role approver opened before it
//! escalated, a new change sequence number for `?since=` — and the webhook gets one escalation
//! reminder naming the route, its fallback role and the request; a restarted server does not
//! repeat either. Two replicas on one PostgreSQL escalate each request once and send one
//! reminder.
//!
//! Loose ends of issue 14 (stop 22):
//! - the reminder survives a crash: the `guestlist-server` process, frozen by its fault hook
//!   right after the escalation's commit and killed (SIGKILL), sends it once after a restart;
//!   killed after the webhook accepted and before its cursor moved, it sends it again with the
//!   same idempotency key (at least once, with a key the receiver can use);
//! - escalation keeps the request's version: a copy loaded before it still decides (no 412);
//! - the fallback role's visibility follows the stored `escalated_at`, not the creation time.
//!
//! Stop 23: an escalation writes one history entry (`escalated`, by `Actor::policy("escalation")`,
//! naming the route, its fallback role and the delay) at the unchanged version, shown by
//! `GET /api/requests/{id}/history` and the audit export.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use guestlist_core::connector::Claims;
use guestlist_core::policy::{Policy, RouteRule};
use guestlist_server::RunningServer;
use guestlist_server::config::Secret;
use guestlist_server::duties::Scope;
use guestlist_server::store::escalation::EscalationCut;
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
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let mut v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                // The `Idempotency-Key` header, next to the body's own `idempotencyKey`.
                if let (Some(o), Some(k)) = (v.as_object_mut(), headers.get("idempotency-key")) {
                    o.insert("header:Idempotency-Key".into(), json!(k.to_str().unwrap()));
                }
                g.lock().unwrap().push(v);
                async { "ok" }
            },
        ),
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
    let s = start(&issuer, &db, 5.0, &hook, None).await;
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
    // Escalation keeps the version (what is decided did not change).
    assert_eq!(items[0]["version"], 1);

    // One reminder, naming the route, its fallback role and the request, and no personal
    // data of the unrouted request.
    eventually("the escalation reminder", || !escalations(&got).is_empty()).await;
    let sent = escalations(&got);
    assert_eq!(sent[0]["route"], "partners", "{}", sent[0]);
    assert_eq!(sent[0]["fallbackRole"], "Approver.Fallback");
    assert_eq!(sent[0]["count"], 1);
    assert_eq!(sent[0]["requests"][0]["id"], ana.as_str());
    assert!(!sent[0].to_string().contains("bob@other.example"));
    let key = sent[0]["idempotencyKey"].as_str().unwrap();
    assert!(key.starts_with("escalation-"), "{key}");
    assert_eq!(sent[0]["header:Idempotency-Key"], key);
    // Later ticks (one a second) neither escalate nor remind again.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(escalations(&got).len(), 1, "{:?}", escalations(&got));
    assert_eq!(escalated_events(&s.state.store).await, vec![ana.clone()]);

    // A restarted server on the same database: nothing again.
    drop(sock);
    s.shutdown().await;
    let s = start(&issuer, &db, 5.0, &hook, None).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(escalations(&got).len(), 1, "{:?}", escalations(&got));
    assert_eq!(escalated_events(&s.state.store).await, vec![ana.clone()]);
    let stored = s.state.store.get(ana.parse().unwrap()).await.unwrap();
    assert!(stored.escalated_at.is_some());
    assert_eq!(stored.version, 1);
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

/// Issue 14, stop 22: an approver who opened the request before it escalated decides it with
/// the version they loaded (escalation changes who may decide, not what is decided): no 412.
/// A caller outside the route and its fallback role is still refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_loaded_before_the_escalation_still_decides_it() {
    let issuer = Issuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (hook, _got) = receiver().await;
    let s = start(&issuer, &dir.path().join("v.db"), 5.0, &hook, None).await;
    let partner = token(&issuer, "partner-1", "Approver.Partners");
    let outsider = token(&issuer, "other-1", "Approver.Other");
    let ana = sign_up(&s, "ana@fabrikam.com").await;
    let client = reqwest::Client::new();
    let r = client
        .get(format!("{}/api/requests/{ana}", s.base_url()))
        .bearer_auth(&partner)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    let loaded: Value = r.json().await.unwrap();
    assert!(loaded["escalatedAt"].is_null());
    let id: uuid::Uuid = ana.parse().unwrap();
    for _ in 0..3000 {
        if s.state.store.get(id).await.unwrap().escalated_at.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(s.state.store.get(id).await.unwrap().escalated_at.is_some());
    let deny = |t: &str| {
        client
            .post(format!("{}/api/requests/{ana}/decision", s.base_url()))
            .bearer_auth(t.to_owned())
            .header("If-Match", etag.clone())
            .json(&json!({"decision": "deny", "reason": "not a partner"}))
            .send()
    };
    let r = deny(&outsider).await.unwrap();
    assert_eq!(r.status(), 403, "outside the route and its fallback role");
    let r = deny(&partner).await.unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "the copy loaded before the escalation: {body}");
    assert_eq!(body["state"]["status"], "denied");
    assert!(body["escalatedAt"].is_string(), "{body}");
    s.shutdown().await;
}

/// A request of route `partners` created `ago` before now, stored directly.
async fn seed(store: &Store, email: &str, ago: time::Duration) -> uuid::Uuid {
    let c = Claims::from_json(json!({"email": email, "displayName": email})).unwrap();
    store
        .request_approval(
            &c,
            &policy(60.0),
            time::OffsetDateTime::now_utc() - ago,
            time::Duration::seconds(120),
        )
        .await
        .unwrap();
    store.list(None, Some(email), None, 10).await.unwrap().items[0].id
}

/// Opens the test database of `db` (SQLite file or PostgreSQL) as the servers will.
async fn open_store(db: &std::path::Path) -> Store {
    let store = Store::open(&common::database(db)).await.unwrap();
    if common::database(db).postgres_url().is_some() {
        store
            .set_tombstone_key("test-tombstone-key-".repeat(3).into_bytes())
            .await
            .unwrap();
    }
    store
}

/// Issue 14, stop 22: the fallback role sees what was marked escalated, whatever the delay
/// says now. Raising `escalate_after_hours` after a request escalated (and its reminder went
/// out) does not take it away from the fallback approvers, and an old request not marked yet
/// is not listed before its event (both stores, in SQL).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fallback_visibility_follows_escalated_at_not_the_creation_time() {
    let issuer = Issuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("f.db");
    let store = open_store(&db).await;
    let h = time::Duration::hours(1);
    let marked = seed(&store, "marked@fabrikam.com", h * 3).await;
    // Escalated under a one-hour delay.
    let now = time::OffsetDateTime::now_utc();
    let cut = EscalationCut {
        route: "partners".into(),
        fallback_role: "Approver.Fallback".into(),
        hours: 1.0,
        cutoff: now - h,
    };
    let events = store.escalate_due(&[cut], now, 10).await.unwrap();
    assert_eq!(events.len(), 1);
    // Created as long ago, but after the escalation ran: not marked.
    let unmarked = seed(&store, "unmarked@fabrikam.com", h * 3).await;
    let fallback = Scope {
        escalated: vec!["partners".into()],
        known: vec!["partners".into()],
        ..Scope::default()
    };
    let page = store
        .list_scoped(&fallback, None, None, None, None, 50)
        .await
        .unwrap();
    let ids: Vec<_> = page.items.iter().map(|r| r.id).collect();
    assert_eq!(ids, vec![marked], "only the marked request");
    let since = store
        .list_scoped(&fallback, Some(0), None, None, None, 50)
        .await
        .unwrap();
    assert_eq!(since.items.len(), 1);
    assert!(!ids.contains(&unmarked));
    drop(store);

    // The delay raised to 48 hours: the marked request stays the fallback role's (list, detail,
    // decision); the unmarked one is not due and stays out.
    let (hook, _got) = receiver().await;
    let s = start(&issuer, &db, 48.0 * 3600.0, &hook, None).await;
    let fb = token(&issuer, "fallback-1", "Approver.Fallback");
    let client = reqwest::Client::new();
    let r = client
        .get(format!("{}/api/requests", s.base_url()))
        .bearer_auth(&fb)
        .send()
        .await
        .unwrap();
    let page: Value = r.json().await.unwrap();
    let listed: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, vec![marked.to_string().as_str()], "{page}");
    let r = client
        .get(format!("{}/api/requests/{unmarked}", s.base_url()))
        .bearer_auth(&fb)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = client
        .post(format!("{}/api/requests/{marked}/decision", s.base_url()))
        .bearer_auth(&fb)
        .header("If-Match", "\"1\"")
        .json(&json!({"decision": "deny", "reason": "late"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    s.shutdown().await;
}

/// A `guestlist-server` process on the test database with the route escalating after a minute,
/// checking every second and posting to `hook`; with `fault`, frozen at that point
/// ([`guestlist_server::escalation::Fault`]). Killed (SIGKILL) on drop.
struct Proc {
    child: Child,
    crashed: Option<std::sync::mpsc::Receiver<String>>,
}

impl Proc {
    fn start(dir: &std::path::Path, db: &std::path::Path, hook: &str, fault: Option<&str>) -> Proc {
        let config = dir.join("guestlist.toml");
        std::fs::write(
            &config,
            format!(
                r#"
[notifications]
webhook_url = "{hook}"
reminder_interval_seconds = 1

[[policy.routes]]
name = "partners"
email_domains = ["fabrikam.com"]
role = "Approver.Partners"
fallback_role = "Approver.Fallback"
escalate_after_hours = {hours}
"#,
                hours = 60.0 / 3600.0
            ),
        )
        .unwrap();
        let pw = dir.join("password");
        std::fs::write(&pw, "s3cret-long-enough\n").unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_guestlist-server"));
        command.arg("--config").arg(&config).args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database",
        ]);
        match common::database(db).postgres_url() {
            Some(url) => command.arg(url).env(
                "GUESTLIST_RETENTION__TOMBSTONE_KEY",
                "test-tombstone-key-".repeat(3),
            ),
            None => command.arg(db),
        };
        command
            .env("GUESTLIST_CONNECTOR_USERNAME", "entra")
            .env("GUESTLIST_CONNECTOR_PASSWORD_FILE", &pw)
            .env("GUESTLIST_ADMIN_LISTEN", "off")
            .env_remove("GUESTLIST_TEST_FAULT")
            .stdout(Stdio::null());
        if let Some(f) = fault {
            command
                .env("GUESTLIST_TEST_FAULT", f)
                .stderr(Stdio::piped());
        } else {
            command.stderr(Stdio::null());
        }
        let mut child = command.spawn().unwrap();
        let crashed = child.stderr.take().map(|err| {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                    if line.starts_with("CRASH ") {
                        let _ = tx.send(line);
                    }
                }
            });
            rx
        });
        Proc { child, crashed }
    }

    /// Waits for the fault point's `CRASH` line, then kills the process there (SIGKILL).
    fn kill_at_crash(mut self, point: &str) {
        let rx = self.crashed.take().unwrap();
        let line = rx.recv_timeout(Duration::from_secs(30));
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        assert_eq!(line.unwrap(), format!("CRASH {point}"));
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One due request, a server killed at `point`, then restarted: what the webhook got (after
/// the restart had time for three more ticks) and the request's id.
async fn crash_and_restart(point: &str) -> (Vec<Value>, Vec<Value>, uuid::Uuid) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let store = open_store(&db).await;
    let ana = seed(&store, "ana@fabrikam.com", time::Duration::hours(1)).await;
    drop(store);
    let (hook, got) = receiver().await;
    Proc::start(dir.path(), &db, &hook, Some(point)).kill_at_crash(point);
    let before = escalations(&got);
    // The escalation is committed.
    let store = open_store(&db).await;
    assert_eq!(escalated_events(&store).await, vec![ana.to_string()]);
    drop(store);
    let restarted = Proc::start(dir.path(), &db, &hook, None);
    let n = before.len() + 1;
    eventually("the reminder after the restart", || {
        escalations(&got).len() >= n
    })
    .await;
    tokio::time::sleep(Duration::from_millis(3000)).await;
    drop(restarted);
    (before, escalations(&got), ana)
}

/// Killed after the escalation's commit, before its reminder: the restarted server sends it,
/// once. (Before the outbox, the reminder was lost: nothing was due any more.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_the_escalation_and_its_reminder_still_sends_it_once() {
    let (before, after, ana) = crash_and_restart("escalation.after_commit").await;
    assert!(before.is_empty(), "{before:?}");
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(after[0]["requests"][0]["id"], ana.to_string());
    assert_eq!(after[0]["count"], 1);
    assert_eq!(
        after[0]["header:Idempotency-Key"],
        after[0]["idempotencyKey"]
    );
}

/// Killed after the webhook accepted the reminder, before the cursor moved: the restarted
/// server sends it again (at least once) with the same idempotency key, and then never again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_the_send_repeats_the_reminder_under_the_same_key() {
    let (before, after, ana) = crash_and_restart("escalation.after_send").await;
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(after.len(), 2, "{after:?}");
    assert_eq!(after[1]["requests"][0]["id"], ana.to_string());
    let key = after[0]["idempotencyKey"].as_str().unwrap();
    assert_eq!(after[1]["idempotencyKey"], key);
    assert_eq!(after[1]["header:Idempotency-Key"], key);
}

/// Stop 23: the escalation's history entry, on both stores: one `escalated` line by the policy
/// actor `escalation` with the route, its fallback role and the delay, at the request's
/// unchanged version; in `GET /api/requests/{id}/history` (the approver's "History") and in the
/// audit export as a decision record; written once however many ticks run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_escalation_writes_one_history_entry_without_a_new_version() {
    let issuer = Issuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db");
    let (hook, got) = receiver().await;
    // The server's store is the one seeded: a request created three hours ago, due at once
    // under a one-minute delay.
    let s = start(&issuer, &db, 60.0, &hook, None).await;
    let id = seed(
        &s.state.store,
        "hist@fabrikam.com",
        time::Duration::hours(3),
    )
    .await;
    eventually("the escalation reminder", || !escalations(&got).is_empty()).await;
    let stored = s.state.store.get(id).await.unwrap();
    assert!(stored.escalated_at.is_some());
    assert_eq!(stored.version, 1, "escalation keeps the version");
    // More ticks (one a second) write nothing more.
    tokio::time::sleep(Duration::from_millis(2200)).await;

    let fallback = token(&issuer, "fallback-1", "Approver.Fallback");
    let client = reqwest::Client::new();
    let r = client
        .get(format!("{}/api/requests/{id}/history", s.base_url()))
        .bearer_auth(&fallback)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let history: Vec<Value> = r.json().await.unwrap();
    let escalated: Vec<&Value> = history
        .iter()
        .filter(|h| h["action"] == "escalated")
        .collect();
    assert_eq!(escalated.len(), 1, "{history:?}");
    let h = escalated[0];
    assert_eq!(h["actor"]["kind"], "policy", "{h}");
    assert_eq!(h["actor"]["id"], "escalation", "{h}");
    assert_eq!(h["version"], 1, "{h}");
    assert_eq!(h["detail"]["route"], "partners", "{h}");
    assert_eq!(h["detail"]["fallbackRole"], "Approver.Fallback", "{h}");
    let hours = h["detail"]["escalateAfterHours"].as_f64().unwrap();
    assert!((hours - 60.0 / 3600.0).abs() < 1e-12, "{h}");
    let at: time::OffsetDateTime = time::OffsetDateTime::parse(
        h["at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(
        Some(at),
        stored.escalated_at,
        "the entry is dated at the escalation"
    );
    // The last line of the history: after the sign-up's own line.
    assert_eq!(history.last().unwrap()["action"], "escalated");

    // The audit export lists it as a decision record by the policy rule, and still reads.
    let auditor = {
        let mut c = issuer.claims("auditor-1", 3600);
        c["roles"] = json!(["Auditor"]);
        issuer.sign(&c)
    };
    let r = client
        .get(format!("{}/api/audit?format=ndjson", s.base_url()))
        .bearer_auth(&auditor)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let records: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let esc: Vec<&Value> = records
        .iter()
        .filter(|r| r["action"] == "escalated")
        .collect();
    assert_eq!(esc.len(), 1, "{text}");
    assert_eq!(esc[0]["source"], "decision");
    assert_eq!(esc[0]["requestId"], id.to_string());
    assert_eq!(esc[0]["actorKind"], "policy");
    assert_eq!(esc[0]["actorOid"], "escalation");
    s.shutdown().await;
}
