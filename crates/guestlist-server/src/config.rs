//! Configuration of the approval API, layered: built-in defaults → TOML file (`--config`) →
//! `GUESTLIST_*` environment variables → command-line flags. Unknown keys are errors.
//!
//! | key (TOML) | env | default | meaning |
//! |---|---|---|---|
//! | `listen` | `GUESTLIST_LISTEN` | `127.0.0.1:8080` | address to bind |
//! | `database` | `GUESTLIST_DATABASE` | `guestlist.db` | SQLite file (WAL), or a PostgreSQL URL `postgres://user[:password]@host[:port]/db[?sslmode=…]` ([`crate::store::DatabaseUrl`]) |
//! | `connector.username` | `GUESTLIST_CONNECTOR_USERNAME` or `…__USERNAME` (or `_FILE`, see below) | — (required) | HTTP Basic user of the API connectors |
//! | `connector.password` | `GUESTLIST_CONNECTOR_PASSWORD` or `…__PASSWORD` (or `_FILE`, see below) | — (required) | HTTP Basic password, at least 16 characters ([`MIN_CONNECTOR_PASSWORD_CHARS`]) |
//! | `connector.auth` | `GUESTLIST_CONNECTOR__AUTH` | `basic` | `basic`, `certificate` (client certificate only; no username/password needed) or `both` (either passes) |
//! | `connector.client_ca_file` | `…__CLIENT_CA_FILE` | — | PEM bundle: client certificates chaining to one of these CAs are accepted |
//! | `connector.client_cert_sha256` | `…__CLIENT_CERT_SHA256` | `[]` | SHA-256 thumbprints (hex, `:` allowed) of accepted client certificates |
//! | `connector.forwarded_cert_header` | `…__FORWARDED_CERT_HEADER` | — (any of the three) | `x-arr-clientcert`, `x-forwarded-client-cert` or `x-ssl-client-cert`: the only header read from `trusted_proxies` |
//! | `tls.cert_file`, `tls.key_file` | `GUESTLIST_TLS__CERT_FILE`, `…__KEY_FILE` | — (plain HTTP) | PEM certificate chain and key: serve HTTPS (TLS 1.2+) directly ([`crate::edge::tls`]) |
//! | `tls.reload_interval_seconds` | `…__RELOAD_INTERVAL_SECONDS` | `5` | how often the files' modification times are checked (`SIGHUP` reloads at once) |
//! | `trusted_proxies` | `GUESTLIST_TRUSTED_PROXIES` | `[]` | addresses/CIDRs of TLS-terminating proxies whose forwarded client certificate and `X-Forwarded-For` are believed |
//! | `admin_listen` | `GUESTLIST_ADMIN_LISTEN` | `127.0.0.1:9464` | where `/metrics` and `/openapi.json` are served; `off` for nowhere. The default is best effort (a warning if taken); an address you set must bind |
//! | `limits.header_read_timeout_ms` | `GUESTLIST_LIMITS__HEADER_READ_TIMEOUT_MS` | `10000` | time to send a whole request head or finish the TLS handshake; also the idle keep-alive timeout ([`crate::edge`]) |
//! | `limits.body_read_timeout_ms` | `…__BODY_READ_TIMEOUT_MS` | `10000` | time for a request body to arrive whole (408 after) |
//! | `limits.max_connections` | `…__MAX_CONNECTIONS` | `4096` | open connections at once (lowered to fit the file-descriptor limit); also the listen backlog (capped by `net.core.somaxconn`) |
//! | `limits.max_connections_per_ip` | `…__MAX_CONNECTIONS_PER_IP` | `256` | open connections at once per source address (IPv6 /64; `trusted_proxies` exempt) |
//! | `approver_auth.issuer` | `GUESTLIST_APPROVER_AUTH__ISSUER` | — (fail closed) | OIDC issuer of approvers' tokens |
//! | `approver_auth.additional_issuers` | `…__ADDITIONAL_ISSUERS` | `[]` | further accepted `iss` values; the tenant's v1.0 issuer `https://sts.windows.net/{tid}/` is accepted without listing it ([`crate::auth::approver_issuers`]) |
//! | `approver_auth.audiences` | `GUESTLIST_APPROVER_AUTH__AUDIENCES` | — | accepted `aud` values (API client id, app id URI) |
//! | `approver_auth.required_role` | `…__REQUIRED_ROLE` | `Approver` | app role the `roles` claim must hold |
//! | `approver_auth.admin_role` | `…__ADMIN_ROLE` | `Admin` | app role for erasure, access export, reopen and the audit |
//! | `approver_auth.auditor_role` | `…__AUDITOR_ROLE` | `Auditor` | app role that may read the audit only |
//! | `approver_auth.leeway_seconds` | `…__LEEWAY_SECONDS` | `60` | clock skew allowed on `exp`/`nbf` (an event stream also ends at `exp` + this) |
//! | `approver_auth.required_scope` | `…__REQUIRED_SCOPE` | `Approvals.ReadWrite` | delegated scope the `scp` claim must hold (empty: not checked) |
//! | `approver_auth.allowed_client_ids` | `…__ALLOWED_CLIENT_IDS` | — (any, warned at start) | client ids (`azp`, v1 `appid`) allowed to call: the desktop app's |
//! | `approver_auth.jwks_refresh_seconds` | `…__JWKS_REFRESH_SECONDS` | `300` | an unknown `kid` refetches the JWKS at most this often |
//! | `extension_auth.issuers` | `GUESTLIST_EXTENSION_AUTH__ISSUERS` | — (fail closed) | accepted `iss` of custom-extension tokens |
//! | `extension_auth.jwks_uri` | `…__JWKS_URI` | — | tenant JWKS |
//! | `extension_auth.audiences` | `…__AUDIENCES` | — | the API's app id URI / client id |
//! | `extension_auth.authorized_party` | `…__AUTHORIZED_PARTY` | `99045fe1-…` | required `azp`/`appid` |
//! | `policy.*` | `GUESTLIST_POLICY__*` | see [`guestlist_core::policy::Policy`] | rules, code prefix, messages, expiry |
//! | `retry_window_seconds` | `GUESTLIST_RETRY_WINDOW_SECONDS` | `120` | an identical request-approval within this window is Entra's retry: answer as the first time |
//! | `body_limit_bytes` | `GUESTLIST_BODY_LIMIT_BYTES` | `65536` | larger bodies get 413 |
//! | `notifications.webhook_url` | `GUESTLIST_NOTIFICATIONS__WEBHOOK_URL` | — (off) | incoming webhook that gets `request.created` and reminders ([`crate::webhook`]) |
//! | `notifications.template` | `…__TEMPLATE` | `json` | message shape: `json`, `slack` or `teams` |
//! | `notifications.retries` | `…__RETRIES` | `5` | retries of a failed delivery (network, 408, 429, 5xx) |
//! | `notifications.retry_initial_ms` | `…__RETRY_INITIAL_MS` | `1000` | first retry delay, doubled each time (≤ 5 min; `Retry-After` wins) |
//! | `notifications.timeout_seconds` | `…__TIMEOUT_SECONDS` | `10` | timeout of one delivery attempt |
//! | `notifications.remind_after_hours` | `…__REMIND_AFTER_HOURS` | — (off) | remind about requests pending longer than this ([`crate::reminders`]) |
//! | `notifications.reminder_interval_seconds` | `…__REMINDER_INTERVAL_SECONDS` | `900` | how often reminders are checked |
//! | `notifications.link` | `…__LINK` | — | link put in the messages |
//! | `events.max_streams` | `GUESTLIST_EVENTS__MAX_STREAMS` | `1024` | open `/api/events` streams in total (503 `events.too_many_streams` above) |
//! | `events.max_streams_per_principal` | `…__MAX_STREAMS_PER_PRINCIPAL` | `8` | open streams per approver (`oid`/`sub`; 429 `events.too_many_streams_for_principal` above) |
//! | `events.max_backlog` | `…__MAX_BACKLOG` | `1000` | most events replayed after `Last-Event-ID`; further behind gets a `resync` event |
//! | `events.page_size` | `…__PAGE_SIZE` | `100` | events read from the store at a time for a replay |
//! | `events.broadcast_capacity` | `…__BROADCAST_CAPACITY` | `1024` | live events a stream may fall behind before it gets a `resync` event |
//! | `events.keepalive_seconds` | `…__KEEPALIVE_SECONDS` | `15` | comment sent on an idle stream |
//! | `retention.decided_after_days` | `GUESTLIST_RETENTION__DECIDED_AFTER_DAYS` | `90` | a decided or expired request's personal data is erased this long after its last change ([`crate::retention`]) |
//! | `retention.events_after_days` | `…__EVENTS_AFTER_DAYS` | `30` | stored events (and idempotency records) older than this are deleted |
//! | `retention.pending_after_days` | `…__PENDING_AFTER_DAYS` | `policy.expire_after_days` | a pending request is erased this long after its creation (never when both are unset) |
//! | `retention.interval_seconds` | `…__INTERVAL_SECONDS` | `3600` | how often the retention job runs (0: never) |
//! | `retention.batch_size` | `…__BATCH_SIZE` | `500` | requests (events, records) per retention transaction |
//! | `retention.tombstone_key` | `…__TOMBSTONE_KEY` | — (generated into `<database>.tombstone-key`, 0600) | HMAC key (≥ 32 bytes) of the denial tombstones of erased denied people |
//! | `retention.tombstone_key_file` | `…__TOMBSTONE_KEY_FILE` | — | a file holding that key |
//! | `postgres.pool_size` | `GUESTLIST_POSTGRES__POOL_SIZE` | `32` | PostgreSQL only: connections per replica for writes and approver reads ([`crate::store::pg::PoolConfig`]) |
//! | `postgres.read_pool_size` | `…__READ_POOL_SIZE` | `2` | PostgreSQL only: shared (pipelined) connections per replica that only check-approval-status uses |
//! | `guest_email.*` | `GUESTLIST_GUEST_EMAIL__*` (password also `…__SMTP_PASSWORD_FILE`) | off | e-mails to the guest on approval / denial ([`crate::guest_email`]) |
//!
//! Nested env keys use `__` (figment's `Env::split("__")`).
//!
//! **Secrets from files** (container secrets): the environment name of `connector.username` or
//! `connector.password` with `_FILE` appended (`GUESTLIST_CONNECTOR_PASSWORD_FILE`,
//! `GUESTLIST_CONNECTOR__PASSWORD_FILE`, …) names a file whose content is the value; read by
//! figment's file-provider adapter (`figment_file_provider_adapter::FileAdapter`). When both the
//! value and its `_FILE` are set, the value wins. Environment values and file contents are read
//! as figment values (surrounding whitespace trimmed, a trailing line break dropped): a secret
//! that reads as a number, a boolean or a list is refused, without echoing it; write it in double
//! quotes (`"0123…"`) to keep it text.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use figment_file_provider_adapter::FileAdapter;
use guestlist_core::policy::Policy;
use serde::{Deserialize, Serialize};

