//! Hostile traffic at the edge of the approval API (issue 10 §1, §5, §7), over real TCP on
//! 127.0.0.1 with real SQLite files: slow headers, slow bodies, connection floods from one or
//! many addresses, password guessing, TLS certificate rotation, client certificates (made at
//! test time with rcgen) and certificates forwarded by a TLS-terminating proxy. Every wait is
//! bounded; nothing here asserts a speed.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use guestlist_core::connector::Claims;
use guestlist_core::model::{Actor, Decision, ProvisionedBy};
use guestlist_core::policy::{ExpiredBehaviour, Policy};
use guestlist_server::config::{ConnectorAuth, ConnectorAuthMode, Secret};
use guestlist_server::edge::AdminListen;
use guestlist_server::edge::client_cert::ForwardedCertHeader;
use guestlist_server::{Config, RunningServer};
use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const USER: &str = "entra";
const PASS: &str = "a-long-connector-secret";

/// A second loopback address (Linux routes all of 127/8 to lo) for "another caller".
const OTHER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));
const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

async fn start(db: &Path, tweak: impl FnOnce(&mut Config)) -> RunningServer {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        database: common::database(db),
        connector: ConnectorAuth {
            username: USER.into(),
            password: Secret(PASS.into()),
            ..ConnectorAuth::default()
        },
        admin_listen: Some(AdminListen::At("127.0.0.1:0".parse().unwrap())),
        ..Config::default()
    };
    tweak(&mut config);
    common::spawn(config).await
}

fn claims(n: u32) -> Value {
    let email = format!("edge{n}@fabrikam.com");
    json!({"email": email, "displayName": "Edge",
        "identities": [{"signInType":"federated","issuer":"google.com","issuerAssignedId":email}]})
}

