//! What the benches that run a real `guestlist-server` process share (`bench-audit`,
//! `bench-hostile`, `bench-reviewer`): the child process killed on drop, its memory from
//! `/proc`, its config and start-up wait, and an OpenID issuer on 127.0.0.1 whose RS256 tokens
//! the server accepts (discovery document and JWKS as Microsoft Entra publishes them; the
//! approver API's bearer tokens, CONTRACTS.md §4–§5).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use axum::Json;
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use guestlist_devtenant::defaults;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};

/// A server child process, killed (and reaped) when dropped.
pub struct ServerProcess(pub Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `field` (e.g. `VmRSS:`, `VmHWM:`) of `/proc/<pid>/status`, in kB; 0 when unreadable.
pub fn status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or_default()
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// A free TCP port on 127.0.0.1 (bound, then released for the server to take).
///
/// Errors: binding or reading the local address.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Writes `<dir>/<name>.toml`: listen on `127.0.0.1:<port>`, the SQLite database `db`, approvers'
/// tokens from `issuer` for devtenant's API (its client id and App ID URI as audiences).
/// Returns the file's path.
///
/// Errors: writing the file.
pub fn write_server_config(
    dir: &Path,
    name: &str,
    port: u16,
    db: &Path,
    issuer: &str,
) -> anyhow::Result<PathBuf> {
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndatabase = {:?}\n\n[approver_auth]\nissuer = {issuer:?}\naudiences = [{:?}, {:?}]\n",
            db.display().to_string(),
            defaults::API_CLIENT_ID,
            defaults::API_APP_ID_URI
        ),
    )?;
    Ok(config)
}

/// Waits (10 s at most, every 25 ms) until the server on `127.0.0.1:<port>` answers
/// `GET /healthz`; then the server and its base URL.
///
/// Errors: not answering in time (naming `log`, where its output went, if it was kept).
pub async fn wait_until_up(
    server: ServerProcess,
    port: u16,
    log: Option<&str>,
) -> anyhow::Result<(ServerProcess, String)> {
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..400 {
        if reqwest::get(format!("{base}/healthz")).await.is_ok() {
            return Ok((server, base));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    match log {
        Some(log) => bail!("guestlist-server did not start (see {log})"),
        None => bail!("guestlist-server did not start"),
    }
}

/// Spawns `cmd` (which starts the server binary `bin` listening on `127.0.0.1:<port>`) with its
/// stdout discarded and its stderr in `<dir>/<name>.log`, then [`wait_until_up`].
///
/// Errors: creating the log, spawning, or the server not answering in time.
pub async fn start_logged(
    mut cmd: Command,
    bin: &Path,
    dir: &Path,
    name: &str,
    port: u16,
) -> anyhow::Result<(ServerProcess, String)> {
    let log_name = format!("{name}.log");
    let log = std::fs::File::create(dir.join(&log_name))?;
    let child = cmd
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    wait_until_up(ServerProcess(child), port, Some(&log_name)).await
}

/// An OpenID issuer on 127.0.0.1 at `http://<addr>/<name>/v2.0`: its discovery document and a
/// JWKS with one RSA key (`kid`), counting the JWKS fetches.
pub struct Issuer {
    /// The issuer URL (the tokens' `iss`, the server's `approver_auth.issuer`).
    pub url: String,
    /// The `kid` of the key in the JWKS.
    pub kid: String,
    /// How many times the JWKS was fetched.
    pub fetches: Arc<AtomicU64>,
    key: EncodingKey,
}

/// Who a token of [`Issuer::token`] is for.
pub struct Subject<'a> {
    /// `oid`.
    pub oid: &'a str,
    /// `sub`.
    pub sub: &'a str,
    /// `name`.
    pub name: &'a str,
    /// `preferred_username`.
    pub username: &'a str,
    /// The one app role in `roles`.
    pub role: &'a str,
}

impl Issuer {
    /// Starts the issuer with a fresh 2,048-bit key named `kid`; the JWKS answers after
    /// `jwks_delay` (a real issuer is a network round trip away).
    ///
    /// Errors: key generation or binding the listener.
    pub async fn start(name: &str, kid: &str, jwks_delay: Duration) -> anyhow::Result<Issuer> {
        let private = rsa::PrivateKey::new(&mut rand::rngs::SysRng, 2048)?;
        let pem = private.to_pkcs1_pem(rsa::pkcs1::LineEnding::LF)?;
        let key = EncodingKey::from_rsa_pem(pem.as_bytes())?;
        let jwks = json!({"keys": [{
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
            "n": URL_SAFE_NO_PAD.encode(private.n_bytes()),
            "e": URL_SAFE_NO_PAD.encode(private.e_bytes()),
        }]});
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let url = format!("http://{addr}/{name}/v2.0");
        let discovery = json!({"issuer": url, "jwks_uri": format!("http://{addr}/{name}/keys")});
        let fetches = Arc::new(AtomicU64::new(0));
        let counter = fetches.clone();
        let app = axum::Router::new()
            .route(
                &format!("/{name}/v2.0/.well-known/openid-configuration"),
                get(move || {
                    let d = discovery.clone();
                    async move { Json(d) }
                }),
            )
            .route(
                &format!("/{name}/keys"),
                get(move || {
                    counter.fetch_add(1, Ordering::Relaxed);
                    let j = jwks.clone();
                    async move {
                        if !jwks_delay.is_zero() {
                            tokio::time::sleep(jwks_delay).await;
                        }
                        Json(j)
                    }
                }),
            );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Issuer {
            url,
            kid: kid.to_owned(),
            fetches,
            key,
        })
    }

    /// A token for devtenant's API (`aud` its App ID URI, `scp` its scope, `azp` the desktop
    /// client, `tid` the tenant) for `who`, valid for two hours from a minute ago, its header
    /// naming `kid` (the issuer's own, or another to make the server fetch the JWKS again).
    ///
    /// Errors: signing.
    pub fn token(&self, who: &Subject<'_>, kid: &str) -> anyhow::Result<String> {
        let t = unix_now();
        let claims: Value = json!({
            "iss": self.url, "aud": defaults::API_APP_ID_URI, "exp": t + 7200, "nbf": t - 60,
            "iat": t - 60, "oid": who.oid, "sub": who.sub, "name": who.name,
            "preferred_username": who.username,
            "roles": [who.role], "scp": defaults::API_SCOPE,
            "azp": defaults::DESKTOP_CLIENT_ID, "tid": defaults::TENANT_ID, "ver": "2.0",
        });
        let mut h = Header::new(Algorithm::RS256);
        h.kid = Some(kid.to_owned());
        Ok(jsonwebtoken::encode(&h, &claims, &self.key)?)
    }
}
