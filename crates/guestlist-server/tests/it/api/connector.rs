//! The connector endpoints over real HTTP: every seed fixture gets the seed's answer,
//! auto-approval continues, retries and bursts create one request, the wire's edges get clear
//! JSON errors, and the External ID extensions follow the same rules.

use guestlist_core::policy::Rule;

use super::*;

#[tokio::test]
async fn every_seed_fixture_gets_the_seed_answer() {
    let dir = tempfile::tempdir().unwrap();
    let policy = Policy {
        auto_deny: vec![Rule {
            name: "blocked".into(),
            email_domains: vec!["outlook.com".into()],
            identity_providers: vec![],
        }],
        ..Policy::default()
    };
    let s = start(None, policy, &dir.path().join("a.db")).await;
    let c = reqwest::Client::new();
    let base = s.base_url();
    // (connector, request fixture, the seed's answer), in order:
    let steps = [
        // No earlier request → Continue.
        (
            "check-approval-status",
            "check-status.request.facebook.json",
            "response.continue.json",
        ),
        // Request approval → stored, REQUESTED.
        (
            "request-approval",
            "request-approval.request.facebook.json",
            "response.block.requested.json",
        ),
        // The same person checks again → PENDING (check-status sends lastName; same identity key).
        (
            "check-approval-status",
            "check-status.request.facebook.json",
            "response.block.pending.json",
        ),
        // An Entra ID user (no identities) → REQUESTED too.
        (
            "request-approval",
            "request-approval.request.azuread.json",
            "response.block.requested.json",
        ),
        // A policy rule denies outlook.com → AUTO-DENIED.
        (
            "request-approval",
            "request-approval.request.facebook-minimal.json",
            "response.block.auto-denied.json",
        ),
    ];
    for (which, request, answer) in steps {
        assert_eq!(
            connector(&c, &base, which, &fixture(request)).await,
            (200, seed_answer(answer)),
            "{which} with {request}"
        );
    }
    // …and the next check of the auto-denied person says DENIED.
    let mut check = fixture("check-status.request.facebook.json");
    check["email"] = json!("johnsmith@outlook.com");
    assert_eq!(
        connector(&c, &base, "check-approval-status", &check).await,
        (200, seed_answer("response.block.denied.json"))
    );
    // Localised: French.
    let mut fr = fixture("check-status.request.facebook.json");
    fr["ui_locales"] = json!("fr-FR");
    let (_, v) = connector(&c, &base, "check-approval-status", &fr).await;
    assert_eq!(v["code"], "GUESTLIST-APPROVAL-PENDING");
    assert!(
        v["userMessage"]
            .as_str()
            .unwrap()
            .starts_with("Votre demande")
    );
    s.shutdown().await;
}

#[tokio::test]
async fn auto_approval_continues() {
    let dir = tempfile::tempdir().unwrap();
    let policy = Policy {
        auto_approve: vec![Rule {
            name: "partner".into(),
            email_domains: vec!["fabrikam.onmicrosoft.com".into()],
            identity_providers: vec![],
        }],
        ..Policy::default()
    };
    let s = start(None, policy, &dir.path().join("a.db")).await;
    let c = reqwest::Client::new();
    assert_eq!(
        connector(
            &c,
            &s.base_url(),
            "request-approval",
            &fixture("request-approval.request.facebook.json")
        )
        .await,
        (200, seed_answer("response.continue.json"))
    );
    let page = s.state.store.list(None, None, None, 10).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].state.status().as_str(), "approved");
    s.shutdown().await;
}

#[tokio::test]
async fn retries_and_bursts_create_one_request() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(None, Policy::default(), &dir.path().join("a.db")).await;
    let c = reqwest::Client::new();
    let base = s.base_url();
    let body = fixture("request-approval.request.facebook.json");
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (c, base, body) = (c.clone(), base.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            connector(&c, &base, "request-approval", &body).await
        }));
    }
    for t in tasks {
        // Every identical call within the retry window gets the first call's answer.
        assert_eq!(
            t.await.unwrap(),
            (200, seed_answer("response.block.requested.json"))
        );
    }
    let page = s.state.store.list(None, None, None, 100).await.unwrap();
    assert_eq!(
        page.items.len(),
        1,
        "50 identical calls must create one request"
    );
    assert_eq!(page.items[0].attempts, 1);
    // A changed submission by the same person is a new attempt on the same request.
    let mut changed = body.clone();
    changed["city"] = json!("Tacoma");
    assert_eq!(
        connector(&c, &base, "request-approval", &changed).await.1["code"],
        "GUESTLIST-APPROVAL-PENDING"
    );
    let page = s.state.store.list(None, None, None, 100).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].attempts, 2);
    s.shutdown().await;
}

