//! Conformance of devtenant's Graph subset: every response body is validated against
//! `schemas/graph-subset.json` (Microsoft Graph's own metadata), compiled here by the test with
//! `jsonschema` and read from disk, independently of devtenant's embedded copy.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::sync::OnceLock;

use guestlist_devtenant::{
    DevTenant, DevTenantConfig, DevTenantHandle, FaultConfig, defaults as d,
};
use serde_json::{Value, json};

fn doc() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../schemas/graph-subset.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    })
}

fn validator(name: &str) -> jsonschema::Validator {
    let mut root = doc().clone();
    root["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
    root["$ref"] = json!(format!("#/components/schemas/{name}"));
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(&root)
        .unwrap()
}

fn assert_valid(name: &str, body: &Value) {
    let v = validator(name);
    let errors: Vec<String> = v
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "{name} violations: {errors:?}\nbody: {body}"
    );
}

fn assert_odata_error(body: &Value, status: u16, code: &str) {
    assert_valid("microsoft.graph.ODataErrors.ODataError", body);
    assert_eq!(body["error"]["code"], code, "HTTP {status}: {body}");
    let inner = &body["error"]["innerError"];
    for k in ["date", "request-id", "client-request-id"] {
        assert!(inner[k].is_string(), "innerError.{k} missing: {body}");
    }
}

struct Api {
    t: DevTenantHandle,
    http: reqwest::Client,
    token: String,
}

