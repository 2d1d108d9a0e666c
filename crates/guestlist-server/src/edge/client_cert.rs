//! Client certificates of the API connectors (issue 10 §5, CONTRACTS.md §1: Entra's API
//! connectors authenticate with HTTP Basic or an HTTPS client certificate).
//!
//! A certificate is accepted when it is within its validity dates and either its SHA-256
//! thumbprint is listed in `connector.client_cert_sha256` or it chains to a CA of
//! `connector.client_ca_file` (rustls' `WebPkiClientVerifier`: signatures, dates of the whole
//! chain, `clientAuth` extended key usage when present). The TLS handshake itself asks for a
//! certificate but lets the application decide ([`AppDecidesVerifier`]), so the same check
//! serves certificates from our own TLS listener and certificates forwarded by a
//! TLS-terminating proxy ([`forwarded_chain`]), which are read only from `trusted_proxies`.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use axum::http::HeaderMap;
use base64::Engine as _;
use ipnet::IpNet;
use sha2::{Digest as _, Sha256};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, UnixTime};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::server::danger::{ClientCertVerified, ClientCertVerifier};

/// The certificate chain the TLS client presented (end entity first), as a request extension
/// of connections served over TLS.
#[derive(Debug, Clone)]
pub struct PeerCertificates(pub Arc<Vec<CertificateDer<'static>>>);

/// The `trusted_proxies` list: addresses and CIDR blocks whose forwarded client certificate
/// and `X-Forwarded-For` are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses entries such as `10.0.0.5`, `10.0.0.0/8`, `::1`, `fd00::/8`.
    ///
    /// Errors: names the entry that is neither an address nor a CIDR block.
    pub fn parse(entries: &[String]) -> Result<TrustedProxies, String> {
        entries
            .iter()
            .map(|e| {
                let t = e.trim();
                t.parse::<IpNet>()
                    .or_else(|_| t.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        format!("trusted_proxies: {t:?} is not an IP address or CIDR block")
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies)
    }

    /// Whether `ip` (IPv4-mapped IPv6 counts as IPv4) is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The caller's address: the TCP `peer`, or, when `peer` is a trusted proxy, the right-most
    /// `X-Forwarded-For` address that is not one (the last hop our own proxies saw).
    pub fn client_addr(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.contains(peer) {
            return peer;
        }
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().parse::<IpAddr>().ok())
            .collect::<Vec<_>>();
        forwarded
            .into_iter()
            .rev()
            .find(|a| !self.contains(*a))
            .unwrap_or(peer)
    }
}

/// The `connector.client_ca_file` and `connector.client_cert_sha256` checks.
#[derive(Clone, Default)]
pub struct ClientCertPolicy {
    ca: Option<Arc<dyn ClientCertVerifier>>,
    thumbprints: Vec<[u8; 32]>,
}

impl std::fmt::Debug for ClientCertPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCertPolicy")
            .field("ca", &self.ca.is_some())
            .field("thumbprints", &self.thumbprints.len())
            .finish()
    }
}

/// Parses a SHA-256 thumbprint: 64 hex digits, upper or lower case, with or without `:`
/// separators (as `openssl x509 -fingerprint -sha256` prints it).
///
/// Errors: the text says what is wrong, without the value.
pub fn parse_thumbprint(s: &str) -> Result<[u8; 32], String> {
    let hexdigits: String = s
        .chars()
        .filter(|c| *c != ':' && !c.is_whitespace())
        .collect();
    let bytes = hex::decode(&hexdigits)
        .map_err(|_| "connector.client_cert_sha256: an entry is not hexadecimal".to_owned())?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
        "connector.client_cert_sha256: an entry is not 32 bytes (64 hex digits)".to_owned()
    })
}

