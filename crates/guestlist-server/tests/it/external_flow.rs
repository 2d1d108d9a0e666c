//! Issue 17: the external-tenant flow of the custom authentication extensions over real HTTP
//! on 127.0.0.1, on the store the suite runs on (`GUESTLIST_TEST_STORE`, a real SQLite file by
//! default): a request knows its flow, an external approval is recorded without any account,
//! the approved person comes back (Start prefills, Submit continues once and completes the
//! request), and a completed person is blocked. Every answer is checked against Microsoft's
//! documented examples (`tests/fixtures/external-id/`).

use crate::common;
use crate::common::{Issuer, start};
use guestlist_core::policy::{Policy, RouteRule, Rule};
use guestlist_server::config::ExtensionAuth;
use serde_json::{Value, json};

const EMAIL: &str = "linnea.oberg@example.se";

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../../tests/fixtures/external-id/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `ours` has the documented example's shape: the same `data.@odata.type`, exactly one
/// action, of the same `@odata.type`, with the same member names (values are ours).
fn assert_documented_shape(ours: &Value, example: &str) {
    let doc = fixture(example);
    assert_eq!(
        ours["data"]["@odata.type"], doc["data"]["@odata.type"],
        "{example}: {ours}"
    );
    let (a, d) = (
        ours["data"]["actions"].as_array().unwrap(),
        doc["data"]["actions"].as_array().unwrap(),
    );
    assert_eq!(a.len(), 1, "{example}: one action: {ours}");
    assert_eq!(
        a[0]["@odata.type"], d[0]["@odata.type"],
        "{example}: {ours}"
    );
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&a[0]), keys(&d[0]), "{example}: {ours}");
    assert_eq!(
        ours.as_object().unwrap().len(),
        1,
        "only `data` at the top: {ours}"
    );
}

/// An extension event as Entra (and devtenant's player) sends it: the e-mail only as an
/// identity with signInType `email` (no `email` attribute), plus `attributes`.
fn event(kind: &str, identity: Value, attributes: &[(&str, Value)]) -> Value {
    let (ty, data) = match kind {
        "start" => (
            "microsoft.graph.authenticationEvent.attributeCollectionStart",
            "microsoft.graph.onAttributeCollectionStartCalloutData",
        ),
        _ => (
            "microsoft.graph.authenticationEvent.attributeCollectionSubmit",
            "microsoft.graph.onAttributeCollectionSubmitCalloutData",
        ),
    };
    let attrs: serde_json::Map<String, Value> = attributes
        .iter()
        .map(|(k, v)| {
            (
                (*k).to_owned(),
                json!({"@odata.type": "microsoft.graph.stringDirectoryAttributeValue", "value": v,
                    "attributeType": if k.starts_with("extension_") { "directorySchemaExtension" } else { "builtIn" }}),
            )
        })
        .collect();
    json!({"type": ty, "source": "/tenants/30000000-0000-0000-0000-000000000003/applications/40000000-0000-0000-0000-000000000004",
        "data": {"@odata.type": data, "tenantId": "30000000-0000-0000-0000-000000000003",
            "authenticationEventListenerId": "10000000-0000-0000-0000-000000000001",
            "customAuthenticationExtensionId": "10000000-0000-0000-0000-000000000002",
            "authenticationContext": {"correlationId": "c0ffee00-0000-4000-8000-000000000017",
                "client": {"ip": "127.0.0.1", "locale": "sv-se", "market": "sv-se"},
                "clientServicePrincipal": {"appId": "40000000-0000-0000-0000-000000000004"}},
            "userSignUpInfo": {"attributes": attrs, "identities": [identity]}}})
}

fn email_identity() -> Value {
    json!({"signInType": "email", "issuer": "woodgrove.onmicrosoft.com", "issuerAssignedId": EMAIL})
}

fn attributes() -> Vec<(&'static str, Value)> {
    vec![
        ("displayName", json!("Linnéa Öberg")),
        ("city", json!("Uppsala")),
        (
            "extension_b7e5c3a1d9f24e6a8c0b1d2e3f4a5b6c_Sponsor",
            json!("Ada"),
        ),
    ]
}

struct Harness {
    s: guestlist_server::RunningServer,
    c: reqwest::Client,
    extension_token: String,
    approver_token: String,
    issuer: Issuer,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn start(retry_window_seconds: u64) -> Harness {
        Self::start_with(retry_window_seconds, Policy::default()).await
    }