#[tokio::test]
async fn the_wire_edges_get_clear_json_errors() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(None, Policy::default(), &dir.path().join("a.db")).await;
    let c = reqwest::Client::new();
    let url = format!("{}/connectors/request-approval", s.base_url());
    let send = |body: Vec<u8>, ct: &'static str, auth: bool| {
        let mut r = c.post(&url).header("content-type", ct).body(body);
        if auth {
            r = r.basic_auth(USER, Some(PASS));
        }
        r.send()
    };
    let r = send(b"{}".to_vec(), "application/json", false)
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    let r = c
        .post(&url)
        .basic_auth(USER, Some("wrong"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    for (body, ct, status, code) in [
        (
            b"{not json".to_vec(),
            "application/json",
            400,
            "claims.malformed_json",
        ),
        (
            b"{\"displayName\":\"x\"}".to_vec(),
            "application/json",
            400,
            "claims.missing_email",
        ),
        (
            b"[1]".to_vec(),
            "application/json",
            400,
            "claims.not_an_object",
        ),
        (
            b"{\"email\":\"a@b.c\"}".to_vec(),
            "text/plain",
            415,
            "request.unsupported_media_type",
        ),
        (
            vec![b' '; 70 * 1024],
            "application/json",
            413,
            "request.too_large",
        ),
    ] {
        let r = send(body, ct, true).await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{code}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], code);
    }
    let r = c
        .get(format!("{}/nope", s.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "route.not_found"
    );
    // Nothing was stored by any of these.
    assert!(
        s.state
            .store
            .list(None, None, None, 10)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    // Ops endpoints.
    assert_eq!(
        c.get(format!("{}/healthz", s.base_url()))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        c.get(format!("{}/readyz", s.base_url()))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let m = c
        .get(format!("{}/metrics", s.admin_url().unwrap()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(m.contains("# TYPE guestlist_connector_answers_total counter"));
    let o: Value = c
        .get(format!("{}/openapi.json", s.admin_url().unwrap()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(o["paths"]["/connectors/request-approval"]["post"].is_object());
    // Not on the public listener (issue 10 §7).
    for path in ["/metrics", "/openapi.json"] {
        let r = c
            .get(format!("{}{path}", s.base_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{path} on the public listener");
    }
    assert!(o["paths"]["/api/requests/{id}/decision"]["post"].is_object());
    s.shutdown().await;
}

#[tokio::test]
async fn external_id_extensions_use_the_same_rules() {
    let issuer = Issuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let s = start_with(None, Policy::default(), &dir.path().join("a.db"), |c| {
        c.extension_auth = ExtensionAuth {
            issuers: vec![issuer.url.clone()],
            audiences: vec![API_AUD.into()],
            ..ExtensionAuth::default()
        };
    })
    .await;
    let c = reqwest::Client::new();
    let mut claims = issuer.claims();
    claims["azp"] = json!(guestlist_core::extension::AUTHENTICATION_EVENTS_APP_ID);
    let token = issuer.sign(&claims);
    let submit = json!({"type":"microsoft.graph.authenticationEvent.attributeCollectionSubmit","source":"/tenants/t/applications/a",
        "data":{"@odata.type":"microsoft.graph.onAttributeCollectionSubmitCalloutData","tenantId":"t","authenticationEventListenerId":"l","customAuthenticationExtensionId":"x",
        "authenticationContext":{},"userSignUpInfo":{"attributes":{"email":{"@odata.type":"microsoft.graph.stringDirectoryAttributeValue","value":"ana@fabrikam.com","attributeType":"builtIn"}},"identities":[]}}});
    let url = format!(
        "{}/connectors/external-id/attribute-collection-submit",
        s.base_url()
    );
    let v: Value = c
        .post(&url)
        .bearer_auth(&token)
        .json(&submit)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        v["data"]["actions"][0]["@odata.type"],
        "microsoft.graph.attributeCollectionSubmit.showBlockPage"
    );
    // A token from another client (not Entra's authentication events app) is refused.
    let r = c
        .post(&url)
        .bearer_auth(issuer.token())
        .json(&submit)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let mut start_ev = submit.clone();
    start_ev["type"] = json!("microsoft.graph.authenticationEvent.attributeCollectionStart");
    start_ev["data"]["@odata.type"] =
        json!("microsoft.graph.onAttributeCollectionStartCalloutData");
    let v: Value = c
        .post(format!(
            "{}/connectors/external-id/attribute-collection-start",
            s.base_url()
        ))
        .bearer_auth(&token)
        .json(&start_ev)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        v["data"]["@odata.type"],
        "microsoft.graph.onAttributeCollectionStartResponseData"
    );
    assert_eq!(
        v["data"]["actions"][0]["@odata.type"],
        "microsoft.graph.attributeCollectionStart.showBlockPage"
    );
    s.shutdown().await;
}
