//! Issue 12 over real HTTP on 127.0.0.1 with real SQLite files: reopening a denial (and each
//! refusal: no If-Match, stale If-Match, no Admin, not denied, bad reason), the access export
//! (Admin only, audited without the e-mail), and the audit export (NDJSON and CSV, roles, time
//! range, CSV formula guard).

use guestlist_server::RunningServer;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::connector_fixture as fixture;
use crate::common::*;

/// A server with the default config on a database in a temporary directory (kept while the
/// `TempDir` lives): its issuer, the server, its base URL and a token of `approver-1`.
async fn started() -> (Issuer, RunningServer, String, String, tempfile::TempDir) {
    let issuer = Issuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let s = start(&issuer, &dir.path().join("g.db"), |_| {}).await;
    let base = s.base_url();
    let approver = issuer.token("approver-1");
    (issuer, s, base, approver, dir)
}

/// A one-hour token of `oid` holding exactly `roles`.
fn token(issuer: &Issuer, oid: &str, roles: &[&str]) -> String {
    let mut c = issuer.claims(oid, 3600);
    c["roles"] = json!(roles);
    issuer.sign(&c)
}

async fn connector(base: &str, which: &str, body: &Value) -> Value {
    let r = reqwest::Client::new()
        .post(format!("{base}/connectors/{which}"))
        .basic_auth(USER, Some(PASS))
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

/// The sign-up of `email` through identity provider `issuer`; returns the stored request's id.
async fn sign_up_via(base: &str, approver: &str, email: &str, issuer: &str) -> String {
    let mut body = fixture("request-approval.request.facebook.json");
    body["email"] = json!(email);
    body["identities"][0]["issuer"] = json!(issuer);
    connector(base, "request-approval", &body).await;
    let page: Value = reqwest::Client::new()
        .get(format!("{base}/api/requests?status=pending&limit=500"))
        .bearer_auth(approver)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            r["key"]["email"] == json!(email.to_lowercase()) && r["key"]["issuer"] == json!(issuer)
        })
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn check_status_code(base: &str, email: &str, issuer: &str) -> String {
    let mut body = fixture("check-status.request.facebook.json");
    body["email"] = json!(email);
    body["identities"][0]["issuer"] = json!(issuer);
    connector(base, "check-approval-status", &body).await["code"]
        .as_str()
        .unwrap_or("Continue")
        .to_owned()
}

async fn decide(base: &str, token: &str, id: &str, version: u64, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{base}/api/requests/{id}/decision"))
        .bearer_auth(token)
        .header("if-match", format!("\"{version}\""))
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// `POST /reopen`; `if_match: None` sends no header. Returns status, ETag and body.
async fn reopen(
    base: &str,
    token: &str,
    id: &str,
    if_match: Option<&str>,
    body: Value,
) -> (u16, Option<String>, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{base}/api/requests/{id}/reopen"))
        .bearer_auth(token)
        .header("user-agent", "=HYPERLINK(\"x\") admin-console")
        .json(&body);
    if let Some(m) = if_match {
        req = req.header("if-match", m);
    }
    let r = req.send().await.unwrap();
    let etag = r
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_owned());
    (r.status().as_u16(), etag, r.json().await.unwrap())
}

async fn get_text(base: &str, token: &str, path: &str) -> (u16, String, String) {
    let r = reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (r.status().as_u16(), ct, r.text().await.unwrap())
}

