//! Issue 14 over real HTTP on 127.0.0.1 with real SQLite files: v1.0 access tokens of the
//! configured tenant are accepted (issuer `https://sts.windows.net/{tid}/`, `appid`, `upn`,
//! `aud` = the app ID URI), another tenant's are refused, and the `upn` is the decision's actor
//! (§6); an approver cannot approve or deny their own request, whichever of
//! `preferred_username`, `email` or `upn` names them (§3, 403 `decision.self_approval`).

use serde_json::{Value, json};

use crate::common::*;

const APP_ID_URI: &str = "api://guestlist-approvals";
const GRACE: &str = "grace@contoso.onmicrosoft.com";

/// A v1.0 access token's claims for `upn` from the tenant of `issuer` (its path segment before
/// `/v2.0`, here `tenant`), as Entra issues them for an API with no requested token version.
fn v1_claims(issuer: &Issuer, tenant: &str, upn: &str) -> Value {
    let mut c = issuer.claims("grace-oid", 3600);
    let m = c.as_object_mut().unwrap();
    for v2_only in ["azp", "preferred_username"] {
        m.remove(v2_only);
    }
    m.insert(
        "iss".into(),
        json!(format!("https://sts.windows.net/{tenant}/")),
    );
    m.insert("aud".into(), json!(APP_ID_URI));
    m.insert("appid".into(), json!(DESKTOP));
    m.insert("appidacr".into(), json!("0"));
    m.insert("upn".into(), json!(upn));
    m.insert("unique_name".into(), json!(upn));
    m.insert("name".into(), json!("Grace Hopper"));
    m.insert("tid".into(), json!(tenant));
    m.insert("ver".into(), json!("1.0"));
    c
}

async fn start_server(issuer: &Issuer, db: &std::path::Path) -> guestlist_server::RunningServer {
    start(issuer, db, |c| {
        c.approver_auth.audiences.push(APP_ID_URI.into());
    })
    .await
}

