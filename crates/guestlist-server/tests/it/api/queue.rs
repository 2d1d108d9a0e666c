//! The live queue: the event stream and its resumption, `changeSeq` ordering of changed and
//! decided requests, reminders that a restarted server does not send again, request ids and
//! the labels of `/metrics`.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stream_and_resume() {
    let (issuer, s, c, base, _dir) = served().await;
    request_seed_approvals(&c, &base).await;
    // Resume after event 1 (raw HTTP/1.1 on a socket, reading the chunked stream as it comes):
    // only event 2 is replayed, then a live one arrives.
    use tokio::io::AsyncWriteExt;
    let mut sock = tokio::net::TcpStream::connect(s.addr()).await.unwrap();
    let req = format!(
        "GET /api/events HTTP/1.1\r\nhost: localhost\r\naccept: text/event-stream\r\nauthorization: Bearer {}\r\nlast-event-id: 1\r\n\r\n",
        issuer.token()
    );
    sock.write_all(req.as_bytes()).await.unwrap();
    let mut text = String::new();
    assert!(
        common::read_until(&mut sock, &mut text, "id: 2\n", 10).await,
        "stream closed: {text}"
    );
    assert!(text.contains("content-type: text/event-stream"));
    assert!(!text.contains("id: 1\n"));
    assert!(text.contains("event: request.created"));
    let mut extra = fixture("request-approval.request.facebook.json");
    extra["email"] = json!("third@fabrikam.com");
    connector(&c, &base, "request-approval", &extra).await;
    assert!(
        common::read_until(&mut sock, &mut text, "id: 3\n", 10).await,
        "stream closed: {text}"
    );
    assert!(text.contains("third@fabrikam.com"));
    drop(sock);
    s.shutdown().await;
}