fn client_from(local: IpAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(local)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

async fn check_status(c: &reqwest::Client, base: &str, pass: &str) -> reqwest::Response {
    c.post(format!("{base}/connectors/check-approval-status"))
        .basic_auth(USER, Some(pass))
        .json(&claims(1))
        .send()
        .await
        .unwrap()
}

/// A TCP connection from `local` to `to`.
async fn connect_from(local: IpAddr, to: SocketAddr) -> TcpStream {
    let s = TcpSocket::new_v4().unwrap();
    s.bind(SocketAddr::new(local, 0)).unwrap();
    s.connect(to).await.unwrap()
}

/// Reads until EOF or reset, within `within`; `Some(bytes read)` when the server closed.
async fn closed_within(s: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(got),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// The value of a `/metrics` series, e.g. `guestlist_requests{status="pending"}`.
async fn metric(s: &RunningServer, series: &str) -> u64 {
    let text = reqwest::get(format!("{}/metrics", s.admin_url().unwrap()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

/// Slowloris: clients that send their request head a byte at a time are closed after
/// `header_read_timeout_ms`, and check-approval-status is answered meanwhile. (The old
/// `axum::serve` never closed them: this test timed out waiting.)
#[tokio::test]
async fn slow_header_clients_are_closed_and_do_not_block_check_status() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(&dir.path().join("g.db"), |c| {
        c.limits.header_read_timeout_ms = 600;
    })
    .await;
    let addr = s.addr();
    let mut slow = Vec::new();
    for _ in 0..40 {
        slow.push(connect_from(LOCAL, addr).await);
    }
    let started = Instant::now();
    let trickle = tokio::spawn(async move {
        let head = b"POST /connectors/check-approval-status HTTP/1.1\r\nHost: x\r\n";
        let mut closed = 0;
        for i in 0..head.len() {
            for c in slow.iter_mut() {
                let _ = c.write_all(&head[i..=i]).await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            if started.elapsed() > Duration::from_secs(1) {
                break;
            }
        }
        for mut c in slow {
            if closed_within(&mut c, Duration::from_secs(5))
                .await
                .is_some()
            {
                closed += 1;
            }
        }
        closed
    });
    // Served while the slow clients hold their connections.
    let c = client_from(LOCAL);
    let r = check_status(&c, &s.base_url(), PASS).await;
    assert_eq!(r.status(), 200);
    let closed = trickle.await.unwrap();
    assert_eq!(closed, 40, "every slow-header client was closed");
    // And still served after.
    assert_eq!(check_status(&c, &s.base_url(), PASS).await.status(), 200);
    s.shutdown().await;
}

/// A kept-alive connection that sends nothing after its answer is closed after
/// `header_read_timeout_ms` (the idle keep-alive timeout). (The old server kept it forever.)
#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(&dir.path().join("g.db"), |c| {
        c.limits.header_read_timeout_ms = 500;
    })
    .await;
    let mut conn = connect_from(LOCAL, s.addr()).await;
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(3), conn.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let rest = closed_within(&mut conn, Duration::from_secs(5)).await;
    assert!(rest.is_some(), "the idle connection was closed");
    s.shutdown().await;
}

/// A body that trickles in is cut at `body_read_timeout_ms` with 408, and the connection
/// closes. (The old server waited for the body forever.)
#[tokio::test]
async fn a_slow_body_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(&dir.path().join("g.db"), |c| {
        c.limits.body_read_timeout_ms = 500;
    })
    .await;
    let mut conn = connect_from(LOCAL, s.addr()).await;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASS}"));
    let head = format!(
        "POST /connectors/check-approval-status HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n{{\"email\":"
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let (mut rd, mut wr) = conn.into_split();
    let trickle = tokio::spawn(async move {
        for _ in 0..100 {
            if wr.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), rd.read_to_end(&mut got)).await;
    trickle.abort();
    assert!(read.is_ok(), "the server closed the slow body's connection");
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("request.body_timeout"), "{text}");
    s.shutdown().await;
}

/// Past `max_connections`, a new connection is answered 503 and closed at once (the accept
/// loop never reaches EMFILE); once slots free, a normal caller is served.
#[tokio::test]
async fn the_connection_cap_refuses_cleanly_then_serves_again() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(&dir.path().join("g.db"), |c| {
        c.limits.max_connections = 8;
        c.limits.header_read_timeout_ms = 30_000;
    })
    .await;
    let addr = s.addr();
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(connect_from(LOCAL, addr).await);
    }
    // The accept loop has taken all eight once the gauge says so.
    let deadline = Instant::now() + Duration::from_secs(5);
    while metric(&s, "guestlist_open_connections").await < 8 {
        assert!(Instant::now() < deadline, "eight connections accepted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut extra = connect_from(LOCAL, addr).await;
    let got = closed_within(&mut extra, Duration::from_secs(3))
        .await
        .expect("the connection past the cap is closed at once");
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 503"),
        "{text}"
    );
    assert!(metric(&s, "guestlist_connections_refused_total{cap=\"global\"}").await >= 1);
    // Slots free: a normal caller is served.
    idle.truncate(6);
    let c = client_from(LOCAL);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match c
            .post(format!("{}/connectors/check-approval-status", s.base_url()))
            .basic_auth(USER, Some(PASS))
            .json(&claims(1))
            .send()
            .await
        {
            Ok(r) if r.status() == 200 => break,
            other => assert!(
                Instant::now() < deadline,
                "served once slots free: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(idle);
    s.shutdown().await;
}

/// One address cannot take more than `max_connections_per_ip`; another address is served.
#[tokio::test]
async fn one_address_cannot_take_every_connection() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(&dir.path().join("g.db"), |c| {
        c.limits.max_connections_per_ip = 4;
        c.limits.header_read_timeout_ms = 30_000;
    })
    .await;
    let addr = s.addr();
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(connect_from(OTHER, addr).await);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while metric(&s, "guestlist_open_connections").await < 4 {
        assert!(Instant::now() < deadline, "four connections accepted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut fifth = connect_from(OTHER, addr).await;
    assert!(
        closed_within(&mut fifth, Duration::from_secs(3))
            .await
            .is_some(),
        "the fifth connection from one address is closed at once"
    );
    assert!(metric(&s, "guestlist_connections_refused_total{cap=\"per_ip\"}").await >= 1);
    // Entra, from another address, is served.
    let r = check_status(&client_from(LOCAL), &s.base_url(), PASS).await;
    assert_eq!(r.status(), 200);
    drop(held);
    s.shutdown().await;
}

/// Password guessing from one address gets 429 with `Retry-After`, is logged and counted;
/// the right password from Entra's address still succeeds at once, and from the guessing
/// address after the block, which its success clears.
#[tokio::test]
async fn guessing_is_throttled_without_locking_out_the_real_caller() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(&dir.path().join("g.db"), |_| {}).await;
    let base = s.base_url();
    let attacker = client_from(OTHER);
    let mut statuses = Vec::new();
    for i in 0..12 {
        let r = check_status(&attacker, &base, &format!("guess-{i}")).await;
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            let after: u64 = r.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=60).contains(&after));
        }
    }
    assert_eq!(&statuses[..5], &[401; 5], "{statuses:?}");
    assert!(statuses[6..].iter().all(|s| *s == 429), "{statuses:?}");
    // While blocked, even the right password from that address waits.
    assert_eq!(check_status(&attacker, &base, PASS).await.status(), 429);
    // Entra's own address is not affected.
    let entra = client_from(LOCAL);
    assert_eq!(check_status(&entra, &base, PASS).await.status(), 200);
    assert!(
        metric(
            &s,
            "guestlist_connector_auth_failures_total{reason=\"basic\"}"
        )
        .await
            >= 6
    );
    assert!(
        metric(
            &s,
            "guestlist_connector_auth_failures_total{reason=\"throttled\"}"
        )
        .await
            >= 6
    );
    // After the block, a success clears the record: the next failure is a plain 401.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = check_status(&attacker, &base, PASS).await;
        if r.status() == 200 {
            break;
        }
        assert_eq!(r.status(), 429);
        assert!(Instant::now() < deadline, "the block ends");
        let after: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        tokio::time::sleep(Duration::from_secs(after.min(4))).await;
    }
    assert_eq!(check_status(&attacker, &base, "wrong").await.status(), 401);
    s.shutdown().await;
}

