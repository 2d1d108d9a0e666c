//! Shared by the server's tests: an independent token issuer on 127.0.0.1 that counts
//! its discovery and JWKS fetches and can be switched off, a server started on a free port,
//! a raw SSE client (a TCP socket, so a test decides when, or whether, it reads), and the
//! store the suite runs on ([`database`]: `GUESTLIST_TEST_STORE=sqlite|postgres`).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::Json;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use base64::Engine;
use guestlist_core::connector::Claims;
use guestlist_server::config::{ApproverAuth, ConnectorAuth, Secret};
use guestlist_server::store::{DatabaseUrl, Store};
use guestlist_server::{Config, RunningServer};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const API_AUD: &str = "9b2e7c10-3f4a-4d5b-8e6f-7a8b9c0d1e2f";
pub const DESKTOP: &str = "6f1c9a42-8d7e-4b3a-9c55-0e2d4f8a7b11";
/// The connector's Basic credentials of the servers [`start`] starts (CONTRACTS.md §1).
pub const USER: &str = "entra-user-flow";
pub const PASS: &str = "correct horse battery staple";

/// The seed's connector document `tests/fixtures/connector/<name>` (CONTRACTS.md §1).
pub fn connector_fixture(name: &str) -> Value {
    let p = format!(
        "{}/../../tests/fixtures/connector/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// A token issuer: an RSA key, discovery and JWKS, with fetch counters and an off switch.
pub struct Issuer {
    pub url: String,
    pub host: String,
    pub kid: String,
    pem: Vec<u8>,
    pub discovery_hits: Arc<AtomicU64>,
    pub jwks_hits: Arc<AtomicU64>,
    pub down: Arc<AtomicBool>,
    _task: tokio::task::JoinHandle<()>,
}

impl Issuer {
    pub async fn start() -> Issuer {
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
        let (discovery_hits, jwks_hits) =
            (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let down = Arc::new(AtomicBool::new(false));
        let (dh, jh, d1, d2) = (
            discovery_hits.clone(),
            jwks_hits.clone(),
            down.clone(),
            down.clone(),
        );
        let app = axum::Router::new()
            .route(
                "/tenant/v2.0/.well-known/openid-configuration",
                get(move || {
                    dh.fetch_add(1, Ordering::SeqCst);
                    let (d, down) = (disco.clone(), d1.load(Ordering::SeqCst));
                    async move {
                        if down {
                            StatusCode::BAD_GATEWAY.into_response()
                        } else {
                            Json(d).into_response()
                        }
                    }
                }),
            )
            .route(
                "/tenant/keys",
                get(move || {
                    jh.fetch_add(1, Ordering::SeqCst);
                    let (j, down) = (jwks.clone(), d2.load(Ordering::SeqCst));
                    async move {
                        // A slow JWKS, so concurrent callers overlap the fetch.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        if down {
                            StatusCode::BAD_GATEWAY.into_response()
                        } else {
                            Json(j).into_response()
                        }
                    }
                }),
            );
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Issuer {
            url,
            host: addr.to_string(),
            kid,
            pem: key
                .to_pkcs1_pem(rsa::pkcs1::LineEnding::LF)
                .unwrap()
                .as_bytes()
                .to_vec(),
            discovery_hits,
            jwks_hits,
            down,
            _task: task,
        }
    }

    /// Claims of an approver's token for `oid`, valid for `ttl` seconds.
    pub fn claims(&self, oid: &str, ttl: i64) -> Value {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        json!({"iss": self.url, "aud": API_AUD, "iat": now, "nbf": now, "exp": now + ttl,
            "oid": oid, "sub": oid, "name": "Ada Lovelace",
            "preferred_username": "ada@contoso.onmicrosoft.com", "roles": ["Approver"],
            "scp": "Approvals.ReadWrite", "azp": DESKTOP, "ver": "2.0"})
    }

    pub fn sign_kid(&self, claims: &Value, kid: &str) -> String {
        let mut h = Header::new(Algorithm::RS256);
        h.kid = Some(kid.into());
        jsonwebtoken::encode(&h, claims, &EncodingKey::from_rsa_pem(&self.pem).unwrap()).unwrap()
    }

    pub fn sign(&self, claims: &Value) -> String {
        self.sign_kid(claims, &self.kid.clone())
    }

    /// A one-hour token of approver `oid`.
    pub fn token(&self, oid: &str) -> String {
        self.sign(&self.claims(oid, 3600))
    }
}

/// Which store the suite runs on: `GUESTLIST_TEST_STORE` = `sqlite` (the default) or
/// `postgres` (issue 13: the server's whole suite runs on both).
pub fn on_postgres() -> bool {
    match std::env::var("GUESTLIST_TEST_STORE").as_deref() {
        Ok("postgres") => true,
        Ok("sqlite") | Ok("") | Err(_) => false,
        Ok(other) => panic!("GUESTLIST_TEST_STORE must be sqlite or postgres, not {other:?}"),
    }
}

/// The database a test uses for the SQLite file `db`: that file, or on PostgreSQL
/// ([`on_postgres`]) a fresh database of the test binary's cluster
/// (`guestlist_testkit::postgres::Cluster::shared`), the same one each time the same `db` is
/// given (a test that restarts its server on `db` finds its data again).
pub fn database(db: &std::path::Path) -> DatabaseUrl {
    if !on_postgres() {
        return DatabaseUrl::Sqlite(db.to_path_buf());
    }
    static MADE: std::sync::Mutex<Vec<(std::path::PathBuf, String)>> =
        std::sync::Mutex::new(Vec::new());
    let mut made = MADE.lock().unwrap();
    let url = match made.iter().find(|(p, _)| p == db) {
        Some((_, url)) => url.clone(),
        None => {
            let url = guestlist_testkit::postgres::Cluster::shared().fresh_database();
            made.push((db.to_path_buf(), url.clone()));
            url
        }
    };
    url.parse().unwrap()
}

/// Starts a server with `config`, which on PostgreSQL gets a test tombstone key when it has
/// none (a shared database needs the same key on every replica, so it must be configured).
pub async fn spawn(mut config: Config) -> RunningServer {
    if config.database.postgres_url().is_some()
        && config.retention.tombstone_key.is_none()
        && config.retention.tombstone_key_file.is_none()
    {
        config.retention.tombstone_key = Some(Secret("test-tombstone-key-".repeat(3)));
    }
    guestlist_server::spawn(config).await.unwrap()
}

/// A server on the SQLite file `db` whatever `GUESTLIST_TEST_STORE` says, for tests of what
/// only SQLite has (its files, their modes, its online backup, a database of the old code).
pub async fn start_sqlite(
    issuer: &Issuer,
    db: &std::path::Path,
    tweak: impl FnOnce(&mut Config),
) -> RunningServer {
    let db_path = db.to_path_buf();
    start(issuer, db, move |c| {
        tweak(c);
        c.database = DatabaseUrl::Sqlite(db_path);
    })
    .await
}

/// The tables of the PostgreSQL database `url` holding a row whose text form contains
/// `needle`, with how many (`SELECT count(*) FROM t WHERE strpos(t::text, $1) > 0` for every
/// table of the schema): the PostgreSQL counterpart of reading SQLite's files for the bytes.
pub async fn pg_rows_containing(url: &str, needle: &str) -> Vec<(String, i64)> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let tables: Vec<String> = client
        .query(
            "SELECT quote_ident(table_name) FROM information_schema.tables
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(!tables.is_empty(), "no tables in {url}");
    let mut found = Vec::new();
    for t in tables {
        let n: i64 = client
            .query_one(
                &format!("SELECT count(*) FROM {t} WHERE strpos({t}::text, $1) > 0"),
                &[&needle],
            )
            .await
            .unwrap()
            .get(0);
        if n > 0 {
            found.push((t, n));
        }
    }
    found
}

/// Opens the store of [`database`]`(db)` directly (no server).
pub async fn open_store(db: &std::path::Path) -> Store {
    let store = Store::open(&database(db)).await.unwrap();
    if on_postgres() {
        store
            .set_tombstone_key("test-tombstone-key-".repeat(3).into_bytes())
            .await
            .unwrap();
    }
    store
}

/// A server on a free port with approvers signed in by `issuer`, changed by `tweak`.
pub async fn start(
    issuer: &Issuer,
    db: &std::path::Path,
    tweak: impl FnOnce(&mut Config),
) -> RunningServer {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        database: database(db),
        connector: ConnectorAuth {
            username: USER.into(),
            password: Secret(PASS.into()),
            ..ConnectorAuth::default()
        },
        approver_auth: ApproverAuth {
            issuer: Some(issuer.url.clone()),
            audiences: vec![API_AUD.into()],
            allowed_client_ids: vec![DESKTOP.into()],
            ..ApproverAuth::default()
        },
        ..Config::default()
    };
    tweak(&mut config);
    spawn(config).await
}

/// Stores a new request (and so one `request.created` event) for `email`, with `pad` bytes of
/// extra claims, and publishes it as the connector would.
pub async fn sign_up(s: &RunningServer, email: &str, pad: usize) {
    let c = Claims::from_json(json!({"email": email, "displayName": email,
        "companyName": "x".repeat(pad)}))
    .unwrap();
    s.state.request_approval(&c).await.unwrap();
}

/// Opens `GET /api/events` on a raw socket (its receive buffer set to `recv_buf` bytes when
/// given) and sends the request; nothing is read.
pub async fn open_stream(
    s: &RunningServer,
    token: &str,
    last_event_id: Option<&str>,
    recv_buf: Option<u32>,
) -> TcpStream {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    if let Some(n) = recv_buf {
        sock.set_recv_buffer_size(n).unwrap();
    }
    let mut sock = sock.connect(s.addr()).await.unwrap();
    let lei = last_event_id
        .map(|l| format!("last-event-id: {l}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "GET /api/events HTTP/1.1\r\nhost: localhost\r\naccept: text/event-stream\r\nconnection: close\r\nauthorization: Bearer {token}\r\n{lei}\r\n"
    );
    sock.write_all(req.as_bytes()).await.unwrap();
    sock
}

/// Reads into `text` until it contains `pat` (true) or the connection ends (false), failing
/// after `secs` seconds.
pub async fn read_until(sock: &mut TcpStream, text: &mut String, pat: &str, secs: u64) -> bool {
    let mut buf = vec![0u8; 64 * 1024];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !text.contains(pat) {
        let n = tokio::time::timeout_at(deadline, sock.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no {pat:?} within {secs} s; got: {}", tail(text)))
            .unwrap_or(0);
        if n == 0 {
            return false;
        }
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    true
}

/// The last 2,000 characters of `text`, for assertion messages.
pub fn tail(text: &str) -> &str {
    let start = text.len().saturating_sub(2000);
    let start = (start..text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0);
    &text[start..]
}

/// Waits (10 s at most) until `f` holds.
pub async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("not within 10 s: {what}");
}