/// A secret string whose `Debug` prints `[redacted]`. Deserialized as text only: a value that
/// figment reads as a number, a boolean or a list is refused without being echoed.
#[derive(Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text(d).map(Secret)
    }
}

/// Why a secret or the connector username was refused; never contains the value.
const NOT_TEXT: &str = "must be text, and this value reads as a number, a boolean or a list: write it in double quotes (\"…\") to keep it text";

/// Deserializes a secret or the connector username as text, with one trailing line break
/// (`\n` or `\r\n`, as `echo … > file` leaves) removed. figment reads environment values and
/// `_FILE` contents as typed values, so `0123…` arrives as a number: that is refused with
/// [`NOT_TEXT`] rather than turned back into other text (the leading zeros are gone), and
/// without the value in the message (serde's own "invalid type" error would echo it).
fn text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    use serde::de::{Error, MapAccess, SeqAccess, Visitor};
    struct Text;
    impl<'de> Visitor<'de> for Text {
        type Value = String;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("text")
        }
        fn visit_str<E: Error>(self, v: &str) -> Result<String, E> {
            let v = v.strip_suffix('\n').unwrap_or(v);
            Ok(v.strip_suffix('\r').unwrap_or(v).to_owned())
        }
        fn visit_char<E: Error>(self, v: char) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_bool<E: Error>(self, _: bool) -> Result<String, E> {
            Err(E::custom(NOT_TEXT))
        }
        fn visit_i64<E: Error>(self, _: i64) -> Result<String, E> {
            Err(E::custom(NOT_TEXT))
        }
        fn visit_u64<E: Error>(self, _: u64) -> Result<String, E> {
            Err(E::custom(NOT_TEXT))
        }
        fn visit_i128<E: Error>(self, _: i128) -> Result<String, E> {
            Err(E::custom(NOT_TEXT))
        }
        fn visit_u128<E: Error>(self, _: u128) -> Result<String, E> {
            Err(E::custom(NOT_TEXT))
        }
        fn visit_f64<E: Error>(self, _: f64) -> Result<String, E> {
            Err(E::custom(NOT_TEXT))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<String, A::Error> {
            Err(A::Error::custom(NOT_TEXT))
        }
        fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<String, A::Error> {
            Err(A::Error::custom(NOT_TEXT))
        }
    }
    d.deserialize_string(Text)
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// HTTP Basic credentials that Entra's API connectors present (CONTRACTS.md §1).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorAuth {
    /// The connector's username.
    #[serde(deserialize_with = "text")]
    pub username: String,
    /// The connector's password.
    pub password: Secret,
    /// Which credentials a connector call may present (issue 10 §5).
    #[serde(default)]
    pub auth: ConnectorAuthMode,
    /// PEM bundle of CAs that client certificates may chain to.
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
    /// SHA-256 thumbprints of accepted client certificates (64 hex digits, `:` allowed).
    #[serde(default)]
    pub client_cert_sha256: Vec<String>,
    /// The one header a trusted proxy forwards the client certificate in; unset: any of the
    /// three (the proxy must then set or remove all three).
    #[serde(default)]
    pub forwarded_cert_header: Option<crate::edge::client_cert::ForwardedCertHeader>,
}