#[tokio::test]
async fn reopen_makes_a_denial_pending_again_and_refuses_every_bad_call() {
    let (issuer, s, base, approver, _dir) = started().await;
    let admin = token(&issuer, "admin-1", &["Approver", "Admin"]);
    let email = "kim@partner.example";
    // The same person through two identity providers; denying one denies the other.
    let a = sign_up_via(&base, &approver, email, "facebook.com").await;
    let b = sign_up_via(&base, &approver, email, "google.com").await;
    // A third request of another person, to prove reopen touches only this person's.
    let other = sign_up_via(&base, &approver, "lee@elsewhere.example", "facebook.com").await;
    let (st, denied) = decide(
        &base,
        &approver,
        &a,
        1,
        json!({"decision": "deny", "reason": "not a partner"}),
    )
    .await;
    assert_eq!(st, 200, "{denied}");
    assert_eq!(
        check_status_code(&base, email, "google.com").await,
        "GUESTLIST-APPROVAL-DENIED"
    );
    let version = denied["version"].as_u64().unwrap();
    let good = json!({"reason": "denied by mistake"});

    // Refusals, each with its own status and code; none changes anything.
    let (st, _, v) = reopen(&base, &admin, &a, None, good.clone()).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (428, Some("request.precondition_required"))
    );
    let (st, _, v) = reopen(
        &base,
        &approver,
        &a,
        Some(&format!("\"{version}\"")),
        good.clone(),
    )
    .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (403, Some("auth.forbidden")),
        "{v}"
    );
    let (st, _, v) = reopen(&base, &admin, &a, Some("\"1\""), good.clone()).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (412, Some("request.version_mismatch"))
    );
    assert_eq!(v["current"]["version"].as_u64(), Some(version));
    for (body, code) in [
        (json!({"reason": "   "}), "reopen.reason_required"),
        (
            json!({"reason": "x".repeat(1001)}),
            "reopen.reason_too_long",
        ),
        (json!({"why": "no reason field"}), "reopen.malformed"),
    ] {
        let (st, _, v) = reopen(&base, &admin, &a, Some(&format!("\"{version}\"")), body).await;
        assert_eq!((st, v["error"]["code"].as_str()), (400, Some(code)), "{v}");
    }
    let (st, _, v) = reopen(&base, &admin, &other, Some("\"1\""), good.clone()).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (409, Some("request.not_denied")),
        "{v}"
    );
    assert_eq!(v["current"]["state"]["status"], json!("pending"), "{v}");
    let unknown = uuid::Uuid::new_v4();
    let (st, _, _) = reopen(
        &base,
        &admin,
        &unknown.to_string(),
        Some("\"1\""),
        good.clone(),
    )
    .await;
    assert_eq!(st, 404);
    assert_eq!(
        check_status_code(&base, email, "facebook.com").await,
        "GUESTLIST-APPROVAL-DENIED",
        "a refused reopen changed nothing"
    );

    // The reopen itself.
    let (st, etag, v) = reopen(
        &base,
        &admin,
        &a,
        Some(&format!("\"{version}\"")),
        good.clone(),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["state"]["status"], json!("pending"));
    assert_eq!(v["version"].as_u64(), Some(version + 1));
    assert!(v.get("decidedBy").is_none(), "{v}");
    assert_eq!(etag, Some(format!("\"{}\"", version + 1)));
    // Both requests of the person are pending again, so check-status answers PENDING for each.
    for provider in ["facebook.com", "google.com"] {
        assert_eq!(
            check_status_code(&base, email, provider).await,
            "GUESTLIST-APPROVAL-PENDING",
            "{provider}"
        );
    }
    let history: Value = reqwest::Client::new()
        .get(format!("{base}/api/requests/{b}/history"))
        .bearer_auth(&approver)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let last = history.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["action"], json!("reopened"));
    assert_eq!(last["detail"]["reopenedWith"], json!(a));
    // A second reopen of the same version is stale; of the new version, not denied.
    let (st, _, _) = reopen(
        &base,
        &admin,
        &a,
        Some(&format!("\"{version}\"")),
        good.clone(),
    )
    .await;
    assert_eq!(st, 412);
    let (st, _, v) = reopen(
        &base,
        &admin,
        &a,
        Some(&format!("\"{}\"", version + 1)),
        good,
    )
    .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (409, Some("request.not_denied"))
    );
    // The reopened request can be decided again.
    let (st, v) = decide(
        &base,
        &approver,
        &a,
        version + 1,
        json!({"decision": "approve", "directoryObjectId": "obj-42", "how": "invitation"}),
    )
    .await;
    assert_eq!(st, 200, "{v}");

    // The events: request.reopened for both, carrying the request.
    let events = s.state.store.events_after(0, 100).await.unwrap();
    let reopened: Vec<_> = events
        .iter()
        .filter(|e| e.kind == "request.reopened")
        .map(|e| e.request.as_ref().unwrap().id.to_string())
        .collect();
    assert_eq!(reopened, vec![a.clone(), b.clone()]);

    // The audit export has the reopen (with the admin's identity) and the decisions.
    let auditor = token(&issuer, "auditor-1", &["Auditor"]);
    let (st, ct, text) = get_text(&base, &auditor, "/api/audit?format=ndjson").await;
    assert_eq!(st, 200, "{text}");
    assert_eq!(ct, "application/x-ndjson");
    let records: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let actions: Vec<&str> = records
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec![
            "denied",
            "denied",
            "reopened",
            "reopened",
            "request.reopen",
            "approved"
        ],
        "{text}"
    );
    let op = &records[4];
    assert_eq!(op["source"], json!("operation"));
    assert_eq!(op["requestId"], json!(a));
    assert_eq!(op["actorOid"], json!("admin-1"));
    assert_eq!(op["actorUpn"], json!("ada@contoso.onmicrosoft.com"));
    assert!(
        op["actorClient"]
            .as_str()
            .unwrap()
            .contains("admin-console")
    );
    assert_eq!(records[5]["directoryObjectId"], json!("obj-42"));
    assert_eq!(records[5]["actorOid"], json!("approver-1"));
    // Times are in order.
    let times: Vec<&str> = records.iter().map(|r| r["at"].as_str().unwrap()).collect();
    let parsed: Vec<time::OffsetDateTime> = times
        .iter()
        .map(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).unwrap()
        })
        .collect();
    assert!(parsed.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    s.shutdown().await;
}

