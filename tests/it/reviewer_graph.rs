//! guestlist-graph against devtenant over real HTTP: create, look up, invite, patch, get,
//! `$batch` above 20 items, Retry-After on throttling, ODataError mapping, network errors.

use guestlist_core::plan::{lookup_by_identity, lookup_by_mail};
use guestlist_devtenant::{DevTenant, DevTenantConfig, FaultConfig, defaults};
use guestlist_graph::{BatchItem, Error, GraphClient, GraphConfig};
use serde_json::json;

async fn tenant() -> (guestlist_devtenant::DevTenantHandle, GraphClient, String) {
    let t = DevTenant::start(DevTenantConfig::default()).await.unwrap();
    let token = t
        .mint_user_token(
            defaults::ADA_UPN,
            defaults::DESKTOP_CLIENT_ID,
            "https://graph.microsoft.com/User.ReadWrite.All https://graph.microsoft.com/User.Invite.All",
        )
        .unwrap();
    let g = GraphClient::new(GraphConfig::new(t.graph_base())).unwrap();
    (t, g, token)
}

fn guest(n: usize) -> serde_json::Value {
    json!({
        "userPrincipalName": format!("g{n}_fabrikam.com#EXT@contoso.onmicrosoft.com"),
        "accountEnabled": true,
        "mail": format!("g{n}@fabrikam.com"),
        "userType": "Guest",
        "displayName": format!("Guest {n}"),
        "identities": [{"signInType":"federated","issuer":"facebook.com","issuerAssignedId":format!("fb-{n}")}]
    })
}

#[tokio::test]
async fn users_invitations_and_errors() {
    let (t, g, token) = tenant().await;
    let created = g.create_user(&token, &guest(1)).await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let found = g
        .find_users(&token, &lookup_by_identity("facebook.com", "fb-1"))
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["id"], id.as_str());
    assert_eq!(
        g.find_users(&token, &lookup_by_mail("g1@fabrikam.com"))
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        g.find_users(&token, &lookup_by_mail("o'hara+x@fabrikam.com"))
            .await
            .unwrap()
            .is_empty()
    );
    g.patch_user(&token, &id, &json!({"city": "Lyon"}))
        .await
        .unwrap();
    // Graph returns a default property set: ask for `city` explicitly.
    assert_eq!(
        g.get_user(&token, &id, Some("id,city")).await.unwrap()["city"],
        "Lyon"
    );
    let inv = g
        .invite(&token, &json!({"invitedUserEmailAddress":"ann@woodgrove.com","inviteRedirectUrl":"https://myapp.com","sendInvitationMessage":false}))
        .await
        .unwrap();
    assert!(inv["invitedUser"]["id"].is_string());
    // A duplicate UPN → Graph's ODataError with code and request-id.
    let err = g.create_user(&token, &guest(1)).await.unwrap_err();
    let ge = err.graph().expect("a Graph error");
    assert_eq!(ge.status, 400);
    assert!(!ge.code.is_empty());
    assert!(ge.request_id.is_some(), "{ge:?}");
    // Unknown id → 404.
    let e = g
        .get_user(&token, "00000000-0000-0000-0000-000000000000", None)
        .await
        .unwrap_err();
    assert_eq!(e.graph().unwrap().status, 404);
    // A bad token → 401 with a code.
    let e = g.get_user("not-a-token", &id, None).await.unwrap_err();
    assert_eq!(e.graph().unwrap().status, 401);
    t.shutdown().await;
    // Nothing listens any more: a network error, distinguishable from Graph errors.
    let e = g.get_user(&token, &id, None).await.unwrap_err();
    assert!(matches!(e, Error::Network(_)), "{e:?}");
}

#[tokio::test]
async fn batch_splits_above_twenty_and_retries_throttled_items() {
    let (t, g, token) = tenant().await;
    // 45 creates: three batch requests; a third of the items throttled with Retry-After 1.
    t.set_faults(FaultConfig {
        throttle_rate: 0.3,
        seed: 7,
        retry_after_secs: 1,
        ..FaultConfig::default()
    })
    .unwrap();
    let items: Vec<BatchItem> = (100..145)
        .map(|n| BatchItem {
            id: n.to_string(),
            method: "POST".into(),
            url: "/users".into(),
            body: Some(guest(n)),
            depends_on: vec![],
        })
        .collect();
    let start = std::time::Instant::now();
    let results = g.batch(&token, items).await.unwrap();
    let took = start.elapsed();
    assert_eq!(results.len(), 45);
    let retried = results.iter().filter(|r| r.attempts > 1).count();
    assert!(retried > 0, "some items were throttled and retried");
    assert!(
        took >= std::time::Duration::from_secs(1),
        "Retry-After was honoured: {took:?}"
    );
    for r in &results {
        assert!(r.is_success() || r.status == 429, "{r:?}");
    }
    let ok = results.iter().filter(|r| r.is_success()).count();
    t.set_faults(FaultConfig::default()).unwrap();
    let guests = t
        .users()
        .into_iter()
        .filter(|u| u["userType"] == "Guest")
        .count();
    assert_eq!(guests, ok, "each successful item created exactly one user");
    eprintln!("batch of 45: {ok} created, {retried} retried, {took:?}");
    // Single requests: 429 with Retry-After is retried until it passes.
    t.set_faults(FaultConfig {
        throttle_rate: 0.5,
        seed: 3,
        retry_after_secs: 1,
        ..FaultConfig::default()
    })
    .unwrap();
    let mut cfg = GraphConfig::new(t.graph_base());
    cfg.max_attempts = 10;
    let patient = GraphClient::new(cfg).unwrap();
    for n in 0..4 {
        patient
            .find_users(
                &token,
                &lookup_by_mail(&format!("g{}@fabrikam.com", 100 + n)),
            )
            .await
            .unwrap();
    }
    // Always throttled: bounded attempts, then the 429 error.
    t.set_faults(FaultConfig {
        throttle_rate: 1.0,
        seed: 1,
        retry_after_secs: 0,
        ..FaultConfig::default()
    })
    .unwrap();
    let e = g
        .find_users(&token, &lookup_by_mail("x@y.z"))
        .await
        .unwrap_err();
    assert_eq!(e.graph().unwrap().status, 429);
    t.shutdown().await;
}