/// The shortest connector password accepted at start-up (characters).
pub const MIN_CONNECTOR_PASSWORD_CHARS: usize = 16;

/// `connector.auth`: how Entra's API connectors authenticate (the connector's "Authentication
/// type" in the Entra admin center).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectorAuthMode {
    /// HTTP Basic only.
    #[default]
    Basic,
    /// A client certificate only.
    Certificate,
    /// Either (for switching a connector from one to the other without downtime).
    Both,
}

impl ConnectorAuthMode {
    /// Whether Basic credentials are accepted.
    pub fn accepts_basic(self) -> bool {
        matches!(self, ConnectorAuthMode::Basic | ConnectorAuthMode::Both)
    }

    /// Whether a client certificate is accepted.
    pub fn accepts_certificate(self) -> bool {
        matches!(
            self,
            ConnectorAuthMode::Certificate | ConnectorAuthMode::Both
        )
    }
}

/// How approvers' bearer tokens are checked (CONTRACTS.md §4). With no `issuer` the approver API
/// fails closed (every call is refused).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApproverAuth {
    /// The OIDC issuer, e.g. `https://login.microsoftonline.com/<tenant>/v2.0`; discovery is at
    /// `<issuer>/.well-known/openid-configuration`.
    pub issuer: Option<String>,
    /// The JWKS URL; discovered from the issuer when absent.
    pub jwks_uri: Option<String>,
    /// Accepted `aud` values: the API's client id (v2.0 tokens) and/or app id URI (`api://…`,
    /// what v1.0 tokens carry).
    pub audiences: Vec<String>,
    /// Further accepted `iss` values, checked against the same JWKS. The tenant's v1.0 issuer
    /// (`https://sts.windows.net/{tid}/`, derived from `issuer`) needs no entry
    /// ([`crate::auth::approver_issuers`]).
    pub additional_issuers: Vec<String>,
    /// The app role the token's `roles` claim must contain.
    pub required_role: String,
    /// The app role for privacy and audit operations (erasure, access export, reopening a
    /// denial, the audit export): `POST /api/privacy/erase`, `GET /api/privacy/export`,
    /// `POST /api/requests/{id}/reopen` (issue 12 "Roles").
    pub admin_role: String,
    /// The app role that may read the audit (`GET /api/audit`) and nothing else; holders of
    /// [`ApproverAuth::admin_role`] may read it too.
    pub auditor_role: String,
    /// Allowed clock skew in seconds for `exp` and `nbf`.
    pub leeway_seconds: u64,
    /// The delegated scope the token's `scp` claim (space separated; RFC 9068 `scope` when
    /// `scp` is absent) must contain, e.g. `Approvals.ReadWrite`. Empty: not checked.
    pub required_scope: String,
    /// Client ids allowed to call the approver API: the token's `azp` (v2), `appid` (v1) or
    /// `client_id` (RFC 9068) must be one of them. Empty: any client (warned at start-up).
    pub allowed_client_ids: Vec<String>,
    /// A token naming a `kid` the cached JWKS lacks refetches it at most once per this many
    /// seconds (single-flight; failures back off up to the same bound).
    pub jwks_refresh_seconds: u64,
}

