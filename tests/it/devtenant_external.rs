//! Issue 17 §5 across real parts: devtenant playing an external tenant drives guestlist-server's
//! custom authentication extension endpoints (real HTTP on 127.0.0.1, a real SQLite file). The
//! server accepts devtenant's extension tokens (customer issuer, JWKS, `azp`, `aud`) and answers
//! in the documented shapes: a new person's Submit is blocked pending approval, their next
//! attempt is blocked at Start, devtenant creates no customer; a token for another audience is
//! refused and the flow ends on Entra's error page.

use std::time::Duration;

use guestlist_devtenant::userflow::{self, ExtensionConfig, Outcome, PlayerConfig, Step};
use guestlist_devtenant::{DevTenant, DevTenantConfig, TenantKind, defaults};
use serde_json::{Map, json};

const USER: &str = "entra-connector";
const PASS: &str = "s3cret-connector-external";

#[tokio::test]
async fn devtenant_external_sign_ups_reach_the_extension_endpoints() {
    let tenant = DevTenant::start(DevTenantConfig {
        tenant_kind: TenantKind::External,
        ..DevTenantConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut c = crate::reviewer::server_config(
        &tenant,
        &dir.path().join("server.db"),
        "127.0.0.1:0".parse().unwrap(),
    );
    c.connector.username = USER.into();
    c.connector.password = guestlist_server::config::Secret(PASS.into());
    c.extension_auth.issuers = vec![tenant.customer_issuer().unwrap()];
    c.extension_auth.jwks_uri = Some(tenant.jwks_uri());
    c.extension_auth.audiences = vec![defaults::API_APP_ID_URI.into()];
    let s = guestlist_server::spawn(c).await.unwrap();

    let cfg = PlayerConfig {
        api: s.base_url(),
        username: USER.into(),
        password: PASS.into(),
        timeout: Duration::from_secs(20),
        tenant_url: Some(tenant.base_url()),
        extensions_app_id: defaults::EXTENSIONS_APP_ID.into(),
    };
    let mut ext = ExtensionConfig::for_api(&s.base_url());
    // Generous for a loaded CI machine; Entra's bound is 2000 ms.
    ext.timeout = Duration::from_millis(2000);
    let mut fed = Map::new();
    fed.insert("email".into(), json!("linnea.oberg@example.org"));
    fed.insert("ui_locales".into(), json!("sv-SE"));
    let mut col = Map::new();
    col.insert("displayName".into(), json!("Linnéa Öberg"));
    col.insert("city".into(), json!("Umeå"));
    let linnea = userflow::SignUp {
        provider: userflow::Provider::EmailOtp,
        federation_claims: fed,
        collected: col,
        note: String::new(),
    };
    let members = tenant.users().len();
    let http = reqwest::Client::new();
    let mut lines = vec![];
    let r = userflow::play_external(&http, &cfg, &ext, &linnea, &mut |l| lines.push(l))
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
    assert_eq!(r.retries, 0);
    let again = userflow::play_external(&http, &cfg, &ext, &linnea, &mut |l| lines.push(l))
        .await
        .unwrap();
    assert!(
        matches!(
            again.outcome,
            Outcome::Blocked {
                step: Step::PostFederationSignup,
                ..
            }
        ),
        "{again:?} {lines:?}"
    );
    assert_eq!(tenant.users().len(), members, "no customer while pending");

    // A token for another resource: the server refuses it (401), Entra shows its error page.
    ext.resource = "api://someone-else".into();
    let r = userflow::play_external(&http, &cfg, &ext, &linnea, &mut |_| {})
        .await
        .unwrap();
    assert!(
        matches!(&r.outcome, Outcome::SomethingWentWrong { step: Step::PostFederationSignup, reason } if reason.contains("1003002")),
        "{r:?}"
    );
    s.shutdown().await;
    tenant.shutdown().await;
}