#[tokio::test]
async fn audit_export_formats_roles_and_ranges() {
    let (issuer, s, base, approver, _dir) = started().await;
    let a = sign_up_via(&base, &approver, "sam@partner.example", "facebook.com").await;
    let b = sign_up_via(&base, &approver, "tom@partner.example", "facebook.com").await;
    decide(
        &base,
        &approver,
        &a,
        1,
        json!({"decision": "approve", "directoryObjectId": "=cmd|' /C calc'!A0", "how": "invitation"}),
    )
    .await;
    decide(
        &base,
        &approver,
        &b,
        1,
        json!({"decision": "deny", "reason": "no"}),
    )
    .await;

    // Roles: an approver alone may not read the audit; an Auditor or an Admin may.
    let (st, _, _) = get_text(&base, &approver, "/api/audit").await;
    assert_eq!(st, 403);
    for roles in [&["Auditor"][..], &["Admin"][..]] {
        let (st, _, _) = get_text(&base, &token(&issuer, "x", roles), "/api/audit").await;
        assert_eq!(st, 200, "{roles:?}");
    }
    let auditor = token(&issuer, "auditor-1", &["Auditor"]);
    // Bad parameters.
    for (q, code) in [
        ("since=yesterday", "audit.bad_time"),
        ("until=2026-13-01T00:00:00Z", "audit.bad_time"),
        ("format=xml", "audit.bad_format"),
    ] {
        let (st, _, body) = get_text(&base, &auditor, &format!("/api/audit?{q}")).await;
        assert_eq!(st, 400, "{q}");
        assert!(body.contains(code), "{q}: {body}");
    }
    // CSV: header, one row per decision, the formula-looking cell guarded.
    let (st, ct, csv_text) = get_text(&base, &auditor, "/api/audit?format=csv").await;
    assert_eq!((st, ct.as_str()), (200, "text/csv; charset=utf-8"));
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(header[0], "at");
    assert_eq!(header[9], "directoryObjectId");
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2, "{csv_text}");
    assert_eq!(&rows[0][4], "approved");
    assert_eq!(&rows[0][9], "'=cmd|' /C calc'!A0");
    assert_eq!(&rows[1][4], "denied");
    assert_eq!(&rows[1][6], "approver-1");
    // Ranges: everything is after 2000 and before 2100; nothing is after 2100.
    let (_, _, all) = get_text(
        &base,
        &auditor,
        "/api/audit?since=2000-01-01T00:00:00Z&until=2100-01-01T00:00:00%2B01:00",
    )
    .await;
    assert_eq!(all.lines().count(), 2, "{all}");
    let (st, _, none) = get_text(&base, &auditor, "/api/audit?since=2100-01-01T00:00:00Z").await;
    assert_eq!((st, none.as_str()), (200, ""));
    let (_, _, none) = get_text(&base, &auditor, "/api/audit?until=2000-01-01T00:00:00Z").await;
    assert_eq!(none, "");
    s.shutdown().await;
}

