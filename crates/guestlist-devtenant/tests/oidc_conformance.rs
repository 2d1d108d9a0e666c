//! Conformance of devtenant's sign-in endpoints, driven by an independent relying party (the
//! `openidconnect` crate) and raw HTTP. Tokens are verified with `jsonwebtoken` against the JWKS
//! fetched over HTTP, never with devtenant's own code.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

#[path = "support/oidc_rp.rs"]
mod oidc_rp;

use guestlist_devtenant::{DevTenant, DevTenantConfig, defaults as d};
use oidc_rp::{RpConfig, code_pkce_refresh, jwt_payload};
use serde_json::Value;

fn loopback_redirect() -> String {
    // Any port: RFC 8252 §7.3 (nothing listens there; the RP reads Location itself).
    "http://127.0.0.1:49152/callback".to_string()
}

async fn verify(jwks_uri: &str, token: &str, aud: &str, iss: &str) -> Value {
    let jwks: jsonwebtoken::jwk::JwkSet =
        reqwest::get(jwks_uri).await.unwrap().json().await.unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("kid published in the JWKS");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.set_audience(&[aud]);
    v.set_issuer(&[iss]);
    jsonwebtoken::decode::<Value>(token, &key, &v)
        .expect("token verifies against the published JWKS")
        .claims
}

fn assert_entra_error(body: &Value, error: &str, code: u64) {
    assert_eq!(body["error"], error, "{body}");
    let desc = body["error_description"].as_str().unwrap();
    assert!(desc.starts_with(&format!("AADSTS{code}:")), "{desc}");
    assert!(
        desc.contains("Trace ID:")
            && desc.contains("Correlation ID:")
            && desc.contains("Timestamp:"),
        "{desc}"
    );
    assert_eq!(body["error_codes"], serde_json::json!([code]));
    for k in ["timestamp", "trace_id", "correlation_id"] {
        assert!(body[k].is_string(), "{k} missing in {body}");
    }
}

