//! Graph's exact ODataError shape from every layer of the emulation.

use super::*;

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