/// The `guestlist_requests` gauges come from memory and follow approvals, denials, expiry
/// and re-requests, and are right again after the database is reopened (compared with a
/// `GROUP BY` of the table).
#[tokio::test]
async fn status_gauges_follow_every_write_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    let policy = Policy {
        expire_after_days: Some(7),
        expired: ExpiredBehaviour::AllowReRequest,
        ..Policy::default()
    };
    let p2 = policy.clone();
    let s = start(&db, move |c| c.policy = p2).await;
    let store = s.state.store.clone();
    let now = time::OffsetDateTime::now_utc();
    let w = time::Duration::seconds(120);
    let actor = Actor::policy("test");
    let c = |n: u32| Claims::from_json(claims(n)).unwrap();
    for n in 0..10 {
        store
            .request_approval(&c(n), &policy, now, w)
            .await
            .unwrap();
    }
    let ids: Vec<_> = store
        .list(None, None, None, 100)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|r| r.id)
        .collect();
    for (i, id) in ids.iter().enumerate().take(5) {
        let d = if i % 2 == 0 {
            Decision::Approve {
                directory_object_id: format!("o{i}"),
                how: ProvisionedBy::UserCreated,
            }
        } else {
            Decision::Deny {
                reason: "no".into(),
            }
        };
        store
            .decide(*id, &d, &actor, None, None, now)
            .await
            .unwrap();
    }
    // Two requests 8 days old, expired by check-status over HTTP; one requested again.
    let old = now - time::Duration::days(8);
    for n in [20, 21] {
        store
            .request_approval(&c(n), &policy, old, w)
            .await
            .unwrap();
        let r = reqwest::Client::new()
            .post(format!("{}/connectors/check-approval-status", s.base_url()))
            .basic_auth(USER, Some(PASS))
            .json(&claims(n))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    store
        .request_approval(&c(21), &policy, now, w)
        .await
        .unwrap();
    let expect = |table: Vec<(String, u64)>| {
        let mut m = std::collections::BTreeMap::new();
        for (k, v) in table {
            m.insert(k, v);
        }
        m
    };
    let table = expect(store.counts().await.unwrap());
    assert_eq!(table.get("pending"), Some(&6), "{table:?}");
    assert_eq!(table.get("approved"), Some(&3));
    assert_eq!(table.get("denied"), Some(&2));
    assert_eq!(table.get("expired"), Some(&1));
    for (status, n) in &table {
        let series = format!("guestlist_requests{{status=\"{status}\"}}");
        assert_eq!(metric(&s, &series).await, *n, "{series}");
    }
    drop(store);
    s.shutdown().await;
    let s = start(&db, |_| {}).await;
    for (status, n) in &table {
        let series = format!("guestlist_requests{{status=\"{status}\"}}");
        assert_eq!(metric(&s, &series).await, *n, "{series} after reopening");
    }
    s.shutdown().await;
}

