//! The sign-up user flow against a small fake approval API (axum, inside this test) that answers
//! the documented fixtures — and a few off-contract answers — per e-mail address.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use guestlist_devtenant::userflow::{self, Outcome, PlayerConfig, Provider, SignUp, Step};
use guestlist_devtenant::{DevTenant, DevTenantConfig, defaults as d};
use serde_json::{Map, Value, json};

#[derive(Default)]
struct Fake {
    calls: Mutex<HashMap<String, usize>>,
    bodies: Mutex<Vec<Value>>,
}

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../../tests/fixtures/connector/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn check_request(h: &HeaderMap) -> Option<axum::response::Response> {
    let auth = h
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // "conn:secret" in base64.
    if auth != "Basic Y29ubjpzZWNyZXQ=" {
        return Some((StatusCode::UNAUTHORIZED, "bad credentials").into_response());
    }
    if h.get("content-type").and_then(|v| v.to_str().ok()) != Some("application/json") {
        return Some((StatusCode::UNSUPPORTED_MEDIA_TYPE, "json please").into_response());
    }
    None
}

async fn check_status(
    State(f): State<Arc<Fake>>,
    h: HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    if let Some(r) = check_request(&h) {
        return r;
    }
    let claims: Value = serde_json::from_slice(&body).unwrap();
    f.bodies.lock().unwrap().push(claims.clone());
    let email = claims["email"].as_str().unwrap().to_string();
    let n = {
        let mut c = f.calls.lock().unwrap();
        let e = c.entry(format!("check:{email}")).or_default();
        *e += 1;
        *e
    };
    if email.starts_with("slow") && n == 1 || email.starts_with("dead") {
        tokio::time::sleep(Duration::from_millis(800)).await;
    }
    if email.starts_with("allow") {
        return axum::Json(json!({"version": "1.0.0", "action": "Allow"})).into_response();
    }
    if email.starts_with("pending") {
        return axum::Json(fixture("response.block.pending.json")).into_response();
    }
    if email.starts_with("prefill") {
        return axum::Json(
            json!({"version": "1.0.0", "action": "Continue", "jobTitle": "Prefilled"}),
        )
        .into_response();
    }
    axum::Json(fixture("response.continue.json")).into_response()
}

async fn request_approval(
    State(f): State<Arc<Fake>>,
    h: HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    if let Some(r) = check_request(&h) {
        return r;
    }
    let claims: Value = serde_json::from_slice(&body).unwrap();
    f.bodies.lock().unwrap().push(claims.clone());
    let email = claims["email"].as_str().unwrap().to_string();
    *f.calls
        .lock()
        .unwrap()
        .entry(format!("request:{email}"))
        .or_default() += 1;
    let ve = json!({"version": "1.0.0", "status": 400, "action": "ValidationError", "userMessage": "Please enter a valid postal code."});
    if email.starts_with("ve200") {
        return axum::Json(ve).into_response();
    }
    if email.starts_with("ve400") {
        return (StatusCode::BAD_REQUEST, axum::Json(ve)).into_response();
    }
    if email.starts_with("auto") || email.starts_with("prefill") {
        return axum::Json(json!({"version": "1.0.0", "action": "Continue", "postalCode": "12349", "extension_CustomAttribute": "overridden"})).into_response();
    }
    axum::Json(fixture("response.block.requested.json")).into_response()
}

async fn fake_api() -> (String, Arc<Fake>) {
    let fake = Arc::new(Fake::default());
    let app = Router::new()
        .route("/connectors/check-approval-status", post(check_status))
        .route("/connectors/request-approval", post(request_approval))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), fake)
}

fn person(email: &str, provider: Provider) -> SignUp {
    let mut fed = Map::new();
    fed.insert("email".into(), json!(email));
    if provider == Provider::Google {
        fed.insert("identities".into(), json!([{"signInType": "federated", "issuer": "google.com", "issuerAssignedId": format!("id-{email}")}]));
    }
    fed.insert("displayName".into(), json!("Åsa Bergström"));
    fed.insert("ui_locales".into(), json!("sv-SE"));
    let mut col = Map::new();
    col.insert("city".into(), json!("Umeå"));
    col.insert("postalCode".into(), json!("903 26"));
    SignUp {
        provider,
        federation_claims: fed,
        collected: col,
        note: String::new(),
    }
}

async fn setup() -> (
    guestlist_devtenant::DevTenantHandle,
    PlayerConfig,
    Arc<Fake>,
) {
    let t = DevTenant::start(DevTenantConfig::default()).await.unwrap();
    let (api, fake) = fake_api().await;
    let cfg = PlayerConfig {
        api,
        username: "conn".into(),
        password: "secret".into(),
        timeout: Duration::from_millis(300),
        tenant_url: Some(t.base_url()),
        extensions_app_id: d::EXTENSIONS_APP_ID.into(),
    };
    (t, cfg, fake)
}

async fn play_one(cfg: &PlayerConfig, s: &SignUp) -> (Outcome, usize, Vec<String>) {
    let mut lines = vec![];
    let (o, r) = userflow::play(&reqwest::Client::new(), cfg, s, &mut |l| lines.push(l))
        .await
        .unwrap();
    (o, r, lines)
}

