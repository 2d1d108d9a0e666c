//! # guestlist-bench — helpers for `make bench` (never run by `make test`)
//!
//! - `bench-bare`: an axum server whose every POST answers a constant connector JSON; the same
//!   load generator is pointed at it to give the ceiling the real server is compared to.
//! - `bench-populate`: creates a `guestlist-server` database with N stored pending requests
//!   (`user{i}@fabrikam.com`, issuer `google.com`, issuer-assigned id = the e-mail), inserted in
//!   bulk with SQL for setup speed.
//!
//! Shared by the reviewer and bulk benches: [`devtenant_settings`], [`sign_in_as_ada`]; by the
//! benches that run a `guestlist-server` process (`bench-audit`, `bench-hostile`,
//! `bench-reviewer`): [`server`].
//!
//! `scripts/bench.sh` drives them and writes `bench/RESULTS.md`.

pub mod server;

use guestlist_core::plan::{ProvisioningSettings, UpnForm};
use guestlist_devtenant::defaults;
use guestlist_reviewer::{Reviewer, Settings};

/// The e-mail of the `i`-th populated request.
pub fn user_email(i: u64) -> String {
    format!("user{i}@fabrikam.com")
}

/// Reviewer settings for a devtenant at `issuer` with Graph at `graph` and the approval API at
/// `api` (devtenant's documented client, scopes and extensions app id).
pub fn devtenant_settings(issuer: String, graph: String, api: String) -> Settings {
    Settings {
        authority: issuer,
        client_id: defaults::DESKTOP_CLIENT_ID.into(),
        api_base_url: api,
        api_scope: defaults::API_SCOPE_FULL.into(),
        graph_base_url: graph,
        graph_scopes: vec![
            "https://graph.microsoft.com/User.ReadWrite.All".into(),
            "https://graph.microsoft.com/User.Invite.All".into(),
        ],
        provisioning: ProvisioningSettings {
            tenant_domain: defaults::TENANT_DOMAIN.into(),
            upn_form: UpnForm::Seed,
            invite_redirect_url: "https://myapplications.microsoft.com".into(),
            send_invitation_message: false,
            extensions_app_id: Some(defaults::EXTENSIONS_APP_ID.into()),
        },
        do_not_disturb: false,
        purge_decided_after_days: 30,
        undo_seconds: 0,
    }
}

/// Signs Ada in by following the authorize URL with an HTTP client (devtenant signs a
/// `login_hint` in at once and redirects to the reviewer's loopback listener).
///
/// Errors: the reviewer's sign-in error.
pub async fn sign_in_as_ada(r: &Reviewer) -> anyhow::Result<()> {
    r.sign_in(Box::new(|url: &str| {
        let url = format!("{url}&login_hint={}", defaults::ADA_UPN.replace('@', "%40"));
        tokio::spawn(async move {
            let Ok(http) = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
            else {
                return;
            };
            if let Ok(resp) = http.get(&url).send().await
                && let Some(loc) = resp.headers().get("location").and_then(|v| v.to_str().ok())
            {
                let _ = http.get(loc).send().await;
            }
        });
        Ok(())
    }))
    .await
    .map_err(|e| anyhow::anyhow!("sign-in: {e:?}"))?;
    Ok(())
}
