//! The approver API with real RS256 tokens of the in-test issuer: a round trip from sign-up to
//! decision, the JWT attack suite, the extractors' rejections in the error shape, and failing
//! closed without a token authority.

use std::collections::BTreeMap;

use super::*;

#[tokio::test]
async fn approver_round_trip_with_real_tokens() {
    let (issuer, s, c, base, _dir) = served().await;
    let token = issuer.token();
    request_seed_approvals(&c, &base).await;

    let page = list(&c, &base, &token, "status=pending").await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    let fb = items
        .iter()
        .find(|i| i["key"]["issuer"] == "facebook.com")
        .unwrap();
    let aad = items.iter().find(|i| i["key"]["issuer"] == "").unwrap();
    let fb_id = fb["id"].as_str().unwrap();
    let r = c
        .get(format!("{base}/api/requests/{fb_id}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["etag"], "\"1\"");

    // Approve the Facebook user (the app created the guest in Graph first).
    let decide = |id: &str, body: Value, etag: &str, key: &str| {
        c.post(format!("{base}/api/requests/{id}/decision"))
            .bearer_auth(&token)
            .header("if-match", etag)
            .header("idempotency-key", key)
            .header("user-agent", "guestlist-test/1")
            .json(&body)
            .send()
    };
    let approve = json!({"decision":"approve","directoryObjectId":"11111111-2222-3333-4444-555555555555","how":"userCreated"});
    let r = decide(fb_id, approve.clone(), "\"1\"", "k-approve")
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["etag"], "\"2\"");
    // Replaying the same Idempotency-Key gives the same answer, changes nothing.
    let again = decide(fb_id, approve.clone(), "\"1\"", "k-approve")
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    // A second approver with a stale view loses: 409 with the current state.
    let lost = decide(
        fb_id,
        json!({"decision":"deny","reason":"no"}),
        "\"1\"",
        "k-other",
    )
    .await
    .unwrap();
    assert_eq!(lost.status(), 409);
    let lost: Value = lost.json().await.unwrap();
    assert_eq!(lost["error"]["code"], "request.already_decided");
    assert_eq!(lost["current"]["state"]["status"], "approved");
    // Without If-Match → 428.
    let r = c
        .post(format!("{base}/api/requests/{fb_id}/decision"))
        .bearer_auth(&token)
        .json(&approve)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 428);

    // Deny the Entra ID user; an empty reason is refused first.
    let aad_id = aad["id"].as_str().unwrap();
    let r = decide(
        aad_id,
        json!({"decision":"deny","reason":"  "}),
        "\"1\"",
        "k-d0",
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    let r = decide(
        aad_id,
        json!({"decision":"deny","reason":"Unknown company"}),
        "\"1\"",
        "k-d1",
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);

    // The next sign-up attempts are blocked with the right codes.
    let (_, v) = connector(
        &c,
        &base,
        "check-approval-status",
        &fixture("request-approval.request.azuread.json"),
    )
    .await;
    assert_eq!(v["code"], "GUESTLIST-APPROVAL-DENIED");
    let (_, v) = connector(
        &c,
        &base,
        "check-approval-status",
        &fixture("check-status.request.facebook.json"),
    )
    .await;
    assert_eq!(v["code"], "GUESTLIST-APPROVAL-APPROVED");

    // History names the approver and client.
    let h: Value = c
        .get(format!("{base}/api/requests/{aad_id}/history"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let h = h.as_array().unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(h[1]["action"], "denied");
    assert_eq!(h[1]["actor"]["username"], "ada@contoso.onmicrosoft.com");
    assert!(
        h[1]["actor"]["client"]
            .as_str()
            .unwrap()
            .contains("guestlist-test/1")
    );
    assert_eq!(h[1]["detail"]["reason"], "Unknown company");
    s.shutdown().await;
}

#[tokio::test]
async fn jwt_attacks_are_rejected() {
    let (issuer, s, c, _base, _dir) = served().await;
    let url = format!("{}/api/requests", s.base_url());
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let good = issuer.claims();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let with = |k: &str, v: Value| {
        let mut c = good.clone();
        c[k] = v;
        issuer.sign(&c)
    };
    let mut cases: BTreeMap<&str, (String, u16)> = BTreeMap::new();
    cases.insert(
        "alg none",
        (
            format!(
                "{}.{}.",
                b64(&json!({"alg":"none","typ":"JWT","kid":issuer.kid})),
                b64(&good)
            ),
            401,
        ),
    );
    // HS256 signed with the issuer's public key as the HMAC secret (key confusion).
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some(issuer.kid.clone());
    cases.insert(
        "HS256 with public key",
        (
            jsonwebtoken::encode(
                &hs,
                &good,
                &EncodingKey::from_secret(issuer.public_pem.as_bytes()).unwrap(),
            )
            .unwrap(),
            401,
        ),
    );
    cases.insert(
        "wrong iss",
        (with("iss", json!("https://evil.example/v2.0")), 401),
    );
    cases.insert("wrong aud", (with("aud", json!("api://someone-else")), 401));
    cases.insert("expired", (with("exp", json!(now - 3600)), 401));
    cases.insert("not yet valid", (with("nbf", json!(now + 3600)), 401));
    cases.insert("missing role", (with("roles", json!(["Reader"])), 403));
    let mut unknown = Header::new(Algorithm::RS256);
    unknown.kid = Some("rotated-away".into());
    cases.insert(
        "unknown kid",
        (
            jsonwebtoken::encode(
                &unknown,
                &good,
                &EncodingKey::from_rsa_pem(&issuer.pem).unwrap(),
            )
            .unwrap(),
            401,
        ),
    );
    let mut tampered = issuer.token();
    let mid = tampered.find('.').unwrap() + 5;
    tampered.replace_range(
        mid..mid + 1,
        if &tampered[mid..mid + 1] == "A" {
            "B"
        } else {
            "A"
        },
    );
    cases.insert("tampered payload", (tampered, 401));
    cases.insert("garbage", ("not-a-jwt".into(), 401));
    for (name, (token, status)) in &cases {
        let r = c.get(&url).bearer_auth(token).send().await.unwrap();
        assert_eq!(r.status().as_u16(), *status, "{name}");
        let www = r
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        assert!(www.starts_with("Bearer error="), "{name}: {www}");
    }
    assert_eq!(c.get(&url).send().await.unwrap().status(), 401);
    assert_eq!(
        c.get(&url)
            .bearer_auth(issuer.token())
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    s.shutdown().await;
}

/// The extractors' rejections (issue 16): a bad path id, a body that is not JSON, not a decision
/// or not `application/json` each answer in the API's error shape with a stable code, and the
/// token is checked before any of them.
#[tokio::test]
async fn approver_extractors_reject_in_the_error_shape() {
    let (issuer, s, c, base, _dir) = served().await;
    let token = issuer.token();
    let code = |v: &Value| v["error"]["code"].as_str().unwrap_or_default().to_owned();

    // No token: 401 before the id is looked at.
    let r = c
        .get(format!("{base}/api/requests/not-a-uuid"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(code(&r.json().await.unwrap()), "auth.unauthorized");

    for path in ["not-a-uuid", "not-a-uuid/history"] {
        let r = c
            .get(format!("{base}/api/requests/{path}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{path}");
        assert_eq!(r.headers()["content-type"], "application/json");
        assert_eq!(code(&r.json().await.unwrap()), "request.bad_id", "{path}");
    }

    let id = "0190c0de-0000-7000-8000-000000000001";
    let post = |ct: &'static str, body: &'static str| {
        c.post(format!("{base}/api/requests/{id}/decision"))
            .bearer_auth(&token)
            .header("if-match", "\"1\"")
            .header("content-type", ct)
            .body(body)
            .send()
    };
    let r = post("application/json", "{").await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(code(&r.json().await.unwrap()), "decision.malformed");
    let r = post("application/json", r#"{"decision":"maybe"}"#)
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(code(&r.json().await.unwrap()), "decision.malformed");
    let r = post("text/plain", r#"{"decision":"deny","reason":"x"}"#)
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    assert_eq!(
        code(&r.json().await.unwrap()),
        "request.unsupported_media_type"
    );
    // A well-formed decision for an unknown id reaches the store: 404.
    let r = post("application/json", r#"{"decision":"deny","reason":"x"}"#)
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(code(&r.json().await.unwrap()), "request.not_found");
    s.shutdown().await;
}

/// Query strings (issue 16: typed query rejections): a `limit` or `since` that is not a number,
/// or a parameter given twice, answers 400 `request.bad_query` in the API's error shape (axum's
/// `Query` answered plain text), and the token and its role are checked before the query, on
/// the approver, audit and privacy endpoints alike.
#[tokio::test]
async fn approver_queries_reject_in_the_error_shape() {
    let (issuer, s, c, base, _dir) = served().await;
    let approver = issuer.token();
    let mut admin = issuer.claims();
    admin["roles"] = json!(["Admin"]);
    let admin = issuer.sign(&admin);
    let get = |query: &'static str, token: Option<&str>| {
        let mut r = c.get(format!("{base}{query}"));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };

    // The caller first: no token is 401, the wrong role 403, whatever the query.
    let r = get("/api/requests?limit=ten", None).await.unwrap();
    assert_eq!(r.status(), 401);
    let r = get("/api/audit?format=csv&format=csv", Some(&approver))
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    for (query, token, what) in [
        ("/api/requests?limit=ten", &approver, "limit"),
        ("/api/requests?since=-1", &approver, "since"),
        ("/api/requests?limit=1&limit=2", &approver, "limit"),
        ("/api/audit?format=csv&format=ndjson", &admin, "format"),
        (
            "/api/privacy/export?email=a@fabrikam.com&email=b@fabrikam.com",
            &admin,
            "email",
        ),
    ] {
        let r = get(query, Some(token)).await.unwrap();
        assert_eq!(r.status(), 400, "{query}");
        assert_eq!(r.headers()["content-type"], "application/json", "{query}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "request.bad_query", "{query}: {v}");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains(what), "{query}: {message}");
    }
    // A well-formed query is served.
    let r = get("/api/requests?limit=2&since=0", Some(&approver))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    s.shutdown().await;
}

#[tokio::test]
async fn approver_api_fails_closed_without_authority() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(None, Policy::default(), &dir.path().join("a.db")).await;
    let r = reqwest::get(format!("{}/api/requests", s.base_url()))
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "auth.not_configured"
    );
    s.shutdown().await;
}