async fn token_post(endpoint: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(endpoint)
        .form(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn rp(issuer: &str, scopes: &[&str], refresh: Option<&[&str]>, user: &str) -> RpConfig {
    RpConfig {
        issuer: issuer.to_string(),
        client_id: d::DESKTOP_CLIENT_ID.into(),
        redirect_uri: loopback_redirect(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        extra: vec![("login_hint".into(), user.into())],
        refresh_scopes: refresh.map(|r| r.iter().map(|s| s.to_string()).collect()),
    }
}

#[tokio::test]
async fn code_pkce_id_token_refresh_and_second_resource() {
    let t = DevTenant::start(DevTenantConfig::default()).await.unwrap();
    let cfg = rp(
        &t.issuer(),
        &["profile", "offline_access", d::API_SCOPE_FULL],
        Some(&[
            "https://graph.microsoft.com/User.ReadWrite.All",
            "https://graph.microsoft.com/User.Invite.All",
        ]),
        d::ADA_UPN,
    );
    let r = code_pkce_refresh(&cfg).await.unwrap();
    assert_eq!(r.preferred_username.as_deref(), Some(d::ADA_UPN));
    assert_eq!(r.subject.len(), 43, "pairwise sub");
    assert_eq!(
        r.iss_in_redirect, None,
        "Entra sends no iss in the authorization response"
    );
    assert_eq!(
        r.scope.as_deref(),
        Some("api://guestlist-approvals/Approvals.ReadWrite offline_access openid profile")
    );

    let api = verify(
        &t.jwks_uri(),
        &r.access_token,
        d::API_CLIENT_ID,
        &t.issuer(),
    )
    .await;
    assert_eq!(api["scp"], d::API_SCOPE);
    assert_eq!(
        api["roles"],
        serde_json::json!([d::APPROVER_ROLE, d::ADMIN_ROLE])
    );
    assert_eq!(api["tid"], d::TENANT_ID);
    assert_eq!(api["oid"], d::ADA_OID);
    assert_eq!(api["azp"], d::DESKTOP_CLIENT_ID);
    assert_eq!(api["ver"], "2.0");
    assert_eq!(api["name"], "Ada Lovelace");
    assert_eq!(
        api["exp"].as_i64().unwrap() - api["iat"].as_i64().unwrap(),
        3600
    );

    // The refresh token was redeemed for the other resource (Graph).
    let graph = verify(
        &t.jwks_uri(),
        &r.refreshed_access_token,
        d::GRAPH_RESOURCE,
        &t.issuer(),
    )
    .await;
    assert_eq!(graph["scp"], "User.ReadWrite.All User.Invite.All");
    assert!(
        graph.get("roles").is_none(),
        "Graph defines no Approver role"
    );
    assert_eq!(
        r.refreshed_scope.as_deref(),
        Some("User.ReadWrite.All User.Invite.All offline_access")
    );
    let new_rt = r
        .refreshed_refresh_token
        .clone()
        .expect("rotated refresh token");
    assert_ne!(new_rt, r.refresh_token);

    // Rotation: the old refresh token stops working, the new one works.
    let (st, body) = token_post(
        &r.token_endpoint,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", d::DESKTOP_CLIENT_ID),
            ("refresh_token", &r.refresh_token),
        ],
    )
    .await;
    assert_eq!(st, 400);
    assert_entra_error(&body, "invalid_grant", 9002313);
    let (st, body) = token_post(
        &r.token_endpoint,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", d::DESKTOP_CLIENT_ID),
            ("refresh_token", &new_rt),
            ("scope", d::API_SCOPE_FULL),
        ],
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_u64().unwrap() > 0);

    // One resource per token.
    let rt2 = body["refresh_token"].as_str().unwrap().to_string();
    let both = format!(
        "{} https://graph.microsoft.com/User.Read.All offline_access",
        d::API_SCOPE_FULL
    );
    let (st, body) = token_post(
        &r.token_endpoint,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", d::DESKTOP_CLIENT_ID),
            ("refresh_token", &rt2),
            ("scope", &both),
        ],
    )
    .await;
    assert_eq!(st, 400);
    assert_entra_error(&body, "invalid_request", 28000);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("more than one resource")
    );

    // The code cannot be redeemed twice.
    let (st, body) = token_post(
        &r.token_endpoint,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", d::DESKTOP_CLIENT_ID),
            ("code", &r.used_code),
            ("code_verifier", &r.used_verifier),
            ("redirect_uri", &cfg.redirect_uri),
        ],
    )
    .await;
    assert_eq!(st, 400);
    assert_entra_error(&body, "invalid_grant", 54005);
    t.shutdown().await;
}

/// Drives the authorize endpoint by hand and returns the `code` from the Location header.
async fn authorize_code(
    t: &guestlist_devtenant::DevTenantHandle,
    scope: &str,
    challenge: &str,
    redirect: &str,
) -> String {
    let http = oidc_rp::http();
    let resp = http
        .get(format!(
            "{}/{}/oauth2/v2.0/authorize",
            t.base_url(),
            d::TENANT_DOMAIN
        ))
        .query(&[
            ("client_id", d::DESKTOP_CLIENT_ID),
            ("response_type", "code"),
            ("redirect_uri", redirect),
            ("scope", scope),
            ("state", "s1"),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
            ("login_hint", d::GRACE_UPN),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 302);
    let loc = url::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
    let q: std::collections::HashMap<String, String> = loc.query_pairs().into_owned().collect();
    assert_eq!(q["state"], "s1");
    assert!(!q.contains_key("iss"));
    q["code"].clone()
}

fn s256(verifier: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()))
}

