//! Issue 17 end to end across real parts: devtenant playing an external tenant (its user-flow
//! player calls the custom authentication extensions with its own tokens), guestlist-server on
//! a real SQLite file, and guestlist-reviewer signed in over the loopback redirect.
//!
//! A person signs up → blocked pending approval; the approver approves in the reviewer → the
//! request is approved with `how: userFlow` and devtenant records no Graph write; the person
//! signs up again → Start prefills what they submitted before (nothing is typed again), Submit
//! continues, and devtenant holds exactly one customer account for them, with those
//! attributes; a third attempt through another identity provider with the same e-mail is
//! blocked (the account exists).

use std::sync::Arc;
use std::time::Duration;

use guestlist_core::model::{Flow, ProvisionedBy, RequestState};
use guestlist_devtenant::userflow::{self, ExtensionConfig, Outcome, PlayerConfig, Step};
use guestlist_devtenant::{DevTenant, DevTenantConfig, TenantKind, defaults};
use guestlist_reviewer::{Faults, MemoryStore};
use serde_json::{Map, Value, json};

use crate::reviewer::{Env, id_of, server_config, sign_in};

const EMAIL: &str = "linnea.oberg@example.org";

fn linnea(provider: userflow::Provider, typed: &[(&str, &str)]) -> userflow::SignUp {
    let mut fed = Map::new();
    fed.insert("email".into(), json!(EMAIL));
    fed.insert("ui_locales".into(), json!("sv-SE"));
    if provider == userflow::Provider::Google {
        fed.insert(
            "identities".into(),
            json!([{"signInType": "federated", "issuer": "google.com", "issuerAssignedId": "g-17"}]),
        );
    }
    let collected = typed
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect();
    userflow::SignUp {
        provider,
        federation_claims: fed,
        collected,
        note: String::new(),
    }
}

/// devtenant's customer accounts holding `EMAIL` (any identity), never guests.
fn customers(env: &Env) -> Vec<Value> {
    env.tenant
        .users()
        .into_iter()
        .filter(|u| {
            u["identities"].as_array().is_some_and(|ids| {
                ids.iter()
                    .any(|i| i["issuerAssignedId"].as_str() == Some(EMAIL))
            }) || u["mail"].as_str() == Some(EMAIL)
        })
        .collect()
}