impl Default for ApproverAuth {
    fn default() -> Self {
        ApproverAuth {
            issuer: None,
            jwks_uri: None,
            audiences: Vec::new(),
            additional_issuers: Vec::new(),
            required_role: "Approver".into(),
            admin_role: "Admin".into(),
            auditor_role: "Auditor".into(),
            leeway_seconds: 60,
            required_scope: "Approvals.ReadWrite".into(),
            allowed_client_ids: Vec::new(),
            jwks_refresh_seconds: 300,
        }
    }
}

/// How tokens of Entra External ID custom authentication extensions are checked
/// (CONTRACTS.md §2). With no `issuers` the extension endpoints fail closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExtensionAuth {
    /// Accepted `iss` values (`https://login.microsoftonline.com/{tid}/v2.0`,
    /// `https://{domain}.ciamlogin.com/{tid}/v2.0`).
    pub issuers: Vec<String>,
    /// The tenant JWKS URL; discovered from the first issuer when absent.
    pub jwks_uri: Option<String>,
    /// Accepted `aud` values: the API's app id URI or client id.
    pub audiences: Vec<String>,
    /// Required `azp` (v2) / `appid` (v1): Entra's authentication events app.
    pub authorized_party: String,
    /// Allowed clock skew in seconds.
    pub leeway_seconds: u64,
}

impl Default for ExtensionAuth {
    fn default() -> Self {
        ExtensionAuth {
            issuers: Vec::new(),
            jwks_uri: None,
            audiences: Vec::new(),
            authorized_party: guestlist_core::extension::AUTHENTICATION_EVENTS_APP_ID.into(),
            leeway_seconds: 60,
        }
    }
}

