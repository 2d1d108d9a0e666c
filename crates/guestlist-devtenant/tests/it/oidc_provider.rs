//! Runs the same relying-party code as `oidc_conformance` (code + PKCE, ID token
//! verification, refresh) against panva's certified `oidc-provider` (`tests/oidc-provider/`,
//! started by `guestlist_testkit::op`), so the client expectations devtenant is tested with are
//! those of a certified OP.
//!
//! Needs `tests/oidc-provider/node_modules` (installed by `scripts/setup.sh`, which `make test`
//! runs first); fails with that instruction when it is missing.

use guestlist_testkit::net::free_port;
use guestlist_testkit::op::OidcProvider;

use crate::oidc_rp::{RpConfig, code_pkce_refresh, jwt_payload};

#[tokio::test]
async fn certified_op_code_pkce_refresh() {
    let op = OidcProvider::start(&[]).unwrap_or_else(|e| panic!("{e}"));
    let issuer = op.issuer().to_owned();
    let port = free_port().unwrap();
    let cfg = RpConfig {
        issuer: issuer.clone(),
        client_id: "guestlist-desktop-test".into(),
        // Registered as http://127.0.0.1/callback: native loopback redirects match on any port.
        redirect_uri: format!("http://127.0.0.1:{port}/callback"),
        scopes: vec![
            "profile".into(),
            "offline_access".into(),
            "approvals:readwrite".into(),
        ],
        // oidc-provider drops offline_access unless consent is prompted.
        extra: vec![("prompt".into(), "consent".into())],
        refresh_scopes: None,
    };
    let r = code_pkce_refresh(&cfg).await.unwrap();
    assert_eq!(r.subject, "ada");
    assert_eq!(r.preferred_username.as_deref(), Some("ada@example.test"));
    // RFC 9207: the certified OP sends iss (devtenant, like Entra, does not); the helper checked it.
    assert_eq!(r.iss_in_redirect.as_deref(), Some(issuer.as_str()));
    let at = jwt_payload(&r.access_token);
    assert_eq!(at["aud"], "urn:guestlist:approvals");
    assert_eq!(at["iss"], issuer.as_str());
    let refreshed = jwt_payload(&r.refreshed_access_token);
    assert_eq!(refreshed["sub"], "ada");
    assert_ne!(r.refreshed_access_token, r.access_token);
    // Public clients get rotated refresh tokens: the old one is spent.
    let new_rt = r.refreshed_refresh_token.expect("rotated refresh token");
    assert_ne!(new_rt, r.refresh_token);
    let resp = reqwest::Client::new()
        .post(&r.token_endpoint)
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", "guestlist-desktop-test"),
            ("refresh_token", r.refresh_token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    // Code reuse is rejected by the certified OP as well.
    let resp = reqwest::Client::new()
        .post(&r.token_endpoint)
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", "guestlist-desktop-test"),
            ("code", r.used_code.as_str()),
            ("code_verifier", r.used_verifier.as_str()),
            ("redirect_uri", cfg.redirect_uri.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
}
