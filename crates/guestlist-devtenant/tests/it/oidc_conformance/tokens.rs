//! What the tokens carry and who gets them: client credentials for the authentication-events app,
//! app roles per user (API tokens only), signing-key rotation, and v1.0 access tokens for an API
//! without a requested token version.

use super::*;

/// The token endpoint's client-credentials grant for the authentication-events app, with
/// `secret` as its client secret, asking for `scope`.
async fn auth_events_grant(
    t: &guestlist_devtenant::DevTenantHandle,
    secret: &str,
    scope: &str,
) -> (u16, Value) {
    let token_ep = format!("{}/{}/oauth2/v2.0/token", t.base_url(), d::TENANT_ID);
    token_post(
        &token_ep,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", d::AUTH_EVENTS_CLIENT_ID),
            ("client_secret", secret),
            ("scope", scope),
        ],
    )
    .await
}

#[tokio::test]
async fn client_credentials_for_the_authentication_events_app_and_roles_per_user() {
    let t = DevTenant::start(DevTenantConfig::default()).await.unwrap();
    let token_ep = format!("{}/{}/oauth2/v2.0/token", t.base_url(), d::TENANT_ID);
    let scope = format!("{}/.default", d::API_APP_ID_URI);
    let (st, body) = auth_events_grant(&t, d::AUTH_EVENTS_CLIENT_SECRET, &scope).await;
    assert_eq!(st, 200, "{body}");
    let c = verify(
        &t.jwks_uri(),
        body["access_token"].as_str().unwrap(),
        d::API_CLIENT_ID,
        &t.issuer(),
    )
    .await;
    assert_eq!(c["azp"], d::AUTH_EVENTS_CLIENT_ID);
    assert!(c.get("scp").is_none());
    // HTTP Basic client authentication works too.
    let r = reqwest::Client::new()
        .post(&token_ep)
        .basic_auth(d::AUTH_EVENTS_CLIENT_ID, Some(d::AUTH_EVENTS_CLIENT_SECRET))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", scope.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (st, body) = auth_events_grant(&t, "nope", &scope).await;
    assert_eq!(st, 401);
    assert_entra_error(&body, "invalid_client", 7000215);
    let (st, body) = auth_events_grant(&t, d::AUTH_EVENTS_CLIENT_SECRET, d::API_SCOPE_FULL).await;
    assert_eq!(st, 400);
    assert_entra_error(&body, "invalid_scope", 1002012);

    // Bob signs in but holds no Approver role.
    let tok = t
        .mint_user_token(d::BOB_UPN, d::DESKTOP_CLIENT_ID, d::API_SCOPE_FULL)
        .unwrap();
    let c = verify(&t.jwks_uri(), &tok, d::API_CLIENT_ID, &t.issuer()).await;
    assert!(c.get("roles").is_none());
    assert_eq!(c["preferred_username"], d::BOB_UPN);
    t.shutdown().await;
}

/// Issue 12 "Roles": Ada holds `Approver` and `Admin`, Katherine only `Auditor`. As in Entra, the
/// app roles assigned to a user for the API's service principal reach the `roles` claim of
/// tokens for that API (through the real authorize and token endpoints), and never of tokens
/// for a resource that does not define them (Graph).
#[tokio::test]
async fn admin_and_auditor_app_roles_reach_api_tokens_only() {
    let t = DevTenant::start(DevTenantConfig::default()).await.unwrap();
    let graph_scopes: &[&str] = &["https://graph.microsoft.com/User.Read.All"];
    for (upn, name, roles) in [
        (
            d::ADA_UPN,
            "Ada Lovelace",
            serde_json::json!([d::APPROVER_ROLE, d::ADMIN_ROLE]),
        ),
        (
            d::KATHERINE_UPN,
            "Katherine Johnson",
            serde_json::json!([d::AUDITOR_ROLE]),
        ),
    ] {
        let cfg = rp(
            &t.issuer(),
            &["profile", "offline_access", d::API_SCOPE_FULL],
            Some(graph_scopes),
            upn,
        );
        let r = code_pkce_refresh(&cfg).await.unwrap();
        assert_eq!(r.preferred_username.as_deref(), Some(upn));
        let api = verify(
            &t.jwks_uri(),
            &r.access_token,
            d::API_CLIENT_ID,
            &t.issuer(),
        )
        .await;
        assert_eq!(api["roles"], roles, "{upn}");
        assert_eq!(api["name"], name);
        assert_eq!(api["scp"], d::API_SCOPE);
        let graph = verify(
            &t.jwks_uri(),
            &r.refreshed_access_token,
            d::GRAPH_RESOURCE,
            &t.issuer(),
        )
        .await;
        assert!(graph.get("roles").is_none(), "{upn}: {graph}");
        // The library helper mints the same roles as the token endpoint.
        let minted = t
            .mint_user_token(upn, d::DESKTOP_CLIENT_ID, d::API_SCOPE_FULL)
            .unwrap();
        let c = verify(&t.jwks_uri(), &minted, d::API_CLIENT_ID, &t.issuer()).await;
        assert_eq!(c["roles"], roles, "{upn}");
    }
    let katherine = t
        .user(d::KATHERINE_UPN)
        .expect("Katherine in the directory");
    assert_eq!(katherine["id"], d::KATHERINE_OID);
    assert_eq!(katherine["displayName"], "Katherine Johnson");
    // She is on the account picker, like the other people.
    let page = oidc_rp::http()
        .get(format!(
            "{}/{}/oauth2/v2.0/authorize",
            t.base_url(),
            d::TENANT_ID
        ))
        .query(&[
            ("client_id", d::DESKTOP_CLIENT_ID),
            ("response_type", "code"),
            ("redirect_uri", &loopback_redirect()),
            ("scope", d::API_SCOPE_FULL),
            ("code_challenge", &s256("v")),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Katherine Johnson") && page.contains(d::KATHERINE_UPN),
        "{page}"
    );
    t.shutdown().await;
}

#[tokio::test]
async fn signing_key_rotation_keeps_old_tokens_verifiable() {
    let t = DevTenant::start(DevTenantConfig::default()).await.unwrap();
    let old = t
        .mint_user_token(d::ADA_UPN, d::DESKTOP_CLIENT_ID, d::API_SCOPE_FULL)
        .unwrap();
    let kid = t.rotate_signing_key().await.unwrap();
    let jwks: Value = reqwest::get(t.jwks_uri())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    for k in jwks["keys"].as_array().unwrap() {
        assert_eq!(k["kty"], "RSA");
        assert_eq!(k["use"], "sig");
        assert!(k["n"].is_string() && k["e"].is_string() && k["kid"].is_string());
    }
    let new = t
        .mint_user_token(d::ADA_UPN, d::DESKTOP_CLIENT_ID, d::API_SCOPE_FULL)
        .unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(&new).unwrap().kid.as_deref(),
        Some(kid.as_str())
    );
    verify(&t.jwks_uri(), &old, d::API_CLIENT_ID, &t.issuer()).await;
    verify(&t.jwks_uri(), &new, d::API_CLIENT_ID, &t.issuer()).await;
    t.shutdown().await;
}