#[tokio::test]
async fn timeout_is_retried_exactly_once() {
    let (t, cfg, fake) = setup().await;
    let (o, retries, _) = play_one(&cfg, &person("slow@example.com", Provider::Google)).await;
    assert_eq!(retries, 1);
    assert!(
        matches!(o, Outcome::Blocked { step: Step::PostAttributeCollection, code: Some(ref c), .. } if c == "CONTOSO-APPROVAL-REQUESTED"),
        "{o:?}"
    );
    assert_eq!(fake.calls.lock().unwrap()["check:slow@example.com"], 2);
    // Both attempts time out → the generic error page, after exactly two calls.
    let (o, retries, lines) = play_one(&cfg, &person("dead@example.com", Provider::Google)).await;
    assert_eq!(retries, 1);
    assert!(
        matches!(
            o,
            Outcome::SomethingWentWrong {
                step: Step::PostFederationSignup,
                ..
            }
        ),
        "{o:?}"
    );
    assert!(lines.iter().any(|l| l.contains("Something went wrong")));
    assert_eq!(fake.calls.lock().unwrap()["check:dead@example.com"], 2);
    assert!(
        !fake
            .calls
            .lock()
            .unwrap()
            .contains_key("request:dead@example.com")
    );
    t.shutdown().await;
}

#[tokio::test]
async fn off_contract_answers_are_errors() {
    let (t, cfg, _fake) = setup().await;
    let (o, _, _) = play_one(&cfg, &person("allow@example.com", Provider::Google)).await;
    match o {
        Outcome::SomethingWentWrong { step, reason } => {
            assert_eq!(step, Step::PostFederationSignup);
            assert!(reason.contains("Allow"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let (o, _, _) = play_one(&cfg, &person("ve200@example.com", Provider::Google)).await;
    assert!(
        matches!(o, Outcome::SomethingWentWrong { step: Step::PostAttributeCollection, ref reason } if reason.contains("200")),
        "{o:?}"
    );
    let (o, _, lines) = play_one(&cfg, &person("ve400@example.com", Provider::Google)).await;
    assert_eq!(
        o,
        Outcome::ValidationError {
            message: "Please enter a valid postal code.".into()
        }
    );
    assert!(lines.iter().any(|l| l.contains("form shown again")));
    let (o, _, _) = play_one(&cfg, &person("pending@example.com", Provider::Google)).await;
    assert!(
        matches!(o, Outcome::Blocked { step: Step::PostFederationSignup, code: Some(ref c), .. } if c == "CONTOSO-APPROVAL-PENDING"),
        "{o:?}"
    );
    assert_eq!(
        t.users().len(),
        DevTenantConfig::default().users.len(),
        "no account created by any of these"
    );
    t.shutdown().await;
}

#[tokio::test]
async fn continue_creates_the_user_with_overrides_and_the_next_attempt_signs_in() {
    let (t, cfg, fake) = setup().await;
    let (o, retries, _) = play_one(&cfg, &person("auto@example.com", Provider::Google)).await;
    assert_eq!(retries, 0);
    let Outcome::AccountCreated { upn } = o else {
        panic!("{o:?}")
    };
    assert_eq!(upn, "auto_example.com#EXT#@contoso.onmicrosoft.com");
    let u = t.user(&upn).unwrap();
    assert_eq!(u["userType"], "Guest");
    assert_eq!(u["creationType"], "SelfServiceSignUp");
    assert_eq!(u["mail"], "auto@example.com");
    assert_eq!(u["city"], "Umeå");
    assert_eq!(
        u["postalCode"], "12349",
        "the Continue claims override collected values"
    );
    assert_eq!(
        u[format!("extension_{}_CustomAttribute", d::EXTENSIONS_APP_ID)],
        "overridden"
    );
    assert!(
        u["identities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["issuer"] == "google.com")
    );
    // The request-approval call carried the attribute page values with the IdP claims.
    let sent = fake.bodies.lock().unwrap().clone();
    assert_eq!(sent[1]["city"], "Umeå");
    assert_eq!(sent[1]["ui_locales"], "sv-SE");
    // Signing up again: the account exists, Entra signs the person in without connectors.
    let before = fake.bodies.lock().unwrap().len();
    let (o, _, _) = play_one(&cfg, &person("auto@example.com", Provider::Google)).await;
    assert_eq!(o, Outcome::SignedIn);
    assert_eq!(fake.bodies.lock().unwrap().len(), before);
    // Prefill from check-status reaches request-approval; an Entra ID user gets no identities claim.
    let (o, _, _) = play_one(&cfg, &person("prefill@fabrikam.com", Provider::EntraId)).await;
    assert!(matches!(o, Outcome::AccountCreated { .. }), "{o:?}");
    let sent = fake.bodies.lock().unwrap().clone();
    let last = sent.last().unwrap();
    assert_eq!(last["jobTitle"], "Prefilled");
    assert!(last.get("identities").is_none());
    t.shutdown().await;
}

#[tokio::test]
async fn generated_population_plays_to_a_summary() {
    let (t, cfg, fake) = setup().await;
    let people = userflow::generate(42, 14);
    let mut lines = vec![];
    let summary = userflow::play_all(&cfg, &people, |l| lines.push(l))
        .await
        .unwrap();
    assert_eq!(summary.total, 14);
    assert_eq!(
        summary.created
            + summary.blocked
            + summary.validation_errors
            + summary.signed_in
            + summary.errors,
        14
    );
    assert_eq!(
        summary.blocked,
        14 - summary.signed_in,
        "the fake API blocks every ordinary request: {summary}"
    );
    // The docs' example went out exactly as the fixture (with the real extensions app ID).
    let first = fake.bodies.lock().unwrap()[0].clone();
    assert_eq!(first, fixture("check-status.request.facebook.json"));
    assert!(lines.iter().any(|l| l.contains("John Smith")));
    assert!(summary.to_string().starts_with("summary: 14 sign-ups"));
    t.shutdown().await;
}