impl Api {
    async fn new(cfg: DevTenantConfig) -> Self {
        let t = DevTenant::start(cfg).await.unwrap();
        let token = t.mint_user_token(d::ADA_UPN, d::DESKTOP_CLIENT_ID, "https://graph.microsoft.com/User.ReadWrite.All https://graph.microsoft.com/User.Invite.All").unwrap();
        Self {
            t,
            http: reqwest::Client::new(),
            token,
        }
    }
    /// `GET /users?$filter=<filter>` (URL-encoded) with the default token: status and body.
    async fn users_where(&self, filter: &str) -> (u16, Value) {
        let (st, _, body) = self
            .call(
                reqwest::Method::GET,
                &format!("/users?$filter={}", urlenc(filter)),
                None,
                None,
            )
            .await;
        (st, body)
    }
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.t.graph_base()))
            .header("client-request-id", "c-123");
        if let Some(tok) = token.or(Some(&self.token)).filter(|t| !t.is_empty()) {
            req = req.bearer_auth(tok);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        assert!(
            headers.contains_key("request-id"),
            "request-id header missing"
        );
        assert_eq!(headers["client-request-id"], "c-123");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        };
        if status >= 400 {
            assert_valid("microsoft.graph.ODataErrors.ODataError", &body);
        }
        (status, headers, body)
    }
}

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../../tests/fixtures/graph/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(path)
        .unwrap()
        .replace("<extensions-app-id>", d::EXTENSIONS_APP_ID);
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn federated_guest_lifecycle_matches_the_schema() {
    let api = Api::new(DevTenantConfig::default()).await;
    let mut body = fixture("users.post.federated-guest.json");
    // The seed's UPN form (#EXT@) is accepted; Entra's own is #EXT#@.
    let (st, headers, created) = api
        .call(reqwest::Method::POST, "/users", Some(body.clone()), None)
        .await;
    assert_eq!(st, 201, "{created}");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    assert_valid("microsoft.graph.user", &created);
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(
        created["userPrincipalName"],
        "johnsmith_outlook.com#EXT@contoso.onmicrosoft.com"
    );
    assert!(
        created.get("identities").is_none(),
        "identities is not a default property"
    );

    // Lookups used before creating: by identity, by mail; both with $select.
    let filter =
        "identities/any(c:c/issuerAssignedId eq '0123456789' and c/issuer eq 'facebook.com')";
    let (st, _, list) = api
        .call(
            reqwest::Method::GET,
            &format!(
                "/users?$filter={}&$select=id,identities,mail,extension_{}_CustomAttribute",
                urlenc(filter),
                d::EXTENSIONS_APP_ID
            ),
            None,
            None,
        )
        .await;
    assert_eq!(st, 200, "{list}");
    assert_eq!(list["value"].as_array().unwrap().len(), 1);
    assert_eq!(list["value"][0]["id"], id);
    assert_eq!(
        list["value"][0][format!("extension_{}_CustomAttribute", d::EXTENSIONS_APP_ID)],
        "custom attribute value"
    );
    assert!(
        list["value"][0]["identities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["issuer"] == "facebook.com")
    );
    for u in list["value"].as_array().unwrap() {
        assert_valid("microsoft.graph.user", u);
    }
    let (_, by_mail) = api.users_where("mail eq 'JOHNSMITH@outlook.com'").await;
    assert_eq!(by_mail["value"].as_array().unwrap().len(), 1);
    let (_, none) = api.users_where("mail eq 'o''brien@example.com'").await;
    assert_eq!(none["value"].as_array().unwrap().len(), 0);
    // `mail in (…)`: one look-up for several people (case-insensitive), at most 15 values.
    let (st, some) = api
        .users_where(
            "mail in ('nobody@example.com', 'johnsmith@OUTLOOK.com', 'o''brien@example.com')",
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(some["value"].as_array().unwrap().len(), 1);
    assert_eq!(some["value"][0]["mail"], "johnsmith@outlook.com");
    let sixteen = (0..16)
        .map(|i| format!("'p{i}@example.com'"))
        .collect::<Vec<_>>()
        .join(",");
    let (st, err) = api.users_where(&format!("mail in ({sixteen})")).await;
    assert_eq!(st, 400);
    assert_odata_error(&err, 400, "Request_UnsupportedQuery");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Max allowed: 15"),
        "{err}"
    );

    // Duplicates are refused like Graph.
    let (st, _, err) = api
        .call(reqwest::Method::POST, "/users", Some(body.clone()), None)
        .await;
    assert_eq!(st, 400);
    assert_odata_error(&err, 400, "Request_BadRequest");
    assert_eq!(
        err["error"]["message"],
        "Another object with the same value for property userPrincipalName already exists."
    );
    body["userPrincipalName"] = json!("other_outlook.com#EXT#@contoso.onmicrosoft.com");
    let (st, _, err) = api
        .call(reqwest::Method::POST, "/users", Some(body.clone()), None)
        .await;
    assert_eq!(st, 400);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("identities")
    );

    // GET by id and by UPN (URL-encoded #), PATCH → 204, DELETE → 204, then 404.
    let (st, _, got) = api
        .call(
            reqwest::Method::GET,
            &format!("/users/{id}?$select=displayName,city,creationType,userType"),
            None,
            None,
        )
        .await;
    assert_eq!(st, 200);
    assert_valid("microsoft.graph.user", &got);
    assert_eq!(got["userType"], "Guest");
    let (st, _, got) = api
        .call(
            reqwest::Method::GET,
            "/users/johnsmith_outlook.com%23EXT@contoso.onmicrosoft.com",
            None,
            None,
        )
        .await;
    assert_eq!(st, 200, "{got}");
    let (st, _, empty) = api
        .call(
            reqwest::Method::PATCH,
            &format!("/users/{id}"),
            Some(json!({"city": "Göteborg", "jobTitle": "Leverantör"})),
            None,
        )
        .await;
    assert_eq!((st, empty), (204, Value::Null));
    assert_eq!(api.t.user(&id).unwrap()["city"], "Göteborg");
    let (st, _, _) = api
        .call(reqwest::Method::DELETE, &format!("/users/{id}"), None, None)
        .await;
    assert_eq!(st, 204);
    let (st, _, err) = api
        .call(reqwest::Method::GET, &format!("/users/{id}"), None, None)
        .await;
    assert_eq!(st, 404);
    assert_odata_error(&err, 404, "Request_ResourceNotFound");
    api.t.shutdown().await;
}

