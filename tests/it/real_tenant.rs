//! Issue 14 across processes' worth of real parts (devtenant + guestlist-server, real HTTP on
//! 127.0.0.1, real SQLite files): an API registered without a requested token version gets
//! v1.0 access tokens from devtenant, as from Entra, and the server accepts them, refuses another
//! tenant's and records the `upn` as the decision's actor (§6); devtenant's user flow meets an
//! auto-deny rule at check-approval-status, before the attribute page (§4).

use std::time::Duration;

use guestlist_core::policy::Rule;
use guestlist_devtenant::userflow::{self, Outcome, PlayerConfig, Step};
use guestlist_devtenant::{DevTenant, DevTenantConfig, defaults};
use serde_json::{Value, json};

const USER: &str = "entra-connector";
const PASS: &str = "s3cret-connector-v1";

/// devtenant whose approval API asks for no token version (→ v1.0 tokens), under `tenant_id`.
async fn v1_tenant(tenant_id: &str) -> guestlist_devtenant::DevTenantHandle {
    let mut cfg = DevTenantConfig::default();
    cfg.tenant_id = tenant_id.into();
    cfg.resources[0].requested_access_token_version = None;
    DevTenant::start(cfg).await.unwrap()
}

async fn server(
    tenant: &guestlist_devtenant::DevTenantHandle,
    dir: &std::path::Path,
    tweak: impl FnOnce(&mut guestlist_server::config::Config),
) -> guestlist_server::RunningServer {
    let mut c = crate::reviewer::server_config(
        tenant,
        &dir.join("server.db"),
        "127.0.0.1:0".parse().unwrap(),
    );
    c.connector.username = USER.into();
    c.connector.password = guestlist_server::config::Secret(PASS.into());
    tweak(&mut c);
    guestlist_server::spawn(c).await.unwrap()
}

fn payload(token: &str) -> Value {
    use base64::Engine as _;
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_v1_token_of_the_tenant_is_accepted_and_its_upn_decides() {
    let tenant = v1_tenant(defaults::TENANT_ID).await;
    let other = v1_tenant("0b5c9d8e-1f2a-4b3c-8d4e-5f6a7b8c9d0e").await;
    let dir = tempfile::tempdir().unwrap();
    let s = server(&tenant, dir.path(), |_| {}).await;
    let base = s.base_url();
    let c = reqwest::Client::new();

    let grace = tenant
        .mint_user_token(
            defaults::GRACE_UPN,
            defaults::DESKTOP_CLIENT_ID,
            defaults::API_SCOPE_FULL,
        )
        .unwrap();
    let claims = payload(&grace);
    assert_eq!(claims["ver"], "1.0", "{claims}");
    assert_eq!(
        claims["iss"],
        format!("https://sts.windows.net/{}/", defaults::TENANT_ID)
    );
    assert!(claims.get("preferred_username").is_none(), "{claims}");

    let list = |token: String| {
        c.get(format!("{base}/api/requests"))
            .bearer_auth(token)
            .send()
    };
    let r = list(grace.clone()).await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    // The same user, client and scope, from another tenant: refused.
    let foreign = other
        .mint_user_token(
            defaults::GRACE_UPN,
            defaults::DESKTOP_CLIENT_ID,
            defaults::API_SCOPE_FULL,
        )
        .unwrap();
    assert_eq!(list(foreign).await.unwrap().status(), 401);

    // A sign-up through the connector, denied by Grace with her v1.0 token.
    let r = c
        .post(format!("{base}/connectors/request-approval"))
        .basic_auth(USER, Some(PASS))
        .json(&json!({"email": "kim@fabrikam.example", "displayName": "Kim",
            "identities": [{"signInType": "federated", "issuer": "google.com", "issuerAssignedId": "77"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let page: Value = list(grace.clone()).await.unwrap().json().await.unwrap();
    let id = page["items"][0]["id"].as_str().unwrap().to_owned();
    let r = c
        .post(format!("{base}/api/requests/{id}/decision"))
        .bearer_auth(&grace)
        .header("if-match", "\"1\"")
        .json(&json!({"decision": "deny", "reason": "unknown company"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let decided: Value = r.json().await.unwrap();
    assert_eq!(decided["decidedBy"]["username"], defaults::GRACE_UPN);
    assert_eq!(decided["decidedBy"]["name"], "Grace Hopper");
    s.shutdown().await;
    other.shutdown().await;
    tenant.shutdown().await;
}

#[tokio::test]
async fn the_user_flow_is_blocked_by_an_auto_deny_rule_right_after_federation() {
    let tenant = DevTenant::start(DevTenantConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let s = server(&tenant, dir.path(), |c| {
        c.policy.auto_deny = vec![Rule {
            name: "no-fabrikam".into(),
            email_domains: vec!["fabrikam.onmicrosoft.com".into()],
            identity_providers: vec![],
        }];
    })
    .await;
    let cfg = PlayerConfig {
        api: s.base_url(),
        username: USER.into(),
        password: PASS.into(),
        timeout: Duration::from_secs(20),
        tenant_url: Some(tenant.base_url()),
        extensions_app_id: defaults::EXTENSIONS_APP_ID.into(),
    };
    let signups = userflow::fixtures(defaults::EXTENSIONS_APP_ID);
    let fabrikam = signups
        .iter()
        .find(|s| {
            s.federation_claims["email"]
                .as_str()
                .is_some_and(|e| e.ends_with("@fabrikam.onmicrosoft.com"))
        })
        .expect("a fabrikam fixture");
    let mut transcript = Vec::new();
    let (outcome, _) = userflow::play(&reqwest::Client::new(), &cfg, fabrikam, &mut |l| {
        transcript.push(l)
    })
    .await
    .unwrap();
    match outcome {
        Outcome::Blocked { step, code, .. } => {
            assert_eq!(step, Step::PostFederationSignup, "{transcript:?}");
            assert_eq!(code.as_deref(), Some("GUESTLIST-APPROVAL-AUTO-DENIED"));
        }
        other => panic!("{other:?}: {transcript:?}"),
    }
    s.shutdown().await;
    tenant.shutdown().await;
}