#[tokio::test]
async fn wrong_verifier_wrong_redirect_and_multi_resource_code_are_rejected() {
    let t = DevTenant::start(DevTenantConfig::default()).await.unwrap();
    let token_ep = format!("{}/{}/oauth2/v2.0/token", t.base_url(), d::TENANT_ID);
    let verifier = "x".repeat(43) + "-verifier";
    let redirect = "http://localhost:8123/";
    let code = authorize_code(
        &t,
        &format!("openid {}", d::API_SCOPE_FULL),
        &s256(&verifier),
        redirect,
    )
    .await;
    let (st, body) = token_post(
        &token_ep,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", d::DESKTOP_CLIENT_ID),
            ("code", &code),
            (
                "code_verifier",
                "wrong-verifier-wrong-verifier-wrong-verifier",
            ),
            ("redirect_uri", redirect),
        ],
    )
    .await;
    assert_eq!(st, 400);
    assert_entra_error(&body, "invalid_grant", 501481);
    let (st, body) = token_post(
        &token_ep,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", d::DESKTOP_CLIENT_ID),
            ("code", &code),
            ("code_verifier", &verifier),
            ("redirect_uri", "http://localhost:8123/other"),
        ],
    )
    .await;
    assert_eq!(st, 400);
    assert_entra_error(&body, "invalid_grant", 70000);
    let (st, body) = token_post(
        &token_ep,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", d::DESKTOP_CLIENT_ID),
            ("code", &code),
            ("redirect_uri", redirect),
        ],
    )
    .await;
    assert_eq!(st, 400);
    assert_entra_error(&body, "invalid_request", 900144);
    // The right verifier still works (failed attempts do not burn the code); Grace has the role.
    let (st, body) = token_post(
        &token_ep,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", d::DESKTOP_CLIENT_ID),
            ("code", &code),
            ("code_verifier", &verifier),
            ("redirect_uri", redirect),
        ],
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert!(
        body.get("refresh_token").is_none(),
        "no offline_access, no refresh token"
    );
    let claims = jwt_payload(body["id_token"].as_str().unwrap());
    assert_eq!(claims["aud"], d::DESKTOP_CLIENT_ID);
    assert!(
        claims.get("preferred_username").is_none(),
        "no profile scope"
    );
    assert_eq!(
        jwt_payload(body["access_token"].as_str().unwrap())["roles"],
        serde_json::json!(["Approver"])
    );

    // A code for two resources cannot be redeemed without narrowing the scope (AADSTS28000).
    let code = authorize_code(
        &t,
        &format!(
            "openid {} https://graph.microsoft.com/User.Read.All",
            d::API_SCOPE_FULL
        ),
        &s256(&verifier),
        redirect,
    )
    .await;
    let (st, body) = token_post(
        &token_ep,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", d::DESKTOP_CLIENT_ID),
            ("code", &code),
            ("code_verifier", &verifier),
            ("redirect_uri", redirect),
        ],
    )
    .await;
    assert_eq!(st, 400);
    assert_entra_error(&body, "invalid_request", 28000);
    let (st, body) = token_post(
        &token_ep,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", d::DESKTOP_CLIENT_ID),
            ("code", &code),
            ("code_verifier", &verifier),
            ("redirect_uri", redirect),
            ("scope", "https://graph.microsoft.com/User.Read.All"),
        ],
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(
        jwt_payload(body["access_token"].as_str().unwrap())["aud"],
        d::GRAPH_RESOURCE
    );

    let (st, body) = token_post(
        &token_ep,
        &[
            ("grant_type", "password"),
            ("client_id", d::DESKTOP_CLIENT_ID),
        ],
    )
    .await;
    assert_eq!(st, 400);
    assert_entra_error(&body, "unsupported_grant_type", 70003);
    t.shutdown().await;
}

