//! How sign-in opens the authorize URL.
//!
//! Normally the system browser (tauri-plugin-opener). With `GUESTLIST_OPENER=http` (E2E, headless
//! demos: no browser on the machine) the app GETs the URL itself and follows the redirects to its
//! own loopback listener, which only completes a sign-in when the authority signs in without a
//! page, as devtenant does for a `login_hint`. `GUESTLIST_LOGIN_HINT` adds `login_hint=` to the
//! URL in either mode.

use tauri::{AppHandle, Runtime};
use tauri_plugin_opener::OpenerExt;

/// The closure `Reviewer::sign_in` calls with the authorize URL.
pub type OpenUrl = Box<dyn FnOnce(&str) -> Result<(), String> + Send>;

/// The opener for this app, as configured by the environment.
pub fn for_app<R: Runtime>(app: &AppHandle<R>) -> OpenUrl {
    let hint = std::env::var("GUESTLIST_LOGIN_HINT")
        .ok()
        .filter(|h| !h.trim().is_empty());
    let http = std::env::var("GUESTLIST_OPENER").is_ok_and(|v| v == "http");
    let app = app.clone();
    Box::new(move |url: &str| {
        let url = with_login_hint(url, hint.as_deref())?;
        if http {
            tauri::async_runtime::spawn(fetch(url));
            Ok(())
        } else {
            app.opener()
                .open_url(url, None::<&str>)
                .map_err(|e| format!("cannot open the browser: {e}"))
        }
    })
}

/// GETs `url`, following redirects (to the loopback listener).
async fn fetch(url: String) {
    match reqwest::get(&url).await {
        Ok(r) => {
            tracing::info!(status = %r.status(), "authorize URL fetched (GUESTLIST_OPENER=http)")
        }
        Err(e) => tracing::warn!(error = %e, "fetching the authorize URL failed"),
    }
}

/// `url` with `login_hint=<hint>` added, unless it has one already or there is no hint.
///
/// Errors: the URL does not parse.
pub fn with_login_hint(url: &str, hint: Option<&str>) -> Result<String, String> {
    let Some(hint) = hint else {
        return Ok(url.to_owned());
    };
    let mut u = url::Url::parse(url).map_err(|e| format!("bad authorize URL: {e}"))?;
    if u.query_pairs().any(|(k, _)| k == "login_hint") {
        return Ok(url.to_owned());
    }
    u.query_pairs_mut().append_pair("login_hint", hint);
    Ok(u.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_hint_is_added_once_and_encoded() {
        let u = with_login_hint(
            "http://127.0.0.1:8900/t/oauth2/v2.0/authorize?client_id=c&state=s",
            Some("ada@contoso.onmicrosoft.com"),
        )
        .unwrap();
        assert_eq!(
            u,
            "http://127.0.0.1:8900/t/oauth2/v2.0/authorize?client_id=c&state=s&login_hint=ada%40contoso.onmicrosoft.com"
        );
        assert_eq!(with_login_hint(&u, Some("other@x")).unwrap(), u);
        assert_eq!(with_login_hint("not a url", None).unwrap(), "not a url");
        assert!(with_login_hint("not a url", Some("a@b")).is_err());
    }
}