fn urlenc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn bad_bodies_name_the_property() {
    let api = Api::new(DevTenantConfig::default()).await;
    let base = json!({"accountEnabled": true, "displayName": "Zoë", "userPrincipalName": "zoe_example.com#EXT#@contoso.onmicrosoft.com",
        "identities": [{"signInType": "federated", "issuer": "google.com", "issuerAssignedId": "1"}]});
    let cases: Vec<(Value, &str)> = vec![
        (json!({"displayNam": "typo"}), "'displayNam'"),
        (
            json!({"creationType": "Invitation"}),
            "'creationType' is read-only",
        ),
        (
            json!({"externalUserState": "Accepted"}),
            "'externalUserState' is read-only",
        ),
        (json!({"id": "x"}), "'id' is read-only"),
        (json!({"accountEnabled": "yes"}), "'accountEnabled'"),
        (
            json!({"identities": [{"issuer": "google.com", "oops": 1}]}),
            "identities/0/oops",
        ),
        (
            json!({"extension_00000000000000000000000000000000_X": "y"}),
            "extension properties are not available",
        ),
        (
            json!({"extension_<extensions-app-id>_X": "y"}),
            "does not exist",
        ),
        (
            json!({"userPrincipalName": "zoe@fabrikam.com"}),
            "domain portion",
        ),
    ];
    for (patch, expected) in cases {
        let mut b = base.clone();
        for (k, v) in patch.as_object().unwrap() {
            b[k] = v.clone();
        }
        let (st, _, err) = api
            .call(reqwest::Method::POST, "/users", Some(b), None)
            .await;
        assert_eq!(st, 400, "{patch}");
        assert_odata_error(&err, 400, "Request_BadRequest");
        assert!(
            err["error"]["message"].as_str().unwrap().contains(expected),
            "{patch}: {err}"
        );
    }
    let mut missing = base.clone();
    missing.as_object_mut().unwrap().remove("displayName");
    let (st, _, err) = api
        .call(reqwest::Method::POST, "/users", Some(missing), None)
        .await;
    assert_eq!(st, 400);
    assert_eq!(
        err["error"]["message"],
        "A value is required for property 'displayName' of resource 'User'."
    );
    // A member without identities needs mailNickname and passwordProfile.
    let (st, _, err) = api.call(reqwest::Method::POST, "/users", Some(json!({"accountEnabled": true, "displayName": "M", "userPrincipalName": "m@contoso.onmicrosoft.com"})), None).await;
    assert_eq!(st, 400);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("mailNickname")
    );
    let (st, err) = api.users_where("startswith(displayName,'a')").await;
    assert_eq!(st, 400);
    assert_odata_error(&err, 400, "Request_UnsupportedQuery");
    let (st, _, err) = api
        .call(reqwest::Method::GET, "/users?$select=nope", None, None)
        .await;
    assert_eq!(st, 400);
    assert!(err["error"]["message"].as_str().unwrap().contains("'nope'"));
    let (st, _, _) = api
        .call(reqwest::Method::GET, "/users?$top=0", None, None)
        .await;
    assert_eq!(st, 400);
    api.t.shutdown().await;
}