#[tokio::test]
async fn authorize_errors_follow_rfc6749_4_1_2_1() {
    let t = DevTenant::start(DevTenantConfig::default()).await.unwrap();
    let http = oidc_rp::http();
    let ep = format!("{}/{}/oauth2/v2.0/authorize", t.base_url(), d::TENANT_ID);
    let base = [
        ("client_id", d::DESKTOP_CLIENT_ID),
        ("response_type", "code"),
        ("redirect_uri", "http://127.0.0.1:7000/cb"),
        ("scope", "openid"),
        ("state", "st"),
    ];
    // Missing PKCE → redirected error with state.
    let r = http
        .get(&ep)
        .query(&base)
        .query(&[("login_hint", d::ADA_UPN)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 302);
    let loc = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    let q: std::collections::HashMap<String, String> = loc.query_pairs().into_owned().collect();
    assert_eq!(loc.port(), Some(7000));
    assert_eq!(q["error"], "invalid_request");
    assert_eq!(q["state"], "st");
    assert!(q["error_description"].starts_with("AADSTS"));
    // plain PKCE is refused too.
    let r = http
        .get(&ep)
        .query(&base)
        .query(&[
            ("code_challenge", "abc"),
            ("code_challenge_method", "plain"),
        ])
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .contains("error=invalid_request")
    );
    // Unregistered redirect URI → HTML error page, no redirect.
    let r = http
        .get(&ep)
        .query(&[
            ("client_id", d::DESKTOP_CLIENT_ID),
            ("response_type", "code"),
            ("redirect_uri", "https://evil.example/cb"),
            ("scope", "openid"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.headers().get("location").is_none());
    assert!(r.text().await.unwrap().contains("AADSTS50011"));
    // Unknown client → HTML error page.
    let r = http
        .get(&ep)
        .query(&[
            ("client_id", "00000000-0000-0000-0000-000000000000"),
            ("redirect_uri", "http://127.0.0.1/cb"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().await.unwrap().contains("AADSTS700016"));
    // No login_hint → the sign-in page lists the approvers, as a form posting back.
    let r = http
        .get(&ep)
        .query(&base)
        .query(&[
            ("code_challenge", s256("v").as_str()),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let html = r.text().await.unwrap();
    for name in [
        "Ada Lovelace",
        "Grace Hopper",
        "Bob Observer",
        "method=\"post\"",
    ] {
        assert!(html.contains(name), "{name} not on the page");
    }
    // Choosing an account posts the form and redirects with a code.
    let mut form: Vec<(&str, String)> = base.iter().map(|(k, v)| (*k, v.to_string())).collect();
    form.push(("code_challenge", s256("v")));
    form.push(("code_challenge_method", "S256".into()));
    form.push(("login_hint", d::BOB_UPN.into()));
    let r = http.post(&ep).form(&form).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 302);
    assert!(r.headers()["location"].to_str().unwrap().contains("code="));
    // Unknown tenant.
    let r = http
        .get(format!(
            "{}/contoso.example/v2.0/.well-known/openid-configuration",
            t.base_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_entra_error(&r.json().await.unwrap(), "invalid_tenant", 90002);
    // The domain works as the tenant segment; the issuer always names the tenant ID.
    let meta: Value = http
        .get(format!(
            "{}/{}/v2.0/.well-known/openid-configuration",
            t.base_url(),
            d::TENANT_DOMAIN
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["issuer"], t.issuer());
    assert_eq!(
        meta["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        meta["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256"])
    );
    assert!(
        meta["end_session_endpoint"]
            .as_str()
            .unwrap()
            .ends_with("/oauth2/v2.0/logout")
    );
    t.shutdown().await;
}

#[tokio::test]
async fn client_credentials_for_the_authentication_events_app_and_roles_per_user() {
    let t = DevTenant::start(DevTenantConfig::default()).await.unwrap();
    let token_ep = format!("{}/{}/oauth2/v2.0/token", t.base_url(), d::TENANT_ID);
    let scope = format!("{}/.default", d::API_APP_ID_URI);
    let (st, body) = token_post(
        &token_ep,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", d::AUTH_EVENTS_CLIENT_ID),
            ("client_secret", d::AUTH_EVENTS_CLIENT_SECRET),
            ("scope", &scope),
        ],
    )
    .await;
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
    let (st, body) = token_post(
        &token_ep,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", d::AUTH_EVENTS_CLIENT_ID),
            ("client_secret", "nope"),
            ("scope", &scope),
        ],
    )
    .await;
    assert_eq!(st, 401);
    assert_entra_error(&body, "invalid_client", 7000215);
    let (st, body) = token_post(
        &token_ep,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", d::AUTH_EVENTS_CLIENT_ID),
            ("client_secret", d::AUTH_EVENTS_CLIENT_SECRET),
            ("scope", d::API_SCOPE_FULL),
        ],
    )
    .await;
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

    let token_ep = format!("{}/{}/oauth2/v2.0/token", t.base_url(), d::TENANT_ID);
    let scope = format!("{}/.default", d::API_APP_ID_URI);
    let (st, body) = token_post(
        &token_ep,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", d::AUTH_EVENTS_CLIENT_ID),
            ("client_secret", d::AUTH_EVENTS_CLIENT_SECRET),
            ("scope", &scope),
        ],
    )
    .await;
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
