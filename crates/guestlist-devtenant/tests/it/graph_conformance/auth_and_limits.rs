//! What stands before the handlers: tokens and permissions (401/403), `$batch` dependencies (424)
//! and limits, throttling (429 with `Retry-After`) and injected faults.

use super::*;

#[tokio::test]
async fn tokens_and_permissions_401_403() {
    let api = Api::new(DevTenantConfig::default()).await;
    let (st, h, err) = api
        .call(reqwest::Method::GET, "/users", None, Some(""))
        .await;
    assert_eq!(st, 401);
    assert!(h.contains_key("www-authenticate"));
    assert_odata_error(&err, 401, "InvalidAuthenticationToken");
    let (st, _, err) = api
        .call(reqwest::Method::GET, "/users", None, Some("garbage"))
        .await;
    assert_eq!(st, 401);
    assert_odata_error(&err, 401, "InvalidAuthenticationToken");
    // A token for the approval API is not a Graph token.
    let api_tok = api
        .t
        .mint_user_token(d::ADA_UPN, d::DESKTOP_CLIENT_ID, d::API_SCOPE_FULL)
        .unwrap();
    let (st, _, err) = api
        .call(reqwest::Method::GET, "/users", None, Some(&api_tok))
        .await;
    assert_eq!(st, 401);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("audience")
    );
    // Expired.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let expired = api.t.mint_token(&json!({"iss": api.t.issuer(), "aud": d::GRAPH_RESOURCE, "exp": now - 600, "iat": now - 4200, "scp": "User.Read.All", "azp": "x", "tid": d::TENANT_ID})).unwrap();
    let (st, _, err) = api
        .call(reqwest::Method::GET, "/users", None, Some(&expired))
        .await;
    assert_eq!(st, 401);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    // Grace has the scope but no directory role: user writes are denied, reads allowed.
    let grace = api
        .t
        .mint_user_token(
            d::GRACE_UPN,
            d::DESKTOP_CLIENT_ID,
            "https://graph.microsoft.com/User.ReadWrite.All",
        )
        .unwrap();
    let (st, _, err) = api
        .call(
            reqwest::Method::POST,
            "/users",
            Some(fixture("users.post.federated-guest.json")),
            Some(&grace),
        )
        .await;
    assert_eq!(st, 403);
    assert_odata_error(&err, 403, "Authorization_RequestDenied");
    let (st, _, list) = api
        .call(reqwest::Method::GET, "/users", None, Some(&grace))
        .await;
    assert_eq!(st, 200);
    assert_eq!(
        list["value"].as_array().unwrap().len(),
        DevTenantConfig::default().users.len()
    );
    // A User.Read token cannot list users.
    let basic = api
        .t
        .mint_user_token(d::ADA_UPN, d::DESKTOP_CLIENT_ID, "User.Read")
        .unwrap();
    let (st, _, _) = api
        .call(reqwest::Method::GET, "/users", None, Some(&basic))
        .await;
    assert_eq!(st, 403);
    // Invitations need User.Invite.All (or User.ReadWrite.All).
    let reader = api
        .t
        .mint_user_token(
            d::ADA_UPN,
            d::DESKTOP_CLIENT_ID,
            "https://graph.microsoft.com/User.Read.All",
        )
        .unwrap();
    let (st, _, _) = api
        .call(
            reqwest::Method::POST,
            "/invitations",
            Some(fixture("invitations.post.json")),
            Some(&reader),
        )
        .await;
    assert_eq!(st, 403);
    api.t.shutdown().await;
}