#[tokio::test]
async fn changed_since_lists_new_changed_and_decided_requests_in_change_order() {
    let issuer = Issuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let s = start(Some(&issuer), Policy::default(), &db).await;
    let c = reqwest::Client::new();
    let base = s.base_url();
    let token = issuer.token();
    for n in 1..=3 {
        connector(&c, &base, "request-approval", &google(n, "Guest")).await;
    }
    // Every page carries the mark; the existing parameters behave as before.
    let full = list(&c, &base, &token, "status=pending").await;
    assert_eq!(emails(&full).len(), 3);
    let mark = full["changeSeq"].as_u64().unwrap();
    assert!(mark >= 3, "{full}");
    let paged = list(&c, &base, &token, "status=pending&limit=2").await;
    assert_eq!(emails(&paged).len(), 2);
    assert!(paged["nextCursor"].is_string());
    // Nothing changed since the mark: an empty page with the same mark.
    let none = list(&c, &base, &token, &format!("since={mark}")).await;
    assert_eq!(emails(&none).len(), 0);
    assert_eq!(none["changeSeq"].as_u64(), Some(mark));
    assert!(none.get("nextCursor").is_none());

    // g2 signs up again (a changed request), g1 is denied elsewhere, g4 is new.
    connector(&c, &base, "request-approval", &google(2, "Guest Again")).await;
    let g1 = full["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["key"]["email"] == "g1@fabrikam.com")
        .unwrap()
        .clone();
    let r = c
        .post(format!(
            "{base}/api/requests/{}/decision",
            g1["id"].as_str().unwrap()
        ))
        .bearer_auth(&token)
        .header("if-match", format!("\"{}\"", g1["version"]))
        .json(&json!({"decision":"deny","reason":"unknown"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    connector(&c, &base, "request-approval", &google(4, "Guest")).await;

    // Since the mark, in change order, any status; paged by the cursor with `since` kept.
    let p1 = list(&c, &base, &token, &format!("since={mark}&limit=2")).await;
    assert_eq!(emails(&p1), ["g2@fabrikam.com", "g1@fabrikam.com"]);
    assert_eq!(p1["items"][0]["attempts"], 2);
    assert_eq!(p1["items"][1]["state"]["status"], "denied");
    let cursor = p1["nextCursor"].as_str().unwrap();
    let p2 = list(
        &c,
        &base,
        &token,
        &format!("since={mark}&limit=2&cursor={cursor}"),
    )
    .await;
    assert_eq!(emails(&p2), ["g4@fabrikam.com"]);
    assert!(p2.get("nextCursor").is_none());
    let high = p2["changeSeq"].as_u64().unwrap();
    assert!(high > p1["changeSeq"].as_u64().unwrap() && high >= mark + 3);
    // Passing an intermediate page's mark as `since` gives the rest.
    let rest = list(
        &c,
        &base,
        &token,
        &format!("since={}", p1["changeSeq"].as_u64().unwrap()),
    )
    .await;
    assert_eq!(emails(&rest), ["g4@fabrikam.com"]);
    // Filters combine with `since`.
    let pending = list(&c, &base, &token, &format!("since={mark}&status=pending")).await;
    assert_eq!(emails(&pending), ["g2@fabrikam.com", "g4@fabrikam.com"]);
    let q = list(&c, &base, &token, &format!("since={mark}&q=g4@")).await;
    assert_eq!(emails(&q), ["g4@fabrikam.com"]);
    // An Entra retry (same claims within the retry window) changes nothing.
    connector(&c, &base, "request-approval", &google(4, "Guest")).await;
    let same = list(&c, &base, &token, &format!("since={high}")).await;
    assert_eq!(emails(&same).len(), 0);
    assert_eq!(same["changeSeq"].as_u64(), Some(high));
    // A mark the server never gave (a client of a database since reset): the answer's mark is
    // below it, which tells the client to list everything again.
    let ahead = list(&c, &base, &token, &format!("since={}", high + 100)).await;
    assert_eq!(emails(&ahead).len(), 0);
    assert_eq!(ahead["changeSeq"].as_u64(), Some(high));
    // Not a number: 400.
    let bad = c
        .get(format!("{base}/api/requests?since=yesterday"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let doc: Value = c
        .get(format!("{}/openapi.json", s.admin_url().unwrap()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let params = doc["paths"]["/api/requests"]["get"]["parameters"]
        .as_array()
        .unwrap();
    assert!(params.iter().any(|p| p["name"] == "since"), "{params:?}");
    s.shutdown().await;

    // The sequence is stored: after a restart on the same file the mark still holds, and the
    // next change continues above it.
    let s = start(Some(&issuer), Policy::default(), &db).await;
    let base = s.base_url();
    let after = list(&c, &base, &token, &format!("since={high}")).await;
    assert_eq!(emails(&after).len(), 0);
    assert_eq!(after["changeSeq"].as_u64(), Some(high));
    connector(&c, &base, "request-approval", &google(5, "Guest")).await;
    let next = list(&c, &base, &token, &format!("since={high}")).await;
    assert_eq!(emails(&next), ["g5@fabrikam.com"]);
    assert_eq!(next["changeSeq"].as_u64(), Some(high + 1));
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_does_not_remind_again() {
    use guestlist_server::webhook::Notifications;
    // The webhook receiver records every POST.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |Json(body): Json<Value>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(body);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    // A request made 30 hours ago, in the database file the servers use.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    {
        let store = common::open_store(&db).await;
        let claims = guestlist_core::connector::Claims::from_json(google(7, "Old Guest")).unwrap();
        store
            .request_approval(
                &claims,
                &Policy::default(),
                time::OffsetDateTime::now_utc() - time::Duration::hours(30),
                time::Duration::seconds(120),
            )
            .await
            .unwrap();
    }
    let notifications = Notifications {
        webhook_url: Some(Secret(url)),
        remind_after_hours: Some(24),
        reminder_interval_seconds: 1,
        ..Notifications::default()
    };
    let tweak = |c: &mut Config| c.notifications = notifications.clone();
    let s = start_with(None, Policy::default(), &db, tweak).await;
    let first = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
        .await
        .expect("a reminder within 10 s")
        .unwrap();
    assert_eq!(first["type"], "requests.reminder", "{first}");
    assert_eq!(first["count"], 1, "{first}");
    s.shutdown().await;

    // Restarted on the same file: several reminder checks run (one per second), none posts.
    let s = start_with(None, Policy::default(), &db, tweak).await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert!(
        rx.try_recv().is_err(),
        "the restarted server reminded again"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn request_ids_and_metrics_labels() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(None, Policy::default(), &dir.path().join("m.db")).await;
    let c = reqwest::Client::new();
    let base = s.base_url();
    // Each answer gets its own id (the caller's when it sent one).
    let mut ids = Vec::new();
    for _ in 0..3 {
        let r = c.get(format!("{base}/healthz")).send().await.unwrap();
        let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert_eq!(id.len(), 33, "{id}");
        assert!(
            id.chars().all(|ch| ch == '-' || ch.is_ascii_hexdigit()),
            "{id}"
        );
        ids.push(id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 3, "{ids:?}");
    let r = c
        .get(format!("{base}/healthz"))
        .header("x-request-id", "from-the-caller")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "from-the-caller");
    // Counters are labelled with the endpoint and the answer's code.
    connector(&c, &base, "request-approval", &google(1, "Guest")).await;
    connector(&c, &base, "check-approval-status", &google(1, "Guest")).await;
    connector(&c, &base, "check-approval-status", &google(1, "Guest")).await;
    connector(&c, &base, "check-approval-status", &google(2, "Guest")).await;
    let m = c
        .get(format!("{}/metrics", s.admin_url().unwrap()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        r#"guestlist_connector_answers_total{endpoint="request-approval",answer="GUESTLIST-APPROVAL-REQUESTED"} 1"#,
        r#"guestlist_connector_answers_total{endpoint="check-approval-status",answer="GUESTLIST-APPROVAL-PENDING"} 2"#,
        r#"guestlist_connector_answers_total{endpoint="check-approval-status",answer="Continue"} 1"#,
        r#"guestlist_requests{status="pending"} 1"#,
        // Exposed before the first audit export (a counter without labels starts at 0).
        "guestlist_audit_pages_read_total 0",
    ] {
        assert!(m.lines().any(|l| l == line), "{line} in\n{m}");
    }
    s.shutdown().await;
}
