//! The authorization code flow: code + PKCE, ID token and refresh through an independent RP, then
//! what must be refused (wrong verifier, wrong redirect, one code for several resources) and the
//! authorize errors of RFC 6749 §4.1.2.1.

use super::*;

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
    let (st, body) = redeem_code(
        &r.token_endpoint,
        &r.used_code,
        Some(&r.used_verifier),
        &cfg.redirect_uri,
        &[],
    )
    .await;
    assert_eq!(st, 400);
    assert_entra_error(&body, "invalid_grant", 54005);
    t.shutdown().await;
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
    let (st, body) = redeem_code(
        &token_ep,
        &code,
        Some("wrong-verifier-wrong-verifier-wrong-verifier"),
        redirect,
        &[],
    )
    .await;
    assert_eq!(st, 400);
    assert_entra_error(&body, "invalid_grant", 501481);
    let (st, body) = redeem_code(
        &token_ep,
        &code,
        Some(&verifier),
        "http://localhost:8123/other",
        &[],
    )
    .await;
    assert_eq!(st, 400);
    assert_entra_error(&body, "invalid_grant", 70000);
    let (st, body) = redeem_code(&token_ep, &code, None, redirect, &[]).await;
    assert_eq!(st, 400);
    assert_entra_error(&body, "invalid_request", 900144);
    // The right verifier still works (failed attempts do not burn the code); Grace has the role.
    let (st, body) = redeem_code(&token_ep, &code, Some(&verifier), redirect, &[]).await;
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
    let (st, body) = redeem_code(&token_ep, &code, Some(&verifier), redirect, &[]).await;
    assert_eq!(st, 400);
    assert_entra_error(&body, "invalid_request", 28000);
    let (st, body) = redeem_code(
        &token_ep,
        &code,
        Some(&verifier),
        redirect,
        &[("scope", "https://graph.microsoft.com/User.Read.All")],
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