#[tokio::test]
async fn batch_depends_on_424_and_limits() {
    let api = Api::new(DevTenantConfig::default()).await;
    let ct = json!({"Content-Type": "application/json"});
    let batch = json!({"requests": [
        {"id": "1", "method": "POST", "url": "/invitations", "headers": ct, "body": {"invitedUserEmailAddress": "åsa@example.se", "inviteRedirectUrl": "https://myapp.com"}},
        {"id": "2", "method": "POST", "url": "/users", "headers": ct, "dependsOn": ["3"], "body": {"displayNam": "typo"}},
        {"id": "3", "method": "GET", "url": "/users?$filter=mail eq 'nobody@example.com'"},
        {"id": "4", "method": "PATCH", "url": "/users/does-not-exist", "headers": ct, "body": {"city": "Umeå"}},
        {"id": "5", "method": "PATCH", "url": "/users/ada@contoso.onmicrosoft.com", "headers": ct, "dependsOn": ["4"], "body": {"city": "London"}}
    ]});
    let (st, _, resp) = api
        .call(reqwest::Method::POST, "/$batch", Some(batch), None)
        .await;
    assert_eq!(st, 200, "{resp}");
    assert_valid("x.batch.response", &resp);
    let by_id = |id: &str| {
        resp["responses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(by_id("1")["status"], 201);
    assert_valid("microsoft.graph.invitation", &by_id("1")["body"]);
    assert_eq!(by_id("3")["status"], 200);
    assert_eq!(by_id("2")["status"], 400);
    assert_odata_error(&by_id("2")["body"], 400, "Request_BadRequest");
    assert_eq!(by_id("4")["status"], 404);
    assert_eq!(by_id("5")["status"], 424);
    assert_odata_error(&by_id("5")["body"], 424, "FailedDependency");
    // dependsOn orders: 3 answered before 2.
    let order: Vec<String> = resp["responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert!(order.iter().position(|x| x == "3") < order.iter().position(|x| x == "2"));
    assert_ne!(api.t.user(d::ADA_UPN).unwrap()["city"], "London");

    let many: Vec<Value> = (0..21)
        .map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/users"}))
        .collect();
    let (st, _, err) = api
        .call(
            reqwest::Method::POST,
            "/$batch",
            Some(json!({"requests": many})),
            None,
        )
        .await;
    assert_eq!(st, 400);
    assert_odata_error(&err, 400, "BadRequest");
    // Items must not carry the version prefix; bodies need a Content-Type header.
    let (st, _, _) = api
        .call(
            reqwest::Method::POST,
            "/$batch",
            Some(json!({"requests": [{"id": "1", "method": "GET", "url": "/v1.0/users"}]})),
            None,
        )
        .await;
    assert_eq!(st, 400);
    let (st, _, _) = api
        .call(
            reqwest::Method::POST,
            "/$batch",
            Some(json!({"requests": [{"id": "1", "method": "POST", "url": "/users", "body": {}}]})),
            None,
        )
        .await;
    assert_eq!(st, 400);
    api.t.shutdown().await;
}

#[tokio::test]
async fn throttling_and_injected_faults() {
    let mut cfg = DevTenantConfig::default();
    cfg.throttle.write_limit = 3;
    cfg.throttle.window_secs = 30;
    let api = Api::new(cfg).await;
    let ct = json!({"Content-Type": "application/json"});
    let mut statuses = vec![];
    for i in 0..3 {
        let (st, _, _) = api
            .call(
                reqwest::Method::PATCH,
                "/users/ada@contoso.onmicrosoft.com",
                Some(json!({"jobTitle": format!("t{i}")})),
                None,
            )
            .await;
        statuses.push(st);
    }
    assert_eq!(statuses, vec![204, 204, 204]);
    let (st, h, err) = api
        .call(
            reqwest::Method::PATCH,
            "/users/ada@contoso.onmicrosoft.com",
            Some(json!({"jobTitle": "x"})),
            None,
        )
        .await;
    assert_eq!(st, 429);
    let secs: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=10).contains(&secs), "Retry-After {secs}");
    assert_odata_error(&err, 429, "TooManyRequests");
    // Reads are not throttled by the write bucket; batch items are throttled one by one.
    let (st, _, _) = api.call(reqwest::Method::GET, "/users", None, None).await;
    assert_eq!(st, 200);
    let (st, _, resp) = api
        .call(reqwest::Method::POST, "/$batch", Some(json!({"requests": [
            {"id": "a", "method": "GET", "url": "/users"},
            {"id": "b", "method": "PATCH", "url": "/users/ada@contoso.onmicrosoft.com", "headers": ct, "body": {"city": "x"}}]})), None)
        .await;
    assert_eq!(st, 200);
    assert_eq!(resp["responses"][0]["status"], 200);
    assert_eq!(resp["responses"][1]["status"], 429);
    assert!(resp["responses"][1]["headers"]["Retry-After"].is_string());

    // Injected faults are reproducible per seed and can be switched on and off.
    let run = |seed: u64| {
        let api = &api;
        async move {
            api.t
                .set_faults(FaultConfig {
                    throttle_rate: 0.3,
                    unavailable_rate: 0.3,
                    seed,
                    ..FaultConfig::default()
                })
                .unwrap();
            let mut out = vec![];
            for _ in 0..12 {
                out.push(api.call(reqwest::Method::GET, "/users", None, None).await.0);
            }
            out
        }
    };
    let a = run(9).await;
    assert_eq!(a, run(9).await);
    assert!(
        a.contains(&429) && a.contains(&503) && a.contains(&200),
        "{a:?}"
    );
    // Through the admin endpoint: dropped connections get no HTTP answer at all.
    let r = api
        .http
        .post(format!("{}/_devtenant/faults", api.t.base_url()))
        .json(&json!({"drop_rate": 1.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let dropped = api
        .http
        .get(format!("{}/users", api.t.graph_base()))
        .bearer_auth(&api.token)
        .send()
        .await;
    assert!(
        dropped.is_err(),
        "expected a dropped connection, got {:?}",
        dropped.map(|r| r.status())
    );
    let r = api
        .http
        .post(format!("{}/_devtenant/faults", api.t.base_url()))
        .json(&json!({"drop_rate": 2.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let r = api
        .http
        .post(format!("{}/_devtenant/faults", api.t.base_url()))
        .json(&json!({"latency_ms": 150}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let start = std::time::Instant::now();
    let (st, _, _) = api.call(reqwest::Method::GET, "/users", None, None).await;
    assert_eq!(st, 200);
    assert!(start.elapsed() >= std::time::Duration::from_millis(150));
    api.t.shutdown().await;
}
