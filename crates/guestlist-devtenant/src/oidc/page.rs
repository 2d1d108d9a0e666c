//! What the browser sees from the sign-in endpoints: the HTML pages (account picker frame,
//! error page with the `AADSTS` code, sign-out page) and the redirects back to the client with
//! `response_mode` `query`, `fragment` or `form_post` ("Microsoft identity platform and OAuth
//! 2.0 authorization code flow"; error redirects per RFC 6749 §4.1.2.1).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

pub(super) fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

const PAGE_STYLE: &str = "body{font-family:'Segoe UI',system-ui,sans-serif;background:#f2f2f2;margin:0}\
main{max-width:440px;margin:8vh auto;background:#fff;padding:44px;box-shadow:0 2px 6px rgba(0,0,0,.2)}\
h1{font-size:24px;font-weight:600;margin:0 0 16px}p.sub{color:#555}\
button{display:block;width:100%;text-align:left;padding:12px;margin:8px 0;border:1px solid #ccc;background:#fff;cursor:pointer;font-size:15px}\
button:hover{background:#eef5fc;border-color:#0067b8}small{color:#666}.err{color:#a80000;background:#fde7e9;padding:12px}\
footer{margin-top:24px;font-size:12px;color:#888}";

pub(super) fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>{t}</title><style>{PAGE_STYLE}</style></head><body><main>{body}<footer>devtenant: an emulated Microsoft Entra ID tenant for development. Not Microsoft.</footer></main></body></html>",
        t = html_escape(title)
    )
}

pub(super) fn error_page(status: StatusCode, code: u32, message: &str) -> Response {
    let body = format!(
        "<h1>Sorry, but we're having trouble signing you in.</h1><p class=\"err\">AADSTS{code}: {}</p>",
        html_escape(message)
    );
    (status, Html(page("Sign in - error", &body))).into_response()
}

pub(super) struct ValidClient<'a> {
    pub(super) redirect_uri: String,
    pub(super) state: Option<&'a str>,
    pub(super) response_mode: &'a str,
}

pub(super) fn redirect_with(vc: &ValidClient<'_>, pairs: &[(&str, &str)]) -> Response {
    let mut all: Vec<(&str, &str)> = pairs.to_vec();
    if let Some(st) = vc.state {
        all.push(("state", st));
    }
    match vc.response_mode {
        "form_post" => {
            let inputs: String = all
                .iter()
                .map(|(k, v)| {
                    format!(
                        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                        html_escape(k),
                        html_escape(v)
                    )
                })
                .collect();
            let body = format!(
                "<form method=\"post\" action=\"{}\" id=\"f\">{inputs}<noscript><button>Continue</button></noscript></form><script>document.getElementById('f').submit()</script>",
                html_escape(&vc.redirect_uri)
            );
            Html(page("Working...", &body)).into_response()
        }
        mode => {
            let encoded = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(all.iter())
                .finish();
            let sep = if mode == "fragment" {
                "#"
            } else if vc.redirect_uri.contains('?') {
                "&"
            } else {
                "?"
            };
            let location = if encoded.is_empty() {
                vc.redirect_uri.clone()
            } else {
                format!("{}{sep}{encoded}", vc.redirect_uri)
            };
            found(&location)
        }
    }
}

/// A `302 Found` redirect, as Entra answers the authorize endpoint.
pub fn found(location: &str) -> Response {
    match HeaderValue::try_from(location) {
        Ok(v) => (StatusCode::FOUND, [(header::LOCATION, v)]).into_response(),
        Err(_) => error_page(
            StatusCode::BAD_REQUEST,
            50011,
            "The redirect URI is not a valid header value.",
        ),
    }
}

pub(super) fn redirect_error(
    vc: &ValidClient<'_>,
    error: &str,
    code: u32,
    message: &str,
) -> Response {
    let desc = format!(
        "AADSTS{code}: {message} Trace ID: {} Correlation ID: {}",
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4()
    );
    redirect_with(vc, &[("error", error), ("error_description", &desc)])
}
