//! The approval API over real HTTP on 127.0.0.1: the seed's connector answers, idempotency under
//! retries and bursts, edge cases of the wire, the approver API with real RS256 tokens from an
//! independent in-test issuer (its own key, discovery and JWKS), and the JWT attack suite.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::BTreeMap;

use axum::Json;
use axum::routing::get;
use base64::Engine;
use guestlist_core::policy::{Policy, Rule};
use guestlist_server::config::{ApproverAuth, ConnectorAuth, ExtensionAuth, Secret};
use guestlist_server::{Config, RunningServer};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};

const USER: &str = "entra-user-flow";
const PASS: &str = "correct horse battery staple";
const API_AUD: &str = "9b2e7c10-3f4a-4d5b-8e6f-7a8b9c0d1e2f";

fn fixture(name: &str) -> Value {
    let p = format!(
        "{}/../../tests/fixtures/connector/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// An independent token issuer: an RSA key, `/.well-known/openid-configuration` and a JWKS.
struct Issuer {
    url: String,
    kid: String,
    pem: Vec<u8>,
    public_pem: String,
    _task: tokio::task::JoinHandle<()>,
}

impl Issuer {
    async fn start() -> Issuer {
        let mut rng = rand::rng();
        let key = rsa::PrivateKey::new(&mut rng, 2048).unwrap();
        let pubkey = key.to_public_key();
        let b64 = |b: Vec<u8>| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let kid = "test-key-1".to_string();
        let jwks = json!({"keys": [{"kty":"RSA","use":"sig","alg":"RS256","kid":kid,
            "n": b64(pubkey.n_bytes().into_vec()), "e": b64(pubkey.e_bytes().into_vec())}]});
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let url = format!("http://{addr}/tenant/v2.0");
        let disco = json!({"issuer": url, "jwks_uri": format!("http://{addr}/tenant/keys")});
        let app = axum::Router::new()
            .route(
                "/tenant/v2.0/.well-known/openid-configuration",
                get(move || {
                    let d = disco.clone();
                    async move { Json(d) }
                }),
            )
            .route(
                "/tenant/keys",
                get(move || {
                    let j = jwks.clone();
                    async move { Json(j) }
                }),
            );
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        use rsa::pkcs8::EncodePublicKey;
        Issuer {
            url,
            kid,
            pem: key
                .to_pkcs1_pem(rsa::pkcs1::LineEnding::LF)
                .unwrap()
                .as_bytes()
                .to_vec(),
            public_pem: pubkey
                .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
                .unwrap(),
            _task: task,
        }
    }

    fn claims(&self) -> Value {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        json!({"iss": self.url, "aud": API_AUD, "iat": now, "nbf": now, "exp": now + 3600,
            "oid": "00000000-0000-0000-0000-00000000ada1", "name": "Ada Lovelace",
            "preferred_username": "ada@contoso.onmicrosoft.com", "roles": ["Approver"],
            "scp": "Approvals.ReadWrite", "azp": "6f1c9a42-8d7e-4b3a-9c55-0e2d4f8a7b11", "ver": "2.0"})
    }

    fn sign(&self, claims: &Value) -> String {
        let mut h = Header::new(Algorithm::RS256);
        h.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&h, claims, &EncodingKey::from_rsa_pem(&self.pem).unwrap()).unwrap()
    }

    fn token(&self) -> String {
        self.sign(&self.claims())
    }
}

async fn start(issuer: Option<&Issuer>, policy: Policy, db: &std::path::Path) -> RunningServer {
    start_with(issuer, policy, db, |_| {}).await
}

/// Starts a server on a free port with the test credentials, `issuer` for approvers, and any
/// further changes `tweak` makes to the config.
async fn start_with(
    issuer: Option<&Issuer>,
    policy: Policy,
    db: &std::path::Path,
    tweak: impl FnOnce(&mut Config),
) -> RunningServer {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        database: common::database(db),
        connector: ConnectorAuth {
            username: USER.into(),
            password: Secret(PASS.into()),
            ..ConnectorAuth::default()
        },
        approver_auth: ApproverAuth {
            issuer: issuer.map(|i| i.url.clone()),
            audiences: vec![API_AUD.into(), "api://guestlist-approvals".into()],
            ..ApproverAuth::default()
        },
        extension_auth: ExtensionAuth::default(),
        policy,
        admin_listen: Some(guestlist_server::edge::AdminListen::At(
            "127.0.0.1:0".parse().unwrap(),
        )),
        ..Config::default()
    };
    tweak(&mut config);
    common::spawn(config).await
}

