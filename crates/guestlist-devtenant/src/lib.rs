//! # guestlist-devtenant
//!
//! **devtenant** is a local, faithful emulation of the parts of a Microsoft Entra ID tenant that
//! Guestlist talks to (like Azurite for Azure Storage): the Microsoft identity platform v2.0
//! sign-in endpoints ([`oidc`]), the Microsoft Graph v1.0 subset for users, invitations, group
//! members, app role assignments, sponsors and `$batch` ([`graph`]), and a self-service sign-up *user flow* that calls the approval API's
//! connectors exactly as Entra does ([`userflow`]); with `tenant_kind = "external"` it plays an
//! external tenant whose user flow calls custom authentication extensions and creates customer
//! accounts ([`external`]). See `docs/CONTRACTS.md` and this
//! crate's README for the deliberate differences from the real services.
//!
//! This crate owns the emulator only. It must not depend on any other Guestlist crate (in
//! particular not on `guestlist-core`): it is the independent counterpart the other crates are
//! tested against.
//!
//! ```no_run
//! # async fn demo() -> Result<(), guestlist_devtenant::DevTenantError> {
//! use guestlist_devtenant::{DevTenant, DevTenantConfig, defaults};
//! let tenant = DevTenant::start(DevTenantConfig::default()).await?;
//! let token = tenant.mint_user_token(defaults::ADA_UPN, defaults::DESKTOP_CLIENT_ID,
//!     "https://graph.microsoft.com/User.ReadWrite.All")?;
//! println!("{} {}", tenant.issuer(), tenant.graph_base());
//! # let _ = token;
//! tenant.shutdown().await;
//! # Ok(()) }
//! ```

pub mod admin;
pub mod config;
pub mod defaults;
pub mod error;
pub mod external;
pub mod graph;
pub mod keys;
pub mod net;
pub mod oidc;
pub mod schema;
pub mod state;
pub mod tokens;
pub mod userflow;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use config::{
    AppRoleConfig, ConfidentialClientConfig, DevTenantConfig, FaultConfig, GroupConfig,
    PublicClientConfig, ResourceConfig, ServicePrincipalConfig, ThrottleConfig, UserConfig,
};
pub use config::{ExternalConfig, TenantKind};
pub use error::DevTenantError;
pub use state::Shared;

/// The whole HTTP application (sign-in, Graph, admin) over shared state; tests may drive it with
/// `tower::ServiceExt::oneshot` (fault-injected connection drops then become plain 500s).
pub fn app(shared: Arc<Shared>) -> Router {
    Router::new()
        .merge(oidc::router())
        .merge(graph::router())
        .merge(admin::router())
        .merge(external::router())
        .with_state(shared)
}

/// How to start a tenant besides its configuration.
#[derive(Clone, Debug)]
pub struct StartOptions {
    /// Address to bind; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Optional JSON snapshot file (loaded when present, rewritten on every change).
    pub state_file: Option<PathBuf>,
}

impl Default for StartOptions {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            state_file: None,
        }
    }
}

/// Entry point: starts tenants.
#[derive(Debug)]
pub struct DevTenant;

impl DevTenant {
    /// Starts a tenant on `127.0.0.1:0` (a free port) with no snapshot file.
    ///
    /// # Errors
    /// [`DevTenantError`] for an invalid config, key generation or bind failure.
    pub async fn start(config: DevTenantConfig) -> Result<DevTenantHandle, DevTenantError> {
        Self::start_with(config, StartOptions::default()).await
    }

    /// Starts a tenant with explicit [`StartOptions`].
    ///
    /// # Errors
    /// [`DevTenantError`] for an invalid config, an unreadable snapshot, key generation or bind
    /// failure.
    pub async fn start_with(
        config: DevTenantConfig,
        opts: StartOptions,
    ) -> Result<DevTenantHandle, DevTenantError> {
        config.validate()?;
        let listener = tokio::net::TcpListener::bind(opts.listen).await?;
        let addr = listener.local_addr()?;
        let base_url = match &config.public_base_url {
            Some(b) => b.trim_end_matches('/').to_string(),
            None if addr.ip().is_unspecified() => format!("http://127.0.0.1:{}", addr.port()),
            None => format!("http://{addr}"),
        };
        let shared =
            Arc::new(blocking(move || Shared::new(config, base_url, opts.state_file)).await??);
        let router = app(shared.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let service = router.into_make_service_with_connect_info::<net::ConnKill>();
        let task = tokio::spawn(async move {
            let server = axum::serve(net::DevListener(listener), service).with_graceful_shutdown(
                async move {
                    let _ = rx.await;
                },
            );
            if let Err(e) = server.await {
                tracing::error!(error = %e, "devtenant server stopped");
            }
        });
        tracing::info!(issuer = %shared.issuer(), graph = %shared.graph_base(), "devtenant started");
        Ok(DevTenantHandle {
            shared,
            addr,
            shutdown: Some(tx),
            task: Some(task),
        })
    }
}

/// Runs blocking work (RSA key generation) on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, DevTenantError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| DevTenantError::Key(format!("key generation task failed: {e}")))
}

