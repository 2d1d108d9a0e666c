//! The app's settings (`<data_dir>/settings.json`).
//!
//! Loaded at [`crate::Reviewer::open`] from, in order: the `settings` argument, the JSON file in
//! the data directory, a file named by the `GUESTLIST_SETTINGS` environment variable (JSON, or
//! TOML when it ends in `.toml`; it seeds `settings.json`), else [`Settings::default`] (the local
//! devtenant of `make demo`). Keys are snake_case; unknown keys are rejected.

use std::path::Path;

use guestlist_core::plan::{ProvisioningSettings, UpnForm};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::error::{ReviewerError, codes};

/// Where the app signs in, which APIs it calls, and how it provisions guests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The OpenID Connect issuer (discovery at `<authority>/.well-known/openid-configuration`),
    /// e.g. `https://login.microsoftonline.com/<tenant-id>/v2.0` or devtenant's
    /// `http://127.0.0.1:8900/<tenant-id>/v2.0`.
    pub authority: String,
    /// The desktop app's (public client) application id.
    pub client_id: String,
    /// The approval API root, e.g. `https://approvals.contoso.com` (no trailing `/api`).
    pub api_base_url: String,
    /// The approval API's delegated scope, e.g. `api://guestlist-approvals/Approvals.ReadWrite`.
    pub api_scope: String,
    /// The Microsoft Graph version root: `https://graph.microsoft.com/v1.0` or devtenant's `http://127.0.0.1:8900/v1.0`.
    pub graph_base_url: String,
    /// The Graph delegated scopes, e.g. `https://graph.microsoft.com/User.ReadWrite.All` and
    /// `https://graph.microsoft.com/User.Invite.All` (CONTRACTS.md §3); the grants of issue 14
    /// §1 also need `GroupMember.ReadWrite.All` and `AppRoleAssignment.ReadWrite.All`.
    pub graph_scopes: Vec<String>,
    /// How guests are provisioned (tenant domain, UPN form, invitation redirect URL and
    /// message, extensions app id) — see [`ProvisioningSettings`].
    pub provisioning: ProvisioningSettings,
    /// `true`: no notifications for new requests.
    #[serde(default)]
    pub do_not_disturb: bool,
    /// Decided requests and finished outbox items are purged from the local database this many
    /// days after the decision (default 30).
    #[serde(default = "default_purge")]
    pub purge_decided_after_days: u32,
    /// Seconds a decision waits in the outbox before anything is sent (Graph or the approval
    /// API), so that Undo can cancel it (default 5; 0: sent at once). The wait is persisted
    /// with the outbox row and survives a restart of the app.
    #[serde(default = "default_undo_seconds")]
    pub undo_seconds: u32,
}

fn default_purge() -> u32 {
    30
}

/// The default of [`Settings::undo_seconds`].
pub const DEFAULT_UNDO_SECONDS: u32 = 5;

fn default_undo_seconds() -> u32 {
    DEFAULT_UNDO_SECONDS
}

/// devtenant's default tenant id.
pub const DEVTENANT_TENANT_ID: &str = "4a1e2d3c-5b6f-4789-9abc-def012345678";

impl Default for Settings {
    /// The local devtenant + approval API of `make demo`.
    fn default() -> Self {
        Settings {
            authority: format!("http://127.0.0.1:8900/{DEVTENANT_TENANT_ID}/v2.0"),
            client_id: "6f1c9a42-8d7e-4b3a-9c55-0e2d4f8a7b11".into(),
            api_base_url: "http://127.0.0.1:8080".into(),
            api_scope: "api://guestlist-approvals/Approvals.ReadWrite".into(),
            graph_base_url: "http://127.0.0.1:8900/v1.0".into(),
            graph_scopes: vec![
                "https://graph.microsoft.com/User.ReadWrite.All".into(),
                "https://graph.microsoft.com/User.Invite.All".into(),
                // The grants of `[[policy.grants]]` (issue 14 §1).
                "https://graph.microsoft.com/GroupMember.ReadWrite.All".into(),
                "https://graph.microsoft.com/AppRoleAssignment.ReadWrite.All".into(),
            ],
            provisioning: ProvisioningSettings {
                tenant_domain: "contoso.onmicrosoft.com".into(),
                upn_form: UpnForm::Seed,
                invite_redirect_url: "https://myapplications.microsoft.com".into(),
                send_invitation_message: false,
                extensions_app_id: None,
            },
            do_not_disturb: false,
            purge_decided_after_days: default_purge(),
            undo_seconds: DEFAULT_UNDO_SECONDS,
        }
    }
}

