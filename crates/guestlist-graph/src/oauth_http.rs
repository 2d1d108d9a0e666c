//! The HTTP transport of the `oauth2` and `openidconnect` crates over Guestlist's own
//! `reqwest` client.
//!
//! oauth2 5 and openidconnect 4 ship a client for reqwest 0.12 only; Guestlist uses reqwest 0.13
//! (TLS verified by the OS trust store through rustls-platform-verifier). [`OAuthHttp`] implements
//! their [`oauth2::AsyncHttpClient`] trait (`request_async`, `discover_async`) on a
//! [`reqwest::Client`], so one client, one TLS configuration and one crate version serve both
//! the OAuth calls and the rest.
//!
//! The client passed in should not follow redirects (`reqwest::redirect::Policy::none()`): the
//! oauth2 crate's documentation asks for that on the token endpoint (SSRF). Response bodies are
//! read up to [`MAX_BODY_BYTES`].

use std::future::Future;
use std::pin::Pin;

use oauth2::{AsyncHttpClient, HttpRequest, HttpResponse};

/// The largest response body [`OAuthHttp`] reads: 1 MiB (discovery documents, JWKS and token
/// responses are a few KiB).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A [`reqwest::Client`] usable as the `http_client` of oauth2/openidconnect's
/// `request_async(&http)` and `discover_async(issuer, &http)`.
#[derive(Debug, Clone)]
pub struct OAuthHttp(reqwest::Client);

/// Why an OAuth/OIDC HTTP exchange failed. The `reqwest` error is kept as the source, so an
/// error chain still says "error sending request … connect" when the network is down.
#[derive(Debug, thiserror::Error)]
pub enum OAuthHttpError {
    /// The request could not be built or sent, or the response body could not be read.
    #[error("request failed")]
    Request(#[source] reqwest::Error),
    /// The response body is larger than [`MAX_BODY_BYTES`].
    #[error("the response body is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    /// The response could not be represented as an `http::Response` (should not happen).
    #[error("invalid response")]
    Response(#[source] oauth2::http::Error),
}

impl OAuthHttp {
    /// Wraps `client` (cheap: a `reqwest::Client` is a reference-counted handle).
    pub fn new(client: reqwest::Client) -> Self {
        Self(client)
    }

    /// The wrapped client, for plain requests next to the OAuth ones.
    pub fn client(&self) -> &reqwest::Client {
        &self.0
    }

    /// Sends `request` and reads the whole response (status, headers, body up to
    /// [`MAX_BODY_BYTES`]).
    ///
    /// # Errors
    /// [`OAuthHttpError::Request`] on a transport failure, [`OAuthHttpError::TooLarge`] on an
    /// oversized body.
    pub async fn exchange(&self, request: HttpRequest) -> Result<HttpResponse, OAuthHttpError> {
        let request = reqwest::Request::try_from(request).map_err(OAuthHttpError::Request)?;
        let mut response = self
            .0
            .execute(request)
            .await
            .map_err(OAuthHttpError::Request)?;
        let status = response.status();
        let headers = std::mem::take(response.headers_mut());
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(OAuthHttpError::Request)? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(OAuthHttpError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        let mut out = oauth2::http::Response::builder()
            .status(status)
            .body(body)
            .map_err(OAuthHttpError::Response)?;
        *out.headers_mut() = headers;
        Ok(out)
    }
}

impl<'c> AsyncHttpClient<'c> for OAuthHttp {
    type Error = OAuthHttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, OAuthHttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.exchange(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::routing::get;

    async fn serve(app: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}")
    }

    fn get_request(url: &str) -> HttpRequest {
        oauth2::http::Request::builder()
            .method(oauth2::http::Method::GET)
            .uri(url)
            .body(Vec::new())
            .unwrap()
    }

    #[tokio::test]
    async fn status_headers_and_body_come_back() {
        let base = serve(Router::new().route(
            "/token",
            get(|| async { ([("x-test", "1")], "{\"access_token\":\"t\"}") }),
        ))
        .await;
        let http = OAuthHttp::new(reqwest::Client::new());
        let r = http
            .call(get_request(&format!("{base}/token")))
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-test"], "1");
        assert_eq!(r.body(), b"{\"access_token\":\"t\"}");
    }

    #[tokio::test]
    async fn an_oversized_body_is_refused() {
        let big = "x".repeat(MAX_BODY_BYTES + 1);
        let base = serve(Router::new().route("/jwks", get(move || async move { big }))).await;
        let http = OAuthHttp::new(reqwest::Client::new());
        let e = http
            .call(get_request(&format!("{base}/jwks")))
            .await
            .unwrap_err();
        assert!(matches!(e, OAuthHttpError::TooLarge), "{e:?}");
    }

    #[tokio::test]
    async fn a_refused_connection_reads_as_offline() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let http = OAuthHttp::new(reqwest::Client::new());
        let e = http
            .call(get_request(&format!("http://127.0.0.1:{port}/x")))
            .await
            .unwrap_err();
        let mut chain = e.to_string();
        let mut cur = std::error::Error::source(&e);
        while let Some(c) = cur {
            chain.push_str(": ");
            chain.push_str(&c.to_string());
            cur = c.source();
        }
        assert!(chain.contains("error sending request"), "{chain}");
    }
}
