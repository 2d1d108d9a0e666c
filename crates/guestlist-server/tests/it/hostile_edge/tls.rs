//! TLS at the edge: certificate rotation without a restart, client certificates checked
//! against the configured CA or thumbprints, and certificates forwarded by a TLS-terminating
//! proxy believed only from trusted proxies. Certificates are made at test time with rcgen.

use std::time::Instant;

use base64::Engine as _;
use guestlist_server::config::ConnectorAuthMode;
use guestlist_server::edge::client_cert::ForwardedCertHeader;
use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair};

use super::*;

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