/// Issue 14 §6: an API whose registration leaves the requested access token version unset gets
/// v1.0 access tokens, as in Entra ("Access token claims reference": `iss`
/// `https://sts.windows.net/{tid}/`, `appid` for `azp`, `upn` for `preferred_username`,
/// `ver: "1.0"`), through the real authorize and token endpoints and client credentials; the
/// ID token stays v2.0, and Graph (version 2 in the default config) is unaffected.
#[tokio::test]
async fn an_api_without_a_requested_token_version_gets_v1_access_tokens() {
    let mut cfg = DevTenantConfig::default();
    cfg.resources[0].requested_access_token_version = None;
    let t = DevTenant::start(cfg).await.unwrap();
    let v1_iss = format!("https://sts.windows.net/{}/", d::TENANT_ID);
    let r = code_pkce_refresh(&rp(
        &t.issuer(),
        &["profile", "offline_access", d::API_SCOPE_FULL],
        Some(&["https://graph.microsoft.com/User.ReadWrite.All"]),
        d::ADA_UPN,
    ))
    .await
    .unwrap();
    assert_eq!(r.preferred_username.as_deref(), Some(d::ADA_UPN));
    let c = verify(&t.jwks_uri(), &r.access_token, d::API_APP_ID_URI, &v1_iss).await;
    assert_eq!(c["ver"], "1.0");
    assert_eq!(c["appid"], d::DESKTOP_CLIENT_ID);
    assert_eq!(c["appidacr"], "0");
    assert_eq!(c["upn"], d::ADA_UPN);
    assert_eq!(c["unique_name"], d::ADA_UPN);
    assert_eq!(c["scp"], d::API_SCOPE);
    assert_eq!(c["tid"], d::TENANT_ID);
    assert_eq!(
        c["roles"],
        serde_json::json!([d::APPROVER_ROLE, d::ADMIN_ROLE])
    );
    for v2_only in ["azp", "azpacr", "preferred_username"] {
        assert!(c.get(v2_only).is_none(), "{v2_only} in a v1.0 token: {c}");
    }
    let graph = verify(
        &t.jwks_uri(),
        &r.refreshed_access_token,
        d::GRAPH_RESOURCE,
        &t.issuer(),
    )
    .await;
    assert_eq!(graph["ver"], "2.0");

    let scope = format!("{}/.default", d::API_APP_ID_URI);
    let (st, body) = auth_events_grant(&t, d::AUTH_EVENTS_CLIENT_SECRET, &scope).await;
    assert_eq!(st, 200, "{body}");
    let app = verify(
        &t.jwks_uri(),
        body["access_token"].as_str().unwrap(),
        d::API_APP_ID_URI,
        &v1_iss,
    )
    .await;
    assert_eq!(app["appid"], d::AUTH_EVENTS_CLIENT_ID);
    assert_eq!(app["appidacr"], "1");
    assert_eq!(app["ver"], "1.0");
    assert!(app.get("azp").is_none());
    t.shutdown().await;
}