#[tokio::test]
async fn access_export_holds_everything_for_the_person_and_is_audited_without_the_email() {
    let (issuer, s, base, approver, _dir) = started().await;
    let a = sign_up_via(
        &base,
        &approver,
        "Ana.Silva@Partner.example",
        "facebook.com",
    )
    .await;
    let b = sign_up_via(&base, &approver, "ana.silva@partner.example", "google.com").await;
    sign_up_via(&base, &approver, "someone@else.example", "facebook.com").await;
    decide(
        &base,
        &approver,
        &a,
        1,
        json!({"decision": "deny", "reason": "unknown"}),
    )
    .await;
    let admin = token(&issuer, "admin-1", &["Admin"]);

    for t in [&approver, &token(&issuer, "auditor-1", &["Auditor"])] {
        let (st, _, _) = get_text(
            &base,
            t,
            "/api/privacy/export?email=ana.silva@partner.example",
        )
        .await;
        assert_eq!(st, 403);
    }
    for q in ["", "?email=", "?email=not-an-address"] {
        let (st, _, body) = get_text(&base, &admin, &format!("/api/privacy/export{q}")).await;
        assert_eq!(st, 400, "{q}");
        assert!(body.contains("privacy.bad_email"), "{body}");
    }
    // Any form of the address with the same canonical form finds the person.
    let (st, _, body) = get_text(
        &base,
        &admin,
        "/api/privacy/export?email=ANA.SILVA@partner.EXAMPLE",
    )
    .await;
    assert_eq!(st, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["email"], json!("ana.silva@partner.example"));
    let requests = v["requests"].as_array().unwrap();
    let ids: Vec<&str> = requests
        .iter()
        .map(|r| r["request"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![a.as_str(), b.as_str()]);
    // Claims, history and the count of stored copies in events.
    assert_eq!(requests[0]["request"]["claims"]["city"], json!("Seattle"));
    let actions: Vec<&str> = requests[0]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["requested", "denied"]);
    assert_eq!(requests[0]["events"], json!(2));
    // The other request was denied with it: also two events.
    assert_eq!(requests[1]["events"], json!(2));
    assert!(!body.contains("someone@else.example"));
    // Denied, but the data is still here: no tombstone (one is kept when the data is erased).
    assert_eq!(v["denialTombstone"], json!(false));

    // An unknown person: an empty export, still audited.
    let (st, _, body) = get_text(
        &base,
        &admin,
        "/api/privacy/export?email=nobody@partner.example",
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["requests"],
        json!([])
    );

    let audit = s.state.store.audit_page(0, 10).await.unwrap();
    assert_eq!(audit.len(), 2);
    assert!(audit.iter().all(|r| r.action.as_str() == "privacy.export"));
    assert_eq!(audit[0].actor.id, "admin-1");
    assert_eq!(audit[0].detail, json!({"requests": 2}));
    let raw = format!("{:?}", audit);
    assert!(!raw.to_lowercase().contains("ana.silva"), "{raw}");
    assert!(!raw.contains("nobody@"), "{raw}");
    s.shutdown().await;
}
