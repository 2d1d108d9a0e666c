//! Users and invitations: the federated guest's lifecycle against the schema, bad bodies naming
//! the property, pending guests created once per invitation, and the state file across restarts.

use super::*;

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