// ---- certificates --------------------------------------------------------------------------

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
    pem: String,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name
        .push(rcgen::DnType::CommonName, name.to_owned());
    let cert = p.self_signed(&key).unwrap();
    Ca {
        pem: cert.pem(),
        cert,
        key,
    }
}

struct Leaf {
    cert_pem: String,
    key_pem: String,
    der: Vec<u8>,
}

fn leaf(ca: Option<&Ca>, names: &[&str], client: bool, expired: bool) -> Leaf {
    let key = KeyPair::generate().unwrap();
    let mut p =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    let now = time::OffsetDateTime::now_utc();
    if expired {
        p.not_before = now - time::Duration::days(30);
        p.not_after = now - time::Duration::days(1);
    } else {
        p.not_before = now - time::Duration::days(1);
        p.not_after = now + time::Duration::days(30);
    }
    p.extended_key_usages = vec![if client {
        ExtendedKeyUsagePurpose::ClientAuth
    } else {
        ExtendedKeyUsagePurpose::ServerAuth
    }];
    let cert = match ca {
        Some(ca) => p.signed_by(&key, &ca.cert, &ca.key).unwrap(),
        None => p.self_signed(&key).unwrap(),
    };
    Leaf {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        der: cert.der().to_vec(),
    }
}

fn write_atomic(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn tls_client(ca: &Ca, identity: Option<&Leaf>) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .tls_backend_rustls()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.pem.as_bytes()).unwrap()])
        .tls_info(true)
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5));
    if let Some(id) = identity {
        b = b.identity(
            reqwest::Identity::from_pem(format!("{}{}", id.cert_pem, id.key_pem).as_bytes())
                .unwrap(),
        );
    }
    b.build().unwrap()
}

fn peer_certificate(r: &reqwest::Response) -> Vec<u8> {
    r.extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|t| t.peer_certificate())
        .unwrap()
        .to_vec()
}