#[tokio::test]
async fn invitations_create_pending_guests_once() {
    let api = Api::new(DevTenantConfig::default()).await;
    let (st, _, inv) = api
        .call(
            reqwest::Method::POST,
            "/invitations",
            Some(fixture("invitations.post.json")),
            None,
        )
        .await;
    assert_eq!(st, 201, "{inv}");
    assert_valid("microsoft.graph.invitation", &inv);
    let uid = inv["invitedUser"]["id"].as_str().unwrap().to_string();
    assert!(inv["inviteRedeemUrl"].as_str().unwrap().starts_with("http"));
    assert_eq!(inv["status"], "PendingAcceptance");
    let user = api.t.user(&uid).unwrap();
    assert_eq!(
        user["userPrincipalName"],
        "johnsmith_fabrikam.onmicrosoft.com#EXT#@contoso.onmicrosoft.com"
    );
    assert_eq!(user["creationType"], "Invitation");
    assert_eq!(user["externalUserState"], "PendingAcceptance");
    assert_eq!(user["userType"], "Guest");
    // A second invitation for the same e-mail returns the same user.
    let (st, _, again) = api
        .call(
            reqwest::Method::POST,
            "/invitations",
            Some(fixture("invitations.post.json")),
            None,
        )
        .await;
    assert_eq!(st, 201);
    assert_eq!(again["invitedUser"]["id"], uid);
    // Then PATCH the collected attributes, as the approval does.
    let (st, _, _) = api
        .call(
            reqwest::Method::PATCH,
            &format!("/users/{uid}"),
            Some(fixture("users.patch.after-invitation.json")),
            None,
        )
        .await;
    assert_eq!(st, 204);
    assert_eq!(api.t.user(&uid).unwrap()["city"], "Redmond");
    let (st, _, err) = api.call(reqwest::Method::POST, "/invitations", Some(json!({"invitedUserEmailAddress": "a@b.com", "inviteRedirectUrl": "https://x", "status": "Completed"})), None).await;
    assert_eq!(st, 400);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("'status'")
    );
    let (st, _, _) = api
        .call(
            reqwest::Method::POST,
            "/invitations",
            Some(json!({"invitedUserEmailAddress": "a@b.com"})),
            None,
        )
        .await;
    assert_eq!(st, 400);
    api.t.shutdown().await;
}

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

#[tokio::test]
async fn state_file_keeps_keys_and_users_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("state.json");
    let opts = guestlist_devtenant::StartOptions {
        state_file: Some(file.clone()),
        ..Default::default()
    };
    let t = DevTenant::start_with(DevTenantConfig::default(), opts.clone())
        .await
        .unwrap();
    let tok = t
        .mint_user_token(
            d::ADA_UPN,
            d::DESKTOP_CLIENT_ID,
            "https://graph.microsoft.com/User.ReadWrite.All",
        )
        .unwrap();
    let r = reqwest::Client::new()
        .post(format!("{}/users", t.graph_base()))
        .bearer_auth(&tok)
        .json(&fixture("users.post.federated-guest.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    t.shutdown().await;
    let t2 = DevTenant::start_with(DevTenantConfig::default(), opts)
        .await
        .unwrap();
    assert_eq!(t2.users().len(), DevTenantConfig::default().users.len() + 1);
    // The old token still verifies: same key, same issuer path (port differs, so mint anew for iss).
    let tok2 = t2
        .mint_user_token(
            d::ADA_UPN,
            d::DESKTOP_CLIENT_ID,
            "https://graph.microsoft.com/User.Read.All",
        )
        .unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(&tok).unwrap().kid,
        jsonwebtoken::decode_header(&tok2).unwrap().kid
    );
    t2.shutdown().await;
}