async fn graph_writes(env: &Env) -> Vec<Value> {
    let v: Value = reqwest::get(format!("{}/_devtenant/graph-calls", env.tenant.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["value"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c["method"] != "GET")
        .collect()
}

#[tokio::test]
async fn an_external_sign_up_is_approved_without_graph_and_finished_by_the_person() {
    let tenant = DevTenant::start(DevTenantConfig {
        tenant_kind: TenantKind::External,
        ..DevTenantConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut c = server_config(
        &tenant,
        &dir.path().join("server.db"),
        "127.0.0.1:0".parse().unwrap(),
    );
    c.extension_auth.issuers = vec![tenant.customer_issuer().unwrap()];
    c.extension_auth.jwks_uri = Some(tenant.jwks_uri());
    c.extension_auth.audiences = vec![defaults::API_APP_ID_URI.into()];
    let server = guestlist_server::spawn(c).await.unwrap();
    let env = Env {
        server_addr: server.addr(),
        server: Some(server),
        tenant,
        dir,
    };
    let cfg = PlayerConfig {
        api: env.api(),
        username: "entra-connector".into(),
        password: "unused by the extensions".into(),
        timeout: Duration::from_secs(20),
        tenant_url: Some(env.tenant.base_url()),
        extensions_app_id: defaults::EXTENSIONS_APP_ID.into(),
    };
    let mut ext = ExtensionConfig::for_api(&env.api());
    // Generous for a loaded CI machine; Entra's bound is 2000 ms.
    ext.timeout = Duration::from_millis(2000);
    let http = reqwest::Client::new();
    let mut lines = Vec::new();

    // 1. She signs up with her e-mail: blocked at Submit, pending approval; no account.
    let first = linnea(
        userflow::Provider::EmailOtp,
        &[("displayName", "Linnéa Öberg"), ("city", "Umeå")],
    );
    let r = userflow::play_external(&http, &cfg, &ext, &first, &mut |l| lines.push(l))
        .await
        .unwrap();
    assert!(
        matches!(
            r.outcome,
            Outcome::Blocked {
                step: Step::PostAttributeCollection,
                ..
            }
        ),
        "{r:?} {lines:?}"
    );
    assert!(r.block_title.is_some(), "showBlockPage carries a title");
    assert!(customers(&env).is_empty());

    // 2. The approver sees an external request and approves it: nothing written in Graph.
    let reviewer = env
        .reviewer("ada", Arc::new(MemoryStore::new()), Faults::default())
        .await;
    sign_in(&reviewer, defaults::ADA_UPN).await;
    reviewer.sync().await.unwrap();
    let id = id_of(&reviewer, EMAIL).await;
    let q = reviewer.queue(Default::default()).await.unwrap();
    assert_eq!(q.items[0].flow, Flow::External);
    // Her e-mail account is a local account of the external tenant: the provider `email`, with
    // the identity devtenant's player sent (issue 17; before, "Entra ID" with no identity).
    assert_eq!(q.items[0].identity_provider, "email");
    let d = reviewer.detail(id.clone()).await.unwrap();
    assert_eq!(d.request.flow, Flow::External);
    assert_eq!(d.identity.provider, "email");
    assert_eq!(d.identity.label, "Email (external tenant)");
    assert_eq!(d.identity.sign_in_type.as_deref(), Some("email"));
    assert_eq!(d.identity.issuer_assigned_id.as_deref(), Some(EMAIL));
    assert!(d.invitation.is_none());
    assert_eq!(d.plan.as_ref().unwrap().kind, ProvisionedBy::UserFlow);
    assert_eq!(
        d.if_approved,
        "Approve lets Linnéa Öberg finish their sign-up; Entra creates their account then"
    );
    let out = reviewer.approve(vec![id]).await.unwrap();
    assert_eq!(out[0].outcome, guestlist_reviewer::Outcome::Done, "{out:?}");
    assert_eq!(out[0].how, Some(ProvisionedBy::UserFlow));
    assert_eq!(out[0].directory_object_id, None);
    assert!(matches!(
        out[0].current.as_ref().unwrap().state,
        RequestState::Approved {
            directory_object_id: None,
            how: ProvisionedBy::UserFlow
        }
    ));
    assert_eq!(
        graph_writes(&env).await,
        Vec::<Value>::new(),
        "no Graph write"
    );
    assert!(
        customers(&env).is_empty(),
        "Entra creates the account later"
    );

    // 3. She comes back: Start prefills the page's fields with what she submitted before, so
    //    what she would type into empty fields is never used; Submit continues; the account
    //    exists, with the prefilled values.
    let again = linnea(
        userflow::Provider::EmailOtp,
        &[("displayName", "typed again"), ("city", "typed again")],
    );
    let r = userflow::play_external(&http, &cfg, &ext, &again, &mut |l| lines.push(l))
        .await
        .unwrap();
    assert!(
        matches!(r.outcome, Outcome::AccountCreated { .. }),
        "{r:?} {lines:?}"
    );
    assert_eq!(r.page_values["displayName"], "Linnéa Öberg", "prefilled");
    assert_eq!(r.page_values["city"], "Umeå", "prefilled");
    let accounts = customers(&env);
    assert_eq!(
        accounts.len(),
        1,
        "exactly one customer account: {accounts:?}"
    );
    assert_eq!(accounts[0]["displayName"], "Linnéa Öberg");
    assert_eq!(accounts[0]["city"], "Umeå");
    assert_ne!(accounts[0]["userType"], "Guest");
    assert!(
        !accounts[0]["userPrincipalName"]
            .as_str()
            .unwrap()
            .contains("#EXT")
    );
    let stored = env
        .server
        .as_ref()
        .unwrap()
        .state
        .store
        .list(None, None, None, 10)
        .await
        .unwrap();
    assert_eq!(stored.items.len(), 1);
    assert!(
        stored.items[0].completed_at.is_some(),
        "{:?}",
        stored.items[0]
    );

    // 4. A third attempt, through Google with the same e-mail: blocked at Start.
    let third = linnea(userflow::Provider::Google, &[("displayName", "Linnéa Ö")]);
    let r = userflow::play_external(&http, &cfg, &ext, &third, &mut |l| lines.push(l))
        .await
        .unwrap();
    assert!(
        matches!(
            r.outcome,
            Outcome::Blocked {
                step: Step::PostFederationSignup,
                ..
            }
        ),
        "{r:?} {lines:?}"
    );
    assert_eq!(customers(&env).len(), 1, "still one account");
    assert_eq!(graph_writes(&env).await, Vec::<Value>::new());

    drop(reviewer);
    if let Some(s) = env.server {
        s.shutdown().await;
    }
    env.tenant.shutdown().await;
}
