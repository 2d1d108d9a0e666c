//! Erasure and retention (issue 12), over real HTTP on 127.0.0.1 and real SQLite files: an
//! erasure leaves no byte of the person in the database, its WAL or its shared memory file,
//! while the server runs and after it stops; a denial outlives its data (after an erasure and
//! after retention) and a person never denied may sign up again; the route's 400/401/403; the
//! `since=` sync and the event stream announce the erasure; retention runs once at a time, in
//! bounded batches; an erased request's webhook message is not sent after the erasure.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use guestlist_core::connector::Claims;
use guestlist_core::policy::Policy;
use guestlist_server::RunningServer;
use guestlist_server::config::Secret;
use guestlist_server::retention::{Retention, RetentionConfig};
use guestlist_server::store::audit::AuditAction;
use serde_json::{Value, json};

use crate::common::{self, PASS, USER};
use crate::common::{Issuer, eventually, open_stream, read_until};

fn unique() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// A sign-up's claims: `email` and a marker name (given name, display name and company).
fn signup(email: &str, marker: &str) -> Value {
    json!({"email": email, "displayName": format!("{marker} Person"), "givenName": marker,
        "surname": "Person", "companyName": format!("{marker} GmbH"),
        "identities": [{"signInType": "federated", "issuer": "google.com",
            "issuerAssignedId": format!("g-{marker}")}]})
}

fn token_with_roles(issuer: &Issuer, roles: &[&str]) -> String {
    let mut claims = issuer.claims("0f0e0d0c-admin-oid", 3600);
    claims["roles"] = json!(roles);
    claims["name"] = json!("Grace Admin");
    claims["preferred_username"] = json!("grace@contoso.onmicrosoft.com");
    issuer.sign(&claims)
}

async fn connector(s: &RunningServer, which: &str, body: &Value) -> Value {
    let r = reqwest::Client::new()
        .post(format!("{}/connectors/{which}", s.base_url()))
        .basic_auth(USER, Some(PASS))
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{which}");
    r.json().await.unwrap()
}

