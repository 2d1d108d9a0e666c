//! HTTPS served directly (issue 10 §5): rustls with TLS 1.2 and 1.3 only, the certificate
//! chain and key read from PEM files (`tls.cert_file`, `tls.key_file`) and read again on
//! `SIGHUP` or when either file's modification time changes (checked every
//! `tls.reload_interval_seconds`). A reload swaps the configuration used for new connections;
//! the listener and open connections are untouched. A reload that fails (half-written file,
//! key not matching) is logged and the previous certificate stays in use.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::danger::ClientCertVerifier;

/// The `[tls]` section. With neither file set the public listener speaks plain HTTP (put a
/// TLS-terminating proxy in front).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsFiles {
    /// PEM file with the server certificate, then its intermediates.
    pub cert_file: Option<PathBuf>,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<PathBuf>,
    /// Seconds between checks of the files' modification times. Default 5.
    pub reload_interval_seconds: u64,
}

impl Default for TlsFiles {
    fn default() -> Self {
        TlsFiles {
            cert_file: None,
            key_file: None,
            reload_interval_seconds: 5,
        }
    }
}

impl TlsFiles {
    /// Both files, or `None` for plain HTTP.
    ///
    /// Errors: only one of the two is set.
    pub fn files(&self) -> Result<Option<(&Path, &Path)>, String> {
        match (&self.cert_file, &self.key_file) {
            (Some(c), Some(k)) => Ok(Some((c, k))),
            (None, None) => Ok(None),
            _ => Err("tls.cert_file and tls.key_file go together: set both or neither".into()),
        }
    }
}

/// The rustls configuration in force, rebuilt from the files on change.
pub struct TlsReloader {
    cert_file: PathBuf,
    key_file: PathBuf,
    client_auth: Option<Arc<dyn ClientCertVerifier>>,
    current: RwLock<Arc<rustls::ServerConfig>>,
    stamps: std::sync::Mutex<(Option<SystemTime>, Option<SystemTime>)>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn modified(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

impl TlsReloader {
    /// Loads the files once. `client_auth` asks TLS clients for a certificate (the connector's
    /// certificate authentication); `None` asks for none.
    ///
    /// Errors: unreadable files, no certificate, no key, or a key that does not match.
    pub fn load(
        cert_file: &Path,
        key_file: &Path,
        client_auth: Option<Arc<dyn ClientCertVerifier>>,
    ) -> Result<TlsReloader, String> {
        let stamps = (modified(cert_file), modified(key_file));
        let config = build(cert_file, key_file, client_auth.clone())?;
        Ok(TlsReloader {
            cert_file: cert_file.to_path_buf(),
            key_file: key_file.to_path_buf(),
            client_auth,
            current: RwLock::new(Arc::new(config)),
            stamps: std::sync::Mutex::new(stamps),
        })
    }

    /// An acceptor with the configuration in force.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(
            self.current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        )
    }

    /// Reads the files again and swaps the configuration when they load.
    ///
    /// Errors: as [`TlsReloader::load`]; the previous configuration stays.
    pub fn reload(&self) -> Result<(), String> {
        let stamps = (modified(&self.cert_file), modified(&self.key_file));
        let config = build(&self.cert_file, &self.key_file, self.client_auth.clone())?;
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(config);
        *self
            .stamps
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = stamps;
        Ok(())
    }

    fn changed(&self) -> bool {
        let now = (modified(&self.cert_file), modified(&self.key_file));
        *self
            .stamps
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            != now
    }

    /// Watches for `SIGHUP` and file changes every `interval` until `stop` turns true.
    pub fn watch(self: Arc<Self>, interval: Duration, mut stop: watch::Receiver<bool>) {
        tokio::spawn(async move {
            #[cfg(unix)]
            let mut hup =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
            let mut tick = tokio::time::interval(interval.max(Duration::from_millis(100)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                #[cfg(unix)]
                let hangup = async {
                    match hup.as_mut() {
                        Some(h) => {
                            h.recv().await;
                        }
                        None => std::future::pending::<()>().await,
                    }
                };
                #[cfg(not(unix))]
                let hangup = std::future::pending::<()>();
                let why = tokio::select! {
                    _ = stop.wait_for(|s| *s) => return,
                    _ = hangup => "SIGHUP",
                    _ = tick.tick() => {
                        if !self.changed() {
                            continue;
                        }
                        "file change"
                    }
                };
                match self.reload() {
                    Ok(()) => tracing::info!(
                        cert = %self.cert_file.display(),
                        "TLS certificate reloaded ({why})"
                    ),
                    Err(e) => tracing::error!("TLS certificate not reloaded ({why}): {e}"),
                }
            }
        });
    }
}

fn build(
    cert_file: &Path,
    key_file: &Path,
    client_auth: Option<Arc<dyn ClientCertVerifier>>,
) -> Result<rustls::ServerConfig, String> {
    let certs = CertificateDer::pem_file_iter(cert_file)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("tls.cert_file {}: {e}", cert_file.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "tls.cert_file {}: no certificate in the file",
            cert_file.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|e| format!("tls.key_file {}: {e}", key_file.display()))?;
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS: {e}"))?;
    let builder = match client_auth {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("tls.cert_file / tls.key_file: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The TLS-level client verifier for `connector`'s settings: asks for a certificate when
/// `connector.auth` accepts one ([`super::client_cert::AppDecidesVerifier`]).
pub fn client_verifier(
    connector: &crate::config::ConnectorAuth,
) -> Option<Arc<dyn ClientCertVerifier>> {
    if connector.auth.accepts_certificate() {
        Some(Arc::new(super::client_cert::AppDecidesVerifier::new(
            provider(),
            connector.client_ca_file.as_deref(),
        )))
    } else {
        None
    }
}
