//! The approval API over real HTTP on 127.0.0.1, its shared helpers (an independent in-test
//! token issuer with its own key, discovery and JWKS; a server with the test credentials), and
//! one module per topic:
//!
//! - [`connector`]: the seed's connector answers, idempotency under retries and bursts, the
//!   wire's edges, the External ID extensions;
//! - [`approver`]: the approver API with real RS256 tokens, the JWT attack suite, the
//!   extractors' rejections, failing closed without a token authority;
//! - [`queue`]: the live queue (SSE and `changeSeq`), reminders across a restart, request ids
//!   and metrics labels.

mod approver;
mod connector;
mod queue;

use axum::Json;
use axum::routing::get;
use base64::Engine;
use guestlist_core::policy::Policy;
use guestlist_server::config::{ApproverAuth, ConnectorAuth, ExtensionAuth, Secret};
use guestlist_server::{Config, RunningServer};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};

use crate::common::{self, PASS, USER, connector_fixture as fixture};

const API_AUD: &str = "9b2e7c10-3f4a-4d5b-8e6f-7a8b9c0d1e2f";

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

/// A server whose approvers' tokens come from its own in-test [`Issuer`], with the default
/// policy and its database in a temporary directory (kept while the `TempDir` lives): the issuer,
/// the server, a client, the server's base URL and the directory.
async fn served() -> (
    Issuer,
    RunningServer,
    reqwest::Client,
    String,
    tempfile::TempDir,
) {
    let issuer = Issuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let s = start(Some(&issuer), Policy::default(), &dir.path().join("a.db")).await;
    let base = s.base_url();
    (issuer, s, reqwest::Client::new(), base, dir)
}

/// The connector's `request-approval` call with the seed's two sign-ups: a Facebook identity,
/// then an Entra ID one.
async fn request_seed_approvals(c: &reqwest::Client, base: &str) {
    for name in [
        "request-approval.request.facebook.json",
        "request-approval.request.azuread.json",
    ] {
        connector(c, base, "request-approval", &fixture(name)).await;
    }
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