async fn erase(s: &RunningServer, token: Option<&str>, body: &Value) -> (u16, Value) {
    let mut r = reqwest::Client::new()
        .post(format!("{}/api/privacy/erase", s.base_url()))
        .json(body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn list(s: &RunningServer, token: &str, query: &str) -> Value {
    let r = reqwest::Client::new()
        .get(format!("{}/api/requests?{query}", s.base_url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// Decides the only stored request of `email` through the API (with an Idempotency-Key).
async fn decide(s: &RunningServer, token: &str, email: &str, decision: Value) -> String {
    let page = list(s, token, "limit=500").await;
    let item = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["key"]["email"] == email)
        .unwrap()
        .clone();
    let id = item["id"].as_str().unwrap().to_owned();
    let r = reqwest::Client::new()
        .post(format!("{}/api/requests/{id}/decision", s.base_url()))
        .bearer_auth(token)
        .header("if-match", format!("\"{}\"", item["version"]))
        .header("idempotency-key", format!("k-{id}"))
        .json(&decision)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    id
}

/// Every file of the database (main, `-wal`, `-shm`) that exists, as raw bytes.
fn database_files(db: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| {
            let mut p = db.as_os_str().to_owned();
            p.push(suffix);
            let p = std::path::PathBuf::from(p);
            std::fs::read(&p).ok().map(|b| (p.display().to_string(), b))
        })
        .collect()
}

/// No byte of `needles` is left: on SQLite in the database's files, on PostgreSQL in any row
/// of any table (checked by SQL; its files are the server's, and VACUUM's business).
async fn assert_absent(db: &std::path::Path, needles: &[&str], when: &str) {
    if let Some(url) = common::database(db).postgres_url() {
        for needle in needles {
            let found = common::pg_rows_containing(url, needle).await;
            assert!(found.is_empty(), "{when}: {needle:?} is still in {found:?}");
        }
        return;
    }
    let files = database_files(db);
    assert!(!files.is_empty());
    for (name, bytes) in files {
        for needle in needles {
            let n = needle.as_bytes();
            assert!(
                !bytes.windows(n.len()).any(|w| w == n),
                "{when}: {needle:?} is still in {name} ({} bytes)",
                bytes.len()
            );
        }
    }
}

async fn assert_present(db: &std::path::Path, needle: &str) {
    if let Some(url) = common::database(db).postgres_url() {
        let found = common::pg_rows_containing(url, needle).await;
        assert!(
            !found.is_empty(),
            "{needle:?} should be stored before the erasure"
        );
        return;
    }
    let found = database_files(db)
        .iter()
        .any(|(_, b)| b.windows(needle.len()).any(|w| w == needle.as_bytes()));
    assert!(found, "{needle:?} should be stored before the erasure");
}

#[tokio::test]
async fn erasure_leaves_no_bytes_behind_and_the_denial_outlives_it() {
    let issuer = Issuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    let s = common::start(&issuer, &db, |_| {}).await;
    let approver = issuer.token("approver-oid");
    let admin = token_with_roles(&issuer, &["Approver", "Admin"]);
    let tag = unique();
    let (denied, denied_marker) = (format!("den-{tag}@fabrikam.example"), format!("Zyxwv{tag}"));
    let (approved, approved_marker) =
        (format!("app-{tag}@fabrikam.example"), format!("Qwvut{tag}"));
    for (email, marker) in [(&denied, &denied_marker), (&approved, &approved_marker)] {
        let answer = connector(&s, "request-approval", &signup(email, marker)).await;
        assert_eq!(answer["code"], "GUESTLIST-APPROVAL-REQUESTED", "{answer}");
        // A later attempt with changed claims stores them once more, in `history`.
        let mut changed = signup(email, marker);
        changed["city"] = json!(format!("{marker}ville"));
        let answer = connector(&s, "request-approval", &changed).await;
        assert_eq!(answer["code"], "GUESTLIST-APPROVAL-PENDING", "{answer}");
    }
    let denied_id = decide(
        &s,
        &approver,
        &denied,
        json!({"decision": "deny", "reason": format!("not {denied_marker}")}),
    )
    .await;
    let approved_id = decide(
        &s,
        &approver,
        &approved,
        json!({"decision": "approve", "directoryObjectId": "obj-1", "how": "userCreated"}),
    )
    .await;
    let denied_answer = connector(
        &s,
        "check-approval-status",
        &signup(&denied, &denied_marker),
    )
    .await;
    assert_eq!(
        denied_answer["code"], "GUESTLIST-APPROVAL-DENIED",
        "{denied_answer}"
    );
    let mark = list(&s, &approver, "limit=500").await["changeSeq"]
        .as_u64()
        .unwrap();
    s.state.store.checkpoint_truncate().await.unwrap();
    assert_present(&db, &denied_marker).await;
    let mut stream = open_stream(&s, &approver, None, None).await;
    let mut seen = String::new();
    read_until(&mut stream, &mut seen, "\r\n\r\n", 10).await;

    let (status, counts) = erase(&s, Some(&admin), &json!({"email": denied.to_uppercase()})).await;
    assert_eq!(status, 200, "{counts}");
    assert_eq!(counts["requests"], 1);
    assert_eq!(counts["denialKept"], true);
    assert_eq!(counts["idempotency"], 1);
    assert!(counts["historyEntries"].as_u64().unwrap() >= 2, "{counts}");
    assert!(counts["events"].as_u64().unwrap() >= 2, "{counts}");
    let (status, counts) = erase(
        &s,
        Some(&admin),
        &json!({"email": approved, "keepDenial": true}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(counts["requests"], 1);
    assert_eq!(counts["denialKept"], false, "never denied: nothing to keep");

    // The live stream and the next sync announce both erasures, without personal data.
    read_until(
        &mut stream,
        &mut seen,
        &format!("\"requestId\":\"{approved_id}\""),
        10,
    )
    .await;
    assert!(seen.contains("event: request.erased"), "{seen}");
    assert!(seen.contains(&denied_id));
    let page = list(&s, &approver, &format!("since={mark}")).await;
    assert_eq!(page["erased"], json!([denied_id, approved_id]), "{page}");
    assert_eq!(page["items"], json!([]));
    assert!(page["changeSeq"].as_u64().unwrap() > mark);

    // No byte of either person is left while the server runs.
    let needles = [
        denied.as_str(),
        denied_marker.as_str(),
        approved.as_str(),
        approved_marker.as_str(),
    ];
    assert_absent(&db, &needles, "server running").await;
    if let Some(sqlite) = s.state.store.sqlite() {
        let (differing, _) = sqlite.verify_check_index(&[]).unwrap();
        assert!(differing.is_empty(), "{differing:?}");
    }

    // The denial outlives its data; request-approval stores nothing new.
    let again = connector(&s, "check-approval-status", &signup(&denied, "Other")).await;
    assert_eq!(again, denied_answer);
    let again = connector(&s, "request-approval", &signup(&denied, "Other")).await;
    assert_eq!(again, denied_answer);
    assert!(
        s.state
            .store
            .list(None, None, None, 10)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    // The approved person (never denied) may sign up again.
    let fresh = connector(&s, "request-approval", &signup(&approved, "Fresh")).await;
    assert_eq!(fresh["code"], "GUESTLIST-APPROVAL-REQUESTED", "{fresh}");

    // Audited: who, the counts, not the e-mail.
    let audit = s.state.store.audit_page(0, 10).await.unwrap();
    assert_eq!(audit.len(), 2);
    assert_eq!(audit[0].action, AuditAction::Erase);
    assert_eq!(audit[0].actor.id, "0f0e0d0c-admin-oid");
    assert_eq!(audit[0].detail["requests"], 1);
    assert!(!format!("{:?}", audit[0]).contains(&denied));
    // An access request for the erased person finds nothing but the fact of the tombstone.
    let held = s
        .state
        .store
        .access_export(&denied, time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert!(held.requests.is_empty());
    assert!(held.denial_tombstone);
    let held = s
        .state
        .store
        .access_export(&approved, time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert!(!held.denial_tombstone);
    drop(stream);
    s.shutdown().await;

    // (The approved person signed up again above, so only their old marker must be gone.)
    assert_absent(
        &db,
        &[&denied, &denied_marker, &approved_marker],
        "server stopped",
    )
    .await;
    // History keeps who decided, when and the outcome, and nothing the person or approver typed
    // (read from SQLite's file; on PostgreSQL `assert_absent` above read every row).
    if !common::on_postgres() {
        let conn =
            rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .unwrap();
        let rows: Vec<(String, String, String)> = conn
            .prepare("SELECT action, actor_json, detail_json FROM history WHERE request_id = ?1 ORDER BY id")
            .unwrap()
            .query_map([&denied_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let actions: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(actions, ["requested", "attempted", "denied"]);
        assert!(rows[2].1.contains("approver-oid"), "{}", rows[2].1);
        assert_eq!(rows[2].2, r#"{"decision":"deny"}"#);
        assert_eq!(rows[1].2, r#"{"answer":"GUESTLIST-APPROVAL-PENDING"}"#);
    }

    // After a restart the denial still holds (the tombstone key is kept beside the database,
    // readable by its owner only).
    let key_file = dir.path().join("g.db.tombstone-key");
    #[cfg(unix)]
    if !common::on_postgres() {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let s = common::start(&issuer, &db, |_| {}).await;
    let again = connector(&s, "check-approval-status", &signup(&denied, "Later")).await;
    assert_eq!(again, denied_answer);
    s.shutdown().await;
}

#[tokio::test]
async fn erasure_needs_an_admin_and_a_valid_email() {
    let issuer = Issuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let s = common::start(&issuer, &dir.path().join("g.db"), |_| {}).await;
    let body = json!({"email": "someone@fabrikam.example"});
    let (status, v) = erase(&s, None, &body).await;
    assert_eq!(status, 401, "{v}");
    let approver_only = token_with_roles(&issuer, &["Approver"]);
    let (status, v) = erase(&s, Some(&approver_only), &body).await;
    assert_eq!(status, 403, "{v}");
    let auditor = token_with_roles(&issuer, &["Auditor"]);
    assert_eq!(erase(&s, Some(&auditor), &body).await.0, 403);
    let admin = token_with_roles(&issuer, &["Admin"]);
    for bad in [
        json!({"email": "not an address"}),
        json!({"email": "a\u{200b}b@x.example"}),
    ] {
        let (status, v) = erase(&s, Some(&admin), &bad).await;
        assert_eq!(status, 400, "{bad}: {v}");
        assert_eq!(v["error"]["code"], "privacy.bad_email");
    }
    let (status, v) = erase(&s, Some(&admin), &json!({"mail": "x@y.example"})).await;
    assert_eq!(status, 400, "{v}");
    // Nobody stored: 200 with zero counts.
    let (status, v) = erase(&s, Some(&admin), &body).await;
    assert_eq!(status, 200);
    assert_eq!(v["requests"], 0);
    s.shutdown().await;
}

#[tokio::test]
async fn a_denial_outlives_retention() {
    let issuer = Issuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    let s = common::start(&issuer, &db, |c| {
        c.retention.decided_after_days = 0;
        c.retention.interval_seconds = 0;
        c.retention.tombstone_key = Some(Secret("k".repeat(40)));
    })
    .await;
    let approver = issuer.token("approver-oid");
    let tag = unique();
    let (denied, approved) = (
        format!("den-{tag}@fabrikam.example"),
        format!("app-{tag}@fabrikam.example"),
    );
    let marker = format!("Zyxwv{tag}");
    for email in [&denied, &approved] {
        connector(&s, "request-approval", &signup(email, &marker)).await;
    }
    decide(
        &s,
        &approver,
        &denied,
        json!({"decision": "deny", "reason": "no"}),
    )
    .await;
    decide(
        &s,
        &approver,
        &approved,
        json!({"decision": "approve", "directoryObjectId": "obj-2", "how": "userCreated"}),
    )
    .await;
    let denied_answer = connector(&s, "check-approval-status", &signup(&denied, &marker)).await;
    // Decided "0 days ago" is in the past by the time the job runs.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let report = s.state.retention.run_once().await.unwrap().unwrap();
    assert_eq!(report.erased.requests, 2);
    assert!(report.erased.denial_kept);
    assert!(
        s.state
            .store
            .list(None, None, None, 10)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert_absent(&db, &[&denied, &approved, &marker], "after retention").await;
    assert_eq!(
        connector(&s, "check-approval-status", &signup(&denied, "Other")).await,
        denied_answer
    );
    assert_eq!(
        connector(&s, "request-approval", &signup(&denied, "Other")).await,
        denied_answer
    );
    let fresh = connector(&s, "request-approval", &signup(&approved, "Other")).await;
    assert_eq!(fresh["code"], "GUESTLIST-APPROVAL-REQUESTED");
    let audit = s.state.store.audit_page(0, 10).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].action, AuditAction::Retention);
    assert_eq!(audit[0].detail["requests"], 2);
    s.shutdown().await;
    // The configured key (not a generated file) holds the tombstone across a restart.
    assert!(!dir.path().join("g.db.tombstone-key").exists());
    let s = common::start(&issuer, &db, |c| {
        c.retention.tombstone_key = Some(Secret("k".repeat(40)));
    })
    .await;
    assert_eq!(
        connector(&s, "check-approval-status", &signup(&denied, "Later")).await,
        denied_answer
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_runs_once_at_a_time_in_bounded_batches() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::open_store(&dir.path().join("g.db")).await;
    let t0 = time::OffsetDateTime::now_utc() - time::Duration::days(10);
    let policy = Policy::default();
    // 1,200 old pending requests, written by 8 tasks so the writer commits them in groups.
    let writers: Vec<_> = (0..8)
        .map(|t| {
            let (store, policy) = (store.clone(), policy.clone());
            tokio::spawn(async move {
                for i in 0..150 {
                    let c =
                        Claims::from_json(json!({"email": format!("p{t}-{i}@x.example")})).unwrap();
                    store
                        .request_approval(&c, &policy, t0, time::Duration::ZERO)
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    // The clock tells the test when a run holds the job, then waits for the test's go.
    let (entered_tx, entered_rx) = std::sync::mpsc::channel::<()>();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let (entered_tx, go_rx) = (
        std::sync::Mutex::new(entered_tx),
        std::sync::Mutex::new(go_rx),
    );
    let clock_calls = Arc::new(AtomicU64::new(0));
    let calls = clock_calls.clone();
    let config = RetentionConfig {
        pending_after_days: Some(1),
        batch_size: 500,
        ..RetentionConfig::default()
    };
    let job = Arc::new(
        Retention::new(store.clone(), config, None, None).with_clock(Arc::new(move || {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                entered_tx.lock().unwrap().send(()).unwrap();
                go_rx
                    .lock()
                    .unwrap()
                    .recv_timeout(Duration::from_secs(30))
                    .unwrap();
            }
            time::OffsetDateTime::now_utc()
        })),
    );
    // The first run's clock blocks its thread: it runs on a thread of its own.
    let first = {
        let (job, rt) = (job.clone(), tokio::runtime::Handle::current());
        std::thread::spawn(move || rt.block_on(job.run_once()))
    };
    entered_rx.recv_timeout(Duration::from_secs(30)).unwrap();
    assert!(
        job.run_once().await.is_none(),
        "a second trigger while running does nothing"
    );
    go_tx.send(()).unwrap();
    let report = first.join().unwrap().unwrap().unwrap();
    assert_eq!(report.erased.requests, 1200);
    assert_eq!(report.batches, 3, "500 + 500 + 200");
    assert!(!report.erased.denial_kept);
    assert_eq!(clock_calls.load(Ordering::SeqCst), 1);
    assert!(
        store
            .list(None, None, None, 10)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert_eq!(
        store
            .status_counts()
            .await
            .unwrap()
            .iter()
            .map(|(_, n)| n)
            .sum::<u64>(),
        0
    );
    assert!(
        job.render_metrics()
            .contains("guestlist_retention_requests_erased_total 1200")
    );
    let again = job.run_once().await.unwrap().unwrap();
    assert_eq!(again.erased.requests, 0);
    let audit = store.audit_page(0, 10).await.unwrap();
    assert_eq!(
        audit.len(),
        1,
        "one audit row per run that erased something"
    );
    assert_eq!(audit[0].action, AuditAction::Retention);
    assert_eq!(audit[0].detail["batches"], 3);
}

#[tokio::test]
async fn an_erased_request_is_not_announced_after_the_erasure() {
    // A webhook that always answers 503: the message is retried every 200 ms.
    let hits = Arc::new(AtomicU64::new(0));
    let h = hits.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            h.fetch_add(1, Ordering::SeqCst);
            async { axum::http::StatusCode::SERVICE_UNAVAILABLE }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let issuer = Issuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let s = common::start(&issuer, &dir.path().join("g.db"), |c| {
        c.notifications.webhook_url = Some(Secret(hook));
        c.notifications.retries = 50;
        c.notifications.retry_initial_ms = 200;
    })
    .await;
    let email = format!("hook-{}@fabrikam.example", unique());
    connector(&s, "request-approval", &signup(&email, "Hooked")).await;
    eventually("the first delivery attempt", || {
        hits.load(Ordering::SeqCst) >= 1
    })
    .await;
    let admin = token_with_roles(&issuer, &["Admin"]);
    assert_eq!(
        erase(&s, Some(&admin), &json!({"email": email})).await.0,
        200
    );
    // The abort follows the erasure's event; after that, no attempt (retries are 200–400 ms
    // apart, so a surviving delivery would try again within this second).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = hits.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        hits.load(Ordering::SeqCst),
        after,
        "no delivery after the erasure"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn old_events_and_idempotency_records_are_compacted_and_recent_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::open_store(&dir.path().join("g.db")).await;
    let policy = Policy::default();
    let now = time::OffsetDateTime::now_utc();
    let old = now - time::Duration::days(40);
    let actor = guestlist_core::model::Actor::policy("test");
    for (i, at) in [(0, old), (1, old), (2, old), (3, now)] {
        let c = Claims::from_json(json!({"email": format!("e{i}@x.example")})).unwrap();
        let out = store
            .request_approval(&c, &policy, at, time::Duration::ZERO)
            .await
            .unwrap();
        let id = out.event.unwrap().request_id;
        let approve = guestlist_core::model::Decision::Approve {
            directory_object_id: format!("obj-{i}"),
            how: guestlist_core::model::ProvisionedBy::UserCreated,
        };
        store
            .decide(id, &approve, &actor, None, Some(&format!("k{i}")), at)
            .await
            .unwrap();
    }
    assert_eq!(store.events_after(0, 100).await.unwrap().len(), 8);
    // Requests are kept (decided 40 days ago, kept 90); events and records older than 30 go,
    // two per batch.
    let config = RetentionConfig {
        batch_size: 2,
        ..RetentionConfig::default()
    };
    let job = Retention::new(store.clone(), config, None, None);
    let report = job.run_once().await.unwrap().unwrap();
    assert_eq!(report.erased.requests, 0);
    assert_eq!(report.events_compacted, 6);
    assert_eq!(report.idempotency_dropped, 3);
    let left = store.events_after(0, 100).await.unwrap();
    assert_eq!(left.len(), 2, "the recent request's two events stay");
    assert!(
        left.iter()
            .all(|e| e.request.as_ref().unwrap().key.email == "e3@x.example")
    );
    assert_eq!(
        store.list(None, None, None, 10).await.unwrap().items.len(),
        4
    );
    assert!(
        job.render_metrics()
            .contains("guestlist_retention_events_compacted_total 6")
    );
    let audit = store.audit_page(0, 10).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].detail["eventsCompacted"], 6);
}