    async fn start_with(retry_window_seconds: u64, policy: Policy) -> Harness {
        let issuer = Issuer::start().await;
        let dir = tempfile::tempdir().unwrap();
        let url = issuer.url.clone();
        let s = start(&issuer, &dir.path().join("ext.db"), |c| {
            c.extension_auth = ExtensionAuth {
                issuers: vec![url],
                audiences: vec![common::API_AUD.into()],
                ..ExtensionAuth::default()
            };
            c.retry_window_seconds = retry_window_seconds;
            c.policy = policy;
        })
        .await;
        let mut claims = issuer.claims("entra", 3600);
        claims["azp"] = json!(guestlist_core::extension::AUTHENTICATION_EVENTS_APP_ID);
        claims.as_object_mut().unwrap().remove("roles");
        claims.as_object_mut().unwrap().remove("scp");
        Harness {
            extension_token: issuer.sign(&claims),
            approver_token: issuer.token("approver-oid"),
            s,
            c: reqwest::Client::new(),
            issuer,
            _dir: dir,
        }
    }

    async fn call(&self, kind: &str, body: &Value) -> Value {
        let path = if kind == "start" {
            "attribute-collection-start"
        } else {
            "attribute-collection-submit"
        };
        let r = self
            .c
            .post(format!(
                "{}/connectors/external-id/{path}",
                self.s.base_url()
            ))
            .bearer_auth(&self.extension_token)
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{kind}");
        assert!(
            r.headers()[reqwest::header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        r.json().await.unwrap()
    }

    async fn requests(&self) -> Vec<Value> {
        self.requests_as(&self.approver_token).await
    }

    async fn requests_as(&self, token: &str) -> Vec<Value> {
        let v: Value = self
            .c
            .get(format!("{}/api/requests", self.s.base_url()))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["items"].as_array().unwrap().clone()
    }

    async fn decide(&self, r: &Value, body: Value) -> reqwest::Response {
        self.c
            .post(format!(
                "{}/api/requests/{}/decision",
                self.s.base_url(),
                r["id"].as_str().unwrap()
            ))
            .bearer_auth(&self.approver_token)
            .header("if-match", format!("\"{}\"", r["version"]))
            .json(&body)
            .send()
            .await
            .unwrap()
    }
}

fn action(v: &Value) -> &Value {
    &v["data"]["actions"][0]
}

fn action_type(v: &Value) -> &str {
    action(v)["@odata.type"].as_str().unwrap()
}

#[tokio::test]
async fn an_approved_person_comes_back_finishes_once_and_is_then_blocked() {
    // No retry window: every call after the completing one is a new sign-up.
    let h = Harness::start(0).await;
    let submit = event("submit", email_identity(), &attributes());

    // 1. The first Submit stores the request (the e-mail comes from the `email` identity: before
    //    the fix this was 400 claims.missing_email) and blocks, with a title.
    let v = h.call("submit", &submit).await;
    assert_documented_shape(&v, "submit.response.block.json");
    assert_eq!(
        action(&v)["title"],
        "Begäran skickad",
        "localised (sv-se): {v}"
    );
    let items = h.requests().await;
    assert_eq!(items.len(), 1);
    let r = &items[0];
    assert_eq!(r["flow"], "external", "{r}");
    assert_eq!(r["key"]["email"], EMAIL);
    assert!(r.get("completedAt").is_none());

    // 2. Start while pending: blocked.
    let start_ev = event("start", email_identity(), &[]);
    let v = h.call("start", &start_ev).await;
    assert_documented_shape(&v, "start.response.block.json");

    // 3. An approval with an account in Graph does not fit an external request…
    let wrong = h
        .decide(
            r,
            json!({"decision": "approve", "directoryObjectId": "u-1", "how": "userCreated"}),
        )
        .await;
    assert_eq!(wrong.status(), 400);
    assert_eq!(
        wrong.json::<Value>().await.unwrap()["error"]["code"],
        "decision.wrong_flow"
    );
    // …the external approval records the decision with no account.
    let ok = h
        .decide(r, json!({"decision": "approve", "how": "userFlow"}))
        .await;
    assert_eq!(ok.status(), 200);
    let approved: Value = ok.json().await.unwrap();
    assert_eq!(
        approved["state"],
        json!({"status": "approved", "directoryObjectId": null, "how": "userFlow"})
    );

    // 4. They come back: Start prefills what they submitted before (not the e-mail).
    let v = h.call("start", &start_ev).await;
    assert_documented_shape(&v, "start.response.prefill.json");
    assert_eq!(
        action(&v)["inputs"],
        json!({"city": "Uppsala", "displayName": "Linnéa Öberg",
            "extension_b7e5c3a1d9f24e6a8c0b1d2e3f4a5b6c_Sponsor": "Ada"})
    );
    // Start again (they reloaded the page): still the prefill, nothing completed.
    assert_eq!(h.call("start", &start_ev).await, v);

    // 5. Submit continues, exactly as documented, and completes the request.
    let v = h.call("submit", &submit).await;
    assert_eq!(v, fixture("submit.response.continue.json"));
    let r = h.requests().await.remove(0);
    assert!(r["completedAt"].is_string(), "{r}");
    assert_eq!(r["version"], approved["version"].as_u64().unwrap() + 1);
    let history: Value =
        h.c.get(format!(
            "{}/api/requests/{}/history",
            h.s.base_url(),
            r["id"].as_str().unwrap()
        ))
        .bearer_auth(&h.approver_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["requested", "approved", "completed"]);
    // The completion records what the account is created with (scrubbed by an erasure).
    assert_eq!(
        history[2]["detail"]["answer"],
        "continueWithDefaultBehavior"
    );
    assert_eq!(history[2]["detail"]["claims"]["city"], "Uppsala");

    // 6. The account exists now: a second sign-up is blocked at Start and at Submit, also
    //    through another identity provider with the same canonical e-mail.
    let v = h.call("start", &start_ev).await;
    assert_documented_shape(&v, "start.response.block.json");
    assert_eq!(action(&v)["title"], "Kontot finns redan");
    let v = h.call("submit", &submit).await;
    assert_documented_shape(&v, "submit.response.block.json");
    let google =
        json!({"signInType": "federated", "issuer": "google.com", "issuerAssignedId": "1170"});
    let upper = event(
        "submit",
        google,
        &[("email", json!("Linnea.Oberg@EXAMPLE.se"))],
    );
    let v = h.call("submit", &upper).await;
    assert_eq!(
        action_type(&v),
        "microsoft.graph.attributeCollectionSubmit.showBlockPage",
        "{v}"
    );
    assert_eq!(h.requests().await.len(), 1, "no second request stored");
    h.s.shutdown().await;
}

#[tokio::test]
async fn entras_retry_of_the_completing_submit_continues_again() {
    // Entra retries a Submit whose answer did not arrive in time; within the retry window the
    // same identity's Submit is that retry, and must not leave the person blocked without an
    // account. Another identity of the same person is not.
    let h = Harness::start(120).await;
    let submit = event("submit", email_identity(), &attributes());
    h.call("submit", &submit).await;
    let r = h.requests().await.remove(0);
    assert_eq!(
        h.decide(&r, json!({"decision": "approve", "how": "userFlow"}))
            .await
            .status(),
        200
    );
    assert_eq!(
        h.call("submit", &submit).await,
        fixture("submit.response.continue.json")
    );
    assert_eq!(
        h.call("submit", &submit).await,
        fixture("submit.response.continue.json")
    );
    let r = h.requests().await.remove(0);
    let history: Value =
        h.c.get(format!(
            "{}/api/requests/{}/history",
            h.s.base_url(),
            r["id"].as_str().unwrap()
        ))
        .bearer_auth(&h.approver_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let completed = history
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "completed")
        .count();
    assert_eq!(completed, 1, "completed once: {history}");
    let google =
        json!({"signInType": "federated", "issuer": "google.com", "issuerAssignedId": "1170"});
    let other = event("submit", google, &[("email", json!(EMAIL))]);
    assert_eq!(
        action_type(&h.call("submit", &other).await),
        "microsoft.graph.attributeCollectionSubmit.showBlockPage"
    );
    h.s.shutdown().await;
}

#[tokio::test]
async fn a_workforce_request_is_marked_workforce_and_never_approved_without_an_account() {
    let h = Harness::start(120).await;
    let r = h
        .c
        .post(format!("{}/connectors/request-approval", h.s.base_url()))
        .basic_auth("entra-user-flow", Some("correct horse battery staple"))
        .json(&json!({"email": "ada@fabrikam.com", "displayName": "Ada",
            "identities": [{"signInType": "federated", "issuer": "google.com", "issuerAssignedId": "9"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = h.requests().await.remove(0);
    assert_eq!(r["flow"], "workforce");
    let wrong = h
        .decide(&r, json!({"decision": "approve", "how": "userFlow"}))
        .await;
    assert_eq!(wrong.status(), 400);
    assert_eq!(
        wrong.json::<Value>().await.unwrap()["error"]["code"],
        "decision.wrong_flow"
    );
    // Denying works whatever the flow.
    assert_eq!(
        h.decide(&r, json!({"decision": "deny", "reason": "unknown"}))
            .await
            .status(),
        200
    );
    h.s.shutdown().await;
}

/// A denied external request stays denied when the person comes back: no prefill.
#[tokio::test]
async fn a_denied_person_is_blocked_at_start_and_submit() {
    let h = Harness::start(120).await;
    let submit = event("submit", email_identity(), &attributes());
    h.call("submit", &submit).await;
    let r = h.requests().await.remove(0);
    assert_eq!(
        h.decide(&r, json!({"decision": "deny", "reason": "unknown"}))
            .await
            .status(),
        200
    );
    for (kind, body, example) in [
        (
            "start",
            event("start", email_identity(), &[]),
            "start.response.block.json",
        ),
        ("submit", submit.clone(), "submit.response.block.json"),
    ] {
        let v = h.call(kind, &body).await;
        assert_documented_shape(&v, example);
        assert_eq!(action(&v)["title"], "Registreringen avslogs", "{kind}");
    }
    h.s.shutdown().await;
}

/// An external tenant's local e-mail account (the identity of Microsoft's documented
/// examples: signInType `email`, issuer the tenant's domain) is filed under the provider key
/// `email`, keeps its identity, and the policy's `identity_providers` match it by that key: a
/// route naming `email` routes it, an auto-approve rule naming `email` lets such a person
/// through. Before the fix the identity was dropped: the request was keyed with no issuer
/// (shown as "Entra ID" in the desktop app), left unrouted, and never auto-approved.
#[tokio::test]
async fn a_local_email_account_is_filed_under_the_email_provider_and_matched_by_it() {
    let policy = Policy {
        auto_approve: vec![Rule {
            name: "customers of partners".into(),
            email_domains: vec!["partner.example".into()],
            identity_providers: vec!["email".into()],
        }],
        routes: vec![RouteRule {
            name: "customers".into(),
            email_domains: Vec::new(),
            identity_providers: vec!["email".into()],
            applications: Vec::new(),
            role: "Approver.Customers".into(),
            fallback_role: None,
            escalate_after_hours: None,
            approvals_required: 1,
        }],
        ..Policy::default()
    };
    let h = Harness::start_with(120, policy).await;
    let v = h
        .call("submit", &event("submit", email_identity(), &attributes()))
        .await;
    assert_documented_shape(&v, "submit.response.block.json");

    // Routed to the `email` route: its role sees it, the plain approver role does not.
    let mut c = h.issuer.claims("customers-approver", 3600);
    c["roles"] = json!(["Approver.Customers"]);
    let customers = h.issuer.sign(&c);
    assert_eq!(h.requests().await.len(), 0, "routed away from Approver");
    let items = h.requests_as(&customers).await;
    assert_eq!(items.len(), 1, "the `email` route's approvers see it");
    let r = &items[0];
    assert_eq!(r["route"], "customers", "{r}");
    assert_eq!(
        r["key"],
        json!({"email": EMAIL, "issuer": "email", "issuerAssignedId": EMAIL}),
        "the approver API reports the provider key `email`"
    );
    assert_eq!(
        r["claims"]["identities"],
        json!([email_identity()]),
        "how the person signs in, as Entra sent it"
    );

    // Approved by the route's approver, as any external request.
    let refused = h
        .decide(r, json!({"decision": "approve", "how": "userFlow"}))
        .await;
    assert_eq!(
        refused.status(),
        403,
        "the plain approver cannot decide a routed request"
    );
    let ok =
        h.c.post(format!(
            "{}/api/requests/{}/decision",
            h.s.base_url(),
            r["id"].as_str().unwrap()
        ))
        .bearer_auth(&customers)
        .header("if-match", format!("\"{}\"", r["version"]))
        .json(&json!({"decision": "approve", "how": "userFlow"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);

    // Auto-approve by `email` (and domain): a partner's customer goes straight on.
    let partner = json!({"signInType": "email", "issuer": "woodgrove.onmicrosoft.com",
        "issuerAssignedId": "kim@partner.example"});
    let v = h
        .call("submit", &event("submit", partner, &attributes()))
        .await;
    assert_eq!(
        v,
        fixture("submit.response.continue.json"),
        "auto-approved by the `email` rule"
    );
    h.s.shutdown().await;
}