impl ClientCertPolicy {
    /// Loads the CA bundle (PEM, any number of certificates) and parses the thumbprints.
    ///
    /// Errors: the file cannot be read, holds no certificate, or a thumbprint is malformed.
    pub fn load(ca_file: Option<&Path>, thumbprints: &[String]) -> Result<Self, String> {
        let ca = match ca_file {
            None => None,
            Some(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| format!("connector.client_ca_file {}: {e}", path.display()))?;
                if certs.is_empty() {
                    return Err(format!(
                        "connector.client_ca_file {}: no certificate in the file",
                        path.display()
                    ));
                }
                let mut roots = rustls::RootCertStore::empty();
                for c in certs {
                    roots
                        .add(c)
                        .map_err(|e| format!("connector.client_ca_file {}: {e}", path.display()))?;
                }
                let verifier = WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    Arc::new(rustls::crypto::ring::default_provider()),
                )
                .build()
                .map_err(|e| format!("connector.client_ca_file {}: {e}", path.display()))?;
                Some(verifier)
            }
        };
        let thumbprints = thumbprints
            .iter()
            .map(|t| parse_thumbprint(t))
            .collect::<Result<_, _>>()?;
        Ok(ClientCertPolicy { ca, thumbprints })
    }

    /// Whether anything is configured to accept a certificate.
    pub fn is_configured(&self) -> bool {
        self.ca.is_some() || !self.thumbprints.is_empty()
    }

    /// Checks `chain` (end entity first) at `now`.
    ///
    /// Errors: a short reason (`expired`, `not trusted`, …) for the log and the 401 body.
    pub fn verify(&self, chain: &[CertificateDer<'_>], now: UnixTime) -> Result<(), String> {
        let Some(ee) = chain.first() else {
            return Err("no client certificate".into());
        };
        let (_, parsed) = x509_parser::parse_x509_certificate(ee.as_ref())
            .map_err(|_| "the client certificate is not valid DER".to_owned())?;
        let now_secs = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        let validity = parsed.validity();
        if now_secs < validity.not_before.timestamp() {
            return Err("the client certificate is not yet valid".into());
        }
        if now_secs > validity.not_after.timestamp() {
            return Err("the client certificate has expired".into());
        }
        let thumbprint: [u8; 32] = Sha256::digest(ee.as_ref()).into();
        if self
            .thumbprints
            .iter()
            .any(|t| subtle::ConstantTimeEq::ct_eq(&t[..], &thumbprint[..]).into())
        {
            return Ok(());
        }
        match &self.ca {
            Some(ca) => ca
                .verify_client_cert(ee, chain.get(1..).unwrap_or_default(), now)
                .map(|_| ())
                .map_err(|e| format!("the client certificate is not trusted: {e}")),
            None => Err("the client certificate's thumbprint is not listed".into()),
        }
    }
}

/// A header in which a TLS-terminating proxy forwards the client certificate
/// (`connector.forwarded_cert_header`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ForwardedCertHeader {
    /// `X-ARR-ClientCert`: Azure App Service, base64 DER.
    #[serde(rename = "x-arr-clientcert")]
    ArrClientCert,
    /// `X-Forwarded-Client-Cert`: Envoy, `Cert="<URL-encoded PEM>"` (and `Chain`).
    #[serde(rename = "x-forwarded-client-cert")]
    ForwardedClientCert,
    /// `X-SSL-Client-Cert`: nginx `$ssl_client_escaped_cert`, URL-encoded PEM.
    #[serde(rename = "x-ssl-client-cert")]
    SslClientCert,
}

