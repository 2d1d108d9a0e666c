//! Reopening a denial (issue 12 item 6; CONTRACTS.md §7) across processes: devtenant issues the
//! tokens, guestlist-server holds the requests in a real SQLite file, and signed-in `Reviewer`s
//! (real HTTP on 127.0.0.1) deny and reopen through the approval API. The connector's
//! check-approval-status answer follows each step.

use std::sync::Arc;

use guestlist_core::model::RequestState;
use guestlist_devtenant::defaults;
use guestlist_reviewer::{Faults, MemoryStore, codes};
use serde_json::{Value, json};

use crate::reviewer::{Env, facebook, fixture, id_of, sign_in};

/// `GET /api/requests/{id}` with a token devtenant mints for `upn`: (status, ETag, body).
async fn server_request(env: &Env, upn: &str, id: &str) -> (u16, Option<String>, Value) {
    let token = env
        .tenant
        .mint_user_token(upn, defaults::DESKTOP_CLIENT_ID, defaults::API_SCOPE_FULL)
        .unwrap();
    let r = reqwest::Client::new()
        .get(format!("{}/api/requests/{id}", env.api()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let etag = r
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, etag, r.json().await.unwrap())
}

/// `POST /api/requests/{id}/reopen` as `upn` with `If-Match: "<version>"`: (status, body).
async fn raw_reopen(env: &Env, upn: &str, id: &str, version: u64) -> (u16, Value) {
    let token = env
        .tenant
        .mint_user_token(upn, defaults::DESKTOP_CLIENT_ID, defaults::API_SCOPE_FULL)
        .unwrap();
    let r = reqwest::Client::new()
        .post(format!("{}/api/requests/{id}/reopen", env.api()))
        .bearer_auth(token)
        .header("if-match", format!("\"{version}\""))
        .json(&json!({"reason": "again"}))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn code_of(cs: &Value) -> String {
    cs["code"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn an_admin_reopens_a_denial_and_the_sign_up_is_pending_again() {
    let env = Env::start().await;
    let signup = fixture("request-approval.request.facebook.json");
    let check = fixture("check-status.request.facebook.json");
    let email = signup["email"].as_str().unwrap().to_owned();
    env.request_approval(&signup).await;

    // Ada (Approver + Admin) denies it through her app.
    let ada = env
        .reviewer("ada", Arc::new(MemoryStore::new()), Faults::default())
        .await;
    let session = sign_in(&ada, defaults::ADA_UPN).await;
    assert!(session.roles.iter().any(|r| r == "Admin"), "{session:?}");
    ada.sync().await.unwrap();
    let id = id_of(&ada, &email).await;
    let out = ada
        .deny(vec![id.clone()], "unknown supplier".into())
        .await
        .unwrap();
    assert_eq!(out[0].outcome, guestlist_reviewer::Outcome::Done, "{out:?}");
    let denied = out[0].current.clone().unwrap();
    assert!(
        matches!(denied.state, RequestState::Denied { .. }),
        "{denied:?}"
    );
    let cs = env.check_status(&check).await;
    assert!(code_of(&cs).ends_with("-APPROVAL-DENIED"), "{cs}");
    assert_eq!(ada.status().await.pending_count, 0);

    // Grace holds Approver only: refused, and the denial stands.
    let grace = env
        .reviewer("grace", Arc::new(MemoryStore::new()), Faults::default())
        .await;
    let g = sign_in(&grace, defaults::GRACE_UPN).await;
    assert!(!g.roles.iter().any(|r| r == "Admin"), "{g:?}");
    let e = grace
        .reopen(id.clone(), denied.version, "she is a supplier".into())
        .await
        .unwrap_err();
    assert_eq!(e.code, codes::NOT_ADMIN, "{e:?}");
    let (status, body) = raw_reopen(&env, defaults::GRACE_UPN, &id, denied.version).await;
    assert_eq!(status, 403, "{body}");
    // On the wire a token without the role is the generic 403 (§5); the app names the role.
    assert_eq!(body["error"]["code"], "auth.forbidden", "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("Admin"),
        "{body}"
    );
    let (_, _, now) = server_request(&env, defaults::ADA_UPN, &id).await;
    assert_eq!(now["state"]["status"], "denied", "{now}");

    // Ada reopens it with a reason.
    let reason = "denied by mistake: a known supplier";
    let reopened = ada
        .reopen(id.clone(), denied.version, reason.into())
        .await
        .unwrap();
    assert_eq!(reopened.state, RequestState::Pending);
    assert_eq!(reopened.version, denied.version + 1);

    // Pending again in her cache (listed, undecided) and on the server.
    assert_eq!(id_of(&ada, &email).await, id);
    let q = ada.queue(Default::default()).await.unwrap();
    let row = q.items.iter().find(|i| i.id == id).unwrap();
    assert_eq!(row.outbox_state, None, "{row:?}");
    assert_eq!(ada.status().await.pending_count, 1);
    let (status, etag, body) = server_request(&env, defaults::ADA_UPN, &id).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"]["status"], "pending", "{body}");
    assert_eq!(etag, Some(format!("\"{}\"", reopened.version)));

    // History: the denial, then the reopen with who and why.
    let h = ada.history(id.clone()).await.unwrap();
    let denied_at = h.iter().position(|e| e.action == "denied").unwrap();
    let reopen_at = h.iter().position(|e| e.action == "reopened").unwrap();
    assert!(denied_at < reopen_at, "{h:?}");
    let entry = &h[reopen_at];
    assert_eq!(entry.detail["reason"], reason, "{entry:?}");
    assert_eq!(
        entry.detail["deniedReason"], "unknown supplier",
        "{entry:?}"
    );
    assert_eq!(entry.actor.username.as_deref(), Some(defaults::ADA_UPN));
    assert_eq!(entry.version, reopened.version);

    // The connector now answers pending.
    let cs = env.check_status(&check).await;
    assert!(code_of(&cs).ends_with("-APPROVAL-PENDING"), "{cs}");

    // A second reopen with the old version: 412, version_mismatch; nothing changes.
    let e = ada
        .reopen(id.clone(), denied.version, "again".into())
        .await
        .unwrap_err();
    assert_eq!(e.code, codes::VERSION_MISMATCH, "{e:?}");
    let (status, body) = raw_reopen(&env, defaults::ADA_UPN, &id, denied.version).await;
    assert_eq!(status, 412, "{body}");
    assert_eq!(body["error"]["code"], "request.version_mismatch", "{body}");
    // With the current version it is refused as not denied (409).
    let e = ada
        .reopen(id.clone(), reopened.version, "again".into())
        .await
        .unwrap_err();
    assert_eq!(e.code, codes::NOT_DENIED, "{e:?}");
    let (_, etag, _) = server_request(&env, defaults::ADA_UPN, &id).await;
    assert_eq!(etag, Some(format!("\"{}\"", reopened.version)));
    let h = ada.history(id.clone()).await.unwrap();
    assert_eq!(h.iter().filter(|e| e.action == "reopened").count(), 1);
}

/// Any denial is reachable: a request denied on another approver's machine was never in this
/// app's cache (a `guestlist://request/<id>` link to it); its view is read from the approval API
/// with its history, and reopened from there. Offline it says it needs the network (before, the
/// app answered "not in the local cache").
#[tokio::test]
async fn a_denial_made_elsewhere_opens_from_the_server_and_offline_needs_the_network() {
    let mut env = Env::start().await;
    env.request_approval(&facebook(30)).await;
    let grace = env
        .reviewer("grace", Arc::new(MemoryStore::new()), Faults::default())
        .await;
    sign_in(&grace, defaults::GRACE_UPN).await;
    grace.sync().await.unwrap();
    let id = id_of(&grace, "fb30@fabrikam.com").await;
    let out = grace
        .deny(vec![id.clone()], "looks like spam".into())
        .await
        .unwrap();
    assert_eq!(out[0].outcome, guestlist_reviewer::Outcome::Done, "{out:?}");

    let ada = env
        .reviewer("ada", Arc::new(MemoryStore::new()), Faults::default())
        .await;
    sign_in(&ada, defaults::ADA_UPN).await;
    ada.sync().await.unwrap();
    assert_eq!(ada.status().await.pending_count, 0, "never in ada's cache");

    let d = ada.detail(id.clone()).await.unwrap();
    assert_eq!(
        d.request.state,
        RequestState::Denied {
            reason: "looks like spam".into()
        }
    );
    let h = ada.history(id.clone()).await.unwrap();
    let denial = h.iter().find(|e| e.action == "denied").unwrap();
    assert_eq!(denial.actor.username.as_deref(), Some(defaults::GRACE_UPN));
    assert_eq!(
        ada.status().await.pending_count,
        0,
        "a decided request is not cached"
    );

    // The server is gone: the app says the network is needed, not "not found".
    env.stop_server().await;
    let e = ada.detail(id.clone()).await.unwrap_err();
    assert_eq!(e.code, codes::OFFLINE, "{e:?}");
    assert!(!ada.status().await.online);
    env.restart_server().await;

    // From that view an admin reopens it.
    let reopened = ada
        .reopen(id.clone(), d.request.version, "a known supplier".into())
        .await
        .unwrap();
    assert_eq!(reopened.state, RequestState::Pending);
    assert_eq!(id_of(&ada, "fb30@fabrikam.com").await, id);
    let cs = env.check_status(&facebook(30)).await;
    assert!(code_of(&cs).ends_with("-APPROVAL-PENDING"), "{cs}");
}