/// The exact ODataError shape Graph answers ("Microsoft Graph error responses and resource
/// types"): `{"error":{"code","message","innerError":{"date","request-id","client-request-id"}}}`
/// with nothing else at either level, a non-empty code and message, an RFC 3339 `date`, and (for
/// a whole HTTP answer, `headers` given) the `request-id` header equal to the body's and the
/// caller's `client-request-id` echoed in both.
fn assert_graph_error_shape(
    what: &str,
    headers: Option<&reqwest::header::HeaderMap>,
    body: &Value,
    code: &str,
) {
    let keys = |v: &Value| -> Vec<String> {
        let mut k: Vec<String> = v
            .as_object()
            .unwrap_or_else(|| panic!("{what}: not an object: {v}"))
            .keys()
            .cloned()
            .collect();
        k.sort();
        k
    };
    assert_eq!(keys(body), ["error"], "{what}: {body}");
    let e = &body["error"];
    assert_eq!(keys(e), ["code", "innerError", "message"], "{what}: {body}");
    assert_eq!(e["code"], code, "{what}: {body}");
    assert!(
        e["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: {body}"
    );
    let inner = &e["innerError"];
    assert_eq!(
        keys(inner),
        ["client-request-id", "date", "request-id"],
        "{what}: {body}"
    );
    let date = inner["date"].as_str().unwrap();
    time::OffsetDateTime::parse(date, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{what}: innerError.date {date:?}: {e}"));
    assert_valid("microsoft.graph.ODataErrors.ODataError", body);
    if let Some(h) = headers {
        assert_eq!(
            h["request-id"],
            inner["request-id"].as_str().unwrap(),
            "{what}"
        );
        assert_eq!(inner["client-request-id"], "c-123", "{what}");
        assert!(
            h[reqwest::header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{what}"
        );
    }
}

/// One error probe: what it tests, method, path, JSON body, token (`None`: the default one,
/// `Some("")`: none), expected status and ODataError code.
type ErrorCase<'a> = (
    &'a str,
    reqwest::Method,
    &'a str,
    Option<Value>,
    Option<&'a str>,
    u16,
    &'a str,
);

/// Every layer of the Graph emulation (dispatcher, auth, throttle, odata, users, invitations,
/// `$batch`) answers its errors in Graph's exact shape, so the split into modules keeps the
/// emulation faithful.
#[tokio::test]
async fn every_graph_layer_answers_the_odata_error_shape() {
    let api = Api::new(DevTenantConfig::default()).await;
    let bob = api
        .t
        .mint_user_token(
            d::BOB_UPN,
            d::DESKTOP_CLIENT_ID,
            "https://graph.microsoft.com/User.ReadWrite.All",
        )
        .unwrap();
    let invite = |email: &str| json!({"invitedUserEmailAddress": email, "inviteRedirectUrl": "https://myapps.microsoft.com"});
    let get = reqwest::Method::GET;
    let post = reqwest::Method::POST;
    let cases: Vec<ErrorCase<'_>> = vec![
        (
            "dispatcher: method",
            reqwest::Method::PUT,
            "/users",
            None,
            None,
            405,
            "Request_BadRequest",
        ),
        (
            "dispatcher: segment",
            get.clone(),
            "/groups",
            None,
            None,
            400,
            "BadRequest",
        ),
        (
            "auth: no token",
            get.clone(),
            "/users",
            None,
            Some(""),
            401,
            "InvalidAuthenticationToken",
        ),
        (
            "auth: bad token",
            get.clone(),
            "/users",
            None,
            Some("x.y.z"),
            401,
            "InvalidAuthenticationToken",
        ),
        (
            "auth: no role",
            post.clone(),
            "/users",
            Some(json!({})),
            Some(&bob),
            403,
            "Authorization_RequestDenied",
        ),
        (
            "odata: $filter",
            get.clone(),
            "/users?$filter=displayName%20eq%20'x'",
            None,
            None,
            400,
            "Request_UnsupportedQuery",
        ),
        (
            "odata: $select",
            get.clone(),
            "/users?$select=nope",
            None,
            None,
            400,
            "BadRequest",
        ),
        (
            "odata: $top",
            get.clone(),
            "/users?$top=1000",
            None,
            None,
            400,
            "Request_UnsupportedQuery",
        ),
        (
            "users: not found",
            get.clone(),
            "/users/nobody@contoso.onmicrosoft.com",
            None,
            None,
            404,
            "Request_ResourceNotFound",
        ),
        (
            "users: body",
            post.clone(),
            "/users",
            Some(json!({"displayName": "x"})),
            None,
            400,
            "Request_BadRequest",
        ),
        (
            "users: unknown property",
            post.clone(),
            "/users",
            Some(json!({"nope": 1})),
            None,
            400,
            "Request_BadRequest",
        ),
        (
            "invitations: e-mail",
            post.clone(),
            "/invitations",
            Some(invite("not-an-email")),
            None,
            400,
            "BadRequest",
        ),
        (
            "invitations: read-only",
            post.clone(),
            "/invitations",
            Some(json!({"status": "Completed"})),
            None,
            400,
            "BadRequest",
        ),
        (
            "batch: too many steps",
            post.clone(),
            "/$batch",
            Some(
                json!({"requests": (0..21).map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/users"})).collect::<Vec<_>>()}),
            ),
            None,
            400,
            "BadRequest",
        ),
        (
            "batch: duplicate id",
            post.clone(),
            "/$batch",
            Some(
                json!({"requests": [{"id": "1", "method": "GET", "url": "/users"}, {"id": "1", "method": "GET", "url": "/users"}]}),
            ),
            None,
            400,
            "BadRequest",
        ),
    ];
    for (what, method, path, body, token, status, code) in cases {
        let (st, headers, b) = api.call(method, path, body, token).await;
        assert_eq!(st, status, "{what}: {b}");
        assert_graph_error_shape(what, Some(&headers), &b, code);
        if st == 401 {
            assert!(headers.contains_key("www-authenticate"), "{what}");
        }
    }

    // Unreadable JSON (the dispatcher, before any operation).
    let r = api
        .http
        .post(format!("{}/users", api.t.graph_base()))
        .bearer_auth(&api.token)
        .header("client-request-id", "c-123")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let headers = r.headers().clone();
    assert_eq!(r.status().as_u16(), 400);
    let b: Value = r.json().await.unwrap();
    assert_graph_error_shape("dispatcher: JSON", Some(&headers), &b, "BadRequest");

    // $batch steps carry the same shape in their bodies: the failing step and its dependant.
    let (st, _, b) = api
        .call(
            post.clone(),
            "/$batch",
            Some(json!({"requests": [
                {"id": "1", "method": "GET", "url": "/users/nobody@contoso.onmicrosoft.com"},
                {"id": "2", "dependsOn": ["1"], "method": "GET", "url": "/users"},
            ]})),
            None,
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let steps = b["responses"].as_array().unwrap();
    for (id, status, code) in [
        ("1", 404, "Request_ResourceNotFound"),
        ("2", 424, "FailedDependency"),
    ] {
        let step = steps.iter().find(|s| s["id"] == id).unwrap();
        assert_eq!(step["status"], status, "{step}");
        assert_graph_error_shape(&format!("batch step {id}"), None, &step["body"], code);
    }

    // Throttle: injected 503 and 429 (faults), then the write bucket itself.
    for (faults, status, code) in [
        (
            FaultConfig {
                unavailable_rate: 1.0,
                ..FaultConfig::default()
            },
            503,
            "serviceNotAvailable",
        ),
        (
            FaultConfig {
                throttle_rate: 1.0,
                ..FaultConfig::default()
            },
            429,
            "TooManyRequests",
        ),
    ] {
        api.t.set_faults(faults).unwrap();
        let (st, headers, b) = api.call(get.clone(), "/users", None, None).await;
        assert_eq!(st, status, "{b}");
        assert!(headers.contains_key("retry-after"));
        assert_graph_error_shape(code, Some(&headers), &b, code);
    }
    api.t.set_faults(FaultConfig::default()).unwrap();
    api.t.shutdown().await;

    let one_write = Api::new(DevTenantConfig {
        throttle: guestlist_devtenant::ThrottleConfig {
            write_limit: 1,
            ..Default::default()
        },
        ..DevTenantConfig::default()
    })
    .await;
    let (st, _, _) = one_write
        .call(
            post.clone(),
            "/invitations",
            Some(invite("first@example.com")),
            None,
        )
        .await;
    assert_eq!(st, 201);
    let (st, headers, b) = one_write
        .call(
            post,
            "/invitations",
            Some(invite("second@example.com")),
            None,
        )
        .await;
    assert_eq!(st, 429, "{b}");
    assert!(headers.contains_key("retry-after"));
    assert_graph_error_shape("throttle: bucket", Some(&headers), &b, "TooManyRequests");
    one_write.t.shutdown().await;
}