async fn connector(c: &reqwest::Client, base: &str, which: &str, body: &Value) -> (u16, Value) {
    let r = c
        .post(format!("{base}/connectors/{which}"))
        .basic_auth(USER, Some(PASS))
        .json(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// The seed's answer with its `CONTOSO` code prefix replaced by ours.
fn seed_answer(name: &str) -> Value {
    let mut v = fixture(name);
    if let Some(code) = v.get("code").and_then(Value::as_str) {
        v["code"] = json!(code.replace("CONTOSO", "GUESTLIST"));
    }
    v
}

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
async fn approver_round_trip_with_real_tokens() {
    let issuer = Issuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let s = start(Some(&issuer), Policy::default(), &dir.path().join("a.db")).await;
    let c = reqwest::Client::new();
    let base = s.base_url();
    let token = issuer.token();
    connector(
        &c,
        &base,
        "request-approval",
        &fixture("request-approval.request.facebook.json"),
    )
    .await;
    connector(
        &c,
        &base,
        "request-approval",
        &fixture("request-approval.request.azuread.json"),
    )
    .await;

    let page: Value = c
        .get(format!("{base}/api/requests?status=pending"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stream_and_resume() {
    let issuer = Issuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let s = start(Some(&issuer), Policy::default(), &dir.path().join("a.db")).await;
    let c = reqwest::Client::new();
    let base = s.base_url();
    connector(
        &c,
        &base,
        "request-approval",
        &fixture("request-approval.request.facebook.json"),
    )
    .await;
    connector(
        &c,
        &base,
        "request-approval",
        &fixture("request-approval.request.azuread.json"),
    )
    .await;
    // Resume after event 1 (raw HTTP/1.1 on a socket, reading the chunked stream as it comes):
    // only event 2 is replayed, then a live one arrives.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut sock = tokio::net::TcpStream::connect(s.addr()).await.unwrap();
    let req = format!(
        "GET /api/events HTTP/1.1\r\nhost: localhost\r\naccept: text/event-stream\r\nauthorization: Bearer {}\r\nlast-event-id: 1\r\n\r\n",
        issuer.token()
    );
    sock.write_all(req.as_bytes()).await.unwrap();
    let mut text = String::new();
    let mut buf = vec![0u8; 16 * 1024];
    let deadline = std::time::Duration::from_secs(10);
    while !text.contains("id: 2\n") {
        let n = tokio::time::timeout(deadline, sock.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "stream closed: {text}");
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(text.contains("content-type: text/event-stream"));
    assert!(!text.contains("id: 1\n"));
    assert!(text.contains("event: request.created"));
    let mut extra = fixture("request-approval.request.facebook.json");
    extra["email"] = json!("third@fabrikam.com");
    connector(&c, &base, "request-approval", &extra).await;
    while !text.contains("id: 3\n") {
        let n = tokio::time::timeout(deadline, sock.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "stream closed: {text}");
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(text.contains("third@fabrikam.com"));
    drop(sock);
    s.shutdown().await;
}

#[tokio::test]
async fn jwt_attacks_are_rejected() {
    let issuer = Issuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let s = start(Some(&issuer), Policy::default(), &dir.path().join("a.db")).await;
    let c = reqwest::Client::new();
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
    let issuer = Issuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let s = start(Some(&issuer), Policy::default(), &dir.path().join("a.db")).await;
    let c = reqwest::Client::new();
    let base = s.base_url();
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

/// A federated sign-up's claims for `n` (its own e-mail and identity).
fn google(n: u32, name: &str) -> Value {
    let email = format!("g{n}@fabrikam.com");
    json!({"email": email, "displayName": name,
        "identities": [{"signInType":"federated","issuer":"google.com","issuerAssignedId":email}]})
}

async fn list(c: &reqwest::Client, base: &str, token: &str, query: &str) -> Value {
    let r = c
        .get(format!("{base}/api/requests?{query}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "GET /api/requests?{query}");
    r.json().await.unwrap()
}

fn emails(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"]["email"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn changed_since_lists_new_changed_and_decided_requests_in_change_order() {
    let issuer = Issuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let s = start(Some(&issuer), Policy::default(), &db).await;
    let c = reqwest::Client::new();
    let base = s.base_url();
    let token = issuer.token();
    for n in 1..=3 {
        connector(&c, &base, "request-approval", &google(n, "Guest")).await;
    }
    // Every page carries the mark; the existing parameters behave as before.
    let full = list(&c, &base, &token, "status=pending").await;
    assert_eq!(emails(&full).len(), 3);
    let mark = full["changeSeq"].as_u64().unwrap();
    assert!(mark >= 3, "{full}");
    let paged = list(&c, &base, &token, "status=pending&limit=2").await;
    assert_eq!(emails(&paged).len(), 2);
    assert!(paged["nextCursor"].is_string());
    // Nothing changed since the mark: an empty page with the same mark.
    let none = list(&c, &base, &token, &format!("since={mark}")).await;
    assert_eq!(emails(&none).len(), 0);
    assert_eq!(none["changeSeq"].as_u64(), Some(mark));
    assert!(none.get("nextCursor").is_none());

    // g2 signs up again (a changed request), g1 is denied elsewhere, g4 is new.
    connector(&c, &base, "request-approval", &google(2, "Guest Again")).await;
    let g1 = full["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["key"]["email"] == "g1@fabrikam.com")
        .unwrap()
        .clone();
    let r = c
        .post(format!(
            "{base}/api/requests/{}/decision",
            g1["id"].as_str().unwrap()
        ))
        .bearer_auth(&token)
        .header("if-match", format!("\"{}\"", g1["version"]))
        .json(&json!({"decision":"deny","reason":"unknown"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    connector(&c, &base, "request-approval", &google(4, "Guest")).await;

    // Since the mark, in change order, any status; paged by the cursor with `since` kept.
    let p1 = list(&c, &base, &token, &format!("since={mark}&limit=2")).await;
    assert_eq!(emails(&p1), ["g2@fabrikam.com", "g1@fabrikam.com"]);
    assert_eq!(p1["items"][0]["attempts"], 2);
    assert_eq!(p1["items"][1]["state"]["status"], "denied");
    let cursor = p1["nextCursor"].as_str().unwrap();
    let p2 = list(
        &c,
        &base,
        &token,
        &format!("since={mark}&limit=2&cursor={cursor}"),
    )
    .await;
    assert_eq!(emails(&p2), ["g4@fabrikam.com"]);
    assert!(p2.get("nextCursor").is_none());
    let high = p2["changeSeq"].as_u64().unwrap();
    assert!(high > p1["changeSeq"].as_u64().unwrap() && high >= mark + 3);
    // Passing an intermediate page's mark as `since` gives the rest.
    let rest = list(
        &c,
        &base,
        &token,
        &format!("since={}", p1["changeSeq"].as_u64().unwrap()),
    )
    .await;
    assert_eq!(emails(&rest), ["g4@fabrikam.com"]);
    // Filters combine with `since`.
    let pending = list(&c, &base, &token, &format!("since={mark}&status=pending")).await;
    assert_eq!(emails(&pending), ["g2@fabrikam.com", "g4@fabrikam.com"]);
    let q = list(&c, &base, &token, &format!("since={mark}&q=g4@")).await;
    assert_eq!(emails(&q), ["g4@fabrikam.com"]);
    // An Entra retry (same claims within the retry window) changes nothing.
    connector(&c, &base, "request-approval", &google(4, "Guest")).await;
    let same = list(&c, &base, &token, &format!("since={high}")).await;
    assert_eq!(emails(&same).len(), 0);
    assert_eq!(same["changeSeq"].as_u64(), Some(high));
    // A mark the server never gave (a client of a database since reset): the answer's mark is
    // below it, which tells the client to list everything again.
    let ahead = list(&c, &base, &token, &format!("since={}", high + 100)).await;
    assert_eq!(emails(&ahead).len(), 0);
    assert_eq!(ahead["changeSeq"].as_u64(), Some(high));
    // Not a number: 400.
    let bad = c
        .get(format!("{base}/api/requests?since=yesterday"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let doc: Value = c
        .get(format!("{}/openapi.json", s.admin_url().unwrap()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let params = doc["paths"]["/api/requests"]["get"]["parameters"]
        .as_array()
        .unwrap();
    assert!(params.iter().any(|p| p["name"] == "since"), "{params:?}");
    s.shutdown().await;

    // The sequence is stored: after a restart on the same file the mark still holds, and the
    // next change continues above it.
    let s = start(Some(&issuer), Policy::default(), &db).await;
    let base = s.base_url();
    let after = list(&c, &base, &token, &format!("since={high}")).await;
    assert_eq!(emails(&after).len(), 0);
    assert_eq!(after["changeSeq"].as_u64(), Some(high));
    connector(&c, &base, "request-approval", &google(5, "Guest")).await;
    let next = list(&c, &base, &token, &format!("since={high}")).await;
    assert_eq!(emails(&next), ["g5@fabrikam.com"]);
    assert_eq!(next["changeSeq"].as_u64(), Some(high + 1));
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_does_not_remind_again() {
    use guestlist_server::webhook::Notifications;
    // The webhook receiver records every POST.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |Json(body): Json<Value>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(body);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    // A request made 30 hours ago, in the database file the servers use.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    {
        let store = common::open_store(&db).await;
        let claims = guestlist_core::connector::Claims::from_json(google(7, "Old Guest")).unwrap();
        store
            .request_approval(
                &claims,
                &Policy::default(),
                time::OffsetDateTime::now_utc() - time::Duration::hours(30),
                time::Duration::seconds(120),
            )
            .await
            .unwrap();
    }
    let notifications = Notifications {
        webhook_url: Some(Secret(url)),
        remind_after_hours: Some(24),
        reminder_interval_seconds: 1,
        ..Notifications::default()
    };
    let tweak = |c: &mut Config| c.notifications = notifications.clone();
    let s = start_with(None, Policy::default(), &db, tweak).await;
    let first = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
        .await
        .expect("a reminder within 10 s")
        .unwrap();
    assert_eq!(first["type"], "requests.reminder", "{first}");
    assert_eq!(first["count"], 1, "{first}");
    s.shutdown().await;

    // Restarted on the same file: several reminder checks run (one per second), none posts.
    let s = start_with(None, Policy::default(), &db, tweak).await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert!(
        rx.try_recv().is_err(),
        "the restarted server reminded again"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn request_ids_and_metrics_labels() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(None, Policy::default(), &dir.path().join("m.db")).await;
    let c = reqwest::Client::new();
    let base = s.base_url();
    // Each answer gets its own id (the caller's when it sent one).
    let mut ids = Vec::new();
    for _ in 0..3 {
        let r = c.get(format!("{base}/healthz")).send().await.unwrap();
        let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert_eq!(id.len(), 33, "{id}");
        assert!(
            id.chars().all(|ch| ch == '-' || ch.is_ascii_hexdigit()),
            "{id}"
        );
        ids.push(id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 3, "{ids:?}");
    let r = c
        .get(format!("{base}/healthz"))
        .header("x-request-id", "from-the-caller")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "from-the-caller");
    // Counters are labelled with the endpoint and the answer's code.
    connector(&c, &base, "request-approval", &google(1, "Guest")).await;
    connector(&c, &base, "check-approval-status", &google(1, "Guest")).await;
    connector(&c, &base, "check-approval-status", &google(1, "Guest")).await;
    connector(&c, &base, "check-approval-status", &google(2, "Guest")).await;
    let m = c
        .get(format!("{}/metrics", s.admin_url().unwrap()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        r#"guestlist_connector_answers_total{endpoint="request-approval",answer="GUESTLIST-APPROVAL-REQUESTED"} 1"#,
        r#"guestlist_connector_answers_total{endpoint="check-approval-status",answer="GUESTLIST-APPROVAL-PENDING"} 2"#,
        r#"guestlist_connector_answers_total{endpoint="check-approval-status",answer="Continue"} 1"#,
        r#"guestlist_requests{status="pending"} 1"#,
    ] {
        assert!(m.lines().any(|l| l == line), "{line} in\n{m}");
    }
    s.shutdown().await;
}