/// The client certificate a TLS-terminating proxy forwarded, read from `only` or, when `None`,
/// from the first header present of: `X-ARR-ClientCert` (Azure App Service: base64 DER),
/// `X-Forwarded-Client-Cert` (Envoy: the `Cert="…"` URL-encoded PEM of the last element, with
/// its `Chain` when given), `X-SSL-Client-Cert` (nginx `$ssl_client_escaped_cert`: URL-encoded
/// PEM). Call it only for a peer in `trusted_proxies`.
///
/// Errors: a header is present but cannot be decoded.
pub fn forwarded_chain(
    headers: &HeaderMap,
    only: Option<ForwardedCertHeader>,
) -> Result<Option<Vec<CertificateDer<'static>>>, String> {
    let read = |h: ForwardedCertHeader| only.is_none_or(|o| o == h);
    if read(ForwardedCertHeader::ArrClientCert)
        && let Some(v) = headers.get("x-arr-clientcert")
    {
        let der = base64::engine::general_purpose::STANDARD
            .decode(v.as_bytes().trim_ascii())
            .map_err(|_| "X-ARR-ClientCert is not base64".to_owned())?;
        return Ok(Some(vec![CertificateDer::from(der)]));
    }
    if read(ForwardedCertHeader::ForwardedClientCert)
        && let Some(v) = headers.get("x-forwarded-client-cert")
    {
        let v = v
            .to_str()
            .map_err(|_| "X-Forwarded-Client-Cert is not ASCII".to_owned())?;
        let last = split_unquoted(v, ',')
            .into_iter()
            .last()
            .unwrap_or_default();
        let mut cert = None;
        let mut chain = None;
        for pair in split_unquoted(last, ';') {
            let Some((k, val)) = pair.split_once('=') else {
                continue;
            };
            let val = val.trim().trim_matches('"');
            if k.trim().eq_ignore_ascii_case("cert") {
                cert = Some(val);
            } else if k.trim().eq_ignore_ascii_case("chain") {
                chain = Some(val);
            }
        }
        let Some(cert) = cert else {
            return Ok(None);
        };
        let mut out = pem_certs(&url_decode(cert))?;
        if let Some(chain) = chain {
            // The chain repeats the leaf first.
            for c in pem_certs(&url_decode(chain))? {
                if !out.contains(&c) {
                    out.push(c);
                }
            }
        }
        return Ok(Some(out));
    }
    if read(ForwardedCertHeader::SslClientCert)
        && let Some(v) = headers.get("x-ssl-client-cert")
    {
        let v = v
            .to_str()
            .map_err(|_| "X-SSL-Client-Cert is not ASCII".to_owned())?;
        if v.is_empty() {
            return Ok(None);
        }
        return pem_certs(&url_decode(v)).map(Some);
    }
    Ok(None)
}

fn url_decode(s: &str) -> Vec<u8> {
    percent_encoding::percent_decode_str(s).collect()
}

fn pem_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| "the forwarded client certificate is not PEM".to_owned())?;
    if certs.is_empty() {
        return Err("the forwarded client certificate header holds no certificate".into());
    }
    Ok(certs)
}

/// Splits on `sep` outside double quotes (XFCC values quote `,` and `;`).
fn split_unquoted(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            out.push(&s[start..i]);
            start = i + c.len_utf8();
        }
    }
    out.push(&s[start..]);
    out
}

/// The TLS-level client-certificate check of our listener: asks for a certificate (optional),
/// checks the handshake signature made with its key, and leaves the trust decision to
/// [`ClientCertPolicy::verify`] in the connector handlers, so that Basic callers and
/// approvers (who present none) still connect.
#[derive(Debug)]
pub struct AppDecidesVerifier {
    provider: Arc<rustls::crypto::CryptoProvider>,
    hints: Vec<rustls::DistinguishedName>,
}

impl AppDecidesVerifier {
    /// A verifier hinting at the subjects of `ca_file`'s certificates (none without one).
    pub fn new(provider: Arc<rustls::crypto::CryptoProvider>, ca_file: Option<&Path>) -> Self {
        let hints = ca_file
            .and_then(|p| CertificateDer::pem_file_iter(p).ok())
            .map(|it| {
                it.filter_map(Result::ok)
                    .filter_map(|c| {
                        x509_parser::parse_x509_certificate(c.as_ref())
                            .ok()
                            .map(|(_, x)| {
                                rustls::DistinguishedName::from(x.subject().as_raw().to_vec())
                            })
                    })
                    .collect()
            })
            .unwrap_or_default();
        AppDecidesVerifier { provider, hints }
    }
}

impl ClientCertVerifier for AppDecidesVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