/// The whole configuration. See the module docs for keys, env names and defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to bind (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// The database: a SQLite file or a PostgreSQL URL.
    pub database: crate::store::DatabaseUrl,
    /// Basic credentials of the API connectors.
    pub connector: ConnectorAuth,
    /// Approver token checks.
    pub approver_auth: ApproverAuth,
    /// Custom authentication extension token checks.
    pub extension_auth: ExtensionAuth,
    /// Approval rules and messages.
    pub policy: Policy,
    /// Seconds within which an identical request-approval call is treated as Entra's retry.
    pub retry_window_seconds: u64,
    /// Maximum request body in bytes (413 above).
    pub body_limit_bytes: usize,
    /// Webhook and reminders (`[notifications]`).
    pub notifications: crate::webhook::Notifications,
    /// Timeouts and connection caps of the public listener (`[limits]`).
    pub limits: crate::edge::Limits,
    /// Where `/metrics` and `/openapi.json` are served; unset: [`crate::edge::AdminListen::DEFAULT`]
    /// if free.
    pub admin_listen: Option<crate::edge::AdminListen>,
    /// HTTPS served directly (`[tls]`).
    pub tls: crate::edge::tls::TlsFiles,
    /// TLS-terminating proxies (addresses or CIDR blocks).
    pub trusted_proxies: Vec<String>,
    /// Limits of `GET /api/events` (`[events]`).
    pub events: crate::live::EventsConfig,
    /// Retention of personal data and the denial tombstone key (`[retention]`, issue 12).
    pub retention: crate::retention::RetentionConfig,
    /// E-mails to the guest on approval / denial (`[guest_email]`, issue 14 §5).
    pub guest_email: crate::guest_email::GuestEmailConfig,
    /// Connection pools on PostgreSQL (`[postgres]`, issue 13 §5; ignored on SQLite).
    pub postgres: crate::store::pg::PoolConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database: crate::store::DatabaseUrl::Sqlite(PathBuf::from("guestlist.db")),
            connector: ConnectorAuth::default(),
            approver_auth: ApproverAuth::default(),
            extension_auth: ExtensionAuth::default(),
            policy: Policy::default(),
            retry_window_seconds: 120,
            body_limit_bytes: 64 * 1024,
            notifications: crate::webhook::Notifications::default(),
            limits: crate::edge::Limits::default(),
            admin_listen: None,
            tls: crate::edge::tls::TlsFiles::default(),
            trusted_proxies: Vec::new(),
            events: crate::live::EventsConfig::default(),
            retention: crate::retention::RetentionConfig::default(),
            guest_email: crate::guest_email::GuestEmailConfig::default(),
            postgres: crate::store::pg::PoolConfig::default(),
        }
    }
}

/// The top-level keys of [`Config`], which `GUESTLIST_<KEY>[__<SUB>]` variables may set.
const TOP_LEVEL_KEYS: &[&str] = &[
    "listen",
    "database",
    "connector",
    "approver_auth",
    "extension_auth",
    "policy",
    "retry_window_seconds",
    "body_limit_bytes",
    "notifications",
    "limits",
    "admin_listen",
    "tls",
    "trusted_proxies",
    "events",
    "retention",
    "guest_email",
    "postgres",
];

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or environment is malformed or has unknown keys.
    #[error("configuration: {0}")]
    Invalid(String),
}

/// The documented single-underscore names of the connector's credentials
/// (`GUESTLIST_CONNECTOR_USERNAME`, `…_PASSWORD`, and their `_FILE`), as the nested key the
/// double-underscore names give (`connector__username`, …); any other key (prefix removed)
/// unchanged.
fn secret_alias(key: &str) -> String {
    let lower = key.to_ascii_lowercase();
    match lower.strip_prefix("connector_") {
        Some(rest @ ("username" | "password" | "username_file" | "password_file")) => {
            format!("connector__{rest}")
        }
        _ => key.to_owned(),
    }
}

/// Settings given as command-line flags, which override the file and the environment
/// ([`Config::load_with`]).
#[derive(Debug, Clone, Default)]
pub struct Flags {
    /// `--listen`.
    pub listen: Option<SocketAddr>,
    /// `--database` (a SQLite path or a PostgreSQL URL).
    pub database: Option<String>,
}

impl Flags {
    fn merge_into(&self, mut fig: Figment) -> Figment {
        if let Some(l) = self.listen {
            fig = fig.merge(Serialized::default("listen", l.to_string()));
        }
        if let Some(d) = &self.database {
            fig = fig.merge(Serialized::default("database", d));
        }
        fig
    }
}