/// A running tenant. Dropping it stops the server too (without waiting).
#[derive(Debug)]
pub struct DevTenantHandle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl DevTenantHandle {
    /// Base URL, e.g. `http://127.0.0.1:40123` (no trailing slash).
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }
    /// The bound socket address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
    /// The issuer, `{base}/{tenant-id}/v2.0` (also the OIDC discovery base).
    pub fn issuer(&self) -> String {
        self.shared.issuer()
    }
    /// An external tenant's customer issuer, `https://{subdomain}.ciamlogin.com/{tid}/v2.0`
    /// (the `iss` of its custom authentication extensions' tokens); `None` for a workforce
    /// tenant. Its discovery document is [`DevTenantHandle::customer_discovery_url`].
    pub fn customer_issuer(&self) -> Option<String> {
        self.shared.customer_issuer()
    }
    /// Where the customer authority's discovery document is served locally:
    /// `{base}/{subdomain}.ciamlogin.com/{tenant-id}/v2.0/.well-known/openid-configuration`.
    pub fn customer_discovery_url(&self) -> String {
        format!(
            "{}/{}/{}/v2.0/.well-known/openid-configuration",
            self.shared.base_url,
            self.shared.customer_host(),
            self.shared.cfg.tenant_id
        )
    }
    /// The authority for MSAL-style clients: `{base}/{tenant-id}`.
    pub fn authority(&self) -> String {
        format!("{}/{}", self.shared.base_url, self.shared.cfg.tenant_id)
    }
    /// Graph's root, e.g. `http://127.0.0.1:40123/v1.0`.
    pub fn graph_base(&self) -> String {
        self.shared.graph_base()
    }
    /// The JWKS URL, `{base}/{tenant-id}/discovery/v2.0/keys`.
    pub fn jwks_uri(&self) -> String {
        format!(
            "{}/{}/discovery/v2.0/keys",
            self.shared.base_url, self.shared.cfg.tenant_id
        )
    }
    /// The configuration the tenant runs with.
    pub fn config(&self) -> &DevTenantConfig {
        &self.shared.cfg
    }
    /// The shared state (for embedding the router elsewhere or for white-box checks).
    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }
    /// A snapshot of every directory user (full Graph JSON objects, creation order).
    pub fn users(&self) -> Vec<Value> {
        self.shared
            .lock()
            .users
            .iter()
            .cloned()
            .map(Value::Object)
            .collect()
    }
    /// One user by object ID or userPrincipalName (case-insensitive).
    pub fn user(&self, id_or_upn: &str) -> Option<Value> {
        self.shared
            .lock()
            .users
            .iter()
            .find(|u| {
                ["id", "userPrincipalName"].iter().any(|k| {
                    u.get(*k)
                        .and_then(Value::as_str)
                        .is_some_and(|x| x.eq_ignore_ascii_case(id_or_upn))
                })
            })
            .cloned()
            .map(Value::Object)
    }
    /// The direct members of a group (object IDs, in the order added), or `None` for an
    /// unknown group.
    pub fn group_members(&self, group_id: &str) -> Option<Vec<String>> {
        self.shared
            .lock()
            .groups
            .iter()
            .find(|g| {
                g.object
                    .get("id")
                    .and_then(Value::as_str)
                    .is_some_and(|x| x.eq_ignore_ascii_case(group_id))
            })
            .map(|g| g.members.clone())
    }
    /// Every app role assignment (Graph `appRoleAssignment` JSON, creation order).
    pub fn app_role_assignments(&self) -> Vec<Value> {
        self.shared
            .lock()
            .app_role_assignments
            .iter()
            .cloned()
            .map(Value::Object)
            .collect()
    }
    /// The sponsors of a user (object IDs of users or groups, in the order added).
    pub fn sponsors(&self, user_id: &str) -> Vec<String> {
        self.shared
            .lock()
            .sponsors
            .iter()
            .find(|(u, _)| u.eq_ignore_ascii_case(user_id))
            .map(|(_, ids)| ids.clone())
            .unwrap_or_default()
    }
    /// Replaces the Graph fault settings (and re-seeds the fault RNG).
    ///
    /// # Errors
    /// [`DevTenantError::Config`] when a rate is outside `0.0..=1.0`.
    pub fn set_faults(&self, faults: FaultConfig) -> Result<(), DevTenantError> {
        self.shared.set_faults(faults)
    }
    /// The current fault settings.
    pub fn faults(&self) -> FaultConfig {
        self.shared.lock().faults.clone()
    }
    /// Signs arbitrary claims with the tenant's active key (RS256, `kid` header). Nothing is
    /// added: pass `iss`, `aud`, `exp`… yourself (see [`DevTenantHandle::mint_user_token`]).
    ///
    /// # Errors
    /// [`DevTenantError::Key`] if signing fails.
    pub fn mint_token(&self, claims: &Value) -> Result<String, DevTenantError> {
        self.shared.sign(claims)
    }
    /// Mints exactly the access token the token endpoint would issue to `client_id` for user
    /// `upn` and the space-separated `scope` (one resource).
    ///
    /// # Errors
    /// [`DevTenantError::Token`] for an unknown user or an invalid/multi-resource scope.
    pub fn mint_user_token(
        &self,
        upn: &str,
        client_id: &str,
        scope: &str,
    ) -> Result<String, DevTenantError> {
        let s = &self.shared;
        let user = s
            .cfg
            .users
            .iter()
            .find(|u| u.upn.eq_ignore_ascii_case(upn))
            .ok_or_else(|| DevTenantError::Token(format!("unknown user {upn}")))?;
        let rs = tokens::resolve_scopes(&s.cfg.resources, defaults::GRAPH_RESOURCE, scope)
            .map_err(|e| DevTenantError::Token(format!("scope {scope:?}: {e:?}")))?;
        s.sign(&tokens::user_access_claims(
            s,
            user,
            client_id,
            &rs,
            state::now_unix(),
        ))
    }
    /// Adds a new signing key and makes it active; the old keys stay in the JWKS. Returns the
    /// new `kid`.
    ///
    /// # Errors
    /// [`DevTenantError::Key`] if generation fails.
    pub async fn rotate_signing_key(&self) -> Result<String, DevTenantError> {
        let s = self.shared.clone();
        blocking(move || s.rotate_key()).await?
    }
    /// Stops the server gracefully and waits for it.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for DevTenantHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
