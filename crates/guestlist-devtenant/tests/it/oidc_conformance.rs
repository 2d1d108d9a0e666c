//! Conformance of devtenant's sign-in endpoints, driven by an independent relying party (the
//! `openidconnect` crate) and raw HTTP. Tokens are verified with `jsonwebtoken` against the JWKS
//! fetched over HTTP, never with devtenant's own code.

use crate::oidc_rp::{self, RpConfig, code_pkce_refresh, jwt_payload};
use guestlist_devtenant::{DevTenant, DevTenantConfig, defaults as d};
use serde_json::Value;

mod code_flow;
mod tokens;

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

/// The token endpoint's `authorization_code` grant for the desktop client: `code` with the PKCE
/// `verifier` (none sent when `None`) and `redirect_uri`, and any `extra` form fields.
async fn redeem_code(
    endpoint: &str,
    code: &str,
    verifier: Option<&str>,
    redirect_uri: &str,
    extra: &[(&str, &str)],
) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("client_id", d::DESKTOP_CLIENT_ID),
        ("code", code),
    ];
    form.extend(verifier.map(|v| ("code_verifier", v)));
    form.push(("redirect_uri", redirect_uri));
    form.extend_from_slice(extra);
    token_post(endpoint, &form).await
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