/// Whether `u`'s host is a loopback address (`127.0.0.0/8`, `::1`) or `localhost`.
fn is_loopback(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

impl Settings {
    /// Checks URLs and required values: `authority`, `api_base_url` and `graph_base_url` must
    /// be `https://`, or `http://` on a loopback host (`127.0.0.0/8`, `[::1]`, `localhost`: the
    /// local devtenant and approval API of `make demo`).
    ///
    /// Errors: `settings.invalid` naming the first bad field.
    pub fn validate(&self) -> Result<(), ReviewerError> {
        let bad = |field: &str, why: &str| {
            Err(ReviewerError::new(
                codes::SETTINGS,
                format!("settings.{field}: {why}"),
            ))
        };
        for (field, v) in [
            ("authority", &self.authority),
            ("api_base_url", &self.api_base_url),
            ("graph_base_url", &self.graph_base_url),
        ] {
            match url::Url::parse(v) {
                Ok(u) if u.scheme() == "https" => {}
                Ok(u) if u.scheme() == "http" && is_loopback(&u) => {}
                Ok(u) if u.scheme() == "http" => {
                    return bad(
                        field,
                        "must be an https:// URL: plain http:// would send access tokens and guests' personal data unencrypted (it is accepted only for a loopback host: 127.0.0.1, [::1] or localhost)",
                    );
                }
                _ => return bad(field, "must be an https:// URL"),
            }
        }
        if self.client_id.trim().is_empty() {
            return bad("client_id", "is empty");
        }
        if self.api_scope.trim().is_empty() {
            return bad("api_scope", "is empty");
        }
        if self.graph_scopes.is_empty() {
            return bad("graph_scopes", "is empty");
        }
        if self.provisioning.tenant_domain.trim().is_empty() {
            return bad("provisioning.tenant_domain", "is empty");
        }
        Ok(())
    }

    /// Parses settings from a JSON or (for `*.toml` paths) TOML file.
    ///
    /// Errors: `settings.invalid` with the file name and the parser's message.
    pub fn from_file(path: &Path) -> Result<Settings, ReviewerError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ReviewerError::new(codes::SETTINGS, format!("{}: {e}", path.display())))?;
        Self::parse(&text, path.extension().is_some_and(|e| e == "toml"))
            .map_err(|e| ReviewerError::new(codes::SETTINGS, format!("{}: {e}", path.display())))
    }

    /// Parses settings text: TOML when `toml`, else JSON. Does not [`Settings::validate`].
    ///
    /// Errors: the parser's message (unknown keys, wrong types, syntax).
    pub fn parse(text: &str, toml: bool) -> Result<Settings, String> {
        if toml {
            toml::from_str(text).map_err(|e| e.to_string())
        } else {
            serde_json::from_str(text).map_err(|e| e.to_string())
        }
    }

    /// Resolves the settings for `data_dir` (see the module docs) and writes `settings.json`
    /// when it did not exist.
    ///
    /// Errors: `settings.invalid` for unreadable or invalid files; `storage.error` when
    /// `settings.json` cannot be written.
    pub fn load(data_dir: &Path, given: Option<Settings>) -> Result<Settings, ReviewerError> {
        let file = data_dir.join("settings.json");
        let settings = match given {
            Some(s) => s,
            None if file.exists() => Self::from_file(&file)?,
            None => match std::env::var_os("GUESTLIST_SETTINGS") {
                Some(p) => Self::from_file(Path::new(&p))?,
                None => Settings::default(),
            },
        };
        settings.validate()?;
        settings.save(data_dir)?;
        Ok(settings)
    }

    /// Writes `settings.json` atomically (temp file + rename).
    ///
    /// Errors: `storage.error`.
    pub fn save(&self, data_dir: &Path) -> Result<(), ReviewerError> {
        let tmp = data_dir.join("settings.json.tmp");
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(&tmp, text).map_err(ReviewerError::storage)?;
        std::fs::rename(&tmp, data_dir.join("settings.json")).map_err(ReviewerError::storage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let s = Settings::load(dir.path(), Some(Settings::default())).unwrap();
        let back = Settings::from_file(&dir.path().join("settings.json")).unwrap();
        assert_eq!(back, s);
        std::fs::write(
            dir.path().join("bad.json"),
            r#"{"authority":"x","bogus":1}"#,
        )
        .unwrap();
        let e = Settings::from_file(&dir.path().join("bad.json")).unwrap_err();
        assert_eq!(e.code, codes::SETTINGS);
        let toml_path = dir.path().join("s.toml");
        std::fs::write(&toml_path, toml::to_string(&s).unwrap()).unwrap();
        assert_eq!(Settings::from_file(&toml_path).unwrap(), s);
        let mut bad = s.clone();
        bad.api_base_url = "not a url".into();
        assert!(bad.validate().unwrap_err().message.contains("api_base_url"));
    }

    #[test]
    fn remote_urls_must_be_https_and_loopback_http_is_allowed() {
        let ok = Settings::default();
        ok.validate().unwrap();
        for field in ["authority", "api_base_url", "graph_base_url"] {
            for (url, allowed) in [
                ("https://approvals.contoso.com", true),
                ("http://127.0.0.1:8080", true),
                ("http://127.10.0.1:8080", true),
                ("http://[::1]:8080", true),
                ("http://localhost:8080", true),
                ("http://LOCALHOST", true),
                ("http://approvals.contoso.com", false),
                ("http://10.0.0.5:8080", false),
                ("http://localhost.evil.example", false),
                ("http://127.0.0.1.nip.io", false),
                ("ftp://approvals.contoso.com", false),
                ("file:///etc/passwd", false),
            ] {
                let mut s = ok.clone();
                match field {
                    "authority" => s.authority = url.into(),
                    "api_base_url" => s.api_base_url = url.into(),
                    _ => s.graph_base_url = url.into(),
                }
                match s.validate() {
                    Ok(()) => assert!(allowed, "{field} = {url} was accepted"),
                    Err(e) => {
                        assert!(!allowed, "{field} = {url}: {}", e.message);
                        assert_eq!(e.code, codes::SETTINGS);
                        assert!(e.message.contains(field) && e.message.contains("https://"));
                    }
                }
            }
        }
        // Loading a settings file with a remote http:// API is a settings error.
        let dir = tempfile::tempdir().unwrap();
        let mut remote = ok.clone();
        remote.graph_base_url = "http://graph.microsoft.com/v1.0".into();
        let e = Settings::load(dir.path(), Some(remote)).unwrap_err();
        assert_eq!(e.code, codes::SETTINGS);
        assert!(!dir.path().join("settings.json").exists());
    }
}