impl Config {
    /// Loads defaults → `file` (TOML, if given) → `GUESTLIST_*` env, reading the `…_FILE`
    /// secrets of the module docs (figment's file-provider adapter), then validates.
    ///
    /// Errors: [`ConfigError::Invalid`] naming the bad key, or the `_FILE` variable and path
    /// that could not be read.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Config::load_with(file, &Flags::default())
    }

    /// [`Config::load`] with command-line `flags` merged last, before validation (so a flag
    /// is validated like the key it sets).
    ///
    /// Errors: [`ConfigError`] naming the bad key or file.
    pub fn load_with(file: Option<&Path>, flags: &Flags) -> Result<Config, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(f) = file {
            fig = fig.merge(Toml::file_exact(f));
        }
        // Only keys of this config: other programs' GUESTLIST_* variables (the desktop app's
        // GUESTLIST_DATA_DIR, …) may share the environment.
        let env = Env::prefixed("GUESTLIST_")
            .map(|k| secret_alias(k.as_str()).into())
            .filter(|k| {
                let first = k.as_str().split("__").next().unwrap_or_default();
                TOP_LEVEL_KEYS.iter().any(|t| first.eq_ignore_ascii_case(t))
            })
            .split("__");
        // `username_file` / `password_file` (at any depth: only the connector has such keys)
        // become `username` / `password` with the file's content; every other key is untouched
        // (`tls.cert_file` stays a path).
        // `smtp_password_file` likewise becomes `guest_email.smtp_password` (issue 14 §5).
        fig = fig.merge(FileAdapter::wrap(env).only(&["username", "password", "smtp_password"]));
        fig = flags.merge_into(fig);
        let config: Config = fig
            .extract()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// The edge's settings (issue 10): password strength, client certificates, TLS files,
    /// proxies, limits.
    fn validate_edge(&self) -> Result<(), ConfigError> {
        let c = &self.connector;
        if c.auth.accepts_basic() && c.password.0.chars().count() < MIN_CONNECTOR_PASSWORD_CHARS {
            return Err(ConfigError::Invalid(format!(
                "connector.password is too weak: use at least {MIN_CONNECTOR_PASSWORD_CHARS} characters (a random secret, e.g. `openssl rand -base64 24`)"
            )));
        }
        let tls = self.tls.files().map_err(ConfigError::Invalid)?;
        crate::edge::client_cert::TrustedProxies::parse(&self.trusted_proxies)
            .map_err(ConfigError::Invalid)?;
        let certs = crate::edge::client_cert::ClientCertPolicy::load(
            c.client_ca_file.as_deref(),
            &c.client_cert_sha256,
        )
        .map_err(ConfigError::Invalid)?;
        if c.auth.accepts_certificate() {
            if !certs.is_configured() {
                return Err(ConfigError::Invalid(
                    "connector.auth accepts client certificates: set connector.client_ca_file and/or connector.client_cert_sha256".into(),
                ));
            }
            if tls.is_none() && self.trusted_proxies.is_empty() {
                return Err(ConfigError::Invalid(
                    "connector.auth accepts client certificates, which arrive only over HTTPS: set tls.cert_file and tls.key_file, or trusted_proxies for a TLS-terminating proxy".into(),
                ));
            }
        }
        self.limits.validate().map_err(ConfigError::Invalid)
    }

    /// Checks the settings that would otherwise fail at the first request.
    ///
    /// Errors: [`ConfigError::Invalid`] naming the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.connector.auth.accepts_basic()
            && (self.connector.username.is_empty() || self.connector.password.0.is_empty())
        {
            return Err(ConfigError::Invalid(
                "connector.username and connector.password are required (GUESTLIST_CONNECTOR_USERNAME / GUESTLIST_CONNECTOR_PASSWORD, or their _FILE variants)".into(),
            ));
        }
        self.validate_edge()?;
        if self.connector.username.contains(':') {
            return Err(ConfigError::Invalid(
                "connector.username must not contain ':' (HTTP Basic, RFC 7617)".into(),
            ));
        }
        if self.approver_auth.issuer.is_some() && self.approver_auth.audiences.is_empty() {
            return Err(ConfigError::Invalid(
                "approver_auth.audiences must list the approval API's client id or app id URI"
                    .into(),
            ));
        }
        if !self.extension_auth.issuers.is_empty() && self.extension_auth.audiences.is_empty() {
            return Err(ConfigError::Invalid(
                "extension_auth.audiences must list the approval API's app id URI or client id"
                    .into(),
            ));
        }
        self.policy.validate().map_err(ConfigError::Invalid)?;
        self.retention.validate().map_err(ConfigError::Invalid)?;
        self.guest_email.validate().map_err(ConfigError::Invalid)?;
        if let Some(u) = &self.notifications.webhook_url
            && !(u.0.starts_with("https://") || u.0.starts_with("http://"))
        {
            return Err(ConfigError::Invalid(
                "notifications.webhook_url must be an http(s) URL".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod readme_table {
    //! The README's configuration table cannot drift from [`Config`] (issue 16 §3): every key
    //! of the configuration, as serde sees it, has a row there, and every row names a key.

    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::Config;

    /// Dotted paths of every leaf of `v` (objects are walked; arrays, scalars, nulls and empty
    /// objects are leaves).
    fn leaves(prefix: &str, v: &Value, out: &mut BTreeSet<String>) {
        match v {
            Value::Object(m) if !m.is_empty() => {
                for (k, v) in m {
                    let p = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    leaves(&p, v, out);
                }
            }
            _ => {
                out.insert(prefix.to_owned());
            }
        }
    }

    /// The keys the README's configuration tables name: the first cell of each row, whose
    /// backticked items are keys; `.x` continues the previous item's section, `a.*` covers
    /// every key under `a`, and `<…>` segments stand for any name.
    fn readme_keys() -> Vec<String> {
        let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"));
        let mut keys = Vec::new();
        for line in readme.lines() {
            let Some(first) = line
                .strip_prefix("| `")
                .and_then(|rest| rest.split(" |").next())
            else {
                continue;
            };
            let mut section = String::new();
            for item in format!("`{first}").split(',') {
                let item = item.trim().trim_matches('`').trim();
                if item.is_empty() {
                    continue;
                }
                let key = if let Some(rest) = item.strip_prefix('.') {
                    format!("{section}.{rest}")
                } else {
                    item.to_owned()
                };
                section = key
                    .rsplit_once('.')
                    .map(|(s, _)| s.to_owned())
                    .unwrap_or_default();
                keys.push(key);
            }
        }
        keys
    }

    fn covers(pattern: &str, key: &str) -> bool {
        if let Some(section) = pattern.strip_suffix(".*") {
            return key.starts_with(&format!("{section}."));
        }
        let (p, k): (Vec<&str>, Vec<&str>) =
            (pattern.split('.').collect(), key.split('.').collect());
        let any = |s: &&str| s.starts_with('<') && s.ends_with('>');
        if p.len() > k.len() {
            // A documented map (`policy.messages.<lang>.<kind>`) covers the map's own key.
            return p[..k.len()] == k[..] && p[k.len()..].iter().all(any);
        }
        // A key under a documented map or array entry (`policy.messages.<lang>.<kind>`) is
        // covered by its longest documented prefix.
        p.iter()
            .zip(&k)
            .all(|(p, k)| p == k || (p.starts_with('<') && p.ends_with('>')))
            && (p.len() == k.len() || p.last().is_some_and(|l| l.starts_with('<')))
    }

    #[test]
    fn every_config_key_has_a_readme_row() {
        let config = serde_json::to_value(Config::default()).unwrap();
        let mut keys = BTreeSet::new();
        leaves("", &config, &mut keys);
        let documented = readme_keys();
        let missing: Vec<&String> = keys
            .iter()
            .filter(|k| {
                !documented
                    .iter()
                    .any(|d| covers(d, k) || covers(d, &parent(k)))
            })
            .collect();
        assert!(
            missing.is_empty(),
            "configuration keys without a row in the README's configuration table: {missing:?}"
        );
    }

    /// `policy.messages` is a map whose default is filled: its rows document the map itself.
    fn parent(key: &str) -> String {
        key.rsplit_once('.')
            .map(|(p, _)| p.to_owned())
            .unwrap_or_default()
    }

    #[test]
    fn every_readme_row_names_a_config_key() {
        let config = serde_json::to_value(Config::default()).unwrap();
        let mut keys = BTreeSet::new();
        leaves("", &config, &mut keys);
        let unknown: Vec<String> = readme_keys()
            .into_iter()
            .filter(|d| d.contains('.') || keys.contains(d.as_str()) || d.ends_with('*'))
            .filter(|d| {
                !keys.iter().any(|k| {
                    covers(d, k)
                        || k.starts_with(&format!("{}.", d.trim_end_matches(".*")))
                        || d.split('.').any(|s| s.starts_with('<'))
                })
            })
            .collect();
        assert!(
            unknown.is_empty(),
            "README configuration rows that name no configuration key: {unknown:?}"
        );
    }
}

#[cfg(test)]
mod secret_files {
    //! The `…_FILE` secrets and the connector's env names, through [`Config::load`] with real
    //! environment variables and files (figment's `Jail`: a temp dir as the working directory,
    //! the environment restored afterwards, one jail at a time).
    // `Jail::expect_with` fixes the closure's type, `Result<(), figment::Error>`.
    #![allow(clippy::result_large_err)]

    use figment::Jail;

    use super::Config;

    const PASSWORD: &str = "correct horse battery staple";

    /// `Config::load(None)` in the jail, its error as text.
    fn load() -> Result<Config, String> {
        Config::load(None).map_err(|e| e.to_string())
    }

    #[test]
    fn single_and_double_underscore_file_variables_read_the_files() {
        Jail::expect_with(|jail| {
            jail.create_file("user", "connector\n")?;
            jail.create_file("pw", &format!("{PASSWORD}\r\n"))?;
            jail.set_env("GUESTLIST_CONNECTOR_USERNAME_FILE", "user");
            jail.set_env("GUESTLIST_CONNECTOR_PASSWORD_FILE", "pw");
            let c = load()?;
            assert_eq!(c.connector.username, "connector");
            assert_eq!(c.connector.password.0, PASSWORD);

            // The nested spelling every other key uses (a config error before the adapter).
            jail.clear_env();
            let dir = jail.directory().to_owned();
            jail.create_file("pw2", "another password, 28 chars\n")?;
            jail.set_env("GUESTLIST_CONNECTOR__USERNAME", "ops");
            jail.set_env(
                "GUESTLIST_CONNECTOR__PASSWORD_FILE",
                dir.join("pw2").display(),
            );
            let c = load()?;
            assert_eq!(c.connector.username, "ops");
            assert_eq!(c.connector.password.0, "another password, 28 chars");
            Ok(())
        });
    }

    #[test]
    fn plain_variables_still_work_and_win_over_their_file() {
        Jail::expect_with(|jail| {
            jail.create_file("pw", "from the file, 20+ chars")?;
            jail.set_env("GUESTLIST_CONNECTOR_USERNAME", "connector");
            jail.set_env("GUESTLIST_CONNECTOR_PASSWORD", PASSWORD);
            jail.set_env("GUESTLIST_CONNECTOR_PASSWORD_FILE", "pw");
            let c = load()?;
            assert_eq!(c.connector.username, "connector");
            assert_eq!(c.connector.password.0, PASSWORD);
            Ok(())
        });
    }

    #[test]
    fn other_file_keys_stay_paths() {
        Jail::expect_with(|jail| {
            jail.set_env("GUESTLIST_CONNECTOR_USERNAME", "connector");
            jail.set_env("GUESTLIST_CONNECTOR_PASSWORD", PASSWORD);
            jail.set_env("GUESTLIST_CONNECTOR__CLIENT_CA_FILE", "no-such-ca.pem");
            // Validation opens the CA bundle at that path: the adapter left the key alone (it
            // would have failed reading the file itself, and left an unknown `client_ca` key).
            let err = load().expect_err("the CA bundle does not exist");
            assert!(
                err.contains("connector.client_ca_file no-such-ca.pem"),
                "{err}"
            );
            Ok(())
        });
    }

    #[test]
    fn the_smtp_password_of_guest_email_reads_its_file() {
        Jail::expect_with(|jail| {
            jail.set_env("GUESTLIST_CONNECTOR_USERNAME", "connector");
            jail.set_env("GUESTLIST_CONNECTOR_PASSWORD", PASSWORD);
            jail.create_file("smtp-pw", "smtp secret from a file\n")?;
            jail.set_env(
                "GUESTLIST_GUEST_EMAIL__SMTP_URL",
                "smtps://smtp.example.com",
            );
            jail.set_env("GUESTLIST_GUEST_EMAIL__FROM", "noreply@example.com");
            jail.set_env("GUESTLIST_GUEST_EMAIL__SMTP_USERNAME", "guestlist");
            jail.set_env("GUESTLIST_GUEST_EMAIL__SMTP_PASSWORD_FILE", "smtp-pw");
            let c = load().unwrap();
            let pw = c.guest_email.smtp_password.as_ref().map(|p| p.0.as_str());
            assert_eq!(pw, Some("smtp secret from a file"));
            jail.set_env(
                "GUESTLIST_GUEST_EMAIL__SMTP_URL",
                "smtp://u:pw@smtp.example.com",
            );
            let err = load().expect_err("credentials in the URL are refused");
            assert!(
                err.contains("guest_email.smtp_url") && !err.contains("smtp secret"),
                "{err}"
            );
            Ok(())
        });
    }

    #[test]
    fn an_unreadable_file_names_the_variable_and_path() {
        Jail::expect_with(|jail| {
            jail.set_env("GUESTLIST_CONNECTOR_USERNAME", "connector");
            jail.set_env("GUESTLIST_CONNECTOR_PASSWORD_FILE", "/nonexistent/pw");
            let err = load().expect_err("a missing secret file is an error");
            assert!(err.contains("/nonexistent/pw"), "{err}");
            assert!(err.to_ascii_lowercase().contains("password_file"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn a_secret_that_reads_as_a_number_is_refused_without_echoing_it() {
        Jail::expect_with(|jail| {
            jail.create_file("pw", "0123456789012345678\n")?;
            jail.set_env("GUESTLIST_CONNECTOR_USERNAME", "connector");
            jail.set_env("GUESTLIST_CONNECTOR_PASSWORD_FILE", "pw");
            let err = load().expect_err("a number is not a password");
            assert!(err.contains("double quotes"), "{err}");
            assert!(!err.contains("123456789"), "the secret leaked: {err}");

            // Quoted, it is text, leading zero included.
            jail.create_file("pw", "\"0123456789012345678\"\n")?;
            assert_eq!(load()?.connector.password.0, "0123456789012345678");
            Ok(())
        });
    }
}