async fn list_status(base: &str, token: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .get(format!("{base}/api/requests"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn pending_id(base: &str, token: &str, email_part: &str) -> String {
    let (st, page) = list_status(base, token).await;
    assert_eq!(st, 200, "{page}");
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["key"]["email"].as_str().unwrap().contains(email_part))
        .unwrap_or_else(|| panic!("no request of {email_part} in {page}"))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn decide(base: &str, token: &str, id: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{base}/api/requests/{id}/decision"))
        .bearer_auth(token)
        .header("if-match", "\"1\"")
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn deny() -> Value {
    json!({"decision": "deny", "reason": "not a partner"})
}

fn approve() -> Value {
    json!({"decision": "approve", "directoryObjectId": "11111111-2222-3333-4444-555555555555", "how": "userCreated"})
}

#[tokio::test]
async fn v1_tokens_of_the_tenant_are_accepted_and_their_upn_is_the_actor() {
    let issuer = Issuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let s = start_server(&issuer, &dir.path().join("g.db")).await;
    let base = s.base_url();

    let v1 = issuer.sign(&v1_claims(&issuer, "tenant", GRACE));
    let (st, body) = list_status(&base, &v1).await;
    assert_eq!(st, 200, "a v1.0 token of the tenant: {body}");
    assert_eq!(list_status(&base, &issuer.token("ada")).await.0, 200);

    // Another tenant's v1.0 token, even signed with a key the server trusts: wrong `iss`.
    let foreign = issuer.sign(&v1_claims(&issuer, "other-tenant", GRACE));
    let (st, body) = list_status(&base, &foreign).await;
    assert_eq!(st, 401, "{body}");
    // The client allow-list reads `appid` in v1.0 tokens.
    let mut other_app = v1_claims(&issuer, "tenant", GRACE);
    other_app["appid"] = json!("00000000-0000-0000-0000-00000000beef");
    let (st, body) = list_status(&base, &issuer.sign(&other_app)).await;
    assert_eq!(st, 403, "{body}");
    assert_eq!(body["error"]["code"], "auth.client_not_allowed");
    // `aud` must still be one of ours.
    let mut wrong_aud = v1_claims(&issuer, "tenant", GRACE);
    wrong_aud["aud"] = json!("api://someone-else");
    assert_eq!(list_status(&base, &issuer.sign(&wrong_aud)).await.0, 401);

    sign_up(&s, "partner@fabrikam.example", 0).await;
    let id = pending_id(&base, &v1, "partner@").await;
    let (st, body) = decide(&base, &v1, &id, deny()).await;
    assert_eq!(st, 200, "{body}");
    let history: Value = reqwest::Client::new()
        .get(format!("{base}/api/requests/{id}/history"))
        .bearer_auth(&v1)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let last = history.as_array().unwrap().last().unwrap();
    assert_eq!(last["action"], "denied", "{history}");
    assert_eq!(last["actor"]["username"], GRACE, "{history}");
    assert_eq!(last["actor"]["name"], "Grace Hopper");
    assert!(
        last["actor"]["client"]
            .as_str()
            .unwrap()
            .starts_with(DESKTOP),
        "{history}"
    );

    // Reopen and the privacy operations record the same actor as decisions: the v1 `upn`.
    let mut admin = v1_claims(&issuer, "tenant", GRACE);
    admin["roles"] = json!(["Approver", "Admin"]);
    let admin = issuer.sign(&admin);
    let resp = reqwest::Client::new()
        .post(format!("{base}/api/requests/{id}/reopen"))
        .bearer_auth(&admin)
        .header("if-match", format!("\"{}\"", body["version"]))
        .json(&json!({"reason": "denied by mistake"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let audit = s.state.store.audit_page(0, 10).await.unwrap();
    let reopen = audit.last().unwrap();
    assert_eq!(reopen.actor.username.as_deref(), Some(GRACE), "{reopen:?}");
    assert_eq!(reopen.actor.name, "Grace Hopper");
}

#[tokio::test]
async fn an_approver_cannot_decide_their_own_request() {
    let issuer = Issuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let s = start_server(&issuer, &dir.path().join("g.db")).await;
    let base = s.base_url();
    // Ada (preferred_username ada@contoso.onmicrosoft.com) signed up herself, spelt otherwise.
    sign_up(&s, "ＡＤＡ@Contoso.onmicrosoft.com", 0).await;
    let ada = issuer.token("ada");
    let id = pending_id(&base, &ada, "ada@").await;
    for body in [approve(), deny()] {
        let (st, err) = decide(&base, &ada, &id, body).await;
        assert_eq!(st, 403, "{err}");
        assert_eq!(err["error"]["code"], "decision.self_approval", "{err}");
    }
    // The same person named by `upn` (v1.0) or by the optional `email` claim.
    let v1 = issuer.sign(&v1_claims(&issuer, "tenant", "ada@contoso.onmicrosoft.com"));
    let mut by_email = issuer.claims("ada-2", 3600);
    by_email["preferred_username"] = json!("a.lovelace@contoso.onmicrosoft.com");
    by_email["email"] = json!("Ada@contoso.onmicrosoft.com");
    for token in [v1, issuer.sign(&by_email)] {
        let (st, err) = decide(&base, &token, &id, approve()).await;
        assert_eq!(st, 403, "{err}");
        assert_eq!(err["error"]["code"], "decision.self_approval");
    }
    // Untouched, and another approver decides it.
    let r: Value = reqwest::Client::new()
        .get(format!("{base}/api/requests/{id}"))
        .bearer_auth(&ada)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["version"], 1, "{r}");
    let grace = issuer.sign(&v1_claims(&issuer, "tenant", GRACE));
    let (st, body) = decide(&base, &grace, &id, approve()).await;
    assert_eq!(st, 200, "{body}");
}