/// HTTPS served directly; replacing the certificate files is picked up without a restart, and
/// a new connection sees the new certificate.
#[tokio::test]
async fn https_reloads_a_replaced_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let server_ca = ca("server CA");
    let first = leaf(Some(&server_ca), &["localhost", "127.0.0.1"], false, false);
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    write_atomic(&cert_file, &first.cert_pem);
    write_atomic(&key_file, &first.key_pem);
    let (cf, kf) = (cert_file.clone(), key_file.clone());
    let s = start(&dir.path().join("g.db"), move |c| {
        c.tls.cert_file = Some(cf);
        c.tls.key_file = Some(kf);
        c.tls.reload_interval_seconds = 1;
    })
    .await;
    assert!(s.base_url().starts_with("https://127.0.0.1:"));
    let c = tls_client(&server_ca, None);
    let r = c
        .get(format!("{}/healthz", s.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(peer_certificate(&r), first.der);
    // Plain HTTP on the TLS port gets no answer.
    assert!(
        reqwest::get(format!("http://{}/healthz", s.addr()))
            .await
            .is_err()
    );
    let second = leaf(Some(&server_ca), &["localhost", "127.0.0.1"], false, false);
    write_atomic(&key_file, &second.key_pem);
    write_atomic(&cert_file, &second.cert_pem);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = tls_client(&server_ca, None)
            .get(format!("{}/healthz", s.base_url()))
            .send()
            .await
            .unwrap();
        if peer_certificate(&r) == second.der {
            break;
        }
        assert!(Instant::now() < deadline, "the new certificate is served");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    s.shutdown().await;
}

/// `connector.auth = "certificate"` over our own TLS: a certificate from the configured CA is
/// accepted; an expired one, one from another CA, or none are refused (401); a self-signed one
/// whose thumbprint is listed is accepted. Approver/ops routes still connect without one.
#[tokio::test]
async fn client_certificates_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let server_ca = ca("server CA");
    let server = leaf(Some(&server_ca), &["localhost", "127.0.0.1"], false, false);
    let client_ca = ca("Entra connector CA");
    let other_ca = ca("someone else");
    let valid = leaf(Some(&client_ca), &["entra-connector"], true, false);
    let expired = leaf(Some(&client_ca), &["entra-connector"], true, true);
    let foreign = leaf(Some(&other_ca), &["entra-connector"], true, false);
    let pinned = leaf(None, &["pinned-connector"], true, false);
    use sha2::Digest as _;
    let thumbprint = hex::encode_upper(sha2::Sha256::digest(&pinned.der))
        .as_bytes()
        .chunks(2)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(":");
    for (name, text) in [
        ("cert.pem", &server.cert_pem),
        ("key.pem", &server.key_pem),
        ("client-ca.pem", &client_ca.pem),
    ] {
        write_atomic(&dir.path().join(name), text);
    }
    let d = dir.path().to_path_buf();
    let s = start(&dir.path().join("g.db"), move |c| {
        c.tls.cert_file = Some(d.join("cert.pem"));
        c.tls.key_file = Some(d.join("key.pem"));
        c.connector = ConnectorAuth {
            auth: ConnectorAuthMode::Certificate,
            client_ca_file: Some(d.join("client-ca.pem")),
            client_cert_sha256: vec![thumbprint],
            ..ConnectorAuth::default()
        };
    })
    .await;
    let call = |id: Option<&Leaf>| {
        let c = tls_client(&server_ca, id);
        let url = format!("{}/connectors/check-approval-status", s.base_url());
        async move {
            let r = c.post(url).json(&claims(1)).send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.text().await.unwrap())
        }
    };
    assert_eq!(call(Some(&valid)).await.0, 200, "valid");
    let (st, body) = call(Some(&expired)).await;
    assert_eq!(st, 401, "expired: {body}");
    assert!(body.contains("expired"), "{body}");
    let (st, body) = call(Some(&foreign)).await;
    assert_eq!(st, 401, "another CA: {body}");
    let (st, body) = call(None).await;
    assert_eq!(st, 401, "none: {body}");
    assert_eq!(call(Some(&pinned)).await.0, 200, "thumbprint match");
    // Basic is not accepted in certificate mode.
    let r = tls_client(&server_ca, None)
        .post(format!("{}/connectors/check-approval-status", s.base_url()))
        .basic_auth(USER, Some(PASS))
        .json(&claims(1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Callers without a certificate still reach the rest of the API.
    let r = tls_client(&server_ca, None)
        .get(format!("{}/healthz", s.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        metric(
            &s,
            "guestlist_connector_auth_failures_total{reason=\"certificate\"}"
        )
        .await
            >= 3
    );
    s.shutdown().await;
}

/// Behind a TLS-terminating proxy: the forwarded certificate (Azure's `X-ARR-ClientCert`,
/// nginx's `X-SSL-Client-Cert`, Envoy's `X-Forwarded-Client-Cert`) is believed only from an
/// address in `trusted_proxies`.
#[tokio::test]
async fn forwarded_client_certificates_only_from_trusted_proxies() {
    use sha2::Digest as _;
    let dir = tempfile::tempdir().unwrap();
    let client_ca = ca("Entra connector CA");
    let valid = leaf(Some(&client_ca), &["entra-connector"], true, false);
    let foreign = leaf(Some(&ca("someone else")), &["entra-connector"], true, false);
    write_atomic(&dir.path().join("client-ca.pem"), &client_ca.pem);
    let d = dir.path().to_path_buf();
    let s = start(&dir.path().join("g.db"), move |c| {
        c.trusted_proxies = vec!["127.0.0.2/32".into()];
        c.connector = ConnectorAuth {
            auth: ConnectorAuthMode::Certificate,
            client_ca_file: Some(d.join("client-ca.pem")),
            ..ConnectorAuth::default()
        };
    })
    .await;
    let arr = base64::engine::general_purpose::STANDARD.encode(&valid.der);
    let escaped = |pem: &str| {
        percent_encoding::utf8_percent_encode(pem, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    let xfcc = format!(
        "By=spiffe://proxy;Hash={};Cert=\"{}\";Subject=\"CN=entra-connector\"",
        hex::encode(sha2::Sha256::digest(&valid.der)),
        escaped(&valid.cert_pem)
    );
    let call = |from: IpAddr, header: &'static str, value: String| {
        let c = client_from(from);
        let url = format!("{}/connectors/check-approval-status", s.base_url());
        async move {
            c.post(url)
                .header(header, value)
                .json(&claims(1))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    // From an untrusted address: ignored, so refused.
    assert_eq!(call(LOCAL, "x-arr-clientcert", arr.clone()).await, 401);
    assert_eq!(
        call(LOCAL, "x-ssl-client-cert", escaped(&valid.cert_pem)).await,
        401
    );
    // From the proxy: accepted, in each format.
    assert_eq!(call(OTHER, "x-arr-clientcert", arr).await, 200);
    assert_eq!(
        call(OTHER, "x-ssl-client-cert", escaped(&valid.cert_pem)).await,
        200
    );
    assert_eq!(call(OTHER, "x-forwarded-client-cert", xfcc).await, 200);
    // The proxy forwarding a certificate of another CA: refused.
    assert_eq!(
        call(OTHER, "x-ssl-client-cert", escaped(&foreign.cert_pem)).await,
        401
    );
    s.shutdown().await;

    // With `forwarded_cert_header` set, the other headers are not read even from the proxy.
    let d = dir.path().to_path_buf();
    let s = start(&dir.path().join("g2.db"), move |c| {
        c.trusted_proxies = vec!["127.0.0.2".into()];
        c.connector = ConnectorAuth {
            auth: ConnectorAuthMode::Certificate,
            client_ca_file: Some(d.join("client-ca.pem")),
            forwarded_cert_header: Some(ForwardedCertHeader::SslClientCert),
            ..ConnectorAuth::default()
        };
    })
    .await;
    let url = format!("{}/connectors/check-approval-status", s.base_url());
    let proxy = client_from(OTHER);
    let arr = base64::engine::general_purpose::STANDARD.encode(&valid.der);
    let r = proxy
        .post(&url)
        .header("x-arr-clientcert", arr)
        .json(&claims(1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "X-ARR-ClientCert is not read");
    let r = proxy
        .post(&url)
        .header("x-ssl-client-cert", escaped(&valid.cert_pem))
        .json(&claims(1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    s.shutdown().await;
}
