//! devtenant as an external tenant (issue 17 §5): the customer authority's issuer and metadata,
//! and the user flow playing `OnAttributeCollectionStart` / `OnAttributeCollectionSubmit`
//! against a small fake extension (axum, in this test, on 127.0.0.1) that checks each bearer
//! token against the tenant's JWKS and answers with Microsoft's documented examples
//! (`tests/fixtures/external-id/`); every envelope it receives is compared with the docs' request
//! examples.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use guestlist_devtenant::userflow::{
    self, ExtensionConfig, ExternalResult, Outcome, PlayerConfig, Provider, SignUp, Step,
};
use guestlist_devtenant::{DevTenant, DevTenantConfig, DevTenantHandle, TenantKind, defaults as d};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value, json};

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../../tests/fixtures/external-id/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn external() -> DevTenantConfig {
    DevTenantConfig {
        tenant_kind: TenantKind::External,
        ..DevTenantConfig::default()
    }
}

/// `act` has the shape of Microsoft's example `exp`: the same members at every level, the same
/// JSON kinds; each attribute is `{"@odata.type","value","attributeType"}` with documented
/// values; each identity has the example identity's members.
fn assert_shape(exp: &Value, act: &Value, path: &str) {
    match (exp, act) {
        (Value::Object(_), Value::Object(a)) if path.ends_with(".attributes") => {
            for (name, v) in a {
                let keys: BTreeSet<&str> =
                    v.as_object().unwrap().keys().map(String::as_str).collect();
                assert_eq!(
                    keys,
                    BTreeSet::from(["@odata.type", "value", "attributeType"]),
                    "{path}.{name}"
                );
                let t = v["@odata.type"].as_str().unwrap();
                assert!(
                    ["string", "boolean", "int64"]
                        .iter()
                        .any(|k| t == format!("microsoft.graph.{k}DirectoryAttributeValue")),
                    "{path}.{name}: {t}"
                );
                let want = if name.starts_with("extension_") {
                    "directorySchemaExtension"
                } else {
                    "builtIn"
                };
                assert_eq!(v["attributeType"], want, "{path}.{name}");
            }
        }
        (Value::Object(e), Value::Object(a)) => {
            let ek: BTreeSet<&String> = e.keys().collect();
            let ak: BTreeSet<&String> = a.keys().collect();
            assert_eq!(ek, ak, "members at {path}");
            for (k, v) in e {
                assert_shape(v, &a[k], &format!("{path}.{k}"));
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            assert!(!a.is_empty(), "{path} is empty");
            for item in a {
                assert_shape(&e[0], item, &format!("{path}[]"));
            }
        }
        (e, a) => assert_eq!(
            std::mem::discriminant(e),
            std::mem::discriminant(a),
            "{path}: {e} vs {a}"
        ),
    }
}

#[derive(Default)]
struct Fake {
    keys: Vec<(String, DecodingKey)>,
    issuer: String,
    calls: Mutex<HashMap<String, usize>>,
    /// (event, envelope, verified token claims)
    seen: Mutex<Vec<(String, Value, Value)>>,
}

fn verify(f: &Fake, h: &HeaderMap) -> Result<Value, String> {
    let auth = h
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let token = auth.strip_prefix("Bearer ").ok_or("no bearer token")?;
    let kid = jsonwebtoken::decode_header(token)
        .map_err(|e| e.to_string())?
        .kid
        .ok_or("no kid")?;
    let key = &f
        .keys
        .iter()
        .find(|(k, _)| *k == kid)
        .ok_or("unknown kid")?
        .1;
    let mut v = Validation::new(Algorithm::RS256);
    v.set_audience(&[d::API_APP_ID_URI]);
    v.set_issuer(&[&f.issuer]);
    let data = jsonwebtoken::decode::<Value>(token, key, &v).map_err(|e| e.to_string())?;
    if data.claims["azp"] != d::AUTH_EVENTS_CLIENT_ID {
        return Err(format!("azp {}", data.claims["azp"]));
    }
    Ok(data.claims)
}

fn email_of(body: &Value) -> String {
    body["data"]["userSignUpInfo"]["attributes"]["email"]["value"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn event(f: &Fake, h: &HeaderMap, body: &[u8], start: bool) -> Response {
    let claims = match verify(f, h) {
        Ok(c) => c,
        Err(e) => return (StatusCode::UNAUTHORIZED, e).into_response(),
    };
    if h.get("content-type").and_then(|v| v.to_str().ok()) != Some("application/json") {
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, "json please").into_response();
    }
    let body: Value = serde_json::from_slice(body).unwrap();
    let email = email_of(&body);
    let ev = if start { "start" } else { "submit" };
    let n = {
        let mut c = f.calls.lock().unwrap();
        let e = c.entry(format!("{ev}:{email}")).or_default();
        *e += 1;
        *e
    };
    f.seen.lock().unwrap().push((ev.into(), body, claims));
    if start && (email.starts_with("slow") && n == 1 || email.starts_with("dead")) {
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    let answer =
        |name: &str| axum::Json(fixture(&format!("{ev}.response.{name}.json"))).into_response();
    match (start, email.split('@').next().unwrap()) {
        (true, "blocked-start") => answer("block"),
        (true, p) if p.starts_with("prefill") => {
            let mut v = fixture("start.response.prefill.json");
            v["data"]["actions"][0]["inputs"]["city"] = json!("Göteborg");
            axum::Json(v).into_response()
        }
        (true, "twoactions") => {
            let mut v = fixture("start.response.continue.json");
            let a = v["data"]["actions"][0].clone();
            v["data"]["actions"].as_array_mut().unwrap().push(a);
            axum::Json(v).into_response()
        }
        (true, "text") => (
            [("content-type", "text/plain")],
            fixture("start.response.continue.json").to_string(),
        )
            .into_response(),
        (true, _) => answer("continue"),
        (false, "invalid") => answer("validation-error"),
        (false, "blocked-submit") => answer("block"),
        (false, "modify") => {
            let mut v = fixture("submit.response.modify.json");
            v["data"]["actions"][0]["attributes"]["postalCode"] = json!("12349");
            axum::Json(v).into_response()
        }
        (false, _) => answer("continue"),
    }
}

async fn on_start(State(f): State<Arc<Fake>>, h: HeaderMap, b: axum::body::Bytes) -> Response {
    event(&f, &h, &b, true).await
}
async fn on_submit(State(f): State<Arc<Fake>>, h: HeaderMap, b: axum::body::Bytes) -> Response {
    event(&f, &h, &b, false).await
}

/// An external tenant, the fake extension (keys from the customer authority's metadata) and the
/// player's configuration (300 ms timeout, one retry).
async fn setup() -> (DevTenantHandle, PlayerConfig, ExtensionConfig, Arc<Fake>) {
    let t = DevTenant::start(external()).await.unwrap();
    let http = reqwest::Client::new();
    let meta: Value = http
        .get(t.customer_discovery_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwks: Value = http
        .get(meta["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            let key = DecodingKey::from_rsa_components(
                k["n"].as_str().unwrap(),
                k["e"].as_str().unwrap(),
            )
            .unwrap();
            (k["kid"].as_str().unwrap().to_string(), key)
        })
        .collect();
    let fake = Arc::new(Fake {
        keys,
        issuer: meta["issuer"].as_str().unwrap().to_string(),
        ..Fake::default()
    });
    let app = Router::new()
        .route(
            "/connectors/external-id/attribute-collection-start",
            post(on_start),
        )
        .route(
            "/connectors/external-id/attribute-collection-submit",
            post(on_submit),
        )
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let cfg = PlayerConfig {
        api: api.clone(),
        username: String::new(),
        password: String::new(),
        timeout: Duration::from_secs(20),
        tenant_url: Some(t.base_url()),
        extensions_app_id: d::EXTENSIONS_APP_ID.into(),
    };
    let mut ext = ExtensionConfig::for_api(&api);
    ext.timeout = Duration::from_millis(300);
    (t, cfg, ext, fake)
}

fn person(email: &str, provider: Provider) -> SignUp {
    let mut fed = Map::new();
    fed.insert("email".into(), json!(email));
    if provider == Provider::Google {
        fed.insert("identities".into(), json!([{"signInType": "federated", "issuer": "google.com", "issuerAssignedId": format!("g-{email}")}]));
        fed.insert("displayName".into(), json!("Linnéa Öberg"));
    }
    fed.insert("ui_locales".into(), json!("sv-SE"));
    let mut col = Map::new();
    col.insert("displayName".into(), json!("Linnéa Öberg"));
    col.insert("city".into(), json!("Umeå"));
    col.insert("postalCode".into(), json!("903 26"));
    col.insert(
        format!("extension_{}_Reason", d::EXTENSIONS_APP_ID),
        json!("Audit 2025"),
    );
    SignUp {
        provider,
        federation_claims: fed,
        collected: col,
        note: String::new(),
    }
}

async fn play(cfg: &PlayerConfig, ext: &ExtensionConfig, s: &SignUp) -> ExternalResult {
    let mut lines = vec![];
    userflow::play_external(&reqwest::Client::new(), cfg, ext, s, &mut |l| lines.push(l))
        .await
        .unwrap()
}

fn graph_user_validator() -> jsonschema::Validator {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../schemas/graph-subset.json"
    );
    let mut root: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    root["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
    root["$ref"] = json!("#/components/schemas/microsoft.graph.user");
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(&root)
        .unwrap()
}

#[tokio::test]
async fn external_mode_serves_the_ciamlogin_issuer_and_its_metadata() {
    let t = DevTenant::start(external()).await.unwrap();
    let tid = d::TENANT_ID;
    let issuer = format!("https://{}.ciamlogin.com/{tid}/v2.0", d::EXTERNAL_SUBDOMAIN);
    assert_eq!(t.customer_issuer().as_deref(), Some(issuer.as_str()));
    let http = reqwest::Client::new();
    let meta: Value = http
        .get(t.customer_discovery_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["issuer"], issuer);
    let jwks_uri = meta["jwks_uri"].as_str().unwrap();
    assert!(jwks_uri.starts_with(&t.base_url()), "{jwks_uri}");
    let jwks: Value = http
        .get(jwks_uri)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!jwks["keys"].as_array().unwrap().is_empty());
    assert_eq!(jwks["keys"][0]["issuer"], issuer);
    // The tenant's initial domain names it too; another host does not.
    let by_domain = format!(
        "{}/{}.ciamlogin.com/{}.onmicrosoft.com/v2.0/.well-known/openid-configuration",
        t.base_url(),
        d::EXTERNAL_SUBDOMAIN,
        d::EXTERNAL_SUBDOMAIN
    );
    assert_eq!(http.get(&by_domain).send().await.unwrap().status(), 200);
    let other = format!(
        "{}/other.ciamlogin.com/{tid}/v2.0/.well-known/openid-configuration",
        t.base_url()
    );
    let r = http.get(&other).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("AADSTS90002"));
    // Admins keep the workforce authority (the desktop app signs in there).
    let wf: Value = http
        .get(format!("{}/.well-known/openid-configuration", t.issuer()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(wf["issuer"], t.issuer());
    let health: Value = http
        .get(format!("{}/_devtenant/health", t.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["tenantKind"], "external");
    assert_eq!(health["customerIssuer"], issuer);
    t.shutdown().await;

    // A workforce tenant has no customer authority and issues no extension tokens.
    let w = DevTenant::start(DevTenantConfig::default()).await.unwrap();
    assert_eq!(w.customer_issuer(), None);
    assert_eq!(
        http.get(w.customer_discovery_url())
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    let r = http
        .post(format!(
            "{}/_devtenant/authentication-events/token",
            w.base_url()
        ))
        .json(&json!({"resource": d::API_APP_ID_URI}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    w.shutdown().await;

    // The mode and subdomain from a TOML file; a subdomain that is no DNS label is refused.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.toml");
    std::fs::write(
        &p,
        "tenant_kind = \"external\"\n[external]\nsubdomain = \"fabrikamcustomers\"\n",
    )
    .unwrap();
    let cfg = DevTenantConfig::from_file(&p).unwrap();
    assert_eq!(
        (cfg.tenant_kind, cfg.external.subdomain.as_str()),
        (TenantKind::External, "fabrikamcustomers")
    );
    std::fs::write(
        &p,
        "tenant_kind = \"external\"\n[external]\nsubdomain = \"Bad.Name\"\n",
    )
    .unwrap();
    assert!(
        DevTenantConfig::from_file(&p)
            .unwrap_err()
            .to_string()
            .contains("subdomain")
    );
}

#[tokio::test]
async fn every_documented_action_is_played_and_one_customer_is_created() {
    let (t, cfg, ext, fake) = setup().await;
    let members = t.users().len();

    // Start: setPrefillValues → the page's initial values (the docs' key1/key2 are not on the
    // page: ignored); Submit: continue → one customer account, prefilled city kept.
    let ana = person("prefill.ana@example.org", Provider::EmailOtp);
    let r = play(&cfg, &ext, &ana).await;
    assert_eq!(r.page_values.get("city"), Some(&json!("Göteborg")), "{r:?}");
    assert!(!r.page_values.contains_key("key1") && !r.page_values.contains_key("key2"));
    let Outcome::AccountCreated { upn } = &r.outcome else {
        panic!("{r:?}")
    };
    let u = t.user(upn).unwrap();
    let id = u["id"].as_str().unwrap();
    assert_eq!(
        upn,
        &format!("{id}@{}.onmicrosoft.com", d::EXTERNAL_SUBDOMAIN)
    );
    assert!(!upn.contains("#EXT#"));
    assert_eq!(u["userType"], "Member");
    assert_eq!(u["creationType"], "LocalAccount");
    assert_eq!(u["mail"], "prefill.ana@example.org");
    assert_eq!(u["city"], "Göteborg");
    assert_eq!(u["postalCode"], "903 26");
    assert_eq!(
        u[format!("extension_{}_Reason", d::EXTENSIONS_APP_ID)],
        "Audit 2025"
    );
    assert_eq!(
        u["identities"][0],
        json!({"signInType": "emailAddress", "issuer": format!("{}.onmicrosoft.com", d::EXTERNAL_SUBDOMAIN), "issuerAssignedId": "prefill.ana@example.org"})
    );
    // The same person again: signed in, no extension called, still exactly one account.
    let calls = fake.seen.lock().unwrap().len();
    assert_eq!(play(&cfg, &ext, &ana).await.outcome, Outcome::SignedIn);
    assert_eq!(fake.seen.lock().unwrap().len(), calls);

    // Submit: modifyAttributeValues overrides; a federated Google customer.
    let r = play(&cfg, &ext, &person("modify@example.org", Provider::Google)).await;
    let Outcome::AccountCreated { upn } = &r.outcome else {
        panic!("{r:?}")
    };
    let g = t.user(upn).unwrap();
    assert_eq!(g["postalCode"], "12349");
    assert_eq!(g["identities"][0]["signInType"], "federated");
    assert_eq!(g["identities"][0]["issuer"], "google.com");
    assert_eq!(g["creationType"], Value::Null);

    // Submit: showValidationError; Start and Submit: showBlockPage (with the docs' title).
    let r = play(
        &cfg,
        &ext,
        &person("invalid@example.org", Provider::EmailOtp),
    )
    .await;
    assert_eq!(
        r.outcome,
        Outcome::ValidationError {
            message: "Please fix the below errors to proceed.".into()
        }
    );
    assert_eq!(
        r.attribute_errors["city"],
        "City cannot contain any numbers"
    );
    let r = play(
        &cfg,
        &ext,
        &person("blocked-start@example.org", Provider::EmailOtp),
    )
    .await;
    assert!(
        matches!(&r.outcome, Outcome::Blocked { step: Step::PostFederationSignup, message, .. } if message.starts_with("Your access request")),
        "{r:?}"
    );
    assert_eq!(r.block_title.as_deref(), Some("Hold tight..."));
    assert!(r.page_values.is_empty(), "blocked before the page");
    let r = play(
        &cfg,
        &ext,
        &person("blocked-submit@example.org", Provider::EmailOtp),
    )
    .await;
    assert!(
        matches!(
            r.outcome,
            Outcome::Blocked {
                step: Step::PostAttributeCollection,
                ..
            }
        ),
        "{r:?}"
    );

    // Exactly two customers, no guest, no #EXT#, every one a valid Graph user.
    let users = t.users();
    assert_eq!(users.len(), members + 2);
    let v = graph_user_validator();
    for u in &users[members..] {
        assert_eq!(u["userType"], "Member");
        assert!(!u["userPrincipalName"].as_str().unwrap().contains("#EXT#"));
        let errors: Vec<String> = v
            .iter_errors(u)
            .map(|e| format!("{e} at {}", e.instance_path))
            .collect();
        assert!(errors.is_empty(), "{errors:?} {u}");
    }

    // Every envelope has the shape of the docs' example; every token is the authentication
    // events app's, for the API, from the customer issuer, verified against the JWKS.
    let seen = fake.seen.lock().unwrap().clone();
    assert!(seen.len() >= 9, "{}", seen.len());
    for (ev, body, claims) in &seen {
        assert_shape(&fixture(&format!("{ev}.request.json")), body, "");
        assert_eq!(body["data"]["tenantId"], d::TENANT_ID);
        assert_eq!(
            body["source"],
            format!(
                "/tenants/{}/applications/{}",
                d::TENANT_ID,
                d::CUSTOMER_APP_ID
            )
        );
        assert_eq!(claims["azp"], d::AUTH_EVENTS_CLIENT_ID);
        assert_eq!(claims["aud"], d::API_APP_ID_URI);
        assert_eq!(claims["tid"], d::TENANT_ID);
        assert_eq!(claims["iss"], t.customer_issuer().unwrap());
    }
    let (_, submit, _) = seen
        .iter()
        .find(|(ev, b, _)| ev == "submit" && email_of(b).starts_with("prefill"))
        .unwrap();
    let a = &submit["data"]["userSignUpInfo"]["attributes"];
    assert_eq!(
        a["city"]["value"], "Göteborg",
        "the prefilled value was submitted"
    );
    assert_eq!(
        a[format!("extension_{}_Reason", d::EXTENSIONS_APP_ID)]["attributeType"],
        "directorySchemaExtension"
    );
    assert_eq!(
        submit["data"]["userSignUpInfo"]["identities"][0]["signInType"],
        "email"
    );
    t.shutdown().await;
}

#[tokio::test]
async fn timeouts_retry_as_configured_and_off_contract_answers_are_errors() {
    let (t, cfg, mut ext, fake) = setup().await;
    let r = play(&cfg, &ext, &person("slow@example.org", Provider::EmailOtp)).await;
    assert_eq!(r.retries, 1);
    assert!(matches!(r.outcome, Outcome::AccountCreated { .. }), "{r:?}");
    assert_eq!(fake.calls.lock().unwrap()["start:slow@example.org"], 2);
    let r = play(&cfg, &ext, &person("dead@example.org", Provider::EmailOtp)).await;
    assert!(
        matches!(&r.outcome, Outcome::SomethingWentWrong { step: Step::PostFederationSignup, reason } if reason.contains("1003005")),
        "{r:?}"
    );
    assert_eq!(fake.calls.lock().unwrap()["start:dead@example.org"], 2);
    assert!(
        !fake
            .calls
            .lock()
            .unwrap()
            .contains_key("submit:dead@example.org")
    );
    // maximumRetries 0: one call only.
    ext.maximum_retries = 0;
    let r = play(&cfg, &ext, &person("dead@example.org", Provider::EmailOtp)).await;
    assert_eq!(r.retries, 0);
    assert_eq!(fake.calls.lock().unwrap()["start:dead@example.org"], 3);
    for (who, code) in [("twoactions", "1003010"), ("text", "1003006")] {
        let r = play(
            &cfg,
            &ext,
            &person(&format!("{who}@example.org"), Provider::EmailOtp),
        )
        .await;
        assert!(
            matches!(&r.outcome, Outcome::SomethingWentWrong { reason, .. } if reason.contains(code)),
            "{who}: {r:?}"
        );
    }
    assert_eq!(
        t.users().len(),
        DevTenantConfig::default().users.len() + 1,
        "only slow@ got an account"
    );
    // A workforce tenant cannot play the extension flow.
    let w = DevTenant::start(DevTenantConfig::default()).await.unwrap();
    let wcfg = PlayerConfig {
        tenant_url: Some(w.base_url()),
        ..cfg.clone()
    };
    let err = userflow::play_external(
        &reqwest::Client::new(),
        &wcfg,
        &ext,
        &person("x@example.org", Provider::EmailOtp),
        &mut |_| {},
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("workforce"), "{err}");
    t.shutdown().await;
    w.shutdown().await;
}
